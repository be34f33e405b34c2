/* api_views.c: the dashboard's views (docs/api.md), each one JSON object
 * built from SQL aggregates over the time buckets of the window.
 *
 * Sums, ratios, filters, sorting and pagination happen in SQL; C adds only
 * what SQL cannot do cheaply: percentiles of merged histograms, the heatmap
 * bins and the filling of empty trend steps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

#define DEBT_BINS 10
#define MAX_LIST 500

/* ---- helpers --------------------------------------------------------------- */

/* A statement whose text is built at run time (an ORDER BY from a fixed
 * list): prepared for this request only, finalized by the caller. */
static struct db_stmt *prepare(struct srv_view *v, const char *sql)
{
	struct db_stmt *s = db_prepare(srv_store_db(v->st), sql);
	if (!s)
		snprintf(v->err, SRV_ERRLEN, "database: %s", db_errmsg(srv_store_db(v->st)));
	return s;
}

/* After a stepping loop: 0 when it ended well, else -1 with v->err. */
int srv_view_done(struct srv_view *v, struct db_stmt *s, int rc)
{
	if (rc != DB_DONE) {
		snprintf(v->err, SRV_ERRLEN, "database: %s", db_errmsg(srv_store_db(v->st)));
		db_reset(s);
		return -1;
	}
	db_reset(s);
	return 0;
}

json_t *srv_col_text(struct db_stmt *s, int i)
{
	const char *t = db_column_text(s, i);
	return t ? json_string(t) : json_null();
}

json_t *srv_col_int(struct db_stmt *s, int i)
{
	return db_column_null(s, i) ? json_null() : json_integer(db_column_int64(s, i));
}

json_t *srv_col_real(struct db_stmt *s, int i)
{
	return db_column_null(s, i) ? json_null() : json_real(db_column_double(s, i));
}

/* A percentile is null when no client sent a histogram for the window. */
json_t *srv_ms_or_null(double ms)
{
	return ms < 0 ? json_null() : json_real(ms);
}

json_t *srv_bad_param(struct srv_view *v, unsigned *status, const char *name, const char *what)
{
	*status = 400;
	snprintf(v->err, SRV_ERRLEN, "%s: expected %s", name, what);
	return NULL;
}

int srv_fn_row(struct srv_view *v, unsigned *status, const char *sql, const char *before,
	       const char *after, const char **name, struct db_stmt **row)
{
	*name = v->query(v->qctx, "fn");
	if (!*name || !**name) {
		srv_bad_param(v, status, "fn", "a function name");
		return 0;
	}
	struct db_stmt *s = srv_stmt(v->st, sql, v->err);
	if (!s)
		return -1;
	db_bind_int64(s, 1, v->project);
	db_bind_text(s, 2, *name, -1);
	int rc = db_step(s);
	if (rc != DB_ROW) {
		if (srv_view_done(v, s, rc) < 0)
			return -1;
		*status = 404;
		snprintf(v->err, SRV_ERRLEN, "%s'%.200s'%s", before, *name, after);
		return 0;
	}
	*row = s;
	return 1;
}

