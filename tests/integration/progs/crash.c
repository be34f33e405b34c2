/* crash.c: "crash N": a worker thread calls crash_step N times, then
 * crash_outer -> crash_middle -> crash_boom, which writes through NULL
 * (SIGSEGV).  "ok N": the same without the crash (crash_step N times).
 * Exact for "crash N": crash_step N calls; crash_worker, crash_outer,
 * crash_middle, crash_boom 1 call and 1 error each (in progress at the
 * crash); incident "signal" 11 with chain worker, outer, middle, boom. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile long sink;
static int steps, do_crash;
int *volatile nowhere;

void crash_step(int i)
{
	sink += i;
}

void crash_boom(void)
{
	*nowhere = 42;
}

void crash_middle(void)
{
	crash_boom();
	sink++;
}

void crash_outer(void)
{
	crash_middle();
	sink++;
}

void *crash_worker(void *arg)
{
	for (int i = 0; i < steps; i++)
		crash_step(i);
	if (do_crash)
		crash_outer();
	return arg;
}

int main(int argc, char **argv)
{
	pthread_t t;

	if (argc < 3)
		return 2;
	do_crash = strcmp(argv[1], "crash") == 0;
	steps = atoi(argv[2]);
	printf("crash: %s %d\n", argv[1], steps);
	fflush(stdout);
	pthread_create(&t, NULL, crash_worker, NULL);
	pthread_join(t, NULL);
	return 0;
}
