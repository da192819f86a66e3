/* src/gbdt/library.c — the gradient-boosting libraries of this build, by
 * model.library name.
 *
 * A library is listed when its table is compiled in: XGBoost when
 * ./configure found libxgboost (RTRAIN_HAVE_XGBOOST), LightGBM when its
 * source file is part of the build (RTRAIN_HAVE_LIGHTGBM_SOURCE; it loads
 * the library itself at run time; the build defines it with the file). The
 * trainer says what to install for a name the build lacks. */
#include <stddef.h>
#include <string.h>
#include "config.h"
#include "library.h"

static const rt_gbdt_library *const libraries[] = {
#ifdef RTRAIN_HAVE_XGBOOST
    &rt_gbdt_xgboost,
#endif
#ifdef RTRAIN_HAVE_LIGHTGBM_SOURCE
    &rt_gbdt_lightgbm,
#endif
    NULL,
};

const rt_gbdt_library *rt_gbdt_library_find(const char *name)
{
    for (int i = 0; libraries[i]; i++)
        if (!strcmp(libraries[i]->name, name))
            return libraries[i];
    return NULL;
}
