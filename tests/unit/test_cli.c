/* test_cli: what every main() does first: --help and --version answered on stdout,
 * configuration errors reported on stderr (one PostgreSQL-style message), positional
 * arguments left for the program, and the log level chosen (configured, else the
 * program's default), sizes written for people, and the progress line: its rendering,
 * fitted to the terminal's width (a pseudo-terminal stands for one), the finished line,
 * and silence when stderr is not a terminal. stdout / stderr are captured through temporary files. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "support.h"
#include "version.h"

extern char **environ;

#define PROG "walkeep-test"
static const char usage_text[] =
    "walkeep-test does nothing.\n\nUsage:\n  walkeep-test [OPTION]...\n";

/* ---- helpers ---------------------------------------------------------------------- */

static char tmp_dir[256];
static char missing_default[300]; /* the default config path: does not exist */
static char conf_path[300];       /* a config file tests may write */

/* Unsets every WALKEEP_* variable so the runner's environment is irrelevant. */
static void clear_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e != NULL; e++) {
            if (strncmp(*e, "WALKEEP_", 8) == 0) {
                size_t len = strcspn(*e, "=");
                if (len >= sizeof(name))
                    len = sizeof(name) - 1;
                memcpy(name, *e, len);
                name[len] = '\0';
                break;
            }
        }
        if (name[0] == '\0')
            break;
        unsetenv(name);
    }
    unsetenv("PGDATA");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
}

static void setup(void)
{
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk_cli_XXXXXX");
    snprintf(missing_default, sizeof(missing_default), "%s/walkeep.conf", tmp_dir);
    snprintf(conf_path, sizeof(conf_path), "%s/test.conf", tmp_dir);
    wk_config_set_default_path(missing_default);
    clear_env();
}

static void teardown(void)
{
    wk_config_set_default_path(NULL);
    ts_tmpdir_remove(tmp_dir);
}

typedef struct capture {
    int saved_out, saved_err;
    char out_path[320], err_path[320];
} capture;

