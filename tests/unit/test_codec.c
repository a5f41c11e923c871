/* test_codec: round trips over awkward sizes and piece sizes, every level boundary,
 * truncation, tampering, trailing data and interop with the stock lz4 / zstd tools. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lz4frame.h>
#include <zstd.h>

#include "codec.h"

#define SINK_LIMIT ((size_t)64 * 1024 * 1024)
#define MIB ((size_t)1024 * 1024)

static const wk_compress algs[] = {WK_COMPRESS_NONE, WK_COMPRESS_LZ4, WK_COMPRESS_ZSTD};
static const wk_compress packed[] = {WK_COMPRESS_LZ4, WK_COMPRESS_ZSTD};

/* ---- data ----------------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64*: deterministic, good enough to be incompressible */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

enum { DATA_TEXT, DATA_RANDOM, DATA_SPARSE };

/* DATA_TEXT looks a little like WAL: 8 KiB pages of repeated records with counters and
 * a sprinkling of random bytes; DATA_RANDOM does not compress at all; DATA_SPARSE is
 * DATA_TEXT with few random bytes, so that small frames hold several lz4 blocks. */
static uint8_t *make_data(size_t len, int kind, uint64_t seed)
{
    uint8_t *buf = malloc(len + 1);
    ck_assert_ptr_nonnull(buf);
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    if (kind == DATA_RANDOM) {
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)(rng() >> 56);
        return buf;
    }
    static const char words[] = "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) ";
    for (size_t i = 0; i < len; i++) {
        size_t page = i / 8192, off = i % 8192;
        if (off < 24)
            buf[i] = (uint8_t)(page >> (8 * (off % 4)));
        else if (rng() % (kind == DATA_SPARSE ? 1024 : 16) == 0)
            buf[i] = (uint8_t)(rng() >> 56);
        else
            buf[i] = (uint8_t)words[(off + page) % (sizeof(words) - 1)];
    }
    return buf;
}

/* ---- running a stage ------------------------------------------------------------ */

enum { FAILED_NONE, FAILED_NEW, FAILED_WRITE, FAILED_FINISH };

typedef struct result {
    int failed; /* where it failed, FAILED_NONE if it did not */
    wk_error err;
    uint8_t *out;
    size_t out_len;
} result;

static void result_free(result *r)
{
    free(r->out);
    r->out = NULL;
}

/* Pushes in[0..len) through a codec stage into a memory sink, `piece` bytes per write. */
static result run(int compress, wk_compress alg, int level, const uint8_t *in, size_t len,
                  size_t piece)
{
    result r;
    memset(&r, 0, sizeof(r));
    wk_stage *s = wk_stage_memory_new(SINK_LIMIT, &r.out, &r.out_len, &r.err);
    ck_assert_ptr_nonnull(s);
    s = compress ? wk_codec_compress_new(s, alg, level, &r.err)
                 : wk_codec_decompress_new(s, alg, &r.err);
    if (s == NULL) {
        r.failed = FAILED_NEW;
        return r;
    }
    for (size_t pos = 0; pos < len; pos += piece) {
        size_t n = len - pos < piece ? len - pos : piece;
        if (wk_stage_write(s, in + pos, n, &r.err) != 0) {
            r.failed = FAILED_WRITE;
            goto out;
        }
    }
    if (wk_stage_finish(s, &r.err) != 0)
        r.failed = FAILED_FINISH;
out:
    wk_stage_free(s);
    if (r.failed != FAILED_NONE)
        result_free(&r);
    return r;
}

static result compress_ok(wk_compress alg, int level, const uint8_t *in, size_t len, size_t piece)
{
    result r = run(1, alg, level, in, len, piece);
    ck_assert_msg(r.failed == FAILED_NONE, "compress %s failed: %s", wk_codec_extension(alg),
                  r.err.message);
    return r;
}

static void assert_corrupt(const result *r, const char *what)
{
    ck_assert_msg(r->failed == FAILED_WRITE || r->failed == FAILED_FINISH,
                  "%s: decompression succeeded", what);
    ck_assert_msg(r->err.code == WK_ERR_CORRUPT, "%s: code %s (%s)", what,
                  wk_errcode_name(r->err.code), r->err.message);
    ck_assert_msg(strchr(r->err.message, '\n') == NULL && r->err.message[0] != '\0' &&
                      r->err.message[strlen(r->err.message) - 1] != '.',
                  "%s: bad message \"%s\"", what, r->err.message);
}

