/* pgversion: the supported PostgreSQL majors, the one way a program refuses another, and
 * the version of a PostgreSQL program; lowest layer (over error and proc). */
#include "pgversion.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"

int wk_pg_major_of_num(int version_num)
{
    /* From 10 on the major is the number / 10000; before, 9.6.24 was 90624. */
    if (version_num >= 100000)
        return version_num / 10000;
    return version_num / 100;
}

void wk_pg_major_format(char *buf, size_t size, int major)
{
    if (size == 0)
        return;
    if (major >= 900 && major <= 999)
        snprintf(buf, size, "%d.%d", major / 100, major % 100);
    else
        snprintf(buf, size, "%d", major);
}

bool wk_pg_major_supported(int major)
{
    return major >= WK_PG_MAJOR_MIN && major <= WK_PG_MAJOR_MAX;
}

int wk_pg_major_check(int major, const char *what, wk_error *err)
{
    char seen[16];

    if (wk_pg_major_supported(major))
        return 0;
    wk_pg_major_format(seen, sizeof(seen), major);
    /* 9.6 is numbered 906: older than 15 although the number is larger. */
    if (major > WK_PG_MAJOR_MAX && !(major >= 900 && major <= 999)) {
        wk_error_set(err, WK_ERR_CLUSTER,
                     "%s is PostgreSQL %s, newer than this walkeep supports (PostgreSQL %d to %d)",
                     what, seen, WK_PG_MAJOR_MIN, WK_PG_MAJOR_MAX);
        wk_error_hint(err, "install a walkeep release that supports PostgreSQL %s", seen);
        return -1;
    }
    wk_error_set(err, WK_ERR_CLUSTER,
                 "%s is PostgreSQL %s, older than this walkeep supports (PostgreSQL %d to %d)",
                 what, seen, WK_PG_MAJOR_MIN, WK_PG_MAJOR_MAX);
    wk_error_hint(err, "upgrade the cluster to PostgreSQL %d or later (pg_upgrade)",
                  WK_PG_MAJOR_MIN);
    return -1;
}

void wk_pg_bindir_describe(char *buf, size_t size, const char *bindir)
{
    if (size == 0)
        return;
    if (bindir == NULL || bindir[0] == '\0')
        snprintf(buf, size, "unset, from PATH");
    else
        snprintf(buf, size, "\"%s\"", bindir);
}

int wk_pg_program_version(const char *bindir, const char *name, char *version, size_t vsize,
                          int *major, wk_error *err)
{
    char path[4096], out[256];
    bool in_path = bindir == NULL || bindir[0] == '\0';

    if (snprintf(path, sizeof(path), "%s%s%s", in_path ? "" : bindir, in_path ? "" : "/", name) >=
        (int)sizeof(path))
        return wk_error_set(err, WK_ERR_CONFIG, "pg_bindir \"%.200s...\" is too long", bindir);
    char *argv[] = {path, "--version", NULL};
    wk_proc_spec spec = WK_PROC_SPEC(argv);
    if (wk_proc_capture(&spec, out, sizeof(out), err) != 0) {
        wk_error_hint(err, "set \"pg_bindir\" to the folder holding the PostgreSQL programs");
        return -1;
    }
    const char *p = strstr(out, "(PostgreSQL) ");
    char *end = NULL;
    long m = p != NULL ? strtol(p + 13, &end, 10) : 0;
    if (p == NULL || end == p + 13 || m <= 0 || m > 999) {
        out[strcspn(out, "\n")] = '\0';
        return wk_error_set(err, WK_ERR_IO, "could not read the version of \"%s\" from \"%.100s\"",
                            path, out);
    }
    p += 13;
    snprintf(version, vsize, "%.*s", (int)strcspn(p, " \n"), p);
    *major = (int)m;
    return 0;
}

int wk_pg_program_check_major(const char *bindir, const char *name, int major, wk_error *err)
{
    char version[64], where[4200], needed[16];
    int found = 0;

    if (wk_pg_program_version(bindir, name, version, sizeof(version), &found, err) != 0)
        return -1;
    if (found == major)
        return 0;
    wk_pg_bindir_describe(where, sizeof(where), bindir);
    wk_pg_major_format(needed, sizeof(needed), major);
    wk_error_set(err, WK_ERR_CONFIG,
                 "%s %s (pg_bindir %s) cannot start a data directory of PostgreSQL %s", name,
                 version, where, needed);
    wk_error_hint(err, "set \"pg_bindir\" to the bin folder of PostgreSQL %s", needed);
    return -1;
}
