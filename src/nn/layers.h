/* Internal declarations shared by the nn module's files (not installed):
 * the per-type operation tables, the per-type constructors used by the
 * layer-type table in layer.c, and the few hooks the architectures need
 * beyond the public rt_layer_spec (torchvision's convolution init). */
#ifndef RTRAIN_NN_LAYERS_H
#define RTRAIN_NN_LAYERS_H

#include "rtrain/nn.h"

/* One constructor per layer type: validates the spec (RT_ERR_CONFIG naming
 * l->name on a bad value) and allocates l->impl. l->ops and l->name are
 * already set. */
typedef rt_status (*rt_layer_init_fn)(rt_layer *l, const rt_layer_spec *spec);

/* Everything about a built-in layer type, defined in the type's own file:
 * adding a type is that file, its line in layer.c's list and its value of
 * rt_layer_type. */
typedef struct rt_layer_kind {
    const char *name;                   /* as written in config files */
    const rt_layer_ops *ops;
    rt_layer_init_fn init;
    void (*set_conv_init)(rt_layer *l, rt_init init);   /* NULL: holds no convolution */
    unsigned fields;                    /* RT_LAYER_FIELD_* a config may set */
    unsigned required;                  /* those of them without a default */
    rt_layer_spec defaults;             /* PyTorch's constructor defaults */
} rt_layer_kind;

/* PyTorch's defaults where a type has them; out and kernel have none and
 * stay 0, so that a config that forgets them fails validation. The stride
 * is the type's (maxpool2d: 0, meaning = kernel, as PyTorch's None). */
#define RT_LAYER_TORCH_DEFAULTS(default_stride)                                    \
    {.out = 0, .kernel = 0, .stride = (default_stride), .padding = 0, .bias = 1,    \
     .p = 0.5f, .eps = 1e-5f, .momentum = 0.1f}

#define RT_DECLARE_LAYER(kind) extern const rt_layer_kind rt_##kind##_kind

RT_DECLARE_LAYER(linear);
RT_DECLARE_LAYER(conv2d);
RT_DECLARE_LAYER(batchnorm2d);
RT_DECLARE_LAYER(relu);
RT_DECLARE_LAYER(maxpool2d);
RT_DECLARE_LAYER(avgpool);
RT_DECLARE_LAYER(flatten);
RT_DECLARE_LAYER(dropout);
RT_DECLARE_LAYER(basicblock);

/* Weight initialisation of convolutions inside l (a conv2d, or a composite
 * holding convolutions); must be called before the layer is built.
 * torchvision's ResNet re-initialises every Conv2d with kaiming_normal
 * (fan_out, relu) after construction, which a plain nn.Conv2d does not. */
void rt_conv2d_set_init(rt_layer *l, rt_init init);
void rt_basicblock_set_init(rt_layer *l, rt_init init);
void rt_layer_set_conv_init(rt_layer *l, rt_init init);

/* rt_model_defer_linear_grads for one linear layer (model's top-level
 * index `layer`); NULL save: off. */
int rt_linear_is(const rt_layer *l);
void rt_linear_defer(rt_layer *l, rt_linear_grad_saver save, void *arg, int layer);
/* rt_model_set_linear_forward for one linear layer; NULL forward: off. */
void rt_linear_set_forward(rt_layer *l, rt_linear_forward_fn forward, void *arg, int layer);

/* Serial number of the most recently built layer (build order, from 0):
 * a stable per-layer index for mixing into random-stream keys. */
int rt_builder_layer_serial(const rt_builder *b);

/* "<prefix>.<suffix>" into out[RT_NAME_MAX]; RT_ERR_CONFIG if too long. */
rt_status rt_nn_join_name(char *out, const char *prefix, const char *suffix);

/* Builds the top-level layers of spec's architecture for inputs of shape
 * `in` (arch.c). The caller owns the returned array and layers. */
rt_status rt_arch_layers(const rt_model_spec *spec, rt_shape in, rt_layer ***layers,
                         int *count);

#endif
