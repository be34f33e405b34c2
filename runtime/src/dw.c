/* dw.c: loads libdw (and through it libelf) for dwarf.c: dw.h says why
 * the runtime does not link them. */
#include <dlfcn.h>
#include <pthread.h>

#include "dw.h"
#include "internal.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct cnsmp_dw table;
static const struct cnsmp_dw *loaded;

static void load(void)
{
	/* RTLD_LOCAL: the host program may use another libdw of its own;
	 * RTLD_NODELETE: the table must stay valid whatever dlclose sees. */
	void *h = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!h) {
		const char *e = dlerror();
		cnsmp_log(CNSMP_LOG_INFO, "cannot load libdw.so.1 (%s): naming functions by "
			  "module and offset; install elfutils' libdw (Debian: libdw1) for names, files and lines",
			  e ? e : "unknown error");
		return;
	}
	const char *missing = NULL;
	/* POSIX's way to store dlsym's answer in a function pointer */
#define CNSMP_DW_LOAD(f) \
	if (!missing && !(*(void **)&table.f = dlsym(h, #f))) \
		missing = #f;
	CNSMP_DW_FUNCS(CNSMP_DW_LOAD)
#undef CNSMP_DW_LOAD
	if (missing) {
		cnsmp_log(CNSMP_LOG_INFO, "cannot use libdw.so.1: it has no %s; "
			  "naming functions by module and offset", missing);
		return;
	}
	loaded = &table;
}

CNSMP_NOINST const struct cnsmp_dw *cnsmp_dw(void)
{
	pthread_once(&once, load);
	return loaded;
}
