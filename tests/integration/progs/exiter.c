/* exiter.c: main calls exit_outer N times, then exit_outer calls exit_inner,
 * which leaves the program with exit(3) while main, exit_outer and
 * exit_inner are still on the stack.  Usage: exiter N.  Expected: exit
 * status 3, exit_outer and exit_inner N+1 calls, main 1: calls still open
 * when the program exits end with it and are counted. */
#include <stdio.h>
#include <stdlib.h>

static volatile int sink;

void exit_inner(int last)
{
	sink++;
	if (last) {
		fflush(stdout);
		exit(3);
	}
}

void exit_outer(int last)
{
	exit_inner(last);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10;
	for (int i = 0; i < n; i++)
		exit_outer(0);
	printf("exiter: %d\n", n);
	exit_outer(1);
	return 0;
}
