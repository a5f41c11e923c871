/* dump: logical dumps in the repository. pg_dump / pg_dumpall output streamed through the
 * object pipeline into dumps/<label>/, the JSON record (dump.json, written last) that
 * makes a dump usable, listing, and restore / verify feeding psql or pg_restore straight
 * from the repository. */
#include "dump.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "backup.h"
#include "json.h"
#include "pg.h"
#include "pgversion.h"
#include "proc.h"
#include "record.h"

/* ---- names ---------------------------------------------------------------------- */

static const char *const format_names[] = {"plain", "custom", "directory", "globals"};

const char *wk_dump_format_name(wk_dump_format f)
{
    return (unsigned)f < sizeof(format_names) / sizeof(format_names[0]) ? format_names[f] : "?";
}

int wk_dump_parse_format(const char *text, wk_dump_format *out)
{
    for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++)
        if (text != NULL && strcmp(text, format_names[i]) == 0) {
            *out = (wk_dump_format)i;
            return 0;
        }
    return -1;
}

/* The stream a single-file format is stored as. */
static const char *single_stream_name(wk_dump_format f)
{
    switch (f) {
    case WK_DUMP_PLAIN:
        return "dump.sql";
    case WK_DUMP_CUSTOM:
        return "dump.custom";
    case WK_DUMP_GLOBALS:
        return "globals.sql";
    default:
        return NULL;
    }
}

void wk_dump_record_free(wk_dump_record *record)
{
    if (record == NULL)
        return;
    free(record->streams);
    record->streams = NULL;
    record->stream_count = 0;
}

static bool label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

int wk_dump_check_label(const char *label, wk_error *err)
{
    return wk_repo_check_label("dump", label, err);
}

/* A file name pg_dump -Fd writes (toc.dat, 3345.dat, blob_16401.dat, blobs.toc): a plain
 * name we can use as an object name and as a file name when materialising. */
static bool valid_file_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof(((wk_dump_stream *)0)->name) || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!label_char(name[i]))
            return false;
    return true;
}

/* ---- the record ----------------------------------------------------------------- */

static void record_path(const char *label, char *buf, size_t size)
{
    snprintf(buf, size, "dumps/%s/%s", label, WK_DUMP_RECORD);
}

static void write_streams(wk_json_writer *w, const wk_dump_record *r)
{
    wk_json_key(w, "streams");
    wk_json_begin_array(w);
    for (size_t i = 0; i < r->stream_count; i++) {
        const wk_dump_stream *s = &r->streams[i];
        wk_record_stream rs = {.name = s->name,
                               .object = s->object,
                               .bytes = s->bytes,
                               .stored_bytes = s->stored_bytes,
                               .fingerprint = s->fingerprint};
        wk_record_stream_write(w, &rs);
    }
    wk_json_end_array(w);
}

/* The members a record and a listing entry share, in record order. */
static void write_summary(wk_json_writer *w, const wk_dump_record *r)
{
    char tbuf[40];
    wk_json_kv_string(w, "database", r->database);
    wk_json_kv_string(w, "dump_format", wk_dump_format_name(r->format));
    wk_json_kv_string(w, "server_version", r->server_version);
    wk_record_format_time(r->start_time, tbuf, sizeof(tbuf));
    wk_json_kv_string(w, "start_time", tbuf);
    wk_record_format_time(r->end_time, tbuf, sizeof(tbuf));
    wk_json_kv_string(w, "end_time", tbuf);
    wk_json_kv_uint(w, "bytes", r->bytes);
    wk_json_kv_uint(w, "stored_bytes", r->stored_bytes);
    wk_json_kv_string(w, "compress", wk_compress_name(r->compress));
    wk_json_kv_bool(w, "encrypted", r->encrypted);
}

int wk_dump_record_write(wk_repo *repo, const wk_dump_record *r, wk_error *err)
{
    char path[256];
    wk_json_writer *w = wk_json_writer_new();
    char *text = NULL;
    int rc = -1;
    if (wk_dump_check_label(r->label, err) != 0)
        goto out;
    wk_json_begin_object(w);
    wk_json_kv_int(w, "format", 1);
    wk_json_kv_string(w, "label", r->label);
    write_summary(w, r);
    write_streams(w, r);
    wk_json_end_object(w);
    text = wk_json_writer_finish(w, err);
    if (text == NULL)
        goto out;
    record_path(r->label, path, sizeof(path));
    rc = wk_repo_record_write(repo, path, text, strlen(text), err);
out:
    free(text);
    wk_json_writer_free(w);
    return rc;
}

static int get_time(const wk_json *obj, const char *key, time_t *out, wk_error *err)
{
    const char *text;
    if (wk_json_get_string(obj, key, &text, err) != 0)
        return -1;
    if (wk_record_parse_time(text, out) != 0)
        return wk_error_set(err, WK_ERR_CORRUPT, "invalid time in member \"%s\"", key);
    return 0;
}

static int get_text(const wk_json *obj, const char *key, char *buf, size_t size, wk_error *err)
{
    const char *text;
    if (wk_json_get_string(obj, key, &text, err) != 0)
        return -1;
    if (strlen(text) >= size)
        return wk_error_set(err, WK_ERR_CORRUPT, "member \"%s\" is too long", key);
    snprintf(buf, size, "%s", text);
    return 0;
}

static int parse_stream(const wk_json *js, const char *label, wk_dump_stream *s, wk_error *err)
{
    wk_record_stream rs;
    char prefix[128];
    if (wk_record_stream_read(js, false, &rs, err) != 0)
        return -1;
    if (strlen(rs.name) >= sizeof(s->name) || strlen(rs.object) >= sizeof(s->object))
        return wk_error_set(err, WK_ERR_CORRUPT, "invalid stream \"%.64s\"", rs.name);
    snprintf(s->name, sizeof(s->name), "%s", rs.name);
    snprintf(s->object, sizeof(s->object), "%s", rs.object);
    s->bytes = rs.bytes;
    s->stored_bytes = rs.stored_bytes;
    s->fingerprint = rs.fingerprint;
    /* Streams are read from and written to paths we build from these: only names of the
     * form walkeep writes, inside this dump's folder. */
    snprintf(prefix, sizeof(prefix), "dumps/%s/", label);
    if (!valid_file_name(s->name) || strncmp(s->object, prefix, strlen(prefix)) != 0 ||
        wk_storage_check_path(s->object, NULL) != 0)
        return wk_error_set(err, WK_ERR_CORRUPT, "invalid stream \"%.64s\"", s->name);
    return 0;
}

