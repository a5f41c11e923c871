/* walkeep check: monitoring in the Nagios convention. Options and output around the
 * worker in lib/check.c: one "STATUS: check: what" line per check (or --json), the
 * node-exporter textfile with --prometheus, exit 0 OK / 1 WARNING / 2 CRITICAL; -1 (exit
 * 3, UNKNOWN) for usage and configuration errors and when the output cannot be written. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "cli.h"
#include "commands.h"
#include "file.h"
#include "repo.h"

static const char *progname = "walkeep";

int wk_check_command(const wk_config *cfg, const wk_args *args, wk_error *err)
{
    wk_check_thresholds t;
    wk_check_options options = {0};
    wk_check_facts *facts = NULL;
    wk_check_report report;
    const char *prometheus = NULL;
    bool json = false;
    wk_repo *repo = NULL;
    char *doc = NULL, *metrics = NULL;
    int rc = -1;

    wk_check_thresholds_default(&t);
    t.shrink_percent = cfg->check_shrink_percent;
    options.timeout_ms = 60 * 1000;
    const wk_option table[] = {
        {"--json", WK_OPTION_FLAG, &json, 0, 0},
        {"--switch-wal", WK_OPTION_FLAG, &options.switch_wal, 0, 0},
        {"--prometheus", WK_OPTION_STRING, &prometheus, 0, 0},
        {"--max-backup-age", WK_OPTION_DURATION, &t.max_backup_age_ms, 0, 0},
        {"--max-wal-age", WK_OPTION_DURATION, &t.max_wal_age_ms, 0, 0},
        {"--max-dump-age", WK_OPTION_DURATION, &t.max_dump_age_ms, 0, 0},
        {"--timeout", WK_OPTION_DURATION, &options.timeout_ms, 0, 0},
        {"--max-ready", WK_OPTION_COUNT, &t.max_ready, 0, 0},
    };
    wk_error uerr = {0};
    if (wk_cli_parse_options("check", args, 1, table, sizeof(table) / sizeof(table[0]), &uerr) != 0)
        return wk_cli_usage_error(progname, &uerr);
    options.conninfo = cfg->pg_conninfo;
    options.pgdata = cfg->pgdata;
    options.dumps_expected = cfg->retention_dumps > 0 || cfg->retention_dumps_days > 0;

    facts = calloc(1, sizeof(*facts));
    if (facts == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (wk_repo_open(cfg, false, &repo, err) != 0) {
        if (err->code == WK_ERR_CONFIG || err->code == WK_ERR_NOMEM)
            goto out; /* nothing to check: UNKNOWN */
        snprintf(facts->repo_error, sizeof(facts->repo_error), "%s", err->message);
        wk_error_clear(err);
    }
    if (wk_check_gather(repo, &options, facts, err) != 0)
        goto out;
    wk_check_evaluate(facts, &t, &report);

    if (json) {
        doc = wk_check_report_json(&report, err);
    } else {
        doc = wk_check_report_text(&report);
        if (doc == NULL)
            wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    }
    if (doc == NULL)
        goto out;
    fputs(doc, stdout);
    if (fflush(stdout) != 0) {
        wk_error_set(err, WK_ERR_IO, "could not write the output");
        goto out;
    }
    if (prometheus != NULL) {
        metrics = wk_check_prometheus(facts, &report, err);
        if (metrics == NULL)
            goto out;
        if (wk_file_write(prometheus, metrics, strlen(metrics), 0644, 0, err) != 0) {
            int e = err->sys_errno;
            if (e != EACCES && e != EPERM && e != EROFS && e != ENOENT && e != ENOTDIR)
                goto out; /* a full disk, an I/O error: the message says it */
            char folder[4096], me[64];
            const char *slash = strrchr(prometheus, '/');
            if (slash == NULL)
                snprintf(folder, sizeof(folder), ".");
            else
                snprintf(folder, sizeof(folder), "%.*s",
                         (int)(slash == prometheus ? 1 : slash - prometheus), prometheus);
            wk_error_hint(err,
                          "--prometheus writes through a temporary file beside it: the folder "
                          "\"%s\" must exist and be writable by user \"%s\"",
                          folder, wk_file_user_name(geteuid(), me, sizeof(me)));
            goto out;
        }
    }
    rc = (int)report.status;
out:
    free(metrics);
    free(doc);
    free(facts);
    wk_repo_free(repo);
    return rc;
}
