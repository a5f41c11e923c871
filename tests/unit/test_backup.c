/* test_backup: the parts of the backup module that need no server: times as records and
 * recovery_target_time write them, the JSON record (every field round-trips, written
 * once, every kind of damage refused as corrupt), and the listing (order, folders
 * without a record, whether the WAL that ends a backup is archived). Taking a backup
 * needs a live PostgreSQL and is covered by the integration tests. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "backup.h"
#include "support.h"
#include "record.h"

#define SEG ((uint32_t)1 << 20)
#define SYSID UINT64_C(7212345678901234567)
/* An LSN `off` bytes into 1 MiB segment `seg`. */
#define LSN(seg, off) ((wk_lsn)(seg)*SEG + (off))

/* ---- helpers ---------------------------------------------------------------------- */

static char tmp_dir[256];  /* made per test, removed afterwards */
static char repo_dir[300]; /* tmp_dir/repo */
static char wal_dir[300];  /* tmp_dir/pg_wal: segments to push */

static void setup(void)
{
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk_backup_XXXXXX");
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
    return ts_repo_open(repo_dir, WK_COMPRESS_ZSTD, NULL);
}

/* Opens the repository and gives it the synthetic cluster's identity. */
static wk_repo *open_initialised_repo(void)
{
    wk_repo *repo = open_repo();
    ts_repo_identify(repo);
    return repo;
}

/* A synthetic 1 MiB WAL segment (PostgreSQL 15 long page header, patterned bytes)
 * of timeline tli, pushed into the repository. */
static void push_segment(wk_repo *repo, uint32_t tli, uint64_t segno)
{
    ts_push_segment(repo, wal_dir, tli, segno, (unsigned)(segno * 2654435761u + tli), false);
}

static void fill_fingerprint(wk_fingerprint *fp, unsigned seed)
{
    for (size_t i = 0; i < sizeof(fp->bytes); i++)
        fp->bytes[i] = (uint8_t)(seed * 37 + i * 11 + (i == 0 ? 0xF0 : 0));
}

static char *xstrdup(const char *s)
{
    char *copy = strdup(s);
    ck_assert_ptr_nonnull(copy);
    return copy;
}

/* A record with one base.tar stream (and the manifest), streams malloc'd: free it. */
static wk_backup_record simple_record(const char *label, wk_lsn start, wk_lsn stop, uint32_t tli)
{
    wk_backup_record r;
    memset(&r, 0, sizeof(r));
    snprintf(r.label, sizeof(r.label), "%s", label);
    r.start_lsn = start;
    r.stop_lsn = stop;
    r.start_tli = tli;
    r.stop_tli = tli;
    r.start_time = 1795599012;
    r.stop_time = 1795599072;
    r.pg_version = 15;
    r.system_identifier = SYSID;
    r.bytes = 1234;
    r.stored_bytes = 567;
    r.compress = WK_COMPRESS_ZSTD;
    r.stream_count = 2;
    r.streams = calloc(2, sizeof(*r.streams));
    ck_assert_ptr_nonnull(r.streams);
    snprintf(r.streams[0].name, sizeof(r.streams[0].name), "base.tar");
    snprintf(r.streams[0].object, sizeof(r.streams[0].object), "backups/%s/base.tar.zst", label);
    r.streams[0].bytes = 1000;
    r.streams[0].stored_bytes = 500;
    fill_fingerprint(&r.streams[0].fingerprint, 1);
    snprintf(r.streams[1].name, sizeof(r.streams[1].name), "backup_manifest");
    snprintf(r.streams[1].object, sizeof(r.streams[1].object), "backups/%s/backup_manifest.zst",
             label);
    r.streams[1].bytes = 234;
    r.streams[1].stored_bytes = 67;
    fill_fingerprint(&r.streams[1].fingerprint, 2);
    return r;
}

static void write_record(wk_repo *repo, const wk_backup_record *r)
{
    wk_error err = {0};
    ck_assert_msg(wk_backup_record_write(repo, r, &err) == 0, "write %s: %s", r->label,
                  err.message);
}

static void record_file(const char *label, char *buf, size_t size)
{
    snprintf(buf, size, "%s/backups/%s/%s", repo_dir, label, WK_BACKUP_RECORD);
}

/* Replaces the first occurrence of `from` (which must occur) in text; returns a new
 * malloc'd string and frees text. */
