/* test_archive: the archive-push and fetch workers over synthetic 1 MiB WAL segments:
 * repository initialisation, idempotent push, conflicts, every refusal before a byte is
 * written, history and backup files, fetch never leaving a partial or temporary file,
 * tampering, and objects claimed twice. */
#include <check.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "support.h"

#define SEG ((uint32_t)1 << 20)
#define SYSID UINT64_C(7212345678901234567)
#define OTHER_SYSID UINT64_C(7399999999999999999)
#define NO_RETRY 0

/* ---- helpers ---------------------------------------------------------------------- */

static char tmp_dir[256];  /* made per test, removed afterwards */
static char repo_dir[300]; /* tmp_dir/repo */
static char wal_dir[300];  /* tmp_dir/pg_wal: files to push */
static char dest_dir[300]; /* tmp_dir/restore: fetch destinations */
static char key_path[300]; /* tmp_dir/key */

static void setup(void)
{
    wk_error err = {0};
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk_archive_XXXXXX");
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo", tmp_dir);
    snprintf(wal_dir, sizeof(wal_dir), "%s/pg_wal", tmp_dir);
    snprintf(dest_dir, sizeof(dest_dir), "%s/restore", tmp_dir);
    snprintf(key_path, sizeof(key_path), "%s/key", tmp_dir);
    ck_assert_int_eq(mkdir(wal_dir, 0700), 0);
    ck_assert_int_eq(mkdir(dest_dir, 0700), 0);
    ck_assert_msg(wk_key_generate_file(key_path, &err) == 0, "%s", err.message);
}

static void teardown(void)
{
    ts_tmpdir_remove(tmp_dir);
}

static wk_repo *open_repo_with(wk_compress alg, const char *key_file)
{
    return ts_repo_open(repo_dir, alg, key_file);
}

static wk_repo *open_repo(void)
{
    return open_repo_with(WK_COMPRESS_ZSTD, NULL);
}

static int claims_seen, objects_seen;

static int count_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    size_t n = strlen(path);
    if (flag != FTW_F)
        return 0;
    if (n > 6 && strcmp(path + n - 6, "-claim") == 0)
        claims_seen++;
    else
        objects_seen++;
    return 0;
}

/* Objects under wal/ (claims apart, see count_claims). */
static int count_objects(void)
{
    char wal[400];
    snprintf(wal, sizeof(wal), "%s/wal", repo_dir);
    claims_seen = objects_seen = 0;
    nftw(wal, count_entry, 16, FTW_PHYS);
    return objects_seen;
}

/* Claims ("<name>-claim") under wal/. */
static int count_claims(void)
{
    count_objects();
    return claims_seen;
}

static void fingerprint_hex_of(const void *data, size_t len, char hex[WK_FINGERPRINT_HEX_LEN + 1])
{
    wk_fingerprint fp = ts_fingerprint(data, len);
    wk_fingerprint_hex(&fp, hex);
}

/* A synthetic WAL segment (see ts_make_segment) written into wal_dir; fills name / path,
 * returns the bytes (malloc'd; *len_out gets the size). */
static uint8_t *make_segment(const ts_segment *spec, char *name, char *path, size_t *len_out)
{
    return ts_make_segment(wal_dir, spec, name, path, len_out);
}

/* Timeline 1, segment segno, the bytes after the header patterned by seed. */
static ts_segment default_spec(uint64_t segno, unsigned seed)
{
    ts_segment s = {.tli = 1, .segno = segno, .state = seed * 2654435761u + 7};
    return s;
}

/* Pushes a default segment segno and checks it was stored. */
static uint8_t *push_segment(wk_repo *repo, uint64_t segno, unsigned seed, char *name,
                             wk_push_result *res)
{
    wk_error err = {0};
    char path[512];
    ts_segment spec = default_spec(segno, seed);
    uint8_t *data = make_segment(&spec, name, path, NULL);
    ck_assert_msg(wk_archive_push(repo, path, res, &err) == 0, "push %s: %s (%s)", name,
                  err.message, err.detail);
    return data;
}

static const char *dest_path(const char *file)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", dest_dir, file);
    return path;
}

static void assert_file_bytes(const char *path, const void *data, size_t len)
{
    size_t got_len = 0;
    char *got = ts_read_file(path, &got_len);
    ck_assert_uint_eq(got_len, len);
    ck_assert_msg(memcmp(got, data, len) == 0, "%s differs", path);
    free(got);
}

static void repo_object_file(const char *object, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s", repo_dir, object);
    ck_assert(n > 0 && (size_t)n < size);
}

/* ---- push --------------------------------------------------------------------------- */

START_TEST(test_object_dir)
{
    wk_wal_name parsed;
    char dir[64];
    ck_assert_int_eq(wk_wal_parse_name("000000010000000A000000FF", &parsed, NULL), 0);
    wk_archive_object_dir("000000010000000A000000FF", &parsed, dir, sizeof(dir));
    ck_assert_str_eq(dir, "wal/000000010000000A");
    ck_assert_int_eq(wk_wal_parse_name("00000002.history", &parsed, NULL), 0);
    wk_archive_object_dir("00000002.history", &parsed, dir, sizeof(dir));
    ck_assert_str_eq(dir, "wal");
    ck_assert_int_eq(wk_wal_parse_name("000000010000000000000002.00000028.backup", &parsed, NULL),
                     0);
    wk_archive_object_dir("000000010000000000000002.00000028.backup", &parsed, dir, sizeof(dir));
    ck_assert_str_eq(dir, "wal/0000000100000000");
}
END_TEST

START_TEST(test_push_initialises_and_stores)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64], path[512], hex[WK_FINGERPRINT_HEX_LEN + 1];
    ts_segment spec = default_spec(1, 1);
    size_t len = 0;
    uint8_t *data = make_segment(&spec, name, path, &len);
    ck_assert_str_eq(name, "000000010000000000000001");
    wk_push_result res;
    memset(&res, 0xFF, sizeof(res));
    ck_assert_msg(wk_archive_push(repo, path, &res, &err) == 0, "%s", err.message);
    ck_assert(res.initialized_repo);
    ck_assert(!res.already_archived);
    ck_assert_uint_eq(res.bytes, SEG);

    fingerprint_hex_of(data, len, hex);
    char expected[256];
    /* ".i": the time index of a segment without commits or restore points. */
    snprintf(expected, sizeof(expected), "wal/0000000100000000/000000010000000000000001-%s.i.zst",
             hex);
    ck_assert_str_eq(res.object, expected);

    char file[512];
    repo_object_file(res.object, file, sizeof(file));
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    ck_assert_uint_eq(res.stored_bytes, (uint64_t)st.st_size);
    ck_assert_uint_gt(res.stored_bytes, 0);
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/wal/0000000100000000", repo_dir);
    ck_assert_int_eq(ts_count_entries(dir), 2); /* the object and the name's claim */
    ck_assert_int_eq(count_objects(), 1);
    char claim_file[700];
    snprintf(claim_file, sizeof(claim_file), "%s/%s-claim", dir, name);
    char *claimed = ts_read_file(claim_file, NULL);
    ck_assert_uint_eq(strlen(claimed), WK_FINGERPRINT_HEX_LEN + 1);
    ck_assert_int_eq(strncmp(claimed, hex, WK_FINGERPRINT_HEX_LEN), 0);
    free(claimed);

    /* The repository took the segment's identity. */
    wk_repo_meta meta;
    ck_assert_int_eq(wk_repo_read_meta(repo, &meta, &err), 0);
    ck_assert_uint_eq(meta.system_identifier, SYSID);
    ck_assert_uint_eq(meta.seg_size, SEG);
    ck_assert_int_eq(meta.pg_version, 15);
    ck_assert(!meta.encrypted);

    /* The source file is left as it was. */
    assert_file_bytes(path, data, len);
    free(data);
    wk_repo_free(repo);
}
END_TEST

/* A storage that forwards to another but cannot retarget a sink, like an object
 * store: push must then fingerprint first and name the object before writing it. */
typedef struct no_retarget_storage {
    wk_storage base;
    wk_storage *inner;
} no_retarget_storage;

