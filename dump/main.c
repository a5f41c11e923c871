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
    const char *command, *label_arg;
    const char *dbname, *format, *label, *jobs;
    bool globals, create, clean, json;
    const char **tables;
    size_t table_count;
} options;

static int bad(const char *fmt, const char *what)
{
    char text[256];
    snprintf(text, sizeof(text), fmt, what);
    return wk_cli_bad_argument(progname, text);
}

static int parse_args(const wk_args *args, options *o)
{
    for (int i = 0; i < args->count; i++) {
        const char *item = args->items[i], *value = NULL;
        int m = 0;
        static const char *const valued[] = {"--dbname", "--format", "--label", "--jobs",
                                             "--table"};
        for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]) && m == 0; k++) {
            m = wk_cli_option_value(progname, args, &i, valued[k], &value);
            if (m < 0)
                return -1;
            if (m == 0)
                continue;
            switch (k) {
            case 0:
                o->dbname = value;
                break;
            case 1:
                o->format = value;
                break;
            case 2:
                o->label = value;
                break;
            case 3:
                o->jobs = value;
                break;
            default: {
                const char **grown = realloc(o->tables, (o->table_count + 1) * sizeof(*grown));
                if (grown == NULL)
                    return bad("%s", "out of memory");
                o->tables = grown;
                o->tables[o->table_count++] = value;
            }
            }
        }
        if (m > 0)
            continue;
        if (strcmp(item, "--globals") == 0)
            o->globals = true;
        else if (strcmp(item, "--create") == 0)
            o->create = true;
        else if (strcmp(item, "--clean") == 0)
            o->clean = true;
        else if (strcmp(item, "--json") == 0)
            o->json = true;
        else if (strncmp(item, "--", 2) == 0)
            return bad("unknown option \"%.200s\"", item);
        else if (o->command == NULL)
            o->command = item;
        else if (o->label_arg == NULL)
            o->label_arg = item;
        else
            return bad("unexpected argument \"%.200s\"", item);
    }
    return 0;
}

