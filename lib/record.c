/* record: a backup's or a dump's record stored and read back under one size limit;
 * storage layer (over storage and stream). */
#include "record.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* The fields of a time as text; *has_offset tells whether it named its UTC offset. */
typedef struct time_fields {
    struct tm tm;   /* the wall-clock fields (tm_isdst -1) */
    int64_t micros; /* fractions of a second, rounded down to microseconds */
    bool has_offset;
    long offset; /* seconds east of UTC, when has_offset */
} time_fields;

static int parse_fields(const char *text, time_fields *f)
{
    int year, mon, day, hour, min, sec, consumed = 0;
    memset(f, 0, sizeof(*f));
    if (sscanf(text, "%4d-%2d-%2d%*1[ T]%2d:%2d:%2d%n", &year, &mon, &day, &hour, &min, &sec,
               &consumed) != 6)
        return -1;
    const char *p = text + consumed;
    if (*p == '.') {
        int64_t scale = 100000;
        while (*++p >= '0' && *p <= '9') {
            f->micros += (*p - '0') * scale;
            scale /= 10;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
        f->has_offset = true;
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
        f->has_offset = true;
        f->offset = sign * (oh * 3600L + om * 60L);
    }
    if (*p != '\0' || !valid_date(year, mon, day, hour, min, sec))
        return -1;
    f->tm = (struct tm){.tm_year = year - 1900,
                        .tm_mon = mon - 1,
                        .tm_mday = day,
                        .tm_hour = hour,
                        .tm_min = min,
                        .tm_sec = sec,
                        .tm_isdst = -1};
    return 0;
}

int wk_record_parse_time(const char *text, time_t *out)
{
    time_fields f;
    if (parse_fields(text, &f) != 0)
        return -1;
    if (!f.has_offset) {
        /* No offset: local time, as the server would read it with the same TimeZone. */
        *out = mktime(&f.tm);
        return 0;
    }
    *out = timegm(&f.tm) - f.offset;
    return 0;
}

/* The readings of wall-clock time want in the current TZ: one for each UTC offset in force
 * within two days of it (a daylight-saving change, or a zone moving its standard time),
 * each kept when it reads back as the same wall clock. readings[] gets them, distinct and
 * in order; offsets[] the offsets before and after the time (equal when none changed). */
static size_t local_readings(const struct tm *want, time_t readings[2], long offsets[2])
{
    struct tm wall = *want;
    time_t naive = timegm(&wall); /* the wall clock read as UTC */
    size_t n = 0;
    for (int day = -2; day <= 2; day++) {
        struct tm at;
        time_t probe = naive + day * 86400;
        if (localtime_r(&probe, &at) == NULL)
            continue;
        if (day == -2)
            offsets[0] = at.tm_gmtoff;
        if (day == 2)
            offsets[1] = at.tm_gmtoff;
        time_t t = naive - at.tm_gmtoff;
        struct tm back;
        if (localtime_r(&t, &back) == NULL || back.tm_year != want->tm_year ||
            back.tm_mon != want->tm_mon || back.tm_mday != want->tm_mday ||
            back.tm_hour != want->tm_hour || back.tm_min != want->tm_min ||
            back.tm_sec != want->tm_sec)
            continue;
        if (n > 0 && readings[n - 1] == t)
            continue;
        if (n == 1 && readings[0] > t) {
            readings[1] = readings[0];
            readings[0] = t;
            n = 2;
        } else if (n < 2 && (n == 0 || readings[0] != t)) {
            readings[n++] = t;
        }
    }
    return n;
}

bool wk_record_zone_known(const char *zone)
{
    if (zone == NULL || zone[0] == '\0' || zone[0] == '/' || strstr(zone, "..") != NULL)
        return false;
    const char *dir = getenv("TZDIR");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s",
             dir != NULL && dir[0] != '\0' ? dir : "/usr/share/zoneinfo", zone);
    /* A compiled zone file (what glibc reads; another file would silently mean UTC). */
    FILE *f = fopen(path, "rbe");
    char magic[4] = {0};
    bool known = f != NULL && fread(magic, 1, sizeof(magic), f) == sizeof(magic) &&
                 memcmp(magic, "TZif", 4) == 0;
    if (f != NULL)
        fclose(f);
    return known;
}

bool wk_record_time_valid(const char *text)
{
    time_fields f;
    return parse_fields(text, &f) == 0;
}

int wk_record_parse_time_in(const char *text, const char *zone, int64_t *out, bool *zone_used,
                            wk_error *err)
{
    time_fields f;
    if (parse_fields(text, &f) != 0)
        return wk_error_set(err, WK_ERR_USAGE,
                            "\"%s\" is not a time such as '2026-11-25 14:03:26.5+01'", text);
    if (zone_used != NULL)
        *zone_used = !f.has_offset;
    if (f.has_offset) {
        *out = ((int64_t)timegm(&f.tm) - f.offset) * 1000000 + f.micros;
        return 0;
    }
    if (zone == NULL)
        return wk_error_set(err, WK_ERR_USAGE, "time \"%s\" names no UTC offset", text);
    if (!wk_record_zone_known(zone))
        return wk_error_set(err, WK_ERR_USAGE, "unknown time zone \"%s\"", zone);
    /* The zone's rules: TZ for the length of the call, then what it was. */
    const char *old = getenv("TZ");
    char *saved = old != NULL ? strdup(old) : NULL;
    time_t readings[2];
    long offsets[2] = {0, 0};
    setenv("TZ", zone, 1);
    tzset();
    size_t n = local_readings(&f.tm, readings, offsets);
    if (saved != NULL)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
    char a[64], b[64];
    if (n == 2) {
        wk_record_format_time(readings[0], a, sizeof(a));
        wk_record_format_time(readings[1], b, sizeof(b));
        wk_error_set(err, WK_ERR_USAGE,
                     "time \"%s\" is ambiguous in time zone %s: the clocks were set back and "
                     "showed it twice",
                     text, zone);
        wk_error_hint(err,
                      "give it with its UTC offset: it is %s (the first time) or %s (the "
                      "second)",
                      a, b);
        return -1;
    }
    if (n == 0) {
        wk_record_format_time(timegm(&f.tm) - offsets[0], a, sizeof(a));
        wk_record_format_time(timegm(&f.tm) - offsets[1], b, sizeof(b));
        wk_error_set(err, WK_ERR_USAGE,
                     "time \"%s\" does not exist in time zone %s: the clocks were set forward "
                     "past it",
                     text, zone);
        wk_error_hint(err,
                      "give it with its UTC offset: read with the offset before the change it "
                      "is %s, with the one after %s",
                      a, b);
        return -1;
    }
    *out = (int64_t)readings[0] * 1000000 + f.micros;
    return 0;
}
