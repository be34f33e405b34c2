/* test_memory.c: per-thread memory that follows what a thread does: a
 * block holds only what its thread used, the shadow stack grows chunk by
 * chunk and steps back, and the counts stay exact through growth steps,
 * recursion past the bound, 5,000 threads alive at once, blocks handed
 * on, signal handlers making tracked calls and fork. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "hooks.h"

/* Fake function addresses, named on first sight in setup. */
#define A ((void *)0x1000)
#define B ((void *)0x2000)
#define H1 ((void *)0x3000) /* called by the signal handler */
#define H2 ((void *)0x4000)
/* The levels of a deep stack cycle through three functions, so that
 * every pair's count is known: level i calls level i + 1. */
static void *const cyc[3] = {(void *)0x5000, (void *)0x6000, (void *)0x7000};

static uint64_t calls_on(struct cnsmp_thread *t, void *fn)
{
	return atomic_load(&cnsmp_thread_counters(t, id_of(fn))->calls);
}

static uint64_t edge_on(struct cnsmp_thread *t, void *from, void *to)
{
	uint64_t key = ((uint64_t)id_of(from) << 32 | id_of(to)) + 1;
	for (size_t i = 0; i < CNSMP_EDGES_PER_THREAD; i++) {
		struct cnsmp_edge *e = cnsmp_thread_edge_at(t, i);
		if (e && atomic_load(&e->key) == key)
			return atomic_load(&e->calls);
	}
	return 0;
}

/* Go from depth `from` to `to` (cycling through cyc[]) or back down. */
static void climb(uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i < to; i++)
		enter(cyc[i % 3]);
}

static void descend(uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i > to; i--)
		leave(cyc[(i - 1) % 3]);
}

/* Calls of each cyc[] function and of each pair cyc[k] -> cyc[k+1] that
 * going from depth `from` up to `to` opens. */
struct expect {
	uint64_t calls[3], pairs[3];
};

static void expect_climb(struct expect *x, uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i < to; i++) {
		x->calls[i % 3]++;
		if (i > 0)
			x->pairs[(i - 1) % 3]++;
	}
}

/* The stack's current chunk holds its top frame (the invariant the fast
 * paths rely on), and its bookkeeping agrees with the chunk layout. */
static void assert_stack_fits(struct cnsmp_thread *t)
{
	uint32_t d = t->depth;
	unsigned k = d ? cnsmp_stack_chunk(d) : 0;
	uint32_t s = cnsmp_stack_start(k);
	assert_int_equal(t->top, k ? 2 * s : CNSMP_STACK_FIRST);
	assert_ptr_equal(t->fbase, k ? t->stack[k] - s - 1 : t->frames);
	if (d)
		assert_ptr_equal(&t->fbase[d], cnsmp_frame_at(t, d - 1));
}

static int setup(void **state)
{
	atomic_store(&cnsmp_active, 1);
	codensm_enter(A, "svc.a", NULL, -1.0), codensm_exit(A);
	codensm_enter(B, "svc.b", NULL, -1.0), codensm_exit(B);
	codensm_enter(H1, "svc.handler1", NULL, -1.0), codensm_exit(H1);
	codensm_enter(H2, "svc.handler2", NULL, -1.0), codensm_exit(H2);
	codensm_enter(cyc[0], "svc.x", NULL, -1.0), codensm_exit(cyc[0]);
	codensm_enter(cyc[1], "svc.y", NULL, -1.0), codensm_exit(cyc[1]);
	codensm_enter(cyc[2], "svc.z", NULL, -1.0), codensm_exit(cyc[2]);
	return 0;
}

/* body on a new thread (default attributes); returns what body returns. */
static void *on_new_thread(void *(*body)(void *), void *arg)
{
	pthread_t th;
	void *ret = NULL;
	assert_int_equal(pthread_create(&th, NULL, body, arg), 0);
	assert_int_equal(pthread_join(th, &ret), 0);
	return ret;
}

