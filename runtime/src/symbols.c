/* symbols.c: addresses in this process (or functions in an ELF file) to
 * stable names, source files and lines, read from DWARF through libdwfl.
 *
 * Each ELF module is indexed once, on first need: every function with
 * code is named (module path from its source file + qualified name) and
 * its address ranges are sorted, so a lookup is a binary search and two
 * overloads that would share a name are told apart by a hash of their
 * linkage names, which needs the whole module in view.  The index lives
 * in the module's libdwfl user data; the session is rebuilt on refresh.
 *
 * This file runs inside someone else's program: every libdw call is
 * checked, nothing here aborts, and it never reaches the network (no
 * debuginfod, see find_debuginfo).  One mutex guards the whole session. */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <gelf.h>
#include <inttypes.h>
#include <link.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* ---- paths ------------------------------------------------------------- */

/* Lexically normalised absolute path of `file`, taken relative to `dir`
 * when it is relative ("a/./b/../c.c" -> "/dir/a/c.c").  No symlinks are
 * followed: the build machine's paths need not exist here. */
static char *absolute(const char *dir, const char *file)
{
	size_t n = strlen(file) + (dir ? strlen(dir) : 0) + 3;
	char *in = malloc(n), *out = malloc(n);
	if (!in || !out) {
		free(in);
		free(out);
		return NULL;
	}
	snprintf(in, n, "%s/%s", file[0] == '/' || !dir ? "" : dir, file);
	size_t o = 0;
	for (char *p = in, *next; *p; p = next) {
		while (*p == '/')
			p++;
		next = p + strcspn(p, "/");
		size_t len = (size_t)(next - p);
		if (len == 0 || (len == 1 && p[0] == '.'))
			continue;
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[--o] != '/')
				;
			continue;
		}
		out[o++] = '/';
		memcpy(out + o, p, len);
		o += len;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	free(in);
	return out;
}

/* Headers and code that come with the compiler or the system: functions
 * declared there are library code the user did not write. */
static int system_path(const char *abs)
{
	static const char *const roots[] = {
		"/usr/include/", "/usr/local/include/", "/usr/lib/",
		"/usr/lib64/", "/usr/libexec/", "/usr/local/lib/",
		"/usr/src/", "/usr/share/", "/opt/rh/", "/gnu/store/",
		"/nix/store/",
	};
	for (size_t i = 0; i < sizeof(roots) / sizeof(*roots); i++)
		if (!strncmp(abs, roots[i], strlen(roots[i])))
			return 1;
	return abs[0] == '<'; /* "<built-in>", "<artificial>" */
}

/* The name's module part and the reported file for a source file: inside
 * the root, the path relative to it; outside, the absolute path, whose
 * components (minus the leading '/') still make a stable module path. */
static int module_of(const char *root, const char *abs, char **modpath,
		     char **file)
{
	size_t n = strlen(root);
	const char *rel = NULL;
	if (!strcmp(root, "/"))
		rel = abs + 1;
	else if (!strncmp(abs, root, n) && abs[n] == '/')
		rel = abs + n + 1;
	*modpath = cnsmp_rules_module_path(rel ? rel : abs + 1);
	*file = strdup(rel ? rel : abs);
	if (!*modpath || !*file) {
		free(*modpath);
		free(*file);
		*modpath = *file = NULL; /* the caller frees them too */
		return -1;
	}
	return 0;
}

/* ---- the per-module index ---------------------------------------------- */

CNSMP_NOINST void cnsmp_index_free(struct cnsmp_index *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->nf; i++) {
		free(x->f[i].name);
		free(x->f[i].file);
		free(x->f[i].base);
	}
	free(x->f);
	free(x->r);
	free(x->root);
	free(x);
}

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

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

/* Grows *arr (of *cap elements of `size`) to hold n+1; 0 or -1. */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	void *p = realloc(*arr, c * size);
	if (!p)
		return -1;
	*arr = p;
	*cap = c;
	return 0;
}

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
	return dwarf_hasattr(die, DW_AT_low_pc) || dwarf_hasattr(die, DW_AT_ranges);
}

