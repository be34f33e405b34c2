/* patch.c: call-site patching: the hook calls of excluded functions are
 * turned into short jumps over themselves in the running code, and back
 * into calls whenever decisions change, so that an excluded call costs
 * nothing (x86-64 Linux; elsewhere every call goes through the hooks).
 *
 * A patched call site is one more cache of the registry's decision,
 * emptied the same way as the excluded filter and the threads' caches:
 * cnsmp_registry_invalidate restores every site (cnsmp_patch_restore_all)
 * after the decisions changed and before the change counts as applied.
 *
 * How a site is patched.  The hooks pass their return address `ret`; the
 * call that made it ends there.  Two forms are recognised, nothing else
 * is ever written:
 *   e8 rel32        at ret-5: a direct call, whose target is the hook
 *                   itself or a PLT entry (an optional endbr64, an
 *                   optional bnd prefix, then `jmp *GOT(%rip)`) whose GOT
 *                   slot holds the hook; also `67 e8 rel32`, the linker's
 *                   relaxed -fno-plt call, the prefix left in place.
 *                   Patched to `eb 03`: a short jump over the rest.
 *   ff 15 disp32    at ret-6: -fno-plt's `call *GOT(%rip)`, whose slot
 *                   holds the hook.  Patched to `eb 04`.
 * And the call must be one the compiler made for `fn` (made_for): inside
 * `fn`'s own code, which loads `fn` as a constant, so that the site never
 * passes another function.
 *
 * Exits the compiler tail-jumped.  A function returning nothing may end
 * with `jmp __cyg_profile_func_exit` (or its PLT entry, or -fno-plt's
 * `jmp *GOT(%rip)`) after tearing its frame down: the exit hook then
 * returns straight to the function's caller, and its return address is
 * after the caller's call, not after a call to the hook.  When the bytes
 * before the return address are no call to the hook, tail_exits decodes
 * `fn`'s own code (its DWARF ranges; insn.c, with Zydis; once per build,
 * decoded.c keeping what it found) for the jumps to the hook, each checked
 * as above (target, made_for), and patches each
 * one's first byte to `c3`: `ret`, which does what the hook's own return
 * would have done, the frame being gone already.  One byte: always an
 * atomic store; the jump's other bytes are never reached.  Restored by
 * writing the jump's first byte back, like any other site.
 *
 * How a site is written (sites.c): only its first two bytes change, with
 * one 2-byte store within a cache line, so every thread fetches either
 * the old call or the new jump, never a mix; the remaining bytes are not
 * touched then and no thread can ever stop inside them (the jump skips
 * them).  Then the call becomes a NOP of its length: the bytes the jump
 * skips are rewritten, every core serialises, and one more 2-byte store
 * turns the jump into the NOP's first bytes; restoring takes the same
 * steps back and serialises every core before the decision counts as
 * applied.  A taken jump costs the front end a redirect, a NOP nothing
 * measurable (bench: "hook calls as NOPs").  Where the two bytes would
 * straddle a cache line (1 site in 64), a direct call's first byte alone
 * becomes `cmp $imm32, %eax` (decode says why that is harmless), and a
 * -fno-plt call is left calling.  Sites are queued on their first call
 * and written in batches (sites.c says when).  A system that refuses
 * writable code (SELinux's execmod, PaX, a seccomp policy) turns
 * patching off for the process with one debug line: the hooks keep
 * working as without it.
 *
 * Threading: every write, and the list of patched sites, is under `mu`
 * (cnsmp_sites_mu), taken only on slow paths (a site's first call under
 * a decision, a change of decisions, dlclose).  Each path that holds it sets the
 * thread's hook guard, so a signal handler running instrumented code on
 * that thread neither patches nor waits for the lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "insn.h"
#include "sites.h"
#include "decoded.h"
#include "thread.h"

#if defined(__x86_64__) && !defined(__ILP32__) && defined(__linux__)

#include <link.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/membarrier.h>

/* The hooks by their link names (gcc refuses to take the address of what
 * it knows as builtins): their addresses as the dynamic linker resolved
 * them, the values that PLT and GOT calls to them reach. */
extern void hook_enter(void *, void *) __asm__("__cyg_profile_func_enter")
	__attribute__((visibility("default")));
extern void hook_exit(void *, void *) __asm__("__cyg_profile_func_exit")
	__attribute__((visibility("default")));

enum { MODE_UNSET = 0, MODE_ON, MODE_OFF, MODE_REFUSED };

static _Atomic int mode;
static int jumps_only; /* CODENSM_PATCH=jumps: no NOPs (cnsmp_sites_to_nop); set once, under mu */
_Atomic int cnsmp_patch_live; /* mode is MODE_ON and !refusals_full */

/* Sites that are not one of the calls patched here (a tail-called exit
 * hook, an inlined function's call that does not load it as a constant,
 * a -fno-plt call across a cache line): an exit hook that finds its site
 * here returns at once instead of examining it again on every call.
 * Open addressing, read without a lock, written under mu; at most half
 * full (REFUSED_MAX), after which exits are no longer examined at all
 * (`refusals_full`).  1 marks a slot whose site's module left. */
#define REFUSED_BITS 14
#define REFUSED_MAX (1u << (REFUSED_BITS - 1))
#define REFUSED_TOMB ((uintptr_t)1)
static _Atomic uintptr_t refused[1u << REFUSED_BITS];
static size_t nrefused; /* slots used, tombstones too (mu) */
static _Atomic int refusals_full;

/* Exits examined by tail_exits that patched nothing new (a function with
 * no jump to the hook, or a tail exit that is not a plain jmp, such as a
 * conditional one): keyed by the function mixed with the return address,
 * since one caller's indirect call returns there from many functions.
 * Emptied whenever sites are restored or a module leaves (a cache only:
 * an entry lost costs one more examination, a false match only leaves
 * a hook call in place). */
#define TAIL_BITS 12
#define TAIL_MAX (1u << (TAIL_BITS - 1))
static _Atomic uintptr_t tail_refused[1u << TAIL_BITS];

/* Functions whose code tail_exits decoded since sites were last restored
 * and found either no tail exit to patch or queued them: another return
 * address of theirs (an interpreter's helpers are reached from hundreds
 * of callers) is refused or counted as a waiting site's call without
 * decoding the function again.  Emptied with tail_refused. */
static _Atomic uintptr_t tail_seen[1u << TAIL_BITS];
static size_t ntail, nseen; /* mu */

