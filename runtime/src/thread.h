/* thread.h: the per-thread block shared by the hot path (hooks.c, cxx.c),
 * its owner (thread.c) and its reader (collect.c); private to those files.
 *
 * Threading: one block per thread, written only by its owner thread (and by
 * that thread's signal handlers, see cnsmp_thread_crash_mark).  Whatever the
 * flusher reads is an _Atomic written with relaxed stores: counts only grow,
 * the flusher keeps its own snapshot and ships differences, so no value is
 * ever reset under the owner's feet.  Pointers that publish freshly zeroed
 * memory (counters, edge segments, the incident table, edge and incident
 * keys) are stored with release and loaded with acquire.  Blocks, and
 * everything they point to, are never freed: the crash handler walks the
 * list without a lock, and a block outlives its thread (the next new
 * thread takes it over).
 *
 * Memory follows use.  A block is about 2 kB (the header, a stack of
 * CNSMP_STACK_FIRST frames and a thread cache of CNSMP_TCACHE_FIRST slots
 * inline); everything else is allocated on first use, on a slow path, and
 * sized to what the thread did: the counters of each function it called
 * (one cell each, with the flusher's snapshot), the shadow stack in
 * chunks as its calls go deeper, the thread cache as it sees more
 * functions, the edge table in segments as it sees more pairs, the
 * incident table on its first failure.  Nothing shrinks: a thread that
 * once went deep keeps its chunks, for itself and for the next owner.
 * Every piece comes from the arena (arena.c): never freed, lock-free
 * and async-signal-safe, since these slow paths may run in a signal
 * handler that interrupted the program inside malloc.
 */
#ifndef CODENSM_THREAD_H
#define CODENSM_THREAD_H

#include "internal.h"

/* A block finds the counters of function `id` through two levels of
 * pointers, chunk[id / CNSMP_CHUNK]->c[id % CNSMP_CHUNK]: a level is
 * allocated when its first function is called (512 bytes of pointers),
 * a function's counters when it is first called on the thread.  Only the
 * thread cache's misses and the flusher walk them. */
#define CNSMP_CHUNK 64
#define CNSMP_NCHUNKS ((CNSMP_MAX_TRACKED + CNSMP_CHUNK - 1) / CNSMP_CHUNK)
#define CNSMP_NO_ID UINT32_MAX

/* Block states: the owner creates LIVE; its pthread_key destructor makes it
 * DEAD; a new thread claims a DEAD block and carries on its counters (CAS
 * DEAD -> LIVE).  FREE: zeroed in a fork child, claimed the same way. */
enum { CNSMP_T_LIVE = 1, CNSMP_T_DEAD = 2, CNSMP_T_FREE = 3 };

struct cnsmp_edge;

/* Frame flags: anything set sends the call's exit to the slow path. */
enum {
	CNSMP_FR_FAILED = 1,    /* codensm_error() was called during the call */
	CNSMP_FR_INHERITED = 2, /* entered before fork(): the parent counts it */
	/* On the stack when a C++ exception was thrown (cnsmp_thread_on_throw
	 * marks every frame): one that then ends while unwinding, or is
	 * popped by a repair, was left by an exception.  Marking at the throw
	 * (rare) instead of stamping a throw count on every entry saves the
	 * hot path a load and a store. */
	CNSMP_FR_THROWN = 4,
	/* Sampled timing: a call that read no clock (start is not set; its
	 * time is its function's estimate).  The timed calls of a sampled
	 * function are ordinary frames, measured exactly like exact mode's. */
	CNSMP_FR_UNTIMED = 8,
	/* The first frame of a stack chunk past the inline one: its exit
	 * goes to the slow path, which steps back to the chunk below
	 * (cnsmp_stack_fit), so that the fast paths never reach across two
	 * chunks. */
	CNSMP_FR_CHUNK = 16,
	/* A probe is armed on the call's function (probes.c): its exit goes
	 * through exit_flagged to the probe, never through the fast path. */
	CNSMP_FR_PROBED = 32,
};

/* Sampled timing as the hooks read it.  lifecycle.c sets it with the
 * config, before the registry's generation moves, so every cached
 * decision is made again under the new values.  every <= 1: exact. */
