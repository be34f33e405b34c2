/* test_sample.c: sampled timing (CODENSM_SAMPLE) against exact timing.
 *
 * The clock is the one part replaced here: this binary is linked with
 * --wrap=cnsmp_clock_fallback_now and runs on the non-TSC clock, so every
 * call lasts exactly as long as the test says.  Exact mode then measures
 * the workload's true total to the tick, and the sampled estimate of the
 * same workload can be held to its documented error bound, not to "about
 * right".  Counts (calls, errors, edges) must be exact in both modes. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "hooks.h"

/* The test's clock, in ns (mult 1, shift 0); each thread has its own. */
static __thread uint64_t now_ns = 1000000;
static __thread uint64_t clock_reads; /* every read of the test's clock */
uint64_t __real_cnsmp_clock_fallback_now(void);
uint64_t __wrap_cnsmp_clock_fallback_now(void)
{
	clock_reads++;
	return now_ns;
}

#define SHORT ((void *)0x1000)   /* 100 ns a call */
#define PARENT ((void *)0x2000)  /* 5 us of its own, calls SHORT */
#define VARIED ((void *)0x3000)  /* 50 ... 950 ns */
#define SPIKY ((void *)0x4000)   /* 900 ns every 16th call, else 60 */
#define LONG ((void *)0x5000)    /* 5 us */
#define DRIFT ((void *)0x6000)   /* 100 ns, then 10 us */
#define OPEN ((void *)0x7000)
#define EXACT_V ((void *)0x8000) /* VARIED's twin, timed exactly */
#define CALLER ((void *)0x9000)  /* SHORT's caller in the first test */
#define RECUR ((void *)0xa000)   /* calls itself once */
#define WORKER ((void *)0xb000)  /* called by four threads at once */
#define CYC_F ((void *)0xc000)   /* f -> g -> h -> f: a cycle of three */
#define CYC_G ((void *)0xd000)
#define CYC_H ((void *)0xe000)
#define LAGGED ((void *)0xf000)  /* 100 ns, then a call counted half-way */
#define TINY ((void *)0x10000)   /* 1 and 2 ns */
#define DEEP_F ((void *)0x11000) /* f -> g -> h -> f across stack chunks */
#define DEEP_G ((void *)0x12000)
#define DEEP_H ((void *)0x13000)
#define BELOW ((void *)0x14000)  /* the levels under them */

#define EVERY 16
#define BELOW_NS 1000

static struct cnsmp_counters *counters(void *fn)
{
	return cnsmp_thread_counters(cnsmp_tls.t,
				     cnsmp_registry_find((uintptr_t)fn)->id);
}

static uint64_t untimed(void *fn) { return atomic_load(&counters(fn)->untimed); }

/* One call of fn lasting `ns`. */
static void call(void *fn, uint64_t ns)
{
	enter(fn);
	now_ns += ns;
	leave(fn);
}

static void sampling(uint32_t every)
{
	cnsmp_sample_set(every, BELOW_NS);
	cnsmp_registry_invalidate(); /* as codensm_init does */
}

/* fn's delta in batch b, or NULL. */
static const struct cnsmp_fn_delta *find_delta(const struct cnsmp_batch *b, void *fn)
{
	for (size_t i = 0; i < b->nfns; i++)
		if (b->fns[i].id == cnsmp_registry_find((uintptr_t)fn)->id)
			return &b->fns[i];
	return NULL;
}

/* This thread's deltas of fns[0..n) since the last collect (the
 * flusher's view: one collect takes every function's). */
static void deltas(void *const *fns, struct cnsmp_fn_delta *out, int n)
{
	struct cnsmp_batch b;
	memset(out, 0, n * sizeof *out);
	cnsmp_thread_drain_self();
	cnsmp_batch_init(&b);
	assert_int_equal(cnsmp_collect(&b), 0);
	for (int k = 0; k < n; k++) {
		const struct cnsmp_fn_delta *d = find_delta(&b, fns[k]);
		if (d)
			out[k] = *d;
	}
	cnsmp_batch_release(&b);
}

static struct cnsmp_fn_delta delta(void *fn)
{
	struct cnsmp_fn_delta d;
	deltas(&fn, &d, 1);
	return d;
}

static uint64_t hist_sum(const struct cnsmp_fn_delta *d)
{
	uint64_t n = 0;
	for (unsigned b = 0; b < CNSMP_HIST_BUCKETS; b++)
		n += d->hist[b];
	return n;
}

