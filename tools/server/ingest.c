/* ingest.c: POST /codensm/ingest: the key, the payload's validation
 * (docs/payload.md, field by field), the monthly quota, and one transaction
 * that applies a batch, so that a 200 means the batch is on disk. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server.h"

#define MAX_NUMBER 1e15          /* no count or duration above this: sums stay exact */
#define MAX_WEIGHT 1e6
#define MAX_CHAIN  64
#define CLOCK_AHEAD (5 * 60)     /* a client's interval may lead our clock this much */
#define CLOCK_BEHIND SRV_REPLAY_SECONDS /* or be this old (a spool replayed late) */

static int bad(char *err, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad(char *err, const char *path, const char *fmt, ...)
{
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(err, SRV_ERRLEN, "%s: %s", path, msg);
	return -1;
}

/* jansson already refuses invalid UTF-8 and NUL in strings; this check keeps
 * the promise true whatever the parser's flags become. */
static int utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0, len; i < n; i += len)
		if (s[i] == 0 || !(len = srv_utf8_len(s + i, n - i)))
			return 0;
	return 1;
}

static int check_string(json_t *v, const char *path, size_t min, size_t max, char *err)
{
	if (!v)
		return bad(err, path, "missing");
	if (!json_is_string(v) || json_string_length(v) < min || json_string_length(v) > max)
		return bad(err, path, "expected a string of %zu..%zu bytes", min, max);
	if (!utf8_ok((const unsigned char *)json_string_value(v), json_string_length(v)))
		return bad(err, path, "invalid utf-8");
	return 0;
}

static int check_count(json_t *v, const char *path, char *err)
{
	if (!v)
		return bad(err, path, "missing");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return bad(err, path, "expected a non-negative integer");
	if (json_integer_value(v) > (json_int_t)MAX_NUMBER)
		return bad(err, path, "too large (at most 10^15)");
	return 0;
}

static int check_number(json_t *v, const char *path, double max, char *err)
{
	if (!v)
		return bad(err, path, "missing");
	double d = json_number_value(v);
	if (!json_is_number(v) || !isfinite(d) || d < 0)
		return bad(err, path, "expected a non-negative number");
	if (d > max)
		return bad(err, path, "too large (at most %g)", max);
	return 0;
}

#define SUB(buf, fmt, ...) (snprintf(buf, sizeof buf, fmt, __VA_ARGS__), buf)

static int check_hist(json_t *h, const char *base, char *err)
{
	char p[96];
	size_t i;
	json_t *pair;
	if (!json_is_array(h))
		return bad(err, SUB(p, "%s.hist", base), "expected an array of [bucket, count]");
	json_array_foreach(h, i, pair) {
		json_t *b = json_array_get(pair, 0), *c = json_array_get(pair, 1);
		if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_integer(b) ||
		    json_integer_value(b) < 0 || json_integer_value(b) >= SRV_HIST_BUCKETS)
			return bad(err, SUB(p, "%s.hist[%zu]", base, i),
				   "expected [bucket, count] with bucket 0..79");
		if (check_count(c, SUB(p, "%s.hist[%zu][1]", base, i), err) < 0)
			return -1;
	}
	return 0;
}

