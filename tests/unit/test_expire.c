/* test_expire: retention over synthetic repositories (records written with chosen times
 * and LSNs, 1 MiB segments pushed through the archive worker): retention_full,
 * retention_days, both, neither, the newest backup never removed, backups waiting for
 * WAL, interrupted folders, dumps, history files, .partial and .backup files, a plan
 * that changes nothing, and an execution interrupted half-way. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "backup.h"
#include "dump.h"
#include "expire.h"
#include "support.h"

#define SEG ((uint32_t)1 << 20)
#define SYSID UINT64_C(7212345678901234567)
#define DAY 86400

/* ---- helpers (as in test_archive.c / test_backup.c) ----------------------------------- */

static char tmp_dir[256];  /* made per test, removed afterwards */
static char repo_dir[300]; /* tmp_dir/repo */
static char wal_dir[300];  /* tmp_dir/pg_wal: files to push */
static time_t now;

static void setup(void)
{
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk_expire_XXXXXX");
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo", tmp_dir);
    snprintf(wal_dir, sizeof(wal_dir), "%s/pg_wal", tmp_dir);
    ck_assert_int_eq(mkdir(wal_dir, 0700), 0);
    now = 1795599012; /* 2026-11-25 */
}

static void teardown(void)
{
    ts_tmpdir_remove(tmp_dir);
}

static wk_repo *open_repo(void)
{
    return ts_repo_open(repo_dir, WK_COMPRESS_ZSTD, NULL);
}

/* Pushes the file name of wal_dir. */
static void push_file(wk_repo *repo, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", wal_dir, name);
    ts_push_file(repo, path);
}

/* A synthetic 1 MiB WAL segment (PostgreSQL 15 long page header, patterned bytes) of
 * timeline tli, pushed into the repository; suffix ".partial" or "". */
static void push_segment_as(wk_repo *repo, uint32_t tli, uint64_t segno, const char *suffix)
{
    ts_segment spec = {.tli = tli,
                       .segno = segno,
                       .suffix = suffix,
                       .state = (unsigned)(segno * 2654435761u + tli + strlen(suffix))};
    char name[64];
    free(ts_make_segment(wal_dir, &spec, name, NULL, NULL));
    push_file(repo, name);
}

static void push_segments(wk_repo *repo, uint32_t tli, uint64_t first, uint64_t last)
{
    for (uint64_t s = first; s <= last; s++)
        push_segment_as(repo, tli, s, "");
}

/* The .backup history file PostgreSQL archives at the end of a backup starting in segno. */
static void push_backup_file(wk_repo *repo, uint32_t tli, uint64_t segno)
{
    char seg[WK_WAL_NAME_LEN + 1], name[80], path[512], text[256];
    wk_wal_segment_name(seg, tli, segno, SEG);
    snprintf(name, sizeof(name), "%s.00000028.backup", seg);
    snprintf(text, sizeof(text), "START WAL LOCATION: 0/%X (file %s)\nSTOP WAL LOCATION: 0/%X\n",
             (unsigned)(segno * SEG + 0x28), seg, (unsigned)(segno * SEG + 0x100));
    snprintf(path, sizeof(path), "%s/%s", wal_dir, name);
    ts_write_file(path, text, strlen(text));
    push_file(repo, name);
}

static void push_history(wk_repo *repo, uint32_t tli, const char *text)
{
    char name[32], path[512];
    snprintf(name, sizeof(name), "%08X.history", tli);
    snprintf(path, sizeof(path), "%s/%s", wal_dir, name);
    ts_write_file(path, text, strlen(text));
    push_file(repo, name);
}

/* Whether the repository holds an object for WAL file name (segment, .partial...). */
static bool wal_has(wk_repo *repo, const char *name)
{
    wk_wal_object obj;
    wk_error err = {0};
    return wk_archive_find(repo, name, &obj, &err) == 0;
}

static bool seg_has(wk_repo *repo, uint32_t tli, uint64_t segno)
{
    char name[WK_WAL_NAME_LEN + 1];
    wk_wal_segment_name(name, tli, segno, SEG);
    return wal_has(repo, name);
}

/* A complete backup: its record (start in segment start_seg, stop 0x100 later in the
 * same segment, ended at `ended`) and a data object beside it. */
