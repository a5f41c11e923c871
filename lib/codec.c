/* codec: lz4 and zstd stages that write and check exactly one standard frame with its
 * content checksum, in fixed-size buffers whatever the object size; "none" passes through. */
#include "codec.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pthread.h>

#include <lz4.h>
#include <lz4frame.h>
#include <lz4hc.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_d_forceIgnoreChecksum */
#include <xxhash.h>
#include <zstd.h>
#include <zstd_errors.h>

int wk_compress_parse(const char *text, wk_compress *out)
{
    static const wk_compress all[] = {WK_COMPRESS_LZ4, WK_COMPRESS_ZSTD, WK_COMPRESS_NONE};
    if (text == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcasecmp(text, wk_compress_name(all[i])) == 0) {
            if (out != NULL)
                *out = all[i];
            return 0;
        }
    }
    return -1;
}

const char *wk_compress_name(wk_compress c)
{
    switch (c) {
    case WK_COMPRESS_NONE:
        return "none";
    case WK_COMPRESS_LZ4:
        return "lz4";
    case WK_COMPRESS_ZSTD:
        return "zstd";
    }
    return "unknown";
}

/* The lz4 compressor is fed at most this much per call, so its output bound (and our
 * output buffer) is fixed. Blocks are independent and at most 64 KiB: the frame can be
 * decoded (or, later, produced) block by block in little memory. */
#define LZ4_SLICE (64 * 1024)

#define LZ4_LEVEL_DEFAULT 0
#define LZ4_LEVEL_MAX 12
#define ZSTD_LEVEL_DEFAULT 1
#define ZSTD_LEVEL_MIN 1
#define ZSTD_LEVEL_MAX 19

/* Largest zstd window a decoder accepts (16 MiB). Levels 1..19 on a stream of unknown
 * size use at most 2^23; the margin admits a whole segment compressed by the stock tool.
 * Without it a damaged header could make the decoder allocate up to 128 MiB. */
#define WK_ZSTD_WINDOWLOG_LIMIT 24

/* Frame magic numbers, as they appear on disk (little-endian). Checked before the
 * libraries see the data: both would otherwise skip "skippable" frames silently. */
static const uint8_t lz4_magic[4] = {0x04, 0x22, 0x4d, 0x18};
static const uint8_t zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd};

/* ---- levels and extensions ------------------------------------------------------ */

/* WK_COMPRESS_LEVEL_DEFAULT is accepted for every algorithm, so that this function
 * accepts exactly what wk_codec_compress_new accepts. */
const char *wk_codec_levels_text(void)
{
/* Two steps, so that the macros expand before they become text. */
#define WK_TEXT(x) #x
#define WK_NUMBER(x) WK_TEXT(x)
    return "lz4 takes 0 to " WK_NUMBER(LZ4_LEVEL_MAX) ", zstd " WK_NUMBER(
        ZSTD_LEVEL_MIN) " to " WK_NUMBER(ZSTD_LEVEL_MAX) ", none only 0";
#undef WK_NUMBER
#undef WK_TEXT
}

int wk_codec_level_valid(wk_compress alg, int level)
{
    if (level == WK_COMPRESS_LEVEL_DEFAULT)
        return alg == WK_COMPRESS_NONE || alg == WK_COMPRESS_LZ4 || alg == WK_COMPRESS_ZSTD;
    switch (alg) {
    case WK_COMPRESS_NONE:
        return level == 0;
    case WK_COMPRESS_LZ4:
        return level >= 0 && level <= LZ4_LEVEL_MAX;
    case WK_COMPRESS_ZSTD:
        return level >= ZSTD_LEVEL_MIN && level <= ZSTD_LEVEL_MAX;
    }
    return 0;
}

const char *wk_codec_extension(wk_compress alg)
{
    switch (alg) {
    case WK_COMPRESS_NONE:
        return "raw";
    case WK_COMPRESS_LZ4:
        return "lz4";
    case WK_COMPRESS_ZSTD:
        return "zst";
    }
    return NULL;
}

