/* Unit tests for data: idx files (raw and gzip) and their error messages,
 * the global sample order, the per-rank batch split (world-size
 * independence) and the prefetching loader (prefetch on/off, resume points,
 * restarts mid-epoch, errors raised on the loader thread). Synthetic files
 * are written into a fresh mkdtemp directory and removed at the end. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "check.h"
#include "data/formats.h"
#include "rtrain/data.h"

static char tmpdir[64];

/* ---- writing idx files --------------------------------------------------- */
static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static const char *tmp_path(const char *name)
{
    static char paths[32][128];
    static int next;
    char *p = paths[next++ % 32];
    snprintf(p, 128, "%s/%s", tmpdir, name);
    return p;
}

/* Writes magic, dims (big-endian) and `len` payload bytes; gzip via zlib. */
static void write_idx(const char *path, int gz, uint32_t magic, const uint32_t *dims, int ndims,
                      const uint8_t *payload, size_t len)
{
    uint8_t head[16];
    put_be32(head, magic);
    for (int i = 0; i < ndims; i++)
        put_be32(head + 4 + 4 * i, dims[i]);
    size_t hlen = 4 + 4 * (size_t)ndims;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        CHECK(f != NULL);
        if (!f)
            return;
        CHECK(gzwrite(f, head, (unsigned)hlen) == (int)hlen);
        if (len)
            CHECK(gzwrite(f, payload, (unsigned)len) == (int)len);
        CHECK(gzclose(f) == Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        if (!f)
            return;
        CHECK(fwrite(head, 1, hlen, f) == hlen);
        CHECK(fwrite(payload, 1, len, f) == len);
        CHECK(fclose(f) == 0);
    }
}

/* The synthetic set: N images of R x C with pixel j of image i equal to
 * (37 i + 11 j) mod 256 (every byte value occurs) and label i mod 4. */
enum { N = 70, R = 3, C = 5 };
static uint8_t pixels[N * R * C + 64], labels[N + 64];

static void make_data(void)
{
    for (int i = 0; i < N; i++) {
        labels[i] = (uint8_t)(i % 4);
        for (int j = 0; j < R * C; j++)
            pixels[i * R * C + j] = (uint8_t)((37 * i + 11 * j) % 256);
    }
}

static void write_images(const char *path, int gz, uint32_t magic, uint32_t n, uint32_t r,
                         uint32_t c, size_t len)
{
    uint32_t dims[3] = {n, r, c};
    write_idx(path, gz, magic, dims, 3, pixels, len);
}

static void write_labels(const char *path, int gz, uint32_t n, size_t len)
{
    uint32_t dims[1] = {n};
    write_idx(path, gz, 0x00000801, dims, 1, labels, len);
}

/* ---- idx loading --------------------------------------------------------- */
static void check_values(rt_dataset *ds, const rt_transform *t)
{
    float x[R * C];
    int32_t y;
    int bad = 0;
    for (int i = 0; i < N; i++) {
        CHECK_OK(rt_dataset_fetch(ds, i, x, &y));
        bad += y != i % 4;
        for (int j = 0; j < R * C; j++) {
            double want = pixels[i * R * C + j] / 255.0;
            if (t && t->normalize)
                want = (want - t->mean[0]) / t->std[0];
            /* float32 rounding of a division and a subtraction on values of
             * magnitude <= 4: a few ulps, far below 1e-5. */
            bad += fabs(x[j] - want) > 1e-5;
            /* and exactly the float32 operations torchvision does, whichever
             * instruction set's clone of the loops ran (RT_CPU_CLONES) */
            float exact = (float)pixels[i * R * C + j] / 255.0f;
            if (t && t->normalize)
                exact = (exact - t->mean[0]) / t->std[0];
            bad += memcmp(&x[j], &exact, sizeof exact) != 0;
        }
    }
    CHECK_MSG(bad == 0, "%d wrong values or labels", bad);
}

static void test_idx_load(int gz)
{
    const char *img = tmp_path(gz ? "ok-images.gz" : "ok-images");
    const char *lab = tmp_path(gz ? "ok-labels.gz" : "ok-labels");
    write_images(img, gz, 0x00000803, N, R, C, N * R * C);
    write_labels(lab, gz, N, N);
    rt_dataset *ds = NULL;
    CHECK_OK(rt_idx_dataset_open(&ds, img, lab, NULL));
    if (!ds)
        return;
    CHECK(rt_dataset_count(ds) == N);
    rt_shape s = rt_dataset_sample_shape(ds);
    CHECK(s.c == 1 && s.h == R && s.w == C);
    CHECK(rt_dataset_num_classes(ds) == 4);
    check_values(ds, NULL);
    float x[R * C];
    int32_t y;
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_dataset_fetch(ds, N, x, &y));
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_dataset_fetch(ds, -1, x, &y));
    /* Reading ahead is a hint: in range it leaves the values as they are,
     * out of range it does nothing (the sanitizer build would catch a read
     * past the pixels). */
    for (int i = -2; i <= N + 1; i++)
        rt_dataset_prefetch(ds, i);
    check_values(ds, NULL);
    rt_dataset_free(ds);

    rt_transform t = {.normalize = 1, .num_mean = 1, .num_std = 1, .mean = {0.2860f}, .std = {0.3530f}};
    CHECK_OK(rt_idx_dataset_open(&ds, img, lab, &t));
    if (ds)
        check_values(ds, &t);
    rt_dataset_free(ds);
    rt_transform plain = {.normalize = 0, .num_mean = 1, .num_std = 1, .mean = {5}, .std = {0}};  /* ignored: not normalizing */
    CHECK_OK(rt_idx_dataset_open(&ds, img, lab, &plain));
    if (ds)
        check_values(ds, &plain);
    rt_dataset_free(ds);
}

