/* Unit tests for core: error record, RNG streams and permutations, the
 * fatal path (rt_abort and its hooks, in a child process) and the
 * file-system helpers. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "rtrain/core.h"
#include "core/fs.h"

static rt_status fails_deep(void)
{
    return RT_ERROR(RT_ERR_CONFIG, "first message %d", 1);
}

static rt_status passes_up(void)
{
    RT_CHECK(fails_deep());
    return RT_OK;
}

static void test_error_record(void)
{
    rt_error_clear();
    CHECK(passes_up() == RT_ERR_CONFIG);
    CHECK(strcmp(rt_error_message(), "first message 1") == 0);
    /* A second error while one is recorded keeps the first message. */
    RT_ERROR(RT_ERR_IO, "second");
    CHECK(strcmp(rt_error_message(), "first message 1") == 0);
    CHECK(strstr(rt_error_traceback(), "test_core.c") != NULL);
    rt_error_clear();
    CHECK(rt_error_message()[0] == '\0');
    CHECK(rt_status_exit_code(RT_ERR_CONFIG) == RT_EXIT_INPUT);
    CHECK(rt_status_exit_code(RT_ERR_IO) == RT_EXIT_FAILURE);
}

static void test_philox_known_answer(void)
{
    /* Philox4x32-10 known-answer vectors from the Random123 distribution
     * (kat_vectors): counter 0, key 0 and counter/key all ones. */
    uint32_t out[4];
    rt_philox4x32(0, 0, out);
    CHECK(out[0] == 0x6627e8d5u && out[1] == 0xe169c58du && out[2] == 0xbc57ac4cu &&
          out[3] == 0x9b00dbd8u);
}

static void test_streams(void)
{
    rt_rng a, b;
    rt_rng_init(&a, rt_rng_key(42, 1, 0, 0));
    rt_rng_init(&b, rt_rng_key(42, 1, 0, 0));
    int same = 1;
    for (int i = 0; i < 1000; i++)
        same &= rt_rng_u32(&a) == rt_rng_u32(&b);
    CHECK(same);
    CHECK(rt_rng_key(42, 1, 0, 0) != rt_rng_key(42, 2, 0, 0));
    CHECK(rt_rng_key(42, 1, 0, 0) != rt_rng_key(43, 1, 0, 0));

    /* Uniform mean and normal moments over 200k draws: standard errors are
     * about 0.0007 (uniform mean) and 0.003 (normal variance); 6 sigma. */
    rt_rng_init(&a, 7);
    double su = 0, sn = 0, sn2 = 0;
    const int n = 200000;
    float umin = 1, umax = 0;
    for (int i = 0; i < n; i++) {
        float u = rt_rng_uniform(&a);
        su += u;
        umin = u < umin ? u : umin;
        umax = u > umax ? u : umax;
        float z = rt_rng_normal(&a);
        sn += z;
        sn2 += (double)z * z;
    }
    CHECK(umin >= 0.0f && umax < 1.0f);
    CHECK_CLOSE(su / n, 0.5, 0.004, 0);
    CHECK_CLOSE(sn / n, 0.0, 0.014, 0);
    CHECK_CLOSE(sn2 / n, 1.0, 0.02, 0);
}

static void test_permutation(void)
{
    enum { N = 1000 };
    uint32_t p[N], q[N];
    rt_rng_permutation(rt_rng_key(1, 0, 0, 0), p, N);
    rt_rng_permutation(rt_rng_key(1, 0, 0, 0), q, N);
    CHECK(memcmp(p, q, sizeof p) == 0);
    int seen[N] = {0}, fixed = 0;
    for (int i = 0; i < N; i++) {
        seen[p[i]]++;
        fixed += p[i] == (uint32_t)i;
    }
    int all_once = 1;
    for (int i = 0; i < N; i++)
        all_once &= seen[i] == 1;
    CHECK(all_once);
    CHECK(fixed < 10); /* expected 1 fixed point; a non-shuffle would give N */
    rt_rng_permutation(rt_rng_key(1, 1, 0, 0), q, N);
    CHECK(memcmp(p, q, sizeof p) != 0);

    rt_rng r;
    rt_rng_init(&r, 3);
    int counts[3] = {0};
    for (int i = 0; i < 30000; i++)
        counts[rt_rng_below(&r, 3)]++;
    for (int i = 0; i < 3; i++)
        CHECK_CLOSE(counts[i], 10000, 600, 0);
}

