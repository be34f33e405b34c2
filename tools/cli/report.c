/* report.c: GET /api/projects/{project}/summary and .../functions with a
 * dashboard key, then a plain table: what a terminal user wants before
 * opening the dashboard. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "apicall.h"
#include "report.h"

/* GET `url` with the key; the parsed JSON body, or NULL with a line on err. */
static json_t *get_json(const char *url, const char *key, FILE *err)
{
	struct cli_answer a;
	json_t *j = NULL;
	if (cli_api_call("GET", url, key, NULL, &a) < 0) {
		fprintf(err, "codensm: cannot start libcurl\n");
		return NULL;
	}
	if (a.rc != CURLE_OK)
		fprintf(err, "codensm: cannot fetch '%s': %s\n", url, curl_easy_strerror(a.rc));
	else if (a.status != 200)
		fprintf(err, "codensm: '%s' answered %ld: %.200s\n", url, a.status, a.text);
	else if (!a.json)
		fprintf(err, "codensm: '%s' sent bad JSON\n", url);
	else
		j = json_incref(a.json);
	cli_answer_free(&a);
	return j;
}

static double num(json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

int cli_report(const struct cli_report_opts *o, FILE *out, FILE *err)
{
	char url[2048];
	int top = o->top < 1 ? 1 : o->top > 500 ? 500 : o->top;
	char *proj = curl_easy_escape(NULL, o->project, 0);
	if (!proj)
		return -1;
	snprintf(url, sizeof(url), "%s/api/projects/%s/summary?window=%s", o->server, proj, o->window);
	json_t *sum = get_json(url, o->key, err);
	snprintf(url, sizeof(url), "%s/api/projects/%s/functions?window=%s&sort=nsm&order=desc&limit=%d",
		 o->server, proj, o->window, top);
	curl_free(proj);
	json_t *fns = sum ? get_json(url, o->key, err) : NULL;
	if (!fns) {
		json_decref(sum);
		return -1;
	}
	fprintf(out, "project %s, last %s: NSM %.0f, %.0f calls, %.0f errors, %.0f functions\n",
		o->project, o->window, num(sum, "nsm"), num(sum, "calls"), num(sum, "errors"),
		num(sum, "functions"));
	fprintf(out, "%-48s %-14s %10s %8s %9s %9s %7s\n", "FUNCTION", "DEPARTMENT", "CALLS",
		"ERRORS", "P95_MS", "NSM", "SHARE");
	size_t i;
	json_t *row;
	int any_estimated = 0;
	json_array_foreach(json_object_get(fns, "rows"), i, row) {
		/* Times partly estimated (sampled timing) are marked '~'. */
		int est = num(row, "estimated_calls") > 0;
		char p95[32];
		snprintf(p95, sizeof p95, "%s%.3f", est ? "~" : "", num(row, "p95_ms"));
		any_estimated |= est;
		fprintf(out, "%-48s %-14s %10.0f %8.0f %9s %9.0f %6.1f%%\n", str(row, "name"),
			str(row, "department"), num(row, "calls"), num(row, "errors"), p95,
			num(row, "nsm"), 100 * num(row, "share"));
	}
	if (any_estimated)
		fprintf(out, "~ estimated: some calls were not clocked (sampled timing, CODENSM_SAMPLE)\n");
	json_decref(sum);
	json_decref(fns);
	return 0;
}
