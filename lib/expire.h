/* expire: retention. Decides which base backups, dumps and WAL objects the retention
 * settings let go (a plan, computed without changing anything), and removes them in an
 * order that leaves a consistent repository if it is interrupted at any point:
 * interrupted backup folders, then expired backups oldest first (each one's record
 * first, so a half-removed backup counts as interrupted and is never restored), then
 * dumps the same way, then WAL last, oldest first per timeline. The plan never removes
 * the newest complete backup, a history file, or a WAL object at or after the segment
 * of any kept backup's start. */
#ifndef WK_EXPIRE_H
#define WK_EXPIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "backup.h"
#include "error.h"
#include "repo.h"

/* The retention settings (0: no limit of that kind) and the time "now" for the ones
 * counted in days. */
typedef struct wk_expire_policy {
    int retention_full;       /* keep the N newest complete backups */
    int retention_days;       /* keep what restores to any point of the last D days */
    int retention_dumps;      /* keep the N newest complete dumps of each database */
    int retention_dumps_days; /* keep the dumps that ended in the last D days */
    time_t now;
} wk_expire_policy;

typedef enum wk_expire_kind {
    WK_EXPIRE_BACKUP,           /* an expired complete backup */
    WK_EXPIRE_INTERRUPTED,      /* a backup folder without record, older than the newest backup */
    WK_EXPIRE_DUMP,             /* an expired complete dump */
    WK_EXPIRE_DUMP_INTERRUPTED, /* a dump folder without record, older than the newest dump */
    WK_EXPIRE_WAL               /* a range of consecutive WAL segments of one timeline */
} wk_expire_kind;

/* One line of the plan. */
typedef struct wk_expire_action {
    wk_expire_kind kind;
    char label[WK_BACKUP_LABEL_MAX]; /* backups and dumps */
    uint32_t tli;                    /* WAL: the timeline */
    uint64_t first, last;            /* WAL: segment numbers, inclusive */
    size_t segments;                 /* WAL: whole segment objects in the range */
    size_t partials;                 /* WAL: .partial objects */
    size_t backup_files;             /* WAL: .backup (backup history) objects */
    size_t object_count;             /* WAL: objects to remove (paths below) */
    char **objects;                  /* WAL: repository paths, oldest first */
} wk_expire_action;

/* Something the plan leaves alone that an operator may want to know about. */
typedef struct wk_expire_note {
    char text[512];
} wk_expire_note;

typedef struct wk_expire_plan {
    uint32_t seg_size;
    size_t action_count;
    wk_expire_action *actions;             /* in the order they are carried out */
    size_t kept_backups;                   /* complete backups that stay */
    char oldest_kept[WK_BACKUP_LABEL_MAX]; /* lowest start LSN among them, "" if none */
    bool wal_cutoff_set;                   /* WAL below wal_cutoff goes; false: no WAL goes */
    uint64_t wal_cutoff;                   /* segment number of that backup's start LSN */
    uint32_t wal_cutoff_tli;               /* and its timeline (for messages) */
    size_t kept_dumps;
    size_t wal_folder_count;
    char (*wal_folders)[24]; /* wal/ sub-folders whose whole range is below the cutoff */
    size_t note_count;
    wk_expire_note *notes;
} wk_expire_plan;

/* Lists the repository (backups, dumps, WAL; read only) and decides what the policy
 * lets go. Backups: complete means having a record; the ones still waiting for their
 * WAL that are newer than the newest usable backup are kept and not counted, so a
 * broken archive_command never expires the last usable backup. retention_full keeps
 * the N newest (by stop time); retention_days keeps every backup that ended within the
 * last D days plus the newest that ended before them; with both, a backup stays if
 * either keeps it; with neither, no backup and no WAL goes. The newest complete
 * backup always stays. A folder without record goes when its label is a default
 * label (a start time such as 20261125T093012Z) earlier than the newest complete
 * backup's start; a later one may be a backup in progress and stays, as does one whose
 * label tells no time (a note says so). WAL: every segment, .partial and .backup object
 * of every timeline whose segment number is below the segment of the lowest start LSN
 * among the kept backups; never a history file. Dumps (dumps/<label>/dump.json with
 * "label", "start_time", "end_time", "database", "dump_format"): per group (the globals
 * dumps, and the dumps of each database, whatever their format), retention_dumps keeps
 * the N newest by end time, retention_dumps_days those that ended in the last D days,
 * either keeps; neither: all stay; the newest complete dump of each group always stays;
 * folders without record as for backups, and only once they started over a day ago. 
 * The plan is checked before it is returned (WK_ERR_INTERNAL if it would remove
 * anything a kept backup needs). A record that cannot be read is WK_ERR_CORRUPT and
 * nothing is planned. On success *plan owns its memory (wk_expire_plan_free). */
int wk_expire_plan_make(wk_repo *repo, const wk_expire_policy *policy, wk_expire_plan *plan,
                        wk_error *err);

/* Called after each action has been carried out (or, for a dry run, instead of it). */
typedef void (*wk_expire_done_cb)(const wk_expire_plan *plan, const wk_expire_action *action,
                                  void *arg);

/* Carries out the plan's actions in order, calling done (may be NULL) after each. A
 * backup or dump: its record first, then its other objects (deepest folders first),
 * then its folders. WAL: each range's objects oldest first, then any wal/ folder whose
 * whole range lies below the cutoff and is left empty. A folder that still holds
 * hidden temporaries of an interrupted write cannot be removed: that is a note added to
 * the plan, not an error. On the first failure it stops and returns -1 (what was
 * already done stays done; the repository is consistent). */
int wk_expire_execute(wk_repo *repo, wk_expire_plan *plan, wk_expire_done_cb done, void *arg,
                      wk_error *err);

/* Frees the plan's memory; accepts NULL and a zeroed plan. */
void wk_expire_plan_free(wk_expire_plan *plan);

/* Writes one line describing an action, e.g. "backup 20261101T000000Z" or
 * "WAL 000000010000000000000001 .. 000000010000000000000007 (7 segments)". */
void wk_expire_describe(const wk_expire_plan *plan, const wk_expire_action *action, char *buf,
                        size_t size);

/* Parses a default label (YYYYMMDDTHHMMSSZ, UTC) into a time; returns 0 or -1. */
int wk_expire_label_time(const char *label, time_t *out);

#endif
