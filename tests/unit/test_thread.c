/* test_thread.c: the hooks and the shadow stack: nesting, self time,
 * edges, repairs, errors, exceptions (GCC and clang styles), depth
 * overflow, crashes, fork, and the excluded path touching nothing. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "hooks.h"

/* Fake function addresses; names are given on first sight. */
#define A ((void *)0x1000)
#define B ((void *)0x2000)
#define C ((void *)0x3000)
#define D ((void *)0x4000)
#define R ((void *)0x5000)
#define T ((void *)0x6000)
#define NOISY ((void *)0x7000)

static struct cnsmp_counters *counters(void *fn)
{
	return cnsmp_thread_counters(cnsmp_tls.t, id_of(fn));
}

/* Calls of fn counted on thread t's block (calls: on this thread's). */
static uint64_t calls_on(struct cnsmp_thread *t, void *fn)
{
	return atomic_load(&cnsmp_thread_counters(t, id_of(fn))->calls);
}

static uint64_t calls(void *fn) { return calls_on(cnsmp_tls.t, fn); }
/* Repairs the shadow stacks needed so far (what _meta.repairs ships). */
static uint64_t repairs_so_far(void) { return atomic_load(&cnsmp_thread_repairs); }
static uint64_t errors(void *fn) { return atomic_load(&counters(fn)->errors); }

static uint64_t edge(void *from, void *to)
{
	uint64_t key = ((uint64_t)id_of(from) << 32 | id_of(to)) + 1;
	for (size_t i = 0; i < CNSMP_EDGES_PER_THREAD; i++) {
		struct cnsmp_edge *e = cnsmp_thread_edge_at(cnsmp_tls.t, i);
		if (e && atomic_load(&e->key) == key)
			return atomic_load(&e->calls);
	}
	return 0;
}

/* Count of this thread's incident of `kind` whose chain is `fns`. */
static uint64_t incident(const char *kind, int signo, void **fns, uint32_t n)
{
	struct cnsmp_incident_slot *table = atomic_load(&cnsmp_tls.t->incidents);
	for (size_t i = 0; table && i < CNSMP_INCIDENTS_PER_THREAD; i++) {
		struct cnsmp_incident_slot *s = &table[i];
		if (!atomic_load(&s->hash) || strcmp(s->kind, kind) ||
		    s->signo != signo || s->depth != n)
			continue;
		uint32_t k = 0;
		while (k < n && s->chain[k] == id_of(fns[k]))
			k++;
		if (k == n)
			return atomic_load(&s->count);
	}
	return 0;
}

static int setup(void **state)
{
	atomic_store(&cnsmp_active, 1);
	codensm_enter(A, "svc.a", NULL, -1.0), codensm_exit(A);
	codensm_enter(B, "svc.b", NULL, -1.0), codensm_exit(B);
	codensm_enter(C, "svc.c", NULL, -1.0), codensm_exit(C);
	codensm_enter(D, "svc.d", NULL, -1.0), codensm_exit(D);
	codensm_enter(R, "svc.recursive", NULL, -1.0), codensm_exit(R);
	codensm_enter(T, "svc.timed", NULL, -1.0), codensm_exit(T);
	return 0;
}

static void nested_calls_count_edges_and_self_time(void **state)
{
	uint64_t a = calls(A), b = calls(B), ab = edge(A, B);
	uint64_t at = atomic_load(&counters(A)->total_ticks);
	uint64_t as = atomic_load(&counters(A)->self_ticks);
	uint64_t bt = atomic_load(&counters(B)->total_ticks);
	enter(A);
	enter(B);
	leave(B);
	leave(A);
	assert_int_equal(calls(A), a + 1);
	assert_int_equal(calls(B), b + 1);
	assert_int_equal(edge(A, B), ab + 1);
	uint64_t dat = atomic_load(&counters(A)->total_ticks) - at;
	uint64_t das = atomic_load(&counters(A)->self_ticks) - as;
	uint64_t dbt = atomic_load(&counters(B)->total_ticks) - bt;
	assert_true(das + dbt <= dat); /* self = total - time in B */
	assert_int_equal(cnsmp_tls.t->depth, 0);
}