static char *replace(char *text, const char *from, const char *to)
{
    char *at = strstr(text, from);
    ck_assert_msg(at != NULL, "\"%s\" not in the record:\n%s", from, text);
    size_t head = (size_t)(at - text), from_len = strlen(from), to_len = strlen(to);
    size_t len = strlen(text) - from_len + to_len;
    char *out = malloc(len + 1);
    ck_assert_ptr_nonnull(out);
    memcpy(out, text, head);
    memcpy(out + head, to, to_len);
    strcpy(out + head + to_len, at + from_len);
    free(text);
    return out;
}

static void assert_streams_equal(const wk_backup_stream *a, const wk_backup_stream *b)
{
    ck_assert_str_eq(a->name, b->name);
    ck_assert_str_eq(a->object, b->object);
    ck_assert_uint_eq(a->tablespace, b->tablespace);
    if (b->location == NULL)
        ck_assert_ptr_null(a->location);
    else
        ck_assert_str_eq(a->location, b->location);
    ck_assert_uint_eq(a->bytes, b->bytes);
    ck_assert_uint_eq(a->stored_bytes, b->stored_bytes);
    ck_assert(wk_fingerprint_equal(&a->fingerprint, &b->fingerprint));
}

static void assert_records_equal(const wk_backup_record *a, const wk_backup_record *b)
{
    ck_assert_str_eq(a->label, b->label);
    ck_assert_uint_eq(a->start_lsn, b->start_lsn);
    ck_assert_uint_eq(a->stop_lsn, b->stop_lsn);
    ck_assert_uint_eq(a->start_tli, b->start_tli);
    ck_assert_uint_eq(a->stop_tli, b->stop_tli);
    ck_assert_int_eq((long long)a->start_time, (long long)b->start_time);
    ck_assert_int_eq((long long)a->stop_time, (long long)b->stop_time);
    ck_assert_int_eq(a->pg_version, b->pg_version);
    ck_assert_uint_eq(a->system_identifier, b->system_identifier);
    ck_assert_uint_eq(a->bytes, b->bytes);
    ck_assert_uint_eq(a->stored_bytes, b->stored_bytes);
    ck_assert_int_eq(a->compress, b->compress);
    ck_assert(a->encrypted == b->encrypted);
    ck_assert(a->from_standby == b->from_standby);
    ck_assert_uint_eq(a->stream_count, b->stream_count);
    for (size_t i = 0; i < b->stream_count; i++)
        assert_streams_equal(&a->streams[i], &b->streams[i]);
}

/* ---- the record ----------------------------------------------------------------------- */

/* 2026-11-25 09:30:12 UTC, computed without the module. */
static time_t base_time(void)
{
    struct tm tm = {
        .tm_year = 126, .tm_mon = 10, .tm_mday = 25, .tm_hour = 9, .tm_min = 30, .tm_sec = 12};
    return timegm(&tm);
}

static wk_backup_record full_record(void)
{
    wk_backup_record r;
    memset(&r, 0, sizeof(r));
    snprintf(r.label, sizeof(r.label), "20261125T093012Z");
    r.from_standby = true;
    r.start_lsn = UINT64_C(0x16B374D828);
    r.stop_lsn = UINT64_C(0xFFFFFFFEB3800100);
    r.start_tli = 2;
    r.stop_tli = 3;
    r.start_time = base_time();
    r.stop_time = base_time() + 3725;
    r.pg_version = 15;
    r.system_identifier = UINT64_C(18446744073709551557); /* above INT64_MAX */
    r.bytes = UINT64_C(5000000000123);
    r.stored_bytes = UINT64_C(1234567890123);
    r.compress = WK_COMPRESS_LZ4;
    r.encrypted = true;
    r.stream_count = 4;
    r.streams = calloc(r.stream_count, sizeof(*r.streams));
    ck_assert_ptr_nonnull(r.streams);
    static const char *const names[] = {"16385.tar", "16390.tar", "base.tar", "backup_manifest"};
    for (size_t i = 0; i < r.stream_count; i++) {
        wk_backup_stream *s = &r.streams[i];
        snprintf(s->name, sizeof(s->name), "%s", names[i]);
        snprintf(s->object, sizeof(s->object), "backups/%s/%s.lz4.enc", r.label, names[i]);
        s->bytes = UINT64_C(1) << (20 + i);
        s->stored_bytes = (UINT64_C(1) << (19 + i)) + i;
        fill_fingerprint(&s->fingerprint, (unsigned)(i + 10));
    }
    r.streams[0].tablespace = 16385;
    r.streams[0].location = xstrdup("/srv/tablespaces/one");
    /* A folder name that needs escaping in JSON. */
    r.streams[1].tablespace = UINT32_MAX;
    r.streams[1].location = xstrdup("/srv/ts \"two\"\\\ttab/\xc3\xa9t\xc3\xa9");
    return r;
}

