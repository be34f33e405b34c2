/* decoded.c: what decoding each function found for call-site patching (its
 * exits that the compiler tail-jumped, the loads of the hooks' second
 * argument before its hook calls), kept on disk between runs of the same
 * build, so that patch.c decodes a function's code once per build rather
 * than once per process.
 *
 * Why: finding a tail-jumped exit means decoding the function from its
 * entry (insn.c, Zydis: about a thousand instructions per instruction
 * decoded), and an interpreter reaches hundreds of excluded functions
 * with such exits; decoding was most of what patching cost a short run.
 * The result depends only on the module's bytes and on this runtime, so
 * the file is named like the symbol cache's index (the module's build-id
 * and a hash of the runtime's, symbols.c), ends in ".exits", lives in the
 * symbol cache's folder and is pruned with it (symcache.c).
 *
 * What is kept: for each function examined, the jumps to the exit hook
 * that patch.c accepted (offsets from the function's entry, and their
 * form); none for a function that had none.  Apart (a record whose key
 * has ARGS set), for each function whose hook calls were decoded, each
 * of its calls with the load of %rsi before it that can become a NOP, if
 * any (decoded.h's cnsmp_arg, three words, by return address), and a hash
 * of the bytes from the load to the call's end that patch.c checks in
 * the running code.  Trust: the file is read like
 * the index (whole, its size exactly what its header says, its checksum
 * matching, every record checked), and patch.c checks each jump's bytes
 * and target in the running code again before writing it, as for a
 * decoded one; what the file alone vouches for is what was proven when it
 * was written: that the jump starts an instruction (the decoder) and that
 * the function loads itself as a constant before it (patch.c's made_for).
 *
 * Written, whole and through a rename, at the flusher's cycle and at exit
 * when entries were added: two processes of one build racing can only
 * lose each other's new entries, each costing one decode in a later run.
 *
 * Locking: `mu` here, taken on patch.c's slow paths with the thread's
 * hook guard set (a signal handler's hooks on the same thread never get
 * here), and held across the file's read and write; never while holding
 * patch.c's or sites.c's locks.  Tables come from mmap (cnsmp_sites_grow)
 * like sites.c's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "sites.h"
#include "decoded.h"

#define MAGIC "CNSMEXT2"
#define ARGS ((uint64_t)1 << 62) /* a record of loads (cnsmp_arg), not exits */
#define ARG_WORDS 3
#define MAX_MODULES 16
#define MAX_FNS (1u << 20) /* entries per module: no module comes near */
#define MAX_FILE ((size_t)64 << 20)

struct tfn {
	uint64_t fn;    /* offset from the module's bias, + 1 (0: empty slot),
			 * | ARGS for a record of loads */
	uint32_t first; /* its first offset in `offs` */
	uint16_t n;     /* how many words */
	uint16_t mem;   /* exits: bit i: jump i is `jmp *disp(%rip)` (ff 25),
			 * else e9; loads: 0 */
};

struct tmod {
	char key[192];
	char dir[CNSMP_SPOOL_PATH];
	uintptr_t bias, first, last;
	struct tfn *tab; /* open addressing, at most half full */
	size_t cap, n;
	uint32_t *offs; /* each jump's offset from its function's entry */
	size_t noffs, capoffs;
	int dirty;
};