int wk_dump_record_read(wk_repo *repo, const char *label, wk_dump_record *out, wk_error *err)
{
    char path[256];
    uint8_t *text = NULL;
    size_t len = 0;
    wk_json *doc = NULL;
    wk_dump_record r = {0};
    const char *s;
    int64_t version;
    int rc = -1;
    if (wk_dump_check_label(label, err) != 0)
        return -1;
    record_path(label, path, sizeof(path));
    if (wk_repo_record_read(repo, path, &text, &len, err) != 0)
        goto out;
    if (wk_json_parse((const char *)text, len, &doc, err) != 0)
        goto bad;
    if (wk_json_get_int(doc, "format", &version, err) != 0)
        goto bad;
    if (version != 1) {
        wk_error_set(err, WK_ERR_CORRUPT, "unsupported record format %lld", (long long)version);
        goto bad;
    }
    if (get_text(doc, "label", r.label, sizeof(r.label), err) != 0 ||
        get_text(doc, "database", r.database, sizeof(r.database), err) != 0 ||
        get_text(doc, "server_version", r.server_version, sizeof(r.server_version), err) != 0 ||
        get_time(doc, "start_time", &r.start_time, err) != 0 ||
        get_time(doc, "end_time", &r.end_time, err) != 0 ||
        wk_json_get_uint(doc, "bytes", &r.bytes, err) != 0 ||
        wk_json_get_uint(doc, "stored_bytes", &r.stored_bytes, err) != 0 ||
        wk_json_get_bool(doc, "encrypted", &r.encrypted, err) != 0)
        goto bad;
    if (strcmp(r.label, label) != 0) {
        wk_error_set(err, WK_ERR_CORRUPT, "record names label \"%s\"", r.label);
        goto bad;
    }
    if (wk_json_get_string(doc, "dump_format", &s, err) != 0)
        goto bad;
    if (wk_dump_parse_format(s, &r.format) != 0) {
        wk_error_set(err, WK_ERR_CORRUPT, "unknown dump format \"%.32s\"", s);
        goto bad;
    }
    if (wk_json_get_string(doc, "compress", &s, err) != 0)
        goto bad;
    if (wk_compress_parse(s, &r.compress) != 0) {
        wk_error_set(err, WK_ERR_CORRUPT, "unknown compression \"%.32s\"", s);
        goto bad;
    }
    const wk_json *streams = wk_json_get(doc, "streams");
    if (wk_json_type_of(streams) != WK_JSON_ARRAY) {
        wk_error_set(err, WK_ERR_CORRUPT, "missing or invalid member \"streams\"");
        goto bad;
    }
    r.stream_count = wk_json_length(streams);
    r.streams = calloc(r.stream_count + 1, sizeof(*r.streams));
    if (r.streams == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < r.stream_count; i++)
        if (parse_stream(wk_json_at(streams, i), label, &r.streams[i], err) != 0)
            goto bad;
    if (r.format != WK_DUMP_DIRECTORY && r.stream_count != 1) {
        wk_error_set(err, WK_ERR_CORRUPT, "a %s dump has exactly one stream",
                     wk_dump_format_name(r.format));
        goto bad;
    }
    *out = r;
    memset(&r, 0, sizeof(r));
    rc = 0;
    goto out;
bad:
    wk_error_prefix(err, "invalid dump record \"%s\"", path);
out:
    wk_dump_record_free(&r);
    wk_json_free(doc);
    free(text);
    return rc;
}

/* ---- listing -------------------------------------------------------------------- */

static int count_entry(const char *name, bool is_dir, uint64_t size, void *arg)
{
    (void)name;
    (void)is_dir;
    (void)size;
    ++*(size_t *)arg;
    return 1;
}

static int compare_entries(const void *a, const void *b)
{
    const wk_dump_entry *x = a, *y = b;
    if (x->has_record != y->has_record)
        return x->has_record ? -1 : 1;
    if (x->has_record && x->record.start_time != y->record.start_time)
        return x->record.start_time < y->record.start_time ? -1 : 1;
    return strcmp(x->label, y->label);
}

int wk_dump_list(wk_repo *repo, wk_dump_entry **out, size_t *count, wk_error *err)
{
    char(*labels)[WK_LABEL_MAX] = NULL;
    size_t label_count = 0;
    wk_dump_entry *entries = NULL;
    size_t n = 0;
    int rc = -1;
    if (wk_repo_list_labels(repo, "dumps", &labels, &label_count, err) != 0)
        goto out;
    entries = calloc(label_count + 1, sizeof(*entries));
    if (entries == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < label_count; i++) {
        wk_dump_entry *e = &entries[n];
        char dir[128];
        snprintf(e->label, sizeof(e->label), "%s", labels[i]);
        if (wk_dump_record_read(repo, e->label, &e->record, err) == 0) {
            e->has_record = true;
        } else if (err->code != WK_ERR_NOTFOUND) {
            wk_dump_list_free(entries, n);
            entries = NULL;
            goto out;
        } else {
            /* No record: an interrupted create. An empty folder (what a failed create
             * that cleaned up may leave on some storage) is not worth listing. */
            size_t inside = 0;
            snprintf(dir, sizeof(dir), "dumps/%s", e->label);
            if (wk_storage_list(repo->storage, dir, "", count_entry, &inside, err) != 0) {
                wk_dump_list_free(entries, n);
                entries = NULL;
                goto out;
            }
            if (inside == 0)
                continue;
        }
        n++;
    }
    wk_error_clear(err);
    if (n > 1)
        qsort(entries, n, sizeof(*entries), compare_entries);
    *out = entries;
    *count = n;
    rc = 0;
out:
    free(labels);
    return rc;
}

void wk_dump_list_free(wk_dump_entry *entries, size_t count)
{
    if (entries == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        wk_dump_record_free(&entries[i].record);
    free(entries);
}

char *wk_dump_list_json(const wk_dump_entry *entries, size_t count, wk_error *err)
{
    wk_json_writer *w = wk_json_writer_new();
    wk_json_begin_object(w);
    wk_json_key(w, "dumps");
    wk_json_begin_array(w);
    for (size_t i = 0; i < count; i++) {
        const wk_dump_entry *e = &entries[i];
        wk_json_begin_object(w);
        wk_json_kv_string(w, "label", e->label);
        wk_json_kv_string(w, "status", e->has_record ? "complete" : "incomplete");
        if (e->has_record) {
            /* "format" here is the dump's format; the record's own "format" is its
             * version, so the record calls this "dump_format". Both are given. */
            wk_json_kv_string(w, "format", wk_dump_format_name(e->record.format));
            write_summary(w, &e->record);
            write_streams(w, &e->record);
        }
        wk_json_end_object(w);
    }
    wk_json_end_array(w);
    wk_json_end_object(w);
    char *text = wk_json_writer_finish(w, err);
    wk_json_writer_free(w);
    return text;
}

/* ---- argument vectors ----------------------------------------------------------- */

void wk_dump_argv_free(wk_dump_argv *argv)
{
    if (argv == NULL)
        return;
    for (size_t i = 0; i < argv->count; i++)
        free(argv->items[i]);
    free(argv->items);
    argv->items = NULL;
    argv->count = 0;
}

/* Appends copies of each string up to a NULL; on failure the vector is freed. */
static int argv_add(wk_dump_argv *argv, wk_error *err, ...)
{
    va_list ap;
    const char *s;
    int rc = 0;
    va_start(ap, err);
    while ((s = va_arg(ap, const char *)) != NULL) {
        char **grown = realloc(argv->items, (argv->count + 2) * sizeof(*grown));
        char *copy = strdup(s);
        if (grown != NULL)
            argv->items = grown;
        if (grown == NULL || copy == NULL) {
            free(copy);
            rc = wk_error_set(err, WK_ERR_NOMEM, "out of memory");
            break;
        }
        argv->items[argv->count++] = copy;
        argv->items[argv->count] = NULL;
    }
    va_end(ap);
    if (rc != 0)
        wk_dump_argv_free(argv);
    return rc;
}

char *wk_dump_program(const char *bindir, const char *name)
{
    size_t n = (bindir != NULL ? strlen(bindir) : 0) + strlen(name) + 2;
    char *path = malloc(n);
    if (path == NULL)
        return NULL;
    if (bindir != NULL && bindir[0] != '\0')
        snprintf(path, n, "%s/%s", bindir, name);
    else
        snprintf(path, n, "%s", name);
    return path;
}

static int argv_program(wk_dump_argv *argv, const char *bindir, const char *name, wk_error *err)
{
    char *path = wk_dump_program(bindir, name);
    if (path == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    int rc = argv_add(argv, err, path, NULL);
    free(path);
    return rc;
}

/* ---- connection strings --------------------------------------------------------- */

typedef struct strbuf {
    char *text;
    size_t len, cap;
    bool nomem;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->nomem)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 128 : b->cap;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->text, cap);
        if (grown == NULL) {
            b->nomem = true;
            return;
        }
        b->text = grown;
        b->cap = cap;
    }
    memcpy(b->text + b->len, s, n);
    b->len += n;
    b->text[b->len] = '\0';
}

/* key='value' with ' and \ escaped, as libpq reads it. */
static void sb_pair(strbuf *b, const char *key, const char *value)
{
    if (b->len > 0)
        sb_put(b, " ", 1);
    sb_put(b, key, strlen(key));
    sb_put(b, "='", 2);
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\'' || *p == '\\')
            sb_put(b, "\\", 1);
        sb_put(b, p, 1);
    }
    sb_put(b, "'", 1);
}

