/* The global sample order of an epoch and the split of a global batch
 * across ranks. Both depend only on (seed, epoch, global batch size) and
 * never on the world size for the order itself, which is what lets a run
 * resume on a different number of ranks and see the same global batches.
 *
 * Shuffle key: rt_rng_key(seed, epoch, RT_SAMPLER_STREAM, 0). The constant
 * third index keeps the sampler's stream apart from any other stream keyed
 * by (seed, epoch, ...) elsewhere in rtrain (dropout, augmentation). Changing
 * it changes every shuffled run, so it is part of the reproducibility
 * contract. */
#include "rtrain/data.h"

#define RT_SAMPLER_STREAM 0x5eedu

/* count must be <= UINT32_MAX (datasets hold at most 2^31-1 samples). */
void rt_sample_order(uint32_t *perm, int64_t count, uint64_t seed, int64_t epoch, int shuffle)
{
    if (shuffle) {
        rt_rng_permutation(rt_rng_key(seed, (uint64_t)epoch, RT_SAMPLER_STREAM, 0), perm,
                           (uint32_t)count);
        return;
    }
    for (int64_t i = 0; i < count; i++)
        perm[i] = (uint32_t)i;
}

/* Contiguous parts; the first g % world_size ranks take one extra sample,
 * so rank r's part starts after r full parts plus min(r, g % W) extras. */
void rt_batch_split(int64_t g, int rank, int world_size, int64_t *begin, int64_t *end)
{
    int64_t base = g / world_size, extra = g % world_size;
    *begin = rank * base + (rank < extra ? rank : extra);
    *end = *begin + base + (rank < extra ? 1 : 0);
}
