/* check: facts about a repository and its server, verdicts, and their renderings. */
#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "backup.h"
#include "cluster.h"
#include "dump.h"
#include "json.h"
#include "pg.h"
#include "pgversion.h"
#include "storage.h"
#include "record.h"

#define MS_PER_S 1000

const char *wk_check_status_name(wk_check_status s)
{
    switch (s) {
    case WK_CHECK_OK:
        return "OK";
    case WK_CHECK_WARNING:
        return "WARNING";
    case WK_CHECK_CRITICAL:
        return "CRITICAL";
    }
    return "CRITICAL";
}

wk_check_status wk_check_worse(wk_check_status a, wk_check_status b)
{
    return a > b ? a : b;
}

void wk_check_thresholds_default(wk_check_thresholds *t)
{
    t->max_backup_age_ms = INT64_C(48) * 3600 * MS_PER_S;
    t->max_wal_age_ms = INT64_C(3600) * MS_PER_S;
    t->max_dump_age_ms = INT64_C(48) * 3600 * MS_PER_S;
    t->max_ready = 10;
    t->shrink_percent = 50;
}

/* ---- verdicts ------------------------------------------------------------------------ */

/* "2d 3h", "1h 5min", "4min 2s", "12s". */
static void format_age(char *buf, size_t size, int64_t seconds)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds >= 86400)
        snprintf(buf, size, "%" PRId64 "d %" PRId64 "h", seconds / 86400, seconds % 86400 / 3600);
    else if (seconds >= 3600)
        snprintf(buf, size, "%" PRId64 "h %" PRId64 "min", seconds / 3600, seconds % 3600 / 60);
    else if (seconds >= 60)
        snprintf(buf, size, "%" PRId64 "min %" PRId64 "s", seconds / 60, seconds % 60);
    else
        snprintf(buf, size, "%" PRId64 "s", seconds);
}

/* A limit in milliseconds, as the user would write it: the largest PostgreSQL unit that
 * divides it ("48h", "90s", "250ms"). */
static void format_limit(char *buf, size_t size, int64_t ms)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{INT64_C(86400000), "d"},
                 {INT64_C(3600000), "h"},
                 {INT64_C(60000), "min"},
                 {INT64_C(1000), "s"}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, size, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
            return;
        }
    }
    snprintf(buf, size, "%" PRId64 "ms", ms);
}

