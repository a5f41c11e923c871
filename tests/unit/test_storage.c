/* test_storage: the storage interface itself (lib/storage): which repository paths every
 * driver accepts, the same for all of them, and that a refusal is one line naming the path.
 * The drivers have their own suites (test_storage_posix, test_storage_s3). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "storage.h"

START_TEST(test_paths)
{
    static const char *bad[] = {"",      "/a",   "a/../b", "a//b", "a/",    ".",
                                "..",    "a\nb", "./a",    "a/.",  "a/..",  "//",
                                "a\x7f", "\x01", "..a",    ".x/y", "a/.tmp"};
    static const char *good[] = {"a", "a/b", "wal/000000010000000000000001", "a..b", "a.", "x/y."};
    wk_error err = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wk_error_clear(&err);
        ck_assert_msg(wk_storage_check_path(bad[i], &err) == -1, "accepted \"%s\"", bad[i]);
        ck_assert_int_eq(err.code, WK_ERR_USAGE);
        ck_assert_msg(strstr(err.message, "invalid repository path") != NULL, "%s", err.message);
        ck_assert_ptr_null(strchr(err.message, '\n'));
        ck_assert_msg(err.detail[0] != '\0', "no reason for \"%s\"", bad[i]);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(wk_storage_check_path(good[i], &err) == 0, "%s: %s", good[i], err.message);

    /* WK_STORAGE_PATH_MAX - 1 bytes is the longest path; a longer one is shown cut. */
    char path[WK_STORAGE_PATH_MAX + 2];
    memset(path, 'x', sizeof(path));
    path[WK_STORAGE_PATH_MAX - 1] = '\0';
    ck_assert_int_eq(wk_storage_check_path(path, &err), 0);
    path[WK_STORAGE_PATH_MAX - 1] = 'x';
    path[WK_STORAGE_PATH_MAX] = '\0';
    ck_assert_int_eq(wk_storage_check_path(path, &err), -1);
    ck_assert_uint_lt(strlen(err.message), 300);
    ck_assert_ptr_nonnull(strstr(err.message, "..."));
    wk_storage_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage");
    TCase *tc = tcase_create("storage");
    tcase_add_test(tc, test_paths);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
