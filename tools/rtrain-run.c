/* rtrain-run: the launcher that retries (Ray Train's FailureConfig for MPI).
 *
 *   rtrain-run [-n N] [--max-failures K] [--launcher mpirun|srun]
 *              [--default-name NAME] [--abort-grace S] CONFIG [key=value...]
 *
 * An MPI job dies as a whole when one rank dies, so failures are retried
 * here, outside MPI: rtrain-run starts `mpirun -np N rtrain CONFIG ...` (or,
 * inside a Slurm allocation, `srun --mpi=pmix -n N rtrain ...`) and starts it
 * again when it fails, up to failure.max_failures times (0: never, -1:
 * without limit). Every attempt resumes from the newest committed checkpoint
 * of the run directory (run.resume = auto), so the run directory must be the
 * same for all attempts: when neither CONFIG nor the overrides set run.name,
 * rtrain-run picks one name once (rtrain_<config>_<UTC time>, as rtrain
 * would, or --default-name: jobs/train.sbatch names the run after the Slurm
 * job, so that a requeued job finds it) and passes run.name=... to every
 * attempt.
 *
 * What rtrain's exit code means here (README, "Exit codes"):
 *   0  success                         -> done, exit 0
 *   2  config/data/usage error         -> never retried, exit 2
 *   3  preempted, checkpoint written   -> inside Slurm: exit 3 so the batch
 *      script requeues the job; outside: started again (not counted as a
 *      failure: nothing went wrong)
 *   other (1, or a rank killed)        -> a failure: retried while the
 *      budget lasts, else exit 1 with a one-line message naming the last
 *      attempt's code (mpirun's 137 for a killed rank would read as if
 *      rtrain-run itself had been killed)
 * When rtrain-run itself receives SIGTERM, SIGINT or SIGUSR1 it forwards the
 * signal to the launcher (the first SIGTERM or SIGINT as SIGUSR1, see
 * on_stop_signal) and starts no further attempt; it exits 3 when the ranks
 * wrote their stop checkpoint, even if the launcher reports a failure.
 *
 * Every attempt is recorded in RUN_DIR/attempts.json (replaced atomically:
 * temp file + rename), which rtrain-results reads:
 *   {"restarts": R, "attempts": [{"attempt": 1, "started": S, "ended": E,
 *     "exit_code": C, "signal": null, ...}, ...]}
 * Attempts of earlier invocations (a requeued Slurm job) are kept.
 *
 * Where things are found: rtrain in $RTRAIN_BIN, else next to this program,
 * else in the build tree (../src/cli/rtrain), else on PATH; mpirun is
 * $MPIRUN (may carry options, split at blanks) or `mpirun`; srun from PATH.
 * The environment passes through to rtrain unchanged, with
 * OMP_WAIT_POLICY=PASSIVE added when it is unset (see main).
 *
 * Exit codes: those above; 2 also for a usage error of rtrain-run itself. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "rtrain/config.h"
#include "core/fs.h"

#define MAX_ARGS 512                   /* launcher words + rtrain argv */
#define ATTEMPTS_MAX_BYTES (16 << 20)  /* bound on an existing attempts.json */
#define ABORT_GRACE_S 60               /* see wait_launcher */

typedef enum launcher { LAUNCH_AUTO, LAUNCH_MPIRUN, LAUNCH_SRUN } launcher;

typedef struct options {
    int np;                    /* 0: default (SLURM_NTASKS, scaling.num_workers, 1) */
    int max_failures;          /* valid when max_failures_set */
    int max_failures_set;
    launcher launch;
    int abort_grace_s;         /* --abort-grace (default ABORT_GRACE_S) */
    const char *default_name;  /* run.name when CONFIG sets none; NULL: rtrain_<cfg>_<time> */
    const char *config;
    int noverrides;
    char **overrides;
} options;

/* The run as rtrain-run sees it: where its directory is and how to start it. */
typedef struct plan {
    int config_ok;             /* CONFIG loaded here: retries are possible */
    int in_slurm;
    int max_failures;
    int num_workers;           /* scaling.num_workers (0: not set) */
    int abort_grace_s;
    char run_dir[RT_PATH_MAX + 300];
    char name_override[300];   /* run.name="..." when pinned here, else "" */
    char rtrain[PATH_MAX];
    char *argv[MAX_ARGS];
    char *mpirun_words;        /* strdup'ed $MPIRUN, split in place */
} plan;

