/* test_cluster: reading a cluster's identity from a fake data directory: PG_VERSION
 * and the long page header of any valid segment in pg_wal; what is not a data
 * directory (not found) and what cannot be understood (corrupt). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "wal.h"
#include "support.h"

#define SEG ((uint32_t)1 << 20)
#define SYSID UINT64_C(7212345678901234567)

/* ---- helpers ---------------------------------------------------------------------- */

static char tmp_dir[256]; /* made per test, removed afterwards */
static char pgdata[300];  /* tmp_dir/data */
static char wal_dir[320]; /* pgdata/pg_wal */

static void write_in(const char *dir, const char *name, const void *data, size_t len)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ts_write_file(path, data, len);
}

static void setup(void)
{
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk_cluster_XXXXXX");
    snprintf(pgdata, sizeof(pgdata), "%s/data", tmp_dir);
    snprintf(wal_dir, sizeof(wal_dir), "%s/pg_wal", pgdata);
    ck_assert_int_eq(mkdir(pgdata, 0700), 0);
    ck_assert_int_eq(mkdir(wal_dir, 0700), 0);
}

static void teardown(void)
{
    ts_tmpdir_remove(tmp_dir);
}

/* A synthetic segment of seg_size bytes: PostgreSQL 15 long page header, then
 * patterned bytes; written into pg_wal under its WAL name. */
static void make_segment_magic(uint16_t magic, uint32_t tli, uint64_t segno, uint64_t sysid,
                               uint32_t seg_size)
{
    uint8_t *buf = malloc(seg_size);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < seg_size; i++)
        buf[i] = (uint8_t)(i * 31 + 7);
    ts_wal_header(buf, magic, 0x0002, tli, segno * seg_size, sysid, seg_size, 8192);
    char name[WK_WAL_NAME_LEN + 1];
    wk_wal_segment_name(name, tli, segno, seg_size);
    write_in(wal_dir, name, buf, seg_size);
    free(buf);
}

static void make_segment(uint32_t tli, uint64_t segno, uint64_t sysid, uint32_t seg_size)
{
    make_segment_magic(0xD110, tli, segno, sysid, seg_size);
}

static void write_pg_version(const char *text)
{
    write_in(pgdata, "PG_VERSION", text, strlen(text));
}

static void assert_identity_fails(const char *dir, wk_errcode code)
{
    wk_error err = {0};
    wk_repo_meta id;
    ck_assert_int_eq(wk_cluster_read_identity(dir, &id, &err), -1);
    ck_assert_msg(err.code == code, "got %s (%s), want %s", wk_errcode_name(err.code), err.message,
                  wk_errcode_name(code));
    ck_assert_str_ne(err.message, "");
}

/* ---- tests ------------------------------------------------------------------------- */

