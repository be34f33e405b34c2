/* hooks.h: what the unit tests of the hooks and the thread blocks share:
 * stand-ins for the runtime's lifecycle, the hooks, the id of a fake
 * function address and a count of the thread blocks. */
#ifndef CODENSM_TEST_HOOKS_H
#define CODENSM_TEST_HOOKS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "thread.h"

/* The runtime's lifecycle is not under test: weak stand-ins, replaced by
 * the real ones if the archive ever links them in. */
__attribute__((weak)) struct cnsmp_config cnsmp_cfg;
__attribute__((weak)) _Atomic int cnsmp_active;
__attribute__((weak)) void cnsmp_lifecycle_ensure_init(void) {}

void __cyg_profile_func_enter(void *fn, void *site);
void __cyg_profile_func_exit(void *fn, void *site);

static inline void enter(void *fn) { __cyg_profile_func_enter(fn, NULL); }
static inline void leave(void *fn) { __cyg_profile_func_exit(fn, NULL); }

/* The id the registry gave a fake function address on first sight. */
static inline uint32_t id_of(void *fn)
{
	return cnsmp_registry_find((uintptr_t)fn)->id;
}

/* The thread blocks on the list, live or waiting to be handed on. */
static inline size_t blocks(void)
{
	size_t n = 0;
	for (struct cnsmp_thread *t = atomic_load(&cnsmp_threads); t;
	     t = atomic_load(&t->next))
		n++;
	return n;
}

#endif
