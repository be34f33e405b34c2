/* transport.c: one POST of one body to the ingest endpoint, and the
 * contract's reading of the answer (docs/payload.md, "Answers").
 *
 * One curl easy handle per calling thread (in practice: the flusher) is
 * kept and reused, so a connection stays alive between flushes.  Signals
 * are off (CURLOPT_NOSIGNAL: the host program owns its signals), TLS is
 * verified with libcurl's defaults plus CODENSM_CA_FILE when set.
 *
 * The one distinction that matters for "never lost, never twice" is
 * whether the server may have committed the body: FAILED_CLEAN means it
 * certainly did not (nothing was sent, or it answered 5xx), FAILED_UNSURE
 * means bytes went out and no answer came back.  When in doubt, UNSURE:
 * resending the same body is always safe (the server dedups the batch
 * id); merging it into new data is only safe when nothing arrived.
 *
 * libcurl is not linked: the system's is dlopen()ed by the first send, on
 * the flusher thread, so a program that never sends never pays for loading
 * it and the libraries it brings.  The header still gives the types and
 * constants.
 *
 * Within a deadline (the final flush at exit, codensm_flush) a post that
 * met a transient failure is tried again at once: see cnsmp_transport_post_until.
 *
 * The transfer runs on a multi handle polled every POLL_MS, not with
 * curl_easy_perform: that one waits up to a second between progress
 * callbacks, so a request in flight when the program exits noticed the
 * stop deadline up to a second late, past the flusher's grace.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define CURL_DISABLE_TYPECHECK /* the calls go through pointers (below) */
#include <curl/curl.h>
#include <jansson.h>
#include "internal.h"

#define CONNECT_TIMEOUT_MS 2000
/* An answer may carry the project's probe specs (docs/probes.md): room
 * for a few hundred; a longer answer is cut and its probes ignored. */
#define ANSWER_MAX 65536
#define POLL_MS 50

/* Retries within a deadline (cnsmp_transport_post_until). */
#define RETRY_ATTEMPTS 4          /* tries of one body, the first included */
#define RETRY_FIRST_MS 50         /* back-off before the first retry, doubled after */
#define RETRY_MIN_MS 250          /* a try given less time than this is not started */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_ok;
static _Thread_local CURL *tls_curl;
static _Thread_local CURLM *tls_multi; /* holds the connection cache */
static _Thread_local long tls_status;
static _Thread_local int tls_transient; /* the last post's failure may pass */
static _Thread_local char *tls_answer; /* the last 2xx answer's text, or NULL */
static _Atomic uint64_t deadline_ns;

/* Outage logging: one line when the endpoint becomes unreachable, not one
 * per flush; reset by the next delivery. */
static _Atomic int outage_logged, key_logged, quota_logged;

struct answer {
	char buf[ANSWER_MAX];
	size_t n;
};

/* The libcurl functions used here, resolved once by global_init. */
static struct {
	CURLcode (*global_init)(long);
	CURL *(*easy_init)(void);
	void (*easy_reset)(CURL *);
	void (*easy_cleanup)(CURL *);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	const char *(*easy_strerror)(CURLcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	/* Optional (curl_multi_poll is 7.66+): curl_easy_perform without them. */
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_add_handle)(CURLM *, CURL *);
	CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
	CURLMcode (*multi_perform)(CURLM *, int *);
	CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned, int, int *);
	CURLMsg *(*multi_info_read)(CURLM *, int *);
	CURLMcode (*multi_cleanup)(CURLM *);
} cu;

#undef curl_easy_setopt /* curl.h maps them to themselves */
#undef curl_easy_getinfo
#define curl_easy_init cu.easy_init
#define curl_easy_reset cu.easy_reset
#define curl_easy_cleanup cu.easy_cleanup
#define curl_easy_setopt cu.easy_setopt
#define curl_easy_perform cu.easy_perform
#define curl_easy_getinfo cu.easy_getinfo
#define curl_easy_strerror cu.easy_strerror
#define curl_slist_append cu.slist_append
#define curl_slist_free_all cu.slist_free_all

/* Every function used here, from h; the name of the first one h lacks,
 * or NULL.  The multi interface is optional (see perform). */
