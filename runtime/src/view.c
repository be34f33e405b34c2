/* view.c: what the crash path may read of the flusher, without a lock:
 * the published view of everything collected but not yet delivered, the
 * phase and freeze flags, and the process's batch-id base and host name.
 *
 * The flusher publishes an immutable view with one atomic pointer store
 * after every change, and nothing a published view points to is modified
 * or freed until a newer view replaced it (and never once a dump froze the
 * flusher): memory the flusher lets go of goes to the garbage here and is
 * freed only by the next publish.  During a collect the counters have
 * moved past their snapshots but the deltas are not in a view yet: the
 * phase flag tells the crash handler to wait.  The collected deltas are
 * then published as the view's `fresh` until a later view holds them in a
 * body or in pending: one pointer, so a crash sees them exactly once.
 *
 * Flusher thread only, but for the crash path's reads. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "internal.h"

_Atomic(struct cnsmp_view *) cnsmp_view_published;
_Atomic int cnsmp_view_phase;
_Atomic int cnsmp_view_frozen;
char cnsmp_view_batch_base[48] = "0";
char cnsmp_view_hostname[256] = "unknown";

/* Freed by the next publish: a view may still show it until then. */
static void **garbage;
static size_t ngarbage, capgarbage;

CNSMP_NOINST void cnsmp_view_trash(void *p)
{
	if (!p)
		return;
	if (cnsmp_grow((void **)&garbage, &capgarbage, ngarbage + 1, sizeof *garbage) != 0)
		return; /* leak rather than free what a view may show */
	garbage[ngarbage++] = p;
}

CNSMP_NOINST void cnsmp_view_trash_batch(struct cnsmp_batch *b)
{
	if (!b)
		return;
	cnsmp_view_trash(b->fns);
	cnsmp_view_trash(b->edges);
	cnsmp_view_trash(b->incidents);
	cnsmp_view_trash(b);
}

/* On allocation failure the old view stays and nothing is freed: a crash
 * then may resend a body (deduped), never lose one; and the phase flag
 * stays as it was, so a crash during a collect whose view could not be
 * made waits for the next. */
CNSMP_NOINST void cnsmp_view_publish(const struct cnsmp_batch *pending, size_t nbodies,
				     const char *(*body)(size_t i, void *arg), void *arg,
				     const struct cnsmp_batch *fresh)
{
	struct cnsmp_view *v = malloc(sizeof *v + (nbodies + 1) * sizeof(char *));
	if (!v)
		return;
	char **arr = (char **)(v + 1);
	for (size_t i = 0; i < nbodies; i++)
		arr[i] = (char *)body(i, arg);
	v->pending = pending;
	v->bodies = arr;
	v->nbodies = nbodies;
	v->fresh = fresh;
	struct cnsmp_view *old = atomic_exchange(&cnsmp_view_published, v);
	atomic_store(&cnsmp_view_phase, 0); /* whatever was collected is in v */
	if (atomic_load(&cnsmp_view_frozen))
		return; /* a dump may be reading anything: free nothing, ever */
	free(old);
	for (size_t i = 0; i < ngarbage; i++)
		free(garbage[i]);
	ngarbage = 0;
}

/* "<16 hex>-<pid>": unique per process, so batch ids never collide across
 * restarts, hosts or fork children. */
CNSMP_NOINST static void new_batch_base(void)
{
	uint64_t r = 0;
	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
		r = cnsmp_clock_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
	static const char hex[] = "0123456789abcdef";
	char *p = cnsmp_view_batch_base;
	for (int i = 15; i >= 0; i--)
		*p++ = hex[(r >> (i * 4)) & 15];
	*p++ = '-';
	char d[16];
	int n = 0;
	long pid = (long)getpid();
	do {
		d[n++] = (char)('0' + pid % 10);
		pid /= 10;
	} while (pid);
	while (n)
		*p++ = d[--n];
	*p = '\0';
}

CNSMP_NOINST void cnsmp_view_identify(void)
{
	new_batch_base();
	if (gethostname(cnsmp_view_hostname, sizeof cnsmp_view_hostname - 1) != 0)
		strcpy(cnsmp_view_hostname, "unknown");
}

/* In the child: the parent's view and garbage are the parent's (leaked,
 * not freed: a half-finished cycle of the parent's flusher may have left
 * any of it mid-change), and the child needs batch ids of its own. */
CNSMP_NOINST void cnsmp_view_atfork_child(void)
{
	garbage = NULL;
	ngarbage = capgarbage = 0;
	atomic_store(&cnsmp_view_published, NULL);
	atomic_store(&cnsmp_view_phase, 0);
	atomic_store(&cnsmp_view_frozen, 0);
	new_batch_base();
}
