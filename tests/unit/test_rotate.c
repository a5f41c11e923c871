/* test_rotate: key rotation (lib/rotate, lib/keyring): a repository written before key
 * rings (objects under the repository key itself, unsealed records) and one with a ring
 * are rotated to a new key that alone then reads everything; sealed records refuse
 * tampering; a rotation killed at random points leaves the repository readable with the
 * old key or with the new one, and a second run completes it. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "keyring.h"
#include "repo.h"
#include "rotate.h"
#include "support.h"

#define SEGMENTS 4
#define RECORD_PATH "backups/b1/backup.json"
#define RECORD_TEXT "{\"label\": \"b1\"}\n"

static char tmp_dir[256], repo_dir[300], wal_dir[300], dest_dir[300];
static char key_old[300], key_new[300], key_third[300];

static void setup(void)
{
    wk_error err = {0};
    ts_tmpdir_make(tmp_dir, sizeof(tmp_dir), "/tmp/wk-rotate-XXXXXX");
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo", tmp_dir);
    snprintf(wal_dir, sizeof(wal_dir), "%s/pg_wal", tmp_dir);
    snprintf(dest_dir, sizeof(dest_dir), "%s/out", tmp_dir);
    snprintf(key_old, sizeof(key_old), "%s/old.key", tmp_dir);
    snprintf(key_new, sizeof(key_new), "%s/new.key", tmp_dir);
    snprintf(key_third, sizeof(key_third), "%s/third.key", tmp_dir);
    ck_assert_int_eq(mkdir(wal_dir, 0700), 0);
    ck_assert_int_eq(mkdir(dest_dir, 0700), 0);
    ck_assert_int_eq(wk_key_generate_file(key_old, &err), 0);
    ck_assert_int_eq(wk_key_generate_file(key_new, &err), 0);
    ck_assert_int_eq(wk_key_generate_file(key_third, &err), 0);
}

static void teardown(void)
{
    ts_tmpdir_remove(tmp_dir);
}

static wk_repo *open_with(const char *key)
{
    return ts_repo_open(repo_dir, WK_COMPRESS_LZ4, key);
}

/* A repository as walkeep wrote it before key rings: walkeep.repo by hand, then objects
 * (encrypted with the repository key itself) and a record, neither sealed. */