/* Decoded idx files are shared by the datasets of one process (rtrain-tune
 * opens the same split once per trial): two datasets open at once both
 * read right, one outlives the other, and a file rewritten in place (same
 * size, another modification time) is read again, not served from memory. */
static void test_idx_shared(void)
{
    const char *img = tmp_path("shared-images"), *lab = tmp_path("shared-labels");
    write_images(img, 1, 0x00000803, N, R, C, N * R * C);
    write_labels(lab, 1, N, N);
    rt_dataset *a = NULL, *b = NULL;
    CHECK_OK(rt_idx_dataset_open(&a, img, lab, NULL));
    CHECK_OK(rt_idx_dataset_open(&b, img, lab, NULL));
    if (!a || !b)
        return;
    rt_dataset_free(a);
    check_values(b, NULL);   /* still there after the other was freed */
    rt_dataset_free(b);
    for (int i = 0; i < N * R * C; i++)
        pixels[i] = (uint8_t)(255 - pixels[i]);
    write_images(img, 1, 0x00000803, N, R, C, N * R * C);
    struct timespec later[2] = {{0, UTIME_OMIT}, {time(NULL) + 10, 0}};
    CHECK(utimensat(AT_FDCWD, img, later, 0) == 0);
    CHECK_OK(rt_idx_dataset_open(&a, img, lab, NULL));
    if (a)
        check_values(a, NULL);   /* the new pixels */
    rt_dataset_free(a);
    make_data();
}

/* Expects `code` and a message naming `path` and containing `word`. */
static void expect_error(rt_status code, rt_status got, const char *path, const char *word)
{
    const char *msg = rt_error_message();
    CHECK_MSG(got == code, "got %s, expected %s (%s)", rt_status_name(got), rt_status_name(code),
              msg);
    CHECK_MSG(strstr(msg, path) != NULL, "message does not name %s: %s", path, msg);
    CHECK_MSG(!word || strstr(msg, word) != NULL, "message lacks '%s': %s", word, msg);
    rt_error_clear();
}

static void test_idx_errors(void)
{
    rt_dataset *ds = NULL;
    const char *img = tmp_path("e-images"), *lab = tmp_path("e-labels");
    const char *gimg = tmp_path("e-images.gz");
    write_labels(lab, 0, N, N);

    const char *missing = tmp_path("no-such-file.gz");
    expect_error(RT_ERR_IO, rt_idx_dataset_open(&ds, missing, lab, NULL), missing,
                 "dataset-fashion-mnist");
    expect_error(RT_ERR_IO, rt_idx_dataset_open(&ds, tmp_path("ok-images"), missing, NULL),
                 missing, NULL);

    write_images(img, 0, 0x00000804, N, R, C, N * R * C);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, img, lab, NULL), img, "magic");
    /* Labels given as images: the magic is wrong and the message says why. */
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, lab, lab, NULL), lab, "swapped");

    FILE *f = fopen(img, "wb");
    fputs("hello, not an idx file", f);
    fclose(f);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, img, lab, NULL), img, "neither gzip");
    f = fopen(img, "wb");
    fclose(f);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, img, lab, NULL), img, "empty");

    /* Raw file cut in the middle of image 40. */
    size_t cut = 40 * R * C + 7;
    write_images(img, 0, 0x00000803, N, R, C, cut);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, img, lab, NULL), img,
                 "header promises 70 images of 3x5 (1050 bytes), file holds only 607");
    /* Header cut short. */
    write_images(img, 0, 0x00000803, N, R, C, 0);
    truncate(img, 10);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, img, lab, NULL), img, "truncated");

    /* A complete gzip stream whose content is short, and a gzip stream cut
     * in half (zlib reports the missing end). */
    write_images(gimg, 1, 0x00000803, N, R, C, cut);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, gimg, lab, NULL), gimg, "truncated");
    write_images(gimg, 1, 0x00000803, N, R, C, N * R * C);
    FILE *g = fopen(gimg, "rb");
    fseek(g, 0, SEEK_END);
    long gsize = ftell(g);
    fclose(g);
    truncate(gimg, gsize / 2);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, gimg, lab, NULL), gimg, "truncated");

    /* Trailing bytes after the promised payload, raw and gzip. */
    write_images(img, 0, 0x00000803, N, R, C, N * R * C + 3);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, img, lab, NULL), img, "3 trailing");
    write_images(gimg, 1, 0x00000803, N, R, C, N * R * C + 5);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, gimg, lab, NULL), gimg, "trailing");

    /* Image and label counts disagree. */
    write_images(img, 0, 0x00000803, N - 1, R, C, (N - 1) * R * C);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, img, lab, NULL), img, lab);

    /* Dimensions out of bounds, rejected from the header alone. */
    write_images(img, 0, 0x00000803, N, 0, C, 0);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, img, lab, NULL), img, "rows and cols");
    write_images(img, 0, 0x00000803, N, R, 5000, 0);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, img, lab, NULL), img, "rows and cols");
    write_images(img, 0, 0x00000803, 0x80000000u, R, C, 0);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, img, lab, NULL), img, "samples");
    write_images(img, 0, 0x00000803, 0, R, C, 0);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, img, lab, NULL), img, "samples");
    /* A header promising 2^31-1 images of 4096x4096 (32 PiB) in a tiny file
     * is reported as truncated without trying to allocate the promise. */
    write_images(img, 0, 0x00000803, 0x7fffffffu, 4096, 4096, N * R * C);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, img, lab, NULL), img, "truncated");

    /* Truncated labels file. */
    write_images(img, 0, 0x00000803, N, R, C, N * R * C);
    write_labels(lab, 1, N, N - 2);
    expect_error(RT_ERR_FORMAT, rt_idx_dataset_open(&ds, img, lab, NULL), lab, "truncated");

    rt_transform bad = {.normalize = 1, .num_mean = 1, .num_std = 1, .mean = {0.5f}, .std = {0.0f}};
    write_labels(lab, 0, N, N);
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_idx_dataset_open(&ds, img, lab, &bad));
    CHECK(ds == NULL);
}

