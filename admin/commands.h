/* commands: the walkeep sub-commands that live in files of their own (admin/), each a
 * thin layer of options and output over a worker in lib/. */
#ifndef WK_COMMANDS_H
#define WK_COMMANDS_H

#include "config.h"
#include "error.h"

/* args->items[0] is the command's name; the rest are its own options and arguments.
 * Each returns 0 when all is well, 1 when it ran and found problems (already reported on
 * stdout/stderr), or -1 with err filled for main() to report. */
int wk_verify_command(const wk_config *cfg, const wk_args *args, wk_error *err);
int wk_expire_command(const wk_config *cfg, const wk_args *args, wk_error *err);
/* check follows the Nagios convention instead: 0 OK, 1 WARNING, 2 CRITICAL (3 UNKNOWN
 * for an error it reports itself). */
int wk_check_command(const wk_config *cfg, const wk_args *args, wk_error *err);
int wk_drill_command(const wk_config *cfg, const wk_args *args, wk_error *err);

#endif
