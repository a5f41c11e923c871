/* walkeep: repository administration and monitoring (keygen, init, info, check, verify,
 * expire, drill, key rotate); program glue over lib/, each command's worker in admin/ or lib/. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "archive.h"
#include "cli.h"
#include "cluster.h"
#include "commands.h"
#include "crypt.h"
#include "info.h"
#include "pgversion.h"
#include "repo.h"
#include "rotate.h"

static const char usage[] =
    "walkeep administers a walkeep repository.\n\n"
    "Usage:\n"
    "  walkeep [OPTION]... COMMAND [ARG]...\n\n"
    "Commands:\n"
    "  keygen FILE   write a new random repository key to FILE (mode 0600; an existing\n"
    "                file is never overwritten); point encrypt_key_file at it\n"
    "  init          create the repository and record the identity of the cluster in\n"
    "                pgdata (system identifier, WAL segment size, version) and the key\n"
    "  info [--json] the backups (and their status), the WAL per timeline with any gaps,\n"
    "                and the recovery window\n"
    "  verify [--json]  decode every object and check it; check every backup's WAL, the\n"
    "                WAL chain of each timeline and the history files (exit 1 on problems)\n"
    "  expire [--dry-run]  remove backups, dumps and WAL that the retention settings no\n"
    "                longer keep\n"
    "  check [--json] [--prometheus FILE] [--switch-wal] [--timeout D]\n"
    "        [--max-backup-age D] [--max-wal-age D] [--max-dump-age D] [--max-ready N]\n"
    "                monitoring: OK / WARNING / CRITICAL, exit 0 / 1 / 2 (3: unknown);\n"
    "                durations in PostgreSQL units (s, min, h, d)\n"
    "  drill [--backup L] [--target-...] [--sql FILE [--dbname DB]] [--json] [--keep]\n"
    "        [--timeout D]\n"
    "                restore into a temporary folder, start it, run checks, report;\n"
    "                the --sql queries run in database DB (default postgres)\n"
    "  key rotate --new-key-file FILE\n"
    "                make FILE (from keygen) the repository's key: everything written\n"
    "                from now on uses it and it alone reads the whole repository; no\n"
    "                WAL or backup object is rewritten. Then point encrypt_key_file at\n"
    "                FILE everywhere, and destroy the old key file\n\n"
    "Options:\n"
    "  --config FILE      configuration file (default $WALKEEP_CONFIG or\n"
    "                     /etc/walkeep/walkeep.conf)\n"
    "  --KEY=VALUE        any configuration key, e.g. --repo=/srv/walkeep --pgdata=DIR\n"
    "  --help, --version\n";

static const char *progname = "walkeep";

static int cmd_keygen(const wk_args *args, wk_error *err)
{
    if (args->count != 2)
        return wk_cli_bad_argument(progname, "keygen needs exactly one argument: the key file");
    if (wk_key_generate_file(args->items[1], err) != 0)
        return -1;
    wk_log(WK_LOG_INFO,
           "wrote a new key to \"%s\"; keep a copy of it outside the repository: "
           "without it nothing encrypted can be restored",
           args->items[1]);
    return 0;
}

static int cmd_info(const wk_config *cfg, const wk_args *args, wk_error *err)
{
    bool json = args->count == 2 && strcmp(args->items[1], "--json") == 0;
    wk_repo *repo = NULL;
    if (args->count > 2 || (args->count == 2 && !json))
        return wk_cli_bad_argument(progname, "info takes only --json");
    int rc = wk_repo_open(cfg, false, &repo, err);
    if (rc == 0)
        rc = wk_info_run(repo, json, err);
    wk_repo_free(repo);
    return rc;
}

static int cmd_init(const wk_config *cfg, const wk_args *args, wk_error *err)
{
    wk_repo *repo = NULL;
    wk_repo_meta identity, meta;
    bool created = false;
    int rc = -1;
    if (args->count != 1)
        return wk_cli_bad_argument(progname, "init takes no arguments");
    if (cfg->pgdata == NULL) {
        wk_error_set(err, WK_ERR_CONFIG, "no data directory configured");
        wk_error_hint(err, "set \"pgdata\", pass --pgdata=DIR, or set PGDATA");
        return -1;
    }
    char what[4200];
    snprintf(what, sizeof(what), "data directory \"%s\"", cfg->pgdata);
    if (wk_cluster_read_identity(cfg->pgdata, &identity, err) != 0 ||
        wk_pg_major_check(identity.pg_version, what, err) != 0 ||
        wk_repo_open(cfg, true, &repo, err) != 0 ||
        wk_repo_open_meta(repo, &identity, &meta, &created, err) != 0)
        goto out;
    wk_log(WK_LOG_INFO,
           "%s repository \"%s\" for system identifier %" PRIu64 " (PostgreSQL %d, %" PRIu32
           "-byte WAL segments, %s)",
           created ? "initialized" : "already initialized:", repo->location, meta.system_identifier,
           meta.pg_version, meta.seg_size, meta.encrypted ? "encrypted" : "not encrypted");
    /* A cluster past a failover or a restore: its timeline histories belong in the
     * repository too (restores follow them), whether or not the archiver got to them. */
    char waldir[4200];
    int stored = 0;
    snprintf(waldir, sizeof(waldir), "%s/pg_wal", cfg->pgdata);
    if (wk_archive_push_histories(repo, waldir, &stored, err) != 0)
        goto out;
    if (stored > 0)
        wk_log(WK_LOG_INFO, "stored %d timeline history file%s from \"%s\"", stored,
               stored == 1 ? "" : "s", waldir);
    rc = 0;
