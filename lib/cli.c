/* cli: what every program's main() does first: load the configuration, answer --help
 * and --version, set up logging. Glue for main() only; it prints. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "version.h"

int wk_cli_start(const char *progname, const char *usage, wk_log_level default_level, int argc,
                 char **argv, wk_config *cfg, wk_args *args)
{
    wk_error err = {0};
    wk_log_init(progname, default_level);
    if (wk_config_load(cfg, argc, argv, args, &err) != 0) {
        wk_log_error(&err);
        return -1;
    }
    if (args->help || args->version) {
        if (args->help)
            fputs(usage, stdout);
        else
            printf("%s (walkeep) %s\n", progname, WALKEEP_VERSION);
        wk_config_free(cfg);
        wk_args_free(args);
        return 1;
    }
    wk_log_set_level(cfg->log_level_set ? cfg->log_level : default_level);
    return 0;
}

int wk_cli_bad_argument(const char *progname, const char *what)
{
    wk_error err = {0};
    wk_error_set(&err, WK_ERR_USAGE, "%s", what);
    wk_error_hint(&err, "try \"%s --help\" for more information", progname);
    wk_log_error(&err);
    return -1;
}
