/* spool.c: request bodies that could not be delivered, kept on disk (one
 * body per file) until a later flush or a later process sends them.
 *
 * Files are named "<unix ns, 20 digits>-<pid>-<seq>.json", so names sort
 * oldest first, and written as ".tmp-<same>" then renamed: a reader never
 * sees half a body, even if the writer dies mid-write.  Writing
 * (cnsmp_spool_open/commit) is async-signal-safe because the crash handler
 * uses it: open, write, close, rename, mkdir and clock_gettime only, and
 * names formatted by hand.  It survives a crash of the process, not a power
 * cut (no fsync: that would slow every exit for a rare case).
 *
 * A body the server rejected for good (a 4xx other than 401/413/429) is
 * renamed "<name>.rejected" rather than deleted: it will never be accepted,
 * but it is the user's data and the evidence of the problem.  Nothing
 * reads those files again.  Drains hold an flock on the directory so two
 * processes sharing a spool do not send the same files at the same time
 * (were they to, the batch ids would still make the second send a no-op).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

static _Atomic unsigned spool_seq;

/* Appends s to buf (size CNSMP_SPOOL_PATH); -1 if it does not fit. */
CNSMP_NOINST static int cat(char *buf, size_t *n, const char *s)
{
	size_t l = strlen(s);
	if (*n + l + 1 > CNSMP_SPOOL_PATH)
		return -1;
	memcpy(buf + *n, s, l + 1);
	*n += l;
	return 0;
}

