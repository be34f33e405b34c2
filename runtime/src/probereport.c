/* probereport.c: the payload's probes section (docs/payload.md,
 * "probes"): each probe's status, its hits since the last report and its
 * results; and, where nothing is sent, the same on stderr from a thread of
 * its own.  Flusher (or that thread) only. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "probes.h"

/* What one section took from a probe, handed back if its body is not
 * delivered. */
struct sent_one {
	struct cnsmp_probe *p;
	uint64_t hits, dropped;
	uint32_t nrec;
	struct log_rec *rec;  /* malloc'd, nrec */
};
struct cnsmp_probe_sent {
	size_t n;
	struct sent_one e[];
};

/* Writing one section, to memory (the flusher) or to a file descriptor
 * from a fatal signal's handler (crash): every write below is
 * async-signal-safe in the second case, and `take` is NULL there (nothing
 * is advanced: the process ends). */
struct rep {
	struct cnsmp_sink *s;
	struct sent_one *take;
};

CNSMP_NOINST static void put(struct rep *r, const char *lit)
{
	cnsmp_schema_put(r->s, lit);
}

CNSMP_NOINST static void put_name(struct rep *r, uint32_t id)
{
	struct cnsmp_fn *f = id == CNSMP_NO_ID ? NULL : cnsmp_registry_get(id);
	if (f && f->name)
		cnsmp_schema_put_str(r->s, f->name);
	else
		put(r, "null");
}

CNSMP_NOINST static void put_rec(struct rep *r, const struct log_rec *x, int first)
{
	put(r, first ? "{\"t\":" : ",{\"t\":");
	cnsmp_schema_put_real(r->s, x->t);
	put(r, ",\"thread\":");
	cnsmp_schema_put_u64(r->s, x->tid);
	put(r, ",\"caller\":");
	put_name(r, x->caller);
	put(r, ",\"duration_ms\":");
	cnsmp_schema_put_ms(r->s, x->dur_ns);
	put(r, x->error ? ",\"error\":true,\"event\":\"" : ",\"error\":false,\"event\":\"");
	put(r, cnsmp_probespec_events[x->event]);
	put(r, "\"}");
}

/* The log records not reported yet: those carried from bodies not
 * delivered, then the interval's (at most LOG_PER_INTERVAL). */
CNSMP_NOINST static void report_log(struct rep *r, struct cnsmp_probe *p)
{
	uint64_t claimed = atomic_load(&p->log_claimed);
	uint64_t base = atomic_load(&p->log_base);
	uint64_t hi = claimed - base > LOG_PER_INTERVAL ? base + LOG_PER_INTERVAL : claimed;
	uint32_t nc = p->carry ? p->ncarry : 0;
	if (nc > CARRY_MAX)
		nc = CARRY_MAX;
	struct log_rec *keep = NULL;
	if (r->take && nc + (hi - base))
		keep = malloc((nc + (hi - base)) * sizeof *keep);
	uint32_t nk = 0;
	int first = 1;
	put(r, ",\"log\":[");
	for (uint32_t i = 0; i < nc; i++, first = 0) {
		put_rec(r, &p->carry[i], first);
		if (keep)
			keep[nk++] = p->carry[i];
	}
	for (uint64_t i = base; i < hi; i++) {
		struct log_rec *x = &p->log[i % LOG_RING];
		if (atomic_load_explicit(&x->seq, memory_order_acquire) != i + 1)
			continue; /* still being written: left out */
		struct log_rec c = *x;
		put_rec(r, &c, first);
		first = 0;
		if (keep)
			keep[nk++] = c;
	}
	put(r, "],\"log_dropped\":");
	uint64_t dropped = atomic_load(&p->log_dropped);
	cnsmp_schema_put_u64(r->s, dropped - p->dropped_sent);
	if (r->take) {
		atomic_store_explicit(&p->log_base, claimed, memory_order_release);
		p->ncarry = 0;
		r->take->dropped = dropped - p->dropped_sent;
		p->dropped_sent = dropped;
		r->take->rec = keep;
		r->take->nrec = nk;
	}
}

