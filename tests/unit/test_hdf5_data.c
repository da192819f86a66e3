/* Unit tests for the hdf5 dataset format (src/data/hdf5.c): files written
 * here with the HDF5 C API in a fresh mkdtemp directory, read back through
 * rt_dataset_open("hdf5"): every dtype and sample rank, chunked + gzip +
 * shuffle, class labels and float targets, row ranges, the two cache
 * policies giving the same values, and one test per kind of bad file
 * (each message must name the file and what is wrong). */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "rtrain/data.h"

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char paths[16][128];
    static int next;
    char *p = paths[next++ % 16];
    snprintf(p, 128, "%s/%s", tmpdir, name);
    return p;
}

/* Writes dataset `name` of `ndim` dims and file type ftype from buf
 * (memory type mtype); chunk > 0: chunked by that many rows with shuffle
 * and gzip. filter > 0: also an optional filter of that id. */
static void put(hid_t f, const char *name, int ndim, const hsize_t *dims, hid_t ftype,
                hid_t mtype, const void *buf, hsize_t chunk, int filter)
{
    hid_t space = H5Screate_simple(ndim, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunk > 0) {
        hsize_t c[8];
        for (int i = 0; i < ndim; i++)
            c[i] = dims[i];
        c[0] = chunk;
        CHECK(H5Pset_chunk(dcpl, ndim, c) >= 0);
        CHECK(H5Pset_shuffle(dcpl) >= 0);
        CHECK(H5Pset_deflate(dcpl, 4) >= 0);
        if (filter > 0)
            CHECK(H5Pset_filter(dcpl, (H5Z_filter_t)filter, H5Z_FLAG_OPTIONAL, 0, NULL) >= 0);
    }
    hid_t d = H5Dcreate2(f, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(d >= 0);
    CHECK(H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
}

static hid_t create(const char *path)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(f >= 0);
    return f;
}

static rt_status open_h5(rt_dataset **ds, const char *file, const char *x, const char *y,
                         rt_target_kind target, rt_cache_policy cache, double first,
                         double last)
{
    rt_data_source src = {.file = file, .x = x, .y = y, .target = target, .cache = cache,
                          .first = first, .last = last};
    return rt_dataset_open(ds, "hdf5", &src, NULL);
}

#define N 10

/* float32 [N, 3] inputs, int32 labels; both caches give the same values. */
static void test_float_features(void)
{
    const char *path = tmp_path("float.h5");
    float x[N][3];
    int32_t y[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 3; j++)
            x[i][j] = (float)(i * 10 + j) / 7.0f;
        y[i] = i % 4;
    }
    hid_t f = create(path);
    put(f, "x", 2, (hsize_t[]){N, 3}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, x, 4, 0);
    put(f, "labels", 1, (hsize_t[]){N}, H5T_STD_I32LE, H5T_NATIVE_INT32, y, 0, 0);
    H5Fclose(f);
    for (int cache = 0; cache < 2; cache++) {
        rt_dataset *ds = NULL;
        CHECK_OK(open_h5(&ds, path, "/x", "/labels", RT_TARGET_CLASS, (rt_cache_policy)cache, 0,
                         0));
        if (!ds)
            continue;
        const rt_sample_desc *d = rt_dataset_desc(ds);
        CHECK(rt_dataset_count(ds) == N && d->ndim == 1 && d->shape[0] == 3);
        CHECK(d->target == RT_TARGET_CLASS && d->num_classes == 4);
        /* Both may be fetched by the loader's thread (streamed reads take the
         * HDF5 lock); streamed data asks for blocks of its chunk rows. */
        CHECK((rt_dataset_flags(ds) & RT_DATASET_THREAD_SAFE) != 0);
        CHECK(rt_dataset_block_rows(ds) == (cache == RT_CACHE_NONE ? 4 : 0));
        for (int i = 0; i < N; i++) {
            float got[3];
            int32_t label = -1;
            CHECK_OK(rt_dataset_fetch(ds, i, got, &label));
            CHECK(memcmp(got, x[i], sizeof got) == 0 && label == y[i]);
        }
        rt_dataset_free(ds);
    }
}

/* uint8 images [N, 1, 4, 4], chunked + gzip: divided by 255 (ToTensor),
 * as idx images are; only rows [first, last) of the file. */
