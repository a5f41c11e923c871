/* test_window: the walk from a backup along a timeline's path over a synthetic repository
 * (WAL laid out as PostgreSQL does): the time index of names, reading WAL where it falls
 * short (names without index, records crossing segments, restore points), the copy of
 * each segment PostgreSQL reads across a timeline switch, and what stops the walk. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"
#include "window.h"

#define SEG ((uint64_t)TS_SEG)
#define LSN(seg, off) ((wk_lsn)(seg)*SEG + (off))
#define PGT(x) (INT64_C(849997327000000) + (x)) /* PostgreSQL times */

static char tmp_dir[256], repo_dir[300], wal_dir[300];

static void setup(void)
{
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk_window_XXXXXX");
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo", tmp_dir);
    snprintf(wal_dir, sizeof(wal_dir), "%s/pg_wal", tmp_dir);
    ck_assert_int_eq(mkdir(wal_dir, 0700), 0);
}

static void teardown(void)
{
    ts_tmpdir_remove(tmp_dir);
}

static wk_repo *open_repo(void)
{
    wk_repo *repo = ts_repo_open(repo_dir, WK_COMPRESS_ZSTD, NULL);
    ts_repo_identify(repo);
    return repo;
}

/* Builds count segments of timeline tli from first on out of records and archives them. */
static void push_wal(wk_repo *repo, uint32_t tli, uint64_t first, size_t count,
                     ts_wal_record *records, size_t n)
{
    uint8_t *wal = ts_wal_build(tli, first, count, records, n);
    for (size_t i = 0; i < count; i++) {
        char path[512];
        ts_wal_write_segment(wal_dir, wal, tli, first, i, path);
        ts_push_file(repo, path);
        unlink(path);
    }
    free(wal);
}

static void push_history(wk_repo *repo, uint32_t tli, const char *text)
{
    char path[512];
    wk_error err = {0};
    wk_push_result res;
    snprintf(path, sizeof(path), "%s/%08X.history", wal_dir, tli);
    ts_write_file(path, text, strlen(text));
    ck_assert_msg(wk_archive_push(repo, path, &res, &err) == 0, "%s", err.message);
}

static wk_backup_record backup(wk_lsn start, wk_lsn stop, uint32_t tli)
{
    wk_backup_record b = {.start_lsn = start, .stop_lsn = stop, .start_tli = tli, .stop_tli = tli};
    snprintf(b.label, sizeof(b.label), "b");
    b.stop_time = (time_t)(wk_walrec_time_to_unix_us(PGT(0)) / 1000000);
    return b;
}

/* Walks from b to tli (search may be NULL). */
static void walk(wk_repo *repo, const wk_backup_record *b, uint32_t tli,
                 const wk_window_search *search, wk_window *w, wk_window_stop *stop)
{
    wk_error err = {0};
    wk_wal_index index;
    wk_window_path path;
    ck_assert_msg(wk_archive_index(repo, TS_SEG, &index, &err) == 0, "%s", err.message);
    ck_assert_msg(wk_window_path_make(repo, b, tli, TS_SEG, &path, &err) == 0, "%s", err.message);
    ck_assert_msg(wk_window_walk(repo, &index, b, &path, search, w, stop, &err) == 0, "%s",
                  err.message);
    wk_archive_index_free(&index);
}

/* Segments 2..4 of timeline 1: commits in each, a restore point in 3. */
static ts_wal_record history[] = {
    {TS_WAL_COMMIT, 0, 100, PGT(10), NULL, 0},
    {TS_WAL_SKIP_TO, 3 * TS_SEG + 5000, 0, 0, NULL, 0},
    {TS_WAL_COMMIT, 0, 101, PGT(20), NULL, 0},
    {TS_WAL_RESTORE_POINT, 0, 0, PGT(21), "noon", 0},
    {TS_WAL_SKIP_TO, 4 * TS_SEG + 5000, 0, 0, NULL, 0},
    {TS_WAL_ABORT, 0, 102, PGT(30), NULL, 0},
    {TS_WAL_COMMIT, 0, 103, PGT(40), NULL, 0},
};
#define HISTORY_N (sizeof(history) / sizeof(history[0]))

START_TEST(test_walk_from_names)
{
    wk_repo *repo = open_repo();
    push_wal(repo, 1, 2, 3, history, HISTORY_N);
    wk_backup_record b = backup(LSN(2, 40), history[0].lsn + 40, 1);
    wk_window w;
    walk(repo, &b, 1, NULL, &w, NULL);
    ck_assert_uint_eq(w.segments, 3);
    ck_assert_uint_eq(w.last_segno, 4);
    ck_assert_uint_eq(w.end_lsn, LSN(5, 0));
    ck_assert_str_eq(w.missing, "000000010000000000000005");
    ck_assert(w.has_commit);
    ck_assert_int_eq(w.last_commit, PGT(40));
    ck_assert_int_eq(w.consistent, PGT(10)); /* the commit before the backup's end */
    ck_assert_uint_eq(w.point_count, 1);
    ck_assert_str_eq(w.points[0].name, "noon");
    ck_assert_uint_eq(w.points[0].lsn, history[3].lsn);
    /* Read: the stop segment (its commits) and the one with the restore point. */
    ck_assert_uint_eq(w.segments_read, 2);
    wk_window_free(&w);
    wk_repo_free(repo);
}
END_TEST