int wk_codec_from_extension(const char *ext, wk_compress *out)
{
    static const wk_compress all[] = {WK_COMPRESS_NONE, WK_COMPRESS_LZ4, WK_COMPRESS_ZSTD};
    if (ext == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(ext, wk_codec_extension(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}

static const char *alg_name(wk_compress alg)
{
    switch (alg) {
    case WK_COMPRESS_NONE:
        return "none";
    case WK_COMPRESS_LZ4:
        return "lz4";
    case WK_COMPRESS_ZSTD:
        return "zstd";
    }
    return "unknown";
}

/* ---- what every codec stage shares ---------------------------------------------- */

typedef enum codec_state { CODEC_OPEN, CODEC_FINISHED, CODEC_BROKEN } codec_state;

typedef struct codec_stage {
    wk_stage base;
    codec_state state;
    uint8_t *out; /* output not yet passed on */
    size_t out_len;
    size_t out_cap;
} codec_stage;

/* Refuses a stage that has failed or finished; marks it broken otherwise so that an
 * early return on error leaves it broken. Call codec_ok() on success. */
static int codec_enter(codec_stage *cs, wk_error *err)
{
    if (cs->state == CODEC_FINISHED)
        return wk_error_set(err, WK_ERR_INTERNAL, "codec stage used after finish");
    if (cs->state == CODEC_BROKEN)
        return wk_error_set(err, WK_ERR_INTERNAL, "codec stage used after an error");
    cs->state = CODEC_BROKEN;
    return 0;
}

static int codec_ok(codec_stage *cs, codec_state state)
{
    cs->state = state;
    return 0;
}

static int emit(codec_stage *cs, const void *buf, size_t len, wk_error *err)
{
    if (cs->base.next == NULL || len == 0)
        return 0;
    return wk_stage_write(cs->base.next, buf, len, err);
}

static int flush_out(codec_stage *cs, wk_error *err)
{
    size_t len = cs->out_len;
    cs->out_len = 0;
    return emit(cs, cs->out, len, err);
}

static int finish_next(codec_stage *cs, wk_error *err)
{
    return cs->base.next == NULL ? 0 : wk_stage_finish(cs->base.next, err);
}

/* Allocates a stage of `size` bytes with an output buffer of out_cap bytes (none if 0).
 * Frees next on failure. */
static codec_stage *codec_alloc(size_t size, const wk_stage_ops *ops, size_t out_cap,
                                wk_stage *next, wk_error *err)
{
    codec_stage *cs = calloc(1, size);
    uint8_t *out = out_cap == 0 ? NULL : malloc(out_cap);
    if (cs == NULL || (out == NULL && out_cap > 0)) {
        free(cs);
        free(out);
        wk_stage_free(next);
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    cs->base.ops = ops;
    cs->base.next = next;
    cs->state = CODEC_OPEN;
    cs->out = out;
    cs->out_cap = out_cap;
    return cs;
}

static void codec_release(codec_stage *cs)
{
    wk_stage_free(cs->base.next);
    free(cs->out);
    free(cs);
}

/* Checks the first bytes of a frame against its magic number as they arrive. */
static int check_magic(const uint8_t magic[4], const char *name, uint64_t seen, const uint8_t *buf,
                       size_t len, wk_error *err)
{
    for (size_t i = 0; seen + i < 4 && i < len; i++) {
        if (buf[i] != magic[seen + i])
            return wk_error_set(err, WK_ERR_CORRUPT,
                                "could not decompress %s frame: bad magic number", name);
    }
    return 0;
}

static int truncated(const char *name, uint64_t in_total, wk_error *err)
{
    if (in_total == 0)
        return wk_error_set(err, WK_ERR_CORRUPT, "could not decompress %s frame: input is empty",
                            name);
    return wk_error_set(err, WK_ERR_CORRUPT,
                        "could not decompress %s frame: frame is truncated after %" PRIu64 " bytes",
                        name, in_total);
}

static int trailing(const char *name, uint64_t offset, wk_error *err)
{
    return wk_error_set(err, WK_ERR_CORRUPT,
                        "unexpected data after end of %s frame at byte %" PRIu64, name, offset);
}

/* ---- none: pass-through --------------------------------------------------------- */

static int pass_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    codec_stage *cs = (codec_stage *)stage;
    if (codec_enter(cs, err) != 0 || emit(cs, buf, len, err) != 0)
        return -1;
    return codec_ok(cs, CODEC_OPEN);
}

static int pass_finish(wk_stage *stage, wk_error *err)
{
    codec_stage *cs = (codec_stage *)stage;
    if (codec_enter(cs, err) != 0 || finish_next(cs, err) != 0)
        return -1;
    return codec_ok(cs, CODEC_FINISHED);
}

static void pass_free(wk_stage *stage)
{
    codec_release((codec_stage *)stage);
}

static const wk_stage_ops pass_ops = {pass_write, pass_finish, pass_free};

static wk_stage *pass_new(wk_stage *next, wk_error *err)
{
    codec_stage *cs = codec_alloc(sizeof(*cs), &pass_ops, 0, next, err);
    return cs == NULL ? NULL : &cs->base;
}

/* ---- lz4 compression ------------------------------------------------------------ */

/* The frame is assembled here rather than by LZ4F so that independent blocks can be
 * compressed on two cores: input is gathered into a round of two batches; a helper
 * thread compresses the second (larger) batch while this thread compresses the first
 * and runs the content checksum (XXH32, sequential by nature, about twice as fast as
 * lz4) over both, so both lanes take about as long. The bytes written are a standard
 * frame (magic, FLG, BD, header checksum, blocks, end mark, content checksum) that
 * `lz4 -d` reads; memory is one round in and one bounded round out (about 2 MiB). */
#define LZ4_BATCH (12 * LZ4_SLICE) /* the helper's batch; this thread's is a third of it */
#define LZ4_FLG 0x74               /* version 01, independent blocks, block and content checksums */
#define LZ4_BD 0x40                /* block maximum size 64 KiB */
#define LZ4_UNCOMPRESSED 0x80000000u
#define LZ4_BATCH_BOUND (LZ4_BATCH + (LZ4_BATCH / LZ4_SLICE) * (8 + LZ4_SLICE / 255 + 16))
#define LZ4HC_LEVEL_MIN 3

typedef struct lz4_batch {
    uint8_t *in;
    size_t in_len;
    size_t in_cap;
    uint8_t *out; /* block headers and blocks, ready to pass on */
    size_t out_len;
    int level;
} lz4_batch;

typedef struct lz4c_stage {
    codec_stage c;
    lz4_batch batch[2];
    XXH32_state_t *checksum;
    bool header_sent;
} lz4c_stage;

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Compresses one batch into blocks of at most LZ4_SLICE bytes each; a block that does
 * not shrink is stored as it is, as the format allows. Each block is followed by its
 * checksum (XXH32 of the stored bytes), so any damage to a block is detected even when
 * it would decode to the same plaintext. Runs on either thread. */
static void *lz4_compress_batch(void *arg)
{
    lz4_batch *b = arg;
    b->out_len = 0;
    for (size_t off = 0; off < b->in_len; off += LZ4_SLICE) {
        int n = (int)(b->in_len - off < LZ4_SLICE ? b->in_len - off : LZ4_SLICE);
        const char *src = (const char *)b->in + off;
        char *dst = (char *)b->out + b->out_len + 4;
        int packed = b->level >= LZ4HC_LEVEL_MIN ? LZ4_compress_HC(src, dst, n, n - 1, b->level)
                                                 : LZ4_compress_default(src, dst, n, n - 1);
        uint32_t stored;
        if (packed <= 0) {
            memcpy(dst, src, (size_t)n);
            stored = (uint32_t)n;
            put_le32(b->out + b->out_len, stored | LZ4_UNCOMPRESSED);
        } else {
            stored = (uint32_t)packed;
            put_le32(b->out + b->out_len, stored);
        }
        put_le32((uint8_t *)dst + stored, XXH32(dst, stored, 0));
        b->out_len += 4 + (size_t)stored + 4;
    }
    return NULL;
}

static int lz4c_send_header(lz4c_stage *s, wk_error *err)
{
    uint8_t header[7] = {0x04, 0x22, 0x4d, 0x18, LZ4_FLG, LZ4_BD, 0};
    header[6] = (uint8_t)(XXH32(header + 4, 2, 0) >> 8);
    s->header_sent = true;
    return emit(&s->c, header, sizeof(header), err);
}

/* Compresses and passes on whatever the batches hold, in order. */
static int lz4c_flush(lz4c_stage *s, wk_error *err)
{
    lz4_batch *first = &s->batch[0], *second = &s->batch[1];
    pthread_t helper;
    bool helped = false;
    if (!s->header_sent && lz4c_send_header(s, err) != 0)
        return -1;
    if (second->in_len > 0)
        helped = pthread_create(&helper, NULL, lz4_compress_batch, second) == 0;
    lz4_compress_batch(first);
    XXH32_update(s->checksum, first->in, first->in_len);
    XXH32_update(s->checksum, second->in, second->in_len);
    if (helped)
        pthread_join(helper, NULL);
    else if (second->in_len > 0)
        lz4_compress_batch(second);
    int rc = emit(&s->c, first->out, first->out_len, err);
    if (rc == 0 && second->in_len > 0)
        rc = emit(&s->c, second->out, second->out_len, err);
    first->in_len = second->in_len = 0;
    return rc;
}

static int lz4c_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    lz4c_stage *s = (lz4c_stage *)stage;
    const uint8_t *p = buf;
    if (codec_enter(&s->c, err) != 0)
        return -1;
    while (len > 0) {
        lz4_batch *b = s->batch[0].in_len < s->batch[0].in_cap ? &s->batch[0] : &s->batch[1];
        size_t n = b->in_cap - b->in_len < len ? b->in_cap - b->in_len : len;
        memcpy(b->in + b->in_len, p, n);
        b->in_len += n;
        p += n;
        len -= n;
        if (s->batch[1].in_len == s->batch[1].in_cap && lz4c_flush(s, err) != 0)
            return -1;
    }
    return codec_ok(&s->c, CODEC_OPEN);
}

static int lz4c_finish(wk_stage *stage, wk_error *err)
{
    lz4c_stage *s = (lz4c_stage *)stage;
    uint8_t trailer[8];
    if (codec_enter(&s->c, err) != 0)
        return -1;
    if (lz4c_flush(s, err) != 0)
        return -1;
    put_le32(trailer, 0); /* end mark */
    put_le32(trailer + 4, XXH32_digest(s->checksum));
    if (emit(&s->c, trailer, sizeof(trailer), err) != 0 || finish_next(&s->c, err) != 0)
        return -1;
    return codec_ok(&s->c, CODEC_FINISHED);
}

static void lz4c_free(wk_stage *stage)
{
    lz4c_stage *s = (lz4c_stage *)stage;
    for (int i = 0; i < 2; i++) {
        free(s->batch[i].in);
        free(s->batch[i].out);
    }
    XXH32_freeState(s->checksum);
    codec_release(&s->c);
}

static const wk_stage_ops lz4c_ops = {lz4c_write, lz4c_finish, lz4c_free};

static wk_stage *lz4c_new(wk_stage *next, int level, wk_error *err)
{
    lz4c_stage *s = (lz4c_stage *)codec_alloc(sizeof(*s), &lz4c_ops, 0, next, err);
    if (s == NULL)
        return NULL;
    s->checksum = XXH32_createState();
    for (int i = 0; i < 2; i++) {
        s->batch[i].in_cap = i == 0 ? LZ4_BATCH / 3 : LZ4_BATCH;
        s->batch[i].in = malloc(s->batch[i].in_cap);
        s->batch[i].out = malloc(LZ4_BATCH_BOUND);
        s->batch[i].level = level;
    }
    if (s->checksum == NULL || s->batch[0].in == NULL || s->batch[0].out == NULL ||
        s->batch[1].in == NULL || s->batch[1].out == NULL) {
        lz4c_free(&s->c.base);
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    XXH32_reset(s->checksum, 0);
    return &s->c.base;
}

/* ---- zstd compression ----------------------------------------------------------- */

typedef struct zstdc_stage {
    codec_stage c;
    ZSTD_CCtx *cctx;
} zstdc_stage;

/* Turns a libzstd result into 0, or -1 with "<what>: <zstd's error name>". */
static int zstd_status(size_t rc, const char *what, wk_errcode code, wk_error *err)
{
    if (!ZSTD_isError(rc))
        return 0;
    if (ZSTD_getErrorCode(rc) == ZSTD_error_memory_allocation)
        code = WK_ERR_NOMEM;
    return wk_error_set(err, code, "%s: %s", what, ZSTD_getErrorName(rc));
}

static int zstdc_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    zstdc_stage *s = (zstdc_stage *)stage;
    ZSTD_inBuffer in = {buf, len, 0};
    if (codec_enter(&s->c, err) != 0)
        return -1;
    while (in.pos < in.size) {
        ZSTD_outBuffer out = {s->c.out, s->c.out_cap, s->c.out_len};
        size_t rc = ZSTD_compressStream2(s->cctx, &out, &in, ZSTD_e_continue);
        s->c.out_len = out.pos;
        if (zstd_status(rc, "could not compress zstd frame", WK_ERR_INTERNAL, err) != 0)
            return -1;
        if (s->c.out_len == s->c.out_cap && flush_out(&s->c, err) != 0)
            return -1;
    }
    return codec_ok(&s->c, CODEC_OPEN);
}

static int zstdc_finish(wk_stage *stage, wk_error *err)
{
    zstdc_stage *s = (zstdc_stage *)stage;
    if (codec_enter(&s->c, err) != 0)
        return -1;
    for (;;) {
        ZSTD_inBuffer in = {NULL, 0, 0};
        ZSTD_outBuffer out = {s->c.out, s->c.out_cap, s->c.out_len};
        size_t rc = ZSTD_compressStream2(s->cctx, &out, &in, ZSTD_e_end);
        s->c.out_len = out.pos;
        if (zstd_status(rc, "could not compress zstd frame", WK_ERR_INTERNAL, err) != 0)
            return -1;
        if (rc == 0)
            break;
        if (flush_out(&s->c, err) != 0)
            return -1;
    }
    if (flush_out(&s->c, err) != 0 || finish_next(&s->c, err) != 0)
        return -1;
    return codec_ok(&s->c, CODEC_FINISHED);
}

static void zstdc_free(wk_stage *stage)
{
    zstdc_stage *s = (zstdc_stage *)stage;
    ZSTD_freeCCtx(s->cctx);
    codec_release(&s->c);
}

static const wk_stage_ops zstdc_ops = {zstdc_write, zstdc_finish, zstdc_free};

static wk_stage *zstdc_new(wk_stage *next, int level, wk_error *err)
{
    wk_stage *stage = NULL;
    zstdc_stage *s =
        (zstdc_stage *)codec_alloc(sizeof(*s), &zstdc_ops, ZSTD_CStreamOutSize(), next, err);
    if (s == NULL)
        return NULL;
    s->cctx = ZSTD_createCCtx();
    if (s->cctx == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "could not create zstd compression context");
        goto out;
    }
    /* One thread (no ZSTD_c_nbWorkers): memory stays fixed by the level. */
    if (zstd_status(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, level),
                    "could not set zstd compression level", WK_ERR_INTERNAL, err) != 0 ||
        zstd_status(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_checksumFlag, 1),
                    "could not enable zstd checksum", WK_ERR_INTERNAL, err) != 0)
        goto out;
    stage = &s->c.base;
