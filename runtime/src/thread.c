/* thread.c: per-thread state: the block's life (attach, death, reuse), the
 * end of a call (counters, edge, error, incident), exceptions and crashes.
 *
 * cnsmp_thread_complete runs on every tracked exit that leaves the fast
 * path: no lock, no syscall, no allocation (bar an edge segment when a
 * thread's new caller -> callee pair finds the ones it has full).
 * Recording an incident (a failed call) reads CLOCK_REALTIME through the
 * vDSO; that is rare, not per call.
 * Layout and memory orderings are described in thread.h.
 */
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include "thread.h"

_Atomic(struct cnsmp_thread *) cnsmp_threads;
_Atomic uint64_t cnsmp_thread_repairs;
_Atomic uint64_t cnsmp_thread_unmatched;
_Atomic uint64_t cnsmp_thread_started_us;
struct cnsmp_counters cnsmp_hist_sink; /* t->pend_c when nothing is pending */

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

/* Runs at thread exit with the block.  Later hooks of this thread (other
 * keys' destructors) must not touch the block any more: once the flusher
 * has collected it, another thread may own it.  So the guard stays set. */
static CNSMP_NOINST void on_thread_exit(void *p)
{
	struct cnsmp_thread *t = p;
	cnsmp_tls.guard = 1;
	cnsmp_tls.t = NULL;
	cnsmp_thread_drain(t);
	atomic_store_explicit(&t->state, CNSMP_T_DEAD, memory_order_release);
}

static CNSMP_NOINST void make_key(void)
{
	pthread_key_create(&key, on_thread_exit);
}

/* A block no thread owns, or NULL.  An exited thread's block (DEAD) is
 * taken over as it is: its counters only ever grow, so the new owner adds
 * to them and the flusher's next delta holds both owners' calls.  Waiting
 * for the flusher to read and zero it first would make a program that
 * starts threads faster than its flush interval hold a block for every
 * thread started in the interval.  FREE blocks are the zeroed ones of a
 * fork child. */
static CNSMP_NOINST struct cnsmp_thread *claim_free(void)
{
	struct cnsmp_thread *t = atomic_load_explicit(&cnsmp_threads,
						      memory_order_acquire);
	for (; t; t = atomic_load_explicit(&t->next, memory_order_acquire)) {
		int s = atomic_load_explicit(&t->state, memory_order_relaxed);
		if ((s == CNSMP_T_DEAD || s == CNSMP_T_FREE) &&
		    atomic_compare_exchange_strong_explicit(
			    &t->state, &s, CNSMP_T_LIVE, memory_order_acq_rel,
			    memory_order_relaxed))
			return t;
	}
	return NULL;
}

CNSMP_NOINST struct cnsmp_thread *cnsmp_thread_attach(void)
{
	int saved = errno;
	pthread_once(&key_once, make_key);
	uint64_t zero = 0;
	atomic_compare_exchange_strong(&cnsmp_thread_started_us, &zero,
				       cnsmp_thread_now_us());
	struct cnsmp_thread *t = claim_free();
	if (t) {
		/* Owner-only state of the previous owner; the shared counters
		 * carry on (see claim_free). */
		t->depth = t->overflow = t->ov_failed = t->inherited = 0;
		cnsmp_stack_fit(t);
		t->pend_c = &cnsmp_hist_sink;
		t->throw_epoch = t->exc_epoch = 0;
		t->unwinding = 0;
		/* The cache stays: it names this block's counters. */
	} else {
		t = cnsmp_arena_alloc(sizeof *t);
		if (!t) {
			errno = saved;
			return NULL;
		}
		atomic_init(&t->state, CNSMP_T_LIVE);
		t->pend_c = &cnsmp_hist_sink;
		t->fbase = t->frames;
		t->top = CNSMP_STACK_FIRST;
		atomic_init(&t->cache, t->cache0);
		atomic_init(&t->cache_mask, CNSMP_TCACHE_FIRST - 1);
		struct cnsmp_thread *head = atomic_load_explicit(
			&cnsmp_threads, memory_order_relaxed);
		do
			atomic_store_explicit(&t->next, head,
					      memory_order_relaxed);
		while (!atomic_compare_exchange_weak_explicit(
			&cnsmp_threads, &head, t, memory_order_seq_cst,
			memory_order_relaxed)); /* see cnsmp_tcache_put */
	}
	cnsmp_thread_reslow(t);
	pthread_setspecific(key, t);
	cnsmp_tls.t = t;
	errno = saved;
	return t;
}

