/* test_wal: WAL file names, segment arithmetic for every segment size, the long page
 * header (synthetic and real PostgreSQL 15 bytes), LSN text and timeline history files. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "wal.h"

#define MIB (UINT32_C(1) << 20)

/* ---- helpers ---------------------------------------------------------------------- */

/* A long page header as PostgreSQL lays it out (x86-64, little-endian). */
static void make_header(uint8_t *buf, uint16_t magic, uint16_t info, uint32_t tli,
                        uint64_t pageaddr, uint64_t sysid, uint32_t seg_size, uint32_t blcksz)
{
    ts_wal_header(buf, magic, info, tli, pageaddr, sysid, seg_size, blcksz);
    ts_put32(buf, 16, 0x1234); /* xlp_rem_len: not checked */
}

static void make_default_header(uint8_t *buf)
{
    make_header(buf, 0xD110, 0x0002, 1, UINT64_C(0x16) << 32 | UINT64_C(0xB3000000),
                UINT64_C(7712025303015056254), 16 * MIB, 8192);
}

static void assert_one_line(const wk_error *err)
{
    ck_assert_ptr_null(strchr(err->message, '\n'));
    ck_assert_ptr_null(strchr(err->message, '\r'));
    ck_assert_ptr_null(strchr(err->detail, '\n'));
}

/* ---- segment sizes and arithmetic ------------------------------------------------- */

START_TEST(test_seg_size_valid)
{
    for (uint32_t s = MIB; s <= (UINT32_C(1) << 30); s <<= 1)
        ck_assert_msg(wk_wal_seg_size_valid(s), "size %u should be valid", s);
    const uint32_t bad[] = {0,
                            1,
                            512 * 1024,
                            MIB - 1,
                            MIB + 1,
                            3 * MIB,
                            24 * MIB,
                            (UINT32_C(1) << 30) + 1,
                            UINT32_C(1) << 31,
                            UINT32_MAX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!wk_wal_seg_size_valid(bad[i]), "size %u should be invalid", bad[i]);
}
END_TEST

START_TEST(test_name_segno_roundtrip_every_size)
{
    for (uint32_t size = MIB; size <= (UINT32_C(1) << 30); size <<= 1) {
        const uint64_t per = UINT64_C(0x100000000) / size;
        const uint64_t max_segno = UINT64_MAX / size; /* last segment an LSN can reach */
        const uint64_t segnos[] = {0,       1,           per - 1,        per,           per + 1,
                                   2 * per, 2 * per - 1, 0x123456789ULL, max_segno - 1, max_segno};
        for (size_t i = 0; i < sizeof(segnos) / sizeof(segnos[0]); i++) {
            const uint64_t segno = segnos[i];
            char name[WK_WAL_NAME_LEN + 1];
            wk_wal_name parsed;
            wk_error err = {0};

            memset(name, 'Z', sizeof(name));
            wk_wal_segment_name(name, 0x2A, segno, size);
            ck_assert_uint_eq(strlen(name), WK_WAL_NAME_LEN);
            ck_assert_int_eq(wk_wal_parse_name(name, &parsed, &err), 0);
            ck_assert_int_eq(parsed.kind, WK_WAL_SEGMENT);
            ck_assert_uint_eq(parsed.tli, 0x2A);
            ck_assert_uint_eq(parsed.log, segno / per);
            ck_assert_uint_eq(parsed.seg, segno % per);
            ck_assert_int_eq(wk_wal_name_check_size(&parsed, size, &err), 0);
            ck_assert_uint_eq(wk_wal_name_segno(&parsed, size), segno);

            /* LSN <-> segno: first, middle and last byte of the segment. */
            wk_lsn start = wk_wal_segno_to_lsn(segno, size);
            ck_assert_uint_eq(start, segno * size);
            ck_assert_uint_eq(wk_wal_lsn_to_segno(start, size), segno);
            ck_assert_uint_eq(wk_wal_lsn_to_segno(start + size / 2, size), segno);
            ck_assert_uint_eq(wk_wal_lsn_to_segno(start + size - 1, size), segno);
            if (segno < max_segno)
                ck_assert_uint_eq(wk_wal_lsn_to_segno(start + size, size), segno + 1);
        }
    }
}
END_TEST

START_TEST(test_known_names)
{
    char name[WK_WAL_NAME_LEN + 1];

    wk_wal_segment_name(name, 1, 1, 16 * MIB);
    ck_assert_str_eq(name, "000000010000000000000001");
    wk_wal_segment_name(name, 1, 0xFF, 16 * MIB);
    ck_assert_str_eq(name, "0000000100000000000000FF");
    wk_wal_segment_name(name, 1, 0x100, 16 * MIB);
    ck_assert_str_eq(name, "000000010000000100000000");
    wk_wal_segment_name(name, 0xA, 0x16B3, 16 * MIB);
    ck_assert_str_eq(name, "0000000A00000016000000B3");
    wk_wal_segment_name(name, 1, 0xFFF, MIB);
    ck_assert_str_eq(name, "000000010000000000000FFF");
    wk_wal_segment_name(name, 1, 0x1000, MIB);
    ck_assert_str_eq(name, "000000010000000100000000");
    wk_wal_segment_name(name, 1, 3, UINT32_C(1) << 30);
    ck_assert_str_eq(name, "000000010000000000000003");
    wk_wal_segment_name(name, 1, 4, UINT32_C(1) << 30);
    ck_assert_str_eq(name, "000000010000000100000000");
    wk_wal_segment_name(name, UINT32_MAX, 7, 64 * MIB);
    ck_assert_str_eq(name, "FFFFFFFF0000000000000007");

    /* The LSN of "16/B374D848" lies in segment 0000000100000016000000B3 at 16 MiB. */
    wk_lsn lsn;
    ck_assert_int_eq(wk_wal_parse_lsn("16/B374D848", &lsn), 0);
    wk_wal_segment_name(name, 1, wk_wal_lsn_to_segno(lsn, 16 * MIB), 16 * MIB);
    ck_assert_str_eq(name, "0000000100000016000000B3");
}
END_TEST