static uint64_t edge(void *from, void *to)
{
	uint64_t key = ((uint64_t)cnsmp_registry_find((uintptr_t)from)->id << 32 |
			cnsmp_registry_find((uintptr_t)to)->id) + 1;
	for (size_t i = 0; i < CNSMP_EDGES_PER_THREAD; i++) {
		struct cnsmp_edge *e = cnsmp_thread_edge_at(cnsmp_tls.t, i);
		if (e && atomic_load(&e->key) == key)
			return atomic_load(&e->calls);
	}
	return 0;
}

static int setup(void **state)
{
	cnsmp_clock_init(); /* calibrates on the real clock, then: */
	cnsmp_clock_is_tsc = 0;
	cnsmp_clock_mult = 1;
	cnsmp_clock_shift = 0;
	cnsmp_hist_build_octaves(cnsmp_clock_mult, cnsmp_clock_shift);
	atomic_store(&cnsmp_active, 1);
	void *fns[] = {SHORT, PARENT, VARIED, SPIKY, LONG, DRIFT, OPEN, EXACT_V,
		       CALLER, RECUR, WORKER, CYC_F, CYC_G, CYC_H, LAGGED, TINY,
		       DEEP_F, DEEP_G, DEEP_H, BELOW};
	const char *names[] = {"svc.short", "svc.parent", "svc.varied", "svc.spiky",
			       "svc.long", "svc.drift", "svc.open", "svc.exact_v",
			       "svc.caller", "svc.recur", "svc.worker", "svc.cyc_f",
			       "svc.cyc_g", "svc.cyc_h", "svc.lagged", "svc.tiny",
			       "svc.deep_f", "svc.deep_g", "svc.deep_h", "svc.below"};
	for (int i = 0; i < 20; i++)
		codensm_enter(fns[i], names[i], NULL, -1.0), codensm_exit(fns[i]);
	sampling(EVERY);
	delta(SHORT); /* start from a clean interval */
	return 0;
}

/* 20,000 calls of a 100 ns function, one in 100 failed, under a caller:
 * calls, errors and the caller's edge are exact; after the probation
 * (256 timed calls) about one call in 16 is timed; a constant duration is
 * estimated exactly, and the histogram holds every call. */
static void counts_are_exact_and_one_call_in_n_is_timed(void **state)
{
	uint64_t u0 = untimed(SHORT), e0 = edge(CALLER, SHORT), uc0 = untimed(CALLER);
	uint64_t c0 = atomic_load(&counters(CALLER)->calls);
	for (int i = 0; i < 20000; i++) {
		enter(CALLER);
		enter(SHORT);
		now_ns += 100;
		if (i % 100 == 0)
			codensm_error();
		leave(SHORT);
		leave(CALLER);
	}
	assert_int_equal(counters(SHORT)->smode, CNSMP_SM_SAMPLED);
	uint64_t timed = 20000 - (untimed(SHORT) - u0);
	/* 256 + 19,744 / 16 = 1,490; the gaps' spread gives sd ~ 20. */
	assert_in_range(timed, 1490 - 150, 1490 + 150);
	assert_int_equal(edge(CALLER, SHORT) - e0, 20000);
	assert_int_equal(atomic_load(&counters(CALLER)->calls) - c0, 20000);
	void *const fns[] = {SHORT, CALLER};
	struct cnsmp_fn_delta both[2];
	deltas(fns, both, 2);
	struct cnsmp_fn_delta d = both[0];
	assert_int_equal(d.calls, 20000);
	assert_int_equal(d.errors, 200);
	/* The payload's estimated_calls: the calls that read no clock. */
	assert_int_equal(d.estimated, 20000 - timed);
	assert_int_equal(both[1].estimated, untimed(CALLER) - uc0);
	assert_true(both[1].estimated > 0);
	assert_int_equal(d.total_ns, 20000 * 100);
	assert_int_equal(d.self_ns, 20000 * 100);
	assert_int_equal(hist_sum(&d), 20000);
	assert_int_equal(d.hist[cnsmp_hist_bucket(100)], 20000);
}

/* estimated_calls is what the README says it is, counted where the
 * clock is read rather than from the runtime's own tally: 20,000 calls
 * of a sampled function read the test's clock twice per timed call
 * (entry and exit) and never otherwise, and the delta's estimated_calls
 * equals the calls that read none. */
