/* walrec: reads the records of consecutive WAL segments (pages, records across page and
 * segment boundaries) and reports those recovery targets are about; layer 2 (foundations). */
#include "walrec.h"

#include <stdlib.h>
#include <string.h>

/* The WAL layout of PostgreSQL 15 to 18 (src/include/access/xlog_internal.h,
 * xlogrecord.h, xact.h): pages of xlp_xlog_blcksz bytes, each starting with a short (24
 * bytes) or, at a segment's start, long (40 bytes) header; records 8-byte aligned, their
 * 24-byte header first, then block references, then the data (block data, main data
 * last). A record, its header included, may continue on the next page and segment. */
#define SHORT_PAGE_HEADER 24
#define LONG_PAGE_HEADER 40
#define PAGE_MAGIC 0
#define PAGE_INFO 2
#define PAGE_ADDR 8
#define PAGE_REM_LEN 16
#define PAGE_SEG_SIZE 32
#define PAGE_BLCKSZ 36
#define XLP_FIRST_IS_CONTRECORD 0x0001

#define RECORD_HEADER 24
#define REC_TOT_LEN 0
#define REC_XID 4
#define REC_PREV 8
#define REC_INFO 16
#define REC_RMID 17

#define RM_XLOG_ID 0
#define RM_XACT_ID 1
#define XLOG_SWITCH 0x40
#define XLOG_RESTORE_POINT 0x70
#define XLOG_XACT_OPMASK 0x70
#define XLOG_XACT_COMMIT 0x00
#define XLOG_XACT_ABORT 0x20
#define XLOG_XACT_COMMIT_PREPARED 0x30
#define XLOG_XACT_ABORT_PREPARED 0x40
#define XLOG_XACT_HAS_INFO 0x80

#define XLR_MAX_BLOCK_ID 32
#define XLR_BLOCK_ID_DATA_SHORT 255
#define XLR_BLOCK_ID_DATA_LONG 254
#define XLR_BLOCK_ID_ORIGIN 253
#define XLR_BLOCK_ID_TOPLEVEL_XID 252
#define BKPBLOCK_HAS_IMAGE 0x10
#define BKPBLOCK_SAME_REL 0x80
#define BKPIMAGE_HAS_HOLE 0x01
#define BKPIMAGE_COMPRESSED 0x1C /* pglz, lz4, zstd */

#define XACT_XINFO_HAS_DBINFO (1u << 0)
#define XACT_XINFO_HAS_SUBXACTS (1u << 1)
#define XACT_XINFO_HAS_RELFILELOCATORS (1u << 2)
#define XACT_XINFO_HAS_INVALS (1u << 3)
#define XACT_XINFO_HAS_TWOPHASE (1u << 4)
#define XACT_XINFO_HAS_DROPPED_STATS (1u << 8)

/* Records of interest are kept whole up to this size; a larger one (a commit with very
 * many subtransactions or invalidations) still gives its time and header xid. */
#define BODY_MAX (1024 * 1024)

#define PG_EPOCH_UNIX_US INT64_C(946684800000000)
#define REC_CRC 20

typedef enum read_state {
    ST_HEADER, /* reading a record header (hdr_have bytes of it so far) */
    ST_BODY,   /* reading the rest of a record (rec_left bytes to go) */
    ST_PAD,    /* skipping the alignment after a record */
    ST_END     /* no more records in this segment: skipping to the next */
} read_state;

struct wk_walrec_reader {
    uint32_t seg_size, blcksz;
    uint16_t magic; /* of the first page read; 0 before */
    int pg_version;
    wk_lsn pos; /* LSN of the next byte */
    uint8_t page[LONG_PAGE_HEADER];

    read_state state;
    bool known; /* ST_BODY: the record's start was read (else: a continuation) */
    uint64_t rec_left;
    uint32_t pad_left;
    uint8_t hdr[RECORD_HEADER];
    size_t hdr_have;
    wk_lsn rec_lsn, prev_lsn;
    bool prev_known;
    bool keep, is_switch;
    uint8_t *body;
    size_t body_have, body_cap;
    uint32_t body_len; /* whole length after the header */
    uint32_t crc;      /* CRC-32C of the body so far (records of interest) */

    wk_walrec_summary summary;
    wk_walrec_fn fn;
    void *arg;
};

/* CRC-32C (Castagnoli), as PostgreSQL checks records with: reflected, initial and final
 * value all ones; computed only over records of interest, which are small. The table
 * version everywhere, the SSE 4.2 instruction where the processor has it (a segment of
 * short transactions holds some ten thousand commits). */
