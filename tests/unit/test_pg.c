/* test_pg: the first line of a libpq message, the error built from it, and a connection
 * that fails (a socket folder with no server): one error line, the hint for a normal and
 * for a replication connection, nothing leaked. Queries against a real server are
 * covered by the integration tests (check, dump, drill, backups). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

START_TEST(test_first_line)
{
    char buf[32];
    ck_assert_str_eq(wk_pg_first_line("FATAL:  no\nDETAIL:  more\n", buf, sizeof(buf)),
                     "FATAL:  no");
    ck_assert_str_eq(wk_pg_first_line(NULL, buf, sizeof(buf)), "");
    ck_assert_str_eq(wk_pg_first_line("a much longer line than the buffer holds", buf, 8),
                     "a much ");
    wk_error err = {0};
    ck_assert_int_eq(wk_pg_error(&err, WK_ERR_IO, "could not switch WAL",
                                 "ERROR:  permission denied\nHINT:  x\n"),
                     -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_str_eq(err.message, "could not switch WAL: ERROR:  permission denied");
}
END_TEST

START_TEST(test_connect_fails)
{
    wk_error err = {0};
    wk_pg_target t = {.conninfo = "host=/nonexistent/walkeep-test port=5",
                      .dbname = "postgres",
                      .application = "walkeep-test"};
    ck_assert_ptr_null(wk_pg_connect(&t, &err));
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_msg(strncmp(err.message, "could not connect to the server: ", 33) == 0, "%s",
                  err.message);
    ck_assert_msg(strstr(err.message, "/nonexistent/walkeep-test") != NULL, "%s", err.message);
    ck_assert_ptr_null(strchr(err.message, '\n'));
    ck_assert_str_eq(err.hint, "check \"pg_conninfo\"");
    t.replication = true;
    ck_assert_ptr_null(wk_pg_connect(&t, &err));
    ck_assert_msg(strstr(err.hint, "REPLICATION attribute") != NULL, "%s", err.hint);
    /* A connection string that does not parse. */
    wk_pg_target bad = {.conninfo = "host='unterminated"};
    ck_assert_ptr_null(wk_pg_connect(&bad, &err));
    ck_assert_msg(strncmp(err.message, "could not connect to the server: ", 33) == 0, "%s",
                  err.message);
}
END_TEST

static Suite *pg_suite(void)
{
    Suite *s = suite_create("pg");
    TCase *tc = tcase_create("pg");
    tcase_add_test(tc, test_first_line);
    tcase_add_test(tc, test_connect_fails);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pg_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
