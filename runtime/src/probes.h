/* probes.h: what probes.c (applying specs, the events), probespec.c (a
 * spec, parsed and checked) and probereport.c (the payload's probes
 * section) share: a probe, its results and the table of them.  Private to
 * those three files.
 *
 * A probe is immutable once published but for its results, which every
 * thread updates with relaxed atomic adds and compare-and-swaps, and the
 * `*_sent` fields, the flusher's own (under cnsmp_probes_lock).
 */
#ifndef CODENSM_PROBES_H
#define CODENSM_PROBES_H

#include <jansson.h>
#include "thread.h"

enum { T_LOG = 1, T_HIST, T_INCR, T_STACK, T_USER };
enum { V_DURATION = 1, V_CALLER, V_THREAD, V_ERROR, V_CHAIN, V_COUNT };
enum { S_RECEIVED, S_INSTALLED, S_EMITTING, S_ERROR, S_EXPIRED };

#define LOG_RING 128        /* records kept between two reports */
#define LOG_PER_INTERVAL 100 /* the rate limit: records per report */
#define SPLIT_SLOTS 64      /* incr: distinct callers, threads or outcomes */
#define STACK_SLOTS 32      /* stack: distinct chains */
#define CHAIN_MAX 16        /* frames of a chain, the probed call included */
#define PSTACK_DEPTH CNSMP_STACK_DEPTH /* probed calls in progress on a thread */
#define CARRY_MAX 400        /* log records kept from bodies not delivered */
#define USER_TYPES 16
#define TYPE_MAX 64

struct log_rec {
	_Atomic uint64_t seq;  /* index + 1 once written (release) */
	double t;
	uint64_t tid, dur_ns;
	uint32_t caller;
	int error, event;
};

struct split_slot {
	_Atomic uint64_t key;  /* value + 1; 0: empty */
	_Atomic uint64_t n;
};

struct stack_slot {
	_Atomic uint64_t hash; /* 0: empty; claimed by compare-and-swap */
	_Atomic int ready;     /* chain written */
	uint32_t depth;
	uint32_t chain[CHAIN_MAX]; /* tracked callers' ids, caller first */
	struct cnsmp_fn *fn;   /* the probed function, last of the chain */
	_Atomic uint64_t n;
};

struct cnsmp_probe_user {
	char name[TYPE_MAX];
	codensm_instrument_fn fn;
	void *arg;
};

struct cnsmp_probe {
	/* The spec, read-only once published. */
	char *id, *canon, *target, *type_s, *name, *value_s, *event_s;
	char *lastmodified, *caller_prefix;
	int type, value, event, errors_only, status0; /* S_RECEIVED or S_ERROR */
	char message[256];
	double min_duration_ms, lifespan_min, start, end; /* unix seconds */
	uint64_t sample, max_hits;
	struct cnsmp_probe_user user;
	/* Results, any thread. */
	_Atomic uint64_t hits, tries, taken;
	/* Decisions that armed it since it was applied: 0 means it matches no
	 * function the process has called (a decision made again may count a
	 * function twice, so it says no more than that). */
	_Atomic uint64_t matched;
	_Atomic uint64_t hist[CNSMP_HIST_BUCKETS];
	_Atomic uint64_t count, split_other, stack_other;
	struct split_slot split[SPLIT_SLOTS];
	struct stack_slot stacks[STACK_SLOTS];
	_Atomic uint64_t log_claimed, log_base, log_dropped;
	struct log_rec log[LOG_RING];
	/* Set when a new table leaves it out (removed, or replaced by a
	 * changed spec): calls in progress end without it. */
	_Atomic int retired;
	/* The flusher's (under cnsmp_probes_lock): what was reported, and
	 * log records of bodies that were not delivered, shipped again first
	 * (carry: CARRY_MAX records, allocated on first use, never moved). */
	uint64_t hits_sent, dropped_sent;
	struct log_rec *carry;
	uint32_t ncarry;
	int expired_seen, started_seen;
};

/* Every table applied, newest first (prev): a replaced table, and the
 * probes only it holds, stay reachable (leak checkers stay quiet). */
struct cnsmp_probe_table {
	struct cnsmp_probe_table *prev;
	size_t n;
	struct cnsmp_probe *p[];
};

/* Armed: valid, its lastmodified reached, not expired.  Only an armed
 * probe puts its functions on the hooks' slow path (a RECEIVED or EXPIRED
 * one leaves them cached and fast). */
static inline int cnsmp_probe_armed(const struct cnsmp_probe *p, double now)
{
	return p->status0 != S_ERROR && now >= p->start && now < p->end;
}

/* probespec.c: names of types, values, events and statuses (index: the
 * enums above; [0] of the first three is NULL), and their lookup (0: not
 * found). */
extern const char *const cnsmp_probespec_types[5];
extern const char *const cnsmp_probespec_values[7];
extern const char *const cnsmp_probespec_events[4];
extern const char *const cnsmp_probespec_statuses[5];
int cnsmp_probespec_lookup(const char *const *names, int n, const char *s);
/* A probe from spec `s` of id `id` (canon: its canonical text), with the
 * user types known: valid (status0 S_RECEIVED) or S_ERROR with its reason
 * in message; NULL only if memory ran out. */
struct cnsmp_probe *cnsmp_probespec_parse(const char *id, json_t *s, const char *canon,
					  const struct cnsmp_probe_user *users,
					  size_t nusers);
void cnsmp_probespec_free(struct cnsmp_probe *p); /* NULL is a no-op */

/* probes.c: the current table (NULL: none yet), the time probes see, and
 * the lock of the specs, which the report holds while it reads and
 * advances the `*_sent` fields. */
struct cnsmp_probe_table *cnsmp_probes_table(void);
double cnsmp_probes_now(void);
void cnsmp_probes_lock(void);
void cnsmp_probes_unlock(void);

#endif /* CODENSM_PROBES_H */
