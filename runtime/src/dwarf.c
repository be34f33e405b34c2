/* dwarf.c: a module's index of functions built from its DWARF, through
 * libdwfl (libdw loaded on first need: dw.h), and the symbol-table lookup
 * for code DWARF does not cover.
 *
 * Every function with code is named (module path from its source file +
 * qualified name) and its address ranges are kept, for index.c to name
 * overloads apart and sort.  One libdwfl session covers the process's
 * modules (modules.c), reported to it as they are needed.
 *
 * This file runs inside someone else's program: every libdw call is
 * checked, nothing here aborts, and it never reaches the network (no
 * debuginfod, see find_debuginfo).  symbols.c's lock guards every call. */
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw.h"
#include "internal.h"

/* libdw, once loaded (dw.h): every function below that reads DWARF is
 * reached only after need_dw() found it. */
static const struct cnsmp_dw *dw;
static Dwfl *session; /* libdwfl's view of the process, made on first need */

/* ---- naming one function ------------------------------------------------ */

/* Qualified names of the named subprogram DIEs of one CU, in DIE offset
 * order (a depth-first walk meets offsets in increasing order), so that
 * a definition can find the scopes of the declaration it points to. */
struct decl {
	Dwarf_Off off;
	char *qname;
};

/* A definition seen during the walk, named once the CU is fully read. */
struct def {
	Dwarf_Die die;
	char *scope;
};

/* Walk state for one CU. */
struct cu_walk {
	struct cnsmp_index *x;
	const char *comp_dir;
	const char *root;     /* cfg->source_root or comp_dir */
	const char *cu_name;  /* absolute */
	int cu_system;
	struct decl *d;
	size_t nd, capd;
	struct def *defs;
	size_t ndefs, capdefs;
	int oom;
};

static char *join_scope(const char *scope, const char *name)
{
	size_t n = strlen(scope) + strlen(name) + 3;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s%s%s", scope, *scope ? "::" : "", name);
	return s;
}

