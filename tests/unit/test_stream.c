/* test_stream: the stage plumbing and the simple stages: fingerprint (XXH3-128, pinned
 * against xxhash itself), fingerprint check (a mismatch never finishes the sink), count,
 * fd and memory sinks, and the fd pump over files and pipes at buffer-boundary sizes. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stream.h"
#include "support.h"

/* ---- helpers ---------------------------------------------------------------------- */

static char tmp_dir[256];

static void setup(void)
{
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk_stream_XXXXXX");
}

static void teardown(void)
{
    ts_tmpdir_remove(tmp_dir);
}

static void assert_fp_eq(const wk_fingerprint *got, const wk_fingerprint *want)
{
    char g[WK_FINGERPRINT_HEX_LEN + 1], w[WK_FINGERPRINT_HEX_LEN + 1];
    wk_fingerprint_hex(got, g);
    wk_fingerprint_hex(want, w);
    ck_assert_str_eq(g, w);
    ck_assert(wk_fingerprint_equal(got, want));
}

/* Runs data through a fingerprint stage in chunks of `chunk` bytes (0: one write). */
static wk_stream_summary fingerprint_chunks(const unsigned char *data, size_t len, size_t chunk)
{
    wk_error err = {0};
    wk_stream_summary summary;
    memset(&summary, 0xEE, sizeof(summary));
    wk_stage *s = wk_stage_fingerprint_new(NULL, &summary, &err);
    ck_assert_ptr_nonnull(s);
    if (chunk == 0)
        chunk = len > 0 ? len : 1;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        ck_assert_int_eq(wk_stage_write(s, data + off, n, &err), 0);
    }
    ck_assert_int_eq(wk_stage_finish(s, &err), 0);
    wk_stage_free(s);
    return summary;
}

static const char *data_path(void)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/data", tmp_dir);
    return path;
}

static const size_t awkward_sizes[] = {
    0,
    1,
    2,
    WK_STREAM_BUFSIZE - 1,
    WK_STREAM_BUFSIZE,
    WK_STREAM_BUFSIZE + 1,
    3 * WK_STREAM_BUFSIZE + 7,
};
#define N_AWKWARD (sizeof(awkward_sizes) / sizeof(awkward_sizes[0]))

/* ---- fingerprint ---------------------------------------------------------------------- */

START_TEST(test_fingerprint_empty)
{
    wk_fingerprint want = ts_fingerprint("", 0);
    /* No write at all, and one empty write, give the same fingerprint. */
    wk_stream_summary a = fingerprint_chunks((const unsigned char *)"", 0, 0);
    ck_assert_uint_eq(a.bytes, 0);
    assert_fp_eq(&a.fingerprint, &want);

    wk_error err = {0};
    wk_stream_summary b;
    wk_stage *s = wk_stage_fingerprint_new(NULL, &b, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(wk_stage_write(s, "", 0, &err), 0);
    ck_assert_int_eq(wk_stage_finish(s, &err), 0);
    wk_stage_free(s);
    ck_assert_uint_eq(b.bytes, 0);
    assert_fp_eq(&b.fingerprint, &want);

    /* Pinned value, so that a change of hash (or byte order) is noticed. */
    char hex[WK_FINGERPRINT_HEX_LEN + 1];
    wk_fingerprint_hex(&a.fingerprint, hex);
    ck_assert_str_eq(hex, "99aa06d3014798d86001c324468d497f");
}
END_TEST

START_TEST(test_fingerprint_abc)
{
    wk_fingerprint want = ts_fingerprint("abc", 3);
    wk_stream_summary one = fingerprint_chunks((const unsigned char *)"abc", 3, 0);
    wk_stream_summary split = fingerprint_chunks((const unsigned char *)"abc", 3, 1);
    ck_assert_uint_eq(one.bytes, 3);
    ck_assert_uint_eq(split.bytes, 3);
    assert_fp_eq(&one.fingerprint, &want);
    assert_fp_eq(&split.fingerprint, &want);
    /* Differs from the empty input's, of course. */
    wk_fingerprint empty = ts_fingerprint("", 0);
    ck_assert(!wk_fingerprint_equal(&one.fingerprint, &empty));
}
END_TEST

START_TEST(test_fingerprint_split_writes)
{
    static const size_t chunks[] = {0, 1, 7, 4096, WK_STREAM_BUFSIZE - 1, WK_STREAM_BUFSIZE + 1};
    size_t len = 2 * WK_STREAM_BUFSIZE + 13;
    unsigned char *data = ts_pattern(len, 1);
    wk_fingerprint want = ts_fingerprint(data, len);
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        if (chunks[i] == 1)
            continue; /* covered by "abc"; byte-at-a-time over 512 KiB is slow under ASan */
        wk_stream_summary s = fingerprint_chunks(data, len, chunks[i]);
        ck_assert_uint_eq(s.bytes, len);
        assert_fp_eq(&s.fingerprint, &want);
    }
    /* Byte-at-a-time over a shorter input. */
    wk_stream_summary s = fingerprint_chunks(data, 1000, 1);
    wk_fingerprint want1000 = ts_fingerprint(data, 1000);
    assert_fp_eq(&s.fingerprint, &want1000);
    free(data);
}
END_TEST

