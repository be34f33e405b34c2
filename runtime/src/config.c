/* config.c: the CODENSM_* environment and codensm_init() options turned
 * into one struct cnsmp_config, where a bad value is reported and ignored
 * and never stops the host program. */
#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Longer values are refused outright: no prefix list or path is that long,
 * and quoting a megabyte into the log would be its own problem. */
#define MAX_VALUE (64 * 1024)
#define MAX_QUOTED 80
#define MAX_DEPARTMENT 128

/* Why a value was refused; filled by the parsers for the one log line. */
struct why {
	char text[160];
};

__attribute__((format(printf, 2, 3)))
static int fail(struct why *w, const char *fmt, ...)
{
	if (w) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->text, sizeof(w->text), fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* [s, s+n) with spaces and tabs trimmed from both ends. */
static void trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t'))
		(*s)++, (*n)--;
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

static int has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 1;
	return 0;
}

/* A name prefix is made of the characters names are made of: C
 * identifiers, '.' between components, "::" and template brackets for
 * C++, '~' for destructors, '-' as found in file names. */
static int prefix_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.:~<>-", s[i]))
			return 0;
	return n > 0;
}

/* Decimal numbers in the C locale whatever setlocale() the host made
 * ("0.5" must not read as 0 under de_DE); hex, inf and nan are refused
 * because no one writes a weight or an interval that way on purpose. */
static int parse_decimal(const char *s, size_t n, double *out)
{
	static locale_t c_locale;
	char buf[64];
	if (n == 0 || n >= sizeof(buf))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]) && !strchr(".eE+-", s[i]))
			return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!c_locale)
		c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (!c_locale)
		return -1;
	char *end;
	errno = 0;
	double d = strtod_l(buf, &end, c_locale);
	if (end != buf + n || errno == ERANGE || !isfinite(d))
		return -1;
	*out = d;
	return 0;
}

static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* ---- prefix lists and prefix maps -------------------------------------- */

CNSMP_NOINST void cnsmp_prefixes_release(struct cnsmp_prefixes *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->prefix[i]);
	free(p->prefix);
	p->prefix = NULL;
	p->n = 0;
}

CNSMP_NOINST void cnsmp_prefix_map_release(struct cnsmp_prefix_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->prefix[i]);
		free(m->value[i]);
	}
	free(m->prefix);
	free(m->value);
	free(m->number);
	memset(m, 0, sizeof(*m));
}

/* One comma-separated item, trimmed; empty items are skipped by callers
 * so that "a,,b" and a trailing comma are fine. */
struct item {
	const char *s;
	size_t n;
};

/* Splits s into its non-empty items (malloc'd array in *items). */
static int split(const char *s, struct item **items, size_t *count,
		 struct why *why)
{
	size_t cap = 1;
	for (const char *p = s; *p; p++)
		cap += *p == ',';
	*items = calloc(cap, sizeof(**items));
	if (!*items)
		return fail(why, "out of memory");
	*count = 0;
	while (1) {
		const char *comma = strchr(s, ',');
		struct item it = { s, comma ? (size_t)(comma - s) : strlen(s) };
		trim(&it.s, &it.n);
		if (it.n)
			(*items)[(*count)++] = it;
		if (!comma)
			return 0;
		s = comma + 1;
	}
}

static int parse_prefixes(const char *s, struct cnsmp_prefixes *out,
			  struct why *why)
{
	struct item *it;
	size_t n;
	if (!s)
		return fail(why, "missing");
	if (split(s, &it, &n, why) < 0)
		return -1;
	struct cnsmp_prefixes p = { 0, calloc(n ? n : 1, sizeof(char *)) };
	int rc = p.prefix ? 0 : fail(why, "out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!prefix_ok(it[i].s, it[i].n))
			rc = fail(why, "'%.*s' is not a name prefix (allowed: letters, digits, _ . : ~ < > -)",
				  (int)(it[i].n > 60 ? 60 : it[i].n), it[i].s);
		else if (!(p.prefix[p.n] = dup_n(it[i].s, it[i].n)))
			rc = fail(why, "out of memory");
		else
			p.n++;
	}
	free(it);
	if (rc < 0) {
		cnsmp_prefixes_release(&p);
		return -1;
	}
	*out = p;
	return 0;
}

