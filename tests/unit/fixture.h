/* Reader for the reference fixtures written by tests/gen_fixtures.py.
 *
 * File format (tests/fixtures/ref_*.bin), little-endian, a sequence of
 * records until end of file:
 *     uint16  name_len          bytes of the name that follow (1..255)
 *     bytes   name              not NUL-terminated
 *     uint8   ndim              0..4 (0: a scalar, one value)
 *     int32   dims[ndim]        each >= 1
 *     float32 data[prod(dims)]  row-major (C order)
 * Integer tensors (labels, num_batches_tracked) are stored as float32.
 * Record names are listed in tests/gen_fixtures.py ("input", "output",
 * "state/<state_dict name>", "grad/<param name>", "after/<buffer name>").
 *
 * Test-only code: the whole file is read into memory (fixtures are small;
 * every size is still checked against the bytes actually present). */
#ifndef RTRAIN_TESTS_FIXTURE_H
#define RTRAIN_TESTS_FIXTURE_H

#include <stddef.h>
#include "rtrain/core.h"

#define FIXTURE_NAME_MAX 256
#define FIXTURE_MAX_NDIM 4

typedef struct fixture_tensor {
    char name[FIXTURE_NAME_MAX];
    int ndim;
    int dims[FIXTURE_MAX_NDIM];
    size_t count;          /* product of dims (1 for a scalar) */
    const float *data;     /* points into the fixture's buffer */
} fixture_tensor;

typedef struct fixture {
    fixture_tensor *tensors;
    int count;
    float *storage;        /* all data, in file order */
} fixture;

/* Reads the file at path; on failure records RT_ERR_IO / RT_ERR_FORMAT. */
rt_status fixture_load(fixture *f, const char *path);
/* The record called name, or NULL. */
const fixture_tensor *fixture_find(const fixture *f, const char *name);
void fixture_free(fixture *f);

#endif
