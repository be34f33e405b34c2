/* apicall.h: one HTTP request to codensm-server's JSON API, shared by the
 * CLI's commands (report, probe). */
#ifndef CODENSM_CLI_APICALL_H
#define CODENSM_CLI_APICALL_H

#include <curl/curl.h>
#include <jansson.h>

struct cli_answer {
	CURLcode rc;     /* CURLE_OK once an answer came */
	long status;     /* its HTTP status */
	json_t *json;    /* its body parsed, or NULL (not JSON, no answer) */
	char *text;      /* its body as text, never NULL */
};

/* `method` `url` with `Authorization: Bearer key` and, when body is not
 * NULL, that JSON text; 3 s to connect, 10 s in all.  -1 when libcurl
 * cannot start, else 0 with *a filled (free it with cli_answer_free). */
int cli_api_call(const char *method, const char *url, const char *key, const char *body,
		 struct cli_answer *a);
void cli_answer_free(struct cli_answer *a);

#endif
