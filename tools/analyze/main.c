/* main.c: the codensm-analyze program, which `codensm analyze` runs (kept
 * apart so that the rest of the CLI does not load libclang and LLVM):
 * parses the arguments and hands them to an_run. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: codensm analyze -p BUILD_DIR [--out-dir DIR] [-o FILE] [--tests DIR]\n"
		"                       [--embed] [-v] [BINARY...]\n"
		"\n"
		"Analyses every function defined in the sources that BUILD_DIR/compile_commands.json\n"
		"compiles (libclang): its control-flow shape, decisions, loops, returns, lines,\n"
		"callees and whether a test file uses it.  Names are the runtime's.\n"
		"\n"
		"  BINARY...      for each, the flows of its functions go to DIR/BUILD-ID.json, where\n"
		"                 the runtime reads them when run with CODENSM_MODE=full\n"
		"  --out-dir DIR  default $XDG_CACHE_HOME/codensm/flows (~/.cache/codensm/flows)\n"
		"  --embed        also add that file to BINARY as its " AN_SECTION " section\n"
		"                 (for a binary deployed where the cache folder is not)\n"
		"  -o FILE        all the build's flows in one file ('-': stdout, the default\n"
		"                 without BINARY)\n"
		"  --tests DIR    the tree to scan for test files (default: CODENSM_SOURCE_ROOT,\n"
		"                 else the folder holding every source file)\n"
		"  -v             name the functions of BINARY that have no analysis\n");
}

int main(int argc, char **argv)
{
	struct an_opts o = { 0 };
	char **bins = calloc((size_t)argc + 1, sizeof(*bins));
	char dflt[PATH_MAX];
	if (!bins)
		return 1;
	o.binaries = bins;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **want = !strcmp(a, "-p") ? &o.build_dir :
				    !strcmp(a, "--out-dir") ? &o.out_dir :
				    !strcmp(a, "-o") ? &o.out_file :
				    !strcmp(a, "--tests") ? &o.tests_dir : NULL;
		if (want) {
			if (i + 1 >= argc) {
				fprintf(stderr, "codensm: option '%s' needs a value\n", a);
				return 2;
			}
			*want = argv[++i];
		} else if (!strcmp(a, "--embed")) {
			o.embed = 1;
		} else if (!strcmp(a, "-v")) {
			o.verbose = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "codensm: unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		} else {
			bins[o.nbinaries++] = argv[i];
		}
	}
	if (!o.build_dir) {
		fprintf(stderr, "codensm: analyze needs the build folder holding compile_commands.json (-p BUILD_DIR)\n");
		return 2;
	}
	if (!o.out_dir) {
		const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
		if (xdg && xdg[0] == '/')
			snprintf(dflt, sizeof(dflt), "%s/codensm/flows", xdg);
		else if (home && home[0] == '/')
			snprintf(dflt, sizeof(dflt), "%s/.cache/codensm/flows", home);
		else if (o.nbinaries) {
			fprintf(stderr, "codensm: neither XDG_CACHE_HOME nor HOME is set: say where the flows go (--out-dir DIR)\n");
			return 2;
		}
		o.out_dir = dflt;
	}
	int rc = an_run(&o, stdout, stderr);
	free(bins);
	return rc;
}
