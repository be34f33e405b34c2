/* fuzz_ingest.c: libFuzzer target for codensm-server's ingest handler: the
 * input is a request body, handed to srv_ingest() exactly as http.c hands
 * it over (pointer + length, no terminating NUL), against an in-memory
 * SQLite store; every body the server accepts is then read back through
 * the dashboard's views, so hostile data that got stored is also rendered.
 *
 * A probe of each type (ids h, l, i, s) stands from the start, so that a
 * body's "probes" reports reach the writes, and each is read back merged.
 *
 * No HTTP is involved: srv_ingest(auth, body, len, now) is the seam.  The
 * store is emptied (projects kept) before every input, so one input's
 * effect never depends on the ones before it and a crash replays alone.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "store.h"

#define NOW 1795000010.0   /* fixed clock: event_time() decisions replay */

static char ingest_auth[80], dash_auth[80];

static void die(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_ingest: %s: %s\n", what, err);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[SRV_ERRLEN], ikey[48], dkey[48];
	if (srv_store_init(":memory:", err) < 0)
		die("store", err);
	struct srv_store *st = srv_store_get(err);
	/* "scale": a quota large enough that most inputs reach the writes. */
	if (!st || srv_project_create(st, "fuzz", "scale", ikey, dkey, err) < 0)
		die("project", err);
	static const char *const probe_types[][2] = {
		{ "h", "hist" }, { "l", "log" }, { "i", "incr" }, { "s", "stack" } };
	for (size_t i = 0; i < 4; i++) {
		struct srv_probe p = { .id = probe_types[i][0], .target = "fuzz",
				       .type = probe_types[i][1], .lifespan = 10080,
				       .lastmodified = NOW - 60 };
		if (srv_probe_insert(st, 1, &p, NOW - 60, err) != 0)
			die("probe", err);
	}
	snprintf(ingest_auth, sizeof ingest_auth, "Bearer %s", ikey);
	snprintf(dash_auth, sizeof dash_auth, "Bearer %s", dkey);
	return 0;
}

/* The views' query parameters: defaults, except the function that the
 * graph and prompt views are asked about. */
static const char *query(void *ctx, const char *key)
{
	return strcmp(key, "fn") ? NULL : ctx;
}

static void check_reply(struct srv_reply *r, const char *what)
{
	/* every answer is a JSON object, and a 503 means the store broke:
	 * with one thread and an in-memory file, that is a bug */
	if (!json_is_object(r->body) || r->status == 503) {
		char *t = r->body ? json_dumps(r->body, JSON_COMPACT) : NULL;
		fprintf(stderr, "fuzz_ingest: %s answered %u %s\n", what, r->status, t ? t : "(none)");
		abort();
	}
	json_decref(r->body);
	r->body = NULL;
}

static void read_back(const char *fn)
{
	static const char *const views[] = { "summary", "departments", "functions", "office",
					     "debt", "underuse", "incidents", "code", "probes",
					     "probes/h", "probes/l", "probes/i", "probes/s",
					     "incidents/1/rca", "graph", "prompt", "flow" };
	for (size_t i = 0; i < sizeof views / sizeof *views; i++) {
		char path[64];
		struct srv_reply r = { 0 };
		if (!fn && i >= 14)
			break;
		snprintf(path, sizeof path, "projects/fuzz/%s", views[i]);
		srv_api(dash_auth, path, query, (void *)fn, NOW, &r);
		check_reply(&r, path);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[SRV_ERRLEN];
	if (fuzz_empty_store(err) < 0)
		die("reset", err);

	/* An exact copy, so that ASan sees any read past the body's end. */
	char *body = malloc(size ? size : 1);
	if (!body)
		return 0;
	memcpy(body, data, size);
	struct srv_reply r = { 0 };
	srv_ingest(ingest_auth, body, size, NOW, &r);
	unsigned status = r.status;
	if (status != 200 && status != 400 && status != 413 && status != 429) {
		fprintf(stderr, "fuzz_ingest: unexpected status %u\n", status);
		abort();
	}
	check_reply(&r, "ingest");

	if (status == 200) {
		/* the same batch again: a duplicate when it had a batch id */
		srv_ingest(ingest_auth, body, size, NOW, &r);
		if (r.status != 200 && r.status != 429)
			die("replay", "a body accepted once is refused the second time");
		check_reply(&r, "ingest again");
		json_t *root = json_loadb(body, size, 0, NULL);
		const char *fn = json_string_value(json_object_get(
			json_array_get(json_object_get(root, "functions"), 0), "name"));
		read_back(fn);
		json_decref(root);
	}

	/* The body as a key: whatever it holds, it is no key of ours. */
	char *auth = malloc(size + 8);
	if (auth) {
		memcpy(auth, "Bearer ", 7);
		memcpy(auth + 7, data, size);
		auth[size + 7] = '\0';
		srv_ingest(auth, "{}", 2, NOW, &r);
		if (r.status != 401)
			die("auth", "a key made of the input was accepted");
		check_reply(&r, "ingest with the input as key");
		free(auth);
	}
	free(body);
	return 0;
}
