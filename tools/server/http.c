/* http.c: the libmicrohttpd daemon: routes, request bodies under a hard
 * cap, time-outs and connection limits, and the headers every answer gets.
 *
 * Threads: MHD's internal pool of POOL_THREADS threads calls the handler;
 * each thread has its own SQLite connection, or takes a PostgreSQL one from
 * the pool for the request (store.c), so a slow view never blocks an ingest
 * on another thread beyond the database's own locks.
 *
 * MHD's time-out only measures silence, so a client that sends one byte a
 * second would hold its connection for ever; a reaper thread therefore
 * cuts (shutdown(2)) every connection that has not finished a request
 * within REQUEST_DEADLINE of its start or of its previous request's end. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <microhttpd.h>

#include "server.h"

#define POOL_THREADS 4
#define CONN_TIMEOUT 15              /* seconds a connection may stay idle */
#define CONN_MEMORY (64 * 1024)      /* per connection: headers must fit */
#define CONN_LIMIT 512
#define REQUEST_DEADLINE 30         /* seconds to receive a request and answer it */
#define DISCARD_LIMIT (8 * 1024 * 1024) /* larger declared bodies: 413 before reading */
#define API_BODY_MAX (64 * 1024)     /* a probe or settings body (POST/PUT under /api/) */
#define JS_ROOT "/usr/share/javascript"  /* Debian's libjs-* packages, at /javascript/ */

/* One open connection, for the reaper: the list is guarded by watch_lock,
 * and an entry leaves it (MHD's "closed" notification) before MHD closes
 * the socket, so the reaper never shuts down a descriptor reused since. */
struct watch {
	int fd;
	double since;                   /* CLOCK_MONOTONIC: start of the current request */
	struct watch *prev, *next;
};

struct srv_http {
	struct MHD_Daemon *d;
	pthread_mutex_t watch_lock;
	pthread_cond_t stop_cond;
	struct watch *watched;
	pthread_t reaper;
	int reaper_started, stopping;
	unsigned port;
	char web[PATH_MAX];             /* "" when no page folder was found */
	char js[PATH_MAX];              /* real path of JS_ROOT, "" if absent */
};

/* One ingest request in flight: the body accumulates up to the cap; past
 * it (or without a valid key) the rest is read and thrown away, so the
 * client still receives its answer. */
struct upload {
	char *buf;
	size_t len;
	int too_large;
};

static const char CSP[] = "default-src 'self'";

static void common_headers(struct MHD_Response *r)
{
	MHD_add_response_header(r, "Content-Security-Policy", CSP);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text)
		text = strdup("{\"error\":\"out of memory\"}");
	size_t n = text ? strlen(text) : 0;
	struct MHD_Response *r = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	common_headers(r);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* A reply of the API: its text when it has one, else its JSON. */
static enum MHD_Result send_reply(struct MHD_Connection *c, struct srv_reply *r)
{
	if (!r->text)
		return send_json(c, r->status, r->body);
	json_decref(r->body);
	struct MHD_Response *m = MHD_create_response_from_buffer(strlen(r->text), r->text,
								 MHD_RESPMEM_MUST_FREE);
	if (!m) {
		free(r->text);
		return MHD_NO;
	}
	MHD_add_response_header(m, "Content-Type", r->type);
	MHD_add_response_header(m, "Cache-Control", "no-store");
	common_headers(m);
	enum MHD_Result ret = MHD_queue_response(c, r->status, m);
	MHD_destroy_response(m);
	return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
	return send_json(c, status, json_pack("{ss}", "error", msg));
}

static enum MHD_Result send_file(struct MHD_Connection *c, const char *root, const char *url)
{
	char path[PATH_MAX];
	if (!*root)
		return send_error(c, 404, "dashboard files not found: start with --web DIR");
	int st = srv_static_resolve(root, url, path, sizeof path);
	if (st)
		return send_error(c, (unsigned)st, st == 403 ? "forbidden" : "not found");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		if (fd >= 0)
			close(fd);
		return send_error(c, 404, "not found");
	}
	struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
	if (!r) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", srv_content_type(path));
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	common_headers(r);
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static const char *query_arg(void *ctx, const char *key)
{
	return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, key);
}

/* Reads a request's body into *cls, keeping at most `keep` bytes (past
 * that too_large is set and the rest is read and dropped).  While the body
 * is still coming, or for a Content-Length over `refuse` (answered 413
 * `too_big`), returns NULL with *ret the answer for MHD; returns the
 * upload once the whole body is in. */
