/* dw.h: libdw and libelf, loaded on first need (dw.c).
 *
 * A program whose functions are all named from the symbol cache never
 * reads DWARF, and then never needs the two libraries and the three
 * compression libraries they bring (zlib, liblzma, libbz2).  Linked, they
 * cost every process about 40 page faults while loading, 1.7 ms of CPU
 * on the bench VM (150 alternating runs), before main().  So the runtime is not linked against them:
 * dwarf.c calls them through this table, which the first cache miss
 * fills with dlopen("libdw.so.1").  The declarations still come from
 * elfutils' headers, so every call is type-checked. */
#ifndef CNSMP_DW_H
#define CNSMP_DW_H

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>

#define CNSMP_DW_FUNCS(X)                                                    \
	X(dwarf_attr) X(dwarf_attr_integrate) X(dwarf_child)                  \
	X(dwarf_decl_file) X(dwarf_decl_line) X(dwarf_diename)                \
	X(dwarf_dieoffset) X(dwarf_entrypc) X(dwarf_formref_die)              \
	X(dwarf_formstring) X(dwarf_hasattr) X(dwarf_lowpc) X(dwarf_ranges)   \
	X(dwarf_siblingof) X(dwarf_tag)                                       \
	X(dwfl_addrmodule) X(dwfl_begin) X(dwfl_end) X(dwfl_getmodules)       \
	X(dwfl_module_addrdie) X(dwfl_module_addrinfo) X(dwfl_module_getdwarf) \
	X(dwfl_module_getsym_info) X(dwfl_module_getsymtab)                   \
	X(dwfl_module_info) X(dwfl_module_nextcu) X(dwfl_report_begin)        \
	X(dwfl_report_begin_add) X(dwfl_report_elf) X(dwfl_report_end)        \
	X(dwfl_report_offline) X(dwfl_standard_find_debuginfo)                \
	X(dwfl_linux_proc_find_elf) X(dwfl_build_id_find_elf)                 \
	X(dwfl_offline_section_address)

struct cnsmp_dw {
#define CNSMP_DW_FIELD(f) __typeof__(f) *f;
	CNSMP_DW_FUNCS(CNSMP_DW_FIELD)
#undef CNSMP_DW_FIELD
};

/* The table, loading the libraries on the first call; NULL if they cannot
 * be loaded (said once, at info level: functions are then named by their
 * module and offset).  Thread-safe; the libraries are never unloaded. */
const struct cnsmp_dw *cnsmp_dw(void);

#endif
