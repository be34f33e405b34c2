/* internal.h: private declarations shared by the runtime's files.
 *
 * Naming: cross-file private names start with `cnsmp_<module>_`, the
 * module being the file that defines them (cnsmp_symbols_resolve is in
 * symbols.c); a struct's own functions may take the struct's name instead
 * (cnsmp_batch_init, cnsmp_fninfo_release, cnsmp_index_free), and the
 * process-wide cnsmp_cfg and cnsmp_active are lifecycle.c's.  thread.h
 * (the hot path's inline code) keeps the names it has.  Nothing here is
 * exported (the library is built with -fvisibility=hidden, only CNSMP_API
 * symbols are visible).  contract.h is what the server shares.
 *
 * The one rule of the house: the hot path (hooks.c, sample.c, thread.c,
 * clock.c and the lookup half of registry.c) never allocates after a
 * function's first call on a thread, never locks, never makes a syscall,
 * never touches DWARF.  Everything slow happens once per function (the
 * registry's slow path, naming it through symbols) or on the flusher
 * thread (collect, payload, transport, spool).
 *
 * Data flows one way, down this list (an indented row serves the one
 * above it); the last rows drive the steps above them, and no file calls
 * one that drives it:
 *   hooks.c, thread.c, sample.c    -> the calls, per-thread counters
 *   clock.c, hist.c                -> the clock; histogram buckets
 *   registry.c                     -> address -> function, decided once
 *     symbols.c                    -> resolve an address; the inventory
 *       modules.c                  -> the process's loaded objects
 *       symcache.c | dwarf.c (dw.c)-> a module's index, from disk | DWARF
 *       index.c                    -> the index itself
 *     rules.c, config.c            -> naming and selection; configuration
 *     probes.c, probespec.c        -> the probes a function has (specs,
 *                                     lifespans); its probed calls' events
 *     patch.c (insn.c), sites.c    -> excluded functions' hook calls patched
 *                                     out of the code (x86-64): what to
 *                                     patch; writing it, in batches
 *       decoded.c                  -> what decoding a function found
 *                                     (tail-jumped exits, loads of the
 *                                     hooks' second argument), once per
 *                                     build, kept beside the symbol cache
 *   collect.c                      -> counters -> a batch of deltas
 *   inventory.c                    -> functions to describe once
 *   payload.c, schema.c            -> bodies; the schema, written once
 *   probereport.c                  -> the probes section of a body
 *   transport.c | spool.c          -> HTTP | disk
 *   flusher.c, view.c, crash.c     -> the thread that sends; what a crash
 *                                     may read of it; the crash spool
 *   lifecycle.c, dl.c, cxx.c       -> start, fork, exit; dlclose; C++
 */
#ifndef CODENSM_INTERNAL_H
#define CODENSM_INTERNAL_H

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdatomic.h>
#include <pthread.h>
#include "codensm.h"
#include "contract.h"

#define CNSMP_API __attribute__((visibility("default"), no_instrument_function))
#define CNSMP_NOINST __attribute__((no_instrument_function))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ---- the small things every module shares, defined once ---------------- */

/* FNV-1a, 64 bits, over 8-byte words and then the tail bytes, continuing
 * from `h` (start with CNSMP_HASH_SEED): the runtime's one hash, for the
 * symbol cache's checksum and file names (all 64 bits) and, through
 * cnsmp_hash_mix, for table keys.  A word at a time is three times faster
 * than a byte at a time on a 2,000-function index; it catches damage, not
 * a crafted collision. */
#define CNSMP_HASH_SEED 1469598103934665603ull
static inline uint64_t cnsmp_hash(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t w;
	for (; n >= 8; p += 8, n -= 8) {
		__builtin_memcpy(&w, p, 8);
		h = (h ^ w) * 1099511628211ull;
	}
	while (n--)
		h = (h ^ *p++) * 1099511628211ull;
	return h;
}
/* A multiply carries a word's bytes only upwards, so the low bits of
 * cnsmp_hash depend on the low byte of each word alone: a table indexed
 * by them needs the high bits folded in (MurmurHash3's finalizer). */
static inline uint64_t cnsmp_hash_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}
/* A string's hash, for a table index. */
static inline uint64_t cnsmp_hash_str(const char *s)
{
	return cnsmp_hash_mix(cnsmp_hash(CNSMP_HASH_SEED, s, __builtin_strlen(s)));
}
/* FNV-1a, 32 bits, a byte at a time: the "#hash" that tells overloads
 * apart is part of a function's name, so it must never change. */
