/* Philox4x32-10 counter-based generator (Salmon et al., SC'11): the value
 * at counter i of stream key k is a pure function of (k, i), which makes
 * shuffles, initialisation and dropout reproducible on any rank and across
 * a resume. */
#include <math.h>
#include "rtrain/core.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void rt_philox4x32(uint64_t key, uint64_t counter, uint32_t out[4])
{
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
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
    return (float)(rt_rng_u32(rng) >> 8) * (1.0f / 16777216.0f);
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