/* Names without index (archived before it): the same facts, read from the WAL. */
START_TEST(test_walk_without_index)
{
    wk_repo *repo = open_repo();
    push_wal(repo, 1, 2, 3, history, HISTORY_N);
    char dir[400], from[1200], to[1200];
    snprintf(dir, sizeof(dir), "%s/wal/0000000100000000", repo_dir);
    char names[16][300];
    size_t n = 0;
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *de = readdir(d); de != NULL; de = readdir(d))
        if (strstr(de->d_name, ".i") != NULL && strstr(de->d_name, "-claim") == NULL && n < 16)
            snprintf(names[n++], sizeof(names[0]), "%s", de->d_name);
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        const char *index = strstr(names[i], ".i");
        snprintf(from, sizeof(from), "%s/%.299s", dir, names[i]);
        snprintf(to, sizeof(to), "%s/%.*s.zst", dir, (int)(index - names[i]), names[i]);
        ck_assert_int_eq(rename(from, to), 0);
    }
    wk_backup_record b = backup(LSN(2, 40), history[0].lsn + 40, 1);
    wk_window w;
    walk(repo, &b, 1, NULL, &w, NULL);
    ck_assert_uint_eq(w.segments, 3);
    ck_assert_int_eq(w.last_commit, PGT(40));
    ck_assert_uint_eq(w.point_count, 1);
    ck_assert_uint_eq(w.segments_read, 3);
    wk_window_free(&w);
    wk_repo_free(repo);
}
END_TEST

/* The newest commit crosses from segment 3 into 4: the index of 3 cannot hold it. */
START_TEST(test_walk_reads_record_across_segments)
{
    wk_repo *repo = open_repo();
    ts_wal_record recs[] = {
        {TS_WAL_COMMIT, 0, 100, PGT(10), NULL, 0},
        {TS_WAL_SKIP_TO, 4 * TS_SEG - 4200, 0, 0, NULL, 0},
        {TS_WAL_FILLER, 0, 0, 0, NULL, 0},
        {TS_WAL_COMMIT, 0, 200, PGT(99), NULL, 0},
    };
    /* The filler sized so that the commit starts in the last 24 bytes of segment 3 (its
     * header split); page headers make a few tries necessary. */
    uint32_t size = 0;
    for (int tries = 0;; tries++) {
        ck_assert_int_lt(tries, 64);
        recs[2].size = size;
        free(ts_wal_build(1, 2, 3, recs, 4));
        if (recs[3].lsn > 4 * SEG - 24 && recs[3].lsn < 4 * SEG)
            break;
        int64_t diff = (int64_t)(4 * SEG - 16) - (int64_t)recs[3].lsn;
        int64_t next = (int64_t)size + (diff > 0 ? (diff + 7) / 8 * 8 : -((-diff + 7) / 8 * 8));
        size = next < 0 || (uint32_t)next == size ? size + 8 : (uint32_t)next;
    }
    push_wal(repo, 1, 2, 3, recs, 4);
    wk_backup_record b = backup(LSN(2, 40), recs[0].lsn + 40, 1);
    wk_window w;
    wk_window_stop stop;
    walk(repo, &b, 1, NULL, &w, NULL);
    ck_assert_int_eq(w.last_commit, PGT(99));
    wk_window_free(&w);
    wk_repo_free(repo);
    (void)stop;
}
END_TEST

static bool want_any(const wk_walrec_summary *s, void *arg)
{
    (void)arg;
    return s->xacts > 0;
}

static bool match_xid(const wk_walrec_event *e, void *arg)
{
    return e->kind != WK_WALREC_RESTORE_POINT && e->xid == *(uint32_t *)arg;
}

