/* fatal.c: "MODE N": fatal_work N times, then fatal_outer -> fatal_boom,
 * which meets the fault MODE names, all on the main thread:
 *   bus    a store to a mapped page past the end of its file (SIGBUS)
 *   fpe    an integer division by zero (SIGFPE)
 *   ill    an undefined instruction, __builtin_trap (SIGILL)
 *   segv-after   main installs its own SIGSEGV handler after the runtime
 *                started, keeping the runtime's as the previous one; its
 *                handler writes "fatal: own handler ran" and calls the
 *                previous one (the chaining a crash reporter does), then
 *                the fault repeats into the default action
 *   segv-before  main installs its own handler first, then
 *                codensm_init() with the key in FATAL_KEY starts the
 *                runtime, which keeps it as the previous one; the
 *                program's handler writes the same line and _exit(3)s
 *   ok     no fault
 * Exact for a faulting mode: fatal_work N calls; main, fatal_outer and
 * fatal_boom 1 call and 1 error each (in progress at the fault). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "codensm.h"

static volatile long sink;
static volatile int zero, one = 1;
static const char *mode;
static struct sigaction runtime_action;

void fatal_work(int i)
{
	sink += i;
}

/* The program's own handlers are not instrumented: only the faulting
 * stack is counted. */
__attribute__((no_instrument_function)) static void say_own(void)
{
	static const char line[] = "fatal: own handler ran\n";
	ssize_t w = write(2, line, sizeof line - 1);
	(void)w;
}

__attribute__((no_instrument_function)) static void own_then_previous(int sig, siginfo_t *si, void *uc)
{
	say_own();
	if (runtime_action.sa_flags & SA_SIGINFO)
		runtime_action.sa_sigaction(sig, si, uc);
	else if (runtime_action.sa_handler != SIG_DFL && runtime_action.sa_handler != SIG_IGN)
		runtime_action.sa_handler(sig);
	else
		signal(sig, SIG_DFL);
}

__attribute__((no_instrument_function)) static void own_then_exit(int sig)
{
	say_own();
	_exit(3);
}

void fatal_boom(void)
{
	if (!strcmp(mode, "bus")) {
		char path[] = "/tmp/codensm-fatal-XXXXXX";
		int fd = mkstemp(path);
		if (fd < 0 || ftruncate(fd, 4096) != 0)
			abort();
		unlink(path);
		char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED || ftruncate(fd, 0) != 0)
			abort();
		p[0] = 1;
	} else if (!strcmp(mode, "fpe")) {
		sink = one / zero; /* 1 / x compiles to a compare */
	} else if (!strcmp(mode, "ill")) {
		__builtin_trap();
	} else if (!strncmp(mode, "segv", 4)) {
		*(volatile int *)(uintptr_t)zero = 42;
	}
}

void fatal_outer(void)
{
	fatal_boom();
	sink++;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	mode = argv[1];
	int n = atoi(argv[2]);
	if (!strcmp(mode, "segv-after")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = own_then_previous;
		sa.sa_flags = SA_SIGINFO;
		sigaction(SIGSEGV, &sa, &runtime_action);
	} else if (!strcmp(mode, "segv-before")) {
		signal(SIGSEGV, own_then_exit);
		struct codensm_options o = { .api_key = getenv("FATAL_KEY") };
		if (codensm_init(&o) != 0)
			return 4;
	}
	printf("fatal: %s %d\n", mode, n);
	fflush(stdout);
	for (int i = 0; i < n; i++)
		fatal_work(i);
	if (strcmp(mode, "ok"))
		fatal_outer();
	return 0;
}