static void estimated_calls_equal_the_calls_that_read_no_clock(void **state)
{
	delta(SHORT); /* start from a clean interval */
	uint64_t r0 = clock_reads;
	for (int i = 0; i < 20000; i++) {
		enter(SHORT);
		now_ns += 100;
		leave(SHORT);
	}
	uint64_t reads = clock_reads - r0;
	struct cnsmp_fn_delta d = delta(SHORT);
	assert_int_equal(reads % 2, 0);
	assert_int_equal(d.calls, 20000);
	assert_int_equal(d.estimated, 20000 - reads / 2);
	/* One in 16 timed: 1,250 on average; the gaps' spread gives sd ~ 20. */
	assert_in_range(reads / 2, 1250 - 150, 1250 + 150);
	assert_int_equal(d.total_ns, 20000 * 100);
}

/* The caller's self time leaves its untimed callees out by their
 * estimate: exact here, where the callee always takes 100 ns. */
static void a_callers_self_time_leaves_out_untimed_callees(void **state)
{
	for (int i = 0; i < 3000; i++) {
		enter(PARENT);
		now_ns += 5000;
		call(SHORT, 100);
		leave(PARENT);
	}
	assert_true(untimed(SHORT) > 0);
	struct cnsmp_fn_delta p = delta(PARENT);
	assert_int_equal(p.calls, 3000);
	assert_int_equal(p.total_ns, 3000 * 5100);
	assert_int_equal(p.self_ns, 3000 * 5000);
}

/* Durations for the estimate tests, fixed so both modes see the same. */
static uint64_t varied_ns(int i) { return 50 + (uint64_t)((i * 7919) % 101) * 9; }
static uint64_t spiky_ns(int i) { return i % 16 == 0 ? 900 : 60; }

/* Sampled total against the exact one of the same workload: within four
 * standard errors (README, "Sampled timing": sd of the durations times
 * the untimed calls over the square root of the samples), for durations
 * that vary, and for durations with a period equal to the sampling rate
 * (what fixed gaps would get wrong by 6x). */
static void check_estimate(void *fn, void *twin, uint64_t (*dur)(int), int n)
{
	double sum = 0, sq = 0;
	for (int i = 0; i < n; i++) {
		double x = (double)dur(i);
		sum += x, sq += x * x;
	}
	double mean = sum / n, sd = sqrt(sq / n - mean * mean);

	/* Exact mode: every call timed, the total is the truth. */
	sampling(1);
	delta(twin);
	uint64_t u0 = untimed(twin);
	for (int i = 0; i < n; i++)
		call(twin, dur(i));
	assert_int_equal(untimed(twin), u0);
	struct cnsmp_fn_delta exact = delta(twin);
	assert_int_equal(exact.total_ns, (uint64_t)sum);

	sampling(EVERY);
	delta(fn);
	u0 = untimed(fn);
	for (int i = 0; i < n; i++)
		call(fn, dur(i));
	struct cnsmp_fn_delta est = delta(fn);
	uint64_t timed = (uint64_t)n - (untimed(fn) - u0);
	assert_int_equal(est.calls, n);
	assert_int_equal(hist_sum(&est), n);
	assert_true(timed < (uint64_t)n / 4); /* it did sample */
	/* The untimed calls get the samples' mean; the probation's calls
	 * are exact. */
	double samples = (double)timed - CNSMP_SAMPLE_PROBE;
	double se = sd * (double)(n - timed) / sqrt(samples);
	double err = fabs((double)est.total_ns - (double)exact.total_ns);
	print_message("  %d calls, %llu timed: exact %llu ns, estimate %llu ns, "
		      "error %.2f%% (4 s.e. = %.2f%%)\n", n,
		      (unsigned long long)timed, (unsigned long long)exact.total_ns,
		      (unsigned long long)est.total_ns, 100 * err / exact.total_ns,
		      400 * se / exact.total_ns);
	assert_true(err <= 4 * se);
}

static void the_estimate_is_within_its_error_bound(void **state)
{
	check_estimate(VARIED, EXACT_V, varied_ns, 100000);
}

static void a_pattern_in_step_with_the_rate_is_not_aliased(void **state)
{
	check_estimate(SPIKY, EXACT_V, spiky_ns, 100000);
}

/* A function over the threshold is decided exact after its probation
 * and its cache slot loses the tag: every later call is timed. */
