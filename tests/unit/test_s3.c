/* test_s3: the S3 client — SigV4 against AWS's published examples, encoding, XML, option
 * checks, error classification, requests against a scripted local HTTP server (shape,
 * retries, no retry after body bytes, stalls, limits) and, when configured, a real S3 server.
 *
 * The live part runs when S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY and
 * WALKEEP_S3_TEST_BUCKET are set (see tests/s3/README.md); otherwise it prints a note. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "curlfn.h"
#include "log.h"
#include "s3.h"
#include "s3xml.h"
#include "support.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- helpers ---------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether text occurs in any field of err. */
static bool err_mentions(const wk_error *err, const char *text)
{
    return strstr(err->message, text) != NULL || strstr(err->detail, text) != NULL ||
           strstr(err->hint, text) != NULL;
}

static wk_s3_options local_options(int port)
{
    static char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port);
    wk_s3_options opt = {
        .endpoint = endpoint,
        .bucket = "bucket",
        .access_key = "AKIDTEST",
        .secret_key = "test-secret-value",
    };
    return opt;
}

/* A port nothing listens on (bound, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- a scripted HTTP server --------------------------------------------------------- */

#define FAKE_MAX_REQUESTS 8
#define FAKE_REQUEST_MAX 65536

/* Answers each connection with the next reply (the last one repeats), holding the
 * connection open hold_ms after writing it, then closing it. Records what it was sent. */
typedef struct fake_server {
    int fd;
    int port;
    pthread_t thread;
    const char *const *replies;
    size_t reply_count;
    size_t reply_len0; /* when > 0: the first reply's length (binary or huge bodies) */
    int hold_ms;
    int served;
    char requests[FAKE_MAX_REQUESTS][FAKE_REQUEST_MAX];
} fake_server;

static fake_server *fake;

/* Reads one request (head and Content-Length body) into buf; returns its length or -1. */
static ssize_t read_request(int conn, char *buf, size_t size)
{
    size_t used = 0;
    char *head_end = NULL;
    while (head_end == NULL) {
        ssize_t n = read(conn, buf + used, size - 1 - used);
        if (n <= 0)
            return -1;
        used += (size_t)n;
        buf[used] = '\0';
        head_end = strstr(buf, "\r\n\r\n");
    }
    size_t want = (size_t)(head_end + 4 - buf);
    const char *cl = strcasestr(buf, "\r\ncontent-length:");
    if (cl != NULL && cl < head_end)
        want += strtoul(cl + 17, NULL, 10);
    while (used < want && used < size - 1) {
        ssize_t n = read(conn, buf + used, size - 1 - used);
        if (n <= 0)
            return -1;
        used += (size_t)n;
    }
    buf[used] = '\0';
    return (ssize_t)used;
}

