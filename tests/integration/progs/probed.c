/* probed.c: calls a probe test counts exactly.
 *   probed calls N      probe_outer(N) (N probe_leaf, N probe_helper),
 *                       N probe_fail (odd i fail), N probe_jump (longjmp)
 *   probed threads T N  T threads, each probe_outer(N)
 *   probed fork N       probe_outer(N) in the parent, then in a child
 *   probed dlopen N LIB plugin_entry(N) of LIB (dlopen'ed)
 *   probed user N       a user instrument "tally" counts N probe_leaf
 *   probed loop MS      probe_leaf every millisecond for MS ms
 *   probed idle MS      one probe_leaf, then MS ms of sleep
 *   probed xjump N      N probe_catcher, each left by its probe_xjump's longjmp
 *   probed xerror N     probe_xcaller: N probe_xfail (meant to be excluded),
 *                       codensm_error() in the odd ones
 *   probed crash N SIG  probe_outer(N), then probe_crashing -> probe_xboom
 *                       (meant to be excluded) dies of SIG: segv or abort
 *   probed long MS      one probe_long, which runs MS ms
 * probe_helper is meant to be excluded (CODENSM_EXCLUDE). */
#include <signal.h>
#include <codensm.h>
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

static _Thread_local volatile long sink; /* per thread: the threads mode shares nothing */
static jmp_buf jb;

__attribute__((noinline)) int probe_leaf(int i) { sink += i; return i * 2 + 1; }
__attribute__((noinline)) int probe_helper(int i) { sink += i; return i + 3; }
__attribute__((noinline)) int probe_fail(int i)
{
	if (i % 2)
		codensm_error();
	return i;
}
__attribute__((noinline)) void probe_jump(int i)
{
	sink += i;
	longjmp(jb, 1);
}
/* Excluded in the xjump mode: it leaves by longjmp to its tracked caller. */
__attribute__((noinline)) void probe_xjump(jmp_buf *to)
{
	longjmp(*to, 1);
}
__attribute__((noinline)) int probe_catcher(int i)
{
	jmp_buf to;
	if (!setjmp(to))
		probe_xjump(&to);
	return i;
}
__attribute__((noinline)) int probe_xfail(int i)
{
	if (i % 2)
		codensm_error();
	sink += i;
	return i;
}
__attribute__((noinline)) int probe_xcaller(int n)
{
	int s = 0;
	for (int i = 0; i < n; i++)
		s += probe_xfail(i);
	return s;
}
__attribute__((noinline)) void probe_xboom(const char *how)
{
	if (!strcmp(how, "abort"))
		abort();
	*(volatile int *)(sink - sink) = 1; /* address 0: SIGSEGV */
}
__attribute__((noinline)) void probe_crashing(const char *how)
{
	sink++;
	probe_xboom(how);
}
__attribute__((noinline)) void probe_long(int ms)
{
	struct timespec t = {0, 1000000};
	for (int i = 0; i < ms; i++)
		nanosleep(&t, NULL);
}
__attribute__((noinline)) int probe_outer(int n)
{
	int s = 0;
	for (int i = 0; i < n; i++)
		s += probe_leaf(i) + probe_helper(i);
	return s;
}

static void *thread_main(void *arg)
{
	probe_outer((int)(long)arg);
	return NULL;
}

static _Atomic long tally, tally_dur;
static void tally_cb(const struct codensm_probe_event *ev, void *arg)
{
	(void)arg;
	tally++;
	if (ev->event == CODENSM_PROBE_RETURN && strcmp(ev->function, "probed.probe_leaf") == 0)
		tally_dur++;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "calls";
	int n = argc > 2 ? atoi(argv[2]) : 10;
	if (!strcmp(mode, "calls")) {
		probe_outer(n);
		for (int i = 0; i < n; i++)
			probe_fail(i);
		for (int i = 0; i < n; i++)
			if (!setjmp(jb))
				probe_jump(i);
	} else if (!strcmp(mode, "xerror")) {
		probe_xcaller(n);
	} else if (!strcmp(mode, "crash")) {
		probe_outer(n);
		printf("crashing\n");
		fflush(stdout);
		probe_crashing(argc > 3 ? argv[3] : "segv");
	} else if (!strcmp(mode, "long")) {
		probe_long(n);
	} else if (!strcmp(mode, "xjump")) {
		for (int i = 0; i < n; i++)
			probe_catcher(i);
	} else if (!strcmp(mode, "threads")) {
		int per = argc > 3 ? atoi(argv[3]) : 100;
		pthread_t th[256];
		for (int i = 0; i < n && i < 256; i++)
			pthread_create(&th[i], NULL, thread_main, (void *)(long)per);
		for (int i = 0; i < n && i < 256; i++)
			pthread_join(th[i], NULL);
	} else if (!strcmp(mode, "fork")) {
		probe_outer(n);
		fflush(stdout);
		pid_t p = fork();
		if (p == 0) {
			probe_outer(n);
			exit(0);
		}
		int st;
		waitpid(p, &st, 0);
	} else if (!strcmp(mode, "dlopen")) {
		void *h = dlopen(argv[3], RTLD_NOW | RTLD_LOCAL);
		long (*entry)(int) = h ? (long (*)(int))dlsym(h, "plugin_entry") : NULL;
		if (!entry) {
			fprintf(stderr, "probed: %s\n", dlerror());
			return 1;
		}
		entry(n);
	} else if (!strcmp(mode, "user")) {
		if (codensm_instrument_register("tally", tally_cb, NULL) != 0)
			return 2;
		for (int i = 0; i < n; i++)
			probe_leaf(i);
		printf("tally %ld %ld\n", (long)tally, (long)tally_dur);
	} else if (!strcmp(mode, "idle")) {
		probe_leaf(0);
		struct timespec ms = {n / 1000, (n % 1000) * 1000000L};
		nanosleep(&ms, NULL);
	} else if (!strcmp(mode, "loop")) {
		struct timespec ms = {0, 1000000};
		for (int i = 0; i < n; i++) {
			probe_leaf(i);
			nanosleep(&ms, NULL);
		}
	}
	return 0;
}
