/* s3: a small S3 client over libcurl: addressing, AWS Signature Version 4 computed here with
 * libsodium, bounded retries with backoff and full jitter, and error messages that say what to fix. */
#include "s3.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "curlfn.h"
#include "log.h"
#include "s3xml.h"

#define S3_BODY_MAX (1024 * 1024) /* largest collected body */
#define S3_CONNECT_TIMEOUT_MS 10000L
#define S3_STALL_SECONDS 30L
#define S3_BACKOFF_FIRST_MS 100U
#define S3_BACKOFF_CAP_MS 5000U
#define S3_SECRET_MAX 256 /* bytes of a secret key */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct wk_s3 {
    CURL *curl;
    char *endpoint; /* scheme://host[:port] as configured, no trailing '/' (messages) */
    char *base_url; /* scheme://[bucket.]host[:port]: what every URL starts with */
    char *host;     /* the Host header: [bucket.]host, plus the port unless default */
    char *region;
    char *bucket;
    char *access_key; /* wiped on free */
    char *secret_key; /* wiped on free */
    char *ca_file;    /* NULL: the system's store */
    bool host_style;
    int retry_timeout_ms;
    long stall_seconds;
    char errbuf[CURL_ERROR_SIZE]; /* curl's text for the last failure */
};

/* ---- process-wide setup ------------------------------------------------------------ */

/* libcurl is loaded (and initialised) on first use: see curlfn.h. */
static int global_ready(wk_error *err)
{
    if (wk_curl_load(err) != 0)
        return -1;
    if (sodium_init() < 0)
        return wk_error_set(err, WK_ERR_INTERNAL, "could not initialise libsodium");
    return 0;
}

/* ---- small helpers ----------------------------------------------------------------- */

static char *dup_or_null(const char *s, bool *failed)
{
    if (s == NULL)
        return NULL;
    char *copy = strdup(s);
    if (copy == NULL)
        *failed = true;
    return copy;
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : out;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* ---- SigV4 primitives -------------------------------------------------------------- */

int wk_s3_uri_encode(const char *text, bool keep_slash, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (is_unreserved(*p) || (keep_slash && *p == '/')) {
            if (n + 1 >= size)
                return -1;
            out[n++] = (char)*p;
        } else {
            if (n + 3 >= size)
                return -1;
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 0x0f];
        }
    }
    if (n >= size || n > INT_MAX)
        return -1;
    out[n] = '\0';
    return (int)n;
}

/* A malloc'd percent-encoding of text; NULL when out of memory. */
static char *encode_dup(const char *text, bool keep_slash)
{
    size_t size = 3 * strlen(text) + 1;
    char *out = malloc(size);
    if (out != NULL && wk_s3_uri_encode(text, keep_slash, out, size) < 0) {
        free(out);
        out = NULL;
    }
    return out;
}