static void capture_start(capture *c)
{
    snprintf(c->out_path, sizeof(c->out_path), "%s/stdout", tmp_dir);
    snprintf(c->err_path, sizeof(c->err_path), "%s/stderr", tmp_dir);
    fflush(stdout);
    fflush(stderr);
    int out = open(c->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(c->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(out, 0);
    ck_assert_int_ge(err, 0);
    c->saved_out = dup(STDOUT_FILENO);
    c->saved_err = dup(STDERR_FILENO);
    ck_assert_int_ge(c->saved_out, 0);
    ck_assert_int_ge(c->saved_err, 0);
    ck_assert_int_ge(dup2(out, STDOUT_FILENO), 0);
    ck_assert_int_ge(dup2(err, STDERR_FILENO), 0);
    close(out);
    close(err);
}

/* Restores stdout / stderr and returns what was written to them (malloc'd). */
static void capture_end(capture *c, char **out, char **err)
{
    fflush(stdout);
    fflush(stderr);
    ck_assert_int_ge(dup2(c->saved_out, STDOUT_FILENO), 0);
    ck_assert_int_ge(dup2(c->saved_err, STDERR_FILENO), 0);
    close(c->saved_out);
    close(c->saved_err);
    *out = ts_read_file(c->out_path, NULL);
    *err = ts_read_file(c->err_path, NULL);
}

/* Runs wk_cli_start on a NULL-terminated argument list, capturing its output. */
static int run_cli(wk_log_level default_level, char **argv, wk_config *cfg, wk_args *args,
                   char **out, char **err)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    capture c;
    capture_start(&c);
    int rc = wk_cli_start(PROG, usage_text, default_level, argc, argv, cfg, args);
    capture_end(&c, out, err);
    return rc;
}

static void assert_nothing_to_free(const wk_config *cfg, const wk_args *args)
{
    ck_assert_ptr_null(cfg->repo);
    ck_assert_ptr_null(cfg->config_file);
    ck_assert_ptr_null(args->items);
    ck_assert_int_eq(args->count, 0);
}

static void write_conf(const char *text)
{
    ts_write_text(conf_path, text);
}

/* ---- tests ---------------------------------------------------------------------------- */

START_TEST(test_help)
{
    char a0[] = PROG, a1[] = "--help";
    char *argv[] = {a0, a1, NULL};
    wk_config cfg;
    wk_args args;
    char *out, *err;
    ck_assert_int_eq(run_cli(WK_LOG_ERROR, argv, &cfg, &args, &out, &err), 1);
    ck_assert_str_eq(out, usage_text);
    ck_assert_str_eq(err, "");
    assert_nothing_to_free(&cfg, &args);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_help_next_to_mistakes)
{
    /* --help is answered even beside a bad value or a missing config file. */
    char a0[] = PROG, a1[] = "--compress=gzip", a2[] = "--config=/nonexistent/x.conf", a3[] = "pos",
         a4[] = "--help";
    char *argv[] = {a0, a1, a2, a3, a4, NULL};
    wk_config cfg;
    wk_args args;
    char *out, *err;
    ck_assert_int_eq(run_cli(WK_LOG_ERROR, argv, &cfg, &args, &out, &err), 1);
    ck_assert_str_eq(out, usage_text);
    ck_assert_str_eq(err, "");
    assert_nothing_to_free(&cfg, &args);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_version)
{
    char a0[] = PROG, a1[] = "--version";
    char *argv[] = {a0, a1, NULL};
    wk_config cfg;
    wk_args args;
    char *out, *err;
    ck_assert_int_eq(run_cli(WK_LOG_ERROR, argv, &cfg, &args, &out, &err), 1);
    ck_assert_ptr_nonnull(strstr(out, "walkeep"));
    ck_assert_str_eq(out, PROG " (walkeep) " WALKEEP_VERSION "\n");
    ck_assert_str_eq(err, "");
    assert_nothing_to_free(&cfg, &args);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_bad_option_value)
{
    char a0[] = PROG, a1[] = "--compress=gzip", a2[] = "pos";
    char *argv[] = {a0, a1, a2, NULL};
    wk_config cfg;
    wk_args args;
    char *out, *err;
    ck_assert_int_eq(run_cli(WK_LOG_ERROR, argv, &cfg, &args, &out, &err), -1);
    ck_assert_str_eq(out, "");
    ck_assert_str_eq(err,
                     PROG ": error: invalid value for parameter \"compress\": \"gzip\" "
                          "(command line)\n" PROG ": hint: Available values: lz4, zstd, none.\n");
    assert_nothing_to_free(&cfg, &args);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_errors_printed_even_at_error_level)
{
    /* A missing value, a bad log level, a missing --config file: each one message on
     * stderr, starting with the program name, whatever the default level. */
    char a0[] = PROG;
    char b1[] = "--compress";
    char c1[] = "--log-level=loud";
    char d1[] = "--config", d2[] = "/nonexistent/walkeep.conf";
    char *cases[][4] = {{a0, b1, NULL, NULL}, {a0, c1, NULL, NULL}, {a0, d1, d2, NULL}};
    for (size_t i = 0; i < 3; i++) {
        wk_config cfg;
        wk_args args;
        char *out, *err;
        ck_assert_int_eq(run_cli(WK_LOG_ERROR, cases[i], &cfg, &args, &out, &err), -1);
        ck_assert_str_eq(out, "");
        ck_assert_msg(strncmp(err, PROG ": error: ", strlen(PROG ": error: ")) == 0, "%s", err);
        ck_assert_int_eq(err[strlen(err) - 1], '\n');
        assert_nothing_to_free(&cfg, &args);
        free(out);
        free(err);
    }
}
END_TEST

START_TEST(test_normal_args)
{
    char a0[] = PROG, a1[] = "--repo=/srv/walkeep", a2[] = "pg_wal/000000010000000000000001",
         a3[] = "--dry-run", a4[] = "--compress", a5[] = "lz4", a6[] = "--", a7[] = "--repo=/x";
    char *argv[] = {a0, a1, a2, a3, a4, a5, a6, a7, NULL};
    wk_config cfg;
    wk_args args;
    char *out, *err;
    ck_assert_int_eq(run_cli(WK_LOG_ERROR, argv, &cfg, &args, &out, &err), 0);
    ck_assert_str_eq(out, "");
    ck_assert_str_eq(err, "");
    ck_assert_str_eq(cfg.repo, "/srv/walkeep");
    ck_assert_int_eq(cfg.compress, WK_COMPRESS_LZ4);
    ck_assert(!args.help);
    ck_assert(!args.version);
    ck_assert_int_eq(args.count, 3);
    ck_assert_ptr_eq(args.items[0], a2);
    ck_assert_str_eq(args.items[1], "--dry-run");
    ck_assert_str_eq(args.items[2], "--repo=/x");
    ck_assert_ptr_null(args.items[3]);
    wk_config_free(&cfg);
    wk_args_free(&args);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_no_args)
{
    char a0[] = PROG;
    char *argv[] = {a0, NULL};
    wk_config cfg;
    wk_args args;
    char *out, *err;
    ck_assert_int_eq(run_cli(WK_LOG_WARNING, argv, &cfg, &args, &out, &err), 0);
    ck_assert_int_eq(args.count, 0);
    ck_assert_ptr_null(cfg.repo);
    ck_assert_ptr_null(cfg.config_file); /* the default path points at nothing */
    ck_assert_str_eq(out, "");
    ck_assert_str_eq(err, "");
    wk_config_free(&cfg);
    wk_args_free(&args);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_default_level_applied)
{
    static const wk_log_level levels[] = {WK_LOG_ERROR, WK_LOG_WARNING, WK_LOG_INFO, WK_LOG_DEBUG};
    for (size_t i = 0; i < 4; i++) {
        char a0[] = PROG, a1[] = "pos";
        char *argv[] = {a0, a1, NULL};
        wk_config cfg;
        wk_args args;
        char *out, *err;
        /* Start from another level, so only wk_cli_start can have set it. */
        wk_log_set_level(levels[(i + 1) % 4]);
        ck_assert_int_eq(run_cli(levels[i], argv, &cfg, &args, &out, &err), 0);
        ck_assert_int_eq(wk_log_get_level(), levels[i]);
        ck_assert(!cfg.log_level_set);
        wk_config_free(&cfg);
        wk_args_free(&args);
        free(out);
        free(err);
    }
}
END_TEST

START_TEST(test_given_level_wins)
{
    char a0[] = PROG, a1[] = "--log-level=debug";
    char *argv[] = {a0, a1, NULL};
    wk_config cfg;
    wk_args args;
    char *out, *err;
    ck_assert_int_eq(run_cli(WK_LOG_ERROR, argv, &cfg, &args, &out, &err), 0);
    ck_assert_int_eq(wk_log_get_level(), WK_LOG_DEBUG);
    wk_config_free(&cfg);
    wk_args_free(&args);
    free(out);
    free(err);

    /* Given as "error" below a default of debug: error wins (not the more verbose one). */
    char b1[] = "--log_level", b2[] = "error";
    char *argv2[] = {a0, b1, b2, NULL};
    ck_assert_int_eq(run_cli(WK_LOG_DEBUG, argv2, &cfg, &args, &out, &err), 0);
    ck_assert_int_eq(wk_log_get_level(), WK_LOG_ERROR);
    ck_assert_int_eq(args.count, 0);
    wk_config_free(&cfg);
    wk_args_free(&args);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_level_from_env_and_file)
{
    char a0[] = PROG;
    char *argv[] = {a0, NULL};
    wk_config cfg;
    wk_args args;
    char *out, *err;

    /* From the default configuration file. */
    FILE *f = fopen(missing_default, "w");
    ck_assert_ptr_nonnull(f);
    fputs("log_level = warning\n", f);
    fclose(f);
    ck_assert_int_eq(run_cli(WK_LOG_ERROR, argv, &cfg, &args, &out, &err), 0);
    ck_assert_int_eq(wk_log_get_level(), WK_LOG_WARNING);
    ck_assert_str_eq(cfg.config_file, missing_default);
    wk_config_free(&cfg);
    wk_args_free(&args);
    free(out);
    free(err);

    /* The environment beats the file. */
    ck_assert_int_eq(setenv("WALKEEP_LOG_LEVEL", "info", 1), 0);
    ck_assert_int_eq(run_cli(WK_LOG_ERROR, argv, &cfg, &args, &out, &err), 0);
    ck_assert_int_eq(wk_log_get_level(), WK_LOG_INFO);
    wk_config_free(&cfg);
    wk_args_free(&args);
    free(out);
    free(err);

    /* The command line beats both; --config names another file. */
    write_conf("log_level = error\nrepo = /from/file\n");
    char c1[] = "--config", c2[320], c3[] = "--log-level=debug";
    snprintf(c2, sizeof(c2), "%s", conf_path);
    char *argv2[] = {a0, c1, c2, c3, NULL};
    ck_assert_int_eq(run_cli(WK_LOG_ERROR, argv2, &cfg, &args, &out, &err), 0);
    ck_assert_int_eq(wk_log_get_level(), WK_LOG_DEBUG);
    ck_assert_str_eq(cfg.repo, "/from/file");
    ck_assert_str_eq(cfg.config_file, conf_path);
    wk_config_free(&cfg);
    wk_args_free(&args);
    free(out);
    free(err);
    unsetenv("WALKEEP_LOG_LEVEL");
}
END_TEST

START_TEST(test_bad_file_reported)
{
    write_conf("no_such_key = 1\n");
    ck_assert_int_eq(setenv("WALKEEP_CONFIG", conf_path, 1), 0);
    char a0[] = PROG;
    char *argv[] = {a0, NULL};
    wk_config cfg;
    wk_args args;
    char *out, *err;
    ck_assert_int_eq(run_cli(WK_LOG_ERROR, argv, &cfg, &args, &out, &err), -1);
    ck_assert_str_eq(out, "");
    ck_assert_ptr_nonnull(strstr(err, PROG ": error: unrecognized configuration parameter "
                                           "\"no_such_key\""));
    ck_assert_ptr_nonnull(strstr(err, conf_path));
    assert_nothing_to_free(&cfg, &args);
    free(out);
    free(err);
    unsetenv("WALKEEP_CONFIG");
}
END_TEST

START_TEST(test_bad_argument)
{
    capture c;
    char *out, *err;
    wk_log_init(PROG, WK_LOG_ERROR);
    capture_start(&c);
    int rc = wk_cli_bad_argument(PROG, "unexpected argument \"x\"");
    capture_end(&c, &out, &err);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(out, "");
    ck_assert_str_eq(err, PROG ": error: unexpected argument \"x\"\n" PROG ": hint: try \"" PROG
                               " --help\" for more information\n");
    free(out);
    free(err);

    /* A '%' in what is printed as is. */
    capture_start(&c);
    wk_cli_bad_argument(PROG, "bad %s %n");
    capture_end(&c, &out, &err);
    ck_assert_ptr_nonnull(strstr(err, PROG ": error: bad %s %n\n"));
    free(out);
    free(err);
}
END_TEST

#define MIB 1048576ULL
#define GIB (1024 * MIB)

START_TEST(test_format_duration)
{
    char buf[32];
    ck_assert_str_eq(wk_cli_format_duration(buf, sizeof(buf), -3.0), "0 s");
    ck_assert_str_eq(wk_cli_format_duration(buf, sizeof(buf), 0.4), "0 s");
    ck_assert_str_eq(wk_cli_format_duration(buf, sizeof(buf), 59.4), "59 s");
    ck_assert_str_eq(wk_cli_format_duration(buf, sizeof(buf), 59.5), "1 min 0 s");
    ck_assert_str_eq(wk_cli_format_duration(buf, sizeof(buf), 100.0), "1 min 40 s");
    ck_assert_str_eq(wk_cli_format_duration(buf, sizeof(buf), 7201.0), "2 h 0 min");
    ck_assert_str_eq(wk_cli_format_duration(buf, sizeof(buf), 90061.0), "25 h 1 min");
}
END_TEST

/* ---- progress ------------------------------------------------------------------------ */

START_TEST(test_progress_zero_percent)
{
    char buf[256];
    int n = wk_cli_format_progress(buf, sizeof(buf), 0, 0, 256 * MIB, 2.0);
    ck_assert_str_eq(buf, "[--------------------]   0%  0 B / 256.0 MiB  0 B/s  ? left");
    ck_assert_int_eq(n, (int)strlen(buf));
}
END_TEST

START_TEST(test_progress_partial)
{
    char buf[256];
    /* 123.4 MiB of 256 MiB in a little under 1.45 s: 48%, ten of twenty marks. */
    uint64_t done = (uint64_t)(123.4 * MIB);
    wk_cli_format_progress(buf, sizeof(buf), 0, done, 256 * MIB, 123.4 / 85.2);
    ck_assert_str_eq(buf,
                     "[##########----------]  48%  123.4 MiB / 256.0 MiB  85.2 MiB/s  2 s left");

    /* Long waits are said in minutes and hours. */
    wk_cli_format_progress(buf, sizeof(buf), 0, 1 * MIB, 101 * MIB, 1.0);
    ck_assert_ptr_nonnull(strstr(buf, "   0%"));
    ck_assert_ptr_nonnull(strstr(buf, "1 min 40 s left"));
    wk_cli_format_progress(buf, sizeof(buf), 0, 1 * MIB, 7201 * MIB, 1.0);
    ck_assert_ptr_nonnull(strstr(buf, "2 h 0 min left"));

    /* Almost done is 99%, never 100%, until it is done. */
    wk_cli_format_progress(buf, sizeof(buf), 0, 1000 * MIB - 1, 1000 * MIB, 10.0);
    ck_assert_ptr_nonnull(strstr(buf, "]  99%"));
}
END_TEST

START_TEST(test_progress_units)
{
    char buf[256];
    /* Each size in its own unit. */
    wk_cli_format_progress(buf, sizeof(buf), 0, 3 * GIB / 2, 3 * GIB, 3.0);
    ck_assert_str_eq(buf, "[##########----------]  50%  1.5 GiB / 3.0 GiB  512.0 MiB/s  3 s left");
    wk_cli_format_progress(buf, sizeof(buf), 0, 10, 100, 1.0);
    ck_assert_str_eq(buf, "[##------------------]  10%  10 B / 100 B  10 B/s  9 s left");
    wk_cli_format_progress(buf, sizeof(buf), 0, 3 * GIB / 2, 0, 3.0);
    ck_assert_str_eq(buf, "  1.5 GiB  512.0 MiB/s");
}
END_TEST

START_TEST(test_progress_complete)
{
    char buf[256];
    wk_cli_format_progress(buf, sizeof(buf), 0, 256 * MIB, 256 * MIB, 4.0);
    ck_assert_str_eq(buf,
                     "[####################] 100%  256.0 MiB / 256.0 MiB  64.0 MiB/s  0 s left");
    /* More than announced (a short server estimate): the total shown is what was done. */
    wk_cli_format_progress(buf, sizeof(buf), 0, 300 * MIB, 256 * MIB, 4.0);
    ck_assert_str_eq(buf,
                     "[####################] 100%  300.0 MiB / 300.0 MiB  75.0 MiB/s  0 s left");
}
END_TEST

START_TEST(test_progress_unknown_total)
{
    char buf[256];
    uint64_t done = (uint64_t)(123.4 * MIB);
    wk_cli_format_progress(buf, sizeof(buf), 0, done, 0, 123.4 / 85.2);
    ck_assert_str_eq(buf, "  123.4 MiB  85.2 MiB/s");
    ck_assert_ptr_null(strchr(buf, '['));
    ck_assert_ptr_null(strchr(buf, '%'));
    ck_assert_ptr_null(strstr(buf, "left"));
}
END_TEST

START_TEST(test_progress_zero_elapsed)
{
    char buf[256];
    wk_cli_format_progress(buf, sizeof(buf), 0, 10 * MIB, 20 * MIB, 0.0);
    ck_assert_str_eq(buf, "[##########----------]  50%  10.0 MiB / 20.0 MiB  0 B/s  ? left");
    wk_cli_format_progress(buf, sizeof(buf), 0, 10 * MIB, 0, 0.0);
    ck_assert_str_eq(buf, "  10.0 MiB  0 B/s");
    wk_cli_format_progress(buf, sizeof(buf), 0, 0, 0, -1.0);
    ck_assert_str_eq(buf, "  0 B  0 B/s");
}
END_TEST

START_TEST(test_progress_small_buffer)
{
    char buf[8];
    int n = wk_cli_format_progress(buf, sizeof(buf), 0, 1 * MIB, 2 * MIB, 1.0);
    ck_assert_int_gt(n, (int)sizeof(buf));
    ck_assert_str_eq(buf, "[######");
}
END_TEST

/* The line fits the terminal: at most columns - 1 characters (a terminal wraps when its
 * last column is written). */
START_TEST(test_progress_fits_columns)
{
    static const struct {
        unsigned columns;
        const char *line;
    } cases[] = {
        {200, "[##########----------]  48%  123.4 MiB / 256.0 MiB  85.2 MiB/s  2 s left"},
        {80, "[##########----------]  48%  123.4 MiB / 256.0 MiB  85.2 MiB/s  2 s left"},
        {73, "[##########----------]  48%  123.4 MiB / 256.0 MiB  85.2 MiB/s  2 s left"},
        {72, "[##########----------]  48%  123.4 MiB / 256.0 MiB  2 s left"},
        {61, "[##########----------]  48%  123.4 MiB / 256.0 MiB  2 s left"},
        {60, "[#########----------]  48%  123.4 MiB / 256.0 MiB  2 s left"},
        {50, "[####-----]  48%  123.4 MiB / 256.0 MiB  2 s left"},
        {49, "[####----]  48%  123.4 MiB / 256.0 MiB  2 s left"},
        {48, "[########---------]  48%  123.4 MiB / 256.0 MiB"},
        {40, "[####-----]  48%  123.4 MiB / 256.0 MiB"},
        {39, "[####----]  48%  123.4 MiB / 256.0 MiB"},
        {38, "  48%  123.4 MiB / 256.0 MiB"},
        {29, "  48%  123.4 MiB / 256.0 MiB"},
        {28, "  48%  123.4 MiB"},
        {17, "  48%  123.4 MiB"},
        {16, "  48%"},
        {6, "  48%"},
        {5, "  48"},
        {1, ""},
    };
    uint64_t done = (uint64_t)(123.4 * MIB);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[256];
        int n = wk_cli_format_progress(buf, sizeof(buf), cases[i].columns, done, 256 * MIB,
                                       123.4 / 85.2);
        ck_assert_msg(strcmp(buf, cases[i].line) == 0, "%u columns: \"%s\", not \"%s\"",
                      cases[i].columns, buf, cases[i].line);
        ck_assert_int_eq(n, (int)strlen(buf));
    }
    /* Unknown total: the rate goes first. */
    char buf[256];
    wk_cli_format_progress(buf, sizeof(buf), 40, done, 0, 123.4 / 85.2);
    ck_assert_str_eq(buf, "  123.4 MiB  85.2 MiB/s");
    wk_cli_format_progress(buf, sizeof(buf), 20, done, 0, 123.4 / 85.2);
    ck_assert_str_eq(buf, "  123.4 MiB");

    /* Whatever the state and the width, never wider than columns - 1. */
    static const uint64_t totals[] = {0, 100, 256 * MIB, 3 * GIB, 5000 * GIB};
    static const double secs[] = {0.0, 0.5, 3601.0, 1e6};
    for (unsigned columns = 1; columns <= 200; columns++)
        for (size_t t = 0; t < sizeof(totals) / sizeof(totals[0]); t++)
            for (size_t k = 0; k < sizeof(secs) / sizeof(secs[0]); k++)
                for (uint64_t d = 0; d <= 4; d++) {
                    uint64_t total = totals[t];
                    uint64_t at = total == 0 ? d * 977 * MIB : total / 4 * d + (d == 4 ? 7 : 0);
                    int n = wk_cli_format_progress(buf, sizeof(buf), columns, at, total, secs[k]);
                    ck_assert_msg(n >= 0 && (size_t)n == strlen(buf) && strlen(buf) < columns,
                                  "%u columns: \"%s\" (%d)", columns, buf, n);
                }
}
END_TEST

