/* flusher.c: the background thread that turns counters into delivered
 * request bodies, with the product's promise: no count is lost, none is
 * sent twice.
 *
 * Every count is in exactly one place at a time:
 *   - the per-thread counters, past the collect snapshots;
 *   - `pending`: collected, in no body (merged back after a clean failure);
 *   - a body: built, with its batch id, sent or about to be.  A body whose
 *     answer was lost (FAILED_UNSURE) is resent verbatim, never rebuilt:
 *     the server may have committed it, and the same batch id lets it
 *     answer "duplicate" instead of counting twice.
 * Pending memory is bounded by the registry (one delta per function), so a
 * server that is down for hours costs nothing more; verbatim bodies past
 * UNSURE_MAX_BYTES go to the spool.
 *
 * The crash handler must see the same picture without locks, so the pair
 * (pending, bodies) is published as an immutable view (view.c) after every
 * change, and what the flusher lets go of is trashed there, not freed.
 *
 * Cycles run on the flusher thread only; fl.mu guards the request fields
 * (wake-ups, flush generations, stop), never a network call.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "internal.h"

/* Called at the start of each cycle if set (patch.c's waiting sites): a
 * pointer, so that what links the flusher (the CLI does) does not pull
 * the hooks in. */
void (*_Atomic cnsmp_flusher_tick)(void);

#define MAX_INTERVAL 300.0           /* the seed's back-off cap (5 min) */
#define POST_TIMEOUT_MS 10000
#define FLUSH_BUDGET_S 5.0           /* codensm_flush waits at most this */
#define UNSURE_MAX_BYTES (8u << 20)


/* One built body.  `part` holds the deltas it carries (for merge-back and
 * to mark locations as sent); `inv` the inventory records it carries. */
struct body {
	char *json;
	struct cnsmp_batch part;
	size_t *inv, ninv;
	int verbatim;        /* once UNSURE: resend exactly this, never merge back */
	size_t max_funcs;    /* what it was built with; 413 halves it */
	struct cnsmp_probe_sent *probes; /* its probes section took these */
};

static struct {
	pthread_once_t once;
	pthread_mutex_t mu;
	pthread_cond_t wake, done;  /* CLOCK_MONOTONIC */
	pthread_t thread;
	int running, stop, exited;
	uint64_t stop_deadline;
	uint64_t req_gen, done_gen;
	int last_ok;
	double backoff;             /* 1, 2, 4...: QUOTA answers double it */

	/* Flusher thread only. */
	struct cnsmp_batch *pending;
	struct body *bodies;
	size_t nbodies, capbodies;
	int drain_due;
	unsigned long seq;
} fl = {.once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER, .backoff = 1};

CNSMP_NOINST static struct timespec ts_of(uint64_t ns)
{
	return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

CNSMP_NOINST static void init_once(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fl.wake, &ca);
	pthread_cond_init(&fl.done, &ca);
	pthread_condattr_destroy(&ca);
	cnsmp_view_identify();
	fl.drain_due = 1;
}

/* The bodies' JSON, for the crash view. */
CNSMP_NOINST static const char *body_json(size_t i, void *arg)
{
	(void)arg;
	return fl.bodies[i].json;
}

/* Make the current (pending, bodies) and `fresh` what a crash would spool
 * (view.c says how). */
CNSMP_NOINST static void publish(const struct cnsmp_batch *fresh)
{
	cnsmp_view_publish(fl.pending, fl.nbodies, body_json, NULL, fresh);
}

/* ---- bodies ------------------------------------------------------------- */

CNSMP_NOINST static int bodies_insert(size_t at, struct body *nb, size_t n)
{
	if (fl.nbodies + n > fl.capbodies) {
		size_t nc = (fl.capbodies ? fl.capbodies * 2 : 16) + n;
		struct body *b = realloc(fl.bodies, nc * sizeof *b);
		if (!b)
			return -1;
		fl.bodies = b;
		fl.capbodies = nc;
	}
	memmove(fl.bodies + at + n, fl.bodies + at, (fl.nbodies - at) * sizeof *nb);
	memcpy(fl.bodies + at, nb, n * sizeof *nb);
	fl.nbodies += n;
	return 0;
}

/* Drop body i from the list (its json goes to the garbage: a view may
 * still show it). */
