/* hooks.c: the hot path: __cyg_profile_func_enter/exit and the public calls
 * that mark, open and close tracked calls on this thread's shadow stack.
 *
 * Nothing here allocates (after a function's first call on a thread), locks,
 * makes a syscall or touches DWARF, because it runs on every call of the
 * user's program and must cost about as much as the call it measures: a
 * tracked call is two clock reads (rdtsc) and a few stores into memory only
 * this thread writes; an excluded call is one registry lookup and returns
 * without touching the stack, the clock or a counter.  Everything slow (the
 * first sight of a function, the thread's first hook, a counter chunk's first
 * use) is a call to a cold function in registry.c or thread.c.
 *
 * Each hook returns at once (unlikely) when the per-thread guard is set (a
 * hook interrupted by a signal handler that calls instrumented code, or the
 * runtime calling itself) and sets the guard while it works.  errno: the
 * fast paths call nothing that can change it; each slow path saves and
 * restores it itself (tests/unit/test_thread.c checks that errno survives
 * each kind of hook call).
 */
#include <errno.h>
#include "thread.h"

__thread struct cnsmp_tls cnsmp_tls __attribute__((tls_model("initial-exec")));

/* Set by the first hook that finds the runtime inactive: hooks may run
 * before the library's constructor (C++ static initialisers), so that hook
 * starts it; afterwards an inactive runtime (disabled, shut down) means
 * "return at once". */
static _Atomic int init_tried;

/* Slow path: start the runtime if nobody tried yet; is it active now? */
static CNSMP_NOINST __attribute__((noinline, cold)) int activate(void)
{
	if (atomic_load_explicit(&init_tried, memory_order_relaxed) ||
	    atomic_exchange_explicit(&init_tried, 1, memory_order_relaxed))
		return atomic_load_explicit(&cnsmp_active, memory_order_acquire);
	int saved = errno;
	cnsmp_clock_init(); /* before any frame is timed */
	cnsmp_interpose_init();
	cnsmp_lifecycle_ensure_init();
	errno = saved;
	return atomic_load_explicit(&cnsmp_active, memory_order_acquire);
}

/* Slow path: a call beyond CNSMP_STACK_DEPTH: count it now (it is not
 * timed), remember its id for codensm_error(). */
static CNSMP_NOINST __attribute__((noinline, cold)) void too_deep(
	struct cnsmp_thread *t, struct cnsmp_counters *c, uint32_t id)
{
	cnsmp_bump(&c->calls, 1);
	t->overflow++;
	t->ov_id = id;
	t->ov_failed = 0;
}

/* Slow path: first sight of `fn` anywhere in the process. */
static CNSMP_NOINST __attribute__((noinline, cold)) struct cnsmp_fn *
first_sight(void *fn, const char *name, const char *department, double weight)
{
	int saved = errno;
	cnsmp_clock_init(); /* idempotent; the clock is chosen before timing */
	struct cnsmp_fn *f = cnsmp_registry_add((uintptr_t)fn, name, department, weight);
	errno = saved;
	return f;
}

/* Write the frame of a call of `fn` (id, counters c) at depth d of t;
 * `tsc`: the clock is known to be the TSC (no call to read it). */
static inline __attribute__((always_inline)) void open_frame(
	struct cnsmp_thread *t, uint32_t d, struct cnsmp_counters *c, uint32_t id,
	void *fn, int tsc)
{
	struct cnsmp_frame *fr = &t->stack[d];
	fr->addr = (uintptr_t)fn;
	fr->id = id;
	fr->failed = 0;
	fr->child = 0;
	fr->epoch = t->throw_epoch;
	fr->c = c;
	fr->start = tsc ? cnsmp_clock_tsc() : cnsmp_clock_now();
	atomic_signal_fence(memory_order_release); /* frame before depth */
	t->depth = d + 1;
}

/* Open a call of tracked `f` (guard held, runtime active), whatever is
 * unusual about it: the thread's first call, a new counter chunk, a stack
 * too deep to time. */
