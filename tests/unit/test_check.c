/* test_check: the verdicts of walkeep check from synthetic facts (every threshold at and
 * beside its edge, the overall status as the worst), the text, JSON and Prometheus
 * renderings (the textfile parsed line by line), the atomic write of the textfile, and
 * the .ready count from a folder. Nothing here needs a server. */
#include <check.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "support.h"
#include "config.h"
#include "json.h"

#define NOW ((time_t)1795600000)
#define H 3600

static wk_check_thresholds defaults(void)
{
    wk_check_thresholds t;
    wk_check_thresholds_default(&t);
    return t;
}

/* A healthy setup: backup 1 h old, WAL archived a minute ago, no failures. */
static wk_check_facts healthy(void)
{
    wk_check_facts f;
    memset(&f, 0, sizeof(f));
    f.now = NOW;
    f.repo_ok = true;
    f.repo_system_identifier = 7212345678901234567ULL;
    f.repo_bytes = 123456;
    f.repo_bytes_known = true;
    f.server_ok = true;
    f.server_sysid_known = true;
    f.server_system_identifier = 7212345678901234567ULL;
    f.backups_complete = 2;
    f.backup_newest_stop = NOW - H;
    f.backup_newest_bytes = 999;
    f.backup_oldest_stop = NOW - 30 * H;
    strcpy(f.last_archived_wal, "000000010000000000000010");
    f.last_archived_time = (double)(NOW - 60);
    strcpy(f.current_wal, "000000010000000000000011");
    f.ready_known = true;
    return f;
}

static const wk_check_item *find(const wk_check_report *r, const char *name)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->items[i].name, name) == 0)
            return &r->items[i];
    return NULL;
}

static wk_check_status status_of(const wk_check_facts *f, const wk_check_thresholds *t,
                                 const char *name)
{
    wk_check_report r;
    wk_check_evaluate(f, t, &r);
    const wk_check_item *item = find(&r, name);
    ck_assert_msg(item != NULL, "no %s check", name);
    return item->status;
}

START_TEST(test_status_names_and_worse)
{
    ck_assert_str_eq(wk_check_status_name(WK_CHECK_OK), "OK");
    ck_assert_str_eq(wk_check_status_name(WK_CHECK_WARNING), "WARNING");
    ck_assert_str_eq(wk_check_status_name(WK_CHECK_CRITICAL), "CRITICAL");
    ck_assert_int_eq(wk_check_worse(WK_CHECK_OK, WK_CHECK_WARNING), WK_CHECK_WARNING);
    ck_assert_int_eq(wk_check_worse(WK_CHECK_CRITICAL, WK_CHECK_WARNING), WK_CHECK_CRITICAL);
    ck_assert_int_eq(wk_check_worse(WK_CHECK_OK, WK_CHECK_OK), WK_CHECK_OK);
}
END_TEST

START_TEST(test_healthy_is_ok)
{
    wk_check_facts f = healthy();
    wk_check_thresholds t = defaults();
    wk_check_report r;
    wk_check_evaluate(&f, &t, &r);
    ck_assert_int_eq(r.status, WK_CHECK_OK);
    ck_assert_uint_eq(r.count, 5); /* no dump, no switch */
    const char *names[] = {"repository", "backup", "archiver", "wal", "ready"};
    for (size_t i = 0; i < 5; i++) {
        ck_assert_str_eq(r.items[i].name, names[i]);
        ck_assert_int_eq(r.items[i].status, WK_CHECK_OK);
    }
    ck_assert_ptr_null(find(&r, "dump"));
    ck_assert_ptr_null(find(&r, "switch_wal"));
}
END_TEST

/* The overall status is the worst item, whichever it is. */
START_TEST(test_aggregation_is_worst)
{
    wk_check_thresholds t = defaults();
    wk_check_report r;
    wk_check_facts f = healthy();
    f.ready_count = 11; /* WARNING */
    wk_check_evaluate(&f, &t, &r);
    ck_assert_int_eq(r.status, WK_CHECK_WARNING);
    f.failed_count = 3;
    f.last_failed_time = (double)NOW; /* after the last success: CRITICAL */
    wk_check_evaluate(&f, &t, &r);
    ck_assert_int_eq(r.status, WK_CHECK_CRITICAL);
    ck_assert_int_eq(find(&r, "ready")->status, WK_CHECK_WARNING);
    ck_assert_int_eq(find(&r, "archiver")->status, WK_CHECK_CRITICAL);
    ck_assert_int_eq(find(&r, "backup")->status, WK_CHECK_OK);
}
END_TEST

