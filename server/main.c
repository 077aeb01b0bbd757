/* tokengate: dispatches to the subcommands; nothing else lives here. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "srv_cli.h"
#include "srv_serve.h"

int main(int argc, char **argv)
{
    /* jansson's hash seed must be fixed before any thread exists. */
    json_object_seed(0);

    if (argc < 2) {
        srv_cli_usage(stderr);
        return 2;
    }
    const char *command = argv[1];
    if (srv_cli_is_help(command) || strcmp(command, "help") == 0) {
        srv_cli_usage(stdout);
        return 0;
    }
    if (srv_cli_is_version(command)) {
        printf("tokengate %s\n", srv_cli_version());
        return 0;
    }
    if (strcmp(command, "check") == 0)
        return srv_cli_check_main(argc - 1, argv + 1);
    if (strcmp(command, "explain") == 0)
        return srv_cli_explain_main(argc - 1, argv + 1);
    if (strcmp(command, "serve") == 0)
        return srv_serve_main(argc - 1, argv + 1);
    fprintf(stderr, "tokengate: unknown command %s\n", command);
    srv_cli_usage(stderr);
    return 2;
}
