/* test_pgctl: the pg_ctl path from pg_bindir, whether a data directory's postmaster runs
 * (from postmaster.pid), and the server-log search (the last matching line, the text
 * after the message's prefix). Starting and stopping a server is covered by the drill
 * and pitr integration tests, against a real PostgreSQL. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgctl.h"
#include "support.h"

START_TEST(test_path)
{
    char buf[64];
    wk_pgctl_path(buf, sizeof(buf), "/usr/lib/postgresql/18/bin");
    ck_assert_str_eq(buf, "/usr/lib/postgresql/18/bin/pg_ctl");
    wk_pgctl_path(buf, sizeof(buf), NULL);
    ck_assert_str_eq(buf, "pg_ctl");
    wk_pgctl_path(buf, sizeof(buf), "");
    ck_assert_str_eq(buf, "pg_ctl");
}
END_TEST

START_TEST(test_running)
{
    char dir[256], path[512], text[320];
    ts_tmpdir_make(dir, sizeof(dir), "/tmp/wk-pgctl.XXXXXX");
    ck_assert(!wk_pgctl_running(dir)); /* no postmaster.pid */
    snprintf(path, sizeof(path), "%s/postmaster.pid", dir);
    snprintf(text, sizeof(text), "%ld\n%s\n", (long)getpid(), dir);
    ts_write_text(path, text);
    ck_assert(wk_pgctl_running(dir)); /* a live process */
    ts_write_text(path, "garbage\n");
    ck_assert(!wk_pgctl_running(dir));
    ts_write_text(path, "2147483646\n"); /* no such process */
    ck_assert(!wk_pgctl_running(dir));
    unlink(path);
    ts_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_log_find)
{
    char dir[256], path[512], line[64] = "untouched";
    const char *const fatal[] = {"FATAL", "PANIC", NULL};
    const char *const paused[] = {"pausing at the end of recovery", NULL};
    ts_tmpdir_make(dir, sizeof(dir), "/tmp/wk-pgctl.XXXXXX");
    snprintf(path, sizeof(path), "%s/server.log", dir);
    ck_assert(!wk_pgctl_log_find(path, fatal, line, sizeof(line))); /* no log yet */
    ts_write_text(path, "2026-12-07 10:00:00 UTC [1] LOG:  starting PostgreSQL 18.4\n"
                        "2026-12-07 10:00:01 UTC [2] FATAL:  first problem\n"
                        "2026-12-07 10:00:02 UTC [2] LOG:  pausing at the end of recovery\n"
                        "2026-12-07 10:00:03 UTC [3] PANIC:  second problem\n");
    ck_assert(
        !wk_pgctl_log_find(path, (const char *const[]){"promoted", NULL}, line, sizeof(line)));
    ck_assert_str_eq(line, "untouched");
    ck_assert(wk_pgctl_log_find(path, fatal, line, sizeof(line)));
    ck_assert_str_eq(line, "PANIC:  second problem"); /* the last one, from the needle on */
    ck_assert(wk_pgctl_log_find(path, paused, line, sizeof(line)));
    ck_assert_str_eq(line, "pausing at the end of recovery");
    char small[8];
    ck_assert(wk_pgctl_log_find(path, fatal, small, sizeof(small)));
    ck_assert_str_eq(small, "PANIC: "); /* cut, terminated */
    unlink(path);
    ts_tmpdir_remove(dir);
}
END_TEST

static Suite *pgctl_suite(void)
{
    Suite *s = suite_create("pgctl");
    TCase *tc = tcase_create("pgctl");
    tcase_add_test(tc, test_path);
    tcase_add_test(tc, test_running);
    tcase_add_test(tc, test_log_find);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pgctl_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
