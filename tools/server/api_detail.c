/* api_detail.c: the views about failures and one function: incidents, the
 * call graph around a function, and the AI fix prompt. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

#define MAX_INCIDENTS 500
#define MAX_EDGES 200
#define PROMPT_INCIDENTS 8
#define PROMPT_EDGES 10

json_t *srv_view_incidents(struct srv_view *v, unsigned *status)
{
	struct db_stmt *s = srv_stmt(v->st,
		"SELECT id, kind, signal, chain, count, first_seen, last_seen FROM incidents"
		" WHERE project = ?1 AND last_seen >= ?2 ORDER BY last_seen DESC, id LIMIT ?3", v->err);
	if (!s)
		return NULL;
	db_bind_int64(s, 1, v->project);
	db_bind_int64(s, 2, v->since);
	db_bind_int(s, 3, MAX_INCIDENTS);
	json_t *list = json_array();
	int rc;
	while ((rc = db_step(s)) == DB_ROW) {
		json_t *chain = json_loads(db_column_text(s, 3), 0, NULL);
		json_array_append_new(list, json_pack("{sIsosIsosIsfsf}",
			"id", (json_int_t)db_column_int64(s, 0), "kind", srv_col_text(s, 1),
			"signal", (json_int_t)db_column_int64(s, 2),
			"chain", chain ? chain : json_array(),
			"count", (json_int_t)db_column_int64(s, 4),
			"first_seen", db_column_double(s, 5), "last_seen", db_column_double(s, 6)));
	}
	if (srv_view_done(v, s, rc) < 0) {
		json_decref(list);
		return NULL;
	}
	return json_pack("{so}", "incidents", list);
}

/* The function named by ?fn=, as its row id: 1 found, 0 not (status 404 or
 * 400 set), -1 database error. */
static int find_fn(struct srv_view *v, unsigned *status, const char **name, int64_t *id,
		   json_t **dept, json_t **file, json_t **line, double *weight)
{
	struct db_stmt *s;
	int found = srv_fn_row(v, status, "SELECT id, department, file, line, value_weight"
			       " FROM functions WHERE project = ?1 AND name = ?2",
			       "function ", " not found", name, &s);
	if (found <= 0)
		return found;
	*id = db_column_int64(s, 0);
	if (dept)
		*dept = srv_col_text(s, 1);
	if (file)
		*file = srv_col_text(s, 2);
	if (line)
		*line = srv_col_int(s, 3);
	if (weight)
		*weight = db_column_double(s, 4);
	db_reset(s);
	return 1;
}

/* A node of the graph: its department (null for a name the project never
 * reported as a function) and its calls in the window. */
static json_t *node(struct srv_view *v, const char *name)
{
	struct db_stmt *s = srv_stmt(v->st,
		"SELECT f.department, (SELECT COALESCE(SUM(b.calls), 0) FROM buckets b INDEXED BY buckets_by_function"
		"  WHERE b.project = f.project AND b.function = f.id AND b.bucket_start >= ?3)"
		" FROM functions f WHERE f.project = ?1 AND f.name = ?2", v->err);
	if (!s)
		return NULL;
	db_bind_int64(s, 1, v->project);
	db_bind_text(s, 2, name, -1);
	db_bind_int64(s, 3, v->since);
	json_t *o;
	if (db_step(s) == DB_ROW)
		o = json_pack("{sssosI}", "name", name, "department", srv_col_text(s, 0),
			      "calls", (json_int_t)db_column_int64(s, 1));
	else
		o = json_pack("{sssnsI}", "name", name, "department", "calls", (json_int_t)0);
	db_reset(s);
	return o;
}

/* The edges into and out of one function in the window, most calls first. */
static json_t *edges_of(struct srv_view *v, const char *name, int limit)
{
	struct db_stmt *s = srv_stmt(v->st,
		"WITH me AS (SELECT id FROM names WHERE project = ?1 AND name = ?3),"
		" e AS (SELECT caller, callee, SUM(calls) n FROM edges WHERE project = ?1"
		"  AND bucket_start >= ?2 AND (caller = (SELECT id FROM me) OR callee = (SELECT id FROM me))"
		"  GROUP BY caller, callee)"
		" SELECT c.name, d.name, e.n FROM e JOIN names c ON c.id = e.caller"
		" JOIN names d ON d.id = e.callee ORDER BY e.n DESC, c.name, d.name LIMIT ?4", v->err);
	if (!s)
		return NULL;
	db_bind_int64(s, 1, v->project);
	db_bind_int64(s, 2, v->since);
	db_bind_text(s, 3, name, -1);
	db_bind_int(s, 4, limit);
	json_t *list = json_array();
	int rc;
	while ((rc = db_step(s)) == DB_ROW)
		json_array_append_new(list, json_pack("{sososI}", "caller", srv_col_text(s, 0),
				      "callee", srv_col_text(s, 1), "calls", (json_int_t)db_column_int64(s, 2)));
	if (srv_view_done(v, s, rc) < 0) {
		json_decref(list);
		return NULL;
	}
	return list;
}

