/* expire: retention. A read-only pass makes the plan (what goes, in which order) and
 * checks it against the kept backups; a second pass carries it out, record first. */
#include "expire.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "dump.h"
#include "wal.h"
#include "record.h"

#define SECONDS_PER_DAY 86400

/* ---- small helpers ------------------------------------------------------------------- */

static int nomem(wk_error *err)
{
    return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
}

static int add_note(wk_expire_plan *plan, wk_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int add_note(wk_expire_plan *plan, wk_error *err, const char *fmt, ...)
{
    wk_expire_note *grown = realloc(plan->notes, (plan->note_count + 1) * sizeof(*grown));
    if (grown == NULL)
        return nomem(err);
    plan->notes = grown;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(plan->notes[plan->note_count].text, sizeof(plan->notes[0].text), fmt, ap);
    va_end(ap);
    plan->note_count++;
    return 0;
}

static wk_expire_action *add_action(wk_expire_plan *plan, wk_expire_kind kind, const char *label,
                                    wk_error *err)
{
    wk_expire_action *grown = realloc(plan->actions, (plan->action_count + 1) * sizeof(*grown));
    if (grown == NULL) {
        nomem(err);
        return NULL;
    }
    plan->actions = grown;
    wk_expire_action *a = &plan->actions[plan->action_count++];
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    if (label != NULL)
        snprintf(a->label, sizeof(a->label), "%s", label);
    return a;
}

int wk_expire_label_time(const char *label, time_t *out)
{
    char text[40];
    if (label == NULL || strlen(label) != 16 || label[8] != 'T' || label[15] != 'Z')
        return -1;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (label[i] < '0' || label[i] > '9'))
            return -1;
    snprintf(text, sizeof(text), "%.4s-%.2s-%.2s %.2s:%.2s:%.2s+00", label, label + 4, label + 6,
             label + 9, label + 11, label + 13);
    return wk_record_parse_time(text, out);
}

/* ---- dumps ----------------------------------------------------------------------------- */

typedef struct dump_entry {
    char label[WK_BACKUP_LABEL_MAX];
    bool has_record;
    time_t start_time, end_time;
    bool globals;                  /* a globals dump: retention counts these apart */
    char database[WK_DUMP_DB_MAX]; /* the database dumped (not for globals) */
} dump_entry;

typedef struct dump_list {
    dump_entry *entries;
    size_t count;
    bool nomem;
} dump_list;

static int collect_dump(const char *name, bool is_dir, uint64_t size, void *arg)
{
    dump_list *l = arg;
    (void)size;
    /* A folder whose name is no dump label holds nothing walkeep wrote: it stays. */
    if (!is_dir || strlen(name) >= WK_BACKUP_LABEL_MAX || wk_dump_check_label(name, NULL) != 0)
        return 0;
    dump_entry *grown = realloc(l->entries, (l->count + 1) * sizeof(*grown));
    if (grown == NULL) {
        l->nomem = true;
        return 1;
    }
    l->entries = grown;
    memset(&l->entries[l->count], 0, sizeof(*l->entries));
    snprintf(l->entries[l->count].label, WK_BACKUP_LABEL_MAX, "%s", name);
    l->count++;
    return 0;
}

/* Reads the times of dumps/<label>/dump.json (dump.c reads it); WK_ERR_NOTFOUND when the
 * folder has none. */
static int read_dump_record(wk_repo *repo, dump_entry *d, wk_error *err)
{
    wk_dump_record r = {0};
    if (wk_dump_record_read(repo, d->label, &r, err) != 0)
        return -1;
    d->start_time = r.start_time;
    d->end_time = r.end_time;
    d->has_record = true;
    d->globals = r.format == WK_DUMP_GLOBALS;
    if (!d->globals)
        snprintf(d->database, sizeof(d->database), "%s", r.database);
    wk_dump_record_free(&r);
    return 0;
}

