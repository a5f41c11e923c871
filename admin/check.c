/* walkeep check: placeholder until the check worker lands (issue 5); refuses plainly.
 * Replaced by the real command. */
#include "commands.h"

int wk_check_command(const wk_config *cfg, const wk_args *args, wk_error *err)
{
    (void)cfg;
    (void)args;
    return wk_error_set(err, WK_ERR_USAGE, "\"walkeep check\" is not available in this version");
}