out:
    if (stage == NULL)
        zstdc_free(&s->c.base);
    return stage;
}

/* ---- lz4 decompression ---------------------------------------------------------- */

typedef struct lz4d_stage {
    codec_stage c;
    LZ4F_dctx *dctx;
    LZ4F_decompressOptions_t options;
    uint64_t in_total; /* frame bytes consumed so far */
    bool done;         /* the frame's end (and checksum) has been seen */
} lz4d_stage;

static int lz4d_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    lz4d_stage *s = (lz4d_stage *)stage;
    const uint8_t *p = buf;
    if (codec_enter(&s->c, err) != 0)
        return -1;
    if (s->done && len > 0)
        return trailing("lz4", s->in_total, err);
    if (check_magic(lz4_magic, "lz4", s->in_total, p, len, err) != 0)
        return -1;
    bool pending = false; /* a full output buffer may mean more output is waiting */
    while (len > 0 || pending) {
        size_t src_size = len;
        size_t dst_size = s->c.out_cap;
        size_t rc = LZ4F_decompress(s->dctx, s->c.out, &dst_size, p, &src_size, &s->options);
        if (LZ4F_isError(rc)) {
            const char *name = LZ4F_getErrorName(rc);
            wk_errcode code =
                strcmp(name, "ERROR_allocation_failed") == 0 ? WK_ERR_NOMEM : WK_ERR_CORRUPT;
            return wk_error_set(err, code, "could not decompress lz4 frame: %s", name);
        }
        if (src_size == 0 && dst_size == 0 && rc != 0 && !pending)
            return wk_error_set(err, WK_ERR_INTERNAL,
                                "could not decompress lz4 frame: decoder made no progress");
        p += src_size;
        len -= src_size;
        s->in_total += src_size;
        pending = dst_size == s->c.out_cap;
        if (emit(&s->c, s->c.out, dst_size, err) != 0)
            return -1;
        if (rc == 0) {
            s->done = true;
            if (len > 0)
                return trailing("lz4", s->in_total, err);
            break;
        }
    }
    return codec_ok(&s->c, CODEC_OPEN);
}