/* An integer parameter within [min, max]; def when absent.  0 or -1. */
static int param_int(struct srv_view *v, const char *name, int64_t def, int64_t min, int64_t max,
		     int64_t *out)
{
	const char *s = v->query(v->qctx, name);
	if (!s) {
		*out = def;
		return 0;
	}
	char *end;
	long long n = strtoll(s, &end, 10);
	if (!*s || *end || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

/* One function's merged histogram since a time (index hist_by_function). */
int srv_fn_hist(struct srv_view *v, int64_t fid, int64_t since, int64_t counts[SRV_HIST_BUCKETS])
{
	/* INDEXED BY: without statistics SQLite would rather range-scan the
	 * primary key on bucket_start, i.e. every function's rows of the window. */
	struct db_stmt *s = srv_stmt(v->st, "SELECT b, SUM(count) FROM hist INDEXED BY hist_by_function"
				   " WHERE project = ?1"
				   " AND function = ?2 AND bucket_start >= ?3 GROUP BY b", v->err);
	int rc;
	memset(counts, 0, SRV_HIST_BUCKETS * sizeof *counts);
	if (!s)
		return -1;
	db_bind_int64(s, 1, v->project);
	db_bind_int64(s, 2, fid);
	db_bind_int64(s, 3, since);
	while ((rc = db_step(s)) == DB_ROW)
		counts[db_column_int(s, 0) % SRV_HIST_BUCKETS] += db_column_int64(s, 1);
	return srv_view_done(v, s, rc);
}

static int64_t trend_base(const struct srv_view *v)
{
	return v->since / v->step * v->step;
}

static size_t trend_points(const struct srv_view *v)
{
	return (size_t)(((int64_t)v->now / v->step * v->step - trend_base(v)) / v->step + 1);
}

void srv_bind_fn_rows(struct srv_view *v, struct db_stmt *s, int64_t threshold)
{
	db_bind_int64(s, 1, v->project);
	db_bind_int64(s, 2, v->since);
	db_bind_int64(s, 3, (int64_t)v->now - SRV_LAST_15M);
	db_bind_int64(s, 4, (int64_t)v->now - SRV_LAST_30D);
	db_bind_int64(s, 5, threshold);
}

/* ---- summary ----------------------------------------------------------------- */

json_t *srv_view_summary(struct srv_view *v, unsigned *status)
{
	struct db_stmt *s = srv_stmt(v->st,
		"SELECT (SELECT COALESCE(SUM(value), 0.0) FROM buckets WHERE project = ?1 AND bucket_start >= ?2),"
		" (SELECT COALESCE(SUM(calls), 0) FROM buckets WHERE project = ?1 AND bucket_start >= ?2),"
		" (SELECT COALESCE(SUM(errors), 0) FROM buckets WHERE project = ?1 AND bucket_start >= ?2),"
		" (SELECT COUNT(*) FROM functions WHERE project = ?1),"
		" (SELECT COUNT(DISTINCT department) FROM functions WHERE project = ?1)", v->err);
	if (!s)
		return NULL;
	db_bind_int64(s, 1, v->project);
	db_bind_int64(s, 2, v->since);
	if (db_step(s) != DB_ROW) {
		srv_view_done(v, s, DB_ERROR);
		return NULL;
	}
	json_t *out = json_pack("{sssfsIsIsIsI}", "window", v->window,
				"nsm", db_column_double(s, 0),
				"calls", (json_int_t)db_column_int64(s, 1),
				"errors", (json_int_t)db_column_int64(s, 2),
				"functions", (json_int_t)db_column_int64(s, 3),
				"departments", (json_int_t)db_column_int64(s, 4));
	db_reset(s);

	size_t n = trend_points(v);
	json_t *trend = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(trend, json_pack("{sIsfsIsI}", "t",
			(json_int_t)(trend_base(v) + (int64_t)i * v->step), "nsm", 0.0, "calls",
			(json_int_t)0, "errors", (json_int_t)0));
	json_object_set_new(out, "trend", trend);
	s = srv_stmt(v->st, "SELECT (bucket_start - ?2) / ?3 k, SUM(value), SUM(calls), SUM(errors)"
		     " FROM buckets WHERE project = ?1 AND bucket_start >= ?4 GROUP BY k", v->err);
	if (!s)
		goto fail;
	db_bind_int64(s, 1, v->project);
	db_bind_int64(s, 2, trend_base(v));
	db_bind_int64(s, 3, v->step);
	db_bind_int64(s, 4, v->since);
	int rc;
	while ((rc = db_step(s)) == DB_ROW) {
		json_t *pt = json_array_get(trend, (size_t)db_column_int64(s, 0));
		if (!pt)
			continue;
		json_object_set_new(pt, "nsm", json_real(db_column_double(s, 1)));
		json_object_set_new(pt, "calls", json_integer(db_column_int64(s, 2)));
		json_object_set_new(pt, "errors", json_integer(db_column_int64(s, 3)));
	}
	if (srv_view_done(v, s, rc) == 0)
		return out;
fail:
	json_decref(out);
	return NULL;
}

/* ---- departments ------------------------------------------------------------- */

struct dept {
	char *name;
	int64_t win[SRV_HIST_BUCKETS], month[SRV_HIST_BUCKETS];
};

/* Both merged histograms of every department, the window's and the last
 * 30 days', in one scan of the 30 days of histogram rows. */
static int dept_hists(struct srv_view *v, struct dept *d, size_t nd)
{
	struct db_stmt *s = srv_stmt(v->st,
		"WITH h AS (SELECT function, b, SUM(CASE WHEN bucket_start >= ?2 THEN count ELSE 0 END) w,"
		"  SUM(count) m FROM hist WHERE project = ?1 AND bucket_start >= ?3 GROUP BY function, b)"
		" SELECT f.department, h.b, SUM(h.w), SUM(h.m) FROM h JOIN functions f ON f.id = h.function"
		" GROUP BY f.department, h.b", v->err);
	int rc;
	if (!s)
		return -1;
	db_bind_int64(s, 1, v->project);
	db_bind_int64(s, 2, v->since);
	db_bind_int64(s, 3, (int64_t)v->now - SRV_LAST_30D);
	while ((rc = db_step(s)) == DB_ROW) {
		const char *name = db_column_text(s, 0);
		unsigned b = (unsigned)db_column_int(s, 1) % SRV_HIST_BUCKETS;
		for (size_t i = 0; i < nd; i++)
			if (!strcmp(d[i].name, name)) {
				d[i].win[b] += db_column_int64(s, 2);
				d[i].month[b] += db_column_int64(s, 3);
				break;
			}
	}
	return srv_view_done(v, s, rc);
}

json_t *srv_view_departments(struct srv_view *v, unsigned *status)
{
	struct db_stmt *s = srv_stmt(v->st,
		"WITH w AS (SELECT function, SUM(calls) c, SUM(errors) e, SUM(value) v FROM buckets"
		"  WHERE project = ?1 AND bucket_start >= ?2 GROUP BY function),"
		" tot AS (SELECT COALESCE(SUM(value), 0) v FROM buckets WHERE project = ?1 AND bucket_start >= ?2)"
		" SELECT f.department, COUNT(*), COALESCE(SUM(w.c), 0), COALESCE(SUM(w.e), 0),"
		"  COALESCE(SUM(w.v), 0.0) nsm, COALESCE(SUM(CASE WHEN w.c > 0 THEN 1 ELSE 0 END), 0), MAX(tot.v)"
		" FROM functions f CROSS JOIN tot LEFT JOIN w ON w.function = f.id WHERE f.project = ?1"
		" GROUP BY f.department ORDER BY nsm DESC, f.department", v->err);
	if (!s)
		return NULL;
	db_bind_int64(s, 1, v->project);
	db_bind_int64(s, 2, v->since);
	json_t *list = json_array();
	struct dept *d = NULL;
	size_t nd = 0;
	int rc;
	while ((rc = db_step(s)) == DB_ROW) {
		int64_t calls = db_column_int64(s, 2), errors = db_column_int64(s, 3);
		int64_t known = db_column_int64(s, 1), active = db_column_int64(s, 5);
		double nsm = db_column_double(s, 4), total = db_column_double(s, 6);
		json_array_append_new(list, json_pack("{sosIsIsIsfsfsf}",
			"department", srv_col_text(s, 0), "functions", (json_int_t)known,
			"calls", (json_int_t)calls, "errors", (json_int_t)errors,
			"reliability", srv_reliability(calls, errors),
			"nsm", nsm, "share", srv_ratio(nsm, total)));
		json_object_set_new(json_array_get(list, nd), "availability",
				    json_real(srv_ratio((double)active, (double)known)));
		struct dept *nd2 = realloc(d, (nd + 1) * sizeof *d);
		if (!nd2)
			break;
		d = nd2;
		memset(&d[nd], 0, sizeof *d);
		d[nd++].name = strdup(db_column_text(s, 0));
	}
	json_t *out = NULL;
	if (srv_view_done(v, s, rc) < 0 || dept_hists(v, d, nd) < 0)
		goto out;
	for (size_t i = 0; i < nd; i++) {
		json_t *o = json_array_get(list, i);
		double p95 = srv_hist_percentile_ms(d[i].win, 0.95);
		double perf = srv_performance(srv_hist_percentile_ms(d[i].month, 0.5),
					      srv_hist_percentile_ms(d[i].win, 0.5));
		double oee = json_real_value(json_object_get(o, "availability")) * perf *
			     json_real_value(json_object_get(o, "reliability"));
		/* keys in the order docs/api.md lists them */
		json_t *avail = json_incref(json_object_get(o, "availability"));
		json_object_del(o, "availability");
		json_t *nsm = json_incref(json_object_get(o, "nsm")), *share = json_incref(json_object_get(o, "share"));
		json_object_del(o, "nsm");
		json_object_del(o, "share");
		json_object_set_new(o, "p95_ms", srv_ms_or_null(p95));
		json_object_set_new(o, "nsm", nsm);
		json_object_set_new(o, "share", share);
		json_object_set_new(o, "availability", avail);
		json_object_set_new(o, "performance", json_real(perf));
		json_object_set_new(o, "oee", json_real(oee));
	}
	out = json_pack("{so}", "departments", json_incref(list));
out:
	for (size_t i = 0; i < nd; i++)
		free(d[i].name);
	free(d);
	json_decref(list);
	return out;
}

/* ---- functions (the employees) --------------------------------------------- */

static const char *const sortable[] = {
	"name", "department", "value_weight", "calls", "errors", "error_rate", "p50_ms", "p95_ms",
	"max_ms", "total_ms", "self_ms", "nsm", "share", "file", "line", "first_seen", "last_seen",
	"state", "decisions", "loops", "returns", "nodes_count", "lines", "has_tests",
};

struct fnrow {
	json_t *row;
	int64_t id;
	double key;               /* the percentile sorted on */
};

static json_t *fn_row(struct db_stmt *s, double p50, double p95)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", srv_col_text(s, 1));
	json_object_set_new(o, "department", srv_col_text(s, 2));
	json_object_set_new(o, "value_weight", srv_col_real(s, 3));
	json_object_set_new(o, "calls", srv_col_int(s, 4));
	json_object_set_new(o, "errors", srv_col_int(s, 5));
	json_object_set_new(o, "error_rate", srv_col_real(s, 6));
	json_object_set_new(o, "p50_ms", srv_ms_or_null(p50));
	json_object_set_new(o, "p95_ms", srv_ms_or_null(p95));
	json_object_set_new(o, "max_ms", srv_col_real(s, 7));
	json_object_set_new(o, "total_ms", srv_col_real(s, 8));
	json_object_set_new(o, "self_ms", srv_col_real(s, 9));
	json_object_set_new(o, "nsm", srv_col_real(s, 10));
	json_object_set_new(o, "share", srv_col_real(s, 11));
	json_object_set_new(o, "file", srv_col_text(s, 12));
	json_object_set_new(o, "line", srv_col_int(s, 13));
	json_object_set_new(o, "first_seen", srv_col_real(s, 14));
	json_object_set_new(o, "last_seen", srv_col_real(s, 15));
	json_object_set_new(o, "state", srv_col_text(s, 16));
	/* Column 17 is the page's total (COUNT(*) OVER ()). */
	json_object_set_new(o, "estimated_calls", srv_col_int(s, 18));
	/* CODENSM_MODE=full: null without a flow */
	static const char *const cx[] = { "decisions", "loops", "returns", "nodes_count", "lines" };
	for (int i = 0; i < 5; i++)
		json_object_set_new(o, cx[i], srv_col_int(s, 19 + i));
	json_object_set_new(o, "has_tests", db_column_null(s, 24) ? json_null()
				: json_boolean(db_column_int(s, 24)));
	return o;
}

static int by_id(const void *a, const void *b)
{
	int64_t x = ((const struct fnrow *)a)->id, y = ((const struct fnrow *)b)->id;
	return (x > y) - (x < y);
}

static int by_key_asc(const void *a, const void *b)
{
	const struct fnrow *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return strcmp(json_string_value(json_object_get(x->row, "name")),
		      json_string_value(json_object_get(y->row, "name")));
}

static int by_key_desc(const void *a, const void *b)
{
	const struct fnrow *x = a, *y = b;
	if (x->key != y->key)
		return x->key > y->key ? -1 : 1;
	return strcmp(json_string_value(json_object_get(x->row, "name")),
		      json_string_value(json_object_get(y->row, "name")));
}

/* Sorting on a percentile cannot happen in SQL: every filtered row is read,
 * the window's histograms of all functions are merged in one grouped scan,
 * and C sorts and cuts the page.  O(functions + histogram rows). */
static int percentile_page(struct srv_view *v, struct db_stmt *s, const char *sort, int desc,
			   int64_t offset, int64_t limit, json_t *rows, int64_t *total)
{
	struct fnrow *r = NULL;
	size_t n = 0, cap = 0;
	int rc, ret = -1;
	while ((rc = db_step(s)) == DB_ROW) {
		if (n == cap) {
			struct fnrow *nr = realloc(r, (cap = cap ? 2 * cap : 256) * sizeof *r);
			if (!nr)
				goto out;
			r = nr;
		}
		r[n].id = db_column_int64(s, 0);
		r[n].row = fn_row(s, -1, -1);
		r[n++].key = -1;
	}
	if (rc != DB_DONE) {
		snprintf(v->err, SRV_ERRLEN, "database: %s", db_errmsg(srv_store_db(v->st)));
		goto out;
	}
	qsort(r, n, sizeof *r, by_id);
	struct db_stmt *h = srv_stmt(v->st, "SELECT function, b, SUM(count) FROM hist WHERE project = ?1"
				   " AND bucket_start >= ?2 GROUP BY function, b ORDER BY function", v->err);
	if (!h)
		goto out;
	db_bind_int64(h, 1, v->project);
	db_bind_int64(h, 2, v->since);
	int64_t counts[SRV_HIST_BUCKETS], cur = -1;
	size_t j = 0;
	for (;;) {
		rc = db_step(h);
		int64_t id = rc == DB_ROW ? db_column_int64(h, 0) : -2;
		if (id != cur && cur >= 0) {
			while (j < n && r[j].id < cur)
				j++;
			if (j < n && r[j].id == cur) {
				double p50 = srv_hist_percentile_ms(counts, 0.5);
				double p95 = srv_hist_percentile_ms(counts, 0.95);
				json_object_set_new(r[j].row, "p50_ms", srv_ms_or_null(p50));
				json_object_set_new(r[j].row, "p95_ms", srv_ms_or_null(p95));
				r[j].key = strcmp(sort, "p50_ms") ? p95 : p50;
			}
		}
		if (rc != DB_ROW)
			break;
		if (id != cur) {
			memset(counts, 0, sizeof counts);
			cur = id;
		}
		counts[db_column_int(h, 1) % SRV_HIST_BUCKETS] += db_column_int64(h, 2);
	}
	if (srv_view_done(v, h, rc) < 0)
		goto out;
	qsort(r, n, sizeof *r, desc ? by_key_desc : by_key_asc);
	for (size_t i = (size_t)offset; i < n && i < (size_t)(offset + limit); i++)
		json_array_append(rows, r[i].row);
	*total = (int64_t)n;
	ret = 0;
out:
	for (size_t i = 0; i < n; i++)
		json_decref(r[i].row);
	free(r);
	return ret;
}

json_t *srv_view_functions(struct srv_view *v, unsigned *status)
{
	const char *sort = v->query(v->qctx, "sort"), *order = v->query(v->qctx, "order");
	const char *dept = v->query(v->qctx, "department"), *q = v->query(v->qctx, "q");
	const char *state = v->query(v->qctx, "state");
	int64_t offset, limit, threshold;
	size_t i;

	sort = sort ? sort : "nsm";
	for (i = 0; i < sizeof sortable / sizeof *sortable; i++)
		if (!strcmp(sort, sortable[i]))
			break;
	if (i == sizeof sortable / sizeof *sortable)
		return srv_bad_param(v, status, "sort", "one of the row fields");
	if (order && strcmp(order, "asc") && strcmp(order, "desc"))
		return srv_bad_param(v, status, "order", "asc or desc");
	int desc = !order || !strcmp(order, "desc");
	if (state && !srv_state_ok(state))
		return srv_bad_param(v, status, "state",
				 "failing, working, underused, never_called or idle");
	if (param_int(v, "offset", 0, 0, INT32_MAX, &offset) < 0)
		return srv_bad_param(v, status, "offset", "an integer >= 0");
	if (param_int(v, "limit", 100, 1, MAX_LIST, &limit) < 0)
		return srv_bad_param(v, status, "limit", "an integer 1..500");
	if (param_int(v, "threshold", 10, 1, INT32_MAX, &threshold) < 0)
		return srv_bad_param(v, status, "threshold", "an integer >= 1");

	int by_percentile = !strncmp(sort, "p50", 3) || !strncmp(sort, "p95", 3);
	char sql[sizeof SRV_FN_ROWS + 512];
	snprintf(sql, sizeof sql, SRV_FN_ROWS
		 "SELECT id, name, department, value_weight, calls, errors, error_rate, max_ms,"
		 " total_ms, self_ms, nsm, share, file, line, first_seen, last_seen, state,"
		 " COUNT(*) OVER (), estimated_calls, decisions, loops, returns, nodes_count, lines,"
		 " has_tests FROM rows WHERE (CAST(?6 AS TEXT) IS NULL OR department = ?6)"
		 " AND (CAST(?7 AS TEXT) IS NULL OR instr(lower(name), lower(?7)) > 0) AND (CAST(?8 AS TEXT) IS NULL OR state = ?8)"
		 " ORDER BY %s %s, name ASC LIMIT ?9 OFFSET ?10",
		 by_percentile ? "name" : sort, desc ? "DESC NULLS LAST" : "ASC NULLS FIRST");
	struct db_stmt *s = prepare(v, sql);
	if (!s)
		return NULL;
	srv_bind_fn_rows(v, s, threshold);
	if (dept)
		db_bind_text(s, 6, dept, -1);
	if (q)
		db_bind_text(s, 7, q, -1);
	if (state)
		db_bind_text(s, 8, state, -1);
	db_bind_int64(s, 9, by_percentile ? INT64_MAX : limit);
	db_bind_int64(s, 10, by_percentile ? 0 : offset);

	json_t *rows = json_array(), *out = NULL;
	int64_t total = 0;
	int rc;
	if (by_percentile) {
		if (percentile_page(v, s, sort, desc, offset, limit, rows, &total) < 0)
			goto out;
	} else {
		while ((rc = db_step(s)) == DB_ROW) {
			int64_t counts[SRV_HIST_BUCKETS];
			if (srv_fn_hist(v, db_column_int64(s, 0), v->since, counts) < 0)
				goto out;
			total = db_column_int64(s, 17);
			json_array_append_new(rows, fn_row(s, srv_hist_percentile_ms(counts, 0.5),
							   srv_hist_percentile_ms(counts, 0.95)));
		}
		if (srv_view_done(v, s, rc) < 0)
			goto out;
		if (json_array_size(rows) == 0 && offset > 0) {
			/* past the end: the count comes from the first page */
			db_bind_int64(s, 10, 0);
			if ((rc = db_step(s)) == DB_ROW)
				total = db_column_int64(s, 17);
			else if (srv_view_done(v, s, rc) < 0)
				goto out;
		}
	}
	out = json_pack("{sIsO}", "total", (json_int_t)total, "rows", rows);
out:
	json_decref(rows);
	db_finalize(s);
	return out;
}

/* ---- office ---------------------------------------------------------------------- */

json_t *srv_view_office(struct srv_view *v, unsigned *status)
{
	int64_t threshold;
	if (param_int(v, "threshold", 10, 1, INT32_MAX, &threshold) < 0)
		return srv_bad_param(v, status, "threshold", "an integer >= 1");
	struct db_stmt *s = srv_stmt(v->st, SRV_FN_ROWS
		"SELECT department, name, state, calls FROM rows ORDER BY department, name", v->err);
	if (!s)
		return NULL;
	srv_bind_fn_rows(v, s, threshold);
	json_t *depts = json_array(), *room = NULL;
	int rc;
	while ((rc = db_step(s)) == DB_ROW) {
		const char *d = db_column_text(s, 0);
		if (!room || strcmp(json_string_value(json_object_get(room, "department")), d)) {
			room = json_pack("{sss[]}", "department", d, "functions");
			json_array_append_new(depts, room);
		}
		json_array_append_new(json_object_get(room, "functions"),
				      json_pack("{sososo}", "name", srv_col_text(s, 1), "state",
						srv_col_text(s, 2), "calls", srv_col_int(s, 3)));
	}
	if (srv_view_done(v, s, rc) < 0) {
		json_decref(depts);
		return NULL;
	}
	return json_pack("{so}", "departments", depts);
}

/* ---- debt ---------------------------------------------------------------------- */

static int bin(double x)
{
	int b = (int)floor(x * DEBT_BINS);
	return b < 0 ? 0 : b >= DEBT_BINS ? DEBT_BINS - 1 : b;
}

json_t *srv_view_debt(struct srv_view *v, unsigned *status)
{
	struct db_stmt *s = srv_stmt(v->st,
		"WITH w AS (SELECT function, SUM(calls) c, SUM(errors) e, SUM(value) v FROM buckets"
		"  WHERE project = ?1 AND bucket_start >= ?2 GROUP BY function),"
		" tot AS (SELECT COALESCE(SUM(v), 0) v FROM w),"
		" p AS (SELECT f.name, w.e * 1.0 / w.c er, CASE WHEN tot.v > 0 THEN w.v / tot.v ELSE 0.0 END sh"
		"  FROM w JOIN functions f ON f.id = w.function CROSS JOIN tot WHERE w.c > 0)"
		" SELECT name, er, sh, er * sh debt FROM p ORDER BY debt DESC, name", v->err);
	if (!s)
		return NULL;
	db_bind_int64(s, 1, v->project);
	db_bind_int64(s, 2, v->since);
	int64_t cells[DEBT_BINS][DEBT_BINS] = { { 0 } };
	json_t *points = json_array(), *out = NULL;
	int rc;
	while ((rc = db_step(s)) == DB_ROW) {
		double er = db_column_double(s, 1), sh = db_column_double(s, 2);
		cells[bin(er)][bin(sh)]++;
		json_array_append_new(points, json_pack("{sosfsfsf}", "name", srv_col_text(s, 0),
				      "error_rate", er, "share", sh, "debt", db_column_double(s, 3)));
	}
	if (srv_view_done(v, s, rc) < 0)
		goto fail;
	json_t *cl = json_array();
	for (int y = 0; y < DEBT_BINS; y++)
		for (int x = 0; x < DEBT_BINS; x++)
			if (cells[y][x])
				json_array_append_new(cl, json_pack("{sisisI}", "x", x, "y", y,
								    "count", (json_int_t)cells[y][x]));

	/* The trajectory: per trend step, the sum over functions of
	 * error_rate x share within that step, i.e. sum(e/c * v) / sum(v). */
	size_t n = trend_points(v);
	json_t *traj = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(traj, json_pack("{sIsf}", "t",
			(json_int_t)(trend_base(v) + (int64_t)i * v->step), "debt", 0.0));
	out = json_pack("{sososo}", "points", points, "cells", cl, "trajectory", traj);
	points = NULL;
	s = srv_stmt(v->st,
		"WITH pf AS (SELECT (bucket_start - ?2) / ?3 k, SUM(calls) c, SUM(errors) e, SUM(value) v"
		"  FROM buckets WHERE project = ?1 AND bucket_start >= ?4 GROUP BY k, function)"
		" SELECT k, SUM(CASE WHEN c > 0 THEN e * 1.0 / c * v ELSE 0.0 END), SUM(v) FROM pf GROUP BY k",
		v->err);
	if (!s)
		goto fail;
	db_bind_int64(s, 1, v->project);
	db_bind_int64(s, 2, trend_base(v));
	db_bind_int64(s, 3, v->step);
	db_bind_int64(s, 4, v->since);
	while ((rc = db_step(s)) == DB_ROW) {
		json_t *pt = json_array_get(traj, (size_t)db_column_int64(s, 0));
		if (pt)
			json_object_set_new(pt, "debt", json_real(srv_ratio(db_column_double(s, 1),
									   db_column_double(s, 2))));
	}
	if (srv_view_done(v, s, rc) == 0)
		return out;
fail:
	json_decref(points);
	json_decref(out);
	return NULL;
}

/* ---- underuse ------------------------------------------------------------------ */

json_t *srv_view_underuse(struct srv_view *v, unsigned *status)
{
	int64_t threshold;
	int rc;
	if (param_int(v, "threshold", 10, 1, INT32_MAX, &threshold) < 0)
		return srv_bad_param(v, status, "threshold", "an integer >= 1");
	struct db_stmt *s = srv_stmt(v->st,
		"WITH m AS (SELECT function, SUM(calls) c FROM buckets WHERE project = ?1"
		"  AND bucket_start >= ?2 GROUP BY function)"
		" SELECT f.name, m.c, f.file, f.line FROM m JOIN functions f ON f.id = m.function"
		" WHERE m.c > 0 AND m.c < ?3 ORDER BY m.c, f.name", v->err);
	if (!s)
		return NULL;
	db_bind_int64(s, 1, v->project);
	db_bind_int64(s, 2, (int64_t)v->now - SRV_LAST_30D);
	db_bind_int64(s, 3, threshold);
	json_t *under = json_array(), *never = json_array();
	while ((rc = db_step(s)) == DB_ROW)
		json_array_append_new(under, json_pack("{sosososo}", "name", srv_col_text(s, 0),
				      "calls_30d", srv_col_int(s, 1), "file", srv_col_text(s, 2), "line", srv_col_int(s, 3)));
	if (srv_view_done(v, s, rc) < 0)
		goto fail;
	s = srv_stmt(v->st, "SELECT name, department, file, line FROM functions WHERE project = ?1"
		     " AND in_inventory = 1 AND calls_total = 0 ORDER BY department, name", v->err);
	if (!s)
		goto fail;
	db_bind_int64(s, 1, v->project);
	while ((rc = db_step(s)) == DB_ROW)
		json_array_append_new(never, json_pack("{sosososo}", "name", srv_col_text(s, 0),
				      "department", srv_col_text(s, 1), "file", srv_col_text(s, 2), "line", srv_col_int(s, 3)));
	if (srv_view_done(v, s, rc) < 0)
		goto fail;
	return json_pack("{sIsoso}", "threshold", (json_int_t)threshold, "underused", under,
			 "never_called", never);
fail:
	json_decref(under);
	json_decref(never);
	return NULL;
}
