/* probeingest.c: what ingest does for probes (docs/payload.md "probes" and
 * "Answers"): store each process's reports, arm the automatic incident
 * probes, note builds for the root-cause analysis, and answer with the
 * project's active specs.  The SQL is probestore.c's.
 *
 * The runtime reports `hits` and `log` as deltas (since its previous
 * report) and the other results over the probe's life: hits are added per
 * probe and process, log records appended (the newest kept), the rest
 * replaced by the process's latest.  A batch seen before is not applied
 * again (ingest's batch ids), so nothing counts twice.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

#define MAX_ENTRIES   256     /* probe entries read from one payload */
#define MAX_LOG       128     /* records per entry (the runtime sends at most 100) */
#define MAX_BY        70      /* incr keys (64, "(other)", "(none)") */
#define MAX_STACKS    40      /* stack chains (32 and some) */
#define MAX_CHAIN     16      /* frames of a chain */
#define MAX_MESSAGE   512
#define MAX_COUNT     1e15
#define LIFE_SLACK    10.0    /* seconds: a report of another life of the probe is further off */
#define ANSWER_BYTES  60000   /* the runtime reads 64 kB of an answer */

void srv_iso8601(double t, char *out, size_t len)
{
	long long ms = llround(t * 1000);
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	char base[24];
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%03lldZ", base, ms % 1000);
}

/* ---- checking one entry ------------------------------------------------------------- */

static int count_ok(json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0 &&
	       json_integer_value(v) <= (json_int_t)MAX_COUNT;
}

static int str_ok(json_t *v, size_t max)
{
	return json_is_string(v) && json_string_length(v) <= max;
}

static int num_ok(json_t *v, double max)
{
	return json_is_number(v) && isfinite(json_number_value(v)) && json_number_value(v) >= 0 &&
	       json_number_value(v) <= max;
}

static int log_ok(json_t *a)
{
	json_t *r, *v;
	size_t i;
	if (!json_is_array(a) || json_array_size(a) > MAX_LOG)
		return 0;
	json_array_foreach(a, i, r) {
		if (!json_is_object(r) || !num_ok(json_object_get(r, "t"), 1e11))
			return 0;
		if ((v = json_object_get(r, "thread")) && !count_ok(v))
			return 0;
		if ((v = json_object_get(r, "caller")) && !json_is_null(v) && !str_ok(v, SRV_MAX_NAME))
			return 0;
		if ((v = json_object_get(r, "duration_ms")) && !num_ok(v, MAX_COUNT))
			return 0;
		if ((v = json_object_get(r, "error")) && !json_is_boolean(v))
			return 0;
		const char *ev = json_string_value(json_object_get(r, "event"));
		if (json_object_get(r, "event") &&
		    (!ev || (strcmp(ev, "call") && strcmp(ev, "return") && strcmp(ev, "end"))))
			return 0;
	}
	return 1;
}

static int hist_ok(json_t *h)
{
	json_t *pair;
	size_t i;
	if (!json_is_array(h) || json_array_size(h) > SRV_HIST_BUCKETS)
		return 0;
	json_array_foreach(h, i, pair) {
		json_t *b = json_array_get(pair, 0);
		if (json_array_size(pair) != 2 || !json_is_integer(b) || json_integer_value(b) < 0 ||
		    json_integer_value(b) >= SRV_HIST_BUCKETS || !count_ok(json_array_get(pair, 1)))
			return 0;
	}
	return 1;
}

static int by_ok(json_t *by)
{
	const char *k;
	json_t *v;
	if (!json_is_object(by) || json_object_size(by) > MAX_BY)
		return 0;
	json_object_foreach(by, k, v)
		if (strlen(k) > SRV_MAX_NAME || !count_ok(v))
			return 0;
	return 1;
}

static int stacks_ok(json_t *a)
{
	json_t *s, *f;
	size_t i, j;
	if (!json_is_array(a) || json_array_size(a) > MAX_STACKS)
		return 0;
	json_array_foreach(a, i, s) {
		json_t *chain = json_object_get(s, "chain");
		if (!json_is_object(s) || !count_ok(json_object_get(s, "count")) ||
		    !json_is_array(chain) || json_array_size(chain) < 1 ||
		    json_array_size(chain) > MAX_CHAIN)
			return 0;
		json_array_foreach(chain, j, f)
			if (!json_is_null(f) && !str_ok(f, SRV_MAX_NAME))
				return 0;
	}
	return 1;
}

