/* archive: the workers behind walkeep-archive and walkeep-fetch: one WAL file into the
 * repository (idempotent by plaintext fingerprint) and back out, never partial. */
#include "archive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cluster.h"
#include "crypt.h"
#include "log.h"
#include "pgversion.h"
#include "record.h"
#include "storage_posix.h"

#define HISTORY_MAX_BYTES (1024 * 1024)

void wk_archive_object_dir(const char *name, const wk_wal_name *parsed, char *buf, size_t size)
{
    if (parsed->kind == WK_WAL_HISTORY)
        snprintf(buf, size, "wal");
    else
        snprintf(buf, size, "wal/%.16s", name);
}

typedef struct find_state {
    const char *prefix;
    size_t prefix_len;
    int matches;
    bool conflict;
    wk_wal_object found;
    const char *dir;
    char strange[WK_OBJECT_PATH_MAX]; /* an entry under the name walkeep did not write */
} find_state;

void wk_archive_index_token(const wk_walrec_summary *index, char *buf, size_t size)
{
    int n = snprintf(buf, size, ".i");
    if (index->xacts > 0)
        n += snprintf(
            buf + n, size - (size_t)n, "_t%016" PRIx64 "-%016" PRIx64 "_x%08" PRIx32 "-%08" PRIx32,
            (uint64_t)index->time_min, (uint64_t)index->time_max, index->xid_min, index->xid_max);
    if (index->points > 0)
        n += snprintf(buf + n, size - (size_t)n, "_p%" PRIu32, index->points);
    if (index->crossing)
        snprintf(buf + n, size - (size_t)n, "_c");
}

/* n lower-case hex digits at p into *out. */
static bool parse_hex(const char *p, int n, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return true;
}

/* The time index after a fingerprint (wk_archive_index_token's form, fields in their
 * order): returns where the suffix starts, NULL when it is not one. */
static const char *parse_index_token(const char *p, wk_walrec_summary *out)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(p, ".i", 2) != 0)
        return NULL;
    p += 2;
    uint64_t a, b;
    if (strncmp(p, "_t", 2) == 0) {
        if (!parse_hex(p + 2, 16, &a) || p[18] != '-' || !parse_hex(p + 19, 16, &b))
            return NULL;
        out->time_min = (int64_t)a;
        out->time_max = (int64_t)b;
        p += 35;
        if (strncmp(p, "_x", 2) != 0 || !parse_hex(p + 2, 8, &a) || p[10] != '-' ||
            !parse_hex(p + 11, 8, &b))
            return NULL;
        out->xid_min = (uint32_t)a;
        out->xid_max = (uint32_t)b;
        out->xacts = 1; /* at least: the count is not kept */
        p += 19;
    }
    if (strncmp(p, "_p", 2) == 0) {
        char *end = NULL;
        if (p[2] < '1' || p[2] > '9')
            return NULL;
        unsigned long v = strtoul(p + 2, &end, 10);
        if (v > UINT32_MAX)
            return NULL;
        out->points = (uint32_t)v;
        p = end;
    }
    if (strncmp(p, "_c", 2) == 0) {
        out->crossing = true;
        p += 2;
    }
    return p;
}

wk_wal_entry wk_archive_parse_entry(const char *entry, char *name, wk_wal_object *obj)
{
    /* WAL file names hold no dash; a time index has dashes of its own. */
    const char *dash = strchr(entry, '-');
    wk_wal_name parsed;
    if (dash == NULL || (size_t)(dash - entry) >= WK_WAL_FILE_NAME_MAX)
        return WK_WAL_ENTRY_OTHER;
    snprintf(name, WK_WAL_FILE_NAME_MAX, "%.*s", (int)(dash - entry), entry);
    if (wk_wal_parse_name(name, &parsed, NULL) != 0)
        return WK_WAL_ENTRY_OTHER;
    const char *rest = dash + 1;
    if (strcmp(rest, "claim") == 0)
        return WK_WAL_ENTRY_CLAIM;
    char hex[WK_FINGERPRINT_HEX_LEN + 1];
    if (strlen(rest) <= WK_FINGERPRINT_HEX_LEN)
        return WK_WAL_ENTRY_OTHER;
    memcpy(hex, rest, WK_FINGERPRINT_HEX_LEN);
    hex[WK_FINGERPRINT_HEX_LEN] = '\0';
    obj->path[0] = '\0';
    const char *suffix = rest + WK_FINGERPRINT_HEX_LEN;
    obj->indexed = false;
    memset(&obj->index, 0, sizeof(obj->index));
    if (strncmp(suffix, ".i", 2) == 0) {
        /* Only segments carry a time index. */
        if (parsed.kind != WK_WAL_SEGMENT && parsed.kind != WK_WAL_PARTIAL)
            return WK_WAL_ENTRY_OTHER;
        suffix = parse_index_token(suffix, &obj->index);
        if (suffix == NULL)
            return WK_WAL_ENTRY_OTHER;
        obj->indexed = true;
    }
    if (wk_fingerprint_parse(hex, &obj->fingerprint) != 0 ||
        wk_repo_parse_suffix(suffix, &obj->alg, &obj->encrypted) != 0)
        return WK_WAL_ENTRY_OTHER;
    return WK_WAL_ENTRY_OBJECT;
}