static int list_dumps(wk_repo *repo, dump_list *l, wk_error *err)
{
    if (wk_storage_list(repo->storage, "dumps", "", collect_dump, l, err) != 0)
        return -1;
    if (l->nomem)
        return nomem(err);
    for (size_t i = 0; i < l->count; i++) {
        if (read_dump_record(repo, &l->entries[i], err) != 0) {
            if (err->code != WK_ERR_NOTFOUND)
                return -1;
            wk_error_clear(err);
        }
    }
    return 0;
}

/* ---- WAL objects ------------------------------------------------------------------------ */

typedef struct wal_object {
    uint32_t tli;
    uint64_t segno;
    wk_wal_kind kind;
    bool claim; /* the name's claim (docs/format.md, "Claims"), removed with its object */
    char *path;
} wal_object;

typedef struct wal_list {
    uint32_t seg_size;
    const char *folder; /* NULL while listing wal/ itself */
    char (*folders)[24];
    size_t folder_count;
    wal_object *objects;
    size_t count;
    bool nomem;
} wal_list;

static int collect_wal(const char *entry, bool is_dir, uint64_t size, void *arg)
{
    wal_list *l = arg;
    char name[WK_WAL_FILE_NAME_MAX];
    wk_wal_name parsed;
    (void)size;
    if (l->folder == NULL) {
        /* wal/ itself: sub-folders only; history files there are never removed. */
        if (!is_dir || strlen(entry) != 16 || strspn(entry, "0123456789ABCDEF") != 16)
            return 0;
        void *grown = realloc(l->folders, (l->folder_count + 1) * sizeof(*l->folders));
        if (grown == NULL) {
            l->nomem = true;
            return 1;
        }
        l->folders = grown;
        snprintf(l->folders[l->folder_count++], sizeof(*l->folders), "%s", entry);
        return 0;
    }
    wk_wal_object obj;
    wk_wal_entry kind = is_dir ? WK_WAL_ENTRY_OTHER : wk_archive_parse_entry(entry, name, &obj);
    if (kind == WK_WAL_ENTRY_OTHER || wk_wal_parse_name(name, &parsed, NULL) != 0 ||
        parsed.kind == WK_WAL_HISTORY || wk_wal_name_check_size(&parsed, l->seg_size, NULL) != 0)
        return 0;
    /* Only objects filed where they belong: wal/<first 16 characters of the name>. */
    if (strncmp(name, l->folder + 4, 16) != 0)
        return 0;
    wal_object *grown = realloc(l->objects, (l->count + 1) * sizeof(*grown));
    if (grown == NULL) {
        l->nomem = true;
        return 1;
    }
    l->objects = grown;
    wal_object *o = &l->objects[l->count];
    size_t plen = strlen(l->folder) + 1 + strlen(entry) + 1;
    o->path = malloc(plen);
    if (o->path == NULL) {
        l->nomem = true;
        return 1;
    }
    snprintf(o->path, plen, "%s/%s", l->folder, entry);
    o->tli = parsed.tli;
    o->segno = wk_wal_name_segno(&parsed, l->seg_size);
    o->kind = parsed.kind;
    o->claim = kind == WK_WAL_ENTRY_CLAIM;
    l->count++;
    return 0;
}

static void wal_list_free(wal_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->objects[i].path);
    free(l->objects);
    free(l->folders);
}

static int list_wal(wk_repo *repo, wal_list *l, wk_error *err)
{
    if (wk_storage_list(repo->storage, "wal", "", collect_wal, l, err) != 0)
        return -1;
    for (size_t i = 0; i < l->folder_count && !l->nomem; i++) {
        char dir[32];
        snprintf(dir, sizeof(dir), "wal/%s", l->folders[i]);
        l->folder = dir;
        int rc = wk_storage_list(repo->storage, dir, "", collect_wal, l, err);
        l->folder = NULL;
        if (rc != 0)
            return -1;
    }
    return l->nomem ? nomem(err) : 0;
}

static int kind_rank(wk_wal_kind k)
{
    return k == WK_WAL_SEGMENT ? 0 : k == WK_WAL_BACKUP ? 1 : 2;
}

