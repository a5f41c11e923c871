/* tar: a sink stage that extracts the tar streams PostgreSQL's BASE_BACKUP produces into
 * a folder, in bounded memory, never writing outside that folder or through a symlink. */
#ifndef WK_TAR_H
#define WK_TAR_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "stream.h"

/* Longest GNU long name / long link or pax extended header accepted (bytes); a longer
 * one is WK_ERR_CORRUPT. This and one 512-byte header bound the stage's memory. */
#define WK_TAR_META_MAX (64 * 1024)

typedef struct wk_tar_options {
    /* May be NULL. Added to (never reset) as file data is written, for progress. */
    uint64_t *bytes_written;
    /* May be NULL. Incremented for each regular file created. */
    uint64_t *files;
    /* Delta mode: dest holds an older copy. An existing regular file is read and only
     * the ranges that differ are written (then cut to the entry's size), an existing
     * symbolic link with the same target stays, one with another target is replaced, and
     * a file or link where the stream has a folder (or a link where it has a file) is
     * replaced. bytes_written still counts every byte of data; bytes_kept (may be NULL)
     * those found equal and not written. */
    bool delta;
    uint64_t *bytes_kept;
    /* May be NULL. Called with the path (relative to dest, normalised) of every entry,
     * so that the caller can tell what dest holds beyond the stream. Non-zero fails the
     * stage with WK_ERR_NOMEM. */
    int (*seen)(const char *path, void *arg);
    void *seen_arg;
} wk_tar_options;

/* Sink stage extracting one tar stream into the existing folder dest, which should be
 * empty (but in delta mode). options may be NULL; the pointers in it must outlive the stage.
 *
 * Understands ustar as PostgreSQL writes it (octal or base-256 sizes), the ustar prefix
 * field, GNU long names and links ('L', 'K') and pax extended headers ('x': path,
 * linkpath, size; other keys and 'g' global headers are ignored). Creates regular
 * files (mode 0600, O_EXCL: nothing existing is ever replaced, mtime from the header),
 * folders (0700; an existing folder is fine, missing parents are created) and
 * symbolic links (target stored as given, never followed by the stage). Every path is
 * opened component by component below dest with O_NOFOLLOW. Nothing is fsync'd.
 *
 * Errors (the stage is then unusable except for free):
 *   WK_ERR_CORRUPT: bad header checksum, unsafe name (absolute, "..", empty, or
 *     leading through a symbolic link), unsupported entry type (hard link, device,
 *     FIFO...), malformed or oversized extended header, non-zero bytes after the
 *     end-of-archive blocks, and, at finish, a stream that ended before its two
 *     end-of-archive blocks ("tar stream ended early (truncated)").
 *   WK_ERR_EXISTS: an entry's name is already taken in dest (by anything but a folder,
 *     for a folder entry; in delta mode only by a folder where a file or link goes).
 *   WK_ERR_IO: a file system call failed; the message names the path within dest.
 * Freeing without finish closes what is open; what was extracted stays. */
wk_stage *wk_tar_extract_new(const char *dest, const wk_tar_options *options, wk_error *err);

#endif
