/* s3xml: the little XML that S3 speaks: reading elements of an answer (entities decoded)
 * and building a request body with text escaped. Layer 4 (storage), beside the S3 client. */
#ifndef WK_S3XML_H
#define WK_S3XML_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "error.h"

/* The text of the first <name>...</name> element at or after *pos in xml, entities
 * (&amp; &lt; &gt; &quot; &apos;) decoded, copied into out (size bytes); *pos moves past
 * it. Returns 1 when found, 0 when not, -1 (WK_ERR_CORRUPT) when it does not fit. */
int wk_s3_xml_next(const char *xml, size_t *pos, const char *name, char *out, size_t size,
                   wk_error *err);

/* The first <name> element of xml, as wk_s3_xml_next reads it from the start. */
int wk_s3_xml_field(const char *xml, const char *name, char *out, size_t size, wk_error *err);

/* Finds the next <name>...</name> element at or after *pos of xml and copies its raw
 * content (entities still encoded, so that its fields can be read with wk_s3_xml_field)
 * into scratch, which must hold strlen(xml) + 1 bytes; *pos moves past it. False when
 * there is none. */
bool wk_s3_xml_block(const char *xml, size_t *pos, const char *name, char *scratch);

/* An S3 time ("2026-11-25T10:52:26.336Z", ISO 8601, UTC) as a time_t; -1 when it does
 * not parse. */
time_t wk_s3_xml_time(const char *text);

/* A request body being built: p holds len bytes and a NUL. After an allocation failure
 * failed is set and nothing more is added; the owner frees it with wk_s3_xml_buf_free. */
typedef struct wk_s3_xml_buf {
    char *p;
    size_t len, cap;
    bool failed;
} wk_s3_xml_buf;

/* Appends markup as it is. */
void wk_s3_xml_buf_raw(wk_s3_xml_buf *b, const char *markup);

/* Appends character data with & < > escaped. */
void wk_s3_xml_buf_text(wk_s3_xml_buf *b, const char *text);

void wk_s3_xml_buf_free(wk_s3_xml_buf *b);

#endif