static void test_edit_distance(void)
{
    CHECK(rt_edit_distance("optimizer.lr", "optimizer.lr") == 0);
    CHECK(rt_edit_distance("optimizer.lrr", "optimizer.lr") == 1);
    CHECK(rt_edit_distance("kitten", "sitting") == 3);
}

/* ---- rt_abort --------------------------------------------------------------- */
/* Hooks write their letter to a pipe: the order they ran in. */
static int hook_fd = -1;

static void hook_a(void *arg, int code) { (void)arg; (void)code; ssize_t n = write(hook_fd, "a", 1); (void)n; }
static void hook_b(void *arg, int code) { (void)arg; (void)code; ssize_t n = write(hook_fd, "b", 1); (void)n; }
static void hook_c(void *arg, int code) { (void)arg; (void)code; ssize_t n = write(hook_fd, "c", 1); (void)n; }

/* A hook that ends the process itself (as MPI_Abort does) with its code. */
static void hook_exit(void *arg, int code) { (void)arg; _exit(code + 40); }

static void test_abort(void)
{
    int order[2], err[2];
    if (pipe(order) != 0 || pipe(err) != 0) {
        CHECK(0);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(order[0]);
        close(err[0]);
        dup2(err[1], STDERR_FILENO);
        hook_fd = order[1];
        rt_log_set_rank(3, "nodeX");
        rt_abort_hook_add(hook_exit, NULL);   /* oldest: runs last, ends the process */
        rt_abort_hook_add(hook_a, NULL);
        int hb = rt_abort_hook_add(hook_b, NULL);
        rt_abort_hook_add(hook_c, NULL);
        rt_abort_hook_remove(hb);             /* removed hooks never run */
        rt_abort("bucket %d could not start", 7);
    }
    close(order[1]);
    close(err[1]);
    int status = 0;
    waitpid(pid, &status, 0);   /* first: the child has written everything */
    char ran[16] = "", msg[256] = "";
    ssize_t n = read(order[0], ran, sizeof ran - 1);
    ran[n > 0 ? n : 0] = '\0';
    n = read(err[0], msg, sizeof msg - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(order[0]);
    close(err[0]);
    CHECK_MSG(strcmp(ran, "ca") == 0, "hooks ran as '%s', expected newest first: 'ca'", ran);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 40 + RT_EXIT_FAILURE);
    CHECK_MSG(strcmp(msg, "rtrain: error: [rank 3 nodeX] bucket 7 could not start\n") == 0,
              "message: %s", msg);
    /* Without hooks the process still ends with RT_EXIT_FAILURE. */
    pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        rt_abort("no hooks");
    }
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == RT_EXIT_FAILURE);
}

/* ---- file-system helpers ------------------------------------------------------- */
static rt_status fail_writer(void *arg, int fd, const char *tmp)
{
    (void)arg;
    (void)fd;
    return RT_ERROR(RT_ERR_IO, "%s: injected", tmp);
}

