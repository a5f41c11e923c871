/* test_md5: RFC 1321's test vectors, lengths around the padding edge, a million bytes,
 * and the same digest when fed in pieces. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md5.h"

static void md5_hex(const void *data, size_t len, char out[33])
{
    uint8_t d[16];
    wk_md5(data, len, d);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

START_TEST(test_md5_rfc1321)
{
    static const struct {
        const char *text, *md5;
    } v[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"1234567890123456789012345678901234567890123456789012345678901234567890123456"
         "7890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    char hex[33];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        md5_hex(v[i].text, strlen(v[i].text), hex);
        ck_assert_str_eq(hex, v[i].md5);
    }
    /* Lengths around the 56-byte padding edge and a million 'a's. */
    char *a = malloc(1000000);
    ck_assert_ptr_nonnull(a);
    memset(a, 'a', 1000000);
    md5_hex(a, 1000000, hex);
    ck_assert_str_eq(hex, "7707d6ae4e027c70eea2a935c2296f21");
    md5_hex(a, 55, hex);
    ck_assert_str_eq(hex, "ef1772b6dff9a122358552954ad0df65");
    md5_hex(a, 56, hex);
    ck_assert_str_eq(hex, "3b0c8ac703f828b04c6c197006d17218");
    md5_hex(a, 64, hex);
    ck_assert_str_eq(hex, "014842d480b571495a4a0363793f7367");
    free(a);
}
END_TEST

START_TEST(test_md5_in_pieces)
{
    uint8_t whole[WK_MD5_BYTES], pieces[WK_MD5_BYTES];
    char text[300];
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (char)('a' + i % 26);
    wk_md5(text, sizeof(text), whole);
    for (size_t step = 1; step <= 130; step += 7) {
        wk_md5_ctx c;
        wk_md5_init(&c);
        for (size_t off = 0; off < sizeof(text); off += step)
            wk_md5_update(&c, text + off, off + step > sizeof(text) ? sizeof(text) - off : step);
        wk_md5_final(&c, pieces);
        ck_assert(memcmp(whole, pieces, sizeof(whole)) == 0);
    }
}
END_TEST

static Suite *md5_suite(void)
{
    Suite *s = suite_create("md5");
    TCase *tc = tcase_create("md5");
    tcase_add_test(tc, test_md5_rfc1321);
    tcase_add_test(tc, test_md5_in_pieces);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(md5_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
