/* collect.c: the flusher's side of the per-thread counters: read every
 * thread's block into a batch of deltas, and the batch's own arithmetic.
 *
 * Deltas: next to every counter the flusher keeps a snapshot of what it
 * shipped (a function's struct cnsmp_shipped, an edge's or an incident's
 * `shipped`, allocated with them: thread.h); a delta is the current value
 * minus the snapshot, and collecting advances the snapshot.  The owner never
 * resets anything, so no update is lost and no lock is taken.  Exceptions:
 * max_ticks, which the flusher exchanges with 0 (thread.h), and a fork
 * child, which zeroes every block and snapshot (the parent ships those).
 * A block whose thread exited is taken over by the next new thread as it
 * is, so reading it needs nothing special either.
 *
 * Errors never exceed calls in a delta: the owner stores errors before
 * calls (release) and collect loads calls (acquire) before errors, so the
 * only errors it can see without their call are of calls that end a moment
 * later; such an error is held back (the snapshot advances by what was
 * shipped) and goes out with its call.
 *
 * Sorting and merging use no allocation, so the signal-safe collect can
 * share them.
 */
#include <stdlib.h>
#include <string.h>
#include "thread.h"

#define INCIDENTS_PER_FN 8 /* distinct chains per failing function per batch */

/* Flusher-only totals already shipped. */
static uint64_t shipped_dropped, shipped_repairs;
static double last_end;

/* ---- sorting without malloc ------------------------------------------- */

typedef int (*cmp_fn)(const void *, const void *);

/* Through a stack buffer a line at a time: a function's delta is ~400
 * bytes, and a byte loop made the sort most of a large flush's cost. */
static void swap_bytes(char *a, char *b, size_t n)
{
	char t[64];
	while (n) {
		size_t k = n < sizeof t ? n : sizeof t;
		memcpy(t, a, k);
		memcpy(a, b, k);
		memcpy(b, t, k);
		a += k;
		b += k;
		n -= k;
	}
}

static void sift(char *base, size_t i, size_t n, size_t sz, cmp_fn cmp)
{
	for (size_t c; (c = 2 * i + 1) < n; i = c) {
		if (c + 1 < n && cmp(base + c * sz, base + (c + 1) * sz) < 0)
			c++;
		if (cmp(base + i * sz, base + c * sz) >= 0)
			return;
		swap_bytes(base + i * sz, base + c * sz, sz);
	}
}

/* Heapsort: O(n log n), in place, async-signal-safe (qsort may malloc). */
static void sort(void *v, size_t n, size_t sz, cmp_fn cmp)
{
	char *base = v;
	for (size_t i = n / 2; i-- > 0;)
		sift(base, i, n, sz, cmp);
	for (size_t end = n; end-- > 1;) {
		swap_bytes(base, base + end * sz, sz);
		sift(base, 0, end, sz, cmp);
	}
}

/* Fold runs of equal elements of a sorted array into their first element
 * with `add`; returns the new length. */
static size_t fold(void *v, size_t n, size_t sz, cmp_fn cmp,
		   void (*add)(void *, const void *))
{
	char *base = v;
	size_t out = 0;
	for (size_t i = 0; i < n; i++) {
		char *e = base + i * sz;
		if (out > 0 && cmp(base + (out - 1) * sz, e) == 0) {
			add(base + (out - 1) * sz, e);
		} else {
			if (base + out * sz != e)
				memcpy(base + out * sz, e, sz);
			out++;
		}
	}
	return out;
}

static int cmp_fn_delta(const void *a, const void *b)
{
	uint32_t x = ((const struct cnsmp_fn_delta *)a)->id;
	uint32_t y = ((const struct cnsmp_fn_delta *)b)->id;
	return (x > y) - (x < y);
}

