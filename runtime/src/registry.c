/* registry.c: address -> function entry, looked up lock-free on every call
 * and decided (resolved, included or not, given an id) once, on first sight.
 *
 * Layout and ordering:
 *  - `cnsmp_registry_table` (declared in thread.h, so the hooks can inline
 *    the lookup) points at an open-addressing array of entry pointers (linear
 *    probing).  Readers load the table pointer and each slot with acquire,
 *    which makes the entry's fields (written before its release store)
 *    visible.  A slot goes NULL -> entry -> TOMB (forget_range) -> entry...;
 *    probing stops only at NULL, so a tombstone never hides a later key.
 *  - Writers (add, redecide, forget_range) hold `lock`.  When the table is
 *    half full it is copied into one twice the size and the new one is
 *    published; the old one is never freed, since a reader may still probe
 *    it (it then misses new entries and takes the slow path, which finds
 *    them under the lock).  Total waste is bounded by the final size.
 *  - Entries are never freed: the flusher names ids through them and a hook
 *    may hold one while it is forgotten.  A forgotten entry (its library
 *    was dlclose()d) goes on the `retired` list and is taken back when a
 *    function of the same name is seen again (the library reloaded at a new
 *    address), so a program that loads and unloads a plugin in a loop uses
 *    a bounded amount of memory.
 *  - Ids are dense per distinct name (two addresses with one name share an
 *    id) and never reused: they index the per-thread counter arrays.
 */
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include "thread.h"

/* The first table is small: a slot is touched where a function's address
 * hashes, so a 512 kB first table cost a short process one page fault per
 * function it ever called (about 10 us each on a VM), where 8 kB costs two
 * in all.  It doubles as it fills; a program of 100,000 functions grows it
 * eight times, each a rehash under the lock, off the per-call path. */
#define TABLE_MIN (1u << 10)
#define TABLE_MAX (1u << 22)
#define NAMES_SIZE 8192 /* > 2 * CNSMP_MAX_TRACKED: probing stays short */
#define TOMB CNSMP_REGISTRY_TOMB

