/* seed: writes the starting corpus of every harness into DIR/<harness>/: objects as walkeep
 * encodes them (lz4, zstd, encrypted in formats 1 and 2), tar streams as PostgreSQL sends
 * them (and one that tries to leave its folder), records walkeep writes, WAL headers,
 * history and backup files, configuration files and S3 answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backup.h"
#include "codec.h"
#include "fuzz.h"
#include "repo.h"
#include "stream.h"

static const char *root;

static void put(const char *harness, const char *name, const void *data, size_t len)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", root, harness);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", root, harness, name);
    if (fz_write(path, data, len) != 0) {
        fprintf(stderr, "seed: could not write %s\n", path);
        exit(1);
    }
}

static void put_text(const char *harness, const char *name, const char *text)
{
    put(harness, name, text, strlen(text));
}

/* mode byte, then the plaintext encoded as fuzz_object decodes it. */
static void object_seed(const char *name, uint8_t mode, const char *place)
{
    static const wk_compress algs[] = {WK_COMPRESS_NONE, WK_COMPRESS_LZ4, WK_COMPRESS_ZSTD};
    wk_error err = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    char plain[3000];
    for (size_t i = 0; i < sizeof(plain); i++)
        plain[i] = (char)("walkeep fuzz seed "[i % 18] + (i / 500));
    wk_stage *chain = wk_stage_memory_new(1u << 20, &out, &out_len, &err);
    if (mode & 4)
        chain = place != NULL ? wk_crypt_encrypt_bound_new(chain, fz_key(), place, &err)
                              : wk_crypt_encrypt_new(chain, fz_key(), &err);
    chain = wk_codec_compress_new(chain, algs[mode % 3], WK_COMPRESS_LEVEL_DEFAULT, &err);
    if (chain == NULL || wk_stage_write(chain, plain, sizeof(plain), &err) != 0 ||
        wk_stage_finish(chain, &err) != 0) {
        fprintf(stderr, "seed: %s\n", err.message);
        exit(1);
    }
    wk_stage_free(chain);
    uint8_t *seed = malloc(out_len + 1);
    seed[0] = mode;
    memcpy(seed + 1, out, out_len);
    put("fuzz_object", name, seed, out_len + 1);
    free(seed);
    free(out);
}

static void tar_header(uint8_t *h, const char *name, char type, size_t size, const char *link)
{
    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    snprintf((char *)h + 100, 8, "%07o", 0600);
    snprintf((char *)h + 124, 12, "%011zo", size);
    snprintf((char *)h + 136, 12, "%011o", 1700000000);
    h[156] = (uint8_t)type;
    if (link != NULL)
        snprintf((char *)h + 157, 100, "%s", link);
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
}

static void tar_seed(const char *name, const char *entry, const char *link)
{
    uint8_t tar[512 * 6] = {0};
    tar_header(tar, "global/", '5', 0, NULL);
    tar_header(tar + 512, "PG_VERSION", '0', 3, NULL);
    memcpy(tar + 1024, "15\n", 3);
    tar_header(tar + 1536, entry, link != NULL ? '2' : '0', link != NULL ? 0 : 5, link);
    if (link == NULL)
        memcpy(tar + 2048, "hello", 5);
    put("fuzz_tar", name, tar, sizeof(tar));
}