static const char *const statuses[] = { "RECEIVED", "INSTALLED", "EMITTING", "ERROR", "EXPIRED" };

/* Every field the server reads, with its type and bounds: 1 when the
 * entry is well-formed. */
static int entry_ok(json_t *e)
{
	json_t *v;
	const char *st = json_string_value(json_object_get(e, "status"));
	size_t i;
	if (!json_is_object(e) || !str_ok(json_object_get(e, "id"), SRV_PROBE_ID_MAX) || !st ||
	    !count_ok(json_object_get(e, "hits")))
		return 0;
	for (i = 0; i < 5 && strcmp(st, statuses[i]); i++)
		;
	if (i == 5)
		return 0;
	if ((v = json_object_get(e, "message")) && !str_ok(v, MAX_MESSAGE))
		return 0;
	if ((v = json_object_get(e, "expires_in_s")) && !num_ok(v, 1e9))
		return 0;
	if ((v = json_object_get(e, "log")) && !log_ok(v))
		return 0;
	if ((v = json_object_get(e, "log_dropped")) && !count_ok(v))
		return 0;
	if ((v = json_object_get(e, "hist")) && !hist_ok(v))
		return 0;
	if ((v = json_object_get(e, "count")) && !count_ok(v))
		return 0;
	if ((v = json_object_get(e, "by")) && !by_ok(v))
		return 0;
	if ((v = json_object_get(e, "stacks")) && !stacks_ok(v))
		return 0;
	if ((v = json_object_get(e, "stacks_other")) && !count_ok(v))
		return 0;
	return 1;
}

/* The results kept per process for the probe's type, as compact JSON
 * (malloc'd), or NULL when the entry carries none. */
static char *results_text(json_t *e, const char *type)
{
	json_t *o = json_object(), *v;
	static const char *const fields[][3] = {
		{ "hist", "hist", "count" }, { "incr", "count", "by" },
		{ "stack", "stacks", "stacks_other" },
	};
	for (size_t i = 0; i < 3; i++)
		if (!strcmp(type, fields[i][0]))
			for (size_t k = 1; k < 3; k++)
				if ((v = json_object_get(e, fields[i][k])))
					json_object_set(o, fields[i][k], v);
	char *text = json_object_size(o) ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return text;
}

/* Is the entry a report of the probe's current life?  The runtime's end
 * is the spec's lastmodified + lifespan, on the client's clock as much as
 * its interval end, so interval end + expires_in_s gives it back whatever
 * the clocks' skew; after a renew, a report of the old life is off by the
 * time between the two.  Without the client's interval: assumed current. */
static int current_life(json_t *e, double client_end, double end)
{
	json_t *left = json_object_get(e, "expires_in_s");
	if (client_end < 0 || !left)
		return 1;
	double l = json_number_value(left);
	if (l > 0)
		return fabs(client_end + l - end) <= LIFE_SLACK;
	/* expired there: only if it is expired (or nearly) here too */
	return client_end + LIFE_SLACK >= end;
}

static int apply_entry(struct srv_store *st, int64_t project, json_t *e,
		       const struct srv_probe_process *pr, char *err)
{
	const char *id = json_string_value(json_object_get(e, "id"));
	char type[SRV_PROBE_TYPE_MAX + 1];
	double end;
	int found = srv_probe_lookup(st, project, id, type, sizeof type, &end, err);
	if (found <= 0)
		return found;    /* not a probe of this project: ignored */
	if (!current_life(e, pr->client_end, end))
		return 0;
	char *results = results_text(e, type);
	json_t *left = json_object_get(e, "expires_in_s");
	int rc = srv_probe_report(st, project, id, pr, json_string_value(json_object_get(e, "status")),
				  json_string_value(json_object_get(e, "message")),
				  json_integer_value(json_object_get(e, "hits")), results,
				  json_integer_value(json_object_get(e, "log_dropped")),
				  left ? json_number_value(left) : -1, err);
	free(results);
	if (rc < 0)
		return -1;
	json_t *log = json_object_get(e, "log"), *rec;
	size_t i;
	json_array_foreach(log, i, rec)
		if (srv_probe_log_add(st, project, id, pr, rec, err) < 0)
			return -1;
	if (json_array_size(log) && srv_probe_log_trim(st, project, id, err) < 0)
		return -1;
	return 0;
}

