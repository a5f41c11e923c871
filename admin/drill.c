/* walkeep drill: the restore test as one command (lib/drill.c does the work): options, the
 * restore_command, the --sql file, and the report on stdout (text or --json). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "drill.h"
#include "repo.h"

static const char *progname = "walkeep";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int read_sql_file(const char *path, wk_drill_query **queries, size_t *count, wk_error *err)
{
    FILE *f = fopen(path, "re");
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;
    if (f == NULL)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not open \"%s\"", path);
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *grown = realloc(text, cap);
            if (grown == NULL) {
                wk_error_set(err, WK_ERR_NOMEM, "out of memory");
                goto out;
            }
            text = grown;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        wk_error_set(err, WK_ERR_IO, "could not read \"%s\"", path);
        goto out;
    }
    rc = wk_drill_parse_sql(path, text, len, queries, count, err);
out:
    free(text);
    fclose(f);
    return rc;
}

static void print_duration(const char *what, int64_t ms)
{
    if (ms < 0)
        printf("%-9s-\n", what);
    else
        printf("%-9s%.1f s\n", what, (double)ms / 1000.0);
}

static void print_text(const wk_drill_report *r)
{
    const wk_drill_check *failed = wk_drill_report_failed(r);
    printf("backup:  %s\n", r->backup[0] ? r->backup : "-");
    printf("target:  %s\n", r->target);
    print_duration("restore:", r->restore_ms);
    print_duration("replay:", r->replay_ms);
    if (r->kept)
        printf("kept:    %s\n", r->folder);
    for (size_t i = 0; i < r->check_count; i++)
        printf("%-8s %s: %s\n", wk_drill_status_name(r->checks[i].status), r->checks[i].name,
               r->checks[i].detail);
    if (failed != NULL)
        printf("drill FAILED: check \"%s\" failed\n", failed->name);
    else
        printf("drill passed\n");
}

int wk_drill_command(const wk_config *cfg, const wk_args *args, wk_error *err)
{
    wk_drill_options opt = {0};
    wk_drill_report report = {0};
    wk_drill_query *queries = NULL;
    size_t query_count = 0;
    wk_repo *repo = NULL;
    const char *sql_file = NULL;
    char restore_command[8192];
    bool json = false;
    int rc = -1;
    struct sigaction sa = {0}, old_int, old_term;

    const wk_option table[] = {
        {"", WK_OPTION_TARGET, &opt.target, 0, 0},
        {"--json", WK_OPTION_FLAG, &json, 0, 0},
        {"--keep", WK_OPTION_FLAG, &opt.keep, 0, 0},
        {"--backup", WK_OPTION_STRING, &opt.backup_label, 0, 0},
        {"--sql", WK_OPTION_STRING, &sql_file, 0, 0},
        {"--dbname", WK_OPTION_STRING, &opt.sql_dbname, 0, 0},
        {"--timeout", WK_OPTION_DURATION, &opt.timeout_ms, 1, 0},
    };
    if (wk_cli_parse_options("drill", args, 1, table, sizeof(table) / sizeof(table[0]), err) != 0) {
        wk_cli_usage_error(progname, err);
        wk_error_clear(err);
        goto out;
    }
    if (opt.target.action != NULL) {
        wk_cli_bad_argument(progname, "drill does not take \"--target-action\": it always "
                                      "promotes");
        goto out;
    }
    if (opt.sql_dbname != NULL && sql_file == NULL) {
        wk_cli_bad_argument(progname, "--dbname names the database of the --sql queries: "
                                      "give --sql too");
        goto out;
    }
    if (geteuid() == 0) {
        wk_error_set(err, WK_ERR_USAGE, "\"walkeep drill\" cannot run as root");
        wk_error_detail(err, "PostgreSQL refuses to start as root, and the drill starts it as "
                             "the user that runs the drill");
        wk_error_hint(err, "run it as the user that owns PostgreSQL, e.g. "
                           "runuser -u postgres -- walkeep drill");
        goto out;
    }
    if (sql_file != NULL && read_sql_file(sql_file, &queries, &query_count, err) != 0)
        goto out;
    if (wk_repo_open(cfg, false, &repo, err) != 0 ||
        wk_restore_command_build(cfg, restore_command, sizeof(restore_command), err) != 0)
        goto out;
    opt.restore_command = restore_command;
    opt.pg_bindir = cfg->pg_bindir;
    opt.queries = queries;
    opt.query_count = query_count;
    opt.cancel = &interrupted;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    opt.progress = wk_cli_progress;
    opt.progress_arg = &start;

    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int ran = wk_drill_run(repo, &opt, &report, err);
    /* The bar is the restore's: whole only when the drill got past it. */
    wk_cli_progress_finish(ran == 0 && wk_drill_report_failed(&report) == NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (ran != 0)
        goto out;
    if (json) {
        char *doc = wk_drill_report_json(&report, err);
        if (doc == NULL)
            goto out;
        fputs(doc, stdout);
        free(doc);
    } else {
        print_text(&report);
    }
    if (fflush(stdout) != 0) {
        wk_error_set(err, WK_ERR_IO, "could not write the output");
        goto out;
    }
    rc = wk_drill_report_failed(&report) == NULL ? 0 : 1;
out:
    wk_drill_report_free(&report);
    wk_drill_queries_free(queries, query_count);
    wk_repo_free(repo);
    return rc;
}