static int lz4d_finish(wk_stage *stage, wk_error *err)
{
    lz4d_stage *s = (lz4d_stage *)stage;
    if (codec_enter(&s->c, err) != 0)
        return -1;
    if (!s->done)
        return truncated("lz4", s->in_total, err);
    if (finish_next(&s->c, err) != 0)
        return -1;
    return codec_ok(&s->c, CODEC_FINISHED);
}

static void lz4d_free(wk_stage *stage)
{
    lz4d_stage *s = (lz4d_stage *)stage;
    LZ4F_freeDecompressionContext(s->dctx);
    codec_release(&s->c);
}

static const wk_stage_ops lz4d_ops = {lz4d_write, lz4d_finish, lz4d_free};

static wk_stage *lz4d_new(wk_stage *next, bool check_content, wk_error *err)
{
    lz4d_stage *s = (lz4d_stage *)codec_alloc(sizeof(*s), &lz4d_ops, WK_STREAM_BUFSIZE, next, err);
    if (s == NULL)
        return NULL;
    size_t rc = LZ4F_createDecompressionContext(&s->dctx, LZ4F_VERSION);
    if (LZ4F_isError(rc)) {
        wk_error_set(err, WK_ERR_NOMEM, "could not create lz4 decompression context: %s",
                     LZ4F_getErrorName(rc));
        lz4d_free(&s->c.base);
        return NULL;
    }
    s->options.skipChecksums = check_content ? 0 : 1;
    return &s->c.base;
}

