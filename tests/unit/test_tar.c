/* test_tar: the tar extraction sink — archives made by GNU tar (ustar, gnu, pax) fed in
 * awkward piece sizes, and hand-built archives for checksums, truncation and unsafe paths. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tar.h"
#include "support.h"

#define TAR_PROGRAM "/usr/bin/tar"

/* ---- helpers ---------------------------------------------------------------------- */

static char tmp_dir[256];  /* made per test, removed afterwards */
static char dest_dir[300]; /* tmp_dir/dest: where archives are extracted */
static bool have_gnu_tar;  /* decided once in main() */

static void setup(void)
{
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk_tar_XXXXXX");
    snprintf(dest_dir, sizeof(dest_dir), "%s/dest", tmp_dir);
    ck_assert_int_eq(mkdir(dest_dir, 0700), 0);
}

static void teardown(void)
{
    chmod(dest_dir, 0700);
    ts_tmpdir_remove(tmp_dir);
}

static void path_in(char *buf, size_t size, const char *dir, const char *rel)
{
    ck_assert_int_lt(snprintf(buf, size, "%s/%s", dir, rel), (int)size);
}

/* Asserts that dest_dir/rel is a regular file, mode 0600, holding exactly data. */
static void assert_file(const char *rel, const void *data, size_t len)
{
    char path[1024];
    struct stat sb;
    size_t got = 0;
    path_in(path, sizeof(path), dest_dir, rel);
    ck_assert_msg(lstat(path, &sb) == 0, "lstat %s: %s", path, strerror(errno));
    ck_assert_msg(S_ISREG(sb.st_mode), "%s is not a regular file", rel);
    ck_assert_int_eq(sb.st_mode & 07777, 0600);
    unsigned char *buf = (unsigned char *)ts_read_file(path, &got);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(got, len);
    ck_assert(len == 0 || memcmp(buf, data, len) == 0);
    free(buf);
}

static void assert_text(const char *rel, const char *text)
{
    assert_file(rel, text, strlen(text));
}

static void assert_dir(const char *rel)
{
    char path[1024];
    struct stat sb;
    path_in(path, sizeof(path), dest_dir, rel);
    ck_assert_msg(lstat(path, &sb) == 0, "lstat %s: %s", path, strerror(errno));
    ck_assert_msg(S_ISDIR(sb.st_mode), "%s is not a folder", rel);
    ck_assert_int_eq(sb.st_mode & 07777, 0700);
}

static void assert_symlink(const char *rel, const char *target)
{
    char path[1024];
    char got[PATH_MAX];
    path_in(path, sizeof(path), dest_dir, rel);
    ssize_t n = readlink(path, got, sizeof(got) - 1);
    ck_assert_msg(n >= 0, "readlink %s: %s", path, strerror(errno));
    got[n] = '\0';
    ck_assert_str_eq(got, target);
}

static int count_entry_n;

static int count_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)sb;
    (void)flag;
    if (ftw->level > 0)
        count_entry_n++;
    return 0;
}

/* Entries below dir, recursively, not following symbolic links. */
static int count_tree(const char *dir)
{
    count_entry_n = 0;
    ck_assert_int_eq(nftw(dir, count_entry, 16, FTW_PHYS), 0);
    return count_entry_n;
}

/* ---- a small ustar writer --------------------------------------------------------- */

typedef struct tarbuf {
    unsigned char *data;
    size_t len, cap;
} tarbuf;

static void tb_append(tarbuf *tb, const void *p, size_t n)
{
    if (tb->len + n > tb->cap) {
        size_t cap = tb->cap == 0 ? 4096 : tb->cap;
        while (cap < tb->len + n)
            cap *= 2;
        tb->data = realloc(tb->data, cap);
        ck_assert_ptr_nonnull(tb->data);
        tb->cap = cap;
    }
    if (n > 0)
        memcpy(tb->data + tb->len, p, n);
    tb->len += n;
}

static void tb_zeros(tarbuf *tb, size_t n)
{
    static const unsigned char zeros[1024];
    while (n > 0) {
        size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
        tb_append(tb, zeros, k);
        n -= k;
    }
}

static void tb_pad(tarbuf *tb)
{
    tb_zeros(tb, (512 - tb->len % 512) % 512);
}

static void tb_free(tarbuf *tb)
{
    free(tb->data);
    memset(tb, 0, sizeof(*tb));
}

/* len-1 octal digits and a NUL, as PostgreSQL writes numbers. */
static void put_octal(unsigned char *field, size_t len, unsigned long long value)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%0*llo", (int)(len - 1), value);
    memcpy(field, tmp, len);
}

/* Sets the checksum field of a finished header (unsigned sum, "%06o\0 "). */
static void set_checksum(unsigned char *h)
{
    unsigned sum = 0;
    memset(h + 148, ' ', 8);
    for (int i = 0; i < 512; i++)
        sum += h[i];
    char tmp[8];
    snprintf(tmp, sizeof(tmp), "%06o", sum);
    memcpy(h + 148, tmp, 7);
    h[155] = ' ';
}

/* A ustar header as PostgreSQL's tarCreateHeader makes it; name is copied raw (at most
 * 100 bytes), link may be NULL. The checksum is set; callers that change fields after
 * this call set_checksum again. */
static void make_header(unsigned char *h, const char *name, char type, unsigned long long size,
                        const char *link)
{
    memset(h, 0, 512);
    size_t n = strlen(name);
    memcpy(h, name, n < 100 ? n : 100);
    put_octal(h + 100, 8, type == '5' ? 0700 : 0600);
    put_octal(h + 108, 8, 1000);
    put_octal(h + 116, 8, 1000);
    put_octal(h + 124, 12, size);
    put_octal(h + 136, 12, 1700000000);
    h[156] = (unsigned char)type;
    if (link != NULL) {
        size_t k = strlen(link);
        memcpy(h + 157, link, k < 100 ? k : 100);
    }
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memcpy(h + 265, "postgres", 8);
    memcpy(h + 297, "postgres", 8);
    set_checksum(h);
}

static void tb_header(tarbuf *tb, const char *name, char type, unsigned long long size,
                      const char *link)
{
    unsigned char h[512];
    make_header(h, name, type, size, link);
    tb_append(tb, h, sizeof(h));
}

static void tb_file(tarbuf *tb, const char *name, const void *data, size_t len)
{
    tb_header(tb, name, '0', len, NULL);
    tb_append(tb, data, len);
    tb_pad(tb);
}

static void tb_text(tarbuf *tb, const char *name, const char *text)
{
    tb_file(tb, name, text, strlen(text));
}

/* An extended header ('L', 'K', 'x', 'g') carrying len bytes of data. */
static void tb_meta(tarbuf *tb, char type, const void *data, size_t len)
{
    tb_header(tb, type == 'L' || type == 'K' ? "././@LongLink" : "PaxHeader/x", type, len, NULL);
    tb_append(tb, data, len);
    tb_pad(tb);
}

