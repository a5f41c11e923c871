/* storage_posix: the storage driver on a local folder: each object written to a hidden
 * temporary beside it, fsync'd, renamed into place, and the folder fsync'd; storage layer. */
#include "storage_posix.h"

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

#include "proc.h"

/* How much of an object's name goes into its temporary's name; the rest of the
 * temporary's name (".", ".tmp.", pid, counter) must still fit in NAME_MAX. */
#define TMP_NAME_KEEP 200

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

/* ---- POSIX helpers ---------------------------------------------------------------- */

/* Opens and fsyncs folder rel (relative to base_fd; "" means base_fd itself). shown
 * names it in messages. EINVAL from fsync means the file system cannot sync folders,
 * which PostgreSQL also tolerates. */
static int fsync_folder(int base_fd, const char *rel, const char *shown, wk_error *err)
{
    int fd = openat(base_fd, rel[0] != '\0' ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not open folder \"%s\"", shown);
    if (fsync(fd) != 0 && errno != EINVAL) {
        int e = errno;
        close(fd);
        return wk_error_sys(err, WK_ERR_IO, e, "could not fsync folder \"%s\"", shown);
    }
    close(fd);
    return 0;
}

/* Fsyncs the folder holding path (relative to base_fd); base_shown names base_fd. */
static int fsync_parent(int base_fd, const char *path, const char *base_shown, wk_error *err)
{
    char parent[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return fsync_folder(base_fd, "", base_shown, err);
    if (slash == path)
        return fsync_folder(base_fd, "/", "/", err);
    size_t n = (size_t)(slash - path);
    memcpy(parent, path, n);
    parent[n] = '\0';
    return fsync_folder(base_fd, parent, parent, err);
}

/* mkdir -p path (relative to base_fd, or absolute) with mode 0700; each folder we
 * create has its parent fsync'd so the new entry survives a crash. */
static int make_folders(int base_fd, const char *path, const char *base_shown, wk_error *err)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof(buf))
        return wk_error_sys(err, WK_ERR_IO, ENAMETOOLONG, "could not create folder \"%s\"", path);
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    for (size_t i = 1; i <= len; i++) {
        if (i < len && (buf[i] != '/' || buf[i - 1] == '/'))
            continue;
        buf[i] = '\0';
        if (mkdirat(base_fd, buf, 0700) == 0) {
            if (fsync_parent(base_fd, buf, base_shown, err) != 0)
                return -1;
        } else if (errno != EEXIST) {
            return wk_error_sys(err, WK_ERR_IO, errno, "could not create folder \"%s\"", buf);
        }
        if (i < len)
            buf[i] = '/';
    }
    return 0;
}

static int rename_noreplace(int dir_fd, const char *from, const char *to)
{
#if defined(__linux__) && defined(SYS_renameat2) && !defined(WK_STORAGE_NO_RENAMEAT2)
    return (int)syscall(SYS_renameat2, dir_fd, from, dir_fd, to, RENAME_NOREPLACE);
#else
    /* WK_STORAGE_NO_RENAMEAT2 also lets the tests exercise the link() fallback. */
    (void)dir_fd;
    (void)from;
    (void)to;
    errno = ENOSYS;
    return -1;
#endif
}

/* ---- POSIX driver ----------------------------------------------------------------- */

typedef struct posix_storage {
    wk_storage base;
    int root_fd;
    char *root; /* as given, for messages */
} posix_storage;

/* The folder part of a repository path is shown as is; the root by its own name. */
static const char *shown_folder(const posix_storage *st, const char *dir)
{
    return dir[0] != '\0' ? dir : st->root;
}

/* How a failed read of the repository is reported: absent, worth retrying (a
 * network file system timing out or losing a handle), or broken. */
static wk_errcode read_error_code(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return WK_ERR_NOTFOUND;
    case ETIMEDOUT:
    case ESTALE:
    case EAGAIN:
    case EBUSY:
    case ENOLCK:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case ENETDOWN:
    case ENETUNREACH:
    case ECONNRESET:
        return WK_ERR_TRANSIENT;
    default:
        return WK_ERR_IO;
    }
}