/* Written by the signal handler, read by the loop. */
static volatile sig_atomic_t child_pid = 0;
static volatile sig_atomic_t stop_signal = 0;
static volatile sig_atomic_t stop_count = 0;   /* SIGTERM and SIGINT received */
static volatile time_t stop_time = 0;           /* when the first arrived */

static void usage(FILE *f)
{
    fputs("usage: rtrain-run [-n N] [--max-failures K] [--launcher mpirun|srun]\n"
          "                  [--default-name NAME] [--abort-grace S] CONFIG [key=value ...]\n"
          "Runs rtrain on N ranks (mpirun; srun --mpi=pmix inside a Slurm allocation)\n"
          "and starts it again when it fails, up to failure.max_failures times\n"
          "(K overrides it; -1: without limit). Each attempt resumes from the newest\n"
          "checkpoint; attempts are recorded in RUN_DIR/attempts.json.\n"
          "  -n N              ranks (default: $SLURM_NTASKS in Slurm, else\n"
          "                    scaling.num_workers, else 1)\n"
          "  --max-failures K  failures to retry (0: none, -1: unlimited)\n"
          "  --launcher L      mpirun or srun (default: srun when $SLURM_JOB_ID is set)\n"
          "  --default-name NAME  run.name when CONFIG and the overrides set none\n"
          "                    (default: rtrain_<config>_<UTC time>, fixed for all attempts)\n"
          "  --abort-grace S   once rtrain has recorded a failure (RUN_DIR/error.txt), the\n"
          "                    launcher gets S seconds to end before it is killed (default\n"
          "                    60; 0: wait for ever)\n"
          "Exit codes: 0 success, 1 failure (retries exhausted), 2 input error (never\n"
          "retried), 3 preempted after a checkpoint (inside Slurm: requeue the job).\n"
          "Environment: RTRAIN_BIN (the rtrain program), MPIRUN (mpirun command).\n", f);
}