static int compare_wal(const void *a, const void *b)
{
    const wal_object *x = a, *y = b;
    if (x->tli != y->tli)
        return x->tli < y->tli ? -1 : 1;
    if (x->segno != y->segno)
        return x->segno < y->segno ? -1 : 1;
    if (kind_rank(x->kind) != kind_rank(y->kind))
        return kind_rank(x->kind) - kind_rank(y->kind);
    return strcmp(x->path, y->path);
}

/* First segment number after the range of wal/<TTTTTTTTXXXXXXXX>. */
static uint64_t folder_end(const char *folder, uint32_t seg_size)
{
    uint64_t log = strtoull(folder + 8, NULL, 16);
    uint64_t per_log = UINT64_C(0x100000000) / seg_size;
    return (log + 1) * per_log;
}

/* Groups the objects below the cutoff into ranges of consecutive segment numbers per
 * timeline; each range is one action, its objects oldest first. */
static int plan_wal(wal_list *l, wk_expire_plan *plan, wk_error *err)
{
    if (l->count > 1)
        qsort(l->objects, l->count, sizeof(*l->objects), compare_wal);
    wk_expire_action *cur = NULL;
    for (size_t i = 0; i < l->count; i++) {
        wal_object *o = &l->objects[i];
        if (o->segno >= plan->wal_cutoff)
            continue;
        if (cur == NULL || cur->tli != o->tli || o->segno > cur->last + 1) {
            cur = add_action(plan, WK_EXPIRE_WAL, NULL, err);
            if (cur == NULL)
                return -1;
            cur->tli = o->tli;
            cur->first = o->segno;
        }
        char **grown = realloc(cur->objects, (cur->object_count + 1) * sizeof(*grown));
        if (grown == NULL)
            return nomem(err);
        cur->objects = grown;
        cur->objects[cur->object_count++] = o->path;
        o->path = NULL; /* owned by the plan now */
        cur->last = o->segno;
        if (o->claim)
            continue;
        if (o->kind == WK_WAL_SEGMENT)
            cur->segments++;
        else if (o->kind == WK_WAL_PARTIAL)
            cur->partials++;
        else
            cur->backup_files++;
    }
    for (size_t i = 0; i < l->folder_count; i++) {
        if (folder_end(l->folders[i], plan->seg_size) > plan->wal_cutoff)
            continue;
        void *grown =
            realloc(plan->wal_folders, (plan->wal_folder_count + 1) * sizeof(*plan->wal_folders));
        if (grown == NULL)
            return nomem(err);
        plan->wal_folders = grown;
        memcpy(plan->wal_folders[plan->wal_folder_count++], l->folders[i], 24);
    }
    return 0;
}

/* ---- choosing ---------------------------------------------------------------------------- */

/* The order of "newest": by stop time, then start LSN, then label. */
static int compare_backups(const void *a, const void *b)
{
    const wk_backup_entry *x = *(wk_backup_entry *const *)a, *y = *(wk_backup_entry *const *)b;
    if (x->record.stop_time != y->record.stop_time)
        return x->record.stop_time < y->record.stop_time ? -1 : 1;
    if (x->record.start_lsn != y->record.start_lsn)
        return x->record.start_lsn < y->record.start_lsn ? -1 : 1;
    return strcmp(x->label, y->label);
}

/* Marks keep[i] for the backups 0..n-1 (sorted oldest first) that retention_full and
 * retention_days keep. The base of the days window is the newest usable backup that
 * ended before it. The newest is always kept. */
static void apply_rules(size_t n, wk_backup_entry *const *b, const wk_expire_policy *policy,
                        bool *keep)
{
    for (size_t i = 0; i < n; i++)
        keep[i] = policy->retention_full == 0 && policy->retention_days == 0;
    if (n == 0)
        return;
    if (policy->retention_full > 0) {
        size_t count = (size_t)policy->retention_full;
        for (size_t i = n > count ? n - count : 0; i < n; i++)
            keep[i] = true;
    }
    if (policy->retention_days > 0) {
        time_t window_start = policy->now - (time_t)policy->retention_days * SECONDS_PER_DAY;
        size_t base = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
            if (b[i]->record.stop_time >= window_start)
                keep[i] = true;
            else if (b[i]->wal_ready)
                base = i;
        }
        if (base != SIZE_MAX)
            keep[base] = true;
    }
    keep[n - 1] = true;
}

