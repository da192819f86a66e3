/* Unit tests for config: defaults, the example configs, overrides and their
 * precedence, one test per error class (status, file name, line number,
 * suggestion), the JSON output and the reference. Files are read relative
 * to $top_srcdir (set by the test harness). Expected values come from the
 * example/fixture files and the brief, never from the code under test;
 * floats read from text are compared with a relative tolerance of 1e-6
 * (one float rounding of a decimal literal is ~6e-8 relative). */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "config/internal.h"
#include "rtrain/config.h"

#define FTOL 1e-6
#define RT_CKPT_DIGEST_LEN 80   /* rtrain/ckpt.h's RT_CKPT_DIGEST_MAX */

static rt_config cfg;   /* large (paths): static, not on the stack */

static const char *src_path(const char *rel)
{
    static char buf[8][RT_PATH_MAX];
    static int next;
    const char *top = getenv("top_srcdir");
    char *out = buf[next++ % 8];
    snprintf(out, RT_PATH_MAX, "%s/%s", top ? top : ".", rel);
    return out;
}

static rt_status load(const char *rel, int n, ...)
{
    char *ovr[16];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < 16; i++)
        ovr[i] = va_arg(ap, char *);
    va_end(ap);
    rt_error_clear();
    return rt_config_load(&cfg, src_path(rel), n, ovr);
}

/* The load fails with RT_ERR_CONFIG and the message contains every one of
 * the NULL-terminated strings. */
static void expect_error_at(int line, rt_status s, ...)
{
    check_count++;
    if (s != RT_ERR_CONFIG) {
        check_failures++;
        fprintf(stderr, "test_config.c:%d: status %s, expected configuration error (%s)\n",
                line, rt_status_name(s), rt_error_message());
    }
    va_list ap;
    va_start(ap, s);
    check_message_va("test_config.c", line, ap);
    va_end(ap);
}
#define EXPECT_ERROR(s, ...) expect_error_at(__LINE__, (s), __VA_ARGS__, (const char *)NULL)

static int ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

/* ---- defaults ------------------------------------------------------------------ */
static void test_defaults(void)
{
    CHECK_OK(load("tests/fixtures/config/minimal.cfg", 0));
    CHECK(cfg.data.batch_size == 64);
    CHECK(cfg.data.global_batch_size == 0);
    CHECK(cfg.data.shuffle == 1);
    CHECK(cfg.data.prefetch == -1);   /* auto: a loader thread only with a spare core */
    CHECK(cfg.data.transform.normalize == 0);
    CHECK(strcmp(cfg.data.format, "idx") == 0);
    CHECK(strcmp(cfg.data.dir, "/usr/share/datasets/fashion-mnist") == 0);
    CHECK(strcmp(cfg.data.train_images,
                 "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") == 0);
    CHECK(strcmp(cfg.data.train_labels,
                 "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") == 0);
    CHECK(strcmp(cfg.data.test_images,
                 "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") == 0);
    CHECK(strcmp(cfg.data.test_labels,
                 "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz") == 0);
    CHECK(cfg.optimizer.type == RT_OPTIM_SGD);
    CHECK_CLOSE(cfg.optimizer.lr, 1e-3, 0, FTOL);
    CHECK(cfg.model.arch == RT_ARCH_MLP);
    CHECK(cfg.train.epochs == 1 && cfg.train.seed == 0 && cfg.train.eval_every == 1);
    CHECK(cfg.train.accumulate_steps == 1);
    CHECK(strcmp(cfg.train.loss, "cross_entropy") == 0);
    CHECK(cfg.run.verbose == 1);
    CHECK_CLOSE(cfg.run.log_every_s, 30, 0, 0);
    CHECK(strcmp(cfg.run.resume, "auto") == 0);
    CHECK(strcmp(cfg.checkpoint.score_order, "max") == 0);
    CHECK(cfg.checkpoint.frequency == 0 && cfg.checkpoint.at_end == 1);
    CHECK(cfg.comm.bucket_bytes == 4LL * 1024 * 1024);
    CHECK(ends_with(cfg.source, "tests/fixtures/config/minimal.cfg"));

    /* Sub-structs owned by other modules get exactly their defaults. */
    rt_model_spec ms;
    rt_schedule_opts so;
    rt_model_spec_default(&ms, RT_ARCH_MLP);
    rt_schedule_opts_default(&so);
    CHECK(cfg.model.num_hidden == ms.num_hidden);
    /* ... except num_classes: 0 = from the data (the trainer sets it). */
    CHECK(cfg.model.num_classes == 0 && ms.num_classes == 10);
    /* No ReLU on the logits unless asked for (it stalls simple problems). */
    CHECK(cfg.model.output_relu == 0 && ms.output_relu == 0);
    CHECK(cfg.schedule.type == so.type && cfg.schedule.step_epochs == so.step_epochs);

    /* rt_config_defaults alone gives the same values (before path resolution). */
    static rt_config d;
    rt_config_defaults(&d);
    CHECK(d.data.batch_size == 64 && strcmp(d.data.train_images,
                                            "train-images-idx3-ubyte.gz") == 0);
}