/* dlclose in progress: `closing` counts the closes running, `epoch`
 * moves at each one's start.  A patch decided before a close began is
 * not written (see cnsmp_patch_dl_begin). */
static _Atomic unsigned closing, epoch;

static uint64_t n_refused; /* for the exit line (mu) */
/* Functions whose tail exits were decoded, and read from decoded.c (mu). */
static uint64_t n_tail_decoded, n_tail_cached;

/* wmu (widen's cache), cmu (the decoder's copy of the code, code_copy)
 * and mu are taken in this order, here too. */
static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cmu = PTHREAD_MUTEX_INITIALIZER;
static CNSMP_NOINST void fork_prepare(void)
{
	pthread_mutex_lock(&wmu);
	pthread_mutex_lock(&cmu);
	pthread_mutex_lock(&cnsmp_sites_mu);
}
static CNSMP_NOINST void fork_parent(void)
{
	pthread_mutex_unlock(&cnsmp_sites_mu);
	pthread_mutex_unlock(&cmu);
	pthread_mutex_unlock(&wmu);
}
static CNSMP_NOINST void fork_child(void)
{
	pthread_mutex_unlock(&cnsmp_sites_mu);
	pthread_mutex_unlock(&cmu);
	pthread_mutex_unlock(&wmu);
	cnsmp_sites_sync_again();
}

static CNSMP_NOINST void at_exit(void)
{
	struct cnsmp_sites_stats st;
	pthread_mutex_lock(&cnsmp_sites_mu);
	cnsmp_sites_stats(&st);
	cnsmp_log(CNSMP_LOG_DEBUG, "call-site patching: %llu sites patched, "
		  "%llu restored, %llu refused, %zu pages of code made private (%zu kB); "
		  "%llu patched with their argument set-up, %llu made NOPs, "
		  "%llu loads of their second argument made NOPs; "
		  "%llu batches, %zu sites waiting; tail exits of %llu functions decoded, "
		  "of %llu already known",
		  (unsigned long long)st.patched, (unsigned long long)st.restored,
		  (unsigned long long)n_refused, st.pages,
		  st.pages * (size_t)sysconf(_SC_PAGESIZE) / 1024, (unsigned long long)st.wide,
		  (unsigned long long)st.nop, (unsigned long long)st.args,
		  (unsigned long long)st.batches, st.waiting,
		  (unsigned long long)n_tail_decoded, (unsigned long long)n_tail_cached);
	pthread_mutex_unlock(&cnsmp_sites_mu);
}

/* Keep what was decoded for the next run (decoded.c), with the guard set:
 * a signal handler's hooks on this thread must not wait for decoded.c's
 * lock it holds. */
static CNSMP_NOINST void save_decoded(void)
{
	int guard = cnsmp_tls.guard;
	cnsmp_tls.guard = 1;
	cnsmp_decoded_save();
	cnsmp_tls.guard = guard;
}

/* CODENSM_PATCH: on (default) or off; anything else gets one line.  The
 * fork and exit handlers are registered first and outside mu (fork()
 * runs the prepare handlers under glibc's own lock), so that no site is
 * patched before a fork child would release mu. */
static CNSMP_NOINST void decide_mode(void)
{
	static _Atomic int handlers;
	if (!atomic_exchange(&handlers, 1)) {
		pthread_atfork(fork_prepare, fork_parent, fork_child);
		atexit(save_decoded);
		if (cnsmp_log_level >= CNSMP_LOG_DEBUG && cnsmp_patch_setting(getenv("CODENSM_PATCH")))
			atexit(at_exit);
	}
	pthread_mutex_lock(&cnsmp_sites_mu);
	if (atomic_load(&mode) == MODE_UNSET) {
		const char *v = getenv("CODENSM_PATCH");
		int on = cnsmp_patch_setting(v) != 0;
		jumps_only = cnsmp_patch_setting(v) == 2;
		if (cnsmp_patch_setting(v) < 0)
			cnsmp_log(CNSMP_LOG_INFO, "CODENSM_PATCH=\"%s\" is not on, off or jumps: "
				  "patching the calls of excluded functions (on)", v);
		if (on) {
			cnsmp_sites_sync_register();
			atomic_store(&cnsmp_flusher_tick, cnsmp_patch_flush);
		}
		else
			cnsmp_log(CNSMP_LOG_DEBUG, "call-site patching off (CODENSM_PATCH=%s): "
				  "excluded functions keep calling the hooks", v);
		atomic_store(&mode, on ? MODE_ON : MODE_OFF);
		atomic_store(&cnsmp_patch_live, on);
	}
	pthread_mutex_unlock(&cnsmp_sites_mu);
}

static inline int is_refused(uintptr_t ret)
{
	return cnsmp_sites_in_set(refused, REFUSED_BITS, ret);
}

/* The key of a tail exit of `fn` returning to `ret` (never 0 or 1). */
static inline uintptr_t tail_key(uintptr_t fn, uintptr_t ret)
{
	uintptr_t k = ret ^ (fn * (uintptr_t)0x9e3779b97f4a7c15u);
	return k < 2 ? k + 2 : k;
}

static CNSMP_NOINST void tail_refuse(uintptr_t fn, uintptr_t ret)
{
	uintptr_t k = tail_key(fn, ret);
	pthread_mutex_lock(&cnsmp_sites_mu);
	if (!cnsmp_sites_in_set(tail_refused, TAIL_BITS, k)) {
		if (ntail >= TAIL_MAX) {
			atomic_store(&refusals_full, 1);
			atomic_store(&cnsmp_patch_live, 0);
		} else {
			ntail++;
			cnsmp_sites_set_add(tail_refused, TAIL_BITS, k);
			n_refused++;
		}
	}
	pthread_mutex_unlock(&cnsmp_sites_mu);
}

/* Empty tail_refused (mu held): restored sites may be patched again. */
static CNSMP_NOINST void tail_forget(void)
{
	if (ntail)
		for (size_t i = 0; i < (1u << TAIL_BITS); i++)
			atomic_store_explicit(&tail_refused[i], 0, memory_order_relaxed);
	if (nseen)
		for (size_t i = 0; i < (1u << TAIL_BITS); i++)
			atomic_store_explicit(&tail_seen[i], 0, memory_order_relaxed);
	ntail = nseen = 0;
}

