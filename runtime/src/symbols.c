/* symbols.c: addresses in this process (or functions in an ELF file) to
 * stable names, source files and lines, read from DWARF through libdwfl.
 *
 * Each ELF module is indexed once, on first need: every function with
 * code is named (module path from its source file + qualified name) and
 * its address ranges are sorted, so a lookup is a binary search and two
 * overloads that would share a name are told apart by a hash of their
 * linkage names, which needs the whole module in view.  An index comes
 * from the symbol cache (symcache.c) when it holds the module's, and then
 * no libdw is loaded at all (dw.h); else from DWARF, and is cached.
 * Modules, their indexes and the libdwfl session are rebuilt on refresh.
 *
 * This file runs inside someone else's program: every libdw call is
 * checked, nothing here aborts, and it never reaches the network (no
 * debuginfod, see find_debuginfo).  One mutex guards the whole session. */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dw.h"
#include "internal.h"

/* libdw, once loaded (dw.h): every function below that reads DWARF is
 * reached only after need_dw() found it. */
static const struct cnsmp_dw *dw;

/* Paths, the module part of a name and the overload hash are rules.c's
 * (cnsmp_rules_*), shared with `codensm analyze`. */

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
	return dw->dwarf_hasattr(die, DW_AT_low_pc) || dw->dwarf_hasattr(die, DW_AT_ranges);
}

#define MAX_DEPTH 64 /* malformed DWARF must not exhaust the host's stack */

