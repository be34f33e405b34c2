/* test_config.c: every CODENSM_* variable, well-formed and malformed; a
 * malformed value keeps the default, is counted, and says so in exactly
 * one line on stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"

/* The fake environment: NULL-terminated name, value pairs. */
static const char *const *env;

static char *fake_getenv(const char *name)
{
	for (size_t i = 0; env && env[i]; i += 2)
		if (!strcmp(env[i], name))
			return (char *)env[i + 1];
	return NULL;
}

static struct cnsmp_config cfg;
static char err[8192]; /* what cnsmp_config_load wrote to stderr */

/* Loads cfg from `e` (and `opts`), capturing stderr. */
static int load(const char *const *e, const struct codensm_options *opts)
{
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	int saved = dup(2);
	dup2(fileno(tmp), 2);
	env = e;
	cnsmp_log_level = CNSMP_LOG_INFO;
	int bad = cnsmp_config_load(&cfg, fake_getenv, opts);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	size_t n = fread(err, 1, sizeof(err) - 1, tmp);
	err[n] = '\0';
	fclose(tmp);
	return bad;
}

static int lines(void)
{
	int n = 0;
	for (const char *p = err; *p; p++)
		n += *p == '\n';
	return n;
}

static int teardown(void **state)
{
	cnsmp_config_release(&cfg);
	cnsmp_log_level = CNSMP_LOG_INFO;
	return 0;
}

static void assert_defaults(void)
{
	assert_null(cfg.api_key);
	assert_string_equal(cfg.endpoint, CNSMP_DEFAULT_ENDPOINT);
	assert_string_equal(cfg.service, "test_config");
	assert_string_equal(cfg.spool_dir, "/home/u/.local/state/codensm/spool");
	assert_null(cfg.source_root);
	assert_string_equal(cfg.symbol_cache, "/home/u/.cache/codensm/symbols");
	assert_null(cfg.ca_file);
	assert_int_equal(cfg.include_set, 0);
	assert_int_equal(cfg.include.n, 0);
	assert_int_equal(cfg.exclude.n, 0);
	assert_int_equal(cfg.department.n, 0);
	assert_int_equal(cfg.weights.n, 0);
	assert_true(cfg.flush_interval == 15.0);
	assert_int_equal(cfg.log_level, CNSMP_LOG_INFO);
	assert_int_equal(cfg.disable, 0);
}

static void an_empty_environment_gives_the_defaults(void **state)
{
	static const char *const e[] = { "HOME", "/home/u", NULL };
	assert_int_equal(load(e, NULL), 0);
	assert_defaults();
	assert_string_equal(err, "");
}

static void the_spool_follows_xdg_then_home_then_tmp(void **state)
{
	static const char *const xdg[] = { "XDG_STATE_HOME", "/x/state", "HOME", "/home/u", NULL };
	static const char *const none[] = { "HOME", "relative", NULL };
	char want[64];
	assert_int_equal(load(xdg, NULL), 0);
	assert_string_equal(cfg.spool_dir, "/x/state/codensm/spool");
	cnsmp_config_release(&cfg);
	assert_int_equal(load(none, NULL), 0);
	snprintf(want, sizeof(want), "/tmp/codensm-spool-%u", (unsigned)getuid());
	assert_string_equal(cfg.spool_dir, want);
}

static void the_symbol_cache_follows_xdg_then_home_or_is_off(void **state)
{
	static const char *const xdg[] = { "XDG_CACHE_HOME", "/x/cache", "HOME", "/home/u", NULL };
	static const char *const none[] = { "HOME", "relative", NULL };
	static const char *const root[] = { "HOME", "/", NULL };
	static const char *const off[] = { "HOME", "/home/u", "CODENSM_SYMBOL_CACHE", "off", NULL };
	static const char *const set[] = { "HOME", "/home/u", "CODENSM_SYMBOL_CACHE", "/var/cache/cn", NULL };
	assert_int_equal(load(xdg, NULL), 0);
	assert_string_equal(cfg.symbol_cache, "/x/cache/codensm/symbols");
	cnsmp_config_release(&cfg);
	/* no shared folder in /tmp: another user could plant an index there */
	assert_int_equal(load(none, NULL), 0);
	assert_null(cfg.symbol_cache);
	cnsmp_config_release(&cfg);
	assert_int_equal(load(root, NULL), 0);
	assert_null(cfg.symbol_cache);
	cnsmp_config_release(&cfg);
	assert_int_equal(load(off, NULL), 0);
	assert_null(cfg.symbol_cache);
	cnsmp_config_release(&cfg);
	assert_int_equal(load(set, NULL), 0);
	assert_string_equal(cfg.symbol_cache, "/var/cache/cn");
	assert_string_equal(err, "");
}