static struct upload *collect_body(struct MHD_Connection *c, void **cls, const char *data,
				   size_t *size, size_t refuse, size_t keep,
				   const char *too_big, enum MHD_Result *ret)
{
	struct upload *u = *cls;
	*ret = MHD_YES;
	if (!u) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > refuse)
			*ret = send_error(c, 413, too_big);
		else if (!(u = calloc(1, sizeof *u)))
			*ret = MHD_NO;
		else
			*cls = u;
		return NULL;
	}
	if (!*size)
		return u;
	if (!u->too_large && u->len + *size > keep) {
		u->too_large = 1;
		free(u->buf);
		u->buf = NULL;
	}
	if (!u->too_large) {
		char *nb = realloc(u->buf, u->len + *size + 1);
		if (!nb) {
			*ret = MHD_NO;
			return NULL;
		}
		memcpy(nb + u->len, data, *size);
		u->buf = nb;
		u->len += *size;
	}
	*size = 0;
	return NULL;
}

static enum MHD_Result handle_ingest(struct MHD_Connection *c, const char *data, size_t *size,
				     void **cls)
{
	enum MHD_Result ret;
	struct upload *u = collect_body(c, cls, data, size, DISCARD_LIMIT, SRV_MAX_BODY,
					"payload too large: body over 524288 bytes", &ret);
	if (!u)
		return ret;
	struct srv_reply r = { 0 };
	/* a body over the cap is answered 413 (401 first if the key is bad) */
	srv_ingest(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
		   u->too_large ? NULL : (u->buf ? u->buf : ""),
		   u->too_large ? SRV_MAX_BODY + 1 : u->len, srv_now(), &r);
	srv_store_release();
	return send_json(c, r.status, r.body);
}

/* POST, PUT and DELETE under /api/: the body (at most API_BODY_MAX, the
 * rest read and dropped, then 413), then srv_api_write. */
static enum MHD_Result handle_api_write(struct MHD_Connection *c, const char *url,
					const char *method, const char *data, size_t *size,
					void **cls)
{
	enum MHD_Result ret;
	struct upload *u = collect_body(c, cls, data, size, API_BODY_MAX, API_BODY_MAX,
					"request body too large: at most 65536 bytes", &ret);
	if (!u)
		return ret;
	if (u->too_large)
		return send_error(c, 413, "request body too large: at most 65536 bytes");
	struct srv_reply r = { 0 };
	srv_api_write(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"), method,
		      url + 5, u->buf, u->len, srv_now(), &r);
	srv_store_release();
	return send_reply(c, &r);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *data,
			       size_t *size, void **con_cls)
{
	struct srv_http *h = cls;
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");

	if (!strcmp(url, "/codensm/ingest")) {
		if (strcmp(method, "POST"))
			return send_error(c, 405, "method not allowed: use POST");
		return handle_ingest(c, data, size, con_cls);
	}
	if (!strncmp(url, "/api/", 5) && (!strcmp(method, "POST") || !strcmp(method, "PUT") ||
					   !strcmp(method, "DELETE")))
		return handle_api_write(c, url, method, data, size, con_cls);
	if (*size) {
		/* a GET with a body: drop it */
		*size = 0;
		return MHD_YES;
	}
	if (!get)
		return send_error(c, 405, "method not allowed: use GET");
	if (!strncmp(url, "/api/", 5)) {
		struct srv_reply r = { 0 };
		srv_api(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"), url + 5,
			query_arg, c, srv_now(), &r);
		srv_store_release();
		return send_reply(c, &r);
	}
	if (!strncmp(url, "/javascript/", 12))
		return send_file(c, h->js, url + 11);
	return send_file(c, h->web, url);
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void watch_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			     enum MHD_ConnectionNotificationCode code)
{
	struct srv_http *h = cls;
	struct watch *w = *socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!ci || !(w = calloc(1, sizeof *w)))
			return;         /* unwatched: only MHD's idle time-out applies */
		w->fd = ci->connect_fd;
		w->since = mono_s();
		pthread_mutex_lock(&h->watch_lock);
		w->next = h->watched;
		if (w->next)
			w->next->prev = w;
		h->watched = w;
		pthread_mutex_unlock(&h->watch_lock);
		*socket_context = w;
	} else if (w) {
		pthread_mutex_lock(&h->watch_lock);
		if (w->prev)
			w->prev->next = w->next;
		else
			h->watched = w->next;
		if (w->next)
			w->next->prev = w->prev;
		pthread_mutex_unlock(&h->watch_lock);
		free(w);
		*socket_context = NULL;
	}
}

