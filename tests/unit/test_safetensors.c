/* safetensors files and starting weights (src/ckpt/safetensors.c, weights.c):
 *  - a model's tensors written and read back bit for bit, with metadata, and
 *    the header padded so that the data starts at a multiple of 8;
 *  - every dtype rtrain reads converted to the float32 it stands for;
 *  - malformed files (each check of the parser) refused with RT_ERR_FORMAT
 *    and a message naming the file and what is wrong, never read past;
 *  - rt_ckpt_load_weights: a full match loads every tensor; missing,
 *    unexpected and mis-shaped tensors are all named in one RT_ERR_CONFIG
 *    message and leave the model as it was; model.init_exclude's patterns
 *    keep tensors' own values, and a pattern naming nothing is an error.
 * No MPI: the functions are not collective. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "rtrain/ckpt.h"
#include "rtrain/nn.h"

static char dir[] = "/tmp/rtrain-test-safetensors.XXXXXX";

static void path_of(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

/* Writes 8-byte header size, header text, then data bytes. */
static void write_raw(const char *name, uint64_t declared, const char *header,
                      const void *data, size_t data_len)
{
    char path[256];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(declared >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (data_len)
        fwrite(data, 1, data_len, f);
    fclose(f);
}

static void write_file(const char *name, const char *header, const void *data, size_t len)
{
    write_raw(name, strlen(header), header, data, len);
}

/* ---- the model's tensors, through the writer and the reader -------------------------- */

static rt_model *small_model(uint64_t seed, int classes)
{
    rt_model_spec spec;
    rt_model_spec_default(&spec, RT_ARCH_MLP);
    spec.hidden[0] = 5;
    spec.num_hidden = 1;
    spec.num_classes = classes;
    rt_model *m = NULL;
    CHECK_OK(rt_model_create(&m, NULL, &spec, (rt_shape){1, 2, 3}, 2, seed));
    return m;
}

typedef struct model_fill { rt_model *m; } model_fill;

static rt_status fill_from_model(void *arg, int i, float *out)
{
    model_fill *f = arg;
    const rt_tensor_info *t = rt_model_tensor(f->m, i);
    const float *slab = t->kind == RT_TENSOR_PARAM ? rt_model_params(f->m)
                                                   : rt_model_buffers(f->m);
    memcpy(out, slab + t->offset, t->count * sizeof *out);
    return RT_OK;
}

/* Writes all of m's tensors, with two metadata strings. */
static void save_model(rt_model *m, const char *name)
{
    rt_safetensors_entry e[16];
    int n = 0;
    for (int i = 0; i < rt_model_num_tensors(m); i++) {
        const rt_tensor_info *t = rt_model_tensor(m, i);
        e[n] = (rt_safetensors_entry){.name = t->name, .ndim = t->ndim};
        for (int d = 0; d < t->ndim; d++)
            e[n].shape[d] = t->shape[d];
        n++;
    }
    char path[256];
    path_of(path, sizeof path, name);
    const char *keys[] = {"format", "note"}, *values[] = {"pt", "caf\xc3\xa9"};
    model_fill f = {m};
    CHECK_OK(rt_safetensors_write(path, 0640, e, n, fill_from_model, &f, keys, values, 2));
}

static void test_round_trip(void)
{
    rt_model *m = small_model(7, 3);
    save_model(m, "model.safetensors");
    char path[256];
    path_of(path, sizeof path, "model.safetensors");
    FILE *raw = fopen(path, "rb");
    unsigned char le[8] = {0};
    CHECK(fread(le, 1, 8, raw) == 8);
    fclose(raw);
    uint64_t header = 0;
    for (int i = 0; i < 8; i++)
        header |= (uint64_t)le[i] << (8 * i);
    CHECK_MSG(header % 8 == 0, "header of %llu bytes", (unsigned long long)header);
    rt_safetensors *f = NULL;
    CHECK_OK(rt_safetensors_open(&f, path));
    if (!f)
        return;
    CHECK(rt_safetensors_count(f) == rt_model_num_tensors(m));
    CHECK(rt_safetensors_metadata(f, "note") && !strcmp(rt_safetensors_metadata(f, "note"),
                                                         "caf\xc3\xa9"));
    CHECK(rt_safetensors_metadata(f, "absent") == NULL);
    for (int i = 0; i < rt_model_num_tensors(m); i++) {
        const rt_tensor_info *mt = rt_model_tensor(m, i);
        int k = rt_safetensors_find(f, mt->name);
        CHECK_MSG(k >= 0, "%s missing", mt->name);
        if (k < 0)
            continue;
        const rt_safetensors_tensor *t = rt_safetensors_get(f, k);
        CHECK(!strcmp(t->dtype, "F32") && t->ndim == mt->ndim && t->count == mt->count);
        for (int d = 0; d < t->ndim; d++)
            CHECK(t->shape[d] == mt->shape[d]);
        float got[64];
        CHECK_OK(rt_safetensors_read(f, k, got));
        const float *want = rt_model_params(m) + mt->offset;
        CHECK_MSG(!memcmp(got, want, mt->count * sizeof *got), "%s differs", mt->name);
    }
    rt_safetensors_close(f);
    rt_model_free(m);
}

/* ---- dtypes -------------------------------------------------------------------------------- */

static void test_dtypes(void)
{
    unsigned char data[64] = {0};
    double f64 = -2.5;
    memcpy(data, &f64, 8);                       /* F64 [0, 8) */
    data[8] = 0x00; data[9] = 0x3e;              /* F16 1.5 = 0x3e00 [8, 10) */
    data[10] = 0xc0; data[11] = 0x3f;            /* BF16 1.5 = 0x3fc0 [10, 12) */
    int64_t i64 = -123456;
    memcpy(data + 16, &i64, 8);                  /* I64 [16, 24) */
    int32_t i32 = 77;
    memcpy(data + 24, &i32, 4);                  /* I32 [24, 28) */
    data[28] = 200;                              /* U8 [28, 29) */
    data[29] = 0xff;                             /* I8 -1 [29, 30) */
    data[30] = 0x01; data[31] = 0x80;            /* F16 -2^-24 * 1 (subnormal) [30, 32) */
    const char *header =
        "{\"a\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[8,10]},"
        "\"c\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[10,12]},"
        "\"d\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[16,24]},"
        "\"e\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[24,28]},"
        "\"f\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[28,29]},"
        "\"g\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[29,30]},"
        "\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[30,32]}}  ";
    write_file("dtypes.safetensors", header, data, 32);
    char path[256];
    path_of(path, sizeof path, "dtypes.safetensors");
    rt_safetensors *f = NULL;
    CHECK_OK(rt_safetensors_open(&f, path));
    if (!f)
        return;
    const float want[] = {-2.5f, 1.5f, 1.5f, -123456.0f, 77.0f, 200.0f, -1.0f, -5.9604645e-8f};
    for (int i = 0; i < 8; i++) {
        float v = 0;
        CHECK_OK(rt_safetensors_read(f, i, &v));
        CHECK_MSG(v == want[i], "%s: %g, expected %g", rt_safetensors_get(f, i)->name, v,
                  want[i]);
    }
    rt_safetensors_close(f);
}

/* ---- malformed files ----------------------------------------------------------------------- */

static void expect_bad(const char *name, const char *want)
{
    char path[256];
    path_of(path, sizeof path, name);
    rt_safetensors *f = NULL;
    rt_status st = rt_safetensors_open(&f, path);
    CHECK_MSG(st == RT_ERR_FORMAT && f == NULL, "%s: %s", name, rt_status_name(st));
    CHECK_MSG(strstr(rt_error_message(), path) && strstr(rt_error_message(), want),
              "%s: message lacks the path or \"%s\": %s", name, want, rt_error_message());
    rt_error_clear();
}

static void test_malformed(void)
{
    float four[4] = {1, 2, 3, 4};
    char path[256];
    path_of(path, sizeof path, "short.safetensors");
    FILE *f = fopen(path, "wb");
    fwrite("abcd", 1, 4, f);
    fclose(f);
    expect_bad("short.safetensors", "shorter than the 8 bytes");
    write_raw("past_end.safetensors", 4096, "{}", NULL, 0);
    expect_bad("past_end.safetensors", "gives a header of 4096 bytes");
    write_raw("huge.safetensors", UINT64_MAX, "{}", NULL, 0);
    expect_bad("huge.safetensors", "gives a header of");
    write_file("not_json.safetensors", "{\"a\": [1, 2", NULL, 0);
    expect_bad("not_json.safetensors", "not JSON");
    write_file("array.safetensors", "[1, 2]", NULL, 0);
    expect_bad("array.safetensors", "not a JSON object");
    write_file("dup.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", four, 8);
    expect_bad("dup.safetensors", "not JSON");
    write_file("dtype.safetensors",
               "{\"a\":{\"dtype\":\"Q8\",\"shape\":[1],\"data_offsets\":[0,1]}}", four, 4);
    expect_bad("dtype.safetensors", "dtype Q8");
    write_file("overflow.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904,"
               "16],\"data_offsets\":[0,16]}}", four, 16);
    expect_bad("overflow.safetensors", "larger than the file's data");
    write_file("negative.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", four, 4);
    expect_bad("negative.safetensors", "non-negative");
    write_file("outside.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", four, 16);
    expect_bad("outside.safetensors", "outside the file's data");
    write_file("backwards.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", four, 16);
    expect_bad("backwards.safetensors", "outside the file's data");
    write_file("size.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", four, 16);
    expect_bad("size.safetensors", "does not match its shape and dtype");
    write_file("ndim.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
               "\"data_offsets\":[0,4]}}", four, 4);
    expect_bad("ndim.safetensors", "more dimensions");
    write_file("fields.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", four, 4);
    expect_bad("fields.safetensors", "needs \"dtype\"");
    write_file("meta.safetensors", "{\"__metadata__\":{\"epoch\":3}}", NULL, 0);
    expect_bad("meta.safetensors", "__metadata__ holds a value that is not a string");
}

/* ---- starting weights ------------------------------------------------------------------------ */

static int same_params(rt_model *a, rt_model *b, const char *name)
{
    const rt_tensor_info *t = rt_model_find_tensor(a, name);
    return !memcmp(rt_model_params(a) + t->offset, rt_model_params(b) + t->offset,
                   t->count * sizeof(float));
}

static void test_load_weights(void)
{
    char path[256], wrong[256];
    path_of(path, sizeof path, "model.safetensors");   /* small_model(7, 3) */
    rt_model *src = small_model(7, 3), *m = small_model(8, 3);
    int loaded = 0, kept = 0;
    CHECK_OK(rt_ckpt_load_weights(m, path, NULL, 0, &loaded, &kept));
    CHECK(loaded == 4 && kept == 0);
    CHECK(!memcmp(rt_model_params(m), rt_model_params(src),
                  rt_model_num_params(m) * sizeof(float)));
    rt_model_free(m);

    /* A 4-class model: the last layer's two tensors are mis-shaped. Its
     * first layer's bias missing and an extra tensor: a file of its own. */
    rt_model *four = small_model(9, 4), *before = small_model(9, 4);
    CHECK_FAILS(RT_ERR_CONFIG, rt_ckpt_load_weights(four, path, NULL, 0, &loaded, &kept));
    CHECK(!memcmp(rt_model_params(four), rt_model_params(before),
                  rt_model_num_params(four) * sizeof(float)));
    float data[5 * 6 + 1] = {0};
    write_file("odd.safetensors",
               "{\"linear_relu_stack.0.weight\":{\"dtype\":\"F32\",\"shape\":[5,6],"
               "\"data_offsets\":[0,120]},"
               "\"linear_relu_stack.2.weight\":{\"dtype\":\"F32\",\"shape\":[3,5],"
               "\"data_offsets\":[0,60]},"
               "\"linear_relu_stack.2.bias\":{\"dtype\":\"F32\",\"shape\":[3],"
               "\"data_offsets\":[0,12]},"
               "\"head.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[120,124]}}",
               data, sizeof data);
    path_of(wrong, sizeof wrong, "odd.safetensors");
    rt_status st = rt_ckpt_load_weights(four, wrong, NULL, 0, &loaded, &kept);
    CHECK(st == RT_ERR_CONFIG);
    const char *msg = rt_error_message();
    CHECK_MSG(strstr(msg, wrong) && strstr(msg, "missing from the file (1): "
                                                "linear_relu_stack.0.bias") &&
              strstr(msg, "not in the model (1): head.weight") &&
              strstr(msg, "shapes differ (2)") &&
              strstr(msg, "linear_relu_stack.2.weight is [3,5] in the file, [4,5] in the "
                          "model") &&
              strstr(msg, "model.init_exclude"), "message: %s", msg);
    rt_error_clear();
    CHECK(!memcmp(rt_model_params(four), rt_model_params(before),
                  rt_model_num_params(four) * sizeof(float)));

    /* Fine-tuning a new head: the 3-class file into the 4-class model,
     * the head excluded (kept as initialised). */
    const char *head[] = {"linear_relu_stack.2.*"};
    CHECK_OK(rt_ckpt_load_weights(four, path, head, 1, &loaded, &kept));
    CHECK(loaded == 2 && kept == 2);
    CHECK(same_params(four, src, "linear_relu_stack.0.weight"));
    CHECK(same_params(four, src, "linear_relu_stack.0.bias"));
    CHECK(same_params(four, before, "linear_relu_stack.2.weight"));
    CHECK(same_params(four, before, "linear_relu_stack.2.bias"));

    const char *typo[] = {"linear_relu_stack.2.*", "fc.*"};
    CHECK_FAILS(RT_ERR_CONFIG, rt_ckpt_load_weights(four, path, typo, 2, &loaded, &kept));
    path_of(wrong, sizeof wrong, "absent.safetensors");
    CHECK_FAILS(RT_ERR_CONFIG, rt_ckpt_load_weights(four, wrong, NULL, 0, &loaded, &kept));
    rt_model_free(four);
    rt_model_free(before);
    rt_model_free(src);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_dtypes();
    test_malformed();
    test_load_weights();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return CHECK_DONE();
}
