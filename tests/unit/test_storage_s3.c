/* test_storage_s3: the S3 storage driver. MD5 (RFC 1321 vectors) always; the rest against
 * a real S3 server when S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY and
 * WALKEEP_S3_TEST_BUCKET are set (S3_REGION optional), else skipped with a note. Start one
 * with tests/s3/start-s3.sh; use S3_MIN_PART_SIZE=1024 there, since the multipart tests
 * send 256 KiB parts. Each test works under its own prefix and removes it afterwards. */
#include <arpa/inet.h>
#include <check.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "s3.h"
#include "s3xml.h"
#include "storage.h"
#include "storage_s3.h"
#include "support.h"

/* ---- live server ------------------------------------------------------------------ */

static bool live;           /* the environment names a server */
static char prefix[128];    /* of this test, inside the bucket */
static wk_storage *storage; /* on prefix, default part size */
static wk_s3 *raw;          /* a client of its own, for checks behind the driver's back */

#define PART (256 * 1024)

static void fill_options(wk_storage_s3_options *o, size_t part_size, int parallel)
{
    memset(o, 0, sizeof(*o));
    o->s3.endpoint = getenv("S3_ENDPOINT");
    o->s3.region = getenv("S3_REGION");
    o->s3.bucket = getenv("WALKEEP_S3_TEST_BUCKET");
    o->s3.access_key = getenv("S3_ACCESS_KEY");
    o->s3.secret_key = getenv("S3_SECRET_KEY");
    o->s3.retry_timeout_ms = 5000;
    o->prefix = prefix;
    o->part_size = part_size;
    o->parallel = parallel;
}

static wk_storage *open_storage(size_t part_size, int parallel)
{
    wk_storage_s3_options o;
    wk_storage *st = NULL;
    wk_error err = {0};
    fill_options(&o, part_size, parallel);
    ck_assert_msg(wk_storage_s3_open(&o, &st, &err) == 0, "open: %s", err.message);
    return st;
}

/* Every key under prefix/ (markers too) into keys (malloc'd strings); returns the count. */
static int raw_keys(const char *sub, char ***keys)
{
    char p[512], token[1200] = "", key[1200], flag[16];
    int n = 0;
    *keys = NULL;
    snprintf(p, sizeof(p), "%s/%s", prefix, sub);
    for (;;) {
        wk_s3_param params[3] = {{"list-type", "2"}, {"prefix", p}, {"continuation-token", token}};
        wk_s3_request req = {.method = "GET", .params = params, .param_count = token[0] ? 3 : 2};
        wk_s3_response resp = {0};
        wk_error err = {0};
        ck_assert_msg(wk_s3_send(raw, &req, &resp, &err) == 0, "list: %s", err.message);
        size_t pos = 0;
        while (wk_s3_xml_next(resp.body, &pos, "Key", key, sizeof(key), &err) == 1) {
            *keys = realloc(*keys, (size_t)(n + 1) * sizeof(char *));
            (*keys)[n++] = strdup(key);
        }
        pos = 0;
        bool more = wk_s3_xml_next(resp.body, &pos, "IsTruncated", flag, sizeof(flag), &err) == 1 &&
                    strcmp(flag, "true") == 0;
        pos = 0;
        if (more)
            ck_assert_int_eq(wk_s3_xml_next(resp.body, &pos, "NextContinuationToken", token,
                                            sizeof(token), &err),
                             1);
        wk_s3_response_free(&resp);
        if (!more)
            return n;
    }
}