static PQconninfoOption *parse_conninfo(const char *conninfo, wk_error *err)
{
    char *message = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo != NULL ? conninfo : "", &message);
    if (opts == NULL) {
        if (message == NULL) {
            wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        } else {
            message[strcspn(message, "\n")] = '\0';
            wk_error_set(err, WK_ERR_CONFIG, "invalid \"pg_conninfo\": %s", message);
        }
        PQfreemem(message);
    }
    return opts;
}

char *wk_dump_conninfo(const char *conninfo, const char *dbname, char **password, wk_error *err)
{
    strbuf b = {0};
    *password = NULL;
    PQconninfoOption *opts = parse_conninfo(conninfo, err);
    if (opts == NULL)
        return NULL;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (strcmp(o->keyword, "password") == 0) {
            free(*password);
            *password = strdup(o->val);
            if (*password == NULL)
                b.nomem = true;
            continue;
        }
        if (dbname != NULL && strcmp(o->keyword, "dbname") == 0)
            continue;
        sb_pair(&b, o->keyword, o->val);
    }
    if (dbname != NULL)
        sb_pair(&b, "dbname", dbname);
    sb_put(&b, "", 0);
    PQconninfoFree(opts);
    if (b.nomem) {
        free(b.text);
        free(*password);
        *password = NULL;
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return b.text;
}

char *wk_dump_conninfo_dbname(const char *conninfo, wk_error *err)
{
    const char *db = NULL, *user = NULL;
    PQconninfoOption *opts = parse_conninfo(conninfo, err);
    if (opts == NULL)
        return NULL;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val != NULL && o->val[0] != '\0' && strcmp(o->keyword, "dbname") == 0)
            db = o->val;
        if (o->val != NULL && o->val[0] != '\0' && strcmp(o->keyword, "user") == 0)
            user = o->val;
    }
    if (db == NULL)
        db = getenv("PGDATABASE");
    if (db == NULL || db[0] == '\0')
        db = user;
    if (db == NULL || db[0] == '\0')
        db = getenv("PGUSER");
    if (db == NULL || db[0] == '\0') {
        struct passwd *pw = getpwuid(geteuid());
        db = pw != NULL ? pw->pw_name : NULL;
    }
    char *copy = db != NULL ? strdup(db) : NULL;
    PQconninfoFree(opts);
    if (copy == NULL)
        wk_error_set(err, db == NULL ? WK_ERR_CONFIG : WK_ERR_NOMEM,
                     db == NULL ? "could not tell which database to dump" : "out of memory");
    return copy;
}

/* ---- the commands we run -------------------------------------------------------- */

int wk_dump_create_argv(const wk_dump_create_options *opt, const char *conn, const char *outdir,
                        wk_dump_argv *out, wk_error *err)
{
    wk_dump_argv a = {0};
    char jobs[16];
    if (opt->jobs > 1 && opt->format != WK_DUMP_DIRECTORY)
        return wk_error_set(err, WK_ERR_USAGE, "--jobs needs --format=directory");
    if (opt->format == WK_DUMP_GLOBALS) {
        if (argv_program(&a, opt->bindir, "pg_dumpall", err) != 0 ||
            argv_add(&a, err, "-d", conn, "--globals-only", NULL) != 0)
            return -1;
        *out = a;
        return 0;
    }
    if (argv_program(&a, opt->bindir, "pg_dump", err) != 0 ||
        argv_add(&a, err, "-d", conn, NULL) != 0)
        return -1;
    switch (opt->format) {
    case WK_DUMP_PLAIN:
        if (argv_add(&a, err, "-Fp", NULL) != 0)
            return -1;
        break;
    case WK_DUMP_CUSTOM:
        if (argv_add(&a, err, "-Fc", "-Z", "0", NULL) != 0)
            return -1;
        break;
    case WK_DUMP_DIRECTORY:
        if (outdir == NULL) {
            wk_dump_argv_free(&a);
            return wk_error_set(err, WK_ERR_INTERNAL, "directory dump without a folder");
        }
        if (argv_add(&a, err, "-Fd", "-Z", "0", NULL) != 0)
            return -1;
        if (opt->jobs > 1) {
            snprintf(jobs, sizeof(jobs), "%d", opt->jobs);
            if (argv_add(&a, err, "-j", jobs, NULL) != 0)
                return -1;
        }
        if (argv_add(&a, err, "-f", outdir, NULL) != 0)
            return -1;
        break;
    default:
        wk_dump_argv_free(&a);
        return wk_error_set(err, WK_ERR_INTERNAL, "unknown dump format");
    }
    *out = a;
    return 0;
}

bool wk_dump_restore_creates(wk_dump_format format, const wk_dump_restore_options *opt)
{
    return opt->create && format != WK_DUMP_GLOBALS &&
           (opt->dbname != NULL || format == WK_DUMP_PLAIN);
}

int wk_dump_restore_check(wk_dump_format format, const wk_dump_restore_options *opt, wk_error *err)
{
    if (format == WK_DUMP_CUSTOM || format == WK_DUMP_DIRECTORY)
        return 0;
    if (format == WK_DUMP_GLOBALS && (opt->create || opt->clean)) {
        wk_error_set(err, WK_ERR_USAGE, "--%s does not apply to a globals dump",
                     opt->create ? "create" : "clean");
        wk_error_detail(err, "a globals dump holds roles and tablespaces, not a database");
        return -1;
    }
    if (opt->table_count > 0)
        wk_error_set(err, WK_ERR_USAGE, "--table needs a custom or directory dump");
    else if (opt->jobs > 1)
        wk_error_set(err, WK_ERR_USAGE, "--jobs needs a custom or directory dump");
    else if (opt->clean && !opt->create)
        return wk_error_set(err, WK_ERR_USAGE,
                            "--clean with a plain dump needs --create (walkeep then drops the "
                            "database and creates it again)");
    else
        return 0;
    wk_error_detail(err, "a %s dump is an SQL script, replayed by psql as it was written",
                    wk_dump_format_name(format));
    if (format == WK_DUMP_PLAIN && opt->table_count > 0)
        wk_error_hint(err, "take dumps with --format=custom to restore single tables");
    return -1;
}

const char *wk_dump_restore_dbname(const wk_dump_record *r, const wk_dump_restore_options *opt)
{
    if (opt->dbname != NULL)
        return opt->dbname;
    if (r->format == WK_DUMP_GLOBALS)
        return NULL;
    if (opt->create && !wk_dump_restore_creates(r->format, opt))
        return "postgres"; /* pg_restore --create: a maintenance database, as createdb's */
    return r->database;
}

bool wk_dump_restore_stages(wk_dump_format format, int jobs)
{
    return format == WK_DUMP_DIRECTORY || (format == WK_DUMP_CUSTOM && jobs > 1);
}

