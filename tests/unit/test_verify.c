/* test_verify: the repository verifier over synthetic 1 MiB WAL segments, backup records
 * and dump records: a clean repository is ok; a flipped byte anywhere (including in a
 * frame's own content checksum only) is a corrupt object named by its path, and the walk
 * goes on; a deleted segment is a named gap; a backup's missing WAL, bad and missing
 * history files, conflicting copies are problems (a missing history file with a hint
 * saying how to archive it); temporaries and interrupted backups are warnings only; the
 * progress total is what the walk reads. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "backup.h"
#include "dump.h"
#include "verify.h"
#include "support.h"

#define SEG ((uint32_t)1 << 20)
#define SYSID UINT64_C(7212345678901234567)
#define LSN(seg, off) ((wk_lsn)(seg)*SEG + (off))

/* ---- helpers ---------------------------------------------------------------------- */

static char tmp_dir[256];
static char repo_dir[300];
static char wal_dir[300];
static char key_path[300];

static void setup(void)
{
    wk_error err = {0};
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk_verify_XXXXXX");
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo", tmp_dir);
    snprintf(wal_dir, sizeof(wal_dir), "%s/pg_wal", tmp_dir);
    snprintf(key_path, sizeof(key_path), "%s/key", tmp_dir);
    ck_assert_int_eq(mkdir(wal_dir, 0700), 0);
    ck_assert_msg(wk_key_generate_file(key_path, &err) == 0, "%s", err.message);
}

static void teardown(void)
{
    ts_tmpdir_remove(tmp_dir);
}

static wk_repo *open_repo_with(wk_compress alg, const char *key_file)
{
    return ts_repo_open(repo_dir, alg, key_file);
}

static wk_repo *open_repo(void)
{
    return open_repo_with(WK_COMPRESS_ZSTD, NULL);
}

/* A synthetic WAL segment of timeline tli (PostgreSQL 15 long page header, then
 * patterned bytes), pushed into the repository. */
static void push_segment(wk_repo *repo, uint32_t tli, uint64_t segno)
{
    ts_push_segment(repo, wal_dir, tli, segno, (unsigned)(segno * 2654435761u + tli), true);
}

static void push_history(wk_repo *repo, uint32_t tli, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%08" PRIX32 ".history", wal_dir, tli);
    ts_write_file(path, text, strlen(text));
    ts_push_file(repo, path);
    unlink(path);
}

/* Stores data at path through the repository's pipeline, bypassing every check of
 * the archiver (for objects the archiver would refuse). */
static void put_object(wk_repo *repo, const char *path, const void *data, size_t len,
                       uint64_t *stored)
{
    wk_error err = {0};
    wk_stage *sink = NULL;
    ck_assert_msg(wk_repo_put_open(repo, path, 0, NULL, NULL, stored, &sink, &err) == 0, "%s",
                  err.message);
    ck_assert_msg(wk_stage_write(sink, data, len, &err) == 0, "%s", err.message);
    ck_assert_msg(wk_stage_finish(sink, &err) == 0, "%s", err.message);
    wk_stage_free(sink);
}

/* A WAL-named object ("wal/00000003.history") stored under its fingerprinted name. */
static void put_wal_object(wk_repo *repo, const char *dir, const char *name, const char *text)
{
    wk_fingerprint fp = ts_fingerprint(text, strlen(text));
    char hex[WK_FINGERPRINT_HEX_LEN + 1], path[512];
    wk_fingerprint_hex(&fp, hex);
    snprintf(path, sizeof(path), "%s/%s-%s%s", dir, name, hex, repo->suffix);
    put_object(repo, path, text, strlen(text), NULL);
}

/* The repository path of the one object whose name starts with prefix in folder dir. */
static void find_object(const char *dir, const char *prefix, char *out, size_t size)
{
    char full[600];
    snprintf(full, sizeof(full), "%s/%s", repo_dir, dir);
    DIR *d = opendir(full);
    ck_assert_msg(d != NULL, "opendir %s: %s", full, strerror(errno));
    out[0] = '\0';
    for (struct dirent *de = readdir(d); de != NULL; de = readdir(d)) {
        size_t n = strlen(de->d_name);
        bool claim = n > 6 && strcmp(de->d_name + n - 6, "-claim") == 0;
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 && !claim) {
            ck_assert_msg(out[0] == '\0', "two objects start with %s", prefix);
            snprintf(out, size, "%s/%s", dir, de->d_name);
        }
    }
    closedir(d);
    ck_assert_msg(out[0] != '\0', "no object %s* in %s", prefix, dir);
}