static void free_keys(char **keys, int n)
{
    for (int i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

/* Objects under prefix/<sub>. */
static int count_objects(const char *sub)
{
    char **keys;
    int n = raw_keys(sub, &keys);
    free_keys(keys, n);
    return n;
}

/* Multipart uploads in progress under prefix/ (keys, ids into arrays when not NULL). */
static int raw_uploads(char keys[][512], char ids[][256], int max)
{
    char p[512], key[512], id[256];
    snprintf(p, sizeof(p), "%s/", prefix);
    wk_s3_param params[2] = {{"uploads", ""}, {"prefix", p}};
    wk_s3_request req = {.method = "GET", .params = params, .param_count = 2};
    wk_s3_response resp = {0};
    wk_error err = {0};
    ck_assert_msg(wk_s3_send(raw, &req, &resp, &err) == 0, "list uploads: %s", err.message);
    size_t pos = 0;
    int n = 0;
    while (wk_s3_xml_next(resp.body, &pos, "Key", key, sizeof(key), &err) == 1 &&
           wk_s3_xml_next(resp.body, &pos, "UploadId", id, sizeof(id), &err) == 1) {
        if (n < max) {
            if (keys != NULL)
                snprintf(keys[n], 512, "%s", key);
            if (ids != NULL)
                snprintf(ids[n], 256, "%s", id);
        }
        n++;
    }
    wk_s3_response_free(&resp);
    return n;
}

static void raw_send(const char *method, const char *key, const wk_s3_param *params, size_t np,
                     const void *body, size_t len, wk_s3_response *resp)
{
    wk_s3_request req = {.method = method,
                         .key = key,
                         .params = params,
                         .param_count = np,
                         .body = body,
                         .body_len = len};
    wk_error err = {0};
    ck_assert_msg(wk_s3_send(raw, &req, resp, &err) == 0, "%s %s: %s", method, key, err.message);
}

static void setup_live(void)
{
    if (!live)
        return;
    wk_error err = {0};
    snprintf(prefix, sizeof(prefix), "wk-unit/%ld-%d", (long)time(NULL), (int)getpid());
    storage = open_storage(0, 0);
    wk_storage_s3_options o;
    fill_options(&o, 0, 0);
    ck_assert_msg(wk_s3_open(&o.s3, &raw, &err) == 0, "open: %s", err.message);
}

static void teardown_live(void)
{
    if (!live)
        return;
    char keys[64][512], ids[64][256];
    int n = raw_uploads(keys, ids, 64);
    for (int i = 0; i < n && i < 64; i++) {
        wk_s3_param params[1] = {{"uploadId", ids[i]}};
        wk_s3_response resp = {0};
        raw_send("DELETE", keys[i], params, 1, NULL, 0, &resp);
        wk_s3_response_free(&resp);
    }
    char **objs;
    int m = raw_keys("", &objs);
    for (int i = 0; i < m; i++) {
        wk_s3_response resp = {0};
        raw_send("DELETE", objs[i], NULL, 0, NULL, 0, &resp);
        wk_s3_response_free(&resp);
    }
    free_keys(objs, m);
    wk_storage_free(storage);
    storage = NULL;
    wk_s3_free(raw);
    raw = NULL;
}

#define NEED_LIVE()                                                                                \
    do {                                                                                           \
        if (!live)                                                                                 \
            return;                                                                                \
    } while (0)

/* Bytes the last get_data passed into its sink, finished or not. */
static uint64_t last_get_bytes;

static int get_data(wk_storage *st, const char *path, uint8_t **out, size_t *len, wk_error *err)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    last_get_bytes = 0;
    wk_stage *sink = wk_stage_memory_new(16u << 20, &buf, &n, err);
    ck_assert_ptr_nonnull(sink);
    sink = wk_stage_count_new(sink, &last_get_bytes, err);
    ck_assert_ptr_nonnull(sink);
    int rc = wk_storage_get(st, path, sink, err);
    if (rc == 0)
        rc = wk_stage_finish(sink, err);
    wk_stage_free(sink);
    if (rc == 0) {
        *out = buf;
        *len = n;
    }
    return rc;
}

static void assert_content(wk_storage *st, const char *path, const void *data, size_t len)
{
    wk_error err = {0};
    uint8_t *buf = NULL;
    size_t n = 0;
    wk_storage_info info;
    ck_assert_msg(get_data(st, path, &buf, &n, &err) == 0, "get %s: %s", path, err.message);
    ck_assert_uint_eq(n, len);
    ck_assert(len == 0 || memcmp(buf, data, len) == 0);
    free(buf);
    ck_assert_msg(wk_storage_stat(st, path, &info, &err) == 0, "stat %s: %s", path, err.message);
    ck_assert_uint_eq(info.size, len);
}

typedef struct listing {
    int files, dirs;
    char names[64][64];
    bool is_dir[64];
    uint64_t sizes[64];
} listing;

static int collect(const char *name, bool is_dir, uint64_t size, void *arg)
{
    listing *l = arg;
    int i = l->files + l->dirs;
    if (i < 64) {
        snprintf(l->names[i], sizeof(l->names[i]), "%s", name);
        l->is_dir[i] = is_dir;
        l->sizes[i] = size;
    }
    if (is_dir)
        l->dirs++;
    else
        l->files++;
    return 0;
}

static void do_list(wk_storage *st, const char *dir, const char *pfx, listing *l)
{
    wk_error err = {0};
    memset(l, 0, sizeof(*l));
    ck_assert_msg(wk_storage_list(st, dir, pfx, collect, l, &err) == 0, "list %s: %s", dir,
                  err.message);
}

START_TEST(test_small_round_trip)
{
    NEED_LIVE();
    wk_error err = {0};
    unsigned char *data = ts_pattern(1000, 1);
    ck_assert_msg(ts_storage_put(storage, "a/b/small", data, 1000, 77, 0, &err) == 0, "put: %s",
                  err.message);
    assert_content(storage, "a/b/small", data, 1000);
    ck_assert_int_eq(ts_storage_put(storage, "a/empty", "", 0, 0, 0, &err), 0);
    assert_content(storage, "a/empty", "", 0);
    /* Replacing (without NOREPLACE) is allowed; NOSYNC is accepted. */
    ck_assert_int_eq(ts_storage_put(storage, "a/b/small", "new", 3, 0, WK_PUT_NOSYNC, &err), 0);
    assert_content(storage, "a/b/small", "new", 3);

    listing l;
    do_list(storage, "a", "", &l);
    ck_assert_int_eq(l.files, 1);
    ck_assert_int_eq(l.dirs, 1);
    for (int i = 0; i < 2; i++) {
        if (l.is_dir[i]) {
            ck_assert_str_eq(l.names[i], "b");
        } else {
            ck_assert_str_eq(l.names[i], "empty");
            ck_assert_uint_eq(l.sizes[i], 0);
        }
    }
    do_list(storage, "a/b", "", &l);
    ck_assert_int_eq(l.files, 1);
    ck_assert_str_eq(l.names[0], "small");
    ck_assert_uint_eq(l.sizes[0], 3);
    do_list(storage, "", "", &l);
    ck_assert_int_eq(l.dirs, 1);
    ck_assert_int_eq(l.files, 0);
    ck_assert_str_eq(l.names[0], "a");

    /* Invalid paths are refused before anything is sent. */
    wk_stage *sink = NULL;
    ck_assert_int_eq(wk_storage_put_open(storage, "../x", 0, &sink, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
    ck_assert_int_eq(wk_storage_put_open(storage, "a/.hidden", 0, &sink, &err), -1);
    free(data);
}
END_TEST

START_TEST(test_multipart_round_trip)
{
    NEED_LIVE();
    wk_error err = {0};
    wk_storage *st = open_storage(PART, 3);
    size_t len = 5u << 20;
    unsigned char *data = ts_pattern(len, 2);
    /* Odd chunks, so parts never line up with writes. */
    ck_assert_msg(ts_storage_put(st, "big/five", data, len, 100003, 0, &err) == 0, "put: %s",
                  err.message);
    assert_content(st, "big/five", data, len);
    /* Exactly one part is a single PUT; exactly four parts, and one byte more. */
    ck_assert_int_eq(ts_storage_put(st, "big/one", data, PART, 0, 0, &err), 0);
    assert_content(st, "big/one", data, PART);
    ck_assert_int_eq(ts_storage_put(st, "big/four", data, 4 * PART, 65536, 0, &err), 0);
    assert_content(st, "big/four", data, 4 * PART);
    ck_assert_int_eq(ts_storage_put(st, "big/four1", data, 4 * PART + 1, 0, 0, &err), 0);
    assert_content(st, "big/four1", data, 4 * PART + 1);
    /* parallel 1 works too. */
    wk_storage *st1 = open_storage(PART, 1);
    ck_assert_int_eq(ts_storage_put(st1, "big/serial", data, 3 * PART / 2, 4096, 0, &err), 0);
    assert_content(st1, "big/serial", data, 3 * PART / 2);
    wk_storage_free(st1);
    /* Nothing left behind: no upload, no marker. */
    ck_assert_int_eq(raw_uploads(NULL, NULL, 0), 0);
    ck_assert_int_eq(count_objects(".wk-uploads/"), 0);
    listing l;
    do_list(st, "big", "", &l);
    ck_assert_int_eq(l.files, 5);
    wk_storage_free(st);
    free(data);
}
END_TEST

START_TEST(test_noreplace)
{
    NEED_LIVE();
    wk_error err = {0};
    wk_storage *st = open_storage(PART, 2);
    unsigned char *data = ts_pattern(PART * 3, 3);
    ck_assert_int_eq(ts_storage_put(st, "n/x", "one", 3, 0, WK_PUT_NOREPLACE, &err), 0);
    /* Single PUT: If-None-Match. */
    ck_assert_int_eq(ts_storage_put(st, "n/x", "two", 3, 0, WK_PUT_NOREPLACE, &err), -1);
    ck_assert_msg(err.code == WK_ERR_EXISTS, "%s", err.message);
    ck_assert(strstr(err.message, "s3://") != NULL);
    assert_content(st, "n/x", "one", 3);
    /* Multipart: found before completing; the upload is aborted. */
    ck_assert_int_eq(ts_storage_put(st, "n/x", data, PART * 3, 0, WK_PUT_NOREPLACE, &err), -1);
    ck_assert_msg(err.code == WK_ERR_EXISTS, "%s", err.message);
    assert_content(st, "n/x", "one", 3);
    ck_assert_int_eq(raw_uploads(NULL, NULL, 0), 0);
    ck_assert_int_eq(count_objects(".wk-uploads/"), 0);
    /* A new key takes a NOREPLACE multipart put. */
    ck_assert_int_eq(ts_storage_put(st, "n/y", data, PART * 3, 0, WK_PUT_NOREPLACE, &err), 0);
    assert_content(st, "n/y", data, PART * 3);
    wk_storage_free(st);
    free(data);
}
END_TEST

START_TEST(test_abort_without_finish)
{
    NEED_LIVE();
    wk_error err = {0};
    wk_storage *st = open_storage(PART, 3);
    unsigned char *data = ts_pattern(PART * 4, 4);
    wk_stage *sink = NULL;
    wk_storage_info info;
    /* Multipart under way (parts sent, marker stored), then freed. */
    ck_assert_int_eq(wk_storage_put_open(st, "ab/big", 0, &sink, &err), 0);
    ck_assert_int_eq(wk_stage_write(sink, data, PART * 4, &err), 0);
    ck_assert_int_eq(raw_uploads(NULL, NULL, 0), 1);
    ck_assert_int_eq(count_objects(".wk-uploads/"), 1);
    wk_stage_free(sink);
    ck_assert_int_eq(wk_storage_stat(st, "ab/big", &info, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    ck_assert_int_eq(raw_uploads(NULL, NULL, 0), 0);
    ck_assert_int_eq(count_objects(""), 0);
    /* Single-PUT phase: nothing was ever sent. */
    sink = NULL;
    ck_assert_int_eq(wk_storage_put_open(st, "ab/small", 0, &sink, &err), 0);
    ck_assert_int_eq(wk_stage_write(sink, data, 100, &err), 0);
    wk_stage_free(sink);
    ck_assert_int_eq(wk_storage_stat(st, "ab/small", &info, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    /* A CompleteMultipartUpload the server refuses (parts below its minimum of 1024
     * bytes: EntityTooSmall): the upload is aborted, nothing shows. */
    wk_storage *tiny = open_storage(512, 2);
    ck_assert_int_eq(ts_storage_put(tiny, "ab/tiny", data, 2000, 0, 0, &err), -1);
    ck_assert_msg(err.code == WK_ERR_IO && strstr(err.message, "EntityTooSmall") != NULL, "%s",
                  err.message);
    wk_storage_free(tiny);
    ck_assert_int_eq(wk_storage_stat(st, "ab/tiny", &info, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);
    ck_assert_int_eq(raw_uploads(NULL, NULL, 0), 0);
    ck_assert_int_eq(count_objects(""), 0);
    /* Misuse after finish. */
    ck_assert_int_eq(wk_storage_put_open(st, "ab/done", 0, &sink, &err), 0);
    ck_assert_int_eq(wk_stage_finish(sink, &err), 0);
    ck_assert_int_eq(wk_stage_finish(sink, &err), 0);
    ck_assert_int_eq(wk_stage_write(sink, "x", 1, &err), -1);
    wk_stage_free(sink);
    assert_content(st, "ab/done", "", 0);
    wk_storage_free(st);
    free(data);
}
END_TEST

START_TEST(test_list_continuation)
{
    NEED_LIVE();
    wk_error err = {0};
    char path[64];
    for (int i = 0; i < 25; i++) {
        snprintf(path, sizeof(path), "many/o%02d", i);
        ck_assert_int_eq(ts_storage_put(storage, path, path, strlen(path), 0, 0, &err), 0);
    }
    ck_assert_int_eq(ts_storage_put(storage, "many/sub/x", "x", 1, 0, 0, &err), 0);
    ck_assert_int_eq(ts_storage_put(storage, "manyother", "x", 1, 0, 0, &err), 0);
    setenv("WALKEEP_S3_LIST_MAX_KEYS", "7", 1);
    wk_storage *st = open_storage(0, 0);
    unsetenv("WALKEEP_S3_LIST_MAX_KEYS");
    listing l;
    do_list(st, "many", "", &l);
    ck_assert_int_eq(l.files, 25);
    ck_assert_int_eq(l.dirs, 1);
    bool seen[25] = {false};
    for (int i = 0; i < 26; i++) {
        if (l.is_dir[i]) {
            ck_assert_str_eq(l.names[i], "sub");
            continue;
        }
        int k = atoi(l.names[i] + 1);
        ck_assert(l.names[i][0] == 'o' && k >= 0 && k < 25 && !seen[k]);
        seen[k] = true;
        ck_assert_uint_eq(l.sizes[i], 8);
    }
    do_list(st, "many", "o1", &l);
    ck_assert_int_eq(l.files, 10);
    ck_assert_int_eq(l.dirs, 0);
    do_list(st, "", "many", &l);
    ck_assert_int_eq(l.files, 1);
    ck_assert_int_eq(l.dirs, 1);
    /* A missing folder lists nothing. */
    do_list(st, "nowhere/at/all", "", &l);
    ck_assert_int_eq(l.files + l.dirs, 0);
    wk_storage_free(st);
}
END_TEST

static int stop_after_one(const char *name, bool is_dir, uint64_t size, void *arg)
{
    (void)name;
    (void)is_dir;
    (void)size;
    (*(int *)arg)++;
    return 1;
}

START_TEST(test_remove_many)
{
    NEED_LIVE();
    wk_error err = {0};
    char names[31][32];
    const char *paths[31];
    for (int i = 0; i < 30; i++) {
        snprintf(names[i], sizeof(names[i]), "rm/k%02d%s", i, i == 7 ? " & <x>" : "");
        paths[i] = names[i];
        ck_assert_int_eq(ts_storage_put(storage, paths[i], "v", 1, 0, 0, &err), 0);
    }
    snprintf(names[30], sizeof(names[30]), "rm/missing");
    paths[30] = names[30];
    int calls = 0;
    ck_assert_int_eq(wk_storage_list(storage, "rm", "", stop_after_one, &calls, &err), 0);
    ck_assert_int_eq(calls, 1);
    ck_assert_msg(wk_storage_remove_many(storage, paths, 31, &err) == 0, "remove_many: %s",
                  err.message);
    listing l;
    do_list(storage, "rm", "", &l);
    ck_assert_int_eq(l.files + l.dirs, 0);
    /* remove: a missing object is success. */
    ck_assert_int_eq(ts_storage_put(storage, "rm/one", "v", 1, 0, 0, &err), 0);
    ck_assert_int_eq(wk_storage_remove(storage, "rm/one", &err), 0);
    ck_assert_int_eq(wk_storage_remove(storage, "rm/one", &err), 0);
    ck_assert_int_eq(count_objects("rm/"), 0);
    const char *bad[] = {"rm/ok", "../x"};
    ck_assert_int_eq(wk_storage_remove_many(storage, bad, 2, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_USAGE);
}
END_TEST

START_TEST(test_missing)
{
    NEED_LIVE();
    wk_error err = {0};
    uint8_t *buf = NULL;
    size_t n = 0;
    wk_storage_info info;
    ck_assert_int_eq(get_data(storage, "no/such", &buf, &n, &err), -1);
    ck_assert_msg(err.code == WK_ERR_NOTFOUND, "%s", err.message);
    ck_assert_msg(strstr(err.message, "could not read") != NULL, "%s", err.message);
    ck_assert_int_eq(wk_storage_stat(storage, "no/such", &info, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_NOTFOUND);

    /* A missing bucket is not "not found". */
    wk_storage_s3_options o;
    wk_storage *st = NULL;
    fill_options(&o, 0, 0);
    o.s3.bucket = "walkeep-no-such-bucket-s3drv";
    ck_assert_int_eq(wk_storage_s3_open(&o, &st, &err), 0);
    ck_assert_int_eq(get_data(st, "x", &buf, &n, &err), -1);
    ck_assert_msg(err.code != WK_ERR_NOTFOUND, "%s", err.message);
    wk_storage_free(st);
}
END_TEST

/* ---- leftovers of killed writers -------------------------------------------------- */

static void self_identity(char *host, size_t hsize, char *boot, size_t bsize,
                          unsigned long long *start)
{
    char buf[1024];
    ck_assert_int_eq(gethostname(host, hsize), 0);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(boot, (int)bsize, f));
    fclose(f);
    boot[strcspn(boot, "\n")] = '\0';
    f = fopen("/proc/self/stat", "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')') + 1;
    for (int field = 3; field < 22; field++) {
        while (*p == ' ')
            p++;
        while (*p != ' ')
            p++;
    }
    *start = strtoull(p, NULL, 10);
}

/* Starts a multipart upload of rel by hand (one part of `part_bytes` when non-zero) and,
 * with marker, stores its marker naming this process with start time `start`. */
static void fake_upload(const char *rel, size_t part_bytes, bool marker, unsigned long long start,
                        char id[256])
{
    char key[512], mkey[600], host[256], boot[64], text[1500];
    unsigned long long real_start;
    wk_error err = {0};
    snprintf(key, sizeof(key), "%s/%s", prefix, rel);
    wk_s3_param create[1] = {{"uploads", ""}};
    wk_s3_response resp = {0};
    raw_send("POST", key, create, 1, NULL, 0, &resp);
    size_t pos = 0;
    ck_assert_int_eq(wk_s3_xml_next(resp.body, &pos, "UploadId", id, 256, &err), 1);
    wk_s3_response_free(&resp);
    if (part_bytes > 0) {
        unsigned char *data = ts_pattern(part_bytes, 9);
        wk_s3_param part[2] = {{"partNumber", "1"}, {"uploadId", id}};
        raw_send("PUT", key, part, 2, data, part_bytes, &resp);
        wk_s3_response_free(&resp);
        free(data);
    }
    if (!marker)
        return;
    unsigned char h[32];
    char hex[65];
    crypto_hash_sha256(h, (const unsigned char *)id, strlen(id));
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    hex[16] = '\0';
    snprintf(mkey, sizeof(mkey), "%s/.wk-uploads/%s.%s", prefix, rel, hex);
    self_identity(host, sizeof(host), boot, sizeof(boot), &real_start);
    int n =
        snprintf(text, sizeof(text), "key=%s\nupload=%s\nhost=%s\nboot=%s\npid=%ld\nstart=%llu\n",
                 key, id, host, boot, (long)getpid(), start != 0 ? start : real_start);
    raw_send("PUT", mkey, NULL, 0, text, (size_t)n, &resp);
    wk_s3_response_free(&resp);
}

typedef struct temps {
    int count;
    char paths[8][128];
    uint64_t bytes[8];
    int64_t ages[8];
} temps;

static int collect_temp(const char *path, uint64_t bytes, int64_t age, void *arg)
{
    temps *t = arg;
    if (t->count < 8) {
        snprintf(t->paths[t->count], sizeof(t->paths[0]), "%s", path);
        t->bytes[t->count] = bytes;
        t->ages[t->count] = age;
    }
    t->count++;
    return 0;
}

static int find_temp(const temps *t, const char *path)
{
    for (int i = 0; i < t->count && i < 8; i++)
        if (strcmp(t->paths[i], path) == 0)
            return i;
    return -1;
}

START_TEST(test_orphans)
{
    NEED_LIVE();
    wk_error err = {0};
    char id[256];
    temps t;
    uint64_t removed = 99;

    fake_upload("d/orphan", 2048, true, 1, id);      /* its writer is gone (start differs) */
    fake_upload("d/alive", 0, true, 0, id);          /* its writer is this process */
    fake_upload("d/deep/nomarker", 0, false, 0, id); /* nobody knows: age decides */
    fake_upload("other/x", 0, true, 1, id);          /* outside d */
    /* Markers whose upload is gone: of a dead writer here, of a writer elsewhere. */
    char ghost[300], ghost_text[600], host[256], boot[64];
    unsigned long long start;
    wk_s3_response resp = {0};
    self_identity(host, sizeof(host), boot, sizeof(boot), &start);
    snprintf(ghost, sizeof(ghost), "%s/.wk-uploads/d/ghost.0123456789abcdef", prefix);
    snprintf(ghost_text, sizeof(ghost_text),
             "key=x\nupload=y\nhost=%s\nboot=%s\npid=%ld\nstart=1\n", host, boot, (long)getpid());
    raw_send("PUT", ghost, NULL, 0, ghost_text, strlen(ghost_text), &resp);
    wk_s3_response_free(&resp);
    snprintf(ghost, sizeof(ghost), "%s/.wk-uploads/d/sub/far.0123456789abcdef", prefix);
    snprintf(ghost_text, sizeof(ghost_text),
             "key=x\nupload=y\nhost=elsewhere\nboot=b\npid=1\nstart=1\n");
    raw_send("PUT", ghost, NULL, 0, ghost_text, strlen(ghost_text), &resp);
    wk_s3_response_free(&resp);

    /* Listing: markers never show; every upload does, relative to the root. */
    listing l;
    do_list(storage, "", "", &l);
    ck_assert_int_eq(l.files + l.dirs, 0);
    memset(&t, 0, sizeof(t));
    ck_assert_msg(wk_storage_list_temporaries(storage, "", collect_temp, &t, &err) == 0, "%s",
                  err.message);
    ck_assert_int_eq(t.count, 4);
    int i = find_temp(&t, "d/orphan");
    ck_assert_int_ge(i, 0);
    ck_assert_uint_eq(t.bytes[i], 2048);
    ck_assert(t.ages[i] >= 0 && t.ages[i] < 600);
    ck_assert_int_ge(find_temp(&t, "d/alive"), 0);
    ck_assert_int_ge(find_temp(&t, "d/deep/nomarker"), 0);
    /* The same, one upload per listing page. */
    setenv("WALKEEP_S3_LIST_MAX_KEYS", "1", 1);
    wk_storage *paged = open_storage(0, 0);
    unsetenv("WALKEEP_S3_LIST_MAX_KEYS");
    memset(&t, 0, sizeof(t));
    ck_assert_msg(wk_storage_list_temporaries(paged, "", collect_temp, &t, &err) == 0, "%s",
                  err.message);
    ck_assert_int_eq(t.count, 4);
    wk_storage_free(paged);
    memset(&t, 0, sizeof(t));
    ck_assert_int_eq(wk_storage_list_temporaries(storage, "d/deep", collect_temp, &t, &err), 0);
    ck_assert_int_eq(t.count, 1);
    ck_assert_str_eq(t.paths[0], "d/deep/nomarker");

    /* A dead writer's upload goes at once; a fresh one nobody can vouch for stays. */
    ck_assert_msg(wk_storage_clean_temporaries(storage, "d", 3600, &removed, &err) == 0, "%s",
                  err.message);
    ck_assert_uint_eq(removed, 1);
    memset(&t, 0, sizeof(t));
    ck_assert_int_eq(wk_storage_list_temporaries(storage, "d", collect_temp, &t, &err), 0);
    ck_assert_int_eq(t.count, 2);
    ck_assert_int_lt(find_temp(&t, "d/orphan"), 0);
    /* The orphan's and the dead ghost's markers are gone; alive's stays, and so does the
     * young one of a writer elsewhere; other's is outside d. */
    ck_assert_int_eq(count_objects(".wk-uploads/d/"), 2);
    ck_assert_int_eq(count_objects(".wk-uploads/d/sub/"), 1);
    ck_assert_int_eq(count_objects(".wk-uploads/other/"), 1);

    /* Age 0 takes the unknown one too, never the live writer's. */
    ck_assert_int_eq(wk_storage_clean_temporaries(storage, "d", 0, &removed, &err), 0);
    ck_assert_uint_eq(removed, 1);
    memset(&t, 0, sizeof(t));
    ck_assert_int_eq(wk_storage_list_temporaries(storage, "", collect_temp, &t, &err), 0);
    ck_assert_int_eq(t.count, 2);
    ck_assert_int_ge(find_temp(&t, "d/alive"), 0);
    ck_assert_int_ge(find_temp(&t, "other/x"), 0);
    ck_assert_int_eq(count_objects(".wk-uploads/d/"), 1); /* alive's only */
    /* A missing folder is nothing to do. */
    ck_assert_int_eq(wk_storage_clean_temporaries(storage, "nowhere", 0, &removed, &err), 0);
    ck_assert_uint_eq(removed, 0);
    ck_assert_int_eq(wk_storage_clean_temporaries(storage, "../x", 0, NULL, &err), -1);
}
END_TEST

START_TEST(test_complete_aborts_earlier_attempts)
{
    NEED_LIVE();
    wk_error err = {0};
    char id_dead[256], id_alive[256];
    fake_upload("k/obj", 2048, true, 1, id_dead);    /* an earlier, killed attempt */
    fake_upload("k/obj", 0, true, 0, id_alive);      /* a live one (this process) stays */
    fake_upload("k/objother", 0, false, 0, id_dead); /* another key with the same prefix */
    wk_storage *st = open_storage(PART, 2);
    unsigned char *data = ts_pattern(PART * 2 + 5, 5);
    ck_assert_msg(ts_storage_put(st, "k/obj", data, PART * 2 + 5, 0, 0, &err) == 0, "%s",
                  err.message);
    assert_content(st, "k/obj", data, PART * 2 + 5);
    char keys[8][512], ids[8][256];
    int n = raw_uploads(keys, ids, 8);
    ck_assert_int_eq(n, 2);
    for (int i = 0; i < n; i++)
        ck_assert(strcmp(ids[i], id_alive) == 0 || strstr(keys[i], "k/objother") != NULL);
    ck_assert_int_eq(count_objects(".wk-uploads/"), 1); /* the live one's */
    wk_storage_free(st);
    free(data);
}
END_TEST

/* ---- resumed reads, against a fake server ----------------------------------------- */

/* A one-object HTTP server on 127.0.0.1 that breaks the first answer after a third of the
 * body, then answers the resumed request as the scenario says. It checks nothing of the
 * signature. */
enum { RESUME_OK, RESUME_CHANGED, RESUME_IGNORED, RESUME_NONE, RESUME_WRONG_RANGE };

typedef struct fake_server {
    int fd, port, scenario, requests;
    pthread_t thread;
    char range[4][128], if_match[4][128];
    const unsigned char *data;
    size_t len;
    const char *reply; /* when set: the whole answer to every request, whatever the scenario */
} fake_server;

static void send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

static void header_of(const char *req, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    for (const char *line = strstr(req, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        size_t n = strlen(name);
        if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
            l += n + 1;
            while (*l == ' ')
                l++;
            size_t m = strcspn(l, "\r");
            if (m >= size)
                m = size - 1;
            memcpy(out, l, m);
            out[m] = '\0';
            return;
        }
    }
}

static void *fake_main(void *arg)
{
    fake_server *f = arg;
    for (int n = 0; n < 4 || (f->reply != NULL && n < 64); n++) {
        struct pollfd pfd = {f->fd, POLLIN, 0};
        if (poll(&pfd, 1, 10000) <= 0)
            break;
        int c = accept(f->fd, NULL, NULL);
        if (c < 0)
            break;
        char req[8192];
        size_t got = 0;
        while (got < sizeof(req) - 1) {
            ssize_t r = recv(c, req + got, sizeof(req) - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL)
                break;
        }
        req[got] = '\0';
        if (n < 4) {
            header_of(req, "Range", f->range[n], sizeof(f->range[n]));
            header_of(req, "If-Match", f->if_match[n], sizeof(f->if_match[n]));
        }
        f->requests++;
        char head[512];
        size_t cut = f->len / 3;
        if (f->reply != NULL) {
            send_all(c, f->reply, strlen(f->reply));
        } else if (n == 0 || f->scenario == RESUME_IGNORED) {
            snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nETag: \"e1\"\r\n"
                     "Connection: close\r\n\r\n",
                     f->len);
            send_all(c, head, strlen(head));
            send_all(c, f->data, n == 0 ? cut : f->len);
        } else if (f->scenario == RESUME_CHANGED) {
            const char *body = "<?xml version=\"1.0\"?><Error><Code>PreconditionFailed</Code>"
                               "</Error>";
            snprintf(head, sizeof(head),
                     "HTTP/1.1 412 Precondition Failed\r\nContent-Length: %zu\r\n"
                     "Content-Type: application/xml\r\nConnection: close\r\n\r\n",
                     strlen(body));
            send_all(c, head, strlen(head));
            send_all(c, body, strlen(body));
        } else {
            /* RESUME_WRONG_RANGE: a 206 of the right length, but from the start. */
            size_t from = f->scenario == RESUME_WRONG_RANGE ? 0 : cut;
            snprintf(head, sizeof(head),
                     "HTTP/1.1 206 Partial Content\r\nContent-Length: %zu\r\n"
                     "Content-Range: bytes %zu-%zu/%zu\r\nETag: \"e1\"\r\n"
                     "Connection: close\r\n\r\n",
                     f->len - cut, from, from + f->len - cut - 1, f->len);
            send_all(c, head, strlen(head));
            send_all(c, f->data + from, f->len - cut);
        }
        close(c);
    }
    return NULL;
}

static void fake_start_reply(fake_server *f, int scenario, const unsigned char *data, size_t len,
                             const char *reply)
{
    memset(f, 0, sizeof(*f));
    f->scenario = scenario;
    f->data = data;
    f->len = len;
    f->reply = reply;
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(f->fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    ck_assert_int_eq(bind(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(f->fd, 4), 0);
    ck_assert_int_eq(getsockname(f->fd, (struct sockaddr *)&a, &alen), 0);
    f->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_start(fake_server *f, int scenario, const unsigned char *data, size_t len)
{
    fake_start_reply(f, scenario, data, len, NULL);
}

static void fake_stop(fake_server *f)
{
    shutdown(f->fd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(f->fd);
}

/* Reads "obj" from a fake server playing scenario; returns get's result. */
static int fake_get(int scenario, int retry_ms, fake_server *f, const unsigned char *data,
                    size_t len, uint8_t **out, size_t *out_len, wk_error *err)
{
    char endpoint[64];
    wk_storage_s3_options o;
    wk_storage *st = NULL;
    fake_start(f, scenario, data, len);
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", f->port);
    memset(&o, 0, sizeof(o));
    o.s3.endpoint = endpoint;
    o.s3.bucket = "b";
    o.s3.access_key = "AKIAFAKE";
    o.s3.secret_key = "fake";
    o.s3.retry_timeout_ms = retry_ms;
    o.prefix = "p";
    ck_assert_int_eq(wk_storage_s3_open(&o, &st, err), 0);
    int rc = get_data(st, "obj", out, out_len, err);
    wk_storage_free(st);
    fake_stop(f);
    return rc;
}

START_TEST(test_get_resumes)
{
    wk_error err = {0};
    fake_server f;
    size_t len = 300000, cut = len / 3;
    unsigned char *data = ts_pattern(len, 11);
    uint8_t *buf = NULL;
    size_t n = 0;
    char want[64];

    /* Broken after a third: resumed with a Range pinned to the first ETag. */
    ck_assert_msg(fake_get(RESUME_OK, 5000, &f, data, len, &buf, &n, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(n, len);
    ck_assert(memcmp(buf, data, len) == 0);
    free(buf);
    ck_assert_int_eq(f.requests, 2);
    ck_assert_str_eq(f.range[0], "");
    snprintf(want, sizeof(want), "bytes=%zu-", cut);
    ck_assert_str_eq(f.range[1], want);
    ck_assert_str_eq(f.if_match[1], "\"e1\"");

    /* Replaced meanwhile: never spliced, worth another try from the start. */
    ck_assert_int_eq(fake_get(RESUME_CHANGED, 5000, &f, data, len, &buf, &n, &err), -1);
    ck_assert_msg(err.code == WK_ERR_TRANSIENT && strstr(err.message, "changed") != NULL, "%s",
                  err.message);
    ck_assert_int_eq(f.requests, 2);

    /* A server that ignores the Range: refused before any byte of it reaches the sink. */
    ck_assert_int_eq(fake_get(RESUME_IGNORED, 5000, &f, data, len, &buf, &n, &err), -1);
    ck_assert_msg(err.code == WK_ERR_CORRUPT, "%s", err.message);
    ck_assert_uint_eq(last_get_bytes, cut);

    /* A 206 from another offset than asked: the same. */
    ck_assert_int_eq(fake_get(RESUME_WRONG_RANGE, 5000, &f, data, len, &buf, &n, &err), -1);
    ck_assert_msg(err.code == WK_ERR_CORRUPT, "%s", err.message);
    ck_assert_uint_eq(last_get_bytes, cut);
    ck_assert_int_eq(f.requests, 2);

    /* No retry budget: the break is reported, transient. */
    ck_assert_int_eq(fake_get(RESUME_NONE, 0, &f, data, len, &buf, &n, &err), -1);
    ck_assert_msg(err.code == WK_ERR_TRANSIENT, "%s", err.message);
    ck_assert_msg(strstr(err.message, "s3://b/p/obj") != NULL, "%s", err.message);
    ck_assert_int_eq(f.requests, 1);
    free(data);
}
END_TEST

static int collect_temp_none(const char *path, uint64_t bytes, int64_t age, void *arg)
{
    (void)path;
    (void)bytes;
    (void)age;
    (void)arg;
    return 0;
}

/* Runs op (0: list "", 1: list_temporaries "") against a server that answers every request
 * with status and the XML body; returns op's result. */
static int fake_listing_status(const char *status, const char *body, int op, int retry_ms,
                               fake_server *f, wk_error *err)
{
    static char reply[2048];
    char endpoint[64];
    wk_storage_s3_options o;
    wk_storage *st = NULL;
    listing l;
    snprintf(reply, sizeof(reply),
             "HTTP/1.1 %s\r\nContent-Length: %zu\r\nContent-Type: application/xml\r\n"
             "Connection: close\r\n\r\n%s",
             status, strlen(body), body);
    fake_start_reply(f, RESUME_OK, NULL, 0, reply);
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", f->port);
    memset(&o, 0, sizeof(o));
    o.s3.endpoint = endpoint;
    o.s3.bucket = "b";
    o.s3.access_key = "AKIAFAKE";
    o.s3.secret_key = "fake";
    o.s3.retry_timeout_ms = retry_ms;
    o.prefix = "p";
    ck_assert_int_eq(wk_storage_s3_open(&o, &st, err), 0);
    memset(&l, 0, sizeof(l));
    int rc = op == 0 ? wk_storage_list(st, "", "", collect, &l, err)
                     : wk_storage_list_temporaries(st, "", collect_temp_none, NULL, err);
    wk_storage_free(st);
    fake_stop(f);
    return rc;
}

static int fake_listing(const char *body, int op, fake_server *f, wk_error *err)
{
    return fake_listing_status("200 OK", body, op, 0, f, err);
}

/* A server whose truncated pages never move on: the listing fails instead of looping. */
START_TEST(test_list_bad_continuation)
{
    wk_error err = {0};
    fake_server f;
    const char *same =
        "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>p/a</Key><Size>1</Size>"
        "</Contents><NextContinuationToken>t1</NextContinuationToken></ListBucketResult>";
    ck_assert_int_eq(fake_listing(same, 0, &f, &err), -1);
    ck_assert_msg(err.code == WK_ERR_IO && strstr(err.message, "continuation") != NULL, "%s",
                  err.message);
    ck_assert_int_eq(f.requests, 2);

    const char *empty = "<ListBucketResult><IsTruncated>true</IsTruncated>"
                        "<NextContinuationToken></NextContinuationToken></ListBucketResult>";
    ck_assert_int_eq(fake_listing(empty, 0, &f, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_int_eq(f.requests, 1);

    const char *uploads = "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
                          "<NextKeyMarker>p/k</NextKeyMarker><NextUploadIdMarker>u1"
                          "</NextUploadIdMarker></ListMultipartUploadsResult>";
    ck_assert_int_eq(fake_listing(uploads, 1, &f, &err), -1);
    ck_assert_msg(err.code == WK_ERR_IO && strstr(err.message, "markers") != NULL, "%s",
                  err.message);
    ck_assert_int_eq(f.requests, 2);
}
END_TEST

/* Retries that run out on HTTP errors: the error says so (the detail survives). */
START_TEST(test_retries_detail)
{
    wk_error err = {0};
    fake_server f;
    const char *busy = "<Error><Code>SlowDown</Code></Error>";
    ck_assert_int_eq(fake_listing_status("503 Slow Down", busy, 0, 200, &f, &err), -1);
    ck_assert_msg(err.code == WK_ERR_TRANSIENT, "%s", err.message);
    ck_assert_msg(strstr(err.message, "could not list \"s3://b/p/\"") != NULL, "%s", err.message);
    ck_assert_msg(strstr(err.detail, "Gave up after") != NULL, "detail: %s", err.detail);
    ck_assert_int_ge(f.requests, 2);
}
END_TEST

static Suite *storage_s3_suite(void)
{
    Suite *s = suite_create("storage_s3");
    TCase *tc = tcase_create("md5");
    suite_add_tcase(s, tc);

    tc = tcase_create("resume");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_get_resumes);
    tcase_add_test(tc, test_list_bad_continuation);
    tcase_add_test(tc, test_retries_detail);
    suite_add_tcase(s, tc);

    tc = tcase_create("live");
    tcase_add_checked_fixture(tc, setup_live, teardown_live);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_small_round_trip);
    tcase_add_test(tc, test_multipart_round_trip);
    tcase_add_test(tc, test_noreplace);
    tcase_add_test(tc, test_abort_without_finish);
    tcase_add_test(tc, test_list_continuation);
    tcase_add_test(tc, test_remove_many);
    tcase_add_test(tc, test_missing);
    tcase_add_test(tc, test_orphans);
    tcase_add_test(tc, test_complete_aborts_earlier_attempts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    const char *need[] = {"S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY",
                          "WALKEEP_S3_TEST_BUCKET"};
    live = true;
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        if (getenv(need[i]) == NULL || getenv(need[i])[0] == '\0')
            live = false;
    if (!live)
        printf("test_storage_s3: S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY and "
               "WALKEEP_S3_TEST_BUCKET are not all set: live S3 tests skipped (they pass "
               "without checking anything)\n");
    SRunner *sr = srunner_create(storage_s3_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
