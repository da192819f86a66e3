/* File-system helpers (see fs.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/fs.h"

rt_status rt_fs_path(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        return RT_ERROR(RT_ERR_INVALID_ARG, "path too long (%d bytes, at most %zu): shorten "
                        "the directory's path", n, size - 1);
    return RT_OK;
}

/* The same walk as rt_fs_open_dir_path (below), so that every directory
 * rtrain creates refuses another user's link planted on the way. */
rt_status rt_fs_mkdir_p(const char *path, int mode, const char *hint)
{
    int fd;
    RT_CHECK(rt_fs_open_dir_path(&fd, path, 1, mode, NULL, hint));
    close(fd);
    return RT_OK;
}

/* ---- walking a directory path from an fd ------------------------------------------ */

#define RT_FS_MAX_LINKS 40   /* as the kernel's ELOOP limit */

static const char *owner_name(uid_t uid, char *buf, size_t size)
{
    struct passwd *pw = getpwuid(uid);
    snprintf(buf, size, "%s", pw ? pw->pw_name : "?");
    return buf;
}

typedef struct dir_walk {
    int create, mode;
    const char *what, *hint;
} dir_walk;

static rt_status walk_dir(const dir_walk *w, int *fd, const char *path, const char *shown,
                          int *links);

/* The component `name` of directory dfd (reached as `at`) is a symbolic
 * link: refused when planted by another user in a sticky world-writable
 * directory, else its target is walked from dfd (or from / when absolute). */
static rt_status follow_link(const dir_walk *w, int *fd, const char *name, const char *at,
                             int *links)
{
    struct stat ls, ds;
    char who[64];
    if (fstatat(*fd, name, &ls, AT_SYMLINK_NOFOLLOW) != 0 || fstat(*fd, &ds) != 0)
        return RT_ERROR(RT_ERR_IO, "%s: cannot examine %s: %s", w->what, at, strerror(errno));
    uid_t me = geteuid();
    if ((ds.st_mode & S_IWOTH) && (ds.st_mode & S_ISVTX) && ls.st_uid != me &&
        ls.st_uid != ds.st_uid)
        return RT_ERROR(RT_ERR_CONFIG, "%s: %s is a symbolic link made by user %s (uid %u) in "
                        "a shared sticky directory, not by you: rtrain does not follow "
                        "another user's link there (it could send your results anywhere); "
                        "remove it, or choose another path", w->what, at,
                        owner_name(ls.st_uid, who, sizeof who), (unsigned)ls.st_uid);
    if (++*links > RT_FS_MAX_LINKS)
        return RT_ERROR(RT_ERR_IO, "%s: too many symbolic links at %s", w->what, at);
    char target[4096];
    ssize_t n = readlinkat(*fd, name, target, sizeof target - 1);
    if (n < 0)
        return RT_ERROR(RT_ERR_IO, "%s: cannot read the link %s: %s", w->what, at,
                        strerror(errno));
    target[n] = '\0';
    int from = target[0] == '/' ? open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                                : dup(*fd);
    if (from < 0)
        return RT_ERROR(RT_ERR_IO, "%s: cannot follow %s: %s", w->what, at, strerror(errno));
    dir_walk inner = *w;
    inner.create = 0;   /* a dangling link is not made real behind the user's back */
    rt_status st = walk_dir(&inner, &from, target, at, links);
    if (st != RT_OK) {
        close(from);
        return st;
    }
    close(*fd);
    *fd = from;
    return RT_OK;
}

/* One step: *fd (the directory reached so far, `at`) becomes its
 * subdirectory `name`, created when missing and w->create. */
static rt_status step_into(const dir_walk *w, int *fd, const char *name, const char *at,
                           int *links)
{
    int created = 0;
    for (int tries = 0;; tries++) {
        int next = openat(*fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next >= 0) {
            if (created && fchmod(next, (mode_t)w->mode) != 0) {
                close(next);
                return RT_ERROR(RT_ERR_IO, "cannot set mode %04o on %s: %s",
                                (unsigned)w->mode, at, strerror(errno));
            }
            close(*fd);
            *fd = next;
            return RT_OK;
        }
        struct stat ls;
        if ((errno == ELOOP || errno == ENOTDIR) &&
            fstatat(*fd, name, &ls, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISLNK(ls.st_mode))
                return follow_link(w, fd, name, at, links);
            return RT_ERROR(RT_ERR_IO, "%s exists but is not a directory: move it away or "
                            "choose another path", at);
        }
        if (errno != ENOENT || !w->create || tries > 0)
            return RT_ERROR(RT_ERR_IO, "cannot open directory %s: %s%s%s%s", at,
                            strerror(errno), w->hint ? " (" : "", w->hint ? w->hint : "",
                            w->hint ? ")" : "");
        if (mkdirat(*fd, name, (mode_t)w->mode) == 0)
            created = 1;
        else if (errno != EEXIST)   /* EEXIST: made meanwhile by another process */
            return RT_ERROR(RT_ERR_IO, "cannot create directory %s: %s%s%s%s", at,
                            strerror(errno), w->hint ? " (" : "", w->hint ? w->hint : "",
                            w->hint ? ")" : "");
    }
}

