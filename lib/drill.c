/* drill: restore, start, check, stop, remove (see drill.h). */
#include "drill.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "pg.h"
#include "pgctl.h"
#include "pgversion.h"

/* ---- the --sql file ------------------------------------------------------------------ */

static char *trimmed_copy(const char *s, size_t len)
{
    while (len > 0 && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    return strndup(s, len);
}

void wk_drill_queries_free(wk_drill_query *queries, size_t count)
{
    for (size_t i = 0; queries != NULL && i < count; i++) {
        free(queries[i].sql);
        free(queries[i].expected);
    }
    free(queries);
}

int wk_drill_parse_sql(const char *name, const char *text, size_t len, wk_drill_query **out,
                       size_t *count, wk_error *err)
{
    wk_drill_query *list = NULL;
    size_t n = 0, cap = 0;
    int line = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t llen = nl != NULL ? (size_t)(nl - start) : len - pos;
        pos += llen + (nl != NULL ? 1 : 0);
        line++;
        if (memchr(start, '\0', llen) != NULL) {
            wk_error_set(err, WK_ERR_USAGE, "invalid line %d of \"%s\": it holds a NUL byte", line,
                         name);
            goto fail;
        }
        size_t skip = strspn(start, " \t\r");
        if (skip >= llen || start[skip] == '#')
            continue;
        const char *arrow = NULL;
        const char *end = start + llen;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            end--;
        for (const char *p = start; p + 3 <= end; p++)
            if (memcmp(p, " =>", 3) == 0 && (p + 3 == end || p[3] == ' ' || p[3] == '\t'))
                arrow = p;
        if (arrow == NULL) {
            wk_error_set(err, WK_ERR_USAGE,
                         "invalid line %d of \"%s\": no \" => \" between "
                         "the query and the expected value",
                         line, name);
            wk_error_hint(err, "write each check as: SELECT count(*) FROM t => 1000");
            goto fail;
        }
        char *sql = trimmed_copy(start, (size_t)(arrow - start));
        size_t rest = (size_t)(start + llen - (arrow + 3));
        char *expected = trimmed_copy(arrow + 3, rest);
        if (sql == NULL || expected == NULL) {
            free(sql);
            free(expected);
            wk_error_set(err, WK_ERR_NOMEM, "out of memory");
            goto fail;
        }
        if (sql[0] == '\0') {
            free(sql);
            free(expected);
            wk_error_set(err, WK_ERR_USAGE, "invalid line %d of \"%s\": no query before \"=>\"",
                         line, name);
            goto fail;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            wk_drill_query *grown = realloc(list, ncap * sizeof(*list));
            if (grown == NULL) {
                free(sql);
                free(expected);
                wk_error_set(err, WK_ERR_NOMEM, "out of memory");
                goto fail;
            }
            list = grown;
            cap = ncap;
        }
        list[n++] = (wk_drill_query){.line = line, .sql = sql, .expected = expected};
    }
    *out = list;
    *count = n;
    return 0;
fail:
    wk_drill_queries_free(list, n);
    return -1;
}

/* ---- the report ---------------------------------------------------------------------- */

const char *wk_drill_status_name(wk_drill_status s)
{
    switch (s) {
    case WK_DRILL_OK:
        return "ok";
    case WK_DRILL_FAILED:
        return "FAILED";
    case WK_DRILL_SKIPPED:
        return "skipped";
    }
    return "?";
}

int wk_drill_report_add(wk_drill_report *r, const char *name, wk_drill_status status, wk_error *err,
                        const char *fmt, ...)
{
    wk_drill_check *grown = realloc(r->checks, (r->check_count + 1) * sizeof(*grown));
    if (grown == NULL)
        return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    r->checks = grown;
    wk_drill_check *c = &r->checks[r->check_count++];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
    va_end(ap);
    c->detail[strcspn(c->detail, "\n")] = '\0';
    return 0;
}

const wk_drill_check *wk_drill_report_failed(const wk_drill_report *r)
{
    for (size_t i = 0; i < r->check_count; i++)
        if (r->checks[i].status == WK_DRILL_FAILED)
            return &r->checks[i];
    return NULL;
}

void wk_drill_report_free(wk_drill_report *r)
{
    if (r == NULL)
        return;
    free(r->checks);
    r->checks = NULL;
    r->check_count = 0;
}