/* Copies the folder part of path into dir ("" when path is directly in the root). */
static void folder_of(const char *path, char dir[WK_STORAGE_PATH_MAX])
{
    const char *slash = strrchr(path, '/');
    size_t n = slash != NULL ? (size_t)(slash - path) : 0;
    memcpy(dir, path, n);
    dir[n] = '\0';
}

typedef struct posix_sink {
    wk_stage base;
    int dir_fd; /* the folder holding the object */
    int fd;     /* the temporary, -1 once closed */
    int flags;
    bool tmp_exists;    /* the temporary is on disk and ours to remove */
    bool finished;      /* the object is in place and durable */
    char *path;         /* final path relative to the root, for messages */
    const char *name;   /* final name inside the folder (points into path) */
    char *folder_shown; /* the folder, for messages */
    char tmp_name[NAME_MAX + 1];
} posix_sink;

static atomic_uint tmp_counter;

/* Gives up the write: closes and removes the temporary. */
static void sink_discard(posix_sink *ps)
{
    if (ps->fd >= 0) {
        close(ps->fd);
        ps->fd = -1;
    }
    if (ps->tmp_exists) {
        unlinkat(ps->dir_fd, ps->tmp_name, 0);
        ps->tmp_exists = false;
    }
}

static int sink_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    posix_sink *ps = (posix_sink *)stage;
    const unsigned char *p = buf;
    if (ps->fd < 0)
        return wk_error_set(err, WK_ERR_INTERNAL, "could not write file \"%s\": writer is closed",
                            ps->path);
    while (len > 0) {
        ssize_t n = write(ps->fd, p, len);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            /* write(2) returning 0 for a non-empty buffer can only mean a full disk. */
            int e = n < 0 ? errno : ENOSPC;
            sink_discard(ps);
            return wk_error_sys(err, WK_ERR_IO, e, "could not write file \"%s\"", ps->path);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Moves the closed temporary to the final name; on success the temporary is gone. */
static int sink_commit(posix_sink *ps, wk_error *err)
{
    if (!(ps->flags & WK_PUT_NOREPLACE)) {
        if (renameat(ps->dir_fd, ps->tmp_name, ps->dir_fd, ps->name) != 0)
            return wk_error_sys(err, WK_ERR_IO, errno, "could not rename temporary file to \"%s\"",
                                ps->path);
        ps->tmp_exists = false;
        return 0;
    }
    if (rename_noreplace(ps->dir_fd, ps->tmp_name, ps->name) == 0) {
        ps->tmp_exists = false;
        return 0;
    }
    if (errno == EEXIST)
        return wk_error_set(err, WK_ERR_EXISTS, "file \"%s\" already exists", ps->path);
    if (errno != EINVAL && errno != ENOSYS)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not rename temporary file to \"%s\"",
                            ps->path);
    /* No renameat2 here (old kernel or file system): link() never replaces either. */
    if (linkat(ps->dir_fd, ps->tmp_name, ps->dir_fd, ps->name, 0) != 0) {
        if (errno == EEXIST)
            return wk_error_set(err, WK_ERR_EXISTS, "file \"%s\" already exists", ps->path);
        return wk_error_sys(err, WK_ERR_IO, errno, "could not link temporary file to \"%s\"",
                            ps->path);
    }
    if (unlinkat(ps->dir_fd, ps->tmp_name, 0) != 0) {
        int e = errno;
        /* The name did not exist before our link, so what is there is ours to take back. */
        unlinkat(ps->dir_fd, ps->name, 0);
        return wk_error_sys(err, WK_ERR_IO, e, "could not remove temporary file of \"%s\"",
                            ps->path);
    }
    ps->tmp_exists = false;
    return 0;
}

