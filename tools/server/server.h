/* server.h: the private interfaces between codensm-server's modules.
 *
 * Data flows one way: http (sockets) -> ingest (validation, quotas) -> store
 * (store.h, SQLite or PostgreSQL through db.h) -> api (JSON views, using
 * metrics for the formulas) -> the page, which static serves.  Cross-file names carry the srv_ prefix; every call
 * that can fail returns 0 / -1 (or NULL) and writes one lowercase line into a
 * caller-owned char err[SRV_ERRLEN].  No module but main.c calls exit().
 */
#ifndef CODENSM_SERVER_H
#define CODENSM_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>


#define SRV_ERRLEN 256

/* The ingest contract's limits (docs/payload.md): runtime/src/contract.h,
 * which the runtime includes too, so the two sides cannot disagree. */
#include "contract.h"
#define SRV_MAX_BODY       CNSMP_CONTRACT_MAX_BODY
#define SRV_MAX_FUNCTIONS  CNSMP_CONTRACT_MAX_FUNCTIONS
#define SRV_MAX_NAME       CNSMP_CONTRACT_NAME_MAX
#define SRV_MAX_DEPARTMENT CNSMP_CONTRACT_DEPT_MAX
#define SRV_MAX_PATH       CNSMP_CONTRACT_FILE_MAX
#define SRV_MAX_BATCH_ID   CNSMP_CONTRACT_BATCH_ID_MAX
#define SRV_HIST_BUCKETS   CNSMP_CONTRACT_HIST_BUCKETS
#define SRV_BUCKET_SECONDS 60            /* width of a time bucket */

/* ---- keys.c: random keys, SHA-256 hashes, constant-time comparison ------ */

#define SRV_HASHLEN 32
/* Fills out (at least 40 bytes) with prefix + 32 base32 characters drawn
 * from getrandom(): 160 bits.  Returns 0, or -1 when the kernel gives none. */
int srv_key_new(const char *prefix, char *out, size_t outlen);
void srv_key_hash(const char *key, unsigned char hash[SRV_HASHLEN]);
/* 1 when equal; the time taken does not depend on where they differ. */
int srv_hash_equal(const unsigned char *a, const unsigned char *b);
/* The key in an "Authorization: Bearer KEY" header, or NULL. */
const char *srv_bearer(const char *header);

/* ---- clock.c: now --------------------------------------------------------- */

/* Unix seconds: the real clock, or the test clock's file when
 * CODENSM_TEST_CLOCK names one (tests only). */
double srv_now(void);
/* -1 with err when CODENSM_TEST_CLOCK is set but unreadable. */
int srv_clock_check(char *err);

#include "store.h"

/* ---- retention.c: the schedule ------------------------------------------- */

#define SRV_PRUNE_EVERY 3600     /* seconds of the server's clock between two prunings */
/* srv_store_prune at srv_now(), with one line on stderr when it deleted. */
int srv_prune_now(struct srv_store *s, char *err);
/* A thread that calls srv_prune_now every SRV_PRUNE_EVERY seconds of the
 * server's clock, on a connection of its own. */
struct srv_pruner;
struct srv_pruner *srv_pruner_start(char *err);
void srv_pruner_stop(struct srv_pruner *pr);     /* NULL: no-op */

/* ---- ingest.c: POST /codensm/ingest ------------------------------------ */

struct srv_reply {
	unsigned status;
	json_t *body;        /* owned; NULL for no body */
	char *text;          /* owned (malloc); when set, the body instead of JSON */
	const char *type;    /* text's Content-Type (static) */
};
/* Validates a request body (docs/payload.md) and applies it in one
 * transaction.  now is the server clock (unix seconds). */
void srv_ingest(const char *auth_header, const char *body, size_t len, double now,
		struct srv_reply *r);
/* Validation alone: 0, or -1 with "functions[3].calls: ..." in err. */
int srv_ingest_validate(json_t *root, char *err);

/* ---- flows.c: the flows section (CODENSM_MODE=full) --------------------- */

/* Checks flows[i]: 0, or -1 with "flows[3].nodes[2].type: ..." in err. */
int srv_flow_check(json_t *f, size_t i, char *err);
/* Stores each entry of root's "flows" as its function's latest flow, inside
 * the caller's transaction.  0 or -1 with err. */
int srv_flows_apply(struct srv_store *st, int64_t project, json_t *root, double now, char *err);

/* ---- metrics.c: the formulas of docs/api.md ----------------------------- */

