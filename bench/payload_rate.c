/* payload_rate.c: how fast the flusher turns a batch into request bodies,
 * so users know what a short flush interval costs.
 *
 * Registers N synthetic functions (named, so no DWARF is read), fills a
 * batch with one delta per function (8 histogram buckets in use) and two
 * edges per function, and times cnsmp_payload_build under the contract's
 * limits.  Prints one JSON object for bench/run.py.  Links the static
 * archive: the payload builder is hidden in the shared library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "internal.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fill(struct cnsmp_batch *b, size_t n)
{
	if (cnsmp_batch_reserve(b, n, 2 * n, 0) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct cnsmp_fn_delta *d = &b->fns[i];
		memset(d, 0, sizeof *d);
		d->id = (uint32_t)i;
		d->calls = 1000 + i;
		d->errors = i % 7 == 0;
		d->total_ns = 123456789 + i;
		d->self_ns = 23456789 + i;
		d->max_ns = 3456789;
		for (unsigned h = 0; h < 8; h++)
			d->hist[10 + 2 * h] = 100 + h;
		b->edges[2 * i] = (struct cnsmp_edge_delta){
			(uint32_t)i, (uint32_t)((i + 1) % n), 500 };
		b->edges[2 * i + 1] = (struct cnsmp_edge_delta){
			(uint32_t)i, (uint32_t)((i * 7 + 3) % n), 200 };
	}
	b->nfns = n;
	b->nedges = 2 * n;
	b->start = 1700000000.0;
	b->end = 1700000015.0;
	return 0;
}

int main(void)
{
	static const size_t sizes[] = { 10, 100, 1000, 2000, 4000 };
	const size_t nmax = 4000;
	char name[96];
	for (size_t i = 0; i < nmax; i++) {
		snprintf(name, sizeof name, "bench.module%zu.function_%zu", i / 50, i);
		if (!cnsmp_registry_add(0x100000 + 16 * i, name, "bench", 1.0)) {
			fprintf(stderr, "payload_rate: registry_add failed\n");
			return 1;
		}
	}
	struct cnsmp_meta meta = { "bench", "localhost", 1, "0123456789abcdef-1" };
	printf("{\"sizes\":[");
	for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
		size_t n = sizes[s];
		struct cnsmp_batch b;
		cnsmp_batch_init(&b);
		if (fill(&b, n) != 0) {
			fprintf(stderr, "payload_rate: out of memory\n");
			return 1;
		}
		int reps = n <= 100 ? 200 : n <= 1000 ? 20 : 5, nb = 0;
		size_t bytes = 0;
		double best = 1e9;
		for (int r = 0; r < reps; r++) {
			char **bodies = NULL;
			double t0 = now_s();
			nb = cnsmp_payload_build(&b, NULL, 0, &meta, CNSMP_MAX_BODY,
						 CNSMP_MAX_FUNCS_PER_PAYLOAD, &bodies);
			double t = now_s() - t0;
			if (nb < 0) {
				fprintf(stderr, "payload_rate: build failed at %zu\n", n);
				return 1;
			}
			bytes = 0;
			for (int i = 0; i < nb; i++) {
				bytes += strlen(bodies[i]);
				free(bodies[i]);
			}
			free(bodies);
			if (t < best)
				best = t;
		}
		printf("%s{\"functions\":%zu,\"edges\":%zu,\"ms\":%.3f,\"bodies\":%d,"
		       "\"bytes\":%zu,\"functions_per_s\":%.0f}",
		       s ? "," : "", n, 2 * n, best * 1e3, nb, bytes, n / best);
		cnsmp_batch_release(&b);
	}
	printf("]}\n");
	return 0;
}
