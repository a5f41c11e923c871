/* restore: point-in-time restore: choose a backup for a target, prove from the archive's
 * history files and segments that WAL reaches it, lay the backup down, write recovery. */
#define _XOPEN_SOURCE 700
#include "restore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "codec.h"
#include "file.h"
#include "pgctl.h"
#include "storage_posix.h"
#include "tar.h"
#include "record.h"

/* ---- choosing the backup -------------------------------------------------------- */

/* Index of the backup to restore among entries, SIZE_MAX if none fits. With
 * usable_only, backups whose WAL is not yet archived are passed over. */
static size_t pick_backup(const wk_backup_entry *entries, size_t count,
                          const wk_restore_options *opt, int64_t target_time, bool usable_only)
{
    const wk_restore_target *t = &opt->target;
    size_t chosen = SIZE_MAX;
    /* A numbered target timeline (an invalid one is refused later). */
    char *end = NULL;
    unsigned long tli_limit = t->timeline != NULL ? strtoul(t->timeline, &end, 0) : 0;
    if (t->timeline == NULL || end == t->timeline || *end != '\0')
        tli_limit = 0;
    for (size_t i = 0; i < count; i++) {
        const wk_backup_entry *e = &entries[i];
        if (!e->has_record || (usable_only && !e->wal_ready))
            continue;
        /* Timelines only grow along a history: a backup of a later one never leads to an
         * earlier one. */
        if (tli_limit != 0 && tli_limit < e->record.start_tli)
            continue;
        if (opt->backup_label != NULL) {
            if (strcmp(e->label, opt->backup_label) == 0)
                chosen = i;
        } else if (t->kind == WK_TARGET_TIME) {
            if ((int64_t)e->record.stop_time * 1000000 <= target_time)
                chosen = i;
        } else if (t->kind == WK_TARGET_LSN) {
            if (e->record.stop_lsn <= t->lsn)
                chosen = i;
        } else if (t->kind == WK_TARGET_XID || t->kind == WK_TARGET_NAME) {
            if (chosen == SIZE_MAX)
                chosen = i; /* the oldest: the target may lie anywhere after it */
        } else {
            chosen = i; /* the newest */
        }
    }
    return chosen;
}

/* "<value>" as it was read: "'<value>' (in <zone>: <UTC>)" or "'<value>'". */
static void describe_time(const wk_restore_options *opt, const wk_restore_plan *plan, char *buf,
                          size_t size)
{
    char utc[64];
    wk_window_format_time(wk_walrec_time_from_unix_us(plan->target_time), utc, sizeof(utc));
    if (plan->target_zone[0] != '\0')
        snprintf(buf, size, "\"%s\" (in %s: %s)", opt->target.value, plan->target_zone, utc);
    else
        snprintf(buf, size, "\"%s\" (%s)", opt->target.value, utc);
}

/* Reads a time target: with its UTC offset, else in --timezone, else in the TimeZone the
 * newest backup that recorded one ran with (what PostgreSQL would read it with). */
static int read_target_time(const wk_restore_options *opt, const wk_backup_entry *entries,
                            size_t count, wk_restore_plan *plan, wk_error *err)
{
    const char *zone = opt->target.zone;
    for (size_t i = count; zone == NULL && i-- > 0;)
        if (entries[i].has_record && entries[i].record.timezone[0] != '\0')
            zone = entries[i].record.timezone;
    bool zone_used = false;
    wk_error perr = {0};
    if (wk_record_parse_time_in(opt->target.value, NULL, &plan->target_time, &zone_used, &perr) ==
            0 &&
        !zone_used)
        return 0;
    if (zone == NULL) {
        wk_error_set(err, WK_ERR_USAGE,
                     "target time \"%s\" names no UTC offset, and no backup records the "
                     "server's time zone",
                     opt->target.value);
        wk_error_hint(err,
                      "give the time with its offset (e.g. '%s+00') or --timezone=ZONE, the "
                      "server's TimeZone setting",
                      opt->target.value);
        return -1;
    }
    if (!wk_record_zone_known(zone)) {
        wk_error_set(err, WK_ERR_USAGE,
                     "target time \"%s\" names no UTC offset, and time zone \"%s\" is not in "
                     "this machine's time zone database",
                     opt->target.value, zone);
        wk_error_hint(err, "give the time with its UTC offset, or --timezone=ZONE with a name "
                           "such as Europe/Berlin");
        return -1;
    }
    if (wk_record_parse_time_in(opt->target.value, zone, &plan->target_time, NULL, err) != 0)
        return wk_error_prefix(err, "--target-time");
    snprintf(plan->target_zone, sizeof(plan->target_zone), "%s", zone);
    return 0;
}

/* Usable backups (recorded, WAL archived) come first; when none fits, a recorded one is
 * taken so that the WAL proof names exactly what is missing. */