static void add_fn_delta(void *dst, const void *src)
{
	struct cnsmp_fn_delta *d = dst;
	const struct cnsmp_fn_delta *s = src;
	d->calls += s->calls;
	d->errors += s->errors;
	d->estimated += s->estimated;
	d->total_ns += s->total_ns;
	d->self_ns += s->self_ns;
	if (s->max_ns > d->max_ns)
		d->max_ns = s->max_ns;
	for (unsigned b = 0; b < CNSMP_HIST_BUCKETS; b++)
		d->hist[b] += s->hist[b];
}

static int cmp_edge(const void *a, const void *b)
{
	const struct cnsmp_edge_delta *x = a, *y = b;
	uint64_t p = (uint64_t)x->caller << 32 | x->callee;
	uint64_t q = (uint64_t)y->caller << 32 | y->callee;
	return (p > q) - (p < q);
}

static void add_edge(void *dst, const void *src)
{
	((struct cnsmp_edge_delta *)dst)->calls +=
		((const struct cnsmp_edge_delta *)src)->calls;
}

/* Identity of an incident: failing function (last of the chain) first, so
 * that one function's chains are adjacent after sorting. */
static int cmp_incident(const void *a, const void *b)
{
	const struct cnsmp_incident *x = a, *y = b;
	uint32_t fx = x->depth ? x->chain[x->depth - 1] : 0;
	uint32_t fy = y->depth ? y->chain[y->depth - 1] : 0;
	if (fx != fy)
		return (fx > fy) - (fx < fy);
	int c = strncmp(x->kind, y->kind, sizeof x->kind);
	if (c)
		return c;
	if (x->signo != y->signo)
		return (x->signo > y->signo) - (x->signo < y->signo);
	if (x->depth != y->depth)
		return (x->depth > y->depth) - (x->depth < y->depth);
	return memcmp(x->chain, y->chain, x->depth * sizeof x->chain[0]);
}

static void add_incident(void *dst, const void *src)
{
	struct cnsmp_incident *d = dst;
	const struct cnsmp_incident *s = src;
	d->count += s->count;
	if (s->first_seen < d->first_seen)
		d->first_seen = s->first_seen;
	if (s->last_seen > d->last_seen)
		d->last_seen = s->last_seen;
}

static int by_count_desc(const void *a, const void *b)
{
	uint64_t x = ((const struct cnsmp_incident *)a)->count;
	uint64_t y = ((const struct cnsmp_incident *)b)->count;
	return (x < y) - (x > y);
}

static uint32_t failing(const struct cnsmp_incident *i)
{
	return i->depth ? i->chain[i->depth - 1] : 0;
}

/* Sort and fold the incidents, then keep the INCIDENTS_PER_FN most frequent
 * chains of each failing function; the rest are left out (their errors are
 * in the function's counts). */
static void settle_incidents(struct cnsmp_batch *b)
{
	struct cnsmp_incident *v = b->incidents;
	size_t n = b->nincidents, sz = sizeof *v;
	sort(v, n, sz, cmp_incident);
	n = fold(v, n, sz, cmp_incident, add_incident);
	size_t out = 0;
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i; j < n && failing(&v[j]) == failing(&v[i]); j++)
			;
		sort(v + i, j - i, sz, by_count_desc);
		size_t keep = j - i < INCIDENTS_PER_FN ? j - i : INCIDENTS_PER_FN;
		memmove(v + out, v + i, keep * sz);
		out += keep;
	}
	b->nincidents = out;
}

/* ---- batches ----------------------------------------------------------- */

void cnsmp_batch_init(struct cnsmp_batch *b)
{
	memset(b, 0, sizeof *b);
}

int cnsmp_batch_reserve(struct cnsmp_batch *b, size_t fns, size_t edges,
			size_t incidents)
{
	if (cnsmp_grow((void **)&b->fns, &b->capfns, fns, sizeof *b->fns) ||
	    cnsmp_grow((void **)&b->edges, &b->capedges, edges, sizeof *b->edges) ||
	    cnsmp_grow((void **)&b->incidents, &b->capincidents, incidents,
		 sizeof *b->incidents))
		return -1;
	return 0;
}

