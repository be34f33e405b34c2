/* insn.c: loads Zydis on first need and walks a range of x86-64 code for
 * its jumps (insn.h says why). */
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "insn.h"
#include "internal.h"

#if defined(__x86_64__) && !defined(__ILP32__)

#include <Zydis/Decoder.h>

#define ZYDIS_SONAME CNSMP_ZYDIS_SONAME

static pthread_once_t once = PTHREAD_ONCE_INIT;
static __typeof__(ZydisDecoderInit) *init_fn;
static __typeof__(ZydisDecoderDecodeInstruction) *decode_fn;
static __typeof__(ZydisDecoderDecodeFull) *full_fn;
static __typeof__(ZydisDecoderEnableMode) *mode_fn;
static ZydisDecoder decoder; /* read-only once initialised */
/* The same in Zydis's minimal mode (length, mnemonic and raw fields only:
 * about a tenth fewer instructions per instruction decoded), for walking
 * a function instruction by instruction; the set-up before a call is
 * decoded again with `decoder`. */
static ZydisDecoder walker;
static int ready;

static CNSMP_NOINST void load(void)
{
	/* RTLD_NODELETE: the functions must stay whatever dlclose sees. */
	void *h = dlopen(ZYDIS_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!h) {
		const char *e = dlerror();
		cnsmp_log(CNSMP_LOG_DEBUG, "cannot load %s (%s): exits the compiler "
			  "tail-jumped keep calling the hook; install Zydis (Debian: libzydis4.0) "
			  "to patch them too", ZYDIS_SONAME, e ? e : "unknown error");
		return;
	}
	*(void **)&init_fn = dlsym(h, "ZydisDecoderInit");
	*(void **)&decode_fn = dlsym(h, "ZydisDecoderDecodeInstruction");
	*(void **)&full_fn = dlsym(h, "ZydisDecoderDecodeFull");
	*(void **)&mode_fn = dlsym(h, "ZydisDecoderEnableMode");
	if (!init_fn || !decode_fn || !full_fn || !mode_fn ||
	    !ZYAN_SUCCESS(init_fn(&decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)) ||
	    !ZYAN_SUCCESS(init_fn(&walker, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)) ||
	    !ZYAN_SUCCESS(mode_fn(&walker, ZYDIS_DECODER_MODE_MINIMAL, ZYAN_TRUE))) {
		cnsmp_log(CNSMP_LOG_DEBUG, "cannot use %s: exits the compiler tail-jumped "
			  "keep calling the hook", ZYDIS_SONAME);
		return;
	}
	ready = 1;
}

CNSMP_NOINST int cnsmp_insn_jumps(const uint8_t *code, size_t len, uintptr_t addr,
				  struct cnsmp_jump *out, size_t max,
				  int (*keep)(const struct cnsmp_jump *, void *), void *arg)
{
	pthread_once(&once, load);
	if (!ready)
		return -1;
	size_t n = 0;
	ZydisDecodedInstruction in;
	for (size_t o = 0; o < len && n < max; o += in.length) {
		/* no context: the operands are not needed, only the raw fields */
		if (!ZYAN_SUCCESS(decode_fn(&walker, NULL, code + o, len - o, &in)))
			break;
		if (in.mnemonic != ZYDIS_MNEMONIC_JMP || in.raw.prefix_count != 0 ||
		    in.opcode_map != ZYDIS_OPCODE_MAP_DEFAULT)
			continue;
		const uint8_t *b = code + o;
		uintptr_t p = addr + o;
		if (in.length == 5 && b[0] == 0xe9) {
			int32_t rel;
			memcpy(&rel, b + 1, 4);
			out[n] = (struct cnsmp_jump){p, p + 5 + (intptr_t)rel, 5, 0};
		} else if (in.length == 6 && b[0] == 0xff && b[1] == 0x25) {
			int32_t disp;
			memcpy(&disp, b + 2, 4);
			out[n] = (struct cnsmp_jump){p, p + 6 + (intptr_t)disp, 6, 1};
		} else {
			continue;
		}
		n += !keep || keep(&out[n], arg);
	}
	return (int)n;
}

static int arg_reg(ZydisRegister r)
{
	return r == ZYDIS_REGISTER_RDI || r == ZYDIS_REGISTER_RSI ||
	       r == ZYDIS_REGISTER_EDI || r == ZYDIS_REGISTER_ESI;
}

static int is_rsi(ZydisRegister r)
{
	return r == ZYDIS_REGISTER_RSI || r == ZYDIS_REGISTER_ESI;
}

/* Does `in` read any part of %rsi (a source register, or an address's
 * base or index), other than by writing all of it? */
static int reads_rsi(const ZydisDecodedInstruction *in, const ZydisDecodedOperand *op)
{
	if (in->mnemonic == ZYDIS_MNEMONIC_XOR && is_rsi(op[0].reg.value))
		return 0; /* xor %esi,%esi: a zero idiom, its only write */
	for (unsigned i = 0; i < in->operand_count; i++) {
		ZydisRegister r[3] = {ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE, ZYDIS_REGISTER_NONE};
		if (op[i].type == ZYDIS_OPERAND_TYPE_REGISTER && (op[i].actions & ZYDIS_OPERAND_ACTION_MASK_READ))
			r[0] = op[i].reg.value;
		else if (op[i].type == ZYDIS_OPERAND_TYPE_MEMORY) {
			r[1] = op[i].mem.base;
			r[2] = op[i].mem.index;
		}
		for (int k = 0; k < 3; k++)
			if (r[k] == ZYDIS_REGISTER_RSI || r[k] == ZYDIS_REGISTER_ESI ||
			    r[k] == ZYDIS_REGISTER_SI || r[k] == ZYDIS_REGISTER_SIL)
				return 1;
	}
	return 0;
}

