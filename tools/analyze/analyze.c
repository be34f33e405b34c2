/* analyze.c: `codensm analyze`: every function defined in a build's
 * sources (libclang over BUILD_DIR/compile_commands.json), named exactly
 * as the runtime names it (rules.c), with its flow (cfg.c), callees and
 * has_tests verdict (testscan.c); written as JSON for the whole build, or
 * for each given binary as a file keyed by its GNU build-id, which is what
 * the runtime looks up in CODENSM_MODE=full (docs/flows.md). */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <jansson.h>
#include <libelf.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <clang-c/CXCompilationDatabase.h>

#include "analyze.h"
#include "flows.h"
#include "internal.h"

#define MAX_CALLS_OUT 40 /* the seed's limit for calls_out */

extern char **environ;

struct fn {
	char *base;    /* module path "." qualified name */
	char *name;    /* base, or base#hash when overloaded in the build */
	char *ident;   /* the name a test would call it by */
	char *usr;     /* libclang's unique id: joins callers to callees */
	uint32_t hash; /* cnsmp_rules_name_hash of the mangled name */
	uint32_t *alt; /* of the other manglings (constructor variants) */
	size_t nalt;
	struct an_flow flow;
	char **callee;  /* the USRs of its callees, in first-call order */
	int has_tests;
};

struct run {
	const struct an_opts *o;
	struct fn *f;
	size_t nf, capf;
	char *root;       /* CODENSM_SOURCE_ROOT, normalised, or NULL */
	char *common;     /* the folder holding every source file */
	const char *build; /* the database's folder, absolute */
	size_t *set, capset; /* usr_seen and usr_add */
	size_t units, failed;
	FILE *err;
	int oom;
};

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 64;
	void *p = realloc(*arr, c * size);
	if (!p)
		return -1;
	*arr = p;
	*cap = c;
	return 0;
}

static char *str(CXString s)
{
	const char *p = clang_getCString(s);
	char *r = strdup(p ? p : "");
	clang_disposeString(s);
	return r;
}

/* ---- the compilation database ------------------------------------------ */

/* libclang's own loader says only "could not load": read the file first
 * so a broken one gets a message naming what is wrong with it. */
static int check_database(const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/compile_commands.json", dir);
	json_error_t je;
	json_t *db = json_load_file(path, 0, &je);
	if (!db) {
		if (access(path, F_OK) != 0)
			snprintf(err, errlen, "no compile_commands.json in '%s' (%s): export one with cmake -DCMAKE_EXPORT_COMPILE_COMMANDS=ON or bear -- make",
				 dir, strerror(errno));
		else
			snprintf(err, errlen, "'%s' is not valid JSON: %s at line %d, column %d",
				 path, je.text, je.line, je.column);
		return -1;
	}
	int r = 0;
	if (!json_is_array(db)) {
		snprintf(err, errlen, "'%s' is not a compilation database: the top level is not an array", path);
		r = -1;
	}
	for (size_t i = 0; r == 0 && i < json_array_size(db); i++) {
		json_t *e = json_array_get(db, i);
		const char *miss = !json_is_object(e) ? NULL :
				   !json_is_string(json_object_get(e, "directory")) ? "\"directory\" string" :
				   !json_is_string(json_object_get(e, "file")) ? "\"file\" string" :
				   !json_is_string(json_object_get(e, "command")) &&
				   !json_is_array(json_object_get(e, "arguments")) ? "\"command\" or \"arguments\"" :
				   NULL;
		if (!json_is_object(e) || miss) {
			if (miss)
				snprintf(err, errlen, "'%s': entry %zu has no %s", path, i + 1, miss);
			else
				snprintf(err, errlen, "'%s': entry %zu is not an object", path, i + 1);
			r = -1;
		}
	}
	if (r == 0 && json_array_size(db) == 0) {
		snprintf(err, errlen, "'%s' lists no compilation", path);
		r = -1;
	}
	json_decref(db);
	return r;
}

/* ---- one translation unit ----------------------------------------------- */

