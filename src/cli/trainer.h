/* The built-in training loop of the rtrain program. */
#ifndef RTRAIN_CLI_TRAINER_H
#define RTRAIN_CLI_TRAINER_H

#include "rtrain/config.h"
#include "rtrain/run.h"

/* Collective: trains as configured; returns an agreed status. */
rt_status rt_trainer_run(rt_session *s, const rt_config *cfg);

#endif
