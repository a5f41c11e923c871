/* readahead: during a base backup, reads the cluster's data files a bounded distance ahead
 * of the server's walsender, in the order BASE_BACKUP sends them, so it finds them cached. */
#ifndef WK_READAHEAD_H
#define WK_READAHEAD_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct wk_readahead wk_readahead;

/* Starts a thread that reads every file under the folders, in this order and each
 * folder in readdir order (as the server walks it), skipping what BASE_BACKUP skips
 * (pg_wal, temporary files, the main forks of unlogged relations...), never more than
 * window bytes (at least 1 MiB) beyond the position last passed to
 * wk_readahead_progress (the kernel is asked for up to 16 MiB more of the file being
 * read). The folders are the tablespace locations in the order the
 * server sends them, then the data directory. What cannot be read is skipped: reading
 * ahead only ever saves time, so it has no errors to report once started. */
int wk_readahead_start(const char *const *folders, size_t count, uint64_t window,
                       wk_readahead **out, wk_error *err);

/* The server has sent this many bytes of archive data so far (tar headers included).
 * Cheap: called for every message of the backup stream. */
void wk_readahead_progress(wk_readahead *ra, uint64_t sent);

/* Bytes read so far (for tests and debug output). */
uint64_t wk_readahead_bytes(const wk_readahead *ra);

/* Stops the thread (it ends at the next file chunk) and frees everything; NULL is fine. */
void wk_readahead_stop(wk_readahead *ra);

#endif