/* Refuses options that do not belong to the command. */
static int only(const options *o, bool dbname, bool format, bool label, bool jobs, bool tables,
                bool globals, bool restore_flags, bool json, bool label_arg)
{
    const char *extra = NULL;
    if (o->dbname != NULL && !dbname)
        extra = "--dbname";
    else if (o->format != NULL && !format)
        extra = "--format";
    else if (o->label != NULL && !label)
        extra = "--label";
    else if (o->jobs != NULL && !jobs)
        extra = "--jobs";
    else if (o->table_count > 0 && !tables)
        extra = "--table";
    else if (o->globals && !globals)
        extra = "--globals";
    else if ((o->create || o->clean) && !restore_flags)
        extra = o->create ? "--create" : "--clean";
    else if (o->json && !json)
        extra = "--json";
    if (extra != NULL) {
        char what[128];
        snprintf(what, sizeof(what), "%s does not apply to \"%s\"", extra, o->command);
        return wk_cli_bad_argument(progname, what);
    }
    if (label_arg && o->label_arg == NULL) {
        char what[128];
        snprintf(what, sizeof(what), "\"%s\" needs the label of a dump", o->command);
        return wk_cli_bad_argument(progname, what);
    }
    if (!label_arg && o->label_arg != NULL)
        return bad("unexpected argument \"%.200s\"", o->label_arg);
    return 0;
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
        return bad("%s", "--jobs takes a number from 1 to 1024");
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
        printf("%-36s %-16s %-9s %-22s %10s %10s\n", "LABEL", "DATABASE", "FORMAT", "START",
               "SIZE", "STORED");
        for (size_t i = 0; i < count; i++) {
            const wk_dump_entry *e = &entries[i];
            char start[40], size[32], stored[32];
            if (!e->has_record) {
                printf("%-36s %-16s %-9s %-22s %10s %10s\n", e->label, "-", "-", "incomplete",
                       "-", "-");
                continue;
            }
            wk_backup_format_time(e->record.start_time, start, sizeof(start));
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

int main(int argc, char **argv)
{
    wk_config cfg = {0};
    wk_args args = {0};
    wk_error err = {0};
    wk_repo *repo = NULL;
    options o = {0};
    int status = 1, jobs = 1;

    int started = wk_cli_start(progname, usage, WK_LOG_INFO, argc, argv, &cfg, &args);
    if (started != 0)
        return started > 0 ? 0 : 1;
    /* A restore program that stops reading early must not kill us: the write fails with
     * EPIPE instead, and the rest of the stream is still checked. */
    signal(SIGPIPE, SIG_IGN);
    if (parse_args(&args, &o) != 0)
        goto out;
    if (o.command == NULL) {
        wk_cli_bad_argument(progname, "a command is needed: create, list, restore or verify");
        goto out;
    }
    if (parse_jobs(o.jobs, &jobs) != 0)
        goto out;

    wk_dump_restore_options ropt = {.conninfo = cfg.pg_conninfo, .bindir = cfg.pg_bindir,
                                    .dbname = o.dbname, .create = o.create, .clean = o.clean,
                                    .tables = o.tables, .table_count = o.table_count,
                                    .jobs = jobs};
    struct timespec start;
    if (strcmp(o.command, "create") == 0) {
        wk_dump_create_options copt = {.conninfo = cfg.pg_conninfo, .bindir = cfg.pg_bindir,
                                       .dbname = o.dbname, .format = WK_DUMP_CUSTOM,
                                       .jobs = jobs, .label = o.label,
                                       .progress = wk_cli_progress, .progress_arg = &start};
        wk_dump_record record = {0};
        if (only(&o, true, true, true, true, false, true, false, false, false) != 0)
            goto out;
        if (o.globals) {
            if (o.format != NULL || o.dbname != NULL || o.jobs != NULL) {
                wk_cli_bad_argument(progname, "--globals takes no --format, --dbname or --jobs");
                goto out;
            }
            copt.format = WK_DUMP_GLOBALS;
        } else if (o.format != NULL &&
                   (wk_dump_parse_format(o.format, &copt.format) != 0 ||
                    copt.format == WK_DUMP_GLOBALS)) {
            wk_cli_bad_argument(progname, "--format takes plain, custom or directory");
            goto out;
        }
        clock_gettime(CLOCK_MONOTONIC, &start);
        int rc = wk_repo_open(&cfg, true, &repo, &err) != 0 ||
                         wk_dump_create(repo, &copt, &record, &err) != 0
                     ? -1
                     : 0;
        wk_cli_progress_end();
        if (rc != 0)
            goto report;
        wk_log(WK_LOG_INFO, "dump \"%s\" of \"%s\" (%s) complete: %llu bytes stored as %llu",
               record.label, record.database, wk_dump_format_name(record.format),
               (unsigned long long)record.bytes, (unsigned long long)record.stored_bytes);
        printf("%s\n", record.label);
        wk_dump_record_free(&record);
    } else if (strcmp(o.command, "list") == 0) {
        if (only(&o, false, false, false, false, false, false, false, true, false) != 0)
            goto out;
        if (wk_repo_open(&cfg, false, &repo, &err) != 0 || cmd_list(repo, o.json, &err) != 0)
            goto report;
    } else if (strcmp(o.command, "restore") == 0) {
        if (only(&o, true, false, false, true, true, false, true, false, true) != 0)
            goto out;
        clock_gettime(CLOCK_MONOTONIC, &start);
        ropt.progress = wk_cli_progress;
        ropt.progress_arg = &start;
        int rc = wk_repo_open(&cfg, false, &repo, &err) != 0 ||
                         wk_dump_restore(repo, o.label_arg, &ropt, &err) != 0
                     ? -1
                     : 0;
        wk_cli_progress_end();
        if (rc != 0)
            goto report;
        wk_log(WK_LOG_INFO, "dump \"%s\" restored", o.label_arg);
    } else if (strcmp(o.command, "verify") == 0) {
        wk_dump_verify_result result;
        if (only(&o, false, false, false, false, false, false, false, false, true) != 0)
            goto out;
        if (wk_repo_open(&cfg, false, &repo, &err) != 0 ||
            wk_dump_verify(repo, o.label_arg, &ropt, &result, &err) != 0)
            goto report;
        wk_log(WK_LOG_INFO, "dump \"%s\" is intact: %zu object%s, %llu bytes%s", o.label_arg,
               result.objects, result.objects == 1 ? "" : "s", (unsigned long long)result.bytes,
               result.listed ? ", pg_restore --list succeeded" : "");
    } else {
        bad("unknown command \"%.100s\"", o.command);
        goto out;
    }
    status = 0;
    goto out;
report:
    wk_log_error(&err);
out:
    free(o.tables);
    wk_repo_free(repo);
    wk_config_free(&cfg);
    wk_args_free(&args);
    return status;
}
