/* test_file: small local files written whole or not at all (lib/file): modes, replace and
 * no-replace, failures that leave nothing behind, temporaries of killed writers. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "file.h"
#include "support.h"

static char tmp_dir[PATH_MAX];

static void setup(void)
{
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk-test-file-XXXXXX");
}

static void teardown(void)
{
    ck_assert_int_eq(chdir("/"), 0);
    ts_tmpdir_remove(tmp_dir);
}

static const char *in_tmp(const char *name)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
    return path;
}

static void assert_text(const char *path, const char *want)
{
    char *got = ts_read_file(path, NULL);
    ck_assert_str_eq(got, want);
    free(got);
}

START_TEST(test_write_and_replace)
{
    wk_error err = {0};
    char path[PATH_MAX + 64];
    struct stat st;
    snprintf(path, sizeof(path), "%s", in_tmp("walkeep.prom"));
    umask(077);
    ck_assert_msg(wk_file_write(path, "walkeep_up 1\n", 13, 0644, 0, &err) == 0, "%s", err.message);
    umask(022);
    assert_text(path, "walkeep_up 1\n");
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644); /* exactly, whatever the umask */
    /* Replaced whole, also when shorter; nothing but the file stays in the folder. */
    ck_assert_int_eq(wk_file_write(path, "x\n", 2, 0644, 0, &err), 0);
    assert_text(path, "x\n");
    ck_assert_int_eq(ts_count_entries(tmp_dir), 1);
    /* Empty content is a file of 0 bytes. */
    ck_assert_int_eq(wk_file_write(path, "", 0, 0600, 0, &err), 0);
    assert_text(path, "");
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    /* A relative path writes into the working directory. */
    ck_assert_int_eq(chdir(tmp_dir), 0);
    ck_assert_int_eq(wk_file_write("rel.prom", "r\n", 2, 0644, 0, &err), 0);
    assert_text("rel.prom", "r\n");
}
END_TEST

START_TEST(test_noreplace)
{
    wk_error err = {0};
    char path[PATH_MAX + 64], target[PATH_MAX + 64];
    struct stat st;
    snprintf(path, sizeof(path), "%s", in_tmp("k.key"));
    ck_assert_int_eq(wk_file_write(path, "first\n", 6, 0600, WK_FILE_NOREPLACE, &err), 0);
    ck_assert_int_eq(wk_file_write(path, "second\n", 7, 0600, WK_FILE_NOREPLACE, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    ck_assert_ptr_nonnull(strstr(err.message, "k.key"));
    assert_text(path, "first\n");
    ck_assert_int_eq(ts_count_entries(tmp_dir), 1);
    /* A dangling symbolic link is a name that exists: nothing is created at its target. */
    snprintf(target, sizeof(target), "%s", in_tmp("target"));
    snprintf(path, sizeof(path), "%s", in_tmp("dangling"));
    ck_assert_int_eq(symlink(target, path), 0);
    ck_assert_int_eq(wk_file_write(path, "x", 1, 0600, WK_FILE_NOREPLACE, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    ck_assert_int_eq(lstat(target, &st), -1);
    ck_assert_int_eq(ts_count_entries(tmp_dir), 2);
}
END_TEST

START_TEST(test_failures_leave_nothing)
{
    wk_error err = {0};
    char path[PATH_MAX + 64], sub[PATH_MAX + 80];
    /* The target is a folder: the rename fails, no temporary is left, nothing changes. */
    snprintf(path, sizeof(path), "%s", in_tmp("adir"));
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(sub, sizeof(sub), "%s/keep", path);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_int_eq(wk_file_write(path, "z\n", 2, 0644, 0, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.message, "could not rename"));
    ck_assert_ptr_null(strchr(err.message, '\n'));
    ck_assert_int_eq(ts_count_entries(tmp_dir), 1);
    ck_assert_int_eq(ts_count_entries(path), 1);
    /* A missing folder. */
    snprintf(sub, sizeof(sub), "%s/missing/walkeep.prom", tmp_dir);
    ck_assert_int_eq(wk_file_write(sub, "z\n", 2, 0644, 0, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_int_eq(err.sys_errno, ENOENT);
    /* A path that names a folder. */
    snprintf(sub, sizeof(sub), "%s/", tmp_dir);
    ck_assert_int_eq(wk_file_write(sub, "z\n", 2, 0644, 0, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    ck_assert_int_eq(ts_count_entries(tmp_dir), 1);
}
END_TEST

START_TEST(test_removes_temporaries_of_dead_writers)
{
    wk_error err = {0};
    char path[PATH_MAX + 64], dead[PATH_MAX + 64], alive[PATH_MAX + 64], other[PATH_MAX + 64];
    /* A writer that is gone: a child that exited and was reaped. */
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    snprintf(path, sizeof(path), "%s", in_tmp("walkeep.prom"));
    snprintf(dead, sizeof(dead), "%s/.walkeep.prom.tmp.%ld.0", tmp_dir, (long)child);
    snprintf(alive, sizeof(alive), "%s/.walkeep.prom.tmp.%ld.0", tmp_dir, (long)getppid());
    snprintf(other, sizeof(other), "%s/.other.prom.tmp.%ld.0", tmp_dir, (long)child);
    ts_write_text(dead, "half of a file");
    ts_write_text(alive, "a writer at work");
    ts_write_text(other, "not ours");
    ck_assert_int_eq(wk_file_write(path, "y\n", 2, 0644, 0, &err), 0);
    assert_text(path, "y\n");
    ck_assert(!ts_path_exists(dead));
    ck_assert(ts_path_exists(alive));
    ck_assert(ts_path_exists(other));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("file");
    TCase *tc = tcase_create("file");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_write_and_replace);
    tcase_add_test(tc, test_noreplace);
    tcase_add_test(tc, test_failures_leave_nothing);
    tcase_add_test(tc, test_removes_temporaries_of_dead_writers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
