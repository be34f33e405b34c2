/* symbols.c: addresses in this process (or functions in an ELF file) to
 * stable names, source files and lines; and the inventory of the user's
 * functions, called or not.
 *
 * Each module (modules.c) is indexed once, on first need (index.c): from
 * the symbol cache (symcache.c) when it holds the module's, and then no
 * libdw is loaded at all; else from DWARF (dwarf.c), and then cached.  A
 * lookup is then a binary search.  Modules, their indexes and the libdwfl
 * session are rebuilt on refresh.  One mutex guards all of it. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Modules already inventoried, by name and address range; kept across
 * refreshes so a refresh does not report the same functions again. */
struct seen {
	char *name;
	uintptr_t start, end;
};
static struct seen *seen;
static size_t nseen, capseen;

static void lock_session(void) { pthread_mutex_lock(&lock); }
static void unlock_session(void) { pthread_mutex_unlock(&lock); }
static void enter(void) { lock_session(); }

CNSMP_NOINST void cnsmp_symbols_atfork_prepare(void) { lock_session(); }
CNSMP_NOINST void cnsmp_symbols_atfork_parent(void) { unlock_session(); }
CNSMP_NOINST void cnsmp_symbols_atfork_child(void) { unlock_session(); }

/* ---- indexes: from the cache, or from DWARF ----------------------------- */

/* The cache file of `o`'s index: the module's build-id (the DWARF it was
 * made from), then a hash of what else the names depend on: the source
 * root and the runtime itself (another build may name differently), then
 * `suffix`.  -1 when either has no build-id: nothing would then tell a
 * stale file. */
static int cache_key(const struct cnsmp_module *o, const char *root, const char *suffix,
		     char *out, size_t len)
{
	const struct cnsmp_module *me = cnsmp_modules_find((uintptr_t)&cnsmp_symbols_resolve);
	if (!o->idlen || !me || !me->idlen || o->idlen * 2 + 18 + strlen(suffix) > len)
		return -1;
	const char *r = root ? root : "";
	uint64_t h = cnsmp_hash(CNSMP_HASH_SEED, me->id, me->idlen);
	h = cnsmp_hash(h, r, strlen(r) + 1); /* with its NUL */
	for (size_t i = 0; i < o->idlen; i++)
		snprintf(out + 2 * i, 3, "%02x", o->id[i]);
	snprintf(out + 2 * o->idlen, len - 2 * o->idlen, "-%016" PRIx64 "%s", h, suffix);
	return 0;
}

CNSMP_NOINST int cnsmp_symbols_module(uintptr_t addr, const char *suffix, char *key, size_t len,
				      uintptr_t *bias, uintptr_t *first, uintptr_t *last)
{
	enter();
	const struct cnsmp_module *o = cnsmp_modules_at(addr);
	int rc = o ? cache_key(o, NULL, suffix, key, len) : -1;
	if (rc == 0) {
		*bias = o->bias;
		*first = o->first;
		*last = o->last;
	}
	unlock_session();
	return rc;
}

/* The index from the cache if it holds this module's, else from DWARF
 * (and then written to the cache for the next run). */
