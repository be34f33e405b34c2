/* main.c: codensm-server's command line: serve, or manage projects. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <time.h>

#include "server.h"

#define DEFAULT_LISTEN "127.0.0.1:8650"
#define VERSION "0.1.0"

static const char usage[] =
	"usage: codensm-server [--listen HOST:PORT] [--db PATH|URL] [--db-pool N] [--web DIR]\n"
	"       codensm-server project create NAME [--plan free|team|scale] [--db PATH|URL] [--listen HOST:PORT]\n"
	"       codensm-server project list [--db PATH|URL]\n"
	"\n"
	"Serves the ingest endpoint (POST /codensm/ingest), the dashboard (/), its\n"
	"JSON API (/api/) and each project's Prometheus metrics\n"
	"(/api/projects/NAME/metrics) on 127.0.0.1:8650 unless --listen says otherwise\n"
	"(port 0: any free port; the first line on stdout names it).  The database is\n"
	"$CODENSM_DB or ./codensm.db unless --db says otherwise: a SQLite file, or a\n"
	"PostgreSQL connection string (postgresql://USER@HOST/DB, host=... dbname=...;\n"
	"the password from PGPASSWORD, ~/.pgpass or a service file), which several\n"
	"servers can share, each with a pool of --db-pool connections (default 8).\n"
	"An older schema is migrated on start-up, and data older than 32 days is\n"
	"deleted every hour.\n";

struct opts {
	const char *listen, *db, *web, *plan, *pool;
	const char *args[4];
	int nargs;
};

static int parse(int argc, char **argv, struct opts *o)
{
	o->listen = getenv("CODENSM_LISTEN") && *getenv("CODENSM_LISTEN") ? getenv("CODENSM_LISTEN")
									   : DEFAULT_LISTEN;
	o->db = getenv("CODENSM_DB") && *getenv("CODENSM_DB") ? getenv("CODENSM_DB") : "codensm.db";
	o->plan = "free";
	for (int i = 1; i < argc; i++) {
		const char **dst = NULL;
		if (!strcmp(argv[i], "--listen"))
			dst = &o->listen;
		else if (!strcmp(argv[i], "--db"))
			dst = &o->db;
		else if (!strcmp(argv[i], "--web"))
			dst = &o->web;
		else if (!strcmp(argv[i], "--db-pool"))
			dst = &o->pool;
		else if (!strcmp(argv[i], "--plan"))
			dst = &o->plan;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			exit(0);
		} else if (!strcmp(argv[i], "--version")) {
			puts("codensm-server " VERSION);
			exit(0);
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "codensm-server: unknown option '%s'\n%s", argv[i], usage);
			return -1;
		} else if (o->nargs < 4) {
			o->args[o->nargs++] = argv[i];
			continue;
		} else {
			fprintf(stderr, "codensm-server: too many arguments\n%s", usage);
			return -1;
		}
		if (++i >= argc) {
			fprintf(stderr, "codensm-server: option '%s' needs a value\n", argv[i - 1]);
			return -1;
		}
		*dst = argv[i];
	}
	if (o->pool) {
		char *end;
		long n = strtol(o->pool, &end, 10);
		if (*end || end == o->pool || n < 1 || n > 1000) {
			fprintf(stderr, "codensm-server: invalid --db-pool '%s': expected 1..1000 connections\n",
				o->pool);
			return -1;
		}
		srv_store_pool = (int)n;
	}
	return 0;
}

static int open_store(const char *db)
{
	char err[SRV_ERRLEN];
	if (srv_clock_check(err) < 0 || srv_store_init(db, err) < 0) {
		fprintf(stderr, "codensm-server: %s\n", err);
		return -1;
	}
	return 0;
}

/* The dashboard address uses the listen address; a wildcard host is
 * replaced by loopback, where a browser on this machine reaches it. */
static void dashboard_url(const char *listen, const char *name, const char *key)
{
	const char *colon = strrchr(listen, ':');
	int host_len = colon ? (int)(colon - listen) : 0;
	const char *port = colon ? colon + 1 : "8650";
	if (!host_len || !strncmp(listen, "0.0.0.0", (size_t)host_len) ||
	    !strncmp(listen, "[::]", (size_t)host_len))
		listen = "127.0.0.1", host_len = 9;
	printf("dashboard: http://%.*s:%s/#project=%s&key=%s\n", host_len, listen, port, name, key);
}

