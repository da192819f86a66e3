/* The three architectures, as lists of named top-level layers:
 *
 *  - sequential: the config's layer list, named "0", "1", ... like
 *    nn.Sequential; shapes are inferred layer by layer, and a shape that
 *    cannot work is an RT_ERR_CONFIG naming the layer index and type.
 *  - mlp: the Ray Train FashionMNIST example's NeuralNetwork: "flatten",
 *    then Linear/ReLU pairs "linear_relu_stack.0", ".1", ... ending with a
 *    Linear to num_classes (and a ReLU if output_relu, as the example has).
 *  - resnet18: torchvision.models.resnet18 with the same module names and
 *    initialisation (kaiming_normal fan_out convolutions, BatchNorm 1/0,
 *    default Linear), a configurable conv1, and in_channels taken from the
 *    input shape. torch.flatten in its forward is the layer "flatten". */
#include <stdio.h>
#include <string.h>
#include "nn/layers.h"

void rt_model_spec_default(rt_model_spec *s, rt_arch arch)
{
    memset(s, 0, sizeof *s);
    s->arch = arch;
    s->num_classes = 10;
    s->hidden[0] = 512;   /* the Ray Train example: 784 -> 512 -> 512 -> 10 */
    s->hidden[1] = 512;
    s->num_hidden = 2;
    s->output_relu = 0;
    s->conv1_kernel = 7;  /* torchvision: Conv2d(3, 64, 7, stride 2, padding 3) */
    s->conv1_stride = 2;
    s->conv1_padding = 3;
    s->bn_sync = 0;
    s->num_layers = 0;
}

typedef struct layer_list {
    rt_layer **v;
    int n, cap;
} layer_list;

static rt_status push(layer_list *list, const rt_layer_spec *spec, const char *name)
{
    if (list->n == list->cap)
        return RT_ERROR(RT_ERR_CONFIG, "model has more than %d top-level layers", list->cap);
    RT_CHECK(rt_layer_create(&list->v[list->n], spec, name));
    list->n++;
    return RT_OK;
}

static rt_status push_simple(layer_list *list, rt_layer_type type, const char *name)
{
    rt_layer_spec s;
    rt_layer_spec_default(&s, type);
    return push(list, &s, name);
}

static rt_status push_linear(layer_list *list, int out, const char *name)
{
    rt_layer_spec s;
    rt_layer_spec_default(&s, RT_LAYER_LINEAR);
    s.out = out;
    return push(list, &s, name);
}

static rt_status arch_sequential(layer_list *list, const rt_model_spec *spec)
{
    if (spec->num_layers < 1 || spec->num_layers > RT_MAX_LAYERS)
        return RT_ERROR(RT_ERR_CONFIG, "sequential model needs 1 to %d layers, got %d; list "
                        "them under model.layers", RT_MAX_LAYERS, spec->num_layers);
    for (int i = 0; i < spec->num_layers; i++) {
        char name[16];
        snprintf(name, sizeof name, "%d", i);
        RT_CHECK(push(list, &spec->layers[i], name));
    }
    return RT_OK;
}

static rt_status arch_mlp(layer_list *list, const rt_model_spec *spec)
{
    if (spec->num_hidden < 0 || spec->num_hidden > RT_MAX_HIDDEN)
        return RT_ERROR(RT_ERR_CONFIG, "mlp: %d hidden layers (0 to %d allowed)",
                        spec->num_hidden, RT_MAX_HIDDEN);
    RT_CHECK(push_simple(list, RT_LAYER_FLATTEN, "flatten"));
    char name[RT_NAME_MAX];
    int index = 0;
    for (int i = 0; i <= spec->num_hidden; i++) {
        int last = i == spec->num_hidden;
        int out = last ? spec->num_classes : spec->hidden[i];
        if (out < 1)
            return RT_ERROR(RT_ERR_CONFIG, "mlp: hidden layer %d has %d units; sizes must be "
                            ">= 1", i, out);
        snprintf(name, sizeof name, "linear_relu_stack.%d", index++);
        RT_CHECK(push_linear(list, out, name));
        if (!last || spec->output_relu) {
            snprintf(name, sizeof name, "linear_relu_stack.%d", index++);
            RT_CHECK(push_simple(list, RT_LAYER_RELU, name));
        }
    }
    return RT_OK;
}

