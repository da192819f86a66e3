/* File-system steps shared by the run directory, the checkpoint commit
 * protocol and the tools: paths that must fit, mkdir -p with a fixed mode,
 * whole writes, fsync of files and directories, atomic replacement of a
 * file, recursive removal. Every error names the path and the errno text.
 * Internal (not installed); none of these functions is collective.
 *
 * Modes are set with fchmod/chmod after creation, so they are what the
 * caller asks for whatever the umask. */
#ifndef RTRAIN_CORE_FS_H
#define RTRAIN_CORE_FS_H

#include <stddef.h>
#include "rtrain/core.h"

/* snprintf into a path buffer; RT_ERR_INVALID_ARG if it does not fit. */
rt_status rt_fs_path(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* mkdir -p: every directory it creates gets `mode`. A path component that
 * exists but is not a directory is an error, and so is a link another user
 * planted on the way (the walk of rt_fs_open_dir_path, below). hint (may be
 * NULL) ends the message of a failed mkdir ("check run.storage_path ..."). */
rt_status rt_fs_mkdir_p(const char *path, int mode, const char *hint);

/* mkdir -p that walks path from an fd, one component at a time
 * (openat(dirfd, component, O_NOFOLLOW | O_DIRECTORY); mkdirat for a
 * missing one when create, with `mode`), and returns the last directory
 * open in *dir_fd (O_RDONLY | O_DIRECTORY; the caller closes it). A
 * component that is a symbolic link is followed (its target walked the
 * same way, at most 40 links) unless it lies in a sticky world-writable
 * directory (/tmp) and was made by neither this user nor that directory's
 * owner: anybody may plant a link there, and following it would put this
 * user's files where the link's owner chose. Such a link is refused with
 * RT_ERR_CONFIG naming it and its owner; `what` (e.g. "run.storage_path")
 * starts the message. A component that exists but is not a directory is
 * RT_ERR_IO; hint (may be NULL) ends the message of a failed mkdir. */
rt_status rt_fs_open_dir_path(int *dir_fd, const char *path, int create, int mode,
                              const char *what, const char *hint);

/* Opens path for writing (created with `mode`; truncated unless flags has
 * O_APPEND). hint (may be NULL) ends the message on failure. */
rt_status rt_fs_open_write(int *fd, const char *path, int flags, int mode, const char *hint);
/* write(2) until all of buf is written (EINTR retried; a full disk named). */
rt_status rt_fs_write_all(int fd, const void *buf, size_t len, const char *path);
/* fsync of a file or a directory (a directory some file system cannot sync
 * is not an error: the rename is as durable as it makes it). */
rt_status rt_fs_fsync(const char *path, int is_dir);

/* Creates (truncating) path with mode, writes text and fsyncs it. */
rt_status rt_fs_write_file(const char *path, const char *text, int mode);

/* Atomic replacement: fn writes the new content to a temporary file
 * "<dir>/.<name>.tmp" next to path (passed as fd and its path), which is
 * then synced and renamed over path, and the directory synced: a reader
 * sees the old file or the new one, never a mix. On failure the temporary
 * is removed and path is untouched. */
typedef rt_status (*rt_fs_write_fn)(void *arg, int fd, const char *tmp_path);
rt_status rt_fs_replace(const char *path, int mode, rt_fs_write_fn fn, void *arg);
/* rt_fs_replace with the content `text`. */
rt_status rt_fs_write_atomic(const char *path, const char *text, int mode);
/* rt_fs_write_atomic for a file that several processes may replace at
 * once (each writes a temporary of its own, named by host and process;
 * the last rename wins, and a reader sees one whole version). */
rt_status rt_fs_write_shared(const char *path, const char *text, int mode);
/* Creates path with `text` (synced) if it does not exist yet, atomically
 * also against other processes and over NFS (link(2) of a private
 * temporary): *created = 1 for the one that did; path exists afterwards
 * in every case that returns RT_OK. */
rt_status rt_fs_create_exclusive(const char *path, const char *text, int mode, int *created);
/* The temporary name rt_fs_replace uses for path. */
rt_status rt_fs_temp_path(char *buf, size_t size, const char *path);

/* rm -rf; a missing path is fine. Read-only directories (committed
 * checkpoints) are made writable first. */
rt_status rt_fs_remove_tree(const char *path);

/* 1 when fd (opened O_NONBLOCK, so that a FIFO did not block the open) is
 * a regular file, and then made blocking; 0 otherwise. No error record. */
int rt_fs_regular_blocking(int fd);
/* Opens path for reading, refusing anything but a regular file (a FIFO,
 * device or directory planted under a checkpoint's name would block or
 * mislead the reader): opened with O_NONBLOCK, checked with fstat, then
 * set blocking again. what names the file in messages. */
rt_status rt_fs_open_regular(int *fd, const char *path, const char *what);

/* Reads a whole small file of at most max_bytes into *text (NUL-terminated,
 * freed with rt_free). Larger is RT_ERR_FORMAT naming what it should be. */
rt_status rt_fs_read_small(const char *path, size_t max_bytes, const char *what, char **text);

#endif
