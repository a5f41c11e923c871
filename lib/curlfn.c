/* curlfn: libcurl, loaded with dlopen the first time an S3 repository is opened, so that
 * programs on local repositories (archive_command runs thousands of times) never load it. */
#include "curlfn.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>

wk_curl_api wk_curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_failure[256];

/* OpenSSL's one-shot digest (EVP_Digest, EVP_sha256), when libcrypto is loaded. */
static int (*evp_digest)(const void *data, size_t count, unsigned char *md, unsigned int *size,
                         const void *type, void *impl);
static const void *(*evp_sha256)(void);

/* dlsym returns an object pointer; POSIX guarantees it converts to a function pointer. */
#define RESOLVE(field, symbol)                                                                     \
    do {                                                                                           \
        void *sym = dlsym(lib, symbol);                                                            \
        if (sym == NULL) {                                                                         \
            snprintf(load_failure, sizeof(load_failure), "libcurl lacks %s", symbol);              \
            return;                                                                                \
        }                                                                                          \
        *(void **)(&wk_curl.field) = sym;                                                          \
    } while (0)

static void load(void)
{
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        snprintf(load_failure, sizeof(load_failure), "%s", dlerror());
        return;
    }
    RESOLVE(global_init, "curl_global_init");
    RESOLVE(easy_init, "curl_easy_init");
    RESOLVE(easy_setopt, "curl_easy_setopt");
    RESOLVE(easy_perform, "curl_easy_perform");
    RESOLVE(easy_getinfo, "curl_easy_getinfo");
    RESOLVE(easy_reset, "curl_easy_reset");
    RESOLVE(easy_cleanup, "curl_easy_cleanup");
    RESOLVE(easy_strerror, "curl_easy_strerror");
    RESOLVE(slist_append, "curl_slist_append");
    RESOLVE(slist_free_all, "curl_slist_free_all");
    void *crypto = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (crypto != NULL) {
        void *digest = dlsym(crypto, "EVP_Digest"), *sha256 = dlsym(crypto, "EVP_sha256");
        if (digest != NULL && sha256 != NULL) {
            *(void **)(&evp_digest) = digest;
            *(void **)(&evp_sha256) = sha256;
        }
    }
    CURLcode rc = wk_curl.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        snprintf(load_failure, sizeof(load_failure), "curl_global_init: %s",
                 wk_curl.easy_strerror(rc));
    /* The library stays loaded for the life of the process. */
}

int wk_curl_load(wk_error *err)
{
    pthread_once(&load_once, load);
    if (load_failure[0] != '\0') {
        wk_error_set(err, WK_ERR_CONFIG, "could not load libcurl for S3: %s", load_failure);
        wk_error_hint(err, "install libcurl4 (Debian: apt-get install libcurl4)");
        return -1;
    }
    return 0;
}

void wk_curl_sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int size = 0;
    if (evp_digest != NULL && evp_digest(data, len, out, &size, evp_sha256(), NULL) == 1 &&
        size == 32)
        return;
    crypto_hash_sha256(out, data, len);
}
