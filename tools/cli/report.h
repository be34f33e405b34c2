/* report.h: `codensm report`: the top functions of a project, fetched from
 * a codensm-server's JSON API (docs/api.md) and printed as a table. */
#ifndef CLI_REPORT_H
#define CLI_REPORT_H

#include <stdio.h>

struct cli_report_opts {
	const char *server;  /* "http://127.0.0.1:8650" */
	const char *project;
	const char *key;     /* dashboard key, cnsmv_... */
	const char *window;  /* 1h, 24h, 7d, 30d */
	int top;             /* rows, 1..500 */
};

/* 0, or -1 with one line on `err` (connection, HTTP status, bad JSON). */
int cli_report(const struct cli_report_opts *o, FILE *out, FILE *err);

#endif