CNSMP_NOINST static void report_hist(struct rep *r, struct cnsmp_probe *p)
{
	uint64_t h[CNSMP_HIST_BUCKETS], n = 0;
	put(r, ",\"hist\":[");
	for (size_t i = 0; i < CNSMP_HIST_BUCKETS; i++) {
		h[i] = atomic_load_explicit(&p->hist[i], memory_order_relaxed);
		if (!h[i])
			continue; /* sparse [bucket, count], as a function's hist */
		put(r, n ? ",[" : "[");
		cnsmp_schema_put_u64(r->s, i);
		put(r, ",");
		cnsmp_schema_put_u64(r->s, h[i]);
		put(r, "]");
		n += h[i];
	}
	put(r, "],\"count\":");
	cnsmp_schema_put_u64(r->s, n);
	if (!n)
		return;
	static const char *const keys[] = {",\"p50_ms\":", ",\"p95_ms\":", ",\"p99_ms\":"};
	static const double qs[] = {0.50, 0.95, 0.99};
	for (int i = 0; i < 3; i++) {
		put(r, keys[i]);
		cnsmp_schema_put_real(r->s, cnsmp_hist_percentile_ns(h, qs[i]) / 1e6);
	}
}

CNSMP_NOINST static void report_incr(struct rep *r, struct cnsmp_probe *p)
{
	put(r, ",\"count\":");
	cnsmp_schema_put_u64(r->s, atomic_load(&p->count));
	if (p->value == V_COUNT)
		return;
	put(r, ",\"by\":{");
	int first = 1;
	for (size_t i = 0; i < SPLIT_SLOTS; i++) {
		uint64_t k = atomic_load_explicit(&p->split[i].key, memory_order_acquire);
		uint64_t n = atomic_load_explicit(&p->split[i].n, memory_order_relaxed);
		if (!k || !n)
			continue;
		if (!first)
			put(r, ",");
		first = 0;
		if (p->value == V_ERROR) {
			put(r, k == 2 ? "\"error\"" : "\"ok\"");
		} else if (p->value == V_THREAD) {
			put(r, "\"");
			cnsmp_schema_put_u64(r->s, k - 1);
			put(r, "\"");
		} else {
			struct cnsmp_fn *f = k - 1 >= CNSMP_NO_ID ? NULL
					     : cnsmp_registry_get((uint32_t)(k - 1));
			cnsmp_schema_put_str(r->s, f && f->name ? f->name : "(none)");
		}
		put(r, ":");
		cnsmp_schema_put_u64(r->s, n);
	}
	uint64_t other = atomic_load(&p->split_other);
	if (other) {
		put(r, first ? "\"(other)\":" : ",\"(other)\":");
		cnsmp_schema_put_u64(r->s, other);
	}
	put(r, "}");
}

CNSMP_NOINST static void report_stacks(struct rep *r, struct cnsmp_probe *p)
{
	put(r, ",\"stacks\":[");
	int first = 1;
	for (size_t i = 0; i < STACK_SLOTS; i++) {
		struct stack_slot *s = &p->stacks[i];
		if (!atomic_load_explicit(&s->ready, memory_order_acquire))
			continue;
		put(r, first ? "{\"chain\":[" : ",{\"chain\":[");
		first = 0;
		for (uint32_t j = 0; j < s->depth; j++) {
			put_name(r, s->chain[j]);
			put(r, ",");
		}
		cnsmp_schema_put_str(r->s, s->fn->name);
		put(r, "],\"count\":");
		cnsmp_schema_put_u64(r->s, atomic_load(&s->n));
		put(r, "}");
	}
	put(r, "]");
	uint64_t other = atomic_load(&p->stack_other);
	if (other) {
		put(r, ",\"stacks_other\":");
		cnsmp_schema_put_u64(r->s, other);
	}
}

