/* doctor.c: the checks behind `codensm doctor`, in plain words.  The ELF
 * questions are answered by elfinfo.c; the function list comes from the
 * runtime's own DWARF reader and rules (linked from the static archive),
 * so it names, places and selects functions exactly as the runtime will. */
#include <dlfcn.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "doctor.h"
#include "elfinfo.h"
#include "insn.h"
#include "internal.h"

#define FIX_LINK "link with $(pkg-config --libs codensm-rt): its -Wl,-u flags keep the runtime's hooks wherever they stand on the link line"

struct row {
	char *name, *department, *file;
	int line;
	double weight;
};

struct rows {
	const struct cnsmp_config *cfg;
	struct row *v;
	size_t n, cap, seen;
	int oom;
};

static void add_row(const struct cnsmp_fninfo *fi, void *arg)
{
	struct rows *r = arg;
	char buf[256];
	r->seen++;
	if (!fi->name || !cnsmp_rules_tracked(r->cfg, fi->name, fi->system))
		return;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		struct row *v = realloc(r->v, cap * sizeof(*v));
		if (!v) {
			r->oom = 1;
			return;
		}
		r->v = v, r->cap = cap;
	}
	struct row *w = &r->v[r->n++];
	w->name = strdup(fi->name);
	w->department = strdup(cnsmp_rules_department(r->cfg, fi->name, buf, sizeof(buf)));
	w->file = fi->file ? strdup(fi->file) : NULL;
	w->line = fi->line;
	w->weight = cnsmp_rules_weight(r->cfg, fi->name);
}

static int by_name(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

static void rows_release(struct rows *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].name);
		free(r->v[i].department);
		free(r->v[i].file);
	}
	free(r->v);
}

static void print_prefixes(FILE *out, const char *var, const struct cnsmp_prefixes *p,
			   const char *none)
{
	fprintf(out, "  %s=", var);
	for (size_t i = 0; i < p->n; i++)
		fprintf(out, "%s%s", i ? "," : "", p->prefix[i]);
	fprintf(out, "%s\n", p->n ? "" : none);
}

static void print_table(FILE *out, struct rows *r)
{
	int wn = 4, wd = 10;
	qsort(r->v, r->n, sizeof(*r->v), by_name);
	for (size_t i = 0; i < r->n; i++) {
		int n = (int)strlen(r->v[i].name), d = (int)strlen(r->v[i].department);
		wn = n > wn ? n : wn;
		wd = d > wd ? d : wd;
	}
	fprintf(out, "  %-*s  %-*s  %6s  %s\n", wn, "NAME", wd, "DEPARTMENT", "WEIGHT", "SOURCE");
	for (size_t i = 0; i < r->n; i++) {
		struct row *w = &r->v[i];
		fprintf(out, "  %-*s  %-*s  %6g  ", wn, w->name, wd, w->department, w->weight);
		if (w->file)
			fprintf(out, "%s:%d\n", w->file, w->line);
		else
			fprintf(out, "-\n");
	}
}

/* Instrumented: does compiled code call the enter hook?  Returns 1/0. */
static int check_instrumented(const char *path, const struct cli_elf *e, FILE *out, FILE *err)
{
	if (e->hook_undefined) {
		fprintf(out, "instrumented: yes, it calls __cyg_profile_func_enter (built with -finstrument-functions)\n");
		return 1;
	}
	if (e->hook_defined && (e->hook_calls > 0 || !e->symtab ||
				(e->machine != EM_X86_64 && e->machine != EM_386))) {
		fprintf(out, "instrumented: yes, %zu call sites of __cyg_profile_func_enter\n", e->hook_calls);
		return 1;
	}
	fprintf(out, "instrumented: no\n");
	fprintf(err, "codensm: '%s' is not instrumented: no code calls __cyg_profile_func_enter; compile it with -finstrument-functions -g\n",
		path);
	return 0;
}

