/* probeloop.c: a long-running program for the dashboard's probe test.  At
 * start it calls loop_work (through loop_serve) and loop_charge (from main,
 * without failing), so that a probe on either finds a function the process
 * has called; it says "ready", then does what each line of stdin says,
 * exactly, and answers "done N" on stdout:
 *   work N   N calls of loop_work, through loop_serve
 *   fail N   N calls of loop_charge, each marked failed, through
 *            loop_retry: a caller loop_charge never had before
 * It ends when stdin closes.  Its runtime flushes in the background, so it
 * learns probes and reports them while it waits for the next line. */
#include <codensm.h>
#include <stdio.h>
#include <string.h>

static volatile long sink;

__attribute__((noinline)) void loop_work(int i)
{
	for (int k = 0; k < 200; k++)
		sink += i ^ k;
}

__attribute__((noinline)) void loop_charge(int i, int fail)
{
	sink += i;
	if (fail)
		codensm_error();
}

__attribute__((noinline)) void loop_serve(int i)
{
	loop_work(i);
}

__attribute__((noinline)) void loop_retry(int i)
{
	loop_charge(i, 1);
}

int main(void)
{
	char line[128], what[16];
	int n;

	loop_serve(0);
	loop_charge(0, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	while (fgets(line, sizeof line, stdin)) {
		if (sscanf(line, "%15s %d", what, &n) != 2 || n < 0) {
			printf("bad line\n");
			continue;
		}
		for (int i = 0; i < n; i++) {
			if (!strcmp(what, "fail"))
				loop_retry(i);
			else
				loop_serve(i);
		}
		printf("done %d\n", n);
	}
	return 0;
}