static inline uint32_t cnsmp_hash32_str(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Grows *arr (of *cap elements of `size`) to hold at least `need`,
 * doubling from 16; 0, or -1 with *arr and *cap unchanged if memory ran
 * out.  Slow paths only. */
static inline int cnsmp_grow(void **arr, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *p = realloc(*arr, n * size);
	if (!p)
		return -1;
	*arr = p;
	*cap = n;
	return 0;
}

/* The seed's guardrail: at most this many distinct tracked functions per
 * process; further new names are dropped and counted in _meta.dropped. */
#define CNSMP_MAX_TRACKED 4000
/* Contract limits of one ingest request (contract.h). */
#define CNSMP_MAX_BODY CNSMP_CONTRACT_MAX_BODY
#define CNSMP_MAX_FUNCS_PER_PAYLOAD CNSMP_CONTRACT_MAX_FUNCTIONS

/* ---- log.c: one-line diagnostics on stderr ------------------------------ */

enum { CNSMP_LOG_QUIET = 1, CNSMP_LOG_INFO = 2, CNSMP_LOG_DEBUG = 3 };
extern int cnsmp_log_level; /* default CNSMP_LOG_INFO */
/* Prints "codensm: <message>\n" with one write(2) if level <= cnsmp_log_level.
 * Warnings about bad config use CNSMP_LOG_INFO, so "quiet" silences them. */
void cnsmp_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- config.c: environment + codensm_init options -> one config --------- */

/* A comma-separated list of name prefixes ("checkout,payments.card"). */
struct cnsmp_prefixes {
	size_t n;
	char **prefix;
};

/* A comma-separated "prefix=value" map; values are strings (departments)
 * or numbers (weights), kept as both so one parser serves both. */
struct cnsmp_prefix_map {
	size_t n;
	char **prefix;
	char **value;
	double *number;
};

struct cnsmp_config {
	char *api_key;                 /* NULL: count, never send */
	char *endpoint;                /* default CNSMP_DEFAULT_ENDPOINT */
	char *service;                 /* default: basename of /proc/self/exe */
	char *spool_dir;               /* default: $XDG_STATE_HOME or ~/.local/state/codensm/spool */
	char *source_root;             /* NULL: each unit's DW_AT_comp_dir */
	char *symbol_cache;            /* NULL: off; default $XDG_CACHE_HOME or ~/.cache/codensm/symbols */
	char *ca_file;                 /* NULL: system CAs */
	int include_set;               /* CODENSM_INCLUDE was given (even empty) */
	struct cnsmp_prefixes include; /* empty + !include_set: all user code */
	struct cnsmp_prefixes exclude;
	struct cnsmp_prefix_map department;
	struct cnsmp_prefix_map weights;
	double flush_interval;         /* seconds, default 15, > 0 */
	/* Sampled timing (sample.c): time 1 in `sample` calls, on average, of
	 * a function whose mean on a thread is under sample_below_ns; 1 (the
	 * default) times every call.  Counts are exact either way. */
	uint32_t sample;               /* 1 ... CNSMP_SAMPLE_MAX */
	uint32_t sample_below_ns;      /* 1 ... CNSMP_SAMPLE_BELOW_MAX, default 1000 */
	int log_level;
	int disable;
	int mode_full;                 /* CODENSM_MODE=full: ship flows (flows.c) */
	char *probes_file;             /* CODENSM_PROBES: NULL, none */
};
#define CNSMP_DEFAULT_ENDPOINT "http://127.0.0.1:8650/codensm/ingest"
#define CNSMP_DEFAULT_FLUSH_INTERVAL 15.0
#define CNSMP_SAMPLE_MAX 65536
#define CNSMP_DEFAULT_SAMPLE_BELOW_NS 1000
#define CNSMP_SAMPLE_BELOW_MAX 1000000000u

/* sample.c: the hooks' copy of cfg->sample and sample_below_ns (thread.h),
 * set before the registry's generation moves. */
void cnsmp_sample_set(uint32_t every, uint32_t below_ns);

/* Fill `cfg` from `getenv` (environment) and then `opts` (may be NULL).
 * A malformed value logs one line naming the variable and the value and
 * keeps the default; returns the number of malformed values (0 = clean). */
int cnsmp_config_load(struct cnsmp_config *cfg,
		      char *(*getenv_fn)(const char *),
		      const struct codensm_options *opts);
void cnsmp_config_release(struct cnsmp_config *cfg);
/* Parsers, exposed for unit tests and the doctor tool: 0 ok, -1 malformed
 * (and *out untouched). */
int cnsmp_config_parse_prefixes(const char *s, struct cnsmp_prefixes *out);
int cnsmp_config_parse_map(const char *s, int numeric, struct cnsmp_prefix_map *out);
int cnsmp_config_parse_seconds(const char *s, double *out);
/* The folder `what` of codensm's cache: $XDG_CACHE_HOME/codensm/<what>,
 * else ~/.cache/codensm/<what>, else NULL (no cache); malloc'd. */
char *cnsmp_cache_dir(char *(*getenv_fn)(const char *), const char *what);
void cnsmp_prefixes_release(struct cnsmp_prefixes *p);
void cnsmp_prefix_map_release(struct cnsmp_prefix_map *m);

/* ---- rules.c: naming, include/exclude, departments, weights (pure) ------ */

/* "checkout/cart.c" -> "checkout.cart"; leading "./" and "../" parts are
 * dropped, the last extension removed.  Returns a malloc'd string. */
char *cnsmp_rules_module_path(const char *relative_file);
/* Does `prefix` match `name` at a component boundary ("checkout" matches
 * "checkout", "checkout.cart.x" and "checkout::x" but not "checkoutx")? */
int cnsmp_rules_prefix_match(const char *prefix, const char *name);
/* Tracked if included (or no include given and not `system`), not
 * excluded.  A system function is tracked only if an include names it. */
int cnsmp_rules_tracked(const struct cnsmp_config *cfg, const char *name,
			int system);
/* Department: longest matching prefix of cfg->department, else the first
 * component of the name (up to the first '.'), else "default".  Returns a
 * pointer into cfg or into `buf` (size `len`). */
const char *cnsmp_rules_department(const struct cnsmp_config *cfg,
				   const char *name, char *buf, size_t len);
/* Weight: longest matching prefix of cfg->weights, default 1.0. */
double cnsmp_rules_weight(const struct cnsmp_config *cfg, const char *name);
/* Lexically normalised absolute path of `file`, taken relative to `dir`
 * when it is relative ("a/./b/../c.c" -> "/dir/a/c.c"); malloc'd, NULL if
 * out of memory.  No symlinks are followed: the build machine's paths
 * need not exist here. */
char *cnsmp_rules_absolute(const char *dir, const char *file);
/* Is absolute path `abs` under a folder of the compiler's or the system's
 * (headers, libraries), or a "<built-in>"?  Code declared there is
 * library code the user did not write. */
int cnsmp_rules_system_path(const char *abs);
/* A source file's module path and reported file: relative to `root` when
 * inside it, else from the absolute path.  0, or -1 (both NULL) on OOM. */
int cnsmp_rules_module_of(const char *root, const char *abs, char **modpath,
			  char **file);
/* An overloaded function's name: its base name and cnsmp_hash32_str of its
 * linkage (mangled) name, or of its qualified name when it has none. */
#define CNSMP_OVERLOAD_FMT "%s#%08" PRIx32

/* ---- index.c: a module's index of functions ---------------------------- */
/* Built by dwarf.c, kept on disk by symcache.c, read by symbols.c. */

/* One function with code.  Addresses are the module's own (DWARF)
 * addresses: add its load bias for the running process. */
struct cnsmp_func {
	char *name;       /* final: module path "." qualified [#hash] */
	char *file;
	int line;
	int system;
	uint64_t entry;
	uint32_t hash;    /* cnsmp_hash32 of the linkage name: tells overloads apart */
	char *base;       /* name before the overload suffix (build only) */
};

/* One code range of a function (split functions have several). */
struct cnsmp_range {
	uint64_t low, high;
	size_t func;
};

/* Every function of a module, its ranges sorted by `low` (no overlap is
 * assumed: a lookup takes the last range starting at or below). */
struct cnsmp_index {
	struct cnsmp_func *f;
	size_t nf, capf;
	struct cnsmp_range *r;
	size_t nr, capr;
	char *root;       /* the source root the names were made with, or NULL */
	uint64_t delta;   /* DWARF addresses = load addresses - load bias +
			   * delta: 0 unless the DWARF came from a debug file
			   * laid out apart (as prelink did) */
	int user;         /* has at least one non-system function */
	int partial;      /* memory ran out while building: never cached */
};
void cnsmp_index_free(struct cnsmp_index *x); /* NULL is a no-op */
/* The function whose code holds module address `a`, or NULL. */
const struct cnsmp_func *cnsmp_index_find(const struct cnsmp_index *x,
					  uint64_t a);
/* Once every function is in (each with `base` and `hash`): gives each
 * its final name (overloads get "#" and the hash), frees the bases, sets
 * `user` and sorts the ranges.  0, or -1 if memory ran out (x unchanged
 * but for names already made; x->partial set for a name that failed). */
int cnsmp_index_finish(struct cnsmp_index *x);

/* symcache.c: indexes kept on disk between runs, one file per `key` (a
 * file name: the module's build-id and what else the names depend on).
 * Load returns NULL if the file is missing or not exactly a whole, valid
 * index (then *refused, unless NULL, says whether a file was there but
 * could not be used); store writes a tmp file and renames it (0700 dir,
 * 0600 file) and returns 0 or -1.  Neither logs: the caller says what
 * happened. */
struct cnsmp_index *cnsmp_symcache_load(const char *dir, const char *key,
					const char *root, int *refused);
int cnsmp_symcache_store(const char *dir, const char *key,
			 const struct cnsmp_index *x);
/* Writes the n bytes at p as the file `name` of dir the way store does
 * (whole or not at all), then prunes: 0 or -1.  Other per-build files
 * (decoded.c's) go through it. */
int cnsmp_symcache_write(const char *dir, const char *name, const void *p, size_t n);
/* Deletes the least recently used files of dir (indexes, *.idx, and
 * decoded.c's *.exits) while they hold more than max_bytes together, and
 * tmp files older than an hour; write calls it with
 * CNSMP_SYMCACHE_MAX_BYTES. */
void cnsmp_symcache_prune(const char *dir, uint64_t max_bytes);
#define CNSMP_SYMCACHE_MAX_BYTES (256u << 20)

/* ---- modules.c: the objects loaded in this process ---------------------- */

/* One loaded object, from the dynamic loader (dl_iterate_phdr) and its
 * headers in memory, not from its file: a function named from the symbol
 * cache then costs no libdw, no file opened and no ELF read. */
struct cnsmp_module {
	char *path;            /* absolute */
	uintptr_t bias;        /* load bias (dlpi_addr) */
	uintptr_t first, last; /* lowest mapped address, highest + 1 */
	unsigned char id[64];  /* GNU build-id, from its notes in memory */
	size_t idlen;          /* 0: none */
	int user;              /* the program, or a library importing the hooks */
	struct cnsmp_index *x; /* its index, once `indexed` (symbols.c) */
	int indexed;
};
/* The list is symbols.c's: every call below is made under its lock.
 * Modules are added as they appear and all dropped by clear (after a
 * dlclose).  scan and at may move every entry: no pointer into the list
 * is held across them. */
void cnsmp_modules_scan(void);                       /* add new ones */
struct cnsmp_module *cnsmp_modules_find(uintptr_t addr); /* known ones */
struct cnsmp_module *cnsmp_modules_at(uintptr_t addr);   /* scan if none */
size_t cnsmp_modules_count(void);
struct cnsmp_module *cnsmp_modules_get(size_t i);
void cnsmp_modules_clear(void);                      /* frees their indexes */
/* The GNU build-id among the notes of one PT_NOTE segment or SHT_NOTE
 * section (n bytes, entries aligned to `align`), copied to out: its
 * length, or 0 if there is none or it is longer than cap. */
size_t cnsmp_note_build_id(const unsigned char *p, size_t n, size_t align,
			   unsigned char *out, size_t cap);

/* The absolute path of the file mapped at `at` (/proc/self/maps): 0, or
 * -1 if none is or it does not fit. */
int cnsmp_mapped_file(uintptr_t at, char *out, size_t len);

/* ---- dwarf.c: indexes from DWARF, through libdwfl ----------------------- */
/* (libdw itself is loaded on the first call here: dw.h.)  Every call is
 * made under symbols.c's lock; each returns NULL or -1 without libdw. */

/* The index of module `m` from its DWARF, source files named relative to
 * `root` (NULL: each unit's DW_AT_comp_dir); NULL without DWARF. */
struct cnsmp_index *cnsmp_dwarf_index(const struct cnsmp_module *m,
				      const char *root);
/* The same for an ELF file on disk, addresses the file's own. */
struct cnsmp_index *cnsmp_dwarf_index_file(const char *path, const char *root);
/* The function symbol of `m` holding `addr`: 0 with its name copied to
 * `name` (cut to `len`) and addr's offset in it, or -1. */
int cnsmp_dwarf_symbol(const struct cnsmp_module *m, uintptr_t addr,
		       char *name, size_t len, uint64_t *off);
/* Ends the libdwfl session (it is begun again on next need). */
void cnsmp_dwarf_end(void);

/* ---- symbols.c: address -> name, file, line; the inventory -------------- */

struct cnsmp_fninfo {
	char *name;      /* "checkout.cart.cart_total"; never NULL after resolve */
	char *file;      /* "checkout/cart.c", relative to the source root; or NULL */
	int line;        /* DW_AT_decl_line of the function, 0 if unknown */
	int system;      /* declared under /usr/include or similar */
	uintptr_t entry; /* the function's entry address (low_pc + bias) */
	char *module;    /* path of the ELF object holding it */
};

/* Resolve the function at `addr` (an address given to the enter hook) in
 * the running process.  Never fails to produce a name: without debug info
 * the symbol-table name is used, without symbols "module+0xoffset".
 * Returns 0 when resolved through DWARF or symbols, 1 for the fallback
 * name, -1 only if out of memory.  Thread-safe (takes its own lock). */
int cnsmp_symbols_resolve(uintptr_t addr, const struct cnsmp_config *cfg,
			  struct cnsmp_fninfo *out);
void cnsmp_fninfo_release(struct cnsmp_fninfo *fi);
/* The code of the function whose entry is `entry` (its DWARF ranges: the
 * body and any part split off, such as gcc's .cold), as up to `max`
 * [low, high) pairs of load addresses; how many, 0 if the module's index
 * has no function starting there. */
size_t cnsmp_symbols_code(uintptr_t entry, const struct cnsmp_config *cfg,
			  uintptr_t (*out)[2], size_t max);
/* The module holding `addr`, for files kept per build: a file name made
 * of its build-id, a hash of the runtime's and `suffix` (into key, len
 * bytes), its load bias and its mapped span [*first, *last).  0, or -1
 * if no module holds addr or either build-id is missing (nothing would
 * then tell a stale file). */
int cnsmp_symbols_module(uintptr_t addr, const char *suffix, char *key, size_t len,
			 uintptr_t *bias, uintptr_t *first, uintptr_t *last);

/* Call `cb` once for every function defined (with code) in the DWARF of
 * every module loaded in this process that was not inventoried before.
 * Used to report functions that are never called.  Returns the number of
 * functions reported. */
typedef void (*cnsmp_inventory_cb)(const struct cnsmp_fninfo *fi, void *arg);
size_t cnsmp_symbols_inventory(const struct cnsmp_config *cfg,
			       cnsmp_inventory_cb cb, void *arg);

/* The same two over an ELF file on disk (for `codensm doctor`): every
 * function with code, addresses relative to the file. */
size_t cnsmp_symbols_inventory_file(const char *path,
				    const struct cnsmp_config *cfg,
				    cnsmp_inventory_cb cb, void *arg);

/* Forget cached modules whose mappings are gone (after dlclose). */
void cnsmp_symbols_refresh(void);
void cnsmp_symbols_shutdown(void);
/* Fork: the lock is held across fork() (lifecycle.c), so that a fork
 * while another thread indexes leaves the child no lock nobody will
 * release. */
void cnsmp_symbols_atfork_prepare(void);
void cnsmp_symbols_atfork_parent(void);
void cnsmp_symbols_atfork_child(void);

/* ---- hist.c: the fixed log-scale latency histogram ---------------------- */

/* The buckets are the contract's (contract.h, docs/payload.md). */
#define CNSMP_HIST_BUCKETS CNSMP_CONTRACT_HIST_BUCKETS
static inline unsigned cnsmp_hist_bucket(uint64_t ns)
{
	return cnsmp_contract_hist_bucket(ns);
}
/* Lower bound in ns of bucket b (for percentiles and tests). */
uint64_t cnsmp_hist_lower(unsigned b);
/* Percentile q (0..1) estimated from counts, interpolating in the bucket. */
double cnsmp_hist_percentile_ns(const uint64_t *counts, double q);

/* The histogram slot of a duration in clock ticks, found without
 * converting it to ns (cnsmp_clock_slot below): the slot is the bucket of
 * cnsmp_hist_bucket(ns), except that 1 ns has slot 1 of its own.  Bucket
 * 0 holds 0 and 1 ns and bucket 1 no whole number of ns, so slot 1 is
 * free, and with it the slots step by one at every bound (1, 2, 3, 4, 6,
 * 8, 12 ... ns): an octave of ticks [2^e, 2^(e+1)) then holds at most two
 * bounds, as an octave of ns does, whatever the clock's rate.  (Buckets
 * jump from 0 to 2 at 2 ns: an octave of ticks starting between 1.5 and
 * 2 ns, a TSC of 2.0-2.33 or 4-5 GHz, would hold three.)  The bounds are
 * found once for the clock's rate: a table read and two compares on the
 * hot path instead of a 128-bit multiply and the bucket arithmetic.
 * Whoever reads a counters' slots takes slot 1 as bucket 0
 * (cnsmp_hist_of_slot); tests/unit/test_hist.c checks every octave. */
struct cnsmp_tick_octave {
	uint64_t bound[2]; /* last ticks of slot base, base+1 (or ~0: none) */
	uint32_t base;     /* slot of the octave's first tick */
};
extern struct cnsmp_tick_octave cnsmp_hist_octaves[64];
/* Builds the table for a clock whose ns = ticks * mult >> shift; 0 if
 * some octave holds more than two bounds (the clock then falls back to
 * the vDSO clock, whose ticks are ns). */
int cnsmp_hist_build_octaves(uint64_t mult, unsigned shift);
static inline unsigned cnsmp_hist_of_slot(unsigned slot)
{
	return slot == 1 ? 0 : slot;
}

/* ---- clock.c: cycle counter calibrated to nanoseconds ------------------- */

/* Hot path: returns a raw timestamp (TSC where invariant, else ns from
 * the vDSO clock).  cnsmp_clock_ns converts a difference to ns. */
static inline uint64_t cnsmp_clock_now(void);
extern uint64_t cnsmp_clock_mult;   /* ns = ticks * mult >> shift */
extern unsigned cnsmp_clock_shift;
extern int cnsmp_clock_is_tsc;
/* Calibrates once and builds the histogram's tick table for the clock
 * chosen; idempotent. */
void cnsmp_clock_init(void);
static inline uint64_t cnsmp_clock_ns(uint64_t ticks)
{
	return (uint64_t)(((unsigned __int128)ticks * cnsmp_clock_mult) >>
			  cnsmp_clock_shift);
}
uint64_t cnsmp_clock_fallback_now(void);
static inline uint64_t cnsmp_clock_now(void)
{
#if defined(__x86_64__) || defined(__i386__)
	if (likely(cnsmp_clock_is_tsc))
		return __builtin_ia32_rdtsc();
#endif
	return cnsmp_clock_fallback_now();
}
/* CLOCK_MONOTONIC in ns, for deadlines and intervals off the hot path. */
uint64_t cnsmp_clock_mono_ns(void);

/* For the hooks' fast paths: 1 when the clock is the TSC, which
 * cnsmp_clock_tsc() then reads without a call (never elsewhere). */
static inline int cnsmp_clock_fast(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return cnsmp_clock_is_tsc;
#else
	return 0;
#endif
}
static inline uint64_t cnsmp_clock_tsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	return cnsmp_clock_now();
#endif
}

