/* cli: what every program's main() does first: load the configuration, answer --help
 * and --version, set up logging. Glue for main() only; it prints. */
#include "cli.h"

#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "version.h"
#include "record.h"

int wk_cli_start(const char *progname, const char *usage, wk_log_level default_level, int argc,
                 char **argv, wk_config *cfg, wk_args *args)
{
    wk_error err = {0};
    wk_log_init(progname, default_level);
    wk_notice_set(wk_notice_to_log); /* the core's notices go where our messages go */
    if (wk_config_load(cfg, argc, argv, args, &err) != 0) {
        wk_log_error(&err);
        return -1;
    }
    if (args->help || args->version) {
        if (args->help)
            fputs(usage, stdout);
        else
            printf("%s (walkeep) %s\n", progname, WALKEEP_VERSION);
        wk_config_free(cfg);
        wk_args_free(args);
        return 1;
    }
    wk_log_set_level(cfg->log_level_set ? cfg->log_level : default_level);
    return 0;
}

int wk_cli_bad_argument(const char *progname, const char *what)
{
    wk_error err = {0};
    wk_error_set(&err, WK_ERR_USAGE, "%s", what);
    return wk_cli_usage_error(progname, &err);
}

int wk_cli_usage_error(const char *progname, wk_error *err)
{
    if (err->hint[0] == '\0')
        wk_error_hint(err, "try \"%s --help\" for more information", progname);
    wk_log_error(err);
    return -1;
}

/* The value of option name at items[*i] (--name=VALUE or --name VALUE): 1 and *value set,
 * 0 when the item is not that option, -1 (WK_ERR_USAGE) when the value is missing. */
static int option_value(const wk_args *args, int *i, const char *name, const char **value,
                        wk_error *err)
{
    const char *item = args->items[*i];
    size_t n = strlen(name);
    if (strncmp(item, name, n) != 0 || (item[n] != '=' && item[n] != '\0'))
        return 0;
    if (item[n] == '=') {
        *value = item + n + 1;
        return 1;
    }
    if (*i + 1 >= args->count)
        return wk_error_set(err, WK_ERR_USAGE, "option \"%s\" requires a value", name);
    *value = args->items[++*i];
    return 1;
}

static int set_target(wk_restore_target *t, wk_target_kind kind, const char *value, wk_error *err)
{
    if (t->kind != WK_TARGET_END)
        return wk_error_set(err, WK_ERR_USAGE, "give at most one recovery target");
    t->kind = kind;
    t->value = value;
    return 0;
}