static int check_function(json_t *f, size_t i, char *err)
{
	char base[48], p[96];
	snprintf(base, sizeof base, "functions[%zu]", i);
	if (!json_is_object(f))
		return bad(err, base, "expected an object");
	if (check_string(json_object_get(f, "name"), SUB(p, "%s.name", base), 1, SRV_MAX_NAME, err) ||
	    check_string(json_object_get(f, "department"), SUB(p, "%s.department", base), 1,
			 SRV_MAX_DEPARTMENT, err) ||
	    check_number(json_object_get(f, "value_weight"), SUB(p, "%s.value_weight", base),
			 MAX_WEIGHT, err) ||
	    check_count(json_object_get(f, "calls"), SUB(p, "%s.calls", base), err) ||
	    check_count(json_object_get(f, "errors"), SUB(p, "%s.errors", base), err) ||
	    check_number(json_object_get(f, "total_ms"), SUB(p, "%s.total_ms", base), MAX_NUMBER, err))
		return -1;
	if (json_integer_value(json_object_get(f, "errors")) >
	    json_integer_value(json_object_get(f, "calls")))
		return bad(err, SUB(p, "%s.errors", base), "greater than calls");
	json_t *v;
	if ((v = json_object_get(f, "file")) &&
	    check_string(v, SUB(p, "%s.file", base), 0, SRV_MAX_PATH, err))
		return -1;
	if ((v = json_object_get(f, "line")) && check_count(v, SUB(p, "%s.line", base), err))
		return -1;
	if ((v = json_object_get(f, "self_ms")) &&
	    check_number(v, SUB(p, "%s.self_ms", base), MAX_NUMBER, err))
		return -1;
	if ((v = json_object_get(f, "max_ms")) &&
	    check_number(v, SUB(p, "%s.max_ms", base), MAX_NUMBER, err))
		return -1;
	if ((v = json_object_get(f, "hist")) && check_hist(v, base, err))
		return -1;
	if ((v = json_object_get(f, "estimated_calls"))) {
		if (check_count(v, SUB(p, "%s.estimated_calls", base), err))
			return -1;
		if (json_integer_value(v) > json_integer_value(json_object_get(f, "calls")))
			return bad(err, SUB(p, "%s.estimated_calls", base), "greater than calls");
	}
	return 0;
}

static int check_inventory(json_t *f, size_t i, char *err)
{
	char base[48], p[96];
	json_t *v;
	snprintf(base, sizeof base, "inventory[%zu]", i);
	if (!json_is_object(f))
		return bad(err, base, "expected an object");
	if (check_string(json_object_get(f, "name"), SUB(p, "%s.name", base), 1, SRV_MAX_NAME, err))
		return -1;
	if ((v = json_object_get(f, "department")) &&
	    check_string(v, SUB(p, "%s.department", base), 1, SRV_MAX_DEPARTMENT, err))
		return -1;
	if ((v = json_object_get(f, "value_weight")) &&
	    check_number(v, SUB(p, "%s.value_weight", base), MAX_WEIGHT, err))
		return -1;
	if ((v = json_object_get(f, "file")) &&
	    check_string(v, SUB(p, "%s.file", base), 0, SRV_MAX_PATH, err))
		return -1;
	if ((v = json_object_get(f, "line")) && check_count(v, SUB(p, "%s.line", base), err))
		return -1;
	return 0;
}

static int check_edge(json_t *e, size_t i, char *err)
{
	char base[48], p[96];
	snprintf(base, sizeof base, "edges[%zu]", i);
	if (!json_is_object(e))
		return bad(err, base, "expected an object");
	return check_string(json_object_get(e, "caller"), SUB(p, "%s.caller", base), 1,
			    SRV_MAX_NAME, err) ||
	       check_string(json_object_get(e, "callee"), SUB(p, "%s.callee", base), 1,
			    SRV_MAX_NAME, err) ||
	       check_count(json_object_get(e, "calls"), SUB(p, "%s.calls", base), err) ? -1 : 0;
}

static int check_incident(json_t *in, size_t i, char *err)
{
	char base[48], p[112];
	json_t *v, *fr;
	size_t k;
	snprintf(base, sizeof base, "incidents[%zu]", i);
	if (!json_is_object(in))
		return bad(err, base, "expected an object");
	const char *kind = json_string_value(json_object_get(in, "kind"));
	if (!kind || (strcmp(kind, "error") && strcmp(kind, "exception") && strcmp(kind, "signal")))
		return bad(err, SUB(p, "%s.kind", base), "expected \"error\", \"exception\" or \"signal\"");
	if ((v = json_object_get(in, "signal")) && check_count(v, SUB(p, "%s.signal", base), err))
		return -1;
	if ((v = json_object_get(in, "count")) && check_count(v, SUB(p, "%s.count", base), err))
		return -1;
	if ((v = json_object_get(in, "first_seen")) &&
	    check_number(v, SUB(p, "%s.first_seen", base), 1e11, err))
		return -1;
	if ((v = json_object_get(in, "last_seen")) &&
	    check_number(v, SUB(p, "%s.last_seen", base), 1e11, err))
		return -1;
	v = json_object_get(in, "chain");
	if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > MAX_CHAIN)
		return bad(err, SUB(p, "%s.chain", base), "expected an array of 1..%d frames", MAX_CHAIN);
	json_array_foreach(v, k, fr) {
		json_t *x;
		if (!json_is_object(fr))
			return bad(err, SUB(p, "%s.chain[%zu]", base, k), "expected an object");
		if (check_string(json_object_get(fr, "name"), SUB(p, "%s.chain[%zu].name", base, k), 1,
				 SRV_MAX_NAME, err))
			return -1;
		if ((x = json_object_get(fr, "file")) &&
		    check_string(x, SUB(p, "%s.chain[%zu].file", base, k), 0, SRV_MAX_PATH, err))
			return -1;
		if ((x = json_object_get(fr, "line")) &&
		    check_count(x, SUB(p, "%s.chain[%zu].line", base, k), err))
			return -1;
	}
	return 0;
}

