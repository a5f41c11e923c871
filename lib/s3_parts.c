/* s3_parts: the parts of one multipart upload, sent by a pool of threads while the writer
 * fills the next part. Layer 4 (storage). */
#include "s3_parts.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "md5.h"

typedef struct part_job {
    int number; /* 1-based */
    unsigned char *buf;
    size_t len;
} part_job;

typedef struct part_worker {
    wk_s3_parts *pool;
    wk_s3 *client;
    pthread_t thread;
    bool running;
} part_worker;

struct wk_s3_parts {
    char *key;
    char *upload_id;
    char *what;
    size_t part_size;
    int parts; /* parts queued so far */
    part_worker *workers;
    int nworkers;
    bool sync_ready; /* mu and the condition variables exist */
    /* Everything below is shared with the workers, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a job was queued, or closing */
    pthread_cond_t done_cv; /* a job finished */
    part_job *queue;        /* ring of bufs_max jobs */
    int q_head, q_count;
    unsigned char **free_bufs; /* spare part buffers */
    int free_count, bufs_made, bufs_max;
    int in_flight; /* jobs queued or being sent */
    bool closing;  /* workers exit once the queue is empty */
    bool aborting; /* queued parts are dropped, not sent */
    bool failed;   /* a part failed: worker_err says why */
    wk_error worker_err;
    char (*etags)[80]; /* per part, from UploadPart, quotes included */
    int etags_cap;
};

static int nomem(wk_error *err)
{
    return wk_error_set(err, WK_ERR_NOMEM, "out of memory");
}

/* Sends one part on the worker's own client; err is the worker's own. */
static int send_part(wk_s3 *c, const wk_s3_parts *p, const part_job *job, char etag[80],
                     wk_error *err)
{
    char number[16], what[1024];
    snprintf(number, sizeof(number), "%d", job->number);
    snprintf(what, sizeof(what), "%s (part %d)", p->what, job->number);
    wk_s3_param params[] = {{"partNumber", number}, {"uploadId", p->upload_id}};
    wk_s3_request req = {.method = "PUT",
                         .key = p->key,
                         .params = params,
                         .param_count = 2,
                         .body = job->buf,
                         .body_len = job->len};
    wk_s3_response resp = {0};
    int rc = wk_s3_call(c, &req, &resp, what, err);
    if (rc != 0 && err->code == WK_ERR_NOTFOUND)
        err->code = WK_ERR_IO; /* NoSuchUpload: removed under us; a put finds nothing absent */
    if (rc == 0) {
        if (resp.etag[0] == '\0')
            rc = wk_error_set(err, WK_ERR_IO, "%s: the server sent no ETag", what);
        else
            snprintf(etag, 80, "%s", resp.etag);
    }
    wk_s3_response_free(&resp);
    return rc;
}

static void *worker_main(void *arg)
{
    part_worker *w = arg;
    wk_s3_parts *p = w->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->q_count == 0 && !p->closing)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->q_count == 0)
            break;
        part_job job = p->queue[p->q_head];
        p->q_head = (p->q_head + 1) % p->bufs_max;
        p->q_count--;
        bool skip = p->failed || p->aborting;
        pthread_mutex_unlock(&p->mu);

        wk_error err = {0};
        char etag[80] = "";
        int rc = skip ? 0 : send_part(w->client, p, &job, etag, &err);

        pthread_mutex_lock(&p->mu);
        if (!skip) {
            if (rc == 0) {
                memcpy(p->etags[job.number - 1], etag, sizeof(etag));
            } else if (!p->failed) {
                p->failed = true;
                p->worker_err = err;
            }
        }
        p->free_bufs[p->free_count++] = job.buf;
        p->in_flight--;
        pthread_cond_broadcast(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Stops the workers (dropping queued parts when aborting) and joins them. */
static void stop_workers(wk_s3_parts *p, bool abort)
{
    if (!p->sync_ready)
        return;
    pthread_mutex_lock(&p->mu);
    p->closing = true;
    if (abort)
        p->aborting = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++) {
        if (p->workers[i].running) {
            pthread_join(p->workers[i].thread, NULL);
            p->workers[i].running = false;
        }
        wk_s3_free(p->workers[i].client);
        p->workers[i].client = NULL;
    }
}

int wk_s3_parts_start(const wk_s3 *client, const char *key, const char *upload_id, const char *what,
                      int parallel, size_t part_size, wk_s3_parts **out, wk_error *err)
{
    *out = NULL;
    if (parallel < 1)
        parallel = 1;
    wk_s3_parts *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return nomem(err);
    p->part_size = part_size;
    p->key = strdup(key);
    p->upload_id = strdup(upload_id);
    p->what = strdup(what);
    p->bufs_max = parallel + 1;
    p->queue = calloc((size_t)p->bufs_max, sizeof(*p->queue));
    p->free_bufs = calloc((size_t)p->bufs_max, sizeof(*p->free_bufs));
    p->workers = calloc((size_t)parallel, sizeof(*p->workers));
    if (p->key == NULL || p->upload_id == NULL || p->what == NULL || p->queue == NULL ||
        p->free_bufs == NULL || p->workers == NULL) {
        wk_s3_parts_free(p);
        return nomem(err);
    }
    p->bufs_made = 1; /* the writer's */
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        wk_s3_parts_free(p);
        return wk_error_set(err, WK_ERR_INTERNAL, "could not create a mutex");
    }
    if (pthread_cond_init(&p->work_cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        wk_s3_parts_free(p);
        return wk_error_set(err, WK_ERR_INTERNAL, "could not create a condition variable");
    }
    if (pthread_cond_init(&p->done_cv, NULL) != 0) {
        pthread_cond_destroy(&p->work_cv);
        pthread_mutex_destroy(&p->mu);
        wk_s3_parts_free(p);
        return wk_error_set(err, WK_ERR_INTERNAL, "could not create a condition variable");
    }
    p->sync_ready = true;
    for (int i = 0; i < parallel; i++) {
        part_worker *w = &p->workers[i];
        w->pool = p;
        p->nworkers = i + 1;
        if (wk_s3_clone(client, &w->client, err) != 0) {
            wk_s3_parts_free(p);
            return -1;
        }
        int e = pthread_create(&w->thread, NULL, worker_main, w);
        if (e != 0) {
            wk_s3_parts_free(p);
            return wk_error_sys(err, WK_ERR_INTERNAL, e, "could not start an upload thread");
        }
        w->running = true;
    }
    *out = p;
    return 0;
}