CNSMP_NOINST static const char *bind_curl(void *h)
{
	struct { void **slot; const char *name; } fns[] = {
		{ (void **)&cu.global_init, "curl_global_init" },
		{ (void **)&cu.easy_init, "curl_easy_init" },
		{ (void **)&cu.easy_reset, "curl_easy_reset" },
		{ (void **)&cu.easy_cleanup, "curl_easy_cleanup" },
		{ (void **)&cu.easy_setopt, "curl_easy_setopt" },
		{ (void **)&cu.easy_perform, "curl_easy_perform" },
		{ (void **)&cu.easy_getinfo, "curl_easy_getinfo" },
		{ (void **)&cu.easy_strerror, "curl_easy_strerror" },
		{ (void **)&cu.slist_append, "curl_slist_append" },
		{ (void **)&cu.slist_free_all, "curl_slist_free_all" },
	};
	for (size_t i = 0; i < sizeof fns / sizeof *fns; i++)
		if (!(*fns[i].slot = dlsym(h, fns[i].name)))
			return fns[i].name;
	struct { void **slot; const char *name; } multi[] = {
		{ (void **)&cu.multi_init, "curl_multi_init" },
		{ (void **)&cu.multi_add_handle, "curl_multi_add_handle" },
		{ (void **)&cu.multi_remove_handle, "curl_multi_remove_handle" },
		{ (void **)&cu.multi_perform, "curl_multi_perform" },
		{ (void **)&cu.multi_poll, "curl_multi_poll" },
		{ (void **)&cu.multi_info_read, "curl_multi_info_read" },
		{ (void **)&cu.multi_cleanup, "curl_multi_cleanup" },
	};
	for (size_t i = 0; i < sizeof multi / sizeof *multi; i++) {
		if (!(*multi[i].slot = dlsym(h, multi[i].name))) {
			cu.multi_init = NULL;
			break;
		}
	}
	return NULL;
}

/* The first of the system's libcurls that loads and has every function,
 * under each name Debian gives it; NULL, said in one line, if none does. */
CNSMP_NOINST static void *open_curl(void)
{
	static const char *const names[] = { "libcurl.so.4", "libcurl-gnutls.so.4",
					     "libcurl-nss.so.4" };
	char why[256] = "";
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		const char *missing = h ? bind_curl(h) : NULL;
		if (h && !missing)
			return h;
		if (h) {
			snprintf(why, sizeof why, "%s has no %s", names[i], missing);
			dlclose(h);
		} else if (!why[0]) { /* the first name's reason: "NAME: reason" */
			snprintf(why, sizeof why, "%s", dlerror());
		}
	}
	cnsmp_log(CNSMP_LOG_INFO, "cannot load libcurl (%s): counting, not sending; "
		  "install the libcurl4 package", why);
	return NULL;
}

#define OSSL_INIT_BASE_ONLY 0x00040000L /* OpenSSL's flags (crypto.h): */
#define OSSL_INIT_NO_ATEXIT 0x00080000L /* its header is not needed */

/* OpenSSL frees its locks and tables in an atexit handler, registered
 * when it is first initialised.  Registered after the runtime's exit hook
 * (a program that starts using OpenSSL, through its own libcurl say, after
 * the runtime started), it runs first, and a final send would start
 * libcurl on freed state: SIGSEGV at exit.  So the runtime initialises
 * OpenSSL with OPENSSL_INIT_NO_ATEXIT whenever it comes first (OpenSSL's
 * memory goes with the process), and never starts libcurl on an OpenSSL
 * already shut down.  `ossl_init` is OPENSSL_init_crypto; 0 if OpenSSL
 * was shut down. */
CNSMP_NOINST static int openssl_keep(int (*ossl_init)(uint64_t, const void *))
{
	/* BASE_ONLY first: on a stopped OpenSSL it fails without raising an
	 * error, which would touch the freed state. */
	return ossl_init(OSSL_INIT_BASE_ONLY, NULL) && ossl_init(OSSL_INIT_NO_ATEXIT, NULL);
}

/* At start-up, when the program has OpenSSL mapped already (it links
 * libcurl or libssl itself): initialised now, before the program does,
 * OpenSSL registers no exit handler; initialised already, its handler
 * was registered before the runtime's exit hook and runs after it.
 * Loads nothing: a program without OpenSSL gets it with libcurl at the
 * first send, and global_init does the same there. */
