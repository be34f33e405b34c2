/* probestore.c: every SQL statement about probes and the root-cause
 * analysis (probestore.h), on the statement layer (db.h): the same SQL
 * runs on SQLite and PostgreSQL.
 *
 * The statements keep to db.h's portable SQL: upserts are ON CONFLICT ...
 * DO UPDATE / DO NOTHING with the table named on the left, times are REAL
 * unix seconds computed by the caller, no rowid, no date function;
 * db_changes() after a DELETE, an UPDATE or an INSERT ... DO NOTHING says
 * whether a row was touched (PostgreSQL's command tag says the same).
 */
#include <stdio.h>
#include <string.h>

#include "server.h"

static int failed(struct srv_store *s, char *err)
{
	snprintf(err, SRV_ERRLEN, "database: %s", db_errmsg(srv_store_db(s)));
	return -1;
}

/* Steps a statement that returns no rows: 0, or -1 with err. */
static int run(struct srv_store *s, struct db_stmt *st, char *err)
{
	int rc;
	while ((rc = db_step(st)) == DB_ROW)
		;
	db_reset(st);
	return rc == DB_DONE ? 0 : failed(s, err);
}

/* Rows the last statement wrote (read before the next one runs). */
static int64_t changes(struct srv_store *s)
{
	return db_changes(srv_store_db(s));
}

static int done(struct srv_store *s, struct db_stmt *st, int rc, char *err)
{
	db_reset(st);
	return rc == DB_DONE ? 0 : failed(s, err);
}

static void bind_text(struct db_stmt *st, int i, const char *v)
{
	if (v)
		db_bind_text(st, i, v, -1);
	else
		db_bind_null(st, i);
}

/* ---- probes ------------------------------------------------------------------- */

int srv_probe_insert(struct srv_store *s, int64_t project, const struct srv_probe *p,
		     double now, char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"INSERT INTO probes(project, id, target, type, name, value, event, custom, lifespan,"
		" lastmodified, expires_at, created_at, auto, incident_id)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
		" ON CONFLICT(project, id) DO NOTHING", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	bind_text(st, 2, p->id);
	bind_text(st, 3, p->target);
	bind_text(st, 4, p->type);
	bind_text(st, 5, p->name);
	bind_text(st, 6, p->value);
	bind_text(st, 7, p->event);
	bind_text(st, 8, p->custom);
	db_bind_double(st, 9, p->lifespan);
	db_bind_double(st, 10, p->lastmodified);
	db_bind_double(st, 11, p->lastmodified + p->lifespan * 60);
	db_bind_double(st, 12, now);
	db_bind_int(st, 13, p->is_auto);
	if (p->incident_id)
		db_bind_int64(st, 14, p->incident_id);
	if (run(s, st, err) < 0)
		return -1;
	return changes(s) ? 0 : 1;
}

/* The counter is the project's probe_settings row, created on first use. */
int srv_probe_new_id(struct srv_store *s, int64_t project, char *out, size_t len, char *err)
{
	for (int tries = 0; tries < 1000; tries++) {
		struct db_stmt *st = srv_stmt(s,
			"INSERT INTO probe_settings(project, auto_probes, next_probe) VALUES(?1, 1, 1)"
			" ON CONFLICT(project) DO UPDATE SET next_probe = probe_settings.next_probe + 1"
			" RETURNING next_probe", err);
		if (!st)
			return -1;
		db_bind_int64(st, 1, project);
		int rc = db_step(st);
		int64_t n = rc == DB_ROW ? db_column_int64(st, 0) : 0;
		if (rc == DB_ROW)
			rc = db_step(st);
		if (done(s, st, rc, err) < 0)
			return -1;
		snprintf(out, len, "p-%lld", (long long)n);
		st = srv_stmt(s, "SELECT 1 FROM probes WHERE project = ?1 AND id = ?2", err);
		if (!st)
			return -1;
		db_bind_int64(st, 1, project);
		db_bind_text(st, 2, out, -1);
		rc = db_step(st);
		int used = rc == DB_ROW;
		if (used)
			rc = DB_DONE;
		if (done(s, st, rc, err) < 0)
			return -1;
		if (!used)
			return 0;
	}
	snprintf(err, SRV_ERRLEN, "no free probe id");
	return -1;
}

