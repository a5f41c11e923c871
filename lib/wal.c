/* wal: recognises the WAL files PostgreSQL archives (names, first page header, timeline
 * history) and does the LSN <-> segment arithmetic; pure functions, no I/O. */
#include "wal.h"

#include "pgversion.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XLP_LONG_HEADER 0x0002u
/* Every xlp_info bit PostgreSQL 10 to 18 defines: FIRST_IS_CONTRECORD 0x1, LONG_HEADER
 * 0x2, BKP_REMOVABLE 0x4, FIRST_IS_OVERWRITE_CONTRECORD 0x8 (set on the page after a torn
 * record that crash recovery overwrote, also on a segment's first page; since 14, and
 * 10 to 13 from their late-2021 minor releases). */
#define XLP_ALL_FLAGS 0x000Fu

/* Byte offsets inside XLogLongPageHeaderData (the short header, 4 bytes of padding,
 * then the long header's fields). */
#define OFF_MAGIC 0
#define OFF_INFO 2
#define OFF_TLI 4
#define OFF_PAGEADDR 8
#define OFF_SYSID 24
#define OFF_SEG_SIZE 32
#define OFF_BLCKSZ 36

#define WAL_BLCKSZ_MIN 1024u  /* --with-wal-blocksize=1 */
#define WAL_BLCKSZ_MAX 65536u /* --with-wal-blocksize=64 */

/* How much of a refused name goes into a message; the rest becomes "...". */
#define QUOTE_MAX_INPUT 64

/* XLOG_PAGE_MAGIC of each release; 9.6 is numbered 906, as pg_upgrade numbers it. */
static const struct {
    uint16_t magic;
    int version;
} known_magics[] = {
    {0xD093, 906}, {0xD097, 10}, {0xD098, 11}, {0xD101, 12}, {0xD106, 13},
    {0xD10D, 14},  {0xD110, 15}, {0xD113, 16}, {0xD116, 17}, {0xD118, 18},
};

/* Every release so far numbered its magic 0xD0xx or 0xD1xx and raised it; a larger one
 * in that family is a release newer than the last we know. */
#define MAGIC_FAMILY_MASK 0xFE00u
#define MAGIC_FAMILY 0xD000u
#define NEWEST_KNOWN_MAGIC 0xD118u

static bool is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

bool wk_wal_seg_size_valid(uint32_t seg_size)
{
    return is_pow2(seg_size) && seg_size >= WK_WAL_SEG_MIN && seg_size <= WK_WAL_SEG_MAX;
}

/* Segments per 4 GiB "log id"; 0 for an invalid segment size. */
static uint64_t segs_per_id(uint32_t seg_size)
{
    if (!wk_wal_seg_size_valid(seg_size))
        return 0;
    return UINT64_C(0x100000000) / seg_size;
}

/* Copies name into dst for a one-line message: printable ASCII as is, backslash and
 * double quote escaped, anything else as \xNN; long input is cut and marked "...". */
static void quote_name(char *dst, size_t size, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t used = 0;
    size_t i;

    if (size == 0)
        return;
    for (i = 0; name[i] != '\0' && i < QUOTE_MAX_INPUT; i++) {
        unsigned char c = (unsigned char)name[i];
        char piece[5];
        size_t n;

        if (c == '\\' || c == '"') {
            piece[0] = '\\';
            piece[1] = (char)c;
            n = 2;
        } else if (c >= 0x20 && c < 0x7f) {
            piece[0] = (char)c;
            n = 1;
        } else {
            piece[0] = '\\';
            piece[1] = 'x';
            piece[2] = hex[c >> 4];
            piece[3] = hex[c & 0x0f];
            n = 4;
        }
        if (used + n + 1 > size)
            break;
        memcpy(dst + used, piece, n);
        used += n;
    }
    if (name[i] != '\0' && used + 4 <= size) {
        memcpy(dst + used, "...", 3);
        used += 3;
    }
    dst[used] = '\0';
}

static int name_error(wk_error *err, const char *name, const char *detail)
{
    char quoted[QUOTE_MAX_INPUT * 4 + 4];

    quote_name(quoted, sizeof(quoted), name);
    wk_error_set(err, WK_ERR_USAGE, "invalid WAL file name \"%s\"", quoted);
    wk_error_detail(err, "%s", detail);
    return -1;
}

