/* cfg.c: one function's control-flow shape from its libclang cursor: the
 * statement-level graph of docs/flows.md (start, decision, loop, block,
 * end and error nodes), its counts and its callees.
 *
 * The builder walks the statements once, keeping the set of "dangling"
 * nodes whose next edge goes to whatever node is made next; return edges
 * and gotos are recorded with placeholder targets and tied up at the end,
 * when the end node and every label are known.  Only statement structure
 * and the names of callees are read: no literal or other identifier is
 * kept, which is what lets the result leave the machine. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "flows.h"
#include "internal.h"

#define TO_END (-1)     /* edge target: the end node, made last */
#define UNRESOLVED (-2) /* label target not met yet */

struct set {
	int *v;
	size_t n, cap;
};

struct frame {
	int loop;         /* a loop (continue goes to `cont`), else a switch */
	int cont;
	struct set breaks;
	struct set chain; /* switch: the last case decision, "no match" path */
	int has_default;
};

struct label {
	char *name;
	int target;
	int defined, pending;
};

struct jump {
	int from;
	size_t label;
};

struct builder {
	struct an_flow *f;
	CXTranslationUnit tu;
	struct set cur;  /* where the next node's incoming edges come from */
	int open;        /* a block node the next simple statement may join */
	struct frame *fr;
	size_t nfr, capfr;
	struct label *lab;
	size_t nlab, caplab;
	struct jump *jmp;
	size_t njmp, capjmp;
	int oom;
};

static void set_add(struct builder *b, struct set *s, int v)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == v)
			return;
	if (cnsmp_grow((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v)) < 0) {
		b->oom = 1;
		return;
	}
	s->v[s->n++] = v;
}

static void set_union(struct builder *b, struct set *dst, const struct set *src)
{
	for (size_t i = 0; i < src->n; i++)
		set_add(b, dst, src->v[i]);
}

