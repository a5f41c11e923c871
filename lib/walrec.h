/* walrec: reads the records of consecutive WAL segments (pages, records across page and
 * segment boundaries) and reports those recovery targets are about; layer 2 (foundations). */
#ifndef WK_WALREC_H
#define WK_WALREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "stream.h"
#include "wal.h"

/* The records a recovery target can stop at (PostgreSQL 15 to 18 write them alike). */
typedef enum wk_walrec_kind {
    WK_WALREC_COMMIT,       /* a transaction's commit (also COMMIT PREPARED) */
    WK_WALREC_ABORT,        /* an abort (also ROLLBACK PREPARED, and a subtransaction's) */
    WK_WALREC_RESTORE_POINT /* pg_create_restore_point() */
} wk_walrec_kind;

#define WK_WALREC_NAME_MAX 64 /* PostgreSQL's MAXFNAMELEN, NUL included */

typedef struct wk_walrec_event {
    wk_walrec_kind kind;
    wk_lsn lsn;   /* where the record starts */
    wk_lsn end;   /* where it ends */
    int64_t time; /* PostgreSQL timestamp: microseconds since 2000-01-01 00:00 UTC */
    uint32_t xid; /* commit/abort: the transaction ended (a prepared one's own id) */
    char name[WK_WALREC_NAME_MAX]; /* restore point: its name */
} wk_walrec_event;

/* What the records that start and end within what was read hold. */
typedef struct wk_walrec_summary {
    uint64_t xacts;             /* commit and abort records */
    int64_t time_min, time_max; /* of those, when xacts > 0 */
    uint32_t xid_min, xid_max;  /* their transaction ids (as numbers), when xacts > 0 */
    uint32_t points;            /* restore points */
    /* The record crossing the end of what was read may be one of the above (its start
     * was read, not its end): reading on into the next segment finds it. */
    bool crossing;
} wk_walrec_summary;

/* Called for each of the records above once it was read whole; non-zero stops the reader
 * (wk_walrec_feed then fails with WK_ERR_INTERNAL unless fn set err). */
typedef int (*wk_walrec_fn)(const wk_walrec_event *event, void *arg, wk_error *err);

typedef struct wk_walrec_reader wk_walrec_reader;

/* A reader of segments segno, segno + 1, ... of seg_size bytes (fn may be NULL: then only
 * the summary is kept). Reading starts at the segment's first byte; the end of a record
 * begun in the segment before is skipped. NULL when out of memory. */
wk_walrec_reader *wk_walrec_new(uint64_t segno, uint32_t seg_size, wk_walrec_fn fn, void *arg);
void wk_walrec_free(wk_walrec_reader *r);

/* The next len bytes of the segments. A page that is not the next page of this WAL (wrong
 * magic or address: a recycled segment's old content), zeroes where a record should start
 * and a segment switch end the records of a segment: the rest of it is skipped. Errors
 * come only from fn or memory. */
int wk_walrec_feed(wk_walrec_reader *r, const void *buf, size_t len, wk_error *err);

/* The summary of everything read so far. */
void wk_walrec_summary_get(const wk_walrec_reader *r, wk_walrec_summary *out);

/* A pass-through stage feeding everything that passes to reader (borrowed, not freed). */
wk_stage *wk_walrec_stage_new(wk_stage *next, wk_walrec_reader *reader, wk_error *err);

/* PostgreSQL timestamps <-> Unix time in microseconds. */
int64_t wk_walrec_time_to_unix_us(int64_t pg_time);
int64_t wk_walrec_time_from_unix_us(int64_t unix_us);

#endif
