/* pitr-restore: lays a base backup down and writes the recovery settings for a target,
 * after proving that the archive holds the WAL to reach it. */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "pgctl.h"
#include "pgversion.h"
#include "restore.h"

static const char usage[] =
    "pitr-restore restores a PostgreSQL cluster from a walkeep repository to a point in\n"
    "time: it lays a base backup down and writes the recovery settings.\n\n"
    "Usage:\n"
    "  pitr-restore --pgdata DIR [TARGET] [OPTION]...\n\n"
    "Target (at most one; none means the end of the archive):\n"
    "  --target-time=TIME      e.g. '2026-11-25 14:03:26.5+01'; without an offset, the\n"
    "                          server's time zone (recorded with the backup, or --timezone)\n"
    "  --target-xid=XID        --target-lsn=LSN      --target-name=RESTORE_POINT\n"
    "  --target-immediate      the end of the backup (the earliest consistent point)\n"
    "Options:\n"
    "  --target-inclusive=true|false   stop just after (default) or before the target\n"
    "  --target-timeline=latest|current|N   (default latest)\n"
    "  --target-action=promote|pause|shutdown   (default promote)\n"
    "  --timezone=ZONE         read a time without offset in ZONE (e.g. Europe/Berlin)\n"
    "  --target-beyond-archive accept a time after the last archived commit (WAL still to\n"
    "                          be archived will reach it)\n"
    "  --backup=LABEL          restore this backup instead of choosing one\n"
    "  --tablespace-map=OLD=NEW  lay the tablespace kept in OLD down in NEW (repeatable)\n"
    "  --delta                 DIR may hold an older copy of the same cluster (no server\n"
    "                          running): equal blocks stay, differing ones are written,\n"
    "                          files the backup lacks are removed\n"
    "  --start                 start the server with pg_ctl and wait until recovery ends;\n"
    "                          the server logs to DIR/walkeep-restore.log\n"
    "  --config FILE, --KEY=VALUE, --help, --version\n\n"
    "Nothing is written unless the archive proves the target: a time before a commit\n"
    "archived after the backup, an xid that committed, an existing restore point, and\n"
    "every WAL segment on the way.\n";

static const char *progname = "pitr-restore";

/* Starts the restored cluster with pg_ctl and waits until archive recovery is over. */
/* Whether the data directory holds postgresql.conf (a Debian cluster's backup does not). */
static bool has_configuration(const char *pgdata)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/postgresql.conf", pgdata);
    return access(path, F_OK) == 0;
}

static int start_and_wait(const wk_config *cfg, const char *pgdata, wk_error *err)
{
    char pg_ctl[PATH_MAX + 16], logfile[PATH_MAX + 32], signal_file[PATH_MAX + 32];
    char pidfile[PATH_MAX + 32], line[256];
    const char *const paused[] = {"pausing at the end of recovery", NULL};
    int status;
    wk_pgctl_path(pg_ctl, sizeof(pg_ctl), cfg->pg_bindir);
    snprintf(logfile, sizeof(logfile), "%s/walkeep-restore.log", pgdata);
    snprintf(signal_file, sizeof(signal_file), "%s/recovery.signal", pgdata);
    snprintf(pidfile, sizeof(pidfile), "%s/postmaster.pid", pgdata);
    if (wk_pgctl_start(pg_ctl, pgdata, logfile, 0, NULL, &status, err) != 0)
        return -1;
    if (status != 0)
        return wk_error_set(err, WK_ERR_IO, "pg_ctl could not start the server (see \"%s\")",
                            logfile);
    wk_log(WK_LOG_INFO, "server started; waiting for recovery to end (log: %s)", logfile);
    for (;;) {
        sleep(1);
        if (access(signal_file, F_OK) != 0)
            return 0; /* archive recovery ended and the server promoted */
        if (access(pidfile, F_OK) != 0)
            return 0; /* shut down at the target (or failed: the log says) */
        if (wk_pgctl_log_find(logfile, paused, line, sizeof(line)))
            return 0;
    }
}

/* Prints the lines of the server log that say where recovery stopped. */
static void report_stop(const char *pgdata)
{
    char path[PATH_MAX + 32], line[1024];
    snprintf(path, sizeof(path), "%s/walkeep-restore.log", pgdata);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, "recovery stopping") || strstr(line, "last completed transaction") ||
            strstr(line, "archive recovery complete") || strstr(line, "FATAL") ||
            strstr(line, "pausing at the end of recovery")) {
            line[strcspn(line, "\n")] = '\0';
            wk_log(WK_LOG_INFO, "server: %s", line);
        }
    }
    fclose(f);
}

