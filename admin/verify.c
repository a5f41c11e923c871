/* walkeep verify: reads every object of the repository back and checks the WAL chain,
 * the backups' WAL and the history files (lib/verify.c); prints one line per finding and
 * a summary, or one JSON object with --json. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "json.h"
#include "log.h"
#include "repo.h"
#include "verify.h"

static const char *progname = "walkeep";

static void write_findings(wk_json_writer *w, const char *key, const wk_verify_finding *list,
                           size_t count)
{
    wk_json_key(w, key);
    wk_json_begin_array(w);
    for (size_t i = 0; i < count; i++) {
        wk_json_begin_object(w);
        wk_json_kv_string(w, "kind", wk_verify_kind_name(list[i].kind));
        wk_json_kv_string(w, "object", list[i].object);
        wk_json_kv_string(w, "message", list[i].message);
        if (list[i].hint != NULL)
            wk_json_kv_string(w, "hint", list[i].hint);
        wk_json_end_object(w);
    }
    wk_json_end_array(w);
}

static int print_json(const wk_verify_report *r, wk_error *err)
{
    wk_json_writer *w = wk_json_writer_new();
    char key[16];
    wk_json_begin_object(w);
    wk_json_kv_bool(w, "ok", r->problem_count == 0);
    wk_json_kv_uint(w, "objects", r->objects);
    wk_json_kv_uint(w, "bytes", r->bytes);
    wk_json_kv_uint(w, "indexed", r->indexed);
    write_findings(w, "problems", r->problems, r->problem_count);
    write_findings(w, "warnings", r->warnings, r->warning_count);
    wk_json_key(w, "gaps");
    wk_json_begin_object(w);
    for (size_t i = 0; i < r->gap_count; i++) {
        snprintf(key, sizeof(key), "%" PRIu32, r->gaps[i].tli);
        wk_json_key(w, key);
        wk_json_begin_array(w);
        for (size_t j = 0; j < r->gaps[i].listed; j++)
            wk_json_string(w, r->gaps[i].names[j]);
        wk_json_end_array(w);
    }
    wk_json_end_object(w);
    wk_json_end_object(w);
    char *doc = wk_json_writer_finish(w, err);
    wk_json_writer_free(w);
    if (doc == NULL)
        return -1;
    fputs(doc, stdout);
    free(doc);
    return 0;
}

/* "<kind>: <object>: <message>", and its hint indented on the next line. */
static void print_finding(const char *prefix, const wk_verify_finding *f)
{
    printf("%s%s: %s: %s\n", prefix, wk_verify_kind_name(f->kind), f->object, f->message);
    if (f->hint != NULL)
        printf("  hint: %s\n", f->hint);
}

static void print_text(const wk_verify_report *r)
{
    char size[32];
    for (size_t i = 0; i < r->problem_count; i++)
        print_finding("", &r->problems[i]);
    for (size_t i = 0; i < r->warning_count; i++)
        print_finding("warning: ", &r->warnings[i]);
    printf("verified %" PRIu64 " objects (%s): %zu problem%s", r->objects,
           wk_log_format_size(size, sizeof(size), r->bytes), r->problem_count,
           r->problem_count == 1 ? "" : "s");
    if (r->warning_count > 0)
        printf(", %zu warning%s", r->warning_count, r->warning_count == 1 ? "" : "s");
    if (r->indexed > 0)
        printf("; gave %" PRIu64 " segment%s archived before time indexes %s", r->indexed,
               r->indexed == 1 ? "" : "s", r->indexed == 1 ? "its index" : "theirs");
    putchar('\n');
}

int wk_verify_command(const wk_config *cfg, const wk_args *args, wk_error *err)
{
    bool json = false;
    wk_repo *repo = NULL;
    wk_verify_report report = {0};
    int rc = -1;
    const wk_option options[] = {{"--json", WK_OPTION_FLAG, &json, 0, 0}};
    wk_error uerr = {0};
    if (wk_cli_parse_options("verify", args, 1, options, 1, &uerr) != 0)
        return wk_cli_usage_error(progname, &uerr);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int walked = wk_repo_open(cfg, false, &repo, err) != 0 ||
                         wk_verify_run_progress(repo, wk_cli_progress, &start, &report, err) != 0
                     ? -1
                     : 0;
    wk_cli_progress_finish(walked == 0);
    if (walked != 0)
        goto out;
    if (json) {
        if (print_json(&report, err) != 0)
            goto out;
    } else {
        print_text(&report);
    }
    if (fflush(stdout) != 0) {
        wk_error_set(err, WK_ERR_IO, "could not write the output");
        goto out;
    }
    rc = report.problem_count == 0 ? 0 : 1;
out:
    wk_verify_report_free(&report);
    wk_repo_free(repo);
    return rc;
}