static int choose_backup(wk_repo *repo, const wk_restore_options *opt, wk_restore_plan *plan,
                         wk_error *err)
{
    wk_backup_entry *entries = NULL;
    size_t count = 0;
    const wk_restore_target *t = &opt->target;
    char when[64], target[256];
    if (wk_backup_list(repo, &entries, &count, err) != 0)
        return -1;
    int rc = -1;
    if (t->kind == WK_TARGET_TIME && read_target_time(opt, entries, count, plan, err) != 0)
        goto out;
    size_t chosen = pick_backup(entries, count, opt, plan->target_time, true);
    if (chosen == SIZE_MAX)
        chosen = pick_backup(entries, count, opt, plan->target_time, false);
    const wk_backup_entry *oldest = NULL;
    for (size_t i = 0; i < count && oldest == NULL; i++)
        if (entries[i].has_record)
            oldest = &entries[i];
    if (oldest == NULL) {
        wk_error_set(err, WK_ERR_NOTFOUND, "repository \"%s\" holds no complete backup",
                     repo->location);
        wk_error_hint(err, "take one with walkeep-basebackup");
    } else if (chosen == SIZE_MAX && opt->backup_label != NULL) {
        wk_error_set(err, WK_ERR_NOTFOUND, "no complete backup \"%s\" in the repository",
                     opt->backup_label);
        wk_error_hint(err, "\"walkeep info\" lists the backups");
    } else if (chosen == SIZE_MAX && t->kind == WK_TARGET_TIME) {
        wk_record_format_time(oldest->record.stop_time, when, sizeof(when));
        describe_time(opt, plan, target, sizeof(target));
        wk_error_set(err, WK_ERR_NOTFOUND,
                     "target time %s is before the end of the oldest backup (\"%s\", which "
                     "ended at %s)",
                     target, oldest->label, when);
        wk_error_hint(err, "no backup can be restored to a point before it ended");
    } else if (chosen == SIZE_MAX) {
        wk_wal_format_lsn(when, sizeof(when), oldest->record.stop_lsn);
        wk_error_set(err, WK_ERR_NOTFOUND,
                     "target LSN %s is before the end of the oldest "
                     "backup (\"%s\", which ended at %s)",
                     t->value, oldest->label, when);
    } else if (wk_backup_record_check(&entries[chosen].record, entries[chosen].label, err) != 0) {
        wk_error_prefix(err, "backup \"%s\" cannot be restored", entries[chosen].label);
        wk_error_hint(err, "its record contradicts itself: do not restore it; run \"walkeep "
                           "verify\"");
    } else {
        plan->backup = entries[chosen].record;
        memset(&entries[chosen].record, 0, sizeof(entries[chosen].record));
        rc = 0;
    }
out:
    wk_backup_list_free(entries, count);
    return rc;
}

/* ---- proving the WAL ------------------------------------------------------------ */

/* The timeline to recover to, as recovery_target_timeline will pick it. */
static int resolve_timeline(const wk_restore_options *opt, const wk_backup_record *b,
                            const wk_wal_index *index, uint32_t *out, wk_error *err)
{
    const char *t = opt->target.timeline != NULL ? opt->target.timeline : "latest";
    if (strcmp(t, "current") == 0) {
        *out = b->start_tli;
    } else if (strcmp(t, "latest") == 0) {
        /* PostgreSQL probes history files upward from the backup's timeline. */
        uint32_t tli = b->start_tli;
        for (;;) {
            const wk_wal_timeline *next = wk_archive_index_timeline(index, tli + 1);
            if (next == NULL || !next->has_history)
                break;
            tli++;
        }
        *out = tli;
    } else {
        char *end = NULL;
        unsigned long v = strtoul(t, &end, 0);
        if (end == t || *end != '\0' || v == 0 || v > UINT32_MAX)
            return wk_error_set(err, WK_ERR_USAGE, "invalid target timeline \"%s\"", t);
        *out = (uint32_t)v;
    }
    return 0;
}

/* What recovery stops at, for the walk along the path. */
typedef struct target_search {
    const wk_restore_target *t;
    int64_t time; /* PostgreSQL time */
    bool exclusive;
    uint32_t xid;
} target_search;

/* recovery_target_time: recovery stops before the first commit or abort later than the
 * target (inclusive) or at it or later (exclusive). */
static bool want_time(const wk_walrec_summary *s, void *arg)
{
    const target_search *ts = arg;
    return s->xacts > 0 && (ts->exclusive ? s->time_max >= ts->time : s->time_max > ts->time);
}

static bool match_time(const wk_walrec_event *ev, void *arg)
{
    const target_search *ts = arg;
    return ev->kind != WK_WALREC_RESTORE_POINT &&
           (ts->exclusive ? ev->time >= ts->time : ev->time > ts->time);
}

/* recovery_target_xid: the commit or abort of that transaction. */
static bool want_xid(const wk_walrec_summary *s, void *arg)
{
    const target_search *ts = arg;
    return s->xacts > 0 && s->xid_min <= ts->xid && ts->xid <= s->xid_max;
}

static bool match_xid(const wk_walrec_event *ev, void *arg)
{
    const target_search *ts = arg;
    return ev->kind != WK_WALREC_RESTORE_POINT && ev->xid == ts->xid;
}

/* recovery_target_name: the first restore point of that name (segments holding restore
 * points are always read). */
static bool want_nothing(const wk_walrec_summary *s, void *arg)
{
    (void)s;
    (void)arg;
    return false;
}

static bool match_name(const wk_walrec_event *ev, void *arg)
{
    const target_search *ts = arg;
    return ev->kind == WK_WALREC_RESTORE_POINT && strcmp(ev->name, ts->t->value) == 0;
}

static int missing_segment(const wk_window *w, const wk_backup_record *b, uint32_t target_tli,
                           wk_error *err)
{
    wk_error_set(err, WK_ERR_NOTFOUND, "WAL segment %s is missing from the archive", w->missing);
    wk_error_detail(err,
                    "restoring backup \"%s\" to the target needs every segment from its start "
                    "on the way to timeline %u",
                    b->label, target_tli);
    wk_error_hint(err, "nothing was written; choose an earlier target, or restore the segment "
                       "into the repository");
    return -1;
}

/* Whether the archive holds a segment of the path after segno: of a timeline of it, up to
 * the one holding its switch point (an older timeline's later segments are another
 * history, such as the old primary's after a failover). */
static bool archived_after(const wk_wal_index *index, const wk_window_path *path, uint64_t segno)
{
    for (size_t k = 0; k < path->count; k++) {
        const wk_wal_timeline *tl = wk_archive_index_timeline(index, path->steps[k].tli);
        uint64_t last_on_path = path->steps[k].end == UINT64_MAX
                                    ? UINT64_MAX
                                    : wk_wal_lsn_to_segno(path->steps[k].end, index->seg_size);
        for (size_t i = tl != NULL ? tl->count : 0; i-- > 0;) {
            if (tl->segnos[i] <= segno)
                break;
            if (tl->segnos[i] <= last_on_path)
                return true;
        }
    }
    return false;
}

