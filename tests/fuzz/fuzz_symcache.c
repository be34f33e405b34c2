/* fuzz_symcache.c: libFuzzer target for the symbol index cache's reader
 * (runtime/src/symcache.c), which reads files another process wrote and
 * anyone with the user's rights could have changed.
 *
 * The input is the file, with its last 8 bytes replaced by the right
 * checksum (the unit tests cover a wrong one): otherwise nearly every
 * mutation stops at the checksum and the checks behind it go unfuzzed.
 * Whatever it holds, the load either refuses it
 * or returns an index a lookup can trust: ranges sorted and naming
 * existing functions, every name a string.  An accepted index written
 * back and read again must be the same index.  A violated invariant
 * aborts, so libFuzzer keeps the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static char dir[] = "/tmp/codensm-fuzz-symcache-XXXXXX";

static void clean(void)
{
	char p[sizeof dir + 16];
	snprintf(p, sizeof p, "%s/in.idx", dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/out.idx", dir);
	unlink(p);
	rmdir(dir);
}

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_symcache: invariant broken: %s\n", what);
		abort();
	}
}

static int same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static void check_index(const struct cnsmp_index *x)
{
	for (size_t i = 0; i < x->nr; i++) {
		check(x->r[i].func < x->nf, "a range names an existing function");
		check(x->r[i].low < x->r[i].high, "a range is not empty");
		check(i == 0 || x->r[i - 1].low <= x->r[i].low, "ranges are sorted");
	}
	for (size_t i = 0; i < x->nf; i++) {
		check(x->f[i].system == 0 || x->f[i].system == 1, "system is 0 or 1");
		if (x->f[i].name)
			(void)strlen(x->f[i].name); /* ASan: inside its allocation */
		if (x->f[i].file)
			(void)strlen(x->f[i].file);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int made;
	if (!made && (made = mkdtemp(dir) != NULL))
		atexit(clean);
	check(made, "a temporary folder");
	char path[sizeof dir + 16];
	snprintf(path, sizeof path, "%s/in.idx", dir);
	uint8_t *copy = malloc(size ? size : 1);
	check(copy != NULL, "memory");
	memcpy(copy, data, size);
	if (size >= 8) {
		uint64_t h = 1469598103934665603u, w; /* as symcache.c's fnv64 */
		size_t i = 0;
		for (; i + 8 <= size - 8; i += 8) {
			memcpy(&w, copy + i, 8);
			h = (h ^ w) * 1099511628211u;
		}
		for (; i < size - 8; i++)
			h = (h ^ copy[i]) * 1099511628211u;
		memcpy(copy + size - 8, &h, 8);
	}
	FILE *f = fopen(path, "wb");
	check(f && fwrite(copy, 1, size, f) == size && fclose(f) == 0, "the input is written");
	free(copy);
	struct cnsmp_index *x = cnsmp_symcache_load(dir, "in.idx", size ? "/root" : NULL, NULL);
	if (!x)
		return 0;
	check_index(x);
	check(cnsmp_symcache_store(dir, "out.idx", x) == 0, "an accepted index can be written");
	struct cnsmp_index *y = cnsmp_symcache_load(dir, "out.idx", NULL, NULL);
	check(y != NULL, "what was written is read back");
	check(x->nf == y->nf && x->nr == y->nr && x->user == y->user && x->delta == y->delta,
	      "the same counts and delta");
	for (size_t i = 0; i < x->nf; i++)
		check(same_str(x->f[i].name, y->f[i].name) && same_str(x->f[i].file, y->f[i].file) &&
		      x->f[i].line == y->f[i].line && x->f[i].system == y->f[i].system &&
		      x->f[i].entry == y->f[i].entry, "the same functions");
	for (size_t i = 0; i < x->nr; i++)
		check(x->r[i].low == y->r[i].low && x->r[i].high == y->r[i].high &&
		      x->r[i].func == y->r[i].func, "the same ranges");
	cnsmp_index_free(x);
	cnsmp_index_free(y);
	return 0;
}