static void *fake_main(void *arg)
{
    fake_server *f = arg;
    for (;;) {
        int conn = accept(f->fd, NULL, NULL);
        if (conn < 0)
            return NULL;
        int i = f->served < FAKE_MAX_REQUESTS ? f->served : FAKE_MAX_REQUESTS - 1;
        if (read_request(conn, f->requests[i], FAKE_REQUEST_MAX) < 0) {
            close(conn);
            continue;
        }
        size_t r = (size_t)f->served < f->reply_count ? (size_t)f->served : f->reply_count - 1;
        size_t len = r == 0 && f->reply_len0 > 0 ? f->reply_len0 : strlen(f->replies[r]);
        f->served++;
        for (size_t off = 0; off < len;) {
            ssize_t n = write(conn, f->replies[r] + off, len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        if (f->hold_ms > 0) { /* until the client gives up or the time is over */
            struct pollfd pfd = {.fd = conn, .events = POLLIN};
            poll(&pfd, 1, f->hold_ms);
        }
        close(conn);
    }
}

static void fake_start(const char *const *replies, size_t count)
{
    fake = calloc(1, sizeof(*fake));
    ck_assert_ptr_nonnull(fake);
    fake->replies = replies;
    fake->reply_count = count;
    fake->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(fake->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fake->fd, 8), 0);
    ck_assert_int_eq(getsockname(fake->fd, (struct sockaddr *)&a, &len), 0);
    fake->port = ntohs(a.sin_port);
}

static void fake_run(void)
{
    ck_assert_int_eq(pthread_create(&fake->thread, NULL, fake_main, fake), 0);
}

static void fake_stop(void)
{
    if (fake == NULL)
        return;
    shutdown(fake->fd, SHUT_RDWR);
    pthread_join(fake->thread, NULL);
    close(fake->fd);
    free(fake);
    fake = NULL;
}

static int collect_cb(const void *data, size_t len, void *arg, wk_error *err)
{
    (void)err;
    char *buf = arg;
    size_t used = strlen(buf);
    if (used + len < 4096) {
        memcpy(buf + used, data, len);
        buf[used + len] = '\0';
    }
    return 0;
}

static int refuse_cb(const void *data, size_t len, void *arg, wk_error *err)
{
    (void)data;
    (void)len;
    (void)arg;
    return wk_error_set(err, WK_ERR_CORRUPT, "refused by the test");
}

/* ---- SigV4 ------------------------------------------------------------------------ */

#define EX_AK "AKIAIOSFODNN7EXAMPLE"
#define EX_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EX_HOST "host:examplebucket.s3.amazonaws.com"
#define EX_DATE "20130524T000000Z"
#define EX_CRED "AWS4-HMAC-SHA256 Credential=" EX_AK "/20130524/us-east-1/s3/aws4_request,"

/* The examples of AWS's "Signature Calculations for the Authorization Header:
 * Transferring Payload in a Single Chunk" (S3 API reference, sig-v4-header-based-auth). */
START_TEST(test_sigv4_get_object)
{
    const char *h[] = {EX_HOST, "range:bytes=0-9", "x-amz-content-sha256:" EMPTY_SHA256,
                       "x-amz-date:" EX_DATE};
    char out[512];
    ck_assert_int_eq(wk_s3_authorization(EX_AK, EX_SK, "us-east-1", "GET", "/test.txt", "", h, 4,
                                         EMPTY_SHA256, EX_DATE, out, sizeof(out)),
                     0);
    ck_assert_str_eq(out, EX_CRED
                     "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                     "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}
END_TEST

START_TEST(test_sigv4_put_object)
{
    const char *body_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    char hash_line[128];
    snprintf(hash_line, sizeof(hash_line), "x-amz-content-sha256:%s", body_hash);
    const char *h[] = {"date:Fri, 24 May 2013 00:00:00 GMT", EX_HOST, hash_line,
                       "x-amz-date:" EX_DATE, "x-amz-storage-class:REDUCED_REDUNDANCY"};
    char enc[64];
    ck_assert_int_eq(wk_s3_uri_encode("test$file.text", true, enc, sizeof(enc)), 16);
    char uri[80];
    snprintf(uri, sizeof(uri), "/%s", enc);
    ck_assert_str_eq(uri, "/test%24file.text");
    char out[512];
    ck_assert_int_eq(wk_s3_authorization(EX_AK, EX_SK, "us-east-1", "PUT", uri, "", h, 5, body_hash,
                                         EX_DATE, out, sizeof(out)),
                     0);
    ck_assert_str_eq(out, EX_CRED
                     "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
                     "x-amz-storage-class,"
                     "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}
END_TEST

START_TEST(test_sigv4_get_lifecycle_and_list)
{
    const char *h[] = {EX_HOST, "x-amz-content-sha256:" EMPTY_SHA256, "x-amz-date:" EX_DATE};
    char out[512];
    ck_assert_int_eq(wk_s3_authorization(EX_AK, EX_SK, "us-east-1", "GET", "/", "lifecycle=", h, 3,
                                         EMPTY_SHA256, EX_DATE, out, sizeof(out)),
                     0);
    ck_assert_ptr_nonnull(
        strstr(out, "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
    ck_assert_int_eq(wk_s3_authorization(EX_AK, EX_SK, "us-east-1", "GET", "/",
                                         "max-keys=2&prefix=J", h, 3, EMPTY_SHA256, EX_DATE, out,
                                         sizeof(out)),
                     0);
    ck_assert_str_eq(out, EX_CRED
                     "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
                     "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}
END_TEST

START_TEST(test_sigv4_limits)
{
    const char *h[] = {EX_HOST, "x-amz-content-sha256:" EMPTY_SHA256, "x-amz-date:" EX_DATE};
    char out[512];
    ck_assert_int_eq(wk_s3_authorization(EX_AK, EX_SK, "us-east-1", "GET", "/", "", h, 3,
                                         EMPTY_SHA256, EX_DATE, out, sizeof(out)),
                     0);
    size_t need = strlen(out) + 1;
    char exact[512];
    ck_assert_int_eq(wk_s3_authorization(EX_AK, EX_SK, "us-east-1", "GET", "/", "", h, 3,
                                         EMPTY_SHA256, EX_DATE, exact, need),
                     0);
    ck_assert_str_eq(exact, out);
    ck_assert_int_eq(wk_s3_authorization(EX_AK, EX_SK, "us-east-1", "GET", "/", "", h, 3,
                                         EMPTY_SHA256, EX_DATE, exact, need - 1),
                     -1);
    ck_assert_int_eq(wk_s3_authorization(EX_AK, EX_SK, "us-east-1", "GET", "/", "", h, 3,
                                         EMPTY_SHA256, "20130524", out, sizeof(out)),
                     -1);
}
END_TEST

/* ---- encoding and XML -------------------------------------------------------------- */

START_TEST(test_uri_encode)
{
    char out[256];
    ck_assert_int_eq(wk_s3_uri_encode("AZaz09-_.~", false, out, sizeof(out)), 10);
    ck_assert_str_eq(out, "AZaz09-_.~");
    wk_s3_uri_encode("a b+c=(d):e!f$g*h'i,j;k@l&m?n#o%p", false, out, sizeof(out));
    ck_assert_str_eq(out, "a%20b%2Bc%3D%28d%29%3Ae%21f%24g%2Ah%27i%2Cj%3Bk%40l%26m%3Fn%23o%25p");
    wk_s3_uri_encode("dir/sub/x", true, out, sizeof(out));
    ck_assert_str_eq(out, "dir/sub/x");
    wk_s3_uri_encode("dir/sub/x", false, out, sizeof(out));
    ck_assert_str_eq(out, "dir%2Fsub%2Fx");
    wk_s3_uri_encode("caf\xc3\xa9 \xe2\x82\xac", true, out, sizeof(out));
    ck_assert_str_eq(out, "caf%C3%A9%20%E2%82%AC");
    ck_assert_int_eq(wk_s3_uri_encode("", false, out, 1), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(wk_s3_uri_encode("", false, out, 0), -1);
    /* "a b" needs 6 bytes: 5 characters and the NUL. */
    ck_assert_int_eq(wk_s3_uri_encode("a b", false, out, 6), 5);
    ck_assert_int_eq(wk_s3_uri_encode("a b", false, out, 5), -1);
    ck_assert_int_eq(wk_s3_uri_encode("ab", false, out, 2), -1);
    ck_assert_int_eq(wk_s3_uri_encode(" ", false, out, 3), -1);
}
END_TEST

/* ---- options ---------------------------------------------------------------------- */

START_TEST(test_open_endpoints)
{
    static const char *const bad[] = {
        "ftp://host", "http://",     "https://h/path", "http://h:0",  "http://h:70000", "h:9000",
        "http://h:",  "http://h:9x", "http://h?x=1",   "http://[::1", "http://a b",     "HTTP://h"};
    wk_s3_options opt = local_options(9000);
    wk_error err = {0};
    wk_s3 *s3 = NULL;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        opt.endpoint = bad[i];
        ck_assert_msg(wk_s3_open(&opt, &s3, &err) == -1, "accepted %s", bad[i]);
        ck_assert_int_eq(err.code, WK_ERR_CONFIG);
        ck_assert_ptr_nonnull(strstr(err.message, "s3_endpoint"));
        ck_assert_ptr_null(s3);
    }
    opt.endpoint = "https://AKIDTEST:test-secret-value@h";
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), -1);
    ck_assert(!err_mentions(&err, "test-secret-value"));

    static const char *const good[] = {"http://127.0.0.1:9000", "https://s3.example.com/",
                                       "http://[::1]:9000", "https://minio", NULL};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        opt.endpoint = good[i];
        ck_assert_msg(wk_s3_open(&opt, &s3, &err) == 0, "refused %s: %s", good[i], err.message);
        wk_s3 *copy = NULL;
        ck_assert_int_eq(wk_s3_clone(s3, &copy, &err), 0);
        wk_s3_free(copy);
        wk_s3_free(s3);
        s3 = NULL;
    }
    opt.host_style = true;
    opt.region = "eu-west-1";
    opt.endpoint = NULL;
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), 0);
    wk_s3_free(s3);
    wk_s3_free(NULL);
    opt.region = "eu west";
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFIG);
}
END_TEST

START_TEST(test_open_keys_and_ca)
{
    wk_s3_options opt = local_options(9000);
    wk_error err = {0};
    wk_s3 *s3 = NULL;

    opt.access_key = NULL;
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.hint, "s3_access_key"));
    ck_assert_ptr_nonnull(strstr(err.hint, "AWS_ACCESS_KEY_ID"));
    ck_assert(!err_mentions(&err, "test-secret-value"));
    opt.access_key = "AKIDTEST";

    opt.secret_key = "";
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.hint, "s3_secret_key"));
    ck_assert_ptr_nonnull(strstr(err.hint, "AWS_SECRET_ACCESS_KEY"));
    opt.secret_key = "test-secret-value";

    opt.bucket = NULL;
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFIG);
    opt.bucket = "a/b";
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), -1);
    opt.bucket = "bucket";

    opt.ca_file = "/nonexistent/ca.pem";
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFIG);
    ck_assert_str_eq(
        err.message,
        "could not read s3_ca_file \"/nonexistent/ca.pem\": No such file or directory");
    ck_assert(!err_mentions(&err, "test-secret-value"));
    opt.ca_file = "/tmp";
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), -1);
    ck_assert_int_eq(err.sys_errno, EISDIR);

    char dir[256];
    char path[300];
    ts_tmpdir_make(dir, sizeof(dir), "/tmp/wk_s3_XXXXXX");
    snprintf(path, sizeof(path), "%s/ca.pem", dir);
    ts_write_text(path, "not really a certificate\n");
    opt.ca_file = path;
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), 0);
    wk_s3_free(s3);
    ts_tmpdir_remove(dir);
}
END_TEST