static wk_check_item *add_item(wk_check_report *r, const char *name, wk_check_status status,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static wk_check_item *add_item(wk_check_report *r, const char *name, wk_check_status status,
                               const char *fmt, ...)
{
    wk_check_item *item = &r->items[r->count++];
    va_list ap;
    memset(item, 0, sizeof(*item));
    item->name = name;
    item->status = status;
    va_start(ap, fmt);
    vsnprintf(item->message, sizeof(item->message), fmt, ap);
    va_end(ap);
    r->status = wk_check_worse(r->status, status);
    return item;
}

static void add_value(wk_check_item *item, const char *key, int64_t value)
{
    if (item->value_count < WK_CHECK_VALUES_MAX) {
        item->values[item->value_count].key = key;
        item->values[item->value_count].value = value;
        item->value_count++;
    }
}

/* Seconds from t to now, never negative. */
static int64_t age_of(time_t now, double t)
{
    double d = (double)now - t;
    return d > 0 ? (int64_t)d : 0;
}

static void check_repository(const wk_check_facts *f, wk_check_report *r)
{
    if (!f->repo_ok) {
        add_item(r, "repository", WK_CHECK_CRITICAL, "%s", f->repo_error);
    } else if (f->server_sysid_known && f->server_system_identifier != f->repo_system_identifier) {
        add_item(r, "repository", WK_CHECK_CRITICAL,
                 "the repository belongs to another cluster: system identifier %" PRIu64
                 ", the server's is %" PRIu64,
                 f->repo_system_identifier, f->server_system_identifier);
    } else if (f->server_sysid_known) {
        add_item(r, "repository", WK_CHECK_OK,
                 "reachable, system identifier %" PRIu64 " matches the server",
                 f->repo_system_identifier);
    } else {
        add_item(r, "repository", WK_CHECK_WARNING,
                 "reachable (system identifier %" PRIu64 "), but the server's is unknown: %s",
                 f->repo_system_identifier,
                 f->server_error[0] != '\0' ? f->server_error : "not read");
    }
}

/* The server's major version, when it could be asked: walkeep serves 15 to 18 only. */
static void check_postgresql(const wk_check_facts *f, wk_check_report *r)
{
    wk_error e = {0};
    if (f->server_version_num == 0)
        return;
    int major = wk_pg_major_of_num(f->server_version_num);
    if (wk_pg_major_check(major, "the server", &e) != 0) {
        add_item(r, "postgresql", WK_CHECK_CRITICAL, "%s; %s", e.message, e.hint);
        return;
    }
    wk_check_item *item =
        add_item(r, "postgresql", WK_CHECK_OK, "PostgreSQL %s (supported: %d to %d)",
                 f->server_version, WK_PG_MAJOR_MIN, WK_PG_MAJOR_MAX);
    add_value(item, "version_num", f->server_version_num);
}

/* Whether newest is under percent % of previous (an emptied table, a wrong database). */
static bool shrank(uint64_t newest, uint64_t previous, int percent)
{
    return percent > 0 && previous > 0 &&
           (long double)newest * 100.0L < (long double)previous * (long double)percent;
}

/* "; WHAT is only 31% of the one before (1.2 MiB, before 3.9 MiB)". */
static void describe_shrink(char *buf, size_t size, const char *what, uint64_t newest,
                            uint64_t previous)
{
    char now_text[32], before_text[32];
    wk_log_format_size(now_text, sizeof(now_text), newest);
    wk_log_format_size(before_text, sizeof(before_text), previous);
    snprintf(buf, size, "; %s is only %u%% of the one before (%s, before %s)", what,
             (unsigned)((long double)newest * 100.0L / (long double)previous), now_text,
             before_text);
}

static void check_backup(const wk_check_facts *f, const wk_check_thresholds *t, wk_check_report *r)
{
    char age[32], limit[32], when[40];
    if (!f->repo_ok) {
        add_item(r, "backup", WK_CHECK_CRITICAL, "unknown: the repository cannot be read");
        return;
    }
    if (f->backups_complete == 0) {
        add_item(r, "backup", WK_CHECK_CRITICAL, "no complete base backup in the repository");
        return;
    }
    int64_t seconds = age_of(f->now, (double)f->backup_newest_stop);
    int64_t ms = seconds * MS_PER_S;
    wk_check_status status = WK_CHECK_OK;
    if (t->max_backup_age_ms <= INT64_MAX / 2 && ms > 2 * t->max_backup_age_ms)
        status = WK_CHECK_CRITICAL;
    else if (ms > t->max_backup_age_ms)
        status = WK_CHECK_WARNING;
    format_age(age, sizeof(age), seconds);
    format_limit(limit, sizeof(limit), t->max_backup_age_ms);
    wk_record_format_time(f->backup_newest_stop, when, sizeof(when));
    char shrink[160] = "";
    if (f->backup_has_previous &&
        shrank(f->backup_newest_bytes, f->backup_previous_bytes, t->shrink_percent)) {
        status = wk_check_worse(status, WK_CHECK_WARNING);
        describe_shrink(shrink, sizeof(shrink), "it", f->backup_newest_bytes,
                        f->backup_previous_bytes);
    }
    wk_check_item *item = add_item(r, "backup", status,
                                   "newest complete backup finished %s ago (%s; limit %s), "
                                   "%zu complete%s",
                                   age, when, limit, f->backups_complete, shrink);
    add_value(item, "age_seconds", seconds);
    add_value(item, "bytes", (int64_t)f->backup_newest_bytes);
    add_value(item, "complete", (int64_t)f->backups_complete);
}

static void check_archiver(const wk_check_facts *f, wk_check_report *r)
{
    char when[40];
    wk_check_item *item;
    if (!f->server_ok) {
        add_item(r, "archiver", WK_CHECK_WARNING, "unknown: %s", f->server_error);
        return;
    }
    if (f->server_in_recovery) {
        /* A standby's pg_stat_archiver and archive_mode say nothing of the primary's. */
        add_item(r, "archiver", WK_CHECK_WARNING,
                 "the server is a standby (in recovery): the archiving to watch is the "
                 "primary's; point walkeep check's pg_conninfo at the primary");
        return;
    }
    if (f->archive_mode_off) {
        add_item(r, "archiver", WK_CHECK_CRITICAL, "archive_mode is off: no WAL is archived");
        return;
    }
    if (f->archive_unconfigured) {
        add_item(r, "archiver", WK_CHECK_CRITICAL,
                 "archive_mode is on, but archive_command and archive_library are empty: no "
                 "WAL is archived");
        return;
    }
    if (f->archive_both_set && f->server_version_num >= 160000) {
        /* PostgreSQL 16 and later: the archiver stops with an error and archives nothing. */
        add_item(r, "archiver", WK_CHECK_CRITICAL,
                 "archive_command and archive_library are both set: PostgreSQL 16 and later "
                 "archive nothing; set archive_library = ''");
        return;
    }
    if (f->archive_both_set) {
        add_item(r, "archiver", WK_CHECK_CRITICAL,
                 "archive_library is set, so PostgreSQL 15 ignores archive_command and no WAL "
                 "reaches walkeep; set archive_library = ''");
        return;
    }
    if (f->last_failed_time > 0 && f->last_failed_time > f->last_archived_time) {
        wk_record_format_time((time_t)f->last_failed_time, when, sizeof(when));
        item = add_item(r, "archiver", WK_CHECK_CRITICAL,
                        "archiving is failing: \"%s\" failed at %s, after the last success "
                        "(%" PRId64 " failures)",
                        f->last_failed_wal, when, f->failed_count);
    } else if (f->failed_count > 0) {
        wk_record_format_time((time_t)f->last_failed_time, when, sizeof(when));
        item = add_item(r, "archiver", WK_CHECK_WARNING,
                        "archiving recovered, but failed %" PRId64
                        " times (last \"%s\" at %s); clear with "
                        "SELECT pg_stat_reset_shared('archiver')",
                        f->failed_count, f->last_failed_wal, when);
    } else {
        item = add_item(r, "archiver", WK_CHECK_OK, "no archiving failures");
    }
    add_value(item, "failed_count", f->failed_count);
}

static void check_wal(const wk_check_facts *f, const wk_check_thresholds *t, wk_check_report *r)
{
    char age[32], limit[32];
    if (!f->server_ok) {
        add_item(r, "wal", WK_CHECK_WARNING, "unknown: %s", f->server_error);
        return;
    }
    if (f->last_archived_time <= 0) {
        /* A failure would show in the archiver check, a backlog in the ready check. */
        add_item(r, "wal", WK_CHECK_OK, "nothing archived since the statistics were reset");
        return;
    }
    int64_t seconds = age_of(f->now, f->last_archived_time);
    format_age(age, sizeof(age), seconds);
    format_limit(limit, sizeof(limit), t->max_wal_age_ms);
    /* WAL written since: the current segment is not the last archived one (a .backup
     * file's name starts with its segment's; after an idle switch the current position
     * is at the end of the last archived segment, and so is its name). */
    bool written_since =
        f->current_wal[0] != '\0' && strncmp(f->current_wal, f->last_archived_wal, 24) != 0;
    wk_check_item *item;
    if (seconds * MS_PER_S > t->max_wal_age_ms && written_since)
        item = add_item(r, "wal", WK_CHECK_WARNING,
                        "newest archived WAL \"%s\" is %s old (limit %s) and WAL has been written "
                        "since (now in \"%s\")",
                        f->last_archived_wal, age, limit, f->current_wal);
    else
        item = add_item(r, "wal", WK_CHECK_OK, "newest archived WAL \"%s\", %s ago",
                        f->last_archived_wal, age);
    add_value(item, "age_seconds", seconds);
}

static void check_ready(const wk_check_facts *f, const wk_check_thresholds *t, wk_check_report *r)
{
    if (!f->ready_known) {
        add_item(r, "ready", WK_CHECK_WARNING, "unknown: %s", f->ready_error);
        return;
    }
    wk_check_status status = WK_CHECK_OK;
    if (t->max_ready <= INT64_MAX / 10 && f->ready_count > 10 * t->max_ready)
        status = WK_CHECK_CRITICAL;
    else if (f->ready_count > t->max_ready)
        status = WK_CHECK_WARNING;
    wk_check_item *item = add_item(
        r, "ready", status, "%" PRId64 " WAL file%s waiting to be archived (limit %" PRId64 ")",
        f->ready_count, f->ready_count == 1 ? "" : "s", t->max_ready);
    add_value(item, "ready_files", f->ready_count);
}

static void check_dump(const wk_check_facts *f, const wk_check_thresholds *t, wk_check_report *r)
{
    char age[32], limit[32];
    if (!f->repo_ok)
        return;
    if (f->dumps_complete == 0) {
        if (f->dumps_expected)
            add_item(r, "dump", WK_CHECK_WARNING,
                     "no dump in the repository, although retention for dumps is configured");
        return;
    }
    int64_t seconds = age_of(f->now, (double)f->dump_newest_end);
    format_age(age, sizeof(age), seconds);
    format_limit(limit, sizeof(limit), t->max_dump_age_ms);
    /* The group that shrank most, named; how many shrank. */
    size_t shrunk = 0, worst = 0;
    for (size_t i = 0; i < f->dump_group_count; i++) {
        const wk_check_dump_group *g = &f->dump_groups[i];
        if (!g->has_previous || !shrank(g->newest_bytes, g->previous_bytes, t->shrink_percent))
            continue;
        const wk_check_dump_group *w = &f->dump_groups[worst];
        if (shrunk == 0 || (long double)g->newest_bytes * w->previous_bytes <
                               (long double)w->newest_bytes * g->previous_bytes)
            worst = i;
        shrunk++;
    }
    char shrink[WK_CHECK_DATABASE_MAX + 300] = "", what[WK_CHECK_DATABASE_MAX + 60];
    if (shrunk > 0) {
        const wk_check_dump_group *w = &f->dump_groups[worst];
        if (w->globals)
            snprintf(what, sizeof(what), "the newest globals dump");
        else
            snprintf(what, sizeof(what), "the newest %s dump of \"%s\"", w->format, w->database);
        describe_shrink(shrink, sizeof(shrink), what, w->newest_bytes, w->previous_bytes);
        if (shrunk > 1) {
            size_t used = strlen(shrink);
            snprintf(shrink + used, sizeof(shrink) - used, " and %zu more shrank", shrunk - 1);
        }
    }
    if (f->dump_groups_full) {
        size_t used = strlen(shrink);
        snprintf(shrink + used, sizeof(shrink) - used,
                 "; the sizes of the first %d databases and formats only are compared",
                 WK_CHECK_DUMP_GROUPS_MAX);
    }
    wk_check_status status =
        seconds * MS_PER_S > t->max_dump_age_ms || shrunk > 0 ? WK_CHECK_WARNING : WK_CHECK_OK;
    wk_check_item *item = add_item(
        r, "dump", status, "newest dump finished %s ago (limit %s), %zu in the repository%s", age,
        limit, f->dumps_complete, shrink);
    add_value(item, "age_seconds", seconds);
    add_value(item, "shrunk", (int64_t)shrunk);
}

static void check_history(const wk_check_facts *f, wk_check_report *r)
{
    if (!f->history_known)
        return;
    if (f->history_missing) {
        wk_check_item *item = add_item(r, "history", WK_CHECK_WARNING,
                                       "the current timeline's history (%08X.history) is not in "
                                       "the repository: a restore cannot follow timeline %u; "
                                       "take a base backup (it stores it)",
                                       f->timeline, f->timeline);
        add_value(item, "timeline", f->timeline);
    } else {
        wk_check_item *item =
            add_item(r, "history", WK_CHECK_OK, "the history of timeline %u is in the repository",
                     f->timeline);
        add_value(item, "timeline", f->timeline);
    }
}

static void check_switch(const wk_check_facts *f, wk_check_report *r)
{
    if (!f->switch_requested)
        return;
    if (f->switch_ok) {
        wk_check_item *item =
            add_item(r, "switch_wal", WK_CHECK_OK, "\"%s\" reached the repository in %.1f s",
                     f->switch_wal, f->switch_seconds);
        add_value(item, "milliseconds", (int64_t)(f->switch_seconds * 1000.0));
    } else {
        add_item(r, "switch_wal", WK_CHECK_CRITICAL, "%s", f->switch_error);
    }
}

void wk_check_evaluate(const wk_check_facts *facts, const wk_check_thresholds *t,
                       wk_check_report *out)
{
    memset(out, 0, sizeof(*out));
    check_repository(facts, out);
    check_postgresql(facts, out);
    check_backup(facts, t, out);
    check_archiver(facts, out);
    check_wal(facts, t, out);
    check_ready(facts, t, out);
    check_history(facts, out);
    check_dump(facts, t, out);
    check_switch(facts, out);
}

/* ---- renderings ---------------------------------------------------------------------- */

char *wk_check_report_text(const wk_check_report *report)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return NULL;
    for (size_t i = 0; i < report->count; i++)
        fprintf(f, "%s: %s: %s\n", wk_check_status_name(report->items[i].status),
                report->items[i].name, report->items[i].message);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

char *wk_check_report_json(const wk_check_report *report, wk_error *err)
{
    wk_json_writer *w = wk_json_writer_new();
    wk_json_begin_object(w);
    wk_json_kv_string(w, "status", wk_check_status_name(report->status));
    wk_json_key(w, "checks");
    wk_json_begin_array(w);
    for (size_t i = 0; i < report->count; i++) {
        const wk_check_item *item = &report->items[i];
        wk_json_begin_object(w);
        wk_json_kv_string(w, "name", item->name);
        wk_json_kv_string(w, "status", wk_check_status_name(item->status));
        wk_json_kv_string(w, "message", item->message);
        for (size_t j = 0; j < item->value_count; j++)
            wk_json_kv_int(w, item->values[j].key, item->values[j].value);
        wk_json_end_object(w);
    }
    wk_json_end_array(w);
    wk_json_end_object(w);
    char *doc = wk_json_writer_finish(w, err);
    wk_json_writer_free(w);
    return doc;
}

static void metric(FILE *f, const char *name, const char *type, const char *help, int64_t value)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %" PRId64 "\n", name, help, name, type, name, value);
}