struct tu_walk {
	struct run *r;
	CXTranslationUnit tu;
	const char *dir; /* the compilation directory */
};

static int is_function(enum CXCursorKind k)
{
	return k == CXCursor_FunctionDecl || k == CXCursor_CXXMethod ||
	       k == CXCursor_Constructor || k == CXCursor_Destructor ||
	       k == CXCursor_ConversionFunction;
}

/* "geo::Circle::area": the enclosing namespaces and classes, spelled as
 * the runtime's DWARF walk spells them (symbols.c). */
static char *qualified(CXCursor c)
{
	char *q = str(clang_getCursorSpelling(c));
	for (CXCursor p = clang_getCursorSemanticParent(c); q; p = clang_getCursorSemanticParent(p)) {
		enum CXCursorKind k = clang_getCursorKind(p);
		const char *anon = NULL;
		if (k == CXCursor_Namespace)
			anon = "(anonymous namespace)";
		else if (k == CXCursor_ClassDecl || k == CXCursor_StructDecl ||
			 k == CXCursor_UnionDecl || k == CXCursor_ClassTemplate)
			anon = "<anonymous>";
		else if (k == CXCursor_LinkageSpec || k == CXCursor_UnexposedDecl)
			continue;
		else
			break;
		char *s = str(clang_getCursorSpelling(p));
		if (!s || (k == CXCursor_Namespace ? clang_Cursor_isAnonymous(p) : !*s) ||
		    (s && !strncmp(s, "(anonymous", 10))) {
			free(s);
			s = strdup(anon);
		}
		size_t n = (s ? strlen(s) : 0) + strlen(q) + 3;
		char *j = s ? malloc(n) : NULL;
		if (j)
			snprintf(j, n, "%s::%s", s, q);
		free(s);
		free(q);
		q = j;
	}
	return q;
}

/* Is `alt` the base-object variant of constructor or destructor `m`
 * (_ZN3geo3BoxC2Ei for _ZN3geo3BoxC1Ei): the one character apart a '2'
 * where m has a '1'? */