static void a_long_function_stays_exact(void **state)
{
	for (int i = 0; i < 1000; i++)
		call(LONG, 5000);
	assert_int_equal(counters(LONG)->smode, CNSMP_SM_EXACT);
	assert_int_equal(untimed(LONG), 0);
	struct cnsmp_counters *c;
	assert_true(cnsmp_tcache_get(cnsmp_tls.t, (uintptr_t)LONG, &c));
	assert_ptr_equal(c, counters(LONG));
}

/* A sampled function that becomes slow is timed again within a few
 * samples: its estimate passes twice the threshold, a new probation finds
 * it long, and it stays exact. */
static void a_sampled_function_that_slows_down_is_timed_again(void **state)
{
	for (int i = 0; i < 2000; i++)
		call(DRIFT, 100);
	assert_int_equal(counters(DRIFT)->smode, CNSMP_SM_SAMPLED);
	uint64_t u = untimed(DRIFT);
	for (int i = 0; i < 2000; i++)
		call(DRIFT, 10000);
	assert_int_equal(counters(DRIFT)->smode, CNSMP_SM_EXACT);
	/* ~2 samples of 10 us move the estimate past 2 us: tens of untimed
	 * calls, then a probation of 256 timed ones. */
	assert_true(untimed(DRIFT) - u < 200);
	delta(DRIFT);
	uint64_t before = untimed(DRIFT);
	for (int i = 0; i < 500; i++)
		call(DRIFT, 10000);
	assert_int_equal(untimed(DRIFT), before);
	struct cnsmp_fn_delta d = delta(DRIFT);
	assert_int_equal(d.total_ns, 500 * 10000);
}

/* Sampling off again: every call is timed from the next one on. */
static void turning_sampling_off_times_every_call(void **state)
{
	for (int i = 0; i < 100; i++)
		call(SHORT, 100);
	assert_int_equal(counters(SHORT)->smode, CNSMP_SM_SAMPLED);
	sampling(1);
	uint64_t u = untimed(SHORT);
	for (int i = 0; i < 1000; i++)
		call(SHORT, 100);
	assert_int_equal(untimed(SHORT), u);
	sampling(EVERY);
	for (int i = 0; i < 1000; i++)
		call(SHORT, 100);
	assert_true(untimed(SHORT) > u);
}

/* Call fn (timed calls end at once) until a call is untimed, and leave
 * that one open: 1, or 0 if none of 64 calls was untimed. */
static int open_untimed_call(void *fn)
{
	for (int i = 0; i < 64; i++) {
		enter(fn);
		if (cnsmp_frame_at(cnsmp_tls.t, 0)->flags & CNSMP_FR_UNTIMED)
			return 1;
		leave(fn);
	}
	return 0;
}

/* An untimed call still open at exit() is counted once, with its time
 * estimated; one open at a crash is counted once, failed. */
static void untimed_calls_open_at_exit_or_crash_are_counted_once(void **state)
{
	for (int i = 0; i < 2000; i++)
		call(OPEN, 100);
	assert_int_equal(counters(OPEN)->smode, CNSMP_SM_SAMPLED);
	delta(OPEN);
	assert_true(open_untimed_call(OPEN));
	uint64_t calls = atomic_load(&counters(OPEN)->calls);
	cnsmp_thread_end_open_calls();
	assert_int_equal(atomic_load(&counters(OPEN)->calls), calls + 1);
	leave(OPEN); /* unmatched now: ignored */
	assert_int_equal(atomic_load(&counters(OPEN)->calls), calls + 1);

	assert_true(open_untimed_call(OPEN));
	uint64_t errors = atomic_load(&counters(OPEN)->errors);
	calls = atomic_load(&counters(OPEN)->calls);
	cnsmp_thread_crash_mark(11);
	assert_int_equal(atomic_load(&counters(OPEN)->calls), calls + 1);
	assert_int_equal(atomic_load(&counters(OPEN)->errors), errors + 1);
	leave(OPEN);
	struct cnsmp_fn_delta d = delta(OPEN);
	assert_int_equal(hist_sum(&d), d.calls);
}

/* The flusher's arithmetic on its own: each untimed call gets the mean
 * of the delta's samples, the other timed calls count as they are, the
 * histogram gains exactly the untimed calls (largest remainders), and the
 * running estimate stands in when a delta has no sample. */