/* Appends one pax record "<len> key=value\n" to rec (a NUL-terminated string). */
static void pax_record(char *rec, size_t size, const char *key, const char *value)
{
    size_t body = strlen(key) + strlen(value) + 3; /* ' ', '=', '\n' */
    size_t len = body + 1;
    while (len != body + (size_t)snprintf(NULL, 0, "%zu", len))
        len = body + (size_t)snprintf(NULL, 0, "%zu", len);
    size_t used = strlen(rec);
    ck_assert_int_lt(snprintf(rec + used, size - used, "%zu %s=%s\n", len, key, value),
                     (int)(size - used));
}

static void tb_end(tarbuf *tb)
{
    tb_zeros(tb, 1024);
}

/* ---- driving the stage ------------------------------------------------------------ */

enum { EX_OK, EX_NEW, EX_WRITE, EX_FINISH };

/* Feeds data to a new stage on dest in pieces of `piece` bytes, then finishes; says
 * which step failed (the error is in *err). */
static int extract_to(const char *dest, const void *data, size_t len, size_t piece,
                      const wk_tar_options *options, wk_error *err)
{
    const unsigned char *p = data;
    int rc = EX_NEW;
    wk_stage *stage = wk_tar_extract_new(dest, options, err);
    if (stage == NULL)
        return rc;
    rc = EX_WRITE;
    for (size_t off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        if (wk_stage_write(stage, p + off, n, err) != 0)
            goto out;
    }
    rc = EX_FINISH;
    if (wk_stage_finish(stage, err) != 0)
        goto out;
    rc = EX_OK;
out:
    wk_stage_free(stage);
    return rc;
}

static int extract(const tarbuf *tb, wk_error *err)
{
    return extract_to(dest_dir, tb->data, tb->len, 4096, NULL, err);
}

/* Extraction fails at step `at` with WK_ERR_CORRUPT and a message starting with msg. */
static void assert_corrupt(const tarbuf *tb, int at, const char *msg)
{
    wk_error err = {0};
    int rc = extract(tb, &err);
    ck_assert_msg(rc == at, "failed at step %d, not %d: %s", rc, at, err.message);
    ck_assert_msg(err.code == WK_ERR_CORRUPT, "code %s: %s", wk_errcode_name(err.code),
                  err.message);
    ck_assert_msg(strncmp(err.message, msg, strlen(msg)) == 0, "message \"%s\", wanted \"%s\"",
                  err.message, msg);
}

/* ---- archives made by GNU tar ----------------------------------------------------- */

static const char *const tar_formats[] = {"ustar", "gnu", "pax"};
static const size_t piece_sizes[] = {1, 511, 512, 513, 100000};

#define BIG_SIZE ((1u << 20) + 1)
#define LONG_COMPONENT                                                                             \
    "a_file_name_well_over_one_hundred_characters_long_which_needs_a_gnu_long_name_or_pax_"        \
    "header_0123456789_abcdefghijklmnopqrstuvwxyz_end"
#define LONG_TARGET                                                                                \
    "/nonexistent/tablespace/location/that/is/longer/than/one/hundred/characters/so/it/"           \
    "needs/a/long/link/entry/0123456789"
#define DEEP_PATH                                                                                  \
    "deep/d0123456789/d0123456789/d0123456789/d0123456789/d0123456789/d0123456789/"                \
    "d0123456789/d0123456789/d0123456789/d0123456789/file.txt"

static void make_source_tree(const char *src, bool long_names)
{
    char path[1024];
    static const size_t sizes[] = {511, 512, 513};
    ck_assert_int_eq(mkdir(src, 0755), 0);
    path_in(path, sizeof(path), src, "a");
    ck_assert_int_eq(mkdir(path, 0755), 0);
    path_in(path, sizeof(path), src, "a/b");
    ck_assert_int_eq(mkdir(path, 0750), 0);
    path_in(path, sizeof(path), src, "a/empty_dir");
    ck_assert_int_eq(mkdir(path, 0755), 0);
    path_in(path, sizeof(path), src, "empty");
    ts_write_file(path, "", 0);
    path_in(path, sizeof(path), src, "a/hello.txt");
    ts_write_file(path, "hello\n", 6);
    struct timespec times[2] = {{0, UTIME_OMIT}, {1600000000, 0}};
    ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
    unsigned char *big = ts_pattern(BIG_SIZE, 7);
    path_in(path, sizeof(path), src, "a/b/big.bin");
    ts_write_file(path, big, BIG_SIZE);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char name[64];
        snprintf(name, sizeof(name), "a/b/%zu.bin", sizes[i]);
        path_in(path, sizeof(path), src, name);
        ts_write_file(path, big + i, sizes[i]);
    }
    free(big);
    /* A path longer than 100 bytes made of short components (ustar: prefix field). */
    for (const char *slash = strchr(DEEP_PATH, '/'); slash != NULL;
         slash = strchr(slash + 1, '/')) {
        char dir[256];
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - DEEP_PATH), DEEP_PATH);
        path_in(path, sizeof(path), src, dir);
        ck_assert_int_eq(mkdir(path, 0755), 0);
    }
    path_in(path, sizeof(path), src, DEEP_PATH);
    ts_write_file(path, "deep", 4);
    /* A dangling absolute link, as for a tablespace, and a relative one. */
    path_in(path, sizeof(path), src, "tblspc_link");
    ck_assert_int_eq(symlink("/nonexistent/wk_tar_tablespace", path), 0);
    path_in(path, sizeof(path), src, "a/rel_link");
    ck_assert_int_eq(symlink("../empty", path), 0);
    if (long_names) {
        path_in(path, sizeof(path), src, "long");
        ck_assert_int_eq(mkdir(path, 0755), 0);
        path_in(path, sizeof(path), src, "long/" LONG_COMPONENT);
        ts_write_file(path, "long name", 9);
        path_in(path, sizeof(path), src, "long_target_link");
        ck_assert_int_eq(symlink(LONG_TARGET, path), 0);
    }
}

static const char *cmp_src;
static const char *cmp_dst;
static int cmp_count;

/* Checks that the counterpart of src entry `path` in cmp_dst matches it. */
static int compare_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)flag;
    char other[2048];
    struct stat db;
    if (ftw->level == 0)
        return 0;
    snprintf(other, sizeof(other), "%s%s", cmp_dst, path + strlen(cmp_src));
    ck_assert_msg(lstat(other, &db) == 0, "missing %s: %s", other, strerror(errno));
    cmp_count++;
    if (S_ISREG(sb->st_mode)) {
        size_t a_len = 0, b_len = 0;
        ck_assert_msg(S_ISREG(db.st_mode), "%s is not a regular file", other);
        ck_assert_int_eq(db.st_mode & 07777, 0600);
        ck_assert_int_eq(db.st_mtime, sb->st_mtime);
        unsigned char *a = (unsigned char *)ts_read_file(path, &a_len);
        unsigned char *b = (unsigned char *)ts_read_file(other, &b_len);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_uint_eq(a_len, b_len);
        ck_assert_msg(memcmp(a, b, a_len) == 0, "%s differs", other);
        free(a);
        free(b);
    } else if (S_ISDIR(sb->st_mode)) {
        ck_assert_msg(S_ISDIR(db.st_mode), "%s is not a folder", other);
        ck_assert_int_eq(db.st_mode & 07777, 0700);
    } else {
        char a[PATH_MAX], b[PATH_MAX];
        ck_assert(S_ISLNK(sb->st_mode));
        ck_assert_msg(S_ISLNK(db.st_mode), "%s is not a symbolic link", other);
        ssize_t an = readlink(path, a, sizeof(a) - 1);
        ssize_t bn = readlink(other, b, sizeof(b) - 1);
        ck_assert(an >= 0 && bn >= 0);
        a[an] = '\0';
        b[bn] = '\0';
        ck_assert_str_eq(a, b);
    }
    return 0;
}