/* Walks path's components from *fd; `shown` prefixes the names in messages
 * (the link a target came from), NULL for the path itself. */
static rt_status walk_dir(const dir_walk *w, int *fd, const char *path, const char *shown,
                          int *links)
{
    char at[4096 + 1024];
    size_t len = strlen(path);
    if (len >= 4096)
        return RT_ERROR(RT_ERR_INVALID_ARG, "directory path is too long: %.200s...", path);
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (n == 0)
            break;
        char name[NAME_MAX + 1];
        if (n > NAME_MAX)
            return RT_ERROR(RT_ERR_INVALID_ARG, "a name in %s is too long", path);
        memcpy(name, p, n);
        name[n] = '\0';
        p += n;
        if (!strcmp(name, "."))
            continue;
        if (shown)
            snprintf(at, sizeof at, "%s (-> %.*s)", shown, (int)(p - path), path);
        else
            snprintf(at, sizeof at, "%.*s", (int)(p - path), path);
        RT_CHECK(step_into(w, fd, name, at, links));
    }
    return RT_OK;
}

rt_status rt_fs_open_dir_path(int *dir_fd, const char *path, int create, int mode,
                              const char *what, const char *hint)
{
    *dir_fd = -1;
    dir_walk w = {create, mode, what ? what : "directory", hint};
    int fd = open(path[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return RT_ERROR(RT_ERR_IO, "cannot open %s: %s", path[0] == '/' ? "/" : ".",
                        strerror(errno));
    int links = 0;
    rt_status st = walk_dir(&w, &fd, path, NULL, &links);
    if (st != RT_OK) {
        close(fd);
        return st;
    }
    *dir_fd = fd;
    return RT_OK;
}

int rt_fs_regular_blocking(int fd)
{
    struct stat sb;
    int fl = fcntl(fd, F_GETFL);
    return fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && fl >= 0 &&
           fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0;
}

rt_status rt_fs_open_write(int *fd, const char *path, int flags, int mode, const char *hint)
{
    int trunc = (flags & O_APPEND) ? 0 : O_TRUNC;
    /* Never through a symbolic link (one planted in a run directory would
     * make rtrain overwrite or chmod the file it points to), never into a
     * FIFO or device (which would block or mislead): O_NOFOLLOW, and
     * O_NONBLOCK until fstat has seen a regular file. O_TRUNC of a
     * non-regular file does nothing. */
    *fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | trunc | flags,
               (mode_t)mode);
    if (*fd < 0 && errno == ELOOP)
        return RT_ERROR(RT_ERR_IO, "cannot write %s: it is a symbolic link, and rtrain does not "
                        "write through links (one planted there would overwrite the file it "
                        "points to): remove it", path);
    if (*fd < 0)
        return RT_ERROR(RT_ERR_IO, "cannot write %s: %s%s%s%s", path, strerror(errno),
                        hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
    if (!rt_fs_regular_blocking(*fd)) {
        close(*fd);
        *fd = -1;
        return RT_ERROR(RT_ERR_IO, "cannot write %s: it is not a regular file (a FIFO, device "
                        "or directory?): remove it", path);
    }
    /* open() applied the umask; fchmod() does not. */
    if (fchmod(*fd, (mode_t)mode) != 0) {
        int err = errno;
        close(*fd);
        *fd = -1;
        return RT_ERROR(RT_ERR_IO, "cannot set mode %04o on %s: %s", (unsigned)mode, path,
                        strerror(err));
    }
    return RT_OK;
}

rt_status rt_fs_write_all(int fd, const void *buf, size_t len, const char *path)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return RT_ERROR(RT_ERR_IO, "cannot write %s: %s (disk full?)", path,
                            n < 0 ? strerror(errno) : "short write");
        p += n;
        len -= (size_t)n;
    }
    return RT_OK;
}

rt_status rt_fs_fsync(const char *path, int is_dir)
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

/* Writes, syncs and closes fd (closed also on failure). */
static rt_status finish_file(int fd, const char *text, const char *path)
{
    rt_status st = text ? rt_fs_write_all(fd, text, strlen(text), path) : RT_OK;
    if (st == RT_OK && fsync(fd) != 0)
        st = RT_ERROR(RT_ERR_IO, "cannot sync %s to disk: %s", path, strerror(errno));
    if (close(fd) != 0 && st == RT_OK)
        st = RT_ERROR(RT_ERR_IO, "cannot close %s: %s", path, strerror(errno));
    return st;
}

rt_status rt_fs_write_file(const char *path, const char *text, int mode)
{
    int fd;
    RT_CHECK(rt_fs_open_write(&fd, path, 0, mode, NULL));
    return finish_file(fd, text, path);
}

rt_status rt_fs_temp_path(char *buf, size_t size, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return rt_fs_path(buf, size, ".%s.tmp", path);
    return rt_fs_path(buf, size, "%.*s/.%s.tmp", (int)(slash - path), path, slash + 1);
}

