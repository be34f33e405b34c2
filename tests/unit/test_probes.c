/* test_probes.c: probe specs parsed and validated one by one, conditions
 * counted exactly on calls opened with codensm_enter, and lifespans on a
 * clock the test sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <jansson.h>

#include "internal.h"

/* 2026-12-07T10:00:00Z */
#define T0 1796637600.0

static void check_is(const char *spec, const char *status, const char *msg_part)
{
	char st[32], msg[300];
	cnsmp_probes_check("p1", spec, st, sizeof st, msg, sizeof msg);
	if (strcmp(st, status) != 0 || (msg_part && !strstr(msg, msg_part)))
		fail_msg("spec %s: status %s (want %s), message '%s' (want '%s')", spec, st,
			 status, msg, msg_part ? msg_part : "");
}

#define OK_SPEC(ins) "{\"target\":\"unit.f\",\"instrument\":" ins \
	",\"lifespan\":10,\"lastmodified\":\"2026-12-07T10:00:00Z\"}"

static void a_spec_of_the_seeds_shape_is_valid(void **state)
{
	check_is(OK_SPEC("{\"type\":\"hist\",\"name\":\"x\",\"value\":\"duration\","
			 "\"event\":\"return\",\"custom\":{}}"), "INSTALLED", "");
	check_is(OK_SPEC("{\"type\":\"incr\",\"value\":\"caller\",\"event\":\"call\","
			 "\"custom\":{\"caller\":\"unit\",\"sample\":3,\"max_hits\":5}}"), "INSTALLED", "");
	check_is(OK_SPEC("{\"type\":\"log\",\"event\":\"end\",\"custom\":"
			 "{\"min_duration_ms\":1.5,\"errors_only\":true}}"), "INSTALLED", "");
	check_is("{\"target\":\"unit\",\"instrument\":{\"type\":\"stack\"},\"lifespan\":0.5,"
		 "\"lastmodified\":\"2026-12-07T10:00:00.250Z\",\"applied\":{\"x\":1}}", "INSTALLED", "");
}

static void each_malformed_spec_says_why(void **state)
{
	check_is("42", "ERROR", "not a JSON object");
	check_is("{\"instrument\":{\"type\":\"log\"},\"lifespan\":1,\"lastmodified\":"
		 "\"2026-12-07T10:00:00Z\"}", "ERROR", "'target' is missing");
	check_is(OK_SPEC("{\"type\":\"gauge\"}"), "ERROR", "unknown instrument type 'gauge'");
	check_is(OK_SPEC("{\"name\":\"x\"}"), "ERROR", "has no 'type'");
	check_is(OK_SPEC("{\"type\":\"hist\",\"value\":\"caller\"}"), "ERROR", "cannot record");
	check_is(OK_SPEC("{\"type\":\"incr\",\"value\":\"args\"}"), "ERROR", "unknown value 'args'");
	check_is(OK_SPEC("{\"type\":\"incr\",\"event\":\"exit\"}"), "ERROR", "unknown event 'exit'");
	check_is(OK_SPEC("{\"type\":\"hist\",\"event\":\"call\"}"), "ERROR", "needs event");
	check_is(OK_SPEC("{\"type\":\"incr\",\"event\":\"call\",\"custom\":{\"errors_only\":true}}"),
		 "ERROR", "need event");
	check_is(OK_SPEC("{\"type\":\"incr\",\"custom\":{\"sample\":0}}"), "ERROR", "'sample'");
	check_is(OK_SPEC("{\"type\":\"incr\",\"custom\":{\"max_hits\":1.5}}"), "ERROR", "'max_hits'");
	check_is(OK_SPEC("{\"type\":\"incr\",\"custom\":{\"where\":1}}"), "ERROR",
		 "unknown condition 'where'");
	check_is(OK_SPEC("{\"type\":\"log\",\"custom\":{\"min_duration_ms\":-1}}"), "ERROR",
		 "min_duration_ms");
	check_is("{\"target\":\"u\",\"instrument\":{\"type\":\"log\"},\"lifespan\":0,"
		 "\"lastmodified\":\"2026-12-07T10:00:00Z\"}", "ERROR", "'lifespan'");
	check_is("{\"target\":\"u\",\"instrument\":{\"type\":\"log\"},\"lifespan\":5,"
		 "\"lastmodified\":\"2026-12-07 10:00\"}", "ERROR", "ISO-8601");
	check_is("{\"target\":\"u\",\"instrument\":{\"type\":\"log\"},\"lifespan\":5,"
		 "\"lastmodified\":\"2026-12-07T10:00:00+02:00\"}", "ERROR", "ISO-8601");
	check_is("{\"target\":\"u\",\"instrument\":{\"type\":\"log\"},\"lifespan\":5,\"x\":1,"
		 "\"lastmodified\":\"2026-12-07T10:00:00Z\"}", "ERROR", "unknown field 'x'");
	check_is("{\"id\":\"other\",\"target\":\"u\",\"instrument\":{\"type\":\"log\"},"
		 "\"lifespan\":5,\"lastmodified\":\"2026-12-07T10:00:00Z\"}", "ERROR", "its key");
}

