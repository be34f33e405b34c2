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

CNSMP_NOINST static json_t *fn_name(uint32_t id)
{
	struct cnsmp_fn *f = id == CNSMP_NO_ID ? NULL : cnsmp_registry_get(id);
	return f && f->name ? json_string(f->name) : json_null();
}

CNSMP_NOINST static void report_log(struct cnsmp_probe *p, json_t *o)
{
	uint64_t claimed = atomic_load(&p->log_claimed);
	uint64_t base = atomic_load(&p->log_base);
	uint64_t hi = claimed - base > LOG_PER_INTERVAL ? base + LOG_PER_INTERVAL : claimed;
	json_t *a = json_array();
	for (uint64_t i = base; a && i < hi; i++) {
		struct log_rec *r = &p->log[i % LOG_RING];
		if (atomic_load_explicit(&r->seq, memory_order_acquire) != i + 1)
			continue; /* still being written: left out */
		json_array_append_new(a, json_pack("{s:f,s:I,s:o,s:f,s:b,s:s}",
			"t", r->t, "thread", (json_int_t)r->tid, "caller", fn_name(r->caller),
			"duration_ms", (double)r->dur_ns / 1e6, "error", r->error,
			"event", cnsmp_probespec_events[r->event]));
	}
	atomic_store_explicit(&p->log_base, claimed, memory_order_release);
	uint64_t dropped = atomic_load(&p->log_dropped);
	json_object_set_new(o, "log", a ? a : json_array());
	json_object_set_new(o, "log_dropped", json_integer((json_int_t)(dropped - p->dropped_sent)));
	p->dropped_sent = dropped;
}

CNSMP_NOINST static void report_hist(struct cnsmp_probe *p, json_t *o)
{
	uint64_t h[CNSMP_HIST_BUCKETS], n = 0;
	json_t *a = json_array();
	for (size_t i = 0; i < CNSMP_HIST_BUCKETS; i++) {
		h[i] = atomic_load_explicit(&p->hist[i], memory_order_relaxed);
		n += h[i];
		if (h[i]) /* sparse [bucket, count], as a function's hist */
			json_array_append_new(a, json_pack("[I,I]", (json_int_t)i, (json_int_t)h[i]));
	}
	json_object_set_new(o, "hist", a);
	json_object_set_new(o, "count", json_integer((json_int_t)n));
	if (n) {
		json_object_set_new(o, "p50_ms", json_real(cnsmp_hist_percentile_ns(h, 0.50) / 1e6));
		json_object_set_new(o, "p95_ms", json_real(cnsmp_hist_percentile_ns(h, 0.95) / 1e6));
		json_object_set_new(o, "p99_ms", json_real(cnsmp_hist_percentile_ns(h, 0.99) / 1e6));
	}
}

CNSMP_NOINST static void report_incr(struct cnsmp_probe *p, json_t *o)
{
	json_object_set_new(o, "count", json_integer((json_int_t)atomic_load(&p->count)));
	if (p->value == V_COUNT)
		return;
	json_t *by = json_object();
	for (size_t i = 0; by && i < SPLIT_SLOTS; i++) {
		uint64_t k = atomic_load_explicit(&p->split[i].key, memory_order_acquire);
		uint64_t n = atomic_load_explicit(&p->split[i].n, memory_order_relaxed);
		if (!k || !n)
			continue;
		char key[64];
		const char *ks = key;
		if (p->value == V_ERROR) {
			ks = k == 2 ? "error" : "ok";
		} else if (p->value == V_THREAD) {
			snprintf(key, sizeof key, "%" PRIu64, k - 1);
		} else {
			struct cnsmp_fn *f = k - 1 >= CNSMP_NO_ID ? NULL
					     : cnsmp_registry_get((uint32_t)(k - 1));
			ks = f ? f->name : "(none)";
		}
		json_object_set_new(by, ks, json_integer((json_int_t)n));
	}
	uint64_t other = atomic_load(&p->split_other);
	if (other)
		json_object_set_new(by, "(other)", json_integer((json_int_t)other));
	json_object_set_new(o, "by", by ? by : json_object());
}