/* The label set of a dump group: {database="shop",format="custom"} or {globals="1"}, the
 * name escaped as the text format wants (backslash, double quote, newline). */
static void group_labels(FILE *f, const wk_check_dump_group *g)
{
    if (g->globals) {
        fputs("{globals=\"1\"}", f);
        return;
    }
    fputs("{database=\"", f);
    for (const char *p = g->database; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            fputc('\\', f);
        if (*p == '\n')
            fputs("\\n", f);
        else
            fputc(*p, f);
    }
    fprintf(f, "\",format=\"%s\"}", g->format);
}

/* Per database and format (and for the globals): the newest dump's age, its size and
 * its ratio to the one before, for alerts on a database no longer dumped or a dump that
 * shrank. */
static void dump_metrics(FILE *f, const wk_check_facts *fa)
{
    fputs("# HELP walkeep_dump_age_seconds Seconds since the newest logical dump of each "
          "database finished.\n"
          "# TYPE walkeep_dump_age_seconds gauge\n",
          f);
    for (size_t i = 0; i < fa->dump_group_count; i++) {
        fputs("walkeep_dump_age_seconds", f);
        group_labels(f, &fa->dump_groups[i]);
        fprintf(f, " %" PRId64 "\n", age_of(fa->now, (double)fa->dump_groups[i].newest_end));
    }
    fputs("# HELP walkeep_dump_newest_size_bytes Size of the newest logical dump of each "
          "database (plaintext bytes).\n"
          "# TYPE walkeep_dump_newest_size_bytes gauge\n",
          f);
    for (size_t i = 0; i < fa->dump_group_count; i++) {
        fputs("walkeep_dump_newest_size_bytes", f);
        group_labels(f, &fa->dump_groups[i]);
        fprintf(f, " %" PRIu64 "\n", fa->dump_groups[i].newest_bytes);
    }
    fputs("# HELP walkeep_dump_newest_size_ratio Size of the newest logical dump of each "
          "database divided by the size of the one before it.\n"
          "# TYPE walkeep_dump_newest_size_ratio gauge\n",
          f);
    for (size_t i = 0; i < fa->dump_group_count; i++) {
        const wk_check_dump_group *g = &fa->dump_groups[i];
        if (!g->has_previous || g->previous_bytes == 0)
            continue;
        fputs("walkeep_dump_newest_size_ratio", f);
        group_labels(f, g);
        fprintf(f, " %.4f\n", (double)g->newest_bytes / (double)g->previous_bytes);
    }
}