static void make_backup(wk_repo *repo, const char *label, uint32_t tli, uint64_t start_seg,
                        time_t ended)
{
    wk_error err = {0};
    wk_backup_record r;
    char path[512];
    memset(&r, 0, sizeof(r));
    snprintf(r.label, sizeof(r.label), "%s", label);
    r.start_lsn = start_seg * SEG + 0x28;
    r.stop_lsn = start_seg * SEG + 0x100;
    r.start_tli = r.stop_tli = tli;
    r.start_time = ended - 60;
    r.stop_time = ended;
    r.pg_version = 15;
    r.system_identifier = SYSID;
    r.compress = WK_COMPRESS_ZSTD;
    r.stream_count = 0;
    ck_assert_msg(wk_backup_record_write(repo, &r, &err) == 0, "%s", err.message);
    snprintf(path, sizeof(path), "%s/backups/%s/base.tar.zst", repo_dir, label);
    ts_write_file(path, "data", 4);
}

/* A folder without record, as an interrupted backup leaves it (objects only). */
static void make_interrupted(const char *area, const char *label)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", repo_dir, area);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/%s/%s", repo_dir, area, label);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/%s/%s/base.tar.zst", repo_dir, area, label);
    ts_write_file(path, "half", 4);
}

static void label_of(time_t t, char *buf, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y%m%dT%H%M%SZ", &tm);
}

/* A dump: two objects, one in a sub-folder, and dumps/<label>/dump.json (written by
 * dump.c, the record's one home) naming them. */
static void make_dump_of(wk_repo *repo, const char *label, time_t ended, wk_dump_format format,
                         const char *database)
{
    char path[512];
    wk_dump_stream streams[2] = {{.name = "toc.dat", .bytes = 4, .stored_bytes = 4},
                                 {.name = "3456.dat", .bytes = 4, .stored_bytes = 4}};
    wk_dump_record r = {.format = format,
                        .server_version = "15.18",
                        .start_time = ended - 30,
                        .end_time = ended,
                        .bytes = 8,
                        .stored_bytes = 8,
                        .compress = WK_COMPRESS_ZSTD,
                        .stream_count = 2,
                        .streams = streams};
    wk_error err = {0};
    snprintf(r.label, sizeof(r.label), "%s", label);
    snprintf(r.database, sizeof(r.database), "%s", database);
    if (format != WK_DUMP_DIRECTORY) { /* one stream, named by the format */
        static const char *const single[] = {[WK_DUMP_PLAIN] = "dump.sql",
                                             [WK_DUMP_CUSTOM] = "dump.custom",
                                             [WK_DUMP_GLOBALS] = "globals.sql"};
        snprintf(streams[0].name, sizeof(streams[0].name), "%s", single[format]);
        r.stream_count = 1;
    }
    snprintf(path, sizeof(path), "%s/dumps", repo_dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/dumps/%s", repo_dir, label);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/dumps/%s/toc", repo_dir, label);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/dumps/%s/toc/3456.dat.zst", repo_dir, label);
    ts_write_file(path, "rows", 4);
    snprintf(path, sizeof(path), "%s/dumps/%s/dump.zst", repo_dir, label);
    ts_write_file(path, "dump", 4);
    snprintf(streams[0].object, sizeof(streams[0].object), "dumps/%s/dump.zst", label);
    snprintf(streams[1].object, sizeof(streams[1].object), "dumps/%s/toc/3456.dat.zst", label);
    ck_assert_msg(wk_dump_record_write(repo, &r, &err) == 0, "%s", err.message);
}

static void make_dump(wk_repo *repo, const char *label, time_t ended)
{
    make_dump_of(repo, label, ended, WK_DUMP_DIRECTORY, "app");
}

static bool backup_exists(const char *label)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/backups/%s", repo_dir, label);
    return ts_path_exists(path);
}

static bool dump_exists(const char *label)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/dumps/%s", repo_dir, label);
    return ts_path_exists(path);
}

static wk_expire_policy policy_of(int full, int days, int dumps, int dump_days)
{
    wk_expire_policy p = {.retention_full = full,
                          .retention_days = days,
                          .retention_dumps = dumps,
                          .retention_dumps_days = dump_days,
                          .now = now};
    return p;
}

