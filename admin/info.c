/* walkeep info: what the repository holds: each backup with its story (type, status,
 * size, duration, the WAL it needs), the WAL per timeline as ranges with gaps, and the
 * window one can restore to. */
#include "info.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "backup.h"
#include "cli.h"
#include "json.h"
#include "log.h"
#include "record.h"
#include "window.h"

#define GAPS_LISTED_MAX 1000

static const char *backup_status(const wk_backup_entry *e)
{
    if (!e->has_record)
        return "incomplete";
    return e->wal_ready ? "complete" : "waiting-for-wal";
}

static void segment_name(char *buf, uint32_t tli, uint64_t segno, uint32_t seg_size)
{
    wk_wal_segment_name(buf, tli, segno, seg_size);
}

/* The WAL of one timeline as ranges of consecutive segments, and the holes between. */
static void write_timeline(wk_json_writer *w, FILE *text, const wk_wal_timeline *t,
                           uint32_t seg_size)
{
    char first[WK_WAL_NAME_LEN + 1], last[WK_WAL_NAME_LEN + 1];
    size_t gaps_listed = 0;
    wk_json_begin_object(w);
    wk_json_kv_uint(w, "timeline", t->tli);
    wk_json_kv_bool(w, "history_file", t->has_history);
    wk_json_kv_uint(w, "segments", t->count);
    wk_json_key(w, "ranges");
    wk_json_begin_array(w);
    fprintf(text, "  timeline %u%s: %zu segments\n", t->tli,
            t->has_history ? " (history file archived)" : "", t->count);
    for (size_t i = 0; i < t->count;) {
        size_t j = i;
        while (j + 1 < t->count && t->segnos[j + 1] == t->segnos[j] + 1)
            j++;
        segment_name(first, t->tli, t->segnos[i], seg_size);
        segment_name(last, t->tli, t->segnos[j], seg_size);
        wk_json_begin_object(w);
        wk_json_kv_string(w, "first", first);
        wk_json_kv_string(w, "last", last);
        wk_json_end_object(w);
        fprintf(text, "    %s .. %s\n", first, last);
        i = j + 1;
    }
    wk_json_end_array(w);
    wk_json_key(w, "gaps");
    wk_json_begin_array(w);
    for (size_t i = 0; i + 1 < t->count; i++) {
        for (uint64_t s = t->segnos[i] + 1; s < t->segnos[i + 1]; s++) {
            if (gaps_listed++ == GAPS_LISTED_MAX)
                break;
            segment_name(first, t->tli, s, seg_size);
            wk_json_string(w, first);
            fprintf(text, "    missing: %s\n", first);
        }
    }
    wk_json_end_array(w);
    wk_json_end_object(w);
}

/* A backup's story: what it is (its type: "full"; incrementals will come), how it ended,
 * its size as read and as stored, how long it took, and the WAL it needs to become
 * consistent: from its start to its stop (times, LSNs, segments). Text: a first line,
 * then the WAL's two ends aligned below it:
 *   20261207T224119Z  full  complete  24.1 MiB (stored 3.2 MiB) in 1 min 5 s
 *     WAL from 2026-12-07 22:41:19+00  LSN 0/2000028  000000010000000000000002
 *           to 2026-12-07 22:42:24+00  LSN 0/3000100  000000010000000000000003 */
