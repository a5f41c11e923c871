/* cli: what every program's main() does first: load the configuration, answer --help
 * and --version, set up logging. Glue for main() only; it prints. */
#ifndef WK_CLI_H
#define WK_CLI_H

#include <stdint.h>

#include "config.h"
#include "log.h"

/* Loads cfg and args from argv (see wk_config_load) and starts logging as progname at
 * cfg's log_level, or default_level when log_level is set nowhere. Returns 0 to go
 * on; 1 when --help or --version was answered on stdout (exit 0); -1 when an error
 * was reported on stderr (exit 1 or the program's hard-error status). On a non-zero
 * return cfg and args hold nothing to free. */
int wk_cli_start(const char *progname, const char *usage, wk_log_level default_level, int argc,
                 char **argv, wk_config *cfg, wk_args *args);

/* Reports an unexpected argument or option as one error line with a --help hint;
 * returns -1. */
int wk_cli_bad_argument(const char *progname, const char *what);

/* Matches args->items[*i] against option `name` ("--label"), in the forms --name=VALUE
 * and --name VALUE (then *i advances past the value). Returns 1 and sets *value on a
 * match, 0 when the item is another option or argument, -1 (reported) when the value
 * is missing. */
int wk_cli_option_value(const char *progname, const wk_args *args, int *i, const char *name,
                        const char **value);

/* Progress on stderr for long commands, only when stderr is a terminal: "\r" updates
 * of bytes done, rate and time left; wk_cli_progress_end ends the line. */
void wk_cli_progress(uint64_t done, uint64_t total, void *start_time);
void wk_cli_progress_end(void);

#endif