START_TEST(test_record_round_trip)
{
    wk_error err = {0};
    wk_repo *repo = open_initialised_repo();
    wk_backup_record r = full_record();
    write_record(repo, &r);
    wk_backup_record got;
    memset(&got, 0, sizeof(got));
    ck_assert_msg(wk_backup_record_read(repo, r.label, &got, &err) == 0, "%s", err.message);
    assert_records_equal(&got, &r);
    ck_assert_ptr_null(got.streams[2].location);
    ck_assert_ptr_null(got.streams[3].location);
    wk_backup_record_free(&got);
    ck_assert_ptr_null(got.streams);
    ck_assert_uint_eq(got.stream_count, 0);
    wk_backup_record_free(&r);
    wk_backup_record_free(NULL);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_record_round_trip_variants)
{
    wk_error err = {0};
    wk_repo *repo = open_initialised_repo();
    static const wk_compress algs[] = {WK_COMPRESS_NONE, WK_COMPRESS_LZ4, WK_COMPRESS_ZSTD};
    for (size_t i = 0; i < 3; i++) {
        char label[32];
        snprintf(label, sizeof(label), "variant-%zu", i);
        wk_backup_record r = simple_record(label, LSN(2, 0x28) + i, LSN(3, 0) + i, 1);
        r.compress = algs[i];
        r.encrypted = i == 1;
        r.start_time = (time_t)i; /* near the epoch */
        r.stop_time = 0;
        r.pg_version = 16 + (int)i;
        if (i == 2) { /* no streams at all */
            free(r.streams);
            r.streams = NULL;
            r.stream_count = 0;
        }
        write_record(repo, &r);
        wk_backup_record got;
        ck_assert_msg(wk_backup_record_read(repo, label, &got, &err) == 0, "%s", err.message);
        assert_records_equal(&got, &r);
        wk_backup_record_free(&got);
        wk_backup_record_free(&r);
    }
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_record_written_once)
{
    wk_error err = {0};
    wk_repo *repo = open_initialised_repo();
    wk_backup_record r = simple_record("twice", LSN(2, 0x28), LSN(2, 0x100), 1);
    write_record(repo, &r);
    char path[512];
    record_file("twice", path, sizeof(path));
    char *before = ts_read_file(path, NULL);

    wk_backup_record other = simple_record("twice", LSN(7, 0x28), LSN(8, 0x100), 4);
    ck_assert_int_eq(wk_backup_record_write(repo, &other, &err), -1);
    ck_assert_msg(err.code == WK_ERR_EXISTS, "got %s: %s", wk_errcode_name(err.code), err.message);
    char *after = ts_read_file(path, NULL);
    ck_assert_str_eq(after, before);
    wk_backup_record got;
    ck_assert_int_eq(wk_backup_record_read(repo, "twice", &got, &err), 0);
    assert_records_equal(&got, &r);
    wk_backup_record_free(&got);
    free(before);
    free(after);
    wk_backup_record_free(&other);
    wk_backup_record_free(&r);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_record_read_missing)
{
    wk_error err = {0};
    wk_repo *repo = open_initialised_repo();
    wk_backup_record got;
    memset(&got, 0x5A, sizeof(got));
    ck_assert_int_eq(wk_backup_record_read(repo, "nothing-here", &got, &err), -1);
    ck_assert_msg(err.code == WK_ERR_NOTFOUND, "got %s: %s", wk_errcode_name(err.code),
                  err.message);
    /* A folder with objects but no record (an interrupted backup) is not found either. */
    wk_stage *sink = NULL;
    ck_assert_int_eq(wk_repo_put_open(repo, "backups/interrupted/base.tar.zst", 0, NULL, NULL, NULL,
                                      &sink, &err),
                     0);
    ck_assert_int_eq(wk_stage_write(sink, "x", 1, &err), 0);
    ck_assert_int_eq(wk_stage_finish(sink, &err), 0);
    wk_stage_free(sink);
    ck_assert_int_eq(wk_backup_record_read(repo, "interrupted", &got, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    wk_repo_free(repo);
}
END_TEST

/* One damaged record: the good text with `from` replaced by `to`, or, when from is
 * NULL, cut to `cut` bytes and followed by `append`. */
typedef struct damage {
    const char *what;
    const char *from;
    const char *to;
    size_t cut;
    const char *append;
} damage;

START_TEST(test_record_corrupt)
{
    wk_error err = {0};
    wk_repo *repo = open_initialised_repo();
    wk_backup_record r = full_record();
    write_record(repo, &r);
    char path[512];
    record_file(r.label, path, sizeof(path));
    size_t good_len = 0;
    char *good = ts_read_file(path, &good_len);
    /* The record is pretty-printed JSON with one member per line. */
    ck_assert_ptr_nonnull(strstr(good, "\"start_lsn\": \"16/B374D828\""));

    const damage cases[] = {
        {"empty", NULL, NULL, 0, ""},
        {"one byte", NULL, NULL, 1, ""},
        {"truncated in the middle", NULL, NULL, good_len / 2, ""},
        {"missing the closing brace", NULL, NULL, good_len - 2, ""},
        {"trailing garbage", NULL, NULL, good_len, "{}"},
        {"not JSON", "{", "this is not JSON {", 0, NULL},
        {"missing label", "\"label\":", "\"labex\":", 0, NULL},
        {"missing start_lsn", "\"start_lsn\":", "\"start_lsm\":", 0, NULL},
        {"missing stop_lsn", "\"stop_lsn\":", "\"stop_lsm\":", 0, NULL},
        {"missing stop_timeline", "\"stop_timeline\":", "\"stop_timelin\":", 0, NULL},
        {"missing start_time", "\"start_time\":", "\"start_tim\":", 0, NULL},
        {"missing system_identifier", "\"system_identifier\":", "\"sysid\":", 0, NULL},
        {"missing encrypted", "\"encrypted\":", "\"encryptd\":", 0, NULL},
        {"missing compress", "\"compress\":", "\"compres\":", 0, NULL},
        {"missing pg_version", "\"pg_version\":", "\"pg_versio\":", 0, NULL},
        {"missing streams", "\"streams\":", "\"stream\":", 0, NULL},
        {"missing stream fingerprint", "\"fingerprint\":", "\"fingerprin\":", 0, NULL},
        {"missing stream object", "\"object\":", "\"objet\":", 0, NULL},
        {"bad start LSN", "\"16/B374D828\"", "\"16-B374D828\"", 0, NULL},
        {"bad stop LSN", "\"FFFFFFFE/B3800100\"", "\"zz/1\"", 0, NULL},
        {"empty LSN", "\"16/B374D828\"", "\"\"", 0, NULL},
        {"LSN as a number", "\"16/B374D828\"", "97432065064", 0, NULL},
        {"bad time", "\"2026-11-25 09:30:12+00\"", "\"yesterday\"", 0, NULL},
        {"timeline out of range", "\"start_timeline\": 2", "\"start_timeline\": 4294967296", 0,
         NULL},
        {"negative timeline", "\"start_timeline\": 2", "\"start_timeline\": -2", 0, NULL},
        {"timeline as a string", "\"start_timeline\": 2", "\"start_timeline\": \"2\"", 0, NULL},
        {"unknown compression", "\"lz4\"", "\"gzip\"", 0, NULL},
        {"encrypted not a bool", "\"encrypted\": true", "\"encrypted\": 1", 0, NULL},
        {"from_standby not a bool", "\"from_standby\": true", "\"from_standby\": \"yes\"", 0, NULL},
        {"streams not an array", "\"streams\": [", "\"streams\": {\"x\": [", 0, NULL},
        {"bad fingerprint", "\"fingerprint\": \"", "\"fingerprint\": \"x", 0, NULL},
        {"tablespace out of range", "\"tablespace\": 16385", "\"tablespace\": 4294967296", 0, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const damage *d = &cases[i];
        char *text;
        size_t len;
        if (d->from == NULL) {
            len = d->cut + strlen(d->append);
            text = malloc(len + 1);
            ck_assert_ptr_nonnull(text);
            memcpy(text, good, d->cut);
            strcpy(text + d->cut, d->append);
        } else {
            text = replace(xstrdup(good), d->from, d->to);
            len = strlen(text);
        }
        ts_write_file(path, text, len);
        free(text);
        wk_backup_record got;
        memset(&got, 0, sizeof(got));
        got.stream_count = 77;
        wk_error_clear(&err);
        ck_assert_msg(wk_backup_record_read(repo, r.label, &got, &err) == -1, "%s: accepted",
                      d->what);
        ck_assert_msg(err.code == WK_ERR_CORRUPT, "%s: got %s (%s)", d->what,
                      wk_errcode_name(err.code), err.message);
        ck_assert_msg(strstr(err.message, WK_BACKUP_RECORD) != NULL, "%s: %s", d->what,
                      err.message);
        /* Nothing handed out. */
        ck_assert_uint_eq(got.stream_count, 77);
        ck_assert_ptr_null(got.streams);
    }
    /* And the good text reads again. */
    ts_write_file(path, good, good_len);
    wk_backup_record got;
    ck_assert_msg(wk_backup_record_read(repo, r.label, &got, &err) == 0, "%s", err.message);
    assert_records_equal(&got, &r);
    wk_backup_record_free(&got);
    free(good);
    wk_backup_record_free(&r);
    wk_repo_free(repo);
}
END_TEST

/* ---- listing ------------------------------------------------------------------------ */

static void make_folder_in_repo(const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", repo_dir, rel);
    ck_assert_msg(mkdir(path, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
}

START_TEST(test_list_empty)
{
    wk_error err = {0};
    wk_repo *repo = open_initialised_repo();
    wk_backup_entry *entries = (wk_backup_entry *)&err;
    size_t count = 99;
    ck_assert_msg(wk_backup_list(repo, &entries, &count, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(count, 0);
    wk_backup_list_free(entries, count);
    wk_backup_list_free(NULL, 0);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_list_uninitialised_repo)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    wk_backup_entry *entries = NULL;
    size_t count = 0;
    ck_assert_int_eq(wk_backup_list(repo, &entries, &count, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_list_order)
{
    wk_error err = {0};
    wk_repo *repo = open_initialised_repo();
    /* Labels in another order than their start LSNs; two share a start LSN. */
    struct {
        const char *label;
        wk_lsn start;
    } specs[] = {
        {"a-newest", LSN(9, 0x28)},  {"b-oldest", LSN(1, 0x28)},
        {"c-middle", LSN(5, 0x28)},  {"e-same", LSN(0x10000, 0)}, /* a second log id: 1/0 */
        {"d-same", LSN(0x10000, 0)},
    };
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        wk_backup_record r =
            simple_record(specs[i].label, specs[i].start, specs[i].start + 0x200, 1);
        write_record(repo, &r);
        wk_backup_record_free(&r);
    }
    /* Folders without a record, and a stray file at the top. */
    make_folder_in_repo("backups/0-interrupted");
    make_folder_in_repo("backups/zz-interrupted");
    char stray[512];
    snprintf(stray, sizeof(stray), "%s/backups/README", repo_dir);
    ts_write_file(stray, "hello\n", 6);

    wk_backup_entry *entries = NULL;
    size_t count = 0;
    ck_assert_msg(wk_backup_list(repo, &entries, &count, &err) == 0, "%s", err.message);
    static const char *const want[] = {"b-oldest", "c-middle",      "a-newest",      "d-same",
                                       "e-same",   "0-interrupted", "zz-interrupted"};
    ck_assert_uint_eq(count, 7);
    for (size_t i = 0; i < count; i++) {
        ck_assert_msg(strcmp(entries[i].label, want[i]) == 0, "entry %zu: %s, want %s", i,
                      entries[i].label, want[i]);
        ck_assert(entries[i].has_record == (i < 5));
        ck_assert(!entries[i].wal_ready);
        if (entries[i].has_record) {
            ck_assert_str_eq(entries[i].record.label, want[i]);
            ck_assert_uint_eq(entries[i].record.stream_count, 2);
        } else {
            ck_assert_uint_eq(entries[i].record.stream_count, 0);
        }
    }
    ck_assert_uint_eq(entries[0].record.start_lsn, LSN(1, 0x28));
    ck_assert_uint_eq(entries[2].record.start_lsn, LSN(9, 0x28));
    wk_backup_list_free(entries, count);
    wk_repo_free(repo);
}
END_TEST

static bool wal_ready_of(wk_repo *repo, const char *label)
{
    wk_error err = {0};
    wk_backup_entry *entries = NULL;
    size_t count = 0;
    bool ready = false, seen = false;
    ck_assert_msg(wk_backup_list(repo, &entries, &count, &err) == 0, "%s", err.message);
    for (size_t i = 0; i < count; i++) {
        if (strcmp(entries[i].label, label) == 0) {
            ck_assert(entries[i].has_record);
            ready = entries[i].wal_ready;
            seen = true;
        }
    }
    ck_assert_msg(seen, "%s not listed", label);
    wk_backup_list_free(entries, count);
    return ready;
}

START_TEST(test_list_wal_ready)
{
    wk_repo *repo = open_initialised_repo();
    /* Ends inside segment 4: that segment must be archived. */
    wk_backup_record r = simple_record("inside", LSN(3, 0x28), LSN(4, 0x100), 1);
    write_record(repo, &r);
    wk_backup_record_free(&r);
    /* Ends exactly at the start of segment 7: the last byte is in segment 6. */
    r = simple_record("boundary", LSN(5, 0x28), LSN(7, 0), 1);
    write_record(repo, &r);
    wk_backup_record_free(&r);
    /* Ends on timeline 2. */
    r = simple_record("timeline", LSN(9, 0x28), LSN(9, 0x100), 2);
    r.start_tli = 1;
    write_record(repo, &r);
    wk_backup_record_free(&r);

    ck_assert(!wal_ready_of(repo, "inside"));
    ck_assert(!wal_ready_of(repo, "boundary"));
    ck_assert(!wal_ready_of(repo, "timeline"));

    push_segment(repo, 1, 3); /* the start segment is not the one that matters */
    ck_assert(!wal_ready_of(repo, "inside"));
    push_segment(repo, 1, 4);
    ck_assert(wal_ready_of(repo, "inside"));

    push_segment(repo, 1, 7); /* the segment starting at the stop point */
    ck_assert(!wal_ready_of(repo, "boundary"));
    push_segment(repo, 1, 6);
    ck_assert(wal_ready_of(repo, "boundary"));

    push_segment(repo, 1, 9); /* the right segment on the wrong timeline */
    ck_assert(!wal_ready_of(repo, "timeline"));
    push_segment(repo, 2, 9);
    ck_assert(wal_ready_of(repo, "timeline"));
    ck_assert(wal_ready_of(repo, "inside"));
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_list_unreadable_record)
{
    wk_error err = {0};
    wk_repo *repo = open_initialised_repo();
    wk_backup_record r = simple_record("good", LSN(2, 0x28), LSN(2, 0x100), 1);
    write_record(repo, &r);
    wk_backup_record_free(&r);
    r = simple_record("bad", LSN(4, 0x28), LSN(4, 0x100), 1);
    write_record(repo, &r);
    wk_backup_record_free(&r);
    char path[512];
    record_file("bad", path, sizeof(path));
    ts_write_file(path, "{\"label\": \"bad\"", 15);

    wk_backup_entry *sentinel = (wk_backup_entry *)&err;
    wk_backup_entry *entries = sentinel;
    size_t count = 42;
    ck_assert_int_eq(wk_backup_list(repo, &entries, &count, &err), -1);
    ck_assert_msg(err.code == WK_ERR_CORRUPT, "got %s: %s", wk_errcode_name(err.code), err.message);
    ck_assert_msg(strstr(err.message, "bad") != NULL, "%s", err.message);
    ck_assert_ptr_eq(entries, sentinel);
    ck_assert_uint_eq(count, 42);

    /* A record that is a folder, not a file, is unreadable too (not "no record"). */
    unlink(path);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(wk_backup_list(repo, &entries, &count, &err), -1);
    ck_assert_int_ne(err.code, WK_ERR_NONE);
    ck_assert_int_ne(err.code, WK_ERR_NOTFOUND);
    wk_repo_free(repo);
}
END_TEST

static Suite *backup_suite(void)
{
    Suite *s = suite_create("backup");

    TCase *record = tcase_create("record");
    tcase_add_checked_fixture(record, setup, teardown);
    tcase_add_test(record, test_record_round_trip);
    tcase_add_test(record, test_record_round_trip_variants);
    tcase_add_test(record, test_record_written_once);
    tcase_add_test(record, test_record_read_missing);
    tcase_add_test(record, test_record_corrupt);
    suite_add_tcase(s, record);

    TCase *list = tcase_create("list");
    tcase_add_checked_fixture(list, setup, teardown);
    tcase_set_timeout(list, 60);
    tcase_add_test(list, test_list_empty);
    tcase_add_test(list, test_list_uninitialised_repo);
    tcase_add_test(list, test_list_order);
    tcase_add_test(list, test_list_wal_ready);
    tcase_add_test(list, test_list_unreadable_record);
    suite_add_tcase(s, list);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(backup_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
