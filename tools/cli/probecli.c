/* probecli.c: `codensm probe add|ls|show|rm|renew`: builds the request of
 * docs/api.md "Probes", sends it with libcurl, and prints the answer as
 * text (or as the server's JSON with --json).  Every refusal is one line
 * naming what was wrong: the option, the key (401/403), the probe or
 * project (404), the id in use (409), the server's reason (400). */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apicall.h"
#include "probecli.h"

#define DEFAULT_SERVER "http://127.0.0.1:8650"

struct opts {
	const char *server, *project, *key;
	const char *type, *value, *event, *lifespan, *where, *id, *name;
	const char *args[2];
	int nargs, json;
};

static const char *url_of(char *url, size_t n, const struct opts *o, const char *proj,
			  const char *path)
{
	snprintf(url, n, "%s/api/projects/%s/%s", o->server, proj, path);
	return url;
}

/* One request; the parsed 2xx body, or NULL with one line on err saying
 * what the status means for this command (what: "probe 'x'" or NULL). */
static json_t *request(const struct opts *o, const char *method, const char *path,
		       json_t *body, const char *what, FILE *err)
{
	char url[2048];
	struct cli_answer a = { 0 };
	json_t *j = NULL;
	char *proj = curl_easy_escape(NULL, o->project, 0);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!proj || cli_api_call(method, url_of(url, sizeof url, o, proj, path), o->key, text,
				  &a) < 0) {
		fprintf(err, "codensm: cannot start libcurl\n");
		goto out;
	}
	CURLcode rc = a.rc;
	long status = a.status;
	json_t *ans = a.json;
	const char *msg = json_string_value(json_object_get(ans, "error"));
	if (!msg)
		msg = strlen(a.text) < 300 ? a.text : "";
	if (rc != CURLE_OK)
		fprintf(err, "codensm: cannot reach '%s': %s\n", o->server, curl_easy_strerror(rc));
	else if (status == 401)
		fprintf(err, "codensm: the server does not know this key (401): give the project's"
			" manage key (--key, CODENSM_MANAGE_KEY%s)\n",
			strcmp(method, "GET") ? "" : ") or dashboard key (CODENSM_DASHBOARD_KEY");
	else if (status == 403)
		fprintf(err, "codensm: the key is the read-only dashboard key (403): creating,"
			" renewing and removing probes needs the manage key (cnsmm_..., --key or"
			" CODENSM_MANAGE_KEY)\n");
	else if (status == 404 && what && strstr(msg, "no probe"))
		fprintf(err, "codensm: no %s in project '%s' (404)\n", what, o->project);
	else if (status == 404)
		fprintf(err, "codensm: project '%s' not found on '%s' (404), or the key is another"
			" project's\n", o->project, o->server);
	else if (status == 409)
		fprintf(err, "codensm: %s is in use in project '%s' (409): remove it first or choose"
			" another --id\n", what ? what : "the id", o->project);
	else if (status == 400)
		fprintf(err, "codensm: the server refused the request (400): %s\n", msg);
	else if (status < 200 || status > 299)
		fprintf(err, "codensm: '%s' answered %ld: %.200s\n", url, status, msg);
	else if (!ans)
		fprintf(err, "codensm: '%s' sent an answer that is not JSON\n", url);
	else
		j = json_incref(ans);
out:
	cli_answer_free(&a);
	free(text);
	curl_free(proj);
	return j;
}

/* ---- add --------------------------------------------------------------------- */

static int number(const char *s, double *out)
{
	char *end;
	*out = strtod(s, &end);
	return *s && !*end && isfinite(*out);
}

/* KEY=VAL[,KEY=VAL...] into custom: 0, or -1 with one line on err. */
static int parse_where(const char *where, json_t *custom, FILE *err)
{
	char *copy = strdup(where), *save = NULL, *item;
	int rc = 0;
	for (item = strtok_r(copy, ",", &save); item && rc == 0; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		double d;
		if (!eq) {
			fprintf(err, "codensm: --where: '%s' is not KEY=VALUE\n", item);
			rc = -1;
			break;
		}
		*eq = '\0';
		const char *k = item, *v = eq + 1;
		if (!strcmp(k, "min_duration_ms")) {
			if (!number(v, &d) || d < 0) {
				fprintf(err, "codensm: --where: min_duration_ms '%s' is not a number >= 0\n", v);
				rc = -1;
			} else {
				json_object_set_new(custom, k, json_real(d));
			}
		} else if (!strcmp(k, "caller")) {
			if (!*v) {
				fprintf(err, "codensm: --where: caller needs a name prefix\n");
				rc = -1;
			} else {
				json_object_set_new(custom, k, json_string(v));
			}
		} else if (!strcmp(k, "errors_only")) {
			if (strcmp(v, "true") && strcmp(v, "false") && strcmp(v, "1") && strcmp(v, "0")) {
				fprintf(err, "codensm: --where: errors_only '%s' is not true or false\n", v);
				rc = -1;
			} else {
				json_object_set_new(custom, k, json_boolean(!strcmp(v, "true") || !strcmp(v, "1")));
			}
		} else if (!strcmp(k, "sample") || !strcmp(k, "max_hits")) {
			if (!number(v, &d) || d < 1 || d != floor(d) || d > 1e15) {
				fprintf(err, "codensm: --where: %s '%s' is not an integer >= 1\n", k, v);
				rc = -1;
			} else {
				json_object_set_new(custom, k, json_integer((json_int_t)d));
			}
		} else {
			fprintf(err, "codensm: --where: unknown condition '%s' (min_duration_ms, caller,"
				" errors_only, sample, max_hits)\n", k);
			rc = -1;
		}
	}
	free(copy);
	return rc;
}

