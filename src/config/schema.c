/* The one table of configuration keys: path, type, where the value lives in
 * rt_config, range, default and help text. Everything else in the module
 * (parsing, validation, JSON, the reference) is driven by this table, so a
 * new key is one line here plus its field in rtrain/config.h.
 *
 * Defaults: keys of the model, optimizer and schedule sub-structs take
 * theirs from rt_model_spec_default / rt_optim_opts_default /
 * rt_schedule_opts_default (so they live in those modules); a table default
 * here is only for fields the config module owns, or where the config's
 * default deliberately differs from the module's (optimizer.lr). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/internal.h"

#define OFF(field) offsetof(rt_config, field)
#define FSIZE(field) sizeof(((rt_config *)0)->field)
#define MIB 1048576.0

/* Wrappers giving the modules' enum functions one signature. */
static const char *optim_name(int v) { return rt_optim_type_name((rt_optim_type)v); }
static const char *schedule_name(int v) { return rt_schedule_type_name((rt_schedule_type)v); }

/* Losses, formats and backends are the modules' tables (nn/loss.c,
 * data/format.c, backend/backend.c): a new entry there is a new value
 * here. Their names are looked up by rt_config_enum_value. */
static const char *loss_name(int v) { return rt_loss_name(rt_loss_at(v)); }

/* "auto" first, then the backends of this build. */
static const char *backend_name(int v)
{
    return v == 0 ? "auto" : rt_backend_name_at(v - 1);   /* loads no library */
}
static int backend_count(void) { return rt_backend_count() + 1; }

/* nn.h has no name functions for rt_arch: the names are listed here, in
 * enum order (value = index). */
static const char *const arch_names[] = {"sequential", "mlp", "resnet18", "gbdt", NULL};
static const char *const gbdt_library_names[] = {"xgboost", "lightgbm", NULL};
static const char *const resume_names[] = {"auto", "never", NULL};
static const char *const order_names[] = {"max", "min", NULL};
static const char *const fill_names[] = {"none", "zero", "mean", NULL};   /* rt_fill_policy */
static const char *const cache_names[] = {"rank", "none", "node", NULL};  /* rt_cache_policy */
static const char *const comm_backend_names[] = {"auto", "nccl", "mpi", NULL};
static const char *const scheduler_names[] = {"fifo", "asha", "asha_promote", "median", "pbt",
                                                NULL};

static int name_index(const char *const *names, const char *name)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], name))
            return i;
    return 0;
}

int rt_config_fill_policy(const rt_config *cfg)
{
    return name_index(fill_names, cfg->data.fill_missing);
}

int rt_config_cache_policy(const rt_config *cfg) { return name_index(cache_names, cfg->data.cache); }

/* Selecting a variant resets its group to the module's defaults for it,
 * then the table's own defaults of that group are re-applied. */
static void reset_model(rt_config *cfg, int arch)
{
    rt_model_spec_default(&cfg->model, (rt_arch)arch);
    rt_config_apply_table_defaults(cfg, "model");
}

static void reset_optimizer(rt_config *cfg, int type)
{
    rt_optim_opts_default(&cfg->optimizer, (rt_optim_type)type);
    rt_config_apply_table_defaults(cfg, "optimizer");
}

/* Shorthands keeping one key per line readable. D: table default; M: the
 * module's default. */
#define INT_D(p, f, lo, hi, d, h) {.path = p, .type = RT_KEY_INT, .offset = OFF(f), .min = lo, \
    .max = hi, .has_default = 1, .def = d, .help = h}
#define INT_M(p, f, lo, hi, h) {.path = p, .type = RT_KEY_INT, .offset = OFF(f), .min = lo, \
    .max = hi, .help = h}
/* _O: meaningful only for some values of the group's selector. */
#define INT_MO(p, f, lo, hi, only, h) {.path = p, .type = RT_KEY_INT, .offset = OFF(f), \
    .min = lo, .max = hi, .only_for = only, .help = h}
#define FLOAT_MO(p, f, lo, hi, only, h) {.path = p, .type = RT_KEY_FLOAT, .offset = OFF(f), \
    .min = lo, .max = hi, .only_for = only, .help = h}
#define BOOL_MO(p, f, only, h) {.path = p, .type = RT_KEY_BOOL, .offset = OFF(f), .min = 0, \
    .max = 1, .only_for = only, .help = h}
#define INT64_D(p, f, lo, hi, d, h) {.path = p, .type = RT_KEY_INT64, .offset = OFF(f), \
    .min = lo, .max = hi, .has_default = 1, .def = d, .help = h}
#define INT64_M(p, f, lo, hi, h) {.path = p, .type = RT_KEY_INT64, .offset = OFF(f), .min = lo, \
    .max = hi, .help = h}
#define FLOAT_D(p, f, lo, hi, d, h) {.path = p, .type = RT_KEY_FLOAT, .offset = OFF(f), \
    .min = lo, .max = hi, .has_default = 1, .def = d, .help = h}
#define FLOAT_M(p, f, lo, hi, h) {.path = p, .type = RT_KEY_FLOAT, .offset = OFF(f), .min = lo, \
    .max = hi, .help = h}
#define DOUBLE_D(p, f, lo, hi, d, h) {.path = p, .type = RT_KEY_DOUBLE, .offset = OFF(f), \
    .min = lo, .max = hi, .has_default = 1, .def = d, .help = h}
#define BOOL_D(p, f, d, h) {.path = p, .type = RT_KEY_BOOL, .offset = OFF(f), .min = 0, \
    .max = 1, .has_default = 1, .def = d, .help = h}
#define BOOL_M(p, f, h) {.path = p, .type = RT_KEY_BOOL, .offset = OFF(f), .min = 0, .max = 1, \
    .help = h}
#define STR_D(p, f, d, h) {.path = p, .type = RT_KEY_STRING, .offset = OFF(f), \
    .size = FSIZE(f), .has_default = 1, .def_text = d, .help = h}
#define ENUM_TEXT(p, f, list, d, h) {.path = p, .type = RT_KEY_ENUM, .offset = OFF(f), \
    .size = FSIZE(f), .names = list, .has_default = 1, .def_text = d, .help = h}

