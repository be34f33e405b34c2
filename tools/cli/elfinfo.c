/* elfinfo.c: reads an ELF file with libelf and answers the doctor's
 * questions about it: is it instrumented, where do its hooks bind, does it
 * carry debug info.  Nothing here runs the program or calls exit(). */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <glob.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elfinfo.h"

#define MAX_OBJECTS 256

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

/* "name@VERSION" and "name@@VERSION" in .symtab are the same symbol. */
static int same_symbol(const char *sym, const char *name)
{
	size_t n = strlen(name);
	return strncmp(sym, name, n) == 0 && (sym[n] == '\0' || sym[n] == '@');
}

static int push(char ***arr, size_t *n, const char *s)
{
	char **a = realloc(*arr, (*n + 1) * sizeof(*a));
	if (!a)
		return -1;
	*arr = a;
	if (!(a[*n] = strdup(s)))
		return -1;
	(*n)++;
	return 0;
}

/* Count `call rel32` instructions whose target is `addr`: how a static
 * runtime's hook is reached from instrumented code.  A byte pattern scan,
 * not a disassembly, so it can overcount by chance; the exact address
 * match makes that rare enough for a diagnosis. */
static size_t count_calls(Elf *elf, GElf_Addr addr)
{
	size_t calls = 0;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_EXECINSTR))
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf || d->d_size < 5)
			continue;
		const unsigned char *b = d->d_buf;
		for (size_t i = 0; i + 5 <= d->d_size; i++) {
			if (b[i] != 0xe8)
				continue;
			int32_t rel = (int32_t)((uint32_t)b[i + 1] | (uint32_t)b[i + 2] << 8 |
						(uint32_t)b[i + 3] << 16 | (uint32_t)b[i + 4] << 24);
			if (sh.sh_addr + i + 5 + (GElf_Addr)(int64_t)rel == addr)
				calls++;
		}
	}
	return calls;
}

static void read_symbols(Elf *elf, Elf_Scn *scn, GElf_Shdr *sh, struct cli_elf *e,
			 GElf_Addr *hook_addr)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	if (!d || !sh->sh_entsize)
		return;
	size_t n = sh->sh_size / sh->sh_entsize;
	for (size_t i = 1; i < n; i++) {
		GElf_Sym s;
		if (!gelf_getsym(d, (int)i, &s))
			continue;
		const char *name = elf_strptr(elf, sh->sh_link, s.st_name);
		if (!name || !*name)
			continue;
		if (same_symbol(name, CLI_HOOK)) {
			if (s.st_shndx == SHN_UNDEF) {
				e->hook_undefined = 1;
			} else {
				e->hook_defined = 1;
				*hook_addr = s.st_value;
			}
		} else if (same_symbol(name, "codensm_init") && s.st_shndx != SHN_UNDEF) {
			e->runtime_defined = 1;
		}
	}
}

static int read_dynamic(Elf *elf, Elf_Scn *scn, GElf_Shdr *sh, struct cli_elf *e,
			int *pie)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	if (!d || !sh->sh_entsize)
		return 0;
	size_t n = sh->sh_size / sh->sh_entsize;
	for (size_t i = 0; i < n; i++) {
		GElf_Dyn dyn;
		if (!gelf_getdyn(d, (int)i, &dyn) || dyn.d_tag == DT_NULL)
			break;
		const char *s = NULL;
		if (dyn.d_tag == DT_NEEDED || dyn.d_tag == DT_RPATH || dyn.d_tag == DT_RUNPATH)
			s = elf_strptr(elf, sh->sh_link, dyn.d_un.d_val);
		if (dyn.d_tag == DT_NEEDED && s && push(&e->needed, &e->nneeded, s) < 0)
			return -1;
		if (dyn.d_tag == DT_RPATH && s && !e->rpath && !(e->rpath = strdup(s)))
			return -1;
		if (dyn.d_tag == DT_RUNPATH && s && !e->runpath && !(e->runpath = strdup(s)))
			return -1;
		if (dyn.d_tag == DT_FLAGS_1 && (dyn.d_un.d_val & DF_1_PIE))
			*pie = 1;
	}
	return 0;
}

/* `full` also scans code for hook call sites (not needed for libraries
 * searched while resolving the binding). */