int wk_dump_restore_argv(const wk_dump_record *r, const wk_dump_restore_options *opt,
                         const char *conn, wk_dump_input input, const char *path, bool list,
                         wk_dump_argv *out, wk_error *err)
{
    wk_dump_argv a = {0};
    char jobs[16];
    if (!list && wk_dump_restore_check(r->format, opt, err) != 0)
        return -1;
    if (input == WK_DUMP_INPUT_PATH && path == NULL)
        return wk_error_set(err, WK_ERR_INTERNAL, "restore from a path without one");
    if (r->format == WK_DUMP_PLAIN || r->format == WK_DUMP_GLOBALS) {
        if (list)
            return wk_error_set(err, WK_ERR_USAGE, "a %s dump has no table of contents",
                                wk_dump_format_name(r->format));
        if (argv_program(&a, opt->bindir, "psql", err) != 0 ||
            argv_add(&a, err, "-X", "-q", NULL) != 0)
            return -1;
        /* pg_dumpall's globals expect CREATE ROLE of an existing role to fail and go on
         * (its ALTER ROLE then sets the attributes); a plain dump stops at the first
         * error and, being one transaction, leaves nothing half-restored. */
        if (r->format == WK_DUMP_PLAIN &&
            argv_add(&a, err, "-v", "ON_ERROR_STOP=1", "--single-transaction", NULL) != 0)
            return -1;
        if (argv_add(&a, err, "-d", conn, "-f", input == WK_DUMP_INPUT_PATH ? path : "-", NULL) !=
            0)
            return -1;
        *out = a;
        return 0;
    }
    if (r->format != WK_DUMP_CUSTOM && r->format != WK_DUMP_DIRECTORY)
        return wk_error_set(err, WK_ERR_INTERNAL, "unknown dump format");
    if (r->format == WK_DUMP_DIRECTORY && input != WK_DUMP_INPUT_PATH)
        return wk_error_set(err, WK_ERR_INTERNAL, "a directory dump is restored from a folder");
    if (argv_program(&a, opt->bindir, "pg_restore", err) != 0)
        return -1;
    if (list) {
        if (argv_add(&a, err, "--list", NULL) != 0)
            return -1;
    } else {
        if (argv_add(&a, err, "-d", conn, "--exit-on-error", NULL) != 0)
            return -1;
        /* pg_restore --create only when it recreates the dump's own database; a database
         * walkeep created is new and empty: nothing to clean. */
        bool restore_creates = opt->create && !wk_dump_restore_creates(r->format, opt);
        if (opt->jobs > 1) {
            snprintf(jobs, sizeof(jobs), "%d", opt->jobs);
            if (argv_add(&a, err, "-j", jobs, NULL) != 0)
                return -1;
        } else if (!restore_creates && argv_add(&a, err, "--single-transaction", NULL) != 0) {
            return -1;
        }
        if (opt->clean && (restore_creates || !opt->create) &&
            argv_add(&a, err, "--clean", "--if-exists", NULL) != 0)
            return -1;
        if (restore_creates && argv_add(&a, err, "--create", NULL) != 0)
            return -1;
        for (size_t i = 0; i < opt->table_count; i++)
            if (argv_add(&a, err, "-t", opt->tables[i], NULL) != 0)
                return -1;
    }
    if (argv_add(&a, err, r->format == WK_DUMP_CUSTOM ? "-Fc" : "-Fd", NULL) != 0)
        return -1;
    if (input == WK_DUMP_INPUT_PATH && argv_add(&a, err, path, NULL) != 0)
        return -1;
    *out = a;
    return 0;
}

/* ---- child processes ------------------------------------------------------------ */

/* Starts argv with stdin / stdout on in_fd / out_fd (stderr is ours: the program's own
 * messages reach the operator as it wrote them) and, when password is set, PGPASSWORD in
 * its environment. */
static int spawn(const wk_dump_argv *argv, const char *password, int in_fd, int out_fd, pid_t *out,
                 wk_error *err)
{
    wk_proc_spec spec = {.argv = argv->items, .in_fd = in_fd, .out_fd = out_fd, .err_fd = -1};
    if (password != NULL) {
        spec.env_name = "PGPASSWORD";
        spec.env_value = password;
    }
    if (wk_proc_spawn(&spec, out, err) != 0) {
        wk_error_hint(err, "set \"pg_bindir\" to the folder holding the PostgreSQL programs");
        return -1;
    }
    return 0;
}

/* The base name of a program path, for messages. */
static const char *program_name(const wk_dump_argv *argv)
{
    return wk_proc_name(argv->items[0]);
}

static int open_null(int flags, wk_error *err)
{
    int fd = open("/dev/null", flags | O_CLOEXEC);
    if (fd < 0)
        wk_error_sys(err, WK_ERR_IO, errno, "could not open \"/dev/null\"");
    return fd;
}

/* A sink writing into the pipe to a child. When the child stops reading (pg_restore
 * --list reads only the table of contents; a restore of some tables stops after the
 * last one), the rest is discarded, so the stages in front still see every byte and
 * the fingerprint is still checked. Needs SIGPIPE ignored. */
typedef struct pipe_stage {
    wk_stage base;
    int fd; /* not owned */
    bool closed_by_reader;
} pipe_stage;

