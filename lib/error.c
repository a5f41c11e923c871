/* error: the one status record every walkeep function fills when it fails.
 * Formatting helpers only; nothing here prints. */
#include "error.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void format_into(char *buf, size_t size, const char *fmt, va_list ap)
{
    vsnprintf(buf, size, fmt, ap);
}

int wk_error_set(wk_error *err, wk_errcode code, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    format_into(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    err->code = code;
    err->sys_errno = 0;
    err->detail[0] = '\0';
    err->hint[0] = '\0';
    return -1;
}

int wk_error_sys(wk_error *err, wk_errcode code, int errnum, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    format_into(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    size_t used = strlen(err->message);
    snprintf(err->message + used, sizeof(err->message) - used, ": %s", strerror(errnum));
    err->code = code;
    err->sys_errno = errnum;
    err->detail[0] = '\0';
    err->hint[0] = '\0';
    return -1;
}

int wk_error_prefix(wk_error *err, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    char old[sizeof(err->message)];
    memcpy(old, err->message, sizeof(old));
    va_list ap;
    va_start(ap, fmt);
    format_into(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    size_t used = strlen(err->message);
    if (used + 2 < sizeof(err->message)) {
        memcpy(err->message + used, ": ", 2);
        used += 2;
        size_t room = sizeof(err->message) - used - 1;
        size_t n = strnlen(old, room);
        memcpy(err->message + used, old, n);
        err->message[used + n] = '\0';
    }
    return -1;
}

void wk_error_detail(wk_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL)
        format_into(err->detail, sizeof(err->detail), fmt, ap);
    va_end(ap);
}

void wk_error_detail_append(wk_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL) {
        size_t used = strlen(err->detail);
        if (used > 0 && used + 1 < sizeof(err->detail))
            err->detail[used++] = ' ';
        format_into(err->detail + used, sizeof(err->detail) - used, fmt, ap);
    }
    va_end(ap);
}

void wk_error_hint(wk_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL)
        format_into(err->hint, sizeof(err->hint), fmt, ap);
    va_end(ap);
}

void wk_error_clear(wk_error *err)
{
    if (err == NULL)
        return;
    memset(err, 0, sizeof(*err));
}

const char *wk_errcode_name(wk_errcode code)
{
    switch (code) {
    case WK_ERR_NONE:
        return "none";
    case WK_ERR_USAGE:
        return "usage";
    case WK_ERR_CONFIG:
        return "config";
    case WK_ERR_IO:
        return "io";
    case WK_ERR_NOTFOUND:
        return "notfound";
    case WK_ERR_EXISTS:
        return "exists";
    case WK_ERR_CONFLICT:
        return "conflict";
    case WK_ERR_CORRUPT:
        return "corrupt";
    case WK_ERR_KEY:
        return "key";
    case WK_ERR_CLUSTER:
        return "cluster";
    case WK_ERR_TRANSIENT:
        return "transient";
    case WK_ERR_NOMEM:
        return "nomem";
    case WK_ERR_INTERNAL:
        return "internal";
    }
    return "unknown";
}

size_t wk_error_typo_distance(const char *word, size_t len, const char *candidate)
{
    size_t row[64], lc = strlen(candidate);
    if (len > 63 || lc > 63)
        return SIZE_MAX;
    for (size_t j = 0; j <= lc; j++)
        row[j] = j;
    for (size_t i = 1; i <= len; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lc; j++) {
            size_t up = row[j];
            size_t best = diag + (word[i - 1] == candidate[j - 1] ? 0 : 1);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lc] <= 2 && row[lc] * 3 < lc ? row[lc] : SIZE_MAX;
}
