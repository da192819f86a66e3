/* Internal: the model constructor behind rt_model_create_from_layers
 * (include/rtrain/train.h), in model.c because it fills the private model. */
#ifndef RTRAIN_NN_CUSTOM_H
#define RTRAIN_NN_CUSTOM_H

#include "rtrain/nn.h"

/* Builds a model of layers[0..n) (checked by the caller: n >= 1, no NULL);
 * the model owns the layers from here on, also when it fails. */
rt_status rt_model_create_custom(rt_model **out, rt_layer **layers, int n, rt_shape in,
                                 int max_batch, uint64_t seed);

#endif
