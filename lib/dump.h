/* dump: logical dumps in the repository. pg_dump / pg_dumpall output streamed through the
 * object pipeline into dumps/<label>/, the JSON record (dump.json, written last) that
 * makes a dump usable, listing, and restore / verify feeding psql or pg_restore straight
 * from the repository. The invariant: a folder without dump.json is never restored, and
 * a create that fails removes what it stored and writes no record. */
#ifndef WK_DUMP_H
#define WK_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"
#include "repo.h"
#include "stream.h"

#define WK_DUMP_LABEL_MAX WK_LABEL_MAX
#define WK_DUMP_RECORD "dump.json"
#define WK_DUMP_DB_MAX 128

typedef enum wk_dump_format {
    WK_DUMP_PLAIN = 0, /* pg_dump -Fp: an SQL script, dump.sql */
    WK_DUMP_CUSTOM,    /* pg_dump -Fc: dump.custom */
    WK_DUMP_DIRECTORY, /* pg_dump -Fd: one object per file under dir/ */
    WK_DUMP_GLOBALS    /* pg_dumpall --globals-only: globals.sql */
} wk_dump_format;

/* "plain", "custom", "directory", "globals". */
const char *wk_dump_format_name(wk_dump_format f);
/* Parses those names; returns 0 or -1. */
int wk_dump_parse_format(const char *text, wk_dump_format *out);

/* One stored file of a dump. Same fields (and JSON shape) as a backup stream. */
typedef struct wk_dump_stream {
    char name[128];   /* "dump.sql", "dump.custom", "globals.sql", or a directory file */
    char object[320]; /* repository path */
    uint64_t bytes;   /* plaintext */
    uint64_t stored_bytes;
    wk_fingerprint fingerprint;
} wk_dump_stream;

typedef struct wk_dump_record {
    char label[WK_DUMP_LABEL_MAX];
    char database[WK_DUMP_DB_MAX]; /* the database dumped (the connection's, for globals) */
    wk_dump_format format;
    char server_version[64]; /* as the server reports server_version */
    time_t start_time, end_time;
    uint64_t bytes, stored_bytes;
    wk_compress compress;
    bool encrypted;
    size_t stream_count;
    wk_dump_stream *streams;
} wk_dump_record;

/* Frees members; accepts NULL. */
void wk_dump_record_free(wk_dump_record *record);

/* Labels are 1..63 letters, digits, '-', '_' and '.', not starting with '.'.
 * Returns 0, or -1 with WK_ERR_USAGE naming the label. */
int wk_dump_check_label(const char *label, wk_error *err);

/* Writes dumps/<label>/dump.json (no-replace: WK_ERR_EXISTS if there is one) /
 * reads it (WK_ERR_NOTFOUND when absent, WK_ERR_CORRUPT when it does not parse or a
 * stream name or object is not one walkeep writes). */
int wk_dump_record_write(wk_repo *repo, const wk_dump_record *record, wk_error *err);
int wk_dump_record_read(wk_repo *repo, const char *label, wk_dump_record *out, wk_error *err);

/* One folder of dumps/. */
typedef struct wk_dump_entry {
    char label[WK_DUMP_LABEL_MAX];
    bool has_record;       /* false: an interrupted create (never restored) */
    wk_dump_record record; /* valid when has_record */
} wk_dump_entry;

/* Lists dumps/, oldest first (start time, then label; folders without a record last).
 * A record that cannot be read is WK_ERR_CORRUPT. */
int wk_dump_list(wk_repo *repo, wk_dump_entry **out, size_t *count, wk_error *err);
void wk_dump_list_free(wk_dump_entry *entries, size_t count);

/* The listing as JSON: {"dumps": [{label, status, database, format, server_version,
 * start_time, end_time, bytes, stored_bytes, compress, encrypted, streams}, ...]}.
 * Returns malloc'd text (caller frees) or NULL with err set. */
char *wk_dump_list_json(const wk_dump_entry *entries, size_t count, wk_error *err);

/* ---- building the commands we run (exposed for tests) ------------------------------- */

