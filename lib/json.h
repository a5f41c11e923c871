/* json: a stable, pretty-printing writer for walkeep's backup records and a strict RFC 8259
 * reader for them and PostgreSQL's backup_manifest; a parsed tree owns all its memory. */
#ifndef WK_JSON_H
#define WK_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Deepest nesting of arrays and objects the writer emits and the parser accepts
 * (a top-level array or object is depth 1). */
#define WK_JSON_MAX_DEPTH 64

/* ---- writer ------------------------------------------------------------------------ */

/* Builds one JSON document in memory, as written: member order is kept, two-space
 * indentation, one member or element per line, empty containers as {} and [].
 * Builder calls return nothing; the first failure (out of memory, or misuse such as a
 * value in an object without a key) is recorded, later calls do nothing, and
 * wk_json_writer_finish reports it. */
typedef struct wk_json_writer wk_json_writer;

/* Returns a new, empty writer, or NULL when out of memory. Every writer function
 * accepts that NULL: builder calls do nothing and finish reports WK_ERR_NOMEM, so a
 * caller may check only the result of finish. */
wk_json_writer *wk_json_writer_new(void);

/* Frees the writer and any text not handed out by finish. Accepts NULL. */
void wk_json_writer_free(wk_json_writer *w);

/* Open / close an object or array. A container opened inside an object needs a key
 * first; nesting deeper than WK_JSON_MAX_DEPTH is misuse. Closing a container of the
 * other kind, closing with nothing open, or closing an object right after a key is
 * misuse. */
void wk_json_begin_object(wk_json_writer *w);
void wk_json_end_object(wk_json_writer *w);
void wk_json_begin_array(wk_json_writer *w);
void wk_json_end_array(wk_json_writer *w);

/* Writes a member name inside an object; the next call must write its value. A key
 * outside an object, a NULL key, or two keys in a row is misuse. Keys are escaped like
 * strings. Repeating a name is not detected: the caller keeps names unique. */
void wk_json_key(wk_json_writer *w, const char *key);

/* Scalar values: an array element, the member value after a key, or the one top-level
 * value. s is a NUL-terminated string in UTF-8: '"', '\\' and control characters are
 * escaped (\n \t \r \b \f in short form, others as \u00xx), valid UTF-8 is copied as
 * is, and each byte that does not belong to a valid UTF-8 sequence (stray continuation
 * byte, truncated or overlong sequence, surrogate, beyond U+10FFFF) becomes U+FFFD, so
 * the output is always valid JSON. A NULL s writes null. */
void wk_json_string(wk_json_writer *w, const char *s);
void wk_json_int(wk_json_writer *w, int64_t v);
void wk_json_uint(wk_json_writer *w, uint64_t v);
void wk_json_bool(wk_json_writer *w, bool v);
void wk_json_null(wk_json_writer *w);

/* Key followed by a value, for objects. kv_string with a NULL s writes null. */
void wk_json_kv_string(wk_json_writer *w, const char *key, const char *s);
void wk_json_kv_int(wk_json_writer *w, const char *key, int64_t v);
void wk_json_kv_uint(wk_json_writer *w, const char *key, uint64_t v);
void wk_json_kv_bool(wk_json_writer *w, const char *key, bool v);

/* Ends the document and returns its text (NUL-terminated, ending with "\n"); the
 * caller frees it with free(). Returns NULL with WK_ERR_NOMEM if any allocation failed
 * (or w is NULL), or with WK_ERR_INTERNAL on misuse: unbalanced containers, a key
 * without its value, a value without a key, no value or more than one top-level value.
 * Call it once; afterwards the writer can only be freed. */
char *wk_json_writer_finish(wk_json_writer *w, wk_error *err);

/* ---- reader ------------------------------------------------------------------------ */

typedef enum wk_json_type {
    WK_JSON_NULL,
    WK_JSON_BOOL,
    WK_JSON_NUMBER,
    WK_JSON_STRING,
    WK_JSON_ARRAY,
    WK_JSON_OBJECT
} wk_json_type;

/* One value of a parsed tree. Every node belongs to the tree returned by
 * wk_json_parse and lives until that tree is freed. */
typedef struct wk_json wk_json;

/* Parses exactly one JSON value from text[0..len) (text need not be NUL-terminated),
 * with optional whitespace around it, strictly per RFC 8259: no trailing commas,
 * comments, single quotes, leading zeros, leading '+', NaN or Infinity; strings must be
 * valid UTF-8 with no raw control characters; \u escapes are decoded to UTF-8, with
 * surrogate pairs joined and lone surrogates refused. \u0000 is refused too, so every
 * string is a safe C string. Nesting deeper than WK_JSON_MAX_DEPTH is refused. An
 * object may repeat a key; lookups find the last one.
 * On success sets *out to the tree (free it with wk_json_free) and returns 0. On
 * failure returns -1 and leaves *out alone: WK_ERR_CORRUPT with the message
 * "invalid JSON at byte N: <what>" (N counts from 0), or WK_ERR_NOMEM. */
int wk_json_parse(const char *text, size_t len, wk_json **out, wk_error *err);

/* Frees a tree returned by wk_json_parse. Accepts NULL; does nothing when given a
 * node inside a tree rather than its root. */
void wk_json_free(wk_json *v);

/* The accessors below accept NULL (e.g. the result of a failed lookup) and then
 * answer as for a value of the wrong type. */

/* The value's type; NULL reads as WK_JSON_NULL. */
wk_json_type wk_json_type_of(const wk_json *v);

/* The value of member `key` of an object (the last one if the key repeats), or NULL
 * when v is not an object or has no such member. Linear in the member count. */
const wk_json *wk_json_get(const wk_json *object, const char *key);

/* Number of elements of an array or members of an object; 0 for anything else. */
size_t wk_json_length(const wk_json *v);

/* Element i of an array, or NULL when v is not an array or i is out of range. */
const wk_json *wk_json_at(const wk_json *array, size_t i);

/* Name / value of member i of an object in document order (repeated keys included),
 * or NULL when v is not an object or i is out of range. */
const char *wk_json_object_key(const wk_json *object, size_t i);
const wk_json *wk_json_object_value(const wk_json *object, size_t i);

/* The decoded UTF-8 text of a string, or NULL when v is not a string. */
const char *wk_json_string_of(const wk_json *v);

/* The number exactly as written in the document ("1.50e3"), or NULL when v is not a
 * number. */
const char *wk_json_number_text(const wk_json *v);

/* A number written as an integer (no fraction, no exponent: "1e3" and "1.0" do not
 * count) that fits the type, converted from its text. "-0" reads as 0. Returns 0 and
 * sets *out, or -1 leaving *out alone. */
int wk_json_int_of(const wk_json *v, int64_t *out);
int wk_json_uint_of(const wk_json *v, uint64_t *out);

/* true / false. Returns 0 and sets *out, or -1 leaving *out alone. */
int wk_json_bool_of(const wk_json *v, bool *out);

/* Typed member lookups for readers of records: return 0 and set *out, or -1 with
 * WK_ERR_CORRUPT 'missing or invalid member "key"' when obj is not an object, has no
 * such member, or the member has the wrong type or range (*out untouched). The string
 * from get_string lives as long as the tree. */
int wk_json_get_string(const wk_json *obj, const char *key, const char **out, wk_error *err);
int wk_json_get_int(const wk_json *obj, const char *key, int64_t *out, wk_error *err);
int wk_json_get_uint(const wk_json *obj, const char *key, uint64_t *out, wk_error *err);
int wk_json_get_bool(const wk_json *obj, const char *key, bool *out, wk_error *err);

#endif