/* The counters of `id`, none called yet (frames name their function
 * through its counters: c->id). */
static CNSMP_NOINST void name_counters(struct cnsmp_counters *c, uint32_t id)
{
	c->id = id;
	c->last_parent = CNSMP_NO_PARENT;
}

CNSMP_NOINST struct cnsmp_counters *cnsmp_thread_chunk_alloc(
	struct cnsmp_thread *t, uint32_t id)
{
	_Atomic(struct cnsmp_cset *) *at = &t->chunk[id / CNSMP_CHUNK];
	struct cnsmp_cset *set = atomic_load_explicit(at, memory_order_relaxed);
	if (!set) {
		set = cnsmp_arena_alloc(sizeof *set);
		if (!set)
			return NULL;
		atomic_store_explicit(at, set, memory_order_release);
	}
	struct cnsmp_counters *c = cnsmp_arena_alloc(sizeof(struct cnsmp_cell));
	if (!c)
		return NULL;
	name_counters(c, id);
	atomic_store_explicit(&set->c[id % CNSMP_CHUNK], c, memory_order_release);
	return c;
}

/* The chunk is in t->stack before any frame in it is published (the
 * crash handler reads frames through t->stack). */
CNSMP_NOINST int cnsmp_stack_grow(struct cnsmp_thread *t)
{
	uint32_t j = t->depth + 1;
	if (j > CNSMP_STACK_DEPTH)
		return -1;
	unsigned k = cnsmp_stack_chunk(j);
	uint32_t s = cnsmp_stack_start(k); /* chunk k >= 1 holds s frames */
	if (!t->stack[k]) {
		struct cnsmp_frame *f = cnsmp_arena_alloc(s * sizeof *f);
		if (!f)
			return -1;
		t->stack[k] = f;
		atomic_signal_fence(memory_order_release);
	}
	t->fbase = t->stack[k] - s - 1;
	t->top = 2 * s;
	cnsmp_thread_reslow(t);
	return 0;
}

/* Segment by segment: a pair is claimed in the first segment with a
 * free slot among the 16 from its hash, and slots are never emptied
 * (bar a fork child's zeroing), so a pair is never in a later segment
 * than the first one whose 16 slots had room. */
CNSMP_NOINST struct cnsmp_edge *cnsmp_thread_edge(struct cnsmp_thread *t,
						 uint32_t caller, uint32_t callee)
{
	uint64_t k = ((uint64_t)caller << 32 | callee) + 1;
	uint64_t h = k * 0x9e3779b97f4a7c15ull >> 40;
	for (unsigned g = 0; g < CNSMP_ESEGS; g++) {
		struct cnsmp_edge *seg = atomic_load_explicit(&t->eseg[g],
							      memory_order_relaxed);
		if (!seg) {
			seg = cnsmp_arena_alloc(CNSMP_ESEG_SIZE(g) * sizeof *seg);
			if (!seg)
				break;
			atomic_store_explicit(&t->eseg[g], seg, memory_order_release);
		}
		size_t mask = CNSMP_ESEG_SIZE(g) - 1, i = (size_t)h & mask;
		for (unsigned n = 0; n < 16; n++, i = (i + 1) & mask) {
			struct cnsmp_edge *e = &seg[i];
			uint64_t have = atomic_load_explicit(&e->key,
							     memory_order_relaxed);
			if (have == 0)
				atomic_store_explicit(&e->key, have = k,
						      memory_order_release);
			if (have == k)
				return e;
		}
	}
	return &t->edge_sink; /* no room: counted, not shipped */
}

/* The cache grows to a new, empty array: the old one is not freed,
 * since another thread's cnsmp_thread_forget_decisions may be clearing
 * it, nor copied, since a copy could carry a slot that thread already
 * went past.  The array is published before its mask, both sequentially
 * consistent: a forget that reads the old mask then reads the new array,
 * clears part of it, and any fill in the rest comes after the new mask's
 * store, so after the generation's bump it read: that fill is taken back.
 * The old arrays add up to a third of the final one. */