struct cnsmp_sampling {
	_Atomic uint32_t every;  /* time 1 in `every` calls, on average */
	_Atomic uint64_t below;  /* "short": a mean under this many ticks */
};
extern struct cnsmp_sampling cnsmp_sampling;

/* The low bit of a cached counters pointer (counters are 8-aligned):
 * sampling is on and the function is in probation or sampled, so its
 * entry takes enter_tagged.  An excluded function is cached as the bit
 * alone (CNSMP_TC_EXCLUDED), so that one bit test tells the exact path
 * from everything else: it pays nothing more for sampled timing than it
 * did for exclusion. */
#define CNSMP_TC_SAMPLE ((uintptr_t)1)
#define CNSMP_TC_EXCLUDED ((struct cnsmp_counters *)CNSMP_TC_SAMPLE)

/* One tracked call in progress.  Owner-only.  One cache line: the exit
 * hook reads and writes only this frame and its parent's.  The function's
 * id is c->id. */
struct cnsmp_frame {
	uintptr_t addr;   /* what the hooks saw: the exit must match it */
	struct cnsmp_counters *c;     /* the callee's counters on this thread */
	uint64_t start;   /* raw clock at entry */
	uint64_t child;   /* raw ticks spent in tracked callees */
	uint64_t flags;   /* CNSMP_FR_*; next to child: one 16-byte zero store */
} __attribute__((aligned(64)));

/* The per-thread cache of the registry's decisions: address -> this
 * thread's counters of the function, or NULL for an excluded one.  A
 * tracked call then costs no shared-table probe and no entry, chunk or
 * id load: one slot read in memory only this thread fills.  Direct
 * mapped.  Dropped functions are not cached (each call is counted
 * through the registry).  A hit checks nothing else: whenever a decision
 * may change, cnsmp_registry_invalidate empties every thread's cache
 * (cnsmp_thread_forget_decisions), instead of every hit comparing a
 * generation (five instructions on each tracked call).  Only the owner
 * fills a slot; the invalidating thread only clears addresses. */
/* Its size follows the functions the thread calls: CNSMP_TCACHE_FIRST
 * slots inline in the block, then four times as many each time a fill
 * would evict another function or fills a quarter of it, up to
 * CNSMP_TCACHE.  A slot's index is the top CNSMP_TCACHE_BITS of the
 * address's hash masked to the current size, so two addresses that share
 * a slot at the full size share one at every size. */
#define CNSMP_TCACHE_BITS 10
#define CNSMP_TCACHE (1u << CNSMP_TCACHE_BITS)
#define CNSMP_TCACHE_FIRST 16
struct cnsmp_tslot {
	_Atomic uintptr_t addr; /* 0: empty */
	struct cnsmp_counters *c;
};
/* The top `bits` of a * 2^64/phi: the slot of address a in a direct-mapped
 * table of 2^bits (the thread cache and the excluded filter share the
 * multiply, which the entry hook then does once for both). */
static inline size_t cnsmp_addr_slot(uintptr_t a, unsigned bits)
{
	return (size_t)(((uint64_t)a * 0x9e3779b97f4a7c15ull) >> (64 - bits));
}
static inline size_t cnsmp_tcache_index(uintptr_t a)
{
	return cnsmp_addr_slot(a, CNSMP_TCACHE_BITS);
}

/* caller->callee pair.  The owner stores the key (release) the first time,
 * then only bumps calls; key 0 = empty slot.  Key = caller << 32 | callee,
 * plus 1 so that the pair (0,0) is not 0. */
struct cnsmp_edge {
	_Atomic uint64_t key;
	_Atomic uint64_t calls;
	uint64_t shipped; /* the flusher's: calls already shipped (collect.c) */
};
/* A block's pairs live in segments of 16, 64, 256, 1024 and 4096 slots,
 * each allocated when the ones before it have no room around a new
 * pair's hash: a slot never moves, so the flusher reads a segment while
 * its owner adds to it.  CNSMP_EDGES_PER_THREAD (internal.h) is their
 * total. */
#define CNSMP_ESEGS 5
#define CNSMP_ESEG_SIZE(k) (16u << (2 * (k)))

/* A distinct failure chain.  The owner fills every plain field, then
 * publishes `hash` (release, never 0); afterwards only count and the
 * seen-times change (relaxed).  Times are unix microseconds. */