/* ---- events through codensm_enter / codensm_exit ------------------------ */

static int fn_a, fn_b, fn_caller; /* addresses that stand for functions */

static void call(void *fn, const char *name, int fail)
{
	codensm_enter(fn, name, NULL, -1);
	if (fail)
		codensm_error();
	codensm_exit(fn);
}

/* The probes section as JSON: {id: entry}. */
static json_t *report_taking(struct cnsmp_probe_sent **sent)
{
	char *sec = cnsmp_probereport_section(sent);
	assert_non_null(sec);
	size_t n = strlen(sec);
	char *doc = malloc(n + 3);
	doc[0] = '{';
	memcpy(doc + 1, sec, n);
	strcpy(doc + 1 + n, "}");
	json_error_t err;
	json_t *j = json_loads(doc, 0, &err);
	if (!j)
		fail_msg("section is not JSON: %s: %s", err.text, sec);
	free(doc);
	free(sec);
	json_t *by = json_object();
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(j, "probes"), i, e)
		json_object_set(by, json_string_value(json_object_get(e, "id")), e);
	json_decref(j);
	return by;
}

static json_t *report(void)
{
	return report_taking(NULL);
}

static long long field(json_t *r, const char *id, const char *k)
{
	json_t *v = json_object_get(json_object_get(r, id), k);
	if (!json_is_integer(v))
		fail_msg("probe %s has no integer '%s'", id, k);
	return json_integer_value(v);
}

static const char *status(json_t *r, const char *id)
{
	return json_string_value(json_object_get(json_object_get(r, id), "status"));
}

static void add(const char *id, const char *target, const char *ins, double lifespan,
		const char *lastmodified)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "{\"id\":\"%s\",\"target\":\"%s\",\"instrument\":%s,"
		 "\"lifespan\":%g,\"lastmodified\":\"%s\"}", id, target, ins, lifespan,
		 lastmodified);
	assert_int_equal(codensm_probe_add(buf), 0);
}

static void conditions_count_exactly(void **state)
{
	cnsmp_probes_set_clock(T0 + 60);
	add("all", "unit.a", "{\"type\":\"incr\",\"event\":\"return\"}", 10, "2026-12-07T10:00:00Z");
	add("sample", "unit.a", "{\"type\":\"incr\",\"event\":\"call\",\"custom\":{\"sample\":4}}",
	    10, "2026-12-07T10:00:00Z");
	add("max", "unit.a", "{\"type\":\"incr\",\"event\":\"call\",\"custom\":{\"max_hits\":7}}",
	    10, "2026-12-07T10:00:00Z");
	add("errors", "unit.a", "{\"type\":\"incr\",\"event\":\"end\",\"custom\":"
	    "{\"errors_only\":true}}", 10, "2026-12-07T10:00:00Z");
	add("bycaller", "unit", "{\"type\":\"incr\",\"event\":\"call\",\"value\":\"caller\","
	    "\"custom\":{\"caller\":\"unit.caller\"}}", 10, "2026-12-07T10:00:00Z");
	add("slow", "unit.b", "{\"type\":\"hist\",\"custom\":{\"min_duration_ms\":3}}", 10,
	    "2026-12-07T10:00:00Z");
	json_decref(report()); /* hits are deltas: start from here */

	for (int i = 0; i < 100; i++)
		call(&fn_a, "unit.a", i % 5 == 0);
	codensm_enter(&fn_caller, "unit.caller", NULL, -1);
	for (int i = 0; i < 30; i++)
		call(&fn_a, "unit.a", 0);
	codensm_exit(&fn_caller);
	call(&fn_b, "unit.b", 0);
	codensm_enter(&fn_b, "unit.b", NULL, -1);
	struct timespec ms4 = {0, 4000000};
	nanosleep(&ms4, NULL);
	codensm_exit(&fn_b);

	json_t *r = report();
	assert_int_equal(field(r, "all", "hits"), 130);
	assert_int_equal(field(r, "sample", "hits"), 130 / 4 + 1); /* calls 0, 4, ..., 128 */
	assert_int_equal(field(r, "max", "hits"), 7);
	assert_int_equal(field(r, "errors", "hits"), 20);
	assert_int_equal(field(r, "bycaller", "hits"), 30); /* unit.caller's own call: no caller */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
		json_object_get(r, "bycaller"), "by"), "unit.caller")), 30);
	assert_int_equal(field(r, "slow", "hits"), 1);
	assert_string_equal(status(r, "all"), "EMITTING");
	json_decref(r);
	r = report();
	assert_int_equal(field(r, "all", "hits"), 0); /* nothing since the last report */
	json_decref(r);
	for (const char *const *id = (const char *const[]){"all", "sample", "max", "errors",
							    "bycaller", "slow", NULL}; *id; id++)
		assert_int_equal(codensm_probe_remove(*id), 0);
	assert_int_equal(codensm_probe_remove("all"), -1);
}