/* The octave of a duration: its highest set bit.  gcc's bsr builtin
 * gives it as a 64-bit index; 63 - clz is an int, sign-extended once
 * more on the exit hook's path. */
static inline size_t cnsmp_clock_octave(uint64_t ticks)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
	return (size_t)__builtin_ia32_bsrdi((long long)(ticks | 1));
#else
	return (size_t)(63 - __builtin_clzll(ticks | 1));
#endif
}
/* The histogram slot of a duration in ticks (hist.c's table above). */
static inline unsigned cnsmp_clock_slot(uint64_t ticks)
{
	const struct cnsmp_tick_octave *o =
		&cnsmp_hist_octaves[cnsmp_clock_octave(ticks)];
	return o->base + (ticks > o->bound[0]) + (ticks > o->bound[1]);
}
/* The bucket of a duration in clock ticks. */
static inline unsigned cnsmp_clock_bucket(uint64_t ticks)
{
	return cnsmp_hist_of_slot(cnsmp_clock_slot(ticks));
}

/* ---- registry.c: address -> function entry, decided once ---------------- */

enum cnsmp_fn_state {
	CNSMP_FN_TRACKED = 1,
	CNSMP_FN_EXCLUDED = 2,  /* not tracked: the hooks return at once */
	CNSMP_FN_DROPPED = 3,   /* over the guardrail: counted in _meta.dropped */
};