CNSMP_NOINST void cnsmp_transport_prepare(void)
{
	static const char *const names[] = { "libcrypto.so.3", "libcrypto.so.1.1" };
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		void *h = dlopen(names[i], RTLD_NOW | RTLD_NOLOAD);
		if (!h)
			continue;
		int (*ossl_init)(uint64_t, const void *);
		*(void **)&ossl_init = dlsym(h, "OPENSSL_init_crypto");
		if (ossl_init)
			openssl_keep(ossl_init);
		dlclose(h);
	}
}

CNSMP_NOINST static void global_init(void)
{
	void *h = open_curl();
	if (!h)
		return;
	/* No-op for libcurls on other TLS back-ends (no OPENSSL_init_crypto). */
	int (*ossl_init)(uint64_t, const void *);
	*(void **)&ossl_init = dlsym(h, "OPENSSL_init_crypto");
	if (ossl_init && !openssl_keep(ossl_init)) {
		cnsmp_log(CNSMP_LOG_INFO, "cannot send: the program shut OpenSSL down before the "
			  "runtime's first send; keeping data for the next run");
		return;
	}
	global_ok = cu.global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
	Dl_info at; /* the file the calls really go to */
	cnsmp_log(CNSMP_LOG_DEBUG, "libcurl: %s%s",
		  dladdr(*(void **)&cu.easy_init, &at) && at.dli_fname ? at.dli_fname : "?",
		  global_ok ? "" : " (curl_global_init failed)");
}

CNSMP_NOINST void cnsmp_transport_set_deadline(uint64_t ns)
{
	atomic_store(&deadline_ns, ns);
}

CNSMP_NOINST long cnsmp_transport_last_status(void)
{
	return tls_status;
}

CNSMP_NOINST const char *cnsmp_transport_last_answer(void)
{
	return tls_answer;
}

CNSMP_NOINST void cnsmp_transport_release(void)
{
	free(tls_answer);
	tls_answer = NULL;
	if (tls_curl) {
		curl_easy_cleanup(tls_curl);
		tls_curl = NULL;
	}
	if (tls_multi) {
		cu.multi_cleanup(tls_multi);
		tls_multi = NULL;
	}
}

CNSMP_NOINST static int deadline_passed(void)
{
	uint64_t d = atomic_load(&deadline_ns);
	return d && cnsmp_clock_mono_ns() >= d;
}

/* curl_easy_perform, polled every POLL_MS so that a deadline set while the
 * transfer waits for an answer cuts it short at once. */
CNSMP_NOINST static CURLcode perform(CURL *c)
{
	if (!tls_multi && cu.multi_init)
		tls_multi = cu.multi_init();
	if (!tls_multi || cu.multi_add_handle(tls_multi, c) != CURLM_OK)
		return curl_easy_perform(c);
	CURLcode rc = CURLE_SEND_ERROR; /* the multi failed: maybe sent */
	int running = 1, done = 0;
	while (!done) {
		if (cu.multi_perform(tls_multi, &running) != CURLM_OK)
			break;
		CURLMsg *m;
		int left;
		while ((m = cu.multi_info_read(tls_multi, &left)))
			if (m->msg == CURLMSG_DONE && m->easy_handle == c) {
				rc = m->data.result;
				done = 1;
			}
		if (done || !running)
			break;
		if (deadline_passed()) {
			rc = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		if (cu.multi_poll(tls_multi, NULL, 0, POLL_MS, NULL) != CURLM_OK)
			break;
	}
	cu.multi_remove_handle(tls_multi, c);
	return rc;
}

CNSMP_NOINST static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = size * n, room = sizeof a->buf - 1 - a->n;
	size_t c = len < room ? len : room;
	memcpy(a->buf + a->n, p, c);
	a->n += c;
	a->buf[a->n] = '\0';
	return len;
}

CNSMP_NOINST static int on_progress(void *arg, curl_off_t dt, curl_off_t dn,
				    curl_off_t ut, curl_off_t un)
{
	return deadline_passed(); /* non-zero aborts the transfer */
}

/* The server's "error" text, or the start of its answer, on one line. */
CNSMP_NOINST static void error_text(const struct answer *a, char *out, size_t len)
{
	json_t *j = json_loadb(a->buf, a->n, 0, NULL);
	const char *e = json_string_value(json_object_get(j, "error"));
	const char *src = e ? e : (a->n ? a->buf : "no error text");
	size_t i = 0;
	for (; src[i] && i + 1 < len && i < 200; i++)
		out[i] = isprint((unsigned char)src[i]) ? src[i] : ' ';
	out[i] = '\0';
	json_decref(j);
}