static void segment_object(uint32_t tli, uint64_t segno, char *out, size_t size)
{
    char name[WK_WAL_NAME_LEN + 1], dir[64];
    wk_wal_segment_name(name, tli, segno, SEG);
    snprintf(dir, sizeof(dir), "wal/%.16s", name);
    find_object(dir, name, out, size);
}

static off_t file_size(const char *object)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", repo_dir, object);
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

/* Flips the low bit of byte `offset` of a stored object (negative: from its end). */
static void flip_byte(const char *object, off_t offset)
{
    char path[1024];
    uint8_t b;
    snprintf(path, sizeof(path), "%s/%s", repo_dir, object);
    if (offset < 0)
        offset += file_size(object);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &b, 1, offset), 1);
    b ^= 0x01;
    ck_assert_int_eq(pwrite(fd, &b, 1, offset), 1);
    close(fd);
}

static void remove_object(const char *object)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", repo_dir, object);
    ck_assert_int_eq(unlink(path), 0);
}

static void run_verify(wk_repo *repo, wk_verify_report *report)
{
    wk_error err = {0};
    ck_assert_msg(wk_verify_run(repo, report, &err) == 0, "verify: %s", err.message);
}

static const wk_verify_finding *find_finding(const wk_verify_report *r, wk_verify_kind kind,
                                             const char *object)
{
    bool warning = wk_verify_kind_is_warning(kind);
    const wk_verify_finding *list = warning ? r->warnings : r->problems;
    size_t count = warning ? r->warning_count : r->problem_count;
    for (size_t i = 0; i < count; i++)
        if (list[i].kind == kind && (object == NULL || strcmp(list[i].object, object) == 0))
            return &list[i];
    return NULL;
}

static char *describe(const wk_verify_report *r)
{
    static char text[8192];
    size_t n = 0;
    text[0] = '\0';
    for (size_t i = 0; i < r->problem_count && n < sizeof(text) - 600; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "\n  %s: %s: %s",
                              wk_verify_kind_name(r->problems[i].kind), r->problems[i].object,
                              r->problems[i].message);
    for (size_t i = 0; i < r->warning_count && n < sizeof(text) - 600; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "\n  warning %s: %s: %s",
                              wk_verify_kind_name(r->warnings[i].kind), r->warnings[i].object,
                              r->warnings[i].message);
    return text;
}

#define assert_finding(r, kind, object)                                                            \
    ck_assert_msg(find_finding((r), (kind), (object)) != NULL, "no %s finding for %s in:%s",       \
                  wk_verify_kind_name(kind), (object) != NULL ? (object) : "(any)", describe(r))

#define assert_clean(r)                                                                            \
    ck_assert_msg((r)->problem_count == 0 && (r)->warning_count == 0, "expected nothing:%s",       \
                  describe(r))

/* A backup "b1" of one stream (base.tar) and its manifest, WAL from segment 2 to 3. */
static wk_backup_record put_backup(wk_repo *repo, const char *label)
{
    wk_error err = {0};
    wk_backup_record r;
    memset(&r, 0, sizeof(r));
    snprintf(r.label, sizeof(r.label), "%s", label);
    r.start_lsn = LSN(2, 0x28);
    r.stop_lsn = LSN(3, 0x100);
    r.start_tli = r.stop_tli = 1;
    r.start_time = 1795599012;
    r.stop_time = 1795599072;
    r.pg_version = 15;
    r.system_identifier = SYSID;
    r.compress = repo->compress;
    r.encrypted = repo->key != NULL;
    r.stream_count = 2;
    r.streams = calloc(2, sizeof(*r.streams));
    ck_assert_ptr_nonnull(r.streams);
    static const char *names[2] = {"base.tar", "backup_manifest"};
    for (size_t i = 0; i < 2; i++) {
        size_t len = i == 0 ? 300000 : 777;
        uint8_t *data = malloc(len);
        ck_assert_ptr_nonnull(data);
        for (size_t j = 0; j < len; j++)
            data[j] = (uint8_t)((j * 7 + i) % 251);
        wk_backup_stream *s = &r.streams[i];
        snprintf(s->name, sizeof(s->name), "%s", names[i]);
        snprintf(s->object, sizeof(s->object), "backups/%s/%s%s", label, names[i], repo->suffix);
        put_object(repo, s->object, data, len, &s->stored_bytes);
        s->bytes = len;
        s->fingerprint = ts_fingerprint(data, len);
        r.bytes += len;
        r.stored_bytes += s->stored_bytes;
        free(data);
    }
    ck_assert_msg(wk_backup_record_write(repo, &r, &err) == 0, "%s", err.message);
    return r;
}