/* ---- zstd decompression --------------------------------------------------------- */

typedef struct zstdd_stage {
    codec_stage c;
    ZSTD_DCtx *dctx;
    uint64_t in_total;
    bool done;
} zstdd_stage;

static int zstdd_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    zstdd_stage *s = (zstdd_stage *)stage;
    ZSTD_inBuffer in = {buf, len, 0};
    if (codec_enter(&s->c, err) != 0)
        return -1;
    if (s->done && len > 0)
        return trailing("zstd", s->in_total, err);
    if (check_magic(zstd_magic, "zstd", s->in_total, buf, len, err) != 0)
        return -1;
    for (;;) {
        ZSTD_outBuffer out = {s->c.out, s->c.out_cap, 0};
        size_t before = in.pos;
        size_t rc = ZSTD_decompressStream(s->dctx, &out, &in);
        s->in_total += in.pos - before;
        if (zstd_status(rc, "could not decompress zstd frame", WK_ERR_CORRUPT, err) != 0)
            return -1;
        if (emit(&s->c, out.dst, out.pos, err) != 0)
            return -1;
        if (rc == 0) {
            /* The frame is complete, its checksum verified and all output flushed. */
            s->done = true;
            if (in.pos < in.size)
                return trailing("zstd", s->in_total, err);
            break;
        }
        /* Output space left over means the decoder has flushed all it could. */
        if (in.pos == in.size && out.pos < out.size)
            break;
    }
    return codec_ok(&s->c, CODEC_OPEN);
}

