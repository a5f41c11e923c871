/* s3xml: the little XML that S3 speaks: reading elements of an answer and building a
 * request body. Layer 4 (storage), beside the S3 client. */
#include "s3xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading ---------------------------------------------------------------------- */

/* Decodes one entity at s ("&amp;"...); returns its length in s and writes the bytes into
 * dec (*dec_len), or 0 when s is no entity we know (the '&' is then taken literally). */
static size_t decode_entity(const char *s, size_t avail, char dec[4], size_t *dec_len)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        size_t n = strlen(named[i].name);
        if (avail >= n && strncmp(s, named[i].name, n) == 0) {
            dec[0] = named[i].c;
            *dec_len = 1;
            return n;
        }
    }
    if (avail < 4 || s[1] != '#')
        return 0;
    bool hex = s[2] == 'x' || s[2] == 'X';
    size_t i = hex ? 3 : 2;
    unsigned long cp = 0;
    size_t digits = 0;
    for (; i < avail && s[i] != ';' && digits < 8; i++, digits++) {
        int v;
        char c = s[i];
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (hex && c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (hex && c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            return 0;
        cp = cp * (hex ? 16 : 10) + (unsigned long)v;
    }
    if (digits == 0 || i >= avail || s[i] != ';' || cp == 0 || cp > 0x10FFFF)
        return 0;
    if (cp < 0x80) {
        dec[0] = (char)cp;
        *dec_len = 1;
    } else if (cp < 0x800) {
        dec[0] = (char)(0xC0 | (cp >> 6));
        dec[1] = (char)(0x80 | (cp & 0x3F));
        *dec_len = 2;
    } else if (cp < 0x10000) {
        dec[0] = (char)(0xE0 | (cp >> 12));
        dec[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dec[2] = (char)(0x80 | (cp & 0x3F));
        *dec_len = 3;
    } else {
        dec[0] = (char)(0xF0 | (cp >> 18));
        dec[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        dec[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dec[3] = (char)(0x80 | (cp & 0x3F));
        *dec_len = 4;
    }
    return i + 1;
}

/* Finds the element's opening tag at or after from: sets *text to its content and
 * *text_len (0 for <name/>), *end past the closing tag. False when there is none. */
static bool find_element(const char *from, const char *name, const char **text, size_t *text_len,
                         const char **end)
{
    size_t nlen = strlen(name);
    for (const char *p = strchr(from, '<'); p != NULL; p = strchr(p + 1, '<')) {
        if (strncmp(p + 1, name, nlen) != 0)
            continue;
        const char *q = p + 1 + nlen;
        if (*q != '>' && *q != '/' && *q != ' ' && *q != '\t' && *q != '\r' && *q != '\n')
            continue;
        const char *gt = strchr(q, '>');
        if (gt == NULL)
            return false;
        if (gt[-1] == '/') {
            *text = gt + 1;
            *text_len = 0;
            *end = gt + 1;
            return true;
        }
        const char *start = gt + 1;
        for (const char *c = strstr(start, "</"); c != NULL; c = strstr(c + 2, "</")) {
            if (strncmp(c + 2, name, nlen) == 0 && c[2 + nlen] == '>') {
                *text = start;
                *text_len = (size_t)(c - start);
                *end = c + 3 + nlen;
                return true;
            }
        }
        return false;
    }
    return false;
}

int wk_s3_xml_next(const char *xml, size_t *pos, const char *name, char *out, size_t size,
                   wk_error *err)
{
    const char *text;
    const char *end;
    size_t text_len;
    if (!find_element(xml + *pos, name, &text, &text_len, &end))
        return 0;
    size_t used = 0;
    for (size_t i = 0; i < text_len;) {
        char dec[4];
        size_t dec_len = 1;
        size_t consumed = 0;
        if (text[i] == '&')
            consumed = decode_entity(text + i, text_len - i, dec, &dec_len);
        if (consumed == 0) {
            dec[0] = text[i];
            dec_len = 1;
            consumed = 1;
        }
        if (used + dec_len >= size) {
            if (size > 0)
                out[0] = '\0'; /* never leave a partial, unterminated copy */
            return wk_error_set(err, WK_ERR_CORRUPT,
                                "S3 response element <%s> is longer than %zu bytes", name,
                                size > 0 ? size - 1 : 0);
        }
        memcpy(out + used, dec, dec_len);
        used += dec_len;
        i += consumed;
    }
    if (size == 0)
        return wk_error_set(err, WK_ERR_CORRUPT, "no room for S3 response element <%s>", name);
    out[used] = '\0';
    *pos = (size_t)(end - xml);
    return 1;
}

int wk_s3_xml_field(const char *xml, const char *name, char *out, size_t size, wk_error *err)
{
    size_t pos = 0;
    out[0] = '\0';
    return wk_s3_xml_next(xml, &pos, name, out, size, err);
}

bool wk_s3_xml_block(const char *xml, size_t *pos, const char *name, char *scratch)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", name);
    snprintf(close, sizeof(close), "</%s>", name);
    const char *a = strstr(xml + *pos, open);
    if (a == NULL)
        return false;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (b == NULL)
        return false;
    memcpy(scratch, a, (size_t)(b - a));
    scratch[b - a] = '\0';
    *pos = (size_t)(b - xml) + strlen(close);
    return true;
}

time_t wk_s3_xml_time(const char *text)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(text, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return (time_t)-1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

/* ---- building ---------------------------------------------------------------------- */

static void buf_add(wk_s3_xml_buf *b, const char *text, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, text, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void wk_s3_xml_buf_raw(wk_s3_xml_buf *b, const char *markup)
{
    buf_add(b, markup, strlen(markup));
}

void wk_s3_xml_buf_text(wk_s3_xml_buf *b, const char *text)
{
    for (const char *p = text; *p != '\0'; p++) {
        switch (*p) {
        case '&':
            wk_s3_xml_buf_raw(b, "&amp;");
            break;
        case '<':
            wk_s3_xml_buf_raw(b, "&lt;");
            break;
        case '>':
            wk_s3_xml_buf_raw(b, "&gt;");
            break;
        default:
            buf_add(b, p, 1);
            break;
        }
    }
}

void wk_s3_xml_buf_free(wk_s3_xml_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