/* The window of a walk, for messages: "from <time> (end of backup "<label>") to <time>". */
static void describe_window(const wk_window *w, const wk_backup_record *b, char *buf, size_t size)
{
    char from[64], to[128];
    wk_window_format_time(w->consistent, from, sizeof(from));
    if (w->has_commit)
        wk_window_format_time(w->last_commit, to, sizeof(to));
    else
        snprintf(to, sizeof(to), "%s (no commit archived after it)", from);
    snprintf(buf, size, "from %s (end of backup \"%s\") to %s", from, b->label, to);
}

/* The walk found what recovery stops at: it must lie after the backup's end (recovery
 * checks targets from the backup's start, and one met before it is consistent is fatal). */
static int check_stop(const wk_restore_options *opt, const wk_restore_plan *plan, wk_error *err)
{
    const wk_backup_record *b = &plan->backup;
    const wk_walrec_event *ev = &plan->stop.event;
    char when[64], lsn[32];
    wk_window_format_time(ev->time, when, sizeof(when));
    wk_wal_format_lsn(lsn, sizeof(lsn), ev->lsn);
    if (opt->target.kind == WK_TARGET_XID && ev->kind == WK_WALREC_ABORT) {
        wk_error_set(err, WK_ERR_USAGE,
                     "transaction %s was rolled back (at %s, WAL %s), it did not commit",
                     opt->target.value, when, lsn);
        wk_error_hint(err, "nothing was written; --target-xid takes a transaction that "
                           "committed");
        return -1;
    }
    if (ev->lsn >= b->stop_lsn)
        return 0;
    if (opt->target.kind == WK_TARGET_TIME) {
        char target[256];
        describe_time(opt, plan, target, sizeof(target));
        wk_error_set(err, WK_ERR_NOTFOUND,
                     "target time %s is before backup \"%s\" became consistent: a "
                     "transaction committed at %s (WAL %s), before the backup's end",
                     target, b->label, when, lsn);
    } else if (opt->target.kind == WK_TARGET_XID) {
        wk_error_set(err, WK_ERR_NOTFOUND,
                     "transaction %s committed before backup \"%s\" ended (at %s, WAL %s)",
                     opt->target.value, b->label, when, lsn);
    } else {
        wk_error_set(err, WK_ERR_NOTFOUND,
                     "restore point \"%s\" was created before backup \"%s\" ended (at %s, "
                     "WAL %s)",
                     opt->target.value, b->label, when, lsn);
    }
    wk_error_hint(err, "nothing was written; restore an older backup (--backup; \"walkeep "
                       "info\" lists them) or choose a later target");
    return -1;
}

/* The walk did not find what recovery would stop at. */
static int target_not_found(const wk_restore_options *opt, const wk_restore_plan *plan,
                            wk_error *err)
{
    const wk_backup_record *b = &plan->backup;
    char window[320], target[256];
    describe_window(&plan->window, b, window, sizeof(window));
    if (opt->target.kind == WK_TARGET_TIME) {
        describe_time(opt, plan, target, sizeof(target));
        wk_error_set(err, WK_ERR_NOTFOUND,
                     "target time %s is after the last commit archived on timeline %u", target,
                     plan->target_tli);
    } else if (opt->target.kind == WK_TARGET_XID) {
        wk_error_set(err, WK_ERR_NOTFOUND,
                     "transaction %s did not commit in the WAL archived after backup \"%s\" on "
                     "the way to timeline %u",
                     opt->target.value, b->label, plan->target_tli);
    } else {
        wk_error_set(err, WK_ERR_NOTFOUND,
                     "no restore point \"%s\" in the WAL archived after backup \"%s\" on the way "
                     "to timeline %u",
                     opt->target.value, b->label, plan->target_tli);
    }
    if (plan->window.missing[0] != '\0')
        wk_error_detail(err,
                        "the recovery window runs %s; the archive's WAL ends before segment "
                        "%s",
                        window, plan->window.missing);
    else
        wk_error_detail(err, "the recovery window runs %s", window);
    if (opt->target.kind == WK_TARGET_TIME)
        wk_error_hint(err, "nothing was written; choose a time in the window, or pass "
                           "--target-beyond-archive if WAL archived later will reach it");
    else if (opt->target.kind == WK_TARGET_NAME)
        wk_error_hint(err, "nothing was written; \"walkeep info\" lists the restore points");
    else
        wk_error_hint(err, "nothing was written; check the transaction id (txid_current() "
                           "showed it) and the timeline");
    return -1;
}

/* What goes into postgresql.auto.conf must be something PostgreSQL takes: checked before
 * anything is written (the server would refuse it at start, after the whole backup was
 * laid down). */
static int check_settings(const wk_restore_options *opt, wk_error *err)
{
    const struct {
        const char *what, *value;
    } values[] = {{"restore_command", opt->restore_command},
                  {"the recovery target", opt->target.value},
                  {"--target-timeline", opt->target.timeline}};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        if (values[i].value == NULL)
            continue;
        for (const unsigned char *p = (const unsigned char *)values[i].value; *p != '\0'; p++)
            if (*p < 0x20 || *p == 0x7f)
                return wk_error_set(err, WK_ERR_USAGE,
                                    "%s holds a control character (a newline?), which "
                                    "postgresql.auto.conf cannot hold",
                                    values[i].what);
    }
    /* PostgreSQL's restore point names are shorter than 64 bytes (MAXFNAMELEN). */
    if (opt->target.kind == WK_TARGET_NAME &&
        (opt->target.value == NULL || opt->target.value[0] == '\0' ||
         strlen(opt->target.value) > 63))
        return wk_error_set(err, WK_ERR_USAGE,
                            "--target-name takes the name of a restore point: 1 to 63 bytes");
    return 0;
}