struct cnsmp_incident_slot {
	_Atomic uint64_t hash;
	_Atomic uint64_t count;
	_Atomic uint64_t first_us, last_us;
	uint32_t depth;
	uint32_t chain[CNSMP_INCIDENT_MAX_DEPTH]; /* caller first */
	int signo;
	char kind[16];
	uint64_t shipped; /* the flusher's: count already shipped */
};

/* The flusher's snapshot of one function's counters on one thread: what
 * it shipped (collect.c).  Flusher-only, on cache lines of its own after
 * the counters, so that its writes never take a line the owner writes. */
struct cnsmp_shipped {
	uint64_t calls, errors, total_ticks, self_ticks, untimed;
	uint64_t s_timed, s_ticks, s_self;
	uint32_t hist[CNSMP_HIST_BUCKETS];
};
/* One function on one thread: allocated on its first call there. */
struct cnsmp_cell {
	struct cnsmp_counters c; /* first: a counters pointer is its cell's */
	struct cnsmp_shipped shipped;
};
static inline struct cnsmp_shipped *cnsmp_shipped_of(struct cnsmp_counters *c)
{
	return &((struct cnsmp_cell *)c)->shipped;
}
struct cnsmp_cset {
	_Atomic(struct cnsmp_counters *) c[CNSMP_CHUNK];
};

/* The shadow stack: frame slot j (the call at index j - 1; slot 0 is the
 * root) lives in chunk 0, inline in the block, for j <= CNSMP_STACK_FIRST;
 * chunk k >= 1 holds slots (CNSMP_STACK_FIRST << (k-1), CNSMP_STACK_FIRST
 * << k], allocated the first time a call goes that deep (a growth step
 * on the entry hook's slow path).  Chunks never move and are never
 * freed, so a frame a hook or a signal handler holds stays put.  The
 * fast paths index the current chunk through t->fbase, which points
 * where slot 0 would be if the chunk started at the root, so that slot j
 * is fbase[j] whatever the chunk; t->top is the chunk's last slot.
 * Deeper than CNSMP_STACK_DEPTH (internal.h) calls are counted untimed
 * (too_deep in hooks.c). */
#define CNSMP_STACK_FIRST 8
#define CNSMP_STACK_CHUNKS 12
_Static_assert(CNSMP_STACK_FIRST << (CNSMP_STACK_CHUNKS - 1) == CNSMP_STACK_DEPTH,
	       "the last stack chunk ends at CNSMP_STACK_DEPTH");

struct cnsmp_thread {
	/* Shared with every walker of the list. */
	_Atomic(struct cnsmp_thread *) next; /* append-only list, never unlinked */
	_Atomic int state;                   /* CNSMP_T_* */

	/* Owner-written, flusher-read. */
	_Atomic(struct cnsmp_cset *) chunk[CNSMP_NCHUNKS];
	/* What cnsmp_thread_edge gives a pair that found no slot: its calls
	 * count the calls of such pairs. */
	struct cnsmp_edge edge_sink;
	_Atomic uint64_t incident_overflow;  /* chains that found no slot */
	_Atomic(struct cnsmp_edge *) eseg[CNSMP_ESEGS];
	/* CNSMP_INCIDENTS_PER_THREAD slots, allocated on the first
	 * incident (by the crash handler, maybe). */
	_Atomic(struct cnsmp_incident_slot *) incidents;
	uint32_t cache_fills;  /* owner-only: slots filled since the last growth */

	/* What every hook reads, in one cache line. */
	/* Owner-only (and its signal handlers) from here on, bar the cache. */
	/* This thread's last finished call, not yet in its histogram
	 * (cnsmp_count_call_fast): its counters (&cnsmp_hist_sink when
	 * none) and its duration. */
	struct cnsmp_counters *pend_c __attribute__((aligned(64)));
	uint64_t pend_ticks;
	struct cnsmp_frame *fbase; /* the current stack chunk (above) */
	uint32_t depth;        /* frames in use; written after the frame */
	/* The depth the fast paths may reach: t->top, or 0 while anything
	 * sends both hooks to their slow paths (cnsmp_thread_reslow), so
	 * that one compare tests the depth and all of those. */
	uint32_t limit;
	uint32_t rng;          /* xorshift32 state: gaps between timed samples */
	uint32_t top;          /* the last slot of the current stack chunk */
	/* The thread cache, owner-written (cnsmp_thread_forget_decisions
	 * reads these two from any thread, and clears the slots' addresses):
	 * grown by publishing the new, empty array, then its mask, both
	 * sequentially consistent (see cnsmp_tcache_put), so that a reader
	 * that loads the mask and then the array never indexes past the
	 * array's end. */
	struct cnsmp_tslot *_Atomic cache;
	_Atomic uint32_t cache_mask;

