/* pgctl: starting and stopping a restored data directory's server with pg_ctl, and
 * reading its log; over proc. */
#include "pgctl.h"

#include <errno.h>

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

void wk_pgctl_path(char *buf, size_t size, const char *bindir)
{
    bool in_path = bindir == NULL || bindir[0] == '\0';
    snprintf(buf, size, "%s%s%s", in_path ? "" : bindir, in_path ? "" : "/", "pg_ctl");
}

/* Runs pg_ctl with stdin from /dev/null and its output appended to output_file. */
static int run_pg_ctl(char *const argv[], const char *output_file, int *exit_status, wk_error *err)
{
    wk_proc_spec spec = WK_PROC_SPEC(argv);
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out_fd = -1;
    if (output_file != NULL)
        out_fd = open(output_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    spec.in_fd = null_fd;
    spec.out_fd = out_fd;
    spec.err_fd = out_fd;
    int rc = wk_proc_run(&spec, exit_status, err);
    if (null_fd >= 0)
        close(null_fd);
    if (out_fd >= 0)
        close(out_fd);
    return rc;
}

int wk_pgctl_start(const char *pg_ctl, const char *pgdata, const char *logfile, int timeout_s,
                   const char *output_file, int *exit_status, wk_error *err)
{
    char secs[32];
    snprintf(secs, sizeof(secs), "%d", timeout_s > 0 ? timeout_s : 1);
    char *wait_argv[] = {(char *)pg_ctl, "-D", (char *)pgdata, "-l",    (char *)logfile,
                         "-w",           "-t", secs,           "start", NULL};
    char *nowait_argv[] = {(char *)pg_ctl,  "-D", (char *)pgdata, "-l",
                           (char *)logfile, "-W", "start",        NULL};
    return run_pg_ctl(timeout_s > 0 ? wait_argv : nowait_argv, output_file, exit_status, err);
}

/* The postmaster's pid from pgdata/postmaster.pid, 0 when there is none. */
static pid_t postmaster_pid(const char *pgdata)
{
    char path[PATH_MAX + 32];
    long pid = 0;
    snprintf(path, sizeof(path), "%s/postmaster.pid", pgdata);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1 || pid <= 0)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

bool wk_pgctl_running(const char *pgdata)
{
    pid_t pid = postmaster_pid(pgdata);
    return pid > 0 && kill(pid, 0) == 0;
}

long wk_pgctl_running_pid(const char *pgdata)
{
    pid_t pid = postmaster_pid(pgdata);
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM) ? (long)pid : 0;
}

void wk_pgctl_stop(const char *pg_ctl, const char *pgdata, const char *output_file)
{
    const char *modes[] = {"fast", "immediate"};
    for (size_t i = 0; i < 2 && wk_pgctl_running(pgdata); i++) {
        char *argv[] = {(char *)pg_ctl, "-D", (char *)pgdata, "-m",   (char *)modes[i],
                        "-w",           "-t", "60",           "stop", NULL};
        int status;
        wk_error ignored = {0};
        run_pg_ctl(argv, output_file, &status, &ignored);
    }
    pid_t pid = postmaster_pid(pgdata);
    if (pid > 0 && kill(pid, 0) == 0) {
        kill(pid, SIGKILL);
        for (int i = 0; i < 100 && kill(pid, 0) == 0; i++)
            usleep(100000);
    }
}

bool wk_pgctl_log_find(const char *logfile, const char *const needles[], char *out, size_t size)
{
    FILE *f = fopen(logfile, "re");
    char line[2048];
    bool found = false;
    if (f == NULL)
        return false;
    while (fgets(line, sizeof(line), f) != NULL) {
        for (size_t i = 0; needles[i] != NULL; i++) {
            const char *at = strstr(line, needles[i]);
            if (at == NULL)
                continue;
            const char *colon = strstr(line, ":  ");
            const char *text = colon != NULL && colon < at ? colon + 3 : at;
            snprintf(out, size, "%s", text);
            out[strcspn(out, "\n")] = '\0';
            found = true;
            break;
        }
    }
    fclose(f);
    return found;
}