static int check_list(json_t *root, const char *key, int (*check)(json_t *, size_t, char *),
		      char *err)
{
	json_t *a = json_object_get(root, key), *x;
	size_t i;
	if (!a)
		return 0;
	if (!json_is_array(a))
		return bad(err, key, "expected an array");
	json_array_foreach(a, i, x)
		if (check(x, i, err) < 0)
			return -1;
	return 0;
}

/* Unknown fields anywhere are ignored; the known ones must have the types
 * of docs/payload.md.  _meta is the client's business except batch_id
 * (deduplication) and interval (when the calls happened): "dropped" and the
 * rest are accepted and ignored, as the seed contract says. */
int srv_ingest_validate(json_t *root, char *err)
{
	if (!json_is_object(root))
		return bad(err, "body", "expected a json object");
	if (check_list(root, "functions", check_function, err) ||
	    check_list(root, "inventory", check_inventory, err) ||
	    check_list(root, "edges", check_edge, err) ||
	    check_list(root, "incidents", check_incident, err) ||
	    check_list(root, "flows", srv_flow_check, err))
		return -1;
	json_t *meta = json_object_get(root, "_meta");
	if (meta && !json_is_object(meta))
		return bad(err, "_meta", "expected an object");
	json_t *bid = json_object_get(meta, "batch_id");
	if (bid && check_string(bid, "_meta.batch_id", 1, SRV_MAX_BATCH_ID, err))
		return -1;
	json_t *build = json_object_get(meta, "build_id");
	if (build && check_string(build, "_meta.build_id", 1, SRV_MAX_BATCH_ID, err))
		return -1;
	return 0;
}

/* ---- applying a valid batch ---------------------------------------------- */

struct batch {
	struct srv_store *st;
	int64_t project;
	double t;                 /* when the calls happened (unix seconds) */
	int64_t bucket;           /* t's 60-second bucket */
	char *err;
};

static int db_failed(struct batch *b)
{
	snprintf(b->err, SRV_ERRLEN, "database: %s", db_errmsg(srv_store_db(b->st)));
	return -1;
}

static int step_done(struct batch *b, struct db_stmt *s)
{
	int rc;
	while ((rc = db_step(s)) == DB_ROW)
		;
	return rc == DB_DONE ? 0 : db_failed(b);
}

static void bind_opt_text(struct db_stmt *s, int i, json_t *v)
{
	if (json_is_string(v) && json_string_length(v) > 0)
		db_bind_text(s, i, json_string_value(v), (int)json_string_length(v));
}

static void bind_opt_int(struct db_stmt *s, int i, json_t *v)
{
	if (json_is_integer(v))
		db_bind_int64(s, i, json_integer_value(v));
}

