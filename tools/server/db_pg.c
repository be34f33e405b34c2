/* db_pg.c: db.h on PostgreSQL through libpq.
 *
 * The shared SQL's `?N` become `$N` (outside string literals) and SQLite's
 * `INDEXED BY name` hints are dropped.  A cached statement is prepared on
 * the server (PQprepare) at its first step, with the parameter types of
 * its first bindings (int8, float8, text, bytea; a NULL leaves the type to
 * the server), so that `?5` in an expression needs no cast; a statement
 * built at run time goes through PQexecParams.  Results come back whole
 * and in text form; db_column_*() convert them as sqlite3_column_*() would
 * (a boolean reads as 1 / 0, a number as text is parsed).
 *
 * Failures are sorted for the caller by SQLSTATE: class 08 (connection),
 * 57P0x (shutdown), 53 (insufficient resources) or a connection that is no
 * longer OK are "unavailable" and mark the connection broken; 23 is a
 * constraint; 40001 / 40P01 are "run the transaction again".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

#include "server.h"

#define MAX_PARAMS 16
#define OID_INT8   20
#define OID_FLOAT8 701
#define OID_TEXT   25
#define OID_BYTEA  17

struct pg_db {
	struct db base;
	PGconn *c;
	int64_t changes;
	int broken;
	int nprepared;                  /* names the next server-side statement */
};

struct pg_stmt {
	struct db_stmt base;
	char *sql;                      /* with $N */
	int nparams, cached, prepared;
	char name[16];
	Oid types[MAX_PARAMS];
	char *vals[MAX_PARAMS];         /* owned; NULL for SQL NULL */
	int lens[MAX_PARAMS], fmts[MAX_PARAMS];
	PGresult *res;                  /* the executed statement's rows */
	int row, nrows;
	unsigned char *blob;            /* the last column_blob, decoded */
};

#define PG(db) ((struct pg_db *)(db))
#define PS(s) ((struct pg_stmt *)(s))

static const struct db_ops pg_ops;

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* The first line of a libpq message. */
static void set_msg(struct db *db, enum db_fail fail, const char *m)
{
	size_t n = strcspn(m ? m : "", "\n");
	db_set_error(db, fail, "%.*s", (int)(n < 190 ? n : 190), m ? m : "");
	if (!n)
		db_set_error(db, fail, "connection lost");
}

static void pg_error(struct db *db, PGresult *r)
{
	struct pg_db *d = PG(db);
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : NULL;
	enum db_fail f = DB_FAIL_STATEMENT;
	if (!msg || !*msg)
		msg = PQerrorMessage(d->c);
	if (PQstatus(d->c) != CONNECTION_OK || !state || !strncmp(state, "08", 2) ||
	    !strncmp(state, "57P0", 4) || !strncmp(state, "53", 2)) {
		f = DB_FAIL_UNAVAILABLE;
		d->broken = 1;
	} else if (!strncmp(state, "23", 2)) {
		f = DB_FAIL_CONSTRAINT;
	} else if (!strcmp(state, "40001") || !strcmp(state, "40P01")) {
		f = DB_FAIL_RETRY;
	}
	set_msg(db, f, msg);
}

int srv_pg_check_target(const char *target, char *err)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(target, &msg);
	if (!opts) {
		size_t n = strcspn(msg ? msg : "out of memory", "\n");
		snprintf(err, SRV_ERRLEN, "invalid database connection string: %.*s", (int)n,
			 msg ? msg : "out of memory");
		PQfreemem(msg);
		return -1;
	}
	int password = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		const char *option = o->keyword;
		if (!strcmp(option, "password") && o->val && *o->val)
			password = 1;
	}
	PQconninfoFree(opts);
	if (password) {
		snprintf(err, SRV_ERRLEN, "the database connection string carries a password: refused;"
			 " give it through PGPASSWORD, ~/.pgpass or a service file");
		return -1;
	}
	return 0;
}

/* connect_timeout first: a value in the caller's string overrides it. */
struct db *db_pg_open(const char *conninfo, char *err)
{
	static const char *const keys[] = { "connect_timeout", "fallback_application_name",
					    "dbname", NULL };
	const char *vals[] = { "5", "codensm-server", conninfo, NULL };
	struct pg_db *d = calloc(1, sizeof *d);
	if (!d) {
		snprintf(err, SRV_ERRLEN, "out of memory");
		return NULL;
	}
	d->base.ops = &pg_ops;
	d->c = PQconnectdbParams(keys, vals, 1);
	if (!d->c || PQstatus(d->c) != CONNECTION_OK) {
		const char *m = d->c ? PQerrorMessage(d->c) : "out of memory";
		size_t n = strcspn(m, "\n");
		snprintf(err, SRV_ERRLEN, "cannot connect to the database: %.*s", (int)(n < 200 ? n : 200),
			 m);
		PQfinish(d->c);
		free(d);
		return NULL;
	}
	PQsetNoticeProcessor(d->c, quiet, NULL);
	return &d->base;
}

