/* archive: the workers behind walkeep-archive and walkeep-fetch: one WAL file into the
 * repository (idempotent by plaintext fingerprint) and back out, never partial. */
#ifndef WK_ARCHIVE_H
#define WK_ARCHIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "repo.h"
#include "stream.h"
#include "wal.h"
#include "walrec.h"

#define WK_OBJECT_PATH_MAX 256

/* One stored WAL object: <dir>/<file name>-<fingerprint hex>[<time index>]<suffix>. */
typedef struct wk_wal_object {
    char path[WK_OBJECT_PATH_MAX];
    wk_fingerprint fingerprint;
    wk_compress alg;
    bool encrypted;
    bool indexed;            /* the name carries the segment's time index */
    wk_walrec_summary index; /* then: what its records hold (docs/format.md, "Time index") */
} wk_wal_object;

/* Writes the time index of a segment's name (".i", then "_t<first>-<last>",
 * "_x<first>-<last>", "_p<count>", "_c" where they apply) into buf. */
void wk_archive_index_token(const wk_walrec_summary *index, char *buf, size_t size);

typedef struct wk_push_result {
    bool already_archived; /* an identical copy was already stored; nothing written */
    uint64_t bytes;        /* plaintext size */
    uint64_t stored_bytes; /* bytes written to the repository (0 if already archived) */
    bool initialized_repo; /* this push wrote the repository's metadata */
    char object[WK_OBJECT_PATH_MAX];
} wk_push_result;

typedef struct wk_fetch_result {
    uint64_t bytes;        /* plaintext size written to the destination */
    uint64_t stored_bytes; /* object size read from the repository */
    int attempts;          /* 1 unless transient errors were retried */
    char object[WK_OBJECT_PATH_MAX];
} wk_fetch_result;

/* What an entry of a wal/ folder is (docs/format.md, "WAL objects" and "Claims"). */
typedef enum wk_wal_entry {
    WK_WAL_ENTRY_OTHER,  /* not written by walkeep */
    WK_WAL_ENTRY_OBJECT, /* "<WAL file name>-<32 hex fingerprint><suffix>" */
    WK_WAL_ENTRY_CLAIM   /* "<WAL file name>-claim" */
} wk_wal_entry;

/* Parses entry: its WAL file name into name (WK_WAL_FILE_NAME_MAX bytes), and for an
 * object its fingerprint and codec into *obj (path left empty). */
wk_wal_entry wk_archive_parse_entry(const char *entry, char *name, wk_wal_object *obj);

/* Folder holding the object of a parsed WAL name: "wal" for history files,
 * "wal/<timeline+log id>" for the rest. */
void wk_archive_object_dir(const char *name, const wk_wal_name *parsed, char *buf, size_t size);

/* Finds the object holding WAL file `name`. WK_ERR_NOTFOUND only when that is certain:
 * there is no object of the name, and the repository's wal/ holds something. WK_ERR_CORRUPT
 * when wal/ is empty or missing, or when a folder or an entry walkeep did not write sits
 * under the name; WK_ERR_CONFLICT when several objects with different content claim it. */
int wk_archive_find(wk_repo *repo, const char *name, wk_wal_object *out, wk_error *err);

/* Archives the WAL file at path (its base name must be a name PostgreSQL archives).
 * Before anything is written it checks the file: a regular file; a segment or
 * partial segment must be exactly one segment long, carry a valid long page header
 * whose page address is the segment's own and whose system identifier and segment size
 * match the repository (which is initialised from it when new). A file already
 * stored with the same fingerprint is success without writing; with a different one
 * it is WK_ERR_CONFLICT and the stored copy is left alone. Returns once the object is
 * durable. A new file is read once where the storage can name a sink before it commits
 * (POSIX), twice elsewhere. */
int wk_archive_push(wk_repo *repo, const char *path, wk_push_result *result, wk_error *err);

/* Restores WAL file `name` to dest through a temporary file beside it, renamed into
 * place only after every check passed (decryption, decompression, fingerprint), so
 * dest is never partial. WK_ERR_NOTFOUND (dest untouched) only when the repository
 * certainly holds no such file; an uninitialised repository is not "not found".
 * Errors of kind WK_ERR_TRANSIENT are retried with exponential backoff for up to
 * retry_timeout_ms. */
int wk_archive_fetch(wk_repo *repo, const char *name, const char *dest, int retry_timeout_ms,
                     wk_fetch_result *result, wk_error *err);

/* What a listing tells of one segment's records (its object's name). */
typedef struct wk_wal_segment_index {
    bool indexed;            /* false: archived before time indexes (read it to know) */
    wk_walrec_summary index; /* when indexed */
} wk_wal_segment_index;

/* The segments the repository holds, per timeline, sorted. */
typedef struct wk_wal_timeline {
    uint32_t tli;
    bool has_history; /* <tli>.history is archived */
    size_t count;
    uint64_t *segnos;              /* sorted, no duplicates */
    wk_wal_segment_index *indexes; /* wk_archive_index: one per segment, NULL elsewhere */
} wk_wal_timeline;

typedef struct wk_wal_index {
    uint32_t seg_size;
    size_t count;
    wk_wal_timeline *timelines; /* sorted by tli */
} wk_wal_index;

/* Lists every segment object (one listing per wal/ folder) into *index. */
int wk_archive_index(wk_repo *repo, uint32_t seg_size, wk_wal_index *index, wk_error *err);
void wk_archive_index_free(wk_wal_index *index);
/* The timeline's entry, NULL when the repository holds nothing of it. */
const wk_wal_timeline *wk_archive_index_timeline(const wk_wal_index *index, uint32_t tli);
bool wk_archive_index_has(const wk_wal_index *index, uint32_t tli, uint64_t segno);
/* The listing's facts of a segment, NULL when it is not archived. */
const wk_wal_segment_index *wk_archive_index_of(const wk_wal_index *index, uint32_t tli,
                                                uint64_t segno);

/* Reads a small archived file (a history file) whole into a malloc'd, NUL-terminated
 * buffer. WK_ERR_NOTFOUND when it is not archived. */
int wk_archive_read_small(wk_repo *repo, const char *name, char **text, size_t *len, wk_error *err);

/* Archives the timeline history files ("NNNNNNNN.history") in the folder waldir (a data
 * directory's pg_wal) that the repository lacks; *stored counts those stored now. */
int wk_archive_push_histories(wk_repo *repo, const char *waldir, int *stored, wk_error *err);

#endif