static void hmac(const uint8_t *key, size_t key_len, const char *msg, size_t msg_len,
                 uint8_t mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, msg_len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

static void hash_str(crypto_hash_sha256_state *st, const char *s)
{
    crypto_hash_sha256_update(st, (const unsigned char *)s, strlen(s));
}

/* Appends text to out (size bytes) at *used; false when it does not fit. */
static bool append(char *out, size_t size, size_t *used, const char *text, size_t len)
{
    if (*used + len >= size)
        return false;
    memcpy(out + *used, text, len);
    *used += len;
    out[*used] = '\0';
    return true;
}

/* Feeds "name1;name2;..." of the header lines to the hash (when st) and to out (when out). */
static bool signed_names(const char *const *headers, size_t count, crypto_hash_sha256_state *st,
                         char *out, size_t size, size_t *used)
{
    for (size_t i = 0; i < count; i++) {
        const char *colon = strchr(headers[i], ':');
        size_t n = colon != NULL ? (size_t)(colon - headers[i]) : strlen(headers[i]);
        if (i > 0) {
            if (st != NULL)
                hash_str(st, ";");
            if (out != NULL && !append(out, size, used, ";", 1))
                return false;
        }
        if (st != NULL)
            crypto_hash_sha256_update(st, (const unsigned char *)headers[i], n);
        if (out != NULL && !append(out, size, used, headers[i], n))
            return false;
    }
    return true;
}

int wk_s3_authorization(const char *access_key, const char *secret_key, const char *region,
                        const char *method, const char *canonical_uri, const char *canonical_query,
                        const char *const *headers, size_t header_count,
                        const char *payload_sha256_hex, const char *amz_date, char *out,
                        size_t size)
{
    size_t secret_len = strlen(secret_key);
    if (strlen(amz_date) != 16 || amz_date[8] != 'T' || secret_len > S3_SECRET_MAX)
        return -1;

    /* The canonical request, hashed as it is written. */
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    const char *parts[] = {method, "\n", canonical_uri, "\n", canonical_query, "\n"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        hash_str(&st, parts[i]);
    for (size_t i = 0; i < header_count; i++) {
        hash_str(&st, headers[i]);
        hash_str(&st, "\n");
    }
    hash_str(&st, "\n");
    signed_names(headers, header_count, &st, NULL, 0, NULL);
    hash_str(&st, "\n");
    hash_str(&st, payload_sha256_hex);
    uint8_t digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, digest);
    char request_hex[2 * crypto_hash_sha256_BYTES + 1];
    sodium_bin2hex(request_hex, sizeof(request_hex), digest, sizeof(digest));

    char scope[128];
    int n = snprintf(scope, sizeof(scope), "%.8s/%s/s3/aws4_request", amz_date, region);
    if (n < 0 || (size_t)n >= sizeof(scope))
        return -1;
    char to_sign[256];
    n = snprintf(to_sign, sizeof(to_sign), "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope,
                 request_hex);
    if (n < 0 || (size_t)n >= sizeof(to_sign))
        return -1;

    /* The signing key: HMAC chain over date, region, service, "aws4_request". */
    uint8_t k_secret[4 + S3_SECRET_MAX];
    uint8_t key[crypto_auth_hmacsha256_BYTES];
    memcpy(k_secret, "AWS4", 4);
    memcpy(k_secret + 4, secret_key, secret_len);
    hmac(k_secret, 4 + secret_len, amz_date, 8, key);
    sodium_memzero(k_secret, sizeof(k_secret));
    hmac(key, sizeof(key), region, strlen(region), key);
    hmac(key, sizeof(key), "s3", 2, key);
    hmac(key, sizeof(key), "aws4_request", 12, key);
    uint8_t sig[crypto_auth_hmacsha256_BYTES];
    hmac(key, sizeof(key), to_sign, (size_t)n, sig);
    sodium_memzero(key, sizeof(key));
    char sig_hex[2 * crypto_auth_hmacsha256_BYTES + 1];
    sodium_bin2hex(sig_hex, sizeof(sig_hex), sig, sizeof(sig));

    size_t used = 0;
    if (size == 0)
        return -1;
    out[0] = '\0';
    const char *head = "AWS4-HMAC-SHA256 Credential=";
    if (!append(out, size, &used, head, strlen(head)) ||
        !append(out, size, &used, access_key, strlen(access_key)) ||
        !append(out, size, &used, "/", 1) || !append(out, size, &used, scope, strlen(scope)) ||
        !append(out, size, &used, ",SignedHeaders=", 15) ||
        !signed_names(headers, header_count, NULL, out, size, &used) ||
        !append(out, size, &used, ",Signature=", 11) ||
        !append(out, size, &used, sig_hex, strlen(sig_hex)))
        return -1;
    return 0;
}

/* ---- opening ----------------------------------------------------------------------- */

static int bad_endpoint(const char *endpoint, wk_error *err)
{
    if (strchr(endpoint, '@') != NULL)
        wk_error_set(err, WK_ERR_CONFIG, "invalid s3_endpoint: it must not contain credentials");
    else
        wk_error_set(err, WK_ERR_CONFIG, "invalid s3_endpoint \"%s\"", endpoint);
    wk_error_hint(err, "give it as http://host[:port] or https://host[:port], without a path");
    return -1;
}

static bool is_host_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* Checks "http(s)://host[:port][/]" and returns its parts: *https, the authority as given
 * (host[:port], malloc'd) and the Host header form (the port left out when default). */
static int parse_endpoint(const char *endpoint, bool *https, char **authority, char **host,
                          wk_error *err)
{
    const char *p;
    if (strncmp(endpoint, "https://", 8) == 0) {
        *https = true;
        p = endpoint + 8;
    } else if (strncmp(endpoint, "http://", 7) == 0) {
        *https = false;
        p = endpoint + 7;
    } else {
        return bad_endpoint(endpoint, err);
    }
    size_t len = strlen(p);
    if (len > 0 && p[len - 1] == '/')
        len--;
    const char *q = p;
    if (*q == '[') {
        while (q < p + len && *q != ']')
            q++;
        if (q == p + len || q == p + 1)
            return bad_endpoint(endpoint, err);
        q++;
    } else {
        while (q < p + len && is_host_char(*q))
            q++;
        if (q == p)
            return bad_endpoint(endpoint, err);
    }
    size_t host_len = (size_t)(q - p);
    long port = -1;
    if (q < p + len) {
        if (*q != ':' || q + 1 == p + len)
            return bad_endpoint(endpoint, err);
        port = 0;
        for (q++; q < p + len; q++) {
            if (*q < '0' || *q > '9' || port > 65535)
                return bad_endpoint(endpoint, err);
            port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535)
            return bad_endpoint(endpoint, err);
    }
    bool default_port = port < 0 || port == (*https ? 443 : 80);
    *authority = strndup(p, len);
    *host = strndup(p, default_port ? host_len : len);
    if (*authority == NULL || *host == NULL) {
        free(*authority);
        free(*host);
        *authority = *host = NULL;
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    }
    return 0;
}

static int check_options(const wk_s3_options *opt, wk_error *err)
{
    if (opt->bucket == NULL || opt->bucket[0] == '\0')
        return wk_error_set(err, WK_ERR_CONFIG, "no S3 bucket is set");
    for (const unsigned char *c = (const unsigned char *)opt->bucket; *c != '\0'; c++) {
        if (*c <= 0x20 || *c == 0x7f || *c == '/' || *c == '?' || *c == '#' || *c == '%')
            return wk_error_set(err, WK_ERR_CONFIG, "invalid S3 bucket name \"%s\"", opt->bucket);
    }
    if (opt->region != NULL) {
        for (const char *c = opt->region; *c != '\0'; c++) {
            if (!is_host_char(*c) || *c == '.')
                return wk_error_set(err, WK_ERR_CONFIG, "invalid s3_region \"%s\"", opt->region);
        }
    }
    if (opt->access_key == NULL || opt->access_key[0] == '\0') {
        wk_error_set(err, WK_ERR_CONFIG, "no S3 access key is set");
        wk_error_hint(err, "set s3_access_key in the configuration or AWS_ACCESS_KEY_ID in "
                           "the environment");
        return -1;
    }
    for (const unsigned char *c = (const unsigned char *)opt->access_key; *c != '\0'; c++) {
        if (*c <= 0x20 || *c >= 0x7f || *c == ',' || *c == '/')
            return wk_error_set(err, WK_ERR_CONFIG,
                                "the S3 access key contains an invalid "
                                "character");
    }
    if (opt->secret_key == NULL || opt->secret_key[0] == '\0') {
        wk_error_set(err, WK_ERR_CONFIG, "no S3 secret key is set");
        wk_error_hint(err, "set s3_secret_key in the configuration or AWS_SECRET_ACCESS_KEY in "
                           "the environment");
        return -1;
    }
    if (strlen(opt->secret_key) > S3_SECRET_MAX)
        return wk_error_set(err, WK_ERR_CONFIG, "the S3 secret key is longer than %d bytes",
                            S3_SECRET_MAX);
    if (opt->ca_file != NULL && opt->ca_file[0] != '\0') {
        int fd = open(opt->ca_file, O_RDONLY | O_CLOEXEC);
        char byte;
        if (fd < 0 || read(fd, &byte, 1) < 0) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            return wk_error_sys(err, WK_ERR_CONFIG, e, "could not read s3_ca_file \"%s\"",
                                opt->ca_file);
        }
        close(fd);
    }
    return 0;
}

/* s3_stall_timeout in whole seconds (rounded up), or the default. */
static long stall_seconds(const wk_s3_options *opt)
{
    if (opt->stall_timeout_ms <= 0)
        return S3_STALL_SECONDS;
    return ((long)opt->stall_timeout_ms + 999) / 1000;
}

int wk_s3_open(const wk_s3_options *opt, wk_s3 **out, wk_error *err)
{
    if (global_ready(err) != 0 || check_options(opt, err) != 0)
        return -1;
    const char *region = opt->region != NULL && opt->region[0] != '\0' ? opt->region : "us-east-1";
    char *default_endpoint = NULL;
    const char *endpoint = opt->endpoint;
    if (endpoint == NULL || endpoint[0] == '\0') {
        default_endpoint = str_printf("https://s3.%s.amazonaws.com", region);
        if (default_endpoint == NULL)
            return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        endpoint = default_endpoint;
    }
    bool https = false;
    char *authority = NULL;
    char *host = NULL;
    wk_s3 *s3 = NULL;
    int rc = -1;
    if (parse_endpoint(endpoint, &https, &authority, &host, err) != 0)
        goto out;
    s3 = calloc(1, sizeof(*s3));
    if (s3 == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    bool failed = false;
    const char *scheme = https ? "https" : "http";
    s3->endpoint = str_printf("%s://%s", scheme, authority);
    if (opt->host_style) {
        s3->base_url = str_printf("%s://%s.%s", scheme, opt->bucket, authority);
        s3->host = str_printf("%s.%s", opt->bucket, host);
    } else {
        s3->base_url = str_printf("%s://%s", scheme, authority);
        s3->host = strdup(host);
    }
    s3->region = dup_or_null(region, &failed);
    s3->bucket = dup_or_null(opt->bucket, &failed);
    s3->access_key = dup_or_null(opt->access_key, &failed);
    s3->secret_key = dup_or_null(opt->secret_key, &failed);
    if (opt->ca_file != NULL && opt->ca_file[0] != '\0')
        s3->ca_file = dup_or_null(opt->ca_file, &failed);
    s3->host_style = opt->host_style;
    s3->retry_timeout_ms = opt->retry_timeout_ms > 0 ? opt->retry_timeout_ms : 0;
    s3->stall_seconds = stall_seconds(opt);
    s3->curl = wk_curl.easy_init();
    if (failed || s3->endpoint == NULL || s3->base_url == NULL || s3->host == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (s3->curl == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "could not create a libcurl handle");
        goto out;
    }
    *out = s3;
    s3 = NULL;
    rc = 0;
out:
    wk_s3_free(s3);
    free(authority);
    free(host);
    free(default_endpoint);
    return rc;
}

int wk_s3_clone(const wk_s3 *s3, wk_s3 **out, wk_error *err)
{
    wk_s3_options opt = {
        .endpoint = s3->endpoint,
        .region = s3->region,
        .bucket = s3->bucket,
        .host_style = s3->host_style,
        .access_key = s3->access_key,
        .secret_key = s3->secret_key,
        .ca_file = s3->ca_file,
        .retry_timeout_ms = s3->retry_timeout_ms,
    };
    return wk_s3_open(&opt, out, err);
}

void wk_s3_free(wk_s3 *s3)
{
    if (s3 == NULL)
        return;
    if (s3->curl != NULL)
        wk_curl.easy_cleanup(s3->curl);
    free(s3->endpoint);
    free(s3->base_url);
    free(s3->host);
    free(s3->region);
    free(s3->bucket);
    free_secret(s3->access_key);
    free_secret(s3->secret_key);
    free(s3->ca_file);
    free(s3);
}

void wk_s3_response_free(wk_s3_response *response)
{
    if (response == NULL)
        return;
    free(response->body);
    memset(response, 0, sizeof(*response));
}

/* ---- status errors ----------------------------------------------------------------- */

static bool is_transient_status(long status, const char *code)
{
    static const char *const codes[] = {"SlowDown", "RequestTimeout", "InternalError",
                                        "ServiceUnavailable"};
    if (status == 500 || status == 502 || status == 503 || status == 504)
        return true;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (strcmp(code, codes[i]) == 0)
            return true;
    }
    return false;
}

/* The bucket an error is about: <BucketName> of the body, else the one in "s3://b/..." of
 * what; "" when neither says. */
static void error_bucket(const wk_s3_response *r, const char *what, char *out, size_t size)
{
    size_t pos = 0;
    out[0] = '\0';
    if (r->body != NULL && wk_s3_xml_next(r->body, &pos, "BucketName", out, size, NULL) == 1 &&
        out[0] != '\0')
        return;
    out[0] = '\0';
    const char *s = strstr(what, "s3://");
    if (s != NULL) {
        s += 5;
        size_t n = strcspn(s, "/\"");
        if (n < size) {
            memcpy(out, s, n);
            out[n] = '\0';
        }
    }
}

/* "HTTP 503 (SlowDown)", or "HTTP 503" without a code. */
static void status_text(const wk_s3_response *r, char *out, size_t size)
{
    if (r->error_code[0] != '\0')
        snprintf(out, size, "HTTP %ld (%s)", r->status, r->error_code);
    else
        snprintf(out, size, "HTTP %ld", r->status);
}

static int error_403(const wk_s3_response *r, const char *what, const char *status, wk_error *err)
{
    const char *code = r->error_code;
    if (strcmp(code, "SignatureDoesNotMatch") == 0) {
        wk_error_set(err, WK_ERR_CONFIG, "%s: the S3 server refused the signature (%s)", what,
                     code);
        wk_error_hint(err, "check s3_secret_key (or AWS_SECRET_ACCESS_KEY)");
    } else if (strcmp(code, "InvalidAccessKeyId") == 0) {
        wk_error_set(err, WK_ERR_CONFIG, "%s: the S3 server does not know the access key (%s)",
                     what, code);
        wk_error_hint(err, "check s3_access_key (or AWS_ACCESS_KEY_ID)");
    } else if (strcmp(code, "AccessDenied") == 0) {
        wk_error_set(err, WK_ERR_CONFIG, "%s: access denied (%s)", what, code);
        wk_error_hint(err, "check that the bucket policy and the user's permissions allow this "
                           "request");
    } else if (strcmp(code, "RequestTimeTooSkewed") == 0) {
        wk_error_set(err, WK_ERR_CONFIG, "%s: the S3 server refused the request time (%s)", what,
                     code);
        wk_error_hint(err, "the system clock differs from the server's by more than 15 minutes; "
                           "fix the clock (NTP)");
    } else {
        wk_error_set(err, WK_ERR_CONFIG, "%s: access denied (%s)", what, status);
        wk_error_hint(err, "check s3_access_key and s3_secret_key (or AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY) and that the bucket's permissions allow this "
                           "request");
    }
    return -1;
}

int wk_s3_status_error(const wk_s3_response *r, const char *what, wk_error *err)
{
    const char *code = r->error_code;
    char status[128];
    status_text(r, status, sizeof(status));
    if (r->status == 0)
        return wk_error_set(err, WK_ERR_IO, "%s: no answer from the S3 server", what);
    if (strcmp(code, "NoSuchBucket") == 0) {
        char bucket[256];
        error_bucket(r, what, bucket, sizeof(bucket));
        if (bucket[0] != '\0')
            wk_error_set(err, WK_ERR_CONFIG, "%s: bucket \"%s\" does not exist", what, bucket);
        else
            wk_error_set(err, WK_ERR_CONFIG, "%s: the bucket does not exist", what);
        wk_error_hint(err, "create the bucket, or fix the bucket named in the repo setting");
        return -1;
    }
    if (r->status == 404 && (code[0] == '\0' || strcmp(code, "NoSuchKey") == 0))
        return wk_error_set(err, WK_ERR_NOTFOUND, "%s: no such object", what);
    if (r->status == 404 && strcmp(code, "NoSuchUpload") == 0)
        return wk_error_set(err, WK_ERR_NOTFOUND, "%s: no such multipart upload", what);
    if (r->status == 403)
        return error_403(r, what, status, err);
    if (r->status == 412 || strcmp(code, "PreconditionFailed") == 0)
        return wk_error_set(err, WK_ERR_EXISTS, "%s: the object already exists (%s)", what,
                            code[0] != '\0' ? code : status);
    if (is_transient_status(r->status, code))
        return wk_error_set(err, WK_ERR_TRANSIENT, "%s: %s", what, status);
    if (r->status == 301 || strcmp(code, "AuthorizationHeaderMalformed") == 0 ||
        strcmp(code, "PermanentRedirect") == 0) {
        wk_error_set(err, WK_ERR_CONFIG, "%s: the bucket is not at this endpoint or region (%s)",
                     what, status);
        wk_error_hint(err, "set s3_region (and s3_endpoint) to the bucket's region");
        return -1;
    }
    return wk_error_set(err, WK_ERR_IO, "%s: %s", what, status);
}

/* ---- one request ------------------------------------------------------------------- */

/* What is built once per wk_s3_send and reused by every attempt. */
typedef struct s3_call {
    char *url;
    char *path;   /* canonical URI */
    char *query;  /* canonical query, "" for none */
    char **extra; /* caller's headers as "name:value", malloc'd */
    size_t extra_count;
    const char **lines; /* every signed "name:value", sorted by name */
    size_t line_count;
    char *host_line;
    char hash_line[96]; /* "x-amz-content-sha256:<hex>" */
    char date_line[48]; /* "x-amz-date:<date>", refreshed per attempt */
    char payload_hex[65];
    bool has_content_type;
    bool has_range; /* a "Range: bytes=<range_start>-..." header was given */
    uint64_t range_start;
    char what[1200]; /* "could not read \"s3://b/k\"" */
} s3_call;

/* The state of one attempt, shared with curl's callbacks. */
typedef struct s3_transfer {
    wk_s3 *s3;
    const s3_call *call;
    const wk_s3_request *req;
    wk_s3_response *resp;
    wk_error *err;
    size_t sent;      /* request body bytes handed to curl */
    size_t body_cap;  /* bytes allocated for resp->body */
    bool body_failed; /* on_body returned -1: err is filled */
    bool too_large;   /* a 2xx body to collect passed S3_BODY_MAX */
    bool nomem;
    bool has_content_range;       /* of the current answer */
    uint64_t content_range_start; /* "Content-Range: bytes <start>-..." */
    bool range_ignored; /* the answer to a Range was not the asked part: nothing passed on */
} s3_transfer;

static void call_free(s3_call *c)
{
    free(c->url);
    free(c->path);
    free(c->query);
    for (size_t i = 0; i < c->extra_count; i++)
        free(c->extra[i]);
    free(c->extra);
    free(c->lines);
    free(c->host_line);
}

/* Compares header lines by name only ("x-amz-date" sorts before "x-amz-date-x"). */
static int header_cmp(const void *a, const void *b)
{
    const unsigned char *x = *(const unsigned char *const *)a;
    const unsigned char *y = *(const unsigned char *const *)b;
    for (;; x++, y++) {
        int cx = *x == ':' ? -1 : *x;
        int cy = *y == ':' ? -1 : *y;
        if (cx != cy)
            return cx < cy ? -1 : 1;
        if (cx == -1)
            return 0;
    }
}

typedef struct s3_param_enc {
    char *name;
    char *value;
} s3_param_enc;

static int param_cmp(const void *a, const void *b)
{
    const s3_param_enc *x = a;
    const s3_param_enc *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->value, y->value);
}