/* Plans, checks the plan's lines against expected (NULL-terminated), executes. */
static void expire_expect(wk_repo *repo, wk_expire_policy policy, const char *const *expected)
{
    wk_error err = {0};
    wk_expire_plan plan;
    char line[256];
    ck_assert_msg(wk_expire_plan_make(repo, &policy, &plan, &err) == 0, "plan: %s", err.message);
    size_t n = 0;
    while (expected[n] != NULL)
        n++;
    for (size_t i = 0; i < plan.action_count; i++) {
        wk_expire_describe(&plan, &plan.actions[i], line, sizeof(line));
        ck_assert_msg(i < n, "unexpected action %zu: %s", i, line);
        ck_assert_str_eq(line, expected[i]);
    }
    ck_assert_uint_eq(plan.action_count, n);
    ck_assert_msg(wk_expire_execute(repo, &plan, NULL, NULL, &err) == 0, "execute: %s",
                  err.message);
    wk_expire_plan_free(&plan);
}

static size_t listed_backups(wk_repo *repo)
{
    wk_error err = {0};
    wk_backup_entry *entries = NULL;
    size_t count = 0;
    ck_assert_msg(wk_backup_list(repo, &entries, &count, &err) == 0, "%s", err.message);
    wk_backup_list_free(entries, count);
    return count;
}

/* Every path under dir (files and folders, hidden ones too), sorted, one per line. */
static void listing_of(const char *dir, const char *rel, char **out, size_t *len, size_t *cap)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    char *names[512];
    size_t n = 0;
    for (struct dirent *de = readdir(d); de != NULL; de = readdir(d)) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        ck_assert_uint_lt(n, 512);
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    for (size_t i = 0; i < n; i++) {
        char path[1024], relpath[1024];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        snprintf(relpath, sizeof(relpath), "%s%s", rel, names[i]);
        ck_assert_int_eq(lstat(path, &st), 0);
        size_t need = strlen(relpath) + 32;
        if (*len + need >= *cap) {
            *cap = (*cap + need) * 2;
            *out = realloc(*out, *cap);
            ck_assert_ptr_nonnull(*out);
        }
        *len += (size_t)sprintf(*out + *len, "%s %lld\n", relpath, (long long)st.st_size);
        if (S_ISDIR(st.st_mode)) {
            char sub[1100];
            snprintf(sub, sizeof(sub), "%s/", relpath);
            listing_of(path, sub, out, len, cap);
        }
        free(names[i]);
    }
}

static char *repo_listing(void)
{
    char *out = calloc(1, 1);
    size_t len = 0, cap = 1;
    ck_assert_ptr_nonnull(out);
    listing_of(repo_dir, "", &out, &len, &cap);
    return out;
}

/* Four backups a day apart, starting in segments 2, 5, 8 and 11, each ended at
 * now - 10, 6, 4 and 1 days; segments 1..13 of timeline 1 archived. */
static wk_repo *four_backups(void)
{
    wk_repo *repo = open_repo();
    push_segments(repo, 1, 1, 13);
    make_backup(repo, "b1", 1, 2, now - 10 * DAY);
    make_backup(repo, "b2", 1, 5, now - 6 * DAY);
    make_backup(repo, "b3", 1, 8, now - 4 * DAY);
    make_backup(repo, "b4", 1, 11, now - 1 * DAY);
    return repo;
}

/* ---- tests -------------------------------------------------------------------------- */

