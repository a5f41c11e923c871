/* walkeep-dump: logical dumps (pg_dump, pg_dumpall --globals-only) kept in the repository:
 * create, list, restore (psql / pg_restore fed from the repository) and verify. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backup.h"
#include "cli.h"
#include "dump.h"
#include "record.h"

static const char usage[] =
    "walkeep-dump keeps logical dumps of PostgreSQL databases in a walkeep repository.\n\n"
    "Usage:\n"
    "  walkeep-dump create [--dbname=DB] [--format=plain|custom|directory] [--jobs=N]\n"
    "                      [--label=LABEL]\n"
    "  walkeep-dump create --globals [--label=LABEL]\n"
    "  walkeep-dump create --all [--format=plain|custom|directory] [--jobs=N]\n"
    "  walkeep-dump list [--json]\n"
    "  walkeep-dump restore LABEL [--dbname=DB] [--create] [--clean] [--table=T]...\n"
    "                      [--jobs=N]\n"
    "  walkeep-dump verify LABEL\n\n"
    "Commands:\n"
    "  create    run pg_dump (custom format by default) and store its output as it is\n"
    "            produced; --globals stores pg_dumpall --globals-only (roles,\n"
    "            tablespaces); --all: the globals, then each database of the\n"
    "            configuration key dump_databases (default: every database that takes\n"
    "            connections, templates excepted), one dump each, going on after a\n"
    "            failure and failing at the end; prints each label (default: start time\n"
    "            and database)\n"
    "  list      the dumps, oldest first; --json: {\"dumps\": [...]}\n"
    "  restore   feed the dump to psql (plain, globals) or pg_restore (custom,\n"
    "            directory) connected to --dbname, else to the database the dump\n"
    "            was taken from. Options:\n"
    "            --create  create the database first (from template0): --dbname's,\n"
    "                      else the dump's own (custom and directory dumps: with\n"
    "                      its properties, by pg_restore --create). An existing\n"
    "                      database is refused; a failed restore drops the\n"
    "                      database it created\n"
    "            --clean   with --create: replace an existing database (dropped only\n"
    "                      once the restore into a new one worked); without (custom,\n"
    "                      directory): drop each object before restoring it\n"
    "            --table=T restore only table T (repeatable; custom, directory)\n"
    "            --jobs=N  pg_restore -j N (custom, directory; not one transaction)\n"
    "  verify    decode every object, check its fingerprint and size, and run\n"
    "            pg_restore --list over custom and directory dumps\n\n"
    "Options:\n"
    "  --config FILE          configuration file\n"
    "  --KEY=VALUE            any configuration key, e.g. --pg-conninfo='host=/run/postgresql'\n"
    "  --help, --version\n\n"
    "pg_dump, pg_dumpall, pg_restore and psql are run from pg_bindir (or PATH); the\n"
    "connection is pg_conninfo, with dbname replaced by --dbname.\n";

static const char *progname = "walkeep-dump";

typedef struct options {
    const char *dbname, *format, *label, *jobs;
    bool globals, all, create, clean, json;
    wk_option_list tables;
} options;

enum { CMD_CREATE, CMD_LIST, CMD_RESTORE, CMD_VERIFY };

static const wk_command commands[] = {
    [CMD_CREATE] = {"create", NULL},
    [CMD_LIST] = {"list", NULL},
    [CMD_RESTORE] = {"restore", "the label of a dump"},
    [CMD_VERIFY] = {"verify", "the label of a dump"},
};

#define ON(c) (1U << (c))

/* The command line: which command, its label, and the options of that command. */
static int parse_args(const wk_args *args, options *o, int *command, const char **label,
                      wk_error *err)
{
    const wk_option table[] = {
        {"--dbname", WK_OPTION_STRING, &o->dbname, 0, ON(CMD_CREATE) | ON(CMD_RESTORE)},
        {"--format", WK_OPTION_STRING, &o->format, 0, ON(CMD_CREATE)},
        {"--label", WK_OPTION_STRING, &o->label, 0, ON(CMD_CREATE)},
        {"--jobs", WK_OPTION_STRING, &o->jobs, 0, ON(CMD_CREATE) | ON(CMD_RESTORE)},
        {"--table", WK_OPTION_LIST, &o->tables, 0, ON(CMD_RESTORE)},
        {"--globals", WK_OPTION_FLAG, &o->globals, 0, ON(CMD_CREATE)},
        {"--all", WK_OPTION_FLAG, &o->all, 0, ON(CMD_CREATE)},
        {"--create", WK_OPTION_FLAG, &o->create, 0, ON(CMD_RESTORE)},
        {"--clean", WK_OPTION_FLAG, &o->clean, 0, ON(CMD_RESTORE)},
        {"--json", WK_OPTION_FLAG, &o->json, 0, ON(CMD_LIST)},
    };
    return wk_cli_parse_command(args, commands, sizeof(commands) / sizeof(commands[0]), table,
                                sizeof(table) / sizeof(table[0]), command, label, err);
}

