/* probes.c: what probes cost, per call, inside the process.
 *
 *   probes N
 *
 * Times N calls each of a tracked function (bench_tracked), an excluded
 * one (bench_excluded, when CODENSM_EXCLUDE names it) and a probe target
 * (bench_target), and prints "tracked_ns=... excluded_ns=... target_ns=..."
 * per call (the fastest of 9 interleaved rounds).  bench/run.py runs it without probes, with 10 probes on
 * bench_other_0..9 (never called: the tracked and excluded calls must not
 * pay for them) and with one probe of each instrument type on bench_target
 * (the user type "tally", registered here, counts in a callback).
 * The loop and the clock are not instrumented. */
#include <codensm.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NOINST __attribute__((no_instrument_function))
static volatile long sink;

__attribute__((noinline)) void bench_tracked(long i) { sink += i; }
__attribute__((noinline)) void bench_excluded(long i) { sink += i; }
__attribute__((noinline)) void bench_target(long i) { sink += i; }
#define OTHER(n) __attribute__((noinline)) void bench_other_##n(long i) { sink += i * n; }
OTHER(0) OTHER(1) OTHER(2) OTHER(3) OTHER(4) OTHER(5) OTHER(6) OTHER(7) OTHER(8) OTHER(9)

NOINST static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* ns per call of k calls of f. */
NOINST static double time_calls(void (*f)(long), long k)
{
	double t = now_ns();
	for (long i = 0; i < k; i++)
		f(i);
	return (now_ns() - t) / (double)k;
}

/* The three functions' rounds interleave, and each keeps its fastest of
 * ROUNDS: a round in which the process lost its core (a shared machine)
 * or the runtime's start-up work ran beside it does not count, and all
 * three see the same moments of the run. */
#define ROUNDS 9
#define NF 3

static _Atomic long tallied;
NOINST static void tally(const struct codensm_probe_event *ev, void *arg)
{
	(void)ev;
	(void)arg;
	tallied++;
}

NOINST int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	codensm_instrument_register("tally", tally, NULL);
	void (*fs[NF])(long) = {bench_tracked, bench_excluded, bench_target};
	long ks[NF] = {n / ROUNDS, n / ROUNDS, n / ROUNDS / 4};
	double best[NF];
	for (int j = 0; j < NF; j++)
		time_calls(fs[j], ks[j] / 2); /* warm: caches, first sight */
	for (int r = 0; r < ROUNDS; r++)
		for (int j = 0; j < NF; j++) {
			double ns = time_calls(fs[j], ks[j]);
			if (r == 0 || ns < best[j])
				best[j] = ns;
		}
	printf("tracked_ns=%.2f excluded_ns=%.2f target_ns=%.2f\n", best[0], best[1], best[2]);
	return 0;
}
