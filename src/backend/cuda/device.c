/* The GPU of this process: opening it (stream, cuBLAS and cuDNN handles),
 * the backend's memory entries, the reusable workspace and pinned buffer,
 * and turning CUDA runtime errors into rt_status.
 *
 * One process drives one GPU, so the state is one static struct. Every
 * transfer and kernel goes to one non-blocking stream: the entries are
 * ordered with each other without device-wide synchronisation, and a
 * download waits for that stream only; an upload is staged through pinned
 * memory and not waited for (rt_cuda_upload). Allocation sizes are kept
 * in a small table so that the high-water
 * mark (rt_gpu_peak_bytes) counts what rtrain asked for, as PyTorch's
 * max_memory_allocated does. */
#include <cublas_v2.h>
#include <cudnn.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/device.h"

enum { MAX_ALLOCATIONS = 4096 };
#define STAGE_BYTES ((size_t)4 << 20)   /* per pinned upload slot */

typedef struct allocation {
    void *ptr;
    size_t bytes;
} allocation;

static struct gpu {
    int open;
    int device;
    rt_gpu_opts opts;
    cudaStream_t stream;
    cublasHandle_t cublas;
    cudnnHandle_t cudnn;
    void *workspace;
    size_t workspace_bytes;
    void *host_buffer;
    size_t host_buffer_bytes;
    void *stage[2];                 /* pinned upload slots (rt_cuda_upload) */
    cudaEvent_t stage_done[2];
    int next_stage;
    allocation allocations[MAX_ALLOCATIONS];
    size_t allocated, peak;
} gpu;

/* ---- errors ----------------------------------------------------------------------- */

static const char *host_name(void)
{
    static char name[64];
    if (!name[0] && gethostname(name, sizeof name - 1) != 0)
        strcpy(name, "?");
    return name;
}

rt_status rt_cuda_status(cudaError_t e, const char *what, const char *file, int line)
{
    if (e == cudaSuccess)
        return RT_OK;
    rt_status code = e == cudaErrorMemoryAllocation ? RT_ERR_NOMEM : RT_ERR_DEVICE;
    return rt_error_set(code, file, line, "%s: %s (CUDA error %d, GPU %d on host %s)", what,
                        cudaGetErrorString(e), (int)e, gpu.device, host_name());
}

rt_status rt_cuda_cublas_status(int status, const char *what, const char *file, int line)
{
    cublasStatus_t s = (cublasStatus_t)status;
    if (s == CUBLAS_STATUS_SUCCESS)
        return RT_OK;
    rt_status code = s == CUBLAS_STATUS_ALLOC_FAILED ? RT_ERR_NOMEM : RT_ERR_DEVICE;
    return rt_error_set(code, file, line, "%s: %s (cuBLAS, GPU %d on host %s)", what,
                        cublasGetStatusString(s), gpu.device, host_name());
}

rt_status rt_cuda_cudnn_status(int status, const char *what, const char *file, int line)
{
    cudnnStatus_t s = (cudnnStatus_t)status;
    if (s == CUDNN_STATUS_SUCCESS)
        return RT_OK;
    rt_status code = s == CUDNN_STATUS_ALLOC_FAILED ? RT_ERR_NOMEM : RT_ERR_DEVICE;
    char detail[512] = "";
    cudnnGetLastErrorString(detail, sizeof detail);
    return rt_error_set(code, file, line, "%s: %s%s%s (cuDNN, GPU %d on host %s)", what,
                        cudnnGetErrorString(s), detail[0] ? ": " : "", detail, gpu.device,
                        host_name());
}

rt_status rt_cuda_nccl_status(int result, const char *what, const char *file, int line)
{
    ncclResult_t r = (ncclResult_t)result;
    if (r == ncclSuccess)
        return RT_OK;
    return rt_error_set(RT_ERR_DEVICE, file, line, "%s: %s (NCCL, GPU %d on host %s)", what,
                        ncclGetErrorString(r), gpu.device, host_name());
}

