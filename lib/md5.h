/* md5: RFC 1321 MD5, which S3 uses for Content-MD5 (multi-object delete) and multipart
 * ETags; pure functions, foundations layer. Not for anything that must resist tampering. */
#ifndef WK_MD5_H
#define WK_MD5_H

#include <stddef.h>
#include <stdint.h>

#define WK_MD5_BYTES 16

typedef struct wk_md5_ctx {
    uint32_t s[4];
    uint64_t len;
    uint8_t buf[64];
} wk_md5_ctx;

void wk_md5_init(wk_md5_ctx *c);
void wk_md5_update(wk_md5_ctx *c, const void *data, size_t len);
void wk_md5_final(wk_md5_ctx *c, uint8_t out[WK_MD5_BYTES]);

/* The digest of len bytes at data, in one call. */
void wk_md5(const void *data, size_t len, uint8_t out[WK_MD5_BYTES]);

#endif
