/* roamer: changes folder to / and only then calls into its library (lib/
 * libstepper.so, found through a relative LD_LIBRARY_PATH), so the first
 * hook runs after the chdir: main itself is not instrumented.
 *   roamer N  -> stride() N times; exact: stepper.stride N */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void stride(int i);

__attribute__((no_instrument_function)) int main(int argc, char **argv)
{
	if (argc != 2 || chdir("/") != 0)
		return 2;
	int n = atoi(argv[1]);
	for (int i = 0; i < n; i++)
		stride(i);
	printf("roamer: %d strides\n", n);
	return 0;
}
