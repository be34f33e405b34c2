/* test_hist.c: the log2x2 histogram: bucket bounds exactly as
 * docs/payload.md defines them, and percentiles interpolated in a bucket. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "internal.h"

static void durations_below_two_ns_fall_in_bucket_zero(void **state)
{
	assert_int_equal(cnsmp_hist_bucket(0), 0);
	assert_int_equal(cnsmp_hist_bucket(1), 0);
	assert_int_equal(cnsmp_hist_bucket(2), 2);
	assert_int_equal(cnsmp_hist_bucket(3), 3);
	assert_int_equal(cnsmp_hist_bucket(4), 4);
	assert_int_equal(cnsmp_hist_bucket(5), 4);
	assert_int_equal(cnsmp_hist_bucket(6), 5);
	assert_int_equal(cnsmp_hist_bucket(7), 5);
	assert_int_equal(cnsmp_hist_bucket(8), 6);
}

static void lower_bounds_follow_the_documented_formula(void **state)
{
	assert_int_equal(cnsmp_hist_lower(0), 0);
	assert_int_equal(cnsmp_hist_lower(1), 2); /* empty bucket */
	assert_int_equal(cnsmp_hist_lower(2), 2);
	assert_int_equal(cnsmp_hist_lower(3), 3);
	assert_int_equal(cnsmp_hist_lower(10), 32);
	assert_int_equal(cnsmp_hist_lower(11), 48);
	assert_int_equal(cnsmp_hist_lower(40), 1048576);
	assert_int_equal(cnsmp_hist_lower(41), 1572864);
	assert_int_equal(cnsmp_hist_lower(79), 3ull << 38); /* 1.5 * 2^39 */
	assert_int_equal(cnsmp_hist_lower(80), 1ull << 40);
}

static void every_bucket_starts_exactly_at_its_lower_bound(void **state)
{
	for (unsigned b = 2; b < CNSMP_HIST_BUCKETS; b++) {
		uint64_t lo = cnsmp_hist_lower(b);
		assert_int_equal(cnsmp_hist_bucket(lo), b);
		unsigned below = b == 2 ? 0 : b - 1; /* bucket 1 is empty */
		assert_int_equal(cnsmp_hist_bucket(lo - 1), below);
	}
}

static void the_last_bucket_holds_everything_from_14_minutes(void **state)
{
	assert_int_equal(cnsmp_hist_bucket((3ull << 38) - 1), 78);
	assert_int_equal(cnsmp_hist_bucket(3ull << 38), 79);
	assert_int_equal(cnsmp_hist_bucket(1ull << 40), 79);
	assert_int_equal(cnsmp_hist_bucket(UINT64_MAX), 79);
}

static void an_empty_histogram_has_percentile_zero(void **state)
{
	uint64_t counts[CNSMP_HIST_BUCKETS] = {0};
	assert_true(cnsmp_hist_percentile_ns(counts, 0.5) == 0.0);
}

static void percentiles_interpolate_inside_one_bucket(void **state)
{
	uint64_t counts[CNSMP_HIST_BUCKETS] = {0};
	counts[10] = 4; /* [32, 48) */
	assert_true(cnsmp_hist_percentile_ns(counts, 0.0) == 32.0);
	assert_true(cnsmp_hist_percentile_ns(counts, 0.5) == 40.0);
	assert_true(cnsmp_hist_percentile_ns(counts, 0.75) == 44.0);
	assert_true(cnsmp_hist_percentile_ns(counts, 1.0) == 48.0);
}

static void percentiles_walk_across_buckets(void **state)
{
	uint64_t counts[CNSMP_HIST_BUCKETS] = {0};
	counts[4] = 4; /* [4, 6) */
	counts[6] = 4; /* [8, 12) */
	assert_true(cnsmp_hist_percentile_ns(counts, 0.25) == 5.0);
	assert_true(cnsmp_hist_percentile_ns(counts, 0.5) == 6.0);
	assert_true(cnsmp_hist_percentile_ns(counts, 0.75) == 10.0);
	assert_true(cnsmp_hist_percentile_ns(counts, 2.0) == 12.0); /* clamped */
	assert_true(cnsmp_hist_percentile_ns(counts, -1.0) == 4.0);
}

/* ---- the hot path's bucket straight from clock ticks ------------------- */

static unsigned slow_bucket(uint64_t ticks)
{
	unsigned __int128 ns = ((unsigned __int128)ticks * cnsmp_clock_mult) >>
			       cnsmp_clock_shift;
	return ns > UINT64_MAX ? CNSMP_HIST_BUCKETS - 1 : cnsmp_hist_bucket((uint64_t)ns);
}