START_TEST(test_backup_age_thresholds)
{
    wk_check_thresholds t = defaults();
    wk_check_facts f = healthy();
    ck_assert_int_eq(t.max_backup_age_ms, (int64_t)48 * H * 1000);
    f.backup_newest_stop = NOW - 48 * H;
    ck_assert_int_eq(status_of(&f, &t, "backup"), WK_CHECK_OK);
    f.backup_newest_stop = NOW - 48 * H - 1;
    ck_assert_int_eq(status_of(&f, &t, "backup"), WK_CHECK_WARNING);
    f.backup_newest_stop = NOW - 96 * H;
    ck_assert_int_eq(status_of(&f, &t, "backup"), WK_CHECK_WARNING);
    f.backup_newest_stop = NOW - 96 * H - 1;
    ck_assert_int_eq(status_of(&f, &t, "backup"), WK_CHECK_CRITICAL);
    f.backup_newest_stop = NOW + 5; /* clock skew: age 0 */
    ck_assert_int_eq(status_of(&f, &t, "backup"), WK_CHECK_OK);
    f.backups_complete = 0;
    ck_assert_int_eq(status_of(&f, &t, "backup"), WK_CHECK_CRITICAL);
}
END_TEST

/* Thresholds come from wk_config_parse_duration, PostgreSQL's units. */
START_TEST(test_duration_thresholds)
{
    wk_check_thresholds t = defaults();
    wk_check_facts f = healthy();
    ck_assert_int_eq(wk_config_parse_duration("1min", &t.max_backup_age_ms), 0);
    f.backup_newest_stop = NOW - 60;
    ck_assert_int_eq(status_of(&f, &t, "backup"), WK_CHECK_OK);
    f.backup_newest_stop = NOW - 61;
    ck_assert_int_eq(status_of(&f, &t, "backup"), WK_CHECK_WARNING);
    f.backup_newest_stop = NOW - 121;
    ck_assert_int_eq(status_of(&f, &t, "backup"), WK_CHECK_CRITICAL);
    ck_assert_int_eq(wk_config_parse_duration("2d", &t.max_backup_age_ms), 0);
    ck_assert_int_eq(status_of(&f, &t, "backup"), WK_CHECK_OK);
    ck_assert_int_eq(wk_config_parse_duration("1h", &t.max_backup_age_ms), 0);
    f.backup_newest_stop = NOW - 2 * H;
    ck_assert_int_eq(status_of(&f, &t, "backup"), WK_CHECK_WARNING);
    ck_assert_int_eq(wk_config_parse_duration("30s", &t.max_dump_age_ms), 0);
    f.dumps_complete = 1;
    f.dump_newest_end = NOW - 31;
    ck_assert_int_eq(status_of(&f, &t, "dump"), WK_CHECK_WARNING);
    f.dump_newest_end = NOW - 30;
    ck_assert_int_eq(status_of(&f, &t, "dump"), WK_CHECK_OK);
    /* The limit is written back the way a user would write it. */
    wk_check_report r;
    ck_assert_int_eq(wk_config_parse_duration("5min", &t.max_backup_age_ms), 0);
    wk_check_evaluate(&f, &t, &r);
    ck_assert_ptr_nonnull(strstr(find(&r, "backup")->message, "limit 5min)"));
    ck_assert_int_eq(wk_config_parse_duration("48h", &t.max_backup_age_ms), 0);
    wk_check_evaluate(&f, &t, &r);
    ck_assert_ptr_nonnull(strstr(find(&r, "backup")->message, "limit 2d)"));
    ck_assert_int_eq(wk_config_parse_duration("90s", &t.max_backup_age_ms), 0);
    wk_check_evaluate(&f, &t, &r);
    ck_assert_ptr_nonnull(strstr(find(&r, "backup")->message, "limit 90s)"));
}
END_TEST

