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
    "  walkeep-dump list [--json]\n"
    "  walkeep-dump restore LABEL [--dbname=DB] [--create] [--clean] [--table=T]...\n"
    "                      [--jobs=N]\n"
    "  walkeep-dump verify LABEL\n\n"
    "Commands:\n"
    "  create    run pg_dump (custom format by default) and store its output as it is\n"
    "            produced; --globals stores pg_dumpall --globals-only (roles,\n"
    "            tablespaces); prints the label (default: start time and database)\n"
    "  list      the dumps, oldest first; --json: {\"dumps\": [...]}\n"
    "  restore   feed the dump to psql (plain, globals) or pg_restore (custom,\n"
    "            directory); --table needs a custom or directory dump. Without\n"
    "            --dbname it restores into the database the dump was taken from\n"
    "            (with --create: pg_restore connects to pg_conninfo's database)\n"
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
    bool globals, create, clean, json;
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

static void human(uint64_t n, char *buf, size_t size)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, size, "%.1f %s", v, units[u]);
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
            human(e->record.bytes, size, sizeof(size));
            human(e->record.stored_bytes, stored, sizeof(stored));
            printf("%-36s %-16s %-9s %-22s %10s %10s\n", e->label,
                   e->record.format == WK_DUMP_GLOBALS ? "-" : e->record.database,
                   wk_dump_format_name(e->record.format), start, size, stored);
        }
    }
    wk_dump_list_free(entries, count);
    return 0;
}

/* create: pg_dump (or pg_dumpall --globals-only) into the repository; prints the label. */
static int cmd_create(const wk_config *cfg, wk_repo **repo, const options *o, int jobs,
                      wk_error *err)
{
    struct timespec start;
    wk_dump_create_options copt = {.conninfo = cfg->pg_conninfo,
                                   .bindir = cfg->pg_bindir,
                                   .dbname = o->dbname,
                                   .format = WK_DUMP_CUSTOM,
                                   .jobs = jobs,
                                   .label = o->label,
                                   .progress = wk_cli_progress,
                                   .progress_arg = &start};
    wk_dump_record record = {0};
    if (o->globals) {
        if (o->format != NULL || o->dbname != NULL || o->jobs != NULL)
            return wk_error_set(err, WK_ERR_USAGE,
                                "--globals takes no --format, --dbname or --jobs");
        copt.format = WK_DUMP_GLOBALS;
    } else if (o->format != NULL && (wk_dump_parse_format(o->format, &copt.format) != 0 ||
                                     copt.format == WK_DUMP_GLOBALS)) {
        return wk_error_set(err, WK_ERR_USAGE, "--format takes plain, custom or directory");
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    int rc =
        wk_repo_open(cfg, true, repo, err) != 0 || wk_dump_create(*repo, &copt, &record, err) != 0
            ? -1
            : 0;
    wk_cli_progress_end();
    if (rc != 0)
        return -1;
    wk_log(WK_LOG_INFO, "dump \"%s\" of \"%s\" (%s) complete: %llu bytes stored as %llu",
           record.label, record.database, wk_dump_format_name(record.format),
           (unsigned long long)record.bytes, (unsigned long long)record.stored_bytes);
    printf("%s\n", record.label);
    wk_dump_record_free(&record);
    return 0;
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
        wk_log(WK_LOG_INFO, "dump \"%s\" is intact: %zu object%s, %llu bytes%s", label,
               result.objects, result.objects == 1 ? "" : "s", (unsigned long long)result.bytes,
               result.listed ? ", pg_restore --list succeeded" : "");
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    ropt.progress = wk_cli_progress;
    ropt.progress_arg = &start;
    int rc = wk_dump_restore(*repo, label, &ropt, err);
    wk_cli_progress_end();
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
