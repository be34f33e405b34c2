/* ticker.c: R rounds (argv[1]) of W calls of tick_work (argv[2]), with
 * 20 ms between rounds, so a run lasts R/50 s and crosses many flushes
 * of a short CODENSM_FLUSH_INTERVAL.  Each round is one tick_round call;
 * every 10th round also calls tick_rare, which marks an error.
 * Exact: tick_round R, tick_work R*W, tick_rare (R+9)/10 calls and as
 * many errors. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "codensm.h"

static volatile long sink;

void tick_work(int i)
{
	sink += i;
}

void tick_rare(void)
{
	codensm_error();
}

void tick_round(int r, int w)
{
	for (int i = 0; i < w; i++)
		tick_work(i);
	if (r % 10 == 0)
		tick_rare();
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 50;
	int work = argc > 2 ? atoi(argv[2]) : 100;
	struct timespec pause = { 0, 20 * 1000 * 1000 };

	for (int r = 0; r < rounds; r++) {
		tick_round(r, work);
		nanosleep(&pause, NULL);
	}
	printf("ticker: %d x %d\n", rounds, work);
	return 0;
}