static void add_decl(struct cu_walk *w, Dwarf_Die *die, char *qname)
{
	if (grow((void **)&w->d, &w->capd, w->nd, sizeof(*w->d)) < 0) {
		w->oom = 1;
		free(qname);
		return;
	}
	w->d[w->nd++] = (struct decl){ dw->dwarf_dieoffset(die), qname };
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
	const char *decl = dw->dwarf_decl_file(&d->die);
	if (!q)
		goto out;
	if (grow((void **)&x->f, &x->capf, x->nf, sizeof(*x->f)) < 0)
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
	f->hash = cnsmp_rules_name_hash(link ? link : q);
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
				snprintf(f->name, n, CNSMP_OVERLOAD_FMT, f->base, f->hash);
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

/* ---- the process's modules ---------------------------------------------- */

/* The loaded objects, from the dynamic loader (dl_iterate_phdr) and their
 * headers in memory, not from their files: a function named from the
 * symbol cache then costs no libdw, no file opened and no ELF read.
 * libdwfl comes in (the session below) only to index a module the cache
 * does not hold, or to name what DWARF does not cover.  Modules are added
 * as they appear and all dropped on refresh (after a dlclose). */
struct obj {
	char *path;
	uintptr_t bias;        /* load bias (dlpi_addr) */
	uintptr_t first, last; /* lowest mapped address, highest + 1 */
	unsigned char id[64];  /* GNU build-id, from its notes in memory */
	size_t idlen;          /* 0: none */
	int user;              /* the program, or a library importing the hooks */
	struct cnsmp_index *x; /* its index, once `indexed` */
	int indexed;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct obj *objs;
static size_t nobjs, capobjs;
static Dwfl *session; /* libdwfl's view, made on first need */

/* Modules already inventoried, by name and address range; kept across
 * refreshes so a refresh does not report the same functions again. */
struct seen {
	char *name;
	uintptr_t start, end;
};
static struct seen *seen;
static size_t nseen, capseen;

/* An address in the dynamic section: glibc adjusts the entries by the
 * load bias in place, except where the section is read-only. */
static uintptr_t dyn_ptr(uintptr_t v, uintptr_t bias)
{
	return v < bias ? v + bias : v;
}

/* The GNU build-id among the notes of one PT_NOTE segment. */
static size_t note_build_id(const unsigned char *p, size_t n, size_t align,
			    unsigned char *out, size_t cap)
{
	while (n >= sizeof(ElfW(Nhdr))) {
		ElfW(Nhdr) h;
		memcpy(&h, p, sizeof h);
		size_t name = (h.n_namesz + align - 1) & ~(align - 1);
		size_t desc = (h.n_descsz + align - 1) & ~(align - 1);
		if (name > n - sizeof h || desc > n - sizeof h - name)
			return 0;
		if (h.n_type == NT_GNU_BUILD_ID && h.n_namesz == 4 &&
		    !memcmp(p + sizeof h, "GNU", 4) && h.n_descsz > 0 &&
		    h.n_descsz <= cap) {
			memcpy(out, p + sizeof h + name, h.n_descsz);
			return h.n_descsz;
		}
		p += sizeof h + name + desc;
		n -= sizeof h + name + desc;
	}
	return 0;
}

/* Does the object import __cyg_profile_func_enter?  Its undefined dynamic
 * symbols are those the GNU hash table leaves out, before its symoffset
 * (or, with only a SysV hash table, any of its nchain symbols). */
static int imports_hooks(const struct dl_phdr_info *info)
{
	const ElfW(Dyn) *d = NULL;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			d = (const void *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
	if (!d)
		return 0;
	const ElfW(Sym) *sym = NULL;
	const char *str = NULL;
	size_t strsz = 0, nsym = 0;
	for (; d->d_tag != DT_NULL; d++) {
		uintptr_t v = d->d_un.d_ptr;
		switch (d->d_tag) {
		case DT_SYMTAB: sym = (const void *)dyn_ptr(v, info->dlpi_addr); break;
		case DT_STRTAB: str = (const void *)dyn_ptr(v, info->dlpi_addr); break;
		case DT_STRSZ: strsz = d->d_un.d_val; break;
		case DT_GNU_HASH: /* nbuckets, symoffset, ... */
			nsym = ((const uint32_t *)dyn_ptr(v, info->dlpi_addr))[1];
			break;
		case DT_HASH: /* nbucket, nchain: one chain entry per symbol */
			if (!nsym)
				nsym = ((const uint32_t *)dyn_ptr(v, info->dlpi_addr))[1];
			break;
		}
	}
	static const char hook[] = "__cyg_profile_func_enter";
	for (size_t i = 1; sym && str && i < nsym; i++)
		if (sym[i].st_shndx == SHN_UNDEF && sym[i].st_name < strsz &&
		    strsz - sym[i].st_name >= sizeof hook &&
		    !memcmp(str + sym[i].st_name, hook, sizeof hook))
			return 1;
	return 0;
}

/* The file the kernel mapped at `at`, from /proc/self/maps: always an
 * absolute path, where the dynamic loader's name of an object found
 * through a relative LD_LIBRARY_PATH is relative, and wrong once the
 * program has changed folder, as daemons do. */
CNSMP_NOINST int cnsmp_mapped_file(uintptr_t at, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4096 + 128];
	int rc = -1;
	while (f && rc < 0 && fgets(line, sizeof line, f)) {
		/* "lo-hi perms offset dev inode /path": the first '/' starts
		 * the path */
		char *end, *path = strchr(line, '/');
		uintptr_t lo = strtoull(line, &end, 16);
		uintptr_t hi = *end == '-' ? strtoull(end + 1, NULL, 16) : 0;
		if (!path || at < lo || at >= hi)
			continue;
		path[strcspn(path, "\n")] = '\0';
		rc = snprintf(out, len, "%s", path) < (int)len ? 0 : -1;
	}
	if (f)
		fclose(f);
	return rc;
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	char exe[4096];
	const char *name = info->dlpi_name;
	int program = !name || !*name; /* not PT_INTERP: libc.so.6 has one */
	if (!program && !strchr(name, '/'))
		return 0; /* the vDSO: no file behind it */
	struct obj o = { .bias = info->dlpi_addr, .first = UINTPTR_MAX };
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t at = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD) {
			if (at < o.first)
				o.first = at;
			if (at + ph->p_memsz > o.last)
				o.last = at + ph->p_memsz;
		}
	}
	if (o.first >= o.last)
		return 0; /* nothing mapped */
	for (size_t i = 0; i < nobjs; i++) /* known already? */
		if (objs[i].bias == o.bias && objs[i].first == o.first)
			return 0;
	for (int i = 0; i < info->dlpi_phnum && !o.idlen; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_NOTE)
			o.idlen = note_build_id((const void *)(info->dlpi_addr + ph->p_vaddr),
						ph->p_filesz, ph->p_align == 8 ? 8 : 4,
						o.id, sizeof o.id);
	}
	o.user = program || imports_hooks(info);
	/* named only once known to be new: a rescan is every loaded object */
	if (program) {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return 0;
		exe[n] = '\0';
		name = exe;
	} else if (name[0] != '/' && cnsmp_mapped_file(o.first, exe, sizeof exe) == 0) {
		name = exe;
	}
	if (!(o.path = strdup(name)) ||
	    grow((void **)&objs, &capobjs, nobjs, sizeof(*objs)) < 0) {
		free(o.path);
		return 0;
	}
	objs[nobjs++] = o;
	return 0;
}