static void write_backup(wk_json_writer *w, FILE *text, const wk_backup_entry *e, uint32_t seg_size)
{
    char start_lsn[32] = "", stop_lsn[32] = "", start[40] = "", stop[40] = "";
    char first[WK_WAL_NAME_LEN + 1], last[WK_WAL_NAME_LEN + 1];
    char size[32], stored[32], took[32];
    const wk_backup_record *r = &e->record;
    wk_json_begin_object(w);
    wk_json_kv_string(w, "label", e->label);
    wk_json_kv_string(w, "status", backup_status(e));
    if (e->has_record) {
        /* The segment holding the start point to the one holding the last byte before
         * the stop point (as verify and the backup's readiness count them). */
        uint64_t first_seg = wk_wal_lsn_to_segno(r->start_lsn, seg_size);
        uint64_t last_seg =
            r->stop_lsn > r->start_lsn ? wk_wal_lsn_to_segno(r->stop_lsn - 1, seg_size) : first_seg;
        int64_t seconds =
            r->stop_time >= r->start_time ? (int64_t)(r->stop_time - r->start_time) : 0;
        wk_wal_format_lsn(start_lsn, sizeof(start_lsn), r->start_lsn);
        wk_wal_format_lsn(stop_lsn, sizeof(stop_lsn), r->stop_lsn);
        wk_record_format_time(r->start_time, start, sizeof(start));
        wk_record_format_time(r->stop_time, stop, sizeof(stop));
        segment_name(first, r->start_tli, first_seg, seg_size);
        segment_name(last, r->stop_tli, last_seg, seg_size);
        wk_json_kv_string(w, "type", "full");
        wk_json_kv_bool(w, "from_standby", r->from_standby);
        wk_json_kv_string(w, "start_time", start);
        wk_json_kv_string(w, "stop_time", stop);
        wk_json_kv_int(w, "duration_seconds", seconds);
        wk_json_kv_string(w, "start_lsn", start_lsn);
        wk_json_kv_string(w, "stop_lsn", stop_lsn);
        wk_json_kv_uint(w, "timeline", r->start_tli);
        wk_json_kv_uint(w, "stop_timeline", r->stop_tli);
        wk_json_kv_string(w, "wal_start_segment", first);
        wk_json_kv_string(w, "wal_stop_segment", last);
        wk_json_kv_uint(w, "wal_segments", last_seg - first_seg + 1);
        wk_json_kv_uint(w, "bytes", r->bytes);
        wk_json_kv_uint(w, "stored_bytes", r->stored_bytes);
        wk_json_kv_int(w, "pg_version", r->pg_version);
        fprintf(text, "  %s  full%s  %s  %s (stored %s) in %s\n", e->label,
                r->from_standby ? " (from a standby)" : "", backup_status(e),
                wk_log_format_size(size, sizeof(size), r->bytes),
                wk_log_format_size(stored, sizeof(stored), r->stored_bytes),
                wk_cli_format_duration(took, sizeof(took), (double)seconds));
        fprintf(text, "    WAL from %s  LSN %s  %s\n", start, start_lsn, first);
        fprintf(text, "          to %s  LSN %s  %s\n", stop, stop_lsn, last);
    } else {
        fprintf(text, "  %s  %s (no record: interrupted, never used)\n", e->label,
                backup_status(e));
    }
    wk_json_end_object(w);
}

/* A time both ways: text as recovery_target_time takes it, and Unix microseconds. */
static void write_time(wk_json_writer *w, const char *key, int64_t pg_time, char *text, size_t size)
{
    char us_key[64];
    wk_window_format_time(pg_time, text, size);
    wk_json_kv_string(w, key, text);
    snprintf(us_key, sizeof(us_key), "%s_unix_us", key);
    wk_json_kv_int(w, us_key, wk_walrec_time_to_unix_us(pg_time));
}

/* The window of timeline tli: from the end of the oldest usable backup it descends from
 * to the last commit archived on the way, with the restore points on it. */
