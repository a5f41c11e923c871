/* verify: every object of the repository read back through the checked decoders, then
 * the WAL chain, the backups' WAL and the timeline history files checked as a whole. */
#include "verify.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "backup.h"
#include "codec.h"
#include "crypt.h"
#include "dump.h"

#define HISTORY_MAX_BYTES (1024 * 1024)
#define MISSING_WAL_LISTED_MAX 100 /* per backup; more are summed up in one finding */

/* ---- kinds -------------------------------------------------------------------------- */

const char *wk_verify_kind_name(wk_verify_kind kind)
{
    switch (kind) {
    case WK_VERIFY_CORRUPT:
        return "corrupt";
    case WK_VERIFY_MISSING:
        return "missing";
    case WK_VERIFY_UNREADABLE:
        return "unreadable";
    case WK_VERIFY_KEY:
        return "key";
    case WK_VERIFY_CONFLICT:
        return "conflict";
    case WK_VERIFY_RECORD:
        return "record";
    case WK_VERIFY_MISSING_WAL:
        return "missing-wal";
    case WK_VERIFY_GAP:
        return "gap";
    case WK_VERIFY_HISTORY:
        return "history";
    case WK_VERIFY_TEMPORARY:
        return "temporary";
    case WK_VERIFY_INCOMPLETE:
        return "incomplete";
    case WK_VERIFY_UNEXPECTED:
        return "unexpected";
    }
    return "unknown";
}

bool wk_verify_kind_is_warning(wk_verify_kind kind)
{
    return kind == WK_VERIFY_TEMPORARY || kind == WK_VERIFY_INCOMPLETE ||
           kind == WK_VERIFY_UNEXPECTED;
}

static void findings_free(wk_verify_finding *list, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(list[i].object);
        free(list[i].message);
        free(list[i].hint);
    }
    free(list);
}

void wk_verify_report_free(wk_verify_report *report)
{
    if (report == NULL)
        return;
    findings_free(report->problems, report->problem_count);
    findings_free(report->warnings, report->warning_count);
    for (size_t i = 0; i < report->gap_count; i++)
        free(report->gaps[i].names);
    free(report->gaps);
    memset(report, 0, sizeof(*report));
}

/* ---- the walk's state ------------------------------------------------------------ */

/* A parsed timeline history file. */
typedef struct history_file {
    uint32_t tli;
    bool valid; /* parsed; entries meaningful */
    wk_wal_history_entry *entries;
    size_t count;
} history_file;

/* The segments seen during the walk, per timeline (the same facts as wk_archive_index,
 * gathered without listing the folders a second time). */
typedef struct seg_timeline {
    uint32_t tli;
    size_t count, cap;
    uint64_t *segnos; /* sorted and unique once the walk is over */
} seg_timeline;

typedef struct verify_ctx {
    wk_repo *repo;
    seg_timeline *timelines; /* sorted by tli once the walk is over */
    size_t timeline_count;
    wk_repo_meta meta;
    wk_verify_report *report;
    size_t problem_cap, warning_cap;
    bool nomem;
    history_file *histories;
    size_t history_count;
    wk_progress progress; /* stored bytes read so far, of the total listed before the walk */
} verify_ctx;