static const char *decl_lookup(const struct cu_walk *w, Dwarf_Off off)
{
	size_t lo = 0, hi = w->nd;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (w->d[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < w->nd && w->d[lo].off == off ? w->d[lo].qname : NULL;
}

static int has_code(Dwarf_Die *die)
{
	return dw->dwarf_hasattr(die, DW_AT_low_pc) || dw->dwarf_hasattr(die, DW_AT_ranges);
}

#define MAX_DEPTH 64 /* malformed DWARF must not exhaust the host's stack */

static void add_decl(struct cu_walk *w, Dwarf_Die *die, char *qname)
{
	if (cnsmp_grow((void **)&w->d, &w->capd, w->nd + 1, sizeof(*w->d)) < 0) {
		w->oom = 1;
		free(qname);
		return;
	}
	w->d[w->nd++] = (struct decl){ dw->dwarf_dieoffset(die), qname };
}

static void add_def(struct cu_walk *w, Dwarf_Die *die, const char *scope)
{
	char *s = strdup(scope);
	if (!s || cnsmp_grow((void **)&w->defs, &w->capdefs, w->ndefs + 1,
			     sizeof(*w->defs)) < 0) {
		w->oom = 1;
		free(s);
		return;
	}
	w->defs[w->ndefs++] = (struct def){ *die, s };
}

/* Depth-first over the scopes that can hold functions: namespaces,
 * classes, functions (local classes, lambdas) and their blocks.  Records
 * every named subprogram's qualified name and every definition with code. */
static void walk(struct cu_walk *w, Dwarf_Die *parent, const char *scope,
		 int depth)
{
	Dwarf_Die c;
	if (depth > MAX_DEPTH || dw->dwarf_child(parent, &c) != 0)
		return;
	do {
		Dwarf_Attribute a;
		const char *name = dw->dwarf_attr(&c, DW_AT_name, &a) ? dw->dwarf_formstring(&a) : NULL;
		char *inner = NULL;
		switch (dw->dwarf_tag(&c)) {
		case DW_TAG_namespace:
			inner = join_scope(scope, name ? name : "(anonymous namespace)");
			break;
		case DW_TAG_class_type:
		case DW_TAG_structure_type:
		case DW_TAG_union_type:
		case DW_TAG_interface_type:
			inner = join_scope(scope, name ? name : "<anonymous>");
			break;
		case DW_TAG_lexical_block:
			walk(w, &c, scope, depth + 1);
			continue;
		case DW_TAG_subprogram:
			if (name) {
				inner = join_scope(scope, name);
				if (inner)
					add_decl(w, &c, strdup(inner));
			}
			if (has_code(&c) && !dw->dwarf_hasattr(&c, DW_AT_declaration))
				add_def(w, &c, scope);
			if (!name && (inner = strdup(scope)) == NULL)
				w->oom = 1;
			break;
		default:
			continue;
		}
		if (inner)
			walk(w, &c, inner, depth + 1);
		else
			w->oom = 1;
		free(inner);
	} while (!w->oom && dw->dwarf_siblingof(&c, &c) == 0);
}

/* The qualified name of a definition: an out-of-line member or a concrete
 * instance of an inline function carries no scope of its own, so follow
 * DW_AT_specification / DW_AT_abstract_origin to a declaration whose
 * enclosing namespaces and classes the walk recorded. */
static char *qualified(const struct cu_walk *w, struct def *d)
{
	Dwarf_Die cur = d->die, target;
	Dwarf_Attribute a;
	for (int hop = 0; hop < 8; hop++) {
		if (!dw->dwarf_attr(&cur, DW_AT_specification, &a) &&
		    !dw->dwarf_attr(&cur, DW_AT_abstract_origin, &a))
			break;
		if (!dw->dwarf_formref_die(&a, &target))
			break;
		const char *q = decl_lookup(w, dw->dwarf_dieoffset(&target));
		if (q)
			return strdup(q);
		cur = target;
	}
	const char *q = decl_lookup(w, dw->dwarf_dieoffset(&d->die));
	if (q)
		return strdup(q);
	const char *name = dw->dwarf_diename(&d->die); /* follows the same chain */
	return name ? join_scope(d->scope, name) : NULL;
}

static char *linkage_name(Dwarf_Die *die)
{
	Dwarf_Attribute a;
	if (dw->dwarf_attr_integrate(die, DW_AT_linkage_name, &a) ||
	    dw->dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a))
		return (char *)dw->dwarf_formstring(&a);
	return NULL;
}

/* Adds the code ranges of `die` for function number `fi`; returns how
 * many.  Functions the linker dropped keep DWARF with low_pc 0 (or a
 * tombstone near ~0): those are skipped. */
static size_t add_ranges(struct cnsmp_index *x, Dwarf_Die *die, size_t fi,
			 Dwarf_Addr *first)
{
	Dwarf_Addr base, lo, hi;
	ptrdiff_t off = 0;
	size_t n = 0;
	while ((off = dw->dwarf_ranges(die, off, &base, &lo, &hi)) > 0) {
		if (lo == 0 || hi <= lo || lo >= (Dwarf_Addr)-2)
			continue;
		if (cnsmp_grow((void **)&x->r, &x->capr, x->nr + 1, sizeof(*x->r)) < 0) {
			x->partial = 1;
			break;
		}
		x->r[x->nr++] = (struct cnsmp_range){ lo, hi, fi };
		if (n++ == 0)
			*first = lo;
	}
	return n;
}

/* Names one definition and adds it with its ranges to the index. */
static void add_function(struct cu_walk *w, struct def *d)
{
	struct cnsmp_index *x = w->x;
	char *q = qualified(w, d), *abs = NULL, *modpath = NULL, *file = NULL;
	const char *decl = dw->dwarf_decl_file(&d->die);
	if (!q)
		goto out;
	if (cnsmp_grow((void **)&x->f, &x->capf, x->nf + 1, sizeof(*x->f)) < 0)
		goto oom;
	if (!decl)
		decl = w->cu_name;
	abs = cnsmp_rules_absolute(w->comp_dir, decl);
	if (!abs || cnsmp_rules_module_of(w->root, abs, &modpath, &file) < 0)
		goto oom;
	struct cnsmp_func *f = &x->f[x->nf];
	memset(f, 0, sizeof(*f));
	size_t n = strlen(modpath) + strlen(q) + 2;
	if (!(f->base = malloc(n)))
		goto oom;
	snprintf(f->base, n, "%s%s%s", modpath, *modpath ? "." : "", q);
	const char *link = linkage_name(&d->die);
	f->hash = cnsmp_hash32_str(link ? link : q);
	f->system = w->cu_system || cnsmp_rules_system_path(abs);
	f->file = file;
	file = NULL;
	if (dw->dwarf_decl_line(&d->die, &f->line) != 0)
		f->line = 0;
	Dwarf_Addr first = 0;
	if (add_ranges(x, &d->die, x->nf, &first) == 0) {
		free(f->base);
		free(f->file);
		goto out;
	}
	if (dw->dwarf_lowpc(&d->die, &f->entry) != 0 &&
	    dw->dwarf_entrypc(&d->die, &f->entry) != 0)
		f->entry = first;
	x->nf++;
	goto out;
oom:
	x->partial = 1;
out:
	free(q);
	free(abs);
	free(modpath);
	free(file);
}


/* Indexes one CU into x.  `skip_dir` is the runtime's own source folder
 * when it is linked into this module: its functions are never the user's. */
static void index_cu(struct cnsmp_index *x, Dwarf_Die *cu, const char *root,
		     const char *skip_dir)
{
	struct cu_walk w = { .x = x };
	Dwarf_Attribute a;
	w.comp_dir = dw->dwarf_attr(cu, DW_AT_comp_dir, &a) ? dw->dwarf_formstring(&a) : NULL;
	const char *name = dw->dwarf_diename(cu);
	char *cu_abs = cnsmp_rules_absolute(w.comp_dir, name ? name : "<unknown>");
	char *dir_abs = cnsmp_rules_absolute(NULL, w.comp_dir ? w.comp_dir : "/");
	size_t skip = skip_dir ? strlen(skip_dir) : 0;
	if (!cu_abs || !dir_abs) {
		x->partial = 1;
		goto out;
	}
	if (skip && !strncmp(cu_abs, skip_dir, skip) && cu_abs[skip] == '/')
		goto out;
	w.cu_name = cu_abs;
	w.root = root ? root : dir_abs;
	w.cu_system = cnsmp_rules_system_path(cu_abs);
	walk(&w, cu, "", 0);
	x->partial |= w.oom;
	for (size_t i = 0; i < w.ndefs; i++)
		add_function(&w, &w.defs[i]);
out:
	for (size_t i = 0; i < w.nd; i++)
		free(w.d[i].qname);
	for (size_t i = 0; i < w.ndefs; i++)
		free(w.defs[i].scope);
	free(w.d);
	free(w.defs);
	free(cu_abs);
	free(dir_abs);
}

/* The folder of the runtime's own sources if it is linked into `mod`
 * (statically, or `mod` is libcodensm-rt itself), found through the
 * symbol table so that a file on disk (the doctor's case) works too. */
static char *runtime_dir(Dwfl_Module *mod)
{
	int n = dw->dwfl_module_getsymtab(mod);
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr addr, bias;
		const char *s = dw->dwfl_module_getsym_info(mod, i, &sym, &addr, NULL, NULL, NULL);
		if (!s || strcmp(s, "cnsmp_symbols_resolve") ||
		    GELF_ST_TYPE(sym.st_info) != STT_FUNC)
			continue;
		Dwarf_Die *cu = dw->dwfl_module_addrdie(mod, addr, &bias);
		Dwarf_Attribute a;
		const char *name = cu ? dw->dwarf_diename(cu) : NULL;
		if (!name)
			return NULL;
		char *abs = cnsmp_rules_absolute(dw->dwarf_attr(cu, DW_AT_comp_dir, &a) ? dw->dwarf_formstring(&a) : NULL, name);
		char *slash = abs ? strrchr(abs, '/') : NULL;
		if (slash)
			*slash = '\0';
		return abs;
	}
	return NULL;
}