static int sink_finish(wk_stage *stage, wk_error *err)
{
    posix_sink *ps = (posix_sink *)stage;
    if (ps->finished)
        return 0;
    if (ps->fd < 0)
        return wk_error_set(err, WK_ERR_INTERNAL, "could not finish file \"%s\": writer is closed",
                            ps->path);
    bool sync = !(ps->flags & WK_PUT_NOSYNC);
    if (sync && fsync(ps->fd) != 0) {
        int e = errno;
        sink_discard(ps);
        return wk_error_sys(err, WK_ERR_IO, e, "could not fsync file \"%s\"", ps->path);
    }
    int fd = ps->fd;
    ps->fd = -1;
    if (close(fd) != 0) {
        int e = errno;
        sink_discard(ps);
        return wk_error_sys(err, WK_ERR_IO, e, "could not close file \"%s\"", ps->path);
    }
    if (sink_commit(ps, err) != 0) {
        sink_discard(ps);
        return -1;
    }
    if (sync && fsync(ps->dir_fd) != 0 && errno != EINVAL) {
        int e = errno;
        /* Not durable, so not done: take the object back rather than leave it to chance. */
        unlinkat(ps->dir_fd, ps->name, 0);
        return wk_error_sys(err, WK_ERR_IO, e, "could not fsync folder \"%s\"", ps->folder_shown);
    }
    ps->finished = true;
    return 0;
}

static void sink_free(wk_stage *stage)
{
    posix_sink *ps = (posix_sink *)stage;
    if (ps == NULL)
        return;
    sink_discard(ps);
    if (ps->dir_fd >= 0)
        close(ps->dir_fd);
    free(ps->path);
    free(ps->folder_shown);
    free(ps);
}

static const wk_stage_ops sink_ops = {sink_write, sink_finish, sink_free};