CNSMP_NOINST static void report_one(struct rep *r, struct cnsmp_probe *p, double now)
{
	uint64_t hits = atomic_load(&p->hits);
	int st = p->status0;
	if (st != S_ERROR) {
		if (now >= p->end)
			st = S_EXPIRED;
		else if (now < p->start)
			st = S_RECEIVED;
		else if (hits)
			st = S_EMITTING;
		else if (!atomic_load(&p->matched))
			st = S_ERROR; /* the message below */
		else
			st = S_INSTALLED;
	}
	put(r, "{\"id\":");
	cnsmp_schema_put_str(r->s, p->id);
	put(r, ",\"status\":\"");
	put(r, cnsmp_probespec_statuses[st]);
	put(r, "\"");
	if (st == S_ERROR) {
		put(r, ",\"message\":");
		cnsmp_schema_put_str(r->s, p->message);
	}
	put(r, ",\"hits\":");
	cnsmp_schema_put_u64(r->s, hits - p->hits_sent);
	if (r->take) {
		r->take->p = p;
		r->take->hits = hits - p->hits_sent;
		p->hits_sent = hits;
	}
	if (p->status0 != S_ERROR) {
		put(r, ",\"target\":");
		cnsmp_schema_put_str(r->s, p->target);
		put(r, ",\"type\":");
		cnsmp_schema_put_str(r->s, p->type_s);
		put(r, ",\"name\":");
		cnsmp_schema_put_str(r->s, p->name);
		put(r, ",\"value\":\"");
		put(r, cnsmp_probespec_values[p->value]);
		put(r, "\",\"event\":\"");
		put(r, cnsmp_probespec_events[p->event]);
		put(r, "\",\"expires_in_s\":");
		cnsmp_schema_put_real(r->s, now < p->end ? p->end - now : 0.0);
		switch (p->type) {
		case T_LOG: report_log(r, p); break;
		case T_HIST: report_hist(r, p); break;
		case T_INCR: report_incr(r, p); break;
		case T_STACK: report_stacks(r, p); break;
		default: break;
		}
	}
	put(r, "}");
}

/* Section of table t to r (the probes' lock held, or in a handler). */
CNSMP_NOINST static void report_all(struct rep *r, struct cnsmp_probe_table *t,
				    struct cnsmp_probe_sent *sent, double now)
{
	put(r, "\"probes\":[");
	for (size_t i = 0; i < t->n; i++) {
		if (i)
			put(r, ",");
		r->take = sent ? &sent->e[i] : NULL;
		report_one(r, t->p[i], now);
	}
	put(r, "]");
}

CNSMP_NOINST char *cnsmp_probereport_section(struct cnsmp_probe_sent **sentp)
{
	if (sentp)
		*sentp = NULL;
	cnsmp_probes_lock();
	struct cnsmp_probe_table *t = cnsmp_probes_table();
	if (!t || !t->n) {
		cnsmp_probes_unlock();
		return NULL;
	}
	struct cnsmp_probe_sent *sent = calloc(1, sizeof *sent + t->n * sizeof sent->e[0]);
	if (!sent) {
		cnsmp_probes_unlock();
		return NULL;
	}
	sent->n = t->n;
	struct cnsmp_sink s;
	struct rep r = {&s, NULL};
	cnsmp_schema_to_mem(&s);
	report_all(&r, t, sent, cnsmp_probes_now());
	cnsmp_probes_unlock();
	size_t len;
	char *out = cnsmp_schema_take(&s, &len);
	if (!out) {
		cnsmp_probereport_unsent(sent); /* written nowhere */
		return NULL;
	}
	if (sentp)
		*sentp = sent;
	else
		cnsmp_probereport_sent_free(sent);
	return out;
}

CNSMP_NOINST void cnsmp_probereport_sent_free(struct cnsmp_probe_sent *sent)
{
	for (size_t i = 0; sent && i < sent->n; i++)
		free(sent->e[i].rec);
	free(sent);
}

/* A body not delivered: its hits count again in the next delta, its
 * records ride again (the oldest first, at most CARRY_MAX per probe; the
 * rest counted as dropped).  A probe replaced since then has fresh
 * results: what it sent is gone with it. */
CNSMP_NOINST void cnsmp_probereport_unsent(struct cnsmp_probe_sent *sent)
{
	if (!sent)
		return;
	cnsmp_probes_lock();
	for (size_t i = 0; i < sent->n; i++) {
		struct sent_one *e = &sent->e[i];
		struct cnsmp_probe *p = e->p;
		if (!p)
			continue;
		p->hits_sent -= e->hits;
		p->dropped_sent -= e->dropped;
		if (!e->nrec)
			continue;
		if (!p->carry)
			p->carry = malloc(CARRY_MAX * sizeof *p->carry);
		uint32_t room = p->carry ? CARRY_MAX - p->ncarry : 0;
		uint32_t n = e->nrec < room ? e->nrec : room;
		if (n) {
			/* Records of this body are older than those carried
			 * since: they go first. */
			memmove(p->carry + n, p->carry, p->ncarry * sizeof *p->carry);
			memcpy(p->carry, e->rec, n * sizeof *p->carry);
			p->ncarry += n;
		}
		p->dropped_sent -= e->nrec - n;
	}
	cnsmp_probes_unlock();
	cnsmp_probereport_sent_free(sent);
}

