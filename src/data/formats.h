/* The dataset formats of this build (internal): each format's file
 * defines its open function; format.c lists them by name. */
#ifndef RTRAIN_DATA_FORMATS_H
#define RTRAIN_DATA_FORMATS_H

#include "rtrain/data.h"

/* idx.c: MNIST-style files, x = images, y = labels. */
rt_status rt_idx_open(rt_dataset **out, const rt_data_source *src);

#endif