/* Opens the folder dir (relative to the root), creating it when missing. */
static int open_folder_for_put(posix_storage *st, const char *dir, int *out, wk_error *err)
{
    const char *rel = dir[0] != '\0' ? dir : ".";
    int fd = openat(st->root_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (make_folders(st->root_fd, dir, st->root, err) != 0)
            return -1;
        fd = openat(st->root_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (fd < 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not open folder \"%s\"",
                            shown_folder(st, dir));
    *out = fd;
    return 0;
}

static int posix_put_open(wk_storage *base, const char *path, int flags, wk_stage **sink,
                          wk_error *err)
{
    posix_storage *st = (posix_storage *)base;
    posix_sink *ps = NULL;
    char dir[WK_STORAGE_PATH_MAX];
    int rc = -1;

    if (wk_storage_check_path(path, err) != 0)
        return -1;
    if ((flags & ~(WK_PUT_NOREPLACE | WK_PUT_NOSYNC)) != 0)
        return wk_error_set(err, WK_ERR_INTERNAL, "invalid flags 0x%x for \"%s\"", flags, path);
    folder_of(path, dir);

    ps = calloc(1, sizeof(*ps));
    if (ps == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    ps->base.ops = &sink_ops;
    ps->dir_fd = -1;
    ps->fd = -1;
    ps->flags = flags;
    ps->path = strdup(path);
    ps->folder_shown = strdup(shown_folder(st, dir));
    if (ps->path == NULL || ps->folder_shown == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    ps->name = dir[0] != '\0' ? ps->path + strlen(dir) + 1 : ps->path;

    if (open_folder_for_put(st, dir, &ps->dir_fd, err) != 0)
        goto out;

    /* Hidden (leading '.') and marked ".tmp." so list never shows it; pid and counter keep
     * concurrent writers apart, and a leftover of a crashed process only costs a retry. */
    for (int attempt = 0;; attempt++) {
        unsigned n = atomic_fetch_add(&tmp_counter, 1);
        snprintf(ps->tmp_name, sizeof(ps->tmp_name), ".%.*s.tmp.%ld.%u", TMP_NAME_KEEP, ps->name,
                 (long)getpid(), n);
        ps->fd = openat(ps->dir_fd, ps->tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (ps->fd >= 0)
            break;
        if (errno == EEXIST && attempt < 100)
            continue;
        wk_error_sys(err, WK_ERR_IO, errno, "could not create temporary file for \"%s\"", path);
        goto out;
    }
    ps->tmp_exists = true;

    *sink = &ps->base;
    ps = NULL;
    rc = 0;
out:
    sink_free(ps == NULL ? NULL : &ps->base);
    return rc;
}

static int posix_get(wk_storage *base, const char *path, wk_stage *dest, wk_error *err)
{
    posix_storage *st = (posix_storage *)base;
    unsigned char *buf = NULL;
    int fd = -1;
    int rc = -1;

    if (wk_storage_check_path(path, err) != 0)
        return -1;
    /* An object is a regular file walkeep wrote: never a symbolic link (to anything) nor a
     * FIFO someone put at its name. */
    fd = openat(st->root_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            wk_error_set(err, WK_ERR_CORRUPT, "\"%s\" is a symbolic link, not an object", path);
        else
            wk_error_sys(err, read_error_code(e), e, "could not open file \"%s\"", path);
        goto out;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        wk_error_set(err, WK_ERR_IO, "could not read \"%s\": not a regular file", path);
        goto out;
    }
    buf = malloc(WK_STREAM_BUFSIZE);
    if (buf == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, WK_STREAM_BUFSIZE);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            wk_error_sys(err,
                         read_error_code(errno) == WK_ERR_TRANSIENT ? WK_ERR_TRANSIENT : WK_ERR_IO,
                         errno, "could not read file \"%s\"", path);
            goto out;
        }
        if (n == 0)
            break;
        if (wk_stage_write(dest, buf, (size_t)n, err) != 0)
            goto out;
    }
    rc = 0;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int posix_stat(wk_storage *base, const char *path, wk_storage_info *out, wk_error *err)
{
    posix_storage *st = (posix_storage *)base;
    struct stat sb;

    if (wk_storage_check_path(path, err) != 0)
        return -1;
    if (fstatat(st->root_fd, path, &sb, 0) != 0) {
        int e = errno;
        return wk_error_sys(err, read_error_code(e), e, "could not stat file \"%s\"", path);
    }
    if (S_ISDIR(sb.st_mode))
        return wk_error_sys(err, WK_ERR_IO, EISDIR, "could not stat file \"%s\"", path);
    out->size = (uint64_t)sb.st_size;
    return 0;
}

static int posix_list(wk_storage *base, const char *dir, const char *prefix, wk_storage_list_cb cb,
                      void *arg, wk_error *err)
{
    posix_storage *st = (posix_storage *)base;
    DIR *d = NULL;
    int fd = -1;
    int rc = -1;

    if (dir[0] != '\0' && wk_storage_check_path(dir, err) != 0)
        return -1;
    if (prefix == NULL)
        prefix = "";
    size_t prefix_len = strlen(prefix);

    fd = openat(st->root_fd, dir[0] != '\0' ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return wk_error_sys(err, read_error_code(errno), errno, "could not open folder \"%s\"",
                            shown_folder(st, dir));
    }
    d = fdopendir(fd);
    if (d == NULL) {
        wk_error_sys(err, WK_ERR_IO, errno, "could not open folder \"%s\"", shown_folder(st, dir));
        goto out;
    }
    fd = -1; /* owned by d now */

    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                wk_error_sys(err, read_error_code(errno), errno, "could not read folder \"%s\"",
                             shown_folder(st, dir));
                goto out;
            }
            break;
        }
        const char *name = de->d_name;
        /* Skips ".", "..", temporaries of unfinished writes and other hidden files. */
        if (name[0] == '.' || strncmp(name, prefix, prefix_len) != 0)
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) /* removed while we were listing */
                continue;
            wk_error_sys(err, WK_ERR_IO, errno, "could not stat file \"%s%s%s\"", dir,
                         dir[0] != '\0' ? "/" : "", name);
            goto out;
        }
        bool is_dir = S_ISDIR(sb.st_mode);
        if (cb(name, is_dir, is_dir ? 0 : (uint64_t)sb.st_size, arg) != 0)
            break;
    }
    rc = 0;