CNSMP_NOINST int cnsmp_probereport_crash(struct cnsmp_sink *s)
{
	struct cnsmp_probe_table *t = cnsmp_probes_table();
	if (!t || !t->n)
		return 0;
	struct rep r = {s, NULL};
	report_all(&r, t, NULL, cnsmp_probes_now());
	return 1;
}

/* ---- without a key: reports on stderr ----------------------------------- */

/* Where the runtime does not send, probes still run: a thread of their own
 * reads the file at each flush interval and writes the probes section as
 * one line "codensm: probes {"pid":N,"probes":[...]}" on stderr, and a
 * last one at exit. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	int running, stop;
} loc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

CNSMP_NOINST static void report_stderr(void)
{
	char *sec = cnsmp_probereport_section(NULL);
	if (!sec)
		return;
	size_t n = strlen(sec) + 64;
	char *line = malloc(n);
	if (line) {
		int len = snprintf(line, n, "codensm: probes {\"pid\":%ld,%s}\n",
				   (long)getpid(), sec);
		for (int off = 0; len > 0 && off < len;) {
			ssize_t w = write(2, line + off, (size_t)(len - off));
			if (w <= 0 && errno != EINTR)
				break;
			off += w > 0 ? (int)w : 0;
		}
		free(line);
	}
	free(sec);
}

CNSMP_NOINST static void *local_run(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_setname_np(pthread_self(), "codensm-probes");
	pthread_mutex_lock(&loc.mu);
	while (!loc.stop && !cnsmp_cfg.api_key) {
		double iv = cnsmp_cfg.flush_interval > 0 ? cnsmp_cfg.flush_interval
							 : CNSMP_DEFAULT_FLUSH_INTERVAL;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		double at = (double)ts.tv_sec + ts.tv_nsec / 1e9 + iv;
		ts.tv_sec = (time_t)at;
		ts.tv_nsec = (long)((at - (double)ts.tv_sec) * 1e9);
		while (!loc.stop && pthread_cond_timedwait(&loc.cv, &loc.mu, &ts) == 0)
			;
		if (loc.stop)
			break;
		pthread_mutex_unlock(&loc.mu);
		cnsmp_probes_poll();
		report_stderr();
		pthread_mutex_lock(&loc.mu);
	}
	pthread_mutex_unlock(&loc.mu);
	return NULL;
}

CNSMP_NOINST void cnsmp_probereport_local_start(void)
{
	if (!cnsmp_cfg.probes_file || !cnsmp_cfg.probes_file[0] || cnsmp_cfg.api_key)
		return;
	pthread_mutex_lock(&loc.mu);
	if (!loc.running) {
		loc.stop = 0;
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		loc.running = pthread_create(&loc.th, NULL, local_run, NULL) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	pthread_mutex_unlock(&loc.mu);
}

CNSMP_NOINST void cnsmp_probereport_local_stop(void)
{
	pthread_mutex_lock(&loc.mu);
	int was = loc.running;
	loc.stop = 1;
	loc.running = 0;
	pthread_cond_broadcast(&loc.cv);
	pthread_mutex_unlock(&loc.mu);
	if (!was)
		return;
	pthread_join(loc.th, NULL);
	report_stderr();
}

CNSMP_NOINST void cnsmp_probereport_crash_stderr(void)
{
	if (!loc.running)
		return;
	struct cnsmp_sink s;
	cnsmp_schema_to_fd(&s, 2);
	cnsmp_schema_put(&s, "codensm: probes {\"pid\":");
	cnsmp_schema_put_u64(&s, (uint64_t)getpid());
	cnsmp_schema_put(&s, ",");
	cnsmp_probereport_crash(&s);
	cnsmp_schema_put(&s, "}\n");
	cnsmp_schema_close(&s);
}

CNSMP_NOINST void cnsmp_probereport_atfork_child(void)
{
	pthread_mutex_init(&loc.mu, NULL);
	pthread_cond_init(&loc.cv, NULL);
	int was = loc.running;
	loc.running = loc.stop = 0;
	if (was)
		cnsmp_probereport_local_start();
}

