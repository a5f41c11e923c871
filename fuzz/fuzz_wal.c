/* fuzz_wal: WAL page headers, file names, history files, and the check stage that proves a
 * decoded object is the WAL file asked for. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    wk_error err = {0};
    wk_wal_header hdr;
    wk_wal_name name;
    char text[80];
    if (wk_wal_parse_header(data, len, &hdr, &err) == 0 &&
        wk_wal_parse_name("000000010000000000000005", &name, NULL) == 0) {
        char why[256];
        wk_wal_header_fits(&hdr, &name, why, sizeof(why));
    }
    size_t n = len < sizeof(text) - 1 ? len : sizeof(text) - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    wk_wal_parse_name(text, &name, &err);
    wk_wal_history_entry *entries = NULL;
    size_t count = 0;
    if (wk_wal_parse_history((const char *)data, len, 7, &entries, &count, &err) == 0)
        free(entries);
    static const char *const names[] = {"000000010000000000000005", "00000003.history",
                                        "000000010000000000000002.00000028.backup"};
    uint8_t *out = NULL;
    size_t out_len = 0;
    wk_stage *chain = wk_stage_memory_new(2u << 20, &out, &out_len, &err);
    chain = wk_wal_check_stage_new(chain, names[len % 3], "wal/x", UINT64_C(7212345678901234567),
                                   1u << 20, &err);
    if (chain == NULL)
        abort();
    if (wk_stage_write(chain, data, len, &err) == 0)
        wk_stage_finish(chain, &err);
    wk_stage_free(chain);
    free(out);
    return 0;
}
