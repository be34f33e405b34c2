/* hist.c: the fixed log2x2 latency histogram (contract.h, docs/payload.md
 * "hist"): its bounds, percentiles, and the table that buckets a duration
 * in clock ticks without converting it to ns (internal.h). */
#include "internal.h"

/* The contract's bounds (contract.h), clamped there at 2^40 ns. */
CNSMP_NOINST uint64_t cnsmp_hist_lower(unsigned b)
{
	return cnsmp_contract_hist_lower_ns(b);
}

/* The q-quantile: the bucket holding the ceil-free rank q*total, and
 * linear interpolation between its bounds by the rank's position among the
 * bucket's counts.  0 for an empty histogram; q is clamped to [0, 1]. */
CNSMP_NOINST double cnsmp_hist_percentile_ns(const uint64_t *counts, double q)
{
	uint64_t total = 0;
	for (unsigned b = 0; b < CNSMP_HIST_BUCKETS; b++)
		total += counts[b];
	if (total == 0)
		return 0.0;
	if (!(q > 0.0))
		q = 0.0;
	if (q > 1.0)
		q = 1.0;
	double rank = q * (double)total, below = 0.0;
	for (unsigned b = 0; b < CNSMP_HIST_BUCKETS; b++) {
		if (counts[b] == 0)
			continue;
		double n = (double)counts[b];
		if (below + n >= rank) {
			double lo = (double)cnsmp_hist_lower(b);
			double hi = (double)cnsmp_hist_lower(b + 1);
			return lo + (hi - lo) * ((rank - below) / n);
		}
		below += n;
	}
	return (double)cnsmp_hist_lower(CNSMP_HIST_BUCKETS); /* not reached */
}

/* ---- durations in clock ticks ------------------------------------------ */

struct cnsmp_tick_octave cnsmp_hist_octaves[64];

/* The slot of `ticks` (internal.h), the slow way (ns past 64 bits,
 * centuries, are in the last bucket like everything from ~14 minutes up). */
static CNSMP_NOINST unsigned slot_of(uint64_t ticks, uint64_t mult, unsigned shift)
{
	unsigned __int128 ns = ((unsigned __int128)ticks * mult) >> shift;
	if (ns > UINT64_MAX)
		return CNSMP_HIST_BUCKETS - 1;
	return ns == 1 ? 1 : cnsmp_hist_bucket((uint64_t)ns);
}

/* The first tick in [lo, hi] whose slot is at least b (b <= slot(hi)). */
static CNSMP_NOINST uint64_t first_tick(uint64_t lo, uint64_t hi, unsigned b,
					 uint64_t mult, unsigned shift)
{
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (slot_of(mid, mult, shift) >= b)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

CNSMP_NOINST int cnsmp_hist_build_octaves(uint64_t mult, unsigned shift)
{
	int exact = 1;
	for (unsigned e = 0; e < 64; e++) {
		struct cnsmp_tick_octave *o = &cnsmp_hist_octaves[e];
		uint64_t lo = e ? 1ull << e : 0;
		uint64_t hi = e == 63 ? UINT64_MAX : (2ull << e) - 1;
		o->base = slot_of(lo, mult, shift);
		unsigned top = slot_of(hi, mult, shift);
		if (top > o->base + 2)
			exact = 0;
		for (unsigned k = 0; k < 2; k++)
			o->bound[k] = top >= o->base + k + 1
					      ? first_tick(lo, hi, o->base + k + 1, mult, shift) - 1
					      : UINT64_MAX;
	}
	return exact;
}