#define MAX_DEPTH 64 /* malformed DWARF must not exhaust the host's stack */

static void add_decl(struct cu_walk *w, Dwarf_Die *die, char *qname)
{
	if (grow((void **)&w->d, &w->capd, w->nd, sizeof(*w->d)) < 0) {
		w->oom = 1;
		free(qname);
		return;
	}
	w->d[w->nd++] = (struct decl){ dwarf_dieoffset(die), qname };
}

static void add_def(struct cu_walk *w, Dwarf_Die *die, const char *scope)
{
	char *s = strdup(scope);
	if (!s || grow((void **)&w->defs, &w->capdefs, w->ndefs,
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
	if (depth > MAX_DEPTH || dwarf_child(parent, &c) != 0)
		return;
	do {
		Dwarf_Attribute a;
		const char *name = dwarf_attr(&c, DW_AT_name, &a) ? dwarf_formstring(&a) : NULL;
		char *inner = NULL;
		switch (dwarf_tag(&c)) {
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
			if (has_code(&c) && !dwarf_hasattr(&c, DW_AT_declaration))
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
	} while (!w->oom && dwarf_siblingof(&c, &c) == 0);
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
		if (!dwarf_attr(&cur, DW_AT_specification, &a) &&
		    !dwarf_attr(&cur, DW_AT_abstract_origin, &a))
			break;
		if (!dwarf_formref_die(&a, &target))
			break;
		const char *q = decl_lookup(w, dwarf_dieoffset(&target));
		if (q)
			return strdup(q);
		cur = target;
	}
	const char *q = decl_lookup(w, dwarf_dieoffset(&d->die));
	if (q)
		return strdup(q);
	const char *name = dwarf_diename(&d->die); /* follows the same chain */
	return name ? join_scope(d->scope, name) : NULL;
}

static char *linkage_name(Dwarf_Die *die)
{
	Dwarf_Attribute a;
	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &a) ||
	    dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a))
		return (char *)dwarf_formstring(&a);
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
	while ((off = dwarf_ranges(die, off, &base, &lo, &hi)) > 0) {
		if (lo == 0 || hi <= lo || lo >= (Dwarf_Addr)-2)
			continue;
		if (grow((void **)&x->r, &x->capr, x->nr, sizeof(*x->r)) < 0) {
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
	const char *decl = dwarf_decl_file(&d->die);
	if (!q)
		goto out;
	if (grow((void **)&x->f, &x->capf, x->nf, sizeof(*x->f)) < 0)
		goto oom;
	if (!decl)
		decl = w->cu_name;
	abs = absolute(w->comp_dir, decl);
	if (!abs || module_of(w->root, abs, &modpath, &file) < 0)
		goto oom;
	struct cnsmp_func *f = &x->f[x->nf];
	memset(f, 0, sizeof(*f));
	size_t n = strlen(modpath) + strlen(q) + 2;
	if (!(f->base = malloc(n)))
		goto oom;
	snprintf(f->base, n, "%s%s%s", modpath, *modpath ? "." : "", q);
	const char *link = linkage_name(&d->die);
	f->hash = fnv1a(link ? link : q);
	f->system = w->cu_system || system_path(abs);
	f->file = file;
	file = NULL;
	if (dwarf_decl_line(&d->die, &f->line) != 0)
		f->line = 0;
	Dwarf_Addr first = 0;
	if (add_ranges(x, &d->die, x->nf, &first) == 0) {
		free(f->base);
		free(f->file);
		goto out;
	}
	if (dwarf_lowpc(&d->die, &f->entry) != 0 &&
	    dwarf_entrypc(&d->die, &f->entry) != 0)
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

static int cmp_base(const void *a, const void *b)
{
	const struct cnsmp_func *fa = *(struct cnsmp_func *const *)a, *fb = *(struct cnsmp_func *const *)b;
	return strcmp(fa->base, fb->base);
}

static int cmp_range(const void *a, const void *b)
{
	const struct cnsmp_range *ra = a, *rb = b;
	return ra->low < rb->low ? -1 : ra->low > rb->low;
}

/* Overloads (same qualified name, different linkage names) get "#" and
 * the linkage name's hash, all of them, so no name depends on which
 * overload happens to be called first.  Copies of one function (an inline
 * emitted in several units) share a linkage name and keep the plain name. */
static int finish_names(struct cnsmp_index *x)
{
	struct cnsmp_func **by = malloc((x->nf ? x->nf : 1) * sizeof(*by));
	if (!by)
		return -1;
	for (size_t i = 0; i < x->nf; i++)
		by[i] = &x->f[i];
	qsort(by, x->nf, sizeof(*by), cmp_base);
	for (size_t i = 0, j; i < x->nf; i = j) {
		int differ = 0;
		for (j = i + 1; j < x->nf && !strcmp(by[i]->base, by[j]->base); j++)
			differ |= by[j]->hash != by[i]->hash;
		for (size_t k = i; k < j; k++) {
			struct cnsmp_func *f = by[k];
			size_t n = strlen(f->base) + 10;
			if (!(f->name = malloc(n))) {
				x->partial = 1;
				continue;
			}
			if (differ)
				snprintf(f->name, n, "%s#%08" PRIx32, f->base, f->hash);
			else
				memcpy(f->name, f->base, n - 9);
		}
	}
	free(by);
	for (size_t i = 0; i < x->nf; i++) {
		free(x->f[i].base);
		x->f[i].base = NULL;
		x->user |= !x->f[i].system && x->f[i].name;
	}
	if (x->nr) /* a module without functions has no array to sort */
		qsort(x->r, x->nr, sizeof(*x->r), cmp_range);
	return 0;
}

/* Indexes one CU into x.  `skip_dir` is the runtime's own source folder
 * when it is linked into this module: its functions are never the user's. */
static void index_cu(struct cnsmp_index *x, Dwarf_Die *cu, const char *root,
		     const char *skip_dir)
{
	struct cu_walk w = { .x = x };
	Dwarf_Attribute a;
	w.comp_dir = dwarf_attr(cu, DW_AT_comp_dir, &a) ? dwarf_formstring(&a) : NULL;
	const char *name = dwarf_diename(cu);
	char *cu_abs = absolute(w.comp_dir, name ? name : "<unknown>");
	char *dir_abs = absolute(NULL, w.comp_dir ? w.comp_dir : "/");
	size_t skip = skip_dir ? strlen(skip_dir) : 0;
	if (!cu_abs || !dir_abs) {
		x->partial = 1;
		goto out;
	}
	if (skip && !strncmp(cu_abs, skip_dir, skip) && cu_abs[skip] == '/')
		goto out;
	w.cu_name = cu_abs;
	w.root = root ? root : dir_abs;
	w.cu_system = system_path(cu_abs);
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
	int n = dwfl_module_getsymtab(mod);
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr addr, bias;
		const char *s = dwfl_module_getsym_info(mod, i, &sym, &addr, NULL, NULL, NULL);
		if (!s || strcmp(s, "cnsmp_symbols_resolve") ||
		    GELF_ST_TYPE(sym.st_info) != STT_FUNC)
			continue;
		Dwarf_Die *cu = dwfl_module_addrdie(mod, addr, &bias);
		Dwarf_Attribute a;
		const char *name = cu ? dwarf_diename(cu) : NULL;
		if (!name)
			return NULL;
		char *abs = absolute(dwarf_attr(cu, DW_AT_comp_dir, &a) ? dwarf_formstring(&a) : NULL, name);
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
	if (!dwfl_module_getdwarf(mod, &bias))
		return NULL;
	struct cnsmp_index *x = calloc(1, sizeof(*x));
	char *root = source_root ? absolute(NULL, source_root) : NULL;
	char *skip = runtime_dir(mod);
	if (!x || (source_root && (!root || !(x->root = strdup(source_root))))) {
		cnsmp_index_free(x);
		x = NULL;
		goto out;
	}
	Dwarf_Die *cu = NULL;
	while ((cu = dwfl_module_nextcu(mod, cu, &bias)) != NULL)
		index_cu(x, cu, root, skip);
	if (finish_names(x) < 0) {
		cnsmp_index_free(x);
		x = NULL;
	}
out:
	free(root);
	free(skip);
	return x;
}

/* The function whose code holds DWARF address `a`, or NULL. */
static const struct cnsmp_func *index_find(const struct cnsmp_index *x, Dwarf_Addr a)
{
	size_t lo = 0, hi = x->nr;
	while (lo < hi) { /* first range with low > a */
		size_t mid = (lo + hi) / 2;
		if (x->r[mid].low <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || a >= x->r[lo - 1].high)
		return NULL;
	const struct cnsmp_func *f = &x->f[x->r[lo - 1].func];
	return f->name ? f : NULL;
}

/* ---- the process session ----------------------------------------------- */

/* Per module (libdwfl user data): its index, built on first need. */
struct modinfo {
	struct cnsmp_index *x;
	int indexed;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static Dwfl *session;

/* Modules already inventoried, by name and address range; kept across
 * sessions so a refresh does not report the same functions again. */
struct seen {
	char *name;
	Dwarf_Addr start, end;
};
static struct seen *seen;
static size_t nseen, capseen;

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
	return dwfl_standard_find_debuginfo(mod, ud, modname, base, file_name,
					    debuglink_file, debuglink_crc,
					    debuginfo_file_name);
}

static char *debuginfo_path; /* NULL: libdwfl's default search path */
static const Dwfl_Callbacks proc_callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

static void modinfo_free(struct modinfo *mi)
{
	if (mi) {
		cnsmp_index_free(mi->x);
		free(mi);
	}
}

static int free_cb(Dwfl_Module *mod, void **ud, const char *name,
		   Dwarf_Addr start, void *arg)
{
	modinfo_free(*ud);
	*ud = NULL;
	return DWARF_CB_OK;
}

static void session_end(void)
{
	if (!session)
		return;
	dwfl_getmodules(session, free_cb, NULL, 0);
	dwfl_end(session);
	session = NULL;
}

/* The loaded objects, from the dynamic loader rather than /proc/self/maps:
 * libelf maps the files it reads, and those mappings would show up in the
 * maps as more copies of the program and its libraries. */
struct obj {
	char *path;
	Dwarf_Addr bias, first; /* load bias, lowest mapped address */
};
struct objs {
	struct obj *v;
	size_t n, cap;
};

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct objs *o = arg;
	char exe[4096];
	const char *name = info->dlpi_name;
	if (!name || !*name) { /* the program itself */
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return 0;
		exe[n] = '\0';
		name = exe;
	} else if (!strchr(name, '/')) {
		return 0; /* the vDSO: no file behind it */
	}
	Dwarf_Addr first = (Dwarf_Addr)-1;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_LOAD &&
		    info->dlpi_addr + info->dlpi_phdr[i].p_vaddr < first)
			first = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
	char *path = strdup(name);
	if (!path || first == (Dwarf_Addr)-1 ||
	    grow((void **)&o->v, &o->cap, o->n, sizeof(*o->v)) < 0) {
		free(path);
		return 0;
	}
	o->v[o->n++] = (struct obj){ path, info->dlpi_addr, first };
	return 0;
}

/* Adds the objects loaded since the last report.  Modules are never
 * dropped here (libdwfl refuses to re-report one by file): after a
 * dlclose the caller ends the whole session (cnsmp_symbols_refresh). */
static void report(void)
{
	struct objs o = { 0 };
	dl_iterate_phdr(phdr_cb, &o);
	if (!session && !(session = dwfl_begin(&proc_callbacks)))
		goto out;
	for (size_t i = 0; i < o.n; i++) { /* known already? */
		Dwfl_Module *m = dwfl_addrmodule(session, o.v[i].first);
		const char *name = m ? dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL) : NULL;
		if (name && !strcmp(name, o.v[i].path)) {
			free(o.v[i].path);
			o.v[i].path = NULL;
		}
	}
	dwfl_report_begin_add(session);
	for (size_t i = 0; i < o.n; i++)
		if (o.v[i].path)
			dwfl_report_elf(session, o.v[i].path, o.v[i].path, -1,
					o.v[i].bias, true);
	if (dwfl_report_end(session, NULL, NULL) != 0)
		session_end(); /* unusable until report_end succeeds */
out:
	for (size_t i = 0; i < o.n; i++)
		free(o.v[i].path);
	free(o.v);
}

