/* lifecycle.c: starting, reconfiguring, flushing and stopping the runtime,
 * from the library constructor, the public API, exit() and fork().
 *
 * Start-up stays cheap: read the config, pick the clock, start the flusher
 * thread and install the crash handlers.  Everything slow (DWARF, network,
 * the spool) happens later on the flusher thread.
 *
 * Hooks can run before our constructor (another library's constructors, C++
 * static initialisers), so the hooks call cnsmp_lifecycle_ensure_init too.
 * It never blocks: a second caller while init runs (another thread, or this
 * thread re-entering) returns at once and sees cnsmp_active still 0, so
 * its calls are simply not counted.  Only the public API waits for init.
 *
 * Configuration: codensm_init() replaces cnsmp_cfg field by field and never
 * frees the old strings, because the flusher and the registry read them
 * without a lock; it is meant for start-up, a reconfigure while other
 * threads make their first calls may decide those with a mix of old and
 * new rules (decided again at the next codensm_init).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "internal.h"

#define EXIT_BUDGET_S 2.5 /* the final flush; the program exits within ~3 s */

struct cnsmp_config cnsmp_cfg;
_Atomic int cnsmp_active;

static _Atomic int init_state; /* 0 never, 1 running, 2 done */
static pthread_mutex_t api_mu = PTHREAD_MUTEX_INITIALIZER;
static int hooks_registered;   /* atexit + pthread_atfork, once */
static _Atomic int nokey_logged;
static _Atomic int noinclude_logged;
static _Atomic int clock_logged;

/* Configurations replaced by codensm_init(): never freed (see above), but
 * kept reachable, so that what is retained on purpose is not a leak (and
 * leak checkers in users' test suites stay quiet).  One node per call. */
struct retired {
	struct retired *next;
	struct cnsmp_config cfg;
};
static struct retired *retired;

/* Keep the current config's pointers (api_mu held). */
CNSMP_NOINST static void retire_current(void)
{
	struct retired *r = malloc(sizeof *r);
	if (!r)
		return; /* then it is simply not reachable */
	r->cfg = cnsmp_cfg;
	r->next = retired;
	retired = r;
}

CNSMP_NOINST static void at_exit(void)
{
	if (atomic_load(&cnsmp_active))
		cnsmp_thread_end_open_calls();
	cnsmp_flusher_stop(EXIT_BUDGET_S);
	cnsmp_probereport_local_stop();
}

/* Sending: the flusher thread, and the crash handlers that spool what it
 * could not deliver when the process dies (only then is there anything
 * for them to spool). */
CNSMP_NOINST static void send_from_here(void)
{
	if (cnsmp_flusher_start() == 0)
		cnsmp_crash_install();
}

/* Fork handling, all of it: every module's state that another thread may
 * hold mid-change at fork() is made whole here, in the order the data
 * flows.  Locks taken in prepare are held across fork, so the child finds
 * them free. */
CNSMP_NOINST static void fork_prepare(void)
{
	cnsmp_symbols_atfork_prepare();
	cnsmp_flusher_atfork_prepare();
}

CNSMP_NOINST static void fork_parent(void)
{
	cnsmp_flusher_atfork_parent();
	cnsmp_symbols_atfork_parent();
}

/* The child starts counting from zero (the parent ships what was counted
 * before the fork) and needs its own flusher thread: threads do not
 * survive fork.  It is started here rather than on a later hook because
 * the hooks only call into the lifecycle once per process. */
CNSMP_NOINST static void fork_child(void)
{
	cnsmp_symbols_atfork_child();
	cnsmp_registry_atfork_child();
	cnsmp_thread_atfork_child();
	cnsmp_collect_atfork_child();
	cnsmp_inventory_atfork_child();
	cnsmp_view_atfork_child();
	cnsmp_flusher_atfork_child();
	cnsmp_probes_atfork_child();
	if (!cnsmp_cfg.disable && cnsmp_cfg.api_key && atomic_load(&cnsmp_active))
		send_from_here();
}

/* With the config in place: register exit/fork hooks once, start sending
 * (or say why not), then let the hooks count. */
CNSMP_NOINST static void start(void)
{
	cnsmp_clock_init();
	if (!atomic_exchange(&clock_logged, 1)) {
		/* Which clock times the calls: the vDSO's costs more per read. */
		if (cnsmp_clock_is_tsc)
			cnsmp_log(CNSMP_LOG_DEBUG, "timing with the TSC (%.3f GHz)",
				  (double)(1ull << cnsmp_clock_shift) / (double)cnsmp_clock_mult);
		else
			cnsmp_log(CNSMP_LOG_DEBUG, "timing with CLOCK_MONOTONIC "
				  "(no invariant TSC of 335 MHz to 20 GHz)");
	}
	if (!hooks_registered) {
		hooks_registered = 1;
		pthread_atfork(fork_prepare, fork_parent, fork_child);
		atexit(at_exit);
	}
	if (cnsmp_cfg.api_key && cnsmp_cfg.api_key[0]) {
		cnsmp_transport_prepare();
		send_from_here();
	} else if (!getenv("CODENSM_API_KEY") && !atomic_exchange(&nokey_logged, 1)) {
		/* A key that is set but unusable already had its line (config.c). */
		cnsmp_log(CNSMP_LOG_INFO, "CODENSM_API_KEY is not set: counting, not sending");
	}
	cnsmp_probereport_local_start(); /* without a key only */
	if (cnsmp_cfg.probes_file && cnsmp_cfg.probes_file[0] && !cnsmp_cfg.api_key)
		cnsmp_crash_install(); /* a crash ends probed calls: its last report */
	const char *inc = getenv("CODENSM_INCLUDE"); /* set but unusable: config.c said so */
	if (!cnsmp_cfg.include_set && !(inc && *inc) && !atomic_exchange(&noinclude_logged, 1))
		cnsmp_log(CNSMP_LOG_INFO, "CODENSM_INCLUDE is not set: tracking every instrumented "
					  "function of this program's own code");
	cnsmp_probes_poll(); /* the probes file, before the first call is counted */
	atomic_store_explicit(&cnsmp_active, 1, memory_order_release);
}