/* ---- sampler ------------------------------------------------------------- */
static int is_permutation(const uint32_t *p, uint32_t n)
{
    char *seen = calloc(n, 1);
    int ok = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (p[i] >= n || seen[p[i]])
            ok = 0;
        else
            seen[p[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_sample_order(void)
{
    enum { M = 1000 };
    static uint32_t a[M], b[M], c[M], d[M];
    rt_sample_order(a, M, 42, 3, 1);
    rt_sample_order(b, M, 42, 3, 1);
    rt_sample_order(c, M, 42, 4, 1);
    rt_sample_order(d, M, 43, 3, 1);
    CHECK(is_permutation(a, M) && is_permutation(c, M));
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    CHECK(memcmp(a, d, sizeof a) != 0);
    int moved = 0;
    for (int i = 0; i < M; i++)
        moved += a[i] != (uint32_t)i;
    CHECK(moved > M / 2);   /* a shuffle, not the identity */
    rt_sample_order(a, M, 42, 3, 0);
    int identity = 1;
    for (int i = 0; i < M; i++)
        identity &= a[i] == (uint32_t)i;
    CHECK(identity);
}

/* The block shuffle: a permutation, a function of (seed, epoch, block),
 * and (blocks all full) every window of B consecutive positions holds
 * samples of at most two blocks, so a streamed batch touches few chunks. */
static void test_block_order(void)
{
    enum { M = 1000, B = 50 };
    static uint32_t a[M], b[M], c[M];
    uint32_t *scratch = malloc(rt_sample_order_blocks_scratch(M, B) * sizeof *scratch);
    CHECK(rt_sample_order_blocks_scratch(M, B) == 20 + B);
    rt_sample_order_blocks(a, M, B, 42, 3, scratch);
    rt_sample_order_blocks(b, M, B, 42, 3, scratch);
    rt_sample_order_blocks(c, M, B, 42, 4, scratch);
    CHECK(is_permutation(a, M) && is_permutation(c, M));
    CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(a, c, sizeof a) != 0);
    int worst = 0, moved = 0;
    for (int i = 0; i + B <= M; i++) {
        int seen[M / B] = {0}, blocks = 0;
        for (int j = i; j < i + B; j++)
            blocks += seen[a[j] / B]++ == 0;
        worst = blocks > worst ? blocks : worst;
    }
    for (int i = 0; i < M; i++)
        moved += a[i] != (uint32_t)i;
    CHECK_MSG(worst <= 2, "a window of %d positions spans %d blocks", B, worst);
    CHECK(moved > M / 2);   /* shuffled, not the identity */
    rt_sample_order_blocks(a, 7, 10, 1, 0, scratch);   /* one block, shorter than B */
    CHECK(is_permutation(a, 7));
    rt_sample_order_blocks(a, 999, B, 1, 0, scratch);  /* a short last block */
    CHECK(is_permutation(a, 999));
    free(scratch);
}

static void test_batch_split(void)
{
    int bad = 0;
    for (int64_t g = 0; g <= 23; g++)
        for (int w = 1; w <= 6; w++) {
            int64_t prev_end = 0;
            for (int r = 0; r < w; r++) {
                int64_t b, e;
                rt_batch_split(g, r, w, &b, &e);
                /* Contiguous, in rank order, and the first g % w ranks get
                 * floor(g / w) + 1 samples, the others floor(g / w). */
                bad += b != prev_end;
                bad += e - b != g / w + (r < g % w);
                prev_end = e;
            }
            bad += prev_end != g;
        }
    CHECK_MSG(bad == 0, "%d split errors", bad);
}

/* The loader's split with rank_block B: rank r takes [r*B, (r+1)*B) of a
 * global batch of g <= w*B positions, clipped (empty past its end). */
static void test_rank_block_split(void)
{
    int bad = 0;
    for (int w = 1; w <= 4; w++)
        for (int64_t blk = 1; blk <= 5; blk++)
            for (int64_t g = 1; g <= w * blk; g++)
                for (int r = 0; r < w; r++) {
                    rt_loader_opts o = {.global_batch = w * blk, .rank = r, .world_size = w,
                                        .rank_block = blk};
                    int64_t b, e, want_b = r * blk < g ? r * blk : g;
                    int64_t want_e = (r + 1) * blk < g ? (r + 1) * blk : g;
                    rt_loader_split(&o, g, &b, &e);
                    bad += b != want_b || e != want_e;
                }
    rt_loader_opts even = {.global_batch = 7, .rank = 1, .world_size = 3};
    int64_t b, e, b2, e2;
    rt_loader_split(&even, 7, &b, &e);
    rt_batch_split(7, 1, 3, &b2, &e2);
    CHECK(b == b2 && e == e2);
    CHECK_MSG(bad == 0, "%d rank_block split errors", bad);
}

/* ---- a custom dataset: x = {index, -index}, label = index ---------------- */
typedef struct test_ds {
    int64_t fail_at;   /* fetch of this index fails (-1: never) */
    int delay_us;      /* per-sample delay, so the loader thread is busy */
} test_ds;

static rt_status test_fetch(void *impl, int64_t index, float *x, void *target)
{
    test_ds *t = impl;
    if (index == t->fail_at)
        return RT_ERROR(RT_ERR_FORMAT, "injected failure at sample %lld of test set",
                        (long long)index);
    if (t->delay_us)
        nanosleep(&(struct timespec){0, t->delay_us * 1000L}, NULL);
    x[0] = (float)index;
    x[1] = -(float)index;
    *(int32_t *)target = (int32_t)index;
    return RT_OK;
}

static int destroyed;
static void test_destroy(void *impl) { destroyed++; free(impl); }

/* Samples of two floats with a class label (the sample's index). */
static const rt_sample_desc two_floats = {.ndim = 1, .shape = {2}, .dtype = RT_INPUT_F32,
                                          .target = RT_TARGET_CLASS, .num_classes = 1};

static rt_dataset *make_test_ds(int64_t count, int64_t fail_at, int delay_us)
{
    test_ds *t = malloc(sizeof *t);
    t->fail_at = fail_at;
    t->delay_us = delay_us;
    rt_dataset_ops ops = {.version = RT_DATASET_OPS_VERSION, .flags = RT_DATASET_THREAD_SAFE,
                          .fetch = test_fetch, .destroy = test_destroy};
    rt_dataset *ds = NULL;
    CHECK_OK(rt_dataset_create(&ds, &ops, t, count, &two_floats));
    return ds;
}

/* A loader with rank_block 3 on 2 ranks over 10 samples in order: rank 0
 * reads [0,3) then [6,9), rank 1 [3,6) then [9,10) (a one-rank loader's
 * batches 0..3), each batch's `first` its position; at most 3 per batch. */
static void test_rank_block_loader(void)
{
    rt_dataset *ds = make_test_ds(10, -1, 0);
    const int64_t want[2][2][2] = {{{0, 3}, {6, 9}}, {{3, 6}, {9, 10}}};
    for (int r = 0; r < 2; r++) {
        rt_loader_opts o = {.global_batch = 6, .rank = r, .world_size = 2, .rank_block = 3};
        rt_loader *l = NULL;
        CHECK_OK(rt_loader_create(&l, ds, &o));
        CHECK(l && rt_loader_max_local_batch(l) == 3);
        CHECK_OK(rt_loader_start_epoch(l, 0, 0));
        for (int k = 0; l && k < 3; k++) {
            rt_batch b;
            int done = 0;
            CHECK_OK(rt_loader_next(l, &b, &done));
            if (k == 2) {
                CHECK(done);
                break;
            }
            CHECK(!done && b.first == want[r][k][0] && b.n == want[r][k][1] - want[r][k][0]);
            for (int i = 0; !done && i < b.n; i++)
                CHECK(b.y[i] == b.first + i);
        }
        rt_loader_free(l);
    }
    rt_loader_opts bad = {.global_batch = 5, .rank = 0, .world_size = 2, .rank_block = 3};
    rt_loader *l = NULL;
    CHECK(rt_loader_create(&l, ds, &bad) == RT_ERR_INVALID_ARG && l == NULL);
    rt_error_clear();
    rt_dataset_free(ds);
}

/* Runs a whole epoch and appends every label (= sample index) to seq;
 * checks each batch's x against its labels. Returns the number of labels. */
static int64_t run_epoch(rt_loader *l, int64_t epoch, int64_t first, int32_t *seq,
                         int64_t *batch_n, int64_t *nbatches)
{
    int64_t n = 0, k = 0;
    CHECK_OK(rt_loader_start_epoch(l, epoch, first));
    for (;;) {
        rt_batch b;
        int done = 0;
        rt_status s = rt_loader_next(l, &b, &done);
        CHECK_OK(s);
        if (s != RT_OK || done)
            break;
        int bad = b.index != first + k;
        for (int i = 0; i < b.n; i++) {
            bad += b.x[2 * i] != (float)b.y[i] || b.x[2 * i + 1] != -(float)b.y[i];
            seq[n++] = b.y[i];
        }
        CHECK_MSG(!bad, "batch %lld inconsistent", (long long)b.index);
        if (batch_n)
            batch_n[k] = b.global_n;
        k++;
    }
    if (nbatches)
        *nbatches = k;
    return n;
}

/* World-size independence: for W = 1..4 the rank slices of each global
 * batch, concatenated in rank order, give the positions of the global order
 * itself (computed here with rt_sample_order). */
static void check_world_sizes(int64_t count, int64_t g, int drop_last)
{
    uint32_t *order = malloc(count * sizeof *order);
    rt_sample_order(order, count, 7, 2, 1);
    int64_t want_batches = drop_last ? count / g : (count + g - 1) / g;
    int64_t want_n = drop_last ? want_batches * g : count;
    rt_dataset *ds = make_test_ds(count, -1, 0);
    for (int w = 1; w <= 4; w++) {
        int32_t *got = calloc(count, sizeof *got);
        int64_t filled = 0;
        for (int64_t k = 0; k < want_batches; k++) {
            for (int r = 0; r < w; r++) {
                rt_loader_opts o = {.global_batch = g, .rank = r, .world_size = w, .shuffle = 1,
                                    .seed = 7, .drop_last = drop_last, .prefetch = r % 2 ? 2 : 0};
                rt_loader *l = NULL;
                CHECK_OK(rt_loader_create(&l, ds, &o));
                if (!l)
                    continue;
                CHECK(rt_loader_batches_per_epoch(l) == want_batches);
                int64_t gk = count - k * g < g ? count - k * g : g;
                CHECK(rt_loader_max_local_batch(l) == ((g < count ? g : count) + w - 1) / w);
                /* Start at batch k (a resume point) and take one batch. */
                CHECK_OK(rt_loader_start_epoch(l, 2, k));
                rt_batch b;
                int done = 1;
                CHECK_OK(rt_loader_next(l, &b, &done));
                CHECK(!done && b.index == k && b.global_n == gk);
                CHECK(b.n == gk / w + (r < gk % w));
                for (int i = 0; !done && i < b.n && filled < count; i++)
                    got[filled++] = b.y[i];
                rt_loader_free(l);
            }
        }
        int bad = filled != want_n;
        for (int64_t i = 0; i < filled && i < want_n; i++)
            bad += got[i] != (int32_t)order[i];
        CHECK_MSG(!bad, "count %lld, g %lld, drop_last %d, world %d: rank slices do not "
                  "reassemble the global order", (long long)count, (long long)g, drop_last, w);
        free(got);
    }
    rt_dataset_free(ds);
    free(order);
}

static void test_world_size_independence(void)
{
    check_world_sizes(23, 6, 0);   /* last batch of 5; 6 not divisible by 4 */
    check_world_sizes(23, 6, 1);
    check_world_sizes(25, 6, 0);   /* last batch of 1: ranks 1..W-1 get none */
    check_world_sizes(10, 7, 0);   /* 7 split over 2, 3, 4 ranks */
    check_world_sizes(5, 8, 0);    /* one batch smaller than the global batch */
}

/* ---- loader ---------------------------------------------------------------- */
static void test_loader_counts(void)
{
    rt_dataset *ds = make_test_ds(23, -1, 0);
    rt_loader *l = NULL;
    rt_loader_opts o = {.global_batch = 6, .rank = 3, .world_size = 4, .shuffle = 0};
    CHECK_OK(rt_loader_create(&l, ds, &o));
    /* 23 = 6+6+6+5: 4 batches, 3 with drop_last; 6 over 4 ranks: at most 2. */
    CHECK(l && rt_loader_batches_per_epoch(l) == 4 && rt_loader_max_local_batch(l) == 2);
    rt_batch b;
    int done;
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_loader_next(l, &b, &done));
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_loader_start_epoch(l, 0, 5));
    CHECK_OK(rt_loader_start_epoch(l, 0, 4));   /* resuming at the end: nothing left */
    CHECK_OK(rt_loader_next(l, &b, &done));
    CHECK(done == 1);
    rt_loader_free(l);
    o.drop_last = 1;
    CHECK_OK(rt_loader_create(&l, ds, &o));
    CHECK(l && rt_loader_batches_per_epoch(l) == 3);
    rt_loader_free(l);
    o.global_batch = 24;
    CHECK_FAILS(RT_ERR_CONFIG, rt_loader_create(&l, ds, &o));
    o.global_batch = 0;
    CHECK_FAILS(RT_ERR_CONFIG, rt_loader_create(&l, ds, &o));
    o.global_batch = 6, o.rank = 4;
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_loader_create(&l, ds, &o));
    o.rank = 0, o.prefetch = -1;
    CHECK_FAILS(RT_ERR_CONFIG, rt_loader_create(&l, ds, &o));
    rt_dataset_free(ds);
}