CNSMP_NOINST static int is_tls_trust(CURLcode rc)
{
	return rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
	       rc == CURLE_SSL_ISSUER_ERROR;
}

/* Errors raised before any byte of the request can have left. */
CNSMP_NOINST static int is_before_send(CURLcode rc)
{
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_OUT_OF_MEMORY:
		return 1;
	default:
		return 0;
	}
}

/* A connection dropped or reset, or no answer in time: the next try, on a
 * new connection, may well pass.  Not a refused connection or a name that
 * does not resolve (the endpoint is down: trying again would only spend
 * the program's exit time), nor our own deadline. */
CNSMP_NOINST static int is_transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
		return 1;
	default:
		return 0;
	}
}

CNSMP_NOINST static enum cnsmp_send_result map_status(const struct cnsmp_config *cfg,
						      long status, const struct answer *a)
{
	char text[256];
	if (status >= 200 && status < 300) {
		atomic_store(&outage_logged, 0);
		atomic_store(&quota_logged, 0);
		return CNSMP_SENT;
	}
	atomic_store(&outage_logged, 0); /* it answered: the outage is over */
	if (status == 413) {
		cnsmp_log(CNSMP_LOG_DEBUG, "ingest answered 413: splitting the body");
		return CNSMP_TOO_LARGE;
	}
	if (status == 429) {
		if (!atomic_exchange(&quota_logged, 1))
			cnsmp_log(CNSMP_LOG_INFO, "quota exceeded at '%s' (HTTP 429): keeping data, "
				  "sending less often", cfg->endpoint);
		return CNSMP_QUOTA;
	}
	if (status >= 400 && status < 500) {
		error_text(a, text, sizeof text);
		if (status == 401) {
			if (!atomic_exchange(&key_logged, 1))
				cnsmp_log(CNSMP_LOG_INFO, "ingest key refused by '%s' (HTTP 401): %s; "
					  "check CODENSM_API_KEY", cfg->endpoint, text);
		} else {
			cnsmp_log(CNSMP_LOG_INFO, "body rejected by '%s' (HTTP %ld): %s",
				  cfg->endpoint, status, text);
		}
		return CNSMP_REJECTED;
	}
	if (status >= 500) {
		tls_transient = 1;
		cnsmp_log(CNSMP_LOG_DEBUG, "ingest answered %ld: keeping data for the next try",
			  status);
		return CNSMP_FAILED_CLEAN;
	}
	/* 1xx/3xx: a redirect or a proxy page, not the ingest server. */
	if (!atomic_exchange(&outage_logged, 1))
		cnsmp_log(CNSMP_LOG_INFO, "unexpected HTTP %ld from '%s': check CODENSM_ENDPOINT; "
			  "keeping data for the next try", status, cfg->endpoint);
	return CNSMP_FAILED_CLEAN;
}