static void test_uint8_images_rows(void)
{
    const char *path = tmp_path("images.h5");
    uint8_t x[N][16];
    uint8_t y[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 16; j++)
            x[i][j] = (uint8_t)(i * 16 + j);
        y[i] = (uint8_t)(i % 3);
    }
    hid_t f = create(path);
    put(f, "images", 4, (hsize_t[]){N, 1, 4, 4}, H5T_STD_U8LE, H5T_NATIVE_UINT8, x, 3, 0);
    put(f, "y", 1, (hsize_t[]){N}, H5T_STD_U8LE, H5T_NATIVE_UINT8, y, 3, 0);
    H5Fclose(f);
    for (int cache = 0; cache < 2; cache++) {
        rt_dataset *ds = NULL;
        CHECK_OK(open_h5(&ds, path, "images", "y", RT_TARGET_CLASS, (rt_cache_policy)cache, 0.7,
                         1.0));
        if (!ds)
            continue;
        const rt_sample_desc *d = rt_dataset_desc(ds);
        CHECK(rt_dataset_count(ds) == 3);   /* rows 7, 8, 9 */
        CHECK(d->ndim == 3 && d->shape[0] == 1 && d->shape[1] == 4 && d->shape[2] == 4);
        float got[16];
        int32_t label;
        CHECK_OK(rt_dataset_fetch(ds, 1, got, &label));
        CHECK(label == 8 % 3);
        for (int j = 0; j < 16; j++)
            CHECK(got[j] == (float)x[8][j] / 255.0f);
        rt_dataset_free(ds);
    }
}

/* int16 inputs [N] (one value per sample), float64 targets [N, 2]. */
static void test_vector_targets(void)
{
    const char *path = tmp_path("regress.h5");
    int16_t x[N];
    double y[N][2];
    for (int i = 0; i < N; i++) {
        x[i] = (int16_t)(-300 + 70 * i);
        y[i][0] = 0.5 * i;
        y[i][1] = -1.25 * i;
    }
    hid_t f = create(path);
    put(f, "grp_x", 1, (hsize_t[]){N}, H5T_STD_I16LE, H5T_NATIVE_INT16, x, 0, 0);
    put(f, "grp_y", 2, (hsize_t[]){N, 2}, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, y, 5, 0);
    H5Fclose(f);
    rt_dataset *ds = NULL;
    CHECK_OK(open_h5(&ds, path, "grp_x", "grp_y", RT_TARGET_VECTOR, RT_CACHE_RANK, 0, 0));
    if (!ds)
        return;
    const rt_sample_desc *d = rt_dataset_desc(ds);
    CHECK(d->ndim == 1 && d->shape[0] == 1 && d->target == RT_TARGET_VECTOR &&
          d->target_size == 2);
    float v, t[2];
    CHECK_OK(rt_dataset_fetch(ds, 9, &v, t));
    CHECK(v == 330.0f && t[0] == 4.5f && t[1] == -11.25f);
    rt_dataset_free(ds);
}

/* Expects open (and, for the stream, one fetch) to fail with code and a
 * message containing both texts. */
static void expect_fail(rt_status code, const char *file, const char *x, const char *y,
                        rt_target_kind target, rt_cache_policy cache, const char *text1,
                        const char *text2)
{
    rt_dataset *ds = NULL;
    rt_status st = open_h5(&ds, file, x, y, target, cache, 0, 0);
    if (st == RT_OK && ds) {   /* streamed inputs are checked as they are read */
        float buf[64];
        float target_buf[8];
        st = RT_OK;
        for (int64_t i = 0; st == RT_OK && i < rt_dataset_count(ds); i++)
            st = rt_dataset_fetch(ds, i, buf, target_buf);
        rt_dataset_free(ds);
    }
    CHECK_MSG(st == code, "%s: got status %d, expected %d (%s)", file, (int)st, (int)code,
              rt_error_message());
    CHECK_MSG(strstr(rt_error_message(), text1) && strstr(rt_error_message(), text2),
              "message '%s' lacks '%s' / '%s'", rt_error_message(), text1, text2);
    rt_error_clear();
}