/* The frame is a standard one with the properties the design promises. */
static void check_frame_format(wk_compress alg, const uint8_t *f, size_t len)
{
    if (alg == WK_COMPRESS_LZ4) {
        ck_assert_uint_ge(len, 7 + 4 + 4);
        ck_assert_uint_eq(f[0], 0x04);
        ck_assert_uint_eq(f[1], 0x22);
        ck_assert_uint_eq(f[2], 0x4d);
        ck_assert_uint_eq(f[3], 0x18);
        /* FLG: version 01, independent blocks, block checksums, no content size,
         * content checksum, no dictionary */
        ck_assert_uint_eq(f[4], 0x74);
        /* BD: 64 KiB blocks */
        ck_assert_uint_eq(f[5], 0x40);
    } else if (alg == WK_COMPRESS_ZSTD) {
        ck_assert_uint_ge(len, 9);
        ck_assert_uint_eq(f[0], 0x28);
        ck_assert_uint_eq(f[1], 0xb5);
        ck_assert_uint_eq(f[2], 0x2f);
        ck_assert_uint_eq(f[3], 0xfd);
        ck_assert_uint_eq(f[4] & 0x04, 0x04); /* content checksum flag */
        ck_assert_uint_eq(f[4] & 0x03, 0);    /* no dictionary */
    }
}

static void round_trip(wk_compress alg, int level, const uint8_t *data, size_t len, size_t cpiece,
                       size_t dpiece)
{
    result c = compress_ok(alg, level, data, len, cpiece);
    check_frame_format(alg, c.out, c.out_len);
    if (alg == WK_COMPRESS_NONE) {
        ck_assert_uint_eq(c.out_len, len);
        ck_assert(len == 0 || memcmp(c.out, data, len) == 0);
    }
    result d = run(0, alg, 0, c.out, c.out_len, dpiece);
    ck_assert_msg(d.failed == FAILED_NONE,
                  "%s: %zu bytes in pieces of %zu/%zu: decompression failed: %s",
                  wk_codec_extension(alg), len, cpiece, dpiece, d.err.message);
    ck_assert_uint_eq(d.out_len, len);
    ck_assert_msg(len == 0 || memcmp(d.out, data, len) == 0, "%s: %zu bytes differ",
                  wk_codec_extension(alg), len);
    result_free(&c);
    result_free(&d);
}

/* ---- names and levels ----------------------------------------------------------- */

START_TEST(test_extension)
{
    wk_compress c = WK_COMPRESS_NONE;
    ck_assert_str_eq(wk_codec_extension(WK_COMPRESS_LZ4), "lz4");
    ck_assert_str_eq(wk_codec_extension(WK_COMPRESS_ZSTD), "zst");
    ck_assert_str_eq(wk_codec_extension(WK_COMPRESS_NONE), "raw");
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        ck_assert_int_eq(wk_codec_from_extension(wk_codec_extension(algs[i]), &c), 0);
        ck_assert_int_eq(c, algs[i]);
    }
    c = WK_COMPRESS_LZ4;
    ck_assert_int_eq(wk_codec_from_extension("zstd", &c), -1);
    ck_assert_int_eq(wk_codec_from_extension("gz", &c), -1);
    ck_assert_int_eq(wk_codec_from_extension("", &c), -1);
    ck_assert_int_eq(wk_codec_from_extension("LZ4", &c), -1);
    ck_assert_int_eq(wk_codec_from_extension("lz4 ", &c), -1);
    ck_assert_int_eq(wk_codec_from_extension(NULL, &c), -1);
    ck_assert_int_eq(c, WK_COMPRESS_LZ4); /* untouched on failure */
}
END_TEST

START_TEST(test_level_valid)
{
    ck_assert(wk_codec_level_valid(WK_COMPRESS_LZ4, 0));
    ck_assert(wk_codec_level_valid(WK_COMPRESS_LZ4, 12));
    ck_assert(!wk_codec_level_valid(WK_COMPRESS_LZ4, -1));
    ck_assert(!wk_codec_level_valid(WK_COMPRESS_LZ4, 13));
    ck_assert(wk_codec_level_valid(WK_COMPRESS_ZSTD, 1));
    ck_assert(wk_codec_level_valid(WK_COMPRESS_ZSTD, 19));
    ck_assert(!wk_codec_level_valid(WK_COMPRESS_ZSTD, 0));
    ck_assert(!wk_codec_level_valid(WK_COMPRESS_ZSTD, 20));
    ck_assert(!wk_codec_level_valid(WK_COMPRESS_ZSTD, -1));
    ck_assert(wk_codec_level_valid(WK_COMPRESS_NONE, 0));
    ck_assert(!wk_codec_level_valid(WK_COMPRESS_NONE, 1));
    ck_assert(!wk_codec_level_valid(WK_COMPRESS_NONE, -1));
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        ck_assert(wk_codec_level_valid(algs[i], WK_COMPRESS_LEVEL_DEFAULT));
    ck_assert(!wk_codec_level_valid((wk_compress)7, 0));
    ck_assert(!wk_codec_level_valid((wk_compress)7, WK_COMPRESS_LEVEL_DEFAULT));
}
END_TEST