/* ---- command line ------------------------------------------------------------- */

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* Returns 0, or an exit code (usage error 2, --help 0 as -1). */
static int parse_args(options *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->abort_grace_s = ABORT_GRACE_S;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(a, "-n") || !strcmp(a, "-np") || !strcmp(a, "--np")) {
            if (!val || parse_int(val, 1, 1 << 20, &o->np)) {
                fprintf(stderr, "rtrain-run: error: %s needs a number of ranks >= 1\n", a);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--max-failures")) {
            if (!val || parse_int(val, -1, 1 << 20, &o->max_failures)) {
                fprintf(stderr, "rtrain-run: error: --max-failures needs -1 (unlimited), "
                        "0 (no retry) or a positive count\n");
                return 2;
            }
            o->max_failures_set = 1;
            i++;
        } else if (!strcmp(a, "--launcher")) {
            if (!val || (strcmp(val, "mpirun") && strcmp(val, "srun"))) {
                fprintf(stderr, "rtrain-run: error: --launcher is mpirun or srun\n");
                return 2;
            }
            o->launch = !strcmp(val, "srun") ? LAUNCH_SRUN : LAUNCH_MPIRUN;
            i++;
        } else if (!strcmp(a, "--abort-grace")) {
            if (!val || parse_int(val, 0, 1 << 24, &o->abort_grace_s)) {
                fprintf(stderr, "rtrain-run: error: --abort-grace needs seconds (0: wait for "
                        "ever)\n");
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--default-name")) {
            if (!val || !*val || strlen(val) > 200) {
                fprintf(stderr, "rtrain-run: error: --default-name needs a run name "
                        "(1 to 200 characters)\n");
                return 2;
            }
            o->default_name = val;
            i++;
        } else {
            fprintf(stderr, "rtrain-run: error: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    o->config = argv[i];
    o->noverrides = argc - i - 1;
    o->overrides = argv + i + 1;
    return 0;
}

/* ---- finding programs ------------------------------------------------------------ */

static int is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int search_path(char *out, size_t size, const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        return -1;
    char *copy = strdup(path), *save = NULL;
    int found = -1;
    for (char *dir = strtok_r(copy, ":", &save); copy && dir && found; dir = strtok_r(NULL, ":", &save)) {
        snprintf(out, size, "%s/%s", *dir ? dir : ".", prog);
        if (is_executable(out))
            found = 0;
    }
    free(copy);
    return found;
}

/* $RTRAIN_BIN, next to this program (installed together), the build tree
 * (tools/ and src/cli/ are siblings), then PATH. */
static int find_rtrain(char *out, size_t size)
{
    const char *env = getenv("RTRAIN_BIN");
    if (env && *env) {
        snprintf(out, size, "%s", env);
        return is_executable(out) ? 0 : -1;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        const char *dir = dirname(self);
        static const char *const rel[] = {"rtrain", "../src/cli/rtrain"};
        for (size_t k = 0; k < sizeof rel / sizeof *rel; k++) {
            snprintf(out, size, "%s/%s", dir, rel[k]);
            if (is_executable(out))
                return 0;
        }
    }
    return search_path(out, size, "rtrain");
}

/* ---- the plan: run directory, name, argv ----------------------------------------- */

/* rtrain's own rule (src/run/rundir.c): storage_path, $RTRAIN_STORAGE,
 * ./rtrain_results. */
static const char *storage_path(const rt_config *cfg)
{
    const char *s = cfg->run.storage_path;
    if (!s[0])
        s = getenv("RTRAIN_STORAGE");
    return s && s[0] ? s : "rtrain_results";
}

/* Characters outside [A-Za-z0-9._-] become '_': the name is a directory
 * name, and the override then needs no escaping. */
static void sanitize_name(char *s)
{
    for (; *s; s++)
        if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
            !(*s >= '0' && *s <= '9') && *s != '.' && *s != '-' && *s != '_')
            *s = '_';
}

/* --default-name, else rtrain_<config file name without extension>_<UTC
 * time>, the name rtrain would choose, fixed once here. */
static void pinned_name(char *out, size_t size, const options *o)
{
    if (o->default_name) {
        snprintf(out, size, "%s", o->default_name);
    } else {
        char base[200], stamp[32];
        const char *b = strrchr(o->config, '/');
        snprintf(base, sizeof base, "%s", b ? b + 1 : o->config);
        char *dot = strrchr(base, '.');
        if (dot && dot != base)
            *dot = '\0';
        time_t now = time(NULL);
        strftime(stamp, sizeof stamp, "%Y-%m-%d_%H-%M-%S", gmtime(&now));
        snprintf(out, size, "rtrain_%s_%s", base, stamp);
    }
    sanitize_name(out);
    if (!strcmp(out, ".") || !strcmp(out, ".."))
        snprintf(out, size, "rtrain_run");
}

/* Loads CONFIG as rtrain will (same library), for max_failures and the run
 * directory. If it does not load here, rtrain is run once anyway: it is the
 * authority on its configuration and reports the problem in its own words
 * (and a newer rtrain may know a key this rtrain-run does not). */
static void plan_config(plan *p, const options *o)
{
    static rt_config cfg;
    p->config_ok = rt_config_load(&cfg, o->config, o->noverrides, o->overrides) == RT_OK;
    rt_error_clear();
    if (!p->config_ok)
        return;
    p->max_failures = o->max_failures_set ? o->max_failures : cfg.failure.max_failures;
    p->num_workers = cfg.scaling.num_workers;
    char name[256];
    if (cfg.run.name[0]) {
        snprintf(name, sizeof name, "%s", cfg.run.name);
    } else {
        pinned_name(name, sizeof name, o);
        snprintf(p->name_override, sizeof p->name_override, "run.name=\"%s\"", name);
    }
    snprintf(p->run_dir, sizeof p->run_dir, "%s/%s", storage_path(&cfg), name);
}

static int default_np(const options *o, const plan *p)
{
    if (o->np > 0)
        return o->np;
    const char *tasks = getenv("SLURM_NTASKS");
    int n;
    if (p->in_slurm && tasks && !parse_int(tasks, 1, 1 << 20, &n))
        return n;
    return p->num_workers > 0 ? p->num_workers : 1;
}

/* argv: the launcher's words, then rtrain CONFIG overrides [run.name=...]. */
static int plan_argv(plan *p, const options *o)
{
    static char np_text[16];
    snprintf(np_text, sizeof np_text, "%d", default_np(o, p));
    int k = 0;
    if (p->in_slurm) {
        /* --kill-on-bad-exit: a rank that dies takes the step down at once
         * instead of leaving the others waiting in a collective. */
        static char *const words[] = {"srun", "--mpi=pmix", "--kill-on-bad-exit=1", "-n"};
        for (size_t w = 0; w < sizeof words / sizeof *words; w++)
            p->argv[k++] = words[w];
        p->argv[k++] = np_text;
    } else {
        const char *mpirun = getenv("MPIRUN");
        p->mpirun_words = strdup(mpirun && *mpirun ? mpirun : "mpirun");
        if (!p->mpirun_words)
            return -1;
        char *save = NULL;
        for (char *w = strtok_r(p->mpirun_words, " \t", &save); w && k < 32;
             w = strtok_r(NULL, " \t", &save))
            p->argv[k++] = w;
        /* rtrain runs its own thread pool per rank (scaling.threads_per_worker):
         * binding each rank to one core would serialise it. */
        p->argv[k++] = "-np";
        p->argv[k++] = np_text;
        p->argv[k++] = "--bind-to";
        p->argv[k++] = "none";
        p->argv[k++] = "-x";   /* to the ranks on other nodes too */
        p->argv[k++] = "OMP_WAIT_POLICY";
        p->argv[k++] = "-x";
        p->argv[k++] = "RTRAIN_LAUNCH_ID";
    }
    if (k + 3 + o->noverrides >= MAX_ARGS)
        return -1;
    p->argv[k++] = p->rtrain;
    p->argv[k++] = (char *)o->config;
    for (int i = 0; i < o->noverrides; i++)
        p->argv[k++] = o->overrides[i];
    if (p->name_override[0])
        p->argv[k++] = p->name_override;
    p->argv[k] = NULL;
    return 0;
}

/* ---- attempts.json ---------------------------------------------------------------- */

typedef struct attempt {
    time_t started, ended;
    int exit_code;             /* 128 + signal when the launcher was killed */
    int signal;                /* 0: none */
    int not_started;           /* the launcher said 0 but rtrain never ran */
} attempt;

/* The attempts recorded so far (a requeued job's earlier ones), or a new
 * empty list when there is none or it cannot be read (a warning: the run
 * matters more than its record). */
static json_t *read_attempts(const char *path)
{
    struct stat st;
    json_t *doc = NULL;
    if (stat(path, &st) == 0) {
        json_error_t err;
        if (st.st_size > ATTEMPTS_MAX_BYTES)
            fprintf(stderr, "rtrain-run: warning: %s is larger than %d bytes; starting a "
                    "new record\n", path, ATTEMPTS_MAX_BYTES);
        else if (!(doc = json_load_file(path, 0, &err)))
            fprintf(stderr, "rtrain-run: warning: %s:%d: %s; starting a new record\n", path,
                    err.line, err.text);
    }
    json_t *list = doc ? json_object_get(doc, "attempts") : NULL;
    json_t *out = json_is_array(list) ? json_incref(list) : json_array();
    json_decref(doc);
    return out;
}

static json_t *attempt_json(int number, const attempt *a, const plan *p)
{
    json_t *j = json_pack("{s:i, s:I, s:I, s:i}", "attempt", number, "started",
                          (json_int_t)a->started, "ended", (json_int_t)a->ended,
                          "exit_code", a->exit_code);
    if (!j)
        return NULL;
    json_object_set_new(j, "signal", a->signal ? json_integer(a->signal) : json_null());
    json_object_set_new(j, "launcher", json_string(p->in_slurm ? "srun" : "mpirun"));
    if (a->not_started)
        json_object_set_new(j, "note", json_string("the launcher exited 0 but rtrain wrote "
                                                   "nothing: counted as a failure"));
    const char *job = getenv("SLURM_JOB_ID");
    if (p->in_slurm && job)
        json_object_set_new(j, "slurm_job_id", json_string(job));
    return j;
}

/* Writes doc to path atomically (a reader sees the old record or the new
 * one); 0 on success, else -1 with the reason in rt_error_message(). */
static int write_atomic(const char *path, const json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(1));
    if (!text) {
        RT_ERROR(RT_ERR_NOMEM, "out of memory formatting %s", path);
        return -1;
    }
    size_t len = strlen(text);
    char *line = realloc(text, len + 2);   /* end the file with a newline */
    if (!line) {
        free(text);
        RT_ERROR(RT_ERR_NOMEM, "out of memory formatting %s", path);
        return -1;
    }
    memcpy(line + len, "\n", 2);
    rt_status st = rt_fs_write_atomic(path, line, 0640);
    free(line);
    return st == RT_OK ? 0 : -1;
}

/* Appends attempt a; returns the number of attempts recorded (0 when the
 * record could not be written: a warning, not a failure). An input error
 * (exit 2) before rtrain made the directory leaves no directory behind. */
static int record_attempt(const plan *p, const attempt *a)
{
    if (!p->config_ok)
        return 0;
    struct stat st;
    if (stat(p->run_dir, &st) != 0) {
        if (a->exit_code == RT_EXIT_INPUT)
            return 0;
        if (rt_fs_mkdir_p(p->run_dir, 0750, NULL) != RT_OK) {
            fprintf(stderr, "rtrain-run: warning: %s (the run goes on)\n", rt_error_message());
            rt_error_clear();
            return 0;
        }
    }
    char path[RT_PATH_MAX + 400];
    snprintf(path, sizeof path, "%s/attempts.json", p->run_dir);
    json_t *list = read_attempts(path);
    int n = (int)json_array_size(list) + 1;
    json_array_append_new(list, attempt_json(n, a, p));
    json_t *doc = json_pack("{s:i, s:o}", "restarts", n - 1, "attempts", list);
    int rc = doc ? write_atomic(path, doc) : -1;
    json_decref(doc);
    if (rc != 0) {
        fprintf(stderr, "rtrain-run: warning: cannot write %s: %s (the run goes on)\n", path,
                rt_error_message());
        rt_error_clear();
        return 0;
    }
    return n;
}

/* ---- running one attempt ---------------------------------------------------------- */

/* Forwards stop signals to the launcher. Both Open MPI's mpirun and srun
 * answer SIGTERM and SIGINT by ending the job themselves (mpirun sends the
 * ranks SIGTERM, then SIGKILL, and exits 1 even when the ranks wrote their
 * stop checkpoint and exited 3), but pass SIGUSR1 on to the ranks and wait
 * for them: so the first SIGTERM or SIGINT reaches rtrain as SIGUSR1, which
 * rtrain treats the same (checkpoint, exit 3), and mpirun exits 3. A second
 * one is passed on as it is: stop now. */
static int forwarded_signal(int sig)
{
    return sig == SIGUSR1 || stop_count > 1 ? sig : SIGUSR1;
}

static void on_stop_signal(int sig)
{
    stop_signal = sig;
    if (sig == SIGTERM || sig == SIGINT) {
        if (stop_count++ == 0)
            stop_time = time(NULL);
    }
    pid_t pid = (pid_t)child_pid;
    if (pid > 0)
        kill(pid, forwarded_signal(sig));
}

static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

/* Whether RUN_DIR/error.txt was written at or after `since`. */
static int failure_recorded(const plan *p, time_t since)
{
    char path[RT_PATH_MAX + 320];
    struct stat st;
    snprintf(path, sizeof path, "%s/error.txt", p->run_dir);
    return p->config_ok && stat(path, &st) == 0 && st.st_mtime >= since;
}

/* Waits for the launcher. A rank that ends the job (the watchdog's abort,
 * with error.txt from rank 0) is followed by mpirun within seconds, except
 * when a node's daemon is unreachable (a node cut off or lost without a
 * word): mpirun then waits for it until TCP gives up, many minutes. So once
 * error.txt of this attempt exists, the launcher gets abort_grace_s more
 * seconds, then SIGKILL (its ranks on live nodes are gone already), and the
 * attempt counts as failed. */
static void wait_launcher(const plan *p, pid_t pid, time_t started, int *status)
{
    time_t recorded = 0;
    int killed = 0;
    for (;;) {
        pid_t r = p->abort_grace_s > 0 ? waitpid(pid, status, WNOHANG) : waitpid(pid, status, 0);
        if (r == pid || (r < 0 && errno != EINTR))
            return;
        if (r != 0)
            continue;
        time_t now = time(NULL);
        if (!recorded && failure_recorded(p, started))
            recorded = now;
        if (recorded && !killed && now - recorded >= p->abort_grace_s) {
            fprintf(stderr, "rtrain-run: rtrain recorded a failure in %s/error.txt %d s ago "
                    "but the launcher is still running (waiting for a lost node?): killing "
                    "it\n", p->run_dir, (int)(now - recorded));
            kill(pid, SIGKILL);
            killed = 1;
        }
        usleep(200 * 1000);
    }
}

/* Runs the launcher once; fills a. Stop signals are blocked across fork so
 * that one arriving then is forwarded as soon as child_pid is known. */
static int run_attempt(const plan *p, attempt *a)
{
    sigset_t stops, old;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGUSR1);
    sigprocmask(SIG_BLOCK, &stops, &old);
    a->started = time(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGUSR1, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(p->argv[0], p->argv);
        fprintf(stderr, "rtrain-run: error: cannot start %s: %s (install it, or set %s)\n",
                p->argv[0], strerror(errno), p->in_slurm ? "PATH" : "MPIRUN");
        _exit(127);
    }
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        fprintf(stderr, "rtrain-run: error: fork failed: %s\n", strerror(errno));
        return -1;
    }
    child_pid = pid;
    int forward_now = stop_signal;   /* arrived before the child existed */
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (forward_now)
        kill(pid, forwarded_signal(forward_now));
    int status;
    wait_launcher(p, pid, a->started, &status);
    child_pid = 0;
    a->ended = time(NULL);
    a->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    a->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + a->signal;
    return 0;
}