/* A fork() while another thread indexes must not leave the child with a
 * lock nobody will release. */
static void lock_session(void) { pthread_mutex_lock(&lock); }
static void unlock_session(void) { pthread_mutex_unlock(&lock); }
static void setup(void) { pthread_atfork(lock_session, unlock_session, unlock_session); }

static void enter(void)
{
	pthread_once(&once, setup);
	lock_session();
}

/* The cache file of `mod`'s index: the module's build-id (the DWARF it
 * was made from), then a hash of what else the names depend on: the source
 * root and the runtime itself (another build may name differently).  -1
 * when either has no build-id: nothing would then tell a stale file. */
static int cache_key(Dwfl_Module *mod, const char *root, char *out, size_t len)
{
	const unsigned char *id, *self;
	GElf_Addr vaddr;
	int n = dwfl_module_build_id(mod, &id, &vaddr);
	Dwfl_Module *me = dwfl_addrmodule(session, (Dwarf_Addr)(uintptr_t)&cnsmp_symbols_resolve);
	int m = me ? dwfl_module_build_id(me, &self, &vaddr) : -1;
	if (n <= 0 || m <= 0 || (size_t)n * 2 + 22 > len)
		return -1;
	uint64_t h = 1469598103934665603u;
	for (int i = 0; i < m; i++)
		h = (h ^ self[i]) * 1099511628211u;
	for (const char *p = root ? root : ""; ; p++) { /* with its NUL */
		h = (h ^ (unsigned char)*p) * 1099511628211u;
		if (!*p)
			break;
	}
	for (int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
	snprintf(out + 2 * n, len - 2 * (size_t)n, "-%016" PRIx64 ".idx", h);
	return 0;
}

/* The index from the cache if it holds this module's, else from DWARF
 * (and then written to the cache for the next run). */
static struct cnsmp_index *load_or_build(Dwfl_Module *mod, const struct cnsmp_config *cfg)
{
	const char *root = cfg ? cfg->source_root : NULL;
	const char *dir = cfg ? cfg->symbol_cache : NULL;
	const char *name = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	char key[192];
	struct cnsmp_index *x;
	if (!dir || cache_key(mod, root, key, sizeof key) != 0) {
		if ((x = build_index(mod, root)) != NULL)
			cnsmp_log(CNSMP_LOG_DEBUG, "symbols of %s: %zu functions from DWARF%s",
				  name ? name : "?", x->nf, dir ? " (no build-id: not cached)" : "");
		return x;
	}
	/* A file there but refused (damaged, cut short, of another format,
	 * or memory ran out reading it) is written again below; the debug
	 * line says so, so that a cache that never sticks can be told from a
	 * cold one. */
	int refused;
	x = cnsmp_symcache_load(dir, key, root, &refused);
	if (x) {
		cnsmp_log(CNSMP_LOG_DEBUG, "symbols of %s: %zu functions from %s/%s",
			  name ? name : "?", x->nf, dir, key);
		return x;
	}
	x = build_index(mod, root);
	if (!x)
		return NULL;
	if (x->partial) /* memory ran out: this run's names only */
		cnsmp_log(CNSMP_LOG_DEBUG, "symbols of %s: %zu functions from DWARF, not all (out of memory): not cached",
			  name ? name : "?", x->nf);
	else if (cnsmp_symcache_store(dir, key, x) == 0)
		cnsmp_log(CNSMP_LOG_DEBUG, "symbols of %s: %zu functions from DWARF, kept in %s/%s%s",
			  name ? name : "?", x->nf, dir, key,
			  refused ? " (the file there could not be used: replaced)" : "");
	else
		cnsmp_log(CNSMP_LOG_DEBUG, "symbols of %s: %zu functions from DWARF; cannot write %s/%s: %s",
			  name ? name : "?", x->nf, dir, key, strerror(errno));
	return x;
}

static struct cnsmp_index *module_index(Dwfl_Module *mod, const struct cnsmp_config *cfg)
{
	const char *source_root = cfg ? cfg->source_root : NULL;
	void **ud;
	if (!dwfl_module_info(mod, &ud, NULL, NULL, NULL, NULL, NULL, NULL))
		return NULL;
	struct modinfo *mi = *ud;
	if (!mi && !(mi = *ud = calloc(1, sizeof(*mi))))
		return NULL;
	const char *had = mi->x ? mi->x->root : NULL;
	if (mi->x && (had ? !source_root || strcmp(had, source_root) : !!source_root)) {
		cnsmp_index_free(mi->x); /* named under another source root */
		mi->x = NULL;
		mi->indexed = 0;
	}
	if (!mi->indexed) {
		mi->x = load_or_build(mod, cfg);
		mi->indexed = 1;
	}
	return mi->x;
}

/* "libfoo" for /usr/lib/libfoo.so.1, "app" for ./app: the module's file
 * name up to its first dot, since dots separate name components. */
static void module_base(const char *path, char *out, size_t len)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	size_t n = 1 + strcspn(b + (*b != '\0'), ".");
	if (!*b)
		b = "unknown", n = 7;
	snprintf(out, len, "%.*s", (int)n, b);
}