static const rt_key keys[] = {
    /* ---- run ---- */
    STR_D("run.name", run.name, "",
          "Name of the run directory under run.storage_path. \"\": the config file's "
          "name without its extension."),
    STR_D("run.storage_path", run.storage_path, "",
          "Where run directories are created. \"\": $RTRAIN_STORAGE, else ./rtrain_results."),
    INT_D("run.verbose", run.verbose, 0, 2, 1,
          "0: warnings and errors only; 1: progress and metrics; 2: debug detail."),
    DOUBLE_D("run.log_every_s", run.log_every_s, 0, 1e6, 30,
             "Seconds between progress lines during an epoch (0: every step)."),
    BOOL_D("run.log_per_rank", run.log_per_rank, 0,
           "Also write rank_N.log in the run directory for every rank."),
    ENUM_TEXT("run.resume", run.resume, resume_names, "auto",
              "auto: continue from the newest committed checkpoint of the run directory "
              "if there is one; never: always start fresh (the directory must be new, or "
              "run.overwrite set)."),
    STR_D("run.resume_from_checkpoint", run.resume_from_checkpoint, "",
          "Checkpoint directory to start from (weights, optimizer and position); "
          "\"\": none."),
    BOOL_D("run.overwrite", run.overwrite, 0,
           "Allow reusing an existing run directory when not resuming."),
    BOOL_D("run.profile", run.profile, 0,
           "Time every layer's forward and backward, the loss, the optimizer, the data "
           "wait, the communication waits, evaluation and checkpoint pauses; at the end "
           "rank 0 prints the table (mean over ranks, and the slowest rank) and writes "
           "profile.txt and profile.json in the run directory. Same results as without; "
           "`rtrain --profile` sets it."),
    BOOL_D("run.tensorboard", run.tensorboard, 1,
           "Rank 0 writes TensorBoard event files (events.out.tfevents.*) in the run "
           "directory: every reported metric at step training_iteration, and the training "
           "loss and learning rate every run.log_every_steps optimizer steps."),
    INT_D("run.log_every_steps", run.log_every_steps, 0, 1 << 30, 50,
          "With run.tensorboard: the training loss (mean over the step's global batch) and "
          "the learning rate every N optimizer steps, as step/train_loss and step/lr; 0: "
          "never."),

    /* ---- scaling ---- */
    INT_D("scaling.num_workers", scaling.num_workers, 0, 1 << 20, 0,
          "Expected number of workers (MPI ranks); 0: whatever mpirun starts. When set, "
          "a different world size is an error."),
    INT_D("scaling.threads_per_worker", scaling.threads_per_worker, 0, 4096, 0,
          "CPU threads per worker for the math kernels; 0: cores of the node divided by "
          "the ranks on it."),
    BOOL_D("scaling.use_gpu", scaling.use_gpu, 0,
           "Train on one GPU per worker, the GPU of the rank's place on its node among "
           "those CUDA_VISIBLE_DEVICES shows (needs a build with the CUDA backend)."),

    /* ---- gpu ---- */
    BOOL_D("gpu.deterministic", gpu.deterministic, 1,
           "Deterministic cuDNN convolution algorithms, chosen in cuDNN's fixed heuristic "
           "order, so a run repeats bit for bit on the same GPU (false: the fastest measured, "
           "as cudnn.benchmark, which may not)."),
    BOOL_D("gpu.tf32", gpu.tf32, 0,
           "Allow TF32 tensor cores in convolutions and products (faster on Ampere and "
           "later, about 3 fewer significant digits); false: true fp32."),
    {.path = "scaling.backend", .type = RT_KEY_ENUM, .offset = OFF(scaling.backend),
     .size = FSIZE(scaling.backend), .name_of = backend_name, .count = backend_count, .has_default = 1, .def_text = "auto",
     .help = "Kernels the model computes with: auto (cpu), cpu (OpenBLAS, threads), or "
             "naive (plain loops on one thread: slow, the reference for checking results)."},

    /* ---- model ---- */
    {.path = "model.arch", .type = RT_KEY_ENUM, .offset = OFF(model.arch), .names = arch_names,
     .has_default = 1, .def = RT_ARCH_MLP, .reset = reset_model, .flags = RT_KEYF_SELECTOR,
     .help = "mlp: Flatten, Linear+ReLU per model.hidden size, Linear to num_classes; "
             "resnet18: torchvision's ResNet-18 with a configurable first convolution; "
             "sequential: the layers of model.layers; gbdt: gradient-boosted trees trained "
             "by model.library (docs/gbdt.md)."},
    /* The config's default (0) differs from the module's (10): the trainer
     * takes the number from the data. */
    INT_D("model.num_classes", model.num_classes, 0, 1 << 20, 0,
          "Outputs of the last layer of mlp and resnet18; 0: from the data (its number of "
          "classes, or of target values for a regression)."),
    {.path = "model.hidden", .type = RT_KEY_INT_LIST, .offset = OFF(model.hidden),
     .size = RT_MAX_HIDDEN, .aux = OFF(model.num_hidden), .min = 1, .max = 1 << 20,
     .only_for = "mlp",
     .help = "Hidden layer sizes of the mlp, e.g. [512, 512] (at most 16)."},
    BOOL_MO("model.output_relu", model.output_relu, "mlp",
           "mlp: ReLU after the last Linear too (default false; Ray Train's FashionMNIST "
           "example has it, and its parity config sets it)."),
    INT_MO("model.conv1_kernel", model.conv1_kernel, 1, 15, "resnet18",
          "resnet18: kernel size of the first convolution (torchvision: 7)."),
    INT_MO("model.conv1_stride", model.conv1_stride, 1, 8, "resnet18",
          "resnet18: stride of the first convolution (torchvision: 2)."),
    INT_MO("model.conv1_padding", model.conv1_padding, 0, 7, "resnet18",
          "resnet18: padding of the first convolution (torchvision: 3)."),
    BOOL_M("model.sync_batchnorm", model.bn_sync,
           "BatchNorm statistics computed over the global batch (all ranks) instead of "
           "each rank's part, like torch.nn.SyncBatchNorm."),
    STR_D("model.init_from", init.from, "",
          "Weights a new run starts from (fine-tuning): a .safetensors file or an rtrain "
          "checkpoint directory, tensors by state_dict name; the optimizer starts fresh. "
          "A run that resumes from its own checkpoint ignores it. \"\": none."),
    {.path = "model.init_exclude", .type = RT_KEY_STRING_LIST, .offset = OFF(init.exclude),
     .size = RT_MAX_INIT_EXCLUDE, .aux = OFF(init.num_exclude),
     .help = "With model.init_from: tensors that keep their fresh initialisation, as "
             "shell patterns of state_dict names, e.g. [\"fc.*\"] for a new classifier "
             "head; matching tensors of the file are ignored."},
    {.path = "model.layers", .type = RT_KEY_LAYERS, .offset = OFF(model.layers),
     .size = RT_MAX_LAYERS, .aux = OFF(model.num_layers), .only_for = "sequential",
     .help = "sequential: list of layer groups, e.g. ( { type = \"conv2d\"; out = 32; "
             "kernel = 3; padding = 1; }, { type = \"relu\"; } ). Fields per type are "
             "listed below; at most 64 layers."},

    {.path = "model.library", .type = RT_KEY_ENUM, .offset = OFF(gbdt.library),
     .size = FSIZE(gbdt.library), .names = gbdt_library_names, .has_default = 1,
     .def_text = "xgboost", .only_for = "gbdt",
     .help = "gbdt: the boosting library: xgboost (linked when ./configure finds "
             "libxgboost-dev) or lightgbm (loaded at run time, gbdt.lightgbm_library)."},
    {.path = "model.objective", .type = RT_KEY_STRING, .offset = OFF(gbdt.objective),
     .size = FSIZE(gbdt.objective), .has_default = 1, .def_text = "", .only_for = "gbdt",
     .help = "gbdt: the library's objective, e.g. binary:logistic, multi:softprob, "
             "reg:squarederror (xgboost) or binary, multiclass, regression (lightgbm); "
             "required."},
    {.path = "model.num_rounds", .type = RT_KEY_INT, .offset = OFF(gbdt.num_rounds),
     .min = 1, .max = 10000000, .has_default = 1, .def = 100, .only_for = "gbdt",
     .help = "gbdt: boosting rounds in all (a resumed run continues up to it)."},
    {.path = "model.num_class", .type = RT_KEY_INT, .offset = OFF(gbdt.num_class),
     .min = 0, .max = 1 << 20, .has_default = 1, .def = 0, .only_for = "gbdt",
     .help = "gbdt: classes of a multiclass objective; 0: from the data (largest label + 1)."},
    {.path = "model.params", .type = RT_KEY_PARAMS, .offset = OFF(gbdt.param_keys),
     .size = RT_GBDT_MAX_PARAMS, .aux = OFF(gbdt.num_params), .only_for = "gbdt",
     .help = "gbdt: the library's own parameters, a group of numbers, strings and "
             "booleans passed as text, e.g. { max_depth = 6; eta = 0.3; } (at most 64); "
             "the override model.params.NAME=VALUE adds or replaces one. "
             "rtrain sets the threads (scaling.threads_per_worker), the seed (train.seed) "
             "and the distribution itself."},
    STR_D("gbdt.lightgbm_library", gbdt.lightgbm_library, "",
          "Path of lib_lightgbm.so for model.library = \"lightgbm\"; \"\": found next to an "
          "installed Python lightgbm package."),

    /* ---- data ---- */
    {.path = "data.format", .type = RT_KEY_ENUM, .offset = OFF(data.format),
     .size = FSIZE(data.format), .name_of = rt_dataset_format_name,
     .count = rt_dataset_format_count, .has_default = 1, .def_text = "idx",
     .help = "Dataset format: idx = MNIST-style idx files (data.train.images/labels), "
             "gzip-compressed or raw; hdf5 = arrays in an HDF5 file (data.train.file, .x, "
             ".y); csv = a table with a header row (data.train.file, data.target, "
             "data.features)."},
    STR_D("data.dir", data.dir, "",
          "Directory that relative data.train/data.test paths are taken from; \"\": "
          "/usr/share/datasets/fashion-mnist for data.format = \"idx\" (the installed "
          "FashionMNIST), the current directory otherwise. A relative data.dir is taken "
          "from the current directory (where rtrain is started), as in a shell, not from "
          "the config file's directory."),
    STR_D("data.train.images", data.train_images, "train-images-idx3-ubyte.gz",
          "Training images (relative to data.dir unless absolute)."),
    STR_D("data.train.labels", data.train_labels, "train-labels-idx1-ubyte.gz",
          "Training labels (relative to data.dir unless absolute)."),
    STR_D("data.test.images", data.test_images, "t10k-images-idx3-ubyte.gz",
          "Evaluation images (relative to data.dir unless absolute)."),
    STR_D("data.test.labels", data.test_labels, "t10k-labels-idx1-ubyte.gz",
          "Evaluation labels (relative to data.dir unless absolute)."),
    STR_D("data.train.file", data.train_file, "",
          "hdf5/csv: the training file (relative to data.dir unless absolute; csv may be "
          "gzip-compressed)."),
    STR_D("data.train.x", data.train_x, "/x",
          "hdf5: path of the input dataset in the file, [N, ...] of any numeric type "
          "(converted to float32)."),
    STR_D("data.train.y", data.train_y, "/y",
          "hdf5: path of the target dataset, [N] integer class labels, or [N] / [N, K] "
          "values for a regression or bce_with_logits loss."),
    STR_D("data.test.file", data.test_file, "",
          "hdf5/csv: the evaluation file; \"\": the last data.test_fraction of the "
          "training file's rows."),
    STR_D("data.test.x", data.test_x, "",
          "hdf5: input dataset of the evaluation file; \"\": data.train.x."),
    STR_D("data.test.y", data.test_y, "",
          "hdf5: target dataset of the evaluation file; \"\": data.train.y."),
    DOUBLE_D("data.test_fraction", data.test_fraction, 0, 0.9, 0,
             "hdf5/csv without data.test.file: evaluate on this fraction of the training "
             "file's rows, the last ones in file order (train on the rest), as Ray Data's "
             "train_test_split(shuffle = False). Shuffle the file first if its rows are "
             "sorted."),
    STR_D("data.target", data.target, "",
          "csv: the target column's name (a number for regression losses; an integer "
          "label or a text class name for classification losses)."),
    {.path = "data.features", .type = RT_KEY_STRING_LIST, .offset = OFF(data.features),
     .size = RT_MAX_COLUMNS, .aux = OFF(data.num_features),
     .help = "csv: feature columns in order, e.g. [\"carat\", \"depth\"]; []: every column "
             "but the target."},
    {.path = "data.categorical", .type = RT_KEY_STRING_LIST, .offset = OFF(data.categorical),
     .size = RT_MAX_COLUMNS, .aux = OFF(data.num_categorical),
     .help = "csv: feature columns holding categories (text), one-hot encoded with the "
             "categories of the training split, sorted; a category the training split "
             "does not have is an error at evaluation."},
    ENUM_TEXT("data.fill_missing", data.fill_missing, fill_names, "none",
              "csv: an empty cell is an error (none), 0 (zero), or the column's mean over "
              "the training split (mean); categorical: all-zero one-hot for zero/mean. An "
              "empty target is always an error."),
    ENUM_TEXT("data.cache", data.cache, cache_names, "rank",
              "hdf5: rank = each rank reads the split into memory once; node = read once per "
              "node into memory the node's ranks share (8 ranks on a node hold one copy); "
              "none = samples are read from the file as batches need them (for data larger "
              "than memory)."),
    BOOL_D("data.standardize", data.standardize, 0,
           "Standardise every input value: (x - mean) / std with the mean and standard "
           "deviation of the training split (std 0 counts as 1), as scikit-learn's "
           "StandardScaler; stored in checkpoints and params.json."),
    BOOL_D("data.standardize_target", data.standardize_target, 0,
           "Regression: train on standardised targets as well; the model then predicts "
           "standardised values, and val_mse/val_rmse/val_mae are reported in the "
           "targets' own units."),
    INT_D("data.batch_size", data.batch_size, 1, 1 << 20, 64,
          "Samples per worker per step. Give batch_size or global_batch_size, not both. "
          "On the command line, setting one of them replaces the other one given in "
          "the file."),
    INT_D("data.global_batch_size", data.global_batch_size, 0, 1 << 30, 0,
          "Samples per step over all workers, split evenly between them (rtrain needs it "
          "to divide by the number of workers); the same global batches are seen whatever "
          "the number of workers. 0: batch_size times the number of workers. When set, "
          "batch_size is ignored."),
    INT_D("data.eval_batch_size", data.eval_batch_size, 0, 1 << 20, 0,
          "Samples per worker per evaluation step; 0: the training batch per worker."),
    BOOL_D("data.shuffle", data.shuffle, 1,
           "Shuffle the training set every epoch (order depends on train.seed and the "
           "epoch only, not on the number of workers)."),
    INT64_D("data.shuffle_block", data.shuffle_block, -1, 2147483647.0, -1,
            "0: shuffle all training samples; N: shuffle blocks of N consecutive samples and "
            "the samples within each block, so that a batch reads few chunks of a file "
            "streamed with data.cache = \"none\"; -1: the streamed dataset's chunk rows, "
            "else 0. The order depends only on train.seed, the epoch and N."),
    BOOL_D("data.drop_last", data.drop_last, 0,
           "Drop the last global batch of an epoch when it is smaller than the others."),
    INT_D("data.prefetch", data.prefetch, -1, 64, -1,
          "Batches prepared ahead by a loader thread; 0: load in the training thread; -1: "
          "2 when the node has a core to spare for the loader thread (the ranks on the node "
          "times scaling.threads_per_worker is below its cores), else 0 (handing batches "
          "between threads on busy cores costs more than loading them)."),
    {.path = "data.normalize", .type = RT_KEY_NORMALIZE, .offset = OFF(data.transform.normalize),
     .has_default = 1, .def = 0,
     .help = "false: pixels become x/255 (torchvision ToTensor); { mean = M; std = S; }: "
             "(x/255 - M) / S (ToTensor + Normalize). Setting data.normalize.mean or .std "
             "turns it on; both must be given."},
    {.path = "data.normalize.mean", .type = RT_KEY_CHANNELS, .offset = OFF(data.transform.mean),
     .size = RT_MAX_CHANNELS, .aux = OFF(data.transform.num_mean),
     .min = -1e6, .max = 1e6, .has_default = 1, .def = 0, .flags = RT_KEYF_NORMALIZE_PART,
     .help = "Mean subtracted after scaling to [0, 1]: one number, or one per channel "
             "(e.g. [0.485, 0.456, 0.406])."},
    {.path = "data.normalize.std", .type = RT_KEY_CHANNELS, .offset = OFF(data.transform.std),
     .size = RT_MAX_CHANNELS, .aux = OFF(data.transform.num_std),
     .min = 1e-12, .max = 1e6, .has_default = 1, .def = 1, .flags = RT_KEYF_NORMALIZE_PART,
     .help = "Standard deviation divided by after subtracting the mean: one number, or one "
             "per channel."},
    INT_D("data.augment.crop_padding", data.augment.crop_padding, 0, 64, 0,
          "Training images: pad each side with this many pixels (of the value a black pixel "
          "has after data.normalize), then crop a random window of the original size "
          "(torchvision RandomCrop(size, padding)); 0: off."),
    BOOL_D("data.augment.hflip", data.augment.hflip, 0,
           "Training images: flip left-right with probability 1/2 (RandomHorizontalFlip). "
           "Random choices depend only on (train.seed, epoch, sample index): a resumed run "
           "and any number of ranks see the same images."),

    /* ---- optimizer ---- */
    {.path = "optimizer.type", .type = RT_KEY_ENUM, .offset = OFF(optimizer.type),
     .name_of = optim_name, .from_name = rt_optim_type_from_name, .nvalues = RT_OPTIM_ADAMW + 1,
     .has_default = 1, .def = RT_OPTIM_SGD, .reset = reset_optimizer,
     .flags = RT_KEYF_SELECTOR,
     .help = "sgd, adam or adamw, with torch.optim's update rules and defaults."},
    /* rtrain's default differs from the module's SGD default (0.01): 1e-3
     * for every type, as Ray Train's examples use. */
    FLOAT_D("optimizer.lr", optimizer.lr, 0, 1e3, 1e-3, "Base learning rate."),
    FLOAT_MO("optimizer.momentum", optimizer.momentum, 0, 1, "sgd", "SGD momentum."),
    FLOAT_MO("optimizer.dampening", optimizer.dampening, 0, 1, "sgd",
             "SGD dampening for momentum."),
    BOOL_MO("optimizer.nesterov", optimizer.nesterov, "sgd",
            "SGD Nesterov momentum (needs momentum > 0 and dampening = 0)."),
    FLOAT_M("optimizer.weight_decay", optimizer.weight_decay, 0, 1e3,
            "sgd/adam: L2 penalty added to the gradient; adamw: decoupled weight decay "
            "(default 0.01 for adamw, 0 otherwise)."),
    {.path = "optimizer.betas", .type = RT_KEY_FLOAT_PAIR, .offset = OFF(optimizer.beta1),
     .aux = OFF(optimizer.beta2), .min = 0, .max = 1, .only_for = "adam adamw",
     .help = "Adam/AdamW coefficients [beta1, beta2] of the running averages."},
    FLOAT_MO("optimizer.eps", optimizer.eps, 0, 1, "adam adamw",
             "Adam/AdamW term added to the denominator."),

    /* ---- schedule ---- */
    {.path = "schedule.type", .type = RT_KEY_ENUM, .offset = OFF(schedule.type),
     .name_of = schedule_name, .from_name = rt_schedule_type_from_name,
     .nvalues = RT_SCHEDULE_COSINE + 1, .flags = RT_KEYF_SELECTOR,
     .help = "constant: optimizer.lr throughout; step: lr * gamma^floor(epoch / "
             "step_epochs); cosine: from lr down to min_lr over all train.epochs."},
    INT_MO("schedule.step_epochs", schedule.step_epochs, 1, 1 << 20, "step",
          "step: epochs between learning-rate decays."),
    FLOAT_MO("schedule.gamma", schedule.gamma, 0, 1e3, "step", "step: decay factor."),
    FLOAT_MO("schedule.min_lr", schedule.min_lr, 0, 1e3, "cosine", "cosine: final learning rate."),
    INT64_M("schedule.warmup_steps", schedule.warmup_steps, 0, 1e15,
            "Optimizer steps of linear warm-up before the schedule (any type)."),
    FLOAT_M("schedule.warmup_start_factor", schedule.warmup_start_factor, 0, 1,
            "Warm-up starts at this fraction of the learning rate."),

    /* ---- train ---- */
    INT_D("train.epochs", train.epochs, 1, 1 << 24, 1, "Passes over the training set."),
    INT64_D("train.seed", train.seed, 0, 9.2e18, 0,
            "Seed of every random stream (initial weights, shuffling, dropout): same "
            "config and same world size give the same bits. Write values above "
            "2147483647 with an L suffix (libconfig)."),
    INT_D("train.accumulate_steps", train.accumulate_steps, 1, 1 << 20, 1,
          "Batches whose gradients are summed before each optimizer step."),
    INT64_D("train.steps_per_epoch", train.steps_per_epoch, 0, 1e15, 0,
            "0: whole epochs; N: end each epoch after N steps (quick experiments)."),
    INT_D("train.eval_every", train.eval_every, 0, 1 << 24, 1,
          "Evaluate on the test set every N epochs; 0: never."),
    {.path = "train.loss", .type = RT_KEY_ENUM, .offset = OFF(train.loss),
     .size = FSIZE(train.loss), .name_of = loss_name, .count = rt_loss_count, .has_default = 1, .def_text = "cross_entropy",
     .help = "Classification: cross_entropy on logits (torch.nn.CrossEntropyLoss), nll on "
             "log-probabilities (torch.nn.NLLLoss). Regression (float targets): mse, l1, "
             "smooth_l1 (Huber, beta 1). Binary / multi-label (0/1 targets): "
             "bce_with_logits. Each is the mean over the batch's values, as torch's."},

    /* ---- checkpoint ---- */
    INT_D("checkpoint.num_to_keep", checkpoint.num_to_keep, 0, 1 << 20, 0,
          "Committed checkpoints kept (best by score_attribute, else newest); 0: all. The "
          "newest is never removed."),
    STR_D("checkpoint.score_attribute", checkpoint.score_attribute, "",
          "Reported metric that ranks checkpoints for retention (e.g. \"val_accuracy\"); "
          "\"\": by age."),
    ENUM_TEXT("checkpoint.score_order", checkpoint.score_order, order_names, "max",
              "Whether a higher (max) or lower (min) score_attribute is better."),
    INT_D("checkpoint.frequency", checkpoint.frequency, 0, 1 << 24, 0,
          "Checkpoint every N epochs; 0: only at the end (checkpoint.at_end) or on a "
          "stop signal."),
    BOOL_D("checkpoint.at_end", checkpoint.at_end, 1, "Checkpoint when training ends."),
    BOOL_D("checkpoint.async", checkpoint.async, 0,
           "Write checkpoints in the background: training stops only while the state is "
           "copied to memory; the next checkpoint, and the end of the run, wait for the "
           "write."),

    /* ---- failure ---- */
    INT_D("failure.max_failures", failure.max_failures, -1, 1 << 20, 0,
          "Restarts from the last checkpoint after a failure (-1: unlimited)."),
    DOUBLE_D("failure.step_timeout_s", failure.step_timeout_s, -1, 1e7, -1,
             "Abort when a rank waits longer than this in one training step's collectives "
             "(a hung or stopped rank); -1: automatic, failure.step_timeout_min_s or 20 times "
             "the median step time once 10 steps are measured, whichever is larger (the "
             "start-up's bound, failure.setup_timeout_s, until then); 0: no watchdog."),
    DOUBLE_D("failure.step_timeout_min_s", failure.step_timeout_min_s, 0, 1e7, 300,
             "The smallest automatic step timeout (failure.step_timeout_s = -1)."),
    DOUBLE_D("failure.setup_timeout_s", failure.setup_timeout_s, 0, 1e7, 1800,
             "Abort when a collective of the start-up (data, model, run directory, the "
             "resume and its checkpoint reads) waits longer: a rank frozen before training; "
             "0: no bound."),
    DOUBLE_D("failure.checkpoint_timeout_s", failure.checkpoint_timeout_s, 0, 1e7, 600,
             "Abort when one checkpoint save takes longer than this plus 1 s per 10 MB of "
             "checkpoint (a full or failing file system); 0: no bound."),

    /* ---- tune (rtrain-tune; rtrain ignores these) ---- */
    INT_D("tune.num_samples", tune.num_samples, 1, 1 << 20, 1,
          "Trials drawn from the search space (times the size of its grid domains)."),
    INT64_D("tune.seed", tune.seed, 0, 9.2e18, 0,
            "Seed of the search: trial i's values are a function of (seed, i) only."),
    STR_D("tune.metric", tune.metric, "val_loss",
          "Reported metric the trials are ranked by (a key of result.json)."),
    ENUM_TEXT("tune.mode", tune.mode, order_names, "min",
              "Whether a higher (max) or lower (min) tune.metric is better."),
    INT_D("tune.ranks_per_trial", tune.ranks_per_trial, 1, 1 << 20, 1,
          "MPI ranks of each trial: mpirun -np N makes N / ranks_per_trial groups that run "
          "trials side by side."),
    INT_D("tune.max_failures", tune.max_failures, 0, 1000, 0,
          "Retries of a trial that failed at run time, each from its newest checkpoint "
          "(input errors are never retried)."),
    ENUM_TEXT("tune.scheduler", tune.scheduler, scheduler_names, "fifo",
              "fifo: every trial runs to its end; asha: asynchronous successive halving "
              "(Ray Tune's ASHAScheduler) stops trials below the (1 - 1/reduction_factor) "
              "quantile of their rung; asha_promote: the paper's rule, every trial pauses at "
              "each rung and only the best 1/reduction_factor of a rung are promoted; median: "
              "Ray's MedianStoppingRule, a trial whose best is below the median of the "
              "others' running means stops (after grace_period, with 3 others); pbt: "
              "population based training, every perturbation_interval reports the bottom "
              "quantile_fraction of the trials continue from a top trial's checkpoint with "
              "its values perturbed."),
    INT_D("tune.grace_period", tune.grace_period, 1, 1 << 24, 1,
          "ASHA: the first rung, in reports (epochs); median: reports before which no "
          "trial stops and which the running means leave out."),
    INT_D("tune.reduction_factor", tune.reduction_factor, 2, 1 << 10, 3,
          "ASHA: rungs at grace_period x reduction_factor^k; about 1 in reduction_factor "
          "trials passes each."),
    INT_D("tune.max_t", tune.max_t, 0, 1 << 24, 0,
          "ASHA: the last rung's bound in reports; 0: train.epochs."),
    INT_D("tune.perturbation_interval", tune.perturbation_interval, 1, 1 << 24, 2,
          "PBT: reports between two exploit/explore decisions."),
    DOUBLE_D("tune.quantile_fraction", tune.quantile_fraction, 0, 0.5, 0.25,
             "PBT: the bottom fraction of the trials that copy a trial of the top fraction."),
    DOUBLE_D("tune.resample_probability", tune.resample_probability, 0, 1, 0.25,
             "PBT: the chance that an explored value is drawn again from its domain "
             "instead of perturbed (x1.2 or x0.8, or the next choice)."),
    DOUBLE_D("tune.claim_timeout_s", tune.claim_timeout_s, 1, 1e7, 1800,
             "Job arrays: a trial claimed by a task that has not reported for this long is "
             "taken for dead, so that idle tasks stop waiting for it."),

    /* ---- comm ---- */
    {.path = "comm.bucket_mb", .type = RT_KEY_MEGABYTES, .offset = OFF(comm.bucket_bytes),
     .min = 0.01, .max = 4096, .has_default = 1, .def = 4 * MIB,
     .help = "Size in MiB of the gradient buckets all-reduced while backward runs "
             "(torch DDP's bucket_cap_mb, whose default is 25)."},
    ENUM_TEXT("comm.backend", comm.backend, comm_backend_names, "auto",
              "How GPU tensors are reduced across ranks: nccl; mpi = through host memory "
              "(slower; also works for several ranks sharing one GPU, which NCCL refuses); "
              "auto = nccl on GPUs. CPU training always uses MPI."),
};

