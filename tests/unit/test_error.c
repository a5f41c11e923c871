/* test_error: the status record: set / sys / prefix / detail / hint, what each keeps
 * and clears, truncation of long text (never past a field, always NUL-terminated),
 * NULL records and the stable code names. */
#include <check.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* An error record with guard bytes behind it, so that a write past the last field
 * shows up even without a sanitizer. */
typedef struct guarded_error {
    wk_error err;
    unsigned char guard[64];
} guarded_error;

static void guarded_init(guarded_error *g)
{
    memset(g, 'x', sizeof(*g));
    memset(g->guard, 0xA5, sizeof(g->guard));
}

static void assert_guard(const guarded_error *g)
{
    for (size_t i = 0; i < sizeof(g->guard); i++)
        ck_assert_msg(g->guard[i] == 0xA5, "guard byte %zu overwritten", i);
}

/* A string of n copies of c (malloc'd). */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- set and sys ------------------------------------------------------------------ */

START_TEST(test_set_formats_and_returns_minus_one)
{
    wk_error err;
    memset(&err, 'x', sizeof(err));
    ck_assert_int_eq(wk_error_set(&err, WK_ERR_NOTFOUND, "file \"%s\" has %d bytes", "a", 42), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    ck_assert_int_eq(err.sys_errno, 0);
    ck_assert_str_eq(err.message, "file \"a\" has 42 bytes");
    ck_assert_str_eq(err.detail, "");
    ck_assert_str_eq(err.hint, "");
}
END_TEST

START_TEST(test_set_clears_previous_detail_hint_errno)
{
    wk_error err = {0};
    wk_error_sys(&err, WK_ERR_IO, ENOSPC, "could not write");
    wk_error_detail(&err, "old detail");
    wk_error_hint(&err, "old hint");
    ck_assert_int_eq(err.sys_errno, ENOSPC);
    wk_error_set(&err, WK_ERR_CONFIG, "new");
    ck_assert_int_eq(err.code, WK_ERR_CONFIG);
    ck_assert_int_eq(err.sys_errno, 0);
    ck_assert_str_eq(err.message, "new");
    ck_assert_str_eq(err.detail, "");
    ck_assert_str_eq(err.hint, "");
}
END_TEST

START_TEST(test_sys_appends_strerror)
{
    wk_error err;
    char expected[600];
    memset(&err, 'x', sizeof(err));
    ck_assert_int_eq(wk_error_sys(&err, WK_ERR_IO, ENOENT, "could not open \"%s\"", "f"), -1);
    snprintf(expected, sizeof(expected), "could not open \"f\": %s", strerror(ENOENT));
    ck_assert_str_eq(err.message, expected);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_int_eq(err.sys_errno, ENOENT);
    ck_assert_str_eq(err.detail, "");
    ck_assert_str_eq(err.hint, "");
}
END_TEST

START_TEST(test_sys_does_not_touch_errno_argument_semantics)
{
    /* The recorded errno is the argument, not whatever errno happens to hold. */
    wk_error err = {0};
    errno = EPERM;
    wk_error_sys(&err, WK_ERR_IO, EACCES, "x");
    ck_assert_int_eq(err.sys_errno, EACCES);
    ck_assert_ptr_nonnull(strstr(err.message, strerror(EACCES)));
}
END_TEST

/* ---- detail, hint, clear ----------------------------------------------------------- */

START_TEST(test_detail_and_hint_replace)
{
    wk_error err = {0};
    wk_error_set(&err, WK_ERR_CORRUPT, "bad");
    wk_error_detail(&err, "first %d", 1);
    wk_error_detail(&err, "second %s", "two");
    wk_error_hint(&err, "try %s", "this");
    wk_error_hint(&err, "try %s", "that");
    ck_assert_str_eq(err.detail, "second two");
    ck_assert_str_eq(err.hint, "try that");
    ck_assert_str_eq(err.message, "bad");
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
}
END_TEST

START_TEST(test_clear)
{
    wk_error err;
    memset(&err, 'x', sizeof(err));
    wk_error_clear(&err);
    ck_assert_int_eq(err.code, WK_ERR_NONE);
    ck_assert_int_eq(err.sys_errno, 0);
    ck_assert_str_eq(err.message, "");
    ck_assert_str_eq(err.detail, "");
    ck_assert_str_eq(err.hint, "");
}
END_TEST

/* ---- prefix ------------------------------------------------------------------------ */

START_TEST(test_prefix_keeps_code_errno_detail_hint)
{
    wk_error err = {0};
    char old[600], expected[700];
    wk_error_sys(&err, WK_ERR_TRANSIENT, ECONNRESET, "connection lost");
    wk_error_detail(&err, "the detail");
    wk_error_hint(&err, "the hint");
    snprintf(old, sizeof(old), "%s", err.message);
    ck_assert_int_eq(wk_error_prefix(&err, "could not archive \"%s\"", "x"), -1);
    snprintf(expected, sizeof(expected), "could not archive \"x\": %s", old);
    ck_assert_str_eq(err.message, expected);
    ck_assert_int_eq(err.code, WK_ERR_TRANSIENT);
    ck_assert_int_eq(err.sys_errno, ECONNRESET);
    ck_assert_str_eq(err.detail, "the detail");
    ck_assert_str_eq(err.hint, "the hint");
}
END_TEST

START_TEST(test_prefix_twice)
{
    wk_error err = {0};
    wk_error_set(&err, WK_ERR_IO, "inner");
    wk_error_prefix(&err, "middle");
    wk_error_prefix(&err, "outer %d", 3);
    ck_assert_str_eq(err.message, "outer 3: middle: inner");
}
END_TEST

START_TEST(test_prefix_old_message_not_formatted)
{
    /* The old message is copied as text: a '%' in it must not be interpreted. */
    wk_error err = {0};
    wk_error_set(&err, WK_ERR_IO, "%s", "100%s done %n");
    wk_error_prefix(&err, "ctx");
    ck_assert_str_eq(err.message, "ctx: 100%s done %n");
}
END_TEST

START_TEST(test_prefix_on_empty_message)
{
    wk_error err = {0};
    wk_error_prefix(&err, "ctx");
    ck_assert_str_eq(err.message, "ctx: ");
    ck_assert_int_eq(err.code, WK_ERR_NONE);
}
END_TEST

/* ---- truncation -------------------------------------------------------------------- */

START_TEST(test_set_long_message_truncates)
{
    guarded_error g;
    guarded_init(&g);
    char *text = repeat('m', 3000);
    wk_error_set(&g.err, WK_ERR_IO, "%s", text);
    ck_assert_uint_eq(strlen(g.err.message), sizeof(g.err.message) - 1);
    ck_assert_int_eq(g.err.message[sizeof(g.err.message) - 1], '\0');
    ck_assert_int_eq(g.err.message[0], 'm');
    /* set writes only detail[0] and hint[0]: the rest of them proves no overflow. */
    ck_assert_int_eq(g.err.detail[0], '\0');
    ck_assert_int_eq(g.err.detail[1], 'x');
    ck_assert_int_eq(g.err.hint[1], 'x');
    ck_assert_int_eq(g.err.code, WK_ERR_IO);
    assert_guard(&g);
    free(text);
}
END_TEST

START_TEST(test_sys_long_message_truncates)
{
    guarded_error g;
    guarded_init(&g);
    for (size_t len = sizeof(g.err.message) - 4; len <= sizeof(g.err.message) + 4; len++) {
        char *text = repeat('s', len);
        wk_error_sys(&g.err, WK_ERR_IO, EINVAL, "%s", text);
        ck_assert_uint_eq(strlen(g.err.message), sizeof(g.err.message) - 1);
        ck_assert_int_eq(g.err.sys_errno, EINVAL);
        ck_assert_int_eq(g.err.detail[1], 'x');
        free(text);
    }
    assert_guard(&g);
}
END_TEST

START_TEST(test_prefix_long_old_message_truncates)
{
    guarded_error g;
    guarded_init(&g);
    char *text = repeat('o', sizeof(g.err.message) - 1);
    wk_error_set(&g.err, WK_ERR_CORRUPT, "%s", text);
    wk_error_detail(&g.err, "kept");
    wk_error_prefix(&g.err, "ctx");
    ck_assert_uint_eq(strlen(g.err.message), sizeof(g.err.message) - 1);
    ck_assert_int_eq(strncmp(g.err.message, "ctx: ooo", 8), 0);
    ck_assert_str_eq(g.err.detail, "kept");
    ck_assert_int_eq(g.err.detail[5], 'x');
    ck_assert_int_eq(g.err.code, WK_ERR_CORRUPT);
    assert_guard(&g);
    free(text);
}
END_TEST

START_TEST(test_prefix_long_prefix_every_length)
{
    /* Prefixes around the field size: the ": " and the old text must never run past
     * the end, whatever room is left. */
    for (size_t len = sizeof(((wk_error *)0)->message) - 6;
         len <= sizeof(((wk_error *)0)->message) + 2; len++) {
        guarded_error g;
        guarded_init(&g);
        wk_error_set(&g.err, WK_ERR_IO, "old message");
        char *text = repeat('p', len);
        wk_error_prefix(&g.err, "%s", text);
        size_t n = strlen(g.err.message);
        ck_assert_uint_le(n, sizeof(g.err.message) - 1);
        ck_assert_int_eq(strncmp(g.err.message, text, n < len ? n : len), 0);
        ck_assert_int_eq(g.err.detail[1], 'x');
        ck_assert_int_eq(g.err.code, WK_ERR_IO);
        assert_guard(&g);
        free(text);
    }
}
END_TEST

START_TEST(test_detail_hint_long_truncate)
{
    guarded_error g;
    guarded_init(&g);
    wk_error_set(&g.err, WK_ERR_IO, "m");
    char *text = repeat('d', 5000);
    wk_error_detail(&g.err, "%s", text);
    wk_error_hint(&g.err, "%s", text);
    ck_assert_uint_eq(strlen(g.err.detail), sizeof(g.err.detail) - 1);
    ck_assert_uint_eq(strlen(g.err.hint), sizeof(g.err.hint) - 1);
    ck_assert_str_eq(g.err.message, "m");
    assert_guard(&g);
    free(text);
}
END_TEST

/* ---- NULL records ------------------------------------------------------------------- */

START_TEST(test_null_err_accepted)
{
    ck_assert_int_eq(wk_error_set(NULL, WK_ERR_IO, "x %d", 1), -1);
    ck_assert_int_eq(wk_error_sys(NULL, WK_ERR_IO, EIO, "x %d", 1), -1);
    ck_assert_int_eq(wk_error_prefix(NULL, "x %d", 1), -1);
    wk_error_detail(NULL, "x %d", 1);
    wk_error_hint(NULL, "x %d", 1);
    wk_error_clear(NULL);
}
END_TEST

/* ---- code names ---------------------------------------------------------------------- */

START_TEST(test_errcode_names)
{
    static const struct {
        wk_errcode code;
        const char *name;
    } table[] = {
        {WK_ERR_NONE, "none"},
        {WK_ERR_USAGE, "usage"},
        {WK_ERR_CONFIG, "config"},
        {WK_ERR_IO, "io"},
        {WK_ERR_NOTFOUND, "notfound"},
        {WK_ERR_EXISTS, "exists"},
        {WK_ERR_CONFLICT, "conflict"},
        {WK_ERR_CORRUPT, "corrupt"},
        {WK_ERR_KEY, "key"},
        {WK_ERR_CLUSTER, "cluster"},
        {WK_ERR_TRANSIENT, "transient"},
        {WK_ERR_NOMEM, "nomem"},
        {WK_ERR_INTERNAL, "internal"},
    };
    size_t n = sizeof(table) / sizeof(table[0]);
    ck_assert_int_eq((int)n, (int)WK_ERR_INTERNAL + 1);
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(wk_errcode_name(table[i].code), table[i].name);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(table[i].name, table[j].name);
    }
    ck_assert_str_eq(wk_errcode_name((wk_errcode)(WK_ERR_INTERNAL + 1)), "unknown");
    ck_assert_str_eq(wk_errcode_name((wk_errcode)-1), "unknown");
}
END_TEST

