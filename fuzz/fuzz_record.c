/* fuzz_record: backup and dump records read from a repository, and the checks a restore
 * makes on a backup record. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "backup.h"
#include "dump.h"
#include "fuzz.h"
#include "repo.h"

static wk_repo *repo;

static wk_repo *fuzz_repo(void)
{
    if (repo == NULL) {
        char path[300];
        snprintf(path, sizeof(path), "%s/repo", fz_scratch());
        wk_config cfg = {0};
        cfg.repo = path;
        cfg.compress = WK_COMPRESS_LZ4;
        cfg.compress_level = WK_COMPRESS_LEVEL_DEFAULT;
        wk_error err = {0};
        if (wk_repo_open(&cfg, true, &repo, &err) != 0)
            abort();
        snprintf(path, sizeof(path), "%s/repo/backups", fz_scratch());
        mkdir(path, 0700);
        snprintf(path, sizeof(path), "%s/repo/backups/f", fz_scratch());
        mkdir(path, 0700);
        snprintf(path, sizeof(path), "%s/repo/dumps", fz_scratch());
        mkdir(path, 0700);
        snprintf(path, sizeof(path), "%s/repo/dumps/f", fz_scratch());
        mkdir(path, 0700);
    }
    return repo;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    wk_repo *r = fuzz_repo();
    char path[300];
    wk_error err = {0};
    snprintf(path, sizeof(path), "%s/repo/backups/f/backup.json", fz_scratch());
    fz_write(path, data, len);
    wk_backup_record b;
    if (wk_backup_record_read(r, "f", &b, &err) == 0) {
        wk_backup_record_check(&b, "f", &err);
        wk_backup_record_free(&b);
    }
    snprintf(path, sizeof(path), "%s/repo/dumps/f/dump.json", fz_scratch());
    fz_write(path, data, len);
    wk_dump_record d;
    if (wk_dump_record_read(r, "f", &d, &err) == 0)
        wk_dump_record_free(&d);
    return 0;
}