static void check_ticks(uint64_t t)
{
	if (cnsmp_clock_bucket(t) != slow_bucket(t))
		fail_msg("ticks %llu (mult %llu >> %u): bucket %u, expected %u",
			 (unsigned long long)t, (unsigned long long)cnsmp_clock_mult,
			 cnsmp_clock_shift, cnsmp_clock_bucket(t), slow_bucket(t));
}

/* Every octave's edges, every bound found and its neighbours, and random
 * ticks inside the octave. */
static void check_all_ticks(void)
{
	srand(7);
	for (unsigned e = 0; e < 64; e++) {
		uint64_t lo = 1ull << e, hi = e == 63 ? UINT64_MAX : (2ull << e) - 1;
		for (uint64_t d = 0; d < 3; d++) {
			check_ticks(lo + d);
			check_ticks(lo - d);
			check_ticks(hi - d);
		}
		const struct cnsmp_tick_octave *o = &cnsmp_hist_octaves[e];
		for (unsigned k = 0; k < 2; k++)
			if (o->bound[k] != UINT64_MAX)
				for (uint64_t d = 0; d < 3; d++) {
					check_ticks(o->bound[k] + 1 + d);
					check_ticks(o->bound[k] - d);
				}
		for (int i = 0; i < 200; i++) {
			uint64_t r = ((uint64_t)rand() << 40) ^ ((uint64_t)rand() << 20) ^
				     (uint64_t)rand();
			check_ticks(lo + (e ? r % (hi - lo + 1) : r % 2));
		}
	}
	check_ticks(0);
	check_ticks(UINT64_MAX);
}

static void tick_buckets_equal_the_ns_buckets_for_every_clock(void **state)
{
	cnsmp_clock_init();
	uint64_t mult = cnsmp_clock_mult;
	unsigned shift = cnsmp_clock_shift;
	check_all_ticks(); /* this machine's clock */
	/* TSCs of 5, 4.5, 3, 2.4, 2.2, 2.095 and 1 GHz, then the vDSO
	 * fallback (ticks are ns).  At 2.0-2.33 and 4-5 GHz an octave of
	 * ticks starts between 1.5 and 2 ns, where the buckets jump from 0
	 * to 2: the table holds slots, which do not (internal.h). */
	static const uint64_t mults[] = {(1u << 24) / 5, (1u << 24) * 2 / 9,
					 (1u << 24) / 3, (1u << 24) * 5 / 12,
					 (1u << 24) * 5 / 11, (1u << 24) * 1000 / 2095,
					 1u << 24};
	for (size_t i = 0; i < sizeof mults / sizeof mults[0]; i++) {
		cnsmp_clock_mult = mults[i];
		cnsmp_clock_shift = 24;
		assert_true(cnsmp_hist_build_octaves(cnsmp_clock_mult, cnsmp_clock_shift));
		check_all_ticks();
	}
	cnsmp_clock_mult = 1;
	cnsmp_clock_shift = 0;
	assert_true(cnsmp_hist_build_octaves(cnsmp_clock_mult, cnsmp_clock_shift));
	check_all_ticks();
	/* Every counter from 335 MHz to 20 GHz, 5 MHz apart, has a table. */
	for (uint64_t mhz = 335; mhz <= 20000; mhz += 5) {
		cnsmp_clock_mult = ((uint64_t)1000 << 24) / mhz;
		cnsmp_clock_shift = 24;
		if (!cnsmp_hist_build_octaves(cnsmp_clock_mult, cnsmp_clock_shift))
			fail_msg("no exact table for a %llu MHz counter",
				 (unsigned long long)mhz);
	}
	/* A 100 MHz counter (10 ns a tick) jumps several buckets per tick at
	 * first: not exact, so init would fall back to the vDSO clock. */
	cnsmp_clock_mult = 10u << 24;
	cnsmp_clock_shift = 24;
	assert_false(cnsmp_hist_build_octaves(cnsmp_clock_mult, cnsmp_clock_shift));
	cnsmp_clock_mult = mult;
	cnsmp_clock_shift = shift;
	assert_true(cnsmp_hist_build_octaves(cnsmp_clock_mult, cnsmp_clock_shift));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(durations_below_two_ns_fall_in_bucket_zero),
		cmocka_unit_test(lower_bounds_follow_the_documented_formula),
		cmocka_unit_test(every_bucket_starts_exactly_at_its_lower_bound),
		cmocka_unit_test(the_last_bucket_holds_everything_from_14_minutes),
		cmocka_unit_test(an_empty_histogram_has_percentile_zero),
		cmocka_unit_test(percentiles_interpolate_inside_one_bucket),
		cmocka_unit_test(percentiles_walk_across_buckets),
		cmocka_unit_test(tick_buckets_equal_the_ns_buckets_for_every_clock),
	};
	return cmocka_run_group_tests_name("hist", tests, NULL, NULL);
}