static rt_status require_open(void)
{
    if (!gpu.open)
        return RT_ERROR(RT_ERR_INVALID_ARG, "the cuda backend was used before rt_gpu_open "
                        "chose this process's GPU");
    return RT_OK;
}

/* ---- opening the device ----------------------------------------------------------------- */

int rt_cuda_gpu_count(void)
{
    int n = 0;
    /* cudaGetDeviceCount creates no context; with no driver it fails. */
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();   /* clear the sticky "no driver" error */
        return 0;
    }
    return n;
}

rt_status rt_cuda_gpu_uuid(int device, unsigned char uuid[16])
{
    memset(uuid, 0, 16);
    struct cudaDeviceProp prop;
    RT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device), "reading a GPU's properties");
    memcpy(uuid, prop.uuid.bytes, 16);
    return RT_OK;
}

static rt_status open_handles(const rt_gpu_opts *opts)
{
    RT_CUDA_CHECK(cudaStreamCreateWithFlags(&gpu.stream, cudaStreamNonBlocking),
                  "creating the compute stream");
    RT_CUBLAS_CHECK(cublasCreate(&gpu.cublas), "creating the cuBLAS handle");
    RT_CUBLAS_CHECK(cublasSetStream(gpu.cublas, gpu.stream), "setting cuBLAS's stream");
    /* TF32 only on request (gpu.tf32): PyTorch's default for matmul too. */
    RT_CUBLAS_CHECK(cublasSetMathMode(gpu.cublas, opts->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                             : CUBLAS_DEFAULT_MATH),
                    "setting cuBLAS's math mode");
    RT_CUDNN_CHECK(cudnnCreate(&gpu.cudnn), "creating the cuDNN handle");
    RT_CUDNN_CHECK(cudnnSetStream(gpu.cudnn, gpu.stream), "setting cuDNN's stream");
    return RT_OK;
}

rt_status rt_cuda_gpu_open(int device, const rt_gpu_opts *opts)
{
    if (gpu.open)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_gpu_open: GPU %d is already open in this "
                        "process", gpu.device);
    int count = rt_cuda_gpu_count();
    if (device < 0 || device >= count)
        return RT_ERROR(RT_ERR_UNSUPPORTED, "GPU %d was asked for on host %s, which has %d "
                        "visible GPU%s (CUDA_VISIBLE_DEVICES=%s)", device, host_name(), count,
                        count == 1 ? "" : "s",
                        getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES")
                                                       : "(not set)");
    gpu.device = device;
    gpu.opts = opts ? *opts : (rt_gpu_opts){.deterministic = 1};
    RT_CUDA_CHECK(cudaSetDevice(device), "selecting the GPU");
    rt_status st = open_handles(&gpu.opts);
    if (st != RT_OK) {
        rt_cuda_gpu_close();
        return st;
    }
    gpu.open = 1;
    return RT_OK;
}

void rt_cuda_gpu_close(void)
{
    if (gpu.stream)
        cudaStreamSynchronize(gpu.stream);
    if (gpu.open)
        rt_cuda_linear_release();
    if (gpu.workspace)
        cudaFree(gpu.workspace);
    if (gpu.host_buffer)
        cudaFreeHost(gpu.host_buffer);
    for (int i = 0; i < 2; i++) {
        if (gpu.stage[i])
            cudaFreeHost(gpu.stage[i]);
        if (gpu.stage_done[i])
            cudaEventDestroy(gpu.stage_done[i]);
    }
    if (gpu.cudnn)
        cudnnDestroy(gpu.cudnn);
    if (gpu.cublas)
        cublasDestroy(gpu.cublas);
    if (gpu.stream)
        cudaStreamDestroy(gpu.stream);
    memset(&gpu, 0, sizeof gpu);
}

