/* inventory.c: the user's functions, called or not, each described once
 * to the server (docs/payload.md, "inventory"), so that a function never
 * called still shows as unused.
 *
 * The flusher takes the modules loaded so far on its first cycle (not at
 * start-up: DWARF is slow) and again whenever dlopen added objects; the
 * dlclose interposer takes a library about to leave, in its own thread,
 * into a staged list the next update moves in.  A record is queued, then
 * rides in a body, then is delivered: the flusher moves it along as its
 * bodies are built, answered or dropped.  With CODENSM_MODE=full a record
 * carries its function's flow, so each flow is sent once per process like
 * the record, for called and never-called functions alike. */
#include <link.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Inventory records: flusher thread only (and the child after fork). */
struct inv_rec {
	struct cnsmp_inv_entry e;
	int state;            /* CNSMP_INV_* */
	char *module;         /* the ELF object it is defined in, for its flow */
	int flow_looked;
};
static struct inv_rec *recs;
static size_t nrecs, caprecs;
static int inventoried;
static unsigned long long dl_adds;

/* Inventory taken outside the flusher (a library about to be closed)
 * waits here until the next update moves it into recs. */
static pthread_mutex_t staged_mu = PTHREAD_MUTEX_INITIALIZER;
static struct inv_rec *staged;
static size_t nstaged, capstaged;

struct inv_list {
	struct inv_rec **arr;
	size_t *n, *cap;
};

CNSMP_NOINST static void inv_cb(const struct cnsmp_fninfo *fi, void *arg)
{
	struct inv_list *l = arg;
	if (!fi->name || !cnsmp_rules_tracked(&cnsmp_cfg, fi->name, fi->system))
		return;
	if (cnsmp_grow((void **)l->arr, l->cap, *l->n + 1, sizeof **l->arr) != 0)
		return;
	char buf[256];
	const char *dept = cnsmp_rules_department(&cnsmp_cfg, fi->name, buf, sizeof buf);
	struct inv_rec *r = &(*l->arr)[*l->n];
	r->e.name = strdup(fi->name);
	r->e.department = strdup(dept ? dept : "default");
	r->e.file = fi->file ? strdup(fi->file) : NULL;
	r->e.line = fi->line;
	r->e.weight = cnsmp_rules_weight(&cnsmp_cfg, fi->name);
	r->e.flow = NULL;
	r->state = 0;
	r->module = fi->module ? strdup(fi->module) : NULL;
	r->flow_looked = 0;
	if (!r->e.name || !r->e.department) {
		free(r->e.name);
		free(r->e.department);
		free(r->e.file);
		free(r->module);
		return;
	}
	(*l->n)++;
}

CNSMP_NOINST static int adds_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
		*(unsigned long long *)arg = info->dlpi_adds;
	return 1; /* the counters are the same in every entry: stop */
}

/* Inventory once on the first cycle (not at start-up: DWARF is slow), and
 * again whenever dlopen added objects since. */
CNSMP_NOINST static void take_new_modules(void)
{
	unsigned long long adds = 0;
	dl_iterate_phdr(adds_cb, &adds);
	if (inventoried && adds == dl_adds)
		return;
	inventoried = 1;
	dl_adds = adds;
	pthread_mutex_lock(&staged_mu);
	struct inv_list l = {&recs, &nrecs, &caprecs};
	cnsmp_symbols_inventory(&cnsmp_cfg, inv_cb, &l);
	pthread_mutex_unlock(&staged_mu);
}

/* Staged records join recs (flusher thread). */
CNSMP_NOINST static void take_staged(void)
{
	pthread_mutex_lock(&staged_mu);
	for (size_t i = 0; i < nstaged; i++) {
		if (cnsmp_grow((void **)&recs, &caprecs, nrecs + 1, sizeof *recs) != 0)
			break;
		recs[nrecs++] = staged[i];
	}
	nstaged = 0;
	pthread_mutex_unlock(&staged_mu);
}

CNSMP_NOINST void cnsmp_inventory_now(void)
{
	if (!cnsmp_cfg.api_key || !atomic_load(&cnsmp_active))
		return;
	pthread_mutex_lock(&staged_mu);
	struct inv_list l = {&staged, &nstaged, &capstaged};
	cnsmp_symbols_inventory(&cnsmp_cfg, inv_cb, &l);
	pthread_mutex_unlock(&staged_mu);
}

CNSMP_NOINST void cnsmp_inventory_update(void)
{
	take_new_modules();
	take_staged();
}

CNSMP_NOINST size_t cnsmp_inventory_count(void)
{
	return nrecs;
}

CNSMP_NOINST const struct cnsmp_inv_entry *cnsmp_inventory_entry(size_t i)
{
	return &recs[i].e;
}

CNSMP_NOINST int cnsmp_inventory_state(size_t i)
{
	return recs[i].state;
}

CNSMP_NOINST void cnsmp_inventory_set_state(size_t i, int state)
{
	recs[i].state = state;
}

/* Names that got a flow already: the inventory may list one name twice
 * (a function GCC split into pieces), and a flow goes once per process.
 * An open-addressing set of 64-bit name hashes, flusher thread only; 0 is
 * the empty slot (a name hashing to 0 is taken as 1). */
static uint64_t *flow_names;
static size_t nflow_names, capflow_names;

/* 1 if `name` was not in the set (and is now), 0 if it was or memory ran
 * out (then its flow is not sent: better than twice). */
CNSMP_NOINST static int flow_name_new(const char *name)
{
	if (2 * (nflow_names + 1) > capflow_names) {
		size_t cap = capflow_names ? 2 * capflow_names : 1024;
		uint64_t *t = calloc(cap, sizeof *t);
		if (!t)
			return 0;
		for (size_t i = 0; i < capflow_names; i++) {
			uint64_t h = flow_names[i];
			size_t j = h & (cap - 1);
			while (h && t[j])
				j = (j + 1) & (cap - 1);
			t[j] = h;
		}
		free(flow_names);
		flow_names = t;
		capflow_names = cap;
	}
	uint64_t h = cnsmp_hash_str(name);
	h += !h;
	size_t j = h & (capflow_names - 1);
	for (; flow_names[j]; j = (j + 1) & (capflow_names - 1))
		if (flow_names[j] == h)
			return 0;
	flow_names[j] = h;
	nflow_names++;
	return 1;
}

/* The lookup happens here, on the flusher thread, and not in inv_cb,
 * which the dlclose interposer runs on a thread of the program. */
CNSMP_NOINST void cnsmp_inventory_attach_flows(const char *dir)
{
	for (size_t i = 0; i < nrecs; i++) {
		struct inv_rec *r = &recs[i];
		if (r->flow_looked)
			continue;
		r->flow_looked = 1;
		const char *e = cnsmp_flows_lookup(dir, r->module, r->e.name);
		if (e && flow_name_new(r->e.name))
			r->e.flow = cnsmp_flows_shipped(e, &cnsmp_cfg);
	}
}

/* Records riding in the parent's bodies are the parent's to deliver. */
CNSMP_NOINST void cnsmp_inventory_atfork_child(void)
{
	for (size_t i = 0; i < nrecs; i++)
		if (recs[i].state == CNSMP_INV_RIDING)
			recs[i].state = CNSMP_INV_DONE;
}
