/* symcache.c: a module's index of functions kept on disk between runs, so
 * that a program started again does not read its DWARF again.
 *
 * Indexing is the larger part of a short process's start-up (elfutils
 * parses and sorts each unit's whole line table to name one file), and it
 * is the same work every run of the same build.  symbols.c names the file
 * by the module's build-id and everything else the names depend on; this
 * file only writes and reads it.
 *
 * The file is trusted no more than any input: it is read whole, its size
 * must be exactly what its header says, its checksum must match, and every
 * offset and index is checked before use.  Anything else is a miss, and
 * the caller indexes from DWARF and writes the file again.
 *
 * Layout (host byte order; the magic's last bytes tell another one apart):
 *   header   "CNSMSYM2", u32 nf, nr, user, strbytes, u64 delta
 *   nf x     u32 name, file (string offsets, NONE = absent),
 *            i32 line, system, u64 entry
 *   nr x     u64 low, high, u32 func, pad
 *   strbytes NUL-terminated strings
 *   u64      cnsmp_hash (FNV-1a by words) of everything before it */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define MAGIC "CNSMSYM2"
#define NONE UINT32_MAX
#define MAX_FILE (512u << 20) /* no module's index comes near this */

struct hdr {
	char magic[8];
	uint32_t nf, nr, user, strbytes;
	uint64_t delta; /* struct cnsmp_index's */
};
struct rec_f {
	uint32_t name, file;
	int32_t line, system;
	uint64_t entry;
};
struct rec_r {
	uint64_t low, high;
	uint32_t func, pad;
};

/* ---- prune ------------------------------------------------------------- */

struct entry {
	char *name;
	off_t size;
	time_t mtime;
};

static int older_first(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return (x->mtime > y->mtime) - (x->mtime < y->mtime);
}

/* Every rebuild of a program leaves one more file, so without a bound the
 * folder grows with each build a developer ever ran.  Over `max_bytes`,
 * the least recently used files go first (a load touches its file).  One
 * pass over the folder, and only after a new file was written: a build's
 * first run, which has just paid for reading its DWARF (or, for a file
 * of tail exits, decoding code). */
CNSMP_NOINST void cnsmp_symcache_prune(const char *dir, uint64_t max_bytes)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct entry *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0;
	time_t now = time(NULL);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		size_t len = strlen(e->d_name);
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		/* a writer that died between write and rename */
		if (!strncmp(e->d_name, ".tmp-", 5) && st.st_mtime < now - 3600) {
			unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (e->d_name[0] == '.' ||
		    !((len > 4 && !strcmp(e->d_name + len - 4, ".idx")) ||
		      (len > 6 && !strcmp(e->d_name + len - 6, ".exits"))))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct entry *nv = realloc(v, nc * sizeof *nv);
			if (!nv)
				break;
			v = nv;
			cap = nc;
		}
		if (!(v[n].name = strdup(e->d_name)))
			break;
		v[n].size = st.st_size;
		v[n].mtime = st.st_mtime;
		total += (uint64_t)st.st_size;
		n++;
	}
	if (total > max_bytes) {
		qsort(v, n, sizeof *v, older_first);
		for (size_t i = 0; i < n && total > max_bytes; i++)
			if (unlinkat(dirfd(d), v[i].name, 0) == 0)
				total -= (uint64_t)v[i].size;
	}
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	closedir(d);
}

/* ---- store ------------------------------------------------------------- */

struct buf {
	unsigned char *p;
	size_t n, cap;
};

static int put(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->n + n)
			cap *= 2;
		unsigned char *q = realloc(b->p, cap);
		if (!q)
			return -1;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	return 0;
}

/* The offset `s` will have in the string block, which grows by it. */
static uint32_t str_at(struct buf *strs, const char *s, int *bad)
{
	if (!s)
		return NONE;
	size_t off = strs->n;
	if (off >= NONE || put(strs, s, strlen(s) + 1) != 0)
		*bad = 1;
	return (uint32_t)off;
}

