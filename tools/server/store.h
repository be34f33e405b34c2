/* store.h: the store's interface: what ingest, the API views and main ask
 * of the database, on SQLite (the embedded default) or PostgreSQL (several
 * servers on one database), through the statement layer of db.h.
 * server.h includes it; every err is a caller-owned buffer of SRV_ERRLEN
 * bytes (server.h), filled with one line on failure.
 */
#ifndef CODENSM_SERVER_STORE_H
#define CODENSM_SERVER_STORE_H

#include <stdint.h>
#include "db.h"

/* ---- store.c: connections ---------------------------------------------------- */

/* SQLite: one connection per thread, opened on first use, WAL +
 * synchronous=FULL.  PostgreSQL: a pool of at most srv_store_pool
 * connections shared by the threads (--db-pool). */
#define SRV_POOL_DEFAULT 8
extern int srv_store_pool;
struct srv_store;
/* target: a SQLite path, or a PostgreSQL connection string (db_is_pg);
 * the schema is created or migrated. */
int srv_store_init(const char *target, char *err);
int srv_store_is_pg(void);
/* This thread's connection: NULL (err filled) when none can be had. */
struct srv_store *srv_store_get(char *err);
/* Gives this thread's connection back to the pool (PostgreSQL; a no-op on
 * SQLite, whose connections stay with their thread). */
void srv_store_release(void);
void srv_store_shutdown(void);                      /* closes every connection */
struct db *srv_store_db(struct srv_store *s);
/* Logs a database failure: "codensm-server: <line>", except for the
 * database being unavailable (s NULL or its last failure so), which is
 * logged once per outage. */
void srv_store_log(struct srv_store *s, const char *line);
/* A cached prepared statement for a constant SQL text (db.h's rules),
 * reset and with its bindings cleared; NULL (err filled) on failure. */
struct db_stmt *srv_stmt(struct srv_store *s, const char *sql, char *err);
int srv_exec(struct srv_store *s, const char *sql, char *err);
/* A write transaction: BEGIN IMMEDIATE on SQLite, BEGIN on PostgreSQL.
 * srv_commit rolls back when COMMIT fails. */
int srv_begin(struct srv_store *s, char *err);
int srv_commit(struct srv_store *s, char *err);
void srv_rollback(struct srv_store *s);

/* db_pg.c: refuses a connection string that carries a password (one line
 * in err): passwords come from PGPASSWORD, ~/.pgpass or a service file. */
int srv_pg_check_target(const char *target, char *err);

/* schema.c: creates the schema in an empty file, migrates an older one in
 * place (one transaction), refuses a newer one (err names the versions). */
int srv_schema_ready(struct srv_store *s, const char *path, char *err);
/* schema_pg.c: the same on PostgreSQL, under an advisory lock so that
 * servers starting at once migrate once; also creates the coming days'
 * partitions. */
int srv_schema_pg_ready(struct srv_store *s, char *err);
/* Creates the per-minute tables' partitions from today to a few days ahead
 * (idempotent); drops those wholly older than keep_from, adding their rows
 * to dropped[0..2] (buckets, hist, edges).  Its own transaction. */
int srv_pg_partitions(struct srv_store *s, double now, int64_t keep_from, int64_t dropped[3],
		      char *err);
/* Creates the partitions of the day of t if missing (its own transaction),
 * unless this process did so already; srv_pg_forget_days() forgets. */
int srv_pg_ensure_day(struct srv_store *s, int64_t t, char *err);
void srv_pg_forget_days(void);

/* ---- retention.c: what is kept ---------------------------------------------- */

#define SRV_KEEP_SECONDS    (32 * 86400)  /* buckets, hist, edges, incidents: 30-day window + 2 days */
#define SRV_REPLAY_SECONDS  (35 * 86400)  /* a replayed body lands at its own time; its batch id is kept */

struct srv_pruned {
	int64_t buckets, hist, edges, incidents, batches;   /* rows deleted */
};
/* Deletes what is older than the horizons above, as seen at `now`. */
int srv_store_prune(struct srv_store *s, double now, struct srv_pruned *out, char *err);

/* ---- store.c: projects and their keys ----------------------------------------- */

struct srv_project {
	int64_t id;
	char name[72];
	char plan[8];
};
#define SRV_PROJECT_NAME_MAX 64
int srv_project_name_ok(const char *name);
/* Creates a project; writes its two keys (each at least 48 bytes). */
int srv_project_create(struct srv_store *s, const char *name, const char *plan,
		       char *ingest_key, char *dash_key, char *err);
/* Finds the project whose ingest (kind 'i') or dashboard (kind 'd') key
 * hashes to the given key: 1 found, 0 no such key, -1 error. */
int srv_project_by_key(struct srv_store *s, char kind, const char *key,
		       struct srv_project *p, char *err);
int64_t srv_plan_quota(const char *plan);           /* -1 for an unknown plan */
/* srv_project_by_key on this thread's connection (*st, which may be NULL
 * on -1), with one more try on a fresh PostgreSQL connection when the
 * pooled one turns out to be broken. */
int srv_store_auth(char kind, const char *key, struct srv_project *p, struct srv_store **st,
		   char *err);

#endif
