/* backup: base backups in the repository: taking one over the replication protocol (the
 * BASE_BACKUP command pg_basebackup sends), every archive streamed through the pipeline,
 * and the JSON record that makes a backup usable. */
#include "backup.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cluster.h"
#include "archive.h"
#include "file.h"
#include "json.h"
#include "log.h"
#include "pg.h"
#include "pgversion.h"
#include "readahead.h"
#include "record.h"

/* What a time zone name (TimeZone) is made of. */
#define ZONE_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-:<>."

/* How far ahead of the server the data files are read: enough to cover a disk's latency
 * at the server's speed, little enough not to push anything out of the page cache. */
#define READAHEAD_WINDOW (64u * 1024 * 1024)
/* How often the repository is asked for a backup's last WAL segment: one listing each
 * time; the archiver usually stores it a fraction of a second after the backup ends. */
#define STOP_SEGMENT_POLL_MS 50

void wk_backup_record_free(wk_backup_record *record)
{
    if (record == NULL)
        return;
    for (size_t i = 0; i < record->stream_count; i++)
        free(record->streams[i].location);
    free(record->streams);
    record->streams = NULL;
    record->stream_count = 0;
}

/* ---- times ---------------------------------------------------------------------- */

/* ---- the record ----------------------------------------------------------------- */

static void record_path(const char *label, char *buf, size_t size)
{
    snprintf(buf, size, "backups/%s/%s", label, WK_BACKUP_RECORD);
}

