/* sample.c: sampled timing's bookkeeping, the slow side of the hooks'
 * sampled path (hooks.c has the fast side: the untimed call, inline).
 *
 * CODENSM_SAMPLE=N: a function whose calls on a thread are short (mean
 * under CODENSM_SAMPLE_BELOW_NS over a probation of CNSMP_SAMPLE_PROBE
 * calls, every one timed) is then timed on 1 call in N on average; the
 * others push a frame that reads no clock (CNSMP_FR_UNTIMED) and are
 * counted, with their errors, edges and incidents, exactly like timed
 * ones.  The clock reads are most of a short call's cost (bench/): an
 * untimed call costs the frame and the counts only.
 *
 * The gaps between timed calls are drawn at random (uniform on 1 ... 2N-1)
 * rather than fixed, so a function whose durations follow a pattern (a
 * slow call every 16th) is not sampled in step with it.  The flusher
 * gives each untimed call the mean of its delta's samples (collect.c);
 * README "Sampled timing" gives the error bound.
 *
 * Everything here runs on the owner thread with the guard held, on a
 * cache refill or once per sample: hot-path rules (internal.h). */
#include "thread.h"

struct cnsmp_sampling cnsmp_sampling;

/* Called with the config (lifecycle.c), before the registry's generation
 * moves, so that every cache is refilled under the new values. */
CNSMP_NOINST void cnsmp_sample_set(uint32_t every, uint32_t below_ns)
{
	cnsmp_clock_init(); /* the threshold is kept in the clock's ticks */
	uint64_t below = (uint64_t)(((unsigned __int128)below_ns
				     << cnsmp_clock_shift) / cnsmp_clock_mult);
	atomic_store_explicit(&cnsmp_sampling.below, below ? below : 1,
			      memory_order_relaxed);
	atomic_store_explicit(&cnsmp_sampling.every, every, memory_order_relaxed);
}

/* e moved 1/8 of the way to x, rounded away from e so that it reaches a
 * steady x exactly (rounding toward e would stop up to 7 ticks short). */
static inline uint64_t ema(uint64_t e, uint64_t x)
{
	int64_t d = (int64_t)(x - e);
	return (uint64_t)((int64_t)e + (d >= 0 ? (d + 7) / 8 : (d - 7) / 8));
}

/* Calls of c timed so far (the probation's, the samples', exact ones). */
static inline uint64_t timed_calls(const struct cnsmp_counters *c)
{
	return atomic_load_explicit(&c->calls, memory_order_relaxed) -
	       atomic_load_explicit(&c->untimed, memory_order_relaxed);
}

/* From now on, c's probe_* measure from here. */
static inline void probe_mark(struct cnsmp_counters *c)
{
	c->probe_calls = timed_calls(c);
	c->probe_ticks = atomic_load_explicit(&c->total_ticks, memory_order_relaxed);
	c->probe_self = atomic_load_explicit(&c->self_ticks, memory_order_relaxed);
}

/* The cached value of counters c: tagged while sampling is on and c is
 * not decided exact.  A sampled function's mark restarts here: while its
 * slot was not tagged (sampling off, or a slot filled before the cache
 * was emptied), its calls were timed as exact ones, and the next sample
 * must not take them for its own. */
CNSMP_NOINST struct cnsmp_counters *cnsmp_sample_tag(struct cnsmp_counters *c)
{
	if (c && c->smode != CNSMP_SM_EXACT &&
	    atomic_load_explicit(&cnsmp_sampling.every, memory_order_relaxed) > 1) {
		if (c->smode == CNSMP_SM_SAMPLED)
			probe_mark(c);
		return (struct cnsmp_counters *)((uintptr_t)c | CNSMP_TC_SAMPLE);
	}
	return c;
}

/* Untimed calls before the next timed one: uniform on 1 ... 2N-1 (mean
 * N), from the thread's xorshift32.  Seeds are the threads' order of
 * first use, not addresses or time, so that a run can be repeated. */
static _Atomic uint32_t sample_seeds;
static CNSMP_NOINST uint32_t sample_gap(struct cnsmp_thread *t)
{
	uint32_t every = atomic_load_explicit(&cnsmp_sampling.every,
					      memory_order_relaxed);
	if (every <= 1)
		return 1;
	uint32_t x = t->rng;
	if (x == 0)
		x = (atomic_fetch_add_explicit(&sample_seeds, 1, memory_order_relaxed) +
		     1) * 0x9e3779b9u | 1;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	t->rng = x;
	/* x * (2N-1) / 2^32, a multiply, not a division: see sample_learn. */
	return 1 + (uint32_t)(((uint64_t)x * (2 * every - 1)) >> 32);
}

