/* analyze.c: `codensm analyze`: every function defined in a build's
 * sources (libclang over BUILD_DIR/compile_commands.json), named exactly
 * as the runtime names it (rules.c), with its flow (cfg.c), callees and
 * has_tests verdict (testscan.c); output.c writes them, for the whole
 * build or per binary by build-id (docs/flows.md). */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <clang-c/CXCompilationDatabase.h>

#include "build.h"

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
	struct an_build *r;
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
static void add_hashes(struct an_fn *f, CXCursor c, const char *q)
{
	char *m = str(clang_Cursor_getMangling(c));
	f->hash = cnsmp_hash32_str(m && *m ? m : q);
	CXStringSet *all = clang_Cursor_getCXXManglings(c);
	if (all) {
		f->alt = calloc(all->Count ? all->Count : 1, sizeof(*f->alt));
		for (unsigned i = 0; f->alt && i < all->Count; i++) {
			const char *a = clang_getCString(all->Strings[i]);
			f->alt[f->nalt++] = cnsmp_hash32_str(a);
			if (m && a && base_variant(m, a))
				f->hash = cnsmp_hash32_str(a);
		}
		clang_disposeStringSet(all);
	}
	free(m);
}

/* The USRs of the functions analysed so far (headers' functions recur in
 * every unit that includes them): an open-addressed table of indexes into
 * r->f, so a large build stays linear. */
static int usr_seen(const struct an_build *r, const char *usr)
{
	if (!r->capset)
		return 0;
	size_t h = cnsmp_hash_str(usr) & (r->capset - 1);
	for (; r->set[h] != (size_t)-1; h = (h + 1) & (r->capset - 1))
		if (!strcmp(r->f[r->set[h]].usr, usr))
			return 1;
	return 0;
}

static void usr_put(size_t *t, size_t cap, const char *usr, size_t i)
{
	size_t h = cnsmp_hash_str(usr) & (cap - 1);
	while (t[h] != (size_t)-1)
		h = (h + 1) & (cap - 1);
	t[h] = i;
}

/* Adds function i (filled in) to the table; 0 or -1. */
static int usr_add(struct an_build *r, size_t i)
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
	struct an_build *r = w->r;
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
	    !(q = qualified(c)) || cnsmp_grow((void **)&r->f, &r->capf, r->nf + 1, sizeof(*r->f)) < 0) {
		r->oom = 1;
		goto out;
	}
	struct an_fn *f = &r->f[r->nf];
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

static void unit(struct an_build *r, CXIndex idx, CXCompileCommand cmd)
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
		char *msg = str(clang_getDiagnosticSpelling(dg));
		/* a GCC option clang does not know (-fipa-pta) changes no parse */
		int gcc_only = msg && !strncmp(msg, "unknown argument", 16);
		if (clang_getDiagnosticSeverity(dg) >= CXDiagnostic_Error && !gcc_only && !fatal++) {
			free(msg);
			msg = str(clang_formatDiagnostic(dg, clang_defaultDiagnosticDisplayOptions()));
			fprintf(r->err, "codensm: '%s' has errors; its flows may be incomplete: %s\n",
				abs, msg ? msg : "");
		}
		free(msg);
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
	const struct an_fn *x = a, *y = b;
	int c = strcmp(x->base, y->base);
	return c ? c : (x->hash > y->hash) - (x->hash < y->hash);
}

/* Overloads within the build get "#hash", as symbols.c's finish_names
 * does within one binary (matching a binary re-checks: see for_binary). */
static int finish_names(struct an_build *r)
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

int an_cmp_usr(const void *a, const void *b)
{
	return strcmp(((const struct an_byusr *)a)->usr, ((const struct an_byusr *)b)->usr);
}

/* ---- the run ------------------------------------------------------------ */

static void run_release(struct an_build *r)
{
	for (size_t i = 0; i < r->nf; i++) {
		struct an_fn *f = &r->f[i];
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
	struct an_build r = { .o = o, .err = err };
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

	struct an_byusr *u = calloc(r.nf + 1, sizeof(*u));
	char **names = calloc(r.nf + 1, sizeof(*names));
	if (!u || !names) {
		free(u);
		free(names);
		fprintf(err, "codensm: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < r.nf; i++) {
		u[i] = (struct an_byusr){ r.f[i].usr, i };
		names[i] = r.f[i].name;
	}
	qsort(u, r.nf, sizeof(*u), an_cmp_usr);
	fprintf(err, "codensm: %zu functions in %zu compilations (%zu skipped), %d test files under '%s'\n",
		r.nf, r.units, r.failed, tfiles, troot ? troot : "");
	rc = 0;
	if (o->nbinaries == 0 || o->out_file) {
		json_t *doc = json_pack("{si so}", "format", 1, "flows", an_flows_json(&r, names, u));
		if (!o->out_file || !strcmp(o->out_file, "-")) {
			json_dumpf(doc, out, JSON_COMPACT);
			fputc('\n', out);
		} else if (an_write_json(doc, o->out_file, msg, sizeof(msg)) < 0) {
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
			if (an_binary(&r, o->binaries[i], u, &cfg) < 0)
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
