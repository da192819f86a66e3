/* The backends of this build, by name, and the geometry every backend
 * shares (output sizes of convolution and pooling). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include "backend/backends.h"
#include "config.h"

/* The backends of this build, by name. The cuda table lives in the CUDA
 * library, loaded on first use of that table (gpu.c): names never load it. */
static const struct {
    const char *name;
    const rt_backend *(*table)(void);
} backends[] = {
    {"cpu", NULL}, {"naive", NULL},
#ifdef RT_HAVE_CUDA
    {"cuda", rt_backend_cuda_table},
#endif
};
#define NBACKENDS ((int)(sizeof backends / sizeof backends[0]))

const rt_backend *rt_backend_at(int i)
{
    if (i < 0 || i >= NBACKENDS)
        return NULL;
    if (backends[i].table)
        return backends[i].table();
    return i == 0 ? &rt_backend_cpu : &rt_backend_naive;
}

const char *rt_backend_name_at(int i) { return i >= 0 && i < NBACKENDS ? backends[i].name : NULL; }

const rt_backend *rt_backend_find(const char *name)
{
    for (int i = 0; name && i < NBACKENDS; i++)
        if (strcmp(backends[i].name, name) == 0)
            return rt_backend_at(i);
    return NULL;
}

const rt_backend *rt_backend_default(void) { return &rt_backend_cpu; }
int rt_backend_count(void) { return NBACKENDS; }

void rt_backend_list(char *buf, size_t size)
{
    size_t used = 0;
    if (size)
        buf[0] = '\0';
    for (int i = 0; i < NBACKENDS && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                                 backends[i].name);
}

int rt_conv_geom_init(rt_conv_geom *g, int c, int h, int w, int k, int kh, int kw,
                      int stride, int pad)
{
    memset(g, 0, sizeof *g);
    if (c < 1 || h < 1 || w < 1 || k < 1 || kh < 1 || kw < 1 || stride < 1 || pad < 0)
        return 0;
    if (h + 2 * pad < kh || w + 2 * pad < kw)
        return 0;
    *g = (rt_conv_geom){ .c = c, .h = h, .w = w, .k = k, .kh = kh, .kw = kw,
                         .stride = stride, .pad = pad,
                         .oh = (h + 2 * pad - kh) / stride + 1,
                         .ow = (w + 2 * pad - kw) / stride + 1 };
    return 1;
}

int rt_pool_geom_init(rt_pool_geom *g, int c, int h, int w, int kernel, int stride, int pad)
{
    memset(g, 0, sizeof *g);
    /* PyTorch requires pad <= kernel/2, which guarantees that every window
     * holds at least one real element. */
    if (c < 1 || h < 1 || w < 1 || kernel < 1 || stride < 1 || pad < 0 || 2 * pad > kernel)
        return 0;
    if (h + 2 * pad < kernel || w + 2 * pad < kernel)
        return 0;
    *g = (rt_pool_geom){ .c = c, .h = h, .w = w, .kh = kernel, .kw = kernel,
                         .stride = stride, .pad = pad,
                         .oh = (h + 2 * pad - kernel) / stride + 1,
                         .ow = (w + 2 * pad - kernel) / stride + 1 };
    return 1;
}

void rt_backend_select_blas(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || getenv("RTRAIN_NO_BLAS_SELECT"))
        return;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl"))
        return;
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the kernels already loaded. */
}
