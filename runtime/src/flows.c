/* flows.c: the control-flow analysis `codensm analyze` left for a module
 * (docs/flows.md), read once per module, checked field by field and kept
 * as one compact JSON entry per function for CODENSM_MODE=full.
 *
 * Runs on the flusher thread, never on the hot path.  The file is the
 * user's, but what ships is rebuilt here from the validated fields only
 * (name, node kinds, edges, counts, callee names, has_tests), so a file
 * that carried anything else (source text, a literal) could not make it
 * leave the process. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define FLOWS_SECTION ".codensm.flows"
#define MAX_FLOWS_BYTES (64u << 20) /* a larger file is not an analysis */
#define MAX_NAME 512                /* the contract's longest function name */

struct flow_entry {
	char *name;
	char *json;
};

struct cnsmp_flows {
	struct flow_entry *e; /* sorted by name */
	size_t n;
};

static int is_count(json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0 &&
	       json_integer_value(v) <= INT32_MAX;
}

static int valid_name(json_t *v)
{
	size_t n = json_is_string(v) ? json_string_length(v) : 0;
	return n > 0 && n <= MAX_NAME && strlen(json_string_value(v)) == n;
}

/* The entry rebuilt from its checked fields, or NULL if any is wrong. */
CNSMP_NOINST static json_t *checked(json_t *in)
{
	static const char *const kinds[] = { "start", "decision", "loop", "block", "end", "error", NULL };
	static const char *const counts[] = { "decisions", "loops", "returns", "nodes_count", "lines", NULL };
	json_t *nodes = json_object_get(in, "nodes"), *edges = json_object_get(in, "edges");
	json_t *calls = json_object_get(in, "calls_out"), *tests = json_object_get(in, "has_tests");
	if (!json_is_object(in) || !valid_name(json_object_get(in, "name")) || !json_is_array(nodes) ||
	    !json_is_array(edges) || !json_is_array(calls) || json_array_size(calls) > 40 ||
	    !json_is_boolean(tests))
		return NULL;
	for (const char *const *c = counts; *c; c++)
		if (!is_count(json_object_get(in, *c)))
			return NULL;
	size_t nn = json_array_size(nodes);
	if ((json_int_t)nn != json_integer_value(json_object_get(in, "nodes_count")))
		return NULL;
	json_t *out = json_object(), *on = json_array(), *oe = json_array(), *oc = json_array();
	int ok = out && on && oe && oc;
	for (size_t i = 0; ok && i < nn; i++) {
		const char *t = json_string_value(json_object_get(json_array_get(nodes, i), "type"));
		const char *const *k = kinds;
		while (t && *k && strcmp(*k, t))
			k++;
		ok = t && *k && json_array_append_new(on, json_pack("{ss}", "type", *k)) == 0;
	}
	for (size_t i = 0; ok && i < json_array_size(edges); i++) {
		json_t *e = json_array_get(edges, i);
		json_t *a = json_array_get(e, 0), *b = json_array_get(e, 1);
		ok = json_array_size(e) == 2 && is_count(a) && is_count(b) &&
		     (size_t)json_integer_value(a) < nn && (size_t)json_integer_value(b) < nn &&
		     json_array_append_new(oe, json_pack("[II]", json_integer_value(a),
							 json_integer_value(b))) == 0;
	}
	for (size_t i = 0; ok && i < json_array_size(calls); i++) {
		json_t *c = json_array_get(calls, i);
		ok = valid_name(c) && json_array_append_new(oc, json_string(json_string_value(c))) == 0;
	}
	if (ok)
		ok = json_object_set_new(out, "name", json_string(json_string_value(json_object_get(in, "name")))) == 0 &&
		     json_object_set(out, "nodes", on) == 0 && json_object_set(out, "edges", oe) == 0;
	for (const char *const *c = counts; ok && *c; c++)
		ok = json_object_set_new(out, *c, json_integer(json_integer_value(json_object_get(in, *c)))) == 0;
	if (ok)
		ok = json_object_set(out, "calls_out", oc) == 0 &&
		     json_object_set_new(out, "has_tests", json_boolean(json_is_true(tests))) == 0;
	json_decref(on);
	json_decref(oe);
	json_decref(oc);
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct flow_entry *)a)->name, ((const struct flow_entry *)b)->name);
}

CNSMP_NOINST void cnsmp_flows_free(struct cnsmp_flows *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		free(f->e[i].name);
		free(f->e[i].json);
	}
	free(f->e);
	free(f);
}