int wk_cli_target_option(const wk_args *args, int *i, wk_restore_target *t, wk_error *err)
{
    const char *v = NULL;
    int m;
    if (strcmp(args->items[*i], "--target-immediate") == 0)
        return set_target(t, WK_TARGET_IMMEDIATE, "immediate", err) == 0 ? 1 : -1;
    if ((m = option_value(args, i, "--target-time", &v, err)) != 0) {
        if (m < 0 || set_target(t, WK_TARGET_TIME, v, err) != 0)
            return -1;
        if (!wk_record_time_valid(v))
            return wk_error_set(err, WK_ERR_USAGE,
                                "--target-time takes a time such as "
                                "'2026-11-25 14:03:26+01'");
    } else if ((m = option_value(args, i, "--target-xid", &v, err)) != 0) {
        if (m < 0 || set_target(t, WK_TARGET_XID, v, err) != 0)
            return -1;
        /* PostgreSQL takes a 64-bit number (txid_current()'s, epoch and all) and keeps its
         * low 32 bits; 0 to 2 are never a transaction's. */
        errno = 0;
        unsigned long long xid = strtoull(v, NULL, 10);
        if (v[0] == '\0' || strspn(v, "0123456789") != strlen(v) || errno == ERANGE ||
            (xid & 0xFFFFFFFFu) < 3)
            return wk_error_set(err, WK_ERR_USAGE,
                                "--target-xid takes a transaction id (a whole number whose low "
                                "32 bits are 3 or more, at most 18446744073709551615)");
    } else if ((m = option_value(args, i, "--target-lsn", &v, err)) != 0) {
        if (m < 0 || set_target(t, WK_TARGET_LSN, v, err) != 0)
            return -1;
        if (wk_wal_parse_lsn(v, &t->lsn) != 0)
            return wk_error_set(err, WK_ERR_USAGE, "--target-lsn takes an LSN such as 0/3000158");
    } else if ((m = option_value(args, i, "--target-name", &v, err)) != 0) {
        if (m < 0 || set_target(t, WK_TARGET_NAME, v, err) != 0)
            return -1;
    } else if ((m = option_value(args, i, "--target-inclusive", &v, err)) != 0) {
        if (m < 0)
            return -1;
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
            return wk_error_set(err, WK_ERR_USAGE, "--target-inclusive takes true or false");
        t->inclusive = v;
    } else if ((m = option_value(args, i, "--target-timeline", &v, err)) != 0) {
        if (m < 0)
            return -1;
        t->timeline = v;
    } else if ((m = option_value(args, i, "--timezone", &v, err)) != 0) {
        if (m < 0)
            return -1;
        if (!wk_record_zone_known(v))
            return wk_error_set(err, WK_ERR_USAGE,
                                "--timezone takes a time zone name such as Europe/Berlin (one of "
                                "/usr/share/zoneinfo)");
        t->zone = v;
    } else if (strcmp(args->items[*i], "--target-beyond-archive") == 0) {
        t->beyond_archive = true;
    } else if ((m = option_value(args, i, "--target-action", &v, err)) != 0) {
        if (m < 0)
            return -1;
        if (strcmp(v, "promote") != 0 && strcmp(v, "pause") != 0 && strcmp(v, "shutdown") != 0)
            return wk_error_set(err, WK_ERR_USAGE,
                                "--target-action takes promote, pause or shutdown");
        t->action = v;
    } else {
        return 0;
    }
    return 1;
}

/* The option whose name is closest to item's name part (before any '='), when it is a
 * typo away: at most 2 edits, and fewer than a third of the name. NULL otherwise. */
static const char *closest_option(const char *item, const wk_option *options, size_t count)
{
    size_t len = strcspn(item, "=");
    const char *best = NULL;
    size_t best_distance = 3;
    for (size_t k = 0; k < count; k++) {
        if (options[k].kind == WK_OPTION_TARGET)
            continue;
        size_t d = wk_error_typo_distance(item, len, options[k].name);
        if (d < best_distance) {
            best = options[k].name;
            best_distance = d;
        }
    }
    return best;
}

void wk_option_list_free(wk_option_list *list)
{
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

/* Whether args->items[*i] is one of the options: 1 with *found (and *value for those that
 * take one; *i moves past a separate value), 0 when none, -1 (err) on a missing value or a
 * bad recovery target. */
static int match_option(const wk_args *args, int *i, const wk_option *options, size_t count,
                        const wk_option **found, const char **value, wk_error *err)
{
    const char *item = args->items[*i];
    *found = NULL;
    for (size_t k = 0; k < count; k++) {
        int m;
        if (options[k].kind == WK_OPTION_TARGET)
            m = wk_cli_target_option(args, i, options[k].dest, err);
        else if (options[k].kind == WK_OPTION_FLAG)
            m = strcmp(item, options[k].name) == 0;
        else
            m = option_value(args, i, options[k].name, value, err);
        if (m != 0) {
            *found = &options[k];
            return m;
        }
    }
    return 0;
}

static int not_taken(const char *command, const char *item, const wk_option *options, size_t count,
                     wk_error *err)
{
    const char *close = closest_option(item, options, count);
    wk_error_set(err, WK_ERR_USAGE, "%s does not take \"%.200s\"", command, item);
    if (close != NULL)
        wk_error_hint(err, "did you mean \"%s\"?", close);
    return -1;
}

/* Puts an option's value where it goes. */
static int store_option(const wk_option *o, const char *v, wk_error *err)
{
    switch (o->kind) {
    case WK_OPTION_TARGET:
        break;
    case WK_OPTION_FLAG:
        *(bool *)o->dest = true;
        break;
    case WK_OPTION_STRING:
        *(const char **)o->dest = v;
        break;
    case WK_OPTION_LIST: {
        wk_option_list *list = o->dest;
        const char **grown = realloc(list->items, (list->count + 1) * sizeof(*grown));
        if (grown == NULL)
            return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        list->items = grown;
        list->items[list->count++] = v;
        break;
    }
    case WK_OPTION_DURATION: {
        int64_t ms;
        if (wk_config_parse_duration(v, &ms) != 0 || ms < o->min)
            return wk_error_set(err, WK_ERR_USAGE,
                                "invalid value for %s: \"%.100s\" (a duration such as 90s, "
                                "30min, 48h, 7d)",
                                o->name, v);
        *(int64_t *)o->dest = ms;
        break;
    }
    case WK_OPTION_COUNT: {
        char *end = NULL;
        long long n = strtoll(v, &end, 10);
        if (end == v || *end != '\0' || n < o->min)
            return wk_error_set(err, WK_ERR_USAGE, "%s needs a whole number", o->name);
        *(int64_t *)o->dest = n;
        break;
    }
    }
    return 0;
}

int wk_cli_parse_options(const char *command, const wk_args *args, int first,
                         const wk_option *options, size_t count, wk_error *err)
{
    for (int i = first; i < args->count; i++) {
        const wk_option *o = NULL;
        const char *v = NULL;
        const char *item = args->items[i];
        int m = match_option(args, &i, options, count, &o, &v, err);
        if (m < 0)
            return -1;
        if (m == 0)
            return not_taken(command, item, options, count, err);
        if (store_option(o, v, err) != 0)
            return -1;
    }
    return 0;
}

/* "a, b or c" of the command names. */
static void command_names(const wk_command *commands, size_t n, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t k = 0; k < n && used < size; k++)
        used += (size_t)snprintf(out + used, size - used, "%s%s",
                                 k == 0       ? ""
                                 : k + 1 == n ? " or "
                                              : ", ",
                                 commands[k].name);
}

