/* db.c: what the two backends of db.h share: choosing one from the --db
 * target, the per-connection statement cache, errors. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "db.h"

int db_is_pg(const char *target)
{
	static const char *const prefixes[] = {
		"postgresql:", "postgres:", "host=", "hostaddr=", "dbname=", "service=", "user=", "port=",
	};
	for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
		if (!strncmp(target, prefixes[i], strlen(prefixes[i])))
			return 1;
	return 0;
}

struct db *db_open(const char *target, char *err)
{
	return db_is_pg(target) ? db_pg_open(target, err) : db_sqlite_open(target, err);
}

void db_close(struct db *db)
{
	if (!db)
		return;
	db_cache_clear(db);
	db->ops->close(db);
}

void db_cache_clear(struct db *db)
{
	for (int i = 0; i < db->ncache; i++)
		db->ops->finalize(db->cache[i].st);
	db->ncache = 0;
}

void db_set_error(struct db *db, enum db_fail fail, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(db->msg, sizeof db->msg, fmt, ap);
	va_end(ap);
	db->fail = fail;
}

struct db_stmt *db_stmt(struct db *db, const char *sql)
{
	for (int i = 0; i < db->ncache; i++)
		if (db->cache[i].sql == sql) {
			db->ops->reset(db->cache[i].st, 1);
			return db->cache[i].st;
		}
	struct db_stmt *st = db->ops->prepare(db, sql, 1);
	if (!st)
		return NULL;
	if (db->ncache < DB_STMT_CACHE) {
		db->cache[db->ncache].sql = sql;
		db->cache[db->ncache].st = st;
		db->ncache++;
	} else {
		/* DB_STMT_CACHE is above the number of statements in the
		 * program: reaching it is a bug, refused rather than leaked */
		db->ops->finalize(st);
		db_set_error(db, DB_FAIL_STATEMENT, "statement cache full");
		return NULL;
	}
	return st;
}

struct db_stmt *db_prepare(struct db *db, const char *sql)
{
	return db->ops->prepare(db, sql, 0);
}

void db_finalize(struct db_stmt *st)
{
	if (st)
		st->db->ops->finalize(st);
}

int db_exec(struct db *db, const char *sql)
{
	return db->ops->exec(db, sql);
}

int db_begin(struct db *db)
{
	return db->ops->begin(db);
}

void db_rollback(struct db *db)
{
	enum db_fail fail = db->fail;
	char msg[DB_ERRLEN];
	memcpy(msg, db->msg, sizeof msg);
	db->ops->exec(db, "ROLLBACK");
	db->fail = fail;
	memcpy(db->msg, msg, sizeof msg);
}
