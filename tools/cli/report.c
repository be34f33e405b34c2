/* report.c: GET /api/projects/{project}/summary and .../functions with a
 * dashboard key, then a plain table: what a terminal user wants before
 * opening the dashboard. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

struct buf {
	char *p;
	size_t n;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;
	char *p = realloc(b->p, b->n + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->n, data, n);
	b->p = p;
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

/* GET `url` with the key; the parsed JSON body, or NULL with a line on err. */
static json_t *get_json(const char *url, const char *key, FILE *err)
{
	CURL *c = curl_easy_init();
	struct buf b = { 0 };
	char auth[512];
	struct curl_slist *h = NULL;
	json_t *j = NULL;
	long status = 0;
	if (!c) {
		fprintf(err, "codensm: cannot start libcurl\n");
		return NULL;
	}
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	h = curl_slist_append(h, auth);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK) {
		fprintf(err, "codensm: cannot fetch '%s': %s\n", url, curl_easy_strerror(rc));
	} else if (status != 200) {
		fprintf(err, "codensm: '%s' answered %ld: %.200s\n", url, status, b.p ? b.p : "");
	} else {
		json_error_t je;
		j = json_loadb(b.p ? b.p : "", b.n, 0, &je);
		if (!j)
			fprintf(err, "codensm: '%s' sent bad JSON: %s\n", url, je.text);
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(b.p);
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
