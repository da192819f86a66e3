/* src/gbdt/rabit_tracker.h — the rabit tracker XGBoost 1.x workers dial.
 *
 * XGBoost before 2.1 has no MPI engine and no tracker in its C library:
 * its workers connect to a tracker that assigns ranks and tells each
 * worker which peers to link to. rtrain runs this tracker in a thread of
 * rank 0; the workers (every rank's XGBoost, rank 0's included) connect to
 * it over TCP. The protocol is described in rabit_tracker.c. */
#ifndef RTRAIN_SRC_GBDT_RABIT_TRACKER_H
#define RTRAIN_SRC_GBDT_RABIT_TRACKER_H

#include "rtrain/core.h"

typedef struct rt_rabit_tracker rt_rabit_tracker;

/* Not collective: listens on `host` ("127.0.0.1", or NULL for every
 * address) at a free port (*port receives it) and serves `world` workers
 * from a thread until each has said shutdown. A worker's rank is the
 * number in its task id (XGBoost's DMLC_TASK_ID), so rank r of rtrain is
 * rank r of XGBoost. */
rt_status rt_rabit_tracker_start(rt_rabit_tracker **out, const char *host, int world, int *port);

/* Not collective: waits for the tracker's thread (every worker shut down,
 * or `timeout_s` passed: then the listening socket is closed and the
 * thread ends), and frees it. The tracker's own failure, if any, is
 * returned. NULL is allowed. */
rt_status rt_rabit_tracker_stop(rt_rabit_tracker *t, double timeout_s);

#endif
