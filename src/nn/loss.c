/* The loss table: each loss is one row (its name for train.loss, the kind
 * of target it takes, the backend kernel that computes it, and which
 * evaluation metrics make sense for it), so adding a loss is a row here
 * plus its kernel in each backend. And the model's loss step: targets
 * uploaded into the model's target buffer, the kernel run on the last
 * forward output, the accuracy counted on the same output. */
#include <string.h>
#include "nn/custom.h"

/* Targets are int32 labels (class losses) or floats (vector losses). */
typedef rt_status (*loss_kernel)(const rt_backend *be, double *sum, float *dout,
                                 const float *out, const void *targets, int n, int outputs,
                                 float scale);

struct rt_loss {
    const char *name;
    rt_target_kind target;
    rt_loss_metrics metrics;
    loss_kernel kernel;
};

static rt_status cross_entropy(const rt_backend *be, double *sum, float *dout, const float *out,
                               const void *targets, int n, int outputs, float scale)
{
    return be->cross_entropy(sum, dout, out, targets, n, outputs, scale);
}

static rt_status nll(const rt_backend *be, double *sum, float *dout, const float *out,
                     const void *targets, int n, int outputs, float scale)
{
    return be->nll_loss(sum, dout, out, targets, n, outputs, scale);
}

static rt_status mse(const rt_backend *be, double *sum, float *dout, const float *out,
                     const void *targets, int n, int outputs, float scale)
{
    return be->mse_loss(sum, dout, out, targets, n, outputs, scale);
}

static rt_status l1(const rt_backend *be, double *sum, float *dout, const float *out,
                    const void *targets, int n, int outputs, float scale)
{
    return be->l1_loss(sum, dout, out, targets, n, outputs, scale);
}

static rt_status smooth_l1(const rt_backend *be, double *sum, float *dout, const float *out,
                           const void *targets, int n, int outputs, float scale)
{
    return be->smooth_l1_loss(sum, dout, out, targets, n, outputs, scale);
}

static rt_status bce_logits(const rt_backend *be, double *sum, float *dout, const float *out,
                            const void *targets, int n, int outputs, float scale)
{
    return be->bce_logits_loss(sum, dout, out, targets, n, outputs, scale);
}

/* Class losses: the model's outputs are the classes. Vector losses: one
 * output per target value (torch.nn.MSELoss, L1Loss, SmoothL1Loss,
 * BCEWithLogitsLoss with their default mean reduction). */
static const rt_loss losses[] = {
    {"cross_entropy", RT_TARGET_CLASS, RT_METRICS_CLASSIFY, cross_entropy},  /* on logits */
    {"nll", RT_TARGET_CLASS, RT_METRICS_CLASSIFY, nll},        /* on log-probabilities */
    {"mse", RT_TARGET_VECTOR, RT_METRICS_REGRESS, mse},
    {"l1", RT_TARGET_VECTOR, RT_METRICS_REGRESS, l1},
    {"smooth_l1", RT_TARGET_VECTOR, RT_METRICS_REGRESS, smooth_l1},   /* Huber, beta = 1 */
    {"bce_with_logits", RT_TARGET_VECTOR, RT_METRICS_MULTILABEL, bce_logits},  /* 0/1 targets */
};
#define NLOSSES ((int)(sizeof losses / sizeof losses[0]))

const rt_loss *rt_loss_find(const char *name)
{
    for (int i = 0; name && i < NLOSSES; i++)
        if (strcmp(losses[i].name, name) == 0)
            return &losses[i];
    return NULL;
}

const char *rt_loss_name(const rt_loss *loss) { return loss ? loss->name : "unknown"; }
rt_target_kind rt_loss_target(const rt_loss *loss) { return loss->target; }
rt_loss_metrics rt_loss_metric_kind(const rt_loss *loss) { return loss->metrics; }

const char *rt_target_kind_name(rt_target_kind k)
{
    static const char *const names[] = {"class", "vector", "sequence"};
    return (unsigned)k <= RT_TARGET_SEQUENCE ? names[k] : "unknown";
}
int rt_loss_count(void) { return NLOSSES; }
const rt_loss *rt_loss_at(int i) { return i >= 0 && i < NLOSSES ? &losses[i] : NULL; }

static rt_status model_loss(rt_model *m, const rt_loss *loss, const void *targets, int n,
                            float *dout, float scale, double *sum, int64_t *correct)
{
    *sum = 0.0;
    if (correct)
        *correct = 0;
    if (!loss || !targets)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_loss: no loss or no targets");
    if (n < 1 || n != rt_model_last_batch(m))
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_loss: batch of %d samples but the last "
                        "forward call had %d", n, rt_model_last_batch(m));
    const rt_backend *be = rt_model_backend(m);
    int outputs = (int)rt_shape_size(rt_model_output_shape(m));
    size_t per_sample = loss->target == RT_TARGET_CLASS ? 1 : (size_t)outputs;
    const float *out = rt_model_last_output(m);
    void *dev_targets = rt_model_target_buffer(m);
    RT_CHECK(be->upload(dev_targets, targets, (size_t)n * per_sample * 4));
    RT_CHECK(loss->kernel(be, sum, dout, out, dev_targets, n, outputs, scale));
    if (correct && loss->target == RT_TARGET_CLASS)
        RT_CHECK(be->count_correct(correct, out, dev_targets, n, outputs));
    return RT_OK;
}

rt_status rt_model_loss(rt_model *m, const rt_loss *loss, const void *targets, int n,
                        double *sum, int64_t *correct)
{
    return model_loss(m, loss, targets, n, NULL, 1.0f, sum, correct);
}

rt_status rt_model_loss_grad(rt_model *m, const rt_loss *loss, const void *targets, int n,
                             float scale, double *sum, int64_t *correct)
{
    return model_loss(m, loss, targets, n, rt_model_output_grad(m), scale, sum, correct);
}

rt_status rt_model_target_sums(rt_model *m, const float *targets, int n, double *sums)
{
    if (n < 1 || n != rt_model_last_batch(m))
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_target_sums: batch of %d samples but "
                        "the last forward call had %d", n, rt_model_last_batch(m));
    const rt_backend *be = rt_model_backend(m);
    int outputs = (int)rt_shape_size(rt_model_output_shape(m));
    void *dev_targets = rt_model_target_buffer(m);
    RT_CHECK(be->upload(dev_targets, targets, (size_t)n * (size_t)outputs * sizeof(float)));
    return be->target_sums(sums, rt_model_last_output(m), dev_targets, n, outputs);
}
