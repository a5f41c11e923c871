/* file: small local files written whole or not at all, through a hidden temporary beside
 * them. Layer 2 (foundations). */
#include "file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc.h"

/* path split into its folder ("." when none) and its last name. */
typedef struct file_place {
    char dir[PATH_MAX];
    const char *name;
} file_place;

static int place_of(const char *path, file_place *p, wk_error *err)
{
    const char *slash = strrchr(path, '/');
    p->name = slash != NULL ? slash + 1 : path;
    if (p->name[0] == '\0')
        return wk_error_set(err, WK_ERR_USAGE, "\"%s\" names a folder, not a file", path);
    int n = slash == NULL   ? snprintf(p->dir, sizeof(p->dir), ".")
            : slash == path ? snprintf(p->dir, sizeof(p->dir), "/")
                            : snprintf(p->dir, sizeof(p->dir), "%.*s", (int)(slash - path), path);
    if (n < 0 || (size_t)n >= sizeof(p->dir) || strlen(path) + 40 >= PATH_MAX)
        return wk_error_set(err, WK_ERR_USAGE, "path \"%.200s...\" is too long", path);
    return 0;
}

/* Removes ".<name>.tmp.<pid>.<n>" in dir whose writer pid no longer runs (best effort:
 * a temporary left by a killed writer is never read, only in the way). */
static void remove_stale_temporaries(const file_place *p)
{
    DIR *d = opendir(p->dir);
    if (d == NULL)
        return;
    size_t name_len = strlen(p->name);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *e = de->d_name;
        if (e[0] != '.' || strncmp(e + 1, p->name, name_len) != 0 ||
            strncmp(e + 1 + name_len, ".tmp.", 5) != 0)
            continue;
        char *end;
        long pid = strtol(e + 1 + name_len + 5, &end, 10);
        if (*end != '.' || !wk_proc_is_gone(pid))
            continue;
        unlinkat(dirfd(d), e, 0);
    }
    closedir(d);
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_folder(const char *dir, wk_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        wk_error_sys(err, WK_ERR_IO, errno, "could not fsync the folder \"%s\"", dir);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int wk_file_write(const char *path, const void *data, size_t len, mode_t mode, int flags,
                  wk_error *err)
{
    file_place place;
    char tmp[2 * PATH_MAX];
    int fd = -1, rc = -1;
    bool created = false;

    if (place_of(path, &place, err) != 0)
        return -1;
    remove_stale_temporaries(&place);
    for (int attempt = 0;; attempt++) {
        int n = snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%ld.%d", place.dir, place.name,
                         (long)getpid(), attempt);
        if (n < 0 || (size_t)n >= sizeof(tmp))
            return wk_error_set(err, WK_ERR_USAGE, "path \"%.200s...\" is too long", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
        if (fd >= 0)
            break;
        if (errno != EEXIST || attempt >= 100) {
            wk_error_sys(err, WK_ERR_IO, errno, "could not create \"%s\"", tmp);
            return -1;
        }
    }
    created = true;
    /* The umask may only have narrowed the mode: make it exactly what was asked. */
    if (fchmod(fd, mode & 0777) != 0) {
        wk_error_sys(err, WK_ERR_IO, errno, "could not set the mode of \"%s\"", tmp);
        goto out;
    }
    if (write_all(fd, data, len) != 0) {
        wk_error_sys(err, WK_ERR_IO, errno, "could not write \"%s\"", tmp);
        goto out;
    }
    if (fsync(fd) != 0) {
        wk_error_sys(err, WK_ERR_IO, errno, "could not fsync \"%s\"", tmp);
        goto out;
    }
    int closed = close(fd);
    fd = -1;
    if (closed != 0) {
        wk_error_sys(err, WK_ERR_IO, errno, "could not close \"%s\"", tmp);
        goto out;
    }
    if (flags & WK_FILE_NOREPLACE) {
        /* link(2) refuses an existing name, a dangling symbolic link included. */
        if (link(tmp, path) != 0) {
            if (errno == EEXIST)
                wk_error_set(err, WK_ERR_EXISTS, "\"%s\" already exists", path);
            else
                wk_error_sys(err, WK_ERR_IO, errno, "could not create \"%s\"", path);
            goto out;
        }
    } else {
        if (rename(tmp, path) != 0) {
            wk_error_sys(err, WK_ERR_IO, errno, "could not rename \"%s\" to \"%s\"", tmp, path);
            goto out;
        }
        created = false;
    }
    if (fsync_folder(place.dir, err) != 0)
        goto out;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    /* The temporary is ours (O_EXCL); with a link, the file lives on under path. */
    if (created)
        unlink(tmp);
    return rc;
}
