/* probes.c: probes applied and fired (lifespans, conditions, instruments):
 * a closer look at the calls of chosen functions for a limited time
 * (docs/probes.md; a spec is parsed in probespec.c, reported in
 * probereport.c).
 *
 * Specs come from the file CODENSM_PROBES (re-read on the flusher thread
 * when it changes) and from codensm_probe_add.  Applying them builds a
 * table of probes, publishes it with one atomic store and asks the
 * registry to decide every function again: a function a probe targets
 * gets a probe set (cnsmp_fn.probes) and is never cached by the hooks, so
 * each of its calls reaches their slow path, which calls in here.  An
 * unprobed function is decided as before and pays nothing.
 *
 * Threading: probes and sets are immutable once published, but for their
 * results, which every thread updates with relaxed atomic adds and
 * compare-and-swaps (no lock, never a wait on another thread); the
 * flusher reads them and ships deltas (probereport.c).  Probes and tables
 * are never freed while the process runs (a hook may still hold one): a
 * change of specs costs a few hundred bytes per changed probe.
 * Each thread keeps its own stack of probed calls in progress (allocated
 * on its first probed call), which pairs each end with its beginning.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include "probes.h"

_Atomic int cnsmp_probes_live;
static _Atomic(struct cnsmp_probe_table *) current;
static double test_clock;
/* Every probe set made (cnsmp_probes_for), never freed: a hook may hold
 * one; kept reachable here. */
static _Atomic(struct cnsmp_probe_set *) all_sets;
/* Specs from the file and from the API, and the user types: apply_mu. */
static pthread_mutex_t apply_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *file_specs, *server_specs, *api_specs;
static _Atomic int server_asks;
static struct cnsmp_probe_user users[USER_TYPES];
static size_t nusers;
static struct stat file_st;
static int file_seen;

CNSMP_NOINST void cnsmp_probes_set_clock(double unix_s)
{
	test_clock = unix_s;
}

CNSMP_NOINST static double now_unix(void)
{
	if (test_clock > 0)
		return test_clock;
	return (double)cnsmp_thread_now_us() / 1e6;
}

/* The unix time at raw clock reading `ticks`, from an anchor (a wall
 * clock read and a raw one) taken whenever specs are applied or polled:
 * an event then reads the clock once, not the wall clock besides (about
 * a quarter of a probed call's cost on the machine of bench/run.py
 * --only probes).  The raw clock drifts from the wall clock by parts per
 * million between two anchors; an anchor read in the middle of an update
 * is off by that much at most. */
static _Atomic uint64_t anchor_ticks, anchor_us;

CNSMP_NOINST static void anchor(void)
{
	atomic_store_explicit(&anchor_ticks, cnsmp_clock_now(), memory_order_relaxed);
	atomic_store_explicit(&anchor_us, cnsmp_thread_now_us(), memory_order_relaxed);
}

CNSMP_NOINST static double unix_at(uint64_t ticks)
{
	if (test_clock > 0)
		return test_clock;
	uint64_t at = atomic_load_explicit(&anchor_ticks, memory_order_relaxed);
	uint64_t us = atomic_load_explicit(&anchor_us, memory_order_relaxed);
	if (!us)
		return now_unix();
	return ((double)us + (double)cnsmp_clock_ns(cnsmp_ticks_since(ticks, at)) / 1e3) / 1e6;
}

CNSMP_NOINST double cnsmp_probes_now(void)
{
	return now_unix();
}

CNSMP_NOINST struct cnsmp_probe_table *cnsmp_probes_table(void)
{
	return atomic_load(&current);
}

CNSMP_NOINST void cnsmp_probes_lock(void)
{
	pthread_mutex_lock(&apply_mu);
}

CNSMP_NOINST void cnsmp_probes_unlock(void)
{
	pthread_mutex_unlock(&apply_mu);
}

/* ---- applying ----------------------------------------------------------- */

/* The spec's text without "applied" (filled by others), keys sorted: a
 * probe whose text is unchanged keeps its results across a re-read. */
