/* clock.c: the hot path's clock: the TSC when it is invariant, calibrated
 * once against CLOCK_MONOTONIC, else the vDSO's CLOCK_MONOTONIC in ns.
 *
 * The choice is made once, before the first call is timed (the hooks' first
 * sight calls cnsmp_clock_init before any frame is pushed), so a start and
 * an end tick always come from the same clock.  Calibration costs ~2 ms of
 * sleep, once, in init; the hot path only reads the counter.
 */
#include <time.h>
#include <pthread.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include "internal.h"

/* Written once inside pthread_once before any reader can run a timed call
 * (see above), read-only afterwards: plain variables are enough. */
uint64_t cnsmp_clock_mult = 1; /* fallback: ticks are ns */
unsigned cnsmp_clock_shift = 0;
int cnsmp_clock_is_tsc = 0;

#define CALIBRATE_NS 2000000L /* clock reads here take <100 ns: ~1e-4 */
#define SHIFT 24               /* ns = ticks * mult >> 24 */

CNSMP_NOINST uint64_t cnsmp_clock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The hooks' clock where there is no invariant TSC: the same clock, kept
 * a function of its own so that a test can set the hooks' time alone. */
CNSMP_NOINST uint64_t cnsmp_clock_fallback_now(void)
{
	return cnsmp_clock_mono_ns();
}

#if defined(__x86_64__) || defined(__i386__)
static CNSMP_NOINST int tsc_invariant(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007)
		return 0;
	if (!__get_cpuid(0x80000007, &a, &b, &c, &d))
		return 0;
	return (d >> 8) & 1;
}

/* One (ns, tick) pair, the tick taken between two clock reads so the pair
 * is off by at most half the read window. */
static CNSMP_NOINST void sample(uint64_t *ns, uint64_t *tsc)
{
	uint64_t a = cnsmp_clock_fallback_now();
	*tsc = __builtin_ia32_rdtsc();
	uint64_t b = cnsmp_clock_fallback_now();
	*ns = a + (b - a) / 2;
}

static CNSMP_NOINST void calibrate(void)
{
	uint64_t ns0, t0, ns1, t1;
	if (!tsc_invariant())
		return;
	sample(&ns0, &t0);
	struct timespec nap = {0, CALIBRATE_NS};
	while (nanosleep(&nap, &nap) != 0)
		;
	sample(&ns1, &t1);
	if (t1 <= t0 || ns1 <= ns0)
		return;
	uint64_t mult = (uint64_t)(((unsigned __int128)(ns1 - ns0) << SHIFT) /
				   (t1 - t0));
	/* A sane TSC runs between 100 MHz and 20 GHz. */
	if (mult == 0 || mult > (10ull << SHIFT) || mult < (1ull << SHIFT) / 20)
		return;
	cnsmp_clock_mult = mult;
	cnsmp_clock_shift = SHIFT;
	cnsmp_clock_is_tsc = 1;
}
#else
static CNSMP_NOINST void calibrate(void) {}
#endif

/* An octave of ticks spans more than two slot bounds only when a tick is
 * 3 ns or longer (a counter under ~333 MHz: 0 ticks are slot 0, 1 tick
 * slot 3): the table cannot say those slots, so such a machine times
 * with the vDSO clock instead.  Every TSC from there to 20 GHz gets an
 * exact table (test_hist sweeps them). */
static CNSMP_NOINST void init(void)
{
	calibrate();
	if (!cnsmp_hist_build_octaves(cnsmp_clock_mult, cnsmp_clock_shift)) {
		cnsmp_clock_mult = 1;
		cnsmp_clock_shift = 0;
		cnsmp_clock_is_tsc = 0;
		cnsmp_hist_build_octaves(cnsmp_clock_mult, cnsmp_clock_shift);
	}
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

CNSMP_NOINST void cnsmp_clock_init(void)
{
	pthread_once(&once, init);
}
