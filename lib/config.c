/* config: defaults, then the configuration file, then WALKEEP_<KEY> variables, then
 * --key=value arguments; every value goes through one table-driven parser. Never prints. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

#define BUILTIN_DEFAULT_PATH "/etc/walkeep/walkeep.conf"
#define ENV_PREFIX "WALKEEP_"

static const char *default_path_override;

typedef enum key_type {
    KEY_STRING,    /* free text; "" means unset */
    KEY_COMPRESS,  /* lz4 | zstd | none */
    KEY_INT,       /* integer in [min, max] */
    KEY_URI_STYLE, /* path | host, stored as a string */
    KEY_LOG_LEVEL,
    KEY_DURATION, /* PostgreSQL time units, stored as int milliseconds */
    KEY_SIZE      /* PostgreSQL memory units, stored as int bytes in [min, max] */
} key_type;

typedef struct key_def {
    const char *name;
    key_type type;
    size_t offset; /* of the field in wk_config */
    int min;       /* KEY_INT, KEY_SIZE, KEY_DURATION (ms) */
    int max;
    int secret; /* the value is never put into a message */
} key_def;

#define FIELD(f) offsetof(wk_config, f)

static const key_def keys[] = {
    {"repo", KEY_STRING, FIELD(repo), 0, 0, 0},
    {"compress", KEY_COMPRESS, FIELD(compress), 0, 0, 0},
    {"compress_level", KEY_INT, FIELD(compress_level), 0, 19, 0}, /* per codec: repo.c */
    {"encrypt_key_file", KEY_STRING, FIELD(encrypt_key_file), 0, 0, 0},
    {"pgdata", KEY_STRING, FIELD(pgdata), 0, 0, 0},
    {"pg_conninfo", KEY_STRING, FIELD(pg_conninfo), 0, 0, 0},
    {"pg_bindir", KEY_STRING, FIELD(pg_bindir), 0, 0, 0},
    {"retention_full", KEY_INT, FIELD(retention_full), 0, INT_MAX, 0},
    {"retention_days", KEY_INT, FIELD(retention_days), 0, INT_MAX, 0},
    {"retention_dumps", KEY_INT, FIELD(retention_dumps), 0, INT_MAX, 0},
    {"retention_dumps_days", KEY_INT, FIELD(retention_dumps_days), 0, INT_MAX, 0},
    {"dump_databases", KEY_STRING, FIELD(dump_databases), 0, 0, 0},
    {"check_shrink_percent", KEY_INT, FIELD(check_shrink_percent), 0, 100, 0},
    {"s3_endpoint", KEY_STRING, FIELD(s3_endpoint), 0, 0, 0},
    {"s3_region", KEY_STRING, FIELD(s3_region), 0, 0, 0},
    {"s3_uri_style", KEY_URI_STYLE, FIELD(s3_uri_style), 0, 0, 0},
    {"s3_access_key", KEY_STRING, FIELD(s3_access_key), 0, 0, 1},
    {"s3_secret_key", KEY_STRING, FIELD(s3_secret_key), 0, 0, 1},
    {"s3_ca_file", KEY_STRING, FIELD(s3_ca_file), 0, 0, 0},
    {"s3_part_size", KEY_SIZE, FIELD(s3_part_size), 1024 * 1024, 1024 * 1024 * 1024, 0},
    {"s3_parallel", KEY_INT, FIELD(s3_parallel), 1, 64, 0},
    {"s3_stall_timeout", KEY_DURATION, FIELD(s3_stall_timeout_ms), 1000, 3600 * 1000, 0},
    {"log_level", KEY_LOG_LEVEL, FIELD(log_level), 0, 0, 0},
    {"retry_timeout", KEY_DURATION, FIELD(retry_timeout_ms), 0, INT_MAX, 0},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Where a value came from, for messages. */
typedef enum source_kind { SRC_FILE, SRC_ENV, SRC_ARGV } source_kind;

typedef struct source {
    source_kind kind;
    const char *file;    /* SRC_FILE */
    unsigned long line;  /* SRC_FILE */
    const char *envname; /* SRC_ENV */
} source;

/* A --key=value seen on the command line, applied after the file and environment. */
typedef struct pending {
    const key_def *key;
    const char *value;
} pending;

void wk_config_set_default_path(const char *path)
{
    default_path_override = path;
}

static const char *default_path(void)
{
    return default_path_override != NULL ? default_path_override : BUILTIN_DEFAULT_PATH;
}

/* ---- value parsers ----------------------------------------------------------- */

typedef struct unit_def {
    const char *unit;
    int64_t factor;
} unit_def;

/* A whole number followed by one of the units (exact spelling); 0 or -1. */
static int parse_with_units(const char *text, const unit_def *units, size_t unit_count,
                            int64_t *out)
{
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return -1;
    int64_t number = 0;
    const char *p = text;
    while (isdigit((unsigned char)*p)) {
        int digit = *p - '0';
        if (number > (INT64_MAX - digit) / 10)
            return -1;
        number = number * 10 + digit;
        p++;
    }
    for (size_t i = 0; i < unit_count; i++) {
        if (strcmp(p, units[i].unit) != 0)
            continue;
        if (number > INT64_MAX / units[i].factor)
            return -1;
        if (out != NULL)
            *out = number * units[i].factor;
        return 0;
    }
    return -1;
}

int wk_config_parse_duration(const char *text, int64_t *ms)
{
    static const unit_def units[] = {
        {"", 1000},
        {"ms", 1},
        {"s", 1000},
        {"min", 60 * 1000},
        {"h", 60 * 60 * 1000},
        {"d", 24 * 60 * 60 * 1000},
    };
    return parse_with_units(text, units, sizeof(units) / sizeof(units[0]), ms);
}

int wk_config_parse_size(const char *text, int64_t *bytes)
{
    static const unit_def units[] = {
        {"", 1}, {"B", 1}, {"kB", 1024}, {"MB", 1024 * 1024}, {"GB", 1024 * 1024 * 1024},
    };
    return parse_with_units(text, units, sizeof(units) / sizeof(units[0]), bytes);
}

/* Base-10 integer, optional sign, nothing else (no spaces). */
static int parse_int(const char *text, long *out)
{
    const char *digits = text;
    if (*digits == '-' || *digits == '+')
        digits++;
    if (!isdigit((unsigned char)*digits))
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* ---- applying one value ------------------------------------------------------ */

static void describe_source(const source *src, char *buf, size_t size)
{
    switch (src->kind) {
    case SRC_FILE:
        snprintf(buf, size, "file \"%s\" line %lu", src->file, src->line);
        return;
    case SRC_ENV:
        snprintf(buf, size, "environment variable %s", src->envname);
        return;
    case SRC_ARGV:
        snprintf(buf, size, "command line");
        return;
    }
    snprintf(buf, size, "unknown source");
}

static int bad_value(const key_def *key, const char *value, const source *src, wk_error *err)
{
    char where[300];
    describe_source(src, where, sizeof(where));
    if (key->secret)
        wk_error_set(err, WK_ERR_CONFIG, "invalid value for parameter \"%s\" (%s)", key->name,
                     where);
    else
        wk_error_set(err, WK_ERR_CONFIG, "invalid value for parameter \"%s\": \"%s\" (%s)",
                     key->name, value, where);
    switch (key->type) {
    case KEY_COMPRESS:
        wk_error_hint(err, "Available values: lz4, zstd, none.");
        break;
    case KEY_URI_STYLE:
        wk_error_hint(err, "Available values: path, host.");
        break;
    case KEY_LOG_LEVEL:
        wk_error_hint(err, "Available values: error, warning, info, debug.");
        break;
    case KEY_INT:
        if (key->offset == FIELD(compress_level))
            wk_error_hint(err, "%s", wk_codec_levels_text());
        else if (key->max == INT_MAX)
            wk_error_hint(err, "Must be an integer of at least %d.", key->min);
        else
            wk_error_hint(err, "Must be an integer between %d and %d.", key->min, key->max);
        break;
    case KEY_DURATION:
        if (key->min > 0)
            wk_error_hint(err,
                          "Must be a whole number with an optional unit ms, s, min, h or d, "
                          "e.g. \"30s\" (a bare number is seconds), from %dms to %dms.",
                          key->min, key->max);
        else
            wk_error_hint(err,
                          "Must be a whole number with an optional unit ms, s, min, h or d, "
                          "e.g. \"30s\" (a bare number is seconds), at most %dms.",
                          key->max);
        break;
    case KEY_SIZE:
        wk_error_hint(err,
                      "Must be a whole number with an optional unit B, kB, MB or GB, e.g. "
                      "\"16MB\" (a bare number is bytes), from %dkB to %dkB.",
                      key->min / 1024, key->max / 1024);
        break;
    case KEY_STRING:
        break;
    }
    return -1;
}

static int set_string(char **field, const char *value, wk_error *err)
{
    char *copy = NULL;
    if (value[0] != '\0') {
        copy = strdup(value);
        if (copy == NULL)
            return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
    }
    free(*field);
    *field = copy;
    return 0;
}

static int apply_value(wk_config *cfg, const key_def *key, const char *value, const source *src,
                       wk_error *err)
{
    char *base = (char *)cfg + key->offset;
    switch (key->type) {
    case KEY_STRING:
        return set_string((char **)(void *)base, value, err);
    case KEY_COMPRESS: {
        wk_compress c;
        if (wk_compress_parse(value, &c) != 0)
            return bad_value(key, value, src, err);
        cfg->compress = c;
        return 0;
    }
    case KEY_INT: {
        long v;
        if (parse_int(value, &v) != 0 || v < key->min || v > key->max)
            return bad_value(key, value, src, err);
        *(int *)(void *)base = (int)v;
        return 0;
    }
    case KEY_URI_STYLE:
        if (strcasecmp(value, "path") != 0 && strcasecmp(value, "host") != 0)
            return bad_value(key, value, src, err);
        return set_string(&cfg->s3_uri_style, strcasecmp(value, "path") == 0 ? "path" : "host",
                          err);
    case KEY_LOG_LEVEL: {
        wk_log_level level;
        if (wk_log_parse_level(value, &level) != 0)
            return bad_value(key, value, src, err);
        cfg->log_level = level;
        cfg->log_level_set = true;
        return 0;
    }
    case KEY_DURATION: {
        int64_t ms;
        if (wk_config_parse_duration(value, &ms) != 0 || ms < key->min || ms > key->max)
            return bad_value(key, value, src, err);
        *(int *)(void *)base = (int)ms;
        return 0;
    }
    case KEY_SIZE: {
        int64_t bytes;
        if (wk_config_parse_size(value, &bytes) != 0 || bytes < key->min || bytes > key->max)
            return bad_value(key, value, src, err);
        *(int *)(void *)base = (int)bytes;
        return 0;
    }
    }
    return wk_error_set(err, WK_ERR_INTERNAL, "unhandled type of parameter \"%s\"", key->name);
}

static const key_def *find_key(const char *name, size_t len, int dash_is_underscore,
                               int ignore_case)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const char *k = keys[i].name;
        if (strlen(k) != len)
            continue;
        size_t j = 0;
        for (; j < len; j++) {
            char c = name[j];
            if (dash_is_underscore && c == '-')
                c = '_';
            if (ignore_case)
                c = (char)tolower((unsigned char)c);
            if (c != k[j])
                break;
        }
        if (j == len)
            return &keys[i];
    }
    return NULL;
}

