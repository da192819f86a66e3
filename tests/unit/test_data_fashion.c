/* Reads the real FashionMNIST files when installed (exit 77, automake's
 * SKIP, when they are not) and checks facts published with the dataset:
 * 60000 training and 10000 test images of 28x28, 10 classes, 6000 and 1000
 * images of each class, and the first label of both files (9, ankle boot). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "rtrain/data.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* Opens one split, checks its shape, then runs one prefetching epoch
 * counting labels and checking the normalized pixel range. */
static void check_split(const char *images, const char *labels, int64_t count, int per_class)
{
    rt_dataset *ds = NULL;
    rt_transform t = {.normalize = 1, .num_mean = 1, .num_std = 1, .mean = {0.2860f}, .std = {0.3530f}};
    CHECK_OK(rt_idx_dataset_open(&ds, images, labels, &t));
    if (!ds)
        return;
    rt_shape s = rt_dataset_sample_shape(ds);
    CHECK(rt_dataset_count(ds) == count);
    CHECK(s.c == 1 && s.h == 28 && s.w == 28);
    CHECK(rt_dataset_num_classes(ds) == 10);
    float x[28 * 28];
    int32_t y = -1;
    CHECK_OK(rt_dataset_fetch(ds, 0, x, &y));
    CHECK(y == 9);

    rt_loader *l = NULL;
    rt_loader_opts o = {.global_batch = 256, .world_size = 1, .shuffle = 1, .seed = 1,
                        .prefetch = 2};
    CHECK_OK(rt_loader_create(&l, ds, &o));
    if (l) {
        int64_t hist[10] = {0}, seen = 0;
        /* (x - mean) / std for x in [0, 1]; 1e-5 covers float rounding. */
        float lo = (0 - t.mean[0]) / t.std[0] - 1e-5f, hi = (1 - t.mean[0]) / t.std[0] + 1e-5f;
        int out_of_range = 0;
        CHECK_OK(rt_loader_start_epoch(l, 0, 0));
        for (;;) {
            rt_batch b;
            int done = 0;
            rt_status st = rt_loader_next(l, &b, &done);
            CHECK_OK(st);
            if (st != RT_OK || done)
                break;
            for (int i = 0; i < b.n; i++) {
                hist[b.y[i] >= 0 && b.y[i] < 10 ? b.y[i] : 0]++;
                for (int j = 0; j < 28 * 28; j++)
                    out_of_range += b.x[i * 784 + j] < lo || b.x[i * 784 + j] > hi;
            }
            seen += b.n;
        }
        CHECK(seen == count);
        CHECK(out_of_range == 0);
        for (int c = 0; c < 10; c++)
            CHECK_MSG(hist[c] == per_class, "class %d: %lld samples", c, (long long)hist[c]);
        rt_loader_free(l);
    }
    rt_dataset_free(ds);
}

int main(void)
{
    if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        printf("SKIP: FashionMNIST not installed under " FASHION_DIR "\n");
        return 77;
    }
    check_split(FASHION_DIR "/train-images-idx3-ubyte.gz",
                FASHION_DIR "/train-labels-idx1-ubyte.gz", 60000, 6000);
    check_split(FASHION_DIR "/t10k-images-idx3-ubyte.gz",
                FASHION_DIR "/t10k-labels-idx1-ubyte.gz", 10000, 1000);
    return CHECK_DONE();
}