/* Remember that fn's tail exits were examined (mu held). */
static CNSMP_NOINST void tail_saw(uintptr_t fn)
{
	if (nseen >= TAIL_MAX || cnsmp_sites_in_set(tail_seen, TAIL_BITS, fn))
		return;
	nseen++;
	cnsmp_sites_set_add(tail_seen, TAIL_BITS, fn);
}

static CNSMP_NOINST void refuse(uintptr_t ret)
{
	const size_t mask = (1u << REFUSED_BITS) - 1;
	pthread_mutex_lock(&cnsmp_sites_mu);
	if (!is_refused(ret)) {
		if (nrefused >= REFUSED_MAX) {
			atomic_store(&refusals_full, 1);
			atomic_store(&cnsmp_patch_live, 0);
		} else {
			size_t i = cnsmp_addr_slot(ret, REFUSED_BITS);
			uintptr_t a;
			while ((a = atomic_load_explicit(&refused[i], memory_order_relaxed)) &&
			       a != REFUSED_TOMB)
				i = (i + 1) & mask;
			nrefused += !a;
			atomic_store_explicit(&refused[i], ret, memory_order_release);
			n_refused++;
		}
	}
	pthread_mutex_unlock(&cnsmp_sites_mu);
}

struct seg {
	uintptr_t at;
	int prot;     /* out: the PT_LOAD's protection, -1 if none holds `at` */
	uintptr_t lo; /* out: where that PT_LOAD starts */
	/* out: the module's PT_LOADs (its PLT and GOT among them) */
	uintptr_t load_lo[8], load_hi[8];
	int nloads;
};

/* The word at `p`, which is mapped but may be anything: a GOT slot, or
 * bytes that only might be one (made_for tries every offset), which under
 * AddressSanitizer may lie in a global's redzone.  Byte loads: `p` need
 * not be aligned. */
__attribute__((no_sanitize_address)) static CNSMP_NOINST uintptr_t peek_word(uintptr_t p)
{
	const volatile uint8_t *b = (const volatile uint8_t *)p;
	uintptr_t v = 0;
	for (size_t i = sizeof v; i-- > 0;)
		v = v << 8 | b[i];
	return v;
}

/* Are the n bytes at `p` inside one of g's module's segments (so mapped,
 * and safe to read)? */
static CNSMP_NOINST int in_module(const struct seg *g, uintptr_t p, size_t n)
{
	for (int i = 0; i < g->nloads; i++)
		if (p >= g->load_lo[i] && p + n <= g->load_hi[i] && p + n > p)
			return 1;
	return 0;
}

/* Does the PLT entry at `p` (in g's module) jump through a GOT slot
 * holding `hook`?  Everything read is checked to lie in the module
 * first: when the bytes before the return address are not the call they
 * look like, `p` may be anywhere. */
static CNSMP_NOINST int plt_jumps_to(const struct seg *g, const uint8_t *p, uintptr_t hook)
{
	if (!in_module(g, (uintptr_t)p, 16))
		return 0;
	static const uint8_t endbr64[4] = {0xf3, 0x0f, 0x1e, 0xfa};
	if (memcmp(p, endbr64, 4) == 0)
		p += 4;
	if (p[0] == 0xf2) /* bnd */
		p++;
	if (p[0] != 0xff || p[1] != 0x25)
		return 0;
	int32_t disp;
	memcpy(&disp, p + 2, 4);
	uintptr_t slot = (uintptr_t)p + 6 + (intptr_t)disp;
	return in_module(g, slot, 8) && peek_word(slot) == hook;
}

/* The site of the call that returns to `ret`, if it is one of the forms
 * above calling `hook`: 0 and *s filled, else -1.  The site's original
 * bytes are the ones checked here, never read again: another thread may
 * be rewriting them meanwhile (under mu, which cnsmp_sites_write takes before it
 * compares them with the code). */
static CNSMP_NOINST int decode(uintptr_t ret, uintptr_t hook, const struct seg *g,
			       struct site *s)
{
	const uint8_t *p = (const uint8_t *)ret;
	if (p[-5] == 0xe8) {
		int32_t rel;
		memcpy(&rel, p - 4, 4);
		uintptr_t target = ret + (intptr_t)rel;
		if (target != hook && !plt_jumps_to(g, (const uint8_t *)target, hook))
			return -1;
		s->at = ret - 5;
		s->now[1] = 0x03;
		s->orig[0] = 0xe8;
		memcpy(s->orig + 1, &rel, 4);
	} else if (p[-6] == 0xff && p[-5] == 0x15) {
		int32_t disp;
		memcpy(&disp, p - 4, 4);
		uintptr_t slot = ret + (intptr_t)disp;
		if (!in_module(g, slot, 8) || peek_word(slot) != hook)
			return -1;
		s->at = ret - 6;
		s->now[1] = 0x04;
		s->orig[0] = 0xff;
		s->orig[1] = 0x15;
		memcpy(s->orig + 2, &disp, 4);
	} else {
		return -1;
	}
	s->now[0] = 0xeb;
	s->len = 2;
	if ((s->at & 63) != 63)
		return 0;
	/* The two bytes would straddle a cache line, where a 2-byte store is
	 * not atomic.  A direct call then changes its first byte only:
	 * e8 -> 3d makes it `cmp $rel32, %eax`, as long as the call and
	 * harmless (it reads eax and writes the flags, which no compiler
	 * keeps live across a call).  -fno-plt's form is left alone. */
	if (s->now[1] != 0x03)
		return -1;
	s->now[0] = 0x3d;
	s->len = 1;
	return 0;
}

static CNSMP_NOINST int find_seg(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct seg *s = arg;
	(void)size;
	int found = 0;
	for (int i = 0; i < info->dlpi_phnum && !found; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		found = ph->p_type == PT_LOAD && s->at >= lo && s->at - lo < ph->p_memsz;
	}
	if (!found)
		return 0;
	s->nloads = 0;
	for (int i = 0; i < info->dlpi_phnum && s->nloads < 8; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		s->load_lo[s->nloads] = info->dlpi_addr + ph->p_vaddr;
		s->load_hi[s->nloads++] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
	}
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type != PT_LOAD || s->at < lo || s->at - lo >= ph->p_memsz)
			continue;
		s->lo = lo;
		s->prot = (ph->p_flags & PF_R ? PROT_READ : 0) |
			  (ph->p_flags & PF_W ? PROT_WRITE : 0) |
			  (ph->p_flags & PF_X ? PROT_EXEC : 0);
		return 1;
	}
	return 0;
}