/* "Did you mean ...?" with the known key closest to name (case and '-' for '_' aside),
 * when it is a typo away; else the list of keys is in docs/configuration.md. */
static void suggest_key(wk_error *err, const char *name)
{
    char normal[64];
    size_t len = 0;
    for (; name[len] != '\0' && len < sizeof(normal) - 1; len++)
        normal[len] = name[len] == '-' ? '_' : (char)tolower((unsigned char)name[len]);
    const char *best = NULL;
    size_t best_distance = SIZE_MAX;
    for (size_t i = 0; i < NKEYS; i++) {
        size_t d = wk_error_typo_distance(normal, len, keys[i].name);
        if (d < best_distance) {
            best = keys[i].name;
            best_distance = d;
        }
    }
    if (best != NULL)
        wk_error_hint(err, "Did you mean \"%s\"?", best);
    else
        wk_error_hint(err, "The parameters are listed in walkeep.conf(5).");
}

/* ---- the configuration file ---------------------------------------------------- */

static int syntax_error(const source *src, wk_error *err, const char *detail)
{
    wk_error_set(err, WK_ERR_CONFIG, "syntax error in file \"%s\" line %lu", src->file, src->line);
    wk_error_detail(err, "%s", detail);
    wk_error_hint(err, "Lines look like \"key = value\"; quote values with single quotes.");
    return -1;
}