static int read_elf(const char *path, struct cli_elf *e, int full, char *err, size_t errlen)
{
	memset(e, 0, sizeof(*e));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, "cannot open '%s': %s", path, strerror(errno));
	elf_version(EV_CURRENT);
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	GElf_Ehdr eh;
	size_t shstr;
	int rc = -1, interp = 0, pie = 0;
	GElf_Addr hook_addr = 0;
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh) ||
	    elf_getshdrstrndx(elf, &shstr) != 0) {
		fail(err, errlen, "'%s' is not an ELF file", path);
		goto out;
	}
	e->machine = eh.e_machine;
	size_t nph = 0;
	elf_getphdrnum(elf, &nph);
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_INTERP)
			interp = 1;
		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_DYNAMIC)
			e->dynamic = 1;
	}
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh))
			continue;
		const char *name = elf_strptr(elf, shstr, sh.sh_name);
		if (name && strcmp(name, ".debug_info") == 0 && sh.sh_type != SHT_NOBITS)
			e->debug_info = 1;
		if (name && strcmp(name, ".gnu_debuglink") == 0)
			e->debuglink = 1;
		if (sh.sh_type == SHT_SYMTAB)
			e->symtab = 1;
		if (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM)
			read_symbols(elf, scn, &sh, e, &hook_addr);
		if (sh.sh_type == SHT_DYNAMIC && read_dynamic(elf, scn, &sh, e, &pie) < 0) {
			fail(err, errlen, "reading '%s': out of memory", path);
			goto out;
		}
	}
	if (eh.e_type == ET_EXEC || (eh.e_type == ET_DYN && (interp || pie)))
		e->kind = CLI_ELF_EXEC;
	else if (eh.e_type == ET_DYN)
		e->kind = CLI_ELF_SHARED;
	else
		e->kind = CLI_ELF_OTHER;
	if (full && e->hook_defined && (eh.e_machine == EM_X86_64 || eh.e_machine == EM_386))
		e->hook_calls = count_calls(elf, hook_addr);
	char *slash = strrchr(path, '/');
	e->origin = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
	rc = e->origin ? 0 : fail(err, errlen, "reading '%s': out of memory", path);
out:
	if (elf)
		elf_end(elf);
	close(fd);
	if (rc < 0)
		cli_elf_release(e);
	return rc;
}

int cli_elf_read(const char *path, struct cli_elf *e, char *err, size_t errlen)
{
	return read_elf(path, e, 1, err, errlen);
}

void cli_elf_release(struct cli_elf *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nneeded; i++)
		free(e->needed[i]);
	free(e->needed);
	free(e->rpath);
	free(e->runpath);
	free(e->origin);
	memset(e, 0, sizeof(*e));
}

/* ---- the dynamic linker's search, approximately ------------------------- */

struct search {
	char **dirs;
	size_t ndirs;
};

/* Append the entries of a ':'-separated path, $ORIGIN expanded. */
static void add_path(struct search *s, const char *list, const char *origin)
{
	if (!list)
		return;
	char *copy = strdup(list), *save = NULL;
	for (char *p = copy ? strtok_r(copy, ":", &save) : NULL; p; p = strtok_r(NULL, ":", &save)) {
		char buf[4096];
		const char *o = strstr(p, "$ORIGIN") ? "$ORIGIN" : strstr(p, "${ORIGIN}") ? "${ORIGIN}" : NULL;
		if (o) {
			const char *at = strstr(p, o);
			snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - p), p, origin,
				 at + strlen(o));
		} else {
			snprintf(buf, sizeof(buf), "%s", p);
		}
		push(&s->dirs, &s->ndirs, buf);
	}
	free(copy);
}

/* /etc/ld.so.conf and its includes stand in for /etc/ld.so.cache. */
static void add_conf(struct search *s, const char *file, int depth)
{
	FILE *f = depth < 4 ? fopen(file, "re") : NULL;
	char line[4096];
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "#\r\n")] = '\0';
		char *p = line + strspn(line, " \t");
		if (!*p)
			continue;
		if (strncmp(p, "include", 7) == 0 && (p[7] == ' ' || p[7] == '\t')) {
			glob_t g;
			p += 8 + strspn(p + 8, " \t");
			if (glob(p, 0, NULL, &g) == 0)
				for (size_t i = 0; i < g.gl_pathc; i++)
					add_conf(s, g.gl_pathv[i], depth + 1);
			globfree(&g);
		} else {
			push(&s->dirs, &s->ndirs, p);
		}
	}
	if (f)
		fclose(f);
}

static void search_release(struct search *s)
{
	for (size_t i = 0; i < s->ndirs; i++)
		free(s->dirs[i]);
	free(s->dirs);
}

