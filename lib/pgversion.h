/* pgversion: which PostgreSQL majors this walkeep supports, the one refusal every program
 * gives for another, and the version of a PostgreSQL program (lowest layer: over error
 * and proc; its only I/O is running "<program> --version"). */
#ifndef WK_PGVERSION_H
#define WK_PGVERSION_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* The supported majors, oldest and newest. docs/versions.md says what differs. */
#define WK_PG_MAJOR_MIN 15
#define WK_PG_MAJOR_MAX 18

/* True for a major of WK_PG_MAJOR_MIN to WK_PG_MAJOR_MAX (no message: for hot paths that
 * build one only when it is needed). */
bool wk_pg_major_supported(int major);

/* Checks a PostgreSQL major version (15, 18; 906 for 9.6) that `what` reported, e.g.
 * "the server", "data directory \"/srv/pg\"", "backup \"20261207T1200\"". Returns 0 for
 * a supported one; else -1 with WK_ERR_CLUSTER, a message naming `what` and the version,
 * and a hint saying what to do. err may be NULL. */
int wk_pg_major_check(int major, const char *what, wk_error *err);

/* The major of a server_version_num (180004 -> 18, 90624 -> 906). */
int wk_pg_major_of_num(int version_num);

/* Prints a major as PostgreSQL names it ("18", "9.6") into buf (>= 8 bytes). */
void wk_pg_major_format(char *buf, size_t size, int major);

/* Describes a pg_bindir for a message: "\"/usr/lib/postgresql/18/bin\"", or "unset, from
 * PATH" for NULL or "". Writes into buf (always terminated). */
void wk_pg_bindir_describe(char *buf, size_t size, const char *bindir);

/* Runs "<bindir>/<name> --version" (name looked up in PATH when bindir is NULL or "") with
 * stdin and stderr shared, and reads what it prints ("pg_ctl (PostgreSQL)
 * 18.4 (Debian ...)"): *version "18.4" (into a buffer of vsize bytes), *major 18. Returns
 * 0, or -1 with WK_ERR_IO when it cannot be run, fails, or prints no version; the
 * outputs are written only on success. */
int wk_pg_program_version(const char *bindir, const char *name, char *version, size_t vsize,
                          int *major, wk_error *err);

/* Checks that program `name` of pg_bindir (pg_ctl, which starts the postgres beside it)
 * is of PostgreSQL `major`, the major of a data directory it is to start: a server runs
 * only the data directories of its own major. Returns 0, or -1 with WK_ERR_CONFIG naming
 * the program, its version, pg_bindir and the major needed, with a hint; or the error of
 * wk_pg_program_version. */
int wk_pg_program_check_major(const char *bindir, const char *name, int major, wk_error *err);

#endif