void rt_cuda_gpu_describe(char *buf, size_t size)
{
    if (!gpu.open) {
        snprintf(buf, size, "no GPU open");
        return;
    }
    struct cudaDeviceProp prop;
    int runtime = 0, driver = 0, nccl = 0, cublas = 0;
    if (cudaGetDeviceProperties(&prop, gpu.device) != cudaSuccess)
        snprintf(prop.name, sizeof prop.name, "?");
    cudaRuntimeGetVersion(&runtime);
    cudaDriverGetVersion(&driver);
    ncclGetVersion(&nccl);
    cublasGetVersion(gpu.cublas, &cublas);
    snprintf(buf, size, "GPU %d: %s (sm_%d%d, %.1f GiB); CUDA runtime %d.%d, driver %d.%d, "
             "cuDNN %zu (built with %d), cuBLAS %d, NCCL %d; tf32 %s, deterministic %s",
             gpu.device, prop.name, prop.major, prop.minor,
             (double)prop.totalGlobalMem / (1 << 30), runtime / 1000, runtime % 1000 / 10,
             driver / 1000, driver % 1000 / 10, cudnnGetVersion(), CUDNN_VERSION, cublas, nccl,
             gpu.opts.tf32 ? "on" : "off", gpu.opts.deterministic ? "on" : "off");
}

size_t rt_cuda_gpu_peak_bytes(void) { return gpu.peak; }

cudaStream_t rt_cuda_stream(void) { return gpu.stream; }
cublasHandle_t rt_cuda_cublas(void) { return gpu.cublas; }
cudnnHandle_t rt_cuda_cudnn(void) { return gpu.cudnn; }
const rt_gpu_opts *rt_cuda_opts(void) { return &gpu.opts; }

rt_status rt_cuda_wait(void)
{
    RT_CUDA_CHECK(cudaStreamSynchronize(gpu.stream), "waiting for the GPU");
    return RT_OK;
}

/* ---- memory --------------------------------------------------------------------------- */

/* Counts an allocation (one the table cannot hold is not counted at all,
 * so that freeing it cannot skew the figure). */
static void remember(void *ptr, size_t bytes)
{
    for (int i = 0; i < MAX_ALLOCATIONS; i++)
        if (!gpu.allocations[i].ptr) {
            gpu.allocations[i] = (allocation){ptr, bytes};
            gpu.allocated += bytes;
            if (gpu.allocated > gpu.peak)
                gpu.peak = gpu.allocated;
            return;
        }
}

static void forget(void *ptr)
{
    for (int i = 0; i < MAX_ALLOCATIONS; i++)
        if (gpu.allocations[i].ptr == ptr) {
            gpu.allocated -= gpu.allocations[i].bytes;
            gpu.allocations[i] = (allocation){NULL, 0};
            return;
        }
}

rt_status rt_cuda_alloc(void **out, size_t bytes, const char *what)
{
    *out = NULL;
    RT_CHECK(require_open());
    if (bytes == 0)
        bytes = 1;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess && e != cudaErrorMemoryAllocation)   /* an earlier failure */
        return rt_cuda_status(e, "allocating GPU memory", __FILE__, __LINE__);
    if (e != cudaSuccess) {
        cudaGetLastError();
        size_t free_bytes = 0, total = 0;
        cudaMemGetInfo(&free_bytes, &total);
        return RT_ERROR(RT_ERR_NOMEM, "out of GPU memory for %s: %zu bytes asked, %zu of %zu "
                        "free on GPU %d of host %s (%s): lower data.batch_size or use a "
                        "smaller model", what, bytes, free_bytes, total, gpu.device,
                        host_name(), cudaGetErrorString(e));
    }
    /* Zero-filled, as the table promises (cudaMalloc is 256-byte aligned). */
    e = cudaMemsetAsync(p, 0, bytes, gpu.stream);
    if (e != cudaSuccess) {
        cudaFree(p);
        return rt_cuda_status(e, "zeroing new GPU memory", __FILE__, __LINE__);
    }
    remember(p, bytes);
    *out = p;
    return RT_OK;
}

void rt_cuda_free(void *ptr)
{
    if (!ptr)
        return;
    /* Kernels queued on the stream may still read it. */
    cudaStreamSynchronize(gpu.stream);
    forget(ptr);
    cudaFree(ptr);
}

