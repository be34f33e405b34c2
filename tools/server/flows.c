/* flows.c: the `flows` section of an ingest body (CODENSM_MODE=full,
 * docs/flows.md): each entry checked field by field, then stored as the
 * function's latest flow, rebuilt from the checked fields only, so that a
 * label or any other field a client adds is never kept or shown. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define MAX_CALLS_OUT 40
#define MAX_COUNT 100000000   /* no function has more nodes, lines or branches */

static const char *const kinds[] = { "start", "decision", "loop", "block", "end", "error", NULL };
static const char *const counts[] = { "decisions", "loops", "returns", "nodes_count", "lines", NULL };

static int bad(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(char *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, SRV_ERRLEN, fmt, ap);
	va_end(ap);
	return -1;
}

static int name_ok(json_t *v)
{
	size_t n = json_string_length(v);
	return json_is_string(v) && n >= 1 && n <= SRV_MAX_NAME &&
	       strlen(json_string_value(v)) == n;
}

static int count_ok(json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0 &&
	       json_integer_value(v) <= MAX_COUNT;
}

int srv_flow_check(json_t *f, size_t i, char *err)
{
	if (!json_is_object(f))
		return bad(err, "flows[%zu]: expected an object", i);
	if (!name_ok(json_object_get(f, "name")))
		return bad(err, "flows[%zu].name: expected a string of 1..%d bytes", i, SRV_MAX_NAME);
	for (const char *const *c = counts; *c; c++)
		if (!count_ok(json_object_get(f, *c)))
			return bad(err, "flows[%zu].%s: expected an integer 0..%d", i, *c, MAX_COUNT);
	json_t *nodes = json_object_get(f, "nodes"), *edges = json_object_get(f, "edges"), *x;
	size_t k, nn = json_array_size(nodes);
	if (!json_is_array(nodes) || nn == 0)
		return bad(err, "flows[%zu].nodes: expected a non-empty array", i);
	if ((json_int_t)nn != json_integer_value(json_object_get(f, "nodes_count")))
		return bad(err, "flows[%zu].nodes_count: %lld, but nodes has %zu", i,
			   (long long)json_integer_value(json_object_get(f, "nodes_count")), nn);
	json_array_foreach(nodes, k, x) {
		const char *t = json_string_value(json_object_get(x, "type"));
		const char *const *kind = kinds;
		while (t && *kind && strcmp(*kind, t))
			kind++;
		if (!t || !*kind)
			return bad(err, "flows[%zu].nodes[%zu].type: expected start, decision, loop,"
				   " block, end or error", i, k);
	}
	if (!json_is_array(edges))
		return bad(err, "flows[%zu].edges: expected an array of [from, to]", i);
	json_array_foreach(edges, k, x) {
		json_t *a = json_array_get(x, 0), *b = json_array_get(x, 1);
		if (json_array_size(x) != 2 || !count_ok(a) || !count_ok(b) ||
		    (size_t)json_integer_value(a) >= nn || (size_t)json_integer_value(b) >= nn)
			return bad(err, "flows[%zu].edges[%zu]: expected [from, to], node numbers"
				   " 0..%zu", i, k, nn - 1);
	}
	json_t *calls = json_object_get(f, "calls_out");
	if (!json_is_array(calls) || json_array_size(calls) > MAX_CALLS_OUT)
		return bad(err, "flows[%zu].calls_out: expected an array of at most %d names", i,
			   MAX_CALLS_OUT);
	json_array_foreach(calls, k, x)
		if (!name_ok(x))
			return bad(err, "flows[%zu].calls_out[%zu]: expected a string of 1..%d bytes",
				   i, k, SRV_MAX_NAME);
	if (!json_is_boolean(json_object_get(f, "has_tests")))
		return bad(err, "flows[%zu].has_tests: expected true or false", i);
	return 0;
}

/* The entry as stored: its checked fields, in the seed's order. */
static char *canonical(json_t *f)
{
	json_t *o = json_object(), *nodes = json_array(), *x;
	size_t k;
	json_array_foreach(json_object_get(f, "nodes"), k, x)
		json_array_append_new(nodes, json_pack("{ss}", "type",
						       json_string_value(json_object_get(x, "type"))));
	json_object_set(o, "name", json_object_get(f, "name"));
	json_object_set_new(o, "nodes", nodes);
	json_t *edges = json_array();
	json_array_foreach(json_object_get(f, "edges"), k, x)
		json_array_append_new(edges, json_pack("[II]", json_integer_value(json_array_get(x, 0)),
						       json_integer_value(json_array_get(x, 1))));
	json_object_set_new(o, "edges", edges);
	for (const char *const *c = counts; *c; c++)
		json_object_set(o, *c, json_object_get(f, *c));
	json_object_set(o, "calls_out", json_object_get(f, "calls_out"));
	json_object_set(o, "has_tests", json_object_get(f, "has_tests"));
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

int srv_flows_apply(struct srv_store *st, int64_t project, json_t *root, double now, char *err)
{
	json_t *meta = json_object_get(root, "_meta"), *f;
	json_t *service = json_object_get(meta, "service"), *bid = json_object_get(meta, "batch_id");
	json_t *build = json_object_get(meta, "build_id");
	size_t i;
	json_array_foreach(json_object_get(root, "flows"), i, f) {
		struct db_stmt *s = srv_stmt(st,
			"INSERT INTO flows(project, name, flow, decisions, loops, returns, nodes_count,"
			" lines, has_tests, service, batch_id, received_at, build_id)"
			" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
			" ON CONFLICT(project, name) DO UPDATE SET flow = excluded.flow,"
			" decisions = excluded.decisions, loops = excluded.loops,"
			" returns = excluded.returns, nodes_count = excluded.nodes_count,"
			" lines = excluded.lines, has_tests = excluded.has_tests,"
			" service = excluded.service, batch_id = excluded.batch_id,"
			" build_id = excluded.build_id,"
			" received_at = excluded.received_at", err);
		char *text = s ? canonical(f) : NULL;
		if (!text)
			return s ? bad(err, "out of memory") : -1;
		db_bind_int64(s, 1, project);
		db_bind_text(s, 2, json_string_value(json_object_get(f, "name")), -1);
		db_bind_text(s, 3, text, -1);
		for (int c = 0; counts[c]; c++)
			db_bind_int64(s, 4 + c, json_integer_value(json_object_get(f, counts[c])));
		db_bind_int(s, 9, json_is_true(json_object_get(f, "has_tests")));
		if (json_is_string(service))
			db_bind_text(s, 10, json_string_value(service), -1);
		if (json_is_string(bid))
			db_bind_text(s, 11, json_string_value(bid), -1);
		db_bind_double(s, 12, now);
		if (json_is_string(build))
			db_bind_text(s, 13, json_string_value(build), -1);
		free(text);
		int rc = db_step(s);
		db_reset(s);
		if (rc != DB_DONE)
			return bad(err, "database: %s", db_errmsg(srv_store_db(st)));
	}
	return 0;
}
