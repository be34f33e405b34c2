/* test_collect.c: per-thread counters -> batches of deltas: exact across
 * collects and across threads that come and go, the signal-safe variant,
 * and the arithmetic of merging a failed batch into the next. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "hooks.h"

#define F ((void *)0x1000)
#define G ((void *)0x2000)
#define W ((void *)0x3000)
#define CALLER(i) ((void *)(0x10000 + 0x100 * (uintptr_t)(i)))

static const struct cnsmp_fn_delta *fn_in(const struct cnsmp_batch *b, void *fn)
{
	for (size_t i = 0; i < b->nfns; i++)
		if (b->fns[i].id == id_of(fn))
			return &b->fns[i];
	return NULL;
}

static uint64_t calls_in(const struct cnsmp_batch *b, void *fn)
{
	const struct cnsmp_fn_delta *d = fn_in(b, fn);
	return d ? d->calls : 0;
}

static void call(void *fn, int fail)
{
	codensm_enter(fn, NULL, NULL, -1.0);
	if (fail)
		codensm_error();
	codensm_exit(fn);
}

static int setup(void **state)
{
	atomic_store(&cnsmp_active, 1);
	codensm_enter(F, "svc.f", NULL, -1.0), codensm_exit(F);
	codensm_enter(G, "svc.g", NULL, -1.0), codensm_exit(G);
	codensm_enter(W, "svc.worker", NULL, -1.0), codensm_exit(W);
	for (int i = 0; i < 10; i++) {
		char name[32];
		snprintf(name, sizeof name, "svc.caller%d", i);
		codensm_enter(CALLER(i), name, NULL, -1.0), codensm_exit(CALLER(i));
	}
	struct cnsmp_batch b;
	cnsmp_batch_init(&b);
	cnsmp_collect(&b); /* start from a clean interval */
	cnsmp_batch_release(&b);
	return 0;
}

static void deltas_are_exact_across_collects(void **state)
{
	struct cnsmp_batch b;
	cnsmp_batch_init(&b);
	for (int i = 0; i < 5; i++)
		call(F, i < 2);
	assert_int_equal(cnsmp_collect(&b), 0);
	const struct cnsmp_fn_delta *d = fn_in(&b, F);
	assert_non_null(d);
	assert_int_equal(d->calls, 5);
	assert_int_equal(d->errors, 2);
	/* On the TSC, the last ordinary call's histogram slot waits for the
	 * thread's next call (thread.h): four of five are binned.  On the
	 * vDSO clock every exit takes the slow path, which bins at once. */
	int lag = cnsmp_clock_is_tsc;
	uint64_t hist = 0;
	for (unsigned k = 0; k < CNSMP_HIST_BUCKETS; k++)
		hist += d->hist[k];
	assert_int_equal(hist, 5 - lag);
	assert_true(d->self_ns == d->total_ns); /* no tracked callees */
	assert_true(d->max_ns <= d->total_ns);
	assert_int_equal(b.nincidents, 1);
	assert_string_equal(b.incidents[0].kind, "error");
	assert_int_equal(b.incidents[0].count, 2);
	assert_int_equal(b.incidents[0].depth, 1);
	assert_int_equal(b.incidents[0].chain[0], id_of(F));
	assert_true(b.start > 0 && b.start <= b.end);
	double end = b.end;

	for (int i = 0; i < 3; i++)
		call(F, 0);
	assert_int_equal(cnsmp_collect(&b), 0);
	assert_int_equal(b.nfns, 1);
	assert_int_equal(calls_in(&b, F), 3);
	assert_int_equal(fn_in(&b, F)->errors, 0);
	assert_int_equal(b.nincidents, 0);
	assert_true(b.start == end); /* intervals follow each other */

	assert_int_equal(cnsmp_collect(&b), 0);
	assert_true(cnsmp_batch_is_empty(&b));
	/* What codensm_flush does first: the pending slot is binned and goes
	 * out alone, a histogram count without a call. */
	cnsmp_thread_drain_self();
	assert_int_equal(cnsmp_collect(&b), 0);
	assert_int_equal(b.nfns, (size_t)lag);
	if (!lag) {
		cnsmp_batch_release(&b);
		return;
	}
	assert_int_equal(calls_in(&b, F), 0);
	uint64_t late = 0;
	for (unsigned k = 0; k < CNSMP_HIST_BUCKETS; k++)
		late += fn_in(&b, F)->hist[k];
	assert_int_equal(late, 1);
	assert_int_equal(cnsmp_collect(&b), 0);
	assert_true(cnsmp_batch_is_empty(&b));
	cnsmp_batch_release(&b);
}