static void make_legacy_repo(void)
{
    wk_error err = {0};
    wk_repo *repo = open_with(key_old);
    uint8_t id[WK_KEY_ID_BYTES];
    wk_key_id(repo->key, id);
    char text[512], hex[2 * WK_KEY_ID_BYTES + 1];
    for (int i = 0; i < WK_KEY_ID_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    snprintf(text, sizeof(text),
             "# walkeep repository metadata: written once, do not edit\nformat = 1\n"
             "system_identifier = %llu\npg_version = 15\nwal_segment_size = %u\n"
             "encryption = xchacha20poly1305\nkey_id = %s\n",
             (unsigned long long)TS_SYSID, (unsigned)TS_SEG, hex);
    ck_assert_int_eq(
        wk_storage_put_bytes(repo->storage, "walkeep.repo", 0, text, strlen(text), &err), 0);
    for (uint64_t seg = 1; seg <= SEGMENTS; seg++)
        ts_push_segment(repo, wal_dir, 1, seg, (unsigned)seg, true);
    ck_assert_int_eq(
        wk_repo_record_write(repo, RECORD_PATH, RECORD_TEXT, strlen(RECORD_TEXT), &err), 0);
    bool sealed = true;
    ck_assert_int_eq(wk_repo_sealed(repo, &sealed, &err), 0);
    ck_assert(!sealed);
    wk_repo_free(repo);
    char mac[400];
    snprintf(mac, sizeof(mac), "%s/%s.mac", repo_dir, RECORD_PATH);
    ck_assert(!ts_path_exists(mac));
}

/* Whether everything (segments 1..last, the record) reads with key; *why says what not. */
static bool readable_with(const char *key, uint64_t last, char *why, size_t size)
{
    wk_error err = {0};
    wk_repo *repo = NULL;
    wk_config cfg = {0};
    cfg.repo = repo_dir;
    cfg.compress = WK_COMPRESS_LZ4;
    cfg.compress_level = WK_COMPRESS_LEVEL_DEFAULT;
    cfg.encrypt_key_file = (char *)key;
    bool ok = false;
    wk_repo_meta meta;
    if (wk_repo_open(&cfg, false, &repo, &err) != 0 ||
        wk_repo_open_meta(repo, NULL, &meta, NULL, &err) != 0)
        goto out;
    for (uint64_t seg = 1; seg <= last; seg++) {
        char name[32], dest[400];
        wk_wal_segment_name(name, 1, seg, TS_SEG);
        snprintf(dest, sizeof(dest), "%s/%s", dest_dir, name);
        wk_fetch_result fr;
        if (wk_archive_fetch(repo, name, dest, 0, &fr, &err) != 0)
            goto out;
        unlink(dest);
    }
    uint8_t *text = NULL;
    size_t len = 0;
    if (wk_repo_record_read(repo, RECORD_PATH, &text, &len, &err) != 0)
        goto out;
    ok = len == strlen(RECORD_TEXT) && memcmp(text, RECORD_TEXT, len) == 0;
    free(text);
out:
    snprintf(why, size, "%s", err.message);
    wk_repo_free(repo);
    return ok;
}

static void rotate_with(const char *from, const char *to, wk_rotate_result *res)
{
    wk_error err = {0};
    wk_repo *repo = open_with(from);
    wk_key *new_key = NULL;
    ck_assert_int_eq(wk_key_load(to, &new_key, &err), 0);
    ck_assert_msg(wk_rotate_key(repo, new_key, res, &err) == 0, "%s", err.message);
    wk_key_free(new_key);
    wk_repo_free(repo);
}

START_TEST(test_rotate_legacy_then_again)
{
    char why[512];
    wk_rotate_result res;
    make_legacy_repo();
    ck_assert_msg(readable_with(key_old, SEGMENTS, why, sizeof(why)), "%s", why);
    rotate_with(key_old, key_new, &res);
    ck_assert_int_eq(res.sealed, 2); /* walkeep.repo and the record */
    ck_assert(res.ring.created_ring);
    ck_assert_int_ge(res.ring.rewrapped, 2); /* the first data key and the old key itself */
    /* The new key alone reads everything, objects written before the ring too; the old
     * key opens nothing any more. */
    ck_assert_msg(readable_with(key_new, SEGMENTS, why, sizeof(why)), "%s", why);
    ck_assert(!readable_with(key_old, SEGMENTS, why, sizeof(why)));
    ck_assert_msg(strstr(why, "does not open") != NULL, "%s", why);

    /* New objects go out under a data key only the new key opens, bound to their place. */
    wk_repo *repo = open_with(key_new);
    ts_push_segment(repo, wal_dir, 1, SEGMENTS + 1, 99, true);
    wk_repo_free(repo);
    ck_assert_msg(readable_with(key_new, SEGMENTS + 1, why, sizeof(why)), "%s", why);

    /* And once more, to a third key. */
    rotate_with(key_new, key_third, &res);
    ck_assert(!res.ring.created_ring);
    ck_assert_msg(readable_with(key_third, SEGMENTS + 1, why, sizeof(why)), "%s", why);
    ck_assert(!readable_with(key_new, SEGMENTS + 1, why, sizeof(why)));
    /* Running it again, configured with the old key, finds it done. */
    rotate_with(key_new, key_third, &res);
    ck_assert_int_eq(res.ring.rewrapped, 0);
    ck_assert_int_eq(res.ring.removed, 0);
}
END_TEST

START_TEST(test_sealed_records_refuse_tampering)
{
    wk_error err = {0};
    char why[512], path[400];
    wk_repo *repo = open_with(key_old);
    ts_repo_identify(repo); /* a new repository: it starts with a ring, so it seals */
    bool sealed = false;
    ck_assert_int_eq(wk_repo_sealed(repo, &sealed, &err), 0);
    ck_assert(sealed);
    for (uint64_t seg = 1; seg <= 2; seg++)
        ts_push_segment(repo, wal_dir, 1, seg, (unsigned)seg, true);
    ck_assert_int_eq(
        wk_repo_record_write(repo, RECORD_PATH, RECORD_TEXT, strlen(RECORD_TEXT), &err), 0);
    wk_repo_free(repo);
    ck_assert_msg(readable_with(key_old, 2, why, sizeof(why)), "%s", why);
    /* A changed record. */
    snprintf(path, sizeof(path), "%s/%s", repo_dir, RECORD_PATH);
    ts_write_text(path, "{\"label\": \"b1\", \"tablespaces\": [\"/etc\"]}\n");
    ck_assert(!readable_with(key_old, 2, why, sizeof(why)));
    ck_assert_msg(strstr(why, "failed authentication") != NULL, "%s", why);
    /* A record whose MAC is gone. */
    ts_write_text(path, RECORD_TEXT);
    ck_assert_msg(readable_with(key_old, 2, why, sizeof(why)), "%s", why);
    snprintf(path, sizeof(path), "%s/%s.mac", repo_dir, RECORD_PATH);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert(!readable_with(key_old, 2, why, sizeof(why)));
    ck_assert_msg(strstr(why, "carries no MAC") != NULL, "%s", why);
    /* walkeep.repo edited. */
    snprintf(path, sizeof(path), "%s/walkeep.repo", repo_dir);
    char *meta = ts_read_file(path, NULL);
    ts_write_text(path, "# edited\n");
    repo = open_with(key_old);
    wk_repo_meta m;
    ck_assert_int_eq(wk_repo_open_meta(repo, NULL, &m, NULL, &err), -1);
    ck_assert_msg(strstr(err.message, "failed authentication") != NULL, "%s", err.message);
    wk_repo_free(repo);
    ts_write_text(path, meta);
    free(meta);
}
END_TEST

/* Kills a rotation after a random delay, many times over fresh repositories: afterwards
 * everything reads with the old key or with the new one, and a second run (configured
 * with whichever key still opens it) completes the rotation. */
START_TEST(test_rotation_killed_anywhere)
{
    char why_old[512], why_new[512];
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    int both = 0, old_only = 0, new_only = 0;
    for (int round = 0; round < 25; round++) {
        if (ts_path_exists(repo_dir))
            ck_assert_int_eq(ts_tmpdir_remove(repo_dir), 0);
        make_legacy_repo();
        pid_t child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
            wk_rotate_result res;
            wk_error err = {0};
            wk_repo *repo = open_with(key_old);
            wk_key *new_key = NULL;
            if (wk_key_load(key_new, &new_key, &err) != 0 ||
                wk_rotate_key(repo, new_key, &res, &err) != 0)
                _exit(1);
            _exit(0);
        }
        usleep((useconds_t)(rand() % 6000));
        kill(child, SIGKILL);
        ck_assert_int_eq(waitpid(child, NULL, 0), child);
        bool with_old = readable_with(key_old, SEGMENTS, why_old, sizeof(why_old));
        bool with_new = readable_with(key_new, SEGMENTS, why_new, sizeof(why_new));
        ck_assert_msg(with_old || with_new, "round %d: neither key reads the repository (%s; %s)",
                      round, why_old, why_new);
        both += with_old && with_new;
        old_only += with_old && !with_new;
        new_only += !with_old && with_new;
        /* Completed by a second run with the key that still opens it. */
        wk_rotate_result res;
        rotate_with(key_old, key_new, &res);
        ck_assert_msg(readable_with(key_new, SEGMENTS, why_new, sizeof(why_new)), "round %d: %s",
                      round, why_new);
        ck_assert(!readable_with(key_old, SEGMENTS, why_old, sizeof(why_old)));
    }
    printf("test_rotation_killed_anywhere: %d rounds readable with both keys, %d old only, %d "
           "new only\n",
           both, old_only, new_only);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rotate");
    TCase *tc = tcase_create("rotate");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_rotate_legacy_then_again);
    tcase_add_test(tc, test_sealed_records_refuse_tampering);
    tcase_add_test(tc, test_rotation_killed_anywhere);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