/* A shallow thread: 150 x (A -> B), then (stage 2) 50 levels deep. */
static void *shallow_then_deep(void *arg)
{
	struct cnsmp_thread **seen = arg;
	for (int i = 0; i < 150; i++) {
		enter(A);
		enter(B), leave(B);
		leave(A);
	}
	seen[0] = cnsmp_tls.t;
	/* What the block holds now, copied before it grows further. */
	static struct cnsmp_thread copy;
	memcpy(&copy, cnsmp_tls.t, sizeof copy);
	seen[1] = &copy;
	climb(0, 50);
	descend(50, 0);
	return NULL;
}

/* Runs first, on the process's first new thread, so its block is new. */
static void a_block_holds_only_what_its_thread_used(void **state)
{
	struct cnsmp_thread *seen[2];
	on_new_thread(shallow_then_deep, seen);
	struct cnsmp_thread *t = seen[0], *then = seen[1];
	/* After 300 calls two levels deep over two functions: the inline
	 * stack chunk and cache, one edge segment, no incident table. */
	for (unsigned k = 1; k < CNSMP_STACK_CHUNKS; k++)
		assert_null(then->stack[k]);
	assert_ptr_equal(atomic_load(&then->cache), t->cache0);
	assert_int_equal(atomic_load(&then->cache_mask), CNSMP_TCACHE_FIRST - 1);
	assert_non_null(atomic_load(&then->eseg[0]));
	assert_null(atomic_load(&then->eseg[1]));
	assert_null(atomic_load(&then->incidents));
	unsigned sets = 0;
	for (unsigned k = 0; k < CNSMP_NCHUNKS; k++)
		sets += atomic_load(&then->chunk[k]) != NULL;
	assert_int_equal(sets, 1);
	/* Then 50 levels deep: chunks 1 to 3 (slots 9..64), none past. */
	assert_int_equal(cnsmp_stack_chunk(50), 3);
	for (unsigned k = 1; k <= 3; k++)
		assert_non_null(t->stack[k]);
	for (unsigned k = 4; k < CNSMP_STACK_CHUNKS; k++)
		assert_null(t->stack[k]);
	assert_int_equal(calls_on(t, A), 150);
	assert_int_equal(calls_on(t, B), 150);
	assert_int_equal(edge_on(t, A, B), 150);
	assert_int_equal(t->depth, 0);
	assert_stack_fits(t);
	/* A thread that ends hands its block to the next one. */
	assert_ptr_equal(on_new_thread(shallow_then_deep, seen), NULL);
	assert_ptr_equal(seen[0], t);
	assert_int_equal(calls_on(t, A), 300);
}

/* Up past each growth step (and the old fixed depth of 512), partly
 * back down, up again: every call and pair counted once, timed (no
 * overflow), and the stack always in the chunk of its top frame. */
static void counts_are_exact_as_the_depth_grows_past_each_step_and_shrinks(void **state)
{
	static const uint32_t peaks[] = {7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65,
					 127, 128, 129, 255, 256, 257, 511, 512, 513,
					 1023, 1025, 4096, 4097, CNSMP_STACK_DEPTH};
	struct cnsmp_thread *t = cnsmp_tls.t;
	struct expect x = {{0}, {0}};
	uint64_t c0[3], p0[3], r0 = atomic_load(&cnsmp_thread_repairs);
	for (int k = 0; k < 3; k++) {
		c0[k] = calls_on(t, cyc[k]);
		p0[k] = edge_on(t, cyc[k], cyc[(k + 1) % 3]);
	}
	uint32_t d = 0;
	for (size_t i = 0; i < sizeof peaks / sizeof *peaks; i++) {
		uint32_t low = peaks[i] / 3 + (uint32_t)(i % 2); /* both sides of a step */
		if (low < d) { /* a peak below where we are: go down first */
			descend(d, low);
			d = low;
		}
		climb(d, peaks[i]);
		expect_climb(&x, d, peaks[i]);
		assert_int_equal(t->depth, peaks[i]);
		assert_int_equal(t->overflow, 0);
		assert_stack_fits(t);
		descend(peaks[i], low);
		d = low;
		assert_int_equal(t->depth, low);
		assert_stack_fits(t);
	}
	descend(d, 0);
	assert_int_equal(t->depth, 0);
	assert_stack_fits(t);
	assert_ptr_equal(t->fbase, t->frames);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(calls_on(t, cyc[k]) - c0[k], x.calls[k]);
		assert_int_equal(edge_on(t, cyc[k], cyc[(k + 1) % 3]) - p0[k], x.pairs[k]);
	}
	assert_int_equal(atomic_load(&cnsmp_thread_repairs), r0);
}