/* Edges into `to` from any caller. */
static uint64_t edges_into(void *to)
{
	uint64_t n = 0;
	for (size_t i = 0; i < CNSMP_EDGES_PER_THREAD; i++) {
		struct cnsmp_edge *e = cnsmp_thread_edge_at(cnsmp_tls.t, i);
		uint64_t key = e ? atomic_load(&e->key) : 0;
		if (key && (uint32_t)(key - 1) == id_of(to))
			n += atomic_load(&e->calls);
	}
	return n;
}

/* A call with no tracked caller has no edge; the same function called
 * from a tracked caller afterwards has exactly those. */
static void a_call_at_the_root_counts_no_edge(void **state)
{
	uint64_t d = calls(D), into = edges_into(D), ad = edge(A, D);
	for (int i = 0; i < 3; i++)
		enter(D), leave(D);
	assert_int_equal(calls(D), d + 3);
	assert_int_equal(edges_into(D), into);
	enter(A), enter(D), leave(D), leave(A);
	enter(D), leave(D);
	assert_int_equal(edge(A, D), ad + 1);
	assert_int_equal(edges_into(D), into + 1);
	assert_int_equal(calls(D), d + 5);
}

static void a_missing_exit_is_repaired_by_the_callers_exit(void **state)
{
	uint64_t r = repairs_so_far(), a = calls(A), b = calls(B), c = calls(C);
	enter(A);
	enter(B);
	enter(C); /* B and C never exit (longjmp) */
	leave(A);
	assert_int_equal(repairs_so_far(), r + 1);
	assert_int_equal(calls(A), a + 1);
	assert_int_equal(calls(B), b + 1);
	assert_int_equal(calls(C), c + 1);
	assert_int_equal(errors(B), 0);
	assert_int_equal(cnsmp_tls.t->depth, 0);
}

static void an_exit_never_entered_is_ignored_and_counted(void **state)
{
	uint64_t r = repairs_so_far(), u = atomic_load(&cnsmp_thread_unmatched);
	uint64_t d = calls(D);
	enter(A);
	leave(D);
	leave(A);
	assert_int_equal(atomic_load(&cnsmp_thread_unmatched), u + 1);
	assert_int_equal(repairs_so_far(), r);
	assert_int_equal(calls(D), d);
}

static void codensm_error_fails_the_innermost_call_once(void **state)
{
	uint64_t a = errors(A), b = errors(B);
	void *chain[] = {A, B};
	enter(A);
	enter(B);
	codensm_error();
	codensm_error();
	leave(B);
	leave(A);
	assert_int_equal(errors(B), b + 1);
	assert_int_equal(errors(A), a);
	assert_int_equal(incident("error", 0, chain, 2), 1);
	enter(A);
	enter(B);
	codensm_error();
	leave(B);
	leave(A);
	assert_int_equal(incident("error", 0, chain, 2), 2); /* deduplicated */
}

static void deep_recursion_is_counted_but_not_timed(void **state)
{
	uint64_t r = calls(R), e = errors(R), rep = repairs_so_far();
	for (int i = 0; i < CNSMP_STACK_DEPTH + 88; i++)
		enter(R);
	assert_int_equal(cnsmp_tls.t->depth, CNSMP_STACK_DEPTH);
	assert_int_equal(cnsmp_tls.t->overflow, 88);
	codensm_error();
	codensm_error();
	for (int i = 0; i < CNSMP_STACK_DEPTH + 88; i++)
		leave(R);
	assert_int_equal(calls(R), r + CNSMP_STACK_DEPTH + 88);
	assert_int_equal(errors(R), e + 1);
	assert_int_equal(cnsmp_tls.t->depth, 0);
	assert_int_equal(cnsmp_tls.t->overflow, 0);
	assert_int_equal(repairs_so_far(), rep);
}

/* GCC: exit hooks run while the exception unwinds. */
static void exits_during_unwinding_are_exception_errors(void **state)
{
	uint64_t a = errors(A), b = errors(B), c = errors(C), d = errors(D);
	void *chain[] = {A, B, C};
	enter(A);
	enter(B);
	enter(C);
	cnsmp_thread_on_throw();
	enter(D); /* a destructor's callee: entered after the throw */
	leave(D);
	leave(C);
	leave(B);
	cnsmp_thread_on_catch(); /* caught in A */
	leave(A);
	assert_int_equal(errors(C), c + 1);
	assert_int_equal(errors(B), b + 1);
	assert_int_equal(errors(D), d);
	assert_int_equal(errors(A), a);
	assert_int_equal(incident("exception", 0, chain, 3), 1);
}

