/* walkeep info: what the repository holds: each backup with its status, the WAL per
 * timeline as ranges with gaps, and the window one can restore to. */
#ifndef WK_INFO_H
#define WK_INFO_H

#include <stdbool.h>

#include "error.h"
#include "repo.h"

/* Prints the report on stdout, as text or as one JSON object. */
int wk_info_run(wk_repo *repo, bool json, wk_error *err);

#endif
