/* contract.h: what the runtime and the server must agree on about an
 * ingest request (docs/payload.md): its limits, the histogram's buckets
 * and the UTF-8 rule.  Both include this one file, so the two sides cannot
 * drift apart: the runtime cuts every field at the limit the server
 * checks, and the examples in tests/contract/ are tested against both.
 *
 * Header only, no state, no allocation: the hot path and the crash path
 * may use any of it. */
#ifndef CODENSM_CONTRACT_H
#define CODENSM_CONTRACT_H

#include <stddef.h>
#include <stdint.h>

#define CNSMP_CONTRACT_MAX_BODY      (512 * 1024) /* bytes of one request body */
#define CNSMP_CONTRACT_MAX_FUNCTIONS 2000         /* entries in "functions" */
#define CNSMP_CONTRACT_NAME_MAX      512          /* bytes of a function name */
#define CNSMP_CONTRACT_DEPT_MAX      128          /* bytes of a department */
/* Bytes of a source file path: Linux's PATH_MAX, so a path the build
 * wrote into DWARF is sent whole. */
#define CNSMP_CONTRACT_FILE_MAX      4096
#define CNSMP_CONTRACT_BATCH_ID_MAX  128          /* bytes of _meta.batch_id */

/* The log2x2 latency histogram: two buckets per octave of nanoseconds.
 * Bucket 0 holds 0..1 ns, bucket 2*e+h durations whose highest set bit is
 * e and next bit is h; the last bucket holds everything from 1.5 * 2^39 ns
 * (~14 min) up.  Fixed bounds, so histograms merge by adding counts across
 * threads, flushes, processes and servers. */
#define CNSMP_CONTRACT_HIST_BUCKETS 80

/* The bucket of a duration in ns. */
static inline unsigned cnsmp_contract_hist_bucket(uint64_t ns)
{
	if (ns < 2)
		return 0;
	unsigned e = 63 - (unsigned)__builtin_clzll(ns);
	unsigned h = (unsigned)(ns >> (e - 1)) & 1u;
	unsigned b = 2 * e + h;
	return b < CNSMP_CONTRACT_HIST_BUCKETS ? b : CNSMP_CONTRACT_HIST_BUCKETS - 1;
}

/* The lower bound in ns of bucket b.  Bucket 0 is [0, 2); bucket 1 is
 * never used (ns >= 2 lands in 2e+h with e >= 1), so its bound is 2 and it
 * is empty; bucket b >= 2 starts at 2^(b/2) * (1 + (b%2)/2).  b =
 * CNSMP_CONTRACT_HIST_BUCKETS (and above) gives 2^40, where the last
 * bucket would end if it were not open-ended: only to interpolate in it. */
static inline uint64_t cnsmp_contract_hist_lower_ns(unsigned b)
{
	if (b == 0)
		return 0;
	if (b == 1)
		return 2;
	if (b > CNSMP_CONTRACT_HIST_BUCKETS)
		b = CNSMP_CONTRACT_HIST_BUCKETS;
	unsigned e = b / 2;
	return (1ull << e) + (uint64_t)(b % 2) * (1ull << (e - 1));
}

/* Length of the valid UTF-8 sequence at s (1-4, within `avail` bytes), or
 * 0 if there is none: a stray continuation byte, an overlong form, a
 * surrogate, past U+10FFFF, or a sequence cut short.  The runtime replaces
 * such a byte with '?'; the server refuses the body. */
static inline size_t cnsmp_contract_utf8_len(const unsigned char *s, size_t avail)
{
	unsigned c = s[0];
	size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 :
		   (c & 0xf8) == 0xf0 ? 4 : 0;
	if (n == 0 || n > avail || (n == 2 && c < 0xc2))
		return 0;
	uint32_t cp = n == 1 ? c : c & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

#endif /* CODENSM_CONTRACT_H */