/* Collects the objects of fs->prefix's WAL file name; anything else in the folder is
 * not ours to restore (claims included). */
static int find_entry(const char *entry, bool is_dir, uint64_t size, void *arg)
{
    find_state *fs = arg;
    char name[WK_WAL_FILE_NAME_MAX];
    wk_wal_object obj;
    (void)size;
    if (strncmp(entry, fs->prefix, fs->prefix_len) != 0)
        return 0;
    wk_wal_entry kind = is_dir ? WK_WAL_ENTRY_OTHER : wk_archive_parse_entry(entry, name, &obj);
    if (kind == WK_WAL_ENTRY_CLAIM)
        return 0;
    if (kind == WK_WAL_ENTRY_OTHER || strlen(name) + 1 != fs->prefix_len) {
        /* A folder or an unknown suffix under the name: never "not found" from here. */
        if (fs->strange[0] == '\0')
            snprintf(fs->strange, sizeof(fs->strange), "%s/%s", fs->dir, entry);
        return 0;
    }
    snprintf(obj.path, sizeof(obj.path), "%s/%s", fs->dir, entry);
    if (fs->matches > 0 && !wk_fingerprint_equal(&obj.fingerprint, &fs->found.fingerprint))
        fs->conflict = true;
    if (fs->matches == 0)
        fs->found = obj;
    fs->matches++;
    return 0;
}

static int any_entry(const char *entry, bool is_dir, uint64_t size, void *arg)
{
    (void)entry;
    (void)is_dir;
    (void)size;
    *(bool *)arg = true;
    return 1; /* one is enough */
}

/* "Not found" only when it is certain: the repository's wal/ holds something (an
 * initialised repository that lost its wal/ folder, or a repo setting that names the wrong
 * place, is an error, never an answer that ends recovery early). */
static int not_found(wk_repo *repo, const char *name, wk_error *err)
{
    bool any = false;
    if (wk_storage_list(repo->storage, "wal", "", any_entry, &any, err) != 0)
        return wk_error_prefix(err, "could not look for WAL file \"%s\" in repository", name);
    if (!any) {
        wk_error_set(err, WK_ERR_CORRUPT,
                     "repository \"%s\" holds no WAL at all (wal/ is empty "
                     "or missing), so WAL file \"%s\" cannot be told missing",
                     repo->location, name);
        wk_error_hint(err, "check that the repo setting names the repository archive_command "
                           "writes to; a repository that lost its wal/ folder cannot be recovered "
                           "from");
        return -1;
    }
    return wk_error_set(err, WK_ERR_NOTFOUND, "WAL file \"%s\" is not in the repository", name);
}

/* The one object of WAL file name: 0, or -1 with WK_ERR_NOTFOUND (certain only when
 * certain is set: see not_found), WK_ERR_CONFLICT or another error. */
static int find_object(wk_repo *repo, const char *name, bool certain, wk_wal_object *out,
                       wk_error *err)
{
    wk_wal_name parsed;
    char dir[64], prefix[WK_WAL_FILE_NAME_MAX + 2];
    if (wk_wal_parse_name(name, &parsed, err) != 0)
        return -1;
    wk_archive_object_dir(name, &parsed, dir, sizeof(dir));
    snprintf(prefix, sizeof(prefix), "%s-", name);
    find_state fs = {.prefix = prefix, .prefix_len = strlen(prefix), .dir = dir};
    if (wk_storage_list(repo->storage, dir, prefix, find_entry, &fs, err) != 0)
        return wk_error_prefix(err, "could not look for WAL file \"%s\" in repository", name);
    if (fs.conflict) {
        wk_error_set(err, WK_ERR_CONFLICT,
                     "repository holds several different copies of WAL file \"%s\"", name);
        wk_error_hint(err, "run \"walkeep verify\"; another cluster may be archiving into this "
                           "repository");
        return -1;
    }
    if (fs.strange[0] != '\0') {
        wk_error_set(err, WK_ERR_CORRUPT,
                     "repository holds \"%s\" under the name of WAL file \"%s\", which walkeep "
                     "did not write",
                     fs.strange, name);
        wk_error_hint(err, "run \"walkeep verify\"; move that entry out of the repository");
        return -1;
    }
    if (fs.matches == 0 && certain)
        return not_found(repo, name, err);
    if (fs.matches == 0)
        return wk_error_set(err, WK_ERR_NOTFOUND, "WAL file \"%s\" is not in the repository", name);
    *out = fs.found;
    return 0;
}

int wk_archive_find(wk_repo *repo, const char *name, wk_wal_object *out, wk_error *err)
{
    return find_object(repo, name, true, out, err);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash == NULL ? path : slash + 1;
}

/* Checks a segment (or partial segment) before it is archived and returns the cluster
 * identity its first page header carries. */