/* ---- resolve ------------------------------------------------------------ */

static int set_names(struct cnsmp_fninfo *out, const char *name,
		     const char *file)
{
	out->name = strdup(name);
	out->file = file ? strdup(file) : NULL;
	return out->name && (!file || out->file) ? 0 : -1;
}

/* Without DWARF: the symbol table, then "module+0xoffset", which at least
 * stays the same from run to run of the same build. */
static int resolve_symtab(Dwfl_Module *mod, uintptr_t addr, const char *path,
			  Dwarf_Addr start, struct cnsmp_fninfo *out)
{
	char base[128], name[512];
	GElf_Sym sym;
	GElf_Off off = 0;
	module_base(path, base, sizeof(base));
	out->system = system_path(path);
	const char *s = dwfl_module_addrinfo(mod, addr, &off, &sym, NULL, NULL, NULL);
	int type = s ? GELF_ST_TYPE(sym.st_info) : STT_NOTYPE;
	/* only a function symbol that holds addr names code: the nearest
	 * marker (__executable_start, _end) says nothing about it */
	if (s && *s && (type == STT_FUNC || type == STT_GNU_IFUNC) &&
	    (sym.st_size == 0 || off < sym.st_size)) {
		snprintf(name, sizeof(name), "%s.%s", base, s);
		out->entry = addr - off;
		return set_names(out, name, NULL);
	}
	snprintf(name, sizeof(name), "%s+0x%" PRIxPTR, base, addr - (uintptr_t)start);
	out->entry = addr;
	return set_names(out, name, NULL) < 0 ? -1 : 1;
}