CNSMP_NOINST int cnsmp_patch_seg_prot(uintptr_t at)
{
	struct seg g = {.at = at, .prot = -1};
	dl_iterate_phdr(find_seg, &g);
	return g.prot;
}

/* The system refused: patching off for the process (mu held). */
CNSMP_NOINST void cnsmp_patch_refused(void)
{
	atomic_store(&mode, MODE_REFUSED);
	atomic_store(&cnsmp_patch_live, 0);
	cnsmp_log(CNSMP_LOG_DEBUG, "call-site patching refused by the system "
		  "(mprotect: %s): excluded functions keep calling the hooks",
		  strerror(errno));
}

/* A GOT slot of the module of g at `t` holding `fn`? */
static CNSMP_NOINST int got_holds(const struct seg *g, uintptr_t t, uintptr_t fn)
{
	return !(t & 7) && in_module(g, t, 8) && peek_word(t) == fn;
}

/* Does a 4-byte field starting in [lo, hi) and ending by `end` hold `fn`
 * as one of the constants below (made_for)?  Every offset is tried, from
 * hi down (nearest the call first): four bytes that happen to equal a
 * displacement to `fn` itself are the only false match. */
static CNSMP_NOINST int holds_constant(uintptr_t fn, uintptr_t lo, uintptr_t hi,
				       uintptr_t end, const struct seg *g)
{
	if (hi > end - 3)
		hi = end - 3;
	for (uintptr_t q = hi; q > lo;) {
		int32_t v;
		memcpy(&v, (const void *)--q, 4);
		uintptr_t t = q + 4 + (intptr_t)v;
		if (t == fn || (fn <= UINT32_MAX && (uint32_t)v == fn) || got_holds(g, t, fn))
			return 1;
	}
	return 0;
}

/* Is the call at `at` one the compiler made for `fn`, so that it always
 * passes `fn`?  A patched site skips the hook for whatever it passes, so a
 * site that serves several functions (a hand-written wrapper around the
 * hooks, given a variable) must never be patched.  The compiler passes
 * the function as a constant, loaded in the code of the function that
 * holds the call (`fn` itself, or the one it was inlined into; the
 * symbols say where that code starts) before the call: a rip-relative
 * displacement to it (PIE: lea fn(%rip)) or to a GOT slot holding it (a
 * shared library's global function: mov fn@GOTPCREL(%rip)), or a 32-bit
 * immediate (non-PIE: mov $fn).  A wrapper given a variable loads no
 * such constant.  A call in a function's cold part (placed before its
 * entry) is not examined, and keeps calling. */
static CNSMP_NOINST int made_for(uintptr_t fn, uintptr_t at, const struct seg *g,
				  uintptr_t *code_entry)
{
	struct cnsmp_fninfo fi;
	int rc = cnsmp_symbols_resolve(at, &cnsmp_cfg, &fi);
	uintptr_t entry = fi.entry;
	if (rc >= 0)
		cnsmp_fninfo_release(&fi);
	if (rc != 0 || entry < g->lo || entry >= at)
		return 0;
	*code_entry = entry;
	/* Where the constant usually is: in the prologue (an entry call, or
	 * an exit call reusing a register loaded there: gcc -O2's way), or
	 * just before the call (an inlined function's); then everything
	 * between.  Every field in [entry, at) is tried once. */
	uintptr_t head = at - entry > 64 ? entry + 64 : at;
	uintptr_t near = at - entry > 256 ? at - 256 : head;
	return holds_constant(fn, entry, head, at, g) || holds_constant(fn, near, at, at, g) ||
	       holds_constant(fn, head, near, at, g);
}

/* Is a call of `fn` open on some thread's shadow stack?  Such a call
 * was entered while `fn` was tracked; with its exit patched out it would
 * stay on that stack until a caller's exit repaired it.  A racy read of
 * other threads' stacks (depth, then frames: each frame is written before
 * the depth that publishes it): a frame pushed meanwhile can only come
 * from a decision cached before the change that excluded `fn`. */
static CNSMP_NOINST int open_anywhere(uintptr_t fn)
{
	for (struct cnsmp_thread *t = atomic_load_explicit(&cnsmp_threads,
							   memory_order_acquire);
	     t; t = atomic_load_explicit(&t->next, memory_order_acquire)) {
		if (atomic_load_explicit(&t->state, memory_order_acquire) != CNSMP_T_LIVE)
			continue;
		uint32_t d = __atomic_load_n(&t->depth, __ATOMIC_ACQUIRE);
		if (d > CNSMP_STACK_DEPTH)
			d = CNSMP_STACK_DEPTH;
		for (uint32_t i = 0; i < d; i++)
			if (__atomic_load_n(&cnsmp_frame_at(t, i)->addr, __ATOMIC_RELAXED) == fn)
				return 1;
	}
	return 0;
}

/* May a site of `fn` calling `hook` be written now (mu held)?  Decided
 * again under the lock: a change of decisions restores the sites under
 * it after the change, so a patch written here either sees the new
 * decision or is undone by that restore.  `e`: the dlclose epoch read
 * before the site was examined. */
CNSMP_NOINST int cnsmp_patch_may(uintptr_t fn, uintptr_t hook, unsigned e)
{
	struct cnsmp_fn *f = cnsmp_registry_lookup(fn);
	return atomic_load(&mode) == MODE_ON && !atomic_load(&closing) &&
	       atomic_load(&epoch) == e && f &&
	       atomic_load_explicit(&f->state, memory_order_acquire) == CNSMP_FN_EXCLUDED &&
	       /* a probed function's calls must reach the probes (probes.c) */
	       atomic_load_explicit(&f->probes, memory_order_acquire) == NULL &&
	       (hook != (uintptr_t)&hook_exit || !open_anywhere(fn));
}

/* Does the jump `j` in g's module reach the exit hook? */
static CNSMP_NOINST int jumps_to_exit(const struct seg *g, const struct cnsmp_jump *j)
{
	uintptr_t hook = (uintptr_t)&hook_exit;
	if (j->mem)
		return in_module(g, j->dest, 8) && peek_word(j->dest) == hook;
	return j->dest == hook || plt_jumps_to(g, (const uint8_t *)j->dest, hook);
}

/* The code [lo, hi) as it was before any patch here, for the decoder (a
 * patched site's bytes would send it off instruction boundaries): a copy
 * taken under mu with every listed site's original bytes put back, into
 * one buffer kept from copy to copy (an mmap and munmap per copy, with
 * its page faults, cost more than decoding a small function).  The
 * buffer is held (cmu) until code_done.  NULL if too large or out of
 * memory. */
