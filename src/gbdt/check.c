/* src/gbdt/check.c — rtrain --check for model.arch = "gbdt".
 *
 * The same set-up stages as rt_gbdt_run, in its order, without MPI: the
 * library (found, loaded, the objective known or left to the library), both
 * splits opened as the run opens them (the inputs stay in the file), the
 * storage path. A typo in the config or a missing library fails here in a
 * second instead of after the queue. What only the run can find: labels
 * the objective refuses (the run reads every row), and an objective or
 * parameters the library rejects (it sees them when the booster is
 * created). */
#include <stdio.h>
#include "internal.h"
#include "../train/trainer.h"

/* "142 (smallest) to 143 (largest)" rows per rank, as shard.c splits. */
static void print_rows_per_rank(FILE *f, const char *what, int64_t n, int world)
{
    int64_t least = n, most = 0;
    for (int r = 0; r < world; r++) {
        int64_t rows = n * (r + 1) / world - n * r / world;
        least = rows < least ? rows : least;
        most = rows > most ? rows : most;
    }
    fprintf(f, "  %-10s rows per rank: %lld", what, (long long)least);
    if (most != least)
        fprintf(f, " to %lld", (long long)most);
    fprintf(f, "\n");
}

static void print_report(FILE *out, const gbdt_trainer *g, rt_dataset *tr, rt_dataset *te,
                         const char *dir, int exists)
{
    const rt_config *c = g->cfg;
    fprintf(out, "\nData (data.format \"%s\"):\n", c->data.format);
    trainer_print_split(out, "training", tr);
    trainer_print_split(out, "evaluation", te);
    print_rows_per_rank(out, "training", rt_dataset_count(tr), g->world);
    print_rows_per_rank(out, "evaluation", rt_dataset_count(te), g->world);
    fprintf(out, "\nModel: gradient-boosted trees, %s %s, objective \"%s\"%s, %d rounds, "
            "%d parameter(s)\n", g->lib->name, g->version, c->gbdt.objective,
            g->task == RT_GBDT_TASK_UNKNOWN ? " (not known to rtrain: no evaluation metrics)"
                                            : "",
            c->gbdt.num_rounds, c->gbdt.num_params);
    fprintf(out, "\nRun directory: %s (%s)\n", dir,
            exists ? "exists already: run.resume and run.overwrite say what a run does"
                   : "new");
    fprintf(out, "\nNot checked: the labels against the objective, and the objective and "
            "model.params against %s, which the run checks when it reads the rows and "
            "creates the booster.\n", g->lib->name);
    fprintf(out, "\nrtrain --check: OK for %d rank(s)\n", g->world);
}

rt_status rt_gbdt_check(const rt_config *cfg, int world_size, FILE *out)
{
    gbdt_trainer g = {.cfg = cfg, .world = world_size};
    rt_dataset *tr = NULL, *te = NULL;
    char dir[RT_PATH_MAX];
    int exists = 0;
    rt_status st = gbdt_open_library(&g);
    if (st == RT_OK)
        st = gbdt_open_splits(&g, NULL, 1, &tr, &te);
    if (st == RT_OK)
        st = rt_run_check_dir(cfg, dir, sizeof dir, &exists);
    if (st == RT_OK) {
        fprintf(out, "Configuration (resolved):\n");
        st = rt_config_write_json(cfg, out);
    }
    if (st == RT_OK)
        print_report(out, &g, tr, te, dir, exists);
    fflush(out);
    rt_dataset_free(tr);
    rt_dataset_free(te);
    return st;
}