/* The canonical query of the parameters: encoded, sorted by name then value. */
static char *make_query(const wk_s3_param *params, size_t count)
{
    if (count == 0)
        return strdup("");
    s3_param_enc *enc = calloc(count, sizeof(*enc));
    char *query = NULL;
    size_t total = 1;
    if (enc == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        enc[i].name = encode_dup(params[i].name, false);
        enc[i].value = encode_dup(params[i].value != NULL ? params[i].value : "", false);
        if (enc[i].name == NULL || enc[i].value == NULL)
            goto out;
        total += strlen(enc[i].name) + strlen(enc[i].value) + 2;
    }
    if (count > 1)
        qsort(enc, count, sizeof(*enc), param_cmp);
    query = malloc(total);
    if (query == NULL)
        goto out;
    size_t used = 0;
    for (size_t i = 0; i < count; i++)
        used +=
            (size_t)sprintf(query + used, "%s%s=%s", i > 0 ? "&" : "", enc[i].name, enc[i].value);
out:
    for (size_t i = 0; i < count; i++) {
        free(enc[i].name);
        free(enc[i].value);
    }
    free(enc);
    return query;
}

/* Turns "Name:  value " into "name:value" (lower-case name, value trimmed, inner runs of
 * spaces made one), as SigV4 signs it. */
