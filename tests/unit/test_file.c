/* test_file: small local files written whole or not at all (lib/file): modes, replace and
 * no-replace, failures that leave nothing behind, temporaries of killed writers. */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
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

/* Permission denied says who we are and what is in the way: a file of another user, a
 * folder we may not enter, a key file (read by its owner only), a file we own without
 * read permission. The denial needs another user than root: as root (CI), a child drops
 * to nobody; otherwise only the own-file case can be made. */
static void explain_in_child(const char *path, bool owner_only, char *detail, size_t dsize,
                             char *hint, size_t hsize)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(2);
        wk_error err = {0};
        if (open(path, O_RDONLY) >= 0)
            _exit(3);
        wk_error_sys(&err, WK_ERR_CONFIG, errno, "could not open \"%s\"", path);
        wk_file_explain_denied(&err, path, owner_only);
        dprintf(fds[1], "%s\n%s\n", err.detail, err.hint);
        _exit(0);
    }
    close(fds[1]);
    char buf[1024] = "";
    ssize_t n, len = 0;
    while ((n = read(fds[0], buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
        len += n;
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    buf[len] = '\0';
    char *nl = strchr(buf, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = '\0';
    snprintf(detail, dsize, "%s", buf);
    snprintf(hint, hsize, "%.*s", (int)strcspn(nl + 1, "\n"), nl + 1);
}

static void expect_explained(const char *path, bool owner_only, const char *want_detail,
                             const char *want_hint)
{
    char detail[512], hint[512];
    explain_in_child(path, owner_only, detail, sizeof(detail), hint, sizeof(hint));
    ck_assert_str_eq(detail, want_detail);
    ck_assert_str_eq(hint, want_hint);
}

START_TEST(test_explain_denied)
{
    char detail[2048], hint[2048], path[512], folder[512], me[64], grp[64];
    wk_error err = {0};
    ck_assert_int_eq(chmod(tmp_dir, 0755), 0);
    snprintf(path, sizeof(path), "%.400s/walkeep.conf", tmp_dir);
    ck_assert_int_eq(wk_file_write(path, "repo = /r\n", 10, 0600, 0, &err), 0);
    if (geteuid() != 0) {
        ck_assert_int_eq(chmod(path, 0000), 0);
        wk_file_user_name(geteuid(), me, sizeof(me));
        explain_in_child(path, false, detail, sizeof(detail), hint, sizeof(hint));
        ck_assert_ptr_nonnull(strstr(detail, "mode 0000."));
        snprintf(detail, sizeof(detail), "Give the owner access: chmod u+r \"%s\".", path);
        ck_assert_str_eq(hint, detail);
        return;
    }
    struct group *g = getgrgid(0);
    snprintf(grp, sizeof(grp), "%s", g != NULL ? g->gr_name : "gid 0");
    g = getgrgid(65534);
    char nogroup[64];
    snprintf(nogroup, sizeof(nogroup), "%s", g != NULL ? g->gr_name : "gid 65534");
    wk_file_user_name(65534, me, sizeof(me));

    /* root's file, readable by root only: let us in through the group, never "run as root". */
    snprintf(detail, sizeof(detail),
             "could-not-open This program runs as user \"%s\"; the file \"%s\" is owned by user "
             "\"root\" and group \"%s\", mode 0600.",
             me, path, grp);
    snprintf(hint, sizeof(hint),
             "Let \"%s\" in through the group: chgrp %s \"%s\" && chmod g+r \"%s\".", me, nogroup,
             path, path);
    expect_explained(path, false, strchr(detail, ' ') + 1, hint);
    /* The same file as a key file: it must belong to its reader. */
    snprintf(hint, sizeof(hint), "A key file is read by its owner only: chown %s \"%s\".", me,
             path);
    expect_explained(path, true, strchr(detail, ' ') + 1, hint);
    /* Group-readable: join the group. */
    ck_assert_int_eq(chmod(path, 0640), 0);
    snprintf(detail, sizeof(detail),
             "x This program runs as user \"%s\"; the file \"%s\" is owned by user \"root\" and "
             "group \"%s\", mode 0640.",
             me, path, grp);
    snprintf(hint, sizeof(hint), "Add \"%s\" to group \"%s\".", me, grp);
    expect_explained(path, false, strchr(detail, ' ') + 1, hint);

    /* A folder on the way that may not be entered is named instead. */
    snprintf(folder, sizeof(folder), "%.400s/private", tmp_dir);
    ck_assert_int_eq(mkdir(folder, 0700), 0);
    snprintf(path, sizeof(path), "%.400s/private/key", tmp_dir);
    ck_assert_int_eq(wk_file_write(path, "k\n", 2, 0600, 0, &err), 0);
    snprintf(detail, sizeof(detail),
             "x This program runs as user \"%s\"; the folder \"%s\" is owned by user \"root\" and "
             "group \"%s\", mode 0700.",
             me, folder, grp);
    snprintf(hint, sizeof(hint),
             "Let \"%s\" in through the group: chgrp %s \"%s\" && chmod g+rx \"%s\".", me, nogroup,
             folder, folder);
    expect_explained(path, true, strchr(detail, ' ') + 1, hint);

    /* Root refused: something else than permissions is at work. The detail is added to
     * what was there. */
    wk_error denied = {0};
    wk_error_sys(&denied, WK_ERR_CONFIG, EACCES, "could not open \"x\"");
    wk_error_detail(&denied, "The file was named by --config.");
    wk_file_explain_denied(&denied, path, false);
    ck_assert_str_eq(denied.detail, "The file was named by --config. This program runs as root, "
                                    "and was refused all the same.");
    ck_assert_ptr_nonnull(strstr(denied.hint, "root_squash"));

    /* Another errno: nothing added. */
    wk_error other = {0};
    wk_error_sys(&other, WK_ERR_IO, ENOENT, "could not open \"x\"");
    wk_file_explain_denied(&other, "/nonexistent/x", false);
    ck_assert_str_eq(other.detail, "");
    ck_assert_str_eq(other.hint, "");
    ck_assert_str_eq(wk_file_user_name(0, me, sizeof(me)), "root");
    ck_assert_str_eq(wk_file_user_name(4000111, me, sizeof(me)), "uid 4000111");
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
    tcase_add_test(tc, test_explain_denied);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
