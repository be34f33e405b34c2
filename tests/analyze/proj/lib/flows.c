/* Sample functions for tests/analyze: one or more per node kind; the
 * expected flows are derived by hand in tests/analyze/test_flows.py. */
#include <stdlib.h>

#include "codensm.h"

int straight(int a)
{
	int b = a + 1;
	b *= 2;
	return b;
}

void nothing(void)
{
}

int classify(int x)
{
	if (x < 0)
		return -1;
	else if (x == 0)
		return 0;
	else
		x = x * 2;
	return x > 10 && x < 100 ? 2 : 1;
}

int pick(int op, int v)
{
	switch (op) {
	case 1:
	case 2:
		v++;
		break;
	case 3:
		v--;
		/* fall through */
	case 4:
		v *= 2;
		break;
	default:
		v = 0;
	}
	return v;
}

int loops(int n)
{
	int s = 0;
	for (int i = 0; i < n; i++)
		s += i;
	while (s > 100) {
		if (s == 150)
			break;
		s /= 2;
	}
	do {
		s++;
	} while (s < 10);
	return s;
}

int retry(int n)
{
again:
	n--;
	if (n > 0)
		goto again;
	return n;
}

int setup(int fd)
{
	char *a = malloc(16);
	if (!a)
		goto err;
	if (fd < 0)
		goto out_free;
	free(a);
	return 0;
out_free:
	free(a);
err:
	return -1;
}

int checked(int v)
{
	if (v < 0) {
		codensm_error();
		return -1;
	}
	if (v > 1000)
		abort();
	if (v == 999)
		exit(3);
	if (v == 998)
		exit(0);
	return straight(v) + classify(v);
}