#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

int rt_config_num_keys(void) { return NKEYS; }
const rt_key *rt_config_key(int i) { return (i >= 0 && i < NKEYS) ? &keys[i] : NULL; }
int rt_config_key_index(const rt_key *k) { return (int)(k - keys); }

const rt_key *rt_config_find_key(const char *path)
{
    for (int i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].path, path) == 0)
            return &keys[i];
    return NULL;
}

int rt_config_is_group(const char *prefix)
{
    size_t n = strlen(prefix);
    for (int i = 0; i < NKEYS; i++)
        if (strncmp(keys[i].path, prefix, n) == 0 && keys[i].path[n] == '.')
            return 1;
    return 0;
}

/* Length of the top-level group name of a path ("optimizer" in "optimizer.lr"). */
static size_t group_len(const char *path)
{
    const char *dot = strchr(path, '.');
    return dot ? (size_t)(dot - path) : strlen(path);
}

const rt_key *rt_config_group_selector(const rt_key *k)
{
    size_t n = group_len(k->path);
    for (int i = 0; i < NKEYS; i++)
        if ((keys[i].flags & RT_KEYF_SELECTOR) && group_len(keys[i].path) == n &&
            strncmp(keys[i].path, k->path, n) == 0)
            return &keys[i];
    return NULL;
}

