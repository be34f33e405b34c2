/* retention.c: deleting what no view can show any more, at start-up and
 * then every SRV_PRUNE_EVERY seconds, from a thread of its own.
 *
 * What is kept (docs/api.md, "Retention"): time buckets, histograms and
 * edges from the last SRV_KEEP_SECONDS, incidents seen within it, batch ids
 * received within SRV_REPLAY_SECONDS.  Functions, edge names and monthly
 * usage are bounded by the program and the calendar and stay.
 *
 * Old rows go in slices of at most a day per transaction, so that a server
 * started after a long pause does not hold SQLite's write lock (and every
 * ingest behind it) for the whole backlog.  SQLite reuses the freed pages;
 * the file does not shrink, it stops growing.  On PostgreSQL the
 * per-minute tables are partitioned by day (schema_pg.c): whole days past
 * the horizon go by DROP, which frees their space at once, and the DELETEs
 * take only what the horizon cuts from the oldest remaining day.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server.h"

#define SLICE 86400              /* seconds of buckets deleted per transaction */

/* The time-series tables: the oldest bucket of a project, and the delete
 * of a slice ([start of time, ?2) of project ?1), both along the primary
 * key (project, bucket_start, ...). */
static const struct {
	const char *min, *del;
	size_t off;                  /* the counter in struct srv_pruned */
} series[] = {
	{ "SELECT MIN(bucket_start) FROM buckets WHERE project = ?1",
	  "DELETE FROM buckets WHERE project = ?1 AND bucket_start < ?2",
	  offsetof(struct srv_pruned, buckets) },
	{ "SELECT MIN(bucket_start) FROM hist WHERE project = ?1",
	  "DELETE FROM hist WHERE project = ?1 AND bucket_start < ?2",
	  offsetof(struct srv_pruned, hist) },
	{ "SELECT MIN(bucket_start) FROM edges WHERE project = ?1",
	  "DELETE FROM edges WHERE project = ?1 AND bucket_start < ?2",
	  offsetof(struct srv_pruned, edges) },
};

/* One DELETE of project p before t, in a transaction of its own; adds the
 * rows deleted to *count.  0 or -1 with err (the transaction rolled back). */
static int delete_before(struct srv_store *s, const char *sql, int64_t p, double t,
			 int64_t *count, char *err)
{
	char ignore[SRV_ERRLEN];
	struct db_stmt *st;
	if (srv_begin(s, err) < 0)
		return -1;
	if (!(st = srv_stmt(s, sql, err)))
		goto fail;
	db_bind_int64(st, 1, p);
	db_bind_double(st, 2, t);
	if (db_step(st) != DB_DONE) {
		snprintf(err, SRV_ERRLEN, "database: %s", db_errmsg(srv_store_db(s)));
		db_reset(st);
		goto fail;
	}
	db_reset(st);
	*count += db_changes(srv_store_db(s));
	if (srv_exec(s, "COMMIT", err) == 0)
		return 0;
fail:
	srv_exec(s, "ROLLBACK", ignore);
	return -1;
}

static int prune_series(struct srv_store *s, int64_t p, int64_t horizon, struct srv_pruned *out,
			char *err)
{
	for (size_t i = 0; i < sizeof series / sizeof *series; i++) {
		int64_t *count = (int64_t *)((char *)out + series[i].off);
		struct db_stmt *st = srv_stmt(s, series[i].min, err);
		if (!st)
			return -1;
		db_bind_int64(st, 1, p);
		int rc = db_step(st);
		int empty = rc != DB_ROW || db_column_null(st, 0);
		int64_t oldest = empty ? horizon : db_column_int64(st, 0);
		db_reset(st);
		if (rc != DB_ROW) {
			snprintf(err, SRV_ERRLEN, "database: %s", db_errmsg(srv_store_db(s)));
			return -1;
		}
		while (oldest < horizon) {
			int64_t upto = oldest + SLICE < horizon ? oldest + SLICE : horizon;
			if (delete_before(s, series[i].del, p, (double)upto, count, err) < 0)
				return -1;
			oldest = upto;
		}
	}
	return 0;
}

