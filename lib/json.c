/* json: a growing-buffer writer with a container stack that catches misuse, and a
 * recursive-descent parser that puts a whole tree (nodes, strings, numbers) in one arena. */
#include "json.h"

#include <inttypes.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
static const char replacement_char[] = "\xEF\xBF\xBD";

/* Length of the valid UTF-8 sequence starting at s (avail bytes readable), or 0 when
 * s[0] does not start one: stray continuation byte, overlong form, surrogate, code
 * point beyond U+10FFFF, or a sequence cut short (Unicode 15, table 3-7). */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* no overlong forms */
        else if (c == 0xF4)
            hi = 0x8F; /* nothing beyond U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    }
    return n;
}

/* ==== writer ========================================================================= */

#define INITIAL_BUFFER 256
#define INDENT_WIDTH 2

typedef enum frame_kind { FRAME_OBJECT, FRAME_ARRAY } frame_kind;

typedef struct frame {
    frame_kind kind;
    size_t count; /* members or elements written so far */
} frame;

struct wk_json_writer {
    char *buf; /* the text so far; not NUL-terminated until finish */
    size_t len;
    size_t cap;
    wk_errcode failed;  /* first failure: WK_ERR_NONE, _NOMEM or _INTERNAL */
    const char *misuse; /* what went wrong when failed == WK_ERR_INTERNAL */
    int depth;          /* open containers, entries in stack */
    bool key_pending;   /* a key was written, its value not yet */
    bool root_started;  /* the top-level value has begun */
    bool finished;
    frame stack[WK_JSON_MAX_DEPTH];
};

wk_json_writer *wk_json_writer_new(void)
{
    return calloc(1, sizeof(wk_json_writer));
}

void wk_json_writer_free(wk_json_writer *w)
{
    if (w == NULL)
        return;
    free(w->buf);
    free(w);
}

static bool usable(const wk_json_writer *w)
{
    return w != NULL && w->failed == WK_ERR_NONE && !w->finished;
}

static bool set_misuse(wk_json_writer *w, const char *what)
{
    w->failed = WK_ERR_INTERNAL;
    w->misuse = what;
    return false;
}

/* Makes room for n more bytes plus a terminating NUL. */
static bool reserve(wk_json_writer *w, size_t n)
{
    if (n <= w->cap - w->len && w->cap - w->len - n >= 1)
        return true;
    size_t need = w->len + n + 1;
    if (need < w->len) {
        w->failed = WK_ERR_NOMEM;
        return false;
    }
    size_t cap = w->cap == 0 ? INITIAL_BUFFER : w->cap;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *buf = realloc(w->buf, cap);
    if (buf == NULL) {
        w->failed = WK_ERR_NOMEM;
        return false;
    }
    w->buf = buf;
    w->cap = cap;
    return true;
}

static void put(wk_json_writer *w, const void *data, size_t n)
{
    if (w->failed != WK_ERR_NONE || !reserve(w, n))
        return;
    memcpy(w->buf + w->len, data, n);
    w->len += n;
}

static void put_char(wk_json_writer *w, char c)
{
    put(w, &c, 1);
}

/* A line break and the indentation of nesting level `level`. */
static void put_newline(wk_json_writer *w, int level)
{
    size_t spaces = (size_t)level * INDENT_WIDTH;

    if (w->failed != WK_ERR_NONE || !reserve(w, spaces + 1))
        return;
    w->buf[w->len++] = '\n';
    memset(w->buf + w->len, ' ', spaces);
    w->len += spaces;
}

/* Starts the next member or element of the innermost container on its own line. */
static void start_item(wk_json_writer *w, frame *f)
{
    if (f->count > 0)
        put_char(w, ',');
    put_newline(w, w->depth);
    f->count++;
}

