/* Test helper of tests/e2e/safetensors_torch.test (not a test by itself):
 * rtrain's evaluation-mode logits for given inputs, of the model a config
 * describes with the weights its model.init_from names (loaded by
 * rt_ckpt_load_weights, model.init_exclude applied).
 *
 *   st_logits INPUT.f32 N C H W OUT.f32 CONFIG [key=value ...]
 *
 * INPUT.f32 holds N samples of C x H x W float32 values (already
 * preprocessed); OUT.f32 receives N rows of the model's outputs. Exit 0 on
 * success, 2 with rtrain's message otherwise. No MPI. */
#include <stdio.h>
#include <stdlib.h>
#include "rtrain/ckpt.h"
#include "rtrain/config.h"
#include "rtrain/nn.h"

static int fail(const char *what)
{
    fprintf(stderr, "st_logits: %s: %s\n", what, rt_error_message());
    return 2;
}

static int read_floats(const char *path, float *x, size_t n)
{
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(x, sizeof *x, n, f) : 0;
    if (f)
        fclose(f);
    return got == n;
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: st_logits INPUT.f32 N C H W OUT.f32 CONFIG [key=value ...]\n");
        return 2;
    }
    int n = atoi(argv[2]);
    rt_shape in = {atoi(argv[3]), atoi(argv[4]), atoi(argv[5])};
    static rt_config cfg;
    if (rt_config_load(&cfg, argv[7], argc - 8, argv + 8) != RT_OK)
        return fail("config");
    if (cfg.model.num_classes == 0)
        cfg.model.num_classes = 10;
    rt_model *m = NULL;
    if (n < 1 || rt_model_create(&m, NULL, &cfg.model, in, n, (uint64_t)cfg.train.seed) != RT_OK)
        return fail("model");
    const char *exclude[RT_MAX_INIT_EXCLUDE];
    for (int i = 0; i < cfg.init.num_exclude; i++)
        exclude[i] = cfg.init.exclude[i];
    int loaded = 0, kept = 0;
    if (rt_ckpt_load_weights(m, cfg.init.from, exclude, cfg.init.num_exclude, &loaded,
                             &kept) != RT_OK)
        return fail("model.init_from");
    size_t count = (size_t)n * rt_shape_size(in);
    float *x = malloc(count * sizeof *x);
    if (!x || !read_floats(argv[1], x, count)) {
        fprintf(stderr, "st_logits: cannot read %zu floats from %s\n", count, argv[1]);
        return 2;
    }
    rt_nn_ctx nc = {.train = 0};
    const float *out = NULL;
    if (rt_model_forward(m, &nc, x, n, &out) != RT_OK)
        return fail("forward");
    size_t outputs = (size_t)n * rt_shape_size(rt_model_output_shape(m));
    FILE *f = fopen(argv[6], "wb");
    if (!f || fwrite(out, sizeof *out, outputs, f) != outputs || fclose(f) != 0) {
        fprintf(stderr, "st_logits: cannot write %s\n", argv[6]);
        return 2;
    }
    printf("st_logits: %d tensors loaded, %d kept, %zu outputs\n", loaded, kept, outputs);
    free(x);
    rt_model_free(m);
    return 0;
}