/* ---- the examples ------------------------------------------------------------------ */
static void test_example_mlp(void)
{
    CHECK_OK(load("examples/fashion_mnist_mlp.cfg", 0));
    CHECK(cfg.model.arch == RT_ARCH_MLP);
    CHECK(cfg.model.num_classes == 10);
    CHECK(cfg.model.num_hidden == 2 && cfg.model.hidden[0] == 512 && cfg.model.hidden[1] == 512);
    CHECK(cfg.model.output_relu == 1);
    CHECK(cfg.optimizer.type == RT_OPTIM_SGD);
    CHECK_CLOSE(cfg.optimizer.lr, 1e-3, 0, FTOL);
    CHECK(cfg.data.global_batch_size == 64);
    CHECK(cfg.train.epochs == 20);
    CHECK(cfg.data.transform.normalize == 0);
    CHECK(cfg.data.shuffle == 1);
    CHECK(strcmp(cfg.data.test_labels,
                 "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz") == 0);
}

static void test_example_mnist(void)
{
    CHECK_OK(load("examples/mnist_mlp.cfg", 0));
    CHECK(cfg.model.arch == RT_ARCH_MLP);
    CHECK(cfg.model.num_hidden == 1 && cfg.model.hidden[0] == 128);
    CHECK(cfg.model.output_relu == 0);
    CHECK(cfg.optimizer.type == RT_OPTIM_ADAM);
    CHECK_CLOSE(cfg.optimizer.lr, 1e-3, 0, FTOL);
    CHECK_CLOSE(cfg.optimizer.beta2, 0.999, 0, FTOL);   /* Adam's default */
    CHECK(cfg.data.batch_size == 128 && cfg.data.global_batch_size == 0);
    CHECK(cfg.train.epochs == 1);
    CHECK(ends_with(cfg.data.train_images, "/fashion-mnist/train-images-idx3-ubyte.gz"));
}

static void test_example_resnet18(void)
{
    CHECK_OK(load("examples/fashion_mnist_resnet18.cfg", 0));
    CHECK(cfg.model.arch == RT_ARCH_RESNET18);
    CHECK(cfg.model.conv1_kernel == 7 && cfg.model.conv1_stride == 2 &&
          cfg.model.conv1_padding == 3);
    CHECK(cfg.model.bn_sync == 0);
    CHECK(cfg.data.transform.normalize == 1);
    CHECK_CLOSE(cfg.data.transform.mean[0], 0.28604, 0, FTOL);
    CHECK_CLOSE(cfg.data.transform.std[0], 0.32025, 0, FTOL);
    CHECK(cfg.data.batch_size == 128);
    CHECK(cfg.optimizer.type == RT_OPTIM_ADAM);
    CHECK_CLOSE(cfg.optimizer.lr, 1e-3, 0, FTOL);
    CHECK(cfg.train.epochs == 10);
    CHECK(cfg.checkpoint.frequency == 1 && cfg.checkpoint.num_to_keep == 2);
    CHECK(strcmp(cfg.checkpoint.score_attribute, "val_accuracy") == 0);
}

