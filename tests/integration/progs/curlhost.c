/* curlhost: a program that uses the system's libcurl itself, as many do,
 * while the runtime loads the same library for its own sends.  Each fetch
 * reads a file:// URL: the program's transfers and the runtime's share one
 * copy of libcurl (and curl_global_init) without disturbing each other.
 *
 *   curlhost URL N   -> "curlhost: N fetches, B bytes, last: <curl error>"
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((no_instrument_function))
static size_t sink(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	*(size_t *)arg += size * n;
	return size * n;
}

static CURLcode fetch(const char *url, size_t *bytes)
{
	CURL *c = curl_easy_init();
	if (!c)
		return CURLE_FAILED_INIT;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, bytes);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int n = atoi(argv[2]);
	size_t bytes = 0;
	CURLcode rc = CURLE_OK;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (int i = 0; i < n; i++)
		rc = fetch(argv[1], &bytes);
	printf("curlhost: %d fetches, %zu bytes, last: %s\n", n, bytes, curl_easy_strerror(rc));
	curl_global_cleanup();
	return rc == CURLE_OK ? 0 : 1;
}
