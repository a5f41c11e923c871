/* file: small local files written whole or not at all (a Prometheus file, a key file,
 * recovery settings), through a hidden temporary beside them. Layer 2 (foundations). */
#ifndef WALKEEP_FILE_H
#define WALKEEP_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* wk_file_write flags. */
enum {
    WK_FILE_NOREPLACE = 1 << 0, /* refuse (WK_ERR_EXISTS) a path that exists, even a
                                   dangling symbolic link */
};

/* Writes data[0..len) to path with exactly mode: into a new hidden temporary in path's
 * folder (".<name>.tmp.<pid>.<n>", created exclusively), fsynced, then renamed over path
 * (or linked, with WK_FILE_NOREPLACE, so an existing name is never replaced), and the
 * folder fsynced. A crash leaves either the old file or the new one under path, never a
 * part of one; temporaries of path whose writer is gone are removed first. On failure
 * nothing of this call is left behind. */
int wk_file_write(const char *path, const void *data, size_t len, mode_t mode, int flags,
                  wk_error *err);

#endif