static void test_bad_files(void)
{
    float x[N][2] = {{0}};
    float y[N];
    int32_t labels[N + 1];
    for (int i = 0; i < N; i++) {
        y[i] = (float)i + 0.5f;
        labels[i] = i;
    }
    labels[N] = 0;
    const char *good = tmp_path("good.h5");
    hid_t f = create(good);
    put(f, "x", 2, (hsize_t[]){N, 2}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, x, 0, 0);
    put(f, "labels", 1, (hsize_t[]){N}, H5T_STD_I32LE, H5T_NATIVE_INT32, labels, 0, 0);
    put(f, "fractional", 1, (hsize_t[]){N}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, y, 0, 0);
    put(f, "long", 1, (hsize_t[]){N + 1}, H5T_STD_I32LE, H5T_NATIVE_INT32, labels, 0, 0);
    H5Fclose(f);
    expect_fail(RT_ERR_CONFIG, tmp_path("missing.h5"), "x", "labels", RT_TARGET_CLASS,
                RT_CACHE_RANK, "missing.h5", "No such file");
    expect_fail(RT_ERR_CONFIG, good, "/nope", "labels", RT_TARGET_CLASS, RT_CACHE_RANK,
                "good.h5", "no dataset '/nope'");
    expect_fail(RT_ERR_CONFIG, good, "x", "/grp/nope", RT_TARGET_CLASS, RT_CACHE_RANK,
                "good.h5", "no dataset '/grp/nope'");
    expect_fail(RT_ERR_FORMAT, good, "x", "long", RT_TARGET_CLASS, RT_CACHE_RANK,
                "has 10 rows but y ('long') has 11", "good.h5");
    expect_fail(RT_ERR_FORMAT, good, "x", "fractional", RT_TARGET_CLASS, RT_CACHE_RANK,
                "row 0 is 0.5", "integer labels");

    /* Not HDF5 at all, and a truncated copy of a good file. */
    const char *text = tmp_path("text.h5");
    FILE *t = fopen(text, "w");
    CHECK(t && fputs("label,x\n1,2\n", t) >= 0 && fclose(t) == 0);
    expect_fail(RT_ERR_FORMAT, text, "x", "labels", RT_TARGET_CLASS, RT_CACHE_RANK, "text.h5",
                "not an HDF5 file");
    const char *cut = tmp_path("cut.h5");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "head -c 1500 '%s' > '%s'", good, cut);
    CHECK(system(cmd) == 0);
    expect_fail(RT_ERR_FORMAT, cut, "x", "labels", RT_TARGET_CLASS, RT_CACHE_RANK, "cut.h5",
                "HDF5");

    /* Non-finite inputs (both caches) and targets. */
    const char *nan = tmp_path("nan.h5");
    x[7][1] = NAN;
    y[3] = INFINITY;
    f = create(nan);
    put(f, "x", 2, (hsize_t[]){N, 2}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, x, 0, 0);
    put(f, "labels", 1, (hsize_t[]){N}, H5T_STD_I32LE, H5T_NATIVE_INT32, labels, 0, 0);
    put(f, "values", 1, (hsize_t[]){N}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, y, 0, 0);
    H5Fclose(f);
    expect_fail(RT_ERR_FORMAT, nan, "x", "labels", RT_TARGET_CLASS, RT_CACHE_RANK,
                "non-finite value", "row 7");
    expect_fail(RT_ERR_FORMAT, nan, "x", "labels", RT_TARGET_CLASS, RT_CACHE_NONE,
                "non-finite value", "row 7");
    expect_fail(RT_ERR_FORMAT, nan, "x", "values", RT_TARGET_VECTOR, RT_CACHE_RANK,
                "target 'values' row 3 is inf", "nan.h5");

    /* Declared extents that cannot be samples, or were never written
     * (found by make fuzz: nothing may be allocated for them). */
    const char *odd = tmp_path("odd.h5");
    f = create(odd);
    put(f, "labels", 1, (hsize_t[]){N}, H5T_STD_I32LE, H5T_NATIVE_INT32, labels, 0, 0);
    hid_t space = H5Screate_simple(2, (hsize_t[]){N, 0}, NULL);
    hid_t d = H5Dcreate2(f, "empty_rows", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(space);
    space = H5Screate_simple(2, (hsize_t[]){N, 3}, NULL);
    d = H5Dcreate2(f, "unwritten", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(space);
    H5Fclose(f);
    expect_fail(RT_ERR_FORMAT, odd, "empty_rows", "labels", RT_TARGET_CLASS, RT_CACHE_RANK,
                "'empty_rows' has dimension 1 of size 0", "odd.h5");
    expect_fail(RT_ERR_FORMAT, odd, "unwritten", "labels", RT_TARGET_CLASS, RT_CACHE_RANK,
                "'unwritten' holds no data", "odd.h5");

    /* A filter this HDF5 cannot decode (32004: LZ4, not built into
     * Debian's HDF5; optional, so the write stores the data unfiltered but
     * records the filter in the pipeline). */
    if (H5Zfilter_avail(32004) <= 0) {
        const char *lz4 = tmp_path("lz4.h5");
        x[7][1] = 0;
        f = create(lz4);
        put(f, "x", 2, (hsize_t[]){N, 2}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, x, 5, 32004);
        put(f, "labels", 1, (hsize_t[]){N}, H5T_STD_I32LE, H5T_NATIVE_INT32, labels, 0, 0);
        H5Fclose(f);
        expect_fail(RT_ERR_UNSUPPORTED, lz4, "x", "labels", RT_TARGET_CLASS, RT_CACHE_RANK,
                    "filter 32004", "cannot decode");
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rtrain-h5test.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    test_float_features();
    test_uint8_images_rows();
    test_vector_targets();
    test_bad_files();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return CHECK_DONE();
}
