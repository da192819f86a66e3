/* rtrain: train a model described by a config file on every MPI rank.
 *   mpirun -np N rtrain CONFIG [key=value ...]
 *   rtrain --check [--world-size N] CONFIG [key=value ...]
 * A thin main: options, the session, the config, rt_trainer_run (the
 * library's training loop, include/rtrain/train.h), the exit code.
 * --check runs rt_trainer_check in one process without initialising MPI,
 * so that it works on a login node without mpirun.
 * Exit codes: 0 success, 1 runtime failure, 2 input error (see README). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "rtrain/config.h"
#include "rtrain/run.h"
#include "rtrain/train.h"
#include "config.h"
#include "cli/commit.h"   /* RT_GIT_COMMIT, made by make (src/cli/local.mk) */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rtrain [--profile] CONFIG [key=value ...]\n"
            "       rtrain --check [--world-size N] CONFIG [key=value ...]\n"
            "       rtrain --help-config   list every configuration key\n"
            "       rtrain --version\n"
            "       rtrain predict CKPT DATA -o OUT   (= rtrain-predict: a trained model's\n"
            "                                         predictions, see rtrain-predict --help)\n"
            "Trains the model described by CONFIG on every MPI rank, e.g.\n"
            "  mpirun -np 2 rtrain examples/fashion_mnist_mlp.cfg train.epochs=1\n"
            "Overrides use dotted keys and libconfig values: optimizer.lr=0.01,\n"
            "model.hidden=[256,256], run.name=\"trial-1\".\n"
            "--profile (= run.profile=true) prints where the time goes: each layer's\n"
            "forward and backward, optimizer, data and communication waits, checkpoints.\n"
            "--check checks CONFIG in one process, without mpirun and without training:\n"
            "the config, every dataset's shape, the model; prints the resolved config,\n"
            "the layers, the memory per rank and how the global batch splits over\n"
            "--world-size (-n) N ranks (default: scaling.num_workers, else 1). It exits\n"
            "0, or with the message and exit code the run would give.\n");
}

/* --check and --world-size N (-n N, --world-size=N), wherever they stand,
 * taken out of argv. Returns 0, or RT_EXIT_INPUT after a message. */
static int take_check_options(int *argc, char **argv, int *check, int *world)
{
    int out = 1, world_given = 0;
    *check = 0;
    *world = 0;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i], *value = NULL;
        if (!strcmp(a, "--check")) {
            *check = 1;
            continue;
        }
        if (!strcmp(a, "--world-size") || !strcmp(a, "-n")) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "rtrain: error: %s needs a number of ranks\n", a);
                return RT_EXIT_INPUT;
            }
            value = argv[++i];
        } else if (!strncmp(a, "--world-size=", 13)) {
            value = a + 13;
        } else {
            argv[out++] = argv[i];
            continue;
        }
        char *end = NULL;
        long n = strtol(value, &end, 10);
        if (!*value || *end || n < 1 || n > 1 << 24) {
            fprintf(stderr, "rtrain: error: --world-size '%s' is not a number of ranks "
                    "(1 or more)\n", value);
            return RT_EXIT_INPUT;
        }
        *world = (int)n;
        world_given = 1;
    }
    argv[out] = NULL;
    *argc = out;
    if (world_given && !*check) {
        fprintf(stderr, "rtrain: error: --world-size goes with --check (a run's world size "
                "is the number of ranks mpirun starts)\n");
        return RT_EXIT_INPUT;
    }
    return 0;
}

/* rtrain --check: the config and rt_trainer_check, no MPI. The message and
 * exit code of a failure are those of a run (rt_session_exit_code). */
static int run_check(int argc, char **argv, int world)
{
    static rt_config cfg;
    rt_status st = rt_config_load(&cfg, argv[1], argc - 2, argv + 2);
    if (st == RT_OK) {
        rt_log_set_level(cfg.run.verbose >= 2 ? RT_LOG_DEBUG : RT_LOG_INFO);
        if (world == 0)
            world = cfg.scaling.num_workers > 0 ? cfg.scaling.num_workers : 1;
        st = rt_trainer_check(&cfg, world, stdout);
    }
    return rt_session_exit_code(NULL, st);
}

/* rtrain --version: the version and the backends (and GPUs) as before on
 * the first line; then the commit it was built from, the configure
 * options and what each backend was built with. */