/* On disk (host byte order), then a cnsmp_hash of everything before it. */
struct hdr {
	char magic[8];
	uint32_t nfn, noffs;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct tmod mods[MAX_MODULES]; /* mu; key[0] == 0: free */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static CNSMP_NOINST void fork_prepare(void) { pthread_mutex_lock(&mu); }
static CNSMP_NOINST void fork_release(void) { pthread_mutex_unlock(&mu); }
static CNSMP_NOINST void init(void) { pthread_atfork(fork_prepare, fork_release, fork_release); }

static CNSMP_NOINST struct tfn *slot(struct tfn *t, size_t cap, uint64_t fn)
{
	size_t i = (size_t)(cnsmp_hash_mix(fn) & (cap - 1));
	while (t[i].fn && t[i].fn != fn)
		i = (i + 1) & (cap - 1);
	return &t[i];
}

/* Room for one more function and n more offsets in m (mu held). */
static CNSMP_NOINST int room(struct tmod *m, size_t n)
{
	if ((m->n + 1) * 2 > m->cap) {
		if (m->n >= MAX_FNS)
			return -1;
		size_t cap = m->cap ? m->cap * 2 : 1024;
		struct tfn *t = cnsmp_sites_grow(NULL, 0, cap * sizeof *t);
		if (!t)
			return -1;
		for (size_t i = 0; i < m->cap; i++)
			if (m->tab[i].fn)
				*slot(t, cap, m->tab[i].fn) = m->tab[i];
		cnsmp_sites_grow(m->tab, m->cap * sizeof *m->tab, 0);
		m->tab = t;
		m->cap = cap;
	}
	if (m->noffs + n > m->capoffs) {
		size_t cap = m->capoffs ? m->capoffs * 2 : 4096;
		while (cap < m->noffs + n)
			cap *= 2;
		uint32_t *o = cnsmp_sites_grow(m->offs, m->capoffs * sizeof *o, cap * sizeof *o);
		if (!o)
			return -1;
		m->offs = o;
		m->capoffs = cap;
	}
	return 0;
}

/* Add fn (an offset + 1) with its n jumps to m (mu held); an entry there
 * already is replaced (its old offsets stay unused until m is written). */
static CNSMP_NOINST int add(struct tmod *m, uint64_t fn, const void *offs, size_t n,
			    uint16_t mem)
{
	if (room(m, n) != 0)
		return -1;
	struct tfn *t = slot(m->tab, m->cap, fn);
	m->n += !t->fn;
	*t = (struct tfn){fn, (uint32_t)m->noffs, (uint16_t)n, mem};
	if (n) /* m->offs is NULL until a function has an entry */
		memcpy(m->offs + m->noffs, offs, n * sizeof *m->offs);
	m->noffs += n;
	return 0;
}

/* Read m's file into m (mu held): every record, or none if any is bad. */
static CNSMP_NOINST void load(struct tmod *m)
{
	char path[CNSMP_SPOOL_PATH];
	size_t len = 0;
	if ((size_t)snprintf(path, sizeof path, "%s/%s", m->dir, m->key) >= sizeof path)
		return;
	unsigned char *p = (unsigned char *)cnsmp_spool_read_file(path, MAX_FILE, &len);
	if (!p) {
		if (errno != ENOENT)
			cnsmp_log(CNSMP_LOG_DEBUG, "cannot read %s: %s", path, strerror(errno));
		return;
	}
	struct hdr h;
	uint64_t sum;
	const char *bad = NULL;
	if (len < sizeof h + sizeof sum)
		bad = "cut short";
	else {
		memcpy(&h, p, sizeof h);
		memcpy(&sum, p + len - sizeof sum, sizeof sum);
		if (memcmp(h.magic, MAGIC, sizeof h.magic))
			bad = "not a file of tail exits of this runtime";
		else if (h.nfn > MAX_FNS || sizeof h + (uint64_t)h.nfn * sizeof(struct tfn) +
						(uint64_t)h.noffs * 4 + sizeof sum != len)
			bad = "its size is not what its header says";
		else if (cnsmp_hash(CNSMP_HASH_SEED, p, len - sizeof sum) != sum)
			bad = "its checksum does not match";
	}
	const unsigned char *rf = p + sizeof h;
	const uint32_t *ro = NULL;
	uint64_t span = m->last - m->bias;
	for (uint32_t i = 0; !bad && i < h.nfn; i++) {
		struct tfn t;
		memcpy(&t, rf + (size_t)i * sizeof t, sizeof t);
		uint64_t off = t.fn & ~ARGS;
		int args = (t.fn & ARGS) != 0;
		if (!off || off > span || (uint64_t)t.first + t.n > h.noffs ||
		    (args ? t.n % ARG_WORDS || t.n > ARG_WORDS * CNSMP_ARGS_MAX || t.mem
			  : t.n > CNSMP_TAILS_MAX || (t.mem >> t.n) != 0))
			bad = "a record is out of range";
	}
	if (!bad) {
		ro = (const uint32_t *)(rf + (size_t)h.nfn * sizeof(struct tfn));
		for (uint32_t i = 0; i < h.nfn; i++) {
			struct tfn t;
			memcpy(&t, rf + (size_t)i * sizeof t, sizeof t);
			/* ro may be unaligned in p: add copies word by word */
			if (add(m, t.fn, (const unsigned char *)(ro + t.first), t.n, t.mem) != 0)
				break; /* out of memory: what is in stays usable */
		}
		utimensat(AT_FDCWD, path, NULL, 0); /* used now: pruned last */
	} else {
		/* rewritten at the next save if anything is added */
		cnsmp_log(CNSMP_LOG_DEBUG, "%s could not be used (%s): its functions' "
			  "exits are decoded again", path, bad);
	}
	free(p);
}

/* m's entries in one buffer (format above), written to its file (mu held). */
static CNSMP_NOINST void save(struct tmod *m)
{
	if (!m->dirty)
		return;
	m->dirty = 0;
	size_t live = 0;
	for (size_t i = 0; i < m->cap; i++)
		live += m->tab[i].fn ? m->tab[i].n : 0;
	size_t size = sizeof(struct hdr) + m->n * sizeof(struct tfn) + live * 4 + 8;
	unsigned char *b = cnsmp_sites_grow(NULL, 0, size);
	if (!b)
		return;
	struct hdr h = {MAGIC, (uint32_t)m->n, (uint32_t)live};
	memcpy(b, &h, sizeof h);
	unsigned char *rf = b + sizeof h;
	uint32_t *ro = (uint32_t *)(rf + m->n * sizeof(struct tfn));
	uint32_t k = 0, j = 0;
	for (size_t i = 0; i < m->cap; i++) {
		struct tfn t = m->tab[i];
		if (!t.fn)
			continue;
		if (t.n)
			memcpy(ro + j, m->offs + t.first, t.n * sizeof *ro);
		t.first = j;
		j += t.n;
		memcpy(rf + (size_t)k++ * sizeof t, &t, sizeof t);
	}
	uint64_t sum = cnsmp_hash(CNSMP_HASH_SEED, b, size - 8);
	memcpy(b + size - 8, &sum, 8);
	if (cnsmp_symcache_write(m->dir, m->key, b, size) != 0)
		cnsmp_log(CNSMP_LOG_DEBUG, "cannot write %s/%s: %s", m->dir, m->key,
			  strerror(errno));
	cnsmp_sites_grow(b, size, 0);
}

/* The module holding `addr`, its file read on first need (mu held);
 * NULL without a build-id, without a symbol cache, or with no room. */
static CNSMP_NOINST struct tmod *module(uintptr_t addr)
{
	for (size_t i = 0; i < MAX_MODULES; i++)
		if (mods[i].key[0] && mods[i].first <= addr && addr < mods[i].last)
			return &mods[i];
	const char *dir = cnsmp_cfg.symbol_cache;
	struct tmod *m = NULL;
	for (size_t i = 0; i < MAX_MODULES && !m; i++)
		if (!mods[i].key[0])
			m = &mods[i];
	if (!m || !dir || !*dir || strlen(dir) >= sizeof m->dir ||
	    cnsmp_symbols_module(addr, ".exits", m->key, sizeof m->key, &m->bias,
				 &m->first, &m->last) != 0) {
		if (m)
			m->key[0] = 0;
		return NULL;
	}
	strcpy(m->dir, dir);
	load(m);
	return m;
}

CNSMP_NOINST int cnsmp_decoded_exits(uintptr_t fn, struct cnsmp_jump *out, size_t max)
{
	pthread_once(&once, init);
	pthread_mutex_lock(&mu);
	struct tmod *m = module(fn);
	int n = -1;
	if (m && m->cap) {
		struct tfn *t = slot(m->tab, m->cap, (uint64_t)(fn - m->bias) + 1);
		if (t->fn && t->n <= max) {
			for (unsigned i = 0; i < t->n; i++)
				out[i] = (struct cnsmp_jump){.at = fn + m->offs[t->first + i],
							     .mem = (uint8_t)(t->mem >> i & 1)};
			n = t->n;
		}
	}
	pthread_mutex_unlock(&mu);
	return n;
}

CNSMP_NOINST void cnsmp_decoded_put_exits(uintptr_t fn, const struct cnsmp_jump *j, size_t n)
{
	uint32_t offs[CNSMP_TAILS_MAX];
	uint16_t mem = 0;
	if (n > CNSMP_TAILS_MAX)
		return;
	for (size_t i = 0; i < n; i++) {
		if (j[i].at < fn || j[i].at - fn > UINT32_MAX)
			return;
		offs[i] = (uint32_t)(j[i].at - fn);
		mem |= (uint16_t)((j[i].mem & 1u) << i);
	}
	pthread_once(&once, init);
	pthread_mutex_lock(&mu);
	struct tmod *m = module(fn);
	if (m && add(m, (uint64_t)(fn - m->bias) + 1, offs, n, mem) == 0)
		m->dirty = 1;
	pthread_mutex_unlock(&mu);
}

CNSMP_NOINST int cnsmp_decoded_call(uintptr_t fn, uintptr_t ret, struct cnsmp_arg *out)
{
	pthread_once(&once, init);
	pthread_mutex_lock(&mu);
	struct tmod *m = module(fn);
	int r = m ? -1 : -2;
	if (m && m->cap && ret > fn && ret - fn <= UINT32_MAX) {
		struct tfn *t = slot(m->tab, m->cap, ((uint64_t)(fn - m->bias) + 1) | ARGS);
		/* in the order decoded: by return address */
		size_t lo = 0, hi = t->fn ? t->n / ARG_WORDS : 0;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			const uint32_t *w = m->offs + t->first + mid * ARG_WORDS;
			if (w[0] == ret - fn) {
				*out = (struct cnsmp_arg){w[0], (uint8_t)w[1], (uint8_t)(w[1] >> 8), w[2]};
				r = 1;
				break;
			}
			if (w[0] < ret - fn)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (t->fn && r < 0)
			r = 0;
	}
	pthread_mutex_unlock(&mu);
	return r;
}

CNSMP_NOINST void cnsmp_decoded_put_calls(uintptr_t fn, const struct cnsmp_arg *a, size_t n)
{
	if (n > CNSMP_ARGS_MAX)
		n = CNSMP_ARGS_MAX; /* the others stay calls with their load */
	uint32_t *w = n ? cnsmp_sites_grow(NULL, 0, n * ARG_WORDS * sizeof *w) : NULL;
	if (n && !w)
		return;
	for (size_t i = 0; i < n; i++) {
		w[i * ARG_WORDS] = a[i].ret;
		w[i * ARG_WORDS + 1] = a[i].back | (uint32_t)a[i].len << 8;
		w[i * ARG_WORDS + 2] = a[i].sum;
	}
	pthread_once(&once, init);
	pthread_mutex_lock(&mu);
	struct tmod *m = module(fn);
	uint64_t key = m ? ((uint64_t)(fn - m->bias) + 1) | ARGS : 0;
	const struct tfn *t = m && m->cap ? slot(m->tab, m->cap, key) : NULL;
	/* the same list again (a function decoded again in each run, such as
	 * one whose code stops decoding before a hook call) leaves the file
	 * as it is */
	int same = t && t->fn && t->n == n * ARG_WORDS &&
		   (!n || memcmp(m->offs + t->first, w, n * ARG_WORDS * sizeof *w) == 0);
	if (m && !same && add(m, key, w, n * ARG_WORDS, 0) == 0)
		m->dirty = 1;
	pthread_mutex_unlock(&mu);
	if (w)
		cnsmp_sites_grow(w, n * ARG_WORDS * sizeof *w, 0);
}

CNSMP_NOINST void cnsmp_decoded_save(void)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < MAX_MODULES; i++)
		if (mods[i].key[0])
			save(&mods[i]);
	pthread_mutex_unlock(&mu);
}

CNSMP_NOINST void cnsmp_decoded_forget(uintptr_t lo, uintptr_t hi)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < MAX_MODULES; i++) {
		struct tmod *m = &mods[i];
		if (!m->key[0] || m->last <= lo || m->first >= hi)
			continue;
		save(m);
		cnsmp_sites_grow(m->tab, m->cap * sizeof *m->tab, 0);
		cnsmp_sites_grow(m->offs, m->capoffs * sizeof *m->offs, 0);
		*m = (struct tmod){0};
	}
	pthread_mutex_unlock(&mu);
}
