/* stream: the one-pass push pipeline every object goes through (plaintext -> fingerprint
 * -> compress -> encrypt -> storage, and back). Each stage owns the next one. */
#ifndef WK_STREAM_H
#define WK_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Size of the buffers stages and pumps use; memory is bounded by these, never by
 * object size. */
#define WK_STREAM_BUFSIZE (256 * 1024)

typedef struct wk_stage wk_stage;

typedef struct wk_stage_ops {
    /* Consume len bytes (len may be 0). On error the stage is left unusable except
     * for free. */
    int (*write)(wk_stage *stage, const void *buf, size_t len, wk_error *err);
    /* Flush everything this stage holds, then finish the next stage. After a
     * successful finish the stage's results (digests, sizes, commit) are final. */
    int (*finish)(wk_stage *stage, wk_error *err);
    /* Free this stage and the chain behind it. Freeing without a successful finish
     * aborts: a storage sink leaves nothing visible. */
    void (*free)(wk_stage *stage);
} wk_stage_ops;

struct wk_stage {
    const wk_stage_ops *ops;
    wk_stage *next; /* owned; NULL for a sink */
};

int wk_stage_write(wk_stage *stage, const void *buf, size_t len, wk_error *err);
int wk_stage_finish(wk_stage *stage, wk_error *err);
/* Accepts NULL. */
void wk_stage_free(wk_stage *stage);

/* Stage constructors in every module follow one rule: they take ownership of `next`
 * even when they fail (then they free it), so a chain is built sink-first with no
 * cleanup at each step:
 *     s = sink; s = wk_x_new(s, ...); if (s == NULL) goto out;  */

/* The plaintext fingerprint: XXH3-128, kept in object names so that a duplicate push
 * is recognised without downloading anything. */
typedef struct wk_fingerprint {
    uint8_t bytes[16]; /* XXH128 canonical (big-endian) form */
} wk_fingerprint;

#define WK_FINGERPRINT_HEX_LEN 32

/* Writes 32 lower-case hex digits and a NUL into out. */
void wk_fingerprint_hex(const wk_fingerprint *fp, char out[WK_FINGERPRINT_HEX_LEN + 1]);
/* Parses exactly 32 hex digits; returns 0 or -1. */
int wk_fingerprint_parse(const char *hex, wk_fingerprint *out);
bool wk_fingerprint_equal(const wk_fingerprint *a, const wk_fingerprint *b);

/* What a fingerprint stage saw, valid after finish. */
typedef struct wk_stream_summary {
    uint64_t bytes;
    wk_fingerprint fingerprint;
} wk_stream_summary;

/* Passes bytes on unchanged to next (which may be NULL: then it is a sink) while
 * counting them and computing their fingerprint; *summary is written at finish. */
wk_stage *wk_stage_fingerprint_new(wk_stage *next, wk_stream_summary *summary, wk_error *err);

/* Like wk_stage_fingerprint_new (summary may be NULL), but finish compares the
 * fingerprint with *expected (copied) before finishing next: on a mismatch it fails
 * with WK_ERR_CORRUPT and next is never finished, so a sink behind it commits nothing. */
wk_stage *wk_stage_fingerprint_check_new(wk_stage *next, const wk_fingerprint *expected,
                                         wk_stream_summary *summary, wk_error *err);

/* The fingerprint and size of what has passed through a stage made by
 * wk_stage_fingerprint_new / _check_new so far (the stage is left as it was). */
void wk_stage_fingerprint_peek(wk_stage *stage, wk_stream_summary *out);

/* The last stage of a chain (the sink). */
wk_stage *wk_stage_sink_of(wk_stage *chain);

/* Progress of a long job over one or more streams: bytes done so far of total (0 when
 * unknown), reported to fn after every write that passes a progress stage. */
typedef struct wk_progress {
    void (*fn)(uint64_t done, uint64_t total, void *arg); /* NULL: nothing is reported */
    void *arg;
    uint64_t done, total;
} wk_progress;

/* Pass-through stage adding what passes to progress->done and calling progress->fn.
 * Takes ownership of next; without a callback it returns next itself. */
wk_stage *wk_stage_progress_new(wk_stage *next, wk_progress *progress, wk_error *err);

/* Counts bytes passing through into *count (updated as they pass). next may be NULL. */
wk_stage *wk_stage_count_new(wk_stage *next, uint64_t *count, wk_error *err);

/* Sink writing everything to fd (not owned, never closed; no fsync). */
wk_stage *wk_stage_fd_new(int fd, wk_error *err);

/* Sink that keeps the bytes in memory, at most `limit` of them (more is an error);
 * after finish *out / *out_len point at a malloc'd buffer owned by the caller. */
wk_stage *wk_stage_memory_new(size_t limit, uint8_t **out, size_t *out_len, wk_error *err);

/* Reads fd to its end and writes everything into stage (without finishing it).
 * *total (may be NULL) receives the byte count. */
int wk_stream_pump_fd(int fd, wk_stage *stage, uint64_t *total, wk_error *err);

/* Computes the fingerprint and size of a whole file in one read pass. */
int wk_stream_fingerprint_fd(int fd, wk_stream_summary *summary, wk_error *err);

#endif