START_TEST(test_repository_identity)
{
    wk_check_thresholds t = defaults();
    wk_check_facts f = healthy();
    wk_check_report r;
    f.server_system_identifier++;
    wk_check_evaluate(&f, &t, &r);
    ck_assert_int_eq(find(&r, "repository")->status, WK_CHECK_CRITICAL);
    ck_assert_ptr_nonnull(strstr(find(&r, "repository")->message, "another cluster"));
    ck_assert_int_eq(r.status, WK_CHECK_CRITICAL);
    f = healthy();
    f.server_sysid_known = false;
    f.server_ok = false;
    strcpy(f.server_error, "could not connect to the server: no such socket");
    wk_check_evaluate(&f, &t, &r);
    ck_assert_int_eq(find(&r, "repository")->status, WK_CHECK_WARNING);
    ck_assert_int_eq(find(&r, "archiver")->status, WK_CHECK_WARNING);
    ck_assert_int_eq(find(&r, "wal")->status, WK_CHECK_WARNING);
    ck_assert_ptr_nonnull(strstr(find(&r, "archiver")->message, "no such socket"));
    f = healthy();
    f.repo_ok = false;
    strcpy(f.repo_error, "the repository is not initialised");
    wk_check_evaluate(&f, &t, &r);
    ck_assert_int_eq(find(&r, "repository")->status, WK_CHECK_CRITICAL);
    ck_assert_str_eq(find(&r, "repository")->message, "the repository is not initialised");
    ck_assert_int_eq(find(&r, "backup")->status, WK_CHECK_CRITICAL);
}
END_TEST

START_TEST(test_archiver)
{
    wk_check_thresholds t = defaults();
    wk_check_facts f = healthy();
    /* Failed once, then succeeded: WARNING. */
    f.failed_count = 2;
    strcpy(f.last_failed_wal, "00000001000000000000000F");
    f.last_failed_time = (double)(NOW - 600);
    ck_assert_int_eq(status_of(&f, &t, "archiver"), WK_CHECK_WARNING);
    /* The last failure is newer than the last success: failing now. */
    f.last_failed_time = (double)(NOW - 30);
    ck_assert_int_eq(status_of(&f, &t, "archiver"), WK_CHECK_CRITICAL);
    /* Never archived, failing. */
    f.last_archived_time = 0;
    f.last_archived_wal[0] = '\0';
    ck_assert_int_eq(status_of(&f, &t, "archiver"), WK_CHECK_CRITICAL);
    f = healthy();
    f.archive_mode_off = true;
    ck_assert_int_eq(status_of(&f, &t, "archiver"), WK_CHECK_CRITICAL);
    f = healthy();
    f.archive_unconfigured = true;
    ck_assert_int_eq(status_of(&f, &t, "archiver"), WK_CHECK_CRITICAL);
    /* archive_command and archive_library both set: 16+ archive nothing, 15 ignores the
     * command; either way CRITICAL, each saying why. */
    const int versions[] = {150018, 160014, 180004};
    const char *why[] = {"PostgreSQL 15 ignores archive_command",
                         "PostgreSQL 16 and later "
                         "archive nothing",
                         "PostgreSQL 16 and later archive nothing"};
    for (size_t i = 0; i < 3; i++) {
        wk_check_report r;
        f = healthy();
        f.archive_both_set = true;
        f.server_version_num = versions[i];
        wk_check_evaluate(&f, &t, &r);
        const wk_check_item *item = find(&r, "archiver");
        ck_assert_ptr_nonnull(item);
        ck_assert_int_eq(item->status, WK_CHECK_CRITICAL);
        ck_assert_msg(strstr(item->message, why[i]) != NULL, "%s", item->message);
        ck_assert_msg(strstr(item->message, "set archive_library = ''") != NULL, "%s",
                      item->message);
    }
}
END_TEST

/* The server's major: OK with its version for 15 to 18, CRITICAL naming a newer or older
 * one; no item when the server was not reached. */
/* pg_conninfo naming a standby: its archiver says nothing of the primary's, said so
 * instead of a false CRITICAL (archive_mode off there) or a false OK. */
START_TEST(test_standby_server)
{
    wk_check_thresholds t = defaults();
    wk_check_facts f = healthy();
    wk_check_report r;
    f.server_in_recovery = true;
    f.archive_mode_off = true;
    wk_check_evaluate(&f, &t, &r);
    ck_assert_int_eq(find(&r, "archiver")->status, WK_CHECK_WARNING);
    ck_assert_str_eq(find(&r, "archiver")->message,
                     "the server is a standby (in recovery): the archiving to watch is the "
                     "primary's; point walkeep check's pg_conninfo at the primary");
}
END_TEST

