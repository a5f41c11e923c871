/* walkeep expire: placeholder until the expire worker lands (issue 4); refuses plainly.
 * Replaced by the real command. */
#include "commands.h"

int wk_expire_command(const wk_config *cfg, const wk_args *args, wk_error *err)
{
    (void)cfg;
    (void)args;
    return wk_error_set(err, WK_ERR_USAGE, "\"walkeep expire\" is not available in this version");
}
