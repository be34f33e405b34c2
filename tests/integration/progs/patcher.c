/* patcher.c: excluded and tracked functions called in loops, for the
 * call-site patching tests (test_patch.py).  Run with
 * CODENSM_INCLUDE=patcher.keep_steady,patcher.keep_inner (KEEP): those
 * tracked, everything else excluded.
 *
 *   patcher basic N        keep_steady, skip_a, skip_b N times each
 *   patcher include N      basic, then codensm_init including patcher.skip
 *                          too, then N more of each: skip_* N, keep 2N
 *   patcher flip T N F     T threads loop over keep_steady, flip_a (which
 *                          calls keep_inner) and skip_a while the main
 *                          thread flips patcher.flip in and out F times;
 *                          then a flush, service "phase2" with everything
 *                          included, and T threads of N calls each
 *   patcher fork N         basic, fork; the child includes patcher.skip and
 *                          runs basic again
 *   patcher signal N [W]   keep_steady, skip_sig and skip_a N times, skip_sig
 *                          also the SIGALRM handler of a 200 us timer; W:
 *                          skip_sig and skip_a called W times first
 *   patcher refuse N       basic, under a seccomp filter that refuses
 *                          writable code as a hardened system would
 *   patcher open           keep_outer calls flip_wait, tracked, which waits
 *                          while another thread excludes patcher.flip and
 *                          calls flip_wait 3 times; prints the repairs
 *   patcher inlined N      keep_outer_inl, tracked, N times: it holds an
 *                          inlined copy of skip_inl, excluded
 *   patcher wrapper N      a hand-written wrapper calls the hooks for
 *                          skip_a, then for keep_steady, N times each
 *   patcher dl N LIB...    for each library in turn: dlopen, call its
 *                          lib_keep and lib_skip N times, dlclose
 *   patcher many N         skip_m00 to skip_m39 N times each (80 sites)
 *   patcher cold N S       basic, then S seconds of sleep (the flusher's
 *                          cycles run meanwhile)
 *   patcher code N LEN     the first LEN bytes of skip_a and skip_b as they
 *                          are in memory (hex): before any call, after basic
 *                          N, and after including patcher.skip and basic N
 *   patcher middle N       keep_steady and skip_mid (whose entry call is
 *                          also reached by a branch into its argument
 *                          set-up) N times each; then codensm_init
 *                          including patcher.skip_mid too, N more of each
 *
 * Each mode prints what it called, e.g. "keep_steady 1000".
 */
#define _GNU_SOURCE
#include <codensm.h>
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEEP "patcher.keep_steady,patcher.keep_inner"
#define FLIP ",patcher.flip_a,patcher.flip_b"
#define SKIP ",patcher.skip_a,patcher.skip_b"

static volatile long sink;
static _Atomic int stop;
static _Atomic long sig_runs;

__attribute__((noinline)) void keep_steady(void) { sink++; }
__attribute__((noinline)) void keep_inner(void) { sink += 5; }
__attribute__((noinline)) void skip_a(void) { sink += 2; }
__attribute__((noinline)) void skip_b(void) { sink += 3; }
__attribute__((noinline)) void flip_a(void) { keep_inner(); sink += 4; }
__attribute__((noinline)) void flip_b(void) { sink += 6; }
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t open_cv = PTHREAD_COND_INITIALIZER;
static int open_step;

static void open_wait_for(int step)
{
	pthread_mutex_lock(&open_mu);
	while (open_step < step)
		pthread_cond_wait(&open_cv, &open_mu);
	pthread_mutex_unlock(&open_mu);
}

static void open_go(int step)
{
	pthread_mutex_lock(&open_mu);
	open_step = step;
	pthread_cond_broadcast(&open_cv);
	pthread_mutex_unlock(&open_mu);
}

__attribute__((noinline)) void flip_wait(int block)
{
	if (block) {
		open_go(1);
		open_wait_for(2);
	}
	sink++;
}

__attribute__((noinline)) void keep_outer(void) { flip_wait(1); }

static inline __attribute__((always_inline)) void skip_inl(void) { sink += 9; }
__attribute__((noinline)) void keep_outer_inl(void) { skip_inl(); sink++; }

__attribute__((noinline)) void skip_sig(int signo) { (void)signo; sig_runs++; }

