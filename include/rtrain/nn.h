/* rtrain nn: layers, losses and model assembly (float32, NCHW).
 *
 * Ownership: the model owns one parameter slab, one gradient slab (same
 * layout), one buffer slab (non-trainable state such as BatchNorm running
 * statistics), the activation arena and a shared scratch area, all in the
 * memory of its backend (rtrain/backend.h). Layers never allocate in
 * forward/backward: during build they declare what they need through the
 * rt_builder, and the model fills in their pointers once the slabs exist.
 * Layers compute only through the backend table the model hands them
 * (l->backend), so a model runs on any backend. Parameters are initialised
 * on the host and uploaded. Every parameter and buffer carries its PyTorch
 * state_dict name ("layer1.0.conv1.weight", "bn1.running_mean", "fc.bias").
 *
 * Errors: forward, backward, the loss and zero_grad return rt_status. A
 * failure inside a pass whose context carries a communicator (synchronised
 * BatchNorm) cannot be returned, because the other ranks are inside that
 * pass's collectives: it ends the job through rt_comm_abort, naming the
 * rank and the layer.
 *
 * Nothing in this header is collective, except where a forward context
 * carries a communicator (synchronised BatchNorm): every rank of it must
 * then run the model in the same order. */
#ifndef RTRAIN_NN_H
#define RTRAIN_NN_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include "rtrain/core.h"
#include "rtrain/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RT_NAME_MAX 96      /* longest state_dict name */
#define RT_MAX_LAYERS 64    /* layers in a config layer list */
#define RT_MAX_HIDDEN 16    /* hidden layers of the mlp architecture */
#define RT_MAX_NDIM 4

/* Shape of one sample (NCHW without N). Flat features: h = w = 1. */
typedef struct rt_shape { int c, h, w; } rt_shape;
static inline size_t rt_shape_size(rt_shape s) { return (size_t)s.c * s.h * s.w; }

/* Parameter initialisation, as PyTorch does it. `fan` is the fan-in for the
 * uniform kinds and the fan-out for RT_INIT_KAIMING_NORMAL_FAN_OUT. */
typedef enum rt_init {
    RT_INIT_ZEROS = 0,
    RT_INIT_ONES,
    RT_INIT_UNIFORM_FAN_IN,         /* U(-1/sqrt(fan), 1/sqrt(fan)): nn.Linear/Conv2d defaults */
    RT_INIT_KAIMING_NORMAL_FAN_OUT  /* N(0, 2/fan): torchvision ResNet convolutions */
} rt_init;

typedef enum rt_tensor_kind { RT_TENSOR_PARAM, RT_TENSOR_BUFFER } rt_tensor_kind;

/* One named tensor of the model's state_dict: a view into a slab. */
typedef struct rt_tensor_info {
    char name[RT_NAME_MAX];
    rt_tensor_kind kind;
    int ndim;
    int shape[RT_MAX_NDIM];
    size_t offset;   /* in floats, into the param or buffer slab */
    size_t count;    /* number of floats */
} rt_tensor_info;

/* ---- layers ------------------------------------------------------------- */
typedef struct rt_layer rt_layer;
typedef struct rt_builder rt_builder;

typedef struct rt_comm rt_comm;   /* rtrain/comm.h */
typedef struct rt_layer_times rt_layer_times;   /* per-layer timing, below */

/* Per-call context. `sync_comm`, when set, is the communicator synchronised
 * BatchNorm sums its statistics over (collective: every rank of it must
 * run the same layers in the same order). `times`, when set, receives the
 * wall time of every layer call (a profile; see rt_layer_times). */
typedef struct rt_nn_ctx {
    int train;                 /* 1: training mode (batch stats, dropout) */
    uint64_t rng_key;          /* stream key for this step (dropout masks) */
    rt_comm *sync_comm;        /* NULL: BatchNorm statistics of this rank alone */
    rt_layer_times *times;     /* NULL: not timed */
} rt_nn_ctx;

/* The version of rt_layer_ops this header describes: a table says which
 * one it was written for, so a layer compiled against another layout is
 * refused with a message instead of being called wrongly. */
#define RT_LAYER_OPS_VERSION 1

enum {
    /* forward and backward touch tensors only through l->backend: the layer
     * runs on every backend. Without it, the layer reads and writes memory
     * itself and runs only where backend memory is host memory. */
    RT_LAYER_ANY_BACKEND = 1u << 0,
};