/* A NULL-terminated argument vector; every string owned. */
typedef struct wk_dump_argv {
    char **items;
    size_t count;
} wk_dump_argv;

void wk_dump_argv_free(wk_dump_argv *argv); /* accepts NULL and a zeroed one */

/* Builds the connection string handed to the PostgreSQL tools as -d: conninfo (a
 * "key=value" string or a postgresql:// URI; NULL or "" for libpq's defaults) parsed
 * by libpq and written back as key='value' pairs, with dbname replaced by dbname when
 * that is not NULL (libpq takes the last value). A password is never written into it
 * (command lines are visible to every user): it goes to *password (malloc'd, or NULL
 * when there is none), for the child's PGPASSWORD. Returns the string (malloc'd; ""
 * when there is nothing to say) or NULL with WK_ERR_CONFIG (conninfo does not parse)
 * or WK_ERR_NOMEM. */
char *wk_dump_conninfo(const char *conninfo, const char *dbname, char **password, wk_error *err);

/* The database a connection string names, libpq's way: its dbname, else PGDATABASE,
 * else the user name (its user, PGUSER, or the login name). Returns a malloc'd string or
 * NULL with err set. */
char *wk_dump_conninfo_dbname(const char *conninfo, wk_error *err);

/* "<bindir>/<name>" or just name (looked up in PATH) when bindir is NULL or "". */
char *wk_dump_program(const char *bindir, const char *name);

typedef struct wk_dump_create_options {
    const char *conninfo;  /* pg_conninfo; NULL for libpq's defaults */
    const char *bindir;    /* pg_bindir; NULL: PATH */
    const char *dbname;    /* NULL: the connection's */
    wk_dump_format format; /* WK_DUMP_GLOBALS for --globals */
    int jobs;              /* pg_dump -j, directory format only; 0 or 1: one */
    const char *label;     /* NULL: <YYYYMMDDTHHMMSSZ>-<database>, with -2 to -9 added
                            * when a dump of that label exists */
    const char *tmpdir;    /* parent of the staging folder; NULL: $TMPDIR or /tmp */
    /* May be NULL. Called as output is stored, with the plaintext bytes so far and
     * total 0 (unknown). */
    void (*progress)(uint64_t done, uint64_t total, void *arg);
    void *progress_arg;
} wk_dump_create_options;

/* The pg_dump / pg_dumpall command for a dump: conn is the string from
 * wk_dump_conninfo, outdir the folder pg_dump -Fd writes into (directory format
 * only; others write to stdout). Custom and directory dumps are taken with -Z 0: the
 * repository compresses. WK_ERR_USAGE when the options do not fit together. */
int wk_dump_create_argv(const wk_dump_create_options *options, const char *conn, const char *outdir,
                        wk_dump_argv *out, wk_error *err);

typedef struct wk_dump_restore_options {
    const char *conninfo;
    const char *bindir;
    const char *dbname; /* NULL: see wk_dump_restore_dbname */
    bool create, clean;
    const char *const *tables; /* --table, table_count of them */
    size_t table_count;
    int jobs; /* pg_restore -j; 0 or 1: one */
    const char *tmpdir;
    /* May be NULL (restore only; verify ignores it). Called as the dump's streams are
     * decoded, with the plaintext bytes so far and the record's total. */
    void (*progress)(uint64_t done, uint64_t total, void *arg);
    void *progress_arg;
} wk_dump_restore_options;

/* Whether walkeep itself creates the database a restore goes into (--create): for a
 * plain dump always (into --dbname, else the database the dump was taken from), for
 * custom and directory dumps when --dbname names it (pg_restore --create would create
 * the dump's own database instead), over a connection to the maintenance database
 * (postgres, else template1). Without --clean an existing database is refused; with
 * it, the dump is restored into a new database of a temporary name, and only when that
 * worked is the old one dropped and the new one renamed to it. A failed restore drops
 * the database it created. */
bool wk_dump_restore_creates(wk_dump_format format, const wk_dump_restore_options *options);

/* Refuses option combinations the dump's format cannot honour (WK_ERR_USAGE with a
 * message naming what is needed): --table or --jobs with plain or globals ("--table needs
 * a custom or directory dump"), --create or --clean with globals, --clean without
 * --create with plain. */
