/* codec: lz4 and zstd compression as pipeline stages. Objects are standard lz4 / zstd
 * frames with their content checksums, so `lz4 -d` / `zstd -d` read them in a disaster. */
#ifndef WK_CODEC_H
#define WK_CODEC_H

#include "stream.h"

typedef enum wk_compress { WK_COMPRESS_NONE = 0, WK_COMPRESS_LZ4, WK_COMPRESS_ZSTD } wk_compress;

#define WK_COMPRESS_LEVEL_DEFAULT (-1000) /* "use the codec's default" */

/* "lz4", "zstd", "none" (any case); returns 0 (writing *out when out is not NULL) or -1. */
int wk_compress_parse(const char *text, wk_compress *out);
/* "lz4", "zstd", "none" ("unknown" for another value). */
const char *wk_compress_name(wk_compress c);

/* Compresses everything written into one frame and passes the frame bytes to next.
 * lz4 compresses independent 64 KiB blocks in two batches at a time, one of them on a
 * helper thread; memory stays fixed (about 2 MiB).
 * level WK_COMPRESS_LEVEL_DEFAULT means the codec default (lz4: 0 fast, zstd: 1 —
 * see docs). WK_COMPRESS_NONE returns a pass-through stage. Takes ownership of next. */
wk_stage *wk_codec_compress_new(wk_stage *next, wk_compress alg, int level, wk_error *err);

/* Decompresses exactly one frame and passes the plaintext to next. finish fails with
 * WK_ERR_CORRUPT if the frame is truncated; write fails with WK_ERR_CORRUPT on bad
 * data, a bad content checksum, or any bytes after the frame. WK_COMPRESS_NONE is a
 * pass-through. Memory stays bounded whatever the input. Takes ownership of next. */
wk_stage *wk_codec_decompress_new(wk_stage *next, wk_compress alg, wk_error *err);

/* Like wk_codec_decompress_new, but the frame's own content checksum is not verified.
 * Only for callers that check a stronger fingerprint of the same plaintext before
 * anything is used (wk_stage_fingerprint_check_new behind this stage): it spares a
 * second pass over every byte. Bad data, truncation and trailing bytes are still
 * refused. */
wk_stage *wk_codec_decompress_unchecked_new(wk_stage *next, wk_compress alg, wk_error *err);

/* Valid level range for alg (lz4: 0..12, zstd: 1..19, none: 0..0). */
int wk_codec_level_valid(wk_compress alg, int level);

/* The ranges as every message states them: "lz4 takes 0 to 12, zstd 1 to 19, none only 0". */
const char *wk_codec_levels_text(void);

/* File-name extension of an object compressed with alg: "lz4", "zst", "raw". */
const char *wk_codec_extension(wk_compress alg);
/* Reverse of wk_codec_extension; returns 0 or -1. */
int wk_codec_from_extension(const char *ext, wk_compress *out);

#endif