static wk_storage *inner_of(wk_storage *st)
{
    return ((no_retarget_storage *)st)->inner;
}

static int nr_put_open(wk_storage *st, const char *path, int flags, wk_stage **sink, wk_error *err)
{
    return wk_storage_put_open(inner_of(st), path, flags, sink, err);
}

static int nr_get(wk_storage *st, const char *path, wk_stage *dest, wk_error *err)
{
    return wk_storage_get(inner_of(st), path, dest, err);
}

static int nr_stat(wk_storage *st, const char *path, wk_storage_info *out, wk_error *err)
{
    return wk_storage_stat(inner_of(st), path, out, err);
}

static int nr_list(wk_storage *st, const char *dir, const char *prefix, wk_storage_list_cb cb,
                   void *arg, wk_error *err)
{
    return wk_storage_list(inner_of(st), dir, prefix, cb, arg, err);
}

static int nr_remove(wk_storage *st, const char *path, wk_error *err)
{
    return wk_storage_remove(inner_of(st), path, err);
}

static void nr_free(wk_storage *st)
{
    wk_storage_free(inner_of(st));
    free(st);
}

static const wk_storage_ops no_retarget_ops = {
    .put_open = nr_put_open,
    .get = nr_get,
    .stat = nr_stat,
    .list = nr_list,
    .remove = nr_remove,
    .free = nr_free,
};

START_TEST(test_push_two_pass_without_retarget)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    no_retarget_storage *nr = calloc(1, sizeof(*nr));
    ck_assert_ptr_nonnull(nr);
    nr->base.ops = &no_retarget_ops;
    nr->inner = repo->storage;
    repo->storage = &nr->base;
    ck_assert(!wk_storage_can_retarget(repo->storage));

    char name[64], path[512], hex[WK_FINGERPRINT_HEX_LEN + 1], expected[256];
    ts_segment spec = default_spec(3, 7);
    size_t len = 0;
    uint8_t *data = make_segment(&spec, name, path, &len);
    wk_push_result res;
    ck_assert_msg(wk_archive_push(repo, path, &res, &err) == 0, "%s", err.message);
    ck_assert(!res.already_archived);
    fingerprint_hex_of(data, len, hex);
    snprintf(expected, sizeof(expected), "wal/0000000100000000/%s-%s.i.zst", name, hex);
    ck_assert_str_eq(res.object, expected);
    ck_assert_int_eq(count_objects(), 1);

    ck_assert_int_eq(wk_archive_push(repo, path, &res, &err), 0);
    ck_assert(res.already_archived);
    wk_fetch_result fr;
    ck_assert_msg(wk_archive_fetch(repo, name, dest_path("RECOVERYXLOG"), NO_RETRY, &fr, &err) == 0,
                  "%s", err.message);
    assert_file_bytes(dest_path("RECOVERYXLOG"), data, len);
    free(data);
    wk_repo_free(repo);
}
END_TEST

/* Writers of different content under one name, started at the same moment, many rounds:
 * exactly one push succeeds each round, the others get the conflict, one object is stored
 * per name and fetch restores the winner's bytes. */
START_TEST(test_concurrent_different_content)
{
    enum { ROUNDS = 30, WRITERS = 3 };
    /* Segment 1 first, so that the repository exists before the writers race. */
    char name[64];
    wk_push_result res;
    wk_repo *first = open_repo();
    free(push_segment(first, 1, 1, name, &res));
    wk_repo_free(first);
    for (int round = 0; round < ROUNDS; round++) {
        char dirs[WRITERS][600], paths[WRITERS][700];
        uint8_t *data[WRITERS];
        int go[2];
        pid_t pids[WRITERS];
        ck_assert_int_eq(pipe(go), 0);
        for (int w = 0; w < WRITERS; w++) {
            snprintf(dirs[w], sizeof(dirs[w]), "%s/writer%d-%d", tmp_dir, round, w);
            ck_assert_int_eq(mkdir(dirs[w], 0700), 0);
            ts_segment spec =
                default_spec(2 + (uint64_t)round, 100 + (unsigned)(round * WRITERS + w));
            size_t len;
            data[w] = ts_make_segment(dirs[w], &spec, name, paths[w], &len);
            pids[w] = fork();
            ck_assert_int_ge(pids[w], 0);
            if (pids[w] == 0) {
                char c;
                close(go[1]);
                wk_repo *repo = open_repo();
                if (read(go[0], &c, 1) != 0)
                    _exit(9);
                wk_error err = {0};
                wk_push_result r;
                int rc = wk_archive_push(repo, paths[w], &r, &err);
                _exit(rc == 0 ? 0 : err.code == WK_ERR_CONFLICT ? 2 : 1);
            }
        }
        close(go[0]);
        close(go[1]); /* every writer starts now */
        int won = -1, conflicts = 0;
        for (int w = 0; w < WRITERS; w++) {
            int status;
            ck_assert_int_eq(waitpid(pids[w], &status, 0), pids[w]);
            ck_assert(WIFEXITED(status));
            int code = WEXITSTATUS(status);
            ck_assert_msg(code == 0 || code == 2, "round %d writer %d exited %d", round, w, code);
            if (code == 0) {
                ck_assert_msg(won < 0, "round %d: writers %d and %d both succeeded", round, won, w);
                won = w;
            } else {
                conflicts++;
            }
        }
        ck_assert_msg(won >= 0, "round %d: no writer succeeded", round);
        ck_assert_int_eq(conflicts, WRITERS - 1);
        /* What fetch restores is the winner's content. */
        wk_repo *repo = open_repo();
        char dest[700];
        wk_fetch_result fr;
        wk_error err = {0};
        snprintf(dest, sizeof(dest), "%s/%s", dest_dir, name);
        ck_assert_msg(wk_archive_fetch(repo, name, dest, 0, &fr, &err) == 0, "%s", err.message);
        size_t got_len;
        uint8_t *got = (uint8_t *)ts_read_file(dest, &got_len);
        ck_assert_uint_eq(got_len, SEG);
        ck_assert_int_eq(memcmp(got, data[won], SEG), 0);
        free(got);
        wk_repo_free(repo);
        for (int w = 0; w < WRITERS; w++)
            free(data[w]);
    }
    ck_assert_int_eq(count_objects(), 1 + ROUNDS);
    ck_assert_int_eq(count_claims(), 1 + ROUNDS);
}
END_TEST

/* A claim left by a writer killed between its claim and its commit: the same content is
 * stored on the next push, other content is refused, and a damaged claim is an error. */
