/* thread.c: per-thread state: the block's life (attach, death, reuse), the
 * end of a call (counters, edge, error, incident), exceptions and crashes.
 *
 * cnsmp_thread_complete runs on every tracked exit and so is hot path: no
 * lock, no syscall, no allocation (bar a counter chunk on a function's first
 * call, which the enter hook already did).  Recording an incident (a failed
 * call) reads CLOCK_REALTIME through the vDSO; that is rare, not per call.
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
 * thread started in the interval (about 200 kB each).  FREE blocks are
 * the zeroed ones of a fork child. */
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

/* Zeroed memory on a cache line's boundary.  calloc aligns to 16 bytes
 * only, and thread.h lays out a block's frames and a function's counters
 * by cache lines: a block 32 bytes off had every frame straddle two.
 * calloc rather than aligned_alloc and memset, so that the pages of a
 * block that its thread never touches stay unbacked; the pointer calloc
 * gave is not kept, since blocks and chunks are never freed (the list is
 * append-only, and counters outlive their threads). */
static CNSMP_NOINST void *calloc_lines(size_t size)
{
	uintptr_t p = (uintptr_t)calloc(1, size + 63);
	return p ? (void *)((p + 63) & ~(uintptr_t)63) : NULL;
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
		t->pend_c = &cnsmp_hist_sink;
		t->throw_epoch = t->exc_epoch = 0;
		t->unwinding = 0;
		/* The cache stays: it names this block's counters. */
	} else {
		t = calloc_lines(sizeof *t);
		if (!t) {
			errno = saved;
			return NULL;
		}
		atomic_init(&t->state, CNSMP_T_LIVE);
		t->pend_c = &cnsmp_hist_sink;
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

/* Counter chunk k holds ids k * CNSMP_CHUNK ... (frames name their
 * function through its counters: c->id), none called yet. */
static CNSMP_NOINST void name_chunk(struct cnsmp_counters *c, unsigned k)
{
	for (uint32_t i = 0; i < CNSMP_CHUNK; i++) {
		c[i].id = k * CNSMP_CHUNK + i;
		c[i].last_parent = CNSMP_NO_PARENT;
	}
}

CNSMP_NOINST struct cnsmp_counters *cnsmp_thread_chunk_alloc(
	struct cnsmp_thread *t, uint32_t id)
{
	int saved = errno;
	struct cnsmp_counters *c = calloc_lines(CNSMP_CHUNK * sizeof *c);
	errno = saved;
	if (!c)
		return NULL;
	name_chunk(c, id / CNSMP_CHUNK);
	atomic_store_explicit(&t->chunk[id / CNSMP_CHUNK], c,
			      memory_order_release);
	return c + id % CNSMP_CHUNK;
}

CNSMP_NOINST struct cnsmp_edge *cnsmp_thread_edge(struct cnsmp_thread *t,
						 uint32_t caller, uint32_t callee)
{
	uint64_t k = ((uint64_t)caller << 32 | callee) + 1;
	size_t mask = CNSMP_EDGES_PER_THREAD - 1;
	size_t i = (size_t)(k * 0x9e3779b97f4a7c15ull >> 40) & mask;
	for (unsigned n = 0; n < 32; n++, i = (i + 1) & mask) {
		struct cnsmp_edge *e = &t->edges[i];
		uint64_t have = atomic_load_explicit(&e->key,
						     memory_order_relaxed);
		if (have == 0)
			atomic_store_explicit(&e->key, have = k,
					      memory_order_release);
		if (have == k)
			return e;
	}
	return &t->edge_sink; /* full around its slot: counted, not shipped */
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
	struct cnsmp_tslot *s = &t->cache[cnsmp_tcache_index(addr)];
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
	struct cnsmp_tslot *s = &t->cache[cnsmp_tcache_index(addr)];
	if (atomic_load_explicit(&s->addr, memory_order_relaxed) == addr)
		s->c = c;
}

/* Every block, live or not: a dead one's cache is its next owner's.
 * Only filled slots are written, so a block's untouched pages stay so. */
CNSMP_NOINST void cnsmp_thread_forget_decisions(void)
{
	for (struct cnsmp_thread *t = atomic_load(&cnsmp_threads); t;
	     t = atomic_load_explicit(&t->next, memory_order_acquire))
		for (size_t i = 0; i < CNSMP_TCACHE; i++)
			if (atomic_load(&t->cache[i].addr))
				atomic_store(&t->cache[i].addr, 0);
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

/* Async-signal-safe (the crash handler calls it). */
CNSMP_NOINST void cnsmp_thread_record_incident(struct cnsmp_thread *t,
					       const uint32_t *chain,
					       uint32_t depth, const char *kind,
					       int signo)
{
	int saved = errno; /* the hooks do not save it on their fast path */
	uint64_t h = incident_hash(chain, depth, kind, signo), us = cnsmp_thread_now_us();
	size_t mask = CNSMP_INCIDENTS_PER_THREAD - 1;
	for (size_t n = 0, i = h & mask; n <= mask; n++, i = (i + 1) & mask) {
		struct cnsmp_incident_slot *s = &t->incidents[i];
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
		struct cnsmp_counters *c = atomic_load_explicit(
			&t->chunk[k], memory_order_acquire);
		if (!c)
			continue;
		memset(c, 0, CNSMP_CHUNK * sizeof *c);
		name_chunk(c, k);
	}
	memset(t->edges, 0, sizeof t->edges);
	memset(t->incidents, 0, sizeof t->incidents);
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