/* Do the hooks reach the runtime?  Returns 0 or 1 problem. */
static int check_binding(const char *path, const struct cli_elf *e, FILE *out, FILE *err)
{
	char where[4096];
	if (e->kind == CLI_ELF_SHARED && !e->hook_defined) {
		fprintf(out, "hooks: bound when loaded, to the program that loads this library (that program must link libcodensm-rt)\n");
		return 0;
	}
	int rc = cli_elf_hook_binding(e, where, sizeof(where));
	if (rc == 1) {
		fprintf(out, "hooks: bound to libcodensm-rt (%s)\n",
			e->hook_defined ? "the static runtime, inside the program" : where);
		return 0;
	}
	if (rc == 0 && e->hook_defined) {
		fprintf(out, "hooks: defined inside the program, not by libcodensm-rt\n");
		fprintf(err, "codensm: the hooks of '%s' are defined inside it by something other than libcodensm-rt: nothing reaches the runtime; %s\n",
			path, FIX_LINK);
		return 1;
	}
	if (rc == 0) {
		fprintf(out, "hooks: bound to glibc's empty __cyg_profile_func_enter (%s)\n", where);
		fprintf(err, "codensm: the hooks of '%s' bind to glibc's empty __cyg_profile_func_enter in '%s': the program runs and nothing is tracked; %s\n",
			path, where, FIX_LINK);
		return 1;
	}
	fprintf(out, "hooks: unbound (%s defines __cyg_profile_func_enter)\n", where);
	fprintf(err, "codensm: no library that '%s' loads defines __cyg_profile_func_enter (searched %s): it will not start; %s\n",
		path, where, FIX_LINK);
	return 1;
}

static int check_debug(const char *path, const struct cli_elf *e, FILE *out, FILE *err)
{
	if (e->debug_info) {
		fprintf(out, "debug info: yes (.debug_info): names, files and lines come from DWARF\n");
		return 0;
	}
	fprintf(out, "debug info: no%s\n", e->debuglink ? " (a .gnu_debuglink points to a separate file)" : "");
	fprintf(err, "codensm: '%s' has no debug info (.debug_info): functions are named from the %s, without module paths, files or lines; compile it with -g\n",
		path, e->symtab ? "symbol table" : "load address (the file is stripped)");
	return 1;
}

/* Which functions the current CODENSM_* would track. */
static int check_selection(const char *path, const struct cnsmp_config *cfg, FILE *out, FILE *err)
{
	struct rows r = { .cfg = cfg };
	cnsmp_symbols_inventory_file(path, cfg, add_row, &r);
	fprintf(out, "selection:\n");
	if (cfg->include_set)
		print_prefixes(out, "CODENSM_INCLUDE", &cfg->include, "(empty: nothing)");
	else
		fprintf(out, "  CODENSM_INCLUDE not set: all of the program's own code\n");
	print_prefixes(out, "CODENSM_EXCLUDE", &cfg->exclude, "(none)");
	fprintf(out, "tracked: %zu of %zu functions\n", r.n, r.seen);
	int problems = 0;
	if (r.oom) {
		fprintf(err, "codensm: listing the functions of '%s': out of memory\n", path);
		problems++;
	} else if (r.seen == 0) {
		fprintf(err, "codensm: no function with code found in '%s'\n", path);
		problems++;
	} else if (r.n == 0) {
		fprintf(err, "codensm: no function of '%s' would be tracked: CODENSM_INCLUDE/CODENSM_EXCLUDE select none of its %zu functions\n",
			path, r.seen);
		problems++;
	}
	if (r.n)
		print_table(out, &r);
	rows_release(&r);
	return problems;
}

/* How calls will be timed: exact, or sampled (CODENSM_SAMPLE) and what
 * that means for the numbers. */
static void print_timing(const struct cnsmp_config *cfg, FILE *out)
{
	if (cfg->sample <= 1) {
		fprintf(out, "timing: exact, every call clocked (CODENSM_SAMPLE not set or 1)\n");
		return;
	}
	fprintf(out, "timing: sampled (CODENSM_SAMPLE=%u): a function whose calls on a thread average "
		"under %u ns is clocked on 1 call in %u after its first 256; longer and recursive "
		"ones are clocked on every call; counts stay exact\n",
		cfg->sample, cfg->sample_below_ns, cfg->sample);
}

/* CODENSM_MODE: with full, whether the runtime will find this binary's
 * analysis (the flows folder by build-id, else its .codensm.flows
 * section); a missing one is a problem: full mode would send no flow. */