int wk_cli_parse_command(const wk_args *args, const wk_command *commands, size_t command_count,
                         const wk_option *options, size_t count, int *which, const char **argument,
                         wk_error *err)
{
    const char *command = NULL;
    const char *extra = NULL; /* a positional item after the command */
    const char *unknown = NULL;
    unsigned given = 0; /* bit k: options[k] was given (the first 32 options) */
    *which = -1;
    *argument = NULL;
    for (int i = 0; i < args->count; i++) {
        const wk_option *o = NULL;
        const char *v = NULL;
        const char *item = args->items[i];
        if (item[0] != '-' || item[1] == '\0') {
            if (command == NULL)
                command = item;
            else if (*argument == NULL)
                *argument = item;
            else if (extra == NULL)
                extra = item;
            continue;
        }
        int m = match_option(args, &i, options, count, &o, &v, err);
        if (m < 0)
            return -1;
        if (m == 0) {
            if (unknown == NULL)
                unknown = item;
            continue;
        }
        if (store_option(o, v, err) != 0)
            return -1;
        if (o - options < 32)
            given |= 1U << (o - options);
    }
    char names[256];
    command_names(commands, command_count, names, sizeof(names));
    if (command == NULL)
        return wk_error_set(err, WK_ERR_USAGE, "a command is needed: %s", names);
    for (size_t k = 0; k < command_count && *which < 0; k++)
        if (strcmp(commands[k].name, command) == 0)
            *which = (int)k;
    if (*which < 0) {
        wk_error_set(err, WK_ERR_USAGE, "unknown command \"%.100s\"", command);
        wk_error_hint(err, "the command is one of %s", names);
        return -1;
    }
    const wk_command *c = &commands[*which];
    if (unknown != NULL)
        return not_taken(c->name, unknown, options, count, err);
    for (size_t k = 0; k < count && k < 32; k++) {
        unsigned mask = options[k].commands;
        if ((given & (1U << k)) && mask != 0 && !(mask & (1U << *which)))
            return wk_error_set(err, WK_ERR_USAGE, "%s does not apply to \"%s\"", options[k].name,
                                c->name);
    }
    if (c->argument == NULL && *argument != NULL)
        extra = *argument;
    if (extra != NULL)
        return wk_error_set(err, WK_ERR_USAGE, "%s does not take \"%.200s\"", c->name, extra);
    if (c->argument != NULL && *argument == NULL)
        return wk_error_set(err, WK_ERR_USAGE, "\"%s\" needs %s", c->name, c->argument);
    return 0;
}

