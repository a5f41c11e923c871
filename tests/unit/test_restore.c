/* test_restore: point-in-time restore over a synthetic repository: records written with
 * wk_backup_record_write whose streams are tar archives (made here by a tiny ustar
 * writer) and a backup_manifest stored through the repository pipeline, 1 MiB WAL
 * segments and timeline history files pushed through the archive worker. Covers which
 * backup a target chooses, the proof that WAL reaches the target (across timelines),
 * and laying a backup down: contents, modes, recovery settings, tablespaces, refusal of
 * a non-empty folder and the clean-up after a damaged object. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "backup.h"
#include "restore.h"
#include "support.h"
#include "record.h"

#define SEG ((uint32_t)1 << 20)
#define SYSID UINT64_C(7212345678901234567)
/* An LSN `off` bytes into 1 MiB segment `seg`. */
#define LSN(seg, off) ((wk_lsn)(seg)*SEG + (off))
/* 2026-11-25 09:30:12 UTC */
#define T0 ((time_t)1795599012)

static const char restore_command[] = "walkeep-fetch --config '/etc/walkeep/a b.conf' %f %p";
static const char restore_command_line[] =
    "restore_command = 'walkeep-fetch --config ''/etc/walkeep/a b.conf'' %f %p'\n";

/* ---- helpers ---------------------------------------------------------------------- */

static char tmp_dir[256];    /* made per test, removed afterwards */
static char repo_dir[300];   /* tmp_dir/repo */
static char wal_dir[300];    /* tmp_dir/pg_wal: files to push */
static char pgdata[300];     /* tmp_dir/new/pgdata: absent, parents too */
static char ts_dir[300];     /* tmp_dir/ts_new: where /old is mapped to; absent */
static char hidden_dir[300]; /* tmp_dir/hidden: objects moved out of the repository */

static void setup(void)
{
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk_restore_XXXXXX");
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo", tmp_dir);
    snprintf(wal_dir, sizeof(wal_dir), "%s/pg_wal", tmp_dir);
    snprintf(pgdata, sizeof(pgdata), "%s/new/pgdata", tmp_dir);
    snprintf(ts_dir, sizeof(ts_dir), "%s/ts_new", tmp_dir);
    snprintf(hidden_dir, sizeof(hidden_dir), "%s/hidden", tmp_dir);
    ck_assert_int_eq(mkdir(wal_dir, 0700), 0);
    ck_assert_int_eq(mkdir(hidden_dir, 0700), 0);
}

static void teardown(void)
{
    ts_tmpdir_remove(tmp_dir);
}

/* Opens the repository and gives it the synthetic cluster's identity. */
static wk_repo *open_repo_with(wk_compress alg)
{
    wk_repo *repo = ts_repo_open(repo_dir, alg, NULL);
    ts_repo_identify(repo);
    return repo;
}

static wk_repo *open_repo(void)
{
    return open_repo_with(WK_COMPRESS_ZSTD);
}

/* The time of the commits every synthetic segment ends with: later than every target. */
#define LONG_POINT "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
#define FAR_COMMIT ((int64_t)(T0 + 100000000) * 1000000)

/* A synthetic WAL segment of timeline tli pushed into the repository: records as
 * PostgreSQL 15 writes them; from segment 3 on, ending (after every backup's stop point
 * in it) with the commits and restore points the tests name as targets. */
static void push_segment(wk_repo *repo, uint32_t tli, uint64_t segno)
{
    int64_t far = wk_walrec_time_from_unix_us(FAR_COMMIT);
    ts_wal_record recs[] = {
        {TS_WAL_SKIP_TO, (uint32_t)((segno + 1) * TS_SEG - 6000), 0, 0, NULL, 0},
        {TS_WAL_FILLER, (uint32_t)(segno * 8 + tli), 0, 0, NULL, 0}, /* contents differ */
        {TS_WAL_COMMIT, 0, 99, far, NULL, 0},
        {TS_WAL_COMMIT, 0, 1234, far + 1, NULL, 0},
        {TS_WAL_RESTORE_POINT, 0, 0, far + 2, "before_drop", 0},
        {TS_WAL_RESTORE_POINT, 0, 0, far + 3, "p", 0},
        {TS_WAL_RESTORE_POINT, 0, 0, far + 4, "it's here", 0},
        {TS_WAL_RESTORE_POINT, 0, 0, far + 5, "before\\nightly", 0},
        {TS_WAL_RESTORE_POINT, 0, 0, far + 6, LONG_POINT, 0},
    };
    uint8_t *wal =
        ts_wal_build(tli, segno, 1, recs, segno >= 3 ? sizeof(recs) / sizeof(recs[0]) : 2);
    char path[512];
    ts_wal_write_segment(wal_dir, wal, tli, segno, 0, path);
    free(wal);
    ts_push_file(repo, path);
    unlink(path);
}

static void push_range(wk_repo *repo, uint32_t tli, uint64_t first, uint64_t last)
{
    for (uint64_t seg = first; seg <= last; seg++)
        push_segment(repo, tli, seg);
}

static void push_history(wk_repo *repo, uint32_t tli, const char *text)
{
    wk_error err = {0};
    char path[512];
    snprintf(path, sizeof(path), "%s/%08X.history", wal_dir, tli);
    ts_write_file(path, text, strlen(text));
    wk_push_result res;
    ck_assert_msg(wk_archive_push(repo, path, &res, &err) == 0, "push %s: %s", path, err.message);
}

static const char *segment_name(uint32_t tli, uint64_t segno)
{
    static char name[WK_WAL_NAME_LEN + 1];
    wk_wal_segment_name(name, tli, segno, SEG);
    return name;
}

/* Moves a segment's object out of the repository (hide) and back (unhide). */
static void move_segment(wk_repo *repo, uint32_t tli, uint64_t segno, bool hide)
{
    wk_error err = {0};
    char name[WK_WAL_NAME_LEN + 1], stored[600], aside[600];
    wk_wal_segment_name(name, tli, segno, SEG);
    snprintf(aside, sizeof(aside), "%s/%s", hidden_dir, name);
    if (hide) {
        wk_wal_object obj;
        ck_assert_msg(wk_archive_find(repo, name, &obj, &err) == 0, "%s: %s", name, err.message);
        snprintf(stored, sizeof(stored), "%s/%s", repo_dir, obj.path);
        ck_assert_int_eq(symlink(stored, aside), 0); /* remembers where it was */
        char moved[700];
        snprintf(moved, sizeof(moved), "%s.data", aside);
        ck_assert_int_eq(rename(stored, moved), 0);
    } else {
        ssize_t n = readlink(aside, stored, sizeof(stored) - 1);
        ck_assert_int_gt(n, 0);
        stored[n] = '\0';
        char moved[700];
        snprintf(moved, sizeof(moved), "%s.data", aside);
        ck_assert_int_eq(rename(moved, stored), 0);
        ck_assert_int_eq(unlink(aside), 0);
    }
}

static void hide_segment(wk_repo *repo, uint32_t tli, uint64_t segno)
{
    move_segment(repo, tli, segno, true);
}

static void unhide_segment(wk_repo *repo, uint32_t tli, uint64_t segno)
{
    move_segment(repo, tli, segno, false);
}

/* ---- a tiny ustar writer ------------------------------------------------------------ */

typedef struct tarbuf {
    uint8_t *data;
    size_t len, cap;
} tarbuf;

static void tb_append(tarbuf *tb, const void *data, size_t len)
{
    if (tb->len + len > tb->cap) {
        size_t cap = tb->cap == 0 ? 8192 : tb->cap;
        while (cap < tb->len + len)
            cap *= 2;
        uint8_t *grown = realloc(tb->data, cap);
        ck_assert_ptr_nonnull(grown);
        tb->data = grown;
        tb->cap = cap;
    }
    if (len > 0)
        memcpy(tb->data + tb->len, data, len);
    tb->len += len;
}

static void tb_zeros(tarbuf *tb, size_t len)
{
    static const uint8_t zero[512];
    while (len > 0) {
        size_t n = len < sizeof(zero) ? len : sizeof(zero);
        tb_append(tb, zero, n);
        len -= n;
    }
}

/* Writes an octal number into a header field of `width` bytes (digits, then NUL). */
static void octal(uint8_t *field, size_t width, uint64_t v)
{
    field[width - 1] = '\0';
    for (size_t i = width - 1; i > 0; i--) {
        field[i - 1] = (uint8_t)('0' + (v & 7));
        v >>= 3;
    }
}