START_TEST(test_full_two_of_four)
{
    wk_repo *repo = four_backups();
    static const char *const expected[] = {
        "backup b1", "backup b2",
        "WAL 000000010000000000000001 .. 000000010000000000000007 (7 segments)", NULL};
    expire_expect(repo, policy_of(2, 0, 0, 0), expected);
    ck_assert(!backup_exists("b1"));
    ck_assert(!backup_exists("b2"));
    ck_assert(backup_exists("b3"));
    ck_assert(backup_exists("b4"));
    ck_assert_uint_eq(listed_backups(repo), 2);
    for (uint64_t s = 1; s <= 13; s++)
        ck_assert_msg(seg_has(repo, 1, s) == (s >= 8), "segment %d", (int)s);
    /* Run again: nothing more goes. */
    static const char *const none[] = {NULL};
    expire_expect(repo, policy_of(2, 0, 0, 0), none);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_days)
{
    wk_repo *repo = four_backups();
    /* 5 days: b3 and b4 ended inside; b2 is the base of the window's start. */
    static const char *const expected[] = {
        "backup b1", "WAL 000000010000000000000001 .. 000000010000000000000004 (4 segments)", NULL};
    expire_expect(repo, policy_of(0, 5, 0, 0), expected);
    ck_assert(backup_exists("b2"));
    ck_assert(seg_has(repo, 1, 5));
    /* Half a day: only b4 ended inside, and it is also the base of the start. */
    static const char *const second[] = {
        "backup b2", "backup b3",
        "WAL 000000010000000000000005 .. 00000001000000000000000A (6 segments)", NULL};
    wk_expire_policy p = policy_of(0, 0, 0, 0);
    p.retention_days = 1;
    p.now = now + DAY / 2; /* b4 ended 1.5 days before */
    expire_expect(repo, p, second);
    ck_assert(backup_exists("b4"));
    ck_assert_uint_eq(listed_backups(repo), 1);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_days_all_old_keeps_newest)
{
    wk_repo *repo = four_backups();
    wk_expire_policy p = policy_of(0, 3, 0, 0);
    p.now = now + 100 * DAY;
    static const char *const expected[] = {
        "backup b1", "backup b2", "backup b3",
        "WAL 000000010000000000000001 .. 00000001000000000000000A (10 segments)", NULL};
    expire_expect(repo, p, expected);
    ck_assert(backup_exists("b4"));
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_both_rules)
{
    wk_repo *repo = four_backups();
    /* full = 1 keeps b4; 5 days keep b3, b4 and the base b2: the union stays. */
    static const char *const expected[] = {
        "backup b1", "WAL 000000010000000000000001 .. 000000010000000000000004 (4 segments)", NULL};
    expire_expect(repo, policy_of(1, 5, 0, 0), expected);
    ck_assert_uint_eq(listed_backups(repo), 3);
    /* full = 3 keeps b2..b4 even though 3 days would let b2 go. */
    static const char *const none[] = {NULL};
    expire_expect(repo, policy_of(3, 3, 0, 0), none);
    ck_assert_uint_eq(listed_backups(repo), 3);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_neither_keeps_all)
{
    wk_repo *repo = four_backups();
    char *before = repo_listing();
    static const char *const none[] = {NULL};
    expire_expect(repo, policy_of(0, 0, 0, 0), none);
    char *after = repo_listing();
    ck_assert_str_eq(before, after);
    ck_assert_uint_eq(listed_backups(repo), 4);
    free(before);
    free(after);
    /* retention_full = 1 keeps the newest only. */
    static const char *const expected[] = {
        "backup b1", "backup b2", "backup b3",
        "WAL 000000010000000000000001 .. 00000001000000000000000A (10 segments)", NULL};
    expire_expect(repo, policy_of(1, 0, 0, 0), expected);
    ck_assert(backup_exists("b4"));
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_waiting_for_wal_not_counted)
{
    wk_repo *repo = four_backups();
    /* b5 has its record but its stop segment (20) is not archived: it restores nothing
     * yet, so retention_full = 1 keeps it and the newest usable backup, b4. */
    make_backup(repo, "b5", 1, 20, now);
    static const char *const expected[] = {
        "backup b1", "backup b2", "backup b3",
        "WAL 000000010000000000000001 .. 00000001000000000000000A (10 segments)", NULL};
    expire_expect(repo, policy_of(1, 0, 0, 0), expected);
    ck_assert(backup_exists("b4"));
    ck_assert(backup_exists("b5"));
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_interrupted_folders)
{
    wk_repo *repo = four_backups();
    char old_label[32], new_label[32];
    label_of(now - 20 * DAY, old_label, sizeof(old_label)); /* before b4 started */
    label_of(now - DAY / 2, new_label, sizeof(new_label));  /* after: maybe running */
    make_interrupted("backups", old_label);
    make_interrupted("backups", new_label);
    make_interrupted("backups", "killed"); /* no time in the label */
    char expected_line[96];
    snprintf(expected_line, sizeof(expected_line), "backup %s (interrupted: no record)", old_label);
    const char *const expected[] = {expected_line, NULL};
    /* No retention set: no backup and no WAL goes, but the garbage does. */
    wk_error err = {0};
    wk_expire_policy p = policy_of(0, 0, 0, 0);
    wk_expire_plan plan;
    ck_assert_msg(wk_expire_plan_make(repo, &p, &plan, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(plan.note_count, 1);
    ck_assert_ptr_nonnull(strstr(plan.notes[0].text, "\"killed\""));
    wk_expire_plan_free(&plan);
    expire_expect(repo, p, expected);
    ck_assert(!backup_exists(old_label));
    ck_assert(backup_exists(new_label));
    ck_assert(backup_exists("killed"));
    ck_assert_uint_eq(listed_backups(repo), 6);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_dry_run_changes_nothing)
{
    wk_repo *repo = four_backups();
    char old_label[32];
    label_of(now - 20 * DAY, old_label, sizeof(old_label));
    make_interrupted("backups", old_label);
    make_dump(repo, "d1", now - 9 * DAY);
    make_dump(repo, "d2", now - DAY);
    char *before = repo_listing();
    wk_error err = {0};
    wk_expire_policy p = policy_of(1, 0, 1, 0);
    wk_expire_plan plan;
    ck_assert_msg(wk_expire_plan_make(repo, &p, &plan, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(plan.action_count, 6); /* interrupted, b1..b3, d1, WAL */
    char *after = repo_listing();
    ck_assert_str_eq(before, after);
    /* The same plan carried out removes exactly what it listed. */
    ck_assert_msg(wk_expire_execute(repo, &plan, NULL, NULL, &err) == 0, "%s", err.message);
    wk_expire_plan_free(&plan);
    ck_assert(!dump_exists("d1"));
    ck_assert(dump_exists("d2"));
    ck_assert_uint_eq(listed_backups(repo), 1);
    free(before);
    free(after);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_history_partial_backup_files)
{
    wk_repo *repo = open_repo();
    /* Timeline 1: segments 1..6, a .backup file for a backup in 2, a .partial of 6;
     * timeline 2 branched at 0/6000100 (in segment 6): segments 6..12, its history
     * file; backups b1 (tli 1, segment 2) and b2 (tli 2, segment 9). */
    push_segments(repo, 1, 1, 5);
    push_backup_file(repo, 1, 2);
    push_segment_as(repo, 1, 6, ".partial");
    push_history(repo, 2, "1\t0/6000100\tno recovery target specified\n");
    push_segments(repo, 2, 6, 12);
    push_backup_file(repo, 2, 9);
    make_backup(repo, "b1", 1, 2, now - 3 * DAY);
    make_backup(repo, "b2", 2, 9, now - 1 * DAY);
    static const char *const expected[] = {
        "backup b1",
        "WAL 000000010000000000000001 .. 000000010000000000000006 (5 segments, 1 partial "
        "segment, 1 backup history file)",
        "WAL 000000020000000000000006 .. 000000020000000000000008 (3 segments)", NULL};
    expire_expect(repo, policy_of(1, 0, 0, 0), expected);
    ck_assert(wal_has(repo, "00000002.history"));
    ck_assert(!wal_has(repo, "000000010000000000000006.partial"));
    ck_assert(!wal_has(repo, "000000010000000000000002.00000028.backup"));
    ck_assert(wal_has(repo, "000000020000000000000009.00000028.backup"));
    for (uint64_t s = 6; s <= 12; s++)
        ck_assert_msg(seg_has(repo, 2, s) == (s >= 9), "segment %d", (int)s);
    for (uint64_t s = 1; s <= 5; s++)
        ck_assert(!seg_has(repo, 1, s));
    wk_repo_free(repo);
}
END_TEST

/* Metadata that lies about the segment size (2 MiB, the segments are 1 MiB): expire proves
 * the number against the newest segment's own header and plans nothing. */
START_TEST(test_lying_segment_size_refused)
{
    wk_repo *repo = open_repo();
    push_segments(repo, 1, 1, 12);
    make_backup(repo, "b1", 1, 3, now - 2 * DAY);
    make_backup(repo, "b2", 1, 9, now - 1 * DAY);
    wk_repo_free(repo);
    char path[400];
    snprintf(path, sizeof(path), "%s/walkeep.repo", repo_dir);
    char *meta = ts_read_file(path, NULL);
    char *at = strstr(meta, "wal_segment_size = 1048576");
    ck_assert_ptr_nonnull(at);
    memcpy(at, "wal_segment_size = 2097152", 26);
    ts_write_text(path, meta);
    free(meta);
    repo = open_repo();
    wk_error err = {0};
    wk_expire_policy p = policy_of(1, 0, 0, 0);
    wk_expire_plan plan;
    ck_assert_int_eq(wk_expire_plan_make(repo, &p, &plan, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_msg(strstr(err.message, "refusing to expire") != NULL, "%s", err.message);
    ck_assert_msg(strstr(err.message, "segment size") != NULL, "%s", err.message);
    for (uint64_t seg = 1; seg <= 12; seg++)
        ck_assert(seg_has(repo, 1, seg));
    /* A size that is no power of two is refused when the metadata is read. */
    wk_repo_free(repo);
    meta = ts_read_file(path, NULL);
    at = strstr(meta, "wal_segment_size = 2097152");
    memcpy(at, "wal_segment_size = 3000000", 26);
    ts_write_text(path, meta);
    free(meta);
    repo = open_repo();
    ck_assert_int_eq(wk_expire_plan_make(repo, &p, &plan, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_msg(strstr(err.message, "incomplete, invalid") != NULL, "%s", err.message);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_wal_folders_below_cutoff_removed)
{
    wk_repo *repo = open_repo();
    /* 1 MiB segments: 4096 per log id, so segment 4096 opens wal/0000000100000001. */
    push_segments(repo, 1, 4094, 4097);
    make_backup(repo, "b1", 1, 4094, now - 2 * DAY);
    make_backup(repo, "b2", 1, 4097, now - 1 * DAY);
    wk_error err = {0};
    wk_expire_policy p = policy_of(1, 0, 0, 0);
    wk_expire_plan plan;
    ck_assert_msg(wk_expire_plan_make(repo, &p, &plan, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(plan.action_count, 2);
    ck_assert_uint_eq(plan.actions[1].object_count, 6); /* 3 segments and their claims */
    char line[256];
    wk_expire_describe(&plan, &plan.actions[1], line, sizeof(line));
    ck_assert_str_eq(line, "WAL 000000010000000000000FFE .. 000000010000000100000000 (3 segments)");
    ck_assert_msg(wk_expire_execute(repo, &plan, NULL, NULL, &err) == 0, "%s", err.message);
    wk_expire_plan_free(&plan);
    char path[512];
    snprintf(path, sizeof(path), "%s/wal/0000000100000000", repo_dir);
    ck_assert(!ts_path_exists(path)); /* wholly below the cutoff, and empty */
    snprintf(path, sizeof(path), "%s/wal/0000000100000001", repo_dir);
    ck_assert(ts_path_exists(path));
    ck_assert(seg_has(repo, 1, 4097));
    ck_assert(!seg_has(repo, 1, 4096));
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_dumps)
{
    wk_repo *repo = open_repo();
    push_segments(repo, 1, 1, 2);
    make_dump(repo, "d1", now - 10 * DAY);
    make_dump(repo, "d2", now - 6 * DAY);
    make_dump(repo, "d3", now - 4 * DAY);
    make_dump(repo, "d4", now - 1 * DAY);
    char old_label[32];
    label_of(now - 20 * DAY, old_label, sizeof(old_label));
    make_interrupted("dumps", old_label);
    /* Neither set: every dump stays (the interrupted one goes). */
    char line[96];
    snprintf(line, sizeof(line), "dump %s (interrupted: no record)", old_label);
    const char *const first[] = {line, NULL};
    expire_expect(repo, policy_of(0, 0, 0, 0), first);
    for (int i = 1; i <= 4; i++) {
        char label[8];
        snprintf(label, sizeof(label), "d%d", i);
        ck_assert(dump_exists(label));
    }
    /* 5 days: d3 and d4; with retention_dumps = 3 too, d2 as well. */
    static const char *const second[] = {"dump d1", NULL};
    expire_expect(repo, policy_of(0, 0, 3, 5), second);
    static const char *const third[] = {"dump d2", NULL};
    expire_expect(repo, policy_of(0, 0, 0, 5), third);
    static const char *const fourth[] = {"dump d3", NULL};
    expire_expect(repo, policy_of(0, 0, 1, 0), fourth);
    /* The newest dump stays even when it is older than the window. */
    wk_expire_policy p = policy_of(0, 0, 0, 1);
    p.now = now + 30 * DAY;
    static const char *const none[] = {NULL};
    expire_expect(repo, p, none);
    ck_assert(dump_exists("d4"));
    ck_assert(!dump_exists("d1"));
    wk_repo_free(repo);
}
END_TEST

/* Retention counts per database, whatever the format, and the globals apart: "keep one
 * dump" keeps the newest of each. */
START_TEST(test_dumps_per_database)
{
    wk_repo *repo = open_repo();
    push_segments(repo, 1, 1, 2);
    make_dump_of(repo, "g1", now - 5 * DAY, WK_DUMP_GLOBALS, "postgres");
    make_dump_of(repo, "g2", now - 2 * DAY, WK_DUMP_GLOBALS, "app");
    make_dump_of(repo, "a1", now - 6 * DAY, WK_DUMP_CUSTOM, "app");
    make_dump_of(repo, "a2", now - 4 * DAY, WK_DUMP_PLAIN, "app");
    make_dump_of(repo, "a3", now - 3 * DAY, WK_DUMP_DIRECTORY, "app");
    make_dump_of(repo, "s1", now - 9 * DAY, WK_DUMP_CUSTOM, "shop");
    make_dump_of(repo, "s2", now - 1 * DAY, WK_DUMP_CUSTOM, "shop");
    make_dump_of(repo, "postgres1", now - 8 * DAY, WK_DUMP_CUSTOM, "postgres");
    /* Two per group: a1 (app) goes, every group keeps two. */
    static const char *const two[] = {"dump a1", NULL};
    expire_expect(repo, policy_of(0, 0, 2, 0), two);
    /* One per group: a2 (app), g1 (globals), s1 (shop); postgres1 is its group's only
     * dump and stays although it is older than every removed one. */
    static const char *const one[] = {"dump g1", "dump a2", "dump s1", NULL};
    expire_expect(repo, policy_of(0, 0, 1, 0), one);
    static const char *const kept[] = {"g2", "a3", "s2", "postgres1"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        ck_assert_msg(dump_exists(kept[i]), "%s was kept", kept[i]);
    /* By age: a group whose every dump is older than the window keeps its newest. */
    static const char *const none[] = {NULL};
    expire_expect(repo, policy_of(0, 0, 0, 1), none);
    wk_repo_free(repo);
}
END_TEST

/* A storage wrapper whose remove fails from the Nth call on. */
typedef struct failing_storage {
    wk_storage base;
    wk_storage *inner;
    int calls, fail_at;
} failing_storage;

static int fs_put_open(wk_storage *st, const char *path, int flags, wk_stage **sink, wk_error *err)
{
    return wk_storage_put_open(((failing_storage *)st)->inner, path, flags, sink, err);
}

static int fs_get(wk_storage *st, const char *path, wk_stage *dest, wk_error *err)
{
    return wk_storage_get(((failing_storage *)st)->inner, path, dest, err);
}

static int fs_stat(wk_storage *st, const char *path, wk_storage_info *out, wk_error *err)
{
    return wk_storage_stat(((failing_storage *)st)->inner, path, out, err);
}

static int fs_list(wk_storage *st, const char *dir, const char *prefix, wk_storage_list_cb cb,
                   void *arg, wk_error *err)
{
    return wk_storage_list(((failing_storage *)st)->inner, dir, prefix, cb, arg, err);
}

static int fs_remove(wk_storage *st, const char *path, wk_error *err)
{
    failing_storage *fs = (failing_storage *)st;
    if (++fs->calls >= fs->fail_at)
        return wk_error_sys(err, WK_ERR_IO, EIO, "could not remove file \"%s\"", path);
    return wk_storage_remove(fs->inner, path, err);
}

static void fs_free(wk_storage *st)
{
    failing_storage *fs = (failing_storage *)st;
    wk_storage_free(fs->inner);
    free(fs);
}

static const wk_storage_ops failing_ops = {.put_open = fs_put_open,
                                           .get = fs_get,
                                           .stat = fs_stat,
                                           .list = fs_list,
                                           .remove = fs_remove,
                                           .free = fs_free,
                                           .retarget = NULL};

START_TEST(test_interrupted_half_way)
{
    wk_repo *repo = four_backups();
    failing_storage *fs = calloc(1, sizeof(*fs));
    ck_assert_ptr_nonnull(fs);
    fs->base.ops = &failing_ops;
    fs->inner = repo->storage;
    fs->fail_at = 2; /* b1's record goes, then its data object fails */
    repo->storage = &fs->base;
    wk_error err = {0};
    wk_expire_policy p = policy_of(2, 0, 0, 0);
    wk_expire_plan plan;
    ck_assert_msg(wk_expire_plan_make(repo, &p, &plan, &err) == 0, "%s", err.message);
    ck_assert_int_eq(wk_expire_execute(repo, &plan, NULL, NULL, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "could not remove backup \"b1\""));
    wk_expire_plan_free(&plan);
    /* b1 lost its record first: it is interrupted now, never restored; all WAL is
     * still there. */
    char path[512];
    snprintf(path, sizeof(path), "%s/backups/b1/backup.json", repo_dir);
    ck_assert(!ts_path_exists(path));
    snprintf(path, sizeof(path), "%s/backups/b1/base.tar.zst", repo_dir);
    ck_assert(ts_path_exists(path));
    for (uint64_t s = 1; s <= 13; s++)
        ck_assert(seg_has(repo, 1, s));
    wk_backup_entry *entries = NULL;
    size_t count = 0;
    ck_assert_int_eq(wk_backup_list(repo, &entries, &count, &err), 0);
    ck_assert_uint_eq(count, 4);
    ck_assert_str_eq(entries[3].label, "b1"); /* without record: listed last */
    ck_assert(!entries[3].has_record);
    wk_backup_list_free(entries, count);
    /* A later run with a custom label cannot date the leftover: a note, b2 and the WAL
     * below b3 go. */
    fs->fail_at = 1000000;
    static const char *const expected[] = {
        "backup b2", "WAL 000000010000000000000001 .. 000000010000000000000007 (7 segments)", NULL};
    expire_expect(repo, p, expected);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_label_time)
{
    time_t t;
    ck_assert_int_eq(wk_expire_label_time("20261125T092850Z", &t), 0);
    ck_assert_int_eq((long long)t, 1795598930LL);
    ck_assert_int_eq(wk_expire_label_time("20261125T092850", &t), -1);
    ck_assert_int_eq(wk_expire_label_time("2026112xT092850Z", &t), -1);
    ck_assert_int_eq(wk_expire_label_time("20261325T092850Z", &t), -1);
    ck_assert_int_eq(wk_expire_label_time("killed", &t), -1);
}
END_TEST

START_TEST(test_no_backup_no_wal_removed)
{
    wk_repo *repo = open_repo();
    push_segments(repo, 1, 1, 3);
    static const char *const none[] = {NULL};
    expire_expect(repo, policy_of(1, 1, 0, 0), none);
    ck_assert(seg_has(repo, 1, 1));
    wk_repo_free(repo);
}
END_TEST

static Suite *expire_suite(void)
{
    Suite *s = suite_create("expire");
    TCase *tc = tcase_create("expire");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_full_two_of_four);
    tcase_add_test(tc, test_days);
    tcase_add_test(tc, test_days_all_old_keeps_newest);
    tcase_add_test(tc, test_both_rules);
    tcase_add_test(tc, test_neither_keeps_all);
    tcase_add_test(tc, test_waiting_for_wal_not_counted);
    tcase_add_test(tc, test_interrupted_folders);
    tcase_add_test(tc, test_dry_run_changes_nothing);
    tcase_add_test(tc, test_history_partial_backup_files);
    tcase_add_test(tc, test_wal_folders_below_cutoff_removed);
    tcase_add_test(tc, test_lying_segment_size_refused);
    tcase_add_test(tc, test_dumps);
    tcase_add_test(tc, test_dumps_per_database);
    tcase_add_test(tc, test_interrupted_half_way);
    tcase_add_test(tc, test_label_time);
    tcase_add_test(tc, test_no_backup_no_wal_removed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(expire_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
