/* schema.c: the ingest payload's schema (docs/payload.md), written once:
 * every item of a request body and its _meta object, with
 * async-signal-safe calls only, to a file descriptor (the crash path) or
 * to memory (payload.c packs those items into bodies).
 *
 * Only write(2) and pure computation in fd mode: no jansson, no malloc, no
 * stdio, no locale.  Output is buffered in the sink and written in 4 KB
 * pieces.  Numbers are formatted by hand; a real always carries a '.', so
 * it parses as a real.
 *
 * Every item is cleaned the same way: strings are made valid UTF-8 (a bad
 * byte becomes '?') and cut at the contract's length (contract.h), errors
 * and estimated calls are capped at calls, counts at INT64_MAX, a weight
 * that is negative or not finite is 0.  The server rejects a whole body
 * for one bad field, so one odd name must not cost the counts of 1,999
 * other functions. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define NAME_MAX_BYTES CNSMP_CONTRACT_NAME_MAX
#define DEPT_MAX_BYTES CNSMP_CONTRACT_DEPT_MAX
#define FILE_MAX_BYTES CNSMP_CONTRACT_FILE_MAX
#define HOST_MAX_BYTES 255
#define BATCH_ID_MAX_BYTES CNSMP_CONTRACT_BATCH_ID_MAX

/* ---- clean-up ----------------------------------------------------------- */

/* Call `put` for each piece of the cleaned form of `s` (at most `max`
 * bytes, never cutting a character).  An empty result becomes `dflt`. */
typedef void (*put_fn)(void *ctx, const char *p, size_t n);
CNSMP_NOINST static void clean_str(const char *s, size_t max, const char *dflt,
				   put_fn put, void *ctx)
{
	size_t used = 0;
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		size_t n = cnsmp_contract_utf8_len(p, 4); /* stops at the NUL */
		const char *out = (const char *)p;
		size_t adv = n;
		if (n == 0) {
			out = "?";
			n = adv = 1;
		}
		if (used + n > max)
			break;
		put(ctx, out, n);
		used += n;
		p += adv;
	}
	if (used == 0 && dflt)
		put(ctx, dflt, strlen(dflt));
}

CNSMP_NOINST static double clean_weight(double w)
{
	return (isfinite(w) && w > 0) ? w : 0.0;
}

/* Calls whose time is estimated (sampled timing), capped at calls like
 * errors: sent only when some are, so an exact body is unchanged. */
CNSMP_NOINST static uint64_t estimated_calls(const struct cnsmp_fn_delta *d)
{
	return d->estimated > d->calls ? d->calls : d->estimated;
}

/* ---- writing ------------------------------------------------------------ */

/* Memory mode: one realloc per 4 KB, on the flusher thread only. */
CNSMP_NOINST static void mem_flush(struct cnsmp_sink *s)
{
	if (!s->err && s->mem_n + s->n + 1 > s->mem_cap) {
		size_t cap = s->mem_cap ? s->mem_cap : sizeof s->buf;
		while (cap < s->mem_n + s->n + 1)
			cap *= 2;
		char *p = realloc(s->mem, cap);
		if (!p)
			s->err = 1;
		else
			s->mem = p, s->mem_cap = cap;
	}
	if (!s->err) {
		memcpy(s->mem + s->mem_n, s->buf, s->n);
		s->mem_n += s->n;
		s->mem[s->mem_n] = '\0';
	}
	s->n = 0;
}

CNSMP_NOINST static void sink_flush(struct cnsmp_sink *s)
{
	if (s->fd < 0) {
		mem_flush(s);
		return;
	}
	size_t off = 0;
	while (!s->err && off < s->n) {
		ssize_t w = write(s->fd, s->buf + off, s->n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			s->err = 1;
			break;
		}
		off += (size_t)w;
	}
	s->n = 0;
}

CNSMP_NOINST static void sink_put(void *ctx, const char *p, size_t n)
{
	struct cnsmp_sink *s = ctx;
	while (n) {
		if (s->n == sizeof s->buf)
			sink_flush(s);
		size_t c = sizeof s->buf - s->n;
		if (c > n)
			c = n;
		memcpy(s->buf + s->n, p, c);
		s->n += c;
		p += c;
		n -= c;
	}
}

CNSMP_NOINST static void put_lit(struct cnsmp_sink *s, const char *lit)
{
	sink_put(s, lit, strlen(lit));
}