static void store_default(const rt_key *k, rt_config *cfg)
{
    char *p = (char *)cfg + k->offset;
    switch (k->type) {
    case RT_KEY_INT:
    case RT_KEY_BOOL:
    case RT_KEY_NORMALIZE: *(int *)p = (int)k->def; break;
    case RT_KEY_INT64: *(int64_t *)p = (int64_t)k->def; break;
    case RT_KEY_FLOAT: *(float *)p = (float)k->def; break;
    case RT_KEY_CHANNELS:   /* one value for every channel */
        *(float *)p = (float)k->def;
        *(int *)((char *)cfg + k->aux) = 1;
        break;
    case RT_KEY_DOUBLE: *(double *)p = k->def; break;
    case RT_KEY_MEGABYTES: *(long long *)p = (long long)k->def; break;
    case RT_KEY_STRING: snprintf(p, k->size, "%s", k->def_text); break;
    case RT_KEY_PARAMS: *(int *)((char *)cfg + k->aux) = 0; break;
    case RT_KEY_ENUM:
        if (k->size > 0)
            snprintf(p, k->size, "%s", k->def_text);
        else
            *(int *)p = (int)k->def;
        break;
    default: break;  /* lists have no table defaults */
    }
}

void rt_config_apply_table_defaults(rt_config *cfg, const char *group)
{
    size_t n = group ? strlen(group) : 0;
    for (int i = 0; i < NKEYS; i++) {
        const rt_key *k = &keys[i];
        if (!k->has_default || (k->flags & RT_KEYF_SELECTOR))
            continue;
        if (n > 0 && !(group_len(k->path) == n && strncmp(k->path, group, n) == 0))
            continue;
        store_default(k, cfg);
    }
}

