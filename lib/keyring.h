/* keyring: the data keys of an encrypted repository, each stored wrapped by a repository
 * key under keys/ (envelope encryption, docs/format.md "Key ring"): which key new objects
 * are written with, the key an object names, and rotation to a new repository key.
 * Layer 5 (repository). */
#ifndef WK_KEYRING_H
#define WK_KEYRING_H

#include <stdbool.h>
#include <stdint.h>

#include "crypt.h"
#include "error.h"
#include "storage.h"

#define WK_KEYRING_DIR "keys"

typedef struct wk_keyring wk_keyring;

/* A ring over st for the repository key master (both borrowed: they outlive the ring).
 * Nothing is read until a question needs it. */
int wk_keyring_open(wk_storage *st, const wk_key *master, wk_keyring **out, wk_error *err);

/* Accepts NULL; wipes the keys it unwrapped. */
void wk_keyring_free(wk_keyring *ring);

/* Whether the repository has a key ring at all (a repository written before walkeep had
 * one has none: its objects are encrypted with the repository key itself), and whether the
 * configured key opens it (wraps at least one key of it). */
int wk_keyring_state(wk_keyring *ring, bool *exists, bool *opens, wk_error *err);

/* The data key new objects are written with: the newest one (highest sequence number) the
 * configured key wraps. With create and no ring yet, a first data key (sequence 1) is made
 * and stored. WK_ERR_KEY when the ring exists but the configured key wraps no data key. */
int wk_keyring_writer_key(wk_keyring *ring, bool create, const wk_key **key, wk_error *err);

/* Stores first as the ring's first data key (sequence 1), wrapped by the configured key:
 * from then on the repository has a ring. */
int wk_keyring_create(wk_keyring *ring, const wk_key *first, wk_error *err);

/* wk_key_lookup_fn over the ring (arg is the ring). Format 1 objects were encrypted with a
 * repository key: the configured key itself, or an earlier one it wraps (seq 0). Format 2
 * objects and record MACs (version 2) use data keys (seq 1 and up) only, so a repository
 * key rotated away can never authenticate anything new. WK_ERR_KEY naming the id otherwise. */
int wk_keyring_lookup(void *ring, int version, const uint8_t id[WK_KEY_ID_BYTES],
                      const wk_key **key, wk_error *err);

/* What a rotation did. */
typedef struct wk_keyring_rotation {
    int rewrapped;     /* keys now also wrapped by the new key */
    int removed;       /* wrappings by the old key removed */
    bool created_ring; /* the repository had no ring before */
    uint8_t new_data_key_id[WK_KEY_ID_BYTES];
} wk_keyring_rotation;

/* Rotates from the configured key to new_master: every key the configured key wraps (and,
 * with keep_old_key, the configured key itself, for objects written before the ring) is wrapped by new_master
 * too; then a new data key, wrapped only by new_master, becomes the writers' key; then the
 * wrappings by the old key are removed. At every point each object is readable with the old
 * key or with the new one (docs/format.md, "Rotation"). No object other than keys/ is
 * rewritten. Running it again after a crash completes it. */
int wk_keyring_rotate(wk_keyring *ring, const wk_key *new_master, bool keep_old_key,
                      wk_keyring_rotation *report, wk_error *err);

#endif