static int zstdd_finish(wk_stage *stage, wk_error *err)
{
    zstdd_stage *s = (zstdd_stage *)stage;
    if (codec_enter(&s->c, err) != 0)
        return -1;
    if (!s->done)
        return truncated("zstd", s->in_total, err);
    if (finish_next(&s->c, err) != 0)
        return -1;
    return codec_ok(&s->c, CODEC_FINISHED);
}

static void zstdd_free(wk_stage *stage)
{
    zstdd_stage *s = (zstdd_stage *)stage;
    ZSTD_freeDCtx(s->dctx);
    codec_release(&s->c);
}

static const wk_stage_ops zstdd_ops = {zstdd_write, zstdd_finish, zstdd_free};

static wk_stage *zstdd_new(wk_stage *next, bool check_content, wk_error *err)
{
    wk_stage *stage = NULL;
    zstdd_stage *s =
        (zstdd_stage *)codec_alloc(sizeof(*s), &zstdd_ops, ZSTD_DStreamOutSize(), next, err);
    if (s == NULL)
        return NULL;
    s->dctx = ZSTD_createDCtx();
    if (s->dctx == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "could not create zstd decompression context");
        goto out;
    }
    if (zstd_status(ZSTD_DCtx_setParameter(s->dctx, ZSTD_d_windowLogMax, WK_ZSTD_WINDOWLOG_LIMIT),
                    "could not set zstd window limit", WK_ERR_INTERNAL, err) != 0)
        goto out;
    if (!check_content &&
        zstd_status(
            ZSTD_DCtx_setParameter(s->dctx, ZSTD_d_forceIgnoreChecksum, ZSTD_d_ignoreChecksum),
            "could not set zstd checksum mode", WK_ERR_INTERNAL, err) != 0)
        goto out;
    stage = &s->c.base;
