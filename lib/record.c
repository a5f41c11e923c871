/* record: a backup's or a dump's record stored and read back under one size limit;
 * storage layer (over storage and stream). */
#include "record.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int wk_record_write(wk_storage *st, const char *path, const char *text, size_t len, wk_error *err)
{
    if (len > WK_RECORD_MAX_BYTES) {
        wk_error_set(err, WK_ERR_IO,
                     "record \"%s\" would be %zu bytes, more than the %zu walkeep reads back", path,
                     len, WK_RECORD_MAX_BYTES);
        wk_error_hint(err, "nothing was stored; split the work (e.g. dump fewer tables at once)");
        return -1;
    }
    return wk_storage_put_bytes(st, path, WK_PUT_NOREPLACE, text, len, err);
}

int wk_record_read(wk_storage *st, const char *path, uint8_t **text, size_t *len, wk_error *err)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    int rc = -1;
    wk_stage *sink = wk_stage_memory_new(WK_RECORD_MAX_BYTES, &buf, &n, err);
    if (sink == NULL)
        return -1;
    if (wk_storage_get(st, path, sink, err) != 0 || wk_stage_finish(sink, err) != 0) {
        if (err != NULL && err->code == WK_ERR_CORRUPT)
            wk_error_prefix(err, "record \"%s\"", path);
        goto out;
    }
    *text = buf;
    *len = n;
    buf = NULL;
    rc = 0;
out:
    wk_stage_free(sink);
    free(buf);
    return rc;
}

void wk_record_stream_write(wk_json_writer *w, const wk_record_stream *s)
{
    char hex[WK_FINGERPRINT_HEX_LEN + 1];
    wk_json_begin_object(w);
    wk_json_kv_string(w, "name", s->name);
    wk_json_kv_string(w, "object", s->object);
    if (s->has_tablespace) {
        wk_json_kv_uint(w, "tablespace", s->tablespace);
        wk_json_kv_string(w, "location", s->location);
    }
    wk_json_kv_uint(w, "bytes", s->bytes);
    wk_json_kv_uint(w, "stored_bytes", s->stored_bytes);
    wk_fingerprint_hex(&s->fingerprint, hex);
    wk_json_kv_string(w, "fingerprint", hex);
    wk_json_end_object(w);
}

int wk_record_stream_read(const wk_json *js, bool with_tablespace, wk_record_stream *out,
                          wk_error *err)
{
    wk_record_stream s = {.has_tablespace = with_tablespace};
    const char *hex;
    uint64_t tablespace = 0;
    if (wk_json_get_string(js, "name", &s.name, err) != 0 ||
        wk_json_get_string(js, "object", &s.object, err) != 0 ||
        (with_tablespace && wk_json_get_uint(js, "tablespace", &tablespace, err) != 0) ||
        wk_json_get_uint(js, "bytes", &s.bytes, err) != 0 ||
        wk_json_get_uint(js, "stored_bytes", &s.stored_bytes, err) != 0 ||
        wk_json_get_string(js, "fingerprint", &hex, err) != 0)
        return -1;
    if (tablespace > UINT32_MAX)
        return wk_error_set(err, WK_ERR_CORRUPT, "member \"%s\" out of range", "tablespace");
    if (wk_fingerprint_parse(hex, &s.fingerprint) != 0)
        return wk_error_set(err, WK_ERR_CORRUPT, "invalid stream \"%.64s\"", s.name);
    s.tablespace = (uint32_t)tablespace;
    if (with_tablespace)
        s.location = wk_json_string_of(wk_json_get(js, "location"));
    *out = s;
    return 0;
}

/* ---- times ------------------------------------------------------------------------ */

void wk_record_format_time(time_t t, char *buf, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%d %H:%M:%S+00", &tm);
}

static bool valid_date(int year, int mon, int day, int hour, int min, int sec)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mon < 1 || mon > 12 || day < 1 || hour > 23 || min > 59 || sec > 60 || hour < 0 ||
        min < 0 || sec < 0)
        return false;
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return day <= days[mon - 1] + (mon == 2 && leap ? 1 : 0);
}

int wk_record_parse_time(const char *text, time_t *out)
{
    struct tm tm = {0};
    int year, mon, day, hour, min, sec, consumed = 0;
    if (sscanf(text, "%4d-%2d-%2d%*1[ T]%2d:%2d:%2d%n", &year, &mon, &day, &hour, &min, &sec,
               &consumed) != 6)
        return -1;
    const char *p = text + consumed;
    if (*p == '.') /* fractions of a second are accepted and dropped */
        while (*++p >= '0' && *p <= '9')
            ;
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh = 0, om = 0, n = 0;
        if (p[1] < '0' || p[1] > '9' || sscanf(p + 1, "%2d%n", &oh, &n) != 1)
            return -1;
        p += 1 + n;
        if (*p == ':')
            p++;
        if (*p >= '0' && *p <= '9') {
            if (sscanf(p, "%2d%n", &om, &n) != 1)
                return -1;
            p += n;
        }
        if (oh > 15 || om > 59) /* PostgreSQL's own limits for a time zone offset */
            return -1;
        offset = sign * (oh * 3600L + om * 60L);
    } else if (*p == '\0') {
        /* No offset: local time, as the server would read it with the same TimeZone. */
        struct tm local = {.tm_year = year - 1900,
                           .tm_mon = mon - 1,
                           .tm_mday = day,
                           .tm_hour = hour,
                           .tm_min = min,
                           .tm_sec = sec,
                           .tm_isdst = -1};
        if (!valid_date(year, mon, day, hour, min, sec))
            return -1;
        *out = mktime(&local);
        return 0;
    } else {
        return -1;
    }
    if (*p != '\0' || !valid_date(year, mon, day, hour, min, sec))
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    *out = timegm(&tm) - offset;
    return 0;
}