static int pipe_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    pipe_stage *ps = (pipe_stage *)stage;
    const char *p = buf;
    while (len > 0 && !ps->closed_by_reader) {
        ssize_t n = write(ps->fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EPIPE) {
                ps->closed_by_reader = true;
                break;
            }
            return wk_error_sys(err, WK_ERR_IO, errno, "could not write to a pipe");
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int pipe_finish(wk_stage *stage, wk_error *err)
{
    (void)stage;
    (void)err;
    return 0;
}

static void pipe_free(wk_stage *stage)
{
    free(stage);
}

static const wk_stage_ops pipe_ops = {pipe_write, pipe_finish, pipe_free};

static wk_stage *pipe_stage_new(int fd, wk_error *err)
{
    pipe_stage *ps = calloc(1, sizeof(*ps));
    if (ps == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ps->base.ops = &pipe_ops;
    ps->fd = fd;
    return &ps->base;
}

/* ---- staging folders ------------------------------------------------------------ */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path)
{
    if (path != NULL && path[0] != '\0')
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A private folder (0700) for staging: <tmpdir>/walkeep-dump.XXXXXX. */
static int make_stage(const char *tmpdir, char *buf, size_t size, wk_error *err)
{
    const char *parent = tmpdir;
    if (parent == NULL || parent[0] == '\0')
        parent = getenv("TMPDIR");
    if (parent == NULL || parent[0] == '\0')
        parent = "/tmp";
    if ((size_t)snprintf(buf, size, "%s/walkeep-dump.XXXXXX", parent) >= size)
        return wk_error_set(err, WK_ERR_CONFIG, "temporary folder path \"%s\" is too long", parent);
    if (mkdtemp(buf) == NULL) {
        int e = errno;
        buf[0] = '\0';
        return wk_error_sys(err, WK_ERR_IO, e, "could not create a staging folder in \"%s\"",
                            parent);
    }
    return 0;
}

/* ---- the server ----------------------------------------------------------------- */

/* Asks the server for its version and the identity a repository records. *have_identity
 * is false when the role may not read pg_control_system(). */
static int server_facts(const char *conn, const char *password, char *version, size_t vsize,
                        wk_repo_meta *identity, bool *have_identity, wk_error *err)
{
    wk_pg_target target = {.conninfo = conn, .password = password, .application = "walkeep-dump"};
    PGresult *res;
    *have_identity = false;
    PGconn *pg = wk_pg_connect(&target, err);
    if (pg == NULL)
        return -1;
    const char *v = PQparameterStatus(pg, "server_version");
    snprintf(version, vsize, "%s", v != NULL ? v : "");
    memset(identity, 0, sizeof(*identity));
    identity->pg_version = wk_pg_major_of_num(PQserverVersion(pg));
    res = PQexec(pg, "SELECT system_identifier, "
                     "(SELECT setting FROM pg_catalog.pg_settings WHERE name = 'wal_segment_size') "
                     "FROM pg_catalog.pg_control_system()");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
        !PQgetisnull(res, 0, 1)) {
        identity->system_identifier = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        identity->seg_size = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
        *have_identity = true;
    }
    PQclear(res);
    PQfinish(pg);
    return 0;
}

/* Before anything is stored: the server is a PostgreSQL walkeep supports, and the
 * program that will dump it is not older (pg_dump and pg_dumpall refuse a server of a
 * newer major, by design, after a connection and with a message that names no setting). */
static int check_versions(const wk_dump_create_options *opt, const char *conn, const char *password,
                          wk_error *err)
{
    const char *name = opt->format == WK_DUMP_GLOBALS ? "pg_dumpall" : "pg_dump";
    char server_version[64], version[64], where[4200];
    wk_repo_meta identity;
    bool have_identity;
    int major;
    if (server_facts(conn, password, server_version, sizeof(server_version), &identity,
                     &have_identity, err) != 0 ||
        wk_pg_major_check(identity.pg_version, "the server", err) != 0 ||
        wk_pg_program_version(opt->bindir, name, version, sizeof(version), &major, err) != 0)
        return -1;
    if (major >= identity.pg_version)
        return 0;
    wk_pg_bindir_describe(where, sizeof(where), opt->bindir);
    wk_error_set(err, WK_ERR_CONFIG,
                 "%s %s (pg_bindir %s) cannot dump the server's PostgreSQL %s: it refuses a "
                 "newer server",
                 name, version, where, server_version);
    wk_error_hint(err, "set \"pg_bindir\" to the bin folder of PostgreSQL %d or later",
                  identity.pg_version);
    return -1;
}

static int add_name(char ***names, size_t *count, const char *name, size_t len, wk_error *err)
{
    char **grown = realloc(*names, (*count + 1) * sizeof(*grown));
    if (grown == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    *names = grown;
    grown[*count] = strndup(name, len);
    if (grown[*count] == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    (*count)++;
    return 0;
}

void wk_dump_names_free(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

int wk_dump_database_names(const char *conninfo, const char *list, char ***names, size_t *count,
                           wk_error *err)
{
    *names = NULL;
    *count = 0;
    if (list != NULL) {
        for (const char *p = list; *p != '\0';) {
            size_t skip = strspn(p, ", \t"), len = strcspn(p + skip, ", \t");
            p += skip;
            bool seen = false;
            for (size_t i = 0; i < *count && !seen; i++)
                seen = strlen((*names)[i]) == len && strncmp((*names)[i], p, len) == 0;
            if (len > 0 && !seen && add_name(names, count, p, len, err) != 0)
                goto fail;
            p += len;
        }
        if (*count > 0)
            return 0;
        return wk_error_set(err, WK_ERR_CONFIG, "\"dump_databases\" names no database");
    }
    wk_pg_target target = {.conninfo = conninfo, .application = "walkeep-dump"};
    PGconn *pg = wk_pg_connect(&target, err);
    if (pg == NULL)
        return -1;
    /* Not the ones pg_dumpall leaves out either: invalid databases (datconnlimit -2, left
     * by an interrupted DROP DATABASE) and those the role may not connect to. */
    PGresult *res = PQexec(pg, "SELECT datname FROM pg_catalog.pg_database "
                               "WHERE datallowconn AND NOT datistemplate AND datconnlimit <> -2 "
                               "AND has_database_privilege(oid, 'CONNECT') ORDER BY datname");
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = wk_pg_error(err, WK_ERR_IO, "could not list the databases", PQresultErrorMessage(res));
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = add_name(names, count, PQgetvalue(res, i, 0), strlen(PQgetvalue(res, i, 0)), err);
    PQclear(res);
    PQfinish(pg);
    if (rc == 0)
        return 0;
fail:
    wk_dump_names_free(*names, *count);
    *names = NULL;
    *count = 0;
    return -1;
}

/* ---- progress ------------------------------------------------------------------- */

/* ---- create ----------------------------------------------------------------------- */

static int add_stream(wk_dump_record *r, const wk_dump_stream *s, wk_error *err)
{
    wk_dump_stream *grown = realloc(r->streams, (r->stream_count + 1) * sizeof(*grown));
    if (grown == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    r->streams = grown;
    r->streams[r->stream_count++] = *s;
    r->bytes += s->bytes;
    r->stored_bytes += s->stored_bytes;
    return 0;
}

/* Stores everything readable from fd as one stream; the object is committed only when
 * commit is called (below) so that a failed producer leaves nothing. */
typedef struct pending_stream {
    wk_dump_stream s;
    wk_stream_summary summary;
    wk_stage *sink;
} pending_stream;

static int pending_open(wk_repo *repo, const wk_dump_record *r, const char *name,
                        const char *subdir, wk_progress *pr, pending_stream *p, wk_error *err)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->s.name, sizeof(p->s.name), "%s", name);
    if ((size_t)snprintf(p->s.object, sizeof(p->s.object), "dumps/%s/%s%s%s", r->label, subdir,
                         name, repo->suffix) >= sizeof(p->s.object))
        return wk_error_set(err, WK_ERR_INTERNAL, "object name too long");
    if (wk_repo_put_open(repo, p->s.object, WK_PUT_NOREPLACE, NULL, &p->summary, &p->s.stored_bytes,
                         &p->sink, err) != 0)
        return -1;
    p->sink = wk_stage_progress_new(p->sink, pr, err);
    return p->sink != NULL ? 0 : -1;
}

static int pending_commit(pending_stream *p, wk_dump_record *r, wk_error *err)
{
    int rc = wk_stage_finish(p->sink, err);
    wk_stage_free(p->sink);
    p->sink = NULL;
    if (rc != 0)
        return wk_error_prefix(err, "could not store \"%s\"", p->s.object);
    p->s.bytes = p->summary.bytes;
    p->s.fingerprint = p->summary.fingerprint;
    return add_stream(r, &p->s, err);
}

/* plain, custom, globals: the program writes to a pipe that is pumped into the object. */
static int create_streamed(wk_repo *repo, const wk_dump_argv *argv, const char *password,
                           wk_progress *pr, wk_dump_record *r, wk_error *err)
{
    pending_stream p;
    int fds[2] = {-1, -1}, null_in = -1;
    pid_t pid = -1;
    int rc = -1;
    if (pending_open(repo, r, single_stream_name(r->format), "", pr, &p, err) != 0)
        return -1;
    null_in = open_null(O_RDONLY, err);
    if (null_in < 0)
        goto out;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        wk_error_sys(err, WK_ERR_IO, errno, "could not create a pipe");
        goto out;
    }
    if (spawn(argv, password, null_in, fds[1], &pid, err) != 0)
        goto out;
    close(fds[1]);
    fds[1] = -1;
    if (wk_stream_pump_fd(fds[0], p.sink, NULL, err) != 0) {
        wk_proc_stop(pid);
        wk_error_prefix(err, "could not store the output of %s", program_name(argv));
        goto out;
    }
    if (wk_proc_wait(pid, program_name(argv), err) != 0)
        goto out;
    if (pending_commit(&p, r, err) != 0)
        goto out;
    rc = 0;
out:
    wk_stage_free(p.sink);
    if (null_in >= 0)
        close(null_in);
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    return rc;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Stores every file of a finished pg_dump -Fd folder as dumps/<label>/dir/<file>, in
 * name order. */
static int store_folder(wk_repo *repo, const char *folder, wk_progress *pr, wk_dump_record *r,
                        wk_error *err)
{
    DIR *d = opendir(folder);
    char **names = NULL;
    size_t count = 0;
    int rc = -1;
    if (d == NULL)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not open folder \"%s\"", folder);
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                wk_error_sys(err, WK_ERR_IO, errno, "could not read folder \"%s\"", folder);
                goto out;
            }
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (!valid_file_name(de->d_name)) {
            wk_error_set(err, WK_ERR_IO, "unexpected file \"%s\" in the output of pg_dump",
                         de->d_name);
            goto out;
        }
        char **grown = realloc(names, (count + 1) * sizeof(*names));
        if (grown == NULL) {
            wk_error_set(err, WK_ERR_NOMEM, "out of memory");
            goto out;
        }
        names = grown;
        names[count] = strdup(de->d_name);
        if (names[count] == NULL) {
            wk_error_set(err, WK_ERR_NOMEM, "out of memory");
            goto out;
        }
        count++;
    }
    if (count > 1)
        qsort(names, count, sizeof(*names), compare_names);
    for (size_t i = 0; i < count; i++) {
        pending_stream p;
        char path[4096];
        struct stat sb;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", folder, names[i]) >= sizeof(path)) {
            wk_error_set(err, WK_ERR_IO, "path \"%s/%s\" is too long", folder, names[i]);
            goto out;
        }
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            wk_error_sys(err, WK_ERR_IO, errno, "could not open \"%s\"", path);
            goto out;
        }
        if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            close(fd);
            wk_error_set(err, WK_ERR_IO, "\"%s\" is not a regular file", path);
            goto out;
        }
        int step = pending_open(repo, r, names[i], "dir/", pr, &p, err);
        if (step == 0)
            step = wk_stream_pump_fd(fd, p.sink, NULL, err);
        if (step == 0)
            step = pending_commit(&p, r, err);
        wk_stage_free(p.sink);
        close(fd);
        if (step != 0)
            goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

