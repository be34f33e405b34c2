/* rules.c: the pure naming and selection rules (module paths, include and
 * exclude, departments, weights), kept free of state so they unit-test alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Appends component [s, s+n) to out (at *len) with a '.' separator. */
static void put_component(char *out, size_t *len, const char *s, size_t n)
{
	if (*len)
		out[(*len)++] = '.';
	memcpy(out + *len, s, n);
	*len += n;
}

/* Path components map one-to-one onto name components, so "." and ".."
 * parts (and empty ones from "//" or a leading '/') are dropped: they say
 * where the file sits relative to the root, not what the module is.  Only
 * the last component loses its extension, and only when the dot is not
 * its first character (".hidden" stays). */
CNSMP_NOINST char *cnsmp_rules_module_path(const char *relative_file)
{
	if (!relative_file)
		relative_file = "";
	char *out = malloc(strlen(relative_file) + 1);
	if (!out)
		return NULL;
	size_t len = 0;
	const char *p = relative_file;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		int dots = (n == 1 && p[0] == '.') ||
			   (n == 2 && p[0] == '.' && p[1] == '.');
		if (!slash && n > 0) {
			const char *ext = memrchr(p, '.', n);
			if (ext && ext > p && !dots)
				n = (size_t)(ext - p);
		}
		if (n > 0 && !dots)
			put_component(out, &len, p, n);
		p = slash ? slash + 1 : p + strlen(p);
	}
	out[len] = '\0';
	return out;
}

/* A prefix that itself ends at a boundary ("geo::", "checkout.") matches
 * whatever follows; otherwise the next character of the name must start a
 * new component, so "checkout" never matches "checkoutx". */
CNSMP_NOINST int cnsmp_rules_prefix_match(const char *prefix, const char *name)
{
	if (!prefix || !name || !*prefix)
		return 0;
	size_t n = strlen(prefix);
	if (strncmp(prefix, name, n) != 0)
		return 0;
	char last = prefix[n - 1], next = name[n];
	return next == '\0' || next == '.' || next == ':' || last == '.' ||
	       last == ':';
}

static int any_match(const struct cnsmp_prefixes *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (cnsmp_rules_prefix_match(p->prefix[i], name))
			return 1;
	return 0;
}

CNSMP_NOINST int cnsmp_rules_tracked(const struct cnsmp_config *cfg,
				     const char *name, int system)
{
	if (!name)
		return 0;
	int included = cfg->include_set ? any_match(&cfg->include, name)
					: !system;
	return included && !any_match(&cfg->exclude, name);
}

/* Index of the longest prefix of `m` matching `name`, or -1.  On equal
 * lengths the later entry wins, so "a=x,a=y" means y, as a later
 * assignment would. */
static long longest(const struct cnsmp_prefix_map *m, const char *name)
{
	long best = -1;
	size_t best_len = 0;
	for (size_t i = 0; i < m->n; i++) {
		size_t n = strlen(m->prefix[i]);
		if (n >= best_len && cnsmp_rules_prefix_match(m->prefix[i], name)) {
			best = (long)i;
			best_len = n;
		}
	}
	return best;
}

/* The first component is the top-level folder of the module path, which
 * is how most code bases split by team; "::" counts as a boundary too for
 * names that start with a C++ scope. */
CNSMP_NOINST const char *cnsmp_rules_department(const struct cnsmp_config *cfg,
						const char *name, char *buf,
						size_t len)
{
	if (!name)
		return "default";
	long i = longest(&cfg->department, name);
	if (i >= 0)
		return cfg->department.value[i];
	size_t n = strcspn(name, ".:");
	if (n == 0 || len == 0)
		return "default";
	if (n >= len)
		n = len - 1;
	memcpy(buf, name, n);
	buf[n] = '\0';
	return buf;
}

CNSMP_NOINST double cnsmp_rules_weight(const struct cnsmp_config *cfg,
				       const char *name)
{
	long i = name ? longest(&cfg->weights, name) : -1;
	return i >= 0 ? cfg->weights.number[i] : 1.0;
}

/* ---- paths ------------------------------------------------------------- */

/* Lexically normalised absolute path of `file`, taken relative to `dir`
 * when it is relative ("a/./b/../c.c" -> "/dir/a/c.c").  No symlinks are
 * followed: the build machine's paths need not exist here. */
CNSMP_NOINST char *cnsmp_rules_absolute(const char *dir, const char *file)
{
	size_t n = strlen(file) + (dir ? strlen(dir) : 0) + 3;
	char *in = malloc(n), *out = malloc(n);
	if (!in || !out) {
		free(in);
		free(out);
		return NULL;
	}
	snprintf(in, n, "%s/%s", file[0] == '/' || !dir ? "" : dir, file);
	size_t o = 0;
	for (char *p = in, *next; *p; p = next) {
		while (*p == '/')
			p++;
		next = p + strcspn(p, "/");
		size_t len = (size_t)(next - p);
		if (len == 0 || (len == 1 && p[0] == '.'))
			continue;
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[--o] != '/')
				;
			continue;
		}
		out[o++] = '/';
		memcpy(out + o, p, len);
		o += len;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	free(in);
	return out;
}

/* Headers and code that come with the compiler or the system: functions
 * declared there are library code the user did not write. */
CNSMP_NOINST int cnsmp_rules_system_path(const char *abs)
{
	static const char *const roots[] = {
		"/usr/include/", "/usr/local/include/", "/usr/lib/",
		"/usr/lib64/", "/usr/libexec/", "/usr/local/lib/",
		"/usr/src/", "/usr/share/", "/opt/rh/", "/gnu/store/",
		"/nix/store/",
	};
	for (size_t i = 0; i < sizeof(roots) / sizeof(*roots); i++)
		if (!strncmp(abs, roots[i], strlen(roots[i])))
			return 1;
	return abs[0] == '<'; /* "<built-in>", "<artificial>" */
}

/* The name's module part and the reported file for a source file: inside
 * the root, the path relative to it; outside, the absolute path, whose
 * components (minus the leading '/') still make a stable module path. */
CNSMP_NOINST int cnsmp_rules_module_of(const char *root, const char *abs,
				       char **modpath, char **file)
{
	size_t n = strlen(root);
	const char *rel = NULL;
	if (!strcmp(root, "/"))
		rel = abs + 1;
	else if (!strncmp(abs, root, n) && abs[n] == '/')
		rel = abs + n + 1;
	*modpath = cnsmp_rules_module_path(rel ? rel : abs + 1);
	*file = strdup(rel ? rel : abs);
	if (!*modpath || !*file) {
		free(*modpath);
		free(*file);
		*modpath = *file = NULL; /* the caller frees them too */
		return -1;
	}
	return 0;
}