static int base_variant(const char *m, const char *alt)
{
	size_t n = strlen(m), diff = 0, at = 0;
	if (strlen(alt) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (m[i] != alt[i]) {
			diff++;
			at = i;
		}
	return diff == 1 && m[at] == '1' && alt[at] == '2' && at > 0 &&
	       (m[at - 1] == 'C' || m[at - 1] == 'D');
}

/* The hash of the mangled name DWARF gives the function: for a
 * constructor or destructor, GCC and clang both describe the base-object
 * variant (C2/D2), which the complete-object one (C1/D1) aliases; the
 * other variants are kept to match a binary that says otherwise. */
static void add_hashes(struct fn *f, CXCursor c, const char *q)
{
	char *m = str(clang_Cursor_getMangling(c));
	f->hash = cnsmp_rules_name_hash(m && *m ? m : q);
	CXStringSet *all = clang_Cursor_getCXXManglings(c);
	if (all) {
		f->alt = calloc(all->Count ? all->Count : 1, sizeof(*f->alt));
		for (unsigned i = 0; f->alt && i < all->Count; i++) {
			const char *a = clang_getCString(all->Strings[i]);
			f->alt[f->nalt++] = cnsmp_rules_name_hash(a);
			if (m && a && base_variant(m, a))
				f->hash = cnsmp_rules_name_hash(a);
		}
		clang_disposeStringSet(all);
	}
	free(m);
}

/* The USRs of the functions analysed so far (headers' functions recur in
 * every unit that includes them): an open-addressed table of indexes into
 * r->f, so a large build stays linear. */
static int usr_seen(const struct run *r, const char *usr)
{
	if (!r->capset)
		return 0;
	size_t h = cnsmp_rules_name_hash(usr) & (r->capset - 1);
	for (; r->set[h] != (size_t)-1; h = (h + 1) & (r->capset - 1))
		if (!strcmp(r->f[r->set[h]].usr, usr))
			return 1;
	return 0;
}

static void usr_put(size_t *t, size_t cap, const char *usr, size_t i)
{
	size_t h = cnsmp_rules_name_hash(usr) & (cap - 1);
	while (t[h] != (size_t)-1)
		h = (h + 1) & (cap - 1);
	t[h] = i;
}

/* Adds function i (filled in) to the table; 0 or -1. */
static int usr_add(struct run *r, size_t i)
{
	if ((i + 1) * 2 >= r->capset) {
		size_t cap = r->capset ? r->capset * 2 : 1024;
		size_t *t = malloc(cap * sizeof(*t));
		if (!t)
			return -1;
		for (size_t k = 0; k < cap; k++)
			t[k] = (size_t)-1;
		for (size_t k = 0; k < r->capset; k++)
			if (r->set[k] != (size_t)-1)
				usr_put(t, cap, r->f[r->set[k]].usr, r->set[k]);
		free(r->set);
		r->set = t;
		r->capset = cap;
	}
	usr_put(r->set, r->capset, r->f[i].usr, i);
	return 0;
}

static void add_fn(struct tu_walk *w, CXCursor c)
{
	struct run *r = w->r;
	CXFile file;
	clang_getExpansionLocation(clang_getCursorLocation(c), &file, NULL, NULL, NULL);
	char *fname = file ? str(clang_getFileName(file)) : NULL;
	char *abs = fname ? cnsmp_rules_absolute(w->dir, fname) : NULL;
	char *usr = str(clang_getCursorUSR(c));
	char *modpath = NULL, *rel = NULL, *q = NULL;
	/* libclang knows which headers are the system's even when their path
	 * (seen through the driver's guess of its own folder) does not say so */
	if (!abs || !usr || cnsmp_rules_system_path(abs) ||
	    clang_Location_isInSystemHeader(clang_getCursorLocation(c)))
		goto out;
	/* A header outside the source root is a library's (codensm.h's inline
	 * helper): its functions are the user's only in the unit's own file. */
	const char *root = r->root ? r->root : w->dir;
	size_t rn = strlen(root);
	if (!clang_Location_isFromMainFile(clang_getCursorLocation(c)) &&
	    (strncmp(abs, root, rn) || abs[rn] != '/') && strcmp(root, "/"))
		goto out;
	if (usr_seen(r, usr))
		goto out;
	if (cnsmp_rules_module_of(root, abs, &modpath, &rel) < 0 ||
	    !(q = qualified(c)) || grow((void **)&r->f, &r->capf, r->nf, sizeof(*r->f)) < 0) {
		r->oom = 1;
		goto out;
	}
	struct fn *f = &r->f[r->nf];
	memset(f, 0, sizeof(*f));
	size_t n = strlen(modpath) + strlen(q) + 2;
	f->base = malloc(n);
	if (f->base)
		snprintf(f->base, n, "%s%s%s", modpath, *modpath ? "." : "", q);
	f->ident = str(clang_getCursorSpelling(c));
	f->usr = usr;
	usr = NULL;
	add_hashes(f, c, q);
	if (!f->base || !f->ident || an_flow_build(w->tu, c, &f->flow) < 0)
		r->oom = 1;
	f->callee = calloc(f->flow.ncalls + 1, sizeof(*f->callee));
	for (size_t i = 0; f->callee && i < f->flow.ncalls; i++)
		f->callee[i] = str(clang_getCursorUSR(f->flow.calls[i]));
	if (usr_add(r, r->nf) < 0)
		r->oom = 1;
	r->nf++;
out:
	free(fname);
	free(abs);
	free(usr);
	free(modpath);
	free(rel);
	free(q);
}

/* Definitions at namespace and class scope; templates are left out (their
 * instances carry template arguments in their names, which the source
 * alone does not give). */
static enum CXChildVisitResult visit(CXCursor c, CXCursor parent, CXClientData d)
{
	(void)parent;
	enum CXCursorKind k = clang_getCursorKind(c);
	if (k == CXCursor_Namespace || k == CXCursor_LinkageSpec ||
	    k == CXCursor_ClassDecl || k == CXCursor_StructDecl ||
	    k == CXCursor_UnionDecl || k == CXCursor_UnexposedDecl)
		return CXChildVisit_Recurse;
	if (is_function(k) && clang_isCursorDefinition(c))
		add_fn(d, c);
	return CXChildVisit_Continue;
}

/* The folder holding both `a` (a folder) and file `b`. */
static void common_dir(char **a, const char *b)
{
	if (!*a) {
		*a = strdup(b);
		char *slash = *a ? strrchr(*a, '/') : NULL;
		if (slash)
			*(slash == *a ? slash + 1 : slash) = '\0';
		return;
	}
	size_t n = 0;
	while ((*a)[n] && (*a)[n] == b[n])
		n++;
	if ((*a)[n] == '\0' && (b[n] == '/' || b[n] == '\0'))
		return;
	while (n > 0 && (*a)[n - 1] != '/')
		n--;
	(*a)[n > 1 ? n - 1 : 1] = '\0';
}

/* The compiler's path: the driver libclang runs finds the compiler's own
 * headers (libstdc++'s) relative to it, so "c++" must become /usr/bin/c++. */
static char *compiler_path(const char *name)
{
	const char *path = getenv("PATH");
	if (strchr(name, '/') || !path)
		return NULL;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		char buf[PATH_MAX];
		if (n && snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, name) < (int)sizeof(buf) &&
		    buf[0] == '/' && access(buf, X_OK) == 0)
			return strdup(buf);
		p += n + (p[n] == ':');
	}
	return NULL;
}

