/* support.h: helpers shared by the Check unit tests in tests/unit/test_*.c (temporary
 * folders, whole files, patterned bytes, synthetic WAL segments, repositories). */
#ifndef WALKEEP_TEST_SUPPORT_H
#define WALKEEP_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive.h"
#include "repo.h"
#include "stream.h"
#include "wal.h"

/* The synthetic cluster: 1 MiB segments, PostgreSQL 15, this system identifier. */
#define TS_SEG ((uint32_t)1 << 20)
#define TS_SYSID UINT64_C(7212345678901234567)

/* ---- folders and files ------------------------------------------------------------ */

/* Makes a fresh folder from template (a path ending in "XXXXXX", as for mkdtemp) and
 * copies its name into dir (size bytes); fails the test when it cannot. */
void ts_tmpdir_make(char *dir, size_t size, const char *template);

/* Removes dir and everything below it without following symbolic links; folders are
 * made writable (0700) before they are removed. Returns nftw's result (0 on success). */
int ts_tmpdir_remove(const char *dir);

/* Writes len bytes of data to path (created with mode 0644 before the umask, or
 * truncated); fails the test on any error. */
void ts_write_file(const char *path, const void *data, size_t len);

/* Writes the text to path as ts_write_file does. */
void ts_write_text(const char *path, const char *text);

/* Reads the whole file at path into a malloc'd buffer with a NUL byte after the
 * contents; *len_out (when not NULL) gets the size. Fails the test when it cannot. */
char *ts_read_file(const char *path, size_t *len_out);

/* Whether something (anything, a dangling symbolic link too) is at path: lstat. */
bool ts_path_exists(const char *path);

/* Entries of a folder other than "." and ".." (not recursive); 0 when it is missing. */
int ts_count_entries(const char *dir);

/* Regular files (and other non-folders) anywhere below dir, recursively, not following
 * symbolic links; 0 when it is missing. */
int ts_count_files_under(const char *dir);

/* ---- bytes ------------------------------------------------------------------------ */

/* Fills buf with len bytes of the test generator started at state:
 * x = x * 1103515245 + 12345, each byte the bits 16..23 of x. */
void ts_fill_lcg(void *buf, size_t len, unsigned state);

/* Fills buf with len patterned bytes of seed (the generator at seed * 2654435761 + 7). */
void ts_fill_pattern(void *buf, size_t len, unsigned seed);

/* A malloc'd buffer (at least 1 byte) of len patterned bytes of seed (the generator at
 * seed * 2654435761 + 1); fails the test when out of memory. */
unsigned char *ts_pattern(size_t len, unsigned seed);

/* The fingerprint of data (XXH3-128, canonical bytes), computed by xxhash directly,
 * independently of the stream stages. */
wk_fingerprint ts_fingerprint(const void *data, size_t len);

/* ---- WAL -------------------------------------------------------------------------- */

/* Stores v little-endian-as-the-host at byte off of buf (16, 32 and 64 bits). */
void ts_put16(uint8_t *buf, size_t off, uint16_t v);
void ts_put32(uint8_t *buf, size_t off, uint32_t v);
void ts_put64(uint8_t *buf, size_t off, uint64_t v);

/* Lays a PostgreSQL long page header over the first WK_WAL_LONG_HEADER_SIZE bytes of buf:
 * zeroes, then magic at 0, xlp_info at 2, tli at 4, pageaddr at 8, sysid at 24,
 * seg_size at 32 and blcksz at 36 (x86-64 layout). */
void ts_wal_header(uint8_t *buf, uint16_t magic, uint16_t info, uint32_t tli, uint64_t pageaddr,
                   uint64_t sysid, uint32_t seg_size, uint32_t blcksz);

/* What ts_make_segment writes; a zero field takes the default said beside it. */
typedef struct ts_segment {
    uint32_t tli;        /* timeline in the file name (0: 1) */
    uint64_t segno;      /* segment number in the file name */
    uint32_t header_tli; /* timeline in the header (0: tli) */
    bool set_pageaddr;   /* false: pageaddr is segno * TS_SEG */
    uint64_t pageaddr;   /* the header's xlp_pageaddr when set_pageaddr */
    uint64_t sysid;      /* 0: TS_SYSID */
    size_t size;         /* bytes of the file (0: TS_SEG); no header below 40 bytes */
    unsigned state;      /* ts_fill_lcg state of the bytes after the header */
    const char *suffix;  /* appended to the name (".partial"), NULL for none */
} ts_segment;