static void every_variable_is_read(void **state)
{
	static const char *const e[] = {
		"HOME", "/home/u",
		"CODENSM_API_KEY", "cnsm_abc123",
		"CODENSM_ENDPOINT", "https://ingest.example.com/codensm/ingest",
		"CODENSM_INCLUDE", " checkout , payments.card,,geo::Circle ",
		"CODENSM_EXCLUDE", "checkout.hot",
		"CODENSM_FLUSH_INTERVAL", "0.1",
		"CODENSM_SAMPLE", " 16 ",
		"CODENSM_SAMPLE_BELOW_NS", "250",
		"CODENSM_DEPARTMENT", "checkout.pay=payments, checkout = Sales Team",
		"CODENSM_WEIGHTS", "checkout=9,checkout.log=0.5,x=1e2",
		"CODENSM_SERVICE", "shop",
		"CODENSM_SPOOL_DIR", "/var/spool/codensm",
		"CODENSM_SOURCE_ROOT", "/src/shop",
		"CODENSM_CA_FILE", "/etc/ssl/extra.pem",
		"CODENSM_DISABLE", "yes",
		"CODENSM_LOG", "debug",
		NULL,
	};
	assert_int_equal(load(e, NULL), 0);
	assert_string_equal(err, "");
	assert_string_equal(cfg.api_key, "cnsm_abc123");
	assert_string_equal(cfg.endpoint, "https://ingest.example.com/codensm/ingest");
	assert_int_equal(cfg.include_set, 1);
	assert_int_equal(cfg.include.n, 3);
	assert_string_equal(cfg.include.prefix[0], "checkout");
	assert_string_equal(cfg.include.prefix[1], "payments.card");
	assert_string_equal(cfg.include.prefix[2], "geo::Circle");
	assert_int_equal(cfg.exclude.n, 1);
	assert_string_equal(cfg.exclude.prefix[0], "checkout.hot");
	assert_true(cfg.flush_interval == 0.1);
	assert_int_equal(cfg.sample, 16);
	assert_int_equal(cfg.sample_below_ns, 250);
	assert_int_equal(cfg.department.n, 2);
	assert_string_equal(cfg.department.prefix[0], "checkout.pay");
	assert_string_equal(cfg.department.value[0], "payments");
	assert_string_equal(cfg.department.prefix[1], "checkout");
	assert_string_equal(cfg.department.value[1], "Sales Team");
	assert_int_equal(cfg.weights.n, 3);
	assert_true(cfg.weights.number[0] == 9.0);
	assert_true(cfg.weights.number[1] == 0.5);
	assert_true(cfg.weights.number[2] == 100.0);
	assert_string_equal(cfg.service, "shop");
	assert_string_equal(cfg.spool_dir, "/var/spool/codensm");
	assert_string_equal(cfg.source_root, "/src/shop");
	assert_string_equal(cfg.ca_file, "/etc/ssl/extra.pem");
	assert_int_equal(cfg.disable, 1);
	assert_int_equal(cfg.log_level, CNSMP_LOG_DEBUG);
	assert_int_equal(cnsmp_log_level, CNSMP_LOG_DEBUG);
}

static void an_empty_include_reads_as_unset(void **state)
{
	static const char *const e[] = { "HOME", "/home/u", "CODENSM_INCLUDE", " , ", NULL };
	assert_int_equal(load(e, NULL), 0);
	assert_int_equal(lines(), 0);
	assert_int_equal(cfg.include_set, 0);
	assert_int_equal(cfg.include.n, 0);
}

