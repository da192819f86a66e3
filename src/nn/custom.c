/* User-defined models: layers of the caller's own types (its own
 * rt_layer_ops, parameters declared through rt_builder_param) assembled
 * into an rt_model, which then gets the same slabs, DDP buckets and
 * checkpoints as a built-in architecture. The checks here turn a caller's
 * mistake (a missing function, a duplicate name) into an error naming the
 * layer instead of a crash in the first forward call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rtrain/train.h"
#include "nn/custom.h"

#define MAX_CUSTOM_LAYERS 4096

rt_status rt_layer_create_custom(rt_layer **out, const rt_layer_ops *ops, const char *name,
                                 void *impl)
{
    if (!out)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_layer_create_custom: out is NULL");
    *out = NULL;
    if (!name || !name[0] || strlen(name) >= RT_NAME_MAX)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_layer_create_custom: the layer name is "
                        "missing or longer than %d characters", RT_NAME_MAX - 1);
    if (!ops || !ops->build || !ops->forward || !ops->backward)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_layer_create_custom: layer '%s' needs an "
                        "rt_layer_ops with build, forward and backward", name);
    if (ops->version != RT_LAYER_OPS_VERSION)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_layer_create_custom: layer '%s' has ops of "
                        "version %u, this rtrain expects %d: set .version = "
                        "RT_LAYER_OPS_VERSION and recompile against these headers", name,
                        ops->version, RT_LAYER_OPS_VERSION);
    rt_layer *l;
    RT_CHECK(rt_alloc(&l, 1, sizeof *l, "layer"));
    l->ops = ops;
    snprintf(l->name, sizeof l->name, "%s", name);
    l->impl = impl;
    *out = l;
    return RT_OK;
}

/* n in range, no NULL layer, no layer without functions, unique names
 * (state_dict names are "<layer>.<suffix>": a duplicate would make two
 * tensors of one name, which a checkpoint could not tell apart). */
static rt_status check_layers(rt_layer **layers, int n)
{
    if (!layers || n < 1 || n > MAX_CUSTOM_LAYERS)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_create_from_layers: %d layers given "
                        "(1..%d allowed)", n, MAX_CUSTOM_LAYERS);
    for (int i = 0; i < n; i++) {
        const rt_layer *l = layers[i];
        if (!l || !l->ops || !l->ops->build || !l->ops->forward || !l->ops->backward)
            return RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_create_from_layers: layer %d is "
                            "NULL or lacks build/forward/backward", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(layers[j]->name, l->name))
                return RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_create_from_layers: layers %d "
                                "and %d are both named '%s': give each a unique name", j, i,
                                l->name);
    }
    return RT_OK;
}

rt_status rt_model_create_from_layers(rt_model **out, const rt_backend *be, rt_layer **layers,
                                      int n, rt_shape in, int max_batch, uint64_t seed)
{
    if (!out)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_create_from_layers: out is NULL");
    *out = NULL;
    rt_status s = check_layers(layers, n);
    if (s != RT_OK) {
        for (int i = 0; layers && i < n && n <= MAX_CUSTOM_LAYERS; i++)
            rt_layer_free(layers[i]);
        return s;
    }
    return rt_model_create_custom(out, be, layers, n, in, max_batch, seed);
}
