/* store.c: the SQLite file: one connection per thread, cached prepared
 * statements, projects and their keys (the schema is schema.c's).
 *
 * Every thread of the HTTP pool gets its own connection (opened on first
 * use, closed at shutdown): SQLite connections are then never shared, and in
 * WAL mode readers never wait for the writer.  Writers take the write lock
 * up front (BEGIN IMMEDIATE) and wait up to busy_timeout for each other.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define STMT_CACHE 64

struct srv_store {
	sqlite3 *db;
	struct { const char *sql; sqlite3_stmt *st; } cache[STMT_CACHE];
	int ncache;
	struct srv_store *next;         /* the list of every connection */
};

static char *db_path;
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct srv_store *all;
static _Thread_local struct srv_store *mine;

static void sql_state(sqlite3_context *ctx, int argc, sqlite3_value **v)
{
	sqlite3_result_text(ctx, srv_state(sqlite3_value_int64(v[0]), sqlite3_value_int64(v[1]),
					   sqlite3_value_int64(v[2]), sqlite3_value_int(v[3]),
					   sqlite3_value_int64(v[4]), sqlite3_value_int64(v[5])),
			    -1, SQLITE_STATIC);
}

static struct srv_store *store_open(char *err)
{
	struct srv_store *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, SRV_ERRLEN, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(db_path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, SRV_ERRLEN, "cannot open database '%s': %s", db_path,
			 s->db ? sqlite3_errmsg(s->db) : "out of memory");
		sqlite3_close(s->db);
		free(s);
		return NULL;
	}
	sqlite3_busy_timeout(s->db, 10000);
	if (srv_exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		     " PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;", err) < 0) {
		sqlite3_close(s->db);
		free(s);
		return NULL;
	}
	/* The live state as an SQL function, so that the employees list can
	 * filter and sort on it in SQL with the one definition in metrics.c. */
	if (sqlite3_create_function(s->db, "cnsm_state", 6, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
				    NULL, sql_state, NULL, NULL) != SQLITE_OK) {
		snprintf(err, SRV_ERRLEN, "database: %s", sqlite3_errmsg(s->db));
		sqlite3_close(s->db);
		free(s);
		return NULL;
	}
	pthread_mutex_lock(&all_lock);
	s->next = all;
	all = s;
	pthread_mutex_unlock(&all_lock);
	return s;
}

int srv_store_init(const char *path, char *err)
{
	free(db_path);
	db_path = strdup(path);
	struct srv_store *s = srv_store_get(err);
	if (!s)
		return -1;
	return srv_schema_ready(s, path, err);
}

struct srv_store *srv_store_get(char *err)
{
	if (!mine)
		mine = store_open(err);
	return mine;
}

sqlite3 *srv_store_db(struct srv_store *s)
{
	return s->db;
}

void srv_store_shutdown(void)
{
	pthread_mutex_lock(&all_lock);
	while (all) {
		struct srv_store *s = all;
		all = s->next;
		for (int i = 0; i < s->ncache; i++)
			sqlite3_finalize(s->cache[i].st);
		sqlite3_close(s->db);
		free(s);
	}
	pthread_mutex_unlock(&all_lock);
	mine = NULL;
}

int srv_exec(struct srv_store *s, const char *sql, char *err)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, SRV_ERRLEN, "database: %s", msg ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* The cache is keyed by the SQL text's address: every caller passes a
 * string literal, so the same statement is the same pointer.  A linear scan
 * of a few dozen entries costs less than one sqlite3_prepare. */
sqlite3_stmt *srv_stmt(struct srv_store *s, const char *sql, char *err)
{
	for (int i = 0; i < s->ncache; i++)
		if (s->cache[i].sql == sql) {
			sqlite3_reset(s->cache[i].st);
			sqlite3_clear_bindings(s->cache[i].st);
			return s->cache[i].st;
		}
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		snprintf(err, SRV_ERRLEN, "database: %s", sqlite3_errmsg(s->db));
		return NULL;
	}
	if (s->ncache < STMT_CACHE) {
		s->cache[s->ncache].sql = sql;
		s->cache[s->ncache].st = st;
		s->ncache++;
	}
	/* A full cache would leak st: STMT_CACHE is above the number of
	 * statements in the program, so this does not happen. */
	return st;
}

int srv_project_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n < 1 || n > SRV_PROJECT_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return name[0] != '.';
}