static int canonical_header(const char *line, char **out, wk_error *err)
{
    const char *colon = strchr(line, ':');
    if (colon == NULL || colon == line)
        return wk_error_set(err, WK_ERR_USAGE, "invalid S3 request header \"%s\"", line);
    size_t name_len = (size_t)(colon - line);
    for (const unsigned char *c = (const unsigned char *)line; *c != '\0'; c++) {
        if ((*c < 0x20 && *c != '\t') || *c == 0x7f ||
            ((*c == ' ' || *c == '\t') && c < (const unsigned char *)colon))
            return wk_error_set(err, WK_ERR_USAGE, "invalid S3 request header \"%.*s\"",
                                (int)name_len, line);
    }
    char *s = malloc(strlen(line) + 1);
    if (s == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < name_len; i++)
        s[n++] = (char)((line[i] >= 'A' && line[i] <= 'Z') ? line[i] - 'A' + 'a' : line[i]);
    s[n++] = ':';
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    bool space = false;
    for (; *v != '\0'; v++) {
        if (*v == ' ' || *v == '\t') {
            space = true;
            continue;
        }
        if (space)
            s[n++] = ' ';
        space = false;
        s[n++] = *v;
    }
    s[n] = '\0';
    static const char *const ours[] = {
        "host:", "authorization:", "x-amz-date:", "x-amz-content-sha256:"};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        if (strncmp(s, ours[i], strlen(ours[i])) == 0) {
            wk_error_set(err, WK_ERR_USAGE, "S3 request header \"%.*s\" is set by the client",
                         (int)name_len, line);
            free(s);
            return -1;
        }
    }
    *out = s;
    return 0;
}