static uint8_t *cbuf; /* cmu */
static size_t ccap;

static CNSMP_NOINST uint8_t *code_copy(uintptr_t lo, uintptr_t hi)
{
	size_t n = hi - lo;
	if (hi <= lo || n > (1u << 20))
		return NULL;
	pthread_mutex_lock(&cmu);
	if (n > ccap) {
		size_t cap = (n + 0xffff) & ~(size_t)0xffff;
		uint8_t *b = cnsmp_sites_grow(NULL, 0, cap); /* mmap: see grow */
		if (!b) {
			pthread_mutex_unlock(&cmu);
			return NULL;
		}
		cnsmp_sites_grow(cbuf, ccap, 0);
		cbuf = b;
		ccap = cap;
	}
	pthread_mutex_lock(&cnsmp_sites_mu);
	memcpy(cbuf, (const void *)lo, n);
	cnsmp_sites_originals(cbuf, lo, hi);
	pthread_mutex_unlock(&cnsmp_sites_mu);
	return cbuf;
}

static CNSMP_NOINST void code_done(void)
{
	pthread_mutex_unlock(&cmu);
}

/* Does jump `j` reach the exit hook from the module of (struct seg *)g? */
static CNSMP_NOINST int keep_exit_jump(const struct cnsmp_jump *j, void *g)
{
	return jumps_to_exit(g, j);
}

/* The jumps to the exit hook in the code [lo, hi) of g's module (insn.h);
 * -1 if it cannot be decoded. */
static CNSMP_NOINST int jumps_in(const struct seg *g, uintptr_t lo, uintptr_t hi,
				 struct cnsmp_jump *out, size_t max)
{
	uint8_t *copy = code_copy(lo, hi);
	if (!copy)
		return -1;
	int nj = cnsmp_insn_jumps(copy, hi - lo, lo, out, max, keep_exit_jump, (void *)g);
	code_done();
	return nj;
}

/* Each function's calls and where their argument set-up starts
 * (cnsmp_insn_calls), decoded once per function and kept here: decoding
 * a function again for each of its sites would cost its size each time.
 * Open addressing under wmu (taken before mu, never inside it): keys are
 * a call's return address (value: the set-up's start, and the two
 * original bytes there in bits 48-63), or a decoded function's entry with
 * WFN set.  Emptied when a module leaves (another may come at the same
 * addresses). */
#define WFN ((uintptr_t)1 << 63)
struct wslot {
	uintptr_t key, val;
};
static struct wslot *wtab; /* wmu */
static size_t wcap, wn;

static CNSMP_NOINST struct wslot *wslot(struct wslot *t, size_t cap, uintptr_t key)
{
	size_t i = (size_t)((key ^ key >> 17) * 0x9e3779b97f4a7c15u >> 20) & (cap - 1);
	while (t[i].key && t[i].key != key)
		i = (i + 1) & (cap - 1);
	return &t[i];
}

/* Remember key -> val (wmu held); out of memory only forgets. */
static CNSMP_NOINST void wput(uintptr_t key, uintptr_t val)
{
	if ((wn + 1) * 2 > wcap) {
		size_t n = wcap ? wcap * 2 : 1024;
		struct wslot *t = cnsmp_sites_grow(NULL, 0, n * sizeof *t);
		if (!t)
			return;
		for (size_t i = 0; i < wcap; i++)
			if (wtab[i].key)
				*wslot(t, n, wtab[i].key) = wtab[i];
		cnsmp_sites_grow(wtab, wcap * sizeof *wtab, 0);
		wtab = t;
		wcap = n;
	}
	struct wslot *w = wslot(wtab, wcap, key);
	wn += !w->key;
	*w = (struct wslot){key, val};
}

static CNSMP_NOINST int wget(uintptr_t key, uintptr_t *val)
{
	if (!wcap)
		return 0;
	struct wslot *w = wslot(wtab, wcap, key);
	if (w->key && val)
		*val = w->val;
	return w->key != 0;
}

/* Decode the code [entry, hi) into wtab (wmu held). */
static CNSMP_NOINST void decode_range(uintptr_t entry, uintptr_t hi)
{
	size_t n = hi - entry, max = n / 5 + 1;
	uint8_t *copy = code_copy(entry, hi);
	struct cnsmp_call *calls = copy ? cnsmp_sites_grow(NULL, 0, max * sizeof *calls) : NULL;
	int nc = calls ? cnsmp_insn_calls(copy, n, entry, calls, max) : -1;
	for (int i = 0; i < nc; i++) {
		uintptr_t from = calls[i].from; /* 0 for a jump */
		if (from)
			wput(calls[i].ret, from | (uintptr_t)copy[from - entry] << 48 |
						 (uintptr_t)copy[from - entry + 1] << 56);
	}
	if (calls)
		cnsmp_sites_grow(calls, max * sizeof *calls, 0);
	if (copy)
		code_done();
}

/* Decode the body of the function at `entry` into wtab (wmu held), or,
 * without DWARF ranges for it (hand-written code), its code up to the
 * call that ends at `end`, if near: then every other site of it decodes
 * again (a bounded cost). */
static CNSMP_NOINST void decode_calls(uintptr_t entry, uintptr_t end)
{
	uintptr_t code[4][2];
	size_t nr = cnsmp_symbols_code(entry, &cnsmp_cfg, code, 4), body = 0;
	for (size_t r = 0; r < nr; r++)
		if (code[r][0] == entry && code[r][1] >= end) {
			decode_range(entry, code[r][1]);
			body = 1;
		}
	if (body)
		wput(entry | WFN, 1);
	else if (end - entry <= 4096 && !wget(end, NULL))
		decode_range(entry, end);
}

/* Widen site `s` (a call, decoded, in the function starting at `entry`)
 * to start at its argument set-up, when the decoder proves that the
 * instructions there only load the hook's arguments: the short jump is
 * then written over the first of them and skips them with the call.  The
 * same two bytes, one store, at an instruction boundary; `s` unchanged
 * when not provable, or when the jump would be out of reach or its two
 * bytes would straddle a cache line.  `e`: the dlclose epoch the site was
 * examined under (a module closed since may have left wtab stale). */
