/* storage_s3: the storage interface on an S3 bucket: single or parallel multipart uploads
 * that are never half visible, streamed downloads that resume, batched deletes. */
#ifndef WK_STORAGE_S3_H
#define WK_STORAGE_S3_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "s3.h"
#include "storage.h"

#define WK_S3_PART_SIZE_DEFAULT (8 * 1024 * 1024)
#define WK_S3_PART_SIZE_MIN (1024 * 1024)
#define WK_S3_PARALLEL_DEFAULT 4

typedef struct wk_storage_s3_options {
    wk_s3_options s3;   /* the bucket and how to reach it */
    const char *prefix; /* folder inside the bucket, no leading or trailing '/'; "" for the root */
    size_t part_size;   /* objects up to this size go in one PUT; larger ones in parts of it */
    int parallel;       /* parts sent at once (memory: parallel + 1 parts) */
} wk_storage_s3_options;

/* Opens the S3 driver (sends nothing; the first request tells whether the bucket exists
 * and the keys are right). */
int wk_storage_s3_open(const wk_storage_s3_options *opt, wk_storage **out, wk_error *err);

#endif