static int resolve_in(Dwfl_Module *mod, uintptr_t addr,
		      const struct cnsmp_config *cfg, struct cnsmp_fninfo *out)
{
	Dwarf_Addr start = 0, bias = 0;
	const char *path = dwfl_module_info(mod, NULL, &start, NULL, NULL, NULL, NULL, NULL);
	if (!path)
		path = "unknown";
	if (!(out->module = strdup(path)))
		return -1;
	struct cnsmp_index *x = module_index(mod, cfg);
	const struct cnsmp_func *f = NULL;
	if (x && dwfl_module_getdwarf(mod, &bias))
		f = index_find(x, addr - bias);
	if (!f)
		return resolve_symtab(mod, addr, path, start, out);
	out->line = f->line;
	out->system = f->system;
	out->entry = (uintptr_t)(f->entry + bias);
	return set_names(out, f->name, f->file);
}

CNSMP_NOINST int cnsmp_symbols_resolve(uintptr_t addr,
				       const struct cnsmp_config *cfg,
				       struct cnsmp_fninfo *out)
{
	memset(out, 0, sizeof(*out));
	enter();
	if (!session)
		report();
	Dwfl_Module *mod = session ? dwfl_addrmodule(session, addr) : NULL;
	if (!mod) { /* perhaps dlopen'ed since the last report */
		report();
		mod = session ? dwfl_addrmodule(session, addr) : NULL;
	}
	int rc;
	if (mod) {
		rc = resolve_in(mod, addr, cfg, out);
	} else {
		char name[64];
		snprintf(name, sizeof(name), "unknown+0x%" PRIxPTR, addr);
		out->entry = addr;
		rc = set_names(out, name, NULL) < 0 ? -1 : 1;
	}
	unlock_session();
	if (rc < 0)
		cnsmp_fninfo_release(out);
	return rc;
}

