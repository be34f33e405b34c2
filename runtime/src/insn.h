/* insn.h: the x86-64 jumps in a range of code, found with Zydis (insn.c).
 *
 * Call-site patching (patch.c) needs instruction boundaries to find the
 * tail jumps to the exit hook inside a function: linear decoding from the
 * function's entry over its own code (compilers put no data there), with a
 * real decoder rather than byte patterns, which would match inside other
 * instructions.  Zydis decodes without allocating, locking or a context,
 * so it can run on any thread, in a signal handler too.  The runtime is
 * not linked against it: insn.c dlopen()s libZydis on first need (as dw.c
 * does libdw), and without it tail-jumped exits keep calling the hook. */
#ifndef CNSMP_INSN_H
#define CNSMP_INSN_H

#include <stddef.h>
#include <stdint.h>

/* Zydis 4's soname: an ABI of another major version is not this one.
 * codensm doctor looks for it too. */
#define CNSMP_ZYDIS_SONAME "libZydis.so.4.0"

/* One unconditional jump leaving through a 32-bit displacement. */
struct cnsmp_jump {
	uintptr_t at;   /* its first byte */
	uintptr_t dest; /* jmp rel32 (e9): its target; jmp *disp(%rip) (ff 25): the slot read */
	uint8_t len;    /* 5 or 6: the whole instruction */
	uint8_t mem;    /* 1: ff 25 (dest is a slot), 0: e9 (dest is code) */
};

/* Decode the `n` bytes at `code`, a copy of the code at address `addr`
 * (so that the caller can put back bytes it changed), instruction by
 * instruction from the first, which must be an instruction boundary (a
 * function's entry), and store each `jmp rel32` and `jmp *disp32(%rip)`
 * with no prefix for which keep(jump, arg) is true (every one if `keep`
 * is NULL) in out[], at most `max` of them (addresses as at `addr`).
 * Decoding stops at the first bytes that are no instruction.  Returns how
 * many were stored, or -1 if the decoder cannot be loaded. */
int cnsmp_insn_jumps(const uint8_t *code, size_t n, uintptr_t addr,
		     struct cnsmp_jump *out, size_t max,
		     int (*keep)(const struct cnsmp_jump *, void *), void *arg);

/* A call that may be a hook call, and where its argument set-up starts. */
struct cnsmp_call {
	uintptr_t ret;  /* the address after the call (its return address) */
	uintptr_t from; /* the first of the instructions that run straight
			 * into it and only load the hook's argument registers,
			 * or 0 if none does */
	uintptr_t arg;  /* the load of %rsi (the hook's second argument)
			 * that reaches the call: an instruction of the set-up,
			 * or one before it with nothing in between that reads
			 * or writes %rsi or can branch; or 0 */
	uint8_t arg_len; /* its length */
	uint8_t jump;   /* 1: not a call but a jump (a tail call), from 0 */
};

/* Decode the `n` bytes at `code`, a copy of a function's code at `addr`,
 * from its entry, and store each `call rel32` and `call *disp32(%rip)`
 * (with an addr32 prefix or none), and each `jmp rel32` and `jmp
 * *disp32(%rip)` (`jump`: the forms of a tail call, such as an exit the
 * compiler tail-jumped to the hook), in out[], at most `max`.  `from`: the
 * instructions right before the call that only load the argument
 * registers, `mov`/`lea` into %rdi or %rsi (or their 32-bit halves), `xor`
 * of one with itself; `arg`: the load of %rsi (of those forms) whose
 * value reaches the call on a straight line (nothing after it reads or
 * writes %rsi or branches), which can become a NOP where the hook never
 * reads its second argument: %rsi is dead after the call either way.  A call's argument registers and the flags are dead
 * after it (the ABI lets the callee clobber them), so a jump from `from`
 * over the call changes nothing the program can see.  Decoding stops at
 * the first bytes that are no instruction.  Returns how many were stored,
 * or -1 if the decoder cannot be loaded. */
int cnsmp_insn_calls(const uint8_t *code, size_t n, uintptr_t addr,
		     struct cnsmp_call *out, size_t max);

#endif
