/* tar: extracts a tar stream into a folder one 512-byte header at a time; every path is
 * resolved below the destination folder's descriptor, component by component, with O_NOFOLLOW. */
#include "tar.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 512

/* Header fields (offset, length) used here, as in POSIX ustar. */
#define H_NAME 0
#define H_NAME_LEN 100
#define H_MTIME 136
#define H_MTIME_LEN 12
#define H_SIZE 124
#define H_SIZE_LEN 12
#define H_CHKSUM 148
#define H_CHKSUM_LEN 8
#define H_TYPE 156
#define H_LINK 157
#define H_LINK_LEN 100
#define H_MAGIC 257
#define H_PREFIX 345
#define H_PREFIX_LEN 155

typedef enum tar_state {
    ST_HEADER, /* collecting a header block into hdr */
    ST_DATA,   /* a regular file's data, written to file_fd */
    ST_META,   /* a long name, long link or pax header's data, collected into meta */
    ST_SKIP,   /* bytes nobody needs: block padding, data of ignored entries */
    ST_END,    /* after the two end-of-archive blocks: only zeros may follow */
    ST_FAILED,
    ST_FINISHED
} tar_state;

typedef enum entry_kind { KIND_FILE, KIND_DIR, KIND_SYMLINK } entry_kind;

typedef struct tar_stage {
    wk_stage base;
    tar_state state;
    int dest_fd;
    uint64_t *bytes_written; /* may be NULL */
    uint64_t *files;         /* may be NULL */
    bool delta;              /* see wk_tar_options */
    uint64_t *bytes_kept;    /* may be NULL */
    int (*seen)(const char *path, void *arg);
    void *seen_arg;
    uint8_t *compare;       /* delta: what dest holds where data is about to go */
    uint64_t pos;           /* stream bytes consumed so far */
    uint64_t header_offset; /* where the last non-zero header started */

    uint8_t hdr[BLOCK];
    size_t hdr_used;
    int zero_blocks;    /* consecutive all-zero header blocks */
    uint64_t remaining; /* bytes left in the current ST_DATA / ST_META / ST_SKIP part */
    uint64_t padding;   /* block padding to skip after ST_DATA or ST_META */

    /* The extended header being collected ('L', 'K' or 'x'). */
    char meta_type;
    char *meta;
    size_t meta_used;

    /* What extended headers said about the next entry; NULL / false when nothing. */
    char *long_name;
    char *long_link;
    char *pax_path;
    char *pax_link;
    bool pax_size_set;
    uint64_t pax_size;

    /* The regular file being written. */
    int file_fd;
    uint64_t file_offset;    /* bytes written to it so far */
    uint64_t writeback_done; /* writeback started up to here */
    char *file_path;
    bool has_mtime;
    struct timespec mtime;

    /* The folder the last entry went into (relative to dest), kept open. */
    char *parent_path;
    int parent_fd;
} tar_stage;

/* ---- helpers -------------------------------------------------------------------- */

/* Copies name into out for a message: control bytes escaped, long names cut. */
static const char *shown(const char *name, char *out, size_t size)
{
    size_t used = 0;
    const unsigned char *p = (const unsigned char *)name;
    for (; *p != '\0' && used + 8 < size; p++) {
        if (*p < 0x20 || *p == 0x7f)
            used += (size_t)snprintf(out + used, size - used, "\\x%02x", *p);
        else
            out[used++] = (char)*p;
    }
    if (*p != '\0')
        used += (size_t)snprintf(out + used, size - used, "...");
    out[used] = '\0';
    return out;
}

static uint64_t block_padding(uint64_t size)
{
    return (BLOCK - size % BLOCK) % BLOCK;
}

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0)
            return false;
    }
    return true;
}

/* A numeric header field: octal digits (after optional spaces, ended by NUL or space
 * or by the end of the field; an empty field is 0) or GNU base-256 (high bit of the
 * first byte set). Fails on anything else, on negative numbers and above INT64_MAX. */
