/* test_payload.c: request bodies say exactly what docs/payload.md says,
 * stay within the limits when split, lose and double nothing, and the
 * crash path's writer says the same as the normal one (both are schema.c:
 * these tests keep it so). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include "internal.h"

/* A registry double: the payload only reads entries by id. */
#define NFNS 5000
static struct cnsmp_fn fns[NFNS];

struct cnsmp_fn *cnsmp_registry_get(uint32_t id)
{
	return id < NFNS && fns[id].name ? &fns[id] : NULL;
}

static void set_fn(uint32_t id, const char *name, const char *dept, double w,
		   const char *file, int line, int sent)
{
	fns[id] = (struct cnsmp_fn){.id = id, .name = (char *)name, .department = (char *)dept,
				    .weight = w, .file = (char *)file, .line = line,
				    .location_sent = sent};
}

static char names[NFNS][600];

/* Batch helpers of our own: the real ones live in collect.c, which would
 * pull the real registry in beside the double. */
static void b_init(struct cnsmp_batch *b)
{
	memset(b, 0, sizeof *b);
}

static void b_reserve(struct cnsmp_batch *b, size_t f, size_t e, size_t i)
{
	b->fns = calloc(f, sizeof *b->fns);
	b->edges = calloc(e, sizeof *b->edges);
	b->incidents = calloc(i, sizeof *b->incidents);
	b->capfns = f;
	b->capedges = e;
	b->capincidents = i;
}

static void b_release(struct cnsmp_batch *b)
{
	free(b->fns);
	free(b->edges);
	free(b->incidents);
	b_init(b);
}

/* n functions named like "app.mod.fN" padded to `namelen` bytes. */
static void many_fns(struct cnsmp_batch *b, size_t n, size_t namelen, int full_hist)
{
	b_init(b);
	b->fns = calloc(n, sizeof *b->fns);
	b->nfns = b->capfns = n;
	b->start = 1795000000.0;
	b->end = 1795000015.0;
	for (size_t i = 0; i < n; i++) {
		int k = snprintf(names[i], sizeof names[i], "app.mod.f%zu", i);
		while ((size_t)k < namelen)
			names[i][k++] = 'x';
		names[i][k] = '\0';
		set_fn((uint32_t)i, names[i], "app", 1.0, "app/mod.c", (int)i + 1, 0);
		b->fns[i].id = (uint32_t)i;
		b->fns[i].calls = i + 1;
		b->fns[i].errors = i % 3 == 0;
		b->fns[i].total_ns = 1000 * (i + 1);
		b->fns[i].self_ns = 500 * (i + 1);
		b->fns[i].max_ns = 900;
		for (unsigned h = 0; h < CNSMP_HIST_BUCKETS; h++)
			if (full_hist || h == 10)
				b->fns[i].hist[h] = 1000000000ULL + h;
	}
}

static const struct cnsmp_meta meta = {"shop", "build-1", 4242, "9f1c0e7a8b2d4c6e-17", NULL};

static json_t *parse(const char *s)
{
	json_error_t err;
	json_t *j = json_loads(s, 0, &err);
	if (!j)
		fail_msg("body does not parse: %s at %d:%d", err.text, err.line, err.column);
	return j;
}

static void free_bodies(char **bodies, int n)
{
	for (int i = 0; i < n; i++)
		free(bodies[i]);
	free(bodies);
}

/* Checks every body against the limits; returns the sum of calls. */
static uint64_t check_bodies(char **bodies, int n, size_t max_body, size_t max_funcs,
			     size_t *nfuncs_total)
{
	uint64_t calls = 0;
	*nfuncs_total = 0;
	for (int i = 0; i < n; i++) {
		assert_true(strlen(bodies[i]) <= max_body);
		json_t *j = parse(bodies[i]);
		json_t *f = json_object_get(j, "functions");
		assert_true(json_array_size(f) <= max_funcs);
		*nfuncs_total += json_array_size(f);
		size_t k;
		json_t *v;
		json_array_foreach(f, k, v) calls += (uint64_t)json_integer_value(json_object_get(v, "calls"));
		char id[64];
		snprintf(id, sizeof id, "%s-%d", meta.batch_id, i);
		assert_string_equal(json_string_value(json_object_get(json_object_get(j, "_meta"), "batch_id")), id);
		json_decref(j);
	}
	return calls;
}

