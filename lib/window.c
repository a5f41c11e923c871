/* window: what the archived WAL lets a restore of a backup reach along a timeline's path:
 * the segments recovery will read and the commits and restore points on them; layer 6. */
#include "window.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int wk_window_path_make(wk_repo *repo, const wk_backup_record *b, uint32_t target_tli,
                        uint32_t seg_size, wk_window_path *path, wk_error *err)
{
    wk_wal_history_entry *hist = NULL;
    size_t hist_count = 0;
    char *text = NULL;
    size_t len = 0;
    int rc = -1;
    (void)seg_size;

    memset(path, 0, sizeof(*path));
    if (target_tli != b->start_tli) {
        char name[32];
        snprintf(name, sizeof(name), "%08X.history", target_tli);
        if (wk_archive_read_small(repo, name, &text, &len, err) != 0) {
            if (err->code == WK_ERR_NOTFOUND)
                wk_error_set(err, WK_ERR_NOTFOUND,
                             "timeline history file %s is missing from the archive", name);
            goto out;
        }
        if (wk_wal_parse_history(text, len, target_tli, &hist, &hist_count, err) != 0)
            goto out;
    }
    size_t k = 0;
    while (k < hist_count && hist[k].tli != b->start_tli)
        k++;
    if (target_tli != b->start_tli && k == hist_count) {
        wk_error_set(err, WK_ERR_NOTFOUND,
                     "timeline %u does not descend from timeline %u of backup \"%s\"", target_tli,
                     b->start_tli, b->label);
        goto out;
    }
    if (hist_count - k + 1 > sizeof(path->steps) / sizeof(path->steps[0])) {
        wk_error_set(err, WK_ERR_CORRUPT, "timeline %u has more than %zu ancestors", target_tli,
                     sizeof(path->steps) / sizeof(path->steps[0]) - 1);
        goto out;
    }
    wk_lsn begin = 0;
    for (size_t i = k; i < hist_count; i++) {
        if (i == k && hist[i].switch_lsn < b->stop_lsn) {
            uint32_t child = i + 1 < hist_count ? hist[i + 1].tli : target_tli;
            wk_error_set(err, WK_ERR_NOTFOUND,
                         "timeline %u left timeline %u before backup \"%s\" ended", child,
                         b->start_tli, b->label);
            goto out;
        }
        path->steps[path->count].tli = hist[i].tli;
        path->steps[path->count].begin = begin;
        path->steps[path->count++].end = hist[i].switch_lsn;
        begin = hist[i].switch_lsn;
    }
    path->steps[path->count].tli = target_tli;
    path->steps[path->count].begin = begin;
    path->steps[path->count++].end = UINT64_MAX;
    rc = 0;
out:
    free(hist);
    free(text);
    return rc;
}

uint32_t wk_window_path_tli_at(const wk_window_path *path, wk_lsn lsn)
{
    for (size_t k = 0; k < path->count; k++)
        if (lsn < path->steps[k].end)
            return path->steps[k].tli;
    return path->steps[path->count - 1].tli;
}

void wk_window_format_time(int64_t pg_time, char *buf, size_t size)
{
    int64_t us = wk_walrec_time_to_unix_us(pg_time);
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    char day[32];
    gmtime_r(&t, &tm);
    strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm);
    if (frac != 0)
        snprintf(buf, size, "%s.%06" PRId64 "+00", day, frac);
    else
        snprintf(buf, size, "%s+00", day);
}

/* ---- the walk ----------------------------------------------------------------------- */

typedef struct walk_state {
    wk_repo *repo;
    const wk_wal_index *index;
    uint32_t seg_size;
    const wk_window_path *path;
    const wk_backup_record *b;
    uint32_t cur_tli; /* recovery never goes back to an older timeline's files */

    wk_walrec_reader *reader; /* reading on from one segment into the next */
    uint64_t reader_next;     /* the segment it reads next */
    wk_walrec_event *events;  /* what it read, not yet walked past */
    size_t event_count, event_cap;
} walk_state;

/* The copy of segment segno recovery reads: the newest timeline of the path whose copy
 * exists, begun at or before the segment, not older than the last file read (PostgreSQL's
 * XLogFileReadAnyTLI). commit: this is the segment read now. */