static const char *verb_of(const wk_s3_request *req, bool has_key)
{
    const char *m = req->method;
    if (strcmp(m, "GET") == 0)
        return has_key ? "read" : "list";
    if (strcmp(m, "HEAD") == 0)
        return "read";
    if (strcmp(m, "PUT") == 0)
        return has_key ? "write" : "create";
    if (strcmp(m, "POST") == 0)
        return has_key ? "write" : "remove objects in";
    return "remove";
}

static int call_headers(const wk_s3 *s3, const wk_s3_request *req, s3_call *c, wk_error *err)
{
    size_t n = 0;
    while (req->headers != NULL && req->headers[n] != NULL)
        n++;
    c->extra = calloc(n + 1, sizeof(*c->extra));
    c->lines = calloc(n + 3, sizeof(*c->lines));
    c->host_line = str_printf("host:%s", s3->host);
    if (c->extra == NULL || c->lines == NULL || c->host_line == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (canonical_header(req->headers[i], &c->extra[i], err) != 0)
            return -1;
        c->extra_count++;
        if (strncmp(c->extra[i], "content-type:", 13) == 0)
            c->has_content_type = true;
        if (strncmp(c->extra[i], "range:bytes=", 12) == 0) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(c->extra[i] + 12, &end, 10);
            if (end != c->extra[i] + 12 && *end == '-' && errno == 0) {
                c->has_range = true;
                c->range_start = (uint64_t)v;
            }
        }
        c->lines[c->line_count++] = c->extra[i];
    }
    snprintf(c->hash_line, sizeof(c->hash_line), "x-amz-content-sha256:%s", c->payload_hex);
    snprintf(c->date_line, sizeof(c->date_line), "x-amz-date:00000000T000000Z");
    c->lines[c->line_count++] = c->host_line;
    c->lines[c->line_count++] = c->hash_line;
    c->lines[c->line_count++] = c->date_line;
    if (c->line_count > 1)
        qsort(c->lines, c->line_count, sizeof(*c->lines), header_cmp);
    for (size_t i = 1; i < c->line_count; i++) {
        if (header_cmp(&c->lines[i - 1], &c->lines[i]) == 0)
            return wk_error_set(err, WK_ERR_USAGE, "S3 request header \"%.*s\" is given twice",
                                (int)strcspn(c->lines[i], ":"), c->lines[i]);
    }
    return 0;
}