static void the_flusher_gives_untimed_calls_the_samples_mean(void **state)
{
	struct cnsmp_counters c;
	memset(&c, 0, sizeof c);
	uint64_t hist[CNSMP_HIST_BUCKETS] = {0};
	/* 100 calls: 90 untimed, 10 timed, all 10 samples of 100 ticks. */
	struct cnsmp_sample_delta s = { 10, 1000, 600 };
	uint64_t total = 1000, self = 600;
	hist[3] = 6, hist[5] = 4;
	cnsmp_collect_estimate(&c, 90, &s, &total, &self, hist);
	assert_int_equal(total, 10000);
	assert_int_equal(self, 6000);
	assert_int_equal(hist[3], 60);
	assert_int_equal(hist[5], 40);

	/* 100 calls: 80 untimed; of the 20 timed, 10 are a probation's that
	 * took 19,000 ticks and are not scaled (calls/timed would make the
	 * total 100,000), 10 samples of 100 each. */
	struct cnsmp_sample_delta s2 = { 10, 1000, 1000 };
	memset(hist, 0, sizeof hist);
	hist[4] = 20;
	total = self = 20000;
	cnsmp_collect_estimate(&c, 80, &s2, &total, &self, hist);
	assert_int_equal(total, 20000 + 80 * 100);
	assert_int_equal(self, 20000 + 80 * 100);
	assert_int_equal(hist[4], 100);

	memset(hist, 0, sizeof hist);
	hist[2] = hist[7] = hist[9] = 1; /* 10 more over three equal buckets */
	total = self = 3;
	cnsmp_collect_estimate(&c, 10, &s, &total, &self, hist);
	assert_int_equal(hist[2] + hist[7] + hist[9], 13);
	assert_in_range(hist[2], 4, 5);
	assert_in_range(hist[7], 4, 5);
	assert_in_range(hist[9], 4, 5);

	struct cnsmp_sample_delta none = { 0, 0, 0 };
	memset(hist, 0, sizeof hist);
	atomic_store(&c.est_ticks, 250);
	atomic_store(&c.est_self, 200);
	total = self = 0;
	cnsmp_collect_estimate(&c, 8, &none, &total, &self, hist);
	assert_int_equal(total, 8 * 250);
	assert_int_equal(self, 8 * 200);
	assert_int_equal(hist[cnsmp_clock_bucket(250)], 8);

	memset(hist, 0, sizeof hist); /* nothing untimed: untouched */
	total = self = 77;
	cnsmp_collect_estimate(&c, 0, &s, &total, &self, hist);
	assert_int_equal(total, 77);
	assert_int_equal(hist[cnsmp_clock_bucket(77)], 0);
}

/* A function seen calling itself is never sampled, however short: its
 * inclusive times run from the innermost call's to the whole recursion's,
 * and a 1-in-N sample would miss the few outermost calls that hold most
 * of its time. */
static void a_recursive_function_is_timed_exactly(void **state)
{
	for (int i = 0; i < 1000; i++) {
		enter(RECUR);
		now_ns += 10;
		call(RECUR, 20);
		now_ns += 10;
		leave(RECUR);
	}
	assert_int_equal(counters(RECUR)->smode, CNSMP_SM_EXACT);
	assert_int_equal(untimed(RECUR), 0);
	struct cnsmp_fn_delta d = delta(RECUR);
	assert_int_equal(d.calls, 2000);
	assert_int_equal(d.total_ns, 1000 * (40 + 20));
	assert_int_equal(d.self_ns, 1000 * (20 + 20));
}

/* The same through other functions: f -> g -> h -> f.  f is on the
 * stack twice and is never sampled; g and h, each open once, are short
 * and sampled; every count is exact either way. */
