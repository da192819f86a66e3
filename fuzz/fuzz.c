/* The helpers every fuzz target shares (see fuzz/fuzz.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fuzz.h"

/* Sanitizer settings of every target, built in so that an input behaves
 * the same under `make fuzz` and when run by hand. An allocation the
 * allocator cannot make returns NULL, as it does without ASan (the library
 * must report it), instead of aborting. */
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
const char *__ubsan_default_options(void) { return "print_stacktrace=1:halt_on_error=1"; }

/* Leaks inside libraries, not in rtrain; each as narrow as the stack allows.
 * - libconfig 1.5 (Debian 12): a string token where the grammar cannot take
 *   it ('"x"' or '""' as a whole file, 'a = 1; "x"') is a syntax error, and
 *   its text leaks (the grammar has no %destructor); rt_config_load destroys
 *   its config_t on every path. The text comes from the scanner's string
 *   buffer (strbuf_append) or the scanner itself (libconfig_yylex).
 * - HDF5 1.10.8 (Debian 12), on damaged files: H5Fopen failing in
 *   H5G_mkroot leaks the root group's object header (H5FL_reg_calloc under
 *   H5O_protect; fuzz/findings/hdf5-lib-open-leak). The stack stops at the
 *   first frame inside libhdf5 (no frame pointers), so the entry names the
 *   library. rtrain owns no memory HDF5 allocates, only identifiers, and
 *   fuzz_hdf5 checks that every HDF5 object is closed after each input. */
const char *__lsan_default_suppressions(void)
{
    return "leak:strbuf_append\nleak:libconfig_yylex\nleak:libhdf5\n";
}

/* The files to remove at exit (one or two per target). */
#define FUZZ_FILES 4
static fuzz_file *created[FUZZ_FILES];
static int ncreated;

static void remove_files(void)
{
    for (int i = 0; i < ncreated; i++)
        unlink(created[i]->path);
}

int fuzz_verbose(void)
{
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("RTRAIN_FUZZ_VERBOSE");
        v = e && e[0] && e[0] != '0';
    }
    return v;
}

static void harness_broken(const char *what, const char *path)
{
    fprintf(stderr, "fuzz harness: %s %s: %s\n", what, path, strerror(errno));
    abort();
}

static void file_create(fuzz_file *f, const char *tag)
{
    const char *dir = getenv("TMPDIR");
    snprintf(f->path, sizeof f->path, "%s/rtrain-fuzz-%s-XXXXXX", dir && dir[0] ? dir : "/tmp",
             tag);
    int fd = mkstemp(f->path);
    if (fd < 0 || ncreated == FUZZ_FILES)
        harness_broken("cannot create", f->path);
    f->fd = fd;
    if (ncreated == 0)
        atexit(remove_files);
    created[ncreated++] = f;
}

const char *fuzz_file_write(fuzz_file *f, const char *tag, const void *data, size_t n)
{
    if (f->fd <= 0)
        file_create(f, tag);
    if (ftruncate(f->fd, 0) != 0)
        harness_broken("cannot truncate", f->path);
    for (size_t done = 0; done < n;) {
        ssize_t w = pwrite(f->fd, (const char *)data + done, n - done, (off_t)done);
        if (w <= 0)
            harness_broken("cannot write", f->path);
        done += (size_t)w;
    }
    return f->path;
}

void fuzz_check_error(rt_status s, const char *call, const char *const *names, int n)
{
    const char *msg = rt_error_message();
    int named = 0;
    for (int i = 0; i < n && !named; i++)
        named = names[i] && names[i][0] && strstr(msg, names[i]) != NULL;
    if (s == RT_OK || !msg[0] || !named) {
        fprintf(stderr, "fuzz finding: %s returned %s with %s message that names none of:",
                call, rt_status_name(s), msg[0] ? "a" : "an empty");
        for (int i = 0; i < n; i++)
            fprintf(stderr, " '%s'", names[i] ? names[i] : "(null)");
        fprintf(stderr, "\n  message: %s\n  trace:\n%s\n", msg, rt_error_traceback());
        abort();
    }
    if (fuzz_verbose())
        fprintf(stderr, "fuzz: %s: %s\n", call, msg);
    rt_error_clear();
}

/* The contract of a dataset that opened: finite inputs, class labels in
 * [0, num_classes), sequence tokens >= 0. */
static void check_sample(const rt_dataset *ds, int64_t i, const float *x, size_t nx,
                         const void *target)
{
    const rt_sample_desc *d = rt_dataset_desc(ds);
    for (size_t k = 0; k < nx; k++)
        if (!isfinite(x[k])) {
            fprintf(stderr, "fuzz finding: sample %lld input %zu is %g\n", (long long)i, k,
                    (double)x[k]);
            abort();
        }
    const int32_t *label = target;
    if (d->target == RT_TARGET_CLASS && !(label[0] >= 0 && label[0] < d->num_classes)) {
        fprintf(stderr, "fuzz finding: sample %lld has label %d, outside [0, %d)\n",
                (long long)i, label[0], d->num_classes);
        abort();
    }
    for (int k = 0; d->target == RT_TARGET_SEQUENCE && k < d->target_size; k++)
        if (label[k] < 0) {
            fprintf(stderr, "fuzz finding: sample %lld token %d is %d\n", (long long)i, k,
                    label[k]);
            abort();
        }
}

void fuzz_read_all(rt_dataset *ds, const char *const *names, int n)
{
    const rt_sample_desc *d = rt_dataset_desc(ds);
    size_t nx = rt_sample_input_size(d);
    int64_t count = rt_dataset_count(ds);
    if (count > FUZZ_MAX_SAMPLES)
        count = FUZZ_MAX_SAMPLES;
    if (nx > FUZZ_MAX_VALUES)   /* a sample too large to fetch here: only open and free */
        count = 0;
    else if (nx > 0 && (size_t)count > FUZZ_MAX_VALUES / nx)
        count = (int64_t)(FUZZ_MAX_VALUES / nx);
    if (fuzz_verbose())
        fprintf(stderr, "fuzz: opened: %lld samples of %zu values, reading %lld\n",
                (long long)rt_dataset_count(ds), nx, (long long)count);
    float *x = count ? calloc(nx ? nx : 1, sizeof *x) : NULL;
    void *target = count ? calloc(1, rt_sample_target_bytes(d) + 4) : NULL;
    if (count && (!x || !target))
        harness_broken("out of memory for a sample of", names[0]);
    for (int64_t i = 0; i < count; i++) {
        rt_status s = rt_dataset_fetch(ds, i, x, target);
        if (s != RT_OK) {   /* the first failure ends reading, as it ends training */
            fuzz_check_error(s, "rt_dataset_fetch", names, n);
            break;
        }
        check_sample(ds, i, x, nx, target);
    }
    free(x);
    free(target);
    rt_dataset_free(ds);
}