CNSMP_NOINST static char *canonical(json_t *s)
{
	json_t *c = json_is_object(s) ? json_copy(s) : json_incref(s);
	if (json_is_object(c))
		json_object_del(c, "applied");
	char *t = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(c);
	return t;
}

CNSMP_NOINST static void add_specs(json_t *specs, json_t *merged)
{
	const char *id;
	json_t *s;
	json_object_foreach(specs, id, s)
		json_object_set(merged, id, s);
}

/* Build and publish the table of the current specs, then have every
 * function decided again (apply_mu held). */
CNSMP_NOINST static void apply_locked(void)
{
	json_t *merged = json_object();
	if (!merged)
		return;
	if (file_specs)
		add_specs(file_specs, merged);
	if (server_specs)
		add_specs(server_specs, merged);
	if (api_specs)
		add_specs(api_specs, merged);
	size_t n = json_object_size(merged);
	struct cnsmp_probe_table *t = calloc(1, sizeof *t + n * sizeof t->p[0]);
	struct cnsmp_probe_table *old = atomic_load(&current);
	if (!t) {
		json_decref(merged);
		return;
	}
	const char *id;
	json_t *s;
	json_object_foreach(merged, id, s) {
		char *canon = canonical(s);
		struct cnsmp_probe *p = NULL;
		for (size_t i = 0; old && canon && i < old->n; i++)
			if (strcmp(old->p[i]->id, id) == 0 &&
			    strcmp(old->p[i]->canon, canon) == 0 &&
			    old->p[i]->status0 != S_ERROR)
				p = old->p[i];
		if (!p)
			p = cnsmp_probespec_parse(id, s, canon, users, nusers);
		free(canon);
		if (p)
			t->p[t->n++] = p;
	}
	json_decref(merged);
	double now = now_unix();
	int live = 0;
	for (size_t i = 0; i < t->n; i++) {
		atomic_store(&t->p[i]->matched, 0);
		t->p[i]->started_seen = now >= t->p[i]->start;
		live += cnsmp_probe_armed(t->p[i], now);
	}
	/* A probe of the old table that this one does not hold (removed, or
	 * replaced by a changed spec) is retired: the calls in progress that
	 * it saw begin end without it.  The others' calls end as usual. */
	for (size_t i = 0; old && i < old->n; i++) {
		size_t k = 0;
		while (k < t->n && t->p[k] != old->p[i])
			k++;
		if (k == t->n)
			atomic_store(&old->p[i]->retired, 1);
	}
	anchor();
	t->prev = old; /* kept: a hook or the flusher may still read it */
	atomic_store(&current, t);
	atomic_store(&cnsmp_probes_live, live);
	cnsmp_registry_redecide();
}

CNSMP_NOINST struct cnsmp_probe_set *cnsmp_probes_for(const char *name)
{
	struct cnsmp_probe_table *t = atomic_load(&current);
	if (!t || !name)
		return NULL;
	double now = now_unix();
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++)
		n += cnsmp_probe_armed(t->p[i], now) &&
		     cnsmp_rules_prefix_match(t->p[i]->target, name);
	if (!n)
		return NULL;
	struct cnsmp_probe_set *s = malloc(sizeof *s + n * sizeof s->p[0]);
	if (!s)
		return NULL;
	s->n = 0;
	s->next = atomic_load(&all_sets);
	while (!atomic_compare_exchange_weak(&all_sets, &s->next, s))
		;
	for (size_t i = 0; i < t->n; i++)
		if (cnsmp_probe_armed(t->p[i], now) &&
		    cnsmp_rules_prefix_match(t->p[i]->target, name)) {
			s->p[s->n++] = t->p[i];
			atomic_fetch_add(&t->p[i]->matched, 1);
		}
	return s;
}

/* Re-read the file if it changed (by inode, size or time); a file that
 * cannot be read or parsed keeps the specs read before, and says why. */
