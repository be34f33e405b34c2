/* hostile.c: the program shapes that are hardest on a runtime living inside
 * someone else's process, one per mode (argv[1]); each prints one line the
 * tests compare, and its exact call counts are in test_hostile.py.
 *
 *   churn T N R MS  N threads, at most T alive at once, each started as soon
 *                   as one ends, each calling host_work R times and then
 *                   sleeping MS milliseconds (so the flusher gets a core)
 *   thread-exit N   a worker calls host_work N times, then exit(3) from
 *                   host_quit -> host_leave while main waits in pthread_join
 *   fork-exec N     host_work N times, fork, the child execs this program
 *                   ("child N"), the parent calls host_work N more times
 *   child N         host_work N times (the exec'd child)
 *   abort N         host_work N times, then abort() from host_outer ->
 *                   host_abort
 *   none            nothing but main (drains a spool)
 *   signal N        host_work N times; every tenth goes through host_raiser,
 *                   which raise()s SIGUSR1, whose handler host_on_signal is
 *                   itself instrumented and calls host_handler_work
 *   itimer MS       host_work for MS milliseconds while SIGALRM arrives every
 *                   200 us and runs host_on_alarm, at any instruction
 *                   (inside the hooks too)
 *   deep D          host_recurse(D) three times (D+1 nested calls each, the
 *                   innermost calls codensm_error()), then host_after
 */
#include <codensm.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile long sink;

void host_work(int i)
{
	sink += i;
}

static void work(int n)
{
	for (int i = 0; i < n; i++)
		host_work(i);
}

/* ---- churn -------------------------------------------------------------- */

static int churn_rounds, churn_sleep_ms;
static pthread_mutex_t churn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t churn_cond = PTHREAD_COND_INITIALIZER;
static int churn_alive;

void *host_churn_thread(void *arg)
{
	struct timespec nap = { 0, churn_sleep_ms * 1000000L };

	work(churn_rounds);
	nanosleep(&nap, NULL);
	pthread_mutex_lock(&churn_lock);
	churn_alive--;
	pthread_cond_signal(&churn_cond);
	pthread_mutex_unlock(&churn_lock);
	return arg;
}

static void churn(int live, int total, int rounds, int sleep_ms)
{
	pthread_attr_t attr;

	churn_rounds = rounds;
	churn_sleep_ms = sleep_ms % 1000;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < total; i++) {
		pthread_t t;
		pthread_mutex_lock(&churn_lock);
		while (churn_alive >= live)
			pthread_cond_wait(&churn_cond, &churn_lock);
		churn_alive++;
		pthread_mutex_unlock(&churn_lock);
		if (pthread_create(&t, &attr, host_churn_thread, NULL) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			exit(1);
		}
	}
	pthread_mutex_lock(&churn_lock);
	while (churn_alive > 0)
		pthread_cond_wait(&churn_cond, &churn_lock);
	pthread_mutex_unlock(&churn_lock);
	pthread_attr_destroy(&attr);
}

/* ---- exit() from another thread ----------------------------------------- */

void host_leave(void)
{
	fflush(stdout);
	exit(3);
}

void host_quit(void)
{
	host_leave();
}

void *host_worker(void *arg)
{
	work(*(int *)arg);
	host_quit();
	return NULL;
}

/* ---- fork + exec --------------------------------------------------------- */

void host_spawn(const char *self, int n)
{
	char arg[32];

	snprintf(arg, sizeof(arg), "%d", n);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		execl(self, self, "child", arg, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	printf("child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* ---- abort() ------------------------------------------------------------- */

void host_abort(void)
{
	fflush(stdout);
	abort();
}

void host_outer(void)
{
	host_abort();
	sink++;
}

/* ---- a tracked signal handler ------------------------------------------- */

static volatile sig_atomic_t handled;

void host_handler_work(int sig)
{
	sink += sig;
}

void host_on_signal(int sig)
{
	host_handler_work(sig);
	handled++;
}

void host_raiser(void)
{
	raise(SIGUSR1);
}

void host_on_alarm(int sig)
{
	sink += sig;
	handled++;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- recursion deeper than the shadow stack ------------------------------ */

int host_recurse(int n)
{
	if (n == 0) {
		codensm_error();
		return 0;
	}
	return host_recurse(n - 1) + 1;
}

void host_after(void)
{
	sink++;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "none";
	int n = argc > 2 ? atoi(argv[2]) : 0;

	if (strcmp(mode, "churn") == 0 && argc > 5) {
		churn(n, atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
		printf("churn: %d threads of %d x %d\n", atoi(argv[3]), n, atoi(argv[4]));
	} else if (strcmp(mode, "thread-exit") == 0) {
		pthread_t t;
		printf("thread-exit: %d\n", n);
		pthread_create(&t, NULL, host_worker, &n);
		pthread_join(t, NULL);
		printf("not reached\n");
	} else if (strcmp(mode, "fork-exec") == 0) {
		printf("fork-exec: %d\n", n);
		work(n);
		host_spawn(argv[0], n);
		work(n);
	} else if (strcmp(mode, "child") == 0) {
		printf("child: %d\n", n);
		work(n);
	} else if (strcmp(mode, "abort") == 0) {
		printf("abort: %d\n", n);
		work(n);
		host_outer();
	} else if (strcmp(mode, "signal") == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = host_on_signal;
		sigaction(SIGUSR1, &sa, NULL);
		for (int i = 0; i < n; i++) {
			host_work(i);
			if (i % 10 == 0)
				host_raiser();
		}
		printf("signal: %d handled %d\n", n, (int)handled);
	} else if (strcmp(mode, "itimer") == 0) {
		struct sigaction sa;
		struct itimerval it = { { 0, 200 }, { 0, 200 } };
		struct itimerval off = { { 0, 0 }, { 0, 0 } };
		long calls = 0;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = host_on_alarm;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGALRM, &sa, NULL);
		setitimer(ITIMER_REAL, &it, NULL);
		double end = now_ms() + n;
		while (now_ms() < end) {
			for (int i = 0; i < 1000; i++)
				host_work(i);
			calls += 1000;
		}
		setitimer(ITIMER_REAL, &off, NULL);
		/* stdout: the call count and the handler count, for the test */
		printf("itimer: %ld calls, %d alarms\n", calls, (int)handled);
	} else if (strcmp(mode, "deep") == 0) {
		int depth = 0;
		for (int i = 0; i < 3; i++)
			depth = host_recurse(n);
		host_after();
		printf("deep: %d\n", depth);
	} else {
		printf("none\n");
	}
	return 0;
}
