/* record: the text of a backup's or a dump's record (backups/<label>/backup.json,
 * dumps/<label>/dump.json), stored and read back under one size limit; storage layer.
 * The limit is enforced when writing, so a record that could not be read back is never
 * stored. What the records say is backup.c's and dump.c's (the only readers). */
#ifndef WK_RECORD_H
#define WK_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "storage.h"

/* The largest record walkeep stores or reads: a directory dump of about 300,000 tables. */
#define WK_RECORD_MAX_BYTES ((size_t)64 * 1024 * 1024)

/* Stores text (len bytes) as the record at path, never replacing one (WK_PUT_NOREPLACE:
 * WK_ERR_EXISTS when there is one). Text larger than WK_RECORD_MAX_BYTES is refused
 * before anything is written (WK_ERR_IO naming the path and both sizes). */
int wk_record_write(wk_storage *st, const char *path, const char *text, size_t len,
                    wk_error *err);

/* Reads the record at path: *text (malloc'd, caller frees; not NUL-terminated) and *len,
 * written only on success. WK_ERR_NOTFOUND when there is none; a record larger than
 * WK_RECORD_MAX_BYTES is WK_ERR_CORRUPT naming the path. */
int wk_record_read(wk_storage *st, const char *path, uint8_t **text, size_t *len,
                   wk_error *err);

#endif
