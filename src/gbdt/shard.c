/* src/gbdt/shard.c — each rank's contiguous rows of the training and
 * evaluation tables, as the library takes them (row-major float32, one
 * float label per row), with the labels checked against the objective.
 *
 * The tables are opened as the neural-network trainer opens them
 * (trainer_data_sources: idx, hdf5 or csv, data.test_fraction, the
 * training split's encoding for the evaluation split); rank r of P keeps
 * rows [r*N/P, (r+1)*N/P) of each. A classification objective reads
 * class targets, as the network trainer does (a CSV's class names, text
 * or numbers, become 0..K-1 in sorted order; idx and HDF5 labels as they
 * are); any other objective reads the target as a number. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"
#include "train/trainer.h"

void gbdt_rows_free(gbdt_rows *r)
{
    rt_free(r->x);
    rt_free(r->label);
    *r = (gbdt_rows){0};
}

/* This rank's rows of ds into r; `what` names the split in messages. */
static rt_status read_rows(gbdt_trainer *g, rt_dataset *ds, gbdt_rows *r, const char *what)
{
    const rt_sample_desc *d = rt_dataset_desc(ds);
    if (d->target == RT_TARGET_SEQUENCE || d->target_size != 1)
        return RT_ERROR(RT_ERR_CONFIG, "gradient-boosted trees take one target value per row; "
                        "the %s data has %d: name one column in data.target", what,
                        d->target_size);
    int64_t n = rt_dataset_count(ds);
    int64_t first = n * g->rank / g->world, last = n * (g->rank + 1) / g->world;
    int64_t rows = last - first, cols = (int64_t)rt_sample_input_size(d);
    RT_CHECK(rt_alloc(&r->x, (size_t)(rows ? rows : 1) * (size_t)cols, sizeof(float), what));
    RT_CHECK(rt_alloc(&r->label, (size_t)(rows ? rows : 1), sizeof(float), what));
    for (int64_t i = 0; i < rows; i++) {
        union { int32_t cls; float value; } t;
        RT_CHECK(rt_dataset_fetch(ds, first + i, r->x + i * cols, &t));
        r->label[i] = d->target == RT_TARGET_CLASS ? (float)t.cls : t.value;
    }
    r->shard = (rt_gbdt_shard){.x = r->x, .label = r->label, .rows = rows, .cols = cols,
                               .first_row = first, .global_rows = n};
    return RT_OK;
}

/* What the objective accepts as a label (a task rtrain does not know:
 * finite numbers; the library checks the rest). */
static rt_status check_label(const gbdt_trainer *g, float y, int64_t row, const char *what)
{
    const char *obj = g->cfg->gbdt.objective;
    if (!isfinite(y))
        return RT_ERROR(RT_ERR_FORMAT, "row %lld of the %s data has label %g: labels must be "
                        "numbers", (long long)row, what, y);
    if (g->task == RT_GBDT_TASK_BINARY && y != 0.0f && y != 1.0f)
        return RT_ERROR(RT_ERR_FORMAT, "model.objective = \"%s\" takes labels 0 and 1, but row "
                        "%lld of the %s data has %g: use a multiclass objective or recode the "
                        "labels", obj, (long long)row, what, y);
    if (g->task == RT_GBDT_TASK_MULTICLASS &&
        (y < 0 || y != floorf(y) || (g->num_class > 1 && y >= (float)g->num_class)))
        return RT_ERROR(RT_ERR_FORMAT, "model.objective = \"%s\" takes class labels 0 to %d, "
                        "but row %lld of the %s data has %g", obj,
                        g->num_class > 1 ? g->num_class - 1 : (int)1e9, (long long)row, what,
                        y);
    return RT_OK;
}

static rt_status check_labels(const gbdt_trainer *g, const gbdt_rows *r, const char *what)
{
    for (int64_t i = 0; i < r->shard.rows; i++)
        RT_CHECK(check_label(g, r->label[i], r->shard.first_row + i, what));
    return RT_OK;
}

rt_status gbdt_open_splits(const gbdt_trainer *g, const rt_node_memory *nm, int check_only,
                           rt_dataset **tr, rt_dataset **te)
{
    const rt_config *c = g->cfg;
    const char *features[RT_MAX_COLUMNS], *categorical[RT_MAX_COLUMNS];
    rt_data_source train, test;
    int classes = g->task == RT_GBDT_TASK_BINARY || g->task == RT_GBDT_TASK_MULTICLASS;
    *tr = *te = NULL;
    RT_CHECK(trainer_data_sources(c, classes ? RT_TARGET_CLASS : RT_TARGET_VECTOR, features,
                                  categorical, nm, &train, &test));
    if (check_only)   /* rtrain --check: shapes and targets, the inputs stay in the file */
        train.cache = test.cache = RT_CACHE_NONE;
    rt_status st = rt_dataset_open_splits(tr, te, c->data.format, &train, &test, NULL);
    if (st == RT_OK && rt_sample_input_size(rt_dataset_desc(*tr)) !=
                       rt_sample_input_size(rt_dataset_desc(*te)))
        st = RT_ERROR(RT_ERR_CONFIG, "the evaluation data has %zu features per row, the "
                      "training data %zu: check data.test", rt_sample_input_size(rt_dataset_desc(*te)),
                      rt_sample_input_size(rt_dataset_desc(*tr)));
    if (st != RT_OK) {
        rt_dataset_free(*tr);
        rt_dataset_free(*te);
        *tr = *te = NULL;
    }
    return st;
}

/* Opens both splits and keeps this rank's rows (local; the caller agrees). */
static rt_status load_local(gbdt_trainer *g)
{
    rt_node_memory nm = rt_comm_node_memory(g->comm);
    rt_dataset *tr, *te;
    RT_CHECK(gbdt_open_splits(g, &nm, 0, &tr, &te));
    rt_status st = read_rows(g, tr, &g->train, "training");
    if (st == RT_OK)
        st = read_rows(g, te, &g->valid, "evaluation");
    rt_dataset_free(tr);
    rt_dataset_free(te);
    return st;
}

/* model.num_class, or from the data: the largest label of both splits + 1. */
static rt_status resolve_classes(gbdt_trainer *g)
{
    g->num_class = g->cfg->gbdt.num_class > 1 ? g->cfg->gbdt.num_class : 1;
    if (g->task != RT_GBDT_TASK_MULTICLASS || g->cfg->gbdt.num_class > 0)
        return RT_OK;
    double top = 0;
    const gbdt_rows *splits[2] = {&g->train, &g->valid};
    for (int s = 0; s < 2; s++)
        for (int64_t i = 0; i < splits[s]->shard.rows; i++)
            if (splits[s]->label[i] > top)
                top = splits[s]->label[i];
    RT_CHECK(rt_comm_allreduce(g->comm, &top, 1, RT_DTYPE_FLOAT64, RT_REDUCE_MAX));
    g->num_class = top < 1e6 ? (int)top + 1 : 1;
    if (g->num_class < 2)
        return RT_ERROR(RT_ERR_CONFIG, "model.objective = \"%s\" needs at least 2 classes; "
                        "the labels have %d: set model.num_class", g->cfg->gbdt.objective,
                        g->num_class);
    return RT_OK;
}

rt_status gbdt_load_shards(gbdt_trainer *g)
{
    RT_CHECK(rt_session_agree(g->session, load_local(g)));
    RT_CHECK(rt_session_agree(g->session, resolve_classes(g)));
    rt_status st = check_labels(g, &g->train, "training");
    if (st == RT_OK)
        st = check_labels(g, &g->valid, "evaluation");
    return rt_session_agree(g->session, st);
}