/* A constructor that fails still frees next (LeakSanitizer would report the sink). */
START_TEST(test_bad_arguments)
{
    static const struct {
        wk_compress alg;
        int level;
    } bad[] = {{WK_COMPRESS_LZ4, -1},  {WK_COMPRESS_LZ4, 13},  {WK_COMPRESS_ZSTD, 0},
               {WK_COMPRESS_ZSTD, 20}, {WK_COMPRESS_ZSTD, -5}, {WK_COMPRESS_NONE, 1}};
    uint8_t *out = NULL;
    size_t out_len = 0;
    wk_error err;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wk_error_clear(&err);
        wk_stage *s = wk_stage_memory_new(SINK_LIMIT, &out, &out_len, &err);
        ck_assert_ptr_null(wk_codec_compress_new(s, bad[i].alg, bad[i].level, &err));
        ck_assert_int_eq(err.code, WK_ERR_CONFIG);
        ck_assert_ptr_nonnull(strstr(err.message, "invalid compression level"));
        ck_assert_str_eq(err.hint, "lz4 takes 0 to 12, zstd 1 to 19, none only 0");
    }
    wk_stage *s = wk_stage_memory_new(SINK_LIMIT, &out, &out_len, &err);
    ck_assert_ptr_null(wk_codec_compress_new(s, (wk_compress)7, 0, &err));
    ck_assert_int_eq(err.code, WK_ERR_INTERNAL);
    s = wk_stage_memory_new(SINK_LIMIT, &out, &out_len, &err);
    ck_assert_ptr_null(wk_codec_decompress_new(s, (wk_compress)7, &err));
    ck_assert_int_eq(err.code, WK_ERR_INTERNAL);
    ck_assert_ptr_null(out);
}
END_TEST

/* ---- round trips ---------------------------------------------------------------- */

START_TEST(test_round_trip_sizes)
{
    wk_compress alg = algs[_i];
    static const size_t sizes[] = {
        0, 1, 4095, 65535, 65536, 65537, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1};
    static const size_t pieces[] = {1, 7, 100000};
    size_t max = 256 * 1024 + 1;
    for (int kind = DATA_TEXT; kind <= DATA_RANDOM; kind++) {
        uint8_t *data = make_data(max, kind, 1);
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            for (size_t p = 0; p < sizeof(pieces) / sizeof(pieces[0]); p++) {
                /* the same piece size both ways, and a mismatched one */
                round_trip(alg, WK_COMPRESS_LEVEL_DEFAULT, data, sizes[i], pieces[p], pieces[p]);
                round_trip(alg, WK_COMPRESS_LEVEL_DEFAULT, data, sizes[i], pieces[p],
                           pieces[(p + 1) % 3]);
            }
        }
        free(data);
    }
}
END_TEST

START_TEST(test_round_trip_segment)
{
    wk_compress alg = algs[_i];
    size_t len = 16 * MIB;
    for (int kind = DATA_TEXT; kind <= DATA_RANDOM; kind++) {
        uint8_t *data = make_data(len, kind, 2);
        round_trip(alg, WK_COMPRESS_LEVEL_DEFAULT, data, len, 100000, 100000);
        round_trip(alg, WK_COMPRESS_LEVEL_DEFAULT, data, len, len, kind == DATA_TEXT ? 7 : len);
        free(data);
    }
}
END_TEST

/* A frame that takes a 1-byte write at a time on the way in and out. */
START_TEST(test_round_trip_segment_bytewise)
{
    wk_compress alg = packed[_i];
    size_t len = 4 * MIB;
    uint8_t *data = make_data(len, DATA_TEXT, 3);
    round_trip(alg, WK_COMPRESS_LEVEL_DEFAULT, data, len, 1, 1);
    free(data);
}
END_TEST