double srv_hist_lower_ns(unsigned b);
double srv_hist_upper_ns(unsigned b);
/* Percentile q (0..1) of a merged histogram, in milliseconds, interpolated
 * linearly inside the bucket that holds the rank q * total.  Returns -1 when
 * the histogram is empty. */
double srv_hist_percentile_ms(const int64_t counts[SRV_HIST_BUCKETS], double q);
double srv_ratio(double num, double den);           /* 0 when den is 0 */
double srv_reliability(int64_t calls, int64_t errors);
double srv_performance(double p50_30d, double p50_window);
const char *srv_state(int64_t calls_15m, int64_t errors_15m, int64_t calls_30d,
		      int in_inventory, int64_t calls_ever, int64_t threshold);
int srv_state_ok(const char *state);

/* ---- api.c: GET /api/projects/{project}/{view} --------------------------- */

/* path is what follows "/api/" (already URL-decoded), query an accessor. */
typedef const char *(*srv_query_fn)(void *ctx, const char *key);
void srv_api(const char *auth_header, const char *path, srv_query_fn query, void *qctx,
	     double now, struct srv_reply *r);
/* Helpers shared by api.c and api_views.c. */
json_t *srv_error_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Length of the valid UTF-8 sequence at s (1-4, within `avail` bytes), or
 * 0 if there is none: the contract's rule (contract.h). */
static inline size_t srv_utf8_len(const unsigned char *s, size_t avail)
{
	return cnsmp_contract_utf8_len(s, avail);
}
struct srv_view {
	struct srv_store *st;
	int64_t project;
	const char *project_name;
	double now;
	const char *window;       /* "1h", "24h", "7d" or "30d" */
	int64_t since;            /* first bucket_start inside the window */
	int64_t step;             /* trend step, seconds */
	srv_query_fn query;
	void *qctx;
	char err[SRV_ERRLEN];
};
/* Helpers the views share (api_views.c).  srv_view_done ends a stepping
 * loop: 0 when it reached DB_DONE, else -1 with v->err. */
int srv_view_done(struct srv_view *v, struct db_stmt *s, int rc);
json_t *srv_col_text(struct db_stmt *s, int i);       /* NULL column -> json null */
json_t *srv_col_int(struct db_stmt *s, int i);
json_t *srv_col_real(struct db_stmt *s, int i);
json_t *srv_ms_or_null(double ms);                  /* -1 (no histogram) -> null */
json_t *srv_bad_param(struct srv_view *v, unsigned *status, const char *name, const char *what);
/* The row that sql (?1 the project, ?2 the name) finds for ?fn=: 1 with
 * *row stepped onto it (the caller resets it), 0 with status 400 (no name)
 * or 404 and v->err "<before>'<name>'<after>", -1 database error. */
int srv_fn_row(struct srv_view *v, unsigned *status, const char *sql, const char *before,
	       const char *after, const char **name, struct db_stmt **row);
int srv_fn_hist(struct srv_view *v, int64_t fid, int64_t since, int64_t counts[SRV_HIST_BUCKETS]);
/* Every function of the project with its sums over the window (w), the
 * last 15 minutes (r), the last 30 days (m), its share of the window's NSM
 * and its live state.  ?1 project, ?2 window start, ?3 15 minutes ago,
 * ?4 30 days ago, ?5 the underuse threshold. */
#define SRV_FN_ROWS \
	"WITH w AS (SELECT function, SUM(calls) c, SUM(errors) e, SUM(total_ms) t," \
	"  SUM(self_ms) s, MAX(max_ms) mx, SUM(value) v, SUM(estimated) u FROM buckets" \
	"  WHERE project = ?1 AND bucket_start >= ?2 GROUP BY function)," \
	" r AS (SELECT function, SUM(calls) c, SUM(errors) e FROM buckets" \
	"  WHERE project = ?1 AND bucket_start >= ?3 GROUP BY function)," \
	" m AS (SELECT function, SUM(calls) c FROM buckets" \
	"  WHERE project = ?1 AND bucket_start >= ?4 GROUP BY function)," \
	" tot AS (SELECT COALESCE(SUM(value), 0) v FROM buckets WHERE project = ?1 AND bucket_start >= ?2)," \
	" rows AS (SELECT f.id, f.name, f.department, f.value_weight," \
	"  COALESCE(w.c, 0) calls, COALESCE(w.e, 0) errors," \
	"  CASE WHEN w.c > 0 THEN w.e * 1.0 / w.c ELSE 0.0 END error_rate," \
	"  COALESCE(w.mx, 0.0) max_ms, COALESCE(w.t, 0.0) total_ms, COALESCE(w.s, 0.0) self_ms," \
	"  COALESCE(w.v, 0.0) nsm, CASE WHEN tot.v > 0 THEN COALESCE(w.v, 0.0) / tot.v ELSE 0.0 END share," \
	"  f.file, f.line, f.first_seen, f.last_seen, COALESCE(w.u, 0) estimated_calls," \
	"  cnsm_state(COALESCE(r.c, 0), COALESCE(r.e, 0), COALESCE(m.c, 0), f.in_inventory," \
	"   f.calls_total, ?5) state," \
	"  fl.decisions, fl.loops, fl.returns, fl.nodes_count, fl.lines, fl.has_tests" \
	"  FROM functions f CROSS JOIN tot LEFT JOIN w ON w.function = f.id" \
	"  LEFT JOIN r ON r.function = f.id LEFT JOIN m ON m.function = f.id" \
	"  LEFT JOIN flows fl ON fl.project = f.project AND fl.name = f.name WHERE f.project = ?1) "

