/* verify: the worker behind `walkeep verify`: reads every object of a repository back
 * through the checked decoders (decryption, the frame's own content checksum, the
 * plaintext fingerprint) and checks what a restore relies on: every backup's WAL, a WAL
 * chain without holes, consistent timeline history files. It never changes the
 * repository. Problems found in the data go into the report, one finding each, and the
 * walk goes on; only a repository that cannot be walked at all is an error. Memory is
 * bounded by one wal/ folder's listing and the segment index, never by object sizes. */
#ifndef WK_VERIFY_H
#define WK_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "repo.h"
#include "wal.h"

/* Missing segment names listed per timeline in wk_verify_gaps (all are counted). */
#define WK_VERIFY_GAPS_LISTED_MAX 1000

typedef enum wk_verify_kind {
    /* problems: the repository cannot restore everything it claims to */
    WK_VERIFY_CORRUPT,     /* an object does not decode, or fails its checksum, fingerprint,
                            * size, or (WAL) page header check */
    WK_VERIFY_MISSING,     /* an object a record names is absent */
    WK_VERIFY_UNREADABLE,  /* an object could not be read (I/O error) */
    WK_VERIFY_KEY,         /* an object was encrypted with another key */
    WK_VERIFY_CONFLICT,    /* several objects with different content claim one WAL file */
    WK_VERIFY_RECORD,      /* a backup or dump record cannot be read or is inconsistent */
    WK_VERIFY_MISSING_WAL, /* a segment a backup needs (start to stop point) is not archived */
    WK_VERIFY_GAP,         /* segments missing between a timeline's first and last */
    WK_VERIFY_HISTORY,     /* a timeline history file is bad, inconsistent or missing */
    /* warnings: worth a look, nothing a restore needs is wrong */
    WK_VERIFY_TEMPORARY,  /* a leftover temporary of a killed write */
    WK_VERIFY_INCOMPLETE, /* a backup or dump folder without its record (interrupted) */
    WK_VERIFY_UNEXPECTED  /* an entry walkeep does not write (or not there) */
} wk_verify_kind;

/* Stable short name of a kind, as in the output: "corrupt", "missing-wal", "gap"... */
const char *wk_verify_kind_name(wk_verify_kind kind);
/* Whether findings of this kind are warnings rather than problems. */
bool wk_verify_kind_is_warning(wk_verify_kind kind);

typedef struct wk_verify_finding {
    wk_verify_kind kind;
    char *object;  /* repository path, WAL file name or backup label */
    char *message; /* PostgreSQL style: lower case, no full stop */
    char *hint;    /* what to do about it, in the same style; NULL when nothing to add */
} wk_verify_finding;

/* The holes in one timeline's WAL, between its first and last archived segment. */
typedef struct wk_verify_gaps {
    uint32_t tli;
    uint64_t missing;                   /* segments missing in all */
    size_t listed;                      /* names listed: min(missing, ..._LISTED_MAX) */
    char (*names)[WK_WAL_NAME_LEN + 1]; /* the first `listed` missing segments, in order */
} wk_verify_gaps;

typedef struct wk_verify_report {
    uint64_t objects; /* objects read and checked */
    uint64_t bytes;   /* stored bytes read */
    uint64_t indexed; /* segments archived before time indexes, given theirs now */
    size_t problem_count;
    wk_verify_finding *problems;
    size_t warning_count;
    wk_verify_finding *warnings;
    size_t gap_count; /* timelines with holes, sorted by timeline */
    wk_verify_gaps *gaps;
} wk_verify_report;

/* Verifies the repository repo (whose metadata must exist and match the configured
 * key). Fills *report (the caller frees it with wk_verify_report_free, also after an
 * error) and returns 0 whatever it found; ok means report->problem_count == 0.
 * Returns -1 with err filled only when the repository cannot be walked: no metadata,
 * the wrong key, a folder that cannot be listed, out of memory.
 *
 * What it reads: every WAL object (wal/<TTTTTTTT>.history-*, wal/<TTTTTTTTXXXXXXXX>/
 * segments, partial segments, backup history files); every stream of every backup record
 * (backups/<label>/backup.json) and of every dump record (dumps/<label>/dump.json, same
 * "streams" shape), checked against the record's fingerprint and sizes. What it checks
 * besides: each backup's segments from the one holding start_lsn to the one holding
 * stop_lsn - 1, on its timelines; holes per timeline; that each history file parses,
 * agrees with its parent's, and exists for every timeline above 1 that has segments.
 * Hidden ".tmp." files (a local repository only) and record-less backup or dump folders
 * are warnings. Each segment's records are read too: a time index in its name that does
 * not match them is a problem; a segment archived before time indexes gets its index
 * (its stored bytes copied under the indexed name, then the old name removed). */
int wk_verify_run(wk_repo *repo, wk_verify_report *report, wk_error *err);

/* wk_verify_run with progress: progress (may be NULL) is called as objects are read,
 * with the stored bytes read so far, the total it expects to read, and arg. The total
 * comes from listing the repository once before the walk (the sizes of the objects it
 * will read: not the claims, nor the records read apart); 0 when that listing failed
 * (the walk then says why). A walk that completes reports once more with done as the
 * total, since objects may come and go between the listing and the walk. */
int wk_verify_run_progress(wk_repo *repo,
                           void (*progress)(uint64_t done, uint64_t total, void *arg), void *arg,
                           wk_verify_report *report, wk_error *err);

/* Frees the report's members and zeroes it; accepts NULL. */
void wk_verify_report_free(wk_verify_report *report);

#endif