/* s as a JSON string literal; invalid UTF-8 bytes become U+FFFD. */
static void put_escaped(wk_json_writer *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t run = 0; /* start of the bytes not yet copied */
    size_t i = 0;

    put_char(w, '"');
    while (i < n) {
        unsigned char c = p[i];
        char esc[6];
        size_t esc_len = 2;

        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq_len(p + i, n - i);
            if (k > 0) {
                i += k;
                continue;
            }
        }
        put(w, p + run, i - run);
        esc[0] = '\\';
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            if (c >= 0x80) {
                memcpy(esc, replacement_char, 3);
                esc_len = 3;
            } else {
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0x0f];
                esc_len = 6;
            }
            break;
        }
        put(w, esc, esc_len);
        i++;
        run = i;
    }
    put(w, p + run, i - run);
    put_char(w, '"');
}

/* Positions the writer for a value (separator, line break, indentation) and checks it
 * may go here. Returns false when nothing should be written. */
static bool begin_value(wk_json_writer *w)
{
    if (!usable(w))
        return false;
    if (w->depth == 0) {
        if (w->root_started)
            return set_misuse(w, "more than one top-level value");
        w->root_started = true;
        return true;
    }
    frame *f = &w->stack[w->depth - 1];
    if (f->kind == FRAME_OBJECT) {
        if (!w->key_pending)
            return set_misuse(w, "value in an object without a key");
        w->key_pending = false;
        return true;
    }
    start_item(w, f);
    return true;
}

static void begin_container(wk_json_writer *w, frame_kind kind)
{
    if (!begin_value(w))
        return;
    if (w->depth == WK_JSON_MAX_DEPTH) {
        set_misuse(w, "nesting too deep");
        return;
    }
    put_char(w, kind == FRAME_OBJECT ? '{' : '[');
    w->stack[w->depth].kind = kind;
    w->stack[w->depth].count = 0;
    w->depth++;
}

static void end_container(wk_json_writer *w, frame_kind kind)
{
    if (!usable(w))
        return;
    if (w->depth == 0) {
        set_misuse(w, "end of a container that was not begun");
        return;
    }
    frame *f = &w->stack[w->depth - 1];
    if (f->kind != kind) {
        set_misuse(w, kind == FRAME_OBJECT ? "end of an object closes an array"
                                           : "end of an array closes an object");
        return;
    }
    if (w->key_pending) {
        set_misuse(w, "key without a value");
        return;
    }
    w->depth--;
    if (f->count > 0)
        put_newline(w, w->depth);
    put_char(w, kind == FRAME_OBJECT ? '}' : ']');
}

void wk_json_begin_object(wk_json_writer *w)
{
    begin_container(w, FRAME_OBJECT);
}

void wk_json_end_object(wk_json_writer *w)
{
    end_container(w, FRAME_OBJECT);
}

void wk_json_begin_array(wk_json_writer *w)
{
    begin_container(w, FRAME_ARRAY);
}

void wk_json_end_array(wk_json_writer *w)
{
    end_container(w, FRAME_ARRAY);
}

void wk_json_key(wk_json_writer *w, const char *key)
{
    if (!usable(w))
        return;
    if (w->depth == 0 || w->stack[w->depth - 1].kind != FRAME_OBJECT) {
        set_misuse(w, "key outside an object");
        return;
    }
    if (w->key_pending) {
        set_misuse(w, "key without a value");
        return;
    }
    if (key == NULL) {
        set_misuse(w, "null key");
        return;
    }
    start_item(w, &w->stack[w->depth - 1]);
    put_escaped(w, key);
    put(w, ": ", 2);
    w->key_pending = true;
}

void wk_json_string(wk_json_writer *w, const char *s)
{
    if (!begin_value(w))
        return;
    if (s == NULL)
        put(w, "null", 4);
    else
        put_escaped(w, s);
}

void wk_json_int(wk_json_writer *w, int64_t v)
{
    char text[24];
    int n;

    if (!begin_value(w))
        return;
    n = snprintf(text, sizeof(text), "%" PRId64, v);
    put(w, text, (size_t)n);
}

