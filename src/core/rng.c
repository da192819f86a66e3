/* Philox4x32-10 counter-based generator (Salmon et al., SC'11): the value
 * at counter i of stream key k is a pure function of (k, i), which makes
 * shuffles, initialisation and dropout reproducible on any rank and across
 * a resume. */
#include <math.h>
#include "rtrain/core.h"
#include "core/philox.h"

void rt_philox4x32(uint64_t key, uint64_t counter, uint32_t out[4])
{
    rt_philox4x32_block(key, counter, out);
}

/* splitmix64 finaliser: mixes stream indices into a well-spread key. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t rt_rng_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    return mix64(mix64(mix64(mix64(seed) ^ a) ^ b) ^ c);
}

void rt_rng_init(rt_rng *rng, uint64_t key)
{
    rng->key = key;
    rng->counter = 0;
    rng->buf_pos = 4;
}

uint32_t rt_rng_u32(rt_rng *rng)
{
    if (rng->buf_pos == 4) {
        rt_philox4x32(rng->key, rng->counter++, rng->buf);
        rng->buf_pos = 0;
    }
    return rng->buf[rng->buf_pos++];
}

float rt_rng_uniform(rt_rng *rng)
{
    return rt_philox_uniform(rt_rng_u32(rng));
}

uint32_t rt_rng_below(rt_rng *rng, uint32_t n)
{
    /* Lemire's multiply-and-reject: unbiased without division in the common case. */
    uint64_t m = (uint64_t)rt_rng_u32(rng) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = -n % n;
        while (low < threshold) {
            m = (uint64_t)rt_rng_u32(rng) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float rt_rng_normal(rt_rng *rng)
{
    /* Box-Muller on (0,1] x [0,1): u1 never 0 so log is finite. */
    double u1 = ((double)rt_rng_u32(rng) + 1.0) / 4294967296.0;
    double u2 = (double)rt_rng_u32(rng) / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void rt_rng_permutation(uint64_t key, uint32_t *perm, uint32_t n)
{
    rt_rng rng;
    rt_rng_init(&rng, key);
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = rt_rng_below(&rng, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