START_TEST(test_claim_without_object)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64], path[512], claim_path[700], hex[WK_FINGERPRINT_HEX_LEN + 1];
    wk_push_result res;
    free(push_segment(repo, 1, 1, name, &res));
    ts_segment spec = default_spec(2, 2);
    size_t len;
    uint8_t *data = make_segment(&spec, name, path, &len);
    fingerprint_hex_of(data, len, hex);
    snprintf(claim_path, sizeof(claim_path), "%s/wal/%.16s/%s-claim", repo_dir, name, name);
    char text[64];
    snprintf(text, sizeof(text), "%s\n", hex);
    ts_write_text(claim_path, text);
    /* A claim alone is no archived segment: not found, not in the archive's index. */
    wk_wal_object found;
    ck_assert_int_eq(wk_archive_find(repo, name, &found, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    wk_wal_index index;
    ck_assert_int_eq(wk_archive_index(repo, TS_SEG, &index, &err), 0);
    ck_assert(wk_archive_index_has(&index, 1, 1));
    ck_assert(!wk_archive_index_has(&index, 1, 2));
    wk_archive_index_free(&index);
    ck_assert_msg(wk_archive_push(repo, path, &res, &err) == 0, "%s", err.message);
    ck_assert(!res.already_archived);
    ck_assert_int_eq(count_objects(), 2);

    /* Another content of segment 3 under a claim of the content above. */
    free(data);
    spec = default_spec(3, 3);
    data = make_segment(&spec, name, path, &len);
    snprintf(claim_path, sizeof(claim_path), "%s/wal/%.16s/%s-claim", repo_dir, name, name);
    ts_write_text(claim_path, text);
    ck_assert_int_eq(wk_archive_push(repo, path, &res, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFLICT);
    ck_assert_msg(strstr(err.message, "already archived with different content") != NULL, "%s",
                  err.message);
    ck_assert_int_eq(count_objects(), 2);
    ts_write_text(claim_path, "not a fingerprint\n");
    ck_assert_int_eq(wk_archive_push(repo, path, &res, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_int_eq(count_objects(), 2);
    free(data);
    wk_repo_free(repo);
}
END_TEST

/* An object moved under another segment's name (plain and encrypted): fetch proves what
 * it decoded is not the file asked for, fails as corrupt and leaves nothing at dest. */
START_TEST(test_fetch_refuses_swapped_object)
{
    for (int encrypted = 0; encrypted < 2; encrypted++) {
        wk_error err = {0};
        if (encrypted)
            ck_assert_int_eq(ts_tmpdir_remove(repo_dir), 0); /* a new, encrypted repository */
        wk_repo *repo = open_repo_with(WK_COMPRESS_LZ4, encrypted ? key_path : NULL);
        char name1[64], name2[64], file1[700], file2[700], moved[800], dest[700];
        wk_push_result r1, r2;
        uint64_t base = 10 + (uint64_t)encrypted * 10;
        free(push_segment(repo, base, 1, name1, &r1));
        free(push_segment(repo, base + 1, 2, name2, &r2));
        repo_object_file(r1.object, file1, sizeof(file1));
        repo_object_file(r2.object, file2, sizeof(file2));
        /* Segment base + 1's object, renamed to segment base's, fingerprint and all. */
        const char *dash = strrchr(file2, '-');
        snprintf(moved, sizeof(moved), "%.*s%s%s", (int)(strrchr(file1, '/') - file1 + 1), file1,
                 name1, dash);
        ck_assert_int_eq(unlink(file1), 0);
        ck_assert_int_eq(rename(file2, moved), 0);
        snprintf(dest, sizeof(dest), "%s/%s", dest_dir, name1);
        wk_fetch_result fr;
        ck_assert_int_eq(wk_archive_fetch(repo, name1, dest, 0, &fr, &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
        /* Plain: the page header gives it away; encrypted: the object is bound to its place
         * and fails authentication before any byte reaches the header check. */
        const char *why = encrypted ? "moved from another place than" : "its first page is at";
        ck_assert_msg(strstr(err.message, why) != NULL, "%s", err.message);
        ck_assert(!ts_path_exists(dest));
        ck_assert_int_eq(ts_count_entries(dest_dir), 0);
        wk_repo_free(repo);
    }
}
END_TEST

/* Fetch answers "not found" only when it is certain: a folder or an unknown suffix under
 * the name, or a repository whose wal/ holds nothing, are errors. */
START_TEST(test_fetch_not_found_only_when_certain)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64], dest[700], path[800];
    wk_wal_object obj;
    /* An initialised repository without any WAL: wal/ missing. */
    wk_repo_meta meta = {.system_identifier = TS_SYSID, .seg_size = TS_SEG, .pg_version = 15};
    ck_assert_msg(wk_repo_open_meta(repo, &meta, &meta, NULL, &err) == 0, "%s", err.message);
    ck_assert_int_eq(wk_archive_find(repo, "000000010000000000000001", &obj, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_msg(strstr(err.message, "holds no WAL at all") != NULL, "%s", err.message);
    /* Once WAL is there, a name without an object is certainly missing. */
    wk_push_result res;
    free(push_segment(repo, 1, 1, name, &res));
    ck_assert_int_eq(wk_archive_find(repo, "000000010000000000000002", &obj, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    /* A folder under a name, and an object with a suffix walkeep does not write. */
    snprintf(path, sizeof(path), "%s/wal/0000000100000000/000000010000000000000002-x", repo_dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(wk_archive_find(repo, "000000010000000000000002", &obj, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_msg(strstr(err.message, "which walkeep did not write") != NULL, "%s", err.message);
    snprintf(path, sizeof(path),
             "%s/wal/0000000100000000/000000010000000000000003-"
             "0123456789abcdef0123456789abcdef.gz",
             repo_dir);
    ts_write_text(path, "x");
    ck_assert_int_eq(wk_archive_find(repo, "000000010000000000000003", &obj, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    snprintf(dest, sizeof(dest), "%s/%s", dest_dir, "000000010000000000000003");
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(repo, "000000010000000000000003", dest, 0, &fr, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert(!ts_path_exists(dest));
    wk_repo_free(repo);
}
END_TEST

/* A fetch killed mid-write leaves its hidden temporary beside the destination; the next
 * fetch into the folder removes those whose writer is gone (and no others). */
START_TEST(test_fetch_removes_dead_temporaries)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64], dead[700], live[700];
    wk_push_result res;
    free(push_segment(repo, 1, 1, name, &res));
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    snprintf(dead, sizeof(dead), "%s/.%s.tmp.%ld.0", dest_dir, name, (long)child);
    snprintf(live, sizeof(live), "%s/.%s.tmp.%ld.0", dest_dir, name, (long)getppid());
    ts_write_file(dead, "half", 4);
    ts_write_file(live, "busy", 4);
    wk_fetch_result fr;
    ck_assert_msg(wk_archive_fetch(repo, name, dest_path("RECOVERYXLOG"), 0, &fr, &err) == 0, "%s",
                  err.message);
    ck_assert(!ts_path_exists(dead));
    ck_assert(ts_path_exists(live));
    wk_repo_free(repo);
}
END_TEST

/* A re-push of a name whose stored object is damaged (truncated, or a symbolic link put
 * in its place) replaces the object with the good copy instead of answering "already
 * archived": PostgreSQL would then recycle the only good copy. */
START_TEST(test_repush_repairs_damaged_object)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64], path[512], file[700], other[700];
    wk_push_result res;
    uint8_t *data = push_segment(repo, 1, 1, name, &res);
    snprintf(path, sizeof(path), "%s/%s", wal_dir, name);
    repo_object_file(res.object, file, sizeof(file));
    for (int round = 0; round < 2; round++) {
        if (round == 0) {
            ck_assert_int_eq(truncate(file, 100), 0);
        } else {
            snprintf(other, sizeof(other), "%s/elsewhere", tmp_dir);
            ts_write_text(other, "not an object");
            ck_assert_int_eq(unlink(file), 0);
            ck_assert_int_eq(symlink(other, file), 0);
        }
        wk_fetch_result fr;
        ck_assert_int_eq(wk_archive_fetch(repo, name, dest_path("bad"), 0, &fr, &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
        wk_push_result again;
        ck_assert_msg(wk_archive_push(repo, path, &again, &err) == 0, "%s", err.message);
        ck_assert(!again.already_archived);
        ck_assert_str_eq(again.object, res.object);
        struct stat sb;
        ck_assert_int_eq(lstat(file, &sb), 0);
        ck_assert(S_ISREG(sb.st_mode));
        ck_assert_msg(wk_archive_fetch(repo, name, dest_path("good"), 0, &fr, &err) == 0, "%s",
                      err.message);
        assert_file_bytes(dest_path("good"), data, SEG);
        unlink(dest_path("good"));
        ck_assert_int_eq(count_objects(), 1);
    }
    free(data);
    wk_repo_free(repo);
}
END_TEST

/* A promoted server archives its history file before any segment: a new repository takes
 * its identity from the data directory (PG_VERSION, a segment of its pg_wal) instead of
 * refusing the file forever. Outside a data directory's pg_wal the refusal stays. */
START_TEST(test_history_initialises_new_repository)
{
    wk_error err = {0};
    char path[600], other[600];
    snprintf(path, sizeof(path), "%s/PG_VERSION", tmp_dir);
    ts_write_text(path, "15\n");
    ts_segment spec = default_spec(7, 1);
    free(make_segment(&spec, NULL, NULL, NULL));
    snprintf(other, sizeof(other), "%s/00000002.history", tmp_dir);
    ts_write_text(other, "1\t0/7000000\tno recovery target specified\n");
    wk_repo *repo = open_repo();
    wk_push_result res;
    ck_assert_int_eq(wk_archive_push(repo, other, &res, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    snprintf(path, sizeof(path), "%s/00000002.history", wal_dir);
    ts_write_text(path, "1\t0/7000000\tno recovery target specified\n");
    ck_assert_msg(wk_archive_push(repo, path, &res, &err) == 0, "%s", err.message);
    ck_assert(res.initialized_repo);
    wk_repo_meta meta;
    ck_assert_int_eq(wk_repo_read_meta(repo, &meta, &err), 0);
    ck_assert_uint_eq(meta.system_identifier, TS_SYSID);
    ck_assert_uint_eq(meta.seg_size, TS_SEG);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_push_twice_already_archived)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64], path[512];
    wk_push_result first, second;
    uint8_t *data = push_segment(repo, 1, 1, name, &first);
    snprintf(path, sizeof(path), "%s/%s", wal_dir, name);
    char file[512];
    repo_object_file(first.object, file, sizeof(file));
    struct stat before, after;
    ck_assert_int_eq(stat(file, &before), 0);

    ck_assert_msg(wk_archive_push(repo, path, &second, &err) == 0, "%s", err.message);
    ck_assert(second.already_archived);
    ck_assert(!second.initialized_repo);
    ck_assert_uint_eq(second.stored_bytes, 0);
    ck_assert_uint_eq(second.bytes, SEG);
    ck_assert_str_eq(second.object, first.object);
    ck_assert_int_eq(count_objects(), 1);
    ck_assert_int_eq(stat(file, &after), 0);
    ck_assert_uint_eq(after.st_ino, before.st_ino);
    free(data);

    /* A second repository handle (another archive_command run) agrees. */
    wk_repo *again = open_repo();
    ck_assert_int_eq(wk_archive_push(again, path, &second, &err), 0);
    ck_assert(second.already_archived);
    wk_repo_free(again);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_push_conflict_keeps_stored_copy)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64], path[512];
    wk_push_result res;
    uint8_t *data = push_segment(repo, 1, 1, name, &res);
    char file[512];
    repo_object_file(res.object, file, sizeof(file));
    size_t stored_len = 0;
    char *stored = ts_read_file(file, &stored_len);

    /* Same name, one byte of different content. */
    ts_segment spec = default_spec(1, 2);
    uint8_t *other = make_segment(&spec, name, path, NULL);
    wk_push_result res2;
    ck_assert_int_eq(wk_archive_push(repo, path, &res2, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFLICT);
    ck_assert(!res2.already_archived);
    ck_assert_int_eq(count_objects(), 1);
    assert_file_bytes(file, stored, stored_len);

    /* Even a single flipped bit is a conflict. */
    memcpy(other, data, SEG);
    other[SEG - 1] ^= 1;
    ts_write_file(path, other, SEG);
    ck_assert_int_eq(wk_archive_push(repo, path, &res2, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFLICT);
    ck_assert_int_eq(count_objects(), 1);
    assert_file_bytes(file, stored, stored_len);

    /* The original still fetches as it was. */
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(repo, name, dest_path("x"), NO_RETRY, &fr, &err), 0);
    assert_file_bytes(dest_path("x"), data, SEG);
    free(stored);
    free(other);
    free(data);
    wk_repo_free(repo);
}
END_TEST

/* Pushes a file that must be refused with code and leaves no object. */
static void assert_push_refused(wk_repo *repo, const char *path, wk_errcode code)
{
    wk_error err = {0};
    wk_push_result res;
    int before = count_objects();
    ck_assert_int_eq(wk_archive_push(repo, path, &res, &err), -1);
    ck_assert_msg(err.code == code, "%s: got %s (%s), want %s", path, wk_errcode_name(err.code),
                  err.message, wk_errcode_name(code));
    ck_assert_str_ne(err.message, "");
    ck_assert_int_eq(count_objects(), before);
    ck_assert(!res.already_archived);
}

START_TEST(test_push_wrong_size_refused)
{
    char meta[400];
    snprintf(meta, sizeof(meta), "%s/%s", repo_dir, WK_REPO_META_PATH);
    static const size_t sizes[] = {SEG - 1, SEG + 1, SEG / 2, 100, 39, 1};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        wk_repo *repo = open_repo();
        char name[64], path[512];
        ts_segment spec = default_spec(3, 3);
        spec.size = sizes[i];
        free(make_segment(&spec, name, path, NULL));
        assert_push_refused(repo, path, WK_ERR_CORRUPT);
        /* Checked before anything is written: not even the metadata. */
        ck_assert(!ts_path_exists(meta));
        unlink(path);
        wk_repo_free(repo);
    }
    /* An empty file. */
    wk_repo *repo = open_repo();
    char path[512];
    snprintf(path, sizeof(path), "%s/000000010000000000000003", wal_dir);
    ts_write_file(path, "", 0);
    assert_push_refused(repo, path, WK_ERR_CORRUPT);
    ck_assert(!ts_path_exists(meta));
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_push_wrong_pageaddr_refused)
{
    wk_repo *repo = open_repo();
    char name[64], path[512];
    ts_segment spec = default_spec(3, 3);
    spec.set_pageaddr = true;
    spec.pageaddr = 4 * (uint64_t)SEG; /* the next segment's */
    free(make_segment(&spec, name, path, NULL));
    assert_push_refused(repo, path, WK_ERR_CORRUPT);
    spec.pageaddr = 2 * (uint64_t)SEG; /* the previous one's */
    free(make_segment(&spec, name, path, NULL));
    assert_push_refused(repo, path, WK_ERR_CORRUPT);
    spec.pageaddr = 3 * (uint64_t)SEG + 8192; /* not a segment start */
    free(make_segment(&spec, name, path, NULL));
    assert_push_refused(repo, path, WK_ERR_CORRUPT);
    spec.pageaddr = 3 * (uint64_t)SEG + ((uint64_t)1 << 32); /* other log id */
    free(make_segment(&spec, name, path, NULL));
    assert_push_refused(repo, path, WK_ERR_CORRUPT);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_push_bad_header_refused)
{
    wk_repo *repo = open_repo();
    char name[64], path[512];
    ts_segment spec = default_spec(3, 3);
    uint8_t *data = make_segment(&spec, name, path, NULL);
    data[0] = 0x00; /* unknown magic */
    data[1] = 0x00;
    ts_write_file(path, data, SEG);
    assert_push_refused(repo, path, WK_ERR_CORRUPT);
    free(data);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_push_timeline_above_name_refused)
{
    wk_repo *repo = open_repo();
    char name[64], path[512];
    ts_segment spec = default_spec(3, 3);
    spec.header_tli = 2; /* the name says timeline 1 */
    free(make_segment(&spec, name, path, NULL));
    assert_push_refused(repo, path, WK_ERR_CORRUPT);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_push_other_cluster_refused)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64], path[512];
    wk_push_result res;
    free(push_segment(repo, 1, 1, name, &res));
    char meta[400];
    snprintf(meta, sizeof(meta), "%s/%s", repo_dir, WK_REPO_META_PATH);
    char *meta_before = ts_read_file(meta, NULL);

    ts_segment spec = default_spec(2, 2);
    spec.sysid = OTHER_SYSID;
    free(make_segment(&spec, name, path, NULL));
    assert_push_refused(repo, path, WK_ERR_CLUSTER);
    char *meta_after = ts_read_file(meta, NULL);
    ck_assert_str_eq(meta_before, meta_after);
    free(meta_before);
    free(meta_after);

    /* The same name from the right cluster goes through afterwards. */
    spec.sysid = 0;
    free(make_segment(&spec, name, path, NULL));
    ck_assert_msg(wk_archive_push(repo, path, &res, &err) == 0, "%s", err.message);
    ck_assert_int_eq(count_objects(), 2);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_push_bad_paths)
{
    wk_repo *repo = open_repo();
    char path[512];
    /* Not a WAL name. */
    snprintf(path, sizeof(path), "%s/RECOVERYXLOG", wal_dir);
    ts_write_file(path, "x", 1);
    assert_push_refused(repo, path, WK_ERR_USAGE);
    snprintf(path, sizeof(path), "%s/000000010000000000000001.tmp", wal_dir);
    ts_write_file(path, "x", 1);
    assert_push_refused(repo, path, WK_ERR_USAGE);
    /* A WAL name that is a folder. */
    snprintf(path, sizeof(path), "%s/000000010000000000000004", wal_dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    assert_push_refused(repo, path, WK_ERR_USAGE);
    /* A WAL name that does not exist. */
    snprintf(path, sizeof(path), "%s/000000010000000000000005", wal_dir);
    assert_push_refused(repo, path, WK_ERR_IO);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_push_fifo_refused_without_hanging)
{
    /* Something that is not a regular file must be refused, not waited on: a FIFO
     * under a WAL name would otherwise block archive_command for ever. The push runs
     * in a child so that a hang shows up as a failure instead of a timeout. */
    char path[512];
    snprintf(path, sizeof(path), "%s/000000010000000000000007", wal_dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        wk_error err = {0};
        wk_push_result res;
        wk_repo *repo = open_repo();
        int rc = wk_archive_push(repo, path, &res, &err);
        wk_repo_free(repo);
        _exit(rc == -1 && err.code == WK_ERR_USAGE ? 0 : 1);
    }
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 300 && done == 0; i++) {
        done = waitpid(pid, &status, WNOHANG);
        if (done == 0) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        teardown(); /* a failing test skips the checked teardown */
        ck_abort_msg("wk_archive_push blocked for 3 s opening a FIFO named like a WAL segment");
    }
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "a FIFO was not refused with WK_ERR_USAGE");
    ck_assert_int_eq(count_objects(), 0);
}
END_TEST

START_TEST(test_push_partial_segment)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64], path[512];
    ts_segment spec = default_spec(6, 6);
    spec.suffix = ".partial";
    uint8_t *data = make_segment(&spec, name, path, NULL);
    ck_assert_str_eq(name, "000000010000000000000006.partial");
    wk_push_result res;
    ck_assert_msg(wk_archive_push(repo, path, &res, &err) == 0, "%s", err.message);
    ck_assert_ptr_nonnull(
        strstr(res.object, "wal/0000000100000000/000000010000000000000006.partial-"));
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(repo, name, dest_path("p"), NO_RETRY, &fr, &err), 0);
    assert_file_bytes(dest_path("p"), data, SEG);
    /* The full segment of that name is a different file: not found. */
    ck_assert_int_eq(
        wk_archive_fetch(repo, "000000010000000000000006", dest_path("q"), NO_RETRY, &fr, &err),
        -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    free(data);
    wk_repo_free(repo);
}
END_TEST

/* ---- fetch ---------------------------------------------------------------------------- */

START_TEST(test_fetch_roundtrip)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64];
    wk_push_result res;
    uint8_t *data = push_segment(repo, 1, 1, name, &res);
    wk_fetch_result fr;
    memset(&fr, 0xFF, sizeof(fr));
    ck_assert_msg(wk_archive_fetch(repo, name, dest_path("RECOVERYXLOG"), NO_RETRY, &fr, &err) == 0,
                  "%s", err.message);
    assert_file_bytes(dest_path("RECOVERYXLOG"), data, SEG);
    ck_assert_uint_eq(fr.bytes, SEG);
    ck_assert_uint_eq(fr.stored_bytes, res.stored_bytes);
    ck_assert_int_eq(fr.attempts, 1);
    ck_assert_str_eq(fr.object, res.object);
    /* Nothing but the destination beside it. */
    ck_assert_int_eq(ts_count_entries(dest_dir), 1);

    /* A fresh handle fetches too, and an existing destination is replaced. */
    ts_write_file(dest_path("RECOVERYXLOG"), "old", 3);
    wk_repo *again = open_repo();
    ck_assert_int_eq(wk_archive_fetch(again, name, dest_path("RECOVERYXLOG"), NO_RETRY, &fr, &err),
                     0);
    assert_file_bytes(dest_path("RECOVERYXLOG"), data, SEG);
    ck_assert_int_eq(ts_count_entries(dest_dir), 1);
    wk_repo_free(again);
    free(data);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_fetch_missing_name)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64];
    wk_push_result res;
    free(push_segment(repo, 1, 1, name, &res));
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(repo, "000000010000000000000002", dest_path("RECOVERYXLOG"),
                                      NO_RETRY, &fr, &err),
                     -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    ck_assert(!ts_path_exists(dest_path("RECOVERYXLOG")));
    ck_assert_int_eq(ts_count_entries(dest_dir), 0);
    /* An existing destination is left alone. */
    ts_write_file(dest_path("RECOVERYXLOG"), "keep", 4);
    ck_assert_int_eq(wk_archive_fetch(repo, "00000001000000000000000F", dest_path("RECOVERYXLOG"),
                                      NO_RETRY, &fr, &err),
                     -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    assert_file_bytes(dest_path("RECOVERYXLOG"), "keep", 4);
    /* Another timeline, a history file, a backup file: all simply not there. */
    static const char *const absent[] = {"000000020000000000000001", "00000002.history",
                                         "000000010000000000000001.00000028.backup",
                                         "000000010000000000000001.partial"};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
        ck_assert_int_eq(wk_archive_fetch(repo, absent[i], dest_path("other"), NO_RETRY, &fr, &err),
                         -1);
        ck_assert_msg(err.code == WK_ERR_NOTFOUND, "%s: %s", absent[i], wk_errcode_name(err.code));
        ck_assert(!ts_path_exists(dest_path("other")));
    }
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_fetch_invalid_name)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64];
    wk_push_result res;
    free(push_segment(repo, 1, 1, name, &res));
    static const char *const bad[] = {
        "",
        "RECOVERYXLOG",
        "../walkeep.repo",
        "000000010000000000000001/../x",
        "00000001000000000000000g",
        "0000000100000000000000011",
        "00000000000000000000000001",
        "000000010000000000000001\n",
        "wal/0000000100000000/000000010000000000000001",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wk_fetch_result fr;
        ck_assert_int_eq(
            wk_archive_fetch(repo, bad[i], dest_path("RECOVERYXLOG"), NO_RETRY, &fr, &err), -1);
        ck_assert_msg(err.code == WK_ERR_USAGE, "\"%s\": %s", bad[i], wk_errcode_name(err.code));
        ck_assert(!ts_path_exists(dest_path("RECOVERYXLOG")));
    }
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_fetch_uninitialised_repo)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(repo, "000000010000000000000001", dest_path("RECOVERYXLOG"),
                                      NO_RETRY, &fr, &err),
                     -1);
    /* A repository that was never initialised is a configuration problem: PostgreSQL
     * must not take it for "no more WAL". */
    ck_assert_int_ne(err.code, WK_ERR_NOTFOUND);
    ck_assert_int_eq(err.code, WK_ERR_CONFIG);
    ck_assert(!ts_path_exists(dest_path("RECOVERYXLOG")));
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_fetch_corrupt_object)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64];
    wk_push_result res;
    free(push_segment(repo, 1, 1, name, &res));
    char file[512];
    repo_object_file(res.object, file, sizeof(file));
    size_t len = 0;
    char *orig = ts_read_file(file, &len);
    /* Payload bytes, the magic and the content checksum. (Some frame-header bits, such
     * as the window size, may change without changing the plaintext; the fingerprint
     * is what guarantees the bytes, so those are not probed.) */
    size_t offsets[] = {len / 2, 0, 100, len - 1};
    for (size_t k = 0; k < sizeof(offsets) / sizeof(offsets[0]); k++) {
        char *copy = malloc(len);
        memcpy(copy, orig, len);
        copy[offsets[k]] ^= 0x10;
        ts_write_file(file, copy, len);
        wk_fetch_result fr;
        int rc = wk_archive_fetch(repo, name, dest_path("RECOVERYXLOG"), NO_RETRY, &fr, &err);
        if (rc == 0) {
            /* Allowed only where the flip hit the frame's own content checksum, which
             * fetch leaves to the stronger fingerprint check that just passed. */
            ck_assert_msg(offsets[k] >= len - 4, "flip at %zu of %zu accepted", offsets[k], len);
            ck_assert_int_eq(unlink(dest_path("RECOVERYXLOG")), 0);
            free(copy);
            continue;
        }
        ck_assert_msg(err.code == WK_ERR_CORRUPT, "flip at %zu: %s (%s)", offsets[k],
                      wk_errcode_name(err.code), err.message);
        ck_assert(!ts_path_exists(dest_path("RECOVERYXLOG")));
        ck_assert_int_eq(ts_count_entries(dest_dir), 0);
        free(copy);
    }
    /* Truncated. */
    ts_write_file(file, orig, len - 1);
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(repo, name, dest_path("RECOVERYXLOG"), NO_RETRY, &fr, &err),
                     -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_int_eq(ts_count_entries(dest_dir), 0);
    free(orig);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_fetch_raw_object_tampered)
{
    /* Without compression or encryption only the fingerprint stands between a flipped
     * byte and PostgreSQL. */
    wk_error err = {0};
    wk_repo *repo = open_repo_with(WK_COMPRESS_NONE, NULL);
    char name[64];
    wk_push_result res;
    free(push_segment(repo, 1, 1, name, &res));
    ck_assert_ptr_nonnull(strstr(res.object, ".raw"));
    char file[512];
    repo_object_file(res.object, file, sizeof(file));
    size_t len = 0;
    char *orig = ts_read_file(file, &len);
    ck_assert_uint_eq(len, SEG);
    orig[len / 2] ^= 1;
    ts_write_file(file, orig, len);
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(repo, name, dest_path("RECOVERYXLOG"), NO_RETRY, &fr, &err),
                     -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_int_eq(ts_count_entries(dest_dir), 0);
    free(orig);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_fetch_dest_folder_missing)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64], dest[512];
    wk_push_result res;
    free(push_segment(repo, 1, 1, name, &res));
    snprintf(dest, sizeof(dest), "%s/no-such-folder/RECOVERYXLOG", dest_dir);
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(repo, name, dest, NO_RETRY, &fr, &err), -1);
    /* Our failure, never "no such WAL file". */
    ck_assert_int_ne(err.code, WK_ERR_NOTFOUND);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_fetch_uses_object_codec)
{
    wk_error err = {0};
    wk_repo *lz4 = open_repo_with(WK_COMPRESS_LZ4, NULL);
    char name[64];
    wk_push_result res;
    uint8_t *data = push_segment(lz4, 1, 1, name, &res);
    ck_assert_ptr_nonnull(strstr(res.object, ".lz4"));
    wk_repo_free(lz4);
    /* A configuration changed to zstd still reads what lz4 wrote, and pushing the same
     * file again is recognised as archived whatever the codec. */
    wk_repo *zstd = open_repo_with(WK_COMPRESS_ZSTD, NULL);
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(zstd, name, dest_path("x"), NO_RETRY, &fr, &err), 0);
    assert_file_bytes(dest_path("x"), data, SEG);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", wal_dir, name);
    ck_assert_int_eq(wk_archive_push(zstd, path, &res, &err), 0);
    ck_assert(res.already_archived);
    ck_assert_int_eq(count_objects(), 1);
    free(data);
    wk_repo_free(zstd);
}
END_TEST