/* Exactly 8 upper-case hex digits at s (which must hold 8 readable bytes). */
static bool parse_hex8_upper(const char *s, uint32_t *out)
{
    uint32_t v = 0;

    for (int i = 0; i < 8; i++) {
        char c = s[i];
        uint32_t d;

        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return false;
        v = (v << 4) | d;
    }
    *out = v;
    return true;
}

int wk_wal_parse_name(const char *name, wk_wal_name *out, wk_error *err)
{
    static const char expected[] =
        "Expected a WAL segment name of 24 upper-case hexadecimal digits, optionally "
        "followed by \".partial\" or by \".XXXXXXXX.backup\", or a timeline history file "
        "name \"XXXXXXXX.history\".";
    wk_wal_name res;
    size_t len;

    if (name == NULL)
        return wk_error_set(err, WK_ERR_USAGE, "invalid WAL file name: none given");
    memset(&res, 0, sizeof(res));
    len = strnlen(name, WK_WAL_FILE_NAME_MAX);

    if (len == 16 && memcmp(name + 8, ".history", 8) == 0) {
        if (!parse_hex8_upper(name, &res.tli))
            return name_error(err, name, expected);
        res.kind = WK_WAL_HISTORY;
    } else if (len == WK_WAL_NAME_LEN || len == 32 || len == 40) {
        if (!parse_hex8_upper(name, &res.tli) || !parse_hex8_upper(name + 8, &res.log) ||
            !parse_hex8_upper(name + 16, &res.seg))
            return name_error(err, name, expected);
        if (len == WK_WAL_NAME_LEN) {
            res.kind = WK_WAL_SEGMENT;
        } else if (len == 32) {
            if (memcmp(name + 24, ".partial", 8) != 0)
                return name_error(err, name, expected);
            res.kind = WK_WAL_PARTIAL;
        } else {
            if (name[24] != '.' || !parse_hex8_upper(name + 25, &res.backup_offset) ||
                memcmp(name + 33, ".backup", 7) != 0)
                return name_error(err, name, expected);
            res.kind = WK_WAL_BACKUP;
        }
    } else {
        return name_error(err, name, expected);
    }

    if (res.tli == 0)
        return name_error(err, name, "Timeline 0 is not a valid timeline.");
    *out = res;
    return 0;
}

/* Writes a parsed name back in PostgreSQL's spelling (for messages). */
static void format_name(char *buf, size_t size, const wk_wal_name *name)
{
    switch (name->kind) {
    case WK_WAL_HISTORY:
        snprintf(buf, size, "%08X.history", name->tli);
        return;
    case WK_WAL_PARTIAL:
        snprintf(buf, size, "%08X%08X%08X.partial", name->tli, name->log, name->seg);
        return;
    case WK_WAL_BACKUP:
        snprintf(buf, size, "%08X%08X%08X.%08X.backup", name->tli, name->log, name->seg,
                 name->backup_offset);
        return;
    case WK_WAL_SEGMENT:
        break;
    }
    snprintf(buf, size, "%08X%08X%08X", name->tli, name->log, name->seg);
}

int wk_wal_name_check_size(const wk_wal_name *name, uint32_t seg_size, wk_error *err)
{
    char text[WK_WAL_FILE_NAME_MAX];
    uint64_t per_id = segs_per_id(seg_size);

    if (per_id == 0)
        return wk_error_set(err, WK_ERR_USAGE, "invalid WAL segment size %u", seg_size);
    if (name->kind == WK_WAL_HISTORY)
        return 0;
    if (name->seg >= per_id) {
        format_name(text, sizeof(text), name);
        wk_error_set(err, WK_ERR_USAGE, "invalid WAL file name \"%s\" for segment size %u", text,
                     seg_size);
        wk_error_detail(err, "With this segment size the last part of a name is at most %08X.",
                        (uint32_t)(per_id - 1));
        return -1;
    }
    if (name->kind == WK_WAL_BACKUP && name->backup_offset >= seg_size) {
        format_name(text, sizeof(text), name);
        wk_error_set(err, WK_ERR_USAGE, "invalid WAL file name \"%s\" for segment size %u", text,
                     seg_size);
        wk_error_detail(err, "The backup start offset %08X lies beyond the end of the segment.",
                        name->backup_offset);
        return -1;
    }
    return 0;
}

uint64_t wk_wal_name_segno(const wk_wal_name *name, uint32_t seg_size)
{
    uint64_t per_id = segs_per_id(seg_size);

    if (per_id == 0 || name->kind == WK_WAL_HISTORY)
        return 0;
    return (uint64_t)name->log * per_id + name->seg;
}