CNSMP_NOINST static void body_remove(size_t i)
{
	struct body *b = &fl.bodies[i];
	cnsmp_view_trash(b->json);
	cnsmp_batch_release(&b->part);
	free(b->inv);
	cnsmp_probereport_sent_free(b->probes);
	memmove(fl.bodies + i, fl.bodies + i + 1, (fl.nbodies - i - 1) * sizeof *b);
	fl.nbodies--;
}

CNSMP_NOINST static void meta_for(struct cnsmp_meta *m, char *id, size_t len)
{
	unsigned long s = fl.seq++;
	char d[24];
	int n = 0;
	do {
		d[n++] = (char)('0' + s % 10);
		s /= 10;
	} while (s);
	size_t bl = strlen(cnsmp_view_batch_base);
	if (bl + 2 + (size_t)n > len)
		bl = 0;
	memcpy(id, cnsmp_view_batch_base, bl);
	id[bl] = '-';
	for (int i = 0; i < n; i++)
		id[bl + 1 + i] = d[n - 1 - i];
	id[bl + 1 + n] = '\0';
	m->service = cnsmp_cfg.service;
	m->host = cnsmp_view_hostname;
	m->pid = (long)getpid();
	m->batch_id = id;
	m->build_id = NULL;
	if (cnsmp_cfg.mode_full) {
		/* The build the flows came from: the program's, read once. */
		static char build[129];
		static int looked;
		if (!looked)
			looked = 1 + (cnsmp_flows_build_id("/proc/self/exe", build, sizeof build) == 0);
		if (looked == 2)
			m->build_id = build;
	}
}

/* A copy of the slice [lo, hi) of each array of `b`. */
CNSMP_NOINST static int slice(struct cnsmp_batch *out, const struct cnsmp_batch *b,
			      const struct cnsmp_payload_part *p)
{
	struct cnsmp_batch v = *b;
	v.fns = b->fns + p->fn_lo;
	v.nfns = p->fn_hi - p->fn_lo;
	v.edges = b->edges + p->edge_lo;
	v.nedges = p->edge_hi - p->edge_lo;
	v.incidents = b->incidents + p->inc_lo;
	v.nincidents = p->inc_hi - p->inc_lo;
	v.capfns = v.nfns;
	v.capedges = v.nedges;
	v.capincidents = v.nincidents;
	/* dropped/repairs ride in body 0 only (payload.c does the same). */
	if (p->fn_lo || p->edge_lo || p->inc_lo || p->inv_lo)
		v.dropped = v.repairs = 0;
	cnsmp_batch_init(out);
	return cnsmp_batch_merge(out, &v);
}

/* CODENSM_MODE=full: inventory records new since the last build get their
 * flows, looked up on this thread (an analysis file is read once per
 * module, never by the program's threads); payload.c ships each with its
 * record. */
CNSMP_NOINST static void attach_flows(void)
{
	static char *dir;
	if (!cnsmp_cfg.mode_full)
		return;
	if (!dir)
		dir = cnsmp_flows_default_dir(getenv); /* NULL: sections only */
	cnsmp_inventory_attach_flows(dir);
}

/* Build bodies for `b` (and the inventory records `invidx`) and append
 * them at position `at`.  Returns the number of bodies, -1 on failure
 * (nothing added). */
CNSMP_NOINST static int build_into(size_t at, const struct cnsmp_batch *b,
				   const size_t *invidx, size_t ninv, size_t max_funcs)
{
	attach_flows();
	struct cnsmp_inv_entry *inv = ninv ? malloc(ninv * sizeof *inv) : NULL;
	if (ninv && !inv)
		return -1;
	for (size_t i = 0; i < ninv; i++)
		inv[i] = *cnsmp_inventory_entry(invidx[i]);
	struct cnsmp_meta m;
	char id[128];
	meta_for(&m, id, sizeof id);
	char **jsons = NULL;
	struct cnsmp_payload_part *parts = NULL;
	int n = cnsmp_payload_build_parts(b, inv, ninv, &m, CNSMP_MAX_BODY, max_funcs,
					  &jsons, &parts);
	free(inv);
	if (n <= 0)
		return n;
	struct body *nb = calloc((size_t)n, sizeof *nb);
	int ok = nb != NULL;
	for (int i = 0; ok && i < n; i++) {
		nb[i].json = jsons[i];
		nb[i].max_funcs = max_funcs;
		if (slice(&nb[i].part, b, &parts[i]) != 0)
			ok = 0;
		nb[i].ninv = parts[i].inv_hi - parts[i].inv_lo;
		if (nb[i].ninv) {
			nb[i].inv = malloc(nb[i].ninv * sizeof(size_t));
			if (!nb[i].inv)
				ok = 0;
			else
				memcpy(nb[i].inv, invidx + parts[i].inv_lo, nb[i].ninv * sizeof(size_t));
		}
	}
	if (ok && bodies_insert(at, nb, (size_t)n) == 0) {
		for (int i = 0; i < n; i++)
			for (size_t j = 0; j < nb[i].ninv; j++)
				cnsmp_inventory_set_state(nb[i].inv[j], CNSMP_INV_RIDING);
	} else {
		for (int i = 0; nb && i < n; i++) {
			cnsmp_batch_release(&nb[i].part);
			free(nb[i].inv);
		}
		for (int i = 0; i < n; i++)
			free(jsons[i]);
		n = -1;
	}
	free(nb);
	free(jsons);
	free(parts);
	return n;
}

