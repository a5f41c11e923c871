/* keyring: the data keys of an encrypted repository, each wrapped by a repository key
 * under keys/. Layer 5 (repository). The format is in docs/format.md ("Key ring"). */
#include "keyring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define ENTRY_MAGIC "WKEEPKEY"
#define ENTRY_MAGIC_LEN 8
#define ENTRY_VERSION 1
/* magic, version, sequence (4 bytes, big-endian), key id, wrapper id: the wrap's AD */
#define ENTRY_AD_LEN (ENTRY_MAGIC_LEN + 1 + 4 + 2 * WK_KEY_ID_BYTES)
#define ENTRY_LEN (ENTRY_AD_LEN + WK_KEY_WRAPPED_BYTES)
/* "keys/" 8 digits "-" 16 hex "-" 16 hex */
#define ENTRY_NAME_LEN (8 + 1 + 16 + 1 + 16)
#define ENTRY_PATH_MAX 64

typedef struct ring_entry {
    uint32_t seq; /* 0: a repository key (for objects written before the ring) */
    uint8_t id[WK_KEY_ID_BYTES];
    uint8_t wrapper[WK_KEY_ID_BYTES];
    char path[ENTRY_PATH_MAX];
    wk_key *key; /* unwrapped, once needed (only for entries the configured key wraps) */
} ring_entry;

struct wk_keyring {
    wk_storage *st;
    const wk_key *master;
    uint8_t master_id[WK_KEY_ID_BYTES];
    bool loaded;
    ring_entry *entries;
    size_t count, cap;
    bool nomem;
};

static void hex_of(const uint8_t id[WK_KEY_ID_BYTES], char out[2 * WK_KEY_ID_BYTES + 1])
{
    sodium_bin2hex(out, 2 * WK_KEY_ID_BYTES + 1, id, WK_KEY_ID_BYTES);
}

static int parse_hex_id(const char *hex, uint8_t id[WK_KEY_ID_BYTES])
{
    size_t len = 0;
    if (strspn(hex, "0123456789abcdef") < 2 * WK_KEY_ID_BYTES)
        return -1;
    return sodium_hex2bin(id, WK_KEY_ID_BYTES, hex, 2 * WK_KEY_ID_BYTES, NULL, &len, NULL) == 0 &&
                   len == WK_KEY_ID_BYTES
               ? 0
               : -1;
}