static bool choose(walk_state *st, uint64_t segno, bool commit, uint32_t *tli, wk_lsn *limit)
{
    for (size_t k = st->path->count; k-- > 0;) {
        uint32_t t = st->path->steps[k].tli;
        if (t < st->cur_tli)
            break;
        if (segno < wk_wal_lsn_to_segno(st->path->steps[k].begin, st->seg_size))
            continue;
        if (!wk_archive_index_has(st->index, t, segno))
            continue;
        *tli = t;
        *limit = st->path->steps[k].end;
        if (commit)
            st->cur_tli = t;
        return true;
    }
    return false;
}

static int collect_event(const wk_walrec_event *event, void *arg, wk_error *err)
{
    walk_state *st = arg;
    if (st->event_count == st->event_cap) {
        size_t cap = st->event_cap == 0 ? 64 : st->event_cap * 2;
        wk_walrec_event *grown = realloc(st->events, cap * sizeof(*grown));
        if (grown == NULL)
            return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        st->events = grown;
        st->event_cap = cap;
    }
    st->events[st->event_count++] = *event;
    return 0;
}

/* Feeds timeline tli's copy of segment segno to the reader. */
static int feed_segment(walk_state *st, uint32_t tli, uint64_t segno, wk_error *err)
{
    char name[WK_WAL_NAME_LEN + 1];
    wk_wal_object obj;
    uint64_t count = 0;
    wk_wal_segment_name(name, tli, segno, st->seg_size);
    if (wk_archive_find(st->repo, name, &obj, err) != 0)
        return wk_error_prefix(err, "could not read WAL segment %s", name);
    wk_stage *chain = wk_stage_count_new(NULL, &count, err);
    chain = wk_walrec_stage_new(chain, st->reader, err);
    if (chain != NULL)
        chain = wk_repo_decoder_new(st->repo, obj.path, obj.alg, &obj.fingerprint, chain, err);
    int rc = chain != NULL && wk_storage_get(st->repo->storage, obj.path, chain, err) == 0 &&
                     wk_stage_finish(chain, err) == 0
                 ? 0
                 : -1;
    wk_stage_free(chain);
    if (rc != 0)
        return wk_error_prefix(err, "could not read WAL segment %s from \"%s\"", name, obj.path);
    st->reader_next = segno + 1;
    return 0;
}

/* Makes sure the events of the records starting in segment segno (timeline tli's copy,
 * on the path up to limit) are in st->events: reads the segment, and the next one when a
 * record of interest crosses into it. *read counts segments read. */
static int read_records(walk_state *st, uint64_t segno, uint32_t tli, wk_lsn limit, uint64_t *read,
                        wk_error *err)
{
    wk_lsn seg_start = wk_wal_segno_to_lsn(segno, st->seg_size);
    /* Events of earlier segments were walked past. */
    size_t kept = 0;
    for (size_t i = 0; i < st->event_count; i++)
        if (st->events[i].lsn >= seg_start)
            st->events[kept++] = st->events[i];
    st->event_count = kept;
    if (st->reader == NULL || st->reader_next < segno || st->reader_next > segno + 1) {
        wk_walrec_free(st->reader);
        st->event_count = 0;
        st->reader = wk_walrec_new(segno, st->seg_size, collect_event, st);
        if (st->reader == NULL)
            return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        st->reader_next = segno;
    }
    if (st->reader_next == segno) {
        if (feed_segment(st, tli, segno, err) != 0)
            return -1;
        (*read)++;
    }
    wk_walrec_summary now;
    wk_walrec_summary_get(st->reader, &now);
    uint32_t next_tli;
    wk_lsn next_limit;
    if (now.crossing && st->reader_next == segno + 1 &&
        limit >= wk_wal_segno_to_lsn(segno + 1, st->seg_size) &&
        choose(st, segno + 1, false, &next_tli, &next_limit)) {
        if (feed_segment(st, next_tli, segno + 1, err) != 0)
            return -1;
        (*read)++;
    }
    return 0;
}

/* Whether the segment's records must be read: its index cannot answer. */
static bool must_read(const wk_wal_segment_index *idx, bool cut, bool holds_stop,
                      const wk_window_search *search)
{
    if (!idx->indexed || cut || idx->index.crossing || idx->index.points > 0)
        return true;
    if (holds_stop && idx->index.xacts > 0)
        return true;
    return search != NULL && search->want != NULL && search->want(&idx->index, search->arg);
}

