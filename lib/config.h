/* config: walkeep's settings from the file, WALKEEP_<KEY> environment variables and
 * --key=value arguments (command line wins, then environment, then file). */
#ifndef WK_CONFIG_H
#define WK_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "codec.h"
#include "error.h"
#include "log.h"

typedef struct wk_config {
    char *repo;               /* required by most programs; NULL when unset */
    wk_compress compress;     /* default WK_COMPRESS_ZSTD */
    int compress_level;       /* WK_COMPRESS_LEVEL_DEFAULT when unset */
    char *encrypt_key_file;   /* NULL: no encryption */
    char *pgdata;             /* default $PGDATA, NULL if neither */
    char *pg_conninfo;        /* NULL: libpq defaults */
    char *pg_bindir;          /* NULL: from PATH */
    int retention_full;       /* 0: keep all */
    int retention_days;       /* 0: keep all */
    int retention_dumps;      /* dumps to keep by count; 0: keep all */
    int retention_dumps_days; /* dumps to keep by age in days; 0: keep all */
    char *dump_databases;     /* walkeep-dump create --all: names separated by commas or
                               * spaces; NULL: every database that takes connections */
    int check_shrink_percent; /* check warns when the newest backup or dump is under this
                               * percentage of the one before; 50; 0: never */
    char *s3_endpoint;
    char *s3_region;
    char *s3_uri_style;  /* "path" or "host" */
    char *s3_access_key; /* secret: never logged */
    char *s3_secret_key; /* secret: never logged */
    char *s3_ca_file;
    int s3_part_size;        /* bytes; objects larger than this are uploaded in parts; 8 MiB */
    int s3_parallel;         /* parts uploaded at once; 4 */
    int s3_stall_timeout_ms; /* an S3 transfer moving less than 1 byte/s this long fails
                              * (and is retried); 30 s */
    wk_log_level log_level;
    bool log_level_set;   /* true when log_level came from file, env or argv */
    int retry_timeout_ms; /* how long transient repository errors are retried; 60 s */
    char *config_file;    /* the file actually read, NULL if none */
} wk_config;

/* What the command line held besides configuration keys. */
typedef struct wk_args {
    bool help;
    bool version;
    int count;    /* positional arguments and program-specific options, in order */
    char **items; /* pointers into argv; items[count] == NULL */
} wk_args;

/* Fills cfg from defaults, then the configuration file (--config FILE / --config=FILE,
 * else $WALKEEP_CONFIG, else /etc/walkeep/walkeep.conf if it exists), then WALKEEP_<KEY>
 * variables, then --key=value / --key value arguments for every configuration key
 * (with '-' or '_' between words) anywhere in argv[1..]. --help, --version and "--"
 * are recognised; everything else is left in args, in order, for the program.
 * An explicitly named file that is missing, an unknown key in the file, or a bad
 * value anywhere is WK_ERR_CONFIG naming the key and where it came from ("file F
 * line N", "environment variable WALKEEP_X", "command line").
 * On error cfg holds nothing that needs freeing. */
int wk_config_load(wk_config *cfg, int argc, char **argv, wk_args *args, wk_error *err);

/* For tests: replaces the default file path /etc/walkeep/walkeep.conf. path is not
 * copied and must outlive its use; NULL restores the built-in default. */
void wk_config_set_default_path(const char *path);

/* Frees the strings and args->items; accepts a zeroed cfg / args and NULL. */
void wk_config_free(wk_config *cfg);
void wk_args_free(wk_args *args);

/* Parses a duration with PostgreSQL's units ("250ms", "30s", "5min", "2h", "7d"; a bare
 * number is seconds) into milliseconds. Returns 0 or -1. */
int wk_config_parse_duration(const char *text, int64_t *ms);
/* Parses a size with PostgreSQL's units ("8MB", "512kB", "1GB"; a bare number or "B" is
 * bytes) into bytes. Returns 0 or -1. */
int wk_config_parse_size(const char *text, int64_t *bytes);

#endif
