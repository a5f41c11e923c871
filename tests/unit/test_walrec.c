/* test_walrec: the WAL record reader on synthetic WAL laid out as PostgreSQL does (records
 * across pages and segments, split headers, switches, recycled pages, damaged records). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "walrec.h"

#define MAX_EVENTS 256

typedef struct seen {
    size_t count;
    wk_walrec_event events[MAX_EVENTS];
} seen;

static int collect(const wk_walrec_event *event, void *arg, wk_error *err)
{
    (void)err;
    seen *s = arg;
    ck_assert_uint_lt(s->count, MAX_EVENTS);
    s->events[s->count++] = *event;
    return 0;
}

/* Reads len bytes of WAL from segment segno on, in writes of chunk bytes. */
static void read_wal(const uint8_t *wal, size_t len, uint64_t segno, size_t chunk, seen *s,
                     wk_walrec_summary *summary)
{
    wk_error err = {0};
    memset(s, 0, sizeof(*s));
    wk_walrec_reader *r = wk_walrec_new(segno, TS_SEG, collect, s);
    ck_assert_ptr_nonnull(r);
    /* Past the records of interest (the first 256 KiB at most), the rest in one write:
     * byte-sized writes of a whole segment only cost time. */
    for (size_t off = 0, n; off < len; off += n) {
        n = off >= 256 * 1024 ? len - off : len - off < chunk ? len - off : chunk;
        if (wk_walrec_feed(r, wal + off, n, &err) != 0)
            ck_abort_msg("feed: %s", err.message);
    }
    if (summary != NULL)
        wk_walrec_summary_get(r, summary);
    wk_walrec_free(r);
}

/* The events of records, in order (fillers and skips are not events). */
static void assert_events(const seen *s, const ts_wal_record *records, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const ts_wal_record *r = &records[i];
        if (r->kind != TS_WAL_COMMIT && r->kind != TS_WAL_ABORT && r->kind != TS_WAL_RESTORE_POINT)
            continue;
        ck_assert_uint_lt(k, s->count);
        const wk_walrec_event *e = &s->events[k++];
        ck_assert_uint_eq(e->lsn, r->lsn);
        ck_assert_int_eq(e->time, r->time);
        if (r->kind == TS_WAL_RESTORE_POINT) {
            ck_assert_int_eq(e->kind, WK_WALREC_RESTORE_POINT);
            ck_assert_str_eq(e->name, r->name);
        } else {
            ck_assert_int_eq(e->kind,
                             r->kind == TS_WAL_COMMIT ? WK_WALREC_COMMIT : WK_WALREC_ABORT);
            ck_assert_uint_eq(e->xid, r->xid);
        }
    }
    ck_assert_uint_eq(k, s->count);
}

#define T(x) (INT64_C(849997327853551) + (x))

START_TEST(test_records_in_any_chunks)
{
    ts_wal_record recs[] = {
        {TS_WAL_FILLER, 100, 0, 0, NULL, 0},
        {TS_WAL_COMMIT, 0, 1001, T(1), NULL, 0},
        {TS_WAL_FILLER, 9000, 0, 0, NULL, 0}, /* crosses a page */
        {TS_WAL_ABORT, 0, 1002, T(2), NULL, 0},
        {TS_WAL_RESTORE_POINT, 0, 0, T(3), "before the drop", 0},
        {TS_WAL_FILLER, 65536, 0, 0, NULL, 0}, /* crosses several pages */
        {TS_WAL_COMMIT, 0, 1003, T(4), NULL, 0},
    };
    size_t n = sizeof(recs) / sizeof(recs[0]);
    uint8_t *wal = ts_wal_build(1, 3, 1, recs, n);
    static const size_t chunks[] = {1, 7, 24, 4096, 8192, 100000, TS_SEG};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        seen s;
        wk_walrec_summary sum;
        read_wal(wal, TS_SEG, 3, chunks[c], &s, &sum);
        assert_events(&s, recs, n);
        ck_assert_uint_eq(sum.xacts, 3);
        ck_assert_int_eq(sum.time_min, T(1));
        ck_assert_int_eq(sum.time_max, T(4));
        ck_assert_uint_eq(sum.xid_min, 1001);
        ck_assert_uint_eq(sum.xid_max, 1003);
        ck_assert_uint_eq(sum.points, 1);
        ck_assert(!sum.crossing);
    }
    free(wal);
}
END_TEST

/* A commit placed so that it starts `before` bytes before segment 1 ends: the filler before
 * it sized from a first layout (page headers make a few tries necessary). */
