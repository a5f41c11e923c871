/* test_storage_posix: the POSIX storage driver — round trips over awkward sizes, atomic puts
 * (abort, no-replace, failures leave no temporary), listing, removal and path checks. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage.h"
#include "storage_posix.h"
#include "support.h"

/* ---- helpers ---------------------------------------------------------------------- */

static char tmp_dir[256];   /* made per test, removed afterwards */
static char repo_dir[300];  /* tmp_dir/repo: the repository root */
static wk_storage *storage; /* opened on repo_dir */

static void setup(void)
{
    wk_error err = {0};
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk_storage_XXXXXX");
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo", tmp_dir);
    ck_assert_int_eq(wk_storage_posix_open(repo_dir, true, &storage, &err), 0);
}

static void teardown(void)
{
    wk_storage_free(storage);
    storage = NULL;
    ts_tmpdir_remove(tmp_dir);
}

static int put_text(const char *path, const char *text, int flags, wk_error *err)
{
    return ts_storage_put(storage, path, text, strlen(text), 0, flags, err);
}

/* Reads the object at path into a malloc'd, NUL-terminated buffer. */
static int get_bytes(wk_storage *st, const char *path, unsigned char **out, size_t *len,
                     wk_error *err)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    wk_stage *sink = wk_stage_memory_new(16u << 20, &buf, &n, err);
    ck_assert_ptr_nonnull(sink);
    int rc = wk_storage_get(st, path, sink, err);
    if (rc == 0)
        rc = wk_stage_finish(sink, err);
    wk_stage_free(sink);
    if (rc == 0) {
        *out = buf;
        *len = n;
    }
    return rc;
}

static void assert_text(const char *path, const char *expected)
{
    wk_error err = {0};
    unsigned char *buf = NULL;
    size_t len = 0;
    ck_assert_msg(get_bytes(storage, path, &buf, &len, &err) == 0, "get %s: %s", path, err.message);
    ck_assert_uint_eq(len, strlen(expected));
    ck_assert_str_eq((char *)buf, expected);
    free(buf);
}

/* Entries of a real folder other than "." and ".."; *temps counts names with ".tmp.". */
static int count_entries(const char *dir, int *temps)
{
    DIR *d = opendir(dir);
    int n = 0;
    ck_assert_msg(d != NULL, "opendir %s: %s", dir, strerror(errno));
    if (temps != NULL)
        *temps = 0;
    for (struct dirent *de = readdir(d); de != NULL; de = readdir(d)) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        n++;
        if (temps != NULL && strstr(de->d_name, ".tmp.") != NULL)
            (*temps)++;
    }
    closedir(d);
    return n;
}

static void repo_file(char *buf, size_t size, const char *rel)
{
    snprintf(buf, size, "%s/%s", repo_dir, rel);
}

static bool repo_exists(const char *rel)
{
    char path[1024];
    struct stat sb;
    repo_file(path, sizeof(path), rel);
    return lstat(path, &sb) == 0;
}

/* ---- round trips ------------------------------------------------------------------ */

static const size_t round_trip_sizes[] = {
    0, 1, WK_STREAM_BUFSIZE - 1, WK_STREAM_BUFSIZE, WK_STREAM_BUFSIZE + 1, 3u << 20,
};

START_TEST(test_round_trip)
{
    size_t len = round_trip_sizes[_i];
    /* One write, then odd-sized chunks: both must give back the same bytes. */
    static const size_t chunks[] = {0, 77777};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        wk_error err = {0};
        unsigned char *data = ts_pattern(len, (unsigned)(_i * 10 + c));
        unsigned char *got = NULL;
        size_t got_len = 0;
        wk_storage_info sb = {0};
        ck_assert_msg(ts_storage_put(storage, "wal/obj", data, len, chunks[c], 0, &err) == 0, "%s",
                      err.message);
        ck_assert_int_eq(get_bytes(storage, "wal/obj", &got, &got_len, &err), 0);
        ck_assert_uint_eq(got_len, len);
        ck_assert(len == 0 || memcmp(got, data, len) == 0);
        ck_assert_int_eq(wk_storage_stat(storage, "wal/obj", &sb, &err), 0);
        ck_assert_uint_eq(sb.size, len);
        free(got);
        free(data);
    }
}
END_TEST