/* Parses one analysis file's bytes; entries that fail a check are left
 * out (*dropped counts them), a document that is not an analysis at all
 * gives NULL. */
CNSMP_NOINST struct cnsmp_flows *cnsmp_flows_parse(const char *buf, size_t len,
						    size_t *dropped)
{
	json_error_t je;
	json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	json_t *arr = json_object_get(doc, "flows");
	struct cnsmp_flows *f = NULL;
	size_t drop = 0;
	if (!json_is_object(doc) || json_integer_value(json_object_get(doc, "format")) != 1 ||
	    !json_is_array(arr) || !(f = calloc(1, sizeof(*f))) ||
	    !(f->e = calloc(json_array_size(arr) + 1, sizeof(*f->e)))) {
		free(f);
		json_decref(doc);
		return NULL;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *c = checked(json_array_get(arr, i));
		char *text = c ? json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		char *name = c ? strdup(json_string_value(json_object_get(c, "name"))) : NULL;
		json_decref(c);
		if (!text || !name) {
			free(text);
			free(name);
			drop++;
			continue;
		}
		f->e[f->n++] = (struct flow_entry){ name, text };
	}
	json_decref(doc);
	qsort(f->e, f->n, sizeof(*f->e), by_name);
	size_t o = 0; /* one entry per name: the first in name order wins */
	for (size_t i = 0; i < f->n; i++) {
		if (o && !strcmp(f->e[o - 1].name, f->e[i].name)) {
			free(f->e[i].name);
			free(f->e[i].json);
			drop++;
		} else {
			f->e[o++] = f->e[i];
		}
	}
	f->n = o;
	if (dropped)
		*dropped = drop;
	return f;
}

static char *sections(int fd, size_t *len, int (*want_note)(const char *, size_t, void *),
		      void *arg);

/* The whole file, or NULL (missing, unreadable, larger than the cap). */
static char *slurp(int fd, off_t at, size_t len)
{
	char *buf = len <= MAX_FLOWS_BYTES ? malloc(len + 1) : NULL;
	size_t got = 0;
	while (buf && got < len) {
		ssize_t r = pread(fd, buf + got, len - got, at + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(buf);
			return NULL;
		}
		got += (size_t)r;
	}
	return buf;
}

/* The bytes of the .codensm.flows section of a 64-bit ELF file, which
 * `codensm analyze --embed` adds (or, with notes set, of every SHT_NOTE
 * section in turn until want_note says stop); NULL if there is none. */
static char *section(int fd, size_t *len)
{
	return sections(fd, len, NULL, NULL);
}

static char *sections(int fd, size_t *len, int (*want_note)(const char *, size_t, void *),
		      void *arg)
{
	Elf64_Ehdr eh;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shstrndx >= eh.e_shnum)
		return NULL;
	Elf64_Shdr *sh = malloc(eh.e_shnum * sizeof(*sh));
	char *names = NULL, *out = NULL;
	if (!sh || pread(fd, sh, eh.e_shnum * sizeof(*sh), (off_t)eh.e_shoff) !=
			   (ssize_t)(eh.e_shnum * sizeof(*sh)))
		goto done;
	Elf64_Shdr *str = &sh[eh.e_shstrndx];
	if (!(names = slurp(fd, (off_t)str->sh_offset, str->sh_size)))
		goto done;
	names[str->sh_size] = '\0';
	for (size_t i = 0; i < eh.e_shnum; i++) {
		if (want_note && sh[i].sh_type == SHT_NOTE) {
			char *n = slurp(fd, (off_t)sh[i].sh_offset, sh[i].sh_size);
			int stop = n && want_note(n, sh[i].sh_size, arg);
			free(n);
			if (stop)
				break;
		} else if (!want_note && sh[i].sh_name < str->sh_size &&
			   !strcmp(names + sh[i].sh_name, FLOWS_SECTION) && sh[i].sh_type != SHT_NOBITS) {
			out = slurp(fd, (off_t)sh[i].sh_offset, sh[i].sh_size);
			*len = sh[i].sh_size;
			break;
		}
	}
done:
	free(sh);
	free(names);
	return out;
}