/* Parses one line in place. Sets *key to NULL for a blank or comment line; otherwise
 * key and value point into line. Values never go into syntax messages (secrets). */
static int parse_line(char *line, const source *src, char **key, char **value, wk_error *err)
{
    char *p = line;
    *key = NULL;
    *value = NULL;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0' || *p == '#')
        return 0;
    if (*p == '=')
        return syntax_error(src, err, "The parameter name is missing.");
    char *name = p;
    while (*p != '\0' && *p != '=' && *p != '#' && !isspace((unsigned char)*p))
        p++;
    char *name_end = p;
    while (isspace((unsigned char)*p))
        p++;
    if (*p != '=')
        return syntax_error(src, err, "Expected \"=\" after the parameter name.");
    *name_end = '\0';
    p++;
    while (isspace((unsigned char)*p))
        p++;

    char *val = p;
    if (*p == '\'') {
        char *out = p; /* unescaped in place: the result is never longer */
        p++;
        for (;;) {
            if (*p == '\0')
                return syntax_error(src, err, "A quoted value is not terminated.");
            if (*p == '\'' && p[1] == '\'') {
                *out++ = '\'';
                p += 2;
                continue;
            }
            if (*p == '\'') {
                p++;
                break;
            }
            *out++ = *p++;
        }
        *out = '\0';
        while (isspace((unsigned char)*p))
            p++;
        if (*p != '\0' && *p != '#')
            return syntax_error(src, err, "Unexpected text after a quoted value.");
    } else {
        while (*p != '\0' && *p != '#')
            p++;
        while (p > val && isspace((unsigned char)p[-1]))
            p--;
        *p = '\0';
    }
    *key = name;
    *value = val;
    return 0;
}

