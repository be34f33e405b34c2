/* api_probes.c: the probes endpoints of docs/api.md ("Probes"): list,
 * show (PROBE and its results: proberesults.c), create, renew, remove,
 * and the project's probe settings.  Writes need the manage key; the
 * checks of a new spec are the runtime's (docs/probes.md), so that what the
 * server accepts, the runtime applies. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define LIFESPAN_MAX 10080.0     /* minutes: a week, as the runtime */
#define LIFESPAN_DEFAULT 10.0

static const char READ_ONLY[] =
	"this key is read-only: creating probes needs the project's manage key (cnsmm_...)";

static void reply(struct srv_reply *r, unsigned status, json_t *body)
{
	r->status = status;
	r->body = body;
}

/* ---- checking a new probe -------------------------------------------------------- */

static int name_chars_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n < 1 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

static int bad(char *err, const char *msg)
{
	snprintf(err, SRV_ERRLEN, "%s", msg);
	return -1;
}

static int only_fields(json_t *o, const char *const *fields, size_t n, const char *where, char *err)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		size_t i;
		for (i = 0; i < n && strcmp(k, fields[i]); i++)
			;
		if (i == n) {
			snprintf(err, SRV_ERRLEN, "%s%.100s: unknown field", where, k);
			return -1;
		}
	}
	return 0;
}

/* custom: the runtime's conditions; call_event: whether the probe fires
 * at the call (no duration, no outcome yet). */
static int check_custom(json_t *c, int call_event, char *err)
{
	static const char *const fields[] = { "min_duration_ms", "caller", "errors_only", "sample",
					    "max_hits" };
	json_t *v;
	if (!json_is_object(c))
		return bad(err, "instrument.custom: expected an object");
	if (only_fields(c, fields, 5, "instrument.custom.", err) < 0)
		return -1;
	if ((v = json_object_get(c, "min_duration_ms")) &&
	    (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0))
		return bad(err, "instrument.custom.min_duration_ms: expected a number >= 0");
	if ((v = json_object_get(c, "caller")) &&
	    (!json_is_string(v) || json_string_length(v) < 1 || json_string_length(v) > SRV_MAX_NAME))
		return bad(err, "instrument.custom.caller: expected a name prefix of 1..512 bytes");
	if ((v = json_object_get(c, "errors_only")) && !json_is_boolean(v))
		return bad(err, "instrument.custom.errors_only: expected true or false");
	if ((v = json_object_get(c, "sample")) && (!json_is_integer(v) || json_integer_value(v) < 1))
		return bad(err, "instrument.custom.sample: expected an integer >= 1");
	if ((v = json_object_get(c, "max_hits")) && (!json_is_integer(v) || json_integer_value(v) < 1))
		return bad(err, "instrument.custom.max_hits: expected an integer >= 1");
	if (call_event && (json_number_value(json_object_get(c, "min_duration_ms")) > 0 ||
			   json_is_true(json_object_get(c, "errors_only"))))
		return bad(err, "instrument.custom: min_duration_ms and errors_only need event"
			   " 'return' or 'end'");
	return 0;
}

