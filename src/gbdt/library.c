/* src/gbdt/library.c — the gradient-boosting libraries of this build, by
 * model.library name.
 *
 * XGBoost's table is compiled in when ./configure found libxgboost
 * (RTRAIN_HAVE_XGBOOST). LightGBM's (lightgbm.c) is always built: it
 * loads the library itself at run time and says what to install when it is
 * missing. The trainer says what to install for a name the build lacks. */
#include <stddef.h>
#include <string.h>
#include "config.h"
#include "library.h"

static const rt_gbdt_library *const libraries[] = {
#ifdef RTRAIN_HAVE_XGBOOST
    &rt_gbdt_xgboost,
#endif
    &rt_gbdt_lightgbm,
};

const rt_gbdt_library *rt_gbdt_library_find(const char *name)
{
    for (size_t i = 0; i < sizeof libraries / sizeof libraries[0]; i++)
        if (!strcmp(libraries[i]->name, name))
            return libraries[i];
    return NULL;
}
