/* dl.c: the dlclose interposer: when a library really leaves the process,
 * its functions are forgotten so that an address reused by the next library
 * is named afresh, never with a stale name.
 *
 * The module's address range is taken before closing (the handle is invalid
 * afterwards) from its link map and program headers; after a successful
 * close the range is forgotten only if no module is mapped at that base any
 * more (dlclose of a library still referenced elsewhere keeps it).
 */
#include <dlfcn.h>
#include <link.h>
#include <string.h>
#include <errno.h>
#include "thread.h"

typedef int (*dlclose_fn)(void *);
static _Atomic(dlclose_fn) real_dlclose;

CNSMP_NOINST void cnsmp_dl_init(void)
{
	atomic_store(&real_dlclose, (dlclose_fn)dlsym(RTLD_NEXT, "dlclose"));
}

struct range {
	uintptr_t base;       /* l_addr of the module we look for */
	const char *name;     /* its l_name */
	uintptr_t lo, hi;     /* out: its PT_LOAD segments */
	int found;
};

static CNSMP_NOINST int find_module(struct dl_phdr_info *info, size_t size,
				    void *arg)
{
	struct range *r = arg;
	if (info->dlpi_addr != r->base ||
	    strcmp(info->dlpi_name ? info->dlpi_name : "", r->name) != 0)
		return 0;
	r->found = 1;
	r->lo = UINTPTR_MAX;
	r->hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (lo < r->lo)
			r->lo = lo;
		if (lo + ph->p_memsz > r->hi)
			r->hi = lo + ph->p_memsz;
	}
	return 1;
}

CNSMP_API int dlclose(void *handle)
{
	dlclose_fn real = atomic_load(&real_dlclose);
	if (unlikely(!real)) {
		cnsmp_dl_init();
		real = atomic_load(&real_dlclose);
	}
	void *h = handle; /* dlfcn.h says nonnull; callers do pass NULL */
	__asm__("" : "+r"(h));
	struct link_map *lm = NULL;
	struct range r = {0};
	char name[4096] = "";
	if (h && dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm) {
		r.base = lm->l_addr;
		strncpy(name, lm->l_name ? lm->l_name : "", sizeof name - 1);
		r.name = name;
		dl_iterate_phdr(find_module, &r);
	}
	/* A library opened and closed between two flushes must still be
	 * listed in the inventory: take it now, while it is mapped. */
	if (r.found)
		cnsmp_inventory_now();
	if (r.found && r.lo < r.hi)
		cnsmp_patch_dl_begin(r.lo, r.hi);
	int rc = real(handle);
	if (r.found && r.lo < r.hi)
		cnsmp_patch_dl_end();
	if (rc == 0 && r.found && r.lo < r.hi) {
		int saved = errno;
		struct range again = {.base = r.base, .name = name};
		dl_iterate_phdr(find_module, &again);
		if (!again.found) {
			cnsmp_registry_forget_range(r.lo, r.hi);
			cnsmp_symbols_refresh();
		}
		errno = saved;
	}
	return rc;
}