int wk_restore_plan_make(wk_repo *repo, const wk_restore_options *opt, wk_restore_plan *plan,
                         wk_error *err)
{
    wk_repo_meta meta;
    wk_wal_index index = {0};
    wk_window_path path;
    int rc = -1;
    const wk_restore_target *t = &opt->target;

    memset(plan, 0, sizeof(*plan));
    if (check_settings(opt, err) != 0 || wk_repo_open_meta(repo, NULL, &meta, NULL, err) != 0)
        return -1;
    if (choose_backup(repo, opt, plan, err) != 0)
        return -1;
    const wk_backup_record *b = &plan->backup;
    if (b->system_identifier != meta.system_identifier || b->pg_version != meta.pg_version) {
        wk_error_set(err, WK_ERR_CORRUPT,
                     "backup \"%s\" is of system %" PRIu64 " (PostgreSQL %d), the repository of "
                     "system %" PRIu64 " (PostgreSQL %d)",
                     b->label, b->system_identifier, b->pg_version, meta.system_identifier,
                     meta.pg_version);
        wk_error_hint(err, "the record contradicts the repository: do not restore it; run "
                           "\"walkeep verify\"");
        goto out;
    }
    if (t->kind == WK_TARGET_TIME && plan->target_time < (int64_t)b->stop_time * 1000000) {
        char when[64], target[256];
        wk_record_format_time(b->stop_time, when, sizeof(when));
        describe_time(opt, plan, target, sizeof(target));
        wk_error_set(err, WK_ERR_NOTFOUND, "target time %s is before the end of backup \"%s\" (%s)",
                     target, b->label, when);
        goto out;
    }
    if (t->kind == WK_TARGET_LSN && t->lsn < b->stop_lsn) {
        char stop[32];
        wk_wal_format_lsn(stop, sizeof(stop), b->stop_lsn);
        wk_error_set(err, WK_ERR_NOTFOUND,
                     "target LSN %s is before the end of backup \"%s\" "
                     "(%s)",
                     t->value, b->label, stop);
        goto out;
    }
    if (wk_archive_index(repo, meta.seg_size, &index, err) != 0 ||
        resolve_timeline(opt, b, &index, &plan->target_tli, err) != 0 ||
        wk_window_path_make(repo, b, plan->target_tli, meta.seg_size, &path, err) != 0)
        goto out;
    for (size_t k = 1; k < path.count; k++) {
        const wk_wal_timeline *tl = wk_archive_index_timeline(&index, path.steps[k].tli);
        if (tl == NULL || !tl->has_history) {
            wk_error_set(err, WK_ERR_NOTFOUND,
                         "timeline history file %08X.history is missing from the archive",
                         path.steps[k].tli);
            goto out;
        }
    }

    /* Walk the path as recovery will, to what it stops at. */
    target_search ts = {.t = t,
                        .time = wk_walrec_time_from_unix_us(plan->target_time),
                        .exclusive = t->inclusive != NULL && strcmp(t->inclusive, "false") == 0};
    wk_window_search search = {.arg = &ts};
    if (t->kind == WK_TARGET_TIME) {
        search.want = want_time;
        search.match = match_time;
    } else if (t->kind == WK_TARGET_XID) {
        ts.xid = (uint32_t)strtoull(t->value, NULL, 0); /* PostgreSQL keeps the low 32 bits */
        search.want = want_xid;
        search.match = match_xid;
    } else if (t->kind == WK_TARGET_NAME) {
        search.want = want_nothing;
        search.match = match_name;
    } else if (t->kind == WK_TARGET_LSN) {
        search.until = t->lsn;
    } else if (t->kind == WK_TARGET_IMMEDIATE) {
        search.until = b->stop_lsn - 1;
    }
    if (wk_window_walk(repo, &index, b, &path, &search, &plan->window, &plan->stop, err) != 0)
        goto out;
    const wk_window *w = &plan->window;
    bool searching =
        t->kind == WK_TARGET_TIME || t->kind == WK_TARGET_XID || t->kind == WK_TARGET_NAME;
    if (searching && plan->stop.found && check_stop(opt, plan, err) != 0)
        goto out;
    if (w->end_lsn < b->stop_lsn) {
        missing_segment(w, b, plan->target_tli, err);
        goto out;
    }
    if (searching && !plan->stop.found && !(t->kind == WK_TARGET_TIME && t->beyond_archive)) {
        /* A hole with WAL archived after it: the target may lie beyond, name the hole. */
        if (w->missing[0] != '\0' && archived_after(&index, &path, w->last_segno))
            missing_segment(w, b, plan->target_tli, err);
        else
            target_not_found(opt, plan, err);
        goto out;
    }
    if (t->kind == WK_TARGET_LSN && w->end_lsn <= t->lsn) {
        missing_segment(w, b, plan->target_tli, err);
        goto out;
    }
    if (!plan->stop.found && (t->kind == WK_TARGET_END || t->kind == WK_TARGET_TIME) &&
        w->missing[0] != '\0' && archived_after(&index, &path, w->last_segno)) {
        /* Replay to the end: the archive must be whole up to its newest segment on the
         * path, or recovery would stop at the hole and promote too early. */
        missing_segment(w, b, plan->target_tli, err);
        goto out;
    }
    plan->segments = w->segments;
    wk_wal_segment_name(plan->last_segment, w->last_tli, w->last_segno, meta.seg_size);
    if (plan->stop.found && plan->stop.segno > w->last_segno) {
        /* The record recovery stops at ends in the next segment. */
        plan->segments++;
        wk_wal_segment_name(plan->last_segment, w->last_tli, plan->stop.segno, meta.seg_size);
    }
    rc = 0;
out:
    wk_archive_index_free(&index);
    if (rc != 0)
        wk_restore_plan_free(plan);
    return rc;
}

