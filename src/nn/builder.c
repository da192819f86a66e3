/* The rt_builder: while layers are built it records what they declare
 * (parameters, buffers, saved/fixed/scratch memory) together with the
 * addresses of the layer's pointers; model.c then allocates one slab of
 * each kind and fills those pointers in (rt_builder_fill). Offsets are
 * assigned at declaration time, so parameters sit in the slab in the order
 * the layers declared them, which is forward order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "nn/builder.h"

/* Bounds on what one declaration may ask for, so that a bad config fails
 * with a message instead of an absurd allocation. */
#define MAX_TENSOR_FLOATS ((size_t)1 << 31)
#define MAX_TOTAL_FLOATS ((size_t)1 << 34)

static rt_status grow(void **arr, int *cap, int n, size_t elem, const char *what)
{
    if (n < *cap)
        return RT_OK;
    int ncap = *cap ? 2 * *cap : 16;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory growing the list of %s", what);
    *arr = p;
    *cap = ncap;
    return RT_OK;
}

void rt_builder_init(rt_builder *b, const rt_backend *be, int max_batch)
{
    memset(b, 0, sizeof *b);
    b->backend = be;
    b->max_batch = max_batch;
    b->serial = -1;
}

void rt_builder_release(rt_builder *b)
{
    free(b->tensors);
    free(b->layers);
    free(b->mems);
    free(b->scratch_ptrs);
    memset(b, 0, sizeof *b);
}

int rt_builder_max_batch(const rt_builder *b) { return b->max_batch; }
const rt_backend *rt_builder_backend(const rt_builder *b) { return b->backend; }
int rt_builder_layer_serial(const rt_builder *b) { return b->serial; }

static rt_status add_floats(size_t *total, size_t add, const char *what)
{
    if (add > MAX_TOTAL_FLOATS || *total > MAX_TOTAL_FLOATS - add)
        return RT_ERROR(RT_ERR_CONFIG, "model too large: %s would exceed %zu floats; "
                        "reduce layer sizes or the batch size", what, MAX_TOTAL_FLOATS);
    *total += add;
    return RT_OK;
}

static rt_status add_tensor(rt_builder *b, rt_layer *l, rt_tensor_kind kind,
                            const char *suffix, int ndim, const int *shape, rt_init init,
                            int fan, float **data, float **grad)
{
    if (ndim < 0 || ndim > RT_MAX_NDIM)
        return RT_ERROR(RT_ERR_INTERNAL, "%s.%s: %d dimensions (at most %d)", l->name,
                        suffix, ndim, RT_MAX_NDIM);
    RT_CHECK(grow((void **)&b->tensors, &b->tensor_cap, b->num_tensors, sizeof *b->tensors,
                  "tensors"));
    rt_builder_tensor *t = &b->tensors[b->num_tensors];
    memset(t, 0, sizeof *t);
    RT_CHECK(rt_nn_join_name(t->info.name, l->name, suffix));
    t->info.kind = kind;
    t->info.ndim = ndim;
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1 || count > MAX_TENSOR_FLOATS / (size_t)shape[d])
            return RT_ERROR(RT_ERR_CONFIG, "%s: dimension %d of size %d is out of range "
                            "(tensor of at most %zu floats)", t->info.name, d, shape[d],
                            MAX_TENSOR_FLOATS);
        t->info.shape[d] = shape[d];
        count *= (size_t)shape[d];
    }
    t->info.count = count;
    size_t *total = kind == RT_TENSOR_PARAM ? &b->param_floats : &b->buffer_floats;
    t->info.offset = *total;
    RT_CHECK(add_floats(total, count, t->info.name));
    t->init = init;
    t->fan = fan;
    t->data = data;
    t->grad = grad;
    b->num_tensors++;
    return RT_OK;
}

rt_status rt_builder_param(rt_builder *b, rt_layer *l, const char *suffix, int ndim,
                           const int *shape, rt_init init, int fan, float **data,
                           float **grad)
{
    return add_tensor(b, l, RT_TENSOR_PARAM, suffix, ndim, shape, init, fan, data, grad);
}

rt_status rt_builder_buffer(rt_builder *b, rt_layer *l, const char *suffix, int ndim,
                            const int *shape, rt_init init, float **data)
{
    if (init != RT_INIT_ZEROS && init != RT_INIT_ONES)
        return RT_ERROR(RT_ERR_INTERNAL, "%s.%s: buffers are initialised to zeros or ones",
                        l->name, suffix);
    return add_tensor(b, l, RT_TENSOR_BUFFER, suffix, ndim, shape, init, 0, data, NULL);
}

/* Saved and fixed memory share one arena; each piece starts on a 64-byte
 * boundary so kernels see aligned pointers. */
static rt_status add_mem(rt_builder *b, size_t floats, float **ptr)
{
    RT_CHECK(grow((void **)&b->mems, &b->mem_cap, b->num_mems, sizeof *b->mems,
                  "saved buffers"));
    floats = (floats + 15) & ~(size_t)15;
    b->mems[b->num_mems].offset = b->arena_floats;
    b->mems[b->num_mems].ptr = ptr;
    RT_CHECK(add_floats(&b->arena_floats, floats, "saved activations"));
    b->num_mems++;
    return RT_OK;
}