/* A dump "d1": two streams and dumps/d1/dump.json (written by dump.c) describing them. */
static void put_dump(wk_repo *repo, const char *label, char objects[2][256])
{
    wk_dump_stream streams[2] = {{.name = "toc.dat"}, {.name = "3456.dat"}};
    wk_dump_record r = {.format = WK_DUMP_DIRECTORY,
                        .database = "app",
                        .server_version = "15.18",
                        .start_time = 1700000000,
                        .end_time = 1700000060,
                        .compress = WK_COMPRESS_ZSTD,
                        .stream_count = 2,
                        .streams = streams};
    wk_error err = {0};
    snprintf(r.label, sizeof(r.label), "%s", label);
    for (size_t i = 0; i < 2; i++) {
        size_t len = i == 0 ? 100000 : 5;
        uint8_t *data = malloc(len);
        ck_assert_ptr_nonnull(data);
        for (size_t j = 0; j < len; j++)
            data[j] = (uint8_t)((j * 13 + i) % 241);
        snprintf(objects[i], 256, "dumps/%.40s/dir/%.40s%.16s", label, streams[i].name,
                 repo->suffix);
        snprintf(streams[i].object, sizeof(streams[i].object), "%s", objects[i]);
        put_object(repo, objects[i], data, len, &streams[i].stored_bytes);
        streams[i].bytes = len;
        streams[i].fingerprint = ts_fingerprint(data, len);
        r.bytes += len;
        r.stored_bytes += streams[i].stored_bytes;
        free(data);
    }
    ck_assert_msg(wk_dump_record_write(repo, &r, &err) == 0, "%s", err.message);
}

/* Segments 1..6 of timeline 1. */
static wk_repo *repo_with_segments(wk_compress alg, const char *key_file)
{
    wk_repo *repo = open_repo_with(alg, key_file);
    for (uint64_t s = 1; s <= 6; s++)
        push_segment(repo, 1, s);
    return repo;
}

/* ---- tests -------------------------------------------------------------------------- */

START_TEST(test_clean_repository)
{
    wk_verify_report r;
    wk_repo *repo = repo_with_segments(WK_COMPRESS_ZSTD, NULL);
    wk_backup_record b = put_backup(repo, "b1");
    char dump_objects[2][256];
    put_dump(repo, "d1", dump_objects);
    run_verify(repo, &r);
    assert_clean(&r);
    ck_assert_uint_eq(r.objects, 6 + 2 + 2);
    ck_assert_uint_gt(r.bytes, 0);
    ck_assert_uint_eq(r.gap_count, 0);
    wk_verify_report_free(&r);
    wk_verify_report_free(&r); /* twice is harmless */
    wk_backup_record_free(&b);
    wk_repo_free(repo);
}
END_TEST

/* Progress: every call has the total the listing predicted, and the last one is the
 * end (done == total). */
typedef struct progress_log {
    size_t calls;
    uint64_t first_total, last_done, last_total, max_done;
    bool total_changed;
} progress_log;

static void log_progress(uint64_t done, uint64_t total, void *arg)
{
    progress_log *l = arg;
    if (l->calls++ == 0)
        l->first_total = total;
    else if (total != l->first_total && done != total)
        l->total_changed = true;
    if (done > l->max_done)
        l->max_done = done;
    l->last_done = done;
    l->last_total = total;
}

