/* probespec.c: one probe spec (docs/probes.md), parsed and checked: a
 * valid probe, or one in ERROR that says why.  No clock, no lock, nothing
 * published: probes.c decides what becomes of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "probes.h"

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

const char *const cnsmp_probespec_types[5] = {NULL, "log", "hist", "incr", "stack"};
const char *const cnsmp_probespec_values[7] = {NULL, "duration", "caller", "thread",
					  "error", "chain", "count"};
const char *const cnsmp_probespec_events[4] = {NULL, "call", "return", "end"};
const char *const cnsmp_probespec_statuses[5] = {"RECEIVED", "INSTALLED", "EMITTING",
						 "ERROR", "EXPIRED"};

CNSMP_NOINST int cnsmp_probespec_lookup(const char *const *names, int n, const char *s)
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

CNSMP_NOINST static int parse_instrument(struct cnsmp_probe *p, json_t *in,
					  const struct cnsmp_probe_user *users, size_t nusers)
{
	if (!json_is_object(in))
		return fail(p, "%s: 'instrument' is missing or not an object", p->id);
	p->type_s = dup_str(in, "type");
	if (!p->type_s)
		return fail(p, "%s: the instrument has no 'type'", p->id);
	p->type = cnsmp_probespec_lookup(cnsmp_probespec_types, 5, p->type_s);
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
	p->value = p->value_s ? cnsmp_probespec_lookup(cnsmp_probespec_values, 7, p->value_s) : type_default[p->type];
	if (!p->value)
		return fail(p, "unknown value '%s' (duration, caller, thread, error, "
			       "chain or count)", p->value_s ? p->value_s : "");
	if (!(type_values[p->type] & (1u << p->value)))
		return fail(p, "instrument type '%s' cannot record that value", p->type_s);
	p->event_s = dup_str(in, "event");
	p->event = p->event_s ? cnsmp_probespec_lookup(cnsmp_probespec_events, 4, p->event_s)
			      : (p->type == T_HIST || p->type == T_LOG
					 ? CODENSM_PROBE_RETURN : CODENSM_PROBE_CALL);
	if (!p->event)
		return fail(p, "unknown event '%s' (call, return or end)", p->event_s);
	if (p->type == T_HIST && p->event == CODENSM_PROBE_CALL)
		return fail(p, "%s: a histogram needs event 'return' or 'end'", p->id);
	return parse_custom(p, json_object_get(in, "custom"));
}

CNSMP_NOINST struct cnsmp_probe *cnsmp_probespec_parse(const char *id, json_t *s,
						      const char *canon,
						      const struct cnsmp_probe_user *users,
						      size_t nusers)
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
	if (parse_instrument(p, json_object_get(s, "instrument"), users, nusers) == 0) {
		p->status0 = S_RECEIVED;
		/* Said while it has matched nothing (probereport.c). */
		snprintf(p->message, sizeof p->message,
			 "target '%s' matches no function the process has called", p->target);
	}
	return p;
}

CNSMP_NOINST void cnsmp_probespec_free(struct cnsmp_probe *p)
{
	if (!p)
		return;
	free(p->id);
	free(p->canon);
	free(p->target);
	free(p->type_s);
	free(p->name);
	free(p->value_s);
	free(p->event_s);
	free(p->lastmodified);
	free(p->caller_prefix);
	free(p->carry);
	free(p);
}
