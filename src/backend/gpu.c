/* The GPU functions of rtrain/backend.h, and loading the CUDA library.
 *
 * librtrain does not link librtrain_cuda: it loads it with dlopen the first
 * time something asks for a GPU (rt_gpu_count, rt_gpu_open, the "cuda"
 * table), so a CPU run maps none of cuDNN, cuBLAS and NCCL, and a build
 * with CUDA still runs where they are not installed (a login node). The
 * library is looked for by its soname (LD_LIBRARY_PATH and librtrain's own
 * run path, where `make install` puts it), then next to librtrain itself
 * (the build tree, a moved install tree). It is never unloaded. In a build
 * without CUDA no GPU is ever visible, and opening one says how to get a
 * build that has them. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "rtrain/backend.h"
#include "backend/cuda/library.h"

#ifdef RT_HAVE_CUDA
int rt_gpu_built(void) { return 1; }
#else
int rt_gpu_built(void) { return 0; }
#endif

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const rt_cuda_library *loaded;
static char load_error[1024];

/* The directory of the object that holds this function (librtrain). */
static void own_directory(char *dir, size_t size)
{
    Dl_info info;
    dir[0] = '\0';
    if (dladdr((void *)own_directory, &info) && info.dli_fname) {
        snprintf(dir, size, "%s", info.dli_fname);
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[1] = '\0';
        else
            dir[0] = '\0';
    }
}

static void *open_library(void)
{
    void *h = dlopen(RT_CUDA_LIBRARY_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h)
        return h;
    char first[512], dir[4096], path[4200];
    snprintf(first, sizeof first, "%s", dlerror());
    own_directory(dir, sizeof dir);
    if (dir[0]) {
        snprintf(path, sizeof path, "%s%s", dir, RT_CUDA_LIBRARY_SONAME);
        if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) != NULL)
            return h;
        /* The library is there but did not load: its error names what is
         * missing (cuDNN, NCCL, ...), which says more than "not found". */
        const char *e = dlerror();
        if (e && access(path, F_OK) == 0)
            snprintf(first, sizeof first, "%s", e);
    }
    snprintf(load_error, sizeof load_error, "the CUDA backend's library cannot be loaded (%s): "
             "check that CUDA, cuDNN and NCCL are on LD_LIBRARY_PATH (module load ...), or "
             "set scaling.use_gpu = false", first);
    return NULL;
}

static void load(void)
{
#ifdef RT_HAVE_CUDA
    void *h = open_library();
    if (!h)
        return;
    const rt_cuda_library *(*get)(void) = (const rt_cuda_library *(*)(void))
        dlsym(h, "rt_cuda_library_get");
    const rt_cuda_library *lib = get ? get() : NULL;
    if (!lib || lib->version != RT_CUDA_LIBRARY_VERSION ||
        lib->backend_abi != RT_BACKEND_ABI_VERSION) {
        snprintf(load_error, sizeof load_error, "%s is not the CUDA library of this rtrain "
                 "(library version %u, backend ABI %u; expected %u and %u): install both from "
                 "one build", RT_CUDA_LIBRARY_SONAME, lib ? lib->version : 0,
                 lib ? lib->backend_abi : 0, RT_CUDA_LIBRARY_VERSION, RT_BACKEND_ABI_VERSION);
        return;
    }
    loaded = lib;
#else
    snprintf(load_error, sizeof load_error, "this rtrain was built without the CUDA backend: "
             "rebuild with ./configure --with-cuda (CUDA, cuDNN and NCCL installed) or set "
             "scaling.use_gpu = false");
#endif
}

/* The library's table, or NULL (load_error says why); records no error. */
static const rt_cuda_library *library(void)
{
    pthread_once(&load_once, load);
    return loaded;
}

rt_status rt_cuda_load(const rt_cuda_library **out)
{
    *out = library();
    if (!loaded)
        return RT_ERROR(RT_ERR_UNSUPPORTED, "%s", load_error);
    return RT_OK;
}

rt_status rt_gpu_available(void)
{
    const rt_cuda_library *lib;
    return rt_cuda_load(&lib);
}

int rt_gpu_count(void) { return library() ? library()->gpu_count() : 0; }

rt_status rt_gpu_uuid(int device, unsigned char uuid[16])
{
    const rt_cuda_library *lib;
    memset(uuid, 0, 16);
    RT_CHECK(rt_cuda_load(&lib));
    return lib->gpu_uuid(device, uuid);
}

rt_status rt_gpu_open(int device, const rt_gpu_opts *opts)
{
    const rt_cuda_library *lib;
    RT_CHECK(rt_cuda_load(&lib));
    return lib->gpu_open(device, opts);
}

void rt_gpu_close(void)
{
    if (loaded)   /* nothing to close when it was never loaded */
        loaded->gpu_close();
}

void rt_gpu_describe(char *buf, size_t size)
{
    if (library())
        library()->gpu_describe(buf, size);
    else
        snprintf(buf, size, "%s", load_error);
}

size_t rt_gpu_peak_bytes(void) { return loaded ? loaded->gpu_peak_bytes() : 0; }

const rt_backend *rt_backend_cuda_table(void) { return library() ? library()->backend : NULL; }
