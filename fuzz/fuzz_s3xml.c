/* fuzz_s3xml: the XML of S3 answers: elements, blocks, times. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "s3xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *xml = malloc(len + 1);
    char *scratch = malloc(len + 1);
    char out[1024];
    wk_error err = {0};
    memcpy(xml, data, len);
    xml[len] = '\0';
    size_t pos = 0;
    while (wk_s3_xml_block(xml, &pos, "Contents", scratch)) {
        if (wk_s3_xml_field(scratch, "Key", out, sizeof(out), &err) == 1)
            wk_s3_xml_time(out);
        wk_s3_xml_field(scratch, "LastModified", out, sizeof(out), &err);
    }
    pos = 0;
    while (wk_s3_xml_next(xml, &pos, "Key", out, sizeof(out), &err) == 1)
        ;
    wk_s3_xml_field(xml, "Code", out, 8, &err);
    free(xml);
    free(scratch);
    return 0;
}
