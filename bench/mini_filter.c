/* mini_filter.c: the smallest hook that decides on every call whether a
 * function is excluded, the yardstick for the runtime's excluded calls
 * (as mini_agg.c is for its tracked ones).  The entry hook finds the
 * address in a process-wide open-addressing table of functions already
 * decided (every function is excluded here) and returns; the exit hook
 * tests a thread-local count of open calls, which is never raised, as the
 * runtime's exit tests its thread block.  A first sight claims a slot with
 * a compare-and-swap.  Nothing is counted or timed: what it costs over the
 * empty hooks is what any hook pays to ask, per call, "is this excluded?". */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#define NOINST __attribute__((no_instrument_function))
#define API __attribute__((no_instrument_function, visibility("default")))
enum { SLOTS = 1 << 14 };
static void *_Atomic table[SLOTS];
static _Atomic unsigned nfns;
static __thread __attribute__((tls_model("initial-exec"))) unsigned open_calls;

NOINST __attribute__((noinline)) static void decide(void *fn, unsigned i)
{
	for (unsigned n = 0; n < SLOTS; n++, i = (i + 1) % SLOTS) {
		void *seen = NULL;
		if (table[i] == fn)
			return;
		if (atomic_compare_exchange_strong(&table[i], &seen, fn)) {
			nfns++;
			return;
		}
		if (seen == fn)
			return;
	}
}

API void __cyg_profile_func_enter(void *fn, void *site)
{
	unsigned i = (unsigned)(((uintptr_t)fn >> 2) * 0x9e3779b97f4a7c15ull >> 50);
	if (__builtin_expect(table[i] == fn, 1))
		return; /* excluded */
	decide(fn, i);
}

API void __cyg_profile_func_exit(void *fn, void *site)
{
	if (__builtin_expect(open_calls != 0, 0))
		open_calls--; /* never: nothing is opened */
}

NOINST __attribute__((destructor)) static void fini(void)
{
	fprintf(stderr, "mini_filter: %u functions\n", nfns);
}