void rt_config_defaults(rt_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    rt_model_spec_default(&cfg->model, RT_ARCH_MLP);
    rt_optim_opts_default(&cfg->optimizer, RT_OPTIM_SGD);
    rt_schedule_opts_default(&cfg->schedule);
    for (int i = 0; i < NKEYS; i++)
        if (keys[i].flags & RT_KEYF_SELECTOR && keys[i].has_default)
            store_default(&keys[i], cfg);
    rt_config_apply_table_defaults(cfg, NULL);
}

/* ---- layer fields ------------------------------------------------------------ */
#define LOFF(field) offsetof(rt_layer_spec, field)

/* "type" is not in this table: it selects the defaults
 * (rt_layer_spec_default) and is handled by the layer parser. */
static const rt_key layer_keys[] = {
    {.path = "out", .type = RT_KEY_INT, .offset = LOFF(out), .min = 1, .max = 1 << 20,
     .help = "linear: output features; conv2d/basicblock: output channels."},
    {.path = "kernel", .type = RT_KEY_INT, .offset = LOFF(kernel), .min = 1, .max = 31,
     .help = "conv2d/maxpool2d: kernel size (square)."},
    {.path = "stride", .type = RT_KEY_INT, .offset = LOFF(stride), .min = 0, .max = 31,
     .help = "conv2d/basicblock: stride (default 1); maxpool2d: stride (0: = kernel)."},
    {.path = "padding", .type = RT_KEY_INT, .offset = LOFF(padding), .min = 0, .max = 31,
     .help = "conv2d/maxpool2d: zero padding on each side (default 0)."},
    {.path = "bias", .type = RT_KEY_BOOL, .offset = LOFF(bias), .min = 0, .max = 1,
     .help = "linear/conv2d: learn an additive bias (default true)."},
    {.path = "p", .type = RT_KEY_FLOAT, .offset = LOFF(p), .min = 0, .max = 1,
     .help = "dropout: probability of zeroing an element (default 0.5)."},
    {.path = "eps", .type = RT_KEY_FLOAT, .offset = LOFF(eps), .min = 0, .max = 1,
     .help = "batchnorm2d: added to the variance (default 1e-5)."},
    {.path = "momentum", .type = RT_KEY_FLOAT, .offset = LOFF(momentum), .min = 0, .max = 1,
     .help = "batchnorm2d: running statistics update factor (default 0.1)."},
};

