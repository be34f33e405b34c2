/* test_insn.c: insn.c's decoding for call-site patching: the jumps found
 * in a function's code (tail jumps to the exit hook among them), and the
 * argument set-up found before each call, which a patched jump may skip
 * only when every instruction of it loads nothing but %rdi/%rsi. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "insn.h"
#include "internal.h"

#define AT 0x400000u

static void jumps_are_found_at_instruction_boundaries(void **state)
{
	(void)state;
	static const uint8_t code[] = {
		0x53,                               /* 0:  push %rbx */
		0x48, 0xc7, 0xc0, 0xe9, 0, 0, 0,    /* 1:  mov $0xe9,%rax (an e9 byte inside) */
		0xeb, 0x03,                         /* 8:  jmp +3 (rel8: not recorded) */
		0x0f, 0x84, 0x10, 0, 0, 0,          /* 10: jz rel32 (conditional: not recorded) */
		0x5b,                               /* 16: pop %rbx */
		0xe9, 0x00, 0x01, 0, 0,             /* 17: jmp rel32 to 22 + 0x100 */
		0xff, 0x25, 0x08, 0, 0, 0,          /* 22: jmp *8(%rip): slot at 36 */
		0x3e, 0xff, 0x25, 0, 0, 0, 0,       /* 28: notrack jmp *(%rip): a prefix, not recorded */
	};
	struct cnsmp_jump j[8];
	int n = cnsmp_insn_jumps(code, sizeof code, AT, j, 8, NULL, NULL);
	assert_int_equal(n, 2);
	assert_true(j[0].at == AT + 17 && j[0].dest == AT + 22 + 0x100 && j[0].len == 5 &&
		    !j[0].mem);
	assert_true(j[1].at == AT + 22 && j[1].dest == AT + 36 && j[1].len == 6 && j[1].mem);
}

static int to_second_target(const struct cnsmp_jump *j, void *arg)
{
	return j->dest == *(const uintptr_t *)arg;
}

/* Only the jumps `keep` wants count against `max`: the jump to the hook
 * after many others (a large function's) is still found. */
static void only_kept_jumps_are_stored(void **state)
{
	(void)state;
	uint8_t code[5 * 40];
	for (int i = 0; i < 40; i++) {
		int32_t rel = i == 37 ? 0x2000 : 0x1000;
		code[5 * i] = 0xe9;
		memcpy(code + 5 * i + 1, &rel, 4);
	}
	uintptr_t want = AT + 5 * 37 + 5 + 0x2000;
	struct cnsmp_jump j[2];
	assert_int_equal(cnsmp_insn_jumps(code, sizeof code, AT, j, 2, to_second_target, &want), 1);
	assert_true(j[0].at == AT + 5 * 37 && j[0].dest == want);
	assert_int_equal(cnsmp_insn_jumps(code, sizeof code, AT, j, 2, NULL, NULL), 2);
}

static void decoding_stops_at_bytes_that_are_no_instruction(void **state)
{
	(void)state;
	static const uint8_t code[] = {
		0x06,                               /* push %es: invalid in 64-bit mode */
		0xe9, 0, 0, 0, 0,
	};
	struct cnsmp_jump j[2];
	assert_int_equal(cnsmp_insn_jumps(code, sizeof code, AT, j, 2, NULL, NULL), 0);
}

/* Each of the n calls c[] against want[]: its return address, set-up
 * start, load of %rsi and that load's length, as offsets (-1: none). */
static void assert_calls(const struct cnsmp_call *c, int n, const int (*want)[4])
{
	for (int i = 0; i < n; i++) {
		assert_int_equal(c[i].ret, AT + want[i][0]);
		assert_int_equal(c[i].from, want[i][1] < 0 ? 0 : AT + want[i][1]);
		assert_int_equal(c[i].arg, want[i][2] < 0 ? 0 : AT + want[i][2]);
		assert_int_equal(c[i].arg_len, want[i][3]);
	}
}