/* The public struct first, so a struct cnsmp_fn * is a struct entry *. */
struct entry {
	struct cnsmp_fn fn;
	int system;      /* for redecide */
	int own_dept;    /* department given by codensm_enter: keep it */
	int own_weight;  /* weight given by codensm_enter: keep it */
	char *module;
	struct entry *retired_next; /* lock */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
_Atomic(struct cnsmp_registry_table *) cnsmp_registry_table;
struct cnsmp_fn cnsmp_registry_tomb = {.addr = 0, .id = CNSMP_NO_ID,
				       .state = CNSMP_FN_EXCLUDED};
static struct { const char *name; uint32_t id; } names[NAMES_SIZE]; /* lock */
static _Atomic(struct cnsmp_fn *) by_id[CNSMP_MAX_TRACKED];
static _Atomic uint32_t nids; /* release after by_id[id] is set */
static struct entry *retired; /* forgotten entries (lock) */
_Atomic uint64_t cnsmp_registry_dropped_calls;
struct cnsmp_registry_gen cnsmp_registry_gen = {1};
/* On lines of its own: every hook reads it, and a neighbour written on a
 * hot path would take its first or last line from every core. */
_Atomic uintptr_t cnsmp_registry_excluded[1u << CNSMP_XFILTER_BITS]
	__attribute__((aligned(64)));

/* Returned when the table cannot grow or memory runs out: the hooks count
 * the function as dropped on every call (and come back here each time). */
static struct entry overflow_entry = {
	.fn = { .id = CNSMP_NO_ID, .state = CNSMP_FN_DROPPED,
		.name = "codensm.overflow", .department = "default",
		.weight = 0.0 },
};

CNSMP_NOINST struct cnsmp_fn *cnsmp_registry_probe(uintptr_t addr)
{
	struct cnsmp_registry_table *t = atomic_load_explicit(
		&cnsmp_registry_table, memory_order_acquire);
	if (!t || !addr)
		return NULL;
	for (size_t i = cnsmp_registry_hash(addr) & t->mask;;
	     i = (i + 1) & t->mask) {
		struct cnsmp_fn *e = atomic_load_explicit(&t->slot[i],
							  memory_order_acquire);
		if (!e)
			return NULL;
		if (e->addr == addr)
			return e;
	}
}

CNSMP_NOINST struct cnsmp_fn *cnsmp_registry_find(uintptr_t addr)
{
	return addr ? cnsmp_registry_lookup(addr) : NULL;
}

/* Insert into `t` (lock held, room guaranteed, key absent). */
static CNSMP_NOINST void put(struct cnsmp_registry_table *t,
			     struct cnsmp_fn *e)
{
	size_t i = cnsmp_registry_hash(e->addr) & t->mask;
	struct cnsmp_fn *s;
	while ((s = atomic_load_explicit(&t->slot[i], memory_order_relaxed)) &&
	       s != TOMB)
		i = (i + 1) & t->mask;
	if (!s)
		t->used++;
	atomic_store_explicit(&t->slot[i], e, memory_order_release);
}

/* Make room for one more entry (lock held).  0, or -1 if the table is at
 * its maximum or out of memory (the caller then drops the function). */
static CNSMP_NOINST int reserve_slot(void)
{
	struct cnsmp_registry_table *t =
		atomic_load_explicit(&cnsmp_registry_table, memory_order_relaxed);
	size_t size = t ? t->mask + 1 : TABLE_MIN / 2;
	if (t && (t->used + 1) * 2 <= size)
		return 0;
	size_t live = 0;
	for (size_t i = 0; t && i < size; i++) {
		struct cnsmp_fn *e = atomic_load_explicit(&t->slot[i],
							  memory_order_relaxed);
		live += e && e != TOMB;
	}
	size_t n = size * 2;
	while ((live + 1) * 4 > n) /* land at most a quarter full */
		n *= 2;
	if (n > TABLE_MAX)
		return -1;
	struct cnsmp_registry_table *nt =
		calloc(1, sizeof *nt + n * sizeof nt->slot[0]);
	if (!nt)
		return -1;
	nt->mask = n - 1;
	nt->prev = t;
	for (size_t i = 0; t && i < size; i++) {
		struct cnsmp_fn *e = atomic_load_explicit(&t->slot[i],
							  memory_order_relaxed);
		if (e && e != TOMB)
			put(nt, e);
	}
	atomic_store_explicit(&cnsmp_registry_table, nt, memory_order_release);
	return 0; /* `t` stays (nt->prev): readers may still be in it */
}

/* The id of `name`, handing out the next one on first use (lock held).
 * CNSMP_NO_ID past the guardrail. */
static CNSMP_NOINST uint32_t id_for(struct cnsmp_fn *e)
{
	size_t i = (size_t)cnsmp_hash_str(e->name) & (NAMES_SIZE - 1);
	for (; names[i].name; i = (i + 1) & (NAMES_SIZE - 1))
		if (strcmp(names[i].name, e->name) == 0)
			return names[i].id;
	uint32_t id = atomic_load_explicit(&nids, memory_order_relaxed);
	if (id >= CNSMP_MAX_TRACKED)
		return CNSMP_NO_ID;
	names[i].name = e->name;
	names[i].id = id;
	atomic_store_explicit(&by_id[id], e, memory_order_release);
	atomic_store_explicit(&nids, id + 1, memory_order_release);
	return id;
}

/* Decide `e` under the current config (lock held).  Department and weight
 * may be replaced while the flusher reads them: the new value is stored
 * atomically and the old string is leaked (reconfiguration is rare). */
static CNSMP_NOINST void decide(struct entry *e)
{
	struct cnsmp_fn *f = &e->fn;
	int state = CNSMP_FN_EXCLUDED;
	if (cnsmp_rules_tracked(&cnsmp_cfg, f->name, e->system)) {
		if (f->id == CNSMP_NO_ID)
			f->id = id_for(f);
		state = f->id == CNSMP_NO_ID ? CNSMP_FN_DROPPED : CNSMP_FN_TRACKED;
	}
	if (!e->own_dept) {
		char buf[256];
		const char *d = cnsmp_rules_department(&cnsmp_cfg, f->name, buf,
						       sizeof buf);
		if (!f->department || strcmp(f->department, d) != 0) {
			char *copy = strdup(d);
			if (copy)
				__atomic_store_n(&f->department, copy,
						 __ATOMIC_RELEASE);
		}
	}
	if (!e->own_weight) {
		double w = cnsmp_rules_weight(&cnsmp_cfg, f->name);
		__atomic_store(&f->weight, &w, __ATOMIC_RELAXED);
	}
	/* Before the state: a hook that sees the new state sees the set. */
	atomic_store_explicit(&f->probes, cnsmp_probes_for(f->name),
			      memory_order_release);
	atomic_store_explicit(&f->state, state, memory_order_release);
}

static CNSMP_NOINST void entry_free(struct entry *e)
{
	free(e->fn.name);
	free(e->fn.file);
	free(e->fn.department);
	free(e->module);
	free(e);
}

/* A retired entry named like `e` (lock held), taken off the list: it keeps
 * its id, department and weight; only its address changes. */
static CNSMP_NOINST struct entry *take_retired(const struct entry *e)
{
	for (struct entry **p = &retired; *p; p = &(*p)->retired_next) {
		struct entry *r = *p;
		if (strcmp(r->fn.name, e->fn.name) == 0) {
			*p = r->retired_next;
			r->retired_next = NULL;
			return r;
		}
	}
	return NULL;
}

/* A new entry for `addr`, resolved and decided, not yet published. */
static CNSMP_NOINST struct entry *make(uintptr_t addr, const char *name,
				       const char *department, double weight)
{
	struct entry *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->fn.addr = addr;
	e->fn.id = CNSMP_NO_ID;
	if (name) {
		e->fn.name = strdup(name);
	} else {
		struct cnsmp_fninfo fi = {0};
		if (cnsmp_symbols_resolve(addr, &cnsmp_cfg, &fi) < 0) {
			cnsmp_fninfo_release(&fi);
		} else { /* keep the strings: the entry owns them now */
			e->fn.name = fi.name;
			e->fn.file = fi.file;
			e->fn.line = fi.line;
			e->system = fi.system;
			e->module = fi.module;
		}
	}
	if (department) {
		e->fn.department = strdup(department);
		e->own_dept = e->fn.department != NULL;
	}
	if (weight >= 0) {
		e->fn.weight = weight;
		e->own_weight = 1;
	}
	if (!e->fn.name) {
		free(e->fn.department);
		free(e);
		return NULL;
	}
	struct entry *old = take_retired(e);
	if (old) {
		entry_free(e);
		old->fn.addr = addr;
		e = old;
	}
	decide(e);
	return e;
}

CNSMP_NOINST struct cnsmp_fn *cnsmp_registry_add(uintptr_t addr,
						 const char *name,
						 const char *department,
						 double weight)
{
	int saved = errno;
	pthread_mutex_lock(&lock);
	struct cnsmp_fn *f = cnsmp_registry_find(addr);
	if (!f) {
		struct entry *e = NULL;
		if (reserve_slot() == 0)
			e = make(addr, name, department, weight);
		if (e) {
			put(atomic_load_explicit(&cnsmp_registry_table, memory_order_relaxed),
			    &e->fn);
			f = &e->fn;
		} else {
			f = &overflow_entry.fn;
		}
	}
	pthread_mutex_unlock(&lock);
	errno = saved;
	return f;
}

CNSMP_NOINST struct cnsmp_fn *cnsmp_registry_get(uint32_t id)
{
	if (id >= atomic_load_explicit(&nids, memory_order_acquire))
		return NULL;
	return atomic_load_explicit(&by_id[id], memory_order_acquire);
}

CNSMP_NOINST uint32_t cnsmp_registry_count(void)
{
	return atomic_load_explicit(&nids, memory_order_acquire);
}

CNSMP_NOINST uint64_t cnsmp_registry_dropped(void)
{
	return atomic_load_explicit(&cnsmp_registry_dropped_calls,
				    memory_order_relaxed);
}

CNSMP_NOINST void cnsmp_registry_redecide(void)
{
	pthread_mutex_lock(&lock);
	struct cnsmp_registry_table *t =
		atomic_load_explicit(&cnsmp_registry_table, memory_order_relaxed);
	for (size_t i = 0; t && i <= t->mask; i++) {
		struct cnsmp_fn *e = atomic_load_explicit(&t->slot[i],
							  memory_order_relaxed);
		if (e && e != TOMB)
			decide((struct entry *)e);
	}
	cnsmp_registry_invalidate();
	pthread_mutex_unlock(&lock);
}

CNSMP_NOINST void cnsmp_registry_forget_range(uintptr_t lo, uintptr_t hi)
{
	pthread_mutex_lock(&lock);
	struct cnsmp_registry_table *t =
		atomic_load_explicit(&cnsmp_registry_table, memory_order_relaxed);
	for (size_t i = 0; t && i <= t->mask; i++) {
		struct cnsmp_fn *e = atomic_load_explicit(&t->slot[i],
							  memory_order_relaxed);
		if (e && e != TOMB && e->addr >= lo && e->addr < hi) {
			atomic_store_explicit(&t->slot[i], TOMB,
					      memory_order_release);
			((struct entry *)e)->retired_next = retired;
			retired = (struct entry *)e;
		}
	}
	cnsmp_registry_invalidate();
	pthread_mutex_unlock(&lock);
}

/* The excluded filter (thread.h).  A fill and a change of decisions can
 * race: the filler read the state before the change and stores the
 * address after the filter was cleared.  Both sides use sequentially
 * consistent operations, the filler storing then re-reading the
 * generation, the writer bumping it then reading and clearing each slot
 * (plain moves on x86 but for the two RMWs): in their single total
 * order, either the filler's re-read comes after the bump (it sees the
 * new generation and takes its fill back) or its store comes before the
 * clear (which wipes it).  A fill taken back may clear a slot another
 * thread just filled for the same address: a miss, never a wrong hit. */
CNSMP_NOINST void cnsmp_registry_remember_excluded(uintptr_t addr, uint32_t g)
{
	_Atomic uintptr_t *s = &cnsmp_registry_excluded[cnsmp_xfilter_index(addr)];
	uintptr_t empty = 0;
	/* Taken (by another address: this one comes here each call): a plain
	 * read, since a failed compare-and-swap would still take the line
	 * from every core that reads it. */
	if (atomic_load_explicit(s, memory_order_relaxed) ||
	    !atomic_compare_exchange_strong(s, &empty, addr))
		return;
	if (atomic_load(&cnsmp_registry_gen.v) != g) {
		uintptr_t mine = addr;
		atomic_compare_exchange_strong(s, &mine, 0);
	}
}

/* After the change it announces: a thread that sees the new generation
 * sees the change (release/acquire).  The excluded filter and every
 * thread's cache are emptied after the bump (see above and
 * cnsmp_tcache_put), and every patched call site gets its call back
 * (patch.c); they refill on the next calls. */
CNSMP_NOINST void cnsmp_registry_invalidate(void)
{
	atomic_fetch_add(&cnsmp_registry_gen.v, 1);
	for (size_t i = 0; i < (1u << CNSMP_XFILTER_BITS); i++)
		if (atomic_load(&cnsmp_registry_excluded[i]))
			atomic_store(&cnsmp_registry_excluded[i], 0);
	cnsmp_thread_forget_decisions();
	cnsmp_patch_restore_all();
}

/* After fork() only the forking thread exists; if another thread held the
 * lock at that moment, nobody will ever release it in the child. */
CNSMP_NOINST void cnsmp_registry_atfork_child(void)
{
	pthread_mutex_init(&lock, NULL);
}