static int write_window(wk_repo *repo, wk_json_writer *w, FILE *text, const wk_wal_index *index,
                        const wk_backup_entry *entries, size_t count, uint32_t tli, wk_error *err)
{
    const wk_backup_entry *from = NULL;
    wk_window_path path;
    for (size_t i = 0; i < count && from == NULL; i++) {
        if (!entries[i].has_record || !entries[i].wal_ready)
            continue;
        wk_error ignored = {0};
        if (wk_window_path_make(repo, &entries[i].record, tli, index->seg_size, &path, &ignored) ==
            0)
            from = &entries[i];
    }
    if (from == NULL)
        return 0; /* no backup leads there */
    wk_window win;
    char start[64], end[64], lsn[32];
    wk_json_begin_object(w);
    wk_json_kv_uint(w, "timeline", tli);
    wk_json_kv_string(w, "backup", from->label);
    if (wk_window_walk(repo, index, &from->record, &path, NULL, &win, NULL, err) != 0) {
        /* Said here and reported after the rest was printed. */
        wk_error_prefix(err, "could not read the recovery window of timeline %u", tli);
        wk_json_kv_string(w, "error", err->message);
        wk_json_end_object(w);
        fprintf(text, "  timeline %u: window unknown: %s\n", tli, err->message);
        return -1;
    }
    write_time(w, "from", win.consistent, start, sizeof(start));
    if (win.has_commit)
        write_time(w, "to", win.last_commit, end, sizeof(end));
    else {
        wk_json_key(w, "to");
        wk_json_null(w);
    }
    wk_wal_format_lsn(lsn, sizeof(lsn), win.end_lsn);
    wk_json_kv_string(w, "wal_end_lsn", lsn);
    if (win.missing[0] != '\0')
        wk_json_kv_string(w, "next_missing_segment", win.missing);
    else {
        wk_json_key(w, "next_missing_segment");
        wk_json_null(w);
    }
    fprintf(text, "  timeline %u: from %s (end of backup %s) to %s; WAL to %s\n", tli, start,
            from->label, win.has_commit ? end : "that (no commit archived after it)", lsn);
    wk_json_key(w, "restore_points");
    wk_json_begin_array(w);
    for (size_t i = 0; i < win.point_count; i++) {
        const wk_walrec_event *p = &win.points[i];
        wk_json_begin_object(w);
        wk_json_kv_string(w, "name", p->name);
        write_time(w, "time", p->time, end, sizeof(end));
        wk_wal_format_lsn(lsn, sizeof(lsn), p->lsn);
        wk_json_kv_string(w, "lsn", lsn);
        wk_json_kv_uint(w, "timeline", wk_window_path_tli_at(&path, p->lsn));
        wk_json_kv_bool(w, "after_backup_end", p->lsn >= from->record.stop_lsn);
        wk_json_end_object(w);
        fprintf(text, "    restore point \"%s\" at %s (WAL %s)%s\n", p->name, end, lsn,
                p->lsn >= from->record.stop_lsn ? "" : ", before the backup's end");
    }
    wk_json_end_array(w);
    wk_json_end_object(w);
    wk_window_free(&win);
    return 0;
}

