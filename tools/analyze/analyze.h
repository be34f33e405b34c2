/* analyze.h: `codensm analyze`, the run as a whole (analyze.c). */
#ifndef ANALYZE_ANALYZE_H
#define ANALYZE_ANALYZE_H

#include <stddef.h>
#include <stdio.h>

/* The ELF section `--embed` writes the flows into, for deployed binaries. */
#define AN_SECTION ".codensm.flows"

struct an_opts {
	const char *build_dir;  /* holds compile_commands.json */
	char **binaries;        /* flows are written per binary, by build-id */
	size_t nbinaries;
	const char *out_dir;    /* where BUILDID.json files go */
	const char *out_file;   /* all flows of the build ("-": stdout) */
	const char *tests_dir;  /* the tree scanned for tests, if not the sources' */
	int embed;              /* also add the file to each binary (objcopy) */
	int verbose;            /* name the binary's functions without analysis */
};

/* Analyses the build and writes its flows; messages go to err.  Returns
 * the exit status: 0, or 1 after a one-line message per problem. */
int an_run(const struct an_opts *o, FILE *out, FILE *err);

#endif