/* Find `name` needed by `by` (for the program `exe`); 0 and the path
 * in `out`, or -1.  Libraries for another machine are skipped, as ld.so
 * skips them. */
static int find_library(const char *name, const struct cli_elf *exe, const struct cli_elf *by,
			char *out, size_t len)
{
	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return access(out, R_OK);
	}
	struct search s = { 0 };
	if (!by->runpath) {
		add_path(&s, by->rpath, by->origin);
		if (by != exe && !exe->runpath)
			add_path(&s, exe->rpath, exe->origin);
	}
	add_path(&s, getenv("LD_LIBRARY_PATH"), ".");
	add_path(&s, by->runpath, by->origin);
	add_conf(&s, "/etc/ld.so.conf", 0);
	add_path(&s, "/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib64:/lib:/usr/lib",
		 "/");
	int rc = -1;
	for (size_t i = 0; i < s.ndirs && rc < 0; i++) {
		snprintf(out, len, "%s/%s", s.dirs[i], name);
		struct cli_elf lib;
		char err[256];
		if (access(out, R_OK) != 0 || read_elf(out, &lib, 0, err, sizeof(err)) < 0)
			continue;
		if (lib.machine == exe->machine)
			rc = 0;
		cli_elf_release(&lib);
	}
	search_release(&s);
	return rc;
}

static int is_runtime(const char *path, const struct cli_elf *lib)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	return lib->runtime_defined || strncmp(base, "libcodensm-rt", 13) == 0;
}

static int seen(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

/* Breadth-first over DT_NEEDED from the executable (after LD_PRELOAD), the
 * order in which ld.so puts objects in the global lookup scope; the first
 * one that defines the hook wins. */
int cli_elf_hook_binding(const struct cli_elf *e, char *out, size_t outlen)
{
	struct cli_elf *objs = calloc(MAX_OBJECTS, sizeof(*objs));
	char **paths = calloc(MAX_OBJECTS, sizeof(*paths));
	char **names = NULL;
	size_t nobjs = 0, nnames = 0, next = 0;
	int result = -1;
	char err[256];
	if (!objs || !paths) {
		snprintf(out, outlen, "out of memory");
		goto done;
	}
	/* The executable itself comes first: a definition there wins. */
	if (e->hook_defined) {
		snprintf(out, outlen, "the program itself");
		result = e->runtime_defined ? 1 : 0;
		goto done;
	}
	objs[0] = *e; /* shallow: never released below */
	paths[0] = NULL;
	nobjs = 1;
	const char *preload = getenv("LD_PRELOAD");
	char *pl = preload ? strdup(preload) : NULL, *save = NULL;
	char **queue = NULL;
	size_t nqueue = 0;
	for (char *p = pl ? strtok_r(pl, ": ", &save) : NULL; p; p = strtok_r(NULL, ": ", &save))
		push(&queue, &nqueue, p);
	free(pl);
	for (size_t i = 0; i < e->nneeded; i++)
		push(&queue, &nqueue, e->needed[i]);
	/* queue[i] was needed by objs[owner[i]]; grows as libraries are read. */
	size_t *owner = calloc(MAX_OBJECTS * 8, sizeof(*owner));
	for (; next < nqueue && nobjs < MAX_OBJECTS && owner; next++) {
		const char *name = queue[next];
		if (seen(names, nnames, name))
			continue;
		push(&names, &nnames, name);
		char path[4096];
		if (find_library(name, e, &objs[owner[next]], path, sizeof(path)) < 0)
			continue;
		struct cli_elf *lib = &objs[nobjs];
		if (read_elf(path, lib, 0, err, sizeof(err)) < 0)
			continue;
		paths[nobjs] = strdup(path);
		if (lib->hook_defined) {
			snprintf(out, outlen, "%s", path);
			result = is_runtime(path, lib);
			nobjs++;
			break;
		}
		for (size_t i = 0; i < lib->nneeded && nqueue < MAX_OBJECTS * 8; i++) {
			push(&queue, &nqueue, lib->needed[i]);
			owner[nqueue - 1] = nobjs;
		}
		nobjs++;
	}
	if (result < 0)
		snprintf(out, outlen, "none of the %zu libraries it loads", nobjs - 1);
	free(owner);
	for (size_t i = 0; i < nqueue; i++)
		free(queue[i]);
	free(queue);
done:
	for (size_t i = 1; i < nobjs; i++) {
		cli_elf_release(&objs[i]);
		free(paths[i]);
	}
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	free(objs);
	free(paths);
	return result;
}