static void small_batch(struct cnsmp_batch *b)
{
	memset(fns, 0, sizeof fns);
	set_fn(0, "checkout.api.handle", "checkout", 9, "checkout/api.c", 10, 0);
	set_fn(1, "payments.card.charge", "payments", 0.5, "payments/card.c", 31, 1);
	b_init(b);
	b_reserve(b, 2, 1, 1);
	b->nfns = 2;
	memset(b->fns, 0, 2 * sizeof *b->fns);
	b->fns[0] = (struct cnsmp_fn_delta){.id = 0, .calls = 1240, .errors = 3,
					    .total_ns = 47000000000ULL, .self_ns = 123456789,
					    .max_ns = 1500000};
	b->fns[0].hist[20] = 1000;
	b->fns[0].hist[21] = 240;
	b->fns[1] = (struct cnsmp_fn_delta){.id = 1, .calls = 12, .errors = 2, .total_ns = 1,
					    .estimated = 5};
	b->nedges = 1;
	b->edges[0] = (struct cnsmp_edge_delta){0, 1, 12};
	b->nincidents = 1;
	memset(b->incidents, 0, sizeof *b->incidents);
	b->incidents[0].depth = 2;
	b->incidents[0].chain[0] = 0;
	b->incidents[0].chain[1] = 1;
	strcpy(b->incidents[0].kind, "error");
	b->incidents[0].count = 2;
	b->incidents[0].first_seen = 1795000000.5;
	b->incidents[0].last_seen = 1795000003.125;
	b->dropped = 7;
	b->repairs = 1;
	b->start = 1795000000.0;
	b->end = 1795000015.0;
}

static const struct cnsmp_inv_entry inv1[] = {
	{"checkout.legacy.export_pdf", "checkout", "checkout/legacy.c", 5, 1.0, NULL},
};

static void test_small_batch_is_exactly_the_documented_payload(void **state)
{
	struct cnsmp_batch b;
	small_batch(&b);
	char **bodies;
	int n = cnsmp_payload_build(&b, inv1, 1, &meta, CNSMP_MAX_BODY, 2000, &bodies);
	assert_int_equal(n, 1);
	json_t *j = parse(bodies[0]);
	json_t *expect = parse(
		"{\"functions\":["
		"{\"name\":\"checkout.api.handle\",\"department\":\"checkout\",\"value_weight\":9.0,"
		"\"calls\":1240,\"errors\":3,\"total_ms\":47000.0,\"self_ms\":123.456789,"
		"\"max_ms\":1.5,\"hist\":[[20,1000],[21,240]],\"file\":\"checkout/api.c\",\"line\":10},"
		"{\"name\":\"payments.card.charge\",\"department\":\"payments\",\"value_weight\":0.5,"
		"\"calls\":12,\"errors\":2,\"total_ms\":0.000001,\"self_ms\":0.0,\"max_ms\":0.0,"
		"\"estimated_calls\":5,\"hist\":[]}],"
		"\"edges\":[{\"caller\":\"checkout.api.handle\",\"callee\":\"payments.card.charge\",\"calls\":12}],"
		"\"incidents\":[{\"kind\":\"error\",\"signal\":0,\"count\":2,\"first_seen\":1795000000.5,"
		"\"last_seen\":1795000003.125,\"chain\":["
		"{\"name\":\"checkout.api.handle\",\"file\":\"checkout/api.c\",\"line\":10},"
		"{\"name\":\"payments.card.charge\",\"file\":\"payments/card.c\",\"line\":31}]}],"
		"\"inventory\":[{\"name\":\"checkout.legacy.export_pdf\",\"department\":\"checkout\","
		"\"value_weight\":1.0,\"file\":\"checkout/legacy.c\",\"line\":5}],"
		"\"_meta\":{\"sdk\":\"codensm-c\",\"version\":\"" CODENSM_VERSION "\",\"service\":\"shop\","
		"\"host\":\"build-1\",\"pid\":4242,\"interval\":[1795000000.0,1795000015.0],"
		"\"dropped\":7,\"repairs\":1,\"batch_id\":\"9f1c0e7a8b2d4c6e-17-0\",\"hist\":\"log2x2-ns\"}}");
	if (!json_equal(j, expect)) {
		char *got = json_dumps(j, JSON_SORT_KEYS), *want = json_dumps(expect, JSON_SORT_KEYS);
		fail_msg("body differs:\n got %s\nwant %s", got, want);
	}
	/* The contract's field order, for humans reading a capture. */
	assert_true(strncmp(bodies[0], "{\"functions\":[{\"name\":", 22) == 0);
	json_decref(j);
	json_decref(expect);
	free_bodies(bodies, n);
	b_release(&b);
}