char *wk_drill_report_json(const wk_drill_report *r, wk_error *err)
{
    wk_json_writer *w = wk_json_writer_new();
    const wk_drill_check *failed = wk_drill_report_failed(r);
    wk_json_begin_object(w);
    wk_json_kv_bool(w, "ok", failed == NULL && r->check_count > 0);
    wk_json_kv_string(w, "backup", r->backup[0] ? r->backup : NULL);
    wk_json_kv_string(w, "target", r->target);
    wk_json_kv_string(w, "folder", r->folder[0] ? r->folder : NULL);
    wk_json_kv_bool(w, "kept", r->kept);
    wk_json_key(w, "restore_ms");
    if (r->restore_ms < 0)
        wk_json_null(w);
    else
        wk_json_int(w, r->restore_ms);
    wk_json_key(w, "replay_ms");
    if (r->replay_ms < 0)
        wk_json_null(w);
    else
        wk_json_int(w, r->replay_ms);
    wk_json_key(w, "checks");
    wk_json_begin_array(w);
    for (size_t i = 0; i < r->check_count; i++) {
        const wk_drill_check *c = &r->checks[i];
        wk_json_begin_object(w);
        wk_json_kv_string(w, "name", c->name);
        wk_json_kv_string(w, "status",
                          c->status == WK_DRILL_OK       ? "ok"
                          : c->status == WK_DRILL_FAILED ? "failed"
                                                         : "skipped");
        wk_json_kv_string(w, "detail", c->detail);
        wk_json_end_object(w);
    }
    wk_json_end_array(w);
    wk_json_kv_string(w, "failed", failed != NULL ? failed->name : NULL);
    wk_json_end_object(w);
    char *doc = wk_json_writer_finish(w, err);
    wk_json_writer_free(w);
    return doc;
}

/* ---- helpers for the run ------------------------------------------------------------- */

typedef struct drill {
    const wk_drill_options *opt;
    wk_drill_report *report;
    char folder[PATH_MAX];
    char pgdata[PATH_MAX + 16];
    char log[PATH_MAX + 32];
    char pg_ctl[PATH_MAX + 16];
    int port;
    bool started; /* pg_ctl start was run: stop before removing */
} drill;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool cancelled(const drill *d)
{
    return d->opt->cancel != NULL && *d->opt->cancel != 0;
}

static void describe_target(const wk_restore_target *t, char *out, size_t size)
{
    switch (t->kind) {
    case WK_TARGET_END:
        snprintf(out, size, "end of archive");
        break;
    case WK_TARGET_IMMEDIATE:
        snprintf(out, size, "immediate (end of the backup)");
        break;
    case WK_TARGET_TIME:
        snprintf(out, size, "time %s", t->value ? t->value : "?");
        break;
    case WK_TARGET_XID:
        snprintf(out, size, "xid %s", t->value ? t->value : "?");
        break;
    case WK_TARGET_LSN:
        snprintf(out, size, "lsn %s", t->value ? t->value : "?");
        break;
    case WK_TARGET_NAME:
        snprintf(out, size, "restore point %s", t->value ? t->value : "?");
        break;
    }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* Stops the server: fast, then immediate, then SIGKILL to the postmaster. */
static void stop_server(drill *d)
{
    if (!d->started)
        return;
    char out[PATH_MAX + 32];
    snprintf(out, sizeof(out), "%s/pg_ctl.log", d->folder);
    wk_pgctl_stop(d->pg_ctl, d->pgdata, out);
    d->started = false;
}

/* Appends the drill's own settings to postgresql.auto.conf (read last, so they win) and
 * gives the server a pg_hba.conf of its own: trust over the private socket only. */
static int write_settings(drill *d, wk_error *err)
{
    char path[PATH_MAX + 64], hba[PATH_MAX + 32];
    snprintf(hba, sizeof(hba), "%s/pg_hba.conf", d->folder);
    FILE *f = fopen(hba, "we");
    if (f == NULL)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not create \"%s\"", hba);
    fputs("# walkeep drill: connections over the private socket only\nlocal all all trust\n", f);
    if (fclose(f) != 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not write \"%s\"", hba);
    /* PostgreSQL needs a postgresql.conf in the data folder (Debian keeps it elsewhere). */
    snprintf(path, sizeof(path), "%s/postgresql.conf", d->pgdata);
    if (access(path, F_OK) != 0) {
        f = fopen(path, "we");
        if (f == NULL || fclose(f) != 0)
            return wk_error_sys(err, WK_ERR_IO, errno, "could not create \"%s\"", path);
    }
    snprintf(path, sizeof(path), "%s/postgresql.auto.conf", d->pgdata);
    f = fopen(path, "ae");
    if (f == NULL)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not open \"%s\"", path);
    fprintf(f,
            "# walkeep drill: a disposable server on a private socket that never archives\n"
            "archive_mode = off\n"
            "listen_addresses = ''\n"
            "port = %d\n"
            "unix_socket_directories = '%s'\n"
            "hba_file = '%s'\n"
            "ssl = off\n"
            "hot_standby = on\n"
            "logging_collector = off\n"
            "log_destination = 'stderr'\n"
            "synchronous_standby_names = ''\n"
            "primary_conninfo = ''\n"
            "primary_slot_name = ''\n"
            "recovery_target_action = 'promote'\n"
            "cluster_name = 'walkeep-drill'\n",
            d->port, d->folder, hba);
    if (fclose(f) != 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not write \"%s\"", path);
    return 0;
}

