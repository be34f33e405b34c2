/* flows.h: the pieces of `codensm analyze` (libclang over a build's
 * compile_commands.json): one function's control-flow shape (cfg.c), the
 * identifiers of the source tree's test files (testscan.c), and the whole
 * run (analyze.c).  The rules they implement are docs/flows.md's. */
#ifndef ANALYZE_FLOWS_H
#define ANALYZE_FLOWS_H

#include <stddef.h>
#include <stdio.h>

#include <clang-c/Index.h>

enum an_kind { AN_START, AN_DECISION, AN_LOOP, AN_BLOCK, AN_END, AN_ERROR };

/* The shape of one function: nodes in creation order (start first, end
 * last when some path reaches it), edges sorted and without duplicates. */
struct an_flow {
	unsigned char *kind;
	size_t nnodes, capnodes;
	int (*edge)[2];
	size_t nedges, capedges;
	int decisions, loops, returns;
	int lines;
	CXCursor *calls;  /* the callees' declarations, in first-call order */
	size_t ncalls, capcalls;
};

/* Builds the flow of the function definition `fn` into `f` (zeroed by the
 * caller).  Returns 0, or -1 when memory ran out (f is then partial). */
int an_flow_build(CXTranslationUnit tu, CXCursor fn, struct an_flow *f);
void an_flow_release(struct an_flow *f);
const char *an_kind_name(int kind);

/* Is `label` the name of an error exit ("err", "out_err", "fail2")? */
int an_error_label(const char *label);

/* The identifiers of every test file under `root`: a sorted, unique set. */
struct an_idset {
	char **id;
	size_t n, cap;
};
/* Scans root; returns the number of test files read, or -1 with a
 * message in err when root cannot be read. */
int an_testscan(const char *root, struct an_idset *s, char *err, size_t errlen);
int an_idset_has(const struct an_idset *s, const char *id);
void an_idset_release(struct an_idset *s);
/* Is the path (relative to the scanned root) a test file? */
int an_test_file(const char *rel);

#endif