CNSMP_NOINST enum cnsmp_send_result cnsmp_transport_post(const struct cnsmp_config *cfg,
							 const char *body, long timeout_ms)
{
	tls_status = 0;
	tls_transient = 0;
	free(tls_answer);
	tls_answer = NULL;
	pthread_once(&global_once, global_init);
	if (!global_ok || !cfg->endpoint)
		return CNSMP_FAILED_CLEAN;
	if (!tls_curl)
		tls_curl = curl_easy_init();
	CURL *c = tls_curl;
	if (!c)
		return CNSMP_FAILED_CLEAN;
	curl_easy_reset(c); /* keeps the connection cache, forgets options */

	struct curl_slist *h = NULL, *t;
	char auth[1024];
	const char *key = cfg->api_key ? cfg->api_key : "";
	size_t kl = strlen(key);
	if (kl > sizeof auth - 32)
		kl = sizeof auth - 32;
	memcpy(auth, "Authorization: Bearer ", 22);
	memcpy(auth + 22, key, kl);
	auth[22 + kl] = '\0';
	h = curl_slist_append(h, auth);
	if (h && (t = curl_slist_append(h, "Content-Type: application/json")))
		h = t;
	if (h && (t = curl_slist_append(h, "Expect:"))) /* no 100-continue wait */
		h = t;
	if (!h)
		return CNSMP_FAILED_CLEAN;

	struct answer a = {.n = 0};
	a.buf[0] = '\0';
	char errbuf[CURL_ERROR_SIZE] = "";
	if (timeout_ms < 100)
		timeout_ms = 100;
	curl_easy_setopt(c, CURLOPT_URL, cfg->endpoint);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(c, CURLOPT_USERAGENT, "codensm-c/" CODENSM_VERSION);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (cfg->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);

	CURLcode rc = perform(c);
	long status = 0, reqsize = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &reqsize);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(h);
	/* The key must not linger on the stack of a long-lived thread. */
	memset(auth, 0, sizeof auth);

	if (rc == CURLE_OK) {
		tls_status = status;
		if (status / 100 == 2 && a.n)
			tls_answer = strndup(a.buf, a.n);
		return map_status(cfg, status, &a);
	}
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
	tls_transient = is_transient(rc);
	if (is_tls_trust(rc)) {
		if (!atomic_exchange(&outage_logged, 1))
			cnsmp_log(CNSMP_LOG_INFO, "cannot verify the TLS certificate of '%s': %s; "
				  "set CODENSM_CA_FILE to the CA bundle that signed it; "
				  "keeping data for the next try", cfg->endpoint, why);
		return CNSMP_FAILED_CLEAN;
	}
	if (is_before_send(rc) || reqsize == 0) {
		if (!atomic_exchange(&outage_logged, 1))
			cnsmp_log(CNSMP_LOG_INFO, "cannot reach %s: %s; keeping data for the next try",
				  cfg->endpoint, why);
		return CNSMP_FAILED_CLEAN;
	}
	if (!atomic_exchange(&outage_logged, 1))
		cnsmp_log(CNSMP_LOG_INFO, "no answer from %s: %s; will resend the same batch",
			  cfg->endpoint, why);
	return CNSMP_FAILED_UNSURE;
}

/* Milliseconds from now to `deadline`, 0 when it has passed. */
CNSMP_NOINST static long ms_until(uint64_t deadline)
{
	uint64_t now = cnsmp_clock_mono_ns();
	return now >= deadline ? 0 : (long)((deadline - now) / 1000000u);
}

/* Posts `body` until it is answered or `deadline` (CLOCK_MONOTONIC ns)
 * comes near, for the sends that nothing follows: the final flush at exit
 * and codensm_flush.  A dropped or reset connection, a time-out and a 5xx
 * are tried again, up to RETRY_ATTEMPTS tries, after 50, 100, 200 ms:
 * the same bytes with the same batch id, which the server deduplicates,
 * so a try that was committed after all never counts twice.  Every other
 * answer is final at once: a 429 (the quota says stop), a 401, a 413 (the
 * caller splits), a refused connection.  Each try but the last keeps a
 * third of the time left for the next, so an endpoint that never answers
 * one connection is tried again within the same budget.  *maybe_sent is
 * set when a try may have been committed (its answer was lost): whatever
 * the last try says, the body must then be resent as it is, never merged
 * into newer data. */
CNSMP_NOINST enum cnsmp_send_result
cnsmp_transport_post_until(const struct cnsmp_config *cfg, const char *body,
			   uint64_t deadline, int *maybe_sent)
{
	enum cnsmp_send_result r = CNSMP_FAILED_CLEAN;
	long backoff = RETRY_FIRST_MS;
	*maybe_sent = 0;
	for (int attempt = 1;; attempt++) {
		long left = ms_until(deadline);
		if (left <= 0)
			break;
		long ms = left;
		if (attempt < RETRY_ATTEMPTS && left - left / 3 >= RETRY_MIN_MS)
			ms = left - left / 3;
		r = cnsmp_transport_post(cfg, body, ms);
		if (r == CNSMP_FAILED_UNSURE)
			*maybe_sent = 1;
		if (!tls_transient || attempt == RETRY_ATTEMPTS ||
		    atomic_load(&cnsmp_view_frozen))
			break;
		if (ms_until(deadline) < backoff + RETRY_MIN_MS)
			break;
		cnsmp_log(CNSMP_LOG_DEBUG, "trying '%s' again in %ld ms (try %d of %d)",
			  cfg->endpoint, backoff, attempt + 1, RETRY_ATTEMPTS);
		struct timespec ts = {0, backoff * 1000000L};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		backoff *= 2;
	}
	return r;
}