json_t *srv_view_graph(struct srv_view *v, unsigned *status)
{
	const char *name;
	int64_t id;
	int f = find_fn(v, status, &name, &id, NULL, NULL, NULL, NULL);
	if (f <= 0)
		return NULL;
	json_t *edges = edges_of(v, name, MAX_EDGES), *e;
	if (!edges)
		return NULL;
	json_t *nodes = json_array(), *seen = json_object();
	size_t i;
	json_object_set_new(seen, name, json_true());
	json_array_append_new(nodes, node(v, name));
	json_array_foreach(edges, i, e) {
		const char *other = json_string_value(json_object_get(e, strcmp(json_string_value(
					json_object_get(e, "caller")), name) ? "caller" : "callee"));
		if (json_object_get(seen, other))
			continue;
		json_object_set_new(seen, other, json_true());
		json_array_append_new(nodes, node(v, other));
	}
	json_decref(seen);
	return json_pack("{sssoso}", "center", name, "nodes", nodes, "edges", edges);
}

/* ---- the AI fix prompt ------------------------------------------------------------ */

struct text {
	char *buf;
	size_t len, cap;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (t->buf && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = (t->cap + (size_t)n + 1) * 2;
		char *nb = realloc(t->buf, cap);
		if (!nb)
			return;
		t->buf = nb;
		t->cap = cap;
	}
}

static void add_where(struct text *t, json_t *file, json_t *line)
{
	if (json_is_string(file) && json_string_length(file))
		add(t, "%s%s%lld", json_string_value(file), json_is_integer(line) ? ":" : "",
		    json_is_integer(line) ? (long long)json_integer_value(line) : 0LL);
	else
		add(t, "location unknown");
}

static void add_time(struct text *t, double when)
{
	char buf[32];
	time_t tt = (time_t)when;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
	add(t, "%s", buf);
}

static int prompt_stats(struct srv_view *v, struct text *t, int64_t id)
{
	struct db_stmt *s = srv_stmt(v->st,
		"SELECT COALESCE(SUM(calls), 0), COALESCE(SUM(errors), 0), COALESCE(MAX(max_ms), 0.0),"
		" COALESCE(SUM(total_ms), 0.0), COALESCE(SUM(value), 0.0),"
		" (SELECT COALESCE(SUM(value), 0.0) FROM buckets WHERE project = ?1 AND bucket_start >= ?3),"
		" COALESCE(SUM(estimated), 0)"
		" FROM buckets INDEXED BY buckets_by_function"
		" WHERE project = ?1 AND function = ?2 AND bucket_start >= ?3", v->err);
	int64_t counts[SRV_HIST_BUCKETS];
	if (!s)
		return -1;
	db_bind_int64(s, 1, v->project);
	db_bind_int64(s, 2, id);
	db_bind_int64(s, 3, v->since);
	if (db_step(s) != DB_ROW)
		return srv_view_done(v, s, DB_ERROR);
	int64_t calls = db_column_int64(s, 0), errors = db_column_int64(s, 1);
	double max = db_column_double(s, 2), total = db_column_double(s, 3);
	double share = srv_ratio(db_column_double(s, 4), db_column_double(s, 5));
	int64_t estimated = db_column_int64(s, 6);
	db_reset(s);
	if (srv_fn_hist(v, id, v->since, counts) < 0)
		return -1;
	double p50 = srv_hist_percentile_ms(counts, 0.5), p95 = srv_hist_percentile_ms(counts, 0.95);
	add(t, "Production numbers over the last %s:\n", v->window);
	add(t, "- calls: %lld, errors: %lld (error rate %.2f%%)\n", (long long)calls,
	    (long long)errors, 100 * srv_ratio((double)errors, (double)calls));
	if (p50 >= 0)
		add(t, "- latency: p50 %.3f ms, p95 %.3f ms, max %.3f ms\n", p50, p95, max);
	else
		add(t, "- latency: mean %.3f ms, max %.3f ms\n", srv_ratio(total, (double)calls), max);
	if (estimated > 0)
		add(t, "  (estimated: %lld of the calls were not clocked, sampled timing)\n",
		    (long long)estimated);
	add(t, "- share of the product's North-Star Metric: %.2f%%\n", 100 * share);
	return 0;
}