START_TEST(test_levels)
{
    static const struct {
        wk_compress alg;
        int level;
    } levels[] = {{WK_COMPRESS_NONE, 0}, {WK_COMPRESS_LZ4, 0},  {WK_COMPRESS_LZ4, 1},
                  {WK_COMPRESS_LZ4, 2},  {WK_COMPRESS_LZ4, 3},  {WK_COMPRESS_LZ4, 12},
                  {WK_COMPRESS_ZSTD, 1}, {WK_COMPRESS_ZSTD, 2}, {WK_COMPRESS_ZSTD, 18},
                  {WK_COMPRESS_ZSTD, 19}};
    size_t len = 300 * 1024;
    uint8_t *text = make_data(len, DATA_TEXT, 4);
    uint8_t *rnd = make_data(len, DATA_RANDOM, 4);
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        round_trip(levels[i].alg, levels[i].level, text, len, 7, 100000);
        round_trip(levels[i].alg, levels[i].level, rnd, len, 100000, 7);
        round_trip(levels[i].alg, levels[i].level, text, 0, 1, 1);
    }
    /* The default levels are the documented ones: lz4 0, zstd 1. */
    static const struct {
        wk_compress alg;
        int level;
    } defaults[] = {{WK_COMPRESS_LZ4, 0}, {WK_COMPRESS_ZSTD, 1}, {WK_COMPRESS_NONE, 0}};
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        result a = compress_ok(defaults[i].alg, WK_COMPRESS_LEVEL_DEFAULT, text, len, len);
        result b = compress_ok(defaults[i].alg, defaults[i].level, text, len, len);
        ck_assert_uint_eq(a.out_len, b.out_len);
        ck_assert_mem_eq(a.out, b.out, a.out_len);
        result_free(&a);
        result_free(&b);
    }
    /* Higher levels do compress better. */
    result lo = compress_ok(WK_COMPRESS_ZSTD, 1, text, len, len);
    result hi = compress_ok(WK_COMPRESS_ZSTD, 19, text, len, len);
    ck_assert_uint_lt(hi.out_len, lo.out_len);
    result_free(&lo);
    result_free(&hi);
    lo = compress_ok(WK_COMPRESS_LZ4, 0, text, len, len);
    hi = compress_ok(WK_COMPRESS_LZ4, 12, text, len, len);
    ck_assert_uint_lt(hi.out_len, lo.out_len);
    ck_assert_uint_lt(lo.out_len, len / 2);
    result_free(&lo);
    result_free(&hi);
    free(text);
    free(rnd);
}
END_TEST

START_TEST(test_none_is_identity)
{
    size_t len = 100000;
    uint8_t *data = make_data(len, DATA_RANDOM, 5);
    result d = run(0, WK_COMPRESS_NONE, 0, data, len, 7);
    ck_assert_int_eq(d.failed, FAILED_NONE);
    ck_assert_uint_eq(d.out_len, len);
    ck_assert_mem_eq(d.out, data, len);
    result_free(&d);
    d = run(0, WK_COMPRESS_NONE, 0, data, 0, 7);
    ck_assert_int_eq(d.failed, FAILED_NONE);
    ck_assert_uint_eq(d.out_len, 0);
    result_free(&d);
    free(data);
}
END_TEST

