/* log: PostgreSQL-style messages on stderr ("walkeep-archive: error: ..."), each message
 * with its detail and hint lines emitted by one write(2) so server logs never interleave. */
#ifndef WK_LOG_H
#define WK_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum wk_log_level {
    WK_LOG_ERROR = 0,
    WK_LOG_WARNING = 1,
    WK_LOG_INFO = 2,
    WK_LOG_DEBUG = 3
} wk_log_level;

/* Sets the program name printed in front of every line and the threshold. The
 * program name is copied. Until called, the name is "walkeep" and the level info. */
void wk_log_init(const char *progname, wk_log_level level);
void wk_log_set_level(wk_log_level level);
wk_log_level wk_log_get_level(void);

/* Parses "error", "warning", "info", "debug"; returns 0 or -1. */
int wk_log_parse_level(const char *text, wk_log_level *out);

/* "progname: <level>: message\n" if level is at or below the threshold. */
void wk_log(wk_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The core's notices (retries, resumed transfers, cleaned-up uploads, read-ahead): the
 * core never prints; it hands each notice to the function the program set with
 * wk_notice_set (wk_cli_start sets wk_notice_to_log), and drops it when none is set. */
typedef void (*wk_notice_fn)(wk_log_level level, const char *message);
void wk_notice_set(wk_notice_fn fn);
void wk_notice(wk_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A wk_notice_fn that writes the notice as wk_log does (threshold, one write(2)). */
void wk_notice_to_log(wk_log_level level, const char *message);

/* Reports err as "progname: error: message" plus "progname: detail: ..." and
 * "progname: hint: ..." lines when present, all in one write. Always printed. */
void wk_log_error(const wk_error *err);

/* A size for people: "512 B", "3.4 KiB", "86.3 MiB", "1.2 GiB", "2.0 TiB" (steps of 1024,
 * one decimal, the unit always written). Returns buf. */
const char *wk_log_format_size(char *buf, size_t size, uint64_t bytes);

/* Formats into buf exactly what wk_log_error would write (for tests); returns the
 * length written (truncated to size-1). */
size_t wk_log_format_error(char *buf, size_t size, const wk_error *err);

#endif