/* clang: no exit hooks while unwinding; the catcher's exit repairs. */
static void frames_left_by_an_exception_are_repaired_as_errors(void **state)
{
	uint64_t a = errors(A), b = errors(B), c = errors(C);
	uint64_t r = repairs_so_far();
	void *chain[] = {A, B, C};
	uint64_t before = incident("exception", 0, chain, 3);
	enter(A);
	enter(B);
	enter(C);
	cnsmp_thread_on_throw();
	cnsmp_thread_on_catch();
	leave(A);
	assert_int_equal(repairs_so_far(), r + 1);
	assert_int_equal(errors(C), c + 1);
	assert_int_equal(errors(B), b + 1);
	assert_int_equal(errors(A), a);
	assert_int_equal(incident("exception", 0, chain, 3), before + 1);
}

static void a_crash_fails_every_call_on_the_stack(void **state)
{
	uint64_t a = calls(A), ae = errors(A), b = calls(B), be = errors(B);
	void *chain[] = {A, B};
	enter(A);
	enter(B);
	cnsmp_thread_crash_mark(11);
	assert_int_equal(calls(A), a + 1);
	assert_int_equal(errors(A), ae + 1);
	assert_int_equal(calls(B), b + 1);
	assert_int_equal(errors(B), be + 1);
	assert_int_equal(cnsmp_tls.t->depth, 0);
	assert_int_equal(incident("signal", 11, chain, 2), 1);
}

/* The hooks must leave errno exactly as the program set it, on the fast
 * path and through every slow one: first sight (DWARF lookup, malloc), a
 * thread's first call (calloc, pthread_setspecific), a counter chunk, a
 * repair, codensm_error, an unmatched exit. */
static void *errno_in_new_thread(void *arg)
{
	int bad = 0;
	errno = EDOM;
	enter(A); /* attach: calloc and pthread_setspecific */
	bad |= errno != EDOM;
	enter((void *)0x9100); /* first sight, resolved through symbols */
	bad |= errno != EDOM;
	codensm_error();
	bad |= errno != EDOM;
	leave((void *)0x9100);
	bad |= errno != EDOM;
	enter(B);
	leave(A); /* repair: B's exit never ran */
	bad |= errno != EDOM;
	leave(C); /* never entered */
	bad |= errno != EDOM;
	errno = ERANGE;
	enter(A), leave(A);
	bad |= errno != ERANGE;
	return (void *)(intptr_t)bad;
}

static void hooks_leave_errno_alone(void **state)
{
	pthread_t th;
	void *bad = (void *)1;
	assert_int_equal(pthread_create(&th, NULL, errno_in_new_thread, NULL), 0);
	assert_int_equal(pthread_join(th, &bad), 0);
	assert_ptr_equal(bad, NULL);
}

/* exit(): the calls still open end with the program: counted once, with
 * their edges, and the stack is empty afterwards (no double count). */
static void calls_open_at_exit_are_counted_once(void **state)
{
	uint64_t a = calls(A), b = calls(B), ab = edge(A, B), e = errors(A) + errors(B);
	enter(A);
	enter(B);
	cnsmp_thread_end_open_calls();
	assert_int_equal(cnsmp_tls.t->depth, 0);
	assert_int_equal(calls(A), a + 1);
	assert_int_equal(calls(B), b + 1);
	assert_int_equal(errors(A) + errors(B), e);
	assert_int_equal(edge(A, B), ab + 1);
	cnsmp_thread_end_open_calls();
	assert_int_equal(calls(A), a + 1);
}

/* A block's frames and a function's counters are laid out by cache
 * lines (thread.h, internal.h); calloc alone put blocks 32 bytes off. */
static void blocks_and_counters_start_on_a_cache_line(void **state)
{
	enter(T);
	leave(T);
	assert_int_equal((uintptr_t)cnsmp_tls.t % 64, 0);
	assert_int_equal((uintptr_t)&cnsmp_tls.t->frames[0] % 64, 0);
	assert_int_equal((uintptr_t)counters(T) % 64, 0);
	assert_int_equal((uintptr_t)counters(A) % 64, 0);
}