START_TEST(test_encrypted_push_fetch)
{
    wk_error err = {0};
    wk_repo *repo = open_repo_with(WK_COMPRESS_ZSTD, key_path);
    char name[64];
    wk_push_result res;
    uint8_t *data = push_segment(repo, 1, 1, name, &res);
    char object[WK_OBJECT_PATH_MAX];
    snprintf(object, sizeof(object), "%s", res.object);
    size_t n = strlen(object);
    ck_assert_uint_gt(n, 8);
    ck_assert_str_eq(object + n - 8, ".zst.enc");
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(repo, name, dest_path("x"), NO_RETRY, &fr, &err), 0);
    assert_file_bytes(dest_path("x"), data, SEG);

    /* Without the key: refused as a key problem, nothing written. */
    wk_repo *nokey = open_repo();
    ck_assert_int_eq(wk_archive_fetch(nokey, name, dest_path("y"), NO_RETRY, &fr, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_KEY);
    ck_assert(!ts_path_exists(dest_path("y")));
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", wal_dir, name);
    ck_assert_int_eq(wk_archive_push(nokey, path, &res, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_KEY);
    wk_repo_free(nokey);

    /* An object without the .enc suffix in an encrypted repository is refused. */
    char from[512], to[512];
    repo_object_file(object, from, sizeof(from));
    snprintf(to, sizeof(to), "%.*s", (int)(strlen(from) - 4), from);
    ck_assert_int_eq(rename(from, to), 0);
    ck_assert_int_eq(wk_archive_fetch(repo, name, dest_path("z"), NO_RETRY, &fr, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert(!ts_path_exists(dest_path("z")));
    free(data);
    wk_repo_free(repo);
}
END_TEST

/* ---- history and backup files ---------------------------------------------------------- */

static const char history_text[] = "1\t0/3000158\tno recovery target specified\n";

START_TEST(test_history_push_fetch)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64], path[512];
    wk_push_result res;
    free(push_segment(repo, 1, 1, name, &res));
    snprintf(path, sizeof(path), "%s/00000002.history", wal_dir);
    ts_write_file(path, history_text, strlen(history_text));
    ck_assert_msg(wk_archive_push(repo, path, &res, &err) == 0, "%s", err.message);
    ck_assert(!res.already_archived);
    ck_assert(!res.initialized_repo);
    ck_assert_uint_eq(res.bytes, strlen(history_text));
    ck_assert_int_eq(strncmp(res.object, "wal/00000002.history-", 21), 0);
    ck_assert_int_eq(count_objects(), 2);

    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(repo, "00000002.history", dest_path("RECOVERYHISTORY"),
                                      NO_RETRY, &fr, &err),
                     0);
    assert_file_bytes(dest_path("RECOVERYHISTORY"), history_text, strlen(history_text));
    ck_assert_int_eq(ts_count_entries(dest_dir), 1);

    /* Again: already archived. Different text under the same name: conflict. */
    ck_assert_int_eq(wk_archive_push(repo, path, &res, &err), 0);
    ck_assert(res.already_archived);
    static const char other[] = "1\t0/3000160\tno recovery target specified\n";
    ts_write_file(path, other, strlen(other));
    ck_assert_int_eq(wk_archive_push(repo, path, &res, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFLICT);
    ck_assert_int_eq(count_objects(), 2);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_history_malformed_refused)
{
    wk_repo *repo = open_repo();
    char name[64], path[512];
    wk_push_result res;
    free(push_segment(repo, 1, 1, name, &res));
    static const char *const bad[] = {
        "",
        "garbage\n",
        "2\t0/3000158\tnot below its own timeline\n",
        "1\tnot-an-lsn\treason\n",
        "\x01\x02\x03",
    };
    snprintf(path, sizeof(path), "%s/00000002.history", wal_dir);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ts_write_file(path, bad[i], strlen(bad[i]));
        assert_push_refused(repo, path, WK_ERR_CORRUPT);
    }
    ck_assert_int_eq(count_objects(), 1);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_history_into_uninitialised_repo)
{
    /* A history file carries no identity: it cannot initialise a repository. */
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char path[512], meta[400];
    snprintf(path, sizeof(path), "%s/00000002.history", wal_dir);
    ts_write_file(path, history_text, strlen(history_text));
    wk_push_result res;
    ck_assert_int_eq(wk_archive_push(repo, path, &res, &err), -1);
    ck_assert_int_ne(err.code, WK_ERR_NONE);
    snprintf(meta, sizeof(meta), "%s/%s", repo_dir, WK_REPO_META_PATH);
    ck_assert(!ts_path_exists(meta));
    ck_assert_int_eq(count_objects(), 0);
    wk_repo_free(repo);
}
END_TEST

