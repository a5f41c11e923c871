/* fuzz_object: the object reader (decrypt, version 1 and 2, then decompress, then the
 * fingerprint check) over arbitrary bytes. The first byte picks the codec and whether the
 * bytes are decrypted first. */
#include <stdlib.h>

#include "codec.h"
#include "fuzz.h"
#include "stream.h"

static int lookup(void *arg, int version, const uint8_t id[WK_KEY_ID_BYTES], const wk_key **key,
                  wk_error *err)
{
    (void)arg;
    (void)version;
    (void)id;
    *key = fz_key();
    (void)err;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len < 1)
        return 0;
    static const wk_compress algs[] = {WK_COMPRESS_NONE, WK_COMPRESS_LZ4, WK_COMPRESS_ZSTD};
    wk_compress alg = algs[data[0] % 3];
    bool encrypted = data[0] & 4;
    wk_error err = {0};
    uint8_t *out = NULL;
    size_t out_len = 0;
    wk_fingerprint expected = {{0}};
    wk_stage *chain = wk_stage_memory_new(64u << 20, &out, &out_len, &err);
    if (data[0] & 8)
        chain = wk_stage_fingerprint_check_new(chain, &expected, NULL, &err);
    if (chain != NULL)
        chain = wk_codec_decompress_new(chain, alg, &err);
    if (chain != NULL && encrypted)
        chain = wk_crypt_decrypt_bound_new(chain, lookup, NULL, "wal/0000000100000000/x", &err);
    if (chain == NULL)
        abort();
    /* In pieces, as storage hands them over. */
    size_t step = 1 + (data[0] >> 4) * 4093;
    int rc = 0;
    for (size_t off = 1; off < len && rc == 0; off += step)
        rc = wk_stage_write(chain, data + off, len - off < step ? len - off : step, &err);
    if (rc == 0)
        wk_stage_finish(chain, &err);
    wk_stage_free(chain);
    free(out);
    return 0;
}