/* The known module holding `addr`, or NULL. */
static struct obj *obj_find(uintptr_t addr)
{
	for (size_t i = 0; i < nobjs; i++)
		if (objs[i].first <= addr && addr < objs[i].last)
			return &objs[i];
	return NULL;
}

/* The same, looking for new modules if none holds it (perhaps dlopen'ed
 * since).  This may move every entry: no pointer into objs is held
 * across it. */
static struct obj *obj_at(uintptr_t addr)
{
	struct obj *o = obj_find(addr);
	if (!o) {
		dl_iterate_phdr(phdr_cb, NULL);
		o = obj_find(addr);
	}
	return o;
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
static Dwfl_Module *dwfl_module_of(const struct obj *o)
{
	if (!need_dw() || (!session && !(session = dw->dwfl_begin(&proc_callbacks))))
		return NULL;
	Dwfl_Module *m = dw->dwfl_addrmodule(session, o->first);
	const char *name = m ? dw->dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL) : NULL;
	if (name && !strcmp(name, o->path))
		return m;
	dw->dwfl_report_begin_add(session);
	for (size_t i = 0; i < nobjs; i++) {
		m = dw->dwfl_addrmodule(session, objs[i].first);
		name = m ? dw->dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL) : NULL;
		if (!name || strcmp(name, objs[i].path))
			dw->dwfl_report_elf(session, objs[i].path, objs[i].path, -1,
					    objs[i].bias, true);
	}
	if (dw->dwfl_report_end(session, NULL, NULL) != 0) {
		session_end(); /* unusable until report_end succeeds */
		return NULL;
	}
	m = dw->dwfl_addrmodule(session, o->first);
	name = m ? dw->dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL) : NULL;
	return name && !strcmp(name, o->path) ? m : NULL;
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

/* ---- indexes: from the cache, or from DWARF ----------------------------- */

/* The cache file of `o`'s index: the module's build-id (the DWARF it was
 * made from), then a hash of what else the names depend on: the source
 * root and the runtime itself (another build may name differently).  -1
 * when either has no build-id: nothing would then tell a stale file. */
static int cache_key(const struct obj *o, const char *root, char *out, size_t len)
{
	const struct obj *me = obj_find((uintptr_t)&cnsmp_symbols_resolve);
	if (!o->idlen || !me || !me->idlen || o->idlen * 2 + 22 > len)
		return -1;
	uint64_t h = 1469598103934665603u;
	for (size_t i = 0; i < me->idlen; i++)
		h = (h ^ me->id[i]) * 1099511628211u;
	for (const char *p = root ? root : ""; ; p++) { /* with its NUL */
		h = (h ^ (unsigned char)*p) * 1099511628211u;
		if (!*p)
			break;
	}
	for (size_t i = 0; i < o->idlen; i++)
		snprintf(out + 2 * i, 3, "%02x", o->id[i]);
	snprintf(out + 2 * o->idlen, len - 2 * o->idlen, "-%016" PRIx64 ".idx", h);
	return 0;
}

/* From DWARF, through libdwfl; with where its addresses lie against the
 * load address (the DWARF bias less the load bias: 0 unless a separate
 * debug file was laid out apart, as prelink did). */