static int parse_jobs(const char *text, int *out)
{
    char *end = NULL;
    long v;
    if (text == NULL) {
        *out = 1;
        return 0;
    }
    v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < 1 || v > 1024)
        return wk_cli_bad_argument(progname, "--jobs takes a number from 1 to 1024");
    *out = (int)v;
    return 0;
}

static int cmd_list(wk_repo *repo, bool json, wk_error *err)
{
    wk_dump_entry *entries = NULL;
    size_t count = 0;
    if (wk_dump_list(repo, &entries, &count, err) != 0)
        return -1;
    if (json) {
        char *text = wk_dump_list_json(entries, count, err);
        if (text == NULL) {
            wk_dump_list_free(entries, count);
            return -1;
        }
        fputs(text, stdout);
        free(text);
    } else {
        printf("%-36s %-16s %-9s %-22s %10s %10s\n", "LABEL", "DATABASE", "FORMAT", "START", "SIZE",
               "STORED");
        for (size_t i = 0; i < count; i++) {
            const wk_dump_entry *e = &entries[i];
            char start[40], size[32], stored[32];
            if (!e->has_record) {
                printf("%-36s %-16s %-9s %-22s %10s %10s\n", e->label, "-", "-", "incomplete", "-",
                       "-");
                continue;
            }
            wk_record_format_time(e->record.start_time, start, sizeof(start));
            wk_log_format_size(size, sizeof(size), e->record.bytes);
            wk_log_format_size(stored, sizeof(stored), e->record.stored_bytes);
            printf("%-36s %-16s %-9s %-22s %10s %10s\n", e->label,
                   e->record.format == WK_DUMP_GLOBALS ? "-" : e->record.database,
                   wk_dump_format_name(e->record.format), start, size, stored);
        }
    }
    wk_dump_list_free(entries, count);
    return 0;
}

/* One dump into the repository; prints its label. */
static int create_one(wk_repo *repo, wk_dump_create_options *copt, wk_error *err)
{
    struct timespec start;
    wk_dump_record record = {0};
    clock_gettime(CLOCK_MONOTONIC, &start);
    copt->progress = wk_cli_progress;
    copt->progress_arg = &start;
    int rc = wk_dump_create(repo, copt, &record, err);
    wk_cli_progress_finish(rc == 0);
    if (rc != 0)
        return -1;
    char size[32], stored[32];
    wk_log(WK_LOG_INFO, "dump \"%s\" of \"%s\" (%s) complete: %s stored as %s", record.label,
           record.database, wk_dump_format_name(record.format),
           wk_log_format_size(size, sizeof(size), record.bytes),
           wk_log_format_size(stored, sizeof(stored), record.stored_bytes));
    printf("%s\n", record.label);
    fflush(stdout);
    wk_dump_record_free(&record);
    return 0;
}

/* --all: the globals, then every database of dump_databases; a failure is reported and
 * the others still dumped, so that one bad database does not cost the others' dumps. */
static int create_all(const wk_config *cfg, wk_repo *repo, wk_dump_create_options copt,
                      wk_error *err)
{
    char **names = NULL, failed[512] = "";
    size_t count = 0, failures = 0, used = 0;
    if (wk_dump_database_names(cfg->pg_conninfo, cfg->dump_databases, &names, &count, err) != 0)
        return -1;
    for (size_t i = 0; i <= count; i++) {
        wk_dump_create_options one = copt;
        wk_error one_err = {0};
        if (i == 0) {
            one.format = WK_DUMP_GLOBALS;
            one.jobs = 1;
        } else {
            one.dbname = names[i - 1];
        }
        if (create_one(repo, &one, &one_err) == 0)
            continue;
        wk_log_error(&one_err);
        failures++;
        if (used < sizeof(failed))
            used += (size_t)snprintf(failed + used, sizeof(failed) - used, "%s%s",
                                     failures == 1 ? "" : ", ", i == 0 ? "globals" : names[i - 1]);
    }
    wk_dump_names_free(names, count);
    if (failures == 0)
        return 0;
    if (used >= sizeof(failed)) /* cut: say so */
        memcpy(failed + sizeof(failed) - 4, "...", 4);
    wk_error_set(err, WK_ERR_IO, "%zu of %zu dumps failed: %s", failures, count + 1, failed);
    wk_error_hint(err, "the errors above say why; the other dumps are stored");
    return -1;
}

