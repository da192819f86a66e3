/* src/gbdt/library.c — the gradient-boosting libraries of this build, by
 * model.library name.
 *
 * XGBoost's table is compiled in when ./configure found libxgboost
 * (RTRAIN_HAVE_XGBOOST). LightGBM's (lightgbm.c, which loads the library
 * itself at run time) is referenced weakly, so the build needs no flag for
 * it: its address is NULL while that file is not linked in. The trainer
 * says what to install for a name the build lacks. */
#include <stddef.h>
#include <string.h>
#include "config.h"
#include "library.h"

#pragma weak rt_gbdt_lightgbm

static const rt_gbdt_library *const libraries[] = {
#ifdef RTRAIN_HAVE_XGBOOST
    &rt_gbdt_xgboost,
#endif
    &rt_gbdt_lightgbm,   /* NULL without lightgbm.c */
};

const rt_gbdt_library *rt_gbdt_library_find(const char *name)
{
    for (size_t i = 0; i < sizeof libraries / sizeof libraries[0]; i++)
        if (libraries[i] && !strcmp(libraries[i]->name, name))
            return libraries[i];
    return NULL;
}
