/* file: small local files written whole or not at all (a Prometheus file, a key file,
 * recovery settings), through a hidden temporary beside them; and what to say when a
 * local file may not be read (who we are, who owns it). Layer 2 (foundations). */
#ifndef WALKEEP_FILE_H
#define WALKEEP_FILE_H

#include <stdbool.h>
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

/* The name of user uid ("postgres"), or "uid N" when it has none. Returns buf. */
const char *wk_file_user_name(uid_t uid, char *buf, size_t size);

/* After opening path failed with EACCES: adds to err's detail who we run as and what
 * stands in the way (the file's owner, group and mode, or those of the first folder on
 * the way that we may not enter), and sets its hint to the way out: run as the owner (or
 * a member of a group that may read it), or let us read it through the group. owner_only:
 * the file must stay readable by its owner only (a key file), so only running as its
 * owner helps. As root, the hint names what refuses root. Leaves err alone for any other
 * errno. */
void wk_file_explain_denied(wk_error *err, const char *path, bool owner_only);

#endif