static void unit(struct run *r, CXIndex idx, CXCompileCommand cmd)
{
	char *dir = str(clang_CompileCommand_getDirectory(cmd));
	char *file = str(clang_CompileCommand_getFilename(cmd));
	unsigned argc = clang_CompileCommand_getNumArgs(cmd);
	char **argv = calloc(argc + 1, sizeof(*argv));
	char *ndir = dir ? cnsmp_rules_absolute(r->build, dir) : NULL; /* relative: to the database */
	char *abs = ndir && file ? cnsmp_rules_absolute(ndir, file) : NULL;
	if (!argv || !abs || !ndir) {
		r->oom = 1;
		goto out;
	}
	for (unsigned i = 0; i < argc; i++)
		argv[i] = str(clang_CompileCommand_getArg(cmd, i));
	char *cc = argc ? compiler_path(argv[0]) : NULL;
	if (cc) {
		free(argv[0]);
		argv[0] = cc;
	}
	r->units++;
	common_dir(&r->common, abs);
	if (chdir(ndir) != 0) {
		fprintf(r->err, "codensm: skipping '%s': cannot enter its directory '%s': %s\n",
			file, dir, strerror(errno));
		r->failed++;
		goto out;
	}
	CXTranslationUnit tu = NULL;
	enum CXErrorCode e = clang_parseTranslationUnit2FullArgv(
		idx, NULL, (const char *const *)argv, (int)argc, NULL, 0,
		CXTranslationUnit_KeepGoing, &tu);
	if (e != CXError_Success || !tu) {
		fprintf(r->err, "codensm: skipping '%s': libclang could not parse it (error %d)\n",
			abs, (int)e);
		r->failed++;
		goto out;
	}
	unsigned fatal = 0;
	for (unsigned i = 0, n = clang_getNumDiagnostics(tu); i < n; i++) {
		CXDiagnostic dg = clang_getDiagnostic(tu, i);
		if (clang_getDiagnosticSeverity(dg) >= CXDiagnostic_Error && !fatal++) {
			char *msg = str(clang_formatDiagnostic(dg, clang_defaultDiagnosticDisplayOptions()));
			fprintf(r->err, "codensm: '%s' has errors; its flows may be incomplete: %s\n",
				abs, msg ? msg : "");
			free(msg);
		}
		clang_disposeDiagnostic(dg);
	}
	struct tu_walk w = { r, tu, ndir };
	clang_visitChildren(clang_getTranslationUnitCursor(tu), visit, &w);
	for (size_t i = 0; i < r->nf; i++) { /* cursors die with their unit */
		free(r->f[i].flow.calls);
		r->f[i].flow.calls = NULL;
		r->f[i].flow.ncalls = r->f[i].flow.capcalls = 0;
	}
	clang_disposeTranslationUnit(tu);
out:
	for (unsigned i = 0; argv && i < argc; i++)
		free(argv[i]);
	free(argv);
	free(dir);
	free(file);
	free(abs);
	free(ndir);
}