/* A typo away: at most 2 edits and fewer than a third of the candidate's length. */
START_TEST(test_typo_distance)
{
    ck_assert_uint_eq(wk_error_typo_distance("--dry-rn", 8, "--dry-run"), 1);
    ck_assert_uint_eq(wk_error_typo_distance("retention_dump", 14, "retention_dumps"), 1);
    ck_assert_uint_eq(wk_error_typo_distance("compres_levl", 12, "compress_level"), 2);
    ck_assert_uint_eq(wk_error_typo_distance("--jobs=4", 6, "--jobs"), 0); /* len cuts */
    ck_assert_uint_eq(wk_error_typo_distance("rep", 3, "repo"), 1);
    ck_assert_uint_eq(wk_error_typo_distance("re", 2, "repo"), SIZE_MAX); /* 2 of 4: too far */
    ck_assert_uint_eq(wk_error_typo_distance("--bogus", 7, "--dry-run"), SIZE_MAX);
    ck_assert_uint_eq(wk_error_typo_distance("abc", 3, "xyz"), SIZE_MAX);
    char longword[80];
    memset(longword, 'a', sizeof(longword) - 1);
    longword[sizeof(longword) - 1] = '\0';
    ck_assert_uint_eq(wk_error_typo_distance(longword, 79, longword), SIZE_MAX);
}
END_TEST

