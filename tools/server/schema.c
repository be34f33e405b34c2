/* schema.c: the SQLite file's schema, and the migrations that bring an
 * older file to it, numbered by PRAGMA user_version.
 *
 * Version 0 is the schema of the first servers (no foreign keys, edges keyed
 * by name, months as text); version 1 is the one below; version 2 adds the
 * flows of CODENSM_MODE=full (schema_v2_added).  srv_schema_ready()
 * creates it in an empty file, migrates an older file in place in one
 * transaction, and refuses a file newer than this server knows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define SCHEMA_VERSION 2

/* Every time is unix seconds (UTC) as a number: bucket_start, month_start
 * and the retention horizons are whole seconds, the instants a client or
 * the server reports (first_seen, received_at, ...) may carry a fraction.
 *
 * Functions and names use integer ids so that a bucket or edge row stays a
 * few dozen bytes.  The time-series tables (buckets, hist, edges) are
 * WITHOUT ROWID, keyed (project, bucket_start, ...) for window scans and
 * for pruning by age; buckets and hist have a second index (project,
 * function, bucket_start) for one function's history.
 *
 * names holds every function name an edge mentions: an edge may name a
 * function the project never reported counts for (the graph shows it with
 * no department), so edges cannot reference functions.  functions and
 * names are bounded by the program's functions, not by time, and are not
 * pruned; the *_total columns of functions are lifetime counters (the
 * Prometheus export) that pruning leaves alone. */
static const char schema_v1[] =
	"CREATE TABLE projects("
	" id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, plan TEXT NOT NULL,"
	" ingest_hash BLOB NOT NULL, dashboard_hash BLOB NOT NULL, created_at REAL NOT NULL);"
	"CREATE TABLE functions("
	" id INTEGER PRIMARY KEY,"
	" project INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
	" name TEXT NOT NULL, department TEXT NOT NULL, value_weight REAL NOT NULL,"
	" file TEXT, line INTEGER, first_seen REAL, last_seen REAL,"
	" in_inventory INTEGER NOT NULL DEFAULT 0, calls_total INTEGER NOT NULL DEFAULT 0,"
	" errors_total INTEGER NOT NULL DEFAULT 0, total_ms_total REAL NOT NULL DEFAULT 0,"
	" value_total REAL NOT NULL DEFAULT 0,"
	" UNIQUE(project, name));"
	"CREATE TABLE buckets("
	" project INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
	" bucket_start INTEGER NOT NULL,"
	" function INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,"
	" calls INTEGER NOT NULL, errors INTEGER NOT NULL, total_ms REAL NOT NULL,"
	" self_ms REAL NOT NULL, max_ms REAL NOT NULL, value REAL NOT NULL,"
	" estimated INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY(project, bucket_start, function)) WITHOUT ROWID;"
	"CREATE INDEX buckets_by_function ON buckets(project, function, bucket_start);"
	"CREATE TABLE hist("
	" project INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
	" bucket_start INTEGER NOT NULL,"
	" function INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,"
	" b INTEGER NOT NULL, count INTEGER NOT NULL,"
	" PRIMARY KEY(project, bucket_start, function, b)) WITHOUT ROWID;"
	"CREATE INDEX hist_by_function ON hist(project, function, bucket_start);"
	"CREATE TABLE names("
	" id INTEGER PRIMARY KEY,"
	" project INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
	" name TEXT NOT NULL, UNIQUE(project, name));"
	"CREATE TABLE edges("
	" project INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
	" bucket_start INTEGER NOT NULL,"
	" caller INTEGER NOT NULL REFERENCES names(id) ON DELETE CASCADE,"
	" callee INTEGER NOT NULL REFERENCES names(id) ON DELETE CASCADE,"
	" calls INTEGER NOT NULL,"
	" PRIMARY KEY(project, bucket_start, caller, callee)) WITHOUT ROWID;"
	"CREATE TABLE incidents("
	" id INTEGER PRIMARY KEY,"
	" project INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
	" chain_hash BLOB NOT NULL,"
	" kind TEXT NOT NULL, signal INTEGER NOT NULL, chain TEXT NOT NULL,"
	" function TEXT NOT NULL, count INTEGER NOT NULL,"
	" first_seen REAL NOT NULL, last_seen REAL NOT NULL, UNIQUE(project, chain_hash));"
	"CREATE INDEX incidents_by_time ON incidents(project, last_seen);"
	"CREATE TABLE batches("
	" project INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
	" batch_id TEXT NOT NULL, received_at REAL NOT NULL,"
	" PRIMARY KEY(project, batch_id)) WITHOUT ROWID;"
	"CREATE INDEX batches_by_time ON batches(project, received_at);"
	"CREATE TABLE usage("
	" project INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
	" month_start INTEGER NOT NULL, calls INTEGER NOT NULL,"
	" overage INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(project, month_start)) WITHOUT ROWID;";