/* ---- names, callees, tests --------------------------------------------- */

static int by_base(const void *a, const void *b)
{
	const struct fn *x = a, *y = b;
	int c = strcmp(x->base, y->base);
	return c ? c : (x->hash > y->hash) - (x->hash < y->hash);
}

/* Overloads within the build get "#hash", as symbols.c's finish_names
 * does within one binary (matching a binary re-checks: see for_binary). */
static int finish_names(struct run *r)
{
	if (r->nf == 0)
		return 0;
	qsort(r->f, r->nf, sizeof(*r->f), by_base);
	for (size_t i = 0, j; i < r->nf; i = j) {
		int differ = 0;
		for (j = i + 1; j < r->nf && !strcmp(r->f[i].base, r->f[j].base); j++)
			differ |= r->f[j].hash != r->f[i].hash;
		for (size_t k = i; k < j; k++) {
			size_t n = strlen(r->f[k].base) + 10;
			if (!(r->f[k].name = malloc(n)))
				return -1;
			if (differ)
				snprintf(r->f[k].name, n, CNSMP_OVERLOAD_FMT, r->f[k].base, r->f[k].hash);
			else
				snprintf(r->f[k].name, n, "%s", r->f[k].base);
		}
	}
	return 0;
}

struct byusr {
	const char *usr;
	size_t i;
};

static int cmp_usr(const void *a, const void *b)
{
	return strcmp(((const struct byusr *)a)->usr, ((const struct byusr *)b)->usr);
}

/* names[i]: what function i is called in the output (NULL: not there). */
static json_t *flow_json(const struct run *r, size_t i, char *const *names,
			 const struct byusr *u)
{
	const struct fn *f = &r->f[i];
	json_t *nodes = json_array(), *edges = json_array(), *calls = json_array();
	for (size_t k = 0; k < f->flow.nnodes; k++)
		json_array_append_new(nodes, json_pack("{ss}", "type", an_kind_name(f->flow.kind[k])));
	for (size_t k = 0; k < f->flow.nedges; k++)
		json_array_append_new(edges, json_pack("[ii]", f->flow.edge[k][0], f->flow.edge[k][1]));
	for (size_t k = 0; f->callee && f->callee[k] && json_array_size(calls) < MAX_CALLS_OUT; k++) {
		struct byusr key = { f->callee[k], 0 };
		const struct byusr *hit = bsearch(&key, u, r->nf, sizeof(*u), cmp_usr);
		const char *n = hit ? (names[hit->i] ? names[hit->i] : r->f[hit->i].name) : NULL;
		int dup = 0;
		for (size_t m = 0; n && m < json_array_size(calls); m++)
			dup |= !strcmp(json_string_value(json_array_get(calls, m)), n);
		if (n && !dup)
			json_array_append_new(calls, json_string(n));
	}
	return json_pack("{ss so so si si si si si so sb}", "name", names[i],
			 "nodes", nodes, "edges", edges,
			 "decisions", f->flow.decisions, "loops", f->flow.loops,
			 "returns", f->flow.returns, "nodes_count", (int)f->flow.nnodes,
			 "lines", f->flow.lines, "calls_out", calls,
			 "has_tests", f->has_tests);
}

static json_t *flows_json(const struct run *r, char *const *names, const struct byusr *u)
{
	json_t *a = json_array();
	for (size_t i = 0; i < r->nf; i++)
		if (names[i])
			json_array_append_new(a, flow_json(r, i, names, u));
	return a;
}

