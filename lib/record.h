/* record: the text of a backup's or a dump's record (backups/<label>/backup.json,
 * dumps/<label>/dump.json), stored and read back under one size limit; storage layer.
 * The limit is enforced when writing, so a record that could not be read back is never
 * stored. The stream list both records hold is written and read here too; what else the
 * records say is backup.c's and dump.c's (their only readers). */
#ifndef WK_RECORD_H
#define WK_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>
#include <time.h>

#include "error.h"
#include "json.h"
#include "storage.h"
#include "stream.h"

/* The largest record walkeep stores or reads: a directory dump of about 300,000 tables. */
#define WK_RECORD_MAX_BYTES ((size_t)64 * 1024 * 1024)

/* Stores text (len bytes) as the record at path, never replacing one (WK_PUT_NOREPLACE:
 * WK_ERR_EXISTS when there is one). Text larger than WK_RECORD_MAX_BYTES is refused
 * before anything is written (WK_ERR_IO naming the path and both sizes). */
int wk_record_write(wk_storage *st, const char *path, const char *text, size_t len, wk_error *err);

/* Reads the record at path: *text (malloc'd, caller frees; not NUL-terminated) and *len,
 * written only on success. WK_ERR_NOTFOUND when there is none; a record larger than
 * WK_RECORD_MAX_BYTES is WK_ERR_CORRUPT naming the path. */
int wk_record_read(wk_storage *st, const char *path, uint8_t **text, size_t *len, wk_error *err);

/* One stream of a record's "streams" list, as both records write it: name, object, (for
 * a backup) tablespace and location, bytes, stored_bytes, fingerprint, in that order. */
typedef struct wk_record_stream {
    const char *name;
    const char *object;
    bool has_tablespace; /* backups: "tablespace" and "location" are members */
    uint32_t tablespace;
    const char *location; /* NULL: JSON null */
    uint64_t bytes, stored_bytes;
    wk_fingerprint fingerprint;
} wk_record_stream;

/* Writes s as one object of the list (the caller has begun the array). */
void wk_record_stream_write(wk_json_writer *w, const wk_record_stream *s);

/* Reads one object of the list into *out; its strings point into js (copy them before
 * js is freed). with_tablespace: "tablespace" is required and "location" read. A missing
 * or mistyped member, or a fingerprint that is not one, is WK_ERR_CORRUPT. */
int wk_record_stream_read(const wk_json *js, bool with_tablespace, wk_record_stream *out,
                          wk_error *err);

/* Times in records and on command lines. Formats a time as "2026-11-25 09:30:12+00" (what recovery_target_time accepts) and
 * parses that form and ISO 8601 ("2026-11-25T09:30:12Z", offsets +HH[:MM]); fractions
 * of a second are dropped; without an offset the time is local. */
void wk_record_format_time(time_t t, char *buf, size_t size);
int wk_record_parse_time(const char *text, time_t *out);

/* Reads a time to the microsecond (Unix time in microseconds) as PostgreSQL reads it with
 * TimeZone = zone: a time with a UTC offset as it says; one without in zone's rules (zone
 * NULL: refused; *zone_used, when not NULL, says which). A wall-clock time that does not exist or is ambiguous in the zone
 * (daylight-saving changes) is refused with both readings in the hint. WK_ERR_USAGE. */
int wk_record_parse_time_in(const char *text, const char *zone, int64_t *out, bool *zone_used,
                            wk_error *err);

/* Whether zone names a zone of the system's time zone database (TZDIR, else
 * /usr/share/zoneinfo). */
bool wk_record_zone_known(const char *zone);

/* Whether text is a time wk_record_parse_time_in reads (in some zone). */
bool wk_record_time_valid(const char *text);

#endif