/* 40 excluded functions: more sites than one batch holds. */
#define SKIP_M(k) __attribute__((noinline)) void skip_m##k(void) { sink += 1; }
#define TEN(d) SKIP_M(d##0) SKIP_M(d##1) SKIP_M(d##2) SKIP_M(d##3) SKIP_M(d##4) \
	SKIP_M(d##5) SKIP_M(d##6) SKIP_M(d##7) SKIP_M(d##8) SKIP_M(d##9)
TEN(0) TEN(1) TEN(2) TEN(3)
#define CALL_M(k) skip_m##k();
#define CALL_TEN(d) CALL_M(d##0) CALL_M(d##1) CALL_M(d##2) CALL_M(d##3) CALL_M(d##4) \
	CALL_M(d##5) CALL_M(d##6) CALL_M(d##7) CALL_M(d##8) CALL_M(d##9)

static void many(long n)
{
	for (long i = 0; i < n; i++) {
		CALL_TEN(0) CALL_TEN(1) CALL_TEN(2) CALL_TEN(3)
	}
}

static void basic(long n)
{
	for (long i = 0; i < n; i++) {
		keep_steady();
		skip_a();
		skip_b();
	}
}

void __cyg_profile_func_enter(void *fn, void *site);
void __cyg_profile_func_exit(void *fn, void *site);

/* One call site of each hook for whatever function it is given. */
__attribute__((noinline, no_instrument_function)) static void wrapped(void *fn)
{
	__asm__ volatile("" : "+r"(fn));
	__cyg_profile_func_enter(fn, NULL);
	sink++;
	__cyg_profile_func_exit(fn, NULL);
}

/* skip_mid(int path): instrumented by hand the way gcc does it (the
 * function's address kept in %rbx, the hook's arguments loaded right
 * before each call), except that path 0 branches into the middle of the
 * entry call's argument set-up, past its first instruction: patching the
 * set-up's start leaves path 0 calling, and then the call itself must be
 * patched too. */
void skip_mid(int path);
__asm__(".text\n"
	".globl skip_mid\n"
	".type skip_mid, @function\n"
	"skip_mid:\n"
	"	push %rbx\n"
	"	lea skip_mid(%rip), %rbx\n"
	"	test %edi, %edi\n"
	"	mov %rbx, %rdi\n"
	"	jz 1f\n"
	"	mov %rbx, %rdi\n"
	"1:	mov 8(%rsp), %rsi\n"
	"	call __cyg_profile_func_enter@PLT\n"
	"	addq $7, sink(%rip)\n"
	"	mov %rbx, %rdi\n"
	"	mov 8(%rsp), %rsi\n"
	"	call __cyg_profile_func_exit@PLT\n"
	"	pop %rbx\n"
	"	ret\n"
	".size skip_mid, .-skip_mid\n");

static void middle(long n)
{
	for (long i = 0; i < n; i++) {
		keep_steady();
		skip_mid((int)(i & 1));
	}
}

static long rounds;

static void *flipper_worker(void *arg)
{
	long *done = arg;
	long i = 0;
	while (!atomic_load(&stop)) {
		keep_steady();
		flip_a();
		flip_b();
		skip_a();
		i++;
	}
	*done = i;
	return NULL;
}

static void *phase2_worker(void *arg)
{
	(void)arg;
	for (long i = 0; i < rounds; i++) {
		keep_steady();
		flip_a();
		flip_b();
		skip_a();
	}
	return NULL;
}

static int flip(int t, long n, int flips)
{
	pthread_t th[64];
	long done[64];
	rounds = n;
	for (int i = 0; i < t; i++)
		pthread_create(&th[i], NULL, flipper_worker, &done[i]);
	struct codensm_options in = {.include = KEEP FLIP};
	struct codensm_options out = {.include = KEEP};
	for (int i = 0; i < flips; i++) {
		codensm_init(i % 2 ? &out : &in);
		usleep(200);
	}
	atomic_store(&stop, 1);
	long sum = 0;
	for (int i = 0; i < t; i++) {
		pthread_join(th[i], NULL);
		sum += done[i];
	}
	printf("keep_steady %ld\n", sum);
	if (codensm_flush() != 0)
		printf("flush failed\n");
	struct codensm_options all = {.include = KEEP FLIP SKIP,
				      .service = "phase2"};
	codensm_init(&all);
	for (int i = 0; i < t; i++)
		pthread_create(&th[i], NULL, phase2_worker, NULL);
	for (int i = 0; i < t; i++)
		pthread_join(th[i], NULL);
	printf("phase2 %d x %ld\n", t, n);
	return 0;
}

static void *excluder(void *arg)
{
	(void)arg;
	open_wait_for(1);
	struct codensm_options out = {.include = KEEP ",patcher.keep_outer"};
	codensm_init(&out);
	for (int i = 0; i < 3; i++)
		flip_wait(0);
	open_go(2);
	return NULL;
}

static int open_call(void)
{
	pthread_t th;
	pthread_create(&th, NULL, excluder, NULL);
	keep_outer();
	pthread_join(th, NULL);
	printf("joined\n"); /* the repairs go out in _meta.repairs */
	return 0;
}

static int forked(long n)
{
	basic(n);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		struct codensm_options all = {.include = KEEP SKIP};
		codensm_init(&all);
		basic(n);
		exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("child %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}

static int signals(long n, int warm)
{
	for (int i = 0; i < warm; i++) { /* patched before any signal */
		skip_sig(0);
		skip_a();
	}
	struct sigaction sa = {.sa_handler = skip_sig};
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 200}, {0, 200}};
	setitimer(ITIMER_REAL, &it, NULL);
	for (long i = 0; i < n; i++) {
		keep_steady();
		skip_sig(0);
		skip_a();
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	printf("keep_steady %ld\nsignals %s\n", n, sig_runs > n ? "yes" : "no");
	return 0;
}

/* What SELinux's execmod or PaX do to a program: mprotect asking for
 * write and execute together fails with EACCES. */
static int refuse_wx(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 4),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, PROT_WRITE | PROT_EXEC),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROT_WRITE | PROT_EXEC, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof f / sizeof f[0], f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		perror("seccomp");
		return -1;
	}
	return 0;
}