/* The probes section goes into the first body this cycle built (at `at`),
 * or into a body of its own when the cycle had nothing else to say, so
 * that a probe reports at every flush.  The body keeps what the section
 * took: merged back after a failure, it hands that back and the next
 * section carries it again (docs/payload.md). */
CNSMP_NOINST static void attach_probes(size_t at, const struct cnsmp_batch *b)
{
	struct cnsmp_probe_sent *sent = NULL;
	char *sec = cnsmp_probereport_section(&sent);
	if (!sec && cnsmp_probes_server_asks())
		sec = strdup("\"probes\":[]"); /* ask, with nothing to say */
	if (!sec)
		return;
	size_t sl = strlen(sec);
	if (at < fl.nbodies) {
		char *old = fl.bodies[at].json; /* "{..." */
		size_t ol = strlen(old);
		char *nj = malloc(ol + sl + 2);
		if (nj) {
			nj[0] = '{';
			memcpy(nj + 1, sec, sl);
			nj[1 + sl] = ',';
			memcpy(nj + 2 + sl, old + 1, ol); /* with its NUL */
			fl.bodies[at].json = nj;
			fl.bodies[at].probes = sent;
			sent = NULL;
			free(old); /* built this cycle: in no published view */
		}
		cnsmp_probereport_unsent(sent);
		free(sec);
		return;
	}
	struct cnsmp_meta m;
	char id[128];
	meta_for(&m, id, sizeof id);
	struct cnsmp_sink s;
	size_t len;
	cnsmp_schema_to_mem(&s);
	cnsmp_schema_put(&s, "{\"functions\":[],");
	cnsmp_schema_put(&s, sec);
	cnsmp_schema_put(&s, ",\"_meta\":");
	cnsmp_schema_meta(&s, &m, b, 1, -1);
	cnsmp_schema_put(&s, "}");
	free(sec);
	struct body nb = {0};
	nb.json = cnsmp_schema_take(&s, &len);
	nb.max_funcs = CNSMP_MAX_FUNCS_PER_PAYLOAD;
	nb.probes = sent;
	cnsmp_batch_init(&nb.part);
	if (!nb.json || bodies_insert(at, &nb, 1) != 0) {
		free(nb.json);
		cnsmp_probereport_unsent(sent);
	}
}

/* ---- sending ------------------------------------------------------------ */

CNSMP_NOINST static long time_left_ms(uint64_t deadline)
{
	uint64_t now = cnsmp_clock_mono_ns();
	if (!deadline)
		return POST_TIMEOUT_MS;
	if (now >= deadline)
		return 0;
	uint64_t ms = (deadline - now) / 1000000u;
	return ms > POST_TIMEOUT_MS ? POST_TIMEOUT_MS : (long)ms;
}

CNSMP_NOINST static void mark_delivered(const struct body *b)
{
	for (size_t i = 0; i < b->part.nfns; i++) {
		struct cnsmp_fn *fn = cnsmp_registry_get(b->part.fns[i].id);
		if (fn)
			fn->location_sent = 1;
	}
	for (size_t i = 0; i < b->ninv; i++)
		cnsmp_inventory_set_state(b->inv[i], CNSMP_INV_DONE);
}