static void set_up_of_only_argument_loads_is_found(void **state)
{
	(void)state;
	static const uint8_t code[] = {
		0x53,                               /* 0:  push %rbx */
		0x48, 0x8d, 0x1d, 0xf8, 0xff, 0xff, 0xff, /* 1: lea -8(%rip),%rbx */
		0x48, 0x8b, 0x74, 0x24, 0x08,       /* 8:  mov 8(%rsp),%rsi */
		0x48, 0x89, 0xdf,                   /* 13: mov %rbx,%rdi */
		0xe8, 0, 0, 0, 0,                   /* 16: call: set-up from 8 */
		0x48, 0x89, 0xc3,                   /* 21: mov %rax,%rbx (not an argument) */
		0x31, 0xf6,                         /* 24: xor %esi,%esi */
		0x48, 0x8d, 0x3d, 0x10, 0, 0, 0,    /* 26: lea 0x10(%rip),%rdi */
		0xff, 0x15, 0, 0, 0, 0,             /* 33: call *(%rip): set-up from 24 */
		0x31, 0xf7,                         /* 39: xor %esi,%edi (not a load of its own) */
		0xe8, 0, 0, 0, 0,                   /* 41: call: no set-up */
		0x48, 0x89, 0x3b,                   /* 46: mov %rdi,(%rbx) (a store) */
		0x67, 0xe8, 0, 0, 0, 0,             /* 49: addr32 call: no set-up */
		0x48, 0x89, 0xfe,                   /* 55: mov %rdi,%rsi */
		0x0f, 0xb6, 0xf8,                   /* 58: movzbl %al,%edi (not mov/lea/xor) */
		0xe8, 0, 0, 0, 0,                   /* 61: call: no set-up */
	};
	struct cnsmp_call c[8];
	int n = cnsmp_insn_calls(code, sizeof code, AT, c, 8);
	assert_int_equal(n, 5);
	int want[5][4] = {{21, 8, 8, 5}, {39, 24, 24, 2}, {46, -1, -1, 0}, {55, -1, -1, 0},
			  {66, -1, 55, 3}};
	assert_calls(c, n, want);
}

/* The load of %rsi that may become a NOP is the last one of the set-up,
 * and only when nothing after it in the set-up reads %rsi. */
static void load_of_second_argument_only_when_unread(void **state)
{
	(void)state;
	static const uint8_t code[] = {
		0x48, 0x8b, 0xb4, 0x24, 0x48, 0x06, 0, 0, /* 0: mov 0x648(%rsp),%rsi */
		0xbf, 0x10, 0, 0, 0,                /* 8:  mov $0x10,%edi */
		0xe8, 0, 0, 0, 0,                   /* 13: call: %rsi's load at 0 */
		0x48, 0x8b, 0x74, 0x24, 0x08,       /* 18: mov 8(%rsp),%rsi */
		0x48, 0x8d, 0x3e,                   /* 23: lea (%rsi),%rdi: reads it */
		0xe8, 0, 0, 0, 0,                   /* 26: call: set-up from 18, no load */
		0x48, 0x89, 0xde,                   /* 31: mov %rbx,%rsi (dead) */
		0x48, 0x89, 0xee,                   /* 34: mov %rbp,%rsi: the last */
		0x48, 0x89, 0xdf,                   /* 37: mov %rbx,%rdi */
		0xe8, 0, 0, 0, 0,                   /* 40: call: %rsi's load at 34 */
		0x48, 0x89, 0xdf,                   /* 45: mov %rbx,%rdi alone */
		0xe8, 0, 0, 0, 0,                   /* 48: call: set-up, no load */
	};
	struct cnsmp_call c[8];
	int n = cnsmp_insn_calls(code, sizeof code, AT, c, 8);
	assert_int_equal(n, 4);
	int want[4][4] = {{18, 0, 0, 8}, {31, 18, -1, 0}, {45, 31, 34, 3}, {53, 45, -1, 0}};
	assert_calls(c, n, want);
}

