/* index.c: a module's index of functions (internal.h, struct cnsmp_index):
 * naming overloads apart once every function is in, looking an address up,
 * freeing.  dwarf.c builds indexes, symcache.c keeps them on disk, and
 * symbols.c reads them; this file knows nothing of where one came from. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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
CNSMP_NOINST int cnsmp_index_finish(struct cnsmp_index *x)
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

/* A binary search for the last range starting at or below `a`. */
CNSMP_NOINST const struct cnsmp_func *cnsmp_index_find(const struct cnsmp_index *x,
						       uint64_t a)
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