/* Everything in src is in dst, the same, with the modes PostgreSQL wants; nothing else. */
static void assert_same_tree(const char *src, const char *dst)
{
    cmp_src = src;
    cmp_dst = dst;
    cmp_count = 0;
    ck_assert_int_eq(nftw(src, compare_entry, 16, FTW_PHYS), 0);
    ck_assert_int_eq(count_tree(dst), cmp_count);
}

START_TEST(test_real_tar)
{
    const char *format = tar_formats[_i / 5];
    size_t piece = piece_sizes[_i % 5];
    bool long_names = strcmp(format, "ustar") != 0;
    char src[300], archive[300], cmd[1024];
    wk_error err = {0};
    uint64_t bytes = 0, files = 0;
    wk_tar_options options = {.bytes_written = &bytes, .files = &files};

    if (!have_gnu_tar)
        return;
    snprintf(src, sizeof(src), "%s/src", tmp_dir);
    snprintf(archive, sizeof(archive), "%s/archive.tar", tmp_dir);
    make_source_tree(src, long_names);
    /* ustar: names listed (no "./"); gnu and pax: the whole folder as "./...". */
    if (long_names)
        snprintf(cmd, sizeof(cmd), TAR_PROGRAM " --format=%s -C '%s' -cf '%s' .", format, src,
                 archive);
    else
        snprintf(cmd, sizeof(cmd),
                 TAR_PROGRAM " --format=%s -C '%s' -cf '%s' a deep empty tblspc_link", format, src,
                 archive);
    ck_assert_msg(system(cmd) == 0, "%s failed", cmd);

    size_t len = 0;
    unsigned char *data = (unsigned char *)ts_read_file(archive, &len);
    ck_assert_ptr_nonnull(data);
    int rc = extract_to(dest_dir, data, len, piece, &options, &err);
    ck_assert_msg(rc == EX_OK, "%s, pieces of %zu: step %d: %s (%s)", format, piece, rc,
                  err.message, err.detail);
    free(data);
    assert_same_tree(src, dest_dir);
    assert_text("a/hello.txt", "hello\n");
    assert_symlink("tblspc_link", "/nonexistent/wk_tar_tablespace");
    assert_dir("a/empty_dir");
    uint64_t want_files = long_names ? 8 : 7;
    uint64_t want_bytes = 6 + BIG_SIZE + 511 + 512 + 513 + 4 + (long_names ? 9 : 0);
    ck_assert_uint_eq(files, want_files);
    ck_assert_uint_eq(bytes, want_bytes);
}
END_TEST

/* ---- hand-built archives ---------------------------------------------------------- */

START_TEST(test_hand_built_round_trip)
{
    tarbuf tb = {0};
    wk_error err = {0};
    unsigned char *big = ts_pattern(BIG_SIZE, 3);
    uint64_t bytes = 5, files = 0;
    wk_tar_options options = {.bytes_written = &bytes, .files = &files};

    tb_header(&tb, "pg_tblspc/", '5', 0, NULL);
    tb_header(&tb, "pg_tblspc/16384", '2', 0, "/srv/tablespace/one");
    tb_header(&tb, "pg_tblspc/", '5', 0, NULL); /* folders may repeat */
    tb_header(&tb, "./", '5', 0, NULL);         /* dest itself */
    tb_text(&tb, "PG_VERSION", "17\n");
    tb_file(&tb, "empty", "", 0);
    tb_file(&tb, "base/1/1259", big, BIG_SIZE); /* parents missing from the archive */
    tb_text(&tb, "base/1/1249", "same folder");
    tb_text(&tb, "./x//y/./z", "normalised");
    tb_header(&tb, "v7dir/", '0', 0, NULL); /* folder marked by its slash only */
    tb_header(&tb, "global", '5', 0, NULL);
    tb_text(&tb, "global/pg_control", "control");
    tb_end(&tb);
    tb_zeros(&tb, 9 * 1024); /* record padding is fine */

    for (size_t i = 0; i < sizeof(piece_sizes) / sizeof(piece_sizes[0]); i++) {
        ts_tmpdir_remove(dest_dir);
        ck_assert_int_eq(mkdir(dest_dir, 0700), 0);
        bytes = 5;
        files = 0;
        int rc = extract_to(dest_dir, tb.data, tb.len, piece_sizes[i], &options, &err);
        ck_assert_msg(rc == EX_OK, "pieces of %zu: step %d: %s", piece_sizes[i], rc, err.message);
        assert_dir("pg_tblspc");
        assert_symlink("pg_tblspc/16384", "/srv/tablespace/one");
        assert_text("PG_VERSION", "17\n");
        assert_file("empty", "", 0);
        assert_dir("base");
        assert_dir("base/1");
        assert_file("base/1/1259", big, BIG_SIZE);
        assert_text("base/1/1249", "same folder");
        assert_dir("x/y");
        assert_text("x/y/z", "normalised");
        assert_dir("v7dir");
        assert_text("global/pg_control", "control");
        ck_assert_int_eq(count_tree(dest_dir), 14);
        ck_assert_uint_eq(files, 6);
        ck_assert_uint_eq(bytes, 5 + 3 + BIG_SIZE + 11 + 10 + 7);
    }
    char path[1024];
    struct stat sb;
    path_in(path, sizeof(path), dest_dir, "PG_VERSION");
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mtime, 1700000000);
    free(big);
    tb_free(&tb);
}
END_TEST

START_TEST(test_empty_archive)
{
    tarbuf tb = {0};
    wk_error err = {0};
    tb_end(&tb);
    ck_assert_int_eq(extract(&tb, &err), EX_OK);
    ck_assert_int_eq(count_tree(dest_dir), 0);
    /* No bytes at all is not an archive. */
    ck_assert_int_eq(extract_to(dest_dir, "", 0, 1, NULL, &err), EX_FINISH);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_str_eq(err.message, "tar stream ended early (truncated)");
    tb_free(&tb);
}
END_TEST

