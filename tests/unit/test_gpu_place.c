/* GPU placement without a GPU: which device each rank drives and whether
 * the model's tensors go over NCCL or MPI, from every rank's view of its
 * node (src/run/gpu_place.c), for the layouts sites use: mpirun on a node
 * with one GPU per rank, srun --gpus-per-task=1 (each rank sees only its
 * own GPU as device 0, named by its UUID), ranks sharing a GPU, two nodes,
 * a rank that sees none. Every refusal must name the host and both
 * counts. */
#include <string.h>
#include "check.h"
#include "run/gpu_place.h"

enum { MAX_RANKS = 8 };

typedef struct layout {
    int size;
    char hosts[MAX_RANKS][64];
    rt_gpu_view views[MAX_RANKS];
} layout;

/* Rank r on `host` at local rank lr of ls, seeing `count` GPUs, driving
 * the GPU with UUID byte `gpu` (the device it picked, as the session does). */
static void add_rank(layout *l, const char *host, int lr, int ls, int count, int gpu)
{
    int r = l->size++;
    snprintf(l->hosts[r], sizeof l->hosts[r], "%s", host);
    l->views[r] = (rt_gpu_view){.count = count, .local_rank = lr, .local_size = ls};
    if (count > 0)
        l->views[r].uuid[0] = (unsigned char)(gpu + 1);
}

static rt_status plan(const layout *l, const char *backend, int *nccl, int *shared)
{
    rt_error_clear();
    return rt_gpu_plan(l->views, (const char (*)[64])l->hosts, l->size, backend, nccl, shared);
}

static void test_pick_device(void)
{
    CHECK(rt_gpu_pick_device(0, 4, 4) == 0 && rt_gpu_pick_device(3, 4, 4) == 3);
    CHECK(rt_gpu_pick_device(1, 2, 8) == 1);          /* more GPUs than ranks */
    CHECK(rt_gpu_pick_device(2, 4, 1) == 0);          /* srun --gpus-per-task=1 */
    CHECK(rt_gpu_pick_device(3, 4, 2) == 1);          /* 4 ranks on 2 GPUs: shared */
    CHECK(rt_gpu_pick_device(0, 1, 0) == -1);
}

static void test_one_gpu_per_rank(void)
{
    layout node = {0}, per_task = {0}, two_nodes = {0};
    int nccl = -1, shared = -1;
    add_rank(&node, "n1", 0, 2, 2, rt_gpu_pick_device(0, 2, 2));
    add_rank(&node, "n1", 1, 2, 2, rt_gpu_pick_device(1, 2, 2));
    CHECK_OK(plan(&node, "auto", &nccl, &shared));
    CHECK(nccl == 1 && shared == 0);
    CHECK_OK(plan(&node, "mpi", &nccl, &shared));
    CHECK(nccl == 0 && shared == 0);
    /* Per-task binding: both see one GPU as device 0, different UUIDs. */
    add_rank(&per_task, "n1", 0, 2, 1, 0);
    add_rank(&per_task, "n1", 1, 2, 1, 1);
    CHECK_OK(plan(&per_task, "nccl", &nccl, &shared));
    CHECK(nccl == 1 && shared == 0);
    /* The same UUID on two hosts is two GPUs. */
    for (int h = 0; h < 2; h++)
        for (int lr = 0; lr < 2; lr++)
            add_rank(&two_nodes, h ? "n2" : "n1", lr, 2, 2, lr);
    CHECK_OK(plan(&two_nodes, "auto", &nccl, &shared));
    CHECK(nccl == 1 && shared == 0);
}

static void test_one_rank(void)
{
    layout l = {0};
    int nccl = -1, shared = -1;
    add_rank(&l, "n1", 0, 1, 1, 0);
    CHECK_OK(plan(&l, "auto", &nccl, &shared));   /* nothing to reduce */
    CHECK(nccl == 0 && shared == 0);
    CHECK_OK(plan(&l, "nccl", &nccl, &shared));   /* asked for: a 1-rank communicator */
    CHECK(nccl == 1);
}

static void test_shared_gpu(void)
{
    layout l = {0};
    int nccl = -1, shared = -1;
    for (int lr = 0; lr < 4; lr++)
        add_rank(&l, "gpu07", lr, 4, 2, rt_gpu_pick_device(lr, 4, 2));
    CHECK_OK(plan(&l, "auto", &nccl, &shared));   /* NCCL refuses: MPI through the host */
    CHECK(nccl == 0 && shared == 1);
    CHECK_OK(plan(&l, "mpi", &nccl, &shared));
    CHECK(nccl == 0 && shared == 1);
    CHECK(plan(&l, "nccl", &nccl, &shared) == RT_ERR_CONFIG);
    const char *msg = rt_error_message();
    CHECK_MSG(strstr(msg, "host gpu07 runs 4 ranks on 2 GPUs") && strstr(msg, "comm.backend = mpi"),
              "message: %s", msg);
}

static void test_rank_without_gpu(void)
{
    layout l = {0};
    int nccl = -1, shared = -1;
    add_rank(&l, "n1", 0, 1, 1, 0);
    add_rank(&l, "n2", 0, 2, 0, 0);
    add_rank(&l, "n2", 1, 2, 0, 0);
    CHECK(plan(&l, "auto", &nccl, &shared) == RT_ERR_CONFIG);
    const char *msg = rt_error_message();
    CHECK_MSG(strstr(msg, "rank 1 on host n2 sees no GPU (the node runs 2 ranks") &&
              strstr(msg, "CUDA_VISIBLE_DEVICES"), "message: %s", msg);
}

int main(void)
{
    test_pick_device();
    test_one_gpu_per_rank();
    test_one_rank();
    test_shared_gpu();
    test_rank_without_gpu();
    rt_error_clear();
    return CHECK_DONE();
}