static CNSMP_NOINST struct cnsmp_tslot *tcache_grow(struct cnsmp_thread *t,
						    uintptr_t addr)
{
	size_t size = 4 * ((size_t)atomic_load_explicit(&t->cache_mask,
							memory_order_relaxed) + 1);
	if (size > CNSMP_TCACHE)
		size = CNSMP_TCACHE;
	struct cnsmp_tslot *n = cnsmp_arena_alloc(size * sizeof *n);
	if (!n)
		return NULL;
	atomic_store(&t->cache, n);
	atomic_store(&t->cache_mask, (uint32_t)size - 1);
	t->cache_fills = 0;
	return &n[cnsmp_tcache_index(addr) & (size - 1)];
}

/* The slot of addr in t's cache, growing the cache first if filling it
 * would evict another function or it is a quarter full. */
static CNSMP_NOINST struct cnsmp_tslot *tcache_slot_to_fill(struct cnsmp_thread *t,
							    uintptr_t addr)
{
	uint32_t mask = atomic_load_explicit(&t->cache_mask, memory_order_relaxed);
	struct cnsmp_tslot *s = &atomic_load_explicit(&t->cache, memory_order_relaxed)
		[cnsmp_tcache_index(addr) & mask];
	uintptr_t had = atomic_load_explicit(&s->addr, memory_order_relaxed);
	if (had == addr || mask + 1 >= CNSMP_TCACHE)
		return s;
	if (had == 0 && ++t->cache_fills <= (mask + 1) / 4)
		return s;
	struct cnsmp_tslot *n = tcache_grow(t, addr);
	return n ? n : s;
}

/* A fill and a change of decisions can race: the owner decided under
 * the old state and stores the address after the invalidating thread
 * went past its slot.  As for the excluded filter (registry.c), both
 * sides are sequentially consistent: the owner stores the address, then
 * re-reads the generation; the invalidator bumps the generation, then
 * reads the list of blocks and clears each filled slot.  Either the
 * re-read comes after the bump (the owner sees the change and takes its
 * fill back), or the store comes before the clear, which wipes it.  A
 * block is in the list before its owner's first fill (the seq_cst
 * compare-and-swap in cnsmp_thread_attach), so the invalidator's walk,
 * after the bump, finds it. */
CNSMP_NOINST void cnsmp_tcache_put(struct cnsmp_thread *t, uintptr_t addr,
				   struct cnsmp_counters *c, uint32_t g)
{
	struct cnsmp_tslot *s = tcache_slot_to_fill(t, addr);
	atomic_store_explicit(&s->addr, 0, memory_order_relaxed); /* see cnsmp_tcache_get */
	atomic_signal_fence(memory_order_release);
	s->c = c ? c : CNSMP_TC_EXCLUDED;
	atomic_signal_fence(memory_order_release);
	atomic_store(&s->addr, addr);
	if (atomic_load(&cnsmp_registry_gen.v) != g)
		atomic_store_explicit(&s->addr, 0, memory_order_relaxed);
}

CNSMP_NOINST void cnsmp_tcache_retag(struct cnsmp_thread *t, uintptr_t addr,
				     struct cnsmp_counters *c)
{
	struct cnsmp_tslot *s = &atomic_load_explicit(&t->cache, memory_order_relaxed)
		[cnsmp_tcache_index(addr) &
		 atomic_load_explicit(&t->cache_mask, memory_order_relaxed)];
	if (atomic_load_explicit(&s->addr, memory_order_relaxed) == addr)
		s->c = c;
}

/* Every block, live or not: a dead one's cache is its next owner's.
 * The mask before the array (tcache_grow says why that is enough).  Only
 * filled slots are written. */
CNSMP_NOINST void cnsmp_thread_forget_decisions(void)
{
	for (struct cnsmp_thread *t = atomic_load(&cnsmp_threads); t;
	     t = atomic_load_explicit(&t->next, memory_order_acquire)) {
		size_t mask = atomic_load(&t->cache_mask);
		struct cnsmp_tslot *c = atomic_load(&t->cache);
		for (size_t i = 0; i <= mask; i++)
			if (atomic_load(&c[i].addr))
				atomic_store(&c[i].addr, 0);
	}
}

