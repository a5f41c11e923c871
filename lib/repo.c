/* repo: one cluster's repository over a storage backend: metadata, identity and key
 * checks, and the encode (fingerprint, compress, encrypt) / decode pipelines. */
#include "repo.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "codec.h"
#include "keyring.h"
#include "pgversion.h"
#include "record.h"
#include "storage_posix.h"
#include "storage_s3.h"
#include "wal.h"

#define META_MAX_BYTES 4096

/* A bucket name as S3 allows it: 3 to 63 lower-case letters, digits, '.' and '-'. */
static bool valid_bucket(const char *name, size_t len)
{
    if (len < 3 || len > 63)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]) &&
            name[i] != '.' && name[i] != '-')
            return false;
    return true;
}

/* Opens the S3 driver on "s3://bucket[/prefix]": the bucket must exist already (walkeep
 * never creates buckets); the prefix is a folder inside it. */
static int open_s3(const wk_config *cfg, wk_storage **out, wk_error *err)
{
    const char *spec = cfg->repo + 5;
    const char *slash = strchr(spec, '/');
    size_t bucket_len = slash != NULL ? (size_t)(slash - spec) : strlen(spec);
    char bucket[64], prefix[512];
    if (!valid_bucket(spec, bucket_len)) {
        wk_error_set(err, WK_ERR_CONFIG, "invalid S3 repository \"%s\": bad bucket name",
                     cfg->repo);
        wk_error_hint(err, "write it as s3://bucket/prefix, the bucket name in lower case "
                           "(3 to 63 letters, digits, dots and hyphens)");
        return -1;
    }
    snprintf(bucket, sizeof(bucket), "%.*s", (int)bucket_len, spec);
    const char *p = slash != NULL ? slash + 1 : "";
    size_t plen = strlen(p);
    while (plen > 0 && p[plen - 1] == '/')
        plen--;
    if (plen >= sizeof(prefix)) {
        wk_error_set(err, WK_ERR_CONFIG, "invalid S3 repository \"%s\": prefix too long",
                     cfg->repo);
        return -1;
    }
    snprintf(prefix, sizeof(prefix), "%.*s", (int)plen, p);
    if (prefix[0] != '\0' && wk_storage_check_path(prefix, err) != 0) {
        wk_error_set(err, WK_ERR_CONFIG, "invalid S3 repository \"%s\": bad prefix", cfg->repo);
        wk_error_hint(err, "the prefix is a folder path: no empty, \".\" or \"..\" components");
        return -1;
    }
    bool host_style = cfg->s3_uri_style != NULL ? strcmp(cfg->s3_uri_style, "host") == 0
                                                : cfg->s3_endpoint == NULL;
    wk_storage_s3_options opt = {
        .s3 = {.endpoint = cfg->s3_endpoint,
               .region = cfg->s3_region,
               .bucket = bucket,
               .host_style = host_style,
               .access_key = cfg->s3_access_key,
               .secret_key = cfg->s3_secret_key,
               .ca_file = cfg->s3_ca_file,
               .retry_timeout_ms = cfg->retry_timeout_ms,
               .stall_timeout_ms = cfg->s3_stall_timeout_ms},
        .prefix = prefix,
        .part_size = cfg->s3_part_size > 0 ? (size_t)cfg->s3_part_size : WK_S3_PART_SIZE_DEFAULT,
        .parallel = cfg->s3_parallel > 0 ? cfg->s3_parallel : WK_S3_PARALLEL_DEFAULT,
    };
    return wk_storage_s3_open(&opt, out, err);
}

