/* window: what the archived WAL lets a restore of a backup reach along a timeline's path:
 * the segments recovery will read and the commits and restore points on them; layer 6. */
#ifndef WK_WINDOW_H
#define WK_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#include "archive.h"
#include "backup.h"
#include "error.h"
#include "repo.h"
#include "walrec.h"

/* The way from a backup to a timeline: the timelines PostgreSQL replays, oldest first,
 * each until the next one branched off (from the target timeline's history file). */
typedef struct wk_window_path {
    size_t count;
    struct {
        uint32_t tli;
        wk_lsn begin, end; /* end: UINT64_MAX for the target timeline */
    } steps[64];
} wk_window_path;

/* The path from backup b to timeline target_tli: WK_ERR_NOTFOUND when a history file is
 * missing or the target does not descend from the backup's timeline after its end. */
int wk_window_path_make(wk_repo *repo, const wk_backup_record *b, uint32_t target_tli,
                        uint32_t seg_size, wk_window_path *path, wk_error *err);

/* The timeline a point of the path lies on. */
uint32_t wk_window_path_tli_at(const wk_window_path *path, wk_lsn lsn);

/* What a walk from the backup's start along the path found. */
typedef struct wk_window {
    uint64_t segments;   /* read by recovery from the backup's start, in order */
    uint64_t last_segno; /* the last of them (when segments > 0) */
    uint32_t last_tli;   /* the timeline whose copy of it recovery reads */
    wk_lsn end_lsn;      /* where the WAL recovery can read ends */
    char missing[32];    /* the segment recovery would ask for next and not find */
    bool has_commit;     /* a commit or abort lies on the path after the backup's end */
    int64_t last_commit; /* the newest of them (PostgreSQL time) */
    int64_t consistent;  /* the backup's end as a time: its stop time, or a later commit
                             * before its stop point (PostgreSQL time) */
    size_t point_count;
    wk_walrec_event *points; /* restore points on the path from the backup's start */
    uint64_t segments_read;  /* segments whose records were read (not in the index) */
} wk_window;

/* What the walk looks for (NULL: nothing; it goes on to the end of the WAL). Called for
 * each commit, abort and restore point on the path from the backup's start, in WAL
 * order; true stops the walk there (*stop_at). match is called only for segments that
 * may hold what it looks for: want says so from the segment's index. */
typedef struct wk_window_search {
    wk_lsn until; /* non-zero: the walk ends with the segment holding this point */
    bool (*want)(const wk_walrec_summary *index, void *arg);
    bool (*match)(const wk_walrec_event *event, void *arg);
    void *arg;
} wk_window_search;

typedef struct wk_window_stop {
    bool found;
    wk_walrec_event event; /* the record matched */
    uint32_t tli;          /* the timeline it lies on */
    uint64_t segno;        /* the segment holding its end */
} wk_window_stop;

/* Walks the path from backup b's start: every segment recovery will read (the copy of the
 * newest timeline of the path that has one, as PostgreSQL chooses), until one is missing
 * or search matched. Reads the time index of object names, and the WAL itself where the
 * index is missing (segments archived before it), a record crosses a segment's end, or
 * restore point names are needed; a search without match (segments only) reads no WAL,
 * and then *out has no times or restore points. */
int wk_window_walk(wk_repo *repo, const wk_wal_index *index, const wk_backup_record *b,
                   const wk_window_path *path, const wk_window_search *search, wk_window *out,
                   wk_window_stop *stop_at, wk_error *err);
void wk_window_free(wk_window *w);

/* PostgreSQL time <-> text "2026-11-25 09:30:12.345678+00" (microseconds when non-zero). */
void wk_window_format_time(int64_t pg_time, char *buf, size_t size);

#endif