void wk_wal_segment_name(char *buf, uint32_t tli, uint64_t segno, uint32_t seg_size)
{
    uint64_t per_id = segs_per_id(seg_size);

    if (per_id == 0) {
        buf[0] = '\0';
        return;
    }
    snprintf(buf, WK_WAL_NAME_LEN + 1, "%08X%08X%08X", tli, (uint32_t)(segno / per_id),
             (uint32_t)(segno % per_id));
}

uint64_t wk_wal_lsn_to_segno(wk_lsn lsn, uint32_t seg_size)
{
    if (seg_size == 0)
        return 0;
    return lsn / seg_size;
}

wk_lsn wk_wal_segno_to_lsn(uint64_t segno, uint32_t seg_size)
{
    return segno * seg_size;
}

/* 1 to 8 hex digits (either case) from s up to end; returns the stop position, or NULL
 * when there is no digit or more than 8. */
static const char *parse_hex_run(const char *s, const char *end, uint32_t *out)
{
    uint32_t v = 0;
    int n = 0;

    while (s < end) {
        char c = *s;
        uint32_t d;

        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else
            break;
        n++;
        if (n > 8)
            return NULL;
        v = (v << 4) | d;
        s++;
    }
    if (n == 0)
        return NULL;
    *out = v;
    return s;
}

/* "HI/LO" at s; returns the position after it or NULL. */
static const char *parse_lsn_span(const char *s, const char *end, wk_lsn *out)
{
    uint32_t hi;
    uint32_t lo;

    s = parse_hex_run(s, end, &hi);
    if (s == NULL || s >= end || *s != '/')
        return NULL;
    s = parse_hex_run(s + 1, end, &lo);
    if (s == NULL)
        return NULL;
    *out = ((wk_lsn)hi << 32) | lo;
    return s;
}

int wk_wal_parse_lsn(const char *text, wk_lsn *out)
{
    const char *end;
    const char *stop;
    wk_lsn lsn;

    if (text == NULL)
        return -1;
    end = text + strlen(text);
    stop = parse_lsn_span(text, end, &lsn);
    if (stop == NULL || stop != end)
        return -1;
    *out = lsn;
    return 0;
}

void wk_wal_format_lsn(char *buf, size_t size, wk_lsn lsn)
{
    if (size == 0)
        return;
    snprintf(buf, size, "%X/%X", (uint32_t)(lsn >> 32), (uint32_t)lsn);
}

int wk_wal_magic_version(uint16_t magic)
{
    for (size_t i = 0; i < sizeof(known_magics) / sizeof(known_magics[0]); i++) {
        if (known_magics[i].magic == magic)
            return known_magics[i].version;
    }
    return 0;
}