static void timed_calls_land_in_their_histogram_bucket(void **state)
{
	struct cnsmp_counters *c = counters(T);
	uint64_t total = atomic_load(&c->total_ticks);
	enter(T);
	struct timespec nap = {0, 20000000};
	nanosleep(&nap, NULL);
	leave(T);
	uint64_t ticks = atomic_load(&c->total_ticks) - total;
	uint64_t ns = cnsmp_clock_ns(ticks);
	assert_in_range(ns, 20000000, 200000000);
	/* on the TSC, binned with the thread's next call or when it drains;
	 * on the vDSO clock (the slow path), at once */
	assert_int_equal(atomic_load(&c->hist[cnsmp_hist_bucket(ns)]), !cnsmp_clock_is_tsc);
	cnsmp_thread_drain_self();
	assert_int_equal(atomic_load(&c->max_ticks), ticks);
	assert_int_equal(atomic_load(&c->hist[cnsmp_hist_bucket(ns)]), 1);
}

static void hooks_do_nothing_while_inactive(void **state)
{
	uint64_t a = calls(A);
	enter(A), leave(A); /* A's decision is in this thread's cache */
	a++;
	/* as codensm_shutdown() does: the cached decisions go stale */
	atomic_store(&cnsmp_active, 0);
	cnsmp_registry_invalidate();
	enter(A);
	assert_int_equal(cnsmp_tls.t->depth, 0);
	leave(A);
	atomic_store(&cnsmp_active, 1);
	assert_int_equal(calls(A), a);
}

static char *noisy_exclude[] = {"noisy"};

static void *call_noisy(void *arg)
{
	for (int i = 0; i < 1000; i++) {
		enter(NOISY);
		leave(NOISY);
	}
	return cnsmp_tls.t; /* never attached: no block, no counters */
}

static void excluded_calls_touch_no_stack_or_counter(void **state)
{
	cnsmp_cfg.exclude.n = 1;
	cnsmp_cfg.exclude.prefix = noisy_exclude;
	codensm_enter(NOISY, "noisy.log", NULL, -1.0);
	codensm_exit(NOISY);
	assert_int_equal(atomic_load(&cnsmp_registry_find((uintptr_t)NOISY)->state),
			 CNSMP_FN_EXCLUDED);
	struct cnsmp_thread *head = atomic_load(&cnsmp_threads);
	pthread_t th;
	void *block = (void *)1;
	assert_int_equal(pthread_create(&th, NULL, call_noisy, NULL), 0);
	assert_int_equal(pthread_join(th, &block), 0);
	assert_null(block);
	assert_ptr_equal(atomic_load(&cnsmp_threads), head);
	/* On an attached thread the stack is untouched too, and the exit
	 * is neither a repair nor an unmatched exit. */
	uint64_t repairs = repairs_so_far();
	uint64_t unmatched = atomic_load(&cnsmp_thread_unmatched);
	uint64_t a = calls(A);
	enter(A);
	for (int i = 0; i < 3; i++) {
		enter(NOISY);
		assert_int_equal(cnsmp_tls.t->depth, 1);
		leave(NOISY);
		assert_int_equal(cnsmp_tls.t->depth, 1);
	}
	leave(A);
	assert_int_equal(calls(A), a + 1);
	assert_int_equal(repairs_so_far(), repairs);
	assert_int_equal(atomic_load(&cnsmp_thread_unmatched), unmatched);
	cnsmp_cfg.exclude.n = 0;
}

/* The excluded filter in front of the registry, read by threads that
 * never opened a tracked call: what it remembers, and that it forgets it
 * whenever a decision may change, so that the next call is counted. */
static void *call_once(void *fn)
{
	enter(fn);
	leave(fn);
	return cnsmp_tls.t;
}

/* A thread's first tracked call opens its block; the second is the
 * first one the thread's cache can hold. */
static void *call_twice(void *fn)
{
	call_once(fn);
	return call_once(fn);
}

/* body(fn) on a new thread; the block it returns (NULL: none). */
static struct cnsmp_thread *run_on_new_thread(void *(*body)(void *), void *fn)
{
	pthread_t th;
	void *block = (void *)1;
	assert_int_equal(pthread_create(&th, NULL, body, fn), 0);
	assert_int_equal(pthread_join(th, &block), 0);
	return block;
}

