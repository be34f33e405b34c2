/* crash.c: on a fatal signal, writes everything counted but not delivered
 * to the spool, then lets the signal do what it would have done anyway.
 *
 * The handler calls async-signal-safe functions only (POSIX.1 list, plus
 * pure computation): no malloc, no locks, no stdio, no jansson, no curl.
 * What it uses: atomics, syscall(gettid), nanosleep, sigaction, raise,
 * getpid, and through the callees open/write/close/rename/mkdir/
 * clock_gettime.  The counters are read by cnsmp_collect_signal_safe into a
 * batch reserved at install time, and the flusher's state through its
 * published view (view.c explains why that view is always consistent).
 *
 * What gets spooled, each as its own file (and own batch id):
 *   - every body the flusher built but has not seen delivered, verbatim: if
 *     the server did commit one, its batch id makes the resend a no-op;
 *   - the flusher's pending deltas (in no body);
 *   - deltas a collect just took but had not published yet (phase 2);
 *   - the live counters since the last collect;
 *   - the probes section as it stands, once the crashing thread's probed
 *     calls have ended (probes.c, probereport.c).
 * Without a key, the probes section goes to stderr as the local
 * reporter's last line instead.
 * Freezing the flusher first (cnsmp_view_frozen) makes sure it sends
 * nothing new from those, so no count goes out twice.
 *
 * Afterwards the previous handler is restored (SIG_DFL if there was none)
 * and the signal delivered again: a fault re-executes and faults again, a
 * sent signal is raised again, so core dumps and exit statuses are what
 * they would have been without codensm.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define NFATAL (sizeof fatal / sizeof fatal[0])
static struct sigaction previous[NFATAL];
static _Atomic int installed;

/* The live counters at the crash land here: reserved once, never grown
 * (the handler cannot allocate).  Edges and incidents: room for 8 threads'
 * worth; what does not fit is left out (collect says so). */
static struct cnsmp_batch crash_batch;
static _Atomic long dumping_tid;  /* the thread running the handler */
static _Atomic int dump_done;

/* For a stack overflow on the thread that installed the handlers (usually
 * main): the handler needs a stack of its own to run at all. */
static char altstack[64 * 1024];

CNSMP_NOINST static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* "<base>-crash-<tag>": one id per file, unique to this process. */
CNSMP_NOINST static void crash_id(char *out, size_t len, char tag)
{
	size_t n = strlen(cnsmp_view_batch_base);
	if (n + 9 > len)
		n = 0;
	memcpy(out, cnsmp_view_batch_base, n);
	memcpy(out + n, "-crash-", 7);
	out[n + 7] = tag;
	out[n + 8] = '\0';
}

CNSMP_NOINST static int spool_string(const char *s)
{
	char tmp[CNSMP_SPOOL_PATH], final[CNSMP_SPOOL_PATH];
	int fd = cnsmp_spool_open(cnsmp_cfg.spool_dir, tmp, final);
	if (fd < 0)
		return 0;
	size_t len = strlen(s), off = 0;
	while (off < len) {
		ssize_t w = write(fd, s + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			unlink(tmp);
			return 0;
		}
		off += (size_t)w;
	}
	return cnsmp_spool_commit(fd, tmp, final) == 0;
}

CNSMP_NOINST static int spool_batch(const struct cnsmp_batch *b, char tag)
{
	if (cnsmp_batch_is_empty(b))
		return 0;
	char id[96];
	crash_id(id, sizeof id, tag);
	struct cnsmp_meta m = {cnsmp_cfg.service, cnsmp_view_hostname, (long)getpid(), id, NULL};
	char tmp[CNSMP_SPOOL_PATH], final[CNSMP_SPOOL_PATH];
	int fd = cnsmp_spool_open(cnsmp_cfg.spool_dir, tmp, final);
	if (fd < 0)
		return 0;
	if (cnsmp_payload_write_fd(fd, b, &m) != 0) {
		close(fd);
		unlink(tmp);
		return 0;
	}
	return cnsmp_spool_commit(fd, tmp, final) == 0;
}

/* The probes section as it stands (probereport.c), in a body of its own:
 * what the flusher had not reported yet, the crashing thread's probed
 * calls ended. */