int wk_backup_record_write(wk_repo *repo, const wk_backup_record *r, wk_error *err)
{
    char lsn[32], tbuf[40], path[256];
    wk_json_writer *w = wk_json_writer_new();
    char *text = NULL;
    int rc = -1;
    if (w == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    wk_json_begin_object(w);
    wk_json_kv_int(w, "format", 1);
    wk_json_kv_string(w, "label", r->label);
    wk_json_kv_string(w, "status", "complete");
    wk_wal_format_lsn(lsn, sizeof(lsn), r->start_lsn);
    wk_json_kv_string(w, "start_lsn", lsn);
    wk_wal_format_lsn(lsn, sizeof(lsn), r->stop_lsn);
    wk_json_kv_string(w, "stop_lsn", lsn);
    wk_json_kv_uint(w, "start_timeline", r->start_tli);
    wk_json_kv_uint(w, "stop_timeline", r->stop_tli);
    wk_record_format_time(r->start_time, tbuf, sizeof(tbuf));
    wk_json_kv_string(w, "start_time", tbuf);
    wk_record_format_time(r->stop_time, tbuf, sizeof(tbuf));
    wk_json_kv_string(w, "stop_time", tbuf);
    if (r->timezone[0] != '\0')
        wk_json_kv_string(w, "timezone", r->timezone);
    if (r->from_standby)
        wk_json_kv_bool(w, "from_standby", true);
    wk_json_kv_int(w, "pg_version", r->pg_version);
    wk_json_kv_uint(w, "system_identifier", r->system_identifier);
    wk_json_kv_uint(w, "bytes", r->bytes);
    wk_json_kv_uint(w, "stored_bytes", r->stored_bytes);
    wk_json_kv_string(w, "compress", wk_compress_name(r->compress));
    wk_json_kv_bool(w, "encrypted", r->encrypted);
    wk_json_key(w, "streams");
    wk_json_begin_array(w);
    for (size_t i = 0; i < r->stream_count; i++) {
        const wk_backup_stream *s = &r->streams[i];
        wk_record_stream rs = {.name = s->name,
                               .object = s->object,
                               .has_tablespace = true,
                               .tablespace = s->tablespace,
                               .location = s->location,
                               .bytes = s->bytes,
                               .stored_bytes = s->stored_bytes,
                               .fingerprint = s->fingerprint};
        wk_record_stream_write(w, &rs);
    }
    wk_json_end_array(w);
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

static int get_lsn(const wk_json *obj, const char *key, wk_lsn *out, wk_error *err)
{
    const char *text;
    if (wk_json_get_string(obj, key, &text, err) != 0)
        return -1;
    if (wk_wal_parse_lsn(text, out) != 0)
        return wk_error_set(err, WK_ERR_CORRUPT, "invalid LSN in member \"%s\"", key);
    return 0;
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

static int get_u32(const wk_json *obj, const char *key, uint32_t *out, wk_error *err)
{
    uint64_t v;
    if (wk_json_get_uint(obj, key, &v, err) != 0)
        return -1;
    if (v > UINT32_MAX)
        return wk_error_set(err, WK_ERR_CORRUPT, "member \"%s\" out of range", key);
    *out = (uint32_t)v;
    return 0;
}

static int parse_stream(const wk_json *js, wk_backup_stream *s, wk_error *err)
{
    wk_record_stream rs;
    if (wk_record_stream_read(js, true, &rs, err) != 0)
        return -1;
    if (strlen(rs.name) >= sizeof(s->name) || strlen(rs.object) >= sizeof(s->object))
        return wk_error_set(err, WK_ERR_CORRUPT, "invalid stream \"%.64s\"", rs.name);
    snprintf(s->name, sizeof(s->name), "%s", rs.name);
    snprintf(s->object, sizeof(s->object), "%s", rs.object);
    s->tablespace = rs.tablespace;
    s->bytes = rs.bytes;
    s->stored_bytes = rs.stored_bytes;
    s->fingerprint = rs.fingerprint;
    if (rs.location != NULL) {
        s->location = strdup(rs.location);
        if (s->location == NULL)
            return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    }
    return 0;
}

int wk_backup_record_check(const wk_backup_record *r, const char *label, wk_error *err)
{
    char folder[WK_BACKUP_LABEL_MAX + 16];
    bool base = false;
    if (strcmp(r->label, label) != 0)
        return wk_error_set(err, WK_ERR_CORRUPT,
                            "the record names label \"%.64s\", not its folder's", r->label);
    if (r->stop_lsn < r->start_lsn || r->stop_tli < r->start_tli || r->stop_time < r->start_time)
        return wk_error_set(err, WK_ERR_CORRUPT, "the record stops before it starts");
    if (!wk_pg_major_supported(r->pg_version) || r->system_identifier == 0)
        return wk_error_set(err, WK_ERR_CORRUPT, "the record names PostgreSQL %d, system %" PRIu64,
                            r->pg_version, r->system_identifier);
    snprintf(folder, sizeof(folder), "backups/%s/", label);
    for (size_t i = 0; i < r->stream_count; i++) {
        const wk_backup_stream *s = &r->streams[i];
        if (strncmp(s->object, folder, strlen(folder)) != 0 ||
            strchr(s->object + strlen(folder), '/') != NULL)
            return wk_error_set(err, WK_ERR_CORRUPT,
                                "stream \"%.64s\" lies outside the backup's folder", s->name);
        if (s->tablespace == 0 && s->location != NULL)
            return wk_error_set(err, WK_ERR_CORRUPT,
                                "stream \"%.64s\" has a location but no tablespace", s->name);
        if (s->tablespace != 0 &&
            (s->location == NULL || s->location[0] != '/' || strstr(s->location, "/../") != NULL ||
             strcmp(s->location + strlen(s->location) - 3, "/..") == 0 ||
             strcmp(s->location, "/") == 0))
            return wk_error_set(err, WK_ERR_CORRUPT,
                                "tablespace stream \"%.64s\" has no absolute location of its own",
                                s->name);
        if (strcmp(s->name, "base.tar") == 0)
            base = true;
    }
    if (r->stream_count == 0 || !base)
        return wk_error_set(err, WK_ERR_CORRUPT, "the record names no base archive (base.tar)");
    return 0;
}

int wk_backup_record_read(wk_repo *repo, const char *label, wk_backup_record *out, wk_error *err)
{
    char path[256];
    uint8_t *text = NULL;
    size_t len = 0;
    wk_json *doc = NULL;
    wk_backup_record r = {0};
    const char *s;
    int rc = -1;
    record_path(label, path, sizeof(path));
    if (wk_repo_record_read(repo, path, &text, &len, err) != 0)
        goto out;
    if (wk_json_parse((const char *)text, len, &doc, err) != 0)
        goto bad;
    if (wk_json_get_string(doc, "label", &s, err) != 0)
        goto bad;
    snprintf(r.label, sizeof(r.label), "%s", s);
    if (get_lsn(doc, "start_lsn", &r.start_lsn, err) != 0 ||
        get_lsn(doc, "stop_lsn", &r.stop_lsn, err) != 0 ||
        get_u32(doc, "start_timeline", &r.start_tli, err) != 0 ||
        get_u32(doc, "stop_timeline", &r.stop_tli, err) != 0 ||
        get_time(doc, "start_time", &r.start_time, err) != 0 ||
        get_time(doc, "stop_time", &r.stop_time, err) != 0 ||
        wk_json_get_uint(doc, "system_identifier", &r.system_identifier, err) != 0 ||
        wk_json_get_uint(doc, "bytes", &r.bytes, err) != 0 ||
        wk_json_get_uint(doc, "stored_bytes", &r.stored_bytes, err) != 0 ||
        wk_json_get_bool(doc, "encrypted", &r.encrypted, err) != 0 ||
        wk_json_get_string(doc, "compress", &s, err) != 0)
        goto bad;
    if (wk_compress_parse(s, &r.compress) != 0) {
        wk_error_set(err, WK_ERR_CORRUPT, "unknown compression \"%.32s\"", s);
        goto bad;
    }
    int64_t version;
    if (wk_json_get_int(doc, "pg_version", &version, err) != 0)
        goto bad;
    r.pg_version = (int)version;
    const char *zone = wk_json_string_of(wk_json_get(doc, "timezone"));
    if (zone != NULL) {
        if (strlen(zone) >= sizeof(r.timezone) || strspn(zone, ZONE_CHARS) != strlen(zone)) {
            wk_error_set(err, WK_ERR_CORRUPT, "invalid member \"timezone\"");
            goto bad;
        }
        snprintf(r.timezone, sizeof(r.timezone), "%s", zone);
    }
    if (wk_json_get(doc, "from_standby") != NULL &&
        wk_json_get_bool(doc, "from_standby", &r.from_standby, err) != 0)
        goto bad;
    const wk_json *streams = wk_json_get(doc, "streams");
    if (streams == NULL || wk_json_type_of(streams) != WK_JSON_ARRAY) {
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
        if (parse_stream(wk_json_at(streams, i), &r.streams[i], err) != 0)
            goto bad;
    *out = r;
    memset(&r, 0, sizeof(r));
    rc = 0;
    goto out;
bad:
    wk_error_prefix(err, "invalid backup record \"%s\"", path);
out:
    wk_backup_record_free(&r);
    wk_json_free(doc);
    free(text);
    return rc;
}

/* ---- listing -------------------------------------------------------------------- */

static int compare_entries(const void *a, const void *b)
{
    const wk_backup_entry *x = a, *y = b;
    if (x->has_record != y->has_record)
        return x->has_record ? -1 : 1;
    if (x->has_record && x->record.start_lsn != y->record.start_lsn)
        return x->record.start_lsn < y->record.start_lsn ? -1 : 1;
    return strcmp(x->label, y->label);
}

/* True when the segment holding the last byte before stop_lsn is archived. */
/* Whether the segments at both ends of the backup's WAL are in the repository: the stop
 * segment (the backup is usable once it arrives), and the start segment (a backup of a
 * lagging standby starts at its restartpoint, which may lie before WAL already expired). */
static bool stop_segment_archived(wk_repo *repo, const wk_backup_record *r, uint32_t seg_size)
{
    char name[WK_WAL_NAME_LEN + 1];
    wk_wal_object obj;
    wk_error err = {0};
    wk_wal_segment_name(name, r->stop_tli, wk_wal_lsn_to_segno(r->stop_lsn - 1, seg_size),
                        seg_size);
    if (wk_archive_find(repo, name, &obj, &err) != 0)
        return false;
    if (!r->from_standby)
        return true; /* a primary's backup starts at its own checkpoint, archived before */
    wk_wal_segment_name(name, r->start_tli, wk_wal_lsn_to_segno(r->start_lsn, seg_size), seg_size);
    return wk_archive_find(repo, name, &obj, &err) == 0;
}

int wk_backup_list(wk_repo *repo, wk_backup_entry **out, size_t *count, wk_error *err)
{
    char(*labels)[WK_LABEL_MAX] = NULL;
    size_t label_count = 0;
    wk_backup_entry *entries = NULL;
    wk_repo_meta meta;
    int rc = -1;
    if (wk_repo_read_meta(repo, &meta, err) != 0)
        return -1;
    if (wk_repo_list_labels(repo, "backups", &labels, &label_count, err) != 0)
        goto out;
    entries = calloc(label_count + 1, sizeof(*entries));
    if (entries == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < label_count; i++) {
        wk_backup_entry *e = &entries[i];
        snprintf(e->label, sizeof(e->label), "%s", labels[i]);
        if (wk_backup_record_read(repo, e->label, &e->record, err) == 0) {
            e->has_record = true;
            e->wal_ready = stop_segment_archived(repo, &e->record, meta.seg_size);
        } else if (err->code != WK_ERR_NOTFOUND) {
            wk_backup_list_free(entries, label_count);
            entries = NULL;
            goto out;
        }
    }
    if (label_count > 1)
        qsort(entries, label_count, sizeof(*entries), compare_entries);
    *out = entries;
    *count = label_count;
    rc = 0;
out:
    free(labels);
    return rc;
}

void wk_backup_list_free(wk_backup_entry *entries, size_t count)
{
    if (entries == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        wk_backup_record_free(&entries[i].record);
    free(entries);
}

/* ---- taking a backup ------------------------------------------------------------ */

/* Reads a one-row (recptr, tli) result. */
static int read_position(PGresult *res, wk_lsn *lsn, uint32_t *tli, const char *what, wk_error *err)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) < 2 ||
        wk_wal_parse_lsn(PQgetvalue(res, 0, 0), lsn) != 0)
        return wk_error_set(err, WK_ERR_IO, "unexpected %s position from the server", what);
    *tli = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
    return 0;
}

typedef struct take_state {
    wk_repo *repo;
    wk_backup_record *record;
    wk_stage *sink; /* the stream being received, NULL between streams */
    wk_stream_summary summary;
    wk_backup_stream *current;
    PGresult *tablespaces;
    wk_readahead *readahead; /* NULL when the data directory is not read ahead */
} take_state;

/* Commits the stream being received, if any, and records what it held. */
static int end_stream(take_state *ts, wk_error *err)
{
    if (ts->sink == NULL)
        return 0;
    int rc = wk_stage_finish(ts->sink, err);
    wk_stage_free(ts->sink);
    ts->sink = NULL;
    if (rc != 0)
        return wk_error_prefix(err, "could not store \"%s\"", ts->current->object);
    ts->current->bytes = ts->summary.bytes;
    ts->current->fingerprint = ts->summary.fingerprint;
    ts->record->bytes += ts->current->bytes;
    ts->record->stored_bytes += ts->current->stored_bytes;
    return 0;
}

static int begin_stream(take_state *ts, const char *name, const char *location, wk_error *err)
{
    wk_backup_record *r = ts->record;
    if (end_stream(ts, err) != 0)
        return -1;
    if (strlen(name) >= sizeof(r->streams[0].name) || strchr(name, '/') != NULL || name[0] == '.' ||
        name[0] == '\0')
        return wk_error_set(err, WK_ERR_IO, "unexpected archive name \"%.80s\" from the server",
                            name);
    wk_backup_stream *grown = realloc(r->streams, (r->stream_count + 1) * sizeof(*grown));
    if (grown == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    r->streams = grown;
    wk_backup_stream *s = &r->streams[r->stream_count++];
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->object, sizeof(s->object), "backups/%s/%s%s", r->label, name, ts->repo->suffix);
    if (location != NULL && location[0] != '\0') {
        s->location = strdup(location);
        if (s->location == NULL)
            return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        s->tablespace = (uint32_t)strtoul(name, NULL, 10); /* "<oid>.tar" */
    }
    ts->current = s;
    return wk_repo_put_open(ts->repo, s->object, WK_PUT_NOREPLACE, NULL, &ts->summary,
                            &s->stored_bytes, &ts->sink, err);
}

/* Receives the COPY stream of a BASE_BACKUP (TARGET 'client'): each CopyData message
 * starts with a type byte: 'n' new archive (name, tablespace location), 'd' data,
 * 'p' progress (bytes done), 'm' the manifest follows. */
static int receive_archives(PGconn *conn, take_state *ts, const wk_backup_options *opt,
                            uint64_t total, wk_error *err)
{
    uint64_t received = 0;
    for (;;) {
        char *buf = NULL;
        int len = PQgetCopyData(conn, &buf, 0);
        if (len == -1)
            break;
        if (len == -2)
            return wk_pg_error(err, WK_ERR_IO, "could not receive backup data",
                               PQerrorMessage(conn));
        int rc = 0;
        const uint8_t *msg = (const uint8_t *)buf;
        switch (len > 0 ? msg[0] : 0) {
        case 'n': {
            /* Two NUL-terminated strings: the archive's name and the tablespace folder. */
            const char *end = buf + len, *name = buf + 1;
            const char *name_end = memchr(name, '\0', (size_t)(end - name));
            const char *location = name_end != NULL ? name_end + 1 : end;
            if (location >= end || memchr(location, '\0', (size_t)(end - location)) == NULL)
                rc = wk_error_set(err, WK_ERR_IO, "malformed new-archive message from the server");
            else
                rc = begin_stream(ts, name, location, err);
            break;
        }
        case 'm':
            rc = begin_stream(ts, "backup_manifest", NULL, err);
            break;
        case 'd':
            if (ts->sink == NULL) {
                rc = wk_error_set(err, WK_ERR_IO, "backup data before any archive from the server");
            } else {
                rc = wk_stage_write(ts->sink, buf + 1, (size_t)len - 1, err);
                received += (uint64_t)len - 1;
                wk_readahead_progress(ts->readahead, received);
                if (rc == 0 && opt->progress != NULL)
                    opt->progress(received, total, opt->progress_arg);
            }
            break;
        case 'p':
            break; /* the server's own count of what it sent: we count what arrived */
        default:
            rc = wk_error_set(err, WK_ERR_IO, "unexpected message type 0x%02x in the backup stream",
                              len > 0 ? msg[0] : 0);
        }
        PQfreemem(buf);
        if (rc != 0)
            return -1;
    }
    return end_stream(ts, err);
}

/* The server reads each data file synchronously, one at a time; when the data directory
 * is on this machine, a thread reads the files just ahead of it, so it finds them in
 * the page cache. Only for the cluster's own directory: its pg_control starts with the
 * system identifier. Anything in the way only means no read-ahead. */
static void start_readahead(take_state *ts, const char *pgdata, uint64_t system_identifier)
{
    uint64_t id = 0;
    wk_error ignored = {0};
    if (pgdata == NULL || pgdata[0] == '\0')
        return;
    if (wk_cluster_control_identifier(pgdata, &id, &ignored) != 0 || id != system_identifier) {
        wk_notice(WK_LOG_DEBUG,
                  "not reading ahead: \"%s\" is not the data directory of system "
                  "%" PRIu64,
                  pgdata, system_identifier);
        return;
    }
    /* The tablespace rows come in the order the archives are sent; the data directory's
     * own row (no location) is last. */
    int rows = PQntuples(ts->tablespaces);
    const char **folders = calloc((size_t)rows + 1, sizeof(*folders));
    if (folders == NULL)
        return;
    size_t count = 0;
    for (int i = 0; i < rows; i++)
        if (!PQgetisnull(ts->tablespaces, i, 1) && PQgetvalue(ts->tablespaces, i, 1)[0] != '\0')
            folders[count++] = PQgetvalue(ts->tablespaces, i, 1);
    folders[count++] = pgdata;
    wk_error err = {0};
    if (wk_readahead_start(folders, count, READAHEAD_WINDOW, &ts->readahead, &err) != 0)
        wk_notice(WK_LOG_DEBUG, "not reading ahead: %s", err.message);
    else
        wk_notice(WK_LOG_DEBUG, "reading \"%s\" ahead of the server", pgdata);
    free(folders);
}

/* The server's TimeZone setting into zone ("" when it cannot be read or is not a name). */
static void server_timezone(PGconn *conn, char *zone, size_t size)
{
    zone[0] = '\0';
    PGresult *res = PQexec(conn, "SHOW timezone");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        const char *v = PQgetvalue(res, 0, 0);
        if (strlen(v) < size && strspn(v, ZONE_CHARS) == strlen(v))
            snprintf(zone, size, "%s", v);
    }
    PQclear(res);
}

/* The cluster's identity as the repository records it. */
static int identify(PGconn *conn, wk_repo_meta *identity, wk_error *err)
{
    memset(identity, 0, sizeof(*identity));
    identity->pg_version = wk_pg_major_of_num(PQserverVersion(conn));
    if (wk_pg_major_check(identity->pg_version, "the server", err) != 0)
        return -1;
    PGresult *res = PQexec(conn, "IDENTIFY_SYSTEM");
    int rc = -1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        wk_pg_error(err, WK_ERR_IO, "could not identify the system", PQerrorMessage(conn));
        goto out;
    }
    identity->system_identifier = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    res = PQexec(conn, "SHOW wal_segment_size");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        wk_pg_error(err, WK_ERR_IO, "could not read wal_segment_size", PQerrorMessage(conn));
        goto out;
    }
    /* SHOW prints "16MB" or "1GB". */
    char *end = NULL;
    unsigned long v = strtoul(PQgetvalue(res, 0, 0), &end, 10);
    identity->seg_size = (uint32_t)(strcmp(end, "GB") == 0 ? v << 30 : v << 20);
    rc = 0;