static uint8_t *commit_across(uint32_t before, ts_wal_record *recs)
{
    uint64_t want = (uint64_t)TS_SEG * 2 - before;
    uint32_t size = 0;
    for (int tries = 0; tries < 64; tries++) {
        recs[0] = (ts_wal_record){TS_WAL_SKIP_TO, TS_SEG * 2 - 4200, 0, 0, NULL, 0};
        recs[1] = (ts_wal_record){TS_WAL_FILLER, size, 0, 0, NULL, 0};
        recs[2] = (ts_wal_record){TS_WAL_COMMIT, 0, 7, T(10), NULL, 0};
        recs[3] = (ts_wal_record){TS_WAL_COMMIT, 0, 8, T(11), NULL, 0};
        uint8_t *wal = ts_wal_build(1, 1, 2, recs, 4);
        if (recs[2].lsn == want)
            return wal;
        free(wal);
        /* Move the commit by the difference (8-byte steps; a page header in between moves it
         * further, which the next try corrects). */
        int64_t diff = (int64_t)want - (int64_t)recs[2].lsn;
        int64_t next = (int64_t)size + (diff > 0 ? (diff + 7) / 8 * 8 : -((-diff + 7) / 8 * 8));
        if (next < 0 || next > 12000)
            break;
        if ((uint32_t)next == size)
            size += 8;
        else
            size = (uint32_t)next;
    }
    ck_abort_msg("no filler size puts a commit %u bytes before the segment's end", before);
    return NULL;
}

START_TEST(test_record_across_segments)
{
    /* 16: the header itself is split; 24: the data is on the next segment. */
    static const uint32_t before[] = {16, 24, 32};
    for (size_t i = 0; i < sizeof(before) / sizeof(before[0]); i++) {
        ts_wal_record recs[4];
        uint8_t *wal = commit_across(before[i], recs);
        seen s;
        wk_walrec_summary first, second;
        /* Each segment alone: the first sees the commit's start, the second its end. */
        read_wal(wal, TS_SEG, 1, 4096, &s, &first);
        ck_assert(first.crossing);
        ck_assert_uint_eq(s.count, 0);
        read_wal(wal + TS_SEG, TS_SEG, 2, 4096, &s, &second);
        ck_assert(!second.crossing);
        ck_assert_uint_eq(s.count, 1);
        ck_assert_uint_eq(s.events[0].xid, 8);
        /* Read on from one into the other: both commits, the first one whole. */
        read_wal(wal, 2 * TS_SEG, 1, 333, &s, &first);
        assert_events(&s, recs, 4);
        ck_assert_uint_ge(s.events[0].end, TS_SEG * 2);
        free(wal);
    }
}
END_TEST

START_TEST(test_switch_ends_segment)
{
    ts_wal_record recs[] = {
        {TS_WAL_COMMIT, 0, 5, T(1), NULL, 0},
        {TS_WAL_SWITCH, 0, 0, 0, NULL, 0},
        {TS_WAL_COMMIT, 0, 6, T(2), NULL, 0},
    };
    uint8_t *wal = ts_wal_build(1, 4, 2, recs, 3);
    ck_assert_uint_eq(recs[2].lsn, 5 * (uint64_t)TS_SEG + 40);
    /* Garbage after the switch is never read as records. */
    memset(wal + 4096, 0x77, 8192);
    seen s;
    read_wal(wal, 2 * TS_SEG, 4, 1000, &s, NULL);
    assert_events(&s, recs, 3);
    free(wal);
}
END_TEST

START_TEST(test_recycled_page_ends_records)
{
    ts_wal_record recs[] = {
        {TS_WAL_COMMIT, 0, 5, T(1), NULL, 0},
        {TS_WAL_FILLER, 9000, 0, 0, NULL, 0},
        {TS_WAL_COMMIT, 0, 6, T(2), NULL, 0},
    };
    uint8_t *wal = ts_wal_build(1, 4, 1, recs, 3);
    /* The second page holds an old segment's page: its address is another one's. */
    ts_put64(wal + 8192, 8, UINT64_C(2) * TS_SEG + 8192);
    seen s;
    wk_walrec_summary sum;
    read_wal(wal, TS_SEG, 4, TS_SEG, &s, &sum);
    ck_assert_uint_eq(s.count, 1);
    ck_assert_uint_eq(s.events[0].xid, 5);
    ck_assert_uint_eq(sum.xacts, 1);
    free(wal);
}
END_TEST

/* A record torn by a crash (PostgreSQL 15 and later write the next page with
 * XLP_FIRST_IS_OVERWRITE_CONTRECORD and go on with a record linked to the last whole one):
 * the torn record is dropped and what follows is read. */