static int parse_number(const uint8_t *field, size_t len, uint64_t *out)
{
    uint64_t value = 0;
    size_t i = 0;
    if (field[0] & 0x80) {
        if (field[0] & 0x40)
            return -1;
        value = field[0] & 0x3f;
        for (i = 1; i < len; i++) {
            if (value > (INT64_MAX >> 8))
                return -1;
            value = value << 8 | field[i];
        }
    } else {
        while (i < len && field[i] == ' ')
            i++;
        /* At most 12 octal digits: 36 bits, no overflow. */
        for (; i < len && field[i] >= '0' && field[i] <= '7'; i++)
            value = value << 3 | (uint64_t)(field[i] - '0');
        for (; i < len; i++) {
            if (field[i] != ' ' && field[i] != '\0')
                return -1;
        }
    }
    if (value > INT64_MAX)
        return -1;
    *out = value;
    return 0;
}

/* The stored checksum must equal the sum of the header's bytes with the checksum field
 * read as spaces; old writers summed signed chars, so that sum is accepted too. */
static bool checksum_ok(const uint8_t *h)
{
    uint64_t stored;
    uint64_t usum = 0;
    int64_t ssum = 0;
    if ((h[H_CHKSUM] & 0x80) || parse_number(h + H_CHKSUM, H_CHKSUM_LEN, &stored) != 0)
        return false;
    for (size_t i = 0; i < BLOCK; i++) {
        uint8_t b = (i >= H_CHKSUM && i < H_CHKSUM + H_CHKSUM_LEN) ? (uint8_t)' ' : h[i];
        usum += b;
        ssum += (int8_t)b;
    }
    return stored == usum || (ssum >= 0 && stored == (uint64_t)ssum);
}