CNSMP_NOINST static void put_u64(struct cnsmp_sink *s, uint64_t v)
{
	char d[24];
	size_t n = sizeof d;
	do {
		d[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sink_put(s, d + n, sizeof d - n);
}

/* A count: the contract's integers are signed 64-bit (jansson, SQLite),
 * so a count past INT64_MAX is said as INT64_MAX rather than as a number
 * the server cannot read. */
CNSMP_NOINST static void put_count(struct cnsmp_sink *s, uint64_t v)
{
	put_u64(s, v > INT64_MAX ? INT64_MAX : v);
}

CNSMP_NOINST static void put_i64(struct cnsmp_sink *s, int64_t v)
{
	if (v < 0) {
		put_lit(s, "-");
		put_u64(s, (uint64_t)0 - (uint64_t)v);
	} else {
		put_u64(s, (uint64_t)v);
	}
}

/* `frac` written as exactly `ndig` digits, trailing zeros dropped (at
 * least one digit kept). */
CNSMP_NOINST static void put_frac(struct cnsmp_sink *s, unsigned __int128 frac, int ndig)
{
	char d[48];
	for (int i = ndig - 1; i >= 0; i--) {
		d[i] = (char)('0' + (int)(frac % 10));
		frac /= 10;
	}
	int n = ndig;
	while (n > 1 && d[n - 1] == '0')
		n--;
	sink_put(s, d, (size_t)n);
}

/* ns as milliseconds, exactly: the decimal it prints parses to the same
 * double as (double)ns / 1e6. */
CNSMP_NOINST static void put_ms(struct cnsmp_sink *s, uint64_t ns)
{
	put_u64(s, ns / 1000000);
	put_lit(s, ".");
	put_frac(s, ns % 1000000, 6);
}

/* A double, printed as its exact binary value when that has at most 38
 * fractional bits (every |x| >= 2^14, and any x made of few binary
 * fractions: 0.5, timestamps...), so it parses back to the same double.
 * Otherwise (|x| < 16384 with a long binary fraction, like 0.1) rounded to
 * 9 decimals: exact for any weight written with 9 decimals or fewer. */
CNSMP_NOINST static void put_real(struct cnsmp_sink *s, double x)
{
	if (!isfinite(x))
		x = 0.0;
	if (signbit(x) && x != 0.0) {
		put_lit(s, "-");
		x = -x;
	}
	uint64_t bits;
	memcpy(&bits, &x, sizeof bits);
	int bexp = (int)((bits >> 52) & 0x7ff);
	uint64_t m = bits & ((1ULL << 52) - 1);
	int e;
	if (bexp == 0) {
		e = -1074;
	} else {
		m |= 1ULL << 52;
		e = bexp - 1075;
	}
	if (m == 0) {
		put_lit(s, "0.0");
		return;
	}
	while (e < 0 && !(m & 1)) {
		m >>= 1;
		e++;
	}
	if (e >= 0) {
		if (e <= 11) {
			put_u64(s, m << e);
			put_lit(s, ".0");
		} else {
			/* >= 2^64: far beyond any count or time we send. */
			put_lit(s, "1.8446744073709552e19");
		}
		return;
	}
	int k = -e;
	if (k <= 38) {
		/* frac * 5^k < 2^k * 5^k = 10^k <= 10^38 < 2^128. */
		unsigned __int128 frac = m & ((1ULL << k) - 1);
		unsigned __int128 p5 = 1;
		for (int i = 0; i < k; i++)
			p5 *= 5;
		put_u64(s, m >> k);
		put_lit(s, ".");
		put_frac(s, frac * p5, k);
		return;
	}
	/* x < 2^14 here, so x * 1e9 < 2^54 fits. */
	long double v = (long double)x * 1e9L + 0.5L;
	uint64_t u = (uint64_t)v;
	put_u64(s, u / 1000000000);
	put_lit(s, ".");
	put_frac(s, u % 1000000000, 9);
}

CNSMP_NOINST static void esc_put(void *ctx, const char *p, size_t n)
{
	struct cnsmp_sink *s = ctx;
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			sink_put(s, e, 2);
		} else if (c < 0x20) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			sink_put(s, e, 6);
		} else {
			sink_put(s, (const char *)&c, 1);
		}
	}
}

CNSMP_NOINST static void put_str(struct cnsmp_sink *s, const char *str, size_t max,
				 const char *dflt)
{
	put_lit(s, "\"");
	clean_str(str, max, dflt, esc_put, s);
	put_lit(s, "\"");
}

CNSMP_NOINST static void put_key(struct cnsmp_sink *s, const char *k)
{
	put_lit(s, "\"");
	put_lit(s, k);
	put_lit(s, "\":");
}