static void test_file_and_line_only_while_not_sent(void **state)
{
	struct cnsmp_batch b;
	small_batch(&b);
	fns[0].location_sent = 1;
	fns[1].location_sent = 0;
	char **bodies;
	int n = cnsmp_payload_build(&b, NULL, 0, &meta, CNSMP_MAX_BODY, 2000, &bodies);
	assert_int_equal(n, 1);
	json_t *j = parse(bodies[0]);
	json_t *f = json_object_get(j, "functions");
	assert_null(json_object_get(json_array_get(f, 0), "file"));
	assert_null(json_object_get(json_array_get(f, 0), "line"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(f, 1), "file")),
			    "payments/card.c");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(f, 1), "line")), 31);
	json_decref(j);
	free_bodies(bodies, n);
	b_release(&b);
}

static void test_2000_functions_fit_one_body_and_2001_make_two(void **state)
{
	struct cnsmp_batch b;
	char **bodies;
	size_t nf;
	many_fns(&b, 2000, 10, 0);
	int n = cnsmp_payload_build(&b, NULL, 0, &meta, CNSMP_MAX_BODY, 2000, &bodies);
	assert_int_equal(n, 1);
	assert_int_equal(check_bodies(bodies, n, CNSMP_MAX_BODY, 2000, &nf), 2000 * 2001 / 2);
	assert_int_equal(nf, 2000);
	free_bodies(bodies, n);
	b_release(&b);

	many_fns(&b, 4001, 10, 0);
	struct cnsmp_payload_part *parts;
	n = cnsmp_payload_build_parts(&b, NULL, 0, &meta, CNSMP_MAX_BODY, 2000, &bodies, &parts);
	assert_int_equal(n, 3);
	assert_int_equal(check_bodies(bodies, n, CNSMP_MAX_BODY, 2000, &nf), 4001ULL * 4002 / 2);
	assert_int_equal(nf, 4001);
	/* Parts are the contiguous slices each body holds. */
	assert_int_equal(parts[0].fn_lo, 0);
	assert_int_equal(parts[0].fn_hi, 2000);
	assert_int_equal(parts[1].fn_lo, 2000);
	assert_int_equal(parts[1].fn_hi, 4000);
	assert_int_equal(parts[2].fn_lo, 4000);
	assert_int_equal(parts[2].fn_hi, 4001);
	/* dropped/repairs are said once, in the first body. */
	free(parts);
	free_bodies(bodies, n);
	b_release(&b);
}

