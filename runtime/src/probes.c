/* probes.c: probe specs, lifespans, conditions and instruments: a closer
 * look at the calls of chosen functions, for a limited time (docs/probes.md).
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
 * flusher reads them and ships deltas.  Probes and tables are never
 * freed while the process runs (a hook may still hold one): a change of
 * specs costs a few hundred bytes per changed probe.
 * Each thread keeps its own stack of probed calls in progress (allocated
 * on its first probed call), which pairs each end with its beginning.
 */
#include <errno.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <jansson.h>
#include "thread.h"

enum { T_LOG = 1, T_HIST, T_INCR, T_STACK, T_USER };
enum { V_DURATION = 1, V_CALLER, V_THREAD, V_ERROR, V_CHAIN, V_COUNT };
enum { S_RECEIVED, S_INSTALLED, S_EMITTING, S_ERROR, S_EXPIRED };
static const char *const status_name[] = {"RECEIVED", "INSTALLED", "EMITTING",
					  "ERROR", "EXPIRED"};

#define LOG_RING 128        /* records kept between two reports */
#define LOG_PER_INTERVAL 100 /* the rate limit: records per report */
#define SPLIT_SLOTS 64      /* incr: distinct callers, threads or outcomes */
#define STACK_SLOTS 32      /* stack: distinct chains */
#define CHAIN_MAX 16        /* frames of a chain, the probed call included */
#define PSTACK_DEPTH CNSMP_STACK_DEPTH /* probed calls in progress on a thread */
#define USER_TYPES 16
#define TYPE_MAX 64

struct log_rec {
	_Atomic uint64_t seq;  /* index + 1 once written (release) */
	double t;
	uint64_t tid, dur_ns;
	uint32_t caller;
	int error, event;
};

struct split_slot {
	_Atomic uint64_t key;  /* value + 1; 0: empty */
	_Atomic uint64_t n;
};

struct stack_slot {
	_Atomic uint64_t hash; /* 0: empty; claimed by compare-and-swap */
	_Atomic int ready;     /* chain written */
	uint32_t depth;
	uint32_t chain[CHAIN_MAX]; /* tracked callers' ids, caller first */
	struct cnsmp_fn *fn;   /* the probed function, last of the chain */
	_Atomic uint64_t n;
};

struct user_type {
	char name[TYPE_MAX];
	codensm_instrument_fn fn;
	void *arg;
};

struct cnsmp_probe {
	/* The spec, read-only once published. */
	char *id, *canon, *target, *type_s, *name, *value_s, *event_s;
	char *lastmodified, *caller_prefix;
	int type, value, event, errors_only, status0; /* S_RECEIVED or S_ERROR */
	char message[256];
	double min_duration_ms, lifespan_min, start, end; /* unix seconds */
	uint64_t sample, max_hits;
	struct user_type user;
	/* Results, any thread. */
	_Atomic uint64_t hits, tries, taken, matched;
	_Atomic uint64_t hist[CNSMP_HIST_BUCKETS];
	_Atomic uint64_t count, split_other, stack_other;
	struct split_slot split[SPLIT_SLOTS];
	struct stack_slot stacks[STACK_SLOTS];
	_Atomic uint64_t log_claimed, log_base, log_dropped;
	struct log_rec log[LOG_RING];
	/* The flusher's: what was reported. */
	uint64_t hits_sent, dropped_sent;
	int expired_seen;
};

struct table {
	size_t n;
	struct cnsmp_probe *p[];
};

_Atomic int cnsmp_probes_live;
static _Atomic(struct table *) current;
static _Atomic uint32_t gen = 1; /* moves with each table: stale stacks reset */
static double test_clock;
/* Specs from the file and from the API, and the user types: apply_mu. */
static pthread_mutex_t apply_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *file_specs, *api_specs;
static struct user_type users[USER_TYPES];
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

/* ---- specs -------------------------------------------------------------- */

/* "2026-12-07T10:00:00Z" (fraction of a second allowed) -> unix seconds;
 * -1 if it is not ISO-8601 UTC. */
CNSMP_NOINST static double parse_time(const char *s)
{
	struct tm tm = {0};
	char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return -1;
	double frac = 0;
	if (*end == '.') {
		char *e2;
		frac = strtod(end, &e2);
		if (e2 == end + 1)
			return -1;
		end = e2;
	}
	if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
		return -1;
	time_t t = timegm(&tm);
	return t == (time_t)-1 ? -1 : (double)t + frac;
}

CNSMP_NOINST static int fail(struct cnsmp_probe *p, const char *fmt, const char *a)
{
	snprintf(p->message, sizeof p->message, fmt, a);
	p->status0 = S_ERROR;
	return -1;
}

