/* stream: the push pipeline's plumbing and its simplest stages (fingerprint, count,
 * fd sink, memory sink) plus the pump that feeds a chain from a file. */
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

int wk_stage_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    return stage->ops->write(stage, buf, len, err);
}

int wk_stage_finish(wk_stage *stage, wk_error *err)
{
    return stage->ops->finish(stage, err);
}

void wk_stage_free(wk_stage *stage)
{
    if (stage != NULL)
        stage->ops->free(stage);
}

/* Finishing a pass-through stage means finishing what follows it. */
static int finish_next(wk_stage *stage, wk_error *err)
{
    return stage->next == NULL ? 0 : wk_stage_finish(stage->next, err);
}

static int write_next(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    return stage->next == NULL ? 0 : wk_stage_write(stage->next, buf, len, err);
}

/* ---- fingerprint ---------------------------------------------------------------- */

void wk_fingerprint_hex(const wk_fingerprint *fp, char out[WK_FINGERPRINT_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(fp->bytes); i++) {
        out[2 * i] = digits[fp->bytes[i] >> 4];
        out[2 * i + 1] = digits[fp->bytes[i] & 0xf];
    }
    out[WK_FINGERPRINT_HEX_LEN] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int wk_fingerprint_parse(const char *hex, wk_fingerprint *out)
{
    wk_fingerprint fp;
    for (size_t i = 0; i < sizeof(fp.bytes); i++) {
        int hi = hex_value(hex[2 * i]);
        int lo = hi < 0 ? -1 : hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        fp.bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    if (hex[WK_FINGERPRINT_HEX_LEN] != '\0')
        return -1;
    *out = fp;
    return 0;
}

bool wk_fingerprint_equal(const wk_fingerprint *a, const wk_fingerprint *b)
{
    return memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

typedef struct fingerprint_stage {
    wk_stage base;
    XXH3_state_t *state;
    uint64_t bytes;
    wk_stream_summary *summary; /* may be NULL */
    bool check;
    wk_fingerprint expected;
} fingerprint_stage;

static int fingerprint_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    fingerprint_stage *fs = (fingerprint_stage *)stage;
    XXH3_128bits_update(fs->state, buf, len);
    fs->bytes += len;
    return write_next(stage, buf, len, err);
}

void wk_stage_fingerprint_peek(wk_stage *stage, wk_stream_summary *out)
{
    fingerprint_stage *fs = (fingerprint_stage *)stage;
    XXH128_canonical_t canonical;
    XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(fs->state));
    memcpy(out->fingerprint.bytes, canonical.digest, sizeof(canonical.digest));
    out->bytes = fs->bytes;
}

wk_stage *wk_stage_sink_of(wk_stage *chain)
{
    while (chain->next != NULL)
        chain = chain->next;
    return chain;
}

static int fingerprint_finish(wk_stage *stage, wk_error *err)
{
    fingerprint_stage *fs = (fingerprint_stage *)stage;
    wk_stream_summary seen;
    wk_stage_fingerprint_peek(stage, &seen);
    if (fs->summary != NULL)
        *fs->summary = seen;
    if (fs->check && !wk_fingerprint_equal(&seen.fingerprint, &fs->expected)) {
        char want[WK_FINGERPRINT_HEX_LEN + 1], got[WK_FINGERPRINT_HEX_LEN + 1];
        wk_fingerprint_hex(&fs->expected, want);
        wk_fingerprint_hex(&seen.fingerprint, got);
        wk_error_set(err, WK_ERR_CORRUPT, "content fingerprint mismatch");
        wk_error_detail(err, "expected %s, found %s over %llu bytes", want, got,
                        (unsigned long long)seen.bytes);
        return -1;
    }
    return finish_next(stage, err);
}

static void fingerprint_free(wk_stage *stage)
{
    fingerprint_stage *fs = (fingerprint_stage *)stage;
    wk_stage_free(stage->next);
    XXH3_freeState(fs->state);
    free(fs);
}

static const wk_stage_ops fingerprint_ops = {fingerprint_write, fingerprint_finish,
                                             fingerprint_free};

wk_stage *wk_stage_fingerprint_new(wk_stage *next, wk_stream_summary *summary, wk_error *err)
{
    fingerprint_stage *fs = calloc(1, sizeof(*fs));
    XXH3_state_t *state = XXH3_createState();
    if (fs == NULL || state == NULL) {
        free(fs);
        XXH3_freeState(state);
        wk_stage_free(next);
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    XXH3_128bits_reset(state);
    fs->base.ops = &fingerprint_ops;
    fs->base.next = next;
    fs->state = state;
    fs->summary = summary;
    return &fs->base;
}

wk_stage *wk_stage_fingerprint_check_new(wk_stage *next, const wk_fingerprint *expected,
                                         wk_stream_summary *summary, wk_error *err)
{
    wk_stage *stage = wk_stage_fingerprint_new(next, summary, err);
    if (stage == NULL)
        return NULL;
    fingerprint_stage *fs = (fingerprint_stage *)stage;
    fs->check = true;
    fs->expected = *expected;
    return stage;
}

int wk_stream_fingerprint_fd(int fd, wk_stream_summary *summary, wk_error *err)
{
    wk_stage *stage = wk_stage_fingerprint_new(NULL, summary, err);
    if (stage == NULL)
        return -1;
    int rc = wk_stream_pump_fd(fd, stage, NULL, err);
    if (rc == 0)
        rc = wk_stage_finish(stage, err);
    wk_stage_free(stage);
    return rc;
}

/* ---- count ---------------------------------------------------------------------- */

typedef struct count_stage {
    wk_stage base;
    uint64_t *count;
} count_stage;

static int count_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    count_stage *cs = (count_stage *)stage;
    *cs->count += len;
    return write_next(stage, buf, len, err);
}

static void passthrough_free(wk_stage *stage)
{
    wk_stage_free(stage->next);
    free(stage);
}

static const wk_stage_ops count_ops = {count_write, finish_next, passthrough_free};

wk_stage *wk_stage_count_new(wk_stage *next, uint64_t *count, wk_error *err)
{
    count_stage *cs = calloc(1, sizeof(*cs));
    if (cs == NULL) {
        wk_stage_free(next);
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    cs->base.ops = &count_ops;
    cs->base.next = next;
    cs->count = count;
    *count = 0;
    return &cs->base;
}

/* ---- progress ------------------------------------------------------------------- */

typedef struct progress_stage {
    wk_stage base;
    wk_progress *progress;
} progress_stage;

static int progress_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    wk_progress *p = ((progress_stage *)stage)->progress;
    if (write_next(stage, buf, len, err) != 0)
        return -1;
    p->done += len;
    p->fn(p->done, p->total, p->arg);
    return 0;
}

static const wk_stage_ops progress_ops = {progress_write, finish_next, passthrough_free};

wk_stage *wk_stage_progress_new(wk_stage *next, wk_progress *progress, wk_error *err)
{
    if (progress == NULL || progress->fn == NULL)
        return next;
    progress_stage *ps = calloc(1, sizeof(*ps));
    if (ps == NULL) {
        wk_stage_free(next);
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ps->base.ops = &progress_ops;
    ps->base.next = next;
    ps->progress = progress;
    return &ps->base;
}

/* ---- fd sink -------------------------------------------------------------------- */

typedef struct fd_stage {
    wk_stage base;
    int fd;
} fd_stage;

static int fd_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    fd_stage *fs = (fd_stage *)stage;
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fs->fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return wk_error_sys(err, WK_ERR_IO, errno, "could not write");
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fd_finish(wk_stage *stage, wk_error *err)
{
    (void)stage;
    (void)err;
    return 0;
}

static void fd_free(wk_stage *stage)
{
    free(stage);
}

static const wk_stage_ops fd_ops = {fd_write, fd_finish, fd_free};

wk_stage *wk_stage_fd_new(int fd, wk_error *err)
{
    fd_stage *fs = calloc(1, sizeof(*fs));
    if (fs == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    fs->base.ops = &fd_ops;
    fs->fd = fd;
    return &fs->base;
}

/* ---- memory sink ---------------------------------------------------------------- */

typedef struct memory_stage {
    wk_stage base;
    uint8_t *buf;
    size_t len, cap, limit;
    uint8_t **out;
    size_t *out_len;
} memory_stage;

static int memory_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    memory_stage *ms = (memory_stage *)stage;
    if (len > ms->limit - ms->len)
        return wk_error_set(err, WK_ERR_CORRUPT, "object is larger than %zu bytes", ms->limit);
    if (ms->len + len > ms->cap) {
        size_t cap = ms->cap == 0 ? 4096 : ms->cap;
        while (cap < ms->len + len)
            cap *= 2;
        uint8_t *grown = realloc(ms->buf, cap);
        if (grown == NULL)
            return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        ms->buf = grown;
        ms->cap = cap;
    }
    if (len > 0)
        memcpy(ms->buf + ms->len, buf, len);
    ms->len += len;
    return 0;
}

static int memory_finish(wk_stage *stage, wk_error *err)
{
    memory_stage *ms = (memory_stage *)stage;
    /* Always hand out a NUL-terminated buffer so text objects can be parsed as is. */
    if (memory_write(stage, "", 0, err) != 0)
        return -1;
    uint8_t *buf = realloc(ms->buf, ms->len + 1);
    if (buf == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    buf[ms->len] = '\0';
    *ms->out = buf;
    *ms->out_len = ms->len;
    ms->buf = NULL;
    return 0;
}

static void memory_free(wk_stage *stage)
{
    memory_stage *ms = (memory_stage *)stage;
    free(ms->buf);
    free(ms);
}

static const wk_stage_ops memory_ops = {memory_write, memory_finish, memory_free};

wk_stage *wk_stage_memory_new(size_t limit, uint8_t **out, size_t *out_len, wk_error *err)
{
    memory_stage *ms = calloc(1, sizeof(*ms));
    if (ms == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ms->base.ops = &memory_ops;
    ms->limit = limit;
    ms->out = out;
    ms->out_len = out_len;
    return &ms->base;
}

/* ---- pump ----------------------------------------------------------------------- */

int wk_stream_pump_fd(int fd, wk_stage *stage, uint64_t *total, wk_error *err)
{
    uint8_t *buf = malloc(WK_STREAM_BUFSIZE);
    uint64_t sum = 0;
    int rc = -1;
    if (buf == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    for (;;) {
        ssize_t n = read(fd, buf, WK_STREAM_BUFSIZE);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            wk_error_sys(err, WK_ERR_IO, errno, "could not read");
            goto out;
        }
        if (n == 0)
            break;
        if (wk_stage_write(stage, buf, (size_t)n, err) != 0)
            goto out;
        sum += (uint64_t)n;
    }
    if (total != NULL)
        *total = sum;
    rc = 0;
out:
    free(buf);
    return rc;
}
