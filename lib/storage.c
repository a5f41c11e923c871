/* storage: the thin wrappers over a backend's ops and path validation; storage layer.
 * The drivers are storage_posix (a folder) and storage_s3 (a bucket). */
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- wrappers --------------------------------------------------------------------- */

int wk_storage_put_open(wk_storage *st, const char *path, int flags, wk_stage **sink, wk_error *err)
{
    return st->ops->put_open(st, path, flags, sink, err);
}

int wk_storage_get(wk_storage *st, const char *path, wk_stage *dest, wk_error *err)
{
    return st->ops->get(st, path, dest, err);
}

int wk_storage_stat(wk_storage *st, const char *path, wk_storage_info *out, wk_error *err)
{
    return st->ops->stat(st, path, out, err);
}

int wk_storage_list(wk_storage *st, const char *dir, const char *prefix, wk_storage_list_cb cb,
                    void *arg, wk_error *err)
{
    return st->ops->list(st, dir, prefix, cb, arg, err);
}

int wk_storage_remove(wk_storage *st, const char *path, wk_error *err)
{
    return st->ops->remove(st, path, err);
}

int wk_storage_put_bytes(wk_storage *st, const char *path, int flags, const void *data, size_t len,
                         wk_error *err)
{
    wk_stage *sink = NULL;
    int rc = -1;
    if (wk_storage_put_open(st, path, flags, &sink, err) == 0 &&
        wk_stage_write(sink, data, len, err) == 0 && wk_stage_finish(sink, err) == 0)
        rc = 0;
    wk_stage_free(sink);
    return rc;
}

bool wk_storage_can_retarget(const wk_storage *st)
{
    return st->ops->retarget != NULL;
}

int wk_storage_retarget(wk_storage *st, wk_stage *sink, const char *path, wk_error *err)
{
    if (st->ops->retarget == NULL)
        return wk_error_set(err, WK_ERR_USAGE, "this storage cannot rename \"%s\"", path);
    return st->ops->retarget(st, sink, path, err);
}

int wk_storage_clean_temporaries(wk_storage *st, const char *dir, int64_t max_age_seconds,
                                 uint64_t *removed, wk_error *err)
{
    if (removed != NULL)
        *removed = 0;
    if (st->ops->clean_temporaries == NULL)
        return 0;
    return st->ops->clean_temporaries(st, dir, max_age_seconds, removed, err);
}

int wk_storage_list_temporaries(wk_storage *st, const char *dir, wk_storage_temp_cb cb, void *arg,
                                wk_error *err)
{
    if (st->ops->list_temporaries == NULL)
        return 0;
    return st->ops->list_temporaries(st, dir, cb, arg, err);
}

int wk_storage_remove_many(wk_storage *st, const char *const *paths, size_t count, wk_error *err)
{
    if (st->ops->remove_many != NULL)
        return count == 0 ? 0 : st->ops->remove_many(st, paths, count, err);
    for (size_t i = 0; i < count; i++)
        if (st->ops->remove(st, paths[i], err) != 0)
            return -1;
    return 0;
}

void wk_storage_free(wk_storage *st)
{
    if (st != NULL)
        st->ops->free(st);
}

/* ---- path validation -------------------------------------------------------------- */

/* The message shows the path on one line: control bytes escaped, long paths cut. */
static int invalid_path(const char *path, const char *why, wk_error *err)
{
    char shown[160];
    size_t used = 0;
    const unsigned char *p = (const unsigned char *)path;
    for (; *p != '\0' && used + 8 < sizeof(shown); p++) {
        if (*p < 0x20 || *p == 0x7f)
            used += (size_t)snprintf(shown + used, sizeof(shown) - used, "\\x%02x", *p);
        else
            shown[used++] = (char)*p;
    }
    if (*p != '\0')
        used += (size_t)snprintf(shown + used, sizeof(shown) - used, "...");
    shown[used] = '\0';
    wk_error_set(err, WK_ERR_USAGE, "invalid repository path \"%s\"", shown);
    wk_error_detail(err, "%s", why);
    return -1;
}

int wk_storage_check_path(const char *path, wk_error *err)
{
    size_t len = strlen(path);
    if (len == 0)
        return invalid_path(path, "The path is empty.", err);
    if (len >= WK_STORAGE_PATH_MAX)
        return invalid_path(path, "The path is longer than 1023 bytes.", err);
    if (path[0] == '/')
        return invalid_path(path, "The path must be relative to the repository root.", err);
    for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return invalid_path(path, "The path contains a control character.", err);
    }
    const char *component = path;
    for (;;) {
        const char *slash = strchr(component, '/');
        size_t n = slash != NULL ? (size_t)(slash - component) : strlen(component);
        if (n == 0)
            return invalid_path(path, "The path has an empty component.", err);
        if (component[0] == '.')
            return invalid_path(path,
                                "A path component starts with \".\" (hidden names are "
                                "reserved for temporary files).",
                                err);
        if (slash == NULL)
            break;
        component = slash + 1;
    }
    return 0;
}
