/* api_rca.c: GET /api/projects/{project}/incidents/{id}/rca: the three
 * levels of docs/api.md "Root cause": the failing chain, what the
 * automatic probe caught since, and what changed around the first
 * occurrence (a new build, a new caller, a latency shift). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define BEFORE_S      3600   /* new builds, new callers, latency: the hour before the first occurrence */
#define AFTER_S       1800   /* new callers, latency: the half hour after it */
#define BUILD_AFTER_S 60     /* a build first seen up to a minute after it (one flush late) */
#define SHIFT_RATIO   1.5    /* p95 after / p95 before */
#define SHIFT_CALLS   20     /* calls needed on each side */
#define RCA_LOG       50     /* log records shown */

static void reply(struct srv_reply *r, unsigned status, json_t *body)
{
	r->status = status;
	r->body = body;
}

/* The status that says the most, over the processes: one emitting is
 * enough to say the probe works. */
static const char *best_status(json_t *procs, int active)
{
	static const char *const order[] = { "EMITTING", "INSTALLED", "RECEIVED", "ERROR", "EXPIRED" };
	json_t *p;
	size_t i;
	for (size_t k = 0; k < 5; k++)
		json_array_foreach(procs, i, p)
			if (!strcmp(json_string_value(json_object_get(p, "status")), order[k]))
				return order[k];
	return active ? "PENDING" : "EXPIRED";
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[n]. */
static double rank(const double *v, size_t n, double q)
{
	size_t k = (size_t)ceil(q * (double)n);
	return v[k ? k - 1 : 0];
}

/* callers and threads from the stack chains and the log records */
static void level2_from(json_t *l2, json_t *stack, json_t *log)
{
	json_t *chains = json_object_get(json_object_get(stack, "results"), "stacks"), *c, *rec;
	json_t *callers = json_object(), *list = json_array(), *v;
	size_t i;
	json_array_foreach(chains, i, c) {
		json_t *chain = json_object_get(c, "chain");
		size_t n = json_array_size(chain);
		const char *caller = n >= 2 ? json_string_value(json_array_get(chain, n - 2)) : NULL;
		if (!caller)
			caller = "(none)";
		json_int_t had = json_integer_value(json_object_get(callers, caller));
		json_object_set_new(callers, caller, json_integer(had +
				    json_integer_value(json_object_get(c, "count"))));
	}
	const char *k;
	json_object_foreach(callers, k, v)
		json_array_append_new(list, json_pack("{sssO}", "name", k, "count", v));
	json_decref(callers);
	/* most calls first, then by name */
	size_t n = json_array_size(list);
	for (size_t a = 1; a < n; a++)
		for (size_t b = a; b > 0; b--) {
			json_t *x = json_array_get(list, b - 1), *y = json_array_get(list, b);
			json_int_t cx = json_integer_value(json_object_get(x, "count"));
			json_int_t cy = json_integer_value(json_object_get(y, "count"));
			if (cx > cy || (cx == cy && strcmp(json_string_value(json_object_get(x, "name")),
							   json_string_value(json_object_get(y, "name"))) <= 0))
				break;
			json_incref(x);
			json_array_set(list, b - 1, y);
			json_array_set_new(list, b, x);
		}
	json_object_set_new(l2, "callers", list);
	json_object_set_new(l2, "chains", chains ? json_incref(chains) : json_array());

	json_t *records = json_object_get(json_object_get(log, "results"), "log");
	size_t nr = json_array_size(records), nd = 0;
	double *d = calloc(nr ? nr : 1, sizeof *d);
	json_t *threads = json_object();
	json_array_foreach(records, i, rec) {
		char key[600];
		snprintf(key, sizeof key, "%s|%s|%lld|%lld",
			 json_string_value(json_object_get(rec, "service")),
			 json_string_value(json_object_get(rec, "host")),
			 (long long)json_integer_value(json_object_get(rec, "pid")),
			 (long long)json_integer_value(json_object_get(rec, "thread")));
		json_object_set_new(threads, key, json_true());
		if (d && json_is_number(json_object_get(rec, "duration_ms")))
			d[nd++] = json_number_value(json_object_get(rec, "duration_ms"));
	}
	json_object_set_new(l2, "threads", json_integer((json_int_t)json_object_size(threads)));
	json_decref(threads);
	if (d && nd) {
		qsort(d, nd, sizeof *d, cmp_double);
		json_object_set_new(l2, "durations", json_pack("{sfsfsf}", "p50_ms", rank(d, nd, 0.5),
			"p95_ms", rank(d, nd, 0.95), "max_ms", d[nd - 1]));
	} else {
		json_object_set_new(l2, "durations", json_pack("{snsnsn}", "p50_ms", "p95_ms", "max_ms"));
	}
	free(d);
	json_t *shown = json_array();
	json_array_foreach(records, i, rec)
		if (i < RCA_LOG)
			json_array_append(shown, rec);
	json_object_set_new(l2, "log", shown);
}

static json_t *level2(struct srv_store *st, const struct srv_project *p, json_t *inc, double now,
		      char *err)
{
	char id[SRV_PROBE_ID_MAX + 8], logid[SRV_PROBE_ID_MAX + 16];
	int on, found;
	json_t *l2 = json_pack("{sissso}", "level", 2, "title", "What the automatic probe caught",
			       "probe_id", json_null());
	const char *fn = json_string_value(json_object_get(inc, "function"));
	int rc = srv_probe_auto_for(st, p->id, json_integer_value(json_object_get(inc, "id")), fn, now,
				    id, sizeof id, err);
	if (rc < 0 || srv_probe_settings_get(st, p->id, &on, err) < 0)
		goto fail;
	json_t *stack = NULL, *log = NULL, *row;
	if (rc) {
		if ((row = srv_probe_row(st, p->id, id, &found, err)))
			stack = srv_probe_json(st, p->id, row, now, 1, err);
		json_decref(row);
		if (!stack)
			goto fail;
		snprintf(logid, sizeof logid, "%s-log", id);
		if ((row = srv_probe_row(st, p->id, logid, &found, err)))
			log = srv_probe_json(st, p->id, row, now, 1, err);
		json_decref(row);
		if (!log && !found && err[0] == 0)
			log = json_object();     /* removed by hand: the stack alone */
		if (!log) {
			json_decref(stack);
			goto fail;
		}
		json_object_set_new(l2, "probe_id", json_string(id));
		json_object_set_new(l2, "status", json_string(best_status(
			json_object_get(stack, "processes"),
			!strcmp(json_string_value(json_object_get(stack, "state")), "active"))));
		json_object_set(l2, "occurrences", json_object_get(stack, "hits"));
	} else {
		json_object_set_new(l2, "status", json_string(on ? "none" : "off"));
		json_object_set_new(l2, "occurrences", json_integer(0));
	}
	level2_from(l2, stack, log);
	json_decref(stack);
	json_decref(log);
	return l2;
fail:
	json_decref(l2);
	return NULL;
}

static int64_t bucket_of(double t)
{
	return (int64_t)floor(t / SRV_BUCKET_SECONDS) * SRV_BUCKET_SECONDS;
}

static int shift(struct srv_store *st, int64_t project, const char *name, double first,
		 json_t *out, char *err)
{
	int64_t before[SRV_HIST_BUCKETS], after[SRV_HIST_BUCKETS], nb = 0, na = 0;
	int64_t fb = bucket_of(first);
	if (srv_rca_hist(st, project, name, fb - BEFORE_S, fb, before, err) < 0 ||
	    srv_rca_hist(st, project, name, fb, fb + AFTER_S + 1, after, err) < 0)
		return -1;
	for (int b = 0; b < SRV_HIST_BUCKETS; b++)
		nb += before[b], na += after[b];
	if (nb < SHIFT_CALLS || na < SHIFT_CALLS)
		return 0;
	double p_before = srv_hist_percentile_ms(before, 0.95);
	double p_after = srv_hist_percentile_ms(after, 0.95);
	double ratio = srv_ratio(p_after, p_before);
	if (ratio >= SHIFT_RATIO)
		json_array_append_new(out, json_pack("{sssfsfsfsIsI}", "name", name,
			"before_p95_ms", p_before, "after_p95_ms", p_after, "ratio", ratio,
			"before_calls", (json_int_t)nb, "after_calls", (json_int_t)na));
	return 0;
}

static json_t *level3(struct srv_store *st, const struct srv_project *p, json_t *inc, char *err)
{
	double first = json_number_value(json_object_get(inc, "first_seen"));
	const char *fn = json_string_value(json_object_get(inc, "function"));
	json_t *build = srv_rca_new_build(st, p->id, first - BEFORE_S, first + BUILD_AFTER_S, err);
	json_t *callers = build ? srv_rca_new_callers(st, p->id, fn, first - BEFORE_S, first + AFTER_S,
						      err) : NULL;
	json_t *callees = callers ? srv_rca_callees(st, p->id, fn, bucket_of(first) - BEFORE_S, err)
				  : NULL;
	json_t *shifts = json_array(), *c;
	size_t i;
	if (!callees || shift(st, p->id, fn, first, shifts, err) < 0)
		goto fail;
	json_array_foreach(callees, i, c)
		if (strcmp(json_string_value(json_object_get(c, "name")), fn) &&
		    shift(st, p->id, json_string_value(json_object_get(c, "name")), first, shifts, err) < 0)
			goto fail;
	json_decref(callees);
	return json_pack("{sisssososo}", "level", 3, "title", "What changed around the first occurrence",
			 "new_build", build, "new_callers", callers, "latency_shifts", shifts);
fail:
	json_decref(build);
	json_decref(callers);
	json_decref(callees);
	json_decref(shifts);
	return NULL;
}

void srv_api_rca(struct srv_store *st, const struct srv_project *p, int64_t incident, double now,
		 struct srv_reply *r)
{
	char err[SRV_ERRLEN] = "";
	json_t *inc = NULL, *l2 = NULL, *l3 = NULL;
	int found = srv_rca_incident(st, p->id, incident, &inc, err);
	if (found == 0)
		return reply(r, 404, srv_error_json("no incident %lld", (long long)incident));
	if (found < 0 || !(l2 = level2(st, p, inc, now, err)) || !(l3 = level3(st, p, inc, err))) {
		char line[SRV_ERRLEN + 100];
		snprintf(line, sizeof line, "rca for project '%s': %s", p->name, err);
		srv_store_log(st, line);
		json_decref(inc);
		json_decref(l2);
		return reply(r, 503, srv_error_json("database unavailable"));
	}
	json_t *l1 = json_pack("{sisssO}", "level", 1, "title", "The failing chain", "chain",
			       json_object_get(inc, "chain"));
	reply(r, 200, json_pack("{so s[ooo]}", "incident", inc, "levels", l1, l2, l3));
}
