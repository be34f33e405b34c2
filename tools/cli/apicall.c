/* apicall.c: see apicall.h. */
#include <stdlib.h>
#include <string.h>

#include "apicall.h"

struct buf {
	char *p;
	size_t n;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;
	char *p = realloc(b->p, b->n + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->n, data, n);
	b->p = p;
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

int cli_api_call(const char *method, const char *url, const char *key, const char *body,
		 struct cli_answer *a)
{
	char auth[512];
	struct buf b = { 0 };
	struct curl_slist *h = NULL;
	CURL *c = curl_easy_init();
	memset(a, 0, sizeof *a);
	if (!c)
		return -1;
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
	h = curl_slist_append(h, auth);
	if (body)
		h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	else if (!strcmp(method, "POST"))
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	a->rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
	a->text = b.p ? b.p : strdup("");
	if (a->rc == CURLE_OK && a->text)
		a->json = json_loadb(a->text, b.n, 0, NULL);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return a->text ? 0 : -1;
}

void cli_answer_free(struct cli_answer *a)
{
	json_decref(a->json);
	free(a->text);
	memset(a, 0, sizeof *a);
}