CNSMP_NOINST static void put_location(struct cnsmp_sink *s, const struct cnsmp_fn *fn)
{
	put_lit(s, ",");
	put_key(s, "file");
	put_str(s, fn->file, FILE_MAX_BYTES, NULL);
	put_lit(s, ",");
	put_key(s, "line");
	put_u64(s, fn->line > 0 ? (uint64_t)fn->line : 0);
}

CNSMP_NOINST int cnsmp_schema_fn(struct cnsmp_sink *s, const struct cnsmp_fn_delta *d,
				 int first)
{
	const struct cnsmp_fn *fn = cnsmp_registry_get(d->id);
	if (!fn)
		return 0;
	if (!first)
		put_lit(s, ",");
	put_lit(s, "{");
	put_key(s, "name");
	put_str(s, fn->name, NAME_MAX_BYTES, "?");
	put_lit(s, ",");
	put_key(s, "department");
	put_str(s, fn->department, DEPT_MAX_BYTES, "default");
	put_lit(s, ",");
	put_key(s, "value_weight");
	put_real(s, clean_weight(fn->weight));
	put_lit(s, ",");
	put_key(s, "calls");
	put_count(s, d->calls);
	put_lit(s, ",");
	put_key(s, "errors");
	put_count(s, d->errors > d->calls ? d->calls : d->errors);
	put_lit(s, ",");
	put_key(s, "total_ms");
	put_ms(s, d->total_ns);
	put_lit(s, ",");
	put_key(s, "self_ms");
	put_ms(s, d->self_ns);
	put_lit(s, ",");
	put_key(s, "max_ms");
	put_ms(s, d->max_ns);
	put_lit(s, ",");
	if (d->estimated) {
		put_key(s, "estimated_calls");
		put_count(s, estimated_calls(d));
		put_lit(s, ",");
	}
	put_key(s, "hist");
	put_lit(s, "[");
	int any = 0;
	for (unsigned i = 0; i < CNSMP_HIST_BUCKETS; i++) {
		if (!d->hist[i])
			continue;
		put_lit(s, any ? ",[" : "[");
		put_u64(s, i);
		put_lit(s, ",");
		put_count(s, d->hist[i]);
		put_lit(s, "]");
		any = 1;
	}
	put_lit(s, "]");
	if (!fn->location_sent && fn->file && fn->file[0])
		put_location(s, fn);
	put_lit(s, "}");
	return 1;
}

CNSMP_NOINST int cnsmp_schema_edge(struct cnsmp_sink *s, const struct cnsmp_edge_delta *e, int first)
{
	const struct cnsmp_fn *a = cnsmp_registry_get(e->caller);
	const struct cnsmp_fn *b = cnsmp_registry_get(e->callee);
	if (!a || !b)
		return 0;
	put_lit(s, first ? "{" : ",{");
	put_key(s, "caller");
	put_str(s, a->name, NAME_MAX_BYTES, "?");
	put_lit(s, ",");
	put_key(s, "callee");
	put_str(s, b->name, NAME_MAX_BYTES, "?");
	put_lit(s, ",");
	put_key(s, "calls");
	put_count(s, e->calls);
	put_lit(s, "}");
	return 1;
}

CNSMP_NOINST void cnsmp_schema_incident(struct cnsmp_sink *s, const struct cnsmp_incident *in, int first)
{
	put_lit(s, first ? "{" : ",{");
	put_key(s, "kind");
	put_str(s, in->kind, sizeof in->kind, "error");
	put_lit(s, ",");
	put_key(s, "signal");
	put_i64(s, in->signo);
	put_lit(s, ",");
	put_key(s, "count");
	put_count(s, in->count);
	put_lit(s, ",");
	put_key(s, "first_seen");
	put_real(s, in->first_seen);
	put_lit(s, ",");
	put_key(s, "last_seen");
	put_real(s, in->last_seen);
	put_lit(s, ",");
	put_key(s, "chain");
	put_lit(s, "[");
	uint32_t depth = in->depth > CNSMP_INCIDENT_MAX_DEPTH ? CNSMP_INCIDENT_MAX_DEPTH : in->depth;
	for (uint32_t i = 0; i < depth; i++) {
		const struct cnsmp_fn *fn = cnsmp_registry_get(in->chain[i]);
		put_lit(s, i ? ",{" : "{");
		put_key(s, "name");
		put_str(s, fn ? fn->name : NULL, NAME_MAX_BYTES, "?");
		if (fn && fn->file && fn->file[0])
			put_location(s, fn);
		put_lit(s, "}");
	}
	put_lit(s, "]}");
}

