/* storage_s3: the storage interface on an S3 bucket. An object is stored by one PUT (up to
 * part_size bytes) or by a multipart upload whose parts a pool of threads sends while the
 * writer fills the next part; either way nothing is visible until it is whole. Reads stream
 * and resume a broken transfer with a Range pinned to the first answer's ETag.
 *
 * Uploads of killed writers: right after CreateMultipartUpload the writer stores a small
 * hidden marker, <prefix>/.wk-uploads/<path>.<16 hex of sha256(uploadId)>, naming the key,
 * the upload and the writer (host, boot id, pid, process start time). clean_temporaries
 * aborts an upload whose writer is certainly gone (same host and boot, and that pid is
 * dead or now another process) or that nothing has touched for max_age seconds, and
 * removes markers left without an upload. All markers live under one hidden folder, so
 * finding stale ones is one prefix listing, never a walk over every object. */
#include "storage_s3.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "md5.h"
#include "s3_parts.h"
#include "s3xml.h"

/* Keys are at most 1024 bytes on S3; our buffers leave room for prefix and markers. */
#define KEY_MAX 2048
#define SHOWN_MAX (KEY_MAX + 320)
#define PREFIX_MAX 512
/* S3 allows at most this many keys in one multi-object delete. */
#define DELETE_BATCH 1000
/* Hidden folder (under the prefix) holding the markers of multipart uploads in progress. */
#define MARKER_DIR ".wk-uploads"
/* The single-PUT buffer starts this small and doubles up to part_size. */
#define BUF_INITIAL (64 * 1024)

/* ---- small helpers ---------------------------------------------------------------- */

typedef struct s3_storage {
    wk_storage base;
    wk_s3 *s3; /* the client of the calling thread; part workers clone it */
    char *bucket;
    char *prefix; /* "" or "a/b" */
    size_t part_size;
    int parallel;
    int retry_timeout_ms;
    int list_max_keys; /* WALKEEP_S3_LIST_MAX_KEYS (tests): 0 for the server's default */
} s3_storage;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* strlcpy: copies what fits of src, always NUL-terminated. */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int nomem(wk_error *err)
{
    return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
}

/* The key of a repository path (path "" is the prefix itself). */
static int key_of(const s3_storage *st, const char *path, char out[KEY_MAX], wk_error *err)
{
    int n;
    if (st->prefix[0] == '\0')
        n = snprintf(out, KEY_MAX, "%s", path);
    else if (path[0] == '\0')
        n = snprintf(out, KEY_MAX, "%s", st->prefix);
    else
        n = snprintf(out, KEY_MAX, "%s/%s", st->prefix, path);
    if (n < 0 || n >= KEY_MAX)
        return wk_error_set(err, WK_ERR_USAGE, "S3 key for \"%s\" is too long", path);
    return 0;
}

/* The key prefix of everything inside folder dir: "<prefix>/<dir>/", "<prefix>/" for
 * the root, "" for the root of a bucket without prefix. */
static int folder_key(const s3_storage *st, const char *dir, char out[KEY_MAX], wk_error *err)
{
    if (key_of(st, dir, out, err) != 0)
        return -1;
    size_t n = strlen(out);
    if (n == 0)
        return 0;
    if (n + 2 > KEY_MAX)
        return wk_error_set(err, WK_ERR_USAGE, "S3 key for \"%s\" is too long", dir);
    out[n] = '/';
    out[n + 1] = '\0';
    return 0;
}

/* The key of the marker folder for dir: "<prefix>/.wk-uploads/<dir>/". */
static int marker_folder_key(const s3_storage *st, const char *dir, char out[KEY_MAX],
                             wk_error *err)
{
    char rel[KEY_MAX];
    int n = snprintf(rel, sizeof(rel), "%s%s%s", MARKER_DIR, dir[0] != '\0' ? "/" : "", dir);
    if (n < 0 || (size_t)n >= sizeof(rel))
        return wk_error_set(err, WK_ERR_USAGE, "S3 key for \"%s\" is too long", dir);
    return folder_key(st, rel, out, err);
}

/* The marker of upload upload_id of the object at repository path rel. */
static int marker_key_of(const s3_storage *st, const char *rel, const char *upload_id,
                         char out[KEY_MAX], wk_error *err)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    char mrel[KEY_MAX];
    crypto_hash_sha256(h, (const unsigned char *)upload_id, strlen(upload_id));
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    hex[16] = '\0';
    int n = snprintf(mrel, sizeof(mrel), "%s/%s.%s", MARKER_DIR, rel, hex);
    if (n < 0 || (size_t)n >= sizeof(mrel))
        return wk_error_set(err, WK_ERR_USAGE, "S3 key for \"%s\" is too long", rel);
    return key_of(st, mrel, out, err);
}

/* The repository path of a key under the prefix (NULL when it is not under it). */
static const char *rel_of(const s3_storage *st, const char *key)
{
    size_t n = strlen(st->prefix);
    if (n == 0)
        return key;
    if (strncmp(key, st->prefix, n) != 0 || key[n] != '/')
        return NULL;
    return key + n + 1;
}

static void shown_of(const s3_storage *st, const char *key, char out[SHOWN_MAX])
{
    snprintf(out, SHOWN_MAX, "s3://%s/%s", st->bucket, key);
}

/* ---- requests used in several places ---------------------------------------------- */

/* HEAD of key: 0 with *size, or -1 (WK_ERR_NOTFOUND when absent). resp_etag (80 bytes,
 * may be NULL) gets the ETag. */
static int head_key(s3_storage *st, wk_s3 *c, const char *key, uint64_t *size, char *resp_etag,
                    const char *what, wk_error *err)
{
    wk_s3_request req = {.method = "HEAD", .key = key};
    wk_s3_response resp = {0};
    int rc = wk_s3_call(c, &req, &resp, what, err);
    (void)st;
    if (rc == 0) {
        if (!resp.has_length) {
            rc = wk_error_set(err, WK_ERR_IO, "%s: no Content-Length in the answer", what);
        } else {
            *size = resp.content_length;
            if (resp_etag != NULL)
                snprintf(resp_etag, 80, "%s", resp.etag);
        }
    }
    wk_s3_response_free(&resp);
    return rc;
}

/* Reads a small object whole into a malloc'd NUL-terminated string. */
static int get_small(wk_s3 *c, const char *key, char **out, const char *what, wk_error *err)
{
    wk_s3_request req = {.method = "GET", .key = key};
    wk_s3_response resp = {0};
    int rc = wk_s3_call(c, &req, &resp, what, err);
    if (rc == 0) {
        *out = strndup(resp.body != NULL ? resp.body : "", resp.body_len);
        if (*out == NULL)
            rc = nomem(err);
    }
    wk_s3_response_free(&resp);
    return rc;
}

static int delete_key(wk_s3 *c, const char *key, const char *what, wk_error *err)
{
    wk_s3_request req = {.method = "DELETE", .key = key};
    wk_s3_response resp = {0};
    int rc = wk_s3_call(c, &req, &resp, what, err);
    wk_s3_response_free(&resp);
    return rc;
}

