/* threads.c: resident memory per thread alive, for a program that keeps
 * many mostly idle threads (a thread per connection).
 *
 *   threads KIND N
 *
 * Starts N threads (256 kB stacks) that each do KIND of work, then wait;
 * once all wait (and the runtime's flusher has had a second to collect
 * them), prints the process's resident memory before the threads started
 * and with them all alive:
 *   kind=K threads=N rss_before_kb=A rss_after_kb=B per_thread_kb=(B-A)/N
 * KIND: none (no tracked call), shallow (300 tracked calls two levels
 * deep over 2 functions), deep (calls 50 levels deep over 200 functions,
 * 4 chains of 50, each run 3 times).  The thread routines themselves are
 * not instrumented, so a "none" thread makes no call the hooks see. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINST __attribute__((no_instrument_function))
#define NOINLINE __attribute__((noinline))

static volatile unsigned sink;

/* shallow: outer -> inner, 150 times: 300 calls, depth 2. */
static NOINLINE void inner(unsigned i)
{
	sink += i;
}

static NOINLINE void outer(unsigned i)
{
	inner(i);
	sink ^= i;
}

/* deep: 200 functions f_a_b (index 10a+b), each calling the next through
 * a table, so none is inlined into its caller. */
typedef void (*step_fn)(unsigned left, unsigned i);
static step_fn steps[200];

#define STEP(a, b)                                                     \
	static NOINLINE void f_##a##_##b(unsigned left, unsigned i)    \
	{                                                              \
		sink += i;                                             \
		if (left)                                              \
			steps[i + 1](left - 1, i + 1);                 \
	}
#define STEPS10(a) STEP(a, 0) STEP(a, 1) STEP(a, 2) STEP(a, 3) STEP(a, 4) \
	STEP(a, 5) STEP(a, 6) STEP(a, 7) STEP(a, 8) STEP(a, 9)
STEPS10(0) STEPS10(1) STEPS10(2) STEPS10(3) STEPS10(4) STEPS10(5) STEPS10(6)
STEPS10(7) STEPS10(8) STEPS10(9) STEPS10(10) STEPS10(11) STEPS10(12)
STEPS10(13) STEPS10(14) STEPS10(15) STEPS10(16) STEPS10(17) STEPS10(18)
STEPS10(19)
#define NAME(a, b) f_##a##_##b,
#define NAMES10(a) NAME(a, 0) NAME(a, 1) NAME(a, 2) NAME(a, 3) NAME(a, 4) \
	NAME(a, 5) NAME(a, 6) NAME(a, 7) NAME(a, 8) NAME(a, 9)
static const step_fn all_steps[200] = {
	NAMES10(0) NAMES10(1) NAMES10(2) NAMES10(3) NAMES10(4) NAMES10(5)
	NAMES10(6) NAMES10(7) NAMES10(8) NAMES10(9) NAMES10(10) NAMES10(11)
	NAMES10(12) NAMES10(13) NAMES10(14) NAMES10(15) NAMES10(16)
	NAMES10(17) NAMES10(18) NAMES10(19)
};

static int kind; /* 0 none, 1 shallow, 2 deep */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int done, release;

static NOINST void *thread_main(void *arg)
{
	(void)arg;
	if (kind == 1)
		for (unsigned i = 0; i < 150; i++)
			outer(i);
	else if (kind == 2)
		for (unsigned r = 0; r < 3; r++)
			for (unsigned c = 0; c < 4; c++)
				steps[50 * c](49, 50 * c);
	pthread_mutex_lock(&mu);
	done++;
	pthread_cond_broadcast(&cv);
	while (!release)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static NOINST long rss_kb(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2) {
		perror("threads: reading /proc/self/statm");
		exit(1);
	}
	fclose(f);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv)
{
	static const char *kinds[] = {"none", "shallow", "deep"};
	if (argc != 3) {
		fprintf(stderr, "usage: threads none|shallow|deep N\n");
		return 2;
	}
	for (kind = 0; kind < 3 && strcmp(argv[1], kinds[kind]); kind++)
		;
	int n = atoi(argv[2]);
	if (kind == 3 || n <= 0) {
		fprintf(stderr, "threads: bad kind '%s' or count '%s'\n", argv[1], argv[2]);
		return 2;
	}
	memcpy(steps, all_steps, sizeof steps);
	/* The steps' last (index 199 + 1) is never called: chains end at
	 * left == 0 on their 50th function. */
	pthread_t *tid = calloc((size_t)n, sizeof *tid);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	sleep(1); /* the runtime's first flush is behind us */
	long before = rss_kb();
	for (int i = 0; i < n; i++)
		if (pthread_create(&tid[i], &attr, thread_main, NULL)) {
			fprintf(stderr, "threads: cannot start thread %d\n", i);
			return 1;
		}
	pthread_mutex_lock(&mu);
	while (done < n)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	sleep(2); /* the flusher collects every block at least once */
	long after = rss_kb();
	pthread_mutex_lock(&mu);
	release = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	printf("kind=%s threads=%d rss_before_kb=%ld rss_after_kb=%ld per_thread_kb=%.2f\n",
	       argv[1], n, before, after, (double)(after - before) / n);
	return 0;
}
