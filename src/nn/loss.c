/* Losses on a batch: cross entropy on logits, negative log-likelihood on
 * log-probabilities, and the argmax accuracy count. Sums are accumulated in
 * double so that the per-batch total does not depend on float rounding
 * order more than necessary. A label outside [0, classes) makes that
 * sample's loss NaN (and its gradient row zero), which the training loop's
 * NaN check reports; labels are validated when the dataset is loaded. */
#include <math.h>
#include <string.h>
#include "nn/layers.h"

static int label_ok(int32_t label, int classes) { return label >= 0 && label < classes; }

double rt_cross_entropy(float *dlogits, const float *logits, const int32_t *labels, int n,
                        int classes, float scale)
{
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * classes;
        float *dz = dlogits ? dlogits + (size_t)i * classes : NULL;
        if (!label_ok(labels[i], classes)) {
            total += NAN;
            if (dz)
                memset(dz, 0, (size_t)classes * sizeof *dz);
            continue;
        }
        /* log-sum-exp shifted by the max: exp never overflows. */
        double zmax = z[0];
        for (int k = 1; k < classes; k++)
            zmax = z[k] > zmax ? z[k] : zmax;
        double sum = 0.0;
        for (int k = 0; k < classes; k++)
            sum += exp((double)z[k] - zmax);
        double lse = zmax + log(sum);
        total += lse - z[labels[i]];
        if (dz) {
            for (int k = 0; k < classes; k++)
                dz[k] = (float)(scale * exp((double)z[k] - lse));
            dz[labels[i]] -= scale;
        }
    }
    return total;
}

double rt_nll_loss(float *dlogp, const float *logp, const int32_t *labels, int n, int classes,
                   float scale)
{
    double total = 0.0;
    if (dlogp)
        memset(dlogp, 0, (size_t)n * classes * sizeof *dlogp);
    for (int i = 0; i < n; i++) {
        if (!label_ok(labels[i], classes)) {
            total += NAN;
            continue;
        }
        total -= logp[(size_t)i * classes + labels[i]];
        if (dlogp)
            dlogp[(size_t)i * classes + labels[i]] = -scale;
    }
    return total;
}

int rt_count_correct(const float *logits, const int32_t *labels, int n, int classes)
{
    int correct = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * classes;
        int best = 0;   /* strict >: the first of equal maxima wins, like torch.argmax */
        for (int k = 1; k < classes; k++)
            if (z[k] > z[best])
                best = k;
        correct += best == labels[i];
    }
    return correct;
}