/* Says how a time target was read and where recovery will stop. */
static void report_target(const wk_restore_options *opt, const wk_restore_plan *plan)
{
    char utc[64], when[64], lsn[32];
    if (opt->target.kind == WK_TARGET_TIME) {
        wk_window_format_time(wk_walrec_time_from_unix_us(plan->target_time), utc, sizeof(utc));
        if (plan->target_zone[0] != '\0')
            wk_log(WK_LOG_INFO, "target time %s in %s = %s", opt->target.value, plan->target_zone,
                   utc);
        else
            wk_log(WK_LOG_INFO, "target time %s = %s", opt->target.value, utc);
    }
    if (!plan->stop.found) {
        if (opt->target.kind == WK_TARGET_TIME)
            wk_log(WK_LOG_WARNING,
                   "no commit archived so far is later than the target: recovery reaches it "
                   "only if WAL archived after now does (--target-beyond-archive)");
        return;
    }
    const wk_walrec_event *ev = &plan->stop.event;
    wk_window_format_time(ev->time, when, sizeof(when));
    wk_wal_format_lsn(lsn, sizeof(lsn), ev->lsn);
    bool exclusive = opt->target.inclusive != NULL && strcmp(opt->target.inclusive, "false") == 0;
    if (opt->target.kind == WK_TARGET_TIME)
        wk_log(WK_LOG_INFO,
               "recovery will stop before transaction %u, which %s at %s (WAL %s, timeline %u)",
               ev->xid, ev->kind == WK_WALREC_COMMIT ? "committed" : "aborted", when, lsn,
               plan->stop.tli);
    else if (opt->target.kind == WK_TARGET_XID)
        wk_log(WK_LOG_INFO,
               "recovery will stop %s transaction %u, which committed at %s (WAL %s, "
               "timeline %u)",
               exclusive ? "just before" : "just after", ev->xid, when, lsn, plan->stop.tli);
    else
        wk_log(WK_LOG_INFO,
               "recovery will stop at restore point \"%s\", created at %s (WAL %s, "
               "timeline %u)",
               ev->name, when, lsn, plan->stop.tli);
}

/* The options: a recovery target, --start, --backup, and --tablespace-map OLD=NEW (each
 * copied into *maps, which opt->maps then points at; freed by the caller, the from
 * strings too). */
static int parse_args(const wk_args *args, wk_restore_options *opt, bool *start_server,
                      wk_tablespace_map **maps, wk_error *err)
{
    wk_option_list map_args = {0};
    const wk_option table[] = {
        {"", WK_OPTION_TARGET, &opt->target, 0, 0},
        {"--start", WK_OPTION_FLAG, start_server, 0, 0},
        {"--delta", WK_OPTION_FLAG, &opt->delta, 0, 0},
        {"--backup", WK_OPTION_STRING, &opt->backup_label, 0, 0},
        {"--tablespace-map", WK_OPTION_LIST, &map_args, 0, 0},
    };
    int rc = wk_cli_parse_options(progname, args, 0, table, sizeof(table) / sizeof(table[0]), err);
    if (rc == 0) {
        *maps = calloc(map_args.count + 1, sizeof(**maps));
        if (*maps == NULL)
            rc = wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        opt->maps = *maps;
    }
    for (size_t i = 0; rc == 0 && i < map_args.count; i++) {
        const char *v = map_args.items[i];
        const char *eq = strchr(v, '=');
        if (eq == NULL || v[0] != '/' || eq[1] != '/') {
            rc = wk_error_set(err, WK_ERR_USAGE, "--tablespace-map takes OLD=NEW, both absolute");
            break;
        }
        char *from = strndup(v, (size_t)(eq - v));
        if (from == NULL) {
            rc = wk_error_set(err, WK_ERR_NOMEM, "out of memory");
            break;
        }
        (*maps)[opt->map_count++] = (wk_tablespace_map){.from = from, .to = eq + 1};
    }
    wk_option_list_free(&map_args);
    return rc;
}