static void test_example_cnn(void)
{
    CHECK_OK(load("examples/fashion_mnist_cnn.cfg", 0));
    CHECK(cfg.model.arch == RT_ARCH_SEQUENTIAL);
    CHECK(cfg.model.num_layers == 13);
    const rt_layer_spec *l = cfg.model.layers;
    static const rt_layer_type types[13] = {
        RT_LAYER_CONV2D, RT_LAYER_BATCHNORM2D, RT_LAYER_RELU, RT_LAYER_MAXPOOL2D,
        RT_LAYER_CONV2D, RT_LAYER_BATCHNORM2D, RT_LAYER_RELU, RT_LAYER_MAXPOOL2D,
        RT_LAYER_FLATTEN, RT_LAYER_LINEAR, RT_LAYER_RELU, RT_LAYER_DROPOUT, RT_LAYER_LINEAR};
    for (int i = 0; i < 13 && i < cfg.model.num_layers; i++)
        CHECK_MSG(l[i].type == types[i], "layer %d type %d, expected %d", i, (int)l[i].type,
                  (int)types[i]);
    CHECK(l[0].out == 32 && l[0].kernel == 3 && l[0].stride == 1 && l[0].padding == 1);
    CHECK(l[0].bias == 1);                       /* PyTorch's default, not given */
    CHECK(l[3].kernel == 2 && l[3].padding == 0);
    CHECK(l[4].out == 64 && l[4].stride == 1);   /* default stride */
    CHECK_CLOSE(l[5].eps, 1e-5, 0, FTOL);
    CHECK_CLOSE(l[11].p, 0.25, 0, FTOL);
    CHECK(l[12].out == 10);
    CHECK(cfg.optimizer.type == RT_OPTIM_SGD);
    CHECK_CLOSE(cfg.optimizer.momentum, 0.9, 0, FTOL);
    CHECK_CLOSE(cfg.optimizer.weight_decay, 5e-4, 0, FTOL);
    CHECK(cfg.schedule.type == RT_SCHEDULE_COSINE && cfg.schedule.warmup_steps == 200);
    CHECK(cfg.train.epochs == 5 && cfg.train.seed == 1);
}

/* ---- overrides ---------------------------------------------------------------------- */
static void test_overrides(void)
{
    const char *mlp = "examples/fashion_mnist_mlp.cfg";
    CHECK_OK(load(mlp, 6, "train.epochs=3", "optimizer.lr=0.05", "run.name=myrun",
                  "model.output_relu=false", "model.hidden=[256,256,128]", "train.seed=7"));
    CHECK(cfg.train.epochs == 3);
    CHECK_CLOSE(cfg.optimizer.lr, 0.05, 0, FTOL);
    CHECK(strcmp(cfg.run.name, "myrun") == 0);
    CHECK(cfg.model.output_relu == 0);
    CHECK(cfg.model.num_hidden == 3 && cfg.model.hidden[0] == 256 && cfg.model.hidden[2] == 128);
    CHECK(cfg.train.seed == 7);

    /* Later overrides win; a word that parses as a number is still text for
     * a string key; quoted strings work; an int is fine for a float key. */
    CHECK_OK(load(mlp, 5, "train.epochs=2", "train.epochs=5", "run.name=2024",
                  "run.storage_path=\"/tmp/runs here\"", "optimizer.lr=1"));
    CHECK(cfg.train.epochs == 5);
    CHECK(strcmp(cfg.run.name, "2024") == 0);
    CHECK(strcmp(cfg.run.storage_path, "/tmp/runs here") == 0);
    CHECK_CLOSE(cfg.optimizer.lr, 1.0, 0, 0);

    /* The type resets the group to Adam's defaults; the file's lr still applies. */
    CHECK_OK(load(mlp, 2, "optimizer.type=adamw", "train.seed=12345678901L"));
    CHECK(cfg.optimizer.type == RT_OPTIM_ADAMW);
    CHECK_CLOSE(cfg.optimizer.weight_decay, 0.01, 0, FTOL);   /* AdamW's default */
    CHECK_CLOSE(cfg.optimizer.lr, 1e-3, 0, FTOL);
    CHECK(cfg.train.seed == 12345678901LL);

    /* Groups as values, and turning normalisation off. */
    CHECK_OK(load(mlp, 1, "data.normalize={ mean = 0.5; std = 0.25; }"));
    CHECK(cfg.data.transform.normalize == 1);
    CHECK_CLOSE(cfg.data.transform.mean[0], 0.5, 0, 0);
    CHECK_CLOSE(cfg.data.transform.std[0], 0.25, 0, 0);
    CHECK_OK(load("examples/fashion_mnist_resnet18.cfg", 1, "data.normalize=false"));
    CHECK(cfg.data.transform.normalize == 0);
    CHECK_OK(load("examples/fashion_mnist_resnet18.cfg", 1, "data.normalize.mean=0.3"));
    CHECK(cfg.data.transform.normalize == 1);
    CHECK_CLOSE(cfg.data.transform.mean[0], 0.3, 0, FTOL);
    CHECK_CLOSE(cfg.data.transform.std[0], 0.32025, 0, FTOL);

    /* A layer list and a change of architecture from the command line. */
    CHECK_OK(load("tests/fixtures/config/minimal.cfg", 2, "model.arch=sequential",
                  "model.layers=({type=\"flatten\";},{type=\"linear\";out=10;bias=false;})"));
    CHECK(cfg.model.arch == RT_ARCH_SEQUENTIAL && cfg.model.num_layers == 2);
    CHECK(cfg.model.layers[1].out == 10 && cfg.model.layers[1].bias == 0);
}