/* The ids of frames [0, n), the innermost CNSMP_INCIDENT_MAX_DEPTH kept. */
static CNSMP_NOINST uint32_t chain_of(struct cnsmp_thread *t, uint32_t n,
				      uint32_t *chain)
{
	uint32_t from = n > CNSMP_INCIDENT_MAX_DEPTH ? n - CNSMP_INCIDENT_MAX_DEPTH : 0;
	for (uint32_t i = from; i < n; i++)
		chain[i - from] = cnsmp_frame_at(t, i)->c->id;
	return n - from;
}

/* Count the call of frame fr as ended at `now` (failed if `error`);
 * returns its duration for its caller's child time: an untimed call's is
 * its function's estimate (sampled timing), so that the caller's self
 * time still leaves it out. */
static CNSMP_NOINST uint64_t count_end(struct cnsmp_frame *fr, uint64_t now,
				       int error)
{
	if (fr->flags & CNSMP_FR_UNTIMED) {
		cnsmp_count_untimed(fr->c, error);
		return atomic_load_explicit(&fr->c->est_ticks, memory_order_relaxed);
	}
	uint64_t ticks = cnsmp_ticks_since(now, fr->start);
	cnsmp_count_call(fr->c, ticks, cnsmp_ticks_since(ticks, fr->child), error);
	return ticks;
}

CNSMP_NOINST void cnsmp_thread_complete(struct cnsmp_thread *t, uint32_t i,
					uint64_t now, int repaired)
{
	if (unlikely(i < t->inherited)) {
		/* Entered by the parent before fork(): the parent counts it. */
		t->depth = t->inherited = i;
		cnsmp_stack_fit(t);
		return;
	}
	struct cnsmp_frame *fr = cnsmp_frame_at(t, i);
	/* An exception left this frame: GCC runs its exit hook while
	 * unwinding; under clang it is popped later by a repair.  Either way
	 * it was entered before the latest throw. */
	int exc = (fr->flags & CNSMP_FR_THROWN) && (t->unwinding || repaired);
	int failed = fr->flags & CNSMP_FR_FAILED;
	struct cnsmp_counters *c = fr->c;
	uint64_t ticks = count_end(fr, now, exc || failed);
	if (exc && t->exc_epoch != t->throw_epoch) {
		t->exc_epoch = t->throw_epoch; /* one incident per throw */
		cnsmp_thread_record_incident(t, t->throw_chain, t->throw_depth,
					     "exception", 0);
	} else if (failed && !exc) {
		uint32_t chain[CNSMP_INCIDENT_MAX_DEPTH];
		uint32_t n = chain_of(t, i + 1, chain);
		cnsmp_thread_record_incident(t, chain, n, "error", 0);
	}
	atomic_signal_fence(memory_order_release);
	t->depth = i;
	cnsmp_stack_fit(t);
	if (i > 0) {
		struct cnsmp_frame *parent = cnsmp_frame_at(t, i - 1);
		parent->child += ticks;
		cnsmp_count_edge(t, parent->c, c);
	}
}

static CNSMP_NOINST uint64_t incident_hash(const uint32_t *chain,
					   uint32_t depth, const char *kind,
					   int signo)
{
	uint64_t h = cnsmp_hash(CNSMP_HASH_SEED ^ (unsigned)signo, chain,
				depth * sizeof *chain);
	h = cnsmp_hash_mix(cnsmp_hash(h, kind, __builtin_strlen(kind)));
	return h ? h : 1;
}

CNSMP_NOINST uint64_t cnsmp_thread_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* t's incident table, allocated on first use, or NULL.  The crash
 * handler may record the thread's first incident, even while its owner
 * is allocating the table: the first table published wins. */
static CNSMP_NOINST struct cnsmp_incident_slot *incident_table(struct cnsmp_thread *t)
{
	struct cnsmp_incident_slot *have = atomic_load_explicit(
		&t->incidents, memory_order_acquire);
	if (have)
		return have;
	struct cnsmp_incident_slot *m =
		cnsmp_arena_alloc(CNSMP_INCIDENTS_PER_THREAD * sizeof *m);
	if (m && !atomic_compare_exchange_strong_explicit(
			 &t->incidents, &have, m, memory_order_acq_rel,
			 memory_order_acquire))
		return have; /* the loser's table stays unused */
	return m;
}

