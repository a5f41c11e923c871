/* record: a backup's or a dump's record stored and read back under one size limit;
 * storage layer (over storage and stream). */
#include "record.h"

#include <stdlib.h>

#include "stream.h"

int wk_record_write(wk_storage *st, const char *path, const char *text, size_t len,
                    wk_error *err)
{
    if (len > WK_RECORD_MAX_BYTES) {
        wk_error_set(err, WK_ERR_IO,
                     "record \"%s\" would be %zu bytes, more than the %zu walkeep reads back",
                     path, len, WK_RECORD_MAX_BYTES);
        wk_error_hint(err, "nothing was stored; split the work (e.g. dump fewer tables at once)");
        return -1;
    }
    return wk_storage_put_bytes(st, path, WK_PUT_NOREPLACE, text, len, err);
}

int wk_record_read(wk_storage *st, const char *path, uint8_t **text, size_t *len,
                   wk_error *err)
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