void wk_restore_plan_free(wk_restore_plan *plan)
{
    if (plan != NULL) {
        wk_backup_record_free(&plan->backup);
        wk_window_free(&plan->window);
    }
}

/* ---- laying the backup down ----------------------------------------------------- */

/* 0 when path does not exist or is an empty folder; reports otherwise. */
static int check_empty(const char *path, wk_error *err)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        return wk_error_sys(err, WK_ERR_IO, errno, "could not open folder \"%s\"", path);
    }
    struct dirent *de;
    bool empty = true;
    while (empty && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            empty = false;
    closedir(d);
    if (!empty) {
        wk_error_set(err, WK_ERR_EXISTS, "folder \"%s\" is not empty", path);
        wk_error_hint(err, "pitr-restore lays a backup down only into an empty or new folder; "
                           "nothing in it was touched");
        return -1;
    }
    return 0;
}

static int make_folder(const char *path, wk_error *err)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return wk_error_sys(err, WK_ERR_IO, errno, "could not create folder \"%s\"", buf);
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not create folder \"%s\"", buf);
    if (chmod(buf, 0700) != 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not set the mode of \"%s\"", buf);
    return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    if (ftw->level == 0)
        return 0; /* keep the folder itself */
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* Empties a folder we filled (it was empty or absent before). */
static void empty_folder(const char *path)
{
    nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS);
}

static const char *mapped_location(const wk_restore_options *opt, const char *location)
{
    for (size_t i = 0; i < opt->map_count; i++)
        if (strcmp(opt->maps[i].from, location) == 0)
            return opt->maps[i].to;
    return location;
}

/* --delta: the paths each destination folder of the backup holds, so that what else the
 * older copy holds can be removed. */
typedef struct delta_root {
    const char *folder;
    char **paths; /* relative to folder; sorted before the sweep */
    size_t count, cap;
} delta_root;

static int note_path(const char *path, void *arg)
{
    delta_root *root = arg;
    if (root->count == root->cap) {
        size_t cap = root->cap == 0 ? 1024 : root->cap * 2;
        char **grown = realloc(root->paths, cap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        root->paths = grown;
        root->cap = cap;
    }
    root->paths[root->count] = strdup(path);
    return root->paths[root->count++] == NULL ? -1 : 0;
}

/* Streams one archive of the backup, decoded and checked, into its place (delta: over
 * the older copy, noting every path into root). */
static int lay_stream(wk_repo *repo, const wk_backup_record *b, const wk_backup_stream *s,
                      const char *dest, delta_root *root, wk_restore_delta_result *delta,
                      wk_progress *ps, wk_error *err)
{
    wk_stage *chain = NULL;
    wk_storage *folder = NULL;
    uint64_t done_before = ps->done, written = 0;
    wk_tar_options tar = {.bytes_written = &written,
                          .delta = root != NULL,
                          .bytes_kept = delta != NULL ? &delta->kept : NULL,
                          .seen = root != NULL ? note_path : NULL,
                          .seen_arg = root};
    int rc = -1;
    if (strcmp(s->name, "backup_manifest") == 0) {
        char old[PATH_MAX];
        snprintf(old, sizeof(old), "%s/backup_manifest", dest);
        if (root != NULL &&
            ((unlink(old) != 0 && errno != ENOENT) || note_path("backup_manifest", root) != 0)) {
            wk_error_sys(err, WK_ERR_IO, errno, "could not replace \"%s\"", old);
            goto out;
        }
        if (wk_storage_posix_open(dest, false, &folder, err) != 0 ||
            wk_storage_put_open(folder, "backup_manifest", WK_PUT_NOREPLACE, &chain, err) != 0)
            goto out;
    } else {
        chain = wk_tar_extract_new(dest, &tar, err);
        if (chain == NULL)
            goto out;
    }
    chain = wk_stage_progress_new(chain, ps, err);
    if (chain == NULL)
        goto out;
    chain = wk_repo_decoder_new(repo, s->object, b->compress, &s->fingerprint, chain, err);
    if (chain == NULL)
        goto out;
    if (wk_storage_get(repo->storage, s->object, chain, err) != 0 ||
        wk_stage_finish(chain, err) != 0) {
        if (err->code == WK_ERR_NOTFOUND)
            err->code = WK_ERR_CORRUPT;
        wk_error_prefix(err, "could not restore \"%s\"", s->object);
        goto out;
    }
    rc = 0;
out:
    if (delta != NULL)
        delta->bytes += written;
    /* The stream counts as done either way, so the total stays reachable. */
    ps->done = done_before + s->bytes;
    if (ps->fn != NULL)
        ps->fn(ps->done, ps->total, ps->arg);
    wk_stage_free(chain);
    wk_storage_free(folder);
    return rc;
}

static int compare_paths(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static delta_root *sweeping; /* nftw passes no argument: the root being swept */
static uint64_t swept;

static int sweep_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    if (ftw->level == 0)
        return 0;
    const char *rel = path + strlen(sweeping->folder);
    while (*rel == '/')
        rel++;
    if (bsearch(&rel, sweeping->paths, sweeping->count, sizeof(char *), compare_paths) != NULL)
        return 0;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0)
        return errno;
    swept++;
    return 0;
}

/* --delta, after every archive: removes from root's folder what the backup does not hold
 * (deepest first, so that a folder the backup lacks is empty when its turn comes). */
static int sweep_root(delta_root *root, wk_restore_delta_result *delta, wk_error *err)
{
    if (root->count > 1)
        qsort(root->paths, root->count, sizeof(*root->paths), compare_paths);
    sweeping = root;
    swept = 0;
    int e = nftw(root->folder, sweep_entry, 32, FTW_DEPTH | FTW_PHYS);
    sweeping = NULL;
    if (delta != NULL)
        delta->removed += swept;
    if (e != 0)
        return wk_error_sys(err, WK_ERR_IO, e > 0 ? e : errno,
                            "could not remove what the backup lacks from \"%s\"", root->folder);
    return 0;
}

