/* tar: a sink stage that extracts the tar streams PostgreSQL's BASE_BACKUP produces into
 * a folder, in bounded memory, never writing outside that folder or through a symlink. */
#ifndef WK_TAR_H
#define WK_TAR_H

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
} wk_tar_options;

/* Sink stage extracting one tar stream into the existing folder dest, which should be
 * empty. options may be NULL; the pointers in it must outlive the stage.
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
 *     for a folder entry).
 *   WK_ERR_IO: a file system call failed; the message names the path within dest.
 * Freeing without finish closes what is open; what was extracted stays. */
wk_stage *wk_tar_extract_new(const char *dest, const wk_tar_options *options, wk_error *err);

#endif
