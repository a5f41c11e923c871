/* crypt: the repository key (in libsodium guarded memory) and the encryption stages
 * (crypto_secretstream_xchacha20poly1305 behind a short walkeep header). */
#ifndef WK_CRYPT_H
#define WK_CRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "stream.h"

#define WK_KEY_BYTES 32
#define WK_KEY_ID_BYTES 8

typedef struct wk_key wk_key;

/* Initialises libsodium once; safe to call many times. */
int wk_crypt_init(wk_error *err);

/* Creates a new key file at path, mode 0600, holding 64 hex digits and a newline: written
 * whole and fsync'd under a hidden temporary name beside it, then linked into place, so
 * the name never shows a partial key. An existing name (a dangling symbolic link too) is
 * WK_ERR_EXISTS and is not touched. */
int wk_key_generate_file(const char *path, wk_error *err);

/* Loads a key file. Refuses (WK_ERR_KEY) a file group or others can read or write,
 * one that is not a regular file, or one not holding exactly 64 hex digits (and
 * optional trailing newline). The key lives in sodium_malloc'd, read-only memory. */
int wk_key_load(const char *path, wk_key **out, wk_error *err);

/* Wipes and frees the key; accepts NULL. */
void wk_key_free(wk_key *key);

/* The key's public identifier: the first 8 bytes of keyed BLAKE2b over a fixed
 * context; it identifies the key without revealing it. */
void wk_key_id(const wk_key *key, uint8_t id[WK_KEY_ID_BYTES]);

/* Encrypts everything written and passes the object bytes to next: header (see
 * docs/format.md), then 64 KiB plaintext chunks, the last tagged FINAL. Takes
 * ownership of next; the key must outlive the stage. */
wk_stage *wk_crypt_encrypt_new(wk_stage *next, const wk_key *key, wk_error *err);

/* The reverse. WK_ERR_KEY when the header names another key; WK_ERR_CORRUPT on a
 * bad magic or version, a chunk that fails authentication, data after the FINAL
 * chunk, or (at finish) a stream that ended before it. */
wk_stage *wk_crypt_decrypt_new(wk_stage *next, const wk_key *key, wk_error *err);

/* ---- objects bound to their place, keys found by id ------------------------------- */

/* Finds the key an encrypted object's header (of format version 1 or 2) names: *key (owned by the lookup's owner,
 * valid while the stage lives), or -1 with WK_ERR_KEY when none of the keys at hand is it. */
typedef int (*wk_key_lookup_fn)(void *arg, int version, const uint8_t id[WK_KEY_ID_BYTES],
                                const wk_key **key, wk_error *err);

/* As wk_crypt_encrypt_new, in format version 2: the object's place in the repository
 * (place, e.g. "wal/000000010000000000000005") is authenticated with every chunk, so the
 * object decrypts only where it was written (docs/format.md, "Encrypted object"). */
wk_stage *wk_crypt_encrypt_bound_new(wk_stage *next, const wk_key *key, const char *place,
                                     wk_error *err);

/* Decrypts version 1 and version 2 objects: the key comes from lookup by the header's key id;
 * a version 2 object must have been written for place, or it fails authentication
 * (WK_ERR_CORRUPT naming the place). */
wk_stage *wk_crypt_decrypt_bound_new(wk_stage *next, wk_key_lookup_fn lookup, void *arg,
                                     const char *place, wk_error *err);

/* A new random key (a data key), in guarded memory. */
int wk_key_generate(wk_key **out, wk_error *err);

/* A key wrapped by another (XChaCha20-Poly1305, random nonce first): 24 + 32 + 16 bytes. */
#define WK_KEY_WRAPPED_BYTES 72

/* Wraps key with wrapper, ad authenticated with it. */
int wk_key_wrap(const wk_key *wrapper, const wk_key *key, const uint8_t *ad, size_t ad_len,
                uint8_t out[WK_KEY_WRAPPED_BYTES], wk_error *err);

/* Unwraps what wk_key_wrap made with the same wrapper and ad; WK_ERR_CORRUPT otherwise. */
int wk_key_unwrap(const wk_key *wrapper, const uint8_t in[WK_KEY_WRAPPED_BYTES], const uint8_t *ad,
                  size_t ad_len, wk_key **out, wk_error *err);

#define WK_MAC_BYTES 32

/* A MAC of data (and more, may be NULL) under a subkey of key for context (a fixed string
 * naming the purpose): BLAKE2b-256 keyed with BLAKE2b-256(key, context). */
int wk_key_mac(const wk_key *key, const char *context, const void *data, size_t len,
               const void *more, size_t more_len, uint8_t out[WK_MAC_BYTES]);

#endif