void cnsmp_batch_release(struct cnsmp_batch *b)
{
	if (!b)
		return;
	free(b->fns);
	free(b->edges);
	free(b->incidents);
	cnsmp_batch_init(b);
}

int cnsmp_batch_is_empty(const struct cnsmp_batch *b)
{
	return !b || (b->nfns == 0 && b->nedges == 0 && b->nincidents == 0 &&
	       b->dropped == 0 && b->repairs == 0);
}

static int sorted(const char *v, size_t n, size_t sz, cmp_fn cmp)
{
	for (size_t i = 1; i < n; i++)
		if (cmp(v + (i - 1) * sz, v + i * sz) > 0)
			return 0;
	return 1;
}

/* Add `src`'s ns elements to `dst`'s nd (room reserved for both), in
 * order, and fold equal ones.  Batches are usually sorted already (every
 * merge leaves them so), and then it is one merge from the back, in place:
 * a flush of thousands of functions merges several times, and re-sorting
 * its ~400-byte deltas each time was most of its cost. */
static size_t merge_into(void *dst, size_t nd, const void *src, size_t ns,
			 size_t sz, cmp_fn cmp, void (*add)(void *, const void *))
{
	char *d = dst;
	const char *s = src;
	if (sorted(d, nd, sz, cmp) && sorted(s, ns, sz, cmp)) {
		size_t i = nd, j = ns, k = nd + ns;
		while (j > 0) {
			if (i > 0 && cmp(d + (i - 1) * sz, s + (j - 1) * sz) > 0)
				memmove(d + --k * sz, d + --i * sz, sz);
			else
				memcpy(d + --k * sz, s + --j * sz, sz);
		}
	} else {
		if (ns)
			memcpy(d + nd * sz, s, ns * sz);
		sort(d, nd + ns, sz, cmp);
	}
	return fold(d, nd + ns, sz, cmp, add);
}

int cnsmp_batch_merge(struct cnsmp_batch *dst, const struct cnsmp_batch *src)
{
	if (cnsmp_batch_reserve(dst, dst->nfns + src->nfns,
				dst->nedges + src->nedges,
				dst->nincidents + src->nincidents))
		return -1; /* the arrays may have grown; the contents are intact */
	dst->nfns = merge_into(dst->fns, dst->nfns, src->fns, src->nfns,
			       sizeof *dst->fns, cmp_fn_delta, add_fn_delta);
	dst->nedges = merge_into(dst->edges, dst->nedges, src->edges,
				 src->nedges, sizeof *dst->edges, cmp_edge,
				 add_edge);
	dst->nincidents = merge_into(dst->incidents, dst->nincidents,
				     src->incidents, src->nincidents,
				     sizeof *dst->incidents, cmp_incident,
				     add_incident);
	dst->dropped += src->dropped;
	dst->repairs += src->repairs;
	if (src->start > 0 && (dst->start == 0 || src->start < dst->start))
		dst->start = src->start;
	if (src->end > dst->end)
		dst->end = src->end;
	return 0;
}

/* ---- reading the blocks ------------------------------------------------ */

/* What one collect may do: `safe` = from a signal handler (no malloc, no
 * snapshot advance, arrays fixed). */
struct pass {
	struct cnsmp_batch *out;
	int safe;
};

static struct cnsmp_thread *first(void)
{
	return atomic_load_explicit(&cnsmp_threads, memory_order_acquire);
}

static struct cnsmp_thread *next(struct cnsmp_thread *t)
{
	return atomic_load_explicit(&t->next, memory_order_acquire);
}

static int readable(struct cnsmp_thread *t)
{
	int s = atomic_load_explicit(&t->state, memory_order_acquire);
	return s == CNSMP_T_LIVE || s == CNSMP_T_DEAD;
}

