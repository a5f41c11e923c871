/* pgversion: which PostgreSQL majors this walkeep supports, and the one refusal every
 * program gives for another (lowest layer: over error only; no I/O). */
#ifndef WK_PGVERSION_H
#define WK_PGVERSION_H

#include <stddef.h>

#include "error.h"

/* The supported majors, oldest and newest. docs/versions.md says what differs. */
#define WK_PG_MAJOR_MIN 15
#define WK_PG_MAJOR_MAX 18

/* Checks a PostgreSQL major version (15, 18; 906 for 9.6) that `what` reported, e.g.
 * "the server", "data directory \"/srv/pg\"", "backup \"20261207T1200\"". Returns 0 for
 * a supported one; else -1 with WK_ERR_CLUSTER, a message naming `what` and the version,
 * and a hint saying what to do. err may be NULL. */
int wk_pg_major_check(int major, const char *what, wk_error *err);

/* The major of a server_version_num (180004 -> 18, 90624 -> 906). */
int wk_pg_major_of_num(int version_num);

/* Prints a major as PostgreSQL names it ("18", "9.6") into buf (>= 8 bytes). */
void wk_pg_major_format(char *buf, size_t size, int major);

#endif