static void print_version(void)
{
    char backends[128];
    rt_backend_list(backends, sizeof backends);
    printf("rtrain %s (backends: %s", PACKAGE_VERSION, backends);
    if (rt_gpu_available() == RT_OK)
        printf("; GPUs visible: %d", rt_gpu_count());
    else if (rt_gpu_built())
        printf("; no GPU: %s", rt_error_message());
    rt_error_clear();
    printf(")\n");
    printf("commit: %s\n", RT_GIT_COMMIT);
    printf("configure options: %s\n", RT_CONFIGURE_ARGS[0] ? RT_CONFIGURE_ARGS : "(none)");
#ifdef RT_HAVE_DNNL
    printf("backend cpu: convolutions and linear layers through oneDNN (OpenBLAS im2col + "
           "sgemm as fall-back: RTRAIN_CPU_CONV, RTRAIN_CPU_GEMM)\n");
#else
    printf("backend cpu: OpenBLAS; convolutions by im2col + sgemm (built without oneDNN)\n");
#endif
    printf("backend naive: reference kernels\n");
#ifdef RT_HAVE_CUDA
    printf("backend cuda: cuBLAS, cuDNN and NCCL (librtrain_cuda, loaded on first use)\n");
#else
    printf("backend cuda: not built (configure found no CUDA toolkit; --with-cuda=DIR)\n");
#endif
#ifdef RT_FAULT_INJECTION
    printf("fault injection: on (test-only RTRAIN_FAULT hooks; --enable-fault-injection)\n");
#else
    printf("fault injection: off\n");
#endif
#ifdef RT_SANITIZERS
    printf("sanitizers: address, undefined (--enable-sanitizers)\n");
#endif
}

/* --profile, wherever it stands, is the override run.profile=true: it
 * becomes the last override (in the argv slot it frees). */
static void take_profile_option(int *argc, char **argv)
{
    static char profile_on[] = "run.profile=true";
    int out = 1, found = 0;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--profile") != 0)
            argv[out++] = argv[i];
        else
            found = 1;
    }
    if (found && out > 1)
        argv[out++] = profile_on;
    argv[out] = NULL;
    *argc = out;
}

/* Options answered without MPI collectives; returns -1 when none applies. */
static int handle_info_options(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return RT_EXIT_INPUT;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return RT_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        print_version();
        return RT_EXIT_OK;
    }
    if (!strcmp(argv[1], "--help-config")) {
        rt_config_print_reference(stdout);
        return RT_EXIT_OK;
    }
    if (argv[1][0] == '-') {
        fprintf(stderr, "rtrain: error: unknown option '%s'\n", argv[1]);
        usage(stderr);
        return RT_EXIT_INPUT;
    }
    return -1;
}

/* `rtrain predict ARGS` is `rtrain-predict ARGS`: the program next to
 * this one, else the one on PATH. */
static int run_predict(char **argv)
{
    char self[4096], path[4096 + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(path, sizeof path, "%s/rtrain-predict", self);
            argv[1] = path;
            execv(path, argv + 1);
        }
    }
    argv[1] = (char *)"rtrain-predict";
    execvp(argv[1], argv + 1);
    fprintf(stderr, "rtrain: error: cannot run rtrain-predict (next to rtrain or on PATH): "
            "install it with rtrain (make install)\n");
    return RT_EXIT_INPUT;
}

int main(int argc, char **argv)
{
    rt_backend_select_blas(argv);
    if (argc > 1 && !strcmp(argv[1], "predict"))
        return run_predict(argv);
    take_profile_option(&argc, argv);
    int check = 0, world = 0;
    int bad = take_check_options(&argc, argv, &check, &world);
    if (bad)
        return bad;
    int info = handle_info_options(argc, argv);
    if (info >= 0)
        return info;
    if (check)
        return run_check(argc, argv, world);

    rt_session *session = NULL;
    rt_status st = rt_session_init(&session, &argc, &argv);
    if (st != RT_OK)
        return rt_session_exit_code(session, st);

    static rt_config cfg;
    st = rt_config_load(&cfg, argv[1], argc - 2, argv + 2);
    st = rt_session_agree(session, st);
    if (st == RT_OK) {
        rt_log_set_level(cfg.run.verbose >= 2 ? RT_LOG_DEBUG : RT_LOG_INFO);
        st = rt_trainer_run(session, &cfg);
    }
    int code = rt_session_exit_code(session, st);
    rt_session_finalize(session);
    return code;
}
