/* errors.c: the corners of codensm_error() and of manual tracking.
 *  err_twice        calls codensm_error() twice: one error
 *  err_outer        calls err_inner, which fails: only err_inner errs
 *  err_after_inner  errs after a callee returned: only itself errs
 *  manual_charge    not instrumented; tracked with CODENSM_TRACK as
 *                   "manual.charge", department "billing", weight 7,
 *                   and fails every 4th call
 *  err_jump         longjmp()s out of err_deep: the shadow stack repairs
 * Exact for argv[1] = N: err_twice N calls (N errors), err_outer N (0),
 * err_inner 2N (2N), err_after_inner N (N), manual.charge N (N/4 errors:
 * i % 4 == 3), err_jump N (0), err_deep N (0), err_after_jump N (0),
 * main 1 (0); edge main -> err_after_jump N (the stack was repaired). */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include "codensm.h"

static jmp_buf env;
static volatile long sink;

void err_twice(void)
{
	codensm_error();
	codensm_error();
}

void err_inner(void)
{
	codensm_error();
}

void err_outer(void)
{
	err_inner();
	sink++;
}

void err_after_inner(void)
{
	err_inner();
	codensm_error();
}

__attribute__((no_instrument_function)) void manual_charge(int i)
{
	CODENSM_TRACK("manual.charge", "billing", 7);
	if (i % 4 == 3)
		codensm_error();
}

void err_deep(int i)
{
	if (i >= 0)
		longjmp(env, 1);
}

void err_jump(int i)
{
	if (setjmp(env) == 0)
		err_deep(i);
}

void err_after_jump(void)
{
	sink++;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100;

	for (int i = 0; i < n; i++) {
		err_twice();
		err_outer();
		err_after_inner();
		manual_charge(i);
		err_jump(i);
		err_after_jump();
	}
	printf("errors: %d\n", n);
	return 0;
}