static int call_prepare(const wk_s3 *s3, const wk_s3_request *req, s3_call *c, wk_error *err)
{
    static const char *const methods[] = {"GET", "HEAD", "PUT", "POST", "DELETE"};
    bool known = false;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        known = known || strcmp(req->method, methods[i]) == 0;
    if (!known)
        return wk_error_set(err, WK_ERR_USAGE, "unsupported S3 request method \"%s\"", req->method);
    bool has_body = req->body != NULL || req->body_len > 0;
    if (has_body && (req->body == NULL ||
                     (strcmp(req->method, "PUT") != 0 && strcmp(req->method, "POST") != 0)))
        return wk_error_set(err, WK_ERR_USAGE, "an S3 %s request cannot carry a body", req->method);
    const char *key = req->key != NULL ? req->key : "";
    snprintf(c->what, sizeof(c->what), "could not %s \"s3://%s/%s\"", verb_of(req, key[0] != '\0'),
             s3->bucket, key);

    if (has_body) {
        uint8_t digest[crypto_hash_sha256_BYTES];
        wk_curl_sha256(req->body, req->body_len, digest);
        sodium_bin2hex(c->payload_hex, sizeof(c->payload_hex), digest, sizeof(digest));
    } else {
        memcpy(c->payload_hex, S3_EMPTY_SHA256, sizeof(c->payload_hex));
    }

    char *enc_key = encode_dup(key, true);
    char *enc_bucket = encode_dup(s3->bucket, false);
    if (enc_key != NULL && enc_bucket != NULL) {
        if (s3->host_style)
            c->path = str_printf("/%s", enc_key);
        else if (key[0] != '\0')
            c->path = str_printf("/%s/%s", enc_bucket, enc_key);
        else
            c->path = str_printf("/%s", enc_bucket);
    }
    free(enc_key);
    free(enc_bucket);
    c->query = make_query(req->params, req->params != NULL ? req->param_count : 0);
    if (c->path == NULL || c->query == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    c->url =
        str_printf("%s%s%s%s", s3->base_url, c->path, c->query[0] != '\0' ? "?" : "", c->query);
    if (c->url == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    return call_headers(s3, req, c, err);
}

/* ---- curl callbacks ---------------------------------------------------------------- */

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
    s3_transfer *t = arg;
    size_t left = t->req->body_len - t->sent;
    size_t n = size * nitems < left ? size * nitems : left;
    if (n > 0)
        memcpy(buf, (const char *)t->req->body + t->sent, n);
    t->sent += n;
    return n;
}

static int on_seek(void *arg, curl_off_t offset, int origin)
{
    s3_transfer *t = arg;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > t->req->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    t->sent = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* Appends to the collected body; past S3_BODY_MAX a 2xx body fails, an error body is cut. */
static bool collect(s3_transfer *t, const char *data, size_t len, bool success)
{
    wk_s3_response *r = t->resp;
    if (r->body_len + len > S3_BODY_MAX) {
        if (success) {
            t->too_large = true;
            return false;
        }
        len = S3_BODY_MAX - r->body_len;
    }
    if (r->body_len + len + 1 > t->body_cap) {
        size_t cap = t->body_cap > 0 ? t->body_cap : 4096;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        if (cap > S3_BODY_MAX + 1)
            cap = S3_BODY_MAX + 1;
        char *grown = realloc(r->body, cap);
        if (grown == NULL) {
            t->nomem = true;
            return false;
        }
        r->body = grown;
        t->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return true;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
    s3_transfer *t = arg;
    size_t len = size * nmemb;
    long status = 0;
    wk_curl.easy_getinfo(t->s3->curl, CURLINFO_RESPONSE_CODE, &status);
    bool success = status >= 200 && status < 300;
    if (len == 0)
        return 0;
    if (success && t->req->on_body != NULL) {
        /* The answer to a Range must be that part (206 from the asked offset): a server
         * that ignored it would pass on bytes that are there already. */
        if (t->call->has_range && (status != 206 || !t->has_content_range ||
                                   t->content_range_start != t->call->range_start)) {
            t->range_ignored = true;
            return 0;
        }
        if (t->req->on_body(data, len, t->req->on_body_arg, t->err) != 0) {
            t->body_failed = true;
            return 0;
        }
        t->resp->delivered += len;
        return len;
    }
    return collect(t, data, len, success) ? len : 0;
}

/* If line is "name: value" (name case-insensitive), copies the trimmed value into out. */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    const char *v = line + n + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
    if (vlen >= size)
        vlen = size - 1;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
    return true;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *arg)
{
    s3_transfer *t = arg;
    wk_s3_response *r = t->resp;
    size_t len = size * nitems;
    char value[64];
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        r->etag[0] = '\0';
        r->has_length = false;
        r->content_length = 0;
        t->has_content_range = false;
    } else if (header_value(line, len, "content-range", value, sizeof(value))) {
        char *end = value;
        unsigned long long v = 0;
        errno = 0;
        if (strncmp(value, "bytes ", 6) == 0 && value[6] >= '0' && value[6] <= '9')
            v = strtoull(value + 6, &end, 10);
        t->has_content_range = end != value && *end == '-' && errno == 0;
        t->content_range_start = t->has_content_range ? (uint64_t)v : 0;
    } else if (header_value(line, len, "content-length", value, sizeof(value))) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        r->has_length = value[0] >= '0' && value[0] <= '9' && *end == '\0' && errno == 0;
        r->content_length = r->has_length ? (uint64_t)v : 0;
    } else {
        header_value(line, len, "etag", r->etag, sizeof(r->etag));
    }
    return len;
}

/* ---- sending ----------------------------------------------------------------------- */