static void wal_seeds(void)
{
    uint8_t h[64] = {0};
    /* A PostgreSQL 15 long page header: magic D110, info 0x0002, timeline 1, page address
     * 0/500000 (segment 5 of 1 MiB), system identifier, segment size, block size. */
    h[0] = 0x10, h[1] = 0xD1, h[2] = 0x02, h[4] = 1;
    uint64_t pageaddr = 5u << 20, sysid = UINT64_C(7212345678901234567);
    memcpy(h + 8, &pageaddr, 8);
    memcpy(h + 24, &sysid, 8);
    uint32_t seg = 1u << 20, blck = 8192;
    memcpy(h + 32, &seg, 4);
    memcpy(h + 36, &blck, 4);
    put("fuzz_wal", "header", h, sizeof(h));
    /* The same page with a commit record after it (24-byte header, main data: the time),
     * its CRC-32C right, for the record reader. */
    uint8_t page[40 + 40] = {0};
    memcpy(page, h, 40);
    uint8_t *rec = page + 40;
    uint32_t tot = 34, xid = 1234, crc = 0xFFFFFFFFu;
    uint64_t when = UINT64_C(849997327853551);
    memcpy(rec, &tot, 4);
    memcpy(rec + 4, &xid, 4);
    rec[17] = 1; /* RM_XACT_ID, info 0: commit */
    rec[24] = 255;
    rec[25] = 8;
    memcpy(rec + 26, &when, 8);
    for (int pass = 0; pass < 2; pass++) {
        const uint8_t *p = pass == 0 ? rec + 24 : rec;
        size_t n = pass == 0 ? 10 : 20;
        while (n-- > 0) {
            crc ^= *p++;
            for (int k = 0; k < 8; k++)
                crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
    }
    crc ^= 0xFFFFFFFFu;
    memcpy(rec + 20, &crc, 4);
    put("fuzz_walrec", "commit", page, sizeof(page));
    put_text("fuzz_wal", "history",
             "1\t0/3000000\tno recovery target specified\n"
             "2\t0/5000000\tbefore 2026-11-25 09:30:12+00\n");
    put_text("fuzz_wal", "backup",
             "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
             "STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n"
             "CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\n");
}

static void record_seeds(void)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/record-repo", fz_scratch());
    wk_config cfg = {0};
    cfg.repo = path;
    cfg.compress = WK_COMPRESS_LZ4;
    cfg.compress_level = WK_COMPRESS_LEVEL_DEFAULT;
    wk_repo *repo = NULL;
    wk_error err = {0};
    if (wk_repo_open(&cfg, true, &repo, &err) != 0)
        exit(1);
    wk_backup_stream streams[3] = {
        {.name = "16385.tar",
         .object = "backups/b1/16385.tar.lz4",
         .tablespace = 16385,
         .location = "/srv/ts",
         .bytes = 10,
         .stored_bytes = 9},
        {.name = "base.tar", .object = "backups/b1/base.tar.lz4", .bytes = 100, .stored_bytes = 50},
        {.name = "backup_manifest",
         .object = "backups/b1/backup_manifest.lz4",
         .bytes = 7,
         .stored_bytes = 7},
    };
    wk_backup_record r = {.label = "b1",
                          .start_lsn = 0x2000028,
                          .stop_lsn = 0x2000100,
                          .start_tli = 1,
                          .stop_tli = 1,
                          .start_time = 1795599012,
                          .stop_time = 1795599072,
                          .pg_version = 15,
                          .system_identifier = UINT64_C(7212345678901234567),
                          .bytes = 117,
                          .stored_bytes = 66,
                          .compress = WK_COMPRESS_LZ4,
                          .stream_count = 3,
                          .streams = streams};
    if (wk_backup_record_write(repo, &r, &err) != 0)
        exit(1);
    uint8_t *text = NULL;
    snprintf(path, sizeof(path), "%s/record-repo/backups/b1/backup.json", fz_scratch());
    FILE *f = fopen(path, "r");
    char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    put("fuzz_record", "backup.json", buf, n);
    put("fuzz_json", "backup.json", buf, n);
    free(text);
    wk_repo_free(repo);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seed DIR\n");
        return 2;
    }
    root = argv[1];
    mkdir(root, 0755);
    object_seed("none", 0, NULL);
    object_seed("lz4", 1, NULL);
    object_seed("zstd", 2, NULL);
    object_seed("lz4-enc-v1", 5, NULL);
    object_seed("zstd-enc-v2", 6, "wal/0000000100000000/x");
    object_seed("lz4-enc-v2-pieces", 5 | 0x30, "wal/0000000100000000/x");
    tar_seed("plain", "base/1/1259", NULL);
    tar_seed("symlink", "pg_tblspc/16385", "/srv/ts");
    tar_seed("escape", "../outside", NULL);
    tar_seed("escape-link", "sub", "..");
    wal_seeds();
    record_seeds();
    put_text("fuzz_json", "nested",
             "{\"a\": [1, 2.5, -3, true, false, null, \"\\u00e9\\n\"], \"b\": {}}");
    put_text("fuzz_config", "walkeep.conf",
             "# walkeep\nrepo = '/srv/walkeep'\ncompress = zstd\ncompress_level = 3\n"
             "retry_timeout = 5min\nlog_level = info\ns3_stall_timeout = 30s\n"
             "pg_conninfo = 'host=/run/postgresql dbname=postgres'\n");
    put_text("fuzz_s3xml", "list",
             "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>true</IsTruncated>"
             "<Contents><Key>wal/a&amp;b</Key><LastModified>2026-11-25T10:52:26.336Z</LastModified>"
             "<Size>5</Size></Contents><CommonPrefixes><Prefix>wal/</Prefix></CommonPrefixes>"
             "<NextContinuationToken>x</NextContinuationToken></ListBucketResult>");
    put_text("fuzz_s3xml", "error",
             "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>m</Message></Error>");
    return 0;
}