/* A layer type is a table of functions (one file per type in src/nn/). */
typedef struct rt_layer_ops {
    unsigned version;          /* RT_LAYER_OPS_VERSION */
    unsigned flags;            /* RT_LAYER_* */
    const char *type;
    /* Declare parameters, buffers and memory through b; set *out from in. */
    rt_status (*build)(rt_layer *l, rt_builder *b, rt_shape in, rt_shape *out);
    /* out[n][out_shape] = f(in[n][in_shape]). */
    rt_status (*forward)(rt_layer *l, const rt_nn_ctx *ctx, float *out, const float *in,
                         int n);
    /* Adds parameter gradients into the gradient slab (+=). Writes (does
     * not add to) din unless din is NULL (first layer: input grad unused).
     * in and out are the tensors of the matching forward call. */
    rt_status (*backward)(rt_layer *l, const rt_nn_ctx *ctx, float *din, const float *dout,
                          const float *in, const float *out, int n);
    void (*destroy)(rt_layer *l);   /* frees impl and children; may be NULL */
} rt_layer_ops;

struct rt_layer {
    const rt_layer_ops *ops;
    const rt_backend *backend;   /* the model's, set when the layer is built */
    char name[RT_NAME_MAX];   /* state_dict prefix, e.g. "layer1.0.conv1" */
    rt_shape in_shape, out_shape;
    void *impl;
    int index;                /* build order in its model, children of composites
                               * included (its row in rt_layer_times); set when built */
};

/* Calls l's forward / backward. The model calls its layers, and a
 * composite its children, through these, so that a context carrying
 * rt_layer_times times every layer; without it they cost one branch. */
rt_status rt_layer_forward(rt_layer *l, const rt_nn_ctx *ctx, float *out, const float *in,
                           int n);
rt_status rt_layer_backward(rt_layer *l, const rt_nn_ctx *ctx, float *din, const float *dout,
                            const float *in, const float *out, int n);

/* What a layer declares while it is built. Pointers are filled in by the
 * model after allocation, before the first forward call. */
/* Trainable parameter "<layer name>.<suffix>"; *data and *grad are set. */
rt_status rt_builder_param(rt_builder *b, rt_layer *l, const char *suffix, int ndim,
                           const int *shape, rt_init init, int fan,
                           float **data, float **grad);
/* Non-trainable state (running mean/var, num_batches_tracked). */
rt_status rt_builder_buffer(rt_builder *b, rt_layer *l, const char *suffix, int ndim,
                            const int *shape, rt_init init, float **data);
/* Private storage of floats_per_sample * max_batch floats, kept from
 * forward to backward (saved statistics, masks, composite activations). */
rt_status rt_builder_saved(rt_builder *b, size_t floats_per_sample, float **ptr);
/* Private storage of a fixed number of floats (per-channel statistics). */
rt_status rt_builder_fixed(rt_builder *b, size_t floats, float **ptr);
/* Scratch shared by all layers: valid only inside one forward or backward
 * call of a leaf layer (im2col columns). Never use it across child calls. */
rt_status rt_builder_scratch(rt_builder *b, size_t floats, float **ptr);
int rt_builder_max_batch(const rt_builder *b);
/* The backend the model is built for (a layer that needs a plan makes it
 * in build with this table). */
const rt_backend *rt_builder_backend(const rt_builder *b);
/* Builds a child layer of a composite (BasicBlock): same builder. */
rt_status rt_builder_child(rt_builder *b, rt_layer *child, rt_shape in, rt_shape *out);

/* ---- layer specifications (what a config file describes) ----------------- */
typedef enum rt_layer_type {
    RT_LAYER_LINEAR = 0,
    RT_LAYER_CONV2D,
    RT_LAYER_BATCHNORM2D,
    RT_LAYER_RELU,
    RT_LAYER_MAXPOOL2D,
    RT_LAYER_AVGPOOL,     /* AdaptiveAvgPool2d((1,1)) */
    RT_LAYER_FLATTEN,
    RT_LAYER_DROPOUT,
    RT_LAYER_BASICBLOCK,  /* torchvision BasicBlock, 1x1 downsample when needed */
    RT_LAYER_TYPE_COUNT
} rt_layer_type;

typedef struct rt_layer_spec {
    rt_layer_type type;
    int out;         /* Linear: out_features; Conv2d/BasicBlock: out_channels */
    int kernel;      /* Conv2d, MaxPool2d */
    int stride;      /* Conv2d, MaxPool2d (0: = kernel for pooling), BasicBlock */
    int padding;     /* Conv2d, MaxPool2d */
    int bias;        /* Linear, Conv2d */
    float p;         /* Dropout probability */
    float eps;       /* BatchNorm2d (default 1e-5) */
    float momentum;  /* BatchNorm2d (default 0.1) */
} rt_layer_spec;