static int apply_function(struct batch *b, json_t *f)
{
	int64_t calls = json_integer_value(json_object_get(f, "calls"));
	int64_t errors = json_integer_value(json_object_get(f, "errors"));
	double weight = json_number_value(json_object_get(f, "value_weight"));
	double total = json_number_value(json_object_get(f, "total_ms"));
	json_t *self = json_object_get(f, "self_ms"), *max = json_object_get(f, "max_ms");
	const char *name = json_string_value(json_object_get(f, "name"));
	struct db_stmt *s = srv_stmt(b->st,
		"INSERT INTO functions(project, name, department, value_weight, file, line,"
		" first_seen, last_seen, calls_total, errors_total, total_ms_total, value_total)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11)"
		" ON CONFLICT(project, name) DO UPDATE SET department = excluded.department,"
		" value_weight = excluded.value_weight,"
		" file = COALESCE(functions.file, excluded.file),"
		" line = COALESCE(functions.line, excluded.line),"
		" first_seen = LEAST(COALESCE(functions.first_seen, excluded.first_seen), excluded.first_seen),"
		" last_seen = GREATEST(COALESCE(functions.last_seen, excluded.last_seen), excluded.last_seen),"
		" calls_total = functions.calls_total + excluded.calls_total,"
		" errors_total = functions.errors_total + excluded.errors_total,"
		" total_ms_total = functions.total_ms_total + excluded.total_ms_total,"
		" value_total = functions.value_total + excluded.value_total RETURNING id", b->err);
	if (!s)
		return -1;
	db_bind_int64(s, 1, b->project);
	db_bind_text(s, 2, name, -1);
	db_bind_text(s, 3, json_string_value(json_object_get(f, "department")), -1);
	db_bind_double(s, 4, weight);
	bind_opt_text(s, 5, json_object_get(f, "file"));
	bind_opt_int(s, 6, json_object_get(f, "line"));
	db_bind_double(s, 7, b->t);
	db_bind_int64(s, 8, calls);
	db_bind_int64(s, 9, errors);
	db_bind_double(s, 10, total);
	db_bind_double(s, 11, weight * (double)(calls - errors));
	int rc = db_step(s);
	if (rc != DB_ROW)
		return rc == DB_ERROR ? db_failed(b)
				      : (snprintf(b->err, SRV_ERRLEN, "database: no id"), -1);
	int64_t id = db_column_int64(s, 0);
	if (step_done(b, s) < 0)
		return -1;
	/* A delta may carry only histogram counts: the runtime bins a call's
	 * duration with the thread's next call, which can fall in the next
	 * interval (docs/payload.md). */
	if (calls == 0 && total == 0)
		goto hist;

	/* A client of the seed contract sends no self_ms or max_ms: with no
	 * tracked callees known, self time is the total, and the longest call
	 * lasted at least the mean. */
	s = srv_stmt(b->st,
		"INSERT INTO buckets(project, bucket_start, function, calls, errors, total_ms,"
		" self_ms, max_ms, value, estimated) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
		" ON CONFLICT(project, bucket_start, function) DO UPDATE"
		" SET calls = buckets.calls + excluded.calls, errors = buckets.errors + excluded.errors,"
		" total_ms = buckets.total_ms + excluded.total_ms,"
		" self_ms = buckets.self_ms + excluded.self_ms,"
		" max_ms = GREATEST(buckets.max_ms, excluded.max_ms), value = buckets.value + excluded.value,"
		" estimated = buckets.estimated + excluded.estimated", b->err);
	if (!s)
		return -1;
	db_bind_int64(s, 1, b->project);
	db_bind_int64(s, 2, b->bucket);
	db_bind_int64(s, 3, id);
	db_bind_int64(s, 4, calls);
	db_bind_int64(s, 5, errors);
	db_bind_double(s, 6, total);
	db_bind_double(s, 7, self ? json_number_value(self) : total);
	db_bind_double(s, 8, max ? json_number_value(max) : srv_ratio(total, (double)calls));
	db_bind_double(s, 9, weight * (double)(calls - errors));
	db_bind_int64(s, 10, json_integer_value(json_object_get(f, "estimated_calls")));
	if (step_done(b, s) < 0)
		return -1;

hist:;
	json_t *pair;
	size_t i;
	json_array_foreach(json_object_get(f, "hist"), i, pair) {
		int64_t n = json_integer_value(json_array_get(pair, 1));
		if (n == 0)
			continue;
		s = srv_stmt(b->st, "INSERT INTO hist(project, bucket_start, function, b, count)"
			     " VALUES(?1, ?2, ?3, ?4, ?5)"
			     " ON CONFLICT(project, bucket_start, function, b) DO UPDATE"
			     " SET count = hist.count + excluded.count", b->err);
		if (!s)
			return -1;
		db_bind_int64(s, 1, b->project);
		db_bind_int64(s, 2, b->bucket);
		db_bind_int64(s, 3, id);
		db_bind_int64(s, 4, json_integer_value(json_array_get(pair, 0)));
		db_bind_int64(s, 5, n);
		if (step_done(b, s) < 0)
			return -1;
	}
	return 0;
}