CNSMP_NOINST void cnsmp_fninfo_release(struct cnsmp_fninfo *fi)
{
	if (!fi)
		return;
	free(fi->name);
	free(fi->file);
	free(fi->module);
	memset(fi, 0, sizeof(*fi));
}

/* ---- inventory ---------------------------------------------------------- */

/* Functions gathered under the lock and reported after it is released,
 * so the callback may call back into this file. */
struct fnlist {
	struct cnsmp_fninfo *v;
	size_t n, cap;
	const struct cnsmp_config *cfg;
};

static void collect(struct fnlist *l, const struct cnsmp_index *x, Dwarf_Addr bias,
		    const char *module)
{
	for (size_t i = 0; i < x->nf; i++) {
		const struct cnsmp_func *f = &x->f[i];
		if (!f->name || grow((void **)&l->v, &l->cap, l->n, sizeof(*l->v)) < 0)
			continue;
		struct cnsmp_fninfo *fi = &l->v[l->n];
		memset(fi, 0, sizeof(*fi));
		fi->line = f->line;
		fi->system = f->system;
		fi->entry = (uintptr_t)(f->entry + bias);
		if (set_names(fi, f->name, f->file) < 0 || !(fi->module = strdup(module)))
			cnsmp_fninfo_release(fi);
		else
			l->n++;
	}
}

