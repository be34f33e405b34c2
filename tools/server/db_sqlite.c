/* db_sqlite.c: db.h on a SQLite file: WAL, synchronous=FULL (a committed
 * transaction is on disk), foreign keys on, a 10 s busy timeout; write
 * transactions take the write lock up front (BEGIN IMMEDIATE). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <unistd.h>

#include "server.h"

struct sq_db {
	struct db base;
	sqlite3 *h;
};

struct sq_stmt {
	struct db_stmt base;
	sqlite3_stmt *st;
};

#define H(db) (((struct sq_db *)(db))->h)
#define ST(s) (((struct sq_stmt *)(s))->st)

static const struct db_ops sq_ops;

/* What the caller should make of a SQLite result code. */
static void sq_error(struct db *db, int rc)
{
	enum db_fail f;
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		f = DB_FAIL_CONSTRAINT;
		break;
	case SQLITE_BUSY: case SQLITE_LOCKED: case SQLITE_IOERR: case SQLITE_FULL:
	case SQLITE_CANTOPEN: case SQLITE_READONLY: case SQLITE_NOMEM:
		f = DB_FAIL_UNAVAILABLE;
		break;
	default:
		f = DB_FAIL_STATEMENT;
	}
	db_set_error(db, f, "%s", sqlite3_errmsg(H(db)));
}

/* The live state as an SQL function, so that the employees list can
 * filter and sort on it in SQL with the one definition in metrics.c. */
static void sql_state(sqlite3_context *ctx, int argc, sqlite3_value **v)
{
	(void)argc;
	sqlite3_result_text(ctx, srv_state(sqlite3_value_int64(v[0]), sqlite3_value_int64(v[1]),
					   sqlite3_value_int64(v[2]), sqlite3_value_int(v[3]),
					   sqlite3_value_int64(v[4]), sqlite3_value_int64(v[5])),
			    -1, SQLITE_STATIC);
}

/* GREATEST and LEAST of two values, as PostgreSQL spells them, with
 * SQLite's two-argument max()/min() semantics (NULL if either is NULL). */
static void sql_pick(sqlite3_context *ctx, int argc, sqlite3_value **v)
{
	(void)argc;
	int greatest = sqlite3_user_data(ctx) != NULL;
	if (sqlite3_value_type(v[0]) == SQLITE_NULL || sqlite3_value_type(v[1]) == SQLITE_NULL)
		return sqlite3_result_null(ctx);
	int a_wins;
	if (sqlite3_value_numeric_type(v[0]) == SQLITE_INTEGER &&
	    sqlite3_value_numeric_type(v[1]) == SQLITE_INTEGER)
		a_wins = greatest ? sqlite3_value_int64(v[0]) >= sqlite3_value_int64(v[1])
				  : sqlite3_value_int64(v[0]) <= sqlite3_value_int64(v[1]);
	else
		a_wins = greatest ? sqlite3_value_double(v[0]) >= sqlite3_value_double(v[1])
				  : sqlite3_value_double(v[0]) <= sqlite3_value_double(v[1]);
	sqlite3_result_value(ctx, v[a_wins ? 0 : 1]);
}

#define SQ_OPEN_TRIES    500      /* of SQ_OPEN_PAUSE_US each: 10 s */
#define SQ_OPEN_PAUSE_US 20000

