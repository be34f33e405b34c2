/* store.c: the store's connections (one per thread on SQLite, a bounded
 * pool on PostgreSQL), the log of database outages, and projects and their
 * keys (the schema is schema.c's and schema_pg.c's).
 *
 * SQLite: every thread of the HTTP pool gets its own connection (opened on
 * first use, closed at shutdown): connections are never shared, and in WAL
 * mode readers never wait for the writer.
 *
 * PostgreSQL: at most srv_store_pool connections per process, shared by
 * the threads: srv_store_get() takes one for the calling thread (waiting
 * up to SRV_POOL_WAIT_MS when all are busy), srv_store_release() gives it
 * back at the end of the request.  A connection found broken is closed
 * instead of returned; the next srv_store_get() opens a fresh one, so the
 * server recovers by itself once the database is back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "server.h"

#define SRV_POOL_WAIT_MS 5000

struct srv_store {
	struct db *db;
	struct srv_store *next;         /* every SQLite connection; the PG pool's free list */
};

int srv_store_pool = SRV_POOL_DEFAULT;
static char *db_target;
static int pg;
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freed = PTHREAD_COND_INITIALIZER;
static struct srv_store *all;       /* SQLite: every connection; PG: the idle ones */
static int open_count;              /* PG: connections open, idle or in use */
static _Thread_local struct srv_store *mine;
static atomic_int outage;           /* 1 from the first failure to the next success */

static struct srv_store *store_open(char *err)
{
	struct srv_store *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, SRV_ERRLEN, "out of memory");
		return NULL;
	}
	if (!(s->db = db_open(db_target, err))) {
		free(s);
		return NULL;
	}
	return s;
}

int srv_store_init(const char *target, char *err)
{
	free(db_target);
	db_target = strdup(target);
	pg = db_is_pg(target);
	if (pg && srv_pg_check_target(target, err) < 0)
		return -1;
	struct srv_store *s = srv_store_get(err);
	if (!s)
		return -1;
	int rc;
	if (pg) {
		rc = srv_schema_pg_ready(s, err);
	} else {
		/* Another server creating or migrating the same new file holds
		 * its write lock: wait for it (10 s), then find its schema. */
		for (int tries = 0;; tries++) {
			rc = srv_schema_ready(s, target, err);
			if (rc == 0 || tries >= 500 || db_fail(s->db) != DB_FAIL_UNAVAILABLE)
				break;
			db_rollback(s->db);
			usleep(20000);
		}
	}
	srv_store_release();
	return rc;
}

int srv_store_is_pg(void)
{
	return pg;
}

static void outage_over(void)
{
	int one = 1;
	if (atomic_compare_exchange_strong(&outage, &one, 0))
		fprintf(stderr, "codensm-server: database available again\n");
}

void srv_store_log(struct srv_store *s, const char *line)
{
	if (s && db_fail(s->db) != DB_FAIL_UNAVAILABLE) {
		fprintf(stderr, "codensm-server: %s\n", line);
		return;
	}
	int zero = 0;
	if (atomic_compare_exchange_strong(&outage, &zero, 1))
		fprintf(stderr, "codensm-server: database unavailable, answering 503 until it is back: %s\n",
			line);
}

static struct srv_store *pool_get(char *err)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SRV_POOL_WAIT_MS / 1000;
	until.tv_nsec += (SRV_POOL_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&all_lock);
	while (!all && open_count >= srv_store_pool)
		if (pthread_cond_timedwait(&freed, &all_lock, &until) == ETIMEDOUT) {
			pthread_mutex_unlock(&all_lock);
			snprintf(err, SRV_ERRLEN, "database unavailable: all %d connections busy for %d ms",
				 srv_store_pool, SRV_POOL_WAIT_MS);
			return NULL;
		}
	struct srv_store *s = all;
	if (s) {
		all = s->next;
		pthread_mutex_unlock(&all_lock);
		return s;
	}
	open_count++;
	pthread_mutex_unlock(&all_lock);
	if (!(s = store_open(err))) {
		pthread_mutex_lock(&all_lock);
		open_count--;
		pthread_cond_signal(&freed);
		pthread_mutex_unlock(&all_lock);
		return NULL;
	}
	return s;
}

struct srv_store *srv_store_get(char *err)
{
	if (mine)
		return mine;
	if (pg) {
		if ((mine = pool_get(err)))
			mine->db->fail = DB_FAIL_NONE;
		return mine;
	}
	if (!(mine = store_open(err)))
		return NULL;
	pthread_mutex_lock(&all_lock);
	mine->next = all;
	all = mine;
	pthread_mutex_unlock(&all_lock);
	return mine;
}

void srv_store_release(void)
{
	struct srv_store *s = mine;
	if (!pg || !s)
		return;
	mine = NULL;
	int ok = db_fail(s->db) != DB_FAIL_UNAVAILABLE;
	int alive = s->db->ops->ready(s->db);
	if (alive && ok)
		outage_over();
	/* A broken connection means the database went away (or restarted):
	 * the idle ones opened before are broken too, and go with it, so that
	 * the next requests open fresh ones instead of failing one by one. */
	struct srv_store *stale = NULL;
	pthread_mutex_lock(&all_lock);
	if (alive) {
		s->next = all;
		all = s;
	} else {
		s->next = all;
		stale = s;
		all = NULL;
		for (struct srv_store *x = stale; x; x = x->next)
			open_count--;
	}
	pthread_cond_broadcast(&freed);
	pthread_mutex_unlock(&all_lock);
	while (stale) {
		struct srv_store *x = stale;
		stale = x->next;
		db_close(x->db);
		free(x);
	}
}