static void tar_header(tarbuf *tb, const char *name, char type, size_t size, unsigned mode)
{
    uint8_t h[512];
    memset(h, 0, sizeof(h));
    ck_assert_uint_lt(strlen(name), 100);
    memcpy(h, name, strlen(name));
    octal(h + 100, 8, mode);
    octal(h + 108, 8, 26); /* uid */
    octal(h + 116, 8, 26); /* gid */
    octal(h + 124, 12, size);
    octal(h + 136, 12, (uint64_t)T0);
    memset(h + 148, ' ', 8);
    h[156] = (uint8_t)type;
    memcpy(h + 257, "ustar", 6); /* "ustar\0" then version "00", as PostgreSQL writes */
    memcpy(h + 263, "00", 2);
    memcpy(h + 265, "postgres", 8);
    memcpy(h + 297, "postgres", 8);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof(h); i++)
        sum += h[i];
    octal(h + 148, 7, sum);
    h[155] = ' ';
    tb_append(tb, h, sizeof(h));
}

static void tar_file(tarbuf *tb, const char *name, const void *data, size_t len)
{
    tar_header(tb, name, '0', len, 0600);
    tb_append(tb, data, len);
    tb_zeros(tb, (512 - len % 512) % 512);
}

static void tar_dir(tarbuf *tb, const char *name)
{
    tar_header(tb, name, '5', 0, 0700);
}

static void tar_end(tarbuf *tb)
{
    tb_zeros(tb, 1024);
}

/* ---- backups ------------------------------------------------------------------------ */

#define DATA_LEN 8193    /* base/1/1259: a block and a byte */
#define CONTROL_LEN 8192 /* global/pg_control */
#define TS_DATA_LEN 3000 /* the tablespace's relation file */
#define TS_OID 16385
#define TS_PATH "PG_15_202209061/5/16400"

static const char auto_conf[] = "# Do not edit this file manually!\n"
                                "# It will be overwritten by the ALTER SYSTEM command.\n"
                                "work_mem = '8MB'\n"
                                "recovery_target_xid = '1'\n"
                                "restore_command = 'x'\n"
                                "  recovery_target_time = '2020-01-01 00:00:00+00'\n"
                                "shared_buffers = '64MB'\n"
                                "recovery_min_apply_delay = '1h'\n"
                                "archive_cleanup_command = 'rm -f /archive/%r'\n";

static const char manifest[] = "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n"
                               "\"Files\": [],\n"
                               "\"Manifest-Checksum\": \"0000\"}\n";

static const char backup_label_text[] =
    "START WAL LOCATION: 0/200028 (file 000000010000000000000002)\n"
    "CHECKPOINT LOCATION: 0/200060\n"
    "BACKUP METHOD: streamed\n";

typedef struct backup_spec {
    const char *label;
    wk_lsn start, stop;
    uint32_t tli;
    time_t stop_time;
    bool tablespace; /* a 16385.tar stream at /old, and tablespace_map in base.tar */
} backup_spec;

static uint8_t data_bytes[DATA_LEN], control_bytes[CONTROL_LEN], ts_bytes[TS_DATA_LEN];

static void make_contents(void)
{
    ts_fill_pattern(data_bytes, sizeof(data_bytes), 1);
    ts_fill_pattern(control_bytes, sizeof(control_bytes), 2);
    ts_fill_pattern(ts_bytes, sizeof(ts_bytes), 3);
}

/* Set by a test: the next base archives lack global/pg_control (no data directory). */
static bool base_without_control;

static void base_tar(tarbuf *tb, bool tablespace)
{
    make_contents();
    tar_file(tb, "backup_label", backup_label_text, strlen(backup_label_text));
    if (tablespace) {
        static const char map[] = "16385 /old\n";
        tar_file(tb, "tablespace_map", map, strlen(map));
        tar_dir(tb, "pg_tblspc/");
    }
    tar_file(tb, "PG_VERSION", "15\n", 3);
    tar_dir(tb, "base/");
    tar_dir(tb, "base/1/");
    tar_file(tb, "base/1/1259", data_bytes, sizeof(data_bytes));
    tar_dir(tb, "global/");
    if (!base_without_control)
        tar_file(tb, "global/pg_control", control_bytes, sizeof(control_bytes));
    tar_file(tb, "postgresql.auto.conf", auto_conf, strlen(auto_conf));
    tar_dir(tb, "pg_wal/");
    tar_dir(tb, "pg_stat/");
    tar_file(tb, "pg_stat/empty", "", 0);
    tar_end(tb);
}

static void tablespace_tar(tarbuf *tb)
{
    make_contents();
    tar_dir(tb, "PG_15_202209061/");
    tar_dir(tb, "PG_15_202209061/5/");
    tar_file(tb, TS_PATH, ts_bytes, sizeof(ts_bytes));
    tar_end(tb);
}

/* Stores data at backups/<label>/<name><suffix> and describes it in *s. */
static void store_stream(wk_repo *repo, const char *label, const char *name, const void *data,
                         size_t len, wk_backup_stream *s)
{
    wk_error err = {0};
    wk_stage *sink = NULL;
    wk_stream_summary summary;
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->object, sizeof(s->object), "backups/%s/%s%s", label, name, repo->suffix);
    ck_assert_msg(wk_repo_put_open(repo, s->object, WK_PUT_NOREPLACE, NULL, &summary,
                                   &s->stored_bytes, &sink, &err) == 0,
                  "%s", err.message);
    ck_assert_int_eq(wk_stage_write(sink, data, len, &err), 0);
    ck_assert_msg(wk_stage_finish(sink, &err) == 0, "%s", err.message);
    wk_stage_free(sink);
    ck_assert_uint_eq(summary.bytes, len);
    s->bytes = summary.bytes;
    s->fingerprint = summary.fingerprint;
}

/* Stores a backup's streams (the tablespace first, then base.tar, then the manifest,
 * as the server sends them) and writes its record. */
static void add_backup(wk_repo *repo, const backup_spec *spec)
{
    wk_error err = {0};
    wk_backup_record r;
    memset(&r, 0, sizeof(r));
    snprintf(r.label, sizeof(r.label), "%s", spec->label);
    r.start_lsn = spec->start;
    r.stop_lsn = spec->stop;
    r.start_tli = spec->tli;
    r.stop_tli = spec->tli;
    r.start_time = spec->stop_time - 60;
    r.stop_time = spec->stop_time;
    r.pg_version = 15;
    r.system_identifier = SYSID;
    r.compress = repo->compress;
    r.encrypted = repo->key != NULL;
    r.streams = calloc(3, sizeof(*r.streams));
    ck_assert_ptr_nonnull(r.streams);
    tarbuf tb = {0};
    if (spec->tablespace) {
        tablespace_tar(&tb);
        wk_backup_stream *s = &r.streams[r.stream_count++];
        store_stream(repo, spec->label, "16385.tar", tb.data, tb.len, s);
        s->tablespace = TS_OID;
        s->location = strdup("/old");
        ck_assert_ptr_nonnull(s->location);
        tb.len = 0;
    }
    base_tar(&tb, spec->tablespace);
    store_stream(repo, spec->label, "base.tar", tb.data, tb.len, &r.streams[r.stream_count++]);
    store_stream(repo, spec->label, "backup_manifest", manifest, strlen(manifest),
                 &r.streams[r.stream_count++]);
    free(tb.data);
    for (size_t i = 0; i < r.stream_count; i++) {
        r.bytes += r.streams[i].bytes;
        r.stored_bytes += r.streams[i].stored_bytes;
    }
    ck_assert_msg(wk_backup_record_write(repo, &r, &err) == 0, "%s", err.message);
    wk_backup_record_free(&r);
}

static wk_restore_options default_options(void)
{
    wk_restore_options opt;
    memset(&opt, 0, sizeof(opt));
    opt.pgdata = pgdata;
    opt.target.kind = WK_TARGET_END;
    opt.restore_command = restore_command;
    return opt;
}

static void plan_ok(wk_repo *repo, const wk_restore_options *opt, wk_restore_plan *plan)
{
    wk_error err = {0};
    ck_assert_msg(wk_restore_plan_make(repo, opt, plan, &err) == 0, "plan: %s (%s)", err.message,
                  err.detail);
}