static int write_all(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

CNSMP_NOINST int cnsmp_symcache_store(const char *dir, const char *key,
				      const struct cnsmp_index *x)
{
	if (!dir || !*dir || !key || x->nf >= NONE || x->nr >= NONE)
		return -1;
	struct buf out = {0}, strs = {0};
	int bad = 0;
	struct hdr h = {MAGIC, (uint32_t)x->nf, (uint32_t)x->nr, (uint32_t)!!x->user, 0,
			x->delta};
	bad |= put(&out, &h, sizeof h);
	for (size_t i = 0; i < x->nf && !bad; i++) {
		const struct cnsmp_func *f = &x->f[i];
		struct rec_f r = {str_at(&strs, f->name, &bad), str_at(&strs, f->file, &bad),
				  f->line, f->system, f->entry};
		bad |= put(&out, &r, sizeof r);
	}
	for (size_t i = 0; i < x->nr && !bad; i++) {
		struct rec_r r = {x->r[i].low, x->r[i].high, (uint32_t)x->r[i].func, 0};
		bad |= put(&out, &r, sizeof r);
	}
	if (!bad && strs.n && put(&out, strs.p, strs.n) != 0)
		bad = 1;
	if (!bad) {
		h.strbytes = (uint32_t)strs.n;
		memcpy(out.p, &h, sizeof h);
		uint64_t sum = cnsmp_hash(CNSMP_HASH_SEED, out.p, out.n);
		bad |= put(&out, &sum, sizeof sum);
	}
	free(strs.p);
	int rc = bad ? -1 : cnsmp_symcache_write(dir, key, out.p, out.n);
	free(out.p);
	return rc;
}

CNSMP_NOINST int cnsmp_symcache_write(const char *dir, const char *name,
				      const void *p, size_t n)
{
	char tmp[CNSMP_SPOOL_PATH], final[CNSMP_SPOOL_PATH];
	int fd = -1;
	if ((size_t)snprintf(final, sizeof final, "%s/%s", dir, name) < sizeof final &&
	    (size_t)snprintf(tmp, sizeof tmp, "%s/.tmp-%s-%ld", dir, name, (long)getpid()) < sizeof tmp) {
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 && errno == ENOENT && cnsmp_spool_mkdir_p(dir) == 0)
			fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return -1;
	/* rename() makes the file appear whole or not at all, so a reader
	 * in another process never sees half of one. */
	int rc = write_all(fd, p, n) == 0 && close(fd) == 0 && rename(tmp, final) == 0 ? 0 : -1;
	if (rc != 0)
		unlink(tmp);
	else
		cnsmp_symcache_prune(dir, CNSMP_SYMCACHE_MAX_BYTES);
	return rc;
}

/* ---- load -------------------------------------------------------------- */

/* The string at `off`, copied; *bad if it is not inside the block. */
static char *str_of(const char *strs, size_t n, uint32_t off, int *bad)
{
	if (off == NONE)
		return NULL;
	if (off >= n || !memchr(strs + off, '\0', n - off)) {
		*bad = 1;
		return NULL;
	}
	char *s = strdup(strs + off);
	if (!s)
		*bad = 1;
	return s;
}

CNSMP_NOINST struct cnsmp_index *cnsmp_symcache_load(const char *dir, const char *key,
						     const char *root, int *refused)
{
	char path[CNSMP_SPOOL_PATH];
	size_t len = 0;
	if (refused)
		*refused = 0;
	if (!dir || !*dir || !key ||
	    (size_t)snprintf(path, sizeof path, "%s/%s", dir, key) >= sizeof path)
		return NULL;
	unsigned char *p = (unsigned char *)cnsmp_spool_read_file(path, MAX_FILE, &len);
	if (!p && errno == ENOENT) /* open's: not there, nothing refused */
		return NULL;
	struct hdr h;
	uint64_t sum;
	if (!p || len < sizeof h + sizeof sum)
		goto miss;
	memcpy(&h, p, sizeof h);
	memcpy(&sum, p + len - sizeof sum, sizeof sum);
	/* Sizes in 64 bits: counts up to 2^32 cannot overflow them. */
	uint64_t want = sizeof h + (uint64_t)h.nf * sizeof(struct rec_f) +
			(uint64_t)h.nr * sizeof(struct rec_r) + h.strbytes + sizeof sum;
	if (memcmp(h.magic, MAGIC, sizeof h.magic) || want != len || h.user > 1 ||
	    cnsmp_hash(CNSMP_HASH_SEED, p, len - sizeof sum) != sum)
		goto miss;
	const unsigned char *rf = p + sizeof h;
	const unsigned char *rr = rf + (size_t)h.nf * sizeof(struct rec_f);
	const char *strs = (const char *)(rr + (size_t)h.nr * sizeof(struct rec_r));
	struct cnsmp_index *x = calloc(1, sizeof *x);
	int bad = !x;
	if (!bad && h.nf && !(x->f = calloc(h.nf, sizeof *x->f)))
		bad = 1;
	if (!bad && h.nr && !(x->r = calloc(h.nr, sizeof *x->r)))
		bad = 1;
	if (!bad && root && !(x->root = strdup(root)))
		bad = 1;
	for (uint32_t i = 0; !bad && i < h.nf; i++) {
		struct rec_f r;
		memcpy(&r, rf + (size_t)i * sizeof r, sizeof r);
		struct cnsmp_func *f = &x->f[x->nf++];
		f->name = str_of(strs, h.strbytes, r.name, &bad);
		f->file = str_of(strs, h.strbytes, r.file, &bad);
		f->line = r.line;
		f->system = r.system;
		f->entry = r.entry;
		bad |= r.system < 0 || r.system > 1;
	}
	for (uint32_t i = 0; !bad && i < h.nr; i++) {
		struct rec_r r;
		memcpy(&r, rr + (size_t)i * sizeof r, sizeof r);
		/* the lookup's binary search needs them sorted */
		bad |= r.func >= h.nf || r.low >= r.high ||
		       (i && r.low < x->r[i - 1].low);
		x->r[x->nr++] = (struct cnsmp_range){r.low, r.high, r.func};
	}
	if (bad) {
		cnsmp_index_free(x);
		goto miss;
	}
	x->user = (int)h.user;
	x->delta = h.delta;
	x->capf = x->nf;
	utimensat(AT_FDCWD, path, NULL, 0); /* used now: pruned last */
	x->capr = x->nr;
	free(p);
	return x;
miss:
	if (refused)
		*refused = 1;
	free(p);
	return NULL;
}