/* fn called once on a new thread; that thread's block (NULL: none). */
static struct cnsmp_thread *on_new_thread(void *fn)
{
	return run_on_new_thread(call_once, fn);
}

/* A thread whose table of caller -> callee pairs has no slot left: a new
 * pair's calls are counted as calls (and in the block's edge sink), a
 * known pair's still in its slot.  Returns the block. */
static void *with_a_full_edge_table(void *arg)
{
	enter(A), enter(B), leave(B), leave(A);
	struct cnsmp_thread *t = cnsmp_tls.t;
	for (unsigned g = 0; g < CNSMP_ESEGS; g++)
		if (!atomic_load(&t->eseg[g]))
			atomic_store(&t->eseg[g], cnsmp_arena_alloc(
					 CNSMP_ESEG_SIZE(g) * sizeof(struct cnsmp_edge)));
	for (size_t i = 0; i < CNSMP_EDGES_PER_THREAD; i++) {
		struct cnsmp_edge *e = cnsmp_thread_edge_at(t, i);
		if (!atomic_load(&e->key))
			atomic_store(&e->key, UINT64_MAX - i);
	}
	for (int i = 0; i < 5; i++) {
		enter(A);
		enter(B), leave(B);
		enter(C), leave(C); /* A -> C: no slot */
		leave(A);
	}
	return t;
}

static void a_pair_with_no_slot_is_counted_in_the_sink(void **state)
{
	struct cnsmp_thread *t = run_on_new_thread(with_a_full_edge_table, NULL);
	assert_non_null(t);
	assert_int_equal(calls_on(t, C), 5);
	assert_int_equal(calls_on(t, B), 6);
	assert_int_equal(atomic_load(&t->edge_sink.calls), 5);
	uint64_t ab = ((uint64_t)id_of(A) << 32 | id_of(B)) + 1, ab_calls = 0;
	uint64_t ac = ((uint64_t)id_of(A) << 32 | id_of(C)) + 1;
	for (size_t i = 0; i < CNSMP_EDGES_PER_THREAD; i++) {
		struct cnsmp_edge *e = cnsmp_thread_edge_at(t, i);
		assert_int_not_equal(atomic_load(&e->key), ac);
		if (atomic_load(&e->key) == ab)
			ab_calls = atomic_load(&e->calls);
	}
	assert_int_equal(ab_calls, 6);
}

static uintptr_t xfilter(uintptr_t fn)
{
	return atomic_load(&cnsmp_registry_excluded[cnsmp_xfilter_index(fn)]);
}

/* An address from `from` on whose filter slot nothing is remembered. */
static uintptr_t free_xslot(uintptr_t from)
{
	while (xfilter(from))
		from += 16;
	return from;
}

static char *late_exclude[] = {"late"};

static void the_excluded_filter_forgets_on_every_change(void **state)
{
	uintptr_t x = free_xslot(0xa000);
	cnsmp_cfg.exclude.n = 1;
	cnsmp_cfg.exclude.prefix = late_exclude;
	codensm_enter((void *)x, "late.job", NULL, -1.0), codensm_exit((void *)x);
	assert_null(on_new_thread((void *)x));
	assert_int_equal(xfilter(x), x);
	/* A new include: the filter is emptied, the next call counted. */
	cnsmp_cfg.exclude.n = 0;
	cnsmp_registry_redecide();
	assert_int_equal(xfilter(x), 0);
	struct cnsmp_thread *t = on_new_thread((void *)x);
	assert_non_null(t);
	assert_int_equal(calls_on(t, (void *)x), 1);
	/* Unloaded, and a tracked function loaded at the same address. */
	cnsmp_cfg.exclude.n = 1;
	uintptr_t y = free_xslot(0xb000);
	codensm_enter((void *)y, "late.plugin", NULL, -1.0), codensm_exit((void *)y);
	assert_null(on_new_thread((void *)y));
	assert_int_equal(xfilter(y), y);
	cnsmp_registry_forget_range(y, y + 1);
	assert_int_equal(xfilter(y), 0);
	codensm_enter((void *)y, "svc.reloaded", NULL, -1.0), codensm_exit((void *)y);
	t = on_new_thread((void *)y);
	assert_non_null(t);
	assert_int_equal(calls_on(t, (void *)y), 1);
	cnsmp_cfg.exclude.n = 0;
	/* A fill decided under a generation that has since moved is taken
	 * back (the race of a fill with a change, made to happen). */
	uintptr_t z = free_xslot(0xc000);
	uint32_t g = atomic_load(&cnsmp_registry_gen.v);
	cnsmp_registry_invalidate();
	cnsmp_registry_remember_excluded(z, g);
	assert_int_equal(xfilter(z), 0);
	cnsmp_registry_remember_excluded(z, g + 1);
	assert_int_equal(xfilter(z), z);
	cnsmp_registry_invalidate();
	assert_int_equal(xfilter(z), 0);
}

