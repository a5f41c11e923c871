/* fuzz_config: the configuration file reader (through a file, as programs read it). */
#include <stdio.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/walkeep.conf", fz_scratch());
    if (fz_write(path, data, len) != 0)
        return 0;
    char *argv[] = {"walkeep-fuzz", "--config", path, NULL};
    wk_config cfg;
    wk_args args;
    wk_error err = {0};
    if (wk_config_load(&cfg, 3, argv, &args, &err) == 0) {
        wk_config_free(&cfg);
        wk_args_free(&args);
    }
    return 0;
}
