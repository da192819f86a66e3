/* Internal: what the model (model.c) offers the rest of the nn module:
 * the constructor behind rt_model_create_from_layers (include/rtrain/train.h)
 * and the buffers the loss (loss.c) works on. */
#ifndef RTRAIN_NN_CUSTOM_H
#define RTRAIN_NN_CUSTOM_H

#include "rtrain/nn.h"

/* Builds a model of layers[0..n) (checked by the caller: n >= 1, no NULL)
 * on backend be (NULL: the default); the model owns the layers from here
 * on, also when it fails. */
rt_status rt_model_create_custom(rt_model **out, const rt_backend *be, rt_layer **layers,
                                 int n, rt_shape in, int max_batch, uint64_t seed);

/* The output of the last forward call, its batch size (0: none), and the
 * model's target buffer [max_batch][max(1, outputs)] of 4-byte values
 * (backend memory). */
const float *rt_model_last_output(const rt_model *m);
int rt_model_last_batch(const rt_model *m);
void *rt_model_target_buffer(rt_model *m);

#endif