static int prompt_incidents(struct srv_view *v, struct text *t, const char *name)
{
	struct db_stmt *s = srv_stmt(v->st,
		"SELECT kind, signal, chain, count, first_seen, last_seen FROM incidents"
		" WHERE project = ?1 AND function = ?2 ORDER BY count DESC, last_seen DESC LIMIT ?3", v->err);
	if (!s)
		return -1;
	db_bind_int64(s, 1, v->project);
	db_bind_text(s, 2, name, -1);
	db_bind_int(s, 3, PROMPT_INCIDENTS);
	int rc, n = 0;
	while ((rc = db_step(s)) == DB_ROW) {
		json_t *chain = json_loads(db_column_text(s, 2), 0, NULL), *fr;
		size_t i;
		if (n++ == 0)
			add(t, "\nFailure chains that ended in this function (caller first):\n");
		add(t, "%d. %s", n, db_column_text(s, 0));
		if (!strcmp(db_column_text(s, 0), "signal"))
			add(t, " %lld", (long long)db_column_int64(s, 1));
		add(t, ", %lld times, first ", (long long)db_column_int64(s, 3));
		add_time(t, db_column_double(s, 4));
		add(t, ", last ");
		add_time(t, db_column_double(s, 5));
		add(t, "\n");
		json_array_foreach(chain, i, fr) {
			add(t, "   %s %s (", i ? "->" : "  ", json_string_value(json_object_get(fr, "name")));
			add_where(t, json_object_get(fr, "file"), json_object_get(fr, "line"));
			add(t, ")\n");
		}
		json_decref(chain);
	}
	return srv_view_done(v, s, rc);
}

/* The complexity signals of CODENSM_MODE=full, when the function has a
 * flow: what the analysis counted, so a fix can aim at the branchy part. */
static int prompt_complexity(struct srv_view *v, struct text *t, const char *name)
{
	struct db_stmt *s = srv_stmt(v->st, "SELECT decisions, loops, returns, nodes_count, lines,"
				   " has_tests, flow FROM flows WHERE project = ?1 AND name = ?2", v->err);
	if (!s)
		return -1;
	db_bind_int64(s, 1, v->project);
	db_bind_text(s, 2, name, -1);
	int rc = db_step(s);
	if (rc != DB_ROW)
		return srv_view_done(v, s, rc);
	int64_t d = db_column_int64(s, 0), l = db_column_int64(s, 1);
	add(t, "Complexity (static analysis): %lld decisions, %lld loops, %lld returns, %lld nodes,"
	    " %lld lines; cyclomatic complexity %lld; %s\n", (long long)d, (long long)l,
	    (long long)db_column_int64(s, 2), (long long)db_column_int64(s, 3),
	    (long long)db_column_int64(s, 4), (long long)srv_flow_complexity(d, l),
	    db_column_int(s, 5) ? "a test file uses it" : "no test file uses it");
	json_t *flow = json_loads(db_column_text(s, 6), 0, NULL), *c;
	size_t i;
	json_array_foreach(json_object_get(flow, "calls_out"), i, c)
		add(t, "%s%s", i ? ", " : "Calls (static): ", json_string_value(c));
	if (json_array_size(json_object_get(flow, "calls_out")))
		add(t, "\n");
	json_decref(flow);
	db_reset(s);
	return 0;
}

json_t *srv_view_prompt(struct srv_view *v, unsigned *status)
{
	const char *name;
	int64_t id;
	json_t *dept = NULL, *file = NULL, *line = NULL, *edges = NULL, *e, *out = NULL;
	double weight;
	struct text t = { 0 };
	size_t i;
	int f = find_fn(v, status, &name, &id, &dept, &file, &line, &weight);
	if (f <= 0)
		return NULL;
	add(&t, "Help me fix a function that fails in production. Find the most likely root cause,"
		" propose a minimal fix, and a test that fails before the fix and passes after it.\n\n");
	add(&t, "Function: %s\nDepartment: %s\nSource: ", name, json_string_value(dept));
	add_where(&t, file, line);
	add(&t, "\nBusiness value of one successful call: %g\n", weight);
	if (prompt_complexity(v, &t, name) < 0)
		goto out;
	add(&t, "\n");
	if (prompt_stats(v, &t, id) < 0 || prompt_incidents(v, &t, name) < 0 ||
	    !(edges = edges_of(v, name, 2 * PROMPT_EDGES)))
		goto out;
	int callers = 0, callees = 0;
	json_array_foreach(edges, i, e) {
		int in = !strcmp(json_string_value(json_object_get(e, "callee")), name);
		if (!in)
			continue;
		if (callers++ == 0)
			add(&t, "\nCallers (calls in the window):\n");
		add(&t, "- %s (%lld)\n", json_string_value(json_object_get(e, "caller")),
		    (long long)json_integer_value(json_object_get(e, "calls")));
	}
	json_array_foreach(edges, i, e) {
		if (strcmp(json_string_value(json_object_get(e, "caller")), name))
			continue;
		if (callees++ == 0)
			add(&t, "\nCallees (calls in the window):\n");
		add(&t, "- %s (%lld)\n", json_string_value(json_object_get(e, "callee")),
		    (long long)json_integer_value(json_object_get(e, "calls")));
	}
	add(&t, "\nOpen the source file above first; keep the function's signature unless the"
		" fix needs it changed, and say why if it does.\n");
	if (t.buf)
		out = json_pack("{ssss}", "name", name, "prompt", t.buf);
out:
	free(t.buf);
	json_decref(dept);
	json_decref(file);
	json_decref(line);
	json_decref(edges);
	return out;
}