/* ---- status errors ---------------------------------------------------------------- */

static wk_error status_of(long status, const char *code, const char *body)
{
    wk_s3_response r = {.status = status};
    snprintf(r.error_code, sizeof(r.error_code), "%s", code);
    r.body = (char *)body;
    r.body_len = body != NULL ? strlen(body) : 0;
    wk_error err = {0};
    ck_assert_int_eq(wk_s3_status_error(&r, "could not read \"s3://bucket/p/k\"", &err), -1);
    ck_assert_msg(strchr(err.message, '\n') == NULL, "two lines: %s", err.message);
    return err;
}

START_TEST(test_status_error)
{
    wk_error e = status_of(404, "NoSuchKey", NULL);
    ck_assert_int_eq(e.code, WK_ERR_NOTFOUND);
    e = status_of(404, "", NULL); /* HEAD */
    ck_assert_int_eq(e.code, WK_ERR_NOTFOUND);

    e = status_of(404, "NoSuchBucket", NULL);
    ck_assert_int_eq(e.code, WK_ERR_CONFIG);
    ck_assert_str_eq(e.message,
                     "could not read \"s3://bucket/p/k\": bucket \"bucket\" does not exist");
    ck_assert_ptr_nonnull(strstr(e.hint, "create"));
    e = status_of(404, "NoSuchBucket",
                  "<Error><Code>NoSuchBucket</Code><BucketName>other</BucketName></Error>");
    ck_assert_ptr_nonnull(strstr(e.message, "bucket \"other\" does not exist"));

    e = status_of(403, "SignatureDoesNotMatch", NULL);
    ck_assert_int_eq(e.code, WK_ERR_CONFIG);
    ck_assert_str_eq(e.message, "could not read \"s3://bucket/p/k\": the S3 server refused the "
                                "signature (SignatureDoesNotMatch)");
    ck_assert_str_eq(e.hint, "check s3_secret_key (or AWS_SECRET_ACCESS_KEY)");
    e = status_of(403, "InvalidAccessKeyId", NULL);
    ck_assert_int_eq(e.code, WK_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(e.hint, "s3_access_key"));
    e = status_of(403, "AccessDenied", NULL);
    ck_assert_int_eq(e.code, WK_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(e.hint, "bucket policy"));
    e = status_of(403, "RequestTimeTooSkewed", NULL);
    ck_assert_int_eq(e.code, WK_ERR_CONFIG);
    ck_assert_str_eq(e.hint, "the system clock differs from the server's by more than 15 minutes; "
                             "fix the clock (NTP)");
    e = status_of(403, "", NULL);
    ck_assert_int_eq(e.code, WK_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(e.message, "HTTP 403"));
    ck_assert_ptr_nonnull(strstr(e.hint, "s3_access_key"));
    ck_assert_ptr_nonnull(strstr(e.hint, "s3_secret_key"));

    e = status_of(412, "PreconditionFailed", NULL);
    ck_assert_int_eq(e.code, WK_ERR_EXISTS);
    e = status_of(412, "", NULL);
    ck_assert_int_eq(e.code, WK_ERR_EXISTS);

    e = status_of(503, "SlowDown", NULL);
    ck_assert_int_eq(e.code, WK_ERR_TRANSIENT);
    ck_assert_str_eq(e.message, "could not read \"s3://bucket/p/k\": HTTP 503 (SlowDown)");
    static const long transient[] = {500, 502, 503, 504};
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(status_of(transient[i], "", NULL).code, WK_ERR_TRANSIENT);
    ck_assert_int_eq(status_of(400, "RequestTimeout", NULL).code, WK_ERR_TRANSIENT);
    ck_assert_int_eq(status_of(200, "InternalError", NULL).code, WK_ERR_TRANSIENT);
    ck_assert_int_eq(status_of(503, "ServiceUnavailable", NULL).code, WK_ERR_TRANSIENT);

    e = status_of(400, "InvalidArgument", NULL);
    ck_assert_int_eq(e.code, WK_ERR_IO);
    ck_assert_str_eq(e.message, "could not read \"s3://bucket/p/k\": HTTP 400 (InvalidArgument)");
    e = status_of(405, "", NULL);
    ck_assert_int_eq(e.code, WK_ERR_IO);
    ck_assert_str_eq(e.message, "could not read \"s3://bucket/p/k\": HTTP 405");
    e = status_of(301, "PermanentRedirect", NULL);
    ck_assert_int_eq(e.code, WK_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(e.hint, "s3_region"));

    wk_s3_response zero = {0};
    wk_s3_response_free(&zero);
}
END_TEST