/* Once a second: a connection past its deadline is shut down; MHD then
 * reads end-of-file, closes it and notifies watch_connection(). */
static void *reaper(void *arg)
{
	struct srv_http *h = arg;
	pthread_mutex_lock(&h->watch_lock);
	while (!h->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&h->stop_cond, &h->watch_lock, &ts);
		double now = mono_s();
		for (struct watch *w = h->watched; w; w = w->next)
			if (now - w->since > REQUEST_DEADLINE) {
				shutdown(w->fd, SHUT_RDWR);
				w->since = now;   /* once is enough */
			}
	}
	pthread_mutex_unlock(&h->watch_lock);
	return NULL;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct srv_http *h = cls;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci && ci->socket_context) {
		/* the next request on this connection gets a deadline of its own */
		pthread_mutex_lock(&h->watch_lock);
		((struct watch *)ci->socket_context)->since = mono_s();
		pthread_mutex_unlock(&h->watch_lock);
	}
	struct upload *u = *con_cls;
	if (u) {
		free(u->buf);
		free(u);
		*con_cls = NULL;
	}
}

/* Percent-decoding as MHD does it, except that a decoded NUL ("%00")
 * would cut the C string short ("/index.html%00.js" -> "/index.html"):
 * such a URL becomes "/\\", which static.c refuses (403). */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	size_t n = MHD_http_unescape(s);
	if (memchr(s, '\0', n) && n >= 2) {
		memcpy(s, "/\\", 3);
		return 2;
	}
	return n;
}

/* "host:port" or "[v6]:port"; numeric hosts, or names resolved once. */
static int parse_listen(const char *listen, struct sockaddr_storage *sa, socklen_t *salen,
			int *v6, char *err)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host || !colon[1]) {
		snprintf(err, SRV_ERRLEN, "invalid listen address '%s': expected HOST:PORT", listen);
		return -1;
	}
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	char *h = host;
	if (h[0] == '[' && h[strlen(h) - 1] == ']') {
		h[strlen(h) - 1] = '\0';
		h++;
	}
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535) {
		snprintf(err, SRV_ERRLEN, "invalid port in '%s'", listen);
		return -1;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
	int rc = getaddrinfo(h, colon + 1, &hints, &ai);
	if (rc) {
		snprintf(err, SRV_ERRLEN, "cannot resolve '%.200s': %s", h, gai_strerror(rc));
		return -1;
	}
	memcpy(sa, ai->ai_addr, ai->ai_addrlen);
	*salen = ai->ai_addrlen;
	*v6 = ai->ai_family == AF_INET6;
	freeaddrinfo(ai);
	return 0;
}

struct srv_http *srv_http_start(const char *listen, const char *webdir, char *err)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	int v6;
	if (parse_listen(listen, &sa, &salen, &v6, err) < 0)
		return NULL;
	struct srv_http *h = calloc(1, sizeof *h);
	if (!h) {
		snprintf(err, SRV_ERRLEN, "out of memory");
		return NULL;
	}
	if (webdir)
		snprintf(h->web, sizeof h->web, "%s", webdir);
	if (!realpath(JS_ROOT, h->js))
		h->js[0] = '\0';
	pthread_mutex_init(&h->watch_lock, NULL);
	pthread_cond_init(&h->stop_cond, NULL);
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, handler, h,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_THREAD_POOL_SIZE, (unsigned)POOL_THREADS,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_LIMIT,
				MHD_OPTION_NOTIFY_COMPLETED, completed, h,
				MHD_OPTION_NOTIFY_CONNECTION, watch_connection, h,
				MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
				MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, SRV_ERRLEN, "cannot listen on '%s': %s", listen,
			 errno ? strerror(errno) : "address in use or not available");
		free(h);
		return NULL;
	}
	/* without the reaper, slow clients are cut by the idle time-out only */
	h->reaper_started = pthread_create(&h->reaper, NULL, reaper, h) == 0;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : 0;
	return h;
}

unsigned srv_http_port(struct srv_http *h)
{
	return h->port;
}

void srv_http_stop(struct srv_http *h)
{
	if (!h)
		return;
	if (h->reaper_started) {
		pthread_mutex_lock(&h->watch_lock);
		h->stopping = 1;
		pthread_cond_signal(&h->stop_cond);
		pthread_mutex_unlock(&h->watch_lock);
		pthread_join(h->reaper, NULL);
	}
	MHD_stop_daemon(h->d);
	pthread_mutex_destroy(&h->watch_lock);
	pthread_cond_destroy(&h->stop_cond);
	free(h);
}
