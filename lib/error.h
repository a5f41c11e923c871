/* error: the one status record every walkeep function fills when it fails.
 * Core code never prints or exits; it returns -1 with a wk_error that main() reports. */
#ifndef WK_ERROR_H
#define WK_ERROR_H

#include <stdarg.h>
#include <stddef.h>

/* What kind of failure; callers branch on this, never on message text. */
typedef enum wk_errcode {
    WK_ERR_NONE = 0,
    WK_ERR_USAGE,     /* bad arguments */
    WK_ERR_CONFIG,    /* bad configuration key or value */
    WK_ERR_IO,        /* a local or storage operation failed */
    WK_ERR_NOTFOUND,  /* the object or file certainly does not exist */
    WK_ERR_EXISTS,    /* the object exists and must not be replaced */
    WK_ERR_CONFLICT,  /* the object exists with other content */
    WK_ERR_CORRUPT,   /* stored or input data failed a check */
    WK_ERR_KEY,       /* key missing, unreadable, unsafe, or wrong for this data */
    WK_ERR_CLUSTER,   /* data belongs to another cluster or PostgreSQL setup */
    WK_ERR_TRANSIENT, /* may succeed if tried again (network, server busy) */
    WK_ERR_NOMEM,
    WK_ERR_INTERNAL
} wk_errcode;

typedef struct wk_error {
    wk_errcode code;
    int sys_errno;     /* errno behind the failure, 0 if none */
    char message[512]; /* PostgreSQL style: lower case, no full stop */
    char detail[512];  /* optional: "" when absent */
    char hint[256];    /* optional: "" when absent */
} wk_error;

/* Sets code and message (printf format), clears detail and hint. Returns -1 so
 * callers can write `return wk_error_set(err, ...)`. err may be NULL. */
int wk_error_set(wk_error *err, wk_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like wk_error_set, then appends ": <strerror(errnum)>" and records errnum. */
int wk_error_sys(wk_error *err, wk_errcode code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Puts context in front of the message: "could not archive \"x\": <old message>".
 * Keeps code, errno, detail and hint. Returns -1. */
int wk_error_prefix(wk_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Set the optional detail / hint lines (replacing any previous one). */
void wk_error_detail(wk_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wk_error_hint(wk_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Adds a sentence to the detail line: after what is there and a space, or as the whole
 * line when there is none. */
void wk_error_detail_append(wk_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void wk_error_clear(wk_error *err);

/* For "did you mean" hints: the edit distance (insertions, deletions, substitutions)
 * between word's first len bytes and candidate when it is a typo away (at most 2 edits,
 * and fewer than a third of the candidate's length), else SIZE_MAX. At most 63
 * characters of each are compared. */
size_t wk_error_typo_distance(const char *word, size_t len, const char *candidate);

/* Short stable name of a code, for JSON output and tests ("notfound", "corrupt"...). */
const char *wk_errcode_name(wk_errcode code);

#endif
