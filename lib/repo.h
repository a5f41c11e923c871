/* repo: one cluster's repository over a storage backend: its metadata (the identity
 * every write is checked against), its key, and the encode/decode pipelines of objects. */
#ifndef WK_REPO_H
#define WK_REPO_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "crypt.h"
#include "error.h"
#include "storage.h"
#include "stream.h"

#define WK_REPO_META_PATH "walkeep.repo"
#define WK_REPO_FORMAT 1

/* What a repository belongs to, recorded once by `walkeep init` or the first archive. */
typedef struct wk_repo_meta {
    int format;
    uint64_t system_identifier;
    int pg_version;
    uint32_t seg_size;
    bool encrypted;
    uint8_t key_id[WK_KEY_ID_BYTES]; /* meaningful when encrypted */
} wk_repo_meta;

typedef struct wk_keyring wk_keyring;

typedef struct wk_repo {
    wk_storage *storage; /* owned */
    wk_key *key;         /* owned; NULL when the configuration names no key file */
    wk_keyring *ring;    /* owned; the data keys (keyring.h), opened with the key */
    wk_compress compress;
    int compress_level;
    char *location;  /* the configured repo, for messages */
    char suffix[16]; /* ".<codec extension>" plus ".enc" when encrypted */
} wk_repo;

/* Opens the repository the configuration names (cfg->repo: an absolute folder path, or
 * s3://bucket/prefix with the s3_* keys) and loads its key file, if any. With create, a
 * missing folder is created (an S3 bucket must exist already). WK_ERR_CONFIG when repo is
 * unset, relative or not a valid s3:// location. */
int wk_repo_open(const wk_config *cfg, bool create, wk_repo **out, wk_error *err);

/* Accepts NULL. Wipes the key. */
void wk_repo_free(wk_repo *repo);

/* Reads walkeep.repo. WK_ERR_NOTFOUND when the repository has none (not
 * initialised); WK_ERR_CORRUPT when it cannot be parsed. */
int wk_repo_read_meta(wk_repo *repo, wk_repo_meta *out, wk_error *err);

/* Checks that the configured key matches the metadata: an encrypted repository needs the
 * key it was created with, or, once it has a key ring, a key that opens the ring (the key
 * it was rotated to): WK_ERR_KEY otherwise. An unencrypted one refuses a key (mixing would
 * leave objects no single configuration can read). */
int wk_repo_check_key(wk_repo *repo, const wk_repo_meta *meta, wk_error *err);

/* Checks that identity (system identifier, segment size) matches meta;
 * WK_ERR_CLUSTER names both otherwise. */
int wk_repo_check_identity(const wk_repo_meta *meta, const wk_repo_meta *identity, wk_error *err);

/* Returns the repository's metadata after checking the key and, when identity is
 * not NULL, the cluster identity. A repository without metadata is initialised
 * from identity (encryption as configured); without identity that is
 * WK_ERR_NOTFOUND with a hint to run `walkeep init`. *created tells whether this call
 * wrote the metadata (may be NULL). */
int wk_repo_open_meta(wk_repo *repo, const wk_repo_meta *identity, wk_repo_meta *out, bool *created,
                      wk_error *err);

/* Opens a writer for the object at path: plaintext written into *sink is
 * fingerprinted (into *summary, may be NULL), compressed with the repository's codec,
 * encrypted when the repository has a key, and stored; it becomes visible only when
 * the sink finishes. With expected, finish fails (WK_ERR_CORRUPT, nothing stored)
 * when the plaintext's fingerprint differs. *stored_bytes (may be NULL) counts the
 * bytes stored. flags are storage put flags. *sink is the fingerprint stage, so
 * wk_stage_fingerprint_peek works on it, and wk_stage_sink_of(*sink) is the storage's. */
int wk_repo_put_open(wk_repo *repo, const char *path, int flags, const wk_fingerprint *expected,
                     wk_stream_summary *summary, uint64_t *stored_bytes, wk_stage **sink,
                     wk_error *err);

/* Builds the decode chain for the object at path stored with alg (decrypt when the
 * repository has a key, with the key its header names and its place checked, decompress,
 * then check the plaintext fingerprint against *expected when not NULL) in front of dest;
 * takes ownership of dest. */
wk_stage *wk_repo_decoder_new(wk_repo *repo, const char *path, wk_compress alg,
                              const wk_fingerprint *expected, wk_stage *dest, wk_error *err);

/* The decrypt stage alone for the object at path (the repository has a key). */
wk_stage *wk_repo_decrypt_new(wk_repo *repo, const char *path, wk_stage *dest, wk_error *err);

/* The place an encrypted object is bound to: its path without the codec suffix and, for a
 * WAL object, without "-<fingerprint>" ("wal/0000000100000000/000000010000000000000005"). */
void wk_repo_place_of(const char *path, char *out, size_t size);

/* Records (backup.json, dump.json) through their MAC: on an encrypted repository with a key
 * ring, a record is stored after "<path>.mac" (docs/format.md, "Sealed records") and read
 * only when that MAC, made with a data key, covers its path and bytes (WK_ERR_CORRUPT
 * otherwise). Elsewhere these are wk_record_write / wk_record_read. */
int wk_repo_record_write(wk_repo *repo, const char *path, const char *text, size_t len,
                         wk_error *err);
int wk_repo_record_read(wk_repo *repo, const char *path, uint8_t **text, size_t *len,
                        wk_error *err);

/* Writes "<path>.mac" for the bytes of the record at path (as wk_repo_record_write does). */
int wk_repo_seal(wk_repo *repo, const char *path, const void *bytes, size_t len, wk_error *err);

/* Writes "<path>.mac" for bytes with the data key key, replacing one that is there (for
 * sealing the records of a repository that had no ring yet). */
int wk_repo_seal_with(wk_repo *repo, const wk_key *key, const char *path, const void *bytes,
                      size_t len, wk_error *err);

/* Whether records and objects of this repository are authenticated by its key ring: false
 * for an unencrypted repository and one written before walkeep had key rings. */
int wk_repo_sealed(wk_repo *repo, bool *sealed, wk_error *err);

#define WK_LABEL_MAX 64

/* Checks a backup or dump label (what names its folder): 1 to 63 letters, digits,
 * '-', '_' or '.', not starting with '.'. what ("backup", "dump") goes into the
 * message. Returns 0 or -1 (WK_ERR_USAGE). */
int wk_repo_check_label(const char *what, const char *label, wk_error *err);

/* The labels of the folders in `folder` ("backups", "dumps") whose names are valid
 * labels, in no particular order: *labels is malloc'd (caller frees), *count may be 0;
 * a missing folder lists nothing. */
int wk_repo_list_labels(wk_repo *repo, const char *folder, char (**labels)[WK_LABEL_MAX],
                        size_t *count, wk_error *err);

/* Splits an object name's suffix (".zst", ".lz4.enc", ...) into its codec and whether
 * it is encrypted; returns 0 or -1 when it is no suffix walkeep writes. */
int wk_repo_parse_suffix(const char *suffix, wk_compress *alg, bool *encrypted);

#endif