static CNSMP_NOINST __attribute__((noinline, cold)) void push_tracked(
	struct cnsmp_fn *f, void *fn)
{
	struct cnsmp_thread *t = cnsmp_tls.t;
	if (unlikely(!t) && !(t = cnsmp_thread_attach()))
		return;
	uint32_t id = f->id;
	struct cnsmp_counters *c = cnsmp_thread_counters(t, id);
	if (unlikely(!c))
		return; /* out of memory: this call is not counted */
	uint32_t d = t->depth;
	if (unlikely(d >= CNSMP_STACK_DEPTH || t->overflow)) {
		too_deep(t, c, id);
		return;
	}
	open_frame(t, d, c, id, fn, 0);
}

/* push_tracked for the entry hook, which has the guard to drop after. */
static CNSMP_NOINST __attribute__((noinline, cold)) void push_tracked_unguard(
	struct cnsmp_fn *f, void *fn)
{
	push_tracked(f, fn);
	cnsmp_tls.guard = 0;
}

/* Open a call of `fn` whatever it is (guard held, runtime active). */
static CNSMP_NOINST __attribute__((noinline)) void push(
	void *fn, const char *name, const char *department, double weight)
{
	struct cnsmp_fn *f = cnsmp_registry_lookup((uintptr_t)fn);
	if (unlikely(!f) && !(f = first_sight(fn, name, department, weight)))
		return;
	int state = atomic_load_explicit(&f->state, memory_order_relaxed);
	if (state == CNSMP_FN_TRACKED)
		push_tracked(f, fn);
	else if (state == CNSMP_FN_DROPPED)
		atomic_fetch_add_explicit(&cnsmp_registry_dropped_calls, 1,
					  memory_order_relaxed);
}

/* A tracked exit that is not on top: pop until `fn` matches, each popped
 * frame counted as a completed call (its exit hook never ran: longjmp, or
 * clang unwinding an exception).  Not on the stack at all: ignored. */