/* Plans, expecting failure with code; the message is left in err. */
static void plan_fails(wk_repo *repo, const wk_restore_options *opt, wk_errcode code, wk_error *err)
{
    wk_restore_plan plan;
    memset(err, 0, sizeof(*err));
    int rc = wk_restore_plan_make(repo, opt, &plan, err);
    if (rc == 0) {
        char label[WK_BACKUP_LABEL_MAX];
        snprintf(label, sizeof(label), "%s", plan.backup.label);
        wk_restore_plan_free(&plan);
        ck_abort_msg("plan accepted (backup \"%s\"), want %s", label, wk_errcode_name(code));
    }
    ck_assert_msg(err->code == code, "got %s (%s), want %s", wk_errcode_name(err->code),
                  err->message, wk_errcode_name(code));
    ck_assert_str_ne(err->message, "");
}

static void assert_chosen(wk_repo *repo, const wk_restore_options *opt, const char *label)
{
    wk_restore_plan plan;
    plan_ok(repo, opt, &plan);
    ck_assert_msg(strcmp(plan.backup.label, label) == 0, "chose %s, want %s", plan.backup.label,
                  label);
    wk_restore_plan_free(&plan);
}

static void assert_message_has(const wk_error *err, const char *text)
{
    ck_assert_msg(strstr(err->message, text) != NULL, "\"%s\" not in \"%s\"", text, err->message);
}

/* ---- choosing the backup ------------------------------------------------------------ */

/* Three backups ending at T0+100, +200, +300 in segments 2, 5, 8; WAL 2..10. */
static wk_repo *three_backups(void)
{
    wk_repo *repo = open_repo();
    static const backup_spec specs[] = {
        {"b1", LSN(2, 0x28), LSN(2, 0x100), 1, T0 + 100, false},
        {"b3", LSN(8, 0x28), LSN(8, 0x100), 1, T0 + 300, false},
        {"b2", LSN(5, 0x28), LSN(5, 0x100), 1, T0 + 200, false},
    };
    for (size_t i = 0; i < 3; i++)
        add_backup(repo, &specs[i]);
    push_range(repo, 1, 2, 10);
    return repo;
}

static wk_restore_options time_target(time_t t, char *text, size_t size)
{
    wk_restore_options opt = default_options();
    wk_record_format_time(t, text, size);
    opt.target.kind = WK_TARGET_TIME;
    opt.target.value = text;
    opt.target.beyond_archive = true; /* choosing, not proving (test_wal_* prove) */
    return opt;
}

static wk_restore_options lsn_target(wk_lsn lsn, char *text, size_t size)
{
    wk_restore_options opt = default_options();
    wk_wal_format_lsn(text, size, lsn);
    opt.target.kind = WK_TARGET_LSN;
    opt.target.value = text;
    opt.target.lsn = lsn;
    return opt;
}

START_TEST(test_choose_time)
{
    wk_error err;
    char text[64];
    wk_repo *repo = three_backups();
    wk_restore_options opt = time_target(T0 + 250, text, sizeof(text));
    assert_chosen(repo, &opt, "b2");
    opt = time_target(T0 + 200, text, sizeof(text)); /* ended exactly then */
    assert_chosen(repo, &opt, "b2");
    opt = time_target(T0 + 199, text, sizeof(text));
    assert_chosen(repo, &opt, "b1");
    opt = time_target(T0 + 100, text, sizeof(text));
    assert_chosen(repo, &opt, "b1");
    opt = time_target(T0 + 100000, text, sizeof(text));
    assert_chosen(repo, &opt, "b3");

    opt = time_target(T0 + 99, text, sizeof(text));
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    assert_message_has(&err, "before");
    assert_message_has(&err, "b1");
    assert_message_has(&err, text);
    opt = time_target(T0 - 86400, text, sizeof(text));
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    assert_message_has(&err, "before");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_choose_lsn)
{
    wk_error err;
    char text[64];
    wk_repo *repo = three_backups();
    wk_restore_options opt = lsn_target(LSN(6, 0), text, sizeof(text));
    assert_chosen(repo, &opt, "b2");
    opt = lsn_target(LSN(5, 0x100), text, sizeof(text)); /* b2's end exactly */
    assert_chosen(repo, &opt, "b2");
    opt = lsn_target(LSN(5, 0xFF), text, sizeof(text));
    assert_chosen(repo, &opt, "b1");
    opt = lsn_target(LSN(10, 0x10), text, sizeof(text));
    assert_chosen(repo, &opt, "b3");

    opt = lsn_target(LSN(2, 0xFF), text, sizeof(text));
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    assert_message_has(&err, "before");
    assert_message_has(&err, "b1");
    opt = lsn_target(LSN(1, 0), text, sizeof(text));
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    assert_message_has(&err, "before");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_choose_xid_name_oldest)
{
    wk_repo *repo = three_backups();
    wk_restore_options opt = default_options();
    opt.target.kind = WK_TARGET_XID;
    opt.target.value = "1234";
    assert_chosen(repo, &opt, "b1");
    opt.target.kind = WK_TARGET_NAME;
    opt.target.value = "before_drop";
    assert_chosen(repo, &opt, "b1");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_choose_newest)
{
    wk_repo *repo = three_backups();
    wk_restore_options opt = default_options();
    assert_chosen(repo, &opt, "b3");
    opt.target.kind = WK_TARGET_IMMEDIATE;
    assert_chosen(repo, &opt, "b3");
    /* A newer folder without a record (an interrupted backup) is never chosen. */
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/backups/b4", repo_dir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    assert_chosen(repo, &opt, "b3");
    opt.target.kind = WK_TARGET_END;
    assert_chosen(repo, &opt, "b3");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_choose_skips_backup_waiting_for_wal)
{
    /* b4 is recorded but its stop segment (12) is not archived yet: an older usable
     * backup is chosen rather than one whose restore would fail. */
    wk_repo *repo = three_backups();
    static const backup_spec b4 = {"b4", LSN(12, 0x28), LSN(12, 0x100), 1, T0 + 400, false};
    add_backup(repo, &b4);
    wk_restore_options opt = default_options();
    assert_chosen(repo, &opt, "b3");
    /* Named, it is taken as asked, and the proof says what is missing. */
    opt.backup_label = "b4";
    wk_error err = {0};
    wk_restore_plan plan;
    ck_assert_int_eq(wk_restore_plan_make(repo, &opt, &plan, &err), -1);
    assert_message_has(&err, "WAL segment 00000001000000000000000C is missing");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_choose_label)
{
    wk_error err;
    char text[64];
    wk_repo *repo = three_backups();
    wk_restore_options opt = default_options();
    opt.backup_label = "b2";
    assert_chosen(repo, &opt, "b2");
    opt.target.kind = WK_TARGET_IMMEDIATE;
    assert_chosen(repo, &opt, "b2");
    opt.target.kind = WK_TARGET_XID;
    opt.target.value = "99";
    assert_chosen(repo, &opt, "b2");
    opt = time_target(T0 + 100000, text, sizeof(text));
    opt.backup_label = "b1";
    assert_chosen(repo, &opt, "b1");

    /* A time before the named backup ended. */
    opt = time_target(T0 + 150, text, sizeof(text));
    opt.backup_label = "b2";
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    assert_message_has(&err, "before");

    opt = default_options();
    opt.backup_label = "nope";
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    assert_message_has(&err, "\"nope\"");
    /* A folder without a record cannot be named either. */
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/backups/b4", repo_dir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    opt.backup_label = "b4";
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    wk_repo_free(repo);
}
END_TEST

/* Like a time target before the named backup's end (refused above), an LSN target
 * before it cannot be reached: PostgreSQL stops with "requested recovery stop point is
 * before consistent recovery point". The plan must refuse it, not prove WAL only up to
 * the target and leave the failure to the server. */
START_TEST(test_choose_label_lsn_before_backup_end)
{
    wk_error err;
    char text[64];
    wk_repo *repo = three_backups();
    wk_restore_options opt = lsn_target(LSN(3, 0), text, sizeof(text));
    opt.backup_label = "b2"; /* ended at 0/500100 */
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    assert_message_has(&err, "before");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_choose_no_backups)
{
    wk_error err;
    wk_repo *repo = open_repo();
    push_range(repo, 1, 2, 3);
    wk_restore_options opt = default_options();
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    assert_message_has(&err, "no complete backup");
    /* Only an interrupted one. */
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/backups", repo_dir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof(dir), "%s/backups/interrupted", repo_dir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    assert_message_has(&err, "no complete backup");
    opt.backup_label = "interrupted";
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_plan_uninitialised_repo)
{
    wk_error err;
    wk_config cfg;
    wk_repo *repo = NULL;
    memset(&cfg, 0, sizeof(cfg));
    cfg.repo = repo_dir;
    cfg.compress = WK_COMPRESS_ZSTD;
    cfg.compress_level = WK_COMPRESS_LEVEL_DEFAULT;
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(wk_repo_open(&cfg, true, &repo, &err), 0);
    wk_restore_options opt = default_options();
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    wk_repo_free(repo);
}
END_TEST