/* The fields of rt_layer_spec a config file may set for a layer, one bit
 * each, in the order of the struct. */
enum {
    RT_LAYER_FIELD_OUT = 1u << 0,
    RT_LAYER_FIELD_KERNEL = 1u << 1,
    RT_LAYER_FIELD_STRIDE = 1u << 2,
    RT_LAYER_FIELD_PADDING = 1u << 3,
    RT_LAYER_FIELD_BIAS = 1u << 4,
    RT_LAYER_FIELD_P = 1u << 5,
    RT_LAYER_FIELD_EPS = 1u << 6,
    RT_LAYER_FIELD_MOMENTUM = 1u << 7,
};

/* Fills a spec with PyTorch's defaults for the type. */
void rt_layer_spec_default(rt_layer_spec *s, rt_layer_type type);
const char *rt_layer_type_name(rt_layer_type t);     /* "linear", "conv2d", ... */
int rt_layer_type_from_name(const char *name);        /* -1 if unknown */
/* RT_LAYER_FIELD_* bits: the fields type t reads, and those of them that
 * have no default (a config must give them). */
unsigned rt_layer_type_fields(rt_layer_type t);
unsigned rt_layer_type_required(rt_layer_type t);

/* Creates one layer named `name` (state_dict prefix). */
rt_status rt_layer_create(rt_layer **out, const rt_layer_spec *spec, const char *name);
void rt_layer_free(rt_layer *l);

/* ---- models --------------------------------------------------------------- */
/* RT_ARCH_GBDT: gradient-boosted trees, trained by the gbdt module
 * (rtrain/gbdt.h) through a boosting library; rt_model_create refuses it. */
typedef enum rt_arch {
    RT_ARCH_SEQUENTIAL = 0, RT_ARCH_MLP, RT_ARCH_RESNET18, RT_ARCH_GBDT
} rt_arch;

typedef struct rt_model_spec {
    rt_arch arch;
    int num_classes;
    /* mlp: Flatten, then Linear+ReLU per hidden size, then Linear to
     * num_classes (+ReLU if output_relu), named "linear_relu_stack.<i>". */
    int hidden[RT_MAX_HIDDEN];
    int num_hidden;
    int output_relu;
    /* resnet18: torchvision resnet18 with a configurable conv1. */
    int conv1_kernel, conv1_stride, conv1_padding;
    int bn_sync;     /* synchronised BatchNorm across ranks */
    /* sequential: layer list, named "<index>" as nn.Sequential does. */
    rt_layer_spec layers[RT_MAX_LAYERS];
    int num_layers;
} rt_model_spec;

void rt_model_spec_default(rt_model_spec *s, rt_arch arch);

typedef struct rt_model rt_model;

/* Builds the model on backend `be` (NULL: rt_backend_default()) for
 * inputs of shape `in` and batches of up to max_batch samples; parameters
 * are initialised from `seed` (same seed, same values, on every rank,
 * every run and every backend). */
rt_status rt_model_create(rt_model **out, const rt_backend *be, const rt_model_spec *spec,
                          rt_shape in, int max_batch, uint64_t seed);
/* rt_model_create with the parameter and gradient slabs in the caller's
 * memory: rt_model_num_params floats each (of the planned model), memory
 * the backend's kernels can use (host memory for a backend with
 * RT_BACKEND_HOST_MEMORY). The model initialises the parameters there and
 * never frees either slab. The trainer places the parameters of a node's
 * ranks, one copy for all, and each rank's gradients in one node-shared
 * window this way (the node update, docs/architecture.md). */
rt_status rt_model_create_in(rt_model **out, const rt_backend *be, const rt_model_spec *spec,
                             rt_shape in, int max_batch, uint64_t seed, float *params,
                             float *grads);
/* The same model planned, not allocated: its layers are built (names,
 * output shapes, tensors, the sizes of every slab) but no backend memory is
 * taken and no parameter is initialised, so that a large model can be
 * checked on a login node (rtrain --check). Only the accessors below that
 * read sizes, shapes and the tensor table, rt_model_memory_use, the
 * summaries and rt_model_free may be called on it. Not collective. */
rt_status rt_model_plan(rt_model **out, const rt_backend *be, const rt_model_spec *spec,
                        rt_shape in, int max_batch);
void rt_model_free(rt_model *m);
const rt_backend *rt_model_backend(const rt_model *m);

/* Bytes of backend memory a model holds (or, planned, would hold), from
 * the sizes its allocations use: the parameter, gradient and buffer
 * (BatchNorm running statistics) slabs; the layers' saved state for
 * backward (at max_batch); the layers' largest scratch request; and the
 * activations: each top-level layer's output and the model's input at
 * max_batch, the two input-gradient buffers, the loss gradient and the
 * loss targets. Not collective. */