CNSMP_NOINST int cnsmp_config_parse_prefixes(const char *s, struct cnsmp_prefixes *out)
{
	return parse_prefixes(s, out, NULL);
}

/* One "prefix=value" item into slot m->n of the (pre-sized) map. */
static int map_item(struct item it, int numeric, struct cnsmp_prefix_map *m,
		    struct why *why)
{
	int shown = (int)(it.n > 60 ? 60 : it.n);
	const char *eq = memchr(it.s, '=', it.n);
	if (!eq)
		return fail(why, "'%.*s' has no '='", shown, it.s);
	struct item key = { it.s, (size_t)(eq - it.s) };
	struct item val = { eq + 1, it.n - key.n - 1 };
	trim(&key.s, &key.n);
	trim(&val.s, &val.n);
	if (!key.n)
		return fail(why, "'%.*s' has no prefix before '='", shown, it.s);
	if (!prefix_ok(key.s, key.n))
		return fail(why, "'%.*s' is not a name prefix (allowed: letters, digits, _ . : ~ < > -)",
			    (int)(key.n > 60 ? 60 : key.n), key.s);
	if (!val.n)
		return fail(why, "'%.*s' has no value after '='", shown, it.s);
	double d = 0;
	if (numeric && (parse_decimal(val.s, val.n, &d) < 0 || d < 0))
		return fail(why, "'%.*s' is not a number >= 0", shown, val.s);
	if (!numeric && (val.n > MAX_DEPARTMENT || has_control(val.s, val.n) ||
			 memchr(val.s, '=', val.n)))
		return fail(why, "'%.*s' is not a department name (1..%d bytes, no control characters or '=')",
			    shown, val.s, MAX_DEPARTMENT);
	m->prefix[m->n] = dup_n(key.s, key.n);
	m->value[m->n] = dup_n(val.s, val.n);
	m->number[m->n] = d;
	m->n++;
	if (!m->prefix[m->n - 1] || !m->value[m->n - 1])
		return fail(why, "out of memory");
	return 0;
}