static void a_probe_expires_at_lastmodified_plus_lifespan(void **state)
{
	cnsmp_probes_set_clock(T0 - 30);
	add("life", "unit.a", "{\"type\":\"incr\"}", 2, "2026-12-07T10:00:00Z");
	call(&fn_a, "unit.a", 0);
	struct cnsmp_fn *f = cnsmp_registry_find((uintptr_t)&fn_a);
	assert_non_null(f);
	assert_null(atomic_load(&f->probes)); /* RECEIVED: unit.a stays on the fast path */
	assert_int_equal(atomic_load(&cnsmp_probes_live), 0);
	json_t *r = report();
	assert_string_equal(status(r, "life"), "RECEIVED"); /* its time has not come */
	assert_int_equal(field(r, "life", "hits"), 0);
	json_decref(r);

	cnsmp_probes_set_clock(T0 + 119);
	cnsmp_probes_poll(); /* its time has come: armed at this flush */
	assert_non_null(atomic_load(&f->probes));
	call(&fn_a, "unit.a", 0);
	r = report();
	assert_string_equal(status(r, "life"), "EMITTING");
	assert_int_equal(field(r, "life", "hits"), 1);
	json_decref(r);

	cnsmp_probes_set_clock(T0 + 120);
	call(&fn_a, "unit.a", 0);
	cnsmp_probes_poll(); /* disarms it: unit.a is decided again */
	call(&fn_a, "unit.a", 0);
	r = report();
	assert_string_equal(status(r, "life"), "EXPIRED");
	assert_int_equal(field(r, "life", "hits"), 0);
	json_decref(r);
	assert_null(atomic_load(&f->probes)); /* EXPIRED: back on the fast path */
	assert_int_equal(atomic_load(&cnsmp_probes_live), 0);

	/* A new lastmodified starts it again. */
	add("life", "unit.a", "{\"type\":\"incr\"}", 2, "2026-12-07T10:02:00Z");
	assert_non_null(atomic_load(&f->probes));
	call(&fn_a, "unit.a", 0);
	r = report();
	assert_string_equal(status(r, "life"), "EMITTING");
	assert_int_equal(field(r, "life", "hits"), 1);
	json_decref(r);
	assert_int_equal(codensm_probe_remove("life"), 0);
	assert_null(atomic_load(&f->probes));
}

static void a_probe_that_matches_nothing_is_an_error(void **state)
{
	cnsmp_probes_set_clock(T0 + 1);
	add("none", "unit.nothing", "{\"type\":\"incr\"}", 2, "2026-12-07T10:00:00Z");
	json_t *r = report();
	assert_string_equal(status(r, "none"), "ERROR");
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(r, "none"),
								 "message")), "matches no function"));
	json_decref(r);
	assert_int_equal(codensm_probe_remove("none"), 0);
	assert_int_equal(codensm_probe_add("{\"target\":\"x\"}"), -1); /* no id */
	assert_int_equal(codensm_probe_add("not json"), -1);
}

static int seen_events, seen_errors;
static char seen_caller[64], seen_fn[64];
static void seen(const struct codensm_probe_event *ev, void *arg)
{
	assert_ptr_equal(arg, &seen_events);
	assert_string_equal(ev->probe_id, "user");
	assert_string_equal(ev->name, "watch");
	assert_int_equal(ev->event, CODENSM_PROBE_END);
	snprintf(seen_fn, sizeof seen_fn, "%s", ev->function);
	snprintf(seen_caller, sizeof seen_caller, "%s", ev->caller ? ev->caller : "(none)");
	seen_events++;
	seen_errors += ev->error;
}