/* Does any operand write part of %rsi? */
static int writes_rsi(const ZydisDecodedOperand *op, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (op[i].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    (op[i].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) &&
		    (is_rsi(op[i].reg.value) || op[i].reg.value == ZYDIS_REGISTER_SI ||
		     op[i].reg.value == ZYDIS_REGISTER_SIL))
			return 1;
	return 0;
}

/* May `in` go anywhere but to the next instruction? */
static int leaves(const ZydisDecodedInstruction *in)
{
	switch (in->meta.category) {
	case ZYDIS_CATEGORY_COND_BR:
	case ZYDIS_CATEGORY_UNCOND_BR:
	case ZYDIS_CATEGORY_CALL:
	case ZYDIS_CATEGORY_RET:
	case ZYDIS_CATEGORY_SYSCALL:
	case ZYDIS_CATEGORY_INTERRUPT:
	case ZYDIS_CATEGORY_SYSTEM:
		return 1;
	default:
		return 0;
	}
}

/* Does `in` only load an argument register (see cnsmp_insn_calls)? */
static int loads_arg(const ZydisDecodedInstruction *in, const ZydisDecodedOperand *op)
{
	if (in->mnemonic != ZYDIS_MNEMONIC_MOV && in->mnemonic != ZYDIS_MNEMONIC_LEA &&
	    in->mnemonic != ZYDIS_MNEMONIC_XOR)
		return 0;
	if (in->operand_count_visible != 2 || op[0].type != ZYDIS_OPERAND_TYPE_REGISTER ||
	    !arg_reg(op[0].reg.value))
		return 0;
	if (in->mnemonic == ZYDIS_MNEMONIC_XOR &&
	    (op[1].type != ZYDIS_OPERAND_TYPE_REGISTER || op[1].reg.value != op[0].reg.value))
		return 0;
	/* nothing else written but the flags (xor's) */
	for (unsigned i = 1; i < in->operand_count; i++) {
		if (!(op[i].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))
			continue;
		if (op[i].type != ZYDIS_OPERAND_TYPE_REGISTER ||
		    (op[i].reg.value != ZYDIS_REGISTER_RFLAGS && op[i].reg.value != ZYDIS_REGISTER_EFLAGS &&
		     op[i].reg.value != ZYDIS_REGISTER_FLAGS))
			return 0;
	}
	return 1;
}

/* Each instruction is decoded without its operands (fast); only the few
 * right before a call are decoded again with them, from a ring of the
 * last RING instructions' offsets. */
#define RING 8

CNSMP_NOINST int cnsmp_insn_calls(const uint8_t *code, size_t len, uintptr_t addr,
				  struct cnsmp_call *out, size_t max)
{
	pthread_once(&once, load);
	if (!ready)
		return -1;
	size_t n = 0, ring[RING], nring = 0;
	ZydisDecodedInstruction in;
	ZydisDecodedOperand op[ZYDIS_MAX_OPERAND_COUNT];
	for (size_t o = 0; o < len && n < max; o += in.length) {
		if (!ZYAN_SUCCESS(decode_fn(&walker, NULL, code + o, len - o, &in)))
			break;
		const uint8_t *b = code + o + (in.length == 6 && code[o] == 0x67);
		int call = in.mnemonic == ZYDIS_MNEMONIC_CALL &&
			   ((b[0] == 0xe8 && code + o + in.length == b + 5) ||
			    (in.length == 6 && b[0] == 0xff && b[1] == 0x15));
		int jump = in.mnemonic == ZYDIS_MNEMONIC_JMP && in.raw.prefix_count == 0 &&
			   ((in.length == 5 && b[0] == 0xe9) ||
			    (in.length == 6 && b[0] == 0xff && b[1] == 0x25));
		if (call || jump) {
			struct cnsmp_call c = {.ret = addr + o + in.length, .jump = (uint8_t)jump};
			/* still in the set-up (a jump has none); still looking for arg */
			int setup = call, look = 1;
			for (size_t k = 0; k < nring && k < RING && (setup || look); k++) {
				size_t p = ring[(nring - 1 - k) % RING];
				ZydisDecodedInstruction pi;
				if (!ZYAN_SUCCESS(full_fn(&decoder, code + p, len - p, &pi, op)))
					break;
				int load = loads_arg(&pi, op);
				setup &= load;
				if (setup)
					c.from = addr + p;
				if (!look)
					continue;
				if (load && is_rsi(op[0].reg.value)) {
					c.arg = addr + p;
					c.arg_len = pi.length;
				}
				look = !c.arg && !reads_rsi(&pi, op) && !writes_rsi(op, pi.operand_count) &&
				       !leaves(&pi);
			}
			out[n++] = c;
		}
		ring[nring++ % RING] = o;
	}
	return (int)n;
}

#else /* other architectures: nothing to decode (patch.c patches nothing) */

CNSMP_NOINST int cnsmp_insn_jumps(const uint8_t *code, size_t len, uintptr_t addr,
				  struct cnsmp_jump *out, size_t max,
				  int (*keep)(const struct cnsmp_jump *, void *), void *arg)
{
	(void)code; (void)len; (void)addr; (void)out; (void)max; (void)keep; (void)arg;
	return -1;
}

CNSMP_NOINST int cnsmp_insn_calls(const uint8_t *code, size_t len, uintptr_t addr,
				  struct cnsmp_call *out, size_t max)
{
	(void)code; (void)len; (void)addr; (void)out; (void)max;
	return -1;
}

#endif
