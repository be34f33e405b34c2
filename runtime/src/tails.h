/* tails.h: each function's exits that the compiler tail-jumped, as
 * patch.c accepted them once for a build, kept on disk between its runs
 * (tails.c says why and how). */
#ifndef CNSMP_TAILS_H
#define CNSMP_TAILS_H

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
int cnsmp_tails_get(uintptr_t fn, struct cnsmp_jump *out, size_t max);

/* Remember fn's n tail exits (`at` and `mem` of each; n may be 0), found
 * by decoding its code, for this process and the next runs. */
void cnsmp_tails_put(uintptr_t fn, const struct cnsmp_jump *j, size_t n);

/* Write every module's file that gained entries since it was read or
 * written (the flusher's cycle, exit, a module leaving). */
void cnsmp_tails_save(void);

/* The module at [lo, hi) may leave: write its file, then forget it
 * (another module may come at the same addresses). */
void cnsmp_tails_forget(uintptr_t lo, uintptr_t hi);

#endif
