/* fuzz.c: the harnesses' shared helpers (fuzz.h). */
#include "fuzz.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[256];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    if (ftw->level == 0)
        return 0;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void fz_empty(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_scratch(void)
{
    fz_empty(scratch);
    rmdir(scratch);
}

const char *fz_scratch(void)
{
    if (scratch[0] == '\0') {
        snprintf(scratch, sizeof(scratch), "/tmp/wk-fuzz-XXXXXX");
        if (mkdtemp(scratch) == NULL)
            abort();
        atexit(remove_scratch);
    }
    return scratch;
}

int fz_write(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    ssize_t n = len > 0 ? write(fd, data, len) : 0;
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

const wk_key *fz_key(void)
{
    static wk_key *key;
    if (key == NULL) {
        char path[300];
        wk_error err = {0};
        snprintf(path, sizeof(path), "%s/test.key", fz_scratch());
        fz_write(path, "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210\n", 65);
        if (wk_key_load(path, &key, &err) != 0)
            abort();
    }
    return key;
}