/* --delta: a folder that is not empty must hold a data directory of the backup's cluster
 * with no server running on it. */
static int check_delta_target(const char *pgdata, const wk_backup_record *b, wk_error *err)
{
    wk_error probe = {0};
    if (check_empty(pgdata, &probe) == 0)
        return 0; /* absent or empty: an ordinary restore */
    long pid = wk_pgctl_running_pid(pgdata);
    if (pid > 0) {
        wk_error_set(err, WK_ERR_USAGE, "a server is running on \"%s\" (pid %ld)", pgdata, pid);
        wk_error_hint(err, "stop it first (pg_ctl stop -D %s); nothing was touched", pgdata);
        return -1;
    }
    uint64_t id = 0;
    if (wk_cluster_control_identifier(pgdata, &id, &probe) != 0) {
        wk_error_set(err, WK_ERR_USAGE, "\"%s\" holds no PostgreSQL data directory: %s", pgdata,
                     probe.message);
        wk_error_hint(err, "--delta updates an older copy of the same cluster; give an empty "
                           "or new folder for a restore from scratch; nothing was touched");
        return -1;
    }
    if (id != b->system_identifier) {
        wk_error_set(err, WK_ERR_CLUSTER,
                     "\"%s\" belongs to another cluster (system identifier %" PRIu64
                     ", the backup's is %" PRIu64 ")",
                     pgdata, id, b->system_identifier);
        wk_error_hint(err, "--delta updates an older copy of the same cluster; nothing was "
                           "touched");
        return -1;
    }
    return 0;
}

/* --delta: a tablespace folder that is not empty must hold only what PostgreSQL keeps in
 * one (PG_<major>_<catalog version> folders): everything else in it would be swept. */
static int check_delta_tablespace(const char *folder, wk_error *err)
{
    DIR *d = opendir(folder);
    if (d == NULL)
        return errno == ENOENT
                   ? 0
                   : wk_error_sys(err, WK_ERR_IO, errno, "could not open folder \"%s\"", folder);
    struct dirent *de;
    const char *stranger = NULL;
    while (stranger == NULL && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
            strncmp(de->d_name, "PG_", 3) != 0)
            stranger = de->d_name;
    if (stranger != NULL) {
        wk_error_set(err, WK_ERR_USAGE,
                     "tablespace folder \"%s\" holds \"%s\", which is no tablespace's", folder,
                     stranger);
        wk_error_hint(err, "--delta removes what the backup lacks from each folder it lays "
                           "down: map the tablespace to an empty folder or to its older copy; "
                           "nothing was touched");
    }
    closedir(d);
    return stranger != NULL ? -1 : 0;
}

/* Writes a small file of the data directory whole or not at all (mode 0600). */
static int write_file(const char *folder, const char *name, const char *text, wk_error *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", folder, name) >= (int)sizeof(path))
        return wk_error_set(err, WK_ERR_USAGE, "path \"%.200s...\" is too long", folder);
    return wk_file_write(path, text, strlen(text), 0600, 0, err);
}

/* Reads a small text file; a missing one is empty. */
static char *read_text(const char *path, wk_error *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return strdup("");
        wk_error_sys(err, WK_ERR_IO, errno, "could not open \"%s\"", path);
        return NULL;
    }
    char *text = NULL;
    size_t cap = 0, len = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (len + 2 > cap) {
            cap = cap == 0 ? 4096 : cap * 2;
            char *grown = realloc(text, cap);
            if (grown == NULL) {
                free(text);
                fclose(f);
                wk_error_set(err, WK_ERR_NOMEM, "out of memory");
                return NULL;
            }
            text = grown;
        }
        text[len++] = (char)c;
    }
    fclose(f);
    if (text == NULL)
        return strdup("");
    text[len] = '\0';
    return text;
}

/* Appends to a growing buffer; returns -1 when out of memory. */
static int append(char **buf, size_t *len, size_t *cap, const char *text)
{
    size_t n = strlen(text);
    if (*len + n + 1 > *cap) {
        size_t cap2 = (*len + n + 1) * 2;
        char *grown = realloc(*buf, cap2);
        if (grown == NULL)
            return -1;
        *buf = grown;
        *cap = cap2;
    }
    memcpy(*buf + *len, text, n + 1);
    *len += n;
    return 0;
}

/* A postgresql.conf string literal: PostgreSQL reads backslash escapes in them, so
 * backslashes are doubled as well as single quotes (as ALTER SYSTEM writes them). */
static int quote(const char *value, char *buf, size_t size, wk_error *err)
{
    size_t j = 0;
    buf[j++] = '\'';
    for (const char *p = value; *p != '\0'; p++) {
        if (j + 4 >= size)
            return wk_error_set(err, WK_ERR_USAGE, "setting \"%.60s...\" is too long", value);
        if (*p == '\'' || *p == '\\')
            buf[j++] = *p;
        buf[j++] = *p;
    }
    buf[j++] = '\'';
    buf[j] = '\0';
    return 0;
}

/* Rewrites postgresql.auto.conf: the backup's own lines stay, except stale recovery
 * settings; ours follow. */