	uint64_t throw_epoch;  /* ++ on every C++ throw */
	uint32_t inherited;    /* frames below it were entered before fork() */
	uint32_t overflow;     /* calls in progress beyond CNSMP_STACK_DEPTH */
	uint32_t ov_id;        /* id of the innermost overflow call */
	uint32_t ov_failed;    /* its error is already counted */
	uint64_t exc_epoch;    /* epoch whose "exception" incident is recorded */
	int unwinding;         /* between __cxa_throw and __cxa_begin_catch */
	uint32_t throw_depth;  /* the stack at the last throw, caller first */
	uint32_t throw_chain[CNSMP_INCIDENT_MAX_DEPTH];
	/* Stack chunks 1.. (chunk 0 is frames): allocated on growth. */
	struct cnsmp_frame *stack[CNSMP_STACK_CHUNKS];
	struct cnsmp_edge root_edge; /* calls whose caller is the root: never read */
	/* frames[0] is the root, a sentinel that is never a call (address
	 * 0, no counters): the exit hook reads the top frame and its parent
	 * without testing the depth first.  Call i is frame slot i + 1. */
	struct cnsmp_frame frames[CNSMP_STACK_FIRST + 1];
	struct cnsmp_tslot cache0[CNSMP_TCACHE_FIRST];
};
_Static_assert(offsetof(struct cnsmp_thread, cache_mask) + sizeof(uint32_t) -
		       offsetof(struct cnsmp_thread, pend_c) <= 64,
	       "what every hook reads fits in one cache line");

/* The stack chunk holding frame slot j (>= 1), and where it starts: its
 * first slot is start + 1. */
static inline unsigned cnsmp_stack_chunk(uint32_t j)
{
	return j <= CNSMP_STACK_FIRST ? 0
		: 32 - (unsigned)__builtin_clz((j - 1) / CNSMP_STACK_FIRST);
}
static inline uint32_t cnsmp_stack_start(unsigned k)
{
	return k ? (uint32_t)CNSMP_STACK_FIRST << (k - 1) : 0;
}

/* The frame of the call at depth index i (0: the outermost), i below the
 * depth the stack has reached. */
static inline struct cnsmp_frame *cnsmp_frame_at(struct cnsmp_thread *t, uint32_t i)
{
	uint32_t j = i + 1;
	unsigned k = cnsmp_stack_chunk(j);
	return k ? &t->stack[k][j - cnsmp_stack_start(k) - 1] : &t->frames[j];
}

/* t->limit from the state that sends the hooks to their slow paths:
 * calls in progress beyond the stack, a C++ exception in flight, a clock
 * that is not the TSC.  Call after changing any of it. */
static inline void cnsmp_thread_reslow(struct cnsmp_thread *t)
{
	int slow = t->overflow || t->unwinding || !cnsmp_clock_fast();
	t->limit = slow ? 0 : t->top;
}

/* Make the stack chunk that holds the top frame (slot t->depth) current;
 * call after lowering t->depth on a slow path.  The chunk of slot 0 is
 * chunk 0. */
static inline void cnsmp_stack_fit(struct cnsmp_thread *t)
{
	uint32_t d = t->depth, start = t->top > CNSMP_STACK_FIRST ? t->top / 2 : 0;
	if (d > start || start == 0)
		return; /* the top frame is in the current chunk */
	unsigned k = d ? cnsmp_stack_chunk(d) : 0;
	uint32_t s = cnsmp_stack_start(k);
	t->fbase = k ? t->stack[k] - s - 1 : t->frames;
	t->top = k ? 2 * s : CNSMP_STACK_FIRST;
	cnsmp_thread_reslow(t);
}

