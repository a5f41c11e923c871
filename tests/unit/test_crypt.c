/* test_crypt: key files (creation, permissions, parsing), and the encrypt / decrypt
 * stages: round trips over awkward sizes, the byte format, tampering and truncation. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <dirent.h>
#include <sodium.h>

#include "crypt.h"
#include "stream.h"
#include "support.h"

#define CHUNK 65536
#define ABYTES 17
#define CT_CHUNK (CHUNK + ABYTES)
#define HEADER_LEN 41

static char tmpdir[1024];

/* ---- helpers -------------------------------------------------------------------- */

static const char *tmp_path(const char *name)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

static void write_file(const char *path, const void *buf, size_t len, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    ck_assert_int_eq(fchmod(fd, mode), 0);
    ck_assert_int_eq(close(fd), 0);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ssize_t n = read(fd, buf, cap);
    ck_assert_int_ge(n, 0);
    close(fd);
    return (size_t)n;
}

static const char good_hex[] = "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210";

/* A fresh key file under name, loaded. */
static wk_key *new_key(const char *name)
{
    wk_error err = {0};
    wk_key *key = NULL;
    const char *path = tmp_path(name);
    unlink(path);
    ck_assert_msg(wk_key_generate_file(path, &err) == 0, "%s", err.message);
    ck_assert_msg(wk_key_load(path, &key, &err) == 0, "%s", err.message);
    return key;
}

static void fill_pattern(uint8_t *buf, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
}

/* Runs data through a fresh stage chain in pieces of `piece` bytes; returns 0 with the
 * sink's output, or -1 with err filled. */
static int run_stage(int encrypt, const wk_key *key, const uint8_t *data, size_t len, size_t piece,
                     uint8_t **out, size_t *out_len, wk_error *err)
{
    int rc = -1;
    *out = NULL;
    *out_len = 0;
    wk_stage *s = wk_stage_memory_new(SIZE_MAX, out, out_len, err);
    ck_assert_ptr_nonnull(s);
    s = encrypt ? wk_crypt_encrypt_new(s, key, err) : wk_crypt_decrypt_new(s, key, err);
    ck_assert_ptr_nonnull(s);
    for (size_t off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        if (wk_stage_write(s, data + off, n, err) != 0)
            goto out;
    }
    if (wk_stage_finish(s, err) != 0)
        goto out;
    rc = 0;
out:
    wk_stage_free(s);
    return rc;
}

static size_t object_size(size_t plain)
{
    return HEADER_LEN + plain / CHUNK * CT_CHUNK + plain % CHUNK + ABYTES;
}

/* Decrypting obj must fail with code. */
static void expect_decrypt_error(const wk_key *key, const uint8_t *obj, size_t len, wk_errcode code,
                                 const char *what, size_t where)
{
    wk_error err = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = run_stage(0, key, obj, len, len == 0 ? 1 : len, &out, &out_len, &err);
    free(out);
    ck_assert_msg(rc != 0, "%s at %zu was accepted", what, where);
    ck_assert_msg(err.code == code, "%s at %zu: code %s, want %s (%s)", what, where,
                  wk_errcode_name(err.code), wk_errcode_name(code), err.message);
}

/* ---- key files ------------------------------------------------------------------ */

/* No temporary of a key file named base is left in the test folder. */
static void assert_no_key_temporary(const char *base)
{
    char prefix[128];
    snprintf(prefix, sizeof(prefix), ".%s.tmp.", base);
    DIR *d = opendir(tmpdir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *de = readdir(d); de != NULL; de = readdir(d))
        ck_assert_msg(strncmp(de->d_name, prefix, strlen(prefix)) != 0, "left behind: %s",
                      de->d_name);
    closedir(d);
}

START_TEST(test_keygen_creates_0600)
{
    wk_error err = {0};
    const char *path = tmp_path("gen.key");
    struct stat st;
    char buf[128];
    wk_key *key = NULL;

    unlink(path);
    ck_assert_msg(wk_key_generate_file(path, &err) == 0, "%s", err.message);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(st.st_size, 65);
    ck_assert_int_eq(st.st_nlink, 1); /* the temporary it was linked from is gone */
    assert_no_key_temporary("gen.key");
    ck_assert_int_eq(read_file(path, buf, sizeof(buf)), 65);
    for (int i = 0; i < 64; i++)
        ck_assert_msg(strchr("0123456789abcdef", buf[i]) != NULL, "digit %d", i);
    ck_assert_int_eq(buf[64], '\n');
    ck_assert_msg(wk_key_load(path, &key, &err) == 0, "%s", err.message);
    wk_key_free(key);
}
END_TEST

START_TEST(test_keygen_keys_differ)
{
    wk_key *a = new_key("a.key");
    wk_key *b = new_key("b.key");
    uint8_t ida[WK_KEY_ID_BYTES], idb[WK_KEY_ID_BYTES];
    wk_key_id(a, ida);
    wk_key_id(b, idb);
    ck_assert_mem_ne(ida, idb, WK_KEY_ID_BYTES);
    wk_key_free(a);
    wk_key_free(b);
}
END_TEST