static void check_progress(const char *key_file)
{
    wk_error err = {0};
    wk_verify_report r;
    progress_log log = {0};
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo-%s", tmp_dir, key_file ? "key" : "plain");
    wk_repo *repo = repo_with_segments(WK_COMPRESS_LZ4, key_file);
    push_history(repo, 2, "1\t0/7000000\tno recovery target specified\n");
    push_segment(repo, 2, 7);
    wk_backup_record b = put_backup(repo, "b1");
    char dump_objects[2][256];
    put_dump(repo, "d1", dump_objects);
    ck_assert_msg(wk_verify_run_progress(repo, log_progress, &log, &r, &err) == 0, "%s",
                  err.message);
    assert_clean(&r);
    ck_assert_uint_gt(log.calls, 1);
    /* The listing predicted exactly what was read (claims and records left out). */
    ck_assert_uint_eq(log.first_total, r.bytes);
    ck_assert(!log.total_changed);
    ck_assert_uint_eq(log.last_done, r.bytes);
    ck_assert_uint_eq(log.last_total, r.bytes);
    wk_verify_report_free(&r);

    /* A file the walk does not read (a stray one) made the total too high: the last
     * call still says done == total. */
    char path[600];
    snprintf(path, sizeof(path), "%s/backups/b1/notes.txt", repo_dir);
    ts_write_file(path, "some notes", 10);
    memset(&log, 0, sizeof(log));
    ck_assert_int_eq(wk_verify_run_progress(repo, log_progress, &log, &r, &err), 0);
    ck_assert_uint_eq(log.first_total, r.bytes + 10);
    ck_assert_uint_eq(log.last_done, r.bytes);
    ck_assert_uint_eq(log.last_total, r.bytes);
    wk_verify_report_free(&r);
    wk_backup_record_free(&b);
    wk_repo_free(repo);
}

START_TEST(test_progress_total)
{
    check_progress(NULL);
    check_progress(key_path); /* keys/ and the records' MACs are not read as objects */
}
END_TEST