void wk_json_uint(wk_json_writer *w, uint64_t v)
{
    char text[24];
    int n;

    if (!begin_value(w))
        return;
    n = snprintf(text, sizeof(text), "%" PRIu64, v);
    put(w, text, (size_t)n);
}

void wk_json_bool(wk_json_writer *w, bool v)
{
    if (!begin_value(w))
        return;
    if (v)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void wk_json_null(wk_json_writer *w)
{
    if (!begin_value(w))
        return;
    put(w, "null", 4);
}

void wk_json_kv_string(wk_json_writer *w, const char *key, const char *s)
{
    wk_json_key(w, key);
    wk_json_string(w, s);
}

void wk_json_kv_int(wk_json_writer *w, const char *key, int64_t v)
{
    wk_json_key(w, key);
    wk_json_int(w, v);
}

void wk_json_kv_uint(wk_json_writer *w, const char *key, uint64_t v)
{
    wk_json_key(w, key);
    wk_json_uint(w, v);
}

void wk_json_kv_bool(wk_json_writer *w, const char *key, bool v)
{
    wk_json_key(w, key);
    wk_json_bool(w, v);
}

static char *finish_failed(wk_error *err, wk_errcode code, const char *what)
{
    if (code == WK_ERR_NOMEM)
        wk_error_set(err, code, "out of memory while writing JSON");
    else
        wk_error_set(err, code, "invalid use of JSON writer: %s", what);
    return NULL;
}

char *wk_json_writer_finish(wk_json_writer *w, wk_error *err)
{
    char *text;

    if (w == NULL)
        return finish_failed(err, WK_ERR_NOMEM, NULL);
    if (w->finished)
        return finish_failed(err, WK_ERR_INTERNAL, "finished twice");
    if (w->failed != WK_ERR_NONE)
        return finish_failed(err, w->failed, w->misuse);
    if (w->depth > 0) {
        wk_error_set(err, WK_ERR_INTERNAL, "invalid use of JSON writer: %d container(s) left open",
                     w->depth);
        return NULL;
    }
    if (!w->root_started)
        return finish_failed(err, WK_ERR_INTERNAL, "no value written");
    put_char(w, '\n');
    if (w->failed != WK_ERR_NONE)
        return finish_failed(err, w->failed, w->misuse);
    w->buf[w->len] = '\0'; /* reserve() always keeps room for it */
    text = w->buf;
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
    w->finished = true;
    return text;
}

/* ==== reader ========================================================================= */

#define ARENA_FIRST_CHUNK (16 * 1024)
#define ARENA_MAX_CHUNK (1024 * 1024)
#define STACK_INITIAL 64

typedef struct member member;

struct wk_json {
    wk_json_type type;
    bool is_root; /* only the root may be passed to wk_json_free */
    bool boolean; /* WK_JSON_BOOL */
    size_t count; /* WK_JSON_ARRAY / WK_JSON_OBJECT */
    union {
        const char *text; /* WK_JSON_STRING (decoded), WK_JSON_NUMBER (as written) */
        member *members;  /* WK_JSON_ARRAY (keys NULL) / WK_JSON_OBJECT */
    } u;
};

struct member {
    const char *key;
    wk_json value;
};

/* One block of the arena; blocks are only freed all together. */
typedef struct chunk {
    struct chunk *next;
    size_t used;
    size_t size;
    max_align_t data[];
} chunk;

/* What wk_json_parse hands out: the root node first, so the root's address is the
 * tree's. */
typedef struct tree {
    wk_json root;
    chunk *chunks;
} tree;

typedef struct parser {
    const unsigned char *s;
    size_t len;
    size_t pos;
    chunk *chunks; /* newest first */
    size_t next_chunk;
    member *stack; /* members of the containers being parsed, innermost last */
    size_t top;
    size_t cap;
    wk_error *err;
} parser;

static void free_chunks(chunk *c)
{
    while (c != NULL) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
}

static int nomem(parser *p)
{
    return wk_error_set(p->err, WK_ERR_NOMEM, "out of memory while parsing JSON");
}

/* size bytes aligned to align (a power of two no larger than max_align_t's), or NULL
 * with the error set. */
static void *arena_alloc(parser *p, size_t size, size_t align)
{
    chunk *c = p->chunks;

    if (c != NULL) {
        size_t at = (c->used + align - 1) & ~(align - 1);
        if (at <= c->size && size <= c->size - at) {
            c->used = at + size;
            return (char *)c->data + at;
        }
    }
    size_t want = p->next_chunk;
    if (want < size)
        want = size;
    if (want > SIZE_MAX - sizeof(chunk)) {
        nomem(p);
        return NULL;
    }
    c = malloc(sizeof(chunk) + want);
    if (c == NULL) {
        nomem(p);
        return NULL;
    }
    c->size = want;
    c->used = size;
    if (p->chunks != NULL && size > p->next_chunk / 2) {
        /* A big block of its own: keep the current chunk in front for small ones. */
        c->next = p->chunks->next;
        p->chunks->next = c;
    } else {
        c->next = p->chunks;
        p->chunks = c;
        if (p->next_chunk < ARENA_MAX_CHUNK)
            p->next_chunk *= 2;
    }
    return c->data;
}

static int syntax_error(parser *p, size_t at, const char *what)
{
    return wk_error_set(p->err, WK_ERR_CORRUPT, "invalid JSON at byte %zu: %s", at, what);
}

/* "expected X, found Y" at the current position. */
static int unexpected(parser *p, const char *expected)
{
    if (p->pos >= p->len)
        return wk_error_set(p->err, WK_ERR_CORRUPT,
                            "invalid JSON at byte %zu: expected %s, found end of input", p->pos,
                            expected);
    unsigned char c = p->s[p->pos];
    if (c > 0x20 && c < 0x7f && c != '"' && c != '\\')
        return wk_error_set(p->err, WK_ERR_CORRUPT,
                            "invalid JSON at byte %zu: expected %s, found \"%c\"", p->pos, expected,
                            c);
    if (c == '"' || c == '\\')
        return wk_error_set(p->err, WK_ERR_CORRUPT,
                            "invalid JSON at byte %zu: expected %s, found \"\\%c\"", p->pos,
                            expected, c);
    return wk_error_set(p->err, WK_ERR_CORRUPT,
                        "invalid JSON at byte %zu: expected %s, found byte 0x%02X", p->pos,
                        expected, c);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The 4 hex digits after "\u" at s[at], which must have at least 6 readable bytes;
 * -1 if they are not hex. */
static long read_u_escape(const unsigned char *s, size_t at)
{
    long v = 0;

    for (size_t i = 2; i < 6; i++) {
        int d = hex_value(s[at + i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t put_utf8(char *dst, unsigned long cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xC0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xE0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string literal starting at the '"' at p->pos; *out gets its decoded text in the
 * arena. Decoding never makes text longer (a 6-byte \u escape gives at most 3 bytes, a
 * 12-byte pair 4), so the raw length bounds the result. */
static int parse_string(parser *p, const char **out)
{
    const unsigned char *s = p->s;
    size_t open = p->pos;
    size_t start = open + 1;
    size_t end = start;

    while (end < p->len && s[end] != '"')
        end += s[end] == '\\' ? 2 : 1;
    if (end >= p->len)
        return syntax_error(p, open, "unterminated string");

    char *dst = arena_alloc(p, end - start + 1, 1);
    if (dst == NULL)
        return -1;
    size_t n = 0;
    size_t i = start;
    while (i < end) {
        unsigned char c = s[i];

        if (c >= 0x20 && c != '\\' && c < 0x80) {
            dst[n++] = (char)c;
            i++;
            continue;
        }
        if (c < 0x20)
            return syntax_error(p, i, "unescaped control character in string");
        if (c >= 0x80) {
            size_t k = utf8_seq_len(s + i, end - i);
            if (k == 0)
                return syntax_error(p, i, "invalid UTF-8 in string");
            memcpy(dst + n, s + i, k);
            n += k;
            i += k;
            continue;
        }
        /* A backslash; the scan above guarantees s[i + 1] is inside the string. */
        switch (s[i + 1]) {
        case '"':
        case '\\':
        case '/':
            dst[n++] = (char)s[i + 1];
            break;
        case 'b':
            dst[n++] = '\b';
            break;
        case 'f':
            dst[n++] = '\f';
            break;
        case 'n':
            dst[n++] = '\n';
            break;
        case 'r':
            dst[n++] = '\r';
            break;
        case 't':
            dst[n++] = '\t';
            break;
        case 'u': {
            long cp = end - i >= 6 ? read_u_escape(s, i) : -1;
            if (cp < 0)
                return syntax_error(p, i, "invalid \\u escape in string");
            if (cp == 0)
                return syntax_error(p, i, "\\u0000 is not allowed in strings");
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return syntax_error(p, i, "unpaired low surrogate in string");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long low = -1;
                if (end - i >= 12 && s[i + 6] == '\\' && s[i + 7] == 'u')
                    low = read_u_escape(s, i + 6);
                if (low < 0xDC00 || low > 0xDFFF)
                    return syntax_error(p, i, "unpaired high surrogate in string");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                i += 6;
            }
            n += put_utf8(dst + n, (unsigned long)cp);
            i += 6;
            continue;
        }
        default:
            return syntax_error(p, i, "invalid escape in string");
        }
        i += 2;
    }
    dst[n] = '\0';
    p->pos = end + 1;
    *out = dst;
    return 0;
}

static int parse_number(parser *p, wk_json *out)
{
    const unsigned char *s = p->s;
    size_t start = p->pos;
    size_t i = start;

    if (s[i] == '-')
        i++;
    if (i >= p->len || !is_digit(s[i])) {
        p->pos = i;
        return unexpected(p, "digit");
    }
    if (s[i] == '0') {
        i++;
        if (i < p->len && is_digit(s[i]))
            return syntax_error(p, i - 1, "leading zeros are not allowed");
    } else {
        while (i < p->len && is_digit(s[i]))
            i++;
    }
    if (i < p->len && s[i] == '.') {
        i++;
        if (i >= p->len || !is_digit(s[i])) {
            p->pos = i;
            return unexpected(p, "digit after decimal point");
        }
        while (i < p->len && is_digit(s[i]))
            i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= p->len || !is_digit(s[i])) {
            p->pos = i;
            return unexpected(p, "digit in exponent");
        }
        while (i < p->len && is_digit(s[i]))
            i++;
    }

    char *text = arena_alloc(p, i - start + 1, 1);
    if (text == NULL)
        return -1;
    memcpy(text, s + start, i - start);
    text[i - start] = '\0';
    out->type = WK_JSON_NUMBER;
    out->u.text = text;
    p->pos = i;
    return 0;
}

static int parse_literal(parser *p, const char *word, wk_json *out)
{
    size_t n = strlen(word);

    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return syntax_error(p, p->pos, "invalid literal (expected true, false or null)");
    p->pos += n;
    if (word[0] == 'n') {
        out->type = WK_JSON_NULL;
    } else {
        out->type = WK_JSON_BOOL;
        out->boolean = word[0] == 't';
    }
    return 0;
}

static int push_member(parser *p, const char *key, const wk_json *value)
{
    if (p->top == p->cap) {
        size_t cap = p->cap == 0 ? STACK_INITIAL : p->cap * 2;
        member *stack = realloc(p->stack, cap * sizeof(member));
        if (stack == NULL)
            return nomem(p);
        p->stack = stack;
        p->cap = cap;
    }
    p->stack[p->top].key = key;
    p->stack[p->top].value = *value;
    p->top++;
    return 0;
}

/* Moves the members pushed since `base` into the arena as out's children. */
static int close_container(parser *p, size_t base, wk_json_type type, wk_json *out)
{
    size_t count = p->top - base;
    member *members = NULL;

    if (count > 0) {
        members = arena_alloc(p, count * sizeof(member), alignof(member));
        if (members == NULL)
            return -1;
        memcpy(members, p->stack + base, count * sizeof(member));
    }
    p->top = base;
    out->type = type;
    out->count = count;
    out->u.members = members;
    return 0;
}

static int parse_value(parser *p, int depth, wk_json *out);

/* An object or array starting at p->pos; `depth` containers enclose it. */
static int parse_container(parser *p, int depth, wk_json *out)
{
    bool is_object = p->s[p->pos] == '{';
    unsigned char close = is_object ? '}' : ']';
    size_t base = p->top;

    if (depth >= WK_JSON_MAX_DEPTH)
        return syntax_error(p, p->pos, "nesting too deep");
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return close_container(p, base, is_object ? WK_JSON_OBJECT : WK_JSON_ARRAY, out);
    }
    for (;;) {
        const char *key = NULL;
        wk_json value;

        if (is_object) {
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return unexpected(p, "string as member name");
            if (parse_string(p, &key) < 0)
                return -1;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return unexpected(p, "\":\"");
            p->pos++;
        }
        if (parse_value(p, depth + 1, &value) < 0)
            return -1;
        if (push_member(p, key, &value) < 0)
            return -1;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == close)
                return syntax_error(p, p->pos, "trailing comma");
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return close_container(p, base, is_object ? WK_JSON_OBJECT : WK_JSON_ARRAY, out);
        }
        return unexpected(p, is_object ? "\",\" or \"}\"" : "\",\" or \"]\"");
    }
}

static int parse_value(parser *p, int depth, wk_json *out)
{
    memset(out, 0, sizeof(*out));
    skip_ws(p);
    if (p->pos >= p->len)
        return unexpected(p, "a value");
    switch (p->s[p->pos]) {
    case '{':
    case '[':
        return parse_container(p, depth, out);
    case '"':
        out->type = WK_JSON_STRING;
        return parse_string(p, &out->u.text);
    case 't':
        return parse_literal(p, "true", out);
    case 'f':
        return parse_literal(p, "false", out);
    case 'n':
        return parse_literal(p, "null", out);
    default:
        if (p->s[p->pos] == '-' || is_digit(p->s[p->pos]))
            return parse_number(p, out);
        return unexpected(p, "a value");
    }
}

int wk_json_parse(const char *text, size_t len, wk_json **out, wk_error *err)
{
    parser p = {
        .s = (const unsigned char *)text,
        .len = text == NULL ? 0 : len,
        .next_chunk = ARENA_FIRST_CHUNK,
        .err = err,
    };
    wk_json root;
    tree *t;
    int rc = -1;

    if (parse_value(&p, 0, &root) < 0)
        goto out;
    skip_ws(&p);
    if (p.pos < p.len) {
        syntax_error(&p, p.pos, "unexpected data after the value");
        goto out;
    }
    t = malloc(sizeof(tree));
    if (t == NULL) {
        nomem(&p);
        goto out;
    }
    t->root = root;
    t->root.is_root = true;
    t->chunks = p.chunks;
    p.chunks = NULL;
    *out = &t->root;
    rc = 0;
out:
    free(p.stack);
    free_chunks(p.chunks);
    return rc;
}

void wk_json_free(wk_json *v)
{
    if (v == NULL || !v->is_root)
        return;
    tree *t = (tree *)v; /* the root is the first member of its tree */
    free_chunks(t->chunks);
    free(t);
}

wk_json_type wk_json_type_of(const wk_json *v)
{
    return v == NULL ? WK_JSON_NULL : v->type;
}

const wk_json *wk_json_get(const wk_json *object, const char *key)
{
    if (object == NULL || object->type != WK_JSON_OBJECT || key == NULL)
        return NULL;
    for (size_t i = object->count; i > 0; i--) {
        const member *m = &object->u.members[i - 1];
        if (strcmp(m->key, key) == 0)
            return &m->value;
    }
    return NULL;
}

size_t wk_json_length(const wk_json *v)
{
    if (v == NULL || (v->type != WK_JSON_ARRAY && v->type != WK_JSON_OBJECT))
        return 0;
    return v->count;
}

const wk_json *wk_json_at(const wk_json *array, size_t i)
{
    if (array == NULL || array->type != WK_JSON_ARRAY || i >= array->count)
        return NULL;
    return &array->u.members[i].value;
}

const char *wk_json_object_key(const wk_json *object, size_t i)
{
    if (object == NULL || object->type != WK_JSON_OBJECT || i >= object->count)
        return NULL;
    return object->u.members[i].key;
}

const wk_json *wk_json_object_value(const wk_json *object, size_t i)
{
    if (object == NULL || object->type != WK_JSON_OBJECT || i >= object->count)
        return NULL;
    return &object->u.members[i].value;
}

const char *wk_json_string_of(const wk_json *v)
{
    if (v == NULL || v->type != WK_JSON_STRING)
        return NULL;
    return v->u.text;
}

const char *wk_json_number_text(const wk_json *v)
{
    if (v == NULL || v->type != WK_JSON_NUMBER)
        return NULL;
    return v->u.text;
}

/* Splits an integer number's text into sign and magnitude; -1 for a fraction, an
 * exponent or a magnitude beyond 64 bits. */
static int integer_parts(const wk_json *v, bool *negative, uint64_t *magnitude)
{
    const char *s = wk_json_number_text(v);
    uint64_t m = 0;

    if (s == NULL)
        return -1;
    *negative = s[0] == '-';
    if (*negative)
        s++;
    for (; *s != '\0'; s++) {
        if (!is_digit((unsigned char)*s))
            return -1; /* '.', 'e' or 'E' */
        unsigned d = (unsigned)(*s - '0');
        if (m > (UINT64_MAX - d) / 10)
            return -1;
        m = m * 10 + d;
    }
    *magnitude = m;
    return 0;
}

int wk_json_int_of(const wk_json *v, int64_t *out)
{
    bool negative;
    uint64_t m;

    if (integer_parts(v, &negative, &m) < 0)
        return -1;
    if (negative) {
        if (m > (uint64_t)INT64_MAX + 1)
            return -1;
        *out = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
    } else {
        if (m > (uint64_t)INT64_MAX)
            return -1;
        *out = (int64_t)m;
    }
    return 0;
}

int wk_json_uint_of(const wk_json *v, uint64_t *out)
{
    bool negative;
    uint64_t m;

    if (integer_parts(v, &negative, &m) < 0)
        return -1;
    if (negative && m != 0)
        return -1;
    *out = m;
    return 0;
}

int wk_json_bool_of(const wk_json *v, bool *out)
{
    if (v == NULL || v->type != WK_JSON_BOOL)
        return -1;
    *out = v->boolean;
    return 0;
}

static int member_error(wk_error *err, const char *key)
{
    return wk_error_set(err, WK_ERR_CORRUPT, "missing or invalid member \"%s\"",
                        key == NULL ? "" : key);
}

int wk_json_get_string(const wk_json *obj, const char *key, const char **out, wk_error *err)
{
    const char *s = wk_json_string_of(wk_json_get(obj, key));

    if (s == NULL)
        return member_error(err, key);
    *out = s;
    return 0;
}

int wk_json_get_int(const wk_json *obj, const char *key, int64_t *out, wk_error *err)
{
    if (wk_json_int_of(wk_json_get(obj, key), out) < 0)
        return member_error(err, key);
    return 0;
}

int wk_json_get_uint(const wk_json *obj, const char *key, uint64_t *out, wk_error *err)
{
    if (wk_json_uint_of(wk_json_get(obj, key), out) < 0)
        return member_error(err, key);
    return 0;
}

int wk_json_get_bool(const wk_json *obj, const char *key, bool *out, wk_error *err)
{
    if (wk_json_bool_of(wk_json_get(obj, key), out) < 0)
        return member_error(err, key);
    return 0;
}
