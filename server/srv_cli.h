/* srv_cli: the offline subcommands of the tokengate binary.
 *
 *   tokengate check -c FILE      validate a config, print a one-line summary
 *   tokengate explain -c FILE …  run one decision and report every check
 *
 * Exit codes: 0 ok / allowed, 1 denied (explain), 2 usage or config error.
 * Errors go to stderr, reports to stdout. */
#ifndef SRV_CLI_H
#define SRV_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "pol_snapshot.h"

/* The program version ("0.1.0"). Static storage. */
const char *srv_cli_version(void);

/* What |snap| holds, in config order (`check --json`, the admin /config):
 * clusters with issuer, audiences and each key's kid, type and file, rules,
 * warnings; never key material. NULL when out of memory. */
json_t *srv_cli_config_json(const pol_snapshot *snap);

/* Prints the top-level usage to |out|. */
void srv_cli_usage(FILE *out);

/* True when |arg| is "--help" or "-h". */
bool srv_cli_is_help(const char *arg);

/* True when |arg| is "--version" or "-V". */
bool srv_cli_is_version(const char *arg);

/* `tokengate check`: |argv|[0] is "check". Returns the exit code. */
int srv_cli_check_main(int argc, char **argv);

/* `tokengate explain`: |argv|[0] is "explain". Returns the exit code. */
int srv_cli_explain_main(int argc, char **argv);

#endif
