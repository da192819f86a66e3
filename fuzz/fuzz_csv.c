/* Fuzz target: the csv dataset format (src/data/csv.c, libcsv and zlib
 * underneath), through rt_dataset_open("csv").
 *
 * Input: one options byte, then the file (plain or gzip). Options:
 *   bit 0     target: 0 class (train.loss = cross_entropy), 1 vector (mse)
 *   bits 1-2  data.fill_missing: 0 none, 1 zero, 2 mean, 3 zero
 *   bits 3-4  rows: 0 all, 1 [0, 0.8), 2 [0.8, 1) (the test_fraction
 *             split), 3 [0.5, 1)
 *   bit 5     data.categorical = ["c"]
 *   bit 6     data.features = ["a", "c"] (else every column but "y")
 *   bit 7     the bytes before the first NUL are the training split's
 *             encoding (JSON, as params.json stores it), the rest the file
 * The target column is always "y" (the seeds name their columns y, a, b,
 * c). A training split that opens is opened again as the evaluation split
 * [0.8, 1) with the encoding it learned, as rtrain opens a test split. */
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"

static fuzz_file csv_file;

/* Opens src; on success reads every sample and, when asked, hands back a
 * copy of the learned encoding (free()). */
static void open_split(const rt_data_source *src, char **encoding)
{
    const char *names[] = {src->file};
    rt_dataset *ds = NULL;
    rt_status s = rt_dataset_open(&ds, "csv", src, NULL);
    if (s != RT_OK) {
        fuzz_check_error(s, "rt_dataset_open(csv)", names, 1);
        return;
    }
    if (encoding) {
        const char *json = rt_dataset_encoding(ds);
        *encoding = json ? strdup(json) : NULL;
    }
    fuzz_read_all(ds, names, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const features[] = {"a", "c"};
    static const char *const categorical[] = {"c"};
    static const double ranges[4][2] = {{0.0, 0.0}, {0.0, 0.8}, {0.8, 1.0}, {0.5, 1.0}};
    static const rt_fill_policy fills[4] = {RT_FILL_NONE, RT_FILL_ZERO, RT_FILL_MEAN,
                                            RT_FILL_ZERO};
    unsigned opt = fuzz_byte(data, size, 0);
    const uint8_t *body = size ? data + 1 : data;
    size_t len = size ? size - 1 : 0;
    char *given = NULL;
    if (opt & 0x80) {   /* "<encoding>\0<file>" */
        const uint8_t *nul = memchr(body, '\0', len);
        size_t jlen = nul ? (size_t)(nul - body) : len;
        if (!(given = malloc(jlen + 1)))
            abort();
        memcpy(given, body, jlen);
        given[jlen] = '\0';
        body += nul ? jlen + 1 : len;
        len -= nul ? jlen + 1 : len;
    }
    rt_data_source src = {
        .file = fuzz_file_write(&csv_file, "csv", body, len),
        .first = ranges[(opt >> 3) & 3][0], .last = ranges[(opt >> 3) & 3][1],
        .target = opt & 1 ? RT_TARGET_VECTOR : RT_TARGET_CLASS,
        .target_column = "y",
        .features = opt & 0x40 ? features : NULL, .num_features = opt & 0x40 ? 2 : 0,
        .categorical = opt & 0x20 ? categorical : NULL, .num_categorical = opt & 0x20 ? 1 : 0,
        .fill_missing = fills[(opt >> 1) & 3],
        .encoding = given,
    };
    char *learned = NULL;
    open_split(&src, given ? NULL : &learned);
    if (learned) {   /* the evaluation split, encoded as the training split was */
        src.first = 0.8;
        src.last = 1.0;
        src.encoding = learned;
        open_split(&src, NULL);
    }
    free(learned);
    free(given);
    return 0;
}