static CNSMP_NOINST __attribute__((noinline)) void repair(
	struct cnsmp_thread *t, uintptr_t fn)
{
	struct cnsmp_fn *f = cnsmp_registry_lookup(fn);
	if (!f || atomic_load_explicit(&f->state, memory_order_relaxed) !=
			  CNSMP_FN_TRACKED)
		return; /* excluded or dropped: never pushed, no clock read */
	uint64_t now = cnsmp_clock_now();
	uint32_t i = t->depth;
	while (i > 0 && t->stack[i - 1].addr != fn)
		i--;
	if (i == 0) {
		atomic_fetch_add_explicit(&cnsmp_thread_unmatched, 1,
					  memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&cnsmp_thread_repairs, 1,
				  memory_order_relaxed);
	while (t->depth > i)
		cnsmp_thread_complete(t, t->depth - 1, now, 1);
	cnsmp_thread_complete(t, i - 1, now, 0);
}

/* An exit beyond the stack's depth: the call was counted when it began. */
static CNSMP_NOINST __attribute__((noinline, cold)) void pop_overflow(
	struct cnsmp_thread *t, uintptr_t fn)
{
	struct cnsmp_fn *f = cnsmp_registry_lookup(fn);
	if (f && atomic_load_explicit(&f->state, memory_order_relaxed) ==
			 CNSMP_FN_TRACKED) {
		t->overflow--;
		t->ov_failed = 0;
	}
}

/* Close the innermost call of `fn` (guard held, runtime active), whatever
 * is unusual about it: a stack past its depth, an exit that is not the top
 * frame's (longjmp, clang's unwinding), a call marked failed, an exception
 * in flight, a frame inherited across fork, a clock that is not the TSC. */
static CNSMP_NOINST __attribute__((noinline)) void pop(struct cnsmp_thread *t,
						       void *fn)
{
	uint32_t d = t->depth;
	if (unlikely(t->overflow)) {
		pop_overflow(t, (uintptr_t)fn);
		return;
	}
	if (unlikely(d == 0 || t->stack[d - 1].addr != (uintptr_t)fn)) {
		repair(t, (uintptr_t)fn);
		return;
	}
	cnsmp_thread_complete(t, d - 1, cnsmp_clock_now(), 0);
}

/* pop() for the exit hook, which has the guard to drop after. */
static CNSMP_NOINST __attribute__((noinline, cold)) void pop_unguard(
	struct cnsmp_thread *t, void *fn)
{
	pop(t, fn);
	cnsmp_tls.guard = 0;
}

/* A frame marked failed, an exception in flight, or inherited. */
static CNSMP_NOINST __attribute__((noinline, cold)) void complete_unguard(
	struct cnsmp_thread *t, uint32_t i, uint64_t now)
{
	cnsmp_thread_complete(t, i, now, 0);
	cnsmp_tls.guard = 0;
}

/* The callee's edge cache did not hold this caller. */
static CNSMP_NOINST __attribute__((noinline)) void edge_unguard(
	struct cnsmp_thread *t, uint32_t caller, struct cnsmp_counters *c, uint32_t id)
{
	cnsmp_count_edge(t, caller, c, id);
	cnsmp_tls.guard = 0;
}

/* Slow half of the entry check: the guard is set, or the runtime is not
 * active yet (first hook of the process) or any more. */
static CNSMP_NOINST __attribute__((noinline, cold)) int begin_slow(void)
{
	if (cnsmp_tls.guard)
		return 0;
	cnsmp_tls.guard = 1;
	int on = activate();
	cnsmp_tls.guard = 0;
	if (!on)
		return 0;
	cnsmp_tls.guard = 1;
	return 1;
}

/* The guard and the activity check of the slower entry points: 0 when the
 * hook must return at once.  errno is not saved by the hooks: the fast
 * paths make no call that can change it, and every slow path saves it. */
static inline __attribute__((always_inline)) int hook_begin(void)
{
	if (unlikely(cnsmp_tls.guard |
		     !atomic_load_explicit(&cnsmp_active, memory_order_relaxed)))
		return begin_slow();
	cnsmp_tls.guard = 1;
	return 1;
}

static CNSMP_NOINST __attribute__((noinline, cold)) void enter_slow(void *fn)
{
	if (hook_begin()) {
		push(fn, NULL, NULL, -1.0);
		cnsmp_tls.guard = 0;
	}
}

/* The entry of a tracked function, out of line (a tail call from the hook,
 * which then saves no register for the excluded case).  The common case
 * is written here with nothing to save either: everything unusual goes on
 * to push_tracked_unguard as a tail call. */
static CNSMP_NOINST __attribute__((noinline)) void enter_tracked(struct cnsmp_fn *f,
								 void *fn)
{
	if (unlikely(cnsmp_tls.guard |
		     !atomic_load_explicit(&cnsmp_active, memory_order_relaxed))) {
		enter_slow(fn);
		return;
	}
	cnsmp_tls.guard = 1;
	struct cnsmp_thread *t = cnsmp_tls.t;
	if (unlikely(!t)) {
		push_tracked_unguard(f, fn);
		return;
	}
	uint32_t id = f->id;
	struct cnsmp_counters *c = atomic_load_explicit(
		&t->chunk[id / CNSMP_CHUNK], memory_order_relaxed);
	uint32_t d = t->depth;
	if (unlikely(!c || d >= CNSMP_STACK_DEPTH || t->overflow || !cnsmp_clock_fast())) {
		push_tracked_unguard(f, fn);
		return;
	}
	open_frame(t, d, c + id % CNSMP_CHUNK, id, fn, 1);
	cnsmp_tls.guard = 0;
}

/* What the entry hook does with `fn`'s entry (NULL: first sight). */
static inline __attribute__((always_inline)) void enter_with(struct cnsmp_fn *f,
							      void *fn)
{
	if (likely(f != NULL)) {
		int state = atomic_load_explicit(&f->state, memory_order_relaxed);
		if (likely(state == CNSMP_FN_EXCLUDED))
			return;
		if (likely(state == CNSMP_FN_TRACKED)) {
			enter_tracked(f, fn);
			return;
		}
	}
	enter_slow(fn);
}

/* The entry hook past the home slot. */
static CNSMP_NOINST __attribute__((noinline)) void enter_probe(void *fn)
{
	enter_with(cnsmp_registry_probe((uintptr_t)fn), fn);
}

/* The entry hook, shaped so that an excluded function costs a registry
 * lookup and nothing else: no thread-local access, no guard store, no
 * register saves (everything else is a tail call), no stack, clock or
 * counter.  The lookup is lock-free and read-only, so it needs no guard
 * against re-entry, and an excluded function returns at once whether the
 * runtime is active or not, so the activity check can come after it. */
CNSMP_API void __cyg_profile_func_enter(void *fn, void *site)
{
	struct cnsmp_fn *f = cnsmp_registry_home((uintptr_t)fn);
	if (likely(f != NULL)) {
		enter_with(f, fn);
		return;
	}
	enter_probe(fn);
}

/* The exit of anything on a thread that has opened a tracked call.  The
 * common case, the top frame's own exit with nothing unusual about it, is
 * counted here with nothing to save: everything else leaves through a
 * tail call (pop_unguard, complete_unguard, edge_unguard). */
static CNSMP_NOINST __attribute__((noinline)) void exit_on(struct cnsmp_thread *t,
							    void *fn)
{
	if (unlikely(cnsmp_tls.guard |
		     !atomic_load_explicit(&cnsmp_active, memory_order_relaxed)))
		return;
	cnsmp_tls.guard = 1;
	uint32_t d = t->depth;
	if (unlikely(t->overflow | !cnsmp_clock_fast()) ||
	    unlikely(d == 0 || t->stack[d - 1].addr != (uintptr_t)fn)) {
		pop_unguard(t, fn);
		return;
	}
	struct cnsmp_frame *fr = &t->stack[d - 1];
	uint64_t now = cnsmp_clock_tsc();
	if (unlikely(fr->failed | t->unwinding | (d - 1 < t->inherited))) {
		complete_unguard(t, d - 1, now);
		return;
	}
	uint64_t ticks = now > fr->start ? now - fr->start : 0;
	uint64_t self = ticks > fr->child ? ticks - fr->child : 0;
	cnsmp_count_call_fast(t, fr->c, ticks, self);
	atomic_signal_fence(memory_order_release);
	t->depth = d - 1;
	if (d > 1) {
		struct cnsmp_frame *parent = fr - 1;
		struct cnsmp_counters *c = fr->c;
		uint32_t caller = parent->id;
		parent->child += ticks;
		struct cnsmp_edge *e = c->last_edge;
		if (unlikely(c->last_caller != caller || !e)) {
			edge_unguard(t, caller, c, fr->id);
			return;
		}
		cnsmp_bump(&e->calls, 1);
	}
	cnsmp_tls.guard = 0;
}

/* Split in two so that a thread without tracked calls (everything it runs
 * is excluded) returns before the registers pop() needs are saved: the
 * whole hook is then a thread-local load, a test and a return, and a
 * tracked exit pays one direct jump for it. */
CNSMP_API void __cyg_profile_func_exit(void *fn, void *site)
{
	struct cnsmp_thread *t = cnsmp_tls.t;
	if (unlikely(!t))
		return; /* this thread never opened a tracked call */
	exit_on(t, fn);
}

CNSMP_API void codensm_enter(void *fn, const char *name, const char *department, double weight)
{
	if (hook_begin()) {
		push(fn, name, department, weight);
		cnsmp_tls.guard = 0;
	}
}

CNSMP_API void codensm_exit(void *fn)
{
	struct cnsmp_thread *t = cnsmp_tls.t;
	if (t) /* else no call of this thread was ever opened */
		exit_on(t, fn);
}

static inline void mark_error(void)
{
	struct cnsmp_thread *t = cnsmp_tls.t;
	if (!t)
		return;
	if (t->overflow) { /* the innermost call is past the stack */
		if (!t->ov_failed) {
			struct cnsmp_counters *c = cnsmp_thread_counters(t, t->ov_id);
			if (c)
				cnsmp_bump(&c->errors, 1);
			t->ov_failed = 1;
		}
	} else if (t->depth > 0) {
		t->stack[t->depth - 1].failed = 1;
	}
}

CNSMP_API void codensm_error(void)
{
	int saved = errno;
	if (hook_begin()) {
		mark_error();
		cnsmp_tls.guard = 0;
	}
	errno = saved;
}

CNSMP_API unsigned long long codensm_repairs(void)
{
	return atomic_load_explicit(&cnsmp_thread_repairs, memory_order_relaxed);
}
