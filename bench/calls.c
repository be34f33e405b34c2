/* calls.c: the call-heavy synthetic workload: recursion, a qsort comparator
 * and tiny leaf functions, about 10 million calls per unit of work.
 *
 *   calls [-t THREADS] [-n UNITS]
 *
 * Every thread does the same UNITS of work, so with hooks that scale the
 * wall time stays flat as threads are added (throughput = threads * units /
 * wall time).  Prints one checksum line, identical for every build, so the
 * runner can check that instrumentation changed nothing.  The leaves are
 * noinline so the baseline makes the same calls the instrumented builds do:
 * what is measured is the cost per call, not the inliner. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static NOINLINE unsigned long fib(unsigned n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static NOINLINE int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static NOINLINE uint32_t leaf_mix(uint32_t x)
{
	return x * 2654435761u;
}

static NOINLINE uint32_t leaf_rot(uint32_t x)
{
	return (x << 13) | (x >> 19);
}

static NOINLINE uint32_t leaf_step(uint32_t x)
{
	return leaf_rot(leaf_mix(x)) ^ 0x9e3779b9u;
}

/* ~3.5M comparator calls for 200k elements. */
static NOINLINE uint64_t sort_work(uint32_t seed)
{
	enum { N = 200000 };
	uint32_t *v = malloc(N * sizeof *v);
	uint64_t sum = 0;
	if (!v)
		abort();
	for (size_t i = 0; i < N; i++)
		v[i] = seed = seed * 1103515245u + 12345u;
	qsort(v, N, sizeof *v, cmp_u32);
	for (size_t i = 0; i < N; i += 997)
		sum += v[i];
	free(v);
	return sum;
}

/* 1M iterations, 3 calls each. */
static NOINLINE uint64_t leaf_work(uint32_t x)
{
	uint64_t sum = 0;
	for (int i = 0; i < 1000000; i++) {
		x = leaf_step(x);
		sum += x;
	}
	return sum;
}

/* One unit: fib(29) is 1.66M calls; with the sort and the leaves ~8.2M. */
static NOINLINE uint64_t unit(uint32_t seed)
{
	return fib(29) + sort_work(seed) + leaf_work(seed);
}

struct job {
	int units;
	uint64_t sum;
};

static void *run(void *arg)
{
	struct job *j = arg;
	for (int u = 0; u < j->units; u++)
		j->sum += unit((uint32_t)u + 1);
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = 1, units = 1, opt;
	while ((opt = getopt(argc, argv, "t:n:")) != -1) {
		if (opt == 't')
			threads = atoi(optarg);
		else if (opt == 'n')
			units = atoi(optarg);
		else {
			fprintf(stderr, "usage: calls [-t threads] [-n units]\n");
			return 2;
		}
	}
	if (threads < 1 || threads > 64 || units < 0) { /* 0: start and exit only */
		fprintf(stderr, "calls: bad thread or unit count\n");
		return 2;
	}
	pthread_t tid[64];
	struct job job[64];
	for (int i = 0; i < threads; i++) {
		job[i] = (struct job){ .units = units };
		if (pthread_create(&tid[i], NULL, run, &job[i])) {
			fprintf(stderr, "calls: pthread_create failed\n");
			return 1;
		}
	}
	uint64_t sum = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		sum += job[i].sum;
	}
	printf("threads=%d units=%d checksum=%llu\n", threads, units,
	       (unsigned long long)sum);
	return 0;
}