/* create: pg_dump (or pg_dumpall --globals-only) into the repository; prints the label. */
static int cmd_create(const wk_config *cfg, wk_repo **repo, const options *o, int jobs,
                      wk_error *err)
{
    wk_dump_create_options copt = {.conninfo = cfg->pg_conninfo,
                                   .bindir = cfg->pg_bindir,
                                   .dbname = o->dbname,
                                   .format = WK_DUMP_CUSTOM,
                                   .jobs = jobs,
                                   .label = o->label};
    if (o->globals && o->all)
        return wk_error_set(err, WK_ERR_USAGE, "--globals and --all do not go together");
    if (o->all && (o->dbname != NULL || o->label != NULL))
        return wk_error_set(err, WK_ERR_USAGE,
                            "--all takes no --dbname or --label (each dump has its own label)");
    if (o->globals) {
        if (o->format != NULL || o->dbname != NULL || o->jobs != NULL)
            return wk_error_set(err, WK_ERR_USAGE,
                                "--globals takes no --format, --dbname or --jobs");
        copt.format = WK_DUMP_GLOBALS;
    } else if (o->format != NULL && (wk_dump_parse_format(o->format, &copt.format) != 0 ||
                                     copt.format == WK_DUMP_GLOBALS)) {
        return wk_error_set(err, WK_ERR_USAGE, "--format takes plain, custom or directory");
    }
    if (wk_repo_open(cfg, true, repo, err) != 0)
        return -1;
    return o->all ? create_all(cfg, *repo, copt, err) : create_one(*repo, &copt, err);
}

/* restore and verify: the dump label, fed to psql / pg_restore or checked. */
static int cmd_restore_or_verify(const wk_config *cfg, wk_repo **repo, int command,
                                 const char *label, const options *o, int jobs, wk_error *err)
{
    struct timespec start;
    wk_dump_restore_options ropt = {.conninfo = cfg->pg_conninfo,
                                    .bindir = cfg->pg_bindir,
                                    .dbname = o->dbname,
                                    .create = o->create,
                                    .clean = o->clean,
                                    .tables = o->tables.items,
                                    .table_count = o->tables.count,
                                    .jobs = jobs};
    if (wk_repo_open(cfg, false, repo, err) != 0)
        return -1;
    if (command == CMD_VERIFY) {
        wk_dump_verify_result result;
        if (wk_dump_verify(*repo, label, &ropt, &result, err) != 0)
            return -1;
        char size[32];
        wk_log(WK_LOG_INFO, "dump \"%s\" is intact: %zu object%s, %s%s", label, result.objects,
               result.objects == 1 ? "" : "s", wk_log_format_size(size, sizeof(size), result.bytes),
               result.listed ? ", pg_restore --list succeeded" : "");
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    ropt.progress = wk_cli_progress;
    ropt.progress_arg = &start;
    int rc = wk_dump_restore(*repo, label, &ropt, err);
    wk_cli_progress_finish(rc == 0);
    if (rc == 0)
        wk_log(WK_LOG_INFO, "dump \"%s\" restored", label);
    return rc;
}

int main(int argc, char **argv)
{
    wk_config cfg = {0};
    wk_args args = {0};
    wk_error err = {0};
    wk_repo *repo = NULL;
    options o = {0};
    int rc = -1, jobs = 1, command = -1;
    const char *label = NULL;

    int started = wk_cli_start(progname, usage, WK_LOG_INFO, argc, argv, &cfg, &args);
    if (started != 0)
        return started > 0 ? 0 : 1;
    /* A restore program that stops reading early must not kill us: the write fails with
     * EPIPE instead, and the rest of the stream is still checked. */
    signal(SIGPIPE, SIG_IGN);
    if (parse_args(&args, &o, &command, &label, &err) != 0)
        goto out;
    if (parse_jobs(o.jobs, &jobs) != 0) {
        rc = 1; /* reported */
        goto out;
    }
    if (command == CMD_CREATE)
        rc = cmd_create(&cfg, &repo, &o, jobs, &err);
    else if (command == CMD_LIST)
        rc = wk_repo_open(&cfg, false, &repo, &err) != 0 || cmd_list(repo, o.json, &err) != 0 ? -1
                                                                                              : 0;
    else
        rc = cmd_restore_or_verify(&cfg, &repo, command, label, &o, jobs, &err);
out:
    if (rc < 0 && err.code == WK_ERR_USAGE)
        wk_cli_usage_error(progname, &err);
    else if (rc < 0)
        wk_log_error(&err);
    wk_option_list_free(&o.tables);
    wk_repo_free(repo);
    wk_config_free(&cfg);
    wk_args_free(&args);
    return rc == 0 ? 0 : 1;
}
