/* proberesults.c: a stored probe as the API's PROBE (docs/api.md
 * "Probes"), its instrument with the runtime's defaults, its processes, and
 * its results merged over the processes; and the builtin instrument types
 * that the checks of a new probe share. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

const char *const srv_probe_values[6] = { "duration", "caller", "thread", "error", "chain",
					  "count" };

/* The runtime's types (docs/probes.md): the values each records (bits in
 * srv_probe_values' order), its default value and event. */
static const struct srv_probe_kind kinds[] = {
	{ "log", 1u << 0, "duration", "return" },
	{ "hist", 1u << 0, "duration", "return" },
	{ "incr", 1u << 5 | 1u << 1 | 1u << 2 | 1u << 3, "count", "call" },
	{ "stack", 1u << 4, "chain", "call" },
};

const struct srv_probe_kind *srv_probe_kind(const char *type)
{
	for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
		if (!strcmp(type, kinds[i].type))
			return &kinds[i];
	return NULL;
}

/* ---- PROBE ------------------------------------------------------------------------- */

struct merge {
	const char *type;
	json_t *procs;
	int64_t hist[SRV_HIST_BUCKETS];
	int64_t count, stacks_other, log_dropped;
	json_t *by;                  /* key -> count, NULL until a process has one */
	json_t *stacks;              /* chain text -> {"chain","count"} */
};

static void merge_row(json_t *row, void *arg)
{
	struct merge *m = arg;
	json_t *res = json_object_get(row, "results"), *v;
	size_t i;
	json_array_append_new(m->procs, json_pack("{sOsOsOsOsOsOsOsO}",
		"service", json_object_get(row, "service"), "host", json_object_get(row, "host"),
		"pid", json_object_get(row, "pid"), "status", json_object_get(row, "status"),
		"message", json_object_get(row, "message"), "hits", json_object_get(row, "hits"),
		"last_seen", json_object_get(row, "last_seen"),
		"expires_in_s", json_object_get(row, "expires_in_s")));
	m->log_dropped += json_integer_value(json_object_get(row, "log_dropped"));
	if (!strcmp(m->type, "hist")) {
		json_array_foreach(json_object_get(res, "hist"), i, v) {
			json_int_t b = json_integer_value(json_array_get(v, 0));
			if (b >= 0 && b < SRV_HIST_BUCKETS)
				m->hist[b] += json_integer_value(json_array_get(v, 1));
		}
	} else if (!strcmp(m->type, "incr")) {
		m->count += json_integer_value(json_object_get(res, "count"));
		json_t *by = json_object_get(res, "by");
		const char *k;
		if (json_is_object(by) && !m->by)
			m->by = json_object();
		json_object_foreach(by, k, v) {
			json_int_t had = json_integer_value(json_object_get(m->by, k));
			json_object_set_new(m->by, k, json_integer(had + json_integer_value(v)));
		}
	} else if (!strcmp(m->type, "stack")) {
		m->stacks_other += json_integer_value(json_object_get(res, "stacks_other"));
		json_array_foreach(json_object_get(res, "stacks"), i, v) {
			json_t *chain = json_object_get(v, "chain");
			char *key = json_dumps(chain, JSON_COMPACT);
			if (!key)
				continue;
			json_t *had = json_object_get(m->stacks, key);
			json_int_t n = json_integer_value(json_object_get(v, "count"));
			if (had)
				json_object_set_new(had, "count", json_integer(
					json_integer_value(json_object_get(had, "count")) + n));
			else
				json_object_set_new(m->stacks, key, json_pack("{sOsI}", "chain", chain,
									    "count", n));
			free(key);
		}
	}
}

/* Most first, then by key: a stable order for the page and the tests. */
static int by_count(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	json_int_t cx = json_integer_value(json_object_get(x, "count"));
	json_int_t cy = json_integer_value(json_object_get(y, "count"));
	if (cx != cy)
		return cx > cy ? -1 : 1;
	char *kx = json_dumps(json_object_get(x, "key") ? json_object_get(x, "key")
							: json_object_get(x, "chain"), JSON_ENCODE_ANY);
	char *ky = json_dumps(json_object_get(y, "key") ? json_object_get(y, "key")
							: json_object_get(y, "chain"), JSON_ENCODE_ANY);
	int r = strcmp(kx ? kx : "", ky ? ky : "");
	free(kx);
	free(ky);
	return r;
}

