/* fuzz_walrec: the WAL record reader on arbitrary bytes, read as one segment in two writes
 * split where the input says, and as the end of one segment and the start of the next. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "walrec.h"

#define SEG (1u << 20)

static int count_event(const wk_walrec_event *event, void *arg, wk_error *err)
{
    (void)err;
    if (event->name[WK_WALREC_NAME_MAX - 1] != '\0')
        abort(); /* names are always terminated */
    (*(size_t *)arg)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    wk_error err = {0};
    size_t events = 0;
    if (len > SEG)
        len = SEG;
    size_t split = len > 0 ? data[0] * len / 256 : 0;
    /* From a segment's start. */
    wk_walrec_reader *r = wk_walrec_new(5, SEG, count_event, &events);
    if (r == NULL)
        abort();
    if (wk_walrec_feed(r, data, split, &err) != 0 ||
        wk_walrec_feed(r, data + split, len - split, &err) != 0)
        abort(); /* only fn or memory can fail */
    wk_walrec_summary sum;
    wk_walrec_summary_get(r, &sum);
    if (sum.xacts + sum.points > events)
        abort();
    wk_walrec_free(r);
    /* The same bytes at the end of segment 5, the reader going on into segment 6. */
    r = wk_walrec_new(5, SEG, count_event, &events);
    static uint8_t zero[64 * 1024];
    size_t before = SEG - len;
    while (before > 0) {
        size_t n = before < sizeof(zero) ? before : sizeof(zero);
        if (wk_walrec_feed(r, zero, n, &err) != 0)
            abort();
        before -= n;
    }
    if (wk_walrec_feed(r, data, len, &err) != 0 || wk_walrec_feed(r, data, len, &err) != 0)
        abort();
    wk_walrec_free(r);
    return 0;
}
