/* cli: what every program's main() does first: load the configuration, answer --help
 * and --version, set up logging. Glue for main() only; it prints. */
#ifndef WK_CLI_H
#define WK_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "restore.h"

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

/* The same for a usage error already in err (adds the --help hint); returns -1. */
int wk_cli_usage_error(const char *progname, wk_error *err);

/* A duration written for people: "0 s", "59 s", "1 min 40 s",
 * "2 h 0 min" (rounded to the second; below 0 is 0). Into buf (size bytes, always
 * NUL-terminated when size > 0); returns buf, for use as a printf argument. */
const char *wk_cli_format_duration(char *buf, size_t size, double seconds);

/* Formats one progress line (no "\r", no newline) into buf (size bytes, always
 * NUL-terminated when size > 0), at most columns - 1 characters wide (the last column
 * is left free: a terminal wraps when it is written); columns 0 is no limit. Sizes are
 * written by wk_log_format_size. With a known total, in full:
 *     "[##########----------]  48%  123.4 MiB / 256.0 MiB  85.2 MiB/s  2 s left"
 * a narrower line drops the rate, then shortens the bar (down to 8 marks) to keep the
 * time left, then drops that (the bar as long as fits again), then falls back to a
 * counter without a bar ("  48%  123.4 MiB / 256.0 MiB", "  48%  123.4 MiB", "  48%").
 * With total == 0 (unknown): "  123.4 MiB  85.2 MiB/s", then "  123.4 MiB". What still
 * does not fit is cut. done above total (a short estimate) shows done as the total
 * (100%, as pg_basebackup does); below it, never more than 99%. seconds is the time
 * elapsed since the start; at 0 or below the rate is 0 and the time left "?". Returns
 * the length of the line chosen (buf holds it when it is below size). */
int wk_cli_format_progress(char *buf, size_t size, unsigned columns, uint64_t done, uint64_t total,
                           double seconds);

/* Progress on stderr for long commands, only when stderr is a terminal (otherwise
 * nothing at all is written): a "\r" line formatted as above for the terminal's width
 * (read from stderr at every redraw, so a resized window is followed; 80 when it cannot
 * be read), redrawn at most ten times a second (a call that reaches the total always
 * draws). start_time points at the struct timespec (CLOCK_MONOTONIC) the work started
 * at; the signature fits the progress callbacks of the core modules. */
void wk_cli_progress(uint64_t done, uint64_t total, void *start_time);

/* Ends the progress line, after the work: when it succeeded (ok), the line is drawn once
 * more as finished, with what was done as the total (100% and the final size, however
 * far off an estimate was; a line whose total was never known keeps its form); when it
 * failed, the last state is drawn if it was skipped, as it was. Then the line ends with
 * a newline. Does nothing when nothing was drawn. */
void wk_cli_progress_finish(bool ok);

/* Parses the recovery-target option at args->items[*i], if it is one: --target-time,
 * --target-xid, --target-lsn, --target-name (each as --opt=VALUE or --opt VALUE, then *i
 * advances past the value), --target-immediate, --target-inclusive, --target-timeline,
 * --target-action. Returns 1 when it was one (t updated; values point into args), 0
 * when the item is something else, -1 with WK_ERR_USAGE for a missing or bad value or
 * a second target. */
int wk_cli_target_option(const wk_args *args, int *i, wk_restore_target *t, wk_error *err);

/* Options declared, not hand-parsed: a program (or sub-command) lists its options in a
 * table and wk_cli_parse_options fills the destinations. */
typedef enum wk_option_kind {
    WK_OPTION_FLAG,     /* --name: *(bool *)dest = true */
    WK_OPTION_STRING,   /* --name=VALUE or --name VALUE: *(const char **)dest, into args */
    WK_OPTION_DURATION, /* a duration (90s, 30min, 48h, 7d): *(int64_t *)dest, in ms */
    WK_OPTION_COUNT,    /* a whole number, 0 or more: *(int64_t *)dest */
    WK_OPTION_TARGET,   /* the recovery-target options (wk_cli_target_option): name is
                         * unused, dest a wk_restore_target * */
    WK_OPTION_LIST      /* repeatable --name=VALUE: appended to *(wk_option_list *)dest */
} wk_option_kind;

/* The values of a repeatable option, in order (strings borrowed from the args); freed with
 * wk_option_list_free. */
typedef struct wk_option_list {
    const char **items;
    size_t count;
} wk_option_list;

void wk_option_list_free(wk_option_list *list);

typedef struct wk_option {
    const char *name; /* "--max-ready" */
    wk_option_kind kind;
    void *dest;
    int64_t min;       /* durations and counts: the smallest value taken (default 0) */
    unsigned commands; /* wk_cli_parse_command: bit k set when commands[k] takes it; 0: all */
} wk_option;

/* Parses args->items[first .. args->count) against the count options. Returns 0, or -1
 * with WK_ERR_USAGE: "<command> does not take "<item>"" for anything else (with the hint
 * "did you mean "<option>"?" when one option's name is a typo away), "option "<name>"
 * requires a value", "invalid value for <name>: "<value>" (a duration such as 90s,
 * 30min, 48h, 7d)", "<name> needs a whole number", or a recovery target's message. */
int wk_cli_parse_options(const char *command, const wk_args *args, int first,
                         const wk_option *options, size_t count, wk_error *err);

/* A sub-command of a program ("walkeep-dump restore LABEL"). */
typedef struct wk_command {
    const char *name;     /* "restore" */
    const char *argument; /* what its one argument is ("the label of a dump"); NULL: none */
} wk_command;

/* Parses "COMMAND [ARGUMENT] [options]", in any order, against the count options (each
 * with the mask of the commands that take it): *which gets the command's index, *argument
 * its argument (NULL when it takes none). Returns 0, or -1 with WK_ERR_USAGE: "a command is
 * needed: <a>, <b> or <c>", "unknown command "<x>"", "<option> does not apply to
 * "<command>"", ""<command>" needs <argument>", "<command> does not take "<item>"" (with a
 * "did you mean" hint as wk_cli_parse_options gives), or a value's own message. */
int wk_cli_parse_command(const wk_args *args, const wk_command *commands, size_t command_count,
                         const wk_option *options, size_t count, int *which, const char **argument,
                         wk_error *err);

#endif
