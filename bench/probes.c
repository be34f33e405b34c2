/* probes.c: what probes cost, per call, inside the process.
 *
 *   probes N
 *
 * Times N calls each of a tracked function (bench_tracked), an excluded
 * one (bench_excluded, when CODENSM_EXCLUDE names it) and a probe target
 * (bench_target), and prints "tracked_ns=... excluded_ns=... target_ns=..."
 * per call.  bench/run.py runs it without probes, with 10 probes on
 * bench_other_0..9 (never called: the tracked and excluded calls must not
 * pay for them) and with one probe of each instrument type on bench_target.
 * The loop and the clock are not instrumented. */
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

NOINST static double per_call(void (*f)(long), long n)
{
	for (long i = 0; i < n / 10; i++) /* warm: caches, first sight */
		f(i);
	double t = now_ns();
	for (long i = 0; i < n; i++)
		f(i);
	return (now_ns() - t) / (double)n;
}

NOINST int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	double tr = per_call(bench_tracked, n);
	double ex = per_call(bench_excluded, n);
	double tg = per_call(bench_target, n / 4);
	printf("tracked_ns=%.2f excluded_ns=%.2f target_ns=%.2f\n", tr, ex, tg);
	return 0;
}