/* a - b in clock ticks, or 0 if b > a (the TSCs of two cores a few ticks
 * apart): a call's duration from its start, its self time from its
 * callees' time. */
static inline uint64_t cnsmp_ticks_since(uint64_t a, uint64_t b)
{
	uint64_t d = a - b;
	return (int64_t)d < 0 ? 0 : d;
}

/* The cached decision for `addr` on t: 1 and *c (counters, tagged while
 * sampled; CNSMP_TC_EXCLUDED: excluded) if the cache holds it, else 0.
 * A signal handler may refill the slot between the two reads;
 * cnsmp_tcache_put writes the address last (after clearing it), so
 * reading c first and then a matching address means c was written for
 * that address.  A hit that races with an invalidation is a call decided
 * just before it. */
static inline int cnsmp_tcache_get(const struct cnsmp_thread *t, uintptr_t addr,
				   struct cnsmp_counters **c)
{
	size_t i = cnsmp_tcache_index(addr) &
		   atomic_load_explicit(&t->cache_mask, memory_order_relaxed);
	atomic_signal_fence(memory_order_acquire); /* the mask, then the array */
	const struct cnsmp_tslot *s =
		&atomic_load_explicit(&t->cache, memory_order_relaxed)[i];
	*c = s->c;
	atomic_signal_fence(memory_order_acquire);
	return likely(atomic_load_explicit(&s->addr, memory_order_relaxed) == addr);
}

/* The only TLS: the block pointer and the re-entry guard (initial-exec, so
 * an access is one %fs-relative load; the rest lives on the heap). */
struct cnsmp_tls {
	struct cnsmp_thread *t;
	int guard; /* non-zero: inside a hook, or the thread is exiting */
};
extern __thread struct cnsmp_tls cnsmp_tls
	__attribute__((tls_model("initial-exec")));

/* Every block ever created, newest first (acquire loads). */
extern _Atomic(struct cnsmp_thread *) cnsmp_threads;
extern _Atomic uint64_t cnsmp_thread_repairs;    /* shadow-stack repairs */
extern _Atomic uint64_t cnsmp_thread_unmatched;  /* exits never entered */
extern _Atomic uint64_t cnsmp_registry_dropped_calls;
extern _Atomic uint64_t cnsmp_thread_started_us; /* first attach, unix us */

/* arena.c: `size` bytes, zeroed, on a cache line's boundary and rounded
 * up to whole lines, never freed; NULL if out of memory.  Lock-free and
 * async-signal-safe; saves errno. */
void *cnsmp_arena_alloc(size_t size);

/* Slow paths of the hooks (thread.c).  They save errno. */
struct cnsmp_thread *cnsmp_thread_attach(void); /* NULL if out of memory */
/* A growth step: make the stack chunk that holds the slot above the top
 * current, allocating it the first time.  0, or -1 past CNSMP_STACK_DEPTH
 * or out of memory (the call is then counted untimed). */
int cnsmp_stack_grow(struct cnsmp_thread *t);
struct cnsmp_counters *cnsmp_thread_chunk_alloc(struct cnsmp_thread *t,
						 uint32_t id);
/* A call ended (frame index i, popped): counters, edge, error, incident.
 * `repaired`: popped by a repair, not by its own exit.  The hooks inline
 * the common case (cnsmp_thread_finish) and call this for the rest. */
void cnsmp_thread_complete(struct cnsmp_thread *t, uint32_t i, uint64_t now,
			   int repaired);
/* The slot of the pair caller -> callee, claiming it on first use;
 * t->edge_sink when the table has no slot for it.  Never NULL. */
struct cnsmp_edge *cnsmp_thread_edge(struct cnsmp_thread *t, uint32_t caller,
				     uint32_t callee);
void cnsmp_thread_record_incident(struct cnsmp_thread *t, const uint32_t *chain,
				  uint32_t depth, const char *kind, int signo);
/* Zero counters, edges and incidents (block not in use by its owner). */
void cnsmp_thread_zero(struct cnsmp_thread *t);
/* C++ exceptions (cxx.c -> thread.c). */
void cnsmp_thread_on_throw(void);
void cnsmp_thread_on_catch(void);