/* A connection to database dbname of the drill's server (its private socket folder);
 * NULL with err on failure. */
static PGconn *connect_db(const drill *d, const char *dbname, wk_error *err)
{
    char conninfo[PATH_MAX + 64];
    /* The folder holds no quote or backslash (checked when it was made). */
    snprintf(conninfo, sizeof(conninfo), "host='%s' port=%d", d->folder, d->port);
    wk_pg_target target = {.conninfo = conninfo, .dbname = dbname, .application = "walkeep-drill"};
    return wk_pg_connect(&target, err);
}

/* ---- the steps ----------------------------------------------------------------------- */

static int restore(drill *d, wk_repo *repo, wk_error *err)
{
    const wk_drill_options *opt = d->opt;
    wk_restore_options ropt = {0};
    wk_restore_plan plan = {0};
    wk_tablespace_map *maps = NULL;
    char(*paths)[PATH_MAX + 64] = NULL;
    wk_error rerr = {0};
    int rc = -1;
    int64_t start = now_ms();

    ropt.pgdata = d->pgdata;
    ropt.target = opt->target;
    ropt.target.action = "promote";
    ropt.backup_label = opt->backup_label;
    ropt.restore_command = opt->restore_command;
    ropt.progress = opt->progress;
    ropt.progress_arg = opt->progress_arg;
    if (wk_restore_plan_make(repo, &ropt, &plan, &rerr) != 0)
        goto failed;
    snprintf(d->report->backup, sizeof(d->report->backup), "%s", plan.backup.label);
    /* The pg_ctl that starts the restored copy must be of the backup's major. */
    if (wk_pg_program_check_major(opt->pg_bindir, "pg_ctl", plan.backup.pg_version, err) != 0)
        goto out;
    maps = calloc(plan.backup.stream_count + 1, sizeof(*maps));
    paths = calloc(plan.backup.stream_count + 1, sizeof(*paths));
    if (maps == NULL || paths == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Every tablespace goes into the temporary folder: nothing touches the real ones. */
    for (size_t i = 0; i < plan.backup.stream_count; i++) {
        const wk_backup_stream *s = &plan.backup.streams[i];
        if (s->location == NULL)
            continue;
        snprintf(paths[ropt.map_count], sizeof(paths[0]), "%s/tablespaces/%u", d->folder,
                 (unsigned)s->tablespace);
        maps[ropt.map_count] =
            (wk_tablespace_map){.from = s->location, .to = paths[ropt.map_count]};
        ropt.map_count++;
    }
    if (ropt.map_count > 0) {
        char dir[PATH_MAX + 32];
        snprintf(dir, sizeof(dir), "%s/tablespaces", d->folder);
        if (mkdir(dir, 0700) != 0) {
            wk_error_sys(err, WK_ERR_IO, errno, "could not create \"%s\"", dir);
            goto out;
        }
    }
    ropt.maps = maps;
    if (wk_restore_lay_down(repo, &ropt, &plan, &rerr) != 0)
        goto failed;
    d->report->restore_ms = now_ms() - start;
    rc = wk_drill_report_add(d->report, "restore", WK_DRILL_OK, err,
                             "backup \"%s\" laid down with %llu WAL segments proven present",
                             plan.backup.label, (unsigned long long)plan.segments);
    if (rc == 0)
        rc = 1; /* go on */
    goto out;
failed:
    d->report->restore_ms = now_ms() - start;
    rc = wk_drill_report_add(d->report, "restore", WK_DRILL_FAILED, err, "%s%s%s", rerr.message,
                             rerr.detail[0] ? ": " : "", rerr.detail);
out:
    free(maps);
    free(paths);
    wk_restore_plan_free(&plan);
    return rc; /* 1: restored; 0: restore failed (reported); -1: error */
}

/* Starts the server and waits until recovery has ended. Returns 1 when the server is up
 * and promoted, 0 when it is not (reported as the failed check "server"), -1 on error. */
static int start_and_wait(drill *d, wk_error *err)
{
    int64_t timeout = d->opt->timeout_ms > 0 ? d->opt->timeout_ms : 3600 * 1000;
    int64_t start = now_ms(), deadline = start + timeout;
    char out[PATH_MAX + 32], buf[512];
    int st;
    snprintf(out, sizeof(out), "%s/pg_ctl.log", d->folder);
    d->started = true;
    if (wk_pgctl_start(d->pg_ctl, d->pgdata, d->log, (int)(timeout / 1000 > 0 ? timeout / 1000 : 1),
                       out, &st, err) != 0)
        return -1;
    if (st != 0) {
        const char *const fatal[] = {"FATAL", "PANIC", NULL};
        char line[1024] = "";
        wk_pgctl_log_find(d->log, fatal, line, sizeof(line));
        return wk_drill_report_add(d->report, "server", WK_DRILL_FAILED, err,
                                   "the server did not start%s%s", line[0] ? ": " : "", line)
                   ? -1
                   : 0;
    }
    for (;;) {
        if (cancelled(d))
            return wk_error_set(err, WK_ERR_INTERNAL, "interrupted");
        wk_error ce = {0};
        PGconn *conn = connect_db(d, "postgres", &ce);
        if (conn != NULL) {
            PGresult *res = PQexec(conn, "SELECT pg_is_in_recovery()");
            bool done = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                        strcmp(PQgetvalue(res, 0, 0), "f") == 0;
            PQclear(res);
            if (done) {
                d->report->replay_ms = now_ms() - start;
                int rc = wk_drill_report_add(d->report, "server", WK_DRILL_OK, err,
                                             "up on port %d, recovery ended after %.1f s", d->port,
                                             (double)d->report->replay_ms / 1000.0);
                PQfinish(conn);
                return rc == 0 ? 1 : -1;
            }
        }
        if (!wk_pgctl_running(d->pgdata)) {
            const char *const fatal[] = {"FATAL", "PANIC", NULL};
            char line[1024] = "";
            wk_pgctl_log_find(d->log, fatal, line, sizeof(line));
            if (line[0] == '\0')
                snprintf(line, sizeof(line), "%s", ce.message);
            PQfinish(conn);
            return wk_drill_report_add(d->report, "server", WK_DRILL_FAILED, err,
                                       "the server stopped during recovery: %s", line)
                       ? -1
                       : 0;
        }
        PQfinish(conn);
        if (now_ms() >= deadline) {
            snprintf(buf, sizeof(buf), "recovery did not end within %lld s",
                     (long long)(timeout / 1000));
            return wk_drill_report_add(d->report, "server", WK_DRILL_FAILED, err, "%s", buf) ? -1
                                                                                             : 0;
        }
        usleep(250000);
    }
}

static int check_target(drill *d, wk_error *err)
{
    char line[1024] = "";
    if (d->opt->target.kind == WK_TARGET_END) {
        const char *const done[] = {"archive recovery complete", NULL};
        if (wk_pgctl_log_find(d->log, done, line, sizeof(line)))
            return wk_drill_report_add(d->report, "target", WK_DRILL_OK, err,
                                       "end of the archive: %s", line);
        return wk_drill_report_add(d->report, "target", WK_DRILL_FAILED, err,
                                   "the server log does not say \"archive recovery complete\"");
    }
    const char *const stop[] = {"recovery stopping", NULL};
    if (wk_pgctl_log_find(d->log, stop, line, sizeof(line)))
        return wk_drill_report_add(d->report, "target", WK_DRILL_OK, err, "%s", line);
    return wk_drill_report_add(d->report, "target", WK_DRILL_FAILED, err,
                               "the server log does not say \"recovery stopping\": the target "
                               "was not reached");
}

/* amcheck's bt_index_check over every valid B-tree index of every connectable database. */
static int check_amcheck(drill *d, wk_error *err)
{
    char msg[512], detail[768] = "";
    unsigned long indexes = 0, dbs = 0;
    int rc = -1;
    wk_error ce = {0};
    PGconn *conn = connect_db(d, "postgres", &ce);
    PGresult *res = NULL;
    if (conn == NULL) {
        rc = wk_drill_report_add(d->report, "amcheck", WK_DRILL_FAILED, err, "%s", ce.message);
        goto out;
    }
    res = PQexec(conn, "SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck'");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) == 0) {
        rc = wk_drill_report_add(d->report, "amcheck", WK_DRILL_SKIPPED, err,
                                 "the amcheck extension is not installed on this server");
        goto out;
    }
    PQclear(res);
    res = PQexec(conn, "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = wk_drill_report_add(d->report, "amcheck", WK_DRILL_FAILED, err,
                                 "could not list the databases: %s",
                                 wk_pg_first_line(PQresultErrorMessage(res), msg, sizeof(msg)));
        goto out;
    }
    for (int i = 0; i < PQntuples(res) && detail[0] == '\0'; i++) {
        const char *db = PQgetvalue(res, i, 0);
        PGconn *c = connect_db(d, db, &ce);
        PGresult *r = NULL;
        if (c == NULL) {
            snprintf(detail, sizeof(detail), "database \"%s\": %s", db, ce.message);
            break;
        }
        dbs++;
        r = PQexec(c, "SET client_min_messages = warning; "
                      "CREATE EXTENSION IF NOT EXISTS amcheck");
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            snprintf(detail, sizeof(detail),
                     "could not create the extension in database "
                     "\"%s\": %s",
                     db, wk_pg_first_line(PQresultErrorMessage(r), msg, sizeof(msg)));
            PQclear(r);
            PQfinish(c);
            break;
        }
        PQclear(r);
        r = PQexec(c, "SELECT c.oid, c.oid::regclass::text FROM pg_index i "
                      "JOIN pg_class c ON c.oid = i.indexrelid "
                      "JOIN pg_am a ON a.oid = c.relam "
                      "WHERE a.amname = 'btree' AND c.relpersistence <> 't' "
                      "AND i.indisvalid AND i.indisready ORDER BY 1");
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            snprintf(detail, sizeof(detail), "could not list the indexes of database \"%s\": %s",
                     db, wk_pg_first_line(PQresultErrorMessage(r), msg, sizeof(msg)));
            PQclear(r);
            PQfinish(c);
            break;
        }
        for (int j = 0; j < PQntuples(r) && detail[0] == '\0'; j++) {
            const char *params[] = {PQgetvalue(r, j, 0)};
            PGresult *chk = PQexecParams(c, "SELECT bt_index_check($1::oid::regclass)", 1, NULL,
                                         params, NULL, NULL, 0);
            if (PQresultStatus(chk) != PGRES_TUPLES_OK)
                snprintf(detail, sizeof(detail), "index \"%s\" in database \"%s\": %s",
                         PQgetvalue(r, j, 1), db,
                         wk_pg_first_line(PQresultErrorMessage(chk), msg, sizeof(msg)));
            else
                indexes++;
            PQclear(chk);
        }
        PQclear(r);
        PQfinish(c);
    }
    if (detail[0] != '\0')
        rc = wk_drill_report_add(d->report, "amcheck", WK_DRILL_FAILED, err, "%s", detail);
    else
        rc = wk_drill_report_add(d->report, "amcheck", WK_DRILL_OK, err,
                                 "%lu B-tree indexes checked in %lu databases", indexes, dbs);