static char *dup_bytes(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Replaces *slot with a copy of p[0..n) (n == 0 and unset_empty: clears it). */
static int set_string(char **slot, const char *p, size_t n, bool unset_empty, wk_error *err)
{
    char *s = NULL;
    if (n > 0 || !unset_empty) {
        s = dup_bytes(p, n);
        if (s == NULL)
            return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    }
    free(*slot);
    *slot = s;
    return 0;
}

static bool has_pending(const tar_stage *ts)
{
    return ts->long_name != NULL || ts->long_link != NULL || ts->pax_path != NULL ||
           ts->pax_link != NULL || ts->pax_size_set;
}

static void clear_pending(tar_stage *ts)
{
    free(ts->long_name);
    free(ts->long_link);
    free(ts->pax_path);
    free(ts->pax_link);
    ts->long_name = NULL;
    ts->long_link = NULL;
    ts->pax_path = NULL;
    ts->pax_link = NULL;
    ts->pax_size_set = false;
}

static int unsafe_path(const char *raw, const char *why, wk_error *err)
{
    char buf[256];
    wk_error_set(err, WK_ERR_CORRUPT, "unsafe path in tar entry \"%s\"",
                 shown(raw, buf, sizeof(buf)));
    wk_error_detail(err, "%s", why);
    return -1;
}

/* Checks an entry name and rewrites it without "." or empty components into a malloc'd
 * *out: "./a//b/" becomes "a/b", "./" becomes "". */
static int normalise(const char *raw, char **out, wk_error *err)
{
    size_t len = strlen(raw);
    size_t used = 0;
    const char *c = raw;
    char *path;
    if (len == 0)
        return unsafe_path(raw, "The name is empty.", err);
    if (raw[0] == '/')
        return unsafe_path(raw, "The name is absolute.", err);
    path = malloc(len + 1);
    if (path == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    while (*c != '\0') {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.') {
            free(path);
            return unsafe_path(raw, "The name has a \"..\" component.", err);
        }
        if (n > 0 && !(n == 1 && c[0] == '.')) {
            if (used > 0)
                path[used++] = '/';
            memcpy(path + used, c, n);
            used += n;
        }
        c += n;
        if (*c == '/')
            c++;
    }
    path[used] = '\0';
    *out = path;
    return 0;
}

/* Opens folder name in at_fd without following a symbolic link, creating it (0700)
 * when missing. rel names it relative to dest, entry is the entry being extracted. */
static int open_folder(int at_fd, const char *name, const char *rel, const char *entry,
                       wk_error *err)
{
    for (int attempt = 0;; attempt++) {
        int fd = openat(at_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            return fd;
        int e = errno;
        if (e == ENOENT && attempt == 0) {
            if (mkdirat(at_fd, name, 0700) != 0 && errno != EEXIST)
                return wk_error_sys(err, WK_ERR_IO, errno, "could not create folder \"%s\"", rel);
            continue;
        }
        if (e == ELOOP || e == ENOTDIR) {
            struct stat sb;
            if (fstatat(at_fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode)) {
                char buf[256];
                unsafe_path(entry, "", err);
                wk_error_detail(err, "\"%s\" is a symbolic link.", shown(rel, buf, sizeof(buf)));
                return -1;
            }
        }
        return wk_error_sys(err, WK_ERR_IO, e, "could not open folder \"%s\"", rel);
    }
}

/* Finds the folder a normalised, non-empty path goes into: *dir_fd (borrowed: dest or
 * the cached parent) and *leaf, the last component. Missing folders are created. */
static int open_parent(tar_stage *ts, const char *path, int *dir_fd, const char **leaf,
                       wk_error *err)
{
    const char *slash = strrchr(path, '/');
    size_t n;
    char *dir = NULL;
    int fd = ts->dest_fd;
    int rc = -1;
    if (slash == NULL) {
        *dir_fd = ts->dest_fd;
        *leaf = path;
        return 0;
    }
    n = (size_t)(slash - path);
    if (ts->parent_path != NULL && strlen(ts->parent_path) == n &&
        memcmp(ts->parent_path, path, n) == 0) {
        *dir_fd = ts->parent_fd;
        *leaf = slash + 1;
        return 0;
    }
    dir = dup_bytes(path, n);
    if (dir == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Walk dir one component at a time; cutting it after the current component
     * makes dir itself the folder's name for messages. */
    for (char *c = dir; *c != '\0';) {
        char *end = strchr(c, '/');
        if (end != NULL)
            *end = '\0';
        int next = open_folder(fd, c, dir, path, err);
        if (fd != ts->dest_fd)
            close(fd);
        fd = next;
        if (fd < 0)
            goto out;
        if (end == NULL)
            break;
        *end = '/';
        c = end + 1;
    }
    if (ts->parent_fd >= 0)
        close(ts->parent_fd);
    free(ts->parent_path);
    ts->parent_fd = fd;
    ts->parent_path = dir;
    dir = NULL;
    *dir_fd = fd;
    *leaf = slash + 1;
    rc = 0;
out:
    if (rc != 0 && fd >= 0 && fd != ts->dest_fd)
        close(fd);
    free(dir);
    return rc;
}

/* ---- entries -------------------------------------------------------------------- */

static int create_folder(tar_stage *ts, const char *path, wk_error *err)
{
    int dir_fd;
    const char *leaf;
    struct stat sb;
    if (path[0] == '\0') /* "./": dest itself */
        return 0;
    if (open_parent(ts, path, &dir_fd, &leaf, err) != 0)
        return -1;
    if (mkdirat(dir_fd, leaf, 0700) == 0)
        return 0;
    int e = errno;
    if (e != EEXIST)
        return wk_error_sys(err, WK_ERR_IO, e, "could not create folder \"%s\"", path);
    if (fstatat(dir_fd, leaf, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not stat \"%s\"", path);
    if (S_ISDIR(sb.st_mode))
        return 0;    /* folders may repeat */
    if (ts->delta) { /* an older copy's file or link where the folder goes */
        if (unlinkat(dir_fd, leaf, 0) != 0 || mkdirat(dir_fd, leaf, 0700) != 0)
            return wk_error_sys(err, WK_ERR_IO, errno, "could not replace \"%s\" by a folder",
                                path);
        return 0;
    }
    if (S_ISLNK(sb.st_mode))
        return unsafe_path(path, "A symbolic link of that name exists.", err);
    return wk_error_sys(err, WK_ERR_EXISTS, e, "could not create folder \"%s\"", path);
}

/* Delta mode: makes room for a file or link named leaf, keeping a link that already
 * points to target (then *keep). A folder in the way is an error: the stream and the
 * copy disagree on what the path is, and walkeep removes no tree in passing. */
static int make_room(int dir_fd, const char *leaf, const char *path, const char *target, bool *keep,
                     wk_error *err)
{
    struct stat sb;
    char old[4096];
    *keep = false;
    if (fstatat(dir_fd, leaf, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0
                               : wk_error_sys(err, WK_ERR_IO, errno, "could not stat \"%s\"", path);
    if (S_ISDIR(sb.st_mode))
        return wk_error_set(err, WK_ERR_EXISTS,
                            "\"%s\" is a folder in the data directory, a %s "
                            "in the backup",
                            path, target != NULL ? "symbolic link" : "file");
    if (S_ISREG(sb.st_mode) && target == NULL && sb.st_nlink == 1)
        return 0; /* compared and overwritten in place (a hard-linked file is replaced
                   * instead: writing into it would change its other names too) */
    if (S_ISLNK(sb.st_mode) && target != NULL) {
        ssize_t n = readlinkat(dir_fd, leaf, old, sizeof(old) - 1);
        if (n >= 0) {
            old[n] = '\0';
            *keep = strcmp(old, target) == 0;
        }
        if (*keep)
            return 0;
    }
    if (unlinkat(dir_fd, leaf, 0) != 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not remove \"%s\"", path);
    return 0;
}

static int create_symlink(tar_stage *ts, const char *path, const char *target, wk_error *err)
{
    int dir_fd;
    const char *leaf;
    char buf[256];
    if (target[0] == '\0') {
        wk_error_set(err, WK_ERR_CORRUPT, "symbolic link \"%s\" in tar stream has an empty target",
                     shown(path, buf, sizeof(buf)));
        return -1;
    }
    if (open_parent(ts, path, &dir_fd, &leaf, err) != 0)
        return -1;
    bool keep = false;
    if (ts->delta && make_room(dir_fd, leaf, path, target, &keep, err) != 0)
        return -1;
    if (!keep && symlinkat(target, dir_fd, leaf) != 0) {
        int e = errno;
        return wk_error_sys(err, e == EEXIST ? WK_ERR_EXISTS : WK_ERR_IO, e,
                            "could not create symbolic link \"%s\"", path);
    }
    return 0;
}

static int create_file(tar_stage *ts, const char *path, wk_error *err)
{
    int dir_fd;
    const char *leaf;
    uint64_t mtime;
    if (open_parent(ts, path, &dir_fd, &leaf, err) != 0)
        return -1;
    ts->file_path = dup_bytes(path, strlen(path));
    if (ts->file_path == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    bool keep;
    if (ts->delta && make_room(dir_fd, leaf, path, NULL, &keep, err) != 0)
        return -1;
    ts->file_fd =
        openat(dir_fd, leaf,
               (ts->delta ? O_RDWR : O_WRONLY | O_EXCL) | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (ts->file_fd < 0) {
        int e = errno;
        return wk_error_sys(err, e == EEXIST ? WK_ERR_EXISTS : WK_ERR_IO, e,
                            "could not create file \"%s\"", path);
    }
    if (ts->files != NULL)
        (*ts->files)++;
    /* The mtime is a nicety: a field we cannot read is left alone. */
    ts->has_mtime = parse_number(ts->hdr + H_MTIME, H_MTIME_LEN, &mtime) == 0 &&
                    (sizeof(time_t) >= 8 || mtime <= INT32_MAX);
    if (ts->has_mtime) {
        ts->mtime.tv_sec = (time_t)mtime;
        ts->mtime.tv_nsec = 0;
    }
    return 0;
}

static void start_writeback(tar_stage *ts);

static int close_file(tar_stage *ts, wk_error *err)
{
    int rc = 0;
    /* Delta: an older copy's longer file ends where the entry does; mode as created. */
    if (ts->delta &&
        (ftruncate(ts->file_fd, (off_t)ts->file_offset) != 0 || fchmod(ts->file_fd, 0600) != 0))
        rc = wk_error_sys(err, WK_ERR_IO, errno, "could not cut file \"%s\"", ts->file_path);
    start_writeback(ts);
    ts->file_offset = ts->writeback_done = 0;
    if (ts->has_mtime) {
        struct timespec times[2] = {{0, UTIME_OMIT}, ts->mtime};
        (void)futimens(ts->file_fd, times);
    }
    if (close(ts->file_fd) != 0 && errno != EINTR)
        rc = wk_error_sys(err, WK_ERR_IO, errno, "could not close file \"%s\"", ts->file_path);
    ts->file_fd = -1;
    free(ts->file_path);
    ts->file_path = NULL;
    return rc;
}

static const char *type_name(char type)
{
    switch (type) {
    case '1':
        return "a hard link";
    case '3':
        return "a character device";
    case '4':
        return "a block device";
    case '6':
        return "a FIFO";
    default:
        return NULL;
    }
}

/* A header for something to extract: works out its name, kind and size (extended
 * headers first), creates it, and sets up the state for its data. */
static int start_entry(tar_stage *ts, char type, uint64_t size, wk_error *err)
{
    char header_name[H_PREFIX_LEN + 1 + H_NAME_LEN + 1];
    char header_link[H_LINK_LEN + 1];
    const char *raw;
    const char *link;
    char *path = NULL;
    entry_kind kind;
    int rc = -1;

    if (ts->pax_size_set)
        size = ts->pax_size;
    const char *hname = (const char *)ts->hdr + H_NAME;
    const char *hprefix = (const char *)ts->hdr + H_PREFIX;
    int name_len = (int)strnlen(hname, H_NAME_LEN);
    /* Only POSIX ustar has a prefix; GNU keeps other things in that space. */
    if (memcmp(ts->hdr + H_MAGIC, "ustar\0", 6) == 0 && hprefix[0] != '\0')
        snprintf(header_name, sizeof(header_name), "%.*s/%.*s", (int)strnlen(hprefix, H_PREFIX_LEN),
                 hprefix, name_len, hname);
    else
        snprintf(header_name, sizeof(header_name), "%.*s", name_len, hname);
    snprintf(header_link, sizeof(header_link), "%.*s",
             (int)strnlen((const char *)ts->hdr + H_LINK, H_LINK_LEN),
             (const char *)ts->hdr + H_LINK);
    raw = ts->pax_path != NULL ? ts->pax_path : ts->long_name != NULL ? ts->long_name : header_name;
    link = ts->pax_link != NULL    ? ts->pax_link
           : ts->long_link != NULL ? ts->long_link
                                   : header_link;

    if (type == '0' || type == '\0' || type == '7') {
        size_t n = strlen(raw);
        /* Old writers mark folders with a trailing slash only. */
        kind = n > 0 && raw[n - 1] == '/' ? KIND_DIR : KIND_FILE;
    } else if (type == '5') {
        kind = KIND_DIR;
    } else if (type == '2') {
        kind = KIND_SYMLINK;
    } else {
        char buf[256];
        const char *what = type_name(type);
        wk_error_set(err, WK_ERR_CORRUPT, "unsupported tar entry type");
        if (what != NULL)
            wk_error_detail(err, "Entry \"%s\" at offset %llu is %s.", shown(raw, buf, sizeof(buf)),
                            (unsigned long long)ts->header_offset, what);
        else
            wk_error_detail(err, "Entry \"%s\" at offset %llu has type 0x%02x.",
                            shown(raw, buf, sizeof(buf)), (unsigned long long)ts->header_offset,
                            (unsigned)(uint8_t)type);
        goto out;
    }
    if (normalise(raw, &path, err) != 0)
        goto out;
    if (path[0] == '\0' && kind != KIND_DIR) {
        unsafe_path(raw, "The name refers to the destination folder itself.", err);
        goto out;
    }
    if (ts->seen != NULL && path[0] != '\0' && ts->seen(path, ts->seen_arg) != 0) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }

    switch (kind) {
    case KIND_FILE:
        if (create_file(ts, path, err) != 0)
            goto out;
        ts->state = ST_DATA;
        ts->remaining = size;
        ts->padding = block_padding(size);
        break;
    case KIND_DIR:
    case KIND_SYMLINK:
        if (kind == KIND_DIR)
            rc = create_folder(ts, path, err);
        else
            rc = create_symlink(ts, path, link, err);
        if (rc != 0)
            goto out;
        /* Such entries carry no data; skip whatever a writer put there. */
        ts->state = ST_SKIP;
        ts->remaining = size + block_padding(size);
        break;
    }
    rc = 0;
out:
    clear_pending(ts);
    free(path);
    return rc;
}

/* ---- extended headers ----------------------------------------------------------- */

static int apply_pax(tar_stage *ts, wk_error *err)
{
    const char *buf = ts->meta;
    size_t n = ts->meta_used;
    size_t i = 0;
    while (i < n) {
        /* One record: "<length> <key>=<value>\n", length counting the whole record. */
        size_t j = i;
        size_t len = 0;
        while (j < n && buf[j] >= '0' && buf[j] <= '9') {
            len = len * 10 + (size_t)(buf[j] - '0');
            if (len > n)
                goto bad;
            j++;
        }
        if (j == i || j >= n || buf[j] != ' ' || len > n - i || i + len < j + 2 ||
            buf[i + len - 1] != '\n')
            goto bad;
        const char *key = buf + j + 1;
        const char *end = buf + i + len - 1;
        const char *eq = memchr(key, '=', (size_t)(end - key));
        if (eq == NULL || eq == key)
            goto bad;
        size_t key_len = (size_t)(eq - key);
        const char *value = eq + 1;
        size_t value_len = (size_t)(end - value);
        if ((key_len == 4 && memcmp(key, "path", 4) == 0) ||
            (key_len == 8 && memcmp(key, "linkpath", 8) == 0)) {
            if (memchr(value, '\0', value_len) != NULL)
                goto bad;
            if (set_string(key_len == 4 ? &ts->pax_path : &ts->pax_link, value, value_len, true,
                           err) != 0)
                return -1;
        } else if (key_len == 4 && memcmp(key, "size", 4) == 0) {
            uint64_t size = 0;
            for (size_t k = 0; k < value_len; k++) {
                unsigned d = (unsigned)(value[k] - '0');
                if (d > 9 || size > ((uint64_t)INT64_MAX - d) / 10)
                    goto bad;
                size = size * 10 + d;
            }
            ts->pax_size_set = value_len > 0;
            ts->pax_size = size;
        }
        i += len;
    }
    return 0;
bad:
    return wk_error_set(err, WK_ERR_CORRUPT, "malformed pax extended header at offset %llu",
                        (unsigned long long)ts->header_offset);
}

static int finish_meta(tar_stage *ts, wk_error *err)
{
    int rc;
    if (ts->meta_type == 'x')
        rc = apply_pax(ts, err);
    else
        rc = set_string(ts->meta_type == 'L' ? &ts->long_name : &ts->long_link, ts->meta,
                        strnlen(ts->meta, ts->meta_used), false, err);
    free(ts->meta);
    ts->meta = NULL;
    return rc;
}

/* ---- the stage ------------------------------------------------------------------ */

static int process_header(tar_stage *ts, wk_error *err)
{
    uint64_t at = ts->pos - BLOCK;
    uint64_t size;
    char type = (char)ts->hdr[H_TYPE];
    ts->hdr_used = 0;
    if (all_zero(ts->hdr, BLOCK)) {
        if (has_pending(ts))
            return wk_error_set(err, WK_ERR_CORRUPT,
                                "tar extended header at offset %llu is not followed by an entry",
                                (unsigned long long)ts->header_offset);
        if (++ts->zero_blocks == 2)
            ts->state = ST_END;
        return 0;
    }
    if (ts->zero_blocks != 0)
        return wk_error_set(err, WK_ERR_CORRUPT, "lone zero block in tar stream at offset %llu",
                            (unsigned long long)(at - BLOCK));
    if (!checksum_ok(ts->hdr))
        return wk_error_set(err, WK_ERR_CORRUPT, "tar header checksum mismatch at offset %llu",
                            (unsigned long long)at);
    ts->header_offset = at;
    if (parse_number(ts->hdr + H_SIZE, H_SIZE_LEN, &size) != 0)
        return wk_error_set(err, WK_ERR_CORRUPT, "invalid size in tar header at offset %llu",
                            (unsigned long long)at);
    switch (type) {
    case 'L':
    case 'K':
    case 'x':
        if (size > WK_TAR_META_MAX)
            return wk_error_set(err, WK_ERR_CORRUPT,
                                "tar extended header at offset %llu is too large (%llu bytes)",
                                (unsigned long long)at, (unsigned long long)size);
        ts->meta = malloc((size_t)size + 1);
        if (ts->meta == NULL)
            return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        ts->meta_type = type;
        ts->meta_used = 0;
        ts->state = ST_META;
        ts->remaining = size;
        ts->padding = block_padding(size);
        return 0;
    case 'g':
        ts->state = ST_SKIP;
        ts->remaining = size + block_padding(size);
        return 0;
    default:
        return start_entry(ts, type, size, err);
    }
}

/* Moves on from every part that is complete (including empty ones) until the stage
 * needs more input. */
static int settle(tar_stage *ts, wk_error *err)
{
    for (;;) {
        switch (ts->state) {
        case ST_HEADER:
            if (ts->hdr_used < BLOCK)
                return 0;
            if (process_header(ts, err) != 0)
                return -1;
            break;
        case ST_DATA:
            if (ts->remaining > 0)
                return 0;
            if (close_file(ts, err) != 0)
                return -1;
            ts->state = ST_SKIP;
            ts->remaining = ts->padding;
            break;
        case ST_META:
            if (ts->remaining > 0)
                return 0;
            if (finish_meta(ts, err) != 0)
                return -1;
            ts->state = ST_SKIP;
            ts->remaining = ts->padding;
            break;
        case ST_SKIP:
            if (ts->remaining > 0)
                return 0;
            ts->state = ST_HEADER;
            break;
        default:
            return 0;
        }
    }
}

/* Writeback of a file being extracted is started every WRITEBACK_STEP bytes (and at
 * its end), without waiting: the disk works while the stream is still being decoded,
 * and the caller's final sync has little left to do. */
#define WRITEBACK_STEP (8 * 1024 * 1024)
/* Delta mode compares what the copy holds in reads of this size, block by block. */
#define COMPARE_CHUNK (256 * 1024)
#define COMPARE_BLOCK 8192

static void start_writeback(tar_stage *ts)
{
    if (ts->file_offset > ts->writeback_done)
        (void)sync_file_range(ts->file_fd, (off_t)ts->writeback_done,
                              (off_t)(ts->file_offset - ts->writeback_done), SYNC_FILE_RANGE_WRITE);
    ts->writeback_done = ts->file_offset;
}

/* Delta: writes p[0..len) at file_offset, block by block, only where the file does not
 * already hold the same bytes. */
static int write_delta(tar_stage *ts, const uint8_t *p, size_t len, wk_error *err)
{
    while (len > 0) {
        size_t step = len > COMPARE_CHUNK ? COMPARE_CHUNK : len;
        ssize_t have = pread(ts->file_fd, ts->compare, step, (off_t)ts->file_offset);
        for (size_t i = 0; i < step;) {
            size_t n = step - i > COMPARE_BLOCK ? COMPARE_BLOCK : step - i;
            bool equal = have >= (ssize_t)(i + n) && memcmp(ts->compare + i, p + i, n) == 0;
            for (size_t done = 0; !equal && done < n;) {
                ssize_t w =
                    pwrite(ts->file_fd, p + i + done, n - done, (off_t)(ts->file_offset + done));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    return wk_error_sys(err, WK_ERR_IO, w < 0 ? errno : ENOSPC,
                                        "could not write file \"%s\"", ts->file_path);
                done += (size_t)w;
            }
            if (equal && ts->bytes_kept != NULL)
                *ts->bytes_kept += n;
            if (ts->bytes_written != NULL)
                *ts->bytes_written += n;
            ts->file_offset += n;
            i += n;
        }
        p += step;
        len -= step;
    }
    ts->writeback_done = ts->file_offset; /* the final sync of the restore flushes it */
    return 0;
}

static int write_data(tar_stage *ts, const uint8_t *p, size_t len, wk_error *err)
{
    if (ts->delta)
        return write_delta(ts, p, len, err);
    while (len > 0) {
        ssize_t n = write(ts->file_fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return wk_error_sys(err, WK_ERR_IO, n < 0 ? errno : ENOSPC,
                                "could not write file \"%s\"", ts->file_path);
        p += n;
        len -= (size_t)n;
        ts->file_offset += (uint64_t)n;
        if (ts->bytes_written != NULL)
            *ts->bytes_written += (uint64_t)n;
    }
    if (ts->file_offset - ts->writeback_done >= WRITEBACK_STEP)
        start_writeback(ts);
    return 0;
}

static void mark_failed(tar_stage *ts)
{
    ts->state = ST_FAILED;
    if (ts->file_fd >= 0) {
        close(ts->file_fd);
        ts->file_fd = -1;
    }
}

static int tar_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    tar_stage *ts = (tar_stage *)stage;
    const uint8_t *p = buf;
    if (ts->state == ST_FAILED)
        return wk_error_set(err, WK_ERR_INTERNAL, "tar extraction already failed");
    if (ts->state == ST_FINISHED)
        return wk_error_set(err, WK_ERR_INTERNAL, "tar stream written after finish");
    while (len > 0) {
        size_t n = len;
        switch (ts->state) {
        case ST_HEADER:
            if (n > BLOCK - ts->hdr_used)
                n = BLOCK - ts->hdr_used;
            memcpy(ts->hdr + ts->hdr_used, p, n);
            ts->hdr_used += n;
            break;
        case ST_DATA:
            if (n > ts->remaining)
                n = (size_t)ts->remaining;
            if (write_data(ts, p, n, err) != 0)
                goto fail;
            ts->remaining -= n;
            break;
        case ST_META:
            if (n > ts->remaining)
                n = (size_t)ts->remaining;
            memcpy(ts->meta + ts->meta_used, p, n);
            ts->meta_used += n;
            ts->remaining -= n;
            break;
        case ST_SKIP:
            if (n > ts->remaining)
                n = (size_t)ts->remaining;
            ts->remaining -= n;
            break;
        case ST_END:
            for (size_t i = 0; i < n; i++) {
                if (p[i] != 0) {
                    wk_error_set(err, WK_ERR_CORRUPT,
                                 "non-zero data after the end of the tar archive at offset %llu",
                                 (unsigned long long)(ts->pos + i));
                    goto fail;
                }
            }
            break;
        default:
            wk_error_set(err, WK_ERR_INTERNAL, "tar stage in unexpected state");
            goto fail;
        }
        p += n;
        len -= n;
        ts->pos += n;
        if (settle(ts, err) != 0)
            goto fail;
    }
    return 0;
fail:
    mark_failed(ts);
    return -1;
}

static int tar_finish(wk_stage *stage, wk_error *err)
{
    tar_stage *ts = (tar_stage *)stage;
    if (ts->state == ST_FAILED)
        return wk_error_set(err, WK_ERR_INTERNAL, "tar extraction already failed");
    if (ts->state == ST_FINISHED)
        return 0;
    if (ts->state != ST_END) {
        wk_error_set(err, WK_ERR_CORRUPT, "tar stream ended early (truncated)");
        wk_error_detail(err, "The stream ended after %llu bytes, before the end-of-archive blocks.",
                        (unsigned long long)ts->pos);
        mark_failed(ts);
        return -1;
    }
    ts->state = ST_FINISHED;
    return 0;
}

static void tar_free(wk_stage *stage)
{
    tar_stage *ts = (tar_stage *)stage;
    if (ts->file_fd >= 0)
        close(ts->file_fd);
    if (ts->parent_fd >= 0)
        close(ts->parent_fd);
    close(ts->dest_fd);
    clear_pending(ts);
    free(ts->meta);
    free(ts->file_path);
    free(ts->parent_path);
    free(ts->compare);
    free(ts);
}

static const wk_stage_ops tar_ops = {tar_write, tar_finish, tar_free};

wk_stage *wk_tar_extract_new(const char *dest, const wk_tar_options *options, wk_error *err)
{
    tar_stage *ts = calloc(1, sizeof(*ts));
    if (ts == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ts->dest_fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ts->dest_fd < 0) {
        int e = errno;
        free(ts);
        wk_error_sys(err, WK_ERR_IO, e, "could not open folder \"%s\"", dest);
        return NULL;
    }
    ts->base.ops = &tar_ops;
    ts->state = ST_HEADER;
    ts->file_fd = -1;
    ts->parent_fd = -1;
    if (options != NULL) {
        ts->bytes_written = options->bytes_written;
        ts->files = options->files;
        ts->delta = options->delta;
        ts->bytes_kept = options->bytes_kept;
        ts->seen = options->seen;
        ts->seen_arg = options->seen_arg;
    }
    if (ts->delta && (ts->compare = malloc(COMPARE_CHUNK)) == NULL) {
        close(ts->dest_fd);
        free(ts);
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return &ts->base;
}