int wk_wal_parse_header(const uint8_t *buf, size_t len, wk_wal_header *out, wk_error *err)
{
    wk_wal_header h;
    uint16_t info;
    char lsn[32];

    if (buf == NULL || len < WK_WAL_LONG_HEADER_SIZE)
        return wk_error_set(err, WK_ERR_CORRUPT,
                            "invalid WAL segment header: %zu bytes, expected at least %d",
                            buf == NULL ? (size_t)0 : len, WK_WAL_LONG_HEADER_SIZE);

    memset(&h, 0, sizeof(h));
    h.magic = wk_wal_read16(buf + OFF_MAGIC);
    info = wk_wal_read16(buf + OFF_INFO);
    h.tli = wk_wal_read32(buf + OFF_TLI);
    h.pageaddr = wk_wal_read64(buf + OFF_PAGEADDR);
    h.system_identifier = wk_wal_read64(buf + OFF_SYSID);
    h.seg_size = wk_wal_read32(buf + OFF_SEG_SIZE);
    h.block_size = wk_wal_read32(buf + OFF_BLCKSZ);
    h.pg_version = wk_wal_magic_version(h.magic);

    if (h.pg_version == 0 && (h.magic & MAGIC_FAMILY_MASK) == MAGIC_FAMILY &&
        h.magic > NEWEST_KNOWN_MAGIC) {
        wk_error_set(err, WK_ERR_CLUSTER,
                     "WAL page magic %04X is of a PostgreSQL newer than this walkeep "
                     "supports (PostgreSQL %d to %d)",
                     h.magic, WK_PG_MAJOR_MIN, WK_PG_MAJOR_MAX);
        wk_error_hint(err, "install a walkeep release that supports the server's PostgreSQL "
                           "version");
        return -1;
    }
    if (h.pg_version == 0) {
        wk_error_set(err, WK_ERR_CORRUPT, "invalid WAL segment header: unknown magic number %04X",
                     h.magic);
        wk_error_hint(err, "The file is not a WAL segment of PostgreSQL 9.6 to %d.",
                      WK_PG_MAJOR_MAX);
        return -1;
    }
    if ((info & XLP_LONG_HEADER) == 0)
        return wk_error_set(err, WK_ERR_CORRUPT,
                            "invalid WAL segment header: first page has no long header "
                            "(info bits %04X)",
                            info);
    if ((info & ~XLP_ALL_FLAGS) != 0)
        return wk_error_set(err, WK_ERR_CORRUPT,
                            "invalid WAL segment header: unknown info bits %04X", info);
    if (h.tli == 0)
        return wk_error_set(err, WK_ERR_CORRUPT, "invalid WAL segment header: timeline 0");
    if (!wk_wal_seg_size_valid(h.seg_size))
        return wk_error_set(err, WK_ERR_CORRUPT,
                            "invalid WAL segment header: invalid segment size %u", h.seg_size);
    if (!is_pow2(h.block_size) || h.block_size < WAL_BLCKSZ_MIN || h.block_size > WAL_BLCKSZ_MAX)
        return wk_error_set(err, WK_ERR_CORRUPT,
                            "invalid WAL segment header: invalid WAL block size %u", h.block_size);
    if (h.pageaddr % h.seg_size != 0) {
        wk_wal_format_lsn(lsn, sizeof(lsn), h.pageaddr);
        return wk_error_set(err, WK_ERR_CORRUPT,
                            "invalid WAL segment header: page address %s is not the start of "
                            "a segment",
                            lsn);
    }
    *out = h;
    return 0;
}

/* One history line, without its newline, for a message: escaped and cut short. */
static void quote_span(char *dst, size_t size, const char *s, size_t n)
{
    char tmp[QUOTE_MAX_INPUT + 2];
    size_t take = n > QUOTE_MAX_INPUT ? QUOTE_MAX_INPUT + 1 : n;

    /* quote_name stops at NUL and at QUOTE_MAX_INPUT, marking longer input. */
    memcpy(tmp, s, take);
    tmp[take] = '\0';
    quote_name(dst, size, tmp);
}

static int history_error(wk_error *err, uint32_t tli, size_t lineno, const char *line, size_t n,
                         const char *detail)
{
    char quoted[QUOTE_MAX_INPUT * 4 + 4];

    quote_span(quoted, sizeof(quoted), line, n);
    wk_error_set(err, WK_ERR_CORRUPT,
                 "invalid timeline history file for timeline %u: line %zu: \"%s\"", tli, lineno,
                 quoted);
    wk_error_detail(err, "%s", detail);
    return -1;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Decimal timeline at s (no sign, no overflow, not 0); returns the stop or NULL. */
static const char *parse_tli(const char *s, const char *end, uint32_t *out)
{
    uint64_t v = 0;
    const char *start = s;

    while (s < end && *s >= '0' && *s <= '9') {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return NULL;
        s++;
    }
    if (s == start || v == 0)
        return NULL;
    *out = (uint32_t)v;
    return s;
}

int wk_wal_parse_history(const char *text, size_t len, uint32_t tli, wk_wal_history_entry **entries,
                         size_t *count, wk_error *err)
{
    wk_wal_history_entry *list = NULL;
    size_t n = 0;
    size_t cap = 0;
    size_t lineno = 0;
    const char *p = text;
    const char *end = text + len;
    int rc = -1;

    if (tli == 0) {
        wk_error_set(err, WK_ERR_USAGE, "invalid timeline 0 for a timeline history file");
        goto out;
    }
    if (text == NULL && len > 0) {
        wk_error_set(err, WK_ERR_USAGE, "timeline history text missing");
        goto out;
    }
    if (len > 0 && memchr(text, '\0', len) != NULL) {
        wk_error_set(err, WK_ERR_CORRUPT,
                     "invalid timeline history file for timeline %u: contains a NUL byte", tli);
        goto out;
    }

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl != NULL ? nl : end;
        const char *line = p;
        const char *s = p;
        wk_wal_history_entry e;

        lineno++;
        p = nl != NULL ? nl + 1 : end;

        while (s < line_end && is_blank(*s))
            s++;
        if (s == line_end || *s == '#')
            continue;

        s = parse_tli(s, line_end, &e.tli);
        if (s == NULL) {
            history_error(err, tli, lineno, line, (size_t)(line_end - line),
                          "Expected a timeline ID (a positive decimal number) at the start "
                          "of the line.");
            goto out;
        }
        if (s == line_end || !is_blank(*s)) {
            history_error(err, tli, lineno, line, (size_t)(line_end - line),
                          "Expected a tab after the timeline ID.");
            goto out;
        }
        while (s < line_end && is_blank(*s))
            s++;
        s = parse_lsn_span(s, line_end, &e.switch_lsn);
        if (s == NULL || (s < line_end && !is_blank(*s))) {
            history_error(err, tli, lineno, line, (size_t)(line_end - line),
                          "Expected a switch point WAL location such as \"0/3000158\".");
            goto out;
        }
        if (n > 0 && e.tli <= list[n - 1].tli) {
            history_error(err, tli, lineno, line, (size_t)(line_end - line),
                          "Timeline IDs must be in increasing order.");
            goto out;
        }
        if (e.tli >= tli) {
            history_error(err, tli, lineno, line, (size_t)(line_end - line),
                          "Timeline IDs must be less than the timeline of the history file.");
            goto out;
        }
        if (n > 0 && e.switch_lsn < list[n - 1].switch_lsn) {
            history_error(err, tli, lineno, line, (size_t)(line_end - line),
                          "Switch points must not go backwards: a timeline branches off after "
                          "its parent did.");
            goto out;
        }
        if (n == cap) {
            size_t new_cap = cap == 0 ? 8 : cap * 2;
            wk_wal_history_entry *grown = realloc(list, new_cap * sizeof(*grown));

            if (grown == NULL) {
                wk_error_set(err, WK_ERR_NOMEM, "out of memory");
                goto out;
            }
            list = grown;
            cap = new_cap;
        }
        list[n++] = e;
    }

    *entries = list;
    *count = n;
    list = NULL;
    rc = 0;
out:
    free(list);
    return rc;
}

