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

static Suite *record_suite(void)
{
    Suite *s = suite_create("record");
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