static void a_function_recursive_through_others_is_timed_exactly(void **state)
{
	for (int i = 0; i < 1000; i++) {
		enter(CYC_F);
		now_ns += 10;
		enter(CYC_G);
		now_ns += 10;
		enter(CYC_H);
		now_ns += 10;
		call(CYC_F, 20);
		now_ns += 10;
		leave(CYC_H);
		leave(CYC_G);
		leave(CYC_F);
	}
	assert_int_equal(counters(CYC_F)->smode, CNSMP_SM_EXACT);
	assert_int_equal(untimed(CYC_F), 0);
	assert_int_equal(counters(CYC_G)->smode, CNSMP_SM_SAMPLED);
	assert_true(untimed(CYC_G) > 0);
	assert_int_equal(edge(CYC_H, CYC_F), 1000);
	void *const fns[] = {CYC_F, CYC_G, CYC_H};
	struct cnsmp_fn_delta d[3];
	deltas(fns, d, 3);
	assert_int_equal(d[0].calls, 2000);
	assert_int_equal(d[0].total_ns, 1000 * (60 + 20));
	/* The outer f's self time leaves out g's untimed calls at g's
	 * running estimate, which starts 1 ns short (g's probation counts
	 * setup's 0 ns call) until g's first samples. */
	assert_in_range(d[0].self_ns, 1000 * (10 + 20), 1000 * (10 + 20) + 32);
	assert_int_equal(hist_sum(&d[0]), 2000);
	assert_int_equal(d[1].calls, 1000);
	assert_int_equal(d[2].calls, 1000);
	assert_int_equal(hist_sum(&d[1]), 1000);
}

/* The same cycle with f at the inline stack chunk's last slot and g at
 * the next chunk's first: the search for f above its second call
 * crosses from one chunk to the other. */
static void a_recursion_across_stack_chunks_is_found(void **state)
{
	for (int i = 0; i < CNSMP_STACK_FIRST - 1; i++)
		enter(BELOW);
	for (int i = 0; i < 300; i++) {
		enter(DEEP_F);
		enter(DEEP_G);
		assert_int_equal(cnsmp_tls.t->depth, CNSMP_STACK_FIRST + 1);
		enter(DEEP_H);
		call(DEEP_F, 20);
		leave(DEEP_H);
		leave(DEEP_G);
		leave(DEEP_F);
	}
	for (int i = 0; i < CNSMP_STACK_FIRST - 1; i++)
		leave(BELOW);
	assert_int_equal(counters(DEEP_F)->smode, CNSMP_SM_EXACT);
	assert_int_equal(untimed(DEEP_F), 0);
	assert_int_equal(counters(DEEP_G)->smode, CNSMP_SM_SAMPLED);
	assert_int_equal(atomic_load(&counters(DEEP_F)->calls), 600 + 1);
	assert_int_equal(cnsmp_tls.t->depth, 0);
}

/* A body that failed cleanly is merged into the next one (flusher.c):
 * its estimated calls add up with the next delta's, like its calls. */
static void estimated_calls_add_up_when_a_delta_is_merged_back(void **state)
{
	struct cnsmp_batch first, second;
	uint64_t u0 = untimed(SHORT);
	for (int i = 0; i < 3000; i++)
		call(SHORT, 100);
	uint64_t u1 = untimed(SHORT);
	cnsmp_thread_drain_self();
	cnsmp_batch_init(&first);
	assert_int_equal(cnsmp_collect(&first), 0);
	for (int i = 0; i < 5000; i++)
		call(SHORT, 100);
	cnsmp_thread_drain_self();
	cnsmp_batch_init(&second);
	assert_int_equal(cnsmp_collect(&second), 0);
	assert_int_equal(find_delta(&first, SHORT)->estimated, u1 - u0);
	assert_true(u1 - u0 > 2000);
	assert_int_equal(cnsmp_batch_merge(&second, &first), 0);
	const struct cnsmp_fn_delta *d = find_delta(&second, SHORT);
	assert_int_equal(d->calls, 8000);
	assert_int_equal(d->estimated, untimed(SHORT) - u0);
	assert_int_equal(d->total_ns, 8000 * 100);
	cnsmp_batch_release(&first);
	cnsmp_batch_release(&second);
}

/* A collect can find an untimed call in calls but not yet in untimed:
 * the owner bumps untimed just after calls, and the flusher can be
 * preempted between its two loads while the owner goes on.  The call
 * ships with no time, and its estimate with the next delta, which has
 * no new call.  The owner's two stores are made here by hand, with a
 * collect between them: a preemption cannot be had on demand. */
