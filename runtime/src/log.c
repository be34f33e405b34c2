/* log.c: the runtime's one-line diagnostics on stderr, one write(2) each. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int cnsmp_log_level = CNSMP_LOG_INFO;

/* One write(2) per line so that lines from several threads (or from the
 * host program's own stderr output) never interleave mid-line, and no
 * stdio stream is touched: the host may be using stderr's FILE or may have
 * closed it.  Long messages are truncated rather than split.  errno is
 * preserved because callers log from error paths and then report errno. */
CNSMP_NOINST void cnsmp_log(int level, const char *fmt, ...)
{
	if (level > cnsmp_log_level)
		return;
	int saved = errno;
	char buf[1024];
	static const char head[] = "codensm: ";
	size_t n = sizeof(head) - 1;
	memcpy(buf, head, n);

	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += (size_t)m < sizeof(buf) - n - 1 ? (size_t)m : sizeof(buf) - n - 2;
	buf[n++] = '\n';

	ssize_t w;
	do
		w = write(2, buf, n);
	while (w < 0 && errno == EINTR);
	errno = saved;
}