/* ---- progress ------------------------------------------------------------------------ */

#define PROGRESS_BAR_WIDTH 20
#define PROGRESS_BAR_MIN 8
#define PROGRESS_INTERVAL 0.1 /* seconds between redraws */
#define PROGRESS_COLUMNS 80   /* when the terminal's width cannot be read */

const char *wk_cli_format_duration(char *buf, size_t size, double seconds)
{
    /* Clamped: a rate of a few bytes over a huge total gives times past 2^64 s (or NaN). */
    unsigned long long s =
        seconds > 0 ? (unsigned long long)((seconds < 1e18 ? seconds : 1e18) + 0.5) : 0;
    if (s < 60)
        snprintf(buf, size, "%llu s", s);
    else if (s < 3600)
        snprintf(buf, size, "%llu min %llu s", s / 60, s % 60);
    else
        snprintf(buf, size, "%llu h %llu min", s / 3600, s / 60 % 60);
    return buf;
}

/* The pieces of a line; a variant leaves some out. */
typedef struct progress_parts {
    bool known;       /* the total is known: bar and percentage */
    unsigned percent; /* known only */
    uint64_t done, total;
    char sizes[80];     /* "123.4 MiB / 256.0 MiB", or "123.4 MiB" when unknown */
    char done_only[32]; /* "123.4 MiB" */
    char rate[40];      /* "85.2 MiB/s" */
    char left[48];      /* "2 s left" */
} progress_parts;

/* One variant into buf: bar marks 0 for none; sizes 2 both, 1 done only, 0 none.
 * Returns its length. */
static size_t compose(char *buf, size_t size, const progress_parts *p, unsigned bar, int sizes,
                      bool rate, bool left)
{
    char line[256];
    size_t n = 0;
    if (p->known) {
        if (bar > 0) {
            unsigned filled = (unsigned)((double)p->done * bar / (double)p->total + 0.5);
            line[n++] = '[';
            for (unsigned i = 0; i < bar; i++)
                line[n++] = i < filled ? '#' : '-';
            line[n++] = ']';
        }
        n += (size_t)snprintf(line + n, sizeof(line) - n, " %3u%%", p->percent);
    }
    if (sizes > 0)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "  %s",
                              sizes == 2 ? p->sizes : p->done_only);
    if (rate)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "  %s", p->rate);
    if (left && p->known)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "  %s left", p->left);
    if (n >= sizeof(line))
        n = sizeof(line) - 1;
    if (size > 0)
        snprintf(buf, size, "%s", line);
    return n;
}

int wk_cli_format_progress(char *buf, size_t size, unsigned columns, uint64_t done, uint64_t total,
                           double seconds)
{
    size_t limit = columns == 0 ? (size_t)-1 : columns - 1;
    double rate = seconds > 0 ? (double)done / seconds : 0;
    progress_parts p = {.known = total > 0, .done = done, .total = total};
    char rate_size[32], total_size[32];
    wk_log_format_size(rate_size, sizeof(rate_size),
                       rate > 0 ? (uint64_t)((rate < 1e18 ? rate : 1e18) + 0.5) : 0);
    snprintf(p.rate, sizeof(p.rate), "%s/s", rate_size);
    wk_log_format_size(p.done_only, sizeof(p.done_only), done);
    if (!p.known) {
        snprintf(p.sizes, sizeof(p.sizes), "%s", p.done_only);
    } else {
        /* A short estimate (a server's): the total is at least what was done, and that
         * is shown, as pg_basebackup does. */
        if (done > total)
            p.total = done;
        p.percent = (unsigned)((double)done * 100.0 / (double)p.total);
        if (done < p.total && p.percent > 99)
            p.percent = 99;
        snprintf(p.sizes, sizeof(p.sizes), "%s / %s", p.done_only,
                 wk_log_format_size(total_size, sizeof(total_size), p.total));
        snprintf(p.left, sizeof(p.left), "0 s");
        if (done < p.total && rate <= 0)
            snprintf(p.left, sizeof(p.left), "?");
        else if (done < p.total)
            wk_cli_format_duration(p.left, sizeof(p.left), (double)(p.total - done) / rate);
    }
    /* The variants, widest first; the first that fits is drawn. The rate goes first,
     * then the bar shortens (down to PROGRESS_BAR_MIN marks) to keep the time left,
     * then that goes too; a bar that cannot be shown leaves the counter alone. */
    size_t n = 0;
    if (p.known) {
        static const struct {
            bool rate, left, shorter;
        } variants[] = {{true, true, false},
                        {false, true, false},
                        {false, true, true},
                        {false, false, false},
                        {false, false, true}};
        for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
            n = compose(buf, size, &p, PROGRESS_BAR_WIDTH, 2, variants[i].rate, variants[i].left);
            if (n <= limit && !variants[i].shorter)
                return (int)n;
            size_t rest = n - (PROGRESS_BAR_WIDTH + 2); /* the line without its bar */
            if (variants[i].shorter && limit >= rest + PROGRESS_BAR_MIN + 2)
                return (int)compose(buf, size, &p, (unsigned)(limit - rest - 2), 2,
                                    variants[i].rate, variants[i].left);
        }
        n = compose(buf, size, &p, 0, 2, false, false);
        if (n > limit)
            n = compose(buf, size, &p, 0, 1, false, false);
        if (n > limit)
            n = compose(buf, size, &p, 0, 0, false, false);
    } else {
        n = compose(buf, size, &p, 0, 2, true, false);
        if (n > limit)
            n = compose(buf, size, &p, 0, 2, false, false);
    }
    if (n > limit) { /* cut: never wider than the terminal */
        n = limit;
        if (size > n)
            buf[n] = '\0';
    }
    return (int)n;
}