/* Deeper than CNSMP_STACK_DEPTH: the calls past it are counted (untimed)
 * and can fail; coming back, the stack steps back chunk by chunk to the
 * inline one, and the next call is timed again. */
static void recursion_deeper_than_the_bound_is_counted(void **state)
{
	struct cnsmp_thread *t = cnsmp_tls.t;
	void *f = cyc[0];
	uint64_t c = calls_on(t, f), e = atomic_load(&cnsmp_thread_counters(t, id_of(f))->errors);
	uint32_t n = CNSMP_STACK_DEPTH + 1000;
	for (uint32_t i = 0; i < n; i++)
		enter(f);
	assert_int_equal(t->depth, CNSMP_STACK_DEPTH);
	assert_int_equal(t->overflow, 1000);
	codensm_error();
	for (uint32_t i = 0; i < n; i++)
		leave(f);
	assert_int_equal(calls_on(t, f), c + n);
	assert_int_equal(atomic_load(&cnsmp_thread_counters(t, id_of(f))->errors), e + 1);
	assert_int_equal(t->depth, 0);
	assert_int_equal(t->overflow, 0);
	assert_stack_fits(t);
	uint64_t ticks = atomic_load(&cnsmp_thread_counters(t, id_of(A))->total_ticks);
	enter(A);
	struct timespec ts = {0, 100000};
	nanosleep(&ts, NULL);
	leave(A);
	assert_true(atomic_load(&cnsmp_thread_counters(t, id_of(A))->total_ticks) > ticks);
}

/* ---- 5,000 threads alive at once ------------------------------------- */

#define MANY 5000
static pthread_barrier_t all_called, all_go;

static void *call_and_wait(void *arg)
{
	for (int i = 0; i < 150; i++) {
		enter(A);
		enter(B), leave(B);
		leave(A);
	}
	pthread_barrier_wait(&all_called);
	pthread_barrier_wait(&all_go);
	return NULL;
}

static uint64_t calls_in(const struct cnsmp_batch *b, void *fn)
{
	for (size_t i = 0; i < b->nfns; i++)
		if (b->fns[i].id == id_of(fn))
			return b->fns[i].calls;
	return 0;
}

static uint64_t pair_in(const struct cnsmp_batch *b, void *from, void *to)
{
	for (size_t i = 0; i < b->nedges; i++)
		if (b->edges[i].caller == id_of(from) && b->edges[i].callee == id_of(to))
			return b->edges[i].calls;
	return 0;
}

/* One wave of MANY threads: each calls, all wait while the flusher's
 * collect runs twice (the second, over idle threads, finds nothing),
 * then they end.  Returns the first collect's batch. */
static void wave(struct cnsmp_batch *b)
{
	pthread_t *th = calloc(MANY, sizeof *th);
	pthread_attr_t attr;
	assert_non_null(th);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_barrier_init(&all_called, NULL, MANY + 1);
	pthread_barrier_init(&all_go, NULL, MANY + 1);
	int started = 0;
	for (; started < MANY; started++)
		if (pthread_create(&th[started], &attr, call_and_wait, NULL))
			break;
	assert_int_equal(started, MANY);
	pthread_barrier_wait(&all_called);
	assert_int_equal(cnsmp_collect(b), 0);
	struct cnsmp_batch idle;
	cnsmp_batch_init(&idle);
	assert_int_equal(cnsmp_collect(&idle), 0);
	assert_int_equal(calls_in(&idle, A), 0);
	assert_int_equal(pair_in(&idle, A, B), 0);
	cnsmp_batch_release(&idle);
	pthread_barrier_wait(&all_go);
	for (int i = 0; i < MANY; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&all_called);
	pthread_barrier_destroy(&all_go);
	pthread_attr_destroy(&attr);
	free(th);
}

