/* payload.c: turns a batch of deltas into ingest request bodies within the
 * contract's limits (docs/payload.md), and writes one body with
 * async-signal-safe calls only for the crash path.
 *
 * Building: every item (a function, an edge, an incident, an inventory
 * entry) is serialized on its own with jansson, then bodies are packed by
 * concatenating those strings.  The body size is therefore known exactly
 * before the body exists (sum of the parts), so no body goes over max_body
 * and nothing is serialized twice.  Items keep their order, so each body
 * holds one contiguous slice per section (struct cnsmp_payload_part).
 *
 * Both writers apply the same clean-up, so the crash path and the normal
 * path say the same thing: strings are made valid UTF-8 (a bad byte becomes
 * '?') and cut at the contract's length (name 512 bytes, department 128),
 * errors and estimated calls are capped at calls, a weight that is negative
 * or not finite is 0.
 * The server rejects a whole body for one bad field, so one odd name must
 * not cost the counts of 1,999 other functions.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "internal.h"

#define NAME_MAX_BYTES 512
#define DEPT_MAX_BYTES 128
#define FILE_MAX_BYTES 1024

/* ---- shared clean-up ---------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), 0 if s starts an invalid
 * one.  Pure: also used in the signal handler. */
CNSMP_NOINST static size_t utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	size_t n;
	unsigned min;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	unsigned cp = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Call `put` for each piece of the cleaned form of `s` (at most `max`
 * bytes, never cutting a character).  An empty result becomes `dflt`. */