static int write_recovery_settings(const wk_restore_options *opt, const wk_restore_plan *plan,
                                   wk_error *err)
{
    char path[4200], line[8400], quoted[8200];
    snprintf(path, sizeof(path), "%s/postgresql.auto.conf", opt->pgdata);
    char *old = read_text(path, err);
    char *out = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;
    if (old == NULL)
        return -1;
    bool ok = true;
    for (char *save = NULL, *l = strtok_r(old, "\n", &save); l != NULL && ok;
         l = strtok_r(NULL, "\n", &save)) {
        const char *key = l + strspn(l, " \t");
        if (strncmp(key, "restore_command", 15) == 0 || strncmp(key, "recovery_target", 15) == 0 ||
            strncmp(key, "recovery_min_apply_delay", 24) == 0 ||
            strncmp(key, "archive_cleanup_command", 23) == 0 ||
            strncmp(key, "recovery_end_command", 20) == 0)
            continue;
        ok = append(&out, &len, &cap, l) == 0 && append(&out, &len, &cap, "\n") == 0;
    }
    const wk_restore_target *t = &opt->target;
    snprintf(line, sizeof(line), "# written by pitr-restore (walkeep): backup %s\n",
             plan->backup.label);
    ok = ok && append(&out, &len, &cap, line) == 0;
    if (quote(opt->restore_command, quoted, sizeof(quoted), err) != 0)
        goto out;
    snprintf(line, sizeof(line), "restore_command = %s\n", quoted);
    ok = ok && append(&out, &len, &cap, line) == 0;
    /* A standby's settings that archive recovery honours too: a delay that would hold
     * replay back, and commands that would act on its archive. Whatever postgresql.conf
     * says, this file is read last. */
    ok = ok && append(&out, &len, &cap,
                      "recovery_min_apply_delay = 0\narchive_cleanup_command = ''\n"
                      "recovery_end_command = ''\n") == 0;
    static const char *const names[] = {[WK_TARGET_TIME] = "recovery_target_time",
                                        [WK_TARGET_XID] = "recovery_target_xid",
                                        [WK_TARGET_LSN] = "recovery_target_lsn",
                                        [WK_TARGET_NAME] = "recovery_target_name"};
    if (t->kind == WK_TARGET_IMMEDIATE) {
        ok = ok && append(&out, &len, &cap, "recovery_target = 'immediate'\n") == 0;
    } else if (t->kind != WK_TARGET_END) {
        /* A time as UTC: PostgreSQL reads it the same whatever its TimeZone. */
        char utc[64];
        wk_window_format_time(wk_walrec_time_from_unix_us(plan->target_time), utc, sizeof(utc));
        if (quote(t->kind == WK_TARGET_TIME ? utc : t->value, quoted, sizeof(quoted), err) != 0)
            goto out;
        snprintf(line, sizeof(line), "%s = %s\n", names[t->kind], quoted);
        ok = ok && append(&out, &len, &cap, line) == 0;
    }
    if (t->inclusive != NULL && t->kind != WK_TARGET_END && t->kind != WK_TARGET_IMMEDIATE) {
        snprintf(line, sizeof(line), "recovery_target_inclusive = %s\n", t->inclusive);
        ok = ok && append(&out, &len, &cap, line) == 0;
    }
    snprintf(line, sizeof(line), "recovery_target_timeline = '%s'\n",
             t->timeline != NULL ? t->timeline : "latest");
    ok = ok && append(&out, &len, &cap, line) == 0;
    if (t->kind != WK_TARGET_END) {
        snprintf(line, sizeof(line), "recovery_target_action = '%s'\n",
                 t->action != NULL ? t->action : "promote");
        ok = ok && append(&out, &len, &cap, line) == 0;
    }
    if (!ok) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = write_file(opt->pgdata, "postgresql.auto.conf", out, err);
out:
    free(old);
    free(out);
    return rc;
}

/* tablespace_map lines are "<oid> <folder>": point mapped tablespaces at their new home. */
static int rewrite_tablespace_map(const wk_restore_options *opt, wk_error *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/tablespace_map", opt->pgdata);
    if (opt->map_count == 0 || access(path, F_OK) != 0)
        return 0;
    char *old = read_text(path, err), *out = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;
    bool ok = old != NULL;
    for (char *save = NULL, *l = ok ? strtok_r(old, "\n", &save) : NULL; l != NULL && ok;
         l = strtok_r(NULL, "\n", &save)) {
        char *space = strchr(l, ' ');
        if (space == NULL) {
            ok = append(&out, &len, &cap, l) == 0 && append(&out, &len, &cap, "\n") == 0;
            continue;
        }
        *space = '\0';
        ok = append(&out, &len, &cap, l) == 0 && append(&out, &len, &cap, " ") == 0 &&
             append(&out, &len, &cap, mapped_location(opt, space + 1)) == 0 &&
             append(&out, &len, &cap, "\n") == 0;
    }
    if (old == NULL)
        goto out;
    if (!ok) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = write_file(opt->pgdata, "tablespace_map", out != NULL ? out : "", err);
out:
    free(old);
    free(out);
    return rc;
}

static int sync_tree(const char *path, wk_error *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not open \"%s\"", path);
    int rc = syncfs(fd);
    int e = errno;
    close(fd);
    return rc == 0 ? 0 : wk_error_sys(err, WK_ERR_IO, e, "could not sync \"%s\"", path);
}

/* What the base archive laid down must be a data directory. */
static int check_data_directory(const char *pgdata, wk_error *err)
{
    static const char *const needed[] = {"PG_VERSION", "global/pg_control"};
    for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
        char path[PATH_MAX + 32];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/%s", pgdata, needed[i]);
        if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            return wk_error_set(err, WK_ERR_CORRUPT,
                                "the base archive holds no %s: it is no data directory", needed[i]);
    }
    return 0;
}

/* A backup of a standby holds its standby.signal: restored as it is, the copy would
 * start as a standby and follow the primary of its primary_conninfo instead of
 * recovering to the target. A restore recovers (recovery.signal), so the file goes. */
static int drop_standby_signal(const char *pgdata, wk_error *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/standby.signal", pgdata);
    if (unlink(path) == 0) {
        wk_notice(WK_LOG_INFO, "removed standby.signal (the backup was taken from a standby): "
                               "the copy recovers to the target, it does not follow a primary");
        return 0;
    }
    if (errno == ENOENT)
        return 0;
    return wk_error_sys(err, WK_ERR_IO, errno, "could not remove \"%s\"", path);
}