START_TEST(test_numeric_fields)
{
    tarbuf tb = {0};
    wk_error err = {0};
    unsigned char h[512];

    /* base-256 size, as PostgreSQL writes sizes of 8 GiB and more. */
    make_header(h, "b256", '0', 0, NULL);
    memset(h + 124, 0, 12);
    h[124] = 0x80;
    h[135] = 5;
    set_checksum(h);
    tb_append(&tb, h, 512);
    tb_append(&tb, "abcde", 5);
    tb_pad(&tb);
    /* Old style: leading spaces, space terminated. */
    make_header(h, "spaces", '0', 0, NULL);
    memcpy(h + 124, "        12 ", 12);
    set_checksum(h);
    tb_append(&tb, h, 512);
    tb_append(&tb, "0123456789", 10);
    tb_pad(&tb);
    /* Twelve digits filling the field; an empty field. */
    make_header(h, "full", '0', 0, NULL);
    memcpy(h + 124, "000000000003", 12);
    set_checksum(h);
    tb_append(&tb, h, 512);
    tb_append(&tb, "xyz", 3);
    tb_pad(&tb);
    make_header(h, "nosize", '5', 0, NULL);
    memset(h + 124, 0, 12);
    set_checksum(h);
    tb_append(&tb, h, 512);
    /* A signed-char checksum, from old writers, over a name with a high byte. */
    make_header(h, "caf\xe9", '0', 2, NULL);
    memset(h + 148, ' ', 8);
    int ssum = 0;
    for (int i = 0; i < 512; i++)
        ssum += (signed char)h[i];
    char tmp[8];
    snprintf(tmp, sizeof(tmp), "%06o", ssum);
    memcpy(h + 148, tmp, 7);
    tb_append(&tb, h, 512);
    tb_append(&tb, "ok", 2);
    tb_pad(&tb);
    tb_end(&tb);
    ck_assert_msg(extract(&tb, &err) == EX_OK, "%s", err.message);
    assert_text("b256", "abcde");
    assert_text("spaces", "0123456789");
    assert_text("full", "xyz");
    assert_dir("nosize");
    assert_text("caf\xe9", "ok");
    tb_free(&tb);
}
END_TEST

START_TEST(test_bad_numbers)
{
    tarbuf tb = {0};
    unsigned char h[512];
    /* Negative base-256. */
    make_header(h, "neg", '0', 0, NULL);
    memset(h + 124, 0xff, 12);
    set_checksum(h);
    tb_append(&tb, h, 512);
    assert_corrupt(&tb, EX_WRITE, "invalid size in tar header at offset 0");
    tb_free(&tb);
    /* Garbage in the size field. */
    make_header(h, "junk", '0', 0, NULL);
    memcpy(h + 124, "12x4", 4);
    set_checksum(h);
    tb_append(&tb, h, 512);
    assert_corrupt(&tb, EX_WRITE, "invalid size in tar header at offset 0");
    tb_free(&tb);
    /* A huge base-256 size that never arrives: no huge allocation, truncation at finish. */
    make_header(h, "huge", '0', 0, NULL);
    memset(h + 124, 0, 12);
    h[124] = 0x80;
    h[131] = 0x02; /* 8 GiB */
    set_checksum(h);
    tb_append(&tb, h, 512);
    tb_zeros(&tb, 1000);
    assert_corrupt(&tb, EX_FINISH, "tar stream ended early (truncated)");
    char path[1024];
    struct stat sb;
    path_in(path, sizeof(path), dest_dir, "huge");
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_size, 1000);
    tb_free(&tb);
}
END_TEST

START_TEST(test_bad_checksum)
{
    tarbuf tb = {0};
    tb_text(&tb, "first", "1");
    tb_text(&tb, "second", "2");
    tb_end(&tb);
    tb.data[3] ^= 0x01; /* the first header's name */
    assert_corrupt(&tb, EX_WRITE, "tar header checksum mismatch at offset 0");
    ck_assert_int_eq(count_tree(dest_dir), 0);
    tb.data[3] ^= 0x01;

    memcpy(tb.data + 1024 + 148, "000000\0 ", 8); /* the second header's checksum */
    assert_corrupt(&tb, EX_WRITE, "tar header checksum mismatch at offset 1024");
    ck_assert_int_eq(count_tree(dest_dir), 1); /* "first" */

    ts_tmpdir_remove(dest_dir);
    ck_assert_int_eq(mkdir(dest_dir, 0700), 0);
    memset(tb.data + 1024 + 148, 'z', 8); /* unreadable checksum */
    assert_corrupt(&tb, EX_WRITE, "tar header checksum mismatch at offset 1024");
    tb_free(&tb);
}
END_TEST

/* Delta mode over an older copy: equal bytes are kept, differing ranges written, a longer
 * file cut, links and files in the way replaced; every entry is reported as seen. */
typedef struct seen_list {
    char names[16][64];
    size_t count;
} seen_list;

static int note_seen(const char *path, void *arg)
{
    seen_list *l = arg;
    if (l->count == 16)
        return 1;
    snprintf(l->names[l->count++], sizeof(l->names[0]), "%s", path);
    return 0;
}

