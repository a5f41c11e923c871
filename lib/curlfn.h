/* curlfn: libcurl, loaded with dlopen the first time an S3 repository is opened, so that
 * programs on local repositories (archive_command runs thousands of times) never load it. */
#ifndef WK_CURLFN_H
#define WK_CURLFN_H

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "error.h"

/* The libcurl functions walkeep uses; valid once wk_curl_load succeeded. */
typedef struct wk_curl_api {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *curl);
    CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
    void (*easy_reset)(CURL *curl);
    void (*easy_cleanup)(CURL *curl);
    const char *(*easy_strerror)(CURLcode code);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *text);
    void (*slist_free_all)(struct curl_slist *list);
} wk_curl_api;

extern wk_curl_api wk_curl;

/* Loads libcurl and runs curl_global_init, once per process (thread-safe). Returns 0,
 * or -1 with WK_ERR_CONFIG when libcurl is missing. */
int wk_curl_load(wk_error *err);

/* SHA-256 of len bytes, for request payloads: OpenSSL's (the libcrypto libcurl brought
 * in, which uses the CPU's SHA instructions: about 5x libsodium's here) when it is
 * there, else libsodium's. Call after wk_curl_load succeeded. */
void wk_curl_sha256(const void *data, size_t len, unsigned char out[32]);

#endif
