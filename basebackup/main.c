/* walkeep-basebackup: takes a base backup of the cluster pg_conninfo names into the
 * repository, streaming every tablespace through the pipeline; prints its label. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backup.h"
#include "cli.h"

static const char usage[] =
    "walkeep-basebackup takes a base backup of a PostgreSQL 15+ cluster into a walkeep\n"
    "repository. The WAL is left to the archive (walkeep-archive as archive_command).\n\n"
    "Usage:\n"
    "  walkeep-basebackup [OPTION]...\n\n"
    "Options:\n"
    "  --label=LABEL          name of the backup (default: its start time, 20261125T093012Z)\n"
    "  --checkpoint=fast|spread  start at once (default) or after a spread checkpoint\n"
    "  --wait-archive=DURATION   how long to wait for the backup's last WAL segment to be\n"
    "                         archived (default 60s)\n"
    "  --config FILE          configuration file\n"
    "  --KEY=VALUE            any configuration key, e.g. --pg-conninfo='host=/run/postgresql'\n"
    "  --help, --version\n\n"
    "The role in pg_conninfo needs the REPLICATION attribute. On success the label is\n"
    "printed on stdout; the backup is usable once its last WAL segment is archived.\n";

static const char *progname = "walkeep-basebackup";

int main(int argc, char **argv)
{
    wk_config cfg = {0};
    wk_args args = {0};
    wk_error err = {0};
    wk_repo *repo = NULL;
    wk_backup_record record = {0};
    wk_backup_options options = {.fast_checkpoint = true, .wait_archive_ms = 60 * 1000};
    struct timespec start;
    int status = 1;

    int started = wk_cli_start(progname, usage, WK_LOG_INFO, argc, argv, &cfg, &args);
    if (started != 0)
        return started > 0 ? 0 : 1;
    const char *checkpoint = NULL;
    int64_t wait_archive_ms = options.wait_archive_ms;
    const wk_option table[] = {
        {"--label", WK_OPTION_STRING, &options.label, 0, 0},
        {"--checkpoint", WK_OPTION_STRING, &checkpoint, 0, 0},
        {"--wait-archive", WK_OPTION_DURATION, &wait_archive_ms, 0, 0},
    };
    if (wk_cli_parse_options(progname, &args, 0, table, sizeof(table) / sizeof(table[0]), &err) !=
        0) {
        wk_cli_usage_error(progname, &err);
        goto out;
    }
    if (checkpoint != NULL && strcmp(checkpoint, "fast") != 0 &&
        strcmp(checkpoint, "spread") != 0) {
        wk_cli_bad_argument(progname, "--checkpoint takes \"fast\" or \"spread\"");
        goto out;
    }
    if (checkpoint != NULL)
        options.fast_checkpoint = strcmp(checkpoint, "fast") == 0;
    if (wait_archive_ms > 86400000) {
        wk_cli_bad_argument(progname, "--wait-archive takes a duration up to 24h");
        goto out;
    }
    options.wait_archive_ms = (int)wait_archive_ms;
    options.conninfo = cfg.pg_conninfo;
    options.pgdata = cfg.pgdata;
    clock_gettime(CLOCK_MONOTONIC, &start);
    options.progress = wk_cli_progress;
    options.progress_arg = &start;
    if (wk_repo_open(&cfg, true, &repo, &err) != 0)
        goto report;
    int rc = wk_backup_take(repo, &options, &record, &err);
    wk_cli_progress_finish(rc == 0);
    if (rc != 0 && record.label[0] == '\0')
        goto report;
    char start_lsn[32], stop_lsn[32];
    wk_wal_format_lsn(start_lsn, sizeof(start_lsn), record.start_lsn);
    wk_wal_format_lsn(stop_lsn, sizeof(stop_lsn), record.stop_lsn);
    char size[32], stored[32];
    wk_log(WK_LOG_INFO, "backup \"%s\" %s: %s to %s on timeline %u, %s stored as %s", record.label,
           rc == 0 ? "complete" : "taken", start_lsn, stop_lsn, record.stop_tli,
           wk_log_format_size(size, sizeof(size), record.bytes),
           wk_log_format_size(stored, sizeof(stored), record.stored_bytes));
    if (rc != 0)
        goto report;
    printf("%s\n", record.label);
    status = 0;
    goto out;
report:
    wk_log_error(&err);
out:
    wk_backup_record_free(&record);
    wk_repo_free(repo);
    wk_config_free(&cfg);
    wk_args_free(&args);
    return status;
}