char *wk_check_prometheus(const wk_check_facts *fa, const wk_check_report *report, wk_error *err)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    metric(f, "walkeep_up", "gauge",
           "Whether the repository and the server could both be read (1) or not (0).",
           fa->repo_ok && fa->server_ok ? 1 : 0);
    metric(f, "walkeep_check_status", "gauge",
           "Overall status of walkeep check: 0 OK, 1 WARNING, 2 CRITICAL.", report->status);
    if (fa->repo_ok) {
        metric(f, "walkeep_backup_complete_count", "gauge",
               "Complete base backups (record and WAL) in the repository.",
               (int64_t)fa->backups_complete);
    }
    if (fa->repo_ok && fa->backups_complete > 0) {
        metric(f, "walkeep_backup_newest_age_seconds", "gauge",
               "Seconds since the newest complete base backup finished.",
               age_of(fa->now, (double)fa->backup_newest_stop));
        metric(f, "walkeep_backup_newest_size_bytes", "gauge",
               "Size of the newest complete base backup (plaintext bytes).",
               (int64_t)fa->backup_newest_bytes);
        metric(f, "walkeep_recovery_window_start_seconds", "gauge",
               "Unix time of the earliest point one can restore to (end of the oldest "
               "complete backup).",
               (int64_t)fa->backup_oldest_stop);
    }
    if (fa->server_ok && fa->last_archived_time > 0) {
        metric(f, "walkeep_wal_newest_archived_age_seconds", "gauge",
               "Seconds since the server last archived a WAL file (pg_stat_archiver).",
               age_of(fa->now, fa->last_archived_time));
        metric(f, "walkeep_recovery_window_end_seconds", "gauge",
               "Unix time of the last successful archiving (pg_stat_archiver).",
               (int64_t)fa->last_archived_time);
    }
    if (fa->server_ok)
        metric(f, "walkeep_archive_failed_total", "counter",
               "Failed archiving attempts since the statistics were reset (pg_stat_archiver).",
               fa->failed_count);
    if (fa->ready_known)
        metric(f, "walkeep_archive_ready_files", "gauge",
               "WAL files waiting to be archived (.ready files).", fa->ready_count);
    if (fa->repo_bytes_known)
        metric(f, "walkeep_repository_size_bytes", "gauge",
               "Sum of the sizes of every object in the repository.", (int64_t)fa->repo_bytes);
    if (fa->repo_ok && fa->backup_has_previous && fa->backup_previous_bytes > 0) {
        fprintf(f,
                "# HELP walkeep_backup_newest_size_ratio Size of the newest complete base "
                "backup divided by the size of the one before it.\n"
                "# TYPE walkeep_backup_newest_size_ratio gauge\n"
                "walkeep_backup_newest_size_ratio %.4f\n",
                (double)fa->backup_newest_bytes / (double)fa->backup_previous_bytes);
    }
    if (fa->repo_ok && fa->dumps_complete > 0) {
        metric(f, "walkeep_dump_newest_age_seconds", "gauge",
               "Seconds since the newest logical dump finished.",
               age_of(fa->now, (double)fa->dump_newest_end));
        dump_metrics(f, fa);
    }
    if (fclose(f) != 0) {
        free(text);
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return text;
}

