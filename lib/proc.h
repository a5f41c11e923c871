/* proc: child processes, the one home for starting, waiting for and stopping them, and
 * for reading what a short one prints; lowest layer (over error). Everything a child
 * needs is prepared before fork; a failed exec is reported back, never a silent 127. */
#ifndef WK_PROC_H
#define WK_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

typedef struct wk_proc_spec {
    char *const *argv;     /* argv[0]: a path, or a name looked up in PATH */
    const char *env_name;  /* NULL, or one variable set for the child alone ("PGPASSWORD") */
    const char *env_value; /* its value; the copy made for the child is wiped after use */
    int in_fd;             /* -1: inherited; else made the child's stdin */
    int out_fd;            /* -1: inherited; else its stdout */
    int err_fd;            /* -1: inherited; else its stderr */
} wk_proc_spec;

/* A spec with every stream inherited and no extra variable. */
#define WK_PROC_SPEC(args) ((wk_proc_spec){.argv = (args), .in_fd = -1, .out_fd = -1, .err_fd = -1})

/* Starts the child; *pid is written on success. A program that cannot be run is
 * WK_ERR_IO "could not run "<argv[0]>"" with the exec's errno. SIGPIPE is reset to its
 * default in the child. */
int wk_proc_spawn(const wk_proc_spec *spec, pid_t *pid, wk_error *err);

/* Waits for the child. A non-zero exit is WK_ERR_IO "<name> failed with exit status N"
 * (or "was terminated by signal N"); its own messages are wherever its stderr went. */
int wk_proc_wait(pid_t pid, const char *name, wk_error *err);

/* Stops a child whose work is abandoned (SIGTERM) and reaps it. */
void wk_proc_stop(pid_t pid);

/* Spawns and waits. With exit_status NULL a non-zero exit is an error, as for
 * wk_proc_wait; otherwise it is not: *exit_status gets the exit code (128 + the signal
 * for a child killed by one) and only a child that could not be run fails. */
int wk_proc_run(const wk_proc_spec *spec, int *exit_status, wk_error *err);

/* Runs the child with its stdout read into out (size > 0: the first size - 1 bytes kept and
 * NUL-terminated, the rest read and dropped, so the child ends normally); spec->out_fd
 * is ignored. A non-zero exit is an error, as for wk_proc_wait. */
int wk_proc_capture(const wk_proc_spec *spec, char *out, size_t size, wk_error *err);

/* The base name of a program path, for messages ("/usr/bin/pg_dump" -> "pg_dump"). */
const char *wk_proc_name(const char *path);

/* Whether no process pid runs on this machine (kill(pid, 0) says ESRCH, or it is a zombie
 * that exited and waits to be reaped): a file marked with that pid has no live writer.
 * False for pid <= 0 and when it cannot be told. */
bool wk_proc_is_gone(long pid);

#endif
