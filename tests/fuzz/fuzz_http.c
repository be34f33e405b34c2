/* fuzz_http.c: libFuzzer target for codensm-server's request path through
 * its HTTP layer: http.c's daemon (libmicrohttpd, the routes, the body cap,
 * the URL unescaping), then ingest, the store and the API, all in this
 * process, so ASan and UBSan see every thread that handles the request.
 *
 * The first byte of an input picks what the rest is:
 *   0  raw bytes on a fresh connection (request line, headers, anything);
 *   1  the body of a POST /codensm/ingest with a valid ingest key,
 *      declared with Content-Length;
 *   2  the same body sent chunked (Transfer-Encoding), in chunks of the
 *      second byte's size;
 *   3  the path and query of a GET /api/ with a valid dashboard key.
 * A well-formed request (1-3) must be answered with an HTTP status the
 * contract allows: 200, 400, 413 or 429 for ingest, never a 5xx for the
 * API.  Raw bytes may be refused or the connection closed, but any answer
 * must be HTTP.  The store (a temporary SQLite file) is emptied before
 * every input, so a crash replays alone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"
#include "store.h"

#define ANSWER_WAIT_MS 10000 /* a well-formed request is answered within this */
#define RAW_WAIT_MS 50       /* raw bytes: the server may wait for more */

static char ikey[48], dkey[48];
static unsigned port;
static char answer[4096];

static void die(const char *what, const char *err)
{
	printf("fuzz_http: %s: %s\n", what, err);
	fflush(stdout);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* In memory (tmpfs) when there is one: the store syncs every commit. */
	char err[SRV_ERRLEN], dir[64], db[80];
	snprintf(dir, sizeof dir, "%s/codensm-fuzz-http-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir))
		die("mkdtemp", "cannot make a folder");
	snprintf(db, sizeof db, "%s/fuzz.db", dir);
	if (srv_store_init(db, err) < 0)
		die("store", err);
	struct srv_store *st = srv_store_get(err);
	/* "scale": a quota large enough that most inputs reach the writes. */
	if (!st || srv_project_create(st, "fuzz", "scale", ikey, dkey, err) < 0)
		die("project", err);
	struct srv_http *h = srv_http_start("127.0.0.1:0", dir, err);
	if (!h)
		die("listen", err);
	port = srv_http_port(h);
	return 0;
}

/* A new connection to the server.  It is closed with a reset (linger 0),
 * so that tens of thousands of inputs leave no TIME_WAIT behind to use up
 * the ephemeral ports; a refusal is tried again for up to a second (the
 * server's connection limit while it closes the previous inputs'). */
static int connect_server(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct linger lg = { 1, 0 };
	for (int i = 0;; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0 &&
		    connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			return fd;
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (i == 100)
			die("connect", strerror(e));
		usleep(10000);
	}
}

static void send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w <= 0)
			return; /* the server closed: it may, for a bad request */
		c += w;
		n -= (size_t)w;
	}
}

/* Sends `head` then `body` (chunked in pieces of `chunk` when non-zero),
 * half-closes, and reads the answer's status line, waiting at most
 * `wait_ms` for it.  Returns the HTTP status, 0 when none came back in
 * time, -1 when what came back is not HTTP.  Only the status line is
 * read: a raw request may leave the connection open (keep-alive, a body
 * still owed), and waiting for its end would cost each such input the
 * server's idle time-out. */
static int exchange(const char *head, const uint8_t *body, size_t len, size_t chunk,
		    int wait_ms)
{
	int fd = connect_server();
	send_all(fd, head, strlen(head));
	if (!chunk) {
		send_all(fd, body, len);
	} else {
		for (size_t off = 0; off < len; off += chunk) {
			size_t n = len - off < chunk ? len - off : chunk;
			char line[32];
			snprintf(line, sizeof line, "%zx\r\n", n);
			send_all(fd, line, strlen(line));
			send_all(fd, body + off, n);
			send_all(fd, "\r\n", 2);
		}
		send_all(fd, "0\r\n\r\n", 5);
	}
	shutdown(fd, SHUT_WR);
	size_t got = 0;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	while (got < 64 && !memchr(answer, '\n', got) && poll(&pfd, 1, wait_ms) == 1) {
		ssize_t r = recv(fd, answer + got, sizeof answer - 1 - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	answer[got] = '\0';
	close(fd);
	if (!got)
		return 0;
	int status;
	if (strncmp(answer, "HTTP/1.", 7) || sscanf(answer + 8, " %d", &status) != 1)
		return -1;
	return status;
}

static void reset_store(void)
{
	char err[SRV_ERRLEN];
	if (fuzz_empty_store(err) < 0)
		die("reset", err);
}

/* On stdout: fuzz.sh closes the targets' stderr (-close_fd_mask=2). */
static void expect(int ok, int status, const char *what)
{
	if (!ok) {
		printf("fuzz_http: %s answered %d: %.300s\n", what, status, answer);
		fflush(stdout);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	reset_store();
	unsigned mode = data[0] % 4;
	size_t chunk = (size_t)data[1] + 1;
	data += 2;
	size -= 2;
	char head[4096];
	int s;
	switch (mode) {
	case 0:
		s = exchange("", data, size, 0, RAW_WAIT_MS);
		expect(s >= 0, s, "raw bytes");
		break;
	case 1:
	case 2:
		if (mode == 1)
			snprintf(head, sizeof head, "POST /codensm/ingest HTTP/1.1\r\nHost: fuzz\r\n"
				 "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
				 "Content-Length: %zu\r\nConnection: close\r\n\r\n", ikey, size);
		else
			snprintf(head, sizeof head, "POST /codensm/ingest HTTP/1.1\r\nHost: fuzz\r\n"
				 "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
				 "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", ikey);
		s = exchange(head, data, size, mode == 2 ? chunk : 0, ANSWER_WAIT_MS);
		expect(s == 200 || s == 400 || s == 413 || s == 429, s, "ingest");
		break;
	default: {
		/* The path: the input up to a line break, which would end the
		 * request line (the rest of the line is what the server sees). */
		/* The path: the input, with what would end or split the request
		 * line (controls, spaces, DEL) percent-encoded; the server
		 * decodes them again. */
		char path[2500];
		size_t n = 0;
		for (size_t i = 0; i < size && i < 800; i++) {
			if (data[i] <= ' ' || data[i] == 0x7f)
				n += (size_t)snprintf(path + n, sizeof path - n, "%%%02X", data[i]);
			else
				path[n++] = (char)data[i];
		}
		path[n] = '\0';
		snprintf(head, sizeof head, "GET /api/%s HTTP/1.1\r\nHost: fuzz\r\n"
			 "Authorization: Bearer %s\r\nConnection: close\r\n\r\n", path, dkey);
		s = exchange(head, NULL, 0, 0, ANSWER_WAIT_MS);
		expect(s >= 0 && s < 500, s, "GET /api/");
	}
	}
	return 0;
}