static void edges_are_deltas_by_pair(void **state)
{
	struct cnsmp_batch b;
	cnsmp_batch_init(&b);
	for (int i = 0; i < 4; i++) {
		codensm_enter(F, NULL, NULL, -1.0);
		call(G, 0);
		codensm_exit(F);
	}
	assert_int_equal(cnsmp_collect(&b), 0);
	assert_int_equal(b.nedges, 1);
	assert_int_equal(b.edges[0].caller, id_of(F));
	assert_int_equal(b.edges[0].callee, id_of(G));
	assert_int_equal(b.edges[0].calls, 4);
	const struct cnsmp_fn_delta *f = fn_in(&b, F), *g = fn_in(&b, G);
	assert_true(f->self_ns + g->total_ns <= f->total_ns);
	call(F, 0);
	assert_int_equal(cnsmp_collect(&b), 0);
	assert_int_equal(b.nedges, 0);
	cnsmp_batch_release(&b);
}

static void a_function_ships_at_most_eight_chains(void **state)
{
	struct cnsmp_batch b;
	cnsmp_batch_init(&b);
	for (int i = 0; i < 10; i++) {
		codensm_enter(CALLER(i), NULL, NULL, -1.0);
		for (int k = 0; k <= i; k++) /* caller i fails G i+1 times */
			call(G, 1);
		codensm_exit(CALLER(i));
	}
	assert_int_equal(cnsmp_collect(&b), 0);
	assert_int_equal(fn_in(&b, G)->errors, 55);
	assert_int_equal(b.nincidents, 8);
	for (size_t i = 0; i < b.nincidents; i++) { /* the 8 most frequent */
		assert_int_equal(b.incidents[i].depth, 2);
		assert_int_equal(b.incidents[i].chain[0], id_of(CALLER(9 - i)));
		assert_int_equal(b.incidents[i].count, 10 - i);
	}
	cnsmp_batch_release(&b);
}

static void the_signal_safe_collect_does_not_advance(void **state)
{
	struct cnsmp_batch s, b;
	cnsmp_batch_init(&s);
	cnsmp_batch_init(&b);
	assert_int_equal(cnsmp_batch_reserve(&s, CNSMP_MAX_TRACKED,
					     CNSMP_EDGES_PER_THREAD * 8, 512), 0);
	size_t cap = s.capfns;
	for (int i = 0; i < 7; i++)
		call(F, i == 0);
	assert_int_equal(cnsmp_collect_signal_safe(&s), 0);
	assert_int_equal(calls_in(&s, F), 7);
	assert_int_equal(cnsmp_collect_signal_safe(&s), 0);
	assert_int_equal(calls_in(&s, F), 7);
	assert_int_equal(fn_in(&s, F)->errors, 1);
	assert_int_equal(s.nincidents, 1);
	assert_int_equal(s.capfns, cap); /* nothing reallocated */
	assert_int_equal(cnsmp_collect(&b), 0);
	assert_int_equal(calls_in(&b, F), 7);
	assert_int_equal(cnsmp_collect_signal_safe(&s), 0);
	assert_true(cnsmp_batch_is_empty(&s));
	cnsmp_batch_release(&s);
	cnsmp_batch_release(&b);
}

/* ---- 64 threads, some gone before the first collect ------------------- */

#define THREADS 64
#define N 1000
static pthread_barrier_t half_done, collected;

static void *worker(void *arg)
{
	long i = (long)arg;
	for (int k = 0; k < N / 2; k++)
		call(W, 0);
	if (i % 2 == 0) { /* these exit before the first collect */
		for (int k = N / 2; k < N; k++)
			call(W, 0);
		pthread_barrier_wait(&half_done);
		return NULL;
	}
	pthread_barrier_wait(&half_done);
	pthread_barrier_wait(&collected);
	for (int k = N / 2; k < N; k++)
		call(W, 0);
	return NULL;
}