#define NLAYER_KEYS ((int)(sizeof layer_keys / sizeof layer_keys[0]))
/* Field i of this table is bit i of the layer types' RT_LAYER_FIELD_*
 * masks (nn.h), which say which fields each type reads. */
_Static_assert(RT_LAYER_FIELD_MOMENTUM == 1u << (NLAYER_KEYS - 1),
               "layer_keys lists the RT_LAYER_FIELD_* fields in their order");

int rt_config_num_layer_keys(void) { return NLAYER_KEYS; }
const rt_key *rt_config_layer_key(int i)
{
    return (i >= 0 && i < NLAYER_KEYS) ? &layer_keys[i] : NULL;
}

const rt_key *rt_config_find_layer_key(const char *name)
{
    for (int i = 0; i < NLAYER_KEYS; i++)
        if (strcmp(layer_keys[i].path, name) == 0)
            return &layer_keys[i];
    return NULL;
}

/* ---- enums ------------------------------------------------------------------- */
int rt_config_enum_count(const rt_key *k)
{
    if (k->count)
        return k->count();
    if (!k->names)
        return k->nvalues;
    int n = 0;
    while (k->names[n])
        n++;
    return n;
}

const char *rt_config_enum_name(const rt_key *k, int value)
{
    if (value < 0 || value >= rt_config_enum_count(k))
        return NULL;
    return k->names ? k->names[value] : k->name_of(value);
}