int wk_s3_parts_failure(wk_s3_parts *p, wk_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (p->failed) {
        if (err != NULL)
            *err = p->worker_err;
        rc = -1;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int wk_s3_parts_queue(wk_s3_parts *p, unsigned char *buf, size_t len, wk_error *err)
{
    pthread_mutex_lock(&p->mu);
    int rc = -1;
    if (p->parts >= WK_S3_PARTS_MAX) {
        wk_error_set(err, WK_ERR_IO, "%s: more than %d parts of %zu bytes", p->what,
                     WK_S3_PARTS_MAX, p->part_size);
        wk_error_hint(err, "raise s3_part_size: one object can have at most %d parts of it",
                      WK_S3_PARTS_MAX);
        goto out;
    }
    if (p->failed) {
        *err = p->worker_err;
        goto out;
    }
    if (p->parts >= p->etags_cap) {
        int cap = p->etags_cap > 0 ? p->etags_cap * 2 : 64;
        if (cap > WK_S3_PARTS_MAX)
            cap = WK_S3_PARTS_MAX;
        void *grown = realloc(p->etags, (size_t)cap * sizeof(*p->etags));
        if (grown == NULL) {
            nomem(err);
            goto out;
        }
        p->etags = grown;
        p->etags_cap = cap;
    }
    p->parts++;
    p->etags[p->parts - 1][0] = '\0';
    int slot = (p->q_head + p->q_count) % p->bufs_max;
    p->queue[slot] = (part_job){p->parts, buf, len};
    p->q_count++;
    p->in_flight++;
    buf = NULL;
    pthread_cond_signal(&p->work_cv);
    rc = 0;
out:
    if (buf != NULL)
        p->free_bufs[p->free_count++] = buf; /* ours now, freed with the pool */
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int wk_s3_parts_take_buffer(wk_s3_parts *p, unsigned char **buf, wk_error *err)
{
    int rc = 0;
    *buf = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->failed) {
            *err = p->worker_err;
            rc = -1;
            break;
        }
        if (p->free_count > 0) {
            *buf = p->free_bufs[--p->free_count];
            break;
        }
        if (p->bufs_made < p->bufs_max) {
            *buf = malloc(p->part_size);
            if (*buf == NULL) {
                rc = nomem(err);
                break;
            }
            p->bufs_made++;
            break;
        }
        pthread_cond_wait(&p->done_cv, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int wk_s3_parts_finish(wk_s3_parts *p, wk_error *err)
{
    pthread_mutex_lock(&p->mu);
    while (p->in_flight > 0)
        pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    stop_workers(p, false);
    return wk_s3_parts_failure(p, err);
}

void wk_s3_parts_complete_body(const wk_s3_parts *p, wk_s3_xml_buf *body)
{
    wk_s3_xml_buf_raw(body, "<CompleteMultipartUpload>");
    for (int i = 0; i < p->parts; i++) {
        char part[160];
        snprintf(part, sizeof(part), "<Part><PartNumber>%d</PartNumber><ETag>", i + 1);
        wk_s3_xml_buf_raw(body, part);
        wk_s3_xml_buf_text(body, p->etags[i]);
        wk_s3_xml_buf_raw(body, "</ETag></Part>");
    }
    wk_s3_xml_buf_raw(body, "</CompleteMultipartUpload>");
}

int wk_s3_parts_etag(const wk_s3_parts *p, char out[80])
{
    wk_md5_ctx c;
    wk_md5_init(&c);
    for (int i = 0; i < p->parts; i++) {
        const char *e = p->etags[i];
        unsigned char bin[16];
        size_t bin_len = 0;
        if (*e == '"')
            e++;
        if (sodium_hex2bin(bin, sizeof(bin), e, 32, NULL, &bin_len, NULL) != 0 || bin_len != 16)
            return -1;
        wk_md5_update(&c, bin, 16);
    }
    unsigned char d[16];
    char hex[33];
    wk_md5_final(&c, d);
    sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
    snprintf(out, 80, "\"%s-%d\"", hex, p->parts);
    return 0;
}

void wk_s3_parts_free(wk_s3_parts *p)
{
    if (p == NULL)
        return;
    stop_workers(p, true);
    if (p->sync_ready) {
        pthread_cond_destroy(&p->done_cv);
        pthread_cond_destroy(&p->work_cv);
        pthread_mutex_destroy(&p->mu);
    }
    if (p->free_bufs != NULL)
        for (int i = 0; i < p->free_count; i++)
            free(p->free_bufs[i]);
    free(p->free_bufs);
    free(p->queue);
    free(p->workers);
    free(p->etags);
    free(p->key);
    free(p->upload_id);
    free(p->what);
    free(p);
}