CNSMP_NOINST static void quota_backoff(void)
{
	double iv = cnsmp_cfg.flush_interval > 0 ? cnsmp_cfg.flush_interval
						 : CNSMP_DEFAULT_FLUSH_INTERVAL;
	if (iv * fl.backoff < MAX_INTERVAL) {
		fl.backoff *= 2;
		cnsmp_log(CNSMP_LOG_INFO, "quota exceeded: flushing every %.0f s from now on",
			  iv * fl.backoff < MAX_INTERVAL ? iv * fl.backoff : MAX_INTERVAL);
	}
}

/* A body answered 413: replace it by smaller ones at the same place.
 * Verbatim bodies are re-split as JSON (deterministic ids), the others
 * rebuilt from their deltas with half the functions.  0, or -1 when it
 * cannot get smaller (it is dropped: the server will never take it). */
CNSMP_NOINST static int split_body(size_t i)
{
	struct body b = fl.bodies[i];
	size_t half = b.max_funcs / 2;
	if (half == 0 || (b.part.nfns <= 1 && !b.verbatim && b.ninv <= 1))
		return -1;
	if (b.verbatim) {
		char **parts = NULL;
		int n = cnsmp_payload_split(b.json, CNSMP_MAX_BODY, half, &parts);
		if (n <= 1) {
			for (int k = 0; k < n; k++)
				free(parts[k]);
			free(parts);
			return -1;
		}
		struct body *nb = calloc((size_t)n, sizeof *nb);
		if (!nb)
			return -1;
		for (int k = 0; k < n; k++) {
			nb[k].json = parts[k];
			nb[k].verbatim = 1;
			nb[k].max_funcs = half;
			cnsmp_batch_init(&nb[k].part);
		}
		free(parts);
		/* Its inventory rides in the new JSON: done as far as we know. */
		for (size_t k = 0; k < b.ninv; k++)
			cnsmp_inventory_set_state(b.inv[k], CNSMP_INV_DONE);
		body_remove(i);
		bodies_insert(i, nb, (size_t)n);
		free(nb);
		return 0;
	}
	for (size_t k = 0; k < b.ninv; k++)
		cnsmp_inventory_set_state(b.inv[k], CNSMP_INV_QUEUED);
	int n = build_into(i + 1, &b.part, b.inv, b.ninv, half);
	if (n <= 0)
		return -1;
	cnsmp_probereport_unsent(fl.bodies[i].probes); /* rebuilt without them */
	fl.bodies[i].probes = NULL;
	body_remove(i);
	return 0;
}

/* Spool body i verbatim and drop it from memory. */
CNSMP_NOINST static void spool_body(size_t i)
{
	if (cnsmp_spool_write(cnsmp_cfg.spool_dir, fl.bodies[i].json) == 0) {
		for (size_t k = 0; k < fl.bodies[i].ninv; k++)
			cnsmp_inventory_set_state(fl.bodies[i].inv[k], CNSMP_INV_DONE);
		body_remove(i);
	}
}

/* Send bodies in order until one fails; returns the index of the first
 * body not delivered (fl.nbodies if all were). */
CNSMP_NOINST static size_t send_all(uint64_t deadline)
{
	size_t i = 0;
	while (i < fl.nbodies) {
		if (atomic_load(&cnsmp_view_frozen))
			break;
		long ms = time_left_ms(deadline);
		if (ms <= 0)
			break;
		/* With a deadline nothing follows this send for a while (exit,
		 * codensm_flush): a transient failure is tried again at once. */
		int maybe_sent = 0;
		enum cnsmp_send_result r =
			deadline ? cnsmp_transport_post_until(&cnsmp_cfg, fl.bodies[i].json,
							      deadline, &maybe_sent)
				 : cnsmp_transport_post(&cnsmp_cfg, fl.bodies[i].json, ms);
		if (maybe_sent)
			fl.bodies[i].verbatim = 1;
		switch (r) {
		case CNSMP_SENT:
			cnsmp_probes_answer(cnsmp_transport_last_answer());
			mark_delivered(&fl.bodies[i]);
			body_remove(i);
			publish(NULL);
			continue;
		case CNSMP_REJECTED:
			/* Resending cannot help (transport logged why).  Counts of
			 * a 400 body are lost; its locations and inventory are not
			 * retried either, or they would be rejected forever. */
			mark_delivered(&fl.bodies[i]);
			body_remove(i);
			publish(NULL);
			continue;
		case CNSMP_TOO_LARGE:
			if (split_body(i) != 0) {
				cnsmp_log(CNSMP_LOG_INFO, "dropping a body the server finds too large "
					  "even alone (%zu bytes)", strlen(fl.bodies[i].json));
				mark_delivered(&fl.bodies[i]);
				body_remove(i);
			}
			publish(NULL);
			continue;
		case CNSMP_QUOTA:
			quota_backoff();
			return i;
		case CNSMP_FAILED_UNSURE:
			fl.bodies[i].verbatim = 1;
			return i;
		case CNSMP_FAILED_CLEAN:
		default:
			return i;
		}
	}
	return i;
}