CNSMP_NOINST static int read_file_locked(void)
{
	const char *path = cnsmp_cfg.probes_file;
	if (!path || !path[0])
		return 0;
	struct stat st;
	if (stat(path, &st) != 0) {
		if (file_seen && file_specs) { /* removed: its probes go */
			json_decref(file_specs);
			file_specs = NULL;
			file_seen = 0;
			return 1;
		}
		return 0;
	}
	if (file_seen && st.st_ino == file_st.st_ino && st.st_size == file_st.st_size &&
	    st.st_mtim.tv_sec == file_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == file_st.st_mtim.tv_nsec)
		return 0;
	file_st = st;
	file_seen = 1;
	json_error_t err;
	json_t *j = json_load_file(path, 0, &err);
	if (!j || !json_is_object(j)) {
		cnsmp_log(CNSMP_LOG_INFO, "cannot read probes from '%s': %s (line %d); "
			  "keeping the probes read before", path,
			  j ? "not a JSON object of specs" : err.text, err.line);
		json_decref(j);
		return 0;
	}
	json_decref(file_specs);
	file_specs = j;
	return 1;
}

CNSMP_NOINST void cnsmp_probes_poll(void)
{
	pthread_mutex_lock(&apply_mu);
	anchor();
	int changed = read_file_locked();
	/* A probe past its end is disarmed, one whose lastmodified has come is
	 * armed: its functions are decided again, and go back to the fast
	 * path or leave it. */
	struct cnsmp_probe_table *t = atomic_load(&current);
	double now = now_unix();
	for (size_t i = 0; t && !changed && i < t->n; i++) {
		struct cnsmp_probe *p = t->p[i];
		if (p->status0 == S_ERROR)
			continue;
		if (now >= p->end && !p->expired_seen) {
			p->expired_seen = 1;
			changed = 1;
		} else if (now >= p->start && !p->started_seen) {
			changed = 1;
		}
	}
	if (changed)
		apply_locked();
	pthread_mutex_unlock(&apply_mu);
}

CNSMP_NOINST int cnsmp_probes_server_asks(void)
{
	return atomic_load(&server_asks);
}

CNSMP_NOINST void cnsmp_probes_answer(const char *text)
{
	if (!text || !strstr(text, "\"probes\""))
		return; /* the seed contract's answers: nothing to parse */
	json_t *a = json_loads(text, 0, NULL);
	json_t *specs = json_object_get(a, "probes");
	if (json_is_object(specs)) {
		atomic_store(&server_asks, 1);
		pthread_mutex_lock(&apply_mu);
		if (!server_specs || !json_equal(server_specs, specs)) {
			json_decref(server_specs);
			server_specs = json_incref(specs);
			apply_locked();
		}
		pthread_mutex_unlock(&apply_mu);
	}
	json_decref(a);
}

CNSMP_API int codensm_probe_add(const char *spec_json)
{
	json_t *s = spec_json ? json_loads(spec_json, 0, NULL) : NULL;
	const char *id = json_string_value(json_object_get(s, "id"));
	if (!id || !id[0]) {
		json_decref(s);
		return -1;
	}
	cnsmp_lifecycle_ensure_init();
	pthread_mutex_lock(&apply_mu);
	if (!api_specs)
		api_specs = json_object();
	int rc = api_specs && json_object_set(api_specs, id, s) == 0 ? 0 : -1;
	if (rc == 0)
		apply_locked();
	pthread_mutex_unlock(&apply_mu);
	json_decref(s);
	return rc;
}

CNSMP_API int codensm_probe_remove(const char *id)
{
	if (!id)
		return -1;
	pthread_mutex_lock(&apply_mu);
	int rc = api_specs && json_object_del(api_specs, id) == 0 ? 0 : -1;
	if (rc == 0)
		apply_locked();
	pthread_mutex_unlock(&apply_mu);
	return rc;
}

CNSMP_API int codensm_instrument_register(const char *type,
					  codensm_instrument_fn fn, void *arg)
{
	if (!type || !type[0] || strlen(type) >= TYPE_MAX || !fn ||
	    cnsmp_probespec_lookup(cnsmp_probespec_types, 5, type))
		return -1;
	pthread_mutex_lock(&apply_mu);
	int rc = -1;
	size_t i = 0;
	while (i < nusers && strcmp(users[i].name, type) != 0)
		i++;
	if (i < USER_TYPES) {
		strcpy(users[i].name, type);
		users[i].fn = fn;
		users[i].arg = arg;
		nusers += i == nusers;
		rc = 0;
		if (atomic_load(&current))
			apply_locked(); /* specs in ERROR for this type apply now */
	}
	pthread_mutex_unlock(&apply_mu);
	return rc;
}