typedef struct rt_model_memory {
    size_t params, grads, buffers;
    size_t saved, scratch, activations;
} rt_model_memory;
void rt_model_memory_use(const rt_model *m, rt_model_memory *out);

/* Runs the layers on x[n][in] (host memory: it is uploaded into the
 * model's input buffer, so the caller may reuse its batch at once);
 * *out (may be NULL) receives the output [n][out] in backend memory, valid
 * until the next forward call. n <= max_batch. */
rt_status rt_model_forward(rt_model *m, const rt_nn_ctx *ctx, const float *x, int n,
                           const float **out);
/* Back-propagates dout[n][out] (backend memory; NULL: the gradient the
 * last rt_model_loss_grad wrote) from the last forward call; parameter
 * gradients are added into the gradient slab. */
rt_status rt_model_backward(rt_model *m, const rt_nn_ctx *ctx, const float *dout, int n);
rt_status rt_model_zero_grad(rt_model *m);

rt_shape rt_model_input_shape(const rt_model *m);
rt_shape rt_model_output_shape(const rt_model *m);
int rt_model_max_batch(const rt_model *m);
size_t rt_model_num_params(const rt_model *m);    /* floats in the param slab */
size_t rt_model_num_buffers(const rt_model *m);   /* floats in the buffer slab */
/* The slabs, in backend memory. */
float *rt_model_params(rt_model *m);
float *rt_model_grads(rt_model *m);
float *rt_model_buffers(rt_model *m);
/* The gradient of the loss w.r.t. the output [max_batch][out] (backend
 * memory), where rt_model_loss_grad writes it. */
float *rt_model_output_grad(rt_model *m);
int rt_model_num_tensors(const rt_model *m);      /* params then buffers, state_dict order */
const rt_tensor_info *rt_model_tensor(const rt_model *m, int i);
const rt_tensor_info *rt_model_find_tensor(const rt_model *m, const char *name);
int rt_model_num_layers(const rt_model *m);
rt_layer *rt_model_layer(rt_model *m, int i);
/* Offset in the parameter slab where top-level layer i's parameters begin.
 * Parameters are laid out in forward order, so once layer i's backward has
 * run, the gradients from this offset to the end of the slab are final. */
size_t rt_model_layer_param_offset(const rt_model *m, int i);
/* Called after each top-level layer's backward (i counts down), so that a
 * caller can start communicating gradients that are final. Not called for
 * the layers after one whose backward failed. */
void rt_model_set_backward_hook(rt_model *m, void (*hook)(void *arg, int layer), void *arg);

/* ---- deferred linear weight gradients (the node update) ---------------------------------- */
/* Where top-level layer i, a built-in linear layer, keeps its parameters:
 * weight[out][in] from `weight` and bias[out] from `bias` in the parameter
 * slab (has_bias 0: none). */
typedef struct rt_linear_layout {
    int in, out;
    size_t weight, bias;
    int has_bias;
} rt_linear_layout;
/* 1 and *out filled when top-level layer i is a built-in linear layer, else
 * 0. Works on a planned model. */
int rt_model_linear_layout(const rt_model *m, int i, rt_linear_layout *out);
/* With `save` set, the backward of every top-level linear layer computes
 * its input gradient alone and hands its output gradient dy[n][out] and
 * its input x[n][in] to save(arg, i, dy, x, n) instead of adding its
 * weight and bias gradients: the caller forms them later from those (with
 * backend->linear_backward, dx NULL). Both pointers are the model's
 * memory, valid only during the call. Why: ranks that share a node can
 * then exchange activations, which for a small batch are much smaller than
 * the gradients (src/train/node_update.c). save NULL: off. Host-memory
 * backends only. */
typedef void (*rt_linear_grad_saver)(void *arg, int layer, const float *dy, const float *x,
                                     int n);
rt_status rt_model_defer_linear_grads(rt_model *m, rt_linear_grad_saver save, void *arg);
/* With `forward` set, the forward of every top-level linear layer calls
 * forward(arg, i, y, x, w, b, n, in, out) instead of the backend's
 * linear_forward, and the caller computes y[n][out] = x . w^T + b there in
 * its own way (b NULL: no bias). Why: ranks that share a node can then
 * split a wide layer's rows between them, each computing its rows for the
 * samples of all (src/train/node_update.c). The pointers are the model's
 * memory, valid only during the call. forward NULL: off. Host-memory
 * backends only. */
typedef rt_status (*rt_linear_forward_fn)(void *arg, int layer, float *y, const float *x,
                                          const float *w, const float *b, int n, int in,
                                          int out);