static struct cnsmp_index *load_or_build(const struct cnsmp_module *o, const struct cnsmp_config *cfg)
{
	const char *root = cfg ? cfg->source_root : NULL;
	const char *dir = cfg ? cfg->symbol_cache : NULL;
	const char *name = o->path;
	char key[192];
	struct cnsmp_index *x;
	if (!dir || cache_key(o, root, ".idx", key, sizeof key) != 0) {
		if ((x = cnsmp_dwarf_index(o, root)) != NULL)
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
	x = cnsmp_dwarf_index(o, root);
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

static struct cnsmp_index *module_index(struct cnsmp_module *o, const struct cnsmp_config *cfg)
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
static int resolve_symtab(const struct cnsmp_module *o, uintptr_t addr,
			  struct cnsmp_fninfo *out)
{
	char base[128], sym[512], name[512];
	uint64_t off = 0;
	module_base(o->path, base, sizeof(base));
	out->system = cnsmp_rules_system_path(o->path);
	if (cnsmp_dwarf_symbol(o, addr, sym, sizeof sym, &off) == 0) {
		/* a longer name is cut, as any name over 511 bytes */
		if (snprintf(name, sizeof(name), "%s.%s", base, sym) >= (int)sizeof name)
			name[sizeof name - 1] = '\0';
		out->entry = addr - off;
		return set_names(out, name, NULL);
	}
	snprintf(name, sizeof(name), "%s+0x%" PRIxPTR, base, addr - o->first);
	out->entry = addr;
	return set_names(out, name, NULL) < 0 ? -1 : 1;
}

static int resolve_in(struct cnsmp_module *o, uintptr_t addr,
		      const struct cnsmp_config *cfg, struct cnsmp_fninfo *out)
{
	if (!(out->module = strdup(o->path)))
		return -1;
	struct cnsmp_index *x = module_index(o, cfg);
	uintptr_t bias = o->bias + (x ? (uintptr_t)x->delta : 0);
	const struct cnsmp_func *f = x ? cnsmp_index_find(x, addr - bias) : NULL;
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
	struct cnsmp_module *o = cnsmp_modules_at(addr);
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

/* The index's ranges of the function that starts at `entry`: one pass
 * over the module's ranges (slow path: call-site patching asks once per
 * function). */
CNSMP_NOINST size_t cnsmp_symbols_code(uintptr_t entry, const struct cnsmp_config *cfg,
				       uintptr_t (*out)[2], size_t max)
{
	size_t n = 0;
	enter();
	struct cnsmp_module *o = cnsmp_modules_at(entry);
	struct cnsmp_index *x = o ? module_index(o, cfg) : NULL;
	if (x) {
		uintptr_t bias = o->bias + (uintptr_t)x->delta;
		const struct cnsmp_func *f = cnsmp_index_find(x, entry - bias);
		if (f && (uintptr_t)(f->entry + bias) == entry) {
			size_t fi = (size_t)(f - x->f);
			for (size_t i = 0; i < x->nr && n < max; i++)
				if (x->r[i].func == fi) {
					out[n][0] = (uintptr_t)(x->r[i].low + bias);
					out[n++][1] = (uintptr_t)(x->r[i].high + bias);
				}
		}
	}
	unlock_session();
	return n;
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
		if (!f->name || cnsmp_grow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v)) < 0)
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
	if (!copy || cnsmp_grow((void **)&seen, &capseen, nseen + 1, sizeof(*seen)) < 0) {
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
	cnsmp_modules_scan();
	for (size_t i = 0; i < cnsmp_modules_count(); i++) {
		struct cnsmp_module *o = cnsmp_modules_get(i);
		if (!o->user || !first_time(o->path, o->first, o->last))
			continue;
		struct cnsmp_index *x = module_index(o, cfg);
		if (x && x->user)
			collect(&l, x, o->bias + (uintptr_t)x->delta, o->path);
	}
	unlock_session();
	return deliver(&l, cb, arg);
}

/* The doctor's view of a file on disk: entries are the file's own
 * addresses (its DWARF's), wherever libdwfl chose to place it. */
CNSMP_NOINST size_t cnsmp_symbols_inventory_file(const char *path,
						 const struct cnsmp_config *cfg,
						 cnsmp_inventory_cb cb, void *arg)
{
	struct fnlist l = { .cfg = cfg };
	enter(); /* dwarf.c's state is shared */
	struct cnsmp_index *x = cnsmp_dwarf_index_file(path, cfg ? cfg->source_root : NULL);
	unlock_session();
	if (x)
		collect(&l, x, 0, path);
	cnsmp_index_free(x);
	return deliver(&l, cb, arg);
}

/* After a dlclose() a new object may be mapped where the old one was; a
 * fresh module list and session (rebuilt lazily) cannot confuse the two. */
CNSMP_NOINST void cnsmp_symbols_refresh(void)
{
	enter();
	cnsmp_dwarf_end();
	cnsmp_modules_clear();
	unlock_session();
}

CNSMP_NOINST void cnsmp_symbols_shutdown(void)
{
	enter();
	cnsmp_dwarf_end();
	cnsmp_modules_clear();
	for (size_t i = 0; i < nseen; i++)
		free(seen[i].name);
	free(seen);
	seen = NULL;
	nseen = capseen = 0;
	unlock_session();
}