/* One function, created on first sight and never freed while the process
 * runs (ids index per-thread counter arrays).  Fields below `state` are
 * written once before the entry is published, then read-only, except
 * `location_sent` which only the flusher touches. */
struct cnsmp_fn {
	uintptr_t addr;          /* the address the hooks see */
	uint32_t id;             /* dense, 0..CNSMP_MAX_TRACKED-1 for tracked */
	_Atomic int state;       /* enum cnsmp_fn_state; reconfigure may change it */
	/* The probes armed on it (probes.c), or NULL: decided with `state`,
	 * so a probed function is never in a cache of decisions and every
	 * call of it reaches the hooks' slow path. */
	_Atomic(struct cnsmp_probe_set *) probes;
	char *name;
	char *department;
	double weight;
	char *file;
	int line;
	int location_sent;       /* flusher only: file/line already delivered */
};

/* Hot path lookup: the entry for `addr`, or NULL on first sight.
 * Lock-free (atomic loads over an open-addressing table). */
struct cnsmp_fn *cnsmp_registry_find(uintptr_t addr);
/* Slow path, once per function: resolve, decide, publish.  Takes a mutex;
 * safe to call from any thread and from the hooks (guarded by the caller
 * against re-entry).  Never returns NULL unless out of memory. */
struct cnsmp_fn *cnsmp_registry_add(uintptr_t addr, const char *name,
				    const char *department, double weight);
/* Tracked entry by id (for the flusher), NULL if unknown. */
struct cnsmp_fn *cnsmp_registry_get(uint32_t id);
uint32_t cnsmp_registry_count(void);      /* tracked ids handed out */
uint64_t cnsmp_registry_dropped(void);    /* calls of dropped functions */
/* Decide every known function again under the current config. */
void cnsmp_registry_redecide(void);
/* Remove entries in [lo, hi) (the module was dlclose'd): later calls at
 * those addresses are first sights again. */
void cnsmp_registry_forget_range(uintptr_t lo, uintptr_t hi);
/* Bumped by cnsmp_registry_invalidate after anything that makes a
 * decision the hooks cached stale: an entry forgotten or decided again,
 * the runtime made inactive.  Read by every fill of a cache (thread.h),
 * to take back a fill that raced with the bump: on a cache line of its
 * own, so that no write to a neighbour takes it from every core. */
