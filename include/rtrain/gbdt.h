/* rtrain gbdt: gradient-boosted trees over MPI, trained by a real boosting
 * library (XGBoost, LightGBM) with rtrain's data, reports, checkpoints and
 * resume (docs/gbdt.md).
 *
 * `model.arch = "gbdt"` makes rt_trainer_run (rtrain/train.h) call
 * rt_gbdt_run: each rank reads its contiguous shard of the training and
 * evaluation tables, the library trains on all shards together (its own
 * distributed mode, joined over the session's communicator), and every
 * rank holds the same trees after each round. */
#ifndef RTRAIN_GBDT_H
#define RTRAIN_GBDT_H

#include <stdio.h>

#include "rtrain/config.h"
#include "rtrain/run.h"

#ifdef __cplusplus
extern "C" {
#endif

/* In a gbdt run's checkpoint.h5: the library's own model file as bytes
 * (rt_ckpt_read_bytes), with the attributes arch, library,
 * library_version, format, rounds, objective and params_digest on /model
 * (docs/checkpoint-format.md). */
#define RT_GBDT_CKPT_MODEL "/model/gbdt"

/* Collective over the session's communicator: trains cfg->gbdt's model
 * for model.num_rounds rounds (continuing a checkpoint of the run, as
 * rt_get_checkpoint decides), one report every train.eval_every rounds
 * and at the end with metrics computed by rtrain on the whole evaluation
 * split, a checkpoint every checkpoint.frequency rounds and at the end
 * (checkpoint.at_end). Returns an agreed status (RT_STOPPED after a stop
 * signal, with its checkpoint written); error.txt and the summary as
 * rt_trainer_run. */
rt_status rt_gbdt_run(rt_session *s, const rt_config *cfg);

#ifdef __cplusplus
}
#endif
/* Not collective, no MPI: rtrain --check for model.arch = "gbdt". Loads
 * model.library, opens both splits (their inputs stay in the file), checks
 * the storage path and prints the resolved configuration, the library and
 * its version, the splits and each of world_size ranks' rows to out; the
 * errors are those rt_gbdt_run gives at its set-up. */
rt_status rt_gbdt_check(const rt_config *cfg, int world_size, FILE *out);

#endif