static void set_take(struct set *dst, struct set *src)
{
	free(dst->v);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

static void edge(struct builder *b, int from, int to)
{
	struct an_flow *f = b->f;
	if (cnsmp_grow((void **)&f->edge, &f->capedges, f->nedges + 1, sizeof(*f->edge)) < 0) {
		b->oom = 1;
		return;
	}
	f->edge[f->nedges][0] = from;
	f->edge[f->nedges][1] = to;
	f->nedges++;
}

static int new_node(struct builder *b, int kind)
{
	struct an_flow *f = b->f;
	if (cnsmp_grow((void **)&f->kind, &f->capnodes, f->nnodes + 1, 1) < 0) {
		b->oom = 1;
		return 0;
	}
	f->kind[f->nnodes] = (unsigned char)kind;
	return (int)f->nnodes++;
}

/* Labels waiting for the next node (or the end) start there. */
static void resolve_pending(struct builder *b, int target)
{
	for (size_t i = 0; i < b->nlab; i++)
		if (b->lab[i].pending) {
			b->lab[i].target = target;
			b->lab[i].pending = 0;
		}
}

/* A new node, reached from every dangling node; it becomes the only one. */
static int node(struct builder *b, int kind)
{
	int id = new_node(b, kind);
	for (size_t i = 0; i < b->cur.n; i++)
		edge(b, b->cur.v[i], id);
	resolve_pending(b, id);
	b->cur.n = 0;
	set_add(b, &b->cur, id);
	b->open = -1;
	return id;
}

static void to_end(struct builder *b)
{
	for (size_t i = 0; i < b->cur.n; i++)
		edge(b, b->cur.v[i], TO_END);
	resolve_pending(b, TO_END);
	b->cur.n = 0;
	b->open = -1;
}

static size_t label_of(struct builder *b, const char *name)
{
	for (size_t i = 0; i < b->nlab; i++)
		if (!strcmp(b->lab[i].name, name))
			return i;
	char *s = strdup(name);
	if (!s || cnsmp_grow((void **)&b->lab, &b->caplab, b->nlab + 1, sizeof(*b->lab)) < 0) {
		free(s);
		b->oom = 1;
		return (size_t)-1;
	}
	b->lab[b->nlab] = (struct label){ s, UNRESOLVED, 0, 0 };
	return b->nlab++;
}

static void jump(struct builder *b, int from, size_t label)
{
	if (label == (size_t)-1 ||
	    cnsmp_grow((void **)&b->jmp, &b->capjmp, b->njmp + 1, sizeof(*b->jmp)) < 0) {
		b->oom = 1;
		return;
	}
	b->jmp[b->njmp++] = (struct jump){ from, label };
}

static int cmp_edge(const void *a, const void *z)
{
	const int *x = a, *y = z;
	return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
}

/* Sorted, without duplicates: one edge per pair whatever the statements. */
static void sort_edges(struct an_flow *f)
{
	if (!f->nedges)
		return;
	qsort(f->edge, f->nedges, sizeof(*f->edge), cmp_edge);
	size_t o = 1;
	for (size_t i = 1; i < f->nedges; i++)
		if (cmp_edge(f->edge[i], f->edge[o - 1]))
			memmove(f->edge[o++], f->edge[i], sizeof(*f->edge));
	f->nedges = o;
}

void an_flow_release(struct an_flow *f)
{
	free(f->kind);
	free(f->edge);
	free(f->calls);
	memset(f, 0, sizeof(*f));
}

const char *an_kind_name(int kind)
{
	static const char *const names[] = { "start", "decision", "loop", "block", "end", "error" };
	return kind >= 0 && kind <= AN_ERROR ? names[kind] : "block";
}

/* A label names an error exit when one of its '_'-separated words, less
 * trailing digits, is one of these ("err", "out_err", "fail2", "err_free";
 * not "out", "done" or "cleanup", which success paths share). */
int an_error_label(const char *label)
{
	static const char *const words[] = {
		"err", "error", "errout", "fail", "failed", "failure", "bad",
		"bail", "abort", "oom", "nomem", "enomem", "fatal", "panic", NULL,
	};
	const char *p = label;
	while (p && *p) {
		size_t n = strcspn(p, "_");
		size_t m = n;
		while (m > 0 && p[m - 1] >= '0' && p[m - 1] <= '9')
			m--;
		for (const char *const *w = words; *w && m; w++)
			if (strlen(*w) == m && !strncasecmp(p, *w, m))
				return 1;
		p += n;
		while (*p == '_')
			p++;
	}
	return 0;
}

/* ---- cursors ----------------------------------------------------------- */

struct kids {
	CXCursor *c;
	size_t n, cap;
	int oom;
};

static enum CXChildVisitResult add_kid(CXCursor c, CXCursor parent, CXClientData d)
{
	struct kids *k = d;
	(void)parent;
	if (cnsmp_grow((void **)&k->c, &k->cap, k->n + 1, sizeof(*k->c)) < 0) {
		k->oom = 1;
		return CXChildVisit_Break;
	}
	k->c[k->n++] = c;
	return CXChildVisit_Continue;
}

static struct kids kids_of(struct builder *b, CXCursor c)
{
	struct kids k = { 0 };
	clang_visitChildren(c, add_kid, &k);
	if (k.oom && b)
		b->oom = 1;
	return k;
}

/* Does a token spelled `want` lie between the end of `a` and the start of
 * `z` (an "else" between an if's two branches, "&&" between operands)? */
static int token_between(CXTranslationUnit tu, CXCursor a, CXCursor z,
			 const char *const *want)
{
	CXSourceRange r = clang_getRange(clang_getRangeEnd(clang_getCursorExtent(a)),
					 clang_getRangeStart(clang_getCursorExtent(z)));
	CXToken *t = NULL;
	unsigned n = 0;
	int found = 0;
	clang_tokenize(tu, r, &t, &n);
	for (unsigned i = 0; i < n && !found; i++) {
		CXString s = clang_getTokenSpelling(tu, t[i]);
		const char *p = clang_getCString(s);
		for (const char *const *w = want; *w && p; w++)
			found |= !strcmp(p, *w);
		clang_disposeString(s);
	}
	if (t)
		clang_disposeTokens(tu, t, n);
	return found;
}

static char *spelling(CXCursor c)
{
	CXString s = clang_getCursorSpelling(c);
	const char *p = clang_getCString(s);
	char *r = strdup(p ? p : "");
	clang_disposeString(s);
	return r;
}

/* The expression a statement evaluates, under parentheses, implicit
 * conversions and a cast to void. */
static CXCursor strip(CXCursor c)
{
	for (int i = 0; i < 16; i++) {
		enum CXCursorKind k = clang_getCursorKind(c);
		if (k != CXCursor_UnexposedExpr && k != CXCursor_ParenExpr &&
		    k != CXCursor_CStyleCastExpr)
			break;
		struct kids kk = kids_of(NULL, c);
		if (kk.n == 0) {
			free(kk.c);
			break;
		}
		c = kk.c[kk.n - 1];
		free(kk.c);
	}
	return c;
}

enum ending { PLAIN, ERROR_ON, ERROR_END, SUCCESS_END };

/* What a statement's call does to the path: codensm_error() marks it as
 * an error and goes on; abort(), throw, exit() or err() with a status that
 * is not a constant 0 end it as an error; exit(0) ends it normally. */
static enum ending ending_of(CXCursor stmt)
{
	CXCursor e = strip(stmt);
	enum CXCursorKind k = clang_getCursorKind(e);
	if (k == CXCursor_CXXThrowExpr)
		return ERROR_END;
	if (k != CXCursor_CallExpr)
		return PLAIN;
	CXCursor callee = clang_getCursorReferenced(e);
	if (clang_Cursor_isNull(callee))
		return PLAIN;
	char *name = spelling(callee);
	enum ending r = PLAIN;
	if (!name)
		return PLAIN;
	static const char *const fatal[] = { "abort", "terminate", "__assert_fail", NULL };
	static const char *const status[] = { "exit", "_exit", "_Exit", "quick_exit",
					      "err", "errx", "verr", "verrx", NULL };
	if (!strcmp(name, "codensm_error"))
		r = ERROR_ON;
	for (const char *const *p = fatal; *p; p++)
		if (!strcmp(name, *p))
			r = ERROR_END;
	for (const char *const *p = status; *p; p++)
		if (!strcmp(name, *p) && clang_Cursor_getNumArguments(e) >= 1) {
			CXEvalResult v = clang_Cursor_Evaluate(clang_Cursor_getArgument(e, 0));
			int zero = v && clang_EvalResult_getKind(v) == CXEval_Int &&
				   clang_EvalResult_getAsLongLong(v) == 0;
			if (v)
				clang_EvalResult_dispose(v);
			r = zero ? SUCCESS_END : ERROR_END;
		}
	free(name);
	return r;
}

/* ---- statements -------------------------------------------------------- */

static void stmt(struct builder *b, CXCursor c);

static struct frame *push(struct builder *b, int loop, int cont)
{
	if (cnsmp_grow((void **)&b->fr, &b->capfr, b->nfr + 1, sizeof(*b->fr)) < 0) {
		b->oom = 1;
		return NULL;
	}
	struct frame *fr = &b->fr[b->nfr++];
	memset(fr, 0, sizeof(*fr));
	fr->loop = loop;
	fr->cont = cont;
	return fr;
}

/* Ends the innermost frame: its breaks join the dangling nodes. */
static void pop(struct builder *b)
{
	struct frame *fr = &b->fr[--b->nfr];
	set_union(b, &b->cur, &fr->breaks);
	free(fr->breaks.v);
	free(fr->chain.v);
}

static struct frame *innermost(struct builder *b, int want_loop)
{
	for (size_t i = b->nfr; i-- > 0;)
		if (!want_loop || b->fr[i].loop)
			return &b->fr[i];
	return NULL;
}

static struct frame *innermost_switch(struct builder *b)
{
	for (size_t i = b->nfr; i-- > 0;)
		if (!b->fr[i].loop)
			return &b->fr[i];
	return NULL;
}

static void if_stmt(struct builder *b, struct kids *k)
{
	static const char *const else_kw[] = { "else", NULL };
	int has_else = k->n >= 3 && token_between(b->tu, k->c[k->n - 2], k->c[k->n - 1], else_kw);
	CXCursor then = k->c[k->n - 1 - has_else];
	int d = node(b, AN_DECISION);
	b->f->decisions++;
	stmt(b, then);
	struct set out = b->cur;
	memset(&b->cur, 0, sizeof(b->cur));
	set_add(b, &b->cur, d);
	if (has_else)
		stmt(b, k->c[k->n - 1]);
	set_union(b, &b->cur, &out);
	free(out.v);
	b->open = -1;
}

/* while, for, range-for: the loop node is the test; the body returns to it. */
static void loop_stmt(struct builder *b, CXCursor body)
{
	int l = node(b, AN_LOOP);
	b->f->loops++;
	if (!push(b, 1, l))
		return;
	stmt(b, body);
	for (size_t i = 0; i < b->cur.n; i++)
		edge(b, b->cur.v[i], l);
	b->cur.n = 0;
	set_add(b, &b->cur, l);
	pop(b);
	b->open = -1;
}

/* do: the body runs first; the loop node (its test) goes back to the
 * body's first node or on. */
static void do_stmt(struct builder *b, CXCursor body)
{
	int l = new_node(b, AN_LOOP);
	b->f->loops++;
	if (!push(b, 1, l))
		return;
	b->open = -1;
	stmt(b, body);
	for (size_t i = 0; i < b->cur.n; i++)
		edge(b, b->cur.v[i], l);
	if (b->f->nnodes > (size_t)l + 1)
		edge(b, l, l + 1);
	b->cur.n = 0;
	set_add(b, &b->cur, l);
	pop(b);
	b->open = -1;
}

static void switch_stmt(struct builder *b, CXCursor body)
{
	struct frame *fr = push(b, 0, -1);
	if (!fr)
		return;
	set_union(b, &fr->chain, &b->cur); /* before any case: the switch's entry */
	b->cur.n = 0;
	stmt(b, body);
	fr = &b->fr[b->nfr - 1];
	if (!fr->has_default)
		set_union(b, &b->cur, &fr->chain);
	pop(b);
	b->open = -1;
}

/* A case group (consecutive labels are one) is a decision taken from the
 * previous group's decision; its body is also reached by fall-through. */
static void case_stmt(struct builder *b, CXCursor c)
{
	struct frame *sw = innermost_switch(b);
	if (sw) {
		struct set fall = b->cur;
		memset(&b->cur, 0, sizeof(b->cur));
		set_union(b, &b->cur, &sw->chain);
		int d = node(b, AN_DECISION);
		b->f->decisions++;
		sw->chain.n = 0;
		set_add(b, &sw->chain, d);
		set_union(b, &b->cur, &fall);
		free(fall.v);
	}
	for (int depth = 0; depth < 1000; depth++) {
		struct kids k = kids_of(b, c);
		CXCursor sub = k.n ? k.c[k.n - 1] : clang_getNullCursor();
		free(k.c);
		if (clang_Cursor_isNull(sub))
			return;
		if (clang_getCursorKind(sub) != CXCursor_CaseStmt) {
			stmt(b, sub);
			return;
		}
		c = sub;
	}
}

static void default_stmt(struct builder *b, struct kids *k)
{
	struct frame *sw = innermost_switch(b);
	if (sw) {
		sw->has_default = 1;
		set_union(b, &b->cur, &sw->chain);
	}
	b->open = -1;
	if (k->n)
		stmt(b, k->c[k->n - 1]);
}

static void goto_stmt(struct builder *b, struct kids *k)
{
	if (!k->n)
		return;
	char *name = spelling(k->c[0]);
	if (!name) {
		b->oom = 1;
		return;
	}
	size_t l = label_of(b, name);
	if (an_error_label(name)) {
		jump(b, node(b, AN_ERROR), l);
	} else if (l != (size_t)-1 && b->lab[l].defined) {
		b->f->loops++;
		jump(b, node(b, AN_LOOP), l);
	} else {
		for (size_t i = 0; i < b->cur.n; i++)
			jump(b, b->cur.v[i], l);
	}
	free(name);
	b->cur.n = 0;
	b->open = -1;
}

static void label_stmt(struct builder *b, CXCursor c, struct kids *k)
{
	char *name = spelling(c);
	size_t l = name ? label_of(b, name) : (size_t)-1;
	free(name);
	if (l != (size_t)-1) {
		b->lab[l].defined = 1;
		b->lab[l].pending = 1;
	}
	b->open = -1;
	if (k->n)
		stmt(b, k->c[k->n - 1]);
}

/* try: the body from the try's entry, and each catch as a decision taken
 * from that same entry; all of them join after. */
static void try_stmt(struct builder *b, struct kids *k)
{
	struct set entry = { 0 }, out = { 0 };
	set_union(b, &entry, &b->cur);
	b->open = -1;
	for (size_t i = 0; i < k->n; i++) {
		if (clang_getCursorKind(k->c[i]) == CXCursor_CXXCatchStmt) {
			b->cur.n = 0;
			set_union(b, &b->cur, &entry);
			node(b, AN_DECISION);
			b->f->decisions++;
			struct kids h = kids_of(b, k->c[i]);
			if (h.n)
				stmt(b, h.c[h.n - 1]);
			free(h.c);
		} else {
			stmt(b, k->c[i]);
		}
		set_union(b, &out, &b->cur);
	}
	set_take(&b->cur, &out);
	free(entry.v);
	b->open = -1;
}

static void simple_stmt(struct builder *b, CXCursor c)
{
	switch (ending_of(c)) {
	case ERROR_ON:
		node(b, AN_ERROR);
		return;
	case ERROR_END:
		node(b, AN_ERROR);
		b->cur.n = 0;
		return;
	case SUCCESS_END:
		to_end(b);
		return;
	case PLAIN:
		break;
	}
	if (b->open >= 0 && b->cur.n == 1 && b->cur.v[0] == b->open)
		return;
	b->open = node(b, AN_BLOCK);
}

static void stmt(struct builder *b, CXCursor c)
{
	if (b->oom)
		return;
	enum CXCursorKind kind = clang_getCursorKind(c);
	struct kids k = { 0 };
	if (kind != CXCursor_NullStmt && !clang_isExpression(kind) &&
	    kind != CXCursor_DeclStmt)
		k = kids_of(b, c);
	switch (kind) {
	case CXCursor_CompoundStmt:
	case CXCursor_UnexposedStmt: /* [[fallthrough]], attributes */
		for (size_t i = 0; i < k.n; i++)
			stmt(b, k.c[i]);
		break;
	case CXCursor_IfStmt:
		if (k.n >= 2)
			if_stmt(b, &k);
		break;
	case CXCursor_WhileStmt:
	case CXCursor_ForStmt:
	case CXCursor_CXXForRangeStmt:
		if (k.n)
			loop_stmt(b, k.c[k.n - 1]);
		break;
	case CXCursor_DoStmt:
		if (k.n)
			do_stmt(b, k.c[0]);
		break;
	case CXCursor_SwitchStmt:
		if (k.n)
			switch_stmt(b, k.c[k.n - 1]);
		break;
	case CXCursor_CaseStmt:
		case_stmt(b, c);
		break;
	case CXCursor_DefaultStmt:
		default_stmt(b, &k);
		break;
	case CXCursor_BreakStmt: {
		struct frame *fr = innermost(b, 0);
		if (fr)
			set_union(b, &fr->breaks, &b->cur);
		b->cur.n = 0;
		b->open = -1;
		break;
	}
	case CXCursor_ContinueStmt: {
		struct frame *fr = innermost(b, 1);
		for (size_t i = 0; fr && i < b->cur.n; i++)
			edge(b, b->cur.v[i], fr->cont);
		b->cur.n = 0;
		b->open = -1;
		break;
	}
	case CXCursor_ReturnStmt:
		b->f->returns++;
		to_end(b);
		break;
	case CXCursor_GotoStmt:
		goto_stmt(b, &k);
		break;
	case CXCursor_IndirectGotoStmt:
		b->cur.n = 0;
		b->open = -1;
		break;
	case CXCursor_LabelStmt:
		label_stmt(b, c, &k);
		break;
	case CXCursor_CXXTryStmt:
		try_stmt(b, &k);
		break;
	case CXCursor_NullStmt:
		break;
	default:
		simple_stmt(b, c);
		break;
	}
	free(k.c);
}

/* ---- counts and callees over the whole body ----------------------------- */

static int is_function(enum CXCursorKind k)
{
	return k == CXCursor_FunctionDecl || k == CXCursor_CXXMethod ||
	       k == CXCursor_Constructor || k == CXCursor_Destructor ||
	       k == CXCursor_ConversionFunction;
}

static enum CXChildVisitResult scan(CXCursor c, CXCursor parent, CXClientData d)
{
	struct builder *b = d;
	struct an_flow *f = b->f;
	(void)parent;
	switch (clang_getCursorKind(c)) {
	case CXCursor_LambdaExpr: /* a function of its own */
		return CXChildVisit_Continue;
	case CXCursor_ConditionalOperator:
		f->decisions++;
		break;
	case CXCursor_BinaryOperator: {
		static const char *const logical[] = { "&&", "||", "and", "or", NULL };
		struct kids k = kids_of(b, c);
		if (k.n == 2 && token_between(b->tu, k.c[0], k.c[1], logical))
			f->decisions++;
		free(k.c);
		break;
	}
	case CXCursor_CallExpr: {
		CXCursor callee = clang_getCursorReferenced(c);
		if (clang_Cursor_isNull(callee) || !is_function(clang_getCursorKind(callee)))
			break;
		if (cnsmp_grow((void **)&f->calls, &f->capcalls, f->ncalls + 1, sizeof(*f->calls)) < 0) {
			b->oom = 1;
			return CXChildVisit_Break;
		}
		f->calls[f->ncalls++] = callee;
		break;
	}
	default:
		break;
	}
	return CXChildVisit_Recurse;
}

int an_flow_build(CXTranslationUnit tu, CXCursor fn, struct an_flow *f)
{
	struct builder b = { .f = f, .tu = tu, .open = -1 };
	CXCursor body = clang_getNullCursor();
	struct kids k = kids_of(&b, fn);
	for (size_t i = 0; i < k.n; i++)
		if (clang_getCursorKind(k.c[i]) == CXCursor_CompoundStmt ||
		    clang_getCursorKind(k.c[i]) == CXCursor_CXXTryStmt)
			body = k.c[i]; /* the last one: a function-try-block's */
	free(k.c);

	CXSourceRange ext = clang_getCursorExtent(fn);
	unsigned l0 = 0, l1 = 0;
	clang_getExpansionLocation(clang_getRangeStart(ext), NULL, &l0, NULL, NULL);
	clang_getExpansionLocation(clang_getRangeEnd(ext), NULL, &l1, NULL, NULL);
	f->lines = l1 >= l0 ? (int)(l1 - l0 + 1) : 1;

	node(&b, AN_START);
	if (!clang_Cursor_isNull(body)) {
		stmt(&b, body);
		clang_visitChildren(body, scan, &b);
	}
	if (b.cur.n) { /* falls off the end */
		if (clang_getCursorResultType(fn).kind == CXType_Void)
			f->returns++;
		to_end(&b);
	}
	resolve_pending(&b, TO_END);
	for (size_t i = 0; i < b.njmp; i++) {
		int t = b.lab[b.jmp[i].label].target;
		if (t != UNRESOLVED)
			edge(&b, b.jmp[i].from, t);
	}
	int end = -1;
	for (size_t i = 0; i < f->nedges; i++)
		if (f->edge[i][1] == TO_END) {
			if (end < 0)
				end = new_node(&b, AN_END);
			f->edge[i][1] = end;
		}
	sort_edges(f);

	for (size_t i = 0; i < b.nlab; i++)
		free(b.lab[i].name);
	for (size_t i = 0; i < b.nfr; i++) {
		free(b.fr[i].breaks.v);
		free(b.fr[i].chain.v);
	}
	free(b.lab);
	free(b.jmp);
	free(b.fr);
	free(b.cur.v);
	return b.oom ? -1 : 0;
}