static void sixty_four_threads_sum_exactly(void **state)
{
	pthread_t th[THREADS];
	struct cnsmp_batch b, total;
	cnsmp_batch_init(&b);
	cnsmp_batch_init(&total);
	pthread_barrier_init(&half_done, NULL, THREADS + 1);
	pthread_barrier_init(&collected, NULL, THREADS / 2 + 1);
	for (long i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, (void *)i), 0);
	pthread_barrier_wait(&half_done);
	for (long i = 0; i < THREADS; i += 2)
		pthread_join(th[i], NULL);
	assert_int_equal(cnsmp_collect(&b), 0);
	uint64_t first = calls_in(&b, W);
	assert_true(first >= THREADS / 2 * N);
	assert_int_equal(cnsmp_batch_merge(&total, &b), 0);
	pthread_barrier_wait(&collected);
	for (long i = 1; i < THREADS; i += 2)
		pthread_join(th[i], NULL);
	assert_int_equal(cnsmp_collect(&b), 0);
	assert_int_equal(cnsmp_batch_merge(&total, &b), 0);
	assert_int_equal(calls_in(&total, W), (uint64_t)THREADS * N);
	assert_int_equal(fn_in(&total, W)->errors, 0);
	/* A third collect finds nothing, and new threads take over the
	 * exited threads' blocks. */
	assert_int_equal(cnsmp_collect(&b), 0);
	assert_int_equal(calls_in(&b, W), 0);
	size_t before = blocks();
	pthread_barrier_destroy(&half_done);
	pthread_barrier_init(&half_done, NULL, 8 + 1);
	for (long i = 0; i < 8; i++) /* even: they exit at once */
		assert_int_equal(pthread_create(&th[i], NULL, worker,
						(void *)(2 * i)), 0);
	pthread_barrier_wait(&half_done);
	for (long i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(blocks(), before);
	assert_int_equal(cnsmp_collect(&b), 0);
	assert_int_equal(calls_in(&b, W), 8 * N);
	pthread_barrier_destroy(&half_done);
	pthread_barrier_destroy(&collected);
	cnsmp_batch_release(&b);
	cnsmp_batch_release(&total);
}

/* ---- threads that come and go between collects ------------------------- */

static void *short_lived(void *arg)
{
	for (int k = 0; k < N; k++)
		call(W, k % 10 == 0);
	return arg;
}

/* A program that starts threads faster than it flushes: each new thread
 * takes over the block of one that exited, without waiting for a collect,
 * and the next collect holds every owner's calls exactly once. */
static void exited_blocks_are_taken_over_before_any_collect(void **state)
{
	struct cnsmp_batch b;
	cnsmp_batch_init(&b);
	assert_int_equal(cnsmp_collect(&b), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, short_lived, NULL), 0);
	pthread_join(th, NULL);
	size_t before = blocks();
	for (int i = 0; i < 200; i++) {
		assert_int_equal(pthread_create(&th, NULL, short_lived, NULL), 0);
		pthread_join(th, NULL);
	}
	assert_int_equal(blocks(), before);
	assert_int_equal(cnsmp_collect(&b), 0);
	assert_int_equal(calls_in(&b, W), 201 * N);
	assert_int_equal(fn_in(&b, W)->errors, 201 * N / 10);
	assert_int_equal(cnsmp_collect(&b), 0);
	assert_int_equal(calls_in(&b, W), 0);
	cnsmp_batch_release(&b);
}

/* ---- collecting while the owners write -------------------------------- */

#define RACERS 8
#define RACE_N 100000
static _Atomic int racers_done;

static void *racer(void *arg)
{
	for (int k = 0; k < RACE_N; k++) {
		codensm_enter(F, NULL, NULL, -1.0);
		call(G, k % 3 == 0);
		codensm_exit(F);
	}
	atomic_fetch_add(&racers_done, 1);
	return NULL;
}