out:
    PQclear(res);
    return rc;
}

static int wait_for_stop_segment(wk_repo *repo, const wk_backup_record *r, uint32_t seg_size,
                                 int wait_ms, wk_error *err)
{
    for (int waited = 0;; waited += STOP_SEGMENT_POLL_MS) {
        if (stop_segment_archived(repo, r, seg_size))
            return 0;
        if (waited >= wait_ms)
            break;
        usleep(STOP_SEGMENT_POLL_MS * 1000);
    }
    char name[WK_WAL_NAME_LEN + 1];
    wk_wal_segment_name(name, r->stop_tli, wk_wal_lsn_to_segno(r->stop_lsn - 1, seg_size),
                        seg_size);
    wk_error_set(err, WK_ERR_NOTFOUND,
                 "WAL segment %s, which ends backup \"%s\", was not "
                 "archived within %d s",
                 name, r->label, wait_ms / 1000);
    if (r->from_standby) {
        wk_error_detail(err, "The backup was taken from a standby: the primary archives that "
                             "segment when it switches to the next one.");
        wk_error_hint(err, "run SELECT pg_switch_wal() on the primary, or set archive_timeout "
                           "there; the backup becomes usable once the segment is in the "
                           "repository");
    } else {
        wk_error_hint(err, "check archive_command and pg_stat_archiver; the backup becomes "
                           "usable once the segment is in the repository");
    }
    return -1;
}

