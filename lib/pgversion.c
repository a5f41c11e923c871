/* pgversion: the supported PostgreSQL majors and the one way a program refuses another;
 * lowest layer (over error), pure functions. */
#include "pgversion.h"

#include <stdio.h>

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

int wk_pg_major_check(int major, const char *what, wk_error *err)
{
    char seen[16];

    if (major >= WK_PG_MAJOR_MIN && major <= WK_PG_MAJOR_MAX)
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
