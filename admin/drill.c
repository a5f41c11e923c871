/* walkeep drill: placeholder until the drill worker lands (issue 5); refuses plainly.
 * Replaced by the real command. */
#include "commands.h"

int wk_drill_command(const wk_config *cfg, const wk_args *args, wk_error *err)
{
    (void)cfg;
    (void)args;
    return wk_error_set(err, WK_ERR_USAGE, "\"walkeep drill\" is not available in this version");
}