/* The value of one gbdt parameter from the command line. */
static const char *param_of(const char *name)
{
    for (int i = 0; i < cfg.gbdt.num_params; i++)
        if (strcmp(cfg.gbdt.param_keys[i], name) == 0)
            return cfg.gbdt.param_values[i];
    return NULL;
}

/* model.params.NAME=VALUE replaces the file's NAME or adds it, keeping the
 * file's others; a whole model.params= override still replaces the group. */
static void test_param_overrides(void)
{
    const char *gbdt = "examples/gbdt_xgboost.cfg";
    CHECK_OK(load(gbdt, 0));
    int n = cfg.gbdt.num_params;
    CHECK(n >= 2 && param_of("max_depth") && strcmp(param_of("max_depth"), "4") == 0);
    CHECK(param_of("subsample") == NULL);
    CHECK_OK(load(gbdt, 3, "model.params.max_depth=6", "model.params.subsample=0.5",
                  "model.params.grow_policy=lossguide"));
    CHECK(cfg.gbdt.num_params == n + 2);
    CHECK(param_of("max_depth") && strcmp(param_of("max_depth"), "6") == 0);
    CHECK(param_of("subsample") && strcmp(param_of("subsample"), "0.5") == 0);
    CHECK(param_of("grow_policy") && strcmp(param_of("grow_policy"), "lossguide") == 0);
    CHECK(param_of("tree_method") && strcmp(param_of("tree_method"), "hist") == 0);
    /* In order: the whole group, then one of it; later overrides win. */
    CHECK_OK(load(gbdt, 3, "model.params={ eta = \"0.1\"; }", "model.params.max_depth=2",
                  "model.params.max_depth=3"));
    CHECK(cfg.gbdt.num_params == 2 && strcmp(param_of("eta"), "0.1") == 0);
    CHECK(param_of("max_depth") && strcmp(param_of("max_depth"), "3") == 0);
    EXPECT_ERROR(load(gbdt, 1, "model.params.max_depth=[1,2]"), "model.params.max_depth",
                 "a number, a string or a boolean");
    EXPECT_ERROR(load(gbdt, 1, "model.params.a/b=1"), "override 'model.params.a/b=1'",
                 "parameter name");
    EXPECT_ERROR(load(gbdt, 1, "model.paramz.max_depth=1"), "unknown key");
}

static void test_paths(void)
{
    char cwd[RT_PATH_MAX], want[RT_PATH_MAX + 64];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    /* A relative data.dir is taken from the current directory. */
    CHECK_OK(load("examples/mnist_mlp.cfg", 2, "data.dir=./some/dir",
                  "data.test.labels=/abs/labels.gz"));
    snprintf(want, sizeof want, "%s/some/dir", cwd);
    CHECK_MSG(strcmp(cfg.data.dir, want) == 0, "data.dir = %s", cfg.data.dir);
    snprintf(want, sizeof want, "%s/some/dir/train-images-idx3-ubyte.gz", cwd);
    CHECK_MSG(strcmp(cfg.data.train_images, want) == 0, "train images = %s",
              cfg.data.train_images);
    CHECK(strcmp(cfg.data.test_labels, "/abs/labels.gz") == 0);
    CHECK_OK(load("examples/mnist_mlp.cfg", 2, "data.dir=/data/", "data.train.images=x/y.gz"));
    CHECK(strcmp(cfg.data.train_images, "/data/x/y.gz") == 0);
}

/* `rtrain fashion_mnist_mlp.cfg train.epochs=1 data.batch_size=128`: the
 * file's global_batch_size gives way to the command line's batch_size. */