/* A decoder without a next stage checks a frame and discards the plaintext. */
START_TEST(test_verify_without_next)
{
    wk_compress alg = packed[_i];
    size_t len = 200000;
    uint8_t *data = make_data(len, DATA_TEXT, 6);
    result c = compress_ok(alg, WK_COMPRESS_LEVEL_DEFAULT, data, len, len);
    wk_error err;
    wk_stage *s = wk_codec_decompress_new(NULL, alg, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(wk_stage_write(s, c.out, c.out_len, &err), 0);
    ck_assert_int_eq(wk_stage_finish(s, &err), 0);
    /* a finished stage takes nothing more */
    ck_assert_int_eq(wk_stage_write(s, "", 0, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_INTERNAL);
    wk_stage_free(s);
    c.out[c.out_len / 2] ^= 0x10;
    s = wk_codec_decompress_new(NULL, alg, &err);
    ck_assert_ptr_nonnull(s);
    int rc = wk_stage_write(s, c.out, c.out_len, &err);
    if (rc == 0)
        rc = wk_stage_finish(s, &err);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    wk_stage_free(s);
    result_free(&c);
    free(data);
}
END_TEST

/* An error from the next stage comes back unchanged, from write or finish, and the
 * stage stays failed. */
START_TEST(test_next_stage_error)
{
    wk_compress alg = algs[_i];
    size_t len = MIB;
    uint8_t *data = make_data(len, DATA_RANDOM, 15);
    result c = compress_ok(alg, WK_COMPRESS_LEVEL_DEFAULT, data, len, len);
    for (int compress = 0; compress <= 1; compress++) {
        static const size_t limits[] = {0, 100, 300 * 1024};
        for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
            wk_error err;
            uint8_t *out = NULL;
            size_t out_len = 0;
            wk_stage *s = wk_stage_memory_new(limits[l], &out, &out_len, &err);
            s = compress ? wk_codec_compress_new(s, alg, WK_COMPRESS_LEVEL_DEFAULT, &err)
                         : wk_codec_decompress_new(s, alg, &err);
            ck_assert_ptr_nonnull(s);
            const uint8_t *in = compress ? data : c.out;
            size_t in_len = compress ? len : c.out_len;
            int rc = 0;
            for (size_t pos = 0; rc == 0 && pos < in_len; pos += 4096)
                rc = wk_stage_write(s, in + pos, in_len - pos < 4096 ? in_len - pos : 4096, &err);
            if (rc == 0)
                rc = wk_stage_finish(s, &err);
            ck_assert_int_eq(rc, -1);
            ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
            ck_assert_ptr_nonnull(strstr(err.message, "object is larger than"));
            ck_assert_int_eq(wk_stage_finish(s, &err), -1);
            ck_assert_int_eq(err.code, WK_ERR_INTERNAL);
            wk_stage_free(s);
            ck_assert_ptr_null(out);
        }
    }
    result_free(&c);
    free(data);
}
END_TEST

/* ---- damage --------------------------------------------------------------------- */

START_TEST(test_empty_input)
{
    wk_compress alg = packed[_i];
    result d = run(0, alg, 0, (const uint8_t *)"", 0, 1);
    ck_assert_int_eq(d.failed, FAILED_FINISH);
    assert_corrupt(&d, "empty input");
}
END_TEST

/* Every proper prefix of a small frame fails at finish, and not before. */
START_TEST(test_truncation_every_byte)
{
    wk_compress alg = packed[_i];
    size_t len = 150 * 1024; /* three lz4 blocks */
    uint8_t *data = make_data(len, DATA_SPARSE, 7);
    result c = compress_ok(alg, WK_COMPRESS_LEVEL_DEFAULT, data, len, len);
    ck_assert_uint_lt(c.out_len, 8 * 1024);
    for (size_t cut = 0; cut < c.out_len; cut++) {
        result d = run(0, alg, 0, c.out, cut, cut == 0 ? 1 : cut);
        ck_assert_msg(d.failed == FAILED_FINISH, "cut at %zu of %zu: failed=%d (%s)", cut,
                      c.out_len, d.failed, d.err.message);
        assert_corrupt(&d, "truncated");
    }
    /* and the empty frame too */
    result e = compress_ok(alg, WK_COMPRESS_LEVEL_DEFAULT, data, 0, 1);
    for (size_t cut = 0; cut < e.out_len; cut++) {
        result d = run(0, alg, 0, e.out, cut, 1);
        ck_assert_int_eq(d.failed, FAILED_FINISH);
        assert_corrupt(&d, "truncated empty frame");
    }
    result_free(&e);
    result_free(&c);
    free(data);
}
END_TEST

START_TEST(test_truncation_large)
{
    wk_compress alg = packed[_i];
    size_t len = MIB;
    uint8_t *data = make_data(len, DATA_RANDOM, 8);
    result c = compress_ok(alg, WK_COMPRESS_LEVEL_DEFAULT, data, len, 100000);
    size_t n = c.out_len;
    size_t cuts[] = {
        1,     4,     5,     6,     7,     11,   64 * 1024, 64 * 1024 + 11, 128 * 1024 + 7,
        n / 2, n - 9, n - 5, n - 4, n - 3, n - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        result d = run(0, alg, 0, c.out, cuts[i], 7);
        ck_assert_msg(d.failed == FAILED_FINISH, "cut at %zu: failed=%d (%s)", cuts[i], d.failed,
                      d.err.message);
        assert_corrupt(&d, "truncated");
        ck_assert_ptr_nonnull(strstr(d.err.message, "truncated"));
    }
    result_free(&c);
    free(data);
}
END_TEST

/* Any single damaged byte of a small frame is detected; in zstd only, the damage may be
 * harmless (the plaintext comes out unchanged: a window descriptor larger than needed, a
 * match offset that now points at identical bytes). Never different plaintext without an
 * error. */
START_TEST(test_flip_every_byte)
{
    wk_compress alg = packed[_i];
    size_t len = 70 * 1024;
    uint8_t *data = make_data(len, DATA_SPARSE, 9);
    result c = compress_ok(alg, WK_COMPRESS_LEVEL_DEFAULT, data, len, len);
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    int harmless = 0;
    for (size_t i = 0; i < c.out_len; i++) {
        for (size_t m = 0; m < sizeof(masks); m++) {
            c.out[i] ^= masks[m];
            result d = run(0, alg, 0, c.out, c.out_len, c.out_len);
            c.out[i] ^= masks[m];
            if (d.failed == FAILED_NONE) {
                ck_assert_msg(d.out_len == len && memcmp(d.out, data, len) == 0,
                              "byte %zu ^ 0x%02x: different plaintext without an error", i,
                              masks[m]);
                harmless++;
            } else {
                assert_corrupt(&d, "flipped");
            }
            result_free(&d);
        }
    }
    /* lz4 blocks carry checksums of their stored bytes: every flip is caught. In zstd,
     * rarely, a changed match offset points at identical bytes in repetitive data. */
    if (alg == WK_COMPRESS_LZ4)
        ck_assert_int_eq(harmless, 0);
    else
        ck_assert_int_le(harmless, (int)(c.out_len / 50));
    result_free(&c);
    free(data);
}
END_TEST

START_TEST(test_flip_middle)
{
    wk_compress alg = packed[_i];
    size_t len = 2 * MIB;
    for (int kind = DATA_TEXT; kind <= DATA_RANDOM; kind++) {
        uint8_t *data = make_data(len, kind, 10);
        result c = compress_ok(alg, WK_COMPRESS_LEVEL_DEFAULT, data, len, 100000);
        c.out[c.out_len / 2 + 1000] ^= 0x04; /* away from a block header */
        result d = run(0, alg, 0, c.out, c.out_len, 100000);
        assert_corrupt(&d, "flipped in the middle");
        if (kind == DATA_RANDOM) {
            /* stored blocks: only a checksum can notice (lz4: the block's own) */
            const char *name = alg == WK_COMPRESS_LZ4 ? "ERROR_blockChecksum_invalid"
                                                      : "Restored data doesn't match checksum";
            ck_assert_msg(strstr(d.err.message, name) != NULL, "message \"%s\"", d.err.message);
            ck_assert_int_eq(d.failed, FAILED_WRITE);
        }
        result_free(&c);
        free(data);
    }
}
END_TEST

START_TEST(test_trailing_data)
{
    wk_compress alg = packed[_i];
    size_t len = 100000;
    uint8_t *data = make_data(len, DATA_TEXT, 11);
    result c = compress_ok(alg, WK_COMPRESS_LEVEL_DEFAULT, data, len, len);
    size_t n = c.out_len;
    uint8_t *two = malloc(2 * n);
    ck_assert_ptr_nonnull(two);
    memcpy(two, c.out, n);
    memcpy(two + n, c.out, n);

    /* garbage in the same write as the end of the frame */
    memcpy(two + n, "x", 1);
    for (size_t piece = 1; piece <= n + 1; piece += piece < 16 ? 1 : n / 3) {
        result d = run(0, alg, 0, two, n + 1, piece);
        ck_assert_int_eq(d.failed, FAILED_WRITE);
        assert_corrupt(&d, "trailing byte");
        ck_assert_ptr_nonnull(strstr(d.err.message, "after end of"));
    }
    memcpy(two + n, c.out, n);
    result d = run(0, alg, 0, two, 2 * n, 2 * n);
    ck_assert_int_eq(d.failed, FAILED_WRITE);
    assert_corrupt(&d, "second frame");

    /* garbage in a later write; empty writes after the frame are fine */
    wk_error err;
    uint8_t *out = NULL;
    size_t out_len = 0;
    wk_stage *s = wk_stage_memory_new(SINK_LIMIT, &out, &out_len, &err);
    s = wk_codec_decompress_new(s, alg, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(wk_stage_write(s, c.out, n, &err), 0);
    ck_assert_int_eq(wk_stage_write(s, "", 0, &err), 0);
    ck_assert_int_eq(wk_stage_write(s, "\0", 1, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    /* a failed stage stays failed */
    ck_assert_int_eq(wk_stage_write(s, "", 0, &err), -1);
    ck_assert_int_eq(wk_stage_finish(s, &err), -1);
    wk_stage_free(s);
    ck_assert_ptr_null(out);

    free(two);
    result_free(&c);
    free(data);
}
END_TEST

START_TEST(test_not_a_frame)
{
    wk_compress alg = packed[_i];
    wk_compress other = alg == WK_COMPRESS_LZ4 ? WK_COMPRESS_ZSTD : WK_COMPRESS_LZ4;
    size_t len = 10000;
    uint8_t *data = make_data(len, DATA_RANDOM, 12);
    result d = run(0, alg, 0, data, len, 1);
    assert_corrupt(&d, "random bytes");
    ck_assert_int_eq(d.failed, FAILED_WRITE);
    ck_assert_ptr_nonnull(strstr(d.err.message, "bad magic number"));

    uint8_t *text = make_data(len, DATA_TEXT, 12);
    result c = compress_ok(other, WK_COMPRESS_LEVEL_DEFAULT, text, len, len);
    d = run(0, alg, 0, c.out, c.out_len, 3);
    assert_corrupt(&d, "other codec's frame");
    d = run(0, WK_COMPRESS_NONE, 0, c.out, c.out_len, 3);
    ck_assert_int_eq(d.failed, FAILED_NONE);
    result_free(&d);
    result_free(&c);

    /* A skippable frame (magic 0x184D2A50, 4 bytes of content) is not the frame. */
    static const uint8_t skippable[] = {0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4};
    d = run(0, alg, 0, skippable, sizeof(skippable), 1);
    assert_corrupt(&d, "skippable frame");
    free(text);
    free(data);
}
END_TEST

/* A zstd frame that asks for a larger window than the decoder allows is refused. */
START_TEST(test_zstd_window_limit)
{
    size_t len = 100000;
    uint8_t *data = make_data(len, DATA_TEXT, 13);
    for (int wlog = 24; wlog <= 25; wlog++) {
        ZSTD_CCtx *cctx = ZSTD_createCCtx();
        size_t cap = ZSTD_compressBound(len);
        uint8_t *frame = malloc(cap);
        ck_assert_ptr_nonnull(frame);
        ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, wlog)));
        ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)));
        ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0)));
        ZSTD_outBuffer out = {frame, cap, 0};
        ZSTD_inBuffer in = {data, len, 0};
        /* e_continue first so the size is unknown and the window stays as asked */
        ck_assert(!ZSTD_isError(ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_continue)));
        ck_assert_uint_eq(ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end), 0);
        ZSTD_freeCCtx(cctx);
        result d = run(0, WK_COMPRESS_ZSTD, 0, frame, out.pos, 4096);
        if (wlog == 24) {
            ck_assert_int_eq(d.failed, FAILED_NONE);
            ck_assert_mem_eq(d.out, data, len);
        } else {
            assert_corrupt(&d, "window too large");
        }
        result_free(&d);
        free(frame);
    }
    free(data);
}
END_TEST