static int add_point(wk_window *w, const wk_walrec_event *ev, wk_error *err)
{
    wk_walrec_event *grown = realloc(w->points, (w->point_count + 1) * sizeof(*grown));
    if (grown == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    w->points = grown;
    w->points[w->point_count++] = *ev;
    return 0;
}

int wk_window_walk(wk_repo *repo, const wk_wal_index *index, const wk_backup_record *b,
                   const wk_window_path *path, const wk_window_search *search, wk_window *out,
                   wk_window_stop *stop_at, wk_error *err)
{
    walk_state st = {.repo = repo,
                     .index = index,
                     .seg_size = index->seg_size,
                     .path = path,
                     .b = b,
                     .cur_tli = path->steps[0].tli};
    wk_window_stop stop = {0};
    int rc = -1;
    memset(out, 0, sizeof(*out));
    out->consistent = wk_walrec_time_from_unix_us((int64_t)b->stop_time * 1000000);
    uint64_t stop_seg = wk_wal_lsn_to_segno(b->stop_lsn - 1, st.seg_size);
    bool found = false;
    /* Times and restore points are wanted by the window (no search) and by searches; a walk
     * that only proves segments (an LSN, the end) reads no WAL. */
    bool times = search == NULL || search->match != NULL;

    for (uint64_t segno = wk_wal_lsn_to_segno(b->start_lsn, st.seg_size); !found; segno++) {
        wk_lsn seg_start = wk_wal_segno_to_lsn(segno, st.seg_size);
        wk_lsn seg_end = seg_start + st.seg_size;
        uint32_t tli;
        wk_lsn limit;
        if (!choose(&st, segno, true, &tli, &limit) || limit <= seg_start) {
            /* Not archived on the path (an older timeline's copy past its switch point
             * would lead recovery off the path: not counted). */
            wk_wal_segment_name(out->missing, wk_window_path_tli_at(path, seg_start), segno,
                                st.seg_size);
            break;
        }
        const wk_wal_segment_index *idx = wk_archive_index_of(index, tli, segno);
        bool cut = limit < seg_end;
        out->segments++;
        out->last_segno = segno;
        out->last_tli = tli;
        out->end_lsn = cut ? limit : seg_end;
        if (idx != NULL && (!times || !must_read(idx, cut, segno == stop_seg, search))) {
            if (idx->index.xacts > 0 && segno < stop_seg && idx->index.time_max > out->consistent)
                out->consistent = idx->index.time_max;
            if (idx->index.xacts > 0 && segno > stop_seg &&
                (!out->has_commit || idx->index.time_max > out->last_commit)) {
                out->has_commit = true;
                out->last_commit = idx->index.time_max;
            }
        } else {
            if (read_records(&st, segno, tli, limit, &out->segments_read, err) != 0)
                goto out;
            for (size_t i = 0; i < st.event_count && !found; i++) {
                const wk_walrec_event *ev = &st.events[i];
                if (ev->lsn < seg_start || ev->lsn >= seg_end || ev->lsn >= limit ||
                    ev->lsn < b->start_lsn)
                    continue;
                if (ev->kind == WK_WALREC_RESTORE_POINT) {
                    if (add_point(out, ev, err) != 0)
                        goto out;
                } else if (ev->lsn < b->stop_lsn) {
                    if (ev->time > out->consistent)
                        out->consistent = ev->time;
                } else if (!out->has_commit || ev->time > out->last_commit) {
                    out->has_commit = true;
                    out->last_commit = ev->time;
                }
                if (search != NULL && search->match != NULL && search->match(ev, search->arg)) {
                    found = true;
                    stop.found = true;
                    stop.event = *ev;
                    stop.tli = wk_window_path_tli_at(path, ev->lsn);
                    stop.segno = wk_wal_lsn_to_segno(ev->end - 1, st.seg_size);
                }
            }
        }
        if (search != NULL && search->until != 0 && search->until < out->end_lsn)
            break;
        if (cut && !found) {
            /* The path goes on in this segment on a newer timeline, whose copy is missing. */
            wk_wal_segment_name(out->missing, wk_window_path_tli_at(path, limit), segno,
                                st.seg_size);
            break;
        }
    }
    if (stop_at != NULL)
        *stop_at = stop;
    rc = 0;
out:
    wk_walrec_free(st.reader);
    free(st.events);
    if (rc != 0)
        wk_window_free(out);
    return rc;
}

void wk_window_free(wk_window *w)
{
    if (w == NULL)
        return;
    free(w->points);
    w->points = NULL;
    w->point_count = 0;
}
