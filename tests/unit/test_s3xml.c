/* test_s3xml: the XML S3 speaks (lib/s3xml): elements read with entities decoded, raw
 * blocks, times, and request bodies built with text escaped. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "s3xml.h"

START_TEST(test_xml_next)
{
    const char *xml = "<?xml version=\"1.0\"?><ListBucketResult><KeyCount>2</KeyCount>"
                      "<Contents><Key>a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos;</Key>"
                      "<ETag>&quot;0123&quot;</ETag></Contents>"
                      "<Contents><Key>caf&#233;&#x2F;x &bogus; &</Key><Size>5</Size></Contents>"
                      "<Prefix/><Marker></Marker></ListBucketResult>";
    wk_error err = {0};
    char out[64];
    size_t pos = 0;
    ck_assert_int_eq(wk_s3_xml_next(xml, &pos, "Key", out, sizeof(out), &err), 1);
    ck_assert_str_eq(out, "a&b <c> \"d\" 'e'");
    ck_assert_int_eq(wk_s3_xml_next(xml, &pos, "ETag", out, sizeof(out), &err), 1);
    ck_assert_str_eq(out, "\"0123\"");
    ck_assert_int_eq(wk_s3_xml_next(xml, &pos, "Key", out, sizeof(out), &err), 1);
    ck_assert_str_eq(out, "caf\xc3\xa9/x &bogus; &");
    size_t before = pos;
    ck_assert_int_eq(wk_s3_xml_next(xml, &pos, "Key", out, sizeof(out), &err), 0);
    ck_assert_uint_eq(pos, before);
    ck_assert_int_eq(wk_s3_xml_next(xml, &pos, "Prefix", out, sizeof(out), &err), 1);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(wk_s3_xml_next(xml, &pos, "Marker", out, sizeof(out), &err), 1);
    ck_assert_str_eq(out, "");
    pos = 0;
    ck_assert_int_eq(wk_s3_xml_next(xml, &pos, "KeyCount", out, sizeof(out), &err), 1);
    ck_assert_str_eq(out, "2");
    pos = 0;
    ck_assert_int_eq(wk_s3_xml_next(xml, &pos, "Missing", out, sizeof(out), &err), 0);
    ck_assert_int_eq(wk_s3_xml_next("<Key>abc", &pos, "Key", out, sizeof(out), &err), 0);
    /* "abc" needs 4 bytes. */
    pos = 0;
    ck_assert_int_eq(wk_s3_xml_next("<Key>abc</Key>", &pos, "Key", out, 4, &err), 1);
    pos = 0;
    ck_assert_int_eq(wk_s3_xml_next("<Key>abc</Key>", &pos, "Key", out, 3, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_uint_eq(pos, 0);
    /* On overflow out is left empty, never a partial copy without its NUL. */
    memset(out, 'x', sizeof(out));
    ck_assert_int_eq(wk_s3_xml_next("<Key>abcdef</Key>", &pos, "Key", out, 4, &err), -1);
    ck_assert_str_eq(out, "");
    pos = 0;
    ck_assert_int_eq(wk_s3_xml_next("<Key>&amp;</Key>", &pos, "Key", out, 1, &err), -1);
}
END_TEST

START_TEST(test_block_and_field)
{
    const char *xml = "<ListMultipartUploadsResult><Upload><Key>a&amp;b</Key>"
                      "<UploadId>u1</UploadId><Initiated>2026-11-25T10:52:26.336Z</Initiated>"
                      "</Upload><Upload><Key>c</Key><UploadId>u2</UploadId></Upload>"
                      "<IsTruncated>false</IsTruncated></ListMultipartUploadsResult>";
    char *scratch = malloc(strlen(xml) + 1);
    char out[64];
    wk_error err = {0};
    size_t pos = 0;
    ck_assert(wk_s3_xml_block(xml, &pos, "Upload", scratch));
    /* The block keeps its entities; its fields decode them. */
    ck_assert_ptr_nonnull(strstr(scratch, "<Key>a&amp;b</Key>"));
    ck_assert_int_eq(wk_s3_xml_field(scratch, "Key", out, sizeof(out), &err), 1);
    ck_assert_str_eq(out, "a&b");
    ck_assert_int_eq(wk_s3_xml_field(scratch, "Initiated", out, sizeof(out), &err), 1);
    ck_assert_int_eq((long long)wk_s3_xml_time(out), 1795603946LL);
    ck_assert(wk_s3_xml_block(xml, &pos, "Upload", scratch));
    ck_assert_int_eq(wk_s3_xml_field(scratch, "UploadId", out, sizeof(out), &err), 1);
    ck_assert_str_eq(out, "u2");
    ck_assert_int_eq(wk_s3_xml_field(scratch, "Initiated", out, sizeof(out), &err), 0);
    ck_assert_str_eq(out, "");
    ck_assert(!wk_s3_xml_block(xml, &pos, "Upload", scratch));
    pos = 0;
    ck_assert(!wk_s3_xml_block("<Upload><Key>x</Key>", &pos, "Upload", scratch));
    ck_assert_int_eq((long long)wk_s3_xml_time("yesterday"), -1LL);
    ck_assert_int_eq((long long)wk_s3_xml_time("1970-01-01T00:00:01Z"), 1LL);
    free(scratch);
}
END_TEST

START_TEST(test_build)
{
    wk_s3_xml_buf b = {0};
    wk_s3_xml_buf_raw(&b, "<Delete><Object><Key>");
    wk_s3_xml_buf_text(&b, "a&b<c>\"d\"");
    wk_s3_xml_buf_raw(&b, "</Key></Object></Delete>");
    ck_assert(!b.failed);
    ck_assert_str_eq(b.p, "<Delete><Object><Key>a&amp;b&lt;c&gt;\"d\"</Key></Object></Delete>");
    ck_assert_uint_eq(b.len, strlen(b.p));
    /* What is built reads back as it was written. */
    char out[64];
    wk_error err = {0};
    ck_assert_int_eq(wk_s3_xml_field(b.p, "Key", out, sizeof(out), &err), 1);
    ck_assert_str_eq(out, "a&b<c>\"d\"");
    /* Bodies longer than the first allocation grow. */
    for (int i = 0; i < 2000; i++)
        wk_s3_xml_buf_text(&b, "&");
    ck_assert(!b.failed);
    ck_assert_uint_eq(b.len, strlen(b.p));
    wk_s3_xml_buf_free(&b);
    ck_assert_ptr_null(b.p);
    wk_s3_xml_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("s3xml");
    TCase *tc = tcase_create("s3xml");
    tcase_add_test(tc, test_xml_next);
    tcase_add_test(tc, test_block_and_field);
    tcase_add_test(tc, test_build);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