/* Whether rtrain wrote any file at the top of the run directory since
 * `since` (it rewrites params.json whenever it opens the run). */
static int run_dir_touched(const char *dir, time_t since)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int touched = 0;
    char path[RT_PATH_MAX + 600];
    struct stat st;
    for (struct dirent *e; !touched && (e = readdir(d));) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        touched = e->d_name[0] != '.' && strcmp(e->d_name, "attempts.json") &&
                  stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime >= since;
    }
    closedir(d);
    return touched;
}

/* srun has been seen to exit 0 when its step failed to launch (Slurm
 * 22.05, "task launch failed"): a success that left no trace in the run
 * directory is turned into a failure, so it is retried, not reported done. */
static void check_started(const plan *p, attempt *a)
{
    if (a->exit_code != RT_EXIT_OK || !p->config_ok || run_dir_touched(p->run_dir, a->started))
        return;
    fprintf(stderr, "rtrain-run: the launcher exited 0 but rtrain wrote nothing in %s: the "
            "tasks did not start? Counting the attempt as failed\n", p->run_dir);
    a->not_started = 1;
    a->exit_code = RT_EXIT_FAILURE;
}

/* Whether the ranks stopped with a checkpoint although the launcher says
 * otherwise: after a stop signal, a checkpoint was committed (the run's
 * checkpoint_index.json rewritten) at or after the signal and this attempt
 * wrote no error.txt. mpirun exits 1 when it ended the job on a signal of
 * its own even though every rank wrote the stop checkpoint and exited 3. */