/* After the sends: every body not delivered and not verbatim goes back
 * into pending (it never reached the server), so the next cycle sends it
 * merged with newer deltas under a new batch id. */
CNSMP_NOINST static void merge_back(void)
{
	int any = 0;
	for (size_t i = 0; i < fl.nbodies; i++)
		any |= !fl.bodies[i].verbatim;
	if (!any)
		return;
	struct cnsmp_batch *np = malloc(sizeof *np);
	if (!np)
		return;
	cnsmp_batch_init(np);
	int bad = fl.pending && cnsmp_batch_merge(np, fl.pending) != 0;
	for (size_t i = 0; !bad && i < fl.nbodies; i++)
		if (!fl.bodies[i].verbatim && cnsmp_batch_merge(np, &fl.bodies[i].part) != 0)
			bad = 1;
	if (bad) {
		/* Keep the bodies as they are: resent verbatim next time. */
		cnsmp_batch_release(np);
		free(np);
		for (size_t i = 0; i < fl.nbodies; i++)
			fl.bodies[i].verbatim = 1;
		return;
	}
	/* Probe results go back once no published view holds their bodies
	 * (a crash in between would spool them twice); newest body first,
	 * so that the oldest records end up first. */
	struct cnsmp_probe_sent **back = calloc(fl.nbodies, sizeof *back);
	size_t nback = 0;
	for (size_t i = fl.nbodies; i-- > 0;) {
		if (fl.bodies[i].verbatim)
			continue;
		for (size_t k = 0; k < fl.bodies[i].ninv; k++)
			cnsmp_inventory_set_state(fl.bodies[i].inv[k], CNSMP_INV_QUEUED);
		if (back)
			back[nback++] = fl.bodies[i].probes;
		else
			cnsmp_probereport_unsent(fl.bodies[i].probes);
		fl.bodies[i].probes = NULL;
		body_remove(i);
	}
	cnsmp_view_trash_batch(fl.pending);
	fl.pending = np;
	publish(NULL);
	for (size_t i = 0; i < nback; i++)
		cnsmp_probereport_unsent(back[i]);
	free(back);
}

/* Verbatim bodies wait in memory up to UNSURE_MAX_BYTES; older ones go to
 * the spool (same bytes, same batch id). */
CNSMP_NOINST static void cap_verbatim(void)
{
	size_t total = 0;
	for (size_t i = fl.nbodies; i-- > 0;) {
		total += strlen(fl.bodies[i].json);
		if (total > UNSURE_MAX_BYTES)
			spool_body(i);
	}
	publish(NULL);
}

/* Errors can outrun calls in one interval (a call marked failed that ends
 * in the next one, a crash mark); the contract says errors <= calls, so
 * the excess waits in `carry` for its calls instead of being cut. */
CNSMP_NOINST static void split_carry(struct cnsmp_batch *all, struct cnsmp_batch *carry)
{
	for (size_t i = 0; i < all->nfns; i++) {
		struct cnsmp_fn_delta *d = &all->fns[i];
		if (d->errors <= d->calls)
			continue;
		struct cnsmp_fn_delta x = {.id = d->id, .errors = d->errors - d->calls};
		struct cnsmp_batch one;
		cnsmp_batch_init(&one);
		one.fns = &x;
		one.nfns = one.capfns = 1;
		one.start = all->start;
		one.end = all->end;
		if (cnsmp_batch_merge(carry, &one) == 0)
			d->errors = d->calls;
	}
}

/* Spool all that is left (exit).  Pending is built into bodies and
 * published first, so a crash during the writes spools the same ids. */