static void when(double t, char *out, size_t len)
{
	time_t s = (time_t)t;
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static double num(json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

static int print_json(json_t *j, FILE *out)
{
	json_dumpf(j, out, JSON_INDENT(2));
	fputc('\n', out);
	json_decref(j);
	return 0;
}

static int cmd_add(const struct opts *o, FILE *out, FILE *err)
{
	double lifespan = 0;
	if (o->nargs != 1) {
		fprintf(err, "codensm: probe add needs one TARGET (a function name or prefix)\n");
		return 2;
	}
	if (!o->type) {
		fprintf(err, "codensm: probe add needs --type (log, hist, incr, stack or a registered type)\n");
		return 2;
	}
	if (o->lifespan && (!number(o->lifespan, &lifespan) || lifespan <= 0 || lifespan > 10080)) {
		fprintf(err, "codensm: --lifespan '%s' is not a number of minutes in (0, 10080]\n",
			o->lifespan);
		return 2;
	}
	json_t *ins = json_pack("{ss}", "type", o->type), *custom = json_object();
	if (o->value)
		json_object_set_new(ins, "value", json_string(o->value));
	if (o->event)
		json_object_set_new(ins, "event", json_string(o->event));
	if (o->name)
		json_object_set_new(ins, "name", json_string(o->name));
	if (o->where && parse_where(o->where, custom, err) < 0) {
		json_decref(ins);
		json_decref(custom);
		return 2;
	}
	if (json_object_size(custom))
		json_object_set(ins, "custom", custom);
	json_decref(custom);
	json_t *body = json_pack("{sssO}", "target", o->args[0], "instrument", ins);
	json_decref(ins);
	if (o->lifespan)
		json_object_set_new(body, "lifespan", json_real(lifespan));
	if (o->id)
		json_object_set_new(body, "id", json_string(o->id));
	char what[128];
	snprintf(what, sizeof what, "probe id '%.64s'", o->id ? o->id : "");
	json_t *p = request(o, "POST", "probes", body, what, err);
	json_decref(body);
	if (!p)
		return 1;
	if (o->json)
		return print_json(p, out);
	char until[32];
	when(num(p, "expires_at"), until, sizeof until);
	fprintf(out, "probe %s added: %s on %s for %g min (until %s)\n", str(p, "id"),
		str(json_object_get(p, "instrument"), "type"), str(p, "target"), num(p, "lifespan"), until);
	json_decref(p);
	return 0;
}

/* ---- ls, show -------------------------------------------------------------------- */

static void print_row(json_t *p, FILE *out)
{
	fprintf(out, "%-20s %-8s %-6s %8lld %5zu %8.0f  %s%s\n", str(p, "id"), str(p, "state"),
		str(json_object_get(p, "instrument"), "type"), (long long)num(p, "hits"),
		json_array_size(json_object_get(p, "processes")), num(p, "time_left_s"),
		str(p, "target"), json_is_true(json_object_get(p, "auto")) ? "  (auto)" : "");
}

static int cmd_ls(const struct opts *o, FILE *out, FILE *err)
{
	if (o->nargs) {
		fprintf(err, "codensm: probe ls takes no argument\n");
		return 2;
	}
	json_t *j = request(o, "GET", "probes", NULL, NULL, err), *p;
	size_t i;
	if (!j)
		return 1;
	if (o->json)
		return print_json(j, out);
	fprintf(out, "%-20s %-8s %-6s %8s %5s %8s  %s\n", "ID", "STATE", "TYPE", "HITS", "PROCS",
		"LEFT_S", "TARGET");
	json_array_foreach(json_object_get(j, "probes"), i, p)
		print_row(p, out);
	json_decref(j);
	return 0;
}

static void print_results(json_t *r, FILE *out)
{
	const char *type = str(r, "type");
	json_t *v;
	size_t i;
	if (!strcmp(type, "hist")) {
		fprintf(out, "results: %lld calls, p50 %.3f ms, p95 %.3f ms, p99 %.3f ms\n",
			(long long)num(r, "count"), num(r, "p50_ms"), num(r, "p95_ms"), num(r, "p99_ms"));
	} else if (!strcmp(type, "incr")) {
		fprintf(out, "results: count %lld\n", (long long)num(r, "count"));
		json_array_foreach(json_object_get(r, "by"), i, v)
			fprintf(out, "  %-48s %10lld\n", str(v, "key"), (long long)num(v, "count"));
	} else if (!strcmp(type, "stack")) {
		fprintf(out, "results: %zu chains\n", json_array_size(json_object_get(r, "stacks")));
		json_array_foreach(json_object_get(r, "stacks"), i, v) {
			json_t *f;
			size_t k;
			fprintf(out, "  %10lld ", (long long)num(v, "count"));
			json_array_foreach(json_object_get(v, "chain"), k, f)
				fprintf(out, "%s%s", k ? " > " : "", json_is_string(f) ? json_string_value(f) : "?");
			fputc('\n', out);
		}
	} else if (!strcmp(type, "log")) {
		fprintf(out, "results: %zu records (newest first), %lld dropped\n",
			json_array_size(json_object_get(r, "log")), (long long)num(r, "log_dropped"));
		json_array_foreach(json_object_get(r, "log"), i, v) {
			char t[32];
			when(num(v, "t"), t, sizeof t);
			fprintf(out, "  %s %s/%lld thread %lld %-6s %9.3f ms%s caller %s\n", t, str(v, "host"),
				(long long)num(v, "pid"), (long long)num(v, "thread"), str(v, "event"),
				num(v, "duration_ms"), json_is_true(json_object_get(v, "error")) ? " error" : "",
				str(v, "caller"));
		}
	} else {
		fprintf(out, "results: %lld hits\n", (long long)num(r, "count"));
	}
}

static int cmd_show(const struct opts *o, FILE *out, FILE *err)
{
	char path[256], what[128];
	if (o->nargs != 1) {
		fprintf(err, "codensm: probe show needs one probe ID\n");
		return 2;
	}
	char *id = curl_easy_escape(NULL, o->args[0], 0);
	snprintf(path, sizeof path, "probes/%s", id ? id : "");
	curl_free(id);
	snprintf(what, sizeof what, "probe '%.64s'", o->args[0]);
	json_t *p = request(o, "GET", path, NULL, what, err), *pr;
	size_t i;
	if (!p)
		return 1;
	if (o->json)
		return print_json(p, out);
	json_t *ins = json_object_get(p, "instrument");
	char *custom = json_dumps(json_object_get(ins, "custom"), JSON_COMPACT | JSON_SORT_KEYS);
	fprintf(out, "probe %s%s: %s %s of %s at %s, %s\n", str(p, "id"),
		json_is_true(json_object_get(p, "auto")) ? " (auto)" : "", str(ins, "type"),
		str(ins, "value"), str(p, "target"), str(ins, "event"), custom ? custom : "{}");
	free(custom);
	fprintf(out, "state: %s, %.0f s left of %g min (from %s), %lld hits\n", str(p, "state"),
		num(p, "time_left_s"), num(p, "lifespan"), str(p, "lastmodified"),
		(long long)num(p, "hits"));
	json_array_foreach(json_object_get(p, "processes"), i, pr)
		fprintf(out, "  %s %s pid %lld: %s, %lld hits%s%s\n", str(pr, "service"), str(pr, "host"),
			(long long)num(pr, "pid"), str(pr, "status"), (long long)num(pr, "hits"),
			json_is_string(json_object_get(pr, "message")) ? ": " : "",
			json_is_string(json_object_get(pr, "message")) ? str(pr, "message") : "");
	if (!json_array_size(json_object_get(p, "processes")))
		fprintf(out, "  no process has reported it yet\n");
	print_results(json_object_get(p, "results"), out);
	json_decref(p);
	return 0;
}

/* ---- rm, renew ------------------------------------------------------------------- */

static int cmd_rm_renew(const struct opts *o, int renew, FILE *out, FILE *err)
{
	char path[256], what[128];
	double lifespan = 0;
	if (o->nargs != 1) {
		fprintf(err, "codensm: probe %s needs one probe ID\n", renew ? "renew" : "rm");
		return 2;
	}
	if (o->lifespan && (!renew || !number(o->lifespan, &lifespan) || lifespan <= 0 ||
			    lifespan > 10080)) {
		fprintf(err, renew ? "codensm: --lifespan '%s' is not a number of minutes in (0, 10080]\n"
				   : "codensm: probe rm takes no --lifespan ('%s')\n", o->lifespan);
		return 2;
	}
	char *id = curl_easy_escape(NULL, o->args[0], 0);
	snprintf(path, sizeof path, "probes/%s%s", id ? id : "", renew ? "/renew" : "");
	curl_free(id);
	snprintf(what, sizeof what, "probe '%.64s'", o->args[0]);
	json_t *body = renew && o->lifespan ? json_pack("{sf}", "lifespan", lifespan) : NULL;
	json_t *j = request(o, renew ? "POST" : "DELETE", path, body, what, err);
	json_decref(body);
	if (!j)
		return 1;
	if (o->json)
		return print_json(j, out);
	if (renew) {
		char until[32];
		when(num(j, "expires_at"), until, sizeof until);
		fprintf(out, "probe %s renewed: fresh results until %s\n", str(j, "id"), until);
	} else {
		fprintf(out, "probe %s removed\n", o->args[0]);
	}
	json_decref(j);
	return 0;
}

/* ---- arguments ------------------------------------------------------------------- */

int cli_probe(int argc, char **argv, FILE *out, FILE *err)
{
	struct opts o = { .server = getenv("CODENSM_SERVER"), .project = getenv("CODENSM_PROJECT") };
	static const struct { const char *name; size_t off; } vals[] = {
		{ "--server", offsetof(struct opts, server) }, { "--project", offsetof(struct opts, project) },
		{ "--key", offsetof(struct opts, key) }, { "--type", offsetof(struct opts, type) },
		{ "--value", offsetof(struct opts, value) }, { "--event", offsetof(struct opts, event) },
		{ "--lifespan", offsetof(struct opts, lifespan) }, { "--where", offsetof(struct opts, where) },
		{ "--id", offsetof(struct opts, id) }, { "--name", offsetof(struct opts, name) },
	};
	if (argc < 1) {
		fprintf(err, "codensm: probe needs a command: add, ls, show, rm or renew\n");
		return 2;
	}
	const char *cmd = argv[0];
	for (int i = 1; i < argc; i++) {
		size_t k;
		if (!strcmp(argv[i], "--json")) {
			o.json = 1;
			continue;
		}
		for (k = 0; k < sizeof vals / sizeof *vals && strcmp(argv[i], vals[k].name); k++)
			;
		if (k < sizeof vals / sizeof *vals) {
			if (i + 1 >= argc) {
				fprintf(err, "codensm: option '%s' needs a value\n", argv[i]);
				return 2;
			}
			*(const char **)((char *)&o + vals[k].off) = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(err, "codensm: unknown option '%s' for probe %s\n", argv[i], cmd);
			return 2;
		} else if (o.nargs < 2) {
			o.args[o.nargs++] = argv[i];
		} else {
			fprintf(err, "codensm: too many arguments for probe %s\n", cmd);
			return 2;
		}
	}
	int write = strcmp(cmd, "ls") && strcmp(cmd, "show");
	if (!o.key) {
		o.key = getenv("CODENSM_MANAGE_KEY");
		if ((!o.key || !*o.key) && !write)
			o.key = getenv("CODENSM_DASHBOARD_KEY");
	}
	if (!o.server || !*o.server)
		o.server = DEFAULT_SERVER;
	if (strcmp(cmd, "add") && strcmp(cmd, "ls") && strcmp(cmd, "show") && strcmp(cmd, "rm") &&
	    strcmp(cmd, "renew")) {
		fprintf(err, "codensm: unknown probe command '%s' (add, ls, show, rm, renew)\n", cmd);
		return 2;
	}
	/* the options of a new probe belong to add alone */
	static const char *const add_only[] = { "--type", "--value", "--event", "--where", "--id",
						"--name" };
	const char *given[] = { o.type, o.value, o.event, o.where, o.id, o.name };
	for (size_t k = 0; strcmp(cmd, "add") && k < 6; k++)
		if (given[k]) {
			fprintf(err, "codensm: probe %s takes no %s (it is an option of probe add)\n", cmd,
				add_only[k]);
			return 2;
		}
	if (!o.project || !*o.project) {
		fprintf(err, "codensm: probe %s needs a project (--project or CODENSM_PROJECT)\n", cmd);
		return 2;
	}
	if (!o.key || !*o.key) {
		fprintf(err, write ? "codensm: probe %s needs the project's manage key (--key or"
				     " CODENSM_MANAGE_KEY)\n"
				   : "codensm: probe %s needs a key (--key, CODENSM_MANAGE_KEY or"
				     " CODENSM_DASHBOARD_KEY)\n", cmd);
		return 2;
	}
	if (!strcmp(cmd, "add"))
		return cmd_add(&o, out, err);
	if (!strcmp(cmd, "ls"))
		return cmd_ls(&o, out, err);
	if (!strcmp(cmd, "show"))
		return cmd_show(&o, out, err);
	return cmd_rm_renew(&o, !strcmp(cmd, "renew"), out, err);
}
