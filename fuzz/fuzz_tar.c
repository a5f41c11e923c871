/* fuzz_tar: tar extraction into a scratch folder; afterwards nothing may exist outside it
 * (a file written outside would abort the run). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "tar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char dest[300], outside[300];
    snprintf(dest, sizeof(dest), "%s/dest", fz_scratch());
    snprintf(outside, sizeof(outside), "%s/outside", fz_scratch());
    mkdir(dest, 0700);
    wk_error err = {0};
    wk_stage *st = wk_tar_extract_new(dest, NULL, &err);
    if (st == NULL)
        abort();
    if (wk_stage_write(st, data, len, &err) == 0)
        wk_stage_finish(st, &err);
    wk_stage_free(st);
    fz_empty(dest);
    struct stat sb;
    /* The seeds try to write "../outside": it must never appear. */
    if (lstat(outside, &sb) == 0)
        abort();
    return 0;
}
