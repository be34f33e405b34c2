/* payload.c: turns a batch of deltas into ingest request bodies within the
 * contract's limits (docs/payload.md), writes one body for the crash path,
 * and splits a spooled body again.
 *
 * Building: every item (a function, an edge, an incident, an inventory
 * entry) is written on its own by schema.c, the one writer of the schema,
 * then bodies are packed by concatenating those strings.  The body size is
 * therefore known exactly before the body exists (sum of the parts), so no
 * body goes over max_body and nothing is serialized twice.  Items keep
 * their order, so each body holds one contiguous slice per section (struct
 * cnsmp_payload_part).  Splitting parses a body with jansson and packs its
 * items, unchanged, the same way.
 */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "internal.h"

/* ---- packing ------------------------------------------------------------ */

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

/* Adds key=value, taking the value's reference; remembers a failure. */
CNSMP_NOINST static void set(json_t *o, const char *k, json_t *v, int *bad)
{
	if (!v || json_object_set_new(o, k, v) != 0)
		*bad = 1;
}

enum { SEC_FN, SEC_EDGE, SEC_INC, SEC_INV, SEC_FLOW, NSEC };
static const char *const sec_key[NSEC] = {"functions", "edges", "incidents", "inventory", "flows"};

/* Items of one section, serialized.  src[i] is the index of item i in the
 * caller's array (items that could not be described are skipped, so the
 * two differ), which is what parts report. */
struct section {
	char **s;
	size_t *len;
	size_t *src;
	size_t n, cap, nsrc;
};

/* The _meta object of body j: batch_id base-j and, for j = 0 only, the
 * dropped/repairs counts (they must not add up twice).  Built: schema.c
 * writes it from the batch.  Split: the old body's _meta is kept, but for
 * those three fields. */
struct meta_tmpl {
	const struct cnsmp_meta *m;     /* built */
	const struct cnsmp_batch *b;
	json_t *meta;      /* split: without batch_id, dropped, repairs */
	const char *base;
	json_int_t dropped, repairs;
};

CNSMP_NOINST static char *meta_dump(const struct meta_tmpl *t, size_t j)
{
	if (t->m) {
		struct cnsmp_sink s;
		size_t len;
		cnsmp_schema_to_mem(&s);
		cnsmp_schema_meta(&s, t->m, t->b, j == 0, (long)j);
		return cnsmp_schema_take(&s, &len);
	}
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
 * it): it cannot be made smaller, and skipping it silently would hide it.
 * With `has_flow` (building), inventory item i carries the next flow item
 * when has_flow[i]: a flow rides in the body of its inventory record, so
 * it is delivered (and retried) with the record; without it (splitting)
 * flows are a section like the others. */
