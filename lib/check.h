/* check: the worker behind `walkeep check`. It gathers facts about a repository and the
 * server that archives into it (wk_check_gather: never fails because something is down;
 * what could not be read is itself a fact), turns them into OK / WARNING / CRITICAL
 * verdicts against thresholds (wk_check_evaluate: pure, so tests need no server), and
 * renders them as text, JSON or node-exporter textfile metrics, the last written
 * atomically. The invariant: the overall status is the worst verdict. */
#ifndef WK_CHECK_H
#define WK_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "error.h"
#include "repo.h"

typedef enum wk_check_status {
    WK_CHECK_OK = 0,
    WK_CHECK_WARNING = 1,
    WK_CHECK_CRITICAL = 2
} wk_check_status;

/* "OK", "WARNING", "CRITICAL". */
const char *wk_check_status_name(wk_check_status s);

/* The worse of two statuses. */
wk_check_status wk_check_worse(wk_check_status a, wk_check_status b);

/* Thresholds; every age in milliseconds (wk_config_parse_duration). */
typedef struct wk_check_thresholds {
    int64_t max_backup_age_ms; /* WARNING above, CRITICAL above twice; default 48 h */
    int64_t max_wal_age_ms;    /* WARNING above, when WAL waits to be archived; 1 h */
    int64_t max_dump_age_ms;   /* WARNING above; 48 h */
    int64_t max_ready;         /* .ready files: WARNING above, CRITICAL above 10x; 10 */
    int shrink_percent;        /* WARNING when the newest backup, or a database's newest dump, is
                         * under this percentage of the one before; 50; 0: never */
} wk_check_thresholds;

/* Fills the defaults above. */
void wk_check_thresholds_default(wk_check_thresholds *t);

#define WK_CHECK_TEXT_MAX 512
#define WK_CHECK_WAL_NAME_MAX 64
#define WK_CHECK_DATABASE_MAX 128 /* as a dump record's */
#define WK_CHECK_DUMP_GROUPS_MAX 256

/* The newest two complete dumps of one database in one format, or of the globals. */
typedef struct wk_check_dump_group {
    bool globals;
    char database[WK_CHECK_DATABASE_MAX]; /* "" for globals */
    char format[16];                      /* "custom", "plain", "directory", "globals" */
    time_t newest_end;
    uint64_t newest_bytes, previous_bytes;
    bool has_previous;
} wk_check_dump_group;

/* What was observed. Times are unix seconds; a flag says whether each group is known. */
typedef struct wk_check_facts {
    time_t now;

    /* repository */
    bool repo_ok;                       /* opened, metadata read, key matches */
    char repo_error[WK_CHECK_TEXT_MAX]; /* why not, when !repo_ok */
    uint64_t repo_system_identifier;
    uint64_t repo_bytes; /* sum of every object's size */
    bool repo_bytes_known;

    /* server */
    bool server_ok; /* connected and pg_stat_archiver read */
    char server_error[WK_CHECK_TEXT_MAX];
    int server_version_num;  /* server_version_num, 0 when not connected */
    char server_version[32]; /* server_version as the server reports it */
    bool server_sysid_known; /* from the server, or pgdata when it is down */
    uint64_t server_system_identifier;

    /* base backups (complete: record and WAL) */
    size_t backups_complete;
    time_t backup_newest_stop; /* valid when backups_complete > 0 */
    uint64_t backup_newest_bytes;
    bool backup_has_previous;       /* a second complete backup: */
    uint64_t backup_previous_bytes; /* the size of the one before the newest */
    time_t backup_oldest_stop;

    /* the archiver (valid when server_ok) */
    bool server_in_recovery; /* a standby (or a restore): the archiver is the primary's */
    bool archive_mode_off;
    bool archive_unconfigured; /* archive_command and archive_library empty */
    bool archive_both_set;     /* archive_command and archive_library both set */
    char last_archived_wal[WK_CHECK_WAL_NAME_MAX]; /* "" when none */
    double last_archived_time;                     /* 0 when none */
    char last_failed_wal[WK_CHECK_WAL_NAME_MAX];
    double last_failed_time; /* 0 when none */
    int64_t failed_count;
    char current_wal[WK_CHECK_WAL_NAME_MAX]; /* "" when unknown (e.g. in recovery) */

    /* the current timeline's history (valid when history_known: timeline 2 or later) */
    uint32_t timeline;
    bool history_known;
    bool history_missing;

    /* .ready backlog */
    bool ready_known;
    int64_t ready_count;
    char ready_error[WK_CHECK_TEXT_MAX]; /* why unknown */

    /* dumps */
    bool dumps_expected; /* retention_dumps* configured */
    size_t dumps_complete;
    time_t dump_newest_end; /* valid when dumps_complete > 0 */
    /* the newest two complete dumps of each database per format, and of the globals
     * (the first WK_CHECK_DUMP_GROUPS_MAX, in the order met) */
    size_t dump_group_count;
    wk_check_dump_group dump_groups[WK_CHECK_DUMP_GROUPS_MAX];
    bool dump_groups_full; /* more groups than that: the rest are not compared */

    /* --switch-wal */
    bool switch_requested;
    bool switch_ok; /* the segment reached the repository */
    char switch_wal[WK_CHECK_WAL_NAME_MAX];
    double switch_seconds; /* how long it took to arrive */
    char switch_error[WK_CHECK_TEXT_MAX];
} wk_check_facts;

