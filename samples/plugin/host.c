/* host.c: loads the discounts plugin with dlopen(), runs it, closes it,
 * then does it all again: the runtime has to forget the closed library's
 * addresses and name its functions afresh on the second load.
 *
 * Usage: host PLUGIN.so [N]   (N rounds of rule_apply per load, default 100)
 * Workload: discounts.rules.plugin_run 2 calls, discounts.rules.rule_apply
 * 2 * N calls, host.run_once 2 calls. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static long run_once(const char *path, int n)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "host: cannot load '%s': %s\n", path, dlerror());
		return -1;
	}
	long (*run)(int) = (long (*)(int))dlsym(h, "plugin_run");
	long sum = run ? run(n) : -1;
	dlclose(h);
	return sum;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: host PLUGIN.so [N]\n");
		return 2;
	}
	int n = argc > 2 ? atoi(argv[2]) : 100;
	long a = run_once(argv[1], n), b = run_once(argv[1], n);
	printf("host: rounds=%d first=%ld second=%ld\n", n, a, b);
	return a < 0 || b < 0;
}
