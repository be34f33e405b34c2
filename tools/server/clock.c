/* clock.c: the server's idea of now, and the test clock that replaces it.
 *
 * Every module asks srv_now() for the time (windows, bucket placement,
 * quotas' months, retention), so a test can run the server at any date:
 * with CODENSM_TEST_CLOCK naming a file, now is the number of unix seconds
 * that file holds, read again at every call, and the test moves time by
 * rewriting the file.  Only tests set it (docs/api.md, "Testing").
 */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <pthread.h>
#include <time.h>

#include "server.h"

static const char *clock_file;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* The last value the test clock's file held: a read that fails (the file
 * caught mid-rewrite) keeps it, rather than jumping to the real time. */
static _Atomic double last_read = -1;

static void read_env(void)
{
	const char *f = getenv("CODENSM_TEST_CLOCK");
	clock_file = f && *f ? f : NULL;
}

/* The test clock's value: 0, or -1 when the file cannot be read or holds
 * no plausible time. */
static int read_clock(double *out)
{
	FILE *f = fopen(clock_file, "re");
	double t = NAN;
	if (!f)
		return -1;
	int n = fscanf(f, "%lf", &t);
	fclose(f);
	if (n != 1 || !isfinite(t) || t < 0 || t > 1e11)
		return -1;
	*out = t;
	return 0;
}

int srv_clock_check(char *err)
{
	double t;
	pthread_once(&once, read_env);
	if (clock_file && read_clock(&t) < 0) {
		snprintf(err, SRV_ERRLEN, "test clock '%s' (CODENSM_TEST_CLOCK): expected a file"
			 " holding unix seconds", clock_file);
		return -1;
	}
	return 0;
}

double srv_now(void)
{
	struct timespec ts;
	double t;
	pthread_once(&once, read_env);
	if (clock_file) {
		if (read_clock(&t) == 0)
			last_read = t;
		else
			t = last_read;
		if (t >= 0)
			return t;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