/* Writes `doc` to path through a tmp file and a rename. */
static int write_json(json_t *doc, const char *path, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	if (json_dump_file(doc, tmp, JSON_COMPACT) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* ---- binaries ---------------------------------------------------------- */

/* The GNU build-id of an ELF file as hex; -1 with a message if none. */
static int build_id(const char *path, char *hex, size_t len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	int found = 0;
	for (Elf_Scn *s = NULL; e && !found && (s = elf_nextscn(e, s));) {
		GElf_Shdr sh;
		if (!gelf_getshdr(s, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		Elf_Data *d = elf_getdata(s, NULL);
		GElf_Nhdr nh;
		size_t off = 0, name_off, desc_off;
		while (d && !found && (off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
			    memcmp((char *)d->d_buf + name_off, "GNU", 4) || nh.n_descsz * 2 >= len)
				continue;
			for (size_t i = 0; i < nh.n_descsz; i++)
				snprintf(hex + 2 * i, 3, "%02x", ((unsigned char *)d->d_buf)[desc_off + i]);
			found = 1;
		}
	}
	if (!e)
		snprintf(err, errlen, "'%s' is not an ELF file", path);
	else if (!found)
		snprintf(err, errlen, "'%s' has no GNU build-id (link it with -Wl,--build-id)", path);
	if (e)
		elf_end(e);
	close(fd);
	return found ? 0 : -1;
}

struct inv {
	char **name;
	size_t n, cap;
	int oom;
};

static void inv_add(const struct cnsmp_fninfo *fi, void *arg)
{
	struct inv *v = arg;
	if (!fi->name || fi->system)
		return;
	if (grow((void **)&v->name, &v->cap, v->n, sizeof(*v->name)) < 0 ||
	    !(v->name[v->n] = strdup(fi->name))) {
		v->oom = 1;
		return;
	}
	v->n++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The build's function that the binary calls `name` ("base" or
 * "base#hash"), or -1. */
static long match(const struct run *r, const char *name)
{
	const char *h = strrchr(name, '#');
	size_t n = h && strlen(h) == 9 ? (size_t)(h - name) : strlen(name);
	uint32_t hash = n < strlen(name) ? (uint32_t)strtoul(h + 1, NULL, 16) : 0;
	size_t lo = 0, hi = r->nf; /* r->f is sorted by base (finish_names) */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strncmp(r->f[mid].base, name, n);
		if (c < 0 || (c == 0 && strlen(r->f[mid].base) < n))
			lo = mid + 1;
		else
			hi = mid;
	}
	long alt = -1;
	for (size_t i = lo; i < r->nf && strlen(r->f[i].base) == n && !strncmp(r->f[i].base, name, n); i++) {
		const struct fn *f = &r->f[i];
		if (n == strlen(name) || f->hash == hash)
			return (long)i;
		for (size_t k = 0; k < f->nalt; k++)
			if (f->alt[k] == hash && alt < 0)
				alt = (long)i;
	}
	return alt;
}

static int embed(const char *binary, const char *file, char *err, size_t errlen)
{
	char add[PATH_MAX + 32];
	snprintf(add, sizeof(add), AN_SECTION "=%s", file);
	char *argv[] = { "objcopy", "--remove-section=" AN_SECTION, "--add-section", add,
			 (char *)binary, NULL };
	pid_t pid;
	int st;
	if (posix_spawnp(&pid, "objcopy", NULL, NULL, argv, environ) != 0 ||
	    waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(err, errlen, "objcopy could not add the flows to '%s'", binary);
		return -1;
	}
	return 0;
}

static int mkdirs(const char *path)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p, 0700) != 0 && errno != EEXIST)
				return -1;
			*s = '/';
		}
	return mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static int for_binary(struct run *r, const char *bin, const struct byusr *u,
		      const struct cnsmp_config *cfg)
{
	char id[130], err[PATH_MAX + 256], path[PATH_MAX];
	if (build_id(bin, id, sizeof(id), err, sizeof(err)) < 0) {
		fprintf(r->err, "codensm: %s\n", err);
		return -1;
	}
	struct inv v = { 0 };
	cnsmp_symbols_inventory_file(bin, cfg, inv_add, &v);
	/* A function split by the optimiser (.cold, .part) is listed once per
	 * piece under one name. */
	if (v.n)
		qsort(v.name, v.n, sizeof(*v.name), cmp_str);
	size_t uniq = 0;
	for (size_t i = 0; i < v.n; i++) {
		if (uniq && !strcmp(v.name[uniq - 1], v.name[i]))
			free(v.name[i]);
		else
			v.name[uniq++] = v.name[i];
	}
	v.n = uniq;
	char **names = calloc(r->nf + 1, sizeof(*names));
	size_t matched = 0;
	for (size_t i = 0; names && i < v.n; i++) {
		long k = match(r, v.name[i]);
		if (k >= 0 && !names[k]) {
			names[k] = v.name[i];
			matched++;
		} else if (r->o->verbose) {
			fprintf(r->err, "codensm: '%s': no analysis for '%s'\n", bin, v.name[i]);
		}
	}
	int rc = -1;
	if (!names || v.oom) {
		fprintf(r->err, "codensm: listing the functions of '%s': out of memory\n", bin);
		goto out;
	}
	if (v.n == 0) {
		fprintf(r->err, "codensm: no function of its own found in '%s' (built with -g?)\n", bin);
		goto out;
	}
	if (matched == 0) {
		fprintf(r->err, "codensm: none of the %zu functions of '%s' is defined in this build's sources (is it from another build?)\n",
			v.n, bin);
		goto out;
	}
	json_t *doc = json_pack("{si ss ss so}", "format", 1, "build_id", id, "binary", bin,
				"flows", flows_json(r, names, u));
	snprintf(path, sizeof(path), "%s/%s.json", r->o->out_dir, id);
	if (mkdirs(r->o->out_dir) < 0)
		fprintf(r->err, "codensm: cannot create '%s': %s\n", r->o->out_dir, strerror(errno));
	else if (write_json(doc, path, err, sizeof(err)) < 0)
		fprintf(r->err, "codensm: %s\n", err);
	else if (r->o->embed && embed(bin, path, err, sizeof(err)) < 0)
		fprintf(r->err, "codensm: %s\n", err);
	else
		rc = 0;
	json_decref(doc);
	if (rc == 0)
		fprintf(r->err, "codensm: '%s': flows of %zu of its %zu functions in %s%s\n",
			bin, matched, v.n, path, r->o->embed ? " and its " AN_SECTION " section" : "");
out:
	for (size_t i = 0; i < v.n; i++)
		free(v.name[i]);
	free(v.name);
	free(names);
	return rc;
}

