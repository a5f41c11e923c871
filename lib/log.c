/* log: PostgreSQL-style lines on stderr ("progname: error: ..."), one buffer and one
 * write(2) per message so a server log never shows half a message or split lines. */
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Writes of at most PIPE_BUF bytes to a pipe are atomic, and stderr of an archive or
 * restore command is often the logging collector's pipe: a message never exceeds it. */
#if defined(PIPE_BUF) && PIPE_BUF < 4096
#define LOG_BUF_SIZE PIPE_BUF
#else
#define LOG_BUF_SIZE 4096
#endif

static char log_progname[64] = "walkeep";
static wk_log_level log_threshold = WK_LOG_INFO;

/* A line-oriented output buffer: cap is the usable size (without the final NUL). */
typedef struct line_buf {
    char *buf;
    size_t cap;
    size_t len;
    bool full; /* a line was truncated or dropped: nothing more is added */
} line_buf;

static const char *level_name(wk_log_level level)
{
    switch (level) {
    case WK_LOG_ERROR:
        return "error";
    case WK_LOG_WARNING:
        return "warning";
    case WK_LOG_INFO:
        return "info";
    case WK_LOG_DEBUG:
        return "debug";
    }
    return "log";
}

/* Length of a string in a fixed-size field that might lack its terminator. */
static size_t field_len(const char *field, size_t size)
{
    const char *nul = memchr(field, '\0', size);
    return nul != NULL ? (size_t)(nul - field) : size;
}

/* Copies at most limit bytes of text into lb, control characters turned into spaces.
 * Returns false if text did not fit; a cut never splits a UTF-8 sequence. */
static bool put_text(line_buf *lb, const char *text, size_t text_len, size_t limit)
{
    size_t n = text_len < limit ? text_len : limit;
    if (n < text_len) {
        /* Back off to the start of the multibyte character being cut. */
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        lb->buf[lb->len++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    return n == text_len;
}

/* Appends "progname: tag: text\n". Text that does not fit is cut short, the line still
 * ending with a newline; a line whose prefix does not fit is dropped. Either way no
 * later line is added, so the output is always newline-terminated lines. */
static void put_line(line_buf *lb, const char *tag, const char *text, size_t text_len)
{
    if (lb->full)
        return;
    size_t prefix_len = strlen(log_progname) + strlen(tag) + 4; /* ": " twice */
    if (lb->cap - lb->len < prefix_len + 1) {
        lb->full = true;
        return;
    }
    size_t room = lb->cap - lb->len - prefix_len - 1; /* one byte kept for the newline */
    put_text(lb, log_progname, strlen(log_progname), SIZE_MAX);
    put_text(lb, ": ", 2, SIZE_MAX);
    put_text(lb, tag, strlen(tag), SIZE_MAX);
    put_text(lb, ": ", 2, SIZE_MAX);
    if (!put_text(lb, text, text_len, room))
        lb->full = true;
    lb->buf[lb->len++] = '\n';
}

/* Writes all of buf to stderr in one write(2), repeating only for the rest of a
 * partial write or after EINTR. Keeps errno as the caller left it. */
static void write_stderr(const char *buf, size_t len)
{
    int saved_errno = errno;
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        buf += n;
        len -= (size_t)n;
    }
    errno = saved_errno;
}

void wk_log_init(const char *progname, wk_log_level level)
{
    if (progname == NULL || progname[0] == '\0')
        progname = "walkeep";
    snprintf(log_progname, sizeof(log_progname), "%s", progname);
    log_threshold = level;
}

void wk_log_set_level(wk_log_level level)
{
    log_threshold = level;
}

wk_log_level wk_log_get_level(void)
{
    return log_threshold;
}

int wk_log_parse_level(const char *text, wk_log_level *out)
{
    static const wk_log_level levels[] = {WK_LOG_ERROR, WK_LOG_WARNING, WK_LOG_INFO, WK_LOG_DEBUG};
    if (text == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (strcasecmp(text, level_name(levels[i])) == 0) {
            if (out != NULL)
                *out = levels[i];
            return 0;
        }
    }
    return -1;
}

void wk_log(wk_log_level level, const char *fmt, ...)
{
    if (level > log_threshold)
        return;
    int saved_errno = errno;
    char message[LOG_BUF_SIZE];
    char out[LOG_BUF_SIZE];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    size_t message_len = 0;
    if (n > 0)
        message_len = (size_t)n < sizeof(message) ? (size_t)n : sizeof(message) - 1;
    line_buf lb = {out, sizeof(out), 0, false};
    put_line(&lb, level_name(level), message, message_len);
    errno = saved_errno;
    write_stderr(out, lb.len);
}

static wk_notice_fn notice_fn; /* set once by the program's main(), before any thread */

void wk_notice_set(wk_notice_fn fn)
{
    notice_fn = fn;
}

void wk_notice(wk_log_level level, const char *fmt, ...)
{
    wk_notice_fn fn = notice_fn;
    if (fn == NULL)
        return;
    int saved_errno = errno;
    char message[LOG_BUF_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    fn(level, message);
    errno = saved_errno;
}

void wk_notice_to_log(wk_log_level level, const char *message)
{
    wk_log(level, "%s", message);
}

size_t wk_log_format_error(char *buf, size_t size, const wk_error *err)
{
    if (buf == NULL || size == 0)
        return 0;
    line_buf lb = {buf, size - 1, 0, false};
    if (err == NULL || err->message[0] == '\0') {
        static const char unknown[] = "unknown error";
        put_line(&lb, "error", unknown, sizeof(unknown) - 1);
    } else {
        put_line(&lb, "error", err->message, field_len(err->message, sizeof(err->message)));
    }
    if (err != NULL && err->detail[0] != '\0')
        put_line(&lb, "detail", err->detail, field_len(err->detail, sizeof(err->detail)));
    if (err != NULL && err->hint[0] != '\0')
        put_line(&lb, "hint", err->hint, field_len(err->hint, sizeof(err->hint)));
    buf[lb.len] = '\0';
    return lb.len;
}

void wk_log_error(const wk_error *err)
{
    char out[LOG_BUF_SIZE];
    size_t len = wk_log_format_error(out, sizeof(out), err);
    write_stderr(out, len);
}

const char *wk_log_format_size(char *buf, size_t size, uint64_t bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double value = (double)bytes;
    size_t unit = 0;
    /* Up a unit before the one decimal would round to "1024.0". */
    while (value >= (unit == 0 ? 1024.0 : 1023.95) && unit + 1 < sizeof(units) / sizeof(units[0])) {
        value /= 1024.0;
        unit++;
    }
    if (unit == 0)
        snprintf(buf, size, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, size, "%.1f %s", value, units[unit]);
    return buf;
}