static int project_create(const struct opts *o)
{
	char err[SRV_ERRLEN], ikey[48], dkey[48];
	if (o->nargs != 3) {
		fprintf(stderr, "codensm-server: project create needs a NAME\n");
		return 2;
	}
	if (open_store(o->db) < 0)
		return 1;
	struct srv_store *s = srv_store_get(err);
	if (!s || srv_project_create(s, o->args[2], o->plan, ikey, dkey, err) < 0) {
		fprintf(stderr, "codensm-server: %s\n", err);
		srv_store_shutdown();
		return 1;
	}
	printf("project: %s\nplan: %s\ningest key: %s\ndashboard key: %s\n", o->args[2], o->plan,
	       ikey, dkey);
	dashboard_url(o->listen, o->args[2], dkey);
	srv_store_shutdown();
	return 0;
}

static int project_list(const struct opts *o)
{
	char err[SRV_ERRLEN], month[8];
	time_t t = (time_t)srv_now();
	struct tm tm;
	int rc;
	gmtime_r(&t, &tm);
	strftime(month, sizeof month, "%Y-%m", &tm);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	int64_t month_start = (int64_t)timegm(&tm);
	if (open_store(o->db) < 0)
		return 1;
	struct srv_store *s = srv_store_get(err);
	struct db_stmt *st = s ? srv_stmt(s, "SELECT p.name, p.plan, COALESCE(u.calls, 0),"
					" COALESCE(u.overage, 0) FROM projects p LEFT JOIN usage u"
					" ON u.project = p.id AND u.month_start = ?1 ORDER BY p.name", err) : NULL;
	if (!st) {
		fprintf(stderr, "codensm-server: %s\n", err);
		srv_store_shutdown();
		return 1;
	}
	db_bind_int64(st, 1, month_start);
	printf("%-24s %-6s %14s  %s\n", "project", "plan", "calls " , month);
	while ((rc = db_step(st)) == DB_ROW) {
		const char *plan = db_column_text(st, 1);
		printf("%-24s %-6s %14lld  %lld%% of quota%s\n", db_column_text(st, 0), plan,
		       (long long)db_column_int64(st, 2),
		       (long long)(db_column_int64(st, 2) * 100 / srv_plan_quota(plan)),
		       db_column_int(st, 3) ? ", overage" : "");
	}
	if (rc != DB_DONE)
		fprintf(stderr, "codensm-server: database: %s\n", db_errmsg(srv_store_db(s)));
	db_reset(st);
	srv_store_shutdown();
	return rc == DB_DONE ? 0 : 1;
}

static int serve(const struct opts *o)
{
	char err[SRV_ERRLEN], web[PATH_MAX];
	sigset_t set;
	int sig;

	if (open_store(o->db) < 0)
		return 1;
	/* what a stopped server missed goes before the first request */
	struct srv_store *s = srv_store_get(err);
	if (!s || srv_prune_now(s, err) < 0) {
		fprintf(stderr, "codensm-server: pruning old data: %s\n", err);
		srv_store_shutdown();
		return 1;
	}
	srv_store_release();
	const char *webdir = srv_web_dir(o->web, web, sizeof web);
	if (!webdir)
		fprintf(stderr, "codensm-server: warning: no dashboard folder%s%s%s: serving the API only\n",
			o->web ? " '" : "", o->web ? o->web : "", o->web ? "'" : "");
	/* Block the stop signals before MHD's threads start, so that they
	 * inherit the mask and only sigwait() below receives them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct srv_pruner *pr = srv_pruner_start(err);
	struct srv_http *h = pr ? srv_http_start(o->listen, webdir, err) : NULL;
	if (!h) {
		fprintf(stderr, "codensm-server: %s\n", err);
		srv_pruner_stop(pr);
		srv_store_shutdown();
		return 1;
	}
	const char *colon = strrchr(o->listen, ':');
	printf("listening on http://%.*s:%u\n", (int)(colon - o->listen), o->listen, srv_http_port(h));
	fflush(stdout);
	fprintf(stderr, "codensm-server: database '%s', dashboard files %s%s%s\n", o->db,
		webdir ? "'" : "", webdir ? webdir : "none", webdir ? "'" : "");
	sigwait(&set, &sig);
	fprintf(stderr, "codensm-server: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
	srv_http_stop(h);
	srv_pruner_stop(pr);
	srv_store_shutdown();
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	if (parse(argc, argv, &o) < 0)
		return 2;
	if (o.nargs == 0)
		return serve(&o);
	if (!strcmp(o.args[0], "project") && o.nargs >= 2) {
		if (!strcmp(o.args[1], "create"))
			return project_create(&o);
		if (!strcmp(o.args[1], "list") && o.nargs == 2)
			return project_list(&o);
	}
	fprintf(stderr, "codensm-server: unknown command '%s'\n%s", o.args[0], usage);
	return 2;
}