/* Version 1 -> 2: each function's latest flow (docs/flows.md), keyed by
 * name like the functions it describes (a flow may arrive before the
 * function's first counts), with the complexity counts as columns for the
 * views' sorting and sums, and where it came from (service, the
 * program's build-id, batch).  Like
 * functions, bounded by the program's size and never pruned. */
static const char schema_v2_added[] =
	"CREATE TABLE flows("
	" project INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
	" name TEXT NOT NULL, flow TEXT NOT NULL,"
	" decisions INTEGER NOT NULL, loops INTEGER NOT NULL, returns INTEGER NOT NULL,"
	" nodes_count INTEGER NOT NULL, lines INTEGER NOT NULL, has_tests INTEGER NOT NULL,"
	" service TEXT, build_id TEXT, batch_id TEXT, received_at REAL NOT NULL,"
	" PRIMARY KEY(project, name)) WITHOUT ROWID;";

/* Version 0 -> 1, inside the caller's transaction, foreign keys off.  The
 * old tables are renamed aside, the new ones created and filled, the old
 * ones dropped.  Rows whose project or function no longer exists (version
 * 0 enforced nothing) are left behind: the new file's foreign keys would
 * refuse them.  The lifetime counters start from the buckets' sums, which
 * are lifetime sums in version 0 (it deleted nothing). */
static const char migrate_v0_v1[] =
	"ALTER TABLE projects RENAME TO v0_projects;"
	"ALTER TABLE functions RENAME TO v0_functions;"
	"ALTER TABLE buckets RENAME TO v0_buckets;"
	"ALTER TABLE hist RENAME TO v0_hist;"
	"ALTER TABLE edges RENAME TO v0_edges;"
	"ALTER TABLE incidents RENAME TO v0_incidents;"
	"ALTER TABLE batches RENAME TO v0_batches;"
	"ALTER TABLE usage RENAME TO v0_usage;"
	"DROP INDEX IF EXISTS buckets_by_function;"
	"DROP INDEX IF EXISTS hist_by_function;"
	"DROP INDEX IF EXISTS incidents_by_time;"
	"%s"   /* schema_v1 */
	"INSERT INTO projects SELECT id, name, plan, ingest_hash, dashboard_hash, created_at"
	" FROM v0_projects;"
	"INSERT INTO functions(id, project, name, department, value_weight, file, line,"
	" first_seen, last_seen, in_inventory, calls_total, errors_total, total_ms_total, value_total)"
	" SELECT f.id, f.project, f.name, f.department, f.value_weight, f.file, f.line,"
	"  f.first_seen, f.last_seen, f.in_inventory, f.calls_total, COALESCE(s.e, 0),"
	"  COALESCE(s.t, 0.0), COALESCE(s.v, 0.0)"
	" FROM v0_functions f LEFT JOIN (SELECT function, SUM(errors) e, SUM(total_ms) t,"
	"  SUM(value) v FROM v0_buckets GROUP BY function) s ON s.function = f.id"
	" WHERE f.project IN (SELECT id FROM projects);"
	"INSERT INTO buckets SELECT project, bucket_start, function, calls, errors, total_ms,"
	" self_ms, max_ms, value, estimated FROM v0_buckets"
	" WHERE project IN (SELECT id FROM projects) AND function IN (SELECT id FROM functions);"
	"INSERT INTO hist SELECT project, bucket_start, function, b, count FROM v0_hist"
	" WHERE project IN (SELECT id FROM projects) AND function IN (SELECT id FROM functions);"
	"INSERT INTO names(project, name)"
	" SELECT project, caller FROM v0_edges WHERE project IN (SELECT id FROM projects)"
	" UNION SELECT project, callee FROM v0_edges WHERE project IN (SELECT id FROM projects)"
	" ORDER BY 1, 2;"
	"INSERT INTO edges SELECT e.project, e.bucket_start, c.id, d.id, e.calls FROM v0_edges e"
	" JOIN names c ON c.project = e.project AND c.name = e.caller"
	" JOIN names d ON d.project = e.project AND d.name = e.callee;"
	"INSERT INTO incidents SELECT id, project, chain_hash, kind, signal, chain, function,"
	" count, first_seen, last_seen FROM v0_incidents WHERE project IN (SELECT id FROM projects);"
	"INSERT INTO batches SELECT project, batch_id, received_at FROM v0_batches"
	" WHERE project IN (SELECT id FROM projects);"
	"INSERT INTO usage SELECT project, unixepoch(month || '-01'), calls, overage FROM v0_usage"
	" WHERE project IN (SELECT id FROM projects) AND unixepoch(month || '-01') IS NOT NULL;"
	"DROP TABLE v0_projects; DROP TABLE v0_functions; DROP TABLE v0_buckets; DROP TABLE v0_hist;"
	"DROP TABLE v0_edges; DROP TABLE v0_incidents; DROP TABLE v0_batches; DROP TABLE v0_usage;";