START_TEST(test_postgresql_version)
{
    wk_check_thresholds t = defaults();
    wk_check_report r;
    wk_check_facts f = healthy();
    ck_assert_ptr_null((wk_check_evaluate(&f, &t, &r), find(&r, "postgresql")));
    f.server_version_num = 180004;
    strcpy(f.server_version, "18.4");
    wk_check_evaluate(&f, &t, &r);
    const wk_check_item *item = find(&r, "postgresql");
    ck_assert_ptr_nonnull(item);
    ck_assert_int_eq(item->status, WK_CHECK_OK);
    ck_assert_str_eq(item->message, "PostgreSQL 18.4 (supported: 15 to 18)");
    ck_assert_int_eq(r.status, WK_CHECK_OK);
    f.server_version_num = 190002;
    strcpy(f.server_version, "19.2");
    wk_check_evaluate(&f, &t, &r);
    item = find(&r, "postgresql");
    ck_assert_int_eq(item->status, WK_CHECK_CRITICAL);
    ck_assert_str_eq(item->message, "the server is PostgreSQL 19, newer than this walkeep "
                                    "supports (PostgreSQL 15 to 18); install a walkeep release "
                                    "that supports PostgreSQL 19");
    ck_assert_int_eq(r.status, WK_CHECK_CRITICAL);
    f.server_version_num = 140011;
    ck_assert_int_eq(status_of(&f, &t, "postgresql"), WK_CHECK_CRITICAL);
}
END_TEST

START_TEST(test_wal_age)
{
    wk_check_thresholds t = defaults();
    wk_check_facts f = healthy();
    f.last_archived_time = (double)(NOW - H);
    ck_assert_int_eq(status_of(&f, &t, "wal"), WK_CHECK_OK);
    f.last_archived_time = (double)(NOW - H - 1);
    ck_assert_int_eq(status_of(&f, &t, "wal"), WK_CHECK_WARNING);
    /* Idle server: nothing written since the last archived segment. */
    strcpy(f.current_wal, f.last_archived_wal);
    ck_assert_int_eq(status_of(&f, &t, "wal"), WK_CHECK_OK);
    /* A .backup file's name starts with its segment's. */
    strcpy(f.last_archived_wal, "000000010000000000000011.00000028.backup");
    strcpy(f.current_wal, "000000010000000000000011");
    ck_assert_int_eq(status_of(&f, &t, "wal"), WK_CHECK_OK);
    /* Unknown current position (in recovery): nothing to compare, OK. */
    f.current_wal[0] = '\0';
    ck_assert_int_eq(status_of(&f, &t, "wal"), WK_CHECK_OK);
    /* Nothing archived since the statistics were reset. */
    f.last_archived_time = 0;
    ck_assert_int_eq(status_of(&f, &t, "wal"), WK_CHECK_OK);
}
END_TEST

START_TEST(test_ready_backlog)
{
    wk_check_thresholds t = defaults();
    wk_check_facts f = healthy();
    int64_t counts[] = {0, 10, 11, 100, 101};
    wk_check_status want[] = {WK_CHECK_OK, WK_CHECK_OK, WK_CHECK_WARNING, WK_CHECK_WARNING,
                              WK_CHECK_CRITICAL};
    for (size_t i = 0; i < 5; i++) {
        f.ready_count = counts[i];
        ck_assert_int_eq(status_of(&f, &t, "ready"), want[i]);
    }
    t.max_ready = 0;
    f.ready_count = 1;
    ck_assert_int_eq(status_of(&f, &t, "ready"), WK_CHECK_CRITICAL);
    f.ready_known = false;
    strcpy(f.ready_error, "pg_ls_archive_statusdir() needs superuser or pg_monitor");
    ck_assert_int_eq(status_of(&f, &t, "ready"), WK_CHECK_WARNING);
}
END_TEST

/* On timeline 2 or later, the current timeline's history must be in the repository. */
START_TEST(test_timeline_history)
{
    wk_check_thresholds t = defaults();
    wk_check_facts f = healthy();
    wk_check_report r;
    wk_check_evaluate(&f, &t, &r);
    ck_assert_ptr_null(find(&r, "history")); /* timeline 1: nothing to say */
    f.timeline = 2;
    f.history_known = true;
    ck_assert_int_eq(status_of(&f, &t, "history"), WK_CHECK_OK);
    f.history_missing = true;
    ck_assert_int_eq(status_of(&f, &t, "history"), WK_CHECK_WARNING);
    wk_check_evaluate(&f, &t, &r);
    ck_assert_ptr_nonnull(strstr(find(&r, "history")->message, "00000002.history"));
}
END_TEST