/* A pseudo-terminal of the given width as stderr. */
typedef struct pty_capture {
    int master, slave, saved_err;
} pty_capture;

static void pty_set_columns(pty_capture *p, unsigned short columns)
{
    struct winsize ws = {.ws_row = 24, .ws_col = columns};
    ck_assert_int_eq(ioctl(p->slave, TIOCSWINSZ, &ws), 0);
}

static void pty_start(pty_capture *p, unsigned short columns)
{
    p->master = posix_openpt(O_RDWR | O_NOCTTY);
    ck_assert_int_ge(p->master, 0);
    ck_assert_int_eq(grantpt(p->master), 0);
    ck_assert_int_eq(unlockpt(p->master), 0);
    const char *name = ptsname(p->master);
    ck_assert_ptr_nonnull(name);
    p->slave = open(name, O_RDWR | O_NOCTTY);
    ck_assert_int_ge(p->slave, 0);
    pty_set_columns(p, columns);
    fflush(stderr);
    p->saved_err = dup(STDERR_FILENO);
    ck_assert_int_ge(dup2(p->slave, STDERR_FILENO), 0);
    ck_assert(isatty(STDERR_FILENO));
}

/* What the terminal got so far, appended to out (size bytes). */
static void pty_read(pty_capture *p, char *out, size_t size)
{
    size_t used = strlen(out);
    struct pollfd pfd = {.fd = p->master, .events = POLLIN};
    while (used + 1 < size && poll(&pfd, 1, 200) > 0) {
        ssize_t n = read(p->master, out + used, size - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
        out[used] = '\0';
    }
}

static void pty_end(pty_capture *p)
{
    ck_assert_int_ge(dup2(p->saved_err, STDERR_FILENO), 0);
    close(p->saved_err);
    close(p->slave);
    close(p->master);
}

static void pause_redraw(void)
{
    struct timespec t = {0, 120 * 1000 * 1000}; /* past the redraw interval */
    nanosleep(&t, NULL);
}

/* The lines drawn (between "\r" and "\n"), without "\033[K"; the last one's text. */
static size_t pty_lines(const char *tty, size_t *widest, char *last, size_t last_size)
{
    size_t count = 0;
    *widest = 0;
    last[0] = '\0';
    for (const char *p = tty; *p != '\0';) {
        size_t len = strcspn(p, "\r\n");
        char line[512];
        snprintf(line, sizeof(line), "%.*s", (int)len, p);
        char *esc = strstr(line, "\033[K");
        if (esc != NULL)
            *esc = '\0';
        if (line[0] != '\0') {
            count++;
            if (strlen(line) > *widest)
                *widest = strlen(line);
            snprintf(last, last_size, "%s", line);
        }
        p += len;
        if (*p != '\0')
            p++;
    }
    return count;
}

START_TEST(test_progress_on_terminal)
{
    pty_capture p;
    char tty[8192] = "", last[512];
    size_t widest;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);

    /* 40 columns, then the window grows to 100: each redraw fits the width of its time. */
    pty_start(&p, 40);
    wk_cli_progress(0, 100 * MIB, &start);
    pause_redraw();
    wk_cli_progress(50 * MIB, 100 * MIB, &start);
    pty_read(&p, tty, sizeof(tty));
    ck_assert_ptr_null(strchr(tty, '\n')); /* one line, redrawn in place */
    ck_assert_int_eq(pty_lines(tty, &widest, last, sizeof(last)), 2);
    ck_assert_uint_le(widest, 39);
    ck_assert_str_eq(last, "[#####-----]  50%  50.0 MiB / 100.0 MiB");
    pty_set_columns(&p, 100);
    pause_redraw();
    /* The estimate was 100 MiB; the work ends at 90 MiB. */
    wk_cli_progress(90 * MIB, 100 * MIB, &start);
    wk_cli_progress_finish(true);
    tty[0] = '\0';
    pty_read(&p, tty, sizeof(tty));
    ck_assert_int_eq(tty[strlen(tty) - 1], '\n');
    ck_assert_int_eq(pty_lines(tty, &widest, last, sizeof(last)), 2);
    ck_assert_ptr_nonnull(strstr(tty, "]  90%  90.0 MiB / 100.0 MiB"));
    ck_assert_msg(strncmp(last, "[####################] 100%  90.0 MiB / 90.0 MiB  ", 50) == 0,
                  "the finished line: \"%s\"", last);

    /* A failed work keeps its last state, drawn if it was skipped. */
    tty[0] = '\0';
    wk_cli_progress(0, 100 * MIB, &start);
    wk_cli_progress(30 * MIB, 100 * MIB, &start); /* within the interval: skipped */
    wk_cli_progress_finish(false);
    pty_read(&p, tty, sizeof(tty));
    pty_lines(tty, &widest, last, sizeof(last));
    ck_assert_ptr_nonnull(strstr(last, "]  30%  30.0 MiB / 100.0 MiB"));

    /* An unknown total keeps its form; too narrow for the rate, the size alone. */
    tty[0] = '\0';
    pty_set_columns(&p, 16);
    wk_cli_progress(5 * MIB, 0, &start);
    wk_cli_progress_finish(true);
    pty_read(&p, tty, sizeof(tty));
    pty_lines(tty, &widest, last, sizeof(last));
    ck_assert_str_eq(last, "  5.0 MiB");

    /* Nothing drawn, nothing ended. */
    tty[0] = '\0';
    wk_cli_progress_finish(true);
    wk_cli_progress_finish(false);
    pty_read(&p, tty, sizeof(tty));
    ck_assert_str_eq(tty, "");
    pty_end(&p);
}
END_TEST