int main(int argc, char **argv)
{
    wk_config cfg = {0};
    wk_args args = {0};
    wk_error err = {0};
    wk_repo *repo = NULL;
    wk_restore_options opt = {0};
    wk_restore_plan plan = {0};
    wk_tablespace_map *maps = NULL;
    char restore_command[8192];
    struct timespec start;
    bool start_server = false;
    int status = 1;

    int started = wk_cli_start(progname, usage, WK_LOG_INFO, argc, argv, &cfg, &args);
    if (started != 0)
        return started > 0 ? 0 : 1;
    if (parse_args(&args, &opt, &start_server, &maps, &err) != 0) {
        wk_cli_usage_error(progname, &err);
        goto out;
    }
    if (cfg.pgdata == NULL) {
        wk_cli_bad_argument(progname, "no data directory given: pass --pgdata DIR");
        goto out;
    }
    opt.pgdata = cfg.pgdata;
    if (geteuid() == 0)
        wk_log(WK_LOG_WARNING, "running as root: the restored files will belong to root, and "
                               "PostgreSQL will not start from them until they are chown'ed to "
                               "its user; run pitr-restore as that user instead");
    if (wk_repo_open(&cfg, false, &repo, &err) != 0 ||
        wk_restore_command_build(&cfg, restore_command, sizeof(restore_command), &err) != 0)
        goto report;
    opt.restore_command = restore_command;
    clock_gettime(CLOCK_MONOTONIC, &start);
    opt.progress = wk_cli_progress;
    opt.progress_arg = &start;
    /* --start: the pg_ctl that will start the server is of the backup's major (checked
     * before anything is laid down). */
    if (wk_restore_plan_make(repo, &opt, &plan, &err) != 0 ||
        (start_server &&
         wk_pg_program_check_major(cfg.pg_bindir, "pg_ctl", plan.backup.pg_version, &err) != 0))
        goto report;
    report_target(&opt, &plan);
    char start_lsn[32], stop_lsn[32];
    wk_wal_format_lsn(start_lsn, sizeof(start_lsn), plan.backup.start_lsn);
    wk_wal_format_lsn(stop_lsn, sizeof(stop_lsn), plan.backup.stop_lsn);
    wk_log(WK_LOG_INFO,
           "backup \"%s\" (%s to %s, timeline %u); the archive holds all %llu WAL "
           "segments up to %s on the way to timeline %u",
           plan.backup.label, start_lsn, stop_lsn, plan.backup.start_tli,
           (unsigned long long)plan.segments, plan.last_segment[0] ? plan.last_segment : "-",
           plan.target_tli);
    /* Where files will go, said before anything is written. */
    for (size_t i = 0; i < plan.backup.stream_count; i++) {
        const wk_backup_stream *st = &plan.backup.streams[i];
        if (st->location == NULL)
            continue;
        const char *to = st->location;
        for (size_t m = 0; m < opt.map_count; m++)
            if (strcmp(opt.maps[m].from, st->location) == 0)
                to = opt.maps[m].to;
        wk_log(WK_LOG_INFO, "tablespace %u goes to \"%s\"%s", st->tablespace, to,
               to == st->location ? " (its location on the backed-up server)" : "");
    }
    wk_restore_delta_result delta = {0};
    opt.delta_result = &delta;
    int rc = wk_restore_lay_down(repo, &opt, &plan, &err);
    wk_cli_progress_finish(rc == 0);
    if (rc != 0)
        goto report;
    if (opt.delta) {
        char kept[32], total[32];
        wk_log(WK_LOG_INFO, "delta: %s of %s already in place, %llu files and folders removed",
               wk_log_format_size(kept, sizeof(kept), delta.kept),
               wk_log_format_size(total, sizeof(total), delta.bytes),
               (unsigned long long)delta.removed);
    }
    wk_log(WK_LOG_INFO, "restored into \"%s\" with recovery.signal; %s", opt.pgdata,
           start_server ? "starting the server" : "start the server to replay to the target");
    if (!has_configuration(opt.pgdata)) {
        /* Debian and Ubuntu keep a cluster's configuration in /etc/postgresql/: its backups
         * hold none, and PostgreSQL does not start without one. */
        wk_log(WK_LOG_WARNING,
               "the backup holds no postgresql.conf (Debian and Ubuntu keep it in "
               "/etc/postgresql/<version>/<cluster>/): copy postgresql.conf, pg_hba.conf and "
               "pg_ident.conf into \"%s\" before starting the server",
               opt.pgdata);
        if (start_server) {
            wk_error_set(&err, WK_ERR_USAGE,
                         "cannot start the server: \"%s\" has no "
                         "postgresql.conf",
                         opt.pgdata);
            wk_error_hint(&err, "copy the cluster's configuration files there and start it "
                                "with pg_ctl; the restore itself is laid down");
            goto report;
        }
    }
    if (start_server) {
        if (start_and_wait(&cfg, opt.pgdata, &err) != 0)
            goto report;
        report_stop(opt.pgdata);
    }
    status = 0;
    goto out;
report:
    wk_log_error(&err);
out:
    for (size_t i = 0; maps != NULL && i < opt.map_count; i++)
        free((char *)maps[i].from);
    free(maps);
    wk_restore_plan_free(&plan);
    wk_repo_free(repo);
    wk_config_free(&cfg);
    wk_args_free(&args);
    return status;
}
