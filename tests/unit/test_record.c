/* test_record: a record stored and read back (round trip, no replacing), the one size
 * limit refused when writing (nothing stored) and when reading (the path named), and a
 * missing record. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "storage_posix.h"
#include "support.h"

static char root[256];
static wk_storage *st;

static void setup(void)
{
    wk_error err = {0};
    ts_tmpdir_make(root, sizeof(root), "/tmp/wk-record.XXXXXX");
    ck_assert_msg(wk_storage_posix_open(root, true, &st, &err) == 0, "%s", err.message);
}

static void teardown(void)
{
    wk_storage_free(st);
    st = NULL;
    ts_tmpdir_remove(root);
}

START_TEST(test_round_trip)
{
    const char *text = "{\"format\": 1, \"label\": \"b1\"}";
    uint8_t *back = (uint8_t *)"untouched";
    size_t len = 0;
    wk_error err = {0};

    ck_assert_msg(wk_record_write(st, "backups/b1/backup.json", text, strlen(text), &err) == 0,
                  "%s", err.message);
    ck_assert_msg(wk_record_read(st, "backups/b1/backup.json", &back, &len, &err) == 0, "%s",
                  err.message);
    ck_assert_uint_eq(len, strlen(text));
    ck_assert(memcmp(back, text, len) == 0);
    free(back);
    /* A record is never replaced. */
    ck_assert_int_eq(wk_record_write(st, "backups/b1/backup.json", "{}", 2, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    ck_assert_int_eq(wk_record_read(st, "backups/b1/backup.json", &back, &len, &err), 0);
    ck_assert_uint_eq(len, strlen(text));
    free(back);
}
END_TEST

START_TEST(test_missing)
{
    uint8_t *back = (uint8_t *)"untouched";
    size_t len = 7;
    wk_error err = {0};
    ck_assert_int_eq(wk_record_read(st, "dumps/d1/dump.json", &back, &len, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    ck_assert_str_eq((const char *)back, "untouched");
    ck_assert_uint_eq(len, 7);
}
END_TEST

/* One byte over the limit: refused before writing, so nothing that could not be read back
 * is ever stored; the same size stored behind its back is refused when read, naming the
 * path. Exactly the limit goes both ways. */
START_TEST(test_limit)
{
    size_t big = WK_RECORD_MAX_BYTES + 1;
    char *text = malloc(big);
    uint8_t *back = NULL;
    size_t len = 0;
    wk_error err = {0};
    char path[512];
    ck_assert_ptr_nonnull(text);
    memset(text, ' ', big);

    ck_assert_int_eq(wk_record_write(st, "dumps/huge/dump.json", text, big, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_msg(strstr(err.message, "record \"dumps/huge/dump.json\" would be 67108865 bytes") !=
                      NULL,
                  "%s", err.message);
    ck_assert_msg(strstr(err.hint, "nothing was stored") != NULL, "%s", err.hint);
    snprintf(path, sizeof(path), "%s/dumps/huge/dump.json", root);
    ck_assert(!ts_path_exists(path));

    ck_assert_int_eq(ts_storage_put(st, "dumps/huge/dump.json", text, big, 0, 0, &err), 0);
    ck_assert_int_eq(wk_record_read(st, "dumps/huge/dump.json", &back, &len, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_msg(strstr(err.message, "record \"dumps/huge/dump.json\"") != NULL, "%s",
                  err.message);

    ck_assert_msg(wk_record_write(st, "dumps/max/dump.json", text, big - 1, &err) == 0, "%s",
                  err.message);
    ck_assert_msg(wk_record_read(st, "dumps/max/dump.json", &back, &len, &err) == 0, "%s",
                  err.message);
    ck_assert_uint_eq(len, WK_RECORD_MAX_BYTES);
    free(back);
    free(text);
}
END_TEST

/* The stream list both records share: members in the order the format documents, a round
 * trip with and without a tablespace, and the faults a reader must refuse. */
START_TEST(test_stream_list)
{
    wk_error err = {0};
    wk_fingerprint fp = ts_fingerprint("abc", 3);
    char hex[WK_FINGERPRINT_HEX_LEN + 1];
    wk_fingerprint_hex(&fp, hex);
    wk_record_stream in[2] = {{.name = "16384.tar",
                               .object = "backups/b/16384.tar.lz4",
                               .has_tablespace = true,
                               .tablespace = 16384,
                               .location = "/srv/ts",
                               .bytes = 52224,
                               .stored_bytes = 5711,
                               .fingerprint = fp},
                              {.name = "toc.dat",
                               .object = "dumps/d/toc.dat.zst",
                               .bytes = 3,
                               .stored_bytes = 12,
                               .fingerprint = fp}};
    for (size_t i = 0; i < 2; i++) {
        wk_json_writer *w = wk_json_writer_new();
        wk_record_stream_write(w, &in[i]);
        char *text = wk_json_writer_finish(w, &err);
        wk_json_writer_free(w);
        ck_assert_ptr_nonnull(text);
        const char *name = strstr(text, "\"name\""), *object = strstr(text, "\"object\""),
                   *bytes = strstr(text, "\"bytes\""), *fpos = strstr(text, "\"fingerprint\"");
        ck_assert(name != NULL && name < object && object < bytes && bytes < fpos);
        ck_assert(strstr(text, hex) != NULL);
        ck_assert((strstr(text, "\"tablespace\"") != NULL) == in[i].has_tablespace);
        wk_json *doc = NULL;
        wk_record_stream out;
        ck_assert_int_eq(wk_json_parse(text, strlen(text), &doc, &err), 0);
        ck_assert_msg(wk_record_stream_read(doc, in[i].has_tablespace, &out, &err) == 0, "%s",
                      err.message);
        ck_assert_str_eq(out.name, in[i].name);
        ck_assert_str_eq(out.object, in[i].object);
        ck_assert_uint_eq(out.bytes, in[i].bytes);
        ck_assert_uint_eq(out.stored_bytes, in[i].stored_bytes);
        ck_assert_uint_eq(out.tablespace, in[i].tablespace);
        ck_assert(memcmp(&out.fingerprint, &fp, sizeof(fp)) == 0);
        if (in[i].has_tablespace)
            ck_assert_str_eq(out.location, "/srv/ts");
        wk_json_free(doc);
        free(text);
    }
    const char *bad[] = {
        "{\"name\": \"a\", \"object\": \"o\", \"bytes\": 1, \"stored_bytes\": 1, "
        "\"fingerprint\": \"zz\"}",
        "{\"name\": \"a\", \"object\": \"o\", \"bytes\": -1, \"stored_bytes\": 1, "
        "\"fingerprint\": \"00\"}",
        "{\"object\": \"o\", \"bytes\": 1, \"stored_bytes\": 1, \"fingerprint\": \"00\"}"};
    for (size_t i = 0; i < 3; i++) {
        wk_json *doc = NULL;
        wk_record_stream out;
        ck_assert_int_eq(wk_json_parse(bad[i], strlen(bad[i]), &doc, &err), 0);
        ck_assert_int_eq(wk_record_stream_read(doc, false, &out, &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
        wk_json_free(doc);
    }
}
END_TEST

/* 2026-11-25 09:30:12 UTC, computed without the module. */
static time_t base_time(void)
{
    struct tm tm = {
        .tm_year = 126, .tm_mon = 10, .tm_mday = 25, .tm_hour = 9, .tm_min = 30, .tm_sec = 12};
    return timegm(&tm);
}

static void assert_parses(const char *text, time_t want)
{
    time_t got = 0;
    ck_assert_msg(wk_record_parse_time(text, &got) == 0, "\"%s\" refused", text);
    ck_assert_msg(got == want, "\"%s\": got %lld, want %lld (off by %lld s)", text, (long long)got,
                  (long long)want, (long long)(got - want));
}

static void assert_refused(const char *text)
{
    time_t got = 12345;
    ck_assert_msg(wk_record_parse_time(text, &got) == -1, "\"%s\" accepted as %lld", text,
                  (long long)got);
}

/* ---- times -------------------------------------------------------------------------- */

START_TEST(test_format_time)
{
    char buf[40];
    wk_record_format_time(base_time(), buf, sizeof(buf));
    ck_assert_str_eq(buf, "2026-11-25 09:30:12+00");
    wk_record_format_time(0, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1970-01-01 00:00:00+00");
    /* A leap day and the last second of a year. */
    struct tm tm = {
        .tm_year = 128, .tm_mon = 1, .tm_mday = 29, .tm_hour = 23, .tm_min = 59, .tm_sec = 59};
    wk_record_format_time(timegm(&tm), buf, sizeof(buf));
    ck_assert_str_eq(buf, "2028-02-29 23:59:59+00");
    tm = (struct tm){
        .tm_year = 126, .tm_mon = 11, .tm_mday = 31, .tm_hour = 23, .tm_min = 59, .tm_sec = 59};
    wk_record_format_time(timegm(&tm), buf, sizeof(buf));
    ck_assert_str_eq(buf, "2026-12-31 23:59:59+00");
}
END_TEST

START_TEST(test_time_round_trip)
{
    static const time_t times[] = {
        0,          1,          59,         86399,     86400, 951782400 /* 2000-02-29 */,
        1700000000, 1795599012, 2147483647, 4102444799};
    char buf[40];
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        wk_record_format_time(times[i], buf, sizeof(buf));
        assert_parses(buf, times[i]);
    }
    /* Every second of a minute crossing an hour, a day and a month. */
    time_t t0 = base_time() - 3 * 86400 - 9 * 3600 - 30 * 60 - 42; /* Nov 22 23:59:30 */
    for (time_t t = t0; t < t0 + 61; t++) {
        wk_record_format_time(t, buf, sizeof(buf));
        assert_parses(buf, t);
    }
}
END_TEST

START_TEST(test_parse_time_forms)
{
    time_t base = base_time();
    assert_parses("2026-11-25 09:30:12+00", base);
    assert_parses("2026-11-25T09:30:12Z", base);
    assert_parses("2026-11-25T09:30:12z", base);
    assert_parses("2026-11-25 09:30:12Z", base);
    assert_parses("2026-11-25T09:30:12+00:00", base);
    assert_parses("2026-11-25 09:30:12-00", base);
}
END_TEST

START_TEST(test_parse_time_offsets)
{
    time_t base = base_time();
    assert_parses("2026-11-25 10:30:12+01", base);
    assert_parses("2026-11-25T10:30:12+01:00", base);
    assert_parses("2026-11-25 15:00:12+05:30", base);
    assert_parses("2026-11-25T15:00:12+0530", base);
    assert_parses("2026-11-25 01:30:12-08", base);
    assert_parses("2026-11-25T01:30:12-08:00", base);
    assert_parses("2026-11-25 05:00:12-04:30", base);
    /* An offset that moves the date. */
    assert_parses("2026-11-26 00:30:12+15", base);
    assert_parses("2026-11-24 21:30:12-12", base);
}
END_TEST

START_TEST(test_parse_time_fractions_dropped)
{
    time_t base = base_time();
    assert_parses("2026-11-25 09:30:12.999999+00", base);
    assert_parses("2026-11-25T09:30:12.5Z", base);
    assert_parses("2026-11-25 09:30:12.000001+00", base);
    assert_parses("2026-11-25 10:30:12.75+01:00", base);
}
END_TEST

START_TEST(test_parse_time_local)
{
    /* New York in November is EST (UTC-5); a POSIX TZ rule needs no tz database. */
    const char *old = getenv("TZ");
    char *saved = old != NULL ? strdup(old) : NULL;
    ck_assert_int_eq(setenv("TZ", "EST5EDT,M3.2.0,M11.1.0", 1), 0);
    tzset();
    struct tm local = {.tm_year = 126,
                       .tm_mon = 10,
                       .tm_mday = 25,
                       .tm_hour = 9,
                       .tm_min = 30,
                       .tm_sec = 12,
                       .tm_isdst = -1};
    time_t want = mktime(&local);
    ck_assert_int_eq((long long)want, (long long)(base_time() + 5 * 3600));
    assert_parses("2026-11-25 09:30:12", want);
    assert_parses("2026-11-25T09:30:12", want);
    assert_parses("2026-11-25 09:30:12.25", want);
    /* Summer time: UTC-4. */
    local = (struct tm){.tm_year = 126, .tm_mon = 6, .tm_mday = 1, .tm_hour = 12, .tm_isdst = -1};
    want = mktime(&local);
    assert_parses("2026-07-01 12:00:00", want);
    assert_parses("2026-07-01 16:00:00Z", want);
    /* Another zone, the same text, another instant. */
    ck_assert_int_eq(setenv("TZ", "UTC0", 1), 0);
    tzset();
    assert_parses("2026-11-25 09:30:12", base_time());
    if (saved != NULL)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    free(saved);
    tzset();
}
END_TEST

START_TEST(test_parse_time_invalid)
{
    static const char *const bad[] = {
        "",
        "yesterday",
        "now",
        "2026-11-25",
        "2026-11-25 ",
        "2026-11-25 09:30",
        "2026-11-25 09:30:12+00 junk",
        "2026-11-25 09:30:12+00x",
        "2026-11-25 09:30:12Zjunk",
        "2026-11-25 09:30:12 junk",
        "2026-11-25 09:30:12 UTC",
        "2026-11-25 09:30:12junk",
        "2026-11-25 09:30:12.5junk",
        "2026-11-25X09:30:12Z",
        "2026/11/25 09:30:12+00",
        "2026-13-25 09:30:12+00",
        "2026-13-25 09:30:12",
        "2026-00-25 09:30:12+00",
        "2026-11-00 09:30:12+00",
        "2026-11-32 09:30:12+00",
        "2026-11-25 24:30:12+00",
        "2026-11-25 09:60:12+00",
        "2026-11-25 09:30:61+00",
        "2026-11-25 09:30:12+",
        "2026-11-25 09:30:12-",
        "2026-11-25 09:30:12+ab",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_refused(bad[i]);
}
END_TEST

/* PostgreSQL refuses a date that does not exist ("date/time field value out of range")
 * and so should the parser: pitr-restore would choose a backup for the normalised
 * instant (March 2) and then write recovery_target_time = '2026-02-30 ...', which the
 * server refuses at startup. */
START_TEST(test_parse_time_impossible_date)
{
    assert_refused("2026-02-30 12:00:00+00");
    assert_refused("2026-02-29 12:00:00+00"); /* 2026 is no leap year */
    assert_refused("2026-11-31T09:30:12Z");
    assert_refused("2026-04-31 00:00:00");
    struct tm tm = {.tm_year = 128, .tm_mon = 1, .tm_mday = 29, .tm_hour = 12};
    assert_parses("2028-02-29 12:00:00+00", timegm(&tm));
}
END_TEST

/* Offsets beyond what any zone uses (PostgreSQL accepts up to 15:59) or with a second
 * sign are not times either. */
/* Times as PostgreSQL reads them with TimeZone = zone: to the microsecond, offsets as
 * given, wall-clock times in the zone's rules, daylight-saving gaps and repeats refused
 * with both readings; TZ of the process never matters and is left as it was. */
START_TEST(test_parse_time_in_zone)
{
    wk_error err = {0};
    int64_t us;
    bool zone_used;
    setenv("TZ", "Asia/Tokyo", 1);
    tzset();
    ck_assert_int_eq(
        wk_record_parse_time_in("2026-02-08 12:00:00.000123+01", NULL, &us, &zone_used, &err), 0);
    ck_assert(!zone_used);
    ck_assert_int_eq(us, INT64_C(1770548400000123));
    ck_assert_int_eq(
        wk_record_parse_time_in("2026-02-08 12:00:00", "Europe/Berlin", &us, &zone_used, &err), 0);
    ck_assert(zone_used);
    ck_assert_int_eq(us, INT64_C(1770548400000000));
    ck_assert_int_eq(
        wk_record_parse_time_in("2026-07-08 12:00:00.5", "Europe/Berlin", &us, NULL, &err), 0);
    ck_assert_int_eq(us, INT64_C(1783504800500000)); /* summer: +02 */
    ck_assert_int_eq(wk_record_parse_time_in("2026-02-08 12:00:00", NULL, &us, NULL, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    ck_assert_int_eq(
        wk_record_parse_time_in("2026-02-08 12:00:00", "Mars/Olympus", &us, NULL, &err), -1);
    ck_assert_int_eq(
        wk_record_parse_time_in("2026-02-08 12:00:00", "../../etc/passwd", &us, NULL, &err), -1);
    /* The hour skipped in spring, and the one shown twice in autumn. */
    ck_assert_int_eq(
        wk_record_parse_time_in("2026-03-29 02:30:00", "Europe/Berlin", &us, NULL, &err), -1);
    ck_assert_msg(strstr(err.message, "does not exist in time zone Europe/Berlin") != NULL, "%s",
                  err.message);
    ck_assert_msg(strstr(err.hint, "2026-03-29 01:30:00+00") != NULL &&
                      strstr(err.hint, "2026-03-29 00:30:00+00") != NULL,
                  "%s", err.hint);
    ck_assert_int_eq(
        wk_record_parse_time_in("2026-10-25 02:30:00", "Europe/Berlin", &us, NULL, &err), -1);
    ck_assert_msg(strstr(err.message, "is ambiguous in time zone Europe/Berlin") != NULL, "%s",
                  err.message);
    ck_assert_msg(strstr(err.hint, "2026-10-25 01:30:00+00") != NULL &&
                      strstr(err.hint, "2026-10-25 00:30:00+00") != NULL,
                  "%s", err.hint);
    /* A zone moving its standard time back (Moscow, 2014: +04 to +03, no daylight saving). */
    ck_assert_int_eq(
        wk_record_parse_time_in("2014-10-26 01:30:00", "Europe/Moscow", &us, NULL, &err), -1);
    ck_assert_msg(strstr(err.message, "is ambiguous") != NULL, "%s", err.message);
    ck_assert_msg(
        strstr(err.hint, "2014-10-25 21:30:00+00 (the first time) or 2014-10-25 22:30:00+00") !=
            NULL,
        "%s", err.hint);
    ck_assert_str_eq(getenv("TZ"), "Asia/Tokyo");
    unsetenv("TZ");
    tzset();
    ck_assert(wk_record_zone_known("UTC"));
    ck_assert(!wk_record_zone_known(""));
    ck_assert(!wk_record_zone_known("zone.tab")); /* a file of the database, not a zone */
    ck_assert(wk_record_time_valid("2026-02-08 12:00:00"));
    ck_assert(!wk_record_time_valid("2026-02-30 12:00:00"));
}
END_TEST

START_TEST(test_parse_time_bad_offset)
{
    assert_refused("2026-11-25 09:30:12+99");
    assert_refused("2026-11-25 09:30:12+05:99");
    assert_refused("2026-11-25 09:30:12+-5");
    assert_refused("2026-11-25 09:30:12-+5");
}
END_TEST

static Suite *record_suite(void)
{
    Suite *s = suite_create("record");
    TCase *times = tcase_create("times");
    tcase_add_test(times, test_format_time);
    tcase_add_test(times, test_time_round_trip);
    tcase_add_test(times, test_parse_time_forms);
    tcase_add_test(times, test_parse_time_offsets);
    tcase_add_test(times, test_parse_time_fractions_dropped);
    tcase_add_test(times, test_parse_time_local);
    tcase_add_test(times, test_parse_time_invalid);
    tcase_add_test(times, test_parse_time_impossible_date);
    tcase_add_test(times, test_parse_time_bad_offset);
    tcase_add_test(times, test_parse_time_in_zone);
    suite_add_tcase(s, times);
    TCase *tc = tcase_create("record");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_missing);
    tcase_add_test(tc, test_limit);
    tcase_add_test(tc, test_stream_list);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(record_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