static void collecting_while_threads_run_loses_nothing(void **state)
{
	pthread_t th[RACERS];
	struct cnsmp_batch b, total;
	cnsmp_batch_init(&b);
	cnsmp_batch_init(&total);
	for (long i = 0; i < RACERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, racer, NULL), 0);
	int rounds = 0;
	do {
		assert_int_equal(cnsmp_collect(&b), 0);
		const struct cnsmp_fn_delta *g = fn_in(&b, G);
		if (g)
			assert_true(g->errors <= g->calls);
		assert_int_equal(cnsmp_batch_merge(&total, &b), 0);
		rounds++;
	} while (atomic_load(&racers_done) < RACERS);
	for (long i = 0; i < RACERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(cnsmp_collect(&b), 0);
	assert_int_equal(cnsmp_batch_merge(&total, &b), 0);
	assert_int_equal(calls_in(&total, F), RACERS * RACE_N);
	assert_int_equal(calls_in(&total, G), RACERS * RACE_N);
	assert_int_equal(fn_in(&total, G)->errors, RACERS * ((RACE_N + 2) / 3));
	uint64_t fg = 0;
	for (size_t i = 0; i < total.nedges; i++)
		if (total.edges[i].caller == id_of(F) &&
		    total.edges[i].callee == id_of(G))
			fg = total.edges[i].calls;
	assert_int_equal(fg, RACERS * RACE_N);
	uint64_t incidents = 0;
	for (size_t i = 0; i < total.nincidents; i++)
		incidents += total.incidents[i].count;
	assert_int_equal(incidents, RACERS * ((RACE_N + 2) / 3));
	assert_true(rounds > 1);
	cnsmp_batch_release(&b);
	cnsmp_batch_release(&total);
}

/* ---- merge ------------------------------------------------------------- */

static void merging_adds_counts_and_keeps_extremes(void **state)
{
	struct cnsmp_batch a, b;
	cnsmp_batch_init(&a);
	cnsmp_batch_init(&b);
	assert_int_equal(cnsmp_batch_reserve(&a, 2, 2, 2), 0);
	assert_int_equal(cnsmp_batch_reserve(&b, 2, 2, 2), 0);
	a.fns[0] = (struct cnsmp_fn_delta){.id = 7, .calls = 10, .errors = 1,
		.total_ns = 100, .self_ns = 50, .max_ns = 30};
	a.fns[0].hist[5] = 10;
	a.fns[1] = (struct cnsmp_fn_delta){.id = 3, .calls = 1, .total_ns = 9,
		.self_ns = 9, .max_ns = 9};
	a.nfns = 2;
	b.fns[0] = (struct cnsmp_fn_delta){.id = 7, .calls = 5, .errors = 2,
		.total_ns = 200, .self_ns = 20, .max_ns = 80};
	b.fns[0].hist[5] = 2;
	b.fns[0].hist[9] = 3;
	b.nfns = 1;
	a.edges[0] = (struct cnsmp_edge_delta){3, 7, 4};
	a.nedges = 1;
	b.edges[0] = (struct cnsmp_edge_delta){3, 7, 6};
	b.edges[1] = (struct cnsmp_edge_delta){7, 3, 1};
	b.nedges = 2;
	struct cnsmp_incident in = {.depth = 2, .chain = {3, 7}, .kind = "error",
		.count = 2, .first_seen = 100.0, .last_seen = 110.0};
	a.incidents[0] = in;
	a.nincidents = 1;
	in.count = 3, in.first_seen = 90.0, in.last_seen = 105.0;
	b.incidents[0] = in;
	strcpy(in.kind, "exception");
	b.incidents[1] = in;
	b.nincidents = 2;
	a.dropped = 1, a.repairs = 2, a.start = 50.0, a.end = 60.0;
	b.dropped = 10, b.repairs = 20, b.start = 60.0, b.end = 75.0;

	assert_int_equal(cnsmp_batch_merge(&a, &b), 0);
	assert_int_equal(a.nfns, 2);
	assert_int_equal(a.fns[0].id, 3);
	assert_int_equal(a.fns[0].calls, 1);
	const struct cnsmp_fn_delta *d = &a.fns[1];
	assert_int_equal(d->id, 7);
	assert_int_equal(d->calls, 15);
	assert_int_equal(d->errors, 3);
	assert_int_equal(d->total_ns, 300);
	assert_int_equal(d->self_ns, 70);
	assert_int_equal(d->max_ns, 80);
	assert_int_equal(d->hist[5], 12);
	assert_int_equal(d->hist[9], 3);
	assert_int_equal(a.nedges, 2);
	assert_int_equal(a.edges[0].calls, 10); /* 3 -> 7 */
	assert_int_equal(a.edges[1].caller, 7);
	assert_int_equal(a.edges[1].calls, 1);
	assert_int_equal(a.nincidents, 2);
	for (size_t i = 0; i < 2; i++) {
		if (strcmp(a.incidents[i].kind, "error") == 0) {
			assert_int_equal(a.incidents[i].count, 5);
			assert_true(a.incidents[i].first_seen == 90.0);
			assert_true(a.incidents[i].last_seen == 110.0);
		} else {
			assert_string_equal(a.incidents[i].kind, "exception");
			assert_int_equal(a.incidents[i].count, 3);
		}
	}
	assert_int_equal(a.dropped, 11);
	assert_int_equal(a.repairs, 22);
	assert_true(a.start == 50.0 && a.end == 75.0);
	assert_false(cnsmp_batch_is_empty(&a));
	cnsmp_batch_release(&a);
	cnsmp_batch_release(&b);
	assert_true(cnsmp_batch_is_empty(&a));
}