/* ---- proving what a WAL object holds --------------------------------------------- */

bool wk_wal_header_fits(const wk_wal_header *hdr, const wk_wal_name *name, char *why, size_t size)
{
    if (wk_wal_name_check_size(name, hdr->seg_size, NULL) != 0) {
        snprintf(why, size, "its segment size %" PRIu32 " does not allow the name", hdr->seg_size);
        return false;
    }
    wk_lsn expected = wk_wal_segno_to_lsn(wk_wal_name_segno(name, hdr->seg_size), hdr->seg_size);
    if (hdr->pageaddr != expected) {
        char want[32], got[32];
        wk_wal_format_lsn(want, sizeof(want), expected);
        wk_wal_format_lsn(got, sizeof(got), hdr->pageaddr);
        snprintf(why, size, "its first page is at %s, the segment starts at %s", got, want);
        return false;
    }
    if (hdr->tli > name->tli) {
        snprintf(why, size, "it holds timeline %" PRIu32 " data, above its name's", hdr->tli);
        return false;
    }
    return true;
}

/* History and backup history files are small text (archive.c refuses larger ones). */
#define CHECK_TEXT_MAX (1024 * 1024)

typedef struct wal_check_stage {
    wk_stage base;
    wk_wal_name parsed;
    char name[WK_WAL_FILE_NAME_MAX];
    char *object;
    uint64_t system_identifier;
    uint32_t seg_size;
    uint64_t bytes;
    uint8_t head[WK_WAL_LONG_HEADER_SIZE];
    char *text; /* history and backup files: the whole content */
    bool failed;
} wal_check_stage;

static int check_failed(wal_check_stage *c, const char *why, wk_error *err)
{
    c->failed = true;
    wk_error_set(err, WK_ERR_CORRUPT, "object \"%s\" does not hold WAL file \"%s\": %s", c->object,
                 c->name, why);
    wk_error_hint(err, "the object was moved or replaced under another name; run \"walkeep "
                       "verify\" and restore the repository's objects from a copy");
    return -1;
}

