/* test_drill: what the drill does without a server: the --sql file format (valid lines,
 * comments, blank lines, where the arrow splits, malformed lines named by number) and
 * the shape of the JSON report. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drill.h"
#include "json.h"

static wk_drill_query *parse_ok(const char *text, size_t *count)
{
    wk_drill_query *q = NULL;
    wk_error err = {0};
    ck_assert_msg(wk_drill_parse_sql("t.sql", text, strlen(text), &q, count, &err) == 0,
                  "parse failed: %s", err.message);
    return q;
}

static void parse_fails(const char *text, const char *expect_in_message)
{
    wk_drill_query *marker = (wk_drill_query *)&marker, *q = marker;
    size_t count = 77;
    wk_error err = {0};
    ck_assert_int_eq(wk_drill_parse_sql("checks.sql", text, strlen(text), &q, &count, &err), -1);
    ck_assert_ptr_eq(q, marker);
    ck_assert_uint_eq(count, 77);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    ck_assert_msg(strstr(err.message, expect_in_message) != NULL, "message: %s", err.message);
    ck_assert_msg(strstr(err.message, "\"checks.sql\"") != NULL, "message: %s", err.message);
}

START_TEST(sql_valid_lines)
{
    size_t n = 0;
    wk_drill_query *q = parse_ok("SELECT count(*) FROM t => 1000\n"
                                 "  SELECT 'a'   =>   a  \r\n"
                                 "SELECT max(x) FROM t=>5 => 5",
                                 &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(q[0].sql, "SELECT count(*) FROM t");
    ck_assert_str_eq(q[0].expected, "1000");
    ck_assert_int_eq(q[0].line, 1);
    ck_assert_str_eq(q[1].sql, "SELECT 'a'");
    ck_assert_str_eq(q[1].expected, "a");
    ck_assert_int_eq(q[1].line, 2);
    /* split at the last " => "; no newline at the end of the file is fine */
    ck_assert_str_eq(q[2].sql, "SELECT max(x) FROM t=>5");
    ck_assert_str_eq(q[2].expected, "5");
    ck_assert_int_eq(q[2].line, 3);
    wk_drill_queries_free(q, n);
}
END_TEST

