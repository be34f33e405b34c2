/* testscan.c: the identifiers the source tree's test files use, for each
 * function's has_tests verdict.  A light C/C++ lexer (comments, strings
 * and character literals skipped) is enough: the question is only whether
 * a function's name appears in a test as code. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flows.h"
#include "internal.h"

#define MAX_DEPTH 32          /* symlink loops and absurd trees stop here */
#define MAX_FILE (16u << 20)  /* a larger "test" is generated data, not a test */

static int source_ext(const char *base)
{
	static const char *const ext[] = { ".c", ".h", ".cc", ".cpp", ".cxx", ".c++",
					   ".hh", ".hpp", ".hxx", ".C", ".H", NULL };
	const char *dot = strrchr(base, '.');
	if (!dot)
		return 0;
	for (const char *const *e = ext; *e; e++)
		if (!strcmp(dot, *e))
			return 1;
	return 0;
}

/* Under a folder named test, tests or t (below the root), or named
 * test_*.EXT or *_test.EXT, for a C or C++ extension. */
int an_test_file(const char *rel)
{
	const char *base = strrchr(rel, '/');
	base = base ? base + 1 : rel;
	if (!source_ext(base))
		return 0;
	for (const char *p = rel; p < base;) {
		size_t n = strcspn(p, "/");
		if ((n == 4 && !strncmp(p, "test", 4)) || (n == 5 && !strncmp(p, "tests", 5)) ||
		    (n == 1 && p[0] == 't'))
			return 1;
		p += n + 1;
	}
	size_t stem = (size_t)(strrchr(base, '.') - base);
	return !strncmp(base, "test_", 5) ||
	       (stem > 5 && !strncmp(base + stem - 5, "_test", 5));
}

static int add(struct an_idset *s, const char *p, size_t n)
{
	if (cnsmp_grow((void **)&s->id, &s->cap, s->n + 1, sizeof(*s->id)) < 0)
		return -1;
	if (!(s->id[s->n] = strndup(p, n)))
		return -1;
	s->n++;
	return 0;
}

static int ident_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int ident_char(int c)
{
	return ident_start(c) || (c >= '0' && c <= '9');
}

static int lex(struct an_idset *s, const char *t, size_t n)
{
	for (size_t i = 0; i < n;) {
		char c = t[i];
		if (c == '/' && i + 1 < n && t[i + 1] == '/') {
			while (i < n && t[i] != '\n')
				i++;
		} else if (c == '/' && i + 1 < n && t[i + 1] == '*') {
			const char *e = memmem(t + i + 2, n - i - 2, "*/", 2);
			i = e ? (size_t)(e - t) + 2 : n;
		} else if (c == '"' || c == '\'') {
			for (i++; i < n && t[i] != c && t[i] != '\n'; i++)
				if (t[i] == '\\')
					i++;
			i++;
		} else if (ident_start((unsigned char)c)) {
			size_t j = i;
			while (j < n && ident_char((unsigned char)t[j]))
				j++;
			if (add(s, t + i, j - i) < 0)
				return -1;
			i = j;
		} else if (c >= '0' && c <= '9') { /* 0x1f, 1e5, 10ul: one number */
			while (i < n && ident_char((unsigned char)t[i]))
				i++;
		} else {
			i++;
		}
	}
	return 0;
}

static int read_file(struct an_idset *s, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0; /* unreadable test files say nothing */
	char *buf = malloc(MAX_FILE);
	size_t n = buf ? fread(buf, 1, MAX_FILE, f) : 0;
	fclose(f);
	int r = buf ? lex(s, buf, n) : -1;
	free(buf);
	return r;
}

/* rel: the path below the root ("" at the root). */
static int walk(struct an_idset *s, const char *dir, const char *rel, int depth)
{
	if (depth > MAX_DEPTH)
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return depth ? 0 : -1;
	int files = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue; /* ., .., .git and other hidden folders */
		char path[4096], sub[4096];
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path) ||
		    snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", e->d_name) >= (int)sizeof(sub))
			continue;
		struct stat st;
		if (stat(path, &st) != 0)
			continue;
		int r = 0;
		if (S_ISDIR(st.st_mode))
			r = walk(s, path, sub, depth + 1);
		else if (S_ISREG(st.st_mode) && an_test_file(sub)) {
			r = read_file(s, path);
			if (r == 0)
				r = 1;
		}
		if (r < 0) {
			closedir(d);
			return -1;
		}
		files += r;
	}
	closedir(d);
	return files;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int an_testscan(const char *root, struct an_idset *s, char *err, size_t errlen)
{
	errno = 0;
	int n = walk(s, root, "", 0);
	if (n < 0) {
		snprintf(err, errlen, "cannot read the source tree '%s': %s", root,
			 errno ? strerror(errno) : "out of memory");
		return -1;
	}
	if (s->n)
		qsort(s->id, s->n, sizeof(*s->id), cmp);
	size_t o = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (o && !strcmp(s->id[o - 1], s->id[i]))
			free(s->id[i]);
		else
			s->id[o++] = s->id[i];
	}
	s->n = o;
	return n;
}

int an_idset_has(const struct an_idset *s, const char *id)
{
	return s->n && bsearch(&id, s->id, s->n, sizeof(*s->id), cmp) != NULL;
}

void an_idset_release(struct an_idset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->id[i]);
	free(s->id);
	memset(s, 0, sizeof(*s));
}