CNSMP_NOINST static int spool_probes(void)
{
	struct cnsmp_batch b;
	memset(&b, 0, sizeof b);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	b.start = b.end = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	char id[96];
	crash_id(id, sizeof id, 'r');
	struct cnsmp_meta m = {cnsmp_cfg.service, cnsmp_view_hostname, (long)getpid(), id, NULL};
	char tmp[CNSMP_SPOOL_PATH], final[CNSMP_SPOOL_PATH];
	int fd = cnsmp_spool_open(cnsmp_cfg.spool_dir, tmp, final);
	if (fd < 0)
		return 0;
	struct cnsmp_sink s;
	cnsmp_schema_to_fd(&s, fd);
	cnsmp_schema_put(&s, "{\"functions\":[],");
	int any = cnsmp_probereport_crash(&s);
	cnsmp_schema_put(&s, ",\"_meta\":");
	cnsmp_schema_meta(&s, &m, &b, 1, -1);
	cnsmp_schema_put(&s, "}");
	if (cnsmp_schema_close(&s) != 0 || !any) {
		close(fd);
		unlink(tmp);
		return 0;
	}
	return cnsmp_spool_commit(fd, tmp, final) == 0;
}

CNSMP_NOINST int cnsmp_crash_dump(void)
{
	int zero = 0;
	if (!atomic_compare_exchange_strong(&cnsmp_view_frozen, &zero, 1))
		return -1;
	if (!cnsmp_cfg.api_key || !cnsmp_cfg.spool_dir) {
		cnsmp_probereport_crash_stderr(); /* without a key: its last line */
		return 0; /* nothing could ever send it */
	}
	/* A collect in progress moved counters past their snapshots: wait for
	 * it to publish (bounded: the collecting thread may be the one that
	 * crashed, and then those deltas are lost). */
	for (int i = 0; i < 200 && atomic_load(&cnsmp_view_phase) == 1; i++)
		sleep_ms(1);
	int written = 0;
	const struct cnsmp_view *v = atomic_load(&cnsmp_view_published);
	for (size_t i = 0; v && i < v->nbodies; i++)
		written += spool_string(v->bodies[i]);
	if (v) {
		written += spool_batch(v->pending, 'p');
		written += spool_batch(v->fresh, 'f');
	}
	if (crash_batch.capfns && cnsmp_collect_signal_safe(&crash_batch) >= 0)
		written += spool_batch(&crash_batch, 'l');
	written += spool_probes();
	return written;
}

/* Put back what was there before us, and make the signal happen again. */
CNSMP_NOINST static void chain(int sig, const siginfo_t *si)
{
	for (size_t i = 0; i < NFATAL; i++) {
		if (fatal[i] != sig)
			continue;
		struct sigaction sa = previous[i];
		if (sa.sa_handler == SIG_IGN && sig != SIGABRT)
			sa.sa_handler = SIG_DFL; /* an ignored fault would loop */
		sigaction(sig, &sa, NULL);
	}
	/* A fault (si_code > 0) repeats by itself when we return; a sent
	 * signal (kill, raise, abort: si_code <= 0) must be raised again.
	 * It stays blocked until the handler returns, then goes to the
	 * restored action. */
	if (!si || si->si_code <= 0 || sig == SIGABRT)
		raise(sig);
}

CNSMP_NOINST static void handler(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	long me = (long)syscall(SYS_gettid);
	long expect = 0;
	if (!atomic_compare_exchange_strong(&dumping_tid, &expect, me)) {
		/* A crash inside our own dump: give up at once.  Another thread
		 * dumping: let it finish (bounded), then die the normal way. */
		for (int i = 0; expect != me && i < 3000 && !atomic_load(&dump_done); i++)
			sleep_ms(1);
		chain(sig, si);
		errno = saved;
		return;
	}
	cnsmp_probes_crash_end(); /* before the frames it reads are closed */
	cnsmp_thread_crash_mark(sig);
	cnsmp_crash_dump();
	atomic_store(&dump_done, 1);
	chain(sig, si);
	errno = saved;
}

CNSMP_NOINST void cnsmp_crash_install(void)
{
	if (atomic_exchange(&installed, 1))
		return;
	cnsmp_batch_init(&crash_batch);
	if (cnsmp_batch_reserve(&crash_batch, CNSMP_MAX_TRACKED, 8 * CNSMP_EDGES_PER_THREAD,
				8 * CNSMP_INCIDENTS_PER_THREAD) != 0) {
		cnsmp_batch_release(&crash_batch);
		cnsmp_log(CNSMP_LOG_INFO, "cannot reserve the crash batch: counts at a crash "
			  "will be lost");
	}
	stack_t ss, cur;
	if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
		ss.ss_sp = altstack;
		ss.ss_size = sizeof altstack;
		ss.ss_flags = 0;
		sigaltstack(&ss, NULL);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NFATAL; i++) {
		if (sigaction(fatal[i], &sa, &previous[i]) != 0)
			cnsmp_log(CNSMP_LOG_INFO, "cannot install a handler for signal %d: %s",
				  fatal[i], strerror(errno));
	}
}