/* ---- against the scripted server ----------------------------------------------------- */

static const char *const reply_ok[] = {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nETag: \"abc\"\r\n"
                                       "Connection: close\r\n\r\nok"};

START_TEST(test_request_shape)
{
    fake_start(reply_ok, 1);
    fake_run();
    wk_s3_options opt = local_options(fake->port);
    wk_error err = {0};
    wk_s3 *s3 = NULL;
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), 0);

    const wk_s3_param params[] = {{"prefix", "a/b c"}, {"uploads", ""}, {"list-type", "2"}};
    const char *const headers[] = {"X-Amz-Meta-Note:   two    words  ", "If-None-Match: *",
                                   "x-amz-meta-empty:", NULL};
    wk_s3_request req = {.method = "PUT",
                         .key = "dir/a b+c",
                         .params = params,
                         .param_count = 3,
                         .headers = headers,
                         .body = "hello",
                         .body_len = 5};
    wk_s3_response resp;
    ck_assert_int_eq(wk_s3_send(s3, &req, &resp, &err), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.etag, "\"abc\"");
    ck_assert(resp.has_length);
    ck_assert_uint_eq(resp.content_length, 2);
    ck_assert_str_eq(resp.body, "ok");
    wk_s3_response_free(&resp);

    const char *got = fake->requests[0];
    ck_assert_msg(strncmp(got,
                          "PUT /bucket/dir/a%20b%2Bc?list-type=2&prefix=a%2Fb%20c&uploads= "
                          "HTTP/1.1\r\n",
                          68) == 0,
                  "%s", got);
    char port_host[64];
    snprintf(port_host, sizeof(port_host), "\r\nhost:127.0.0.1:%d\r\n", fake->port);
    ck_assert_ptr_nonnull(strcasestr(got, port_host));
    ck_assert_ptr_nonnull(strstr(got, "\r\nx-amz-content-sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e"
                                      "1b161e5c1fa7425e73043362938b9824\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "\r\nx-amz-meta-note:two words\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "\r\nx-amz-meta-empty:"));
    ck_assert_ptr_nonnull(strstr(got, "\r\nx-amz-date:"));
    ck_assert_ptr_nonnull(strstr(got, "SignedHeaders=host;if-none-match;x-amz-content-sha256;"
                                      "x-amz-date;x-amz-meta-empty;x-amz-meta-note,"));
    ck_assert_ptr_nonnull(strstr(got, "Credential=AKIDTEST/"));
    ck_assert_ptr_null(strcasestr(got, "\r\nexpect:"));
    ck_assert_ptr_null(strstr(got, "test-secret-value"));
    ck_assert_str_eq(got + strlen(got) - 9, "\r\n\r\nhello");

    /* A header we set ourselves, a duplicate, a body on a GET: refused before sending. */
    const char *const own[] = {"Host: elsewhere", NULL};
    wk_s3_request bad = {.method = "GET", .key = "k", .headers = own};
    ck_assert_int_eq(wk_s3_send(s3, &bad, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    const char *const twice[] = {"Range: bytes=0-1", "range: bytes=2-3", NULL};
    bad.headers = twice;
    ck_assert_int_eq(wk_s3_send(s3, &bad, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    wk_s3_request get_body = {.method = "GET", .key = "k", .body = "x", .body_len = 1};
    ck_assert_int_eq(wk_s3_send(s3, &get_body, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    wk_s3_request patch = {.method = "PATCH", .key = "k"};
    ck_assert_int_eq(wk_s3_send(s3, &patch, &resp, &err), -1);
    ck_assert_int_eq(fake->served, 1);
    wk_s3_free(s3);
    fake_stop();
}
END_TEST

START_TEST(test_post_and_host_style)
{
    fake_start(reply_ok, 1);
    fake_run();
    wk_s3_options opt = local_options(fake->port);
    char endpoint[64]; /* curl resolves *.localhost itself */
    snprintf(endpoint, sizeof(endpoint), "http://localhost:%d", fake->port);
    opt.endpoint = endpoint;
    opt.host_style = true;
    wk_error err = {0};
    wk_s3 *s3 = NULL;
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), 0);
    const wk_s3_param params[] = {{"delete", ""}};
    wk_s3_request req = {
        .method = "POST", .params = params, .param_count = 1, .body = "<Delete/>", .body_len = 9};
    wk_s3_response resp;
    ck_assert_int_eq(wk_s3_send(s3, &req, &resp, &err), 0);
    wk_s3_response_free(&resp);
    const char *got = fake->requests[0];
    ck_assert_msg(strncmp(got, "POST /?delete= HTTP/1.1\r\n", 25) == 0, "%s", got);
    char host[64];
    snprintf(host, sizeof(host), "\r\nhost:bucket.localhost:%d\r\n", fake->port);
    ck_assert_ptr_nonnull(strcasestr(got, host));
    ck_assert_ptr_null(strcasestr(got, "\r\ncontent-type:"));
    ck_assert_ptr_null(strcasestr(got, "\r\nexpect:"));
    ck_assert_str_eq(got + strlen(got) - 13, "\r\n\r\n<Delete/>");

    /* A caller's Content-Type is signed and sent. */
    const char *const ct[] = {"Content-Type: application/xml", NULL};
    req.headers = ct;
    ck_assert_int_eq(wk_s3_send(s3, &req, &resp, &err), 0);
    wk_s3_response_free(&resp);
    ck_assert_ptr_nonnull(strstr(fake->requests[1], "\r\ncontent-type:application/xml\r\n"));
    ck_assert_ptr_nonnull(strstr(fake->requests[1], "content-type;host;"));
    wk_s3_free(s3);
    fake_stop();
}
END_TEST

static const char *const reply_flaky[] = {
    "HTTP/1.1 503 Slow Down\r\nContent-Length: 58\r\nConnection: close\r\n\r\n"
    "<Error><Code>SlowDown</Code><Message>x</Message></Error>\r\n",
    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfinal"};

START_TEST(test_retry_then_success)
{
    fake_start(reply_flaky, 3);
    fake_run();
    wk_s3_options opt = local_options(fake->port);
    opt.retry_timeout_ms = 20000;
    wk_error err = {0};
    wk_s3 *s3 = NULL;
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), 0);

    char dir[256];
    char log_path[300];
    ts_tmpdir_make(dir, sizeof(dir), "/tmp/wk_s3_XXXXXX");
    snprintf(log_path, sizeof(log_path), "%s/stderr", dir);
    wk_log_set_level(WK_LOG_INFO);
    wk_notice_set(wk_notice_to_log); /* as every program's wk_cli_start does */
    int saved = dup(2);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    close(fd);
    const wk_s3_param params[] = {{"uploadId", "a/b"}};
    wk_s3_request req = {.method = "PUT",
                         .key = "p/k",
                         .params = params,
                         .param_count = 1,
                         .body = "data",
                         .body_len = 4};
    wk_s3_response resp;
    int rc = wk_s3_send(s3, &req, &resp, &err);
    dup2(saved, 2);
    close(saved);
    wk_log_set_level(WK_LOG_WARNING);

    ck_assert_msg(rc == 0, "%s", err.message);
    ck_assert_int_eq(fake->served, 3);
    ck_assert_str_eq(resp.body, "final");
    /* The body went whole with every attempt. */
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(fake->requests[i] + strlen(fake->requests[i]) - 8, "\r\n\r\ndata");
    char *log = ts_read_file(log_path, NULL);
    ck_assert_msg(strstr(log, "info: retrying PUT of \"s3://bucket/p/k\" in ") != NULL, "%s", log);
    ck_assert_ptr_nonnull(strstr(log, " s: HTTP 503 (SlowDown)\n"));
    ck_assert_ptr_nonnull(strstr(log, " s: HTTP 500\n"));
    free(log);
    wk_s3_response_free(&resp);
    ts_tmpdir_remove(dir);
    wk_s3_free(s3);
    fake_stop();
}
END_TEST

START_TEST(test_retry_gives_up)
{
    fake_start(reply_flaky, 1); /* 503 SlowDown, again and again */
    fake_run();
    wk_s3_options opt = local_options(fake->port);
    opt.retry_timeout_ms = 400;
    wk_error err = {0};
    wk_s3 *s3 = NULL;
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), 0);
    wk_s3_request req = {.method = "GET", .key = "p/k"};
    wk_s3_response resp;
    int64_t start = now_ms();
    ck_assert_int_eq(wk_s3_send(s3, &req, &resp, &err), -1);
    int64_t took = now_ms() - start;
    ck_assert_int_eq(err.code, WK_ERR_TRANSIENT);
    ck_assert_str_eq(err.message, "could not read \"s3://bucket/p/k\": HTTP 503 (SlowDown)");
    ck_assert_ptr_nonnull(strstr(err.detail, "Gave up after"));
    ck_assert_int_ge(took, 400);
    ck_assert_int_lt(took, 3000);
    ck_assert_int_ge(fake->served, 2);
    ck_assert_int_eq(resp.status, 503);
    ck_assert_str_eq(resp.error_code, "SlowDown");
    ck_assert_ptr_nonnull(strstr(resp.body, "<Code>SlowDown</Code>"));
    wk_s3_response_free(&resp);

    /* Without a retry budget: one attempt. */
    wk_s3_free(s3);
    opt.retry_timeout_ms = 0;
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), 0);
    int before = fake->served;
    ck_assert_int_eq(wk_s3_send(s3, &req, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_TRANSIENT);
    ck_assert_int_eq(fake->served, before + 1);
    wk_s3_response_free(&resp);
    wk_s3_free(s3);
    fake_stop();
}
END_TEST