/* ---- gathering ----------------------------------------------------------------------- */

int wk_check_count_ready(const char *dir, int64_t *count, wk_error *err)
{
    DIR *d = opendir(dir);
    int64_t n = 0;
    if (d == NULL)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not open the folder \"%s\"", dir);
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL)
            break;
        size_t len = strlen(e->d_name);
        if (len > 6 && strcmp(e->d_name + len - 6, ".ready") == 0)
            n++;
    }
    int saved = errno;
    closedir(d);
    if (saved != 0)
        return wk_error_sys(err, WK_ERR_IO, saved, "could not read the folder \"%s\"", dir);
    *count = n;
    return 0;
}

/* Repository size: every object, folder by folder. */
typedef struct size_walk {
    uint64_t bytes;
    char **dirs; /* sub-folders of the folder being listed */
    size_t ndirs, cap;
    bool nomem;
} size_walk;

static int size_cb(const char *name, bool is_dir, uint64_t size, void *arg)
{
    size_walk *sw = arg;
    if (!is_dir) {
        sw->bytes += size;
        return 0;
    }
    if (sw->ndirs == sw->cap) {
        size_t cap = sw->cap == 0 ? 16 : sw->cap * 2;
        char **dirs = realloc(sw->dirs, cap * sizeof(*dirs));
        if (dirs == NULL) {
            sw->nomem = true;
            return 1;
        }
        sw->dirs = dirs;
        sw->cap = cap;
    }
    sw->dirs[sw->ndirs] = strdup(name);
    if (sw->dirs[sw->ndirs] == NULL) {
        sw->nomem = true;
        return 1;
    }
    sw->ndirs++;
    return 0;
}