/* The segment's first page header, once its bytes are in. */
static int check_head(wal_check_stage *c, wk_error *err)
{
    wk_wal_header hdr;
    wk_error perr = {0};
    char why[256];
    if (wk_wal_parse_header(c->head, sizeof(c->head), &hdr, &perr) != 0)
        return check_failed(c, perr.message, err);
    if (!wk_wal_header_fits(&hdr, &c->parsed, why, sizeof(why)))
        return check_failed(c, why, err);
    if (hdr.system_identifier != c->system_identifier) {
        snprintf(why, sizeof(why),
                 "it is of system identifier %" PRIu64 ", the repository's is %" PRIu64,
                 hdr.system_identifier, c->system_identifier);
        return check_failed(c, why, err);
    }
    if (hdr.seg_size != c->seg_size) {
        snprintf(why, sizeof(why), "its segment size is %" PRIu32 ", the repository's %" PRIu32,
                 hdr.seg_size, c->seg_size);
        return check_failed(c, why, err);
    }
    return 0;
}

static int check_write(wk_stage *stage, const void *buf, size_t len, wk_error *err)
{
    wal_check_stage *c = (wal_check_stage *)stage;
    if (c->failed)
        return wk_error_set(err, WK_ERR_INTERNAL, "write after a failed check");
    bool segment = c->parsed.kind == WK_WAL_SEGMENT || c->parsed.kind == WK_WAL_PARTIAL;
    if (segment && c->bytes < sizeof(c->head)) {
        size_t n = sizeof(c->head) - (size_t)c->bytes;
        if (n > len)
            n = len;
        memcpy(c->head + c->bytes, buf, n);
        if (c->bytes + n == sizeof(c->head) && check_head(c, err) != 0)
            return -1;
    }
    if (segment && c->bytes + len > c->seg_size) {
        char why[128];
        snprintf(why, sizeof(why), "it is longer than a segment of %" PRIu32 " bytes", c->seg_size);
        return check_failed(c, why, err);
    }
    if (!segment) {
        if (c->bytes + len > CHECK_TEXT_MAX)
            return check_failed(c, "it is longer than a history file can be", err);
        char *grown = realloc(c->text, (size_t)c->bytes + len + 1);
        if (grown == NULL)
            return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        c->text = grown;
        memcpy(c->text + c->bytes, buf, len);
        c->text[c->bytes + len] = '\0';
    }
    c->bytes += len;
    return wk_stage_write(c->base.next, buf, len, err);
}

static int check_finish(wk_stage *stage, wk_error *err)
{
    wal_check_stage *c = (wal_check_stage *)stage;
    char why[256];
    if (c->failed)
        return wk_error_set(err, WK_ERR_INTERNAL, "finish after a failed check");
    switch (c->parsed.kind) {
    case WK_WAL_SEGMENT:
    case WK_WAL_PARTIAL:
        if (c->bytes != c->seg_size) {
            snprintf(why, sizeof(why), "it has %" PRIu64 " bytes, a segment %" PRIu32, c->bytes,
                     c->seg_size);
            return check_failed(c, why, err);
        }
        break;
    case WK_WAL_HISTORY: {
        wk_wal_history_entry *entries = NULL;
        size_t count = 0;
        wk_error perr = {0};
        int rc =
            wk_wal_parse_history(c->text, (size_t)c->bytes, c->parsed.tli, &entries, &count, &perr);
        free(entries);
        if (rc != 0)
            return check_failed(c, perr.message, err);
        break;
    }
    case WK_WAL_BACKUP: {
        /* "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)" */
        char want[64];
        snprintf(want, sizeof(want), "(file %.24s)", c->name);
        if (c->text == NULL || strstr(c->text, want) == NULL)
            return check_failed(c, "it does not name its segment", err);
        break;
    }
    }
    return wk_stage_finish(c->base.next, err);
}

static void check_free(wk_stage *stage)
{
    wal_check_stage *c = (wal_check_stage *)stage;
    wk_stage_free(c->base.next);
    free(c->text);
    free(c->object);
    free(c);
}

static const wk_stage_ops check_ops = {check_write, check_finish, check_free};

wk_stage *wk_wal_check_stage_new(wk_stage *next, const char *name, const char *object,
                                 uint64_t system_identifier, uint32_t seg_size, wk_error *err)
{
    if (next == NULL)
        return NULL;
    wal_check_stage *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->object = strdup(object)) == NULL) {
        free(c);
        wk_stage_free(next);
        wk_error_set(err, WK_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->base.ops = &check_ops;
    c->base.next = next;
    c->system_identifier = system_identifier;
    c->seg_size = seg_size;
    snprintf(c->name, sizeof(c->name), "%s", name);
    if (wk_wal_parse_name(name, &c->parsed, err) != 0) {
        check_free(&c->base);
        return NULL;
    }
    return &c->base;
}
