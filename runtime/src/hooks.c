/* hooks.c: the hot path: __cyg_profile_func_enter/exit and the public calls
 * that mark, open and close tracked calls on this thread's shadow stack.
 *
 * Nothing here allocates (bar the first time a thread calls a function,
 * reaches a depth, or meets a caller -> callee pair or more functions than
 * its cache holds: each a cold call out of line), locks, makes a syscall
 * or touches DWARF, because it runs on every call of the user's program
 * and must cost about as much as the call it measures: a tracked call is
 * a read of the thread's cache of decisions, two clock reads (rdtsc) and
 * stores into memory only this thread writes; an excluded call
 * is one load from a process-wide filter of excluded functions and
 * returns without touching the stack, the clock or a counter.  With
 * sampled timing (sample.c), an untimed call is the tracked call without
 * its clock reads and histogram.  Everything slow (the first sight of a
 * function, a cache miss, the thread's first hook, a function's first
 * call on the thread, a call deeper than the thread's stack has gone) is
 * a call to a cold function here or in registry.c and thread.c.
 *
 * The first calls of an excluded function also hand the hook's return
 * address to patch.c, which patches that call out of the running code
 * (x86-64): from then on the call costs nothing at all.
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

/* Keep pointer p in one register from here on.  gcc otherwise computes a
 * frame's address twice in the hooks: once for the stores before the
 * clock read (which takes %rax and %rdx) and again for those after it,
 * or again for the parent frame on exit; 2 and 3 instructions a call. */
#define CNSMP_ONE_REGISTER(p) __asm__("" : "+r"(p))

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

/* Slow path: a call beyond CNSMP_STACK_DEPTH (or whose stack chunk could
 * not be allocated): count it now (it is not timed), remember its id for
 * codensm_error(). */