static void test_512k_limit_is_exact(void **state)
{
	struct cnsmp_batch b;
	char **bodies;
	size_t nf;
	/* ~1.8 KB per function: 2,000 of them are far over 512 KB. */
	many_fns(&b, 2000, 500, 1);
	int n = cnsmp_payload_build(&b, NULL, 0, &meta, CNSMP_MAX_BODY, 2000, &bodies);
	assert_true(n >= 6);
	assert_int_equal(check_bodies(bodies, n, CNSMP_MAX_BODY, 2000, &nf), 2000 * 2001 / 2);
	assert_int_equal(nf, 2000);
	/* Greedy: a body is only cut when the next function would not fit. */
	for (int i = 0; i + 1 < n; i++)
		assert_true(strlen(bodies[i]) > CNSMP_MAX_BODY - 2000);
	free_bodies(bodies, n);
	b_release(&b);

	/* At exactly the size of a body it fits; one byte less, it splits. */
	many_fns(&b, 50, 500, 1);
	n = cnsmp_payload_build(&b, NULL, 0, &meta, 1 << 30, 2000, &bodies);
	assert_int_equal(n, 1);
	size_t exact = strlen(bodies[0]);
	free_bodies(bodies, n);
	n = cnsmp_payload_build(&b, NULL, 0, &meta, exact, 2000, &bodies);
	assert_int_equal(n, 1);
	assert_int_equal(strlen(bodies[0]), exact);
	free_bodies(bodies, n);
	n = cnsmp_payload_build(&b, NULL, 0, &meta, exact - 1, 2000, &bodies);
	assert_int_equal(n, 2);
	assert_int_equal(check_bodies(bodies, n, exact - 1, 2000, &nf), 50 * 51 / 2);
	free_bodies(bodies, n);
	b_release(&b);
}

static void test_inventory_is_split_by_size_too(void **state)
{
	struct cnsmp_batch b;
	b_init(&b);
	size_t ninv = 3000;
	struct cnsmp_inv_entry *inv = calloc(ninv, sizeof *inv);
	for (size_t i = 0; i < ninv; i++) {
		inv[i].name = names[i % NFNS];
		snprintf(names[i], sizeof names[i], "app.inv.f%zu%0400d", i, 0);
		inv[i].department = "app";
		inv[i].file = "app/inv.c";
		inv[i].line = (int)i;
		inv[i].weight = 1;
	}
	char **bodies;
	struct cnsmp_payload_part *parts;
	int n = cnsmp_payload_build_parts(&b, inv, ninv, &meta, CNSMP_MAX_BODY, 2000, &bodies, &parts);
	assert_true(n >= 3);
	size_t total = 0;
	for (int i = 0; i < n; i++) {
		assert_true(strlen(bodies[i]) <= CNSMP_MAX_BODY);
		json_t *j = parse(bodies[i]);
		size_t k = json_array_size(json_object_get(j, "inventory"));
		assert_int_equal(k, parts[i].inv_hi - parts[i].inv_lo);
		total += k;
		json_decref(j);
	}
	assert_int_equal(total, ninv);
	free(parts);
	free_bodies(bodies, n);
	free(inv);
}

/* CODENSM_MODE=full: a flow rides in the body of its inventory record,
 * its bytes counted in the 512 KB; a record without a flow adds nothing;
 * the parts say which records (and so which flows) each body holds; a
 * re-split keeps every flow. */
static void test_flows_ride_with_their_inventory_records_within_512k(void **state)
{
	static char flows[300][3200];
	struct cnsmp_batch b;
	char **bodies;
	many_fns(&b, 10, 10, 0);
	size_t ninv = 300;
	struct cnsmp_inv_entry *inv = calloc(ninv, sizeof *inv);
	for (size_t i = 0; i < ninv; i++) {
		snprintf(names[i], sizeof names[i], "app.inv.f%zu", i);
		inv[i] = (struct cnsmp_inv_entry){names[i], "app", "app/inv.c", (int)i, 1.0, NULL};
		int k = snprintf(flows[i], sizeof flows[i], "{\"name\":\"%s\",\"pad\":\"", names[i]);
		while (k < 3100)
			flows[i][k++] = 'p';
		strcpy(flows[i] + k, "\"}");
		if (i % 10 != 9) /* 30 without analysis */
			inv[i].flow = flows[i];
	}
	struct cnsmp_payload_part *parts;
	int n = cnsmp_payload_build_parts(&b, inv, ninv, &meta, CNSMP_MAX_BODY, 2000, &bodies, &parts);
	assert_int_equal(n, 2); /* 270 flows of ~3.1 KB: over 512 KB, under 1 MB */
	size_t total = 0, records = 0;
	for (int i = 0; i < n; i++) {
		assert_true(strlen(bodies[i]) <= CNSMP_MAX_BODY);
		json_t *j = parse(bodies[i]);
		json_t *in = json_object_get(j, "inventory"), *fl = json_object_get(j, "flows");
		assert_int_equal(json_array_size(in), parts[i].inv_hi - parts[i].inv_lo);
		records += json_array_size(in);
		size_t k, want = 0;
		json_t *v;
		for (size_t r = parts[i].inv_lo; r < parts[i].inv_hi; r++)
			want += inv[r].flow != NULL;
		assert_int_equal(json_array_size(fl), want);
		json_array_foreach(fl, k, v) {
			const char *name = json_string_value(json_object_get(v, "name"));
			size_t id = (size_t)atoi(name + strlen("app.inv.f"));
			assert_true(id >= parts[i].inv_lo && id < parts[i].inv_hi && id % 10 != 9);
		}
		total += json_array_size(fl);
		json_decref(j);
	}
	assert_int_equal(records, 300);
	assert_int_equal(total, 270);
	/* a spooled body re-split keeps its flows */
	char **split;
	int np = cnsmp_payload_split(bodies[0], 100000, 2000, &split);
	assert_true(np > 1);
	size_t kept = 0;
	for (int i = 0; i < np; i++) {
		json_t *j = parse(split[i]);
		assert_true(strlen(split[i]) <= 100000);
		kept += json_array_size(json_object_get(j, "flows"));
		json_decref(j);
	}
	json_t *j0 = parse(bodies[0]);
	assert_int_equal(kept, json_array_size(json_object_get(j0, "flows")));
	json_decref(j0);
	free_bodies(split, np);
	free_bodies(bodies, n);
	free(parts);
	free(inv);
	b_release(&b);
}