/* ---- the run ------------------------------------------------------------ */

static void run_release(struct run *r)
{
	for (size_t i = 0; i < r->nf; i++) {
		struct fn *f = &r->f[i];
		for (size_t k = 0; f->callee && f->callee[k]; k++)
			free(f->callee[k]);
		free(f->callee);
		free(f->base);
		free(f->name);
		free(f->ident);
		free(f->usr);
		free(f->alt);
		an_flow_release(&f->flow);
	}
	free(r->f);
	free(r->set);
	free(r->root);
	free(r->common);
}

int an_run(const struct an_opts *o, FILE *out, FILE *err)
{
	char msg[PATH_MAX + 512], cwd[PATH_MAX];
	struct run r = { .o = o, .err = err };
	int rc = 1;
	if (!getcwd(cwd, sizeof(cwd))) {
		fprintf(err, "codensm: cannot read the current directory: %s\n", strerror(errno));
		return 1;
	}
	char *build = cnsmp_rules_absolute(cwd, o->build_dir);
	if (!build || check_database(build, msg, sizeof(msg)) < 0) {
		fprintf(err, "codensm: %s\n", build ? msg : "out of memory");
		free(build);
		return 1;
	}
	r.build = build;
	const char *sr = getenv("CODENSM_SOURCE_ROOT");
	if (sr && *sr)
		r.root = cnsmp_rules_absolute(cwd, sr);

	CXCompilationDatabase_Error dberr;
	CXCompilationDatabase db = clang_CompilationDatabase_fromDirectory(build, &dberr);
	if (dberr != CXCompilationDatabase_NoError || !db) {
		fprintf(err, "codensm: libclang cannot load '%s/compile_commands.json'\n", build);
		free(build);
		return 1;
	}
	CXIndex idx = clang_createIndex(0, 0);
	CXCompileCommands cmds = clang_CompilationDatabase_getAllCompileCommands(db);
	for (unsigned i = 0, n = clang_CompileCommands_getSize(cmds); i < n && !r.oom; i++)
		unit(&r, idx, clang_CompileCommands_getCommand(cmds, i));
	clang_CompileCommands_dispose(cmds);
	clang_disposeIndex(idx);
	clang_CompilationDatabase_dispose(db);
	if (chdir(cwd) != 0 || r.oom || finish_names(&r) < 0) {
		fprintf(err, "codensm: analysing '%s': %s\n", build, r.oom ? "out of memory" : strerror(errno));
		goto out;
	}

	if (r.nf == 0) {
		fprintf(err, "codensm: no function defined in the sources of '%s/compile_commands.json' could be analysed\n",
			build);
		goto out;
	}
	struct an_idset ids = { 0 };
	const char *troot = o->tests_dir ? o->tests_dir : r.root ? r.root : r.common;
	int tfiles = troot ? an_testscan(troot, &ids, msg, sizeof(msg)) : 0;
	if (tfiles < 0) {
		fprintf(err, "codensm: %s\n", msg);
		goto out;
	}
	for (size_t i = 0; i < r.nf; i++) {
		const char *id = r.f[i].ident[0] == '~' ? r.f[i].ident + 1 : r.f[i].ident;
		r.f[i].has_tests = an_idset_has(&ids, id);
	}
	an_idset_release(&ids);

	struct byusr *u = calloc(r.nf + 1, sizeof(*u));
	char **names = calloc(r.nf + 1, sizeof(*names));
	if (!u || !names) {
		free(u);
		free(names);
		fprintf(err, "codensm: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < r.nf; i++) {
		u[i] = (struct byusr){ r.f[i].usr, i };
		names[i] = r.f[i].name;
	}
	qsort(u, r.nf, sizeof(*u), cmp_usr);
	fprintf(err, "codensm: %zu functions in %zu compilations (%zu skipped), %d test files under '%s'\n",
		r.nf, r.units, r.failed, tfiles, troot ? troot : "");
	rc = 0;
	if (o->nbinaries == 0 || o->out_file) {
		json_t *doc = json_pack("{si so}", "format", 1, "flows", flows_json(&r, names, u));
		if (!o->out_file || !strcmp(o->out_file, "-")) {
			json_dumpf(doc, out, JSON_COMPACT);
			fputc('\n', out);
		} else if (write_json(doc, o->out_file, msg, sizeof(msg)) < 0) {
			fprintf(err, "codensm: %s\n", msg);
			rc = 1;
		}
		json_decref(doc);
	}
	if (o->nbinaries) {
		struct cnsmp_config cfg;
		fflush(err); /* the runtime logs with write(2): keep the order */
		if (cnsmp_config_load(&cfg, NULL, NULL) > 0)
			fprintf(err, "codensm: some CODENSM_* settings are malformed (named above); naming with the rest\n");
		for (size_t i = 0; i < o->nbinaries; i++)
			if (for_binary(&r, o->binaries[i], u, &cfg) < 0)
				rc = 1;
		cnsmp_config_release(&cfg);
	}
	free(u);
	free(names);
out:
	run_release(&r);
	free(build);
	return rc;
}
