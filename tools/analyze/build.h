/* build.h: the analysed build as analyze.c leaves it for output.c: every
 * function with its final name, flow, callees and has_tests verdict. */
#ifndef ANALYZE_BUILD_H
#define ANALYZE_BUILD_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "analyze.h"
#include "flows.h"
#include "internal.h"

#define AN_MAX_CALLS_OUT 40 /* the seed's limit for calls_out */

struct an_fn {
	char *base;    /* module path "." qualified name */
	char *name;    /* base, or base#hash when overloaded in the build */
	char *ident;   /* the name a test would call it by */
	char *usr;     /* libclang's unique id: joins callers to callees */
	uint32_t hash; /* cnsmp_hash32_str of the mangled name */
	uint32_t *alt; /* of the other manglings (constructor variants) */
	size_t nalt;
	struct an_flow flow;
	char **callee;  /* the USRs of its callees, in first-call order */
	int has_tests;
};

/* f is sorted by (base, hash) once every unit is read (finish_names). */
struct an_build {
	const struct an_opts *o;
	struct an_fn *f;
	size_t nf, capf;
	char *root;          /* CODENSM_SOURCE_ROOT, normalised, or NULL */
	char *common;        /* the folder holding every source file */
	const char *build;   /* the database's folder, absolute */
	size_t *set, capset; /* usr_seen and usr_add */
	size_t units, failed;
	FILE *err;
	int oom;
};

/* The functions by USR, sorted, for naming callees. */
struct an_byusr {
	const char *usr;
	size_t i;
};
int an_cmp_usr(const void *a, const void *b);

/* output.c.  names[i]: what function i is called in the output (NULL:
 * left out).  The flows array in the seed's entry shape. */
json_t *an_flows_json(const struct an_build *r, char *const *names, const struct an_byusr *u);
/* Writes doc to path through a tmp file and a rename; 0 or -1 + message. */
int an_write_json(json_t *doc, const char *path, char *err, size_t errlen);
/* The flows of one binary's functions, under the names the runtime gives
 * them, to out_dir/BUILD-ID.json (and its section with --embed); 0, or -1
 * after one line on r->err. */
int an_binary(struct an_build *r, const char *bin, const struct an_byusr *u,
	      const struct cnsmp_config *cfg);

#endif