CNSMP_NOINST static char *dup_str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? strdup(s) : NULL;
}

static const char *const type_names[] = {NULL, "log", "hist", "incr", "stack"};
static const char *const value_names[] = {NULL, "duration", "caller", "thread",
					  "error", "chain", "count"};
static const char *const event_names[] = {NULL, "call", "return", "end"};

CNSMP_NOINST static int lookup(const char *const *names, int n, const char *s)
{
	for (int i = 1; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return 0;
}

/* Which values each type records (bit per value), its default value and
 * whether it needs an end (a duration) rather than a call. */
static const unsigned type_values[] = {
	0, 1u << V_DURATION, 1u << V_DURATION,
	1u << V_COUNT | 1u << V_CALLER | 1u << V_THREAD | 1u << V_ERROR,
	1u << V_CHAIN, ~0u};
static const int type_default[] = {0, V_DURATION, V_DURATION, V_COUNT, V_CHAIN, V_COUNT};

CNSMP_NOINST static int parse_custom(struct cnsmp_probe *p, json_t *c)
{
	if (!c || json_is_null(c))
		return 0;
	if (!json_is_object(c))
		return fail(p, "%s: 'custom' is not an object", p->id);
	const char *k;
	json_t *v;
	json_object_foreach(c, k, v) {
		if (strcmp(k, "min_duration_ms") == 0) {
			if (!json_is_number(v) || json_number_value(v) < 0)
				return fail(p, "'min_duration_ms' of %s is not a number >= 0", p->id);
			p->min_duration_ms = json_number_value(v);
		} else if (strcmp(k, "caller") == 0) {
			if (!json_is_string(v) || !json_string_length(v))
				return fail(p, "'caller' of %s is not a name prefix", p->id);
			p->caller_prefix = strdup(json_string_value(v));
		} else if (strcmp(k, "errors_only") == 0) {
			if (!json_is_boolean(v))
				return fail(p, "'errors_only' of %s is not true or false", p->id);
			p->errors_only = json_is_true(v);
		} else if (strcmp(k, "sample") == 0 || strcmp(k, "max_hits") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 1)
				return fail(p, "'%s' is not an integer >= 1", k);
			*(k[0] == 's' ? &p->sample : &p->max_hits) =
				(uint64_t)json_integer_value(v);
		} else {
			return fail(p, "unknown condition '%s'", k);
		}
	}
	if (p->event == CODENSM_PROBE_CALL && (p->min_duration_ms > 0 || p->errors_only))
		return fail(p, "%s: min_duration_ms and errors_only need event "
			       "'return' or 'end'", p->id);
	return 0;
}

CNSMP_NOINST static int parse_instrument(struct cnsmp_probe *p, json_t *in)
{
	if (!json_is_object(in))
		return fail(p, "%s: 'instrument' is missing or not an object", p->id);
	p->type_s = dup_str(in, "type");
	if (!p->type_s)
		return fail(p, "%s: the instrument has no 'type'", p->id);
	p->type = lookup(type_names, 5, p->type_s);
	for (size_t i = 0; !p->type && i < nusers; i++)
		if (strcmp(users[i].name, p->type_s) == 0) {
			p->type = T_USER;
			p->user = users[i];
		}
	if (!p->type)
		return fail(p, "unknown instrument type '%s'", p->type_s);
	json_t *name = json_object_get(in, "name");
	if (name && !json_is_string(name))
		return fail(p, "%s: the instrument's 'name' is not a string", p->id);
	p->name = strdup(name ? json_string_value(name) : p->id);
	p->value_s = dup_str(in, "value");
	p->value = p->value_s ? lookup(value_names, 7, p->value_s) : type_default[p->type];
	if (!p->value)
		return fail(p, "unknown value '%s' (duration, caller, thread, error, "
			       "chain or count)", p->value_s ? p->value_s : "");
	if (!(type_values[p->type] & (1u << p->value)))
		return fail(p, "instrument type '%s' cannot record that value", p->type_s);
	p->event_s = dup_str(in, "event");
	p->event = p->event_s ? lookup(event_names, 4, p->event_s)
			      : (p->type == T_HIST || p->type == T_LOG
					 ? CODENSM_PROBE_RETURN : CODENSM_PROBE_CALL);
	if (!p->event)
		return fail(p, "unknown event '%s' (call, return or end)", p->event_s);
	if (p->type == T_HIST && p->event == CODENSM_PROBE_CALL)
		return fail(p, "%s: a histogram needs event 'return' or 'end'", p->id);
	return parse_custom(p, json_object_get(in, "custom"));
}

/* A probe from spec `s` of id `id`: valid (status0 RECEIVED) or ERROR
 * with its reason; NULL only if memory ran out. */