START_TEST(test_keygen_refuses_existing)
{
    wk_error err = {0};
    const char *path = tmp_path("existing.key");
    char buf[64];
    struct stat st;

    write_file(path, "precious", 8, 0640);
    ck_assert_int_eq(wk_key_generate_file(path, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    ck_assert_ptr_nonnull(strstr(err.message, "existing.key"));
    ck_assert_int_eq(read_file(path, buf, sizeof(buf)), 8);
    ck_assert_mem_eq(buf, "precious", 8);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0640);
    assert_no_key_temporary("existing.key");
}
END_TEST

START_TEST(test_keygen_refuses_symlink)
{
    wk_error err = {0};
    char target[PATH_MAX];
    snprintf(target, sizeof(target), "%s", tmp_path("symlink-target.key"));
    const char *link = tmp_path("dangling.key");
    unlink(target);
    unlink(link);
    ck_assert_int_eq(symlink(target, link), 0);
    ck_assert_int_eq(wk_key_generate_file(link, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_EXISTS);
    ck_assert_int_eq(access(target, F_OK), -1);
    assert_no_key_temporary("dangling.key");
}
END_TEST

START_TEST(test_keygen_missing_folder)
{
    wk_error err = {0};
    ck_assert_int_eq(wk_key_generate_file(tmp_path("no/such/folder.key"), &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_IO);
    ck_assert_int_eq(err.sys_errno, ENOENT);
}
END_TEST

static const mode_t bad_modes[] = {0640, 0604, 0644, 0660, 0602, 0610, 0601, 0666};

START_TEST(test_load_refuses_loose_mode)
{
    wk_error err = {0};
    wk_key *key = NULL;
    const char *path = tmp_path("loose.key");
    char content[80];
    snprintf(content, sizeof(content), "%s\n", good_hex);
    write_file(path, content, 65, bad_modes[_i]);
    ck_assert_int_eq(wk_key_load(path, &key, &err), -1);
    ck_assert_ptr_null(key);
    ck_assert_int_eq(err.code, WK_ERR_KEY);
    ck_assert_ptr_nonnull(strstr(err.message, "group or world access"));
    ck_assert_ptr_nonnull(strstr(err.message, path));
    ck_assert_ptr_nonnull(strstr(err.hint, "chmod 0600"));
    ck_assert_ptr_null(strstr(err.message, good_hex));
    ck_assert_ptr_null(strstr(err.detail, good_hex));
}
END_TEST

START_TEST(test_load_accepts_owner_only)
{
    wk_error err = {0};
    wk_key *key = NULL;
    const char *path = tmp_path("owner.key");
    char content[80];
    snprintf(content, sizeof(content), "%s\n", good_hex);
    write_file(path, content, 65, 0400);
    ck_assert_msg(wk_key_load(path, &key, &err) == 0, "%s", err.message);
    wk_key_free(key);
}
END_TEST

START_TEST(test_load_refuses_non_regular)
{
    wk_error err = {0};
    wk_key *key = NULL;
    const char *dir = tmp_path("keydir");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(wk_key_load(dir, &key, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_KEY);
    ck_assert_ptr_nonnull(strstr(err.message, "not a regular file"));

    /* A FIFO must be refused without blocking on open. */
    const char *fifo = tmp_path("key.fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(wk_key_load(fifo, &key, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_KEY);
    ck_assert_ptr_null(key);
}
END_TEST

START_TEST(test_load_missing)
{
    wk_error err = {0};
    wk_key *key = NULL;
    ck_assert_int_eq(wk_key_load(tmp_path("does-not-exist.key"), &key, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_KEY);
    ck_assert_int_eq(err.sys_errno, ENOENT);
    ck_assert_ptr_null(key);
}
END_TEST

/* Contents that are not a key; %s is replaced by good_hex where it appears. */
static const char *const bad_contents[] = {
    "",
    "\n",
    "00112233445566778899aabbccddeeff0123456789abcdeffedcba987654321\n", /* 63 */
    "00112233445566778899aabbccddeeff0123456789abcdeffedcba987654321",
    "%s0\n", /* 65 digits */
    "%s0",
    "%s\n\n",
    "%s\r\n",
    "%s ",
    " %s",
    "%s\nx",
    "00112233445566778899aabbccddeeff0123456789abcdeffedcba987654321g\n",
    "g0112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210\n",
    "00112233445566778899aabbccddeeff 123456789abcdeffedcba9876543210\n",
    "0x112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210\n",
};

START_TEST(test_load_refuses_bad_content)
{
    wk_error err = {0};
    wk_key *key = NULL;
    const char *path = tmp_path("bad.key");
    char content[256];
    const char *fmt = bad_contents[_i];
    if (strstr(fmt, "%s") != NULL) {
        const char *at = strstr(fmt, "%s");
        snprintf(content, sizeof(content), "%.*s%s%s", (int)(at - fmt), fmt, good_hex, at + 2);
    } else {
        snprintf(content, sizeof(content), "%s", fmt);
    }
    write_file(path, content, strlen(content), 0600);
    ck_assert_int_eq(wk_key_load(path, &key, &err), -1);
    ck_assert_ptr_null(key);
    ck_assert_int_eq(err.code, WK_ERR_KEY);
    /* Never any part of the content in the message. */
    ck_assert_ptr_null(strstr(err.message, "0011223344"));
    ck_assert_ptr_null(strstr(err.detail, "0011223344"));
    ck_assert_ptr_null(strstr(err.hint, "0011223344"));
}
END_TEST

START_TEST(test_load_accepts_forms)
{
    wk_error err = {0};
    wk_key *a = NULL, *b = NULL, *c = NULL;
    char content[80];
    uint8_t ida[WK_KEY_ID_BYTES], idb[WK_KEY_ID_BYTES], idc[WK_KEY_ID_BYTES];

    snprintf(content, sizeof(content), "%s\n", good_hex);
    write_file(tmp_path("nl.key"), content, 65, 0600);
    ck_assert_msg(wk_key_load(tmp_path("nl.key"), &a, &err) == 0, "%s", err.message);

    write_file(tmp_path("nonl.key"), good_hex, 64, 0600);
    ck_assert_msg(wk_key_load(tmp_path("nonl.key"), &b, &err) == 0, "%s", err.message);

    for (int i = 0; i < 64; i++)
        content[i] = (char)(content[i] >= 'a' ? content[i] - 'a' + 'A' : content[i]);
    write_file(tmp_path("upper.key"), content, 65, 0600);
    ck_assert_msg(wk_key_load(tmp_path("upper.key"), &c, &err) == 0, "%s", err.message);

    wk_key_id(a, ida);
    wk_key_id(b, idb);
    wk_key_id(c, idc);
    ck_assert_mem_eq(ida, idb, WK_KEY_ID_BYTES);
    ck_assert_mem_eq(ida, idc, WK_KEY_ID_BYTES);
    wk_key_free(a);
    wk_key_free(b);
    wk_key_free(c);
    wk_key_free(NULL);
}
END_TEST

START_TEST(test_load_symlink)
{
    wk_error err = {0};
    wk_key *key = NULL;
    char content[80];
    char target[PATH_MAX];
    snprintf(content, sizeof(content), "%s\n", good_hex);

    /* A link is followed; the file it leads to is what must be private. */
    snprintf(target, sizeof(target), "%s", tmp_path("link-target.key"));
    write_file(target, content, 65, 0600);
    unlink(tmp_path("link.key"));
    ck_assert_int_eq(symlink(target, tmp_path("link.key")), 0);
    ck_assert_msg(wk_key_load(tmp_path("link.key"), &key, &err) == 0, "%s", err.message);
    wk_key_free(key);
    key = NULL;

    ck_assert_int_eq(chmod(target, 0644), 0);
    ck_assert_int_eq(wk_key_load(tmp_path("link.key"), &key, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_KEY);
    ck_assert_ptr_nonnull(strstr(err.message, "group or world access"));
}
END_TEST

START_TEST(test_key_id_definition)
{
    wk_error err = {0};
    wk_key *key = NULL;
    char content[80];
    uint8_t raw[32], full[16], id[WK_KEY_ID_BYTES];
    snprintf(content, sizeof(content), "%s\n", good_hex);
    write_file(tmp_path("id.key"), content, 65, 0600);
    ck_assert_int_eq(wk_key_load(tmp_path("id.key"), &key, &err), 0);
    ck_assert_int_eq(sodium_hex2bin(raw, sizeof(raw), good_hex, 64, NULL, NULL, NULL), 0);
    /* BLAKE2b-128 keyed with the key over the context string, first 8 bytes. */
    crypto_generichash(full, sizeof(full), (const unsigned char *)"walkeep key id v1", 17, raw,
                       sizeof(raw));
    wk_key_id(key, id);
    ck_assert_mem_eq(id, full, WK_KEY_ID_BYTES);
    wk_key_free(key);
}
END_TEST

/* ---- round trips ---------------------------------------------------------------- */

static const size_t rt_sizes[] = {0, 1, 65535, 65536, 65537, 131072, 131073, 16 * 1024 * 1024};
static const size_t rt_pieces[] = {1, 17, 65553, 1024 * 1024};

START_TEST(test_round_trip)
{
    size_t size = rt_sizes[_i];
    wk_key *key = new_key("rt.key");
    uint8_t *plain = malloc(size + 1);
    ck_assert_ptr_nonnull(plain);
    fill_pattern(plain, size, size);

    for (size_t p = 0; p < sizeof(rt_pieces) / sizeof(rt_pieces[0]); p++) {
        wk_error err = {0};
        uint8_t *obj = NULL, *back = NULL;
        size_t obj_len = 0, back_len = 0;
        /* Decrypt in another piece size than encrypt, to shift the alignment. */
        size_t enc_piece = rt_pieces[p];
        size_t dec_piece = rt_pieces[(p + 1) % 4];
        ck_assert_msg(run_stage(1, key, plain, size, enc_piece, &obj, &obj_len, &err) == 0, "%s",
                      err.message);
        ck_assert_uint_eq(obj_len, object_size(size));
        ck_assert_msg(run_stage(0, key, obj, obj_len, dec_piece, &back, &back_len, &err) == 0,
                      "size %zu piece %zu: %s", size, enc_piece, err.message);
        ck_assert_uint_eq(back_len, size);
        ck_assert_msg(size == 0 || memcmp(back, plain, size) == 0, "size %zu differs", size);
        free(obj);
        free(back);
    }
    free(plain);
    wk_key_free(key);
}
END_TEST

START_TEST(test_encryptions_differ)
{
    wk_error err = {0};
    wk_key *key = new_key("differ.key");
    uint8_t plain[1000];
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    fill_pattern(plain, sizeof(plain), 7);
    ck_assert_int_eq(run_stage(1, key, plain, sizeof(plain), 1000, &a, &alen, &err), 0);
    ck_assert_int_eq(run_stage(1, key, plain, sizeof(plain), 1000, &b, &blen, &err), 0);
    ck_assert_uint_eq(alen, blen);
    /* Same walkeep header, other secretstream header, other ciphertext. */
    ck_assert_mem_eq(a, b, 17);
    ck_assert_mem_ne(a + 17, b + 17, 24);
    ck_assert_mem_ne(a + HEADER_LEN, b + HEADER_LEN, alen - HEADER_LEN);
    free(a);
    free(b);
    wk_key_free(key);
}
END_TEST

START_TEST(test_free_without_finish)
{
    wk_error err = {0};
    wk_key *key = new_key("abort.key");
    uint8_t *out = NULL;
    size_t out_len = 0;
    uint8_t buf[100000] = {0};
    wk_stage *s = wk_stage_memory_new(SIZE_MAX, &out, &out_len, &err);
    s = wk_crypt_encrypt_new(s, key, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(wk_stage_write(s, buf, sizeof(buf), &err), 0);
    wk_stage_free(s);
    s = wk_stage_memory_new(SIZE_MAX, &out, &out_len, &err);
    s = wk_crypt_decrypt_new(s, key, &err);
    ck_assert_ptr_nonnull(s);
    wk_stage_free(s);
    ck_assert_ptr_null(out);
    wk_key_free(key);
}
END_TEST

/* ---- the byte format ------------------------------------------------------------ */

/* Decodes an object with bare libsodium calls, following docs/format.md ("Encryption"). */
START_TEST(test_format_by_hand)
{
    wk_error err = {0};
    wk_key *key = NULL;
    char content[80];
    uint8_t raw[32], id[WK_KEY_ID_BYTES];
    snprintf(content, sizeof(content), "%s\n", good_hex);
    write_file(tmp_path("fmt.key"), content, 65, 0600);
    ck_assert_int_eq(wk_key_load(tmp_path("fmt.key"), &key, &err), 0);
    ck_assert_int_eq(sodium_hex2bin(raw, sizeof(raw), good_hex, 64, NULL, NULL, NULL), 0);
    wk_key_id(key, id);

    size_t size = 2 * CHUNK + 5;
    uint8_t *plain = malloc(size);
    uint8_t *obj = NULL;
    size_t obj_len = 0;
    fill_pattern(plain, size, 3);
    ck_assert_int_eq(run_stage(1, key, plain, size, 4096, &obj, &obj_len, &err), 0);
    ck_assert_uint_eq(obj_len, HEADER_LEN + 2 * CT_CHUNK + 5 + ABYTES);

    ck_assert_mem_eq(obj, "WKEEPENC", 8);
    ck_assert_int_eq(obj[8], 1);
    ck_assert_mem_eq(obj + 9, id, 8);

    crypto_secretstream_xchacha20poly1305_state st;
    ck_assert_int_eq(crypto_secretstream_xchacha20poly1305_init_pull(&st, obj + 17, raw), 0);
    uint8_t m[CHUNK];
    unsigned long long mlen = 0;
    unsigned char tag = 0xff;
    const uint8_t *p = obj + HEADER_LEN;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(
            crypto_secretstream_xchacha20poly1305_pull(&st, m, &mlen, &tag, p, CT_CHUNK, obj, 17),
            0);
        ck_assert_uint_eq(mlen, CHUNK);
        ck_assert_int_eq(tag, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
        ck_assert_mem_eq(m, plain + i * CHUNK, CHUNK);
        p += CT_CHUNK;
    }
    ck_assert_int_eq(
        crypto_secretstream_xchacha20poly1305_pull(&st, m, &mlen, &tag, p, 5 + ABYTES, obj, 17), 0);
    ck_assert_uint_eq(mlen, 5);
    ck_assert_int_eq(tag, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    ck_assert_mem_eq(m, plain + 2 * CHUNK, 5);

    /* The 17 header bytes are authenticated: without them as additional data the
     * first chunk does not decrypt. */
    ck_assert_int_eq(crypto_secretstream_xchacha20poly1305_init_pull(&st, obj + 17, raw), 0);
    ck_assert_int_eq(crypto_secretstream_xchacha20poly1305_pull(
                         &st, m, &mlen, &tag, obj + HEADER_LEN, CT_CHUNK, NULL, 0),
                     -1);
    free(plain);
    free(obj);
    wk_key_free(key);
}
END_TEST

/* Made once by this module with good_hex as the key; pins the reader to the format. */
static const char golden_plain[] = "walkeep golden object\n";
static const char golden_hex[] = "574b454550454e43012a3d483a08e933316df2bb6b11612725c0ca8cc3a3cd64"
                                 "b00187a3dbc263693d0a1d489e1b05fed3ca64b7153babf11b914deea4d5bd54"
                                 "c087e5586747eba036d1566b879076e4";

START_TEST(test_golden_object)
{
    wk_error err = {0};
    wk_key *key = NULL;
    char content[80];
    uint8_t obj[sizeof(golden_hex) / 2];
    size_t obj_len = 0;
    uint8_t *out = NULL;
    size_t out_len = 0;
    snprintf(content, sizeof(content), "%s\n", good_hex);
    write_file(tmp_path("golden.key"), content, 65, 0600);
    ck_assert_int_eq(wk_key_load(tmp_path("golden.key"), &key, &err), 0);
    ck_assert_int_eq(
        sodium_hex2bin(obj, sizeof(obj), golden_hex, strlen(golden_hex), NULL, &obj_len, NULL), 0);
    ck_assert_uint_eq(obj_len, object_size(strlen(golden_plain)));
    ck_assert_msg(run_stage(0, key, obj, obj_len, 7, &out, &out_len, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(out_len, strlen(golden_plain));
    ck_assert_mem_eq(out, golden_plain, out_len);
    free(out);
    wk_key_free(key);
}
END_TEST

/* Builds, with bare libsodium and the good_hex key, an authentic object whose chunks
 * have the given plaintext sizes and tags; returns its length. */
static size_t forge(const wk_key *key, const size_t *sizes, const unsigned char *tags, size_t count,
                    uint8_t *obj)
{
    uint8_t raw[32];
    static uint8_t zeros[CHUNK];
    crypto_secretstream_xchacha20poly1305_state st;
    unsigned long long clen = 0;
    ck_assert_int_eq(sodium_hex2bin(raw, sizeof(raw), good_hex, 64, NULL, NULL, NULL), 0);
    memcpy(obj, "WKEEPENC\001", 9);
    wk_key_id(key, obj + 9);
    crypto_secretstream_xchacha20poly1305_init_push(&st, obj + 17, raw);
    size_t len = HEADER_LEN;
    for (size_t i = 0; i < count; i++) {
        crypto_secretstream_xchacha20poly1305_push(&st, obj + len, &clen, zeros, sizes[i], obj, 17,
                                                   tags[i]);
        len += (size_t)clen;
    }
    return len;
}

START_TEST(test_tag_rules)
{
    wk_error err = {0};
    wk_key *key = NULL;
    char content[80];
    const unsigned char M = crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
    const unsigned char F = crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    const unsigned char P = crypto_secretstream_xchacha20poly1305_TAG_PUSH;
    uint8_t *obj = malloc(HEADER_LEN + 3 * CT_CHUNK);
    uint8_t *out = NULL;
    size_t out_len = 0;
    snprintf(content, sizeof(content), "%s\n", good_hex);
    write_file(tmp_path("forge.key"), content, 65, 0600);
    ck_assert_int_eq(wk_key_load(tmp_path("forge.key"), &key, &err), 0);

    /* The well-formed shape decrypts. */
    const size_t ok_sizes[] = {CHUNK, 10};
    const unsigned char ok_tags[] = {M, F};
    size_t len = forge(key, ok_sizes, ok_tags, 2, obj);
    ck_assert_msg(run_stage(0, key, obj, len, len, &out, &out_len, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(out_len, CHUNK + 10);
    free(out);

    /* A last chunk without TAG_FINAL: the stream was cut. */
    const size_t s1[] = {CHUNK, 10};
    const unsigned char t1[] = {M, M};
    len = forge(key, s1, t1, 2, obj);
    expect_decrypt_error(key, obj, len, WK_ERR_CORRUPT, "short message chunk", 0);

    /* A full-size chunk tagged FINAL, alone or followed by more. */
    const size_t s2[] = {CHUNK, CHUNK};
    const unsigned char t2[] = {M, F};
    len = forge(key, s2, t2, 2, obj);
    expect_decrypt_error(key, obj, len, WK_ERR_CORRUPT, "full final chunk", 0);
    const size_t s3[] = {CHUNK, 0};
    const unsigned char t3[] = {F, F};
    len = forge(key, s3, t3, 2, obj);
    expect_decrypt_error(key, obj, len, WK_ERR_CORRUPT, "data after final", 0);

    /* Tags the format does not use. */
    const size_t s4[] = {CHUNK, 0};
    const unsigned char t4[] = {P, F};
    len = forge(key, s4, t4, 2, obj);
    expect_decrypt_error(key, obj, len, WK_ERR_CORRUPT, "push tag", 0);
    free(obj);
    wk_key_free(key);
}
END_TEST

/* ---- wrong key, tampering, truncation ------------------------------------------- */

START_TEST(test_wrong_key)
{
    wk_error err = {0};
    wk_key *a = new_key("right.key");
    wk_key *b = new_key("wrong.key");
    uint8_t plain[300], ida[8], idb[8];
    char hexa[17], hexb[17], keyhex[65];
    uint8_t *obj = NULL, *out = NULL;
    size_t obj_len = 0, out_len = 0;
    fill_pattern(plain, sizeof(plain), 1);
    ck_assert_int_eq(run_stage(1, a, plain, sizeof(plain), 300, &obj, &obj_len, &err), 0);
    for (size_t piece = 1; piece <= obj_len; piece *= 4) {
        ck_assert_int_eq(run_stage(0, b, obj, obj_len, piece, &out, &out_len, &err), -1);
        ck_assert_int_eq(err.code, WK_ERR_KEY);
        ck_assert_ptr_null(out);
    }
    wk_key_id(a, ida);
    wk_key_id(b, idb);
    sodium_bin2hex(hexa, sizeof(hexa), ida, 8);
    sodium_bin2hex(hexb, sizeof(hexb), idb, 8);
    ck_assert_ptr_nonnull(strstr(err.message, hexa));
    ck_assert_ptr_nonnull(strstr(err.message, hexb));
    ck_assert(strstr(err.message, hexa) < strstr(err.message, hexb)); /* theirs, ours */
    /* The key itself appears nowhere. */
    char file[128];
    ck_assert_int_eq(read_file(tmp_path("wrong.key"), file, sizeof(file)), 65);
    memcpy(keyhex, file, 64);
    keyhex[64] = '\0';
    ck_assert_ptr_null(strstr(err.message, keyhex));
    ck_assert_ptr_null(strstr(err.detail, keyhex));
    ck_assert_ptr_null(strstr(err.hint, keyhex));
    free(obj);
    wk_key_free(a);
    wk_key_free(b);
}
END_TEST

START_TEST(test_not_walkeep)
{
    wk_error err = {0};
    wk_key *key = new_key("magic.key");
    uint8_t *out = NULL;
    size_t out_len = 0;
    const uint8_t lz4[] = {0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7};
    /* Refused on the first byte, before anything else is buffered. */
    ck_assert_int_eq(run_stage(0, key, lz4, sizeof(lz4), 1, &out, &out_len, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_str_eq(err.message, "not a walkeep encrypted object");

    uint8_t obj[64] = "WKEEPENC\003";
    ck_assert_int_eq(run_stage(0, key, obj, sizeof(obj), 64, &out, &out_len, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_str_eq(err.message, "unsupported encryption format version 3");
    wk_key_free(key);
}
END_TEST

/* A three-chunk object: two full chunks and a final chunk of 100 bytes. */
#define TAMPER_SIZE (2 * CHUNK + 100)

START_TEST(test_tamper)
{
    wk_error err = {0};
    wk_key *key = new_key("tamper.key");
    uint8_t *plain = malloc(TAMPER_SIZE);
    uint8_t *obj = NULL;
    size_t len = 0;
    fill_pattern(plain, TAMPER_SIZE, 5);
    ck_assert_int_eq(run_stage(1, key, plain, TAMPER_SIZE, CHUNK, &obj, &len, &err), 0);
    size_t final_at = HEADER_LEN + 2 * CT_CHUNK;

    /* Every byte of the header and of the start of the first chunk. */
    for (size_t i = 0; i < 128; i++) {
        uint8_t bit = (uint8_t)(1u << (i % 8));
        obj[i] ^= bit;
        expect_decrypt_error(key, obj, len, i >= 9 && i < 17 ? WK_ERR_KEY : WK_ERR_CORRUPT,
                             "flipped bit", i);
        obj[i] ^= bit;
    }
    /* The MAC and the last byte of every chunk, the encrypted tag byte of each chunk,
     * and a byte in the middle of one. */
    const size_t spots[] = {HEADER_LEN + CT_CHUNK - 1,
                            HEADER_LEN + CT_CHUNK - 16,
                            HEADER_LEN + CT_CHUNK,
                            HEADER_LEN + CT_CHUNK + 30000,
                            final_at,
                            final_at + 1,
                            len - 17,
                            len - 16,
                            len - 1};
    for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
        obj[spots[i]] ^= 0x01;
        expect_decrypt_error(key, obj, len, WK_ERR_CORRUPT, "flipped bit", spots[i]);
        obj[spots[i]] ^= 0x01;
    }

    /* Two whole chunks swapped. */
    uint8_t *swapped = malloc(len);
    memcpy(swapped, obj, len);
    memcpy(swapped + HEADER_LEN, obj + HEADER_LEN + CT_CHUNK, CT_CHUNK);
    memcpy(swapped + HEADER_LEN + CT_CHUNK, obj + HEADER_LEN, CT_CHUNK);
    expect_decrypt_error(key, swapped, len, WK_ERR_CORRUPT, "swapped chunks", 0);

    /* A full chunk dropped: the rest no longer authenticates. */
    memcpy(swapped, obj, HEADER_LEN + CT_CHUNK);
    memcpy(swapped + HEADER_LEN + CT_CHUNK, obj + final_at, len - final_at);
    expect_decrypt_error(key, swapped, len - CT_CHUNK, WK_ERR_CORRUPT, "dropped chunk", 0);
    free(swapped);

    /* Untouched, it still decrypts. */
    uint8_t *out = NULL;
    size_t out_len = 0;
    ck_assert_int_eq(run_stage(0, key, obj, len, len, &out, &out_len, &err), 0);
    ck_assert_uint_eq(out_len, TAMPER_SIZE);
    free(out);
    free(obj);
    free(plain);
    wk_key_free(key);
}
END_TEST

/* Plaintext sizes: a short final chunk, and an empty final chunk. */
static const size_t trunc_sizes[] = {2 * CHUNK + 100, 2 * CHUNK, 0, 50};

START_TEST(test_truncation)
{
    wk_error err = {0};
    wk_key *key = new_key("trunc.key");
    size_t size = trunc_sizes[_i];
    uint8_t *plain = malloc(size + 1);
    uint8_t *obj = NULL;
    size_t len = 0;
    fill_pattern(plain, size, 9);
    ck_assert_int_eq(run_stage(1, key, plain, size, 1000, &obj, &len, &err), 0);
    size_t final_len = size % CHUNK + ABYTES;

    /* Every length inside the header and the first bytes after it. */
    for (size_t cut = 0; cut <= HEADER_LEN + ABYTES + 1 && cut < len; cut++)
        expect_decrypt_error(key, obj, cut, WK_ERR_CORRUPT, "truncated", cut);
    /* Every chunk boundary and its neighbours, places inside chunks, and the start,
     * inside and end of the final chunk. */
    for (size_t k = 0; k <= size / CHUNK; k++) {
        size_t b = HEADER_LEN + k * CT_CHUNK;
        const size_t cuts[] = {b - 1, b, b + 1, b + 16, b + 17, b + 18, b + CHUNK / 2};
        for (size_t j = 0; j < sizeof(cuts) / sizeof(cuts[0]); j++)
            if (cuts[j] < len)
                expect_decrypt_error(key, obj, cuts[j], WK_ERR_CORRUPT, "truncated", cuts[j]);
    }
    expect_decrypt_error(key, obj, len - final_len, WK_ERR_CORRUPT, "whole final chunk cut",
                         len - final_len);
    expect_decrypt_error(key, obj, len - 1, WK_ERR_CORRUPT, "truncated", len - 1);
    expect_decrypt_error(key, obj, len - 16, WK_ERR_CORRUPT, "truncated", len - 16);
    free(obj);
    free(plain);
    wk_key_free(key);
}
END_TEST

static const size_t trunc_size_count = sizeof(trunc_sizes) / sizeof(trunc_sizes[0]);

START_TEST(test_appended)
{
    wk_error err = {0};
    wk_key *key = new_key("append.key");
    size_t size = trunc_sizes[_i];
    uint8_t *plain = malloc(size + 1);
    uint8_t *obj = NULL;
    size_t len = 0;
    fill_pattern(plain, size, 11);
    ck_assert_int_eq(run_stage(1, key, plain, size, 1000, &obj, &len, &err), 0);
    size_t final_len = size % CHUNK + ABYTES;

    const size_t extras[] = {1,        16,           17,          18, 1000, CT_CHUNK - final_len,
                             CT_CHUNK, CT_CHUNK + 1, 3 * CT_CHUNK};
    for (size_t j = 0; j < sizeof(extras) / sizeof(extras[0]); j++) {
        size_t extra = extras[j];
        uint8_t *longer = calloc(1, len + extra);
        memcpy(longer, obj, len);
        fill_pattern(longer + len, extra, j);
        expect_decrypt_error(key, longer, len + extra, WK_ERR_CORRUPT, "appended", extra);
        free(longer);
    }
    /* The final chunk repeated. */
    uint8_t *twice = malloc(len + final_len);
    memcpy(twice, obj, len);
    memcpy(twice + len, obj + len - final_len, final_len);
    expect_decrypt_error(key, twice, len + final_len, WK_ERR_CORRUPT, "final chunk repeated", 0);
    free(twice);
    free(obj);
    free(plain);
    wk_key_free(key);
}
END_TEST

/* ---- main ----------------------------------------------------------------------- */

/* ---- bound objects, lookups, wrapped keys, MACs ------------------------------------ */

typedef struct lookup_ring {
    const wk_key *keys[3];
    int calls;
} lookup_ring;

static int ring_lookup(void *arg, int version, const uint8_t id[WK_KEY_ID_BYTES],
                       const wk_key **key, wk_error *err)
{
    lookup_ring *r = arg;
    (void)version;
    r->calls++;
    for (int i = 0; i < 3 && r->keys[i] != NULL; i++) {
        uint8_t have[WK_KEY_ID_BYTES];
        wk_key_id(r->keys[i], have);
        if (memcmp(have, id, WK_KEY_ID_BYTES) == 0) {
            *key = r->keys[i];
            return 0;
        }
    }
    return wk_error_set(err, WK_ERR_KEY, "no such key");
}

/* Encrypts data bound to place_w, decrypts it for place_r through the lookup. */
static int bound_round_trip(const wk_key *key, const char *place_w, const char *place_r,
                            lookup_ring *ring, const uint8_t *data, size_t len, uint8_t **plain,
                            size_t *plain_len, wk_error *err)
{
    uint8_t *obj = NULL;
    size_t obj_len = 0;
    wk_stage *s = wk_stage_memory_new(SIZE_MAX, &obj, &obj_len, err);
    s = place_w != NULL ? wk_crypt_encrypt_bound_new(s, key, place_w, err)
                        : wk_crypt_encrypt_new(s, key, err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(wk_stage_write(s, data, len, err), 0);
    ck_assert_int_eq(wk_stage_finish(s, err), 0);
    wk_stage_free(s);
    ck_assert_uint_eq(obj_len, object_size(len));
    ck_assert_int_eq(obj[8], place_w != NULL ? 2 : 1);
    s = wk_stage_memory_new(SIZE_MAX, plain, plain_len, err);
    s = wk_crypt_decrypt_bound_new(s, ring_lookup, ring, place_r, err);
    ck_assert_ptr_nonnull(s);
    int rc = -1;
    for (size_t off = 0; off < obj_len; off += 1000)
        if (wk_stage_write(s, obj + off, obj_len - off < 1000 ? obj_len - off : 1000, err) != 0)
            goto out;
    rc = wk_stage_finish(s, err);
out:
    wk_stage_free(s);
    free(obj);
    return rc;
}

START_TEST(test_bound_objects)
{
    wk_error err = {0};
    wk_key *a = new_key("bound-a.key"), *b = new_key("bound-b.key");
    size_t len = 3 * CHUNK + 7;
    uint8_t *data = malloc(len);
    fill_pattern(data, len, 5);
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    lookup_ring ring = {{b, a, NULL}, 0};
    /* Its own place: decrypts, through the lookup (key a found among b and a). */
    ck_assert_msg(bound_round_trip(a, "wal/000000010000000000000005",
                                   "wal/000000010000000000000005", &ring, data, len, &plain,
                                   &plain_len, &err) == 0,
                  "%s", err.message);
    ck_assert_uint_eq(plain_len, len);
    ck_assert_int_eq(memcmp(plain, data, len), 0);
    ck_assert_int_eq(ring.calls, 1);
    free(plain);
    plain = NULL;
    /* Moved to another place: every chunk fails, the message names the place. */
    ck_assert_int_eq(bound_round_trip(a, "wal/000000010000000000000005",
                                      "wal/000000010000000000000006", &ring, data, len, &plain,
                                      &plain_len, &err),
                     -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_ptr_nonnull(
        strstr(err.message, "moved from another place than \"wal/000000010000000000000006\""));
    free(plain);
    plain = NULL;
    /* A version 1 object still decrypts wherever it is read (it names no place). */
    ck_assert_int_eq(
        bound_round_trip(a, NULL, "anywhere", &ring, data, len, &plain, &plain_len, &err), 0);
    free(plain);
    plain = NULL;
    /* A key the lookup does not have. */
    lookup_ring only_b = {{b, NULL, NULL}, 0};
    ck_assert_int_eq(bound_round_trip(a, "p", "p", &only_b, data, len, &plain, &plain_len, &err),
                     -1);
    ck_assert_int_eq(err.code, WK_ERR_KEY);
    free(plain);
    free(data);
    wk_key_free(a);
    wk_key_free(b);
}
END_TEST

START_TEST(test_wrap_and_mac)
{
    wk_error err = {0};
    wk_key *master = new_key("wrap-master.key"), *other = new_key("wrap-other.key");
    wk_key *data_key = NULL, *back = NULL;
    ck_assert_int_eq(wk_key_generate(&data_key, &err), 0);
    uint8_t wrapped[WK_KEY_WRAPPED_BYTES];
    const uint8_t ad[] = "header fields";
    ck_assert_int_eq(wk_key_wrap(master, data_key, ad, sizeof(ad), wrapped, &err), 0);
    ck_assert_int_eq(wk_key_unwrap(master, wrapped, ad, sizeof(ad), &back, &err), 0);
    uint8_t id1[WK_KEY_ID_BYTES], id2[WK_KEY_ID_BYTES];
    wk_key_id(data_key, id1);
    wk_key_id(back, id2);
    ck_assert_int_eq(memcmp(id1, id2, WK_KEY_ID_BYTES), 0);
    uint8_t mac1[WK_MAC_BYTES], mac2[WK_MAC_BYTES];
    ck_assert_int_eq(wk_key_mac(data_key, "ctx", "abc", 3, "d", 1, mac1), 0);
    ck_assert_int_eq(wk_key_mac(back, "ctx", "abc", 3, "d", 1, mac2), 0);
    ck_assert_int_eq(memcmp(mac1, mac2, WK_MAC_BYTES), 0);
    ck_assert_int_eq(wk_key_mac(back, "ctx2", "abc", 3, "d", 1, mac2), 0);
    ck_assert_int_ne(memcmp(mac1, mac2, WK_MAC_BYTES), 0);
    ck_assert_int_eq(wk_key_mac(back, "ctx", "abc", 3, "e", 1, mac2), 0);
    ck_assert_int_ne(memcmp(mac1, mac2, WK_MAC_BYTES), 0);
    wk_key_free(back);
    back = NULL;
    /* Another wrapper, other ad, a flipped byte: refused. */
    ck_assert_int_eq(wk_key_unwrap(other, wrapped, ad, sizeof(ad), &back, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_int_eq(wk_key_unwrap(master, wrapped, ad, sizeof(ad) - 1, &back, &err), -1);
    wrapped[40] ^= 1;
    ck_assert_int_eq(wk_key_unwrap(master, wrapped, ad, sizeof(ad), &back, &err), -1);
    ck_assert_ptr_null(back);
    wk_key_free(data_key);
    wk_key_free(master);
    wk_key_free(other);
}
END_TEST

static Suite *crypt_suite(void)
{
    Suite *s = suite_create("crypt");
    TCase *tc = tcase_create("keyfile");
    tcase_add_test(tc, test_keygen_creates_0600);
    tcase_add_test(tc, test_keygen_keys_differ);
    tcase_add_test(tc, test_keygen_refuses_existing);
    tcase_add_test(tc, test_keygen_refuses_symlink);
    tcase_add_test(tc, test_keygen_missing_folder);
    tcase_add_loop_test(tc, test_load_refuses_loose_mode, 0,
                        sizeof(bad_modes) / sizeof(bad_modes[0]));
    tcase_add_test(tc, test_load_accepts_owner_only);
    tcase_add_test(tc, test_load_refuses_non_regular);
    tcase_add_test(tc, test_load_missing);
    tcase_add_loop_test(tc, test_load_refuses_bad_content, 0,
                        sizeof(bad_contents) / sizeof(bad_contents[0]));
    tcase_add_test(tc, test_load_accepts_forms);
    tcase_add_test(tc, test_load_symlink);
    tcase_add_test(tc, test_key_id_definition);
    suite_add_tcase(s, tc);

    tc = tcase_create("stream");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_round_trip, 0, sizeof(rt_sizes) / sizeof(rt_sizes[0]));
    tcase_add_test(tc, test_encryptions_differ);
    tcase_add_test(tc, test_free_without_finish);
    tcase_add_test(tc, test_format_by_hand);
    tcase_add_test(tc, test_golden_object);
    tcase_add_test(tc, test_tag_rules);
    tcase_add_test(tc, test_wrong_key);
    tcase_add_test(tc, test_not_walkeep);
    tcase_add_test(tc, test_bound_objects);
    tcase_add_test(tc, test_wrap_and_mac);
    tcase_add_test(tc, test_tamper);
    tcase_add_loop_test(tc, test_truncation, 0, (int)trunc_size_count);
    tcase_add_loop_test(tc, test_appended, 0, (int)trunc_size_count);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_crypt.XXXXXX", base != NULL ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    SRunner *sr = srunner_create(crypt_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    ts_tmpdir_remove(tmpdir);
    return failed == 0 ? 0 : 1;
}
