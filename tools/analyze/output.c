/* output.c: what `codensm analyze` writes: the flows as the seed's JSON
 * entries, and for each binary the file keyed by its GNU build-id (and
 * its .codensm.flows section), under the names the runtime gives that
 * binary's functions (docs/flows.md). */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "build.h"

extern char **environ;

/* names[i]: what function i is called in the output (NULL: not there). */
static json_t *flow_json(const struct an_build *r, size_t i, char *const *names,
			 const struct an_byusr *u)
{
	const struct an_fn *f = &r->f[i];
	json_t *nodes = json_array(), *edges = json_array(), *calls = json_array();
	for (size_t k = 0; k < f->flow.nnodes; k++)
		json_array_append_new(nodes, json_pack("{ss}", "type", an_kind_name(f->flow.kind[k])));
	for (size_t k = 0; k < f->flow.nedges; k++)
		json_array_append_new(edges, json_pack("[ii]", f->flow.edge[k][0], f->flow.edge[k][1]));
	for (size_t k = 0; f->callee && f->callee[k] && json_array_size(calls) < AN_MAX_CALLS_OUT; k++) {
		struct an_byusr key = { f->callee[k], 0 };
		const struct an_byusr *hit = bsearch(&key, u, r->nf, sizeof(*u), an_cmp_usr);
		const char *n = hit ? (names[hit->i] ? names[hit->i] : r->f[hit->i].name) : NULL;
		int dup = 0;
		for (size_t m = 0; n && m < json_array_size(calls); m++)
			dup |= !strcmp(json_string_value(json_array_get(calls, m)), n);
		if (n && !dup)
			json_array_append_new(calls, json_string(n));
	}
	return json_pack("{ss so so si si si si si so sb}", "name", names[i],
			 "nodes", nodes, "edges", edges,
			 "decisions", f->flow.decisions, "loops", f->flow.loops,
			 "returns", f->flow.returns, "nodes_count", (int)f->flow.nnodes,
			 "lines", f->flow.lines, "calls_out", calls,
			 "has_tests", f->has_tests);
}

json_t *an_flows_json(const struct an_build *r, char *const *names, const struct an_byusr *u)
{
	json_t *a = json_array();
	for (size_t i = 0; i < r->nf; i++)
		if (names[i])
			json_array_append_new(a, flow_json(r, i, names, u));
	return a;
}