static void disable_and_log_take_their_keywords_in_any_case(void **state)
{
	static const char *const words[][2] = {
		{ "1", "quiet" }, { "TRUE", "Info" }, { "0", "DEBUG" }, { "false", "quiet" }, { "No", "info" },
	};
	static const int disable[] = { 1, 1, 0, 0, 0 };
	static const int level[] = { CNSMP_LOG_QUIET, CNSMP_LOG_INFO, CNSMP_LOG_DEBUG, CNSMP_LOG_QUIET, CNSMP_LOG_INFO };
	for (int i = 0; i < 5; i++) {
		const char *const e[] = { "HOME", "/home/u", "CODENSM_DISABLE", words[i][0],
					  "CODENSM_LOG", words[i][1], NULL };
		assert_int_equal(load(e, NULL), 0);
		assert_int_equal(cfg.disable, disable[i]);
		assert_int_equal(cfg.log_level, level[i]);
		cnsmp_config_release(&cfg);
	}
}

/* One malformed value: the default stays, the count is 1, and stderr
 * holds exactly `line`. */
struct bad_case {
	const char *var, *value, *line;
};

static const struct bad_case bad_cases[] = {
	{ "CODENSM_API_KEY", "", "codensm: ignoring CODENSM_API_KEY='': empty; using no key (counting, not sending)\n" },
	{ "CODENSM_API_KEY", "cnsm_a\nX-Evil: 1", "codensm: ignoring CODENSM_API_KEY='cnsm_a\\nX-Evil: 1': contains a character that is not printable ASCII; using no key (counting, not sending)\n" },
	{ "CODENSM_ENDPOINT", "", "codensm: ignoring CODENSM_ENDPOINT='': not an http:// or https:// URL; using " CNSMP_DEFAULT_ENDPOINT "\n" },
	{ "CODENSM_ENDPOINT", "ftp://x/ingest", "codensm: ignoring CODENSM_ENDPOINT='ftp://x/ingest': not an http:// or https:// URL; using " CNSMP_DEFAULT_ENDPOINT "\n" },
	{ "CODENSM_ENDPOINT", "http:///ingest", "codensm: ignoring CODENSM_ENDPOINT='http:///ingest': no host after the scheme; using " CNSMP_DEFAULT_ENDPOINT "\n" },
	{ "CODENSM_INCLUDE", "checkout,pay ments", "codensm: ignoring CODENSM_INCLUDE='checkout,pay ments': 'pay ments' is not a name prefix (allowed: letters, digits, _ . : ~ < > -); using all user code\n" },
	{ "CODENSM_INCLUDE", "check/out", "codensm: ignoring CODENSM_INCLUDE='check/out': 'check/out' is not a name prefix (allowed: letters, digits, _ . : ~ < > -); using all user code\n" },
	{ "CODENSM_EXCLUDE", "a,b=c", "codensm: ignoring CODENSM_EXCLUDE='a,b=c': 'b=c' is not a name prefix (allowed: letters, digits, _ . : ~ < > -); using nothing\n" },
	{ "CODENSM_SAMPLE", "0", "codensm: ignoring CODENSM_SAMPLE='0': not a whole number from 1 (time every call) to 65536; using 1 (every call timed)\n" },
	{ "CODENSM_SAMPLE", "16.5", "codensm: ignoring CODENSM_SAMPLE='16.5': not a whole number from 1 (time every call) to 65536; using 1 (every call timed)\n" },
	{ "CODENSM_SAMPLE", "-4", "codensm: ignoring CODENSM_SAMPLE='-4': not a whole number from 1 (time every call) to 65536; using 1 (every call timed)\n" },
	{ "CODENSM_SAMPLE", "65537", "codensm: ignoring CODENSM_SAMPLE='65537': not a whole number from 1 (time every call) to 65536; using 1 (every call timed)\n" },
	{ "CODENSM_SAMPLE", "99999999999999999999999", "codensm: ignoring CODENSM_SAMPLE='99999999999999999999999': not a whole number from 1 (time every call) to 65536; using 1 (every call timed)\n" },
	{ "CODENSM_SAMPLE", "1e3", "codensm: ignoring CODENSM_SAMPLE='1e3': not a whole number from 1 (time every call) to 65536; using 1 (every call timed)\n" },
	{ "CODENSM_SAMPLE_BELOW_NS", "1us", "codensm: ignoring CODENSM_SAMPLE_BELOW_NS='1us': not a whole number of ns from 1 to 1000000000; using 1000\n" },
	{ "CODENSM_SAMPLE_BELOW_NS", "0", "codensm: ignoring CODENSM_SAMPLE_BELOW_NS='0': not a whole number of ns from 1 to 1000000000; using 1000\n" },
	{ "CODENSM_FLUSH_INTERVAL", "", "codensm: ignoring CODENSM_FLUSH_INTERVAL='': not a number of seconds > 0 and <= 86400; using 15\n" },
	{ "CODENSM_FLUSH_INTERVAL", "fast", "codensm: ignoring CODENSM_FLUSH_INTERVAL='fast': not a number of seconds > 0 and <= 86400; using 15\n" },
	{ "CODENSM_FLUSH_INTERVAL", "-5", "codensm: ignoring CODENSM_FLUSH_INTERVAL='-5': not a number of seconds > 0 and <= 86400; using 15\n" },
	{ "CODENSM_FLUSH_INTERVAL", "0", "codensm: ignoring CODENSM_FLUSH_INTERVAL='0': not a number of seconds > 0 and <= 86400; using 15\n" },
	{ "CODENSM_FLUSH_INTERVAL", "86401", "codensm: ignoring CODENSM_FLUSH_INTERVAL='86401': not a number of seconds > 0 and <= 86400; using 15\n" },
	{ "CODENSM_FLUSH_INTERVAL", "15s", "codensm: ignoring CODENSM_FLUSH_INTERVAL='15s': not a number of seconds > 0 and <= 86400; using 15\n" },
	{ "CODENSM_FLUSH_INTERVAL", "nan", "codensm: ignoring CODENSM_FLUSH_INTERVAL='nan': not a number of seconds > 0 and <= 86400; using 15\n" },
	{ "CODENSM_FLUSH_INTERVAL", "0x10", "codensm: ignoring CODENSM_FLUSH_INTERVAL='0x10': not a number of seconds > 0 and <= 86400; using 15\n" },
	{ "CODENSM_DEPARTMENT", "checkout", "codensm: ignoring CODENSM_DEPARTMENT='checkout': 'checkout' has no '='; using the first component of each name\n" },
	{ "CODENSM_DEPARTMENT", "=sales", "codensm: ignoring CODENSM_DEPARTMENT='=sales': '=sales' has no prefix before '='; using the first component of each name\n" },
	{ "CODENSM_DEPARTMENT", "checkout=", "codensm: ignoring CODENSM_DEPARTMENT='checkout=': 'checkout=' has no value after '='; using the first component of each name\n" },
	{ "CODENSM_DEPARTMENT", "a=b=c", "codensm: ignoring CODENSM_DEPARTMENT='a=b=c': 'b=c' is not a department name (1..128 bytes, no control characters or '='); using the first component of each name\n" },
	{ "CODENSM_WEIGHTS", "checkout=-1", "codensm: ignoring CODENSM_WEIGHTS='checkout=-1': '-1' is not a number >= 0; using 1 for every function\n" },
	{ "CODENSM_WEIGHTS", "checkout=heavy", "codensm: ignoring CODENSM_WEIGHTS='checkout=heavy': 'heavy' is not a number >= 0; using 1 for every function\n" },
	{ "CODENSM_WEIGHTS", "checkout=inf", "codensm: ignoring CODENSM_WEIGHTS='checkout=inf': 'inf' is not a number >= 0; using 1 for every function\n" },
	{ "CODENSM_WEIGHTS", "check out=2", "codensm: ignoring CODENSM_WEIGHTS='check out=2': 'check out' is not a name prefix (allowed: letters, digits, _ . : ~ < > -); using 1 for every function\n" },
	{ "CODENSM_SERVICE", "", "codensm: ignoring CODENSM_SERVICE='': empty; using test_config\n" },
	{ "CODENSM_SERVICE", "shop\t1", "codensm: ignoring CODENSM_SERVICE='shop\\t1': contains control characters; using test_config\n" },
	{ "CODENSM_SYMBOL_CACHE", "cache", "codensm: ignoring CODENSM_SYMBOL_CACHE='cache': not an absolute path or \"off\"; using /home/u/.cache/codensm/symbols\n" },
	{ "CODENSM_SPOOL_DIR", "spool", "codensm: ignoring CODENSM_SPOOL_DIR='spool': not an absolute path; using /home/u/.local/state/codensm/spool\n" },
	{ "CODENSM_SPOOL_DIR", "", "codensm: ignoring CODENSM_SPOOL_DIR='': empty; using /home/u/.local/state/codensm/spool\n" },
	{ "CODENSM_SOURCE_ROOT", "", "codensm: ignoring CODENSM_SOURCE_ROOT='': empty; using each unit's compilation directory\n" },
	{ "CODENSM_CA_FILE", "", "codensm: ignoring CODENSM_CA_FILE='': empty; using the system CAs\n" },
	{ "CODENSM_DISABLE", "maybe", "codensm: ignoring CODENSM_DISABLE='maybe': not one of 0, 1, true, false, yes, no; using 0\n" },
	{ "CODENSM_DISABLE", "", "codensm: ignoring CODENSM_DISABLE='': not one of 0, 1, true, false, yes, no; using 0\n" },
	{ "CODENSM_LOG", "verbose", "codensm: ignoring CODENSM_LOG='verbose': not one of quiet, info, debug; using info\n" },
	{ "CODENSM_MODE", "fast", "codensm: ignoring CODENSM_MODE='fast': not one of names, full; using names\n" },
	{ "CODENSM_MODE", "", "codensm: ignoring CODENSM_MODE='': not one of names, full; using names\n" },
};