CNSMP_NOINST int cnsmp_probes_check(const char *id, const char *spec_json,
				    char *status, size_t slen, char *msg, size_t mlen)
{
	json_t *s = json_loads(spec_json, JSON_DECODE_ANY, NULL);
	pthread_mutex_lock(&apply_mu);
	struct cnsmp_probe *p = s ? cnsmp_probespec_parse(id, s, "", users, nusers) : NULL;
	pthread_mutex_unlock(&apply_mu);
	json_decref(s);
	int ok = p && p->status0 != S_ERROR;
	snprintf(status, slen, "%s", ok ? "INSTALLED" : "ERROR");
	snprintf(msg, mlen, "%s", p ? p->message : "not JSON");
	cnsmp_probespec_free(p);
	return ok ? 0 : -1;
}

/* ---- events: the hooks' slow path of a probed function ------------------ */

/* One probed call in progress on this thread. */
struct pframe {
	uintptr_t addr;
	struct cnsmp_fn *f;
	struct cnsmp_probe_set *set;
	uint64_t start;       /* raw clock */
	uint32_t caller;      /* innermost tracked caller's id, or CNSMP_NO_ID */
	uint32_t tdepth;      /* tracked frames below it */
	uint64_t caller_start; /* its innermost tracked caller's frame's start */
	int error;            /* codensm_error() called in it (not in a callee) */
};
struct pstack {
	uint32_t depth;
	int in_signal;        /* ending calls from a fatal signal's handler */
	uint64_t tid;
	struct pframe f[PSTACK_DEPTH];
};
static __thread struct pstack *pst __attribute__((tls_model("initial-exec")));
static pthread_key_t pst_key;
static pthread_once_t pst_once = PTHREAD_ONCE_INIT;

CNSMP_NOINST static void pst_free(void *p)
{
	free(p);
}

CNSMP_NOINST static void pst_key_init(void)
{
	pthread_key_create(&pst_key, pst_free);
}

/* This thread's stack, made on its first probed call (a cold path may
 * allocate); NULL if memory ran out.  Its calls outlive a change of the
 * specs: their sets and probes are never freed, and a retired probe
 * skips their ends (fire). */
CNSMP_NOINST static struct pstack *stack_of_thread(void)
{
	struct pstack *s = pst;
	if (unlikely(!s)) {
		s = calloc(1, sizeof *s);
		if (!s)
			return NULL;
		s->tid = (uint64_t)syscall(SYS_gettid);
		pthread_once(&pst_once, pst_key_init);
		pthread_setspecific(pst_key, s);
		pst = s;
	}
	return s;
}

CNSMP_NOINST static void split_add(struct cnsmp_probe *p, uint64_t key)
{
	key++;
	size_t h = (size_t)cnsmp_hash_mix(key);
	for (size_t i = 0; i < 8; i++) {
		struct split_slot *s = &p->split[(h + i) % SPLIT_SLOTS];
		uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
		if (!k) {
			uint64_t empty = 0;
			if (atomic_compare_exchange_strong(&s->key, &empty, key))
				k = key;
			else
				k = empty;
		}
		if (k == key) {
			atomic_fetch_add_explicit(&s->n, 1, memory_order_relaxed);
			return;
		}
	}
	atomic_fetch_add_explicit(&p->split_other, 1, memory_order_relaxed);
}

