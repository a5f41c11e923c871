/* test_dump: the parts of the dump module that need no server: labels, the JSON record
 * (round trip, written once, damage refused), the listing (order, interrupted folders,
 * JSON), the connection strings and command lines we build, and the refusals of
 * options a format cannot honour. Taking and restoring dumps needs a live PostgreSQL
 * and is covered by tests/integration/test_dump.sh. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump.h"
#include "json.h"
#include "support.h"

static char tmp_dir[256];
static char repo_dir[300];

static void setup(void)
{
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk_dump_XXXXXX");
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo", tmp_dir);
}

static void teardown(void)
{
    ts_tmpdir_remove(tmp_dir);
}

static wk_repo *open_repo(void)
{
    return ts_repo_open(repo_dir, WK_COMPRESS_ZSTD, NULL);
}

/* A record with n streams named after its label. */
static void make_record(wk_dump_record *r, const char *label, wk_dump_format format, time_t start,
                        size_t n)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->label, sizeof(r->label), "%s", label);
    snprintf(r->database, sizeof(r->database), "shop \"main\"");
    snprintf(r->server_version, sizeof(r->server_version), "15.18 (Debian 15.18-0+deb12u1)");
    r->format = format;
    r->start_time = start;
    r->end_time = start + 7;
    r->compress = WK_COMPRESS_LZ4;
    r->encrypted = true;
    r->stream_count = n;
    r->streams = calloc(n + 1, sizeof(*r->streams));
    for (size_t i = 0; i < n; i++) {
        wk_dump_stream *s = &r->streams[i];
        snprintf(s->name, sizeof(s->name), n == 1 ? "dump.custom" : "%zu.dat", i + 3000);
        snprintf(s->object, sizeof(s->object), "dumps/%s/%s%s.lz4.enc", label, n == 1 ? "" : "dir/",
                 s->name);
        s->bytes = 1000 * (i + 1);
        s->stored_bytes = 100 * (i + 1);
        for (size_t k = 0; k < sizeof(s->fingerprint.bytes); k++)
            s->fingerprint.bytes[k] = (uint8_t)(i * 16 + k);
        r->bytes += s->bytes;
        r->stored_bytes += s->stored_bytes;
    }
}

/* Writes text to repo_dir/rel, making the folders on the way. */
static void write_file(const char *rel, const char *text)
{
    char path[512], dir[512];
    snprintf(path, sizeof(path), "%s/%s", repo_dir, rel);
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    ts_write_text(path, text);
}

/* ---- labels and formats ---------------------------------------------------------- */

START_TEST(test_labels)
{
    wk_error err = {0};
    char long_label[80];
    ck_assert_int_eq(wk_dump_check_label("20261125T093012Z-shop", &err), 0);
    ck_assert_int_eq(wk_dump_check_label("a.b_c-D9", &err), 0);
    const char *bad[] = {"", ".hidden", "a/b", "../x", "a b", "é", "a\nb", "x;rm"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(wk_dump_check_label(bad[i], &err) == -1, "accepted \"%s\"", bad[i]);
        ck_assert_int_eq(err.code, WK_ERR_USAGE);
        ck_assert_ptr_nonnull(strstr(err.message, "invalid dump label"));
    }
    memset(long_label, 'a', 63);
    long_label[63] = '\0';
    ck_assert_int_eq(wk_dump_check_label(long_label, &err), 0);
    long_label[63] = 'a';
    long_label[64] = '\0';
    ck_assert_int_eq(wk_dump_check_label(long_label, &err), -1);
    ck_assert_int_eq(wk_dump_check_label(NULL, &err), -1);
}
END_TEST

