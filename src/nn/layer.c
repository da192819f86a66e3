/* The layer-type table: config name <-> rt_layer_type <-> operations and
 * constructor, PyTorch's default hyper-parameters per type, and creation
 * and destruction of single layers. */
#include <stdio.h>
#include <string.h>
#include "nn/layers.h"

typedef struct layer_type_entry {
    const char *name;               /* as written in config files */
    const rt_layer_ops *ops;
    rt_layer_init_fn init;
    void (*set_conv_init)(rt_layer *l, rt_init init);  /* NULL: holds no conv */
} layer_type_entry;

static const layer_type_entry layer_types[RT_LAYER_TYPE_COUNT] = {
    [RT_LAYER_LINEAR] = {"linear", &rt_linear_ops, rt_linear_init, NULL},
    [RT_LAYER_CONV2D] = {"conv2d", &rt_conv2d_ops, rt_conv2d_init, rt_conv2d_set_init},
    [RT_LAYER_BATCHNORM2D] = {"batchnorm2d", &rt_batchnorm2d_ops, rt_batchnorm2d_init, NULL},
    [RT_LAYER_RELU] = {"relu", &rt_relu_ops, rt_relu_init, NULL},
    [RT_LAYER_MAXPOOL2D] = {"maxpool2d", &rt_maxpool2d_ops, rt_maxpool2d_init, NULL},
    [RT_LAYER_AVGPOOL] = {"avgpool", &rt_avgpool_ops, rt_avgpool_init, NULL},
    [RT_LAYER_FLATTEN] = {"flatten", &rt_flatten_ops, rt_flatten_init, NULL},
    [RT_LAYER_DROPOUT] = {"dropout", &rt_dropout_ops, rt_dropout_init, NULL},
    [RT_LAYER_BASICBLOCK] = {"basicblock", &rt_basicblock_ops, rt_basicblock_init,
                             rt_basicblock_set_init},
};

const char *rt_layer_type_name(rt_layer_type t)
{
    return (t >= 0 && t < RT_LAYER_TYPE_COUNT) ? layer_types[t].name : "unknown";
}

int rt_layer_type_from_name(const char *name)
{
    for (int t = 0; name && t < RT_LAYER_TYPE_COUNT; t++)
        if (strcmp(layer_types[t].name, name) == 0)
            return t;
    return -1;
}

void rt_layer_spec_default(rt_layer_spec *s, rt_layer_type type)
{
    /* PyTorch's constructor defaults; out/kernel have none and stay 0 so
     * that a config which forgets them fails validation. */
    memset(s, 0, sizeof *s);
    s->type = type;
    s->stride = type == RT_LAYER_MAXPOOL2D ? 0 : 1;   /* pooling: 0 means = kernel */
    s->bias = 1;
    s->p = 0.5f;
    s->eps = 1e-5f;
    s->momentum = 0.1f;
}

rt_status rt_nn_join_name(char *out, const char *prefix, const char *suffix)
{
    int len = prefix[0] ? snprintf(out, RT_NAME_MAX, "%s.%s", prefix, suffix)
                        : snprintf(out, RT_NAME_MAX, "%s", suffix);
    if (len < 0 || len >= RT_NAME_MAX)
        return RT_ERROR(RT_ERR_CONFIG, "name '%s.%s' is longer than %d characters; "
                        "use shorter layer names", prefix, suffix, RT_NAME_MAX - 1);
    return RT_OK;
}

rt_status rt_layer_create(rt_layer **out, const rt_layer_spec *spec, const char *name)
{
    *out = NULL;
    if (!spec || spec->type < 0 || spec->type >= RT_LAYER_TYPE_COUNT)
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s': unknown layer type %d", name ? name : "",
                        spec ? (int)spec->type : -1);
    if (!name || strlen(name) >= RT_NAME_MAX)
        return RT_ERROR(RT_ERR_CONFIG, "layer name missing or longer than %d characters",
                        RT_NAME_MAX - 1);
    rt_layer *l;
    RT_CHECK(rt_alloc(&l, 1, sizeof *l, "layer"));
    const layer_type_entry *e = &layer_types[spec->type];
    l->ops = e->ops;
    strcpy(l->name, name);
    rt_status s = e->init(l, spec);
    if (s != RT_OK) {
        rt_error_trace(__FILE__, __LINE__, "layer init");
        rt_layer_free(l);
        return s;
    }
    *out = l;
    return RT_OK;
}

void rt_layer_free(rt_layer *l)
{
    if (!l)
        return;
    if (l->ops && l->ops->destroy)
        l->ops->destroy(l);
    else
        rt_free(l->impl);
    rt_free(l);
}

void rt_layer_set_conv_init(rt_layer *l, rt_init init)
{
    for (int t = 0; t < RT_LAYER_TYPE_COUNT; t++)
        if (layer_types[t].ops == l->ops && layer_types[t].set_conv_init)
            layer_types[t].set_conv_init(l, init);
}