static json_t *sorted(json_t *items)
{
	size_t n = json_array_size(items);
	json_t **v = calloc(n ? n : 1, sizeof *v), *out = json_array();
	for (size_t i = 0; v && i < n; i++)
		v[i] = json_array_get(items, i);
	if (v)
		qsort(v, n, sizeof *v, by_count);
	for (size_t i = 0; v && i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	json_decref(items);
	return out;
}

static json_t *ms_or_null(double ms)
{
	return ms < 0 ? json_null() : json_real(ms);
}

static json_t *results_of(struct srv_store *st, int64_t project, const char *id,
			  struct merge *m, json_int_t hits, char *err)
{
	if (!strcmp(m->type, "hist")) {
		json_t *h = json_array();
		int64_t n = 0;
		for (unsigned b = 0; b < SRV_HIST_BUCKETS; b++)
			if (m->hist[b]) {
				json_array_append_new(h, json_pack("[II]", (json_int_t)b,
								   (json_int_t)m->hist[b]));
				n += m->hist[b];
			}
		return json_pack("{sssIsososososo}", "type", "hist", "count", (json_int_t)n,
				 "p50_ms", ms_or_null(srv_hist_percentile_ms(m->hist, 0.50)),
				 "p95_ms", ms_or_null(srv_hist_percentile_ms(m->hist, 0.95)),
				 "p99_ms", ms_or_null(srv_hist_percentile_ms(m->hist, 0.99)),
				 "max_ms", ms_or_null(srv_hist_percentile_ms(m->hist, 1.0)),
				 "hist", h);
	}
	if (!strcmp(m->type, "log")) {
		json_t *log = srv_probe_log(st, project, id, SRV_PROBE_LOG_KEEP, err);
		return log ? json_pack("{sssosI}", "type", "log", "log", log, "log_dropped",
				       (json_int_t)m->log_dropped) : NULL;
	}
	if (!strcmp(m->type, "incr")) {
		json_t *o = json_pack("{sssI}", "type", "incr", "count", (json_int_t)m->count);
		if (m->by) {
			json_t *by = json_array(), *v;
			const char *k;
			json_object_foreach(m->by, k, v)
				json_array_append_new(by, json_pack("{sssO}", "key", k, "count", v));
			json_object_set_new(o, "by", sorted(by));
		}
		return o;
	}
	if (!strcmp(m->type, "stack")) {
		json_t *a = json_array(), *v;
		const char *k;
		json_object_foreach(m->stacks, k, v)
			json_array_append(a, v);
		return json_pack("{sssosI}", "type", "stack", "stacks", sorted(a), "stacks_other",
				 (json_int_t)m->stacks_other);
	}
	return json_pack("{sssI}", "type", m->type, "count", hits);
}

json_t *srv_probe_json(struct srv_store *st, int64_t project, json_t *row, double now,
		       int results, char *err)
{
	const char *id = json_string_value(json_object_get(row, "id"));
	const char *type = json_string_value(json_object_get(row, "type"));
	const struct srv_probe_kind *k = srv_probe_kind(type);
	json_t *v;
	char when[40];
	struct merge m = { .type = type, .procs = json_array(), .stacks = json_object() };
	if (srv_probe_reports(st, project, id, now, merge_row, &m, err) < 0)
		goto fail;
	/* the instrument as the runtime applies it: defaults filled in */
	json_t *ins = json_object();
	json_object_set(ins, "type", json_object_get(row, "type"));
	v = json_object_get(row, "name");
	json_object_set(ins, "name", json_is_null(v) ? json_object_get(row, "id") : v);
	v = json_object_get(row, "value");
	json_object_set_new(ins, "value", !json_is_null(v) ? json_incref(v)
			    : k ? json_string(k->value) : json_null());
	v = json_object_get(row, "event");
	json_object_set_new(ins, "event", !json_is_null(v) ? json_incref(v)
			    : json_string(k ? k->event : "call"));
	v = json_object_get(row, "custom");
	json_object_set_new(ins, "custom", json_is_null(v) ? json_object() : json_incref(v));
	double expires = json_number_value(json_object_get(row, "expires_at"));
	srv_iso8601(json_number_value(json_object_get(row, "lastmodified")), when, sizeof when);
	json_t *p = json_pack("{sOsOsosOsssfsfsssbsOsOso}", "id", json_object_get(row, "id"),
		"target", json_object_get(row, "target"), "instrument", ins,
		"lifespan", json_object_get(row, "lifespan"), "lastmodified", when,
		"expires_at", expires, "time_left_s", expires > now ? expires - now : 0.0,
		"state", expires > now ? "active" : "expired",
		"auto", json_is_true(json_object_get(row, "auto")),
		"incident_id", json_object_get(row, "incident_id"), "hits", json_object_get(row, "hits"),
		"processes", m.procs);
	m.procs = NULL;
	if (p && results) {
		json_t *res = results_of(st, project, id, &m, json_integer_value(json_object_get(row, "hits")),
					 err);
		if (!res) {
			if (!err[0])
				snprintf(err, SRV_ERRLEN, "out of memory");
			json_decref(p);
			p = NULL;
		} else {
			json_object_set_new(p, "results", res);
		}
	} else if (!p) {
		snprintf(err, SRV_ERRLEN, "out of memory");
	}
	json_decref(m.by);
	json_decref(m.stacks);
	return p;
fail:
	json_decref(m.procs);
	json_decref(m.stacks);
	json_decref(m.by);
	return NULL;
}

