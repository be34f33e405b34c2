/* hist.c: bounds and percentiles of the fixed log2x2 latency histogram
 * whose bucket function lives in internal.h (docs/payload.md, "hist"). */
#include "internal.h"

/* Bucket 0 is [0, 2); bucket 1 is never used (ns >= 2 lands in 2e+h with
 * e >= 1), so its lower bound is 2 and it is empty; bucket b >= 2 starts at
 * 2^(b/2) * (1 + (b%2)/2).  b = CNSMP_HIST_BUCKETS gives the bound the last
 * bucket would end at if it were not open-ended (2^40), used only to
 * interpolate inside it. */
CNSMP_NOINST uint64_t cnsmp_hist_lower(unsigned b)
{
	if (b == 0)
		return 0;
	if (b == 1)
		return 2;
	if (b > CNSMP_HIST_BUCKETS)
		b = CNSMP_HIST_BUCKETS;
	unsigned e = b / 2;
	return (1ull << e) + (uint64_t)(b % 2) * (1ull << (e - 1));
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
