/* wanderer: changes folder to / before doing anything, as daemons do.
 *   wanderer N  -> step() N times; exact: main 1, step N */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile long sink;

void step(int i)
{
	sink += i;
}

int main(int argc, char **argv)
{
	if (argc != 2 || chdir("/") != 0)
		return 2;
	int n = atoi(argv[1]);
	for (int i = 0; i < n; i++)
		step(i);
	printf("wanderer: %d steps\n", n);
	return 0;
}