int rt_config_enum_value(const rt_key *k, const char *name)
{
    if (k->from_name)
        return k->from_name(name);
    for (int i = 0; name && i < rt_config_enum_count(k); i++) {
        const char *candidate = rt_config_enum_name(k, i);
        if (candidate && strcmp(candidate, name) == 0)
            return i;
    }
    return -1;
}

void rt_config_enum_list(const rt_key *k, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < rt_config_enum_count(k) && used < n; i++) {
        const char *name = rt_config_enum_name(k, i);
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "",
                                 name ? name : "?");
    }
}

const char *rt_config_enum_get(const rt_key *k, const void *base)
{
    const char *p = (const char *)base + k->offset;
    if (k->size > 0)
        return p;
    const char *name = rt_config_enum_name(k, *(const int *)p);
    return name ? name : "?";
}

/* ---- formatting ------------------------------------------------------------- */
/* Whole numbers as plain integers ("30", not the "3e+01" of %.1g). */
static int format_integral(char *buf, size_t n, double v)
{
    if (v != floor(v) || fabs(v) >= 1e15)
        return 0;
    snprintf(buf, n, "%.0f", v);
    return 1;
}

void rt_config_format_float(char *buf, size_t n, float v)
{
    if (format_integral(buf, n, (double)v))
        return;
    /* The fewest significant digits (up to FLT_DECIMAL_DIG = 9) that read
     * back as the same float: 0.001f prints as "0.001", not 0.00100000005. */
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, n, "%.*g", digits, (double)v);
        if ((float)strtod(buf, NULL) == v)
            return;
    }
}