/* A configuration file is small text: more is a mistake (--config /dev/zero), not a
 * configuration. */
#define CONFIG_FILE_MAX (1024 * 1024)
#define CONFIG_LINE_MAX 16384

/* Reads path; explicit says whether the user named it (then it must exist). */
static int load_file(wk_config *cfg, const char *path, int explicit, const char *named_by,
                     wk_error *err)
{
    int rc = -1;
    char *line = NULL;
    size_t line_size = 0;
    struct stat sb;
    /* O_NONBLOCK: a FIFO under the name must be refused, not waited on. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (!explicit && (e == ENOENT || e == ENOTDIR))
            return 0;
        wk_error_sys(err, WK_ERR_CONFIG, e, "could not open configuration file \"%s\"", path);
        if (named_by != NULL)
            wk_error_detail(err, "The file was named by %s.", named_by);
        wk_file_explain_denied(err, path, false);
        return -1;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > CONFIG_FILE_MAX) {
        int e = errno;
        if (fstat(fd, &sb) != 0)
            wk_error_sys(err, WK_ERR_CONFIG, e, "could not read configuration file \"%s\"", path);
        else if (!S_ISREG(sb.st_mode))
            wk_error_set(err, WK_ERR_CONFIG, "configuration file \"%s\" is not a regular file",
                         path);
        else
            wk_error_set(err, WK_ERR_CONFIG, "configuration file \"%s\" is larger than 1 MiB",
                         path);
        close(fd);
        return -1;
    }
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        wk_error_sys(err, WK_ERR_CONFIG, errno, "could not read configuration file \"%s\"", path);
        close(fd);
        return -1;
    }
    if (set_string(&cfg->config_file, path, err) != 0)
        goto out;

    source src = {SRC_FILE, path, 0, NULL};
    for (;;) {
        errno = 0;
        ssize_t n = getline(&line, &line_size, f);
        if (n < 0) {
            if (ferror(f)) {
                wk_error_sys(err, WK_ERR_CONFIG, errno != 0 ? errno : EIO,
                             "could not read configuration file \"%s\"", path);
                goto out;
            }
            break;
        }
        src.line++;
        if ((size_t)n > CONFIG_LINE_MAX) {
            wk_error_set(err, WK_ERR_CONFIG,
                         "line %lu of configuration file \"%s\" is longer than %d bytes", src.line,
                         path, CONFIG_LINE_MAX);
            goto out;
        }
        if (memchr(line, '\0', (size_t)n) != NULL) {
            wk_error_set(err, WK_ERR_CONFIG,
                         "line %lu of configuration file \"%s\" contains a NUL byte", src.line,
                         path);
            goto out;
        }
        char *key_text;
        char *value;
        if (parse_line(line, &src, &key_text, &value, err) != 0)
            goto out;
        if (key_text == NULL)
            continue;
        const key_def *key = find_key(key_text, strlen(key_text), 0, 1);
        if (key == NULL) {
            wk_error_set(err, WK_ERR_CONFIG,
                         "unrecognized configuration parameter \"%s\" in file \"%s\" line %lu",
                         key_text, path, src.line);
            suggest_key(err, key_text);
            goto out;
        }
        if (apply_value(cfg, key, value, &src, err) != 0)
            goto out;
    }
    rc = 0;
out:
    free(line);
    fclose(f);
    return rc;
}

/* ---- environment ----------------------------------------------------------------- */

static int load_env(wk_config *cfg, wk_error *err)
{
    for (size_t i = 0; i < NKEYS; i++) {
        char name[64];
        size_t len = strlen(ENV_PREFIX);
        memcpy(name, ENV_PREFIX, len);
        for (const char *k = keys[i].name; *k != '\0' && len < sizeof(name) - 1; k++)
            name[len++] = (char)toupper((unsigned char)*k);
        name[len] = '\0';
        const char *value = getenv(name);
        if (value == NULL)
            continue;
        source src = {SRC_ENV, NULL, 0, name};
        if (apply_value(cfg, &keys[i], value, &src, err) != 0)
            return -1;
    }
    return 0;
}

/* ---- command line ---------------------------------------------------------------- */

/* Sorts argv[1..] into args->items, pend (configuration keys) and the --config file.
 * The first usage error is kept in usage_err (code WK_ERR_NONE if none) and scanning
 * goes on, so that --help still works next to a mistake. */
static void scan_argv(int argc, char **argv, wk_args *args, pending *pend, int *npend,
                      const char **config_path, wk_error *usage_err)
{
    int after_dashdash = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (after_dashdash || strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (!after_dashdash && strcmp(a, "--") == 0) {
                after_dashdash = 1;
                continue;
            }
            args->items[args->count++] = a;
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        if (eq == NULL && strcmp(name, "help") == 0) {
            args->help = true;
            continue;
        }
        if (eq == NULL && strcmp(name, "version") == 0) {
            args->version = true;
            continue;
        }
        int is_config = name_len == 6 && strncmp(name, "config", 6) == 0;
        const key_def *key = is_config ? NULL : find_key(name, name_len, 1, 0);
        if (!is_config && key == NULL) {
            args->items[args->count++] = a;
            continue;
        }
        const char *value;
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            if (usage_err->code == WK_ERR_NONE)
                wk_error_set(usage_err, WK_ERR_USAGE, "option \"%s\" requires a value", a);
            continue;
        }
        if (is_config) {
            if (value[0] == '\0' && usage_err->code == WK_ERR_NONE)
                wk_error_set(usage_err, WK_ERR_USAGE, "option \"--config\" requires a value");
            *config_path = value;
            continue;
        }
        pend[*npend].key = key;
        pend[*npend].value = value;
        (*npend)++;
    }
    args->items[args->count] = NULL;
}

