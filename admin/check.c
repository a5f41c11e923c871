/* walkeep check: monitoring in the Nagios convention. Options and output around the
 * worker in lib/check.c: one "STATUS: check: what" line per check (or --json), the
 * node-exporter textfile with --prometheus, exit 0 OK / 1 WARNING / 2 CRITICAL; -1 (exit
 * 3, UNKNOWN) for usage and configuration errors and when the output cannot be written. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli.h"
#include "commands.h"
#include "repo.h"

static const char *progname = "walkeep";

/* Options taking a value, in the order the switch below handles them. */
static const char *const value_options[] = {"--prometheus", "--max-backup-age", "--max-wal-age",
                                            "--max-dump-age", "--timeout", "--max-ready"};

static int duration_option(const char *name, const char *value, int64_t *ms)
{
    if (wk_config_parse_duration(value, ms) != 0 || *ms < 0) {
        char what[256];
        snprintf(what, sizeof(what), "invalid value for %s: \"%.100s\" (a duration such as "
                                     "90s, 30min, 48h, 7d)", name, value);
        return wk_cli_bad_argument(progname, what);
    }
    return 0;
}

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
    options.timeout_ms = 60 * 1000;
    for (int i = 1; i < args->count; i++) {
        const char *v = NULL;
        int which = -1;
        if (strcmp(args->items[i], "--json") == 0) {
            json = true;
            continue;
        }
        if (strcmp(args->items[i], "--switch-wal") == 0) {
            options.switch_wal = true;
            continue;
        }
        for (int k = 0; k < (int)(sizeof(value_options) / sizeof(value_options[0])); k++) {
            int m = wk_cli_option_value(progname, args, &i, value_options[k], &v);
            if (m < 0)
                return -1;
            if (m > 0) {
                which = k;
                break;
            }
        }
        if (which < 0) {
            char what[256];
            snprintf(what, sizeof(what), "check does not take \"%.200s\"", args->items[i]);
            return wk_cli_bad_argument(progname, what);
        }
        int bad = 0;
        switch (which) {
        case 0:
            prometheus = v;
            break;
        case 1:
            bad = duration_option(value_options[which], v, &t.max_backup_age_ms);
            break;
        case 2:
            bad = duration_option(value_options[which], v, &t.max_wal_age_ms);
            break;
        case 3:
            bad = duration_option(value_options[which], v, &t.max_dump_age_ms);
            break;
        case 4:
            bad = duration_option(value_options[which], v, &options.timeout_ms);
            break;
        default: {
            char *end = NULL;
            long long n = strtoll(v, &end, 10);
            if (end == v || *end != '\0' || n < 0)
                return wk_cli_bad_argument(progname, "--max-ready needs a whole number");
            t.max_ready = n;
        }
        }
        if (bad != 0)
            return -1;
    }
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
        if (metrics == NULL || wk_check_write_atomic(prometheus, metrics, err) != 0)
            goto out;
    }
    rc = (int)report.status;
out:
    free(metrics);
    free(doc);
    free(facts);
    wk_repo_free(repo);
    return rc;
}