START_TEST(test_identity)
{
    wk_error err = {0};
    write_pg_version("15\n");
    make_segment(1, 1, SYSID, SEG);
    wk_repo_meta id;
    memset(&id, 0xA5, sizeof(id));
    ck_assert_msg(wk_cluster_read_identity(pgdata, &id, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(id.system_identifier, SYSID);
    ck_assert_uint_eq(id.seg_size, SEG);
    ck_assert_int_eq(id.pg_version, 15);
    /* Other fields zeroed. */
    ck_assert_int_eq(id.format, 0);
    ck_assert(!id.encrypted);
    for (size_t i = 0; i < sizeof(id.key_id); i++)
        ck_assert_int_eq(id.key_id[i], 0);
}
END_TEST

START_TEST(test_identity_other_sizes_and_timelines)
{
    wk_error err = {0};
    write_pg_version("16");
    make_segment(3, 0x25, SYSID + 9, 4 * SEG);
    wk_repo_meta id;
    ck_assert_msg(wk_cluster_read_identity(pgdata, &id, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(id.system_identifier, SYSID + 9);
    ck_assert_uint_eq(id.seg_size, 4 * SEG);
    ck_assert_int_eq(id.pg_version, 16);
}
END_TEST

START_TEST(test_identity_skips_unusable_entries)
{
    wk_error err = {0};
    write_pg_version("15\n");
    /* What else lives in pg_wal: archive_status, a history file, a partial segment with
     * garbage, a short segment, a segment with a bad header, a temp file. */
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/archive_status", wal_dir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    write_in(dir, "000000010000000000000001.done", "", 0);
    write_in(wal_dir, "00000002.history", "1\t0/3000158\tno recovery target specified\n", 41);
    write_in(wal_dir, "000000010000000000000005.partial", "junk", 4);
    write_in(wal_dir, "000000010000000000000003", "short", 5);
    uint8_t junk[WK_WAL_LONG_HEADER_SIZE];
    memset(junk, 0x42, sizeof(junk));
    write_in(wal_dir, "000000010000000000000004", junk, sizeof(junk));
    write_in(wal_dir, "xlogtemp.1234", junk, sizeof(junk));
    make_segment(1, 7, SYSID, SEG);
    wk_repo_meta id;
    ck_assert_msg(wk_cluster_read_identity(pgdata, &id, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(id.system_identifier, SYSID);
    ck_assert_uint_eq(id.seg_size, SEG);
}
END_TEST

START_TEST(test_missing_pg_version)
{
    make_segment(1, 1, SYSID, SEG);
    assert_identity_fails(pgdata, WK_ERR_NOTFOUND);
    /* A folder that does not exist at all. */
    char missing[400];
    snprintf(missing, sizeof(missing), "%s/nowhere", tmp_dir);
    assert_identity_fails(missing, WK_ERR_NOTFOUND);
    /* The hint says what is expected. */
    wk_error err = {0};
    wk_repo_meta id;
    ck_assert_int_eq(wk_cluster_read_identity(missing, &id, &err), -1);
    ck_assert_str_ne(err.hint, "");
}
END_TEST

START_TEST(test_bad_pg_version)
{
    make_segment(1, 1, SYSID, SEG);
    static const char *const bad[] = {"", "\n", "abc\n", "8\n", "100\n", "-15\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_pg_version(bad[i]);
        assert_identity_fails(pgdata, WK_ERR_CORRUPT);
    }
}
END_TEST

START_TEST(test_no_valid_segment)
{
    write_pg_version("15\n");
    /* Empty pg_wal. */
    assert_identity_fails(pgdata, WK_ERR_CORRUPT);
    /* Only things that are not valid segments. */
    write_in(wal_dir, "000000010000000000000003", "short", 5);
    uint8_t junk[WK_WAL_LONG_HEADER_SIZE];
    memset(junk, 0x42, sizeof(junk));
    write_in(wal_dir, "000000010000000000000004", junk, sizeof(junk));
    write_in(wal_dir, "00000002.history", "1\t0/3000158\treason\n", 19);
    write_in(wal_dir, "RECOVERYXLOG", junk, sizeof(junk));
    assert_identity_fails(pgdata, WK_ERR_CORRUPT);
}
END_TEST

START_TEST(test_valid_header_under_wrong_name_ignored)
{
    /* A good header in a file whose name is no segment name does not count. */
    write_pg_version("15\n");
    make_segment(1, 1, SYSID, SEG);
    char from[600], to[600];
    snprintf(from, sizeof(from), "%s/000000010000000000000001", wal_dir);
    snprintf(to, sizeof(to), "%s/000000010000000000000001.partial", wal_dir);
    ck_assert_int_eq(rename(from, to), 0);
    assert_identity_fails(pgdata, WK_ERR_CORRUPT);
}
END_TEST

START_TEST(test_missing_pg_wal)
{
    write_pg_version("15\n");
    ck_assert_int_eq(rmdir(wal_dir), 0);
    wk_error err = {0};
    wk_repo_meta id;
    ck_assert_int_eq(wk_cluster_read_identity(pgdata, &id, &err), -1);
    ck_assert_int_ne(err.code, WK_ERR_NONE);
    ck_assert_str_ne(err.message, "");
}
END_TEST

START_TEST(test_pg_version_same_encoding_as_wal)
{
    /* The identity's pg_version ends up in walkeep.repo; a repository initialised by
     * the first archived segment records wk_wal_header.pg_version, which encodes 9.6 as
     * 906 (wal.h). Reading the data directory must give the same number for the same
     * cluster, else walkeep.repo depends on who initialised it. */
    wk_error err = {0};
    write_pg_version("9.6\n");
    make_segment_magic(0xD093, 1, 1, SYSID, SEG);
    /* Before 10 the WAL folder was called pg_xlog. */
    char xlog_dir[600];
    snprintf(xlog_dir, sizeof(xlog_dir), "%s/pg_xlog", pgdata);
    ck_assert_int_eq(rename(wal_dir, xlog_dir), 0);
    wk_repo_meta id;
    int rc = wk_cluster_read_identity(pgdata, &id, &err);
    teardown(); /* a failing test skips the checked teardown; running it twice is harmless */
    ck_assert_msg(rc == 0, "%s", err.message);
    ck_assert_int_eq(wk_wal_magic_version(0xD093), 906);
    ck_assert_int_eq(id.pg_version, wk_wal_magic_version(0xD093));
}
END_TEST

START_TEST(test_pg_version_matches_wal_for_10_to_17)
{
    static const struct {
        const char *text;
        uint16_t magic;
    } versions[] = {{"10\n", 0xD097}, {"15\n", 0xD110}, {"16\n", 0xD113}, {"17\n", 0xD116}};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        wk_error err = {0};
        char path[600];
        snprintf(path, sizeof(path), "%s/000000010000000000000001", wal_dir);
        unlink(path);
        write_pg_version(versions[i].text);
        make_segment_magic(versions[i].magic, 1, 1, SYSID, SEG);
        wk_repo_meta id;
        ck_assert_msg(wk_cluster_read_identity(pgdata, &id, &err) == 0, "%s", err.message);
        ck_assert_int_eq(id.pg_version, atoi(versions[i].text));
        ck_assert_int_eq(id.pg_version, wk_wal_magic_version(versions[i].magic));
    }
}
END_TEST

static Suite *cluster_suite(void)
{
    Suite *s = suite_create("cluster");

    TCase *tc = tcase_create("identity");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_identity);
    tcase_add_test(tc, test_identity_other_sizes_and_timelines);
    tcase_add_test(tc, test_identity_skips_unusable_entries);
    tcase_add_test(tc, test_missing_pg_version);
    tcase_add_test(tc, test_bad_pg_version);
    tcase_add_test(tc, test_no_valid_segment);
    tcase_add_test(tc, test_valid_header_under_wrong_name_ignored);
    tcase_add_test(tc, test_missing_pg_wal);
    tcase_add_test(tc, test_pg_version_matches_wal_for_10_to_17);
    tcase_add_test(tc, test_pg_version_same_encoding_as_wal);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cluster_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