/* Columns the version-0 schema gained over its life, each with a default
 * that means what a file without it meant: a version-0 file gets them
 * before it is migrated. */
static const struct { const char *table, *column, *ddl; } v0_added[] = {
	/* calls of the bucket whose time was estimated (sampled timing) */
	{ "buckets", "estimated", "ALTER TABLE buckets ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0" },
};

/* One integer from a query: 0 with *out set, -1 with err. */
static int query_int(struct srv_store *s, const char *sql, const char *arg, int64_t *out,
		     char *err)
{
	struct db *db = srv_store_db(s);
	struct db_stmt *st = db_prepare(db, sql);
	if (!st) {
		snprintf(err, SRV_ERRLEN, "database: %s", db_errmsg(db));
		return -1;
	}
	if (arg)
		db_bind_text(st, 1, arg, -1);
	int rc = db_step(st);
	*out = rc == DB_ROW ? db_column_int64(st, 0) : 0;
	if (rc == DB_ERROR)
		snprintf(err, SRV_ERRLEN, "database: %s", db_errmsg(db));
	db_finalize(st);
	return rc == DB_ERROR ? -1 : 0;
}

static int v0_add_columns(struct srv_store *s, char *err)
{
	char sql[112];
	for (size_t i = 0; i < sizeof v0_added / sizeof *v0_added; i++) {
		int64_t has;
		snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM pragma_table_info('%s') WHERE name = ?1",
			 v0_added[i].table);
		if (query_int(s, sql, v0_added[i].column, &has, err) < 0 ||
		    (!has && srv_exec(s, v0_added[i].ddl, err) < 0))
			return -1;
	}
	return 0;
}

static int migrate_from_v0(struct srv_store *s, char *err)
{
	int64_t orphans;
	if (v0_add_columns(s, err) < 0)
		return -1;
	char *sql;
	if (asprintf(&sql, migrate_v0_v1, schema_v1) < 0) {
		snprintf(err, SRV_ERRLEN, "out of memory");
		return -1;
	}
	int rc = srv_exec(s, sql, err);
	free(sql);
	if (rc < 0)
		return -1;
	/* the copy above takes only rows whose parents exist: none may be left */
	if (query_int(s, "SELECT COUNT(*) FROM pragma_foreign_key_check", NULL, &orphans, err) < 0)
		return -1;
	if (orphans) {
		snprintf(err, SRV_ERRLEN, "migration left %lld rows without their parent",
			 (long long)orphans);
		return -1;
	}
	return 0;
}

/* Foreign keys can only be switched outside a transaction, and must be off
 * while tables are renamed and recreated; the version is read again once
 * the write lock is held, so two processes opening one old file migrate
 * it once. */
int srv_schema_ready(struct srv_store *s, const char *path, char *err)
{
	int64_t version, tables;
	char ignore[SRV_ERRLEN];

	if (query_int(s, "PRAGMA user_version", NULL, &version, err) < 0)
		return -1;
	if (version > SCHEMA_VERSION) {
		snprintf(err, SRV_ERRLEN, "database '%s' has schema version %lld, newer than this"
			 " server's %d: use a newer codensm-server", path, (long long)version,
			 SCHEMA_VERSION);
		return -1;
	}
	if (version == SCHEMA_VERSION)
		return 0;
	if (srv_exec(s, "PRAGMA foreign_keys=OFF", err) < 0 || srv_begin(s, err) < 0)
		goto fail;
	if (query_int(s, "PRAGMA user_version", NULL, &version, err) < 0 ||
	    query_int(s, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'projects'",
		      NULL, &tables, err) < 0)
		goto rollback;
	if (version == 0 && tables == 0) {
		if (srv_exec(s, schema_v1, err) < 0)
			goto rollback;
		version = 1;
	} else if (version == 0) {
		if (migrate_from_v0(s, err) < 0) {
			char why[140];
			snprintf(why, sizeof why, "%s", err);
			snprintf(err, SRV_ERRLEN, "cannot migrate database '%.60s' to schema version %d: %s",
				 path, SCHEMA_VERSION, why);
			goto rollback;
		}
		version = 1;
	}
	if (version == 1 && srv_exec(s, schema_v2_added, err) < 0)
		goto rollback;
	char set[40];
	snprintf(set, sizeof set, "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (srv_exec(s, set, err) < 0)
		goto rollback;
	if (srv_exec(s, "COMMIT", err) < 0)
		goto rollback;
	return srv_exec(s, "PRAGMA foreign_keys=ON", err);
rollback:
	srv_exec(s, "ROLLBACK", ignore);
fail:
	srv_exec(s, "PRAGMA foreign_keys=ON", ignore);
	return -1;
}
