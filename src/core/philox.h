/* Philox4x32-10 (Salmon et al., SC'11) as an inline function that both the
 * host (core/rng.c) and the CUDA kernels (dropout masks) compile, so that
 * every backend draws the same bits from one definition. Internal. */
#ifndef RTRAIN_CORE_PHILOX_H
#define RTRAIN_CORE_PHILOX_H

#include <stdint.h>

/* Functions both the host compiler and nvcc build (device code too). */
#ifdef __CUDACC__
#define RT_HOST_DEVICE __host__ __device__
#else
#define RT_HOST_DEVICE
#endif

#define RT_PHILOX_M0 0xD2511F53u
#define RT_PHILOX_M1 0xCD9E8D57u
#define RT_PHILOX_W0 0x9E3779B9u
#define RT_PHILOX_W1 0xBB67AE85u

/* Block `counter` of stream `key`: four 32-bit words. */
static inline RT_HOST_DEVICE void rt_philox4x32_block(uint64_t key, uint64_t counter,
                                                      uint32_t out[4])
{
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)RT_PHILOX_M0 * c0, p1 = (uint64_t)RT_PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += RT_PHILOX_W0;
        k1 += RT_PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* A uniform float in [0, 1) from one word: 24 bits times 2^-24 (exact). */
static inline RT_HOST_DEVICE float rt_philox_uniform(uint32_t word)
{
    return (float)(word >> 8) * (1.0f / 16777216.0f);
}

#endif