static const char *const reply_cut[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nabc"};

START_TEST(test_no_retry_after_body)
{
    fake_start(reply_cut, 1);
    fake_run();
    wk_s3_options opt = local_options(fake->port);
    opt.retry_timeout_ms = 10000;
    wk_error err = {0};
    wk_s3 *s3 = NULL;
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), 0);
    char got[4096] = "";
    wk_s3_request req = {.method = "GET", .key = "k", .on_body = collect_cb, .on_body_arg = got};
    wk_s3_response resp;
    ck_assert_int_eq(wk_s3_send(s3, &req, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_TRANSIENT);
    ck_assert_uint_eq(resp.delivered, 3);
    ck_assert_str_eq(got, "abc");
    ck_assert_int_eq(fake->served, 1);
    ck_assert_ptr_nonnull(strstr(err.message, "could not read \"s3://bucket/k\" at S3 endpoint"));
    wk_s3_response_free(&resp);

    /* A receiver that refuses: its error, no retry. */
    req.on_body = refuse_cb;
    ck_assert_int_eq(wk_s3_send(s3, &req, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_str_eq(err.message, "refused by the test");
    ck_assert_int_eq(fake->served, 2);
    wk_s3_response_free(&resp);
    wk_s3_free(s3);
    fake_stop();
}
END_TEST

START_TEST(test_stall)
{
    fake_start(reply_cut, 1);
    fake->hold_ms = 20000;
    fake_run();
    wk_s3_options opt = local_options(fake->port);
    opt.retry_timeout_ms = 10000;
    opt.stall_timeout_ms = 1000; /* s3_stall_timeout = 1s */
    wk_error err = {0};
    wk_s3 *s3 = NULL;
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), 0);
    char got[4096] = "";
    wk_s3_request req = {.method = "GET", .key = "k", .on_body = collect_cb, .on_body_arg = got};
    wk_s3_response resp;
    int64_t start = now_ms();
    ck_assert_int_eq(wk_s3_send(s3, &req, &resp, &err), -1);
    int64_t took = now_ms() - start;
    ck_assert_int_eq(err.code, WK_ERR_TRANSIENT);
    ck_assert_uint_eq(resp.delivered, 3);
    ck_assert_int_ge(took, 900);
    ck_assert_int_lt(took, 15000); /* curl averages the speed over a few seconds */
    ck_assert_int_eq(fake->served, 1);
    wk_s3_response_free(&resp);
    wk_s3_free(s3);
    fake_stop();
}
END_TEST

static const char *const reply_errors[] = {
    "HTTP/1.1 404 Not Found\r\nContent-Length: 90\r\nConnection: close\r\n\r\n"
    "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message></Message><Key>k</Key></Error>\n",
    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 12345\r\nETag: \"0123456789abcdef0123456789abcdef-2\"\r\n"
    "Connection: close\r\n\r\n"};

