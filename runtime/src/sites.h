/* sites.h: the call sites patch.c decided to patch, and the writing of
 * them into the running code (sites.c), for patch.c alone.
 *
 * patch.c decides which hook call to patch and into what bytes; sites.c
 * queues those sites, writes them in batches (page permissions, one-store
 * changes, every core serialised between steps), keeps the list of what
 * is patched, and gives the original bytes back.  Everything here runs
 * under cnsmp_sites_mu unless said otherwise. */
#ifndef CNSMP_SITES_H
#define CNSMP_SITES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "thread.h"

/* A site to patch, or patched: where, and the bytes before and after. */
struct site {
	uintptr_t at;
	uint8_t orig[8], now[8];
	uint8_t len; /* bytes that change: 2, or 1 (see decode), or the whole
		      * call (5 or 6) once it is a NOP (`nop`), or the whole
		      * load (2 to 8) for `arg` */
	uint8_t nop; /* 1: the call becomes a NOP (cnsmp_sites_to_nop) */
	uint8_t wide; /* 1: the jump skips the argument set-up too (widen) */
	uint8_t arg; /* 1: not a call but the load of a hook call's second
		      * argument, made a NOP with it (cnsmp_sites_arg_nop) */
};

/* Every patch is decided and written under it. */
extern pthread_mutex_t cnsmp_sites_mu;

/* Defined by patch.c.  May a site of `fn` calling `hook` be written now
 * (decided again just before writing)?  `e`: the dlclose epoch the site
 * was examined under. */
int cnsmp_patch_may(uintptr_t fn, uintptr_t hook, unsigned e);
/* The system refused writable code: patching off for the process. */
void cnsmp_patch_refused(void);
/* The protection of the loaded segment holding `at`, -1 if none does
 * (its module left). */
int cnsmp_patch_seg_prot(uintptr_t at);

/* A zeroed copy of the `old` bytes at p in `new` bytes (new 0: free p);
 * NULL if out of memory.  mmap, not malloc: a patch may be made from a
 * signal handler that interrupted malloc on this thread.  No lock. */
void *cnsmp_sites_grow(void *p, size_t old, size_t new);

/* Is `key` in the open-addressing set of 2^bits slots (0: empty)?  Read
 * without a lock: a stale answer costs one more examination, or a site
 * left calling until its next chance. */
static inline int cnsmp_sites_in_set(_Atomic uintptr_t *set, unsigned bits, uintptr_t key)
{
	const size_t mask = (1u << bits) - 1;
	for (size_t i = cnsmp_addr_slot(key, bits);; i = (i + 1) & mask) {
		uintptr_t a = atomic_load_explicit(&set[i], memory_order_relaxed);
		if (a == key)
			return 1;
		if (!a)
			return 0;
	}
}

/* Add `key` to the set (under a lock; the caller keeps it at most half
 * full, and `key` not in it yet). */
static inline void cnsmp_sites_set_add(_Atomic uintptr_t *set, unsigned bits, uintptr_t key)
{
	const size_t mask = (1u << bits) - 1;
	size_t i = cnsmp_addr_slot(key, bits);
	while (atomic_load_explicit(&set[i], memory_order_relaxed))
		i = (i + 1) & mask;
	atomic_store_explicit(&set[i], key, memory_order_release);
}

/* Register for membarrier's sync-core command (no lock); again in a fork
 * child if the parent was (cnsmp_sites_sync_again). */
void cnsmp_sites_sync_register(void);
void cnsmp_sites_sync_again(void);
/* Make site `s`, a call patched to the jump over itself, a NOP of its
 * length instead where that can be done (see sites.c). */
void cnsmp_sites_to_nop(struct site *s);

/* Make `s` the site that turns the `len` bytes at `at` (2 to 8, one
 * instruction: the load of a hook call's second argument) into a NOP of
 * that length, in the steps of a call's NOP; -1 if it cannot be done
 * there (two pages, the first two bytes across a cache line, no
 * sync-core command). */
int cnsmp_sites_arg_nop(struct site *s, uintptr_t at, unsigned len);

/* Queue site `s` of `fn` calling `hook`, with `arg` (the load of the
 * call's second argument, or NULL) in the same batch, in a segment of
 * protection `prot`, examined under dlclose epoch `e`; a full queue is
 * written first.  0 if its bytes are not the original ones any more or
 * it is queued already. */
int cnsmp_sites_queue(const struct site *s, const struct site *arg, int prot, uintptr_t fn,
		      uintptr_t hook, unsigned e);
/* Remember `key` (a return address, or a tail exit's key) as a waiting
 * site's, so that its calls count as hits instead of being examined. */
void cnsmp_sites_wait_key(uintptr_t key);
/* Is `key` a waiting site's?  No lock. */
int cnsmp_sites_waiting(uintptr_t key);
/* Any site waiting?  No lock. */
int cnsmp_sites_any_waiting(void);
/* Are exits of `fn` to `hook` waiting? */
int cnsmp_sites_fn_waiting(uintptr_t fn, uintptr_t hook);
/* Write the queue now / forget it. */
void cnsmp_sites_write(void);
void cnsmp_sites_drop(void);
/* A waiting site was called again: counted, and the queue written once
 * the waiting sites have had enough calls.  Called without the lock
 * (it only tries to take it). */
void cnsmp_sites_hit(void);

/* Give the sites in [lo, hi) their original bytes back and forget them;
 * every core is serialised before it returns if any was patched. */
void cnsmp_sites_restore(uintptr_t lo, uintptr_t hi);
/* Put the original bytes of every patched site back into `copy`, a copy
 * of the code [lo, hi). */
void cnsmp_sites_originals(uint8_t *copy, uintptr_t lo, uintptr_t hi);

/* What the exit line reports. */
struct cnsmp_sites_stats {
	uint64_t patched, restored, wide, nop, args, batches;
	size_t waiting, pages;
};
void cnsmp_sites_stats(struct cnsmp_sites_stats *st);

#endif