static int check_segment(int fd, const char *path, const wk_wal_name *parsed, uint64_t size,
                         wk_repo_meta *identity, wk_error *err)
{
    uint8_t header[WK_WAL_LONG_HEADER_SIZE];
    ssize_t n = pread(fd, header, sizeof(header), 0);
    if (n < 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not read file \"%s\"", path);
    if ((size_t)n < sizeof(header))
        return wk_error_set(err, WK_ERR_CORRUPT,
                            "file \"%s\" is too short to be a WAL segment (%" PRIu64 " bytes)",
                            path, size);
    wk_wal_header hdr;
    if (wk_wal_parse_header(header, sizeof(header), &hdr, err) != 0) {
        if (err != NULL && err->code == WK_ERR_CLUSTER)
            return wk_error_prefix(err, "file \"%s\" cannot be archived", path);
        return wk_error_prefix(err, "file \"%s\" is not a valid WAL segment", path);
    }
    if (!wk_pg_major_supported(hdr.pg_version)) {
        /* The message is built only for a refusal: this runs for every segment. */
        char what[PATH_MAX + 32];
        snprintf(what, sizeof(what), "WAL segment \"%s\"", path);
        return wk_pg_major_check(hdr.pg_version, what, err);
    }
    if (size != hdr.seg_size)
        return wk_error_set(err, WK_ERR_CORRUPT,
                            "file \"%s\" has %" PRIu64
                            " bytes, but its WAL segment size is %" PRIu32,
                            path, size, hdr.seg_size);
    if (wk_wal_name_check_size(parsed, hdr.seg_size, err) != 0)
        return -1;
    char why[256];
    if (!wk_wal_header_fits(&hdr, parsed, why, sizeof(why))) {
        wk_error_set(err, WK_ERR_CORRUPT, "file \"%s\" does not hold the WAL its name says", path);
        wk_error_detail(err, "%s", why);
        return -1;
    }
    memset(identity, 0, sizeof(*identity));
    identity->system_identifier = hdr.system_identifier;
    identity->seg_size = hdr.seg_size;
    identity->pg_version = hdr.pg_version;
    return 0;
}