rt_status rt_model_set_linear_forward(rt_model *m, rt_linear_forward_fn forward, void *arg);
/* Writes a one-line-per-layer summary (name, type, output shape, params)
 * to the log (rt_info). */
void rt_model_print_summary(const rt_model *m);
/* The same summary as a table on f, with the total. */
void rt_model_write_summary(const rt_model *m, FILE *f);

/* ---- per-layer timing (profiles) ------------------------------------------ */
/* Wall time (CLOCK_MONOTONIC) of each layer's calls, for a profile such as
 * run.profile's. A context whose `times` is set makes every layer call
 * through rt_layer_forward / rt_layer_backward add its own time to its row:
 * a composite's row holds what it does besides its children (a BasicBlock's
 * residual add and ReLU), so the rows add up without counting anything
 * twice. On a backend whose memory is not host memory each timed call
 * waits for the device (backend->synchronize) so that the time is the
 * layer's own; a profiled run is then slower. The backward hook
 * (rt_model_set_backward_hook: DDP starting its all-reduces) is timed
 * separately. Timing never changes what is computed. Not collective. */
enum { RT_PASS_FORWARD = 0, RT_PASS_BACKWARD = 1 };

typedef struct rt_layer_time {
    const rt_layer *layer;     /* its name and ops->type */
    double seconds[2];         /* [RT_PASS_*]: own time of its calls */
    int64_t calls[2];
} rt_layer_time;

struct rt_layer_times {
    rt_layer_time *rows;       /* [count]: every layer of the model in build order,
                                * children of a composite after it (state_dict order) */
    int count;
    double hook_seconds;       /* in the backward hook */
    int64_t hook_calls;
};

/* A zeroed table for m's layers; m must outlive it. */
rt_status rt_layer_times_create(rt_layer_times **out, const rt_model *m);
void rt_layer_times_free(rt_layer_times *t);

/* ---- losses ----------------------------------------------------------------- */
/* What a sample's target is (a dataset says which it has, a loss which it
 * takes: rtrain/data.h's rt_sample_desc). */
typedef enum rt_target_kind {
    RT_TARGET_CLASS = 0,   /* one int32 class index in [0, num_classes) */
    RT_TARGET_VECTOR,      /* target_size floats (regression, several outputs) */
    RT_TARGET_SEQUENCE     /* target_size int32 tokens */
} rt_target_kind;

const char *rt_target_kind_name(rt_target_kind k);   /* "class", "vector", "sequence" */

/* A loss is an entry of the table in src/nn/loss.c: its name (train.loss),
 * the kind of target it takes, the backend kernel that computes it, and
 * the evaluation metrics that make sense for it. */
typedef struct rt_loss rt_loss;

typedef enum rt_loss_metrics {
    RT_METRICS_CLASSIFY = 0,   /* accuracy of the argmax */
    RT_METRICS_REGRESS,        /* mse, rmse, mae, r2 */
    RT_METRICS_MULTILABEL      /* accuracy of each 0/1 output (logit > 0) */
} rt_loss_metrics;

const rt_loss *rt_loss_find(const char *name);   /* NULL if unknown */
const char *rt_loss_name(const rt_loss *loss);
rt_target_kind rt_loss_target(const rt_loss *loss);
rt_loss_metrics rt_loss_metric_kind(const rt_loss *loss);
int rt_loss_count(void);
const rt_loss *rt_loss_at(int i);                /* 0 <= i < rt_loss_count() */

/* The loss of the last forward output against targets (host memory;
 * uploaded): int32 labels[n] for a class loss, floats [n][outputs] for a
 * vector loss. *sum = the sum of per-sample losses (so callers can
 * average over any count, e.g. the global batch across ranks); *correct
 * (may be NULL; class losses only, else 0) = samples whose argmax equals
 * the label. */
rt_status rt_model_loss(rt_model *m, const rt_loss *loss, const void *targets, int n,
                        double *sum, int64_t *correct);
/* The same, and writes scale * d(sum)/d(output) into rt_model_output_grad,
 * where rt_model_backward(m, ctx, NULL, n) starts. For the mean over a
 * global batch of G samples: scale = 1/G. */
rt_status rt_model_loss_grad(rt_model *m, const rt_loss *loss, const void *targets, int n,
                             float scale, double *sum, int64_t *correct);
/* Adds the metric sums of the last forward output against float
 * targets[n][outputs] into sums[outputs][5] (the backend's target_sums). */
rt_status rt_model_target_sums(rt_model *m, const float *targets, int n, double *sums);

#ifdef __cplusplus
}
#endif
#endif