static int create_directory(wk_repo *repo, const wk_dump_create_options *opt, const char *conn,
                            const char *password, wk_progress *pr, wk_dump_record *r, wk_error *err)
{
    char stage[4096], outdir[4200];
    wk_dump_argv argv = {0};
    int null_fd = -1;
    pid_t pid;
    int rc = -1;
    if (make_stage(opt->tmpdir, stage, sizeof(stage), err) != 0)
        return -1;
    snprintf(outdir, sizeof(outdir), "%s/dump", stage);
    if (wk_dump_create_argv(opt, conn, outdir, &argv, err) != 0)
        goto out;
    null_fd = open_null(O_RDWR, err);
    if (null_fd < 0)
        goto out;
    if (spawn(&argv, password, null_fd, null_fd, &pid, err) != 0 ||
        wk_proc_wait(pid, program_name(&argv), err) != 0 ||
        store_folder(repo, outdir, pr, r, err) != 0)
        goto out;
    rc = 0;
out:
    if (null_fd >= 0)
        close(null_fd);
    wk_dump_argv_free(&argv);
    remove_tree(stage);
    return rc;
}

/* Removes every object a failed create stored, and its folders. */
static void remove_stored(wk_repo *repo, const wk_dump_record *r)
{
    wk_error ignored = {0};
    char dir[256];
    for (size_t i = 0; i < r->stream_count; i++)
        wk_storage_remove(repo->storage, r->streams[i].object, &ignored);
    snprintf(dir, sizeof(dir), "dumps/%s/dir", r->label);
    wk_storage_remove(repo->storage, dir, &ignored);
    snprintf(dir, sizeof(dir), "dumps/%s", r->label);
    wk_storage_remove(repo->storage, dir, &ignored);
}

/* The default label: the start time and the database, made a valid label. */
static void default_label(const wk_dump_record *r, char *buf, size_t size)
{
    struct tm tm;
    char stamp[32];
    gmtime_r(&r->start_time, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    /* A long database name is cut to fit the label. */
    if ((size_t)snprintf(buf, size, "%s-%s", stamp,
                         r->format == WK_DUMP_GLOBALS ? "globals" : r->database) >= size)
        buf[size - 1] = '\0';
    for (char *p = buf; *p != '\0'; p++)
        if (!label_char(*p))
            *p = '_';
}

/* Checks the key against the repository's metadata, initialising the repository from the
 * server's identity when it has none. */
static int prepare_repo(wk_repo *repo, const char *conn, const char *password, wk_repo_meta *meta,
                        wk_error *err)
{
    if (wk_repo_read_meta(repo, meta, err) == 0)
        return wk_repo_check_key(repo, meta, err);
    if (err->code != WK_ERR_NOTFOUND)
        return -1;
    char version[64];
    wk_repo_meta identity;
    bool have_identity;
    if (server_facts(conn, password, version, sizeof(version), &identity, &have_identity, err) != 0)
        return -1;
    if (!have_identity) {
        wk_error_set(err, WK_ERR_NOTFOUND, "repository \"%s\" is not initialized", repo->location);
        wk_error_hint(err, "run \"walkeep init\" first");
        return -1;
    }
    return wk_repo_open_meta(repo, &identity, meta, NULL, err);
}

int wk_dump_create(wk_repo *repo, const wk_dump_create_options *opt, wk_dump_record *out,
                   wk_error *err)
{
    wk_dump_record r = {0};
    wk_dump_argv argv = {0};
    wk_repo_meta meta, identity;
    wk_progress progress = {.fn = opt->progress, .arg = opt->progress_arg};
    char *conn = NULL, *password = NULL, *db = NULL, path[256];
    bool stored = false, have_identity;
    size_t inside = 0;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (opt->jobs > 1 && opt->format != WK_DUMP_DIRECTORY)
        return wk_error_set(err, WK_ERR_USAGE, "--jobs needs --format=directory");
    r.start_time = time(NULL);
    r.format = opt->format;
    r.compress = repo->compress;
    r.encrypted = repo->key != NULL;
    conn = wk_dump_conninfo(opt->conninfo, opt->dbname, &password, err);
    if (conn == NULL)
        goto out;
    db = wk_dump_conninfo_dbname(conn, err);
    if (db == NULL)
        goto out;
    if (strlen(db) >= sizeof(r.database)) {
        wk_error_set(err, WK_ERR_USAGE, "database name \"%.80s\" is too long", db);
        goto out;
    }
    snprintf(r.database, sizeof(r.database), "%s", db);
    if (opt->label != NULL)
        snprintf(r.label, sizeof(r.label), "%s", opt->label);
    else
        default_label(&r, r.label, sizeof(r.label));
    if (wk_dump_check_label(opt->label != NULL ? opt->label : r.label, err) != 0)
        goto out;
    if (check_versions(opt, conn, password, err) != 0 ||
        prepare_repo(repo, conn, password, &meta, err) != 0)
        goto out;
    /* A folder of that name holds another dump, or what an interrupted one left. A
     * default label taken in the same second (two databases whose names map to one label)
     * gets a suffix instead: -2 to -9. */
    char base[WK_DUMP_LABEL_MAX - 2];
    snprintf(base, sizeof(base), "%.*s", (int)sizeof(base) - 1, r.label);
    for (int suffix = 2;; suffix++) {
        snprintf(path, sizeof(path), "dumps/%s", r.label);
        inside = 0;
        if (wk_storage_list(repo->storage, path, "", count_entry, &inside, err) != 0)
            goto out;
        if (inside == 0)
            break;
        if (opt->label != NULL || suffix > 9) {
            wk_error_set(err, WK_ERR_EXISTS, "dump \"%s\" already exists", r.label);
            goto out;
        }
        snprintf(r.label, sizeof(r.label), "%s-%d", base, suffix);
    }
    stored = true; /* from here on, a failure removes what was stored */
    if (r.format == WK_DUMP_DIRECTORY) {
        if (create_directory(repo, opt, conn, password, &progress, &r, err) != 0)
            goto out;
    } else {
        if (wk_dump_create_argv(opt, conn, NULL, &argv, err) != 0 ||
            create_streamed(repo, &argv, password, &progress, &r, err) != 0)
            goto out;
    }
    if (server_facts(conn, password, r.server_version, sizeof(r.server_version), &identity,
                     &have_identity, err) != 0)
        goto out;
    if (have_identity && wk_repo_check_identity(&meta, &identity, err) != 0)
        goto out;
    r.end_time = time(NULL);
    if (wk_dump_record_write(repo, &r, err) != 0) {
        wk_error_prefix(err, "could not record dump \"%s\"", r.label);
        goto out;
    }
    *out = r;
    memset(&r, 0, sizeof(r));
    rc = 0;
out:
    if (rc != 0 && stored)
        remove_stored(repo, &r);
    wk_dump_record_free(&r);
    wk_dump_argv_free(&argv);
    if (password != NULL) {
        explicit_bzero(password, strlen(password));
        free(password);
    }
    free(conn);
    free(db);
    return rc;
}

/* ---- reading a dump back -------------------------------------------------------- */

/* Streams one object, decoded and checked against its fingerprint, into dest (owned);
 * *bytes counts the plaintext, which is reported to pr (may be NULL) as it passes. */
static int decode_stream(wk_repo *repo, const wk_dump_record *r, const wk_dump_stream *s,
                         wk_stage *dest, wk_progress *pr, uint64_t *bytes, wk_error *err)
{
    wk_stage *chain = wk_stage_count_new(dest, bytes, err);
    int rc = -1;
    *bytes = 0;
    chain = wk_stage_progress_new(chain, pr, err);
    if (chain != NULL)
        chain = wk_repo_decoder_new(repo, s->object, r->compress, &s->fingerprint, chain, err);
    if (chain == NULL)
        return -1;
    if (wk_storage_get(repo->storage, s->object, chain, err) != 0 ||
        wk_stage_finish(chain, err) != 0) {
        if (err->code == WK_ERR_NOTFOUND)
            err->code = WK_ERR_CORRUPT;
        wk_error_prefix(err, "could not read \"%s\"", s->object);
        goto out;
    }
    if (*bytes != s->bytes) {
        wk_error_set(err, WK_ERR_CORRUPT, "\"%s\" holds %llu bytes, its record says %llu",
                     s->object, (unsigned long long)*bytes, (unsigned long long)s->bytes);
        goto out;
    }
    rc = 0;
out:
    wk_stage_free(chain);
    return rc;
}

/* Writes the decoded stream to a new file (0600). */
static int decode_to_file(wk_repo *repo, const wk_dump_record *r, const wk_dump_stream *s,
                          const char *path, wk_progress *pr, wk_error *err)
{
    uint64_t bytes;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not create \"%s\"", path);
    wk_stage *sink = wk_stage_fd_new(fd, err);
    int rc = sink != NULL ? decode_stream(repo, r, s, sink, pr, &bytes, err) : -1;
    if (close(fd) != 0 && rc == 0)
        rc = wk_error_sys(err, WK_ERR_IO, errno, "could not write \"%s\"", path);
    return rc;
}