out:
    wk_repo_free(repo);
    return rc;
}

static int cmd_key(const wk_config *cfg, const wk_args *args, wk_error *err)
{
    const char *new_key_file = NULL;
    const wk_option options[] = {{"--new-key-file", WK_OPTION_STRING, &new_key_file, 0, 0}};
    wk_error uerr = {0};
    if (args->count < 2 || strcmp(args->items[1], "rotate") != 0)
        return wk_cli_bad_argument(progname, "key takes a command: rotate --new-key-file FILE");
    if (wk_cli_parse_options("key rotate", args, 2, options, 1, &uerr) != 0)
        return wk_cli_usage_error(progname, &uerr);
    if (new_key_file == NULL)
        return wk_cli_bad_argument(progname, "key rotate needs --new-key-file FILE (make one with "
                                             "walkeep keygen)");
    wk_repo *repo = NULL;
    wk_key *new_key = NULL;
    wk_rotate_result result;
    int rc = -1;
    if (wk_repo_open(cfg, false, &repo, err) != 0 ||
        wk_key_load(new_key_file, &new_key, err) != 0 ||
        wk_rotate_key(repo, new_key, &result, err) != 0)
        goto out;
    if (result.sealed > 0)
        wk_log(WK_LOG_INFO, "sealed %d records written before the repository had a key ring",
               result.sealed);
    if (result.ring.rewrapped == 0 && result.ring.removed == 0)
        wk_log(WK_LOG_INFO, "the repository's key was already rotated to \"%s\"", new_key_file);
    else
        wk_log(WK_LOG_INFO,
               "rotated repository \"%s\" to the key in \"%s\": %d keys now opened by it, %d "
               "wrappings by the old key removed; set encrypt_key_file to \"%s\" everywhere "
               "(archive_command and restore_command fail with the old key from now on), then "
               "destroy the old key file",
               repo->location, new_key_file, result.ring.rewrapped, result.ring.removed,
               new_key_file);
    rc = 0;
out:
    wk_key_free(new_key);
    wk_repo_free(repo);
    return rc;
}

int main(int argc, char **argv)
{
    wk_config cfg = {0};
    wk_args args = {0};
    wk_error err = {0};
    int rc = -1;

    int started = wk_cli_start(progname, usage, WK_LOG_INFO, argc, argv, &cfg, &args);
    if (started != 0)
        return started > 0 ? 0 : 1;
    const char *command = args.count > 0 ? args.items[0] : NULL;
    if (command == NULL)
        wk_cli_bad_argument(progname, "no command given");
    else if (strcmp(command, "keygen") == 0)
        rc = cmd_keygen(&args, &err);
    else if (strcmp(command, "init") == 0)
        rc = cmd_init(&cfg, &args, &err);
    else if (strcmp(command, "info") == 0)
        rc = cmd_info(&cfg, &args, &err);
    else if (strcmp(command, "verify") == 0)
        rc = wk_verify_command(&cfg, &args, &err);
    else if (strcmp(command, "expire") == 0)
        rc = wk_expire_command(&cfg, &args, &err);
    else if (strcmp(command, "check") == 0) {
        /* Monitoring systems read the status itself: 0 OK, 1 WARNING, 2 CRITICAL. */
        int status = wk_check_command(&cfg, &args, &err);
        if (status < 0 && err.code != WK_ERR_NONE)
            wk_log_error(&err);
        wk_config_free(&cfg);
        wk_args_free(&args);
        return status < 0 ? 3 : status;
    } else if (strcmp(command, "drill") == 0)
        rc = wk_drill_command(&cfg, &args, &err);
    else if (strcmp(command, "key") == 0)
        rc = cmd_key(&cfg, &args, &err);
    else {
        char what[256];
        snprintf(what, sizeof(what), "unknown command \"%.200s\"", command);
        wk_cli_bad_argument(progname, what);
    }
    if (rc < 0 && err.code != WK_ERR_NONE)
        wk_log_error(&err);
    wk_config_free(&cfg);
    wk_args_free(&args);
    return rc == 0 ? 0 : 1;
}