CNSMP_NOINST static void stack_add(struct cnsmp_probe *p, struct cnsmp_thread *t,
				   const struct pframe *pf)
{
	uint32_t chain[CHAIN_MAX];
	uint32_t d = pf->tdepth;
	if (t && d > t->depth)
		d = t->depth; /* frames left by a longjmp */
	if (!t)
		d = 0;
	uint32_t lo = d > CHAIN_MAX - 1 ? d - (CHAIN_MAX - 1) : 0, n = 0;
	for (uint32_t i = lo; i < d; i++) {
		struct cnsmp_counters *c = cnsmp_frame_at(t, i)->c;
		chain[n++] = c ? c->id : CNSMP_NO_ID;
	}
	uint64_t h = cnsmp_hash(CNSMP_HASH_SEED, chain, n * sizeof chain[0]);
	h = cnsmp_hash_mix(cnsmp_hash(h, &pf->f, sizeof pf->f)) | 1;
	for (size_t i = 0; i < STACK_SLOTS; i++) {
		struct stack_slot *s = &p->stacks[(h + i) % STACK_SLOTS];
		uint64_t k = atomic_load_explicit(&s->hash, memory_order_acquire);
		if (!k) {
			uint64_t empty = 0;
			if (atomic_compare_exchange_strong(&s->hash, &empty, h)) {
				memcpy(s->chain, chain, n * sizeof chain[0]);
				s->depth = n;
				s->fn = pf->f;
				atomic_store_explicit(&s->ready, 1, memory_order_release);
				k = h;
			} else {
				k = empty;
			}
		}
		if (k == h) {
			atomic_fetch_add_explicit(&s->n, 1, memory_order_relaxed);
			return;
		}
	}
	atomic_fetch_add_explicit(&p->stack_other, 1, memory_order_relaxed);
}

CNSMP_NOINST static void log_add(struct cnsmp_probe *p, const struct pframe *pf,
				 uint64_t tid, int ev, uint64_t dur_ns, int error,
				 double now)
{
	uint64_t i = atomic_fetch_add_explicit(&p->log_claimed, 1, memory_order_relaxed);
	/* Acquire: the report's reads of the slots of the interval before
	 * (released with the new base) are over before this slot is reused. */
	if (i - atomic_load_explicit(&p->log_base, memory_order_acquire) >= LOG_PER_INTERVAL) {
		atomic_fetch_add_explicit(&p->log_dropped, 1, memory_order_relaxed);
		return;
	}
	struct log_rec *r = &p->log[i % LOG_RING];
	atomic_store_explicit(&r->seq, 0, memory_order_relaxed);
	r->t = now;
	r->tid = tid;
	r->dur_ns = dur_ns;
	r->caller = pf->caller;
	r->error = error;
	r->event = ev;
	atomic_store_explicit(&r->seq, i + 1, memory_order_release);
}

/* Event `ev` of the call pf for probe p: the conditions, then the
 * instrument. */
CNSMP_NOINST static void fire(struct cnsmp_probe *p, struct cnsmp_thread *t,
			      const struct pstack *ps, const struct pframe *pf,
			      int ev, uint64_t dur_ns, int error, double now)
{
	if (p->event != ev || now < p->start || now >= p->end ||
	    atomic_load_explicit(&p->retired, memory_order_relaxed))
		return;
	if (p->min_duration_ms > 0 && (double)dur_ns < p->min_duration_ms * 1e6)
		return;
	if (p->errors_only && !error)
		return;
	if (p->caller_prefix) {
		struct cnsmp_fn *c = pf->caller == CNSMP_NO_ID ? NULL
				     : cnsmp_registry_get(pf->caller);
		if (!c || !cnsmp_rules_prefix_match(p->caller_prefix, c->name))
			return;
	}
	if (p->sample > 1 &&
	    atomic_fetch_add_explicit(&p->tries, 1, memory_order_relaxed) % p->sample)
		return;
	if (p->max_hits &&
	    atomic_fetch_add_explicit(&p->taken, 1, memory_order_relaxed) >= p->max_hits)
		return;
	atomic_fetch_add_explicit(&p->hits, 1, memory_order_relaxed);
	switch (p->type) {
	case T_LOG:
		log_add(p, pf, ps->tid, ev, dur_ns, error, now);
		break;
	case T_HIST:
		atomic_fetch_add_explicit(&p->hist[cnsmp_hist_bucket(dur_ns)], 1,
					  memory_order_relaxed);
		break;
	case T_INCR:
		atomic_fetch_add_explicit(&p->count, 1, memory_order_relaxed);
		if (p->value == V_CALLER)
			split_add(p, pf->caller);
		else if (p->value == V_THREAD)
			split_add(p, ps->tid);
		else if (p->value == V_ERROR)
			split_add(p, (uint64_t)!!error);
		break;
	case T_STACK:
		stack_add(p, t, pf);
		break;
	case T_USER: {
		if (ps->in_signal)
			break; /* a user's callback need not be async-signal-safe */
		struct cnsmp_fn *c = pf->caller == CNSMP_NO_ID ? NULL
				     : cnsmp_registry_get(pf->caller);
		struct codensm_probe_event e = {
			.probe_id = p->id, .name = p->name, .function = pf->f->name,
			.caller = c ? c->name : NULL, .event = ev, .error = error,
			.duration_ns = dur_ns, .thread = ps->tid};
		p->user.fn(&e, p->user.arg);
		break;
	}
	}
}

