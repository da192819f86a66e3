/* The run directory (storage_path/name/): where it is, whether it is safe to
 * write there, creating it with fixed permissions, params.json, files a
 * loop writes whole (rt_run_write_file: the profile) and the per-rank logs. Only rank 0 creates and writes the shared files; the outcome
 * and the directory name are agreed so that every rank knows where the run
 * lives.
 *
 * Permissions: results may hold data a site treats as private, so
 * directories are 0750 and files 0640 whatever the umask (set explicitly
 * after creation), and a storage path someone else could rewrite (owned by
 * another user, or world-writable without the sticky bit) is refused, as is
 * a symbolic link on the way that another user planted in a sticky shared
 * directory (rt_fs_open_dir_path walks every component from an fd). */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core/fs.h"
#include "run_internal.h"

/* ---- is the storage path safe? --------------------------------------------- */

static const char *user_name(uid_t uid, char *buf, size_t size)
{
    struct passwd *pw = getpwuid(uid);
    snprintf(buf, size, "%s", pw ? pw->pw_name : "?");
    return buf;
}

/* Refuses a directory another user (other than root) owns, when own_check,
 * and one anybody may rename entries of (world-writable, no sticky bit). */
static rt_status check_dir_safe(const char *path, const struct stat *st, int own_check)
{
    char who[64], me[64];
    uid_t uid = geteuid();
    if (own_check && st->st_uid != uid && st->st_uid != 0)
        return RT_ERROR(RT_ERR_CONFIG, "run.storage_path: %s is owned by user %s (uid %u), "
                        "not by you (%s, uid %u): that user could change or remove your "
                        "results; use a directory you own, e.g. "
                        "run.storage_path=\"$HOME/rtrain_results\"", path,
                        user_name(st->st_uid, who, sizeof who), (unsigned)st->st_uid,
                        user_name(uid, me, sizeof me), (unsigned)uid);
    if ((st->st_mode & S_IWOTH) && !(st->st_mode & S_ISVTX))
        return RT_ERROR(RT_ERR_CONFIG, "run.storage_path: %s is world-writable without the "
                        "sticky bit (mode %04o): any user could replace your results; fix it "
                        "with 'chmod o-w %s' (or 'chmod +t %s'), or choose another "
                        "run.storage_path", path, (unsigned)(st->st_mode & 07777), path, path);
    return RT_OK;
}

/* A symbolic link at path (the storage path or the run directory) that
 * another user made: in a shared sticky directory (/tmp) anyone may plant
 * one, and following it would write this user's results where that user
 * chose (and let them be read or replaced). The user's own links are
 * fine. */
static rt_status check_not_foreign_link(const char *path)
{
    struct stat ls;
    char who[64];
    if (lstat(path, &ls) != 0 || !S_ISLNK(ls.st_mode) || ls.st_uid == geteuid())
        return RT_OK;
    return RT_ERROR(RT_ERR_CONFIG, "%s is a symbolic link made by user %s (uid %u), not by you: "
                    "rtrain does not follow another user's link (it could send your results "
                    "anywhere); remove it, or choose another run.name or run.storage_path",
                    path, user_name(ls.st_uid, who, sizeof who), (unsigned)ls.st_uid);
}

/* The storage path if it exists (owner and mode checked), else its deepest
 * existing ancestor (mode checked: we will own what we create below it);
 * then the run directory itself when it exists already. */
