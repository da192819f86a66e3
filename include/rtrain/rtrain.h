/* rtrain: every public header in one (#include <rtrain/rtrain.h>).
 * Compile and link a program with
 *   mpicc prog.c $(pkg-config --cflags --libs rtrain)
 * Whether a function is collective is documented at its declaration. */
#ifndef RTRAIN_RTRAIN_H
#define RTRAIN_RTRAIN_H

#include "rtrain/core.h"
#include "rtrain/nn.h"
#include "rtrain/optim.h"
#include "rtrain/data.h"
#include "rtrain/config.h"
#include "rtrain/comm.h"
#include "rtrain/ckpt.h"
#include "rtrain/run.h"
#include "rtrain/train.h"
#include "rtrain/tune.h"
#include "rtrain/gbdt.h"

#endif