/* Stages a dump for pg_restore: the custom file, or the directory dump's folder. */
static int materialize(wk_repo *repo, const wk_dump_record *r, const char *stage, char *path,
                       size_t size, wk_progress *pr, wk_error *err)
{
    if (r->format == WK_DUMP_CUSTOM) {
        snprintf(path, size, "%s/dump.custom", stage);
        return decode_to_file(repo, r, &r->streams[0], path, pr, err);
    }
    snprintf(path, size, "%s/dump", stage);
    if (mkdir(path, 0700) != 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not create \"%s\"", path);
    for (size_t i = 0; i < r->stream_count; i++) {
        char file[4400];
        snprintf(file, sizeof(file), "%s/%s", path, r->streams[i].name);
        if (decode_to_file(repo, r, &r->streams[i], file, pr, err) != 0)
            return -1;
    }
    return 0;
}

/* Runs argv with stdin fed from the stream (decoded and checked). A stream that fails
 * stops the program before its input ends, so it never acts on a whole bad input. */
static int feed_program(wk_repo *repo, const wk_dump_record *r, const wk_dump_stream *s,
                        const wk_dump_argv *argv, const char *password, wk_progress *pr,
                        wk_error *err)
{
    int fds[2] = {-1, -1}, null_out = -1;
    pid_t pid;
    uint64_t bytes;
    int rc = -1;
    null_out = open_null(O_WRONLY, err);
    if (null_out < 0)
        return -1;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        wk_error_sys(err, WK_ERR_IO, errno, "could not create a pipe");
        goto out;
    }
    if (spawn(argv, password, fds[0], null_out, &pid, err) != 0)
        goto out;
    close(fds[0]);
    fds[0] = -1;
    wk_stage *sink = pipe_stage_new(fds[1], err);
    if (sink == NULL || decode_stream(repo, r, s, sink, pr, &bytes, err) != 0) {
        wk_proc_stop(pid);
        goto out;
    }
    close(fds[1]);
    fds[1] = -1;
    if (wk_proc_wait(pid, program_name(argv), err) != 0)
        goto out;
    rc = 0;
out:
    close(null_out);
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    return rc;
}

static int run_program(const wk_dump_argv *argv, const char *password, wk_error *err)
{
    pid_t pid;
    int null_fd = open_null(O_RDWR, err);
    if (null_fd < 0)
        return -1;
    int rc = spawn(argv, password, null_fd, null_fd, &pid, err);
    close(null_fd);
    if (rc == 0)
        rc = wk_proc_wait(pid, program_name(argv), err);
    return rc;
}

/* Reads the record and checks the key, so a wrong key is said before any object is
 * read. */
static int open_dump(wk_repo *repo, const char *label, wk_dump_record *r, wk_error *err)
{
    wk_repo_meta meta;
    if (wk_dump_record_read(repo, label, r, err) != 0) {
        if (err->code == WK_ERR_NOTFOUND) {
            wk_error_set(err, WK_ERR_NOTFOUND, "dump \"%s\" does not exist", label);
            wk_error_hint(err, "\"walkeep-dump list\" shows the dumps in the repository");
        }
        return -1;
    }
    if (wk_repo_read_meta(repo, &meta, err) != 0 || wk_repo_check_key(repo, &meta, err) != 0)
        return -1;
    /* Objects are decoded as the record says (its compress), whatever the configuration
     * says now; the configuration only has to hold the key. */
    return 0;
}

/* What restore --create does to a database. */
typedef enum db_action { DB_CREATE, DB_DROP, DB_RENAME } db_action;

/* Runs one statement about database name (and new_name, for DB_RENAME), quoted as
 * identifiers: CREATE DATABASE name TEMPLATE template0, DROP DATABASE IF EXISTS name,
 * ALTER DATABASE name RENAME TO new_name. */
static int database_statement(PGconn *pg, db_action action, const char *name, const char *new_name,
                              wk_error *err)
{
    static const char *const verbs[] = {"create", "drop", "rename"};
    char *quoted = PQescapeIdentifier(pg, name, strlen(name));
    char *quoted_new =
        action == DB_RENAME ? PQescapeIdentifier(pg, new_name, strlen(new_name)) : NULL;
    char *sql = NULL;
    int rc = 0;
    if (quoted == NULL || (action == DB_RENAME && quoted_new == NULL)) {
        rc = wk_pg_error(err, WK_ERR_USAGE, "invalid database name", PQerrorMessage(pg));
        goto out;
    }
    size_t size = strlen(quoted) + (quoted_new != NULL ? strlen(quoted_new) : 0) + 64;
    sql = malloc(size);
    if (sql == NULL) {
        rc = wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (action == DB_CREATE)
        snprintf(sql, size, "CREATE DATABASE %s TEMPLATE template0", quoted);
    else if (action == DB_DROP)
        snprintf(sql, size, "DROP DATABASE IF EXISTS %s", quoted);
    else
        snprintf(sql, size, "ALTER DATABASE %s RENAME TO %s", quoted, quoted_new);
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (action == DB_CREATE && state != NULL && strcmp(state, "42P04") == 0) {
            rc = wk_error_set(err, WK_ERR_EXISTS, "database \"%s\" already exists", name);
            wk_error_hint(err, "restore with --clean to replace it, or name a new database with "
                               "--dbname");
        } else {
            char what[300];
            snprintf(what, sizeof(what), "could not %s database \"%s\"", verbs[action], name);
            rc = wk_pg_error(err, WK_ERR_IO, what, PQresultErrorMessage(res));
        }
    }
    PQclear(res);
out:
    free(sql);
    PQfreemem(quoted);
    PQfreemem(quoted_new);
    return rc;
}

/* A connection for creating and dropping databases, to a maintenance database as
 * createdb's: postgres, else template1 (never pg_conninfo's own database, which may be
 * the one to replace, or gone). */
static PGconn *maintenance_connect(const wk_dump_restore_options *opt, wk_error *err)
{
    wk_pg_target target = {
        .conninfo = opt->conninfo, .dbname = "postgres", .application = "walkeep-dump"};
    PGconn *pg = wk_pg_connect(&target, err);
    if (pg != NULL)
        return pg;
    wk_error first = *err;
    target.dbname = "template1";
    pg = wk_pg_connect(&target, err);
    if (pg == NULL)
        *err = first;
    return pg;
}

