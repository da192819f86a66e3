/* Threading of the CPU kernels (internal, not installed).
 *
 * The kernels split their work over rt_cpu_threads() threads of a small
 * pool and call OpenBLAS single-threaded from inside them: measured on the
 * ResNet18 and MLP shapes, OpenBLAS 0.3.21's own threading gained nothing
 * on 2 cores (a 128x6272x576 sgemm ran as fast on 2 threads as on 1),
 * while splitting the same sgemm in two halves by hand ran 1.95x faster,
 * and it left im2col, ReLU, BatchNorm and the optimizer serial.
 *
 * Why a pool of our own rather than OpenMP: on a shared machine a thread
 * of the team is sometimes descheduled, and an OpenMP barrier then spins
 * until it returns; with one of 2 cores taken by another process, ResNet18
 * steps ran 35x slower under libgomp's default wait policy, which only an
 * environment variable read at start-up changes. Here the pieces of a
 * loop are claimed, not assigned: a thread that does not show up leaves
 * its pieces to the others, and the caller waits only for pieces that are
 * in progress. Idle threads spin briefly, then sleep.
 *
 * Every split is along an output dimension (samples, channels, output
 * rows or columns), never along a sum, and the pieces depend only on the
 * sizes and the thread count (not on which thread runs them), so results
 * are the same bits from run to run at a given thread count. Across thread
 * counts the elementwise, BatchNorm and pooling results are identical, but
 * an sgemm on a slice of columns may round differently from one on all of
 * them (OpenBLAS picks edge kernels by size): measured, ResNet18 gradients
 * on 1 and 2 threads matched bit for bit with OPENBLAS_CORETYPE=SkylakeX
 * and differed in the last bits with the Haswell kernels. */
#ifndef RTRAIN_KERNELS_CPU_PARALLEL_H
#define RTRAIN_KERNELS_CPU_PARALLEL_H

#include <signal.h>
#include <stddef.h>

/* Threads the kernels use: the count last given to rt_cpu_set_threads, or
 * else the one set through openblas_set_num_threads (rtrain's session sets
 * scaling.threads_per_worker that way), which is then taken over: OpenBLAS
 * is pinned to 1 thread and the kernels run that many threads themselves. */
int rt_cpu_threads(void);
/* Sets the kernels' thread count (< 1: 1) and pins OpenBLAS to 1 thread. */
void rt_cpu_set_threads(int threads);

/* The signals a thread running kernels must not take: every one but the
 * faults a thread causes itself (SIGSEGV, SIGBUS, ...). oneDNN's JIT
 * kernels keep data below the stack pointer, beyond the x86-64 ABI's
 * 128-byte red zone, and a signal handler's frame written there corrupts
 * it (run/session.c). The pool's threads block these for good; the oneDNN
 * convolutions block them while a primitive runs, so that OpenMP's threads,
 * started inside a primitive, inherit the blocked mask. */
void rt_cpu_kernel_signals(sigset_t *set);

/* Below this many floats an elementwise pass runs on one thread: handing
 * out a loop costs a few microseconds, a pass over 32K floats about as
 * much. */
#define RT_PAR_MIN_FLOATS ((size_t)1 << 15)

/* Threads worth using for `work` units when each thread should get at
 * least `min_per_thread` of them. */
int rt_par_threads(size_t work, size_t min_per_thread);

/* [*lo, *hi): part `i` of `parts` of the range [0, n), in order. */
static inline void rt_par_range(size_t *lo, size_t *hi, size_t n, int i, int parts)
{
    *lo = n * (size_t)i / (size_t)parts;
    *hi = n * (size_t)(i + 1) / (size_t)parts;
}

/* Calls fn(arg, lo, hi) for the `parts` pieces of [0, n) given by
 * rt_par_range, on up to `parts` threads; returns when all are done.
 * parts <= 1, a call from inside a piece, or a call while another thread
 * uses the pool run the pieces on the calling thread, in order. */
typedef void (*rt_par_fn)(void *arg, size_t lo, size_t hi);
void rt_par_for(size_t n, int parts, rt_par_fn fn, void *arg);

#endif