int wk_info_run(wk_repo *repo, bool json, wk_error *err)
{
    wk_repo_meta meta;
    wk_backup_entry *entries = NULL;
    size_t count = 0;
    wk_wal_index index = {0};
    wk_error window_err = {0}; /* a window that could not be read, reported last */
    char *body = NULL, *doc = NULL;
    size_t body_len = 0;
    int rc = -1;
    FILE *text = open_memstream(&body, &body_len);
    wk_json_writer *w = wk_json_writer_new();
    if (text == NULL || w == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (wk_repo_open_meta(repo, NULL, &meta, NULL, err) != 0 ||
        wk_backup_list(repo, &entries, &count, err) != 0 ||
        wk_archive_index(repo, meta.seg_size, &index, err) != 0)
        goto out;

    wk_json_begin_object(w);
    wk_json_kv_string(w, "repository", repo->location);
    wk_json_kv_uint(w, "system_identifier", meta.system_identifier);
    wk_json_kv_int(w, "pg_version", meta.pg_version);
    wk_json_kv_uint(w, "wal_segment_size", meta.seg_size);
    wk_json_kv_bool(w, "encrypted", meta.encrypted);
    char seg[32];
    fprintf(text,
            "repository %s: system identifier %" PRIu64 ", PostgreSQL %d, %s WAL segments, %s\n",
            repo->location, meta.system_identifier, meta.pg_version,
            wk_log_format_size(seg, sizeof(seg), meta.seg_size),
            meta.encrypted ? "encrypted" : "not encrypted");

    fprintf(text, "backups:%s\n", count == 0 ? " none" : "");
    wk_json_key(w, "backups");
    wk_json_begin_array(w);
    for (size_t i = 0; i < count; i++)
        write_backup(w, text, &entries[i], meta.seg_size);
    wk_json_end_array(w);

    fprintf(text, "WAL:%s\n", index.count == 0 ? " none" : "");
    wk_json_key(w, "wal");
    wk_json_begin_array(w);
    for (size_t i = 0; i < index.count; i++)
        write_timeline(w, text, &index.timelines[i], meta.seg_size);
    wk_json_end_array(w);

    /* The window: from the end of the oldest usable backup to the end of the newest
     * timeline's WAL (its last segment: the exact last commit is known only to replay). */
    const wk_backup_entry *oldest = NULL;
    for (size_t i = 0; i < count && oldest == NULL; i++)
        if (entries[i].has_record && entries[i].wal_ready)
            oldest = &entries[i];
    wk_json_key(w, "recovery_window");
    wk_json_begin_object(w);
    if (oldest != NULL && index.count > 0) {
        const wk_wal_timeline *newest = &index.timelines[index.count - 1];
        char when[40], lsn[32], last[WK_WAL_NAME_LEN + 1];
        wk_record_format_time(oldest->record.stop_time, when, sizeof(when));
        wk_wal_format_lsn(lsn, sizeof(lsn), oldest->record.stop_lsn);
        wk_json_kv_string(w, "earliest_time", when);
        wk_json_kv_string(w, "earliest_lsn", lsn);
        fprintf(text, "recovery window: from %s (LSN %s, end of backup %s)", when, lsn,
                oldest->label);
        if (newest->count > 0) {
            uint64_t end_seg = newest->segnos[newest->count - 1];
            wk_wal_format_lsn(lsn, sizeof(lsn), wk_wal_segno_to_lsn(end_seg + 1, meta.seg_size));
            segment_name(last, newest->tli, end_seg, meta.seg_size);
            wk_json_kv_string(w, "latest_lsn", lsn);
            wk_json_kv_string(w, "latest_segment", last);
            wk_json_kv_uint(w, "latest_timeline", newest->tli);
            fprintf(text, " to the end of %s (LSN %s, timeline %u)", last, lsn, newest->tli);
        }
        fputc('\n', text);
    } else {
        fprintf(text, "recovery window: none (no complete backup with its WAL)\n");
    }
    wk_json_end_object(w);

    /* Per timeline, as times: what a time, name or xid target can reach. */
    wk_json_key(w, "recovery_windows");
    wk_json_begin_array(w);
    fprintf(text, "recovery windows (times of the last commit archived on the way):\n");
    for (size_t i = 0; i < index.count; i++) {
        const wk_wal_timeline *t = &index.timelines[i];
        wk_error one = {0};
        if (t->count > 0 &&
            write_window(repo, w, text, &index, entries, count, t->tli, &one) != 0 &&
            window_err.code == WK_ERR_NONE)
            window_err = one;
    }
    wk_json_end_array(w);
    wk_json_end_object(w);
    doc = wk_json_writer_finish(w, err);
    if (doc == NULL)
        goto out;
    fclose(text);
    text = NULL;
    fputs(json ? doc : body, stdout);
    rc = fflush(stdout) == 0 ? 0 : wk_error_set(err, WK_ERR_IO, "could not write the output");
    if (rc == 0 && window_err.code != WK_ERR_NONE) {
        *err = window_err; /* everything else was printed */
        rc = -1;
    }
out:
    if (text != NULL)
        fclose(text);
    free(body);
    free(doc);
    wk_json_writer_free(w);
    wk_archive_index_free(&index);
    wk_backup_list_free(entries, count);
    return rc;
}
