/* api.c: GET /api/projects/{project}/{view}: the dashboard key, the common
 * parameters, and the dispatch to the views in api_views.c. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server.h"

/* Error messages quote what the client sent (a name, jansson's view of
 * broken JSON) and vsnprintf may cut them mid-character: every byte that
 * is not part of valid UTF-8 becomes '?', or json_pack would refuse the
 * string and the client would get an error without a body. */
json_t *srv_error_json(const char *fmt, ...)
{
	char msg[SRV_ERRLEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	unsigned char *p = (unsigned char *)msg;
	for (size_t i = 0, len = strlen(msg), n; i < len; i += n)
		if (!(n = srv_utf8_len(p + i, len - i)))
			p[i] = '?', n = 1;
	return json_pack("{ss}", "error", msg);
}

static const struct {
	const char *name;
	int64_t seconds, step;    /* step: the trend's resolution */
} windows[] = {
	{ "1h", 3600, 60 },
	{ "24h", 86400, 900 },
	{ "7d", 7 * 86400, 3600 },
	{ "30d", 30 * 86400, 21600 },
};

static const struct {
	const char *name;
	json_t *(*view)(struct srv_view *, unsigned *);
} views[] = {
	{ "summary", srv_view_summary },
	{ "departments", srv_view_departments },
	{ "functions", srv_view_functions },
	{ "office", srv_view_office },
	{ "debt", srv_view_debt },
	{ "underuse", srv_view_underuse },
	{ "incidents", srv_view_incidents },
	{ "graph", srv_view_graph },
	{ "prompt", srv_view_prompt },
	{ "flow", srv_view_flow },
	{ "code", srv_view_code },
};

static void reply(struct srv_reply *r, unsigned status, json_t *body)
{
	r->status = status;
	r->body = body;
}

/* GET .../flow.svg?fn=NAME: the function's flow drawn (flowsvg.c). */
static void flow_svg(struct srv_view *v, struct srv_reply *r)
{
	const char *name;
	json_t *row = NULL;
	unsigned status = 200;
	size_t len;
	int found = srv_flow_find(v, &status, &name, &row);
	if (found < 0) {
		fprintf(stderr, "codensm-server: flow.svg for project '%s': %s\n", v->project_name, v->err);
		return reply(r, 503, srv_error_json("database unavailable"));
	}
	if (!found)
		return reply(r, status, srv_error_json("%s", v->err));
	int rc = srv_flow_svg(json_object_get(row, "flow"), &r->text, &len, v->err);
	json_decref(row);
	if (rc < 0)
		return reply(r, 422, srv_error_json("%s", v->err));
	r->status = 200;
	r->type = "image/svg+xml";
}

/* The order of the checks is the contract: no key or a wrong one is 401
 * whatever the path; a good key for another project (or for none that
 * exists) is 404, so a key never tells which other projects exist. */
void srv_api(const char *auth_header, const char *path, srv_query_fn query, void *qctx,
	     double now, struct srv_reply *r)
{
	char err[SRV_ERRLEN] = "", project[SRV_PROJECT_NAME_MAX + 2], view[24];
	struct srv_project p;
	struct srv_store *st;
	int found = srv_store_auth('d', srv_bearer(auth_header), &p, &st, err);
	if (found < 0) {
		srv_store_log(st, err);
		return reply(r, 503, srv_error_json("database unavailable"));
	}
	if (!found)
		return reply(r, 401, srv_error_json("missing or unknown dashboard key"));

	const char *rest = strncmp(path, "projects/", 9) ? NULL : path + 9;
	const char *slash = rest ? strchr(rest, '/') : NULL;
	if (!slash || (size_t)(slash - rest) > SRV_PROJECT_NAME_MAX || strlen(slash + 1) >= sizeof view)
		return reply(r, 404, srv_error_json("no such endpoint"));
	memcpy(project, rest, (size_t)(slash - rest));
	project[slash - rest] = '\0';
	strcpy(view, slash + 1);
	if (strcmp(project, p.name) != 0)
		return reply(r, 404, srv_error_json("project '%s' not found", project));
	if (!strcmp(view, "metrics")) {
		/* lifetime counters: no window */
		r->status = 200;
		if (srv_prometheus(st, p.id, r, err) < 0) {
			char line[SRV_ERRLEN + 100];
			snprintf(line, sizeof line, "metrics for project '%s': %s", p.name, err);
			srv_store_log(st, line);
			return reply(r, 503, srv_error_json("database unavailable"));
		}
		return;
	}

	struct srv_view v = { .st = st, .project = p.id, .project_name = p.name, .now = now,
			      .query = query, .qctx = qctx };
	if (!strcmp(view, "flow.svg"))
		return flow_svg(&v, r);
	const char *w = query(qctx, "window");
	size_t i;
	for (i = 0; i < sizeof windows / sizeof *windows; i++)
		if (!strcmp(w ? w : "24h", windows[i].name))
			break;
	if (i == sizeof windows / sizeof *windows)
		return reply(r, 400, srv_error_json("window: expected 1h, 24h, 7d or 30d"));
	v.window = windows[i].name;
	v.since = (int64_t)now - windows[i].seconds;
	v.step = windows[i].step;

	for (i = 0; i < sizeof views / sizeof *views; i++) {
		if (strcmp(view, views[i].name))
			continue;
		unsigned status = 200;
		json_t *body = views[i].view(&v, &status);
		if (!body && status == 200) {
			char line[SRV_ERRLEN + 100];
			snprintf(line, sizeof line, "%s for project '%s': %s", view, p.name, v.err);
			srv_store_log(st, line);
			return reply(r, 503, srv_error_json("database unavailable"));
		}
		return reply(r, status, body ? body : srv_error_json("%s", v.err));
	}
	reply(r, 404, srv_error_json("no such endpoint"));
}
