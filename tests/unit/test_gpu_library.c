/* The CUDA library is loaded only when a GPU is asked for: a CPU program
 * that reads a config, lists the backends and computes on "cpu" never maps
 * librtrain_cuda (nor cuDNN, cuBLAS or NCCL, about 150 MiB per rank), and
 * in a build with CUDA the first GPU question loads it, from the build
 * tree here. Without CUDA the questions answer "not built" clearly. */
#include <stdio.h>
#include <string.h>
#include "check.h"
#include "rtrain/backend.h"
#include "rtrain/config.h"

/* 1 when a mapping of this process names `lib`. */
static int mapped(const char *lib)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, lib) != NULL;
    if (f)
        fclose(f);
    return found;
}

int main(void)
{
    static rt_config cfg;
    rt_config_defaults(&cfg);
    char names[128];
    rt_backend_list(names, sizeof names);
    for (int i = 0; i < rt_backend_count(); i++)
        CHECK(rt_backend_name_at(i) != NULL);
    CHECK(rt_backend_find("cpu") != NULL && rt_backend_default() != NULL);
    CHECK_MSG(!mapped("librtrain_cuda") && !mapped("libcudnn") && !mapped("libcublas") &&
              !mapped("libnccl"), "a CPU program mapped the CUDA libraries");
    rt_status st = rt_gpu_available();
    if (rt_gpu_built()) {
        CHECK_MSG(st == RT_OK, "the CUDA library did not load: %s", rt_error_message());
        CHECK(mapped("librtrain_cuda") && rt_backend_find("cuda") != NULL);
        printf("backends %s; CUDA library loaded on demand; GPUs visible: %d\n", names,
               rt_gpu_count());
    } else {
        CHECK(st == RT_ERR_UNSUPPORTED && strstr(rt_error_message(), "--with-cuda"));
        CHECK(rt_gpu_count() == 0 && rt_backend_find("cuda") == NULL);
        printf("backends %s; no CUDA backend in this build\n", names);
    }
    rt_error_clear();
    return CHECK_DONE();
}