static const char backup_text[] = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
                                  "STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n"
                                  "CHECKPOINT LOCATION: 0/2000060\n"
                                  "BACKUP METHOD: streamed\n"
                                  "BACKUP FROM: primary\n"
                                  "START TIME: 2024-01-01 00:00:00 UTC\n"
                                  "LABEL: test\n"
                                  "START TIMELINE: 1\n"
                                  "STOP TIME: 2024-01-01 00:00:01 UTC\n"
                                  "STOP TIMELINE: 1\n";

START_TEST(test_backup_push_fetch)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64], path[512];
    wk_push_result res;
    free(push_segment(repo, 2, 1, name, &res));
    const char *bname = "000000010000000000000002.00000028.backup";
    snprintf(path, sizeof(path), "%s/%s", wal_dir, bname);
    ts_write_file(path, backup_text, strlen(backup_text));
    ck_assert_msg(wk_archive_push(repo, path, &res, &err) == 0, "%s", err.message);
    static const char prefix[] = "wal/0000000100000000/000000010000000000000002.00000028.backup-";
    ck_assert_int_eq(strncmp(res.object, prefix, sizeof(prefix) - 1), 0);
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(repo, bname, dest_path("b"), NO_RETRY, &fr, &err), 0);
    assert_file_bytes(dest_path("b"), backup_text, strlen(backup_text));
    /* The segment of the same number is still its own object. */
    ck_assert_int_eq(wk_archive_fetch(repo, name, dest_path("s"), NO_RETRY, &fr, &err), 0);
    ck_assert_int_eq(count_objects(), 2);

    /* Not backup history text: refused. */
    const char *other = "000000010000000000000002.00000100.backup";
    snprintf(path, sizeof(path), "%s/%s", wal_dir, other);
    ts_write_file(path, "hello\n", 6);
    assert_push_refused(repo, path, WK_ERR_CORRUPT);
    ts_write_file(path, "", 0);
    assert_push_refused(repo, path, WK_ERR_CORRUPT);
    wk_repo_free(repo);
}
END_TEST

