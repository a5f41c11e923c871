/* test_json: the writer's exact layout, escaping and misuse checks; the parser on valid,
 * invalid and boundary documents, exact 64-bit integers, typed getters, and a
 * backup_manifest-sized document parsed against the clock. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FFFD "\xEF\xBF\xBD"

/* ---- helpers ---------------------------------------------------------------------- */

static wk_json *parse_ok(const char *text)
{
    wk_json *v = NULL;
    wk_error err = {0};

    ck_assert_msg(wk_json_parse(text, strlen(text), &v, &err) == 0, "parse of [%s] failed: %s",
                  text, err.message);
    ck_assert_ptr_nonnull(v);
    return v;
}

/* Parses text (length len) expecting a syntax error; returns the message in msg. */
static void parse_fails(const char *text, size_t len, char *msg, size_t msg_size)
{
    wk_json *v = (wk_json *)&v; /* any non-NULL marker: must be left alone */
    wk_json *marker = v;
    wk_error err = {0};

    ck_assert_msg(wk_json_parse(text, len, &v, &err) == -1, "parse of [%.*s] should fail", (int)len,
                  text == NULL ? "" : text);
    ck_assert_ptr_eq(v, marker);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_msg(strncmp(err.message, "invalid JSON at byte ", 21) == 0, "message: %s",
                  err.message);
    ck_assert_ptr_null(strchr(err.message, '\n'));
    if (msg != NULL)
        snprintf(msg, msg_size, "%s", err.message);
}

static char *finish_ok(wk_json_writer *w)
{
    wk_error err = {0};
    char *text = wk_json_writer_finish(w, &err);

    ck_assert_msg(text != NULL, "finish failed: %s", err.message);
    wk_json_writer_free(w);
    return text;
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- writer ----------------------------------------------------------------------- */

START_TEST(test_writer_nested_exact)
{
    wk_json_writer *w = wk_json_writer_new();

    wk_json_begin_object(w);
    wk_json_kv_string(w, "label", "base-20240101");
    wk_json_kv_uint(w, "size", UINT64_C(18446744073709551615));
    wk_json_kv_int(w, "delta", INT64_MIN);
    wk_json_kv_bool(w, "encrypted", true);
    wk_json_kv_bool(w, "compressed", false);
    wk_json_kv_string(w, "parent", NULL);
    wk_json_key(w, "nothing");
    wk_json_null(w);
    wk_json_key(w, "tablespaces");
    wk_json_begin_array(w);
    wk_json_string(w, "pg_default");
    wk_json_int(w, 16385);
    wk_json_begin_object(w);
    wk_json_kv_int(w, "oid", 16386);
    wk_json_key(w, "paths");
    wk_json_begin_array(w);
    wk_json_string(w, "/srv/ts1");
    wk_json_end_array(w);
    wk_json_end_object(w);
    wk_json_begin_array(w);
    wk_json_end_array(w);
    wk_json_end_array(w);
    wk_json_key(w, "empty");
    wk_json_begin_object(w);
    wk_json_end_object(w);
    wk_json_end_object(w);

    char *text = finish_ok(w);
    ck_assert_str_eq(text, "{\n"
                           "  \"label\": \"base-20240101\",\n"
                           "  \"size\": 18446744073709551615,\n"
                           "  \"delta\": -9223372036854775808,\n"
                           "  \"encrypted\": true,\n"
                           "  \"compressed\": false,\n"
                           "  \"parent\": null,\n"
                           "  \"nothing\": null,\n"
                           "  \"tablespaces\": [\n"
                           "    \"pg_default\",\n"
                           "    16385,\n"
                           "    {\n"
                           "      \"oid\": 16386,\n"
                           "      \"paths\": [\n"
                           "        \"/srv/ts1\"\n"
                           "      ]\n"
                           "    },\n"
                           "    []\n"
                           "  ],\n"
                           "  \"empty\": {}\n"
                           "}\n");

    /* And it reads back as written. */
    wk_json *v = parse_ok(text);
    uint64_t u = 0;
    int64_t i = 0;
    ck_assert_int_eq(wk_json_get_uint(v, "size", &u, NULL), 0);
    ck_assert_uint_eq(u, UINT64_MAX);
    ck_assert_int_eq(wk_json_get_int(v, "delta", &i, NULL), 0);
    ck_assert(i == INT64_MIN);
    ck_assert_int_eq(wk_json_type_of(wk_json_get(v, "parent")), WK_JSON_NULL);
    ck_assert_uint_eq(wk_json_length(wk_json_get(v, "tablespaces")), 4);
    ck_assert_uint_eq(wk_json_length(v), 9);
    ck_assert_str_eq(wk_json_object_key(v, 8), "empty");
    wk_json_free(v);
    free(text);
}
END_TEST

START_TEST(test_writer_top_level_scalars)
{
    struct {
        int kind;
        const char *want;
    } cases[] = {
        {0, "\"x\"\n"}, {1, "-1\n"}, {2, "0\n"}, {3, "true\n"}, {4, "null\n"}, {5, "[]\n"},
    };

    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        wk_json_writer *w = wk_json_writer_new();
        switch (cases[c].kind) {
        case 0:
            wk_json_string(w, "x");
            break;
        case 1:
            wk_json_int(w, -1);
            break;
        case 2:
            wk_json_uint(w, 0);
            break;
        case 3:
            wk_json_bool(w, true);
            break;
        case 4:
            wk_json_null(w);
            break;
        default:
            wk_json_begin_array(w);
            wk_json_end_array(w);
            break;
        }
        char *text = finish_ok(w);
        ck_assert_str_eq(text, cases[c].want);
        free(text);
    }
}
END_TEST