/* prefetch 0 and 3 give the same batches, for a world of 3 and two epochs;
 * starting at batch k gives the tail of the full epoch. */
static void test_loader_prefetch_and_resume(void)
{
    enum { M = 101 };
    rt_dataset *ds = make_test_ds(M, -1, 0);
    int32_t s0[M], s3[M], tail[M];
    int64_t n0[32], n3[32];
    for (int r = 0; r < 3; r++) {
        rt_loader_opts o = {.global_batch = 8, .rank = r, .world_size = 3, .shuffle = 1,
                            .seed = 99, .prefetch = 0};
        rt_loader *a = NULL, *b = NULL;
        CHECK_OK(rt_loader_create(&a, ds, &o));
        o.prefetch = 3;
        CHECK_OK(rt_loader_create(&b, ds, &o));
        if (!a || !b)
            break;
        for (int64_t e = 0; e < 2; e++) {
            int64_t ka, kb;
            int64_t la = run_epoch(a, e, 0, s0, n0, &ka);
            int64_t lb = run_epoch(b, e, 0, s3, n3, &kb);
            CHECK(ka == 13 && kb == 13 && la == lb);
            CHECK(memcmp(s0, s3, la * sizeof *s0) == 0);
            CHECK(memcmp(n0, n3, ka * sizeof *n0) == 0);
            /* Resume at batch 5: the same samples as batches 5.. above. */
            int64_t skip = 0;
            for (int k = 0; k < 5; k++)
                skip += n0[k] / 3 + (r < n0[k] % 3);
            int64_t lt = run_epoch(b, e, 5, tail, NULL, NULL);
            CHECK(lt == la - skip && memcmp(tail, s0 + skip, lt * sizeof *s0) == 0);
            lt = run_epoch(a, e, 5, tail, NULL, NULL);
            CHECK(lt == la - skip && memcmp(tail, s0 + skip, lt * sizeof *s0) == 0);
        }
        rt_loader_free(a);
        rt_loader_free(b);
    }
    rt_dataset_free(ds);
}