static void test_empty_batch_makes_no_body(void **state)
{
	struct cnsmp_batch b;
	b_init(&b);
	char **bodies = NULL;
	assert_int_equal(cnsmp_payload_build(&b, NULL, 0, &meta, CNSMP_MAX_BODY, 2000, &bodies), 0);
	b.dropped = 3; /* but dropped calls are worth one */
	int n = cnsmp_payload_build(&b, NULL, 0, &meta, CNSMP_MAX_BODY, 2000, &bodies);
	assert_int_equal(n, 1);
	json_t *j = parse(bodies[0]);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "_meta"), "dropped")), 3);
	assert_int_equal(json_array_size(json_object_get(j, "functions")), 0);
	json_decref(j);
	free_bodies(bodies, n);
}

/* What write_fd printed, parsed. */
static json_t *written(const struct cnsmp_batch *b, const struct cnsmp_meta *m)
{
	FILE *f = tmpfile();
	assert_non_null(f);
	assert_int_equal(cnsmp_payload_write_fd(fileno(f), b, m), 0);
	long len = ftell(f);
	(void)len;
	rewind(f);
	json_error_t err;
	json_t *j = json_loadf(f, 0, &err);
	if (!j)
		fail_msg("write_fd output does not parse: %s at %d:%d", err.text, err.line, err.column);
	fclose(f);
	return j;
}

static void assert_same_as_build(const struct cnsmp_batch *b)
{
	char **bodies;
	int n = cnsmp_payload_build(b, NULL, 0, &meta, 1 << 30, 1 << 30, &bodies);
	assert_int_equal(n, 1);
	json_t *built = parse(bodies[0]);
	struct cnsmp_meta m = meta;
	m.batch_id = "9f1c0e7a8b2d4c6e-17-0"; /* build appends the index */
	json_t *fd = written(b, &m);
	if (!json_equal(built, fd)) {
		char *x = json_dumps(built, JSON_SORT_KEYS), *y = json_dumps(fd, JSON_SORT_KEYS);
		fail_msg("write_fd differs from build:\nbuild %s\n   fd %s", x, y);
	}
	json_decref(built);
	json_decref(fd);
	free_bodies(bodies, n);
}

static void test_write_fd_says_what_build_says(void **state)
{
	struct cnsmp_batch b;
	small_batch(&b);
	assert_same_as_build(&b);
	b_release(&b);
	many_fns(&b, 300, 40, 1);
	assert_same_as_build(&b);
	b_release(&b);
}