START_TEST(test_writer_escaping_exact)
{
    wk_json_writer *w = wk_json_writer_new();

    wk_json_begin_object(w);
    wk_json_kv_string(w, "q\"k",
                      "\"\\/\b\f\n\r\t\x01\x1f\x7f"
                      "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
    wk_json_kv_string(w, "bad",
                      "a\xFF"
                      "b\xC0\xAF"
                      "c\xED\xA0\x80"
                      "d\xE2\x82");
    wk_json_end_object(w);
    char *text = finish_ok(w);
    ck_assert_str_eq(text,
                     "{\n"
                     "  \"q\\\"k\": \"\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f"
                     "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\",\n"
                     "  \"bad\": \"a" FFFD "b" FFFD FFFD "c" FFFD FFFD FFFD "d" FFFD FFFD "\"\n"
                     "}\n");
    free(text);
}
END_TEST

/* Writes each string as a key and as a value, parses the text, and compares. */
static void check_roundtrip(const char *in, const char *want)
{
    wk_json_writer *w = wk_json_writer_new();

    wk_json_begin_array(w);
    wk_json_string(w, in);
    wk_json_begin_object(w);
    wk_json_kv_string(w, in, in);
    wk_json_end_object(w);
    wk_json_end_array(w);
    char *text = finish_ok(w);
    wk_json *v = parse_ok(text);
    ck_assert_str_eq(wk_json_string_of(wk_json_at(v, 0)), want);
    ck_assert_str_eq(wk_json_object_key(wk_json_at(v, 1), 0), want);
    ck_assert_str_eq(wk_json_string_of(wk_json_get(wk_json_at(v, 1), want)), want);
    wk_json_free(v);
    free(text);
}

START_TEST(test_escape_roundtrip)
{
    static const struct {
        const char *in;
        const char *want; /* NULL: same as in */
    } cases[] = {
        {"", NULL},
        {"plain", NULL},
        {"\"quoted\"", NULL},
        {"back\\slash\\", NULL},
        {"/slash/", NULL},
        {"line\nbreak\r\n\ttab\b\f", NULL},
        {"\x01\x02\x1e\x1f\x7f", NULL},
        {"caf\xC3\xA9", NULL},
        {"\xE2\x82\xAC \xEF\xBF\xBF \xEE\x80\x80", NULL},
        {"\xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF \xF0\x90\x80\x80", NULL},
        {"\xFF", FFFD},
        {"a\x80"
         "b",
         "a" FFFD "b"},
        {"\xC0\xAF", FFFD FFFD},                   /* overlong '/' */
        {"\xE0\x80\xAF", FFFD FFFD FFFD},          /* overlong */
        {"\xED\xA0\x80", FFFD FFFD FFFD},          /* UTF-8 encoded surrogate */
        {"\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD}, /* beyond U+10FFFF */
        {"\xF5\xBF", FFFD FFFD},
        {"x\xE2\x82", "x" FFFD FFFD}, /* cut short at the end */
        {"\xE2\x82"
         "\xE2\x82\xAC",
         FFFD FFFD "\xE2\x82\xAC"}, /* cut short, then valid */
        {"\xC3", FFFD},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        check_roundtrip(cases[i].in, cases[i].want != NULL ? cases[i].want : cases[i].in);

    /* Every control character, and every byte value once: always valid JSON. */
    char all[256];
    for (int c = 1; c < 32; c++)
        all[c - 1] = (char)c;
    all[31] = '\0';
    check_roundtrip(all, all);
    for (int c = 1; c < 256; c++)
        all[c - 1] = (char)c;
    all[255] = '\0';
    wk_json_writer *w = wk_json_writer_new();
    wk_json_string(w, all);
    char *text = finish_ok(w);
    wk_json *v = parse_ok(text);
    const char *back = wk_json_string_of(v);
    ck_assert_int_eq(memcmp(back, all, 127), 0);
    for (size_t i = 127; back[i] != '\0'; i += 3)
        ck_assert_int_eq(memcmp(back + i, FFFD, 3), 0);
    ck_assert_uint_eq(strlen(back), 127 + 3 * 128);
    wk_json_free(v);
    free(text);
}
END_TEST

/* One misuse scenario per case; each must end in WK_ERR_INTERNAL. */
static void misuse_case(int which, wk_json_writer *w)
{
    switch (which) {
    case 0: /* object left open */
        wk_json_begin_object(w);
        wk_json_kv_int(w, "a", 1);
        break;
    case 1: /* array left open inside an object */
        wk_json_begin_object(w);
        wk_json_key(w, "a");
        wk_json_begin_array(w);
        wk_json_end_object(w);
        break;
    case 2: /* end with nothing open */
        wk_json_end_array(w);
        break;
    case 3: /* one end too many */
        wk_json_begin_array(w);
        wk_json_end_array(w);
        wk_json_end_array(w);
        break;
    case 4: /* array closed as an object */
        wk_json_begin_array(w);
        wk_json_end_object(w);
        break;
    case 5: /* value in an object without a key */
        wk_json_begin_object(w);
        wk_json_int(w, 1);
        wk_json_end_object(w);
        break;
    case 6: /* key in an array */
        wk_json_begin_array(w);
        wk_json_key(w, "a");
        wk_json_int(w, 1);
        wk_json_end_array(w);
        break;
    case 7: /* two keys in a row */
        wk_json_begin_object(w);
        wk_json_key(w, "a");
        wk_json_key(w, "b");
        wk_json_int(w, 1);
        wk_json_end_object(w);
        break;
    case 8: /* key without a value */
        wk_json_begin_object(w);
        wk_json_key(w, "a");
        wk_json_end_object(w);
        break;
    case 9: /* two top-level values */
        wk_json_int(w, 1);
        wk_json_int(w, 2);
        break;
    case 10: /* nothing written */
        break;
    case 11: /* key at top level */
        wk_json_key(w, "a");
        wk_json_int(w, 1);
        break;
    case 12: /* NULL key */
        wk_json_begin_object(w);
        wk_json_kv_int(w, NULL, 1);
        wk_json_end_object(w);
        break;
    case 13: /* deeper than WK_JSON_MAX_DEPTH */
        for (int i = 0; i < WK_JSON_MAX_DEPTH + 1; i++)
            wk_json_begin_array(w);
        for (int i = 0; i < WK_JSON_MAX_DEPTH + 1; i++)
            wk_json_end_array(w);
        break;
    default: /* container begun inside an object without a key */
        wk_json_begin_object(w);
        wk_json_begin_object(w);
        wk_json_end_object(w);
        wk_json_end_object(w);
        break;
    }
}

START_TEST(test_writer_misuse)
{
    for (int which = 0; which <= 14; which++) {
        wk_json_writer *w = wk_json_writer_new();
        wk_error err = {0};

        misuse_case(which, w);
        ck_assert_msg(wk_json_writer_finish(w, &err) == NULL, "case %d should fail", which);
        ck_assert_int_eq(err.code, WK_ERR_INTERNAL);
        ck_assert_msg(strncmp(err.message, "invalid use of JSON writer: ", 28) == 0, "case %d: %s",
                      which, err.message);
        wk_json_writer_free(w);
    }
}
END_TEST

START_TEST(test_writer_depth_limit_and_finish_once)
{
    wk_json_writer *w = wk_json_writer_new();
    wk_error err = {0};

    for (int i = 0; i < WK_JSON_MAX_DEPTH; i++)
        wk_json_begin_array(w);
    for (int i = 0; i < WK_JSON_MAX_DEPTH; i++)
        wk_json_end_array(w);
    char *text = wk_json_writer_finish(w, &err);
    ck_assert_ptr_nonnull(text);
    /* The deepest document the writer makes is one the parser takes. */
    wk_json *v = parse_ok(text);
    wk_json_free(v);
    free(text);

    /* A second finish is misuse, and calls after finish change nothing. */
    wk_json_int(w, 1);
    ck_assert_ptr_null(wk_json_writer_finish(w, &err));
    ck_assert_int_eq(err.code, WK_ERR_INTERNAL);
    wk_json_writer_free(w);
}
END_TEST

START_TEST(test_writer_null_is_nomem)
{
    wk_error err = {0};

    /* What a caller sees when wk_json_writer_new ran out of memory. */
    wk_json_begin_object(NULL);
    wk_json_kv_string(NULL, "a", "b");
    wk_json_end_object(NULL);
    ck_assert_ptr_null(wk_json_writer_finish(NULL, &err));
    ck_assert_int_eq(err.code, WK_ERR_NOMEM);
    wk_json_writer_free(NULL);
}
END_TEST

START_TEST(test_writer_large_output)
{
    wk_json_writer *w = wk_json_writer_new();
    char key[32];

    wk_json_begin_object(w);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%05d", i);
        wk_json_kv_int(w, key, i);
    }
    wk_json_end_object(w);
    char *text = finish_ok(w);
    wk_json *v = parse_ok(text);
    ck_assert_uint_eq(wk_json_length(v), 5000);
    for (int i = 0; i < 5000; i += 499) {
        int64_t got = -1;
        snprintf(key, sizeof(key), "k%05d", i);
        ck_assert_int_eq(wk_json_get_int(v, key, &got, NULL), 0);
        ck_assert_int_eq(got, i);
        ck_assert_str_eq(wk_json_object_key(v, (size_t)i), key);
    }
    wk_json_free(v);
    free(text);
}
END_TEST

/* ---- parser: valid documents ------------------------------------------------------ */

START_TEST(test_parse_numbers)
{
    static const struct {
        const char *text;
        int int_ok;
        int64_t i;
        int uint_ok;
        uint64_t u;
    } cases[] = {
        {"0", 1, 0, 1, 0},
        {"-0", 1, 0, 1, 0},
        {"7", 1, 7, 1, 7},
        {"-7", 1, -7, 0, 0},
        {"1e10", 0, 0, 0, 0},
        {"1E+2", 0, 0, 0, 0},
        {"2e-3", 0, 0, 0, 0},
        {"1.5", 0, 0, 0, 0},
        {"1.0", 0, 0, 0, 0},
        {"-0.0e0", 0, 0, 0, 0},
        {"9223372036854775807", 1, INT64_MAX, 1, UINT64_C(9223372036854775807)},
        {"9223372036854775808", 0, 0, 1, UINT64_C(9223372036854775808)},
        {"-9223372036854775808", 1, INT64_MIN, 0, 0},
        {"-9223372036854775809", 0, 0, 0, 0},
        {"18446744073709551615", 0, 0, 1, UINT64_MAX},
        {"18446744073709551616", 0, 0, 0, 0},
        {"99999999999999999999999", 0, 0, 0, 0},
        {"9007199254740993", 1, INT64_C(9007199254740993), 1, UINT64_C(9007199254740993)},
    };

    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        wk_json *v = parse_ok(cases[c].text);
        int64_t i = 42;
        uint64_t u = 42;

        ck_assert_int_eq(wk_json_type_of(v), WK_JSON_NUMBER);
        ck_assert_str_eq(wk_json_number_text(v), cases[c].text);
        if (cases[c].int_ok) {
            ck_assert_msg(wk_json_int_of(v, &i) == 0, "%s as int", cases[c].text);
            ck_assert_msg(i == cases[c].i, "%s as int", cases[c].text);
        } else {
            ck_assert_msg(wk_json_int_of(v, &i) == -1, "%s as int", cases[c].text);
            ck_assert_int_eq(i, 42);
        }
        if (cases[c].uint_ok) {
            ck_assert_msg(wk_json_uint_of(v, &u) == 0, "%s as uint", cases[c].text);
            ck_assert_msg(u == cases[c].u, "%s as uint", cases[c].text);
        } else {
            ck_assert_msg(wk_json_uint_of(v, &u) == -1, "%s as uint", cases[c].text);
            ck_assert_uint_eq(u, 42);
        }
        wk_json_free(v);
    }
}
END_TEST

START_TEST(test_parse_valid_documents)
{
    wk_json *v = parse_ok(" \t\r\n{ \"a\" : [ 1 , true , false , null , \"s\" , { } , [ ] ] ,"
                          "\"b\":{\"c\":\"d\"}} \n");
    const wk_json *a = wk_json_get(v, "a");
    bool b = false;

    ck_assert_int_eq(wk_json_type_of(v), WK_JSON_OBJECT);
    ck_assert_int_eq(wk_json_type_of(a), WK_JSON_ARRAY);
    ck_assert_uint_eq(wk_json_length(a), 7);
    ck_assert_int_eq(wk_json_type_of(wk_json_at(a, 0)), WK_JSON_NUMBER);
    ck_assert_int_eq(wk_json_bool_of(wk_json_at(a, 1), &b), 0);
    ck_assert(b);
    ck_assert_int_eq(wk_json_bool_of(wk_json_at(a, 2), &b), 0);
    ck_assert(!b);
    ck_assert_int_eq(wk_json_type_of(wk_json_at(a, 3)), WK_JSON_NULL);
    ck_assert_str_eq(wk_json_string_of(wk_json_at(a, 4)), "s");
    ck_assert_int_eq(wk_json_type_of(wk_json_at(a, 5)), WK_JSON_OBJECT);
    ck_assert_uint_eq(wk_json_length(wk_json_at(a, 5)), 0);
    ck_assert_int_eq(wk_json_type_of(wk_json_at(a, 6)), WK_JSON_ARRAY);
    ck_assert_uint_eq(wk_json_length(wk_json_at(a, 6)), 0);
    ck_assert_ptr_null(wk_json_at(a, 7));
    ck_assert_str_eq(wk_json_string_of(wk_json_get(wk_json_get(v, "b"), "c")), "d");
    ck_assert_ptr_null(wk_json_get(v, "c"));
    wk_json_free(v);

    /* Scalars at top level. */
    static const char *const scalars[] = {"true", "false", "null", "\"\"", " 1 ", "[]", "{}"};
    for (size_t i = 0; i < ARRAY_LEN(scalars); i++)
        wk_json_free(parse_ok(scalars[i]));

    /* Escapes, including a surrogate pair and escapes of every kind. */
    v = parse_ok("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud83d\\ude00\\u001F\"");
    ck_assert_str_eq(wk_json_string_of(v),
                     "\"\\/\b\f\n\r\tA\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\x1F");
    wk_json_free(v);
    v = parse_ok("\"\\uDBFF\\uDFFF\"");
    ck_assert_str_eq(wk_json_string_of(v), "\xF4\x8F\xBF\xBF");
    wk_json_free(v);

    /* Duplicate keys: all kept in order, lookup finds the last. */
    v = parse_ok("{\"k\":1,\"x\":2,\"k\":3}");
    int64_t n = 0;
    ck_assert_uint_eq(wk_json_length(v), 3);
    ck_assert_int_eq(wk_json_get_int(v, "k", &n, NULL), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(wk_json_object_key(v, 0), "k");
    ck_assert_str_eq(wk_json_object_key(v, 2), "k");
    ck_assert_int_eq(wk_json_int_of(wk_json_object_value(v, 0), &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_ptr_null(wk_json_object_key(v, 3));
    ck_assert_ptr_null(wk_json_object_value(v, 3));
    wk_json_free(v);

    /* The text need not be NUL-terminated: only len bytes are read. */
    const char buf[] = {'[', '1', ']', 'x'};
    wk_error err = {0};
    ck_assert_int_eq(wk_json_parse(buf, 3, &v, &err), 0);
    ck_assert_uint_eq(wk_json_length(v), 1);
    wk_json_free(v);
}
END_TEST

static char *nested_arrays(int depth)
{
    char *text = malloc((size_t)depth * 2 + 1);

    memset(text, '[', (size_t)depth);
    memset(text + depth, ']', (size_t)depth);
    text[depth * 2] = '\0';
    return text;
}

START_TEST(test_parse_depth_limit)
{
    char msg[512];
    char *text = nested_arrays(WK_JSON_MAX_DEPTH);
    wk_json *v = parse_ok(text);
    const wk_json *inner = v;

    for (int i = 1; i < WK_JSON_MAX_DEPTH; i++)
        inner = wk_json_at(inner, 0);
    ck_assert_int_eq(wk_json_type_of(inner), WK_JSON_ARRAY);
    ck_assert_uint_eq(wk_json_length(inner), 0);
    wk_json_free(v);
    free(text);

    text = nested_arrays(WK_JSON_MAX_DEPTH + 1);
    parse_fails(text, strlen(text), msg, sizeof(msg));
    ck_assert_str_eq(msg, "invalid JSON at byte 64: nesting too deep");
    free(text);

    /* Far deeper input fails the same way, without deep recursion. */
    text = nested_arrays(100000);
    parse_fails(text, strlen(text), NULL, 0);
    free(text);

    /* Objects count too. */
    char obj[WK_JSON_MAX_DEPTH * 8 + 16] = "";
    for (int i = 0; i < WK_JSON_MAX_DEPTH + 1; i++)
        strcat(obj, "{\"a\":");
    parse_fails(obj, strlen(obj), msg, sizeof(msg));
    ck_assert_str_eq(msg, "invalid JSON at byte 320: nesting too deep");
}
END_TEST

START_TEST(test_parse_big_strings)
{
    /* Strings larger than an arena block, mixed with small ones. */
    size_t big = 300 * 1024;
    char *text = malloc(big + 64);
    char *p = text;

    p += sprintf(p, "[\"a\",\"");
    memset(p, 'x', big);
    p += big;
    p += sprintf(p, "\",\"b\",\"c\"]");
    wk_json *v = parse_ok(text);
    ck_assert_uint_eq(wk_json_length(v), 4);
    ck_assert_str_eq(wk_json_string_of(wk_json_at(v, 0)), "a");
    ck_assert_uint_eq(strlen(wk_json_string_of(wk_json_at(v, 1))), big);
    ck_assert_str_eq(wk_json_string_of(wk_json_at(v, 2)), "b");
    ck_assert_str_eq(wk_json_string_of(wk_json_at(v, 3)), "c");
    wk_json_free(v);
    free(text);
}
END_TEST

/* ---- parser: invalid documents ---------------------------------------------------- */

START_TEST(test_parse_rejects)
{
    static const char *const bad[] = {
        "",
        "   ",
        "[1,]",
        "{\"a\":1,}",
        "[,1]",
        "{,}",
        "{'a':1}",
        "['a']",
        "01",
        "-01",
        "+1",
        ".5",
        "1.",
        "1.e5",
        "1e",
        "1e+",
        "-",
        "--1",
        "0x10",
        "NaN",
        "Infinity",
        "-Infinity",
        "tru",
        "True",
        "nul",
        "\"abc",
        "\"abc\\\"",
        "\"\\x41\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"\\U0041\"",
        "\"\\ud83d\"",
        "\"\\ud83dx\"",
        "\"\\ud83d\\u0041\"",
        "\"\\ude00\"",
        "\"\\ude00\\ud83d\"",
        "\"\\u0000\"",
        "\"tab\there\"",
        "\"new\nline\"",
        "\"\x7f\x1f\"",
        "\"\xFF\"",
        "\"\xC0\xAF\"",
        "\"\xED\xA0\x80\"",
        "\"\xE2\x82\"",
        "\xEF\xBB\xBF{}",
        "[1 2]",
        "{\"a\" 1}",
        "{\"a\":}",
        "{1:2}",
        "[1] [2]",
        "{} x",
        "1 2",
        "/* c */ 1",
        "1 // c",
        "[1",
        "{\"a\":1",
        "]",
        "}",
    };
    char msg[512];

    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        parse_fails(bad[i], strlen(bad[i]), NULL, 0);

    /* Raw NUL bytes, inside and outside strings. */
    parse_fails("\"a\0b\"", 5, NULL, 0);
    parse_fails("[1]\0", 4, NULL, 0);
    parse_fails("\0", 1, NULL, 0);
    parse_fails(NULL, 0, NULL, 0);

    /* The messages point at the offending byte. */
    static const struct {
        const char *text;
        const char *msg;
    } exact[] = {
        {"", "invalid JSON at byte 0: expected a value, found end of input"},
        {"[1,]", "invalid JSON at byte 3: trailing comma"},
        {"01", "invalid JSON at byte 0: leading zeros are not allowed"},
        {"1.", "invalid JSON at byte 2: expected digit after decimal point, found end of input"},
        {"+1", "invalid JSON at byte 0: expected a value, found \"+\""},
        {"  \"abc", "invalid JSON at byte 2: unterminated string"},
        {"[1] [2]", "invalid JSON at byte 4: unexpected data after the value"},
        {"{'a':1}", "invalid JSON at byte 1: expected string as member name, found \"'\""},
        {"[\"a\\qb\"]", "invalid JSON at byte 3: invalid escape in string"},
        {"\"x\\ud800\"", "invalid JSON at byte 2: unpaired high surrogate in string"},
        {"\"ab\\u0000\"", "invalid JSON at byte 3: \\u0000 is not allowed in strings"},
        {"\"a\tb\"", "invalid JSON at byte 2: unescaped control character in string"},
        {"[1 2]", "invalid JSON at byte 3: expected \",\" or \"]\", found \"2\""},
        {"{\"a\"}", "invalid JSON at byte 4: expected \":\", found \"}\""},
        {"[\"\xFF\"]", "invalid JSON at byte 2: invalid UTF-8 in string"},
        {"[\x01]", "invalid JSON at byte 1: expected a value, found byte 0x01"},
    };
    for (size_t i = 0; i < ARRAY_LEN(exact); i++) {
        parse_fails(exact[i].text, strlen(exact[i].text), msg, sizeof(msg));
        ck_assert_str_eq(msg, exact[i].msg);
    }
}
END_TEST

/* ---- typed access ----------------------------------------------------------------- */

START_TEST(test_typed_getters)
{
    wk_json *v = parse_ok("{\"s\":\"text\",\"i\":-5,\"u\":5,\"b\":true,\"f\":1.5,\"n\":null,"
                          "\"big\":18446744073709551615,\"arr\":[1]}");
    wk_error err = {0};
    const char *s = "untouched";
    int64_t i = 42;
    uint64_t u = 42;
    bool b = false;

    ck_assert_int_eq(wk_json_get_string(v, "s", &s, &err), 0);
    ck_assert_str_eq(s, "text");
    ck_assert_int_eq(wk_json_get_int(v, "i", &i, &err), 0);
    ck_assert_int_eq(i, -5);
    ck_assert_int_eq(wk_json_get_uint(v, "u", &u, &err), 0);
    ck_assert_uint_eq(u, 5);
    ck_assert_int_eq(wk_json_get_int(v, "u", &i, &err), 0);
    ck_assert_int_eq(i, 5);
    ck_assert_int_eq(wk_json_get_bool(v, "b", &b, &err), 0);
    ck_assert(b);
    ck_assert_int_eq(wk_json_get_uint(v, "big", &u, &err), 0);
    ck_assert_uint_eq(u, UINT64_MAX);

    /* Missing members, wrong types, out of range: CORRUPT, outputs untouched. */
    s = "untouched";
    i = 42;
    u = 42;
    b = false;
    ck_assert_int_eq(wk_json_get_string(v, "missing", &s, &err), -1);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_str_eq(err.message, "missing or invalid member \"missing\"");
    ck_assert_int_eq(wk_json_get_string(v, "i", &s, &err), -1);
    ck_assert_str_eq(err.message, "missing or invalid member \"i\"");
    ck_assert_int_eq(wk_json_get_string(v, "n", &s, &err), -1);
    ck_assert_str_eq(s, "untouched");
    ck_assert_int_eq(wk_json_get_uint(v, "i", &u, &err), -1);
    ck_assert_int_eq(wk_json_get_int(v, "f", &i, &err), -1);
    ck_assert_int_eq(wk_json_get_int(v, "big", &i, &err), -1);
    ck_assert_int_eq(wk_json_get_int(v, "s", &i, &err), -1);
    ck_assert_int_eq(i, 42);
    ck_assert_uint_eq(u, 42);
    ck_assert_int_eq(wk_json_get_bool(v, "s", &b, &err), -1);
    ck_assert_int_eq(wk_json_get_bool(v, "n", &b, &err), -1);
    ck_assert(!b);
    ck_assert_int_eq(err.code, WK_ERR_CORRUPT);
    ck_assert_str_eq(err.message, "missing or invalid member \"n\"");

    /* Lookups on something that is not an object. */
    const wk_json *arr = wk_json_get(v, "arr");
    ck_assert_int_eq(wk_json_get_int(arr, "0", &i, &err), -1);
    ck_assert_ptr_null(wk_json_get(arr, "0"));
    ck_assert_int_eq(wk_json_get_int(NULL, "x", &i, &err), -1);
    ck_assert_ptr_null(wk_json_object_key(arr, 0));
    ck_assert_ptr_null(wk_json_at(v, 0));

    /* Accessors on the wrong type, and on NULL. */
    const wk_json *str = wk_json_get(v, "s");
    ck_assert_ptr_null(wk_json_number_text(str));
    ck_assert_ptr_null(wk_json_string_of(wk_json_get(v, "i")));
    ck_assert_uint_eq(wk_json_length(str), 0);
    ck_assert_int_eq(wk_json_type_of(NULL), WK_JSON_NULL);
    ck_assert_uint_eq(wk_json_length(NULL), 0);
    ck_assert_ptr_null(wk_json_string_of(NULL));
    ck_assert_int_eq(wk_json_int_of(NULL, &i), -1);
    ck_assert_int_eq(wk_json_uint_of(str, &u), -1);
    ck_assert_int_eq(wk_json_bool_of(NULL, &b), -1);

    /* Freeing a node that is not the root is ignored; the tree stays intact. */
    wk_json_free((wk_json *)str);
    ck_assert_str_eq(wk_json_string_of(str), "text");
    wk_json_free(v);
    wk_json_free(NULL);
}
END_TEST

/* ---- a backup_manifest-sized document --------------------------------------------- */

#define MANIFEST_FILES 20000

/* A document laid out as PostgreSQL writes backup_manifest (one file per line). */
static char *make_manifest(size_t *len)
{
    size_t cap = (size_t)MANIFEST_FILES * 256 + 4096;
    char *text = malloc(cap);
    size_t n = 0;

    ck_assert_ptr_nonnull(text);
    n += (size_t)snprintf(text + n, cap - n,
                          "{ \"PostgreSQL-Backup-Manifest-Version\": 2,\n"
                          "\"System-Identifier\": 7712025303015056254,\n"
                          "\"Files\": [\n");
    for (int i = 0; i < MANIFEST_FILES; i++) {
        n += (size_t)snprintf(text + n, cap - n,
                              "{ \"Path\": \"base/16384/%d\", \"Size\": %d, "
                              "\"Last-Modified\": \"2024-05-01 12:%02d:%02d GMT\", "
                              "\"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"%08x\" }%s\n",
                              16384 + i, i * 8192, i / 60 % 60, i % 60, (unsigned)i * 2654435761u,
                              i + 1 < MANIFEST_FILES ? "," : "");
    }
    n +=
        (size_t)snprintf(text + n, cap - n,
                         "],\n"
                         "\"WAL-Ranges\": [\n"
                         "{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", "
                         "\"End-LSN\": \"0/2000138\" }\n"
                         "],\n"
                         "\"Manifest-Checksum\": "
                         "\"4a5e5f1c8b0e6c3d2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e\"}\n");
    ck_assert_uint_lt(n, cap);
    *len = n;
    return text;
}

START_TEST(test_manifest_parses_fast)
{
    size_t len;
    char *text = make_manifest(&len);
    wk_json *v = NULL;
    wk_error err = {0};

    double start = now_seconds();
    ck_assert_msg(wk_json_parse(text, len, &v, &err) == 0, "%s", err.message);
    double elapsed = now_seconds() - start;
    ck_assert_msg(elapsed < 2.0, "parsing %zu bytes took %.3f s", len, elapsed);

    uint64_t u = 0;
    ck_assert_int_eq(wk_json_get_uint(v, "PostgreSQL-Backup-Manifest-Version", &u, &err), 0);
    ck_assert_uint_eq(u, 2);
    ck_assert_int_eq(wk_json_get_uint(v, "System-Identifier", &u, &err), 0);
    ck_assert_uint_eq(u, UINT64_C(7712025303015056254));
    const wk_json *files = wk_json_get(v, "Files");
    ck_assert_uint_eq(wk_json_length(files), MANIFEST_FILES);
    for (size_t i = 0; i < MANIFEST_FILES; i += 997) {
        const wk_json *f = wk_json_at(files, i);
        const char *path;
        char want[64];

        ck_assert_int_eq(wk_json_get_string(f, "Path", &path, &err), 0);
        snprintf(want, sizeof(want), "base/16384/%zu", 16384 + i);
        ck_assert_str_eq(path, want);
        ck_assert_int_eq(wk_json_get_uint(f, "Size", &u, &err), 0);
        ck_assert_uint_eq(u, i * 8192);
    }
    const wk_json *range = wk_json_at(wk_json_get(v, "WAL-Ranges"), 0);
    const char *lsn;
    ck_assert_int_eq(wk_json_get_string(range, "End-LSN", &lsn, &err), 0);
    ck_assert_str_eq(lsn, "0/2000138");
    wk_json_free(v);

    /* Every truncation of the head of the document fails cleanly. */
    for (size_t cut = 0; cut < 400; cut++)
        parse_fails(text, cut, NULL, 0);
    parse_fails(text, len - 2, NULL, 0); /* without the final "}" */
    free(text);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");

    TCase *writer = tcase_create("writer");
    tcase_add_test(writer, test_writer_nested_exact);
    tcase_add_test(writer, test_writer_top_level_scalars);
    tcase_add_test(writer, test_writer_escaping_exact);
    tcase_add_test(writer, test_escape_roundtrip);
    tcase_add_test(writer, test_writer_misuse);
    tcase_add_test(writer, test_writer_depth_limit_and_finish_once);
    tcase_add_test(writer, test_writer_null_is_nomem);
    tcase_add_test(writer, test_writer_large_output);
    suite_add_tcase(s, writer);

    TCase *parser = tcase_create("parser");
    tcase_add_test(parser, test_parse_numbers);
    tcase_add_test(parser, test_parse_valid_documents);
    tcase_add_test(parser, test_parse_depth_limit);
    tcase_add_test(parser, test_parse_big_strings);
    tcase_add_test(parser, test_parse_rejects);
    tcase_add_test(parser, test_typed_getters);
    suite_add_tcase(s, parser);

    TCase *manifest = tcase_create("manifest");
    tcase_set_timeout(manifest, 60);
    tcase_add_test(manifest, test_manifest_parses_fast);
    suite_add_tcase(s, manifest);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