CNSMP_NOINST static void spool_all(void)
{
	if (!cnsmp_batch_is_empty(fl.pending)) {
		if (build_into(fl.nbodies, fl.pending, NULL, 0, CNSMP_MAX_FUNCS_PER_PAYLOAD) >= 0) {
			cnsmp_view_trash_batch(fl.pending);
			fl.pending = NULL;
		}
		publish(NULL);
	}
	for (size_t i = fl.nbodies; i-- > 0;)
		spool_body(i);
	publish(NULL);
}

CNSMP_NOINST static enum cnsmp_send_result post_spooled(const char *body, void *arg);

/* Collect into a new batch and publish it as the view's fresh deltas (the
 * phase flag covers the collect itself).  NULL when out of memory. */
CNSMP_NOINST static struct cnsmp_batch *collect_fresh(void)
{
	struct cnsmp_batch *fresh = malloc(sizeof *fresh);
	if (!fresh)
		return NULL;
	cnsmp_batch_init(fresh);
	atomic_store(&cnsmp_view_phase, 1);
	cnsmp_collect(fresh);
	publish(fresh); /* if it fails, phase stays 1 until a view holds fresh */
	return fresh;
}

/* One cycle: collect, build, send.  Returns 0 when nothing is left. */
CNSMP_NOINST static int cycle(int final, uint64_t deadline)
{
	if (atomic_load(&cnsmp_view_frozen))
		return -1;
	if (!final && (fl.drain_due || cnsmp_spool_pending(cnsmp_cfg.spool_dir))) {
		fl.drain_due = 0;
		cnsmp_spool_drain(cnsmp_cfg.spool_dir, post_spooled, NULL);
	}
	cnsmp_inventory_update();
	cnsmp_probes_poll();

	struct cnsmp_batch *all = malloc(sizeof *all);
	struct cnsmp_batch *carry = malloc(sizeof *carry);
	struct cnsmp_batch *fresh = all && carry ? collect_fresh() : NULL;
	if (!fresh) {
		free(all);
		free(carry);
		return -1;
	}
	cnsmp_batch_init(all);
	cnsmp_batch_init(carry);

	int ok = (!fl.pending || cnsmp_batch_merge(all, fl.pending) == 0) &&
		 cnsmp_batch_merge(all, fresh) == 0;
	if (ok)
		split_carry(all, carry);
	size_t nq = 0;
	size_t ninv = cnsmp_inventory_count();
	size_t *q = ninv ? malloc(ninv * sizeof *q) : NULL;
	for (size_t i = 0; q && i < ninv; i++)
		if (cnsmp_inventory_state(i) == CNSMP_INV_QUEUED)
			q[nq++] = i;
	size_t first_new = fl.nbodies;
	if (ok && (!cnsmp_batch_is_empty(all) || nq))
		ok = build_into(fl.nbodies, all, q, nq, CNSMP_MAX_FUNCS_PER_PAYLOAD) >= 0;
	free(q);
	if (ok)
		attach_probes(first_new, all);
	if (ok) {
		cnsmp_view_trash_batch(fl.pending);
		fl.pending = carry;
		cnsmp_view_trash_batch(fresh);
	} else {
		/* Out of memory: keep the fresh deltas as pending if we can. */
		cnsmp_log(CNSMP_LOG_INFO, "cannot build request bodies: out of memory");
		if ((!fl.pending || cnsmp_batch_merge(carry, fl.pending) == 0) &&
		    cnsmp_batch_merge(carry, fresh) == 0) {
			cnsmp_view_trash_batch(fl.pending);
			fl.pending = carry;
		} else {
			cnsmp_batch_release(carry);
			free(carry);
		}
		cnsmp_view_trash_batch(fresh);
	}
	cnsmp_batch_release(all);
	free(all);
	publish(NULL);

	send_all(deadline);
	merge_back();
	if (final)
		spool_all();
	else
		cap_verbatim();
	return (fl.nbodies == 0 && cnsmp_batch_is_empty(fl.pending)) ? 0 : -1;
}

/* The spool's sender: bodies written by a crash may hold up to 4,000
 * functions, so they are re-split to the limits first (deterministic ids:
 * a partial success resends deduped parts).  A 401 keeps the file: the key
 * is wrong, not the body. */
