/* prepare_model and prepare_data_loader: what Ray Train's
 * train.torch.prepare_model / prepare_data_loader do for a PyTorch loop,
 * for a user loop in C. Both are thin: the work is in comm (broadcast,
 * buckets) and data (global order, per-rank slices, prefetching); what is
 * added here is the agreement, so that every rank gets the same outcome. */
#include "rtrain/train.h"

/* Smaller than PyTorch DDP's 25 MiB (bucket_cap_mb): with one thread per
 * rank nothing progresses an MPI_Iallreduce but the next MPI call, and
 * more buckets make more of them during backward; Open MPI also reduces
 * 4 MiB messages faster than 25 MiB ones on shared memory. ResNet18 on 2
 * ranks (bench/bench_allreduce): the whole bucketed reduction 7 against 14
 * ms, a step's communication overhead 9-11 against 15-19 ms
 * (bench/RESULTS.md). comm.bucket_mb's default is the same. */
#define DEFAULT_BUCKET_BYTES ((size_t)4 << 20)

rt_status rt_prepare_model(rt_session *s, rt_model *model, size_t bucket_bytes,
                           rt_ddp **out)
{
    *out = NULL;
    rt_status st = model ? RT_OK
                         : RT_ERROR(RT_ERR_INVALID_ARG, "rt_prepare_model: model is NULL");
    RT_CHECK(rt_session_agree(s, st));
    rt_comm *comm = rt_session_tensor_comm(s);   /* NCCL on GPUs, when chosen */
    RT_CHECK(rt_comm_broadcast_model(comm, model));
    rt_ddp *ddp = NULL;
    st = rt_ddp_create(&ddp, comm, model, bucket_bytes ? bucket_bytes : DEFAULT_BUCKET_BYTES);
    st = rt_session_agree(s, st);
    if (st != RT_OK) {
        rt_ddp_free(ddp);
        return st;
    }
    *out = ddp;
    return RT_OK;
}

rt_status rt_prepare_data_loader(rt_session *s, rt_dataset *ds, const rt_loader_opts *opts,
                                 rt_loader **out)
{
    *out = NULL;
    const rt_context *ctx = rt_session_context(s);
    rt_status st = RT_OK;
    if (!ds || !opts)
        st = RT_ERROR(RT_ERR_INVALID_ARG, "rt_prepare_data_loader: dataset or options NULL");
    else if (opts->global_batch < ctx->world_size)
        st = RT_ERROR(RT_ERR_CONFIG, "global batch %lld is smaller than the %d ranks: every "
                      "rank needs at least one sample per batch; raise the batch size",
                      (long long)opts->global_batch, ctx->world_size);
    rt_loader *l = NULL;
    if (st == RT_OK) {
        rt_loader_opts o = *opts;
        o.rank = ctx->world_rank;
        o.world_size = ctx->world_size;
        st = rt_loader_create(&l, ds, &o);
    }
    st = rt_session_agree(s, st);
    if (st != RT_OK) {
        rt_loader_free(l);
        return st;
    }
    *out = l;
    return RT_OK;
}
