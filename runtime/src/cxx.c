/* cxx.c: C++ exception interposers: __cxa_throw, __cxa_rethrow and
 * __cxa_begin_catch note the throw on this thread, then call libstdc++'s.
 *
 * Why: a call that an exception leaves has failed, but no hook says so.
 * The two compilers differ, and thread.c handles both:
 *  - GCC runs a function's exit hook as a cleanup while the exception
 *    unwinds through it.  Between the throw and __cxa_begin_catch the
 *    thread is "unwinding"; an exit in that window of a frame entered before
 *    the throw (its epoch is older) is an exception error.  Functions called
 *    by destructors during unwinding are entered after the throw, so they
 *    stay normal calls.
 *  - clang calls no exit hook while unwinding: the frames stay on the
 *    shadow stack until a later exit finds them above its own frame and
 *    pops them (a repair); a popped frame entered before the last throw
 *    counts as an exception error.
 * Either way the "exception" incident is recorded once per throw, with the
 * chain of tracked frames at the throw point (thrower last).
 *
 * The real functions are resolved once with dlsym(RTLD_NEXT): at the first
 * activation (cnsmp_interpose_init), or at the first throw if that comes
 * first.  That reference from hooks.c also makes a static link pull this
 * file in, so its definitions interpose libstdc++'s from the executable.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include "thread.h"

typedef void (*throw_fn)(void *, void *, void (*)(void *));
typedef void (*rethrow_fn)(void);
typedef void *(*catch_fn)(void *);

static _Atomic(throw_fn) real_throw;
static _Atomic(rethrow_fn) real_rethrow;
static _Atomic(catch_fn) real_catch;

static CNSMP_NOINST void *next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static CNSMP_NOINST void resolve(void)
{
	/* Racing resolvers store the same values. */
	atomic_store(&real_throw, (throw_fn)next("__cxa_throw"));
	atomic_store(&real_rethrow, (rethrow_fn)next("__cxa_rethrow"));
	atomic_store(&real_catch, (catch_fn)next("__cxa_begin_catch"));
}

CNSMP_NOINST void cnsmp_interpose_init(void)
{
	resolve();
	cnsmp_dl_init();
}

CNSMP_API __attribute__((noreturn)) void
__cxa_throw(void *obj, void *tinfo, void (*dest)(void *))
{
	cnsmp_thread_on_throw();
	throw_fn f = atomic_load(&real_throw);
	if (unlikely(!f)) {
		resolve();
		f = atomic_load(&real_throw);
	}
	if (!f)
		abort(); /* no C++ runtime, yet something throws */
	f(obj, tinfo, dest);
	__builtin_unreachable();
}

CNSMP_API __attribute__((noreturn)) void __cxa_rethrow(void)
{
	cnsmp_thread_on_throw();
	rethrow_fn f = atomic_load(&real_rethrow);
	if (unlikely(!f)) {
		resolve();
		f = atomic_load(&real_rethrow);
	}
	if (!f)
		abort();
	f();
	__builtin_unreachable();
}

CNSMP_API void *__cxa_begin_catch(void *exc)
{
	cnsmp_thread_on_catch();
	catch_fn f = atomic_load(&real_catch);
	if (unlikely(!f)) {
		resolve();
		f = atomic_load(&real_catch);
	}
	if (!f)
		abort();
	return f(exc);
}