int64_t srv_plan_quota(const char *plan)
{
	if (!strcmp(plan, "free"))
		return 100000;
	if (!strcmp(plan, "team"))
		return 5000000;
	if (!strcmp(plan, "scale"))
		return 50000000;
	return -1;
}

int srv_project_create(struct srv_store *s, const char *name, const char *plan,
		       char *ingest_key, char *dash_key, char *err)
{
	unsigned char ih[SRV_HASHLEN], dh[SRV_HASHLEN];

	if (!srv_project_name_ok(name)) {
		snprintf(err, SRV_ERRLEN, "invalid project name '%s': use 1..64 of A-Z a-z 0-9 . _ -",
			 name);
		return -1;
	}
	if (srv_plan_quota(plan) < 0) {
		snprintf(err, SRV_ERRLEN, "unknown plan '%s': use free, team or scale", plan);
		return -1;
	}
	if (srv_key_new("cnsm_", ingest_key, 48) < 0 || srv_key_new("cnsmv_", dash_key, 48) < 0) {
		snprintf(err, SRV_ERRLEN, "cannot draw a random key");
		return -1;
	}
	srv_key_hash(ingest_key, ih);
	srv_key_hash(dash_key, dh);
	sqlite3_stmt *st = srv_stmt(s, "INSERT INTO projects(name, plan, ingest_hash, dashboard_hash,"
				    " created_at) VALUES(?1, ?2, ?3, ?4, ?5)", err);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, plan, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 3, ih, SRV_HASHLEN, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 4, dh, SRV_HASHLEN, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 5, srv_now());
	int rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT) {
		snprintf(err, SRV_ERRLEN, "project '%s' already exists", name);
		return -1;
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, SRV_ERRLEN, "database: %s", sqlite3_errmsg(s->db));
		return -1;
	}
	return 0;
}

/* Compares the key's hash with every project's in constant time, instead of
 * looking the hash up in an index: a local server holds a handful of
 * projects, and no comparison then stops early on a matching prefix. */
int srv_project_by_key(struct srv_store *s, char kind, const char *key,
		       struct srv_project *p, char *err)
{
	unsigned char h[SRV_HASHLEN];
	const char *prefix = kind == 'i' ? "cnsm_" : kind == 'm' ? "cnsmm_" : "cnsmv_";
	int found = 0;

	if (!key || strncmp(key, prefix, strlen(prefix)) != 0)
		return 0;
	srv_key_hash(key, h);
	sqlite3_stmt *st = srv_stmt(s, kind == 'i'
				    ? "SELECT id, name, plan, ingest_hash FROM projects"
				    : kind == 'm' ? "SELECT id, name, plan, manage_hash FROM projects"
				    : "SELECT id, name, plan, dashboard_hash FROM projects", err);
	if (!st)
		return -1;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *stored = sqlite3_column_blob(st, 3);
		if (sqlite3_column_bytes(st, 3) != SRV_HASHLEN || !srv_hash_equal(stored, h))
			continue;
		p->id = sqlite3_column_int64(st, 0);
		snprintf(p->name, sizeof p->name, "%s", (const char *)sqlite3_column_text(st, 1));
		snprintf(p->plan, sizeof p->plan, "%s", (const char *)sqlite3_column_text(st, 2));
		found = 1;
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, SRV_ERRLEN, "database: %s", sqlite3_errmsg(s->db));
		return -1;
	}
	sqlite3_reset(st);
	return found;
}

/* A project made before manage keys has none (NULL) until this. */
int srv_project_manage_key(struct srv_store *s, const char *name, char *key, char *err)
{
	unsigned char h[SRV_HASHLEN];
	if (srv_key_new("cnsmm_", key, 48) < 0) {
		snprintf(err, SRV_ERRLEN, "cannot draw a random key");
		return -1;
	}
	srv_key_hash(key, h);
	sqlite3_stmt *st = srv_stmt(s, "UPDATE projects SET manage_hash = ?1 WHERE name = ?2", err);
	if (!st)
		return -1;
	sqlite3_bind_blob(st, 1, h, SRV_HASHLEN, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		snprintf(err, SRV_ERRLEN, "database: %s", sqlite3_errmsg(s->db));
		return -1;
	}
	if (sqlite3_changes(s->db) == 0) {
		snprintf(err, SRV_ERRLEN, "no project '%s'", name);
		return -1;
	}
	return 0;
}
