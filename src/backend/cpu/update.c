/* The optimizers' updates on the CPU: the element loops of backend/host.c
 * split over the backend's threads (parallel.h). Each element's update is
 * independent, so the split changes no result. */
#include "backend/host.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"

typedef struct update_job {
    float *p, *s1, *s2;    /* parameters and up to two state arrays */
    const float *g;
    const rt_sgd_coef *sgd;
    const rt_adam_coef *adam;
} update_job;

static void sgd_piece(void *arg, size_t lo, size_t hi)
{
    const update_job *j = arg;
    rt_host_sgd_range(j->p, j->g, lo, hi, j->sgd);
}

static void sgd_momentum_piece(void *arg, size_t lo, size_t hi)
{
    const update_job *j = arg;
    rt_host_sgd_momentum_range(j->p, j->s1, j->g, lo, hi, j->sgd);
}

static void adam_piece(void *arg, size_t lo, size_t hi)
{
    const update_job *j = arg;
    rt_host_adam_range(j->p, j->s1, j->s2, j->g, lo, hi, j->adam);
}

rt_status rt_cpu_sgd_update(float *p, const float *g, size_t n, const rt_sgd_coef *c)
{
    update_job j = {.p = p, .g = g, .sgd = c};
    rt_par_for(n, rt_par_threads(n, RT_PAR_MIN_FLOATS), sgd_piece, &j);
    return RT_OK;
}

rt_status rt_cpu_sgd_momentum_update(float *p, float *buf, const float *g, size_t n,
                                     const rt_sgd_coef *c)
{
    update_job j = {.p = p, .s1 = buf, .g = g, .sgd = c};
    rt_par_for(n, rt_par_threads(n, RT_PAR_MIN_FLOATS), sgd_momentum_piece, &j);
    return RT_OK;
}

rt_status rt_cpu_adam_update(float *p, float *m, float *v, const float *g, size_t n,
                             const rt_adam_coef *c)
{
    update_job j = {.p = p, .s1 = m, .s2 = v, .g = g, .adam = c};
    rt_par_for(n, rt_par_threads(n, RT_PAR_MIN_FLOATS), adam_piece, &j);
    return RT_OK;
}
