/* Fuzz target: the experiment configuration (src/config: a libconfig file
 * plus key=value overrides), through rt_config_load.
 *
 * Input: the config file, then, after a NUL byte, up to FUZZ_OVERRIDES
 * overrides separated by NUL bytes ("optimizer.lr=0.01"). A failure must
 * name the file, or quote the override it is about ("override '...'").
 * A config that loads is also written as JSON (params.json), which may
 * refuse text that is not UTF-8 but must say why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rtrain/config.h"
#include "fuzz.h"

#define FUZZ_OVERRIDES 8
#define FUZZ_QUOTE 40   /* characters of an override looked for in a message */

static fuzz_file cfg_file;
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (!(devnull = fopen("/dev/null", "w")))
        abort();
    return 0;
}

/* Splits data[size] at NUL bytes: the file, then the overrides (copied,
 * NUL-terminated; free()). Returns the file's length. */
static size_t split_input(const uint8_t *data, size_t size, char **ovr, int *n)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t file_len = nul ? (size_t)(nul - data) : size;
    const char *p = (const char *)data + file_len, *end = (const char *)data + size;
    *n = 0;
    while (p < end && *n < FUZZ_OVERRIDES) {
        p++;   /* the NUL before this override */
        const char *stop = memchr(p, '\0', (size_t)(end - p));
        size_t len = stop ? (size_t)(stop - p) : (size_t)(end - p);
        if (!(ovr[*n] = strndup(p, len)))
            abort();
        (*n)++;
        p += len;
    }
    return file_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rt_config cfg;   /* large (paths, column names): not on the stack */
    char *ovr[FUZZ_OVERRIDES];
    char quotes[FUZZ_OVERRIDES][FUZZ_QUOTE + 16];
    const char *names[FUZZ_OVERRIDES + 1];
    int n;
    size_t file_len = split_input(data, size, ovr, &n);
    names[0] = fuzz_file_write(&cfg_file, "cfg", data, file_len);
    for (int i = 0; i < n; i++) {
        snprintf(quotes[i], sizeof quotes[i], "override '%.*s", FUZZ_QUOTE, ovr[i]);
        names[i + 1] = quotes[i];
    }
    rt_status s = rt_config_load(&cfg, names[0], n, ovr);
    if (s != RT_OK)
        fuzz_check_error(s, "rt_config_load", names, n + 1);
    else if ((s = rt_config_write_json(&cfg, devnull)) != RT_OK && !rt_error_message()[0]) {
        fprintf(stderr, "fuzz finding: rt_config_write_json failed without a message\n");
        abort();
    }
    if (fuzz_verbose())
        fprintf(stderr, "fuzz: %d override(s): %s\n", n, s == RT_OK ? "loaded" :
                rt_error_message());
    rt_error_clear();
    for (int i = 0; i < n; i++)
        free(ovr[i]);
    return 0;
}