/* v as exactly `width` decimal digits (zero-padded). */
CNSMP_NOINST static void digits(char *out, uint64_t v, int width)
{
	out[width] = '\0';
	for (int i = width - 1; i >= 0; i--) {
		out[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* mkdir -p with mode 0700, signal-safe (no malloc: a stack copy). */
CNSMP_NOINST int cnsmp_spool_mkdir_p(const char *dir)
{
	char p[CNSMP_SPOOL_PATH];
	size_t l = strlen(dir);
	if (l == 0 || l >= sizeof p)
		return -1;
	memcpy(p, dir, l + 1);
	for (size_t i = 1; i <= l; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		char c = p[i];
		p[i] = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			return -1;
		p[i] = c;
	}
	return 0;
}

CNSMP_NOINST int cnsmp_spool_open(const char *dir, char *tmp, char *final)
{
	if (!dir || !*dir)
		return -1;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char ns[21], pid[11], seq[7];
	digits(ns, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, 20);
	digits(pid, (uint64_t)getpid(), 10);
	digits(seq, atomic_fetch_add(&spool_seq, 1) % 1000000, 6);
	size_t nt = 0, nf = 0;
	if (cat(tmp, &nt, dir) || cat(tmp, &nt, "/.tmp-") || cat(tmp, &nt, ns) ||
	    cat(tmp, &nt, "-") || cat(tmp, &nt, pid) || cat(tmp, &nt, "-") ||
	    cat(tmp, &nt, seq) || cat(tmp, &nt, ".json"))
		return -1;
	if (cat(final, &nf, dir) || cat(final, &nf, "/") || cat(final, &nf, ns) ||
	    cat(final, &nf, "-") || cat(final, &nf, pid) || cat(final, &nf, "-") ||
	    cat(final, &nf, seq) || cat(final, &nf, ".json"))
		return -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT) {
		if (cnsmp_spool_mkdir_p(dir) != 0)
			return -1;
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	return fd;
}

CNSMP_NOINST int cnsmp_spool_commit(int fd, const char *tmp, const char *final)
{
	int rc = close(fd);
	if (rc == 0)
		rc = rename(tmp, final);
	if (rc != 0)
		unlink(tmp);
	return rc == 0 ? 0 : -1;
}

CNSMP_NOINST int cnsmp_spool_write(const char *dir, const char *body)
{
	char tmp[CNSMP_SPOOL_PATH], final[CNSMP_SPOOL_PATH];
	int fd = cnsmp_spool_open(dir, tmp, final);
	if (fd < 0) {
		cnsmp_log(CNSMP_LOG_INFO, "cannot write to spool directory '%s': %s",
			  dir ? dir : "", strerror(errno));
		return -1;
	}
	size_t len = strlen(body), off = 0;
	while (off < len) {
		ssize_t w = write(fd, body + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			cnsmp_log(CNSMP_LOG_INFO, "cannot write spool file '%s': %s",
				  tmp, w < 0 ? strerror(errno) : "short write");
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)w;
	}
	if (cnsmp_spool_commit(fd, tmp, final) != 0) {
		cnsmp_log(CNSMP_LOG_INFO, "cannot commit spool file '%s': %s", final,
			  strerror(errno));
		return -1;
	}
	return 0;
}

CNSMP_NOINST static int is_body_name(const char *n)
{
	size_t l = strlen(n);
	return n[0] != '.' && l > 5 && strcmp(n + l - 5, ".json") == 0;
}

CNSMP_NOINST static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A regular file of at most `max` bytes read whole, NUL-terminated (text
 * can be used as a string), its size in *len; NULL if it cannot be read
 * whole.  Not a FIFO or device: the read must not block on one. */
CNSMP_NOINST char *cnsmp_spool_read_file(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	struct stat st;
	char *buf = NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= max) {
		size_t want = (size_t)st.st_size, off = 0;
		buf = malloc(want + 1);
		while (buf && off < want) {
			ssize_t r = read(fd, buf + off, want - off);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			off += (size_t)r;
		}
		if (buf && off != want) { /* cut short while being read */
			free(buf);
			buf = NULL;
		}
		if (buf) {
			buf[off] = '\0';
			*len = off;
		}
	}
	close(fd);
	return buf;
}

CNSMP_NOINST static char *path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = malloc(a + b + 2 + strlen(".rejected"));
	if (p) {
		memcpy(p, dir, a);
		p[a] = '/';
		memcpy(p + a + 1, name, b + 1);
	}
	return p;
}

CNSMP_NOINST int cnsmp_spool_drain(const char *dir,
				   enum cnsmp_send_result (*send)(const char *body, void *arg),
				   void *arg)
{
	if (!dir || !*dir)
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0; /* no spool yet: nothing to do */
	/* The lock is on the directory itself: no lock file left behind. */
	int lockfd = dirfd(d);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
		/* Another process is draining; it will take these files. */
		closedir(d);
		return 0;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!is_body_name(de->d_name))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **nn = realloc(names, nc * sizeof *nn);
			if (!nn)
				break;
			names = nn;
			cap = nc;
		}
		if ((names[n] = strdup(de->d_name)) != NULL)
			n++;
	}
	if (n)
		qsort(names, n, sizeof *names, cmp_names);
	int sent = 0;
	size_t i;
	for (i = 0; i < n; i++) {
		char *path = path_join(dir, names[i]);
		size_t len;
		char *body = path ? cnsmp_spool_read_file(path, 64 << 20, &len) : NULL;
		if (!body) {
			/* Gone (another drainer) or unreadable: skip, never stop. */
			free(path);
			continue;
		}
		enum cnsmp_send_result r = send(body, arg);
		free(body);
		if (r == CNSMP_SENT) {
			unlink(path);
			sent++;
		} else if (r == CNSMP_REJECTED || r == CNSMP_TOO_LARGE) {
			char *to = malloc(strlen(path) + sizeof ".rejected");
			if (to) {
				strcpy(to, path);
				strcat(to, ".rejected");
				if (rename(path, to) == 0)
					cnsmp_log(CNSMP_LOG_INFO,
						  "spooled body rejected by the server: kept as '%s'", to);
				else
					unlink(path);
				free(to);
			}
		} else {
			free(path);
			break; /* the server is unreachable or busy: try again later */
		}
		free(path);
	}
	for (size_t j = 0; j < n; j++)
		free(names[j]);
	free(names);
	flock(lockfd, LOCK_UN);
	closedir(d);
	return sent;
}

/* Are there bodies waiting in `dir`?  Cheap enough for every cycle. */
CNSMP_NOINST int cnsmp_spool_pending(const char *dir)
{
	DIR *d = dir ? opendir(dir) : NULL;
	if (!d)
		return 0;
	struct dirent *de;
	int any = 0;
	while (!any && (de = readdir(d)) != NULL)
		any = is_body_name(de->d_name);
	closedir(d);
	return any;
}