/* A load of %rsi before the set-up still counts when what lies between
 * neither touches %rsi nor branches (gcc's entry: the load, then the
 * function's own argument saved, then %rdi). */
static void load_of_second_argument_before_the_set_up(void **state)
{
	(void)state;
	static const uint8_t code[] = {
		0x48, 0x8b, 0x74, 0x24, 0x18,       /* 0:  mov 0x18(%rsp),%rsi */
		0x89, 0xfb,                         /* 5:  mov %edi,%ebx */
		0x48, 0x89, 0xef,                   /* 7:  mov %rbp,%rdi */
		0xe8, 0, 0, 0, 0,                   /* 10: call: load at 0 */
		0x48, 0x8b, 0x74, 0x24, 0x18,       /* 15: mov 0x18(%rsp),%rsi */
		0x75, 0x00,                         /* 20: jne 22: a branch */
		0x48, 0x89, 0xef,                   /* 22: mov %rbp,%rdi */
		0xe8, 0, 0, 0, 0,                   /* 25: call: no load */
		0x48, 0x8b, 0x74, 0x24, 0x18,       /* 30: mov 0x18(%rsp),%rsi */
		0x48, 0x83, 0xc6, 0x08,             /* 35: add $8,%rsi: read and written */
		0x48, 0x89, 0xef,                   /* 39: mov %rbp,%rdi */
		0xe8, 0, 0, 0, 0,                   /* 42: call: no load */
		0x48, 0x8b, 0x74, 0x24, 0x18,       /* 47: mov 0x18(%rsp),%rsi */
		0x40, 0x88, 0xc6,                   /* 52: mov %al,%sil: written in part */
		0xe8, 0, 0, 0, 0,                   /* 55: call: no load */
	};
	struct cnsmp_call c[8];
	int n = cnsmp_insn_calls(code, sizeof code, AT, c, 8);
	assert_int_equal(n, 4);
	int want[4][4] = {{15, 7, 0, 5}, {30, 22, -1, 0}, {47, 39, -1, 0}, {60, -1, -1, 0}};
	assert_calls(c, n, want);
}

/* An exit the compiler tail-jumped to the hook: its frame torn down
 * between the load and the jump, nothing touching %rsi. */
static void load_before_a_tail_jump(void **state)
{
	(void)state;
	static const uint8_t code[] = {
		0x48, 0x8b, 0x74, 0x24, 0x18,       /* 0:  mov 0x18(%rsp),%rsi */
		0x48, 0x83, 0xc4, 0x08,             /* 5:  add $8,%rsp */
		0x48, 0x89, 0xef,                   /* 9:  mov %rbp,%rdi */
		0x5b,                               /* 12: pop %rbx */
		0x5d,                               /* 13: pop %rbp */
		0xe9, 0, 0, 0, 0,                   /* 14: jmp: load at 0 */
		0xeb, 0x00,                         /* 19: jmp short: not listed */
		0xff, 0x25, 0, 0, 0, 0,             /* 21: jmp *(%rip): no load */
	};
	struct cnsmp_call c[4];
	int n = cnsmp_insn_calls(code, sizeof code, AT, c, 4);
	assert_int_equal(n, 2);
	assert_int_equal(c[0].ret, AT + 19);
	assert_int_equal(c[0].jump, 1);
	assert_int_equal(c[0].from, 0);
	assert_int_equal(c[0].arg, AT);
	assert_int_equal(c[0].arg_len, 5);
	assert_int_equal(c[1].ret, AT + 27);
	assert_int_equal(c[1].jump, 1);
	assert_int_equal(c[1].arg, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(jumps_are_found_at_instruction_boundaries),
		cmocka_unit_test(only_kept_jumps_are_stored),
		cmocka_unit_test(decoding_stops_at_bytes_that_are_no_instruction),
		cmocka_unit_test(set_up_of_only_argument_loads_is_found),
		cmocka_unit_test(load_of_second_argument_only_when_unread),
		cmocka_unit_test(load_of_second_argument_before_the_set_up),
		cmocka_unit_test(load_before_a_tail_jump),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