START_TEST(test_dump_and_switch)
{
    wk_check_thresholds t = defaults();
    wk_check_facts f = healthy();
    wk_check_report r;
    f.dumps_expected = true;
    ck_assert_int_eq(status_of(&f, &t, "dump"), WK_CHECK_WARNING);
    f.dumps_complete = 3;
    f.dump_newest_end = NOW - 47 * H;
    ck_assert_int_eq(status_of(&f, &t, "dump"), WK_CHECK_OK);
    f.dump_newest_end = NOW - 49 * H;
    ck_assert_int_eq(status_of(&f, &t, "dump"), WK_CHECK_WARNING);
    f.dump_newest_end = NOW - 500 * H; /* a dump is never more than a WARNING */
    ck_assert_int_eq(status_of(&f, &t, "dump"), WK_CHECK_WARNING);

    f = healthy();
    f.switch_requested = true;
    f.switch_ok = true;
    strcpy(f.switch_wal, "000000010000000000000011");
    f.switch_seconds = 1.25;
    wk_check_evaluate(&f, &t, &r);
    ck_assert_int_eq(find(&r, "switch_wal")->status, WK_CHECK_OK);
    ck_assert_int_eq(r.status, WK_CHECK_OK);
    f.switch_ok = false;
    strcpy(f.switch_error, "\"000000010000000000000011\" did not reach the repository within 60 s");
    wk_check_evaluate(&f, &t, &r);
    ck_assert_int_eq(find(&r, "switch_wal")->status, WK_CHECK_CRITICAL);
    ck_assert_int_eq(r.status, WK_CHECK_CRITICAL);
}
END_TEST

START_TEST(test_text_and_json)
{
    wk_check_thresholds t = defaults();
    wk_check_facts f = healthy();
    wk_check_report r;
    wk_error err = {0};
    f.ready_count = 12;
    wk_check_evaluate(&f, &t, &r);
    char *text = wk_check_report_text(&r);
    ck_assert_ptr_nonnull(text);
    size_t lines = 0;
    for (char *line = text; *line != '\0'; lines++) {
        char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        ck_assert_msg(strncmp(line, "OK: ", 4) == 0 || strncmp(line, "WARNING: ", 9) == 0 ||
                          strncmp(line, "CRITICAL: ", 10) == 0,
                      "bad line: %.*s", (int)(nl - line), line);
        line = nl + 1;
    }
    ck_assert_uint_eq(lines, r.count);
    ck_assert_ptr_nonnull(strstr(text, "WARNING: ready: 12 WAL files waiting"));
    free(text);

    char *doc = wk_check_report_json(&r, &err);
    ck_assert_ptr_nonnull(doc);
    wk_json *root = NULL;
    ck_assert_int_eq(wk_json_parse(doc, strlen(doc), &root, &err), 0);
    ck_assert_str_eq(wk_json_string_of(wk_json_get(root, "status")), "WARNING");
    const wk_json *checks = wk_json_get(root, "checks");
    ck_assert_uint_eq(wk_json_length(checks), r.count);
    const wk_json *ready = wk_json_at(checks, 4);
    ck_assert_str_eq(wk_json_string_of(wk_json_get(ready, "name")), "ready");
    ck_assert_str_eq(wk_json_string_of(wk_json_get(ready, "status")), "WARNING");
    ck_assert_ptr_nonnull(wk_json_string_of(wk_json_get(ready, "message")));
    int64_t v = 0;
    ck_assert_int_eq(wk_json_int_of(wk_json_get(ready, "ready_files"), &v), 0);
    ck_assert_int_eq(v, 12);
    ck_assert_int_eq(wk_json_int_of(wk_json_get(wk_json_at(checks, 1), "age_seconds"), &v), 0);
    ck_assert_int_eq(v, H);
    wk_json_free(root);
    free(doc);
}
END_TEST

/* Parses a textfile: every line "# HELP name text", "# TYPE name gauge|counter" or
 * "name[{label="value",...}] number", names ^walkeep_[a-z_]+$, HELP and TYPE before each
 * family's samples, no sample twice. Returns the number of samples; the value of `want`
 * (name and labels as written) goes to *value (or *found stays false). */