static void test_batch_size_rule(void)
{
    CHECK_OK(load("examples/fashion_mnist_mlp.cfg", 2, "train.epochs=1", "data.batch_size=128"));
    CHECK(cfg.train.epochs == 1);
    CHECK(cfg.data.batch_size == 128 && cfg.data.global_batch_size == 0);
    /* And the other way round. */
    CHECK_OK(load("examples/mnist_mlp.cfg", 1, "data.global_batch_size=256"));
    CHECK(cfg.data.global_batch_size == 256 && cfg.data.batch_size == 64);
    /* Both from the same source are an error naming both places. */
    EXPECT_ERROR(load("tests/fixtures/config/both_batch_sizes.cfg", 0), "both_batch_sizes.cfg:3",
                 "both_batch_sizes.cfg:4", "give one");
    EXPECT_ERROR(load("examples/mnist_mlp.cfg", 2, "data.batch_size=32",
                      "data.global_batch_size=64"), "override 'data.batch_size=32'",
                 "override 'data.global_batch_size=64'");
    /* global_batch_size = 0 means "not set" and does not conflict. */
    CHECK_OK(load("examples/mnist_mlp.cfg", 1, "data.global_batch_size=0"));
}

/* ---- errors: one per class ----------------------------------------------------------- */
static void test_file_errors(void)
{
    EXPECT_ERROR(load("tests/fixtures/config/unknown_group.cfg", 0), "unknown_group.cfg:3",
                 "unknown key 'optimiser'", "did you mean 'optimizer'?");
    EXPECT_ERROR(load("tests/fixtures/config/unknown_key.cfg", 0), "unknown_key.cfg:5",
                 "unknown key 'optimizer.lrr'", "(did you mean 'optimizer.lr'?)");
    EXPECT_ERROR(load("tests/fixtures/config/wrong_type.cfg", 0), "wrong_type.cfg:4",
                 "optimizer.lr must be a number, got a string");
    EXPECT_ERROR(load("tests/fixtures/config/out_of_range.cfg", 0), "out_of_range.cfg:4",
                 "data.batch_size = 0 is out of range (1..1048576)");
    EXPECT_ERROR(load("tests/fixtures/config/bad_enum.cfg", 0), "bad_enum.cfg:4", "\"hinge\"",
                 "cross_entropy, nll, mse, l1, smooth_l1, bce_with_logits");
    EXPECT_ERROR(load("tests/fixtures/config/syntax_error.cfg", 0), "syntax_error.cfg:4",
                 "syntax error");
    EXPECT_ERROR(load("tests/fixtures/config/no_such_file.cfg", 0), "no_such_file.cfg",
                 "No such file");
    EXPECT_ERROR(load("tests/fixtures/config/bad_layer.cfg", 0), "bad_layer.cfg:6",
                 "model.layers[1].kernal", "did you mean 'kernel'?", "takes: out, bias");
    EXPECT_ERROR(load("tests/fixtures/config/int_overflow.cfg", 0), "int_overflow.cfg:3",
                 "5000000000L");
    EXPECT_ERROR(load("tests/fixtures/config/wrong_variant.cfg", 0), "wrong_variant.cfg:4",
                 "optimizer.momentum only applies when optimizer.type is sgd");
}

static void test_override_errors(void)
{
    const char *mlp = "examples/fashion_mnist_mlp.cfg";
    /* Syntax of the override itself, and of its value. */
    EXPECT_ERROR(load(mlp, 1, "optimizer.lr"), "override 'optimizer.lr'", "KEY=VALUE");
    EXPECT_ERROR(load(mlp, 1, "=3"), "override '=3'", "KEY=VALUE");
    EXPECT_ERROR(load(mlp, 1, "model.hidden=[256,"), "override 'model.hidden=[256,'",
                 "syntax error");
    EXPECT_ERROR(load(mlp, 1, "train.epochs=1; seed=2"), "override", "one value");
    /* Keys and values. */
    EXPECT_ERROR(load(mlp, 1, "optimizer.lrr=0.1"), "override 'optimizer.lrr=0.1'",
                 "unknown key 'optimizer.lrr'", "did you mean 'optimizer.lr'?");
    EXPECT_ERROR(load(mlp, 1, "train.lr=0.1"), "did you mean 'optimizer.lr'?");
    EXPECT_ERROR(load(mlp, 1, "optimizer.type=adamm"), "override 'optimizer.type=adamm'",
                 "sgd, adam, adamw");
    EXPECT_ERROR(load(mlp, 1, "train.epochs=1.5"), "train.epochs must be an integer");
    EXPECT_ERROR(load(mlp, 1, "train.epochs=three"), "train.epochs must be an integer",
                 "\"three\"");
    EXPECT_ERROR(load(mlp, 1, "data.shuffle=1"), "data.shuffle must be true or false");
    EXPECT_ERROR(load(mlp, 1, "train.seed=5000000000"), "5000000000L");
    EXPECT_ERROR(load(mlp, 1, "optimizer=3"), "'optimizer' is a group");
    EXPECT_ERROR(load(mlp, 1, "model.hidden=[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]"),
                 "model.hidden has 17 entries, at most 16");
    EXPECT_ERROR(load(mlp, 1, "model.hidden=[1,0]"), "model.hidden[1] = 0 is out of range");
}

