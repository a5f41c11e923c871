/* walkeep-fetch: PostgreSQL's restore_command. Exit 1 quietly only when the file is
 * certainly not archived; a hard error stops archive recovery (exit 255). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "cli.h"

/* PostgreSQL treats an exit status above 125 as fatal and stops recovery, instead
 * of taking the error for the end of the archive. */
#define EXIT_NOT_FOUND 1
#define EXIT_HARD_ERROR 255

static const char usage[] =
    "walkeep-fetch restores one WAL file from a walkeep repository; it is PostgreSQL's\n"
    "restore_command.\n\n"
    "Usage:\n"
    "  walkeep-fetch [OPTION]... NAME DESTINATION\n\n"
    "In postgresql.conf:\n"
    "  restore_command = 'walkeep-fetch --config /etc/walkeep/walkeep.conf %f %p'\n\n"
    "Options:\n"
    "  --config FILE      configuration file (default $WALKEEP_CONFIG or\n"
    "                     /etc/walkeep/walkeep.conf)\n"
    "  --KEY=VALUE        any configuration key, e.g. --repo=/srv/walkeep\n"
    "  --help, --version\n\n"
    "Exit status: 0 restored; 1 not in the repository (PostgreSQL's \"end of archive\");\n"
    "255 on any other error during archive recovery, which stops recovery rather than\n"
    "ending it early. On a standby (standby.signal present) errors exit 1 after logging,\n"
    "so the standby keeps running and can fall back to streaming.\n";

int main(int argc, char **argv)
{
    const char *progname = "walkeep-fetch";
    wk_config cfg = {0};
    wk_args args = {0};
    wk_error err = {0};
    wk_repo *repo = NULL;
    wk_fetch_result result;
    /* restore_command runs in the data directory. */
    bool standby = access("standby.signal", F_OK) == 0;
    int hard_error = standby ? EXIT_NOT_FOUND : EXIT_HARD_ERROR;
    int status = hard_error;

    int started = wk_cli_start(progname, usage, WK_LOG_WARNING, argc, argv, &cfg, &args);
    if (started != 0)
        return started > 0 ? 0 : hard_error;
    if (args.count != 2 || strncmp(args.items[0], "--", 2) == 0 ||
        strncmp(args.items[1], "--", 2) == 0) {
        wk_cli_bad_argument(progname, args.count < 2   ? "expected a WAL file name (%f) and a "
                                                         "destination path (%p)"
                                      : args.count > 2 ? "too many arguments"
                                                       : "unrecognized option");
        goto out;
    }
    if (wk_repo_open(&cfg, false, &repo, &err) != 0) {
        if (err.code == WK_ERR_NOTFOUND)
            err.code = WK_ERR_CONFIG; /* a missing repository is no missing WAL file */
        wk_log_error(&err);
        goto out;
    }
    if (wk_archive_fetch(repo, args.items[0], args.items[1], cfg.retry_timeout_ms, &result, &err) !=
        0) {
        if (err.code == WK_ERR_NOTFOUND) {
            wk_log(WK_LOG_DEBUG, "%s", err.message);
            status = EXIT_NOT_FOUND;
        } else {
            if (standby)
                wk_error_hint(&err, "standby.signal is present: exiting 1 so that the standby "
                                    "keeps running; fix the repository");
            wk_log_error(&err);
        }
        goto out;
    }
    if (result.attempts > 1)
        wk_log(WK_LOG_WARNING,
               "restored \"%s\" after %d attempts: the repository had transient "
               "errors",
               args.items[0], result.attempts);
    wk_log(WK_LOG_INFO, "restored \"%s\" from \"%s\" (%llu bytes)", args.items[0], result.object,
           (unsigned long long)result.bytes);
    status = 0;
out:
    wk_repo_free(repo);
    wk_config_free(&cfg);
    wk_args_free(&args);
    return status;
}
