/* api_code.c: the views that CODENSM_MODE=full unlocks (docs/api.md): one
 * function's flow, and the code view: the unique-IP vs boilerplate split,
 * the test-coverage reads and complexity x error rate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define LOAD_BEARING_MAX 20
#define POINTS_MAX 500

/* Boilerplate: a trivial shape, no decision, no loop and at most this many
 * lines (getters, setters, thin wrappers, empty constructors); every other
 * analysed function is unique IP. */
#define BOILERPLATE_MAX_LINES 5

int srv_flow_boilerplate(int64_t decisions, int64_t loops, int64_t lines)
{
	return decisions == 0 && loops == 0 && lines <= BOILERPLATE_MAX_LINES;
}

/* McCabe's count for the analysis's numbers: one path, plus one for every
 * branch (decisions, including && || ?:) and every loop. */
int64_t srv_flow_complexity(int64_t decisions, int64_t loops)
{
	return decisions + loops + 1;
}

/* The stored flow of ?fn= (a JSON object in *flow) and its row: 1, 0 with
 * status 400/404, -1 database error. */
int srv_flow_find(struct srv_view *v, unsigned *status, const char **name, json_t **row)
{
	struct db_stmt *s;
	int found = srv_fn_row(v, status, "SELECT flow, service, batch_id, received_at, decisions,"
			       " loops, lines, build_id FROM flows WHERE project = ?1 AND name = ?2",
			       "no flow for function ", "", name, &s);
	if (found <= 0)
		return found;
	json_t *flow = json_loads(db_column_text(s, 0), 0, NULL);
	int64_t d = db_column_int64(s, 4), l = db_column_int64(s, 5);
	*row = json_pack("{sososososfsbsI}", "flow", flow ? flow : json_object(),
			 "service", srv_col_text(s, 1), "build_id", srv_col_text(s, 7),
			 "batch_id", srv_col_text(s, 2),
			 "received_at", db_column_double(s, 3),
			 "boilerplate", srv_flow_boilerplate(d, l, db_column_int64(s, 6)),
			 "complexity", (json_int_t)srv_flow_complexity(d, l));
	db_reset(s);
	return 1;
}

json_t *srv_view_flow(struct srv_view *v, unsigned *status)
{
	const char *name;
	json_t *row = NULL;
	if (srv_flow_find(v, status, &name, &row) <= 0)
		return NULL;
	json_object_set_new(row, "name", json_string(name));
	return row;
}

/* ---- the code view --------------------------------------------------------- */

struct side {
	int64_t functions;
	double nsm;
};

static json_t *side_json(const struct side *s, int64_t functions, double nsm)
{
	return json_pack("{sIsfsfsf}", "functions", (json_int_t)s->functions,
			 "function_share", srv_ratio((double)s->functions, (double)functions),
			 "nsm", s->nsm, "nsm_share", srv_ratio(s->nsm, nsm));
}

/* One analysed function of the window, as the lists show it. */
static json_t *code_row(struct db_stmt *s, double nsm_analysed)
{
	int64_t d = db_column_int64(s, 6), l = db_column_int64(s, 7);
	json_t *o = json_object();
	json_object_set_new(o, "name", srv_col_text(s, 0));
	json_object_set_new(o, "department", srv_col_text(s, 1));
	json_object_set_new(o, "nsm", srv_col_real(s, 2));
	json_object_set_new(o, "nsm_share", json_real(srv_ratio(db_column_double(s, 2),
								 nsm_analysed)));
	json_object_set_new(o, "calls", srv_col_int(s, 3));
	json_object_set_new(o, "errors", srv_col_int(s, 4));
	json_object_set_new(o, "error_rate", srv_col_real(s, 5));
	json_object_set_new(o, "complexity", json_integer(srv_flow_complexity(d, l)));
	json_object_set_new(o, "decisions", srv_col_int(s, 6));
	json_object_set_new(o, "loops", srv_col_int(s, 7));
	json_object_set_new(o, "lines", srv_col_int(s, 8));
	json_object_set_new(o, "has_tests", json_boolean(db_column_int(s, 9)));
	json_object_set_new(o, "boilerplate",
			    json_boolean(srv_flow_boilerplate(d, l, db_column_int64(s, 8))));
	return o;
}

/* Two passes over the same rows (the first sums, the second lists with
 * shares of the sums): O(functions), no temporary table. */
json_t *srv_view_code(struct srv_view *v, unsigned *status)
{
	(void)status;
	struct db_stmt *s = srv_stmt(v->st, SRV_FN_ROWS
		"SELECT name, department, nsm, calls, errors, error_rate, decisions, loops, lines,"
		" has_tests, nodes_count IS NOT NULL FROM rows ORDER BY nsm DESC, name", v->err);
	if (!s)
		return NULL;
	struct side ip = { 0 }, boiler = { 0 }, tested = { 0 }, untested = { 0 };
	int64_t all = 0;
	int rc;
	srv_bind_fn_rows(v, s, 10);
	while ((rc = db_step(s)) == DB_ROW) {
		all++;
		if (!db_column_int(s, 10))
			continue;
		double nsm = db_column_double(s, 2);
		struct side *side = srv_flow_boilerplate(db_column_int64(s, 6),
							 db_column_int64(s, 7),
							 db_column_int64(s, 8)) ? &boiler : &ip;
		struct side *t = db_column_int(s, 9) ? &tested : &untested;
		side->functions++, side->nsm += nsm;
		t->functions++, t->nsm += nsm;
	}
	if (srv_view_done(v, s, rc) < 0)
		return NULL;
	int64_t analysed = ip.functions + boiler.functions;
	double nsm = ip.nsm + boiler.nsm;
	json_t *untested_list = json_array(), *points = json_array();
	srv_bind_fn_rows(v, s, 10);
	while ((rc = db_step(s)) == DB_ROW) {
		if (!db_column_int(s, 10))
			continue;
		if (!db_column_int(s, 9) && db_column_double(s, 2) > 0 &&
		    json_array_size(untested_list) < LOAD_BEARING_MAX)
			json_array_append_new(untested_list, code_row(s, nsm));
		if (db_column_int64(s, 3) > 0 && json_array_size(points) < POINTS_MAX)
			json_array_append_new(points, code_row(s, nsm));
	}
	if (srv_view_done(v, s, rc) < 0) {
		json_decref(untested_list);
		json_decref(points);
		return NULL;
	}
	return json_pack("{sIsIsIsfs{sisisi}s{soso}s{sIsIsfsfsf}soso}",
		"functions", (json_int_t)all, "analysed", (json_int_t)analysed,
		"not_analysed", (json_int_t)(all - analysed), "nsm_analysed", nsm,
		"boilerplate_rule", "decisions", 0, "loops", 0, "max_lines", BOILERPLATE_MAX_LINES,
		"split", "unique_ip", side_json(&ip, analysed, nsm),
		"boilerplate", side_json(&boiler, analysed, nsm),
		"tests", "with_tests", (json_int_t)tested.functions,
		"without_tests", (json_int_t)untested.functions,
		"tested_share", srv_ratio((double)tested.functions, (double)analysed),
		"untested_nsm", untested.nsm, "untested_nsm_share", srv_ratio(untested.nsm, nsm),
		"load_bearing_untested", untested_list, "complexity_vs_errors", points);
}
