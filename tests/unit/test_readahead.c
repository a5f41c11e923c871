/* test_readahead: the data-directory read-ahead of a base backup — what it reads (and
 * what BASE_BACKUP leaves out), that it stays within its window of the server, and stops. */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "readahead.h"
#include "support.h"

#define MIB (1024 * 1024)

static char tmp_dir[256];

static void setup(void)
{
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk_readahead_XXXXXX");
}

static void teardown(void)
{
    ts_tmpdir_remove(tmp_dir);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Makes tmp_dir/rel (and its folders) holding size patterned bytes. */
static void make_file(const char *rel, size_t size)
{
    char path[512], folder[512];
    snprintf(path, sizeof(path), "%s/%s", tmp_dir, rel);
    for (char *slash = strchr(path + strlen(tmp_dir) + 1, '/'); slash != NULL;
         slash = strchr(slash + 1, '/')) {
        snprintf(folder, sizeof(folder), "%.*s", (int)(slash - path), path);
        mkdir(folder, 0700);
    }
    uint8_t *data = malloc(size + 1);
    ck_assert_ptr_nonnull(data);
    ts_fill_pattern(data, size, (unsigned)size);
    ts_write_file(path, data, size);
    free(data);
}

/* tmp_dir/rel, in a buffer the next call overwrites. */
static char *folder_path(const char *rel)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmp_dir, rel);
    return path;
}

/* Waits (at most 20 s) until the read-ahead has read expected bytes, then a little
 * longer, and returns what it has read by then: more than expected is a failure the
 * caller sees, and a slow machine only makes the wait longer. */
static uint64_t settled_bytes(wk_readahead *ra, uint64_t expected)
{
    for (int i = 0; i < 2000 && wk_readahead_bytes(ra) < expected; i++)
        sleep_ms(10);
    sleep_ms(200);
    return wk_readahead_bytes(ra);
}

static wk_readahead *start(const char *const *folders, size_t count, uint64_t window)
{
    wk_readahead *ra = NULL;
    wk_error err = {0};
    ck_assert_int_eq(wk_readahead_start(folders, count, window, &ra, &err), 0);
    ck_assert_ptr_nonnull(ra);
    return ra;
}

/* ---- tests ------------------------------------------------------------------------ */

/* Every file the server sends is read; what BASE_BACKUP leaves out is not. The sizes
 * are distinct powers-of-ten multiples, so the total says which files were read. */
START_TEST(test_reads_what_the_server_sends)
{
    make_file("data/PG_VERSION", 3);
    make_file("data/global/pg_control", 8192);
    make_file("data/base/5/16384", 10000);     /* a table */
    make_file("data/base/5/16384_fsm", 24576); /* its free space map */
    make_file("data/base/5/16385", 7000000);   /* an unlogged table's main fork... */
    make_file("data/base/5/16385_init", 0);    /* ...which has an init fork */
    make_file("data/base/5/16385_vm", 900000); /* ...and its visibility map */
    make_file("data/base/5/t3_16390", 600000); /* a temporary relation */
    make_file("data/base/pgsql_tmp/pgsql_tmp12.0", 500000);
    make_file("data/pg_wal/000000010000000000000001", 4000000);
    make_file("data/pg_stat_tmp/global.stat", 300000);
    make_file("data/pg_replslot/s/state", 200000);
    make_file("data/pg_subtrans/0000", 80000);
    make_file("tblspc/PG_15_202209061/5/16400", 1000000);
    make_file("tblspc/lost+found/junk", 3000); /* not a version folder: not sent */
    make_file("tblspc/note.txt", 40000);
    ck_assert_int_eq(symlink("/etc", folder_path("data/pg_tblspc")), 0);

    char tablespace[512], data[512];
    snprintf(tablespace, sizeof(tablespace), "%s", folder_path("tblspc"));
    snprintf(data, sizeof(data), "%s", folder_path("data"));
    const char *folders[] = {tablespace, data};
    wk_readahead *ra = start(folders, 2, UINT64_MAX / 2);
    wk_readahead_progress(ra, 0);
    uint64_t expected = 1000000 + 3 + 8192 + 10000 + 24576;
    ck_assert_uint_eq(settled_bytes(ra, expected), expected);
    wk_readahead_stop(ra);
}
END_TEST

/* With the server at 0, only one window's worth is read; as it moves on, the rest. */
START_TEST(test_stays_within_the_window)
{
    make_file("data/base/1/16384", 8 * MIB);
    const char *folders[] = {folder_path("data")};
    wk_readahead *ra = start(folders, 1, 2 * MIB);
    /* The first MiB ends 512 bytes (the file's tar header) past the folders' headers:
     * within 2 MiB; the second would not be. */
    ck_assert_uint_eq(settled_bytes(ra, MIB), MIB);
    /* Once held back, it waits until it may read half a window more (8 MiB for larger
     * windows), then reads up to the window's end: 2 MiB past the server, in whole
     * reads. */
    wk_readahead_progress(ra, MIB); /* half a window more would be 1 MiB + 1536 */
    ck_assert_uint_eq(settled_bytes(ra, 0), MIB);
    wk_readahead_progress(ra, 3 * MIB);
    ck_assert_uint_eq(settled_bytes(ra, 4 * MIB), 4 * MIB);
    wk_readahead_progress(ra, 16 * MIB);
    ck_assert_uint_eq(settled_bytes(ra, 8 * MIB), 8 * MIB);
    wk_readahead_stop(ra);
}
END_TEST

/* Stopping while the thread waits for the server returns (the test's timeout fails a
 * hang), and so does stopping before anything was read. */
START_TEST(test_stops_while_waiting)
{
    make_file("data/base/1/16384", 4 * MIB);
    const char *folders[] = {folder_path("data")};
    wk_readahead *ra = start(folders, 1, MIB);
    ck_assert_uint_eq(settled_bytes(ra, 0), 0); /* a 1 MiB read would pass the window */
    wk_readahead_stop(ra);
    ra = start(folders, 1, 0);
    wk_readahead_stop(ra);
    wk_readahead_stop(NULL);
}
END_TEST

/* A folder that cannot be read is skipped, not an error. */
START_TEST(test_missing_folders_read_nothing)
{
    make_file("data/x", 1000);
    const char *folders[] = {folder_path("nowhere"), folder_path("data/x")};
    wk_readahead *ra = start(folders, 2, 64 * MIB);
    ck_assert_uint_eq(settled_bytes(ra, 0), 0);
    wk_readahead_stop(ra);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("readahead");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_reads_what_the_server_sends);
    tcase_add_test(tc, test_stays_within_the_window);
    tcase_add_test(tc, test_stops_while_waiting);
    tcase_add_test(tc, test_missing_folders_read_nothing);
    SRunner *sr = srunner_create(s);
    suite_add_tcase(s, tc);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