out:
    if (d != NULL)
        closedir(d);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int posix_remove(wk_storage *base, const char *path, wk_error *err)
{
    posix_storage *st = (posix_storage *)base;
    char dir[WK_STORAGE_PATH_MAX];

    if (wk_storage_check_path(path, err) != 0)
        return -1;
    if (unlinkat(st->root_fd, path, 0) != 0) {
        int e = errno;
        struct stat sb;
        if (e == ENOENT || e == ENOTDIR)
            return 0;
        /* Linux says EISDIR for a folder, POSIX EPERM: an empty folder may go too. */
        if ((e == EISDIR || e == EPERM) &&
            fstatat(st->root_fd, path, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode)) {
            if (unlinkat(st->root_fd, path, AT_REMOVEDIR) != 0) {
                if (errno == ENOENT)
                    return 0;
                return wk_error_sys(err, WK_ERR_IO, errno, "could not remove folder \"%s\"", path);
            }
        } else {
            return wk_error_sys(err, WK_ERR_IO, e, "could not remove file \"%s\"", path);
        }
    }
    folder_of(path, dir);
    return fsync_folder(st->root_fd, dir, shown_folder(st, dir), err);
}

static void posix_free(wk_storage *base)
{
    posix_storage *st = (posix_storage *)base;
    if (st == NULL)
        return;
    if (st->root_fd >= 0)
        close(st->root_fd);
    free(st->root);
    free(st);
}

/* Opens folder dir of the repository ("" for the root) into *fd: 0, 1 when it does not
 * exist (nothing to do), -1 on error. */
static int open_folder(posix_storage *st, const char *dir, int *fd, wk_error *err)
{
    if (dir[0] != '\0' && wk_storage_check_path(dir, err) != 0)
        return -1;
    *fd = openat(st->root_fd, dir[0] != '\0' ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd >= 0)
        return 0;
    if (errno == ENOENT || errno == ENOTDIR)
        return 1;
    return wk_error_sys(err, read_error_code(errno), errno, "could not open folder \"%s\"",
                        shown_folder(st, dir));
}

/* Our own temporaries: ".<name>.tmp.<pid>.<n>". */
static bool is_temporary_name(const char *name)
{
    return name[0] == '.' && strstr(name, ".tmp.") != NULL;
}

/* Removes the temporaries of folder dir that stale() says no live writer owns. */
static int remove_stale(posix_storage *st, const char *dir,
                        bool (*stale)(int dir_fd, const char *name, void *arg), void *arg,
                        uint64_t *removed, wk_error *err)
{
    int fd, opened = open_folder(st, dir, &fd, err);
    if (opened != 0)
        return opened < 0 ? -1 : 0;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return wk_error_sys(err, WK_ERR_IO, errno, "could not open folder \"%s\"",
                            shown_folder(st, dir));
    }
    for (struct dirent *de = readdir(d); de != NULL; de = readdir(d)) {
        if (!is_temporary_name(de->d_name) || !stale(dirfd(d), de->d_name, arg))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0 && removed != NULL)
            (*removed)++;
    }
    closedir(d);
    return 0;
}

/* Untouched since *limit: whoever wrote it is long gone. */
static bool older_than(int dir_fd, const char *name, void *arg)
{
    struct stat sb;
    return fstatat(dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode) &&
           sb.st_mtime <= *(const time_t *)arg;
}

/* ".<name>.tmp.<pid>.<n>" whose pid no longer runs. */
static bool writer_gone(int dir_fd, const char *name, void *arg)
{
    (void)dir_fd;
    (void)arg;
    char *end;
    long pid = strtol(strstr(name, ".tmp.") + 5, &end, 10);
    return *end == '.' && wk_proc_is_gone(pid);
}

static int posix_clean_temporaries(wk_storage *base, const char *dir, int64_t max_age_seconds,
                                   uint64_t *removed, wk_error *err)
{
    time_t limit = time(NULL) - (time_t)max_age_seconds;
    return remove_stale((posix_storage *)base, dir, older_than, &limit, removed, err);
}

int wk_storage_posix_clean_dead_writers(wk_storage *base, const char *dir, uint64_t *removed,
                                        wk_error *err)
{
    return remove_stale((posix_storage *)base, dir, writer_gone, NULL, removed, err);
}

#define TEMP_WALK_DEPTH 6

/* Calls cb for each temporary below the folder dir_fd (named rel), recursing into
 * visible folders; takes dir_fd. Returns -1 (err set), 0, or 1 when cb stopped. */
