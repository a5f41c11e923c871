/* test_pgversion: the supported majors (15 to 18 pass), the refusal of older and newer
 * ones (one line naming what reported it and the version, a hint), 9.6's numbering; a
 * program's version read from "--version" (fake programs in a scratch folder), and the
 * refusal of a pg_ctl of another major. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgversion.h"
#include "support.h"

START_TEST(test_supported_majors)
{
    for (int major = WK_PG_MAJOR_MIN; major <= WK_PG_MAJOR_MAX; major++) {
        wk_error err = {0};
        ck_assert_int_eq(wk_pg_major_check(major, "the server", &err), 0);
        ck_assert_int_eq(err.code, WK_ERR_NONE);
    }
    ck_assert_int_eq(WK_PG_MAJOR_MIN, 15);
    ck_assert_int_eq(WK_PG_MAJOR_MAX, 18);
    ck_assert(wk_pg_major_supported(15) && wk_pg_major_supported(18));
    ck_assert(!wk_pg_major_supported(14) && !wk_pg_major_supported(19) &&
              !wk_pg_major_supported(906));
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

/* A scratch bin folder with fake programs (shell scripts). */
static char bindir[64];

static void make_bindir(void)
{
    ts_tmpdir_make(bindir, sizeof(bindir), "/tmp/wk-pgversion.XXXXXX");
}

static void remove_bindir(void)
{
    ts_tmpdir_remove(bindir);
}

static void fake_program(const char *name, const char *script)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", bindir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "#!/bin/sh\n%s\n", script);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(path, 0755), 0);
}

START_TEST(test_program_version)
{
    char version[16] = "untouched";
    int major = -1;
    wk_error err = {0};

    make_bindir();
    fake_program("pg_ctl", "[ \"$1\" = --version ] && echo 'pg_ctl (PostgreSQL) 18.4'");
    ck_assert_msg(wk_pg_program_version(bindir, "pg_ctl", version, sizeof(version), &major, &err) ==
                      0,
                  "%s", err.message);
    ck_assert_str_eq(version, "18.4");
    ck_assert_int_eq(major, 18);
    fake_program("pg_dump", "echo 'pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)'");
    ck_assert_int_eq(
        wk_pg_program_version(bindir, "pg_dump", version, sizeof(version), &major, &err), 0);
    ck_assert_str_eq(version, "15.18");
    ck_assert_int_eq(major, 15);
    /* Much more output than is read: no hang, the version still found. */
    fake_program("noisy", "echo 'noisy (PostgreSQL) 17.10'; yes x | head -c 1000000");
    ck_assert_int_eq(wk_pg_program_version(bindir, "noisy", version, sizeof(version), &major, &err),
                     0);
    ck_assert_int_eq(major, 17);

    /* Failures leave the outputs alone. */
    strcpy(version, "untouched");
    major = -1;
    fake_program("broken", "echo 'not a postgres program'");
    ck_assert_int_eq(
        wk_pg_program_version(bindir, "broken", version, sizeof(version), &major, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_msg(strstr(err.message, "could not read the version of") != NULL, "%s", err.message);
    fake_program("failing", "exit 3");
    ck_assert_int_eq(
        wk_pg_program_version(bindir, "failing", version, sizeof(version), &major, &err), -1);
    ck_assert_msg(strstr(err.message, "failing failed with exit status 3") != NULL, "%s",
                  err.message);
    ck_assert_int_eq(
        wk_pg_program_version(bindir, "missing", version, sizeof(version), &major, &err), -1);
    ck_assert_msg(strstr(err.message, "could not run") != NULL, "%s", err.message);
    ck_assert_msg(strstr(err.hint, "pg_bindir") != NULL, "%s", err.hint);
    ck_assert_str_eq(version, "untouched");
    ck_assert_int_eq(major, -1);
    remove_bindir();
}
END_TEST

START_TEST(test_program_check_major)
{
    wk_error err = {0};
    char want[256];

    make_bindir();
    fake_program("pg_ctl", "echo 'pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)'");
    ck_assert_int_eq(wk_pg_program_check_major(bindir, "pg_ctl", 15, &err), 0);
    ck_assert_int_eq(wk_pg_program_check_major(bindir, "pg_ctl", 18, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFIG);
    snprintf(want, sizeof(want),
             "pg_ctl 15.18 (pg_bindir \"%s\") cannot start a data directory of PostgreSQL 18",
             bindir);
    ck_assert_str_eq(err.message, want);
    ck_assert_str_eq(err.hint, "set \"pg_bindir\" to the bin folder of PostgreSQL 18");
    remove_bindir();

    char where[64];
    wk_pg_bindir_describe(where, sizeof(where), NULL);
    ck_assert_str_eq(where, "unset, from PATH");
    wk_pg_bindir_describe(where, sizeof(where), "");
    ck_assert_str_eq(where, "unset, from PATH");
    wk_pg_bindir_describe(where, sizeof(where), "/usr/lib/postgresql/18/bin");
    ck_assert_str_eq(where, "\"/usr/lib/postgresql/18/bin\"");
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
    TCase *programs = tcase_create("programs");
    tcase_add_test(programs, test_program_version);
    tcase_add_test(programs, test_program_check_major);
    suite_add_tcase(s, programs);
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