/* Fill b with the ids of [0, n) that `pick` keeps, in the order `step`
 * walks them, each with calls = id * mul + 1. */
static void fill(struct cnsmp_batch *b, size_t n, unsigned pick, size_t step,
		 uint64_t mul)
{
	assert_int_equal(cnsmp_batch_reserve(b, n, 0, 0), 0);
	b->nfns = 0;
	for (size_t k = 0; k < n; k++) {
		uint32_t id = (uint32_t)(k * step % n);
		if ((id * 2654435761u >> 7) % pick == 0)
			b->fns[b->nfns++] = (struct cnsmp_fn_delta){.id = id,
				.calls = id * mul + 1, .max_ns = id};
	}
}

/* Sorted batches merge in one pass, unsorted ones by sorting; both give
 * each id once, in order, with the sum of its calls. */
static void merging_thousands_gives_each_function_once_in_order(void **state)
{
	(void)state;
	enum { NIDS = 5000 };
	for (int unsorted = 0; unsorted < 2; unsorted++) {
		struct cnsmp_batch a, b;
		cnsmp_batch_init(&a);
		cnsmp_batch_init(&b);
		fill(&a, NIDS, 2, 1, 1);
		/* 7 is prime to 5000: every id, in a scrambled order. */
		fill(&b, NIDS, 3, unsorted ? 7 : 1, 10);
		size_t na = a.nfns, nb = b.nfns, both = 0;
		for (uint32_t id = 0; id < NIDS; id++)
			both += (id * 2654435761u >> 7) % 2 == 0 && (id * 2654435761u >> 7) % 3 == 0;
		assert_int_equal(cnsmp_batch_merge(&a, &b), 0);
		assert_int_equal(a.nfns, na + nb - both);
		uint64_t in_a = 0, in_b = 0;
		for (size_t i = 0; i < a.nfns; i++) {
			const struct cnsmp_fn_delta *d = &a.fns[i];
			if (i)
				assert_true(a.fns[i - 1].id < d->id);
			uint32_t h = d->id * 2654435761u >> 7;
			uint64_t want = (h % 2 == 0 ? d->id + 1 : 0) +
					(h % 3 == 0 ? d->id * 10 + 1 : 0);
			assert_int_equal(d->calls, want);
			assert_int_equal(d->max_ns, d->id);
			in_a += h % 2 == 0;
			in_b += h % 3 == 0;
		}
		assert_int_equal(in_a, na);
		assert_int_equal(in_b, nb);
		cnsmp_batch_release(&a);
		cnsmp_batch_release(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(deltas_are_exact_across_collects),
		cmocka_unit_test(edges_are_deltas_by_pair),
		cmocka_unit_test(a_function_ships_at_most_eight_chains),
		cmocka_unit_test(the_signal_safe_collect_does_not_advance),
		cmocka_unit_test(sixty_four_threads_sum_exactly),
		cmocka_unit_test(exited_blocks_are_taken_over_before_any_collect),
		cmocka_unit_test(collecting_while_threads_run_loses_nothing),
		cmocka_unit_test(merging_adds_counts_and_keeps_extremes),
		cmocka_unit_test(merging_thousands_gives_each_function_once_in_order),
	};
	return cmocka_run_group_tests_name("collect", tests, setup, NULL);
}