static CNSMP_NOINST void widen(struct site *s, uintptr_t entry, unsigned e)
{
	if (s->now[0] != 0xeb)
		return; /* the cmp form of a call across a cache line: as it is */
	uintptr_t end = s->at + 2 + s->now[1]; /* the call's end */
	uintptr_t v = 0;
	pthread_mutex_lock(&wmu);
	int known = 0;
	if (atomic_load(&epoch) == e && !atomic_load(&closing)) {
		if (!wget(entry | WFN, NULL))
			decode_calls(entry, end);
		known = wget(end, &v);
	}
	pthread_mutex_unlock(&wmu);
	uintptr_t from = v & (((uintptr_t)1 << 48) - 1);
	uint8_t orig[2] = {(uint8_t)(v >> 48), (uint8_t)(v >> 56)};
	/* A widened site already patched (the call reached by a branch into
	 * its set-up, past the jump): the call alone is patched then. */
	if (known && from < s->at && end - (from + 2) <= 127 && (from & 63) != 63 &&
	    memcmp((const void *)from, orig, 2) == 0) {
		s->at = from;
		memcpy(s->orig, orig, 2);
		s->now[1] = (uint8_t)(end - (from + 2));
		s->wide = 1;
	}
}

/* Decode the function at `entry` (its body, from its DWARF ranges) for
 * the load of the second argument before each of its calls and jumps
 * (insn.h), and keep them (decoded.c): for this process and the build's
 * next runs.  Every one is listed, with a load or without: which call a hook
 * depends on what the dynamic linker has bound so far (a PLT entry not
 * called yet jumps back into the PLT), patch.c patches only what
 * decode() found calling one, and a hook call missing from the list
 * means the list is not this build's. */
static CNSMP_NOINST void decode_args(uintptr_t entry, const struct seg *g)
{
	uintptr_t code[4][2];
	size_t nr = cnsmp_symbols_code(entry, &cnsmp_cfg, code, 4), n = 0, amax = 0;
	struct cnsmp_arg *a = NULL;
	int body = 0;
	for (size_t r = 0; r < nr; r++) {
		uintptr_t lo = code[r][0], hi = code[r][1];
		if (lo != entry || !in_module(g, lo, hi - lo))
			continue; /* a .cold part: made_for refuses its sites */
		body = 1;
		size_t max = (hi - lo) / 5 + 1;
		struct cnsmp_call *calls = cnsmp_sites_grow(NULL, 0, max * sizeof *calls);
		uint8_t *copy = calls ? code_copy(lo, hi) : NULL;
		int nc = copy ? cnsmp_insn_calls(copy, hi - lo, lo, calls, max) : -1;
		if (nc > 0 && !a) {
			amax = (size_t)nc < CNSMP_ARGS_MAX ? (size_t)nc : CNSMP_ARGS_MAX;
			a = cnsmp_sites_grow(NULL, 0, amax * sizeof *a);
		}
		for (int i = 0; i < nc && a && n < amax; i++) {
			const struct cnsmp_call *c = &calls[i];
			if (c->ret - entry > UINT32_MAX)
				continue;
			struct cnsmp_arg *k = &a[n++];
			*k = (struct cnsmp_arg){.ret = (uint32_t)(c->ret - entry)};
			if (c->arg && c->ret - c->arg <= 255) {
				k->back = (uint8_t)(c->ret - c->arg);
				k->len = c->arg_len;
				k->sum = (uint32_t)cnsmp_hash(CNSMP_HASH_SEED, copy + (c->arg - lo),
							      k->back);
			}
		}
		if (copy)
			code_done();
		if (calls)
			cnsmp_sites_grow(calls, max * sizeof *calls, 0);
		if (nc < 0) {
			n = 0; /* no decoder: nothing known, nothing kept */
			goto out;
		}
	}
	if (body) /* without DWARF ranges (hand-written code), nothing known */
		cnsmp_decoded_put_calls(entry, a, n);
out:
	if (a)
		cnsmp_sites_grow(a, amax * sizeof *a, 0);
}

/* Is `k`, kept for the call returning to `ret` in the function at `entry`
 * (g's module), a load still as decoded (or no load)? */
static CNSMP_NOINST int arg_ok(const struct cnsmp_arg *k, uintptr_t entry, uintptr_t ret,
			       const struct seg *g)
{
	if (!k->len)
		return 1;
	uintptr_t at = ret - k->back;
	return at >= entry && at >= g->lo && k->back >= k->len + 5u && in_module(g, at, k->back) &&
	       (uint32_t)cnsmp_hash(CNSMP_HASH_SEED, (const void *)at, k->back) == k->sum;
}

/* The load of the second argument before the hook call returning to
 * `ret` (or the tail jump to the exit hook ending there) in the function
 * at `entry` (g's module), as a NOP site in *a: 0, or -1 if there is
 * none to patch.  This runtime's hooks never read
 * their second argument (the call site, which they take from their own
 * return address), so its load can go with the call, and the two may
 * come back in either order: a call given back before its load passes
 * whatever %rsi holds, which nothing reads.  Known per
 * build (decoded.c), decoded on the build's first run; the bytes from the
 * load to the call's end must still hash as they did when decoded, else
 * the function is decoded again.
 * Without a per-build file (no build-id, symbol cache off), nothing:
 * decoding each function in every run would cost more than most runs
 * gain. */
static CNSMP_NOINST int arg_site(uintptr_t entry, uintptr_t ret, const struct seg *g,
				 struct site *a)
{
	struct cnsmp_arg k;
	int r = cnsmp_decoded_call(entry, ret, &k), decoded = 0;
	if (r == -1) {
		decode_args(entry, g);
		r = cnsmp_decoded_call(entry, ret, &k);
		decoded = 1;
	}
	if (r == 0 || (r == 1 && !arg_ok(&k, entry, ret, g))) {
		/* the call missing, or its load's bytes not those decoded:
		 * not this build's list after all (a damaged or crafted
		 * file), so decoded again and the file replaced */
		if (!decoded) {
			decode_args(entry, g);
			r = cnsmp_decoded_call(entry, ret, &k);
		}
		if (r != 1 || !arg_ok(&k, entry, ret, g))
			return -1;
	}
	if (r != 1 || !k.len)
		return -1; /* nothing kept, or a call without a load to patch */
	return cnsmp_sites_arg_nop(a, ret - k.back, k.len);
}