static size_t parse_prometheus(const char *text, const char *want, double *value, bool *found)
{
    regex_t name_re, labels_re;
    char help[64] = "", type[64] = "";
    char seen[64][160];
    size_t samples = 0;
    ck_assert_int_eq(regcomp(&name_re, "^walkeep_[a-z_]+$", REG_EXTENDED | REG_NOSUB), 0);
    ck_assert_int_eq(regcomp(&labels_re,
                             "^[{][a-z_]+=\"([^\"\\]|\\\\.)*\"(,[a-z_]+=\"([^\"\\]|\\\\.)*\")*[}]$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    *found = false;
    ck_assert_msg(text[0] != '\0' && text[strlen(text) - 1] == '\n', "no final newline");
    char *copy = strdup(text);
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char name[64], rest[256];
        if (strncmp(line, "# HELP ", 7) == 0) {
            ck_assert_int_eq(sscanf(line + 7, "%63s %255[^\n]", name, rest), 2);
            ck_assert_msg(regexec(&name_re, name, 0, NULL, 0) == 0, "bad name %s", name);
            strcpy(help, name);
            type[0] = '\0';
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            ck_assert_int_eq(sscanf(line + 7, "%63s %255s", name, rest), 2);
            ck_assert_msg(strcmp(rest, "gauge") == 0 || strcmp(rest, "counter") == 0, "%s", line);
            ck_assert_str_eq(name, help);
            strcpy(type, name);
        } else {
            char *space = strrchr(line, ' ');
            ck_assert_msg(space != NULL, "bad line %s", line);
            *space = '\0';
            size_t name_len = strcspn(line, "{");
            ck_assert_uint_lt(name_len, sizeof(name));
            memcpy(name, line, name_len);
            name[name_len] = '\0';
            ck_assert_msg(regexec(&name_re, name, 0, NULL, 0) == 0, "bad name %s", line);
            ck_assert_msg(line[name_len] == '\0' ||
                              regexec(&labels_re, line + name_len, 0, NULL, 0) == 0,
                          "bad labels %s", line);
            ck_assert_str_eq(name, type);
            char *end = NULL;
            double v = strtod(space + 1, &end);
            ck_assert_msg(end != space + 1 && *end == '\0', "bad value %s", space + 1);
            for (size_t i = 0; i < samples; i++)
                ck_assert_str_ne(seen[i], line);
            ck_assert_uint_lt(samples, 64);
            ck_assert_uint_lt(strlen(line), sizeof(seen[0]));
            strcpy(seen[samples++], line);
            if (strcmp(line, want) == 0) {
                *value = v;
                *found = true;
            }
        }
    }
    free(copy);
    regfree(&name_re);
    regfree(&labels_re);
    return samples;
}

static double metric_value(const char *text, const char *name)
{
    double v = -1;
    bool found = false;
    parse_prometheus(text, name, &v, &found);
    ck_assert_msg(found, "no %s", name);
    return v;
}

static int64_t metric_of(const char *text, const char *name)
{
    return (int64_t)metric_value(text, name);
}

static bool has_metric(const char *text, const char *name)
{
    double v;
    bool found;
    parse_prometheus(text, name, &v, &found);
    return found;
}

/* A backup, or a database's dump, under check_shrink_percent of the one before: WARNING,
 * naming which and by how much; at the threshold and with 0 (off): OK. */
START_TEST(test_shrink)
{
    wk_check_thresholds t = defaults();
    wk_check_facts f = healthy();
    wk_check_report r;
    f.backup_has_previous = true;
    f.backup_previous_bytes = 1998; /* the newest, 999, is exactly half */
    ck_assert_int_eq(status_of(&f, &t, "backup"), WK_CHECK_OK);
    f.backup_previous_bytes = 4 * 1048576;
    f.backup_newest_bytes = 1048576;
    wk_check_evaluate(&f, &t, &r);
    ck_assert_int_eq(find(&r, "backup")->status, WK_CHECK_WARNING);
    ck_assert_msg(strstr(find(&r, "backup")->message,
                         "; it is only 25% of the one before (1.0 MiB, before 4.0 MiB)") != NULL,
                  "%s", find(&r, "backup")->message);
    t.shrink_percent = 0;
    ck_assert_int_eq(status_of(&f, &t, "backup"), WK_CHECK_OK);
    t.shrink_percent = 20;
    ck_assert_int_eq(status_of(&f, &t, "backup"), WK_CHECK_OK);

    t = defaults();
    f = healthy();
    f.dumps_complete = 5;
    f.dump_newest_end = NOW - H;
    f.dump_group_count = 3;
    f.dump_groups[0] = (wk_check_dump_group){.globals = true,
                                             .format = "globals",
                                             .newest_end = NOW - H,
                                             .newest_bytes = 10,
                                             .previous_bytes = 100,
                                             .has_previous = true};
    f.dump_groups[1] = (wk_check_dump_group){.database = "shop",
                                             .format = "custom",
                                             .newest_end = NOW - 2 * H,
                                             .newest_bytes = 300 * 1024,
                                             .previous_bytes = 1024 * 1024,
                                             .has_previous = true};
    f.dump_groups[2] = (wk_check_dump_group){
        .database = "app", .format = "plain", .newest_end = NOW - 30 * H, .newest_bytes = 5};
    wk_check_evaluate(&f, &t, &r);
    ck_assert_int_eq(find(&r, "dump")->status, WK_CHECK_WARNING);
    ck_assert_str_eq(find(&r, "dump")->message,
                     "newest dump finished 1h 0min ago (limit 2d), 5 in the repository; the "
                     "newest globals dump is only 10% of the one before (10 B, before 100 B) and "
                     "1 more shrank");
    f.dump_groups[0].newest_bytes = 100;
    wk_check_evaluate(&f, &t, &r);
    ck_assert_str_eq(find(&r, "dump")->message,
                     "newest dump finished 1h 0min ago (limit 2d), 5 in the repository; the "
                     "newest custom dump of \"shop\" is only 29% of the one before (300.0 KiB, "
                     "before 1.0 MiB)");
    f.dump_groups[1].newest_bytes = 1024 * 1024 / 2;
    ck_assert_int_eq(status_of(&f, &t, "dump"), WK_CHECK_OK);

    /* Prometheus: the ratios, per database, the name escaped. */
    f.dump_groups[1].newest_bytes = 256 * 1024;
    snprintf(f.dump_groups[2].database, sizeof(f.dump_groups[2].database), "a\"b\\c");
    f.backup_has_previous = true;
    f.backup_previous_bytes = 3996;
    wk_check_evaluate(&f, &t, &r);
    wk_error err = {0};
    char *text = wk_check_prometheus(&f, &r, &err);
    ck_assert_ptr_nonnull(text);
    ck_assert_double_eq_tol(metric_value(text, "walkeep_backup_newest_size_ratio"), 0.25, 1e-9);
    ck_assert_double_eq_tol(
        metric_value(text, "walkeep_dump_newest_size_ratio{database=\"shop\",format=\"custom\"}"),
        0.25, 1e-9);
    ck_assert_int_eq(
        metric_of(text, "walkeep_dump_age_seconds{database=\"shop\",format=\"custom\"}"), 2 * H);
    ck_assert_int_eq(metric_of(text, "walkeep_dump_age_seconds{globals=\"1\"}"), H);
    ck_assert_double_eq_tol(metric_value(text, "walkeep_dump_newest_size_ratio{globals=\"1\"}"),
                            1.0, 1e-9);
    ck_assert_int_eq(
        metric_of(text,
                  "walkeep_dump_newest_size_bytes{database=\"a\\\"b\\\\c\",format=\"plain\"}"),
        5);
    ck_assert(!has_metric(
        text, "walkeep_dump_newest_size_ratio{database=\"a\\\"b\\\\c\",format=\"plain\"}"));
    free(text);
    /* More groups than the facts hold: said, not hidden. */
    f.dump_groups_full = true;
    wk_check_evaluate(&f, &t, &r);
    ck_assert_ptr_nonnull(strstr(find(&r, "dump")->message,
                                 "; the sizes of the first 256 databases and formats only are "
                                 "compared"));
}
END_TEST

START_TEST(test_prometheus)
{
    wk_check_thresholds t = defaults();
    wk_check_facts f = healthy();
    wk_check_report r;
    wk_error err = {0};
    f.failed_count = 4;
    f.last_failed_time = (double)(NOW - 100);
    f.ready_count = 3;
    f.dumps_complete = 1;
    f.dump_newest_end = NOW - 7200;
    wk_check_evaluate(&f, &t, &r);
    char *text = wk_check_prometheus(&f, &r, &err);
    ck_assert_ptr_nonnull(text);
    double v;
    bool found;
    ck_assert_uint_eq(parse_prometheus(text, "", &v, &found), 12);
    ck_assert_int_eq(metric_of(text, "walkeep_up"), 1);
    ck_assert_int_eq(metric_of(text, "walkeep_check_status"), 1);
    ck_assert_int_eq(metric_of(text, "walkeep_backup_newest_age_seconds"), H);
    ck_assert_int_eq(metric_of(text, "walkeep_backup_newest_size_bytes"), 999);
    ck_assert_int_eq(metric_of(text, "walkeep_backup_complete_count"), 2);
    ck_assert_int_eq(metric_of(text, "walkeep_wal_newest_archived_age_seconds"), 60);
    ck_assert_int_eq(metric_of(text, "walkeep_archive_failed_total"), 4);
    ck_assert_int_eq(metric_of(text, "walkeep_archive_ready_files"), 3);
    ck_assert_int_eq(metric_of(text, "walkeep_repository_size_bytes"), 123456);
    ck_assert_int_eq(metric_of(text, "walkeep_recovery_window_start_seconds"), NOW - 30 * H);
    ck_assert_int_eq(metric_of(text, "walkeep_recovery_window_end_seconds"), NOW - 60);
    ck_assert_int_eq(metric_of(text, "walkeep_dump_newest_age_seconds"), 7200);
    ck_assert_ptr_nonnull(strstr(text, "# TYPE walkeep_archive_failed_total counter\n"));
    free(text);

    /* Server down, no backup, no dump: what is unknown is left out, walkeep_up is 0. */
    f = healthy();
    f.server_ok = false;
    f.ready_known = false;
    f.backups_complete = 0;
    wk_check_evaluate(&f, &t, &r);
    text = wk_check_prometheus(&f, &r, &err);
    ck_assert_ptr_nonnull(text);
    ck_assert_int_eq(metric_of(text, "walkeep_up"), 0);
    ck_assert_int_eq(metric_of(text, "walkeep_check_status"), 2);
    ck_assert(!has_metric(text, "walkeep_backup_newest_age_seconds"));
    ck_assert(!has_metric(text, "walkeep_archive_failed_total"));
    ck_assert(!has_metric(text, "walkeep_archive_ready_files"));
    ck_assert(!has_metric(text, "walkeep_wal_newest_archived_age_seconds"));
    ck_assert(!has_metric(text, "walkeep_dump_newest_age_seconds"));
    ck_assert_int_eq(metric_of(text, "walkeep_repository_size_bytes"), 123456);
    free(text);
}
END_TEST

static char tmp_dir[256];

static void setup(void)
{
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/wk-check-XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static void teardown(void)
{
    ck_assert_int_eq(ts_tmpdir_remove(tmp_dir), 0);
}

START_TEST(test_count_ready)
{
    char path[400];
    wk_error err = {0};
    int64_t n = -1;
    const char *files[] = {"000000010000000000000001.ready", "000000010000000000000002.done",
                           "000000010000000000000003.ready", "00000002.history.ready", ".ready"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s/%s", tmp_dir, files[i]);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fclose(f);
    }
    ck_assert_int_eq(wk_check_count_ready(tmp_dir, &n, &err), 0);
    ck_assert_int_eq(n, 3);
    snprintf(path, sizeof(path), "%s/none", tmp_dir);
    n = -1;
    ck_assert_int_eq(wk_check_count_ready(path, &n, &err), -1);
    ck_assert_int_eq(n, -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
}
END_TEST

static Suite *check_suite(void)
{
    Suite *s = suite_create("check");
    TCase *verdicts = tcase_create("verdicts");
    tcase_add_test(verdicts, test_status_names_and_worse);
    tcase_add_test(verdicts, test_healthy_is_ok);
    tcase_add_test(verdicts, test_aggregation_is_worst);
    tcase_add_test(verdicts, test_backup_age_thresholds);
    tcase_add_test(verdicts, test_duration_thresholds);
    tcase_add_test(verdicts, test_repository_identity);
    tcase_add_test(verdicts, test_archiver);
    tcase_add_test(verdicts, test_postgresql_version);
    tcase_add_test(verdicts, test_wal_age);
    tcase_add_test(verdicts, test_ready_backlog);
    tcase_add_test(verdicts, test_dump_and_switch);
    tcase_add_test(verdicts, test_shrink);
    tcase_add_test(verdicts, test_standby_server);
    tcase_add_test(verdicts, test_timeline_history);
    suite_add_tcase(s, verdicts);

    TCase *output = tcase_create("output");
    tcase_add_test(output, test_text_and_json);
    tcase_add_test(output, test_prometheus);
    suite_add_tcase(s, output);

    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, setup, teardown);
    tcase_add_test(files, test_count_ready);
    suite_add_tcase(s, files);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(check_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