CNSMP_NOINST static void report_stacks(struct cnsmp_probe *p, json_t *o)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < STACK_SLOTS; i++) {
		struct stack_slot *s = &p->stacks[i];
		if (!atomic_load_explicit(&s->ready, memory_order_acquire))
			continue;
		json_t *chain = json_array();
		for (uint32_t j = 0; j < s->depth; j++)
			json_array_append_new(chain, fn_name(s->chain[j]));
		json_array_append_new(chain, json_string(s->fn->name));
		json_array_append_new(a, json_pack("{s:o,s:I}", "chain", chain, "count",
						   (json_int_t)atomic_load(&s->n)));
	}
	json_object_set_new(o, "stacks", a ? a : json_array());
	uint64_t other = atomic_load(&p->stack_other);
	if (other)
		json_object_set_new(o, "stacks_other", json_integer((json_int_t)other));
}

CNSMP_NOINST static json_t *report_one(struct cnsmp_probe *p, double now)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	uint64_t hits = atomic_load(&p->hits);
	int st = p->status0;
	const char *why = p->status0 == S_ERROR ? p->message : NULL;
	char msg[300];
	if (st != S_ERROR) {
		if (now >= p->end)
			st = S_EXPIRED;
		else if (now < p->start)
			st = S_RECEIVED;
		else if (hits)
			st = S_EMITTING;
		else if (!atomic_load(&p->matched)) {
			st = S_ERROR;
			snprintf(msg, sizeof msg, "target '%s' matches no function the "
				 "process has called", p->target);
			why = msg;
		} else
			st = S_INSTALLED;
	}
	json_object_set_new(o, "id", json_string(p->id));
	json_object_set_new(o, "status", json_string(cnsmp_probespec_statuses[st]));
	if (why)
		json_object_set_new(o, "message", json_string(why));
	json_object_set_new(o, "hits", json_integer((json_int_t)(hits - p->hits_sent)));
	p->hits_sent = hits;
	if (p->status0 == S_ERROR)
		return o;
	json_object_set_new(o, "target", json_string(p->target));
	json_object_set_new(o, "type", json_string(p->type_s));
	json_object_set_new(o, "name", json_string(p->name));
	json_object_set_new(o, "value", json_string(cnsmp_probespec_values[p->value]));
	json_object_set_new(o, "event", json_string(cnsmp_probespec_events[p->event]));
	json_object_set_new(o, "expires_in_s", json_real(now < p->end ? p->end - now : 0));
	switch (p->type) {
	case T_LOG: report_log(p, o); break;
	case T_HIST: report_hist(p, o); break;
	case T_INCR: report_incr(p, o); break;
	case T_STACK: report_stacks(p, o); break;
	default: break;
	}
	return o;
}

CNSMP_NOINST char *cnsmp_probereport_section(void)
{
	cnsmp_probes_lock();
	struct cnsmp_probe_table *t = cnsmp_probes_table();
	size_t n = t ? t->n : 0;
	char **items = n ? calloc(n, sizeof *items) : NULL;
	double now = cnsmp_probes_now();
	size_t k = 0;
	for (size_t i = 0; items && i < n; i++) {
		json_t *o = report_one(t->p[i], now);
		items[k] = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		k += items[k] != NULL;
	}
	cnsmp_probes_unlock();
	if (!items)
		return NULL;
	struct cnsmp_sink s;
	size_t len;
	cnsmp_schema_to_mem(&s);
	cnsmp_schema_probes(&s, (const char *const *)items, k);
	char *out = cnsmp_schema_take(&s, &len);
	for (size_t i = 0; i < k; i++)
		free(items[i]);
	free(items);
	return out;
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
	char *sec = cnsmp_probereport_section();
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

CNSMP_NOINST void cnsmp_probereport_atfork_child(void)
{
	pthread_mutex_init(&loc.mu, NULL);
	pthread_cond_init(&loc.cv, NULL);
	int was = loc.running;
	loc.running = loc.stop = 0;
	if (was)
		cnsmp_probereport_local_start();
}