static int set_defaults(wk_config *cfg, wk_error *err)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->compress = WK_COMPRESS_LZ4; /* faster per real segment here: bench/README.md */
    cfg->compress_level = WK_COMPRESS_LEVEL_DEFAULT;
    cfg->log_level = WK_LOG_INFO;
    cfg->retry_timeout_ms = 60 * 1000;
    cfg->s3_part_size = 8 * 1024 * 1024;
    cfg->s3_parallel = 4;
    cfg->s3_stall_timeout_ms = 30 * 1000;
    cfg->check_shrink_percent = 50;
    const char *pgdata = getenv("PGDATA");
    if (pgdata != NULL && set_string(&cfg->pgdata, pgdata, err) != 0)
        return -1;
    /* The standard AWS variables are the lowest-priority source of S3 credentials. */
    const char *access = getenv("AWS_ACCESS_KEY_ID");
    if (access != NULL && set_string(&cfg->s3_access_key, access, err) != 0)
        return -1;
    const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (secret != NULL && set_string(&cfg->s3_secret_key, secret, err) != 0)
        return -1;
    return 0;
}

int wk_config_load(wk_config *cfg, int argc, char **argv, wk_args *args, wk_error *err)
{
    int rc = -1;
    pending *pend = NULL;
    int npend = 0;
    const char *config_path = NULL;
    wk_error usage_err;

    wk_error_clear(&usage_err);
    memset(args, 0, sizeof(*args));
    if (argc < 1 || argv == NULL)
        argc = 0;

    if (set_defaults(cfg, err) != 0)
        goto out;
    args->items = calloc((size_t)argc + 1, sizeof(*args->items));
    pend = calloc((size_t)argc + 1, sizeof(*pend));
    if (args->items == NULL || pend == NULL) {
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        goto out;
    }
    scan_argv(argc, argv, args, pend, &npend, &config_path, &usage_err);

    /* --help and --version work whatever else is wrong: nothing more is read. */
    if (args->help || args->version) {
        rc = 0;
        goto out;
    }
    if (usage_err.code != WK_ERR_NONE) {
        if (err != NULL)
            *err = usage_err;
        goto out;
    }

    if (config_path != NULL) {
        if (load_file(cfg, config_path, 1, "the --config option", err) != 0)
            goto out;
    } else {
        const char *env_path = getenv(ENV_PREFIX "CONFIG");
        if (env_path != NULL && env_path[0] != '\0') {
            if (load_file(cfg, env_path, 1, "the environment variable WALKEEP_CONFIG", err) != 0)
                goto out;
        } else if (load_file(cfg, default_path(), 0, NULL, err) != 0) {
            goto out;
        }
    }

    if (load_env(cfg, err) != 0)
        goto out;

    source src = {SRC_ARGV, NULL, 0, NULL};
    for (int i = 0; i < npend; i++) {
        if (apply_value(cfg, pend[i].key, pend[i].value, &src, err) != 0)
            goto out;
    }
    rc = 0;
out:
    free(pend);
    if (rc != 0) {
        wk_config_free(cfg);
        wk_args_free(args);
    }
    return rc;
}

void wk_config_free(wk_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].type == KEY_STRING || keys[i].type == KEY_URI_STYLE)
            free(*(char **)(void *)((char *)cfg + keys[i].offset));
    }
    free(cfg->config_file);
    memset(cfg, 0, sizeof(*cfg));
}

void wk_args_free(wk_args *args)
{
    if (args == NULL)
        return;
    free(args->items);
    memset(args, 0, sizeof(*args));
}