static uint32_t crc32c_table(uint32_t crc, const uint8_t *p, size_t n)
{
    static uint32_t table[256];
    static bool ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        ready = true;
    }
    while (n-- > 0)
        crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p,
                                                               size_t n)
{
    uint64_t c = crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        c = __builtin_ia32_crc32di(c, v);
    }
    uint32_t c32 = (uint32_t)c;
    for (; n > 0; n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}

static uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
{
    static int has_sse42 = -1;
    if (has_sse42 < 0)
        has_sse42 = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    return has_sse42 ? crc32c_sse42(crc, p, n) : crc32c_table(crc, p, n);
}
#else
static uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
{
    return crc32c_table(crc, p, n);
}
#endif

int64_t wk_walrec_time_to_unix_us(int64_t pg_time)
{
    return pg_time + PG_EPOCH_UNIX_US;
}

int64_t wk_walrec_time_from_unix_us(int64_t unix_us)
{
    return unix_us - PG_EPOCH_UNIX_US;
}

wk_walrec_reader *wk_walrec_new(uint64_t segno, uint32_t seg_size, wk_walrec_fn fn, void *arg)
{
    wk_walrec_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->seg_size = seg_size;
    r->blcksz = 8192; /* until the first long header says */
    r->pos = wk_wal_segno_to_lsn(segno, seg_size);
    r->fn = fn;
    r->arg = arg;
    r->state = ST_HEADER;
    return r;
}

void wk_walrec_free(wk_walrec_reader *r)
{
    if (r == NULL)
        return;
    free(r->body);
    free(r);
}

/* Forgets the record in progress: what follows is read as new records. */
static void drop_record(wk_walrec_reader *r)
{
    r->state = ST_HEADER;
    r->hdr_have = 0;
    r->rec_left = 0;
}

static void end_segment(wk_walrec_reader *r)
{
    drop_record(r);
    r->state = ST_END;
    r->prev_known = false;
}

/* A page header was read whole. */
static void page_header(wk_walrec_reader *r, wk_lsn page_lsn, bool is_long)
{
    uint16_t magic = wk_wal_read16(r->page + PAGE_MAGIC), info = wk_wal_read16(r->page + PAGE_INFO);
    uint32_t rem_len = wk_wal_read32(r->page + PAGE_REM_LEN);
    if (is_long && r->magic == 0) {
        uint32_t blcksz = wk_wal_read32(r->page + PAGE_BLCKSZ);
        r->magic = magic;
        r->pg_version = wk_wal_magic_version(magic);
        if (blcksz < 1024 || blcksz > 65536 || (blcksz & (blcksz - 1)) != 0 ||
            wk_wal_read32(r->page + PAGE_SEG_SIZE) != r->seg_size || r->pg_version == 0) {
            r->magic = 0xFFFF; /* nothing of this is WAL we read */
            end_segment(r);
            return;
        }
        r->blcksz = blcksz;
    }
    if (magic != r->magic || wk_wal_read64(r->page + PAGE_ADDR) != page_lsn) {
        end_segment(r); /* not the next page of this WAL: a recycled segment's old pages */
        return;
    }
    if (r->state == ST_END)
        return;
    bool in_record = r->state == ST_BODY || (r->state == ST_HEADER && r->hdr_have > 0);
    if ((info & XLP_FIRST_IS_CONTRECORD) == 0) {
        if (in_record)
            drop_record(r); /* the record was never finished (an overwritten contrecord) */
        return;
    }
    if (!in_record) {
        /* The end of a record that began before what we read. */
        r->state = ST_BODY;
        r->known = false;
        r->keep = false;
        r->is_switch = false;
        r->rec_left = rem_len;
        r->prev_known = false;
    } else if (r->state == ST_BODY && r->rec_left != rem_len) {
        end_segment(r); /* the pages disagree on the record: stop trusting them */
    }
}

/* Where the record's main data starts (offset into the bytes after the header), walking
 * its block references; false when they do not parse. */
