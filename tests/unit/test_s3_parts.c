/* test_s3_parts: the parts of one multipart upload sent by a pool of threads (lib/s3_parts),
 * against a real S3 server when S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY and
 * WALKEEP_S3_TEST_BUCKET are set (ctest runs it through tests/s3/with-s3.sh), else skipped
 * with a note. Parts are 64 KiB: the gateway there takes parts from 1 KiB. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "s3.h"
#include "s3_parts.h"
#include "s3xml.h"
#include "support.h"

#define PART (64 * 1024)

static bool live;
static wk_s3 *client;
static char key[256];

static void setup(void)
{
    if (!live)
        return;
    wk_s3_options o = {.endpoint = getenv("S3_ENDPOINT"),
                       .region = getenv("S3_REGION"),
                       .bucket = getenv("WALKEEP_S3_TEST_BUCKET"),
                       .access_key = getenv("S3_ACCESS_KEY"),
                       .secret_key = getenv("S3_SECRET_KEY"),
                       .retry_timeout_ms = 5000};
    wk_error err = {0};
    ck_assert_msg(wk_s3_open(&o, &client, &err) == 0, "open: %s", err.message);
    snprintf(key, sizeof(key), "wk-unit-parts/%ld-%d", (long)time(NULL), (int)getpid());
}

static void teardown(void)
{
    if (!live)
        return;
    wk_s3_request req = {.method = "DELETE", .key = key};
    wk_s3_response resp = {0};
    wk_error err = {0};
    wk_s3_send(client, &req, &resp, &err);
    wk_s3_response_free(&resp);
    wk_s3_free(client);
    client = NULL;
}

static void create_upload(char id[512])
{
    wk_s3_param params[] = {{"uploads", ""}};
    wk_s3_request req = {.method = "POST", .key = key, .params = params, .param_count = 1};
    wk_s3_response resp = {0};
    wk_error err = {0};
    ck_assert_msg(wk_s3_send(client, &req, &resp, &err) == 0, "create: %s", err.message);
    ck_assert_int_eq(wk_s3_xml_field(resp.body, "UploadId", id, 512, &err), 1);
    wk_s3_response_free(&resp);
}

static void abort_upload(const char *id)
{
    wk_s3_param params[] = {{"uploadId", id}};
    wk_s3_request req = {.method = "DELETE", .key = key, .params = params, .param_count = 1};
    wk_s3_response resp = {0};
    wk_error err = {0};
    wk_s3_send(client, &req, &resp, &err);
    wk_s3_response_free(&resp);
}

/* Five parts (the last one short) sent by two threads through three buffers, completed
 * with the body the pool builds: the object is the bytes in order, and its ETag is the one
 * the pool predicts. */
START_TEST(test_parts_in_order)
{
    if (!live)
        return;
    char id[512];
    wk_error err = {0};
    wk_s3_parts *parts = NULL;
    const size_t total = 4 * PART + 1000;
    unsigned char *want = ts_pattern(total, 7);
    create_upload(id);
    ck_assert_msg(
        wk_s3_parts_start(client, key, id, "could not store \"test\"", 2, PART, &parts, &err) == 0,
        "%s", err.message);
    unsigned char *buf = malloc(PART); /* the writer's own first buffer */
    for (size_t off = 0; off < total; off += PART) {
        size_t n = total - off < PART ? total - off : PART;
        memcpy(buf, want + off, n);
        ck_assert_msg(wk_s3_parts_queue(parts, buf, n, &err) == 0, "%s", err.message);
        buf = NULL;
        if (off + PART < total)
            ck_assert_msg(wk_s3_parts_take_buffer(parts, &buf, &err) == 0, "%s", err.message);
    }
    ck_assert_msg(wk_s3_parts_finish(parts, &err) == 0, "%s", err.message);
    wk_s3_xml_buf body = {0};
    wk_s3_parts_complete_body(parts, &body);
    ck_assert(!body.failed);
    ck_assert_ptr_nonnull(strstr(body.p, "<PartNumber>5</PartNumber>"));
    ck_assert_ptr_null(strstr(body.p, "<PartNumber>6</PartNumber>"));
    char etag[80];
    ck_assert_int_eq(wk_s3_parts_etag(parts, etag), 0);

    wk_s3_param params[] = {{"uploadId", id}};
    const char *headers[] = {"Content-Type: application/xml", NULL};
    wk_s3_request req = {.method = "POST",
                         .key = key,
                         .params = params,
                         .param_count = 1,
                         .headers = headers,
                         .body = body.p,
                         .body_len = body.len};
    wk_s3_response resp = {0};
    ck_assert_msg(wk_s3_send(client, &req, &resp, &err) == 0, "complete: %s", err.message);
    wk_s3_response_free(&resp);
    wk_s3_xml_buf_free(&body);
    wk_s3_parts_free(parts);

    wk_s3_request get = {.method = "GET", .key = key};
    ck_assert_msg(wk_s3_send(client, &get, &resp, &err) == 0, "get: %s", err.message);
    ck_assert_uint_eq(resp.body_len, total);
    ck_assert_int_eq(memcmp(resp.body, want, total), 0);
    ck_assert_msg(strcasecmp(resp.etag, etag) == 0, "%s vs %s", resp.etag, etag);
    wk_s3_response_free(&resp);
    free(want);
}
END_TEST