/* ---- the stock tools ------------------------------------------------------------ */

static const char *tool_path(wk_compress alg)
{
    return alg == WK_COMPRESS_LZ4 ? "/usr/bin/lz4" : "/usr/bin/zstd";
}

static char *write_temp(const uint8_t *buf, size_t len)
{
    char *path = strdup("/tmp/test_codec_XXXXXX");
    ck_assert_ptr_nonnull(path);
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
    return path;
}

/* Runs `cmd` and returns everything it wrote to stdout; asserts it exited with 0. */
static uint8_t *read_command(const char *cmd, size_t *len)
{
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t cap = MIB, used = 0;
    uint8_t *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    for (;;) {
        if (used == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        size_t n = fread(buf + used, 1, cap - used, f);
        if (n == 0)
            break;
        used += n;
    }
    ck_assert_msg(pclose(f) == 0, "\"%s\" failed", cmd);
    *len = used;
    return buf;
}

START_TEST(test_stock_tools)
{
    wk_compress alg = packed[_i];
    const char *tool = tool_path(alg);
    if (access(tool, X_OK) != 0) {
        printf("note: %s is not installed; skipping the interop check\n", tool);
        return;
    }
    size_t len = 3 * MIB + 17;
    uint8_t *data = make_data(len, DATA_TEXT, 14);
    uint8_t *rnd = make_data(300 * 1024, DATA_RANDOM, 14);
    memcpy(data + MIB, rnd, 300 * 1024); /* an incompressible stretch in the middle */
    free(rnd);
    char cmd[256];
    size_t sizes[] = {0, 1, len};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        /* ours -> stock */
        result c = compress_ok(alg, WK_COMPRESS_LEVEL_DEFAULT, data, sizes[i], 100000);
        char *path = write_temp(c.out, c.out_len);
        snprintf(cmd, sizeof(cmd), "%s -d -c -q %s", tool, path);
        size_t got_len = 0;
        uint8_t *got = read_command(cmd, &got_len);
        ck_assert_uint_eq(got_len, sizes[i]);
        ck_assert(sizes[i] == 0 || memcmp(got, data, sizes[i]) == 0);
        free(got);
        unlink(path);
        free(path);
        result_free(&c);

        /* stock -> ours */
        path = write_temp(data, sizes[i]);
        snprintf(cmd, sizeof(cmd), "%s -c -q %s", tool, path);
        size_t frame_len = 0;
        uint8_t *frame = read_command(cmd, &frame_len);
        result d = run(0, alg, 0, frame, frame_len, 65521);
        ck_assert_msg(d.failed == FAILED_NONE, "frame from %s: %s", tool, d.err.message);
        ck_assert_uint_eq(d.out_len, sizes[i]);
        ck_assert(sizes[i] == 0 || memcmp(d.out, data, sizes[i]) == 0);
        result_free(&d);
        free(frame);
        unlink(path);
        free(path);
    }
    free(data);
}
END_TEST

