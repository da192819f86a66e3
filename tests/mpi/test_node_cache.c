/* data.cache = "node" under mpirun (3 ranks on one node; or 2 nodes, see
 * tests/multinode/placement.test): an HDF5 dataset opened with node-shared
 * memory is read by exactly one rank of each node (the writer) into one
 * window the node's other ranks map. Checks: one writer per node; every
 * rank fetches the file's values (the readers never read the file); a
 * store by the writer into the window after the open is seen by the other
 * ranks' fetches (so it is one piece of memory, not copies); a failure on
 * one rank before the allocation (a missing file there) reaches every rank
 * without a hang. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "rtrain/comm.h"
#include "rtrain/data.h"
#include "rtrain/run.h"

#define N 64
#define F 5

/* The trainer's provider (rt_comm_shared_*), recording what this rank got. */
typedef struct recorder { rt_comm *comm; int writer; void *ptr, *handle; } recorder;

static rt_status rec_alloc(void *arg, rt_status local, size_t bytes, void **ptr, int *writer,
                           void **handle)
{
    recorder *r = arg;
    rt_comm_shared *s = NULL;
    rt_status st = rt_comm_shared_alloc(r->comm, local, bytes, &s, ptr, writer);
    *handle = s;
    r->handle = s;
    r->writer = *writer;
    r->ptr = *ptr;
    return st;
}

static rt_status rec_ready(void *arg, void *handle, rt_status local)
{
    return rt_comm_shared_ready(((recorder *)arg)->comm, handle, local);
}

static void rec_release(void *arg, void *handle) { rt_comm_shared_free(handle); }

static void write_file(const char *path)
{
    float x[N][F];
    int32_t y[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < F; j++)
            x[i][j] = (float)(i * F + j) * 0.5f;
        y[i] = i % 3;
    }
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dx[2] = {N, F}, dy[1] = {N};
    hid_t sx = H5Screate_simple(2, dx, NULL), sy = H5Screate_simple(1, dy, NULL);
    hid_t a = H5Dcreate2(f, "x", H5T_IEEE_F32LE, sx, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t b = H5Dcreate2(f, "y", H5T_STD_I32LE, sy, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(H5Dwrite(a, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    CHECK(H5Dwrite(b, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0);
    H5Dclose(a);
    H5Dclose(b);
    H5Sclose(sx);
    H5Sclose(sy);
    CHECK(H5Fclose(f) >= 0);
}

int main(int argc, char **argv)
{
    rt_session *s = NULL;
    CHECK_OK(rt_session_init(&s, &argc, &argv));
    if (!s)
        return 1;
    rt_comm *comm = rt_session_comm(s);
    int rank = rt_comm_rank(comm);
    /* argv[1]: the file's path when ranks run on several (test) hosts,
     * whose launchers' pids differ. */
    char path[256];
    if (argc > 1)
        snprintf(path, sizeof path, "%s", argv[1]);
    else
        snprintf(path, sizeof path, "%s/rtrain-node-cache-%d.h5", getenv("TMPDIR") ?
                 getenv("TMPDIR") : "/tmp", (int)getppid());
    if (rank == 0)
        write_file(path);
    CHECK_OK(rt_session_agree(s, RT_OK));   /* the file exists for everyone */

    recorder rec = {.comm = comm};
    rt_node_memory nm = {rec_alloc, rec_ready, rec_release, &rec};
    rt_data_source src = {.file = path, .x = "x", .y = "y", .target = RT_TARGET_CLASS,
                          .cache = RT_CACHE_NODE, .node_memory = &nm};
    rt_dataset *ds = NULL;
    CHECK_OK(rt_dataset_open(&ds, "hdf5", &src, NULL));
    int writers = rec.writer;
    CHECK_OK(rt_comm_allreduce(comm, &writers, 1, RT_DTYPE_INT32, RT_REDUCE_SUM));
    int nodes = rt_session_context(s)->num_nodes;
    CHECK_MSG(writers == nodes, "%d ranks wrote the nodes' copies on %d node(s)", writers, nodes);
    int bad = 0;
    for (int i = 0; ds && i < N; i++) {
        float x[F];
        int32_t y;
        CHECK_OK(rt_dataset_fetch(ds, i, x, &y));
        for (int j = 0; j < F; j++)
            bad += x[j] != (float)(i * F + j) * 0.5f;
        bad += y != i % 3;
    }
    CHECK(bad == 0);
    /* One piece of memory: the writer's store is what the others fetch
     * (once every rank has finished the checks above). */
    if (ds)
        CHECK_OK(rt_comm_shared_ready(comm, rec.handle, RT_OK));
    if (rec.writer && ds)
        ((float *)rec.ptr)[3] = -42.0f;   /* sample 0, value 3 */
    if (ds) {
        CHECK_OK(rt_comm_shared_ready(comm, rec.handle, RT_OK));
        float x[F];
        int32_t y;
        CHECK_OK(rt_dataset_fetch(ds, 0, x, &y));
        CHECK_MSG(x[3] == -42.0f, "rank %d does not see the writer's store (%g)", rank,
                  (double)x[3]);
    }
    rt_dataset_free(ds);

    /* Rank 1 cannot open its file: every rank learns it, nobody hangs. */
    src.file = rank == 1 ? "/nonexistent/rank1.h5" : path;
    ds = NULL;
    rt_status st = rt_dataset_open(&ds, "hdf5", &src, NULL);
    CHECK(st == RT_ERR_CONFIG && ds == NULL);
    CHECK_MSG(strstr(rt_error_message(), "[rank 1 ") &&
              strstr(rt_error_message(), "/nonexistent/rank1.h5"), "%s", rt_error_message());
    rt_error_clear();
    if (rank == 0)
        unlink(path);
    int failures = check_failures;
    rt_session_finalize(s);
    printf("rank %d: %s\n", rank, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
