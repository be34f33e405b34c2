/* static.c: the dashboard's files: which folder, which file a URL names
 * (never one outside the folder), and its Content-Type. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server.h"

/* Two checks, either sufficient: no segment of the path may be "." or ".."
 * (the URL arrives already percent-decoded), and the resolved real path,
 * symlinks included, must lie under the real root. */
int srv_static_resolve(const char *root, const char *urlpath, char *out, size_t outlen)
{
	char path[PATH_MAX], real[PATH_MAX];
	struct stat st;
	size_t rlen = strlen(root);

	if (urlpath[0] != '/' || strchr(urlpath, '\\'))
		return 403;
	for (const char *seg = urlpath; seg; seg = strchr(seg + 1, '/')) {
		const char *s = seg + 1;
		size_t n = strcspn(s, "/");
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return 403;
	}
	if (!strcmp(urlpath, "/"))
		urlpath = "/index.html";
	if ((size_t)snprintf(path, sizeof path, "%s%s", root, urlpath) >= sizeof path)
		return 404;
	if (!realpath(path, real))
		return errno == ENOENT || errno == ENOTDIR ? 404 : 403;
	if (strncmp(real, root, rlen) != 0 || real[rlen] != '/')
		return 403;
	if (stat(real, &st) < 0 || !S_ISREG(st.st_mode))
		return 404;
	if (strlen(real) >= outlen)
		return 404;
	strcpy(out, real);
	return 0;
}

const char *srv_content_type(const char *path)
{
	static const struct { const char *ext, *type; } types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".mjs", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".json", "application/json; charset=utf-8" },
		{ ".map", "application/json; charset=utf-8" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".woff2", "font/woff2" },
		{ ".woff", "font/woff" },
		{ ".txt", "text/plain; charset=utf-8" },
		{ ".md", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(path, '.');
	if (dot && !strchr(dot, '/'))
		for (size_t i = 0; i < sizeof types / sizeof *types; i++)
			if (!strcmp(dot, types[i].ext))
				return types[i].type;
	return "application/octet-stream";
}

static int use_dir(const char *dir, char *buf, size_t len)
{
	char real[PATH_MAX];
	struct stat st;
	if (!realpath(dir, real) || stat(real, &st) < 0 || !S_ISDIR(st.st_mode) || strlen(real) >= len)
		return 0;
	strcpy(buf, real);
	return 1;
}

const char *srv_web_dir(const char *override, char *buf, size_t len)
{
	char exe[PATH_MAX], cand[PATH_MAX + 64];
	if (override)
		return use_dir(override, buf, len) ? buf : NULL;
	const char *env = getenv("CODENSM_WEB");
	if (env && *env)
		return use_dir(env, buf, len) ? buf : NULL;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		/* installed: PREFIX/bin/codensm-server -> PREFIX/share/codensm/web */
		snprintf(cand, sizeof cand, "%s/../share/codensm/web", exe);
		if (use_dir(cand, buf, len))
			return buf;
		/* built: build/bin/codensm-server -> tools/server/web of the tree */
		snprintf(cand, sizeof cand, "%s/../../tools/server/web", exe);
		if (use_dir(cand, buf, len))
			return buf;
	}
	return use_dir("tools/server/web", buf, len) ? buf : NULL;
}