/* A part the server refuses (the upload was aborted under the pool): the failure names the
 * object and the part, later calls give the same failure, and freeing leaks nothing (ASan). */
START_TEST(test_part_failure)
{
    if (!live)
        return;
    char id[512];
    wk_error err = {0};
    wk_s3_parts *parts = NULL;
    create_upload(id);
    abort_upload(id);
    ck_assert_int_eq(
        wk_s3_parts_start(client, key, id, "could not store \"s3://b/k\"", 2, PART, &parts, &err),
        0);
    unsigned char *buf = calloc(1, PART);
    ck_assert_int_eq(wk_s3_parts_queue(parts, buf, PART, &err), 0);
    ck_assert_int_eq(wk_s3_parts_finish(parts, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_msg(strstr(err.message, "s3://b/k") != NULL && strstr(err.message, "part 1"), "%s",
                  err.message);
    wk_error again = {0};
    ck_assert_int_eq(wk_s3_parts_failure(parts, &again), -1);
    ck_assert_str_eq(again.message, err.message);
    /* A buffer queued after the failure is refused and still owned by the pool. */
    ck_assert_int_eq(wk_s3_parts_queue(parts, malloc(PART), 10, &again), -1);
    wk_s3_parts_free(parts);
    wk_s3_parts_free(NULL);
}
END_TEST

/* Freed with parts still queued: the threads stop, nothing is sent after, nothing leaks. */
START_TEST(test_free_while_busy)
{
    if (!live)
        return;
    char id[512];
    wk_error err = {0};
    wk_s3_parts *parts = NULL;
    create_upload(id);
    ck_assert_int_eq(
        wk_s3_parts_start(client, key, id, "could not store \"t\"", 1, PART, &parts, &err), 0);
    unsigned char *buf = calloc(1, PART);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(wk_s3_parts_queue(parts, buf, PART, &err), 0);
        ck_assert_int_eq(wk_s3_parts_take_buffer(parts, &buf, &err), 0);
    }
    free(buf);
    wk_s3_parts_free(parts);
    abort_upload(id);
}
END_TEST

int main(void)
{
    const char *need[] = {"S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY",
                          "WALKEEP_S3_TEST_BUCKET"};
    live = true;
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        if (getenv(need[i]) == NULL || getenv(need[i])[0] == '\0')
            live = false;
    if (!live)
        printf("test_s3_parts: S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY and "
               "WALKEEP_S3_TEST_BUCKET are not all set: live S3 tests skipped (they pass "
               "without checking anything; ctest's unit_s3_live_test_s3_parts runs them)\n");
    Suite *s = suite_create("s3_parts");
    TCase *tc = tcase_create("s3_parts");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_parts_in_order);
    tcase_add_test(tc, test_part_failure);
    tcase_add_test(tc, test_free_while_busy);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
