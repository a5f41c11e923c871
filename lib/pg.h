/* pg: talking to a PostgreSQL server over libpq; the one home for connecting (with the
 * hints walkeep gives), the first line of a server's message, and a one-row query.
 * Server layer: over error, used by the workers that need a server. */
#ifndef WK_PG_H
#define WK_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Copies the first line of a libpq message (which may hold several lines and ends in a
 * newline; NULL is "") into buf (size > 0 bytes, always terminated). Returns buf. */
const char *wk_pg_first_line(const char *message, char *buf, size_t size);

/* Sets err to code and "<what>: <first line of message>". Returns -1. */
int wk_pg_error(wk_error *err, wk_errcode code, const char *what, const char *message);

/* How to connect. Everything but conninfo may be left zero. */
typedef struct wk_pg_target {
    const char *conninfo;    /* pg_conninfo: a libpq connection string; NULL or "": defaults */
    const char *dbname;      /* NULL: conninfo's; else this database instead */
    const char *password;    /* NULL: libpq's own ways (PGPASSWORD, .pgpass) */
    const char *application; /* fallback_application_name ("walkeep-check") */
    bool replication;        /* a physical replication connection (BASE_BACKUP) */
} wk_pg_target;

/* Connects; a connect_timeout of 10 s applies unless conninfo sets one. On failure
 * returns NULL with WK_ERR_IO "could not connect to the server: <first line>" and a hint
 * (check "pg_conninfo"; for replication, the REPLICATION attribute and pg_hba.conf). */
PGconn *wk_pg_connect(const wk_pg_target *target, wk_error *err);

/* Runs sql and expects exactly one row: the result (the caller PQclear()s it), or NULL
 * with WK_ERR_IO "<what>: <first line of the server's message>". */
PGresult *wk_pg_one_row(PGconn *conn, const char *sql, const char *what, wk_error *err);

#endif