static int repo_size(wk_storage *st, const char *dir, int depth, uint64_t *bytes, wk_error *err)
{
    size_walk sw = {0};
    int rc = -1;
    if (depth > 16)
        return 0; /* walkeep never nests this deep */
    if (wk_storage_list(st, dir, "", size_cb, &sw, err) != 0)
        goto out;
    if (sw.nomem) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    *bytes += sw.bytes;
    for (size_t i = 0; i < sw.ndirs; i++) {
        size_t len = strlen(dir) + strlen(sw.dirs[i]) + 2;
        char *sub = malloc(len);
        if (sub == NULL) {
            wk_error_set(err, WK_ERR_NOMEM, "out of memory");
            goto out;
        }
        snprintf(sub, len, "%s%s%s", dir, dir[0] != '\0' ? "/" : "", sw.dirs[i]);
        int r = repo_size(st, sub, depth + 1, bytes, err);
        free(sub);
        if (r != 0)
            goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; i < sw.ndirs; i++)
        free(sw.dirs[i]);
    free(sw.dirs);
    return rc;
}

/* snprintf for messages that may be cut short. */
static void say(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, size, fmt, ap);
    va_end(ap);
}

static void copy_text(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
    dst[strcspn(dst, "\n")] = '\0';
}

/* Keeps the newest two sizes of the dump's group (its database, or the globals). */
static void note_dump_size(wk_check_facts *f, const wk_dump_record *d)
{
    bool globals = d->format == WK_DUMP_GLOBALS;
    const char *database = globals ? "" : d->database, *format = wk_dump_format_name(d->format);
    wk_check_dump_group *g = NULL;
    for (size_t i = 0; i < f->dump_group_count && g == NULL; i++)
        if (f->dump_groups[i].globals == globals &&
            strcmp(f->dump_groups[i].database, database) == 0 &&
            strcmp(f->dump_groups[i].format, format) == 0)
            g = &f->dump_groups[i];
    if (g == NULL) {
        if (f->dump_group_count == WK_CHECK_DUMP_GROUPS_MAX) {
            f->dump_groups_full = true;
            return;
        }
        g = &f->dump_groups[f->dump_group_count++];
        g->globals = globals;
        snprintf(g->database, sizeof(g->database), "%s", database);
        snprintf(g->format, sizeof(g->format), "%s", format);
        g->newest_bytes = d->bytes;
        g->newest_end = d->end_time;
        return;
    }
    g->previous_bytes = g->newest_bytes;
    g->has_previous = true;
    g->newest_bytes = d->bytes;
    g->newest_end = d->end_time;
}