CNSMP_NOINST void cnsmp_schema_inv(struct cnsmp_sink *s, const struct cnsmp_inv_entry *e,
				   int first)
{
	put_lit(s, first ? "{" : ",{");
	put_key(s, "name");
	put_str(s, e->name, NAME_MAX_BYTES, "?");
	put_lit(s, ",");
	put_key(s, "department");
	put_str(s, e->department, DEPT_MAX_BYTES, "default");
	put_lit(s, ",");
	put_key(s, "value_weight");
	put_real(s, clean_weight(e->weight));
	if (e->file && e->file[0]) {
		put_lit(s, ",");
		put_key(s, "file");
		put_str(s, e->file, FILE_MAX_BYTES, NULL);
		put_lit(s, ",");
		put_key(s, "line");
		put_u64(s, e->line > 0 ? (uint64_t)e->line : 0);
	}
	put_lit(s, "}");
}

CNSMP_NOINST void cnsmp_schema_probes(struct cnsmp_sink *s,
				      const char *const *entries, size_t n)
{
	put_lit(s, "\"probes\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			put_lit(s, ",");
		put_lit(s, entries[i]);
	}
	put_lit(s, "]");
}

CNSMP_NOINST void cnsmp_schema_meta(struct cnsmp_sink *s, const struct cnsmp_meta *m,
				    const struct cnsmp_batch *b, int first, long index)
{
	put_lit(s, "{\"sdk\":\"codensm-c\",\"version\":\"" CODENSM_VERSION "\",");
	put_key(s, "service");
	put_str(s, m->service, NAME_MAX_BYTES, "unknown");
	put_lit(s, ",");
	put_key(s, "host");
	put_str(s, m->host, HOST_MAX_BYTES, "unknown");
	put_lit(s, ",");
	put_key(s, "pid");
	put_i64(s, m->pid);
	put_lit(s, ",\"interval\":[");
	put_real(s, b->start);
	put_lit(s, ",");
	put_real(s, b->end);
	put_lit(s, "],");
	put_key(s, "dropped");
	put_count(s, first ? b->dropped : 0);
	put_lit(s, ",");
	put_key(s, "repairs");
	put_count(s, first ? b->repairs : 0);
	put_lit(s, ",");
	put_key(s, "batch_id");
	put_lit(s, "\"");
	/* room for "-" and the index within the contract's length */
	clean_str(m->batch_id, index >= 0 ? BATCH_ID_MAX_BYTES - 21 : BATCH_ID_MAX_BYTES,
		  "0", esc_put, s);
	if (index >= 0) {
		put_lit(s, "-");
		put_u64(s, (uint64_t)index);
	}
	put_lit(s, "\",\"hist\":\"log2x2-ns\"");
	if (m->build_id) {
		put_lit(s, ",");
		put_key(s, "build_id");
		put_str(s, m->build_id, BATCH_ID_MAX_BYTES, "");
	}
	put_lit(s, "}");
}

/* ---- the sink --------------------------------------------------------- */

CNSMP_NOINST void cnsmp_schema_to_fd(struct cnsmp_sink *s, int fd)
{
	s->fd = fd;
	s->err = 0;
	s->n = 0;
	s->mem = NULL;
	s->mem_n = s->mem_cap = 0;
}

CNSMP_NOINST void cnsmp_schema_to_mem(struct cnsmp_sink *s)
{
	cnsmp_schema_to_fd(s, -1);
}

CNSMP_NOINST void cnsmp_schema_put(struct cnsmp_sink *s, const char *text)
{
	put_lit(s, text);
}

CNSMP_NOINST void cnsmp_schema_put_u64(struct cnsmp_sink *s, uint64_t v)
{
	put_count(s, v);
}

CNSMP_NOINST void cnsmp_schema_put_real(struct cnsmp_sink *s, double x)
{
	put_real(s, x);
}

CNSMP_NOINST void cnsmp_schema_put_ms(struct cnsmp_sink *s, uint64_t ns)
{
	put_ms(s, ns);
}

CNSMP_NOINST void cnsmp_schema_put_str(struct cnsmp_sink *s, const char *str)
{
	put_str(s, str, NAME_MAX_BYTES, "");
}

CNSMP_NOINST int cnsmp_schema_close(struct cnsmp_sink *s)
{
	sink_flush(s);
	return s->err ? -1 : 0;
}

CNSMP_NOINST char *cnsmp_schema_take(struct cnsmp_sink *s, size_t *len)
{
	char *p = NULL;
	if (cnsmp_schema_close(s) == 0)
		p = s->mem ? s->mem : calloc(1, 1);
	else
		free(s->mem);
	*len = p ? s->mem_n : 0;
	s->mem = NULL;
	s->mem_n = s->mem_cap = 0;
	return p;
}