/* One statement on its own maintenance connection. */
static int database_action(const wk_dump_restore_options *opt, db_action action, const char *name,
                           const char *new_name, wk_error *err)
{
    PGconn *pg = maintenance_connect(opt, err);
    if (pg == NULL)
        return -1;
    int rc = database_statement(pg, action, name, new_name, err);
    PQfinish(pg);
    return rc;
}

/* --create --clean, after the restore into temporary succeeded: the old database goes and
 * the restored one takes its name. *old_dropped says whether the old one is gone. */
static int replace_database(const wk_dump_restore_options *opt, const char *temporary,
                            const char *name, bool *old_dropped, wk_error *err)
{
    *old_dropped = false;
    PGconn *pg = maintenance_connect(opt, err);
    if (pg == NULL)
        return -1;
    int rc = database_statement(pg, DB_DROP, name, NULL, err);
    if (rc != 0) {
        wk_error_detail_append(err, "The database is as it was; the restored copy is dropped.");
        wk_error_hint(err, "disconnect every session from \"%s\" and restore again", name);
    } else {
        *old_dropped = true;
        rc = database_statement(pg, DB_RENAME, temporary, name, err);
    }
    PQfinish(pg);
    return rc;
}

/* Feeds the dump to psql / pg_restore connected with conn. */
static int run_restore(wk_repo *repo, const wk_dump_record *r, const wk_dump_restore_options *opt,
                       const char *conn, const char *password, wk_progress *progress, char *stage,
                       size_t stage_size, wk_error *err)
{
    wk_dump_argv argv = {0};
    char path[4200];
    int rc;
    if (wk_dump_restore_stages(r->format, opt->jobs))
        rc = make_stage(opt->tmpdir, stage, stage_size, err) != 0 ||
                     materialize(repo, r, stage, path, sizeof(path), progress, err) != 0 ||
                     wk_dump_restore_argv(r, opt, conn, WK_DUMP_INPUT_PATH, path, false, &argv,
                                          err) != 0 ||
                     run_program(&argv, password, err) != 0
                 ? -1
                 : 0;
    else
        rc =
            wk_dump_restore_argv(r, opt, conn, WK_DUMP_INPUT_STDIN, NULL, false, &argv, err) != 0 ||
                    feed_program(repo, r, &r->streams[0], &argv, password, progress, err) != 0
                ? -1
                : 0;
    wk_dump_argv_free(&argv);
    return rc;
}

int wk_dump_restore(wk_repo *repo, const char *label, const wk_dump_restore_options *opt,
                    wk_error *err)
{
    wk_dump_record r = {0};
    char *conn = NULL, *password = NULL;
    char stage[4096] = "", temporary[64] = "";
    const char *created = NULL; /* the database this restore created, while it may go */
    bool old_dropped = false;
    wk_progress progress = {.fn = opt->progress, .arg = opt->progress_arg};
    int rc = -1;
    if (open_dump(repo, label, &r, err) != 0)
        goto out;
    progress.total = r.bytes;
    if (wk_dump_restore_check(r.format, opt, err) != 0)
        goto out;
    const char *dbname = wk_dump_restore_dbname(&r, opt), *into = dbname;
    if (wk_dump_restore_creates(r.format, opt)) {
        /* --clean: restored under a temporary name first, so that the old database goes
         * only once its replacement is whole. */
        if (opt->clean) {
            snprintf(temporary, sizeof(temporary), "walkeep_restore_%ld_%lld", (long)getpid(),
                     (long long)time(NULL));
            into = temporary;
        }
        if (database_action(opt, DB_CREATE, into, NULL, err) != 0)
            goto out;
        created = into;
    }
    conn = wk_dump_conninfo(opt->conninfo, into, &password, err);
    if (conn == NULL ||
        run_restore(repo, &r, opt, conn, password, &progress, stage, sizeof(stage), err) != 0)
        goto out;
    if (temporary[0] != '\0' && replace_database(opt, temporary, dbname, &old_dropped, err) != 0) {
        if (old_dropped) { /* the restored copy is all there is now: it stays */
            created = NULL;
            wk_error_detail_append(err,
                                   "The old database is dropped; the restored copy is database "
                                   "\"%s\": rename it with ALTER DATABASE.",
                                   temporary);
        }
        goto out;
    }
    rc = 0;
out:
    if (rc != 0 && created != NULL &&
        database_action(opt, DB_DROP, created, NULL, &(wk_error){0}) != 0)
        wk_error_detail_append(err,
                               "The database \"%s\" created for the restore is left behind; "
                               "drop it before trying again.",
                               created);
    if (rc != 0 && r.label[0] != '\0')
        wk_error_prefix(err, "could not restore dump \"%s\"", r.label);
    if (stage[0] != '\0')
        remove_tree(stage);
    wk_dump_record_free(&r);
    if (password != NULL) {
        explicit_bzero(password, strlen(password));
        free(password);
    }
    free(conn);
    return rc;
}

/* ---- verify ----------------------------------------------------------------------- */

int wk_dump_verify(wk_repo *repo, const char *label, const wk_dump_restore_options *opt,
                   wk_dump_verify_result *out, wk_error *err)
{
    wk_dump_record r = {0};
    wk_dump_argv argv = {0};
    wk_dump_restore_options list_opt = {.bindir = opt->bindir, .tmpdir = opt->tmpdir};
    wk_dump_verify_result res = {0};
    char stage[4096] = "", path[4200];
    int rc = -1;
    if (open_dump(repo, label, &r, err) != 0)
        goto out;
    for (size_t i = 0; i < r.stream_count; i++) {
        wk_storage_info info;
        const wk_dump_stream *s = &r.streams[i];
        if (wk_storage_stat(repo->storage, s->object, &info, err) != 0) {
            if (err->code == WK_ERR_NOTFOUND)
                wk_error_set(err, WK_ERR_CORRUPT, "\"%s\" is missing", s->object);
            goto out;
        }
        if (info.size != s->stored_bytes) {
            wk_error_set(err, WK_ERR_CORRUPT, "\"%s\" holds %llu bytes, its record says %llu",
                         s->object, (unsigned long long)info.size,
                         (unsigned long long)s->stored_bytes);
            goto out;
        }
    }
    switch (r.format) {
    case WK_DUMP_PLAIN:
    case WK_DUMP_GLOBALS:
        for (size_t i = 0; i < r.stream_count; i++) {
            uint64_t bytes, ignored = 0;
            wk_stage *sink = wk_stage_count_new(NULL, &ignored, err);
            if (sink == NULL ||
                decode_stream(repo, &r, &r.streams[i], sink, NULL, &bytes, err) != 0)
                goto out;
        }
        break;
    case WK_DUMP_CUSTOM:
        if (wk_dump_restore_argv(&r, &list_opt, "", WK_DUMP_INPUT_STDIN, NULL, true, &argv, err) !=
                0 ||
            feed_program(repo, &r, &r.streams[0], &argv, NULL, NULL, err) != 0)
            goto out;
        res.listed = true;
        break;
    case WK_DUMP_DIRECTORY:
        if (make_stage(opt->tmpdir, stage, sizeof(stage), err) != 0 ||
            materialize(repo, &r, stage, path, sizeof(path), NULL, err) != 0 ||
            wk_dump_restore_argv(&r, &list_opt, "", WK_DUMP_INPUT_PATH, path, true, &argv, err) !=
                0 ||
            run_program(&argv, NULL, err) != 0)
            goto out;
        res.listed = true;
        break;
    }
    res.objects = r.stream_count;
    res.bytes = r.bytes;
    *out = res;
    rc = 0;
out:
    if (rc != 0 && r.label[0] != '\0')
        wk_error_prefix(err, "dump \"%s\" failed verification", r.label);
    if (stage[0] != '\0')
        remove_tree(stage);
    wk_dump_argv_free(&argv);
    wk_dump_record_free(&r);
    return rc;
}