CNSMP_NOINST static void fire_all(struct cnsmp_thread *t, const struct pstack *ps,
				  const struct pframe *pf, int ev, uint64_t dur_ns,
				  int error, double now)
{
	for (size_t i = 0; i < pf->set->n; i++)
		fire(pf->set->p[i], t, ps, pf, ev, dur_ns, error, now);
}

/* Is pf's innermost tracked caller still in progress on t (depth td)?
 * The start of a call's frame tells it from a later call in the same
 * slot (an untimed frame's does not: such a call is taken as alive). */
static inline int caller_alive(struct cnsmp_thread *t, const struct pframe *pf, uint32_t td)
{
	return pf->tdepth <= td &&
	       (!pf->tdepth || cnsmp_frame_at(t, pf->tdepth - 1)->start == pf->caller_start);
}

CNSMP_NOINST void cnsmp_probes_enter(struct cnsmp_fn *f, void *fn)
{
	int saved = errno;
	struct cnsmp_probe_set *set = atomic_load_explicit(&f->probes, memory_order_acquire);
	struct cnsmp_thread *t = cnsmp_tls.t;
	if (!t)
		t = cnsmp_thread_attach(); /* so that the exit hook sees the end */
	struct pstack *ps = set ? stack_of_thread() : NULL;
	if (!ps) {
		errno = saved;
		return;
	}
	uint64_t start = cnsmp_clock_now();
	/* Probed calls whose innermost tracked caller has ended (its frame is
	 * gone, or holds another call) were left by a longjmp: an excluded
	 * one leaves no frame of its own for a repair to find. */
	uint32_t td = t ? t->depth : 0;
	while (t && ps->depth && !caller_alive(t, &ps->f[ps->depth - 1], td)) {
		struct pframe *gone = &ps->f[--ps->depth];
		fire_all(t, ps, gone, CODENSM_PROBE_END,
			 cnsmp_clock_ns(cnsmp_ticks_since(start, gone->start)), 1,
			 unix_at(start));
	}
	/* Past the stack's depth the call is seen to begin, not to end. */
	struct pframe spare, *pf = ps->depth < PSTACK_DEPTH ? &ps->f[ps->depth++] : &spare;
	pf->addr = (uintptr_t)fn;
	pf->f = f;
	pf->set = set;
	pf->caller = CNSMP_NO_ID;
	pf->tdepth = td;
	pf->caller_start = td ? cnsmp_frame_at(t, td - 1)->start : 0;
	pf->error = 0;
	if (t && t->overflow)
		pf->caller = t->ov_id;
	else if (t && t->depth)
		pf->caller = cnsmp_frame_at(t, t->depth - 1)->c->id;
	fire_all(t, ps, pf, CODENSM_PROBE_CALL, 0, 0, unix_at(start));
	pf->start = cnsmp_clock_now();
	errno = saved;
}