START_TEST(sql_comments_blanks_and_empty_expected)
{
    size_t n = 0;
    wk_drill_query *q = parse_ok("# the drill's checks\n"
                                 "\n"
                                 "   \t\n"
                                 "   # indented comment => not a check\n"
                                 "SELECT ''  =>\n"
                                 "SELECT NULL::text => NULL\n",
                                 &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(q[0].sql, "SELECT ''");
    ck_assert_str_eq(q[0].expected, "");
    ck_assert_int_eq(q[0].line, 5);
    ck_assert_str_eq(q[1].expected, "NULL");
    ck_assert_int_eq(q[1].line, 6);
    wk_drill_queries_free(q, n);
}
END_TEST

START_TEST(sql_empty_file)
{
    size_t n = 9;
    wk_drill_query *q = parse_ok("", &n);
    ck_assert_uint_eq(n, 0);
    wk_drill_queries_free(q, n);
    q = parse_ok("# nothing\n\n", &n);
    ck_assert_uint_eq(n, 0);
    wk_drill_queries_free(q, n);
}
END_TEST

START_TEST(sql_malformed_lines)
{
    parse_fails("SELECT 1 => 1\nSELECT 2\n", "invalid line 2 of");
    parse_fails("# c\n\nSELECT 1=>1\n", "invalid line 3 of");
    parse_fails("SELECT 1 => 1\n => 1\n", "invalid line 2 of");
    parse_fails("SELECT 1 => 1\nSELECT 2 => 2\nSELECT 3 ->3", "invalid line 3 of");
    wk_drill_query *q = NULL;
    size_t n = 0;
    wk_error err = {0};
    static const char nul[] = "SELECT 1 => 1\nSEL\0ECT => 2\n";
    ck_assert_int_eq(wk_drill_parse_sql("x", nul, sizeof(nul) - 1, &q, &n, &err), -1);
    ck_assert_msg(strstr(err.message, "invalid line 2") != NULL, "%s", err.message);
}
END_TEST

static wk_json *report_json(const wk_drill_report *r)
{
    wk_error err = {0};
    char *doc = wk_drill_report_json(r, &err);
    ck_assert_msg(doc != NULL, "%s", err.message);
    wk_json *v = NULL;
    ck_assert_msg(wk_json_parse(doc, strlen(doc), &v, &err) == 0, "%s: %s", err.message, doc);
    free(doc);
    return v;
}

START_TEST(report_shape_passed)
{
    wk_drill_report r = {.restore_ms = 1234, .replay_ms = 567};
    wk_error err = {0};
    snprintf(r.backup, sizeof(r.backup), "20261125T093012Z");
    snprintf(r.target, sizeof(r.target), "end of archive");
    snprintf(r.folder, sizeof(r.folder), "/tmp/walkeep-drill.abcdef");
    ck_assert_int_eq(wk_drill_report_add(&r, "restore", WK_DRILL_OK, &err, "laid down"), 0);
    ck_assert_int_eq(wk_drill_report_add(&r, "amcheck", WK_DRILL_SKIPPED, &err, "no %s", "amcheck"),
                     0);
    ck_assert_ptr_null(wk_drill_report_failed(&r));
    wk_json *v = report_json(&r);
    bool ok = false, kept = true;
    const char *s = NULL;
    int64_t i = 0;
    ck_assert_int_eq(wk_json_get_bool(v, "ok", &ok, &err), 0);
    ck_assert(ok);
    ck_assert_int_eq(wk_json_get_bool(v, "kept", &kept, &err), 0);
    ck_assert(!kept);
    ck_assert_int_eq(wk_json_get_string(v, "backup", &s, &err), 0);
    ck_assert_str_eq(s, "20261125T093012Z");
    ck_assert_int_eq(wk_json_get_string(v, "target", &s, &err), 0);
    ck_assert_str_eq(s, "end of archive");
    ck_assert_int_eq(wk_json_get_int(v, "restore_ms", &i, &err), 0);
    ck_assert_int_eq(i, 1234);
    ck_assert_int_eq(wk_json_get_int(v, "replay_ms", &i, &err), 0);
    ck_assert_int_eq(i, 567);
    ck_assert_int_eq(wk_json_type_of(wk_json_get(v, "failed")), WK_JSON_NULL);
    const wk_json *checks = wk_json_get(v, "checks");
    ck_assert_uint_eq(wk_json_length(checks), 2);
    ck_assert_int_eq(wk_json_get_string(wk_json_at(checks, 1), "name", &s, &err), 0);
    ck_assert_str_eq(s, "amcheck");
    ck_assert_int_eq(wk_json_get_string(wk_json_at(checks, 1), "status", &s, &err), 0);
    ck_assert_str_eq(s, "skipped");
    ck_assert_int_eq(wk_json_get_string(wk_json_at(checks, 1), "detail", &s, &err), 0);
    ck_assert_str_eq(s, "no amcheck");
    wk_json_free(v);
    wk_drill_report_free(&r);
}
END_TEST

START_TEST(report_shape_failed)
{
    wk_drill_report r = {.restore_ms = 10, .replay_ms = -1};
    wk_error err = {0};
    snprintf(r.target, sizeof(r.target), "immediate (end of the backup)");
    ck_assert_int_eq(
        wk_drill_report_add(&r, "restore", WK_DRILL_FAILED, &err, "checksum mismatch\nsecond line"),
        0);
    ck_assert_int_eq(wk_drill_report_add(&r, "sql line 2", WK_DRILL_FAILED, &err, "x"), 0);
    ck_assert_str_eq(wk_drill_report_failed(&r)->name, "restore");
    ck_assert_str_eq(wk_drill_status_name(r.checks[0].status), "FAILED");
    wk_json *v = report_json(&r);
    bool ok = true;
    const char *s = NULL;
    ck_assert_int_eq(wk_json_get_bool(v, "ok", &ok, &err), 0);
    ck_assert(!ok);
    ck_assert_int_eq(wk_json_get_string(v, "failed", &s, &err), 0);
    ck_assert_str_eq(s, "restore");
    ck_assert_int_eq(wk_json_type_of(wk_json_get(v, "backup")), WK_JSON_NULL);
    ck_assert_int_eq(wk_json_type_of(wk_json_get(v, "replay_ms")), WK_JSON_NULL);
    const wk_json *c0 = wk_json_at(wk_json_get(v, "checks"), 0);
    ck_assert_int_eq(wk_json_get_string(c0, "status", &s, &err), 0);
    ck_assert_str_eq(s, "failed");
    ck_assert_int_eq(wk_json_get_string(c0, "detail", &s, &err), 0);
    ck_assert_str_eq(s, "checksum mismatch"); /* one line per detail */
    wk_json_free(v);
    wk_drill_report_free(&r);
    wk_drill_report_free(NULL);
    wk_drill_queries_free(NULL, 3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("drill");
    TCase *tc = tcase_create("sql");
    tcase_add_test(tc, sql_valid_lines);
    tcase_add_test(tc, sql_comments_blanks_and_empty_expected);
    tcase_add_test(tc, sql_empty_file);
    tcase_add_test(tc, sql_malformed_lines);
    suite_add_tcase(s, tc);
    tc = tcase_create("report");
    tcase_add_test(tc, report_shape_passed);
    tcase_add_test(tc, report_shape_failed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
