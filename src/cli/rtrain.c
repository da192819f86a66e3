/* rtrain: train a model described by a config file on every MPI rank.
 *   mpirun -np N rtrain CONFIG [key=value ...]
 * A thin main: options, the session, the config, rt_trainer_run (the
 * library's training loop, include/rtrain/train.h), the exit code.
 * Exit codes: 0 success, 1 runtime failure, 2 input error (see README). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "rtrain/config.h"
#include "rtrain/run.h"
#include "rtrain/train.h"
#include "config.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rtrain [--profile] CONFIG [key=value ...]\n"
            "       rtrain --help-config   list every configuration key\n"
            "       rtrain --version\n"
            "       rtrain predict CKPT DATA -o OUT   (= rtrain-predict: a trained model's\n"
            "                                         predictions, see rtrain-predict --help)\n"
            "Trains the model described by CONFIG on every MPI rank, e.g.\n"
            "  mpirun -np 2 rtrain examples/fashion_mnist_mlp.cfg train.epochs=1\n"
            "Overrides use dotted keys and libconfig values: optimizer.lr=0.01,\n"
            "model.hidden=[256,256], run.name=\"trial-1\".\n"
            "--profile (= run.profile=true) prints where the time goes: each layer's\n"
            "forward and backward, optimizer, data and communication waits, checkpoints.\n");
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
        char backends[128];
        rt_backend_list(backends, sizeof backends);
        printf("rtrain %s (backends: %s", PACKAGE_VERSION, backends);
        if (rt_gpu_available() == RT_OK)
            printf("; GPUs visible: %d", rt_gpu_count());
        else if (rt_gpu_built())
            printf("; no GPU: %s", rt_error_message());
        rt_error_clear();
        printf(")\n");
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
    int info = handle_info_options(argc, argv);
    if (info >= 0)
        return info;

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
