/* decoded.h: what decoding each function found for call-site patching, as
 * patch.c accepted it once for a build, kept on disk between its runs
 * (decoded.c says why and how): the exits the compiler tail-jumped, and
 * the loads of the hooks' second argument before the hook calls. */
#ifndef CNSMP_DECODED_H
#define CNSMP_DECODED_H

#include <stddef.h>
#include <stdint.h>

#include "insn.h"

/* At most this many tail exits are kept per function (patch.c examines
 * no more). */
#define CNSMP_TAILS_MAX 16

/* The tail exits of the function at `fn` known from an earlier run of
 * this build (or this process): how many were put into out[] (at most
 * `max`; each with `at` and `mem` set, `dest` and `len` left for the
 * caller to read from the code), 0 for a function found to have none,
 * or -1 if fn was never examined, its module has no build-id, or the
 * symbol cache is off. */
int cnsmp_decoded_exits(uintptr_t fn, struct cnsmp_jump *out, size_t max);

/* Remember fn's n tail exits (`at` and `mem` of each; n may be 0), found
 * by decoding its code, for this process and the next runs. */
void cnsmp_decoded_put_exits(uintptr_t fn, const struct cnsmp_jump *j, size_t n);

/* A call (or jump) of a function and the load of its second argument
 * (insn.h's `arg`): where it is and what the bytes from it to the call's
 * end were when decoded. */
struct cnsmp_arg {
	uint32_t ret;  /* the call's end (its return address), from the function's entry */
	uint8_t back;  /* the load starts this many bytes before it (0: none) */
	uint8_t len;   /* the load's length (0: none) */
	uint32_t sum;  /* cnsmp_hash of the bytes [ret - back, ret), low half */
};

/* At most this many calls are kept per function. */
#define CNSMP_ARGS_MAX 4096

/* The call returning to `ret` in the function at `fn`, with its load:
 * 1 (in *out), 0 if fn was decoded and that call is not among its calls,
 * -1 if fn was never decoded, -2 if nothing can be kept for fn's module
 * (no build-id, symbol cache off): patch.c then leaves the loads alone. */
int cnsmp_decoded_call(uintptr_t fn, uintptr_t ret, struct cnsmp_arg *out);

/* Remember fn's n calls (n may be 0), found by decoding its code. */
void cnsmp_decoded_put_calls(uintptr_t fn, const struct cnsmp_arg *a, size_t n);

/* Write every module's file that gained entries since it was read or
 * written (the flusher's cycle, exit, a module leaving). */
void cnsmp_decoded_save(void);

/* The module at [lo, hi) may leave: write its file, then forget it
 * (another module may come at the same addresses). */
void cnsmp_decoded_forget(uintptr_t lo, uintptr_t hi);

#endif