/* A finding with what to do about it (hint may be NULL). */
static void add_finding_hint(verify_ctx *v, wk_verify_kind kind, const char *object,
                             const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void add_finding(verify_ctx *v, wk_verify_kind kind, const char *object, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

static void add_finding_va(verify_ctx *v, wk_verify_kind kind, const char *object, const char *hint,
                           const char *fmt, va_list ap)
{
    char message[1200];
    bool warning = wk_verify_kind_is_warning(kind);
    wk_verify_finding **list = warning ? &v->report->warnings : &v->report->problems;
    size_t *count = warning ? &v->report->warning_count : &v->report->problem_count;
    size_t *cap = warning ? &v->warning_cap : &v->problem_cap;
    if (v->nomem)
        return;
    vsnprintf(message, sizeof(message), fmt, ap);
    if (*count == *cap) {
        size_t grown_cap = *cap == 0 ? 16 : *cap * 2;
        wk_verify_finding *grown = realloc(*list, grown_cap * sizeof(**list));
        if (grown == NULL) {
            v->nomem = true;
            return;
        }
        *list = grown;
        *cap = grown_cap;
    }
    wk_verify_finding *f = &(*list)[*count];
    f->kind = kind;
    f->object = strdup(object);
    f->message = strdup(message);
    f->hint = hint != NULL ? strdup(hint) : NULL;
    if (f->object == NULL || f->message == NULL || (hint != NULL && f->hint == NULL)) {
        free(f->object);
        free(f->message);
        free(f->hint);
        v->nomem = true;
        return;
    }
    (*count)++;
}

static void add_finding(verify_ctx *v, wk_verify_kind kind, const char *object, const char *fmt,
                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_finding_va(v, kind, object, NULL, fmt, ap);
    va_end(ap);
}

static void add_finding_hint(verify_ctx *v, wk_verify_kind kind, const char *object,
                             const char *hint, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_finding_va(v, kind, object, hint, fmt, ap);
    va_end(ap);
}

/* A failed read of an object as a finding: its kind follows the error's code. */
static void add_error_finding(verify_ctx *v, const char *object, const wk_error *err)
{
    wk_verify_kind kind;
    switch (err->code) {
    case WK_ERR_CORRUPT:
        kind = WK_VERIFY_CORRUPT;
        break;
    case WK_ERR_KEY:
        kind = WK_VERIFY_KEY;
        break;
    case WK_ERR_NOTFOUND:
        kind = WK_VERIFY_MISSING;
        break;
    case WK_ERR_NOMEM:
        v->nomem = true;
        return;
    default:
        kind = WK_VERIFY_UNREADABLE;
        break;
    }
    if (err->detail[0] != '\0')
        add_finding(v, kind, object, "%s: %s", err->message, err->detail);
    else
        add_finding(v, kind, object, "%s", err->message);
}

/* ---- folder listings -------------------------------------------------------------- */

typedef struct entry {
    char *name;
    bool is_dir;
} entry;

typedef struct entry_list {
    entry *items;
    size_t count, cap;
    bool nomem;
} entry_list;

static int collect_entry(const char *name, bool is_dir, uint64_t size, void *arg)
{
    entry_list *l = arg;
    (void)size;
    if (l->count == l->cap) {
        size_t cap = l->cap == 0 ? 64 : l->cap * 2;
        entry *grown = realloc(l->items, cap * sizeof(*grown));
        if (grown == NULL) {
            l->nomem = true;
            return 1;
        }
        l->items = grown;
        l->cap = cap;
    }
    l->items[l->count].name = strdup(name);
    if (l->items[l->count].name == NULL) {
        l->nomem = true;
        return 1;
    }
    l->items[l->count].is_dir = is_dir;
    l->count++;
    return 0;
}

static int compare_entry(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static void entry_list_free(entry_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].name);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* Lists folder dir of the repository, sorted by name. */
static int list_folder(verify_ctx *v, const char *dir, entry_list *out, wk_error *err)
{
    memset(out, 0, sizeof(*out));
    if (wk_storage_list(v->repo->storage, dir, "", collect_entry, out, err) != 0) {
        entry_list_free(out);
        return wk_error_prefix(err, "could not list \"%s\" in the repository", dir);
    }
    if (out->nomem) {
        entry_list_free(out);
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    }
    if (out->count > 1)
        qsort(out->items, out->count, sizeof(*out->items), compare_entry);
    return 0;
}

/* ---- decoding one object ------------------------------------------------------------- */

/* The sink at the end of a verify chain: keeps the first bytes of the plaintext (a WAL
 * page header, the start of a backup history file) and drops the rest. */
#define HEAD_BYTES 64

typedef struct head_sink {
    wk_stage base;
    uint8_t *head;
    size_t *head_len;
} head_sink;

static int head_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    head_sink *hs = (head_sink *)stage;
    (void)err;
    size_t take = HEAD_BYTES - *hs->head_len;
    if (take > len)
        take = len;
    if (take > 0) {
        memcpy(hs->head + *hs->head_len, buf, take);
        *hs->head_len += take;
    }
    return 0;
}

static int head_finish(wk_stage *stage, wk_error *err)
{
    (void)stage;
    (void)err;
    return 0;
}

static void head_free(wk_stage *stage)
{
    free(stage);
}

static const wk_stage_ops head_ops = {head_write, head_finish, head_free};

static wk_stage *head_sink_new(uint8_t *head, size_t *head_len, wk_error *err)
{
    head_sink *hs = calloc(1, sizeof(*hs));
    if (hs == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    hs->base.ops = &head_ops;
    hs->head = head;
    hs->head_len = head_len;
    *head_len = 0;
    return &hs->base;
}

/* What reading one object gave. */
typedef struct decoded {
    wk_stream_summary summary; /* plaintext size and fingerprint */
    uint64_t stored;           /* bytes read from the repository */
    uint8_t head[HEAD_BYTES];
    size_t head_len;
    uint8_t *text; /* the whole plaintext, when asked for (malloc'd, NUL-terminated) */
    size_t text_len;
} decoded;

/* Reads the object at path (stored with alg, encrypted or not) through decryption, the
 * checked decompressor (the frame's own content checksum) and a check of the plaintext
 * fingerprint against *expected, into a sink that keeps the first bytes (or, with
 * text_limit > 0, the whole plaintext up to that size). Counts the object and its
 * stored bytes in the report whatever happens. */
static int decode_object(verify_ctx *v, const char *path, wk_compress alg, bool encrypted,
                         const wk_fingerprint *expected, size_t text_limit,
                         wk_walrec_reader *records, decoded *out, wk_error *err)
{
    wk_stage *chain;
    int rc = -1;
    memset(out, 0, sizeof(*out));
    v->report->objects++;
    if (encrypted && v->repo->key == NULL)
        return wk_error_set(err, WK_ERR_CORRUPT, "object is encrypted, but the repository is not");
    if (!encrypted && v->repo->key != NULL)
        return wk_error_set(err, WK_ERR_CORRUPT, "object is not encrypted, but the repository is");
    if (text_limit > 0)
        chain = wk_stage_memory_new(text_limit, &out->text, &out->text_len, err);
    else
        chain = head_sink_new(out->head, &out->head_len, err);
    if (chain != NULL && records != NULL)
        chain = wk_walrec_stage_new(chain, records, err);
    if (chain != NULL)
        chain = wk_stage_fingerprint_check_new(chain, expected, &out->summary, err);
    if (chain != NULL)
        chain = wk_codec_decompress_new(chain, alg, err);
    if (chain != NULL && encrypted)
        chain = wk_repo_decrypt_new(v->repo, path, chain, err);
    if (chain != NULL)
        chain = wk_stage_count_new(chain, &out->stored, err);
    if (chain != NULL)
        chain = wk_stage_progress_new(chain, &v->progress, err);
    if (chain == NULL)
        return -1;
    if (wk_storage_get(v->repo->storage, path, chain, err) == 0 && wk_stage_finish(chain, err) == 0)
        rc = 0;
    v->report->bytes += out->stored;
    wk_stage_free(chain);
    return rc;
}

/* Splits the encoding suffix (".zst", ".lz4.enc", ...) off the end of an object path. */
static int suffix_of_path(const char *path, wk_compress *alg, bool *encrypted)
{
    const char *base = strrchr(path, '/');
    base = base == NULL ? path : base + 1;
    size_t len = strlen(base);
    if (len > 4 && strcmp(base + len - 4, ".enc") == 0)
        len -= 4;
    const char *dot = NULL;
    for (size_t i = len; i > 0; i--) {
        if (base[i - 1] == '.') {
            dot = base + i - 1;
            break;
        }
    }
    if (dot == NULL || dot == base)
        return -1;
    return wk_repo_parse_suffix(dot, alg, encrypted);
}

/* ---- the segment index ----------------------------------------------------------- */

static void index_add(verify_ctx *v, uint32_t tli, uint64_t segno)
{
    seg_timeline *t = NULL;
    for (size_t i = 0; i < v->timeline_count && t == NULL; i++)
        if (v->timelines[i].tli == tli)
            t = &v->timelines[i];
    if (t == NULL) {
        seg_timeline *grown =
            realloc(v->timelines, (v->timeline_count + 1) * sizeof(*v->timelines));
        if (grown == NULL) {
            v->nomem = true;
            return;
        }
        v->timelines = grown;
        t = &v->timelines[v->timeline_count++];
        *t = (seg_timeline){.tli = tli};
    }
    if (t->count == t->cap) {
        size_t cap = t->cap == 0 ? 256 : t->cap * 2;
        uint64_t *grown = realloc(t->segnos, cap * sizeof(*grown));
        if (grown == NULL) {
            v->nomem = true;
            return;
        }
        t->segnos = grown;
        t->cap = cap;
    }
    t->segnos[t->count++] = segno;
}

static int compare_segno(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int compare_timeline(const void *a, const void *b)
{
    const seg_timeline *x = a, *y = b;
    return x->tli < y->tli ? -1 : x->tli > y->tli;
}

static void index_sort(verify_ctx *v)
{
    if (v->timeline_count > 1)
        qsort(v->timelines, v->timeline_count, sizeof(*v->timelines), compare_timeline);
    for (size_t i = 0; i < v->timeline_count; i++) {
        seg_timeline *t = &v->timelines[i];
        size_t kept = 0;
        if (t->count > 1)
            qsort(t->segnos, t->count, sizeof(*t->segnos), compare_segno);
        for (size_t j = 0; j < t->count; j++)
            if (kept == 0 || t->segnos[kept - 1] != t->segnos[j])
                t->segnos[kept++] = t->segnos[j];
        t->count = kept;
    }
}

static const seg_timeline *index_timeline(const verify_ctx *v, uint32_t tli)
{
    for (size_t i = 0; i < v->timeline_count; i++)
        if (v->timelines[i].tli == tli)
            return &v->timelines[i];
    return NULL;
}

static bool index_has(const verify_ctx *v, uint32_t tli, uint64_t segno)
{
    const seg_timeline *t = index_timeline(v, tli);
    return t != NULL && t->count > 0 &&
           bsearch(&segno, t->segnos, t->count, sizeof(segno), compare_segno) != NULL;
}

/* ---- WAL objects -------------------------------------------------------------------- */

static history_file *find_history(verify_ctx *v, uint32_t tli)
{
    for (size_t i = 0; i < v->history_count; i++)
        if (v->histories[i].tli == tli)
            return &v->histories[i];
    return NULL;
}

/* Records a history file's parse (the first object of each timeline only). Takes
 * entries. */
static void keep_history(verify_ctx *v, uint32_t tli, bool valid, wk_wal_history_entry *entries,
                         size_t count)
{
    if (find_history(v, tli) != NULL) {
        free(entries);
        return;
    }
    history_file *grown = realloc(v->histories, (v->history_count + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(entries);
        v->nomem = true;
        return;
    }
    v->histories = grown;
    v->histories[v->history_count++] =
        (history_file){.tli = tli, .valid = valid, .entries = entries, .count = count};
}

/* The plaintext of a WAL object, beyond its fingerprint: a segment must be one segment
 * long with a page header of this cluster naming its own place; a history file must
 * parse; a backup history file must look like one. */
static void check_wal_content(verify_ctx *v, const char *path, const char *name,
                              const wk_wal_name *parsed, decoded *d)
{
    wk_error err = {0};
    switch (parsed->kind) {
    case WK_WAL_SEGMENT:
    case WK_WAL_PARTIAL: {
        wk_wal_header hdr;
        if (d->summary.bytes != v->meta.seg_size) {
            add_finding(v, WK_VERIFY_CORRUPT, path,
                        "WAL file holds %" PRIu64 " bytes, not one segment (%" PRIu32 ")",
                        d->summary.bytes, v->meta.seg_size);
            return;
        }
        if (wk_wal_parse_header(d->head, d->head_len, &hdr, &err) != 0) {
            add_finding(v, WK_VERIFY_CORRUPT, path, "invalid WAL page header: %s", err.message);
            return;
        }
        uint64_t segno = wk_wal_name_segno(parsed, v->meta.seg_size);
        if (hdr.system_identifier != v->meta.system_identifier)
            add_finding(v, WK_VERIFY_CORRUPT, path,
                        "WAL file belongs to system identifier %" PRIu64
                        ", not the repository's %" PRIu64,
                        hdr.system_identifier, v->meta.system_identifier);
        else if (hdr.seg_size != v->meta.seg_size ||
                 wk_wal_name_check_size(parsed, v->meta.seg_size, NULL) != 0 ||
                 hdr.pageaddr != wk_wal_segno_to_lsn(segno, v->meta.seg_size))
            add_finding(v, WK_VERIFY_CORRUPT, path, "WAL file does not hold segment \"%s\"", name);
        else if (hdr.tli > parsed->tli)
            add_finding(v, WK_VERIFY_CORRUPT, path,
                        "WAL file holds timeline %" PRIu32 " data, above its name's", hdr.tli);
        return;
    }
    case WK_WAL_BACKUP:
        if (d->head_len < 19 || memcmp(d->head, "START WAL LOCATION:", 19) != 0)
            add_finding(v, WK_VERIFY_CORRUPT, path, "not a backup history file");
        return;
    case WK_WAL_HISTORY: {
        wk_wal_history_entry *entries = NULL;
        size_t count = 0;
        if (wk_wal_parse_history((const char *)d->text, d->text_len, parsed->tli, &entries, &count,
                                 &err) != 0) {
            if (err.code == WK_ERR_NOMEM) {
                v->nomem = true;
                return;
            }
            add_finding(v, WK_VERIFY_HISTORY, path, "invalid timeline history file: %s",
                        err.message);
            keep_history(v, parsed->tli, false, NULL, 0);
            return;
        }
        keep_history(v, parsed->tli, true, entries, count);
        return;
    }
    }
}

/* A sound segment's time index (docs/format.md, "Time index"): the one in its name must be
 * what its records say; one archived before indexes gets it, under the indexed name (its
 * stored bytes copied as they are: the place encrypted objects are bound to leaves the
 * index out), the old name removed once the new one is durable. */
static void check_time_index(verify_ctx *v, const char *dir, const char *path, const char *entry,
                             const wk_wal_object *obj, wk_walrec_reader *records)
{
    wk_walrec_summary index;
    char want[128], have[128], to[WK_OBJECT_PATH_MAX];
    wk_walrec_summary_get(records, &index);
    wk_archive_index_token(&index, want, sizeof(want));
    if (obj->indexed) {
        wk_archive_index_token(&obj->index, have, sizeof(have));
        if (strcmp(want, have) != 0)
            add_finding(v, WK_VERIFY_CORRUPT, path,
                        "the time index in its name does not match its records (\"%s\"); "
                        "restores would misjudge their targets",
                        want);
        return;
    }
    const char *dash = strchr(entry, '-');
    size_t head = (size_t)(dash - entry) + 1 + WK_FINGERPRINT_HEX_LEN;
    snprintf(to, sizeof(to), "%s/%.*s%s%s", dir, (int)head, entry, want, entry + head);
    wk_stage *sink = NULL;
    wk_error err = {0};
    int rc = wk_storage_put_open(v->repo->storage, to, WK_PUT_NOREPLACE, &sink, &err);
    if (rc == 0 && (wk_storage_get(v->repo->storage, path, sink, &err) != 0 ||
                    wk_stage_finish(sink, &err) != 0))
        rc = -1;
    wk_stage_free(sink);
    if (rc != 0 && err.code != WK_ERR_EXISTS) {
        add_finding(v, WK_VERIFY_UNEXPECTED, path, "could not give it its time index: %s",
                    err.message);
        return;
    }
    wk_error_clear(&err);
    if (wk_storage_remove(v->repo->storage, path, &err) != 0) {
        add_finding(v, WK_VERIFY_UNEXPECTED, path,
                    "its copy with a time index is stored, but it could not be removed: %s",
                    err.message);
        return;
    }
    v->report->indexed++;
}

/* One wal/ folder ("wal" itself, or "wal/<TTTTTTTTXXXXXXXX>"). In "wal", the
 * segment folders are appended to *folders. */
static int verify_wal_folder(verify_ctx *v, const char *dir, entry_list *folders, wk_error *err)
{
    entry_list l;
    char prev_name[WK_WAL_FILE_NAME_MAX] = "";
    wk_fingerprint prev_fp;
    bool prev_conflict = false;
    if (list_folder(v, dir, &l, err) != 0)
        return -1;
    for (size_t i = 0; i < l.count && !v->nomem; i++) {
        const entry *e = &l.items[i];
        char path[WK_OBJECT_PATH_MAX], name[WK_WAL_FILE_NAME_MAX], want_dir[64];
        wk_fingerprint fp = {{0}};
        wk_wal_name parsed;
        wk_compress alg = WK_COMPRESS_NONE;
        bool encrypted = false;
        snprintf(path, sizeof(path), "%s/%s", dir, e->name);
        if (e->is_dir) {
            if (folders != NULL && strlen(e->name) == 16 &&
                strspn(e->name, "0123456789ABCDEF") == 16) {
                if (collect_entry(e->name, true, 0, folders) != 0)
                    v->nomem = true;
            } else {
                add_finding(v, WK_VERIFY_UNEXPECTED, path, "folder not written by walkeep");
            }
            continue;
        }
        /* <WAL file name>-<32 hex fingerprint><suffix>, or <WAL file name>-claim */
        wk_wal_object obj;
        wk_wal_entry kind = wk_archive_parse_entry(e->name, name, &obj);
        if (kind == WK_WAL_ENTRY_OTHER || wk_wal_parse_name(name, &parsed, NULL) != 0) {
            add_finding(v, WK_VERIFY_UNEXPECTED, path, "file not written by walkeep");
            continue;
        }
        if (kind == WK_WAL_ENTRY_OBJECT) {
            fp = obj.fingerprint;
            alg = obj.alg;
            encrypted = obj.encrypted;
        }
        wk_archive_object_dir(name, &parsed, want_dir, sizeof(want_dir));
        if (strcmp(want_dir, dir) != 0) {
            add_finding(v, WK_VERIFY_UNEXPECTED, path,
                        "WAL object outside its folder \"%s\": never restored", want_dir);
            continue;
        }
        if (kind == WK_WAL_ENTRY_CLAIM)
            continue; /* a name's claim (docs/format.md, "Claims") */
        /* Sorted, so the objects claiming one name are neighbours. */
        if (strcmp(prev_name, name) == 0) {
            if (!prev_conflict && !wk_fingerprint_equal(&prev_fp, &fp)) {
                add_finding(v, WK_VERIFY_CONFLICT, name,
                            "several objects with different content claim WAL file \"%s\"; "
                            "a restore of it refuses to choose",
                            name);
                prev_conflict = true;
            }
        } else {
            snprintf(prev_name, sizeof(prev_name), "%s", name);
            prev_fp = fp;
            prev_conflict = false;
        }

        if (parsed.kind == WK_WAL_SEGMENT)
            index_add(v, parsed.tli, wk_wal_name_segno(&parsed, v->meta.seg_size));

        decoded d;
        wk_error oerr = {0};
        size_t limit = parsed.kind == WK_WAL_HISTORY ? HISTORY_MAX_BYTES : 0;
        wk_walrec_reader *records = NULL;
        if (parsed.kind == WK_WAL_SEGMENT || parsed.kind == WK_WAL_PARTIAL) {
            records = wk_walrec_new(wk_wal_name_segno(&parsed, v->meta.seg_size), v->meta.seg_size,
                                    NULL, NULL);
            if (records == NULL) {
                v->nomem = true;
                break;
            }
        }
        size_t problems = v->report->problem_count;
        if (decode_object(v, path, alg, encrypted, &fp, limit, records, &d, &oerr) != 0) {
            add_error_finding(v, path, &oerr);
            if (parsed.kind == WK_WAL_HISTORY)
                keep_history(v, parsed.tli, false, NULL, 0);
        } else {
            check_wal_content(v, path, name, &parsed, &d);
            if (records != NULL && v->report->problem_count == problems)
                check_time_index(v, dir, path, e->name, &obj, records);
        }
        wk_walrec_free(records);
        free(d.text);
    }
    entry_list_free(&l);
    return 0;
}

static int verify_wal(verify_ctx *v, wk_error *err)
{
    entry_list folders = {0};
    int rc = -1;
    if (verify_wal_folder(v, "wal", &folders, err) != 0)
        goto out;
    if (folders.nomem)
        v->nomem = true;
    for (size_t i = 0; i < folders.count && !v->nomem; i++) {
        char dir[32];
        snprintf(dir, sizeof(dir), "wal/%s", folders.items[i].name);
        if (verify_wal_folder(v, dir, NULL, err) != 0)
            goto out;
    }
    rc = 0;
out:
    entry_list_free(&folders);
    return rc;
}

/* ---- the WAL as a whole ------------------------------------------------------------- */

static int check_gaps(verify_ctx *v)
{
    wk_verify_report *r = v->report;
    uint32_t seg_size = v->meta.seg_size;
    for (size_t i = 0; i < v->timeline_count && !v->nomem; i++) {
        const seg_timeline *t = &v->timelines[i];
        wk_verify_gaps gaps = {.tli = t->tli};
        for (size_t j = 0; j + 1 < t->count; j++) {
            uint64_t first = t->segnos[j] + 1, last = t->segnos[j + 1] - 1;
            char from[WK_WAL_NAME_LEN + 1], to[WK_WAL_NAME_LEN + 1];
            char before[WK_WAL_NAME_LEN + 1], after[WK_WAL_NAME_LEN + 1];
            if (first > last)
                continue;
            wk_wal_segment_name(from, t->tli, first, seg_size);
            wk_wal_segment_name(to, t->tli, last, seg_size);
            wk_wal_segment_name(before, t->tli, t->segnos[j], seg_size);
            wk_wal_segment_name(after, t->tli, t->segnos[j + 1], seg_size);
            if (first == last)
                add_finding(v, WK_VERIFY_GAP, from,
                            "WAL segment missing on timeline %" PRIu32 " (between %s and %s)",
                            t->tli, before, after);
            else
                add_finding(v, WK_VERIFY_GAP, from,
                            "%" PRIu64 " WAL segments missing on timeline %" PRIu32
                            ": %s to %s (between %s and %s)",
                            last - first + 1, t->tli, from, to, before, after);
            gaps.missing += last - first + 1;
            for (uint64_t s = first; s <= last && gaps.listed < WK_VERIFY_GAPS_LISTED_MAX; s++) {
                if (gaps.names == NULL) {
                    gaps.names = calloc(WK_VERIFY_GAPS_LISTED_MAX, sizeof(*gaps.names));
                    if (gaps.names == NULL) {
                        v->nomem = true;
                        return -1;
                    }
                }
                wk_wal_segment_name(gaps.names[gaps.listed++], t->tli, s, seg_size);
            }
        }
        if (gaps.missing == 0)
            continue;
        wk_verify_gaps *grown = realloc(r->gaps, (r->gap_count + 1) * sizeof(*grown));
        if (grown == NULL) {
            free(gaps.names);
            v->nomem = true;
            return -1;
        }
        r->gaps = grown;
        r->gaps[r->gap_count++] = gaps;
    }
    return 0;
}

static void history_name(char *buf, size_t size, uint32_t tli)
{
    snprintf(buf, size, "%08" PRIX32 ".history", tli);
}

/* Every timeline above 1 with segments has its history file; each history file ends
 * on a lower parent and agrees with its parent's history file. */
static void check_histories(verify_ctx *v)
{
    char name[32];
    for (size_t i = 0; i < v->timeline_count; i++) {
        const seg_timeline *t = &v->timelines[i];
        if (t->tli <= 1 || t->count == 0 || find_history(v, t->tli) != NULL)
            continue;
        /* A repository created after a failover or a point-in-time restore never got the
         * history PostgreSQL archived then; the server still has it in pg_wal. */
        char hint[400];
        history_name(name, sizeof(name), t->tli);
        snprintf(hint, sizeof(hint),
                 "archive it from the pg_wal of a server on timeline %" PRIu32
                 " or later (PostgreSQL keeps history files there): walkeep-archive --config "
                 "FILE $PGDATA/pg_wal/%s; \"walkeep init\" or a base backup on that server "
                 "stores it too",
                 t->tli, name);
        add_finding_hint(v, WK_VERIFY_HISTORY, name, hint,
                         "timeline %" PRIu32 " has %zu WAL segments, but its history file is not "
                         "archived: a restore cannot follow timeline %" PRIu32,
                         t->tli, t->count, t->tli);
    }
    for (size_t i = 0; i < v->history_count; i++) {
        const history_file *h = &v->histories[i];
        if (!h->valid)
            continue;
        history_name(name, sizeof(name), h->tli);
        if (h->count == 0) {
            if (h->tli > 1)
                add_finding(v, WK_VERIFY_HISTORY, name,
                            "history file of timeline %" PRIu32 " names no parent timeline",
                            h->tli);
            continue;
        }
        uint32_t parent = h->entries[h->count - 1].tli;
        if (parent >= h->tli) {
            add_finding(v, WK_VERIFY_HISTORY, name,
                        "history file of timeline %" PRIu32 " names parent timeline %" PRIu32
                        ", which is not lower",
                        h->tli, parent);
            continue;
        }
        const history_file *p = find_history(v, parent);
        if (parent <= 1 || p == NULL || !p->valid)
            continue;
        bool same = p->count == h->count - 1;
        for (size_t j = 0; same && j < p->count; j++)
            same = p->entries[j].tli == h->entries[j].tli &&
                   p->entries[j].switch_lsn == h->entries[j].switch_lsn;
        if (!same)
            add_finding(v, WK_VERIFY_HISTORY, name,
                        "history file of timeline %" PRIu32
                        " disagrees with that of its parent timeline %" PRIu32,
                        h->tli, parent);
    }
}

/* ---- backups and dumps ------------------------------------------------------------- */

/* One stream of a record: decoded and checked against the record's fingerprint and
 * sizes. */
static void verify_stream(verify_ctx *v, const char *what, const char *object,
                          const wk_fingerprint *fp, uint64_t bytes, uint64_t stored_bytes)
{
    wk_compress alg;
    bool encrypted;
    decoded d;
    wk_error err = {0};
    if (suffix_of_path(object, &alg, &encrypted) != 0) {
        add_finding(v, WK_VERIFY_RECORD, object,
                    "%s names an object without a walkeep encoding suffix", what);
        return;
    }
    if (decode_object(v, object, alg, encrypted, fp, 0, NULL, &d, &err) != 0) {
        if (err.code == WK_ERR_NOTFOUND)
            add_finding(v, WK_VERIFY_MISSING, object, "object named by %s is not in the repository",
                        what);
        else
            add_error_finding(v, object, &err);
        return;
    }
    if (d.summary.bytes != bytes)
        add_finding(v, WK_VERIFY_CORRUPT, object,
                    "object holds %" PRIu64 " bytes, %s says %" PRIu64, d.summary.bytes, what,
                    bytes);
    else if (d.stored != stored_bytes)
        add_finding(v, WK_VERIFY_CORRUPT, object,
                    "object is stored in %" PRIu64 " bytes, %s says %" PRIu64, d.stored, what,
                    stored_bytes);
}

/* Files of a backup folder its record does not name. */
static int check_unreferenced(verify_ctx *v, const char *dir, const char *record_name,
                              const wk_backup_record *r, wk_error *err)
{
    entry_list l;
    if (list_folder(v, dir, &l, err) != 0)
        return -1;
    for (size_t i = 0; i < l.count; i++) {
        char path[WK_OBJECT_PATH_MAX + 64];
        size_t rlen = strlen(record_name);
        /* The record, its MAC ("<record>.mac"), and the objects it names. */
        bool named = strcmp(l.items[i].name, record_name) == 0 ||
                     (strncmp(l.items[i].name, record_name, rlen) == 0 &&
                      strcmp(l.items[i].name + rlen, ".mac") == 0);
        snprintf(path, sizeof(path), "%s/%s", dir, l.items[i].name);
        for (size_t j = 0; !named && j < r->stream_count; j++)
            named = strcmp(r->streams[j].object, path) == 0;
        if (!named)
            add_finding(v, WK_VERIFY_UNEXPECTED, path, "not named by the backup's record");
    }
    entry_list_free(&l);
    return 0;
}

static bool segment_archived(const verify_ctx *v, uint32_t from_tli, uint32_t to_tli,
                             uint64_t segno)
{
    for (uint32_t tli = from_tli; tli <= to_tli && tli != 0; tli++)
        if (index_has(v, tli, segno))
            return true;
    return false;
}

/* The segments from the one holding start_lsn to the one holding stop_lsn - 1, each on
 * one of the backup's timelines. */
static void check_backup_wal(verify_ctx *v, const wk_backup_record *r)
{
    uint32_t seg_size = v->meta.seg_size;
    uint32_t from_tli = r->start_tli, to_tli = r->stop_tli;
    if (to_tli < from_tli) {
        add_finding(v, WK_VERIFY_RECORD, r->label,
                    "backup record has stop timeline %" PRIu32 " below its start timeline %" PRIu32,
                    to_tli, from_tli);
        return;
    }
    if (r->stop_lsn <= r->start_lsn) {
        add_finding(v, WK_VERIFY_RECORD, r->label,
                    "backup record has a stop point not after its start point");
        return;
    }
    uint64_t first = wk_wal_lsn_to_segno(r->start_lsn, seg_size);
    uint64_t last = wk_wal_lsn_to_segno(r->stop_lsn - 1, seg_size);
    uint64_t missing = 0;
    char name[WK_WAL_NAME_LEN + 1], start[32], stop[32];
    wk_wal_format_lsn(start, sizeof(start), r->start_lsn);
    wk_wal_format_lsn(stop, sizeof(stop), r->stop_lsn);
    for (uint64_t s = first; s <= last && !v->nomem; s++) {
        if (segment_archived(v, from_tli, to_tli, s))
            continue;
        if (missing++ >= MISSING_WAL_LISTED_MAX)
            continue;
        wk_wal_segment_name(name, to_tli, s, seg_size);
        add_finding(v, WK_VERIFY_MISSING_WAL, name,
                    "backup \"%s\" needs this WAL segment (its WAL runs from %s to %s), but it "
                    "is not archived",
                    r->label, start, stop);
    }
    if (missing > MISSING_WAL_LISTED_MAX)
        add_finding(v, WK_VERIFY_MISSING_WAL, r->label,
                    "backup \"%s\" misses %" PRIu64 " WAL segments in all (the first %d are "
                    "listed)",
                    r->label, missing, MISSING_WAL_LISTED_MAX);
}

static int verify_backup(verify_ctx *v, const char *label, wk_error *err)
{
    wk_backup_record r = {0};
    wk_error rerr = {0};
    char dir[WK_OBJECT_PATH_MAX], what[WK_BACKUP_LABEL_MAX + 32];
    int rc = 0;
    snprintf(dir, sizeof(dir), "backups/%s", label);
    if (wk_backup_record_read(v->repo, label, &r, &rerr) != 0) {
        if (rerr.code == WK_ERR_NOTFOUND) {
            add_finding(v, WK_VERIFY_INCOMPLETE, dir,
                        "backup folder without %s: an interrupted backup, never restored",
                        WK_BACKUP_RECORD);
        } else if (rerr.code == WK_ERR_NOMEM) {
            v->nomem = true;
        } else {
            char path[WK_OBJECT_PATH_MAX + 32];
            snprintf(path, sizeof(path), "%s/%s", dir, WK_BACKUP_RECORD);
            add_finding(v, rerr.code == WK_ERR_CORRUPT ? WK_VERIFY_RECORD : WK_VERIFY_UNREADABLE,
                        path, "%s", rerr.message);
        }
        return 0;
    }
    snprintf(what, sizeof(what), "the record of backup \"%s\"", label);
    if (strcmp(r.label, label) != 0)
        add_finding(v, WK_VERIFY_RECORD, dir, "backup record names label \"%s\"", r.label);
    if (r.system_identifier != v->meta.system_identifier)
        add_finding(v, WK_VERIFY_RECORD, dir,
                    "backup of system identifier %" PRIu64 ", not the repository's %" PRIu64,
                    r.system_identifier, v->meta.system_identifier);
    for (size_t i = 0; i < r.stream_count && !v->nomem; i++)
        verify_stream(v, what, r.streams[i].object, &r.streams[i].fingerprint, r.streams[i].bytes,
                      r.streams[i].stored_bytes);
    check_backup_wal(v, &r);
    if (!v->nomem)
        rc = check_unreferenced(v, dir, WK_BACKUP_RECORD, &r, err);
    wk_backup_record_free(&r);
    return rc;
}

/* dumps/<label>/dump.json (dump.c reads it): its streams are checked like a backup's. */
static void verify_dump(verify_ctx *v, const char *label)
{
    char dir[WK_OBJECT_PATH_MAX], path[WK_OBJECT_PATH_MAX + 32], what[WK_OBJECT_PATH_MAX + 32];
    wk_dump_record r = {0};
    wk_error err = {0};
    snprintf(dir, sizeof(dir), "dumps/%s", label);
    snprintf(path, sizeof(path), "%s/%s", dir, WK_DUMP_RECORD);
    snprintf(what, sizeof(what), "the record of dump \"%s\"", label);
    if (wk_dump_check_label(label, NULL) != 0) {
        add_finding(v, WK_VERIFY_UNEXPECTED, dir,
                    "not a dump label: walkeep writes no such folder");
        return;
    }
    if (wk_dump_record_read(v->repo, label, &r, &err) != 0) {
        if (err.code == WK_ERR_NOTFOUND)
            add_finding(v, WK_VERIFY_INCOMPLETE, dir,
                        "dump folder without %s: an interrupted dump, never restored",
                        WK_DUMP_RECORD);
        else if (err.code == WK_ERR_NOMEM)
            v->nomem = true;
        else
            add_finding(v,
                        err.code == WK_ERR_IO || err.code == WK_ERR_TRANSIENT ? WK_VERIFY_UNREADABLE
                                                                              : WK_VERIFY_RECORD,
                        path, "%s", err.message);
        return;
    }
    for (size_t i = 0; i < r.stream_count && !v->nomem; i++) {
        const wk_dump_stream *s = &r.streams[i];
        verify_stream(v, what, s->object, &s->fingerprint, s->bytes, s->stored_bytes);
    }
    wk_dump_record_free(&r);
}

/* backups/ or dumps/: each folder in turn. */
static int verify_records(verify_ctx *v, const char *top, bool backups, wk_error *err)
{
    entry_list l;
    int rc = 0;
    if (list_folder(v, top, &l, err) != 0)
        return -1;
    for (size_t i = 0; i < l.count && rc == 0 && !v->nomem; i++) {
        char path[WK_OBJECT_PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/%s", top, l.items[i].name);
        if (!l.items[i].is_dir)
            add_finding(v, WK_VERIFY_UNEXPECTED, path, "file not written by walkeep");
        else if (strlen(l.items[i].name) >= WK_BACKUP_LABEL_MAX)
            add_finding(v, WK_VERIFY_UNEXPECTED, path, "folder not written by walkeep");
        else if (backups)
            rc = verify_backup(v, l.items[i].name, err);
        else
            verify_dump(v, l.items[i].name);
    }
    entry_list_free(&l);
    return rc;
}

/* ---- temporaries -------------------------------------------------------------------- */

/* What killed writes leave behind (hidden temporary files, S3 multipart uploads): the
 * storage interface never lists them as objects, so they are asked for separately.
 * Those no live writer can own (untouched for an hour, or an upload whose writer's
 * process is gone) are removed; the others are reported. */
typedef struct temp_list {
    char **folders;
    size_t count;
    bool nomem;
} temp_list;

static int collect_temp_folder(const char *path, uint64_t bytes, int64_t age_seconds, void *arg)
{
    (void)bytes;
    (void)age_seconds;
    temp_list *l = arg;
    const char *slash = strrchr(path, '/');
    size_t len = slash != NULL ? (size_t)(slash - path) : 0;
    for (size_t i = 0; i < l->count; i++)
        if (strlen(l->folders[i]) == len && strncmp(l->folders[i], path, len) == 0)
            return 0;
    char **grown = realloc(l->folders, (l->count + 1) * sizeof(*grown));
    char *copy = strndup(path, len);
    if (grown != NULL)
        l->folders = grown;
    if (grown == NULL || copy == NULL) {
        free(copy);
        l->nomem = true;
        return 1;
    }
    l->folders[l->count++] = copy;
    return 0;
}

static int report_temporary(const char *path, uint64_t bytes, int64_t age_seconds, void *arg)
{
    verify_ctx *v = arg;
    add_finding(v, WK_VERIFY_TEMPORARY, path,
                "leftover of an interrupted write (%llu bytes, %lld s old); it is never read "
                "and is removed once no walkeep program can be writing it",
                (unsigned long long)bytes, (long long)age_seconds);
    return 0;
}

static int check_temporaries(verify_ctx *v, wk_error *err)
{
    wk_storage *st = v->repo->storage;
    temp_list l = {0};
    int rc = wk_storage_list_temporaries(st, "", collect_temp_folder, &l, err);
    if (rc == 0 && l.nomem)
        v->nomem = true;
    for (size_t i = 0; rc == 0 && i < l.count; i++)
        rc = wk_storage_clean_temporaries(st, l.folders[i], WK_STORAGE_STALE_SECONDS, NULL, err);
    for (size_t i = 0; i < l.count; i++)
        free(l.folders[i]);
    free(l.folders);
    if (rc == 0 && !v->nomem)
        rc = wk_storage_list_temporaries(st, "", report_temporary, v, err);
    return rc;
}

/* ---- the total, for progress ------------------------------------------------------- */

/* The stored bytes of the objects of one folder that the walk reads through its
 * progress stage: not the claims (never read), nor a record and its MAC (read apart). */
typedef struct size_sum {
    uint64_t bytes;
    const char *record;  /* the record's name in this folder, or NULL */
    entry_list *folders; /* when not NULL, the sub folders are collected here */
} size_sum;

static int sum_entry(const char *name, bool is_dir, uint64_t size, void *arg)
{
    size_sum *s = arg;
    size_t len = strlen(name);
    if (is_dir)
        return s->folders != NULL ? collect_entry(name, true, 0, s->folders) : 0;
    if (len > 6 && strcmp(name + len - 6, "-claim") == 0)
        return 0;
    if (s->record != NULL && strncmp(name, s->record, strlen(s->record)) == 0)
        return 0;
    s->bytes += size;
    return 0;
}

/* Sums folder dir (and, with folders, collects its sub folders); 0 or -1. */
static int sum_folder(verify_ctx *v, const char *dir, const char *record, entry_list *folders,
                      uint64_t *total)
{
    wk_error ignored = {0};
    size_sum s = {.record = record, .folders = folders};
    if (wk_storage_list(v->repo->storage, dir, "", sum_entry, &s, &ignored) != 0 ||
        (folders != NULL && folders->nomem))
        return -1;
    *total += s.bytes;
    return 0;
}

/* Sums the objects of dir (but record) and, depth levels down, of its folders (whose
 * own record is child_record). */
static int sum_tree(verify_ctx *v, const char *dir, const char *record, const char *child_record,
                    int depth, uint64_t *total)
{
    entry_list folders = {0};
    int rc = sum_folder(v, dir, record, depth > 0 ? &folders : NULL, total);
    for (size_t i = 0; i < folders.count && rc == 0; i++) {
        char sub[WK_OBJECT_PATH_MAX];
        snprintf(sub, sizeof(sub), "%s/%s", dir, folders.items[i].name);
        rc = sum_tree(v, sub, child_record, NULL, depth - 1, total);
    }
    entry_list_free(&folders);
    return rc;
}

/* What the walk will read, from one listing of wal/<timeline>/, backups/<label>/ and
 * dumps/<label>/ with its dir/ of a directory dump: 0 when any listing fails (the walk
 * reports it). */
static uint64_t expected_total(verify_ctx *v)
{
    static const struct {
        const char *top, *record;
        int depth;
    } tops[] = {{"wal", NULL, 1}, {"backups", WK_BACKUP_RECORD, 1}, {"dumps", WK_DUMP_RECORD, 2}};
    uint64_t total = 0;
    int rc = 0;
    for (size_t t = 0; t < sizeof(tops) / sizeof(tops[0]) && rc == 0; t++)
        rc = sum_tree(v, tops[t].top, NULL, tops[t].record, tops[t].depth, &total);
    return rc == 0 ? total : 0;
}

/* ---- the whole -------------------------------------------------------------------- */

int wk_verify_run(wk_repo *repo, wk_verify_report *report, wk_error *err)
{
    return wk_verify_run_progress(repo, NULL, NULL, report, err);
}

int wk_verify_run_progress(wk_repo *repo,
                           void (*progress)(uint64_t done, uint64_t total, void *arg), void *arg,
                           wk_verify_report *report, wk_error *err)
{
    verify_ctx v = {.repo = repo, .report = report, .progress = {.fn = progress, .arg = arg}};
    int rc = -1;
    memset(report, 0, sizeof(*report));
    if (wk_repo_open_meta(repo, NULL, &v.meta, NULL, err) != 0)
        return -1;
    if (progress != NULL)
        v.progress.total = expected_total(&v);
    if (verify_wal(&v, err) != 0 || v.nomem)
        goto out;
    index_sort(&v);
    if (verify_records(&v, "backups", true, err) != 0 || v.nomem)
        goto out;
    if (verify_records(&v, "dumps", false, err) != 0 || v.nomem)
        goto out;
    check_histories(&v);
    if (check_gaps(&v) != 0 || v.nomem)
        goto out;
    if (check_temporaries(&v, err) != 0)
        goto out;
    if (progress != NULL && v.progress.done > 0 && v.progress.done != v.progress.total)
        progress(v.progress.done, v.progress.done, arg); /* what was read is the total */
    rc = 0;
out:
    if (v.nomem) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        rc = -1;
    }
    for (size_t i = 0; i < v.history_count; i++)
        free(v.histories[i].entries);
    free(v.histories);
    for (size_t i = 0; i < v.timeline_count; i++)
        free(v.timelines[i].segnos);
    free(v.timelines);
    return rc;
}
