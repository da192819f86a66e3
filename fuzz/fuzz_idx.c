/* Fuzz target: the idx dataset format (src/data/idx.c, zlib underneath),
 * through rt_dataset_open("idx").
 *
 * Input: a 2-byte big-endian length L, then the images file (its first L
 * bytes, fewer when the input is shorter), then the labels file (the
 * rest). Each may be raw idx or gzip. A failure must name one of the two
 * files. */
#include "fuzz.h"

static fuzz_file images_file, labels_file;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = size > 2 ? size - 2 : 0;
    size_t nimages = (size_t)fuzz_byte(data, size, 0) << 8 | fuzz_byte(data, size, 1);
    if (nimages > len)
        nimages = len;
    const uint8_t *images = data + (size > 2 ? 2 : size);
    rt_data_source src = {
        .x = fuzz_file_write(&images_file, "images", images, nimages),
        .y = fuzz_file_write(&labels_file, "labels", images + nimages, len - nimages),
    };
    const char *names[] = {src.x, src.y};
    rt_dataset *ds = NULL;
    rt_status s = rt_dataset_open(&ds, "idx", &src, NULL);
    if (s != RT_OK)
        fuzz_check_error(s, "rt_dataset_open(idx)", names, 2);
    else
        fuzz_read_all(ds, names, 2);
    return 0;
}
