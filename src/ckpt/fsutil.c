/* File-system steps of the commit protocol: fsync of files and
 * directories, atomic small-file replacement, recursive removal, and the
 * names of checkpoint directories. Errors name the path and errno text. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

rt_status ckpt_path(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        return RT_ERROR(RT_ERR_INVALID_ARG,
                        "checkpoint path too long (%d bytes, at most %zu): shorten the run "
                        "directory's path", n, size - 1);
    return RT_OK;
}

rt_status ckpt_fsync_path(const char *path, int is_dir)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | (is_dir ? O_DIRECTORY : 0));
    if (fd < 0)
        return RT_ERROR(RT_ERR_IO, "cannot open %s to sync it: %s", path, strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    /* Some file systems cannot fsync a directory (EINVAL): the rename is
     * then as durable as that file system makes it. */
    if (rc != 0 && !(is_dir && (err == EINVAL || err == ENOTSUP)))
        return RT_ERROR(RT_ERR_IO, "cannot sync %s to disk: %s", path, strerror(err));
    return RT_OK;
}

rt_status ckpt_write_file(const char *path, const char *text, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return RT_ERROR(RT_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    size_t len = strlen(text);
    const char *p = text;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = errno;
            close(fd);
            return RT_ERROR(RT_ERR_IO, "cannot write %s: %s (disk full?)", path,
                            n < 0 ? strerror(err) : "short write");
        }
        p += n;
        len -= (size_t)n;
    }
    /* open() applied the umask; fchmod() sets the mode we document. */
    if (fchmod(fd, (mode_t)mode) != 0 || fsync(fd) != 0) {
        int err = errno;
        close(fd);
        return RT_ERROR(RT_ERR_IO, "cannot set mode or sync %s: %s", path, strerror(err));
    }
    if (close(fd) != 0)
        return RT_ERROR(RT_ERR_IO, "cannot close %s: %s", path, strerror(errno));
    return RT_OK;
}

rt_status ckpt_write_atomic(const char *dir, const char *tmp_path, const char *path,
                            const char *text, int mode)
{
    RT_CHECK(ckpt_write_file(tmp_path, text, mode));
    if (rename(tmp_path, path) != 0)
        return RT_ERROR(RT_ERR_IO, "cannot rename %s to %s: %s", tmp_path, path,
                        strerror(errno));
    RT_CHECK(ckpt_fsync_path(dir, 1));
    return RT_OK;
}

rt_status ckpt_read_small_file(const char *path, size_t max_bytes, char **text)
{
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return RT_ERROR(RT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    char *buf = NULL;
    rt_status st = rt_alloc(&buf, max_bytes + 1, 1, "checkpoint manifest buffer");
    if (st != RT_OK) {
        fclose(f);
        RT_CHECK(st);
    }
    size_t n = fread(buf, 1, max_bytes + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > max_bytes) {
        rt_free(buf);
        return RT_ERROR(RT_ERR_FORMAT, "%s: %s", path,
                        bad ? "read error" : "file too large to be a checkpoint manifest");
    }
    buf[n] = '\0';
    *text = buf;
    return RT_OK;
}

rt_status ckpt_remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? RT_OK
                               : RT_ERROR(RT_ERR_IO, "cannot remove %s: %s", path,
                                          strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        if (unlink(path) != 0)
            return RT_ERROR(RT_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
        return RT_OK;
    }
    /* Committed checkpoint directories are read-only (0550): make this one
     * writable so its entries can be unlinked by a non-root owner. */
    chmod(path, 0750);
    DIR *d = opendir(path);
    if (!d)
        return RT_ERROR(RT_ERR_IO, "cannot open directory %s: %s", path, strerror(errno));
    rt_status st = RT_OK;
    struct dirent *de;
    while (st == RT_OK && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char child[RT_CKPT_PATH_MAX];
        st = ckpt_path(child, sizeof child, "%s/%s", path, de->d_name);
        if (st == RT_OK)
            st = ckpt_remove_tree(child);
    }
    closedir(d);
    RT_CHECK(st);
    if (rmdir(path) != 0)
        return RT_ERROR(RT_ERR_IO, "cannot remove directory %s: %s", path, strerror(errno));
    return RT_OK;
}

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
        if (ckpt_path(full, sizeof full, "%s/%s", run_dir, de->d_name) != RT_OK) {
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
    qsort(list, (size_t)n, sizeof *list, cmp_i64);
    *indices = list;
    *count = n;
    return RT_OK;
}
