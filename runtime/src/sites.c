/* sites.c: writes the hook-call sites patch.c decided to patch into the
 * running code, in batches, and gives them back (sites.h).
 *
 * Page permissions: the page goes to its segment's protection plus write
 * for the stores, and straight back (execute is never taken away: other
 * threads run there meanwhile).  A written page becomes a private copy of
 * the file's page: 4 kB of memory per page of code that ever held a
 * patched site.  Every change is a store of one or two bytes within a
 * cache line, which every thread fetches whole, and every core is
 * serialised (membarrier's sync-core command) between the steps that
 * need it (see cnsmp_sites_write).  Without that command (kernels before
 * 4.16) the mprotect that takes the write permission back serves
 * instead: it shoots down the TLB entry on every CPU running the process,
 * with an interrupt whose return serialises the core. */
#include <errno.h>
#include <string.h>
#include "sites.h"

#if defined(__x86_64__) && !defined(__ILP32__) && defined(__linux__)

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/membarrier.h>

pthread_mutex_t cnsmp_sites_mu = PTHREAD_MUTEX_INITIALIZER;

/* The sites patched now: only those; a restore empties the list, and the
 * sites are patched again on their next call if still excluded. */
static struct site *sites; /* mu */
static size_t nsites, capsites;

/* Pages ever written (mu): their count is the memory made private. */
static uintptr_t *pages; /* open addressing, 0: empty */
static size_t npages, cappages;

/* Counts for the exit line (mu). */
static uint64_t n_patched, n_restored, n_wide, n_nop, n_args;

/* Sites waiting to be written (mu).  A site is not written on its first
 * call but queued, and the queue is written in one batch: every page it
 * touches made writable once (contiguous pages in one mprotect), every
 * core serialised twice for all of its NOPs together, instead of two
 * mprotect and two membarrier calls per site (a program reaching a
 * thousand excluded sites at start-up would pay milliseconds for that).
 * A batch is written when the queue is full, when the waiting sites have
 * been called PEND_HITS times in all (each such call still goes through
 * the hooks: about as much time as one batch costs, so waiting never
 * costs more than twice the least it could), at each flusher cycle
 * (cnsmp_patch_flush), and never after a change of decisions or a
 * dlclose, which empty the queue: its sites are examined again on their
 * next call.  `pend_keys` holds the queued sites' keys (a call's return
 * address, or a tail exit's tail_key), read without the lock by the
 * hooks: a waiting site is counted, not examined again. */
#define PEND_CALLS 64
#define PEND_MAX (2 * PEND_CALLS) /* each call with the load of its argument */
#define PEND_BITS 8 /* at most PEND_CALLS keys: a quarter full */
#define PEND_HITS 4096
struct pend {
	struct site s;
	uintptr_t fn, hook;
	unsigned e;
	int prot;
	int ok; /* cnsmp_sites_write: still to be written */
};
static struct pend pend[PEND_MAX];
static size_t npend, ncalls, npkeys; /* ncalls: pend's sites that are no `arg` */
static _Atomic uintptr_t pend_keys[1u << PEND_BITS];
static _Atomic unsigned pend_hits;
static _Atomic int pend_any; /* npend != 0, for the hooks */
static uint64_t n_batches; /* for the exit line (mu) */

static _Atomic int sync_core; /* 1: registered for MEMBARRIER sync-core */

/* Store len (1 or 2) bytes at p with one instruction (p need not be
 * aligned: a 2-byte store within one cache line is atomic on x86-64). */
static CNSMP_NOINST void store(uintptr_t p, const uint8_t b[2], unsigned len)
{
	if (len == 1) {
		__asm__ volatile("movb %1, (%0)" : : "r"(p), "q"(b[0]) : "memory");
		return;
	}
	uint16_t v;
	memcpy(&v, b, 2);
	__asm__ volatile("movw %1, (%0)" : : "r"(p), "r"(v) : "memory");
}

static CNSMP_NOINST long membarrier(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

/* Register for the sync-core command (once per process; again in a
 * fork child, whose address space is new). */
CNSMP_NOINST void cnsmp_sites_sync_register(void)
{
	long q = membarrier(MEMBARRIER_CMD_QUERY);
	int ok = q >= 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE) &&
		 membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE) == 0;
	atomic_store(&sync_core, ok);
}

