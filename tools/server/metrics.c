/* metrics.c: the formulas of docs/api.md that are not plain SQL sums:
 * percentiles of merged histograms, ratios, OEE performance, live states. */
#include <math.h>
#include <string.h>

#include "server.h"

/* The contract's bounds (contract.h, docs/payload.md). */
double srv_hist_lower_ns(unsigned b)
{
	return (double)cnsmp_contract_hist_lower_ns(b);
}

/* The top bucket is open-ended; interpolation closes it at 2^40 ns, the
 * start a bucket 80 would have. */
double srv_hist_upper_ns(unsigned b)
{
	return srv_hist_lower_ns(b + 1);
}

/* The rank is q * total (not rounded): with counts c_b, the bucket holding
 * it is the first where the running sum reaches the rank, and the value is
 * lower + (rank - sum_before) / c_b * (upper - lower).  Linear within the
 * bucket: the error is at most a bucket's width (a quarter to a half of
 * its lower bound). */
double srv_hist_percentile_ms(const int64_t counts[SRV_HIST_BUCKETS], double q)
{
	double total = 0, cum = 0;
	for (unsigned b = 0; b < SRV_HIST_BUCKETS; b++)
		total += (double)counts[b];
	if (total <= 0)
		return -1;
	double rank = q * total;
	for (unsigned b = 0; b < SRV_HIST_BUCKETS; b++) {
		double c = (double)counts[b];
		if (c <= 0)
			continue;
		if (cum + c >= rank) {
			double lo = srv_hist_lower_ns(b), hi = srv_hist_upper_ns(b);
			double frac = (rank - cum) / c;
			if (frac < 0)
				frac = 0;
			return (lo + frac * (hi - lo)) / 1e6;
		}
		cum += c;
	}
	return srv_hist_upper_ns(SRV_HIST_BUCKETS - 1) / 1e6; /* not reached */
}

double srv_ratio(double num, double den)
{
	return den != 0 ? num / den : 0;
}

double srv_reliability(int64_t calls, int64_t errors)
{
	return calls > 0 ? 1.0 - (double)errors / (double)calls : 1.0;
}

/* performance = min(1, p50 over 30 days / p50 in the window): 1 when either
 * is unknown (no histogram was sent) or the window's p50 is zero. */
double srv_performance(double p50_30d, double p50_window)
{
	if (p50_30d < 0 || p50_window <= 0)
		return 1.0;
	double p = p50_30d / p50_window;
	return p < 1 ? p : 1.0;
}

const char *srv_state(int64_t calls_15m, int64_t errors_15m, int64_t calls_30d,
		      int in_inventory, int64_t calls_ever, int64_t threshold)
{
	if (errors_15m > 0 && (double)errors_15m >= 0.05 * (double)calls_15m)
		return "failing";
	if (calls_15m > 0)
		return "working";
	if (calls_30d > 0 && calls_30d < threshold)
		return "underused";
	if (in_inventory && calls_ever == 0)
		return "never_called";
	return "idle";
}

int srv_state_ok(const char *state)
{
	static const char *const states[] = { "failing", "working", "underused", "never_called", "idle" };
	for (size_t i = 0; i < sizeof states / sizeof *states; i++)
		if (!strcmp(state, states[i]))
			return 1;
	return 0;
}
