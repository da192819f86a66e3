/* rtrain-predict: predictions of a trained model on new data, on N ranks
 * into one file (a thin main over rt_predict, include/rtrain/train.h).
 *
 *   rtrain-predict CKPT DATA -o predictions.h5|predictions.csv [options]
 *   mpirun -np N rtrain-predict CKPT DATA -o OUT [options]
 *
 * CKPT is a checkpoint directory (RUN/checkpoint_NNNNNN) or its
 * checkpoint.h5; the model, its preprocessing and class names come from
 * it and its run's params.json. Without mpirun it runs as one rank.
 * Exit codes as rtrain's: 0 done, 2 an input error (usage, checkpoint,
 * data, output path), 1 another failure. docs/predict.md has the formats. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rtrain/rtrain.h"

#define DEFAULT_BATCH 256

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rtrain-predict CKPT DATA -o OUT.h5|OUT.csv [options]\n"
            "       mpirun -np N rtrain-predict CKPT DATA -o OUT [options]\n"
            "CKPT is RUN/checkpoint_NNNNNN (or its checkpoint.h5); DATA an HDF5, CSV or idx\n"
            "file like the run's training data. Options:\n"
            "  -o, --output FILE     predictions: .h5 (datasets probabilities or outputs,\n"
            "                        prediction, row) or .csv (row,prediction,p_<class>...)\n"
            "  --format F            idx, hdf5 or csv (default: by DATA's extension, else\n"
            "                        the run's data.format)\n"
            "  --x PATH              hdf5: the inputs' dataset (default: the run's data.test.x)\n"
            "  --label L, --y L      the targets: hdf5 dataset, csv column or idx labels file;\n"
            "                        'none' for data without them (default: the run's; idx: none)\n"
            "  --batch-size N        samples per rank and batch (default %d)\n"
            "  --threads N           compute threads per rank (default: as rtrain)\n"
            "With targets, the evaluation's metrics are printed next to the checkpoint's.\n",
            DEFAULT_BATCH);
}

static int positive(const char *text, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || !end || *end || v < 1 || v > 1 << 24)
        return 0;
    *out = (int)v;
    return 1;
}

/* Returns -1 when the options are good, else the exit code. */
static int parse(int argc, char **argv, rt_predict_opts *o)
{
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **text = !strcmp(a, "-o") || !strcmp(a, "--output") ? &o->output
                            : !strcmp(a, "--format")                       ? &o->format
                            : !strcmp(a, "--x")                            ? &o->x
                            : !strcmp(a, "--label") || !strcmp(a, "--y")   ? &o->label
                                                                           : NULL;
        int *number = !strcmp(a, "--batch-size") ? &o->batch_size
                      : !strcmp(a, "--threads")  ? &o->threads
                                                 : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return RT_EXIT_OK;
        }
        if ((text || number) && i + 1 == argc) {
            fprintf(stderr, "rtrain-predict: error: %s needs a value\n", a);
            return RT_EXIT_INPUT;
        }
        if (text) {
            *text = argv[++i];
        } else if (number) {
            if (!positive(argv[++i], number)) {
                fprintf(stderr, "rtrain-predict: error: %s %s: give a whole number >= 1\n", a,
                        argv[i]);
                return RT_EXIT_INPUT;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "rtrain-predict: error: unknown option '%s'\n", a);
            usage(stderr);
            return RT_EXIT_INPUT;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "rtrain-predict: error: unexpected argument '%s'\n", a);
            return RT_EXIT_INPUT;
        }
    }
    o->checkpoint = pos[0];
    o->input = pos[1];
    if (npos < 2 || !o->output) {
        fprintf(stderr, "rtrain-predict: error: give a checkpoint, the data and -o OUTPUT\n");
        usage(stderr);
        return RT_EXIT_INPUT;
    }
    return -1;
}

int main(int argc, char **argv)
{
    rt_backend_select_blas(argv);   /* the kernels rtrain trained and evaluated with */
    rt_predict_opts o = {.batch_size = DEFAULT_BATCH};
    int code = parse(argc, argv, &o);   /* the same on every rank: no collective yet */
    if (code >= 0)
        return code;
    rt_session *s = NULL;
    rt_status st = rt_session_init(&s, &argc, &argv);
    if (st == RT_OK)
        st = rt_predict(s, &o);
    code = rt_session_exit_code(s, st);
    rt_session_finalize(s);
    return code;
}