CNSMP_NOINST void cnsmp_sites_sync_again(void)
{
	if (atomic_load(&sync_core))
		cnsmp_sites_sync_register();
}

/* Every thread of the process serialises its instruction stream. */
static CNSMP_NOINST void sync_all(void)
{
	if (atomic_load(&sync_core))
		membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE);
}

CNSMP_NOINST void *cnsmp_sites_grow(void *p, size_t old, size_t new)
{
	void *q = NULL;
	if (new) {
		q = mmap(NULL, new, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (q == MAP_FAILED)
			return NULL;
		if (p)
			memcpy(q, p, old < new ? old : new);
	}
	if (p)
		munmap(p, old);
	return q;
}

/* Add `page` to the open-addressing set (mu held, room guaranteed). */
static CNSMP_NOINST int page_put(uintptr_t *set, size_t cap, uintptr_t page)
{
	size_t j = (page >> 12) & (cap - 1);
	for (; set[j]; j = (j + 1) & (cap - 1))
		if (set[j] == page)
			return 0;
	set[j] = page;
	return 1;
}

/* Remember that `page` was written (mu held); out of memory only
 * undercounts. */
static CNSMP_NOINST void note_page(uintptr_t page)
{
	if ((npages + 1) * 2 > cappages) {
		size_t n = cappages ? cappages * 2 : 512;
		uintptr_t *np = cnsmp_sites_grow(NULL, 0, n * sizeof *np);
		if (!np)
			return;
		for (size_t i = 0; i < cappages; i++)
			if (pages[i])
				page_put(np, n, pages[i]);
		cnsmp_sites_grow(pages, cappages * sizeof *pages, 0);
		pages = np;
		cappages = n;
	}
	npages += page_put(pages, cappages, page);
}

/* The jump that skips a call of `len` bytes while its other bytes change
 * (cnsmp_sites_to_nop, cnsmp_sites_restore). */
static inline void skip_jump(uint8_t j[2], unsigned len)
{
	j[0] = 0xeb;
	j[1] = (uint8_t)(len - 2);
}

/* The NOP of each length a call (5 or 6) or an argument's load (2 to 8)
 * becomes: Intel's recommended forms; index: length - 2. */
static const uint8_t nop_of[7][8] = {
	{0x66, 0x90},
	{0x0f, 0x1f, 0x00},
	{0x0f, 0x1f, 0x40, 0x00},
	{0x0f, 0x1f, 0x44, 0x00, 0x00},
	{0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00},
	{0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00},
	{0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
};


/* Are the n bytes at `at` on one page (a batch makes only the page of a
 * site's first byte writable)? */
static CNSMP_NOINST int one_page(uintptr_t at, unsigned n)
{
	uintptr_t psz = (uintptr_t)sysconf(_SC_PAGESIZE);
	return ((at + n - 1) & ~(psz - 1)) == (at & ~(psz - 1));
}

/* Make site `s`, a call patched to the jump over itself, a NOP instead:
 * a taken jump costs the front end a redirect, a NOP nothing measurable
 * (bench: "hook calls as NOPs").  Only a plain call (not widened: other
 * threads may stop inside a widened site's set-up, whose bytes must not
 * change), within one page. */
CNSMP_NOINST void cnsmp_sites_to_nop(struct site *s)
{
	/* the steps need every core serialised between them */
	if (s->wide || s->len != 2 || s->now[0] != 0xeb || !atomic_load(&sync_core))
		return;
	unsigned len = s->now[1] + 2u; /* 5 (e8) or 6 (ff 15) */
	if (!one_page(s->at, len))
		return;
	memcpy(s->now, nop_of[len - 2], len); /* orig: all of it from decode */
	s->len = (uint8_t)len;
	s->nop = 1;
}

/* The load becomes a NOP of its own length, so that every instruction
 * boundary stays one: a thread stopped after an instruction before it, or
 * at it, runs on as it would have.  Only its first two bytes change with
 * one store, after the jump over it (the steps of a call's NOP). */
CNSMP_NOINST int cnsmp_sites_arg_nop(struct site *s, uintptr_t at, unsigned len)
{
	if (len < 2 || len > 8 || (at & 63) == 63 || !atomic_load(&sync_core) ||
	    !one_page(at, len))
		return -1;
	*s = (struct site){.at = at, .len = (uint8_t)len, .nop = 1, .arg = 1};
	memcpy(s->orig, (const void *)at, len);
	memcpy(s->now, nop_of[len - 2], len);
	return 0;
}

static CNSMP_NOINST int by_address(const void *a, const void *b)
{
	uintptr_t x = ((const struct site *)a)->at, y = ((const struct site *)b)->at;
	return x < y ? -1 : x > y;
}

/* Restore the sites in [lo, hi) (mu held): each one whose bytes are still
 * the patched ones gets its original bytes back, and leaves the list.
 * One mprotect pair per page, so that a change of decisions costs
 * about one system call per page of patched code. */
CNSMP_NOINST void cnsmp_sites_restore(uintptr_t lo, uintptr_t hi)
{
	if (!nsites)
		return; /* nothing patched (sites may still be NULL) */
	uintptr_t psz = (uintptr_t)sysconf(_SC_PAGESIZE);
	int any = 0;
	qsort(sites, nsites, sizeof *sites, by_address);
	size_t keep = 0, i = 0;
	while (i < nsites) {
		if (sites[i].at < lo || sites[i].at >= hi) {
			sites[keep++] = sites[i++];
			continue;
		}
		uintptr_t page = sites[i].at & ~(psz - 1);
		size_t j = i;
		while (j < nsites && sites[j].at < hi && (sites[j].at & ~(psz - 1)) == page)
			j++;
		/* Still mapped as the segment it was patched in (a module that
		 * left without our dlclose is not written to). */
		int prot = cnsmp_patch_seg_prot(sites[i].at);
		if (prot < 0) {
			i = j;
			continue;
		}
		any = 1;
		if (mprotect((void *)page, psz, prot | PROT_WRITE) < 0) {
			cnsmp_log(CNSMP_LOG_DEBUG, "call-site patching: cannot restore "
				  "the calls at %p: %s", (void *)page, strerror(errno));
			i = j;
			continue;
		}
		/* A NOP site goes back in the reverse steps of cnsmp_sites_write: the
		 * jump over it, every core serialised, the call's other bytes,
		 * every core serialised, its first two bytes.  Only a site
		 * whose bytes are still the NOP (nop = 2 marks it) is touched. */
		int nops = 0;
		for (size_t k = i; k < j; k++) {
			struct site *t = &sites[k];
			if (t->nop && memcmp((const void *)t->at, t->now, t->len) == 0) {
				uint8_t jmp[2];
				skip_jump(jmp, t->len);
				store(t->at, jmp, 2);
				t->nop = 2;
				nops = 1;
			}
		}
		if (nops) {
			sync_all();
			for (size_t k = i; k < j; k++)
				if (sites[k].nop == 2)
					memcpy((void *)(sites[k].at + 2), sites[k].orig + 2,
					       sites[k].len - 2u);
			sync_all();
		}
		for (; i < j; i++) {
			struct site *t = &sites[i];
			if (t->nop == 2) {
				store(t->at, t->orig, 2);
				n_restored += !t->arg;
			} else if (t->nop) {
				continue; /* not the NOP it was made (see above) */
			} else if (memcmp((const void *)t->at, t->now, t->len) == 0) {
				store(t->at, t->orig, t->len);
				n_restored++;
			}
		}
		if (mprotect((void *)page, psz, prot) < 0)
			cnsmp_log(CNSMP_LOG_DEBUG, "call-site patching: mprotect(%p) back "
				  "failed: %s", (void *)page, strerror(errno));
	}
	nsites = keep;
	if (any)
		sync_all(); /* every thread sees the calls back before this returns */
}

/* Is `key` a waiting site's? */
CNSMP_NOINST int cnsmp_sites_waiting(uintptr_t key)
{
	return atomic_load_explicit(&pend_any, memory_order_relaxed) &&
	       cnsmp_sites_in_set(pend_keys, PEND_BITS, key);
}

static CNSMP_NOINST int queued(uintptr_t at)
{
	for (size_t i = 0; i < npend; i++)
		if (pend[i].s.at == at)
			return 1;
	return 0;
}

CNSMP_NOINST int cnsmp_sites_queue(const struct site *s, const struct site *arg, int prot,
				   uintptr_t fn, uintptr_t hook, unsigned e)
{
	if (memcmp((const void *)s->at, s->orig, s->len) != 0 || queued(s->at))
		return 0;
	if (arg && (memcmp((const void *)arg->at, arg->orig, arg->len) != 0 || queued(arg->at)))
		arg = NULL;
	if (npend + 2 > PEND_MAX || ncalls == PEND_CALLS)
		cnsmp_sites_write();
	pend[npend++] = (struct pend){.s = *s, .fn = fn, .hook = hook, .e = e, .prot = prot};
	ncalls++;
	if (arg)
		pend[npend++] = (struct pend){.s = *arg, .fn = fn, .hook = hook, .e = e, .prot = prot};
	atomic_store_explicit(&pend_any, 1, memory_order_relaxed);
	if (ncalls == PEND_CALLS)
		cnsmp_sites_write();
	return 1;
}

/* Remember `key` as waiting (mu held). */
CNSMP_NOINST void cnsmp_sites_wait_key(uintptr_t key)
{
	if (cnsmp_sites_in_set(pend_keys, PEND_BITS, key) || npkeys >= PEND_CALLS)
		return;
	npkeys++;
	cnsmp_sites_set_add(pend_keys, PEND_BITS, key);
	atomic_store_explicit(&pend_any, 1, memory_order_relaxed);
}

/* Empty the queue (mu held). */
CNSMP_NOINST void cnsmp_sites_drop(void)
{
	npend = ncalls = 0;
	atomic_store_explicit(&pend_any, 0, memory_order_relaxed);
	if (npkeys)
		for (size_t i = 0; i < (1u << PEND_BITS); i++)
			atomic_store_explicit(&pend_keys[i], 0, memory_order_relaxed);
	npkeys = 0;
	atomic_store_explicit(&pend_hits, 0, memory_order_relaxed);
}

/* Sort the queue by address (mu held): an insertion sort, since qsort
 * may allocate and a batch may be written from a signal handler. */
static CNSMP_NOINST void pend_sort(void)
{
	for (size_t i = 1; i < npend; i++) {
		struct pend p = pend[i];
		size_t j = i;
		for (; j > 0 && pend[j - 1].s.at > p.s.at; j--)
			pend[j] = pend[j - 1];
		pend[j] = p;
	}
}

/* Give the queue's pages (sorted by address) their segment's protection
 * plus `extra`, each run of contiguous pages of one protection in one
 * mprotect, stopping after *npg pages; *npg: how many were done.
 * -1 (errno set) if the system refused to add `extra`. */
static CNSMP_NOINST int protect_pending(int extra, size_t *npg)
{
	uintptr_t psz = (uintptr_t)sysconf(_SC_PAGESIZE);
	size_t i = 0, done = 0, upto = *npg;
	int rc = 0;
	while (i < npend && done < upto) {
		uintptr_t lo = pend[i].s.at & ~(psz - 1), hi = lo + psz;
		int prot = pend[i].prot;
		size_t j = i + 1, n = 1;
		for (; j < npend && pend[j].prot == prot; j++) {
			uintptr_t p = pend[j].s.at & ~(psz - 1);
			if (p == hi - psz)
				continue;
			if (p != hi || done + n >= upto)
				break;
			hi += psz;
			n++;
		}
		if (mprotect((void *)lo, hi - lo, prot | extra) < 0) {
			if (extra) {
				rc = -1;
				break;
			}
			cnsmp_log(CNSMP_LOG_DEBUG, "call-site patching: mprotect(%p) back "
				  "to read-execute failed: %s", (void *)lo, strerror(errno));
		}
		if (extra)
			for (uintptr_t p = lo; p < hi; p += psz)
				note_page(p);
		done += n;
		i = j;
	}
	*npg = done;
	return rc;
}

/* Write the queue (mu held) and list what was written.  Each site is
 * decided again first (cnsmp_patch_may: decisions may have changed since it
 * was queued) and written only if its bytes are still the original
 * ones.  A NOP site in three steps, each leaving an instruction every
 * thread may run, with every core serialised between them, so that none
 * can fetch a step's bytes beside an earlier step's (a call that spans
 * two cache lines is fetched in two parts): the jump over the call (its
 * first two bytes), the bytes it skips, the NOP's first two bytes.  The
 * steps are taken for the whole batch at once. */
CNSMP_NOINST void cnsmp_sites_write(void)
{
	if (!npend)
		goto out;
	if (capsites - nsites < npend) {
		size_t n = capsites ? capsites * 2 : 256;
		while (n - nsites < npend)
			n *= 2;
		struct site *ns = cnsmp_sites_grow(sites, capsites * sizeof *ns, n * sizeof *ns);
		if (!ns)
			goto out;
		sites = ns;
		capsites = n;
	}
	pend_sort();
	size_t made = SIZE_MAX, all = SIZE_MAX;
	if (protect_pending(PROT_WRITE, &made) < 0) {
		int err = errno;
		protect_pending(0, &made); /* the pages made writable, back */
		errno = err;
		cnsmp_patch_refused();
		goto out;
	}
	int nops = 0;
	for (size_t i = 0; i < npend; i++) {
		struct pend *p = &pend[i];
		struct site *s = &p->s;
		p->ok = cnsmp_patch_may(p->fn, p->hook, p->e) &&
			memcmp((const void *)s->at, s->orig, s->len) == 0;
		if (!p->ok)
			continue;
		if (s->nop) {
			uint8_t j[2];
			skip_jump(j, s->len);
			store(s->at, j, 2);
			nops = 1;
		} else {
			store(s->at, s->now, s->len);
		}
	}
	if (nops) {
		sync_all();
		for (size_t i = 0; i < npend; i++)
			if (pend[i].ok && pend[i].s.nop)
				memcpy((void *)(pend[i].s.at + 2), pend[i].s.now + 2,
				       pend[i].s.len - 2u);
		sync_all();
		for (size_t i = 0; i < npend; i++)
			if (pend[i].ok && pend[i].s.nop)
				store(pend[i].s.at, pend[i].s.now, 2);
	}
	protect_pending(0, &all);
	for (size_t i = 0; i < npend; i++) {
		if (!pend[i].ok)
			continue;
		sites[nsites++] = pend[i].s;
		if (pend[i].s.arg) {
			n_args++;
			continue;
		}
		n_patched++;
		n_wide += pend[i].s.wide;
		n_nop += pend[i].s.nop;
	}
	n_batches++;
out:
	cnsmp_sites_drop();
}

/* Are tail exits of `fn` in the queue? */
CNSMP_NOINST int cnsmp_sites_fn_waiting(uintptr_t fn, uintptr_t hook)
{
	int found = 0;
	pthread_mutex_lock(&cnsmp_sites_mu);
	for (size_t i = 0; i < npend && !found; i++)
		found = pend[i].fn == fn && pend[i].hook == hook;
	pthread_mutex_unlock(&cnsmp_sites_mu);
	return found;
}

/* A waiting site was called again (its key is pending): count it, and
 * write the queue once PEND_HITS such calls were made, unless another
 * thread holds mu (it may be writing the queue already). */
CNSMP_NOINST void cnsmp_sites_hit(void)
{
	if (atomic_fetch_add_explicit(&pend_hits, 1, memory_order_relaxed) + 1 < PEND_HITS)
		return;
	int guard = cnsmp_tls.guard;
	cnsmp_tls.guard = 1;
	if (pthread_mutex_trylock(&cnsmp_sites_mu) == 0) {
		cnsmp_sites_write();
		pthread_mutex_unlock(&cnsmp_sites_mu);
	}
	cnsmp_tls.guard = guard;
}

CNSMP_NOINST int cnsmp_sites_any_waiting(void)
{
	return atomic_load_explicit(&pend_any, memory_order_relaxed);
}

/* Put the original bytes of every patched site in [lo, hi) into `copy`. */
CNSMP_NOINST void cnsmp_sites_originals(uint8_t *copy, uintptr_t lo, uintptr_t hi)
{
	for (size_t i = 0; i < nsites; i++) {
		if (sites[i].at >= hi || sites[i].at + sites[i].len <= lo)
			continue;
		for (unsigned k = 0; k < sites[i].len; k++)
			if (sites[i].at + k >= lo && sites[i].at + k < hi)
				copy[sites[i].at + k - lo] = sites[i].orig[k];
	}
}

CNSMP_NOINST void cnsmp_sites_stats(struct cnsmp_sites_stats *st)
{
	/* calls waiting: an argument's load waits with its call */
	*st = (struct cnsmp_sites_stats){n_patched, n_restored, n_wide, n_nop, n_args,
					 n_batches, ncalls, npages};
}

#else /* not x86-64 Linux: nothing is patched (patch.c) */

typedef int cnsmp_no_sites; /* ISO C wants a declaration in every file */

#endif
