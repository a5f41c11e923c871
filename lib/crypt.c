/* crypt: repository key files (guarded memory, never in messages) and the encrypt /
 * decrypt stages: secretstream in 64 KiB chunks behind a 41-byte walkeep header. */
#include "crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "file.h"

/* The object format, byte by byte, is in docs/format.md ("Encryption"). */
#define MAGIC "WKEEPENC"
#define MAGIC_LEN 8
#define FORMAT_VERSION 1
/* Version 2: the object's place in the repository is part of every chunk's additional
 * data, so an object moved to another name fails authentication. */
#define FORMAT_BOUND 2
/* magic + version + key id: authenticated as additional data of every chunk */
#define AD_LEN (MAGIC_LEN + 1 + WK_KEY_ID_BYTES)
#define SS_HEADER_LEN crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define HEADER_LEN (AD_LEN + SS_HEADER_LEN)
#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
/* Plaintext bytes in every chunk but the last, which holds 0..CHUNK-1. */
#define CHUNK 65536
#define CT_CHUNK (CHUNK + ABYTES)

#define KEY_HEX_LEN (2 * WK_KEY_BYTES)
#define KEY_ID_CONTEXT "walkeep key id v1"

struct wk_key {
    uint8_t key[WK_KEY_BYTES];
    uint8_t id[WK_KEY_ID_BYTES];
};

typedef crypto_secretstream_xchacha20poly1305_state ss_state;

int wk_crypt_init(wk_error *err)
{
    /* sodium_init is itself thread-safe and returns 1 when already done. */
    if (sodium_init() < 0)
        return wk_error_set(err, WK_ERR_INTERNAL, "could not initialise libsodium");
    return 0;
}

static void id_hex(const uint8_t id[WK_KEY_ID_BYTES], char out[2 * WK_KEY_ID_BYTES + 1])
{
    sodium_bin2hex(out, 2 * WK_KEY_ID_BYTES + 1, id, WK_KEY_ID_BYTES);
}

/* The key's id from its bytes (docs/format.md, "Key id"). */
static void set_id(wk_key *key)
{
    uint8_t id[crypto_generichash_BYTES_MIN];
    crypto_generichash(id, sizeof(id), (const unsigned char *)KEY_ID_CONTEXT,
                       strlen(KEY_ID_CONTEXT), key->key, sizeof(key->key));
    memcpy(key->id, id, WK_KEY_ID_BYTES);
}

/* ---- key files ------------------------------------------------------------------ */

int wk_key_generate_file(const char *path, wk_error *err)
{
    uint8_t key[WK_KEY_BYTES];
    char hex[KEY_HEX_LEN + 2]; /* digits, newline, and sodium_bin2hex's NUL */

    if (wk_crypt_init(err) != 0)
        return -1;
    randombytes_buf(key, sizeof(key));
    sodium_bin2hex(hex, KEY_HEX_LEN + 1, key, sizeof(key));
    hex[KEY_HEX_LEN] = '\n';
    /* Written whole or not at all, mode 0600, never over an existing name (not even a
     * dangling symbolic link). */
    int rc = wk_file_write(path, hex, KEY_HEX_LEN + 1, 0600, WK_FILE_NOREPLACE, err);
    if (rc != 0 && err->code == WK_ERR_EXISTS)
        wk_error_set(err, WK_ERR_EXISTS, "key file \"%s\" already exists", path);
    else if (rc != 0)
        wk_error_prefix(err, "key file \"%s\"", path);
    sodium_memzero(key, sizeof(key));
    sodium_memzero(hex, sizeof(hex));
    return rc;
}