/* ---- proving the WAL ---------------------------------------------------------------- */

/* One backup from segment 2 to segment 3 (0/200028 .. 0/300100), WAL 2..6. */
static wk_repo *one_backup(void)
{
    wk_repo *repo = open_repo();
    static const backup_spec spec = {"b1", LSN(2, 0x28), LSN(3, 0x100), 1, T0 + 100, false};
    add_backup(repo, &spec);
    push_range(repo, 1, 2, 6);
    return repo;
}

static void assert_plan(wk_repo *repo, const wk_restore_options *opt, uint32_t tli,
                        uint64_t segments, const char *last)
{
    wk_restore_plan plan;
    plan_ok(repo, opt, &plan);
    ck_assert_uint_eq(plan.target_tli, tli);
    ck_assert_uint_eq(plan.segments, segments);
    ck_assert_str_eq(plan.last_segment, last);
    wk_restore_plan_free(&plan);
}

static void assert_missing(wk_repo *repo, const wk_restore_options *opt, const char *segment)
{
    wk_error err;
    char want[128];
    plan_fails(repo, opt, WK_ERR_NOTFOUND, &err);
    snprintf(want, sizeof(want), "WAL segment %s is missing from the archive", segment);
    ck_assert_str_eq(err.message, want);
}

START_TEST(test_wal_all_present)
{
    wk_repo *repo = one_backup();
    wk_restore_options opt = default_options();
    assert_plan(repo, &opt, 1, 5, "000000010000000000000006");
    /* Targets found in the WAL: the proof ends with the segment holding them. */
    opt.target.kind = WK_TARGET_XID;
    opt.target.value = "1234";
    assert_plan(repo, &opt, 1, 2, "000000010000000000000003");
    opt.target.kind = WK_TARGET_NAME;
    opt.target.value = "p";
    assert_plan(repo, &opt, 1, 2, "000000010000000000000003");
    char text[64];
    opt = time_target(T0 + 1000, text, sizeof(text));
    assert_plan(repo, &opt, 1, 2, "000000010000000000000003");
    /* Segments before the backup's start do not count. */
    push_segment(repo, 1, 1);
    opt = default_options();
    assert_plan(repo, &opt, 1, 5, "000000010000000000000006");
    /* The archive grows: so does the proof. */
    push_segment(repo, 1, 7);
    assert_plan(repo, &opt, 1, 6, "000000010000000000000007");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_wal_missing_segment_named)
{
    wk_repo *repo = one_backup();
    wk_restore_options opt = default_options();
    for (uint64_t seg = 2; seg <= 5; seg++) {
        hide_segment(repo, 1, seg);
        opt.target.kind = WK_TARGET_END;
        assert_missing(repo, &opt, segment_name(1, seg));
        /* A transaction not found before the hole may lie after it. */
        opt.target.kind = WK_TARGET_XID;
        opt.target.value = "4321";
        assert_missing(repo, &opt, segment_name(1, seg));
        unhide_segment(repo, 1, seg);
    }
    /* Two holes: the first one is named. */
    hide_segment(repo, 1, 4);
    hide_segment(repo, 1, 5);
    opt.target.kind = WK_TARGET_END;
    assert_missing(repo, &opt, "000000010000000000000004");
    unhide_segment(repo, 1, 4);
    unhide_segment(repo, 1, 5);
    assert_plan(repo, &opt, 1, 5, "000000010000000000000006");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_wal_immediate_needs_backup_only)
{
    wk_repo *repo = one_backup();
    wk_restore_options opt = default_options();
    opt.target.kind = WK_TARGET_IMMEDIATE;
    assert_plan(repo, &opt, 1, 2, "000000010000000000000003");
    hide_segment(repo, 1, 4);
    hide_segment(repo, 1, 5);
    assert_plan(repo, &opt, 1, 2, "000000010000000000000003");
    opt.target.kind = WK_TARGET_END;
    assert_missing(repo, &opt, "000000010000000000000004");
    /* The backup's own segments are needed. */
    opt.target.kind = WK_TARGET_IMMEDIATE;
    hide_segment(repo, 1, 3);
    assert_missing(repo, &opt, "000000010000000000000003");
    unhide_segment(repo, 1, 3);
    hide_segment(repo, 1, 2);
    assert_missing(repo, &opt, "000000010000000000000002");
    unhide_segment(repo, 1, 2);

    /* A backup ending exactly at a segment boundary does not need that segment. */
    static const backup_spec edge = {"edge", LSN(2, 0x28), LSN(4, 0), 1, T0 + 50, false};
    add_backup(repo, &edge);
    opt.backup_label = "edge";
    assert_plan(repo, &opt, 1, 2, "000000010000000000000003");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_wal_end_archive_shorter_than_backup)
{
    /* Nothing archived past the backup's start: the stop segment is still needed. */
    wk_repo *repo = open_repo();
    static const backup_spec spec = {"b1", LSN(2, 0x28), LSN(3, 0x100), 1, T0 + 100, false};
    add_backup(repo, &spec);
    push_segment(repo, 1, 2);
    wk_restore_options opt = default_options();
    assert_missing(repo, &opt, "000000010000000000000003");
    push_segment(repo, 1, 3);
    assert_plan(repo, &opt, 1, 2, "000000010000000000000003");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_wal_lsn_target_bounded)
{
    char text[64];
    wk_repo *repo = one_backup();
    wk_restore_options opt = lsn_target(LSN(5, 0x10), text, sizeof(text));
    assert_plan(repo, &opt, 1, 4, "000000010000000000000005");
    hide_segment(repo, 1, 6);
    assert_plan(repo, &opt, 1, 4, "000000010000000000000005");
    hide_segment(repo, 1, 5);
    assert_missing(repo, &opt, "000000010000000000000005");
    /* A target at the very start of a segment needs that segment. */
    opt = lsn_target(LSN(5, 0), text, sizeof(text));
    assert_missing(repo, &opt, "000000010000000000000005");
    opt = lsn_target(LSN(4, 0xFFFFF), text, sizeof(text));
    assert_plan(repo, &opt, 1, 3, "000000010000000000000004");
    hide_segment(repo, 1, 4);
    assert_missing(repo, &opt, "000000010000000000000004");
    wk_repo_free(repo);
}
END_TEST

/* ---- timelines ---------------------------------------------------------------------- */

/* A backup on timeline 1 in segment 2 (0/200028 .. 0/200100). */
static wk_repo *timeline_base(void)
{
    wk_repo *repo = open_repo();
    static const backup_spec spec = {"b1", LSN(2, 0x28), LSN(2, 0x100), 1, T0 + 100, false};
    add_backup(repo, &spec);
    return repo;
}

/* After a failover the old primary went on archiving timeline 1 past the switch point:
 * those segments are another history, not a hole on the way to timeline 2. */