START_TEST(test_progress_silent_without_terminal)
{
    capture c;
    char *out, *err;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    capture_start(&c);
    ck_assert(!isatty(STDERR_FILENO));
    wk_cli_progress(0, 100 * MIB, &start);
    wk_cli_progress(50 * MIB, 100 * MIB, &start);
    wk_cli_progress(100 * MIB, 100 * MIB, &start);
    wk_cli_progress(5 * MIB, 0, &start);
    wk_cli_progress_finish(true);
    wk_cli_progress_finish(false);
    capture_end(&c, &out, &err);
    ck_assert_str_eq(out, "");
    ck_assert_str_eq(err, "");
    free(out);
    free(err);
}
END_TEST

/* ---- declared options ------------------------------------------------------------------ */

static wk_args args_of(char **items)
{
    wk_args a = {0};
    while (items[a.count] != NULL)
        a.count++;
    a.items = items;
    return a;
}

START_TEST(test_parse_options)
{
    bool json = false;
    const char *file = NULL;
    int64_t age = 0, ready = 0;
    const wk_option table[] = {
        {"--json", WK_OPTION_FLAG, &json, 0, 0},
        {"--prometheus", WK_OPTION_STRING, &file, 0, 0},
        {"--max-backup-age", WK_OPTION_DURATION, &age, 0, 0},
        {"--max-ready", WK_OPTION_COUNT, &ready, 0, 0},
    };
    size_t n = sizeof(table) / sizeof(table[0]);
    wk_error err = {0};
    char *good[] = {"check",         "--json", "--prometheus", "/x.prom", "--max-backup-age=2h",
                    "--max-ready=7", NULL};
    wk_args a = args_of(good);
    ck_assert_msg(wk_cli_parse_options("check", &a, 1, table, n, &err) == 0, "%s", err.message);
    ck_assert(json);
    ck_assert_str_eq(file, "/x.prom");
    ck_assert_int_eq(age, 2 * 3600 * 1000);
    ck_assert_int_eq(ready, 7);

    const struct {
        char *item;
        const char *message, *hint;
    } bad[] = {
        {"--max-redy=3", "check does not take \"--max-redy=3\"", "did you mean \"--max-ready\"?"},
        {"-json", "check does not take \"-json\"", "did you mean \"--json\"?"},
        {"--bogus", "check does not take \"--bogus\"", ""},
        {"--json=yes", "check does not take \"--json=yes\"", "did you mean \"--json\"?"},
        {"--max-ready=x", "--max-ready needs a whole number", ""},
        {"--max-ready=-1", "--max-ready needs a whole number", ""},
        {"--max-backup-age=5m",
         "invalid value for --max-backup-age: \"5m\" (a duration such as 90s, 30min, 48h, 7d)", ""},
        {"--prometheus", "option \"--prometheus\" requires a value", ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *items[] = {"check", bad[i].item, NULL};
        wk_args b = args_of(items);
        wk_error e = {0};
        ck_assert_int_eq(wk_cli_parse_options("check", &b, 1, table, n, &e), -1);
        ck_assert_int_eq(e.code, WK_ERR_USAGE);
        ck_assert_str_eq(e.message, bad[i].message);
        ck_assert_str_eq(e.hint, bad[i].hint);
    }

    /* The recovery-target options as one entry; a duration with a lower bound. */
    wk_restore_target target = {0};
    int64_t timeout = 0;
    const wk_option drill[] = {
        {"", WK_OPTION_TARGET, &target, 0, 0},
        {"--timeout", WK_OPTION_DURATION, &timeout, 1, 0},
    };
    char *items[] = {"drill", "--target-lsn", "0/3000158", "--timeout=2h", NULL};
    wk_args d = args_of(items);
    ck_assert_msg(wk_cli_parse_options("drill", &d, 1, drill, 2, &err) == 0, "%s", err.message);
    ck_assert_int_eq(target.kind, WK_TARGET_LSN);
    ck_assert_uint_eq(target.lsn, 0x3000158);
    ck_assert_int_eq(timeout, 2 * 3600 * 1000);
    char *zero[] = {"drill", "--timeout=0", NULL};
    d = args_of(zero);
    ck_assert_int_eq(wk_cli_parse_options("drill", &d, 1, drill, 2, &err), -1);
    ck_assert_str_eq(err.message,
                     "invalid value for --timeout: \"0\" (a duration such as 90s, 30min, 48h, 7d)");
    /* Transaction ids PostgreSQL takes: 64-bit, low 32 bits 3 or more. */
    const char *xids[][2] = {{"--target-xid=3", "ok"},
                             {"--target-xid=4294967299", "ok"},
                             {"--target-xid=18446744073709551615", "ok"},
                             {"--target-xid=18446744073709551616", "bad"},
                             {"--target-xid=99999999999999999999999", "bad"},
                             {"--target-xid=2", "bad"},
                             {"--target-xid=4294967296", "bad"},
                             {"--target-xid=-5", "bad"}};
    for (size_t i = 0; i < sizeof(xids) / sizeof(xids[0]); i++) {
        char *one[] = {"drill", (char *)xids[i][0], NULL};
        wk_restore_target x = {0};
        const wk_option only_target[] = {{"", WK_OPTION_TARGET, &x, 0, 0}};
        d = args_of(one);
        int rc = wk_cli_parse_options("drill", &d, 1, only_target, 1, &err);
        ck_assert_msg(rc == (strcmp(xids[i][1], "ok") == 0 ? 0 : -1), "%s: %s", xids[i][0],
                      err.message);
    }
    char *two[] = {"drill", "--target-immediate", "--target-xid=5", NULL};
    d = args_of(two);
    ck_assert_int_eq(wk_cli_parse_options("drill", &d, 1, drill, 2, &err), -1);
    ck_assert_str_eq(err.message, "give at most one recovery target");
}
END_TEST

/* Sub-commands: the command and its argument anywhere among the options, repeatable
 * options, and options that belong to other commands. */
START_TEST(test_parse_command)
{
    enum { MAKE, SHOW };
    static const wk_command commands[] = {{"make", NULL}, {"show", "the label of a thing"}};
    bool json = false;
    const char *db = NULL;
    wk_option_list tables = {0};
    const wk_option table[] = {
        {"--json", WK_OPTION_FLAG, &json, 0, 1U << SHOW},
        {"--dbname", WK_OPTION_STRING, &db, 0, 0},
        {"--table", WK_OPTION_LIST, &tables, 0, 1U << SHOW},
    };
    wk_error err = {0};
    int which = -1;
    const char *arg = NULL;
    char *good[] = {"--table", "a", "show", "--dbname=d", "L1", "--table=b", "--json", NULL};
    wk_args a = args_of(good);
    ck_assert_msg(wk_cli_parse_command(&a, commands, 2, table, 3, &which, &arg, &err) == 0, "%s",
                  err.message);
    ck_assert_int_eq(which, SHOW);
    ck_assert_str_eq(arg, "L1");
    ck_assert(json);
    ck_assert_str_eq(db, "d");
    ck_assert_uint_eq(tables.count, 2);
    ck_assert_str_eq(tables.items[0], "a");
    ck_assert_str_eq(tables.items[1], "b");
    wk_option_list_free(&tables);
    ck_assert_ptr_null(tables.items);

    struct {
        char *items[4];
        const char *message, *hint;
    } bad[] = {
        {{NULL}, "a command is needed: make or show", ""},
        {{"--dbname=x", NULL}, "a command is needed: make or show", ""},
        {{"mak", NULL}, "unknown command \"mak\"", "the command is one of make or show"},
        {{"make", "--json", NULL}, "--json does not apply to \"make\"", ""},
        {{"make", "--jsn", NULL}, "make does not take \"--jsn\"", "did you mean \"--json\"?"},
        {{"make", "L", NULL}, "make does not take \"L\"", ""},
        {{"show", NULL}, "\"show\" needs the label of a thing", ""},
        {{"show", "L", "M", NULL}, "show does not take \"M\"", ""},
        {{"show", "L", "--dbname", NULL}, "option \"--dbname\" requires a value", ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wk_args b = args_of(bad[i].items);
        wk_error e = {0};
        ck_assert_int_eq(wk_cli_parse_command(&b, commands, 2, table, 3, &which, &arg, &e), -1);
        ck_assert_int_eq(e.code, WK_ERR_USAGE);
        ck_assert_str_eq(e.message, bad[i].message);
        ck_assert_str_eq(e.hint, bad[i].hint);
        wk_option_list_free(&tables);
    }
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");

    TCase *tc = tcase_create("start");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_help_next_to_mistakes);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_bad_option_value);
    tcase_add_test(tc, test_errors_printed_even_at_error_level);
    tcase_add_test(tc, test_normal_args);
    tcase_add_test(tc, test_no_args);
    tcase_add_test(tc, test_default_level_applied);
    tcase_add_test(tc, test_given_level_wins);
    tcase_add_test(tc, test_level_from_env_and_file);
    tcase_add_test(tc, test_bad_file_reported);
    tcase_add_test(tc, test_bad_argument);
    suite_add_tcase(s, tc);

    tc = tcase_create("progress");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_format_duration);
    tcase_add_test(tc, test_progress_zero_percent);
    tcase_add_test(tc, test_progress_partial);
    tcase_add_test(tc, test_progress_units);
    tcase_add_test(tc, test_progress_complete);
    tcase_add_test(tc, test_progress_unknown_total);
    tcase_add_test(tc, test_progress_zero_elapsed);
    tcase_add_test(tc, test_progress_small_buffer);
    tcase_add_test(tc, test_progress_fits_columns);
    tcase_add_test(tc, test_progress_on_terminal);
    tcase_add_test(tc, test_progress_silent_without_terminal);
    tcase_add_test(tc, test_parse_options);
    tcase_add_test(tc, test_parse_command);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cli_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