static void read_hist(struct pass *p, struct cnsmp_counters *c,
		      struct cnsmp_shipped *s, uint64_t *hist)
{
	for (unsigned b = 0; b < CNSMP_HIST_BUCKETS; b++) {
		uint32_t h = atomic_load_explicit(&c->hist[b], memory_order_relaxed);
		hist[cnsmp_hist_of_slot(b)] += (uint32_t)(h - s->hist[b]);
		if (!p->safe)
			s->hist[b] = h;
	}
}

/* Add `extra` samples to `hist` (holding `sum` > 0) in proportion to its
 * buckets: each gets its share rounded down, and what rounding left over
 * goes one each to the largest remainders, so the histogram gains exactly
 * `extra`. */
static void spread(uint64_t *hist, uint64_t sum, uint64_t extra)
{
	uint64_t rem[CNSMP_HIST_BUCKETS], left = extra;
	for (unsigned b = 0; b < CNSMP_HIST_BUCKETS; b++) {
		unsigned __int128 x = (unsigned __int128)hist[b] * extra;
		uint64_t share = (uint64_t)(x / sum);
		rem[b] = (uint64_t)(x % sum);
		hist[b] += share;
		left -= share;
	}
	/* left < the buckets with a remainder: the remainders sum to
	 * left * sum, and each is under sum. */
	while (left--) {
		unsigned best = 0;
		for (unsigned b = 1; b < CNSMP_HIST_BUCKETS; b++)
			if (rem[b] > rem[best])
				best = b;
		hist[best]++;
		rem[best] = 0;
	}
}

/* Sampled timing (sample.c): `untimed` calls of a delta read no clock.
 * Each is given the mean of the delta's samples (the timed calls of the
 * function while it was sampled, a random one in N of its calls); the
 * other timed calls (its probation, exact mode) count as they are: they
 * were not chosen at random, and scaling them up would give their bias N
 * times.  With no sample in the delta (a flush between two), the owner's
 * running estimate of one call stands in.  The histogram gains the
 * untimed calls spread over its buckets in proportion, so it still sums
 * to the calls; the max is the timed calls'. */
CNSMP_NOINST void cnsmp_collect_estimate(const struct cnsmp_counters *c,
					 uint64_t untimed,
					 const struct cnsmp_sample_delta *s,
					 uint64_t *total, uint64_t *self, uint64_t *hist)
{
	uint64_t sum = 0, ticks;
	if (untimed == 0)
		return;
	if (s->timed > 0) {
		ticks = (uint64_t)((unsigned __int128)s->ticks * untimed / s->timed);
		*self += (uint64_t)((unsigned __int128)s->self * untimed / s->timed);
	} else {
		ticks = untimed * atomic_load_explicit(&c->est_ticks, memory_order_relaxed);
		*self += untimed * atomic_load_explicit(&c->est_self, memory_order_relaxed);
	}
	*total += ticks;
	for (unsigned b = 0; b < CNSMP_HIST_BUCKETS; b++)
		sum += hist[b];
	if (sum > 0)
		spread(hist, sum, untimed);
	else /* no timed call binned yet (pending, thread.h; or none: calls
	      * counted in an earlier delta): the estimate's own bucket */
		hist[cnsmp_clock_bucket(ticks / untimed)] += untimed;
}

/* The samples' three counters as one (the owner's seqlock, s_seq): 1,
 * or 0 if they kept changing.  The owner adds to them once per sample,
 * so a retry is rare, but an owner preempted in the middle of an update
 * holds it for a time slice, and a signal-safe collect on the owner's own
 * thread cannot wait for it at all; the caller then keeps the snapshot
 * (no sample in this delta: the running estimate stands in), and the
 * next collect ships them. */
