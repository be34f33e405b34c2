/* latecurl: a program that starts using OpenSSL only after the runtime has
 * started: it dlopen()s the system's libcurl and initialises it, which
 * registers OpenSSL's exit cleanup after the runtime's exit hook, so
 * OpenSSL is shut down before the runtime's final send.
 *
 *   latecurl N [late]   -> "latecurl: N steps" (with "late": then libcurl)
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int step(int i)
{
	return i % 7;
}

__attribute__((no_instrument_function))
static int late_curl(void)
{
	void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return -1;
	int (*init)(long) = (int (*)(long))dlsym(h, "curl_global_init");
	void (*cleanup)(void) = (void (*)(void))dlsym(h, "curl_global_cleanup");
	if (!init || !cleanup || init(3 /* CURL_GLOBAL_DEFAULT */) != 0)
		return -1;
	cleanup();
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 0, sum = 0;
	for (int i = 0; i < n; i++)
		sum += step(i);
	if (argc > 2 && strcmp(argv[2], "late") == 0 && late_curl() != 0) {
		fprintf(stderr, "latecurl: cannot initialise libcurl.so.4\n");
		return 1;
	}
	printf("latecurl: %d steps\n", n);
	return sum < 0;
}