static void five_thousand_threads_alive_at_once_are_counted_exactly(void **state)
{
	struct cnsmp_batch b;
	cnsmp_batch_init(&b);
	assert_int_equal(cnsmp_collect(&b), 0); /* a clean interval */
	wave(&b);
	assert_int_equal(calls_in(&b, A), 150 * MANY);
	assert_int_equal(calls_in(&b, B), 150 * MANY);
	assert_int_equal(pair_in(&b, A, B), 150 * MANY);
	size_t n = blocks();
	assert_true(n >= MANY);
	/* The next wave takes over the blocks the first one left. */
	wave(&b);
	assert_int_equal(blocks(), n);
	assert_int_equal(calls_in(&b, A), 150 * MANY);
	assert_int_equal(pair_in(&b, A, B), 150 * MANY);
	cnsmp_batch_release(&b);
}

/* ---- a signal handler making tracked calls while the stack grows ----- */

static _Atomic int handled, handled_counted, climber_ready, climbing_done;
static uint64_t climber_before[5]; /* cyc[0..2], H1, H2 on its block */

/* 20 levels of H1/H2 on top of whatever the thread was doing.  The
 * hooks ignore calls made while the interrupted code held the guard (it
 * was inside a hook), so the handler counts the runs that find it free:
 * those are the runs whose calls are counted. */
static void on_usr1(int sig)
{
	(void)sig;
	int saved = errno;
	if (!cnsmp_tls.guard && cnsmp_tls.t)
		handled_counted++;
	handled++;
	for (int i = 0; i < 20; i++)
		enter(i % 2 ? H2 : H1);
	for (int i = 20; i-- > 0;)
		leave(i % 2 ? H2 : H1);
	errno = saved;
}

/* 300 times up to 60 levels and back, the handler's 20 on top reaching
 * chunk 4 (slots 65..128), which the thread itself never needs. */
static void *climb_under_signals(void *arg)
{
	(void)arg;
	enter(A), leave(A); /* the block, before the signals start */
	struct cnsmp_thread *t = cnsmp_tls.t;
	for (int k = 0; k < 3; k++)
		climber_before[k] = calls_on(t, cyc[k]);
	climber_before[3] = calls_on(t, H1);
	climber_before[4] = calls_on(t, H2);
	atomic_store(&climber_ready, 1);
	struct timespec pause = {0, 1000};
	for (int r = 0; r < 300; r++) {
		climb(0, 60);
		descend(60, 0);
		nanosleep(&pause, NULL); /* where sanitizers deliver deferred signals */
	}
	atomic_store(&climbing_done, 1);
	return t;
}

static void a_signal_handler_makes_tracked_calls_while_the_stack_grows(void **state)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	uint64_t r0 = atomic_load(&cnsmp_thread_repairs), u0 = atomic_load(&cnsmp_thread_unmatched);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, climb_under_signals, NULL), 0);
	while (!atomic_load(&climber_ready))
		sched_yield();
	struct timespec gap = {0, 20000};
	int sent = 0;
	while (!atomic_load(&climbing_done)) {
		if (pthread_kill(th, SIGUSR1) == 0)
			sent++;
		nanosleep(&gap, NULL);
	}
	void *ret;
	assert_int_equal(pthread_join(th, &ret), 0);
	sigaction(SIGUSR1, &old, NULL);
	struct cnsmp_thread *t = ret;
	assert_true(sent > 0);
	assert_true(handled_counted > 0);
	for (int k = 0; k < 3; k++) /* 60 levels over three functions */
		assert_int_equal(calls_on(t, cyc[k]) - climber_before[k], 300 * 20);
	assert_int_equal(calls_on(t, H1) - climber_before[3], 10 * (uint64_t)handled_counted);
	assert_int_equal(calls_on(t, H2) - climber_before[4], 10 * (uint64_t)handled_counted);
	assert_int_equal(t->depth, 0);
	assert_stack_fits(t);
	assert_int_equal(atomic_load(&cnsmp_thread_repairs), r0);
	assert_int_equal(atomic_load(&cnsmp_thread_unmatched), u0);
}

