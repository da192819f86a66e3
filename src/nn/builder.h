/* Internal: the rt_builder's record of declarations (see builder.c). */
#ifndef RTRAIN_NN_BUILDER_H
#define RTRAIN_NN_BUILDER_H

#include "nn/layers.h"

typedef struct rt_builder_tensor {
    rt_tensor_info info;
    rt_init init;
    int fan;
    float **data, **grad;   /* grad NULL for buffers */
} rt_builder_tensor;

typedef struct rt_builder_mem {
    size_t offset;          /* floats into the saved arena */
    float **ptr;
} rt_builder_mem;

struct rt_builder {
    const rt_backend *backend;
    int max_batch;
    int serial;             /* layers built so far - 1 */
    rt_layer **layers;      /* [serial + 1]: every layer built, in build order */
    int layer_cap;
    rt_builder_tensor *tensors;   /* declaration order: params and buffers mixed */
    int num_tensors, tensor_cap;
    size_t param_floats, buffer_floats;
    rt_builder_mem *mems;
    int num_mems, mem_cap;
    size_t arena_floats;
    float ***scratch_ptrs;
    int num_scratch, scratch_cap;
    size_t scratch_floats;  /* largest single request */
};

void rt_builder_init(rt_builder *b, const rt_backend *be, int max_batch);
void rt_builder_release(rt_builder *b);
/* Points every declared pointer into the allocated slabs (backend memory). */
void rt_builder_fill(rt_builder *b, float *params, float *grads, float *buffers,
                     float *arena, float *scratch);
/* Initial values of the parameter and buffer slabs, computed on the host
 * into params[param_floats] and buffers[buffer_floats] (the tensor at index
 * i of the model's list, parameters then buffers, draws from stream
 * rt_rng_key(seed, i, 0, 0)); the model uploads them. */
void rt_builder_init_values(const rt_builder *b, float *params, float *buffers,
                            uint64_t seed);

#endif
