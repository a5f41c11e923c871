/* walkeep expire [--dry-run]: retention. Prints one line per backup, dump and WAL range
 * that goes ("removed ..." as each is done, or "would remove ..." with --dry-run, which
 * changes nothing), then what stays; the rules are in lib/expire.h and docs. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "expire.h"
#include "log.h"
#include "repo.h"

static void print_action(const wk_expire_plan *plan, const wk_expire_action *action, void *arg)
{
    const char *verb = arg;
    char line[256];
    wk_expire_describe(plan, action, line, sizeof(line));
    printf("%s %s\n", verb, line);
    fflush(stdout);
}

static void print_summary(const wk_expire_plan *plan, bool dry_run)
{
    char first[WK_WAL_NAME_LEN + 1];
    if (plan->action_count == 0)
        printf("nothing to remove\n");
    printf("%s %zu backup%s", dry_run ? "would keep" : "kept", plan->kept_backups,
           plan->kept_backups == 1 ? "" : "s");
    if (plan->oldest_kept[0] != '\0')
        printf(" (oldest start: %s)", plan->oldest_kept);
    printf(" and %zu dump%s", plan->kept_dumps, plan->kept_dumps == 1 ? "" : "s");
    if (plan->wal_cutoff_set) {
        wk_wal_segment_name(first, plan->wal_cutoff_tli, plan->wal_cutoff, plan->seg_size);
        printf("; WAL from %s on", first);
    } else {
        printf("; all WAL");
    }
    printf("\n");
}

static void print_notes(const wk_expire_plan *plan, size_t from)
{
    for (size_t i = from; i < plan->note_count; i++)
        wk_log(WK_LOG_WARNING, "%s", plan->notes[i].text);
}

int wk_expire_command(const wk_config *cfg, const wk_args *args, wk_error *err)
{
    bool dry_run = false;
    wk_repo *repo = NULL;
    wk_expire_plan plan = {0};
    int rc = -1;
    const wk_option options[] = {{"--dry-run", WK_OPTION_FLAG, &dry_run, 0, 0}};
    wk_error uerr = {0};
    if (wk_cli_parse_options("expire", args, 1, options, 1, &uerr) != 0)
        return wk_cli_usage_error("walkeep", &uerr);
    wk_expire_policy policy = {
        .retention_full = cfg->retention_full,
        .retention_days = cfg->retention_days,
        .retention_dumps = cfg->retention_dumps,
        .retention_dumps_days = cfg->retention_dumps_days,
        .now = time(NULL),
    };
    if (wk_repo_open(cfg, false, &repo, err) != 0 ||
        wk_expire_plan_make(repo, &policy, &plan, err) != 0)
        goto out;
    size_t planned_notes = plan.note_count;
    print_notes(&plan, 0);
    if (dry_run) {
        for (size_t i = 0; i < plan.action_count; i++)
            print_action(&plan, &plan.actions[i], "would remove");
    } else if (wk_expire_execute(repo, &plan, print_action, "removed", err) != 0) {
        print_notes(&plan, planned_notes);
        goto out;
    }
    print_notes(&plan, planned_notes);
    print_summary(&plan, dry_run);
    rc = fflush(stdout) == 0 ? 0 : wk_error_set(err, WK_ERR_IO, "could not write the output");
out:
    wk_expire_plan_free(&plan);
    wk_repo_free(repo);
    return rc;
}