static int check_instrument(json_t *in, struct srv_probe *p, char **custom, char *err)
{
	static const char *const fields[] = { "type", "name", "value", "event", "custom" };
	json_t *v;
	if (!json_is_object(in))
		return bad(err, "instrument: expected an object with a type");
	if (only_fields(in, fields, 5, "instrument.", err) < 0)
		return -1;
	p->type = json_string_value(json_object_get(in, "type"));
	if (!p->type)
		return bad(err, "instrument.type: missing (log, hist, incr, stack or a registered type)");
	const struct srv_probe_kind *k = srv_probe_kind(p->type);
	if (!k && !name_chars_ok(p->type, SRV_PROBE_TYPE_MAX))
		return bad(err, "instrument.type: expected log, hist, incr, stack or a registered"
			   " type name (1..63 of A-Z a-z 0-9 . _ -)");
	if ((v = json_object_get(in, "name"))) {
		if (!json_is_string(v) || json_string_length(v) < 1 ||
		    json_string_length(v) > SRV_PROBE_LABEL_MAX)
			return bad(err, "instrument.name: expected a string of 1..128 bytes");
		p->name = json_string_value(v);
	}
	if ((v = json_object_get(in, "value"))) {
		int i;
		p->value = json_string_value(v);
		for (i = 0; i < 6 && p->value && strcmp(p->value, srv_probe_values[i]); i++)
			;
		if (i == 6 || !p->value)
			return bad(err, "instrument.value: expected duration, caller, thread, error,"
				   " chain or count");
		if (k && !(k->values & 1u << i)) {
			snprintf(err, SRV_ERRLEN, "instrument.value: a %s probe cannot record '%s'",
				 p->type, p->value);
			return -1;
		}
	}
	if ((v = json_object_get(in, "event"))) {
		p->event = json_string_value(v);
		if (!p->event || (strcmp(p->event, "call") && strcmp(p->event, "return") &&
				  strcmp(p->event, "end")))
			return bad(err, "instrument.event: expected call, return or end");
	}
	const char *event = p->event ? p->event : k ? k->event : "call";
	if (k && !strcmp(k->type, "hist") && !strcmp(event, "call"))
		return bad(err, "instrument.event: a histogram needs event 'return' or 'end'");
	if ((v = json_object_get(in, "custom"))) {
		if (check_custom(v, !strcmp(event, "call"), err) < 0)
			return -1;
		if (json_object_size(v))
			*custom = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	}
	return 0;
}

/* The body of POST probes: 0 with p (pointing into body) and *custom
 * (malloc'd or NULL), or -1 with one line naming the field. */
static int check_probe(json_t *body, struct srv_probe *p, char **custom, char *err)
{
	static const char *const fields[] = { "id", "target", "instrument", "lifespan" };
	json_t *v;
	*custom = NULL;
	if (!json_is_object(body))
		return bad(err, "body: expected a json object");
	if (only_fields(body, fields, 4, "", err) < 0)
		return -1;
	if ((v = json_object_get(body, "id"))) {
		p->id = json_string_value(v);
		if (!p->id || !name_chars_ok(p->id, SRV_PROBE_ID_MAX))
			return bad(err, "id: expected 1..64 of A-Z a-z 0-9 . _ -");
	}
	v = json_object_get(body, "target");
	if (!json_is_string(v) || json_string_length(v) < 1 || json_string_length(v) > SRV_MAX_NAME)
		return bad(err, "target: expected a function name or prefix of 1..512 bytes");
	p->target = json_string_value(v);
	p->lifespan = LIFESPAN_DEFAULT;
	if ((v = json_object_get(body, "lifespan"))) {
		if (!json_is_number(v) || !(json_number_value(v) > 0) ||
		    json_number_value(v) > LIFESPAN_MAX)
			return bad(err, "lifespan: expected minutes in (0, 10080]");
		p->lifespan = json_number_value(v);
	}
	return check_instrument(json_object_get(body, "instrument"), p, custom, err);
}

/* ---- the endpoints --------------------------------------------------------------- */

struct req {
	struct srv_store *st;
	const struct srv_project *p;
	double now;
	struct srv_reply *r;
	char err[SRV_ERRLEN];
};

static void db_down(struct req *q)
{
	char line[SRV_ERRLEN + 100];
	snprintf(line, sizeof line, "probes for project '%s': %s", q->p->name, q->err);
	srv_store_log(q->st, line);
	reply(q->r, 503, srv_error_json("database unavailable"));
}

static int begin(struct req *q)
{
	if (srv_begin(q->st, q->err) < 0) {
		db_down(q);
		return -1;
	}
	return 0;
}

static void rollback(struct req *q)
{
	srv_rollback(q->st);
}

/* srv_commit rolls back when COMMIT fails. */
static int commit(struct req *q)
{
	if (srv_commit(q->st, q->err) < 0) {
		db_down(q);
		return -1;
	}
	return 0;
}

/* The PROBE of id, with results or not, as the reply. */
static void answer_probe(struct req *q, const char *id, unsigned status, int results)
{
	int found;
	json_t *row = srv_probe_row(q->st, q->p->id, id, &found, q->err);
	if (!found)
		return row || q->err[0] == 0 ? reply(q->r, 404, srv_error_json("no probe '%s'", id))
					     : db_down(q);
	json_t *probe = srv_probe_json(q->st, q->p->id, row, q->now, results, q->err);
	json_decref(row);
	if (!probe)
		return db_down(q);
	reply(q->r, status, probe);
}