/* On a thread with tracked calls, an excluded function's first call
 * fills the filter too; its later calls end at the filter on entry and
 * on exit, with the caller's frame untouched. */
static void an_excluded_call_under_a_tracked_caller_is_remembered(void **state)
{
	uintptr_t x = free_xslot(0xe000);
	cnsmp_cfg.exclude.n = 1;
	cnsmp_cfg.exclude.prefix = late_exclude;
	codensm_enter((void *)x, "late.helper", NULL, -1.0), codensm_exit((void *)x);
	assert_int_equal(xfilter(x), 0);
	uint64_t a = calls(A), repairs = repairs_so_far();
	uint64_t unmatched = atomic_load(&cnsmp_thread_unmatched);
	for (int i = 0; i < 3; i++) {
		enter(A);
		enter((void *)x);
		assert_int_equal(cnsmp_tls.t->depth, 1);
		leave((void *)x);
		assert_int_equal(cnsmp_tls.t->depth, 1);
		leave(A);
		assert_int_equal(xfilter(x), x);
	}
	assert_int_equal(calls(A), a + 3);
	assert_int_equal(repairs_so_far(), repairs);
	assert_int_equal(atomic_load(&cnsmp_thread_unmatched), unmatched);
	cnsmp_cfg.exclude.n = 0;
}

/* Two excluded functions on one filter slot: the first keeps it (no
 * thread rewrites a line every thread reads), the second is decided by
 * the registry on each call, and neither is ever counted. */
static void excluded_functions_sharing_a_filter_slot_stay_excluded(void **state)
{
	uintptr_t x = free_xslot(0xd000), y = x + 16;
	while (cnsmp_xfilter_index(y) != cnsmp_xfilter_index(x))
		y += 16;
	cnsmp_cfg.exclude.n = 1;
	cnsmp_cfg.exclude.prefix = late_exclude;
	codensm_enter((void *)x, "late.x", NULL, -1.0), codensm_exit((void *)x);
	codensm_enter((void *)y, "late.y", NULL, -1.0), codensm_exit((void *)y);
	struct cnsmp_thread *head = atomic_load(&cnsmp_threads);
	assert_null(on_new_thread((void *)x));
	assert_null(on_new_thread((void *)y));
	assert_null(on_new_thread((void *)y));
	assert_int_equal(xfilter(x), x);
	assert_ptr_equal(atomic_load(&cnsmp_threads), head);
	cnsmp_cfg.exclude.n = 0;
}

/* The thread's cache of decisions follows a reconfiguration: a function
 * it holds as tracked stops being counted once excluded, and the other
 * way round. */
static char *svc_c_exclude[] = {"svc.c"};

static void a_cached_decision_follows_a_new_exclude(void **state)
{
	enter(C), leave(C), enter(C), leave(C); /* cached as tracked */
	uint64_t c = calls(C);
	cnsmp_cfg.exclude.n = 1;
	cnsmp_cfg.exclude.prefix = svc_c_exclude;
	cnsmp_registry_redecide();
	for (int i = 0; i < 3; i++) {
		enter(C);
		assert_int_equal(cnsmp_tls.t->depth, 0);
		leave(C);
	}
	assert_int_equal(calls(C), c);
	cnsmp_cfg.exclude.n = 0;
	cnsmp_registry_redecide();
	for (int i = 0; i < 3; i++) {
		enter(C);
		assert_int_equal(cnsmp_tls.t->depth, 1);
		leave(C);
	}
	assert_int_equal(calls(C), c + 3);
	assert_int_equal(cnsmp_tls.t->depth, 0);
}