int wk_dump_restore_check(wk_dump_format format, const wk_dump_restore_options *options,
                          wk_error *err);

/* The database restore goes into: --dbname; else for globals the one pg_conninfo names
 * (returns NULL: no override); with --create where pg_restore --create makes the
 * database, the maintenance database "postgres" it connects to first; else the database
 * the dump was taken from. The result points into options, record or static text. */
const char *wk_dump_restore_dbname(const wk_dump_record *record,
                                   const wk_dump_restore_options *options);

/* How the input reaches the restore program. */
typedef enum wk_dump_input {
    WK_DUMP_INPUT_STDIN = 0, /* a pipe, fed from the repository */
    WK_DUMP_INPUT_PATH       /* a staged file (custom) or folder (directory) */
} wk_dump_input;

/* The psql / pg_restore command restoring (list: pg_restore --list) a dump of the
 * record's format from input (path for WK_DUMP_INPUT_PATH). Plain restores run psql
 * -X -q -v ON_ERROR_STOP=1 --single-transaction; globals the same without a single
 * transaction (CREATE TABLESPACE cannot run in one); pg_restore gets --exit-on-error,
 * and --single-transaction unless --jobs > 1 or pg_restore --create (a --create without
 * --dbname) rule it out; --clean adds --clean --if-exists except into a database walkeep
 * created (wk_dump_restore_creates). */
int wk_dump_restore_argv(const wk_dump_record *record, const wk_dump_restore_options *options,
                         const char *conn, wk_dump_input input, const char *path, bool list,
                         wk_dump_argv *out, wk_error *err);

/* Whether a restore stages its input (custom with jobs > 1: pg_restore needs a seekable
 * file; directory: pg_restore reads a folder) rather than feeding a pipe. */
bool wk_dump_restore_stages(wk_dump_format format, int jobs);

/* The databases "walkeep-dump create --all" dumps: the names in list (the configuration
 * key dump_databases: commas or white space between them; each once) when it is not NULL,
 * else every database of the server that takes connections, is not a template, is valid
 * and the role may connect to, in name order (connecting with conninfo). *names is malloc'd (free with wk_dump_names_free). */
int wk_dump_database_names(const char *conninfo, const char *list, char ***names, size_t *count,
                           wk_error *err);
void wk_dump_names_free(char **names, size_t count);

/* ---- the commands ------------------------------------------------------------------ */

/* Takes a dump: runs pg_dump (pg_dumpall --globals-only for globals) with its stderr
 * passed through, streams its output into dumps/<label>/ as it is produced (directory
 * format: staged in a private 0700 folder, then stored file by file, then removed), and
 * writes the record last. The repository must be initialised or is initialised from the
 * server's identity; the key is checked first. Any failure (pg_dump's exit status
 * included) removes what was stored: no record, no objects. *out is filled on success. */
int wk_dump_create(wk_repo *repo, const wk_dump_create_options *options, wk_dump_record *out,
                   wk_error *err);

/* Restores dump label through psql / pg_restore (stderr passed through). Every stream
 * is decoded and checked against its fingerprint; a failed check, a failed decode or
 * the program's non-zero exit is an error. Fed through a pipe, a stream that fails its
 * check stops the program before it sees the end of its input (plain: the single
 * transaction is never committed). */
int wk_dump_restore(wk_repo *repo, const char *label, const wk_dump_restore_options *options,
                    wk_error *err);

/* What verify saw. */
typedef struct wk_dump_verify_result {
    size_t objects;
    uint64_t bytes;
    bool listed; /* pg_restore --list ran over it and succeeded */
} wk_dump_verify_result;

/* Decodes every object of dump label, checks fingerprints and sizes (plaintext and
 * stored), and for custom / directory runs pg_restore --list over it (fed as restore
 * feeds it). options supplies bindir and tmpdir only. */
int wk_dump_verify(wk_repo *repo, const char *label, const wk_dump_restore_options *options,
                   wk_dump_verify_result *out, wk_error *err);

#endif
