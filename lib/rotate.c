/* rotate: a new repository key without rewriting WAL or backup objects. Layer 6 (workers). */
#include "rotate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "dump.h"
#include "record.h"

/* Seals the record at path with key, when there is one (an interrupted backup has none). */
static int seal_record(wk_repo *repo, const wk_key *key, const char *path, int *sealed,
                       wk_error *err)
{
    uint8_t *text = NULL;
    size_t len = 0;
    if (wk_record_read(repo->storage, path, &text, &len, err) != 0) {
        if (err->code != WK_ERR_NOTFOUND)
            return -1;
        wk_error_clear(err);
        return 0;
    }
    int rc = wk_repo_seal_with(repo, key, path, text, len, err);
    free(text);
    if (rc == 0)
        (*sealed)++;
    return rc;
}

/* Every record of a repository that had no ring: they were written unauthenticated, and
 * from the ring on, a record without its MAC is refused. */
static int seal_all(wk_repo *repo, const wk_key *key, int *sealed, wk_error *err)
{
    static const struct {
        const char *folder, *record;
    } kinds[] = {{"backups", WK_BACKUP_RECORD}, {"dumps", WK_DUMP_RECORD}};
    if (seal_record(repo, key, WK_REPO_META_PATH, sealed, err) != 0)
        return -1;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        char(*labels)[WK_LABEL_MAX] = NULL;
        size_t count = 0;
        if (wk_repo_list_labels(repo, kinds[k].folder, &labels, &count, err) != 0)
            return -1;
        int rc = 0;
        for (size_t i = 0; i < count && rc == 0; i++) {
            char path[WK_LABEL_MAX + 64];
            snprintf(path, sizeof(path), "%s/%s/%s", kinds[k].folder, labels[i], kinds[k].record);
            rc = seal_record(repo, key, path, sealed, err);
        }
        free(labels);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int wk_rotate_key(wk_repo *repo, const wk_key *new_key, wk_rotate_result *result, wk_error *err)
{
    wk_repo_meta meta;
    bool exists, opens;
    memset(result, 0, sizeof(*result));
    if (repo->key == NULL)
        return wk_error_set(err, WK_ERR_USAGE,
                            "repository \"%s\" is not encrypted: no key to rotate", repo->location);
    if (wk_keyring_state(repo->ring, &exists, &opens, err) != 0)
        return -1;
    if (exists && !opens) {
        /* Run again after it finished (the configured key is the old one): done already
         * when the new key opens the ring. */
        wk_keyring *theirs = NULL;
        bool their_exists, their_opens = false;
        int rc = wk_keyring_open(repo->storage, new_key, &theirs, err);
        if (rc == 0)
            rc = wk_keyring_state(theirs, &their_exists, &their_opens, err);
        wk_keyring_free(theirs);
        if (rc != 0)
            return -1;
        if (their_opens)
            return 0;
    }
    if (wk_repo_open_meta(repo, NULL, &meta, NULL, err) != 0)
        return -1;
    if (!exists) {
        /* The MACs first, with a data key not stored yet: until the ring exists they mean
         * nothing (a crash here leaves the repository as it was, and a new run replaces
         * them); once it exists, every record already carries one. */
        wk_key *first = NULL;
        if (wk_key_generate(&first, err) != 0)
            return -1;
        int rc = seal_all(repo, first, &result->sealed, err);
        if (rc == 0)
            rc = wk_keyring_create(repo->ring, first, err);
        wk_key_free(first);
        if (rc != 0)
            return -1;
    }
    /* The old key itself stays readable (wrapped by the new one, for format 1 objects) only
     * when it can have encrypted objects directly: it is the key the repository was created
     * with (a later key never encrypts an object itself). */
    uint8_t id[WK_KEY_ID_BYTES];
    wk_key_id(repo->key, id);
    bool keep_old_key = !exists || memcmp(id, meta.key_id, sizeof(id)) == 0;
    if (wk_keyring_rotate(repo->ring, new_key, keep_old_key, &result->ring, err) != 0)
        return -1;
    result->ring.created_ring = !exists;
    return 0;
}
