/* rotate: `walkeep key rotate`: a new repository key for an encrypted repository without
 * rewriting any WAL or backup object (docs/format.md, "Rotation"). Layer 6 (workers). */
#ifndef WK_ROTATE_H
#define WK_ROTATE_H

#include "crypt.h"
#include "error.h"
#include "keyring.h"
#include "repo.h"

typedef struct wk_rotate_result {
    int sealed; /* records sealed because the repository had no key ring */
    wk_keyring_rotation ring;
} wk_rotate_result;

/* Makes new_key the repository's key: on a repository written before key rings, every
 * record (walkeep.repo, backup.json, dump.json) is sealed with a first data key and the
 * ring is created (the configured key then still opens everything); then the ring is
 * rotated (wk_keyring_rotate). Killed at any point, the repository stays readable with the
 * configured key or with new_key, and running it again completes it. */
int wk_rotate_key(wk_repo *repo, const wk_key *new_key, wk_rotate_result *result, wk_error *err);

#endif