static rt_status push_kaiming(layer_list *list, const rt_layer_spec *spec, const char *name)
{
    RT_CHECK(push(list, spec, name));
    rt_layer_set_conv_init(list->v[list->n - 1], RT_INIT_KAIMING_NORMAL_FAN_OUT);
    return RT_OK;
}

static rt_status arch_resnet18(layer_list *list, const rt_model_spec *spec)
{
    rt_layer_spec s;
    rt_layer_spec_default(&s, RT_LAYER_CONV2D);
    s.out = 64;
    s.kernel = spec->conv1_kernel;
    s.stride = spec->conv1_stride;
    s.padding = spec->conv1_padding;
    s.bias = 0;
    RT_CHECK(push_kaiming(list, &s, "conv1"));
    RT_CHECK(push_simple(list, RT_LAYER_BATCHNORM2D, "bn1"));
    RT_CHECK(push_simple(list, RT_LAYER_RELU, "relu"));
    rt_layer_spec_default(&s, RT_LAYER_MAXPOOL2D);
    s.kernel = 3;
    s.stride = 2;
    s.padding = 1;
    RT_CHECK(push(list, &s, "maxpool"));
    for (int stage = 0; stage < 4; stage++) {
        for (int block = 0; block < 2; block++) {
            char name[RT_NAME_MAX];
            snprintf(name, sizeof name, "layer%d.%d", stage + 1, block);
            rt_layer_spec_default(&s, RT_LAYER_BASICBLOCK);
            s.out = 64 << stage;
            s.stride = (stage > 0 && block == 0) ? 2 : 1;
            RT_CHECK(push_kaiming(list, &s, name));
        }
    }
    RT_CHECK(push_simple(list, RT_LAYER_AVGPOOL, "avgpool"));
    RT_CHECK(push_simple(list, RT_LAYER_FLATTEN, "flatten"));
    RT_CHECK(push_linear(list, spec->num_classes, "fc"));
    return RT_OK;
}

typedef rt_status (*arch_fn)(layer_list *list, const rt_model_spec *spec);

static const struct { const char *name; arch_fn build; } archs[] = {
    [RT_ARCH_SEQUENTIAL] = {"sequential", arch_sequential},
    [RT_ARCH_MLP] = {"mlp", arch_mlp},
    [RT_ARCH_RESNET18] = {"resnet18", arch_resnet18},
};

rt_status rt_arch_layers(const rt_model_spec *spec, rt_shape in, rt_layer ***layers,
                         int *count)
{
    *layers = NULL;
    *count = 0;
    if (spec->arch < 0 || spec->arch > RT_ARCH_RESNET18)
        return RT_ERROR(RT_ERR_CONFIG, "unknown model architecture %d", (int)spec->arch);
    if (spec->arch != RT_ARCH_SEQUENTIAL && spec->num_classes < 1)   /* layers say theirs */
        return RT_ERROR(RT_ERR_CONFIG, "%s: num_classes must be >= 1, got %d",
                        archs[spec->arch].name, spec->num_classes);
    layer_list list = {NULL, 0, RT_MAX_LAYERS};
    RT_CHECK(rt_alloc(&list.v, (size_t)list.cap, sizeof *list.v, "layer list"));
    rt_status s = archs[spec->arch].build(&list, spec);
    if (s != RT_OK) {
        rt_error_trace(__FILE__, __LINE__, archs[spec->arch].name);
        for (int i = 0; i < list.n; i++)
            rt_layer_free(list.v[i]);
        rt_free(list.v);
        return s;
    }
    *layers = list.v;
    *count = list.n;
    return RT_OK;
}
