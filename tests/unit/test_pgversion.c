/* test_pgversion: the supported majors (15 to 18 pass), the refusal of older and newer
 * ones (one line naming what reported it and the version, a hint), 9.6's numbering. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgversion.h"

START_TEST(test_supported_majors)
{
    for (int major = WK_PG_MAJOR_MIN; major <= WK_PG_MAJOR_MAX; major++) {
        wk_error err = {0};
        ck_assert_int_eq(wk_pg_major_check(major, "the server", &err), 0);
        ck_assert_int_eq(err.code, WK_ERR_NONE);
    }
    ck_assert_int_eq(WK_PG_MAJOR_MIN, 15);
    ck_assert_int_eq(WK_PG_MAJOR_MAX, 18);
}
END_TEST

START_TEST(test_newer_major_refused)
{
    const int newer[] = {19, 20, 99};
    for (size_t i = 0; i < sizeof(newer) / sizeof(newer[0]); i++) {
        wk_error err = {0};
        char want[128];
        ck_assert_int_eq(wk_pg_major_check(newer[i], "the server", &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_CLUSTER);
        snprintf(want, sizeof(want),
                 "the server is PostgreSQL %d, newer than this walkeep supports "
                 "(PostgreSQL 15 to 18)",
                 newer[i]);
        ck_assert_str_eq(err.message, want);
        snprintf(want, sizeof(want), "install a walkeep release that supports PostgreSQL %d",
                 newer[i]);
        ck_assert_str_eq(err.hint, want);
        ck_assert_ptr_null(strchr(err.message, '\n'));
    }
}
END_TEST

START_TEST(test_older_major_refused)
{
    const int older[] = {14, 10, 906, 0};
    const char *names[] = {"14", "10", "9.6", "0"};
    for (size_t i = 0; i < sizeof(older) / sizeof(older[0]); i++) {
        wk_error err = {0};
        char want[128];
        ck_assert_int_eq(wk_pg_major_check(older[i], "data directory \"/x\"", &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_CLUSTER);
        snprintf(want, sizeof(want),
                 "data directory \"/x\" is PostgreSQL %s, older than this walkeep supports "
                 "(PostgreSQL 15 to 18)",
                 names[i]);
        ck_assert_str_eq(err.message, want);
        ck_assert_msg(strstr(err.hint, "pg_upgrade") != NULL, "%s", err.hint);
    }
    ck_assert_int_eq(wk_pg_major_check(14, "x", NULL), -1); /* NULL record accepted */
}
END_TEST

START_TEST(test_major_of_num_and_format)
{
    char buf[8];
    ck_assert_int_eq(wk_pg_major_of_num(180004), 18);
    ck_assert_int_eq(wk_pg_major_of_num(150018), 15);
    ck_assert_int_eq(wk_pg_major_of_num(190000), 19);
    ck_assert_int_eq(wk_pg_major_of_num(90624), 906);
    wk_pg_major_format(buf, sizeof(buf), 906);
    ck_assert_str_eq(buf, "9.6");
    wk_pg_major_format(buf, sizeof(buf), 17);
    ck_assert_str_eq(buf, "17");
    wk_pg_major_format(buf, 2, 17); /* cut short, still terminated */
    ck_assert_str_eq(buf, "1");
}
END_TEST

static Suite *pgversion_suite(void)
{
    Suite *s = suite_create("pgversion");
    TCase *tc = tcase_create("majors");
    tcase_add_test(tc, test_supported_majors);
    tcase_add_test(tc, test_newer_major_refused);
    tcase_add_test(tc, test_older_major_refused);
    tcase_add_test(tc, test_major_of_num_and_format);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pgversion_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