static void test_cross_field_errors(void)
{
    const char *minimal = "tests/fixtures/config/minimal.cfg";
    EXPECT_ERROR(load(minimal, 1, "model.arch=sequential"), "needs model.layers");
    EXPECT_ERROR(load("examples/fashion_mnist_cnn.cfg", 1, "model.arch=mlp"),
                 "fashion_mnist_cnn.cfg:", "model.layers only applies when model.arch is "
                 "sequential");
    EXPECT_ERROR(load("examples/fashion_mnist_mlp.cfg", 1, "data.normalize.mean=0.5"),
                 "needs both mean and std");
    EXPECT_ERROR(load(minimal, 1, "optimizer.nesterov=true"), "optimizer.nesterov needs");
    EXPECT_ERROR(load(minimal, 2, "schedule.type=cosine", "schedule.min_lr=0.1"),
                 "override 'schedule.min_lr=0.1'", "above optimizer.lr");
    EXPECT_ERROR(load(minimal, 1, "schedule.gamma=0.5"), "schedule.gamma only applies when "
                 "schedule.type is step");
    /* Layer lists: a field the type does not use, a required one missing,
     * an unknown type, too many layers. */
    EXPECT_ERROR(load(minimal, 2, "model.arch=sequential",
                      "model.layers=({type=\"relu\"; p=0.5;})"), "model.layers[0].p does not "
                 "apply to a relu layer");
    EXPECT_ERROR(load(minimal, 2, "model.arch=sequential", "model.layers=({type=\"conv2d\";})"),
                 "model.layers[0] (conv2d) needs: out, kernel");
    EXPECT_ERROR(load(minimal, 2, "model.arch=sequential", "model.layers=({type=\"lstm\";})"),
                 "\"lstm\" is not a layer type", "linear, conv2d");
    char many[4096] = "model.layers=(";
    for (int i = 0; i < RT_MAX_LAYERS + 1; i++)
        strcat(many, i ? ",{type=\"relu\";}" : "{type=\"relu\";}");
    strcat(many, ")");
    EXPECT_ERROR(load(minimal, 2, "model.arch=sequential", many), "65 layers, at most 64");
    /* Starting weights: one source, and exclusions only with it. */
    EXPECT_ERROR(load(minimal, 2, "model.init_from=\"w.safetensors\"",
                      "run.resume_from_checkpoint=\"runs/a/checkpoint_000001\""),
                 "override 'model.init_from=", "both give the starting weights");
    EXPECT_ERROR(load(minimal, 1, "model.init_exclude=[\"fc.*\"]"),
                 "model.init_exclude only applies with model.init_from");
    CHECK_OK(load(minimal, 2, "model.init_from=\"w.safetensors\"",
                  "model.init_exclude=[\"fc.*\", \"bn1.*\"]"));
    CHECK(!strcmp(cfg.init.from, "w.safetensors") && cfg.init.num_exclude == 2 &&
          !strcmp(cfg.init.exclude[1], "bn1.*"));
    CHECK(cfg.run.tensorboard == 1 && cfg.run.log_every_steps == 50);   /* the defaults */
}

/* ---- JSON and reference ----------------------------------------------------------- */
static json_t *json_at(json_t *root, const char *path)
{
    char part[128];
    json_t *o = root;
    while (o && *path) {
        size_t n = strcspn(path, ".");
        snprintf(part, sizeof part, "%.*s", (int)n, path);
        o = json_object_get(o, part);
        path += n + (path[n] == '.');
    }
    return o;
}

static char *write_json(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_OK(rt_config_write_json(&cfg, f));
    fclose(f);
    return buf;
}