int srv_probe_renew(struct srv_store *s, int64_t project, const char *id, double lastmodified,
		    double lifespan, char *err)
{
	/* the lifespan kept when none is given: read here, so that every
	 * parameter below has one type */
	struct db_stmt *st = srv_stmt(s, "SELECT lifespan FROM probes WHERE project = ?1 AND id = ?2",
				      err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	db_bind_text(st, 2, id, -1);
	int rc = db_step(st);
	double old = rc == DB_ROW ? db_column_double(st, 0) : 0;
	if (rc == DB_ROW)
		rc = DB_DONE;
	if (done(s, st, rc, err) < 0)
		return -1;
	if (old <= 0)
		return 0;
	if (lifespan <= 0)
		lifespan = old;
	st = srv_stmt(s, "UPDATE probes SET lastmodified = ?3, lifespan = ?4, expires_at = ?5"
		      " WHERE project = ?1 AND id = ?2", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	db_bind_text(st, 2, id, -1);
	db_bind_double(st, 3, lastmodified);
	db_bind_double(st, 4, lifespan);
	db_bind_double(st, 5, lastmodified + lifespan * 60);
	if (run(s, st, err) < 0)
		return -1;
	if (!changes(s))
		return 0;
	static const char *const fresh[] = {
		"DELETE FROM probe_reports WHERE project = ?1 AND probe = ?2",
		"DELETE FROM probe_log WHERE project = ?1 AND probe = ?2",
	};
	for (size_t i = 0; i < 2; i++) {
		if (!(st = srv_stmt(s, fresh[i], err)))
			return -1;
		db_bind_int64(st, 1, project);
		db_bind_text(st, 2, id, -1);
		if (run(s, st, err) < 0)
			return -1;
	}
	return 1;
}

int srv_probes_lock(struct srv_store *s, int64_t project, char *err)
{
	if (!srv_store_is_pg())
		return 0;
	struct db_stmt *st = srv_stmt(s,
		"INSERT INTO probe_settings(project, auto_probes, next_probe) VALUES(?1, 1, 0)"
		" ON CONFLICT(project) DO UPDATE SET next_probe = probe_settings.next_probe", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	return run(s, st, err);
}

int srv_probe_delete(struct srv_store *s, int64_t project, const char *id, char *err)
{
	/* reports and log go with it (ON DELETE CASCADE) */
	struct db_stmt *st = srv_stmt(s, "DELETE FROM probes WHERE project = ?1 AND id = ?2", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	db_bind_text(st, 2, id, -1);
	if (run(s, st, err) < 0)
		return -1;
	return changes(s) ? 1 : 0;
}

#define PROBE_COLUMNS \
	"p.id, p.target, p.type, p.name, p.value, p.event, p.custom, p.lifespan, p.lastmodified," \
	" p.expires_at, p.created_at, p.auto, p.incident_id," \
	" (SELECT COALESCE(SUM(r.hits), 0) FROM probe_reports r" \
	"  WHERE r.project = p.project AND r.probe = p.id)"

/* A row of PROBE_COLUMNS as {"id","target","type","name","value","event",
 * "custom","lifespan","lastmodified","expires_at","created_at","auto",
 * "incident_id","hits"}: the stored fields, NULL as null. */
static json_t *probe_row(struct db_stmt *st)
{
	const char *custom = db_column_text(st, 6);
	json_t *c = custom ? json_loads(custom, 0, NULL) : NULL;
	return json_pack("{sosososososososfsfsfsfsbsosI}",
		"id", srv_col_text(st, 0), "target", srv_col_text(st, 1), "type", srv_col_text(st, 2),
		"name", srv_col_text(st, 3), "value", srv_col_text(st, 4), "event", srv_col_text(st, 5),
		"custom", c ? c : json_null(), "lifespan", db_column_double(st, 7),
		"lastmodified", db_column_double(st, 8), "expires_at", db_column_double(st, 9),
		"created_at", db_column_double(st, 10), "auto", db_column_int(st, 11),
		"incident_id", srv_col_int(st, 12), "hits", (json_int_t)db_column_int64(st, 13));
}

json_t *srv_probes_rows(struct srv_store *s, int64_t project, double expired_since, char *err)
{
	struct db_stmt *st = srv_stmt(s, "SELECT " PROBE_COLUMNS " FROM probes p"
				    " WHERE p.project = ?1 AND p.expires_at > ?2"
				    " ORDER BY p.created_at DESC, p.id", err);
	if (!st)
		return NULL;
	db_bind_int64(st, 1, project);
	db_bind_double(st, 2, expired_since);
	json_t *a = json_array();
	int rc;
	while ((rc = db_step(st)) == DB_ROW)
		json_array_append_new(a, probe_row(st));
	if (done(s, st, rc, err) < 0) {
		json_decref(a);
		return NULL;
	}
	return a;
}

json_t *srv_probe_row(struct srv_store *s, int64_t project, const char *id, int *found, char *err)
{
	struct db_stmt *st = srv_stmt(s, "SELECT " PROBE_COLUMNS " FROM probes p"
				    " WHERE p.project = ?1 AND p.id = ?2", err);
	*found = 0;
	if (!st)
		return NULL;
	db_bind_int64(st, 1, project);
	db_bind_text(st, 2, id, -1);
	int rc = db_step(st);
	json_t *row = NULL;
	if (rc == DB_ROW) {
		row = probe_row(st);
		*found = 1;
		rc = DB_DONE;
	}
	if (done(s, st, rc, err) < 0) {
		json_decref(row);
		*found = 0;
		return NULL;
	}
	return row;
}

int srv_probe_auto_for(struct srv_store *s, int64_t project, int64_t incident,
		       const char *function, double now, char *id, size_t len, char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"SELECT id FROM probes WHERE project = ?1 AND auto = 1 AND type = 'stack' AND"
		" (incident_id = ?2 OR (target = ?3 AND expires_at > ?4))"
		" ORDER BY CASE WHEN incident_id = ?2 THEN 0 ELSE 1 END, created_at DESC LIMIT 1", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	db_bind_int64(st, 2, incident);
	db_bind_text(st, 3, function, -1);
	db_bind_double(st, 4, now);
	int rc = db_step(st), found = 0;
	if (rc == DB_ROW) {
		snprintf(id, len, "%s", db_column_text(st, 0));
		found = 1;
		rc = DB_DONE;
	}
	return done(s, st, rc, err) < 0 ? -1 : found;
}

int srv_probe_auto_active(struct srv_store *s, int64_t project, const char *function, double now,
			  char *err)
{
	struct db_stmt *st = srv_stmt(s, "SELECT 1 FROM probes WHERE project = ?1 AND auto = 1"
				    " AND target = ?2 AND expires_at > ?3", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	db_bind_text(st, 2, function, -1);
	db_bind_double(st, 3, now);
	int rc = db_step(st), found = rc == DB_ROW;
	if (found)
		rc = DB_DONE;
	return done(s, st, rc, err) < 0 ? -1 : found;
}

/* ---- reports ---------------------------------------------------------------------- */

int srv_probe_lookup(struct srv_store *s, int64_t project, const char *id, char *type,
		     size_t typelen, double *end, char *err)
{
	struct db_stmt *st = srv_stmt(s, "SELECT type, expires_at FROM probes"
				    " WHERE project = ?1 AND id = ?2", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	db_bind_text(st, 2, id, -1);
	int rc = db_step(st), found = 0;
	if (rc == DB_ROW) {
		snprintf(type, typelen, "%s", db_column_text(st, 0));
		*end = db_column_double(st, 1);
		found = 1;
		rc = DB_DONE;
	}
	return done(s, st, rc, err) < 0 ? -1 : found;
}

/* A report older than the stored one (a spool replayed late) still adds
 * its hits, but does not take back the newer status and results. */
int srv_probe_report(struct srv_store *s, int64_t project, const char *id,
		     const struct srv_probe_process *pr, const char *status, const char *message,
		     int64_t hits, const char *results, int64_t log_dropped, double expires_in_s,
		     char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"INSERT INTO probe_reports(project, probe, service, host, pid, status, message, hits,"
		" results, log_dropped, expires_at, first_seen, last_seen)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)"
		" ON CONFLICT(project, probe, service, host, pid) DO UPDATE SET"
		" hits = probe_reports.hits + excluded.hits,"
		" log_dropped = probe_reports.log_dropped + excluded.log_dropped,"
		" status = CASE WHEN excluded.last_seen >= probe_reports.last_seen"
		"  THEN excluded.status ELSE probe_reports.status END,"
		" message = CASE WHEN excluded.last_seen >= probe_reports.last_seen"
		"  THEN excluded.message ELSE probe_reports.message END,"
		" results = CASE WHEN excluded.last_seen >= probe_reports.last_seen"
		"  THEN COALESCE(excluded.results, probe_reports.results) ELSE probe_reports.results END,"
		" expires_at = CASE WHEN excluded.last_seen >= probe_reports.last_seen"
		"  THEN excluded.expires_at ELSE probe_reports.expires_at END,"
		" last_seen = CASE WHEN excluded.last_seen >= probe_reports.last_seen"
		"  THEN excluded.last_seen ELSE probe_reports.last_seen END", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	bind_text(st, 2, id);
	bind_text(st, 3, pr->service);
	bind_text(st, 4, pr->host);
	db_bind_int64(st, 5, pr->pid);
	bind_text(st, 6, status);
	bind_text(st, 7, message);
	db_bind_int64(st, 8, hits);
	bind_text(st, 9, results);
	db_bind_int64(st, 10, log_dropped);
	if (expires_in_s >= 0)
		db_bind_double(st, 11, pr->now + expires_in_s);
	db_bind_double(st, 12, pr->t);
	return run(s, st, err);
}

int srv_probe_log_add(struct srv_store *s, int64_t project, const char *id,
		      const struct srv_probe_process *pr, json_t *rec, char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"INSERT INTO probe_log(project, probe, t, service, host, pid, thread, caller,"
		" duration_ms, error, event) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)", err);
	if (!st)
		return -1;
	json_t *v;
	db_bind_int64(st, 1, project);
	bind_text(st, 2, id);
	db_bind_double(st, 3, json_number_value(json_object_get(rec, "t")));
	bind_text(st, 4, pr->service);
	bind_text(st, 5, pr->host);
	db_bind_int64(st, 6, pr->pid);
	if (json_is_integer(v = json_object_get(rec, "thread")))
		db_bind_int64(st, 7, json_integer_value(v));
	bind_text(st, 8, json_string_value(json_object_get(rec, "caller")));
	if (json_is_number(v = json_object_get(rec, "duration_ms")))
		db_bind_double(st, 9, json_number_value(v));
	db_bind_int(st, 10, json_is_true(json_object_get(rec, "error")));
	bind_text(st, 11, json_string_value(json_object_get(rec, "event")));
	return run(s, st, err);
}

int srv_probe_log_trim(struct srv_store *s, int64_t project, const char *id, char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"DELETE FROM probe_log WHERE project = ?1 AND probe = ?2 AND id NOT IN"
		" (SELECT id FROM probe_log WHERE project = ?1 AND probe = ?2"
		"  ORDER BY t DESC, id DESC LIMIT ?3)", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	db_bind_text(st, 2, id, -1);
	db_bind_int(st, 3, SRV_PROBE_LOG_KEEP);
	return run(s, st, err);
}

int srv_probe_reports(struct srv_store *s, int64_t project, const char *id, double now,
		      void (*fn)(json_t *row, void *arg), void *arg, char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"SELECT service, host, pid, status, message, hits, results, log_dropped, last_seen,"
		" expires_at FROM probe_reports WHERE project = ?1 AND probe = ?2"
		" ORDER BY service, host, pid", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	db_bind_text(st, 2, id, -1);
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		const char *res = db_column_text(st, 6);
		json_t *r = res ? json_loads(res, 0, NULL) : NULL;
		double left = db_column_double(st, 9) - now;
		json_t *row = json_pack("{sosososososIsosIsfso}",
			"service", srv_col_text(st, 0), "host", srv_col_text(st, 1),
			"pid", srv_col_int(st, 2), "status", srv_col_text(st, 3),
			"message", srv_col_text(st, 4), "hits", (json_int_t)db_column_int64(st, 5),
			"results", r ? r : json_null(), "log_dropped", (json_int_t)db_column_int64(st, 7),
			"last_seen", db_column_double(st, 8), "expires_in_s",
			db_column_null(st, 9) ? json_null()
								  : json_real(left > 0 ? left : 0.0));
		if (row)
			fn(row, arg);
		json_decref(row);
	}
	return done(s, st, rc, err);
}

json_t *srv_probe_log(struct srv_store *s, int64_t project, const char *id, int limit, char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"SELECT t, service, host, pid, thread, caller, duration_ms, error, event FROM probe_log"
		" WHERE project = ?1 AND probe = ?2 ORDER BY t DESC, id DESC LIMIT ?3", err);
	if (!st)
		return NULL;
	db_bind_int64(st, 1, project);
	db_bind_text(st, 2, id, -1);
	db_bind_int(st, 3, limit);
	json_t *a = json_array();
	int rc;
	while ((rc = db_step(st)) == DB_ROW)
		json_array_append_new(a, json_pack("{sfsososososososbso}",
			"t", db_column_double(st, 0), "service", srv_col_text(st, 1),
			"host", srv_col_text(st, 2), "pid", srv_col_int(st, 3),
			"thread", srv_col_int(st, 4), "caller", srv_col_text(st, 5),
			"duration_ms", srv_col_real(st, 6), "error", db_column_int(st, 7),
			"event", srv_col_text(st, 8)));
	if (done(s, st, rc, err) < 0) {
		json_decref(a);
		return NULL;
	}
	return a;
}

/* ---- settings ---------------------------------------------------------------------- */

int srv_probe_settings_get(struct srv_store *s, int64_t project, int *auto_probes, char *err)
{
	struct db_stmt *st = srv_stmt(s, "SELECT auto_probes FROM probe_settings WHERE project = ?1", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	int rc = db_step(st);
	*auto_probes = rc == DB_ROW ? db_column_int(st, 0) != 0 : 1;
	if (rc == DB_ROW)
		rc = DB_DONE;
	return done(s, st, rc, err);
}

int srv_probe_settings_set(struct srv_store *s, int64_t project, int auto_probes, char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"INSERT INTO probe_settings(project, auto_probes, next_probe) VALUES(?1, ?2, 0)"
		" ON CONFLICT(project) DO UPDATE SET auto_probes = excluded.auto_probes", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	db_bind_int(st, 2, auto_probes != 0);
	return run(s, st, err);
}

/* ---- the root-cause analysis's data ---------------------------------------------- */

int srv_rca_build_seen(struct srv_store *s, int64_t project, const char *service,
		       const char *build_id, double t, char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"INSERT INTO builds(project, service, build_id, first_seen, last_seen)"
		" VALUES(?1, ?2, ?3, ?4, ?4) ON CONFLICT(project, service, build_id) DO UPDATE SET"
		" first_seen = CASE WHEN excluded.first_seen < builds.first_seen"
		"  THEN excluded.first_seen ELSE builds.first_seen END,"
		" last_seen = CASE WHEN excluded.last_seen > builds.last_seen"
		"  THEN excluded.last_seen ELSE builds.last_seen END", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	bind_text(st, 2, service);
	bind_text(st, 3, build_id);
	db_bind_double(st, 4, t);
	return run(s, st, err);
}

/* An edge seen before leaves its row untouched (no new row version, no
 * WAL on PostgreSQL): only an earlier first sighting writes. */
int srv_rca_caller_seen(struct srv_store *s, int64_t project, int64_t caller, int64_t callee,
			double t, char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"INSERT INTO callers_seen(project, callee, caller, first_seen) VALUES(?1, ?2, ?3, ?4)"
		" ON CONFLICT(project, callee, caller) DO UPDATE SET first_seen = excluded.first_seen"
		" WHERE excluded.first_seen < callers_seen.first_seen", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	db_bind_int64(st, 2, callee);
	db_bind_int64(st, 3, caller);
	db_bind_double(st, 4, t);
	return run(s, st, err);
}

int srv_rca_incident(struct srv_store *s, int64_t project, int64_t id, json_t **row, char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"SELECT id, kind, signal, chain, count, first_seen, last_seen, function FROM incidents"
		" WHERE project = ?1 AND id = ?2", err);
	if (!st)
		return -1;
	db_bind_int64(st, 1, project);
	db_bind_int64(st, 2, id);
	int rc = db_step(st), found = 0;
	if (rc == DB_ROW) {
		json_t *chain = json_loads(db_column_text(st, 3), 0, NULL);
		*row = json_pack("{sIsosIsosIsfsfso}", "id", (json_int_t)db_column_int64(st, 0),
			"kind", srv_col_text(st, 1), "signal", (json_int_t)db_column_int64(st, 2),
			"chain", chain ? chain : json_array(), "count", (json_int_t)db_column_int64(st, 4),
			"first_seen", db_column_double(st, 5), "last_seen", db_column_double(st, 6),
			"function", srv_col_text(st, 7));
		found = *row != NULL;
		rc = DB_DONE;
	}
	return done(s, st, rc, err) < 0 ? -1 : found;
}

json_t *srv_rca_new_build(struct srv_store *s, int64_t project, double from, double to, char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"SELECT b.service, b.build_id, b.first_seen FROM builds b"
		" WHERE b.project = ?1 AND b.first_seen >= ?2 AND b.first_seen <= ?3"
		" AND EXISTS (SELECT 1 FROM builds o WHERE o.project = b.project"
		"  AND o.service = b.service AND o.build_id <> b.build_id AND o.first_seen < b.first_seen)"
		" ORDER BY b.first_seen DESC, b.service LIMIT 1", err);
	if (!st)
		return NULL;
	db_bind_int64(st, 1, project);
	db_bind_double(st, 2, from);
	db_bind_double(st, 3, to);
	json_t *out = json_null();
	int rc = db_step(st);
	if (rc == DB_ROW) {
		out = json_pack("{sososf}", "service", srv_col_text(st, 0), "build_id",
				srv_col_text(st, 1), "first_seen", db_column_double(st, 2));
		rc = DB_DONE;
	}
	if (done(s, st, rc, err) < 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

json_t *srv_rca_new_callers(struct srv_store *s, int64_t project, const char *function,
			    double from, double to, char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"SELECT c.name, cs.first_seen,"
		" (SELECT COALESCE(SUM(e.calls), 0) FROM edges e WHERE e.project = cs.project"
		"  AND e.caller = cs.caller AND e.callee = cs.callee"
		"  AND e.bucket_start >= cs.first_seen - 60)"
		" FROM callers_seen cs JOIN names f ON f.id = cs.callee JOIN names c ON c.id = cs.caller"
		" WHERE cs.project = ?1 AND f.name = ?2 AND cs.first_seen >= ?3 AND cs.first_seen <= ?4"
		" AND EXISTS (SELECT 1 FROM callers_seen o WHERE o.project = cs.project"
		"  AND o.callee = cs.callee AND o.caller <> cs.caller AND o.first_seen < cs.first_seen)"
		" ORDER BY cs.first_seen, c.name LIMIT 20", err);
	if (!st)
		return NULL;
	db_bind_int64(st, 1, project);
	db_bind_text(st, 2, function, -1);
	db_bind_double(st, 3, from);
	db_bind_double(st, 4, to);
	json_t *a = json_array();
	int rc;
	while ((rc = db_step(st)) == DB_ROW)
		json_array_append_new(a, json_pack("{sosfsI}", "name", srv_col_text(st, 0),
			"first_seen", db_column_double(st, 1),
			"calls", (json_int_t)db_column_int64(st, 2)));
	if (done(s, st, rc, err) < 0) {
		json_decref(a);
		return NULL;
	}
	return a;
}

json_t *srv_rca_callees(struct srv_store *s, int64_t project, const char *function, int64_t since,
			char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"SELECT DISTINCT d.name FROM edges e JOIN names c ON c.id = e.caller"
		" JOIN names d ON d.id = e.callee WHERE e.project = ?1 AND c.name = ?2"
		" AND e.bucket_start >= ?3 ORDER BY d.name LIMIT 50", err);
	if (!st)
		return NULL;
	db_bind_int64(st, 1, project);
	db_bind_text(st, 2, function, -1);
	db_bind_int64(st, 3, since);
	json_t *a = json_array();
	int rc;
	while ((rc = db_step(st)) == DB_ROW)
		json_array_append_new(a, json_pack("{so}", "name", srv_col_text(st, 0)));
	if (done(s, st, rc, err) < 0) {
		json_decref(a);
		return NULL;
	}
	return a;
}

int srv_rca_hist(struct srv_store *s, int64_t project, const char *function, int64_t from,
		 int64_t to, int64_t counts[], char *err)
{
	struct db_stmt *st = srv_stmt(s,
		"SELECT h.b, SUM(h.count) FROM hist h JOIN functions f ON f.id = h.function"
		" WHERE h.project = ?1 AND f.project = ?1 AND f.name = ?2"
		" AND h.bucket_start >= ?3 AND h.bucket_start < ?4 GROUP BY h.b", err);
	if (!st)
		return -1;
	memset(counts, 0, SRV_HIST_BUCKETS * sizeof counts[0]);
	db_bind_int64(st, 1, project);
	db_bind_text(st, 2, function, -1);
	db_bind_int64(st, 3, from);
	db_bind_int64(st, 4, to);
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		int64_t b = db_column_int64(st, 0);
		if (b >= 0 && b < SRV_HIST_BUCKETS)
			counts[b] += db_column_int64(st, 1);
	}
	return done(s, st, rc, err);
}

/* ---- retention ------------------------------------------------------------------- */

int64_t srv_probes_prune(struct srv_store *s, int64_t project, double before, char *err)
{
	static const char *const del[] = {
		"DELETE FROM probes WHERE project = ?1 AND expires_at < ?2",
		"DELETE FROM builds WHERE project = ?1 AND last_seen < ?2",
	};
	int64_t n = 0;
	for (size_t i = 0; i < 2; i++) {
		struct db_stmt *st = srv_stmt(s, del[i], err);
		if (!st)
			return -1;
		db_bind_int64(st, 1, project);
		db_bind_double(st, 2, before);
		if (run(s, st, err) < 0)
			return -1;
		n += changes(s);
	}
	return n;
}