START_TEST(test_empty_repository)
{
    wk_error err = {0};
    wk_verify_report r;
    wk_repo *repo = open_repo();
    /* Not initialised: an error, not a report. */
    ck_assert_int_eq(wk_verify_run(repo, &r, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    wk_verify_report_free(&r);
    /* Initialised with nothing in it: all is well. */
    wk_repo_meta id = {.system_identifier = SYSID, .seg_size = SEG, .pg_version = 15};
    wk_repo_meta meta;
    ck_assert_int_eq(wk_repo_open_meta(repo, &id, &meta, NULL, &err), 0);
    run_verify(repo, &r);
    assert_clean(&r);
    ck_assert_uint_eq(r.objects, 0);
    wk_verify_report_free(&r);
    wk_repo_free(repo);
}
END_TEST

/* A flipped byte in the middle of each kind of object, for each codec. */
static void flip_each(wk_compress alg, const char *key_file)
{
    wk_verify_report r;
    wk_repo *repo = repo_with_segments(alg, key_file);
    wk_backup_record b = put_backup(repo, "b1");
    char dump_objects[2][256], seg[512];
    put_dump(repo, "d1", dump_objects);
    segment_object(1, 3, seg, sizeof(seg));
    flip_byte(seg, file_size(seg) / 2);
    flip_byte(b.streams[0].object, file_size(b.streams[0].object) / 2);
    flip_byte(dump_objects[0], file_size(dump_objects[0]) / 2);
    run_verify(repo, &r);
    assert_finding(&r, WK_VERIFY_CORRUPT, seg);
    assert_finding(&r, WK_VERIFY_CORRUPT, b.streams[0].object);
    assert_finding(&r, WK_VERIFY_CORRUPT, dump_objects[0]);
    ck_assert_msg(r.problem_count == 3, "exactly the three objects:%s", describe(&r));
    ck_assert_uint_eq(r.warning_count, 0);
    /* The walk went on past each corrupt object. */
    ck_assert_uint_eq(r.objects, 6 + 2 + 2);
    ck_assert_uint_eq(r.gap_count, 0);
    wk_verify_report_free(&r);
    wk_backup_record_free(&b);
    wk_repo_free(repo);
}

START_TEST(test_flipped_byte_zstd)
{
    flip_each(WK_COMPRESS_ZSTD, NULL);
}
END_TEST

START_TEST(test_flipped_byte_lz4)
{
    flip_each(WK_COMPRESS_LZ4, NULL);
}
END_TEST

START_TEST(test_flipped_byte_none)
{
    flip_each(WK_COMPRESS_NONE, NULL);
}
END_TEST

START_TEST(test_flipped_byte_encrypted)
{
    flip_each(WK_COMPRESS_LZ4, key_path);
}
END_TEST

/* The frame's own content checksum damaged, the data intact: a restore (which checks
 * the stronger fingerprint) would pass it, verify must not. */
START_TEST(test_content_checksum_only)
{
    wk_verify_report r;
    char seg2[512], seg5[512];
    wk_repo *repo = repo_with_segments(WK_COMPRESS_LZ4, NULL);
    segment_object(1, 2, seg2, sizeof(seg2));
    segment_object(1, 5, seg5, sizeof(seg5));
    flip_byte(seg2, -1); /* lz4: last byte of the XXH32 content checksum */
    remove_object(seg5);
    run_verify(repo, &r);
    assert_finding(&r, WK_VERIFY_CORRUPT, seg2);
    assert_finding(&r, WK_VERIFY_GAP, "000000010000000000000005");
    ck_assert_uint_eq(r.problem_count, 2);
    wk_verify_report_free(&r);
    wk_repo_free(repo);

    /* The same for a zstd frame (XXH64 checksum in its last 4 bytes). */
    teardown();
    setup();
    repo = repo_with_segments(WK_COMPRESS_ZSTD, NULL);
    segment_object(1, 2, seg2, sizeof(seg2));
    flip_byte(seg2, -2);
    run_verify(repo, &r);
    assert_finding(&r, WK_VERIFY_CORRUPT, seg2);
    ck_assert_uint_eq(r.problem_count, 1);
    wk_verify_report_free(&r);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_gap_named)
{
    wk_verify_report r;
    char seg[512];
    wk_repo *repo = repo_with_segments(WK_COMPRESS_ZSTD, NULL);
    segment_object(1, 4, seg, sizeof(seg));
    remove_object(seg);
    run_verify(repo, &r);
    assert_finding(&r, WK_VERIFY_GAP, "000000010000000000000004");
    ck_assert_msg(r.problem_count == 1, "only the gap:%s", describe(&r));
    ck_assert_uint_eq(r.gap_count, 1);
    ck_assert_uint_eq(r.gaps[0].tli, 1);
    ck_assert_uint_eq(r.gaps[0].missing, 1);
    ck_assert_uint_eq(r.gaps[0].listed, 1);
    ck_assert_str_eq(r.gaps[0].names[0], "000000010000000000000004");
    ck_assert_uint_eq(r.objects, 5);
    wk_verify_report_free(&r);

    /* Two more in a row: one finding for the range, every name listed. */
    segment_object(1, 2, seg, sizeof(seg));
    remove_object(seg);
    segment_object(1, 3, seg, sizeof(seg));
    remove_object(seg);
    run_verify(repo, &r);
    ck_assert_uint_eq(r.problem_count, 1);
    assert_finding(&r, WK_VERIFY_GAP, "000000010000000000000002");
    ck_assert_uint_eq(r.gaps[0].missing, 3);
    ck_assert_str_eq(r.gaps[0].names[2], "000000010000000000000004");
    wk_verify_report_free(&r);

    /* The ends of a timeline are not gaps. */
    segment_object(1, 1, seg, sizeof(seg));
    remove_object(seg);
    segment_object(1, 5, seg, sizeof(seg));
    remove_object(seg);
    segment_object(1, 6, seg, sizeof(seg));
    remove_object(seg);
    run_verify(repo, &r);
    assert_clean(&r);
    wk_verify_report_free(&r);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_backup_wal_missing)
{
    wk_verify_report r;
    char seg[512];
    wk_repo *repo = open_repo();
    /* The backup needs segments 2 and 3; only 1 and 2 are there: 3 is no gap (it is after
     * the last), but the backup misses it. */
    push_segment(repo, 1, 1);
    push_segment(repo, 1, 2);
    wk_backup_record b = put_backup(repo, "b1");
    run_verify(repo, &r);
    assert_finding(&r, WK_VERIFY_MISSING_WAL, "000000010000000000000003");
    ck_assert_msg(r.problem_count == 1, "only the backup's WAL:%s", describe(&r));
    ck_assert_uint_eq(r.gap_count, 0);
    wk_verify_report_free(&r);

    push_segment(repo, 1, 3);
    run_verify(repo, &r);
    assert_clean(&r);
    wk_verify_report_free(&r);

    /* Its stream object deleted: missing, named. */
    remove_object(b.streams[1].object);
    segment_object(1, 2, seg, sizeof(seg));
    remove_object(seg);
    push_segment(repo, 1, 4);
    run_verify(repo, &r);
    assert_finding(&r, WK_VERIFY_MISSING, b.streams[1].object);
    assert_finding(&r, WK_VERIFY_MISSING_WAL, "000000010000000000000002");
    assert_finding(&r, WK_VERIFY_GAP, "000000010000000000000002");
    ck_assert_uint_eq(r.problem_count, 3);
    wk_verify_report_free(&r);
    wk_backup_record_free(&b);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_backup_record_mismatch)
{
    wk_error err = {0};
    wk_verify_report r;
    wk_repo *repo = repo_with_segments(WK_COMPRESS_ZSTD, NULL);
    wk_backup_record b = put_backup(repo, "b1");
    /* The same objects under a record that says other sizes / another fingerprint. */
    snprintf(b.label, sizeof(b.label), "b2");
    b.streams[0].bytes += 1;
    b.streams[1].fingerprint.bytes[3] ^= 0xFF;
    ck_assert_int_eq(wk_backup_record_write(repo, &b, &err), 0);
    run_verify(repo, &r);
    /* base.tar of b1 is named by both records: b2's sizes are wrong, b1's right. */
    ck_assert_msg(r.problem_count == 2, "%s", describe(&r));
    assert_finding(&r, WK_VERIFY_CORRUPT, b.streams[0].object);
    assert_finding(&r, WK_VERIFY_CORRUPT, b.streams[1].object);
    ck_assert_ptr_nonnull(
        strstr(find_finding(&r, WK_VERIFY_CORRUPT, b.streams[1].object)->message, "fingerprint"));
    wk_verify_report_free(&r);

    /* An unreadable record is a problem; the rest is still verified. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/backups/b2/backup.json", repo_dir);
    ts_write_file(path, "{ not json", 10);
    run_verify(repo, &r);
    assert_finding(&r, WK_VERIFY_RECORD, "backups/b2/backup.json");
    ck_assert_msg(r.problem_count == 1, "%s", describe(&r));
    ck_assert_uint_eq(r.objects, 6 + 2);
    wk_verify_report_free(&r);
    wk_backup_record_free(&b);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_warnings_only)
{
    wk_verify_report r;
    wk_repo *repo = repo_with_segments(WK_COMPRESS_ZSTD, NULL);
    wk_backup_record b = put_backup(repo, "b1");
    char path[1024], seg[512];
    /* A killed write's temporaries, in a wal/ folder and in a backup folder. */
    segment_object(1, 2, seg, sizeof(seg));
    snprintf(path, sizeof(path), "%s/wal/0000000100000000/.000000010000000000000007.tmp.123.0",
             repo_dir);
    ts_write_file(path, "partial", 7);
    snprintf(path, sizeof(path), "%s/backups/b1/.base.tar.zst.tmp.99.3", repo_dir);
    ts_write_file(path, "x", 1);
    /* An interrupted backup and an interrupted dump: folders without records. */
    uint8_t data[100] = {0};
    put_object(repo, "backups/killed/base.tar.zst", data, sizeof(data), NULL);
    put_object(repo, "dumps/killed/part0.dat.zst", data, sizeof(data), NULL);
    run_verify(repo, &r);
    ck_assert_msg(r.problem_count == 0, "warnings only:%s", describe(&r));
    assert_finding(&r, WK_VERIFY_TEMPORARY,
                   "wal/0000000100000000/.000000010000000000000007.tmp.123.0");
    assert_finding(&r, WK_VERIFY_TEMPORARY, "backups/b1/.base.tar.zst.tmp.99.3");
    assert_finding(&r, WK_VERIFY_INCOMPLETE, "backups/killed");
    assert_finding(&r, WK_VERIFY_INCOMPLETE, "dumps/killed");
    ck_assert_uint_eq(r.warning_count, 4);
    wk_verify_report_free(&r);
    /* Nothing was deleted. */
    ck_assert_int_eq(access(path, F_OK), 0);
    /* A stray file beside the objects: a warning too. */
    snprintf(path, sizeof(path), "%s/wal/0000000100000000/notes.txt", repo_dir);
    ts_write_file(path, "hello", 5);
    run_verify(repo, &r);
    ck_assert_uint_eq(r.problem_count, 0);
    assert_finding(&r, WK_VERIFY_UNEXPECTED, "wal/0000000100000000/notes.txt");
    wk_verify_report_free(&r);
    wk_backup_record_free(&b);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_history_good)
{
    wk_verify_report r;
    wk_repo *repo = repo_with_segments(WK_COMPRESS_ZSTD, NULL);
    push_history(repo, 2, "1\t0/5000000\tno recovery target specified\n");
    push_segment(repo, 2, 5);
    push_segment(repo, 2, 6);
    push_history(repo, 3,
                 "1\t0/5000000\tno recovery target specified\n"
                 "2\t0/6800000\tno recovery target specified\n");
    push_segment(repo, 3, 6);
    run_verify(repo, &r);
    assert_clean(&r);
    ck_assert_uint_eq(r.objects, 6 + 2 + 1 + 2);
    wk_verify_report_free(&r);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_history_problems)
{
    wk_verify_report r;
    wk_repo *repo = repo_with_segments(WK_COMPRESS_ZSTD, NULL);
    /* Timeline 2 has segments but no history file. */
    push_segment(repo, 2, 5);
    /* Timeline 3's history file does not parse (a parent above it). */
    put_wal_object(repo, "wal", "00000003.history", "4\t0/5000000\tbad\n");
    /* Timeline 4's history file disagrees with timeline 5's (5 says 4 came from 1 at
     * another point). */
    push_history(repo, 4, "1\t0/5000000\tno recovery target specified\n");
    push_history(repo, 5,
                 "1\t0/5800000\tno recovery target specified\n"
                 "4\t0/6000000\tno recovery target specified\n");
    /* Timeline 6's history file names no parent at all. */
    put_wal_object(repo, "wal", "00000006.history", "# nothing\n");
    run_verify(repo, &r);
    assert_finding(&r, WK_VERIFY_HISTORY, "00000002.history");
    /* The missing one says how to get it: from the server's pg_wal. */
    const wk_verify_finding *f = find_finding(&r, WK_VERIFY_HISTORY, "00000002.history");
    ck_assert_str_eq(f->message, "timeline 2 has 1 WAL segments, but its history file is not "
                                 "archived: a restore cannot follow timeline 2");
    ck_assert_ptr_nonnull(f->hint);
    ck_assert_msg(strstr(f->hint, "walkeep-archive --config FILE "
                                  "$PGDATA/pg_wal/00000002.history") != NULL,
                  "%s", f->hint);
    ck_assert_ptr_null(find_finding(&r, WK_VERIFY_HISTORY, "00000006.history")->hint);
    char obj[512];
    find_object("wal", "00000003.history-", obj, sizeof(obj));
    assert_finding(&r, WK_VERIFY_HISTORY, obj);
    assert_finding(&r, WK_VERIFY_HISTORY, "00000005.history");
    assert_finding(&r, WK_VERIFY_HISTORY, "00000006.history");
    ck_assert_msg(r.problem_count == 4, "%s", describe(&r));
    wk_verify_report_free(&r);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_conflict_and_bad_segment)
{
    wk_verify_report r;
    wk_repo *repo = repo_with_segments(WK_COMPRESS_ZSTD, NULL);
    /* A second object claiming segment 2, with other content (its fingerprint is right
     * for what it holds, but that is no WAL segment). */
    put_wal_object(repo, "wal/0000000100000000", "000000010000000000000002", "not a segment");
    run_verify(repo, &r);
    assert_finding(&r, WK_VERIFY_CONFLICT, "000000010000000000000002");
    /* and the impostor is no segment */
    ck_assert_msg(r.problem_count == 2, "%s", describe(&r));
    wk_verify_report_free(&r);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_corrupt_history_object)
{
    wk_verify_report r;
    char obj[512];
    wk_repo *repo = repo_with_segments(WK_COMPRESS_ZSTD, NULL);
    push_history(repo, 2, "1\t0/5000000\tno recovery target specified\n");
    push_segment(repo, 2, 5);
    find_object("wal", "00000002.history-", obj, sizeof(obj));
    flip_byte(obj, file_size(obj) / 2);
    run_verify(repo, &r);
    assert_finding(&r, WK_VERIFY_CORRUPT, obj);
    /* Unreadable, but present: no "missing history" besides. */
    ck_assert_msg(r.problem_count == 1, "%s", describe(&r));
    wk_verify_report_free(&r);
    wk_repo_free(repo);
}
END_TEST

/* Time indexes: a segment archived before them gets its index (and keeps decoding, also
 * encrypted); an index in a name that its records contradict is a problem. */
START_TEST(test_time_index)
{
    static const char *const keys[] = {NULL, "key"};
    for (size_t k = 0; k < 2; k++) {
        wk_repo *repo = open_repo_with(WK_COMPRESS_LZ4, keys[k] != NULL ? key_path : NULL);
        ts_wal_record recs[] = {
            {TS_WAL_COMMIT, 0, 7, 1000, NULL, 0},
            {TS_WAL_RESTORE_POINT, 0, 0, 1001, "p", 0},
        };
        uint8_t *wal = ts_wal_build(1, 1, 2, recs, 2);
        char path[512], dir[400];
        for (size_t i = 0; i < 2; i++) {
            ts_wal_write_segment(wal_dir, wal, 1, 1, i, path);
            ts_push_file(repo, path);
        }
        free(wal);
        /* Segment 1's name loses its index (as archived before), segment 2's gets a wrong one. */
        snprintf(dir, sizeof(dir), "%s/wal/0000000100000000", repo_dir);
        DIR *d = opendir(dir);
        ck_assert_ptr_nonnull(d);
        char one[300] = "", two[300] = "";
        for (struct dirent *de = readdir(d); de != NULL; de = readdir(d)) {
            if (strstr(de->d_name, "-claim") != NULL || de->d_name[0] == '.')
                continue;
            if (strncmp(de->d_name, "000000010000000000000001-", 25) == 0)
                snprintf(one, sizeof(one), "%s", de->d_name);
            if (strncmp(de->d_name, "000000010000000000000002-", 25) == 0)
                snprintf(two, sizeof(two), "%s", de->d_name);
        }
        closedir(d);
        ck_assert_msg(strstr(one, ".i_t") != NULL, "%s", one);
        ck_assert_msg(strstr(two, ".i.lz4") != NULL, "%s", two);
        char from[800], to[800];
        snprintf(from, sizeof(from), "%s/%s", dir, one);
        snprintf(to, sizeof(to), "%s/%.57s.lz4%s", dir, one, keys[k] != NULL ? ".enc" : "");
        ck_assert_int_eq(rename(from, to), 0);
        snprintf(from, sizeof(from), "%s/%s", dir, two);
        snprintf(to, sizeof(to), "%s/%.57s.i_p1.lz4%s", dir, two, keys[k] != NULL ? ".enc" : "");
        ck_assert_int_eq(rename(from, to), 0);

        wk_verify_report r;
        run_verify(repo, &r);
        ck_assert_uint_eq(r.indexed, 1);
        ck_assert_uint_eq(r.problem_count, 1);
        ck_assert_msg(strstr(r.problems[0].message, "time index in its name does not match") !=
                          NULL,
                      "%s", r.problems[0].message);
        wk_verify_report_free(&r);
        snprintf(from, sizeof(from), "%s/%s", dir, one);
        ck_assert_int_eq(access(from, F_OK), 0); /* the indexed name is back */
        /* Once given, nothing more to give; the object still reads. */
        run_verify(repo, &r);
        ck_assert_uint_eq(r.indexed, 0);
        ck_assert_uint_eq(r.problem_count, 1);
        wk_verify_report_free(&r);
        wk_error err = {0};
        wk_fetch_result fr;
        snprintf(to, sizeof(to), "%s/fetched", tmp_dir);
        ck_assert_msg(wk_archive_fetch(repo, "000000010000000000000001", to, 0, &fr, &err) == 0,
                      "%s", err.message);
        wk_repo_free(repo);
        ts_tmpdir_remove(repo_dir);
    }
}
END_TEST

static Suite *verify_suite(void)
{
    Suite *s = suite_create("verify");
    TCase *tc = tcase_create("verify");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_clean_repository);
    tcase_add_test(tc, test_empty_repository);
    tcase_add_test(tc, test_progress_total);
    tcase_add_test(tc, test_flipped_byte_zstd);
    tcase_add_test(tc, test_flipped_byte_lz4);
    tcase_add_test(tc, test_flipped_byte_none);
    tcase_add_test(tc, test_flipped_byte_encrypted);
    tcase_add_test(tc, test_content_checksum_only);
    tcase_add_test(tc, test_gap_named);
    tcase_add_test(tc, test_backup_wal_missing);
    tcase_add_test(tc, test_backup_record_mismatch);
    tcase_add_test(tc, test_warnings_only);
    tcase_add_test(tc, test_history_good);
    tcase_add_test(tc, test_history_problems);
    tcase_add_test(tc, test_conflict_and_bad_segment);
    tcase_add_test(tc, test_corrupt_history_object);
    tcase_add_test(tc, test_time_index);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(verify_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
