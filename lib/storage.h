/* storage: the interface every repository backend implements (a POSIX folder, or S3 in
 * storage_s3), and the POSIX driver. Paths are relative to the repository root, '/'-separated. */
#ifndef WK_STORAGE_H
#define WK_STORAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "stream.h"

typedef struct wk_storage wk_storage;

typedef struct wk_storage_info {
    uint64_t size;
} wk_storage_info;

/* Called once per entry by list; return non-zero to stop listing (list then
 * returns 0). name is relative to the listed folder. */
typedef int (*wk_storage_list_cb)(const char *name, bool is_dir, uint64_t size, void *arg);

/* Called once per leftover of an unfinished write by list_temporaries: path relative to
 * the repository root, bytes written so far (0 when unknown), seconds since it was last
 * written (or started). Return non-zero to stop. */
typedef int (*wk_storage_temp_cb)(const char *path, uint64_t bytes, int64_t age_seconds, void *arg);

/* How long a leftover of an unfinished write must have been left untouched before
 * anything removes it, when its writer cannot be proved gone (a live writer keeps its
 * own fresh). */
#define WK_STORAGE_STALE_SECONDS 3600

/* Repository paths are shorter than this (bytes, without the NUL). */
#define WK_STORAGE_PATH_MAX 1024

/* Flags for put_open. */
#define WK_PUT_NOREPLACE 0x1 /* fail with WK_ERR_EXISTS if the object already exists */
#define WK_PUT_NOSYNC                                                                              \
    0x2 /* still atomic, but not fsync'd (for files that are
                              * cheap to make again, like a fetched WAL file) */

typedef struct wk_storage_ops {
    /* Opens a writer for path; folders are created as needed. Bytes written to the
     * returned sink are not visible at path until wk_stage_finish succeeds, which
     * makes the object durable (POSIX: temp file in the same folder, fsync, rename,
     * fsync folder). Freeing the sink without a successful finish leaves nothing
     * visible and no temporary behind. With WK_PUT_NOREPLACE finish fails with
     * WK_ERR_EXISTS, touching nothing, if path exists. */
    int (*put_open)(wk_storage *st, const char *path, int flags, wk_stage **sink, wk_error *err);
    /* Streams the whole object at path into dest (write only; the caller finishes or
     * frees dest). WK_ERR_NOTFOUND when the object certainly does not exist;
     * WK_ERR_TRANSIENT for errors worth retrying; WK_ERR_IO otherwise. */
    int (*get)(wk_storage *st, const char *path, wk_stage *dest, wk_error *err);
    /* Size of the object; WK_ERR_NOTFOUND when absent. */
    int (*stat)(wk_storage *st, const char *path, wk_storage_info *out, wk_error *err);
    /* Calls cb for every entry directly inside folder dir ("" for the root) whose
     * name starts with prefix (may be ""), in no particular order; temporaries of
     * unfinished writes are never listed. A missing folder lists nothing (not an
     * error). */
    int (*list)(wk_storage *st, const char *dir, const char *prefix, wk_storage_list_cb cb,
                void *arg, wk_error *err);
    /* Removes the object at path; a missing object is success. */
    int (*remove)(wk_storage *st, const char *path, wk_error *err);
    void (*free)(wk_storage *st);
    /* Optional, NULL where the backend cannot rename cheaply: makes a sink from put_open
     * commit to another path in the same folder, decided before its finish. It lets a
     * writer name an object after its content in a single pass. */
    int (*retarget)(wk_storage *st, wk_stage *sink, const char *path, wk_error *err);
    /* Optional, NULL where writes leave no temporaries: removes the temporaries in
     * folder dir that no write has touched for max_age_seconds (leftovers of writers
     * that were killed; a live writer keeps its own fresh), counting them in *removed
     * (may be NULL). A missing folder is nothing to do. */
    int (*clean_temporaries)(wk_storage *st, const char *dir, int64_t max_age_seconds,
                             uint64_t *removed, wk_error *err);
    /* Optional, NULL where writes leave nothing behind: calls cb for every leftover of an
     * unfinished write below folder dir, recursively ("" for the whole repository). */
    int (*list_temporaries)(wk_storage *st, const char *dir, wk_storage_temp_cb cb, void *arg,
                            wk_error *err);
    /* Optional, NULL where remove is as good: removes count objects (a missing one is
     * success), in batches where the backend has batch deletes. On error some may be
     * gone and others not; each is either whole or gone. */
    int (*remove_many)(wk_storage *st, const char *const *paths, size_t count, wk_error *err);
} wk_storage_ops;

struct wk_storage {
    const wk_storage_ops *ops;
};

/* Thin wrappers over the ops, so callers read naturally. free accepts NULL. */
int wk_storage_put_open(wk_storage *st, const char *path, int flags, wk_stage **sink,
                        wk_error *err);
int wk_storage_get(wk_storage *st, const char *path, wk_stage *dest, wk_error *err);
int wk_storage_stat(wk_storage *st, const char *path, wk_storage_info *out, wk_error *err);
int wk_storage_list(wk_storage *st, const char *dir, const char *prefix, wk_storage_list_cb cb,
                    void *arg, wk_error *err);
int wk_storage_remove(wk_storage *st, const char *path, wk_error *err);
void wk_storage_free(wk_storage *st);
/* Stores len bytes at path in one go (put_open, write, finish): for small objects such
 * as records and metadata. */
int wk_storage_put_bytes(wk_storage *st, const char *path, int flags, const void *data, size_t len,
                         wk_error *err);
/* Whether the backend implements retarget; wk_storage_retarget fails (WK_ERR_USAGE)
 * where it does not. */
bool wk_storage_can_retarget(const wk_storage *st);
int wk_storage_retarget(wk_storage *st, wk_stage *sink, const char *path, wk_error *err);
/* The clean_temporaries operation; succeeds doing nothing where the backend has none. */
int wk_storage_clean_temporaries(wk_storage *st, const char *dir, int64_t max_age_seconds,
                                 uint64_t *removed, wk_error *err);

/* The list_temporaries operation; lists nothing where the backend has none. */
int wk_storage_list_temporaries(wk_storage *st, const char *dir, wk_storage_temp_cb cb, void *arg,
                                wk_error *err);
/* The remove_many operation, or remove called for each path where the backend has none. */
int wk_storage_remove_many(wk_storage *st, const char *const *paths, size_t count, wk_error *err);

/* Validates a repository-relative path: non-empty, no leading '/', no "." or ".."
 * component, no empty component, no control characters. Returns 0 or -1 (WK_ERR_USAGE). */
int wk_storage_check_path(const char *path, wk_error *err);

#endif