struct index_job {
	const struct obj *o;
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

static struct cnsmp_index *index_from_dwarf(const struct obj *o, const char *root)
{
	struct index_job j = { o, root, NULL };
	in_dw_thread(index_job, &j);
	return j.x;
}

/* The index from the cache if it holds this module's, else from DWARF
 * (and then written to the cache for the next run). */
static struct cnsmp_index *load_or_build(const struct obj *o, const struct cnsmp_config *cfg)
{
	const char *root = cfg ? cfg->source_root : NULL;
	const char *dir = cfg ? cfg->symbol_cache : NULL;
	const char *name = o->path;
	char key[192];
	struct cnsmp_index *x;
	if (!dir || cache_key(o, root, key, sizeof key) != 0) {
		if ((x = index_from_dwarf(o, root)) != NULL)
			cnsmp_log(CNSMP_LOG_DEBUG, "symbols of %s: %zu functions from DWARF%s",
				  name, x->nf, dir ? " (no build-id: not cached)" : "");
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
			  name, x->nf, dir, key);
		return x;
	}
	x = index_from_dwarf(o, root);
	if (!x)
		return NULL;
	if (x->partial) /* memory ran out: this run's names only */
		cnsmp_log(CNSMP_LOG_DEBUG, "symbols of %s: %zu functions from DWARF, not all (out of memory): not cached",
			  name, x->nf);
	else if (cnsmp_symcache_store(dir, key, x) == 0)
		cnsmp_log(CNSMP_LOG_DEBUG, "symbols of %s: %zu functions from DWARF, kept in %s/%s%s",
			  name, x->nf, dir, key,
			  refused ? " (the file there could not be used: replaced)" : "");
	else
		cnsmp_log(CNSMP_LOG_DEBUG, "symbols of %s: %zu functions from DWARF; cannot write %s/%s: %s",
			  name, x->nf, dir, key, strerror(errno));
	return x;
}

static struct cnsmp_index *obj_index(struct obj *o, const struct cnsmp_config *cfg)
{
	const char *source_root = cfg ? cfg->source_root : NULL;
	const char *had = o->x ? o->x->root : NULL;
	if (o->x && (had ? !source_root || strcmp(had, source_root) : !!source_root)) {
		cnsmp_index_free(o->x); /* named under another source root */
		o->x = NULL;
		o->indexed = 0;
	}
	if (!o->indexed) {
		o->x = load_or_build(o, cfg);
		o->indexed = 1;
	}
	return o->x;
}

