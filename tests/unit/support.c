/* support.c: helpers shared by the Check unit tests (see support.h); each fails the
 * running test through ck_assert when something it needs does not work. */
#include "support.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

/* ---- folders and files ------------------------------------------------------------ */

void ts_tmpdir_make(char *dir, size_t size, const char *template)
{
    int n = snprintf(dir, size, "%s", template);
    ck_assert(n > 0 && (size_t)n < size);
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s: %s", template, strerror(errno));
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)flag;
    (void)ftw;
    if (S_ISDIR(sb->st_mode))
        chmod(path, 0700);
    return remove(path);
}

int ts_tmpdir_remove(const char *dir)
{
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void ts_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        ck_assert_msg(n > 0, "write %s: %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    ck_assert_msg(close(fd) == 0, "close %s: %s", path, strerror(errno));
}

void ts_write_text(const char *path, const char *text)
{
    ts_write_file(path, text, strlen(text));
}

char *ts_read_file(const char *path, size_t *len_out)
{
    int fd = open(path, O_RDONLY);
    struct stat sb;
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(fstat(fd, &sb), 0);
    char *buf = malloc((size_t)sb.st_size + 1);
    ck_assert_ptr_nonnull(buf);
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        ck_assert_msg(n > 0, "read %s: %s", path, n < 0 ? strerror(errno) : "short");
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    if (len_out != NULL)
        *len_out = got;
    return buf;
}

bool ts_path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int ts_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (d == NULL)
        return 0;
    for (struct dirent *de = readdir(d); de != NULL; de = readdir(d)) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

int ts_count_files_under(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (d == NULL)
        return 0;
    for (struct dirent *de = readdir(d); de != NULL; de = readdir(d)) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[1024];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        ck_assert_int_eq(lstat(path, &st), 0);
        n += S_ISDIR(st.st_mode) ? ts_count_files_under(path) : 1;
    }
    closedir(d);
    return n;
}

/* ---- bytes ------------------------------------------------------------------------ */

void ts_fill_lcg(void *buf, size_t len, unsigned state)
{
    unsigned char *p = buf;
    unsigned x = state;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (unsigned char)(x >> 16);
    }
}

void ts_fill_pattern(void *buf, size_t len, unsigned seed)
{
    ts_fill_lcg(buf, len, seed * 2654435761u + 7);
}

unsigned char *ts_pattern(size_t len, unsigned seed)
{
    unsigned char *buf = malloc(len > 0 ? len : 1);
    ck_assert_ptr_nonnull(buf);
    ts_fill_lcg(buf, len, seed * 2654435761u + 1);
    return buf;
}

wk_fingerprint ts_fingerprint(const void *data, size_t len)
{
    wk_fingerprint fp;
    XXH128_canonical_t canonical;
    XXH128_canonicalFromHash(&canonical, XXH3_128bits(data, len));
    memcpy(fp.bytes, canonical.digest, sizeof(fp.bytes));
    return fp;
}

/* ---- WAL -------------------------------------------------------------------------- */

void ts_put16(uint8_t *buf, size_t off, uint16_t v)
{
    memcpy(buf + off, &v, sizeof(v));
}

void ts_put32(uint8_t *buf, size_t off, uint32_t v)
{
    memcpy(buf + off, &v, sizeof(v));
}

void ts_put64(uint8_t *buf, size_t off, uint64_t v)
{
    memcpy(buf + off, &v, sizeof(v));
}

void ts_wal_header(uint8_t *buf, uint16_t magic, uint16_t info, uint32_t tli, uint64_t pageaddr,
                   uint64_t sysid, uint32_t seg_size, uint32_t blcksz)
{
    memset(buf, 0, WK_WAL_LONG_HEADER_SIZE);
    ts_put16(buf, 0, magic);
    ts_put16(buf, 2, info);
    ts_put32(buf, 4, tli);
    ts_put64(buf, 8, pageaddr);
    ts_put64(buf, 24, sysid);
    ts_put32(buf, 32, seg_size);
    ts_put32(buf, 36, blcksz);
}

