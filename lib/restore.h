/* restore: point-in-time restore: choose a backup for a target, prove from the archive's
 * history files and segments that WAL reaches it, lay the backup down, write recovery. */
#ifndef WK_RESTORE_H
#define WK_RESTORE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "archive.h"
#include "backup.h"
#include "config.h"
#include "error.h"
#include "repo.h"
#include "window.h"

typedef enum wk_target_kind {
    WK_TARGET_END, /* no target: replay the whole archive */
    WK_TARGET_TIME,
    WK_TARGET_XID,
    WK_TARGET_LSN,
    WK_TARGET_NAME,
    WK_TARGET_IMMEDIATE /* the end of the backup */
} wk_target_kind;

typedef struct wk_restore_target {
    wk_target_kind kind;
    const char *value;     /* as given: time, xid, LSN or restore point name */
    const char *zone;      /* --timezone: how a time without UTC offset is read */
    bool beyond_archive;   /* a time target may lie after the last archived commit */
    wk_lsn lsn;            /* WK_TARGET_LSN */
    const char *inclusive; /* "true" / "false", NULL for PostgreSQL's default */
    const char *timeline;  /* "latest" (default), "current" or a number */
    const char *action;    /* "promote" (default), "pause", "shutdown" */
} wk_restore_target;

typedef struct wk_tablespace_map {
    const char *from; /* the tablespace's folder on the backed-up server */
    const char *to;   /* where to lay it down instead */
} wk_tablespace_map;

typedef struct wk_restore_options {
    const char *pgdata;
    wk_restore_target target;
    const char *backup_label; /* NULL: choose */
    const wk_tablespace_map *maps;
    size_t map_count;
    const char *restore_command; /* written into postgresql.auto.conf */
    void (*progress)(uint64_t done, uint64_t total, void *arg);
    void *progress_arg;
    /* --delta: pgdata (and the tablespace folders) may hold an older copy of the same
     * cluster, with no server running on it: what is equal stays, what differs is written,
     * what the backup lacks is removed. delta_result (may be NULL) says how much. */
    bool delta;
    struct wk_restore_delta_result *delta_result;
} wk_restore_options;

typedef struct wk_restore_delta_result {
    uint64_t bytes;   /* file data in the backup */
    uint64_t kept;    /* of which the copy already held, not written */
    uint64_t removed; /* files, links and folders of the copy that the backup lacks */
} wk_restore_delta_result;

typedef struct wk_restore_plan {
    wk_backup_record backup; /* owned */
    uint32_t target_tli;
    uint64_t segments;                      /* WAL segments proven present */
    char last_segment[WK_WAL_NAME_LEN + 1]; /* the last one needed */
    /* A time target as read (Unix microseconds), and in which zone when it named no UTC
     * offset ("" when it did); written into postgresql.auto.conf as UTC. */
    int64_t target_time;
    char target_zone[64];
    /* Where recovery will stop (time, xid and name targets): the record it stops at. */
    wk_window_stop stop;
    wk_window window; /* the walk from the backup along the path (owned) */
} wk_restore_plan;

/* Writes the restore_command for a restored cluster into cmd: walkeep-fetch from the
 * folder of the running program, with the same configuration file, repository and key
 * (absolute paths), then %f %p; every argument shell-quoted when it needs it. */
int wk_restore_command_build(const wk_config *cfg, char *cmd, size_t size, wk_error *err);

/* Chooses the backup, among the usable ones (recorded, WAL to the stop point archived)
 * when any fits: the named one, else the newest that ended before the target (time and
 * LSN targets), the oldest complete one (xid and name targets), or the newest
 * (otherwise). A time without UTC offset is read in target.zone, else in the TimeZone
 * the newest backup recorded. Then proves from the archive's time index that the target
 * is reached: a time before a commit or abort archived after the backup's end, an xid
 * that committed there, a restore point of that name there; and that the archive holds
 * every segment recovery will read on the way (the copy of the newest timeline of the
 * path that has one, as PostgreSQL chooses), and the history file of every timeline on
 * it. Refusals are WK_ERR_NOTFOUND (a missing segment, a target outside the archive) or
 * WK_ERR_USAGE. Reads only. */
int wk_restore_plan_make(wk_repo *repo, const wk_restore_options *options, wk_restore_plan *plan,
                         wk_error *err);
void wk_restore_plan_free(wk_restore_plan *plan);

/* Lays the planned backup down: pgdata (and each tablespace's folder, mapped) must be
 * absent or empty and is created 0700; every archive is decoded, checked against its
 * fingerprint and extracted; tablespace_map is rewritten for mapped folders;
 * recovery.signal and the recovery settings are written (stale restore_command and
 * recovery_target* lines replaced); everything is synced. On failure whatever was
 * written is removed again, so a half-restored directory never looks usable.
 * With options->delta, a pgdata that is not empty must be a data directory of the
 * backup's cluster (global/pg_control's system identifier) with no server running on it
 * (WK_ERR_USAGE otherwise, nothing touched); files are compared and only differing
 * blocks written, and afterwards whatever the backup does not hold is removed from
 * pgdata and the tablespace folders. A failure then leaves the folder as far as it got
 * (without recovery.signal), to be run again. */
int wk_restore_lay_down(wk_repo *repo, const wk_restore_options *options,
                        const wk_restore_plan *plan, wk_error *err);

#endif