int wk_key_load(const char *path, wk_key **out, wk_error *err)
{
    /* Room for one byte more than the longest valid content, to tell "too long". */
    char buf[KEY_HEX_LEN + 2];
    size_t len = 0;
    size_t bin_len = 0;
    const char *hex_end = NULL;
    wk_key *key = NULL;
    struct stat st;
    int fd = -1;
    int rc = -1;

    if (wk_crypt_init(err) != 0)
        return -1;
    /* A symbolic link is followed; what counts is the file it leads to, checked on
     * the open descriptor. O_NONBLOCK keeps a FIFO from blocking us. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        wk_error_sys(err, WK_ERR_KEY, errno, "could not open key file \"%s\"", path);
        wk_file_explain_denied(err, path, true);
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        wk_error_sys(err, WK_ERR_KEY, errno, "could not stat key file \"%s\"", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        wk_error_set(err, WK_ERR_KEY, "key file \"%s\" is not a regular file", path);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        wk_error_set(err, WK_ERR_KEY, "key file \"%s\" has group or world access", path);
        wk_error_detail(err, "Its mode is %04o; a key file must be readable by its owner only.",
                        (unsigned)(st.st_mode & 07777));
        wk_error_hint(err, "Run \"chmod 0600 %s\".", path);
        goto out;
    }
    while (len < sizeof(buf)) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            wk_error_sys(err, WK_ERR_KEY, errno, "could not read key file \"%s\"", path);
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len == KEY_HEX_LEN + 1 && buf[KEY_HEX_LEN] == '\n')
        len = KEY_HEX_LEN;
    key = sodium_malloc(sizeof(*key));
    if (key == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Constant-time decoding; accepts upper and lower case. Nothing of the content
     * goes into the message. */
    if (len != KEY_HEX_LEN ||
        sodium_hex2bin(key->key, sizeof(key->key), buf, len, NULL, &bin_len, &hex_end) != 0 ||
        bin_len != WK_KEY_BYTES || hex_end != buf + KEY_HEX_LEN) {
        wk_error_set(err, WK_ERR_KEY, "invalid key file \"%s\"", path);
        wk_error_detail(err, "A key file holds exactly 64 hexadecimal digits and a newline.");
        wk_error_hint(err, "Create one with \"walkeep keygen\".");
        goto out;
    }
    set_id(key);
    if (sodium_mprotect_readonly(key) != 0) {
        wk_error_sys(err, WK_ERR_INTERNAL, errno, "could not protect key memory");
        goto out;
    }
    *out = key;
    key = NULL;
    rc = 0;
out:
    sodium_memzero(buf, sizeof(buf));
    wk_key_free(key);
    if (fd >= 0)
        close(fd);
    return rc;
}

void wk_key_free(wk_key *key)
{
    /* sodium_free makes the pages writable again, wipes and unmaps them. */
    if (key != NULL)
        sodium_free(key);
}

void wk_key_id(const wk_key *key, uint8_t id[WK_KEY_ID_BYTES])
{
    memcpy(id, key->id, WK_KEY_ID_BYTES);
}

static void make_header_ad(const wk_key *key, uint8_t version, uint8_t ad[AD_LEN])
{
    memcpy(ad, MAGIC, MAGIC_LEN);
    ad[MAGIC_LEN] = version;
    memcpy(ad + MAGIC_LEN + 1, key->id, WK_KEY_ID_BYTES);
}

/* The additional data of every chunk: the header's first AD_LEN bytes and, in version 2,
 * the object's place in the repository. malloc'd into *ad. */
