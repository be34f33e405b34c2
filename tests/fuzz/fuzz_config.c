/* fuzz_config.c: libFuzzer target for the runtime's configuration parser
 * (runtime/src/config.c) and the rules that read its result (rules.c).
 *
 * The input is a tiny environment, one "NAME=value" record a line:
 * cnsmp_config_load() reads it through a fake getenv, and records named
 * "opt.FIELD" fill a struct codensm_options (the codensm_init() path).
 * Every value is also handed to each public parser on its own, and the
 * loaded config must then hold only values its documentation allows;
 * the names of "name=" records go through the include/department/weight
 * rules.  A violated invariant aborts, so libFuzzer keeps the input.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_RECORDS 64

struct record {
	char *name, *value;
};
static struct record rec[MAX_RECORDS];
static size_t nrec;

/* The last record of that name wins, like a later export in a shell. */
static char *fake_getenv(const char *name)
{
	for (size_t i = nrec; i-- > 0;)
		if (!strcmp(rec[i].name, name))
			return rec[i].value;
	return NULL;
}

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_config: invariant broken: %s\n", what);
		abort();
	}
}

/* A string field is NULL or non-empty text without control characters. */
static void check_string(const char *s, int required, const char *what)
{
	check(!required || s, what);
	if (!s)
		return;
	check(*s != '\0', what);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		check(*p >= 0x20 && *p != 0x7f, what);
}

static void check_config(const struct cnsmp_config *c)
{
	check_string(c->endpoint, 1, "endpoint is text");
	check(!strncasecmp(c->endpoint, "http://", 7) || !strncasecmp(c->endpoint, "https://", 8),
	      "endpoint is an http(s) URL");
	check_string(c->api_key, 0, "api_key is text");
	for (const char *p = c->api_key; p && *p; p++)
		check(*p > 0x20 && *p < 0x7f, "api_key is printable ASCII");
	check_string(c->service, 1, "service is text");
	/* the default spool comes from $HOME or $XDG_STATE_HOME as they are */
	check(c->spool_dir && c->spool_dir[0] == '/', "spool_dir is an absolute path");
	check_string(c->source_root, 0, "source_root is text");
	check(!c->symbol_cache || c->symbol_cache[0] == '/', "symbol_cache is off or an absolute path");
	check_string(c->ca_file, 0, "ca_file is text");
	check(c->flush_interval > 0 && c->flush_interval <= 86400, "flush_interval in (0, 86400]");
	check(c->log_level >= CNSMP_LOG_QUIET && c->log_level <= CNSMP_LOG_DEBUG, "log_level");
	check(c->disable == 0 || c->disable == 1, "disable is 0 or 1");
	check(c->sample >= 1 && c->sample <= CNSMP_SAMPLE_MAX, "sample in [1, 65536]");
	check(c->sample_below_ns >= 1 && c->sample_below_ns <= CNSMP_SAMPLE_BELOW_MAX,
	      "sample_below_ns in [1, 1e9]");
	for (size_t i = 0; i < c->include.n; i++)
		check(c->include.prefix[i][0] != '\0', "include prefixes are non-empty");
	for (size_t i = 0; i < c->weights.n; i++)
		check(c->weights.number[i] >= 0 && isfinite(c->weights.number[i]), "weights >= 0");
	for (size_t i = 0; i < c->department.n; i++)
		check_string(c->department.value[i], 1, "departments are text");
}

static void parse_alone(const char *v)
{
	struct cnsmp_prefixes p = { 0 };
	struct cnsmp_prefix_map m = { 0 };
	double d = -1;
	if (cnsmp_config_parse_prefixes(v, &p) == 0)
		cnsmp_prefixes_release(&p);
	for (int numeric = 0; numeric < 2; numeric++)
		if (cnsmp_config_parse_map(v, numeric, &m) == 0)
			cnsmp_prefix_map_release(&m);
	if (cnsmp_config_parse_seconds(v, &d) == 0)
		check(d > 0 && d <= 86400, "parse_seconds in (0, 86400]");
	else
		check(d == -1, "parse_seconds leaves *out alone on failure");
}

static const char *opt_field(struct codensm_options *o, const char *name, const char *v)
{
	static const struct { const char *name; size_t off; } fields[] = {
#define F(x) { #x, offsetof(struct codensm_options, x) }
		F(api_key), F(endpoint), F(include), F(exclude), F(department), F(weights),
		F(service), F(spool_dir), F(source_root), F(ca_file),
#undef F
	};
	for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
		if (!strcmp(name, fields[i].name))
			return *(const char **)((char *)o + fields[i].off) = v;
	if (!strcmp(name, "flush_interval"))
		o->flush_interval = strtod(v, NULL);
	else if (!strcmp(name, "log_level"))
		o->log_level = atoi(v);
	else if (!strcmp(name, "disable"))
		o->disable = atoi(v);
	else if (!strcmp(name, "sample"))
		o->sample = (unsigned)strtoul(v, NULL, 10);
	else if (!strcmp(name, "sample_below_ns"))
		o->sample_below_ns = (unsigned)strtoul(v, NULL, 10);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	struct codensm_options opts = { 0 };
	int have_opts = 0;
	nrec = 0;
	for (char *line = text, *next; line && nrec < MAX_RECORDS; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		rec[nrec].name = line;
		rec[nrec].value = eq + 1;
		if (!strncmp(line, "opt.", 4)) {
			opt_field(&opts, line + 4, eq + 1);
			have_opts = 1;
		}
		parse_alone(eq + 1);
		nrec++;
	}

	struct cnsmp_config cfg;
	cnsmp_config_load(&cfg, fake_getenv, have_opts ? &opts : NULL);
	check_config(&cfg);
	for (size_t i = 0; i < nrec; i++) {
		if (strcmp(rec[i].name, "name"))
			continue;
		char buf[160];
		const char *name = rec[i].value;
		cnsmp_rules_tracked(&cfg, name, 0);
		cnsmp_rules_tracked(&cfg, name, 1);
		const char *dep = cnsmp_rules_department(&cfg, name, buf, sizeof buf);
		check(dep && *dep, "a department is never empty");
		double w = cnsmp_rules_weight(&cfg, name);
		check(w >= 0 && isfinite(w), "a weight is finite and >= 0");
		free(cnsmp_rules_module_path(name));
	}
	cnsmp_config_release(&cfg);
	free(text);
	return 0;
}