extern struct cnsmp_registry_gen {
	_Atomic uint32_t v;
} __attribute__((aligned(64))) cnsmp_registry_gen;
void cnsmp_registry_invalidate(void);
/* In the child after fork: re-create the mutex another thread may have
 * held at fork. */
void cnsmp_registry_atfork_child(void);

/* ---- patch.c: the hook calls of excluded functions patched out ---------- */

/* The hooks' slow paths: `fn` was found excluded, and its hook call
 * returns to `ret`; patch that call into a jump over itself if it is one
 * this runtime knows (x86-64; no-ops elsewhere).  Either may be called
 * with the guard held: they then do nothing. */
void cnsmp_patch_entry(void *fn, void *ret);
void cnsmp_patch_exit(void *fn, void *ret);
/* An excluded function's entry hook reached although the filter already
 * holds it: the call at `ret` is one more site of that function (an
 * inlined copy, another path into a site's argument set-up), patched the
 * same way unless refused.  Called only while cnsmp_patch_live is set:
 * 1 while patching is on and refusals are still remembered, so that the
 * excluded entry's fast path pays one load when patching is off. */
void cnsmp_patch_entry_hit(void *fn, void *ret);
extern _Atomic int cnsmp_patch_live;
/* Give every patched site its call back, and make every thread see it,
 * before the change of decisions that calls it counts as applied
 * (cnsmp_registry_invalidate). */
void cnsmp_patch_restore_all(void);
/* dlclose of the module [lo, hi): its sites get their calls back and are
 * forgotten before it may leave; no site is patched until _end. */
void cnsmp_patch_dl_begin(uintptr_t lo, uintptr_t hi);
void cnsmp_patch_dl_end(void);
/* Write the sites waiting in the queue now (the flusher's tick, each
 * cycle, once a site was queued). */
void cnsmp_patch_flush(void);
/* CODENSM_PATCH's value: 1 on (also unset), 0 off, 2 jumps (patched
 * calls stay short jumps, never NOPs), -1 none of these (then on, with
 * one line).  In config.c. */
int cnsmp_patch_setting(const char *v);
/* "on", "off" (CODENSM_PATCH=off), "refused" (the system does not allow
 * writable code), "unset" (nothing excluded called yet), "unsupported". */
const char *cnsmp_patch_mode(void);

/* ---- thread.c: per-thread counters the flusher reads --------------------- */

/* Per function, per thread.  Written only by the owning thread with
 * relaxed atomic stores; counts only grow, so the flusher turns them into
 * deltas against its own snapshot and never resets them (no lock, no
 * lost update).  `max_ns` is the one exception: the flusher exchanges it
 * with 0, so a max racing that exchange may land in the next interval. */
struct cnsmp_counters {
	_Atomic uint64_t calls;
	_Atomic uint64_t errors;
	/* Raw clock ticks: the hooks add ticks and the flusher converts the
	 * deltas to ns (cnsmp_clock_ns), one multiply per flush, not two per
	 * call.  The histogram is in ns (its bounds are fixed in ns). */
	_Atomic uint64_t total_ticks;
	_Atomic uint64_t self_ticks;
	_Atomic uint64_t max_ticks;
	/* Owner-only, never read by the flusher: the edge of this function's
	 * last caller -> it, the caller named by its counters on the same
	 * thread (one per id, so the pointer is the caller).  A function is
	 * usually called from one place at a time (a loop, a recursion, a
	 * helper of one caller), and then the exit hook bumps the pair
	 * without hashing; NULL: nothing yet. */
	struct cnsmp_edge *last_edge;
	struct cnsmp_counters *last_parent;
	uint32_t id; /* whose counters these are (set with the chunk) */
	/* Sampled timing (CODENSM_SAMPLE; sample.c explains it), next to the
	 * fields above so that an untimed call touches two cache lines.
	 * smode, skip and probe_*: owner-only; where the function stands
	 * (CNSMP_SM_*), the untimed calls left before the next timed one,
	 * and the counters when its probation or its last sample began.
	 * untimed: calls counted without reading the clock (the owner stores
	 * it after calls, with release).  s_timed, s_ticks, s_self: the
	 * samples, the timed calls of a sampled function, whose mean the
	 * flusher gives each untimed call (collect.c); added at the next
	 * sample, inside s_seq (odd while they change: a seqlock, so that the
	 * flusher never takes one sample's ticks without its count).
	 * est_ticks, est_self: the owner's running estimate of one call, for
	 * a caller's child time and a delta with no sample. */
	uint32_t smode, skip;
	_Atomic uint64_t untimed;
	_Atomic uint32_t s_seq;
	_Atomic uint64_t s_timed, s_ticks, s_self;
	_Atomic uint64_t est_ticks, est_self;
	uint64_t probe_calls, probe_ticks, probe_self;
	_Atomic uint32_t hist[CNSMP_HIST_BUCKETS];
} __attribute__((aligned(64))); /* a tracked call's fields on one line */
/* A function's timing on one thread when sampling is on.  A probation
 * (the first CNSMP_SAMPLE_PROBE calls, and again whenever a sampled
 * function's estimate grows past twice the threshold) times every call;
 * its mean decides SAMPLED or EXACT, and EXACT stays.  A function seen
 * calling itself, directly or through others (found again within
 * CNSMP_SAMPLE_CYCLE frames above one of its timed calls), is EXACT at
 * once: its calls' inclusive times span from the innermost call's to the
 * whole recursion's, and a sample that misses the few outermost calls
 * misses most of its time. */
enum { CNSMP_SM_PROBATION = 0, CNSMP_SM_SAMPLED = 1, CNSMP_SM_EXACT = 2 };
#define CNSMP_SAMPLE_PROBE 256
#define CNSMP_SAMPLE_CYCLE 16

/* Shadow stack depth per thread; deeper recursion is still counted (calls
 * and errors) but not timed.  The stack grows in chunks up to it as a
 * thread's calls go deeper (thread.h): 64 bytes a frame, only for the
 * depth a thread reaches. */
#define CNSMP_STACK_DEPTH 16384
/* Distinct caller->callee pairs remembered per thread: the sum of the
 * edge table's segments (thread.h), allocated as a thread sees pairs. */
#define CNSMP_EDGES_PER_THREAD (16 + 64 + 256 + 1024 + 4096)
/* Distinct incident chains remembered per thread. */
#define CNSMP_INCIDENTS_PER_THREAD 64

/* Signal-safe: count an error for every tracked call on this thread's
 * stack and record a "signal" incident (chain = the whole stack). */
void cnsmp_thread_crash_mark(int signo);
/* In the child after fork(): forget the other threads and zero this
 * thread's counters, so nothing is counted twice (lifecycle.c calls it
 * with the other modules' fork handlers). */
void cnsmp_thread_atfork_child(void);
/* At exit(): count the calls still open on the calling thread as ended. */
void cnsmp_thread_end_open_calls(void);
/* codensm_flush(): bump this thread's pending histogram slot (thread.h). */
void cnsmp_thread_drain_self(void);