static int stopped_with_checkpoint(const plan *p, const attempt *a)
{
    char path[RT_PATH_MAX + 64];
    struct stat st;
    if (!stop_time || !p->config_ok)
        return 0;
    snprintf(path, sizeof path, "%s/error.txt", p->run_dir);
    if (lstat(path, &st) == 0 && st.st_mtime >= a->started)
        return 0;
    snprintf(path, sizeof path, "%s/checkpoint_index.json", p->run_dir);
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime >= stop_time;
}

/* ---- the retry loop ---------------------------------------------------------------- */

static void print_command(int number, char *const *argv)
{
    fprintf(stderr, "rtrain-run: attempt %d:", number);
    for (int i = 0; argv[i]; i++)
        fprintf(stderr, " %s", argv[i]);
    fputc('\n', stderr);
}

/* What to do after an attempt: -1 start again, else exit with that code. */
static int decide(const plan *p, const attempt *a, int *failures)
{
    int code = a->exit_code;
    if (code == RT_EXIT_OK)
        return 0;
    if (code == RT_EXIT_INPUT) {
        fprintf(stderr, "rtrain-run: rtrain reported an input or configuration error "
                "(exit 2): not retried; fix the input and run again\n");
        return code;
    }
    if (stop_signal) {
        if (code != RT_EXIT_PREEMPTED && stopped_with_checkpoint(p, a)) {
            fprintf(stderr, "rtrain-run: stopped by signal %d: the launcher exited %d, but "
                    "the ranks wrote their stop checkpoint in %s: exit 3 (resume with the "
                    "same command)\n", (int)stop_signal, code, p->run_dir);
            return RT_EXIT_PREEMPTED;
        }
        fprintf(stderr, "rtrain-run: stopped by signal %d (exit %d): no further attempt\n",
                (int)stop_signal, code);
        return code;
    }
    if (code == RT_EXIT_PREEMPTED) {
        if (p->in_slurm) {
            fprintf(stderr, "rtrain-run: preempted after a checkpoint (exit 3): leaving the "
                    "restart to the batch script (requeue)\n");
            return code;
        }
        fprintf(stderr, "rtrain-run: preempted after a checkpoint (exit 3): starting again\n");
        return -1;
    }
    ++*failures;
    if (!p->config_ok) {
        fprintf(stderr, "rtrain-run: giving up: the attempt failed with exit code %d; no "
                "retry, because the configuration did not load here\n", code);
        return RT_EXIT_FAILURE;
    }
    if (p->max_failures >= 0 && *failures > p->max_failures) {
        char error_txt[RT_PATH_MAX + 320];
        snprintf(error_txt, sizeof error_txt, "%s/error.txt", p->run_dir);
        int has_error = access(error_txt, R_OK) == 0;
        fprintf(stderr, "rtrain-run: giving up after %d failure(s) (failure.max_failures = %d): "
                "the last attempt failed with exit code %d%s; %s%s\n", *failures,
                p->max_failures, code, a->signal ? " (the launcher was killed by a signal)" :
                code > 128 ? " (a rank was killed by a signal)" : "",
                has_error ? "see " : "the launcher's output above says why",
                has_error ? error_txt : "");
        return RT_EXIT_FAILURE;
    }
    char allowed[16];
    snprintf(allowed, sizeof allowed, "%d", p->max_failures);
    fprintf(stderr, "rtrain-run: attempt failed with exit code %d: retrying (failure %d of "
            "%s allowed), resuming from the newest checkpoint\n", code, *failures,
            p->max_failures < 0 ? "unlimited" : allowed);
    return -1;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_args(&o, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;

    static plan p;
    const char *job = getenv("SLURM_JOB_ID");
    p.in_slurm = o.launch == LAUNCH_SRUN || (o.launch == LAUNCH_AUTO && job && *job);
    p.abort_grace_s = o.abort_grace_s;
    if (find_rtrain(p.rtrain, sizeof p.rtrain) != 0) {
        fprintf(stderr, "rtrain-run: error: cannot find the rtrain program (%s): install it "
                "next to rtrain-run or on PATH, or set RTRAIN_BIN\n",
                getenv("RTRAIN_BIN") ? getenv("RTRAIN_BIN") : "not on PATH");
        return RT_EXIT_INPUT;
    }
    plan_config(&p, &o);
    /* oneDNN's OpenMP threads spin between convolutions by default and
     * compete with rtrain's own threads (17% slower ResNet18 steps at 1 rank
     * x 2 threads, bench/RESULTS.md); libgomp reads the policy only when it
     * is loaded, so the launcher sets it for the ranks (a value already set
     * is kept). */
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    /* The attempts are one job: each may take over the run directory's
     * lock that an earlier one left (src/run/lock.c), wherever it ran. */
    char launch_id[128], host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(launch_id, sizeof launch_id, "rtrain-run-%s-%d-%lld", host, (int)getpid(),
             (long long)time(NULL));
    setenv("RTRAIN_LAUNCH_ID", launch_id, 0);
    if (plan_argv(&p, &o) != 0) {
        fprintf(stderr, "rtrain-run: error: too many arguments (at most %d)\n", MAX_ARGS - 40);
        return RT_EXIT_INPUT;
    }
    /* A missing launcher would fail every attempt the same way. */
    char launcher_path[PATH_MAX];
    if (strchr(p.argv[0], '/') ? !is_executable(p.argv[0])
                               : search_path(launcher_path, sizeof launcher_path, p.argv[0])) {
        fprintf(stderr, "rtrain-run: error: cannot find the launcher '%s': install it or %s\n",
                p.argv[0], p.in_slurm ? "put srun on PATH" : "set MPIRUN to the mpirun to use");
        return RT_EXIT_INPUT;
    }
    install_handlers();

    int failures = 0;
    for (int number = 1;; number++) {
        print_command(number, p.argv);
        attempt a = {0};
        if (run_attempt(&p, &a) != 0)
            return RT_EXIT_FAILURE;
        check_started(&p, &a);
        record_attempt(&p, &a);
        int code = decide(&p, &a, &failures);
        if (code >= 0) {
            free(p.mpirun_words);
            return code;
        }
        sleep(1);   /* let the old job's ports and files go; a signal ends it early */
        if (stop_signal) {
            /* Asked to stop between attempts: nothing runs, the newest
             * checkpoint is where a restart resumes, as after exit 3. */
            free(p.mpirun_words);
            return RT_EXIT_PREEMPTED;
        }
    }
}
