/* cluster: facts read from a PostgreSQL data directory without a server: its identity
 * (system identifier, WAL segment size, major version) for the repository metadata. */
#include "cluster.h"

#include <limits.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wal.h"

static int read_pg_version(const char *pgdata, int *version, wk_error *err)
{
    char path[4096], text[16] = {0};
    snprintf(path, sizeof(path), "%s/PG_VERSION", pgdata);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        wk_errcode code = errno == ENOENT ? WK_ERR_NOTFOUND : WK_ERR_IO;
        wk_error_sys(err, code, errno, "could not open \"%s\"", path);
        if (code == WK_ERR_NOTFOUND)
            wk_error_hint(err, "is \"%s\" a PostgreSQL data directory? set \"pgdata\"", pgdata);
        return -1;
    }
    char *ok = fgets(text, sizeof(text), f);
    fclose(f);
    char *end = NULL;
    long v = ok != NULL ? strtol(text, &end, 10) : 0;
    /* Before 10 the major version had two parts: "9.6" is numbered 906, as in wal.c. */
    if (ok != NULL && v == 9 && *end == '.') {
        char *minor_start = end + 1;
        long minor = strtol(minor_start, &end, 10);
        v = end == minor_start ? 0 : 900 + minor;
    }
    bool known = (v >= 10 && v <= 99) || (v >= 900 && v <= 999);
    if (ok == NULL || end == text || !known)
        return wk_error_set(err, WK_ERR_CORRUPT, "file \"%s\" holds no PostgreSQL version", path);
    *version = (int)v;
    return 0;
}

int wk_cluster_read_identity(const char *pgdata, wk_repo_meta *identity, wk_error *err)
{
    char waldir[4096], path[4096 + 1 + 256];
    wk_wal_header hdr;
    int version = 0;
    bool found = false;

    memset(identity, 0, sizeof(*identity));
    if (read_pg_version(pgdata, &version, err) != 0)
        return -1;
    snprintf(waldir, sizeof(waldir), "%s/%s", pgdata,
             version >= 10 && version < 900 ? "pg_wal" : "pg_xlog");
    DIR *dir = opendir(waldir);
    if (dir == NULL)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not open folder \"%s\"", waldir);
    /* Any segment will do: recycled ones keep the cluster's identity in their header. */
    for (struct dirent *de = readdir(dir); de != NULL && !found; de = readdir(dir)) {
        wk_wal_name parsed;
        uint8_t buf[WK_WAL_LONG_HEADER_SIZE];
        if (wk_wal_parse_name(de->d_name, &parsed, NULL) != 0 || parsed.kind != WK_WAL_SEGMENT)
            continue;
        snprintf(path, sizeof(path), "%s/%s", waldir, de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        close(fd);
        if (n == (ssize_t)sizeof(buf) && wk_wal_parse_header(buf, sizeof(buf), &hdr, NULL) == 0)
            found = true;
    }
    closedir(dir);
    if (!found)
        return wk_error_set(err, WK_ERR_CORRUPT, "no readable WAL segment in \"%s\"", waldir);
    identity->system_identifier = hdr.system_identifier;
    identity->seg_size = hdr.seg_size;
    identity->pg_version = version;
    return 0;
}

int wk_cluster_control_identifier(const char *pgdata, uint64_t *system_identifier, wk_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/global/pg_control", pgdata);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return wk_error_sys(err, errno == ENOENT ? WK_ERR_NOTFOUND : WK_ERR_IO, errno,
                            "could not open \"%s\"", path);
    ssize_t n = pread(fd, system_identifier, sizeof(*system_identifier), 0);
    int e = errno;
    close(fd);
    if (n != (ssize_t)sizeof(*system_identifier))
        return wk_error_sys(err, WK_ERR_IO, n < 0 ? e : EIO, "could not read \"%s\"", path);
    return 0;
}