CNSMP_NOINST static enum cnsmp_send_result post_one(const char *body, size_t max_funcs,
						    int depth)
{
	enum cnsmp_send_result r = cnsmp_transport_post(&cnsmp_cfg, body, POST_TIMEOUT_MS);
	if (r == CNSMP_REJECTED && cnsmp_transport_last_status() == 401)
		return CNSMP_FAILED_CLEAN;
	if (r != CNSMP_TOO_LARGE || depth > 12 || max_funcs < 2)
		return r;
	char **parts = NULL;
	int n = cnsmp_payload_split(body, CNSMP_MAX_BODY, max_funcs / 2, &parts);
	if (n < 0)
		return CNSMP_REJECTED;
	r = CNSMP_SENT;
	for (int i = 0; i < n; i++) {
		if (r == CNSMP_SENT || r == CNSMP_REJECTED)
			r = post_one(parts[i], max_funcs / 2, depth + 1);
		free(parts[i]);
	}
	free(parts);
	return r;
}

CNSMP_NOINST static enum cnsmp_send_result post_spooled(const char *body, void *arg)
{
	if (atomic_load(&cnsmp_view_frozen))
		return CNSMP_FAILED_CLEAN;
	size_t nfuncs = 0;
	json_t *root = json_loads(body, 0, NULL);
	nfuncs = json_array_size(json_object_get(root, "functions"));
	json_decref(root);
	if (!root)
		return CNSMP_REJECTED;
	if (strlen(body) <= CNSMP_MAX_BODY && nfuncs <= CNSMP_MAX_FUNCS_PER_PAYLOAD)
		return post_one(body, CNSMP_MAX_FUNCS_PER_PAYLOAD, 0);
	char **parts = NULL;
	int n = cnsmp_payload_split(body, CNSMP_MAX_BODY, CNSMP_MAX_FUNCS_PER_PAYLOAD, &parts);
	if (n < 0)
		return CNSMP_REJECTED;
	enum cnsmp_send_result r = CNSMP_SENT;
	for (int i = 0; i < n; i++) {
		if (r == CNSMP_SENT || r == CNSMP_REJECTED)
			r = post_one(parts[i], CNSMP_MAX_FUNCS_PER_PAYLOAD, 0);
		free(parts[i]);
	}
	free(parts);
	return r;
}

/* ---- the thread --------------------------------------------------------- */

CNSMP_NOINST static uint64_t interval_ns(void)
{
	double iv = cnsmp_cfg.flush_interval > 0 ? cnsmp_cfg.flush_interval
						 : CNSMP_DEFAULT_FLUSH_INTERVAL;
	iv *= fl.backoff;
	if (iv > MAX_INTERVAL && fl.backoff > 1)
		iv = MAX_INTERVAL;
	return (uint64_t)(iv * 1e9);
}

CNSMP_NOINST static void *run(void *arg)
{
	/* The host's signals belong to its own threads. */
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_setname_np(pthread_self(), "codensm-flush");

	/* Bodies a previous process could not deliver go first. */
	if (fl.drain_due && !atomic_load(&cnsmp_view_frozen)) {
		fl.drain_due = 0;
		cnsmp_spool_drain(cnsmp_cfg.spool_dir, post_spooled, NULL);
	}
	pthread_mutex_lock(&fl.mu);
	uint64_t next = cnsmp_clock_mono_ns() + interval_ns();
	while (!fl.stop) {
		struct timespec ts = ts_of(next);
		while (!fl.stop && fl.req_gen == fl.done_gen && cnsmp_clock_mono_ns() < next)
			pthread_cond_timedwait(&fl.wake, &fl.mu, &ts);
		if (fl.stop)
			break;
		uint64_t gen = fl.req_gen;
		int requested = gen != fl.done_gen;
		pthread_mutex_unlock(&fl.mu);
		void (*tick)(void) = atomic_load(&cnsmp_flusher_tick);
		if (tick)
			tick();
		int rc = cycle(0, requested ? cnsmp_clock_mono_ns() + (uint64_t)(FLUSH_BUDGET_S * 1e9) : 0);
		pthread_mutex_lock(&fl.mu);
		fl.last_ok = rc;
		fl.done_gen = gen;
		pthread_cond_broadcast(&fl.done);
		next = cnsmp_clock_mono_ns() + interval_ns();
	}
	pthread_mutex_unlock(&fl.mu);
	/* Final cycle: bounded by the stop deadline the transport also obeys. */
	int rc = cycle(1, fl.stop_deadline);
	cnsmp_transport_release();
	pthread_mutex_lock(&fl.mu);
	fl.last_ok = rc;
	fl.exited = 1;
	pthread_cond_broadcast(&fl.done);
	pthread_mutex_unlock(&fl.mu);
	return NULL;
}

