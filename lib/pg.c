/* pg: connecting to a PostgreSQL server, its messages and one-row queries; server layer. */
#include "pg.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

const char *wk_pg_first_line(const char *message, char *buf, size_t size)
{
    snprintf(buf, size, "%s", message != NULL ? message : "");
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

int wk_pg_error(wk_error *err, wk_errcode code, const char *what, const char *message)
{
    char line[400];
    return wk_error_set(err, code, "%s: %s", what, wk_pg_first_line(message, line, sizeof(line)));
}

/* The server's notices ("database ... does not exist, skipping") are walkeep's debug
 * notices, not lines of their own on stderr. */
static void forward_notice(void *arg, const char *message)
{
    char line[512];
    (void)arg;
    wk_notice(WK_LOG_DEBUG, "server: %s", wk_pg_first_line(message, line, sizeof(line)));
}

PGconn *wk_pg_connect(const wk_pg_target *t, wk_error *err)
{
    /* In order: connect_timeout first, so that one in conninfo (expanded from the first
     * "dbname") wins; a second "dbname" is a plain database name that replaces conninfo's. */
    const char *keys[8], *values[8];
    size_t n = 0;
    keys[n] = "connect_timeout";
    values[n++] = "10";
    keys[n] = "dbname";
    values[n++] = t->conninfo != NULL ? t->conninfo : "";
    if (t->dbname != NULL) {
        keys[n] = "dbname";
        values[n++] = t->dbname;
    }
    if (t->replication) {
        keys[n] = "replication";
        values[n++] = "true";
    }
    if (t->application != NULL) {
        keys[n] = "fallback_application_name";
        values[n++] = t->application;
    }
    if (t->password != NULL) {
        keys[n] = "password";
        values[n++] = t->password;
    }
    keys[n] = NULL;
    values[n] = NULL;
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (conn == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        wk_pg_error(err, WK_ERR_IO, "could not connect to the server", PQerrorMessage(conn));
        if (t->replication)
            wk_error_hint(err, "check \"pg_conninfo\"; the role needs the REPLICATION attribute "
                               "and pg_hba.conf a \"replication\" line");
        else
            wk_error_hint(err, "check \"pg_conninfo\"");
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, forward_notice, NULL);
    return conn;
}

PGresult *wk_pg_one_row(PGconn *conn, const char *sql, const char *what, wk_error *err)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        return res;
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        wk_error_set(err, WK_ERR_IO, "%s: %d rows instead of one", what, PQntuples(res));
    else
        wk_pg_error(err, WK_ERR_IO, what, PQerrorMessage(conn));
    PQclear(res);
    return NULL;
}