static int read_samples(const struct cnsmp_counters *c, uint64_t *timed,
			uint64_t *ticks, uint64_t *self)
{
	for (int tries = 0; tries < 64; tries++) {
		uint32_t s1 = atomic_load_explicit(&c->s_seq, memory_order_acquire);
		*timed = atomic_load_explicit(&c->s_timed, memory_order_relaxed);
		*ticks = atomic_load_explicit(&c->s_ticks, memory_order_relaxed);
		*self = atomic_load_explicit(&c->s_self, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (!(s1 & 1) && s1 == atomic_load_explicit(&c->s_seq, memory_order_relaxed))
			return 1;
	}
	return 0;
}

/* Add t's delta of function `id` into d. */
static void read_fn(struct pass *p, struct cnsmp_thread *t, uint32_t id,
		    struct cnsmp_fn_delta *d)
{
	struct cnsmp_cset *set = atomic_load_explicit(&t->chunk[id / CNSMP_CHUNK],
						      memory_order_acquire);
	struct cnsmp_counters *c = set ? atomic_load_explicit(
		&set->c[id % CNSMP_CHUNK], memory_order_acquire) : NULL;
	if (!c)
		return;
	struct cnsmp_shipped *s = cnsmp_shipped_of(c);
	/* untimed before calls: every untimed call seen is in calls too
	 * (cnsmp_count_untimed).  Not the other way round: calls may hold
	 * untimed calls that this read of untimed missed (the owner bumps
	 * untimed just after calls, and this thread can be preempted between
	 * the two loads while the owner makes thousands of calls).  Those
	 * calls ship now with no time, and their estimate with a later
	 * delta, one with no new call if the thread has stopped calling the
	 * function: so nothing is skipped unless neither count moved. */
	uint64_t untimed = atomic_load_explicit(&c->untimed, memory_order_acquire);
	uint64_t calls = atomic_load_explicit(&c->calls, memory_order_acquire);
	if (calls == s->calls && untimed == s->untimed) {
		/* Nothing ended (errors wait for their calls), but the
		 * histogram slot of this function's last call may have been
		 * bumped since, by the thread's next call (thread.h). */
		read_hist(p, c, s, d->hist);
		return;
	}
	uint64_t errors = atomic_load_explicit(&c->errors, memory_order_relaxed);
	uint64_t total = atomic_load_explicit(&c->total_ticks, memory_order_relaxed);
	uint64_t self = atomic_load_explicit(&c->self_ticks, memory_order_relaxed);
	uint64_t dc = calls - s->calls, de = errors - s->errors;
	uint64_t dt = total - s->total_ticks, ds = self - s->self_ticks;
	if (de > dc)
		de = dc;
	uint64_t s_timed, s_ticks, s_self;
	if (!read_samples(c, &s_timed, &s_ticks, &s_self))
		s_timed = s->s_timed, s_ticks = s->s_ticks, s_self = s->s_self;
	struct cnsmp_sample_delta sd = { s_timed - s->s_timed, s_ticks - s->s_ticks,
					 s_self - s->s_self };
	/* This thread's histogram on its own: the estimate spreads the
	 * untimed calls over it. */
	uint64_t hist[CNSMP_HIST_BUCKETS] = {0};
	read_hist(p, c, s, hist);
	cnsmp_collect_estimate(c, untimed - s->untimed, &sd, &dt, &ds, hist);
	for (unsigned b = 0; b < CNSMP_HIST_BUCKETS; b++)
		d->hist[b] += hist[b];
	d->calls += dc;
	d->errors += de;
	d->estimated += untimed - s->untimed;
	d->total_ns += cnsmp_clock_ns(dt);
	d->self_ns += cnsmp_clock_ns(ds);
	uint64_t max = p->safe ? atomic_load_explicit(&c->max_ticks, memory_order_relaxed)
			       : atomic_exchange_explicit(&c->max_ticks, 0,
							  memory_order_relaxed);
	max = cnsmp_clock_ns(max);
	if (max > d->max_ns)
		d->max_ns = max;
	if (!p->safe) {
		s->calls = calls;
		s->untimed = untimed;
		s->s_timed = s_timed;
		s->s_ticks = s_ticks;
		s->s_self = s_self;
		s->errors += de;
		s->total_ticks = total;
		s->self_ticks = self;
	}
}

/* One delta per tracked id with anything to say, in id order. */
static int any_hist(const struct cnsmp_fn_delta *d)
{
	for (unsigned b = 0; b < CNSMP_HIST_BUCKETS; b++)
		if (d->hist[b])
			return 1;
	return 0;
}

static int read_fns(struct pass *p)
{
	struct cnsmp_batch *b = p->out;
	uint32_t n = cnsmp_registry_count();
	for (uint32_t id = 0; id < n; id++) {
		struct cnsmp_fn_delta d;
		memset(&d, 0, sizeof d);
		d.id = id;
		for (struct cnsmp_thread *t = first(); t; t = next(t))
			if (readable(t))
				read_fn(p, t, id, &d);
		if (d.calls == 0 && d.errors == 0 && !any_hist(&d))
			continue;
		if (b->nfns == b->capfns &&
		    (p->safe || cnsmp_grow((void **)&b->fns, &b->capfns, b->nfns + 1,
				     sizeof *b->fns)))
			return -1;
		b->fns[b->nfns++] = d;
	}
	return 0;
}

static int read_edges(struct pass *p, struct cnsmp_thread *t)
{
	struct cnsmp_batch *b = p->out;
	for (size_t i = 0; i < CNSMP_EDGES_PER_THREAD; i++) {
		struct cnsmp_edge *e = cnsmp_thread_edge_at(t, i);
		if (!e)
			break; /* segments come in order: none after this one */
		uint64_t key = atomic_load_explicit(&e->key, memory_order_acquire);
		if (!key)
			continue;
		uint64_t calls = atomic_load_explicit(&e->calls, memory_order_relaxed);
		uint64_t delta = calls - e->shipped;
		if (!delta)
			continue;
		if (b->nedges == b->capedges &&
		    (p->safe || cnsmp_grow((void **)&b->edges, &b->capedges,
				     b->nedges + 1, sizeof *b->edges)))
			return -1;
		key--;
		b->edges[b->nedges++] = (struct cnsmp_edge_delta){
			.caller = (uint32_t)(key >> 32),
			.callee = (uint32_t)key, .calls = delta};
		if (!p->safe)
			e->shipped = calls;
	}
	return 0;
}

static int read_incidents(struct pass *p, struct cnsmp_thread *t)
{
	struct cnsmp_batch *b = p->out;
	struct cnsmp_incident_slot *table = atomic_load_explicit(
		&t->incidents, memory_order_acquire);
	for (size_t i = 0; table && i < CNSMP_INCIDENTS_PER_THREAD; i++) {
		struct cnsmp_incident_slot *in = &table[i];
		if (!atomic_load_explicit(&in->hash, memory_order_acquire))
			continue;
		uint64_t count = atomic_load_explicit(&in->count, memory_order_relaxed);
		uint64_t delta = count - in->shipped;
		if (!delta)
			continue;
		if (b->nincidents == b->capincidents &&
		    (p->safe || cnsmp_grow((void **)&b->incidents, &b->capincidents,
				     b->nincidents + 1, sizeof *b->incidents)))
			return -1;
		struct cnsmp_incident *o = &b->incidents[b->nincidents++];
		memset(o, 0, sizeof *o);
		o->depth = in->depth;
		memcpy(o->chain, in->chain, in->depth * sizeof in->chain[0]);
		memcpy(o->kind, in->kind, sizeof o->kind);
		o->signo = in->signo;
		o->count = delta;
		o->first_seen = atomic_load_explicit(&in->first_us, memory_order_relaxed) / 1e6;
		o->last_seen = atomic_load_explicit(&in->last_us, memory_order_relaxed) / 1e6;
		if (!p->safe)
			in->shipped = count;
	}
	return 0;
}

static double now_s(void)
{
	return (double)cnsmp_thread_now_us() / 1e6;
}

/* Everything but the functions, per block; then the totals. */
static int read_rest(struct pass *p)
{
	struct cnsmp_batch *b = p->out;
	int rc = 0;
	for (struct cnsmp_thread *t = first(); t; t = next(t)) {
		if (!readable(t))
			continue;
		if (read_edges(p, t) || read_incidents(p, t))
			rc = -1;
	}
	sort(b->edges, b->nedges, sizeof *b->edges, cmp_edge);
	b->nedges = fold(b->edges, b->nedges, sizeof *b->edges, cmp_edge, add_edge);
	settle_incidents(b);
	uint64_t dropped = cnsmp_registry_dropped();
	uint64_t repairs = atomic_load_explicit(&cnsmp_thread_repairs,
						memory_order_relaxed);
	b->dropped = dropped - shipped_dropped;
	b->repairs = repairs - shipped_repairs;
	uint64_t started = atomic_load_explicit(&cnsmp_thread_started_us,
						memory_order_relaxed);
	b->start = last_end > 0 ? last_end : started ? started / 1e6 : now_s();
	b->end = now_s();
	if (!p->safe) {
		shipped_dropped = dropped;
		shipped_repairs = repairs;
		last_end = b->end;
	}
	return rc;
}

static void clear(struct cnsmp_batch *b)
{
	b->nfns = b->nedges = b->nincidents = 0;
	b->dropped = b->repairs = 0;
	b->start = b->end = 0;
}

/* Every block is read alike, whether its thread runs, has exited, or was
 * exited and taken over by a new thread (thread.c: counters only grow). */
int cnsmp_collect(struct cnsmp_batch *out)
{
	struct pass p = {out, 0};
	clear(out);
	int rc = read_fns(&p);
	if (read_rest(&p))
		rc = -1;
	return rc;
}

int cnsmp_collect_signal_safe(struct cnsmp_batch *out)
{
	struct pass p = {out, 1};
	clear(out);
	int rc = read_fns(&p);
	if (read_rest(&p))
		rc = -1;
	return rc;
}

/* Zero t's record of what was shipped (a fork child: the parent ships
 * what its counters held); the block itself is reused. */
static void forget_thread(struct cnsmp_thread *t)
{
	for (unsigned k = 0; k < CNSMP_NCHUNKS; k++) {
		struct cnsmp_cset *set = atomic_load_explicit(&t->chunk[k],
							      memory_order_acquire);
		for (unsigned i = 0; set && i < CNSMP_CHUNK; i++) {
			struct cnsmp_counters *c = atomic_load_explicit(
				&set->c[i], memory_order_acquire);
			if (c)
				memset(cnsmp_shipped_of(c), 0, sizeof(struct cnsmp_shipped));
		}
	}
	for (size_t i = 0; i < CNSMP_EDGES_PER_THREAD; i++) {
		struct cnsmp_edge *e = cnsmp_thread_edge_at(t, i);
		if (e)
			e->shipped = 0;
	}
	struct cnsmp_incident_slot *in = atomic_load_explicit(
		&t->incidents, memory_order_acquire);
	for (size_t i = 0; in && i < CNSMP_INCIDENTS_PER_THREAD; i++)
		in[i].shipped = 0;
}

/* The child's counters start from zero (thread.c): so do the snapshots
 * of every block, and the totals already shipped are the parent's. */
void cnsmp_collect_atfork_child(void)
{
	for (struct cnsmp_thread *t = atomic_load_explicit(&cnsmp_threads, memory_order_acquire);
	     t; t = atomic_load_explicit(&t->next, memory_order_acquire))
		forget_thread(t);
	shipped_dropped = cnsmp_registry_dropped();
	shipped_repairs = atomic_load_explicit(&cnsmp_thread_repairs,
					       memory_order_relaxed);
	last_end = now_s();
}