/* Restarting while the thread is filling (slow fetches) gives exactly what a
 * fresh start gives; freeing a busy loader joins its thread. */
static void test_loader_restart(void)
{
    enum { M = 64 };
    rt_dataset *ds = make_test_ds(M, -1, 200);
    int32_t want[M], got[M];
    rt_loader_opts o = {.global_batch = 4, .world_size = 1, .shuffle = 1, .seed = 5,
                        .prefetch = 3};
    rt_loader *l = NULL;
    CHECK_OK(rt_loader_create(&l, ds, &o));
    if (!l)
        return;
    int64_t nwant = run_epoch(l, 1, 0, want, NULL, NULL);
    int bad = 0;
    for (int rep = 0; rep < 20; rep++) {
        CHECK_OK(rt_loader_start_epoch(l, rep % 3, 0));
        rt_batch b;
        int done;
        for (int k = 0; k < rep % 4; k++)
            CHECK_OK(rt_loader_next(l, &b, &done));
        int64_t n = run_epoch(l, 1, 0, got, NULL, NULL);
        bad += n != nwant || memcmp(want, got, n * sizeof *got) != 0;
    }
    CHECK_MSG(bad == 0, "%d restarts gave a different epoch", bad);
    CHECK_OK(rt_loader_start_epoch(l, 0, 0));
    rt_batch b;
    int done;
    CHECK_OK(rt_loader_next(l, &b, &done));
    rt_loader_free(l);   /* thread mid-epoch */
    rt_dataset_free(ds);
}

/* A fetch failing on the loader thread reaches the caller with its message,
 * after the batches before it, and stays until the next start_epoch. */