static bool is_transient_curl(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

/* Failures before a connection stood: the message names the endpoint, not the object. */
static bool is_connect_curl(CURLcode cc)
{
    return cc == CURLE_COULDNT_RESOLVE_PROXY || cc == CURLE_COULDNT_RESOLVE_HOST ||
           cc == CURLE_COULDNT_CONNECT || cc == CURLE_SSL_CONNECT_ERROR ||
           cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
           cc == CURLE_SSL_CERTPROBLEM;
}

static int curl_error(wk_s3 *s3, const s3_call *c, CURLcode cc, bool *transient, char *reason,
                      size_t reason_size, wk_error *err)
{
    const char *text = s3->errbuf[0] != '\0' ? s3->errbuf : wk_curl.easy_strerror(cc);
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
        text = wk_curl.easy_strerror(cc);
    snprintf(reason, reason_size, "%s", text);
    *transient = is_transient_curl(cc);
    wk_errcode code = *transient ? WK_ERR_TRANSIENT : WK_ERR_IO;
    if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE)
        code = WK_ERR_CONFIG;
    if (is_connect_curl(cc))
        wk_error_set(err, code, "could not connect to S3 endpoint \"%s\": %s", s3->endpoint, text);
    else
        wk_error_set(err, code, "%s at S3 endpoint \"%s\": %s", c->what, s3->endpoint, text);
    if (code == WK_ERR_CONFIG)
        wk_error_hint(err, "check that s3_endpoint names the server's certificate, or set "
                           "s3_ca_file to the CA that signed it");
    return -1;
}

/* Fills the response's error code from an XML error body. */
static void parse_error_code(wk_s3_response *r)
{
    size_t pos = 0;
    if (r->body != NULL &&
        wk_s3_xml_next(r->body, &pos, "Code", r->error_code, sizeof(r->error_code), NULL) != 1)
        r->error_code[0] = '\0';
}

static struct curl_slist *add_header(struct curl_slist *list, const char *line, bool *failed)
{
    struct curl_slist *grown = wk_curl.slist_append(list, line);
    if (grown == NULL)
        *failed = true;
    return grown != NULL ? grown : list;
}

/* The headers to send: every signed line ("name;" for an empty value, which curl would
 * otherwise drop), Authorization, and blanks that stop curl adding its own. */
static struct curl_slist *make_headers(const wk_s3_request *req, const s3_call *c,
                                       const char *authorization)
{
    struct curl_slist *list = NULL;
    bool failed = false;
    for (size_t i = 0; i < c->line_count; i++) {
        const char *colon = strchr(c->lines[i], ':');
        if (colon[1] != '\0') {
            list = add_header(list, c->lines[i], &failed);
            continue;
        }
        char *empty = str_printf("%.*s;", (int)(colon - c->lines[i]), c->lines[i]);
        failed = failed || empty == NULL;
        if (empty != NULL)
            list = add_header(list, empty, &failed);
        free(empty);
    }
    char *auth_line = str_printf("Authorization: %s", authorization);
    failed = failed || auth_line == NULL;
    if (auth_line != NULL)
        list = add_header(list, auth_line, &failed);
    free(auth_line);
    list = add_header(list, "Expect:", &failed);
    if (strcmp(req->method, "POST") == 0 && !c->has_content_type)
        list = add_header(list, "Content-Type:", &failed);
    if (failed) {
        wk_curl.slist_free_all(list);
        return NULL;
    }
    return list;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = wk_curl.easy_setopt(curl, opt, val);                                              \
    } while (0)

static CURLcode set_options(wk_s3 *s3, const wk_s3_request *req, const s3_call *c,
                            struct curl_slist *headers, s3_transfer *t)
{
    CURL *curl = s3->curl;
    CURLcode rc = CURLE_OK;
    wk_curl.easy_reset(curl);
    s3->errbuf[0] = '\0';
    SETOPT(CURLOPT_ERRORBUFFER, s3->errbuf);
    SETOPT(CURLOPT_URL, c->url);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, s3->stall_seconds * 1000 < S3_CONNECT_TIMEOUT_MS
                                          ? s3->stall_seconds * 1000
                                          : S3_CONNECT_TIMEOUT_MS);
    SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
    SETOPT(CURLOPT_LOW_SPEED_TIME, s3->stall_seconds);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    if (s3->ca_file != NULL)
        SETOPT(CURLOPT_CAINFO, s3->ca_file);
    SETOPT(CURLOPT_USERAGENT, "walkeep");
    SETOPT(CURLOPT_HTTPHEADER, headers);
    SETOPT(CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(CURLOPT_WRITEDATA, t);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, t);
    if (strcmp(req->method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "PUT") == 0) {
        SETOPT(CURLOPT_UPLOAD, 1L);
        SETOPT(CURLOPT_READFUNCTION, on_read);
        SETOPT(CURLOPT_READDATA, t);
        SETOPT(CURLOPT_SEEKFUNCTION, on_seek);
        SETOPT(CURLOPT_SEEKDATA, t);
        SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
    } else if (strcmp(req->method, "POST") == 0) {
        SETOPT(CURLOPT_POST, 1L);
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SETOPT(CURLOPT_POSTFIELDS, req->body != NULL ? (const char *)req->body : "");
    } else if (strcmp(req->method, "DELETE") == 0) {
        SETOPT(CURLOPT_CUSTOMREQUEST, "DELETE");
    } else {
        SETOPT(CURLOPT_HTTPGET, 1L);
    }
    return rc;
}

#undef SETOPT

/* Signs for now into auth (size bytes). */
static int sign(wk_s3 *s3, const wk_s3_request *req, s3_call *c, char *auth, size_t size,
                wk_error *err)
{
    time_t now = time(NULL);
    struct tm tm;
    char date[20];
    if (gmtime_r(&now, &tm) == NULL || strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm) != 16)
        return wk_error_set(err, WK_ERR_INTERNAL, "could not format the request time");
    snprintf(c->date_line, sizeof(c->date_line), "x-amz-date:%s", date);
    if (wk_s3_authorization(s3->access_key, s3->secret_key, s3->region, req->method, c->path,
                            c->query, c->lines, c->line_count, c->payload_hex, date, auth,
                            size) != 0)
        return wk_error_set(err, WK_ERR_INTERNAL, "%s: could not sign the request", c->what);
    return 0;
}

