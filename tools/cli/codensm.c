/* codensm.c: the `codensm` command: `doctor` checks that a program will be
 * tracked, `report` prints the top functions from a codensm-server, `probe`
 * manages a project's probes there.  Each
 * command's logic lives in its own module; this file parses arguments,
 * picks the command and turns its result into an exit status. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codensm.h"
#include "doctor.h"
#include "probecli.h"
#include "report.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: codensm doctor BINARY...\n"
		"       codensm report [--server URL] [--project NAME] [--key cnsmv_...]\n"
		"                      [--window 1h|24h|7d|30d] [--top N]\n"
		"       codensm probe add TARGET --type log|hist|incr|stack|TYPE [--value V]\n"
		"                     [--event call|return|end] [--lifespan MIN]\n"
		"                     [--where KEY=VAL[,KEY=VAL...]] [--id ID] [--name N]\n"
		"       codensm probe ls | show ID | rm ID | renew ID [--lifespan MIN]\n"
		"                     (each with [--server URL] [--project NAME] [--key KEY] [--json])\n"
		"       codensm analyze -p BUILD_DIR [BINARY...]   (codensm analyze --help)\n"
		"       codensm version\n"
		"\n"
		"doctor  says whether BINARY is built with -finstrument-functions, whether\n"
		"        its hooks reach libcodensm-rt (not glibc's empty ones), whether it\n"
		"        has debug info, and lists the functions the current CODENSM_INCLUDE,\n"
		"        CODENSM_EXCLUDE, CODENSM_DEPARTMENT and CODENSM_WEIGHTS would track.\n"
		"        Exit status 0 when all is well, 1 with one line per problem on stderr.\n"
		"report  prints the top functions of a project; the server, project and\n"
		"        dashboard key default to CODENSM_SERVER (http://127.0.0.1:8650),\n"
		"        CODENSM_PROJECT and CODENSM_DASHBOARD_KEY.\n"
		"probe   looks closer at a function of the running programs for a few minutes\n"
		"        (docs/probes.md): add, list, show (status per process, results),\n"
		"        remove, renew.  --where takes min_duration_ms, caller, errors_only,\n"
		"        sample, max_hits.  Writes need the project's manage key\n"
		"        (CODENSM_MANAGE_KEY); ls and show take it or CODENSM_DASHBOARD_KEY.\n"
		"analyze analyses the sources a build compiles (compile_commands.json) for\n"
		"        CODENSM_MODE=full: control-flow shapes, complexity, callees, tests.\n");
}

static int cmd_doctor(int argc, char **argv)
{
	int status = 0;
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	for (int i = 0; i < argc; i++) {
		if (i)
			printf("\n");
		fflush(stdout);
		int problems = cli_doctor(argv[i], stdout, stderr);
		fflush(stdout);
		if (problems != 0)
			status = 1;
		if (problems > 0)
			printf("problems: %d (see stderr)\n", problems);
		else if (problems == 0)
			printf("ok: everything is in place\n");
	}
	return status;
}

static int cmd_report(int argc, char **argv)
{
	struct cli_report_opts o = {
		.server = getenv("CODENSM_SERVER"),
		.project = getenv("CODENSM_PROJECT"),
		.key = getenv("CODENSM_DASHBOARD_KEY"),
		.window = "24h",
		.top = 20,
	};
	if (!o.server || !*o.server)
		o.server = "http://127.0.0.1:8650";
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			fprintf(stderr, "codensm: option '%s' needs a value\n", a);
			return 2;
		}
		if (strcmp(a, "--server") == 0)
			o.server = v;
		else if (strcmp(a, "--project") == 0)
			o.project = v;
		else if (strcmp(a, "--key") == 0)
			o.key = v;
		else if (strcmp(a, "--window") == 0)
			o.window = v;
		else if (strcmp(a, "--top") == 0)
			o.top = atoi(v);
		else {
			fprintf(stderr, "codensm: unknown option '%s'\n", a);
			return 2;
		}
		i++;
	}
	if (!o.project || !o.key) {
		fprintf(stderr, "codensm: report needs a project and a dashboard key (--project, --key)\n");
		return 2;
	}
	return cli_report(&o, stdout, stderr) == 0 ? 0 : 1;
}

/* The analyzer is a program of its own (it loads libclang and LLVM, which
 * the other commands do not need): the one beside this binary, else the
 * one on PATH. */
static int cmd_analyze(char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	argv[0] = "codensm-analyze";
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(path, sizeof(path), "%s/codensm-analyze", self);
			execv(path, argv);
		}
	}
	execvp("codensm-analyze", argv);
	fprintf(stderr, "codensm: cannot run 'codensm-analyze': %s (it is installed with codensm when libclang-14-dev was present at build time)\n",
		strerror(errno));
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "doctor") == 0)
		return cmd_doctor(argc - 2, argv + 2);
	if (strcmp(argv[1], "report") == 0)
		return cmd_report(argc - 2, argv + 2);
	if (strcmp(argv[1], "probe") == 0)
		return cli_probe(argc - 2, argv + 2, stdout, stderr);
	if (strcmp(argv[1], "analyze") == 0)
		return cmd_analyze(argv + 1);
	if (strcmp(argv[1], "version") == 0) {
		printf("codensm %s\n", CODENSM_VERSION);
		return 0;
	}
	fprintf(stderr, "codensm: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