static void an_untimed_call_collected_half_counted_gets_its_time_next(void **state)
{
	for (int i = 0; i < 1000; i++)
		call(LAGGED, 100);
	struct cnsmp_counters *c = counters(LAGGED);
	assert_int_equal(c->smode, CNSMP_SM_SAMPLED);
	struct cnsmp_fn_delta d = delta(LAGGED);
	assert_int_equal(d.calls, 1000);
	assert_int_equal(d.total_ns, 1000 * 100);
	atomic_fetch_add(&c->calls, 1); /* the owner's first store */
	d = delta(LAGGED);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.estimated, 0);
	assert_int_equal(d.total_ns, 0);
	atomic_fetch_add(&c->untimed, 1); /* and its second */
	d = delta(LAGGED);
	assert_int_equal(d.calls, 0);
	assert_int_equal(d.estimated, 1);
	assert_int_equal(d.total_ns, 100);
	assert_int_equal(d.self_ns, 100);
	assert_int_equal(hist_sum(&d), 1);
	assert_int_equal(d.hist[cnsmp_hist_bucket(100)], 1);
	d = delta(LAGGED);
	assert_int_equal(d.estimated, 0); /* once */
	assert_int_equal(d.total_ns, 0);
}

/* A thread bins a 1 ns call in slot 1 of its counters, which no bucket
 * uses (internal.h: the slots step by one where the buckets jump); the
 * delta has it in bucket 0, where docs/payload.md puts everything under
 * 2 ns.  The test's clock gives the exact durations. */
static void a_one_ns_call_is_in_bucket_zero(void **state)
{
	call(TINY, 1);
	call(TINY, 1);
	call(TINY, 2);
	assert_int_equal(atomic_load(&counters(TINY)->hist[1]), 2);
	struct cnsmp_fn_delta d = delta(TINY);
	assert_int_equal(d.calls, 3);
	assert_int_equal(d.hist[0], 2);
	assert_int_equal(d.hist[1], 0);
	assert_int_equal(d.hist[2], 1);
}

static _Atomic int workers_left;

static void *sampled_worker(void *arg)
{
	for (int i = 0; i < 20000; i++)
		call(WORKER, 100);
	atomic_fetch_sub(&workers_left, 1);
	return arg;
}

/* Four threads make sampled calls while this one collects over and over
 * (the flusher's side): no call is lost or counted twice, and with every
 * call lasting 100 ns each delta's estimate is exact, whichever of a
 * thread's samples it holds.  Under TSan (make test) this is also the
 * race check of the sampled counters. */
static void collecting_while_sampled_threads_run_loses_nothing(void **state)
{
	pthread_t th[4];
	uint64_t calls = 0, total = 0, hist = 0;
	delta(WORKER);
	atomic_store(&workers_left, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, sampled_worker, NULL), 0);
	for (;;) {
		int done = atomic_load(&workers_left) == 0;
		struct cnsmp_fn_delta d = delta(WORKER);
		calls += d.calls, total += d.total_ns, hist += hist_sum(&d);
		if (done)
			break;
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	struct cnsmp_fn_delta d = delta(WORKER); /* what the threads binned at exit */
	calls += d.calls, total += d.total_ns, hist += hist_sum(&d);
	assert_int_equal(calls, 80000);
	assert_int_equal(total, 80000 * 100);
	assert_int_equal(hist, 80000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(counts_are_exact_and_one_call_in_n_is_timed),
		cmocka_unit_test(a_callers_self_time_leaves_out_untimed_callees),
		cmocka_unit_test(the_estimate_is_within_its_error_bound),
		cmocka_unit_test(a_pattern_in_step_with_the_rate_is_not_aliased),
		cmocka_unit_test(a_long_function_stays_exact),
		cmocka_unit_test(a_sampled_function_that_slows_down_is_timed_again),
		cmocka_unit_test(turning_sampling_off_times_every_call),
		cmocka_unit_test(untimed_calls_open_at_exit_or_crash_are_counted_once),
		cmocka_unit_test(the_flusher_gives_untimed_calls_the_samples_mean),
		cmocka_unit_test(a_recursive_function_is_timed_exactly),
		cmocka_unit_test(a_function_recursive_through_others_is_timed_exactly),
		cmocka_unit_test(a_recursion_across_stack_chunks_is_found),
		cmocka_unit_test(estimated_calls_add_up_when_a_delta_is_merged_back),
		cmocka_unit_test(estimated_calls_equal_the_calls_that_read_no_clock),
		cmocka_unit_test(an_untimed_call_collected_half_counted_gets_its_time_next),
		cmocka_unit_test(a_one_ns_call_is_in_bucket_zero),
		cmocka_unit_test(collecting_while_sampled_threads_run_loses_nothing),
	};
	return cmocka_run_group_tests_name("sample", tests, setup, NULL);
}
