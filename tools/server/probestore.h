/* probestore.h: what the probes (issue 18) and the root-cause analysis ask
 * of the database, implemented by probestore.c alone: every
 * statement about probes, their per-process reports, the project's probe
 * settings, the builds and callers that the root-cause analysis compares,
 * lives there and nowhere else, on the statement layer (db.h).
 * server.h includes it; every err is a caller-owned buffer of SRV_ERRLEN
 * bytes, filled with one line on failure.
 *
 * Rows come back as jansson objects (the API's shape), so that the callers
 * never see a statement.  Times are unix seconds (REAL), as everywhere in
 * the schema; lastmodified is stored as seconds and printed as ISO-8601.
 */
#ifndef CODENSM_SERVER_PROBESTORE_H
#define CODENSM_SERVER_PROBESTORE_H

#include <stdint.h>
#include <jansson.h>

struct srv_store;

#define SRV_PROBE_ID_MAX      64     /* bytes of a probe id: A-Z a-z 0-9 . _ - */
#define SRV_PROBE_TYPE_MAX    63     /* bytes of an instrument type (the runtime's TYPE_MAX - 1) */
#define SRV_PROBE_LABEL_MAX   128    /* bytes of an instrument's name */
#define SRV_PROBES_ACTIVE_MAX 64     /* active probes per project: the ingest answer stays < 64 kB */
#define SRV_PROBE_LOG_KEEP    200    /* log records kept per probe, newest */
#define SRV_PROBE_LISTED_S    86400  /* GET probes lists those expired within this */

/* A probe as stored: the spec's fields as given (NULL when left out). */
struct srv_probe {
	const char *id, *target, *type, *name, *value, *event;
	const char *custom;          /* compact JSON object text, or NULL */
	double lifespan;             /* minutes */
	double lastmodified;         /* unix seconds, milliseconds resolution */
	int is_auto;
	int64_t incident_id;         /* 0: none */
};

/* ---- probes ------------------------------------------------------------------- */

/* Inserts p: 0, 1 when its id is in use (nothing written), -1 with err. */
int srv_probe_insert(struct srv_store *s, int64_t project, const struct srv_probe *p,
		     double now, char *err);
/* A fresh id "p-<n>" not in use: 0 or -1 with err. */
int srv_probe_new_id(struct srv_store *s, int64_t project, char *out, size_t len, char *err);
/* A new lastmodified (and lifespan when > 0), the reports of the old life
 * deleted: 1 done, 0 no such probe, -1 with err. */
int srv_probe_renew(struct srv_store *s, int64_t project, const char *id, double lastmodified,
		    double lifespan, char *err);
/* Makes the project's probe writers take turns until the transaction
 * ends, so that counting the active probes and adding one is atomic: on
 * PostgreSQL a lock on the project's probe_settings row (created with its
 * defaults if missing); on SQLite nothing, as a write transaction holds
 * the file's write lock already.  0 or -1 with err. */
int srv_probes_lock(struct srv_store *s, int64_t project, char *err);
/* 1 deleted (with its reports and log), 0 no such probe, -1 with err. */
int srv_probe_delete(struct srv_store *s, int64_t project, const char *id, char *err);
/* Probe rows as stored: {"id","target","type","name","value","event",
 * "custom","lifespan","lastmodified","expires_at","created_at","auto",
 * "incident_id","hits"} (a field left out is null; hits summed over the
 * processes).  srv_probes_rows: those expiring after `expired_since`,
 * newest first; NULL with err. */
json_t *srv_probes_rows(struct srv_store *s, int64_t project, double expired_since, char *err);
/* One row: *found 0 (and NULL) when there is none; NULL with err. */
json_t *srv_probe_row(struct srv_store *s, int64_t project, const char *id, int *found, char *err);
/* The id of the automatic stack probe of an incident, or else of the
 * active automatic one on its function: 1 with id, 0 none, -1 with err. */
int srv_probe_auto_for(struct srv_store *s, int64_t project, int64_t incident,
		       const char *function, double now, char *id, size_t len, char *err);
/* 1 when an automatic probe on `function` is active at now, 0 not, -1. */
int srv_probe_auto_active(struct srv_store *s, int64_t project, const char *function, double now,
			  char *err);