/* Names every function with code in `mod`'s DWARF; NULL if it has none
 * (or memory ran out: the caller falls back to the symbol table). */
static struct cnsmp_index *build_index(Dwfl_Module *mod, const char *source_root)
{
	Dwarf_Addr bias;
	if (!dw->dwfl_module_getdwarf(mod, &bias))
		return NULL;
	struct cnsmp_index *x = calloc(1, sizeof(*x));
	char *root = source_root ? cnsmp_rules_absolute(NULL, source_root) : NULL;
	char *skip = runtime_dir(mod);
	if (!x || (source_root && (!root || !(x->root = strdup(source_root))))) {
		cnsmp_index_free(x);
		x = NULL;
		goto out;
	}
	Dwarf_Die *cu = NULL;
	while ((cu = dw->dwfl_module_nextcu(mod, cu, &bias)) != NULL)
		index_cu(x, cu, root, skip);
	if (cnsmp_index_finish(x) < 0) {
		cnsmp_index_free(x);
		x = NULL;
	}
out:
	free(root);
	free(skip);
	return x;
}

/* ---- the libdwfl session (a module the cache does not hold) ------------ */

/* Under LeakSanitizer as GCC 13 and LLVM 16 and older ship it, a thread's
 * first touch of a dlopen()ed library's thread-local variables (libdw and
 * libelf keep their error codes there) can be recorded wrong: the
 * sanitizer's __tls_get_addr interceptor guesses a glibc 2.19 header in
 * front of the block whenever it starts 16 bytes into a page (see
 * google/sanitizers#1322), and the leak check at exit then crashes on the
 * bogus range, failing a program that has no leak.  The record belongs to
 * the thread, so in such a process every libdw call runs on a short-lived
 * thread that takes it away when it ends.  Elsewhere the call is direct. */