static rt_status check_storage(const char *storage, const char *dir)
{
    char buf[RT_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", storage);
    struct stat st;
    int own_check = 1;
    while (stat(buf, &st) != 0) {
        if (errno != ENOENT || !strcmp(buf, ".") || !strcmp(buf, "/"))
            return RT_ERROR(RT_ERR_IO, "run.storage_path: cannot examine %s: %s", buf,
                            strerror(errno));
        own_check = 0;
        char *slash = strrchr(buf, '/');
        if (!slash)
            snprintf(buf, sizeof buf, ".");
        else if (slash == buf)
            buf[1] = '\0';
        else
            *slash = '\0';
    }
    if (!S_ISDIR(st.st_mode))
        return RT_ERROR(RT_ERR_CONFIG, "run.storage_path: %s is not a directory", buf);
    RT_CHECK(check_not_foreign_link(buf));
    RT_CHECK(check_not_foreign_link(dir));
    RT_CHECK(check_dir_safe(buf, &st, own_check));
    if (stat(dir, &st) == 0)
        RT_CHECK(check_dir_safe(dir, &st, 1));
    return RT_OK;
}

/* ---- creating it ---------------------------------------------------------------- */

static void config_basename(char *out, size_t size, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, size, "%.200s", base);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

/* storage_path: override/config > $RTRAIN_STORAGE > ./rtrain_results */
static const char *resolve_storage(const rt_config *cfg)
{
    const char *storage = cfg->run.storage_path;
    if (!storage[0])
        storage = getenv("RTRAIN_STORAGE");
    if (!storage || !storage[0])
        storage = "rtrain_results";
    return storage;
}

static rt_status resolve_dir(char *dir, size_t size, const char *storage, const rt_config *cfg)
{
    int n;
    if (cfg->run.name[0]) {
        if (strchr(cfg->run.name, '/') || !strcmp(cfg->run.name, ".") ||
            !strcmp(cfg->run.name, ".."))
            return RT_ERROR(RT_ERR_CONFIG, "run.name \"%s\" must be a plain directory name "
                            "(no '/'): put the parent into run.storage_path", cfg->run.name);
        n = snprintf(dir, size, "%s/%s", storage, cfg->run.name);
    } else {
        char base[256], stamp[32];
        config_basename(base, sizeof base, cfg->source);
        time_t now = time(NULL);
        strftime(stamp, sizeof stamp, "%Y-%m-%d_%H-%M-%S", gmtime(&now));
        n = snprintf(dir, size, "%s/rtrain_%s_%s", storage, base, stamp);
    }
    if (n < 0 || (size_t)n >= size)
        return RT_ERROR(RT_ERR_CONFIG, "run directory path is too long: %s/%s", storage,
                        cfg->run.name);
    return RT_OK;
}

static rt_status write_params(const char *dir, const rt_config *cfg)
{
    char path[RT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/params.json", dir);
    int fd;
    RT_CHECK(rt_fs_open_write(&fd, path, 0, RT_RUN_FILE_MODE, NULL));
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return RT_ERROR(RT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    rt_status st = rt_config_write_json(cfg, f);
    if (fclose(f) != 0 && st == RT_OK)
        st = RT_ERROR(RT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return st;
}

/* params.json again, as the configuration plus a "preprocessing" member
 * (JSON text), replaced atomically so that a reader never sees half. */
static rt_status rewrite_params(const rt_run *r, const rt_config *cfg, const char *preprocessing)
{
    char *config_text = NULL;
    size_t size = 0;
    rt_status st = rt_config_json_text(cfg, &config_text, &size);
    json_t *root = st == RT_OK ? json_loads(config_text, 0, NULL) : NULL;
    json_t *pre = json_loads(preprocessing, 0, NULL);
    free(config_text);
    char *text = NULL;
    if (st == RT_OK && root && pre) {
        json_object_set_new(root, "preprocessing", pre);
        pre = NULL;
        text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    }
    json_decref(root);
    json_decref(pre);
    if (st == RT_OK && !text)
        st = RT_ERROR(RT_ERR_INTERNAL, "cannot add the preprocessing to params.json");
    char path[RT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/params.json", r->dir);
    if (st == RT_OK)
        st = rt_fs_write_atomic(path, text, RT_RUN_FILE_MODE);
    free(text);
    return st;
}

static rt_status write_run_file(const rt_run *r, const char *name, const char *text)
{
    char path[RT_PATH_MAX + 64];
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/%s", r->dir, name));
    if (!text)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_run_write_file: rank 0 gave no text for %s",
                        path);
    return rt_fs_write_atomic(path, text, RT_RUN_FILE_MODE);
}

rt_status rt_run_write_file(rt_run *r, const char *name, const char *text)
{
    return rt_session_agree(r->session, r->rank == 0 ? write_run_file(r, name, text) : RT_OK);
}

rt_status rt_run_record_preprocessing(rt_run *r, const rt_config *cfg, const char *json)
{
    return rt_session_agree(r->session, r->rank == 0 ? rewrite_params(r, cfg, json) : RT_OK);
}

/* error.txt of an earlier attempt is kept aside as error.<k>.txt (the
 * first free k): error.txt then always belongs to this attempt, so a run
 * that recovered is not shown as failed, and every failure is kept. */
static rt_status set_aside_error(const rt_run *r)
{
    char from[RT_PATH_MAX + 32], to[RT_PATH_MAX + 48];
    struct stat sb;
    RT_CHECK(rt_fs_path(from, sizeof from, "%s/error.txt", r->dir));
    if (lstat(from, &sb) != 0)
        return RT_OK;
    for (int k = 1; k < 100000; k++) {
        RT_CHECK(rt_fs_path(to, sizeof to, "%s/error.%d.txt", r->dir, k));
        if (lstat(to, &sb) == 0)
            continue;
        if (rename(from, to) != 0)
            return RT_ERROR(RT_ERR_IO, "cannot keep %s aside as %s: %s", from, to,
                            strerror(errno));
        return RT_OK;
    }
    return RT_ERROR(RT_ERR_IO, "%s: 100000 earlier errors are kept already; remove some",
                    r->dir);
}

rt_status rt_run_check_dir(const rt_config *cfg, char *dir, size_t size, int *exists)
{
    const char *storage = resolve_storage(cfg);
    RT_CHECK(resolve_dir(dir, size, storage, cfg));
    RT_CHECK(check_storage(storage, dir));
    struct stat st;
    *exists = stat(dir, &st) == 0;
    return RT_OK;
}

static rt_status open_on_rank0(rt_run *r, const rt_config *cfg)
{
    int exists;
    RT_CHECK(rt_run_check_dir(cfg, r->dir, sizeof r->dir, &exists));
    /* Created (or opened) one component at a time from an fd: a link that
     * another user planted in a sticky directory on the way is refused. */
    int fd;
    RT_CHECK(rt_fs_open_dir_path(&fd, r->dir, 1, RT_RUN_DIR_MODE, "run.storage_path",
                                 "check run.storage_path and its permissions"));
    close(fd);
    RT_CHECK(rt_run_lock(r));   /* before anything in the run is written */
    RT_CHECK(set_aside_error(r));
    return write_params(r->dir, cfg);
}

/* rank_N.log of this rank; the run directory must be visible to every node. */
static rt_status open_rank_log(rt_run *r)
{
    char path[RT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/rank_%d.log", r->dir, r->rank);
    int fd;
    RT_CHECK(rt_fs_open_write(&fd, path, O_APPEND, RT_RUN_FILE_MODE, "run.log_per_rank needs "
                              "run.storage_path on a file system every node sees"));
    r->rank_log = fdopen(fd, "a");
    if (!r->rank_log) {
        close(fd);
        return RT_ERROR(RT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    r->outer_log = rt_log_get_file();   /* another session's run may be open */
    rt_log_set_file(r->rank_log);
    /* Where this rank runs, first in its log: what a multi-node job's
     * placement (and a rank's per-node share of the cores) is judged by. */
    const rt_context *ctx = rt_session_context(r->session);
    rt_info("rtrain: rank %d of %d on host %s: node %d of %d, local rank %d of %d",
            ctx->world_rank, ctx->world_size, ctx->host, ctx->node_rank, ctx->num_nodes,
            ctx->local_rank, ctx->local_size);
    return RT_OK;
}

/* Open MPI gives its ranks a pseudo-terminal even when mpirun's own output
 * goes to a file, so isatty() alone would draw bars into Slurm logs: when
 * our parent (mpirun, or the shell) can be asked through /proc, its stdout
 * decides. */
static int stdout_is_terminal(void)
{
    if (!isatty(STDOUT_FILENO))
        return 0;
    char link[64], target[256];
    snprintf(link, sizeof link, "/proc/%d/fd/1", (int)getppid());
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return 1;
    target[n] = '\0';
    return !strncmp(target, "/dev/pts/", 9) || !strncmp(target, "/dev/tty", 8);
}

static void init_fields(rt_run *r, rt_session *s, const rt_config *cfg)
{
    const rt_context *ctx = rt_session_context(s);
    r->session = s;
    r->abort_hook = -1;
    r->rank = ctx->world_rank;
    r->world_size = ctx->world_size;
    snprintf(r->host, sizeof r->host, "%s", ctx->host);
    r->start_time = r->last_report_time = rt_time_now();
    snprintf(r->score_attribute, sizeof r->score_attribute, "%s",
             cfg->checkpoint.score_attribute);
    snprintf(r->score_order, sizeof r->score_order, "%s", cfg->checkpoint.score_order);
    r->progress.tty = stdout_is_terminal();
    r->progress.verbose = cfg->run.verbose;
    r->progress.log_every_s = cfg->run.log_every_s;
    r->tensorboard = cfg->run.tensorboard;
    r->tb_fd = -1;
    static const rt_log_level levels[] = {RT_LOG_WARN, RT_LOG_INFO, RT_LOG_DEBUG};
    int v = cfg->run.verbose < 0 ? 0 : cfg->run.verbose > 2 ? 2 : cfg->run.verbose;
    rt_log_set_level(levels[v]);
}

rt_status rt_run_open(rt_run **out, rt_session *s, const rt_config *cfg)
{
    *out = NULL;
    rt_run *r = calloc(1, sizeof *r);
    rt_status st = r ? RT_OK : RT_ERROR(RT_ERR_NOMEM, "out of memory opening the run");
    if (st == RT_OK) {
        init_fields(r, s, cfg);
        if (r->rank == 0)
            st = open_on_rank0(r, cfg);
    }
    st = rt_session_agree(s, st);
    if (st == RT_OK)
        st = rt_comm_broadcast(rt_session_comm(s), r->dir, sizeof r->dir, RT_DTYPE_BYTE, 0);
    if (st == RT_OK && cfg->run.log_per_rank)
        st = rt_session_agree(s, open_rank_log(r));
    if (st != RT_OK) {
        rt_run_close(r);
        return st;
    }
    if (r->rank == 0)
        r->abort_hook = rt_abort_hook_add(rt_run_abort_hook, r);
    *out = r;
    return RT_OK;
}

void rt_run_close(rt_run *r)
{
    if (!r)
        return;
    rt_progress_clear(r);
    rt_tfevents_close(r);
    rt_abort_hook_remove(r->abort_hook);
    rt_run_unlock(r);
    if (r->rank_log) {
        rt_log_set_file(r->outer_log);
        fclose(r->rank_log);
    }
    for (int i = 0; i < r->ncolumns; i++)
        free(r->columns[i]);
    free(r->columns);
    json_decref(r->last);
    free(r);
}

const char *rt_run_dir(const rt_run *r) { return r->dir; }
int rt_run_iteration(const rt_run *r) { return r->iteration; }