/* Inventory entries carry no counts: a function known only from them keeps
 * first_seen/last_seen empty and is "never called" until a call arrives. */
static int apply_inventory(struct batch *b, json_t *f)
{
	json_t *dep = json_object_get(f, "department"), *w = json_object_get(f, "value_weight");
	struct db_stmt *s = srv_stmt(b->st,
		"INSERT INTO functions(project, name, department, value_weight, file, line,"
		" in_inventory) VALUES(?1, ?2, ?3, ?4, ?5, ?6, 1)"
		" ON CONFLICT(project, name) DO UPDATE SET in_inventory = 1,"
		" file = COALESCE(functions.file, excluded.file),"
		" line = COALESCE(functions.line, excluded.line)", b->err);
	if (!s)
		return -1;
	db_bind_int64(s, 1, b->project);
	db_bind_text(s, 2, json_string_value(json_object_get(f, "name")), -1);
	db_bind_text(s, 3, dep ? json_string_value(dep) : "unassigned", -1);
	db_bind_double(s, 4, w ? json_number_value(w) : 1.0);
	bind_opt_text(s, 5, json_object_get(f, "file"));
	bind_opt_int(s, 6, json_object_get(f, "line"));
	return step_done(b, s);
}

/* The id of a name an edge mentions, created on first sight (by
 * whichever server sees it first: the insert does nothing on a conflict,
 * and the name is then read again). */
static int name_id(struct batch *b, const char *name, int64_t *id)
{
	static const char *const sql[] = {
		"SELECT id FROM names WHERE project = ?1 AND name = ?2",
		"INSERT INTO names(project, name) VALUES(?1, ?2)"
		" ON CONFLICT(project, name) DO NOTHING RETURNING id",
		"SELECT id FROM names WHERE project = ?1 AND name = ?2",
	};
	for (size_t i = 0; i < sizeof sql / sizeof *sql; i++) {
		struct db_stmt *s = srv_stmt(b->st, sql[i], b->err);
		if (!s)
			return -1;
		db_bind_int64(s, 1, b->project);
		db_bind_text(s, 2, name, -1);
		int rc = db_step(s);
		if (rc == DB_ROW)
			*id = db_column_int64(s, 0);
		db_reset(s);
		if (rc == DB_ROW)
			return 0;
		if (rc == DB_ERROR)
			return db_failed(b);
	}
	snprintf(b->err, SRV_ERRLEN, "database: name '%.60s' neither found nor inserted", name);
	return -1;
}

static int apply_edge(struct batch *b, json_t *e)
{
	int64_t calls = json_integer_value(json_object_get(e, "calls")), caller, callee;
	if (calls == 0)
		return 0;
	if (name_id(b, json_string_value(json_object_get(e, "caller")), &caller) < 0 ||
	    name_id(b, json_string_value(json_object_get(e, "callee")), &callee) < 0)
		return -1;
	struct db_stmt *s = srv_stmt(b->st,
		"INSERT INTO edges(project, bucket_start, caller, callee, calls) VALUES(?1, ?2, ?3, ?4, ?5)"
		" ON CONFLICT(project, bucket_start, caller, callee) DO UPDATE"
		" SET calls = edges.calls + excluded.calls", b->err);
	if (!s)
		return -1;
	db_bind_int64(s, 1, b->project);
	db_bind_int64(s, 2, b->bucket);
	db_bind_int64(s, 3, caller);
	db_bind_int64(s, 4, callee);
	db_bind_int64(s, 5, calls);
	return step_done(b, s);
}

/* Identical chains are one incident: the key is the hash of the kind, the
 * signal and the chain reduced to name/file/line, in a fixed key order. */