/* Forget every function's calls (a module leaves). */
static CNSMP_NOINST void wforget(void)
{
	pthread_mutex_lock(&wmu);
	cnsmp_sites_grow(wtab, wcap * sizeof *wtab, 0);
	wtab = NULL;
	wcap = wn = 0;
	pthread_mutex_unlock(&wmu);
}

/* Is the cached tail exit `j` (at and mem set) still a jump to the exit
 * hook in g's module?  Its dest and len filled from the code. */
static CNSMP_NOINST int tail_jump_at(const struct seg *g, struct cnsmp_jump *j)
{
	if (!in_module(g, j->at, 6))
		return 0;
	const uint8_t *p = (const uint8_t *)j->at;
	int32_t d;
	if (j->mem) {
		if (p[0] != 0xff || p[1] != 0x25)
			return 0;
		memcpy(&d, p + 2, 4);
		j->len = 6;
	} else {
		if (p[0] != 0xe9)
			return 0;
		memcpy(&d, p + 1, 4);
		j->len = 5;
	}
	j->dest = j->at + j->len + (intptr_t)d;
	return jumps_to_exit(g, j);
}

/* The tail exits of `fn` (in g's module) that patch.c may write, found by
 * decoding its own code: how many were put into out[] (at most
 * CNSMP_TAILS_MAX), each checked as above (target, made_for).  Kept for
 * later runs (decoded.c) when every part of the body could be decoded. */
static CNSMP_NOINST size_t decode_tails(uintptr_t fn, const struct seg *g,
					struct cnsmp_jump *out)
{
	uintptr_t code[4][2];
	size_t nr = cnsmp_symbols_code(fn, &cnsmp_cfg, code, 4), n = 0;
	int whole = 0;
	for (size_t r = 0; r < nr; r++) {
		/* the body only: a part split off before the entry (.cold)
		 * fails made_for, which wants the constant before the site */
		if (code[r][0] != fn || !in_module(g, code[r][0], code[r][1] - code[r][0]))
			continue;
		struct cnsmp_jump j[CNSMP_TAILS_MAX];
		int nj = jumps_in(g, code[r][0], code[r][1], j, CNSMP_TAILS_MAX);
		if (nj < 0) { /* no decoder, or too large to copy */
			whole = -1;
			break;
		}
		whole = 1;
		for (int i = 0; i < nj && n < CNSMP_TAILS_MAX; i++) {
			uintptr_t entry;
			if (made_for(fn, j[i].at, g, &entry))
				out[n++] = j[i];
		}
	}
	if (whole > 0)
		cnsmp_decoded_put_exits(fn, out, n);
	return n;
}

/* Patch the tail jumps to the exit hook in excluded `fn`'s own code (see
 * the top): how many were written now.  Called when an exit hook's return
 * address follows no call to it.  The jumps come from decoded.c when an
 * earlier run of this build (or this process) decoded fn, else from
 * decoding it now. */
static CNSMP_NOINST int tail_exits(uintptr_t fn, uintptr_t ret, unsigned e)
{
	struct seg g = {.at = fn, .prot = -1};
	dl_iterate_phdr(find_seg, &g);
	if (g.prot < 0 || !(g.prot & PROT_EXEC) || (g.prot & PROT_WRITE))
		return 0;
	struct cnsmp_jump j[CNSMP_TAILS_MAX];
	int nj = cnsmp_decoded_exits(fn, j, CNSMP_TAILS_MAX);
	for (int i = 0; i < nj; i++)
		if (!tail_jump_at(&g, &j[i]))
			nj = -1; /* not this build's code after all: decode it */
	int cached = nj >= 0;
	size_t ns = cached ? (size_t)nj : decode_tails(fn, &g, j);
	struct site s[CNSMP_TAILS_MAX], a[CNSMP_TAILS_MAX];
	int arg[CNSMP_TAILS_MAX];
	for (size_t i = 0; i < ns; i++) {
		s[i] = (struct site){.at = j[i].at, .now = {0xc3}, .len = 1};
		s[i].orig[0] = j[i].mem ? 0xff : 0xe9;
		/* the exit hook's second argument, loaded before the jump */
		arg[i] = arg_site(fn, j[i].at + j[i].len, &g, &a[i]) == 0;
	}
	int queued = 0;
	pthread_mutex_lock(&cnsmp_sites_mu);
	if (cached)
		n_tail_cached++;
	else
		n_tail_decoded++;
	if (!ns)
		tail_saw(fn);
	if (ns && cnsmp_patch_may(fn, (uintptr_t)&hook_exit, e)) {
		for (size_t i = 0; i < ns; i++)
			queued += cnsmp_sites_queue(&s[i], arg[i] ? &a[i] : NULL, g.prot, fn,
						    (uintptr_t)&hook_exit, e);
		if (queued) {
			cnsmp_sites_wait_key(tail_key(fn, ret));
			tail_saw(fn);
		}
	}
	pthread_mutex_unlock(&cnsmp_sites_mu);
	return queued;
}

/* Patch the call to `hook` returning to `ret` in excluded `fn`'s code. */
static CNSMP_NOINST void patch(uintptr_t fn, uintptr_t ret, uintptr_t hook)
{
	if (cnsmp_tls.guard || !ret)
		return;
	cnsmp_tls.guard = 1;
	int saved = errno;
	if (unlikely(atomic_load_explicit(&mode, memory_order_acquire) == MODE_UNSET))
		decide_mode();
	if (atomic_load_explicit(&mode, memory_order_acquire) != MODE_ON || is_refused(ret))
		goto out;
	if (cnsmp_sites_waiting(ret) ||
	    (hook == (uintptr_t)&hook_exit && cnsmp_sites_waiting(tail_key(fn, ret)))) {
		cnsmp_sites_hit();
		goto out;
	}
	unsigned e = atomic_load(&epoch);
	struct site s = {0};
	struct seg g = {.prot = -1};
	if (atomic_load(&closing))
		goto out;
	g.at = ret - 6;
	dl_iterate_phdr(find_seg, &g);
	int call = g.prot >= 0 && (g.prot & PROT_EXEC) && !(g.prot & PROT_WRITE) &&
		   ret - 6 >= g.lo && decode(ret, hook, &g, &s) == 0;
	if (!call && hook == (uintptr_t)&hook_exit) {
		/* no call to the hook before `ret`: a tail-jumped exit */
		if (cnsmp_sites_in_set(tail_seen, TAIL_BITS, fn)) {
			if (cnsmp_sites_fn_waiting(fn, (uintptr_t)&hook_exit))
				cnsmp_sites_hit();
			else
				tail_refuse(fn, ret);
			goto out;
		}
		if (!tail_exits(fn, ret, e))
			tail_refuse(fn, ret);
		goto out;
	}
	uintptr_t entry;
	if (!call || !made_for(fn, s.at, &g, &entry)) {
		refuse(ret);
		goto out;
	}
	/* A NOP where it can be: a NOP costs less than a jump over the call
	 * and its set-up (bench: "hook calls as NOPs") */
	if (!jumps_only)
		cnsmp_sites_to_nop(&s);
	/* with a NOP, the load of the hook's second argument a NOP too */
	struct site a;
	int arg = s.nop && arg_site(entry, ret, &g, &a) == 0;
	widen(&s, entry, e);
	pthread_mutex_lock(&cnsmp_sites_mu);
	if (cnsmp_patch_may(fn, hook, e) &&
	    cnsmp_sites_queue(&s, arg ? &a : NULL, g.prot, fn, hook, e))
		cnsmp_sites_wait_key(ret);
	pthread_mutex_unlock(&cnsmp_sites_mu);
out:
	errno = saved;
	cnsmp_tls.guard = 0;
}