int wk_repo_open(const wk_config *cfg, bool create, wk_repo **out, wk_error *err)
{
    wk_repo *repo = NULL;
    if (cfg->repo == NULL) {
        wk_error_set(err, WK_ERR_CONFIG, "no repository configured");
        wk_error_hint(err, "set \"repo\" in the configuration file or pass --repo=DIR");
        return -1;
    }
    bool s3 = strncmp(cfg->repo, "s3://", 5) == 0;
    if (!s3 && cfg->repo[0] != '/') {
        wk_error_set(err, WK_ERR_CONFIG, "repository path \"%s\" is not absolute", cfg->repo);
        wk_error_hint(err, "archive_command and restore_command run in the data directory; "
                           "give the repository as an absolute path");
        return -1;
    }
    repo = calloc(1, sizeof(*repo));
    if (repo == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    repo->compress = cfg->compress;
    repo->compress_level = cfg->compress_level;
    const char *extension = wk_codec_extension(cfg->compress);
    if (extension == NULL) {
        wk_error_set(err, WK_ERR_CONFIG, "invalid compression");
        goto fail;
    }
    snprintf(repo->suffix, sizeof(repo->suffix), ".%s%s", extension,
             cfg->encrypt_key_file != NULL ? ".enc" : "");
    repo->location = strdup(cfg->repo);
    if (repo->location == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (cfg->compress_level != WK_COMPRESS_LEVEL_DEFAULT &&
        !wk_codec_level_valid(cfg->compress, cfg->compress_level)) {
        wk_error_set(err, WK_ERR_CONFIG, "invalid value for parameter \"compress_level\": %d",
                     cfg->compress_level);
        wk_error_hint(err, "%s", wk_codec_levels_text());
        goto fail;
    }
    if (cfg->encrypt_key_file != NULL && wk_key_load(cfg->encrypt_key_file, &repo->key, err) != 0)
        goto fail;
    if ((s3 ? open_s3(cfg, &repo->storage, err)
            : wk_storage_posix_open(cfg->repo, create, &repo->storage, err)) != 0)
        goto fail;
    if (repo->key != NULL && wk_keyring_open(repo->storage, repo->key, &repo->ring, err) != 0)
        goto fail;
    *out = repo;
    return 0;
fail:
    wk_repo_free(repo);
    return -1;
}

void wk_repo_free(wk_repo *repo)
{
    if (repo == NULL)
        return;
    wk_keyring_free(repo->ring);
    wk_storage_free(repo->storage);
    wk_key_free(repo->key);
    free(repo->location);
    free(repo);
}

static int check_seal(wk_repo *repo, const char *path, const uint8_t *bytes, size_t len,
                      wk_error *err);

static void hex_encode(const uint8_t *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    out[2 * len] = '\0';
}

static int hex_decode(const char *hex, uint8_t *bytes, size_t len)
{
    if (strlen(hex) != 2 * len)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        bytes[i] = (uint8_t)v;
    }
    return 0;
}

/* Parses one "key = value" line of walkeep.repo into meta; unknown keys are refused
 * so that a newer format is never half understood. */
static int parse_meta_line(char *line, wk_repo_meta *meta, bool *seen_encryption)
{
    char *eq = strchr(line, '=');
    if (eq == NULL)
        return -1;
    char *key = line, *value = eq + 1;
    *eq = '\0';
    key[strcspn(key, " \t")] = '\0';
    value += strspn(value, " \t");
    value[strcspn(value, " \t\r")] = '\0';
    char *end = NULL;
    if (strcmp(key, "format") == 0) {
        meta->format = (int)strtol(value, &end, 10);
    } else if (strcmp(key, "system_identifier") == 0) {
        if (value[0] == '-')
            return -1;
        errno = 0;
        meta->system_identifier = strtoull(value, &end, 10);
        if (errno == ERANGE)
            return -1;
    } else if (strcmp(key, "pg_version") == 0) {
        meta->pg_version = (int)strtol(value, &end, 10);
    } else if (strcmp(key, "wal_segment_size") == 0) {
        unsigned long long v = value[0] == '-' ? 0 : strtoull(value, &end, 10);
        meta->seg_size = v > UINT32_MAX ? 0 : (uint32_t)v;
    } else if (strcmp(key, "encryption") == 0) {
        if (strcmp(value, "none") == 0)
            meta->encrypted = false;
        else if (strcmp(value, "xchacha20poly1305") == 0)
            meta->encrypted = true;
        else
            return -1;
        *seen_encryption = true;
        return 0;
    } else if (strcmp(key, "key_id") == 0) {
        return hex_decode(value, meta->key_id, WK_KEY_ID_BYTES);
    } else {
        return -1;
    }
    return (end == value || *end != '\0') ? -1 : 0;
}

int wk_repo_read_meta(wk_repo *repo, wk_repo_meta *out, wk_error *err)
{
    uint8_t *text = NULL;
    size_t len = 0;
    int rc = -1;
    wk_stage *sink = wk_stage_memory_new(META_MAX_BYTES, &text, &len, err);
    if (sink == NULL)
        return -1;
    if (wk_storage_get(repo->storage, WK_REPO_META_PATH, sink, err) != 0 ||
        wk_stage_finish(sink, err) != 0) {
        if (err->code == WK_ERR_NOTFOUND) {
            wk_error_set(err, WK_ERR_NOTFOUND, "repository \"%s\" is not initialized",
                         repo->location);
            wk_error_hint(err, "run \"walkeep init\" with this configuration");
        } else {
            wk_error_prefix(err, "could not read metadata of repository \"%s\"", repo->location);
        }
        goto out;
    }
    /* Authenticated where the repository seals (a key that does not open its ring is
     * refused afterwards by wk_repo_check_key, with both key ids). */
    bool exists = false, opens = false;
    if (repo->key != NULL && wk_keyring_state(repo->ring, &exists, &opens, err) != 0)
        goto out;
    if (exists && opens && check_seal(repo, WK_REPO_META_PATH, text, len, err) != 0)
        goto out;
    wk_repo_meta meta = {0};
    bool seen_encryption = false;
    int lineno = 0;
    for (char *save = NULL, *line = strtok_r((char *)text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#' || line[strspn(line, " \t\r")] == '\0')
            continue;
        if (parse_meta_line(line, &meta, &seen_encryption) != 0) {
            wk_error_set(err, WK_ERR_CORRUPT, "invalid line %d in \"%s/%s\"", lineno,
                         repo->location, WK_REPO_META_PATH);
            goto out;
        }
    }
    if (meta.format != WK_REPO_FORMAT || !seen_encryption || meta.system_identifier == 0 ||
        !wk_wal_seg_size_valid(meta.seg_size) || !wk_pg_major_supported(meta.pg_version)) {
        wk_error_set(err, WK_ERR_CORRUPT,
                     "repository metadata \"%s/%s\" is incomplete, invalid or of "
                     "an unsupported format (format %d)",
                     repo->location, WK_REPO_META_PATH, meta.format);
        wk_error_detail(err,
                        "It must name format %d, a system identifier, a WAL segment size that "
                        "is a power of two from 1 MiB to 1 GiB, a PostgreSQL major walkeep "
                        "supports and the encryption.",
                        WK_REPO_FORMAT);
        goto out;
    }
    *out = meta;
    rc = 0;
out:
    wk_stage_free(sink);
    free(text);
    return rc;
}

static int write_meta(wk_repo *repo, const wk_repo_meta *meta, wk_error *err)
{
    char key_hex[2 * WK_KEY_ID_BYTES + 1];
    char text[1024];
    hex_encode(meta->key_id, WK_KEY_ID_BYTES, key_hex);
    int len =
        snprintf(text, sizeof(text),
                 "# walkeep repository metadata: written once, do not edit\n"
                 "format = %d\n"
                 "system_identifier = %" PRIu64 "\n"
                 "pg_version = %d\n"
                 "wal_segment_size = %" PRIu32 "\n"
                 "encryption = %s\n"
                 "%s%s%s",
                 meta->format, meta->system_identifier, meta->pg_version, meta->seg_size,
                 meta->encrypted ? "xchacha20poly1305" : "none", meta->encrypted ? "key_id = " : "",
                 meta->encrypted ? key_hex : "", meta->encrypted ? "\n" : "");
    /* Its MAC first (sealed repositories), as for records. A MAC already there (a writer
     * that died before writing the metadata itself) must fit this very text. */
    if (wk_repo_seal(repo, WK_REPO_META_PATH, text, (size_t)len, err) != 0) {
        if (err->code != WK_ERR_EXISTS)
            return -1;
        wk_error_clear(err);
        if (check_seal(repo, WK_REPO_META_PATH, (const uint8_t *)text, (size_t)len, err) != 0)
            return -1;
    }
    return wk_storage_put_bytes(repo->storage, WK_REPO_META_PATH, WK_PUT_NOREPLACE, text,
                                (size_t)len, err);
}

int wk_repo_check_key(wk_repo *repo, const wk_repo_meta *meta, wk_error *err)
{
    if (meta->encrypted && repo->key == NULL) {
        wk_error_set(err, WK_ERR_KEY, "repository \"%s\" is encrypted but no key is configured",
                     repo->location);
        wk_error_hint(err, "set \"encrypt_key_file\" to the key the repository was created with");
        return -1;
    }
    if (!meta->encrypted && repo->key != NULL) {
        wk_error_set(err, WK_ERR_KEY, "repository \"%s\" is not encrypted but a key is configured",
                     repo->location);
        wk_error_hint(err, "remove \"encrypt_key_file\", or start a new repository for encryption");
        return -1;
    }
    if (meta->encrypted) {
        bool exists, opens;
        if (wk_keyring_state(repo->ring, &exists, &opens, err) != 0)
            return -1;
        if (exists && opens)
            return 0;
        uint8_t id[WK_KEY_ID_BYTES];
        char want[2 * WK_KEY_ID_BYTES + 1], got[2 * WK_KEY_ID_BYTES + 1];
        wk_key_id(repo->key, id);
        hex_encode(meta->key_id, WK_KEY_ID_BYTES, want);
        hex_encode(id, WK_KEY_ID_BYTES, got);
        if (exists && memcmp(id, meta->key_id, sizeof(id)) == 0) {
            /* The key the repository was created with, rotated away since. */
            wk_error_set(err, WK_ERR_KEY, "the configured key does not open repository \"%s\"",
                         repo->location);
            wk_error_detail(err,
                            "repository created with key id %s, configured key id %s; the "
                            "configured key wraps none of its data keys",
                            want, got);
            wk_error_hint(err, "its key was rotated: set \"encrypt_key_file\" to the key it was "
                               "rotated to");
            return -1;
        }
        if (memcmp(id, meta->key_id, sizeof(id)) != 0) {
            wk_error_set(err, WK_ERR_KEY, "the configured key does not match repository \"%s\"",
                         repo->location);
            wk_error_detail(err, "repository key id %s, configured key id %s", want, got);
            return -1;
        }
    }
    return 0;
}

int wk_repo_check_identity(const wk_repo_meta *meta, const wk_repo_meta *identity, wk_error *err)
{
    if (meta->system_identifier != identity->system_identifier) {
        wk_error_set(err, WK_ERR_CLUSTER,
                     "database system identifier %" PRIu64 " does not match the repository's "
                     "%" PRIu64,
                     identity->system_identifier, meta->system_identifier);
        wk_error_hint(err, "each cluster needs a repository of its own");
        return -1;
    }
    if (meta->seg_size != identity->seg_size) {
        wk_error_set(err, WK_ERR_CLUSTER,
                     "WAL segment size %" PRIu32 " does not match the repository's %" PRIu32,
                     identity->seg_size, meta->seg_size);
        return -1;
    }
    return 0;
}

int wk_repo_open_meta(wk_repo *repo, const wk_repo_meta *identity, wk_repo_meta *out, bool *created,
                      wk_error *err)
{
    wk_repo_meta meta;
    if (created != NULL)
        *created = false;
    if (wk_repo_read_meta(repo, &meta, err) != 0) {
        if (err->code != WK_ERR_NOTFOUND || identity == NULL)
            return -1;
        meta = *identity;
        meta.format = WK_REPO_FORMAT;
        meta.encrypted = repo->key != NULL;
        memset(meta.key_id, 0, sizeof(meta.key_id));
        if (repo->key != NULL)
            wk_key_id(repo->key, meta.key_id);
        /* A new encrypted repository starts with its key ring, before its metadata: a crash
         * in between leaves a ring without metadata (the next writer completes it), never a
         * repository that looks older than it is. */
        const wk_key *first = NULL;
        wk_error_clear(err);
        if (repo->key != NULL && wk_keyring_writer_key(repo->ring, true, &first, err) != 0)
            return -1;
        if (write_meta(repo, &meta, err) == 0) {
            if (created != NULL)
                *created = true;
        } else if (err->code != WK_ERR_EXISTS || wk_repo_read_meta(repo, &meta, err) != 0) {
            /* Someone else initialised it at the same moment: check against theirs. */
            return wk_error_prefix(err, "could not initialize repository \"%s\"", repo->location);
        }
    }
    if (wk_repo_check_key(repo, &meta, err) != 0)
        return -1;
    if (identity != NULL && wk_repo_check_identity(&meta, identity, err) != 0)
        return -1;
    *out = meta;
    return 0;
}

int wk_repo_put_open(wk_repo *repo, const char *path, int flags, const wk_fingerprint *expected,
                     wk_stream_summary *summary, uint64_t *stored_bytes, wk_stage **sink,
                     wk_error *err)
{
    wk_stage *stage = NULL;
    bool sealed = false;
    const wk_key *key = NULL;
    /* The ring is read before the upload opens (a client busy with it takes no request). */
    if (repo->key != NULL && (wk_repo_sealed(repo, &sealed, err) != 0 ||
                              (sealed && wk_keyring_writer_key(repo->ring, false, &key, err) != 0)))
        return -1;
    if (wk_storage_put_open(repo->storage, path, flags, &stage, err) != 0)
        return -1;
    if (stored_bytes != NULL)
        stage = wk_stage_count_new(stage, stored_bytes, err);
    if (stage != NULL && repo->key != NULL) {
        char place[WK_STORAGE_PATH_MAX];
        wk_repo_place_of(path, place, sizeof(place));
        stage = sealed ? wk_crypt_encrypt_bound_new(stage, key, place, err)
                       : wk_crypt_encrypt_new(stage, repo->key, err);
    }
    if (stage != NULL)
        stage = wk_codec_compress_new(stage, repo->compress, repo->compress_level, err);
    if (stage != NULL)
        stage = expected != NULL ? wk_stage_fingerprint_check_new(stage, expected, summary, err)
                                 : wk_stage_fingerprint_new(stage, summary, err);
    if (stage == NULL)
        return -1;
    *sink = stage;
    return 0;
}

wk_stage *wk_repo_decrypt_new(wk_repo *repo, const char *path, wk_stage *dest, wk_error *err)
{
    char place[WK_STORAGE_PATH_MAX];
    bool exists, opens;
    /* The ring is read now, before the object's transfer: its lookups then need no I/O. */
    if (wk_keyring_state(repo->ring, &exists, &opens, err) != 0) {
        wk_stage_free(dest);
        return NULL;
    }
    wk_repo_place_of(path, place, sizeof(place));
    return wk_crypt_decrypt_bound_new(dest, wk_keyring_lookup, repo->ring, place, err);
}

wk_stage *wk_repo_decoder_new(wk_repo *repo, const char *path, wk_compress alg,
                              const wk_fingerprint *expected, wk_stage *dest, wk_error *err)
{
    wk_stage *stage = dest;
    if (expected != NULL)
        stage = wk_stage_fingerprint_check_new(stage, expected, NULL, err);
    /* The fingerprint check makes the frame's own checksum redundant: skip it. */
    if (stage != NULL)
        stage = expected != NULL ? wk_codec_decompress_unchecked_new(stage, alg, err)
                                 : wk_codec_decompress_new(stage, alg, err);
    if (stage != NULL && repo->key != NULL)
        stage = wk_repo_decrypt_new(repo, path, stage, err);
    return stage;
}

void wk_repo_place_of(const char *path, char *out, size_t size)
{
    snprintf(out, size, "%s", path);
    char *slash = strrchr(out, '/');
    char *name = slash != NULL ? slash + 1 : out;
    /* The codec suffix: ".zst", ".lz4" or ".raw", then ".enc". */
    size_t len = strlen(name);
    if (len > 4 && strcmp(name + len - 4, ".enc") == 0)
        name[len -= 4] = '\0';
    if (len > 4 && (strcmp(name + len - 4, ".zst") == 0 || strcmp(name + len - 4, ".lz4") == 0 ||
                    strcmp(name + len - 4, ".raw") == 0))
        name[len -= 4] = '\0';
    /* A WAL object's "-<32 hex fingerprint>" and time index (WAL file names hold no dash). */
    char *dash = strchr(name, '-');
    if (strncmp(out, "wal/", 4) == 0 && dash != NULL &&
        strlen(dash + 1) >= WK_FINGERPRINT_HEX_LEN &&
        strspn(dash + 1, "0123456789abcdef") >= WK_FINGERPRINT_HEX_LEN)
        *dash = '\0';
}

int wk_repo_sealed(wk_repo *repo, bool *sealed, wk_error *err)
{
    bool exists = false, opens = false;
    *sealed = false;
    if (repo->key == NULL)
        return 0;
    if (wk_keyring_state(repo->ring, &exists, &opens, err) != 0)
        return -1;
    *sealed = exists;
    return 0;
}

/* ---- sealed records ------------------------------------------------------------------ */

#define SEAL_CONTEXT "walkeep record mac v1"
#define SEAL_TAG "walkeep-mac 1 "
/* "walkeep-mac 1 <16 hex key id> <64 hex mac>\n" */
#define SEAL_LEN (sizeof(SEAL_TAG) - 1 + 2 * WK_KEY_ID_BYTES + 1 + 2 * WK_MAC_BYTES + 1)

static int seal_path(const char *path, char *out, size_t size, wk_error *err)
{
    if ((size_t)snprintf(out, size, "%s.mac", path) >= size)
        return wk_error_set(err, WK_ERR_INTERNAL, "path \"%s\" is too long", path);
    return 0;
}

/* The MAC of a record: its path, a newline, its bytes. */
static void record_mac(const wk_key *key, const char *path, const void *bytes, size_t len,
                       uint8_t mac[WK_MAC_BYTES])
{
    size_t plen = strnlen(path, WK_STORAGE_PATH_MAX - 1);
    char head[WK_STORAGE_PATH_MAX + 1];
    memcpy(head, path, plen);
    head[plen] = '\n';
    wk_key_mac(key, SEAL_CONTEXT, head, plen + 1, bytes, len, mac);
}

/* Writes "<path>.mac" for bytes with key (flags: storage put flags). */
static int write_seal(wk_repo *repo, const wk_key *key, const char *path, const void *bytes,
                      size_t len, int flags, wk_error *err)
{
    char mac_path[WK_STORAGE_PATH_MAX + 8], text[SEAL_LEN + 1];
    uint8_t id[WK_KEY_ID_BYTES], mac[WK_MAC_BYTES];
    if (seal_path(path, mac_path, sizeof(mac_path), err) != 0)
        return -1;
    wk_key_id(key, id);
    record_mac(key, path, bytes, len, mac);
    memcpy(text, SEAL_TAG, sizeof(SEAL_TAG) - 1);
    char *p = text + sizeof(SEAL_TAG) - 1;
    hex_encode(id, WK_KEY_ID_BYTES, p);
    p[2 * WK_KEY_ID_BYTES] = ' ';
    hex_encode(mac, WK_MAC_BYTES, p + 2 * WK_KEY_ID_BYTES + 1);
    text[SEAL_LEN - 1] = '\n';
    return wk_storage_put_bytes(repo->storage, mac_path, flags, text, SEAL_LEN, err);
}

int wk_repo_seal(wk_repo *repo, const char *path, const void *bytes, size_t len, wk_error *err)
{
    bool sealed;
    const wk_key *key = NULL;
    if (wk_repo_sealed(repo, &sealed, err) != 0)
        return -1;
    if (!sealed)
        return 0;
    if (wk_keyring_writer_key(repo->ring, false, &key, err) != 0)
        return -1;
    return write_seal(repo, key, path, bytes, len, WK_PUT_NOREPLACE, err);
}

int wk_repo_seal_with(wk_repo *repo, const wk_key *key, const char *path, const void *bytes,
                      size_t len, wk_error *err)
{
    return write_seal(repo, key, path, bytes, len, 0, err);
}

/* Checks "<path>.mac" against the record's bytes. */
static int check_seal(wk_repo *repo, const char *path, const uint8_t *bytes, size_t len,
                      wk_error *err)
{
    char mac_path[WK_STORAGE_PATH_MAX + 8];
    uint8_t *text = NULL, id[WK_KEY_ID_BYTES], want[WK_MAC_BYTES], got[WK_MAC_BYTES];
    size_t text_len = 0;
    const wk_key *key = NULL;
    int rc = -1;
    if (seal_path(path, mac_path, sizeof(mac_path), err) != 0)
        return -1;
    if (wk_record_read(repo->storage, mac_path, &text, &text_len, err) != 0) {
        if (err->code == WK_ERR_NOTFOUND) {
            wk_error_set(err, WK_ERR_CORRUPT, "record \"%s\" carries no MAC", path);
            wk_error_hint(err,
                          "this encrypted repository authenticates its records: someone "
                          "removed \"%s\" or wrote the record; do not trust it",
                          mac_path);
        }
        return -1;
    }
    char id_hex[2 * WK_KEY_ID_BYTES + 1] = "", mac_hex[2 * WK_MAC_BYTES + 1] = "";
    if (text_len == SEAL_LEN) {
        memcpy(id_hex, text + sizeof(SEAL_TAG) - 1, 2 * WK_KEY_ID_BYTES);
        memcpy(mac_hex, text + sizeof(SEAL_TAG) + 2 * WK_KEY_ID_BYTES, 2 * WK_MAC_BYTES);
    }
    if (text_len != SEAL_LEN || memcmp(text, SEAL_TAG, sizeof(SEAL_TAG) - 1) != 0 ||
        text[SEAL_LEN - 1] != '\n' || strspn(id_hex, "0123456789abcdef") != 2 * WK_KEY_ID_BYTES ||
        strspn(mac_hex, "0123456789abcdef") != 2 * WK_MAC_BYTES ||
        hex_decode(id_hex, id, WK_KEY_ID_BYTES) != 0 ||
        hex_decode(mac_hex, want, WK_MAC_BYTES) != 0) {
        wk_error_set(err, WK_ERR_CORRUPT, "the MAC of record \"%s\" is damaged", path);
        goto out;
    }
    if (wk_keyring_lookup(repo->ring, 2, id, &key, err) != 0)
        goto out;
    record_mac(key, path, bytes, len, got);
    if (sodium_memcmp(got, want, WK_MAC_BYTES) != 0) {
        wk_error_set(err, WK_ERR_CORRUPT, "record \"%s\" failed authentication", path);
        wk_error_hint(err, "it was changed after walkeep wrote it: do not trust it; restore it "
                           "from a copy of the repository");
        goto out;
    }
    rc = 0;
out:
    free(text);
    return rc;
}

int wk_repo_record_write(wk_repo *repo, const char *path, const char *text, size_t len,
                         wk_error *err)
{
    /* The MAC first: a crash in between leaves a MAC without a record (nothing), never a
     * record without its MAC. */
    if (wk_repo_seal(repo, path, text, len, err) != 0)
        return -1;
    return wk_record_write(repo->storage, path, text, len, err);
}

int wk_repo_record_read(wk_repo *repo, const char *path, uint8_t **text, size_t *len, wk_error *err)
{
    bool sealed;
    if (wk_record_read(repo->storage, path, text, len, err) != 0)
        return -1;
    if (wk_repo_sealed(repo, &sealed, err) != 0 ||
        (sealed && check_seal(repo, path, *text, *len, err) != 0)) {
        free(*text);
        *text = NULL;
        return -1;
    }
    return 0;
}

int wk_repo_parse_suffix(const char *suffix, wk_compress *alg, bool *encrypted)
{
    char ext[8];
    size_t len = strlen(suffix);
    *encrypted = len > 4 && strcmp(suffix + len - 4, ".enc") == 0;
    if (*encrypted)
        len -= 4;
    if (suffix[0] != '.' || len < 2 || len - 1 >= sizeof(ext))
        return -1;
    memcpy(ext, suffix + 1, len - 1);
    ext[len - 1] = '\0';
    return wk_codec_from_extension(ext, alg);
}

int wk_repo_check_label(const char *what, const char *label, wk_error *err)
{
    size_t n = label != NULL ? strlen(label) : 0;
    if (n >= WK_LABEL_MAX)
        return wk_error_set(err, WK_ERR_USAGE,
                            "invalid %s label \"%.80s...\": longer than %d characters", what, label,
                            WK_LABEL_MAX - 1);
    if (n == 0 || label[0] == '.')
        return wk_error_set(err, WK_ERR_USAGE, "invalid %s label \"%.80s\"", what,
                            label != NULL ? label : "");
    if (strspn(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != n)
        return wk_error_set(err, WK_ERR_USAGE,
                            "invalid %s label \"%.80s\": use letters, digits, '-', '_', '.'", what,
                            label);
    return 0;
}

typedef struct label_list {
    char (*labels)[WK_LABEL_MAX];
    size_t count, cap;
    bool nomem;
} label_list;

static int collect_label(const char *name, bool is_dir, uint64_t size, void *arg)
{
    label_list *l = arg;
    (void)size;
    if (!is_dir || wk_repo_check_label("", name, NULL) != 0)
        return 0;
    if (l->count == l->cap) {
        size_t cap = l->cap == 0 ? 16 : l->cap * 2;
        void *grown = realloc(l->labels, cap * sizeof(*l->labels));
        if (grown == NULL) {
            l->nomem = true;
            return 1;
        }
        l->labels = grown;
        l->cap = cap;
    }
    snprintf(l->labels[l->count++], WK_LABEL_MAX, "%s", name);
    return 0;
}

int wk_repo_list_labels(wk_repo *repo, const char *folder, char (**labels)[WK_LABEL_MAX],
                        size_t *count, wk_error *err)
{
    label_list l = {0};
    if (wk_storage_list(repo->storage, folder, "", collect_label, &l, err) != 0 || l.nomem) {
        free(l.labels);
        return l.nomem ? wk_error_set(err, WK_ERR_NOMEM, "out of memory") : -1;
    }
    *labels = l.labels;
    *count = l.count;
    return 0;
}