/* The cached decision of `fn` in block t, or NULL if t's cache holds
 * nothing for it. */
static struct cnsmp_counters *cached(struct cnsmp_thread *t, void *fn)
{
	struct cnsmp_counters *c;
	return cnsmp_tcache_get(t, (uintptr_t)fn, &c) ? c : NULL;
}

/* A change of decisions empties the cache of every thread, the ones that
 * ended too (a new thread takes their block and its cache over). */
static void a_change_empties_every_threads_cache(void **state)
{
	enter(A), leave(A);
	struct cnsmp_thread *other = run_on_new_thread(call_twice, B);
	assert_non_null(other);
	assert_ptr_equal(cached(other, B), cnsmp_thread_counters(other, id_of(B)));
	assert_non_null(cached(cnsmp_tls.t, A));
	cnsmp_registry_redecide();
	assert_null(cached(other, B));
	assert_null(cached(cnsmp_tls.t, A));
	enter(A), leave(A);
	assert_ptr_equal(cached(cnsmp_tls.t, A), counters(A));
}

/* A fill decided under a generation that has since moved is taken back
 * (the race of a fill with a change, made to happen); one under the
 * current generation stays, until the next change. */
static void a_cache_fill_racing_with_a_change_is_taken_back(void **state)
{
	enter(D), leave(D);
	struct cnsmp_thread *t = cnsmp_tls.t;
	struct cnsmp_counters *c = counters(D);
	uint32_t g = atomic_load(&cnsmp_registry_gen.v);
	cnsmp_registry_invalidate();
	cnsmp_tcache_put(t, (uintptr_t)D, c, g);
	assert_null(cached(t, D));
	cnsmp_tcache_put(t, (uintptr_t)D, c, g + 1);
	assert_ptr_equal(cached(t, D), c);
	cnsmp_registry_invalidate();
	assert_null(cached(t, D));
}

/* Retagging (sampled timing) changes a slot that holds the function and
 * no other: the slot may have been emptied, or taken by another one. */
static void a_retag_changes_only_the_functions_own_slot(void **state)
{
	enter(D), leave(D);
	struct cnsmp_thread *t = cnsmp_tls.t;
	struct cnsmp_counters *c = counters(D);
	struct cnsmp_counters *tagged = (struct cnsmp_counters *)(
		(uintptr_t)c | CNSMP_TC_SAMPLE);
	uintptr_t y = (uintptr_t)D + 16;
	while (cnsmp_tcache_index(y) != cnsmp_tcache_index((uintptr_t)D))
		y += 16;
	cnsmp_tcache_retag(t, (uintptr_t)D, tagged);
	assert_ptr_equal(cached(t, D), tagged);
	cnsmp_tcache_retag(t, (uintptr_t)D, c);
	assert_ptr_equal(cached(t, D), c);
	cnsmp_tcache_retag(t, y, tagged);
	assert_ptr_equal(cached(t, D), c);
	cnsmp_registry_invalidate();
	cnsmp_tcache_retag(t, (uintptr_t)D, tagged);
	assert_null(cached(t, D));
}

/* A library unloaded and another loaded at the same address: the cached
 * counters of the old function must not receive the new one's calls. */
#define REUSED ((void *)0x8000)
static void an_address_reused_after_unload_counts_the_new_function(void **state)
{
	codensm_enter(REUSED, "plugin_a.run", NULL, -1.0), codensm_exit(REUSED);
	enter(REUSED), leave(REUSED); /* cached */
	uint32_t old_id = id_of(REUSED);
	struct cnsmp_counters *old = counters(REUSED);
	uint64_t before = atomic_load(&old->calls);
	cnsmp_registry_forget_range(0x8000, 0x8001); /* dlclose */
	codensm_enter(REUSED, "plugin_b.run", NULL, -1.0), codensm_exit(REUSED);
	assert_int_not_equal(id_of(REUSED), old_id);
	for (int i = 0; i < 5; i++)
		enter(REUSED), leave(REUSED);
	assert_int_equal(atomic_load(&old->calls), before);
	assert_int_equal(calls(REUSED), 6);
}