static void objs_free(void)
{
	for (size_t i = 0; i < nobjs; i++) {
		free(objs[i].path);
		cnsmp_index_free(objs[i].x);
	}
	free(objs);
	objs = NULL;
	nobjs = capobjs = 0;
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

struct symtab_job {
	const struct obj *o;
	uintptr_t addr;
	const char *name; /* libdwfl's, valid until the session ends */
	GElf_Off off;
	GElf_Sym sym;
};

static void symtab_job(void *p)
{
	struct symtab_job *j = p;
	Dwfl_Module *mod = dwfl_module_of(j->o);
	j->name = mod ? dw->dwfl_module_addrinfo(mod, j->addr, &j->off, &j->sym,
						NULL, NULL, NULL) : NULL;
}

/* Without DWARF: the symbol table, then "module+0xoffset", which at least
 * stays the same from run to run of the same build. */
static int resolve_symtab(const struct obj *o, uintptr_t addr,
			  struct cnsmp_fninfo *out)
{
	char base[128], name[512];
	GElf_Sym sym;
	GElf_Off off = 0;
	module_base(o->path, base, sizeof(base));
	out->system = cnsmp_rules_system_path(o->path);
	struct symtab_job j = { o, addr, NULL, 0, { 0 } };
	in_dw_thread(symtab_job, &j);
	const char *s = j.name;
	off = j.off;
	sym = j.sym;
	int type = s ? GELF_ST_TYPE(sym.st_info) : STT_NOTYPE;
	/* only a function symbol that holds addr names code: the nearest
	 * marker (__executable_start, _end) says nothing about it */
	if (s && *s && (type == STT_FUNC || type == STT_GNU_IFUNC) &&
	    (sym.st_size == 0 || off < sym.st_size)) {
		snprintf(name, sizeof(name), "%s.%s", base, s);
		out->entry = addr - off;
		return set_names(out, name, NULL);
	}
	snprintf(name, sizeof(name), "%s+0x%" PRIxPTR, base, addr - o->first);
	out->entry = addr;
	return set_names(out, name, NULL) < 0 ? -1 : 1;
}

static int resolve_in(struct obj *o, uintptr_t addr,
		      const struct cnsmp_config *cfg, struct cnsmp_fninfo *out)
{
	if (!(out->module = strdup(o->path)))
		return -1;
	struct cnsmp_index *x = obj_index(o, cfg);
	uintptr_t bias = o->bias + (x ? (uintptr_t)x->delta : 0);
	const struct cnsmp_func *f = x ? index_find(x, addr - bias) : NULL;
	if (!f)
		return resolve_symtab(o, addr, out);
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
	struct obj *o = obj_at(addr);
	int rc;
	if (o) {
		rc = resolve_in(o, addr, cfg, out);
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

static void collect(struct fnlist *l, const struct cnsmp_index *x, uintptr_t bias,
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

/* Marks a module as inventoried; 0 if it was already. */
static int first_time(const char *name, uintptr_t start, uintptr_t end)
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

/* Only the user's modules are inventoried: the program itself, and the
 * libraries that call the hooks (they import them).  libc, libstdc++ or
 * a sanitizer's runtime (libasan, libubsan, which come with DWARF of
 * their own and sources under no system folder) are not instrumented:
 * none of their functions is ever called through a hook, and an ASan
 * build would list libasan's 3,700 functions as never used. */
CNSMP_NOINST size_t cnsmp_symbols_inventory(const struct cnsmp_config *cfg,
					    cnsmp_inventory_cb cb, void *arg)
{
	struct fnlist l = { .cfg = cfg };
	enter();
	dl_iterate_phdr(phdr_cb, NULL);
	for (size_t i = 0; i < nobjs; i++) {
		struct obj *o = &objs[i];
		if (!o->user || !first_time(o->path, o->first, o->last))
			continue;
		struct cnsmp_index *x = obj_index(o, cfg);
		if (x && x->user)
			collect(&l, x, o->bias + (uintptr_t)x->delta, o->path);
	}
	unlock_session();
	return deliver(&l, cb, arg);
}

struct file_job {
	const char *path;
	const struct cnsmp_config *cfg;
	struct fnlist l;
};

static void file_job(void *p)
{
	struct file_job *j = p;
	Dwarf_Addr bias;
	Dwfl *d = j->path && need_dw() ? dw->dwfl_begin(&offline_callbacks) : NULL;
	if (!d)
		return;
	dw->dwfl_report_begin(d);
	Dwfl_Module *mod = dw->dwfl_report_offline(d, j->path, j->path, -1);
	if (dw->dwfl_report_end(d, NULL, NULL) == 0 && mod) {
		struct cnsmp_index *x = build_index(mod, j->cfg ? j->cfg->source_root : NULL);
		/* libdwfl places the file somewhere; the DWARF addresses
		 * (bias 0) are the file's own */
		if (x && dw->dwfl_module_getdwarf(mod, &bias))
			collect(&j->l, x, 0, j->path);
		cnsmp_index_free(x);
	}
	dw->dwfl_end(d);
}

/* The doctor's view of a file on disk: entries are the file's own
 * addresses (its DWARF's), wherever libdwfl chose to place it. */
CNSMP_NOINST size_t cnsmp_symbols_inventory_file(const char *path,
						 const struct cnsmp_config *cfg,
						 cnsmp_inventory_cb cb, void *arg)
{
	struct file_job j = { path, cfg, { .cfg = cfg } };
	enter(); /* need_dw fills shared state */
	in_dw_thread(file_job, &j);
	unlock_session();
	return deliver(&j.l, cb, arg);
}

/* After a dlclose() a new object may be mapped where the old one was; a
 * fresh module list and session (rebuilt lazily) cannot confuse the two. */
CNSMP_NOINST void cnsmp_symbols_refresh(void)
{
	enter();
	session_end();
	objs_free();
	unlock_session();
}

CNSMP_NOINST void cnsmp_symbols_shutdown(void)
{
	enter();
	session_end();
	objs_free();
	for (size_t i = 0; i < nseen; i++)
		free(seen[i].name);
	free(seen);
	seen = NULL;
	nseen = capseen = 0;
	unlock_session();
}