static CNSMP_NOINST __attribute__((noinline, cold)) void too_deep(
	struct cnsmp_thread *t, struct cnsmp_counters *c)
{
	cnsmp_bump(&c->calls, 1);
	t->overflow++;
	t->ov_id = c->id;
	t->ov_failed = 0;
	cnsmp_thread_reslow(t);
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

/* Write the frame of a call of `fn` (counters c) at depth d of t, in the
 * current stack chunk (d < t->top), then publish it; `tsc`: the clock is
 * known to be the TSC (no call to read it). */
static inline __attribute__((always_inline)) void open_frame(
	struct cnsmp_thread *t, uint32_t d, struct cnsmp_counters *c, void *fn,
	int tsc, uint64_t flags)
{
	struct cnsmp_frame *fr = &t->fbase[d + 1];
	CNSMP_ONE_REGISTER(fr);
	fr->addr = (uintptr_t)fn;
	fr->c = c;
	fr->child = 0;
	fr->flags = flags;
	fr->start = tsc ? cnsmp_clock_tsc() : cnsmp_clock_now();
	atomic_signal_fence(memory_order_release); /* frame before depth */
	t->depth = d + 1;
}

/* open_frame for an untimed call (sampled timing): no clock read. */
static inline __attribute__((always_inline)) void open_untimed(
	struct cnsmp_thread *t, uint32_t d, struct cnsmp_counters *c, void *fn,
	uint64_t flags)
{
	struct cnsmp_frame *fr = &t->fbase[d + 1];
	fr->addr = (uintptr_t)fn;
	fr->c = c;
	fr->child = 0;
	fr->flags = CNSMP_FR_UNTIMED | flags;
	atomic_signal_fence(memory_order_release); /* frame before depth */
	t->depth = d + 1;
}

/* Open a call with counters c on t (guard held, runtime active), or count
 * it untimed past the stack's depth.  A call past the current stack
 * chunk takes a growth step first, and its frame, the first of its
 * chunk, is marked so that its exit steps back (CNSMP_FR_CHUNK). */
static CNSMP_NOINST void push_counted(struct cnsmp_thread *t,
				      struct cnsmp_counters *c, void *fn)
{
	uint32_t d = t->depth;
	if (unlikely(t->overflow) || (d >= t->top && cnsmp_stack_grow(t))) {
		too_deep(t, c);
		return;
	}
	int first = t->top > CNSMP_STACK_FIRST && d == t->top / 2;
	open_frame(t, d, c, fn, 0, first ? CNSMP_FR_CHUNK : 0);
}

/* Open a call of tracked `f` (guard held, runtime active), attaching the
 * thread and allocating its counters as needed.  Returns the counters, or
 * NULL when out of memory (the call is then not counted). */
static CNSMP_NOINST struct cnsmp_counters *push_tracked(struct cnsmp_fn *f,
							void *fn)
{
	struct cnsmp_thread *t = cnsmp_tls.t;
	if (unlikely(!t) && !(t = cnsmp_thread_attach()))
		return NULL;
	struct cnsmp_counters *c = cnsmp_thread_counters(t, f->id);
	if (likely(c != NULL))
		push_counted(t, c, fn);
	return c;
}

/* A call of a function with probes armed (never cached, so every call
 * of it comes here through push): the probes see it begin, then a
 * tracked one is opened as usual, its frame marked so that its exit
 * reaches the probes too (exit_flagged). */
static CNSMP_NOINST __attribute__((noinline, cold)) void push_probed(
	struct cnsmp_fn *f, void *fn, int state)
{
	cnsmp_probes_enter(f, fn);
	struct cnsmp_thread *t = cnsmp_tls.t;
	uint32_t d = t ? t->depth : 0;
	if (state == CNSMP_FN_TRACKED && push_tracked(f, fn) &&
	    (t = cnsmp_tls.t)->depth == d + 1 && !t->overflow)
		cnsmp_frame_at(t, d)->flags |= CNSMP_FR_PROBED;
	else if (state == CNSMP_FN_DROPPED)
		atomic_fetch_add_explicit(&cnsmp_registry_dropped_calls, 1,
					  memory_order_relaxed);
}

/* Open a call of `fn` whatever it is (guard held, runtime active). */
static CNSMP_NOINST __attribute__((noinline)) void push(
	void *fn, const char *name, const char *department, double weight)
{
	struct cnsmp_fn *f = cnsmp_registry_lookup((uintptr_t)fn);
	if (unlikely(!f) && !(f = first_sight(fn, name, department, weight)))
		return;
	int state = atomic_load_explicit(&f->state, memory_order_relaxed);
	if (unlikely(atomic_load_explicit(&f->probes, memory_order_relaxed) != NULL))
		push_probed(f, fn, state);
	else if (state == CNSMP_FN_TRACKED)
		push_tracked(f, fn);
	else if (state == CNSMP_FN_DROPPED)
		atomic_fetch_add_explicit(&cnsmp_registry_dropped_calls, 1,
					  memory_order_relaxed);
}

/* Is `fn` tracked?  The thread's cache first, then the registry. */
static CNSMP_NOINST int is_tracked(struct cnsmp_thread *t, uintptr_t fn)
{
	struct cnsmp_counters *c;
	if (cnsmp_tcache_get(t, fn, &c))
		return c != CNSMP_TC_EXCLUDED;
	struct cnsmp_fn *f = cnsmp_registry_lookup(fn);
	return f && atomic_load_explicit(&f->state, memory_order_relaxed) ==
			    CNSMP_FN_TRACKED;
}

/* The top frame (index i) ends by its own exit, outside the fast path;
 * an untimed one reads no clock. */
static inline void complete_top(struct cnsmp_thread *t, uint32_t i)
{
	struct cnsmp_frame *fr = cnsmp_frame_at(t, i);
	cnsmp_thread_complete(t, i, (fr->flags & CNSMP_FR_UNTIMED)
					    ? 0 : cnsmp_clock_now(), 0);
}

/* A tracked exit that is not on top: pop until `fn` matches, each popped
 * frame counted as a completed call (its exit hook never ran: longjmp, or
 * clang unwinding an exception).  Not on the stack at all: ignored.  The
 * exit of an excluded function on a thread with tracked calls comes here
 * too and leaves at the cache. */
static CNSMP_NOINST __attribute__((noinline)) void repair(
	struct cnsmp_thread *t, uintptr_t fn)
{
	if (!is_tracked(t, fn))
		return; /* excluded or dropped: never pushed, no clock read */
	uint64_t now = cnsmp_clock_now();
	uint32_t i = t->depth;
	while (i > 0 && cnsmp_frame_at(t, i - 1)->addr != fn)
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
	if (is_tracked(t, fn)) {
		t->overflow--;
		t->ov_failed = 0;
		cnsmp_thread_reslow(t);
	}
}

/* Close the innermost call of `fn` (guard held), whatever is unusual
 * about it: a stack past its depth, an exit that is not the top frame's
 * (longjmp, clang's unwinding, an excluded function), a call marked
 * failed, an exception in flight, a frame inherited across fork, a clock
 * that is not the TSC. */
static CNSMP_NOINST __attribute__((noinline)) void pop(struct cnsmp_thread *t,
						       void *fn)
{
	uint32_t d = t->depth;
	if (unlikely(t->overflow)) {
		pop_overflow(t, (uintptr_t)fn);
		return;
	}
	if (unlikely(d == 0 || cnsmp_frame_at(t, d - 1)->addr != (uintptr_t)fn)) {
		repair(t, (uintptr_t)fn);
		return;
	}
	complete_top(t, d - 1);
}

/* The exit hook's slow path.  The runtime's activity is not checked on
 * exits: a call opened while it was active is closed and counted
 * whenever it ends (an inactive runtime opens none). */
static CNSMP_NOINST __attribute__((noinline)) void exit_slow(
	struct cnsmp_thread *t, void *fn)
{
	if (cnsmp_tls.guard)
		return;
	cnsmp_tls.guard = 1;
	if (unlikely(atomic_load_explicit(&cnsmp_probes_live, memory_order_relaxed))) {
		/* An excluded probed function's exit (it has no frame), or a
		 * probed frame's exit past the fast path. */
		uint32_t d = t->depth;
		struct cnsmp_frame *top = d ? cnsmp_frame_at(t, d - 1) : NULL;
		cnsmp_probes_exit(t, (uintptr_t)fn,
				  top && top->addr == (uintptr_t)fn ? top->flags : 0);
	}
	pop(t, fn);
	cnsmp_tls.guard = 0;
}

/* An exit that is not the top frame's, or the guard is set, or the
 * stack is past its limit.  Most often that is the exit of an excluded
 * function called by tracked code (never pushed, nothing to close): the
 * excluded filter or the thread's cache says so without the guard, since
 * the reads change nothing, and the hook returns here instead of going
 * through pop and repair, which cost as much again as the whole excluded
 * call. */
static CNSMP_NOINST __attribute__((noinline)) void exit_other(
	struct cnsmp_thread *t, void *fn, void *ret)
{
	struct cnsmp_counters *c;
	if (likely(cnsmp_xfilter_has((uintptr_t)fn)) ||
	    (likely(cnsmp_tcache_get(t, (uintptr_t)fn, &c)) && c == CNSMP_TC_EXCLUDED)) {
		cnsmp_patch_exit(fn, ret);
		return;
	}
	exit_slow(t, fn);
}

/* The callee's edge cache did not hold this caller. */
static CNSMP_NOINST __attribute__((noinline)) void edge_unguard(
	struct cnsmp_thread *t, struct cnsmp_counters *parent,
	struct cnsmp_counters *c)
{
	cnsmp_count_edge(t, parent, c);
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

/* A cached tracked call with something unusual about it: the guard is
 * set, the stack is full, an exception is in flight, the clock is not the
 * TSC. */
static CNSMP_NOINST __attribute__((noinline, cold)) void enter_hit_slow(
	struct cnsmp_thread *t, struct cnsmp_counters *c, void *fn)
{
	if (hook_begin()) {
		push_counted(t, c, fn);
		cnsmp_tls.guard = 0;
	}
}

/* A cached call whose slot is tagged (sampling is on, the function is in
 * probation or sampled).  The common case, an untimed call of a sampled
 * function, is a countdown and a frame without a clock read. */
static CNSMP_NOINST __attribute__((noinline)) void enter_tagged(
	struct cnsmp_thread *t, struct cnsmp_counters *tagged, void *fn)
{
	struct cnsmp_counters *c = (struct cnsmp_counters *)(
		(uintptr_t)tagged & ~CNSMP_TC_SAMPLE);
	uint32_t d = t->depth;
	/* Of what t->limit stands for, only a full stack chunk matters here
	 * (a growth step, as in push_counted, so that a function called at
	 * a chunk's first slot is sampled like any other): this path reads
	 * the clock through cnsmp_clock_now (any clock), and an exception in
	 * flight concerns exits.  Sampling pays off most where the clock is
	 * not the TSC: the vDSO's costs more. */
	if (unlikely(cnsmp_tls.guard) || (unlikely(d >= t->limit) && t->overflow)) {
		enter_hit_slow(t, c, fn);
		return;
	}
	cnsmp_tls.guard = 1;
	uint64_t flags = 0;
	if (unlikely(d >= t->top)) {
		if (cnsmp_stack_grow(t)) {
			too_deep(t, c);
			cnsmp_tls.guard = 0;
			return;
		}
		flags = CNSMP_FR_CHUNK;
	}
	if (likely(c->smode == CNSMP_SM_SAMPLED) && likely(c->skip > 1)) {
		c->skip--;
		open_untimed(t, d, c, fn, flags);
	} else {
		cnsmp_sample_due(t, c, fn);
		open_frame(t, d, c, fn, 0, flags);
	}
	cnsmp_tls.guard = 0;
}

/* The exit of a frame marked failed, thrown through, inherited across
 * fork or first in its stack chunk (guard held); untimed frames with no
 * other flag stay in exit_on. */
static CNSMP_NOINST __attribute__((noinline)) void exit_flagged(
	struct cnsmp_thread *t, uint32_t i)
{
	struct cnsmp_frame *fr = cnsmp_frame_at(t, i);
	if (unlikely(fr->flags & CNSMP_FR_PROBED))
		cnsmp_probes_exit(t, fr->addr, fr->flags);
	complete_top(t, i);
	cnsmp_tls.guard = 0;
}

/* A thread with a block whose cache does not hold `fn`: decide through
 * the registry and remember the decision (an excluded function in the
 * excluded filter too).  The generation is read before the registry, so
 * a decision that changes meanwhile is filed under the old one and taken
 * back (cnsmp_tcache_put). */
static CNSMP_NOINST __attribute__((noinline)) void enter_miss(
	struct cnsmp_thread *t, void *fn, void *ret)
{
	uint32_t g = atomic_load_explicit(&cnsmp_registry_gen.v, memory_order_acquire);
	struct cnsmp_fn *f = cnsmp_registry_lookup((uintptr_t)fn);
	int state = f ? atomic_load_explicit(&f->state, memory_order_relaxed) : 0;
	if ((state != CNSMP_FN_TRACKED && state != CNSMP_FN_EXCLUDED) ||
	    unlikely(atomic_load_explicit(&f->probes, memory_order_relaxed) != NULL)) {
		enter_slow(fn); /* first sight, dropped, or probed */
		return;
	}
	if (state == CNSMP_FN_EXCLUDED) { /* and in this thread's cache, below */
		cnsmp_registry_remember_excluded((uintptr_t)fn, g);
		cnsmp_patch_entry(fn, ret);
	}
	if (!hook_begin())
		return;
	struct cnsmp_counters *c = NULL;
	if (state != CNSMP_FN_TRACKED || (c = push_tracked(f, fn)))
		cnsmp_tcache_put(t, (uintptr_t)fn, cnsmp_sample_tag(c), g);
	cnsmp_tls.guard = 0;
}

/* A thread's first tracked call (it has no block yet), or first sight. */
static CNSMP_NOINST __attribute__((noinline, cold)) void enter_first(
	struct cnsmp_fn *f, void *fn)
{
	if (!f || atomic_load_explicit(&f->state, memory_order_relaxed) !=
			  CNSMP_FN_TRACKED ||
	    unlikely(atomic_load_explicit(&f->probes, memory_order_relaxed) != NULL)) {
		enter_slow(fn);
		return;
	}
	if (hook_begin()) {
		push_tracked(f, fn);
		cnsmp_tls.guard = 0;
	}
}

/* A thread without a block whose call the excluded filter did not
 * decide: the registry does, and an excluded function goes into the
 * filter.  The generation is read before the registry (as in
 * enter_miss), so that a fill racing with a change is taken back. */
static CNSMP_NOINST __attribute__((noinline)) void enter_unfiltered(void *fn,
								    void *ret)
{
	uint32_t g = atomic_load_explicit(&cnsmp_registry_gen.v, memory_order_acquire);
	struct cnsmp_fn *f = cnsmp_registry_lookup((uintptr_t)fn);
	if (likely(f != NULL) && likely(atomic_load_explicit(
		    &f->state, memory_order_relaxed) == CNSMP_FN_EXCLUDED) &&
	    likely(atomic_load_explicit(&f->probes, memory_order_relaxed) == NULL)) {
		cnsmp_registry_remember_excluded((uintptr_t)fn, g);
		cnsmp_patch_entry(fn, ret);
		return;
	}
	enter_first(f, fn);
}

/* The entry hook.  An excluded function is one load from the excluded
 * filter (thread.h) and nothing else: no thread-local load, no guard
 * store, no register saves (everything else is a tail call), no stack,
 * clock or counter.  Past it, a thread that has opened a tracked call has
 * a block and a cache of decisions: a tracked call is a cache read, a
 * frame written and one clock read.  A thread that never opened one
 * asks the registry (enter_unfiltered), which fills the filter.  The
 * filter and the registry are lock-free and read-only here, so they need
 * no guard against re-entry, and an excluded function returns at once
 * whether the runtime is active or not, so the activity check can come
 * after them (a cache hit stands for it: making the runtime inactive
 * empties every cache). */
/* Neither hook reads `site` (the return address is its own): patch.c
 * turns the compiler's load of it into a NOP, and a call given back
 * passes whatever %rsi holds then. */
CNSMP_API void __cyg_profile_func_enter(void *fn, void *site)
{
	if (likely(cnsmp_xfilter_has((uintptr_t)fn))) {
		/* patching on: a site not patched yet (patch.c) */
		if (unlikely(atomic_load_explicit(&cnsmp_patch_live, memory_order_relaxed)))
			cnsmp_patch_entry_hit(fn, __builtin_return_address(0));
		return;
	}
	struct cnsmp_thread *t = cnsmp_tls.t;
	if (likely(t != NULL)) {
		struct cnsmp_counters *c;
		if (unlikely(!cnsmp_tcache_get(t, (uintptr_t)fn, &c))) {
			enter_miss(t, fn, __builtin_return_address(0));
			return;
		}
		if (unlikely((uintptr_t)c & CNSMP_TC_SAMPLE)) {
			if (c == CNSMP_TC_EXCLUDED)
				return;
			/* Sampled timing: an untimed call is counted here
			 * (the common case), anything else in enter_tagged. */
			struct cnsmp_counters *u = (struct cnsmp_counters *)(
				(uintptr_t)c & ~CNSMP_TC_SAMPLE);
			uint32_t d = t->depth;
			if (likely(!cnsmp_tls.guard) && likely(d < t->limit) &&
			    likely(u->smode == CNSMP_SM_SAMPLED) && likely(u->skip > 1)) {
				cnsmp_tls.guard = 1;
				u->skip--;
				open_untimed(t, d, u, fn, 0);
				cnsmp_tls.guard = 0;
				return;
			}
			enter_tagged(t, c, fn);
			return;
		}
		uint32_t d = t->depth;
		if (unlikely(cnsmp_tls.guard) || unlikely(d >= t->limit)) {
			enter_hit_slow(t, c, fn);
			return;
		}
		cnsmp_tls.guard = 1;
		open_frame(t, d, c, fn, 1, 0);
		cnsmp_tls.guard = 0;
		return;
	}
	enter_unfiltered(fn, __builtin_return_address(0));
}

/* The exit of anything on a thread that has opened a tracked call.  The
 * common case, the top frame's own exit with nothing unusual about it, is
 * counted here with nothing to save: everything else leaves through a
 * tail call (exit_slow, exit_flagged, edge_unguard).  No depth test:
 * an empty stack's top is the root frame, whose address matches nothing,
 * and the top frame always has a parent (the root's edges are counted
 * nowhere), in the same stack chunk: the first frame of a later chunk is
 * flagged (CNSMP_FR_CHUNK), so its exit leaves through exit_flagged. */
static inline __attribute__((always_inline)) void exit_on(
	struct cnsmp_thread *t, void *fn)
{
	uint32_t d = t->depth;
	struct cnsmp_frame *fr = &t->fbase[d]; /* cnsmp_frame_at(t, d - 1) */
	CNSMP_ONE_REGISTER(fr); /* the parent is fr - 1, not computed again */
	if (unlikely(cnsmp_tls.guard) || unlikely(d > t->limit) ||
	    unlikely(fr->addr != (uintptr_t)fn)) {
		/* Inlined: the return address is the exit hook's own. */
		exit_other(t, fn, __builtin_return_address(0));
		return;
	}
	cnsmp_tls.guard = 1;
	struct cnsmp_counters *c = fr->c;
	uint64_t ticks;
	if (unlikely(fr->flags)) {
		/* An untimed call (sampled timing) shares the tail below:
		 * its caller's child time gets the estimate. */
		if (unlikely(fr->flags != CNSMP_FR_UNTIMED)) {
			exit_flagged(t, d - 1);
			return;
		}
		ticks = atomic_load_explicit(&c->est_ticks, memory_order_relaxed);
		cnsmp_count_untimed(c, 0);
	} else {
		uint64_t now = cnsmp_clock_tsc();
		ticks = cnsmp_ticks_since(now, fr->start);
		uint64_t self = cnsmp_ticks_since(ticks, fr->child);
		cnsmp_count_call_fast(t, c, ticks, self);
	}
	atomic_signal_fence(memory_order_release);
	t->depth = d - 1;
	struct cnsmp_frame *parent = fr - 1;
	struct cnsmp_counters *pc = parent->c;
	parent->child += ticks;
	struct cnsmp_edge *e = c->last_edge;
	if (unlikely(c->last_parent != pc)) {
		edge_unguard(t, pc, c);
		return;
	}
	cnsmp_bump(&e->calls, 1);
	cnsmp_tls.guard = 0;
}

/* A thread without tracked calls (everything it runs is excluded) returns
 * at the first test: the whole hook is a thread-local load, a test and a
 * return. */
CNSMP_API void __cyg_profile_func_exit(void *fn, void *site)
{
	struct cnsmp_thread *t = cnsmp_tls.t;
	if (unlikely(!t)) { /* this thread never opened a tracked call */
		cnsmp_patch_exit(fn, __builtin_return_address(0));
		return;
	}
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
		cnsmp_frame_at(t, t->depth - 1)->flags |= CNSMP_FR_FAILED;
	}
}

CNSMP_API void codensm_error(void)
{
	int saved = errno;
	if (hook_begin()) {
		mark_error();
		if (atomic_load_explicit(&cnsmp_probes_live, memory_order_relaxed))
			cnsmp_probes_error(cnsmp_tls.t);
		cnsmp_tls.guard = 0;
	}
	errno = saved;
}
