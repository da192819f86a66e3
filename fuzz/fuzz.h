/* What the fuzz targets (fuzz/fuzz_*.c, built and run by `make fuzz`)
 * share: a private temporary file the input is written to, the check every
 * failed open must pass, and reading every sample of a dataset that opened.
 *
 * A failure is a finding when its message is empty or does not name the
 * file (every message must name the file it is about): the target then
 * abort()s, so libFuzzer keeps the input. A dataset that opened must
 * deliver what its description promises: finite inputs and class labels
 * in [0, num_classes). */
#ifndef RTRAIN_FUZZ_H
#define RTRAIN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include "rtrain/data.h"

/* At most this many samples are fetched from a dataset that opened. */
#define FUZZ_MAX_SAMPLES 10000
/* ... and at most this many input values in all (a sample may be large). */
#define FUZZ_MAX_VALUES ((size_t)1 << 24)

/* A file of this process under $TMPDIR (or /tmp), created on first use
 * with mkstemp and removed at exit; each input rewrites it whole. */
typedef struct fuzz_file {
    char path[RT_PATH_MAX];
    int fd;   /* 0 until created */
} fuzz_file;

/* Makes data[n] the whole content of f; returns its path. `tag` goes into
 * the file name ("csv", "images"). Aborts when the file cannot be written
 * (the harness is broken, not the library). */
const char *fuzz_file_write(fuzz_file *f, const char *tag, const void *data, size_t n);

/* After a call returned s != RT_OK: the message must be non-empty and
 * contain one of names[0..n) (the files, or an override, the failure may
 * be about); otherwise prints the message and aborts. Clears the error. */
void fuzz_check_error(rt_status s, const char *call, const char *const *names, int n);

/* Fetches samples of ds (at most FUZZ_MAX_SAMPLES / FUZZ_MAX_VALUES),
 * checks each (finite inputs, labels in range; a failed fetch must name
 * one of names[0..n) as above), then frees ds. */
void fuzz_read_all(rt_dataset *ds, const char *const *names, int n);

/* 1 when RTRAIN_FUZZ_VERBOSE is set (and not 0): the targets then print
 * what each input did, to check that a corpus reaches what it should. */
int fuzz_verbose(void);

/* Byte i of data[n], or 0 past its end: options read from an input that
 * may be shorter than expected. */
static inline unsigned fuzz_byte(const uint8_t *data, size_t n, size_t i)
{
    return i < n ? data[i] : 0u;
}

#endif