static void gather_repository(wk_repo *repo, const wk_check_options *o, wk_check_facts *f)
{
    wk_repo_meta meta;
    wk_error e = {0};
    wk_backup_entry *backups = NULL;
    wk_dump_entry *dumps = NULL;
    size_t nbackups = 0, ndumps = 0;
    time_t previous_stop = 0;
    (void)o;
    if (wk_repo_open_meta(repo, NULL, &meta, NULL, &e) != 0) {
        copy_text(f->repo_error, sizeof(f->repo_error), e.message);
        return;
    }
    f->repo_system_identifier = meta.system_identifier;
    if (wk_backup_list(repo, &backups, &nbackups, &e) != 0) {
        say(f->repo_error, sizeof(f->repo_error), "could not list the backups: %s", e.message);
        return;
    }
    for (size_t i = 0; i < nbackups; i++) {
        const wk_backup_entry *b = &backups[i];
        if (!b->has_record || !b->wal_ready)
            continue;
        if (f->backups_complete == 0 || b->record.stop_time < f->backup_oldest_stop)
            f->backup_oldest_stop = b->record.stop_time;
        if (f->backups_complete == 0 || b->record.stop_time >= f->backup_newest_stop) {
            if (f->backups_complete > 0) {
                f->backup_previous_bytes = f->backup_newest_bytes;
                previous_stop = f->backup_newest_stop;
                f->backup_has_previous = true;
            }
            f->backup_newest_stop = b->record.stop_time;
            f->backup_newest_bytes = b->record.bytes;
        } else if (!f->backup_has_previous || b->record.stop_time >= previous_stop) {
            f->backup_previous_bytes = b->record.bytes;
            previous_stop = b->record.stop_time;
            f->backup_has_previous = true;
        }
        f->backups_complete++;
    }
    wk_backup_list_free(backups, nbackups);
    if (wk_dump_list(repo, &dumps, &ndumps, &e) != 0) {
        say(f->repo_error, sizeof(f->repo_error), "could not list the dumps: %s", e.message);
        return;
    }
    for (size_t i = 0; i < ndumps; i++) {
        if (!dumps[i].has_record)
            continue;
        if (f->dumps_complete == 0 || dumps[i].record.end_time > f->dump_newest_end)
            f->dump_newest_end = dumps[i].record.end_time;
        f->dumps_complete++;
        note_dump_size(f, &dumps[i].record); /* oldest first: each is the newest so far */
    }
    wk_dump_list_free(dumps, ndumps);
    f->repo_ok = true;
    uint64_t bytes = 0;
    if (repo_size(repo->storage, "", 0, &bytes, &e) == 0) {
        f->repo_bytes = bytes;
        f->repo_bytes_known = true;
    }
}

/* A one-row query (lib/pg) whose failure becomes the text of a fact. */
static PGresult *one_row(PGconn *conn, const char *sql, char *error, size_t size, const char *what)
{
    wk_error e = {0};
    PGresult *res = wk_pg_one_row(conn, sql, what, &e);
    if (res == NULL)
        say(error, size, "%s", e.message);
    return res;
}

static double get_double(PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? 0 : strtod(PQgetvalue(res, 0, col), NULL);
}

static void get_text(PGresult *res, int col, char *dst, size_t size)
{
    copy_text(dst, size, PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col));
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* SQL naming the segment that holds the byte before the current position: after an idle
 * switch (a position at a segment boundary) that is the last segment written, already
 * archived. Up to PostgreSQL 16 pg_walfile_name of a boundary names the segment before
 * it; from 17 on the one that starts there, so 17 and later are asked for the position
 * minus one byte (never a boundary itself: a position is past a page header). */
static const char *current_wal_sql(PGconn *conn)
{
    return PQserverVersion(conn) >= 170000 ? "pg_walfile_name(pg_current_wal_lsn() - 1)"
                                           : "pg_walfile_name(pg_current_wal_lsn())";
}