int srv_store_prune(struct srv_store *s, double now, struct srv_pruned *out, char *err)
{
	int64_t keep_from = (int64_t)now - SRV_KEEP_SECONDS;
	double batches_from = now - SRV_REPLAY_SECONDS;
	int64_t ids[256];
	int64_t after = -1;
	memset(out, 0, sizeof *out);
	/* PostgreSQL: whole days go by dropping their partitions; the DELETEs
	 * below then take what is left of the day the horizon cuts */
	if (srv_store_is_pg()) {
		int64_t dropped[3] = { 0, 0, 0 };
		if (srv_pg_partitions(s, now, keep_from, dropped, err) < 0)
			return -1;
		out->buckets = dropped[0];
		out->hist = dropped[1];
		out->edges = dropped[2];
	}
	/* projects a page at a time: the statement is not held open across
	 * the deletes' transactions */
	for (;;) {
		struct db_stmt *st = srv_stmt(s, "SELECT id FROM projects WHERE id > ?1 ORDER BY id LIMIT 256",
					    err);
		size_t n = 0;
		int rc;
		if (!st)
			return -1;
		db_bind_int64(st, 1, after);
		while ((rc = db_step(st)) == DB_ROW)
			ids[n++] = db_column_int64(st, 0);
		db_reset(st);
		if (rc != DB_DONE) {
			snprintf(err, SRV_ERRLEN, "database: %s", db_errmsg(srv_store_db(s)));
			return -1;
		}
		for (size_t i = 0; i < n; i++)
			if (prune_series(s, ids[i], keep_from, out, err) < 0 ||
			    delete_before(s, "DELETE FROM incidents WHERE project = ?1 AND last_seen < ?2",
					  ids[i], (double)keep_from, &out->incidents, err) < 0 ||
			    delete_before(s, "DELETE FROM batches WHERE project = ?1 AND received_at < ?2",
					  ids[i], batches_from, &out->batches, err) < 0)
				return -1;
		if (n < 256)
			return 0;
		after = ids[n - 1];
	}
}

int srv_prune_now(struct srv_store *s, char *err)
{
	struct srv_pruned p;
	double now = srv_now();
	if (srv_store_prune(s, now, &p, err) < 0)
		return -1;
	if (p.buckets || p.hist || p.edges || p.incidents || p.batches) {
		char when[32];
		time_t t = (time_t)now - SRV_KEEP_SECONDS;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
		fprintf(stderr, "codensm-server: pruned %lld buckets, %lld histogram rows, %lld edges,"
			" %lld incidents from before %s and %lld batch ids\n", (long long)p.buckets,
			(long long)p.hist, (long long)p.edges, (long long)p.incidents, when,
			(long long)p.batches);
	}
	return 0;
}

/* ---- the schedule ------------------------------------------------------------ */

struct srv_pruner {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stopping;
};

/* Looks at the server's clock once a second (real time), and prunes when
 * SRV_PRUNE_EVERY seconds of it have passed since the last run: with the
 * test clock, moving time forward a day prunes within a second.  A failed
 * run is logged and retried at the next period. */
static void *pruner_main(void *arg)
{
	struct srv_pruner *pr = arg;
	char err[SRV_ERRLEN];
	double next = srv_now() + SRV_PRUNE_EVERY;
	pthread_mutex_lock(&pr->lock);
	while (!pr->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&pr->wake, &pr->lock, &ts);
		if (pr->stopping || srv_now() < next)
			continue;
		pthread_mutex_unlock(&pr->lock);
		struct srv_store *s = srv_store_get(err);
		if (!s || srv_prune_now(s, err) < 0) {
			char line[SRV_ERRLEN + 40];
			snprintf(line, sizeof line, "pruning old data: %s", err);
			srv_store_log(s, line);
		}
		srv_store_release();
		next = srv_now() + SRV_PRUNE_EVERY;
		pthread_mutex_lock(&pr->lock);
	}
	pthread_mutex_unlock(&pr->lock);
	return NULL;
}

struct srv_pruner *srv_pruner_start(char *err)
{
	static struct srv_pruner pr = { .lock = PTHREAD_MUTEX_INITIALIZER,
					.wake = PTHREAD_COND_INITIALIZER };
	pr.stopping = 0;
	int rc = pthread_create(&pr.thread, NULL, pruner_main, &pr);
	if (rc) {
		snprintf(err, SRV_ERRLEN, "cannot start the pruning thread: %s", strerror(rc));
		return NULL;
	}
	return &pr;
}

void srv_pruner_stop(struct srv_pruner *pr)
{
	if (!pr)
		return;
	pthread_mutex_lock(&pr->lock);
	pr->stopping = 1;
	pthread_cond_signal(&pr->wake);
	pthread_mutex_unlock(&pr->lock);
	pthread_join(pr->thread, NULL);
}
