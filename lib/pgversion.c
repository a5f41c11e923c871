/* pgversion: the supported PostgreSQL majors, the one way a program refuses another, and
 * the version of a PostgreSQL program; lowest layer (over error). */
#include "pgversion.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

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

void wk_pg_bindir_describe(char *buf, size_t size, const char *bindir)
{
    if (size == 0)
        return;
    if (bindir == NULL || bindir[0] == '\0')
        snprintf(buf, size, "unset, from PATH");
    else
        snprintf(buf, size, "\"%s\"", bindir);
}

/* What "<program> --version" printed: the first size - 1 bytes are kept, the rest is read
 * and dropped, so that the program ends normally (not by SIGPIPE). */
static int read_output(int fd, char *buf, size_t size)
{
    char drop[4096];
    size_t used = 0;
    for (;;) {
        bool keep = used + 1 < size;
        ssize_t n = keep ? read(fd, buf + used, size - 1 - used) : read(fd, drop, sizeof(drop));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (keep)
            used += (size_t)n;
    }
    buf[used] = '\0';
    return 0;
}

int wk_pg_program_version(const char *bindir, const char *name, char *version, size_t vsize,
                          int *major, wk_error *err)
{
    char path[4096], out[256];
    int fds[2] = {-1, -1}, rc = -1, status, spawn_rc;
    bool in_path = bindir == NULL || bindir[0] == '\0';
    pid_t pid;
    posix_spawn_file_actions_t actions;

    if (snprintf(path, sizeof(path), "%s%s%s", in_path ? "" : bindir, in_path ? "" : "/",
                 name) >= (int)sizeof(path))
        return wk_error_set(err, WK_ERR_CONFIG, "pg_bindir \"%.200s...\" is too long", bindir);
    if (pipe2(fds, O_CLOEXEC) != 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not create a pipe");
    if (posix_spawn_file_actions_init(&actions) != 0) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    char *argv[] = {path, "--version", NULL};
    spawn_rc = posix_spawnp(&pid, path, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    fds[1] = -1;
    if (spawn_rc != 0) {
        wk_error_sys(err, WK_ERR_IO, spawn_rc, "could not run \"%s\"", path);
        wk_error_hint(err, "set \"pg_bindir\" to the folder holding the PostgreSQL programs");
        goto out;
    }
    int read_rc = read_output(fds[0], out, sizeof(out));
    int read_errno = errno;
    close(fds[0]);
    fds[0] = -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (read_rc != 0) {
        wk_error_sys(err, WK_ERR_IO, read_errno, "could not read the output of \"%s\"", path);
        goto out;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        wk_error_set(err, WK_ERR_IO, "\"%s --version\" failed", path);
        goto out;
    }
    const char *p = strstr(out, "(PostgreSQL) ");
    char *end = NULL;
    long m = p != NULL ? strtol(p + 13, &end, 10) : 0;
    if (p == NULL || end == p + 13 || m <= 0 || m > 999) {
        out[strcspn(out, "\n")] = '\0';
        wk_error_set(err, WK_ERR_IO, "could not read the version of \"%s\" from \"%.100s\"",
                     path, out);
        goto out;
    }
    p += 13;
    snprintf(version, vsize, "%.*s", (int)strcspn(p, " \n"), p);
    *major = (int)m;
    rc = 0;
out:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    return rc;
}

int wk_pg_program_check_major(const char *bindir, const char *name, int major, wk_error *err)
{
    char version[64], where[4200], needed[16];
    int found;

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