/* ---- collect.c: per-thread counters -> a batch of deltas ---------------- */

struct cnsmp_fn_delta {
	uint32_t id;
	uint64_t calls, errors;
	uint64_t total_ns, self_ns, max_ns;
	/* Of `calls`, those that read no clock (sampled timing): their share
	 * of total_ns, self_ns and hist is the samples' estimate. */
	uint64_t estimated;
	uint64_t hist[CNSMP_HIST_BUCKETS];
};

struct cnsmp_edge_delta {
	uint32_t caller, callee; /* registry ids */
	uint64_t calls;
};

#define CNSMP_INCIDENT_MAX_DEPTH 16
struct cnsmp_incident {
	uint32_t depth;                        /* frames used, caller first */
	uint32_t chain[CNSMP_INCIDENT_MAX_DEPTH]; /* registry ids */
	char kind[16];                         /* "error", "exception", "signal" */
	int signo;                             /* for kind "signal" */
	uint64_t count;
	double first_seen, last_seen;          /* unix seconds */
};

/* What one flush has to say.  Owned by the flusher; merge-back adds a
 * failed batch into the next one (sums, max of max, union of edges). */
struct cnsmp_batch {
	struct cnsmp_fn_delta *fns;  size_t nfns, capfns;
	struct cnsmp_edge_delta *edges; size_t nedges, capedges;
	struct cnsmp_incident *incidents; size_t nincidents, capincidents;
	uint64_t dropped;            /* calls of functions over the guardrail */
	uint64_t repairs;            /* shadow-stack repairs in the interval */
	double start, end;           /* unix seconds the deltas cover */
};
void cnsmp_batch_init(struct cnsmp_batch *b);
/* Grow the arrays to at least these capacities (so that a later collect or
 * merge needs no allocation).  0 or -1. */
int cnsmp_batch_reserve(struct cnsmp_batch *b, size_t fns, size_t edges,
			size_t incidents);
void cnsmp_batch_release(struct cnsmp_batch *b);
int cnsmp_batch_is_empty(const struct cnsmp_batch *b); /* NULL is empty */
/* Add `src` into `dst`; 0 or -1 on allocation failure (dst unchanged). */
int cnsmp_batch_merge(struct cnsmp_batch *dst, const struct cnsmp_batch *src);
/* Read every thread's counters (live and exited) into `out` as deltas
 * since the previous collect.  Flusher thread only. */
int cnsmp_collect(struct cnsmp_batch *out);
/* The same from a fatal-signal handler: no malloc, no lock, snapshots not
 * advanced; `out` must have been reserved to full capacity beforehand
 * (CNSMP_MAX_TRACKED functions, CNSMP_EDGES_PER_THREAD*threads edges...).
 * What does not fit is left out. */
int cnsmp_collect_signal_safe(struct cnsmp_batch *out);
/* In the child after fork: every thread's snapshots back to zero (the
 * counters are, thread.c), and the parent's shipped totals forgotten. */
void cnsmp_collect_atfork_child(void);

/* ---- schema.c: the payload's items, written once ------------------------ */

/* One function of the inventory: described once, never counted.  `flow`
 * (CODENSM_MODE=full; NULL: none) rides with it, in the body's "flows". */
struct cnsmp_inv_entry {
	char *name, *department, *file;
	int line;
	double weight;
	const char *flow;
};

struct cnsmp_meta {
	const char *service, *host;
	long pid;
	const char *batch_id;  /* unique per request: the server's dedup key */
	const char *build_id;  /* CODENSM_MODE=full: the program's GNU build-id, hex; else NULL */
};

/* Where JSON text goes: a file descriptor, with async-signal-safe calls
 * only (the crash path), or a malloc'd string (the flusher).  Lives on
 * the caller's stack; `err` is set once a write or an allocation failed. */
struct cnsmp_sink {
	int fd;                /* -1: memory */
	int err;
	size_t n;
	char buf[4096];
	char *mem;
	size_t mem_n, mem_cap;
};
void cnsmp_schema_to_fd(struct cnsmp_sink *s, int fd);
void cnsmp_schema_to_mem(struct cnsmp_sink *s);
void cnsmp_schema_put(struct cnsmp_sink *s, const char *text); /* verbatim */
/* A count (capped at INT64_MAX), a real (always with a '.'), ns as
 * milliseconds, a string (quoted, cleaned, cut at a name's length). */
void cnsmp_schema_put_u64(struct cnsmp_sink *s, uint64_t v);
void cnsmp_schema_put_real(struct cnsmp_sink *s, double x);
void cnsmp_schema_put_ms(struct cnsmp_sink *s, uint64_t ns);
void cnsmp_schema_put_str(struct cnsmp_sink *s, const char *str);
/* Flushes; 0, or -1 if anything was lost. */
int cnsmp_schema_close(struct cnsmp_sink *s);
/* Memory mode: the text written (NUL-terminated, caller frees) and its
 * length, or NULL if memory ran out.  The sink is empty again after. */
char *cnsmp_schema_take(struct cnsmp_sink *s, size_t *len);
/* One item of each section, preceded by ',' unless `first`.  The
 * function and the edge read the registry for names: 0 and nothing
 * written when an id is unknown, else 1. */
int cnsmp_schema_fn(struct cnsmp_sink *s, const struct cnsmp_fn_delta *d, int first);
int cnsmp_schema_edge(struct cnsmp_sink *s, const struct cnsmp_edge_delta *e, int first);
void cnsmp_schema_incident(struct cnsmp_sink *s, const struct cnsmp_incident *in, int first);
void cnsmp_schema_inv(struct cnsmp_sink *s, const struct cnsmp_inv_entry *e, int first);
/* The probes section: "\"probes\":[" the n entries (JSON objects, as
 * probes.c made them) "]" (docs/payload.md, "probes"). */
void cnsmp_schema_probes(struct cnsmp_sink *s, const char *const *entries, size_t n);
/* The _meta object.  dropped and repairs are said only in the `first`
 * body of a batch (they must not add up twice); `index` >= 0 is appended
 * to the batch id ("<id>-<index>"). */
void cnsmp_schema_meta(struct cnsmp_sink *s, const struct cnsmp_meta *m,
		       const struct cnsmp_batch *b, int first, long index);

/* ---- payload.c: batch -> JSON bodies within the contract's limits ------- */

/* Build one or more request bodies (malloc'd NUL-terminated strings, each
 * <= max_body bytes and <= max_funcs functions) from `b`.  Returns the
 * number of bodies in *bodies (array malloc'd), or -1.  Marks nothing as
 * sent: the caller sets location_sent once a body is delivered. */
int cnsmp_payload_build(const struct cnsmp_batch *b,
			const struct cnsmp_inv_entry *inv, size_t ninv,
			const struct cnsmp_meta *m, size_t max_body,
			size_t max_funcs, char ***bodies);
/* Write `b` as one body to `fd` with async-signal-safe calls only (for the
 * crash handler): no jansson, no malloc, no stdio.  0 or -1. */
int cnsmp_payload_write_fd(int fd, const struct cnsmp_batch *b,
			   const struct cnsmp_meta *m);
