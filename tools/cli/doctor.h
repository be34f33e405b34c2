/* doctor.h: `codensm doctor BINARY`: whether a program is instrumented,
 * whether its hooks reach libcodensm-rt, whether it has debug info, and
 * which of its functions the current CODENSM_* settings would track. */
#ifndef CLI_DOCTOR_H
#define CLI_DOCTOR_H

#include <stdio.h>

/* Writes the report to `out` and one line per problem to `err`.  Returns
 * the number of problems (0: all is well), or -1 if `path` could not be
 * read as an ELF file (the reason is on `err`). */
int cli_doctor(const char *path, FILE *out, FILE *err);

#endif