static void list(struct req *q)
{
	json_t *rows = srv_probes_rows(q->st, q->p->id, q->now - SRV_PROBE_LISTED_S, q->err), *row;
	size_t i;
	if (!rows)
		return db_down(q);
	json_t *out = json_array();
	json_array_foreach(rows, i, row) {
		json_t *probe = srv_probe_json(q->st, q->p->id, row, q->now, 0, q->err);
		if (!probe) {
			json_decref(rows);
			json_decref(out);
			return db_down(q);
		}
		json_array_append_new(out, probe);
	}
	json_decref(rows);
	reply(q->r, 200, json_pack("{so}", "probes", out));
}

static json_t *parse_body(struct req *q, const char *body, size_t len)
{
	json_error_t je;
	json_t *j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		reply(q->r, 400, srv_error_json("invalid json: %s at line %d column %d", je.text,
						je.line, je.column));
	return j;
}

static void create(struct req *q, const char *body, size_t len)
{
	struct srv_probe p = { 0 };
	char *custom = NULL, id[SRV_PROBE_ID_MAX + 8];
	json_t *j = parse_body(q, body, len);
	if (!j)
		return;
	if (check_probe(j, &p, &custom, q->err) < 0) {
		reply(q->r, 400, srv_error_json("%s", q->err));
		goto out;
	}
	p.custom = custom;
	p.lastmodified = llround(q->now * 1000) / 1000.0;
	if (begin(q) < 0)
		goto out;
	json_t *active = srv_probes_lock(q->st, q->p->id, q->err) < 0 ? NULL
			 : srv_probes_rows(q->st, q->p->id, q->now, q->err);
	size_t n = json_array_size(active);
	json_decref(active);
	if (!active) {
		rollback(q);
		db_down(q);
		goto out;
	}
	if (n >= SRV_PROBES_ACTIVE_MAX) {
		rollback(q);
		reply(q->r, 400, srv_error_json("too many active probes: at most %d per project;"
						" remove one first", SRV_PROBES_ACTIVE_MAX));
		goto out;
	}
	if (!p.id) {
		if (srv_probe_new_id(q->st, q->p->id, id, sizeof id, q->err) < 0) {
			rollback(q);
			db_down(q);
			goto out;
		}
		p.id = id;
	}
	int rc = srv_probe_insert(q->st, q->p->id, &p, q->now, q->err);
	if (rc != 0) {
		rollback(q);
		if (rc < 0)
			db_down(q);
		else
			reply(q->r, 409, srv_error_json("probe id '%s' is in use: remove it or"
							" choose another", p.id));
		goto out;
	}
	if (commit(q) == 0) {
		if (p.id != id)
			snprintf(id, sizeof id, "%s", p.id);
		answer_probe(q, id, 201, 0);
	}
out:
	free(custom);
	json_decref(j);
}

static void renew(struct req *q, const char *id, const char *body, size_t len)
{
	double lifespan = 0;
	json_t *j = NULL, *v;
	if (len) {
		static const char *const fields[] = { "lifespan" };
		if (!(j = parse_body(q, body, len)))
			return;
		if (!json_is_object(j)) {
			json_decref(j);
			return reply(q->r, 400, srv_error_json("body: expected a json object"));
		}
		if (only_fields(j, fields, 1, "", q->err) < 0) {
			json_decref(j);
			return reply(q->r, 400, srv_error_json("%s", q->err));
		}
		if ((v = json_object_get(j, "lifespan"))) {
			if (!json_is_number(v) || !(json_number_value(v) > 0) ||
			    json_number_value(v) > LIFESPAN_MAX) {
				json_decref(j);
				return reply(q->r, 400, srv_error_json("lifespan: expected minutes in"
								       " (0, 10080]"));
			}
			lifespan = json_number_value(v);
		}
		json_decref(j);
	}
	if (begin(q) < 0)
		return;
	int rc = srv_probe_renew(q->st, q->p->id, id, llround(q->now * 1000) / 1000.0, lifespan, q->err);
	if (rc <= 0) {
		rollback(q);
		return rc < 0 ? db_down(q)
			      : reply(q->r, 404, srv_error_json("no probe '%s'", id));
	}
	if (commit(q) == 0)
		answer_probe(q, id, 200, 0);
}