int wk_restore_lay_down(wk_repo *repo, const wk_restore_options *opt, const wk_restore_plan *plan,
                        wk_error *err)
{
    const wk_backup_record *b = &plan->backup;
    wk_progress ps = {.fn = opt->progress, .arg = opt->progress_arg};
    size_t made = 0;
    const char **folders = calloc(b->stream_count + 1, sizeof(*folders));
    delta_root *roots = NULL; /* --delta: one per destination folder */
    size_t root_count = 0;
    int rc = -1;
    if (folders == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    if (b->encrypted && repo->key == NULL) {
        wk_error_set(err, WK_ERR_KEY, "backup \"%s\" is encrypted but no key is configured",
                     b->label);
        wk_error_hint(err, "set \"encrypt_key_file\" to the key the repository was created with");
        goto out;
    }
    if (!b->encrypted && repo->key != NULL) {
        wk_error_set(err, WK_ERR_KEY, "backup \"%s\" is not encrypted but a key is configured",
                     b->label);
        wk_error_hint(err, "an encrypted repository holds only encrypted backups: check with "
                           "\"walkeep verify\" who wrote this one");
        goto out;
    }
    /* Every destination is checked before anything is written. */
    if ((opt->delta ? check_delta_target(opt->pgdata, b, err) : check_empty(opt->pgdata, err)) != 0)
        goto out;
    for (size_t i = 0; i < b->stream_count; i++) {
        ps.total += b->streams[i].bytes;
        const char *location = b->streams[i].location;
        if (location != NULL &&
            (opt->delta ? check_delta_tablespace(mapped_location(opt, location), err)
                        : check_empty(mapped_location(opt, location), err)) != 0)
            goto out;
    }
    if (opt->delta && (roots = calloc(b->stream_count + 1, sizeof(*roots))) == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (make_folder(opt->pgdata, err) != 0)
        goto out;
    folders[made++] = opt->pgdata;
    for (size_t i = 0; i < b->stream_count; i++) {
        const wk_backup_stream *s = &b->streams[i];
        const char *dest = opt->pgdata;
        if (s->location != NULL) {
            dest = mapped_location(opt, s->location);
            if (make_folder(dest, err) != 0)
                goto fail;
            folders[made++] = dest;
        }
        delta_root *root = NULL;
        for (size_t r = 0; opt->delta && root == NULL; r++) {
            if (r == root_count)
                roots[root_count++].folder = dest;
            if (strcmp(roots[r].folder, dest) == 0)
                root = &roots[r];
        }
        if (lay_stream(repo, b, s, dest, root, opt->delta_result, &ps, err) != 0)
            goto fail;
    }
    for (size_t r = 0; r < root_count; r++)
        if (sweep_root(&roots[r], opt->delta_result, err) != 0)
            goto fail;
    if (check_data_directory(opt->pgdata, err) != 0 || rewrite_tablespace_map(opt, err) != 0 ||
        drop_standby_signal(opt->pgdata, err) != 0 ||
        write_recovery_settings(opt, plan, err) != 0 ||
        write_file(opt->pgdata, "recovery.signal", "", err) != 0)
        goto fail;
    for (size_t i = 0; i < made; i++)
        if (sync_tree(folders[i], err) != 0)
            goto fail;
    rc = 0;
    goto out;
fail:
    if (opt->delta) {
        wk_error_hint(err, "the data directory is partly updated (and has no recovery.signal): "
                           "run the same pitr-restore --delta again");
    } else {
        for (size_t i = 0; i < made; i++)
            empty_folder(folders[i]);
        wk_error_hint(err, "what was laid down was removed again");
    }
out:
    for (size_t r = 0; r < root_count; r++) {
        for (size_t i = 0; i < roots[r].count; i++)
            free(roots[r].paths[i]);
        free(roots[r].paths);
    }
    free(roots);
    free(folders);
    return rc;
}

/* ---- options and restore_command shared by pitr-restore and walkeep drill ------------- */

/* Appends arg to a shell command, single-quoted when it holds anything but plain
 * characters. */
static void shell_append(char *cmd, size_t size, const char *arg)
{
    size_t len = strlen(cmd);
    bool plain =
        arg[0] != '\0' && strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                      "0123456789_./=:@%+-,") == strlen(arg);
    if (len > 0 && len + 1 < size)
        cmd[len++] = ' ';
    if (plain) {
        snprintf(cmd + len, size - len, "%s", arg);
        return;
    }
    if (len + 1 < size)
        cmd[len++] = '\'';
    for (const char *p = arg; *p != '\0' && len + 5 < size; p++) {
        if (*p == '\'') {
            memcpy(cmd + len, "'\\''", 4);
            len += 4;
        } else {
            cmd[len++] = *p;
        }
    }
    if (len + 1 < size)
        cmd[len++] = '\'';
    cmd[len] = '\0';
}

int wk_restore_command_build(const wk_config *cfg, char *cmd, size_t size, wk_error *err)
{
    char self[PATH_MAX], path[PATH_MAX + 32], absolute[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not find this program's folder");
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash != NULL)
        *slash = '\0';
    snprintf(path, sizeof(path), "%s/walkeep-fetch", self);
    cmd[0] = '\0';
    shell_append(cmd, size, path);
    if (cfg->config_file != NULL) {
        shell_append(cmd, size, "--config");
        shell_append(cmd, size, realpath(cfg->config_file, absolute) ? absolute : cfg->config_file);
    }
    snprintf(path, sizeof(path), "--repo=%s", cfg->repo);
    shell_append(cmd, size, path);
    if (cfg->encrypt_key_file != NULL) {
        const char *key =
            realpath(cfg->encrypt_key_file, absolute) ? absolute : cfg->encrypt_key_file;
        snprintf(path, sizeof(path), "--encrypt-key-file=%s", key);
        shell_append(cmd, size, path);
    }
    shell_append(cmd, size, "%f");
    shell_append(cmd, size, "%p");
    return 0;
}