static bool main_data(const uint8_t *b, size_t have, uint32_t len, uint32_t *off, uint32_t *size)
{
    size_t p = 0;
    uint64_t data = 0;
    while (p < len && p < have) {
        uint8_t id = b[p++];
        if (id == XLR_BLOCK_ID_DATA_SHORT || id == XLR_BLOCK_ID_DATA_LONG) {
            uint32_t main_len;
            if (id == XLR_BLOCK_ID_DATA_SHORT) {
                if (p + 1 > have)
                    return false;
                main_len = b[p];
            } else {
                if (p + 4 > have)
                    return false;
                main_len = wk_wal_read32(b + p);
            }
            if (main_len > len)
                return false;
            *off = len - main_len;
            *size = main_len;
            return true;
        }
        if (id == XLR_BLOCK_ID_ORIGIN) {
            p += 2;
        } else if (id == XLR_BLOCK_ID_TOPLEVEL_XID) {
            p += 4;
        } else if (id <= XLR_MAX_BLOCK_ID) {
            if (p + 3 > have)
                return false;
            uint8_t fork_flags = b[p];
            data += wk_wal_read16(b + p + 1);
            p += 3;
            if (fork_flags & BKPBLOCK_HAS_IMAGE) {
                if (p + 5 > have)
                    return false;
                data += wk_wal_read16(b + p);
                uint8_t bimg_info = b[p + 4];
                p += 5;
                if ((bimg_info & BKPIMAGE_HAS_HOLE) && (bimg_info & BKPIMAGE_COMPRESSED))
                    p += 2;
            }
            if ((fork_flags & BKPBLOCK_SAME_REL) == 0)
                p += 12;
            p += 4;
        } else {
            return false;
        }
        if (data > len)
            return false;
    }
    return false; /* no main data */
}

/* The id of the transaction a COMMIT/ABORT PREPARED record ends, from its xinfo. */
static bool twophase_xid(const wk_walrec_reader *r, const uint8_t *m, size_t have, bool commit,
                         uint32_t *xid)
{
    size_t p = 8; /* after xact_time */
    if (p + 4 > have)
        return false;
    uint32_t xinfo = wk_wal_read32(m + p);
    p += 4;
    /* Each array: a 4-byte count, then its items. */
    const struct {
        uint32_t flag;
        size_t item;
        bool in_abort;
    } arrays[] = {
        {XACT_XINFO_HAS_SUBXACTS, 4, true},
        {XACT_XINFO_HAS_RELFILELOCATORS, 12, true},
        /* xl_xact_stats_item: kind, database, object (32 bits to 17, 64 from 18 on) */
        {XACT_XINFO_HAS_DROPPED_STATS, r->pg_version >= 18 ? 16 : 12, true},
        {XACT_XINFO_HAS_INVALS, 16, false},
    };
    if (xinfo & XACT_XINFO_HAS_DBINFO)
        p += 8;
    for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
        if ((xinfo & arrays[i].flag) == 0 || (!commit && !arrays[i].in_abort))
            continue;
        if (p + 4 > have)
            return false;
        int32_t n = (int32_t)wk_wal_read32(m + p);
        if (n < 0 || (uint64_t)n * arrays[i].item > have)
            return false;
        p += 4 + (size_t)n * arrays[i].item;
    }
    if ((xinfo & XACT_XINFO_HAS_TWOPHASE) == 0 || p + 4 > have)
        return false;
    *xid = wk_wal_read32(m + p);
    return true;
}

/* A record of interest was read (whole, or its first BODY_MAX bytes). */
static int record_read(wk_walrec_reader *r, wk_error *err)
{
    uint8_t info = r->hdr[REC_INFO], rmid = r->hdr[REC_RMID];
    if ((crc32c_update(r->crc, r->hdr, REC_CRC) ^ 0xFFFFFFFFu) != wk_wal_read32(r->hdr + REC_CRC))
        return 0; /* not a record PostgreSQL wrote whole: nothing to index */
    uint32_t off, size;
    size_t have = r->body_have;
    wk_walrec_event ev = {.lsn = r->rec_lsn, .end = r->pos, .xid = wk_wal_read32(r->hdr + REC_XID)};
    if (!main_data(r->body, have, r->body_len, &off, &size) || size < 8 || off + 8 > have)
        return 0;
    const uint8_t *m = r->body + off;
    size_t m_have = have - off < size ? have - off : size;
    ev.time = (int64_t)wk_wal_read64(m);
    if (rmid == RM_XLOG_ID) {
        if (size < 8 + WK_WALREC_NAME_MAX || m_have < 8 + WK_WALREC_NAME_MAX)
            return 0;
        ev.kind = WK_WALREC_RESTORE_POINT;
        ev.xid = 0;
        memcpy(ev.name, m + 8, WK_WALREC_NAME_MAX);
        ev.name[WK_WALREC_NAME_MAX - 1] = '\0';
        r->summary.points++;
    } else {
        uint8_t op = info & XLOG_XACT_OPMASK;
        bool commit = op == XLOG_XACT_COMMIT || op == XLOG_XACT_COMMIT_PREPARED;
        ev.kind = commit ? WK_WALREC_COMMIT : WK_WALREC_ABORT;
        /* A prepared transaction's own id is in its xinfo (the header's is the session's
         * that ran COMMIT PREPARED): 0, no transaction's, when it cannot be read. */
        if ((op == XLOG_XACT_COMMIT_PREPARED || op == XLOG_XACT_ABORT_PREPARED) &&
            ((info & XLOG_XACT_HAS_INFO) == 0 || !twophase_xid(r, m, m_have, commit, &ev.xid)))
            ev.xid = 0;
        wk_walrec_summary *s = &r->summary;
        if (s->xacts == 0 || ev.time < s->time_min)
            s->time_min = ev.time;
        if (s->xacts == 0 || ev.time > s->time_max)
            s->time_max = ev.time;
        if (s->xacts == 0 || ev.xid < s->xid_min)
            s->xid_min = ev.xid;
        if (s->xacts == 0 || ev.xid > s->xid_max)
            s->xid_max = ev.xid;
        s->xacts++;
    }
    if (r->fn != NULL && r->fn(&ev, r->arg, err) != 0) {
        if (err != NULL && err->code == WK_ERR_NONE)
            wk_error_set(err, WK_ERR_INTERNAL, "reading WAL records was stopped");
        return -1;
    }
    return 0;
}