static int parse_map(const char *s, int numeric, struct cnsmp_prefix_map *out,
		     struct why *why)
{
	struct item *it;
	size_t n;
	if (!s)
		return fail(why, "missing");
	if (split(s, &it, &n, why) < 0)
		return -1;
	struct cnsmp_prefix_map m = { 0 };
	m.prefix = calloc(n ? n : 1, sizeof(char *));
	m.value = calloc(n ? n : 1, sizeof(char *));
	m.number = calloc(n ? n : 1, sizeof(double));
	int rc = m.prefix && m.value && m.number ? 0 : fail(why, "out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = map_item(it[i], numeric, &m, why);
	free(it);
	if (rc < 0) {
		cnsmp_prefix_map_release(&m);
		return -1;
	}
	*out = m;
	return 0;
}

CNSMP_NOINST int cnsmp_config_parse_map(const char *s, int numeric,
					struct cnsmp_prefix_map *out)
{
	return parse_map(s, numeric, out, NULL);
}

/* An interval longer than a day is a typo (ms for s), and data held that
 * long is data lost when the host is killed. */
CNSMP_NOINST int cnsmp_config_parse_seconds(const char *s, double *out)
{
	double d;
	size_t n = s ? strlen(s) : 0;
	trim(&s, &n);
	if (!s || parse_decimal(s, n, &d) < 0 || !(d > 0) || d > 86400)
		return -1;
	*out = d;
	return 0;
}

/* ---- one setter per variable ------------------------------------------- */

/* Each setter parses a value (env or option, already trimmed) and stores
 * it in cfg only if it is well-formed, so a refused value leaves whatever
 * was there: the default for the environment, the environment's value for
 * an option. */

static int set_string(char **field, const char *v, struct why *why)
{
	if (!*v)
		return fail(why, "empty");
	if (has_control(v, strlen(v)))
		return fail(why, "contains control characters");
	char *p = strdup(v);
	if (!p)
		return fail(why, "out of memory");
	free(*field);
	*field = p;
	return 0;
}

/* The key goes into an HTTP header: printable ASCII only, so a stray
 * newline can never inject a header. */
static int set_api_key(struct cnsmp_config *cfg, const char *v, struct why *why)
{
	for (const char *p = v; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			return fail(why, "contains a character that is not printable ASCII");
	return set_string(&cfg->api_key, v, why);
}

static int set_endpoint(struct cnsmp_config *cfg, const char *v, struct why *why)
{
	size_t skip = !strncasecmp(v, "http://", 7)	 ? 7
		      : !strncasecmp(v, "https://", 8) ? 8
						       : 0;
	if (!skip)
		return fail(why, "not an http:// or https:// URL");
	if (!v[skip] || v[skip] == '/')
		return fail(why, "no host after the scheme");
	if (strpbrk(v, " \t"))
		return fail(why, "contains spaces");
	return set_string(&cfg->endpoint, v, why);
}

/* An empty CODENSM_INCLUDE is read as unset (every function of the user's
 * own code), the way a script that passes an empty $VAR means "no filter":
 * "track nothing" is what CODENSM_DISABLE=1 is for. */
static int set_include(struct cnsmp_config *cfg, const char *v, struct why *why)
{
	struct cnsmp_prefixes p;
	if (parse_prefixes(v, &p, why) < 0)
		return -1;
	cnsmp_prefixes_release(&cfg->include);
	cfg->include = p;
	cfg->include_set = p.n > 0;
	return 0;
}

static int set_exclude(struct cnsmp_config *cfg, const char *v, struct why *why)
{
	struct cnsmp_prefixes p;
	if (parse_prefixes(v, &p, why) < 0)
		return -1;
	cnsmp_prefixes_release(&cfg->exclude);
	cfg->exclude = p;
	return 0;
}

static int set_map(struct cnsmp_prefix_map *field, int numeric, const char *v,
		   struct why *why)
{
	struct cnsmp_prefix_map m;
	if (parse_map(v, numeric, &m, why) < 0)
		return -1;
	cnsmp_prefix_map_release(field);
	*field = m;
	return 0;
}

static int set_department(struct cnsmp_config *cfg, const char *v,
			  struct why *why)
{
	return set_map(&cfg->department, 0, v, why);
}

static int set_weights(struct cnsmp_config *cfg, const char *v, struct why *why)
{
	return set_map(&cfg->weights, 1, v, why);
}

static int set_service(struct cnsmp_config *cfg, const char *v, struct why *why)
{
	return set_string(&cfg->service, v, why);
}

/* Relative spool paths would move with the host's chdir() between the
 * write at exit and the drain at the next start. */
static int set_spool_dir(struct cnsmp_config *cfg, const char *v,
			 struct why *why)
{
	if (*v && *v != '/')
		return fail(why, "not an absolute path");
	return set_string(&cfg->spool_dir, v, why);
}

/* A relative root ("." is the usual one) means relative to where the
 * program started, so it is made absolute now, before any chdir(). */
static int set_source_root(struct cnsmp_config *cfg, const char *v,
			   struct why *why)
{
	char cwd[4096];
	if (!*v || *v == '/')
		return set_string(&cfg->source_root, v, why);
	if (!getcwd(cwd, sizeof(cwd)))
		return fail(why, "relative, and getcwd(): %s", strerror(errno));
	size_t n = strlen(cwd) + strlen(v) + 2;
	char *abs = malloc(n);
	if (!abs)
		return fail(why, "out of memory");
	snprintf(abs, n, "%s/%s", cwd, v);
	int rc = set_string(&cfg->source_root, abs, why);
	free(abs);
	return rc;
}

/* "off" (or empty) keeps every run reading its DWARF; a relative folder
 * would move with the host's chdir(), like the spool's. */
static int set_symbol_cache(struct cnsmp_config *cfg, const char *v,
			    struct why *why)
{
	if (!*v || !strcmp(v, "off")) {
		free(cfg->symbol_cache);
		cfg->symbol_cache = NULL;
		return 0;
	}
	if (*v != '/')
		return fail(why, "not an absolute path or \"off\"");
	return set_string(&cfg->symbol_cache, v, why);
}

static int set_probes_file(struct cnsmp_config *cfg, const char *v, struct why *why)
{
	return set_string(&cfg->probes_file, v, why);
}

static int set_ca_file(struct cnsmp_config *cfg, const char *v, struct why *why)
{
	return set_string(&cfg->ca_file, v, why);
}

static int set_flush(struct cnsmp_config *cfg, const char *v, struct why *why)
{
	if (cnsmp_config_parse_seconds(v, &cfg->flush_interval) < 0)
		return fail(why, "not a number of seconds > 0 and <= 86400");
	return 0;
}

/* A whole number in [1, max]: digits only (no sign, no exponent, no
 * fraction: a sampling rate of "16.5" or "1e3" is a typo, not a wish). */
static int parse_count(const char *v, uint32_t max, uint32_t *out)
{
	uint64_t n = 0;
	if (!*v)
		return -1;
	for (; *v; v++) {
		if (!isdigit((unsigned char)*v) || (n = n * 10 + (uint64_t)(*v - '0')) > max)
			return -1;
	}
	if (n == 0)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

/* What the counts must be (a format of their maximum), for the
 * environment's lines and the options'. */
#define SAMPLE_RANGE "a whole number from 1 (time every call) to %u"
#define SAMPLE_BELOW_RANGE "a whole number of ns from 1 to %u"

static int set_sample(struct cnsmp_config *cfg, const char *v, struct why *why)
{
	if (parse_count(v, CNSMP_SAMPLE_MAX, &cfg->sample) < 0)
		return fail(why, "not " SAMPLE_RANGE, (unsigned)CNSMP_SAMPLE_MAX);
	return 0;
}

static int set_sample_below(struct cnsmp_config *cfg, const char *v,
			    struct why *why)
{
	if (parse_count(v, CNSMP_SAMPLE_BELOW_MAX, &cfg->sample_below_ns) < 0)
		return fail(why, "not " SAMPLE_BELOW_RANGE, CNSMP_SAMPLE_BELOW_MAX);
	return 0;
}

static int set_disable(struct cnsmp_config *cfg, const char *v, struct why *why)
{
	static const char *const yes[] = { "1", "true", "yes" };
	static const char *const no[] = { "0", "false", "no" };
	for (int i = 0; i < 3; i++) {
		if (!strcasecmp(v, yes[i]))
			return cfg->disable = 1, 0;
		if (!strcasecmp(v, no[i]))
			return cfg->disable = 0, 0;
	}
	return fail(why, "not one of 0, 1, true, false, yes, no");
}

/* "names" ships names and counters; "full" adds each function's flow
 * from `codensm analyze` (docs/flows.md). */
static int set_mode(struct cnsmp_config *cfg, const char *v, struct why *why)
{
	if (!strcasecmp(v, "names"))
		return cfg->mode_full = 0, 0;
	if (!strcasecmp(v, "full"))
		return cfg->mode_full = 1, 0;
	return fail(why, "not one of names, full");
}

static int set_log(struct cnsmp_config *cfg, const char *v, struct why *why)
{
	static const char *const names[] = { "quiet", "info", "debug" };
	for (int i = 0; i < 3; i++)
		if (!strcasecmp(v, names[i]))
			return cfg->log_level = CNSMP_LOG_QUIET + i, 0;
	return fail(why, "not one of quiet, info, debug");
}

/* ---- the table of variables -------------------------------------------- */

enum var_id {
	V_LOG, V_API_KEY, V_ENDPOINT, V_INCLUDE, V_EXCLUDE, V_DEPARTMENT,
	V_WEIGHTS, V_SERVICE, V_SPOOL_DIR, V_SOURCE_ROOT, V_SYMBOL_CACHE, V_CA_FILE, V_PROBES,
	V_FLUSH_INTERVAL, V_SAMPLE, V_SAMPLE_BELOW, V_DISABLE, V_MODE, V_COUNT
};

#define NO_OPT ((size_t)-1)
#define OPT(f) offsetof(struct codensm_options, f)

/* CODENSM_LOG comes first so that "quiet" also silences the complaints
 * about the variables after it. */
static const struct var {
	const char *env;
	int (*set)(struct cnsmp_config *, const char *, struct why *);
	size_t opt; /* the const char * field of codensm_options, or NO_OPT */
} vars[V_COUNT] = {
	[V_LOG] = { "CODENSM_LOG", set_log, NO_OPT },
	[V_API_KEY] = { "CODENSM_API_KEY", set_api_key, OPT(api_key) },
	[V_ENDPOINT] = { "CODENSM_ENDPOINT", set_endpoint, OPT(endpoint) },
	[V_INCLUDE] = { "CODENSM_INCLUDE", set_include, OPT(include) },
	[V_EXCLUDE] = { "CODENSM_EXCLUDE", set_exclude, OPT(exclude) },
	[V_DEPARTMENT] = { "CODENSM_DEPARTMENT", set_department, OPT(department) },
	[V_WEIGHTS] = { "CODENSM_WEIGHTS", set_weights, OPT(weights) },
	[V_SERVICE] = { "CODENSM_SERVICE", set_service, OPT(service) },
	[V_SPOOL_DIR] = { "CODENSM_SPOOL_DIR", set_spool_dir, OPT(spool_dir) },
	[V_SOURCE_ROOT] = { "CODENSM_SOURCE_ROOT", set_source_root, OPT(source_root) },
	[V_SYMBOL_CACHE] = { "CODENSM_SYMBOL_CACHE", set_symbol_cache, NO_OPT },
	[V_CA_FILE] = { "CODENSM_CA_FILE", set_ca_file, OPT(ca_file) },
	[V_PROBES] = { "CODENSM_PROBES", set_probes_file, NO_OPT },
	[V_FLUSH_INTERVAL] = { "CODENSM_FLUSH_INTERVAL", set_flush, NO_OPT },
	[V_SAMPLE] = { "CODENSM_SAMPLE", set_sample, NO_OPT },
	[V_SAMPLE_BELOW] = { "CODENSM_SAMPLE_BELOW_NS", set_sample_below, NO_OPT },
	[V_DISABLE] = { "CODENSM_DISABLE", set_disable, NO_OPT },
	[V_MODE] = { "CODENSM_MODE", set_mode, NO_OPT },
};

/* The value as it appears in the log: at most MAX_QUOTED bytes (cut on a
 * UTF-8 boundary), control characters and quotes escaped so one bad value
 * is always one readable line. */
static void quote(const char *v, char *out, size_t len)
{
	size_t n = strnlen(v, MAX_QUOTED + 1), o = 0;
	int cut = n > MAX_QUOTED;
	if (cut)
		for (n = MAX_QUOTED; n && ((unsigned char)v[n] & 0xc0) == 0x80;)
			n--;
	for (size_t i = 0; i < n && o + 5 < len; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '\n' || c == '\t' || c == '\r' || c == '\\' || c == '\'')
			o += (size_t)snprintf(out + o, len - o, "\\%c",
					      c == '\n' ? 'n' : c == '\t' ? 't' : c == '\r' ? 'r' : c);
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, len - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	if (cut && o + 4 < len)
		strcpy(out + o, "...");
}

static void join(const char *const *a, const char *const *b, size_t n,
		 char *out, size_t len)
{
	char all[MAX_QUOTED * 2] = "";
	size_t o = 0;
	for (size_t i = 0; i < n && o < sizeof(all); i++)
		o += (size_t)snprintf(all + o, sizeof(all) - o, "%s%s%s%s",
				      i ? "," : "", a[i], b ? "=" : "",
				      b ? b[i] : "");
	out[0] = '\'';
	quote(all, out + 1, len - 2);
	strcat(out, "'");
}

/* What is kept when a value is refused, for the end of the log line. */
static void show(const struct cnsmp_config *c, enum var_id v, char *out,
		 size_t len)
{
	static const char *const levels[] = { "quiet", "info", "debug" };
	const char *s = NULL;
	out[0] = '\0';
	switch (v) {
	case V_LOG: s = levels[c->log_level - CNSMP_LOG_QUIET]; break;
	case V_API_KEY: s = c->api_key ? "the key given before" : "no key (counting, not sending)"; break;
	case V_ENDPOINT: s = c->endpoint; break;
	case V_INCLUDE:
		if (!c->include_set)
			s = "all user code";
		else if (!c->include.n)
			s = "nothing";
		else
			join((const char *const *)c->include.prefix, NULL, c->include.n, out, len);
		break;
	case V_EXCLUDE:
		if (!c->exclude.n)
			s = "nothing";
		else
			join((const char *const *)c->exclude.prefix, NULL, c->exclude.n, out, len);
		break;
	case V_DEPARTMENT:
		if (!c->department.n)
			s = "the first component of each name";
		else
			join((const char *const *)c->department.prefix,
			     (const char *const *)c->department.value, c->department.n, out, len);
		break;
	case V_WEIGHTS:
		if (!c->weights.n)
			s = "1 for every function";
		else
			join((const char *const *)c->weights.prefix,
			     (const char *const *)c->weights.value, c->weights.n, out, len);
		break;
	case V_SERVICE: s = c->service; break;
	case V_SPOOL_DIR: s = c->spool_dir; break;
	case V_SOURCE_ROOT: s = c->source_root ? c->source_root : "each unit's compilation directory"; break;
	case V_SYMBOL_CACHE: s = c->symbol_cache ? c->symbol_cache : "off"; break;
	case V_CA_FILE: s = c->ca_file ? c->ca_file : "the system CAs"; break;
	case V_PROBES: s = c->probes_file ? c->probes_file : "no probes file"; break;
	case V_FLUSH_INTERVAL: snprintf(out, len, "%g", c->flush_interval); break;
	case V_SAMPLE:
		if (c->sample <= 1)
			s = "1 (every call timed)";
		else
			snprintf(out, len, "%u", c->sample);
		break;
	case V_SAMPLE_BELOW: snprintf(out, len, "%u", c->sample_below_ns); break;
	case V_DISABLE: s = c->disable ? "1" : "0"; break;
	case V_MODE: s = c->mode_full ? "full" : "names"; break;
	case V_COUNT: break;
	}
	if (s || !out[0])
		snprintf(out, len, "%s", s ? s : "(none)");
}

/* Applies one raw value (from the environment or an option) to cfg;
 * returns 1 if it was refused (and logged), else 0. */
static int apply(struct cnsmp_config *cfg, enum var_id v, const char *raw,
		 int from_option)
{
	struct why why = { "malformed" };
	char *val = NULL;
	int rc;
	size_t n = strnlen(raw, MAX_VALUE + 1);
	if (n > MAX_VALUE) {
		rc = fail(&why, "longer than %d bytes", MAX_VALUE);
	} else {
		const char *t = raw;
		trim(&t, &n);
		val = dup_n(t, n);
		rc = val ? vars[v].set(cfg, val, &why) : fail(&why, "out of memory");
	}
	free(val);
	if (rc == 0)
		return 0;
	char quoted[MAX_QUOTED * 4 + 8], kept[MAX_QUOTED * 4 + 16];
	quote(raw, quoted, sizeof(quoted));
	show(cfg, v, kept, sizeof(kept));
	cnsmp_log(CNSMP_LOG_INFO, "ignoring %s%s='%s': %s; using %s",
		  from_option ? "codensm_init option for " : "", vars[v].env,
		  quoted, why.text, kept);
	return 1;
}

/* The executable's name, as ps shows it, is the natural service name. */
static char *default_service(void)
{
	char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n <= 0)
		return strdup(program_invocation_short_name[0]
				      ? program_invocation_short_name
				      : "unknown");
	path[n] = '\0';
	char *deleted = strstr(path, " (deleted)"); /* the binary was replaced */
	if (deleted && deleted[10] == '\0')
		*deleted = '\0';
	char *base = strrchr(path, '/');
	return strdup(base ? base + 1 : path);
}

/* XDG's state directory is where data that must survive a restart but is
 * not worth backing up belongs; without a home, a per-user /tmp folder. */
static char *default_spool(char *(*getenv_fn)(const char *))
{
	const char *xdg = getenv_fn("XDG_STATE_HOME");
	const char *home = getenv_fn("HOME");
	char buf[4096];
	if (xdg && xdg[0] == '/')
		snprintf(buf, sizeof(buf), "%s/codensm/spool", xdg);
	else if (home && home[0] == '/')
		snprintf(buf, sizeof(buf), "%s/.local/state/codensm/spool",
			 strcmp(home, "/") ? home : "");
	else
		snprintf(buf, sizeof(buf), "/tmp/codensm-spool-%u",
			 (unsigned)getuid());
	return strdup(buf);
}

/* Indexes and flows can be rebuilt from the program at any time: a
 * cache, not state.  No home and no XDG_CACHE_HOME: no cache rather than
 * a shared folder in /tmp that another user could fill. */
CNSMP_NOINST char *cnsmp_cache_dir(char *(*getenv_fn)(const char *), const char *what)
{
	const char *xdg = getenv_fn("XDG_CACHE_HOME");
	const char *home = getenv_fn("HOME");
	char buf[4096];
	if (xdg && xdg[0] == '/')
		snprintf(buf, sizeof(buf), "%s/codensm/%s", xdg, what);
	else if (home && home[0] == '/' && strcmp(home, "/"))
		snprintf(buf, sizeof(buf), "%s/.cache/codensm/%s", home, what);
	else
		return NULL;
	return strdup(buf);
}

static void set_defaults(struct cnsmp_config *cfg,
			 char *(*getenv_fn)(const char *))
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->endpoint = strdup(CNSMP_DEFAULT_ENDPOINT);
	cfg->service = default_service();
	cfg->spool_dir = default_spool(getenv_fn);
	cfg->symbol_cache = cnsmp_cache_dir(getenv_fn, "symbols");
	cfg->flush_interval = CNSMP_DEFAULT_FLUSH_INTERVAL;
	cfg->sample = 1;
	cfg->sample_below_ns = CNSMP_DEFAULT_SAMPLE_BELOW_NS;
	cfg->log_level = CNSMP_LOG_INFO;
}

/* A whole-number option: 0 keeps, 1 ... max is taken, anything else is
 * one line (`range`: SAMPLE_RANGE or its like) and keeps *field. */
static int count_option(const char *name, unsigned v, uint32_t max,
			const char *range, uint32_t *field)
{
	char what[96];
	if (v == 0)
		return 0;
	if (v <= max) {
		*field = v;
		return 0;
	}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(what, sizeof what, range, (unsigned)max);
#pragma GCC diagnostic pop
	cnsmp_log(CNSMP_LOG_INFO, "ignoring codensm_init option %s=%u: not %s; using %u",
		  name, v, what, *field);
	return 1;
}

/* The numeric options have no string form: 0 keeps, anything else must
 * be in range. */
static int apply_numeric_options(struct cnsmp_config *cfg,
				 const struct codensm_options *o)
{
	int bad = 0;
	if (o->flush_interval != 0) {
		if (o->flush_interval > 0 && o->flush_interval <= 86400) {
			cfg->flush_interval = o->flush_interval;
		} else {
			cnsmp_log(CNSMP_LOG_INFO, "ignoring codensm_init option flush_interval=%g: not a number of seconds > 0 and <= 86400; using %g",
				  o->flush_interval, cfg->flush_interval);
			bad++;
		}
	}
	bad += count_option("sample", o->sample, CNSMP_SAMPLE_MAX, SAMPLE_RANGE,
			    &cfg->sample);
	bad += count_option("sample_below_ns", o->sample_below_ns,
			    CNSMP_SAMPLE_BELOW_MAX, SAMPLE_BELOW_RANGE,
			    &cfg->sample_below_ns);
	if (o->disable)
		cfg->disable = 1;
	return bad;
}

static int apply_log_option(struct cnsmp_config *cfg,
			    const struct codensm_options *o)
{
	if (!o || !o->log_level)
		return 0;
	if (o->log_level >= CNSMP_LOG_QUIET && o->log_level <= CNSMP_LOG_DEBUG) {
		cfg->log_level = o->log_level;
		return 0;
	}
	cnsmp_log(CNSMP_LOG_INFO, "ignoring codensm_init option log_level=%d: not 1 (quiet), 2 (info) or 3 (debug); using %d",
		  o->log_level, cfg->log_level);
	return 1;
}

/* The log level is settled first and applied at once, so that "quiet"
 * (from either source) silences the rest of this function too. */
CNSMP_NOINST int cnsmp_config_load(struct cnsmp_config *cfg,
				   char *(*getenv_fn)(const char *),
				   const struct codensm_options *opts)
{
	int bad = 0;
	if (!getenv_fn)
		getenv_fn = getenv;
	set_defaults(cfg, getenv_fn);
	const char *v = getenv_fn(vars[V_LOG].env);
	if (v)
		bad += apply(cfg, V_LOG, v, 0);
	bad += apply_log_option(cfg, opts);
	cnsmp_log_level = cfg->log_level;

	for (int i = V_LOG + 1; i < V_COUNT; i++)
		if ((v = getenv_fn(vars[i].env)))
			bad += apply(cfg, (enum var_id)i, v, 0);
	if (!opts)
		return bad;
	for (int i = V_LOG + 1; i < V_COUNT; i++) {
		if (vars[i].opt == NO_OPT)
			continue;
		v = *(const char *const *)((const char *)opts + vars[i].opt);
		if (v)
			bad += apply(cfg, (enum var_id)i, v, 1);
	}
	return bad + apply_numeric_options(cfg, opts);
}

CNSMP_NOINST void cnsmp_config_release(struct cnsmp_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->api_key);
	free(cfg->endpoint);
	free(cfg->service);
	free(cfg->spool_dir);
	free(cfg->source_root);
	free(cfg->symbol_cache);
	free(cfg->ca_file);
	free(cfg->probes_file);
	cnsmp_prefixes_release(&cfg->include);
	cnsmp_prefixes_release(&cfg->exclude);
	cnsmp_prefix_map_release(&cfg->department);
	cnsmp_prefix_map_release(&cfg->weights);
	memset(cfg, 0, sizeof(*cfg));
}

/* CODENSM_PATCH (patch.c reads it when it first patches; `codensm doctor`
 * too, which must not pull patch.c and the hooks into its link). */
CNSMP_NOINST int cnsmp_patch_setting(const char *v)
{
	if (!v || !*v || !strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "yes"))
		return 1;
	if (!strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "no"))
		return 0;
	if (!strcmp(v, "jumps"))
		return 2;
	return -1;
}
