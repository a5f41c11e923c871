/* test_proc: child processes: exit statuses and signals as errors or as values, a
 * program that cannot be run, streams given to the child, one extra environment
 * variable for the child alone, and output captured (bounded, drained). */
#include <check.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"
#include "support.h"

static int run_sh(const char *script, int *exit_status, wk_error *err)
{
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    wk_proc_spec spec = WK_PROC_SPEC(argv);
    return wk_proc_run(&spec, exit_status, err);
}

START_TEST(test_exit_statuses)
{
    wk_error err = {0};
    int status = -1;
    ck_assert_int_eq(run_sh("exit 0", NULL, &err), 0);
    ck_assert_int_eq(run_sh("exit 3", NULL, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_str_eq(err.message, "sh failed with exit status 3");
    ck_assert_int_eq(run_sh("kill -TERM $$", NULL, &err), -1);
    ck_assert_msg(strstr(err.message, "sh was terminated by signal 15") != NULL, "%s", err.message);
    /* As values. */
    ck_assert_int_eq(run_sh("exit 3", &status, &err), 0);
    ck_assert_int_eq(status, 3);
    ck_assert_int_eq(run_sh("kill -KILL $$", &status, &err), 0);
    ck_assert_int_eq(status, 128 + 9);
}
END_TEST

START_TEST(test_cannot_run)
{
    char *argv[] = {"/nonexistent/program", NULL};
    wk_proc_spec spec = WK_PROC_SPEC(argv);
    wk_error err = {0};
    int status = -1;
    pid_t pid = 0;
    ck_assert_int_eq(wk_proc_spawn(&spec, &pid, &err), -1);
    ck_assert_int_eq(pid, 0);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_str_eq(err.message,
                     "could not run \"/nonexistent/program\": No such file or directory");
    /* Not a 127 exit status: an error even when statuses are values. */
    ck_assert_int_eq(wk_proc_run(&spec, &status, &err), -1);
    ck_assert_int_eq(status, -1);
    char *name_only[] = {"walkeep-no-such-program", NULL};
    spec.argv = name_only;
    ck_assert_int_eq(wk_proc_run(&spec, NULL, &err), -1);
    ck_assert_msg(strstr(err.message, "could not run \"walkeep-no-such-program\"") != NULL, "%s",
                  err.message);
}
END_TEST

START_TEST(test_streams_and_environment)
{
    char dir[256], path[512];
    wk_error err = {0};
    ts_tmpdir_make(dir, sizeof(dir), "/tmp/wk-proc.XXXXXX");
    snprintf(path, sizeof(path), "%s/out", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    setenv("WK_PROC_TEST", "parent", 1);
    char *argv[] = {"sh", "-c", "echo \"out $WK_PROC_TEST\"; echo \"err $WK_PROC_TEST\" >&2", NULL};
    wk_proc_spec spec = WK_PROC_SPEC(argv);
    spec.out_fd = fd;
    spec.err_fd = fd;
    spec.env_name = "WK_PROC_TEST";
    spec.env_value = "child";
    ck_assert_msg(wk_proc_run(&spec, NULL, &err) == 0, "%s", err.message);
    close(fd);
    size_t len = 0;
    char *text = ts_read_file(path, &len);
    ck_assert_str_eq(text, "out child\nerr child\n");
    free(text);
    ck_assert_str_eq(getenv("WK_PROC_TEST"), "parent"); /* the parent's stays */
    unsetenv("WK_PROC_TEST");
    unlink(path);
    ts_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_capture)
{
    char out[16];
    wk_error err = {0};
    char *argv[] = {"sh", "-c", "echo 'pg_ctl (PostgreSQL) 18.4'", NULL};
    wk_proc_spec spec = WK_PROC_SPEC(argv);
    ck_assert_int_eq(wk_proc_capture(&spec, out, sizeof(out), &err), 0);
    ck_assert_str_eq(out, "pg_ctl (Postgre"); /* the first 15 bytes, terminated */
    /* Far more than is kept: drained, the child ends normally. */
    char *noisy[] = {"sh", "-c", "echo first; yes x | head -c 2000000", NULL};
    spec.argv = noisy;
    ck_assert_msg(wk_proc_capture(&spec, out, sizeof(out), &err) == 0, "%s", err.message);
    ck_assert(strncmp(out, "first\n", 6) == 0);
    char *failing[] = {"sh", "-c", "echo partial; exit 4", NULL};
    spec.argv = failing;
    ck_assert_int_eq(wk_proc_capture(&spec, out, sizeof(out), &err), -1);
    ck_assert_str_eq(err.message, "sh failed with exit status 4");
    ck_assert_str_eq(wk_proc_name("/usr/lib/postgresql/15/bin/pg_dump"), "pg_dump");
    ck_assert_str_eq(wk_proc_name("psql"), "psql");
}
END_TEST

START_TEST(test_is_gone)
{
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(0);
    ck_assert(!wk_proc_is_gone((long)getpid()));
    /* Exited but not reaped (a zombie): it writes nothing any more, so gone too. */
    usleep(100000);
    ck_assert(wk_proc_is_gone((long)child));
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    ck_assert(wk_proc_is_gone((long)child));
    ck_assert(!wk_proc_is_gone(0));
    ck_assert(!wk_proc_is_gone(-1));
}
END_TEST

static Suite *proc_suite(void)
{
    Suite *s = suite_create("proc");
    TCase *tc = tcase_create("proc");
    tcase_add_test(tc, test_exit_statuses);
    tcase_add_test(tc, test_cannot_run);
    tcase_add_test(tc, test_streams_and_environment);
    tcase_add_test(tc, test_capture);
    tcase_add_test(tc, test_is_gone);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(proc_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