CNSMP_NOINST void cnsmp_probes_exit(struct cnsmp_thread *t, uintptr_t fn,
				    uint64_t flags)
{
	struct pstack *ps = pst;
	if (!ps || !ps->depth)
		return;
	uint64_t end = cnsmp_clock_now();
	int saved = errno;
	uint32_t i = ps->depth;
	while (i > 0 && ps->f[i - 1].addr != fn)
		i--;
	double now = unix_at(end);
	if (i == 0) {
		/* Not a probed call: a tracked call closing with probed calls
		 * still open above it (left by a longjmp), which the runtime
		 * repairs now, ends them too. */
		uint32_t j = t ? t->depth : 0;
		while (j > 0 && cnsmp_frame_at(t, j - 1)->addr != fn)
			j--;
		while (j > 0 && ps->depth && ps->f[ps->depth - 1].tdepth >= j) {
			struct pframe *pf = &ps->f[--ps->depth];
			fire_all(t, ps, pf, CODENSM_PROBE_END,
				 cnsmp_clock_ns(cnsmp_ticks_since(end, pf->start)), 1, now);
		}
		errno = saved;
		return;
	}
	/* Calls above it whose exit never ran: left by a longjmp, or by an
	 * exception unwinding code built without exit hooks. */
	while (ps->depth > i) {
		struct pframe *pf = &ps->f[--ps->depth];
		fire_all(t, ps, pf, CODENSM_PROBE_END,
			 cnsmp_clock_ns(cnsmp_ticks_since(end, pf->start)), 1, now);
	}
	struct pframe *pf = &ps->f[--ps->depth];
	uint64_t ns = cnsmp_clock_ns(cnsmp_ticks_since(end, pf->start));
	int thrown = t && t->unwinding;
	int error = thrown || (flags & CNSMP_FR_FAILED) || pf->error;
	if (!thrown)
		fire_all(t, ps, pf, CODENSM_PROBE_RETURN, ns, error, now);
	fire_all(t, ps, pf, CODENSM_PROBE_END, ns, error, now);
	errno = saved;
}

CNSMP_NOINST void cnsmp_probes_error(struct cnsmp_thread *t)
{
	struct pstack *ps = pst;
	if (!ps || !ps->depth)
		return;
	/* The innermost probed call, if no tracked call began inside it: an
	 * excluded one (it has no frame for the error to mark), or a tracked
	 * one, whose frame is marked too. */
	struct pframe *pf = &ps->f[ps->depth - 1];
	uint32_t td = t ? t->depth : 0;
	if (pf->tdepth == td ? !t || caller_alive(t, pf, td)
	    : pf->tdepth + 1 == td && cnsmp_frame_at(t, td - 1)->addr == pf->addr)
		pf->error = 1;
}

CNSMP_NOINST void cnsmp_probes_crash_end(void)
{
	struct pstack *ps = pst;
	if (!ps || !ps->depth)
		return;
	struct cnsmp_thread *t = cnsmp_tls.t;
	uint64_t end = cnsmp_clock_now();
	double now = unix_at(end);
	ps->in_signal = 1;
	while (ps->depth) {
		struct pframe *pf = &ps->f[--ps->depth];
		fire_all(t, ps, pf, CODENSM_PROBE_END,
			 cnsmp_clock_ns(cnsmp_ticks_since(end, pf->start)), 1, now);
	}
	ps->in_signal = 0;
}

CNSMP_NOINST void cnsmp_probes_atfork_child(void)
{
	pthread_mutex_init(&apply_mu, NULL);
	struct cnsmp_probe_table *t = atomic_load(&current);
	for (size_t i = 0; t && i < t->n; i++) {
		struct cnsmp_probe *p = t->p[i];
		p->hits_sent = atomic_load(&p->hits);
		p->dropped_sent = atomic_load(&p->log_dropped);
		p->ncarry = 0; /* the parent's records */
		atomic_store(&p->log_base, atomic_load(&p->log_claimed));
		/* The child's results are its own calls' (single-threaded here). */
		memset((void *)p->hist, 0, sizeof p->hist);
		memset((void *)p->split, 0, sizeof p->split);
		memset((void *)p->stacks, 0, sizeof p->stacks);
		atomic_store(&p->count, 0);
		atomic_store(&p->split_other, 0);
		atomic_store(&p->stack_other, 0);
	}
	cnsmp_probereport_atfork_child();
}