static void test_json(void)
{
    CHECK_OK(load("examples/fashion_mnist_cnn.cfg", 1, "optimizer.lr=0.001"));
    char *text = write_json();
    json_error_t err;
    json_t *root = json_loads(text ? text : "", 0, &err);
    CHECK_MSG(root != NULL, "JSON does not parse: %s", err.text);
    if (root) {
        CHECK(json_is_real(json_at(root, "optimizer.lr")));
        CHECK_CLOSE(json_real_value(json_at(root, "optimizer.lr")), 0.001, 0, 1e-12);
        CHECK(json_integer_value(json_at(root, "train.epochs")) == 5);
        CHECK(strcmp(json_string_value(json_at(root, "optimizer.type")), "sgd") == 0);
        CHECK(strcmp(json_string_value(json_at(root, "data.train.images")),
                     "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") == 0);
        CHECK_CLOSE(json_real_value(json_at(root, "comm.bucket_mb")), 4, 0, 0);
        CHECK_CLOSE(json_real_value(json_at(root, "data.normalize.std")), 0.32025, 0, FTOL);
        json_t *layers = json_at(root, "model.layers");
        CHECK(json_array_size(layers) == 13);
        json_t *l0 = json_array_get(layers, 0);
        CHECK(strcmp(json_string_value(json_object_get(l0, "type")), "conv2d") == 0);
        CHECK(json_integer_value(json_object_get(l0, "out")) == 32);
        CHECK(json_object_get(l0, "p") == NULL);   /* conv2d has no dropout p */
        /* Every key of the schema is present (defaults included). */
        for (int i = 0; i < rt_config_num_keys(); i++)
            CHECK_MSG(json_at(root, rt_config_key(i)->path) != NULL, "%s missing from JSON",
                      rt_config_key(i)->path);
        json_decref(root);
    }
    /* Deterministic: the same configuration gives the same bytes. */
    char *again = write_json();
    CHECK(text && again && strcmp(text, again) == 0);
    free(text);
    free(again);

    CHECK_OK(load("examples/fashion_mnist_mlp.cfg", 0));
    text = write_json();
    root = json_loads(text ? text : "", 0, &err);
    CHECK(root && json_is_false(json_at(root, "data.normalize")));
    CHECK(root && json_array_size(json_at(root, "model.hidden")) == 2);
    CHECK(root && json_integer_value(json_at(root, "data.global_batch_size")) == 64);
    json_decref(root);
    free(text);
}

/* params.json read back (rt_config_load_params): the same configuration,
 * so the same JSON bytes and digest, for configs with layers, per-channel
 * Normalize, CSV columns, an optimizer with keys of other variants and
 * both batch sizes; the run's "preprocessing" member is skipped. An
 * unknown key and a file that is not JSON are errors naming the file. */
static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_params(void)
{
    static rt_config back;
    char path[] = "/tmp/rtrain-test-params-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    const char *configs[][2] = {
        {"examples/fashion_mnist_cnn.cfg", "data.normalize={mean=[0.1,0.2];std=[0.3,0.4];}"},
        {"examples/fashion_mnist_resnet18.cfg", "optimizer.type=\"adamw\""},
        {"examples/diabetes_mlp.cfg", "data.categorical=[\"sex\"]"},
        {"examples/breast_cancer.cfg", "train.seed=5000000000L"},
        {"examples/fashion_mnist_mlp.cfg", "data.batch_size=32"},
    };
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        char *ovr[1] = {(char *)configs[i][1]};
        rt_error_clear();
        CHECK_OK(rt_config_load(&cfg, src_path(configs[i][0]), 1, ovr));
        char *text = write_json();
        json_t *root = json_loads(text ? text : "", 0, NULL);
        json_object_set_new(root, "preprocessing", json_pack("{s:n}", "encoding"));
        char *params = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
        json_decref(root);
        write_text(path, params ? params : "");
        rt_status st = rt_config_load_params(&back, path);
        CHECK_MSG(st == RT_OK, "%s: %s", configs[i][0], rt_error_message());
        char *again = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&again, &len);
        CHECK_OK(rt_config_write_json(&back, f));
        fclose(f);
        CHECK_MSG(text && again && strcmp(text, again) == 0, "%s: params.json reads back "
                  "otherwise", configs[i][0]);
        char d1[RT_CKPT_DIGEST_LEN], d2[RT_CKPT_DIGEST_LEN];
        CHECK_OK(rt_config_digest(&cfg, d1, sizeof d1));
        CHECK_OK(rt_config_digest(&back, d2, sizeof d2));
        CHECK(strncmp(d1, "xxh3:", 5) == 0 && strcmp(d1, d2) == 0);
        free(text);
        free(again);
        free(params);
    }
    write_text(path, "{\"optimizer\": {\"lr\": 0.1, \"lrr\": 2}}");
    EXPECT_ERROR(rt_config_load_params(&back, path), path, "unknown key 'optimizer.lrr'",
                 "optimizer.lr");
    write_text(path, "optimizer = { lr = 0.1; };");
    EXPECT_ERROR(rt_config_load_params(&back, path), path, "not a run's params.json");
    write_text(path, "{\"train\": {\"epochs\": \"ten\"}}");
    EXPECT_ERROR(rt_config_load_params(&back, path), path, "train.epochs");
    remove(path);
}