/* A history file must parse as one; a .backup file must at least be text we expect. */
static int check_text_file(int fd, const char *path, const wk_wal_name *parsed, uint64_t size,
                           wk_error *err)
{
    if (size == 0)
        return wk_error_set(err, WK_ERR_CORRUPT, "file \"%s\" is empty", path);
    if (size > HISTORY_MAX_BYTES)
        return wk_error_set(err, WK_ERR_CORRUPT, "file \"%s\" is too large (%" PRIu64 " bytes)",
                            path, size);
    char *text = malloc(size + 1);
    int rc = -1;
    if (text == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    ssize_t n = pread(fd, text, size, 0);
    if (n < 0) {
        wk_error_sys(err, WK_ERR_IO, errno, "could not read file \"%s\"", path);
        goto out;
    }
    if ((uint64_t)n != size) {
        wk_error_set(err, WK_ERR_IO, "file \"%s\" changed while it was read", path);
        goto out;
    }
    text[size] = '\0';
    if (parsed->kind == WK_WAL_HISTORY) {
        wk_wal_history_entry *entries = NULL;
        size_t count = 0;
        if (wk_wal_parse_history(text, size, parsed->tli, &entries, &count, err) != 0) {
            wk_error_prefix(err, "file \"%s\" is not a valid timeline history file", path);
            goto out;
        }
        free(entries);
    } else if (strncmp(text, "START WAL LOCATION:", 19) != 0) {
        wk_error_set(err, WK_ERR_CORRUPT, "file \"%s\" is not a backup history file", path);
        goto out;
    }
    rc = 0;
out:
    free(text);
    return rc;
}

/* The refusal of a file whose name holds other content (stored, or claimed). */
static int conflict(wk_repo *repo, const char *name, const wk_fingerprint *stored,
                    const wk_fingerprint *ours, const char *what, wk_error *err)
{
    char stored_hex[WK_FINGERPRINT_HEX_LEN + 1], ours_hex[WK_FINGERPRINT_HEX_LEN + 1];
    wk_fingerprint_hex(stored, stored_hex);
    wk_fingerprint_hex(ours, ours_hex);
    wk_error_set(err, WK_ERR_CONFLICT, "WAL file \"%s\" is already archived with different content",
                 name);
    wk_error_detail(err, "%s fingerprint %s, this file's %s; the stored copy is kept", what,
                    stored_hex, ours_hex);
    wk_error_hint(err, "check that no other cluster archives into repository \"%s\"",
                  repo->location);
    return -1;
}

/* Whether the stored object decodes whole to its fingerprint: 0, or -1 (err says why;
 * WK_ERR_CORRUPT when it is damaged). */
static int check_stored(wk_repo *repo, const wk_wal_object *obj, wk_error *err)
{
    wk_stage *chain = wk_stage_fingerprint_new(NULL, NULL, err);
    if (chain != NULL)
        chain = wk_repo_decoder_new(repo, obj->path, obj->alg, &obj->fingerprint, chain, err);
    if (chain == NULL)
        return -1;
    int rc = wk_storage_get(repo->storage, obj->path, chain, err) == 0 &&
                     wk_stage_finish(chain, err) == 0
                 ? 0
                 : -1;
    wk_stage_free(chain);
    return rc;
}

/* Writes the file at fd over the damaged object at obj->path (same name, so the same
 * content: replaced atomically, never removed first). */
static int replace_stored(wk_repo *repo, int fd, const char *path, const wk_wal_object *obj,
                          const wk_stream_summary *summary, wk_push_result *result, wk_error *err)
{
    wk_stage *sink = NULL;
    int rc = -1;
    if (lseek(fd, 0, SEEK_SET) != 0) {
        wk_error_sys(err, WK_ERR_IO, errno, "could not read file \"%s\"", path);
        return -1;
    }
    /* Written in the codec its name says, whatever the configured one is now. */
    wk_compress compress = repo->compress;
    int level = repo->compress_level;
    repo->compress = obj->alg;
    if (obj->alg != compress)
        repo->compress_level = WK_COMPRESS_LEVEL_DEFAULT;
    if (wk_repo_put_open(repo, obj->path, 0, &summary->fingerprint, NULL, &result->stored_bytes,
                         &sink, err) == 0 &&
        wk_stream_pump_fd(fd, sink, NULL, err) == 0 && wk_stage_finish(sink, err) == 0)
        rc = 0;
    repo->compress = compress;
    repo->compress_level = level;
    if (rc != 0)
        wk_error_prefix(err, "could not replace the damaged object \"%s\"", obj->path);
    wk_stage_free(sink);
    return rc;
}

/* A file of this name is stored already: the same fingerprint is success (PostgreSQL
 * retries after crashes) once the stored object is proven sound (a damaged one is replaced
 * by this good copy, with a warning, before PostgreSQL may recycle its own); another
 * fingerprint is a conflict that leaves the stored copy alone. */
static int compare_with_stored(wk_repo *repo, int fd, const char *path, const char *name,
                               const wk_wal_object *existing, wk_push_result *result, wk_error *err)
{
    wk_stream_summary summary;
    snprintf(result->object, sizeof(result->object), "%s", existing->path);
    if (wk_stream_fingerprint_fd(fd, &summary, err) != 0)
        return wk_error_prefix(err, "could not read file \"%s\"", path);
    result->bytes = summary.bytes;
    if (!wk_fingerprint_equal(&existing->fingerprint, &summary.fingerprint))
        return conflict(repo, name, &existing->fingerprint, &summary.fingerprint, "stored", err);
    if (check_stored(repo, existing, err) == 0) {
        result->already_archived = true;
        return 0;
    }
    if (err->code != WK_ERR_CORRUPT)
        return wk_error_prefix(err, "could not check the stored copy of \"%s\"", name);
    wk_notice(WK_LOG_WARNING,
              "the stored copy \"%s\" of WAL file \"%s\" is damaged (%s): "
              "replacing it with this file's",
              existing->path, name, err->message);
    wk_error_clear(err);
    return replace_stored(repo, fd, path, existing, &summary, result, err);
}

/* Claims WAL file name for the content of fingerprint fp, before its object is committed:
 * <dir>/<name>-claim, created only where none exists (docs/format.md, "Claims"), holds the
 * fingerprint of the one content that may be stored under the name. Whatever the timing
 * of writers of different content, one claim is created and every other writer finds it
 * and gets the conflict; a writer of the same content (a retry after a crash between
 * claim and commit) finds its own claim and goes on. */
static int claim(wk_repo *repo, const char *dir, const char *name, const wk_fingerprint *fp,
                 wk_error *err)
{
    char path[WK_OBJECT_PATH_MAX], text[WK_FINGERPRINT_HEX_LEN + 2];
    snprintf(path, sizeof(path), "%s/%s-claim", dir, name);
    wk_fingerprint_hex(fp, text);
    text[WK_FINGERPRINT_HEX_LEN] = '\n';
    text[WK_FINGERPRINT_HEX_LEN + 1] = '\0';
    if (wk_storage_put_bytes(repo->storage, path, WK_PUT_NOREPLACE, text,
                             WK_FINGERPRINT_HEX_LEN + 1, err) == 0)
        return 0;
    if (err->code != WK_ERR_EXISTS)
        return -1;
    wk_error_clear(err);
    uint8_t *stored = NULL;
    size_t len = 0;
    if (wk_record_read(repo->storage, path, &stored, &len, err) != 0)
        return -1;
    char hex[WK_FINGERPRINT_HEX_LEN + 1];
    wk_fingerprint claimed;
    bool valid = len == WK_FINGERPRINT_HEX_LEN + 1 && stored[WK_FINGERPRINT_HEX_LEN] == '\n';
    if (valid) {
        memcpy(hex, stored, WK_FINGERPRINT_HEX_LEN);
        hex[WK_FINGERPRINT_HEX_LEN] = '\0';
        valid = wk_fingerprint_parse(hex, &claimed) == 0;
    }
    free(stored);
    if (!valid) {
        wk_error_set(err, WK_ERR_CORRUPT, "claim \"%s\" of WAL file \"%s\" is damaged", path, name);
        wk_error_hint(err, "run \"walkeep verify\"; nothing was stored under the name");
        return -1;
    }
    if (wk_fingerprint_equal(&claimed, fp))
        return 0;
    return conflict(repo, name, &claimed, fp, "claimed", err);
}

/* The first of two passes over a new file: its fingerprint, and (reader set) its records. */
static int first_pass(int fd, wk_walrec_reader *reader, wk_stream_summary *summary, wk_error *err)
{
    wk_stage *chain = wk_stage_fingerprint_new(NULL, summary, err);
    if (reader != NULL)
        chain = wk_walrec_stage_new(chain, reader, err);
    int rc = chain != NULL && wk_stream_pump_fd(fd, chain, NULL, err) == 0 &&
                     wk_stage_finish(chain, err) == 0 && lseek(fd, 0, SEEK_SET) == 0
                 ? 0
                 : -1;
    wk_stage_free(chain);
    return rc;
}

/* The name of a new object: "<dir>/<name>-<fingerprint>[<time index>]<suffix>" into out
 * (WK_OBJECT_PATH_MAX bytes); the index from reader, which has read the whole segment. */
static void object_name(const wk_repo *repo, const char *dir, const char *name,
                        const wk_fingerprint *fp, const wk_walrec_reader *reader, char *out)
{
    char hex[WK_FINGERPRINT_HEX_LEN + 1], token[128] = "";
    wk_fingerprint_hex(fp, hex);
    if (reader != NULL) {
        wk_walrec_summary index;
        wk_walrec_summary_get(reader, &index);
        wk_archive_index_token(&index, token, sizeof(token));
    }
    snprintf(out, WK_OBJECT_PATH_MAX, "%s/%s-%s%s%s", dir, name, hex, token, repo->suffix);
}

/* Stores a file no object holds yet. The object is named after the fingerprint of its
 * plaintext and, for a segment, the time index of its records (read in the same pass).
 * Where the storage can rename a sink before it commits, one pass computes both while
 * compressing and names the object at the end; elsewhere a first pass computes them, and
 * the second checks the fingerprint again before committing. */
static int store_new(wk_repo *repo, int fd, const char *path, const char *name,
                     const wk_wal_name *parsed, uint64_t size, wk_push_result *result,
                     wk_error *err)
{
    bool one_pass = wk_storage_can_retarget(repo->storage);
    wk_stream_summary summary = {0};
    wk_stage *sink = NULL, *fingerprint = NULL;
    wk_walrec_reader *reader = NULL;
    char dir[64];
    int rc = -1;

    wk_archive_object_dir(name, parsed, dir, sizeof(dir));
    if (parsed->kind == WK_WAL_SEGMENT || parsed->kind == WK_WAL_PARTIAL) {
        /* check_segment proved size to be the segment size. */
        reader =
            wk_walrec_new(wk_wal_name_segno(parsed, (uint32_t)size), (uint32_t)size, NULL, NULL);
        if (reader == NULL) {
            wk_error_set(err, WK_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    if (one_pass) {
        /* A provisional name in the right folder; the real one is set before commit. */
        snprintf(result->object, sizeof(result->object), "%s/%s", dir, name);
    } else {
        if (first_pass(fd, reader, &summary, err) != 0) {
            wk_error_prefix(err, "could not read file \"%s\"", path);
            goto out;
        }
        object_name(repo, dir, name, &summary.fingerprint, reader, result->object);
    }
    if (wk_repo_put_open(repo, result->object, WK_PUT_NOREPLACE,
                         one_pass ? NULL : &summary.fingerprint, NULL, &result->stored_bytes, &sink,
                         err) != 0)
        goto fail;
    fingerprint = sink;
    if (one_pass && reader != NULL && (sink = wk_walrec_stage_new(sink, reader, err)) == NULL)
        goto fail;
    if (wk_stream_pump_fd(fd, sink, NULL, err) != 0)
        goto fail;
    if (one_pass) {
        wk_stage_fingerprint_peek(fingerprint, &summary);
        object_name(repo, dir, name, &summary.fingerprint, reader, result->object);
        if (wk_storage_retarget(repo->storage, wk_stage_sink_of(sink), result->object, err) != 0)
            goto fail;
    }
    if (summary.bytes != size) {
        wk_error_set(err, WK_ERR_IO, "file \"%s\" changed size while it was read", path);
        goto out;
    }
    result->bytes = summary.bytes;
    if (claim(repo, dir, name, &summary.fingerprint, err) != 0) {
        rc = -1;
        goto out; /* wk_stage_free aborts the object: nothing of ours is visible */
    }
    if (wk_stage_finish(sink, err) != 0) {
        if (err->code != WK_ERR_EXISTS)
            goto fail;
        /* A concurrent push stored the same fingerprint, so the same content. */
        result->already_archived = true;
        result->stored_bytes = 0;
    }
    rc = 0;
    goto out;
fail:
    wk_error_prefix(err, "could not archive \"%s\"", path);
out:
    wk_stage_free(sink);
    wk_walrec_free(reader);
    return rc;
}

/* The identity of the cluster whose pg_wal holds the file at path (archive_command's %p,
 * "pg_wal/<name>" in the data directory): 0, or -1 when path is not in a data
 * directory's pg_wal. */
static int identity_of_data_directory(const char *path, wk_repo_meta *identity)
{
    char dir[PATH_MAX];
    if (realpath(path, dir) == NULL)
        return -1;
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0'; /* the folder holding the file */
    slash = strrchr(dir, '/');
    if (slash == NULL || strcmp(slash + 1, "pg_wal") != 0)
        return -1;
    *slash = '\0'; /* the data directory */
    wk_error ignored = {0};
    return wk_cluster_read_identity(dir[0] != '\0' ? dir : "/", identity, &ignored);
}

int wk_archive_push(wk_repo *repo, const char *path, wk_push_result *result, wk_error *err)
{
    const char *name = base_name(path);
    wk_wal_name parsed;
    wk_repo_meta identity, meta;
    wk_wal_object existing;
    int fd = -1, rc = -1;
    struct stat st;

    memset(result, 0, sizeof(*result));
    if (wk_wal_parse_name(name, &parsed, err) != 0)
        return wk_error_prefix(err, "refusing to archive \"%s\"", path);
    /* O_NONBLOCK: a FIFO under a WAL name must be refused, not waited on. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not open file \"%s\"", path);
    if (fstat(fd, &st) != 0) {
        wk_error_sys(err, WK_ERR_IO, errno, "could not stat file \"%s\"", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        wk_error_set(err, WK_ERR_USAGE, "\"%s\" is not a regular file", path);
        goto out;
    }
    bool is_segment = parsed.kind == WK_WAL_SEGMENT || parsed.kind == WK_WAL_PARTIAL;
    if (is_segment) {
        if (check_segment(fd, path, &parsed, (uint64_t)st.st_size, &identity, err) != 0)
            goto out;
    } else if (check_text_file(fd, path, &parsed, (uint64_t)st.st_size, err) != 0) {
        goto out;
    }
    int opened = wk_repo_open_meta(repo, is_segment ? &identity : NULL, &meta,
                                   &result->initialized_repo, err);
    if (opened != 0 && !is_segment && err->code == WK_ERR_NOTFOUND &&
        identity_of_data_directory(path, &identity) == 0) {
        /* A promoted server archives its history file before any segment: a new repository
         * takes its identity from the data directory the file lies in. */
        wk_error_clear(err);
        opened = wk_repo_open_meta(repo, &identity, &meta, &result->initialized_repo, err);
    }
    if (opened != 0) {
        if (is_segment)
            wk_error_prefix(err, "refusing to archive \"%s\"", path);
        goto out;
    }
    if (!is_segment && wk_wal_name_check_size(&parsed, meta.seg_size, err) != 0)
        goto out;

    if (find_object(repo, name, false, &existing, err) == 0)
        rc = compare_with_stored(repo, fd, path, name, &existing, result, err);
    else if (err->code == WK_ERR_NOTFOUND)
        rc = store_new(repo, fd, path, name, &parsed, (uint64_t)st.st_size, result, err);
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

static int fetch_once(wk_repo *repo, const char *name, const char *dest, wk_fetch_result *result,
                      wk_error *err)
{
    wk_repo_meta meta;
    wk_wal_object obj;
    wk_storage *dest_dir = NULL;
    wk_stage *chain = NULL;
    char folder[4096];
    int rc = -1;

    if (wk_repo_open_meta(repo, NULL, &meta, NULL, err) != 0) {
        /* A repository without metadata is a configuration problem, never "not found". */
        if (err->code == WK_ERR_NOTFOUND)
            err->code = WK_ERR_CONFIG;
        return -1;
    }
    if (wk_archive_find(repo, name, &obj, err) != 0)
        return -1;
    snprintf(result->object, sizeof(result->object), "%s", obj.path);
    if (obj.encrypted != (repo->key != NULL))
        return wk_error_set(err, WK_ERR_CORRUPT, "object \"%s\" is %s but the repository is %s",
                            obj.path, obj.encrypted ? "encrypted" : "not encrypted",
                            repo->key != NULL ? "encrypted" : "not encrypted");

    const char *slash = strrchr(dest, '/');
    if (slash == NULL)
        snprintf(folder, sizeof(folder), ".");
    else if (slash == dest)
        snprintf(folder, sizeof(folder), "/");
    else
        snprintf(folder, sizeof(folder), "%.*s", (int)(slash - dest), dest);
    if (wk_storage_posix_open(folder, false, &dest_dir, err) == 0) {
        /* Temporaries of earlier fetches killed mid-write: nothing else removes them. */
        wk_error ignored = {0};
        wk_storage_posix_clean_dead_writers(dest_dir, "", NULL, &ignored);
    }
    if (dest_dir == NULL ||
        wk_storage_put_open(dest_dir, base_name(dest), WK_PUT_NOSYNC, &chain, err) != 0) {
        /* The destination's folder missing is our failure, not a missing WAL file. */
        if (err->code == WK_ERR_NOTFOUND)
            err->code = WK_ERR_IO;
        wk_error_prefix(err, "could not create \"%s\"", dest);
        goto out;
    }
    chain = wk_stage_count_new(chain, &result->bytes, err);
    /* What the object decodes to must be the file asked for, or %p never appears. */
    chain =
        wk_wal_check_stage_new(chain, name, obj.path, meta.system_identifier, meta.seg_size, err);
    if (chain != NULL)
        chain = wk_repo_decoder_new(repo, obj.path, obj.alg, &obj.fingerprint, chain, err);
    if (chain != NULL)
        chain = wk_stage_count_new(chain, &result->stored_bytes, err);
    if (chain == NULL)
        goto out;
    if (wk_storage_get(repo->storage, obj.path, chain, err) != 0 ||
        wk_stage_finish(chain, err) != 0) {
        /* Listed a moment ago, gone now (removed meanwhile): look again, never answer
         * "not found" from here, which would end recovery. */
        if (err->code == WK_ERR_NOTFOUND)
            err->code = WK_ERR_TRANSIENT;
        wk_error_prefix(err, "could not restore \"%s\" from \"%s\"", name, obj.path);
        goto out;
    }
    rc = 0;
out:
    wk_stage_free(chain);
    wk_storage_free(dest_dir);
    return rc;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wk_archive_fetch(wk_repo *repo, const char *name, const char *dest, int retry_timeout_ms,
                     wk_fetch_result *result, wk_error *err)
{
    wk_wal_name parsed;
    int64_t deadline = now_ms() + retry_timeout_ms;
    int64_t delay_ms = 100;

    memset(result, 0, sizeof(*result));
    if (wk_wal_parse_name(name, &parsed, err) != 0)
        return -1;
    for (;;) {
        result->attempts++;
        if (fetch_once(repo, name, dest, result, err) == 0)
            return 0;
        if (err->code != WK_ERR_TRANSIENT)
            return -1;
        /* Exponential backoff with jitter, never past the deadline. */
        wk_crypt_init(NULL);
        int64_t wait = delay_ms / 2 + (int64_t)randombytes_uniform((uint32_t)(delay_ms / 2 + 1));
        if (now_ms() + wait > deadline)
            return wk_error_prefix(err, "gave up after %d attempts", result->attempts);
        struct timespec ts = {.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        delay_ms = delay_ms * 2 > 5000 ? 5000 : delay_ms * 2;
    }
}

/* ---- the segment index ---------------------------------------------------------- */

static wk_wal_timeline *index_timeline(wk_wal_index *index, uint32_t tli)
{
    for (size_t i = 0; i < index->count; i++)
        if (index->timelines[i].tli == tli)
            return &index->timelines[i];
    wk_wal_timeline *grown = realloc(index->timelines, (index->count + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    index->timelines = grown;
    wk_wal_timeline *t = &index->timelines[index->count++];
    memset(t, 0, sizeof(*t));
    t->tli = tli;
    return t;
}

typedef struct index_state {
    wk_wal_index *index;
    const char *folder; /* the wal/ sub-folder being listed, NULL for wal/ itself */
    char (*folders)[24];
    size_t folder_count;
    bool nomem;
} index_state;

static int add_segment(index_state *st, uint32_t tli, uint64_t segno, const wk_wal_object *obj)
{
    wk_wal_timeline *t = index_timeline(st->index, tli);
    if (t == NULL)
        return -1;
    if (t->count % 64 == 0) {
        uint64_t *grown = realloc(t->segnos, (t->count + 64) * sizeof(*grown));
        if (grown == NULL)
            return -1;
        t->segnos = grown;
        wk_wal_segment_index *more = realloc(t->indexes, (t->count + 64) * sizeof(*more));
        if (more == NULL)
            return -1;
        t->indexes = more;
    }
    t->indexes[t->count] = (wk_wal_segment_index){.indexed = obj->indexed, .index = obj->index};
    t->segnos[t->count++] = segno;
    return 0;
}

static int index_entry(const char *entry, bool is_dir, uint64_t size, void *arg)
{
    index_state *st = arg;
    wk_wal_name parsed;
    char name[WK_WAL_FILE_NAME_MAX];
    (void)size;
    if (st->folder == NULL && is_dir) {
        if (strlen(entry) != 16 || strspn(entry, "0123456789ABCDEF") != 16)
            return 0;
        void *grown = realloc(st->folders, (st->folder_count + 1) * sizeof(*st->folders));
        if (grown == NULL) {
            st->nomem = true;
            return 1;
        }
        st->folders = grown;
        snprintf(st->folders[st->folder_count++], sizeof(*st->folders), "%s", entry);
        return 0;
    }
    wk_wal_object obj;
    if (is_dir || wk_archive_parse_entry(entry, name, &obj) != WK_WAL_ENTRY_OBJECT ||
        wk_wal_parse_name(name, &parsed, NULL) != 0)
        return 0; /* a claim, or not ours: only objects count as archived */
    if (parsed.kind == WK_WAL_HISTORY) {
        wk_wal_timeline *t = index_timeline(st->index, parsed.tli);
        if (t == NULL) {
            st->nomem = true;
            return 1;
        }
        t->has_history = true;
    } else if (parsed.kind == WK_WAL_SEGMENT) {
        if (add_segment(st, parsed.tli, wk_wal_name_segno(&parsed, st->index->seg_size), &obj) !=
            0) {
            st->nomem = true;
            return 1;
        }
    }
    return 0;
}

static int compare_segno(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int compare_timeline(const void *a, const void *b)
{
    const wk_wal_timeline *x = a, *y = b;
    return x->tli < y->tli ? -1 : x->tli > y->tli;
}

/* A segment and its index, sorted together. */
typedef struct listed_segment {
    uint64_t segno;
    wk_wal_segment_index index;
} listed_segment;

static int compare_listed(const void *a, const void *b)
{
    const listed_segment *x = a, *y = b;
    if (x->segno != y->segno)
        return x->segno < y->segno ? -1 : 1;
    return (int)y->index.indexed - (int)x->index.indexed; /* an indexed copy first */
}

/* Sorts a timeline's segments, keeping one entry per segment (an indexed one where a
 * segment was stored under both forms of name). */
static int sort_segments(wk_wal_timeline *t)
{
    listed_segment *all = malloc(t->count * sizeof(*all));
    if (all == NULL)
        return -1;
    for (size_t j = 0; j < t->count; j++)
        all[j] = (listed_segment){t->segnos[j], t->indexes[j]};
    qsort(all, t->count, sizeof(*all), compare_listed);
    size_t kept = 0;
    for (size_t j = 0; j < t->count; j++) {
        if (kept > 0 && t->segnos[kept - 1] == all[j].segno)
            continue;
        t->segnos[kept] = all[j].segno;
        t->indexes[kept++] = all[j].index;
    }
    t->count = kept;
    free(all);
    return 0;
}

int wk_archive_index(wk_repo *repo, uint32_t seg_size, wk_wal_index *index, wk_error *err)
{
    index_state st = {.index = index};
    int rc = -1;
    memset(index, 0, sizeof(*index));
    index->seg_size = seg_size;
    if (wk_storage_list(repo->storage, "wal", "", index_entry, &st, err) != 0)
        goto out;
    for (size_t i = 0; i < st.folder_count && !st.nomem; i++) {
        char dir[32];
        snprintf(dir, sizeof(dir), "wal/%s", st.folders[i]);
        st.folder = dir;
        if (wk_storage_list(repo->storage, dir, "", index_entry, &st, err) != 0)
            goto out;
    }
    if (st.nomem) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (index->count > 0)
        if (index->count > 1)
            qsort(index->timelines, index->count, sizeof(*index->timelines), compare_timeline);
    for (size_t i = 0; i < index->count; i++) {
        wk_wal_timeline *t = &index->timelines[i];
        if (t->count == 0)
            continue; /* a history file without segments */
        if (sort_segments(t) != 0) {
            wk_error_set(err, WK_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    free(st.folders);
    if (rc != 0)
        wk_archive_index_free(index);
    return rc;
}

void wk_archive_index_free(wk_wal_index *index)
{
    if (index == NULL)
        return;
    for (size_t i = 0; i < index->count; i++) {
        free(index->timelines[i].segnos);
        free(index->timelines[i].indexes);
    }
    free(index->timelines);
    index->timelines = NULL;
    index->count = 0;
}

const wk_wal_timeline *wk_archive_index_timeline(const wk_wal_index *index, uint32_t tli)
{
    for (size_t i = 0; i < index->count; i++)
        if (index->timelines[i].tli == tli)
            return &index->timelines[i];
    return NULL;
}

bool wk_archive_index_has(const wk_wal_index *index, uint32_t tli, uint64_t segno)
{
    const wk_wal_timeline *t = wk_archive_index_timeline(index, tli);
    return t != NULL && t->count > 0 &&
           bsearch(&segno, t->segnos, t->count, sizeof(segno), compare_segno) != NULL;
}

const wk_wal_segment_index *wk_archive_index_of(const wk_wal_index *index, uint32_t tli,
                                                uint64_t segno)
{
    const wk_wal_timeline *t = wk_archive_index_timeline(index, tli);
    if (t == NULL || t->count == 0 || t->indexes == NULL)
        return NULL;
    const uint64_t *found = bsearch(&segno, t->segnos, t->count, sizeof(segno), compare_segno);
    return found == NULL ? NULL : &t->indexes[found - t->segnos];
}

int wk_archive_read_small(wk_repo *repo, const char *name, char **text, size_t *len, wk_error *err)
{
    wk_wal_object obj;
    uint8_t *buf = NULL;
    int rc = -1;
    if (wk_archive_find(repo, name, &obj, err) != 0)
        return -1;
    wk_stage *chain = wk_stage_memory_new(HISTORY_MAX_BYTES, &buf, len, err);
    if (chain != NULL)
        chain = wk_repo_decoder_new(repo, obj.path, obj.alg, &obj.fingerprint, chain, err);
    if (chain == NULL)
        return -1;
    if (wk_storage_get(repo->storage, obj.path, chain, err) != 0 ||
        wk_stage_finish(chain, err) != 0) {
        if (err->code == WK_ERR_NOTFOUND)
            err->code = WK_ERR_IO;
        wk_error_prefix(err, "could not read \"%s\"", obj.path);
        goto out;
    }
    *text = (char *)buf;
    buf = NULL;
    rc = 0;
out:
    wk_stage_free(chain);
    free(buf);
    return rc;
}

int wk_archive_push_histories(wk_repo *repo, const char *waldir, int *stored, wk_error *err)
{
    *stored = 0;
    DIR *dir = opendir(waldir);
    if (dir == NULL)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not open folder \"%s\"", waldir);
    int rc = 0;
    for (struct dirent *de = readdir(dir); de != NULL && rc == 0; de = readdir(dir)) {
        wk_wal_name parsed;
        if (wk_wal_parse_name(de->d_name, &parsed, NULL) != 0 || parsed.kind != WK_WAL_HISTORY)
            continue;
        char path[PATH_MAX + 300];
        wk_push_result result;
        snprintf(path, sizeof(path), "%s/%s", waldir, de->d_name);
        rc = wk_archive_push(repo, path, &result, err);
        if (rc == 0 && !result.already_archived)
            (*stored)++;
    }
    closedir(dir);
    return rc;
}