static void format_double(char *buf, size_t n, double v)
{
    if (format_integral(buf, n, v))
        return;
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, n, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

void rt_config_format_value(const rt_key *k, const void *base, char *buf, size_t n)
{
    const char *p = (const char *)base + k->offset;
    switch (k->type) {
    case RT_KEY_INT: snprintf(buf, n, "%d", *(const int *)p); break;
    case RT_KEY_INT64: snprintf(buf, n, "%lld", (long long)*(const int64_t *)p); break;
    case RT_KEY_FLOAT: rt_config_format_float(buf, n, *(const float *)p); break;
    case RT_KEY_DOUBLE: format_double(buf, n, *(const double *)p); break;
    case RT_KEY_BOOL: snprintf(buf, n, "%s", *(const int *)p ? "true" : "false"); break;
    case RT_KEY_STRING: snprintf(buf, n, "\"%s\"", p); break;
    case RT_KEY_ENUM: snprintf(buf, n, "\"%s\"", rt_config_enum_get(k, base)); break;
    case RT_KEY_MEGABYTES: format_double(buf, n, (double)*(const long long *)p / MIB); break;
    case RT_KEY_NORMALIZE:
        snprintf(buf, n, "%s", *(const int *)p ? "{ mean; std; }" : "false");
        break;
    case RT_KEY_INT_LIST: {
        int count = *(const int *)((const char *)base + k->aux);
        size_t used = (size_t)snprintf(buf, n, "[");
        for (int i = 0; i < count && used < n; i++)
            used += (size_t)snprintf(buf + used, n - used, "%s%d", i ? ", " : "",
                                     ((const int *)p)[i]);
        if (used < n)
            snprintf(buf + used, n - used, "]");
        break;
    }
    case RT_KEY_CHANNELS: {
        int count = *(const int *)((const char *)base + k->aux);
        size_t used = 0;
        for (int i = 0; i < count && used < n; i++) {
            char v[32];
            rt_config_format_float(v, sizeof v, ((const float *)p)[i]);
            used += (size_t)snprintf(buf + used, n - used, "%s%s%s", i ? ", " : count > 1 ? "[" : "",
                                     v, i == count - 1 && count > 1 ? "]" : "");
        }
        break;
    }
    case RT_KEY_PARAMS: {
        const rt_config *c = base;
        size_t used = (size_t)snprintf(buf, n, "{");
        for (int i = 0; i < c->gbdt.num_params && used < n; i++)
            used += (size_t)snprintf(buf + used, n - used, " %s = \"%s\";",
                                     c->gbdt.param_keys[i], c->gbdt.param_values[i]);
        if (used < n)
            snprintf(buf + used, n - used, " }");
        break;
    }
    case RT_KEY_STRING_LIST: {
        int count = *(const int *)((const char *)base + k->aux);
        const char (*names)[RT_COLUMN_NAME_MAX] = (const void *)p;
        size_t used = (size_t)snprintf(buf, n, "[");
        for (int i = 0; i < count && used < n; i++)
            used += (size_t)snprintf(buf + used, n - used, "%s\"%s\"", i ? ", " : "",
                                     names[i]);
        if (used < n)
            snprintf(buf + used, n - used, "]");
        break;
    }
    case RT_KEY_FLOAT_PAIR: {
        char a[32], b[32];
        rt_config_format_float(a, sizeof a, *(const float *)p);
        rt_config_format_float(b, sizeof b, *(const float *)((const char *)base + k->aux));
        snprintf(buf, n, "[%s, %s]", a, b);
        break;
    }
    case RT_KEY_LAYERS: {
        int count = *(const int *)((const char *)base + k->aux);
        snprintf(buf, n, count ? "(%d layers)" : "()", count);
        break;
    }
    }
}

void rt_config_describe_type(const rt_key *k, char *buf, size_t n)
{
    char lo[32], hi[32], list[256];
    format_double(lo, sizeof lo, k->min);
    format_double(hi, sizeof hi, k->max);
    switch (k->type) {
    case RT_KEY_INT:
    case RT_KEY_INT64: snprintf(buf, n, "integer in %s..%s", lo, hi); break;
    case RT_KEY_FLOAT:
    case RT_KEY_DOUBLE:
    case RT_KEY_MEGABYTES: snprintf(buf, n, "number in %s..%s", lo, hi); break;
    case RT_KEY_BOOL: snprintf(buf, n, "true or false"); break;
    case RT_KEY_STRING: snprintf(buf, n, "string"); break;
    case RT_KEY_ENUM:
        rt_config_enum_list(k, list, sizeof list);
        snprintf(buf, n, "one of: %s", list);
        break;
    case RT_KEY_INT_LIST:
        snprintf(buf, n, "list of up to %zu integers in %s..%s", k->size, lo, hi);
        break;
    case RT_KEY_STRING_LIST:
        snprintf(buf, n, "list of up to %zu names (strings)", k->size);
        break;
    case RT_KEY_PARAMS: snprintf(buf, n, "group of up to %zu scalars", k->size); break;
    case RT_KEY_CHANNELS:
        snprintf(buf, n, "number in %s..%s, or a list of up to %zu (one per channel)", lo, hi,
                 k->size);
        break;
    case RT_KEY_FLOAT_PAIR: snprintf(buf, n, "two numbers [a, b] in %s..%s", lo, hi); break;
    case RT_KEY_NORMALIZE: snprintf(buf, n, "false or a group { mean = M; std = S; }"); break;
    case RT_KEY_LAYERS: snprintf(buf, n, "list of up to %zu layer groups", k->size); break;
    }
}