/* Frames from other writers read: liblz4's own frame writer, with (FLG 0x74) and without
 * (0x64, as walkeep wrote before block checksums) block checksums; a damaged content
 * checksum is refused. */
START_TEST(test_lz4_earlier_frames)
{
    size_t len = 300 * 1024 + 17;
    uint8_t *data = make_data(len, _i % 2, 99);
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    prefs.frameInfo.blockChecksumFlag = _i < 2 ? LZ4F_blockChecksumEnabled : LZ4F_noBlockChecksum;
    size_t cap = LZ4F_compressFrameBound(len, &prefs);
    uint8_t *frame = malloc(cap);
    ck_assert_ptr_nonnull(frame);
    size_t frame_len = LZ4F_compressFrame(frame, cap, data, len, &prefs);
    ck_assert(!LZ4F_isError(frame_len));
    ck_assert_uint_eq(frame[4], _i < 2 ? 0x74 : 0x64);
    result d = run(0, WK_COMPRESS_LZ4, 0, frame, frame_len, 4096);
    ck_assert_msg(d.failed == FAILED_NONE, "decompress failed: %s", d.err.message);
    ck_assert_uint_eq(d.out_len, len);
    ck_assert(memcmp(d.out, data, len) == 0);
    result_free(&d);
    frame[frame_len - 1] ^= 0x01; /* the last byte of the content checksum */
    d = run(0, WK_COMPRESS_LZ4, 0, frame, frame_len, 4096);
    assert_corrupt(&d, "content checksum flipped");
    result_free(&d);
    free(frame);
    free(data);
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("codec");
    TCase *tc = tcase_create("codec");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_extension);
    tcase_add_test(tc, test_level_valid);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_loop_test(tc, test_round_trip_sizes, 0, 3);
    tcase_add_loop_test(tc, test_round_trip_segment, 0, 3);
    tcase_add_loop_test(tc, test_round_trip_segment_bytewise, 0, 2);
    tcase_add_test(tc, test_levels);
    tcase_add_test(tc, test_none_is_identity);
    tcase_add_loop_test(tc, test_verify_without_next, 0, 2);
    tcase_add_loop_test(tc, test_next_stage_error, 0, 3);
    tcase_add_loop_test(tc, test_empty_input, 0, 2);
    tcase_add_loop_test(tc, test_truncation_every_byte, 0, 2);
    tcase_add_loop_test(tc, test_truncation_large, 0, 2);
    tcase_add_loop_test(tc, test_flip_every_byte, 0, 2);
    tcase_add_loop_test(tc, test_flip_middle, 0, 2);
    tcase_add_loop_test(tc, test_trailing_data, 0, 2);
    tcase_add_loop_test(tc, test_not_a_frame, 0, 2);
    tcase_add_test(tc, test_zstd_window_limit);
    tcase_add_loop_test(tc, test_stock_tools, 0, 2);
    tcase_add_loop_test(tc, test_lz4_earlier_frames, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
