/* loader.c: "loader N LIB..." dlopen()s each library in turn, calls its
 * plugin_entry(N), and dlclose()s it before the next one; it prints where
 * each plugin_entry was, so a test can see two libraries share an address. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 0;

	for (int i = 2; i < argc; i++) {
		void *h = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			fprintf(stderr, "loader: %s\n", dlerror());
			return 1;
		}
		long (*entry)(int) = (long (*)(int))dlsym(h, "plugin_entry");
		if (!entry) {
			fprintf(stderr, "loader: %s\n", dlerror());
			return 1;
		}
		entry(n);
		printf("%d at %p\n", i - 1, (void *)entry);
		dlclose(h);
	}
	return 0;
}