/* The registry's table (registry.c explains the protocol), here so that the
 * hooks can inline the lookup: cnsmp_registry_find without a call. */
/* A forgotten slot points at this entry, whose address (0) no function
 * has, so a probe needs no separate tombstone test. */
extern struct cnsmp_fn cnsmp_registry_tomb;
#define CNSMP_REGISTRY_TOMB (&cnsmp_registry_tomb)
struct cnsmp_registry_table {
	struct cnsmp_registry_table *prev; /* replaced table, kept for readers */
	size_t mask, used;                 /* used counts tombstones too */
	_Atomic(struct cnsmp_fn *) slot[];
};
extern _Atomic(struct cnsmp_registry_table *) cnsmp_registry_table;

static inline size_t cnsmp_registry_hash(uintptr_t a)
{
	return (size_t)(((uint64_t)a >> 2) * 0x9e3779b97f4a7c15ull >> 20);
}

/* Past the first probe (registry.c): a collision, a miss, no table yet. */
struct cnsmp_fn *cnsmp_registry_probe(uintptr_t addr);

/* The excluded filter: a direct-mapped, process-wide set of addresses the
 * registry decided are excluded.  The entry hook reads it before anything
 * else, so an excluded call's entry is a multiply, one load and a compare
 * (exit_other reads it too, for such a call under tracked callers): no
 * thread-local load, no thread cache, no registry chain of four loads
 * (table, slot, entry, state).  Measured against reading it after the
 * thread-local block pointer (bench/, 21 alternating rounds), that cut
 * what an excluded call costs over the empty hook by 56% on the
 * synthetic program and 40% on bzip2, for 1-2% more on a tracked call
 * (six instructions a call).
 * 8,192 slots (64 kB of .bss, touched only where used).  A slot is filled
 * only while empty (two hot functions on one slot do not take turns
 * writing a line every thread reads; the second keeps the slower path),
 * and cleared whenever a decision may change (cnsmp_registry_invalidate):
 * registry.c explains why a fill racing with a change cannot stay. */
#define CNSMP_XFILTER_BITS 13
extern _Atomic uintptr_t cnsmp_registry_excluded[1u << CNSMP_XFILTER_BITS];
static inline size_t cnsmp_xfilter_index(uintptr_t a)
{
	return cnsmp_addr_slot(a, CNSMP_XFILTER_BITS);
}
/* Is `addr` in the filter (so excluded)?  A relaxed load: a hit that
 * races with a change of decisions is a call decided just before it. */
static inline int cnsmp_xfilter_has(uintptr_t addr)
{
	return atomic_load_explicit(
		       &cnsmp_registry_excluded[cnsmp_xfilter_index(addr)],
		       memory_order_relaxed) == addr;
}
/* `addr` was found excluded under generation `g` (loaded before the
 * registry was read): remember it in the filter if its slot is free. */
void cnsmp_registry_remember_excluded(uintptr_t addr, uint32_t g);

/* Lock-free lookup: the entry of `addr`, or NULL on first sight.  Its
 * home slot inline (the common case), the rest in registry.c. */
static inline struct cnsmp_fn *cnsmp_registry_lookup(uintptr_t addr)
{
	struct cnsmp_registry_table *t = atomic_load_explicit(
		&cnsmp_registry_table, memory_order_acquire);
	if (likely(t != NULL)) {
		struct cnsmp_fn *e = atomic_load_explicit(
			&t->slot[cnsmp_registry_hash(addr) & t->mask],
			memory_order_acquire);
		if (likely(e != NULL) && likely(e->addr == addr))
			return e;
	}
	return cnsmp_registry_probe(addr);
}

/* Counters of `id` on `t`, allocating the chunk on first use. */
static inline struct cnsmp_counters *cnsmp_thread_counters(
	struct cnsmp_thread *t, uint32_t id)
{
	struct cnsmp_cset *set = atomic_load_explicit(
		&t->chunk[id / CNSMP_CHUNK], memory_order_relaxed);
	struct cnsmp_counters *c = likely(set != NULL) ? atomic_load_explicit(
		&set->c[id % CNSMP_CHUNK], memory_order_relaxed) : NULL;
	if (unlikely(!c))
		return cnsmp_thread_chunk_alloc(t, id);
	return c;
}

