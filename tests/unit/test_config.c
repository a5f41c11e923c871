/* test_config: lib/config.c against files in a mkdtemp'd folder, WALKEEP_* variables
 * and argv vectors: precedence, file syntax, messages, argument sorting, durations. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "support.h"

extern char **environ;

static char tmpdir[64];
static char missing_default[128];

/* Unsets every variable the loader looks at, so the runner's environment is irrelevant. */
static void clear_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e != NULL; e++) {
            if (strncmp(*e, "WALKEEP_", 8) == 0) {
                size_t len = strcspn(*e, "=");
                if (len < sizeof(name)) {
                    memcpy(name, *e, len);
                    name[len] = '\0';
                    break;
                }
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
    ts_tmpdir_make(tmpdir, sizeof(tmpdir), "/tmp/wk_test_config_XXXXXX");
    /* Never depend on /etc/walkeep/walkeep.conf existing or not. */
    snprintf(missing_default, sizeof(missing_default), "%s/no-such.conf", tmpdir);
    wk_config_set_default_path(missing_default);
    clear_env();
}

static void teardown(void)
{
    ck_assert_int_eq(ts_tmpdir_remove(tmpdir), 0);
    wk_config_set_default_path(NULL);
}

/* Writes content to tmpdir/name; returns the path (static buffer per call slot). */
static const char *write_file(const char *name, const char *content)
{
    static char paths[4][256];
    static int slot;
    char *path = paths[slot++ % 4];
    snprintf(path, 256, "%s/%s", tmpdir, name);
    ts_write_text(path, content);
    return path;
}

#define ARGV(...) ((char *[]){"walkeep-test", __VA_ARGS__, NULL})

/* Loads with argv; expects success. */
#define LOAD_OK(cfg, args, av)                                                                     \
    do {                                                                                           \
        wk_error e_;                                                                               \
        wk_error_clear(&e_);                                                                       \
        char **av_ = (av);                                                                         \
        int ac_ = 0;                                                                               \
        while (av_[ac_] != NULL)                                                                   \
            ac_++;                                                                                 \
        int rc_ = wk_config_load((cfg), ac_, av_, (args), &e_);                                    \
        ck_assert_msg(rc_ == 0, "load failed: %s", e_.message);                                    \
    } while (0)

/* Loads with argv; expects failure with code, returns the error in err. */
static void load_fail(char **av, wk_errcode code, wk_error *err)
{
    wk_config cfg;
    wk_args args;
    int ac = 0;
    while (av[ac] != NULL)
        ac++;
    wk_error_clear(err);
    int rc = wk_config_load(&cfg, ac, av, &args, err);
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(err->code == code, "code %s, message: %s", wk_errcode_name(err->code),
                  err->message);
    /* On error nothing is left to free. */
    ck_assert_ptr_null(cfg.repo);
    ck_assert_ptr_null(cfg.pgdata);
    ck_assert_ptr_null(cfg.config_file);
    ck_assert_ptr_null(args.items);
    ck_assert_int_eq(args.count, 0);
}

static char *noargs[] = {"walkeep-test", NULL};

START_TEST(test_defaults)
{
    wk_config cfg;
    wk_args args;
    LOAD_OK(&cfg, &args, noargs);
    ck_assert_ptr_null(cfg.repo);
    ck_assert_int_eq(cfg.compress, WK_COMPRESS_LZ4);
    ck_assert_int_eq(cfg.compress_level, WK_COMPRESS_LEVEL_DEFAULT);
    ck_assert_ptr_null(cfg.encrypt_key_file);
    ck_assert_ptr_null(cfg.pgdata);
    ck_assert_ptr_null(cfg.pg_conninfo);
    ck_assert_ptr_null(cfg.pg_bindir);
    ck_assert_int_eq(cfg.retention_full, 0);
    ck_assert_int_eq(cfg.retention_days, 0);
    ck_assert_int_eq(cfg.retention_dumps, 0);
    ck_assert_int_eq(cfg.retention_dumps_days, 0);
    ck_assert_ptr_null(cfg.s3_uri_style);
    ck_assert_ptr_null(cfg.s3_access_key);
    ck_assert_ptr_null(cfg.s3_secret_key);
    ck_assert_int_eq(cfg.log_level, WK_LOG_INFO);
    ck_assert(!cfg.log_level_set);
    ck_assert_int_eq(cfg.retry_timeout_ms, 60000);
    ck_assert_int_eq(cfg.s3_part_size, 8 * 1024 * 1024);
    ck_assert_int_eq(cfg.s3_parallel, 4);
    ck_assert_int_eq(cfg.s3_stall_timeout_ms, 30000);
    ck_assert_ptr_null(cfg.config_file);
    ck_assert(!args.help);
    ck_assert(!args.version);
    ck_assert_int_eq(args.count, 0);
    ck_assert_ptr_nonnull(args.items);
    ck_assert_ptr_null(args.items[0]);
    wk_config_free(&cfg);
    wk_args_free(&args);
    /* Freeing twice, or NULL, is harmless. */
    wk_config_free(&cfg);
    wk_args_free(&args);
    wk_config_free(NULL);
    wk_args_free(NULL);
}
END_TEST

START_TEST(test_pgdata_default)
{
    wk_config cfg;
    wk_args args;
    setenv("PGDATA", "/var/lib/postgresql/15/main", 1);
    LOAD_OK(&cfg, &args, noargs);
    ck_assert_str_eq(cfg.pgdata, "/var/lib/postgresql/15/main");
    wk_config_free(&cfg);
    wk_args_free(&args);

    const char *path = write_file("a.conf", "pgdata = /from/file\n");
    setenv("WALKEEP_CONFIG", path, 1);
    LOAD_OK(&cfg, &args, noargs);
    ck_assert_str_eq(cfg.pgdata, "/from/file");
    wk_config_free(&cfg);
    wk_args_free(&args);

    /* An empty value unsets it, whatever $PGDATA says. */
    LOAD_OK(&cfg, &args, ARGV("--pgdata="));
    ck_assert_ptr_null(cfg.pgdata);
    wk_config_free(&cfg);
    wk_args_free(&args);

    unsetenv("WALKEEP_CONFIG");
    setenv("PGDATA", "", 1);
    LOAD_OK(&cfg, &args, noargs);
    ck_assert_ptr_null(cfg.pgdata);
    wk_config_free(&cfg);
    wk_args_free(&args);
}
END_TEST

START_TEST(test_precedence)
{
    const char *path = write_file("walkeep.conf", "repo = /file\n"
                                                  "compress = lz4\n"
                                                  "log_level = debug\n"
                                                  "retention_full = 3\n"
                                                  "retention_days = 9\n"
                                                  "retention_dumps = 5\n"
                                                  "retention_dumps_days = 6\n"
                                                  "retry_timeout = 2min\n"
                                                  "s3_stall_timeout = 2s\n");
    setenv("WALKEEP_CONFIG", path, 1);
    setenv("WALKEEP_REPO", "/env", 1);
    setenv("WALKEEP_COMPRESS", "none", 1);
    setenv("WALKEEP_RETENTION_DAYS", "10", 1);
    setenv("WALKEEP_RETENTION_DUMPS_DAYS", "12", 1);
    wk_config cfg;
    wk_args args;
    LOAD_OK(&cfg, &args, ARGV("--repo=/argv", "--retention-days", "11", "--retention-dumps=7"));
    ck_assert_str_eq(cfg.repo, "/argv");
    ck_assert_int_eq(cfg.compress, WK_COMPRESS_NONE);
    ck_assert_int_eq(cfg.log_level, WK_LOG_DEBUG);
    ck_assert(cfg.log_level_set);
    ck_assert_int_eq(cfg.retention_full, 3);
    ck_assert_int_eq(cfg.retention_days, 11);
    ck_assert_int_eq(cfg.retention_dumps, 7);
    ck_assert_int_eq(cfg.retention_dumps_days, 12);
    ck_assert_int_eq(cfg.retry_timeout_ms, 120000);
    ck_assert_int_eq(cfg.s3_stall_timeout_ms, 2000);
    ck_assert_str_eq(cfg.config_file, path);
    ck_assert_int_eq(args.count, 0);
    wk_config_free(&cfg);
    wk_args_free(&args);

    /* Without the argument, the environment wins over the file. */
    LOAD_OK(&cfg, &args, noargs);
    ck_assert_str_eq(cfg.repo, "/env");
    ck_assert_int_eq(cfg.retention_days, 10);
    ck_assert_int_eq(cfg.retention_dumps, 5);
    ck_assert_int_eq(cfg.retention_dumps_days, 12);
    wk_config_free(&cfg);
    wk_args_free(&args);

    /* The last of repeated arguments wins. */
    LOAD_OK(&cfg, &args, ARGV("--repo=/one", "--repo", "/two"));
    ck_assert_str_eq(cfg.repo, "/two");
    wk_config_free(&cfg);
    wk_args_free(&args);
}
END_TEST

START_TEST(test_log_level_set)
{
    wk_config cfg;
    wk_args args;
    setenv("WALKEEP_LOG_LEVEL", "warning", 1);
    LOAD_OK(&cfg, &args, noargs);
    ck_assert_int_eq(cfg.log_level, WK_LOG_WARNING);
    ck_assert(cfg.log_level_set);
    wk_config_free(&cfg);
    wk_args_free(&args);
    unsetenv("WALKEEP_LOG_LEVEL");

    LOAD_OK(&cfg, &args, ARGV("--log-level", "info"));
    ck_assert_int_eq(cfg.log_level, WK_LOG_INFO);
    ck_assert(cfg.log_level_set);
    wk_config_free(&cfg);
    wk_args_free(&args);
}
END_TEST

START_TEST(test_config_option_forms)
{
    const char *a = write_file("a.conf", "repo = /a\n");
    const char *b = write_file("b.conf", "repo = /b\n");
    const char *c = write_file("c.conf", "repo = /c\n");
    wk_config cfg;
    wk_args args;

    LOAD_OK(&cfg, &args, ARGV("--config", (char *)a));
    ck_assert_str_eq(cfg.repo, "/a");
    ck_assert_str_eq(cfg.config_file, a);
    wk_config_free(&cfg);
    wk_args_free(&args);

    char eq[300];
    snprintf(eq, sizeof(eq), "--config=%s", b);
    LOAD_OK(&cfg, &args, ARGV("pos", eq));
    ck_assert_str_eq(cfg.repo, "/b");
    ck_assert_str_eq(cfg.config_file, b);
    ck_assert_int_eq(args.count, 1);
    ck_assert_str_eq(args.items[0], "pos");
    wk_config_free(&cfg);
    wk_args_free(&args);

    /* --config beats WALKEEP_CONFIG; the last --config wins. */
    setenv("WALKEEP_CONFIG", c, 1);
    LOAD_OK(&cfg, &args, ARGV("--config", (char *)a, eq));
    ck_assert_str_eq(cfg.repo, "/b");
    wk_config_free(&cfg);
    wk_args_free(&args);

    LOAD_OK(&cfg, &args, noargs);
    ck_assert_str_eq(cfg.repo, "/c");
    ck_assert_str_eq(cfg.config_file, c);
    wk_config_free(&cfg);
    wk_args_free(&args);

    /* An empty WALKEEP_CONFIG is as if unset. */
    setenv("WALKEEP_CONFIG", "", 1);
    LOAD_OK(&cfg, &args, noargs);
    ck_assert_ptr_null(cfg.config_file);
    wk_config_free(&cfg);
    wk_args_free(&args);
}
END_TEST

START_TEST(test_missing_explicit_file)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/nope.conf", tmpdir);
    wk_error err;
    load_fail(ARGV("--config", path), WK_ERR_CONFIG, &err);
    char want[512];
    snprintf(want, sizeof(want),
             "could not open configuration file \"%s\": No such file or directory", path);
    ck_assert_str_eq(err.message, want);
    ck_assert_str_eq(err.detail, "The file was named by the --config option.");

    setenv("WALKEEP_CONFIG", path, 1);
    load_fail(noargs, WK_ERR_CONFIG, &err);
    ck_assert_str_eq(err.message, want);
    ck_assert_str_eq(err.detail, "The file was named by the environment variable WALKEEP_CONFIG.");

    /* A folder is not a readable file either. */
    load_fail(ARGV("--config", tmpdir), WK_ERR_CONFIG, &err);
    ck_assert_ptr_nonnull(strstr(err.message, "configuration file"));
}
END_TEST