struct db *srv_store_db(struct srv_store *s)
{
	return s->db;
}

void srv_store_shutdown(void)
{
	srv_store_release();
	pthread_mutex_lock(&all_lock);
	while (all) {
		struct srv_store *s = all;
		all = s->next;
		db_close(s->db);
		free(s);
	}
	open_count = 0;
	pthread_mutex_unlock(&all_lock);
	mine = NULL;
}

int srv_exec(struct srv_store *s, const char *sql, char *err)
{
	if (db_exec(s->db, sql) < 0) {
		snprintf(err, SRV_ERRLEN, "database: %s", db_errmsg(s->db));
		return -1;
	}
	return 0;
}

int srv_begin(struct srv_store *s, char *err)
{
	if (db_begin(s->db) < 0) {
		snprintf(err, SRV_ERRLEN, "database: %s", db_errmsg(s->db));
		return -1;
	}
	return 0;
}

int srv_commit(struct srv_store *s, char *err)
{
	if (db_commit(s->db) < 0) {
		snprintf(err, SRV_ERRLEN, "database: %s", db_errmsg(s->db));
		db_rollback(s->db);
		return -1;
	}
	return 0;
}

void srv_rollback(struct srv_store *s)
{
	db_rollback(s->db);
}

struct db_stmt *srv_stmt(struct srv_store *s, const char *sql, char *err)
{
	struct db_stmt *st = db_stmt(s->db, sql);
	if (!st)
		snprintf(err, SRV_ERRLEN, "database: %s", db_errmsg(s->db));
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

/* The name is unique in the schema: two servers creating one project at
 * once, one wins and the other is told it exists. */
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
	struct db_stmt *st = srv_stmt(s, "INSERT INTO projects(name, plan, ingest_hash, dashboard_hash,"
				      " created_at) VALUES(?1, ?2, ?3, ?4, ?5)", err);
	if (!st)
		return -1;
	db_bind_text(st, 1, name, -1);
	db_bind_text(st, 2, plan, -1);
	db_bind_blob(st, 3, ih, SRV_HASHLEN);
	db_bind_blob(st, 4, dh, SRV_HASHLEN);
	db_bind_double(st, 5, srv_now());
	int rc = db_step(st);
	if (rc == DB_ERROR && db_fail(s->db) == DB_FAIL_CONSTRAINT) {
		snprintf(err, SRV_ERRLEN, "project '%s' already exists", name);
		return -1;
	}
	if (rc != DB_DONE) {
		snprintf(err, SRV_ERRLEN, "database: %s", db_errmsg(s->db));
		return -1;
	}
	return 0;
}

/* Compares the key's hash with every project's in constant time, instead of
 * looking the hash up in an index: a server holds a handful of projects,
 * and no comparison then stops early on a matching prefix. */
int srv_project_by_key(struct srv_store *s, char kind, const char *key,
		       struct srv_project *p, char *err)
{
	unsigned char h[SRV_HASHLEN];
	const char *prefix = kind == 'i' ? "cnsm_" : kind == 'm' ? "cnsmm_" : "cnsmv_";
	int found = 0;

	if (!key || strncmp(key, prefix, strlen(prefix)) != 0)
		return 0;
	srv_key_hash(key, h);
	struct db_stmt *st = srv_stmt(s, kind == 'i'
				      ? "SELECT id, name, plan, ingest_hash FROM projects"
				      : kind == 'm' ? "SELECT id, name, plan, manage_hash FROM projects"
				      : "SELECT id, name, plan, dashboard_hash FROM projects", err);
	if (!st)
		return -1;
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		int n;
		const void *stored = db_column_blob(st, 3, &n);
		if (n != SRV_HASHLEN || !srv_hash_equal(stored, h))
			continue;
		p->id = db_column_int64(st, 0);
		snprintf(p->name, sizeof p->name, "%s", db_column_text(st, 1));
		snprintf(p->plan, sizeof p->plan, "%s", db_column_text(st, 2));
		found = 1;
	}
	if (rc != DB_DONE) {
		snprintf(err, SRV_ERRLEN, "database: %s", db_errmsg(s->db));
		return -1;
	}
	db_reset(st);
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
	struct db_stmt *st = srv_stmt(s, "UPDATE projects SET manage_hash = ?1 WHERE name = ?2", err);
	if (!st)
		return -1;
	db_bind_blob(st, 1, h, SRV_HASHLEN);
	db_bind_text(st, 2, name, -1);
	int rc = db_step(st);
	int64_t changed = db_changes(s->db);
	db_reset(st);
	if (rc != DB_DONE) {
		snprintf(err, SRV_ERRLEN, "database: %s", db_errmsg(s->db));
		return -1;
	}
	if (changed == 0) {
		snprintf(err, SRV_ERRLEN, "no project '%s'", name);
		return -1;
	}
	return 0;
}

/* The request's first query.  A pooled PostgreSQL connection the database
 * dropped (it restarted while the connection was idle) is only found
 * broken when used: it is closed and the query tried once more on a
 * fresh one, so the first request after a restart is not a 503. */
int srv_store_auth(char kind, const char *key, struct srv_project *p, struct srv_store **st,
		   char *err)
{
	for (int tries = 0;; tries++) {
		if (!(*st = srv_store_get(err)))
			return -1;
		int found = srv_project_by_key(*st, kind, key, p, err);
		if (found >= 0 || tries || !pg || db_fail((*st)->db) != DB_FAIL_UNAVAILABLE)
			return found;
		srv_store_release();
	}
}