START_TEST(test_overwritten_contrecord)
{
    ts_wal_record recs[] = {
        {TS_WAL_COMMIT, 0, 5, T(1), NULL, 0},
        {TS_WAL_FILLER, 9000, 0, 0, NULL, 0},
    };
    uint8_t *wal = ts_wal_build(1, 4, 1, recs, 2);
    uint64_t start = 4 * (uint64_t)TS_SEG;
    uint64_t page = (recs[1].lsn / 8192 + 1) * 8192;
    uint8_t *h = wal + (page - start);
    ts_put16(h, 2, 0x0008); /* XLP_FIRST_IS_OVERWRITE_CONTRECORD */
    ts_put32(h, 16, 0);
    ts_wal_commit_record(h + 24, 77, T(2), recs[0].lsn);
    seen s;
    read_wal(wal, TS_SEG, 4, 4096, &s, NULL);
    ck_assert_uint_eq(s.count, 2);
    ck_assert_uint_eq(s.events[0].xid, 5);
    ck_assert_uint_eq(s.events[1].xid, 77);
    ck_assert_uint_eq(s.events[1].lsn, page + 24);
    free(wal);
}
END_TEST

START_TEST(test_damaged_or_random_bytes_are_no_records)
{
    ts_wal_record recs[] = {
        {TS_WAL_COMMIT, 0, 5, T(1), NULL, 0},
        {TS_WAL_COMMIT, 0, 6, T(2), NULL, 0},
    };
    uint8_t *wal = ts_wal_build(1, 4, 1, recs, 2);
    wal[recs[1].lsn - 4 * (uint64_t)TS_SEG + 30] ^= 1; /* a bit of its time */
    seen s;
    read_wal(wal, TS_SEG, 4, TS_SEG, &s, NULL);
    ck_assert_uint_eq(s.count, 1);
    ck_assert_uint_eq(s.events[0].xid, 5);
    free(wal);
    /* A valid first page header, then random bytes. */
    for (unsigned seed = 1; seed < 20; seed++) {
        ts_segment spec = {.segno = 4, .state = seed};
        size_t len;
        char dir[256], path[512];
        ts_tmpdir_make(dir, sizeof(dir), "/tmp/test_walrec_XXXXXX");
        uint8_t *bytes = ts_make_segment(dir, &spec, NULL, path, &len);
        wk_walrec_summary sum;
        read_wal(bytes, len, 4, 65536, &s, &sum);
        ck_assert_uint_eq(s.count, 0);
        ts_tmpdir_remove(dir);
        free(bytes);
    }
}
END_TEST

START_TEST(test_stage_passes_bytes)
{
    ts_wal_record recs[] = {{TS_WAL_COMMIT, 0, 9, T(5), NULL, 0}};
    uint8_t *wal = ts_wal_build(1, 2, 1, recs, 1);
    wk_error err = {0};
    seen s = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    wk_walrec_reader *r = wk_walrec_new(2, TS_SEG, collect, &s);
    wk_stage *chain = wk_stage_memory_new(TS_SEG, &out, &out_len, &err);
    chain = wk_walrec_stage_new(chain, r, &err);
    ck_assert_ptr_nonnull(chain);
    ck_assert_int_eq(wk_stage_write(chain, wal, TS_SEG, &err), 0);
    ck_assert_int_eq(wk_stage_finish(chain, &err), 0);
    wk_stage_free(chain);
    ck_assert_uint_eq(out_len, TS_SEG);
    ck_assert_mem_eq(out, wal, TS_SEG);
    ck_assert_uint_eq(s.count, 1);
    wk_walrec_free(r);
    free(out);
    free(wal);
}
END_TEST

START_TEST(test_times)
{
    /* 2000-01-01 00:00:00 UTC is PostgreSQL's zero. */
    ck_assert_int_eq(wk_walrec_time_to_unix_us(0), INT64_C(946684800000000));
    ck_assert_int_eq(wk_walrec_time_from_unix_us(INT64_C(946684800000001)), 1);
}
END_TEST

static Suite *walrec_suite(void)
{
    Suite *s = suite_create("walrec");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_records_in_any_chunks);
    tcase_add_test(tc, test_record_across_segments);
    tcase_add_test(tc, test_switch_ends_segment);
    tcase_add_test(tc, test_recycled_page_ends_records);
    tcase_add_test(tc, test_overwritten_contrecord);
    tcase_add_test(tc, test_damaged_or_random_bytes_are_no_records);
    tcase_add_test(tc, test_stage_passes_bytes);
    tcase_add_test(tc, test_times);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(walrec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
