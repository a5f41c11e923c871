/* cli: what every program's main() does first: load the configuration, answer --help
 * and --version, set up logging. Glue for main() only; it prints. */
#include "cli.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

int wk_cli_option_value(const char *progname, const wk_args *args, int *i, const char *name,
                        const char **value)
{
    const char *item = args->items[*i];
    size_t n = strlen(name);
    if (strncmp(item, name, n) != 0)
        return 0;
    if (item[n] == '=') {
        *value = item + n + 1;
        return 1;
    }
    if (item[n] != '\0')
        return 0;
    if (*i + 1 >= args->count) {
        char what[128];
        snprintf(what, sizeof(what), "option \"%s\" requires a value", name);
        return wk_cli_bad_argument(progname, what);
    }
    *value = args->items[++*i];
    return 1;
}

static bool progress_shown;

void wk_cli_progress(uint64_t done, uint64_t total, void *start_time)
{
    const struct timespec *start = start_time;
    struct timespec now;
    if (!isatty(STDERR_FILENO))
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double seconds = (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
    double rate = seconds > 0 ? (double)done / seconds : 0;
    char left[32] = "?";
    if (total > done && rate > 0)
        snprintf(left, sizeof(left), "%.0f s", (double)(total - done) / rate);
    else if (total > 0 && done >= total)
        snprintf(left, sizeof(left), "0 s");
    fprintf(stderr, "\r%8.1f / %.1f MiB  %6.1f MiB/s  %s left   ", (double)done / 1048576.0,
            (double)total / 1048576.0, rate / 1048576.0, left);
    progress_shown = true;
}

void wk_cli_progress_end(void)
{
    if (progress_shown)
        fputc('\n', stderr);
    progress_shown = false;
}