/* Async-signal-safe (the crash handler calls it). */
CNSMP_NOINST void cnsmp_thread_record_incident(struct cnsmp_thread *t,
					       const uint32_t *chain,
					       uint32_t depth, const char *kind,
					       int signo)
{
	int saved = errno; /* the hooks do not save it on their fast path */
	uint64_t h = incident_hash(chain, depth, kind, signo), us = cnsmp_thread_now_us();
	size_t mask = CNSMP_INCIDENTS_PER_THREAD - 1;
	struct cnsmp_incident_slot *table = incident_table(t);
	for (size_t n = 0, i = h & mask; table && n <= mask; n++, i = (i + 1) & mask) {
		struct cnsmp_incident_slot *s = &table[i];
		uint64_t have = atomic_load_explicit(&s->hash,
						     memory_order_relaxed);
		if (have == 0) {
			s->depth = depth;
			memcpy(s->chain, chain, depth * sizeof *chain);
			s->signo = signo;
			strncpy(s->kind, kind, sizeof s->kind - 1);
			atomic_store_explicit(&s->first_us, us,
					      memory_order_relaxed);
			atomic_store_explicit(&s->hash, have = h,
					      memory_order_release);
		}
		if (have == h && s->depth == depth && s->signo == signo &&
		    strcmp(s->kind, kind) == 0 &&
		    memcmp(s->chain, chain, depth * sizeof *chain) == 0) {
			atomic_store_explicit(&s->last_us, us,
					      memory_order_relaxed);
			cnsmp_bump(&s->count, 1);
			errno = saved;
			return;
		}
	}
	cnsmp_bump(&t->incident_overflow, 1);
	errno = saved;
}

CNSMP_NOINST void cnsmp_thread_zero(struct cnsmp_thread *t)
{
	for (unsigned k = 0; k < CNSMP_NCHUNKS; k++) {
		struct cnsmp_cset *set = atomic_load_explicit(
			&t->chunk[k], memory_order_acquire);
		for (unsigned i = 0; set && i < CNSMP_CHUNK; i++) {
			struct cnsmp_counters *c = atomic_load_explicit(
				&set->c[i], memory_order_acquire);
			if (c) {
				memset(c, 0, sizeof(struct cnsmp_cell));
				name_counters(c, k * CNSMP_CHUNK + i);
			}
		}
	}
	for (unsigned g = 0; g < CNSMP_ESEGS; g++) {
		struct cnsmp_edge *seg = atomic_load_explicit(&t->eseg[g],
							      memory_order_acquire);
		if (seg)
			memset(seg, 0, CNSMP_ESEG_SIZE(g) * sizeof *seg);
	}
	struct cnsmp_incident_slot *in = atomic_load_explicit(
		&t->incidents, memory_order_acquire);
	if (in)
		memset(in, 0, CNSMP_INCIDENTS_PER_THREAD * sizeof *in);
	atomic_store_explicit(&t->edge_sink.calls, 0, memory_order_relaxed);
	atomic_store_explicit(&t->incident_overflow, 0, memory_order_relaxed);
}

/* The current thread's block if the hooks may touch it now. */
static CNSMP_NOINST struct cnsmp_thread *usable(void)
{
	if (cnsmp_tls.guard || !atomic_load_explicit(&cnsmp_active,
						     memory_order_relaxed))
		return NULL;
	return cnsmp_tls.t;
}

CNSMP_NOINST void cnsmp_thread_on_throw(void)
{
	struct cnsmp_thread *t = usable();
	if (!t)
		return;
	t->throw_epoch++;
	t->unwinding = 1;
	for (uint32_t i = 0; i < t->depth && i < CNSMP_STACK_DEPTH; i++)
		cnsmp_frame_at(t, i)->flags |= CNSMP_FR_THROWN;
	cnsmp_thread_reslow(t);
	t->throw_depth = chain_of(t, t->depth, t->throw_chain);
}