static int chunk_ad(const uint8_t header[AD_LEN], const char *place, uint8_t **ad, size_t *len,
                    wk_error *err)
{
    size_t place_len = header[MAGIC_LEN] == FORMAT_BOUND ? strlen(place) : 0;
    *ad = malloc(AD_LEN + place_len);
    if (*ad == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    memcpy(*ad, header, AD_LEN);
    if (place_len > 0)
        memcpy(*ad + AD_LEN, place, place_len);
    *len = AD_LEN + place_len;
    return 0;
}

/* ---- encrypt -------------------------------------------------------------------- */

/* Full chunks go out as soon as they fill (TAG_MESSAGE); finish pushes what is left,
 * 0..CHUNK-1 bytes, as the one TAG_FINAL chunk. */
typedef struct encrypt_stage {
    wk_stage base;
    ss_state *state; /* sodium_malloc'd: it holds a subkey */
    uint8_t header[HEADER_LEN];
    bool header_sent;
    uint8_t *plain; /* CHUNK bytes */
    size_t fill;
    uint8_t *cipher; /* CT_CHUNK bytes */
    uint8_t *ad;     /* additional data of every chunk (chunk_ad) */
    size_t ad_len;
} encrypt_stage;

static int encrypt_send_header(encrypt_stage *es, wk_error *err)
{
    if (es->header_sent)
        return 0;
    if (wk_stage_write(es->base.next, es->header, HEADER_LEN, err) != 0)
        return -1;
    es->header_sent = true;
    return 0;
}

static int encrypt_push(encrypt_stage *es, unsigned char tag, wk_error *err)
{
    unsigned long long clen = 0;
    if (crypto_secretstream_xchacha20poly1305_push(es->state, es->cipher, &clen, es->plain,
                                                   es->fill, es->ad, es->ad_len, tag) != 0)
        return wk_error_set(err, WK_ERR_INTERNAL, "could not encrypt");
    es->fill = 0;
    return wk_stage_write(es->base.next, es->cipher, (size_t)clen, err);
}

static int encrypt_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    encrypt_stage *es = (encrypt_stage *)stage;
    const uint8_t *p = buf;
    if (encrypt_send_header(es, err) != 0)
        return -1;
    while (len > 0) {
        size_t n = CHUNK - es->fill;
        if (n > len)
            n = len;
        memcpy(es->plain + es->fill, p, n);
        es->fill += n;
        p += n;
        len -= n;
        if (es->fill == CHUNK &&
            encrypt_push(es, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, err) != 0)
            return -1;
    }
    return 0;
}

static int encrypt_finish(wk_stage *stage, wk_error *err)
{
    encrypt_stage *es = (encrypt_stage *)stage;
    if (encrypt_send_header(es, err) != 0)
        return -1;
    if (encrypt_push(es, crypto_secretstream_xchacha20poly1305_TAG_FINAL, err) != 0)
        return -1;
    return wk_stage_finish(stage->next, err);
}

static void encrypt_free(wk_stage *stage)
{
    encrypt_stage *es = (encrypt_stage *)stage;
    wk_stage_free(stage->next);
    if (es->state != NULL)
        sodium_free(es->state);
    if (es->plain != NULL) {
        sodium_memzero(es->plain, CHUNK);
        free(es->plain);
    }
    free(es->cipher);
    free(es->ad);
    free(es);
}

static const wk_stage_ops encrypt_ops = {encrypt_write, encrypt_finish, encrypt_free};