/* What was last drawn or skipped; the programs run one long command at a time. */
static bool progress_shown, progress_pending;
static struct timespec progress_last;
static uint64_t drawn_done, drawn_total;
static uint64_t pending_done, pending_total;
static struct timespec progress_start;

static double seconds_between(const struct timespec *from, const struct timespec *to)
{
    return (double)(to->tv_sec - from->tv_sec) + (double)(to->tv_nsec - from->tv_nsec) / 1e9;
}

/* The width of the terminal on fd, read now (so a resized window is followed without a
 * SIGWINCH handler). */
static unsigned terminal_columns(int fd)
{
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0)
        return PROGRESS_COLUMNS;
    return ws.ws_col;
}

/* One write(2) per redraw: "\r", the line, and erase to the end of the line. */
static void draw(uint64_t done, uint64_t total, const struct timespec *now)
{
    char line[512];
    int n = wk_cli_format_progress(line + 1, sizeof(line) - 4, terminal_columns(STDERR_FILENO),
                                   done, total, seconds_between(&progress_start, now));
    if (n < 0)
        return;
    size_t len = 1 + ((size_t)n < sizeof(line) - 5 ? (size_t)n : sizeof(line) - 5);
    line[0] = '\r';
    memcpy(line + len, "\033[K", 3);
    len += 3;
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* progress is best effort */
    progress_shown = true;
    progress_pending = false;
    progress_last = *now;
    drawn_done = done;
    drawn_total = total;
}

void wk_cli_progress(uint64_t done, uint64_t total, void *start_time)
{
    const struct timespec *start = start_time;
    struct timespec now;
    if (!isatty(STDERR_FILENO))
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    progress_start = *start;
    bool final = total > 0 && done == total;
    if (progress_shown && done == drawn_done && total == drawn_total) {
        progress_pending = false; /* on the screen already */
        return;
    }
    if (progress_shown && !final && seconds_between(&progress_last, &now) < PROGRESS_INTERVAL) {
        pending_done = done;
        pending_total = total;
        progress_pending = true;
        return;
    }
    draw(done, total, &now);
}

void wk_cli_progress_finish(bool ok)
{
    if (!progress_shown)
        return;
    if (isatty(STDERR_FILENO)) {
        uint64_t done = progress_pending ? pending_done : drawn_done;
        uint64_t total = progress_pending ? pending_total : drawn_total;
        if (ok && total > 0)
            total = done; /* finished: what was done is the total */
        if (progress_pending || done != drawn_done || total != drawn_total) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            draw(done, total, &now);
        }
        ssize_t w = write(STDERR_FILENO, "\n", 1);
        (void)w;
    }
    progress_shown = false;
    progress_pending = false;
}