static int plan_backups(wk_repo *repo, const wk_expire_policy *policy, wk_backup_entry *entries,
                        size_t count, wk_expire_plan *plan, wk_error *err)
{
    (void)repo;
    wk_backup_entry **complete = calloc(count + 1, sizeof(*complete));
    bool *keep = calloc(count + 1, sizeof(*keep));
    size_t n = 0;
    int rc = -1;
    if (complete == NULL || keep == NULL) {
        nomem(err);
        goto out;
    }
    for (size_t i = 0; i < count; i++)
        if (entries[i].has_record)
            complete[n++] = &entries[i];
    if (n > 1)
        qsort(complete, n, sizeof(*complete), compare_backups);

    /* Backups still waiting for their WAL after the newest usable one are kept and not
     * counted: until their WAL arrives they restore nothing. */
    size_t usable = n;
    while (usable > 0 && !complete[usable - 1]->wal_ready)
        usable--;
    apply_rules(usable, complete, policy, keep);
    for (size_t i = usable; i < n; i++)
        keep[i] = true; /* (with no usable backup at all, every complete one stays) */

    /* Interrupted folders older than the newest complete backup: garbage. */
    const wk_backup_entry *newest = NULL;
    for (size_t i = 0; i < n; i++)
        if (newest == NULL || complete[i]->record.start_time > newest->record.start_time)
            newest = complete[i];
    for (size_t i = 0; i < count; i++) {
        const wk_backup_entry *e = &entries[i];
        time_t started;
        if (e->has_record || newest == NULL)
            continue;
        if (wk_expire_label_time(e->label, &started) != 0) {
            if (add_note(plan, err,
                         "kept backup folder \"%s\": it has no record (an interrupted "
                         "backup or one in progress) and its label does not tell when it "
                         "started; remove it by hand when no backup is running",
                         e->label) != 0)
                goto out;
            continue;
        }
        if (started < newest->record.start_time &&
            add_action(plan, WK_EXPIRE_INTERRUPTED, e->label, err) == NULL)
            goto out;
    }

    bool any_rule = policy->retention_full > 0 || policy->retention_days > 0;
    wk_lsn lowest = 0;
    uint32_t lowest_tli = 1;
    for (size_t i = 0; i < n; i++) {
        if (keep[i]) {
            plan->kept_backups++;
            if (plan->oldest_kept[0] == '\0' || complete[i]->record.start_lsn < lowest) {
                lowest = complete[i]->record.start_lsn;
                lowest_tli = complete[i]->record.start_tli;
                snprintf(plan->oldest_kept, sizeof(plan->oldest_kept), "%s", complete[i]->label);
            }
        } else if (add_action(plan, WK_EXPIRE_BACKUP, complete[i]->label, err) == NULL) {
            goto out;
        }
    }
    if (any_rule && plan->kept_backups > 0) {
        plan->wal_cutoff_set = true;
        plan->wal_cutoff = wk_wal_lsn_to_segno(lowest, plan->seg_size);
        plan->wal_cutoff_tli = lowest_tli;
    }
    rc = 0;
out:
    free(complete);
    free(keep);
    return rc;
}

/* Retention applies per group: the globals dumps, and the dumps of each database. */
static bool same_group(const dump_entry *x, const dump_entry *y)
{
    return x->globals == y->globals && strcmp(x->database, y->database) == 0;
}

/* By group (globals first, then by database name), then oldest first. */
static int compare_dumps(const void *a, const void *b)
{
    const dump_entry *x = *(dump_entry *const *)a, *y = *(dump_entry *const *)b;
    if (x->globals != y->globals)
        return x->globals ? -1 : 1;
    int by_database = strcmp(x->database, y->database);
    if (by_database != 0)
        return by_database;
    if (x->end_time != y->end_time)
        return x->end_time < y->end_time ? -1 : 1;
    return strcmp(x->label, y->label);
}