static bool of_interest(uint8_t rmid, uint8_t info, bool *is_switch)
{
    *is_switch = rmid == RM_XLOG_ID && (info & 0xF0) == XLOG_SWITCH;
    if (rmid == RM_XLOG_ID)
        return (info & 0xF0) == XLOG_RESTORE_POINT;
    if (rmid != RM_XACT_ID)
        return false;
    uint8_t op = info & XLOG_XACT_OPMASK;
    return op == XLOG_XACT_COMMIT || op == XLOG_XACT_ABORT || op == XLOG_XACT_COMMIT_PREPARED ||
           op == XLOG_XACT_ABORT_PREPARED;
}

/* The record is over at r->pos. */
static int record_done(wk_walrec_reader *r, wk_error *err)
{
    /* The next record's xl_prev names the last record completed: one dropped unfinished
     * (an overwritten contrecord) never becomes it. */
    if (r->known) {
        r->prev_known = true;
        r->prev_lsn = r->rec_lsn;
    }
    if (r->known && r->keep && record_read(r, err) != 0)
        return -1;
    if (r->known && r->is_switch) {
        end_segment(r); /* the rest of the segment is unused */
        r->prev_known = true;
        return 0;
    }
    r->hdr_have = 0;
    r->pad_left = (uint32_t)(((r->pos + 7) & ~(wk_lsn)7) - r->pos);
    r->state = r->pad_left > 0 ? ST_PAD : ST_HEADER;
    return 0;
}

/* The record header was read whole. */
static int header_done(wk_walrec_reader *r, wk_error *err)
{
    uint32_t tot_len = wk_wal_read32(r->hdr + REC_TOT_LEN);
    if (tot_len < RECORD_HEADER ||
        (r->prev_known && wk_wal_read64(r->hdr + REC_PREV) != r->prev_lsn)) {
        end_segment(r); /* zeroes (the end of the WAL written), or not a record of this WAL */
        return 0;
    }
    r->known = true;
    r->keep = of_interest(r->hdr[REC_RMID], r->hdr[REC_INFO], &r->is_switch);
    r->body_len = tot_len - RECORD_HEADER;
    r->body_have = 0;
    r->crc = 0xFFFFFFFFu;
    r->rec_left = r->body_len;
    if (r->keep) {
        size_t want = r->body_len < BODY_MAX ? r->body_len : BODY_MAX;
        if (want > r->body_cap) {
            uint8_t *grown = realloc(r->body, want);
            if (grown == NULL)
                return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
            r->body = grown;
            r->body_cap = want;
        }
    }
    r->state = ST_BODY;
    return r->rec_left == 0 ? record_done(r, err) : 0;
}

