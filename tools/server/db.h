/* db.h: the statement layer: one connection to SQLite (db_sqlite.c) or
 * PostgreSQL (db_pg.c) behind the shape of sqlite3's own API (prepare by
 * SQL text, bind by position, step, read columns), so that the API, ingest
 * and retention code never know which database runs.
 *
 * Shared SQL is written once, portably: `?N` placeholders (PostgreSQL's
 * backend turns them into `$N`), ON CONFLICT(target) DO UPDATE/NOTHING with
 * the target table named on the left of each `col = table.col + ...`, no
 * INSERT OR, strftime, julianday, rowid or two-argument MIN/MAX (use
 * GREATEST/LEAST, which the SQLite backend defines).  A SQLite planner hint
 * `INDEXED BY name` may follow a table: PostgreSQL's backend drops it.
 * DDL, migrations and anything dialect-bound live in schema.c / schema_pg.c.
 *
 * Not thread-safe: one connection is used by one thread at a time
 * (store.c hands them out).
 *
 * Porting code written on sqlite3 is mechanical: sqlite3_stmt -> struct
 * db_stmt; sqlite3_bind_X(s, i, v[, n, SQLITE_STATIC]) -> db_bind_X(s, i,
 * v[, n]) (text is always copied); sqlite3_step/column_X/reset ->
 * db_step/db_column_X/db_reset; SQLITE_ROW/DONE -> DB_ROW/DB_DONE;
 * sqlite3_column_type(s, i) == SQLITE_NULL -> db_column_null(s, i);
 * sqlite3_errmsg(db) -> db_errmsg(db); sqlite3_changes64 -> db_changes;
 * sqlite3_last_insert_rowid -> INSERT ... RETURNING id; BEGIN IMMEDIATE
 * -> srv_begin (store.h).  A constraint failure is DB_ERROR with
 * db_fail() == DB_FAIL_CONSTRAINT.
 */
#ifndef CODENSM_SERVER_DB_H
#define CODENSM_SERVER_DB_H

#include <stdint.h>
#include <stddef.h>

#define DB_ERRLEN 200   /* leaves room for a prefix in an SRV_ERRLEN line */

enum db_rc {
	DB_ERROR = -1,        /* see db_fail() and db_errmsg() */
	DB_DONE = 0,          /* no more rows */
	DB_ROW = 1,           /* a row is ready for db_column_*() */
};

/* Why the last call failed: what the caller should do about it. */
enum db_fail {
	DB_FAIL_NONE,
	DB_FAIL_STATEMENT,    /* a bad statement or value: a bug or bad data */
	DB_FAIL_CONSTRAINT,   /* a unique / foreign key / check constraint refused the row */
	DB_FAIL_RETRY,        /* serialization failure or deadlock: run the transaction again */
	DB_FAIL_UNAVAILABLE,  /* connection lost or refused, shutdown, busy: try later (503) */
};

struct db;
struct db_stmt;

/* Each backend's functions; every db and stmt points at its own. */
struct db_ops {
	const char *name;                                       /* "sqlite" or "postgresql" */
	void (*close)(struct db *);
	int (*exec)(struct db *, const char *sql);             /* 0 / -1 */
	int (*begin)(struct db *);                              /* a write transaction */
	struct db_stmt *(*prepare)(struct db *, const char *sql, int cached);
	void (*finalize)(struct db_stmt *);
	void (*reset)(struct db_stmt *, int clear);             /* clear: the bindings too */
	void (*bind_int64)(struct db_stmt *, int i, int64_t v);
	void (*bind_double)(struct db_stmt *, int i, double v);
	void (*bind_text)(struct db_stmt *, int i, const char *v, int n);  /* n < 0: strlen */
	void (*bind_blob)(struct db_stmt *, int i, const void *v, int n);
	void (*bind_null)(struct db_stmt *, int i);
	int (*step)(struct db_stmt *);
	int (*column_null)(struct db_stmt *, int i);
	int64_t (*column_int64)(struct db_stmt *, int i);
	double (*column_double)(struct db_stmt *, int i);
	const char *(*column_text)(struct db_stmt *, int i);          /* NULL for NULL */
	const void *(*column_blob)(struct db_stmt *, int i, int *n);
	int64_t (*changes)(struct db *);                         /* rows of the last statement */
	/* Readies the connection for its next user (rolls back a transaction
	 * left open): 0 when it is lost and must be closed. */
	int (*ready)(struct db *);
};

