/* mini_agg.c: the smallest exact per-call aggregator, the yardstick for the
 * runtime's hot path: a per-thread open-addressing table keyed by function
 * address (calls, total and self cycles), a shadow stack, two rdtsc per
 * call.  No histogram, no edges, no flusher: what it costs is the limit of
 * exact timing.  Built as a shared library with initial-exec TLS, the same
 * linkage a production runtime can have.  Prints one line per thread at
 * exit so the work cannot be optimised away. */
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>
#define NOINST __attribute__((no_instrument_function))
#define API __attribute__((no_instrument_function, visibility("default")))
#define TLS static __thread __attribute__((tls_model("initial-exec")))
enum { SLOTS = 4096, DEPTH = 512 };
struct slot { void *fn; uint64_t calls, total, self; };
struct frame { struct slot *s; uint64_t t0, child; };
TLS struct slot table[SLOTS];
TLS struct frame stack[DEPTH];
TLS unsigned depth, nfns;
static pthread_key_t key;

NOINST static struct slot *find(void *fn)
{
	unsigned i = (unsigned)((uintptr_t)fn >> 4) * 2654435761u % SLOTS;
	while (table[i].fn != fn && table[i].fn)
		i = (i + 1) % SLOTS;
	if (!table[i].fn && nfns < SLOTS - 1) {
		if (!nfns++) /* first function on this thread: report at its exit */
			pthread_setspecific(key, table);
		table[i].fn = fn;
	}
	return &table[i];
}

API void __cyg_profile_func_enter(void *fn, void *site)
{
	if (depth < DEPTH)
		stack[depth] = (struct frame){ find(fn), __builtin_ia32_rdtsc(), 0 };
	depth++;
}

API void __cyg_profile_func_exit(void *fn, void *site)
{
	if (--depth >= DEPTH)
		return;
	struct frame *f = &stack[depth];
	uint64_t d = __builtin_ia32_rdtsc() - f->t0;
	f->s->calls++, f->s->total += d, f->s->self += d - f->child;
	if (depth)
		stack[depth - 1].child += d;
}

NOINST static void report(void *arg)
{
	uint64_t calls = 0;
	for (unsigned i = 0; i < SLOTS; i++)
		calls += table[i].calls;
	fprintf(stderr, "mini_agg: %u functions, %llu calls\n", nfns,
		(unsigned long long)calls);
}
NOINST __attribute__((constructor)) static void init(void)
{
	pthread_key_create(&key, report);
}
NOINST __attribute__((destructor)) static void fini(void)
{
	report(NULL);
}