static int leak_checked(void)
{
	static int v = -1;
	if (v < 0)
		v = dlsym(RTLD_DEFAULT, "__lsan_do_leak_check") != NULL;
	return v;
}

struct dw_job {
	void (*fn)(void *);
	void *arg;
};

static void *dw_job_main(void *p)
{
	struct dw_job *j = p;
	j->fn(j->arg);
	return NULL;
}

static void in_dw_thread(void (*fn)(void *), void *arg)
{
	struct dw_job j = { fn, arg };
	pthread_t t;
	sigset_t all, old;
	if (leak_checked()) {
		/* no signal of the program's is ever handled on it */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		int rc = pthread_create(&t, NULL, dw_job_main, &j);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc == 0) {
			pthread_join(t, NULL);
			return;
		}
	}
	fn(arg);
}

/* libdwfl's standard lookup ends by asking debuginfod servers when
 * DEBUGINFOD_URLS is set: a program must never stall on a download
 * because it is being counted, so then only the file's own DWARF counts. */
static int find_debuginfo(Dwfl_Module *mod, void **ud, const char *modname,
			  Dwarf_Addr base, const char *file_name,
			  const char *debuglink_file, GElf_Word debuglink_crc,
			  char **debuginfo_file_name)
{
	const char *urls = getenv("DEBUGINFOD_URLS");
	if (urls && *urls)
		return -1;
	return dw->dwfl_standard_find_debuginfo(mod, ud, modname, base, file_name,
						debuglink_file, debuglink_crc,
						debuginfo_file_name);
}

static char *debuginfo_path; /* NULL: libdwfl's default search path */
static Dwfl_Callbacks proc_callbacks, offline_callbacks; /* need_dw fills */

static int need_dw(void)
{
	if (!dw && (dw = cnsmp_dw()) != NULL) {
		proc_callbacks = (Dwfl_Callbacks){
			.find_elf = dw->dwfl_linux_proc_find_elf,
			.find_debuginfo = find_debuginfo,
			.debuginfo_path = &debuginfo_path,
		};
		offline_callbacks = (Dwfl_Callbacks){
			.find_elf = dw->dwfl_build_id_find_elf,
			.find_debuginfo = find_debuginfo,
			.section_address = dw->dwfl_offline_section_address,
			.debuginfo_path = &debuginfo_path,
		};
	}
	return dw != NULL;
}

static void end_job(void *d)
{
	dw->dwfl_end(d);
}

static void session_end(void)
{
	if (session)
		in_dw_thread(end_job, session);
	session = NULL;
}

/* libdwfl's module for `o`, reporting every object known so far that it
 * does not have yet.  Modules are never dropped here (libdwfl refuses to
 * re-report one by file): a refresh ends the whole session. */