static void test_odd_strings_and_numbers_are_cleaned_alike(void **state)
{
	struct cnsmp_batch b;
	small_batch(&b);
	static char longname[1200];
	memset(longname, 'n', sizeof longname - 1);
	memcpy(longname + 511, "\xc3\xa9", 2); /* a 2-byte character across the 512 cut */
	set_fn(0, longname, "dept \"quoted\"\\ \x01\t", 0.1, "dir/f\xff\xfe.c", 7, 0);
	set_fn(1, "", "", -3, NULL, 0, 0);
	b.incidents[0].first_seen = 1795000000.123456;
	b.incidents[0].last_seen = 0.3;
	b.start = 1795000000.987654321;
	b.fns[1].errors = 50; /* more errors than calls: capped */
	b.fns[1].estimated = 70; /* likewise */
	assert_same_as_build(&b);

	char **bodies;
	int n = cnsmp_payload_build(&b, NULL, 0, &meta, CNSMP_MAX_BODY, 2000, &bodies);
	json_t *j = parse(bodies[0]);
	json_t *f0 = json_array_get(json_object_get(j, "functions"), 0);
	json_t *f1 = json_array_get(json_object_get(j, "functions"), 1);
	assert_int_equal(strlen(json_string_value(json_object_get(f0, "name"))), 511);
	assert_string_equal(json_string_value(json_object_get(f0, "file")), "dir/f??.c");
	assert_string_equal(json_string_value(json_object_get(f1, "name")), "?");
	assert_string_equal(json_string_value(json_object_get(f1, "department")), "default");
	assert_true(json_real_value(json_object_get(f1, "value_weight")) == 0.0);
	assert_int_equal(json_integer_value(json_object_get(f1, "errors")), 12);
	assert_int_equal(json_integer_value(json_object_get(f1, "estimated_calls")), 12);
	json_decref(j);
	free_bodies(bodies, n);
	b_release(&b);
}

/* Counts past INT64_MAX cannot be read by the server (its integers are
 * signed 64-bit): both bodies say INT64_MAX, the crash path's as well. */
static void test_crash_body_and_normal_body_cap_counts_alike(void **state)
{
	struct cnsmp_batch b;
	small_batch(&b);
	b.fns[0].calls = UINT64_MAX;
	b.fns[0].errors = UINT64_MAX - 1;
	b.fns[0].hist[20] = UINT64_MAX;
	b.fns[0].hist[21] = (uint64_t)INT64_MAX + 1;
	b.edges[0].calls = UINT64_MAX;
	b.incidents[0].count = UINT64_MAX;
	b.dropped = UINT64_MAX;
	assert_same_as_build(&b);

	json_t *j = written(&b, &meta);
	json_t *f0 = json_array_get(json_object_get(j, "functions"), 0);
	json_t *h = json_object_get(f0, "hist");
	assert_int_equal(json_integer_value(json_object_get(f0, "calls")), INT64_MAX);
	assert_int_equal(json_integer_value(json_object_get(f0, "errors")), INT64_MAX);
	assert_int_equal(json_array_size(h), 2);
	assert_int_equal(json_integer_value(json_array_get(json_array_get(h, 0), 0)), 20);
	assert_int_equal(json_integer_value(json_array_get(json_array_get(h, 0), 1)), INT64_MAX);
	assert_int_equal(json_integer_value(json_array_get(json_array_get(h, 1), 1)), INT64_MAX);
	assert_int_equal(json_integer_value(json_object_get(
				 json_array_get(json_object_get(j, "edges"), 0), "calls")), INT64_MAX);
	assert_int_equal(json_integer_value(json_object_get(
				 json_array_get(json_object_get(j, "incidents"), 0), "count")), INT64_MAX);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "_meta"), "dropped")),
			 INT64_MAX);
	json_decref(j);
	b_release(&b);
}

/* The longest file path the server takes (tests/contract/accepted/
 * file-4096-bytes.json, which the server's tests post) is the longest the
 * runtime sends: that one whole, a longer one cut to it. */