rt_status rt_builder_saved(rt_builder *b, size_t floats_per_sample, float **ptr)
{
    if (floats_per_sample > MAX_TOTAL_FLOATS / (size_t)b->max_batch)
        return RT_ERROR(RT_ERR_CONFIG, "saved activations of %zu floats per sample x %d "
                        "samples are too large; reduce the batch size", floats_per_sample,
                        b->max_batch);
    return add_mem(b, floats_per_sample * (size_t)b->max_batch, ptr);
}

rt_status rt_builder_fixed(rt_builder *b, size_t floats, float **ptr)
{
    return add_mem(b, floats, ptr);
}

rt_status rt_builder_scratch(rt_builder *b, size_t floats, float **ptr)
{
    if (floats > MAX_TOTAL_FLOATS)
        return RT_ERROR(RT_ERR_CONFIG, "scratch request of %zu floats is too large; reduce "
                        "the batch size", floats);
    RT_CHECK(grow((void **)&b->scratch_ptrs, &b->scratch_cap, b->num_scratch,
                  sizeof *b->scratch_ptrs, "scratch requests"));
    b->scratch_ptrs[b->num_scratch++] = ptr;
    if (floats > b->scratch_floats)
        b->scratch_floats = floats;
    return RT_OK;
}

rt_status rt_builder_child(rt_builder *b, rt_layer *child, rt_shape in, rt_shape *out)
{
    if (in.c < 1 || in.h < 1 || in.w < 1)
        return RT_ERROR(RT_ERR_CONFIG, "layer '%s' (%s): empty input shape [%d, %d, %d]",
                        child->name, child->ops->type, in.c, in.h, in.w);
    child->in_shape = in;
    child->backend = b->backend;
    RT_CHECK(grow((void **)&b->layers, &b->layer_cap, b->serial + 1, sizeof *b->layers,
                  "layers"));
    b->serial++;
    child->index = b->serial;
    b->layers[b->serial] = child;
    RT_CHECK(child->ops->build(child, b, in, out));
    child->out_shape = *out;
    return RT_OK;
}

/* Values as PyTorch draws them (distribution, not bits): each tensor has
 * its own stream keyed by (seed, tensor index), so adding a layer at the
 * end never changes the initial values of the ones before it. */
static void init_tensor(float *x, const rt_builder_tensor *t, uint64_t seed, int index)
{
    rt_rng rng;
    rt_rng_init(&rng, rt_rng_key(seed, (uint64_t)index, 0, 0));
    size_t n = t->info.count;
    switch (t->init) {
    case RT_INIT_ZEROS:
        memset(x, 0, n * sizeof *x);
        break;
    case RT_INIT_ONES:
        for (size_t i = 0; i < n; i++)
            x[i] = 1.0f;
        break;
    case RT_INIT_UNIFORM_FAN_IN: {
        float bound = 1.0f / sqrtf((float)(t->fan > 0 ? t->fan : 1));
        for (size_t i = 0; i < n; i++)
            x[i] = (2.0f * rt_rng_uniform(&rng) - 1.0f) * bound;
        break;
    }
    case RT_INIT_KAIMING_NORMAL_FAN_OUT: {
        float std = sqrtf(2.0f / (float)(t->fan > 0 ? t->fan : 1));
        for (size_t i = 0; i < n; i++)
            x[i] = std * rt_rng_normal(&rng);
        break;
    }
    }
}

void rt_builder_init_values(const rt_builder *b, float *params, float *buffers, uint64_t seed)
{
    /* Stream index = the tensor's index in the model's public list
     * (parameters first, then buffers), as rt_model_tensor numbers them. */
    int num_params = 0, next_param = 0, next_buffer;
    for (int i = 0; i < b->num_tensors; i++)
        num_params += b->tensors[i].info.kind == RT_TENSOR_PARAM;
    next_buffer = num_params;
    for (int i = 0; i < b->num_tensors; i++) {
        const rt_builder_tensor *t = &b->tensors[i];
        int is_param = t->info.kind == RT_TENSOR_PARAM;
        float *x = (is_param ? params : buffers) + t->info.offset;
        init_tensor(x, t, seed, is_param ? next_param++ : next_buffer++);
    }
}

void rt_builder_fill(rt_builder *b, float *params, float *grads, float *buffers,
                     float *arena, float *scratch)
{
    for (int i = 0; i < b->num_tensors; i++) {
        rt_builder_tensor *t = &b->tensors[i];
        int is_param = t->info.kind == RT_TENSOR_PARAM;
        *t->data = (is_param ? params : buffers) + t->info.offset;
        if (t->grad)
            *t->grad = grads + t->info.offset;
    }
    for (int i = 0; i < b->num_mems; i++)
        *b->mems[i].ptr = arena + b->mems[i].offset;
    for (int i = 0; i < b->num_scratch; i++)
        *b->scratch_ptrs[i] = scratch;
}