START_TEST(test_nested_folders_and_modes)
{
    wk_error err = {0};
    char path[1024];
    struct stat sb;
    ck_assert_int_eq(put_text("a/b/c/obj", "hello", 0, &err), 0);
    assert_text("a/b/c/obj", "hello");

    static const char *folders[] = {"a", "a/b", "a/b/c"};
    for (size_t i = 0; i < 3; i++) {
        repo_file(path, sizeof(path), folders[i]);
        ck_assert_int_eq(stat(path, &sb), 0);
        ck_assert(S_ISDIR(sb.st_mode));
        ck_assert_int_eq(sb.st_mode & 0777, 0700);
    }
    repo_file(path, sizeof(path), "a/b/c/obj");
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert(S_ISREG(sb.st_mode));
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    ck_assert_int_eq(sb.st_size, 5);

    /* The root made by posix_open(create) is 0700 too; the folder holds nothing else. */
    ck_assert_int_eq(stat(repo_dir, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0700);
    repo_file(path, sizeof(path), "a/b/c");
    ck_assert_int_eq(count_entries(path, NULL), 1);

    /* An object directly in the root. */
    ck_assert_int_eq(put_text("top", "root object", 0, &err), 0);
    assert_text("top", "root object");
}
END_TEST

/* ---- atomicity -------------------------------------------------------------------- */

START_TEST(test_abort_leaves_nothing)
{
    wk_error err = {0};
    wk_stage *sink = NULL;
    char dir[1024];
    int temps = 0;
    unsigned char *data = ts_pattern(100000, 7);

    ck_assert_int_eq(wk_storage_put_open(storage, "wal/seg", 0, &sink, &err), 0);
    ck_assert_int_eq(wk_stage_write(sink, data, 100000, &err), 0);

    /* While writing: one temporary, hidden from list, nothing at the final name. */
    repo_file(dir, sizeof(dir), "wal");
    ck_assert_int_eq(count_entries(dir, &temps), 1);
    ck_assert_int_eq(temps, 1);
    ck_assert(!repo_exists("wal/seg"));

    wk_stage_free(sink);
    ck_assert_int_eq(count_entries(dir, NULL), 0);
    ck_assert(!repo_exists("wal/seg"));
    wk_storage_info sb;
    ck_assert_int_eq(wk_storage_stat(storage, "wal/seg", &sb, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);

    /* Aborting a replacement keeps the old object. */
    ck_assert_int_eq(put_text("wal/seg", "old", 0, &err), 0);
    ck_assert_int_eq(wk_storage_put_open(storage, "wal/seg", 0, &sink, &err), 0);
    ck_assert_int_eq(wk_stage_write(sink, data, 100000, &err), 0);
    wk_stage_free(sink);
    assert_text("wal/seg", "old");
    ck_assert_int_eq(count_entries(dir, NULL), 1);
    free(data);
}
END_TEST

START_TEST(test_noreplace)
{
    wk_error err = {0};
    char dir[1024];
    int temps = 0;

    ck_assert_int_eq(put_text("wal/x", "old", WK_PUT_NOREPLACE, &err), 0);
    assert_text("wal/x", "old");

    ck_assert_int_eq(put_text("wal/x", "new", WK_PUT_NOREPLACE, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    ck_assert_msg(strstr(err.message, "\"wal/x\" already exists") != NULL, "%s", err.message);
    assert_text("wal/x", "old");
    repo_file(dir, sizeof(dir), "wal");
    ck_assert_int_eq(count_entries(dir, &temps), 1);
    ck_assert_int_eq(temps, 0);

    /* A plain put replaces. */
    ck_assert_int_eq(put_text("wal/x", "newer", 0, &err), 0);
    assert_text("wal/x", "newer");
    ck_assert_int_eq(count_entries(dir, NULL), 1);
}
END_TEST

START_TEST(test_finish_failure_removes_temp)
{
    wk_error err = {0};
    char path[1024];
    int temps = 0;

    /* A non-empty folder where the object should go: the rename must fail. */
    repo_file(path, sizeof(path), "blocker");
    ck_assert_int_eq(mkdir(path, 0700), 0);
    repo_file(path, sizeof(path), "blocker/inside");
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);

    ck_assert_int_eq(put_text("blocker", "data", 0, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_msg(strstr(err.message, "\"blocker\"") != NULL, "%s", err.message);
    ck_assert_int_eq(count_entries(repo_dir, &temps), 1);
    ck_assert_int_eq(temps, 0);

    ck_assert_int_eq(put_text("blocker", "data", WK_PUT_NOREPLACE, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    ck_assert_int_eq(count_entries(repo_dir, &temps), 1);
    ck_assert_int_eq(temps, 0);

    /* A file where a folder should be: put_open fails before anything is written. */
    ck_assert_int_eq(put_text("file", "x", 0, &err), 0);
    ck_assert_int_eq(put_text("file/below", "x", 0, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
}
END_TEST

START_TEST(test_stage_misuse)
{
    wk_error err = {0};
    wk_stage *sink = NULL;
    ck_assert_int_eq(wk_storage_put_open(storage, "obj", 0, &sink, &err), 0);
    ck_assert_int_eq(wk_stage_write(sink, "abc", 3, &err), 0);
    ck_assert_int_eq(wk_stage_finish(sink, &err), 0);
    ck_assert_int_eq(wk_stage_finish(sink, &err), 0); /* idempotent */
    ck_assert_int_eq(wk_stage_write(sink, "d", 1, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_INTERNAL);
    wk_stage_free(sink);
    assert_text("obj", "abc");
    ck_assert_int_eq(put_text("obj2", "x", 0x80, &err), -1);
    wk_stage_free(NULL);
    wk_storage_free(NULL);
}
END_TEST

/* ---- get / stat ------------------------------------------------------------------- */

START_TEST(test_missing)
{
    wk_error err = {0};
    wk_storage_info sb = {0};
    unsigned char *buf = NULL;
    size_t len = 0;
    static const char *missing[] = {"nothing", "wal/nothing", "a/b/c/d"};
    ck_assert_int_eq(put_text("plain", "x", 0, &err), 0);

    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(get_bytes(storage, missing[i], &buf, &len, &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
        ck_assert_int_eq(wk_storage_stat(storage, missing[i], &sb, &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    }
    /* Below a file (ENOTDIR) is certainly absent too. */
    ck_assert_int_eq(get_bytes(storage, "plain/x", &buf, &len, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    ck_assert_int_eq(wk_storage_stat(storage, "plain/x", &sb, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);

    /* A folder is not an object. */
    ck_assert_int_eq(put_text("dir/obj", "x", 0, &err), 0);
    ck_assert_int_eq(get_bytes(storage, "dir", &buf, &len, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_int_eq(wk_storage_stat(storage, "dir", &sb, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
}
END_TEST

/* ---- list ------------------------------------------------------------------------- */

typedef struct listed {
    int count;
    int stop_after; /* 0: never stop */
    char names[16][64];
    bool is_dir[16];
    uint64_t size[16];
} listed;

static int collect(const char *name, bool is_dir, uint64_t size, void *arg)
{
    listed *l = arg;
    ck_assert_int_lt(l->count, 16);
    snprintf(l->names[l->count], sizeof(l->names[0]), "%s", name);
    l->is_dir[l->count] = is_dir;
    l->size[l->count] = size;
    l->count++;
    return l->stop_after > 0 && l->count >= l->stop_after;
}

static int find_listed(const listed *l, const char *name)
{
    for (int i = 0; i < l->count; i++) {
        if (strcmp(l->names[i], name) == 0)
            return i;
    }
    return -1;
}

START_TEST(test_list)
{
    wk_error err = {0};
    char path[1024];
    listed l;

    ck_assert_int_eq(put_text("wal/a1", "1", 0, &err), 0);
    ck_assert_int_eq(put_text("wal/a2", "22", 0, &err), 0);
    ck_assert_int_eq(put_text("wal/b1", "333", 0, &err), 0);
    ck_assert_int_eq(put_text("wal/a3dir/inner", "x", 0, &err), 0);
    /* A leftover temporary and a hidden file, made by hand: never listed. */
    static const char *hidden[] = {"wal/.x.tmp.1", "wal/.a1.tmp.99.3", "wal/.hidden"};
    for (size_t i = 0; i < 3; i++) {
        repo_file(path, sizeof(path), hidden[i]);
        int fd = open(path, O_WRONLY | O_CREAT, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);
    }

    memset(&l, 0, sizeof(l));
    ck_assert_int_eq(wk_storage_list(storage, "wal", "a", collect, &l, &err), 0);
    ck_assert_int_eq(l.count, 3);
    int i = find_listed(&l, "a1");
    ck_assert_int_ge(i, 0);
    ck_assert(!l.is_dir[i]);
    ck_assert_uint_eq(l.size[i], 1);
    i = find_listed(&l, "a2");
    ck_assert_int_ge(i, 0);
    ck_assert_uint_eq(l.size[i], 2);
    i = find_listed(&l, "a3dir");
    ck_assert_int_ge(i, 0);
    ck_assert(l.is_dir[i]);

    memset(&l, 0, sizeof(l));
    ck_assert_int_eq(wk_storage_list(storage, "wal", "", collect, &l, &err), 0);
    ck_assert_int_eq(l.count, 4);
    ck_assert_int_ge(find_listed(&l, "b1"), 0);
    ck_assert_int_eq(find_listed(&l, ".x.tmp.1"), -1);

    memset(&l, 0, sizeof(l));
    ck_assert_int_eq(wk_storage_list(storage, "wal", NULL, collect, &l, &err), 0);
    ck_assert_int_eq(l.count, 4);

    /* The root. */
    memset(&l, 0, sizeof(l));
    ck_assert_int_eq(wk_storage_list(storage, "", "", collect, &l, &err), 0);
    ck_assert_int_eq(l.count, 1);
    ck_assert_str_eq(l.names[0], "wal");
    ck_assert(l.is_dir[0]);

    /* Nested folder, and a prefix nothing matches. */
    memset(&l, 0, sizeof(l));
    ck_assert_int_eq(wk_storage_list(storage, "wal/a3dir", "in", collect, &l, &err), 0);
    ck_assert_int_eq(l.count, 1);
    memset(&l, 0, sizeof(l));
    ck_assert_int_eq(wk_storage_list(storage, "wal", "zz", collect, &l, &err), 0);
    ck_assert_int_eq(l.count, 0);

    /* A missing folder, or one below a file, lists nothing. */
    memset(&l, 0, sizeof(l));
    ck_assert_int_eq(wk_storage_list(storage, "nope", "", collect, &l, &err), 0);
    ck_assert_int_eq(wk_storage_list(storage, "nope/deeper", "", collect, &l, &err), 0);
    ck_assert_int_eq(wk_storage_list(storage, "wal/a1/x", "", collect, &l, &err), 0);
    ck_assert_int_eq(l.count, 0);

    /* The callback stops the listing, which still succeeds. */
    memset(&l, 0, sizeof(l));
    l.stop_after = 1;
    ck_assert_int_eq(wk_storage_list(storage, "wal", "", collect, &l, &err), 0);
    ck_assert_int_eq(l.count, 1);

    /* Folders are checked like paths. */
    ck_assert_int_eq(wk_storage_list(storage, "../x", "", collect, &l, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    ck_assert_int_eq(wk_storage_list(storage, "wal/", "", collect, &l, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
}
END_TEST

/* ---- remove ----------------------------------------------------------------------- */

START_TEST(test_remove)
{
    wk_error err = {0};
    wk_storage_info sb;
    ck_assert_int_eq(wk_storage_remove(storage, "missing", &err), 0);
    ck_assert_int_eq(wk_storage_remove(storage, "missing/deep/obj", &err), 0);

    ck_assert_int_eq(put_text("wal/obj", "x", 0, &err), 0);
    ck_assert_int_eq(wk_storage_remove(storage, "wal/obj", &err), 0);
    ck_assert_int_eq(wk_storage_stat(storage, "wal/obj", &sb, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    ck_assert_int_eq(wk_storage_remove(storage, "wal/obj", &err), 0);

    /* An empty folder may be removed; a full one may not. */
    ck_assert_int_eq(put_text("full/obj", "x", 0, &err), 0);
    ck_assert_int_eq(wk_storage_remove(storage, "full", &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_int_eq(wk_storage_remove(storage, "wal", &err), 0);
    ck_assert(!repo_exists("wal"));

    ck_assert_int_eq(wk_storage_remove(storage, "a/../b", &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
}
END_TEST

/* ---- paths ------------------------------------------------------------------------ */

START_TEST(test_invalid_paths)
{
    static const char *bad[] = {"",      "/a",   "a/../b", "a//b", "a/",    ".",
                                "..",    "a\nb", "./a",    "a/.",  "a/..",  "//",
                                "a\x7f", "\x01", "..a",    ".x/y", "a/.tmp"};
    char long_path[1100];
    wk_error err = {0};
    wk_stage *sink = NULL;
    wk_storage_info sb;
    unsigned char *buf = NULL;
    size_t len = 0;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wk_error_clear(&err);
        ck_assert_int_eq(wk_storage_check_path(bad[i], &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_USAGE);
        ck_assert_msg(strstr(err.message, "invalid repository path") != NULL, "%s", err.message);
        ck_assert_ptr_null(strchr(err.message, '\n'));
        ck_assert_int_eq(wk_storage_put_open(storage, bad[i], 0, &sink, &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_USAGE);
        ck_assert_int_eq(get_bytes(storage, bad[i], &buf, &len, &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_USAGE);
        ck_assert_int_eq(wk_storage_stat(storage, bad[i], &sb, &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_USAGE);
        ck_assert_int_eq(wk_storage_remove(storage, bad[i], &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_USAGE);
    }
    ck_assert_ptr_null(sink);

    static const char *good[] = {"a", "a/b", "wal/000000010000000000000001", "a..b", "a.", "x/y."};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(wk_storage_check_path(good[i], &err) == 0, "%s: %s", good[i], err.message);

    /* 1023 bytes is the longest path. */
    for (size_t i = 0; i < 1023; i++)
        long_path[i] = (i % 100 == 99) ? '/' : 'x';
    long_path[1023] = '\0';
    ck_assert_int_eq(wk_storage_check_path(long_path, &err), 0);
    long_path[1023] = 'x';
    long_path[1024] = '\0';
    ck_assert_int_eq(wk_storage_check_path(long_path, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    ck_assert_uint_lt(strlen(err.message), 300);
}
END_TEST

/* ---- open ------------------------------------------------------------------------- */

START_TEST(test_open)
{
    wk_error err = {0};
    wk_storage *st = NULL;
    char path[1024];
    struct stat sb;

    snprintf(path, sizeof(path), "%s/missing", tmp_dir);
    ck_assert_int_eq(wk_storage_posix_open(path, false, &st, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    ck_assert_msg(strstr(err.message, "does not exist") != NULL, "%s", err.message);
    ck_assert_ptr_null(st);

    snprintf(path, sizeof(path), "%s/new/deep/repo/", tmp_dir);
    ck_assert_int_eq(wk_storage_posix_open(path, true, &st, &err), 0);
    ck_assert_int_eq(ts_storage_put(st, "obj", "x", 1, 0, 0, &err), 0);
    wk_storage_free(st);
    st = NULL;
    snprintf(path, sizeof(path), "%s/new/deep", tmp_dir);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0700);

    /* Opening an existing repository without create. */
    snprintf(path, sizeof(path), "%s/new/deep/repo", tmp_dir);
    ck_assert_int_eq(wk_storage_posix_open(path, false, &st, &err), 0);
    unsigned char *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(get_bytes(st, "obj", &buf, &len, &err), 0);
    ck_assert_uint_eq(len, 1);
    free(buf);
    wk_storage_free(st);
    st = NULL;

    /* A file is not a repository folder. */
    snprintf(path, sizeof(path), "%s/new/deep/repo/obj", tmp_dir);
    ck_assert_int_eq(wk_storage_posix_open(path, false, &st, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_int_eq(wk_storage_posix_open(path, true, &st, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_int_eq(wk_storage_posix_open("", true, &st, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    ck_assert_ptr_null(st);
}
END_TEST

/* ---- a full disk ------------------------------------------------------------------ */

START_TEST(test_disk_full)
{
    char mnt[300];
    wk_error err = {0};
    wk_error small_err = {0};
    wk_storage *st = NULL;
    size_t big = 2u << 20;
    unsigned char *data = ts_pattern(big, 3);
    unsigned char *got = NULL;
    size_t got_len = 0;
    int put_rc = 0, small_rc = -1, get_rc = -1, open_rc, entries = -1, temps = -1;

    snprintf(mnt, sizeof(mnt), "%s/tmpfs", tmp_dir);
    ck_assert_int_eq(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m,mode=0700") != 0) {
        printf("test_disk_full: skipped, could not mount a tmpfs: %s\n", strerror(errno));
        free(data);
        return;
    }
    /* Everything is recorded first and asserted after the umount, so a failure never
     * leaves the mount behind. */
    open_rc = wk_storage_posix_open(mnt, false, &st, &err);
    if (open_rc == 0) {
        char dir[400];
        put_rc = ts_storage_put(st, "big/obj", data, big, WK_STREAM_BUFSIZE, 0, &err);
        snprintf(dir, sizeof(dir), "%s/big", mnt);
        entries = count_entries(dir, &temps);
        small_rc = ts_storage_put(st, "big/obj", "small", 5, 0, 0, &small_err);
        get_rc = get_bytes(st, "big/obj", &got, &got_len, &small_err);
    }
    wk_storage_free(st);
    ck_assert_int_eq(umount2(mnt, 0), 0);

    ck_assert_int_eq(open_rc, 0);
    ck_assert_int_eq(put_rc, -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_int_eq(err.sys_errno, ENOSPC);
    ck_assert_msg(strstr(err.message, "No space left") != NULL, "%s", err.message);
    ck_assert_msg(strstr(err.message, "\"big/obj\"") != NULL, "%s", err.message);
    ck_assert_int_eq(entries, 0);
    ck_assert_int_eq(temps, 0);
    ck_assert_msg(small_rc == 0, "%s", small_err.message);
    ck_assert_int_eq(get_rc, 0);
    ck_assert_uint_eq(got_len, 5);
    ck_assert_str_eq((char *)got, "small");
    free(got);
    free(data);
}
END_TEST

START_TEST(test_retarget)
{
    wk_error err = {0};
    wk_stage *sink = NULL;
    ck_assert(wk_storage_can_retarget(storage));
    ck_assert_int_eq(wk_storage_put_open(storage, "d/provisional", WK_PUT_NOREPLACE, &sink, &err),
                     0);
    ck_assert_int_eq(wk_stage_write(sink, "named late", 10, &err), 0);
    /* Another folder is refused and the sink stays usable. */
    ck_assert_int_eq(wk_storage_retarget(storage, sink, "e/final", &err), -1);
    ck_assert_int_eq(wk_storage_retarget(storage, sink, "d/../x", &err), -1);
    ck_assert_int_eq(wk_storage_retarget(storage, sink, "d/final", &err), 0);
    ck_assert_int_eq(wk_stage_finish(sink, &err), 0);
    wk_stage_free(sink);
    assert_text("d/final", "named late");
    ck_assert(!repo_exists("d/provisional"));
    char dir[512];
    repo_file(dir, sizeof(dir), "d");
    int temps = 0;
    ck_assert_int_eq(count_entries(dir, &temps), 1);
    ck_assert_int_eq(temps, 0);

    /* No-replace still holds for the new name; nothing is left behind. */
    ck_assert_int_eq(wk_storage_put_open(storage, "d/other", WK_PUT_NOREPLACE, &sink, &err), 0);
    ck_assert_int_eq(wk_stage_write(sink, "second", 6, &err), 0);
    ck_assert_int_eq(wk_storage_retarget(storage, sink, "d/final", &err), 0);
    ck_assert_int_eq(wk_stage_finish(sink, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    wk_stage_free(sink);
    assert_text("d/final", "named late");
    ck_assert_int_eq(count_entries(dir, &temps), 1);
    ck_assert_int_eq(temps, 0);
}
END_TEST

START_TEST(test_put_bytes)
{
    wk_error err = {0};
    ck_assert_int_eq(wk_storage_put_bytes(storage, "small/obj", WK_PUT_NOREPLACE, "hello", 5, &err),
                     0);
    assert_text("small/obj", "hello");
    ck_assert_int_eq(wk_storage_put_bytes(storage, "small/obj", WK_PUT_NOREPLACE, "other", 5, &err),
                     -1);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    assert_text("small/obj", "hello");
    ck_assert_int_eq(wk_storage_put_bytes(storage, "small/obj", 0, "", 0, &err), 0);
    assert_text("small/obj", "");
    ck_assert_int_eq(wk_storage_put_bytes(storage, "../escape", 0, "x", 1, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
}
END_TEST

START_TEST(test_clean_temporaries)
{
    wk_error err = {0};
    char path[600];
    uint64_t removed = 99;
    /* A stale temporary (its writer gone for two hours), a fresh one (a live writer),
     * a hidden file that is no temporary of ours, and an object. */
    ck_assert_int_eq(put_text("d/obj", "kept", 0, &err), 0);
    static const char *const names[] = {".obj.tmp.1.1", ".obj.tmp.2.1", ".hidden"};
    for (size_t i = 0; i < 3; i++) {
        repo_file(path, sizeof(path), "d");
        size_t n = strlen(path);
        snprintf(path + n, sizeof(path) - n, "/%s", names[i]);
        ts_write_file(path, "x", 1);
        if (i == 0) {
            struct timespec old[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
            ck_assert_int_eq(utimensat(AT_FDCWD, path, old, 0), 0);
        }
    }
    ck_assert_int_eq(wk_storage_clean_temporaries(storage, "d", 3600, &removed, &err), 0);
    ck_assert_uint_eq(removed, 1);
    repo_file(path, sizeof(path), "d/.obj.tmp.1.1");
    ck_assert(access(path, F_OK) != 0);
    repo_file(path, sizeof(path), "d/.obj.tmp.2.1");
    ck_assert(access(path, F_OK) == 0);
    repo_file(path, sizeof(path), "d/.hidden");
    ck_assert(access(path, F_OK) == 0);
    assert_text("d/obj", "kept");
    /* Age 0 takes the fresh one too; a missing folder is nothing to do. */
    ck_assert_int_eq(wk_storage_clean_temporaries(storage, "d", 0, &removed, &err), 0);
    ck_assert_uint_eq(removed, 1);
    ck_assert_int_eq(wk_storage_clean_temporaries(storage, "nowhere", 0, &removed, &err), 0);
    ck_assert_uint_eq(removed, 0);
    ck_assert_int_eq(wk_storage_clean_temporaries(storage, "../x", 0, NULL, &err), -1);
}
END_TEST

START_TEST(test_clean_dead_writers)
{
    wk_error err = {0};
    char path[600];
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    const char *names[] = {".000000010000000000000005.tmp.%ld.0", /* dead writer */
                           ".000000010000000000000006.tmp.%ld.3", /* live writer (us) */
                           "000000010000000000000007",            /* not a temporary */
                           ".x.tmp.notapid.1"};
    long pids[] = {(long)child, (long)getpid(), 0, 0};
    for (size_t i = 0; i < 4; i++) {
        char name[128];
        snprintf(name, sizeof(name), names[i], pids[i]);
        snprintf(path, sizeof(path), "%s/%s", repo_dir, name);
        ts_write_file(path, "x", 1);
    }
    uint64_t removed = 0;
    ck_assert_int_eq(wk_storage_posix_clean_dead_writers(storage, "", &removed, &err), 0);
    ck_assert_uint_eq(removed, 1);
    snprintf(path, sizeof(path), "%s/.000000010000000000000005.tmp.%ld.0", repo_dir, (long)child);
    ck_assert(!ts_path_exists(path));
    ck_assert_int_eq(ts_count_entries(repo_dir), 3);
    /* A missing folder has nothing to clean. */
    ck_assert_int_eq(wk_storage_posix_clean_dead_writers(storage, "missing", &removed, &err), 0);
}
END_TEST

static Suite *storage_suite(void)
{
    Suite *s = suite_create("storage_posix");
    TCase *tc = tcase_create("posix");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_round_trip, 0,
                        (int)(sizeof(round_trip_sizes) / sizeof(round_trip_sizes[0])));
    tcase_add_test(tc, test_nested_folders_and_modes);
    tcase_add_test(tc, test_abort_leaves_nothing);
    tcase_add_test(tc, test_noreplace);
    tcase_add_test(tc, test_finish_failure_removes_temp);
    tcase_add_test(tc, test_stage_misuse);
    tcase_add_test(tc, test_missing);
    tcase_add_test(tc, test_list);
    tcase_add_test(tc, test_remove);
    tcase_add_test(tc, test_invalid_paths);
    tcase_add_test(tc, test_open);
    tcase_add_test(tc, test_disk_full);
    tcase_add_test(tc, test_retarget);
    tcase_add_test(tc, test_put_bytes);
    tcase_add_test(tc, test_clean_temporaries);
    tcase_add_test(tc, test_clean_dead_writers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    umask(022);
    SRunner *sr = srunner_create(storage_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