static int apply_incident(struct batch *b, json_t *in)
{
	json_t *chain = json_array(), *fr, *v;
	size_t k;
	json_array_foreach(json_object_get(in, "chain"), k, fr) {
		json_t *o = json_object();
		json_t *file = json_object_get(fr, "file"), *line = json_object_get(fr, "line");
		json_object_set(o, "name", json_object_get(fr, "name"));
		json_object_set(o, "file", file ? file : json_null());
		json_object_set(o, "line", line ? line : json_null());
		json_array_append_new(chain, o);
	}
	const char *kind = json_string_value(json_object_get(in, "kind"));
	int64_t sig = json_integer_value(json_object_get(in, "signal"));
	int64_t count = (v = json_object_get(in, "count")) ? json_integer_value(v) : 1;
	double first = (v = json_object_get(in, "first_seen")) ? json_number_value(v) : b->t;
	double last = (v = json_object_get(in, "last_seen")) ? json_number_value(v) : b->t;
	char *text = json_dumps(chain, JSON_COMPACT | JSON_SORT_KEYS);
	const char *fn = json_string_value(json_object_get(json_array_get(chain,
					json_array_size(chain) - 1), "name"));
	char *keytext = NULL;
	if (text && asprintf(&keytext, "%s\n%lld\n%s", kind, (long long)sig, text) < 0)
		keytext = NULL;
	int rc = -1;
	if (!keytext) {
		snprintf(b->err, SRV_ERRLEN, "out of memory");
		goto out;
	}
	unsigned char h[SRV_HASHLEN];
	srv_key_hash(keytext, h);
	struct db_stmt *s = srv_stmt(b->st,
		"INSERT INTO incidents(project, chain_hash, kind, signal, chain, function, count,"
		" first_seen, last_seen) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
		" ON CONFLICT(project, chain_hash) DO UPDATE SET count = incidents.count + excluded.count,"
		" first_seen = LEAST(incidents.first_seen, excluded.first_seen),"
		" last_seen = GREATEST(incidents.last_seen, excluded.last_seen)", b->err);
	if (!s)
		goto out;
	db_bind_int64(s, 1, b->project);
	db_bind_blob(s, 2, h, SRV_HASHLEN);
	db_bind_text(s, 3, kind, -1);
	db_bind_int64(s, 4, sig);
	db_bind_text(s, 5, text, -1);
	db_bind_text(s, 6, fn, -1);
	db_bind_int64(s, 7, count);
	db_bind_double(s, 8, first);
	db_bind_double(s, 9, last);
	rc = step_done(b, s);
out:
	free(keytext);
	free(text);
	json_decref(chain);
	return rc;
}

/* Functions and inventory by name, edges by caller then callee,
 * incidents as sent. */
struct entry {
	json_t *v;
	size_t i;                 /* its place in the body: equal keys keep it */
};

static int by_name(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	static const char *const keys[] = { "name", "caller", "callee" };
	for (size_t k = 0; k < 3; k++) {
		const char *p = json_string_value(json_object_get(x->v, keys[k]));
		const char *q = json_string_value(json_object_get(y->v, keys[k]));
		int c = p && q ? strcmp(p, q) : 0;
		if (c)
			return c;
	}
	return (x->i > y->i) - (x->i < y->i);
}

/* Applies every entry of root[key] in a fixed key order (by_name): two
 * transactions of one project then lock the rows they share (a function's
 * lifetime counters, its buckets, an edge) in the same order, so they wait
 * for each other instead of deadlocking. */
