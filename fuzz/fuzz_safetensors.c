/* Fuzz target: safetensors files (src/ckpt/safetensors.c, the reader behind
 * model.init_from), through rt_safetensors_open and rt_safetensors_read of
 * every tensor it lists.
 *
 * Input: the whole file. A failure must name the file; a file that opened
 * must read every tensor it promises (the reader bounded each one by the
 * file's size, so the buffers here are bounded too). */
#include <stdlib.h>
#include "fuzz.h"
#include "rtrain/ckpt.h"

static fuzz_file file;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file_write(&file, "safetensors", data, size);
    const char *names[] = {path};
    rt_safetensors *f = NULL;
    rt_status s = rt_safetensors_open(&f, path);
    if (s != RT_OK) {
        fuzz_check_error(s, "rt_safetensors_open", names, 1);
        return 0;
    }
    for (int i = 0; i < rt_safetensors_count(f); i++) {
        const rt_safetensors_tensor *t = rt_safetensors_get(f, i);
        if (!t || t->count > size)   /* at least one byte per element */
            abort();
        float *out = malloc((t->count ? t->count : 1) * sizeof *out);
        if (!out)
            abort();
        s = rt_safetensors_read(f, i, out);
        free(out);
        if (s != RT_OK)
            fuzz_check_error(s, "rt_safetensors_read", names, 1);
    }
    rt_safetensors_close(f);
    return 0;
}