START_TEST(test_tl_old_timeline_past_switch_is_no_hole)
{
    wk_repo *repo = timeline_base();
    push_range(repo, 1, 2, 12);
    push_history(repo, 2, "1\t0/600000\tno recovery target specified\n");
    push_range(repo, 2, 6, 8);
    wk_restore_options opt = default_options();
    assert_plan(repo, &opt, 2, 7, "000000020000000000000008");
    /* A real hole on timeline 2 still is one. */
    push_segment(repo, 2, 10);
    assert_missing(repo, &opt, "000000020000000000000009");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_tl_switch_at_boundary)
{
    wk_error err;
    wk_repo *repo = timeline_base();
    push_range(repo, 1, 2, 5);
    push_history(repo, 2, "1\t0/600000\tno recovery target specified\n");
    push_range(repo, 2, 6, 8);
    wk_restore_options opt = default_options(); /* timeline "latest" */
    assert_plan(repo, &opt, 2, 7, "000000020000000000000008");
    opt.target.timeline = "latest";
    assert_plan(repo, &opt, 2, 7, "000000020000000000000008");
    opt.target.timeline = "2";
    assert_plan(repo, &opt, 2, 7, "000000020000000000000008");
    opt.target.timeline = "0x2";
    assert_plan(repo, &opt, 2, 7, "000000020000000000000008");

    /* Timeline 2 starts with segment 6: it must come from timeline 2. */
    opt.target.timeline = NULL;
    hide_segment(repo, 2, 6);
    assert_missing(repo, &opt, "000000020000000000000006");
    push_segment(repo, 1, 6); /* the old timeline's copy does not do */
    assert_missing(repo, &opt, "000000020000000000000006");
    unhide_segment(repo, 2, 6);
    assert_plan(repo, &opt, 2, 7, "000000020000000000000008");
    /* Timeline 1 is needed up to the switch. */
    hide_segment(repo, 1, 5);
    assert_missing(repo, &opt, "000000010000000000000005");
    unhide_segment(repo, 1, 5);

    opt.target.timeline = "junk";
    plan_fails(repo, &opt, WK_ERR_USAGE, &err);
    opt.target.timeline = "0";
    plan_fails(repo, &opt, WK_ERR_USAGE, &err);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_tl_switch_inside_segment)
{
    wk_repo *repo = timeline_base();
    push_range(repo, 1, 2, 5);
    push_history(repo, 2, "1\t0/580000\tno recovery target specified\n");
    push_range(repo, 2, 6, 8);
    wk_restore_options opt = default_options();
    /* Segment 5 holds the switch: PostgreSQL reads it from timeline 2. */
    assert_missing(repo, &opt, "000000020000000000000005");
    push_segment(repo, 2, 5);
    assert_plan(repo, &opt, 2, 7, "000000020000000000000008");
    hide_segment(repo, 1, 5);
    assert_plan(repo, &opt, 2, 7, "000000020000000000000008");
    hide_segment(repo, 1, 4);
    assert_missing(repo, &opt, "000000010000000000000004");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_tl_two_switches)
{
    wk_repo *repo = timeline_base();
    push_range(repo, 1, 2, 5);
    push_history(repo, 2, "1\t0/600000\tno recovery target specified\n");
    push_range(repo, 2, 6, 7);
    push_history(repo, 3,
                 "1\t0/600000\tno recovery target specified\n"
                 "2\t0/800000\tno recovery target specified\n");
    push_range(repo, 3, 8, 9);
    wk_restore_options opt = default_options();
    assert_plan(repo, &opt, 3, 8, "000000030000000000000009");
    opt.target.timeline = "2";
    assert_plan(repo, &opt, 2, 6, "000000020000000000000007");
    opt.target.timeline = NULL;
    hide_segment(repo, 2, 7);
    assert_missing(repo, &opt, "000000020000000000000007");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_tl_missing_history)
{
    wk_error err;
    wk_repo *repo = timeline_base();
    push_range(repo, 1, 2, 5);
    push_range(repo, 2, 6, 8);
    wk_restore_options opt = default_options();
    opt.target.timeline = "2";
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    assert_message_has(&err, "00000002.history");
    /* "latest" finds no history file for timeline 2 and stays on 1. */
    opt.target.timeline = NULL;
    assert_plan(repo, &opt, 1, 4, "000000010000000000000005");

    /* Timeline 3's history names timeline 2, whose own history file is missing. */
    push_history(repo, 3,
                 "1\t0/600000\tno recovery target specified\n"
                 "2\t0/800000\tno recovery target specified\n");
    push_range(repo, 3, 8, 9);
    opt.target.timeline = "3";
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    assert_message_has(&err, "00000002.history");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_tl_current)
{
    wk_repo *repo = timeline_base();
    push_range(repo, 1, 2, 5);
    push_history(repo, 2, "1\t0/600000\tno recovery target specified\n");
    push_range(repo, 2, 6, 8);
    wk_restore_options opt = default_options();
    opt.target.timeline = "current";
    assert_plan(repo, &opt, 1, 4, "000000010000000000000005");
    opt.target.timeline = "1";
    assert_plan(repo, &opt, 1, 4, "000000010000000000000005");
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_tl_not_descending)
{
    wk_error err;
    wk_repo *repo = timeline_base();
    push_range(repo, 1, 2, 5);
    /* Timeline 3 branched from timeline 2 alone: not from the backup's timeline 1. */
    push_history(repo, 3, "2\t0/600000\tno recovery target specified\n");
    push_range(repo, 3, 6, 7);
    wk_restore_options opt = default_options();
    opt.target.timeline = "3";
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    assert_message_has(&err, "timeline 3");
    assert_message_has(&err, "timeline 1");
    wk_repo_free(repo);
}
END_TEST

/* A timeline that branched off inside the backup cannot be followed from it; the
 * message should name the timeline that branched off (2) and the one it left (1). */
START_TEST(test_tl_left_before_backup_end)
{
    wk_error err;
    wk_repo *repo = timeline_base(); /* ends at 0/200100 */
    push_range(repo, 1, 2, 3);
    push_history(repo, 2, "1\t0/200080\tno recovery target specified\n");
    push_range(repo, 2, 2, 3);
    wk_restore_options opt = default_options();
    plan_fails(repo, &opt, WK_ERR_NOTFOUND, &err);
    assert_message_has(&err, "timeline 2 left timeline 1");
    wk_repo_free(repo);
}
END_TEST

/* ---- laying the backup down --------------------------------------------------------- */

typedef struct progress_seen {
    int calls;
    uint64_t done, total;
} progress_seen;

static void on_progress(uint64_t done, uint64_t total, void *arg)
{
    progress_seen *p = arg;
    ck_assert_uint_ge(done, p->done);
    p->calls++;
    p->done = done;
    p->total = total;
}

static wk_repo *restorable(wk_compress alg, bool tablespace)
{
    wk_repo *repo = open_repo_with(alg);
    backup_spec spec = {"b1", LSN(2, 0x28), LSN(2, 0x100), 1, T0 + 100, tablespace};
    add_backup(repo, &spec);
    push_range(repo, 1, 2, 3);
    return repo;
}

static void mode_is(const char *path, mode_t type, mode_t mode)
{
    struct stat st;
    ck_assert_msg(lstat(path, &st) == 0, "%s: %s", path, strerror(errno));
    ck_assert_msg((st.st_mode & S_IFMT) == type, "%s: wrong type", path);
    ck_assert_msg((st.st_mode & 07777) == mode, "%s: mode %o, want %o", path,
                  (unsigned)(st.st_mode & 07777), (unsigned)mode);
}

static void assert_laid_file(const char *dir, const char *rel, const void *data, size_t len)
{
    char path[600];
    size_t got_len = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    mode_is(path, S_IFREG, 0600);
    char *got = ts_read_file(path, &got_len);
    ck_assert_msg(got_len == len, "%s: %zu bytes, want %zu", rel, got_len, len);
    ck_assert_msg(memcmp(got, data, len) == 0, "%s differs", rel);
    free(got);
}

static void assert_laid_dir(const char *dir, const char *rel)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    mode_is(path, S_IFDIR, 0700);
}

static char *auto_conf_of(const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/postgresql.auto.conf", dir);
    mode_is(path, S_IFREG, 0600);
    return ts_read_file(path, NULL);
}

static int occurrences(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = strstr(text, what); p != NULL; p = strstr(p + 1, what))
        n++;
    return n;
}

static void assert_conf_has(const char *conf, const char *line)
{
    ck_assert_msg(occurrences(conf, line) == 1, "\"%s\" not once in:\n%s", line, conf);
}

static void assert_conf_lacks(const char *conf, const char *text)
{
    ck_assert_msg(strstr(conf, text) == NULL, "\"%s\" in:\n%s", text, conf);
}

static void lay_down_ok(wk_repo *repo, const wk_restore_options *opt)
{
    wk_error err = {0};
    wk_restore_plan plan;
    plan_ok(repo, opt, &plan);
    ck_assert_msg(wk_restore_lay_down(repo, opt, &plan, &err) == 0, "lay down: %s (%s)",
                  err.message, err.detail);
    wk_restore_plan_free(&plan);
}

static void lay_down_fails(wk_repo *repo, const wk_restore_options *opt, wk_errcode code,
                           wk_error *err)
{
    wk_restore_plan plan;
    plan_ok(repo, opt, &plan);
    memset(err, 0, sizeof(*err));
    ck_assert_int_eq(wk_restore_lay_down(repo, opt, &plan, err), -1);
    ck_assert_msg(err->code == code, "got %s (%s), want %s", wk_errcode_name(err->code),
                  err->message, wk_errcode_name(code));
    wk_restore_plan_free(&plan);
}

/* Replaces the first `from` in the file at path by `to`; the test fails when there is none. */
static void edit_file(const char *path, const char *from, const char *to)
{
    char *text = ts_read_file(path, NULL);
    char *at = strstr(text, from);
    ck_assert_msg(at != NULL, "\"%s\" not in %s", from, path);
    size_t head = (size_t)(at - text), tail = strlen(at + strlen(from));
    char *out = malloc(head + strlen(to) + tail + 1);
    memcpy(out, text, head);
    memcpy(out + head, to, strlen(to));
    memcpy(out + head + strlen(to), at + strlen(from), tail + 1);
    ts_write_text(path, out);
    free(out);
    free(text);
}

