/* codensm.h: the public API of libcodensm-rt, and nothing else.
 *
 * Most programs never include this header: building with
 * `-finstrument-functions -g` and linking `$(pkg-config --libs codensm-rt)`
 * is enough, the library starts itself and flushes at exit, and the
 * CODENSM_* environment variables configure it (see README.md).
 *
 * This header is for programs that want to configure the runtime in code,
 * force a send, mark a call as failed, or track a function that was not
 * compiled with instrumentation.  Every function here is safe to call from
 * any thread, before or after the library started, and never aborts the
 * host program: failures are reported through return values and, when
 * CODENSM_LOG allows, one line on stderr.
 */
#ifndef CODENSM_H
#define CODENSM_H

#ifdef __cplusplus
extern "C" {
#endif

#define CODENSM_VERSION "0.1.0"

/* Options for codensm_init().  Every field left zero/NULL keeps the value
 * from the environment (or its default), so a program only sets what it
 * wants to override.  Strings use the same syntax as the environment
 * variable named beside them and are copied: the caller keeps ownership. */
struct codensm_options {
	const char *api_key;        /* CODENSM_API_KEY: project ingest key, "cnsm_..." */
	const char *endpoint;       /* CODENSM_ENDPOINT: ingest URL */
	const char *include;        /* CODENSM_INCLUDE: "checkout,payments" */
	const char *exclude;        /* CODENSM_EXCLUDE: "checkout.hot" */
	const char *department;     /* CODENSM_DEPARTMENT: "checkout.pay=payments,..." */
	const char *weights;        /* CODENSM_WEIGHTS: "checkout=9,checkout.log=0.5" */
	const char *service;        /* CODENSM_SERVICE: defaults to the executable name */
	const char *spool_dir;      /* CODENSM_SPOOL_DIR: where unsent data waits */
	const char *source_root;    /* CODENSM_SOURCE_ROOT: base of module paths */
	const char *ca_file;        /* CODENSM_CA_FILE: extra CA bundle for TLS */
	double flush_interval;      /* CODENSM_FLUSH_INTERVAL, seconds; 0 keeps it */
	int log_level;              /* CODENSM_LOG: 0 keep, 1 quiet, 2 info, 3 debug */
	int disable;                /* CODENSM_DISABLE: 1 disables, 0 keeps */
	/* CODENSM_SAMPLE: time 1 in N calls (on average) of a function known
	 * to be short; 1 times every call (the default); 0 keeps. */
	unsigned sample;
	unsigned sample_below_ns;   /* CODENSM_SAMPLE_BELOW_NS: "short"; 0 keeps */
};

/* Apply options on top of the environment.  May be called again to
 * reconfigure: include/exclude/department/weights are decided again for
 * every function on its next call, counts made so far are kept.
 * Returns 0, or -1 if an option was malformed (that option keeps its
 * previous value and one line on stderr names it). */
int codensm_init(const struct codensm_options *opts);

/* Send everything counted so far now, waiting at most a few seconds.
 * Returns 0 if the server accepted it, -1 if not (the data is kept and
 * retried by the next flush, or spooled at exit: nothing is lost). */
int codensm_flush(void);

/* Final send, then stop the background thread.  Counting stops; a later
 * codensm_init() starts again.  Called automatically at exit. */
void codensm_shutdown(void);

/* Mark the innermost tracked call in progress on this thread as failed.
 * Its error counts once however often this is called during that call,
 * and an incident records the chain of tracked callers that led to it. */
void codensm_error(void);

/* Track a function that was not compiled with -finstrument-functions (the
 * Python SDK's @track).  `fn` identifies the function (usually its address);
 * name/department may be NULL to use the usual naming and department rules,
 * weight < 0 keeps the usual weight.  Pair every codensm_enter() with one
 * codensm_exit(fn) on the same thread; CODENSM_TRACK does that for you. */
void codensm_enter(void *fn, const char *name, const char *department,
		   double weight);
void codensm_exit(void *fn);

/* ---- probes (docs/probes.md) --------------------------------------------
 * A probe looks closer at the calls of one function, or of every function
 * under a name prefix, for a limited time: a spec (JSON, the shape of
 * docs/probes.md) names the target, an instrument, the event and the
 * conditions; the probe disarms itself `lifespan` minutes after
 * `lastmodified`.  Probes come from the file CODENSM_PROBES and from the
 * calls below; each reports in the payload's `probes` array.  A probe
 * records only what the runtime knows of a call (its duration, caller,
 * thread, error and chain of tracked callers), never arguments, return
 * values or memory. */

/* The events a probe can watch. */
enum codensm_probe_event_kind {
	CODENSM_PROBE_CALL = 1,   /* the call begins */
	CODENSM_PROBE_RETURN = 2, /* it returns normally */
	CODENSM_PROBE_END = 3,    /* it ends in any way (return, exception, longjmp, fatal signal) */
};

/* What a user instrument is given for each event that matched. */
struct codensm_probe_event {
	const char *probe_id;    /* the spec's id */
	const char *name;        /* the instrument's "name" */
	const char *function;    /* the probed function's name */
	const char *caller;      /* the innermost tracked caller, or NULL */
	int event;               /* enum codensm_probe_event_kind */
	int error;               /* codensm_error() during the call, or it ended
				  * by an exception or a longjmp */
	unsigned long long duration_ns; /* 0 for CODENSM_PROBE_CALL */
	unsigned long long thread;      /* the kernel's thread id */
};

/* A user instrument: called on the probed thread, inside the hook, for
 * each event that passed the spec's conditions.  It must be quick and
 * thread-safe, and must not block; the calls it makes are not counted.
 * It is not called for the ends a fatal signal causes (they count in the
 * probe's hits): it need not be async-signal-safe. */
typedef void (*codensm_instrument_fn)(const struct codensm_probe_event *ev,
				      void *arg);

/* Make `type` an instrument type of specs (besides log, hist, incr and
 * stack), the seed's instrument_classes.  Specs naming it that were in
 * ERROR are applied again.  Returns 0, or -1 if `type` is a built-in
 * name, is empty or longer than 63 bytes, or 16 types exist already. */
int codensm_instrument_register(const char *type, codensm_instrument_fn fn,
				void *arg);

/* Add (or replace) one probe from a spec in JSON that carries its "id".
 * Returns 0 when the spec was taken (it may still be in ERROR: its status
 * in the payload says why), -1 if it is not a JSON object with a string
 * "id".  A spec added here wins over a spec of the same id from the file
 * or from the server. */
int codensm_probe_add(const char *spec_json);
/* Remove the probe added by codensm_probe_add; 0, or -1 if unknown. */
int codensm_probe_remove(const char *id);

#if defined(__GNUC__)
static inline void codensm__track_cleanup(void **fn) { codensm_exit(*fn); }
/* Inside a function body: CODENSM_TRACK("payments.charge", "payments", 9);
 * tracks the enclosing scope until it ends (any return path). */
#define CODENSM_TRACK(name, department, weight)                                \
	void *codensm__scope __attribute__((cleanup(codensm__track_cleanup))) = \
		(void *)__func__;                                              \
	codensm_enter((void *)__func__, (name), (department), (weight))
#endif

#ifdef __cplusplus
}
#endif
#endif /* CODENSM_H */