/* One attempt. Returns 0 for a 2xx answer; otherwise -1 with err set, *transient telling
 * whether another attempt may succeed and reason a short text for the retry log. */
static int attempt(wk_s3 *s3, const wk_s3_request *req, s3_call *c, wk_s3_response *resp,
                   bool *transient, char *reason, size_t reason_size, wk_error *err)
{
    char auth[1024];
    *transient = false;
    wk_error_clear(err);
    if (sign(s3, req, c, auth, sizeof(auth), err) != 0)
        return -1;
    struct curl_slist *headers = make_headers(req, c, auth);
    if (headers == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    s3_transfer t = {.s3 = s3, .call = c, .req = req, .resp = resp, .err = err};
    int rc = -1;
    CURLcode cc = set_options(s3, req, c, headers, &t);
    if (cc != CURLE_OK) {
        wk_error_set(err, WK_ERR_INTERNAL, "%s: could not set up libcurl: %s", c->what,
                     wk_curl.easy_strerror(cc));
        goto out;
    }
    cc = wk_curl.easy_perform(s3->curl);
    wk_curl.easy_getinfo(s3->curl, CURLINFO_RESPONSE_CODE, &resp->status);
    bool success = resp->status >= 200 && resp->status < 300;
    if (t.body_failed) {
        if (err->code == WK_ERR_NONE)
            wk_error_set(err, WK_ERR_IO, "%s: the body could not be taken", c->what);
    } else if (t.nomem) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    } else if (t.range_ignored) {
        wk_error_set(err, WK_ERR_CORRUPT,
                     "%s: the server answered HTTP %ld, not the asked part from byte %llu", c->what,
                     resp->status, (unsigned long long)c->range_start);
    } else if (t.too_large) {
        wk_error_set(err, WK_ERR_IO, "%s: the response is larger than %d bytes", c->what,
                     S3_BODY_MAX);
    } else if (cc != CURLE_OK) {
        curl_error(s3, c, cc, transient, reason, reason_size, err);
    } else if (!success) {
        parse_error_code(resp);
        status_text(resp, reason, reason_size);
        wk_s3_status_error(resp, c->what, err);
        *transient = err->code == WK_ERR_TRANSIENT;
    } else if (resp->body == NULL && req->on_body == NULL && !collect(&t, "", 0, true)) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    } else {
        rc = 0;
    }
out:
    wk_curl.easy_reset(s3->curl); /* nothing of this attempt (headers, t) stays referenced */
    wk_curl.slist_free_all(headers);
    return rc;
}

/* How long to wait before retry number n (0-based): full jitter over a doubling cap. */
static int64_t backoff_ms(int n)
{
    uint32_t cap = S3_BACKOFF_FIRST_MS;
    for (int i = 0; i < n && cap < S3_BACKOFF_CAP_MS; i++)
        cap *= 2;
    if (cap > S3_BACKOFF_CAP_MS)
        cap = S3_BACKOFF_CAP_MS;
    return (int64_t)randombytes_uniform(cap + 1);
}

int wk_s3_send(wk_s3 *s3, const wk_s3_request *req, wk_s3_response *response, wk_error *err)
{
    wk_error local;
    if (err == NULL)
        err = &local;
    memset(response, 0, sizeof(*response));
    s3_call call;
    memset(&call, 0, sizeof(call));
    int rc = -1;
    if (call_prepare(s3, req, &call, err) != 0)
        goto out;
    int64_t start = now_ms();
    int64_t deadline = start + s3->retry_timeout_ms;
    int attempts = 0;
    for (;;) {
        bool transient = false;
        char reason[CURL_ERROR_SIZE + 64] = "";
        attempts++;
        rc = attempt(s3, req, &call, response, &transient, reason, sizeof(reason), err);
        if (rc == 0 || !transient)
            break;
        if (response->delivered > 0) {
            wk_error_detail(err, "%llu bytes of the response had been received.",
                            (unsigned long long)response->delivered);
            break;
        }
        int64_t remaining = deadline - now_ms();
        if (remaining <= 0)
            break;
        int64_t wait = backoff_ms(attempts - 1);
        if (wait > remaining)
            wait = remaining;
        wk_notice(WK_LOG_INFO, "retrying %s of \"s3://%s/%s\" in %.1f s: %s", req->method,
                  s3->bucket, req->key != NULL ? req->key : "", (double)wait / 1000.0, reason);
        sleep_ms(wait);
        wk_s3_response_free(response);
    }
    if (rc != 0 && attempts > 1 && err->code == WK_ERR_TRANSIENT && response->delivered == 0)
        wk_error_detail(err, "Gave up after %d attempts in %.1f s.", attempts,
                        (double)(now_ms() - start) / 1000.0);
out:
    call_free(&call);
    return rc;
}

/* ---- failures in the caller's terms ---------------------------------------------- */

int wk_s3_error_context(wk_error *err, const char *what)
{
    if (strncmp(err->message, "could not ", 10) == 0 && strstr(err->message, "s3://") != NULL)
        return -1;
    return wk_error_prefix(err, "%s", what);
}

int wk_s3_send_failed(const wk_s3_response *resp, const char *what, wk_error *err)
{
    if (resp->status >= 300) {
        /* Keep wk_s3_send's detail ("Gave up after <n> attempts..."): the new message
         * only names what failed in our terms. */
        char detail[sizeof(err->detail)];
        snprintf(detail, sizeof(detail), "%s", err->detail);
        wk_s3_status_error(resp, what, err);
        if (detail[0] != '\0' && err->detail[0] == '\0')
            wk_error_detail(err, "%s", detail);
        return -1;
    }
    return wk_s3_error_context(err, what);
}

int wk_s3_call(wk_s3 *c, const wk_s3_request *req, wk_s3_response *resp, const char *what,
               wk_error *err)
{
    if (wk_s3_send(c, req, resp, err) == 0)
        return 0;
    return wk_s3_send_failed(resp, what, err);
}