#define DB_STMT_CACHE 96

/* A connection.  The statement cache is keyed by the SQL text's address:
 * every caller passes a string literal, so the same statement is the same
 * pointer, and a linear scan of a few dozen entries costs less than a
 * prepare. */
struct db {
	const struct db_ops *ops;
	enum db_fail fail;                  /* of the last failed call */
	char msg[DB_ERRLEN];                /* its one line */
	struct { const char *sql; struct db_stmt *st; } cache[DB_STMT_CACHE];
	int ncache;
};

struct db_stmt {
	struct db *db;
};

/* Opens `target`: a PostgreSQL connection string (db_is_pg) or a SQLite
 * file path.  NULL with err filled when it cannot. */
struct db *db_open(const char *target, char *err);
void db_close(struct db *db);                         /* NULL: no-op */
/* 1 when target names a PostgreSQL database: postgresql:// or postgres://
 * URLs, and libpq key=value strings (host=..., dbname=..., service=...). */
int db_is_pg(const char *target);

struct db *db_sqlite_open(const char *path, char *err);
struct db *db_pg_open(const char *conninfo, char *err);

/* The cached statement for a constant SQL text, reset with its bindings
 * cleared; NULL (db_errmsg) when it cannot be prepared. */
struct db_stmt *db_stmt(struct db *db, const char *sql);
/* A statement of its own for a SQL text built at run time; db_finalize it. */
struct db_stmt *db_prepare(struct db *db, const char *sql);
void db_finalize(struct db_stmt *st);                 /* NULL: no-op; not for cached ones */
/* Drops every cached statement (a connection that was reset). */
void db_cache_clear(struct db *db);

int db_exec(struct db *db, const char *sql);          /* 0 / -1; several statements allowed */
int db_begin(struct db *db);                          /* a write transaction: 0 / -1 */
static inline int db_commit(struct db *db) { return db->ops->exec(db, "COMMIT"); }
/* Keeps the failure that caused it in db_fail()/db_errmsg(). */
void db_rollback(struct db *db);

static inline const char *db_errmsg(struct db *db) { return db->msg; }
static inline enum db_fail db_fail(struct db *db) { return db->fail; }
static inline int64_t db_changes(struct db *db) { return db->ops->changes(db); }
static inline const char *db_backend(struct db *db) { return db->ops->name; }
/* Sets the failure (backends and callers that detect one themselves). */
void db_set_error(struct db *db, enum db_fail fail, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like sqlite3_reset: the bindings stay. */
static inline void db_reset(struct db_stmt *s) { s->db->ops->reset(s, 0); }
static inline void db_bind_int64(struct db_stmt *s, int i, int64_t v) { s->db->ops->bind_int64(s, i, v); }
static inline void db_bind_int(struct db_stmt *s, int i, int v) { s->db->ops->bind_int64(s, i, v); }
static inline void db_bind_double(struct db_stmt *s, int i, double v) { s->db->ops->bind_double(s, i, v); }
/* The text is copied: it need not outlive the call. */
static inline void db_bind_text(struct db_stmt *s, int i, const char *v, int n)
{
	s->db->ops->bind_text(s, i, v, n);
}
static inline void db_bind_blob(struct db_stmt *s, int i, const void *v, int n)
{
	s->db->ops->bind_blob(s, i, v, n);
}
static inline void db_bind_null(struct db_stmt *s, int i) { s->db->ops->bind_null(s, i); }
static inline int db_step(struct db_stmt *s) { return s->db->ops->step(s); }
static inline int db_column_null(struct db_stmt *s, int i) { return s->db->ops->column_null(s, i); }
static inline int64_t db_column_int64(struct db_stmt *s, int i) { return s->db->ops->column_int64(s, i); }
static inline int db_column_int(struct db_stmt *s, int i) { return (int)s->db->ops->column_int64(s, i); }
static inline double db_column_double(struct db_stmt *s, int i) { return s->db->ops->column_double(s, i); }
static inline const char *db_column_text(struct db_stmt *s, int i) { return s->db->ops->column_text(s, i); }
static inline const void *db_column_blob(struct db_stmt *s, int i, int *n)
{
	return s->db->ops->column_blob(s, i, n);
}

#endif
