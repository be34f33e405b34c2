/* manyfn.c: 2,000 distinct small functions, for what the runtime costs per
 * function and per thread rather than per call.
 *
 *   manyfn K T [ROUNDS]
 *
 * Calls the first K functions ROUNDS times (default 1), then starts T
 * threads that each call one function and wait, and prints the process's
 * resident set size (kB) while they are all alive, and how long the first
 * calls of functions 2 ... K took (first_ns; the first function's call is
 * left out, as it may pay for opening the debug information).  That time,
 * less the uninstrumented build's, is what the runtime spends resolving
 * K - 1 functions, measured inside the process, away from the noise of
 * starting one.  Run with K = 0 and K = 2000 the difference in RSS is the
 * memory per function; with T = 0 and T = 16, the memory per thread. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NOINST __attribute__((no_instrument_function))
#define NFN 2000

/* Each body differs (__COUNTER__) so identical-code folding keeps 2,000
 * distinct functions at 2,000 distinct addresses. */
#define F(n) __attribute__((noinline)) int n(int x) { return x * 3 + __COUNTER__; }
#define D1(p) F(p##0) F(p##1) F(p##2) F(p##3) F(p##4) F(p##5) F(p##6) F(p##7) F(p##8) F(p##9)
#define D2(p) D1(p##0) D1(p##1) D1(p##2) D1(p##3) D1(p##4) D1(p##5) D1(p##6) D1(p##7) D1(p##8) D1(p##9)
#define D3(p) D2(p##0) D2(p##1) D2(p##2) D2(p##3) D2(p##4) D2(p##5) D2(p##6) D2(p##7) D2(p##8) D2(p##9)
D3(fn_0)
D3(fn_1)

#undef F
#define F(n) n,
static int (*const table[NFN])(int) = { D3(fn_0) D3(fn_1) };

static pthread_barrier_t started, done;

static void *worker(void *arg)
{
	volatile int r = table[(size_t)arg % NFN](1);
	(void)r;
	pthread_barrier_wait(&started);
	pthread_barrier_wait(&done);
	return NULL;
}

NOINST static long rss_kb(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * 4;
}

NOINST static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	int k = argc > 1 ? atoi(argv[1]) : NFN;
	int t = argc > 2 ? atoi(argv[2]) : 0;
	int rounds = argc > 3 ? atoi(argv[3]) : 1;
	if (k < 0 || k > NFN || t < 0 || t > 256 || rounds < 1) {
		fprintf(stderr, "usage: manyfn K(0..%d) T(0..256) [ROUNDS]\n", NFN);
		return 2;
	}
	volatile int sum = 0;
	long long first_ns = 0;
	if (k > 0) {
		sum += table[0](0);
		long long t0 = now_ns();
		for (int i = 1; i < k; i++)
			sum += table[i](i);
		first_ns = now_ns() - t0;
	}
	for (int r = 1; r < rounds; r++)
		for (int i = 0; i < k; i++)
			sum += table[i](i);
	pthread_t tid[256];
	pthread_barrier_init(&started, NULL, (unsigned)t + 1);
	pthread_barrier_init(&done, NULL, (unsigned)t + 1);
	for (int i = 0; i < t; i++)
		if (pthread_create(&tid[i], NULL, worker, (void *)(size_t)i)) {
			fprintf(stderr, "manyfn: pthread_create failed\n");
			return 1;
		}
	pthread_barrier_wait(&started);
	long rss = rss_kb();
	pthread_barrier_wait(&done);
	for (int i = 0; i < t; i++)
		pthread_join(tid[i], NULL);
	printf("k=%d t=%d rss_kb=%ld first_ns=%lld sum=%d\n", k, t, rss,
	       first_ns, sum);
	return 0;
}