static int plan_dumps(const wk_expire_policy *policy, dump_list *l, wk_expire_plan *plan,
                      wk_error *err)
{
    dump_entry **complete = calloc(l->count + 1, sizeof(*complete));
    bool *keep = calloc(l->count + 1, sizeof(*keep));
    size_t n = 0;
    int rc = -1;
    if (complete == NULL || keep == NULL) {
        nomem(err);
        goto out;
    }
    for (size_t i = 0; i < l->count; i++)
        if (l->entries[i].has_record)
            complete[n++] = &l->entries[i];
    if (n > 1)
        qsort(complete, n, sizeof(*complete), compare_dumps);
    /* Dumps stand alone: no base is needed before the window, only what ended in it. Each
     * group [first, end) keeps its newest `count` and those in the window, and always
     * its newest one. */
    time_t window_start = policy->now - (time_t)policy->retention_dumps_days * SECONDS_PER_DAY;
    size_t count = (size_t)policy->retention_dumps;
    for (size_t first = 0, end; first < n; first = end) {
        for (end = first + 1; end < n && same_group(complete[first], complete[end]); end++)
            ;
        for (size_t i = first; i < end; i++)
            keep[i] = (policy->retention_dumps == 0 && policy->retention_dumps_days == 0) ||
                      (count > 0 && i + count >= end) ||
                      (policy->retention_dumps_days > 0 && complete[i]->end_time >= window_start);
        keep[end - 1] = true;
    }

    const dump_entry *newest = NULL;
    for (size_t i = 0; i < n; i++)
        if (newest == NULL || complete[i]->start_time > newest->start_time)
            newest = complete[i];
    for (size_t i = 0; i < l->count; i++) {
        const dump_entry *d = &l->entries[i];
        time_t started;
        if (d->has_record || newest == NULL)
            continue;
        if (wk_expire_label_time(d->label, &started) != 0) {
            if (add_note(plan, err,
                         "kept dump folder \"%s\": it has no record (an interrupted "
                         "dump or one in progress) and its label does not tell when it "
                         "started; remove it by hand when no dump is running",
                         d->label) != 0)
                goto out;
            continue;
        }
        /* Dumps of several databases run one after another, and by hand besides the
         * scheduled ones: a folder goes only once it started a day ago too, so that a dump
         * still running while another one's expire runs is never taken for garbage. */
        if (started < newest->start_time && started < policy->now - SECONDS_PER_DAY &&
            add_action(plan, WK_EXPIRE_DUMP_INTERRUPTED, d->label, err) == NULL)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (keep[i])
            plan->kept_dumps++;
        else if (add_action(plan, WK_EXPIRE_DUMP, complete[i]->label, err) == NULL)
            goto out;
    }
    rc = 0;
out:
    free(complete);
    free(keep);
    return rc;
}

/* The promise, checked on the finished plan before anything is removed: the newest
 * complete backup stays; no WAL object at or after any kept backup's start segment
 * goes; the base of the retention_days window stays. */