/* ---- fork while another thread grows its stack ------------------------ */

static _Atomic int grower_stop;
static _Atomic uint64_t grower_rounds;

static void *grow_until_stopped(void *arg)
{
	(void)arg;
	enter(A), leave(A);
	struct cnsmp_thread *t = cnsmp_tls.t;
	uint64_t *before = arg;
	for (int k = 0; k < 3; k++)
		before[k] = calls_on(t, cyc[k]);
	atomic_store(&grower_rounds, 1); /* ready */
	while (!atomic_load(&grower_stop)) {
		climb(0, 300);
		descend(300, 0);
		grower_rounds++;
	}
	return t;
}

/* In a child forked while `grower` was anywhere in its climb: the
 * grower's block is free, this thread's counts start from zero, and its
 * own climb past several growth steps counts exactly.  Returns a bit
 * mask of what was wrong (0: nothing). */
static int child_checks(struct cnsmp_thread *grower)
{
	cnsmp_thread_atfork_child();
	struct cnsmp_thread *t = cnsmp_tls.t;
	int bad = 0;
	bad |= (atomic_load(&grower->state) != CNSMP_T_FREE) << 0;
	for (int k = 0; k < 3; k++)
		bad |= (calls_on(t, cyc[k]) != 0) << 1;
	climb(0, 150);
	descend(150, 0);
	for (int k = 0; k < 3; k++)
		bad |= (calls_on(t, cyc[k]) != 50) << 2;
	bad |= (edge_on(t, cyc[2], cyc[0]) != 49) << 3;
	bad |= (t->depth != 0 || t->fbase != t->frames || t->top != CNSMP_STACK_FIRST) << 4;
	return bad;
}

static void fork_while_another_thread_grows_its_stack(void **state)
{
	uint64_t before[3];
	atomic_store(&grower_stop, 0);
	atomic_store(&grower_rounds, 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, grow_until_stopped, before), 0);
	while (!atomic_load(&grower_rounds))
		sched_yield();
	/* The grower's block: the only live one besides this thread's. */
	struct cnsmp_thread *grower = NULL;
	for (struct cnsmp_thread *t = atomic_load(&cnsmp_threads); t;
	     t = atomic_load(&t->next))
		if (t != cnsmp_tls.t && atomic_load(&t->state) == CNSMP_T_LIVE)
			grower = t;
	assert_non_null(grower);
	struct timespec gap = {0, 300000};
	for (int i = 0; i < 10; i++) {
		nanosleep(&gap, NULL);
		pid_t pid = fork();
		if (pid == 0)
			_exit(child_checks(grower));
		int status = -1;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	atomic_store(&grower_stop, 1);
	void *ret;
	assert_int_equal(pthread_join(th, &ret), 0);
	struct cnsmp_thread *t = ret;
	assert_ptr_equal(t, grower);
	uint64_t rounds = atomic_load(&grower_rounds) - 1;
	for (int k = 0; k < 3; k++)
		assert_int_equal(calls_on(t, cyc[k]) - before[k], 100 * rounds);
	assert_int_equal(t->depth, 0);
	assert_stack_fits(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_block_holds_only_what_its_thread_used),
		cmocka_unit_test(counts_are_exact_as_the_depth_grows_past_each_step_and_shrinks),
		cmocka_unit_test(recursion_deeper_than_the_bound_is_counted),
		cmocka_unit_test(five_thousand_threads_alive_at_once_are_counted_exactly),
		cmocka_unit_test(a_signal_handler_makes_tracked_calls_while_the_stack_grows),
		cmocka_unit_test(fork_while_another_thread_grows_its_stack),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
