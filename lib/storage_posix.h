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

#endif
