/* Fuzz target: the hdf5 dataset format (src/data/hdf5.c; the HDF5 library
 * underneath), through rt_dataset_open("hdf5").
 *
 * Input: the file, then one options byte at its end (HDF5 looks for its
 * signature at offset 0, 512, 1024, ..., so the options cannot come first;
 * bytes past the end of the file's data are allowed). Options:
 *   bit 0     target: 0 class, 1 vector
 *   bits 1-2  rows: 0 all, 1 [0, 0.8), 2 [0.8, 1), 3 [0.5, 1)
 *   bits 3-4  datasets x, y: 0 /x, /y; 1 x, y; 2 /g/x, /g/y; 3 /x, /x
 *   bits 5-6  data.cache: 0 "rank" (read into memory), 1 "none" (hyperslabs),
 *             2 "node" (the node memory of a one-rank node: this process
 *             is its writer), 3 "node" without node memory (as "rank")
 * Besides the message check, every HDF5 object must be closed once the
 * dataset is freed (a handle left open would also keep the file cached). */
#include <stdio.h>
#include <stdlib.h>
#include <hdf5.h>
#include "fuzz.h"

static fuzz_file h5_file;

/* rt_node_memory of a node with one rank (what rt_comm_shared_* does on
 * one process): the agreed status is this rank's, and it is the writer. */
static rt_status node_alloc(void *arg, rt_status local, size_t bytes, void **ptr, int *writer,
                            void **handle)
{
    *ptr = *handle = NULL;
    *writer = 0;
    if (local != RT_OK)
        return local;
    RT_CHECK(rt_alloc(ptr, bytes, 1, "node cache"));
    *handle = *ptr;
    *writer = 1;
    return RT_OK;
}

static rt_status node_ready(void *arg, void *handle, rt_status local) { return local; }
static void node_release(void *arg, void *handle) { rt_free(handle); }

static const rt_node_memory one_rank_node = {node_alloc, node_ready, node_release, NULL};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1);   /* as the tests run HDF5 */
    /* No free lists: HDF5 then gives memory back as it frees it, so the
     * leak check (run whenever an input allocates more than it frees)
     * rarely runs, and what it reports is not a recycled block. */
    H5set_free_list_limits(0, 0, 0, 0, 0, 0);
    return 0;
}

static void check_all_closed(const char *path)
{
    ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open != 0) {
        fprintf(stderr, "fuzz finding: %zd HDF5 object(s) still open after reading %s\n",
                open, path);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const double ranges[4][2] = {{0.0, 0.0}, {0.0, 0.8}, {0.8, 1.0}, {0.5, 1.0}};
    static const char *const paths[4][2] = {{"/x", "/y"}, {"x", "y"}, {"/g/x", "/g/y"},
                                            {"/x", "/x"}};
    static const rt_cache_policy caches[4] = {RT_CACHE_RANK, RT_CACHE_NONE, RT_CACHE_NODE,
                                              RT_CACHE_NODE};
    unsigned opt = size ? data[size - 1] : 0;
    rt_data_source src = {
        .file = fuzz_file_write(&h5_file, "hdf5", data, size ? size - 1 : 0),
        .x = paths[(opt >> 3) & 3][0], .y = paths[(opt >> 3) & 3][1],
        .first = ranges[(opt >> 1) & 3][0], .last = ranges[(opt >> 1) & 3][1],
        .target = opt & 1 ? RT_TARGET_VECTOR : RT_TARGET_CLASS,
        .cache = caches[(opt >> 5) & 3],
        .node_memory = ((opt >> 5) & 3) == 2 ? &one_rank_node : NULL,
    };
    const char *names[] = {src.file};
    rt_dataset *ds = NULL;
    rt_status s = rt_dataset_open(&ds, "hdf5", &src, NULL);
    if (s != RT_OK)
        fuzz_check_error(s, "rt_dataset_open(hdf5)", names, 1);
    else
        fuzz_read_all(ds, names, 1);
    check_all_closed(src.file);
    H5garbage_collect();
    return 0;
}
