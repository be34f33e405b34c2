/* threads.c: T threads (argv[1]) each call work_leaf() through work_mid()
 * R times (argv[2]); threads start in four waves a few flush intervals
 * apart (argv[3] ms, default 150), so some end before the first flush and
 * some after it.
 * Exact: work_thread T, work_mid T*R, work_leaf 2*T*R. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile long sink;

long work_leaf(long x)
{
	return x * 3 + 1;
}

long work_mid(long x)
{
	return work_leaf(x) + work_leaf(x + 1);
}

static int rounds;

void *work_thread(void *arg)
{
	long sum = 0;

	for (int i = 0; i < rounds; i++)
		sum += work_mid(i);
	sink += sum;
	return arg;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 64;
	rounds = argc > 2 ? atoi(argv[2]) : 1000;
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	long ms = argc > 3 ? atol(argv[3]) : 150; /* between waves */
	struct timespec pause = { ms / 1000, ms % 1000 * 1000 * 1000 };

	for (int i = 0; i < n; i++) {
		if (i && i % (n / 4 ? n / 4 : 1) == 0)
			nanosleep(&pause, NULL);
		pthread_create(&t[i], NULL, work_thread, NULL);
		if (i % 2)
			pthread_join(t[i], NULL); /* half of them end at once */
	}
	for (int i = 0; i < n; i++)
		if (i % 2 == 0)
			pthread_join(t[i], NULL);
	printf("threads: %d x %d\n", n, rounds);
	free(t);
	return 0;
}