/* ---- find ------------------------------------------------------------------------------ */

static void copy_file(const char *from, const char *to)
{
    size_t len = 0;
    char *data = ts_read_file(from, &len);
    ts_write_file(to, data, len);
    free(data);
}

START_TEST(test_find_conflict)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64];
    wk_push_result res;
    uint8_t *data = push_segment(repo, 1, 1, name, &res);
    wk_wal_object obj;
    ck_assert_int_eq(wk_archive_find(repo, name, &obj, &err), 0);
    ck_assert_str_eq(obj.path, res.object);
    ck_assert_int_eq(obj.alg, WK_COMPRESS_ZSTD);
    ck_assert(!obj.encrypted);
    char hex[WK_FINGERPRINT_HEX_LEN + 1];
    fingerprint_hex_of(data, SEG, hex);
    char got[WK_FINGERPRINT_HEX_LEN + 1];
    wk_fingerprint_hex(&obj.fingerprint, got);
    ck_assert_str_eq(got, hex);

    /* A second object claiming the name under another fingerprint. */
    char from[512], to[512];
    repo_object_file(res.object, from, sizeof(from));
    snprintf(to, sizeof(to), "%s/wal/0000000100000000/%s-%s.zst", repo_dir, name,
             "0123456789abcdef0123456789abcdef");
    copy_file(from, to);
    wk_wal_object sentinel;
    memset(&sentinel, 0x5A, sizeof(sentinel));
    obj = sentinel;
    ck_assert_int_eq(wk_archive_find(repo, name, &obj, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFLICT);
    ck_assert_int_eq(memcmp(&obj, &sentinel, sizeof(obj)), 0);

    /* Fetch refuses to pick one; push of either content refuses too. */
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(repo, name, dest_path("x"), NO_RETRY, &fr, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFLICT);
    ck_assert(!ts_path_exists(dest_path("x")));
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", wal_dir, name);
    ck_assert_int_eq(wk_archive_push(repo, path, &res, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CONFLICT);
    free(data);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_find_same_fingerprint_twice_is_no_conflict)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64];
    wk_push_result res;
    uint8_t *data = push_segment(repo, 1, 1, name, &res);
    wk_repo_free(repo);
    /* The same content stored again by an lz4 configuration (a copy of the object under
     * the same fingerprint with another codec suffix). */
    wk_repo *lz4 = open_repo_with(WK_COMPRESS_LZ4, NULL);
    char hex[WK_FINGERPRINT_HEX_LEN + 1], object[256];
    fingerprint_hex_of(data, SEG, hex);
    snprintf(object, sizeof(object), "wal/0000000100000000/%s-%s.lz4", name, hex);
    wk_stage *sink = NULL;
    ck_assert_int_eq(wk_repo_put_open(lz4, object, WK_PUT_NOREPLACE, NULL, NULL, NULL, &sink, &err),
                     0);
    ck_assert_int_eq(wk_stage_write(sink, data, SEG, &err), 0);
    ck_assert_int_eq(wk_stage_finish(sink, &err), 0);
    wk_stage_free(sink);
    wk_wal_object obj;
    ck_assert_int_eq(wk_archive_find(lz4, name, &obj, &err), 0);
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(lz4, name, dest_path("x"), NO_RETRY, &fr, &err), 0);
    assert_file_bytes(dest_path("x"), data, SEG);
    free(data);
    wk_repo_free(lz4);
}
END_TEST