static Dwfl_Module *dwfl_module_of(const struct cnsmp_module *o)
{
	if (!need_dw() || (!session && !(session = dw->dwfl_begin(&proc_callbacks))))
		return NULL;
	Dwfl_Module *m = dw->dwfl_addrmodule(session, o->first);
	const char *name = m ? dw->dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL) : NULL;
	if (name && !strcmp(name, o->path))
		return m;
	dw->dwfl_report_begin_add(session);
	for (size_t i = 0; i < cnsmp_modules_count(); i++) {
		const struct cnsmp_module *k = cnsmp_modules_get(i);
		m = dw->dwfl_addrmodule(session, k->first);
		name = m ? dw->dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL) : NULL;
		if (!name || strcmp(name, k->path))
			dw->dwfl_report_elf(session, k->path, k->path, -1, k->bias, true);
	}
	if (dw->dwfl_report_end(session, NULL, NULL) != 0) {
		session_end(); /* unusable until report_end succeeds */
		return NULL;
	}
	m = dw->dwfl_addrmodule(session, o->first);
	name = m ? dw->dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL) : NULL;
	return name && !strcmp(name, o->path) ? m : NULL;
}

/* ---- the entry points ---------------------------------------------------- */

/* The index, with where its addresses lie against the load address (the
 * DWARF bias less the load bias: 0 unless a separate debug file was laid
 * out apart, as prelink did). */
struct index_job {
	const struct cnsmp_module *o;
	const char *root;
	struct cnsmp_index *x;
};

static void index_job(void *p)
{
	struct index_job *j = p;
	Dwfl_Module *mod = dwfl_module_of(j->o);
	Dwarf_Addr bias;
	j->x = mod ? build_index(mod, j->root) : NULL;
	if (j->x && dw->dwfl_module_getdwarf(mod, &bias))
		j->x->delta = (uint64_t)bias - j->o->bias;
}

CNSMP_NOINST struct cnsmp_index *cnsmp_dwarf_index(const struct cnsmp_module *o,
						   const char *root)
{
	struct index_job j = { o, root, NULL };
	in_dw_thread(index_job, &j);
	return j.x;
}


struct file_job {
	const char *path, *root;
	struct cnsmp_index *x;
};

static void file_job(void *p)
{
	struct file_job *j = p;
	Dwfl *d = need_dw() ? dw->dwfl_begin(&offline_callbacks) : NULL;
	if (!d)
		return;
	dw->dwfl_report_begin(d);
	Dwfl_Module *mod = dw->dwfl_report_offline(d, j->path, j->path, -1);
	/* libdwfl places the file somewhere; the DWARF addresses (bias 0)
	 * are the file's own */
	if (dw->dwfl_report_end(d, NULL, NULL) == 0 && mod)
		j->x = build_index(mod, j->root);
	dw->dwfl_end(d);
}

CNSMP_NOINST struct cnsmp_index *cnsmp_dwarf_index_file(const char *path,
							const char *root)
{
	struct file_job j = { path, root, NULL };
	if (path)
		in_dw_thread(file_job, &j);
	return j.x;
}

struct symtab_job {
	const struct cnsmp_module *o;
	uintptr_t addr;
	char *name;
	size_t len;
	uint64_t off;
	int found;
};

static void symtab_job(void *p)
{
	struct symtab_job *j = p;
	Dwfl_Module *mod = dwfl_module_of(j->o);
	GElf_Sym sym;
	GElf_Off off = 0;
	const char *s = mod ? dw->dwfl_module_addrinfo(mod, j->addr, &off, &sym,
						      NULL, NULL, NULL) : NULL;
	int type = s ? GELF_ST_TYPE(sym.st_info) : STT_NOTYPE;
	/* only a function symbol that holds addr names code: the nearest
	 * marker (__executable_start, _end) says nothing about it */
	if (s && *s && (type == STT_FUNC || type == STT_GNU_IFUNC) &&
	    (sym.st_size == 0 || off < sym.st_size)) {
		snprintf(j->name, j->len, "%s", s);
		j->off = off;
		j->found = 1;
	}
}

CNSMP_NOINST int cnsmp_dwarf_symbol(const struct cnsmp_module *m, uintptr_t addr,
				    char *name, size_t len, uint64_t *off)
{
	struct symtab_job j = { m, addr, name, len, 0, 0 };
	in_dw_thread(symtab_job, &j);
	*off = j.off;
	return j.found ? 0 : -1;
}

CNSMP_NOINST void cnsmp_dwarf_end(void)
{
	session_end();
}
