/* s3: a small S3 client over libcurl: addressing, AWS Signature Version 4 (computed here,
 * not by libcurl), bounded retries with backoff and jitter, and error messages that say what to fix. */
#ifndef WK_S3_H
#define WK_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Where and how to reach one bucket. Strings are borrowed for the call that takes them;
 * a client keeps its own copies. */
typedef struct wk_s3_options {
    const char *endpoint;   /* "https://host[:port]" or "http://host[:port]"; NULL:
                              * https://s3.<region>.amazonaws.com */
    const char *region;     /* NULL: "us-east-1" */
    const char *bucket;     /* required */
    bool host_style;        /* true: https://bucket.host/key; false: https://host/bucket/key */
    const char *access_key; /* required; never logged */
    const char *secret_key; /* required; never logged */
    const char *ca_file;    /* NULL: the system's CA store; TLS is always verified */
    int retry_timeout_ms;   /* how long transient failures are retried; <= 0: not at all */
    int stall_timeout_ms;   /* a transfer moving less than 1 byte/s this long fails as
                              * transient (it also caps the 10 s connect timeout); <= 0:
                              * 30 s */
} wk_s3_options;

/* One connection to the bucket (a libcurl easy handle, kept alive between requests). A
 * client is used by one thread at a time; threads that send in parallel open one each. */
typedef struct wk_s3 wk_s3;

/* A query parameter, unencoded; wk_s3_send sorts and percent-encodes them. A valueless
 * sub-resource (uploads, delete) has value "". */
typedef struct wk_s3_param {
    const char *name;
    const char *value;
} wk_s3_param;

/* Receives a 2xx response body as it arrives: return 0 to go on, -1 (err filled) to stop. */
typedef int (*wk_s3_body_cb)(const void *data, size_t len, void *arg, wk_error *err);

typedef struct wk_s3_request {
    const char *method;        /* "GET", "HEAD", "PUT", "POST", "DELETE" */
    const char *key;           /* object key, unencoded; NULL or "" for the bucket */
    const wk_s3_param *params; /* any order; may be NULL */
    size_t param_count;
    const char *const *headers; /* extra "Name: value" lines (Range, If-None-Match,
                                  * Content-MD5, Content-Type...), NULL-terminated; may be NULL */
    const void *body;           /* the payload, whose SHA-256 is signed; may be NULL */
    size_t body_len;
    wk_s3_body_cb on_body; /* NULL: a 2xx body is collected into response.body */
    void *on_body_arg;
} wk_s3_request;

typedef struct wk_s3_response {
    long status; /* the HTTP status of the last attempt; 0 when none came */
    char *body;  /* collected body, NUL-terminated (error bodies too, and
                                * 2xx bodies when on_body is NULL); at most 1 MiB */
    size_t body_len;
    char etag[80]; /* the ETag header as sent, quotes included; "" if none */
    bool has_length;
    uint64_t content_length; /* the Content-Length header, when has_length */
    char error_code[64];     /* <Code> of an XML error body ("NoSuchKey"); "" if none */
    uint64_t delivered;      /* bytes passed to on_body */
} wk_s3_response;

/* Opens a client. Checks the options (a missing key or bucket, an endpoint that is not
 * http(s)://host[:port], an unreadable ca_file are WK_ERR_CONFIG); sends nothing. */
int wk_s3_open(const wk_s3_options *opt, wk_s3 **out, wk_error *err);
/* Another client for the same bucket, for a parallel sender. */
int wk_s3_clone(const wk_s3 *s3, wk_s3 **out, wk_error *err);
/* Accepts NULL. Wipes the secret from memory. */
void wk_s3_free(wk_s3 *s3);

/* Sends one signed request. Transient failures (connection refused or reset, timeouts,
 * a stalled transfer, HTTP 500, 502, 503, 504, SlowDown, RequestTimeout, InternalError)
 * are retried with exponential backoff and full jitter until retry_timeout_ms is spent,
 * but never once on_body has received bytes: then the caller decides (a GET resumes with
 * a Range from response.delivered). A request with "Range: bytes=<n>-" passes nothing to
 * on_body unless the answer is a 206 whose Content-Range starts at n (else WK_ERR_CORRUPT).
 * Every retry is logged at level info.
 * Returns 0 for a 2xx answer. Otherwise -1 with *response filled as far as it got and err
 * set: WK_ERR_TRANSIENT when transient failures outlasted the retries (or came after body
 * bytes); for an HTTP error, the code and message wk_s3_status_error gives. */
int wk_s3_send(wk_s3 *s3, const wk_s3_request *req, wk_s3_response *response, wk_error *err);
/* Frees what a response holds and zeroes it; accepts a zeroed response. */
void wk_s3_response_free(wk_s3_response *response);

/* Turns an HTTP error answer into an error record for "what" (e.g. "could not read
 * \"s3://b/p/k\""): 404 NoSuchKey, or 404 to a HEAD, is WK_ERR_NOTFOUND; 404 NoSuchBucket
 * is WK_ERR_CONFIG naming the bucket; 403 InvalidAccessKeyId / SignatureDoesNotMatch /
 * AccessDenied are WK_ERR_CONFIG with a hint naming s3_access_key / s3_secret_key or the
 * bucket policy; RequestTimeTooSkewed is WK_ERR_CONFIG with a hint about the clock; 412
 * PreconditionFailed is WK_ERR_EXISTS; the transient statuses are WK_ERR_TRANSIENT;
 * anything else WK_ERR_IO with status and code. Returns -1. */
int wk_s3_status_error(const wk_s3_response *response, const char *what, wk_error *err);

/* Percent-encodes text as SigV4 wants: every byte but A-Z a-z 0-9 - _ . ~ (and '/' when
 * keep_slash) as %XX (upper case). Returns the length written (out gets a NUL), or -1
 * when size is too small. */
int wk_s3_uri_encode(const char *text, bool keep_slash, char *out, size_t size);

/* The SigV4 "Authorization" header value for a request, exposed for the unit tests'
 * published test vectors. canonical_query is already sorted and encoded; headers are
 * "name:value" lines, lower-case names, sorted, that are all signed; amz_date is
 * "YYYYMMDDTHHMMSSZ". Writes into out (size bytes); -1 when it does not fit. */
int wk_s3_authorization(const char *access_key, const char *secret_key, const char *region,
                        const char *method, const char *canonical_uri, const char *canonical_query,
                        const char *const *headers, size_t header_count,
                        const char *payload_sha256_hex, const char *amz_date, char *out,
                        size_t size);

/* Puts what ("could not store \"s3://b/k\"") in front of err's message, unless the
 * message already says what failed on which object (as most of wk_s3_send's own messages
 * do). Returns -1. */
int wk_s3_error_context(wk_error *err, const char *what);

/* Turns a failed wk_s3_send into an error about what: an HTTP answer through
 * wk_s3_status_error (wk_s3_send's detail kept), anything else (network, a callback)
 * keeps its message behind what. Returns -1. */
int wk_s3_send_failed(const wk_s3_response *response, const char *what, wk_error *err);

/* wk_s3_send, with a failure said in terms of what (wk_s3_send_failed). */
int wk_s3_call(wk_s3 *s3, const wk_s3_request *req, wk_s3_response *response, const char *what,
               wk_error *err);

#endif