/* Files that are no configuration are refused at once: a FIFO (never waited on), a
 * device, a huge file, an endless line, a NUL byte. */
START_TEST(test_file_limits)
{
    wk_error err;
    char path[300];
    snprintf(path, sizeof(path), "%s/fifo.conf", tmpdir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    load_fail(ARGV("--config", path), WK_ERR_CONFIG, &err);
    ck_assert_ptr_nonnull(strstr(err.message, "is not a regular file"));
    load_fail(ARGV("--config", "/dev/zero"), WK_ERR_CONFIG, &err);
    ck_assert_ptr_nonnull(strstr(err.message, "is not a regular file"));

    char *big = malloc(20000);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    snprintf(path, sizeof(path), "%s", write_file("long.conf", big));
    load_fail(ARGV("--config", path), WK_ERR_CONFIG, &err);
    ck_assert_ptr_nonnull(strstr(err.message, "line 1 of configuration file"));
    ck_assert_ptr_nonnull(strstr(err.message, "is longer than 16384 bytes"));
    free(big);

    snprintf(path, sizeof(path), "%s/nul.conf", tmpdir);
    ts_write_file(path, "log_level = info\n\0repo = /x\n", 29);
    load_fail(ARGV("--config", path), WK_ERR_CONFIG, &err);
    ck_assert_ptr_nonnull(strstr(err.message, "line 2 of configuration file"));
    ck_assert_ptr_nonnull(strstr(err.message, "contains a NUL byte"));

    snprintf(path, sizeof(path), "%s/huge.conf", tmpdir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 70000; i++)
        fputs("# a comment line\n", f);
    fclose(f);
    load_fail(ARGV("--config", path), WK_ERR_CONFIG, &err);
    ck_assert_ptr_nonnull(strstr(err.message, "is larger than 1 MiB"));
}
END_TEST

START_TEST(test_default_path)
{
    wk_config cfg;
    wk_args args;
    /* Missing default file: fine, no file. (The fixture points the default here.) */
    LOAD_OK(&cfg, &args, noargs);
    ck_assert_ptr_null(cfg.config_file);
    wk_config_free(&cfg);
    wk_args_free(&args);

    const char *path = write_file("default.conf", "repo = /default\n");
    wk_config_set_default_path(path);
    LOAD_OK(&cfg, &args, noargs);
    ck_assert_str_eq(cfg.repo, "/default");
    ck_assert_str_eq(cfg.config_file, path);
    wk_config_free(&cfg);
    wk_args_free(&args);

    /* A broken default file is an error like any other. */
    write_file("default.conf", "bogus = 1\n");
    wk_error err;
    load_fail(noargs, WK_ERR_CONFIG, &err);
}
END_TEST

START_TEST(test_unknown_key)
{
    const char *path = write_file("walkeep.conf", "# comment\n"
                                                  "repo = /r\n"
                                                  "foo = bar\n");
    wk_error err;
    load_fail(ARGV("--config", (char *)path), WK_ERR_CONFIG, &err);
    char want[512];
    snprintf(want, sizeof(want),
             "unrecognized configuration parameter \"foo\" in file \"%s\" line 3", path);
    ck_assert_str_eq(err.message, want);
    ck_assert_str_eq(err.hint, "The parameters are listed in walkeep.conf(5).");

    /* Dashes are a command-line convenience only; the hint names the key meant. */
    path = write_file("dash.conf", "encrypt-key-file = /k\n");
    load_fail(ARGV("--config", (char *)path), WK_ERR_CONFIG, &err);
    ck_assert_ptr_nonnull(strstr(err.message, "\"encrypt-key-file\""));
    ck_assert_str_eq(err.hint, "Did you mean \"encrypt_key_file\"?");
    /* A typo: the closest known key. */
    path = write_file("typo.conf", "retention_dump = 3\n");
    load_fail(ARGV("--config", (char *)path), WK_ERR_CONFIG, &err);
    ck_assert_str_eq(err.hint, "Did you mean \"retention_dumps\"?");
    path = write_file("typo2.conf", "Compres = lz4\n");
    load_fail(ARGV("--config", (char *)path), WK_ERR_CONFIG, &err);
    ck_assert_str_eq(err.hint, "Did you mean \"compress\"?");

    /* Unknown WALKEEP_* variables belong to someone else. */
    setenv("WALKEEP_FOO", "bar", 1);
    setenv("WALKEEP_", "x", 1);
    wk_config cfg;
    wk_args args;
    LOAD_OK(&cfg, &args, noargs);
    wk_config_free(&cfg);
    wk_args_free(&args);
}
END_TEST

/* key, bad value, hint expected (substring) */
static const struct {
    const char *key;
    const char *value;
    const char *hint;
} bad_values[] = {
    {"compress", "lzma", "Available values: lz4, zstd, none."},
    {"compress", "", "Available values: lz4, zstd, none."},
    {"compress_level", "20", "lz4 takes 0 to 12, zstd 1 to 19, none only 0"},
    {"compress_level", "-1", "lz4 takes 0 to 12, zstd 1 to 19, none only 0"},
    {"compress_level", "abc", "lz4 takes 0 to 12, zstd 1 to 19, none only 0"},
    {"compress_level", "1.5", "lz4 takes 0 to 12, zstd 1 to 19, none only 0"},
    {"compress_level", "", "lz4 takes 0 to 12, zstd 1 to 19, none only 0"},
    {"compress_level", "99999999999999999999", "lz4 takes 0 to 12, zstd 1 to 19, none only 0"},
    {"retention_full", "-1", "at least 0"},
    {"retention_full", "x", "at least 0"},
    {"retention_full", "3 ", "at least 0"},
    {"retention_days", "-1", "at least 0"},
    {"retention_days", "2147483648", "at least 0"},
    {"retention_dumps", "-1", "at least 0"},
    {"retention_dumps", "two", "at least 0"},
    {"retention_dumps_days", "-3", "at least 0"},
    {"retention_dumps_days", "1.5", "at least 0"},
    {"s3_uri_style", "virtual", "Available values: path, host."},
    {"s3_uri_style", "", "Available values: path, host."},
    {"log_level", "verbose", "Available values: error, warning, info, debug."},
    {"log_level", "", "Available values: error, warning, info, debug."},
    {"retry_timeout", "5 min", "unit"},
    {"retry_timeout", "-1s", "unit"},
    {"retry_timeout", "10x", "unit"},
    {"retry_timeout", "25d", "unit"},
    {"retry_timeout", "", "unit"},
    {"s3_part_size", "512kB", "from 1024kB to 1048576kB"},
    {"s3_part_size", "2GB", "from 1024kB to 1048576kB"},
    {"s3_part_size", "8 MB", "unit B, kB, MB or GB"},
    {"s3_part_size", "8mb", "unit B, kB, MB or GB"},
    {"s3_parallel", "0", "between 1 and 64"},
    {"s3_parallel", "65", "between 1 and 64"},
    {"s3_stall_timeout", "500ms", "from 1000ms to 3600000ms"},
    {"s3_stall_timeout", "2h", "from 1000ms to 3600000ms"},
    {"s3_stall_timeout", "0", "from 1000ms to 3600000ms"},
};

START_TEST(test_bad_value_file)
{
    const char *key = bad_values[_i].key;
    const char *value = bad_values[_i].value;
    char content[256];
    snprintf(content, sizeof(content), "repo = /r\n\n# x\n%s = '%s'\n", key, value);
    const char *path = write_file("walkeep.conf", content);
    wk_error err;
    load_fail(ARGV("--config", (char *)path), WK_ERR_CONFIG, &err);
    char want[512];
    snprintf(want, sizeof(want), "invalid value for parameter \"%s\": \"%s\" (file \"%s\" line 4)",
             key, value, path);
    ck_assert_str_eq(err.message, want);
    ck_assert_msg(strstr(err.hint, bad_values[_i].hint) != NULL, "hint: %s", err.hint);
}
END_TEST

START_TEST(test_bad_value_env)
{
    const char *key = bad_values[_i].key;
    const char *value = bad_values[_i].value;
    char name[64] = "WALKEEP_";
    for (size_t i = 0; key[i] != '\0'; i++)
        name[8 + i] = (char)(key[i] >= 'a' && key[i] <= 'z' ? key[i] - 'a' + 'A' : key[i]);
    setenv(name, value, 1);
    wk_error err;
    load_fail(noargs, WK_ERR_CONFIG, &err);
    char want[512];
    snprintf(want, sizeof(want),
             "invalid value for parameter \"%s\": \"%s\" (environment variable %s)", key, value,
             name);
    ck_assert_str_eq(err.message, want);
    ck_assert_msg(strstr(err.hint, bad_values[_i].hint) != NULL, "hint: %s", err.hint);
}
END_TEST

START_TEST(test_bad_value_argv)
{
    const char *key = bad_values[_i].key;
    const char *value = bad_values[_i].value;
    char opt[128];
    snprintf(opt, sizeof(opt), "--%s=%s", key, value);
    wk_error err;
    load_fail(ARGV("x", opt), WK_ERR_CONFIG, &err);
    char want[512];
    snprintf(want, sizeof(want), "invalid value for parameter \"%s\": \"%s\" (command line)", key,
             value);
    ck_assert_str_eq(err.message, want);
    ck_assert_msg(strstr(err.hint, bad_values[_i].hint) != NULL, "hint: %s", err.hint);
}
END_TEST

START_TEST(test_good_values)
{
    wk_config cfg;
    wk_args args;
    LOAD_OK(&cfg, &args,
            ARGV("--compress=LZ4", "--compress-level=12", "--s3-uri-style=Host",
                 "--retention-full=0", "--retry-timeout=0", "--log-level=ERROR"));
    ck_assert_int_eq(cfg.compress, WK_COMPRESS_LZ4);
    ck_assert_int_eq(cfg.compress_level, 12);
    ck_assert_str_eq(cfg.s3_uri_style, "host");
    ck_assert_int_eq(cfg.retention_full, 0);
    ck_assert_int_eq(cfg.retry_timeout_ms, 0);
    ck_assert_int_eq(cfg.log_level, WK_LOG_ERROR);
    wk_config_free(&cfg);
    wk_args_free(&args);

    LOAD_OK(&cfg, &args,
            ARGV("--compress=zstd", "--compress-level=19", "--s3-uri-style=path",
                 "--retry-timeout=24d", "--compress-level=+3"));
    ck_assert_int_eq(cfg.compress, WK_COMPRESS_ZSTD);
    ck_assert_int_eq(cfg.compress_level, 3);
    ck_assert_str_eq(cfg.s3_uri_style, "path");
    ck_assert_int_eq(cfg.retry_timeout_ms, 24 * 86400 * 1000);
    wk_config_free(&cfg);
    wk_args_free(&args);
}
END_TEST

START_TEST(test_quoting_and_comments)
{
    const char *path =
        write_file("walkeep.conf", "# walkeep configuration\n"
                                   "\n"
                                   "   \t\n"
                                   "repo = '/path with # hash'   # trailing comment\n"
                                   "pg_conninfo = 'host=db application_name=''a b'''\n"
                                   "  pg_bindir=/usr/lib/postgresql/15/bin   # spaces before\n"
                                   "s3_region = eu-west-1#no space\n"
                                   "s3_endpoint = ''\n"
                                   "s3_ca_file = first\n"
                                   "s3_ca_file = second\n"
                                   "COMPRESS = none\n"
                                   "encrypt_key_file = '/keys/it''s.key'\r\n"
                                   "pgdata = /data\r\n"
                                   "retention_days =\t'7'\n"
                                   "s3_access_key = AK # secret\n"
                                   "retry_timeout = 250ms");
    wk_config cfg;
    wk_args args;
    LOAD_OK(&cfg, &args, ARGV("--config", (char *)path));
    ck_assert_str_eq(cfg.repo, "/path with # hash");
    ck_assert_str_eq(cfg.pg_conninfo, "host=db application_name='a b'");
    ck_assert_str_eq(cfg.pg_bindir, "/usr/lib/postgresql/15/bin");
    ck_assert_str_eq(cfg.s3_region, "eu-west-1");
    ck_assert_ptr_null(cfg.s3_endpoint);
    ck_assert_str_eq(cfg.s3_ca_file, "second");
    ck_assert_int_eq(cfg.compress, WK_COMPRESS_NONE);
    ck_assert_str_eq(cfg.encrypt_key_file, "/keys/it's.key");
    ck_assert_str_eq(cfg.pgdata, "/data");
    ck_assert_int_eq(cfg.retention_days, 7);
    ck_assert_str_eq(cfg.s3_access_key, "AK");
    ck_assert_int_eq(cfg.retry_timeout_ms, 250);
    wk_config_free(&cfg);
    wk_args_free(&args);
}
END_TEST

START_TEST(test_syntax_errors)
{
    static const struct {
        const char *line;
        const char *detail;
    } cases[] = {
        {"repo /r\n", "Expected \"=\""},
        {"repo\n", "Expected \"=\""},
        {"= /r\n", "name is missing"},
        {"repo = '/r\n", "not terminated"},
        {"repo = '/r' x\n", "after a quoted value"},
        {"s3_secret_key 'SECRETVALUE'\n", "Expected \"=\""},
        {"s3_secret_key = 'SECRETVALUE\n", "not terminated"},
        {"s3_secret_key = 'SECRETVALUE' SECRETVALUE\n", "after a quoted value"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char content[256];
        snprintf(content, sizeof(content), "# first\n%s", cases[i].line);
        const char *path = write_file("syntax.conf", content);
        wk_error err;
        load_fail(ARGV("--config", (char *)path), WK_ERR_CONFIG, &err);
        char want[512];
        snprintf(want, sizeof(want), "syntax error in file \"%s\" line 2", path);
        ck_assert_str_eq(err.message, want);
        ck_assert_msg(strstr(err.detail, cases[i].detail) != NULL, "case %zu detail: %s", i,
                      err.detail);
        ck_assert(strstr(err.message, "SECRET") == NULL);
        ck_assert(strstr(err.detail, "SECRET") == NULL);
        ck_assert(strstr(err.hint, "SECRET") == NULL);
    }
}
END_TEST

START_TEST(test_args_order)
{
    wk_config cfg;
    wk_args args;
    LOAD_OK(&cfg, &args,
            ARGV("0001", "--json", "--repo", "/r", "pg_wal/x", "--target-time=2024-01-01",
                 "--compress", "lz4", "-v", "-", "last"));
    ck_assert_str_eq(cfg.repo, "/r");
    ck_assert_int_eq(cfg.compress, WK_COMPRESS_LZ4);
    ck_assert_int_eq(args.count, 7);
    const char *want[] = {"0001", "--json", "pg_wal/x", "--target-time=2024-01-01",
                          "-v",   "-",      "last"};
    for (int i = 0; i < 7; i++)
        ck_assert_str_eq(args.items[i], want[i]);
    ck_assert_ptr_null(args.items[7]);
    wk_config_free(&cfg);
    wk_args_free(&args);

    /* Items are argv's own pointers, untouched. */
    char *av[] = {"prog", "--target-name", "x", NULL};
    LOAD_OK(&cfg, &args, av);
    ck_assert_int_eq(args.count, 2);
    ck_assert_ptr_eq(args.items[0], av[1]);
    ck_assert_ptr_eq(args.items[1], av[2]);
    wk_config_free(&cfg);
    wk_args_free(&args);
}
END_TEST

START_TEST(test_double_dash)
{
    wk_config cfg;
    wk_args args;
    LOAD_OK(&cfg, &args, ARGV("a", "--repo=/a", "--", "--repo=/b", "--help", "--", "b"));
    ck_assert_str_eq(cfg.repo, "/a");
    ck_assert(!args.help);
    ck_assert_int_eq(args.count, 5);
    ck_assert_str_eq(args.items[0], "a");
    ck_assert_str_eq(args.items[1], "--repo=/b");
    ck_assert_str_eq(args.items[2], "--help");
    ck_assert_str_eq(args.items[3], "--");
    ck_assert_str_eq(args.items[4], "b");
    wk_config_free(&cfg);
    wk_args_free(&args);

    /* A separate value is taken as is, even one that looks like an option. */
    LOAD_OK(&cfg, &args, ARGV("--repo", "--", "x"));
    ck_assert_str_eq(cfg.repo, "--");
    ck_assert_int_eq(args.count, 1);
    wk_config_free(&cfg);
    wk_args_free(&args);
}
END_TEST

START_TEST(test_help_version)
{
    wk_config cfg;
    wk_args args;
    LOAD_OK(&cfg, &args, ARGV("--help"));
    ck_assert(args.help);
    ck_assert(!args.version);
    ck_assert_int_eq(args.count, 0);
    wk_config_free(&cfg);
    wk_args_free(&args);

    LOAD_OK(&cfg, &args, ARGV("sub", "--version"));
    ck_assert(args.version);
    ck_assert(!args.help);
    ck_assert_int_eq(args.count, 1);
    wk_config_free(&cfg);
    wk_args_free(&args);

    /* --help works even when the configuration is broken. */
    char path[256];
    snprintf(path, sizeof(path), "%s/nope.conf", tmpdir);
    setenv("WALKEEP_CONFIG", path, 1);
    setenv("WALKEEP_COMPRESS", "lzma", 1);
    LOAD_OK(&cfg, &args, ARGV("--compress=bad", "--help", "--repo"));
    ck_assert(args.help);
    ck_assert_int_eq(cfg.compress, WK_COMPRESS_LZ4);
    wk_config_free(&cfg);
    wk_args_free(&args);

    /* Spellings with a value are not --help; they are left to the program. */
    unsetenv("WALKEEP_CONFIG");
    unsetenv("WALKEEP_COMPRESS");
    LOAD_OK(&cfg, &args, ARGV("--help=x", "-h", "-V"));
    ck_assert(!args.help);
    ck_assert(!args.version);
    ck_assert_int_eq(args.count, 3);
    wk_config_free(&cfg);
    wk_args_free(&args);
}
END_TEST

START_TEST(test_dash_underscore)
{
    wk_config cfg;
    wk_args args;
    LOAD_OK(&cfg, &args,
            ARGV("--encrypt-key-file=/k1", "--pg_conninfo", "dbname=x", "--pg-bindir", "/bin",
                 "--s3_uri-style=path", "--retry-timeout", "5min", "--compress_level", "3",
                 "--s3-secret-key=S", "--s3_access_key", "A", "--retention_full=2"));
    ck_assert_str_eq(cfg.encrypt_key_file, "/k1");
    ck_assert_str_eq(cfg.pg_conninfo, "dbname=x");
    ck_assert_str_eq(cfg.pg_bindir, "/bin");
    ck_assert_str_eq(cfg.s3_uri_style, "path");
    ck_assert_int_eq(cfg.retry_timeout_ms, 300000);
    ck_assert_int_eq(cfg.compress_level, 3);
    ck_assert_str_eq(cfg.s3_secret_key, "S");
    ck_assert_str_eq(cfg.s3_access_key, "A");
    ck_assert_int_eq(cfg.retention_full, 2);
    ck_assert_int_eq(args.count, 0);
    wk_config_free(&cfg);
    wk_args_free(&args);

    LOAD_OK(&cfg, &args, ARGV("--encrypt_key_file", "/k2"));
    ck_assert_str_eq(cfg.encrypt_key_file, "/k2");
    wk_config_free(&cfg);
    wk_args_free(&args);

    /* Option names are case-sensitive, like getopt's. */
    LOAD_OK(&cfg, &args, ARGV("--Repo=/x"));
    ck_assert_ptr_null(cfg.repo);
    ck_assert_int_eq(args.count, 1);
    wk_config_free(&cfg);
    wk_args_free(&args);
}
END_TEST

START_TEST(test_missing_value)
{
    wk_error err;
    load_fail(ARGV("x", "--repo"), WK_ERR_USAGE, &err);
    ck_assert_str_eq(err.message, "option \"--repo\" requires a value");
    load_fail(ARGV("--encrypt-key-file"), WK_ERR_USAGE, &err);
    ck_assert_str_eq(err.message, "option \"--encrypt-key-file\" requires a value");
    load_fail(ARGV("--config"), WK_ERR_USAGE, &err);
    ck_assert_str_eq(err.message, "option \"--config\" requires a value");
    load_fail(ARGV("--config="), WK_ERR_USAGE, &err);
    ck_assert_str_eq(err.message, "option \"--config\" requires a value");
}
END_TEST

START_TEST(test_empty_values)
{
    const char *path = write_file("walkeep.conf", "repo = /file\ns3_region = r\n");
    setenv("WALKEEP_CONFIG", path, 1);
    setenv("WALKEEP_S3_REGION", "", 1);
    wk_config cfg;
    wk_args args;
    LOAD_OK(&cfg, &args, ARGV("--repo="));
    ck_assert_ptr_null(cfg.repo);
    ck_assert_ptr_null(cfg.s3_region);
    wk_config_free(&cfg);
    wk_args_free(&args);

    wk_error err;
    load_fail(ARGV("--compress="), WK_ERR_CONFIG, &err);
    load_fail(ARGV("--retention-full", ""), WK_ERR_CONFIG, &err);
    setenv("WALKEEP_COMPRESS_LEVEL", "", 1);
    load_fail(noargs, WK_ERR_CONFIG, &err);
    ck_assert_ptr_nonnull(strstr(err.message, "WALKEEP_COMPRESS_LEVEL"));
}
END_TEST

START_TEST(test_secrets_and_aws)
{
    wk_config cfg;
    wk_args args;
    setenv("AWS_ACCESS_KEY_ID", "aws-id", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "aws-secret", 1);
    LOAD_OK(&cfg, &args, noargs);
    ck_assert_str_eq(cfg.s3_access_key, "aws-id");
    ck_assert_str_eq(cfg.s3_secret_key, "aws-secret");
    wk_config_free(&cfg);
    wk_args_free(&args);

    const char *path = write_file("walkeep.conf", "s3_secret_key = 'file-secret'\n");
    setenv("WALKEEP_CONFIG", path, 1);
    setenv("WALKEEP_S3_ACCESS_KEY", "env-id", 1);
    LOAD_OK(&cfg, &args, noargs);
    ck_assert_str_eq(cfg.s3_access_key, "env-id");
    ck_assert_str_eq(cfg.s3_secret_key, "file-secret");
    wk_config_free(&cfg);
    wk_args_free(&args);
}
END_TEST

START_TEST(test_durations)
{
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {
        {"0", 0},
        {"10", 10000},
        {"250ms", 250},
        {"30s", 30000},
        {"5min", 300000},
        {"2h", 7200000},
        {"7d", 604800000},
        {"007s", 7000},
        {"9223372036854775807ms", INT64_MAX},
        {"9223372036854775s", 9223372036854775000},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t ms = -1;
        ck_assert_msg(wk_config_parse_duration(good[i].text, &ms) == 0, "%s", good[i].text);
        ck_assert_msg(ms == good[i].ms, "%s", good[i].text);
    }
    static const char *bad[] = {
        "",
        "-1",
        "+5s",
        " 5s",
        "5 s",
        "5s ",
        "5S",
        "5m",
        "5sec",
        "5mins",
        "1.5s",
        "s",
        "ms",
        "5ms5",
        "0x10",
        "9223372036854775808ms",
        "9223372036854776s",
        "99999999999999999999",
        "106751991167301d",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;
        ck_assert_msg(wk_config_parse_duration(bad[i], &ms) == -1, "accepted \"%s\"", bad[i]);
        ck_assert_int_eq(ms, 42);
    }
    ck_assert_int_eq(wk_config_parse_duration(NULL, NULL), -1);
}
END_TEST

START_TEST(test_sizes)
{
    static const struct {
        const char *text;
        int64_t bytes;
    } good[] = {
        {"0", 0},        {"100", 100},     {"100B", 100},
        {"64kB", 65536}, {"8MB", 8388608}, {"2GB", INT64_C(2147483648)},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t bytes = -1;
        ck_assert_msg(wk_config_parse_size(good[i].text, &bytes) == 0, "%s", good[i].text);
        ck_assert_msg(bytes == good[i].bytes, "%s", good[i].text);
    }
    static const char *bad[] = {"", "-1", "8 MB", "8mb", "8KB", "8M", "1.5MB", "MB", "8TB"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t bytes = 42;
        ck_assert_msg(wk_config_parse_size(bad[i], &bytes) == -1, "accepted \"%s\"", bad[i]);
        ck_assert_int_eq(bytes, 42);
    }
    wk_config cfg;
    wk_args args;
    LOAD_OK(&cfg, &args, ARGV("--s3-part-size=16MB", "--s3-parallel", "8"));
    ck_assert_int_eq(cfg.s3_part_size, 16 * 1024 * 1024);
    ck_assert_int_eq(cfg.s3_parallel, 8);
    wk_config_free(&cfg);
    wk_args_free(&args);
}
END_TEST

START_TEST(test_compress_names)
{
    wk_compress c;
    ck_assert_int_eq(wk_compress_parse("lz4", &c), 0);
    ck_assert_int_eq(c, WK_COMPRESS_LZ4);
    ck_assert_int_eq(wk_compress_parse("zstd", &c), 0);
    ck_assert_int_eq(c, WK_COMPRESS_ZSTD);
    ck_assert_int_eq(wk_compress_parse("none", &c), 0);
    ck_assert_int_eq(c, WK_COMPRESS_NONE);
    ck_assert_int_eq(wk_compress_parse("gzip", &c), -1);
    ck_assert_int_eq(wk_compress_parse(NULL, &c), -1);
    ck_assert_str_eq(wk_compress_name(WK_COMPRESS_LZ4), "lz4");
    ck_assert_str_eq(wk_compress_name(WK_COMPRESS_ZSTD), "zstd");
    ck_assert_str_eq(wk_compress_name(WK_COMPRESS_NONE), "none");
}
END_TEST

START_TEST(test_no_argv)
{
    wk_config cfg;
    wk_args args;
    wk_error err;
    ck_assert_int_eq(wk_config_load(&cfg, 0, NULL, &args, &err), 0);
    ck_assert_int_eq(args.count, 0);
    ck_assert_ptr_null(args.items[0]);
    wk_config_free(&cfg);
    wk_args_free(&args);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_pgdata_default);
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_log_level_set);
    tcase_add_test(tc, test_config_option_forms);
    tcase_add_test(tc, test_missing_explicit_file);
    tcase_add_test(tc, test_file_limits);
    tcase_add_test(tc, test_default_path);
    tcase_add_test(tc, test_unknown_key);
    int nbad = (int)(sizeof(bad_values) / sizeof(bad_values[0]));
    tcase_add_loop_test(tc, test_bad_value_file, 0, nbad);
    tcase_add_loop_test(tc, test_bad_value_env, 0, nbad);
    tcase_add_loop_test(tc, test_bad_value_argv, 0, nbad);
    tcase_add_test(tc, test_good_values);
    tcase_add_test(tc, test_quoting_and_comments);
    tcase_add_test(tc, test_syntax_errors);
    tcase_add_test(tc, test_args_order);
    tcase_add_test(tc, test_double_dash);
    tcase_add_test(tc, test_help_version);
    tcase_add_test(tc, test_dash_underscore);
    tcase_add_test(tc, test_missing_value);
    tcase_add_test(tc, test_empty_values);
    tcase_add_test(tc, test_secrets_and_aws);
    tcase_add_test(tc, test_durations);
    tcase_add_test(tc, test_sizes);
    tcase_add_test(tc, test_compress_names);
    tcase_add_test(tc, test_no_argv);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