struct db *db_sqlite_open(const char *path, char *err)
{
	static int yes = 1;
	struct sq_db *d = calloc(1, sizeof *d);
	if (!d) {
		snprintf(err, SRV_ERRLEN, "out of memory");
		return NULL;
	}
	d->base.ops = &sq_ops;
	if (sqlite3_open_v2(path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, SRV_ERRLEN, "cannot open database '%s': %s", path,
			 d->h ? sqlite3_errmsg(d->h) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(d->h, 10000);
	/* Switching a new file to WAL while another process does the same can
	 * answer SQLITE_BUSY at once, without the busy handler: servers started
	 * together on one new file wait for each other here instead (10 s). */
	for (int tries = 0;; tries++) {
		if (db_exec(&d->base, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			    " PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;") == 0)
			break;
		int busy = (sqlite3_errcode(d->h) & 0xff) == SQLITE_BUSY ||
			   (sqlite3_errcode(d->h) & 0xff) == SQLITE_LOCKED;
		if (!busy || tries >= SQ_OPEN_TRIES) {
			snprintf(err, SRV_ERRLEN, "database: %s", d->base.msg);
			goto fail;
		}
		usleep(SQ_OPEN_PAUSE_US);
	}
	if (sqlite3_create_function(d->h, "cnsm_state", 6, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
				    NULL, sql_state, NULL, NULL) != SQLITE_OK ||
	    sqlite3_create_function(d->h, "greatest", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
				    &yes, sql_pick, NULL, NULL) != SQLITE_OK ||
	    sqlite3_create_function(d->h, "least", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
				    NULL, sql_pick, NULL, NULL) != SQLITE_OK) {
		snprintf(err, SRV_ERRLEN, "database: %s", sqlite3_errmsg(d->h));
		goto fail;
	}
	return &d->base;
fail:
	sqlite3_close(d->h);
	free(d);
	return NULL;
}

static void sq_close(struct db *db)
{
	sqlite3_close(H(db));
	free(db);
}

static int sq_exec(struct db *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(H(db), sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		sq_error(db, rc);
		if (msg)
			db_set_error(db, db->fail, "%s", msg);
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int sq_begin(struct db *db)
{
	return sq_exec(db, "BEGIN IMMEDIATE");
}

static struct db_stmt *sq_prepare(struct db *db, const char *sql, int cached)
{
	struct sq_stmt *s = calloc(1, sizeof *s);
	if (!s) {
		db_set_error(db, DB_FAIL_UNAVAILABLE, "out of memory");
		return NULL;
	}
	int rc = sqlite3_prepare_v3(H(db), sql, -1, cached ? SQLITE_PREPARE_PERSISTENT : 0, &s->st,
				    NULL);
	if (rc != SQLITE_OK) {
		sq_error(db, rc);
		free(s);
		return NULL;
	}
	s->base.db = db;
	return &s->base;
}

static void sq_finalize(struct db_stmt *s)
{
	sqlite3_finalize(ST(s));
	free(s);
}

static void sq_reset(struct db_stmt *s, int clear)
{
	sqlite3_reset(ST(s));
	if (clear)
		sqlite3_clear_bindings(ST(s));
}

static void sq_bind_int64(struct db_stmt *s, int i, int64_t v) { sqlite3_bind_int64(ST(s), i, v); }
static void sq_bind_double(struct db_stmt *s, int i, double v) { sqlite3_bind_double(ST(s), i, v); }
static void sq_bind_null(struct db_stmt *s, int i) { sqlite3_bind_null(ST(s), i); }
static void sq_bind_text(struct db_stmt *s, int i, const char *v, int n)
{
	sqlite3_bind_text(ST(s), i, v, n, SQLITE_TRANSIENT);
}
static void sq_bind_blob(struct db_stmt *s, int i, const void *v, int n)
{
	sqlite3_bind_blob(ST(s), i, v, n, SQLITE_TRANSIENT);
}

static int sq_step(struct db_stmt *s)
{
	int rc = sqlite3_step(ST(s));
	if (rc == SQLITE_ROW)
		return DB_ROW;
	if (rc == SQLITE_DONE)
		return DB_DONE;
	sq_error(s->db, rc);
	return DB_ERROR;
}

static int sq_column_null(struct db_stmt *s, int i)
{
	return sqlite3_column_type(ST(s), i) == SQLITE_NULL;
}
static int64_t sq_column_int64(struct db_stmt *s, int i) { return sqlite3_column_int64(ST(s), i); }
static double sq_column_double(struct db_stmt *s, int i) { return sqlite3_column_double(ST(s), i); }
static const char *sq_column_text(struct db_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(ST(s), i);
}
static const void *sq_column_blob(struct db_stmt *s, int i, int *n)
{
	const void *p = sqlite3_column_blob(ST(s), i);
	*n = sqlite3_column_bytes(ST(s), i);
	return p;
}
static int64_t sq_changes(struct db *db) { return sqlite3_changes64(H(db)); }
static int sq_ready(struct db *db) { (void)db; return 1; }

static const struct db_ops sq_ops = {
	.name = "sqlite", .close = sq_close, .exec = sq_exec, .begin = sq_begin,
	.prepare = sq_prepare, .finalize = sq_finalize, .reset = sq_reset,
	.bind_int64 = sq_bind_int64, .bind_double = sq_bind_double, .bind_text = sq_bind_text,
	.bind_blob = sq_bind_blob, .bind_null = sq_bind_null, .step = sq_step,
	.column_null = sq_column_null, .column_int64 = sq_column_int64,
	.column_double = sq_column_double, .column_text = sq_column_text,
	.column_blob = sq_column_blob, .changes = sq_changes, .ready = sq_ready,
};
