/* The names of checkpoint directories and the listing of a run's
 * committed checkpoints (the file-system steps of the commit protocol are
 * core/fs.h's). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "internal.h"

int ckpt_parse_dir_name(const char *name, const char *prefix, int64_t *index)
{
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) != 0)
        return 0;
    const char *d = name + plen;
    size_t nd = strlen(d);
    if (nd < 6 || nd > 15)   /* %06d; 15 digits bound the value */
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < nd; i++) {
        if (!isdigit((unsigned char)d[i]))
            return 0;
        v = v * 10 + (d[i] - '0');
    }
    *index = v;
    return 1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

rt_status rt_ckpt_list(const char *run_dir, int64_t **indices, int *count)
{
    *indices = NULL;
    *count = 0;
    DIR *d = opendir(run_dir);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR)   /* no such directory: no checkpoints */
            return RT_OK;
        return RT_ERROR(RT_ERR_IO, "cannot list run directory %s: %s", run_dir,
                        strerror(errno));
    }
    int64_t *list = NULL;
    int n = 0, cap = 0;
    rt_status st = RT_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t idx;
        if (!ckpt_parse_dir_name(de->d_name, CKPT_DIR_PREFIX, &idx))
            continue;
        char full[RT_CKPT_PATH_MAX];
        struct stat sb;
        if (rt_fs_path(full, sizeof full, "%s/%s", run_dir, de->d_name) != RT_OK) {
            rt_error_clear();
            continue;
        }
        if (stat(full, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        if (n == cap) {
            if (cap >= CKPT_MAX_CHECKPOINTS) {
                st = RT_ERROR(RT_ERR_FORMAT, "%s holds more than %d checkpoint directories",
                              run_dir, CKPT_MAX_CHECKPOINTS);
                break;
            }
            int ncap = cap ? 2 * cap : 64;
            int64_t *grown = NULL;
            st = rt_alloc(&grown, (size_t)ncap, sizeof *grown, "checkpoint list");
            if (st != RT_OK)
                break;
            if (n)
                memcpy(grown, list, (size_t)n * sizeof *list);
            rt_free(list);
            list = grown;
            cap = ncap;
        }
        list[n++] = idx;
    }
    closedir(d);
    if (st != RT_OK) {
        rt_free(list);
        return st;
    }
    if (n > 1)   /* list is NULL when empty: qsort's pointer must not be */
        qsort(list, (size_t)n, sizeof *list, cmp_i64);
    *indices = list;
    *count = n;
    return RT_OK;
}