static void a_malformed_value_keeps_the_default_with_one_line(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(*bad_cases); i++) {
		const char *const e[] = { "HOME", "/home/u", bad_cases[i].var,
					  bad_cases[i].value, NULL };
		int bad = load(e, NULL);
		if (strcmp(err, bad_cases[i].line))
			print_error("case %zu: got   %s         want  %s", i, err,
				    bad_cases[i].line);
		assert_string_equal(err, bad_cases[i].line);
		assert_int_equal(bad, 1);
		assert_defaults();
		cnsmp_config_release(&cfg);
	}
}

static void a_quoted_value_is_cut_at_80_bytes(void **state)
{
	char value[200], want[400];
	memset(value, 'x', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	const char *const e[] = { "HOME", "/home/u", "CODENSM_LOG", value, NULL };
	assert_int_equal(load(e, NULL), 1);
	snprintf(want, sizeof(want),
		 "codensm: ignoring CODENSM_LOG='%.80s...': not one of quiet, info, debug; using info\n",
		 value);
	assert_string_equal(err, want);
}

static void a_value_over_64_kib_is_refused_whole(void **state)
{
	size_t n = 64 * 1024 + 1;
	char *value = malloc(n + 1);
	assert_non_null(value);
	memset(value, 'a', n);
	value[n] = '\0';
	const char *const e[] = { "HOME", "/home/u", "CODENSM_INCLUDE", value, NULL };
	assert_int_equal(load(e, NULL), 1);
	assert_int_equal(lines(), 1);
	assert_non_null(strstr(err, "': longer than 65536 bytes; using all user code\n"));
	assert_int_equal(cfg.include_set, 0);
	free(value);
}

static void every_malformed_value_is_counted(void **state)
{
	static const char *const e[] = {
		"HOME", "/home/u",
		"CODENSM_ENDPOINT", "nope", "CODENSM_FLUSH_INTERVAL", "-1",
		"CODENSM_WEIGHTS", "a=x", "CODENSM_DISABLE", "2",
		"CODENSM_INCLUDE", "checkout", /* fine */
		NULL,
	};
	assert_int_equal(load(e, NULL), 4);
	assert_int_equal(lines(), 4);
	assert_int_equal(cfg.include.n, 1);
}

static void quiet_silences_the_complaints(void **state)
{
	static const char *const e[] = { "HOME", "/home/u", "CODENSM_LOG", "quiet",
					 "CODENSM_FLUSH_INTERVAL", "soon", NULL };
	assert_int_equal(load(e, NULL), 1);
	assert_string_equal(err, "");
	assert_int_equal(cnsmp_log_level, CNSMP_LOG_QUIET);
}

static void options_override_the_environment(void **state)
{
	static const char *const e[] = { "HOME", "/home/u", "CODENSM_SERVICE", "env",
					 "CODENSM_FLUSH_INTERVAL", "3", "CODENSM_INCLUDE", "a", NULL };
	struct codensm_options o = { .service = "opt", .flush_interval = 0.25,
				     .weights = "a=2", .log_level = CNSMP_LOG_DEBUG,
				     .disable = 1, .api_key = "cnsm_k", .sample = 8,
				     .sample_below_ns = 300 };
	assert_int_equal(load(e, &o), 0);
	assert_int_equal(cfg.sample, 8);
	assert_int_equal(cfg.sample_below_ns, 300);
	assert_string_equal(cfg.service, "opt");
	assert_true(cfg.flush_interval == 0.25);
	assert_true(cfg.weights.number[0] == 2.0);
	assert_string_equal(cfg.include.prefix[0], "a"); /* not overridden */
	assert_int_equal(cfg.log_level, CNSMP_LOG_DEBUG);
	assert_int_equal(cfg.disable, 1);
	assert_string_equal(cfg.api_key, "cnsm_k");
}

static void a_malformed_option_keeps_the_environments_value(void **state)
{
	static const char *const e[] = { "HOME", "/home/u", "CODENSM_ENDPOINT", "http://env:1/i",
					 "CODENSM_FLUSH_INTERVAL", "3", NULL };
	struct codensm_options o = { .endpoint = "gopher://x", .flush_interval = -2,
				     .log_level = 7, .sample = 70000 };
	assert_int_equal(load(e, &o), 4);
	assert_int_equal(cfg.sample, 1);
	assert_string_equal(cfg.endpoint, "http://env:1/i");
	assert_true(cfg.flush_interval == 3.0);
	assert_int_equal(cfg.log_level, CNSMP_LOG_INFO);
	assert_string_equal(err,
		"codensm: ignoring codensm_init option log_level=7: not 1 (quiet), 2 (info) or 3 (debug); using 2\n"
		"codensm: ignoring codensm_init option for CODENSM_ENDPOINT='gopher://x': not an http:// or https:// URL; using http://env:1/i\n"
		"codensm: ignoring codensm_init option flush_interval=-2: not a number of seconds > 0 and <= 86400; using 3\n"
		"codensm: ignoring codensm_init option sample=70000: not a whole number from 1 (time every call) to 65536; using 1\n");
}

static void a_relative_source_root_is_made_absolute(void **state)
{
	static const char *const e[] = { "HOME", "/home/u", "CODENSM_SOURCE_ROOT", ".", NULL };
	char cwd[4096], want[4200];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(want, sizeof(want), "%s/.", cwd);
	assert_int_equal(load(e, NULL), 0);
	assert_string_equal(cfg.source_root, want);
}

/* ---- the parsers on their own ------------------------------------------ */

static void prefix_lists_skip_empty_items_and_trim(void **state)
{
	struct cnsmp_prefixes p = { 0 };
	assert_int_equal(cnsmp_config_parse_prefixes(" a ,,b.c::D<int>,~x-y, ", &p), 0);
	assert_int_equal(p.n, 3);
	assert_string_equal(p.prefix[0], "a");
	assert_string_equal(p.prefix[1], "b.c::D<int>");
	assert_string_equal(p.prefix[2], "~x-y");
	cnsmp_prefixes_release(&p);
}

static void a_malformed_list_leaves_the_output_untouched(void **state)
{
	struct cnsmp_prefixes p = { 7, NULL };
	struct cnsmp_prefix_map m = { 9, NULL, NULL, NULL };
	assert_int_equal(cnsmp_config_parse_prefixes("a,b c", &p), -1);
	assert_int_equal(cnsmp_config_parse_prefixes("a;b", &p), -1);
	assert_int_equal(cnsmp_config_parse_prefixes(NULL, &p), -1);
	assert_int_equal(p.n, 7);
	assert_int_equal(cnsmp_config_parse_map("a=1,=2", 1, &m), -1);
	assert_int_equal(cnsmp_config_parse_map("a=1,b", 1, &m), -1);
	assert_int_equal(cnsmp_config_parse_map("a=1e999", 1, &m), -1);
	assert_int_equal(m.n, 9);
}

static void maps_keep_text_and_number(void **state)
{
	struct cnsmp_prefix_map m = { 0 };
	assert_int_equal(cnsmp_config_parse_map("checkout = 9 , checkout.log=0.25,,", 1, &m), 0);
	assert_int_equal(m.n, 2);
	assert_string_equal(m.prefix[0], "checkout");
	assert_string_equal(m.value[0], "9");
	assert_true(m.number[0] == 9.0);
	assert_string_equal(m.prefix[1], "checkout.log");
	assert_true(m.number[1] == 0.25);
	cnsmp_prefix_map_release(&m);
	assert_int_equal(cnsmp_config_parse_map("", 0, &m), 0);
	assert_int_equal(m.n, 0);
	cnsmp_prefix_map_release(&m);
}

static void seconds_are_decimal_positive_and_at_most_a_day(void **state)
{
	double d = -1;
	assert_int_equal(cnsmp_config_parse_seconds("0.1", &d), 0);
	assert_true(d == 0.1);
	assert_int_equal(cnsmp_config_parse_seconds(" 86400 ", &d), 0);
	assert_true(d == 86400.0);
	assert_int_equal(cnsmp_config_parse_seconds("1e1", &d), 0);
	assert_true(d == 10.0);
	d = 5;
	assert_int_equal(cnsmp_config_parse_seconds("", &d), -1);
	assert_int_equal(cnsmp_config_parse_seconds("0", &d), -1);
	assert_int_equal(cnsmp_config_parse_seconds("-0.5", &d), -1);
	assert_int_equal(cnsmp_config_parse_seconds("86400.5", &d), -1);
	assert_int_equal(cnsmp_config_parse_seconds("1,5", &d), -1);
	assert_int_equal(cnsmp_config_parse_seconds("infinity", &d), -1);
	assert_int_equal(cnsmp_config_parse_seconds(NULL, &d), -1);
	assert_true(d == 5.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(an_empty_environment_gives_the_defaults, teardown),
		cmocka_unit_test_teardown(the_spool_follows_xdg_then_home_then_tmp, teardown),
		cmocka_unit_test_teardown(the_symbol_cache_follows_xdg_then_home_or_is_off, teardown),
		cmocka_unit_test_teardown(every_variable_is_read, teardown),
		cmocka_unit_test_teardown(an_empty_include_reads_as_unset, teardown),
		cmocka_unit_test_teardown(disable_and_log_take_their_keywords_in_any_case, teardown),
		cmocka_unit_test_teardown(a_malformed_value_keeps_the_default_with_one_line, teardown),
		cmocka_unit_test_teardown(a_quoted_value_is_cut_at_80_bytes, teardown),
		cmocka_unit_test_teardown(a_value_over_64_kib_is_refused_whole, teardown),
		cmocka_unit_test_teardown(every_malformed_value_is_counted, teardown),
		cmocka_unit_test_teardown(quiet_silences_the_complaints, teardown),
		cmocka_unit_test_teardown(options_override_the_environment, teardown),
		cmocka_unit_test_teardown(a_malformed_option_keeps_the_environments_value, teardown),
		cmocka_unit_test_teardown(a_relative_source_root_is_made_absolute, teardown),
		cmocka_unit_test(prefix_lists_skip_empty_items_and_trim),
		cmocka_unit_test(a_malformed_list_leaves_the_output_untouched),
		cmocka_unit_test(maps_keep_text_and_number),
		cmocka_unit_test(seconds_are_decimal_positive_and_at_most_a_day),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
