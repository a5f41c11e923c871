/* wal: PostgreSQL WAL file names, the long page header at the start of each segment,
 * timeline history files, and LSN <-> segment arithmetic for every size initdb allows. */
#ifndef WK_WAL_H
#define WK_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "stream.h"

#define WK_WAL_SEG_MIN (1u << 20) /* 1 MiB */
#define WK_WAL_SEG_MAX (1u << 30) /* 1 GiB */
#define WK_WAL_NAME_LEN 24        /* TTTTTTTTXXXXXXXXYYYYYYYY */
#define WK_WAL_FILE_NAME_MAX 64   /* longest name we accept, plus NUL fits */
#define WK_WAL_LONG_HEADER_SIZE 40

typedef uint64_t wk_lsn;

/* WAL's integers as the server wrote them (its byte order, which is this machine's: WAL
 * is only ever read on the architecture that wrote it), at any alignment. */
static inline uint16_t wk_wal_read16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline uint32_t wk_wal_read32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline uint64_t wk_wal_read64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

typedef enum wk_wal_kind {
    WK_WAL_SEGMENT, /* 000000010000000000000001 */
    WK_WAL_PARTIAL, /* 000000010000000000000001.partial */
    WK_WAL_HISTORY, /* 00000002.history */
    WK_WAL_BACKUP   /* 000000010000000000000001.00000028.backup */
} wk_wal_kind;

typedef struct wk_wal_name {
    wk_wal_kind kind;
    uint32_t tli;           /* timeline (all kinds) */
    uint32_t log;           /* high 32 bits of the segment's place (not for history) */
    uint32_t seg;           /* low part, < 0x100000000 / segment size */
    uint32_t backup_offset; /* WK_WAL_BACKUP only: start offset within the segment */
} wk_wal_name;

/* Parses a file name exactly as PostgreSQL archives it: upper-case hex as PostgreSQL
 * writes it, fixed lengths, nothing before or after (so no path, no "..", no
 * newline can pass). Timeline 0 is refused. The seg part is not checked against a
 * segment size here (see wk_wal_name_check_size). Returns 0, or -1 with WK_ERR_USAGE. */
int wk_wal_parse_name(const char *name, wk_wal_name *out, wk_error *err);

/* Checks seg < 0x100000000 / seg_size. Returns 0 or -1 (WK_ERR_USAGE). */
int wk_wal_name_check_size(const wk_wal_name *name, uint32_t seg_size, wk_error *err);

/* True for a power of two from 1 MiB to 1 GiB. */
bool wk_wal_seg_size_valid(uint32_t seg_size);

/* Segment number (LSN / seg_size) of a parsed segment / partial / backup name. */
uint64_t wk_wal_name_segno(const wk_wal_name *name, uint32_t seg_size);

/* Writes the 24-character segment name for (tli, segno) into buf (>= 25 bytes). */
void wk_wal_segment_name(char *buf, uint32_t tli, uint64_t segno, uint32_t seg_size);

uint64_t wk_wal_lsn_to_segno(wk_lsn lsn, uint32_t seg_size);
wk_lsn wk_wal_segno_to_lsn(uint64_t segno, uint32_t seg_size); /* first byte of segment */

/* "16/B374D848" <-> LSN, printed as PostgreSQL 15 does ("%X/%X"). parse returns 0 or -1;
 * format writes into buf (>= 18 bytes). */
int wk_wal_parse_lsn(const char *text, wk_lsn *out);
void wk_wal_format_lsn(char *buf, size_t size, wk_lsn lsn);

/* The facts of a segment's first (long) page header. */
typedef struct wk_wal_header {
    uint16_t magic;  /* XLOG_PAGE_MAGIC */
    int pg_version;  /* major version of the magic (906 = 9.6, 10..18), 0 if unknown */
    uint32_t tli;    /* xlp_tli of the first page */
    wk_lsn pageaddr; /* xlp_pageaddr: LSN of the segment's first byte */
    uint64_t system_identifier;
    uint32_t seg_size;
    uint32_t block_size;
} wk_wal_header;

/* Parses the first WK_WAL_LONG_HEADER_SIZE bytes of a segment (len may be larger).
 * Fails (WK_ERR_CORRUPT) when len is too short, the magic is not a known
 * PostgreSQL's (9.6 to 18), the long-header flag is missing, the segment size is
 * invalid, or the page address is not a segment start; WK_ERR_CLUSTER when the magic is
 * that of a PostgreSQL newer than WK_PG_MAJOR_MAX. */
int wk_wal_parse_header(const uint8_t *buf, size_t len, wk_wal_header *out, wk_error *err);

/* Major PostgreSQL version for an XLOG_PAGE_MAGIC (906 = 9.6, 10..18), 0 if unknown. */
int wk_wal_magic_version(uint16_t magic);

/* One line of a timeline history file: timeline tli ran until switch_lsn, where
 * the next timeline branched off. */
typedef struct wk_wal_history_entry {
    uint32_t tli;
    wk_lsn switch_lsn;
} wk_wal_history_entry;

/* Parses the text of history file for timeline `tli` (blank lines and '#' comments
 * allowed, as PostgreSQL writes them: "<parent tli>\t<switch lsn>\t<reason>").
 * Entries must have increasing timelines below tli. *entries is malloc'd (caller
 * frees); *count may be 0 for an empty text. WK_ERR_CORRUPT on malformed text. */
int wk_wal_parse_history(const char *text, size_t len, uint32_t tli, wk_wal_history_entry **entries,
                         size_t *count, wk_error *err);

/* Whether a segment's first page header fits its file name: the segment size allows the
 * name, the page address is the named segment's first byte, the timeline is not above the
 * name's (pages copied at a timeline switch carry their parent's). When not, why (size
 * bytes) says so in words. */
bool wk_wal_header_fits(const wk_wal_header *hdr, const wk_wal_name *name, char *why, size_t size);

/* A stage that passes the plaintext of WAL file `name` on to next while proving it is that
 * file: a segment or partial segment must start with a page header that fits the name
 * (wk_wal_header_fits) and is of system_identifier and seg_size, and have seg_size bytes;
 * a history file must parse as the history of the name's timeline; a backup history file
 * must name its segment. object names the object in messages. On a mismatch write or
 * finish fails with WK_ERR_CORRUPT ("object \"<object>\" does not hold WAL file
 * \"<name>\": <why>") and next is never finished, so a sink behind it commits nothing.
 * Takes ownership of next (see stream.h). */
wk_stage *wk_wal_check_stage_new(wk_stage *next, const char *name, const char *object,
                                 uint64_t system_identifier, uint32_t seg_size, wk_error *err);

#endif
