/* elfinfo.h: what `codensm doctor` reads from an ELF file without running
 * it: the hook references, the runtime's own symbols, DT_NEEDED and the
 * library search path, debug sections, and where the hooks will bind. */
#ifndef CLI_ELFINFO_H
#define CLI_ELFINFO_H

#include <stddef.h>

#define CLI_HOOK "__cyg_profile_func_enter"

enum cli_elf_kind {
	CLI_ELF_EXEC = 1, /* a program, static or dynamic, PIE or not */
	CLI_ELF_SHARED,   /* a shared library (no program interpreter) */
	CLI_ELF_OTHER,    /* an object file or anything else */
};

struct cli_elf {
	enum cli_elf_kind kind;
	unsigned machine;       /* e_machine: EM_X86_64... */
	int dynamic;            /* has a PT_INTERP / .dynamic: loads libraries */
	int hook_undefined;     /* references the enter hook without defining it */
	int hook_defined;       /* defines the enter hook itself */
	int runtime_defined;    /* defines codensm_init: the static runtime */
	size_t hook_calls;      /* direct call sites of a defined hook (x86-64) */
	int debug_info;         /* has .debug_info */
	int debuglink;          /* has .gnu_debuglink (debug info kept apart) */
	int symtab;             /* has .symtab (not stripped) */
	char **needed;          /* DT_NEEDED, in order */
	size_t nneeded;
	char *rpath, *runpath;  /* DT_RPATH / DT_RUNPATH as written */
	char *origin;           /* the folder of the file, for $ORIGIN */
};

/* Fill `e` from the file at `path`.  Returns 0, or -1 with a message in
 * err ("cannot open 'x': No such file or directory", "'x' is not an ELF
 * file"); `e` then needs no release. */
int cli_elf_read(const char *path, struct cli_elf *e, char *err, size_t errlen);
void cli_elf_release(struct cli_elf *e);

/* Where the dynamic linker will bind `e`'s reference to the enter hook:
 * the first object defining it in load order (breadth-first over
 * DT_NEEDED, found through LD_LIBRARY_PATH, RPATH/RUNPATH and the system
 * folders), the way ld.so searches.  Writes that object's path into `out`
 * and returns 1 if it is libcodensm-rt, 0 if it is something else (glibc),
 * -1 if no loaded object defines it (`out` then says what was searched). */
int cli_elf_hook_binding(const struct cli_elf *e, char *out, size_t outlen);

#endif