static void test_loader_error(int prefetch)
{
    enum { M = 40, BAD = 13 };
    rt_dataset *ds = make_test_ds(M, BAD, 0);
    uint32_t order[M];
    rt_sample_order(order, M, 3, 0, 1);
    int pos = 0;
    while (order[pos] != BAD)
        pos++;
    rt_loader_opts o = {.global_batch = 5, .world_size = 1, .shuffle = 1, .seed = 3,
                        .prefetch = prefetch};
    rt_loader *l = NULL;
    CHECK_OK(rt_loader_create(&l, ds, &o));
    if (!l)
        return;
    for (int round = 0; round < 2; round++) {
        CHECK_OK(rt_loader_start_epoch(l, 0, 0));
        int ok_batches = 0;
        rt_status s = RT_OK;
        for (;;) {
            rt_batch b;
            int done = 0;
            s = rt_loader_next(l, &b, &done);
            if (s != RT_OK || done)
                break;
            ok_batches++;
        }
        CHECK_MSG(s == RT_ERR_FORMAT, "prefetch %d: got %s", prefetch, rt_status_name(s));
        CHECK_MSG(strstr(rt_error_message(), "injected failure at sample 13") != NULL,
                  "prefetch %d: message '%s'", prefetch, rt_error_message());
        CHECK(ok_batches == pos / 5);
        rt_error_clear();
        rt_batch b;
        int done = 0;
        CHECK_FAILS(RT_ERR_FORMAT, rt_loader_next(l, &b, &done));
        CHECK(!done);
    }
    rt_loader_free(l);
    rt_dataset_free(ds);
}

static void test_dataset_create(void)
{
    int before = destroyed;
    rt_dataset *ds = make_test_ds(3, -1, 0);
    rt_dataset_free(ds);
    CHECK(destroyed == before + 1);
    rt_dataset_ops none = {.version = RT_DATASET_OPS_VERSION};
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_dataset_create(&ds, &none, NULL, 3, &two_floats));
    rt_dataset_ops ops = {.version = RT_DATASET_OPS_VERSION, .fetch = test_fetch};
    rt_sample_desc empty = two_floats;
    empty.shape[0] = 0;
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_dataset_create(&ds, &ops, NULL, 3, &empty));
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_dataset_create(&ds, &ops, NULL, -1, &two_floats));
    rt_sample_desc no_classes = two_floats;
    no_classes.num_classes = 0;
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_dataset_create(&ds, &ops, NULL, 3, &no_classes));
    rt_sample_desc no_values = {.ndim = 1, .shape = {2}, .target = RT_TARGET_VECTOR};
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_dataset_create(&ds, &ops, NULL, 3, &no_values));
    /* ops written for another version of the table */
    rt_dataset_ops old = ops;
    old.version = RT_DATASET_OPS_VERSION + 1;
    CHECK(rt_dataset_create(&ds, &old, NULL, 3, &two_floats) == RT_ERR_INVALID_ARG);
    CHECK(strstr(rt_error_message(), "RT_DATASET_OPS_VERSION") != NULL);
    rt_error_clear();
}

/* Sample descriptions: sizes, and the model shapes of 1 to 3 dimensions. */
static void test_sample_desc(void)
{
    rt_sample_desc d = {.ndim = 2, .shape = {3, 5}, .target = RT_TARGET_SEQUENCE,
                        .target_size = 7};
    rt_shape s;
    CHECK(rt_sample_input_size(&d) == 15 && rt_sample_target_bytes(&d) == 28);
    CHECK_OK(rt_sample_model_shape(&d, &s));
    CHECK(s.c == 3 && s.h == 5 && s.w == 1);
    d.ndim = 1;
    CHECK_OK(rt_sample_model_shape(&d, &s));
    CHECK(s.c == 3 && s.h == 1 && s.w == 1);
    rt_sample_desc video = {.ndim = 4, .shape = {2, 3, 4, 5}};
    CHECK(rt_sample_model_shape(&video, &s) == RT_ERR_UNSUPPORTED);
    CHECK(strstr(rt_error_message(), "[2, 3, 4, 5]") != NULL);
    rt_error_clear();
}

/* The transform chain: steps in order, in float32 as torchvision computes
 * ToTensor (x / 255) and Normalize ((x - mean) / std); bad steps refused. */
static void test_transforms(void)
{
    rt_transform_chain c;
    rt_transform t = {.normalize = 1, .num_mean = 1, .num_std = 1, .mean = {0.5f}, .std = {0.25f}};
    CHECK_OK(rt_transform_chain_from(&c, &t, RT_INPUT_U8));
    CHECK(c.count == 2 && c.steps[0].kind == RT_TRANSFORM_DIVIDE);
    float x[3] = {0.0f, 51.0f, 255.0f};
    rt_transform_apply(&c, x, 3);
    for (int i = 0; i < 3; i++) {
        float raw[3] = {0.0f, 51.0f, 255.0f};
        float want = (raw[i] / 255.0f - 0.5f) / 0.25f;   /* the same float operations */
        CHECK(x[i] == want);
    }
    /* A long sample (every byte value 3 times, an odd length: the vector
     * body and its tail both run) gives the same bits as the scalar float
     * operations, whichever instruction set's clone runs (RT_CPU_CLONES). */
    enum { LONG = 3 * 256 + 5 };
    float *v = malloc(LONG * sizeof *v), *want = malloc(LONG * sizeof *want);
    CHECK(v && want);
    for (int i = 0; i < LONG; i++) {
        v[i] = (float)(i % 256);
        volatile float q = v[i] / 255.0f;   /* volatile: one scalar operation at a time */
        volatile float r = (q - 0.5f) / 0.25f;
        want[i] = r;
    }
    rt_transform_apply(&c, v, LONG);
    CHECK_MSG(!memcmp(v, want, LONG * sizeof *v), "transform chain: not the scalar bits");
    free(v);
    free(want);
    CHECK_OK(rt_transform_chain_from(&c, &t, RT_INPUT_F32));   /* no /255 on floats */
    CHECK(c.count == 1 && c.steps[0].kind == RT_TRANSFORM_NORMALIZE);
    CHECK_OK(rt_transform_chain_from(&c, NULL, RT_INPUT_F64));
    CHECK(c.count == 0);
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_transform_chain_add(&c, RT_TRANSFORM_DIVIDE, 0.0f, 0));
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_transform_chain_add(&c, RT_TRANSFORM_NORMALIZE, NAN, 1));
    for (int i = 0; i < RT_TRANSFORM_MAX; i++)
        CHECK_OK(rt_transform_chain_add(&c, RT_TRANSFORM_DIVIDE, 2.0f, 0));
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_transform_chain_add(&c, RT_TRANSFORM_DIVIDE, 2.0f, 0));
}