#define SRV_LAST_15M (15 * 60)
#define SRV_LAST_30D (30 * 86400)
/* Binds ?1..?5 of SRV_FN_ROWS for the view's window. */
void srv_bind_fn_rows(struct srv_view *v, struct db_stmt *s, int64_t threshold);
/* Each view returns a new JSON object, or NULL with status/err set (a
 * status left at 200 with NULL means a database failure). */
json_t *srv_view_summary(struct srv_view *v, unsigned *status);
json_t *srv_view_departments(struct srv_view *v, unsigned *status);
json_t *srv_view_functions(struct srv_view *v, unsigned *status);
json_t *srv_view_office(struct srv_view *v, unsigned *status);
json_t *srv_view_debt(struct srv_view *v, unsigned *status);
json_t *srv_view_underuse(struct srv_view *v, unsigned *status);
json_t *srv_view_incidents(struct srv_view *v, unsigned *status);
json_t *srv_view_graph(struct srv_view *v, unsigned *status);
json_t *srv_view_prompt(struct srv_view *v, unsigned *status);

/* ---- api_code.c: the views of CODENSM_MODE=full --------------------------- */

json_t *srv_view_flow(struct srv_view *v, unsigned *status);
json_t *srv_view_code(struct srv_view *v, unsigned *status);
/* The stored flow of ?fn= as {"flow":{...},"service",...} in *row: 1, 0 with
 * *status 400/404 and v->err, -1 on a database error. */
int srv_flow_find(struct srv_view *v, unsigned *status, const char **name, json_t **row);
/* Boilerplate: no decision, no loop, at most 5 lines (docs/api.md). */
int srv_flow_boilerplate(int64_t decisions, int64_t loops, int64_t lines);
int64_t srv_flow_complexity(int64_t decisions, int64_t loops); /* decisions + loops + 1 */

/* ---- flowsvg.c: a flow drawn by Graphviz ---------------------------------- */

#define SRV_FLOW_SVG_MAX_NODES 3000
/* The flow (a checked flows entry) as an SVG document: 0 with *svg
 * (malloc'd) and *len, or -1 with err. */
int srv_flow_svg(json_t *flow, char **svg, size_t *len, char *err);

/* ---- prometheus.c: GET /api/projects/{project}/metrics ------------------ */

#define SRV_PROM_FUNCTIONS   500   /* function series: the top ones by calls */
#define SRV_PROM_DEPARTMENTS 100   /* department series: the top ones by calls */
/* The project's lifetime counters in the Prometheus text format (0.0.4):
 * 0 with r->text and r->type set, or -1 with err (a database failure). */
int srv_prometheus(struct srv_store *st, int64_t project, struct srv_reply *r, char *err);

/* ---- static.c: the page ----------------------------------------------- */

/* Resolves a URL path under root: 0 with the real path in out, 404 when there
 * is no such file, 403 when the path tries to leave root. */
int srv_static_resolve(const char *root, const char *urlpath, char *out, size_t outlen);
const char *srv_content_type(const char *path);
/* The web folder: --web, $CODENSM_WEB, the installed share dir next to the
 * binary, or tools/server/web; NULL if none exists. */
const char *srv_web_dir(const char *override, char *buf, size_t len);

/* ---- http.c: the libmicrohttpd daemon ----------------------------------- */

struct srv_http;
/* Listens on host:port (port 0: any free port); returns NULL with err. */
struct srv_http *srv_http_start(const char *listen, const char *webdir, char *err);
unsigned srv_http_port(struct srv_http *h);
void srv_http_stop(struct srv_http *h);

#endif