/* The directory part of path ("." when it has none). */
static rt_status dir_of(char *buf, size_t size, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return rt_fs_path(buf, size, ".");
    if (slash == path)
        return rt_fs_path(buf, size, "/");
    return rt_fs_path(buf, size, "%.*s", (int)(slash - path), path);
}

/* A temporary name of path's own for this process: several processes (a
 * job array's tasks, on several nodes) may write the same file at once. */
static rt_status private_temp_path(char *buf, size_t size, const char *path)
{
    char host[64] = "", tmp[4096];
    gethostname(host, sizeof host - 1);
    RT_CHECK(rt_fs_temp_path(tmp, sizeof tmp, path));
    return rt_fs_path(buf, size, "%s.%s.%d", tmp, host, (int)getpid());
}

/* Writes tmp with fn, synced, then puts it in place: renamed over path, or
 * with exclusive set linked to path only if path does not exist yet
 * (*created = 0 then, and path is left as it was). */
static rt_status put_in_place(const char *tmp, const char *path, int mode, rt_fs_write_fn fn,
                              void *arg, int exclusive, int *created)
{
    char dir[4096];
    RT_CHECK(dir_of(dir, sizeof dir, path));
    int fd;
    RT_CHECK(rt_fs_open_write(&fd, tmp, 0, mode, NULL));
    rt_status st = fn(arg, fd, tmp);
    if (st != RT_OK)
        close(fd);
    else
        st = finish_file(fd, NULL, tmp);
    if (st == RT_OK && exclusive) {
        *created = link(tmp, path) == 0;
        if (!*created && errno != EEXIST)
            st = RT_ERROR(RT_ERR_IO, "cannot create %s: %s", path, strerror(errno));
        unlink(tmp);
    } else if (st == RT_OK && rename(tmp, path) != 0) {
        st = RT_ERROR(RT_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
    if (st != RT_OK) {
        unlink(tmp);
        return st;
    }
    return rt_fs_fsync(dir, 1);
}

static rt_status write_text(void *arg, int fd, const char *tmp_path);

rt_status rt_fs_write_shared(const char *path, const char *text, int mode)
{
    char tmp[4200];
    RT_CHECK(private_temp_path(tmp, sizeof tmp, path));
    return put_in_place(tmp, path, mode, write_text, (void *)text, 0, NULL);
}

rt_status rt_fs_create_exclusive(const char *path, const char *text, int mode, int *created)
{
    char tmp[4200];
    *created = 0;
    RT_CHECK(private_temp_path(tmp, sizeof tmp, path));
    return put_in_place(tmp, path, mode, write_text, (void *)text, 1, created);
}

rt_status rt_fs_replace(const char *path, int mode, rt_fs_write_fn fn, void *arg)
{
    char tmp[4096];
    RT_CHECK(rt_fs_temp_path(tmp, sizeof tmp, path));
    return put_in_place(tmp, path, mode, fn, arg, 0, NULL);
}

static rt_status write_text(void *arg, int fd, const char *tmp_path)
{
    const char *text = arg;
    return rt_fs_write_all(fd, text, strlen(text), tmp_path);
}

rt_status rt_fs_write_atomic(const char *path, const char *text, int mode)
{
    return rt_fs_replace(path, mode, write_text, (void *)text);
}

rt_status rt_fs_remove_tree(const char *path)
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
        char child[4096];
        st = rt_fs_path(child, sizeof child, "%s/%s", path, de->d_name);
        if (st == RT_OK)
            st = rt_fs_remove_tree(child);
    }
    closedir(d);
    RT_CHECK(st);
    if (rmdir(path) != 0)
        return RT_ERROR(RT_ERR_IO, "cannot remove directory %s: %s", path, strerror(errno));
    return RT_OK;
}

rt_status rt_fs_open_regular(int *fd, const char *path, const char *what)
{
    *fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0)
        return RT_ERROR(RT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (!rt_fs_regular_blocking(*fd)) {
        close(*fd);
        *fd = -1;
        return RT_ERROR(RT_ERR_FORMAT, "%s is not a regular file (a FIFO, device or "
                        "directory?): it cannot be the %s; remove it", path, what);
    }
    return RT_OK;
}

rt_status rt_fs_read_small(const char *path, size_t max_bytes, const char *what, char **text)
{
    *text = NULL;
    int fd;
    RT_CHECK(rt_fs_open_regular(&fd, path, what));
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return RT_ERROR(RT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    char *buf = NULL;
    rt_status st = rt_alloc(&buf, max_bytes + 1, 1, what);
    if (st != RT_OK) {
        fclose(f);
        RT_CHECK(st);
    }
    size_t n = fread(buf, 1, max_bytes + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > max_bytes) {
        rt_free(buf);
        if (bad)
            return RT_ERROR(RT_ERR_IO, "cannot read %s: read error", path);
        return RT_ERROR(RT_ERR_FORMAT, "%s: larger than %zu bytes, too large to be a %s", path,
                        max_bytes, what);
    }
    buf[n] = '\0';
    *text = buf;
    return RT_OK;
}
