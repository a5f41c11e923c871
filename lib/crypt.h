/* crypt: the repository key (in libsodium guarded memory) and the encryption stages
 * (crypto_secretstream_xchacha20poly1305 behind a short walkeep header). */
#ifndef WK_CRYPT_H
#define WK_CRYPT_H

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

#endif