static Suite *error_suite(void)
{
    Suite *s = suite_create("error");

    TCase *basic = tcase_create("basic");
    tcase_add_test(basic, test_set_formats_and_returns_minus_one);
    tcase_add_test(basic, test_set_clears_previous_detail_hint_errno);
    tcase_add_test(basic, test_sys_appends_strerror);
    tcase_add_test(basic, test_sys_does_not_touch_errno_argument_semantics);
    tcase_add_test(basic, test_detail_and_hint_replace);
    tcase_add_test(basic, test_clear);
    suite_add_tcase(s, basic);

    TCase *prefix = tcase_create("prefix");
    tcase_add_test(prefix, test_prefix_keeps_code_errno_detail_hint);
    tcase_add_test(prefix, test_prefix_twice);
    tcase_add_test(prefix, test_prefix_old_message_not_formatted);
    tcase_add_test(prefix, test_prefix_on_empty_message);
    suite_add_tcase(s, prefix);

    TCase *trunc = tcase_create("truncation");
    tcase_add_test(trunc, test_set_long_message_truncates);
    tcase_add_test(trunc, test_sys_long_message_truncates);
    tcase_add_test(trunc, test_prefix_long_old_message_truncates);
    tcase_add_test(trunc, test_prefix_long_prefix_every_length);
    tcase_add_test(trunc, test_detail_hint_long_truncate);
    suite_add_tcase(s, trunc);

    TCase *misc = tcase_create("misc");
    tcase_add_test(misc, test_null_err_accepted);
    tcase_add_test(misc, test_errcode_names);
    tcase_add_test(misc, test_typo_distance);
    suite_add_tcase(s, misc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(error_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