/* A record that contradicts itself or the repository is refused before anything is laid
 * down (the repository here is unencrypted: nothing authenticates its records). */
/* A base archive that is no data directory: refused after laying it down, and what was
 * laid down is removed again. */
START_TEST(test_base_archive_without_pg_control)
{
    base_without_control = true;
    wk_repo *repo = restorable(WK_COMPRESS_LZ4, false);
    base_without_control = false;
    wk_restore_options opt = default_options();
    wk_error err;
    lay_down_fails(repo, &opt, WK_ERR_CORRUPT, &err);
    assert_message_has(&err, "holds no global/pg_control");
    ck_assert_int_eq(ts_count_entries(pgdata), 0);
    wk_repo_free(repo);
}
END_TEST

/* Settings PostgreSQL would refuse at start are refused before anything is laid down. */
START_TEST(test_settings_postgresql_refuses)
{
    wk_repo *repo = restorable(WK_COMPRESS_LZ4, false);
    wk_error err;
    char long_name[80];
    memset(long_name, 'n', 64);
    long_name[64] = '\0';
    const struct {
        wk_target_kind kind;
        const char *value, *command, *says;
    } cases[] = {
        {WK_TARGET_NAME, long_name, NULL, "1 to 63 bytes"},
        {WK_TARGET_NAME, "", NULL, "1 to 63 bytes"},
        {WK_TARGET_NAME, "before\ndrop", NULL, "control character"},
        {WK_TARGET_END, NULL, "walkeep-fetch --config '/etc/a\nb.conf' %f %p",
         "restore_command holds"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wk_restore_options opt = default_options();
        opt.target.kind = cases[i].kind;
        opt.target.value = cases[i].value;
        if (cases[i].command != NULL)
            opt.restore_command = cases[i].command;
        plan_fails(repo, &opt, WK_ERR_USAGE, &err);
        ck_assert_msg(strstr(err.message, cases[i].says) != NULL, "case %zu: %s", i, err.message);
        ck_assert(!ts_path_exists(pgdata));
    }
    /* 63 bytes is a name PostgreSQL takes. */
    long_name[63] = '\0';
    wk_restore_options opt = default_options();
    opt.target.kind = WK_TARGET_NAME;
    opt.target.value = long_name;
    wk_restore_plan plan;
    plan_ok(repo, &opt, &plan);
    wk_restore_plan_free(&plan);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_contradicting_records_refused)
{
    wk_repo *repo = restorable(WK_COMPRESS_ZSTD, true);
    wk_restore_options opt = default_options();
    wk_tablespace_map map = {.from = "/old", .to = ts_dir};
    opt.maps = &map;
    opt.map_count = 1;
    wk_restore_plan plan;
    plan_ok(repo, &opt, &plan);
    wk_restore_plan_free(&plan);
    char path[400];
    snprintf(path, sizeof(path), "%s/backups/b1/backup.json", repo_dir);
    char *original = ts_read_file(path, NULL);
    const struct {
        const char *from, *to, *says;
    } edits[] = {
        {"\"label\": \"b1\"", "\"label\": \"b9\"", "not its folder's"},
        {"\"location\": \"/old\"", "\"location\": \"old\"", "no absolute location"},
        {"\"location\": \"/old\"", "\"location\": \"/var/../etc\"", "no absolute location"},
        {"\"object\": \"backups/b1/base.tar", "\"object\": \"backups/b2/base.tar",
         "outside the backup's folder"},
        {"\"name\": \"base.tar\"", "\"name\": \"other.tar\"", "no base archive"},
        {"\"stop_timeline\": 1", "\"stop_timeline\": 0", "stops before it starts"},
        {"\"pg_version\": 15", "\"pg_version\": 16", "(PostgreSQL 16), the repository of"},
        {"\"system_identifier\": 7212345678901234567", "\"system_identifier\": 7212345678901234568",
         "is of system 7212345678901234568"},
    };
    wk_error err;
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        ts_write_text(path, original);
        edit_file(path, edits[i].from, edits[i].to);
        plan_fails(repo, &opt, WK_ERR_CORRUPT, &err);
        ck_assert_msg(strstr(err.message, edits[i].says) != NULL, "edit %zu: %s", i, err.message);
        ck_assert(!ts_path_exists(pgdata));
        ck_assert(!ts_path_exists(ts_dir));
    }
    ts_write_text(path, original);
    free(original);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_lay_down_new_folder)
{
    wk_repo *repo = restorable(WK_COMPRESS_ZSTD, false);
    wk_restore_options opt = default_options();
    progress_seen seen = {0};
    opt.progress = on_progress;
    opt.progress_arg = &seen;
    lay_down_ok(repo, &opt);

    mode_is(pgdata, S_IFDIR, 0700);
    make_contents();
    assert_laid_file(pgdata, "PG_VERSION", "15\n", 3);
    assert_laid_file(pgdata, "backup_label", backup_label_text, strlen(backup_label_text));
    assert_laid_file(pgdata, "base/1/1259", data_bytes, sizeof(data_bytes));
    assert_laid_file(pgdata, "global/pg_control", control_bytes, sizeof(control_bytes));
    assert_laid_file(pgdata, "pg_stat/empty", "", 0);
    assert_laid_file(pgdata, "backup_manifest", manifest, strlen(manifest));
    assert_laid_file(pgdata, "recovery.signal", "", 0);
    assert_laid_dir(pgdata, "base");
    assert_laid_dir(pgdata, "base/1");
    assert_laid_dir(pgdata, "global");
    assert_laid_dir(pgdata, "pg_wal");
    assert_laid_dir(pgdata, "pg_stat");
    char path[600];
    snprintf(path, sizeof(path), "%s/tablespace_map", pgdata);
    ck_assert(!ts_path_exists(path));
    /* Nothing else: no temporaries left behind. */
    ck_assert_int_eq(ts_count_entries(pgdata), 9);

    char *conf = auto_conf_of(pgdata);
    assert_conf_has(conf, "# Do not edit this file manually!\n");
    assert_conf_has(conf, "work_mem = '8MB'\n");
    assert_conf_has(conf, "shared_buffers = '64MB'\n");
    assert_conf_lacks(conf, "recovery_target_xid");
    assert_conf_lacks(conf, "'x'");
    assert_conf_lacks(conf, "2020-01-01");
    assert_conf_has(conf, restore_command_line);
    ck_assert_int_eq(occurrences(conf, "restore_command"), 1);
    assert_conf_has(conf, "recovery_target_timeline = 'latest'\n");
    ck_assert_int_eq(occurrences(conf, "recovery_target"), 1);
    /* A standby's delay and commands do not follow it into the restore. */
    assert_conf_lacks(conf, "'1h'");
    assert_conf_lacks(conf, "/archive/");
    assert_conf_has(conf, "recovery_min_apply_delay = 0\n");
    assert_conf_has(conf, "archive_cleanup_command = ''\n");
    assert_conf_has(conf, "recovery_end_command = ''\n");
    /* The backup's settings come before ours. */
    ck_assert(strstr(conf, "shared_buffers") < strstr(conf, "restore_command"));
    free(conf);

    ck_assert_int_ge(seen.calls, 2);
    ck_assert_uint_gt(seen.total, sizeof(data_bytes) + sizeof(control_bytes));
    ck_assert_uint_eq(seen.done, seen.total);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_lay_down_target_settings)
{
    wk_repo *repo = restorable(WK_COMPRESS_LZ4, false);
    char base[300];
    snprintf(base, sizeof(base), "%s", pgdata);
    struct {
        wk_target_kind kind;
        const char *value;
        const char *inclusive;
        const char *timeline;
        const char *action;
        const char *target_line; /* NULL: none */
        const char *timeline_line;
        const char *action_line; /* NULL: none */
    } cases[] = {
        {WK_TARGET_TIME, "2026-11-25 09:32:00+00", NULL, NULL, NULL,
         "recovery_target_time = '2026-11-25 09:32:00+00'\n",
         "recovery_target_timeline = 'latest'\n", "recovery_target_action = 'promote'\n"},
        {WK_TARGET_XID, "1234", "false", "current", "pause", "recovery_target_xid = '1234'\n",
         "recovery_target_timeline = 'current'\n", "recovery_target_action = 'pause'\n"},
        {WK_TARGET_LSN, "0/200200", "true", "1", "shutdown", "recovery_target_lsn = '0/200200'\n",
         "recovery_target_timeline = '1'\n", "recovery_target_action = 'shutdown'\n"},
        {WK_TARGET_NAME, "it's here", NULL, "latest", NULL, "recovery_target_name = 'it''s here'\n",
         "recovery_target_timeline = 'latest'\n", "recovery_target_action = 'promote'\n"},
        {WK_TARGET_IMMEDIATE, NULL, "false", NULL, "pause", "recovery_target = 'immediate'\n",
         "recovery_target_timeline = 'latest'\n", "recovery_target_action = 'pause'\n"},
        {WK_TARGET_END, NULL, "false", NULL, NULL, NULL, "recovery_target_timeline = 'latest'\n",
         NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char dir[400];
        snprintf(dir, sizeof(dir), "%s-%zu", base, i);
        wk_restore_options opt = default_options();
        opt.pgdata = dir;
        opt.target.kind = cases[i].kind;
        opt.target.value = cases[i].value;
        opt.target.inclusive = cases[i].inclusive;
        opt.target.timeline = cases[i].timeline;
        opt.target.action = cases[i].action;
        opt.target.beyond_archive = true;
        if (cases[i].kind == WK_TARGET_LSN)
            ck_assert_int_eq(wk_wal_parse_lsn(cases[i].value, &opt.target.lsn), 0);
        lay_down_ok(repo, &opt);

        char *conf = auto_conf_of(dir);
        assert_conf_has(conf, restore_command_line);
        ck_assert_int_eq(occurrences(conf, "restore_command"), 1);
        assert_conf_has(conf, "work_mem = '8MB'\n");
        assert_conf_lacks(conf, "recovery_target_xid = '1'\n");
        assert_conf_lacks(conf, "2020-01-01");
        assert_conf_has(conf, cases[i].timeline_line);
        int lines = 1; /* the timeline */
        if (cases[i].target_line != NULL) {
            assert_conf_has(conf, cases[i].target_line);
            lines++;
        }
        if (cases[i].action_line != NULL) {
            assert_conf_has(conf, cases[i].action_line);
            lines++;
        }
        bool inclusive = cases[i].inclusive != NULL && cases[i].kind != WK_TARGET_END &&
                         cases[i].kind != WK_TARGET_IMMEDIATE;
        if (inclusive) {
            char line[64];
            snprintf(line, sizeof(line), "recovery_target_inclusive = %s\n", cases[i].inclusive);
            assert_conf_has(conf, line);
            lines++;
        } else {
            assert_conf_lacks(conf, "recovery_target_inclusive");
        }
        ck_assert_msg(occurrences(conf, "\nrecovery_target") == lines, "case %zu:\n%s", i, conf);
        free(conf);
        char signal[500];
        snprintf(signal, sizeof(signal), "%s/recovery.signal", dir);
        mode_is(signal, S_IFREG, 0600);
    }
    wk_repo_free(repo);
}
END_TEST

/* postgresql.auto.conf strings are read with backslash escapes ("\b" is a backspace,
 * "\k" is "k"), so a value must have its backslashes doubled as well as its single
 * quotes, as PostgreSQL's own ALTER SYSTEM and pg_basebackup -R write them. */
START_TEST(test_lay_down_quotes_backslashes)
{
    wk_repo *repo = restorable(WK_COMPRESS_ZSTD, false);
    wk_restore_options opt = default_options();
    opt.restore_command = "walkeep-fetch --config /srv/conf\\bin\\walkeep.conf %f %p";
    opt.target.kind = WK_TARGET_NAME;
    opt.target.value = "before\\nightly";
    lay_down_ok(repo, &opt);
    char *conf = auto_conf_of(pgdata);
    assert_conf_has(conf, "restore_command = "
                          "'walkeep-fetch --config /srv/conf\\\\bin\\\\walkeep.conf %f %p'\n");
    assert_conf_has(conf, "recovery_target_name = 'before\\\\nightly'\n");
    free(conf);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_lay_down_into_existing_empty_folder)
{
    wk_repo *repo = restorable(WK_COMPRESS_ZSTD, false);
    char parent[300];
    snprintf(parent, sizeof(parent), "%s/new", tmp_dir);
    ck_assert_int_eq(mkdir(parent, 0755), 0);
    ck_assert_int_eq(mkdir(pgdata, 0755), 0);
    wk_restore_options opt = default_options();
    lay_down_ok(repo, &opt);
    mode_is(pgdata, S_IFDIR, 0700);
    assert_laid_file(pgdata, "PG_VERSION", "15\n", 3);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_lay_down_not_empty)
{
    wk_error err;
    wk_repo *repo = restorable(WK_COMPRESS_ZSTD, false);
    char parent[300], existing[400];
    snprintf(parent, sizeof(parent), "%s/new", tmp_dir);
    ck_assert_int_eq(mkdir(parent, 0700), 0);
    ck_assert_int_eq(mkdir(pgdata, 0750), 0);
    snprintf(existing, sizeof(existing), "%s/PG_VERSION", pgdata);
    ts_write_file(existing, "keep me\n", 8);
    wk_restore_options opt = default_options();
    lay_down_fails(repo, &opt, WK_ERR_EXISTS, &err);
    assert_message_has(&err, pgdata);
    char *text = ts_read_file(existing, NULL);
    ck_assert_str_eq(text, "keep me\n");
    free(text);
    ck_assert_int_eq(ts_count_entries(pgdata), 1);
    mode_is(pgdata, S_IFDIR, 0750);

    /* A hidden file counts too. */
    ck_assert_int_eq(unlink(existing), 0);
    snprintf(existing, sizeof(existing), "%s/.keep", pgdata);
    ts_write_file(existing, "", 0);
    lay_down_fails(repo, &opt, WK_ERR_EXISTS, &err);
    ck_assert_int_eq(ts_count_entries(pgdata), 1);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_lay_down_tablespace_not_empty)
{
    wk_error err;
    wk_repo *repo = restorable(WK_COMPRESS_ZSTD, true);
    ck_assert_int_eq(mkdir(ts_dir, 0700), 0);
    char existing[400];
    snprintf(existing, sizeof(existing), "%s/PG_15_202209061", ts_dir);
    ck_assert_int_eq(mkdir(existing, 0700), 0);
    wk_tablespace_map map = {"/old", ts_dir};
    wk_restore_options opt = default_options();
    opt.maps = &map;
    opt.map_count = 1;
    lay_down_fails(repo, &opt, WK_ERR_EXISTS, &err);
    assert_message_has(&err, ts_dir);
    /* Checked before anything was written. */
    ck_assert(!ts_path_exists(pgdata));
    ck_assert_int_eq(ts_count_entries(ts_dir), 1);
    ck_assert_int_eq(ts_count_entries(existing), 0);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_lay_down_tablespace_mapped)
{
    wk_repo *repo = restorable(WK_COMPRESS_ZSTD, true);
    bool old_existed = ts_path_exists("/old");
    wk_tablespace_map maps[] = {{"/elsewhere", "/nowhere"}, {"/old", ts_dir}};
    wk_restore_options opt = default_options();
    opt.maps = maps;
    opt.map_count = 2;
    lay_down_ok(repo, &opt);

    make_contents();
    mode_is(ts_dir, S_IFDIR, 0700);
    assert_laid_dir(ts_dir, "PG_15_202209061");
    assert_laid_dir(ts_dir, "PG_15_202209061/5");
    assert_laid_file(ts_dir, TS_PATH, ts_bytes, sizeof(ts_bytes));
    ck_assert_int_eq(ts_count_entries(ts_dir), 1);
    char path[600];
    snprintf(path, sizeof(path), "%s/PG_15_202209061", pgdata);
    ck_assert(!ts_path_exists(path));
    ck_assert(ts_path_exists("/old") == old_existed);
    ck_assert(!ts_path_exists("/nowhere"));

    char want[400];
    snprintf(want, sizeof(want), "%d %s\n", TS_OID, ts_dir);
    assert_laid_file(pgdata, "tablespace_map", want, strlen(want));
    assert_laid_dir(pgdata, "pg_tblspc");
    assert_laid_file(pgdata, "base/1/1259", data_bytes, sizeof(data_bytes));
    assert_laid_file(pgdata, "recovery.signal", "", 0);
    wk_repo_free(repo);
}
END_TEST

/* Flips one byte of a stored object, at `at` or, when `pattern` is given, at `at`
 * bytes after where pattern starts in it. */
static void tamper(const char *object, const void *pattern, size_t pattern_len, size_t at)
{
    char path[600];
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/%s", repo_dir, object);
    char *data = ts_read_file(path, &len);
    size_t pos = at;
    if (pattern != NULL) {
        const char *found = memmem(data, len, pattern, pattern_len);
        ck_assert_msg(found != NULL, "pattern not in %s", object);
        pos = (size_t)(found - data) + at;
    }
    ck_assert_uint_lt(pos, len);
    data[pos] ^= 0x20;
    ts_write_file(path, data, len);
    free(data);
}

static void assert_nothing_laid(void)
{
    char path[600];
    ck_assert_msg(ts_count_entries(pgdata) == 0, "%d entries left in pgdata",
                  ts_count_entries(pgdata));
    snprintf(path, sizeof(path), "%s/recovery.signal", pgdata);
    ck_assert(!ts_path_exists(path));
    ck_assert_msg(ts_count_entries(ts_dir) == 0, "%d entries left in the tablespace",
                  ts_count_entries(ts_dir));
}

START_TEST(test_lay_down_corrupt_object_zstd)
{
    wk_error err;
    wk_repo *repo = restorable(WK_COMPRESS_ZSTD, true);
    wk_tablespace_map map = {"/old", ts_dir};
    wk_restore_options opt = default_options();
    opt.maps = &map;
    opt.map_count = 1;
    /* base.tar comes after the tablespace, which is laid down whole first. */
    char object[256], path[600];
    snprintf(object, sizeof(object), "backups/b1/base.tar%s", repo->suffix);
    snprintf(path, sizeof(path), "%s/%s", repo_dir, object);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    tamper(object, NULL, 0, (size_t)st.st_size / 2);
    wk_restore_plan plan;
    plan_ok(repo, &opt, &plan);
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(wk_restore_lay_down(repo, &opt, &plan, &err), -1);
    ck_assert_int_ne(err.code, WK_ERR_NONE);
    assert_message_has(&err, "base.tar");
    wk_restore_plan_free(&plan);
    ck_assert(ts_path_exists(pgdata));
    assert_nothing_laid();
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_lay_down_corrupt_object_content)
{
    /* Stored without compression, a flipped byte in a file's data still parses as tar:
     * every file is extracted before the fingerprint check fails at the end. */
    wk_error err;
    wk_repo *repo = restorable(WK_COMPRESS_NONE, true);
    ck_assert_int_eq(mkdir(ts_dir, 0700), 0); /* existing and empty: kept */
    wk_tablespace_map map = {"/old", ts_dir};
    wk_restore_options opt = default_options();
    opt.maps = &map;
    opt.map_count = 1;
    char object[256];
    snprintf(object, sizeof(object), "backups/b1/base.tar%s", repo->suffix);
    make_contents();
    tamper(object, data_bytes, 64, 100);
    lay_down_fails(repo, &opt, WK_ERR_CORRUPT, &err);
    assert_message_has(&err, "base.tar");
    ck_assert(ts_path_exists(pgdata));
    mode_is(ts_dir, S_IFDIR, 0700);
    assert_nothing_laid();
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_lay_down_corrupt_last_stream)
{
    /* The manifest is the last stream: base.tar and the tablespace are complete when
     * it fails, and must go too. */
    wk_error err;
    wk_repo *repo = restorable(WK_COMPRESS_NONE, true);
    char parent[300];
    snprintf(parent, sizeof(parent), "%s/new", tmp_dir);
    ck_assert_int_eq(mkdir(parent, 0700), 0);
    ck_assert_int_eq(mkdir(pgdata, 0700), 0);
    wk_tablespace_map map = {"/old", ts_dir};
    wk_restore_options opt = default_options();
    opt.maps = &map;
    opt.map_count = 1;
    char object[256];
    snprintf(object, sizeof(object), "backups/b1/backup_manifest%s", repo->suffix);
    tamper(object, "Manifest-Checksum", 17, 3);
    lay_down_fails(repo, &opt, WK_ERR_CORRUPT, &err);
    assert_message_has(&err, "backup_manifest");
    assert_nothing_laid();
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_lay_down_missing_object)
{
    wk_error err;
    wk_repo *repo = restorable(WK_COMPRESS_ZSTD, false);
    char path[600];
    snprintf(path, sizeof(path), "%s/backups/b1/backup_manifest%s", repo_dir, repo->suffix);
    ck_assert_int_eq(unlink(path), 0);
    wk_restore_options opt = default_options();
    lay_down_fails(repo, &opt, WK_ERR_CORRUPT, &err);
    assert_message_has(&err, "backup_manifest");
    assert_nothing_laid();
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_lay_down_encryption_mismatch)
{
    wk_error err = {0};
    wk_repo *repo = restorable(WK_COMPRESS_ZSTD, false);
    wk_restore_options opt = default_options();
    wk_restore_plan plan;
    plan_ok(repo, &opt, &plan);
    plan.backup.encrypted = true; /* as if the record said so */
    ck_assert_int_eq(wk_restore_lay_down(repo, &opt, &plan, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_KEY);
    ck_assert(!ts_path_exists(pgdata));
    wk_restore_plan_free(&plan);
    wk_repo_free(repo);
}
END_TEST

static Suite *restore_suite(void)
{
    Suite *s = suite_create("restore");

    TCase *choose = tcase_create("choose");
    tcase_add_checked_fixture(choose, setup, teardown);
    tcase_set_timeout(choose, 60);
    tcase_add_test(choose, test_choose_time);
    tcase_add_test(choose, test_choose_lsn);
    tcase_add_test(choose, test_choose_xid_name_oldest);
    tcase_add_test(choose, test_choose_newest);
    tcase_add_test(choose, test_choose_skips_backup_waiting_for_wal);
    tcase_add_test(choose, test_choose_label);
    tcase_add_test(choose, test_choose_label_lsn_before_backup_end);
    tcase_add_test(choose, test_choose_no_backups);
    tcase_add_test(choose, test_plan_uninitialised_repo);
    suite_add_tcase(s, choose);

    TCase *wal = tcase_create("wal");
    tcase_add_checked_fixture(wal, setup, teardown);
    tcase_set_timeout(wal, 60);
    tcase_add_test(wal, test_wal_all_present);
    tcase_add_test(wal, test_wal_missing_segment_named);
    tcase_add_test(wal, test_wal_immediate_needs_backup_only);
    tcase_add_test(wal, test_wal_end_archive_shorter_than_backup);
    tcase_add_test(wal, test_wal_lsn_target_bounded);
    suite_add_tcase(s, wal);

    TCase *tl = tcase_create("timelines");
    tcase_add_checked_fixture(tl, setup, teardown);
    tcase_set_timeout(tl, 60);
    tcase_add_test(tl, test_tl_switch_at_boundary);
    tcase_add_test(tl, test_tl_old_timeline_past_switch_is_no_hole);
    tcase_add_test(tl, test_tl_switch_inside_segment);
    tcase_add_test(tl, test_tl_two_switches);
    tcase_add_test(tl, test_tl_missing_history);
    tcase_add_test(tl, test_tl_current);
    tcase_add_test(tl, test_tl_not_descending);
    tcase_add_test(tl, test_tl_left_before_backup_end);
    suite_add_tcase(s, tl);

    TCase *lay = tcase_create("lay down");
    tcase_add_checked_fixture(lay, setup, teardown);
    tcase_set_timeout(lay, 60);
    tcase_add_test(lay, test_lay_down_new_folder);
    tcase_add_test(lay, test_contradicting_records_refused);
    tcase_add_test(lay, test_settings_postgresql_refuses);
    tcase_add_test(lay, test_base_archive_without_pg_control);
    tcase_add_test(lay, test_lay_down_target_settings);
    tcase_add_test(lay, test_lay_down_quotes_backslashes);
    tcase_add_test(lay, test_lay_down_into_existing_empty_folder);
    tcase_add_test(lay, test_lay_down_not_empty);
    tcase_add_test(lay, test_lay_down_tablespace_not_empty);
    tcase_add_test(lay, test_lay_down_tablespace_mapped);
    tcase_add_test(lay, test_lay_down_corrupt_object_zstd);
    tcase_add_test(lay, test_lay_down_corrupt_object_content);
    tcase_add_test(lay, test_lay_down_corrupt_last_stream);
    tcase_add_test(lay, test_lay_down_missing_object);
    tcase_add_test(lay, test_lay_down_encryption_mismatch);
    suite_add_tcase(s, lay);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(restore_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