static int check_flows(const char *path, const struct cnsmp_config *cfg, FILE *out, FILE *err)
{
	if (!cfg->mode_full) {
		fprintf(out, "flows: not sent (CODENSM_MODE=names, the default)\n");
		return 0;
	}
	char id[129], file[4352];
	if (cnsmp_flows_build_id(path, id, sizeof id) < 0) {
		fprintf(err, "codensm: CODENSM_MODE=full, but '%s' has no GNU build-id: its flows cannot be found (link with -Wl,--build-id)\n",
			path);
		return 1;
	}
	char *dir = cnsmp_flows_default_dir(getenv);
	size_t dropped = 0;
	struct cnsmp_flows *f = cnsmp_flows_load(dir, id, path, &dropped);
	int in_dir = dir && snprintf(file, sizeof file, "%s/%s.json", dir, id) < (int)sizeof file &&
		     access(file, R_OK) == 0;
	int problems = 0;
	if (f) {
		fprintf(out, "flows: CODENSM_MODE=full, %zu functions analysed, from %s", cnsmp_flows_count(f),
			in_dir ? file : "its .codensm.flows section");
		if (dropped)
			fprintf(out, " (%zu entries failing a check left out)", dropped);
		fprintf(out, "\n");
	} else {
		fprintf(err, "codensm: CODENSM_MODE=full, but no analysis of '%s' (build-id %s) in '%s' or in its .codensm.flows section: run codensm analyze -p BUILD_DIR %s\n",
			path, id, dir ? dir : "(no flows folder)", path);
		problems = 1;
	}
	cnsmp_flows_free(f);
	free(dir);
	return problems;
}

/* Whether the calls of excluded functions are patched out (patch.c):
 * 0, or 1 if CODENSM_PATCH is malformed. */
static int print_patching(const struct cli_elf *e, FILE *out, FILE *err)
{
	const char *v = getenv("CODENSM_PATCH");
	int on = cnsmp_patch_setting(v);
	if (on < 0)
		fprintf(err, "codensm: CODENSM_PATCH=\"%s\" is not on, off or jumps (the "
			"runtime takes it as on)\n", v);
	if (e->machine != EM_X86_64)
		fprintf(out, "excluded functions: every call goes through the hooks "
			"(call-site patching is for x86-64 code only)\n");
	else if (!on)
		fprintf(out, "excluded functions: every call goes through the hooks "
			"(CODENSM_PATCH=%s)\n", v);
	else if (on == 2)
		fprintf(out, "excluded functions: their hook calls are patched out of the running "
			"code soon after their first calls, as short jumps over them (CODENSM_PATCH=jumps)\n");
	else
		fprintf(out, "excluded functions: their hook calls are patched out of the running "
			"code soon after their first calls (CODENSM_PATCH=off keeps them; a system that "
			"refuses writable code keeps them too, with a debug line)\n");
	if (e->machine == EM_X86_64 && on) {
		/* The decoder that finds them (runtime/src/insn.c).  Left open:
		 * the runtime's archive, linked here, interposes dlclose, and
		 * calling it would bring the whole runtime into the CLI. */
		if (dlopen(CNSMP_ZYDIS_SONAME, RTLD_LAZY | RTLD_LOCAL)) {
			fprintf(out, "exits the compiler tail-jumped (-O2): patched too "
				"(%s found)\n", CNSMP_ZYDIS_SONAME);
		} else {
			fprintf(out, "exits the compiler tail-jumped (-O2): keep calling the "
				"hook (%s not found; Debian: libzydis4.0)\n", CNSMP_ZYDIS_SONAME);
		}
	}
	return on < 0;
}

int cli_doctor(const char *path, FILE *out, FILE *err)
{
	struct cli_elf e;
	char msg[4400];
	if (cli_elf_read(path, &e, msg, sizeof(msg)) < 0) {
		fprintf(err, "codensm: %s\n", msg);
		return -1;
	}
	static const char *const kinds[] = { "?", "program", "shared library", "ELF object" };
	fprintf(out, "file: %s (%s%s)\n", path, kinds[e.kind],
		e.kind == CLI_ELF_EXEC ? (e.dynamic ? ", dynamically linked" : ", statically linked") : "");
	int problems = 0;
	if (check_instrumented(path, &e, out, err))
		problems += check_binding(path, &e, out, err);
	else
		problems++;
	problems += check_debug(path, &e, out, err);

	struct cnsmp_config cfg;
	fflush(err); /* the runtime logs with write(2): keep the order */
	int bad = cnsmp_config_load(&cfg, NULL, NULL);
	if (bad > 0) {
		fprintf(err, "codensm: %d CODENSM_* setting%s malformed (named above)\n", bad,
			bad == 1 ? " is" : "s are");
		problems += bad;
	}
	problems += check_selection(path, &cfg, out, err);
	print_timing(&cfg, out);
	problems += check_flows(path, &cfg, out, err);
	problems += print_patching(&e, out, err);
	cnsmp_config_release(&cfg);
	cli_elf_release(&e);
	return problems;
}