out:
    if (stage == NULL)
        zstdd_free(&s->c.base);
    return stage;
}

/* ---- constructors --------------------------------------------------------------- */

static int unknown_alg(wk_compress alg, wk_error *err)
{
    return wk_error_set(err, WK_ERR_INTERNAL, "unknown compression algorithm %d", (int)alg);
}

wk_stage *wk_codec_compress_new(wk_stage *next, wk_compress alg, int level, wk_error *err)
{
    if (wk_codec_extension(alg) == NULL) {
        wk_stage_free(next);
        unknown_alg(alg, err);
        return NULL;
    }
    if (!wk_codec_level_valid(alg, level)) {
        wk_stage_free(next);
        wk_error_set(err, WK_ERR_CONFIG, "invalid compression level %d for \"%s\"", level,
                     alg_name(alg));
        wk_error_hint(err, "%s", wk_codec_levels_text());
        return NULL;
    }
    switch (alg) {
    case WK_COMPRESS_NONE:
        return pass_new(next, err);
    case WK_COMPRESS_LZ4:
        return lz4c_new(next, level == WK_COMPRESS_LEVEL_DEFAULT ? LZ4_LEVEL_DEFAULT : level, err);
    case WK_COMPRESS_ZSTD:
        return zstdc_new(next, level == WK_COMPRESS_LEVEL_DEFAULT ? ZSTD_LEVEL_DEFAULT : level,
                         err);
    }
    return NULL;
}

static wk_stage *decompress_new(wk_stage *next, wk_compress alg, bool check_content, wk_error *err)
{
    switch (alg) {
    case WK_COMPRESS_NONE:
        return pass_new(next, err);
    case WK_COMPRESS_LZ4:
        return lz4d_new(next, check_content, err);
    case WK_COMPRESS_ZSTD:
        return zstdd_new(next, check_content, err);
    }
    wk_stage_free(next);
    unknown_alg(alg, err);
    return NULL;
}

wk_stage *wk_codec_decompress_new(wk_stage *next, wk_compress alg, wk_error *err)
{
    return decompress_new(next, alg, true, err);
}

wk_stage *wk_codec_decompress_unchecked_new(wk_stage *next, wk_compress alg, wk_error *err)
{
    return decompress_new(next, alg, false, err);
}