/* Edge slot i of t, counting through the segments in order, or NULL if
 * its segment is not allocated (tests and the flusher walk them so). */
static inline struct cnsmp_edge *cnsmp_thread_edge_at(struct cnsmp_thread *t,
						      size_t i)
{
	for (unsigned k = 0; k < CNSMP_ESEGS; i -= CNSMP_ESEG_SIZE(k), k++)
		if (i < CNSMP_ESEG_SIZE(k)) {
			struct cnsmp_edge *e = atomic_load_explicit(
				&t->eseg[k], memory_order_acquire);
			return e ? &e[i] : NULL;
		}
	return NULL;
}

/* Owner-only increment: a relaxed load and store, not a locked RMW (no one
 * else writes the location, the flusher only reads it). */
static inline void cnsmp_bump(_Atomic uint64_t *p, uint64_t v)
{
	atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

/* One finished call into its counters (ticks: raw clock), owner-only.
 * Errors before calls, calls with release: a reader that loads calls with
 * acquire sees the errors of every call it counts (collect.c). */
static inline void cnsmp_count_call(struct cnsmp_counters *c, uint64_t ticks,
				    uint64_t self, int error)
{
	cnsmp_bump(&c->total_ticks, ticks);
	cnsmp_bump(&c->self_ticks, self);
	if (ticks > atomic_load_explicit(&c->max_ticks, memory_order_relaxed))
		atomic_store_explicit(&c->max_ticks, ticks, memory_order_relaxed);
	_Atomic uint32_t *h = &c->hist[cnsmp_clock_slot(ticks)];
	atomic_store_explicit(h, atomic_load_explicit(h, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (error)
		cnsmp_bump(&c->errors, 1);
	atomic_store_explicit(&c->calls, atomic_load_explicit(
		&c->calls, memory_order_relaxed) + 1, memory_order_release);
}

/* The hot path's version of cnsmp_count_call.  A call's histogram slot
 * comes from its duration through a bucket computation (a bit scan and a
 * table); done at once, the clock read -> bucket -> store chain is the
 * longest of the exit hook, and on the machines measured (bench/) it held
 * up the hook's retirement enough to be the largest single cost of a
 * tracked call (12-16% of its overhead; bumping the slot at once was
 * worse still, the store's address waiting for the clock).  So each call
 * only leaves its counters and duration in the thread's block, and the
 * next call bins them, when they are long out of the way of its own
 * clock read.  A delta's histogram may therefore lag its calls by one
 * call per running thread; the thread bins what is pending when it exits,
 * calls exit(), crashes or calls codensm_flush (cnsmp_thread_drain). */
extern struct cnsmp_counters cnsmp_hist_sink;
static inline void cnsmp_hist_bump(struct cnsmp_counters *c, uint64_t ticks)
{
	_Atomic uint32_t *h = &c->hist[cnsmp_clock_slot(ticks)];
	atomic_store_explicit(h, atomic_load_explicit(h, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static inline void cnsmp_count_call_fast(struct cnsmp_thread *t,
					 struct cnsmp_counters *c,
					 uint64_t ticks, uint64_t self)
{
	cnsmp_bump(&c->total_ticks, ticks);
	cnsmp_bump(&c->self_ticks, self);
	if (ticks > atomic_load_explicit(&c->max_ticks, memory_order_relaxed))
		atomic_store_explicit(&c->max_ticks, ticks, memory_order_relaxed);
	cnsmp_hist_bump(t->pend_c, t->pend_ticks);
	t->pend_c = c;
	t->pend_ticks = ticks;
	atomic_store_explicit(&c->calls, atomic_load_explicit(
		&c->calls, memory_order_relaxed) + 1, memory_order_release);
}

/* A call ended without a clock read (sampled timing, owner-only):
 * errors, calls (release, as in cnsmp_count_call), then untimed
 * (release), so a reader that loads untimed (acquire) before calls never
 * sees an untimed call that calls does not hold (collect.c). */
static inline void cnsmp_count_untimed(struct cnsmp_counters *c, int error)
{
	if (error)
		cnsmp_bump(&c->errors, 1);
	atomic_store_explicit(&c->calls, atomic_load_explicit(
		&c->calls, memory_order_relaxed) + 1, memory_order_release);
	atomic_store_explicit(&c->untimed, atomic_load_explicit(
		&c->untimed, memory_order_relaxed) + 1, memory_order_release);
}

/* Owner (or its signal handler): bin the pending call. */
static inline void cnsmp_thread_drain(struct cnsmp_thread *t)
{
	if (t->pend_c != &cnsmp_hist_sink) {
		cnsmp_hist_bump(t->pend_c, t->pend_ticks);
		t->pend_c = &cnsmp_hist_sink;
	}
}

/* A counters' last_parent before its first call: no frame's counters
 * (NULL is the root's), so last_edge is never read before it is set,
 * and the exit hook tests the parent alone, not the edge pointer too. */
#define CNSMP_NO_PARENT (&cnsmp_hist_sink)

/* Bump the pair parent -> c (both counters of t; parent NULL: the root,
 * no caller), through the callee's cache of its last caller. */
static inline void cnsmp_count_edge(struct cnsmp_thread *t,
				    struct cnsmp_counters *parent,
				    struct cnsmp_counters *c)
{
	struct cnsmp_edge *e = c->last_edge;
	if (unlikely(c->last_parent != parent)) {
		if (unlikely(parent == c))
			c->smode = CNSMP_SM_EXACT; /* recursive: never sampled */
		e = parent ? cnsmp_thread_edge(t, parent->id, c->id) : &t->root_edge;
		c->last_edge = e;
		c->last_parent = parent;
	}
	cnsmp_bump(&e->calls, 1);
}

/* sample.c: sampled timing's bookkeeping (owner, guard held).  The
 * value to cache for counters c (tagged while c is sampled or in
 * probation), and what comes before a sample's or a probation call's
 * clock read. */
struct cnsmp_counters *cnsmp_sample_tag(struct cnsmp_counters *c);
void cnsmp_sample_due(struct cnsmp_thread *t, struct cnsmp_counters *c, void *fn);

/* Remember `addr` -> c (NULL: excluded, cached as CNSMP_TC_EXCLUDED) in
 * t's cache, decided under gen `g` (loaded before the registry was read;
 * a fill that raced with a change of decisions is taken back, see
 * thread.c).  Guard held: a handler's fill cannot interleave with this
 * one. */
void cnsmp_tcache_put(struct cnsmp_thread *t, uintptr_t addr,
		      struct cnsmp_counters *c, uint32_t g);
/* The same decision for `addr`, now cached as c (sampled timing tags or
 * untags a tracked function's slot): only if the slot still holds it,
 * since an invalidation may have emptied it.  Guard held. */
void cnsmp_tcache_retag(struct cnsmp_thread *t, uintptr_t addr,
			struct cnsmp_counters *c);
/* Empty every thread's cache (cnsmp_registry_invalidate, after the
 * generation moved). */
void cnsmp_thread_forget_decisions(void);

/* collect.c: one thread's delta of a function's counters c: `untimed`
 * calls that read no clock, and the samples' delta s; the untimed calls'
 * time is added to *total, *self and hist (ticks). */
struct cnsmp_sample_delta {
	uint64_t timed, ticks, self;
};
void cnsmp_collect_estimate(const struct cnsmp_counters *c, uint64_t untimed,
			    const struct cnsmp_sample_delta *s,
			    uint64_t *total, uint64_t *self, uint64_t *hist);
/* probes.c, from the hooks' slow paths (guard held): a call of probed
 * `f` begins (before its tracked frame, if any, is pushed); a call of
 * `fn` ends (flags: its tracked frame's, 0 if it has none). */
void cnsmp_probes_enter(struct cnsmp_fn *f, void *fn);
void cnsmp_probes_exit(struct cnsmp_thread *t, uintptr_t fn, uint64_t flags);

/* thread.c: CLOCK_REALTIME in unix microseconds (vDSO, signal-safe). */
uint64_t cnsmp_thread_now_us(void);
/* cxx.c, dl.c: resolve the real functions once (first activation); the
 * call also makes a static link pull these objects in. */
void cnsmp_interpose_init(void);
void cnsmp_dl_init(void);

#endif /* CODENSM_THREAD_H */
