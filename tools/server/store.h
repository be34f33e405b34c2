/* store.h: the store's interface: what ingest, the API views and main ask
 * of the database, implemented for SQLite by store.c, schema.c and
 * retention.c.  server.h includes it; every err is a caller-owned buffer of
 * SRV_ERRLEN bytes (server.h), filled with one line on failure.
 *
 * Not every caller stays behind it yet: the views and ingest still prepare
 * SQL of their own through srv_stmt() on the connection; what a second
 * store (PostgreSQL) has to provide is the functions below plus those
 * statements.
 */
#ifndef CODENSM_SERVER_STORE_H
#define CODENSM_SERVER_STORE_H

#include <stdint.h>
#include <sqlite3.h>

/* ---- store.c: connections ---------------------------------------------------- */

/* One connection per thread (SQLite connections are not shared between
 * threads here); srv_store_get() opens the calling thread's connection on
 * first use.  WAL + synchronous=FULL: a committed transaction is on disk. */
struct srv_store;
int srv_store_init(const char *path, char *err);   /* the schema, migrated */
struct srv_store *srv_store_get(char *err);         /* this thread's connection */
void srv_store_shutdown(void);                      /* closes every connection */
sqlite3 *srv_store_db(struct srv_store *s);
/* A cached prepared statement for a constant SQL text, reset and with its
 * bindings cleared; NULL (err filled) on a prepare failure. */
sqlite3_stmt *srv_stmt(struct srv_store *s, const char *sql, char *err);
int srv_exec(struct srv_store *s, const char *sql, char *err);

/* schema.c: creates the schema in an empty file, migrates an older one in
 * place (one transaction), refuses a newer one (err names the versions). */
int srv_schema_ready(struct srv_store *s, const char *path, char *err);

/* ---- retention.c: what is kept ---------------------------------------------- */

#define SRV_KEEP_SECONDS    (32 * 86400)  /* buckets, hist, edges, incidents: 30-day window + 2 days */
#define SRV_REPLAY_SECONDS  (35 * 86400)  /* a replayed body lands at its own time; its batch id is kept */

struct srv_pruned {
	int64_t buckets, hist, edges, incidents, batches;   /* rows deleted */
	int64_t probes;          /* expired probes and builds no longer run */
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
/* Finds the project whose ingest (kind 'i'), dashboard (kind 'd') or
 * manage (kind 'm') key hashes to the given key: 1 found, 0 no such key,
 * -1 error. */
int srv_project_by_key(struct srv_store *s, char kind, const char *key,
		       struct srv_project *p, char *err);
int64_t srv_plan_quota(const char *plan);
/* Draws a new manage key (cnsmm_..., at least 48 bytes) for the project
 * named, replacing its old one: 0, or -1 with err (no such project). */
int srv_project_manage_key(struct srv_store *s, const char *name, char *key, char *err);           /* -1 for an unknown plan */

#endif
