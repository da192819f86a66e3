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

/* Block shuffle (data.shuffle_block = B, for data streamed from a file):
 * the samples are cut into blocks of B consecutive indices (the last may
 * be shorter); the blocks are visited in a shuffled order (key c = 0) and
 * each block's samples in a shuffled order of their own (key c = 1 +
 * block). Consecutive positions of the epoch's order, and so each global
 * batch and each rank's part of it, then come from one or two blocks: a
 * streaming reader touches few file chunks per batch. The order still
 * depends only on (seed, epoch, B). */
size_t rt_sample_order_blocks_scratch(int64_t count, int64_t block)
{
    return (size_t)((count + block - 1) / block + (block < count ? block : count));
}

void rt_sample_order_blocks(uint32_t *perm, int64_t count, int64_t block, uint64_t seed,
                            int64_t epoch, uint32_t *scratch)
{
    int64_t nblocks = (count + block - 1) / block;
    uint32_t *order = scratch, *within = scratch + nblocks;
    rt_rng_permutation(rt_rng_key(seed, (uint64_t)epoch, RT_SAMPLER_STREAM, 0), order,
                       (uint32_t)nblocks);
    int64_t pos = 0;
    for (int64_t i = 0; i < nblocks; i++) {
        int64_t first = (int64_t)order[i] * block;
        int64_t n = count - first < block ? count - first : block;
        rt_rng_permutation(rt_rng_key(seed, (uint64_t)epoch, RT_SAMPLER_STREAM,
                                      1 + (uint64_t)order[i]), within, (uint32_t)n);
        for (int64_t j = 0; j < n; j++)
            perm[pos + j] = (uint32_t)(first + within[j]);
        pos += n;
    }
}

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

void rt_loader_split(const rt_loader_opts *o, int64_t g, int64_t *begin, int64_t *end)
{
    if (o->rank_block <= 0) {
        rt_batch_split(g, o->rank, o->world_size, begin, end);
        return;
    }
    int64_t b = (int64_t)o->rank * o->rank_block;
    *begin = b < g ? b : g;
    *end = b + o->rank_block < g ? b + o->rank_block : g;
}
