/* prometheus.c: a project's numbers in the Prometheus text exposition
 * format (version 0.0.4), for GET /api/projects/{project}/metrics.
 *
 * The series are counters over the project's whole life (the functions
 * table's *_total columns, which pruning leaves alone), so that rate() and
 * increase() work across scrapes and across the server's retention.  The
 * series are capped (docs/api.md, "Prometheus"): the top SRV_PROM_FUNCTIONS
 * functions and SRV_PROM_DEPARTMENTS departments by calls, ties by name,
 * and one gauge each counting what was left out.  A department's counters
 * sum all its functions, shown or not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

struct family {
	const char *name, *type, *help;
};

static const struct family fn_families[] = {
	{ "codensm_function_calls_total", "counter", "Calls of the function." },
	{ "codensm_function_errors_total", "counter", "Calls of the function that failed." },
	{ "codensm_function_seconds_total", "counter",
	  "Time spent in the function's calls, callees included." },
	{ "codensm_function_nsm_total", "counter",
	  "The function's North-Star Metric: value_weight times successful calls." },
};

static const struct family dept_families[] = {
	{ "codensm_department_calls_total", "counter", "Calls of the department's functions." },
	{ "codensm_department_errors_total", "counter", "Calls of the department's functions that failed." },
	{ "codensm_department_seconds_total", "counter",
	  "Time spent in the department's functions, callees included." },
	{ "codensm_department_nsm_total", "counter", "The department's North-Star Metric." },
};

/* One row of either list: its label value(s) and the four counters. */
struct row {
	char *name, *department;
	int64_t calls, errors;
	double seconds, nsm;
};

/* The shortest of %.15g..%.17g that reads back as the same double. */
static void put_number(FILE *f, double d)
{
	char buf[32];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	fputs(buf, f);
}

/* A label value: backslash, double quote and newline escaped, the rest
 * (valid UTF-8, ingest checked it) as is. */
static void put_label(FILE *f, const char *key, const char *value)
{
	fprintf(f, "%s=\"", key);
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			fputc('\\', f), fputc(*p, f);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void put_value(FILE *f, const struct row *r, size_t k)
{
	fputc(' ', f);
	if (k == 0)
		fprintf(f, "%lld", (long long)r->calls);
	else if (k == 1)
		fprintf(f, "%lld", (long long)r->errors);
	else
		put_number(f, k == 2 ? r->seconds : r->nsm);
	fputc('\n', f);
}

/* Reads at most `cap` rows of a query whose columns are name, department
 * (NULL for departments), calls, errors, total_ms, nsm, and COUNT(*) OVER ()
 * (the rows there would be without the cap). */
static int read_rows(struct srv_store *st, const char *sql, int64_t project, int cap,
		     struct row **out, size_t *n, int64_t *all, char *err)
{
	struct db_stmt *s = srv_stmt(st, sql, err);
	int rc;
	*out = NULL;
	*n = 0;
	*all = 0;
	if (!s)
		return -1;
	db_bind_int64(s, 1, project);
	db_bind_int(s, 2, cap);
	if (!(*out = calloc((size_t)cap, sizeof **out))) {
		snprintf(err, SRV_ERRLEN, "out of memory");
		return -1;
	}
	while ((rc = db_step(s)) == DB_ROW && *n < (size_t)cap) {
		struct row *r = &(*out)[(*n)++];
		const char *d = db_column_text(s, 1);
		r->name = strdup(db_column_text(s, 0));
		r->department = d ? strdup(d) : NULL;
		r->calls = db_column_int64(s, 2);
		r->errors = db_column_int64(s, 3);
		r->seconds = db_column_double(s, 4) / 1000.0;
		r->nsm = db_column_double(s, 5);
		*all = db_column_int64(s, 6);
		if (!r->name || (d && !r->department)) {
			snprintf(err, SRV_ERRLEN, "out of memory");
			db_reset(s);
			return -1;
		}
	}
	db_reset(s);
	if (rc != DB_ROW && rc != DB_DONE) {
		snprintf(err, SRV_ERRLEN, "database: %s", db_errmsg(srv_store_db(st)));
		return -1;
	}
	return 0;
}

static void free_rows(struct row *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].name);
		free(r[i].department);
	}
	free(r);
}

