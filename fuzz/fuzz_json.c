/* fuzz_json: the JSON parser, and the record stream reader over what it accepts. */
#include "fuzz.h"
#include "json.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    wk_json *doc = NULL;
    wk_error err = {0};
    if (wk_json_parse((const char *)data, len, &doc, &err) != 0)
        return 0;
    const wk_json *streams = wk_json_get(doc, "streams");
    if (streams != NULL && wk_json_type_of(streams) == WK_JSON_ARRAY)
        for (size_t i = 0; i < wk_json_length(streams); i++) {
            wk_record_stream s;
            wk_record_stream_read(wk_json_at(streams, i), i % 2 == 0, &s, &err);
        }
    wk_json_free(doc);
    return 0;
}
