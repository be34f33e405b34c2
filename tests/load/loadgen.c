/* loadgen.c: a load generator for codensm-server's ingest: CONNECTIONS
 * threads, each with one keep-alive libcurl connection, post realistic
 * runtime payloads (docs/payload.md) for SECONDS, and log every request:
 *
 *     BATCH_ID STATUS LATENCY_US NAME:CALLS:ERRORS:TOTAL_MS ...
 *
 * STATUS is the HTTP status, "refused" when the last connect was refused
 * (the server is down) or "lost" when no answer came (a server killed
 * mid-request).  Either may or may not have been applied: libcurl resends
 * a request once on a fresh connection when a reused one dies, and the
 * first attempt may have been committed.  Every batch id is distinct
 * and every payload is a pure function of (thread, seq), so a checker can
 * compare the store with exactly what was acknowledged.
 *
 * URL may be several, comma-separated (servers sharing one store): thread t
 * posts to the (t mod n)th, as a load balancer spreading keep-alive
 * connections would.
 *
 * usage: loadgen URL[,URL...] KEY SECONDS CONNECTIONS LOG
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>

#define FUNCTIONS 50   /* distinct names the payloads draw from */
#define PER_BATCH 5    /* functions in one payload */
#define MAX_URLS 16

static const char *urls[MAX_URLS], *key;
static unsigned nurls;
static double deadline;
static FILE *out;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
	return size * n;
}

/* One payload as the runtime builds it: functions with self/max times and
 * a histogram, the edges between them, and _meta with a unique batch id.
 * `line` receives the log's description of what the payload carries. */
static int payload(unsigned t, unsigned seq, char *buf, size_t len, char *line, size_t llen)
{
	double end = now();
	size_t o = 0, lo = 0;
	unsigned idx[PER_BATCH];
	o += snprintf(buf + o, len - o, "{\"functions\":[");
	lo += snprintf(line + lo, llen - lo, "load-%u-%u", t, seq);
	for (unsigned k = 0; k < PER_BATCH; k++) {
		idx[k] = (seq * 5 + k * 7 + t) % FUNCTIONS;   /* 5 distinct names */
		unsigned calls = 1 + (seq * 31 + k * 17 + t * 13) % 97;
		unsigned errors = calls % 5 == 0 ? calls / 5 : 0;
		double total = calls * 0.25;                    /* exact in binary */
		o += snprintf(buf + o, len - o,
			      "%s{\"name\":\"load.d%u.fn%u\",\"department\":\"d%u\",\"value_weight\":2,"
			      "\"calls\":%u,\"errors\":%u,\"total_ms\":%.2f,\"self_ms\":%.2f,"
			      "\"max_ms\":1.5,\"hist\":[[38,%u],[40,%u]],\"file\":\"load/d%u.c\",\"line\":%u}",
			      k ? "," : "", idx[k] % 5, idx[k], idx[k] % 5, calls, errors, total,
			      total / 2, calls - errors, errors, idx[k] % 5, 10 + idx[k]);
		lo += snprintf(line + lo, llen - lo, " load.d%u.fn%u:%u:%u:%.2f", idx[k] % 5, idx[k],
			       calls, errors, total);
	}
	o += snprintf(buf + o, len - o, "],\"edges\":[");
	for (unsigned k = 0; k + 1 < PER_BATCH; k++)
		o += snprintf(buf + o, len - o, "%s{\"caller\":\"load.d%u.fn%u\",\"callee\":\"load.d%u.fn%u\",\"calls\":1}",
			      k ? "," : "", idx[k] % 5, idx[k], idx[k + 1] % 5, idx[k + 1]);
	o += snprintf(buf + o, len - o,
		      "],\"_meta\":{\"sdk\":\"codensm-loadgen\",\"version\":\"0.1.0\",\"service\":\"loadgen\","
		      "\"host\":\"localhost\",\"pid\":%d,\"interval\":[%.1f,%.1f],\"dropped\":0,"
		      "\"repairs\":0,\"batch_id\":\"load-%u-%u\",\"hist\":\"log2x2-ns\"}}",
		      (int)getpid(), end - 15, end, t, seq);
	return o < len && lo < llen ? 0 : -1;
}

static void *client(void *arg)
{
	unsigned t = (unsigned)(size_t)arg;
	char body[8192], line[1024], auth[160];
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, urls[t % nurls]);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	for (unsigned seq = 0; now() < deadline; seq++) {
		if (payload(t, seq, body, sizeof body, line, sizeof line) < 0)
			abort();
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		double t0 = now();
		CURLcode rc = curl_easy_perform(c);
		long status = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		char st[16];
		if (rc == CURLE_OK)
			snprintf(st, sizeof st, "%ld", status);
		else
			snprintf(st, sizeof st, "%s", rc == CURLE_COULDNT_CONNECT ? "refused" : "lost");
		pthread_mutex_lock(&log_lock);
		char *sp = strchr(line, ' ');
		fprintf(out, "%.*s %s %.0f%s\n", (int)(sp - line), line, st, (now() - t0) * 1e6, sp);
		pthread_mutex_unlock(&log_lock);
		if (rc == CURLE_COULDNT_CONNECT)
			usleep(20000);  /* the server is down: do not spin */
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: loadgen URL[,URL...] KEY SECONDS CONNECTIONS LOG\n");
		return 2;
	}
	for (char *u = strtok(argv[1], ","); u && nurls < MAX_URLS; u = strtok(NULL, ","))
		urls[nurls++] = u;
	if (!nurls) {
		fprintf(stderr, "loadgen: no URL in '%s'\n", argv[1]);
		return 2;
	}
	key = argv[2];
	deadline = now() + atof(argv[3]);
	int n = atoi(argv[4]);
	if (n < 1 || n > 4096 || !(out = fopen(argv[5], "w"))) {
		fprintf(stderr, "loadgen: bad connections '%s' or cannot write '%s'\n", argv[4], argv[5]);
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_t *th = calloc((size_t)n, sizeof *th);
	for (int i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, client, (void *)(size_t)i)) {
			fprintf(stderr, "loadgen: cannot start thread %d\n", i);
			return 1;
		}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	fclose(out);
	curl_global_cleanup();
	return 0;
}