static void put_families(FILE *f, const struct family *fam, size_t nfam, const struct row *rows,
			 size_t n, int with_function)
{
	for (size_t k = 0; k < nfam; k++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", fam[k].name, fam[k].help, fam[k].name,
			fam[k].type);
		for (size_t i = 0; i < n; i++) {
			fprintf(f, "%s{", fam[k].name);
			if (with_function) {
				put_label(f, "function", rows[i].name);
				fputc(',', f);
				put_label(f, "department", rows[i].department);
			} else {
				put_label(f, "department", rows[i].name);
			}
			fputc('}', f);
			put_value(f, &rows[i], k);
		}
	}
}

int srv_prometheus(struct srv_store *st, int64_t project, struct srv_reply *r, char *err)
{
	struct row *fns = NULL, *depts = NULL;
	size_t nf = 0, nd = 0;
	int64_t all_f, all_d;
	char *buf = NULL;
	size_t len = 0;
	int ret = -1;

	if (read_rows(st, "SELECT name, department, calls_total, errors_total, total_ms_total,"
		      " value_total, COUNT(*) OVER () FROM functions WHERE project = ?1"
		      " ORDER BY calls_total DESC, name LIMIT ?2",
		      project, SRV_PROM_FUNCTIONS, &fns, &nf, &all_f, err) < 0 ||
	    read_rows(st, "SELECT department, NULL, SUM(calls_total) c, SUM(errors_total),"
		      " SUM(total_ms_total), SUM(value_total), COUNT(*) OVER () FROM functions"
		      " WHERE project = ?1 GROUP BY department ORDER BY c DESC, department LIMIT ?2",
		      project, SRV_PROM_DEPARTMENTS, &depts, &nd, &all_d, err) < 0)
		goto out;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		snprintf(err, SRV_ERRLEN, "out of memory");
		goto out;
	}
	put_families(f, fn_families, sizeof fn_families / sizeof *fn_families, fns, nf, 1);
	put_families(f, dept_families, sizeof dept_families / sizeof *dept_families, depts, nd, 0);
	double nsm = 0;
	struct db_stmt *s = srv_stmt(st, "SELECT COALESCE(SUM(value_total), 0.0) FROM functions"
				   " WHERE project = ?1", err);
	if (!s) {
		fclose(f);
		goto out;
	}
	db_bind_int64(s, 1, project);
	if (db_step(s) == DB_ROW)
		nsm = db_column_double(s, 0);
	db_reset(s);
	fputs("# HELP codensm_nsm_total The project's North-Star Metric: value_weight times"
	      " successful calls, summed over its functions.\n# TYPE codensm_nsm_total counter\n"
	      "codensm_nsm_total ", f);
	put_number(f, nsm);
	fprintf(f, "\n# HELP codensm_functions_omitted Functions left out of the codensm_function_"
		" series (past the top %d by calls).\n# TYPE codensm_functions_omitted gauge\n"
		"codensm_functions_omitted %lld\n", SRV_PROM_FUNCTIONS,
		(long long)(all_f > (int64_t)nf ? all_f - (int64_t)nf : 0));
	fprintf(f, "# HELP codensm_departments_omitted Departments left out of the"
		" codensm_department_ series (past the top %d by calls).\n"
		"# TYPE codensm_departments_omitted gauge\ncodensm_departments_omitted %lld\n",
		SRV_PROM_DEPARTMENTS, (long long)(all_d > (int64_t)nd ? all_d - (int64_t)nd : 0));
	if (fclose(f) != 0 || !buf) {
		snprintf(err, SRV_ERRLEN, "out of memory");
		goto out;
	}
	r->text = buf;
	r->type = "text/plain; version=0.0.4; charset=utf-8";
	buf = NULL;
	ret = 0;
out:
	free(buf);
	free_rows(fns, nf);
	free_rows(depts, nd);
	return ret;
}