static int walk_temporaries(int dir_fd, const char *rel, int depth, wk_storage_temp_cb cb,
                            void *arg, wk_error *err)
{
    DIR *d = fdopendir(dir_fd);
    if (d == NULL) {
        int e = errno;
        close(dir_fd);
        return wk_error_sys(err, WK_ERR_IO, e, "could not open folder \"%s\"", rel);
    }
    int rc = 0;
    time_t now = time(NULL);
    while (rc == 0) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (de == NULL) {
            if (errno != 0)
                rc = wk_error_sys(err, WK_ERR_IO, errno, "could not read folder \"%s\"", rel);
            break;
        }
        const char *name = de->d_name;
        char path[WK_STORAGE_PATH_MAX];
        struct stat sb;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
            fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* removed meanwhile */
        snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] != '\0' ? "/" : "", name);
        if (is_temporary_name(name) && S_ISREG(sb.st_mode)) {
            rc = cb(path, (uint64_t)sb.st_size, (int64_t)(now - sb.st_mtime), arg) != 0 ? 1 : 0;
            continue;
        }
        if (!S_ISDIR(sb.st_mode) || name[0] == '.' || depth >= TEMP_WALK_DEPTH)
            continue;
        int fd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            rc = walk_temporaries(fd, path, depth + 1, cb, arg, err);
    }
    closedir(d);
    return rc;
}

static int posix_list_temporaries(wk_storage *base, const char *dir, wk_storage_temp_cb cb,
                                  void *arg, wk_error *err)
{
    posix_storage *st = (posix_storage *)base;
    int fd, opened = open_folder(st, dir, &fd, err);
    if (opened != 0)
        return opened < 0 ? -1 : 0;
    return walk_temporaries(fd, dir, 0, cb, arg, err) < 0 ? -1 : 0;
}

/* A sink from posix_put_open commits by renaming its temporary; the final name can
 * change until then, within the folder the temporary lives in. */
static int posix_retarget(wk_storage *base, wk_stage *sink, const char *path, wk_error *err)
{
    (void)base;
    posix_sink *ps = (posix_sink *)sink;
    char old_dir[WK_STORAGE_PATH_MAX], new_dir[WK_STORAGE_PATH_MAX];
    if (wk_storage_check_path(path, err) != 0)
        return -1;
    folder_of(ps->path, old_dir);
    folder_of(path, new_dir);
    if (strcmp(old_dir, new_dir) != 0)
        return wk_error_set(err, WK_ERR_INTERNAL, "cannot move \"%s\" to another folder (\"%s\")",
                            ps->path, path);
    char *copy = strdup(path);
    if (copy == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    free(ps->path);
    ps->path = copy;
    ps->name = new_dir[0] != '\0' ? ps->path + strlen(new_dir) + 1 : ps->path;
    return 0;
}

static const wk_storage_ops posix_ops = {
    .put_open = posix_put_open,
    .get = posix_get,
    .stat = posix_stat,
    .list = posix_list,
    .remove = posix_remove,
    .free = posix_free,
    .retarget = posix_retarget,
    .clean_temporaries = posix_clean_temporaries,
    .list_temporaries = posix_list_temporaries,
};

int wk_storage_posix_open(const char *root, bool create, wk_storage **out, wk_error *err)
{
    posix_storage *st = NULL;
    int rc = -1;

    if (root == NULL || root[0] == '\0')
        return wk_error_set(err, WK_ERR_USAGE, "repository folder is not set");
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    st->base.ops = &posix_ops;
    st->root_fd = -1;
    st->root = strdup(root);
    if (st->root == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }

    st->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->root_fd < 0 && errno == ENOENT && create) {
        if (make_folders(AT_FDCWD, root, ".", err) != 0)
            goto out;
        st->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (st->root_fd < 0) {
        if (errno == ENOENT)
            wk_error_set(err, WK_ERR_NOTFOUND, "repository folder \"%s\" does not exist", root);
        else
            wk_error_sys(err, WK_ERR_IO, errno, "could not open repository folder \"%s\"", root);
        goto out;
    }

    *out = &st->base;
    st = NULL;
    rc = 0;
out:
    posix_free(st == NULL ? NULL : &st->base);
    return rc;
}
