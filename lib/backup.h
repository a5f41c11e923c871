/* backup: base backups in the repository: taking one over the replication protocol (the
 * BASE_BACKUP command pg_basebackup sends), every archive streamed through the pipeline,
 * and the JSON record that makes a backup usable. */
#ifndef WK_BACKUP_H
#define WK_BACKUP_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "error.h"
#include "repo.h"
#include "stream.h"
#include "wal.h"

#define WK_BACKUP_LABEL_MAX WK_LABEL_MAX
#define WK_BACKUP_RECORD "backup.json"

/* One archive of a backup: base.tar (the data directory), <oid>.tar (a tablespace), or
 * backup_manifest. */
typedef struct wk_backup_stream {
    char name[64];       /* as the server named it */
    char object[256];    /* repository path */
    uint32_t tablespace; /* tablespace oid, 0 for base.tar and the manifest */
    char *location;      /* tablespace folder on the backed-up server, NULL otherwise */
    uint64_t bytes;      /* plaintext */
    uint64_t stored_bytes;
    wk_fingerprint fingerprint;
} wk_backup_stream;

typedef struct wk_backup_record {
    char label[WK_BACKUP_LABEL_MAX];
    wk_lsn start_lsn, stop_lsn;
    uint32_t start_tli, stop_tli;
    time_t start_time, stop_time;
    char timezone[64]; /* the server's TimeZone setting ("" when not recorded) */
    bool from_standby; /* taken from a hot standby (recorded only when true) */
    int pg_version;
    uint64_t system_identifier;
    uint64_t bytes, stored_bytes;
    wk_compress compress; /* how the streams are stored */
    bool encrypted;
    size_t stream_count;
    wk_backup_stream *streams;
} wk_backup_record;

void wk_backup_record_free(wk_backup_record *record); /* frees members; accepts NULL */

/* Whether a record can be restored: it does not contradict itself (its label is label, its
 * folder's; it has a base archive; every object lies in its own folder; a tablespace's
 * location is an absolute path without ".."; the stop is not before the start; the major
 * is one walkeep supports). WK_ERR_CORRUPT saying what otherwise. */
int wk_backup_record_check(const wk_backup_record *record, const char *label, wk_error *err);

typedef struct wk_backup_options {
    const char *conninfo; /* libpq string; NULL for libpq's defaults */
    const char *pgdata;   /* the cluster's data directory, if on this machine: its files
                            * are read ahead of the server (see readahead.h); or NULL */
    const char *label;    /* NULL: the start time, e.g. 20261125T093012Z */
    bool fast_checkpoint;
    int wait_archive_ms; /* how long to wait for the stop segment to be archived */
    /* Called now and then with bytes received and the server's estimate (0 if none);
     * may be NULL. */
    void (*progress)(uint64_t done, uint64_t total, void *arg);
    void *progress_arg;
} wk_backup_options;

/* Takes a base backup of the cluster conninfo names into the repository: BASE_BACKUP
 * over a replication connection, WAL left to the archive, every tablespace archive and
 * the manifest streamed as it arrives into backups/<label>/. When options->pgdata is
 * the cluster's own data directory, its files are read a little ahead of the server. The record is written
 * last, so an interrupted backup leaves objects but no record and is never listed as
 * usable. Then it waits (bounded) for the segment holding the stop point to be in the
 * archive: WK_ERR_NOTFOUND if it is not there in time (the record stays; the backup
 * becomes usable when the WAL arrives). *out is filled on success and on that error. */
int wk_backup_take(wk_repo *repo, const wk_backup_options *options, wk_backup_record *out,
                   wk_error *err);

/* Writes / reads backups/<label>/backup.json. */
int wk_backup_record_write(wk_repo *repo, const wk_backup_record *record, wk_error *err);
int wk_backup_record_read(wk_repo *repo, const char *label, wk_backup_record *out, wk_error *err);

/* One backup folder of the repository: its record when it has one. */
typedef struct wk_backup_entry {
    char label[WK_BACKUP_LABEL_MAX];
    bool has_record;
    bool wal_ready;          /* the segment holding the stop point is archived */
    wk_backup_record record; /* valid when has_record */
} wk_backup_entry;

/* Lists every backup folder, oldest first (by start LSN, then label; folders without a
 * record last). A record that cannot be read is WK_ERR_CORRUPT. */
int wk_backup_list(wk_repo *repo, wk_backup_entry **out, size_t *count, wk_error *err);
void wk_backup_list_free(wk_backup_entry *entries, size_t count);

#endif
