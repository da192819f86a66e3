/* rtrain-tune: hyperparameter search inside one MPI job, a thin main over
 * rt_tune_run (rtrain/tune.h; the protocols are described in src/tune/).
 *
 *   rtrain-tune [--list] CONFIG [key=value | key=domain(...) ...]
 *   mpirun -np N rtrain-tune [--resume-errored | --restart-errored] CONFIG ...
 *   sbatch --array=0-3 jobs/tune-array.sbatch CONFIG run.name=NAME ...
 *
 * The experiment is STORAGE/NAME (run.storage_path, run.name; NAME defaults
 * to tune_<config file name>, so the same command finds it again). --list
 * prints every trial's values and runs nothing. Exit codes as rtrain's:
 * 0 the sweep went through (failed trials are recorded, see the table),
 * 2 an input error, 3 stopped by a signal (run the same command again),
 * 1 a failure of the sweep itself. */
#include <stdio.h>
#include <string.h>
#include "rtrain/rtrain.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: rtrain-tune [--list] CONFIG [key=value | 'key=domain(args)' ...]\n"
               "       mpirun -np N rtrain-tune [--resume-errored | --restart-errored] CONFIG ...\n"
               "domains: uniform(a, b), quniform(a, b, q), loguniform(a, b), randint(a, b),\n"
               "         choice(v, ...), grid(v, ...);\n"
               "in the file: key = { loguniform = [a, b]; };\n"
               "schedulers (tune.scheduler): fifo, asha, asha_promote, median, pbt\n");
}

int main(int argc, char **argv)
{
    rt_tune_errored errored = RT_TUNE_ERRORED_KEEP;
    int list = 0, first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (!strcmp(argv[first], "--list"))
            list = 1;
        else if (!strcmp(argv[first], "--resume-errored"))
            errored = RT_TUNE_ERRORED_RESUME;
        else if (!strcmp(argv[first], "--restart-errored"))
            errored = RT_TUNE_ERRORED_RESTART;
        else if (!strcmp(argv[first], "--help") || !strcmp(argv[first], "-h")) {
            usage(stdout);
            return RT_EXIT_OK;
        } else {
            fprintf(stderr, "rtrain-tune: error: unknown option '%s'\n", argv[first]);
            usage(stderr);
            return RT_EXIT_INPUT;
        }
    }
    if (first >= argc) {
        usage(stderr);
        return RT_EXIT_INPUT;
    }
    char *config = argv[first];
    if (list) {   /* no MPI */
        if (rt_tune_list(stdout, config, argc - first - 1, argv + first + 1) != RT_OK) {
            fprintf(stderr, "rtrain-tune: error: %s\n", rt_error_message());
            return RT_EXIT_INPUT;
        }
        return RT_EXIT_OK;
    }
    rt_session *s = NULL;
    rt_status st = rt_session_init(&s, &argc, &argv);
    if (st == RT_OK)
        st = rt_tune_run(s, config, argc - first - 1, argv + first + 1, errored, NULL, NULL,
                         stdout);
    int code = rt_session_exit_code(s, st);
    rt_session_finalize(s);
    return code;
}