uint8_t *ts_make_segment(const char *dir, const ts_segment *spec, char *name, char *path,
                         size_t *len_out)
{
    uint32_t tli = spec->tli != 0 ? spec->tli : 1;
    size_t len = spec->size != 0 ? spec->size : TS_SEG;
    uint8_t *buf = malloc(len > 0 ? len : 1);
    ck_assert_ptr_nonnull(buf);
    ts_fill_lcg(buf, len, spec->state);
    if (len >= WK_WAL_LONG_HEADER_SIZE)
        ts_wal_header(buf, 0xD110, 0x0002, spec->header_tli != 0 ? spec->header_tli : tli,
                      spec->set_pageaddr ? spec->pageaddr : spec->segno * TS_SEG,
                      spec->sysid != 0 ? spec->sysid : TS_SYSID, TS_SEG, 8192);
    char base[WK_WAL_NAME_LEN + 1], own_name[64], own_path[512];
    if (name == NULL)
        name = own_name;
    if (path == NULL)
        path = own_path;
    wk_wal_segment_name(base, tli, spec->segno, TS_SEG);
    snprintf(name, 64, "%s%s", base, spec->suffix != NULL ? spec->suffix : "");
    ck_assert_int_lt(snprintf(path, 512, "%s/%s", dir, name), 512);
    ts_write_file(path, buf, len);
    if (len_out != NULL)
        *len_out = len;
    return buf;
}

/* ---- storage ---------------------------------------------------------------------- */

int ts_storage_put(wk_storage *st, const char *path, const void *data, size_t len, size_t chunk,
                   int flags, wk_error *err)
{
    wk_stage *sink = NULL;
    int rc = -1;
    const unsigned char *p = data;
    if (wk_storage_put_open(st, path, flags, &sink, err) != 0)
        return -1;
    if (chunk == 0)
        chunk = len > 0 ? len : 1;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        if (wk_stage_write(sink, p + off, n, err) != 0)
            goto out;
    }
    if (len == 0 && wk_stage_write(sink, "", 0, err) != 0)
        goto out;
    if (wk_stage_finish(sink, err) != 0)
        goto out;
    rc = 0;
out:
    wk_stage_free(sink);
    return rc;
}

/* ---- repositories ----------------------------------------------------------------- */

wk_repo *ts_repo_open(const char *repo_dir, wk_compress alg, const char *key_file)
{
    wk_config cfg;
    wk_error err = {0};
    wk_repo *repo = NULL;
    memset(&cfg, 0, sizeof(cfg));
    cfg.repo = (char *)repo_dir;
    cfg.compress = alg;
    cfg.compress_level = WK_COMPRESS_LEVEL_DEFAULT;
    cfg.encrypt_key_file = (char *)key_file;
    ck_assert_msg(wk_repo_open(&cfg, true, &repo, &err) == 0, "open: %s", err.message);
    ck_assert_ptr_nonnull(repo);
    return repo;
}

void ts_repo_identify(wk_repo *repo)
{
    wk_error err = {0};
    wk_repo_meta identity = {.system_identifier = TS_SYSID, .pg_version = 15, .seg_size = TS_SEG};
    wk_repo_meta meta;
    ck_assert_msg(wk_repo_open_meta(repo, &identity, &meta, NULL, &err) == 0, "%s", err.message);
}

void ts_push_file(wk_repo *repo, const char *path)
{
    wk_error err = {0};
    wk_push_result res;
    ck_assert_msg(wk_archive_push(repo, path, &res, &err) == 0, "push %s: %s (%s)", path,
                  err.message, err.detail);
}

void ts_push_segment(wk_repo *repo, const char *wal_dir, uint32_t tli, uint64_t segno,
                     unsigned state, bool remove)
{
    ts_segment spec = {.tli = tli, .segno = segno, .state = state};
    char path[512];
    free(ts_make_segment(wal_dir, &spec, NULL, path, NULL));
    ts_push_file(repo, path);
    if (remove)
        unlink(path);
}