CNSMP_NOINST static struct cnsmp_probe *parse(const char *id, json_t *s,
					      const char *canon)
{
	struct cnsmp_probe *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->id = strdup(id);
	p->canon = strdup(canon ? canon : "");
	p->sample = 1;
	if (!p->id || !p->canon) {
		fail(p, "%s", "out of memory");
		return p;
	}
	if (!json_is_object(s)) {
		fail(p, "%s: the spec is not a JSON object", id);
		return p;
	}
	const char *k;
	json_t *v;
	json_object_foreach(s, k, v)
		if (strcmp(k, "id") && strcmp(k, "target") && strcmp(k, "instrument") &&
		    strcmp(k, "lifespan") && strcmp(k, "lastmodified") &&
		    strcmp(k, "applied")) {
			fail(p, "unknown field '%s'", k);
			return p;
		}
	json_t *sid = json_object_get(s, "id");
	if (sid && (!json_is_string(sid) || strcmp(json_string_value(sid), id))) {
		fail(p, "the spec's 'id' is not its key '%s'", id);
		return p;
	}
	p->target = dup_str(s, "target");
	if (!p->target || !p->target[0]) {
		fail(p, "%s: 'target' is missing or empty", id);
		return p;
	}
	json_t *ls = json_object_get(s, "lifespan");
	if (!json_is_number(ls) || !(json_number_value(ls) > 0) ||
	    json_number_value(ls) > 7 * 24 * 60) {
		fail(p, "%s: 'lifespan' is not a number of minutes in (0, 10080]", id);
		return p;
	}
	p->lifespan_min = json_number_value(ls);
	p->lastmodified = dup_str(s, "lastmodified");
	p->start = p->lastmodified ? parse_time(p->lastmodified) : -1;
	if (p->start < 0) {
		fail(p, "%s: 'lastmodified' is not an ISO-8601 UTC time "
			"(2026-12-07T10:00:00Z)", id);
		return p;
	}
	p->end = p->start + p->lifespan_min * 60;
	if (parse_instrument(p, json_object_get(s, "instrument")) == 0)
		p->status0 = S_RECEIVED;
	return p;
}

CNSMP_NOINST static int armed(const struct cnsmp_probe *p, double now)
{
	return p->status0 != S_ERROR && now < p->end;
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
	if (api_specs)
		add_specs(api_specs, merged);
	size_t n = json_object_size(merged);
	struct table *t = calloc(1, sizeof *t + n * sizeof t->p[0]);
	struct table *old = atomic_load(&current);
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
			p = parse(id, s, canon);
		free(canon);
		if (p)
			t->p[t->n++] = p;
	}
	json_decref(merged);
	double now = now_unix();
	int live = 0;
	for (size_t i = 0; i < t->n; i++) {
		atomic_store(&t->p[i]->matched, 0);
		live += armed(t->p[i], now);
	}
	anchor();
	atomic_store(&current, t); /* the old table is kept: the flusher may read it */
	atomic_fetch_add(&gen, 1);
	atomic_store(&cnsmp_probes_live, live);
	cnsmp_registry_redecide();
}