CNSMP_NOINST int cnsmp_flusher_start(void)
{
	pthread_once(&fl.once, init_once);
	if (!cnsmp_cfg.api_key || atomic_load(&cnsmp_view_frozen))
		return -1;
	pthread_mutex_lock(&fl.mu);
	int rc = 0;
	if (!fl.running) {
		fl.stop = fl.exited = 0;
		cnsmp_transport_set_deadline(0);
		sigset_t all, old;
		sigfillset(&all);
		/* Created with every signal blocked, so none lands on it before
		 * run() blocks them itself. */
		pthread_sigmask(SIG_BLOCK, &all, &old);
		rc = pthread_create(&fl.thread, NULL, run, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc == 0) {
			fl.running = 1;
		} else {
			cnsmp_log(CNSMP_LOG_INFO, "cannot start the flusher thread: %s", strerror(rc));
			rc = -1;
		}
	}
	pthread_mutex_unlock(&fl.mu);
	return rc;
}

CNSMP_NOINST int cnsmp_flusher_flush(double seconds)
{
	if (cnsmp_flusher_start() != 0)
		return -1;
	uint64_t deadline = cnsmp_clock_mono_ns() + (uint64_t)(seconds * 1e9);
	struct timespec ts = ts_of(deadline);
	pthread_mutex_lock(&fl.mu);
	uint64_t my = ++fl.req_gen;
	pthread_cond_signal(&fl.wake);
	int rc = 0;
	while (fl.done_gen < my && !fl.exited && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&fl.done, &fl.mu, &ts);
	int ok = fl.done_gen >= my ? fl.last_ok : -1;
	pthread_mutex_unlock(&fl.mu);
	return ok;
}

CNSMP_NOINST void cnsmp_flusher_stop(double seconds)
{
	pthread_once(&fl.once, init_once);
	uint64_t deadline = cnsmp_clock_mono_ns() + (uint64_t)(seconds * 1e9);
	pthread_mutex_lock(&fl.mu);
	if (!fl.running) {
		pthread_mutex_unlock(&fl.mu);
		return;
	}
	fl.stop = 1;
	fl.stop_deadline = deadline;
	cnsmp_transport_set_deadline(deadline);
	pthread_cond_signal(&fl.wake);
	/* Spooling after the deadline takes a moment more. */
	struct timespec ts = ts_of(deadline + 400000000u);
	int rc = 0;
	while (!fl.exited && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&fl.done, &fl.mu, &ts);
	int exited = fl.exited;
	fl.running = 0;
	pthread_mutex_unlock(&fl.mu);
	if (exited) {
		pthread_join(fl.thread, NULL);
		cnsmp_transport_set_deadline(0);
		return;
	}
	/* Stuck (a resolver that ignores timeouts, a lock held by a dying
	 * thread): spool what it published, plus the live counters, and
	 * leave it frozen.  Frozen, it sends nothing new. */
	cnsmp_log(CNSMP_LOG_INFO, "flusher did not finish in time: spooling what is left");
	cnsmp_crash_dump();
	pthread_detach(fl.thread);
}

CNSMP_NOINST void cnsmp_flusher_atfork_prepare(void)
{
	pthread_once(&fl.once, init_once);
	pthread_mutex_lock(&fl.mu);
}

CNSMP_NOINST void cnsmp_flusher_atfork_parent(void)
{
	pthread_mutex_unlock(&fl.mu);
}

/* In the child: the flusher thread is gone and everything pending is the
 * parent's to ship.  Forget it (leaked, not freed: a half-finished cycle
 * of the parent's thread may have left any structure mid-change), take a
 * new batch id base, and reset the request state. */
CNSMP_NOINST void cnsmp_flusher_atfork_child(void)
{
	pthread_mutex_init(&fl.mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fl.wake, &ca);
	pthread_cond_init(&fl.done, &ca);
	pthread_condattr_destroy(&ca);
	fl.running = fl.stop = fl.exited = 0;
	fl.req_gen = fl.done_gen = 0;
	fl.pending = NULL;
	fl.bodies = NULL;
	fl.nbodies = fl.capbodies = 0;
	fl.drain_due = 0;               /* the parent drains the spool */
	cnsmp_transport_set_deadline(0);
}
