/* storage_posix: the storage driver on a local folder (a hidden temporary per write,
 * fsync, rename, fsync of the folder: a reader never sees half an object); storage layer. */
#ifndef WK_STORAGE_POSIX_H
#define WK_STORAGE_POSIX_H

#include <stdbool.h>

#include "error.h"
#include "storage.h"

/* Opens the POSIX driver on folder root. With create, root (and its parents) are
 * created mode 0700 when missing; without, a missing root is WK_ERR_NOTFOUND. */
int wk_storage_posix_open(const char *root, bool create, wk_storage **out, wk_error *err);

/* Removes the temporaries (".<name>.tmp.<pid>.<n>") in folder dir of st whose writer
 * process is gone (wk_proc_is_gone), as a killed walkeep-fetch leaves them in pg_wal;
 * *removed (may be NULL) counts them. Only for a folder on this machine. */
int wk_storage_posix_clean_dead_writers(wk_storage *st, const char *dir, uint64_t *removed,
                                        wk_error *err);

#endif