static void remove_probe(struct req *q, const char *id)
{
	if (begin(q) < 0)
		return;
	int rc = srv_probe_delete(q->st, q->p->id, id, q->err);
	if (rc <= 0) {
		rollback(q);
		return rc < 0 ? db_down(q)
			      : reply(q->r, 404, srv_error_json("no probe '%s'", id));
	}
	if (commit(q) == 0)
		reply(q->r, 200, json_pack("{sb}", "ok", 1));
}

static void settings(struct req *q, const char *method, const char *body, size_t len)
{
	int on;
	if (!strcmp(method, "PUT")) {
		static const char *const fields[] = { "auto_probes" };
		json_t *j = parse_body(q, body, len), *v;
		if (!j)
			return;
		if (!json_is_object(j) || only_fields(j, fields, 1, "", q->err) < 0 ||
		    !json_is_boolean(v = json_object_get(j, "auto_probes"))) {
			reply(q->r, 400, srv_error_json("%s", json_is_object(j) && q->err[0] ? q->err
					: "auto_probes: expected true or false"));
			json_decref(j);
			return;
		}
		on = json_is_true(v);
		json_decref(j);
		if (begin(q) < 0)
			return;
		if (srv_probe_settings_set(q->st, q->p->id, on, q->err) < 0) {
			rollback(q);
			return db_down(q);
		}
		if (commit(q) < 0)
			return;
	}
	if (srv_probe_settings_get(q->st, q->p->id, &on, q->err) < 0)
		return db_down(q);
	reply(q->r, 200, json_pack("{sb}", "auto_probes", on));
}

static int method_is(const char *method, const char *m)
{
	return !strcmp(method, m) || (!strcmp(m, "GET") && !strcmp(method, "HEAD"));
}

int srv_api_probes(struct srv_store *st, const struct srv_project *p, int manage,
		   const char *method, const char *rest, const char *body, size_t len,
		   double now, struct srv_reply *r)
{
	struct req q = { .st = st, .p = p, .now = now, .r = r };
	int write = !method_is(method, "GET");
	char id[SRV_PROBE_ID_MAX + 1];
	const char *tail = NULL;

	if (!strncmp(rest, "incidents/", 10)) {
		char *end;
		long long inc = strtoll(rest + 10, &end, 10);
		if (end == rest + 10 || strcmp(end, "/rca"))
			return 0;
		if (write)
			return reply(r, 405, srv_error_json("method not allowed: use GET")), 1;
		srv_api_rca(st, p, inc, now, r);
		return 1;
	}
	if (write && !manage)
		return reply(r, 403, srv_error_json("%s", READ_ONLY)), 1;
	if (!strcmp(rest, "settings")) {
		if (!method_is(method, "GET") && strcmp(method, "PUT"))
			return reply(r, 405, srv_error_json("method not allowed: use GET or PUT")), 1;
		settings(&q, method, body, len);
		return 1;
	}
	if (!strcmp(rest, "probes")) {
		if (method_is(method, "GET"))
			list(&q);
		else if (!strcmp(method, "POST"))
			create(&q, body, len);
		else
			reply(r, 405, srv_error_json("method not allowed: use GET or POST"));
		return 1;
	}
	if (strncmp(rest, "probes/", 7))
		return 0;
	const char *slash = strchr(rest + 7, '/');
	size_t n = slash ? (size_t)(slash - rest - 7) : strlen(rest + 7);
	if (n < 1 || n > SRV_PROBE_ID_MAX)
		return reply(r, 404, srv_error_json("no probe '%.64s'", rest + 7)), 1;
	memcpy(id, rest + 7, n);
	id[n] = '\0';
	tail = slash ? slash + 1 : "";
	if (!strcmp(tail, "renew")) {
		if (strcmp(method, "POST"))
			return reply(r, 405, srv_error_json("method not allowed: use POST")), 1;
		renew(&q, id, body, len);
	} else if (!*tail) {
		if (method_is(method, "GET"))
			answer_probe(&q, id, 200, 1);
		else if (!strcmp(method, "DELETE"))
			remove_probe(&q, id);
		else
			reply(r, 405, srv_error_json("method not allowed: use GET or DELETE"));
	} else {
		return 0;
	}
	return 1;
}