/* Which slice of the batch and of `inv` body i holds: functions
 * [fn_lo, fn_hi) and so on, so the flusher can merge back or mark as sent
 * exactly what one body carried. */
struct cnsmp_payload_part {
	size_t fn_lo, fn_hi, edge_lo, edge_hi, inc_lo, inc_hi, inv_lo, inv_hi;
};
/* cnsmp_payload_build, also returning one part per body (malloc'd). */
int cnsmp_payload_build_parts(const struct cnsmp_batch *b,
			      const struct cnsmp_inv_entry *inv, size_t ninv,
			      const struct cnsmp_meta *m, size_t max_body,
			      size_t max_funcs, char ***bodies,
			      struct cnsmp_payload_part **parts);
/* Re-split an existing body (spooled by a crash, or answered 413) into
 * bodies within the limits.  Deterministic: the same input gives the same
 * bodies with batch ids "<old id>-<i>", so a partial resend is deduped.
 * Returns the number of bodies, or -1 (unparsable). */
int cnsmp_payload_split(const char *body, size_t max_body, size_t max_funcs,
			char ***bodies);

/* ---- transport.c: one POST with the contract's status handling ---------- */

enum cnsmp_send_result {
	CNSMP_SENT = 0,         /* 2xx: the server committed it */
	CNSMP_REJECTED,         /* 4xx other than below: retrying will not help */
	CNSMP_TOO_LARGE,        /* 413: split and retry */
	CNSMP_QUOTA,            /* 429: merge back, double the interval */
	CNSMP_FAILED_CLEAN,     /* nothing reached the server (connect, DNS, 5xx) */
	CNSMP_FAILED_UNSURE,    /* sent but no answer: may be committed */
};
enum cnsmp_send_result cnsmp_transport_post(const struct cnsmp_config *cfg,
					    const char *body, long timeout_ms);
/* The same, tried again after a transient failure until CLOCK_MONOTONIC
 * `deadline`; *maybe_sent: some try may have been committed. */
enum cnsmp_send_result cnsmp_transport_post_until(const struct cnsmp_config *cfg,
						  const char *body, uint64_t deadline,
						  int *maybe_sent);
/* HTTP status of the calling thread's last post (0: no answer). */
long cnsmp_transport_last_status(void);
/* The text of the calling thread's last post's answer if it was a 2xx
 * with a body (cut at 64 kB), else NULL; valid until its next post. */
const char *cnsmp_transport_last_answer(void);
/* Abort any transfer still running at CLOCK_MONOTONIC `ns` (0: none),
 * so exit stays bounded even with a request in flight. */
void cnsmp_transport_set_deadline(uint64_t ns);
/* Free the calling thread's reused curl handle. */
void cnsmp_transport_release(void);
/* At start-up: keep a program's OpenSSL from shutting down before the
 * final send (transport.c says how). */
void cnsmp_transport_prepare(void);

/* ---- spool.c: unsent bodies to disk and back, crash-safe ---------------- */

/* Write a body to the spool directory (tmp file + rename). 0 or -1. */
int cnsmp_spool_write(const char *dir, const char *body);
/* Send every spooled body (oldest first) via `send`, deleting each one that
 * the server took or rejected for good.  Returns the number sent. */
int cnsmp_spool_drain(const char *dir,
		      enum cnsmp_send_result (*send)(const char *body, void *arg),
		      void *arg);
/* The two halves of cnsmp_spool_write, async-signal-safe (crash path):
 * open a new tmp file (creating `dir`), names into tmp/final (each
 * CNSMP_SPOOL_PATH bytes); commit closes and renames it.  fd or -1; 0/-1. */
#define CNSMP_SPOOL_PATH 4096
int cnsmp_spool_open(const char *dir, char *tmp, char *final);
int cnsmp_spool_commit(int fd, const char *tmp, const char *final);
int cnsmp_spool_pending(const char *dir); /* 1 if a body waits in dir */
/* mkdir -p with mode 0700, async-signal-safe; paths under CNSMP_SPOOL_PATH. */
int cnsmp_spool_mkdir_p(const char *dir);
/* A regular file of at most max bytes, read whole and NUL-terminated, its
 * size in *len; NULL if it cannot be read whole.  Caller frees. */
char *cnsmp_spool_read_file(const char *path, size_t max, size_t *len);

/* ---- inventory.c: the user's functions, each described once ------------- */

/* A record is queued, then rides in a body, then is delivered. */
enum { CNSMP_INV_QUEUED = 0, CNSMP_INV_RIDING = 1, CNSMP_INV_DONE = 2 };
/* Flusher thread: take the modules loaded since the last update (all of
 * them the first time) and the records staged by cnsmp_inventory_now. */
void cnsmp_inventory_update(void);
/* Any thread: inventory the modules not inventoried yet, now, into the
 * staged list: for the dlclose interposer, before a library leaves (a
 * library opened and closed between two flushes would otherwise never be
 * listed).  Does nothing while the runtime does not send. */
void cnsmp_inventory_now(void);
/* The records, by index (flusher thread): stable while the process runs. */
size_t cnsmp_inventory_count(void);
const struct cnsmp_inv_entry *cnsmp_inventory_entry(size_t i);
int cnsmp_inventory_state(size_t i);
void cnsmp_inventory_set_state(size_t i, int state);
/* In the child after fork: records riding in the parent's bodies are
 * the parent's to deliver. */
void cnsmp_inventory_atfork_child(void);
/* CODENSM_MODE=full, flusher thread: every record not looked up yet gets
 * its flow from the analysis of its module (flows.c; `dir`: the flows
 * folder, NULL for the modules' own sections), as it ships. */
void cnsmp_inventory_attach_flows(const char *dir);

/* ---- view.c: what the crash path may read of the flusher ----------------- */

/* An immutable snapshot of everything collected but not yet delivered,
 * published with one atomic pointer store (view.c says how). */
struct cnsmp_view {
	const struct cnsmp_batch *pending; /* in no body yet; may be NULL */
	char *const *bodies;               /* built, sent or to resend verbatim */
	size_t nbodies;
	const struct cnsmp_batch *fresh;   /* just collected, in neither; or NULL */
};
extern _Atomic(struct cnsmp_view *) cnsmp_view_published;
/* 1 while the flusher collects: counters may be past their snapshots but
 * not yet in the view (the next view holds them in `fresh`). */
extern _Atomic int cnsmp_view_phase;
/* Set once by whoever spools the view at a crash (or a stuck exit): the
 * flusher then frees nothing it published and starts no new request. */
extern _Atomic int cnsmp_view_frozen;
/* Per-process batch id base ("<16 hex>-<pid>") and host name. */
extern char cnsmp_view_batch_base[48];
extern char cnsmp_view_hostname[256];
void cnsmp_view_identify(void);          /* once, before the first body */
/* Publishes (pending, body(0..nbodies-1), fresh), then frees the garbage
 * no view can show any more. */
void cnsmp_view_publish(const struct cnsmp_batch *pending, size_t nbodies,
			const char *(*body)(size_t i, void *arg), void *arg,
			const struct cnsmp_batch *fresh);
