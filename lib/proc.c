/* proc: starting, waiting for and stopping child processes; lowest layer (over error). */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

const char *wk_proc_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

/* The environment with env_name=env_value in place of any earlier value; *var is the
 * malloc'd "NAME=value" the caller wipes and frees. Returns environ when there is none. */
static char **child_environment(const wk_proc_spec *spec, char **var, wk_error *err)
{
    *var = NULL;
    if (spec->env_name == NULL)
        return environ;
    size_t n = 0, name_len = strlen(spec->env_name);
    while (environ[n] != NULL)
        n++;
    char **envp = calloc(n + 2, sizeof(*envp));
    size_t var_size = name_len + 1 + strlen(spec->env_value != NULL ? spec->env_value : "") + 1;
    *var = malloc(var_size);
    if (envp == NULL || *var == NULL) {
        free(envp);
        free(*var);
        *var = NULL;
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(*var, var_size, "%s=%s", spec->env_name,
             spec->env_value != NULL ? spec->env_value : "");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], *var, name_len + 1) != 0)
            envp[k++] = environ[i];
    envp[k++] = *var;
    envp[k] = NULL;
    return envp;
}

int wk_proc_spawn(const wk_proc_spec *spec, pid_t *pid_out, wk_error *err)
{
    char *var = NULL;
    int report[2] = {-1, -1};
    int rc = -1;
    char **envp = child_environment(spec, &var, err);
    if (envp == NULL)
        return -1;
    if (pipe2(report, O_CLOEXEC) != 0) {
        wk_error_sys(err, WK_ERR_IO, errno, "could not create a pipe");
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        wk_error_sys(err, WK_ERR_IO, errno, "could not start \"%s\"", spec->argv[0]);
        goto out;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here on. */
        int e;
        signal(SIGPIPE, SIG_DFL);
        if ((spec->in_fd >= 0 && dup2(spec->in_fd, STDIN_FILENO) < 0) ||
            (spec->out_fd >= 0 && dup2(spec->out_fd, STDOUT_FILENO) < 0) ||
            (spec->err_fd >= 0 && dup2(spec->err_fd, STDERR_FILENO) < 0)) {
            e = errno;
        } else {
            execvpe(spec->argv[0], spec->argv, envp);
            e = errno;
        }
        ssize_t ignored = write(report[1], &e, sizeof(e));
        (void)ignored;
        _exit(127);
    }
    close(report[1]);
    report[1] = -1;
    int child_errno = 0;
    ssize_t n;
    do
        n = read(report[0], &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(child_errno)) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        wk_error_sys(err, WK_ERR_IO, child_errno, "could not run \"%s\"", spec->argv[0]);
        goto out;
    }
    *pid_out = pid;
    rc = 0;
out:
    if (report[0] >= 0)
        close(report[0]);
    if (report[1] >= 0)
        close(report[1]);
    if (envp != environ)
        free(envp);
    if (var != NULL) {
        explicit_bzero(var, strlen(var));
        free(var);
    }
    return rc;
}

/* Reaps the child: *status as waitpid gives it. */
static int reap(pid_t pid, const char *name, int *status, wk_error *err)
{
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR)
            return wk_error_sys(err, WK_ERR_IO, errno, "could not wait for %s", name);
    }
    return 0;
}

static int status_error(int status, const char *name, wk_error *err)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        return wk_error_set(err, WK_ERR_IO, "%s failed with exit status %d", name,
                            WEXITSTATUS(status));
    return wk_error_set(err, WK_ERR_IO, "%s was terminated by signal %d (%s)", name,
                        WTERMSIG(status), strsignal(WTERMSIG(status)));
}

int wk_proc_wait(pid_t pid, const char *name, wk_error *err)
{
    int status;
    if (reap(pid, name, &status, err) != 0)
        return -1;
    return status_error(status, name, err);
}

void wk_proc_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

int wk_proc_run(const wk_proc_spec *spec, int *exit_status, wk_error *err)
{
    const char *name = wk_proc_name(spec->argv[0]);
    pid_t pid;
    int status;
    if (wk_proc_spawn(spec, &pid, err) != 0 || reap(pid, name, &status, err) != 0)
        return -1;
    if (exit_status == NULL)
        return status_error(status, name, err);
    *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return 0;
}

int wk_proc_capture(const wk_proc_spec *spec, char *out, size_t size, wk_error *err)
{
    char drop[4096];
    size_t used = 0;
    int fds[2];
    pid_t pid;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return wk_error_sys(err, WK_ERR_IO, errno, "could not create a pipe");
    wk_proc_spec s = *spec;
    s.out_fd = fds[1];
    int rc = wk_proc_spawn(&s, &pid, err);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return -1;
    }
    int read_errno = 0;
    for (;;) {
        bool keep = used + 1 < size;
        ssize_t n =
            keep ? read(fds[0], out + used, size - 1 - used) : read(fds[0], drop, sizeof(drop));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            read_errno = errno;
        if (n <= 0)
            break;
        if (keep)
            used += (size_t)n;
    }
    out[used] = '\0';
    close(fds[0]);
    if (read_errno != 0) {
        wk_proc_stop(pid);
        return wk_error_sys(err, WK_ERR_IO, read_errno, "could not read the output of \"%s\"",
                            spec->argv[0]);
    }
    return wk_proc_wait(pid, wk_proc_name(spec->argv[0]), err);
}

bool wk_proc_is_gone(long pid)
{
    if (pid <= 0)
        return false;
    if (kill((pid_t)pid, 0) != 0)
        return errno == ESRCH;
    /* A zombie (exited, not reaped yet: an orphan under an init that reaps late) writes
     * nothing any more: gone too. /proc/<pid>/stat: "pid (comm) S ...", comm may hold ')'. */
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    return close_paren != NULL && close_paren[1] == ' ' && close_paren[2] == 'Z';
}