/* A synthetic 1 MiB-segment WAL file: patterned bytes with a PostgreSQL 15 long page
 * header (magic 0xD110, xlp_info 0x0002, seg_size TS_SEG, blcksz 8192) written into dir
 * under its WAL name. name (64 bytes) and path (512 bytes) get its name and path when
 * not NULL. Returns the bytes (malloc'd, the caller frees them); *len_out (when not
 * NULL) gets their count. */
uint8_t *ts_make_segment(const char *dir, const ts_segment *spec, char *name, char *path,
                         size_t *len_out);

/* One record of a synthetic WAL stream (ts_wal_build). */
typedef enum ts_wal_kind {
    TS_WAL_FILLER,        /* a heap record of `size` bytes of data */
    TS_WAL_COMMIT,        /* xid, time */
    TS_WAL_ABORT,         /* xid, time */
    TS_WAL_RESTORE_POINT, /* name, time */
    TS_WAL_SWITCH,        /* the rest of the segment is unused */
    TS_WAL_SKIP_TO        /* no record: the next one starts at WAL position `size` */
} ts_wal_kind;

typedef struct ts_wal_record {
    ts_wal_kind kind;
    uint32_t size;
    uint32_t xid;
    int64_t time; /* PostgreSQL time */
    const char *name;
    uint64_t lsn; /* filled in: where the record starts */
} ts_wal_record;

/* Writes records as PostgreSQL 15 does (pages with headers, records continued across
 * pages and segments, CRC-32C, xl_prev) from the start of segment first_segno of TS_SEG
 * bytes, over count segments (zeroes after the last record; malloc'd, count * TS_SEG
 * bytes). Each record's lsn is filled in. */
uint8_t *ts_wal_build(uint32_t tli, uint64_t first_segno, size_t count, ts_wal_record *records,
                      size_t n);

/* Writes a commit record of xid at time with xl_prev prev into rec (at least 40 bytes),
 * CRC and all; returns its length (34). */
size_t ts_wal_commit_record(uint8_t *rec, uint32_t xid, int64_t time, uint64_t prev);

/* Writes segment i of a ts_wal_build result into dir under its WAL name (path: 512 bytes). */
void ts_wal_write_segment(const char *dir, const uint8_t *wal, uint32_t tli, uint64_t first_segno,
                          size_t i, char *path);

/* ---- storage ---------------------------------------------------------------------- */

/* Stores len bytes at path through a storage writer, in writes of `chunk` bytes (0: one
 * write; an empty object gets one empty write), and finishes it. Returns 0, or -1 with
 * err filled; never fails the test itself. */
int ts_storage_put(wk_storage *st, const char *path, const void *data, size_t len, size_t chunk,
                   int flags, wk_error *err);

/* ---- repositories ----------------------------------------------------------------- */

/* Opens (creating when missing) the repository at repo_dir with compression alg at
 * its default level and an optional key file (NULL: none); fails the test otherwise. */
wk_repo *ts_repo_open(const char *repo_dir, wk_compress alg, const char *key_file);

/* Gives an opened repository the synthetic cluster's identity (TS_SYSID, PostgreSQL
 * 15, TS_SEG) through wk_repo_open_meta; fails the test otherwise. */
void ts_repo_identify(wk_repo *repo);

/* Pushes the file at path through the archive worker; fails the test with the error
 * (message and detail) when it is refused. */
void ts_push_file(wk_repo *repo, const char *path);

/* Writes a default segment of timeline tli and number segno (bytes after the header from
 * ts_fill_lcg(state)) into wal_dir, pushes it, and removes the file afterwards when
 * remove is true. */
void ts_push_segment(wk_repo *repo, const char *wal_dir, uint32_t tli, uint64_t segno,
                     unsigned state, bool remove);

#endif