static size_t deliver(struct fnlist *l, cnsmp_inventory_cb cb, void *arg)
{
	for (size_t i = 0; i < l->n; i++) {
		if (cb)
			cb(&l->v[i], arg);
		cnsmp_fninfo_release(&l->v[i]);
	}
	free(l->v);
	return l->n;
}

/* Only objects that carry their own .debug_info can hold the user's code
 * (built with -g); checking the section table first spares loading the
 * separate debug files of libc, libstdc++ or ld.so, if installed. */
static int has_own_debug_info(Elf *elf)
{
	size_t shstrndx;
	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return 0;
	for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn)) != NULL;) {
		GElf_Shdr sh;
		const char *n = gelf_getshdr(scn, &sh)
					? elf_strptr(elf, shstrndx, sh.sh_name) : NULL;
		if (n && (!strcmp(n, ".debug_info") || !strcmp(n, ".zdebug_info")))
			return 1;
	}
	return 0;
}

/* The program itself (it has an interpreter), or a library that calls the
 * hooks (they are undefined among its dynamic symbols).  A sanitizer's
 * runtime (libasan, libubsan) comes with its own .debug_info and sources
 * under no system folder, but it is not the user's code: it is not
 * instrumented, so none of its functions is ever called through a hook,
 * and an ASan build would list its 3,700 functions as never used. */
static int calls_hooks(Elf *elf)
{
	size_t nph;
	GElf_Phdr ph;
	if (elf_getphdrnum(elf, &nph) == 0)
		for (size_t i = 0; i < nph; i++)
			if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_INTERP)
				return 1;
	for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn)) != NULL;) {
		GElf_Shdr sh;
		Elf_Data *d;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize ||
		    !(d = elf_getdata(scn, NULL)))
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *n;
			if (gelf_getsym(d, (int)i, &sym) && sym.st_shndx == SHN_UNDEF &&
			    (n = elf_strptr(elf, sh.sh_link, sym.st_name)) &&
			    !strcmp(n, "__cyg_profile_func_enter"))
				return 1;
		}
	}
	return 0;
}