out:
    PQclear(res);
    PQfinish(conn);
    return rc;
}

static int check_queries(drill *d, wk_error *err)
{
    char name[64], msg[512];
    PGconn *conn = NULL;
    for (size_t i = 0; i < d->opt->query_count; i++) {
        const wk_drill_query *q = &d->opt->queries[i];
        snprintf(name, sizeof(name), "sql line %d", q->line);
        wk_error ce = {0};
        if (conn == NULL)
            conn = connect_db(d, d->opt->sql_dbname != NULL ? d->opt->sql_dbname : "postgres", &ce);
        if (conn == NULL) {
            if (wk_drill_report_add(d->report, name, WK_DRILL_FAILED, err, "%s", ce.message) != 0)
                goto fail;
            continue;
        }
        PGresult *res = PQexec(conn, q->sql);
        int rc;
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
            rc = wk_drill_report_add(d->report, name, WK_DRILL_FAILED, err, "%s: %s", q->sql,
                                     wk_pg_first_line(PQresultErrorMessage(res), msg, sizeof(msg)));
        } else if (st != PGRES_TUPLES_OK || PQntuples(res) == 0 || PQnfields(res) == 0) {
            rc = wk_drill_report_add(d->report, name, WK_DRILL_FAILED, err,
                                     "%s: expected %s, got no rows", q->sql, q->expected);
        } else {
            const char *got = PQgetisnull(res, 0, 0) ? "NULL" : PQgetvalue(res, 0, 0);
            bool same = strcmp(got, q->expected) == 0;
            rc = wk_drill_report_add(d->report, name, same ? WK_DRILL_OK : WK_DRILL_FAILED, err,
                                     same ? "%s => %s" : "%s: expected %s, got %s", q->sql,
                                     same ? got : q->expected, got);
        }
        PQclear(res);
        if (rc != 0)
            goto fail;
    }
    PQfinish(conn);
    return 0;