/* Timeline 2 branched off in segment 4; its copy of segment 4 is not archived yet. */
START_TEST(test_walk_across_a_switch)
{
    wk_repo *repo = open_repo();
    push_wal(repo, 1, 2, 4, history, HISTORY_N); /* 2..5 of timeline 1 */
    char text[128];
    wk_lsn branch = history[6].lsn; /* after the abort, at the last commit */
    snprintf(text, sizeof(text), "1\t%X/%X\tno recovery target specified\n",
             (unsigned)(branch >> 32), (unsigned)branch);
    push_history(repo, 2, text);
    ts_wal_record later[] = {
        {TS_WAL_SKIP_TO, 5 * TS_SEG + 3000, 0, 0, NULL, 0},
        {TS_WAL_COMMIT, 0, 300, PGT(50), NULL, 0},
    };
    push_wal(repo, 2, 5, 1, later, 2); /* 5 of timeline 2 */
    wk_backup_record b = backup(LSN(2, 40), history[0].lsn + 40, 1);

    /* To the end of timeline 2: PostgreSQL reads timeline 1's segment 4, which ends for
     * timeline 2 at the branch: recovery would need timeline 2's copy to go on. */
    wk_window w;
    walk(repo, &b, 2, NULL, &w, NULL);
    ck_assert_uint_eq(w.last_segno, 4);
    ck_assert_uint_eq(w.last_tli, 1);
    ck_assert_uint_eq(w.end_lsn, branch);
    ck_assert_str_eq(w.missing, "000000020000000000000004");
    ck_assert_int_eq(w.last_commit,
                     PGT(30)); /* timeline 1's commit after the branch is not on the way */
    wk_window_free(&w);

    /* A target before the branch is reached through timeline 1's copy. */
    uint32_t xid = 102;
    wk_window_search search = {.want = want_any, .match = match_xid, .arg = &xid};
    wk_window_stop stop;
    walk(repo, &b, 2, &search, &w, &stop);
    ck_assert(stop.found);
    ck_assert_uint_eq(stop.event.lsn, history[5].lsn);
    ck_assert_uint_eq(stop.tli, 1);
    wk_window_free(&w);
    /* One after it (timeline 1's, abandoned by timeline 2) is not. */
    xid = 103;
    walk(repo, &b, 2, &search, &w, &stop);
    ck_assert(!stop.found);
    wk_window_free(&w);

    /* Timeline 2's copy of segment 4 arrives: read from there on, and timeline 1's
     * segment 5 never (PostgreSQL does not go back to an older timeline's files). */
    ts_wal_record copy[] = {
        {TS_WAL_COMMIT, 0, 100, PGT(10), NULL, 0},
        {TS_WAL_SKIP_TO, 3 * TS_SEG + 5000, 0, 0, NULL, 0},
        {TS_WAL_COMMIT, 0, 101, PGT(20), NULL, 0},
        {TS_WAL_RESTORE_POINT, 0, 0, PGT(21), "noon", 0},
        {TS_WAL_SKIP_TO, 4 * TS_SEG + 5000, 0, 0, NULL, 0},
        {TS_WAL_ABORT, 0, 102, PGT(30), NULL, 0},
        {TS_WAL_COMMIT, 0, 400, PGT(45), NULL, 0}, /* timeline 2's, after the branch */
    };
    uint8_t *wal = ts_wal_build(2, 2, 3, copy, sizeof(copy) / sizeof(copy[0]));
    char path[512];
    ts_wal_write_segment(wal_dir, wal, 2, 2, 2, path);
    ts_push_file(repo, path);
    free(wal);
    walk(repo, &b, 2, NULL, &w, NULL);
    ck_assert_uint_eq(w.last_segno, 5);
    ck_assert_uint_eq(w.last_tli, 2);
    ck_assert_int_eq(w.last_commit, PGT(50));
    wk_window_free(&w);
    /* Along timeline 1 alone, its own segment 5 counts. */
    walk(repo, &b, 1, NULL, &w, NULL);
    ck_assert_uint_eq(w.last_segno, 5);
    ck_assert_uint_eq(w.last_tli, 1);
    ck_assert_int_eq(w.last_commit, PGT(40));
    wk_window_free(&w);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_path_refusals)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    push_wal(repo, 1, 2, 1, history, 1);
    wk_backup_record b = backup(LSN(2, 40), LSN(2, 4000), 1);
    wk_window_path path;
    ck_assert_int_eq(wk_window_path_make(repo, &b, 3, TS_SEG, &path, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND); /* no 00000003.history */
    push_history(repo, 2, "1\t0/200100\tbefore the backup ended\n");
    ck_assert_int_eq(wk_window_path_make(repo, &b, 2, TS_SEG, &path, &err), -1);
    ck_assert_msg(strstr(err.message, "before backup \"b\" ended") != NULL, "%s", err.message);
    ck_assert_int_eq(wk_window_path_make(repo, &b, 1, TS_SEG, &path, &err), 0);
    ck_assert_uint_eq(path.count, 1);
    ck_assert_uint_eq(wk_window_path_tli_at(&path, LSN(9, 0)), 1);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_format_time)
{
    char buf[64];
    wk_window_format_time(0, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2000-01-01 00:00:00+00");
    wk_window_format_time(1500000, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2000-01-01 00:00:01.500000+00");
    wk_window_format_time(-1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1999-12-31 23:59:59.999999+00");
}
END_TEST

static Suite *window_suite(void)
{
    Suite *s = suite_create("window");
    TCase *tc = tcase_create("walk");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_walk_from_names);
    tcase_add_test(tc, test_walk_without_index);
    tcase_add_test(tc, test_walk_reads_record_across_segments);
    tcase_add_test(tc, test_walk_across_a_switch);
    tcase_add_test(tc, test_path_refusals);
    tcase_add_test(tc, test_format_time);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(window_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
