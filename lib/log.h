/* log: PostgreSQL-style messages on stderr ("walkeep-archive: error: ..."), each message
 * with its detail and hint lines emitted by one write(2) so server logs never interleave. */
#ifndef WK_LOG_H
#define WK_LOG_H

#include <stddef.h>

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

/* Reports err as "progname: error: message" plus "progname: detail: ..." and
 * "progname: hint: ..." lines when present, all in one write. Always printed. */
void wk_log_error(const wk_error *err);

/* Formats into buf exactly what wk_log_error would write (for tests); returns the
 * length written (truncated to size-1). */
size_t wk_log_format_error(char *buf, size_t size, const wk_error *err);

#endif