/* The format table: idx is listed; an unknown format is a config error
 * naming the ones there are. */
static void test_formats(void)
{
    int idx = 0;
    for (int i = 0; i < rt_dataset_format_count(); i++)
        idx += !strcmp(rt_dataset_format_name(i), "idx");
    CHECK(idx == 1);
    rt_dataset *ds = (rt_dataset *)&ds;
    rt_data_source src = {.x = tmp_path("ok-images"), .y = tmp_path("ok-labels")};
    CHECK(rt_dataset_open(&ds, "parquet", &src, NULL) == RT_ERR_CONFIG);
    CHECK(ds == NULL && strstr(rt_error_message(), "(idx") != NULL);
    rt_error_clear();
    rt_data_source half = {.x = tmp_path("ok-images")};
    CHECK_FAILS(RT_ERR_CONFIG, rt_dataset_open(&ds, "idx", &half, NULL));
    CHECK_OK(rt_dataset_open(&ds, "idx", &src, NULL));
    CHECK(ds && rt_dataset_desc(ds)->dtype == RT_INPUT_U8 &&
          rt_dataset_desc(ds)->target == RT_TARGET_CLASS);
    rt_dataset_free(ds);
}

/* Vector targets travel through the loader (float bytes, no y); a dataset
 * without RT_DATASET_THREAD_SAFE is fetched on the caller's thread only. */
static pthread_t caller;
static int off_thread;

static rt_status vector_fetch(void *impl, int64_t index, float *x, void *target)
{
    off_thread += !pthread_equal(pthread_self(), caller);
    x[0] = (float)index;
    float *t = target;
    t[0] = 0.5f * (float)index;
    t[1] = -1.0f;
    t[2] = (float)(index % 3);
    return RT_OK;
}

static void test_vector_targets(void)
{
    rt_dataset_ops ops = {.version = RT_DATASET_OPS_VERSION, .flags = 0, .fetch = vector_fetch};
    rt_sample_desc d = {.ndim = 1, .shape = {1}, .dtype = RT_INPUT_F32,
                        .target = RT_TARGET_VECTOR, .target_size = 3};
    rt_dataset *ds = NULL;
    CHECK_OK(rt_dataset_create(&ds, &ops, NULL, 10, &d));
    if (!ds)
        return;
    CHECK(rt_dataset_num_classes(ds) == 0);
    caller = pthread_self();
    off_thread = 0;
    rt_loader_opts o = {.global_batch = 4, .rank = 0, .world_size = 1, .prefetch = 3};
    rt_loader *l = NULL;
    CHECK_OK(rt_loader_create(&l, ds, &o));
    CHECK_OK(rt_loader_start_epoch(l, 0, 0));
    int bad = 0, batches = 0;
    for (;;) {
        rt_batch b;
        int done = 0;
        CHECK_OK(rt_loader_next(l, &b, &done));
        if (done)
            break;
        batches++;
        bad += b.y != NULL;
        const float *t = b.target;
        for (int i = 0; i < b.n; i++)
            bad += t[3 * i] != 0.5f * b.x[i] || t[3 * i + 1] != -1.0f;
    }
    CHECK(batches == 3 && bad == 0);
    CHECK_MSG(off_thread == 0, "%d fetches off the caller's thread", off_thread);
    rt_loader_free(l);
    rt_dataset_free(ds);
}

/* ---- augmentation and per-channel normalisation ---------------------------------------- */
/* Images [2][3][4]: channel c, row i, column j holds 100c + 10i + j. */
#define AC 2
#define AH 3
#define AW 4
static rt_status image_fetch(void *impl, int64_t index, float *x, void *target)
{
    (void)impl;
    for (int c = 0; c < AC; c++)
        for (int i = 0; i < AH; i++)
            for (int j = 0; j < AW; j++)
                x[(c * AH + i) * AW + j] = (float)(100 * c + 10 * i + j);
    *(int32_t *)target = (int32_t)index;
    return RT_OK;
}

static rt_dataset *make_image_ds(int64_t count)
{
    rt_sample_desc d = {.ndim = 3, .shape = {AC, AH, AW}, .dtype = RT_INPUT_F32,
                        .target = RT_TARGET_CLASS, .num_classes = 1};
    rt_dataset_ops ops = {.version = RT_DATASET_OPS_VERSION, .flags = RT_DATASET_THREAD_SAFE,
                          .fetch = image_fetch};
    rt_dataset *ds = NULL;
    CHECK_OK(rt_dataset_create(&ds, &ops, NULL, count, &d));
    return ds;
}

/* Index of the (top, left, flipped) choice that turns the plain image
 * into y (padding p, pad values pad[c]), or -1 if none does. */
static int which_choice(const float *y, int p, const float *pad)
{
    for (int top = 0; top <= 2 * p; top++)
        for (int left = 0; left <= 2 * p; left++)
            for (int flipped = 0; flipped < 2; flipped++) {
                int same = 1;
                for (int c = 0; c < AC && same; c++)
                    for (int i = 0; i < AH && same; i++)
                        for (int j = 0; j < AW && same; j++) {
                            int sj = (flipped ? AW - 1 - j : j) + left - p, si = i + top - p;
                            float want = si >= 0 && si < AH && sj >= 0 && sj < AW
                                             ? (float)(100 * c + 10 * si + sj) : pad[c];
                            same = y[(c * AH + i) * AW + j] == want;
                        }
                if (same)
                    return (top * (2 * p + 1) + left) * 2 + flipped;
            }
    return -1;
}