static int check_plan(const wk_expire_policy *policy, const wk_backup_entry *entries, size_t count,
                      const wk_expire_plan *plan, wk_error *err)
{
    const wk_backup_entry *newest = NULL, *base = NULL;
    time_t window_start = policy->now - (time_t)policy->retention_days * SECONDS_PER_DAY;
    for (size_t i = 0; i < count; i++) {
        const wk_backup_entry *e = &entries[i];
        if (!e->has_record)
            continue;
        if (newest == NULL || e->record.stop_time > newest->record.stop_time)
            newest = e;
        if (e->wal_ready && e->record.stop_time < window_start &&
            (base == NULL || e->record.stop_time > base->record.stop_time))
            base = e;
    }
    for (size_t i = 0; i < count; i++) {
        const wk_backup_entry *e = &entries[i];
        bool removed = false;
        for (size_t j = 0; j < plan->action_count; j++) {
            const wk_expire_action *a = &plan->actions[j];
            if ((a->kind == WK_EXPIRE_BACKUP || a->kind == WK_EXPIRE_INTERRUPTED) &&
                strcmp(a->label, e->label) == 0)
                removed = true;
        }
        if (!e->has_record)
            continue;
        if (removed && (e == newest || (policy->retention_days > 0 && e == base)))
            return wk_error_set(err, WK_ERR_INTERNAL,
                                "expire would remove backup \"%s\", "
                                "which retention keeps; nothing was removed",
                                e->label);
        if (removed)
            continue;
        uint64_t start = wk_wal_lsn_to_segno(e->record.start_lsn, plan->seg_size);
        for (size_t j = 0; j < plan->action_count; j++) {
            const wk_expire_action *a = &plan->actions[j];
            if (a->kind == WK_EXPIRE_WAL && (a->last >= start || !plan->wal_cutoff_set))
                return wk_error_set(err, WK_ERR_INTERNAL,
                                    "expire would remove WAL that kept "
                                    "backup \"%s\" needs; nothing was removed",
                                    e->label);
        }
    }
    return 0;
}

/* What expire removes follows from segment numbers, which follow from the repository's
 * segment size: a number it must not take on trust. The newest segment object is decoded
 * and its own page header must name the repository's system and segment size
 * (wk_wal_check_stage), or nothing is planned. */
static int prove_segment_size(wk_repo *repo, const wk_repo_meta *meta, const wal_list *l,
                              wk_error *err)
{
    const wal_object *newest = NULL;
    for (size_t i = 0; i < l->count; i++) {
        const wal_object *o = &l->objects[i];
        if (o->kind == WK_WAL_SEGMENT && !o->claim &&
            (newest == NULL || o->tli > newest->tli ||
             (o->tli == newest->tli && o->segno > newest->segno)))
            newest = o;
    }
    if (newest == NULL)
        return 0;
    char name[WK_WAL_FILE_NAME_MAX];
    wk_wal_object obj;
    const char *entry = strrchr(newest->path, '/') + 1;
    if (wk_archive_parse_entry(entry, name, &obj) != WK_WAL_ENTRY_OBJECT)
        return wk_error_set(err, WK_ERR_INTERNAL, "\"%s\" is no WAL object", newest->path);
    wk_stage *chain = wk_stage_fingerprint_new(NULL, NULL, err);
    chain = wk_wal_check_stage_new(chain, name, newest->path, meta->system_identifier,
                                   meta->seg_size, err);
    if (chain != NULL)
        chain = wk_repo_decoder_new(repo, newest->path, obj.alg, &obj.fingerprint, chain, err);
    if (chain == NULL)
        return -1;
    int rc = 0;
    if (wk_storage_get(repo->storage, newest->path, chain, err) != 0 ||
        wk_stage_finish(chain, err) != 0) {
        wk_error_prefix(err,
                        "refusing to expire: the repository's metadata (segment size %" PRIu32
                        ") could not be proven against its newest segment",
                        meta->seg_size);
        rc = -1;
    }
    wk_stage_free(chain);
    return rc;
}

int wk_expire_plan_make(wk_repo *repo, const wk_expire_policy *policy, wk_expire_plan *plan,
                        wk_error *err)
{
    wk_repo_meta meta;
    wk_backup_entry *entries = NULL;
    size_t count = 0;
    dump_list dumps = {0};
    wal_list wal = {0};
    int rc = -1;

    memset(plan, 0, sizeof(*plan));
    if (wk_repo_open_meta(repo, NULL, &meta, NULL, err) != 0)
        return -1;
    plan->seg_size = meta.seg_size;
    wal.seg_size = meta.seg_size;
    if (wk_backup_list(repo, &entries, &count, err) != 0)
        goto out;
    if (list_dumps(repo, &dumps, err) != 0)
        goto out;
    if (plan_backups(repo, policy, entries, count, plan, err) != 0)
        goto out;
    if (plan_dumps(policy, &dumps, plan, err) != 0)
        goto out;
    if (plan->wal_cutoff_set) {
        if (list_wal(repo, &wal, err) != 0 || prove_segment_size(repo, &meta, &wal, err) != 0 ||
            plan_wal(&wal, plan, err) != 0)
            goto out;
    }
    if (check_plan(policy, entries, count, plan, err) != 0)
        goto out;
    rc = 0;
out:
    wal_list_free(&wal);
    free(dumps.entries);
    wk_backup_list_free(entries, count);
    if (rc != 0)
        wk_expire_plan_free(plan);
    return rc;
}

