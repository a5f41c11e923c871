/* pgctl: the server of a restored data directory, started and stopped with pg_ctl, and
 * its log searched; shared by pitr-restore --start and walkeep drill (over proc). */
#ifndef WK_PGCTL_H
#define WK_PGCTL_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* "<bindir>/pg_ctl", or "pg_ctl" (looked up in PATH) when bindir is NULL or "". pg_ctl is
 * always run by that path as argv[0]: it starts the postgres beside the program argv[0]
 * names. */
void wk_pgctl_path(char *buf, size_t size, const char *bindir);

/* "pg_ctl -D pgdata -l logfile -w -t timeout_s start" (timeout_s > 0), or "... -W start"
 * (timeout_s 0: returns once the server is launched). pg_ctl's own output is appended to
 * output_file (NULL: inherited). Returns 0 with *exit_status pg_ctl's exit code, or -1
 * when pg_ctl could not be run (WK_ERR_IO "could not run ..."). */
int wk_pgctl_start(const char *pg_ctl, const char *pgdata, const char *logfile, int timeout_s,
                   const char *output_file, int *exit_status, wk_error *err);

/* Whether the postmaster that pgdata/postmaster.pid names is alive. */
bool wk_pgctl_running(const char *pgdata);

/* The process id in pgdata/postmaster.pid when that process is alive (also when it is
 * another user's, as the server's is for root's neighbours), else 0: no file, or one
 * left by a server that is gone. */
long wk_pgctl_running_pid(const char *pgdata);

/* Stops the server of pgdata: pg_ctl stop -m fast, then -m immediate, then SIGKILL to the
 * postmaster, waiting up to 10 s for it to go. pg_ctl's output is appended to
 * output_file (NULL: inherited). Never fails: what can be done is done. */
void wk_pgctl_stop(const char *pg_ctl, const char *pgdata, const char *output_file);

/* Finds the last line of the server log holding one of needles (NULL-terminated) and
 * copies it into out (size bytes) from the end of its "LOG:  " / "FATAL:  " prefix, or
 * from the needle when the needle is in that prefix ("FATAL:  ..."). Returns true when
 * one was found; out is untouched otherwise. */
bool wk_pgctl_log_find(const char *logfile, const char *const needles[], char *out, size_t size);

#endif