/* Two functions in one cache slot evict each other; every call of both
 * is still counted, and nested calls of the pair keep their edges. */
static void functions_sharing_a_cache_slot_are_both_counted(void **state)
{
	uintptr_t x = 0x9000, y = x + 16;
	while (cnsmp_tcache_index(y) != cnsmp_tcache_index(x))
		y += 16;
	codensm_enter((void *)x, "svc.slot_x", NULL, -1.0), codensm_exit((void *)x);
	codensm_enter((void *)y, "svc.slot_y", NULL, -1.0), codensm_exit((void *)y);
	uint64_t cx = calls((void *)x), cy = calls((void *)y);
	uint64_t xy = edge((void *)x, (void *)y);
	for (int i = 0; i < 100; i++) {
		enter((void *)x);
		enter((void *)y);
		leave((void *)y);
		leave((void *)x);
	}
	assert_int_equal(calls((void *)x), cx + 100);
	assert_int_equal(calls((void *)y), cy + 100);
	assert_int_equal(edge((void *)x, (void *)y), xy + 100);
	assert_int_equal(cnsmp_tls.t->depth, 0);
}

/* The child forgets the other threads and this thread's counts, but keeps
 * its shadow stack so that exits of calls entered before fork match; those
 * calls are the parent's, so the child pops them without counting them,
 * while a call it makes itself inside them is counted. */
static void a_forked_child_starts_from_zero(void **state)
{
	struct cnsmp_thread *other = on_new_thread(B);
	enter(A);
	pid_t pid = fork();
	if (pid == 0) {
		cnsmp_thread_atfork_child();
		int bad = 0;
		bad |= (atomic_load(&other->state) !=
			CNSMP_T_FREE) << 0;
		bad |= (calls(B) != 0) << 1;
		bad |= (cnsmp_tls.t->depth != 1) << 2;
		enter(B);
		leave(B);
		leave(A);
		bad |= (calls(A) != 0) << 3;
		bad |= (calls(B) != 1) << 4;
		bad |= (cnsmp_tls.t->depth != 0) << 5;
		_exit(bad);
	}
	int status = -1;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	leave(A);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nested_calls_count_edges_and_self_time),
		cmocka_unit_test(a_call_at_the_root_counts_no_edge),
		cmocka_unit_test(a_missing_exit_is_repaired_by_the_callers_exit),
		cmocka_unit_test(an_exit_never_entered_is_ignored_and_counted),
		cmocka_unit_test(codensm_error_fails_the_innermost_call_once),
		cmocka_unit_test(deep_recursion_is_counted_but_not_timed),
		cmocka_unit_test(exits_during_unwinding_are_exception_errors),
		cmocka_unit_test(frames_left_by_an_exception_are_repaired_as_errors),
		cmocka_unit_test(a_crash_fails_every_call_on_the_stack),
		cmocka_unit_test(blocks_and_counters_start_on_a_cache_line),
		cmocka_unit_test(timed_calls_land_in_their_histogram_bucket),
		cmocka_unit_test(hooks_do_nothing_while_inactive),
		cmocka_unit_test(a_cached_decision_follows_a_new_exclude),
		cmocka_unit_test(an_address_reused_after_unload_counts_the_new_function),
		cmocka_unit_test(a_pair_with_no_slot_is_counted_in_the_sink),
		cmocka_unit_test(a_change_empties_every_threads_cache),
		cmocka_unit_test(a_cache_fill_racing_with_a_change_is_taken_back),
		cmocka_unit_test(a_retag_changes_only_the_functions_own_slot),
		cmocka_unit_test(functions_sharing_a_cache_slot_are_both_counted),
		cmocka_unit_test(excluded_calls_touch_no_stack_or_counter),
		cmocka_unit_test(the_excluded_filter_forgets_on_every_change),
		cmocka_unit_test(an_excluded_call_under_a_tracked_caller_is_remembered),
		cmocka_unit_test(excluded_functions_sharing_a_filter_slot_stay_excluded),
		cmocka_unit_test(a_forked_child_starts_from_zero),
		cmocka_unit_test(calls_open_at_exit_are_counted_once),
		cmocka_unit_test(hooks_leave_errno_alone),
	};
	return cmocka_run_group_tests_name("thread", tests, setup, NULL);
}