static wk_stage *encrypt_new(wk_stage *next, const wk_key *key, const char *place, wk_error *err)
{
    encrypt_stage *es = NULL;
    if (wk_crypt_init(err) != 0) {
        wk_stage_free(next);
        return NULL;
    }
    es = calloc(1, sizeof(*es));
    if (es == NULL) {
        wk_stage_free(next);
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    es->base.ops = &encrypt_ops;
    es->base.next = next;
    es->state = sodium_malloc(sizeof(*es->state));
    es->plain = malloc(CHUNK);
    es->cipher = malloc(CT_CHUNK);
    if (es->state == NULL || es->plain == NULL || es->cipher == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto fail;
    }
    make_header_ad(key, place != NULL ? FORMAT_BOUND : FORMAT_VERSION, es->header);
    if (chunk_ad(es->header, place, &es->ad, &es->ad_len, err) != 0)
        goto fail;
    if (crypto_secretstream_xchacha20poly1305_init_push(es->state, es->header + AD_LEN, key->key) !=
        0) {
        wk_error_set(err, WK_ERR_INTERNAL, "could not start encryption");
        goto fail;
    }
    return &es->base;
fail:
    encrypt_free(&es->base);
    return NULL;
}

wk_stage *wk_crypt_encrypt_new(wk_stage *next, const wk_key *key, wk_error *err)
{
    return encrypt_new(next, key, NULL, err);
}

wk_stage *wk_crypt_encrypt_bound_new(wk_stage *next, const wk_key *key, const char *place,
                                     wk_error *err)
{
    return encrypt_new(next, key, place, err);
}

/* ---- decrypt -------------------------------------------------------------------- */

/* Collects the header, checking each field as soon as it is there, then decrypts
 * every full CT_CHUNK (which must be TAG_MESSAGE) as it completes; at finish what is
 * left must be one shorter chunk carrying TAG_FINAL. */
typedef struct decrypt_stage {
    wk_stage base;
    const wk_key *key;       /* the object's key, once its header named it */
    wk_key_lookup_fn lookup; /* NULL: only key itself is accepted */
    void *lookup_arg;
    char *place; /* NULL: version 2 objects are refused */
    uint8_t *ad; /* additional data of every chunk, once the header is in */
    size_t ad_len;
    ss_state *state; /* sodium_malloc'd */
    uint8_t header[HEADER_LEN];
    size_t header_fill;
    uint8_t *cipher; /* CT_CHUNK bytes */
    size_t fill;
    uint8_t *plain; /* CHUNK bytes */
} decrypt_stage;

static int corrupt_truncated(wk_error *err)
{
    return wk_error_set(err, WK_ERR_CORRUPT, "encrypted object is truncated");
}

/* Checks the header fields present so far; starts decryption once all are there. */
static int decrypt_check_header(decrypt_stage *ds, wk_error *err)
{
    size_t have = ds->header_fill;
    size_t n = have < MAGIC_LEN ? have : MAGIC_LEN;
    if (memcmp(ds->header, MAGIC, n) != 0)
        return wk_error_set(err, WK_ERR_CORRUPT, "not a walkeep encrypted object");
    if (have > MAGIC_LEN && ds->header[MAGIC_LEN] != FORMAT_VERSION &&
        ds->header[MAGIC_LEN] != FORMAT_BOUND)
        return wk_error_set(err, WK_ERR_CORRUPT, "unsupported encryption format version %u",
                            (unsigned)ds->header[MAGIC_LEN]);
    if (have < AD_LEN)
        return 0;
    const uint8_t *id = ds->header + MAGIC_LEN + 1;
    if (ds->header[MAGIC_LEN] == FORMAT_BOUND && ds->place == NULL)
        return wk_error_set(err, WK_ERR_INTERNAL,
                            "a bound encrypted object read without its place");
    if (ds->lookup != NULL) {
        if (ds->lookup(ds->lookup_arg, ds->header[MAGIC_LEN], id, &ds->key, err) != 0)
            return -1;
    } else if (sodium_memcmp(id, ds->key->id, WK_KEY_ID_BYTES) != 0) {
        char theirs[2 * WK_KEY_ID_BYTES + 1];
        char ours[2 * WK_KEY_ID_BYTES + 1];
        id_hex(id, theirs);
        id_hex(ds->key->id, ours);
        wk_error_set(err, WK_ERR_KEY,
                     "object was encrypted with key %s, not with the configured key %s", theirs,
                     ours);
        wk_error_hint(err, "Set encrypt_key_file to the key this repository was written with.");
        return -1;
    }
    if (ds->ad == NULL && chunk_ad(ds->header, ds->place, &ds->ad, &ds->ad_len, err) != 0)
        return -1;
    if (have < HEADER_LEN)
        return 0;
    if (crypto_secretstream_xchacha20poly1305_init_pull(ds->state, ds->header + AD_LEN,
                                                        ds->key->key) != 0)
        return wk_error_set(err, WK_ERR_CORRUPT, "invalid encryption header");
    return 0;
}

/* Decrypts the fill bytes buffered as one chunk; it must carry want_tag. */
static int decrypt_pull(decrypt_stage *ds, unsigned char want_tag, wk_error *err)
{
    unsigned long long mlen = 0;
    unsigned char tag = 0;
    if (ds->fill < ABYTES)
        return corrupt_truncated(err);
    if (crypto_secretstream_xchacha20poly1305_pull(ds->state, ds->plain, &mlen, &tag, ds->cipher,
                                                   ds->fill, ds->ad, ds->ad_len) != 0) {
        if (ds->header[MAGIC_LEN] == FORMAT_BOUND)
            return wk_error_set(err, WK_ERR_CORRUPT,
                                "encrypted data failed authentication (corrupt or tampered, or "
                                "moved from another place than \"%s\")",
                                ds->place);
        return wk_error_set(err, WK_ERR_CORRUPT,
                            "encrypted data failed authentication (corrupt or tampered)");
    }
    ds->fill = 0;
    if (tag != want_tag) {
        /* Authentic but misplaced: a short chunk that is not final, or a full-size one
         * that is; the writer makes neither. */
        if (tag == crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
            return corrupt_truncated(err);
        if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
            return wk_error_set(err, WK_ERR_CORRUPT,
                                "encrypted object has a final chunk of full size");
        return wk_error_set(err, WK_ERR_CORRUPT, "encrypted object has an unknown chunk tag %u",
                            (unsigned)tag);
    }
    return wk_stage_write(ds->base.next, ds->plain, (size_t)mlen, err);
}

static int decrypt_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    decrypt_stage *ds = (decrypt_stage *)stage;
    const uint8_t *p = buf;
    if (ds->header_fill < HEADER_LEN && len > 0) {
        size_t n = HEADER_LEN - ds->header_fill;
        if (n > len)
            n = len;
        memcpy(ds->header + ds->header_fill, p, n);
        ds->header_fill += n;
        p += n;
        len -= n;
        if (decrypt_check_header(ds, err) != 0)
            return -1;
    }
    while (len > 0) {
        size_t n = CT_CHUNK - ds->fill;
        if (n > len)
            n = len;
        memcpy(ds->cipher + ds->fill, p, n);
        ds->fill += n;
        p += n;
        len -= n;
        /* A full-size chunk is never the final one (that holds less than CHUNK). */
        if (ds->fill == CT_CHUNK &&
            decrypt_pull(ds, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, err) != 0)
            return -1;
    }
    return 0;
}

static int decrypt_finish(wk_stage *stage, wk_error *err)
{
    decrypt_stage *ds = (decrypt_stage *)stage;
    if (ds->header_fill < HEADER_LEN)
        return corrupt_truncated(err);
    if (decrypt_pull(ds, crypto_secretstream_xchacha20poly1305_TAG_FINAL, err) != 0)
        return -1;
    return wk_stage_finish(stage->next, err);
}

static void decrypt_free(wk_stage *stage)
{
    decrypt_stage *ds = (decrypt_stage *)stage;
    wk_stage_free(stage->next);
    if (ds->state != NULL)
        sodium_free(ds->state);
    if (ds->plain != NULL) {
        sodium_memzero(ds->plain, CHUNK);
        free(ds->plain);
    }
    free(ds->cipher);
    free(ds->ad);
    free(ds->place);
    free(ds);
}

static const wk_stage_ops decrypt_ops = {decrypt_write, decrypt_finish, decrypt_free};

static wk_stage *decrypt_new(wk_stage *next, const wk_key *key, wk_key_lookup_fn lookup,
                             void *lookup_arg, const char *place, wk_error *err)
{
    decrypt_stage *ds = NULL;
    if (wk_crypt_init(err) != 0) {
        wk_stage_free(next);
        return NULL;
    }
    ds = calloc(1, sizeof(*ds));
    if (ds == NULL) {
        wk_stage_free(next);
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ds->base.ops = &decrypt_ops;
    ds->base.next = next;
    ds->key = key;
    ds->lookup = lookup;
    ds->lookup_arg = lookup_arg;
    ds->place = place != NULL ? strdup(place) : NULL;
    ds->state = sodium_malloc(sizeof(*ds->state));
    ds->cipher = malloc(CT_CHUNK);
    ds->plain = malloc(CHUNK);
    if (ds->state == NULL || ds->cipher == NULL || ds->plain == NULL ||
        (place != NULL && ds->place == NULL)) {
        decrypt_free(&ds->base);
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return &ds->base;
}

wk_stage *wk_crypt_decrypt_new(wk_stage *next, const wk_key *key, wk_error *err)
{
    return decrypt_new(next, key, NULL, NULL, NULL, err);
}

wk_stage *wk_crypt_decrypt_bound_new(wk_stage *next, wk_key_lookup_fn lookup, void *arg,
                                     const char *place, wk_error *err)
{
    return decrypt_new(next, NULL, lookup, arg, place, err);
}

/* ---- data keys: generated, wrapped, derived ----------------------------------------- */

static wk_key *key_alloc(wk_error *err)
{
    wk_key *key = sodium_malloc(sizeof(*key));
    if (key == NULL)
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    return key;
}

/* Makes key read-only and hands it out. */
static int key_seal(wk_key *key, wk_key **out, wk_error *err)
{
    set_id(key);
    if (sodium_mprotect_readonly(key) != 0) {
        wk_key_free(key);
        return wk_error_sys(err, WK_ERR_INTERNAL, errno, "could not protect key memory");
    }
    *out = key;
    return 0;
}

int wk_key_generate(wk_key **out, wk_error *err)
{
    if (wk_crypt_init(err) != 0)
        return -1;
    wk_key *key = key_alloc(err);
    if (key == NULL)
        return -1;
    randombytes_buf(key->key, sizeof(key->key));
    return key_seal(key, out, err);
}

int wk_key_wrap(const wk_key *wrapper, const wk_key *key, const uint8_t *ad, size_t ad_len,
                uint8_t out[WK_KEY_WRAPPED_BYTES], wk_error *err)
{
    unsigned long long clen = 0;
    if (wk_crypt_init(err) != 0)
        return -1;
    randombytes_buf(out, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(
            out + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen, key->key, WK_KEY_BYTES, ad,
            ad_len, NULL, out, wrapper->key) != 0 ||
        clen != WK_KEY_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)
        return wk_error_set(err, WK_ERR_INTERNAL, "could not wrap a key");
    return 0;
}

int wk_key_unwrap(const wk_key *wrapper, const uint8_t in[WK_KEY_WRAPPED_BYTES], const uint8_t *ad,
                  size_t ad_len, wk_key **out, wk_error *err)
{
    unsigned long long mlen = 0;
    if (wk_crypt_init(err) != 0)
        return -1;
    wk_key *key = key_alloc(err);
    if (key == NULL)
        return -1;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            key->key, &mlen, NULL, in + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
            WK_KEY_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES, ad, ad_len, in,
            wrapper->key) != 0 ||
        mlen != WK_KEY_BYTES) {
        wk_key_free(key);
        return wk_error_set(err, WK_ERR_CORRUPT, "wrapped key failed authentication");
    }
    return key_seal(key, out, err);
}

int wk_key_mac(const wk_key *key, const char *context, const void *data, size_t len,
               const void *more, size_t more_len, uint8_t out[WK_MAC_BYTES])
{
    uint8_t subkey[crypto_generichash_BYTES];
    crypto_generichash_state st;
    /* A subkey per purpose: the data key itself only ever keys the stream cipher. */
    crypto_generichash(subkey, sizeof(subkey), (const unsigned char *)context, strlen(context),
                       key->key, sizeof(key->key));
    if (crypto_generichash_init(&st, subkey, sizeof(subkey), WK_MAC_BYTES) != 0)
        return -1;
    crypto_generichash_update(&st, data, len);
    if (more != NULL)
        crypto_generichash_update(&st, more, more_len);
    crypto_generichash_final(&st, out, WK_MAC_BYTES);
    sodium_memzero(subkey, sizeof(subkey));
    sodium_memzero(&st, sizeof(st));
    return 0;
}