int srv_probes_ingest(struct srv_store *st, int64_t project, json_t *root, double t,
		      double client_end, double now, char *err)
{
	json_t *probes = json_object_get(root, "probes"), *meta = json_object_get(root, "_meta"), *e;
	json_t *pid = json_object_get(meta, "pid");
	const char *service = json_string_value(json_object_get(meta, "service"));
	const char *host = json_string_value(json_object_get(meta, "host"));
	struct srv_probe_process pr = {
		.service = service && strlen(service) <= SRV_MAX_NAME ? service : "",
		.host = host && strlen(host) <= SRV_MAX_NAME ? host : "",
		.pid = count_ok(pid) ? json_integer_value(pid) : 0,
		.t = t, .client_end = client_end, .now = now,
	};
	size_t i;
	if (!json_is_array(probes))
		return 0;
	json_array_foreach(probes, i, e) {
		if (i >= MAX_ENTRIES)
			break;
		if (entry_ok(e) && apply_entry(st, project, e, &pr, err) < 0)
			return -1;
	}
	return 0;
}

int srv_rca_ingest_build(struct srv_store *st, int64_t project, json_t *root, double t, char *err)
{
	json_t *meta = json_object_get(root, "_meta");
	const char *build = json_string_value(json_object_get(meta, "build_id"));
	const char *service = json_string_value(json_object_get(meta, "service"));
	if (!build || !*build)
		return 0;
	if (!service || strlen(service) > SRV_MAX_NAME)
		service = "";
	return srv_rca_build_seen(st, project, service, build, t, err);
}

/* ---- the automatic incident probes -------------------------------------------- */

int srv_probes_auto(struct srv_store *st, int64_t project, int64_t incident,
		    const char *function, double now, char *err)
{
	int on;
	if (srv_probe_settings_get(st, project, &on, err) < 0)
		return -1;
	if (!on)
		return 0;
	int busy = srv_probe_auto_active(st, project, function, now, err);
	if (busy)
		return busy < 0 ? -1 : 0;
	char id[40], logid[48];
	snprintf(id, sizeof id, "auto-%lld", (long long)incident);
	snprintf(logid, sizeof logid, "%s-log", id);
	struct srv_probe p = {
		.id = id, .target = function, .type = "stack", .event = "end",
		.custom = "{\"errors_only\":true}", .lifespan = 10,
		.lastmodified = llround(now * 1000) / 1000.0, .is_auto = 1, .incident_id = incident,
	};
	if (srv_probe_insert(st, project, &p, now, err) < 0)
		return -1;
	p.id = logid;
	p.type = "log";
	return srv_probe_insert(st, project, &p, now, err) < 0 ? -1 : 0;
}

/* ---- the answer ------------------------------------------------------------------- */

/* A stored row as the runtime's spec: only the fields given, so that the
 * text (and the runtime's results) stays the same from answer to answer. */
static json_t *spec_of(json_t *row)
{
	char when[40];
	json_t *ins = json_object(), *v;
	static const char *const opt[] = { "name", "value", "event", "custom" };
	json_object_set(ins, "type", json_object_get(row, "type"));
	for (size_t i = 0; i < 4; i++)
		if ((v = json_object_get(row, opt[i])) && !json_is_null(v))
			json_object_set(ins, opt[i], v);
	srv_iso8601(json_number_value(json_object_get(row, "lastmodified")), when, sizeof when);
	return json_pack("{sOsosOsss{}}", "target", json_object_get(row, "target"),
			 "instrument", ins, "lifespan", json_object_get(row, "lifespan"),
			 "lastmodified", when, "applied");
}

json_t *srv_probes_answer(struct srv_store *st, int64_t project, double now, char *err)
{
	json_t *rows = srv_probes_rows(st, project, now, err), *row;
	size_t i, bytes = 2;
	if (!rows)
		return NULL;
	json_t *out = json_object();
	json_array_foreach(rows, i, row) {
		json_t *spec = spec_of(row);
		size_t n = json_dumpb(spec, NULL, 0, JSON_COMPACT);
		const char *id = json_string_value(json_object_get(row, "id"));
		if (!spec || bytes + n + strlen(id) + 4 > ANSWER_BYTES) {
			json_decref(spec);
			break;
		}
		bytes += n + strlen(id) + 4;
		json_object_set_new(out, id, spec);
	}
	json_decref(rows);
	return out;
}