/* Stores the history file of timeline tli, fetched with TIMELINE_HISTORY, through the
 * archive worker (a file of that name under a scratch folder). */
static int store_history(wk_repo *repo, PGconn *conn, uint32_t tli, wk_error *err)
{
    char query[64], dir[] = "/tmp/walkeep-history.XXXXXX", path[sizeof(dir) + 64];
    snprintf(query, sizeof(query), "TIMELINE_HISTORY %u", tli);
    PGresult *res = PQexec(conn, query);
    int rc = -1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 2) {
        wk_pg_error(err, WK_ERR_IO, "could not read the timeline history", PQerrorMessage(conn));
        PQclear(res);
        return -1;
    }
    const char *name = PQgetvalue(res, 0, 0);
    wk_wal_name parsed;
    size_t len = 0;
    unsigned char *content = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 1), &len);
    if (content == NULL || wk_wal_parse_name(name, &parsed, err) != 0 ||
        parsed.kind != WK_WAL_HISTORY || mkdtemp(dir) == NULL) {
        if (err->code == WK_ERR_NONE)
            wk_error_set(err, WK_ERR_IO, "could not keep the history of timeline %u", tli);
        goto out;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    wk_push_result pushed;
    if (wk_file_write(path, content, len, 0600, 0, err) == 0 &&
        wk_archive_push(repo, path, &pushed, err) == 0) {
        if (!pushed.already_archived)
            wk_notice(WK_LOG_INFO, "stored %s, which the repository lacked", name);
        rc = 0;
    }
    unlink(path);
    rmdir(dir);
out:
    PQfreemem(content);
    PQclear(res);
    return rc;
}