START_TEST(test_delta)
{
    tarbuf tb = {0};
    wk_error err = {0};
    enum { BIG = 5 * 8192 + 100 };
    unsigned char *big = ts_pattern(BIG, 7);
    tb_header(&tb, "base/", '5', 0, NULL);
    tb_file(&tb, "base/big", big, BIG);
    tb_text(&tb, "base/short", "now short");
    tb_text(&tb, "was_link", "a file now");
    tb_header(&tb, "link_same", '2', 0, "/same");
    tb_header(&tb, "link_other", '2', 0, "/new");
    tb_header(&tb, "was_file/", '5', 0, NULL);
    tb_end(&tb);

    /* The older copy: big differs in its third block only, short is longer, was_link is
     * a link, the links point to /same and /old, was_file is a file. */
    char path[512];
    ck_assert_int_eq(extract(&tb, &err), EX_OK);
    unsigned char *older = malloc(BIG);
    memcpy(older, big, BIG);
    older[2 * 8192 + 17] ^= 0xff;
    snprintf(path, sizeof(path), "%s/base/big", dest_dir);
    ts_write_file(path, older, BIG);
    snprintf(path, sizeof(path), "%s/base/short", dest_dir);
    ts_write_file(path, "was a much longer text", 22);
    snprintf(path, sizeof(path), "%s/was_link", dest_dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(symlink("/elsewhere", path), 0);
    snprintf(path, sizeof(path), "%s/link_other", dest_dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(symlink("/old", path), 0);
    snprintf(path, sizeof(path), "%s/was_file", dest_dir);
    ck_assert_int_eq(rmdir(path), 0);
    ts_write_file(path, "x", 1);

    uint64_t written = 0, kept = 0;
    seen_list seen = {0};
    wk_tar_options options = {.bytes_written = &written,
                              .delta = true,
                              .bytes_kept = &kept,
                              .seen = note_seen,
                              .seen_arg = &seen};
    for (size_t piece = 1000; piece <= 100000; piece *= 100) {
        written = kept = 0;
        seen.count = 0;
        memcpy(older, big, BIG);
        older[2 * 8192 + 17] ^= 0xff;
        snprintf(path, sizeof(path), "%s/base/big", dest_dir);
        ts_write_file(path, older, BIG);
        ck_assert_msg(extract_to(dest_dir, tb.data, tb.len, piece, &options, &err) == EX_OK, "%s",
                      err.message);
        assert_file("base/big", big, BIG);
        assert_text("base/short", "now short");
        assert_text("was_link", "a file now");
        assert_symlink("link_same", "/same");
        assert_symlink("link_other", "/new");
        snprintf(path, sizeof(path), "%s/was_file", dest_dir);
        struct stat sb;
        ck_assert_int_eq(lstat(path, &sb), 0);
        ck_assert(S_ISDIR(sb.st_mode));
        ck_assert_uint_eq(written, BIG + 9 + 10);
        /* All of big but the 8 KiB (or the piece, when smaller) holding the changed byte
         * was kept: compared block by block. */
        size_t rewritten = piece < 8192 ? piece : 8192;
        ck_assert_msg(kept >= BIG - 2 * rewritten && kept < BIG, "kept %llu of %d",
                      (unsigned long long)kept, BIG);
        if (piece > BIG) /* (the small files were made right by the round before) */
            ck_assert_uint_eq(kept, BIG - 8192 + 9 + 10);
        ck_assert_uint_eq(seen.count, 7);
        ck_assert_str_eq(seen.names[0], "base");
        ck_assert_str_eq(seen.names[6], "was_file");
    }
    /* A file with another name (a hard link, as cp -al or pg_upgrade --link make) is
     * replaced, not written into: its other name keeps the old content. */
    char other[700];
    snprintf(other, sizeof(other), "%s/big.otherlink", tmp_dir);
    snprintf(path, sizeof(path), "%s/base/big", dest_dir);
    ts_write_file(path, older, BIG);
    ck_assert_int_eq(link(path, other), 0);
    seen.count = 0;
    ck_assert_msg(extract_to(dest_dir, tb.data, tb.len, 4096, &options, &err) == EX_OK, "%s",
                  err.message);
    assert_file("base/big", big, BIG);
    size_t other_len = 0;
    unsigned char *other_data = (unsigned char *)ts_read_file(other, &other_len);
    ck_assert_uint_eq(other_len, BIG);
    ck_assert(memcmp(other_data, older, BIG) == 0);
    free(other_data);
    ck_assert_int_eq(unlink(other), 0);

    /* A folder where the stream has a file: refused, nothing removed in passing. */
    snprintf(path, sizeof(path), "%s/was_link", dest_dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    seen.count = 0;
    ck_assert_int_eq(extract_to(dest_dir, tb.data, tb.len, 4096, &options, &err), EX_WRITE);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    ck_assert_str_eq(err.message, "\"was_link\" is a folder in the data directory, a file in the "
                                  "backup");
    free(older);
    free(big);
    tb_free(&tb);
}
END_TEST

/* Every proper prefix of an archive fails at finish and never at write: every cut near a
 * block boundary (where headers, data and padding meet) and a spread of cuts inside
 * blocks (one extraction per cut: every byte would be slow under sanitizers). */
START_TEST(test_truncated_everywhere)
{
    tarbuf tb = {0};
    unsigned char *data = ts_pattern(1000, 11);
    char long_name[200], rec[512] = "";
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';

    tb_header(&tb, "d/", '5', 0, NULL);
    tb_file(&tb, "d/f", data, 1000);
    tb_meta(&tb, 'L', long_name, strlen(long_name) + 1);
    tb_text(&tb, "ignored", "long");
    pax_record(rec, sizeof(rec), "path", "d/pax");
    tb_meta(&tb, 'x', rec, strlen(rec));
    tb_text(&tb, "ignored2", "pax");
    tb_header(&tb, "d/l", '2', 0, "/target");
    tb_file(&tb, "d/512", data, 512);
    tb_end(&tb);

    for (size_t cut = 0; cut < tb.len; cut++) {
        size_t in_block = cut % 512;
        if (in_block > 2 && in_block < 510 && cut % 61 != 0)
            continue;
        char sub[400];
        wk_error err = {0};
        snprintf(sub, sizeof(sub), "%s/cut_XXXXXX", tmp_dir);
        ck_assert_ptr_nonnull(mkdtemp(sub));
        size_t piece = cut % 3 == 0 ? 1000 : cut % 3 == 1 ? 511 : 4096;
        int rc = extract_to(sub, tb.data, cut, piece, NULL, &err);
        ck_assert_msg(rc == EX_FINISH, "cut at %zu: step %d: %s", cut, rc, err.message);
        ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
        ck_assert_str_eq(err.message, "tar stream ended early (truncated)");
        ts_tmpdir_remove(sub);
    }
    wk_error err = {0};
    ck_assert_int_eq(extract(&tb, &err), EX_OK);
    assert_file("d/f", data, 1000);
    assert_text(long_name, "long");
    assert_text("d/pax", "pax");
    assert_symlink("d/l", "/target");
    free(data);
    tb_free(&tb);
}
END_TEST

START_TEST(test_end_of_archive)
{
    tarbuf tb = {0};
    wk_error err = {0};
    tb_text(&tb, "f", "data");
    tb_end(&tb);
    tb_zeros(&tb, 700);
    size_t garbage_at = tb.len;
    tb_append(&tb, "x", 1);
    tb_zeros(&tb, 100);
    char msg[128];
    snprintf(msg, sizeof(msg), "non-zero data after the end of the tar archive at offset %zu",
             garbage_at);
    assert_corrupt(&tb, EX_WRITE, msg);
    /* Byte by byte too. */
    ts_tmpdir_remove(dest_dir);
    ck_assert_int_eq(mkdir(dest_dir, 0700), 0);
    ck_assert_int_eq(extract_to(dest_dir, tb.data, tb.len, 1, NULL, &err), EX_WRITE);
    ck_assert_str_eq(err.message, msg);
    tb_free(&tb);

    /* A lone zero block followed by another header. */
    ts_tmpdir_remove(dest_dir);
    ck_assert_int_eq(mkdir(dest_dir, 0700), 0);
    tb_text(&tb, "f", "data");
    tb_zeros(&tb, 512);
    tb_text(&tb, "g", "more");
    tb_end(&tb);
    assert_corrupt(&tb, EX_WRITE, "lone zero block in tar stream at offset 1024");
    tb_free(&tb);

    /* An extended header with no entry after it. */
    ts_tmpdir_remove(dest_dir);
    ck_assert_int_eq(mkdir(dest_dir, 0700), 0);
    tb_meta(&tb, 'L', "name", 5);
    tb_end(&tb);
    assert_corrupt(&tb, EX_WRITE, "tar extended header at offset 0 is not followed by an entry");
    tb_free(&tb);
}
END_TEST

START_TEST(test_unsafe_names)
{
    static const char *const names[] = {"../x",   "/etc/x", "a/../b", "..", "a/..",
                                        "./../x", "",       ".",      "./", "x/../../x"};
    static const char types[] = {'0', '5', '2'};
    char outside[400];
    path_in(outside, sizeof(outside), tmp_dir, "x");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        for (size_t t = 0; t < sizeof(types); t++) {
            tarbuf tb = {0};
            /* "./" is a folder (by its slash) naming dest itself, fine; so is "." as one. */
            if (strcmp(names[i], "./") == 0 || (types[t] == '5' && strcmp(names[i], ".") == 0))
                continue;
            tb_header(&tb, names[i], types[t], types[t] == '0' ? 4 : 0, "/tmp");
            if (types[t] == '0') {
                tb_append(&tb, "evil", 4);
                tb_pad(&tb);
            }
            tb_end(&tb);
            assert_corrupt(&tb, EX_WRITE, "unsafe path in tar entry");
            ck_assert(!ts_path_exists(outside));
            ck_assert_int_eq(count_tree(dest_dir), 0);
            tb_free(&tb);
        }
    }
    /* The same through a GNU long name and a pax path. */
    tarbuf tb = {0};
    char rec[256] = "";
    tb_meta(&tb, 'L', "../x", 5);
    tb_text(&tb, "harmless", "evil");
    tb_end(&tb);
    assert_corrupt(&tb, EX_WRITE, "unsafe path in tar entry \"../x\"");
    tb_free(&tb);
    pax_record(rec, sizeof(rec), "path", "sub/../../x");
    tb_meta(&tb, 'x', rec, strlen(rec));
    tb_text(&tb, "harmless", "evil");
    tb_end(&tb);
    assert_corrupt(&tb, EX_WRITE, "unsafe path in tar entry \"sub/../../x\"");
    tb_free(&tb);
    /* A NUL inside a pax path is not a way to shorten it. */
    memcpy(rec, "15 path=a\0../x\n", 15);
    tb_meta(&tb, 'x', rec, 15);
    tb_text(&tb, "harmless", "evil");
    tb_end(&tb);
    assert_corrupt(&tb, EX_WRITE, "malformed pax extended header at offset 0");
    tb_free(&tb);
    ck_assert(!ts_path_exists(outside));
    ck_assert_int_eq(count_tree(dest_dir), 0);
}
END_TEST

START_TEST(test_symlink_escape)
{
    char outside[400], probe[128], name[160], path[1024];
    tarbuf tb = {0};
    path_in(outside, sizeof(outside), tmp_dir, "outside");
    ck_assert_int_eq(mkdir(outside, 0700), 0);

    /* A link to /tmp, then a file through it. */
    snprintf(probe, sizeof(probe), "wk_tar_probe_%ld_%ld", (long)getpid(), (long)time(NULL));
    snprintf(name, sizeof(name), "l/%s", probe);
    tb_header(&tb, "l", '2', 0, "/tmp");
    tb_text(&tb, name, "escaped");
    tb_end(&tb);
    assert_corrupt(&tb, EX_WRITE, "unsafe path in tar entry");
    path_in(path, sizeof(path), "/tmp", probe);
    ck_assert(!ts_path_exists(path));
    assert_symlink("l", "/tmp");
    tb_free(&tb);

    /* Deeper, through a cached parent, for folders and links too. */
    static const char *const tails[] = {"x", "sub/x", "sub/deeper/x"};
    static const char types[] = {'0', '5', '2'};
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        for (size_t t = 0; t < sizeof(types); t++) {
            ts_tmpdir_remove(dest_dir);
            ck_assert_int_eq(mkdir(dest_dir, 0700), 0);
            tb_header(&tb, "a/", '5', 0, NULL);
            tb_text(&tb, "a/before", "fine");
            tb_header(&tb, "a/l", '2', 0, outside);
            snprintf(name, sizeof(name), "a/l/%s", tails[i]);
            tb_header(&tb, name, types[t], 0, "target");
            tb_end(&tb);
            assert_corrupt(&tb, EX_WRITE, "unsafe path in tar entry");
            ck_assert_int_eq(count_tree(outside), 0);
            assert_text("a/before", "fine");
            tb_free(&tb);
        }
    }

    /* A folder, file or link of the link's own name: nothing goes through it. */
    ts_tmpdir_remove(dest_dir);
    ck_assert_int_eq(mkdir(dest_dir, 0700), 0);
    tb_header(&tb, "l", '2', 0, outside);
    tb_header(&tb, "l/", '5', 0, NULL);
    tb_end(&tb);
    assert_corrupt(&tb, EX_WRITE, "unsafe path in tar entry \"l\"");
    tb_free(&tb);
    wk_error err = {0};
    tb_text(&tb, "l", "through");
    tb_end(&tb);
    ck_assert_int_eq(extract(&tb, &err), EX_WRITE);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    tb_free(&tb);
    tb_header(&tb, "l", '2', 0, "elsewhere");
    ck_assert_int_eq(extract(&tb, &err), EX_WRITE);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    ck_assert_int_eq(count_tree(outside), 0);
    assert_symlink("l", outside);
    tb_free(&tb);
}
END_TEST

START_TEST(test_unsupported_types)
{
    static const char types[] = {'1', '3', '4', '6', 'S', 'V'};
    for (size_t i = 0; i < sizeof(types); i++) {
        tarbuf tb = {0};
        tb_header(&tb, "entry", types[i], 0, "PG_VERSION");
        tb_end(&tb);
        assert_corrupt(&tb, EX_WRITE, "unsupported tar entry type");
        ck_assert_int_eq(count_tree(dest_dir), 0);
        tb_free(&tb);
    }
    wk_error err = {0};
    tarbuf tb = {0};
    tb_header(&tb, "hard", '1', 0, "PG_VERSION");
    ck_assert_int_eq(extract(&tb, &err), EX_WRITE);
    ck_assert_str_eq(err.message, "unsupported tar entry type");
    ck_assert_str_eq(err.detail, "Entry \"hard\" at offset 0 is a hard link.");
    tb_free(&tb);
}
END_TEST

START_TEST(test_existing_files)
{
    char path[1024], victim[400];
    wk_error err = {0};
    tarbuf tb = {0};
    path_in(path, sizeof(path), dest_dir, "f");
    ts_write_file(path, "keep", 4);
    chmod(path, 0600);
    tb_text(&tb, "f", "new content");
    tb_end(&tb);
    ck_assert_int_eq(extract(&tb, &err), EX_WRITE);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    ck_assert_str_eq(err.message, "could not create file \"f\": File exists");
    assert_text("f", "keep");
    tb_free(&tb);

    /* A link already in dest is not followed either. */
    path_in(victim, sizeof(victim), tmp_dir, "victim");
    ts_write_file(victim, "victim", 6);
    path_in(path, sizeof(path), dest_dir, "g");
    ck_assert_int_eq(symlink(victim, path), 0);
    tb_text(&tb, "g", "overwritten");
    tb_end(&tb);
    ck_assert_int_eq(extract(&tb, &err), EX_WRITE);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    size_t len = 0;
    unsigned char *buf = (unsigned char *)ts_read_file(victim, &len);
    ck_assert_str_eq((char *)buf, "victim");
    free(buf);
    tb_free(&tb);

    /* Nor one in a parent position. */
    path_in(path, sizeof(path), dest_dir, "h");
    ck_assert_int_eq(symlink(tmp_dir, path), 0);
    tb_text(&tb, "h/victim", "overwritten");
    tb_end(&tb);
    assert_corrupt(&tb, EX_WRITE, "unsafe path in tar entry \"h/victim\"");
    buf = (unsigned char *)ts_read_file(victim, &len);
    ck_assert_str_eq((char *)buf, "victim");
    free(buf);
    tb_free(&tb);

    /* A folder entry where a file is. */
    tb_header(&tb, "f", '5', 0, NULL);
    tb_end(&tb);
    ck_assert_int_eq(extract(&tb, &err), EX_WRITE);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    tb_free(&tb);
    /* A file where a parent folder should be. */
    tb_text(&tb, "f/x", "x");
    tb_end(&tb);
    ck_assert_int_eq(extract(&tb, &err), EX_WRITE);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_str_eq(err.message, "could not open folder \"f\": Not a directory");
    tb_free(&tb);
    /* The same file twice in one archive. */
    tb_text(&tb, "twice", "1");
    tb_text(&tb, "twice", "2");
    tb_end(&tb);
    ck_assert_int_eq(extract(&tb, &err), EX_WRITE);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    assert_text("twice", "1");
    tb_free(&tb);
}
END_TEST

START_TEST(test_gnu_long_names)
{
    char name[301], target[301];
    wk_error err = {0};
    tarbuf tb = {0};
    /* 300 bytes in two components (each under NAME_MAX). */
    memset(name, 'a', 150);
    name[150] = '/';
    memset(name + 151, 'b', 149);
    name[300] = '\0';
    memset(target, 't', 300);
    target[0] = '/';
    target[300] = '\0';
    tb_meta(&tb, 'L', name, sizeof(name)); /* with its NUL, as GNU tar writes it */
    tb_text(&tb, "trunc", "long file");
    tb_meta(&tb, 'K', target, strlen(target)); /* without */
    tb_meta(&tb, 'L', "link", 4);
    tb_header(&tb, "trunc2", '2', 0, "short");
    tb_text(&tb, "plain", "next entry has its own name");
    tb_end(&tb);
    ck_assert_msg(extract(&tb, &err) == EX_OK, "%s", err.message);
    assert_text(name, "long file");
    char dir[151];
    memcpy(dir, name, 150);
    dir[150] = '\0';
    assert_dir(dir);
    assert_symlink("link", target);
    assert_text("plain", "next entry has its own name");
    ck_assert_int_eq(count_tree(dest_dir), 4);
    tb_free(&tb);
}
END_TEST

START_TEST(test_pax)
{
    char rec[1024] = "", long_name[200];
    wk_error err = {0};
    tarbuf tb = {0};
    memset(long_name, 'p', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';

    pax_record(rec, sizeof(rec), "comment", "global, ignored");
    tb_meta(&tb, 'g', rec, strlen(rec));
    rec[0] = '\0';
    pax_record(rec, sizeof(rec), "mtime", "1700000000.123456789");
    pax_record(rec, sizeof(rec), "path", long_name);
    pax_record(rec, sizeof(rec), "SCHILY.xattr.user.x", "ignored=value\nwith newline");
    pax_record(rec, sizeof(rec), "size", "5");
    tb_meta(&tb, 'x', rec, strlen(rec));
    tb_header(&tb, "short", '0', 0, NULL); /* the size comes from pax */
    tb_append(&tb, "sized", 5);
    tb_pad(&tb);
    rec[0] = '\0';
    pax_record(rec, sizeof(rec), "linkpath", LONG_TARGET);
    pax_record(rec, sizeof(rec), "path", "pax_link");
    tb_meta(&tb, 'x', rec, strlen(rec));
    tb_header(&tb, "trunc", '2', 0, "short");
    rec[0] = '\0';
    pax_record(rec, sizeof(rec), "path", ""); /* empty: the header's name stands */
    tb_meta(&tb, 'x', rec, strlen(rec));
    tb_text(&tb, "own_name", "own");
    tb_end(&tb);
    ck_assert_msg(extract(&tb, &err) == EX_OK, "%s", err.message);
    assert_text(long_name, "sized");
    assert_symlink("pax_link", LONG_TARGET);
    assert_text("own_name", "own");
    ck_assert_int_eq(count_tree(dest_dir), 3);
    tb_free(&tb);
}
END_TEST

START_TEST(test_bad_pax)
{
    static const char *const bad[] = {
        "5 path=x\n",                     /* length too short for the record */
        "99 path=x\n",                    /* past the end */
        "abc",                            /* no length */
        "11 pathxxx\n",                   /* no '=' */
        "9 path=x ",                      /* no newline */
        "11 size=1x\n",                   /* not a number */
        "29 size=99999999999999999999\n", /* too big */
        "6 =xy\n",                        /* empty key */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tarbuf tb = {0};
        tb_meta(&tb, 'x', bad[i], strlen(bad[i]));
        tb_text(&tb, "f", "x");
        tb_end(&tb);
        assert_corrupt(&tb, EX_WRITE, "malformed pax extended header at offset 0");
        ck_assert_int_eq(count_tree(dest_dir), 0);
        tb_free(&tb);
    }
    /* Extended headers are bounded. */
    tarbuf tb = {0};
    tb_header(&tb, "PaxHeader/x", 'x', WK_TAR_META_MAX + 1, NULL);
    assert_corrupt(&tb, EX_WRITE, "tar extended header at offset 0 is too large (65537 bytes)");
    tb_free(&tb);
    tb_header(&tb, "././@LongLink", 'L', 1ull << 32, NULL);
    assert_corrupt(&tb, EX_WRITE, "tar extended header at offset 0 is too large");
    tb_free(&tb);
    /* The largest one allowed is fine. */
    char *big = malloc(WK_TAR_META_MAX);
    ck_assert_ptr_nonnull(big);
    memset(big, 'n', WK_TAR_META_MAX);
    memcpy(big, "long", 4);
    big[4] = '\0';
    tb_meta(&tb, 'L', big, WK_TAR_META_MAX);
    tb_text(&tb, "f", "x");
    tb_end(&tb);
    wk_error err = {0};
    ck_assert_msg(extract(&tb, &err) == EX_OK, "%s", err.message);
    assert_text("long", "x");
    free(big);
    tb_free(&tb);
}
END_TEST

START_TEST(test_prefix_field)
{
    tarbuf tb = {0};
    unsigned char h[512];
    make_header(h, "file", '0', 2, NULL);
    memcpy(h + 345, "p1/p2", 5);
    set_checksum(h);
    tb_append(&tb, h, 512);
    tb_append(&tb, "pp", 2);
    tb_pad(&tb);
    /* GNU magic: that space holds other things and is not a prefix. */
    make_header(h, "gnu", '0', 1, NULL);
    memcpy(h + 257, "ustar  ", 8);
    memcpy(h + 345, "junk", 4);
    set_checksum(h);
    tb_append(&tb, h, 512);
    tb_append(&tb, "g", 1);
    tb_pad(&tb);
    /* A prefix cannot smuggle in "..". */
    make_header(h, "x", '0', 0, NULL);
    memcpy(h + 345, "..", 2);
    set_checksum(h);
    tb_append(&tb, h, 512);
    tb_end(&tb);
    assert_corrupt(&tb, EX_WRITE, "unsafe path in tar entry \"../x\"");
    assert_text("p1/p2/file", "pp");
    assert_text("gnu", "g");
    tb_free(&tb);
}
END_TEST

START_TEST(test_misuse_and_abort)
{
    wk_error err = {0};
    tarbuf tb = {0};
    unsigned char *data = ts_pattern(5000, 5);
    tb_file(&tb, "half", data, 5000);
    tb_end(&tb);

    /* Free in the middle of a file: what was written stays, nothing leaks. */
    wk_stage *stage = wk_tar_extract_new(dest_dir, NULL, &err);
    ck_assert_ptr_nonnull(stage);
    ck_assert_int_eq(wk_stage_write(stage, tb.data, 512 + 2000, &err), 0);
    wk_stage_free(stage);
    assert_file("half", data, 2000);

    /* After an error the stage refuses to go on. */
    stage = wk_tar_extract_new(dest_dir, NULL, &err);
    ck_assert_ptr_nonnull(stage);
    ck_assert_int_eq(wk_stage_write(stage, tb.data, 512, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    ck_assert_int_eq(wk_stage_write(stage, tb.data + 512, 10, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_INTERNAL);
    ck_assert_int_eq(wk_stage_finish(stage, &err), -1);
    wk_stage_free(stage);

    /* Finish twice is fine; writing afterwards is not. */
    ts_tmpdir_remove(dest_dir);
    ck_assert_int_eq(mkdir(dest_dir, 0700), 0);
    stage = wk_tar_extract_new(dest_dir, NULL, &err);
    ck_assert_ptr_nonnull(stage);
    ck_assert_int_eq(wk_stage_write(stage, tb.data, tb.len, &err), 0);
    ck_assert_int_eq(wk_stage_finish(stage, &err), 0);
    ck_assert_int_eq(wk_stage_finish(stage, &err), 0);
    ck_assert_int_eq(wk_stage_write(stage, "", 1, &err), -1);
    wk_stage_free(stage);
    assert_file("half", data, 5000);

    /* Truncation inside a file: finish fails and closes it. */
    ts_tmpdir_remove(dest_dir);
    ck_assert_int_eq(mkdir(dest_dir, 0700), 0);
    stage = wk_tar_extract_new(dest_dir, NULL, &err);
    ck_assert_ptr_nonnull(stage);
    ck_assert_int_eq(wk_stage_write(stage, tb.data, 1000, &err), 0);
    ck_assert_int_eq(wk_stage_finish(stage, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_str_eq(err.message, "tar stream ended early (truncated)");
    wk_stage_free(stage);

    /* dest must be an existing folder. */
    char path[1024];
    path_in(path, sizeof(path), tmp_dir, "missing");
    ck_assert_ptr_null(wk_tar_extract_new(path, NULL, &err));
    ck_assert_int_eq(err.code, WK_ERR_IO);
    path_in(path, sizeof(path), dest_dir, "half");
    ck_assert_ptr_null(wk_tar_extract_new(path, NULL, &err));
    ck_assert_int_eq(err.code, WK_ERR_IO);
    free(data);
    tb_free(&tb);
}
END_TEST

START_TEST(test_io_errors)
{
    wk_error err = {0};
    tarbuf tb = {0};
    unsigned char *data = ts_pattern(5000, 9);
    struct rlimit old, small;

    /* A file size limit stands in for a full disk. */
    tb_file(&tb, "base/1/123", data, 5000);
    tb_end(&tb);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = extract(&tb, &err);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    ck_assert_int_eq(rc, EX_WRITE);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_int_eq(err.sys_errno, EFBIG);
    ck_assert_str_eq(err.message, "could not write file \"base/1/123\": File too large");
    tb_free(&tb);
    free(data);

    /* Permissions (meaningless for root). */
    if (geteuid() == 0)
        return;
    ts_tmpdir_remove(dest_dir);
    ck_assert_int_eq(mkdir(dest_dir, 0500), 0);
    tb_text(&tb, "f", "x");
    tb_end(&tb);
    ck_assert_int_eq(extract(&tb, &err), EX_WRITE);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_str_eq(err.message, "could not create file \"f\": Permission denied");
    tb_free(&tb);
    tb_text(&tb, "x/y", "x");
    tb_end(&tb);
    ck_assert_int_eq(extract(&tb, &err), EX_WRITE);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_str_eq(err.message, "could not create folder \"x\": Permission denied");
    tb_free(&tb);
    tb_header(&tb, "l", '2', 0, "/x");
    tb_end(&tb);
    ck_assert_int_eq(extract(&tb, &err), EX_WRITE);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_str_eq(err.message, "could not create symbolic link \"l\": Permission denied");
    tb_free(&tb);
}
END_TEST

static Suite *tar_suite(void)
{
    Suite *s = suite_create("tar");
    TCase *real = tcase_create("gnu_tar");
    tcase_add_checked_fixture(real, setup, teardown);
    tcase_set_timeout(real, 60);
    tcase_add_loop_test(real, test_real_tar, 0,
                        (int)(sizeof(tar_formats) / sizeof(tar_formats[0]) *
                              (sizeof(piece_sizes) / sizeof(piece_sizes[0]))));
    suite_add_tcase(s, real);

    TCase *hand = tcase_create("hand_built");
    tcase_add_checked_fixture(hand, setup, teardown);
    tcase_set_timeout(hand, 60);
    tcase_add_test(hand, test_hand_built_round_trip);
    tcase_add_test(hand, test_empty_archive);
    tcase_add_test(hand, test_numeric_fields);
    tcase_add_test(hand, test_bad_numbers);
    tcase_add_test(hand, test_bad_checksum);
    tcase_add_test(hand, test_truncated_everywhere);
    tcase_add_test(hand, test_delta);
    tcase_add_test(hand, test_end_of_archive);
    tcase_add_test(hand, test_unsafe_names);
    tcase_add_test(hand, test_symlink_escape);
    tcase_add_test(hand, test_unsupported_types);
    tcase_add_test(hand, test_existing_files);
    tcase_add_test(hand, test_gnu_long_names);
    tcase_add_test(hand, test_pax);
    tcase_add_test(hand, test_bad_pax);
    tcase_add_test(hand, test_prefix_field);
    tcase_add_test(hand, test_misuse_and_abort);
    tcase_add_test(hand, test_io_errors);
    suite_add_tcase(s, hand);
    return s;
}

/* GNU tar makes the reference archives; without it the hand-built ones must do. */
static bool detect_gnu_tar(void)
{
    if (access(TAR_PROGRAM, X_OK) != 0)
        return false;
    return system(TAR_PROGRAM " --version 2>/dev/null | grep -q 'GNU tar'") == 0;
}

int main(void)
{
    umask(022);
    have_gnu_tar = detect_gnu_tar();
    if (!have_gnu_tar)
        fprintf(stderr, "note: GNU tar not found at " TAR_PROGRAM
                        "; testing with hand-built archives only\n");
    SRunner *sr = srunner_create(tar_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
