/* arena.c: the memory of per-thread state (blocks, counters, stack chunks,
 * caches, edge and incident tables): zeroed, on cache-line boundaries,
 * never freed, and async-signal-safe to allocate.
 *
 * A thread's state is allocated on the hooks' slow paths, which may run
 * inside a signal handler that interrupted the program anywhere, malloc
 * included; and it is never freed (blocks outlive their threads, the
 * crash handler walks them without a lock).  So it comes from regions
 * mapped here, handed out by an atomic bump: no lock, no malloc, a
 * syscall only when a region is full.  Everything is rounded to whole
 * cache lines, so that two threads' pieces never share one, and packed,
 * so that a thread that uses 5 kB costs 5 kB, not a page per piece.  A
 * region's pages become resident as they are first written.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include "thread.h"

#define REGION_SIZE ((size_t)1 << 20) /* mapped at a time (virtual) */

struct region {
	_Atomic size_t used; /* bytes handed out, past `size` once full */
	size_t size;         /* bytes after the header */
	char mem[] __attribute__((aligned(64)));
};

static _Atomic(struct region *) current;

CNSMP_NOINST void *cnsmp_arena_alloc(size_t size)
{
	size = (size + 63) & ~(size_t)63;
	for (;;) {
		struct region *r = atomic_load_explicit(&current, memory_order_acquire);
		if (r && atomic_load_explicit(&r->used, memory_order_relaxed) + size <= r->size) {
			size_t at = atomic_fetch_add_explicit(&r->used, size,
							      memory_order_relaxed);
			if (at + size <= r->size)
				return r->mem + at;
		}
		/* Full (the bytes the failed bump took are lost): map the
		 * next region, big enough for this piece. */
		int saved = errno;
		size_t len = sizeof(struct region) + (size > REGION_SIZE ? size : REGION_SIZE);
		struct region *n = mmap(NULL, len, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (n == MAP_FAILED) {
			errno = saved;
			return NULL;
		}
		n->size = len - sizeof *n;
		atomic_init(&n->used, size);
		struct region *want = r;
		if (atomic_compare_exchange_strong_explicit(&current, &want, n,
							    memory_order_acq_rel,
							    memory_order_acquire)) {
			errno = saved;
			return n->mem;
		}
		munmap(n, len); /* another thread mapped one first: bump there */
		errno = saved;
	}
}
