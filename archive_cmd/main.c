/* walkeep-archive: PostgreSQL's archive_command. Exits 0 only once the WAL file is
 * durable in the repository; otherwise one error line on stderr and exit 1. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "archive.h"
#include "cli.h"

static const char usage[] =
    "walkeep-archive stores one WAL file in a walkeep repository; it is PostgreSQL's\n"
    "archive_command.\n\n"
    "Usage:\n"
    "  walkeep-archive [OPTION]... PATH\n\n"
    "In postgresql.conf:\n"
    "  archive_command = 'walkeep-archive --config /etc/walkeep/walkeep.conf %p'\n\n"
    "Options:\n"
    "  --config FILE      configuration file (default $WALKEEP_CONFIG or\n"
    "                     /etc/walkeep/walkeep.conf)\n"
    "  --KEY=VALUE        any configuration key, e.g. --repo=/srv/walkeep\n"
    "  --help, --version\n\n"
    "Exit status: 0 when the file is durable in the repository (or an identical copy\n"
    "already was), 1 otherwise.\n";

static double elapsed_ms(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

int main(int argc, char **argv)
{
    const char *progname = "walkeep-archive";
    wk_config cfg = {0};
    wk_args args = {0};
    wk_error err = {0};
    wk_repo *repo = NULL;
    wk_push_result result;
    struct timespec start;
    int status = 1;

    clock_gettime(CLOCK_MONOTONIC, &start);
    int started = wk_cli_start(progname, usage, WK_LOG_WARNING, argc, argv, &cfg, &args);
    if (started != 0)
        return started > 0 ? 0 : 1;
    if (args.count != 1 || strncmp(args.items[0], "--", 2) == 0) {
        wk_cli_bad_argument(progname, args.count == 0  ? "missing WAL file path (%p)"
                                      : args.count > 1 ? "too many arguments"
                                                       : "unrecognized option");
        goto out;
    }
    if (wk_repo_open(&cfg, true, &repo, &err) != 0 ||
        wk_archive_push(repo, args.items[0], &result, &err) != 0) {
        wk_log_error(&err);
        goto out;
    }
    if (result.initialized_repo)
        wk_log(WK_LOG_INFO, "initialized repository \"%s\"", repo->location);
    if (result.already_archived)
        wk_log(WK_LOG_INFO, "\"%s\" was already archived with identical content", args.items[0]);
    else
        wk_log(WK_LOG_INFO, "archived \"%s\" (%llu bytes stored as %llu) in %.1f ms", args.items[0],
               (unsigned long long)result.bytes, (unsigned long long)result.stored_bytes,
               elapsed_ms(&start));
    status = 0;
out:
    wk_repo_free(repo);
    wk_config_free(&cfg);
    wk_args_free(&args);
    return status;
}