START_TEST(test_last_segment_of_log_id)
{
    for (uint32_t size = MIB; size <= (UINT32_C(1) << 30); size <<= 1) {
        const uint32_t per = (uint32_t)(UINT64_C(0x100000000) / size);
        wk_wal_name last = {.kind = WK_WAL_SEGMENT, .tli = 1, .log = 5, .seg = per - 1};
        wk_wal_name next = {.kind = WK_WAL_SEGMENT, .tli = 1, .log = 6, .seg = 0};
        wk_wal_name over = {.kind = WK_WAL_SEGMENT, .tli = 1, .log = 5, .seg = per};
        wk_wal_name far = {.kind = WK_WAL_PARTIAL, .tli = 1, .log = 0, .seg = UINT32_MAX};
        wk_error err = {0};

        ck_assert_int_eq(wk_wal_name_check_size(&last, size, &err), 0);
        ck_assert_int_eq(wk_wal_name_check_size(&next, size, &err), 0);
        ck_assert_uint_eq(wk_wal_name_segno(&last, size) + 1, wk_wal_name_segno(&next, size));

        ck_assert_int_eq(wk_wal_name_check_size(&over, size, &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_USAGE);
        ck_assert_ptr_nonnull(strstr(err.message, "invalid WAL file name \""));
        assert_one_line(&err);

        wk_error_clear(&err);
        ck_assert_int_eq(wk_wal_name_check_size(&far, size, &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_USAGE);
        ck_assert_ptr_nonnull(strstr(err.message, ".partial\""));
    }

    /* Parsed from text: 16 MiB has segments 00..FF per log id. */
    wk_wal_name n;
    wk_error err = {0};
    ck_assert_int_eq(wk_wal_parse_name("0000000100000000000000FF", &n, &err), 0);
    ck_assert_int_eq(wk_wal_name_check_size(&n, 16 * MIB, &err), 0);
    ck_assert_int_eq(wk_wal_parse_name("000000010000000000000100", &n, &err), 0);
    ck_assert_int_eq(wk_wal_name_check_size(&n, 16 * MIB, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    ck_assert_str_eq(
        err.message,
        "invalid WAL file name \"000000010000000000000100\" for segment size 16777216");
    /* ...but 1 MiB segments allow 000..FFF. */
    ck_assert_int_eq(wk_wal_name_check_size(&n, MIB, &err), 0);
}
END_TEST

START_TEST(test_check_size_rejects_bad_size)
{
    wk_wal_name n = {.kind = WK_WAL_SEGMENT, .tli = 1, .log = 0, .seg = 0};
    const uint32_t bad[] = {0, 3 * MIB, 512 * 1024, UINT32_C(1) << 31};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wk_error err = {0};
        ck_assert_int_eq(wk_wal_name_check_size(&n, bad[i], &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_USAGE);
    }
    /* Arithmetic with an invalid size does not trap. */
    char name[WK_WAL_NAME_LEN + 1] = "x";
    wk_wal_segment_name(name, 1, 1, 0);
    ck_assert_str_eq(name, "");
    ck_assert_uint_eq(wk_wal_name_segno(&n, 0), 0);
    ck_assert_uint_eq(wk_wal_lsn_to_segno(12345, 0), 0);
}
END_TEST

START_TEST(test_check_size_backup_and_history)
{
    wk_wal_name n;
    wk_error err = {0};

    ck_assert_int_eq(wk_wal_parse_name("000000010000000000000002.00FFFFFF.backup", &n, &err), 0);
    ck_assert_int_eq(wk_wal_name_check_size(&n, 16 * MIB, &err), 0);
    ck_assert_int_eq(wk_wal_name_check_size(&n, MIB, &err), -1); /* offset past 1 MiB */
    ck_assert_int_eq(err.code, WK_ERR_USAGE);

    ck_assert_int_eq(wk_wal_parse_name("FFFFFFFF.history", &n, &err), 0);
    ck_assert_int_eq(wk_wal_name_check_size(&n, MIB, &err), 0);
    ck_assert_uint_eq(wk_wal_name_segno(&n, MIB), 0);
}
END_TEST

/* ---- names ------------------------------------------------------------------------- */

START_TEST(test_valid_names)
{
    wk_wal_name n;
    wk_error err = {0};

    ck_assert_int_eq(wk_wal_parse_name("000000010000000000000001", &n, &err), 0);
    ck_assert_int_eq(n.kind, WK_WAL_SEGMENT);
    ck_assert_uint_eq(n.tli, 1);
    ck_assert_uint_eq(n.log, 0);
    ck_assert_uint_eq(n.seg, 1);
    ck_assert_uint_eq(n.backup_offset, 0);

    ck_assert_int_eq(wk_wal_parse_name("0000000A0000001600000B3F", &n, &err), 0);
    ck_assert_int_eq(n.kind, WK_WAL_SEGMENT);
    ck_assert_uint_eq(n.tli, 0xA);
    ck_assert_uint_eq(n.log, 0x16);
    ck_assert_uint_eq(n.seg, 0xB3F);

    ck_assert_int_eq(wk_wal_parse_name("FFFFFFFFFFFFFFFFFFFFFFFF", &n, &err), 0);
    ck_assert_uint_eq(n.tli, UINT32_MAX);
    ck_assert_uint_eq(n.log, UINT32_MAX);
    ck_assert_uint_eq(n.seg, UINT32_MAX);

    ck_assert_int_eq(wk_wal_parse_name("00000002000000000000000A.partial", &n, &err), 0);
    ck_assert_int_eq(n.kind, WK_WAL_PARTIAL);
    ck_assert_uint_eq(n.tli, 2);
    ck_assert_uint_eq(n.seg, 0xA);

    ck_assert_int_eq(wk_wal_parse_name("000000010000000000000002.00000028.backup", &n, &err), 0);
    ck_assert_int_eq(n.kind, WK_WAL_BACKUP);
    ck_assert_uint_eq(n.tli, 1);
    ck_assert_uint_eq(n.seg, 2);
    ck_assert_uint_eq(n.backup_offset, 0x28);

    ck_assert_int_eq(wk_wal_parse_name("0000000C.history", &n, &err), 0);
    ck_assert_int_eq(n.kind, WK_WAL_HISTORY);
    ck_assert_uint_eq(n.tli, 12);
    ck_assert_uint_eq(n.log, 0);
    ck_assert_uint_eq(n.seg, 0);
}
END_TEST

static const char *const invalid_names[] = {
    "",
    "../000000010000000000000001",
    "./000000010000000000000001",
    "/etc/passwd",
    "pg_wal/000000010000000000000001",
    "000000010000000000000001/",
    "..",
    "000000010000000000000001/..",
    "00000001000000000000000a", /* lower case */
    "0000000a0000000000000001", /* lower-case timeline */
    "0000000a.history",
    "000000010000000000000001.PARTIAL",
    "00000001000000000000001",   /* 23 */
    "0000000100000000000000011", /* 25 */
    "000000010000000000000001\n",
    "000000010000000000000001 ",
    " 000000010000000000000001",
    "000000010000000000000001.partia",
    "000000010000000000000001.partiall",
    "000000010000000000000001.parital",
    "000000010000000000000001_partial",
    "000000010000000000000001.partial\n",
    "000000000000000000000001", /* tli 0 */
    "000000000000000000000001.partial",
    "000000000000000000000001.00000028.backup",
    "00000000.history",
    "0000001.history",
    "000000001.history",
    "00000002.History",
    "00000002.history\n",
    "00000002.history.partial",
    "000000010000000000000001.0000028.backup",
    "000000010000000000000001.000000028.backup",
    "000000010000000000000001.0000002g.backup",
    "000000010000000000000001.00000028.backup\n",
    "000000010000000000000001.00000028.bakup",
    "000000010000000000000001.00000028_backup",
    "000000010000000000000001X00000028.backup",
    "000000010000000000000001.00000028",
    "0x0000010000000000000001",
    "+00000010000000000000001",
    "-00000010000000000000001",
    "00000001000000000000000G",
    "000000010000000000000001.gz",
    "000000010000000000000001.backup",
    "archive_status",
    "00000001.partial",
};

START_TEST(test_invalid_names)
{
    for (size_t i = 0; i < sizeof(invalid_names) / sizeof(invalid_names[0]); i++) {
        const char *name = invalid_names[i];
        wk_wal_name n;
        wk_wal_name before;
        wk_error err = {0};

        memset(&n, 0xA5, sizeof(n));
        before = n;
        ck_assert_msg(wk_wal_parse_name(name, &n, &err) == -1, "accepted \"%s\"", name);
        ck_assert_int_eq(err.code, WK_ERR_USAGE);
        ck_assert_msg(strncmp(err.message, "invalid WAL file name \"", 23) == 0, "message: %s",
                      err.message);
        ck_assert_msg(memcmp(&n, &before, sizeof(n)) == 0, "out written for \"%s\"", name);
        assert_one_line(&err);
    }
}
END_TEST

START_TEST(test_invalid_name_messages)
{
    wk_wal_name n;
    wk_error err = {0};

    ck_assert_int_eq(wk_wal_parse_name("../000000010000000000000001", &n, &err), -1);
    ck_assert_str_eq(err.message, "invalid WAL file name \"../000000010000000000000001\"");

    ck_assert_int_eq(wk_wal_parse_name("000000010000000000000001\n", &n, &err), -1);
    ck_assert_str_eq(err.message, "invalid WAL file name \"000000010000000000000001\\x0A\"");

    ck_assert_int_eq(wk_wal_parse_name("a\"b\\c\x1b[31m\xff", &n, &err), -1);
    ck_assert_str_eq(err.message, "invalid WAL file name \"a\\\"b\\\\c\\x1B[31m\\xFF\"");

    ck_assert_int_eq(wk_wal_parse_name("00000000.history", &n, &err), -1);
    ck_assert_str_eq(err.message, "invalid WAL file name \"00000000.history\"");
    ck_assert_str_eq(err.detail, "Timeline 0 is not a valid timeline.");

    /* A very long name is cut short and marked. */
    char long_name[4096];
    memset(long_name, '\n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    ck_assert_int_eq(wk_wal_parse_name(long_name, &n, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(err.message, "\\x0A...\""));
    ck_assert_uint_lt(strlen(err.message), 300);
    assert_one_line(&err);

    ck_assert_int_eq(wk_wal_parse_name(NULL, &n, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);

    /* err may be NULL. */
    ck_assert_int_eq(wk_wal_parse_name("nope", &n, NULL), -1);
}
END_TEST

START_TEST(test_name_parse_format_roundtrip)
{
    /* Every valid name maps back to exactly the same text. */
    const char *names[] = {"000000010000000000000001", "0000000A0000001600000B3F",
                           "00000002000000000000000A.partial",
                           "000000010000000000000002.00000028.backup", "0000000C.history"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        wk_wal_name n;
        wk_error err = {0};
        char buf[WK_WAL_FILE_NAME_MAX];

        ck_assert_int_eq(wk_wal_parse_name(names[i], &n, &err), 0);
        switch (n.kind) {
        case WK_WAL_SEGMENT:
            snprintf(buf, sizeof(buf), "%08X%08X%08X", n.tli, n.log, n.seg);
            break;
        case WK_WAL_PARTIAL:
            snprintf(buf, sizeof(buf), "%08X%08X%08X.partial", n.tli, n.log, n.seg);
            break;
        case WK_WAL_BACKUP:
            snprintf(buf, sizeof(buf), "%08X%08X%08X.%08X.backup", n.tli, n.log, n.seg,
                     n.backup_offset);
            break;
        case WK_WAL_HISTORY:
            snprintf(buf, sizeof(buf), "%08X.history", n.tli);
            break;
        }
        ck_assert_str_eq(buf, names[i]);
    }
}
END_TEST

/* ---- page header ------------------------------------------------------------------ */

START_TEST(test_header_valid)
{
    uint8_t buf[WK_WAL_LONG_HEADER_SIZE];
    wk_wal_header h;
    wk_error err = {0};

    make_default_header(buf);
    ck_assert_int_eq(wk_wal_parse_header(buf, sizeof(buf), &h, &err), 0);
    ck_assert_uint_eq(h.magic, 0xD110);
    ck_assert_int_eq(h.pg_version, 15);
    ck_assert_uint_eq(h.tli, 1);
    ck_assert_uint_eq(h.pageaddr, UINT64_C(0x16B3000000));
    ck_assert_uint_eq(h.system_identifier, UINT64_C(7712025303015056254));
    ck_assert_uint_eq(h.seg_size, 16 * MIB);
    ck_assert_uint_eq(h.block_size, 8192);

    /* A whole page (longer buffer) is fine; so is every defined xlp_info bit. */
    uint8_t page[8192];
    memset(page, 0x77, sizeof(page));
    make_header(page, 0xD116, 0x0007, 3, 0, 1, MIB, 1024);
    ck_assert_int_eq(wk_wal_parse_header(page, sizeof(page), &h, &err), 0);
    ck_assert_int_eq(h.pg_version, 17);
    ck_assert_uint_eq(h.tli, 3);
    ck_assert_uint_eq(h.pageaddr, 0);
    ck_assert_uint_eq(h.block_size, 1024);

    /* Largest sizes: 1 GiB segments, 64 kB WAL blocks (--with-wal-blocksize=64). */
    make_header(buf, 0xD093, 0x0002, 1, UINT64_C(0xFFFFFFFFC0000000), 1, UINT32_C(1) << 30, 65536);
    ck_assert_int_eq(wk_wal_parse_header(buf, sizeof(buf), &h, &err), 0);
    ck_assert_int_eq(h.pg_version, 906);
    ck_assert_uint_eq(h.pageaddr, UINT64_C(0xFFFFFFFFC0000000));
}
END_TEST

START_TEST(test_magic_versions)
{
    const struct {
        uint16_t magic;
        int version;
    } known[] = {{0xD093, 906}, {0xD097, 10}, {0xD098, 11}, {0xD101, 12}, {0xD106, 13},
                 {0xD10D, 14},  {0xD110, 15}, {0xD113, 16}, {0xD116, 17}, {0xD118, 18}};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        uint8_t buf[WK_WAL_LONG_HEADER_SIZE];
        wk_wal_header h;
        wk_error err = {0};

        ck_assert_int_eq(wk_wal_magic_version(known[i].magic), known[i].version);
        make_header(buf, known[i].magic, 0x0002, 1, 16 * MIB, 42, 16 * MIB, 8192);
        ck_assert_int_eq(wk_wal_parse_header(buf, sizeof(buf), &h, &err), 0);
        ck_assert_int_eq(h.pg_version, known[i].version);
    }
    /* 9.5, 19 and neighbours of the known values are not ours. */
    const uint16_t unknown[] = {0, 0xD087, 0xD094, 0xD108, 0xD111, 0xD117, 0xD119, 0x10D1, 0xFFFF};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        ck_assert_int_eq(wk_wal_magic_version(unknown[i]), 0);
}
END_TEST

static void assert_header_corrupt(const uint8_t *buf, size_t len, const char *fragment)
{
    wk_wal_header h;
    wk_wal_header before;
    wk_error err = {0};

    memset(&h, 0x5A, sizeof(h));
    before = h;
    ck_assert_int_eq(wk_wal_parse_header(buf, len, &h, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_msg(strstr(err.message, fragment) != NULL, "message \"%s\" lacks \"%s\"", err.message,
                  fragment);
    ck_assert(memcmp(&h, &before, sizeof(h)) == 0);
    assert_one_line(&err);
}

START_TEST(test_header_wrong_magic)
{
    uint8_t buf[WK_WAL_LONG_HEADER_SIZE];

    make_default_header(buf);
    ts_put16(buf, 0, 0xD087); /* 9.5 */
    assert_header_corrupt(buf, sizeof(buf), "unknown magic number D087");
    ts_put16(buf, 0, 0x10D1); /* byte-swapped 15 */
    assert_header_corrupt(buf, sizeof(buf), "unknown magic number");
    memset(buf, 0, sizeof(buf)); /* a zero-filled file */
    assert_header_corrupt(buf, sizeof(buf), "unknown magic number 0000");
}
END_TEST

/* A magic above the newest known one, in the family every release used, is a newer
 * PostgreSQL: refused as such (WK_ERR_CLUSTER), naming the magic and what is supported. */
START_TEST(test_header_newer_release)
{
    const uint16_t newer[] = {0xD119, 0xD11A, 0xD120, 0xD1FF};
    for (size_t i = 0; i < sizeof(newer) / sizeof(newer[0]); i++) {
        uint8_t buf[WK_WAL_LONG_HEADER_SIZE];
        wk_wal_header h;
        wk_error err = {0};
        char magic[8];

        make_default_header(buf);
        ts_put16(buf, 0, newer[i]);
        ck_assert_int_eq(wk_wal_parse_header(buf, sizeof(buf), &h, &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_CLUSTER);
        snprintf(magic, sizeof(magic), "%04X", newer[i]);
        ck_assert_msg(strstr(err.message, magic) != NULL, "%s", err.message);
        ck_assert_msg(
            strstr(err.message, "newer than this walkeep supports (PostgreSQL 15 to 18)") != NULL,
            "%s", err.message);
        ck_assert_msg(strstr(err.hint, "install a walkeep release") != NULL, "%s", err.hint);
        assert_one_line(&err);
    }
    /* Outside the family (a byte-swapped or random magic) it is plain corruption. */
    uint8_t buf[WK_WAL_LONG_HEADER_SIZE];
    make_default_header(buf);
    ts_put16(buf, 0, 0xE119);
    assert_header_corrupt(buf, sizeof(buf), "unknown magic number E119");
}
END_TEST

START_TEST(test_header_no_long_flag)
{
    uint8_t buf[WK_WAL_LONG_HEADER_SIZE];

    make_default_header(buf);
    ts_put16(buf, 2, 0x0000);
    assert_header_corrupt(buf, sizeof(buf), "no long header");
    ts_put16(buf, 2, 0x0005); /* contrecord + removable, still short */
    assert_header_corrupt(buf, sizeof(buf), "no long header");
    ts_put16(buf, 2, 0x0012); /* long, plus an undefined bit */
    assert_header_corrupt(buf, sizeof(buf), "unknown info bits 0012");
    ts_put16(buf, 2, 0x8002);
    assert_header_corrupt(buf, sizeof(buf), "unknown info bits 8002");
}
END_TEST

/* The first page of a segment after crash recovery overwrote a torn record carries
 * XLP_FIRST_IS_OVERWRITE_CONTRECORD (0x8): a valid segment on every supported major. */
START_TEST(test_header_overwrite_contrecord)
{
    const uint16_t magics[] = {0xD110, 0xD113, 0xD116, 0xD118};
    const uint16_t infos[] = {0x000A, 0x000E, 0x000B, 0x000F};
    for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
        for (size_t j = 0; j < sizeof(infos) / sizeof(infos[0]); j++) {
            uint8_t buf[WK_WAL_LONG_HEADER_SIZE];
            wk_wal_header h;
            wk_error err = {0};

            make_header(buf, magics[i], infos[j], 1, 16 * MIB, 42, 16 * MIB, 8192);
            ck_assert_msg(wk_wal_parse_header(buf, sizeof(buf), &h, &err) == 0,
                          "magic %04X info %04X: %s", magics[i], infos[j], err.message);
        }
    }
}
END_TEST

START_TEST(test_header_bad_seg_size)
{
    const uint32_t bad[] = {0, 512 * 1024, MIB + 8192, 3 * MIB, UINT32_C(1) << 31, UINT32_MAX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t buf[WK_WAL_LONG_HEADER_SIZE];

        make_header(buf, 0xD110, 0x0002, 1, 0, 1, bad[i], 8192);
        assert_header_corrupt(buf, sizeof(buf), "invalid segment size");
    }
}
END_TEST

START_TEST(test_header_bad_block_size)
{
    const uint32_t bad[] = {0, 512, 1000, 8191, 8193, 131072, UINT32_MAX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t buf[WK_WAL_LONG_HEADER_SIZE];

        make_header(buf, 0xD110, 0x0002, 1, 0, 1, 16 * MIB, bad[i]);
        assert_header_corrupt(buf, sizeof(buf), "invalid WAL block size");
    }
}
END_TEST

START_TEST(test_header_pageaddr_not_segment_start)
{
    uint8_t buf[WK_WAL_LONG_HEADER_SIZE];

    make_header(buf, 0xD110, 0x0002, 1, 16 * MIB + 8192, 1, 16 * MIB, 8192);
    assert_header_corrupt(buf, sizeof(buf), "page address 0/1002000 is not the start");
    make_header(buf, 0xD110, 0x0002, 1, 1, 1, 16 * MIB, 8192);
    assert_header_corrupt(buf, sizeof(buf), "is not the start of a segment");
    /* A 1 MiB boundary is not a 16 MiB boundary. */
    make_header(buf, 0xD110, 0x0002, 1, 17 * MIB, 1, 16 * MIB, 8192);
    assert_header_corrupt(buf, sizeof(buf), "is not the start of a segment");
}
END_TEST

START_TEST(test_header_tli_zero)
{
    uint8_t buf[WK_WAL_LONG_HEADER_SIZE];

    make_header(buf, 0xD110, 0x0002, 0, 0, 1, 16 * MIB, 8192);
    assert_header_corrupt(buf, sizeof(buf), "timeline 0");
}
END_TEST

START_TEST(test_header_too_short)
{
    uint8_t buf[WK_WAL_LONG_HEADER_SIZE];

    make_default_header(buf);
    for (size_t len = 0; len < sizeof(buf); len++) {
        /* Copy into an exactly sized heap block so ASan catches any over-read. */
        uint8_t *copy = malloc(len == 0 ? 1 : len);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, buf, len);
        assert_header_corrupt(copy, len, "expected at least 40");
        free(copy);
    }
    assert_header_corrupt(NULL, 0, "expected at least 40");
    assert_header_corrupt(NULL, 100, "expected at least 40");

    uint8_t *exact = malloc(sizeof(buf));
    ck_assert_ptr_nonnull(exact);
    memcpy(exact, buf, sizeof(buf));
    wk_wal_header h;
    ck_assert_int_eq(wk_wal_parse_header(exact, sizeof(buf), &h, NULL), 0);
    free(exact);
}
END_TEST

/* First 40 bytes of real segments written by PostgreSQL 15.x initdb on x86-64
 * (--wal-segsize=1 and --wal-segsize=64), with what pg_controldata reported. */
static const uint8_t pg15_seg6_1mib[40] = {
    0x10, 0xd1, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xd9, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7e, 0x63, 0x09, 0x2d,
    0x27, 0x9e, 0x06, 0x6b, 0x00, 0x00, 0x10, 0x00, 0x00, 0x20, 0x00, 0x00};
static const uint8_t pg15_seg1_64mib[40] = {
    0x10, 0xd1, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8d, 0x23, 0x2d, 0xa4,
    0x27, 0x9e, 0x06, 0x6b, 0x00, 0x00, 0x00, 0x04, 0x00, 0x20, 0x00, 0x00};

START_TEST(test_header_golden_pg15)
{
    wk_wal_header h;
    wk_wal_name n;
    wk_error err = {0};

    /* 000000010000000000000006, 1 MiB segments, first page continues a record. */
    ck_assert_int_eq(wk_wal_parse_header(pg15_seg6_1mib, sizeof(pg15_seg6_1mib), &h, &err), 0);
    ck_assert_uint_eq(h.magic, 0xD110);
    ck_assert_int_eq(h.pg_version, 15);
    ck_assert_uint_eq(h.tli, 1);
    ck_assert_uint_eq(h.system_identifier, UINT64_C(7712025303015056254));
    ck_assert_uint_eq(h.seg_size, MIB);
    ck_assert_uint_eq(h.block_size, 8192);
    ck_assert_int_eq(wk_wal_parse_name("000000010000000000000006", &n, &err), 0);
    ck_assert_uint_eq(h.pageaddr, wk_wal_segno_to_lsn(wk_wal_name_segno(&n, MIB), MIB));

    /* 000000010000000000000001, 64 MiB segments. */
    ck_assert_int_eq(wk_wal_parse_header(pg15_seg1_64mib, sizeof(pg15_seg1_64mib), &h, &err), 0);
    ck_assert_int_eq(h.pg_version, 15);
    ck_assert_uint_eq(h.system_identifier, UINT64_C(7712025305013887885));
    ck_assert_uint_eq(h.seg_size, 64 * MIB);
    ck_assert_uint_eq(h.block_size, 8192);
    ck_assert_uint_eq(h.pageaddr, 64 * MIB);
    ck_assert_uint_eq(wk_wal_lsn_to_segno(h.pageaddr, h.seg_size), 1);
}
END_TEST

/* First 40 bytes of 000000010000000000000001 as initdb of PostgreSQL 16.14, 17.10 and
 * 18.4 (x86-64, 16 MiB segments) wrote it. */
static const struct {
    int version;
    uint16_t magic;
    uint64_t system_identifier;
    uint8_t bytes[40];
} golden_newer[] = {
    {16, 0xD113, UINT64_C(0x6B16E4292F0B8D24), {0x13, 0xd1, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00,
                                                0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                                                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                                0x24, 0x8d, 0x0b, 0x2f, 0x29, 0xe4, 0x16, 0x6b,
                                                0x00, 0x00, 0x00, 0x01, 0x00, 0x20, 0x00, 0x00}},
    {17, 0xD116, UINT64_C(0x6B16E429B6417D36), {0x16, 0xd1, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00,
                                                0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                                                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                                0x36, 0x7d, 0x41, 0xb6, 0x29, 0xe4, 0x16, 0x6b,
                                                0x00, 0x00, 0x00, 0x01, 0x00, 0x20, 0x00, 0x00}},
    {18, 0xD118, UINT64_C(0x6B16E42A4536AD48), {0x18, 0xd1, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00,
                                                0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                                                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                                0x48, 0xad, 0x36, 0x45, 0x2a, 0xe4, 0x16, 0x6b,
                                                0x00, 0x00, 0x00, 0x01, 0x00, 0x20, 0x00, 0x00}},
};

START_TEST(test_header_golden_pg16_to_18)
{
    for (size_t i = 0; i < sizeof(golden_newer) / sizeof(golden_newer[0]); i++) {
        wk_wal_header h;
        wk_error err = {0};

        ck_assert_msg(wk_wal_parse_header(golden_newer[i].bytes, 40, &h, &err) == 0, "%s",
                      err.message);
        ck_assert_uint_eq(h.magic, golden_newer[i].magic);
        ck_assert_int_eq(h.pg_version, golden_newer[i].version);
        ck_assert_uint_eq(h.tli, 1);
        ck_assert_uint_eq(h.system_identifier, golden_newer[i].system_identifier);
        ck_assert_uint_eq(h.seg_size, 16 * MIB);
        ck_assert_uint_eq(h.block_size, 8192);
        ck_assert_uint_eq(h.pageaddr, 16 * MIB);
    }
}
END_TEST

/* ---- LSN text ---------------------------------------------------------------------- */

START_TEST(test_lsn_roundtrip)
{
    const wk_lsn values[] = {0,
                             1,
                             0xFFFFFFFF,
                             UINT64_C(1) << 32,
                             UINT64_C(0x16B374D848),
                             UINT64_C(0x3000158),
                             UINT64_C(0xFFFFFFFF00000000),
                             UINT64_MAX};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char buf[18];
        wk_lsn back = 12345;

        wk_wal_format_lsn(buf, sizeof(buf), values[i]);
        ck_assert_int_eq(wk_wal_parse_lsn(buf, &back), 0);
        ck_assert_uint_eq(back, values[i]);
    }

    char buf[18];
    wk_wal_format_lsn(buf, sizeof(buf), UINT64_C(0x16B374D848));
    ck_assert_str_eq(buf, "16/B374D848");
    wk_wal_format_lsn(buf, sizeof(buf), UINT64_C(0x3000158));
    ck_assert_str_eq(buf, "0/3000158"); /* as PostgreSQL 15 prints it */
    wk_wal_format_lsn(buf, sizeof(buf), 0);
    ck_assert_str_eq(buf, "0/0");
    wk_wal_format_lsn(buf, sizeof(buf), UINT64_MAX);
    ck_assert_str_eq(buf, "FFFFFFFF/FFFFFFFF");

    /* Parsing takes either case and 1 to 8 digits on each side. */
    const struct {
        const char *text;
        wk_lsn value;
    } parsed[] = {{"0/0", 0},
                  {"0/3000158", UINT64_C(0x3000158)},
                  {"0/03000158", UINT64_C(0x3000158)},
                  {"16/b374d848", UINT64_C(0x16B374D848)},
                  {"16/B374d848", UINT64_C(0x16B374D848)},
                  {"00000016/0000B374", UINT64_C(0x160000B374)},
                  {"ffffffff/FFFFFFFF", UINT64_MAX}};
    for (size_t i = 0; i < sizeof(parsed) / sizeof(parsed[0]); i++) {
        wk_lsn v = 0;
        ck_assert_msg(wk_wal_parse_lsn(parsed[i].text, &v) == 0, "refused %s", parsed[i].text);
        ck_assert_uint_eq(v, parsed[i].value);
    }
}
END_TEST

START_TEST(test_lsn_rejects)
{
    const char *bad[] = {
        "0/",   "/0",    "/",           "G/0",         "0/G",   "1/2/3",       "",     " 0/1",
        "0/1 ", "0/1\n", "0 /1",        "0/ 1",        "0x1/0", "1/0x0",       "+1/0", "-1/0",
        "1",    "1:0",   "123456789/0", "0/123456789", "0/1\t", "16/B374D848#"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wk_lsn v = 777;
        ck_assert_msg(wk_wal_parse_lsn(bad[i], &v) == -1, "accepted \"%s\"", bad[i]);
        ck_assert_uint_eq(v, 777);
    }
    wk_lsn v = 777;
    ck_assert_int_eq(wk_wal_parse_lsn(NULL, &v), -1);
    ck_assert_uint_eq(v, 777);
}
END_TEST

START_TEST(test_lsn_format_small_buffer)
{
    char buf[32];

    memset(buf, 'Z', sizeof(buf));
    wk_wal_format_lsn(buf, 5, UINT64_MAX);
    ck_assert_str_eq(buf, "FFFF");
    ck_assert_int_eq(buf[5], 'Z');

    memset(buf, 'Z', sizeof(buf));
    wk_wal_format_lsn(buf, 0, UINT64_MAX);
    ck_assert_int_eq(buf[0], 'Z');

    memset(buf, 'Z', sizeof(buf));
    wk_wal_format_lsn(buf, 18, UINT64_MAX);
    ck_assert_str_eq(buf, "FFFFFFFF/FFFFFFFF");
}
END_TEST

/* ---- timeline history --------------------------------------------------------------- */

static int parse_history(const char *text, uint32_t tli, wk_wal_history_entry **entries,
                         size_t *count, wk_error *err)
{
    return wk_wal_parse_history(text, strlen(text), tli, entries, count, err);
}

START_TEST(test_history_normal)
{
    const char *text = "1\t0/3000158\tno recovery target specified\n"
                       "\n"
                       "2\t0/5000060\tbefore 2024-05-01 12:00:00+00\n";
    wk_wal_history_entry *e = NULL;
    size_t count = 99;
    wk_error err = {0};

    ck_assert_int_eq(parse_history(text, 3, &e, &count, &err), 0);
    ck_assert_uint_eq(count, 2);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e[0].tli, 1);
    ck_assert_uint_eq(e[0].switch_lsn, UINT64_C(0x3000158));
    ck_assert_uint_eq(e[1].tli, 2);
    ck_assert_uint_eq(e[1].switch_lsn, UINT64_C(0x5000060));
    free(e);

    /* Skipped timelines, no reason, no final newline, CRLF line ends, padded LSNs. */
    e = NULL;
    ck_assert_int_eq(parse_history("1\t0/03000158\r\n4\tA/B374D848", 7, &e, &count, &err), 0);
    ck_assert_uint_eq(count, 2);
    ck_assert_uint_eq(e[0].tli, 1);
    ck_assert_uint_eq(e[0].switch_lsn, UINT64_C(0x3000158));
    ck_assert_uint_eq(e[1].tli, 4);
    ck_assert_uint_eq(e[1].switch_lsn, UINT64_C(0xAB374D848));
    free(e);

    /* Only the first len bytes are read. */
    e = NULL;
    const char *two = "1\t0/1\tx\n2\t0/2\tx\n";
    ck_assert_int_eq(wk_wal_parse_history(two, 8, 2, &e, &count, &err), 0);
    ck_assert_uint_eq(count, 1);
    ck_assert_uint_eq(e[0].switch_lsn, 1);
    free(e);
}
END_TEST

START_TEST(test_history_comments_and_blank)
{
    const char *text = "# timeline history of a test cluster\n"
                       "   \n"
                       "\t\n"
                       "1\t0/3000158\tno recovery target specified\n"
                       "   # indented comment\n"
                       "#2\tnot/an lsn\n"
                       "\n";
    wk_wal_history_entry *e = NULL;
    size_t count = 0;
    wk_error err = {0};

    ck_assert_int_eq(parse_history(text, 2, &e, &count, &err), 0);
    ck_assert_uint_eq(count, 1);
    ck_assert_uint_eq(e[0].tli, 1);
    ck_assert_uint_eq(e[0].switch_lsn, UINT64_C(0x3000158));
    free(e);

    /* Empty and comment-only texts have no entries. */
    e = (wk_wal_history_entry *)&err; /* must be overwritten */
    count = 99;
    ck_assert_int_eq(wk_wal_parse_history("", 0, 2, &e, &count, &err), 0);
    ck_assert_uint_eq(count, 0);
    free(e);
    e = NULL;
    ck_assert_int_eq(wk_wal_parse_history(NULL, 0, 2, &e, &count, &err), 0);
    ck_assert_uint_eq(count, 0);
    free(e);
    e = NULL;
    count = 99;
    ck_assert_int_eq(parse_history("# nothing\n\n", 5, &e, &count, &err), 0);
    ck_assert_uint_eq(count, 0);
    free(e);
}
END_TEST

START_TEST(test_history_malformed)
{
    const char *bad[] = {
        "x\t0/3000158\treason\n",
        "1\n",
        "1\t\n",
        "1\treason\n",
        "1\t0/\treason\n",
        "1\t/3000158\treason\n",
        "1\t0-3000158\treason\n",
        "1\t0/3000158junk\treason\n",
        "1\t0/G\treason\n",
        "1\t123456789/0\treason\n",
        "1x\t0/3000158\treason\n",
        "-1\t0/3000158\treason\n",
        "+1\t0/3000158\treason\n",
        "0\t0/3000158\treason\n",
        "4294967296\t0/3000158\treason\n",
        "99999999999999999999\t0/1\treason\n",
        "1\t0/3000158\treason\ngarbage\n",
        "1,0/3000158,reason\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wk_wal_history_entry *e = (wk_wal_history_entry *)&bad; /* sentinel */
        size_t count = 4242;
        wk_error err = {0};

        ck_assert_msg(parse_history(bad[i], UINT32_MAX, &e, &count, &err) == -1, "accepted \"%s\"",
                      bad[i]);
        ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
        ck_assert_ptr_eq(e, (wk_wal_history_entry *)&bad);
        ck_assert_uint_eq(count, 4242);
        ck_assert_ptr_nonnull(strstr(err.message, "invalid timeline history file"));
        assert_one_line(&err);
    }

    /* The message names the line. */
    wk_wal_history_entry *e = NULL;
    size_t count = 0;
    wk_error err = {0};
    ck_assert_int_eq(parse_history("1\t0/1\tok\n\n2\t0/zz\tbad\n", 3, &e, &count, &err), -1);
    ck_assert_str_eq(
        err.message,
        "invalid timeline history file for timeline 3: line 3: \"2\\x090/zz\\x09bad\"");
    ck_assert_ptr_null(e);

    /* NUL bytes are not text. */
    const char nul[] = "1\t0/1\tre\0ason\n";
    ck_assert_int_eq(wk_wal_parse_history(nul, sizeof(nul) - 1, 2, &e, &count, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
}
END_TEST

START_TEST(test_history_tli_order)
{
    const struct {
        const char *text;
        uint32_t tli;
    } bad[] = {
        {"1\t0/3000158\ta\n1\t0/5000060\tb\n", 3}, /* repeated */
        {"2\t0/3000158\ta\n1\t0/5000060\tb\n", 3}, /* decreasing */
        {"1\t0/3000158\ta\n3\t0/5000060\tb\n", 3}, /* parent == own timeline */
        {"5\t0/3000158\ta\n", 3},                  /* parent above own timeline */
        {"1\t0/3000158\ta\n", 1},                  /* timeline 1 has no parent */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wk_wal_history_entry *e = NULL;
        size_t count = 0;
        wk_error err = {0};

        ck_assert_msg(parse_history(bad[i].text, bad[i].tli, &e, &count, &err) == -1,
                      "accepted case %zu", i);
        ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
        ck_assert_ptr_null(e);
    }

    /* Timeline 0 is a usage error. */
    wk_wal_history_entry *e = NULL;
    size_t count = 0;
    wk_error err = {0};
    ck_assert_int_eq(parse_history("", 0, &e, &count, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
}
END_TEST

START_TEST(test_history_many_entries)
{
    /* Enough lines to make the entry array grow several times. */
    const size_t n = 1000;
    size_t cap = n * 48 + 1;
    char *text = malloc(cap);
    size_t used = 0;

    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(text + used, cap - used, "%zu\t%X/%X\tswitch %zu\n", i + 1,
                                 (unsigned)i, (unsigned)(i * 0x1000 + 0x28), i);

    wk_wal_history_entry *e = NULL;
    size_t count = 0;
    wk_error err = {0};
    ck_assert_int_eq(wk_wal_parse_history(text, used, (uint32_t)n + 1, &e, &count, &err), 0);
    ck_assert_uint_eq(count, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(e[i].tli, i + 1);
        ck_assert_uint_eq(e[i].switch_lsn, ((uint64_t)i << 32) | (i * 0x1000 + 0x28));
    }
    free(e);
    free(text);
}
END_TEST

/* ---- the check stage: what an object decodes to is the file asked for ---------------- */

/* Runs data through a check stage for name, written in pieces of step bytes; returns the
 * stage's result (err filled), and whether the memory sink behind it got a whole object. */
static int run_check(const char *name, const uint8_t *data, size_t len, size_t step,
                     bool *committed, wk_error *err)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    wk_stage *chain = wk_stage_memory_new(64u << 20, &out, &out_len, err);
    chain = wk_wal_check_stage_new(chain, name, "wal/x/obj", TS_SYSID, TS_SEG, err);
    ck_assert_ptr_nonnull(chain);
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0; off += step)
        rc = wk_stage_write(chain, data + off, len - off < step ? len - off : step, err);
    if (rc == 0)
        rc = wk_stage_finish(chain, err);
    *committed = out != NULL;
    wk_stage_free(chain);
    free(out);
    return rc;
}

START_TEST(test_check_stage_segments)
{
    char dir[] = "/tmp/wk-walcheck-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    wk_error err = {0};
    bool committed;
    size_t len;
    ts_segment spec = {.tli = 2, .segno = 5, .state = 1};
    uint8_t *seg = ts_make_segment(dir, &spec, NULL, NULL, &len);
    /* Its own name, in any write sizes, and as a .partial. */
    size_t steps[] = {1, 7, 40, 8192, len};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        ck_assert_msg(run_check("000000020000000000000005", seg, len, steps[i], &committed, &err) ==
                          0,
                      "%s", err.message);
        ck_assert(committed);
    }
    ck_assert_int_eq(
        run_check("000000020000000000000005.partial", seg, len, 4096, &committed, &err), 0);
    /* Another segment's name, a lower timeline's name, another cluster, short, long. */
    const struct {
        const char *name;
        const char *why;
    } wrong[] = {
        {"000000020000000000000006",
         "its first page is at 0/500000, the segment starts at 0/600000"},
        {"000000010000000000000005", "it holds timeline 2 data, above its name's"},
    };
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        wk_error_clear(&err);
        ck_assert_int_eq(run_check(wrong[i].name, seg, len, 65536, &committed, &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
        ck_assert(!committed);
        char want[300];
        snprintf(want, sizeof(want), "object \"wal/x/obj\" does not hold WAL file \"%s\": %s",
                 wrong[i].name, wrong[i].why);
        ck_assert_str_eq(err.message, want);
    }
    /* A later timeline's name holds the parent's pages (copied at the switch): fine. */
    ck_assert_int_eq(run_check("000000030000000000000005", seg, len, 65536, &committed, &err), 0);
    ck_assert_int_eq(run_check("000000020000000000000005", seg, len - 1, 65536, &committed, &err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err.message, "bytes, a segment"));
    ck_assert(!committed);
    ck_assert_int_eq(run_check("000000020000000000000005", seg, 20, 65536, &committed, &err), -1);
    ck_assert(!committed);
    free(seg);
    spec.sysid = TS_SYSID + 1;
    seg = ts_make_segment(dir, &spec, NULL, NULL, &len);
    ck_assert_int_eq(run_check("000000020000000000000005", seg, len, 65536, &committed, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "system identifier"));
    ck_assert(!committed);
    free(seg);
    ts_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_check_stage_text_files)
{
    wk_error err = {0};
    bool committed;
    const char *h3 = "1\t0/3000000\tno recovery target specified\n"
                     "2\t0/5000000\tno recovery target specified\n";
    ck_assert_msg(
        run_check("00000003.history", (const uint8_t *)h3, strlen(h3), 5, &committed, &err) == 0,
        "%s", err.message);
    ck_assert(committed);
    /* Timeline 3's history under timeline 2's name (it names timeline 2 as a parent). */
    ck_assert_int_eq(
        run_check("00000002.history", (const uint8_t *)h3, strlen(h3), 64, &committed, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert(!committed);
    const char *backup = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
                         "STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n";
    ck_assert_int_eq(run_check("000000010000000000000002.00000028.backup", (const uint8_t *)backup,
                               strlen(backup), 9, &committed, &err),
                     0);
    ck_assert_int_eq(run_check("000000010000000000000003.00000028.backup", (const uint8_t *)backup,
                               strlen(backup), 9, &committed, &err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err.message, "it does not name its segment"));
    ck_assert(!committed);
}
END_TEST

START_TEST(test_history_switch_points_forward)
{
    wk_error err = {0};
    wk_wal_history_entry *e = NULL;
    size_t n = 0;
    const char *back = "1\t0/5000000\tx\n2\t0/3000000\ty\n";
    ck_assert_int_eq(wk_wal_parse_history(back, strlen(back), 3, &e, &n, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err.message, "Switch points must not go backwards") != NULL
                              ? err.message
                              : err.detail);
    const char *same = "1\t0/3000000\tx\n2\t0/3000000\ty\n";
    ck_assert_int_eq(wk_wal_parse_history(same, strlen(same), 3, &e, &n, &err), 0);
    free(e);
}
END_TEST

static Suite *wal_suite(void)
{
    Suite *s = suite_create("wal");

    TCase *arith = tcase_create("arithmetic");
    tcase_add_test(arith, test_seg_size_valid);
    tcase_add_test(arith, test_name_segno_roundtrip_every_size);
    tcase_add_test(arith, test_known_names);
    tcase_add_test(arith, test_last_segment_of_log_id);
    tcase_add_test(arith, test_check_size_rejects_bad_size);
    tcase_add_test(arith, test_check_size_backup_and_history);
    suite_add_tcase(s, arith);

    TCase *names = tcase_create("names");
    tcase_add_test(names, test_valid_names);
    tcase_add_test(names, test_invalid_names);
    tcase_add_test(names, test_invalid_name_messages);
    tcase_add_test(names, test_name_parse_format_roundtrip);
    suite_add_tcase(s, names);

    TCase *header = tcase_create("header");
    tcase_add_test(header, test_header_valid);
    tcase_add_test(header, test_magic_versions);
    tcase_add_test(header, test_header_wrong_magic);
    tcase_add_test(header, test_header_newer_release);
    tcase_add_test(header, test_header_no_long_flag);
    tcase_add_test(header, test_header_overwrite_contrecord);
    tcase_add_test(header, test_header_bad_seg_size);
    tcase_add_test(header, test_header_bad_block_size);
    tcase_add_test(header, test_header_pageaddr_not_segment_start);
    tcase_add_test(header, test_header_tli_zero);
    tcase_add_test(header, test_header_too_short);
    tcase_add_test(header, test_header_golden_pg15);
    tcase_add_test(header, test_header_golden_pg16_to_18);
    suite_add_tcase(s, header);

    TCase *lsn = tcase_create("lsn");
    tcase_add_test(lsn, test_lsn_roundtrip);
    tcase_add_test(lsn, test_lsn_rejects);
    tcase_add_test(lsn, test_lsn_format_small_buffer);
    suite_add_tcase(s, lsn);

    TCase *history = tcase_create("history");
    tcase_add_test(history, test_history_normal);
    tcase_add_test(history, test_history_comments_and_blank);
    tcase_add_test(history, test_history_malformed);
    tcase_add_test(history, test_history_tli_order);
    tcase_add_test(history, test_history_many_entries);
    tcase_add_test(history, test_history_switch_points_forward);
    tcase_add_test(history, test_check_stage_segments);
    tcase_add_test(history, test_check_stage_text_files);
    suite_add_tcase(s, history);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(wal_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