/* The repository holds the history of the backup's timeline and its ancestors' (recovery
 * needs it; a repository created after a failover or a restore never got it). */
static void store_histories(wk_repo *repo, PGconn *conn, uint32_t tli)
{
    for (; tli >= 2; tli--) {
        char name[32];
        wk_wal_object obj;
        wk_error err = {0};
        snprintf(name, sizeof(name), "%08X.history", tli);
        if (wk_archive_find(repo, name, &obj, &err) == 0)
            continue;
        wk_error_clear(&err);
        if (store_history(repo, conn, tli, &err) != 0)
            wk_notice(WK_LOG_WARNING, "could not store %s: %s", name, err.message);
    }
}

int wk_backup_take(wk_repo *repo, const wk_backup_options *opt, wk_backup_record *out,
                   wk_error *err)
{
    wk_backup_record r = {0};
    wk_repo_meta identity, meta;
    take_state ts = {.repo = repo, .record = &r};
    PGresult *res = NULL;
    char command[512];
    int rc = -1;

    memset(out, 0, sizeof(*out));
    r.start_time = time(NULL);
    if (opt->label != NULL) {
        /* Checked whole: a label too long is refused, never cut. */
        if (wk_repo_check_label("backup", opt->label, err) != 0)
            return -1;
        snprintf(r.label, sizeof(r.label), "%s", opt->label);
    } else {
        struct tm tm;
        gmtime_r(&r.start_time, &tm);
        strftime(r.label, sizeof(r.label), "%Y%m%dT%H%M%SZ", &tm);
    }
    if (wk_repo_check_label("backup", r.label, err) != 0)
        return -1;
    wk_pg_target target = {
        .conninfo = opt->conninfo, .application = "walkeep-basebackup", .replication = true};
    /* The session's TimeZone must be the server's own (recorded below), not PGTZ's. */
    unsetenv("PGTZ");
    PGconn *conn = wk_pg_connect(&target, err);
    if (conn == NULL)
        return -1;
    if (identify(conn, &identity, err) != 0 ||
        wk_repo_open_meta(repo, &identity, &meta, NULL, err) != 0)
        goto out;
    r.pg_version = identity.pg_version;
    r.system_identifier = identity.system_identifier;
    server_timezone(conn, r.timezone, sizeof(r.timezone));
    /* in_hot_standby: reported at connection start from PostgreSQL 14 on. */
    const char *standby = PQparameterStatus(conn, "in_hot_standby");
    r.from_standby = standby != NULL && strcmp(standby, "on") == 0;
    r.compress = repo->compress;
    r.encrypted = repo->key != NULL;

    /* A folder of that name means a backup (perhaps an interrupted one) already used it. */
    wk_storage_info info;
    char record[256];
    record_path(r.label, record, sizeof(record));
    if (wk_storage_stat(repo->storage, record, &info, err) == 0) {
        wk_error_set(err, WK_ERR_EXISTS, "backup \"%s\" already exists", r.label);
        goto out;
    }
    snprintf(command, sizeof(command),
             "BASE_BACKUP (LABEL 'walkeep %s', PROGRESS, CHECKPOINT '%s', WAIT false, "
             "MANIFEST 'yes', TABLESPACE_MAP, TARGET 'client')",
             r.label, opt->fast_checkpoint ? "fast" : "spread");
    if (!PQsendQuery(conn, command)) {
        wk_pg_error(err, WK_ERR_IO, "could not start the base backup", PQerrorMessage(conn));
        goto out;
    }
    res = PQgetResult(conn);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        wk_pg_error(err, WK_ERR_IO, "could not start the base backup", PQerrorMessage(conn));
        goto out;
    }
    if (read_position(res, &r.start_lsn, &r.start_tli, "start", err) != 0)
        goto out;
    PQclear(res);
    ts.tablespaces = PQgetResult(conn);
    res = NULL;
    if (PQresultStatus(ts.tablespaces) != PGRES_TUPLES_OK) {
        wk_pg_error(err, WK_ERR_IO, "could not read the tablespace list", PQerrorMessage(conn));
        goto out;
    }
    uint64_t total = 0;
    for (int i = 0; i < PQntuples(ts.tablespaces); i++)
        total += strtoull(PQgetvalue(ts.tablespaces, i, 2), NULL, 10) * 1024; /* kB */
    start_readahead(&ts, opt->pgdata, identity.system_identifier);
    res = PQgetResult(conn);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        wk_pg_error(err, WK_ERR_IO, "could not receive the base backup", PQerrorMessage(conn));
        goto out;
    }
    PQclear(res);
    res = NULL;
    if (receive_archives(conn, &ts, opt, total, err) != 0)
        goto out;
    res = PQgetResult(conn);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        wk_pg_error(err, WK_ERR_IO, "the base backup failed", PQerrorMessage(conn));
        goto out;
    }
    if (read_position(res, &r.stop_lsn, &r.stop_tli, "stop", err) != 0)
        goto out;
    /* A standby that follows a promotion during the backup ends it on the new timeline;
     * such a backup is no restore's start (recovery would need both timelines from its
     * start), so it is left unrecorded: an interrupted backup, removed by expire. */
    if (r.stop_tli != r.start_tli) {
        wk_error_set(err, WK_ERR_CONFLICT,
                     "the server switched from timeline %u to %u during backup \"%s\": it "
                     "is not recorded",
                     r.start_tli, r.stop_tli, r.label);
        wk_error_hint(err, "take the backup again");
        goto out;
    }
    PQclear(res);
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
            wk_pg_error(err, WK_ERR_IO, "the base backup failed", PQerrorMessage(conn));
            goto out;
        }
        PQclear(res);
    }
    r.stop_time = time(NULL);
    store_histories(repo, conn, r.stop_tli);
    if (wk_backup_record_write(repo, &r, err) != 0) {
        wk_error_prefix(err, "could not record backup \"%s\"", r.label);
        goto out;
    }
    *out = r;
    memset(&r, 0, sizeof(r));
    rc = wait_for_stop_segment(repo, out, meta.seg_size, opt->wait_archive_ms, err);
out:
    if (ts.readahead != NULL)
        wk_notice(WK_LOG_DEBUG, "read %" PRIu64 " bytes of the data directory ahead of the server",
                  wk_readahead_bytes(ts.readahead));
    wk_readahead_stop(ts.readahead);
    wk_stage_free(ts.sink);
    PQclear(ts.tablespaces);
    PQclear(res);
    PQfinish(conn);
    wk_backup_record_free(&r);
    return rc;
}