/* Writes `doc` to path through a tmp file and a rename. */
int an_write_json(json_t *doc, const char *path, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	if (json_dump_file(doc, tmp, JSON_COMPACT) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* ---- binaries ---------------------------------------------------------- */

/* The GNU build-id of an ELF file as hex; -1 with a message if none. */
static int build_id(const char *path, char *hex, size_t len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	int found = 0;
	for (Elf_Scn *s = NULL; e && !found && (s = elf_nextscn(e, s));) {
		GElf_Shdr sh;
		if (!gelf_getshdr(s, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		Elf_Data *d = elf_getdata(s, NULL);
		GElf_Nhdr nh;
		size_t off = 0, name_off, desc_off;
		while (d && !found && (off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
			    memcmp((char *)d->d_buf + name_off, "GNU", 4) || nh.n_descsz * 2 >= len)
				continue;
			for (size_t i = 0; i < nh.n_descsz; i++)
				snprintf(hex + 2 * i, 3, "%02x", ((unsigned char *)d->d_buf)[desc_off + i]);
			found = 1;
		}
	}
	if (!e)
		snprintf(err, errlen, "'%s' is not an ELF file", path);
	else if (!found)
		snprintf(err, errlen, "'%s' has no GNU build-id (link it with -Wl,--build-id)", path);
	if (e)
		elf_end(e);
	close(fd);
	return found ? 0 : -1;
}

struct inv {
	char **name;
	size_t n, cap;
	int oom;
};

static void inv_add(const struct cnsmp_fninfo *fi, void *arg)
{
	struct inv *v = arg;
	if (!fi->name || fi->system)
		return;
	if (cnsmp_grow((void **)&v->name, &v->cap, v->n + 1, sizeof(*v->name)) < 0 ||
	    !(v->name[v->n] = strdup(fi->name))) {
		v->oom = 1;
		return;
	}
	v->n++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The build's function that the binary calls `name` ("base" or
 * "base#hash"), or -1. */
static long match(const struct an_build *r, const char *name)
{
	const char *h = strrchr(name, '#');
	size_t n = h && strlen(h) == 9 ? (size_t)(h - name) : strlen(name);
	uint32_t hash = n < strlen(name) ? (uint32_t)strtoul(h + 1, NULL, 16) : 0;
	size_t lo = 0, hi = r->nf; /* r->f is sorted by base (finish_names) */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strncmp(r->f[mid].base, name, n);
		if (c < 0 || (c == 0 && strlen(r->f[mid].base) < n))
			lo = mid + 1;
		else
			hi = mid;
	}
	long alt = -1;
	for (size_t i = lo; i < r->nf && strlen(r->f[i].base) == n && !strncmp(r->f[i].base, name, n); i++) {
		const struct an_fn *f = &r->f[i];
		if (n == strlen(name) || f->hash == hash)
			return (long)i;
		for (size_t k = 0; k < f->nalt; k++)
			if (f->alt[k] == hash && alt < 0)
				alt = (long)i;
	}
	return alt;
}

static int embed(const char *binary, const char *file, char *err, size_t errlen)
{
	char add[PATH_MAX + 32];
	snprintf(add, sizeof(add), AN_SECTION "=%s", file);
	char *argv[] = { "objcopy", "--remove-section=" AN_SECTION, "--add-section", add,
			 (char *)binary, NULL };
	pid_t pid;
	int st;
	if (posix_spawnp(&pid, "objcopy", NULL, NULL, argv, environ) != 0 ||
	    waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(err, errlen, "objcopy could not add the flows to '%s'", binary);
		return -1;
	}
	return 0;
}

static int mkdirs(const char *path)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p, 0700) != 0 && errno != EEXIST)
				return -1;
			*s = '/';
		}
	return mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int an_binary(struct an_build *r, const char *bin, const struct an_byusr *u,
		      const struct cnsmp_config *cfg)
{
	char id[130], err[PATH_MAX + 256], path[PATH_MAX];
	if (build_id(bin, id, sizeof(id), err, sizeof(err)) < 0) {
		fprintf(r->err, "codensm: %s\n", err);
		return -1;
	}
	struct inv v = { 0 };
	cnsmp_symbols_inventory_file(bin, cfg, inv_add, &v);
	/* A function split by the optimiser (.cold, .part) is listed once per
	 * piece under one name. */
	if (v.n)
		qsort(v.name, v.n, sizeof(*v.name), cmp_str);
	size_t uniq = 0;
	for (size_t i = 0; i < v.n; i++) {
		if (uniq && !strcmp(v.name[uniq - 1], v.name[i]))
			free(v.name[i]);
		else
			v.name[uniq++] = v.name[i];
	}
	v.n = uniq;
	char **names = calloc(r->nf + 1, sizeof(*names));
	size_t matched = 0;
	for (size_t i = 0; names && i < v.n; i++) {
		long k = match(r, v.name[i]);
		if (k >= 0 && !names[k]) {
			names[k] = v.name[i];
			matched++;
		} else if (r->o->verbose) {
			fprintf(r->err, "codensm: '%s': no analysis for '%s'\n", bin, v.name[i]);
		}
	}
	int rc = -1;
	if (!names || v.oom) {
		fprintf(r->err, "codensm: listing the functions of '%s': out of memory\n", bin);
		goto out;
	}
	if (v.n == 0) {
		fprintf(r->err, "codensm: no function of its own found in '%s' (built with -g?)\n", bin);
		goto out;
	}
	if (matched == 0) {
		fprintf(r->err, "codensm: none of the %zu functions of '%s' is defined in this build's sources (is it from another build?)\n",
			v.n, bin);
		goto out;
	}
	json_t *doc = json_pack("{si ss ss so}", "format", 1, "build_id", id, "binary", bin,
				"flows", an_flows_json(r, names, u));
	snprintf(path, sizeof(path), "%s/%s.json", r->o->out_dir, id);
	if (mkdirs(r->o->out_dir) < 0)
		fprintf(r->err, "codensm: cannot create '%s': %s\n", r->o->out_dir, strerror(errno));
	else if (an_write_json(doc, path, err, sizeof(err)) < 0)
		fprintf(r->err, "codensm: %s\n", err);
	else if (r->o->embed && embed(bin, path, err, sizeof(err)) < 0)
		fprintf(r->err, "codensm: %s\n", err);
	else
		rc = 0;
	json_decref(doc);
	if (rc == 0)
		fprintf(r->err, "codensm: '%s': flows of %zu of its %zu functions in %s%s\n",
			bin, matched, v.n, path, r->o->embed ? " and its " AN_SECTION " section" : "");
out:
	for (size_t i = 0; i < v.n; i++)
		free(v.name[i]);
	free(v.name);
	free(names);
	return rc;
}