#define WK_CHECK_VALUES_MAX 4

/* One verdict, with the numbers behind it (for --json). */
typedef struct wk_check_item {
    const char *name; /* static: "repository", "backup", "archiver", "wal", "ready", ... */
    wk_check_status status;
    char message[WK_CHECK_TEXT_MAX];
    size_t value_count;
    struct {
        const char *key; /* static */
        int64_t value;
    } values[WK_CHECK_VALUES_MAX];
} wk_check_item;

#define WK_CHECK_ITEMS_MAX 10

typedef struct wk_check_report {
    wk_check_status status; /* the worst item */
    size_t count;
    wk_check_item items[WK_CHECK_ITEMS_MAX];
} wk_check_report;

/* Judges facts against thresholds into *out (no I/O, cannot fail). */
void wk_check_evaluate(const wk_check_facts *facts, const wk_check_thresholds *t,
                       wk_check_report *out);

/* The whole report as text, one "STATUS: name: message" line per check. Returns
 * malloc'd text or NULL (out of memory). */
char *wk_check_report_text(const wk_check_report *report);

/* {"status": "...", "checks": [{"name", "status", "message", values...}]}. Returns
 * malloc'd text or NULL with err set. */
char *wk_check_report_json(const wk_check_report *report, wk_error *err);

/* Node-exporter textfile metrics, every name starting "walkeep_", each with # HELP and
 * # TYPE lines; a value that is not known is left out. Returns malloc'd text or NULL
 * with err set. */
char *wk_check_prometheus(const wk_check_facts *facts, const wk_check_report *report,
                          wk_error *err);

/* What gather needs. */
typedef struct wk_check_options {
    const char *conninfo; /* pg_conninfo; NULL for libpq's defaults */
    const char *pgdata;   /* for the .ready fallback and the identity when the server is
                             * down; may be NULL */
    bool dumps_expected;  /* retention for dumps is configured */
    bool switch_wal;      /* force a WAL switch and wait for the segment */
    int64_t timeout_ms;   /* how long --switch-wal waits */
} wk_check_options;

/* Fills *facts, which the caller zeroes first (and, when the repository could not be
 * opened, passes repo NULL with repo_error saying why): sets now, reads the metadata
 * of repo (key checked), sums the
 * repository's object sizes, lists backups and dumps, and asks the server (a normal
 * connection over conninfo) for its system identifier, pg_stat_archiver and the .ready
 * count (pg_ls_archive_statusdir(), else pgdata/pg_wal/archive_status). Problems are
 * recorded in facts, not returned; returns -1 only when out of memory. */
int wk_check_gather(wk_repo *repo, const wk_check_options *options, wk_check_facts *facts,
                    wk_error *err);

/* Counts the *.ready files in dir (pg_wal/archive_status). Returns 0 or -1 with err. */
int wk_check_count_ready(const char *dir, int64_t *count, wk_error *err);

#endif