START_TEST(test_fingerprint_passes_bytes_through)
{
    wk_error err = {0};
    size_t len = WK_STREAM_BUFSIZE + 1;
    unsigned char *data = ts_pattern(len, 2);
    uint8_t *out = NULL;
    size_t out_len = 0;
    wk_stream_summary summary;
    wk_stage *s = wk_stage_memory_new(len, &out, &out_len, &err);
    ck_assert_ptr_nonnull(s);
    s = wk_stage_fingerprint_new(s, &summary, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(wk_stage_write(s, data, 100, &err), 0);
    ck_assert_int_eq(wk_stage_write(s, data + 100, len - 100, &err), 0);
    /* Nothing is handed out before finish. */
    ck_assert_ptr_null(out);
    ck_assert_int_eq(wk_stage_finish(s, &err), 0);
    wk_stage_free(s);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(out_len, len);
    ck_assert_int_eq(memcmp(out, data, len), 0);
    ck_assert_uint_eq(summary.bytes, len);
    wk_fingerprint want = ts_fingerprint(data, len);
    assert_fp_eq(&summary.fingerprint, &want);
    free(out);
    free(data);
}
END_TEST

START_TEST(test_fingerprint_free_without_finish)
{
    /* Freeing an unfinished chain frees everything behind it (ASan/LSan watch) and
     * hands nothing out. */
    wk_error err = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    wk_stage *s = wk_stage_memory_new(1024, &out, &out_len, &err);
    s = wk_stage_fingerprint_new(s, NULL, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(wk_stage_write(s, "hello", 5, &err), 0);
    wk_stage_free(s);
    ck_assert_ptr_null(out);
    wk_stage_free(NULL);
}
END_TEST

/* ---- hex ------------------------------------------------------------------------------- */

START_TEST(test_hex_known)
{
    wk_fingerprint fp;
    char hex[WK_FINGERPRINT_HEX_LEN + 1];
    for (size_t i = 0; i < sizeof(fp.bytes); i++)
        fp.bytes[i] = (uint8_t)(i * 0x11);
    fp.bytes[0] = 0x00;
    fp.bytes[1] = 0xff;
    fp.bytes[2] = 0x0a;
    fp.bytes[3] = 0xa0;
    memset(hex, 'Z', sizeof(hex));
    wk_fingerprint_hex(&fp, hex);
    ck_assert_str_eq(hex, "00ff0aa0445566778899aabbccddeeff");
    ck_assert_uint_eq(strlen(hex), WK_FINGERPRINT_HEX_LEN);
}
END_TEST

START_TEST(test_hex_roundtrip)
{
    for (unsigned seed = 0; seed < 64; seed++) {
        unsigned char *bytes = ts_pattern(16, seed);
        wk_fingerprint fp, back;
        char hex[WK_FINGERPRINT_HEX_LEN + 1];
        memcpy(fp.bytes, bytes, 16);
        wk_fingerprint_hex(&fp, hex);
        memset(&back, 0, sizeof(back));
        ck_assert_int_eq(wk_fingerprint_parse(hex, &back), 0);
        ck_assert(wk_fingerprint_equal(&fp, &back));
        free(bytes);
    }
}
END_TEST

START_TEST(test_parse_rejects)
{
    static const char *const bad[] = {
        "",
        "0",
        "0123456789abcdef0123456789abcde",   /* 31 */
        "0123456789abcdef0123456789abcdef0", /* 33 */
        "0123456789ABCDEF0123456789abcdef",  /* upper case */
        "0123456789abcdef0123456789abcdeF",  /* upper case, last digit */
        "g123456789abcdef0123456789abcdef",  /* non-hex first */
        "0123456789abcdef0123456789abcdeg",  /* non-hex last */
        "0123456789abcdef 123456789abcdef",  /* space */
        " 0123456789abcdef0123456789abcdef", /* leading space, 33 */
        "0123456789abcdef0123456789abcde ",  /* trailing space */
        "0x23456789abcdef0123456789abcdef",  /* prefix */
        "0123456789abcdef0123456789abcdef\n",
        "-123456789abcdef0123456789abcdef",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wk_fingerprint fp;
        memset(&fp, 0x5A, sizeof(fp));
        ck_assert_msg(wk_fingerprint_parse(bad[i], &fp) == -1, "accepted \"%s\"", bad[i]);
        /* Out-parameters are written only on success. */
        for (size_t j = 0; j < sizeof(fp.bytes); j++)
            ck_assert_int_eq(fp.bytes[j], 0x5A);
    }
    wk_fingerprint ok;
    ck_assert_int_eq(wk_fingerprint_parse("0123456789abcdef0123456789abcdef", &ok), 0);
    ck_assert_int_eq(ok.bytes[0], 0x01);
    ck_assert_int_eq(ok.bytes[15], 0xef);
}
END_TEST

START_TEST(test_fingerprint_equal)
{
    wk_fingerprint a, b;
    memset(&a, 1, sizeof(a));
    memset(&b, 1, sizeof(b));
    ck_assert(wk_fingerprint_equal(&a, &b));
    b.bytes[15] = 2;
    ck_assert(!wk_fingerprint_equal(&a, &b));
    b.bytes[15] = 1;
    b.bytes[0] = 0;
    ck_assert(!wk_fingerprint_equal(&a, &b));
}
END_TEST

/* ---- fingerprint check --------------------------------------------------------------- */

START_TEST(test_check_match_finishes_next)
{
    wk_error err = {0};
    unsigned char *data = ts_pattern(5000, 3);
    wk_fingerprint expected = ts_fingerprint(data, 5000);
    uint8_t *out = NULL;
    size_t out_len = 0;
    wk_stream_summary summary;
    wk_stage *s = wk_stage_memory_new(1 << 20, &out, &out_len, &err);
    s = wk_stage_fingerprint_check_new(s, &expected, &summary, &err);
    ck_assert_ptr_nonnull(s);
    /* The expected value is copied: changing the caller's copy changes nothing. */
    memset(&expected, 0, sizeof(expected));
    ck_assert_int_eq(wk_stage_write(s, data, 5000, &err), 0);
    ck_assert_int_eq(wk_stage_finish(s, &err), 0);
    wk_stage_free(s);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(out_len, 5000);
    ck_assert_int_eq(memcmp(out, data, 5000), 0);
    ck_assert_uint_eq(summary.bytes, 5000);
    free(out);
    free(data);
}
END_TEST

START_TEST(test_check_match_null_summary_empty)
{
    wk_error err = {0};
    wk_fingerprint expected = ts_fingerprint("", 0);
    uint8_t *out = NULL;
    size_t out_len = 99;
    wk_stage *s = wk_stage_memory_new(10, &out, &out_len, &err);
    s = wk_stage_fingerprint_check_new(s, &expected, NULL, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(wk_stage_finish(s, &err), 0);
    wk_stage_free(s);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(out_len, 0);
    free(out);
}
END_TEST

START_TEST(test_check_mismatch_does_not_finish_next)
{
    static const size_t sizes[] = {0, 1, 4096};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        wk_error err = {0};
        unsigned char *data = ts_pattern(sizes[i], 4);
        unsigned char *other = ts_pattern(sizes[i] + 1, 5);
        wk_fingerprint expected = ts_fingerprint(other, sizes[i] + 1);
        uint8_t *out = NULL;
        size_t out_len = 12345;
        wk_stage *s = wk_stage_memory_new(1 << 20, &out, &out_len, &err);
        s = wk_stage_fingerprint_check_new(s, &expected, NULL, &err);
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(wk_stage_write(s, data, sizes[i], &err), 0);
        ck_assert_int_eq(wk_stage_finish(s, &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
        ck_assert_ptr_null(out);
        ck_assert_uint_eq(out_len, 12345);
        /* The detail names both fingerprints. */
        char want_hex[WK_FINGERPRINT_HEX_LEN + 1];
        wk_fingerprint_hex(&expected, want_hex);
        ck_assert_ptr_nonnull(strstr(err.detail, want_hex));
        wk_stage_free(s);
        ck_assert_ptr_null(out);
        free(data);
        free(other);
    }
}
END_TEST

START_TEST(test_check_single_bit_difference)
{
    wk_error err = {0};
    unsigned char *data = ts_pattern(WK_STREAM_BUFSIZE, 6);
    wk_fingerprint expected = ts_fingerprint(data, WK_STREAM_BUFSIZE);
    data[WK_STREAM_BUFSIZE / 2] ^= 0x01;
    uint8_t *out = NULL;
    size_t out_len = 0;
    wk_stage *s = wk_stage_memory_new(WK_STREAM_BUFSIZE, &out, &out_len, &err);
    s = wk_stage_fingerprint_check_new(s, &expected, NULL, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(wk_stage_write(s, data, WK_STREAM_BUFSIZE, &err), 0);
    ck_assert_int_eq(wk_stage_finish(s, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    wk_stage_free(s);
    ck_assert_ptr_null(out);
    free(data);
}
END_TEST

/* ---- count ------------------------------------------------------------------------------ */

START_TEST(test_count_stage)
{
    wk_error err = {0};
    uint64_t count = 999;
    uint8_t *out = NULL;
    size_t out_len = 0;
    wk_stage *s = wk_stage_memory_new(100, &out, &out_len, &err);
    s = wk_stage_count_new(s, &count, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(count, 0);
    ck_assert_int_eq(wk_stage_write(s, "abc", 3, &err), 0);
    ck_assert_uint_eq(count, 3); /* updated as bytes pass */
    ck_assert_int_eq(wk_stage_write(s, "", 0, &err), 0);
    ck_assert_int_eq(wk_stage_write(s, "defg", 4, &err), 0);
    ck_assert_uint_eq(count, 7);
    ck_assert_int_eq(wk_stage_finish(s, &err), 0);
    wk_stage_free(s);
    ck_assert_uint_eq(count, 7);
    ck_assert_uint_eq(out_len, 7);
    ck_assert_int_eq(memcmp(out, "abcdefg", 7), 0);
    free(out);
}
END_TEST

START_TEST(test_count_stage_as_sink)
{
    wk_error err = {0};
    uint64_t count = 5;
    wk_stage *s = wk_stage_count_new(NULL, &count, &err);
    ck_assert_ptr_nonnull(s);
    unsigned char *data = ts_pattern(WK_STREAM_BUFSIZE + 1, 7);
    ck_assert_int_eq(wk_stage_write(s, data, WK_STREAM_BUFSIZE + 1, &err), 0);
    ck_assert_int_eq(wk_stage_finish(s, &err), 0);
    ck_assert_uint_eq(count, WK_STREAM_BUFSIZE + 1);
    wk_stage_free(s);
    free(data);
}
END_TEST

/* ---- memory sink -------------------------------------------------------------------------- */

START_TEST(test_memory_limit_exact)
{
    wk_error err = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    unsigned char *data = ts_pattern(10000, 8);
    wk_stage *s = wk_stage_memory_new(10000, &out, &out_len, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(wk_stage_write(s, data, 9999, &err), 0);
    ck_assert_int_eq(wk_stage_write(s, data + 9999, 1, &err), 0);
    ck_assert_int_eq(wk_stage_write(s, data, 0, &err), 0); /* 0 more bytes still fits */
    ck_assert_int_eq(wk_stage_finish(s, &err), 0);
    wk_stage_free(s);
    ck_assert_uint_eq(out_len, 10000);
    ck_assert_int_eq(memcmp(out, data, 10000), 0);
    /* The buffer handed out is NUL-terminated for text parsers. */
    ck_assert_int_eq(out[10000], 0);
    free(out);
    free(data);
}
END_TEST

START_TEST(test_memory_limit_exceeded)
{
    wk_error err = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    unsigned char *data = ts_pattern(10001, 9);
    /* One write too large. */
    wk_stage *s = wk_stage_memory_new(10000, &out, &out_len, &err);
    ck_assert_int_eq(wk_stage_write(s, data, 10001, &err), -1);
    ck_assert_int_ne(err.code, WK_ERR_NONE);
    ck_assert_str_ne(err.message, "");
    wk_stage_free(s);
    ck_assert_ptr_null(out);

    /* The limit crossed over several writes. */
    wk_error_clear(&err);
    s = wk_stage_memory_new(10000, &out, &out_len, &err);
    ck_assert_int_eq(wk_stage_write(s, data, 5000, &err), 0);
    ck_assert_int_eq(wk_stage_write(s, data, 5000, &err), 0);
    ck_assert_int_eq(wk_stage_write(s, data, 1, &err), -1);
    ck_assert_int_ne(err.code, WK_ERR_NONE);
    wk_stage_free(s);
    ck_assert_ptr_null(out);

    /* A zero limit takes nothing but an empty object. */
    wk_error_clear(&err);
    s = wk_stage_memory_new(0, &out, &out_len, &err);
    ck_assert_int_eq(wk_stage_write(s, data, 1, &err), -1);
    wk_stage_free(s);
    s = wk_stage_memory_new(0, &out, &out_len, &err);
    ck_assert_int_eq(wk_stage_finish(s, &err), 0);
    wk_stage_free(s);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(out_len, 0);
    ck_assert_int_eq(out[0], 0);
    free(out);
    free(data);
}
END_TEST

START_TEST(test_memory_limit_huge_no_overflow)
{
    /* A SIZE_MAX limit must not wrap the size arithmetic. */
    wk_error err = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    wk_stage *s = wk_stage_memory_new(SIZE_MAX, &out, &out_len, &err);
    ck_assert_int_eq(wk_stage_write(s, "abc", 3, &err), 0);
    ck_assert_int_eq(wk_stage_finish(s, &err), 0);
    wk_stage_free(s);
    ck_assert_uint_eq(out_len, 3);
    ck_assert_str_eq((char *)out, "abc");
    free(out);
}
END_TEST

/* ---- fd sink ----------------------------------------------------------------------------- */

START_TEST(test_fd_sink)
{
    wk_error err = {0};
    size_t len = WK_STREAM_BUFSIZE + 1;
    unsigned char *data = ts_pattern(len, 10);
    int fd = open(data_path(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    wk_stage *s = wk_stage_fd_new(fd, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(wk_stage_write(s, data, 1, &err), 0);
    ck_assert_int_eq(wk_stage_write(s, data + 1, len - 1, &err), 0);
    ck_assert_int_eq(wk_stage_finish(s, &err), 0);
    wk_stage_free(s);
    /* The fd is not owned: still open. */
    ck_assert_int_eq(write(fd, "", 0), 0);
    ck_assert_int_eq(close(fd), 0);

    fd = open(data_path(), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    wk_stream_summary summary;
    ck_assert_int_eq(wk_stream_fingerprint_fd(fd, &summary, &err), 0);
    close(fd);
    ck_assert_uint_eq(summary.bytes, len);
    wk_fingerprint want = ts_fingerprint(data, len);
    assert_fp_eq(&summary.fingerprint, &want);
    free(data);
}
END_TEST

START_TEST(test_fd_sink_write_error)
{
    wk_error err = {0};
    int fd = open(data_path(), O_RDONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    wk_stage *s = wk_stage_fd_new(fd, &err);
    ck_assert_int_eq(wk_stage_write(s, "x", 1, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_int_eq(err.sys_errno, EBADF);
    wk_stage_free(s);
    close(fd);
}
END_TEST

/* ---- pump ---------------------------------------------------------------------------------- */

static void pump_and_check(int fd, const unsigned char *data, size_t len)
{
    wk_error err = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    uint64_t total = 12345;
    wk_stream_summary summary;
    wk_stage *s = wk_stage_memory_new(len, &out, &out_len, &err);
    s = wk_stage_fingerprint_new(s, &summary, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(wk_stream_pump_fd(fd, s, &total, &err) == 0, "pump %zu: %s", len, err.message);
    ck_assert_uint_eq(total, len);
    /* The pump does not finish the stage. */
    ck_assert_ptr_null(out);
    ck_assert_int_eq(wk_stage_finish(s, &err), 0);
    wk_stage_free(s);
    ck_assert_uint_eq(out_len, len);
    ck_assert(len == 0 || memcmp(out, data, len) == 0);
    ck_assert_uint_eq(summary.bytes, len);
    wk_fingerprint want = ts_fingerprint(data, len);
    assert_fp_eq(&summary.fingerprint, &want);
    free(out);
}

START_TEST(test_pump_file_sizes)
{
    for (size_t i = 0; i < N_AWKWARD; i++) {
        size_t len = awkward_sizes[i];
        unsigned char *data = ts_pattern(len, (unsigned)i + 20);
        ts_write_file(data_path(), data, len);
        int fd = open(data_path(), O_RDONLY);
        ck_assert_int_ge(fd, 0);
        pump_and_check(fd, data, len);
        close(fd);
        free(data);
    }
}
END_TEST

START_TEST(test_pump_pipe_sizes)
{
    for (size_t i = 0; i < N_AWKWARD; i++) {
        size_t len = awkward_sizes[i];
        unsigned char *data = ts_pattern(len, (unsigned)i + 40);
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            /* Writer: small uneven writes so reads come back short. */
            close(p[0]);
            size_t off = 0;
            while (off < len) {
                size_t n = len - off < 10007 ? len - off : 10007;
                ssize_t w = write(p[1], data + off, n);
                if (w <= 0)
                    _exit(1);
                off += (size_t)w;
            }
            close(p[1]);
            _exit(0);
        }
        close(p[1]);
        pump_and_check(p[0], data, len);
        close(p[0]);
        int status = 0;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        free(data);
    }
}
END_TEST

START_TEST(test_pump_null_total)
{
    wk_error err = {0};
    ts_write_file(data_path(), "hello", 5);
    int fd = open(data_path(), O_RDONLY);
    uint64_t count = 0;
    wk_stage *s = wk_stage_count_new(NULL, &count, &err);
    ck_assert_int_eq(wk_stream_pump_fd(fd, s, NULL, &err), 0);
    ck_assert_uint_eq(count, 5);
    wk_stage_free(s);
    close(fd);
}
END_TEST

START_TEST(test_pump_read_error)
{
    wk_error err = {0};
    uint64_t count = 0;
    uint64_t total = 777;
    wk_stage *s = wk_stage_count_new(NULL, &count, &err);
    int fd = open(tmp_dir, O_RDONLY | O_DIRECTORY); /* read(2) on a folder: EISDIR */
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(wk_stream_pump_fd(fd, s, &total, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_int_eq(err.sys_errno, EISDIR);
    ck_assert_uint_eq(total, 777); /* written only on success */
    close(fd);
    wk_error_clear(&err);
    ck_assert_int_eq(wk_stream_pump_fd(-1, s, &total, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_int_eq(err.sys_errno, EBADF);
    wk_stage_free(s);
}
END_TEST

START_TEST(test_pump_stage_error_propagates)
{
    wk_error err = {0};
    size_t len = WK_STREAM_BUFSIZE + 1;
    unsigned char *data = ts_pattern(len, 11);
    ts_write_file(data_path(), data, len);
    int fd = open(data_path(), O_RDONLY);
    uint8_t *out = NULL;
    size_t out_len = 0;
    wk_stage *s = wk_stage_memory_new(len - 1, &out, &out_len, &err);
    ck_assert_int_eq(wk_stream_pump_fd(fd, s, NULL, &err), -1);
    ck_assert_int_ne(err.code, WK_ERR_NONE);
    wk_stage_free(s);
    ck_assert_ptr_null(out);
    close(fd);
    free(data);
}
END_TEST

START_TEST(test_fingerprint_fd_sizes)
{
    for (size_t i = 0; i < N_AWKWARD; i++) {
        wk_error err = {0};
        size_t len = awkward_sizes[i];
        unsigned char *data = ts_pattern(len, (unsigned)i + 60);
        ts_write_file(data_path(), data, len);
        int fd = open(data_path(), O_RDONLY);
        wk_stream_summary summary;
        ck_assert_int_eq(wk_stream_fingerprint_fd(fd, &summary, &err), 0);
        close(fd);
        ck_assert_uint_eq(summary.bytes, len);
        wk_fingerprint want = ts_fingerprint(data, len);
        assert_fp_eq(&summary.fingerprint, &want);
        free(data);
    }
}
END_TEST

START_TEST(test_fingerprint_fd_error)
{
    wk_error err = {0};
    wk_stream_summary summary;
    ck_assert_int_eq(wk_stream_fingerprint_fd(-1, &summary, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
}
END_TEST

START_TEST(test_fingerprint_peek_and_sink_of)
{
    wk_error err = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    wk_stream_summary peeked, final;
    wk_stage *sink = wk_stage_memory_new(1024, &out, &out_len, &err);
    wk_stage *chain = wk_stage_fingerprint_new(sink, &final, &err);
    ck_assert_ptr_nonnull(chain);
    ck_assert_ptr_eq(wk_stage_sink_of(chain), sink);
    ck_assert_int_eq(wk_stage_write(chain, "abc", 3, &err), 0);
    wk_stage_fingerprint_peek(chain, &peeked);
    ck_assert_uint_eq(peeked.bytes, 3);
    /* Peeking changes nothing: more data and finish give the fingerprint of all of it. */
    ck_assert_int_eq(wk_stage_write(chain, "def", 3, &err), 0);
    ck_assert_int_eq(wk_stage_finish(chain, &err), 0);
    ck_assert_uint_eq(final.bytes, 6);
    ck_assert(!wk_fingerprint_equal(&peeked.fingerprint, &final.fingerprint));
    wk_stage_fingerprint_peek(chain, &peeked);
    ck_assert(wk_fingerprint_equal(&peeked.fingerprint, &final.fingerprint));
    ck_assert_str_eq((char *)out, "abcdef");
    free(out);
    wk_stage_free(chain);
}
END_TEST

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");

    TCase *fp = tcase_create("fingerprint");
    tcase_add_checked_fixture(fp, setup, teardown);
    tcase_add_test(fp, test_fingerprint_empty);
    tcase_add_test(fp, test_fingerprint_abc);
    tcase_add_test(fp, test_fingerprint_split_writes);
    tcase_add_test(fp, test_fingerprint_passes_bytes_through);
    tcase_add_test(fp, test_fingerprint_free_without_finish);
    tcase_add_test(fp, test_hex_known);
    tcase_add_test(fp, test_hex_roundtrip);
    tcase_add_test(fp, test_parse_rejects);
    tcase_add_test(fp, test_fingerprint_equal);
    suite_add_tcase(s, fp);

    TCase *check = tcase_create("check");
    tcase_add_checked_fixture(check, setup, teardown);
    tcase_add_test(check, test_check_match_finishes_next);
    tcase_add_test(check, test_check_match_null_summary_empty);
    tcase_add_test(check, test_check_mismatch_does_not_finish_next);
    tcase_add_test(check, test_check_single_bit_difference);
    suite_add_tcase(s, check);

    TCase *sinks = tcase_create("sinks");
    tcase_add_checked_fixture(sinks, setup, teardown);
    tcase_add_test(sinks, test_count_stage);
    tcase_add_test(sinks, test_count_stage_as_sink);
    tcase_add_test(sinks, test_memory_limit_exact);
    tcase_add_test(sinks, test_memory_limit_exceeded);
    tcase_add_test(sinks, test_memory_limit_huge_no_overflow);
    tcase_add_test(sinks, test_fd_sink);
    tcase_add_test(sinks, test_fd_sink_write_error);
    suite_add_tcase(s, sinks);

    TCase *pump = tcase_create("pump");
    tcase_add_checked_fixture(pump, setup, teardown);
    tcase_set_timeout(pump, 60);
    tcase_add_test(pump, test_pump_file_sizes);
    tcase_add_test(pump, test_pump_pipe_sizes);
    tcase_add_test(pump, test_pump_null_total);
    tcase_add_test(pump, test_pump_read_error);
    tcase_add_test(pump, test_pump_stage_error_propagates);
    tcase_add_test(pump, test_fingerprint_fd_sizes);
    tcase_add_test(pump, test_fingerprint_fd_error);
    tcase_add_test(pump, test_fingerprint_peek_and_sink_of);
    suite_add_tcase(s, pump);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(stream_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