/* AbortMultipartUpload; an upload that is already gone is success. */
static int abort_upload(wk_s3 *c, const char *key, const char *upload_id, const char *what,
                        wk_error *err)
{
    wk_s3_param params[] = {{"uploadId", upload_id}};
    wk_s3_request req = {.method = "DELETE", .key = key, .params = params, .param_count = 1};
    wk_s3_response resp = {0};
    int rc = 0;
    if (wk_s3_send(c, &req, &resp, err) != 0) {
        if (resp.status == 404 && strcmp(resp.error_code, "NoSuchUpload") == 0)
            wk_error_clear(err);
        else
            rc = wk_s3_send_failed(&resp, what, err);
    }
    wk_s3_response_free(&resp);
    return rc;
}

/* ---- writers' identity (markers) -------------------------------------------------- */

typedef struct writer_id {
    char host[256];
    char boot[64];
    long pid;
    unsigned long long start; /* field 22 of /proc/<pid>/stat */
} writer_id;

/* Start time of process pid (clock ticks after boot): 0, or -1 when there is no such
 * process (or it has exited and waits to be reaped: a zombie is no writer), -2 when it
 * cannot be told. */
static int proc_start_time(long pid, unsigned long long *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT ? -1 : -2;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (p == NULL)
        return -2;
    p++;
    while (*p == ' ')
        p++;
    if (*p == 'Z' || *p == 'X')
        return -1;
    /* Fields after the command: 3 (state) ... 22 (starttime). */
    for (int field = 3; field < 22; field++) {
        while (*p == ' ')
            p++;
        while (*p != ' ' && *p != '\0')
            p++;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (end == p || errno != 0)
        return -2;
    *out = v;
    return 0;
}

static void read_line_file(const char *path, char *out, size_t size)
{
    out[0] = '\0';
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return;
    if (fgets(out, (int)size, f) == NULL)
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
}

static void self_id(writer_id *id)
{
    memset(id, 0, sizeof(*id));
    if (gethostname(id->host, sizeof(id->host) - 1) != 0)
        id->host[0] = '\0';
    read_line_file("/proc/sys/kernel/random/boot_id", id->boot, sizeof(id->boot));
    id->pid = (long)getpid();
    if (proc_start_time(id->pid, &id->start) != 0)
        id->start = 0;
}

typedef enum writer_state { WRITER_UNKNOWN, WRITER_ALIVE, WRITER_GONE } writer_state;

/* Parses a marker's "name=value" lines (key, upload, host, boot, pid, start). */
static void parse_marker(const char *text, writer_id *id, char *upload, size_t upload_size)
{
    memset(id, 0, sizeof(*id));
    if (upload != NULL)
        upload[0] = '\0';
    for (const char *line = text; *line != '\0';) {
        size_t n = strcspn(line, "\n");
        const char *eq = memchr(line, '=', n);
        if (eq != NULL) {
            size_t klen = (size_t)(eq - line), vlen = n - klen - 1;
            char value[300];
            if (vlen >= sizeof(value))
                vlen = sizeof(value) - 1;
            memcpy(value, eq + 1, vlen);
            value[vlen] = '\0';
            if (klen == 4 && strncmp(line, "host", 4) == 0)
                copy_text(id->host, sizeof(id->host), value);
            else if (klen == 4 && strncmp(line, "boot", 4) == 0)
                copy_text(id->boot, sizeof(id->boot), value);
            else if (klen == 3 && strncmp(line, "pid", 3) == 0)
                id->pid = strtol(value, NULL, 10);
            else if (klen == 5 && strncmp(line, "start", 5) == 0)
                id->start = strtoull(value, NULL, 10);
            else if (klen == 6 && strncmp(line, "upload", 6) == 0 && upload != NULL)
                copy_text(upload, upload_size, value);
        }
        line += n;
        if (*line == '\n')
            line++;
    }
}

/* Whether the writer a marker names is still running: only a writer on this host since
 * its last boot can be told; it is gone when its pid is dead or is another process. */
static writer_state writer_state_of(const writer_id *w)
{
    writer_id me;
    self_id(&me);
    if (w->host[0] == '\0' || w->boot[0] == '\0' || w->pid <= 0 || strcmp(w->host, me.host) != 0 ||
        strcmp(w->boot, me.boot) != 0)
        return WRITER_UNKNOWN;
    unsigned long long start;
    int rc = proc_start_time(w->pid, &start);
    if (rc == -1)
        return WRITER_GONE;
    if (rc != 0)
        return WRITER_UNKNOWN;
    return start == w->start ? WRITER_ALIVE : WRITER_GONE;
}

/* Reads marker key: 1 with *state, 0 when there is none, -1 on error. */
static int read_marker(wk_s3 *c, const s3_storage *st, const char *key, writer_state *state,
                       wk_error *err)
{
    char shown[SHOWN_MAX], what[SHOWN_MAX + 32];
    char *text = NULL;
    shown_of(st, key, shown);
    snprintf(what, sizeof(what), "could not read \"%s\"", shown);
    if (get_small(c, key, &text, what, err) != 0) {
        if (err->code == WK_ERR_NOTFOUND) {
            wk_error_clear(err);
            return 0;
        }
        return -1;
    }
    writer_id w;
    parse_marker(text, &w, NULL, 0);
    free(text);
    *state = writer_state_of(&w);
    return 1;
}

/* ---- listings --------------------------------------------------------------------- */

/* Called per listed object (is_prefix false) or common prefix (true): 0 to go on, 1 to
 * stop, -1 on error. */
typedef int (*object_fn)(const char *key, bool is_prefix, uint64_t size, time_t mtime, void *arg,
                         wk_error *err);

/* Fetches one page of a listing (a GET of the bucket with params) on client c into *resp,
 * and makes *scratch (realloc'd) big enough for any block of its body (see wk_s3_xml_block).
 * Returns the body (never NULL), or NULL with err set and *resp freed. */
static const char *fetch_page(wk_s3 *c, const wk_s3_param *params, size_t np, wk_s3_response *resp,
                              char **scratch, const char *what, wk_error *err)
{
    wk_s3_request req = {.method = "GET", .params = params, .param_count = np};
    if (wk_s3_call(c, &req, resp, what, err) != 0) {
        wk_s3_response_free(resp);
        return NULL;
    }
    const char *xml = resp->body != NULL ? resp->body : "";
    free(*scratch);
    *scratch = malloc(strlen(xml) + 1);
    if (*scratch == NULL) {
        wk_s3_response_free(resp);
        nomem(err);
        return NULL;
    }
    return xml;
}

/* ListObjectsV2 of everything whose key starts with prefix; with delimited, one level
 * (delimiter '/'). Follows continuation tokens. */
static int list_objects(s3_storage *st, const char *prefix, bool delimited, object_fn fn, void *arg,
                        const char *what, wk_error *err)
{
    char token[KEY_MAX + 64] = "";
    char max_keys[16];
    char *scratch = NULL;
    char key[KEY_MAX], field[64];
    int rc = -1;
    snprintf(max_keys, sizeof(max_keys), "%d", st->list_max_keys);

    for (;;) {
        wk_s3_param params[6];
        size_t np = 0;
        params[np++] = (wk_s3_param){"list-type", "2"};
        params[np++] = (wk_s3_param){"prefix", prefix};
        if (delimited)
            params[np++] = (wk_s3_param){"delimiter", "/"};
        if (token[0] != '\0')
            params[np++] = (wk_s3_param){"continuation-token", token};
        if (st->list_max_keys > 0)
            params[np++] = (wk_s3_param){"max-keys", max_keys};
        wk_s3_response resp = {0};
        const char *xml = fetch_page(st->s3, params, np, &resp, &scratch, what, err);
        if (xml == NULL)
            goto out;
        int stop = 0;
        size_t pos = 0;
        while (stop == 0 && wk_s3_xml_block(xml, &pos, "Contents", scratch)) {
            if (wk_s3_xml_field(scratch, "Key", key, sizeof(key), err) != 1) {
                if (err->code == WK_ERR_NONE)
                    wk_error_set(err, WK_ERR_IO, "listing entry without a key");
                stop = -1;
                break;
            }
            uint64_t size = 0;
            time_t mtime = (time_t)-1;
            if (wk_s3_xml_field(scratch, "Size", field, sizeof(field), err) == 1)
                size = strtoull(field, NULL, 10);
            if (wk_s3_xml_field(scratch, "LastModified", field, sizeof(field), err) == 1)
                mtime = wk_s3_xml_time(field);
            stop = fn(key, false, size, mtime, arg, err);
        }
        pos = 0;
        while (stop == 0 && wk_s3_xml_block(xml, &pos, "CommonPrefixes", scratch)) {
            if (wk_s3_xml_field(scratch, "Prefix", key, sizeof(key), err) != 1)
                continue;
            stop = fn(key, true, 0, (time_t)-1, arg, err);
        }
        bool truncated = false;
        if (stop == 0 && wk_s3_xml_field(xml, "IsTruncated", field, sizeof(field), err) == 1)
            truncated = strcmp(field, "true") == 0;
        /* A truncated page must name a new place to go on from: an empty or repeated
         * token would restart or repeat the listing forever. */
        if (stop == 0 && truncated) {
            char prev[sizeof(token)];
            memcpy(prev, token, sizeof(prev));
            if (wk_s3_xml_field(xml, "NextContinuationToken", token, sizeof(token), err) != 1 ||
                token[0] == '\0' || strcmp(token, prev) == 0) {
                wk_error_set(err, WK_ERR_IO,
                             "%s: the server sent a truncated listing without a new continuation "
                             "token",
                             what);
                stop = -1;
            }
        }
        wk_s3_response_free(&resp);
        if (stop < 0) {
            wk_s3_error_context(err, what);
            goto out;
        }
        if (stop > 0 || !truncated)
            break;
    }
    rc = 0;
out:
    free(scratch);
    return rc;
}

/* Called per multipart upload in progress: 0 to go on, 1 to stop, -1 on error. */
typedef int (*upload_fn)(const char *key, const char *upload_id, time_t initiated, void *arg,
                         wk_error *err);

/* ListMultipartUploads of every upload whose key starts with prefix. */
static int list_uploads(s3_storage *st, wk_s3 *c, const char *prefix, upload_fn fn, void *arg,
                        const char *what, wk_error *err)
{
    char key_marker[KEY_MAX] = "", id_marker[512] = "";
    char max_uploads[16];
    char *scratch = NULL;
    char key[KEY_MAX], upload_id[512], field[64];
    int rc = -1;
    snprintf(max_uploads, sizeof(max_uploads), "%d", st->list_max_keys);

    for (;;) {
        wk_s3_param params[5];
        size_t np = 0;
        params[np++] = (wk_s3_param){"uploads", ""};
        params[np++] = (wk_s3_param){"prefix", prefix};
        if (key_marker[0] != '\0') {
            params[np++] = (wk_s3_param){"key-marker", key_marker};
            params[np++] = (wk_s3_param){"upload-id-marker", id_marker};
        }
        if (st->list_max_keys > 0)
            params[np++] = (wk_s3_param){"max-uploads", max_uploads};
        wk_s3_response resp = {0};
        const char *xml = fetch_page(c, params, np, &resp, &scratch, what, err);
        if (xml == NULL)
            goto out;
        int stop = 0;
        size_t pos = 0;
        while (stop == 0 && wk_s3_xml_block(xml, &pos, "Upload", scratch)) {
            if (wk_s3_xml_field(scratch, "Key", key, sizeof(key), err) != 1 ||
                wk_s3_xml_field(scratch, "UploadId", upload_id, sizeof(upload_id), err) != 1) {
                if (err->code == WK_ERR_NONE)
                    wk_error_set(err, WK_ERR_IO, "upload listing entry without key or id");
                stop = -1;
                break;
            }
            time_t initiated = (time_t)-1;
            if (wk_s3_xml_field(scratch, "Initiated", field, sizeof(field), err) == 1)
                initiated = wk_s3_xml_time(field);
            stop = fn(key, upload_id, initiated, arg, err);
        }
        bool truncated = false;
        if (stop == 0 && wk_s3_xml_field(xml, "IsTruncated", field, sizeof(field), err) == 1)
            truncated = strcmp(field, "true") == 0;
        if (stop == 0 && truncated) {
            /* As with tokens: the markers must move on, or the listing never ends. */
            char prev_key[sizeof(key_marker)], prev_id[sizeof(id_marker)];
            memcpy(prev_key, key_marker, sizeof(prev_key));
            memcpy(prev_id, id_marker, sizeof(prev_id));
            if (wk_s3_xml_field(xml, "NextKeyMarker", key_marker, sizeof(key_marker), err) != 1 ||
                key_marker[0] == '\0') {
                wk_error_set(err, WK_ERR_IO, "%s: truncated upload listing without a marker", what);
                stop = -1;
            } else {
                if (wk_s3_xml_field(xml, "NextUploadIdMarker", id_marker, sizeof(id_marker), err) !=
                    1)
                    id_marker[0] = '\0';
                if (strcmp(key_marker, prev_key) == 0 && strcmp(id_marker, prev_id) == 0) {
                    wk_error_set(err, WK_ERR_IO,
                                 "%s: the server sent a truncated upload listing without new "
                                 "markers",
                                 what);
                    stop = -1;
                }
            }
        }
        wk_s3_response_free(&resp);
        if (stop < 0) {
            wk_s3_error_context(err, what);
            goto out;
        }
        if (stop > 0 || !truncated)
            break;
    }
    rc = 0;
out:
    free(scratch);
    return rc;
}

/* ListParts of an upload: the bytes sent so far and when the last part arrived (or -1).
 * Returns 0, 1 when the upload no longer exists, -1 on error. */
static int upload_progress(s3_storage *st, const char *key, const char *upload_id, uint64_t *bytes,
                           time_t *last, const char *what, wk_error *err)
{
    char marker[16] = "", field[64];
    char *scratch = NULL;
    int rc = -1;
    *bytes = 0;
    *last = (time_t)-1;
    for (;;) {
        wk_s3_param params[2] = {{"uploadId", upload_id}, {"part-number-marker", marker}};
        wk_s3_request req = {.method = "GET",
                             .key = key,
                             .params = params,
                             .param_count = marker[0] != '\0' ? 2 : 1};
        wk_s3_response resp = {0};
        if (wk_s3_send(st->s3, &req, &resp, err) != 0) {
            if (resp.status == 404 && strcmp(resp.error_code, "NoSuchUpload") == 0) {
                wk_error_clear(err);
                rc = 1;
            } else {
                wk_s3_send_failed(&resp, what, err);
            }
            wk_s3_response_free(&resp);
            goto out;
        }
        const char *xml = resp.body != NULL ? resp.body : "";
        free(scratch);
        scratch = malloc(strlen(xml) + 1);
        if (scratch == NULL) {
            wk_s3_response_free(&resp);
            nomem(err);
            goto out;
        }
        size_t pos = 0;
        while (wk_s3_xml_block(xml, &pos, "Part", scratch)) {
            if (wk_s3_xml_field(scratch, "Size", field, sizeof(field), err) == 1)
                *bytes += strtoull(field, NULL, 10);
            if (wk_s3_xml_field(scratch, "LastModified", field, sizeof(field), err) == 1) {
                time_t t = wk_s3_xml_time(field);
                if (t > *last)
                    *last = t;
            }
        }
        bool truncated = wk_s3_xml_field(xml, "IsTruncated", field, sizeof(field), err) == 1 &&
                         strcmp(field, "true") == 0;
        char next[16] = "";
        if (truncated)
            wk_s3_xml_field(xml, "NextPartNumberMarker", next, sizeof(next), err);
        wk_s3_response_free(&resp);
        wk_error_clear(err);
        if (!truncated || next[0] == '\0' || strcmp(next, marker) == 0)
            break;
        memcpy(marker, next, sizeof(marker));
    }
    rc = 0;
out:
    free(scratch);
    return rc;
}

/* ---- the writer ------------------------------------------------------------------- */

typedef enum sink_state { SINK_OPEN, SINK_DONE, SINK_FAILED } sink_state;

typedef struct s3_sink {
    wk_stage base;
    s3_storage *st;
    int flags;
    sink_state state;
    char *path; /* repository path */
    char key[KEY_MAX];
    char shown[SHOWN_MAX];
    char what[SHOWN_MAX + 32]; /* "could not store \"s3://...\"" */
    unsigned char *buf;        /* the part being filled (the writer's) */
    size_t len, cap;

    /* Multipart, once the first part is full. */
    char *upload_id; /* NULL: none, or completed */
    char marker_key[KEY_MAX];
    bool marker_written;
    wk_s3_parts *parts; /* the threads sending the parts */
} s3_sink;

/* Gives the write up: no object, no upload, no marker left (best effort). */
static void sink_abort(s3_sink *s)
{
    wk_error ignored = {0};
    bool aborted = true;
    wk_s3_parts_free(s->parts);
    s->parts = NULL;
    if (s->upload_id != NULL) {
        if (abort_upload(s->st->s3, s->key, s->upload_id, s->what, &ignored) != 0) {
            aborted = false;
            wk_notice(WK_LOG_WARNING, "could not abort upload of \"%s\": %s", s->shown,
                      ignored.message);
        }
        free(s->upload_id);
        s->upload_id = NULL;
    }
    /* The marker stays with an upload that could not be aborted: it is what lets a later
     * cleanup see at once that this writer is gone, instead of waiting for the upload to
     * grow old. */
    if (s->marker_written) {
        wk_error_clear(&ignored);
        if (aborted)
            delete_key(s->st->s3, s->marker_key, s->what, &ignored);
        s->marker_written = false;
    }
}

/* CreateMultipartUpload, the marker, the part threads. */
static int start_multipart(s3_sink *s, wk_error *err)
{
    s3_storage *st = s->st;
    wk_s3_param params[] = {{"uploads", ""}};
    wk_s3_request req = {.method = "POST", .key = s->key, .params = params, .param_count = 1};
    wk_s3_response resp = {0};
    char id[512];

    if (wk_s3_call(st->s3, &req, &resp, s->what, err) != 0) {
        wk_s3_response_free(&resp);
        return -1;
    }
    int found =
        wk_s3_xml_field(resp.body != NULL ? resp.body : "", "UploadId", id, sizeof(id), err);
    wk_s3_response_free(&resp);
    if (found != 1 || id[0] == '\0') {
        if (found == 0)
            wk_error_set(err, WK_ERR_IO, "no UploadId in the answer");
        return wk_error_prefix(err, "%s", s->what);
    }
    s->upload_id = strdup(id);
    if (s->upload_id == NULL)
        return nomem(err);

    /* The marker: who writes this upload, so that a later run can tell it is orphaned. */
    if (marker_key_of(st, s->path, id, s->marker_key, err) != 0)
        return -1;
    writer_id me;
    self_id(&me);
    char text[KEY_MAX + 1024];
    int n =
        snprintf(text, sizeof(text), "key=%s\nupload=%s\nhost=%s\nboot=%s\npid=%ld\nstart=%llu\n",
                 s->key, id, me.host, me.boot, me.pid, me.start);
    if (n < 0 || (size_t)n >= sizeof(text))
        return wk_error_set(err, WK_ERR_INTERNAL, "%s: upload marker too long", s->what);
    wk_s3_request mreq = {
        .method = "PUT", .key = s->marker_key, .body = text, .body_len = (size_t)n};
    char mshown[SHOWN_MAX], mwhat[SHOWN_MAX + 32];
    shown_of(st, s->marker_key, mshown);
    snprintf(mwhat, sizeof(mwhat), "could not store \"%s\"", mshown);
    if (wk_s3_call(st->s3, &mreq, &resp, mwhat, err) != 0) {
        wk_s3_response_free(&resp);
        return -1;
    }
    wk_s3_response_free(&resp);
    s->marker_written = true;
    return wk_s3_parts_start(st->s3, s->key, s->upload_id, s->what, st->parallel, st->part_size,
                             &s->parts, err);
}

/* Hands the writer's buffer to the part threads and takes an empty one. */
static int next_part(s3_sink *s, wk_error *err)
{
    unsigned char *full = s->buf;
    size_t len = s->len;
    s->buf = NULL;
    s->len = s->cap = 0;
    if (wk_s3_parts_queue(s->parts, full, len, err) != 0 ||
        wk_s3_parts_take_buffer(s->parts, &s->buf, err) != 0)
        return -1;
    s->cap = s->st->part_size;
    return 0;
}

static int sink_write(wk_stage *stage, const void *data, size_t len, wk_error *err)
{
    s3_sink *s = (s3_sink *)stage;
    const unsigned char *p = data;
    size_t part_size = s->st->part_size;

    if (s->state != SINK_OPEN)
        return wk_error_set(err, WK_ERR_INTERNAL, "could not write \"%s\": writer is closed",
                            s->shown);
    if (s->parts != NULL && wk_s3_parts_failure(s->parts, err) != 0)
        goto fail;
    while (len > 0) {
        if (s->len == part_size) {
            /* Full, and more is coming: this is a part of a multipart upload. */
            if (s->upload_id == NULL && start_multipart(s, err) != 0)
                goto fail;
            if (next_part(s, err) != 0)
                goto fail;
        }
        if (s->len == s->cap) {
            size_t cap = s->cap > 0 ? s->cap * 2 : BUF_INITIAL;
            if (cap > part_size)
                cap = part_size;
            unsigned char *nb = realloc(s->buf, cap);
            if (nb == NULL) {
                nomem(err);
                goto fail;
            }
            s->buf = nb;
            s->cap = cap;
        }
        size_t n = s->cap - s->len < len ? s->cap - s->len : len;
        memcpy(s->buf + s->len, p, n);
        s->len += n;
        p += n;
        len -= n;
    }
    return 0;
fail:
    s->state = SINK_FAILED;
    sink_abort(s);
    return -1;
}

/* One PUT of the whole object. */
static int put_single(s3_sink *s, wk_error *err)
{
    const char *headers[2] = {NULL, NULL};
    if (s->flags & WK_PUT_NOREPLACE)
        headers[0] = "If-None-Match: *";
    wk_s3_request req = {.method = "PUT",
                         .key = s->key,
                         .headers = headers,
                         .body = s->buf != NULL ? s->buf : (const void *)"",
                         .body_len = s->len};
    wk_s3_response resp = {0};
    int rc = wk_s3_call(s->st->s3, &req, &resp, s->what, err);
    wk_s3_response_free(&resp);
    return rc;
}

/* After a CompleteMultipartUpload answered NoSuchUpload (a retry of one that went
 * through, its answer lost): whether the object now is ours. */
static bool completed_as_ours(s3_sink *s)
{
    char want[80], have[80];
    uint64_t size;
    wk_error e = {0};
    if (wk_s3_parts_etag(s->parts, want) != 0 ||
        head_key(s->st, s->st->s3, s->key, &size, have, s->what, &e) != 0)
        return false;
    return strcasecmp(want, have) == 0;
}

/* Aborts the uploads of the same key that earlier, killed writers left (not ones whose
 * writer is known to be alive), with their markers. Best effort. */
typedef struct others_ctx {
    s3_sink *s;
} others_ctx;

static int abort_other(const char *key, const char *upload_id, time_t initiated, void *arg,
                       wk_error *err)
{
    others_ctx *o = arg;
    s3_sink *s = o->s;
    char mkey[KEY_MAX];
    writer_state state = WRITER_UNKNOWN;
    (void)initiated;
    if (strcmp(key, s->key) != 0)
        return 0;
    if (marker_key_of(s->st, s->path, upload_id, mkey, err) != 0)
        return -1;
    int m = read_marker(s->st->s3, s->st, mkey, &state, err);
    if (m < 0)
        return -1;
    if (m == 1 && state == WRITER_ALIVE)
        return 0;
    if (abort_upload(s->st->s3, key, upload_id, s->what, err) != 0)
        return -1;
    wk_notice(WK_LOG_INFO, "aborted an unfinished earlier upload of \"%s\"", s->shown);
    if (m == 1)
        delete_key(s->st->s3, mkey, s->what, err);
    wk_error_clear(err);
    return 0;
}

static void abort_others(s3_sink *s)
{
    wk_error e = {0};
    others_ctx o = {s};
    if (list_uploads(s->st, s->st->s3, s->key, abort_other, &o, s->what, &e) != 0)
        wk_notice(WK_LOG_WARNING, "could not clean up earlier uploads of \"%s\": %s", s->shown,
                  e.message);
}

/* Waits for every part, then CompleteMultipartUpload. */
static int complete_multipart(s3_sink *s, wk_error *err)
{
    s3_storage *st = s->st;
    wk_s3_xml_buf xml = {0};
    int rc = -1;

    unsigned char *last = s->buf;
    size_t last_len = s->len;
    s->buf = NULL;
    s->len = s->cap = 0;
    if (wk_s3_parts_queue(s->parts, last, last_len, err) != 0 ||
        wk_s3_parts_finish(s->parts, err) != 0)
        return -1;

    if (s->flags & WK_PUT_NOREPLACE) {
        /* RGW ignores If-None-Match on CompleteMultipartUpload: look first. */
        uint64_t size;
        if (head_key(st, st->s3, s->key, &size, NULL, s->what, err) == 0)
            return wk_error_set(err, WK_ERR_EXISTS, "%s: the object already exists", s->what);
        if (err->code != WK_ERR_NOTFOUND)
            return -1;
        wk_error_clear(err);
    }

    wk_s3_parts_complete_body(s->parts, &xml);
    if (xml.failed)
        return nomem(err);

    const char *headers[3] = {"Content-Type: application/xml", NULL, NULL};
    if (s->flags & WK_PUT_NOREPLACE)
        headers[1] = "If-None-Match: *";
    wk_s3_param params[] = {{"uploadId", s->upload_id}};
    wk_s3_request req = {.method = "POST",
                         .key = s->key,
                         .params = params,
                         .param_count = 1,
                         .headers = headers,
                         .body = xml.p,
                         .body_len = xml.len};
    wk_s3_response resp = {0};
    if (wk_s3_send(st->s3, &req, &resp, err) != 0) {
        if (strcmp(resp.error_code, "NoSuchUpload") == 0 && completed_as_ours(s)) {
            wk_error_clear(err);
        } else {
            wk_s3_send_failed(&resp, s->what, err);
            /* A put has nothing "not found": our upload was removed under us. */
            if (err->code == WK_ERR_NOTFOUND) {
                wk_error_set(err, WK_ERR_IO,
                             "%s: the multipart upload was removed before it was completed",
                             s->what);
                wk_error_hint(err, "another program cleaned it up as a leftover; store the "
                                   "object again");
            }
            goto out;
        }
    } else if (resp.body != NULL && strstr(resp.body, "<Error>") != NULL) {
        /* A 200 can still carry an error: the upload was not completed. */
        char code[64] = "";
        wk_s3_xml_field(resp.body, "Code", code, sizeof(code), err);
        bool transient = strcmp(code, "InternalError") == 0 || strcmp(code, "SlowDown") == 0 ||
                         strcmp(code, "ServiceUnavailable") == 0;
        wk_error_set(err, transient ? WK_ERR_TRANSIENT : WK_ERR_IO,
                     "%s: CompleteMultipartUpload failed: %s", s->what,
                     code[0] != '\0' ? code : "error");
        goto out;
    }
    /* The object is in place: the upload is no more ours to abort. */
    free(s->upload_id);
    s->upload_id = NULL;
    rc = 0;
out:
    wk_s3_response_free(&resp);
    wk_s3_xml_buf_free(&xml);
    return rc;
}

static int sink_finish(wk_stage *stage, wk_error *err)
{
    s3_sink *s = (s3_sink *)stage;
    if (s->state == SINK_DONE)
        return 0;
    if (s->state != SINK_OPEN)
        return wk_error_set(err, WK_ERR_INTERNAL, "could not finish \"%s\": writer is closed",
                            s->shown);
    if (s->upload_id == NULL) {
        if (put_single(s, err) != 0) {
            s->state = SINK_FAILED;
            return -1;
        }
    } else {
        if (complete_multipart(s, err) != 0) {
            s->state = SINK_FAILED;
            sink_abort(s);
            return -1;
        }
        wk_error ignored = {0};
        if (s->marker_written)
            delete_key(s->st->s3, s->marker_key, s->what, &ignored);
        s->marker_written = false;
        abort_others(s);
    }
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
    s->state = SINK_DONE;
    return 0;
}

static void sink_free(wk_stage *stage)
{
    s3_sink *s = (s3_sink *)stage;
    if (s == NULL)
        return;
    if (s->state != SINK_DONE)
        sink_abort(s);
    wk_s3_parts_free(s->parts);
    free(s->buf);
    free(s->upload_id);
    free(s->path);
    free(s);
}

static const wk_stage_ops sink_ops = {sink_write, sink_finish, sink_free};

static int s3_put_open(wk_storage *base, const char *path, int flags, wk_stage **sink,
                       wk_error *err)
{
    s3_storage *st = (s3_storage *)base;
    if (wk_storage_check_path(path, err) != 0)
        return -1;
    if ((flags & ~(WK_PUT_NOREPLACE | WK_PUT_NOSYNC)) != 0)
        return wk_error_set(err, WK_ERR_INTERNAL, "invalid flags 0x%x for \"%s\"", flags, path);
    s3_sink *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return nomem(err);
    s->base.ops = &sink_ops;
    s->st = st;
    s->flags = flags;
    s->path = strdup(path);
    if (s->path == NULL) {
        free(s);
        return nomem(err);
    }
    if (key_of(st, path, s->key, err) != 0) {
        sink_free(&s->base);
        return -1;
    }
    shown_of(st, s->key, s->shown);
    snprintf(s->what, sizeof(s->what), "could not store \"%s\"", s->shown);
    *sink = &s->base;
    return 0;
}

/* ---- reading ---------------------------------------------------------------------- */

typedef struct get_ctx {
    wk_stage *dest;
    bool dest_failed; /* the error came from dest, not from the transfer */
} get_ctx;

static int get_on_body(const void *data, size_t len, void *arg, wk_error *err)
{
    get_ctx *g = arg;
    if (wk_stage_write(g->dest, data, len, err) != 0) {
        g->dest_failed = true;
        return -1;
    }
    return 0;
}

static int s3_get(wk_storage *base, const char *path, wk_stage *dest, wk_error *err)
{
    s3_storage *st = (s3_storage *)base;
    char key[KEY_MAX], shown[SHOWN_MAX], what[SHOWN_MAX + 32];
    char etag[80] = "";
    bool know_length = false;
    uint64_t length = 0, total = 0;
    int64_t started = now_ms();
    int64_t backoff = 100;
    unsigned seed = (unsigned)started ^ (unsigned)getpid();

    if (wk_storage_check_path(path, err) != 0 || key_of(st, path, key, err) != 0)
        return -1;
    shown_of(st, key, shown);
    snprintf(what, sizeof(what), "could not read \"%s\"", shown);

    for (;;) {
        char range[64], if_match[100];
        const char *headers[3] = {NULL, NULL, NULL};
        if (total > 0) {
            /* Resuming: the rest of the same object, never a splice of a newer one. */
            snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-", total);
            snprintf(if_match, sizeof(if_match), "If-Match: %s", etag);
            headers[0] = range;
            headers[1] = if_match;
        }
        wk_s3_response resp = {0};
        get_ctx g = {.dest = dest};
        wk_s3_request req = {.method = "GET",
                             .key = key,
                             .headers = total > 0 ? headers : NULL,
                             .on_body = get_on_body,
                             .on_body_arg = &g};
        int rc = wk_s3_send(st->s3, &req, &resp, err);
        uint64_t got = resp.delivered;
        bool resumed = total > 0;

        if (rc != 0 && g.dest_failed) {
            wk_s3_response_free(&resp);
            return -1;
        }
        if (!resumed && (rc == 0 || got > 0)) {
            /* The first answer fixes what the object is. */
            snprintf(etag, sizeof(etag), "%s", resp.etag);
            know_length = resp.has_length;
            length = resp.content_length;
        }
        if (resumed && (rc == 0 || got > 0) && resp.status != 206) {
            /* The whole object again (Range ignored): its head has gone into dest behind
             * what was there; the read cannot be saved. */
            wk_s3_response_free(&resp);
            return wk_error_set(err, WK_ERR_CORRUPT,
                                "%s: the server ignored the Range of a resumed read", what);
        }
        if (rc != 0 && resp.status >= 300) {
            if (resumed && resp.status == 412)
                wk_error_set(err, WK_ERR_TRANSIENT, "%s: the object changed while it was read",
                             what);
            else
                wk_s3_status_error(&resp, what, err);
            wk_s3_response_free(&resp);
            return -1;
        }
        total += got;
        wk_s3_response_free(&resp);

        if (rc == 0 && (!know_length || total == length))
            return 0;
        if (know_length && total > length)
            return wk_error_set(err, WK_ERR_IO, "%s: got %" PRIu64 " bytes, expected %" PRIu64,
                                what, total, length);
        if (rc == 0) /* a clean end short of Content-Length: resume like a break */
            wk_error_set(err, WK_ERR_TRANSIENT, "truncated at %" PRIu64 " of %" PRIu64 " bytes",
                         total, length);
        if (total == 0)
            return wk_s3_error_context(err, what);
        /* Part of the object came, then the transfer broke: resume from there, within
         * the retry budget counted from the start of this read. */
        int64_t elapsed = now_ms() - started;
        if (err->code != WK_ERR_TRANSIENT || etag[0] == '\0' || st->retry_timeout_ms <= 0 ||
            elapsed >= st->retry_timeout_ms) {
            if (err->code == WK_ERR_NONE)
                wk_error_set(err, WK_ERR_TRANSIENT, "transfer broke");
            wk_s3_error_context(err, what);
            wk_error_detail(err, "%" PRIu64 " bytes had been received when the read stopped.",
                            total);
            return -1;
        }
        int64_t left = st->retry_timeout_ms - elapsed;
        seed = seed * 1103515245u + 12345u;
        int64_t wait = (int64_t)((seed >> 8) % (unsigned)backoff) + 1; /* full jitter */
        if (wait > left)
            wait = left;
        wk_notice(WK_LOG_INFO, "reading \"%s\" broke after %" PRIu64 " bytes (%s); resuming", shown,
                  total, err->message);
        wk_error_clear(err);
        sleep_ms(wait);
        if (backoff < 5000)
            backoff *= 2;
    }
}

static int s3_stat(wk_storage *base, const char *path, wk_storage_info *out, wk_error *err)
{
    s3_storage *st = (s3_storage *)base;
    char key[KEY_MAX], shown[SHOWN_MAX], what[SHOWN_MAX + 32];
    if (wk_storage_check_path(path, err) != 0 || key_of(st, path, key, err) != 0)
        return -1;
    shown_of(st, key, shown);
    snprintf(what, sizeof(what), "could not stat \"%s\"", shown);
    return head_key(st, st->s3, key, &out->size, NULL, what, err);
}

/* ---- listing ---------------------------------------------------------------------- */

typedef struct list_ctx {
    size_t base_len; /* of the folder's key prefix */
    wk_storage_list_cb cb;
    void *arg;
} list_ctx;

static int list_entry(const char *key, bool is_prefix, uint64_t size, time_t mtime, void *arg,
                      wk_error *err)
{
    list_ctx *l = arg;
    char name[KEY_MAX];
    (void)mtime;
    (void)err;
    if (strlen(key) <= l->base_len)
        return 0;
    snprintf(name, sizeof(name), "%s", key + l->base_len);
    size_t n = strlen(name);
    if (is_prefix && n > 0 && name[n - 1] == '/')
        name[--n] = '\0';
    /* Hidden names (upload markers, anything not ours), empty and odd ones are skipped. */
    if (n == 0 || name[0] == '.' || strchr(name, '/') != NULL)
        return 0;
    return l->cb(name, is_prefix, is_prefix ? 0 : size, l->arg) != 0 ? 1 : 0;
}

static int s3_list(wk_storage *base, const char *dir, const char *prefix, wk_storage_list_cb cb,
                   void *arg, wk_error *err)
{
    s3_storage *st = (s3_storage *)base;
    char folder[KEY_MAX], full[KEY_MAX], shown[SHOWN_MAX], what[SHOWN_MAX + 32];
    if (dir[0] != '\0' && wk_storage_check_path(dir, err) != 0)
        return -1;
    if (prefix == NULL)
        prefix = "";
    if (folder_key(st, dir, folder, err) != 0)
        return -1;
    int n = snprintf(full, sizeof(full), "%s%s", folder, prefix);
    if (n < 0 || (size_t)n >= sizeof(full))
        return wk_error_set(err, WK_ERR_USAGE, "S3 key for \"%s\" is too long", prefix);
    shown_of(st, folder, shown);
    snprintf(what, sizeof(what), "could not list \"%s\"", shown);
    list_ctx l = {strlen(folder), cb, arg};
    return list_objects(st, full, true, list_entry, &l, what, err);
}

/* ---- removal ---------------------------------------------------------------------- */

static int s3_remove(wk_storage *base, const char *path, wk_error *err)
{
    s3_storage *st = (s3_storage *)base;
    char key[KEY_MAX], shown[SHOWN_MAX], what[SHOWN_MAX + 32];
    if (wk_storage_check_path(path, err) != 0 || key_of(st, path, key, err) != 0)
        return -1;
    shown_of(st, key, shown);
    snprintf(what, sizeof(what), "could not remove \"%s\"", shown);
    return delete_key(st->s3, key, what, err);
}

/* One DeleteObjects request for paths[0..count). */
static int delete_batch(s3_storage *st, const char *const *paths, size_t count, wk_error *err)
{
    wk_s3_xml_buf xml = {0};
    char key[KEY_MAX], what[SHOWN_MAX + 64];
    int rc = -1;
    wk_s3_response resp = {0};

    wk_s3_xml_buf_raw(&xml,
                      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true</Quiet>");
    for (size_t i = 0; i < count; i++) {
        if (wk_storage_check_path(paths[i], err) != 0 || key_of(st, paths[i], key, err) != 0)
            goto out;
        wk_s3_xml_buf_raw(&xml, "<Object><Key>");
        wk_s3_xml_buf_text(&xml, key);
        wk_s3_xml_buf_raw(&xml, "</Key></Object>");
    }
    wk_s3_xml_buf_raw(&xml, "</Delete>");
    if (xml.failed) {
        nomem(err);
        goto out;
    }

    unsigned char md5[16];
    char b64[sodium_base64_ENCODED_LEN(16, sodium_base64_VARIANT_ORIGINAL)];
    char md5_header[64];
    wk_md5(xml.p, xml.len, md5);
    sodium_bin2base64(b64, sizeof(b64), md5, sizeof(md5), sodium_base64_VARIANT_ORIGINAL);
    snprintf(md5_header, sizeof(md5_header), "Content-MD5: %s", b64);
    const char *headers[] = {md5_header, "Content-Type: application/xml", NULL};
    wk_s3_param params[] = {{"delete", ""}};
    wk_s3_request req = {.method = "POST",
                         .params = params,
                         .param_count = 1,
                         .headers = headers,
                         .body = xml.p,
                         .body_len = xml.len};
    snprintf(what, sizeof(what), "could not remove %zu objects from \"s3://%s/%s\"", count,
             st->bucket, st->prefix);
    if (wk_s3_call(st->s3, &req, &resp, what, err) != 0)
        goto out;
    /* With Quiet, the answer lists only the keys that failed. */
    if (resp.body != NULL) {
        const char *body = resp.body;
        char *scratch = malloc(strlen(body) + 1);
        size_t pos = 0;
        if (scratch == NULL) {
            nomem(err);
            goto out;
        }
        if (wk_s3_xml_block(body, &pos, "Error", scratch)) {
            char code[64] = "", bad[KEY_MAX] = "", shown[SHOWN_MAX];
            wk_s3_xml_field(scratch, "Code", code, sizeof(code), err);
            wk_s3_xml_field(scratch, "Key", bad, sizeof(bad), err);
            free(scratch);
            if (bad[0] != '\0') {
                shown_of(st, bad, shown);
                wk_error_set(err, WK_ERR_IO, "could not remove \"%s\": %s", shown,
                             code[0] != '\0' ? code : "error");
            } else {
                wk_error_set(err, WK_ERR_IO, "%s: %s", what, code[0] != '\0' ? code : "error");
            }
            goto out;
        }
        free(scratch);
    }
    rc = 0;
out:
    wk_s3_response_free(&resp);
    wk_s3_xml_buf_free(&xml);
    return rc;
}

static int s3_remove_many(wk_storage *base, const char *const *paths, size_t count, wk_error *err)
{
    s3_storage *st = (s3_storage *)base;
    for (size_t done = 0; done < count; done += DELETE_BATCH) {
        size_t n = count - done < DELETE_BATCH ? count - done : DELETE_BATCH;
        if (delete_batch(st, paths + done, n, err) != 0)
            return -1;
    }
    return 0;
}

/* ---- leftovers of killed writers -------------------------------------------------- */

typedef struct strset {
    char **items;
    size_t count, cap;
} strset;

static int strset_add(strset *s, const char *text)
{
    if (s->count == s->cap) {
        size_t cap = s->cap > 0 ? s->cap * 2 : 16;
        char **p = realloc(s->items, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        s->items = p;
        s->cap = cap;
    }
    if ((s->items[s->count] = strdup(text)) == NULL)
        return -1;
    s->count++;
    return 0;
}

static bool strset_has(const strset *s, const char *text)
{
    for (size_t i = 0; i < s->count; i++)
        if (strcmp(s->items[i], text) == 0)
            return true;
    return false;
}

static void strset_free(strset *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->items[i]);
    free(s->items);
}

typedef struct clean_ctx {
    s3_storage *st;
    int64_t max_age;
    time_t now;
    uint64_t removed;
    strset seen; /* markers of the uploads found */
    const char *what;
} clean_ctx;

static int clean_upload(const char *key, const char *upload_id, time_t initiated, void *arg,
                        wk_error *err)
{
    clean_ctx *c = arg;
    s3_storage *st = c->st;
    const char *rel = rel_of(st, key);
    char mkey[KEY_MAX], shown[SHOWN_MAX], what[SHOWN_MAX + 64];
    writer_state state = WRITER_UNKNOWN;
    if (rel == NULL || rel[0] == '\0' || marker_key_of(st, rel, upload_id, mkey, err) != 0) {
        wk_error_clear(err);
        return 0;
    }
    if (strset_add(&c->seen, mkey) != 0)
        return nomem(err);
    int m = read_marker(st->s3, st, mkey, &state, err);
    if (m < 0)
        return -1;
    if (state == WRITER_ALIVE)
        return 0;
    bool orphan = state == WRITER_GONE;
    if (!orphan) {
        /* Nobody can tell whether its writer lives: it is left alone while anything
         * touched it within max_age (a live writer keeps sending parts). */
        time_t last = initiated;
        if (initiated == (time_t)-1 || c->now - initiated >= c->max_age) {
            uint64_t bytes;
            time_t last_part;
            shown_of(st, key, shown);
            snprintf(what, sizeof(what), "could not list the parts of \"%s\"", shown);
            int p = upload_progress(st, key, upload_id, &bytes, &last_part, what, err);
            if (p < 0)
                return -1;
            if (p == 1) /* gone meanwhile */
                return 0;
            if (last_part > last)
                last = last_part;
        }
        orphan = last != (time_t)-1 && c->now - last >= c->max_age;
    }
    if (!orphan)
        return 0;
    shown_of(st, key, shown);
    snprintf(what, sizeof(what), "could not abort the upload of \"%s\"", shown);
    if (abort_upload(st->s3, key, upload_id, what, err) != 0)
        return -1;
    wk_notice(WK_LOG_INFO, "aborted an unfinished upload of \"%s\" (%s)", shown,
              state == WRITER_GONE ? "its writer is gone" : "too old");
    c->removed++;
    if (m == 1) {
        snprintf(what, sizeof(what), "could not remove upload marker of \"%s\"", shown);
        if (delete_key(st->s3, mkey, what, err) != 0)
            return -1;
    }
    return 0;
}

static int clean_marker(const char *key, bool is_prefix, uint64_t size, time_t mtime, void *arg,
                        wk_error *err)
{
    clean_ctx *c = arg;
    char shown[SHOWN_MAX], what[SHOWN_MAX + 64];
    writer_state state = WRITER_UNKNOWN;
    (void)size;
    if (is_prefix || strset_has(&c->seen, key))
        return 0;
    /* No upload of its own under the folder: a marker its writer left behind when it died
     * between completing (or aborting) and removing it. Young ones may belong to an
     * upload begun after the listing. */
    bool old = mtime != (time_t)-1 && c->now - mtime >= c->max_age;
    int m = read_marker(c->st->s3, c->st, key, &state, err);
    if (m < 0)
        return -1;
    if (m == 0 || state == WRITER_ALIVE || (!old && state != WRITER_GONE))
        return 0;
    shown_of(c->st, key, shown);
    snprintf(what, sizeof(what), "could not remove \"%s\"", shown);
    return delete_key(c->st->s3, key, what, err);
}

static int s3_clean_temporaries(wk_storage *base, const char *dir, int64_t max_age_seconds,
                                uint64_t *removed, wk_error *err)
{
    s3_storage *st = (s3_storage *)base;
    char folder[KEY_MAX], markers[KEY_MAX], shown[SHOWN_MAX], what[SHOWN_MAX + 64];
    int rc = -1;
    if (dir[0] != '\0' && wk_storage_check_path(dir, err) != 0)
        return -1;
    if (folder_key(st, dir, folder, err) != 0 || marker_folder_key(st, dir, markers, err) != 0)
        return -1;
    clean_ctx c = {.st = st, .max_age = max_age_seconds, .now = time(NULL)};
    shown_of(st, folder, shown);
    snprintf(what, sizeof(what), "could not clean up unfinished uploads in \"%s\"", shown);
    c.what = what;
    if (list_uploads(st, st->s3, folder, clean_upload, &c, what, err) != 0)
        goto out;
    if (list_objects(st, markers, false, clean_marker, &c, what, err) != 0)
        goto out;
    rc = 0;
out:
    if (removed != NULL)
        *removed = c.removed;
    strset_free(&c.seen);
    return rc;
}

typedef struct temps_ctx {
    s3_storage *st;
    time_t now;
    wk_storage_temp_cb cb;
    void *arg;
} temps_ctx;

static int temp_upload(const char *key, const char *upload_id, time_t initiated, void *arg,
                       wk_error *err)
{
    temps_ctx *t = arg;
    const char *rel = rel_of(t->st, key);
    char shown[SHOWN_MAX], what[SHOWN_MAX + 64];
    uint64_t bytes;
    time_t last;
    if (rel == NULL || rel[0] == '\0')
        return 0;
    shown_of(t->st, key, shown);
    snprintf(what, sizeof(what), "could not list the parts of \"%s\"", shown);
    int p = upload_progress(t->st, key, upload_id, &bytes, &last, what, err);
    if (p < 0)
        return -1;
    if (p == 1)
        return 0;
    if (initiated > last)
        last = initiated;
    int64_t age = last != (time_t)-1 ? (int64_t)(t->now - last) : 0;
    if (age < 0)
        age = 0;
    return t->cb(rel, bytes, age, t->arg) != 0 ? 1 : 0;
}

static int s3_list_temporaries(wk_storage *base, const char *dir, wk_storage_temp_cb cb, void *arg,
                               wk_error *err)
{
    s3_storage *st = (s3_storage *)base;
    char folder[KEY_MAX], shown[SHOWN_MAX], what[SHOWN_MAX + 64];
    if (dir[0] != '\0' && wk_storage_check_path(dir, err) != 0)
        return -1;
    if (folder_key(st, dir, folder, err) != 0)
        return -1;
    shown_of(st, folder, shown);
    snprintf(what, sizeof(what), "could not list unfinished uploads in \"%s\"", shown);
    temps_ctx t = {st, time(NULL), cb, arg};
    return list_uploads(st, st->s3, folder, temp_upload, &t, what, err);
}

/* ---- the driver ------------------------------------------------------------------- */

static void s3_free(wk_storage *base)
{
    s3_storage *st = (s3_storage *)base;
    if (st == NULL)
        return;
    wk_s3_free(st->s3);
    free(st->bucket);
    free(st->prefix);
    free(st);
}

static const wk_storage_ops s3_ops = {
    .put_open = s3_put_open,
    .get = s3_get,
    .stat = s3_stat,
    .list = s3_list,
    .remove = s3_remove,
    .free = s3_free,
    .retarget = NULL, /* S3 cannot rename: the archive takes its two-pass path */
    .clean_temporaries = s3_clean_temporaries,
    .list_temporaries = s3_list_temporaries,
    .remove_many = s3_remove_many,
};

int wk_storage_s3_open(const wk_storage_s3_options *opt, wk_storage **out, wk_error *err)
{
    const char *prefix = opt->prefix != NULL ? opt->prefix : "";
    size_t plen = strlen(prefix);
    if (plen >= PREFIX_MAX)
        return wk_error_set(err, WK_ERR_CONFIG, "S3 prefix \"%.40s...\" is too long", prefix);
    if (plen > 0 && (prefix[0] == '/' || prefix[plen - 1] == '/'))
        return wk_error_set(err, WK_ERR_CONFIG, "S3 prefix \"%s\" must not begin or end with \"/\"",
                            prefix);
    if (opt->s3.bucket == NULL || opt->s3.bucket[0] == '\0')
        return wk_error_set(err, WK_ERR_CONFIG, "S3 bucket is not set");

    s3_storage *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return nomem(err);
    st->base.ops = &s3_ops;
    st->bucket = strdup(opt->s3.bucket);
    st->prefix = strdup(prefix);
    if (st->bucket == NULL || st->prefix == NULL) {
        s3_free(&st->base);
        return nomem(err);
    }
    st->part_size = opt->part_size > 0 ? opt->part_size : WK_S3_PART_SIZE_DEFAULT;
    st->parallel = opt->parallel > 0 ? opt->parallel : WK_S3_PARALLEL_DEFAULT;
    st->retry_timeout_ms = opt->s3.retry_timeout_ms;
    /* Test hook: smaller listing pages, to exercise continuation without 1000 objects. */
    const char *mk = getenv("WALKEEP_S3_LIST_MAX_KEYS");
    if (mk != NULL && mk[0] != '\0') {
        long v = strtol(mk, NULL, 10);
        if (v > 0 && v <= 1000)
            st->list_max_keys = (int)v;
    }
    if (wk_s3_open(&opt->s3, &st->s3, err) != 0) {
        s3_free(&st->base);
        return -1;
    }
    *out = &st->base;
    return 0;
}