void wk_expire_plan_free(wk_expire_plan *plan)
{
    if (plan == NULL)
        return;
    for (size_t i = 0; i < plan->action_count; i++) {
        for (size_t j = 0; j < plan->actions[i].object_count; j++)
            free(plan->actions[i].objects[j]);
        free(plan->actions[i].objects);
    }
    free(plan->actions);
    free(plan->notes);
    free(plan->wal_folders);
    memset(plan, 0, sizeof(*plan));
}

/* ---- carrying it out ------------------------------------------------------------------- */

typedef struct tree {
    const char *dir;
    char **files;
    size_t file_count;
    char **dirs;
    size_t dir_count;
    bool nomem;
} tree;

static int collect_tree(const char *name, bool is_dir, uint64_t size, void *arg)
{
    tree *t = arg;
    (void)size;
    size_t len = strlen(t->dir) + 1 + strlen(name) + 1;
    char *path = malloc(len);
    char ***list = is_dir ? &t->dirs : &t->files;
    size_t *n = is_dir ? &t->dir_count : &t->file_count;
    char **grown = path == NULL ? NULL : realloc(*list, (*n + 1) * sizeof(**list));
    if (grown == NULL) {
        free(path);
        t->nomem = true;
        return 1;
    }
    snprintf(path, len, "%s/%s", t->dir, name);
    *list = grown;
    (*list)[(*n)++] = path;
    return 0;
}

static void tree_free(tree *t)
{
    for (size_t i = 0; i < t->file_count; i++)
        free(t->files[i]);
    for (size_t i = 0; i < t->dir_count; i++)
        free(t->dirs[i]);
    free(t->files);
    free(t->dirs);
}

static bool folder_not_empty(const wk_error *err)
{
    return err->sys_errno == ENOTEMPTY || err->sys_errno == EEXIST;
}

/* Removes every object under dir (sub-folders first), then dir itself. */
static int remove_tree(wk_repo *repo, const char *dir, wk_expire_plan *plan, wk_error *err)
{
    tree t = {.dir = dir};
    int rc = -1;
    if (wk_storage_list(repo->storage, dir, "", collect_tree, &t, err) != 0)
        goto out;
    if (t.nomem) {
        nomem(err);
        goto out;
    }
    for (size_t i = 0; i < t.dir_count; i++)
        if (remove_tree(repo, t.dirs[i], plan, err) != 0)
            goto out;
    if (wk_storage_remove_many(repo->storage, (const char *const *)t.files, t.file_count, err) != 0)
        goto out;
    /* Temporaries of writes killed half-way (untouched for an hour, or whose writer is gone). */
    if (wk_storage_clean_temporaries(repo->storage, dir, WK_STORAGE_STALE_SECONDS, NULL, err) != 0)
        goto out;
    if (wk_storage_remove(repo->storage, dir, err) != 0) {
        if (!folder_not_empty(err))
            goto out;
        wk_error_clear(err);
        if (add_note(plan, err,
                     "folder \"%s\" still holds hidden temporary files written "
                     "in the last hour, so it was left in place; a later run removes it",
                     dir) != 0)
            goto out;
    }
    rc = 0;
out:
    tree_free(&t);
    return rc;
}

/* A backup or dump: the record first (it is then never restored or listed as usable),
 * then everything else. */