CNSMP_NOINST void cnsmp_patch_entry(void *fn, void *ret)
{
	patch((uintptr_t)fn, (uintptr_t)ret, (uintptr_t)&hook_enter);
}

CNSMP_NOINST void cnsmp_patch_entry_hit(void *fn, void *ret)
{
	if (atomic_load_explicit(&mode, memory_order_relaxed) != MODE_ON ||
	    is_refused((uintptr_t)ret))
		return;
	patch((uintptr_t)fn, (uintptr_t)ret, (uintptr_t)&hook_enter);
}

CNSMP_NOINST void cnsmp_patch_exit(void *fn, void *ret)
{
	if (atomic_load_explicit(&mode, memory_order_relaxed) != MODE_ON ||
	    atomic_load_explicit(&refusals_full, memory_order_relaxed) ||
	    is_refused((uintptr_t)ret) ||
	    cnsmp_sites_in_set(tail_refused, TAIL_BITS, tail_key((uintptr_t)fn, (uintptr_t)ret)))
		return;
	struct cnsmp_fn *f = cnsmp_registry_lookup((uintptr_t)fn);
	if (f && atomic_load_explicit(&f->state, memory_order_relaxed) ==
		     CNSMP_FN_EXCLUDED)
		patch((uintptr_t)fn, (uintptr_t)ret, (uintptr_t)&hook_exit);
}

/* Hold mu with the guard set (a signal handler's hooks on this thread
 * then neither patch nor wait for it); returns the guard's old value. */
static CNSMP_NOINST int lock(void)
{
	int guard = cnsmp_tls.guard;
	cnsmp_tls.guard = 1;
	pthread_mutex_lock(&cnsmp_sites_mu);
	return guard;
}

static CNSMP_NOINST void unlock(int guard)
{
	pthread_mutex_unlock(&cnsmp_sites_mu);
	cnsmp_tls.guard = guard;
}

CNSMP_NOINST void cnsmp_patch_restore_all(void)
{
	if (atomic_load(&mode) == MODE_UNSET)
		return; /* nothing was ever patched */
	int saved = errno;
	int guard = lock();
	cnsmp_sites_drop();
	cnsmp_sites_restore(0, UINTPTR_MAX);
	tail_forget();
	unlock(guard);
	errno = saved;
}

/* The module [lo, hi) may leave: its sites get their calls back and are
 * forgotten while it is surely mapped, and no site is patched until
 * cnsmp_patch_dl_end (a patch decided before would name a module that
 * may be gone; the site is patched again on a later call). */
CNSMP_NOINST void cnsmp_patch_dl_begin(uintptr_t lo, uintptr_t hi)
{
	atomic_fetch_add(&closing, 1);
	atomic_fetch_add(&epoch, 1);
	if (atomic_load(&mode) == MODE_UNSET)
		return;
	int saved = errno;
	int g0 = cnsmp_tls.guard;
	cnsmp_tls.guard = 1;
	wforget(); /* before mu: wmu is never taken inside it */
	cnsmp_decoded_forget(lo, hi); /* nor decoded.c's lock */
	cnsmp_tls.guard = g0;
	int guard = lock();
	cnsmp_sites_drop();
	cnsmp_sites_restore(lo, hi);
	for (size_t i = 0; i < (1u << REFUSED_BITS); i++) {
		uintptr_t a = atomic_load_explicit(&refused[i], memory_order_relaxed);
		if (a >= lo && a < hi && a != REFUSED_TOMB)
			atomic_store_explicit(&refused[i], REFUSED_TOMB, memory_order_relaxed);
	}
	tail_forget();
	unlock(guard);
	errno = saved;
}

CNSMP_NOINST void cnsmp_patch_dl_end(void)
{
	atomic_fetch_sub(&closing, 1);
}

CNSMP_NOINST void cnsmp_patch_flush(void)
{
	save_decoded();
	if (!cnsmp_sites_any_waiting())
		return;
	int saved = errno;
	int guard = lock();
	cnsmp_sites_write();
	unlock(guard);
	errno = saved;
}

CNSMP_NOINST const char *cnsmp_patch_mode(void)
{
	switch (atomic_load(&mode)) {
	case MODE_ON: return "on";
	case MODE_OFF: return "off";
	case MODE_REFUSED: return "refused";
	default: return "unset";
	}
}

#else /* not x86-64 Linux (x32 neither): the hooks serve every call */

CNSMP_NOINST void cnsmp_patch_entry(void *fn, void *ret) { (void)fn; (void)ret; }
CNSMP_NOINST void cnsmp_patch_entry_hit(void *fn, void *ret) { (void)fn; (void)ret; }
_Atomic int cnsmp_patch_live;
CNSMP_NOINST void cnsmp_patch_exit(void *fn, void *ret) { (void)fn; (void)ret; }
CNSMP_NOINST void cnsmp_patch_restore_all(void) {}
CNSMP_NOINST void cnsmp_patch_dl_begin(uintptr_t lo, uintptr_t hi) { (void)lo; (void)hi; }
CNSMP_NOINST void cnsmp_patch_dl_end(void) {}
CNSMP_NOINST void cnsmp_patch_flush(void) {}
CNSMP_NOINST const char *cnsmp_patch_mode(void) { return "unsupported"; }

#endif