int wk_keyring_open(wk_storage *st, const wk_key *master, wk_keyring **out, wk_error *err)
{
    wk_keyring *ring = calloc(1, sizeof(*ring));
    if (ring == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    ring->st = st;
    ring->master = master;
    wk_key_id(master, ring->master_id);
    *out = ring;
    return 0;
}

void wk_keyring_free(wk_keyring *ring)
{
    if (ring == NULL)
        return;
    for (size_t i = 0; i < ring->count; i++)
        wk_key_free(ring->entries[i].key);
    free(ring->entries);
    free(ring);
}

static ring_entry *add_entry(wk_keyring *ring)
{
    if (ring->count == ring->cap) {
        size_t cap = ring->cap > 0 ? ring->cap * 2 : 8;
        ring_entry *grown = realloc(ring->entries, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        ring->entries = grown;
        ring->cap = cap;
    }
    ring_entry *e = &ring->entries[ring->count++];
    memset(e, 0, sizeof(*e));
    return e;
}

/* "<8 digits>-<16 hex>-<16 hex>"; anything else under keys/ is not an entry. */
static int collect_entry(const char *name, bool is_dir, uint64_t size, void *arg)
{
    wk_keyring *ring = arg;
    (void)size;
    if (is_dir || strlen(name) != ENTRY_NAME_LEN || strspn(name, "0123456789") != 8 ||
        name[8] != '-' || name[25] != '-')
        return 0;
    ring_entry e = {0};
    e.seq = (uint32_t)strtoul(name, NULL, 10);
    if (parse_hex_id(name + 9, e.id) != 0 || parse_hex_id(name + 26, e.wrapper) != 0)
        return 0;
    snprintf(e.path, sizeof(e.path), "%s/%s", WK_KEYRING_DIR, name);
    ring_entry *slot = add_entry(ring);
    if (slot == NULL) {
        ring->nomem = true;
        return 1;
    }
    *slot = e;
    return 0;
}

static int unwrap_entry(wk_keyring *ring, ring_entry *e, const wk_key *wrapper, wk_error *err);

static int load(wk_keyring *ring, wk_error *err)
{
    if (ring->loaded)
        return 0;
    for (size_t i = 0; i < ring->count; i++) /* a failed load before: start afresh */
        wk_key_free(ring->entries[i].key);
    ring->count = 0;
    if (wk_storage_list(ring->st, WK_KEYRING_DIR, "", collect_entry, ring, err) != 0)
        return wk_error_prefix(err, "could not read the repository's key ring");
    if (ring->nomem)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    /* Every key the configured key wraps, unwrapped now: a lookup runs in the middle of an
     * object's transfer, where the storage client cannot take another request. */
    for (size_t i = 0; i < ring->count; i++)
        if (memcmp(ring->entries[i].wrapper, ring->master_id, WK_KEY_ID_BYTES) == 0 &&
            unwrap_entry(ring, &ring->entries[i], ring->master, err) != 0)
            return -1;
    ring->loaded = true;
    return 0;
}

static void entry_ad(uint32_t seq, const uint8_t id[WK_KEY_ID_BYTES],
                     const uint8_t wrapper[WK_KEY_ID_BYTES], uint8_t ad[ENTRY_AD_LEN])
{
    memcpy(ad, ENTRY_MAGIC, ENTRY_MAGIC_LEN);
    ad[ENTRY_MAGIC_LEN] = ENTRY_VERSION;
    ad[ENTRY_MAGIC_LEN + 1] = (uint8_t)(seq >> 24);
    ad[ENTRY_MAGIC_LEN + 2] = (uint8_t)(seq >> 16);
    ad[ENTRY_MAGIC_LEN + 3] = (uint8_t)(seq >> 8);
    ad[ENTRY_MAGIC_LEN + 4] = (uint8_t)seq;
    memcpy(ad + ENTRY_MAGIC_LEN + 5, id, WK_KEY_ID_BYTES);
    memcpy(ad + ENTRY_MAGIC_LEN + 5 + WK_KEY_ID_BYTES, wrapper, WK_KEY_ID_BYTES);
}

/* Unwraps entry e (which wrapper wraps) into e->key, checking that the stored entry is
 * the one its name says. */
static int unwrap_entry(wk_keyring *ring, ring_entry *e, const wk_key *wrapper, wk_error *err)
{
    if (e->key != NULL)
        return 0;
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = -1;
    wk_stage *sink = wk_stage_memory_new(ENTRY_LEN + 1, &bytes, &len, err);
    if (sink == NULL)
        return -1;
    if (wk_storage_get(ring->st, e->path, sink, err) != 0 || wk_stage_finish(sink, err) != 0) {
        if (err->code == WK_ERR_NOTFOUND)
            err->code = WK_ERR_IO; /* removed meanwhile (a rotation): never "not initialised" */
        wk_error_prefix(err, "could not read key ring entry \"%s\"", e->path);
        goto out;
    }
    uint8_t ad[ENTRY_AD_LEN];
    entry_ad(e->seq, e->id, e->wrapper, ad);
    wk_key *key = NULL;
    if (len != ENTRY_LEN || memcmp(bytes, ad, ENTRY_AD_LEN) != 0 ||
        wk_key_unwrap(wrapper, bytes + ENTRY_AD_LEN, ad, ENTRY_AD_LEN, &key, err) != 0) {
        wk_error_set(err, WK_ERR_CORRUPT, "key ring entry \"%s\" is damaged or forged", e->path);
        wk_error_hint(err, "restore keys/ from a copy of the repository; without its keys, "
                           "objects written with them cannot be read");
        goto out;
    }
    uint8_t id[WK_KEY_ID_BYTES];
    wk_key_id(key, id);
    if (memcmp(id, e->id, WK_KEY_ID_BYTES) != 0) {
        wk_key_free(key);
        wk_error_set(err, WK_ERR_CORRUPT,
                     "key ring entry \"%s\" holds another key than its name says", e->path);
        goto out;
    }
    e->key = key;
    rc = 0;
out:
    wk_stage_free(sink);
    free(bytes);
    return rc;
}

/* Stores key (sequence seq) wrapped by wrapper; an entry of that name already there is
 * fine when it unwraps to the same key (a rotation run again). */
static int store_entry(wk_keyring *ring, uint32_t seq, const wk_key *key, const wk_key *wrapper,
                       wk_error *err)
{
    uint8_t id[WK_KEY_ID_BYTES], wid[WK_KEY_ID_BYTES], bytes[ENTRY_LEN];
    char ihex[2 * WK_KEY_ID_BYTES + 1], whex[2 * WK_KEY_ID_BYTES + 1];
    wk_key_id(key, id);
    wk_key_id(wrapper, wid);
    hex_of(id, ihex);
    hex_of(wid, whex);
    if (seq > 99999999)
        return wk_error_set(err, WK_ERR_CORRUPT,
                            "the key ring's sequence numbers are used up "
                            "(a forged entry?)");
    ring_entry *e = add_entry(ring);
    if (e == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    e->seq = seq;
    memcpy(e->id, id, sizeof(id));
    memcpy(e->wrapper, wid, sizeof(wid));
    snprintf(e->path, sizeof(e->path), "%s/%08u-%s-%s", WK_KEYRING_DIR, seq, ihex, whex);
    entry_ad(seq, id, wid, bytes);
    if (wk_key_wrap(wrapper, key, bytes, ENTRY_AD_LEN, bytes + ENTRY_AD_LEN, err) != 0) {
        ring->count--;
        return -1;
    }
    if (wk_storage_put_bytes(ring->st, e->path, WK_PUT_NOREPLACE, bytes, ENTRY_LEN, err) == 0)
        return 0;
    if (err->code != WK_ERR_EXISTS) {
        ring->count--;
        return wk_error_prefix(err, "could not store key ring entry \"%s\"", e->path);
    }
    /* There already: it must hold the same key. */
    wk_error_clear(err);
    if (unwrap_entry(ring, e, wrapper, err) != 0) {
        ring->count--;
        return -1;
    }
    return 0;
}

static ring_entry *find(wk_keyring *ring, uint32_t seq, const uint8_t id[WK_KEY_ID_BYTES],
                        const uint8_t wrapper[WK_KEY_ID_BYTES])
{
    for (size_t i = 0; i < ring->count; i++) {
        ring_entry *e = &ring->entries[i];
        if (e->seq == seq && memcmp(e->id, id, WK_KEY_ID_BYTES) == 0 &&
            memcmp(e->wrapper, wrapper, WK_KEY_ID_BYTES) == 0)
            return e;
    }
    return NULL;
}

int wk_keyring_state(wk_keyring *ring, bool *exists, bool *opens, wk_error *err)
{
    if (load(ring, err) != 0)
        return -1;
    *exists = ring->count > 0;
    *opens = false;
    for (size_t i = 0; i < ring->count; i++)
        if (memcmp(ring->entries[i].wrapper, ring->master_id, WK_KEY_ID_BYTES) == 0)
            *opens = true;
    return 0;
}

/* The newest data key the configured key wraps (ties: the lowest id), or NULL. */
static ring_entry *newest_wrapped(wk_keyring *ring)
{
    ring_entry *best = NULL;
    for (size_t i = 0; i < ring->count; i++) {
        ring_entry *e = &ring->entries[i];
        if (e->seq == 0 || memcmp(e->wrapper, ring->master_id, WK_KEY_ID_BYTES) != 0)
            continue;
        if (best == NULL || e->seq > best->seq ||
            (e->seq == best->seq && memcmp(e->id, best->id, WK_KEY_ID_BYTES) < 0))
            best = e;
    }
    return best;
}

static uint32_t highest_seq(const wk_keyring *ring)
{
    uint32_t seq = 0;
    for (size_t i = 0; i < ring->count; i++)
        if (ring->entries[i].seq > seq)
            seq = ring->entries[i].seq;
    return seq;
}

static int not_opened(wk_keyring *ring, wk_error *err)
{
    char hex[2 * WK_KEY_ID_BYTES + 1];
    hex_of(ring->master_id, hex);
    wk_error_set(err, WK_ERR_KEY, "the configured key %s does not open this repository's key ring",
                 hex);
    wk_error_hint(err, "the repository's key was rotated: set encrypt_key_file to the key it was "
                       "rotated to");
    return -1;
}

int wk_keyring_writer_key(wk_keyring *ring, bool create, const wk_key **key, wk_error *err)
{
    if (load(ring, err) != 0)
        return -1;
    ring_entry *e = newest_wrapped(ring);
    if (e == NULL && ring->count > 0)
        return not_opened(ring, err);
    if (e == NULL && !create)
        return wk_error_set(err, WK_ERR_NOTFOUND, "the repository has no key ring");
    if (e == NULL) {
        wk_key *fresh = NULL;
        if (wk_key_generate(&fresh, err) != 0)
            return -1;
        int rc = wk_keyring_create(ring, fresh, err);
        wk_key_free(fresh);
        if (rc != 0)
            return -1;
        e = &ring->entries[ring->count - 1];
    }
    if (unwrap_entry(ring, e, ring->master, err) != 0)
        return -1;
    *key = e->key;
    return 0;
}

int wk_keyring_create(wk_keyring *ring, const wk_key *first, wk_error *err)
{
    if (load(ring, err) != 0)
        return -1;
    if (store_entry(ring, 1, first, ring->master, err) != 0)
        return -1;
    /* Unwrapped from the store, so the entry holds its own copy of the key. */
    return unwrap_entry(ring, &ring->entries[ring->count - 1], ring->master, err);
}

int wk_keyring_lookup(void *arg, int version, const uint8_t id[WK_KEY_ID_BYTES], const wk_key **key,
                      wk_error *err)
{
    wk_keyring *ring = arg;
    bool repository_key = version == 1;
    if (repository_key && sodium_memcmp(id, ring->master_id, WK_KEY_ID_BYTES) == 0) {
        *key = ring->master;
        return 0;
    }
    if (load(ring, err) != 0)
        return -1;
    for (size_t i = 0; i < ring->count; i++) {
        ring_entry *e = &ring->entries[i];
        if (memcmp(e->id, id, WK_KEY_ID_BYTES) != 0 ||
            memcmp(e->wrapper, ring->master_id, WK_KEY_ID_BYTES) != 0 ||
            (e->seq == 0) != repository_key)
            continue;
        if (unwrap_entry(ring, e, ring->master, err) != 0)
            return -1;
        *key = e->key;
        return 0;
    }
    char theirs[2 * WK_KEY_ID_BYTES + 1], ours[2 * WK_KEY_ID_BYTES + 1];
    hex_of(id, theirs);
    hex_of(ring->master_id, ours);
    wk_error_set(err, WK_ERR_KEY,
                 "object was encrypted with key %s, which the configured key %s does not open",
                 theirs, ours);
    wk_error_hint(err, "Set encrypt_key_file to the key this repository was written with, or the "
                       "key it was rotated to.");
    return -1;
}

int wk_keyring_rotate(wk_keyring *ring, const wk_key *new_master, bool keep_old_key,
                      wk_keyring_rotation *report, wk_error *err)
{
    uint8_t new_id[WK_KEY_ID_BYTES];
    memset(report, 0, sizeof(*report));
    wk_key_id(new_master, new_id);
    if (memcmp(new_id, ring->master_id, WK_KEY_ID_BYTES) == 0)
        return wk_error_set(err, WK_ERR_USAGE, "the new key is the configured key");
    if (load(ring, err) != 0)
        return -1;
    report->created_ring = ring->count == 0;
    bool opens = ring->count == 0, new_opens = false;
    for (size_t i = 0; i < ring->count; i++) {
        if (memcmp(ring->entries[i].wrapper, ring->master_id, WK_KEY_ID_BYTES) == 0)
            opens = true;
        if (memcmp(ring->entries[i].wrapper, new_id, WK_KEY_ID_BYTES) == 0)
            new_opens = true;
    }
    if (!opens && new_opens)
        return 0; /* done already: a run killed after its last removal, run again */
    if (!opens)
        return not_opened(ring, err);

    /* 1. Everything the old key opens, the new key opens too: the keys it wraps, and the old
     * key itself (sequence 0) for objects written with it directly. Until this is done the
     * old key alone still opens everything. */
    size_t before = ring->count;
    for (size_t i = 0; i < before; i++) {
        if (memcmp(ring->entries[i].wrapper, ring->master_id, WK_KEY_ID_BYTES) != 0 ||
            find(ring, ring->entries[i].seq, ring->entries[i].id, new_id) != NULL)
            continue;
        if (unwrap_entry(ring, &ring->entries[i], ring->master, err) != 0)
            return -1;
        /* store_entry may move the array: copy what it needs first. */
        const wk_key *key = ring->entries[i].key;
        if (store_entry(ring, ring->entries[i].seq, key, new_master, err) != 0)
            return -1;
        report->rewrapped++;
    }
    if (keep_old_key && find(ring, 0, ring->master_id, new_id) == NULL) {
        if (store_entry(ring, 0, ring->master, new_master, err) != 0)
            return -1;
        report->rewrapped++;
    }

    /* 2. A new data key only the new key wraps: what writers use from now on. */
    wk_key *fresh = NULL;
    if (wk_key_generate(&fresh, err) != 0)
        return -1;
    wk_key_id(fresh, report->new_data_key_id);
    int rc = store_entry(ring, highest_seq(ring) + 1, fresh, new_master, err);
    wk_key_free(fresh);
    if (rc != 0)
        return -1;

    /* Before anything the old key opens is removed: the new key must open every key the
     * old one does, each unwrapped and checked (not taken on the name of its entry). */
    wk_keyring *theirs = NULL;
    if (wk_keyring_open(ring->st, new_master, &theirs, err) != 0)
        return -1;
    int checked = load(theirs, err);
    for (size_t i = 0; checked == 0 && i < ring->count; i++) {
        const ring_entry *e = &ring->entries[i];
        if (memcmp(e->wrapper, ring->master_id, WK_KEY_ID_BYTES) == 0 &&
            find(theirs, e->seq, e->id, new_id) == NULL)
            checked =
                wk_error_set(err, WK_ERR_CORRUPT,
                             "the new key does not open key \"%s\": nothing removed", e->path);
    }
    wk_keyring_free(theirs);
    if (checked != 0)
        return wk_error_prefix(err, "refusing to finish the rotation");

    /* 3. The old key's wrappings go: from here on only the new key opens the ring. */
    for (size_t i = 0; i < ring->count; i++) {
        if (memcmp(ring->entries[i].wrapper, ring->master_id, WK_KEY_ID_BYTES) != 0)
            continue;
        if (wk_storage_remove(ring->st, ring->entries[i].path, err) != 0 &&
            err->code != WK_ERR_NOTFOUND)
            return wk_error_prefix(err, "could not remove key ring entry \"%s\"",
                                   ring->entries[i].path);
        wk_error_clear(err);
        report->removed++;
    }
    ring->loaded = false; /* the ring changed under this handle */
    for (size_t i = 0; i < ring->count; i++)
        wk_key_free(ring->entries[i].key);
    ring->count = 0;
    return 0;
}
