/* modules.c: the objects loaded in this process (internal.h, struct
 * cnsmp_module): their address ranges, load biases and build-ids, read
 * from the dynamic loader (dl_iterate_phdr) and their headers in memory,
 * not from their files, so that a function named from the symbol cache
 * costs no file opened and no ELF read.  symbols.c owns the list and its
 * lock; dwarf.c reads it to report modules to libdwfl. */
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static struct cnsmp_module *objs;
static size_t nobjs, capobjs;

/* An address in the dynamic section: glibc adjusts the entries by the
 * load bias in place, except where the section is read-only. */
static uintptr_t dyn_ptr(uintptr_t v, uintptr_t bias)
{
	return v < bias ? v + bias : v;
}

CNSMP_NOINST size_t cnsmp_note_build_id(const unsigned char *p, size_t n, size_t align,
			    unsigned char *out, size_t cap)
{
	while (n >= sizeof(ElfW(Nhdr))) {
		ElfW(Nhdr) h;
		memcpy(&h, p, sizeof h);
		size_t name = (h.n_namesz + align - 1) & ~(align - 1);
		size_t desc = (h.n_descsz + align - 1) & ~(align - 1);
		if (name > n - sizeof h || desc > n - sizeof h - name)
			return 0;
		if (h.n_type == NT_GNU_BUILD_ID && h.n_namesz == 4 &&
		    !memcmp(p + sizeof h, "GNU", 4) && h.n_descsz > 0 &&
		    h.n_descsz <= cap) {
			memcpy(out, p + sizeof h + name, h.n_descsz);
			return h.n_descsz;
		}
		p += sizeof h + name + desc;
		n -= sizeof h + name + desc;
	}
	return 0;
}

/* Does the object import __cyg_profile_func_enter?  Its undefined dynamic
 * symbols are those the GNU hash table leaves out, before its symoffset
 * (or, with only a SysV hash table, any of its nchain symbols). */
static int imports_hooks(const struct dl_phdr_info *info)
{
	const ElfW(Dyn) *d = NULL;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			d = (const void *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
	if (!d)
		return 0;
	const ElfW(Sym) *sym = NULL;
	const char *str = NULL;
	size_t strsz = 0, nsym = 0;
	for (; d->d_tag != DT_NULL; d++) {
		uintptr_t v = d->d_un.d_ptr;
		switch (d->d_tag) {
		case DT_SYMTAB: sym = (const void *)dyn_ptr(v, info->dlpi_addr); break;
		case DT_STRTAB: str = (const void *)dyn_ptr(v, info->dlpi_addr); break;
		case DT_STRSZ: strsz = d->d_un.d_val; break;
		case DT_GNU_HASH: /* nbuckets, symoffset, ... */
			nsym = ((const uint32_t *)dyn_ptr(v, info->dlpi_addr))[1];
			break;
		case DT_HASH: /* nbucket, nchain: one chain entry per symbol */
			if (!nsym)
				nsym = ((const uint32_t *)dyn_ptr(v, info->dlpi_addr))[1];
			break;
		}
	}
	static const char hook[] = "__cyg_profile_func_enter";
	for (size_t i = 1; sym && str && i < nsym; i++)
		if (sym[i].st_shndx == SHN_UNDEF && sym[i].st_name < strsz &&
		    strsz - sym[i].st_name >= sizeof hook &&
		    !memcmp(str + sym[i].st_name, hook, sizeof hook))
			return 1;
	return 0;
}

/* The file the kernel mapped at `at`, from /proc/self/maps: always an
 * absolute path, where the dynamic loader's name of an object found
 * through a relative LD_LIBRARY_PATH is relative, and wrong once the
 * program has changed folder, as daemons do. */
CNSMP_NOINST int cnsmp_mapped_file(uintptr_t at, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4096 + 128];
	int rc = -1;
	while (f && rc < 0 && fgets(line, sizeof line, f)) {
		/* "lo-hi perms offset dev inode /path": the first '/' starts
		 * the path */
		char *end, *path = strchr(line, '/');
		uintptr_t lo = strtoull(line, &end, 16);
		uintptr_t hi = *end == '-' ? strtoull(end + 1, NULL, 16) : 0;
		if (!path || at < lo || at >= hi)
			continue;
		path[strcspn(path, "\n")] = '\0';
		rc = snprintf(out, len, "%s", path) < (int)len ? 0 : -1;
	}
	if (f)
		fclose(f);
	return rc;
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	char exe[4096];
	const char *name = info->dlpi_name;
	int program = !name || !*name; /* not PT_INTERP: libc.so.6 has one */
	if (!program && !strchr(name, '/'))
		return 0; /* the vDSO: no file behind it */
	struct cnsmp_module o = { .bias = info->dlpi_addr, .first = UINTPTR_MAX };
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t at = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD) {
			if (at < o.first)
				o.first = at;
			if (at + ph->p_memsz > o.last)
				o.last = at + ph->p_memsz;
		}
	}
	if (o.first >= o.last)
		return 0; /* nothing mapped */
	for (size_t i = 0; i < nobjs; i++) /* known already? */
		if (objs[i].bias == o.bias && objs[i].first == o.first)
			return 0;
	for (int i = 0; i < info->dlpi_phnum && !o.idlen; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_NOTE)
			o.idlen = cnsmp_note_build_id((const void *)(info->dlpi_addr + ph->p_vaddr),
						      ph->p_filesz, ph->p_align == 8 ? 8 : 4,
						      o.id, sizeof o.id);
	}
	o.user = program || imports_hooks(info);
	/* named only once known to be new: a rescan is every loaded object */
	if (program) {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return 0;
		exe[n] = '\0';
		name = exe;
	} else if (name[0] != '/' && cnsmp_mapped_file(o.first, exe, sizeof exe) == 0) {
		name = exe;
	}
	if (!(o.path = strdup(name)) ||
	    cnsmp_grow((void **)&objs, &capobjs, nobjs + 1, sizeof(*objs)) < 0) {
		free(o.path);
		return 0;
	}
	objs[nobjs++] = o;
	return 0;
}

CNSMP_NOINST struct cnsmp_module *cnsmp_modules_find(uintptr_t addr)
{
	for (size_t i = 0; i < nobjs; i++)
		if (objs[i].first <= addr && addr < objs[i].last)
			return &objs[i];
	return NULL;
}

/* A module dlopen'ed since the last scan is found by scanning again. */
CNSMP_NOINST struct cnsmp_module *cnsmp_modules_at(uintptr_t addr)
{
	struct cnsmp_module *o = cnsmp_modules_find(addr);
	if (!o) {
		cnsmp_modules_scan();
		o = cnsmp_modules_find(addr);
	}
	return o;
}

/* Each call walks every loaded object; a known one costs a compare. */
CNSMP_NOINST void cnsmp_modules_scan(void)
{
	dl_iterate_phdr(phdr_cb, NULL);
}

CNSMP_NOINST size_t cnsmp_modules_count(void)
{
	return nobjs;
}

CNSMP_NOINST struct cnsmp_module *cnsmp_modules_get(size_t i)
{
	return i < nobjs ? &objs[i] : NULL;
}

CNSMP_NOINST void cnsmp_modules_clear(void)
{
	for (size_t i = 0; i < nobjs; i++) {
		free(objs[i].path);
		cnsmp_index_free(objs[i].x);
	}
	free(objs);
	objs = NULL;
	nobjs = capobjs = 0;
}

