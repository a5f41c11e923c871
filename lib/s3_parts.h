/* s3_parts: the parts of one multipart upload, sent by a pool of threads (each on its own
 * client) while the writer fills the next part. Layer 4 (storage), under the S3 driver. */
#ifndef WK_S3_PARTS_H
#define WK_S3_PARTS_H

#include <stddef.h>

#include "error.h"
#include "s3.h"
#include "s3xml.h"

/* S3 allows at most this many parts in one upload. */
#define WK_S3_PARTS_MAX 10000

typedef struct wk_s3_parts wk_s3_parts;

/* Starts parallel threads, each on its own clone of client, that send the parts of upload
 * upload_id of key (both copied); what ("could not store \"s3://b/k\"") names the object in
 * messages. Buffers are part_size bytes; at most parallel + 1 exist, the writer's included. */
int wk_s3_parts_start(const wk_s3 *client, const char *key, const char *upload_id, const char *what,
                      int parallel, size_t part_size, wk_s3_parts **out, wk_error *err);

/* Hands buf (len bytes, malloc'd with part_size bytes of room) to the threads as the next
 * part; the pool owns buf from then on, also on failure. Fails with the first part failure
 * so far, or when the upload would have more than WK_S3_PARTS_MAX parts. */
int wk_s3_parts_queue(wk_s3_parts *parts, unsigned char *buf, size_t len, wk_error *err);

/* An empty buffer of part_size bytes for the writer: a spare one, a new one while fewer
 * than parallel + 1 exist, or else the next one a thread gives back (waiting for it). */
int wk_s3_parts_take_buffer(wk_s3_parts *parts, unsigned char **buf, wk_error *err);

/* The first part failure so far: -1 with err, or 0. */
int wk_s3_parts_failure(wk_s3_parts *parts, wk_error *err);

/* Waits until every queued part is sent and stops the threads: 0, or the first failure. */
int wk_s3_parts_finish(wk_s3_parts *parts, wk_error *err);

/* After wk_s3_parts_finish: the CompleteMultipartUpload body naming every part and its
 * ETag, appended to body. */
void wk_s3_parts_complete_body(const wk_s3_parts *parts, wk_s3_xml_buf *body);

/* After wk_s3_parts_finish: the ETag S3 gives the completed object (quoted, the MD5 of
 * the parts' binary MD5s, "-N"), in out (80 bytes); -1 when a part's ETag is no MD5. */
int wk_s3_parts_etag(const wk_s3_parts *parts, char out[80]);

/* Stops the threads (queued parts are dropped, not sent) and frees the pool and every
 * buffer it owns. NULL is fine. */
void wk_s3_parts_free(wk_s3_parts *parts);

#endif
