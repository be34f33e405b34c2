/* probecli.h: `codensm probe add|ls|show|rm|renew`: a project's probes on a
 * codensm-server (docs/api.md "Probes"), through its JSON API. */
#ifndef CLI_PROBECLI_H
#define CLI_PROBECLI_H

#include <stdio.h>

/* argv: what follows "probe" (the subcommand first).  Returns the exit
 * status: 0, 1 (the server refused or could not be reached: one line on
 * err), 2 (bad usage: one line on err). */
int cli_probe(int argc, char **argv, FILE *out, FILE *err);

#endif