typedef void (*put_fn)(void *ctx, const char *p, size_t n);
CNSMP_NOINST static void clean_str(const char *s, size_t max, const char *dflt,
				   put_fn put, void *ctx)
{
	size_t used = 0;
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		size_t n = utf8_len(p);
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

CNSMP_NOINST static double finite_or_zero(double x)
{
	return isfinite(x) ? x : 0.0;
}

/* ---- jansson items (flusher thread) ------------------------------------- */

struct strbuf {
	char *p;
	size_t n, cap;
	int oom;
};

CNSMP_NOINST static void sb_put(void *ctx, const char *p, size_t n)
{
	struct strbuf *sb = ctx;
	if (sb->oom)
		return;
	if (sb->n + n + 1 > sb->cap) {
		size_t cap = sb->cap ? sb->cap * 2 : 64;
		while (cap < sb->n + n + 1)
			cap *= 2;
		char *q = realloc(sb->p, cap);
		if (!q) {
			sb->oom = 1;
			return;
		}
		sb->p = q;
		sb->cap = cap;
	}
	memcpy(sb->p + sb->n, p, n);
	sb->n += n;
	sb->p[sb->n] = '\0';
}

CNSMP_NOINST static json_t *jstr(const char *s, size_t max, const char *dflt)
{
	struct strbuf sb = {0};
	clean_str(s, max, dflt, sb_put, &sb);
	json_t *j = sb.oom ? NULL : json_string(sb.p ? sb.p : "");
	free(sb.p);
	return j;
}

CNSMP_NOINST static json_t *jint(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* Adds key=value, taking the value's reference; remembers a failure. */
CNSMP_NOINST static void set(json_t *o, const char *k, json_t *v, int *bad)
{
	if (!v || json_object_set_new(o, k, v) != 0)
		*bad = 1;
}

CNSMP_NOINST static json_t *fn_item(const struct cnsmp_fn_delta *d)
{
	struct cnsmp_fn *fn = cnsmp_registry_get(d->id);
	if (!fn)
		return NULL;
	int bad = 0;
	json_t *o = json_object();
	if (!o)
		return NULL;
	uint64_t errors = d->errors > d->calls ? d->calls : d->errors;
	set(o, "name", jstr(fn->name, NAME_MAX_BYTES, "?"), &bad);
	set(o, "department", jstr(fn->department, DEPT_MAX_BYTES, "default"), &bad);
	set(o, "value_weight", json_real(clean_weight(fn->weight)), &bad);
	set(o, "calls", jint(d->calls), &bad);
	set(o, "errors", jint(errors), &bad);
	set(o, "total_ms", json_real((double)d->total_ns / 1e6), &bad);
	set(o, "self_ms", json_real((double)d->self_ns / 1e6), &bad);
	set(o, "max_ms", json_real((double)d->max_ns / 1e6), &bad);
	if (d->estimated)
		set(o, "estimated_calls", jint(estimated_calls(d)), &bad);
	json_t *h = json_array();
	for (unsigned i = 0; h && i < CNSMP_HIST_BUCKETS; i++) {
		if (!d->hist[i])
			continue;
		json_t *pair = json_pack("[II]", (json_int_t)i,
					 (json_int_t)(d->hist[i] > INT64_MAX ? INT64_MAX : d->hist[i]));
		if (!pair || json_array_append_new(h, pair) != 0)
			bad = 1;
	}
	set(o, "hist", h, &bad);
	if (!fn->location_sent && fn->file && fn->file[0]) {
		set(o, "file", jstr(fn->file, FILE_MAX_BYTES, NULL), &bad);
		set(o, "line", jint(fn->line > 0 ? (uint64_t)fn->line : 0), &bad);
	}
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

CNSMP_NOINST static json_t *edge_item(const struct cnsmp_edge_delta *e)
{
	struct cnsmp_fn *a = cnsmp_registry_get(e->caller);
	struct cnsmp_fn *b = cnsmp_registry_get(e->callee);
	if (!a || !b)
		return NULL;
	int bad = 0;
	json_t *o = json_object();
	if (!o)
		return NULL;
	set(o, "caller", jstr(a->name, NAME_MAX_BYTES, "?"), &bad);
	set(o, "callee", jstr(b->name, NAME_MAX_BYTES, "?"), &bad);
	set(o, "calls", jint(e->calls), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

CNSMP_NOINST static json_t *frame_item(uint32_t id, int *bad)
{
	struct cnsmp_fn *fn = cnsmp_registry_get(id);
	json_t *o = json_object();
	if (!o) {
		*bad = 1;
		return NULL;
	}
	set(o, "name", jstr(fn ? fn->name : NULL, NAME_MAX_BYTES, "?"), bad);
	if (fn && fn->file && fn->file[0]) {
		set(o, "file", jstr(fn->file, FILE_MAX_BYTES, NULL), bad);
		set(o, "line", jint(fn->line > 0 ? (uint64_t)fn->line : 0), bad);
	}
	return o;
}

CNSMP_NOINST static json_t *incident_item(const struct cnsmp_incident *in)
{
	int bad = 0;
	json_t *o = json_object();
	if (!o)
		return NULL;
	set(o, "kind", jstr(in->kind, sizeof in->kind, "error"), &bad);
	set(o, "signal", json_integer(in->signo), &bad);
	set(o, "count", jint(in->count), &bad);
	set(o, "first_seen", json_real(finite_or_zero(in->first_seen)), &bad);
	set(o, "last_seen", json_real(finite_or_zero(in->last_seen)), &bad);
	json_t *chain = json_array();
	uint32_t depth = in->depth > CNSMP_INCIDENT_MAX_DEPTH ? CNSMP_INCIDENT_MAX_DEPTH : in->depth;
	for (uint32_t i = 0; chain && i < depth; i++) {
		json_t *f = frame_item(in->chain[i], &bad);
		if (!f || json_array_append_new(chain, f) != 0)
			bad = 1;
	}
	set(o, "chain", chain, &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

CNSMP_NOINST static json_t *inv_item(const struct cnsmp_inv_entry *e)
{
	int bad = 0;
	json_t *o = json_object();
	if (!o)
		return NULL;
	set(o, "name", jstr(e->name, NAME_MAX_BYTES, "?"), &bad);
	set(o, "department", jstr(e->department, DEPT_MAX_BYTES, "default"), &bad);
	set(o, "value_weight", json_real(clean_weight(e->weight)), &bad);
	if (e->file && e->file[0]) {
		set(o, "file", jstr(e->file, FILE_MAX_BYTES, NULL), &bad);
		set(o, "line", jint(e->line > 0 ? (uint64_t)e->line : 0), &bad);
	}
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- the packer --------------------------------------------------------- */

enum { SEC_FN, SEC_EDGE, SEC_INC, SEC_INV, NSEC };
static const char *const sec_key[NSEC] = {"functions", "edges", "incidents", "inventory"};

/* Items of one section, serialized.  src[i] is the index of item i in the
 * caller's array (items that could not be described are skipped, so the
 * two differ), which is what parts report. */
struct section {
	char **s;
	size_t *len;
	size_t *src;
	size_t n, cap, nsrc;
};

/* The _meta object minus batch_id; body j gets batch_id base-j and, for
 * j = 0 only, the dropped/repairs counts (they must not add up twice). */
struct meta_tmpl {
	json_t *meta;      /* without batch_id, dropped, repairs */
	const char *base;
	json_int_t dropped, repairs;
};

CNSMP_NOINST static char *meta_dump(const struct meta_tmpl *t, size_t j)
{
	json_t *m = json_deep_copy(t->meta);
	if (!m)
		return NULL;
	int first = j == 0;
	char id[256];
	size_t bl = strlen(t->base);
	if (bl > sizeof id - 24)
		bl = sizeof id - 24;
	memcpy(id, t->base, bl);
	id[bl] = '-';
	/* Decimal index by hand: keeps this file free of printf formats. */
	char digits[24];
	size_t nd = 0;
	do {
		digits[nd++] = (char)('0' + j % 10);
		j /= 10;
	} while (j);
	for (size_t i = 0; i < nd; i++)
		id[bl + 1 + i] = digits[nd - 1 - i];
	id[bl + 1 + nd] = '\0';
	int bad = 0;
	set(m, "dropped", json_integer(first ? t->dropped : 0), &bad);
	set(m, "repairs", json_integer(first ? t->repairs : 0), &bad);
	set(m, "batch_id", json_string(id), &bad);
	set(m, "hist", json_string("log2x2-ns"), &bad);
	char *s = bad ? NULL : json_dumps(m, JSON_COMPACT);
	json_decref(m);
	return s;
}

static void sb_cat(struct strbuf *sb, const char *s)
{
	sb_put(sb, s, strlen(s));
}

/* Greedy packing in item order: a body takes items while it stays within
 * max_body bytes and max_funcs functions.  An item too big to fit even in
 * an empty body goes alone (the server answers 413 and the flusher drops
 * it): it cannot be made smaller, and skipping it silently would hide it. */
CNSMP_NOINST static int pack(struct section sec[NSEC], const struct meta_tmpl *t,
			     size_t max_body, size_t max_funcs, int force_one,
			     char ***bodies_out, struct cnsmp_payload_part **parts_out)
{
	size_t total = 0;
	for (int k = 0; k < NSEC; k++)
		total += sec[k].n;
	char **bodies = NULL;
	struct cnsmp_payload_part *parts = NULL;
	size_t nb = 0;
	size_t cur[NSEC] = {0};
	if (max_funcs == 0)
		max_funcs = 1;
	if (total == 0 && !force_one) {
		*bodies_out = NULL;
		if (parts_out)
			*parts_out = NULL;
		return 0;
	}
	size_t done = 0;
	do {
		char *meta = meta_dump(t, nb);
		if (!meta)
			goto fail;
		/* {"functions":[]  ,"_meta":  META  } */
		size_t size = 1 + strlen("\"functions\":[]") + strlen(",\"_meta\":") +
			      strlen(meta) + 1;
		size_t take[NSEC] = {0}, items = 0;
		for (int k = 0; k < NSEC; k++) {
			while (cur[k] + take[k] < sec[k].n) {
				size_t len = sec[k].len[cur[k] + take[k]];
				size_t extra = len + (take[k] ? 1 : (k == SEC_FN ? 0 : strlen(sec_key[k]) + 6));
				if (k == SEC_FN && take[k] >= max_funcs)
					break;
				if (size + extra > max_body && items > 0)
					goto full;
				size += extra;
				take[k]++;
				items++;
			}
		}
	full:;
		struct strbuf sb = {0};
		sb_cat(&sb, "{");
		int any = 0;
		for (int k = 0; k < NSEC; k++) {
			if (!take[k] && k != SEC_FN)
				continue;
			if (any)
				sb_cat(&sb, ",");
			any = 1;
			sb_cat(&sb, "\"");
			sb_cat(&sb, sec_key[k]);
			sb_cat(&sb, "\":[");
			for (size_t i = 0; i < take[k]; i++) {
				if (i)
					sb_cat(&sb, ",");
				sb_put(&sb, sec[k].s[cur[k] + i], sec[k].len[cur[k] + i]);
			}
			sb_cat(&sb, "]");
		}
		sb_cat(&sb, ",\"_meta\":");
		sb_cat(&sb, meta);
		sb_cat(&sb, "}");
		free(meta);
		if (sb.oom || sb.n != size) {
			/* sb.n != size would be a bug in the arithmetic above. */
			if (!sb.oom)
				cnsmp_log(CNSMP_LOG_INFO, "payload size mismatch: %zu != %zu", sb.n, size);
			free(sb.p);
			goto fail;
		}
		char **nbod = realloc(bodies, (nb + 1) * sizeof *bodies);
		if (!nbod) {
			free(sb.p);
			goto fail;
		}
		bodies = nbod;
		struct cnsmp_payload_part *npart = realloc(parts, (nb + 1) * sizeof *parts);
		if (!npart) {
			free(sb.p);
			goto fail;
		}
		parts = npart;
		bodies[nb] = sb.p;
		/* Report slices in the caller's indices; a skipped (undescribable)
		 * item belongs to the body holding its successor. */
		size_t lo[NSEC], hi[NSEC];
		for (int k = 0; k < NSEC; k++) {
			size_t a = cur[k], b = cur[k] + take[k];
			hi[k] = b >= sec[k].n ? sec[k].nsrc : sec[k].src[b];
			lo[k] = a >= sec[k].n ? hi[k] /* section used up */
				: a == 0  ? 0
					  : sec[k].src[a];
			cur[k] = b;
			done += take[k];
		}
		parts[nb] = (struct cnsmp_payload_part){
			lo[SEC_FN], hi[SEC_FN], lo[SEC_EDGE], hi[SEC_EDGE],
			lo[SEC_INC], hi[SEC_INC], lo[SEC_INV], hi[SEC_INV]};
		nb++;
		(void)items;
	} while (done < total);
	*bodies_out = bodies;
	if (parts_out)
		*parts_out = parts;
	else
		free(parts);
	return (int)nb;
fail:
	for (size_t i = 0; i < nb; i++)
		free(bodies[i]);
	free(bodies);
	free(parts);
	return -1;
}

CNSMP_NOINST static void sections_release(struct section sec[NSEC])
{
	for (int k = 0; k < NSEC; k++) {
		for (size_t i = 0; i < sec[k].n; i++)
			free(sec[k].s[i]);
		free(sec[k].s);
		free(sec[k].len);
		free(sec[k].src);
	}
}

/* Appends the serialized item; NULL items are skipped (the slot is still
 * accounted for in nsrc).  -1 only when out of memory. */
CNSMP_NOINST static int sec_add(struct section *s, json_t *item, size_t src)
{
	s->nsrc = src + 1;
	if (!item)
		return 0;
	char *str = json_dumps(item, JSON_COMPACT);
	json_decref(item);
	if (!str)
		return -1;
	/* Doubling, not one more each time: an allocator that never grows a
	 * block in place (ASan's, musl's) would copy the arrays n times. */
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		char **ns = realloc(s->s, nc * sizeof *ns);
		if (ns)
			s->s = ns;
		size_t *nl = realloc(s->len, nc * sizeof *nl);
		if (nl)
			s->len = nl;
		size_t *nsr = realloc(s->src, nc * sizeof *nsr);
		if (nsr)
			s->src = nsr;
		if (!ns || !nl || !nsr) {
			free(str);
			return -1;
		}
		s->cap = nc;
	}
	s->s[s->n] = str;
	s->len[s->n] = strlen(str);
	s->src[s->n] = src;
	s->n++;
	return 0;
}

CNSMP_NOINST int cnsmp_payload_build_parts(const struct cnsmp_batch *b,
					   const struct cnsmp_inv_entry *inv, size_t ninv,
					   const struct cnsmp_meta *m, size_t max_body,
					   size_t max_funcs, char ***bodies,
					   struct cnsmp_payload_part **parts)
{
	struct section sec[NSEC];
	memset(sec, 0, sizeof sec);
	int rc = -1;
	for (size_t i = 0; i < b->nfns; i++)
		if (sec_add(&sec[SEC_FN], fn_item(&b->fns[i]), i))
			goto out;
	for (size_t i = 0; i < b->nedges; i++)
		if (sec_add(&sec[SEC_EDGE], edge_item(&b->edges[i]), i))
			goto out;
	for (size_t i = 0; i < b->nincidents; i++)
		if (sec_add(&sec[SEC_INC], incident_item(&b->incidents[i]), i))
			goto out;
	for (size_t i = 0; i < ninv; i++)
		if (sec_add(&sec[SEC_INV], inv_item(&inv[i]), i))
			goto out;
	struct meta_tmpl t = {0};
	int bad = 0;
	t.meta = json_object();
	if (!t.meta)
		goto out;
	set(t.meta, "sdk", json_string("codensm-c"), &bad);
	set(t.meta, "version", json_string(CODENSM_VERSION), &bad);
	set(t.meta, "service", jstr(m->service, NAME_MAX_BYTES, "unknown"), &bad);
	set(t.meta, "host", jstr(m->host, 255, "unknown"), &bad);
	set(t.meta, "pid", json_integer(m->pid), &bad);
	set(t.meta, "interval", json_pack("[ff]", finite_or_zero(b->start),
					  finite_or_zero(b->end)), &bad);
	t.base = m->batch_id ? m->batch_id : "0";
	t.dropped = (json_int_t)(b->dropped > INT64_MAX ? INT64_MAX : b->dropped);
	t.repairs = (json_int_t)(b->repairs > INT64_MAX ? INT64_MAX : b->repairs);
	if (!bad)
		rc = pack(sec, &t, max_body, max_funcs, b->dropped || b->repairs,
			  bodies, parts);
	json_decref(t.meta);
out:
	sections_release(sec);
	return rc;
}

CNSMP_NOINST int cnsmp_payload_build(const struct cnsmp_batch *b,
				     const struct cnsmp_inv_entry *inv, size_t ninv,
				     const struct cnsmp_meta *m, size_t max_body,
				     size_t max_funcs, char ***bodies)
{
	return cnsmp_payload_build_parts(b, inv, ninv, m, max_body, max_funcs,
					 bodies, NULL);
}

CNSMP_NOINST int cnsmp_payload_split(const char *body, size_t max_body,
				     size_t max_funcs, char ***bodies)
{
	json_error_t err;
	json_t *root = json_loads(body, 0, &err);
	if (!json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	struct section sec[NSEC];
	memset(sec, 0, sizeof sec);
	int rc = -1;
	for (int k = 0; k < NSEC; k++) {
		json_t *arr = json_object_get(root, sec_key[k]);
		size_t i;
		json_t *v;
		json_array_foreach(arr, i, v) {
			if (sec_add(&sec[k], json_incref(v), i))
				goto out;
		}
	}
	struct meta_tmpl t = {0};
	json_t *meta = json_object_get(root, "_meta");
	t.meta = json_is_object(meta) ? json_deep_copy(meta) : json_object();
	if (!t.meta)
		goto out;
	const char *id = json_string_value(json_object_get(t.meta, "batch_id"));
	char *base = strdup(id ? id : "0");
	t.base = base;
	t.dropped = json_integer_value(json_object_get(t.meta, "dropped"));
	t.repairs = json_integer_value(json_object_get(t.meta, "repairs"));
	json_object_del(t.meta, "batch_id");
	json_object_del(t.meta, "dropped");
	json_object_del(t.meta, "repairs");
	json_object_del(t.meta, "hist");
	if (base)
		rc = pack(sec, &t, max_body, max_funcs, 1, bodies, NULL);
	free(base);
	json_decref(t.meta);
out:
	sections_release(sec);
	json_decref(root);
	return rc;
}

/* ---- the async-signal-safe writer ---------------------------------------
 *
 * Only write(2) and pure computation: no jansson, no malloc, no stdio, no
 * locale.  Output is buffered on the stack and written in 4 KB pieces.
 * Numbers are formatted by hand; a real always carries a '.', so it parses
 * as a real like jansson's output does. */

struct sink {
	int fd;
	int err;
	size_t n;
	char buf[4096];
};

CNSMP_NOINST static void sink_flush(struct sink *s)
{
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
	struct sink *s = ctx;
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

CNSMP_NOINST static void put_lit(struct sink *s, const char *lit)
{
	sink_put(s, lit, strlen(lit));
}

CNSMP_NOINST static void put_u64(struct sink *s, uint64_t v)
{
	char d[24];
	size_t n = sizeof d;
	do {
		d[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sink_put(s, d + n, sizeof d - n);
}

CNSMP_NOINST static void put_i64(struct sink *s, int64_t v)
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
CNSMP_NOINST static void put_frac(struct sink *s, unsigned __int128 frac, int ndig)
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
CNSMP_NOINST static void put_ms(struct sink *s, uint64_t ns)
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
CNSMP_NOINST static void put_real(struct sink *s, double x)
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
	struct sink *s = ctx;
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

CNSMP_NOINST static void put_str(struct sink *s, const char *str, size_t max,
				 const char *dflt)
{
	put_lit(s, "\"");
	clean_str(str, max, dflt, esc_put, s);
	put_lit(s, "\"");
}

CNSMP_NOINST static void put_key(struct sink *s, const char *k)
{
	put_lit(s, "\"");
	put_lit(s, k);
	put_lit(s, "\":");
}

CNSMP_NOINST static void put_location(struct sink *s, const struct cnsmp_fn *fn)
{
	put_lit(s, ",");
	put_key(s, "file");
	put_str(s, fn->file, FILE_MAX_BYTES, NULL);
	put_lit(s, ",");
	put_key(s, "line");
	put_u64(s, fn->line > 0 ? (uint64_t)fn->line : 0);
}

CNSMP_NOINST static int write_fn(struct sink *s, const struct cnsmp_fn_delta *d, int first)
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
	put_u64(s, d->calls);
	put_lit(s, ",");
	put_key(s, "errors");
	put_u64(s, d->errors > d->calls ? d->calls : d->errors);
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
		put_u64(s, estimated_calls(d));
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
		put_u64(s, d->hist[i]);
		put_lit(s, "]");
		any = 1;
	}
	put_lit(s, "]");
	if (!fn->location_sent && fn->file && fn->file[0])
		put_location(s, fn);
	put_lit(s, "}");
	return 1;
}

CNSMP_NOINST static int write_edge(struct sink *s, const struct cnsmp_edge_delta *e, int first)
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
	put_u64(s, e->calls);
	put_lit(s, "}");
	return 1;
}

CNSMP_NOINST static int write_incident(struct sink *s, const struct cnsmp_incident *in, int first)
{
	put_lit(s, first ? "{" : ",{");
	put_key(s, "kind");
	put_str(s, in->kind, sizeof in->kind, "error");
	put_lit(s, ",");
	put_key(s, "signal");
	put_i64(s, in->signo);
	put_lit(s, ",");
	put_key(s, "count");
	put_u64(s, in->count);
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
	return 1;
}

CNSMP_NOINST int cnsmp_payload_write_fd(int fd, const struct cnsmp_batch *b,
					const struct cnsmp_meta *m)
{
	struct sink s;
	s.fd = fd;
	s.err = 0;
	s.n = 0;
	int first = 1;
	put_lit(&s, "{\"functions\":[");
	for (size_t i = 0; i < b->nfns; i++)
		if (write_fn(&s, &b->fns[i], first))
			first = 0;
	put_lit(&s, "]");
	if (b->nedges) {
		put_lit(&s, ",\"edges\":[");
		first = 1;
		for (size_t i = 0; i < b->nedges; i++)
			if (write_edge(&s, &b->edges[i], first))
				first = 0;
		put_lit(&s, "]");
	}
	if (b->nincidents) {
		put_lit(&s, ",\"incidents\":[");
		for (size_t i = 0; i < b->nincidents; i++)
			write_incident(&s, &b->incidents[i], i == 0);
		put_lit(&s, "]");
	}
	put_lit(&s, ",\"_meta\":{\"sdk\":\"codensm-c\",\"version\":\"" CODENSM_VERSION "\",");
	put_key(&s, "service");
	put_str(&s, m->service, NAME_MAX_BYTES, "unknown");
	put_lit(&s, ",");
	put_key(&s, "host");
	put_str(&s, m->host, 255, "unknown");
	put_lit(&s, ",");
	put_key(&s, "pid");
	put_i64(&s, m->pid);
	put_lit(&s, ",\"interval\":[");
	put_real(&s, b->start);
	put_lit(&s, ",");
	put_real(&s, b->end);
	put_lit(&s, "],");
	put_key(&s, "dropped");
	put_u64(&s, b->dropped > INT64_MAX ? INT64_MAX : b->dropped);
	put_lit(&s, ",");
	put_key(&s, "repairs");
	put_u64(&s, b->repairs > INT64_MAX ? INT64_MAX : b->repairs);
	put_lit(&s, ",");
	put_key(&s, "batch_id");
	put_str(&s, m->batch_id, 200, "0");
	put_lit(&s, ",\"hist\":\"log2x2-ns\"}}");
	sink_flush(&s);
	return s.err ? -1 : 0;
}