/* Forces a WAL switch and waits for the segment that held the current position. */
static void switch_wal(PGconn *conn, wk_repo *repo, const wk_check_options *o, wk_check_facts *f)
{
    char *msg = f->switch_error;
    size_t msize = sizeof(f->switch_error);
    if (repo == NULL || !f->repo_ok) {
        say(msg, msize, "no WAL switch: the repository cannot be read");
        return;
    }
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT %s", current_wal_sql(conn));
    PGresult *res = one_row(conn, sql, msg, msize, "could not read the current WAL position");
    if (res == NULL)
        return;
    get_text(res, 0, f->switch_wal, sizeof(f->switch_wal));
    PQclear(res);
    res = one_row(conn, "SELECT pg_switch_wal()", msg, msize, "could not switch WAL");
    if (res == NULL)
        return;
    PQclear(res);
    double start = now_seconds();
    for (;;) {
        wk_wal_object obj;
        wk_error e = {0};
        if (wk_archive_find(repo, f->switch_wal, &obj, &e) == 0) {
            f->switch_ok = true;
            f->switch_seconds = now_seconds() - start;
            return;
        }
        double waited = now_seconds() - start;
        if (e.code != WK_ERR_NOTFOUND) {
            say(msg, msize, "could not look for \"%s\" in the repository: %s", f->switch_wal,
                e.message);
            return;
        }
        if (waited * 1000.0 >= (double)o->timeout_ms) {
            say(msg, msize, "\"%s\" did not reach the repository within %.0f s", f->switch_wal,
                (double)o->timeout_ms / 1000.0);
            return;
        }
        struct timespec pause = {0, 200 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

static void identity_from_pgdata(const wk_check_options *o, wk_check_facts *f)
{
    wk_repo_meta id;
    wk_error e = {0};
    if (o->pgdata != NULL && wk_cluster_read_identity(o->pgdata, &id, &e) == 0) {
        f->server_system_identifier = id.system_identifier;
        f->server_sysid_known = true;
    }
}

static void ready_from_pgdata(const wk_check_options *o, wk_check_facts *f, const char *why)
{
    wk_error e = {0};
    char dir[4096];
    if (o->pgdata == NULL) {
        say(f->ready_error, sizeof(f->ready_error), "%s, and no pgdata is configured", why);
        return;
    }
    snprintf(dir, sizeof(dir), "%s/pg_wal/archive_status", o->pgdata);
    if (wk_check_count_ready(dir, &f->ready_count, &e) == 0) {
        f->ready_known = true;
        return;
    }
    say(f->ready_error, sizeof(f->ready_error), "%s; %s", why, e.message);
}

static void gather_server(wk_repo *repo, const wk_check_options *o, wk_check_facts *f)
{
    wk_pg_target target = {.conninfo = o->conninfo, .application = "walkeep-check"};
    char why[WK_CHECK_TEXT_MAX];
    wk_error e = {0};
    PGconn *conn = wk_pg_connect(&target, &e);
    PGresult *res;
    if (conn == NULL) {
        say(f->server_error, sizeof(f->server_error), "%s", e.message);
        identity_from_pgdata(o, f);
        ready_from_pgdata(o, f, "the server cannot be reached");
        if (f->switch_requested)
            say(f->switch_error, sizeof(f->switch_error), "no WAL switch: %s", f->server_error);
        goto out;
    }
    f->server_version_num = PQserverVersion(conn);
    say(f->server_version, sizeof(f->server_version), "%s",
        PQparameterStatus(conn, "server_version") != NULL
            ? PQparameterStatus(conn, "server_version")
            : "?");
    res = one_row(conn, "SELECT system_identifier FROM pg_control_system()", why, sizeof(why),
                  "could not read the system identifier");
    if (res != NULL) {
        f->server_system_identifier = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        f->server_sysid_known = true;
        PQclear(res);
    } else {
        identity_from_pgdata(o, f);
    }
    if (f->switch_requested)
        switch_wal(conn, repo, o, f);
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT current_setting('archive_mode'), last_archived_wal, "
             "extract(epoch FROM last_archived_time)::float8, last_failed_wal, "
             "extract(epoch FROM last_failed_time)::float8, failed_count, "
             "CASE WHEN pg_is_in_recovery() THEN NULL "
             "ELSE %s END, "
             "current_setting('archive_command') = '' AND "
             "coalesce(current_setting('archive_library', true), '') = '', "
             "current_setting('archive_command') <> '' AND "
             "coalesce(current_setting('archive_library', true), '') <> '', "
             "pg_is_in_recovery() "
             "FROM pg_stat_archiver",
             current_wal_sql(conn));
    res = one_row(conn, sql, f->server_error, sizeof(f->server_error),
                  "could not read pg_stat_archiver");
    if (res == NULL) {
        ready_from_pgdata(o, f, "pg_stat_archiver cannot be read");
        goto out;
    }
    f->archive_mode_off = strcmp(PQgetvalue(res, 0, 0), "off") == 0;
    get_text(res, 1, f->last_archived_wal, sizeof(f->last_archived_wal));
    f->last_archived_time = get_double(res, 2);
    get_text(res, 3, f->last_failed_wal, sizeof(f->last_failed_wal));
    f->last_failed_time = get_double(res, 4);
    f->failed_count = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
    get_text(res, 6, f->current_wal, sizeof(f->current_wal));
    f->archive_unconfigured = !f->archive_mode_off && strcmp(PQgetvalue(res, 0, 7), "t") == 0;
    f->archive_both_set = !f->archive_mode_off && strcmp(PQgetvalue(res, 0, 8), "t") == 0;
    f->server_in_recovery = strcmp(PQgetvalue(res, 0, 9), "t") == 0;
    PQclear(res);
    f->server_ok = true;
    res = one_row(conn, "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'",
                  why, sizeof(why), "pg_ls_archive_statusdir() failed");
    if (res != NULL) {
        f->ready_count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        f->ready_known = true;
        PQclear(res);
    } else {
        ready_from_pgdata(o, f, "pg_ls_archive_statusdir() needs superuser or pg_monitor");
    }
    res = one_row(conn, "SELECT timeline_id FROM pg_control_checkpoint()", why, sizeof(why),
                  "could not read the timeline");
    if (res != NULL) {
        f->timeline = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
    if (f->timeline >= 2 && repo != NULL && f->repo_ok) {
        char name[32];
        wk_wal_object obj;
        wk_error e = {0};
        snprintf(name, sizeof(name), "%08X.history", f->timeline);
        if (wk_archive_find(repo, name, &obj, &e) == 0 || e.code == WK_ERR_NOTFOUND) {
            f->history_known = true;
            f->history_missing = e.code == WK_ERR_NOTFOUND;
        }
    }
out:
    PQfinish(conn);
}

int wk_check_gather(wk_repo *repo, const wk_check_options *options, wk_check_facts *facts,
                    wk_error *err)
{
    (void)err;
    facts->now = time(NULL);
    facts->dumps_expected = options->dumps_expected;
    facts->switch_requested = options->switch_wal;
    if (repo != NULL)
        gather_repository(repo, options, facts);
    gather_server(repo, options, facts);
    /* The switch may have taken a while: ages are measured from now. */
    facts->now = time(NULL);
    return 0;
}