static int plugins(long n, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		void *h = dlopen(argv[i], RTLD_NOW);
		if (!h) {
			printf("dlopen: %s\n", dlerror());
			return 1;
		}
		void (*keep)(void) = (void (*)(void))dlsym(h, "lib_keep");
		void (*skip)(void) = (void (*)(void))dlsym(h, "lib_skip");
		for (long j = 0; j < n; j++) {
			keep();
			skip();
		}
		struct link_map *lm = NULL;
		dlinfo(h, RTLD_DI_LINKMAP, &lm);
		printf("%s %#lx\n", strrchr(argv[i], '/') + 1, lm ? (unsigned long)lm->l_addr : 0ul);
		dlclose(h);
	}
	return 0;
}

/* "<tag> <name> xx xx ..." : the code of f as it is now. */
static void show_code(const char *tag, const char *name, void (*f)(void), long len)
{
	const unsigned char *p = (const unsigned char *)(uintptr_t)f;
	printf("%s %s", tag, name);
	for (long i = 0; i < len; i++)
		printf(" %02x", p[i]);
	printf("\n");
}

static void show_skips(const char *tag, long len)
{
	show_code(tag, "skip_a", skip_a, len);
	show_code(tag, "skip_b", skip_b, len);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "basic";
	long n = argc > 2 ? atol(argv[2]) : 1000;
	if (!strcmp(mode, "basic")) {
		basic(n);
	} else if (!strcmp(mode, "many")) {
		many(n);
	} else if (!strcmp(mode, "cold")) {
		basic(n);
		sleep(argc > 3 ? (unsigned)atoi(argv[3]) : 0);
	} else if (!strcmp(mode, "middle")) {
		middle(n);
		struct codensm_options all = {.include = KEEP ",patcher.skip_mid"};
		codensm_init(&all);
		middle(n);
	} else if (!strcmp(mode, "code")) {
		long len = argc > 3 ? atol(argv[3]) : 0;
		show_skips("before", len);
		basic(n);
		show_skips("patched", len);
		struct codensm_options all = {.include = KEEP SKIP};
		codensm_init(&all);
		basic(n);
		show_skips("restored", len);
	} else if (!strcmp(mode, "include")) {
		basic(n);
		struct codensm_options all = {.include = KEEP SKIP};
		codensm_init(&all);
		basic(n);
	} else if (!strcmp(mode, "flip")) {
		return flip(argc > 2 ? atoi(argv[2]) : 3, argc > 3 ? atol(argv[3]) : 1000,
			    argc > 4 ? atoi(argv[4]) : 1000);
	} else if (!strcmp(mode, "inlined")) {
		for (long i = 0; i < n; i++)
			keep_outer_inl();
	} else if (!strcmp(mode, "wrapper")) {
		for (long i = 0; i < n; i++) {
			wrapped((void *)skip_a);
			wrapped((void *)keep_steady);
		}
	} else if (!strcmp(mode, "open")) {
		return open_call();
	} else if (!strcmp(mode, "fork")) {
		return forked(n);
	} else if (!strcmp(mode, "signal")) {
		return signals(n, argc > 3 ? atoi(argv[3]) : 0);
	} else if (!strcmp(mode, "refuse")) {
		if (refuse_wx() < 0)
			return 2;
		basic(n);
	} else if (!strcmp(mode, "dl")) {
		return plugins(n, argc - 3, argv + 3);
	}
	printf("%s %ld\n", mode, n);
	return 0;
}