static int user_module(Dwfl_Module *mod)
{
	GElf_Addr bias;
	Elf *elf = dwfl_module_getelf(mod, &bias);
	return elf && has_own_debug_info(elf) && calls_hooks(elf);
}

/* Marks a module as inventoried; 0 if it was already. */
static int first_time(const char *name, Dwarf_Addr start, Dwarf_Addr end)
{
	for (size_t i = 0; i < nseen; i++)
		if (seen[i].start == start && seen[i].end == end &&
		    !strcmp(seen[i].name, name))
			return 0;
	char *copy = strdup(name);
	if (!copy || grow((void **)&seen, &capseen, nseen, sizeof(*seen)) < 0) {
		free(copy);
		return 1; /* may be reported twice later: better than never */
	}
	seen[nseen++] = (struct seen){ copy, start, end };
	return 1;
}

static int inventory_module(Dwfl_Module *mod, void **ud, const char *name,
			    Dwarf_Addr start, void *arg)
{
	struct fnlist *l = arg;
	Dwarf_Addr end = 0, bias = 0;
	if (!name || !dwfl_module_info(mod, NULL, NULL, &end, NULL, NULL, NULL, NULL) ||
	    !first_time(name, start, end) || !user_module(mod))
		return DWARF_CB_OK;
	struct cnsmp_index *x = module_index(mod, l->cfg);
	if (x && x->user && dwfl_module_getdwarf(mod, &bias))
		collect(l, x, bias, name);
	return DWARF_CB_OK;
}

CNSMP_NOINST size_t cnsmp_symbols_inventory(const struct cnsmp_config *cfg,
					    cnsmp_inventory_cb cb, void *arg)
{
	struct fnlist l = { .cfg = cfg };
	enter();
	report();
	if (session)
		dwfl_getmodules(session, inventory_module, &l, 0);
	unlock_session();
	return deliver(&l, cb, arg);
}

/* The doctor's view of a file on disk: entries are the file's own
 * addresses (its DWARF's), wherever libdwfl chose to place it. */
CNSMP_NOINST size_t cnsmp_symbols_inventory_file(const char *path,
						 const struct cnsmp_config *cfg,
						 cnsmp_inventory_cb cb, void *arg)
{
	static const Dwfl_Callbacks offline = {
		.find_elf = dwfl_build_id_find_elf,
		.find_debuginfo = find_debuginfo,
		.section_address = dwfl_offline_section_address,
		.debuginfo_path = &debuginfo_path,
	};
	struct fnlist l = { .cfg = cfg };
	Dwarf_Addr bias;
	Dwfl *d = path ? dwfl_begin(&offline) : NULL;
	if (!d)
		return 0;
	dwfl_report_begin(d);
	Dwfl_Module *mod = dwfl_report_offline(d, path, path, -1);
	if (dwfl_report_end(d, NULL, NULL) == 0 && mod) {
		struct cnsmp_index *x = build_index(mod, cfg ? cfg->source_root : NULL);
		/* libdwfl places the file somewhere; the DWARF addresses
		 * (bias 0) are the file's own */
		if (x && dwfl_module_getdwarf(mod, &bias))
			collect(&l, x, 0, path);
		cnsmp_index_free(x);
	}
	dwfl_end(d);
	return deliver(&l, cb, arg);
}

/* After a dlclose() a new object may be mapped where the old one was; a
 * fresh session (rebuilt lazily) cannot confuse the two. */
CNSMP_NOINST void cnsmp_symbols_refresh(void)
{
	enter();
	session_end();
	unlock_session();
}

CNSMP_NOINST void cnsmp_symbols_shutdown(void)
{
	enter();
	session_end();
	for (size_t i = 0; i < nseen; i++)
		free(seen[i].name);
	free(seen);
	seen = NULL;
	nseen = capseen = 0;
	unlock_session();
}
