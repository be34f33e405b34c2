/* probesrv.c: a long-running program that the server's probes watch,
 * driven line by line on stdin so that a test decides what it calls and
 * when (after the probe it made has reached the process):
 *   leaf N     N calls of srv_leaf (tracked)
 *   helper N   N calls of srv_helper (meant to be excluded: CODENSM_EXCLUDE)
 *   fail N     N calls of srv_charge from srv_api; every one fails (codensm_error)
 *   newfail N  N calls of srv_charge from srv_cron, a caller new to it; every one fails
 *   flush      codensm_flush()
 *   quit       exits 0
 * It answers each line with "done" on stdout.  BUILD (-DBUILD=n) only
 * changes the program's build-id. */
#include <codensm.h>
#include <stdio.h>
#include <string.h>

#ifndef BUILD
#define BUILD 1
#endif

static volatile long sink;
static volatile int build = BUILD;

__attribute__((noinline)) int srv_leaf(int i) { sink += i; return i; }
__attribute__((noinline)) int srv_helper(int i) { sink += i * 2; return i; }
__attribute__((noinline)) void srv_charge(int i)
{
	sink += i;
	codensm_error();
}
__attribute__((noinline)) void srv_api(int n)
{
	for (int i = 0; i < n; i++)
		srv_charge(i);
}
__attribute__((noinline)) void srv_cron(int n)
{
	for (int i = 0; i < n; i++)
		srv_charge(i);
}

int main(void)
{
	char line[128], cmd[32];
	int n;
	setvbuf(stdout, NULL, _IOLBF, 0);
	sink = build;
	while (fgets(line, sizeof line, stdin)) {
		n = 0;
		if (sscanf(line, "%31s %d", cmd, &n) < 1)
			continue;
		if (!strcmp(cmd, "quit"))
			break;
		if (!strcmp(cmd, "leaf"))
			for (int i = 0; i < n; i++)
				srv_leaf(i);
		else if (!strcmp(cmd, "helper"))
			for (int i = 0; i < n; i++)
				srv_helper(i);
		else if (!strcmp(cmd, "fail"))
			srv_api(n);
		else if (!strcmp(cmd, "newfail"))
			srv_cron(n);
		else if (!strcmp(cmd, "flush"))
			codensm_flush();
		printf("done\n");
	}
	return 0;
}