CNSMP_NOINST struct cnsmp_probe_set *cnsmp_probes_for(const char *name)
{
	struct table *t = atomic_load(&current);
	if (!t || !name)
		return NULL;
	double now = now_unix();
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++)
		n += armed(t->p[i], now) &&
		     cnsmp_rules_prefix_match(t->p[i]->target, name);
	if (!n)
		return NULL;
	struct cnsmp_probe_set *s = malloc(sizeof *s + n * sizeof s->p[0]);
	if (!s)
		return NULL;
	s->n = 0;
	for (size_t i = 0; i < t->n; i++)
		if (armed(t->p[i], now) &&
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
	/* A probe past its end is disarmed: its functions are decided again
	 * and go back to the fast path. */
	struct table *t = atomic_load(&current);
	double now = now_unix();
	for (size_t i = 0; t && !changed && i < t->n; i++)
		if (t->p[i]->status0 != S_ERROR && now >= t->p[i]->end &&
		    !t->p[i]->expired_seen) {
			t->p[i]->expired_seen = 1;
			changed = 1;
		}
	if (changed)
		apply_locked();
	pthread_mutex_unlock(&apply_mu);
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
	    lookup(type_names, 5, type))
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
	struct cnsmp_probe *p = s ? parse(id, s, "") : NULL;
	pthread_mutex_unlock(&apply_mu);
	json_decref(s);
	int ok = p && p->status0 != S_ERROR;
	snprintf(status, slen, "%s", ok ? "INSTALLED" : "ERROR");
	snprintf(msg, mlen, "%s", p ? p->message : "not JSON");
	if (p) {
		free(p->id); free(p->canon); free(p->target); free(p->type_s);
		free(p->name); free(p->value_s); free(p->event_s);
		free(p->lastmodified); free(p->caller_prefix);
		free(p);
	}
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
};
struct pstack {
	uint32_t depth, gen;
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
 * allocate); NULL if memory ran out.  A stack left from an older table
 * is emptied: its calls' probes may be gone. */
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
	uint32_t g = atomic_load_explicit(&gen, memory_order_relaxed);
	if (s->gen != g) {
		s->gen = g;
		s->depth = 0;
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
	if (i - atomic_load_explicit(&p->log_base, memory_order_relaxed) >= LOG_PER_INTERVAL) {
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
	if (p->event != ev || now < p->start || now >= p->end)
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
	/* Past the stack's depth the call is seen to begin, not to end. */
	struct pframe spare, *pf = ps->depth < PSTACK_DEPTH ? &ps->f[ps->depth++] : &spare;
	pf->addr = (uintptr_t)fn;
	pf->f = f;
	pf->set = set;
	pf->caller = CNSMP_NO_ID;
	pf->tdepth = t ? t->depth : 0;
	if (t && t->overflow)
		pf->caller = t->ov_id;
	else if (t && t->depth)
		pf->caller = cnsmp_frame_at(t, t->depth - 1)->c->id;
	uint64_t start = cnsmp_clock_now();
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
	if (ps->gen != atomic_load_explicit(&gen, memory_order_relaxed)) {
		errno = saved;
		return; /* a stack of another table's probes */
	}
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
	int error = thrown || (flags & CNSMP_FR_FAILED);
	if (!thrown)
		fire_all(t, ps, pf, CODENSM_PROBE_RETURN, ns, error, now);
	fire_all(t, ps, pf, CODENSM_PROBE_END, ns, error, now);
	errno = saved;
}

/* ---- reporting (flusher thread) ----------------------------------------- */

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
			"event", event_names[r->event]));
	}
	atomic_store(&p->log_base, claimed);
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
	json_object_set_new(o, "status", json_string(status_name[st]));
	if (why)
		json_object_set_new(o, "message", json_string(why));
	json_object_set_new(o, "hits", json_integer((json_int_t)(hits - p->hits_sent)));
	p->hits_sent = hits;
	if (p->status0 == S_ERROR)
		return o;
	json_object_set_new(o, "target", json_string(p->target));
	json_object_set_new(o, "type", json_string(p->type_s));
	json_object_set_new(o, "name", json_string(p->name));
	json_object_set_new(o, "value", json_string(value_names[p->value]));
	json_object_set_new(o, "event", json_string(event_names[p->event]));
	json_object_set_new(o, "functions", json_integer((json_int_t)atomic_load(&p->matched)));
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

CNSMP_NOINST char *cnsmp_probes_section(void)
{
	pthread_mutex_lock(&apply_mu);
	struct table *t = atomic_load(&current);
	size_t n = t ? t->n : 0;
	char **items = n ? calloc(n, sizeof *items) : NULL;
	double now = now_unix();
	size_t k = 0;
	for (size_t i = 0; items && i < n; i++) {
		json_t *o = report_one(t->p[i], now);
		items[k] = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		k += items[k] != NULL;
	}
	pthread_mutex_unlock(&apply_mu);
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

static void local_atfork_child(void);

CNSMP_NOINST void cnsmp_probes_atfork_child(void)
{
	pthread_mutex_init(&apply_mu, NULL);
	struct table *t = atomic_load(&current);
	for (size_t i = 0; t && i < t->n; i++) {
		struct cnsmp_probe *p = t->p[i];
		p->hits_sent = atomic_load(&p->hits);
		p->dropped_sent = atomic_load(&p->log_dropped);
		atomic_store(&p->log_base, atomic_load(&p->log_claimed));
		/* The child's results are its own calls' (single-threaded here). */
		memset((void *)p->hist, 0, sizeof p->hist);
		memset((void *)p->split, 0, sizeof p->split);
		memset((void *)p->stacks, 0, sizeof p->stacks);
		atomic_store(&p->count, 0);
		atomic_store(&p->split_other, 0);
		atomic_store(&p->stack_other, 0);
	}
	local_atfork_child();
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
	char *sec = cnsmp_probes_section();
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

CNSMP_NOINST void cnsmp_probes_local_start(void)
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

CNSMP_NOINST void cnsmp_probes_local_stop(void)
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

/* In the child after fork: the thread did not survive. */
CNSMP_NOINST static void local_atfork_child(void)
{
	pthread_mutex_init(&loc.mu, NULL);
	pthread_cond_init(&loc.cv, NULL);
	int was = loc.running;
	loc.running = loc.stop = 0;
	if (was)
		cnsmp_probes_local_start();
}