CNSMP_NOINST void cnsmp_thread_on_catch(void)
{
	struct cnsmp_thread *t = usable();
	if (t) {
		t->unwinding = 0;
		cnsmp_thread_reslow(t);
	}
}

/* Signal-safe.  Every call in progress ends now, failed: calls, errors and
 * time are counted (so errors never exceed calls) and the stack is emptied,
 * so if the program survives the signal those frames are not counted twice
 * (their exits become unmatched).  The frames' own guard is not checked: a
 * crash inside a hook still marks the stack, whose depth is only advanced
 * after a frame is complete. */
CNSMP_NOINST void cnsmp_thread_crash_mark(int signo)
{
	struct cnsmp_thread *t = cnsmp_tls.t;
	if (!t || !atomic_load_explicit(&cnsmp_active, memory_order_relaxed))
		return;
	int guard = cnsmp_tls.guard;
	cnsmp_tls.guard = 1;
	cnsmp_thread_drain(t);
	uint32_t chain[CNSMP_INCIDENT_MAX_DEPTH];
	uint32_t depth = t->depth, n = chain_of(t, depth, chain);
	uint64_t now = cnsmp_clock_now();
	for (uint32_t i = depth; i-- > t->inherited;) {
		uint64_t ticks = count_end(cnsmp_frame_at(t, i), now, 1);
		if (i > 0)
			cnsmp_frame_at(t, i - 1)->child += ticks;
	}
	t->depth = t->inherited = 0;
	t->overflow = 0;
	cnsmp_stack_fit(t);
	cnsmp_thread_reslow(t);
	if (n > 0)
		cnsmp_thread_record_incident(t, chain, n, "signal", signo);
	cnsmp_tls.guard = guard;
}

/* codensm_flush(): what this thread has finished is in the histogram. */
CNSMP_NOINST void cnsmp_thread_drain_self(void)
{
	struct cnsmp_thread *t = cnsmp_tls.t;
	if (!t || cnsmp_tls.guard)
		return;
	cnsmp_tls.guard = 1;
	cnsmp_thread_drain(t);
	cnsmp_tls.guard = 0;
}

/* exit(): the calls still open on the exiting thread (main, and whatever
 * called exit) end with the program, so they are counted now, as finished
 * calls, before the final flush; without this a program that leaves through
 * exit() would never count its main().  Other threads' open calls have not
 * ended and are not touched (their owners may be running).  Inside a hook
 * (exit from a signal handler that interrupted one) the stack may be half
 * written: left alone. */
CNSMP_NOINST void cnsmp_thread_end_open_calls(void)
{
	struct cnsmp_thread *t = cnsmp_tls.t;
	if (!t || cnsmp_tls.guard)
		return;
	cnsmp_tls.guard = 1;
	uint64_t now = cnsmp_clock_now();
	while (t->depth > 0)
		cnsmp_thread_complete(t, t->depth - 1, now, 0);
	t->overflow = 0; /* counted when they began */
	cnsmp_thread_reslow(t);
	cnsmp_thread_drain(t);
	cnsmp_tls.guard = 0;
}

/* In the child of fork(): the other threads do not exist here, and what
 * they and this thread counted belongs to the parent, which ships it.  The
 * shadow stack stays, so exits of calls entered before fork still match;
 * those calls are the parent's to count, so the child pops them uncounted
 * (`inherited`). */
CNSMP_NOINST void cnsmp_thread_atfork_child(void)
{
	struct cnsmp_thread *self = cnsmp_tls.t;
	struct cnsmp_thread *t = atomic_load_explicit(&cnsmp_threads,
						      memory_order_acquire);
	for (; t; t = atomic_load_explicit(&t->next, memory_order_acquire)) {
		cnsmp_thread_zero(t);
		t->pend_c = &cnsmp_hist_sink; /* the parent's call */
		if (t != self)
			atomic_store_explicit(&t->state, CNSMP_T_FREE,
					      memory_order_release);
		else {
			t->inherited = t->depth;
			for (uint32_t i = 0; i < t->depth && i < CNSMP_STACK_DEPTH; i++)
				cnsmp_frame_at(t, i)->flags |= CNSMP_FR_INHERITED;
		}
	}
}
