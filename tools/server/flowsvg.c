/* flowsvg.c: a flow drawn as a BPMN-style diagram in SVG, laid out by
 * Graphviz's dot (libgvc + libcgraph): start and end events are circles
 * (the end's ring thick), an error end a thick red circle, decisions are
 * gateway diamonds, blocks task rectangles, loops rounded tasks with the
 * loop marker.  No coordinate is placed by hand.
 *
 * Graphviz keeps global state and is not thread-safe: one context, made on
 * first use, and one drawing at a time under a mutex.  dot is O(n^2) or
 * worse on large graphs; the largest flow seen in practice (Lua's
 * luaV_execute, 572 nodes) lays out in about 0.1 s (test_lua_full.py prints
 * it), and a flow of more than SRV_FLOW_SVG_MAX_NODES nodes is refused. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <graphviz/gvc.h>

#include "server.h"

static pthread_mutex_t gv_lock = PTHREAD_MUTEX_INITIALIZER;
static GVC_t *gvc;

/* How each kind is drawn: Graphviz attributes, generic labels only. */
static const struct style {
	const char *kind, *shape, *label, *style, *color, *fill, *pen, *width;
} styles[] = {
	{ "start", "circle", "", "filled", "#2e7d32", "#e8f5e9", "1.5", "0.3" },
	{ "end", "circle", "", "filled", "#212121", "#eeeeee", "4", "0.3" },
	{ "error", "circle", "!", "filled", "#c62828", "#ffebee", "4", "0.3" },
	{ "decision", "diamond", "", "filled", "#f57f17", "#fff8e1", "1.5", "0.45" },
	{ "loop", "box", "\xe2\x86\xbb", "rounded,filled", "#1565c0", "#e3f2fd", "1.5", "0.6" },
	{ "block", "box", "", "rounded,filled", "#455a64", "#fafafa", "1.2", "0.6" },
};

static const struct style *style_of(const char *kind)
{
	for (size_t i = 0; i < sizeof styles / sizeof *styles; i++)
		if (kind && !strcmp(styles[i].kind, kind))
			return &styles[i];
	return NULL;
}

static void set(void *obj, const char *k, const char *v)
{
	agsafeset(obj, (char *)k, (char *)v, "");
}

/* The graph of a checked flow (flows.c stored only those). */
static Agraph_t *graph_of(json_t *flow, char *err)
{
	json_t *nodes = json_object_get(flow, "nodes"), *x;
	size_t i, n = json_array_size(nodes);
	Agraph_t *g = agopen("flow", Agdirected, NULL);
	Agnode_t **node = calloc(n ? n : 1, sizeof *node);
	if (!g || !node) {
		snprintf(err, SRV_ERRLEN, "out of memory");
		free(node);
		if (g)
			agclose(g);
		return NULL;
	}
	set(g, "rankdir", "TB");
	set(g, "nodesep", "0.3");
	set(g, "ranksep", "0.35");
	set(g, "bgcolor", "transparent");
	agattr(g, AGNODE, "fontname", "DejaVu Sans");
	agattr(g, AGNODE, "fontsize", "12");
	agattr(g, AGEDGE, "arrowsize", "0.7");
	agattr(g, AGEDGE, "color", "#607d8b");
	json_array_foreach(nodes, i, x) {
		char id[24], tip[48];
		const char *kind = json_string_value(json_object_get(x, "type"));
		const struct style *st = style_of(kind);
		snprintf(id, sizeof id, "n%zu", i);
		node[i] = agnode(g, id, 1);
		if (!st)
			continue;
		snprintf(tip, sizeof tip, "%zu: %s", i, kind);
		set(node[i], "class", kind);
		set(node[i], "tooltip", tip);
		set(node[i], "shape", st->shape);
		set(node[i], "label", st->label);
		set(node[i], "style", st->style);
		set(node[i], "color", st->color);
		set(node[i], "fillcolor", st->fill);
		set(node[i], "fontcolor", st->color);
		set(node[i], "penwidth", st->pen);
		set(node[i], "width", st->width);
		set(node[i], "height", !strcmp(st->shape, "box") ? "0.35" : st->width);
		if (strcmp(st->shape, "box"))
			set(node[i], "fixedsize", "true");
	}
	json_array_foreach(json_object_get(flow, "edges"), i, x) {
		size_t a = (size_t)json_integer_value(json_array_get(x, 0));
		size_t b = (size_t)json_integer_value(json_array_get(x, 1));
		if (a < n && b < n)
			agedge(g, node[a], node[b], NULL, 1);
	}
	free(node);
	return g;
}

int srv_flow_svg(json_t *flow, char **svg, size_t *len, char *err)
{
	size_t n = json_array_size(json_object_get(flow, "nodes"));
	if (n > SRV_FLOW_SVG_MAX_NODES) {
		snprintf(err, SRV_ERRLEN, "flow of %zu nodes: too large to draw (at most %d)", n,
			 SRV_FLOW_SVG_MAX_NODES);
		return -1;
	}
	int rc = -1;
	pthread_mutex_lock(&gv_lock);
	if (!gvc)
		gvc = gvContext();
	Agraph_t *g = gvc ? graph_of(flow, err) : NULL;
	if (!gvc)
		snprintf(err, SRV_ERRLEN, "graphviz: no context");
	if (g && gvLayout(gvc, g, "dot") != 0) {
		snprintf(err, SRV_ERRLEN, "graphviz: layout failed");
	} else if (g) {
		char *data = NULL;
		unsigned int dlen = 0;
		if (gvRenderData(gvc, g, "svg", &data, &dlen) == 0 && data &&
		    (*svg = malloc(dlen + 1))) {
			memcpy(*svg, data, dlen);
			(*svg)[dlen] = '\0';
			*len = dlen;
			rc = 0;
		} else {
			snprintf(err, SRV_ERRLEN, "graphviz: rendering failed");
		}
		gvFreeRenderData(data);
		gvFreeLayout(gvc, g);
	}
	if (g)
		agclose(g);
	pthread_mutex_unlock(&gv_lock);
	return rc;
}