static void a_user_instrument_gets_each_event(void **state)
{
	assert_int_equal(codensm_instrument_register("log", seen, NULL), -1); /* built-in */
	assert_int_equal(codensm_instrument_register("", seen, NULL), -1);
	assert_int_equal(codensm_instrument_register("seen", NULL, NULL), -1);
	cnsmp_probes_set_clock(T0 + 1);
	add("user", "unit.a", "{\"type\":\"seen\",\"name\":\"watch\",\"event\":\"end\"}", 2,
	    "2026-12-07T10:00:00Z");
	json_t *r = report();
	assert_string_equal(status(r, "user"), "ERROR"); /* not registered yet */
	json_decref(r);
	assert_int_equal(codensm_instrument_register("seen", seen, &seen_events), 0);
	codensm_enter(&fn_caller, "unit.caller", NULL, -1);
	for (int i = 0; i < 9; i++)
		call(&fn_a, "unit.a", i % 3 == 0);
	codensm_exit(&fn_caller);
	assert_int_equal(seen_events, 9);
	assert_int_equal(seen_errors, 3);
	assert_string_equal(seen_fn, "unit.a");
	assert_string_equal(seen_caller, "unit.caller");
	r = report();
	assert_int_equal(field(r, "user", "hits"), 9);
	json_decref(r);
	assert_int_equal(codensm_probe_remove("user"), 0);
}

static size_t log_len(json_t *r, const char *id)
{
	return json_array_size(json_object_get(json_object_get(r, id), "log"));
}

static void results_of_a_body_not_delivered_ride_the_next_one(void **state)
{
	cnsmp_probes_set_clock(T0 + 1);
	add("lg", "unit.a", "{\"type\":\"log\"}", 10, "2026-12-07T10:00:00Z");
	json_decref(report());
	for (int i = 0; i < 5; i++)
		call(&fn_a, "unit.a", 0);
	struct cnsmp_probe_sent *sent = NULL;
	json_t *r = report_taking(&sent);
	assert_non_null(sent);
	assert_int_equal(field(r, "lg", "hits"), 5);
	assert_int_equal(log_len(r, "lg"), 5);
	json_decref(r);
	cnsmp_probereport_unsent(sent); /* its body was merged back */
	for (int i = 0; i < 3; i++)
		call(&fn_a, "unit.a", 1);
	r = report_taking(&sent);
	assert_int_equal(field(r, "lg", "hits"), 8);
	assert_int_equal(log_len(r, "lg"), 8);
	/* The carried records come first, oldest first. */
	json_t *log = json_object_get(json_object_get(r, "lg"), "log");
	assert_false(json_is_true(json_object_get(json_array_get(log, 4), "error")));
	assert_true(json_is_true(json_object_get(json_array_get(log, 5), "error")));
	json_decref(r);
	cnsmp_probereport_sent_free(sent); /* delivered */
	r = report();
	assert_int_equal(field(r, "lg", "hits"), 0);
	assert_int_equal(log_len(r, "lg"), 0);
	json_decref(r);
	assert_int_equal(codensm_probe_remove("lg"), 0);
}

static void a_call_in_progress_ends_for_the_probes_that_stay(void **state)
{
	cnsmp_probes_set_clock(T0 + 1);
	add("stay", "unit.a", "{\"type\":\"incr\",\"event\":\"end\"}", 10,
	    "2026-12-07T10:00:00Z");
	add("go", "unit.a", "{\"type\":\"incr\",\"event\":\"end\"}", 10,
	    "2026-12-07T10:00:00Z");
	add("change", "unit.a", "{\"type\":\"incr\",\"event\":\"end\"}", 10,
	    "2026-12-07T10:00:00Z");
	json_decref(report());
	codensm_enter(&fn_a, "unit.a", NULL, -1);
	/* The specs change while the call runs: one removed, one changed,
	 * one added. */
	assert_int_equal(codensm_probe_remove("go"), 0);
	add("change", "unit.a", "{\"type\":\"incr\",\"event\":\"end\"}", 10,
	    "2026-12-07T10:00:30Z");
	add("new", "unit.b", "{\"type\":\"incr\"}", 10, "2026-12-07T10:00:00Z");
	codensm_exit(&fn_a);
	json_t *r = report();
	assert_int_equal(field(r, "stay", "hits"), 1);
	assert_int_equal(field(r, "change", "hits"), 0); /* fresh: it never saw it begin */
	assert_null(json_object_get(r, "go"));
	json_decref(r);
	for (const char *const *id = (const char *const[]){"stay", "change", "new", NULL};
	     *id; id++)
		assert_int_equal(codensm_probe_remove(*id), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_spec_of_the_seeds_shape_is_valid),
		cmocka_unit_test(each_malformed_spec_says_why),
		cmocka_unit_test(conditions_count_exactly),
		cmocka_unit_test(a_probe_expires_at_lastmodified_plus_lifespan),
		cmocka_unit_test(a_probe_that_matches_nothing_is_an_error),
		cmocka_unit_test(a_user_instrument_gets_each_event),
		cmocka_unit_test(results_of_a_body_not_delivered_ride_the_next_one),
		cmocka_unit_test(a_call_in_progress_ends_for_the_probes_that_stay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
