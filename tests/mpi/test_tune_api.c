/* rt_tune_run with the caller's own trial function (the C counterpart of
 * Ray Tune's Tuner(train_fn)), on one group of all ranks (mpirun -np 2,
 * tune.ranks_per_trial = 2), so that trials run in order and ASHA's
 * decisions are known:
 *
 *   mpirun -np 2 test_tune_api DIR
 *
 * The trial function reports a synthetic "score" for 8 iterations: at
 * iteration 1 the trial's optimizer.lr, later lr again, except for lr =
 * 0.9, which falls to 0.1. Grid lr = 0.5, 0.9, 0.1; ASHA with rungs at 1,
 * 2, 4, 8 (grace 1, reduction factor 2), mode max. So trial 0 (first
 * everywhere) runs to the end; trial 1 passes rung 1 (0.9 > 0.5) and stops
 * at rung 2 (0.1 < 0.5); trial 2 stops at rung 1 (0.1 is below both).
 * Checked: every rank of the group sees rt_run_should_stop at the same
 * report, exactly at those iterations; the function returns RT_OK and the
 * sweep records TERMINATED / STOPPED with the right number of reports; the
 * trial's configuration carries its value and its directory. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "rtrain/rtrain.h"

enum { ITERATIONS = 8, TRIALS = 3 };

typedef struct seen {
    int last[TRIALS];        /* the last iteration each trial reported */
    int stopped_at[TRIALS];  /* the report after which rt_run_should_stop said 1 */
    int calls;
} seen;

static rt_status trial(rt_session *s, const rt_config *cfg, void *arg)
{
    seen *w = arg;
    int t = -1;
    if (sscanf(cfg->run.name, "trial_%d", &t) != 1 || t < 0 || t >= TRIALS)
        return RT_ERROR(RT_ERR_INVALID_ARG, "unexpected trial name '%s'", cfg->run.name);
    w->calls++;
    rt_run *run = NULL;
    RT_CHECK(rt_run_open(&run, s, cfg));
    double lr = cfg->optimizer.lr;   /* a float: 0.9 is 0.899999976 */
    rt_status st = RT_OK;
    for (int it = 1; st == RT_OK && it <= ITERATIONS; it++) {
        double score = it > 1 && fabs(lr - 0.9) < 1e-6 ? 0.1 : lr;
        rt_metric m[1] = {{"score", score}};
        st = rt_report(run, m, 1, NULL);
        w->last[t] = it;
        if (st == RT_OK && rt_run_should_stop(run)) {
            w->stopped_at[t] = it;
            break;
        }
    }
    rt_run_close(run);
    return st;
}

static int check_record(const char *dir, int t, const char *status, int reports)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/api/trial_%05d/tune_trial.json", dir, t);
    json_t *rec = json_load_file(path, 0, NULL);
    const char *got = json_string_value(json_object_get(rec, "status"));
    int ok = got && !strcmp(got, status);
    json_decref(rec);
    snprintf(path, sizeof path, "%s/api/trial_%05d/result.json", dir, t);
    FILE *f = fopen(path, "r");
    int lines = 0;
    for (int c; f && (c = fgetc(f)) != EOF;)
        lines += c == '\n';
    if (f)
        fclose(f);
    if (!ok || lines != reports)
        fprintf(stderr, "FAIL: trial %d: status %s (want %s), %d reports (want %d)\n", t,
                got ? got : "(none)", status, lines, reports);
    return ok && lines == reports;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mpirun -np 2 test_tune_api DIR\n");
        return 2;
    }
    char cfgpath[4096], storage[4200];
    snprintf(cfgpath, sizeof cfgpath, "%s/api.cfg", argv[1]);
    snprintf(storage, sizeof storage, "run.storage_path=\"%s\"", argv[1]);
    rt_session *s = NULL;
    rt_status st = rt_session_init(&s, &argc, &argv);
    if (st != RT_OK)
        return rt_session_exit_code(s, st);
    if (rt_session_context(s)->world_rank == 0) {
        FILE *f = fopen(cfgpath, "w");
        if (f) {
            fprintf(f, "optimizer = { lr = { grid = [0.5, 0.9, 0.1]; }; };\n"
                       "train = { epochs = %d; };\n"
                       "run = { name = \"api\"; verbose = 0; };\n"
                       "tune = { scheduler = \"asha\"; grace_period = 1; reduction_factor = 2;\n"
                       "         metric = \"score\"; mode = \"max\"; ranks_per_trial = 2; };\n",
                    ITERATIONS);
            fclose(f);
        }
    }
    st = rt_session_agree(s, access(cfgpath, R_OK) == 0 || rt_session_context(s)->world_rank
                          ? RT_OK : RT_ERROR(RT_ERR_IO, "cannot write %s", cfgpath));
    seen w = {{0}, {0}, 0};
    char *overrides[1] = {storage};
    if (st == RT_OK)
        st = rt_tune_run(s, cfgpath, 1, overrides, RT_TUNE_ERRORED_KEEP, trial, &w, NULL);
    int ok = st == RT_OK;
    if (!ok)
        fprintf(stderr, "FAIL: rt_tune_run: %s\n", rt_error_message());
    const int want_stop[TRIALS] = {0, 2, 1}, want_last[TRIALS] = {ITERATIONS, 2, 1};
    for (int t = 0; ok && t < TRIALS; t++)
        if (w.stopped_at[t] != want_stop[t] || w.last[t] != want_last[t]) {
            fprintf(stderr, "FAIL: rank %d, trial %d: stopped after %d (want %d), last %d "
                    "(want %d)\n", rt_session_context(s)->world_rank, t, w.stopped_at[t],
                    want_stop[t], w.last[t], want_last[t]);
            ok = 0;
        }
    if (ok && w.calls != TRIALS) {
        fprintf(stderr, "FAIL: the trial function ran %d times, want %d\n", w.calls, TRIALS);
        ok = 0;
    }
    if (ok && rt_session_context(s)->world_rank == 0)
        ok = check_record(argv[1], 0, "TERMINATED", ITERATIONS) &
             check_record(argv[1], 1, "STOPPED", 2) & check_record(argv[1], 2, "STOPPED", 1);
    int32_t all = ok;
    if (rt_comm_allreduce(rt_session_comm(s), &all, 1, RT_DTYPE_INT32, RT_REDUCE_MIN) != RT_OK)
        all = 0;
    rt_session_finalize(s);
    if (all)
        printf("PASS: rt_tune_run with a trial function: ASHA decisions seen on every rank\n");
    return all ? 0 : 1;
}
