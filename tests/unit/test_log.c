/* test_log: the exact stderr lines of lib/log.c, captured by pointing fd 2 at a temp
 * file: prefixes, threshold, detail/hint lines, sanitising and truncation. */
#include <check.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int saved_stderr = -1;
static int capture_fd = -1;

/* Points fd 2 at a fresh temp file. */
static void capture_start(void)
{
    char path[] = "/tmp/wk_test_log_XXXXXX";
    capture_fd = mkstemp(path);
    ck_assert_int_ge(capture_fd, 0);
    unlink(path);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(saved_stderr, 0);
    ck_assert_int_ge(dup2(capture_fd, STDERR_FILENO), 0);
}

/* Restores fd 2 and returns what was written (caller frees). */
static char *capture_end(void)
{
    ck_assert_int_ge(dup2(saved_stderr, STDERR_FILENO), 0);
    close(saved_stderr);
    off_t size = lseek(capture_fd, 0, SEEK_END);
    ck_assert_int_ge(size, 0);
    char *buf = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pread(capture_fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    close(capture_fd);
    return buf;
}

static void reset(void)
{
    wk_log_init("walkeep-archive", WK_LOG_INFO);
}

START_TEST(test_line_format)
{
    capture_start();
    wk_log(WK_LOG_ERROR, "could not open file \"%s\": %s", "x", "No such file or directory");
    wk_log(WK_LOG_WARNING, "slow %d", 3);
    wk_log(WK_LOG_INFO, "archived \"%s\"", "000000010000000000000001");
    char *out = capture_end();
    ck_assert_str_eq(out, "walkeep-archive: error: could not open file \"x\": No such file or "
                          "directory\n"
                          "walkeep-archive: warning: slow 3\n"
                          "walkeep-archive: info: archived \"000000010000000000000001\"\n");
    free(out);
}
END_TEST

START_TEST(test_default_name_and_level)
{
    /* Fresh process state (Check forks each test by default); even without a fork
     * wk_log_init(NULL, ...) restores the default name. */
    wk_log_init(NULL, WK_LOG_INFO);
    ck_assert_int_eq(wk_log_get_level(), WK_LOG_INFO);
    capture_start();
    wk_log(WK_LOG_INFO, "hello");
    char *out = capture_end();
    ck_assert_str_eq(out, "walkeep: info: hello\n");
    free(out);
}
END_TEST

START_TEST(test_threshold)
{
    wk_log_set_level(WK_LOG_WARNING);
    ck_assert_int_eq(wk_log_get_level(), WK_LOG_WARNING);
    capture_start();
    wk_log(WK_LOG_DEBUG, "debug");
    wk_log(WK_LOG_INFO, "info");
    wk_log(WK_LOG_WARNING, "warning");
    wk_log(WK_LOG_ERROR, "error");
    char *out = capture_end();
    ck_assert_str_eq(out, "walkeep-archive: warning: warning\nwalkeep-archive: error: error\n");
    free(out);

    wk_log_set_level(WK_LOG_ERROR);
    capture_start();
    wk_log(WK_LOG_WARNING, "warning");
    wk_log(WK_LOG_ERROR, "error");
    wk_error e;
    wk_error_set(&e, WK_ERR_IO, "always");
    wk_log_error(&e);
    out = capture_end();
    ck_assert_str_eq(out, "walkeep-archive: error: error\nwalkeep-archive: error: always\n");
    free(out);

    wk_log_set_level(WK_LOG_DEBUG);
    capture_start();
    wk_log(WK_LOG_DEBUG, "d");
    out = capture_end();
    ck_assert_str_eq(out, "walkeep-archive: debug: d\n");
    free(out);
}
END_TEST

START_TEST(test_error_detail_hint)
{
    wk_error e;
    wk_error_set(&e, WK_ERR_CONFLICT, "segment \"%s\" already archived",
                 "0000000100000000000000A1");
    wk_error_detail(&e, "The stored copy has checksum %s.", "abc");
    wk_error_hint(&e, "Check for two clusters archiving to one repository.");
    wk_log_set_level(WK_LOG_ERROR); /* errors are always printed */
    capture_start();
    wk_log_error(&e);
    char *out = capture_end();
    const char *want = "walkeep-archive: error: segment \"0000000100000000000000A1\" already "
                       "archived\n"
                       "walkeep-archive: detail: The stored copy has checksum abc.\n"
                       "walkeep-archive: hint: Check for two clusters archiving to one "
                       "repository.\n";
    ck_assert_str_eq(out, want);
    free(out);

    char buf[1024];
    size_t n = wk_log_format_error(buf, sizeof(buf), &e);
    ck_assert_uint_eq(n, strlen(want));
    ck_assert_str_eq(buf, want);

    /* Hint without detail. */
    wk_error_set(&e, WK_ERR_USAGE, "too many arguments");
    wk_error_hint(&e, "Try \"--help\".");
    n = wk_log_format_error(buf, sizeof(buf), &e);
    ck_assert_str_eq(buf, "walkeep-archive: error: too many arguments\n"
                          "walkeep-archive: hint: Try \"--help\".\n");
    ck_assert_uint_eq(n, strlen(buf));
}
END_TEST

START_TEST(test_newlines_sanitised)
{
    capture_start();
    wk_log(WK_LOG_INFO, "line one\nline two\r\tend\x7f!");
    char *out = capture_end();
    ck_assert_str_eq(out, "walkeep-archive: info: line one line two  end !\n");
    free(out);

    wk_error e;
    wk_error_set(&e, WK_ERR_IO, "bad\nname");
    wk_error_detail(&e, "a\nb");
    wk_error_hint(&e, "c\n");
    char buf[512];
    wk_log_format_error(buf, sizeof(buf), &e);
    ck_assert_str_eq(buf, "walkeep-archive: error: bad name\n"
                          "walkeep-archive: detail: a b\n"
                          "walkeep-archive: hint: c \n");

    /* UTF-8 passes through untouched. */
    capture_start();
    wk_log(WK_LOG_INFO, "caf\xc3\xa9");
    out = capture_end();
    ck_assert_str_eq(out, "walkeep-archive: info: caf\xc3\xa9\n");
    free(out);

    /* The program name is sanitised too. */
    wk_log_init("we\nird", WK_LOG_INFO);
    capture_start();
    wk_log(WK_LOG_INFO, "x");
    out = capture_end();
    ck_assert_str_eq(out, "we ird: info: x\n");
    free(out);
}
END_TEST

START_TEST(test_long_message_truncated_not_split)
{
    size_t big = 10000;
    char *msg = malloc(big + 1);
    ck_assert_ptr_nonnull(msg);
    memset(msg, 'x', big);
    msg[big] = '\0';
    capture_start();
    wk_log(WK_LOG_INFO, "%s", msg);
    char *out = capture_end();
    size_t len = strlen(out);
    ck_assert_uint_le(len, 4096);
    ck_assert_uint_gt(len, 1000);
    ck_assert_int_eq(out[len - 1], '\n');
    ck_assert_ptr_eq(strchr(out, '\n'), out + len - 1); /* exactly one line */
    ck_assert_int_eq(strncmp(out, "walkeep-archive: info: xxx", 26), 0);
    free(out);
    free(msg);
}
END_TEST

START_TEST(test_format_truncation)
{
    wk_error e;
    wk_error_set(&e, WK_ERR_IO, "0123456789");
    wk_error_detail(&e, "detail");
    wk_log_init("p", WK_LOG_INFO);
    char buf[64];

    /* Room for the first line only: the detail line is dropped, not cut. */
    size_t n = wk_log_format_error(buf, 24, &e);
    ck_assert_str_eq(buf, "p: error: 0123456789\n");
    ck_assert_uint_eq(n, 21);

    /* The first line cut short still ends in a newline. */
    n = wk_log_format_error(buf, 16, &e);
    ck_assert_uint_eq(n, 15);
    ck_assert_str_eq(buf, "p: error: 0123\n");

    /* A second line that would not fit whole is cut and newline-terminated. */
    n = wk_log_format_error(buf, 35, &e);
    ck_assert_str_eq(buf, "p: error: 0123456789\np: detail: d\n");
    ck_assert_uint_eq(n, 34);

    /* Too small for even the prefix: nothing. */
    n = wk_log_format_error(buf, 8, &e);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(buf, "");

    n = wk_log_format_error(buf, 1, &e);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(buf, "");
    ck_assert_uint_eq(wk_log_format_error(buf, 0, &e), 0);

    /* A cut never splits a UTF-8 character. */
    wk_error_set(&e, WK_ERR_IO, "ab\xc3\xa9");
    n = wk_log_format_error(buf, 15, &e); /* room for "p: error: ab" + 1 byte + '\n' */
    ck_assert_str_eq(buf, "p: error: ab\n");
    ck_assert_uint_eq(n, 13);
}
END_TEST

START_TEST(test_empty_and_null_error)
{
    char buf[128];
    wk_error e;
    wk_error_clear(&e);
    wk_log_format_error(buf, sizeof(buf), &e);
    ck_assert_str_eq(buf, "walkeep-archive: error: unknown error\n");
    wk_log_format_error(buf, sizeof(buf), NULL);
    ck_assert_str_eq(buf, "walkeep-archive: error: unknown error\n");
}
END_TEST

START_TEST(test_errno_preserved)
{
    capture_start();
    errno = ENOSPC;
    wk_log(WK_LOG_INFO, "x");
    ck_assert_int_eq(errno, ENOSPC);
    wk_error e;
    wk_error_set(&e, WK_ERR_IO, "y");
    errno = EACCES;
    wk_log_error(&e);
    ck_assert_int_eq(errno, EACCES);
    free(capture_end());
}
END_TEST

START_TEST(test_parse_level)
{
    wk_log_level l = WK_LOG_INFO;
    ck_assert_int_eq(wk_log_parse_level("error", &l), 0);
    ck_assert_int_eq(l, WK_LOG_ERROR);
    ck_assert_int_eq(wk_log_parse_level("warning", &l), 0);
    ck_assert_int_eq(l, WK_LOG_WARNING);
    ck_assert_int_eq(wk_log_parse_level("info", &l), 0);
    ck_assert_int_eq(l, WK_LOG_INFO);
    ck_assert_int_eq(wk_log_parse_level("DEBUG", &l), 0);
    ck_assert_int_eq(l, WK_LOG_DEBUG);
    l = WK_LOG_INFO;
    ck_assert_int_eq(wk_log_parse_level("warn", &l), -1);
    ck_assert_int_eq(wk_log_parse_level("", &l), -1);
    ck_assert_int_eq(wk_log_parse_level(" info", &l), -1);
    ck_assert_int_eq(wk_log_parse_level(NULL, &l), -1);
    ck_assert_int_eq(l, WK_LOG_INFO);
}
END_TEST

/* The core's notices reach only the function the program set, with their level. */
static char notice_seen[256];
static wk_log_level notice_level;
static int notice_calls;

static void capture_notice(wk_log_level level, const char *message)
{
    notice_level = level;
    snprintf(notice_seen, sizeof(notice_seen), "%s", message);
    notice_calls++;
}

START_TEST(test_notice_callback)
{
    notice_calls = 0;
    wk_notice_set(NULL);
    wk_notice(WK_LOG_WARNING, "dropped %d", 1); /* no function set: dropped */
    ck_assert_int_eq(notice_calls, 0);
    wk_notice_set(capture_notice);
    wk_notice(WK_LOG_DEBUG, "retrying %s in %.1f s", "PUT", 1.5);
    ck_assert_int_eq(notice_calls, 1);
    ck_assert_int_eq(notice_level, WK_LOG_DEBUG); /* every level: the program filters */
    ck_assert_str_eq(notice_seen, "retrying PUT in 1.5 s");
    wk_notice_set(NULL);
}
END_TEST

/* Sizes for people: 1024 steps, one decimal, the unit always written, never "1024.0". */
START_TEST(test_format_size)
{
    static const struct {
        uint64_t bytes;
        const char *text;
    } cases[] = {
        {0, "0 B"},
        {1023, "1023 B"},
        {1024, "1.0 KiB"},
        {1536, "1.5 KiB"},
        {1048524, "1023.9 KiB"},
        {1048575, "1.0 MiB"},
        {90492108, "86.3 MiB"},
        {(uint64_t)3 << 30, "3.0 GiB"},
        {(uint64_t)5 << 40, "5.0 TiB"},
        {UINT64_MAX, "16.0 EiB"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_str_eq(wk_log_format_size(buf, sizeof(buf), cases[i].bytes), cases[i].text);
    char small[4];
    ck_assert_str_eq(wk_log_format_size(small, sizeof(small), 1536), "1.5");
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, reset, NULL);
    tcase_add_test(tc, test_line_format);
    tcase_add_test(tc, test_default_name_and_level);
    tcase_add_test(tc, test_threshold);
    tcase_add_test(tc, test_error_detail_hint);
    tcase_add_test(tc, test_newlines_sanitised);
    tcase_add_test(tc, test_long_message_truncated_not_split);
    tcase_add_test(tc, test_format_truncation);
    tcase_add_test(tc, test_empty_and_null_error);
    tcase_add_test(tc, test_format_size);
    tcase_add_test(tc, test_errno_preserved);
    tcase_add_test(tc, test_parse_level);
    tcase_add_test(tc, test_notice_callback);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(log_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