/* A sampled function's next timed call is due: add the timed calls that
 * ended since the last one (one, unless a cached decision was refilled)
 * to the samples, and fold them into its running estimate (weight 1/8
 * per sample: recent enough to follow a function that changes, smooth
 * enough that one slow call does not end its sampling).  The samples are
 * read back from the counters, so a timed call of a sampled function is
 * an ordinary frame, measured by the same code as exact mode's.  This
 * runs just before the sample's clock read, which does not wait for it,
 * so the common case divides nothing: a division's 20-40 cycles would
 * still be in flight inside the sample.  An estimate past twice the
 * threshold means the function is not short any more: back to
 * probation, which times every call and decides again. */
static CNSMP_NOINST void sample_learn(struct cnsmp_counters *c)
{
	uint64_t n = timed_calls(c) - c->probe_calls;
	if (n == 0)
		return; /* the last sample is still open */
	uint64_t total = atomic_load_explicit(&c->total_ticks, memory_order_relaxed);
	uint64_t self = atomic_load_explicit(&c->self_ticks, memory_order_relaxed);
	uint64_t dt = total - c->probe_ticks, ds = self - c->probe_self;
	uint32_t seq = atomic_load_explicit(&c->s_seq, memory_order_relaxed);
	atomic_store_explicit(&c->s_seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	cnsmp_bump(&c->s_ticks, dt);
	cnsmp_bump(&c->s_self, ds);
	cnsmp_bump(&c->s_timed, n);
	atomic_store_explicit(&c->s_seq, seq + 2, memory_order_release);
	if (unlikely(n > 1)) /* else no division (see above) */
		dt /= n, ds /= n;
	uint64_t e = ema(atomic_load_explicit(&c->est_ticks, memory_order_relaxed), dt);
	uint64_t es = ema(atomic_load_explicit(&c->est_self, memory_order_relaxed), ds);
	atomic_store_explicit(&c->est_ticks, e, memory_order_relaxed);
	atomic_store_explicit(&c->est_self, es, memory_order_relaxed);
	if (e > 2 * atomic_load_explicit(&cnsmp_sampling.below, memory_order_relaxed))
		c->smode = CNSMP_SM_PROBATION;
	probe_mark(c);
}

/* Is c's function already open within CNSMP_SAMPLE_CYCLE frames of the
 * top (a recursion through up to that many others: f -> g -> f)?  Direct
 * self-calls are also caught by the edge cache (cnsmp_count_edge); this
 * scan, on timed calls only, finds the cycles through other functions.
 * Every call of a probation is timed, so a function that recurses early
 * is caught there; one that starts later, at a sample inside it. */
static CNSMP_NOINST int open_above(struct cnsmp_thread *t,
				   const struct cnsmp_counters *c)
{
	uint32_t j = t->depth; /* frame slots j..stop+1, a stack chunk at a time */
	uint32_t stop = j > CNSMP_SAMPLE_CYCLE ? j - CNSMP_SAMPLE_CYCLE : 0;
	while (j > stop) {
		unsigned k = cnsmp_stack_chunk(j);
		uint32_t s = cnsmp_stack_start(k), low = s > stop ? s : stop;
		const struct cnsmp_frame *f = k ? t->stack[k] - s - 1 : t->frames;
		for (; j > low; j--)
			if (f[j].c == c)
				return 1;
	}
	return 0;
}

/* Before the timed call of a sampled function, or a call in probation:
 * the bookkeeping, done before the caller reads the clock, so that the
 * read is the last thing before the call, as on the exact path.  A
 * probation that has seen enough calls decides: sampled from now on, or
 * exact (the cache slot loses its tag, so the function's calls take the
 * exact path again). */
CNSMP_NOINST void cnsmp_sample_due(struct cnsmp_thread *t,
				   struct cnsmp_counters *c, void *fn)
{
	if (c->smode != CNSMP_SM_EXACT && unlikely(open_above(t, c)))
		c->smode = CNSMP_SM_EXACT; /* recursive: never sampled */
	if (c->smode == CNSMP_SM_SAMPLED) {
		sample_learn(c);
		c->skip = sample_gap(t);
	} else if (c->smode == CNSMP_SM_EXACT) {
		cnsmp_tcache_retag(t, (uintptr_t)fn, c); /* recursive */
	} else if (c->smode == CNSMP_SM_PROBATION) {
		uint64_t n = timed_calls(c) - c->probe_calls;
		if (n >= CNSMP_SAMPLE_PROBE) {
			uint64_t mean = (atomic_load_explicit(&c->total_ticks, memory_order_relaxed) -
					 c->probe_ticks) / n;
			uint64_t self = (atomic_load_explicit(&c->self_ticks, memory_order_relaxed) -
					 c->probe_self) / n;
			if (mean < atomic_load_explicit(&cnsmp_sampling.below,
							memory_order_relaxed)) {
				atomic_store_explicit(&c->est_ticks, mean, memory_order_relaxed);
				atomic_store_explicit(&c->est_self, self, memory_order_relaxed);
				c->smode = CNSMP_SM_SAMPLED;
				c->skip = sample_gap(t);
				probe_mark(c);
			} else {
				c->smode = CNSMP_SM_EXACT;
				cnsmp_tcache_retag(t, (uintptr_t)fn, c);
			}
		}
	}
}
