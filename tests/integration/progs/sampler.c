/* sampler.c: sampled timing against exact timing of the same function in
 * one process.  Rounds (argv[1]) alternate codensm_init({.sample = 1})
 * and ({.sample = 16}); each round makes N (argv[2]) calls of
 * sample_spin() from sample_round() and then flushes, so each body a
 * server receives is one round's delta.  Every 100th call fails.
 * Exact for R rounds of N: sample_round R calls (0 errors), sample_spin
 * R*N (R*N/100), main 1; edge sample_round -> sample_spin R*N.
 * The spin lengths cycle through five values of 15,000 to 35,000 steps
 * (5-12 us here): long next to the hooks, so that sample_spin's share of
 * sample_round's time is the same whether its calls are timed or
 * estimated, and a test can compare that share across modes whatever the
 * machine's speed does between rounds (run it with
 * CODENSM_SAMPLE_BELOW_NS above those).  At a tenth of that, the cheaper
 * hooks of untimed calls took 1-2 points off sample_round's time, which
 * read as a sampled share that high. */
#include <stdio.h>
#include <stdlib.h>
#include "codensm.h"

static volatile unsigned sink;

void sample_spin(unsigned k, int fail)
{
	for (unsigned i = 0; i < k; i++)
		sink += i;
	if (fail)
		codensm_error();
}

void sample_round(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		sample_spin(15000 + (i % 5) * 5000, i % 100 == 0);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 6;
	unsigned n = argc > 2 ? (unsigned)atoi(argv[2]) : 20000;
	int failed = 0;
	for (int r = 0; r < rounds; r++) {
		struct codensm_options o = { .sample = r % 2 ? 16 : 1 };
		if (codensm_init(&o) != 0)
			failed++;
		sample_round(n);
		if (codensm_flush() != 0)
			failed++;
	}
	printf("sampler: %d x %u, %d failed\n", rounds, n, failed);
	return 0;
}