CNSMP_NOINST struct cnsmp_flows *cnsmp_flows_load(const char *dir, const char *build_id,
						   const char *elf_path, size_t *dropped)
{
	char path[4096];
	char *buf = NULL;
	size_t len = 0;
	int fd;
	if (dir && build_id && *build_id &&
	    snprintf(path, sizeof(path), "%s/%s.json", dir, build_id) < (int)sizeof(path) &&
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
			buf = slurp(fd, 0, len = (size_t)st.st_size);
		close(fd);
	}
	if (!buf && elf_path && (fd = open(elf_path, O_RDONLY | O_CLOEXEC)) >= 0) {
		buf = section(fd, &len);
		close(fd);
	}
	if (!buf)
		return NULL;
	struct cnsmp_flows *f = cnsmp_flows_parse(buf, len, dropped);
	free(buf);
	return f;
}

CNSMP_NOINST const char *cnsmp_flows_find(const struct cnsmp_flows *f, const char *name)
{
	if (!f || !name)
		return NULL;
	struct flow_entry key = { (char *)name, NULL };
	const struct flow_entry *e = bsearch(&key, f->e, f->n, sizeof(*f->e), by_name);
	return e ? e->json : NULL;
}

CNSMP_NOINST size_t cnsmp_flows_count(const struct cnsmp_flows *f)
{
	return f ? f->n : 0;
}

/* Beside the symbol cache: $XDG_CACHE_HOME/codensm/flows, else
 * ~/.cache/codensm/flows, else none. */
CNSMP_NOINST char *cnsmp_flows_default_dir(char *(*getenv_fn)(const char *))
{
	return cnsmp_cache_dir(getenv_fn, "flows");
}

/* ---- per module, for the flusher ---------------------------------------- */

/* The GNU build-id note among one note section's bytes, as hex into arg
 * (a char[129]); 1 when found. */
static int build_id_note(const char *p, size_t n, void *arg)
{
	char *hex = arg;
	unsigned char id[64];
	size_t len = cnsmp_note_build_id((const unsigned char *)p, n, 4, id, sizeof id);
	for (size_t i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	return len > 0;
}

CNSMP_NOINST int cnsmp_flows_build_id(const char *elf_path, char *hex, size_t len)
{
	char buf[129] = "";
	size_t ignored;
	int fd = open(elf_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	sections(fd, &ignored, build_id_note, buf);
	close(fd);
	if (!buf[0] || strlen(buf) >= len)
		return -1;
	memcpy(hex, buf, strlen(buf) + 1);
	return 0;
}

/* Modules looked up so far, with their flows (NULL: none).  A process
 * loads a handful of modules, so a list will do; the mutex is taken on
 * the flusher thread only, once per function. */
struct module_flows {
	char *path;
	struct cnsmp_flows *flows;
	struct module_flows *next;
};
static struct module_flows *modules;
static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;

CNSMP_NOINST const char *cnsmp_flows_lookup(const char *dir, const char *module_path,
					     const char *name)
{
	if (!module_path || !name)
		return NULL;
	pthread_mutex_lock(&modules_lock);
	struct module_flows *m = modules;
	while (m && strcmp(m->path, module_path))
		m = m->next;
	if (!m && (m = calloc(1, sizeof(*m))) && (m->path = strdup(module_path))) {
		char id[129];
		if (cnsmp_flows_build_id(module_path, id, sizeof(id)) == 0)
			m->flows = cnsmp_flows_load(dir, id, module_path, NULL);
		m->next = modules;
		modules = m;
	} else if (m && !m->path) {
		free(m);
		m = NULL;
	}
	const char *r = m ? cnsmp_flows_find(m->flows, name) : NULL;
	pthread_mutex_unlock(&modules_lock);
	return r;
}

CNSMP_NOINST void cnsmp_flows_reset(void)
{
	pthread_mutex_lock(&modules_lock);
	while (modules) {
		struct module_flows *m = modules;
		modules = m->next;
		cnsmp_flows_free(m->flows);
		free(m->path);
		free(m);
	}
	pthread_mutex_unlock(&modules_lock);
}

/* The entry as it ships: the same JSON with calls_out keeping only the
 * callees the configuration tracks (an analysed callee is the user's code,
 * so `system` is 0).  One analysis thus serves any include/exclude. */
CNSMP_NOINST char *cnsmp_flows_shipped(const char *entry, const struct cnsmp_config *cfg)
{
	json_error_t je;
	json_t *o = json_loads(entry, 0, &je);
	json_t *calls = json_object_get(o, "calls_out");
	char *out = NULL;
	if (json_is_array(calls)) {
		for (size_t i = json_array_size(calls); i-- > 0;) {
			const char *c = json_string_value(json_array_get(calls, i));
			if (!c || !cnsmp_rules_tracked(cfg, c, 0))
				json_array_remove(calls, i);
		}
		out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	}
	json_decref(o);
	return out;
}