static void test_file_path_is_sent_up_to_the_contracts_limit(void **state)
{
	json_error_t err;
	json_t *example = json_load_file("tests/contract/accepted/file-4096-bytes.json", 0, &err);
	if (!example)
		fail_msg("tests/contract/accepted/file-4096-bytes.json: %s", err.text);
	const char *path = json_string_value(json_object_get(
		json_array_get(json_object_get(example, "functions"), 0), "file"));
	assert_non_null(path);
	assert_int_equal(strlen(path), CNSMP_CONTRACT_FILE_MAX);
	static char longer[CNSMP_CONTRACT_FILE_MAX + 100];
	snprintf(longer, sizeof longer, "%s/more/than/the/server/takes.c", path);

	struct cnsmp_batch b;
	for (int k = 0; k < 2; k++) {
		small_batch(&b);
		fns[0].file = k ? longer : (char *)path;
		assert_same_as_build(&b);
		json_t *j = written(&b, &meta);
		json_t *f0 = json_array_get(json_object_get(j, "functions"), 0);
		assert_string_equal(json_string_value(json_object_get(f0, "file")), path);
		json_decref(j);
		b_release(&b);
	}
	json_decref(example);
}

static void test_split_rebuilds_a_big_spooled_body_within_limits(void **state)
{
	struct cnsmp_batch b;
	many_fns(&b, 4000, 30, 0);
	b.dropped = 5;
	FILE *f = tmpfile();
	assert_int_equal(cnsmp_payload_write_fd(fileno(f), &b, &meta), 0);
	long len = ftell(f);
	char *body = malloc((size_t)len + 1);
	rewind(f);
	assert_int_equal(fread(body, 1, (size_t)len, f), (size_t)len);
	body[len] = '\0';
	fclose(f);
	char **bodies, **again;
	int n = cnsmp_payload_split(body, CNSMP_MAX_BODY, 2000, &bodies);
	assert_int_equal(n, 2);
	uint64_t calls = 0, dropped = 0;
	for (int i = 0; i < n; i++) {
		json_t *j = parse(bodies[i]);
		json_t *fs = json_object_get(j, "functions");
		assert_true(json_array_size(fs) <= 2000);
		size_t k;
		json_t *v;
		json_array_foreach(fs, k, v) calls += (uint64_t)json_integer_value(json_object_get(v, "calls"));
		json_t *m = json_object_get(j, "_meta");
		dropped += (uint64_t)json_integer_value(json_object_get(m, "dropped"));
		char id[64];
		snprintf(id, sizeof id, "%s-%d", meta.batch_id, i);
		assert_string_equal(json_string_value(json_object_get(m, "batch_id")), id);
		json_decref(j);
	}
	assert_int_equal(calls, 4000ULL * 4001 / 2);
	assert_int_equal(dropped, 5);
	/* Deterministic: the same body splits the same way (resends dedup). */
	assert_int_equal(cnsmp_payload_split(body, CNSMP_MAX_BODY, 2000, &again), n);
	for (int i = 0; i < n; i++)
		assert_string_equal(bodies[i], again[i]);
	free_bodies(again, n);
	free_bodies(bodies, n);
	assert_int_equal(cnsmp_payload_split("not json", CNSMP_MAX_BODY, 2000, &bodies), -1);
	free(body);
	b_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_batch_is_exactly_the_documented_payload),
		cmocka_unit_test(test_file_and_line_only_while_not_sent),
		cmocka_unit_test(test_2000_functions_fit_one_body_and_2001_make_two),
		cmocka_unit_test(test_512k_limit_is_exact),
		cmocka_unit_test(test_inventory_is_split_by_size_too),
		cmocka_unit_test(test_flows_ride_with_their_inventory_records_within_512k),
		cmocka_unit_test(test_empty_batch_makes_no_body),
		cmocka_unit_test(test_write_fd_says_what_build_says),
		cmocka_unit_test(test_odd_strings_and_numbers_are_cleaned_alike),
		cmocka_unit_test(test_crash_body_and_normal_body_cap_counts_alike),
		cmocka_unit_test(test_file_path_is_sent_up_to_the_contracts_limit),
		cmocka_unit_test(test_split_rebuilds_a_big_spooled_body_within_limits),
	};
	return cmocka_run_group_tests_name("payload", tests, NULL, NULL);
}