/* Memory a published view may still show: freed by the next publish. */
void cnsmp_view_trash(void *p);
void cnsmp_view_trash_batch(struct cnsmp_batch *b); /* arrays and struct */
/* In the child after fork: no view, no garbage, unfrozen, a new base. */
void cnsmp_view_atfork_child(void);

/* ---- flusher.c / lifecycle.c ------------------------------------------- */

extern struct cnsmp_config cnsmp_cfg;
extern _Atomic int cnsmp_active;  /* hooks do nothing while 0 */
void cnsmp_lifecycle_ensure_init(void); /* idempotent; safe from the hooks */

int cnsmp_flusher_start(void);      /* idempotent; 0 or -1 */
/* Final cycle bounded by `seconds`, spool what is left, stop the thread. */
void cnsmp_flusher_stop(double seconds);
int cnsmp_flusher_flush(double seconds); /* 0: everything delivered */
/* Run at the start of each flusher cycle when set (patch.c sets it). */
extern void (*_Atomic cnsmp_flusher_tick)(void);
void cnsmp_flusher_atfork_prepare(void);
void cnsmp_flusher_atfork_parent(void);
void cnsmp_flusher_atfork_child(void);

/* ---- crash.c: fatal signals -> spool -------------------------------------- */

void cnsmp_crash_install(void);     /* idempotent */
/* Spool the flusher's view plus the live counters, async-signal-safe.
 * Used by the signal handler and by an exit whose flusher is stuck.
 * Returns the number of files written, -1 if another dump ran first. */
int cnsmp_crash_dump(void);

/* ---- flows.c: the analysis of `codensm analyze`, for CODENSM_MODE=full -- */

/* One module's flows: each function's entry as compact JSON, rebuilt from
 * checked fields only (docs/flows.md). */
struct cnsmp_flows;
/* DIR/BUILD_ID.json, else the .codensm.flows section of the ELF file at
 * elf_path; NULL when neither holds an analysis.  *dropped (if not NULL)
 * counts entries left out because a field failed its check. */
struct cnsmp_flows *cnsmp_flows_load(const char *dir, const char *build_id,
				     const char *elf_path, size_t *dropped);
struct cnsmp_flows *cnsmp_flows_parse(const char *buf, size_t len, size_t *dropped);
/* The entry of function `name`, or NULL; owned by f. */
const char *cnsmp_flows_find(const struct cnsmp_flows *f, const char *name);
size_t cnsmp_flows_count(const struct cnsmp_flows *f);
void cnsmp_flows_free(struct cnsmp_flows *f); /* NULL is a no-op */
/* Beside the symbol cache ($XDG_CACHE_HOME/codensm/flows); malloc'd or NULL. */
char *cnsmp_flows_default_dir(char *(*getenv_fn)(const char *));
/* The GNU build-id of the ELF file at path, as hex: 0, or -1 if none. */
int cnsmp_flows_build_id(const char *elf_path, char *hex, size_t len);
/* The entry of function `name` of the module at module_path (its file in
 * dir by build-id, else its section), read once per module; NULL if none.
 * Valid until cnsmp_flows_reset.  Thread-safe; never on the hot path. */
const char *cnsmp_flows_lookup(const char *dir, const char *module_path, const char *name);
void cnsmp_flows_reset(void);
/* `entry` (one of the above) as it ships under `cfg`: calls_out filtered
 * to the tracked functions.  malloc'd; NULL if it does not parse or
 * memory ran out. */
char *cnsmp_flows_shipped(const char *entry, const struct cnsmp_config *cfg);

/* ---- probes.c, probespec.c, probereport.c: probes (probes.h) ----------- */

/* The probes armed on one function: made by cnsmp_probes_for when the
 * registry decides it, never freed (a hook may hold it). */
struct cnsmp_probe;
struct cnsmp_probe_set {
	struct cnsmp_probe_set *next; /* every set made, newest first */
	size_t n;
	struct cnsmp_probe *p[];
};
/* Number of probes armed in the process: the exit of an excluded
 * function reads it before asking probes.c (hooks.c, exit_slow). */
extern _Atomic int cnsmp_probes_live;
/* The registry deciding function `name` (its lock held): the probes
 * whose target matches it, or NULL.  Lock-free on probes' side. */
struct cnsmp_probe_set *cnsmp_probes_for(const char *name);
/* Read CODENSM_PROBES again if the file changed, disarm expired probes.
 * Start-up and the flusher thread. */
void cnsmp_probes_poll(void);
void cnsmp_probes_atfork_child(void);
/* codensm_error() on this thread (t: its state, or NULL): marks the
 * innermost probed call in progress if the error is its own (no tracked
 * call began inside it), so that its end says error. */
struct cnsmp_thread;
void cnsmp_probes_error(struct cnsmp_thread *t);
/* A fatal signal's handler, on the crashing thread: its probed calls in
 * progress end (event `end`, error set).  Async-signal-safe: atomics and
 * the clock only; user instruments are not called. */
void cnsmp_probes_crash_end(void);
/* The answer to an ingest POST (flusher): a "probes" object in it is the
 * project's specs from the server, replacing the ones it gave before; an
 * answer without one changes nothing. */
void cnsmp_probes_answer(const char *text);
/* Has a server ever answered with probes?  Then a flush with nothing to
 * send still posts, so that the program learns new probes. */
int cnsmp_probes_server_asks(void);

/* probereport.c: the payload's probes section ("\"probes\":[...]",
 * malloc'd) with this interval's deltas, or NULL when no probe is known.
 * Flusher thread.  With `sent` non-NULL, *sent gets what the section
 * took (hits, log records: NULL if nothing), to be handed back with
 * cnsmp_probereport_unsent if the body carrying it is not delivered
 * (then the next section carries them again), else freed with
 * cnsmp_probereport_sent_free. */
struct cnsmp_probe_sent;
char *cnsmp_probereport_section(struct cnsmp_probe_sent **sent);
void cnsmp_probereport_unsent(struct cnsmp_probe_sent *sent);
void cnsmp_probereport_sent_free(struct cnsmp_probe_sent *sent); /* NULL: no-op */
/* A fatal signal's handler: the probes section as it stands (deltas not
 * reported yet, results over each probe's life) written to s; 0 if no
 * probe is known.  Async-signal-safe: no lock, no malloc. */
int cnsmp_probereport_crash(struct cnsmp_sink *s);
/* The same, without a key, as the last stderr line of the local
 * reporter (if it runs).  Async-signal-safe. */
void cnsmp_probereport_crash_stderr(void);
/* Without a key (nothing sends): a thread reads the file and writes the
 * probes section to stderr at each flush interval; stop writes the last
 * one (at exit); in a fork child the thread is started again. */
void cnsmp_probereport_local_start(void);
void cnsmp_probereport_local_stop(void);
void cnsmp_probereport_atfork_child(void);
/* Tests: the unix time probes see (0: the real clock). */
void cnsmp_probes_set_clock(double unix_s);
/* Tests: one spec parsed and validated as the runtime would; its status
 * ("INSTALLED" for a valid spec, else "ERROR") and message in out. */
int cnsmp_probes_check(const char *id, const char *spec_json, char *status,
		       size_t slen, char *msg, size_t mlen);

#endif /* CODENSM_INTERNAL_H */
