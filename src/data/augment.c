/* Image augmentation made by the loader: a random crop after padding and a
 * random horizontal flip, in torchvision's order (RandomCrop(size,
 * padding) then RandomHorizontalFlip). Each sample's choices are drawn
 * from its own counter-based stream, keyed by (seed, epoch, sample index)
 * and the constant RT_AUGMENT_STREAM, which keeps it apart from the
 * sampler's and dropout's streams: what a sample looks like never depends
 * on which rank loads it, on the world size, or on where a run resumed.
 * Draw order per sample (part of the reproducibility contract): crop top,
 * crop left (each uniform in [0, 2 * padding]), then the flip bit. */
#include <string.h>
#include "rtrain/data.h"

#define RT_AUGMENT_STREAM 0xa06du

rt_status rt_augment_check(const rt_augment *a, const rt_sample_desc *d)
{
    if (a->crop_padding <= 0 && !a->hflip)
        return RT_OK;
    if (a->crop_padding < 0 || d->ndim != 3)
        return RT_ERROR(RT_ERR_CONFIG, "data.augment needs image samples [channels, height, "
                        "width], but the samples have %d dimension(s): remove data.augment",
                        d->ndim);
    if (d->shape[0] > RT_MAX_CHANNELS)
        return RT_ERROR(RT_ERR_CONFIG, "data.augment handles images of up to %d channels, "
                        "these have %lld", RT_MAX_CHANNELS, (long long)d->shape[0]);
    return RT_OK;
}

/* x = the window at (top, left) of x padded by p on each side. */
static void crop(float *x, float *scratch, int64_t c, int64_t h, int64_t w, int p, int top,
                 int left, const float *pad)
{
    memcpy(scratch, x, (size_t)(c * h * w) * sizeof *x);
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t i = 0; i < h; i++) {
            int64_t si = i + top - p;   /* row of the unpadded image */
            float *row = x + (ch * h + i) * w;
            for (int64_t j = 0; j < w; j++) {
                int64_t sj = j + left - p;
                int inside = si >= 0 && si < h && sj >= 0 && sj < w;
                row[j] = inside ? scratch[(ch * h + si) * w + sj] : pad[ch];
            }
        }
}

static void flip(float *x, int64_t c, int64_t h, int64_t w)
{
    for (int64_t r = 0; r < c * h; r++) {
        float *row = x + r * w;
        for (int64_t j = 0; j < w / 2; j++) {
            float t = row[j];
            row[j] = row[w - 1 - j];
            row[w - 1 - j] = t;
        }
    }
}

void rt_augment_apply(const rt_augment *a, float *x, float *scratch, const int64_t *shape,
                      const float *pad, uint64_t seed, int64_t epoch, int64_t index)
{
    rt_rng rng;
    rt_rng_init(&rng, rt_rng_key(seed, (uint64_t)epoch, RT_AUGMENT_STREAM, (uint64_t)index));
    int64_t c = shape[0], h = shape[1], w = shape[2];
    if (a->crop_padding > 0) {
        uint32_t span = 2u * (uint32_t)a->crop_padding + 1u;
        int top = (int)rt_rng_below(&rng, span);
        int left = (int)rt_rng_below(&rng, span);
        crop(x, scratch, c, h, w, a->crop_padding, top, left, pad);
    }
    if (a->hflip && (rt_rng_u32(&rng) & 1u))
        flip(x, c, h, w);
}