/* Uploads go through two pinned staging slots: the host's bytes are
 * copied into a slot and the copy to the GPU is queued on the compute
 * stream without waiting for it, so a batch's upload overlaps the end of
 * the previous step (its optimizer kernels), and the caller may reuse
 * host_src at once, as the table promises. A slot is reused only after
 * its previous copy has completed (its event). */
static rt_status staging_slot(int i, void **buf)
{
    if (!gpu.stage[i]) {
        /* The event first: a slot with memory always has its event. */
        if (!gpu.stage_done[i])
            RT_CUDA_CHECK(cudaEventCreateWithFlags(&gpu.stage_done[i], cudaEventDisableTiming),
                          "creating an event");
        RT_CUDA_CHECK(cudaMallocHost(&gpu.stage[i], STAGE_BYTES), "allocating pinned host "
                      "memory for uploads");
    } else {
        RT_CUDA_CHECK(cudaEventSynchronize(gpu.stage_done[i]), "waiting for an upload");
    }
    *buf = gpu.stage[i];
    return RT_OK;
}

rt_status rt_cuda_upload(void *dst, const void *host_src, size_t bytes)
{
    RT_CHECK(require_open());
    for (size_t done = 0; done < bytes;) {
        size_t piece = bytes - done < STAGE_BYTES ? bytes - done : STAGE_BYTES;
        int slot = gpu.next_stage;
        void *stage = NULL;
        RT_CHECK(staging_slot(slot, &stage));
        memcpy(stage, (const char *)host_src + done, piece);
        RT_CUDA_CHECK(cudaMemcpyAsync((char *)dst + done, stage, piece, cudaMemcpyHostToDevice,
                                      gpu.stream), "copying to the GPU");
        RT_CUDA_CHECK(cudaEventRecord(gpu.stage_done[slot], gpu.stream), "recording an event");
        gpu.next_stage = 1 - slot;
        done += piece;
    }
    return RT_OK;
}

rt_status rt_cuda_download(void *host_dst, const void *src, size_t bytes)
{
    RT_CHECK(require_open());
    RT_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, gpu.stream),
                  "copying from the GPU");
    return rt_cuda_wait();
}

rt_status rt_cuda_copy(void *dst, const void *src, size_t bytes)
{
    RT_CHECK(require_open());
    RT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, gpu.stream),
                  "copying on the GPU");
    return RT_OK;
}

rt_status rt_cuda_synchronize(void)
{
    RT_CHECK(require_open());
    return rt_cuda_wait();
}

/* Grows a reusable buffer; `what` names it in the error. */
static rt_status grow(void **buf, size_t *have, size_t bytes, int pinned, const char *what)
{
    if (*have >= bytes)
        return RT_OK;
    RT_CHECK(rt_cuda_wait());   /* queued work may still use the old one */
    if (*buf)
        pinned ? cudaFreeHost(*buf) : cudaFree(*buf);
    *buf = NULL;
    *have = 0;
    size_t want = bytes < 4096 ? 4096 : bytes;
    cudaError_t e = pinned ? cudaMallocHost(buf, want) : cudaMalloc(buf, want);
    if (e != cudaSuccess)
        return rt_cuda_status(e, what, __FILE__, __LINE__);
    *have = want;
    return RT_OK;
}

rt_status rt_cuda_workspace(void **ptr, size_t bytes)
{
    RT_CHECK(require_open());
    RT_CHECK(grow(&gpu.workspace, &gpu.workspace_bytes, bytes, 0, "allocating the GPU "
                  "workspace"));
    *ptr = gpu.workspace;
    return RT_OK;
}

rt_status rt_cuda_host_buffer(void **ptr, size_t bytes)
{
    RT_CHECK(require_open());
    RT_CHECK(grow(&gpu.host_buffer, &gpu.host_buffer_bytes, bytes, 1, "allocating pinned host "
                  "memory"));
    *ptr = gpu.host_buffer;
    return RT_OK;
}