static int apply_list(struct batch *b, json_t *root, const char *key,
		      int (*apply)(struct batch *, json_t *))
{
	json_t *a = json_object_get(root, key);
	size_t n = json_array_size(a);
	if (!n)
		return 0;
	struct entry *order = malloc(n * sizeof *order);
	if (!order) {
		snprintf(b->err, SRV_ERRLEN, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		order[i] = (struct entry){ json_array_get(a, i), i };
	qsort(order, n, sizeof *order, by_name);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = apply(b, order[i].v);
	free(order);
	return rc;
}

/* When the calls happened: the end of _meta.interval when the client's
 * clock is plausible (so a spool replayed later lands where it belongs),
 * else our own clock. */
static double event_time(json_t *root, double now)
{
	json_t *iv = json_object_get(json_object_get(root, "_meta"), "interval");
	json_t *end = json_array_get(iv, 1);
	if (json_is_array(iv) && json_array_size(iv) == 2 && json_is_number(end)) {
		double t = json_number_value(end);
		if (isfinite(t) && t <= now + CLOCK_AHEAD && t >= now - CLOCK_BEHIND)
			return t;
	}
	return now;
}

/* The first second of now's month (UTC), the key of the month's usage. */
static int64_t month_of(double now)
{
	time_t t = (time_t)now;
	struct tm tm;
	gmtime_r(&t, &tm);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	return (int64_t)timegm(&tm);
}

enum outcome { APPLIED, DUPLICATE, OVER_QUOTA, FAILED };

/* The whole batch in one transaction, so that a 200 means it is committed
 * (on SQLite, synced: synchronous=FULL).  Exactness across servers comes
 * from the database, not from a server's memory:
 * - the batch id is inserted first, and a unique key makes the second of
 *   two concurrent copies wait for the first and then insert nothing;
 * - the month's usage is one row, added to last, with an atomic upsert
 *   that returns the new total: a batch that carries it past 120% of the
 *   quota is rolled back whole (429); up to there it is accepted and the
 *   month is marked as overage.  Last, because that row is the one every
 *   batch of the project shares: it is then held only for the upsert and
 *   the COMMIT.  A project already past the limit is answered before any
 *   work, from a plain read (usage only grows within a month, so a stale
 *   read can only be lower than the truth). */
static enum outcome apply(struct batch *b, const struct srv_project *p, json_t *root,
			  double now)
{
	struct db_stmt *s;
	const char *bid = json_string_value(json_object_get(json_object_get(root, "_meta"), "batch_id"));
	int64_t calls = 0, quota = srv_plan_quota(p->plan), month = month_of(now), used;
	json_t *f;
	size_t i;

	json_array_foreach(json_object_get(root, "functions"), i, f)
		calls += json_integer_value(json_object_get(f, "calls"));
	if (quota >= 0) {
		if (!(s = srv_stmt(b->st, "SELECT calls FROM usage WHERE project = ?1 AND month_start = ?2",
				   b->err)))
			return FAILED;
		db_bind_int64(s, 1, p->id);
		db_bind_int64(s, 2, month);
		int rc = db_step(s);
		used = rc == DB_ROW ? db_column_int64(s, 0) : 0;
		db_reset(s);
		if (rc == DB_ERROR)
			return db_failed(b), FAILED;
		if (used + calls > quota + quota / 5 && bid) {
			/* a resend of a batch applied before is still a duplicate */
			if (!(s = srv_stmt(b->st, "SELECT 1 FROM batches WHERE project = ?1 AND batch_id = ?2",
					   b->err)))
				return FAILED;
			db_bind_int64(s, 1, p->id);
			db_bind_text(s, 2, bid, -1);
			rc = db_step(s);
			db_reset(s);
			if (rc == DB_ERROR)
				return db_failed(b), FAILED;
			if (rc == DB_ROW)
				return DUPLICATE;
		}
		if (used + calls > quota + quota / 5)
			return OVER_QUOTA;
	}
	if (srv_begin(b->st, b->err) < 0)
		return FAILED;
	if (bid) {
		if (!(s = srv_stmt(b->st, "INSERT INTO batches(project, batch_id, received_at)"
				   " VALUES(?1, ?2, ?3) ON CONFLICT(project, batch_id) DO NOTHING", b->err)))
			goto fail;
		db_bind_int64(s, 1, p->id);
		db_bind_text(s, 2, bid, -1);
		db_bind_double(s, 3, now);
		if (step_done(b, s) < 0)
			goto fail;
		if (db_changes(srv_store_db(b->st)) == 0) {
			srv_rollback(b->st);
			return DUPLICATE;
		}
	}
	if (apply_list(b, root, "functions", apply_function) ||
	    apply_list(b, root, "inventory", apply_inventory) ||
	    apply_list(b, root, "edges", apply_edge) ||
	    apply_list(b, root, "incidents", apply_incident) ||
	    srv_flows_apply(b->st, b->project, root, now, b->err) < 0)
		goto fail;
	if (!(s = srv_stmt(b->st, "INSERT INTO usage(project, month_start, calls, overage)"
			   " VALUES(?1, ?2, ?3, CASE WHEN ?3 > ?4 THEN 1 ELSE 0 END)"
			   " ON CONFLICT(project, month_start) DO UPDATE SET calls = usage.calls + excluded.calls,"
			   " overage = GREATEST(usage.overage,"
			   "  CASE WHEN usage.calls + excluded.calls > ?4 THEN 1 ELSE 0 END)"
			   " RETURNING calls", b->err)))
		goto fail;
	db_bind_int64(s, 1, p->id);
	db_bind_int64(s, 2, month);
	db_bind_int64(s, 3, calls);
	db_bind_int64(s, 4, quota);
	if (db_step(s) != DB_ROW) {
		db_failed(b);
		db_reset(s);
		goto fail;
	}
	used = db_column_int64(s, 0);
	db_reset(s);
	if (quota >= 0 && used > quota + quota / 5) {
		srv_rollback(b->st);
		return OVER_QUOTA;
	}
	if (srv_commit(b->st, b->err) < 0)
		return FAILED;
	return APPLIED;
fail:
	srv_rollback(b->st);
	return FAILED;
}

/* A transaction the database chose to abort (a deadlock or serialization
 * failure on PostgreSQL) runs again, a few times.  On PostgreSQL the day's
 * partitions are made sure of first (a spool replayed late, a clock that
 * jumped). */
static enum outcome apply_retrying(struct batch *b, const struct srv_project *p, json_t *root,
				   double now)
{
	enum outcome o;
	for (int tries = 0;; tries++) {
		if (srv_store_is_pg() && srv_pg_ensure_day(b->st, b->bucket, b->err) < 0)
			return FAILED;
		o = apply(b, p, root, now);
		if (o != FAILED || tries == 4)
			return o;
		/* a partition another server's retention dropped meanwhile */
		if (srv_store_is_pg() && strstr(b->err, "no partition of relation")) {
			srv_pg_forget_days();
			continue;
		}
		if (db_fail(srv_store_db(b->st)) != DB_FAIL_RETRY)
			return o;
		struct timespec ts = { 0, (long)(1 + tries) * 5000000L };
		nanosleep(&ts, NULL);
	}
}

static void reply(struct srv_reply *r, unsigned status, json_t *body)
{
	r->status = status;
	r->body = body;
}

void srv_ingest(const char *auth_header, const char *body, size_t len, double now,
		struct srv_reply *r)
{
	char err[SRV_ERRLEN] = "";
	struct srv_project p;
	struct srv_store *st;
	int found = srv_store_auth('i', srv_bearer(auth_header), &p, &st, err);
	if (found < 0) {
		srv_store_log(st, err);
		return reply(r, 503, srv_error_json("database unavailable"));
	}
	if (!found)
		return reply(r, 401, srv_error_json("missing or unknown ingest key"));
	if (len > SRV_MAX_BODY)
		return reply(r, 413, srv_error_json("payload too large: body over %d bytes",
						    SRV_MAX_BODY));
	json_error_t jerr;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return reply(r, 400, srv_error_json("invalid json: %s at line %d column %d",
						    jerr.text, jerr.line, jerr.column));
	size_t nf = json_array_size(json_object_get(root, "functions"));
	if (nf > SRV_MAX_FUNCTIONS) {
		reply(r, 413, srv_error_json("payload too large: %zu functions (at most %d)",
					     nf, SRV_MAX_FUNCTIONS));
	} else if (srv_ingest_validate(root, err) < 0) {
		reply(r, 400, srv_error_json("%s", err));
	} else {
		struct batch b = { .st = st, .project = p.id, .t = event_time(root, now), .err = err };
		b.bucket = (int64_t)floor(b.t / SRV_BUCKET_SECONDS) * SRV_BUCKET_SECONDS;
		switch (apply_retrying(&b, &p, root, now)) {
		case APPLIED:
			reply(r, 200, json_pack("{sbsI}", "ok", 1, "functions", (json_int_t)nf));
			break;
		case DUPLICATE:
			reply(r, 200, json_pack("{sbsIsb}", "ok", 1, "functions", (json_int_t)nf,
						"duplicate", 1));
			break;
		case OVER_QUOTA:
			reply(r, 429, json_pack("{ss}", "error", "quota_exceeded"));
			break;
		case FAILED:
			if (db_fail(srv_store_db(st)) == DB_FAIL_UNAVAILABLE) {
				srv_store_log(st, err);
			} else {
				char line[SRV_ERRLEN + 100];
				snprintf(line, sizeof line, "ingest for project '%s': %s", p.name, err);
				srv_store_log(st, line);
			}
			reply(r, 503, srv_error_json("database unavailable"));
			break;
		}
	}
	json_decref(root);
}