/* ---- reports (inside ingest's transaction) -------------------------------------- */

/* Where a payload came from (_meta). */
struct srv_probe_process {
	const char *service, *host;
	int64_t pid;
	double t;           /* when (ingest's event time) */
	double client_end;  /* the client's _meta.interval end, or -1 */
	double now;         /* the server's clock */
};
/* The probe's type and end (lastmodified + lifespan) for a report:
 * 1 found, 0 not a probe of the project, -1 with err. */
int srv_probe_lookup(struct srv_store *s, int64_t project, const char *id, char *type,
		     size_t typelen, double *end, char *err);
/* Adds one checked report entry: hits added, status/message/results (the
 * process's latest, over the probe's life) replaced unless older than the
 * stored one, log_dropped added; results is a compact JSON text or NULL. */
int srv_probe_report(struct srv_store *s, int64_t project, const char *id,
		     const struct srv_probe_process *pr, const char *status, const char *message,
		     int64_t hits, const char *results, int64_t log_dropped, double expires_in_s,
		     char *err);
/* Appends one log record (a checked object of the payload) and keeps the
 * newest SRV_PROBE_LOG_KEEP of the probe. */
int srv_probe_log_add(struct srv_store *s, int64_t project, const char *id,
		      const struct srv_probe_process *pr, json_t *rec, char *err);
int srv_probe_log_trim(struct srv_store *s, int64_t project, const char *id, char *err);

/* The per-process rows of a probe, for merging: calls fn(row, arg) with
 * {"service","host","pid","status","message","hits","results","log_dropped",
 * "last_seen","expires_in_s"} (results parsed, or null). */
int srv_probe_reports(struct srv_store *s, int64_t project, const char *id, double now,
		      void (*fn)(json_t *row, void *arg), void *arg, char *err);
/* The probe's log, newest first, at most `limit` records (RECORD objects). */
json_t *srv_probe_log(struct srv_store *s, int64_t project, const char *id, int limit,
		      char *err);

/* ---- settings ---------------------------------------------------------------------- */

int srv_probe_settings_get(struct srv_store *s, int64_t project, int *auto_probes, char *err);
int srv_probe_settings_set(struct srv_store *s, int64_t project, int auto_probes, char *err);

/* ---- the root-cause analysis's data ---------------------------------------------- */

/* Ingest's side, inside its transaction: the build a service runs
 * (first and last seen), and the first time a caller -> callee edge was seen. */
int srv_rca_build_seen(struct srv_store *s, int64_t project, const char *service,
		       const char *build_id, double t, char *err);
int srv_rca_caller_seen(struct srv_store *s, int64_t project, int64_t caller, int64_t callee,
			double t, char *err);
/* The incident row as the incidents view gives it, plus "function": 1
 * with *row, 0 none, -1 with err. */
int srv_rca_incident(struct srv_store *s, int64_t project, int64_t id, json_t **row, char *err);
/* The newest build first seen in [from, to] of a service that had run an
 * earlier build: {"service","build_id","first_seen"}, or json null. */
json_t *srv_rca_new_build(struct srv_store *s, int64_t project, double from, double to, char *err);
/* Callers of `function` first seen in [from, to] while the function had
 * been called by another caller before: [{"name","first_seen","calls"}]
 * (calls: edges from first_seen's bucket on). */
json_t *srv_rca_new_callers(struct srv_store *s, int64_t project, const char *function,
			    double from, double to, char *err);
/* `function` and its callees (edges out of it since `since`):
 * [{"name"}]. */
json_t *srv_rca_callees(struct srv_store *s, int64_t project, const char *function,
			int64_t since, char *err);
/* The merged histogram of a function over buckets [from, to). */
int srv_rca_hist(struct srv_store *s, int64_t project, const char *function, int64_t from,
		 int64_t to, int64_t counts[], char *err);

/* ---- retention ------------------------------------------------------------------- */

/* Deletes probes (with their reports and log) that expired before `before`,
 * and builds and callers last seen before it: rows deleted, or -1. */
int64_t srv_probes_prune(struct srv_store *s, int64_t project, double before, char *err);

#endif