static void test_reference(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rt_config_print_reference(f);
    fclose(f);
    CHECK(buf && strstr(buf, "optimizer.lr = 0.001"));
    CHECK(buf && strstr(buf, "data.batch_size = 64   (integer in 1..1048576)"));
    CHECK(buf && strstr(buf, "one of: sgd, adam, adamw"));
    for (int i = 0; buf && i < rt_config_num_keys(); i++)
        CHECK_MSG(strstr(buf, rt_config_key(i)->path) != NULL, "%s missing from reference",
                  rt_config_key(i)->path);
    free(buf);
}

/* Names listed for every enum key map back to their value. */
static void test_enum_tables(void)
{
    for (int i = 0; i < rt_config_num_keys(); i++) {
        const rt_key *k = rt_config_key(i);
        if (k->type != RT_KEY_ENUM)
            continue;
        CHECK(rt_config_enum_count(k) > 0);
        for (int v = 0; v < rt_config_enum_count(k); v++)
            CHECK_MSG(rt_config_enum_value(k, rt_config_enum_name(k, v)) == v, "%s value %d",
                      k->path, v);
    }
}

/* ---- data keys of own datasets ------------------------------------------------------------ */
static void test_data_keys(void)
{
    CHECK_OK(load("examples/diabetes_mlp.cfg", 5, "data.features=[\"age\", \"bmi\"]",
                  "data.categorical=[\"sex\"]", "data.normalize.mean=[0.1, 0.2, 0.3]",
                  "data.normalize.std=0.5", "data.augment.hflip=true"));
    CHECK(strcmp(cfg.data.format, "csv") == 0 && strcmp(cfg.data.target, "progression") == 0);
    CHECK(cfg.data.num_features == 2 && strcmp(cfg.data.features[1], "bmi") == 0);
    CHECK(cfg.data.num_categorical == 1 && strcmp(cfg.data.categorical[0], "sex") == 0);
    CHECK(cfg.data.transform.normalize == 1 && cfg.data.transform.num_mean == 3);
    CHECK_CLOSE(cfg.data.transform.mean[2], 0.3, 0, FTOL);
    CHECK(cfg.data.transform.num_std == 1 && cfg.data.transform.std[0] == 0.5f);
    CHECK(cfg.data.augment.hflip == 1 && cfg.data.augment.crop_padding == 0);
    CHECK(cfg.data.standardize == 1 && cfg.data.standardize_target == 1);
    CHECK(cfg.data.test_fraction == 0.2 && cfg.data.test_file[0] == '\0');
    /* Not idx: relative paths are taken from the current directory. */
    char cwd[RT_PATH_MAX];
    CHECK(getcwd(cwd, sizeof cwd) && strcmp(cfg.data.dir, cwd) == 0);
    CHECK(ends_with(cfg.data.train_file, "/diabetes.csv"));
    /* The JSON of params.json has the lists as written. */
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    CHECK_OK(rt_config_write_json(&cfg, mem));
    fclose(mem);
    CHECK(text && strstr(text, "\"mean\": [") && strstr(text, "\"categorical\": ["));
    free(text);
    EXPECT_ERROR(load("examples/diabetes_mlp.cfg", 1, "data.features=[\"a\", \"a\"]"),
                 "data.features: \"a\" is listed twice");
    EXPECT_ERROR(load("examples/diabetes_mlp.cfg", 1, "data.features=[1, 2]"),
                 "data.features[0] must be a string");
    EXPECT_ERROR(load("examples/diabetes_mlp.cfg", 1, "data.normalize.std=[1, 0]"),
                 "data.normalize.std[1] = 0 is out of range");
    EXPECT_ERROR(load("examples/diabetes_mlp.cfg", 1, "data.fill_missing=\"median\""),
                 "none, zero, mean");
}

int main(void)
{
    test_defaults();
    test_example_mlp();
    test_example_mnist();
    test_example_resnet18();
    test_example_cnn();
    test_overrides();
    test_paths();
    test_batch_size_rule();
    test_file_errors();
    test_override_errors();
    test_cross_field_errors();
    test_data_keys();
    test_json();
    test_params();
    test_param_overrides();
    test_reference();
    test_enum_tables();
    return CHECK_DONE();
}
