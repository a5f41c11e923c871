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

/* ---- synthetic WAL records --------------------------------------------------------- */

static uint32_t ts_crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n-- > 0) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return crc;
}

typedef struct ts_wal_writer {
    uint8_t *buf;
    uint64_t start, end; /* WAL positions the buffer covers */
    uint64_t pos;
    uint32_t tli;
} ts_wal_writer;

/* The page header at w->pos (a page's start); rem: bytes of a record continued on it. */
static void ts_wal_page_header(ts_wal_writer *w, uint32_t rem)
{
    bool is_long = w->pos % TS_SEG == 0;
    uint8_t *h = w->buf + (w->pos - w->start);
    ts_wal_header(h, 0xD110, (uint16_t)((is_long ? 0x0002 : 0) | (rem > 0 ? 0x0001 : 0)), w->tli,
                  w->pos, TS_SYSID, TS_SEG, 8192);
    ts_put32(h, 16, rem);
    if (!is_long)
        memset(h + 24, 0, 16);
    w->pos += is_long ? 40 : 24;
}

/* Writes len bytes of a record at w->pos, page headers included; rem is what is left of
 * the record from the first byte on (for xlp_rem_len). */
static void ts_wal_put(ts_wal_writer *w, const uint8_t *p, size_t len, uint32_t rem)
{
    while (len > 0) {
        if (w->pos >= w->end) /* not ck_assert: each of those reports to the runner */
            ck_abort_msg("synthetic WAL longer than its segments");
        uint64_t in_page = w->pos % 8192;
        if (in_page == 0) {
            ts_wal_page_header(w, rem);
            continue;
        }
        size_t n = 8192 - in_page < len ? 8192 - in_page : len;
        memcpy(w->buf + (w->pos - w->start), p, n);
        w->pos += n;
        p += n;
        len -= n;
        rem -= (uint32_t)n;
    }
}

/* One record (rec: its bytes, header fields but xl_tot_len, xl_prev and xl_crc set). */
static uint64_t ts_wal_emit(ts_wal_writer *w, uint8_t *rec, uint32_t tot, uint64_t *prev)
{
    static const uint8_t zero[8];
    if (w->pos % 8192 == 0)
        ts_wal_page_header(w, 0);
    uint64_t lsn = w->pos;
    ts_put32(rec, 0, tot);
    ts_put64(rec, 8, *prev);
    uint32_t crc = ts_crc32c(0xFFFFFFFFu, rec + 24, tot - 24);
    ts_put32(rec, 20, ts_crc32c(crc, rec, 20) ^ 0xFFFFFFFFu);
    ts_wal_put(w, rec, tot, tot);
    *prev = lsn;
    if (rec[17] == 0 && rec[16] == 0x40) /* a switch: the segment's rest is unused */
        w->pos = (w->pos + TS_SEG - 1) / TS_SEG * TS_SEG;
    else
        ts_wal_put(w, zero, (8 - w->pos % 8) % 8, 0);
    return lsn;
}

uint8_t *ts_wal_build(uint32_t tli, uint64_t first_segno, size_t count, ts_wal_record *records,
                      size_t n)
{
    ts_wal_writer w = {.tli = tli, .start = first_segno * TS_SEG};
    w.end = w.start + count * TS_SEG;
    w.pos = w.start;
    w.buf = calloc(count, TS_SEG);
    ck_assert_ptr_nonnull(w.buf);
    uint64_t prev = 0;
    static uint8_t rec[100 + 65536];
    for (size_t i = 0; i < n; i++) {
        ts_wal_record *r = &records[i];
        uint32_t data = 0;
        memset(rec, 0, 24 + 80);
        uint8_t *d = rec + 24;
        if (r->kind == TS_WAL_SKIP_TO) {
            /* Heap records of up to 4000 bytes until the position is near. */
            r->lsn = w.pos;
            while (w.pos + 4100 < r->size) {
                memset(rec, 0, 24);
                rec[17] = 10;
                d[0] = 254;
                ts_put32(d, 1, 4000);
                memset(d + 5, 0x5A, 4000);
                ts_wal_emit(&w, rec, 24 + 5 + 4000, &prev);
            }
            continue;
        }
        switch (r->kind) {
        case TS_WAL_FILLER:
            if (r->size > 65536)
                ck_abort_msg("a filler record holds at most 65536 bytes");
            d[0] = 254;
            ts_put32(d, 1, r->size);
            memset(d + 5, 0x5A, r->size);
            data = 5 + r->size;
            rec[17] = 10;
            break;
        case TS_WAL_COMMIT:
        case TS_WAL_ABORT:
            d[0] = 255;
            d[1] = 8;
            ts_put64(d, 2, (uint64_t)r->time);
            data = 10;
            rec[17] = 1;
            rec[16] = r->kind == TS_WAL_COMMIT ? 0x00 : 0x20;
            ts_put32(rec, 4, r->xid);
            break;
        case TS_WAL_RESTORE_POINT:
            d[0] = 255;
            d[1] = 72;
            ts_put64(d, 2, (uint64_t)r->time);
            snprintf((char *)d + 10, 64, "%s", r->name);
            data = 74;
            rec[17] = 0;
            rec[16] = 0x70;
            break;
        case TS_WAL_SWITCH:
            rec[17] = 0;
            rec[16] = 0x40;
            break;
        case TS_WAL_SKIP_TO:
            break;
        }
        r->lsn = ts_wal_emit(&w, rec, 24 + data, &prev);
    }
    /* Page headers on the rest of the pages, as PostgreSQL initialises them. */
    for (uint64_t page = (w.pos + 8191) / 8192 * 8192; page < w.end; page += 8192) {
        w.pos = page;
        ts_wal_page_header(&w, 0);
    }
    return w.buf;
}

size_t ts_wal_commit_record(uint8_t *rec, uint32_t xid, int64_t time, uint64_t prev)
{
    memset(rec, 0, 40);
    ts_put32(rec, 0, 34);
    ts_put32(rec, 4, xid);
    ts_put64(rec, 8, prev);
    rec[17] = 1;
    rec[24] = 255;
    rec[25] = 8;
    ts_put64(rec, 26, (uint64_t)time);
    uint32_t crc = ts_crc32c(0xFFFFFFFFu, rec + 24, 10);
    ts_put32(rec, 20, ts_crc32c(crc, rec, 20) ^ 0xFFFFFFFFu);
    return 34;
}

void ts_wal_write_segment(const char *dir, const uint8_t *wal, uint32_t tli, uint64_t first_segno,
                          size_t i, char *path)
{
    char name[WK_WAL_NAME_LEN + 1];
    wk_wal_segment_name(name, tli, first_segno + i, TS_SEG);
    ck_assert_int_lt(snprintf(path, 512, "%s/%s", dir, name), 512);
    ts_write_file(path, wal + i * TS_SEG, TS_SEG);
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