START_TEST(test_formats)
{
    wk_dump_format f;
    const char *names[] = {"plain", "custom", "directory", "globals"};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(wk_dump_parse_format(names[i], &f), 0);
        ck_assert_int_eq(f, i);
        ck_assert_str_eq(wk_dump_format_name(f), names[i]);
    }
    ck_assert_int_eq(wk_dump_parse_format("tar", &f), -1);
    ck_assert_int_eq(wk_dump_parse_format("", &f), -1);
    ck_assert_int_eq(wk_dump_parse_format(NULL, &f), -1);
}
END_TEST

/* ---- the record -------------------------------------------------------------------- */

START_TEST(test_record_round_trip)
{
    wk_repo *repo = open_repo();
    wk_error err = {0};
    wk_dump_record r, back = {0};
    make_record(&r, "d1", WK_DUMP_DIRECTORY, 1795599012, 3);
    ck_assert_msg(wk_dump_record_write(repo, &r, &err) == 0, "%s", err.message);
    ck_assert_msg(wk_dump_record_read(repo, "d1", &back, &err) == 0, "%s", err.message);
    ck_assert_str_eq(back.label, "d1");
    ck_assert_str_eq(back.database, r.database);
    ck_assert_str_eq(back.server_version, r.server_version);
    ck_assert_int_eq(back.format, WK_DUMP_DIRECTORY);
    ck_assert_int_eq(back.start_time, r.start_time);
    ck_assert_int_eq(back.end_time, r.end_time);
    ck_assert_uint_eq(back.bytes, 6000);
    ck_assert_uint_eq(back.stored_bytes, 600);
    ck_assert_int_eq(back.compress, WK_COMPRESS_LZ4);
    ck_assert(back.encrypted);
    ck_assert_uint_eq(back.stream_count, 3);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_str_eq(back.streams[i].name, r.streams[i].name);
        ck_assert_str_eq(back.streams[i].object, r.streams[i].object);
        ck_assert_uint_eq(back.streams[i].bytes, r.streams[i].bytes);
        ck_assert_uint_eq(back.streams[i].stored_bytes, r.streams[i].stored_bytes);
        ck_assert(wk_fingerprint_equal(&back.streams[i].fingerprint, &r.streams[i].fingerprint));
    }
    /* The shape backup.json has: the same stream members, times as recovery_target_time. */
    char path[512];
    snprintf(path, sizeof(path), "%s/dumps/d1/dump.json", repo_dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char text[8192];
    size_t len = fread(text, 1, sizeof(text), f);
    fclose(f);
    wk_json *doc = NULL;
    ck_assert_int_eq(wk_json_parse(text, len, &doc, &err), 0);
    int64_t version;
    const char *s;
    ck_assert_int_eq(wk_json_get_int(doc, "format", &version, &err), 0);
    ck_assert_int_eq(version, 1);
    ck_assert_int_eq(wk_json_get_string(doc, "start_time", &s, &err), 0);
    ck_assert_str_eq(s, "2026-11-25 09:30:12+00");
    const wk_json *st = wk_json_at(wk_json_get(doc, "streams"), 0);
    ck_assert_uint_eq(wk_json_length(st), 5);
    ck_assert_int_eq(wk_json_get_string(st, "fingerprint", &s, &err), 0);
    ck_assert_str_eq(s, "000102030405060708090a0b0c0d0e0f");
    wk_json_free(doc);
    /* Written once. */
    ck_assert_int_eq(wk_dump_record_write(repo, &r, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    ck_assert_int_eq(wk_dump_record_read(repo, "nosuch", &back, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    wk_dump_record_free(&back);
    wk_dump_record_free(&r);
    wk_dump_record_free(NULL);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_record_damage)
{
    wk_repo *repo = open_repo();
    wk_error err = {0};
    wk_dump_record back = {0};
    static const char *const bad[] = {
        "{",
        "{\"format\": 2}",
        /* an object outside the dump's folder */
        "{\"format\":1,\"label\":\"x\",\"database\":\"d\",\"dump_format\":\"custom\","
        "\"server_version\":\"15\",\"start_time\":\"2026-11-25 09:30:12+00\","
        "\"end_time\":\"2026-11-25 09:30:12+00\",\"bytes\":1,\"stored_bytes\":1,"
        "\"compress\":\"zstd\",\"encrypted\":false,\"streams\":[{\"name\":\"dump.custom\","
        "\"object\":\"wal/0000000100000000/x\",\"bytes\":1,\"stored_bytes\":1,"
        "\"fingerprint\":\"000102030405060708090a0b0c0d0e0f\"}]}",
        /* a stream name with a path in it */
        "{\"format\":1,\"label\":\"x\",\"database\":\"d\",\"dump_format\":\"directory\","
        "\"server_version\":\"15\",\"start_time\":\"2026-11-25 09:30:12+00\","
        "\"end_time\":\"2026-11-25 09:30:12+00\",\"bytes\":1,\"stored_bytes\":1,"
        "\"compress\":\"zstd\",\"encrypted\":false,\"streams\":[{\"name\":\"../../etc/x\","
        "\"object\":\"dumps/x/dir/a\",\"bytes\":1,\"stored_bytes\":1,"
        "\"fingerprint\":\"000102030405060708090a0b0c0d0e0f\"}]}",
        /* an unknown format */
        "{\"format\":1,\"label\":\"x\",\"database\":\"d\",\"dump_format\":\"tar\","
        "\"server_version\":\"15\",\"start_time\":\"2026-11-25 09:30:12+00\","
        "\"end_time\":\"2026-11-25 09:30:12+00\",\"bytes\":1,\"stored_bytes\":1,"
        "\"compress\":\"zstd\",\"encrypted\":false,\"streams\":[]}",
        /* a custom dump without its stream */
        "{\"format\":1,\"label\":\"x\",\"database\":\"d\",\"dump_format\":\"custom\","
        "\"server_version\":\"15\",\"start_time\":\"2026-11-25 09:30:12+00\","
        "\"end_time\":\"2026-11-25 09:30:12+00\",\"bytes\":1,\"stored_bytes\":1,"
        "\"compress\":\"zstd\",\"encrypted\":false,\"streams\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file("dumps/x/dump.json", bad[i]);
        ck_assert_msg(wk_dump_record_read(repo, "x", &back, &err) == -1, "accepted record %zu", i);
        ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    }
    ck_assert_int_eq(wk_dump_record_read(repo, "../backups", &back, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    wk_repo_free(repo);
}
END_TEST

/* ---- listing ----------------------------------------------------------------------- */

START_TEST(test_list_order)
{
    wk_repo *repo = open_repo();
    wk_error err = {0};
    wk_dump_record r;
    wk_dump_entry *entries = NULL;
    size_t count = 0;
    /* Labels sort the other way round from start times. */
    const char *labels[] = {"c-oldest", "b-middle", "a-newest", "a-tie"};
    const time_t starts[] = {1000, 2000, 3000, 3000};
    for (int i = 0; i < 4; i++) {
        make_record(&r, labels[i], WK_DUMP_CUSTOM, starts[i], 1);
        ck_assert_int_eq(wk_dump_record_write(repo, &r, &err), 0);
        wk_dump_record_free(&r);
    }
    write_file("dumps/0-interrupted/dump.custom.zst", "x"); /* no record */
    char empty[512];
    snprintf(empty, sizeof(empty), "%s/dumps/empty", repo_dir);
    ck_assert_int_eq(mkdir(empty, 0700), 0); /* nothing at all: not listed */
    ck_assert_msg(wk_dump_list(repo, &entries, &count, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(count, 5);
    ck_assert_str_eq(entries[0].label, "c-oldest");
    ck_assert_str_eq(entries[1].label, "b-middle");
    ck_assert_str_eq(entries[2].label, "a-newest");
    ck_assert_str_eq(entries[3].label, "a-tie");
    ck_assert_str_eq(entries[4].label, "0-interrupted");
    ck_assert(entries[0].has_record && !entries[4].has_record);

    char *text = wk_dump_list_json(entries, count, &err);
    ck_assert_ptr_nonnull(text);
    wk_json *doc = NULL;
    ck_assert_int_eq(wk_json_parse(text, strlen(text), &doc, &err), 0);
    const wk_json *dumps = wk_json_get(doc, "dumps");
    ck_assert_uint_eq(wk_json_length(dumps), 5);
    const char *s;
    uint64_t bytes;
    ck_assert_int_eq(wk_json_get_string(wk_json_at(dumps, 0), "label", &s, &err), 0);
    ck_assert_str_eq(s, "c-oldest");
    ck_assert_int_eq(wk_json_get_string(wk_json_at(dumps, 0), "format", &s, &err), 0);
    ck_assert_str_eq(s, "custom");
    ck_assert_int_eq(wk_json_get_string(wk_json_at(dumps, 0), "end_time", &s, &err), 0);
    ck_assert_int_eq(wk_json_get_uint(wk_json_at(dumps, 0), "stored_bytes", &bytes, &err), 0);
    ck_assert_uint_eq(bytes, 100);
    ck_assert_int_eq(wk_json_get_string(wk_json_at(dumps, 4), "status", &s, &err), 0);
    ck_assert_str_eq(s, "incomplete");
    wk_json_free(doc);
    free(text);
    wk_dump_list_free(entries, count);

    /* A record that does not parse stops the listing. */
    write_file("dumps/z-broken/dump.json", "{");
    ck_assert_int_eq(wk_dump_list(repo, &entries, &count, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_list_empty)
{
    wk_repo *repo = open_repo();
    wk_error err = {0};
    wk_dump_entry *entries = NULL;
    size_t count = 7;
    ck_assert_int_eq(wk_dump_list(repo, &entries, &count, &err), 0);
    ck_assert_uint_eq(count, 0);
    char *text = wk_dump_list_json(entries, count, &err);
    ck_assert_ptr_nonnull(strstr(text, "\"dumps\": []"));
    free(text);
    wk_dump_list_free(entries, count);
    wk_repo_free(repo);
}
END_TEST

/* ---- connection strings and command lines ------------------------------------------- */

START_TEST(test_conninfo)
{
    wk_error err = {0};
    char *password = NULL;
    char *c = wk_dump_conninfo("host=/run/pg port=5433 dbname=postgres", "shop", &password, &err);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_null(password);
    ck_assert_str_eq(c, "host='/run/pg' port='5433' dbname='shop'");
    free(c);

    c = wk_dump_conninfo("host=/run/pg dbname=postgres", NULL, &password, &err);
    ck_assert_str_eq(c, "dbname='postgres' host='/run/pg'"); /* libpq's order */
    free(c);

    /* A password never reaches a command line. */
    c = wk_dump_conninfo("user=bob password='s3 cr\\'et' host=db", "it's", &password, &err);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(password, "s3 cr'et");
    ck_assert_ptr_null(strstr(c, "s3"));
    ck_assert_str_eq(c, "user='bob' host='db' dbname='it\\'s'");
    free(c);
    free(password);

    c = wk_dump_conninfo("postgresql://bob:secret@db.example:6000/app?sslmode=require", "other",
                         &password, &err);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(password, "secret");
    ck_assert_ptr_null(strstr(c, "secret"));
    ck_assert_ptr_nonnull(strstr(c, "host='db.example'"));
    ck_assert_ptr_nonnull(strstr(c, "port='6000'"));
    ck_assert_ptr_nonnull(strstr(c, "sslmode='require'"));
    ck_assert_ptr_nonnull(strstr(c, "dbname='other'"));
    ck_assert_ptr_null(strstr(c, "app"));
    free(c);
    free(password);

    c = wk_dump_conninfo(NULL, "x", &password, &err);
    ck_assert_str_eq(c, "dbname='x'");
    free(c);
    c = wk_dump_conninfo(NULL, NULL, &password, &err);
    ck_assert_str_eq(c, "");
    free(c);

    c = wk_dump_conninfo("nosuchkey=1", NULL, &password, &err);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(err.code, WK_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "pg_conninfo"));
}
END_TEST

START_TEST(test_conninfo_dbname)
{
    wk_error err = {0};
    char *db = wk_dump_conninfo_dbname("host=x dbname=shop", &err);
    ck_assert_str_eq(db, "shop");
    free(db);
    unsetenv("PGDATABASE");
    db = wk_dump_conninfo_dbname("host=x user=alice", &err);
    ck_assert_str_eq(db, "alice");
    free(db);
    setenv("PGDATABASE", "fromenv", 1);
    db = wk_dump_conninfo_dbname("host=x user=alice", &err);
    ck_assert_str_eq(db, "fromenv");
    free(db);
    unsetenv("PGDATABASE");
}
END_TEST

static char *joined(const wk_dump_argv *a)
{
    static char buf[2048];
    buf[0] = '\0';
    for (size_t i = 0; i < a->count; i++) {
        if (i > 0)
            strcat(buf, " ");
        strcat(buf, a->items[i]);
    }
    ck_assert_ptr_null(a->items[a->count]);
    return buf;
}

START_TEST(test_create_argv)
{
    wk_error err = {0};
    wk_dump_argv a = {0};
    wk_dump_create_options o = {.bindir = "/usr/lib/postgresql/15/bin", .format = WK_DUMP_PLAIN};
    ck_assert_int_eq(wk_dump_create_argv(&o, "dbname='x'", NULL, &a, &err), 0);
    ck_assert_str_eq(joined(&a), "/usr/lib/postgresql/15/bin/pg_dump -d dbname='x' -Fp");
    wk_dump_argv_free(&a);

    o.bindir = NULL;
    o.format = WK_DUMP_CUSTOM;
    ck_assert_int_eq(wk_dump_create_argv(&o, "c", NULL, &a, &err), 0);
    ck_assert_str_eq(joined(&a), "pg_dump -d c -Fc -Z 0");
    wk_dump_argv_free(&a);

    o.format = WK_DUMP_DIRECTORY;
    o.jobs = 2;
    ck_assert_int_eq(wk_dump_create_argv(&o, "c", "/tmp/s/dump", &a, &err), 0);
    ck_assert_str_eq(joined(&a), "pg_dump -d c -Fd -Z 0 -j 2 -f /tmp/s/dump");
    wk_dump_argv_free(&a);

    o.format = WK_DUMP_GLOBALS;
    o.jobs = 0;
    o.bindir = "";
    ck_assert_int_eq(wk_dump_create_argv(&o, "c", NULL, &a, &err), 0);
    ck_assert_str_eq(joined(&a), "pg_dumpall -d c --globals-only");
    wk_dump_argv_free(&a);

    o.format = WK_DUMP_CUSTOM;
    o.jobs = 4;
    ck_assert_int_eq(wk_dump_create_argv(&o, "c", NULL, &a, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    ck_assert_str_eq(err.message, "--jobs needs --format=directory");
    wk_dump_argv_free(&a);
    wk_dump_argv_free(NULL);

    char *p = wk_dump_program("/opt/pg/bin", "psql");
    ck_assert_str_eq(p, "/opt/pg/bin/psql");
    free(p);
}
END_TEST

START_TEST(test_restore_refusals)
{
    wk_error err = {0};
    const char *tables[] = {"orders"};
    wk_dump_restore_options o = {.tables = tables, .table_count = 1};
    ck_assert_int_eq(wk_dump_restore_check(WK_DUMP_PLAIN, &o, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    ck_assert_str_eq(err.message, "--table needs a custom or directory dump");
    ck_assert_int_eq(wk_dump_restore_check(WK_DUMP_GLOBALS, &o, &err), -1);
    ck_assert_int_eq(wk_dump_restore_check(WK_DUMP_CUSTOM, &o, &err), 0);
    ck_assert_int_eq(wk_dump_restore_check(WK_DUMP_DIRECTORY, &o, &err), 0);
    wk_dump_restore_options clean = {.clean = true};
    ck_assert_int_eq(wk_dump_restore_check(WK_DUMP_PLAIN, &clean, &err), -1);
    ck_assert_str_eq(err.message, "--clean with a plain dump needs --create (walkeep then drops "
                                  "the database and creates it again)");
    wk_dump_restore_options clean_create = {.clean = true, .create = true};
    ck_assert_int_eq(wk_dump_restore_check(WK_DUMP_PLAIN, &clean_create, &err), 0);
    ck_assert_int_eq(wk_dump_restore_check(WK_DUMP_GLOBALS, &clean_create, &err), -1);
    ck_assert_str_eq(err.message, "--create does not apply to a globals dump");
    ck_assert_int_eq(wk_dump_restore_check(WK_DUMP_GLOBALS, &clean, &err), -1);
    ck_assert_str_eq(err.message, "--clean does not apply to a globals dump");
    wk_dump_restore_options jobs = {.jobs = 3};
    ck_assert_int_eq(wk_dump_restore_check(WK_DUMP_PLAIN, &jobs, &err), -1);
    ck_assert_str_eq(err.message, "--jobs needs a custom or directory dump");
    wk_dump_restore_options none = {0};
    ck_assert_int_eq(wk_dump_restore_check(WK_DUMP_PLAIN, &none, &err), 0);

    /* The argv builder refuses the same way. */
    wk_dump_record r;
    wk_dump_argv a = {0};
    make_record(&r, "p", WK_DUMP_PLAIN, 1, 1);
    ck_assert_int_eq(wk_dump_restore_argv(&r, &o, "c", WK_DUMP_INPUT_STDIN, NULL, false, &a, &err),
                     -1);
    ck_assert_str_eq(err.message, "--table needs a custom or directory dump");
    wk_dump_record_free(&r);
}
END_TEST

START_TEST(test_restore_argv)
{
    wk_error err = {0};
    wk_dump_argv a = {0};
    wk_dump_record r;
    wk_dump_restore_options o = {.bindir = "/b"};

    make_record(&r, "p", WK_DUMP_PLAIN, 1, 1);
    ck_assert_int_eq(wk_dump_restore_argv(&r, &o, "c", WK_DUMP_INPUT_STDIN, NULL, false, &a, &err),
                     0);
    ck_assert_str_eq(joined(&a), "/b/psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d c -f -");
    wk_dump_argv_free(&a);
    ck_assert_int_eq(wk_dump_restore_argv(&r, &o, "c", WK_DUMP_INPUT_STDIN, NULL, true, &a, &err),
                     -1);
    r.format = WK_DUMP_GLOBALS;
    ck_assert_int_eq(wk_dump_restore_argv(&r, &o, "c", WK_DUMP_INPUT_STDIN, NULL, false, &a, &err),
                     0);
    ck_assert_str_eq(joined(&a), "/b/psql -X -q -d c -f -");
    wk_dump_argv_free(&a);

    const char *tables[] = {"a", "b c"};
    r.format = WK_DUMP_CUSTOM;
    o.tables = tables;
    o.table_count = 2;
    o.clean = true;
    ck_assert_int_eq(wk_dump_restore_argv(&r, &o, "c", WK_DUMP_INPUT_STDIN, NULL, false, &a, &err),
                     0);
    ck_assert_str_eq(joined(&a), "/b/pg_restore -d c --exit-on-error --single-transaction --clean "
                                 "--if-exists -t a -t b c -Fc");
    wk_dump_argv_free(&a);
    ck_assert(!wk_dump_restore_stages(WK_DUMP_CUSTOM, 1));
    ck_assert(wk_dump_restore_stages(WK_DUMP_CUSTOM, 2));
    ck_assert(wk_dump_restore_stages(WK_DUMP_DIRECTORY, 1));
    ck_assert(!wk_dump_restore_stages(WK_DUMP_PLAIN, 1));

    wk_dump_restore_options p = {.jobs = 4, .create = true};
    ck_assert_int_eq(
        wk_dump_restore_argv(&r, &p, "c", WK_DUMP_INPUT_PATH, "/s/dump.custom", false, &a, &err),
        0);
    ck_assert_str_eq(joined(&a),
                     "pg_restore -d c --exit-on-error -j 4 --create -Fc /s/dump.custom");
    wk_dump_argv_free(&a);

    r.format = WK_DUMP_DIRECTORY;
    wk_dump_restore_options d = {0};
    ck_assert_int_eq(
        wk_dump_restore_argv(&r, &d, "c", WK_DUMP_INPUT_PATH, "/s/dump", true, &a, &err), 0);
    ck_assert_str_eq(joined(&a), "pg_restore --list -Fd /s/dump");
    wk_dump_argv_free(&a);
    ck_assert_int_eq(wk_dump_restore_argv(&r, &d, "c", WK_DUMP_INPUT_STDIN, NULL, false, &a, &err),
                     -1);

    /* Where a restore connects. */
    snprintf(r.database, sizeof(r.database), "shop");
    ck_assert_str_eq(wk_dump_restore_dbname(&r, &d), "shop");
    wk_dump_restore_options named = {.dbname = "copy"};
    ck_assert_str_eq(wk_dump_restore_dbname(&r, &named), "copy");
    wk_dump_restore_options create = {.create = true};
    ck_assert_str_eq(wk_dump_restore_dbname(&r, &create), "postgres"); /* pg_restore --create */
    ck_assert(!wk_dump_restore_creates(r.format, &create));
    wk_dump_restore_options create_named = {.dbname = "copy", .create = true, .clean = true};
    ck_assert(wk_dump_restore_creates(r.format, &create_named));
    ck_assert_str_eq(wk_dump_restore_dbname(&r, &create_named), "copy");
    /* Into a database walkeep created: no pg_restore --create, no --clean, one transaction. */
    ck_assert_int_eq(wk_dump_restore_argv(&r, &create_named, "c", WK_DUMP_INPUT_PATH, "/s/dump",
                                          false, &a, &err),
                     0);
    ck_assert_str_eq(joined(&a),
                     "pg_restore -d c --exit-on-error --single-transaction -Fd /s/dump");
    wk_dump_argv_free(&a);
    /* A plain dump: walkeep creates the dump's own database, or the named one. */
    r.format = WK_DUMP_PLAIN;
    ck_assert(wk_dump_restore_creates(r.format, &create));
    ck_assert_str_eq(wk_dump_restore_dbname(&r, &create), "shop");
    ck_assert_str_eq(wk_dump_restore_dbname(&r, &create_named), "copy");
    ck_assert(!wk_dump_restore_creates(r.format, &d));
    r.format = WK_DUMP_GLOBALS;
    ck_assert(!wk_dump_restore_creates(r.format, &create));
    ck_assert_ptr_null(wk_dump_restore_dbname(&r, &d));
    wk_dump_record_free(&r);
}
END_TEST

static Suite *dump_suite(void)
{
    Suite *s = suite_create("dump");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_labels);
    tcase_add_test(tc, test_formats);
    tcase_add_test(tc, test_record_round_trip);
    tcase_add_test(tc, test_record_damage);
    tcase_add_test(tc, test_list_order);
    tcase_add_test(tc, test_list_empty);
    tcase_add_test(tc, test_conninfo);
    tcase_add_test(tc, test_conninfo_dbname);
    tcase_add_test(tc, test_create_argv);
    tcase_add_test(tc, test_restore_refusals);
    tcase_add_test(tc, test_restore_argv);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dump_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