/* Every augmented image is one crop window (+ flip) of the padded image;
 * over 400 samples every one of the 5 x 5 x 2 choices occurs; the same
 * (seed, epoch, index) gives the same image, another epoch another. */
static void test_augment_choices(void)
{
    rt_augment a = {.crop_padding = 2, .hflip = 1};
    const int64_t shape[3] = {AC, AH, AW};
    const float pad[AC] = {-7.0f, -9.0f};
    int seen[50] = {0}, bad = 0, differs = 0;
    for (int64_t index = 0; index < 400; index++) {
        float x[AC * AH * AW], again[AC * AH * AW], other[AC * AH * AW], scratch[AC * AH * AW];
        int32_t t;
        image_fetch(NULL, index, x, &t);
        memcpy(again, x, sizeof x);
        memcpy(other, x, sizeof x);
        rt_augment_apply(&a, x, scratch, shape, pad, 5, 1, index);
        rt_augment_apply(&a, again, scratch, shape, pad, 5, 1, index);
        rt_augment_apply(&a, other, scratch, shape, pad, 5, 2, index);
        int k = which_choice(x, 2, pad);
        bad += k < 0 || memcmp(x, again, sizeof x) != 0;
        if (k >= 0)
            seen[k]++;
        differs += memcmp(x, other, sizeof x) != 0;
    }
    CHECK(bad == 0);
    int missing = 0;
    for (int k = 0; k < 50; k++)
        missing += seen[k] == 0;
    CHECK_MSG(missing == 0, "%d of the 50 crop/flip choices never occurred in 400 samples",
              missing);
    CHECK(differs > 300);   /* epochs draw anew: 49 in 50 differ on average */
    rt_sample_desc flat = {.ndim = 1, .shape = {8}};
    CHECK_FAILS(RT_ERR_CONFIG, rt_augment_check(&a, &flat));
}

/* The augmented samples of an epoch are the same on 1 and 3 ranks, and the
 * padding is the value a raw 0 has after per-channel Normalize. */
static void test_augment_world_sizes(void)
{
    rt_dataset *ds = make_image_ds(30);
    if (!ds)
        return;
    rt_transform_chain chain = {0};
    CHECK_OK(rt_transform_chain_add_channels(&chain, (const float[]){10.0f, 20.0f},
                                             (const float[]){2.0f, 4.0f}, 2));
    CHECK_OK(rt_dataset_set_transforms(ds, &chain));
    CHECK(rt_transform_zero(&chain, 0) == -5.0f && rt_transform_zero(&chain, 1) == -5.0f);
    float x[AC * AH * AW];
    int32_t t;
    CHECK_OK(rt_dataset_fetch(ds, 0, x, &t));
    CHECK(x[0] == -5.0f && x[AH * AW + 5] == (111.0f - 20.0f) / 4.0f);   /* c 1, row 1, col 1 */
    static float by_world[2][30][AC * AH * AW];
    const int worlds[2] = {1, 3};
    for (int w = 0; w < 2; w++)
        for (int r = 0; r < worlds[w]; r++) {
            rt_loader_opts o = {.global_batch = 6, .rank = r, .world_size = worlds[w],
                                .shuffle = 1, .seed = 3, .prefetch = 1,
                                .augment = {.crop_padding = 1, .hflip = 1}};
            rt_loader *l = NULL;
            CHECK_OK(rt_loader_create(&l, ds, &o));
            if (!l)
                continue;
            CHECK_OK(rt_loader_start_epoch(l, 4, 0));
            rt_batch b;
            int done = 0;
            while (rt_loader_next(l, &b, &done) == RT_OK && !done)
                for (int i = 0; i < b.n; i++)
                    memcpy(by_world[w][b.y[i]], b.x + (size_t)i * AC * AH * AW,
                           sizeof by_world[w][0]);
            rt_loader_free(l);
        }
    CHECK(memcmp(by_world[0], by_world[1], sizeof by_world[0]) == 0);
    rt_dataset_free(ds);
    /* A list of means that does not match the channels is refused. */
    ds = make_image_ds(3);
    rt_transform_chain three = {0};
    CHECK_OK(rt_transform_chain_add_channels(&three, (const float[]){0, 0, 0},
                                             (const float[]){1, 1, 1}, 3));
    CHECK_FAILS(RT_ERR_CONFIG, rt_dataset_set_transforms(ds, &three));
    rt_dataset_free(ds);
}

static void remove_tmpdir(void)
{
    static const char *names[] = {"ok-images", "ok-labels", "ok-images.gz", "ok-labels.gz",
                                  "e-images", "e-labels", "e-images.gz", "shared-images",
                                  "shared-labels"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unlink(tmp_path(names[i]));
    CHECK_MSG(rmdir(tmpdir) == 0, "could not remove %s (a file left behind?)", tmpdir);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rt_test_data_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    make_data();
    test_idx_load(0);
    test_idx_load(1);
    test_idx_errors();
    test_idx_shared();
    test_dataset_create();
    test_sample_desc();
    test_transforms();
    test_formats();
    test_vector_targets();
    test_augment_choices();
    test_augment_world_sizes();
    test_sample_order();
    test_block_order();
    test_batch_split();
    test_rank_block_split();
    test_rank_block_loader();
    test_world_size_independence();
    test_loader_counts();
    test_loader_prefetch_and_resume();
    test_loader_restart();
    test_loader_error(0);
    test_loader_error(3);
    remove_tmpdir();
    return CHECK_DONE();
}