fail:
    PQfinish(conn);
    return -1;
}

/* ---- the run ------------------------------------------------------------------------- */

int wk_drill_run(wk_repo *repo, const wk_drill_options *opt, wk_drill_report *report, wk_error *err)
{
    drill d = {.opt = opt, .report = report};
    int rc = -1;
    report->restore_ms = -1;
    report->replay_ms = -1;
    describe_target(&opt->target, report->target, sizeof(report->target));
    if (opt->restore_command == NULL)
        return wk_error_set(err, WK_ERR_INTERNAL, "the drill needs a restore_command");

    const char *parent = opt->tmp_parent;
    if (parent == NULL || parent[0] == '\0')
        parent = getenv("TMPDIR");
    if (parent == NULL || parent[0] == '\0')
        parent = "/tmp";
    if (strlen(parent) > 64 || strpbrk(parent, "'\\\n") != NULL) {
        /* The server's socket lives in the folder, and a socket path holds at most 107
         * bytes. */
        wk_error_set(err, WK_ERR_USAGE,
                     "temporary folder \"%s\" is too long or holds quotes "
                     "for the drill's socket",
                     parent);
        wk_error_hint(err, "set TMPDIR to a short path such as /tmp");
        return -1;
    }
    snprintf(d.folder, sizeof(d.folder), "%s/walkeep-drill.XXXXXX", parent);
    if (mkdtemp(d.folder) == NULL)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not create a temporary folder in \"%s\"",
                            parent);
    chmod(d.folder, 0700);
    snprintf(report->folder, sizeof(report->folder), "%s", d.folder);
    snprintf(d.pgdata, sizeof(d.pgdata), "%s/data", d.folder);
    snprintf(d.log, sizeof(d.log), "%s/server.log", d.folder);
    wk_pgctl_path(d.pg_ctl, sizeof(d.pg_ctl), opt->pg_bindir);
    srand((unsigned)(time(NULL) ^ getpid()));
    d.port = 50000 + rand() % 10000; /* the socket is private: any port number will do */

    int restored = restore(&d, repo, err);
    if (restored < 0)
        goto out;
    if (restored == 0) {
        rc = 0;
        goto out;
    }
    if (cancelled(&d)) {
        wk_error_set(err, WK_ERR_INTERNAL, "interrupted");
        goto out;
    }
    if (write_settings(&d, err) != 0)
        goto out;
    int up = start_and_wait(&d, err);
    if (up < 0)
        goto out;
    if (up > 0) {
        if (check_target(&d, err) != 0 || check_amcheck(&d, err) != 0 ||
            check_queries(&d, err) != 0)
            goto out;
    } else if (check_target(&d, err) != 0) {
        goto out;
    }
    rc = 0;
out:
    stop_server(&d);
    if (opt->keep) {
        report->kept = true;
    } else {
        nftw(d.folder, remove_entry, 32, FTW_DEPTH | FTW_PHYS);
    }
    return rc;
}