CNSMP_NOINST void cnsmp_lifecycle_ensure_init(void)
{
	if (likely(atomic_load_explicit(&init_state, memory_order_acquire) == 2))
		return;
	int expect = 0;
	if (!atomic_compare_exchange_strong(&init_state, &expect, 1))
		return;
	cnsmp_config_load(&cnsmp_cfg, getenv, NULL);
	if (cnsmp_cfg.api_key && !cnsmp_cfg.api_key[0])
		cnsmp_cfg.api_key = NULL;
	if (!cnsmp_cfg.disable) {
		cnsmp_sample_set(cnsmp_cfg.sample, cnsmp_cfg.sample_below_ns);
		start();
	}
	atomic_store_explicit(&init_state, 2, memory_order_release);
}

/* The public API needs init finished, whoever runs it. */
CNSMP_NOINST static void wait_init(void)
{
	cnsmp_lifecycle_ensure_init();
	struct timespec ts = {0, 1000000};
	while (atomic_load_explicit(&init_state, memory_order_acquire) != 2)
		nanosleep(&ts, NULL);
}

__attribute__((constructor, no_instrument_function)) static void cnsmp_ctor(void)
{
	cnsmp_lifecycle_ensure_init();
}

CNSMP_API int codensm_init(const struct codensm_options *opts)
{
	wait_init();
	pthread_mutex_lock(&api_mu);
	struct cnsmp_config nc;
	memset(&nc, 0, sizeof nc);
	int bad = cnsmp_config_load(&nc, getenv, opts);
	if (nc.api_key && !nc.api_key[0])
		nc.api_key = NULL;
	if (nc.disable) {
		atomic_store(&cnsmp_active, 0);
		cnsmp_registry_invalidate(); /* cached decisions stand for "active" */
		cnsmp_flusher_stop(EXIT_BUDGET_S);
		cnsmp_cfg.disable = 1;
		cnsmp_config_release(&nc); /* nothing of it was used */
		pthread_mutex_unlock(&api_mu);
		return bad ? -1 : 0;
	}
	int had_key = cnsmp_cfg.api_key != NULL;
	if (had_key && !nc.api_key)
		cnsmp_flusher_stop(EXIT_BUDGET_S); /* spools what it holds */
	/* Pointers before counts, field by field: readers that race see an
	 * old or a new value, never freed memory (the old one is kept). */
	retire_current();
	cnsmp_cfg.include.prefix = nc.include.prefix;
	cnsmp_cfg.include.n = nc.include.n;
	cnsmp_cfg.exclude.prefix = nc.exclude.prefix;
	cnsmp_cfg.exclude.n = nc.exclude.n;
	cnsmp_cfg.department = nc.department;
	cnsmp_cfg.weights = nc.weights;
	cnsmp_cfg.include_set = nc.include_set;
	cnsmp_cfg.api_key = nc.api_key;
	cnsmp_cfg.endpoint = nc.endpoint;
	cnsmp_cfg.service = nc.service;
	cnsmp_cfg.spool_dir = nc.spool_dir;
	cnsmp_cfg.source_root = nc.source_root;
	cnsmp_cfg.symbol_cache = nc.symbol_cache;
	cnsmp_cfg.ca_file = nc.ca_file;
	cnsmp_cfg.probes_file = nc.probes_file;
	cnsmp_cfg.flush_interval = nc.flush_interval;
	cnsmp_cfg.log_level = nc.log_level;
	cnsmp_cfg.sample = nc.sample;
	cnsmp_cfg.sample_below_ns = nc.sample_below_ns;
	cnsmp_cfg.mode_full = nc.mode_full;
	cnsmp_cfg.disable = 0;
	/* Before redecide, which moves the registry's generation: caches
	 * refilled after it tag their slots under the new sampling. */
	cnsmp_sample_set(nc.sample, nc.sample_below_ns);
	cnsmp_registry_redecide();
	start();
	pthread_mutex_unlock(&api_mu);
	return bad ? -1 : 0;
}

CNSMP_API int codensm_flush(void)
{
	wait_init();
	if (cnsmp_cfg.disable || !cnsmp_cfg.api_key)
		return -1;
	cnsmp_thread_drain_self();
	return cnsmp_flusher_flush(5.0);
}

CNSMP_API void codensm_shutdown(void)
{
	wait_init();
	pthread_mutex_lock(&api_mu);
	atomic_store(&cnsmp_active, 0);
	cnsmp_registry_invalidate();
	cnsmp_flusher_stop(EXIT_BUDGET_S);
	pthread_mutex_unlock(&api_mu);
}