static int remove_labelled(wk_repo *repo, const char *area, const char *label, const char *record,
                           wk_expire_plan *plan, wk_error *err)
{
    char dir[128], path[192];
    snprintf(dir, sizeof(dir), "%s/%s", area, label);
    snprintf(path, sizeof(path), "%s/%s", dir, record);
    if (wk_storage_remove(repo->storage, path, err) != 0 || remove_tree(repo, dir, plan, err) != 0)
        return wk_error_prefix(err, "could not remove %s \"%s\"",
                               strcmp(area, "dumps") == 0 ? "dump" : "backup", label);
    return 0;
}

int wk_expire_execute(wk_repo *repo, wk_expire_plan *plan, wk_expire_done_cb done, void *arg,
                      wk_error *err)
{
    for (size_t i = 0; i < plan->action_count; i++) {
        const wk_expire_action *a = &plan->actions[i];
        int rc = 0;
        switch (a->kind) {
        case WK_EXPIRE_BACKUP:
        case WK_EXPIRE_INTERRUPTED:
            rc = remove_labelled(repo, "backups", a->label, WK_BACKUP_RECORD, plan, err);
            break;
        case WK_EXPIRE_DUMP:
        case WK_EXPIRE_DUMP_INTERRUPTED:
            rc = remove_labelled(repo, "dumps", a->label, WK_DUMP_RECORD, plan, err);
            break;
        case WK_EXPIRE_WAL:
            rc = wk_storage_remove_many(repo->storage, (const char *const *)a->objects,
                                        a->object_count, err);
            if (rc != 0)
                wk_error_prefix(err, "could not remove WAL of timeline %u", a->tli);
            break;
        }
        if (rc != 0)
            return -1;
        if (done != NULL)
            done(plan, a, arg);
    }
    for (size_t i = 0; i < plan->wal_folder_count; i++) {
        char dir[32];
        snprintf(dir, sizeof(dir), "wal/%s", plan->wal_folders[i]);
        if (wk_storage_clean_temporaries(repo->storage, dir, WK_STORAGE_STALE_SECONDS, NULL, err) !=
            0)
            return -1;
        if (wk_storage_remove(repo->storage, dir, err) != 0) {
            if (!folder_not_empty(err))
                return wk_error_prefix(err, "could not remove folder \"%s\"", dir);
            wk_error_clear(err); /* something we do not own is in it: leave it */
        }
    }
    return 0;
}

/* ---- describing ------------------------------------------------------------------------ */

static void append(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

void wk_expire_describe(const wk_expire_plan *plan, const wk_expire_action *a, char *buf,
                        size_t size)
{
    char first[WK_WAL_NAME_LEN + 1], last[WK_WAL_NAME_LEN + 1];
    if (size == 0)
        return;
    buf[0] = '\0';
    switch (a->kind) {
    case WK_EXPIRE_BACKUP:
        append(buf, size, "backup %s", a->label);
        return;
    case WK_EXPIRE_INTERRUPTED:
        append(buf, size, "backup %s (interrupted: no record)", a->label);
        return;
    case WK_EXPIRE_DUMP:
        append(buf, size, "dump %s", a->label);
        return;
    case WK_EXPIRE_DUMP_INTERRUPTED:
        append(buf, size, "dump %s (interrupted: no record)", a->label);
        return;
    case WK_EXPIRE_WAL:
        break;
    }
    wk_wal_segment_name(first, a->tli, a->first, plan->seg_size);
    wk_wal_segment_name(last, a->tli, a->last, plan->seg_size);
    if (a->first == a->last)
        append(buf, size, "WAL %s (", first);
    else
        append(buf, size, "WAL %s .. %s (", first, last);
    append(buf, size, "%zu segment%s", a->segments, a->segments == 1 ? "" : "s");
    if (a->partials > 0)
        append(buf, size, ", %zu partial segment%s", a->partials, a->partials == 1 ? "" : "s");
    if (a->backup_files > 0)
        append(buf, size, ", %zu backup history file%s", a->backup_files,
               a->backup_files == 1 ? "" : "s");
    append(buf, size, ")");
}
