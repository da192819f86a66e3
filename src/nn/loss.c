/* The loss table: each loss is one row (its name for train.loss, the kind
 * of target it takes, the backend kernel that computes it), so adding a
 * loss is a row here plus its kernel in each backend. And the model's
 * loss step: labels uploaded into the model's label buffer, the kernel run
 * on the last forward output, the accuracy counted on the same output. */
#include <string.h>
#include "nn/custom.h"

typedef rt_status (*loss_kernel)(const rt_backend *be, double *sum, float *dout,
                                 const float *out, const int32_t *labels, int n, int outputs,
                                 float scale);

struct rt_loss {
    const char *name;
    rt_target_kind target;
    loss_kernel kernel;
};

static rt_status cross_entropy(const rt_backend *be, double *sum, float *dout, const float *out,
                               const int32_t *labels, int n, int outputs, float scale)
{
    return be->cross_entropy(sum, dout, out, labels, n, outputs, scale);
}

static rt_status nll(const rt_backend *be, double *sum, float *dout, const float *out,
                     const int32_t *labels, int n, int outputs, float scale)
{
    return be->nll_loss(sum, dout, out, labels, n, outputs, scale);
}

/* The model's outputs are the classes. */
static const rt_loss losses[] = {
    {"cross_entropy", RT_TARGET_CLASS, cross_entropy},   /* on logits (nn.CrossEntropyLoss) */
    {"nll", RT_TARGET_CLASS, nll},                       /* on log-probabilities (nn.NLLLoss) */
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

const char *rt_target_kind_name(rt_target_kind k)
{
    static const char *const names[] = {"class", "vector", "sequence"};
    return (unsigned)k <= RT_TARGET_SEQUENCE ? names[k] : "unknown";
}
int rt_loss_count(void) { return NLOSSES; }
const rt_loss *rt_loss_at(int i) { return i >= 0 && i < NLOSSES ? &losses[i] : NULL; }

static rt_status model_loss(rt_model *m, const rt_loss *loss, const int32_t *labels, int n,
                            float *dout, float scale, double *sum, int64_t *correct)
{
    *sum = 0.0;
    if (correct)
        *correct = 0;
    if (!loss || !labels)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_loss: no loss or no labels");
    if (n < 1 || n != rt_model_last_batch(m))
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_model_loss: batch of %d samples but the last "
                        "forward call had %d", n, rt_model_last_batch(m));
    const rt_backend *be = rt_model_backend(m);
    int outputs = (int)rt_shape_size(rt_model_output_shape(m));
    const float *out = rt_model_last_output(m);
    int32_t *dev_labels = rt_model_label_buffer(m);
    RT_CHECK(be->upload(dev_labels, labels, (size_t)n * sizeof *labels));
    RT_CHECK(loss->kernel(be, sum, dout, out, dev_labels, n, outputs, scale));
    if (correct)
        RT_CHECK(be->count_correct(correct, out, dev_labels, n, outputs));
    return RT_OK;
}

rt_status rt_model_loss(rt_model *m, const rt_loss *loss, const int32_t *labels, int n,
                        double *sum, int64_t *correct)
{
    return model_loss(m, loss, labels, n, NULL, 1.0f, sum, correct);
}

rt_status rt_model_loss_grad(rt_model *m, const rt_loss *loss, const int32_t *labels, int n,
                             float scale, double *sum, int64_t *correct)
{
    return model_loss(m, loss, labels, n, rt_model_output_grad(m), scale, sum, correct);
}
