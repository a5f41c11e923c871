/* file: small local files written whole or not at all, through a hidden temporary beside
 * them. Layer 2 (foundations). */
#include "file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
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

const char *wk_file_user_name(uid_t uid, char *buf, size_t size)
{
    struct passwd pw, *found = NULL;
    char scratch[1024];
    if (getpwuid_r(uid, &pw, scratch, sizeof(scratch), &found) == 0 && found != NULL)
        snprintf(buf, size, "%s", found->pw_name);
    else
        snprintf(buf, size, "uid %u", (unsigned)uid);
    return buf;
}

/* The first folder on the way to path that we may not enter (search permission), into
 * folder; false when every one may be entered. */
static bool blocking_folder(const char *path, char *folder, size_t size)
{
    size_t len = strlen(path);
    if (len >= size)
        return false;
    for (size_t i = 1; i < len; i++) {
        if (path[i] != '/')
            continue;
        memcpy(folder, path, i);
        folder[i] = '\0';
        if (access(folder, X_OK) != 0 && errno == EACCES)
            return true;
    }
    if (path[0] != '/') { /* a relative path starts in the current folder */
        snprintf(folder, size, ".");
        return access(".", X_OK) != 0 && errno == EACCES;
    }
    return false;
}

static void group_name(gid_t gid, char *buf, size_t size)
{
    struct group gr, *found = NULL;
    char scratch[1024];
    if (getgrgid_r(gid, &gr, scratch, sizeof(scratch), &found) == 0 && found != NULL)
        snprintf(buf, size, "%s", found->gr_name);
    else
        snprintf(buf, size, "gid %u", (unsigned)gid);
}

void wk_file_explain_denied(wk_error *err, const char *path, bool owner_only)
{
    char me[64], owner[64], group[64], folder[PATH_MAX];
    struct stat st;
    if (err == NULL || err->sys_errno != EACCES)
        return;
    uid_t uid = geteuid();
    wk_file_user_name(uid, me, sizeof(me));
    if (uid == 0) {
        wk_error_detail_append(err, "This program runs as root, and was refused all the same.");
        wk_error_hint(err, "Look for a network file system that maps root to nobody "
                           "(root_squash) or a security module (SELinux, AppArmor) denying it.");
        return;
    }
    const char *what = "file", *name = path;
    if (blocking_folder(path, folder, sizeof(folder))) {
        what = "folder";
        name = folder;
    }
    if (stat(name, &st) != 0) {
        wk_error_detail_append(err, "This program runs as user \"%s\".", me);
        return;
    }
    wk_file_user_name(st.st_uid, owner, sizeof(owner));
    group_name(st.st_gid, group, sizeof(group));
    wk_error_detail_append(err,
                           "This program runs as user \"%s\"; the %s \"%s\" is owned by user "
                           "\"%s\" and group \"%s\", mode %04o.",
                           me, what, name, owner, group, (unsigned)(st.st_mode & 07777));
    bool folder_in_way = name != path, by_root = st.st_uid == 0;
    const char *bits = folder_in_way ? "rx" : "r";
    mode_t group_bits = folder_in_way ? (S_IRGRP | S_IXGRP) : S_IRGRP;
    char my_group[64];
    group_name(getegid(), my_group, sizeof(my_group));
    if (st.st_uid == uid)
        wk_error_hint(err, "Give the owner access: chmod u+%s \"%s\".", bits, name);
    else if (owner_only && !folder_in_way && by_root) /* read by its owner only */
        wk_error_hint(err, "A key file is read by its owner only: chown %s \"%s\".", me, name);
    else if (owner_only && !folder_in_way)
        wk_error_hint(err,
                      "A key file is read by its owner only: run the program as \"%s\" "
                      "(e.g. runuser -u %s -- ...).",
                      owner, owner);
    else if ((st.st_mode & group_bits) == group_bits && by_root)
        wk_error_hint(err, "Add \"%s\" to group \"%s\".", me, group);
    else if ((st.st_mode & group_bits) == group_bits)
        wk_error_hint(err,
                      "Run the program as \"%s\" (e.g. runuser -u %s -- ...), or add \"%s\" "
                      "to group \"%s\".",
                      owner, owner, me, group);
    else if (by_root)
        wk_error_hint(err, "Let \"%s\" in through the group: chgrp %s \"%s\" && chmod g+%s \"%s\".",
                      me, my_group, name, bits, name);
    else
        wk_error_hint(err,
                      "Run the program as \"%s\" (e.g. runuser -u %s -- ...), or let \"%s\" "
                      "in through the group: chgrp %s \"%s\" && chmod g+%s \"%s\".",
                      owner, owner, me, my_group, name, bits, name);
}