static void pg_close(struct db *db)
{
	PQfinish(PG(db)->c);
	free(db);
}

/* One result's outcome: 0, or -1 with the failure recorded. */
static int result_ok(struct db *db, PGresult *r)
{
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		const char *n = PQcmdTuples(r);
		PG(db)->changes = n && *n ? strtoll(n, NULL, 10) : 0;
		return 0;
	}
	pg_error(db, r);
	return -1;
}

static int pg_exec(struct db *db, const char *sql)
{
	PGresult *r = PQexec(PG(db)->c, sql);
	int rc = result_ok(db, r);
	PQclear(r);
	return rc;
}

static int pg_begin(struct db *db)
{
	return pg_exec(db, "BEGIN");
}

/* `?N` -> `$N` outside quotes; `INDEXED BY ident` dropped.  The highest N
 * is the statement's parameter count. */
static char *translate(const char *sql, int *nparams)
{
	size_t n = strlen(sql);
	char *out = malloc(n + 1), *o = out;
	int quote = 0;
	*nparams = 0;
	if (!out)
		return NULL;
	for (const char *p = sql; *p;) {
		if (*p == '\'') {
			quote = !quote;
		} else if (!quote && *p == '?') {
			*o++ = '$';
			p++;
			int k = atoi(p);
			if (k > *nparams)
				*nparams = k;
			continue;
		} else if (!quote && !strncmp(p, " INDEXED BY ", 12)) {
			p += 12;
			while (*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
				p++;
			continue;
		}
		*o++ = *p++;
	}
	*o = '\0';
	return out;
}

static struct db_stmt *pg_prepare(struct db *db, const char *sql, int cached)
{
	struct pg_stmt *s = calloc(1, sizeof *s);
	if (!s || !(s->sql = translate(sql, &s->nparams))) {
		free(s);
		db_set_error(db, DB_FAIL_UNAVAILABLE, "out of memory");
		return NULL;
	}
	if (s->nparams > MAX_PARAMS) {
		db_set_error(db, DB_FAIL_STATEMENT, "statement has %d parameters (at most %d)",
			     s->nparams, MAX_PARAMS);
		free(s->sql);
		free(s);
		return NULL;
	}
	s->base.db = db;
	s->cached = cached;
	snprintf(s->name, sizeof s->name, "cnsm%d", PG(db)->nprepared++);
	return &s->base;
}

static void clear_result(struct pg_stmt *s)
{
	PQclear(s->res);
	s->res = NULL;
	s->row = -1;
	s->nrows = 0;
}

static void pg_reset(struct db_stmt *st, int clear)
{
	struct pg_stmt *s = PS(st);
	clear_result(s);
	if (clear)
		for (int i = 0; i < s->nparams; i++) {
			free(s->vals[i]);
			s->vals[i] = NULL;
		}
}

static void pg_finalize(struct db_stmt *st)
{
	struct pg_stmt *s = PS(st);
	pg_reset(st, 1);
	PQfreemem(s->blob);
	free(s->sql);
	free(s);
}

/* Stores parameter i (1-based) as a copy of n bytes. */
static void set_param(struct db_stmt *st, int i, Oid type, const void *v, int n, int binary)
{
	struct pg_stmt *s = PS(st);
	if (i < 1 || i > s->nparams)
		return;
	clear_result(s);
	i--;
	free(s->vals[i]);
	s->vals[i] = NULL;
	if (!s->prepared && type)
		s->types[i] = type;
	if (!v)
		return;
	if ((s->vals[i] = malloc((size_t)n + 1))) {
		memcpy(s->vals[i], v, (size_t)n);
		s->vals[i][n] = '\0';
	}
	s->lens[i] = n;
	s->fmts[i] = binary;
}

static void pg_bind_int64(struct db_stmt *s, int i, int64_t v)
{
	char b[24];
	set_param(s, i, OID_INT8, b, snprintf(b, sizeof b, "%lld", (long long)v), 0);
}

static void pg_bind_double(struct db_stmt *s, int i, double v)
{
	char b[40];
	set_param(s, i, OID_FLOAT8, b, snprintf(b, sizeof b, "%.17g", v), 0);
}

static void pg_bind_text(struct db_stmt *s, int i, const char *v, int n)
{
	set_param(s, i, OID_TEXT, v, v ? (n < 0 ? (int)strlen(v) : n) : 0, 0);
}

static void pg_bind_blob(struct db_stmt *s, int i, const void *v, int n)
{
	set_param(s, i, OID_BYTEA, v, n, 1);
}

static void pg_bind_null(struct db_stmt *s, int i)
{
	set_param(s, i, 0, NULL, 0, 0);
}

static int execute(struct pg_stmt *s)
{
	struct pg_db *d = PG(s->base.db);
	const char *const *vals = (const char *const *)s->vals;
	PGresult *r;
	if (s->cached && !s->prepared) {
		r = PQprepare(d->c, s->name, s->sql, s->nparams, s->types);
		int rc = result_ok(&d->base, r);
		PQclear(r);
		if (rc < 0)
			return -1;
		s->prepared = 1;
	}
	if (s->cached)
		r = PQexecPrepared(d->c, s->name, s->nparams, vals, s->lens, s->fmts, 0);
	else
		r = PQexecParams(d->c, s->sql, s->nparams, s->types, vals, s->lens, s->fmts, 0);
	if (result_ok(&d->base, r) < 0) {
		PQclear(r);
		return -1;
	}
	s->res = r;
	s->nrows = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;
	s->row = -1;
	return 0;
}

static int pg_step(struct db_stmt *st)
{
	struct pg_stmt *s = PS(st);
	if (!s->res && execute(s) < 0)
		return DB_ERROR;
	if (s->row + 1 < s->nrows) {
		s->row++;
		return DB_ROW;
	}
	s->row = s->nrows;
	return DB_DONE;
}

static const char *value(struct db_stmt *st, int i)
{
	struct pg_stmt *s = PS(st);
	if (!s->res || s->row < 0 || s->row >= s->nrows || i >= PQnfields(s->res) ||
	    PQgetisnull(s->res, s->row, i))
		return NULL;
	return PQgetvalue(s->res, s->row, i);
}

static int pg_column_null(struct db_stmt *s, int i)
{
	return value(s, i) == NULL;
}

static int64_t pg_column_int64(struct db_stmt *s, int i)
{
	const char *v = value(s, i);
	char *end;
	if (!v)
		return 0;
	if (!strcmp(v, "t") || !strcmp(v, "f"))
		return *v == 't';
	long long n = strtoll(v, &end, 10);
	if (*end == '.' || *end == 'e' || *end == 'E')
		return (int64_t)strtod(v, NULL);
	return n;
}

static double pg_column_double(struct db_stmt *s, int i)
{
	const char *v = value(s, i);
	if (!v)
		return 0;
	if (!strcmp(v, "t") || !strcmp(v, "f"))
		return *v == 't';
	return strtod(v, NULL);
}

static const char *pg_column_text(struct db_stmt *s, int i)
{
	return value(s, i);
}

static const void *pg_column_blob(struct db_stmt *st, int i, int *n)
{
	struct pg_stmt *s = PS(st);
	const char *v = value(st, i);
	size_t len = 0;
	*n = 0;
	if (!v)
		return NULL;
	PQfreemem(s->blob);
	s->blob = PQunescapeBytea((const unsigned char *)v, &len);
	*n = s->blob ? (int)len : 0;
	return s->blob;
}

static int64_t pg_changes(struct db *db)
{
	return PG(db)->changes;
}

static int pg_ready(struct db *db)
{
	struct pg_db *d = PG(db);
	if (d->broken || PQstatus(d->c) != CONNECTION_OK)
		return 0;
	if (PQtransactionStatus(d->c) != PQTRANS_IDLE) {
		PGresult *r = PQexec(d->c, "ROLLBACK");
		PQclear(r);
	}
	return PQstatus(d->c) == CONNECTION_OK && PQtransactionStatus(d->c) == PQTRANS_IDLE;
}

static const struct db_ops pg_ops = {
	.name = "postgresql", .close = pg_close, .exec = pg_exec, .begin = pg_begin,
	.prepare = pg_prepare, .finalize = pg_finalize, .reset = pg_reset,
	.bind_int64 = pg_bind_int64, .bind_double = pg_bind_double, .bind_text = pg_bind_text,
	.bind_blob = pg_bind_blob, .bind_null = pg_bind_null, .step = pg_step,
	.column_null = pg_column_null, .column_int64 = pg_column_int64,
	.column_double = pg_column_double, .column_text = pg_column_text,
	.column_blob = pg_column_blob, .changes = pg_changes, .ready = pg_ready,
};