START_TEST(test_find_ignores_foreign_entries)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    char name[64];
    wk_push_result res;
    uint8_t *data = push_segment(repo, 1, 1, name, &res);
    char dir[400], p[600];
    snprintf(dir, sizeof(dir), "%s/wal/0000000100000000", repo_dir);
    /* Entries that are not under the name's "<name>-" prefix are someone else's: ignored. */
    static const char *const foreign[] = {
        "README",
        "000000010000000000000001",
        "000000010000000000000001x0123456789abcdef0123456789abcdef.zst",
        "0000000100000000000000011-0123456789abcdef0123456789abcdef.zst",
        ".000000010000000000000001-0123456789abcdef0123456789abcdef.zst.tmp.1.1",
    };
    for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, foreign[i]);
        ts_write_file(p, "junk", 4);
    }
    wk_wal_object obj;
    ck_assert_msg(wk_archive_find(repo, name, &obj, &err) == 0, "%s", err.message);
    ck_assert_str_eq(obj.path, res.object);
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(repo, name, dest_path("x"), NO_RETRY, &fr, &err), 0);
    assert_file_bytes(dest_path("x"), data, SEG);
    /* Under the name, anything walkeep did not write is an error, never ignored: a restore
     * must not silently pick one copy among objects it cannot read. */
    static const char *const strange[] = {
        "000000010000000000000001-",
        "000000010000000000000001-0123456789abcdef0123456789abcdef",
        "000000010000000000000001-0123456789abcdef0123456789abcdef.gz",
        "000000010000000000000001-0123456789ABCDEF0123456789ABCDEF.zst",
        "000000010000000000000001-0123456789abcdef0123456789abcde.zst",
    };
    for (size_t i = 0; i < sizeof(strange) / sizeof(strange[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, strange[i]);
        ts_write_file(p, "junk", 4);
        ck_assert_int_eq(wk_archive_find(repo, name, &obj, &err), -1);
        ck_assert_msg(err.code == WK_ERR_CORRUPT, "%s: %s", strange[i], err.message);
        ck_assert_int_eq(unlink(p), 0);
    }
    /* A folder shaped like an object. */
    snprintf(p, sizeof(p), "%s/%s-fedcba9876543210fedcba9876543210.zst", dir, name);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    ck_assert_int_eq(wk_archive_find(repo, name, &obj, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_int_eq(rmdir(p), 0);
    /* Nothing for segment 2 among all that. */
    ck_assert_int_eq(wk_archive_find(repo, "000000010000000000000002", &obj, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    free(data);
    wk_repo_free(repo);
}
END_TEST

/* A segment's object carries its time index; a name without one (archived before) and
 * one with it parse alike; a malformed index is not an object walkeep wrote. */
START_TEST(test_time_index_in_name)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    ts_wal_record recs[] = {
        {TS_WAL_COMMIT, 0, 0x2d1, 0x0002e9d1c0a4b3f2, NULL, 0},
        {TS_WAL_RESTORE_POINT, 0, 0, 0x0002e9d1c0a4b400, "nightly", 0},
        {TS_WAL_ABORT, 0, 0x2f0, 0x0002e9d1c0f00011, NULL, 0},
    };
    uint8_t *wal = ts_wal_build(1, 1, 1, recs, 3);
    char path[512];
    ts_wal_write_segment(wal_dir, wal, 1, 1, 0, path);
    wk_push_result res;
    ck_assert_msg(wk_archive_push(repo, path, &res, &err) == 0, "%s", err.message);
    ck_assert_msg(strstr(res.object,
                         ".i_t0002e9d1c0a4b3f2-0002e9d1c0f00011_x000002d1-000002f0_p1.zst") != NULL,
                  "%s", res.object);
    char name[WK_WAL_FILE_NAME_MAX];
    wk_wal_object obj;
    const char *entry = strrchr(res.object, '/') + 1;
    ck_assert_int_eq(wk_archive_parse_entry(entry, name, &obj), WK_WAL_ENTRY_OBJECT);
    ck_assert_str_eq(name, "000000010000000000000001");
    ck_assert(obj.indexed);
    ck_assert_int_eq(obj.index.time_min, 0x0002e9d1c0a4b3f2);
    ck_assert_int_eq(obj.index.time_max, 0x0002e9d1c0f00011);
    ck_assert_uint_eq(obj.index.xid_min, 0x2d1);
    ck_assert_uint_eq(obj.index.xid_max, 0x2f0);
    ck_assert_uint_eq(obj.index.points, 1);
    ck_assert(!obj.index.crossing);
    /* Fetched back whole, the index is only in the name. */
    wk_fetch_result fr;
    ck_assert_int_eq(wk_archive_fetch(repo, name, dest_path("x"), NO_RETRY, &fr, &err), 0);
    assert_file_bytes(dest_path("x"), wal, TS_SEG);
    /* The listing carries it. */
    wk_wal_index index;
    ck_assert_int_eq(wk_archive_index(repo, TS_SEG, &index, &err), 0);
    const wk_wal_segment_index *si = wk_archive_index_of(&index, 1, 1);
    ck_assert_ptr_nonnull(si);
    ck_assert(si->indexed);
    ck_assert_uint_eq(si->index.points, 1);
    wk_archive_index_free(&index);
    /* Names of every form. */
    static const struct {
        const char *entry;
        wk_wal_entry kind;
        bool indexed;
    } cases[] = {
        {"000000010000000000000001-0123456789abcdef0123456789abcdef.zst", WK_WAL_ENTRY_OBJECT,
         false},
        {"000000010000000000000001-0123456789abcdef0123456789abcdef.i.lz4.enc", WK_WAL_ENTRY_OBJECT,
         true},
        {"000000010000000000000001-0123456789abcdef0123456789abcdef.i_p3_c.raw",
         WK_WAL_ENTRY_OBJECT, true},
        {"00000002.history-0123456789abcdef0123456789abcdef.zst", WK_WAL_ENTRY_OBJECT, false},
        {"00000002.history-0123456789abcdef0123456789abcdef.i.zst", WK_WAL_ENTRY_OTHER, false},
        {"000000010000000000000001-0123456789abcdef0123456789abcdef.i_t1-2.zst", WK_WAL_ENTRY_OTHER,
         false},
        {"000000010000000000000001-0123456789abcdef0123456789abcdef.i_p0.zst", WK_WAL_ENTRY_OTHER,
         false},
        {"000000010000000000000001-0123456789abcdef0123456789abcdef.i_c_p1.zst", WK_WAL_ENTRY_OTHER,
         false},
        {"000000010000000000000001-0123456789abcdef0123456789abcdef.ix.zst", WK_WAL_ENTRY_OTHER,
         false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wk_wal_entry kind = wk_archive_parse_entry(cases[i].entry, name, &obj);
        ck_assert_msg(kind == cases[i].kind, "%s: %d", cases[i].entry, (int)kind);
        if (kind == WK_WAL_ENTRY_OBJECT)
            ck_assert_msg(obj.indexed == cases[i].indexed, "%s", cases[i].entry);
    }
    free(wal);
    wk_repo_free(repo);
}
END_TEST

START_TEST(test_find_invalid_name)
{
    wk_error err = {0};
    wk_repo *repo = open_repo();
    wk_wal_object obj;
    ck_assert_int_eq(wk_archive_find(repo, "../../etc/passwd", &obj, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    /* A repository without any WAL cannot tell a file missing. */
    ck_assert_int_eq(wk_archive_find(repo, "000000010000000000000001", &obj, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    wk_repo_free(repo);
}
END_TEST

static Suite *archive_suite(void)
{
    Suite *s = suite_create("archive");

    TCase *push = tcase_create("push");
    tcase_add_checked_fixture(push, setup, teardown);
    tcase_set_timeout(push, 60);
    tcase_add_test(push, test_object_dir);
    tcase_add_test(push, test_push_initialises_and_stores);
    tcase_add_test(push, test_push_twice_already_archived);
    tcase_add_test(push, test_concurrent_different_content);
    tcase_add_test(push, test_claim_without_object);
    tcase_add_test(push, test_fetch_refuses_swapped_object);
    tcase_add_test(push, test_fetch_not_found_only_when_certain);
    tcase_add_test(push, test_fetch_removes_dead_temporaries);
    tcase_add_test(push, test_repush_repairs_damaged_object);
    tcase_add_test(push, test_history_initialises_new_repository);
    tcase_add_test(push, test_push_conflict_keeps_stored_copy);
    tcase_add_test(push, test_push_wrong_size_refused);
    tcase_add_test(push, test_push_wrong_pageaddr_refused);
    tcase_add_test(push, test_push_bad_header_refused);
    tcase_add_test(push, test_push_timeline_above_name_refused);
    tcase_add_test(push, test_push_other_cluster_refused);
    tcase_add_test(push, test_push_bad_paths);
    tcase_add_test(push, test_push_fifo_refused_without_hanging);
    tcase_add_test(push, test_push_partial_segment);
    suite_add_tcase(s, push);

    TCase *fetch = tcase_create("fetch");
    tcase_add_checked_fixture(fetch, setup, teardown);
    tcase_set_timeout(fetch, 60);
    tcase_add_test(fetch, test_fetch_roundtrip);
    tcase_add_test(fetch, test_fetch_missing_name);
    tcase_add_test(fetch, test_fetch_invalid_name);
    tcase_add_test(fetch, test_fetch_uninitialised_repo);
    tcase_add_test(fetch, test_fetch_corrupt_object);
    tcase_add_test(fetch, test_fetch_raw_object_tampered);
    tcase_add_test(fetch, test_fetch_dest_folder_missing);
    tcase_add_test(fetch, test_fetch_uses_object_codec);
    tcase_add_test(fetch, test_encrypted_push_fetch);
    suite_add_tcase(s, fetch);

    TCase *text = tcase_create("text files");
    tcase_add_checked_fixture(text, setup, teardown);
    tcase_add_test(text, test_history_push_fetch);
    tcase_add_test(text, test_history_malformed_refused);
    tcase_add_test(text, test_history_into_uninitialised_repo);
    tcase_add_test(text, test_backup_push_fetch);
    suite_add_tcase(s, text);

    TCase *find = tcase_create("find");
    tcase_add_checked_fixture(find, setup, teardown);
    tcase_add_test(find, test_find_conflict);
    tcase_add_test(find, test_find_same_fingerprint_twice_is_no_conflict);
    tcase_add_test(find, test_push_two_pass_without_retarget);
    tcase_add_test(find, test_find_ignores_foreign_entries);
    tcase_add_test(find, test_find_invalid_name);
    tcase_add_test(find, test_time_index_in_name);
    suite_add_tcase(s, find);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(archive_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