START_TEST(test_error_answers)
{
    fake_start(reply_errors, 4);
    fake_run();
    wk_s3_options opt = local_options(fake->port);
    opt.retry_timeout_ms = 10000;
    wk_error err = {0};
    wk_s3 *s3 = NULL;
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), 0);
    wk_s3_request get = {.method = "GET", .key = "k"};
    wk_s3_response resp;
    ck_assert_int_eq(wk_s3_send(s3, &get, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    ck_assert_str_eq(err.message, "could not read \"s3://bucket/k\": no such object");
    ck_assert_int_eq(resp.status, 404);
    ck_assert_str_eq(resp.error_code, "NoSuchKey");
    ck_assert_uint_eq(resp.body_len, 90);
    wk_s3_response_free(&resp);

    wk_s3_request head = {.method = "HEAD", .key = "k"};
    ck_assert_int_eq(wk_s3_send(s3, &head, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    ck_assert_str_eq(resp.error_code, "");
    wk_s3_response_free(&resp);

    const char *const inm[] = {"If-None-Match: *", NULL};
    wk_s3_request put = {.method = "PUT", .key = "k", .headers = inm, .body = "x", .body_len = 1};
    ck_assert_int_eq(wk_s3_send(s3, &put, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    ck_assert_str_eq(err.message, "could not write \"s3://bucket/k\": the object already exists "
                                  "(HTTP 412)");
    wk_s3_response_free(&resp);

    ck_assert_int_eq(wk_s3_send(s3, &head, &resp, &err), 0);
    ck_assert(resp.has_length);
    ck_assert_uint_eq(resp.content_length, 12345);
    ck_assert_str_eq(resp.etag, "\"0123456789abcdef0123456789abcdef-2\"");
    ck_assert_ptr_nonnull(resp.body);
    ck_assert_uint_eq(resp.body_len, 0);
    wk_s3_response_free(&resp);
    ck_assert_int_eq(fake->served, 4);
    wk_s3_free(s3);
    fake_stop();
}
END_TEST

START_TEST(test_collect_limit)
{
    /* A 2xx body to collect may be 1 MiB, not a byte more. */
    static const size_t sizes[] = {1024 * 1024, 1024 * 1024 + 1};
    for (size_t i = 0; i < 2; i++) {
        size_t head_max = 128;
        char *reply = malloc(head_max + sizes[i]);
        ck_assert_ptr_nonnull(reply);
        int n = snprintf(reply, head_max,
                         "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n",
                         sizes[i]);
        memset(reply + n, 'x', sizes[i]);
        const char *replies[] = {reply};
        fake_start(replies, 1);
        fake->reply_len0 = (size_t)n + sizes[i];
        fake_run();
        wk_s3_options opt = local_options(fake->port);
        wk_error err = {0};
        wk_s3 *s3 = NULL;
        ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), 0);
        wk_s3_request get = {.method = "GET", .key = "big"};
        wk_s3_response resp;
        int rc = wk_s3_send(s3, &get, &resp, &err);
        if (i == 0) {
            ck_assert_msg(rc == 0, "%s", err.message);
            ck_assert_uint_eq(resp.body_len, sizes[i]);
            ck_assert_int_eq(resp.body[sizes[i]], '\0');
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert_int_eq(err.code, WK_ERR_IO);
            ck_assert_ptr_nonnull(strstr(err.message, "larger than"));
        }
        wk_s3_response_free(&resp);
        wk_s3_free(s3);
        fake_stop();
        free(reply);
    }
}
END_TEST

START_TEST(test_connection_refused)
{
    int port = closed_port();
    wk_s3_options opt = local_options(port);
    opt.retry_timeout_ms = 1500;
    wk_error err = {0};
    wk_s3 *s3 = NULL;
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), 0);
    wk_s3_request req = {.method = "GET", .key = "k"};
    wk_s3_response resp;
    int64_t start = now_ms();
    ck_assert_int_eq(wk_s3_send(s3, &req, &resp, &err), -1);
    int64_t took = now_ms() - start;
    ck_assert_int_eq(err.code, WK_ERR_TRANSIENT);
    char expect[128];
    snprintf(expect, sizeof(expect),
             "could not connect to S3 endpoint \"http://127.0.0.1:%d\": Couldn't connect to server",
             port);
    ck_assert_str_eq(err.message, expect);
    ck_assert_ptr_nonnull(strstr(err.detail, "Gave up after"));
    ck_assert_int_ge(took, 1500);
    ck_assert_int_lt(took, 4000);
    ck_assert_int_eq(resp.status, 0);
    ck_assert(!err_mentions(&err, "test-secret-value"));
    wk_s3_response_free(&resp);
    wk_s3_free(s3);
}
END_TEST

/* ---- against a real S3 server ------------------------------------------------------ */

typedef struct live_env {
    const char *endpoint;
    const char *access_key;
    const char *secret_key;
    const char *bucket;
} live_env;

static bool live(live_env *env, const char *test)
{
    env->endpoint = getenv("S3_ENDPOINT");
    env->access_key = getenv("S3_ACCESS_KEY");
    env->secret_key = getenv("S3_SECRET_KEY");
    env->bucket = getenv("WALKEEP_S3_TEST_BUCKET");
    if (env->endpoint == NULL || env->access_key == NULL || env->secret_key == NULL ||
        env->bucket == NULL) {
        printf("note: %s skipped: set S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY and "
               "WALKEEP_S3_TEST_BUCKET to run it against a real S3 server\n",
               test);
        return false;
    }
    return true;
}

static wk_s3 *live_open(const live_env *env, const char *bucket, const char *secret)
{
    wk_s3_options opt = {.endpoint = env->endpoint,
                         .bucket = bucket,
                         .access_key = env->access_key,
                         .secret_key = secret,
                         .retry_timeout_ms = 5000};
    wk_error err = {0};
    wk_s3 *s3 = NULL;
    ck_assert_msg(wk_s3_open(&opt, &s3, &err) == 0, "%s", err.message);
    return s3;
}

static int live_send(wk_s3 *s3, const char *method, const char *key, const wk_s3_param *params,
                     size_t nparams, const char *const *headers, const char *body,
                     wk_s3_response *resp, wk_error *err)
{
    wk_s3_request req = {.method = method,
                         .key = key,
                         .params = params,
                         .param_count = nparams,
                         .headers = headers,
                         .body = body,
                         .body_len = body ? strlen(body) : 0};
    return wk_s3_send(s3, &req, resp, err);
}

/* Lists base/ with delimiter '/' one key per page; returns entries seen (keys and common
 * prefixes) and how many pages it took. */
static int live_list(wk_s3 *s3, const char *base, int *pages)
{
    char token[1024] = "";
    char prefix[512];
    snprintf(prefix, sizeof(prefix), "%s/", base);
    int entries = 0;
    *pages = 0;
    for (;;) {
        wk_s3_param params[5] = {{"list-type", "2"},
                                 {"prefix", prefix},
                                 {"delimiter", "/"},
                                 {"max-keys", "1"},
                                 {"continuation-token", token}};
        wk_s3_response resp;
        wk_error err = {0};
        ck_assert_msg(
            live_send(s3, "GET", NULL, params, token[0] ? 5 : 4, NULL, NULL, &resp, &err) == 0,
            "%s", err.message);
        (*pages)++;
        char text[1024];
        size_t pos = 0;
        while (wk_s3_xml_next(resp.body, &pos, "Key", text, sizeof(text), &err) == 1) {
            ck_assert_ptr_nonnull(strstr(text, base));
            entries++;
        }
        pos = 0;
        while (wk_s3_xml_next(resp.body, &pos, "CommonPrefixes", text, sizeof(text), &err) == 1)
            entries++;
        pos = 0;
        bool truncated =
            wk_s3_xml_next(resp.body, &pos, "IsTruncated", text, sizeof(text), &err) == 1 &&
            strcmp(text, "true") == 0;
        pos = 0;
        if (!truncated || wk_s3_xml_next(resp.body, &pos, "NextContinuationToken", token,
                                         sizeof(token), &err) != 1) {
            wk_s3_response_free(&resp);
            return entries;
        }
        wk_s3_response_free(&resp);
        ck_assert_int_lt(*pages, 20);
    }
}

START_TEST(test_live_objects)
{
    live_env env;
    if (!live(&env, "test_live_objects"))
        return;
    wk_s3 *s3 = live_open(&env, env.bucket, env.secret_key);
    char base[128];
    char key[256];
    char other[256];
    char deep[256];
    snprintf(base, sizeof(base), "walkeep-unit/%d-%lld", (int)getpid(), (long long)now_ms());
    snprintf(key, sizeof(key), "%s/a b+c=(d):e!f$g caf\xc3\xa9", base);
    snprintf(other, sizeof(other), "%s/second", base);
    snprintf(deep, sizeof(deep), "%s/sub/third", base);
    const char *body = "Welcome to walkeep's S3 client.";
    wk_s3_response resp;
    wk_error err = {0};

    ck_assert_msg(live_send(s3, "PUT", key, NULL, 0, NULL, body, &resp, &err) == 0, "%s",
                  err.message);
    ck_assert_int_eq(resp.etag[0], '"');
    char etag[80];
    snprintf(etag, sizeof(etag), "%s", resp.etag);
    wk_s3_response_free(&resp);

    ck_assert_msg(live_send(s3, "GET", key, NULL, 0, NULL, NULL, &resp, &err) == 0, "%s",
                  err.message);
    ck_assert_str_eq(resp.body, body);
    ck_assert_str_eq(resp.etag, etag);
    wk_s3_response_free(&resp);

    char got[4096] = "";
    const char *const range[] = {"Range: bytes=11-17", NULL};
    wk_s3_request ranged = {
        .method = "GET", .key = key, .headers = range, .on_body = collect_cb, .on_body_arg = got};
    ck_assert_msg(wk_s3_send(s3, &ranged, &resp, &err) == 0, "%s", err.message);
    ck_assert_int_eq(resp.status, 206);
    ck_assert_str_eq(got, "walkeep");
    ck_assert_uint_eq(resp.delivered, 7);
    wk_s3_response_free(&resp);

    ck_assert_msg(live_send(s3, "HEAD", key, NULL, 0, NULL, NULL, &resp, &err) == 0, "%s",
                  err.message);
    ck_assert(resp.has_length);
    ck_assert_uint_eq(resp.content_length, strlen(body));
    ck_assert_str_eq(resp.etag, etag);
    wk_s3_response_free(&resp);

    ck_assert_int_eq(live_send(s3, "PUT", other, NULL, 0, NULL, "2", &resp, &err), 0);
    wk_s3_response_free(&resp);
    ck_assert_int_eq(live_send(s3, "PUT", deep, NULL, 0, NULL, "", &resp, &err), 0);
    wk_s3_response_free(&resp);
    int pages = 0;
    ck_assert_int_eq(live_list(s3, base, &pages), 3); /* two keys and sub/ */
    ck_assert_int_ge(pages, 3);

    /* A parallel sender's client works too. */
    wk_s3 *copy = NULL;
    ck_assert_int_eq(wk_s3_clone(s3, &copy, &err), 0);
    const char *keys[] = {key, other, deep};
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(live_send(copy, "DELETE", keys[i], NULL, 0, NULL, NULL, &resp, &err) == 0,
                      "%s", err.message);
        wk_s3_response_free(&resp);
    }
    wk_s3_free(copy);
    ck_assert_int_eq(live_send(s3, "GET", key, NULL, 0, NULL, NULL, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    ck_assert_str_eq(resp.error_code, "NoSuchKey");
    wk_s3_response_free(&resp);
    ck_assert_int_eq(live_send(s3, "HEAD", key, NULL, 0, NULL, NULL, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    wk_s3_response_free(&resp);
    ck_assert_int_eq(live_list(s3, base, &pages), 0);
    wk_s3_free(s3);
}
END_TEST

START_TEST(test_live_multipart)
{
    live_env env;
    if (!live(&env, "test_live_multipart"))
        return;
    wk_s3 *s3 = live_open(&env, env.bucket, env.secret_key);
    char key[256];
    snprintf(key, sizeof(key), "walkeep-unit/%d-%lld/multi part", (int)getpid(),
             (long long)now_ms());
    wk_s3_response resp;
    wk_error err = {0};
    char upload_id[512];
    char part_etag[80];
    size_t pos = 0;

    const wk_s3_param init[] = {{"uploads", ""}};
    ck_assert_msg(live_send(s3, "POST", key, init, 1, NULL, NULL, &resp, &err) == 0, "%s",
                  err.message);
    ck_assert_int_eq(
        wk_s3_xml_next(resp.body, &pos, "UploadId", upload_id, sizeof(upload_id), &err), 1);
    wk_s3_response_free(&resp);

    const wk_s3_param part[] = {{"uploadId", upload_id}, {"partNumber", "1"}};
    ck_assert_msg(live_send(s3, "PUT", key, part, 2, NULL, "one part", &resp, &err) == 0, "%s",
                  err.message);
    snprintf(part_etag, sizeof(part_etag), "%s", resp.etag);
    ck_assert_int_eq(part_etag[0], '"');
    wk_s3_response_free(&resp);

    char complete[512];
    snprintf(complete, sizeof(complete),
             "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part>"
             "</CompleteMultipartUpload>",
             part_etag);
    const wk_s3_param done[] = {{"uploadId", upload_id}};
    const char *const xml[] = {"Content-Type: application/xml", NULL};
    ck_assert_msg(live_send(s3, "POST", key, done, 1, xml, complete, &resp, &err) == 0, "%s",
                  err.message);
    wk_s3_response_free(&resp);

    ck_assert_int_eq(live_send(s3, "HEAD", key, NULL, 0, NULL, NULL, &resp, &err), 0);
    ck_assert_ptr_nonnull(strstr(resp.etag, "-1\""));
    ck_assert_uint_eq(resp.content_length, 8);
    wk_s3_response_free(&resp);

    /* No-replace put over an existing object. */
    const char *const inm[] = {"If-None-Match: *", NULL};
    ck_assert_int_eq(live_send(s3, "PUT", key, NULL, 0, inm, "again", &resp, &err), -1);
    ck_assert_msg(err.code == WK_ERR_EXISTS, "%s", err.message);
    wk_s3_response_free(&resp);

    ck_assert_int_eq(live_send(s3, "DELETE", key, NULL, 0, NULL, NULL, &resp, &err), 0);
    wk_s3_response_free(&resp);
    wk_s3_free(s3);
}
END_TEST

START_TEST(test_live_errors)
{
    live_env env;
    if (!live(&env, "test_live_errors"))
        return;
    wk_s3_response resp;
    wk_error err = {0};

    wk_s3 *s3 = live_open(&env, env.bucket, "wrong-secret-XYZ");
    ck_assert_int_eq(live_send(s3, "GET", "k", NULL, 0, NULL, NULL, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "SignatureDoesNotMatch"));
    ck_assert_ptr_nonnull(strstr(err.hint, "s3_secret_key"));
    ck_assert(!err_mentions(&err, "wrong-secret-XYZ"));
    wk_s3_response_free(&resp);
    wk_s3_free(s3);

    wk_s3_options opt = {.endpoint = env.endpoint,
                         .bucket = env.bucket,
                         .access_key = "AKIANOSUCHKEY00000",
                         .secret_key = env.secret_key};
    ck_assert_int_eq(wk_s3_open(&opt, &s3, &err), 0);
    ck_assert_int_eq(live_send(s3, "GET", "k", NULL, 0, NULL, NULL, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.hint, "s3_access_key"));
    wk_s3_response_free(&resp);
    wk_s3_free(s3);

    s3 = live_open(&env, "walkeep-no-such-bucket", env.secret_key);
    const wk_s3_param list[] = {{"list-type", "2"}};
    ck_assert_int_eq(live_send(s3, "GET", NULL, list, 1, NULL, NULL, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFIG);
    ck_assert_str_eq(err.message, "could not list \"s3://walkeep-no-such-bucket/\": bucket "
                                  "\"walkeep-no-such-bucket\" does not exist");
    wk_s3_response_free(&resp);
    ck_assert_int_eq(live_send(s3, "GET", "p/k", NULL, 0, NULL, NULL, &resp, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFIG);
    wk_s3_response_free(&resp);
    wk_s3_free(s3);
}
END_TEST

/* The payload hash (OpenSSL's when libcurl brought libcrypto in) equals libsodium's. */
START_TEST(test_payload_sha256)
{
    wk_error err = {0};
    ck_assert_msg(wk_curl_load(&err) == 0, "%s", err.message);
    static const size_t sizes[] = {0, 1, 55, 56, 64, 1000, 1 << 20};
    uint8_t *data = malloc(1 << 20);
    ck_assert_ptr_nonnull(data);
    ts_fill_pattern(data, 1 << 20, 3);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char ours[32], ref[32];
        wk_curl_sha256(data, sizes[i], ours);
        crypto_hash_sha256(ref, data, sizes[i]);
        ck_assert_msg(memcmp(ours, ref, 32) == 0, "%zu bytes", sizes[i]);
    }
    free(data);
}
END_TEST

static Suite *s3_suite(void)
{
    Suite *s = suite_create("s3");
    TCase *tc = tcase_create("offline");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sigv4_get_object);
    tcase_add_test(tc, test_sigv4_put_object);
    tcase_add_test(tc, test_sigv4_get_lifecycle_and_list);
    tcase_add_test(tc, test_sigv4_limits);
    tcase_add_test(tc, test_uri_encode);
    tcase_add_test(tc, test_payload_sha256);
    tcase_add_test(tc, test_open_endpoints);
    tcase_add_test(tc, test_open_keys_and_ca);
    tcase_add_test(tc, test_status_error);
    tcase_add_test(tc, test_request_shape);
    tcase_add_test(tc, test_post_and_host_style);
    tcase_add_test(tc, test_retry_then_success);
    tcase_add_test(tc, test_retry_gives_up);
    tcase_add_test(tc, test_no_retry_after_body);
    tcase_add_test(tc, test_stall);
    tcase_add_test(tc, test_error_answers);
    tcase_add_test(tc, test_collect_limit);
    tcase_add_test(tc, test_connection_refused);
    suite_add_tcase(s, tc);
    TCase *live_tc = tcase_create("live");
    tcase_set_timeout(live_tc, 120);
    tcase_add_test(live_tc, test_live_objects);
    tcase_add_test(live_tc, test_live_multipart);
    tcase_add_test(live_tc, test_live_errors);
    suite_add_tcase(s, live_tc);
    return s;
}

int main(void)
{
    wk_log_set_level(WK_LOG_WARNING); /* retries log at info; one test captures them */
    SRunner *sr = srunner_create(s3_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