CNSMP_NOINST static int pack(struct section sec[NSEC], const unsigned char *has_flow,
			     const struct meta_tmpl *t,
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
			if (k == SEC_FLOW && has_flow)
				continue; /* taken with the functions */
			while (cur[k] + take[k] < sec[k].n) {
				size_t len = sec[k].len[cur[k] + take[k]];
				size_t extra = len + (take[k] ? 1 : (k == SEC_FN ? 0 : strlen(sec_key[k]) + 6));
				int flow = k == SEC_INV && has_flow && has_flow[cur[k] + take[k]];
				if (flow)
					extra += sec[SEC_FLOW].len[cur[SEC_FLOW] + take[SEC_FLOW]] +
						 (take[SEC_FLOW] ? 1 : strlen(sec_key[SEC_FLOW]) + 6);
				if (k == SEC_FN && take[k] >= max_funcs)
					break;
				if (size + extra > max_body && items > 0)
					goto full;
				size += extra;
				take[k]++;
				take[SEC_FLOW] += flow;
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

/* Appends the serialized item `str` (taking it) for the caller's item
 * `src`; NULL is an item skipped (the slot is still accounted for in
 * nsrc).  -1 only when out of memory. */
CNSMP_NOINST static int sec_add(struct section *s, char *str, size_t src)
{
	s->nsrc = src + 1;
	if (!str)
		return 0;
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

/* One item as schema.c writes it: a string (caller frees), NULL when
 * nothing was written (an unknown id: skipped), or *oom set. */
enum { ITEM_FN, ITEM_EDGE, ITEM_INC, ITEM_INV };
CNSMP_NOINST static char *item(int kind, const void *v, int *oom)
{
	struct cnsmp_sink s;
	size_t len;
	int any = 1;
	cnsmp_schema_to_mem(&s);
	switch (kind) {
	case ITEM_FN: any = cnsmp_schema_fn(&s, v, 1); break;
	case ITEM_EDGE: any = cnsmp_schema_edge(&s, v, 1); break;
	case ITEM_INC: cnsmp_schema_incident(&s, v, 1); break;
	default: cnsmp_schema_inv(&s, v, 1); break;
	}
	char *str = cnsmp_schema_take(&s, &len);
	if (!str)
		*oom = 1;
	else if (!any || !len)
		free(str), str = NULL;
	return str;
}

CNSMP_NOINST int cnsmp_payload_build_parts(const struct cnsmp_batch *b,
					   const struct cnsmp_inv_entry *inv, size_t ninv,
					   const struct cnsmp_meta *m, size_t max_body,
					   size_t max_funcs, char ***bodies,
					   struct cnsmp_payload_part **parts)
{
	struct section sec[NSEC];
	memset(sec, 0, sizeof sec);
	int rc = -1, oom = 0;
	unsigned char *has_flow = calloc(ninv + 1, 1);
	if (!has_flow)
		return -1;
	for (size_t i = 0; i < b->nfns && !oom; i++)
		if (sec_add(&sec[SEC_FN], item(ITEM_FN, &b->fns[i], &oom), i))
			goto out;
	for (size_t i = 0; i < b->nedges && !oom; i++)
		if (sec_add(&sec[SEC_EDGE], item(ITEM_EDGE, &b->edges[i], &oom), i))
			goto out;
	for (size_t i = 0; i < b->nincidents && !oom; i++)
		if (sec_add(&sec[SEC_INC], item(ITEM_INC, &b->incidents[i], &oom), i))
			goto out;
	for (size_t i = 0; i < ninv && !oom; i++) {
		size_t before = sec[SEC_INV].n;
		if (sec_add(&sec[SEC_INV], item(ITEM_INV, &inv[i], &oom), i))
			goto out;
		/* The record's flow (CODENSM_MODE=full) rides with it. */
		if (sec[SEC_INV].n == before || !inv[i].flow)
			continue;
		char *flow = strdup(inv[i].flow);
		if (!flow || sec_add(&sec[SEC_FLOW], flow, i))
			goto out;
		has_flow[before] = 1;
	}
	struct meta_tmpl t = { .m = m, .b = b };
	if (!oom)
		rc = pack(sec, has_flow, &t, max_body, max_funcs, b->dropped || b->repairs,
			  bodies, parts);
out:
	free(has_flow);
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
			char *str = json_dumps(v, JSON_COMPACT);
			if (!str || sec_add(&sec[k], str, i))
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
		rc = pack(sec, NULL, &t, max_body, max_funcs, 1, bodies, NULL);
	free(base);
	json_decref(t.meta);
out:
	sections_release(sec);
	json_decref(root);
	return rc;
}

CNSMP_NOINST int cnsmp_payload_write_fd(int fd, const struct cnsmp_batch *b,
					const struct cnsmp_meta *m)
{
	struct cnsmp_sink s;
	cnsmp_schema_to_fd(&s, fd);
	int first = 1;
	cnsmp_schema_put(&s, "{\"functions\":[");
	for (size_t i = 0; i < b->nfns; i++)
		if (cnsmp_schema_fn(&s, &b->fns[i], first))
			first = 0;
	cnsmp_schema_put(&s, "]");
	if (b->nedges) {
		cnsmp_schema_put(&s, ",\"edges\":[");
		first = 1;
		for (size_t i = 0; i < b->nedges; i++)
			if (cnsmp_schema_edge(&s, &b->edges[i], first))
				first = 0;
		cnsmp_schema_put(&s, "]");
	}
	if (b->nincidents) {
		cnsmp_schema_put(&s, ",\"incidents\":[");
		for (size_t i = 0; i < b->nincidents; i++)
			cnsmp_schema_incident(&s, &b->incidents[i], i == 0);
		cnsmp_schema_put(&s, "]");
	}
	cnsmp_schema_put(&s, ",\"_meta\":");
	cnsmp_schema_meta(&s, m, b, 1, -1);
	cnsmp_schema_put(&s, "}");
	return cnsmp_schema_close(&s);
}
