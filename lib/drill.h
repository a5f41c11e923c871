/* drill: the restore test as one call. Restores a backup into a new private temporary
 * folder, starts PostgreSQL on it (Unix socket in that folder only, archive_mode off),
 * waits until recovery ends, runs checks (server up, recovery target reached, amcheck
 * over every B-tree index, the user's own queries), stops the server and removes the
 * folder. It owns the temporary folder and the server it starts, and leaves neither
 * behind when it returns, whatever happened (unless asked to keep the folder). */
#ifndef WK_DRILL_H
#define WK_DRILL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "repo.h"
#include "restore.h"

/* One expectation of a --sql file: "SQL => EXPECTED". */
typedef struct wk_drill_query {
    int line;       /* line number in the file, from 1 */
    char *sql;      /* owned */
    char *expected; /* owned; compared with the first column of the first row as text */
} wk_drill_query;

/* Parses a --sql file held in text[0..len): one expectation per line, "SQL => EXPECTED",
 * split at the last " => " of the line, both sides trimmed of blanks; blank lines and
 * lines whose first non-blank character is '#' are skipped. EXPECTED may be empty (an
 * empty string); NULL stands for an SQL null. name is used in messages only.
 * On success sets *out (free with wk_drill_queries_free) and *count and returns 0 (an
 * empty list is fine). A line without " => ", with an empty SQL side, or holding a NUL
 * byte is WK_ERR_USAGE 'invalid line N of "name": ...'; then *out is untouched. */
int wk_drill_parse_sql(const char *name, const char *text, size_t len, wk_drill_query **out,
                       size_t *count, wk_error *err);
void wk_drill_queries_free(wk_drill_query *queries, size_t count); /* accepts NULL */

typedef enum wk_drill_status { WK_DRILL_OK, WK_DRILL_FAILED, WK_DRILL_SKIPPED } wk_drill_status;

const char *wk_drill_status_name(wk_drill_status s); /* "ok", "FAILED", "skipped" */

typedef struct wk_drill_check {
    char name[64]; /* "restore", "server", "target", "amcheck", "sql line N" */
    wk_drill_status status;
    char detail[1024];
} wk_drill_check;

typedef struct wk_drill_report {
    char backup[WK_LABEL_MAX]; /* the backup used; "" when none was chosen */
    char target[256];          /* "end of archive", "time 2026-...", "immediate" ... */
    char folder[4096];         /* the temporary folder (gone unless kept) */
    bool kept;
    int64_t restore_ms; /* choosing and laying down the backup; -1 if not reached */
    int64_t replay_ms;  /* server start to the end of recovery; -1 if not reached */
    size_t check_count;
    wk_drill_check *checks; /* owned */
} wk_drill_report;

/* Adds a check to the report (detail a printf format). Returns 0, or -1 with WK_ERR_NOMEM. */
int wk_drill_report_add(wk_drill_report *r, const char *name, wk_drill_status status, wk_error *err,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The first failed check, or NULL when none failed. */
const wk_drill_check *wk_drill_report_failed(const wk_drill_report *r);
void wk_drill_report_free(wk_drill_report *r); /* frees members; accepts NULL */

/* The report as one JSON object (ok, backup, target, folder, kept, restore_ms, replay_ms
 * with null for -1, checks: [{name, status ("ok"/"failed"/"skipped"), detail}], and
 * failed: the first failed check's name or null). Returns text to free(), or NULL with
 * err filled. */
char *wk_drill_report_json(const wk_drill_report *r, wk_error *err);

typedef struct wk_drill_options {
    const char *pg_bindir;       /* NULL: pg_ctl from PATH */
    const char *tmp_parent;      /* NULL: $TMPDIR, else /tmp */
    const char *backup_label;    /* NULL: chosen as pitr-restore chooses */
    wk_restore_target target;    /* action is forced to promote */
    const char *restore_command; /* required: fetches WAL from the repository */
    const wk_drill_query *queries;
    size_t query_count;
    const char *sql_dbname;        /* the database the queries run in; NULL: postgres */
    int64_t timeout_ms;            /* server start to the end of recovery; <= 0: 1 h */
    bool keep;                     /* leave the (stopped) folder behind */
    volatile sig_atomic_t *cancel; /* may be NULL; when it becomes non-zero the drill stops,
                                    * cleans up and fails with WK_ERR_INTERNAL "interrupted" */
    void (*progress)(uint64_t done, uint64_t total, void *arg);
    void *progress_arg;
} wk_drill_options;

/* Runs the drill. Returns 0 when it ran to the end, whatever the checks found (read the
 * report: a restore that fails, such as a corrupt backup object, is the failed check
 * "restore"), or -1 with err filled when it could not run (no temporary folder, pg_ctl
 * missing, interrupted); the report then holds what was done so far. Either way the
 * server is stopped and the folder removed (unless keep) before it returns. Must not
 * run as root (PostgreSQL refuses to); the caller checks. */
int wk_drill_run(wk_repo *repo, const wk_drill_options *options, wk_drill_report *report,
                 wk_error *err);

#endif
