/* probeloop.c: a long-running program for the dashboard's probe test.  It
 * calls loop_work once at start (so that a probe on it finds a function the
 * process has called), says "ready", then does what each line of stdin
 * says, exactly, and answers "done N" on stdout:
 *   work N   N calls of loop_work, through loop_serve
 *   fail N   N calls of loop_fail, through loop_serve, each marked failed
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

__attribute__((noinline)) void loop_fail(int i)
{
	sink += i;
	codensm_error();
}

__attribute__((noinline)) void loop_serve(int fail, int i)
{
	if (fail)
		loop_fail(i);
	else
		loop_work(i);
}

int main(void)
{
	char line[128], what[16];
	int n;

	loop_serve(0, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	while (fgets(line, sizeof line, stdin)) {
		if (sscanf(line, "%15s %d", what, &n) != 2 || n < 0) {
			printf("bad line\n");
			continue;
		}
		for (int i = 0; i < n; i++)
			loop_serve(!strcmp(what, "fail"), i);
		printf("done %d\n", n);
	}
	return 0;
}