/* Consumes record bytes (no page header among them): returns how many, or -1. */
static int64_t consume(wk_walrec_reader *r, const uint8_t *b, size_t n, wk_error *err)
{
    size_t used = 0;
    while (used < n) {
        size_t take;
        switch (r->state) {
        case ST_HEADER:
            if (r->hdr_have == 0) {
                r->rec_lsn = r->pos;
                if (n - used >= RECORD_HEADER) { /* the usual case: the header is here */
                    memcpy(r->hdr, b + used, RECORD_HEADER);
                    take = RECORD_HEADER;
                    used += take;
                    r->pos += take;
                    r->hdr_have = RECORD_HEADER;
                    if (header_done(r, err) != 0)
                        return -1;
                    break;
                }
            }
            take = RECORD_HEADER - r->hdr_have;
            if (take > n - used)
                take = n - used;
            memcpy(r->hdr + r->hdr_have, b + used, take);
            r->hdr_have += take;
            used += take;
            r->pos += take;
            if (r->hdr_have == RECORD_HEADER && header_done(r, err) != 0)
                return -1;
            break;
        case ST_BODY:
            take = r->rec_left < n - used ? (size_t)r->rec_left : n - used;
            if (r->known && r->keep) {
                r->crc = crc32c_update(r->crc, b + used, take);
                size_t room = r->body_cap - r->body_have, copy = room < take ? room : take;
                memcpy(r->body + r->body_have, b + used, copy);
                r->body_have += copy;
            }
            r->rec_left -= take;
            used += take;
            r->pos += take;
            if (r->rec_left == 0 && record_done(r, err) != 0)
                return -1;
            break;
        case ST_PAD:
            take = r->pad_left < n - used ? r->pad_left : n - used;
            r->pad_left -= (uint32_t)take;
            used += take;
            r->pos += take;
            if (r->pad_left == 0)
                r->state = ST_HEADER;
            break;
        case ST_END:
            return (int64_t)used;
        }
    }
    return (int64_t)used;
}

int wk_walrec_feed(wk_walrec_reader *r, const void *buf, size_t len, wk_error *err)
{
    const uint8_t *b = buf;
    while (len > 0) {
        uint64_t in_seg = r->pos % r->seg_size;
        if (r->state == ST_END || r->magic == 0xFFFF) {
            size_t skip =
                (size_t)(r->seg_size - in_seg) < len ? (size_t)(r->seg_size - in_seg) : len;
            r->pos += skip;
            b += skip;
            len -= skip;
            if (r->pos % r->seg_size == 0 && r->magic != 0xFFFF)
                r->state = ST_HEADER; /* the next segment starts with new records */
            continue;
        }
        uint32_t in_page = (uint32_t)(in_seg % r->blcksz);
        bool is_long = in_seg < r->blcksz; /* a segment's first page */
        uint32_t header = is_long ? LONG_PAGE_HEADER : SHORT_PAGE_HEADER;
        if (in_page < header) {
            size_t take = header - in_page < len ? header - in_page : len;
            memcpy(r->page + in_page, b, take);
            r->pos += take;
            b += take;
            len -= take;
            if (in_page + take == header)
                page_header(r, r->pos - header, is_long);
            continue;
        }
        size_t avail = r->blcksz - in_page < len ? r->blcksz - in_page : len;
        int64_t used = consume(r, b, avail, err);
        if (used < 0)
            return -1;
        b += used; /* less than avail only at ST_END: the loop's top skips the rest */
        len -= (size_t)used;
    }
    return 0;
}

void wk_walrec_summary_get(const wk_walrec_reader *r, wk_walrec_summary *out)
{
    *out = r->summary;
    if (r->state == ST_BODY && r->known && r->keep)
        out->crossing = true;
    else if (r->state == ST_HEADER && r->hdr_have > 0) {
        bool is_switch;
        out->crossing =
            r->hdr_have <= REC_RMID || of_interest(r->hdr[REC_RMID], r->hdr[REC_INFO], &is_switch);
    }
}

/* ---- the stage ---------------------------------------------------------------------- */

typedef struct walrec_stage {
    wk_stage base;
    wk_walrec_reader *reader;
} walrec_stage;

static int walrec_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    walrec_stage *s = (walrec_stage *)stage;
    if (wk_walrec_feed(s->reader, buf, len, err) != 0)
        return -1;
    return wk_stage_write(s->base.next, buf, len, err);
}

static int walrec_finish(wk_stage *stage, wk_error *err)
{
    return wk_stage_finish(stage->next, err);
}

static void walrec_free(wk_stage *stage)
{
    wk_stage_free(stage->next);
    free(stage);
}

static const wk_stage_ops walrec_ops = {walrec_write, walrec_finish, walrec_free};

wk_stage *wk_walrec_stage_new(wk_stage *next, wk_walrec_reader *reader, wk_error *err)
{
    if (next == NULL)
        return NULL;
    walrec_stage *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        wk_stage_free(next);
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->base.ops = &walrec_ops;
    s->base.next = next;
    s->reader = reader;
    return &s->base;
}