static void test_fs(void)
{
    char dir[] = "/tmp/rtrain-test-core.XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    char deep[256], file[300], tmp[400];
    snprintf(deep, sizeof deep, "%s/a/b/c", dir);
    mode_t old = umask(077);
    CHECK_OK(rt_fs_mkdir_p(deep, 0750, NULL));
    umask(old);
    struct stat st;
    CHECK(stat(deep, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0750);
    CHECK_OK(rt_fs_mkdir_p(deep, 0750, NULL));   /* exists already: fine */

    snprintf(file, sizeof file, "%s/index.json", deep);
    CHECK_OK(rt_fs_write_atomic(file, "first\n", 0640));
    CHECK_OK(rt_fs_write_atomic(file, "second\n", 0640));
    char *text = NULL;
    CHECK_OK(rt_fs_read_small(file, 100, "test file", &text));
    CHECK(text && strcmp(text, "second\n") == 0);
    rt_free(text);
    CHECK(stat(file, &st) == 0 && (st.st_mode & 07777) == 0640);
    /* A writer that fails leaves the old content and no temporary. */
    CHECK_FAILS(RT_ERR_IO, rt_fs_replace(file, 0640, fail_writer, NULL));
    CHECK_OK(rt_fs_read_small(file, 100, "test file", &text));
    CHECK(text && strcmp(text, "second\n") == 0);
    rt_free(text);
    CHECK_OK(rt_fs_temp_path(tmp, sizeof tmp, file));
    CHECK(strstr(tmp, "/.index.json.tmp") != NULL);
    CHECK(access(tmp, F_OK) != 0);
    CHECK_FAILS(RT_ERR_FORMAT, rt_fs_read_small(file, 3, "test file", &text));
    /* A file where a directory should be. */
    snprintf(tmp, sizeof tmp, "%s/sub", file);
    CHECK_FAILS(RT_ERR_IO, rt_fs_mkdir_p(tmp, 0750, NULL));
    char small[8];
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_fs_path(small, sizeof small, "%s", dir));

    /* Files several processes write: created once, replaced whole, no
     * temporary left behind; 8 processes at once. */
    snprintf(file, sizeof file, "%s/tune.json", dir);
    int created = -1;
    CHECK_OK(rt_fs_create_exclusive(file, "one\n", 0644, &created));
    CHECK(created == 1);
    CHECK_OK(rt_fs_create_exclusive(file, "two\n", 0644, &created));
    CHECK(created == 0);
    CHECK_OK(rt_fs_read_small(file, 100, "test file", &text));
    CHECK(text && strcmp(text, "one\n") == 0);
    rt_free(text);
    snprintf(file, sizeof file, "%s/shared.csv", dir);
    pid_t kids[8];
    for (int k = 0; k < 8; k++)
        if ((kids[k] = fork()) == 0) {
            char body[32];
            snprintf(body, sizeof body, "writer %d\n", k);
            int ok = 1;
            for (int i = 0; i < 50; i++)
                ok &= rt_fs_write_shared(file, body, 0644) == RT_OK;
            _exit(ok ? 0 : 1);
        }
    for (int k = 0; k < 8; k++) {
        int ws = -1;
        CHECK(kids[k] > 0 && waitpid(kids[k], &ws, 0) == kids[k] && WIFEXITED(ws) &&
              WEXITSTATUS(ws) == 0);
    }
    CHECK_OK(rt_fs_read_small(file, 100, "test file", &text));
    CHECK(text && strncmp(text, "writer ", 7) == 0 && strlen(text) == 9);
    rt_free(text);
    DIR *d = opendir(dir);
    int temporaries = 0;
    for (struct dirent *de; d && (de = readdir(d)) != NULL;)
        temporaries += strstr(de->d_name, ".tmp") != NULL;
    if (d)
        closedir(d);
    CHECK(temporaries == 0);

    CHECK_OK(rt_fs_remove_tree(dir));
    CHECK(access(dir, F_OK) != 0);
    CHECK_OK(rt_fs_remove_tree(dir));   /* missing: fine */
}

int main(void)
{
    test_abort();
    test_fs();
    test_error_record();
    test_philox_known_answer();
    test_streams();
    test_permutation();
    test_edit_distance();
    return CHECK_DONE();
}
