/* Unit tests of the report writers (src/run/report.c, rundir.c, errfile.c)
 * in a one-rank MPI session: result.json and progress.csv hold the same
 * values, NaN/Inf become null / empty cells, a new column rewrites the CSV
 * header without misaligning rows, a torn tail left by a killed process is
 * cut off, error.txt names the first failing rank, modes ignore the umask,
 * unsafe storage paths are refused. Files are read back here with plain
 * stdio/jansson, not with the writer's code. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "check.h"
#include "rtrain/run.h"

static char storage[64];
static rt_config cfg;

static void path_of(char *out, size_t size, const char *run, const char *file)
{
    snprintf(out, size, "%s/%s/%s", storage, run, file);
}

/* Lines of a file (at most 16, each at most 4 KiB). */
static int read_lines(const char *path, char lines[16][4096])
{
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && n < 16 && fgets(lines[n], 4096, f))
        n++;
    if (f)
        fclose(f);
    return n;
}

/* Splits a CSV line that has no quoted cells. */
static int split_csv(char *line, char *cells[64])
{
    int n = 0;
    line[strcspn(line, "\n")] = '\0';
    for (char *p = line; n < 64; p++) {
        cells[n++] = p;
        p = strchr(p, ',');
        if (!p)
            break;
        *p = '\0';
    }
    return n;
}

static int file_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static void test_reports(rt_session *s)
{
    snprintf(cfg.run.name, sizeof cfg.run.name, "r");
    rt_run *run = NULL;
    CHECK_OK(rt_run_open(&run, s, &cfg));
    if (!run)
        return;
    rt_metric m1[] = {{"epoch", 1}, {"loss", 0.5}, {"acc", NAN}};
    CHECK_OK(rt_report(run, m1, 3, NULL));
    /* A later report adds a column and carries a checkpoint. */
    char ckpt[RT_PATH_MAX + 32];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint_000001", rt_run_dir(run));
    rt_metric m2[] = {{"epoch", 2}, {"loss", 0.1 + 0.2}, {"acc", 0.75}, {"extra", INFINITY}};
    CHECK_OK(rt_report(run, m2, 4, ckpt));
    CHECK(rt_run_iteration(run) == 2);
    /* Refused names do not count as reports. */
    rt_metric bad[] = {{"training_iteration", 1}};
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_report(run, bad, 1, NULL));
    rt_metric dup[] = {{"loss", 1}, {"loss", 2}};
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_report(run, dup, 2, NULL));
    CHECK(rt_run_iteration(run) == 2);

    char path[512], lines[16][4096];
    path_of(path, sizeof path, "r", "result.json");
    CHECK(read_lines(path, lines) == 2);
    json_t *j1 = json_loads(lines[0], 0, NULL), *j2 = json_loads(lines[1], 0, NULL);
    CHECK(j1 && j2);
    CHECK(json_is_null(json_object_get(j1, "acc")));              /* NaN -> null */
    CHECK(json_is_null(json_object_get(j2, "extra")));            /* Inf -> null */
    CHECK(json_real_value(json_object_get(j2, "loss")) == 0.1 + 0.2);   /* exact */
    CHECK(json_integer_value(json_object_get(j1, "training_iteration")) == 1);
    CHECK(json_integer_value(json_object_get(j2, "training_iteration")) == 2);
    CHECK(json_real_value(json_object_get(j1, "world_size")) == 1.0);
    CHECK(json_is_number(json_object_get(j2, "time_this_iter_s")));
    CHECK(json_number_value(json_object_get(j2, "time_total_s")) >=
          json_number_value(json_object_get(j2, "time_this_iter_s")));
    CHECK(json_is_integer(json_object_get(j1, "timestamp")));
    CHECK(!json_object_get(j1, "checkpoint"));
    CHECK(!strcmp(json_string_value(json_object_get(j2, "checkpoint")) ?: "",
                  "checkpoint_000001"));

    /* progress.csv: one header, every row as wide as it, same values. */
    path_of(path, sizeof path, "r", "progress.csv");
    CHECK(read_lines(path, lines) == 3);
    char *head[64], *row[2][64];
    int nh = split_csv(lines[0], head);
    int n1 = split_csv(lines[1], row[0]), n2 = split_csv(lines[2], row[1]);
    CHECK_MSG(n1 == nh && n2 == nh, "header %d cells, rows %d and %d", nh, n1, n2);
    /* The columns added by the second report come last, in its order. */
    CHECK(nh >= 2 && !strcmp(head[nh - 2], "extra") && !strcmp(head[nh - 1], "checkpoint"));
    json_t *js[2] = {j1, j2};
    for (int r = 0; r < 2 && n1 == nh && n2 == nh; r++)
        for (int c = 0; c < nh; c++) {
            json_t *v = json_object_get(js[r], head[c]);
            const char *cell = row[r][c];
            if (!v || json_is_null(v))
                CHECK_MSG(cell[0] == '\0', "row %d %s: '%s' should be empty", r, head[c], cell);
            else if (json_is_number(v))
                CHECK_MSG(strtod(cell, NULL) == json_number_value(v), "row %d %s: %s", r,
                          head[c], cell);
            else
                CHECK(!strcmp(cell, json_string_value(v)));
        }
    json_decref(j1);
    json_decref(j2);

    /* Modes whatever the umask (main sets umask 000). */
    CHECK(file_mode(rt_run_dir(run)) == 0750);
    path_of(path, sizeof path, "r", "params.json");
    CHECK(file_mode(path) == 0640);
    path_of(path, sizeof path, "r", "progress.csv");
    CHECK(file_mode(path) == 0640);

    /* error.txt from an agreed message of rank 3; the error stays recorded. */
    rt_status st = RT_ERROR(RT_ERR_NUMERIC, "[rank 3 node7] loss is nan");
    CHECK(rt_run_fail(run, st, 17) == RT_ERR_NUMERIC);
    CHECK(strstr(rt_error_message(), "loss is nan") != NULL);
    rt_error_clear();
    path_of(path, sizeof path, "r", "error.txt");
    int n = read_lines(path, lines);
    int found = 0;
    for (int i = 0; i < n; i++)
        found += !strcmp(lines[i], "rank: 3\n") + !strcmp(lines[i], "host: node7\n") +
                 !strcmp(lines[i], "step: 17\n") + !strcmp(lines[i], "message: loss is nan\n");
    CHECK_MSG(found == 4, "error.txt has %d of the 4 expected fields", found);
    CHECK(file_mode(path) == 0640);
    rt_run_close(run);
}

/* A process killed mid-write leaves a line without newline; the next
 * process's first report cuts it off instead of gluing onto it. */
static void test_torn_tail(rt_session *s)
{
    char path[512], lines[16][4096];
    path_of(path, sizeof path, "r", "result.json");
    FILE *f = fopen(path, "a");
    fputs("{\"epoch\":3.0,\"lo", f);
    fclose(f);
    path_of(path, sizeof path, "r", "progress.csv");
    f = fopen(path, "a");
    fputs("3.0,0.2", f);
    fclose(f);
    rt_run *run = NULL;
    CHECK_OK(rt_run_open(&run, s, &cfg));
    if (!run)
        return;
    rt_metric m[] = {{"epoch", 3}, {"loss", 0.2}};
    CHECK_OK(rt_report(run, m, 2, NULL));
    rt_run_close(run);
    path_of(path, sizeof path, "r", "result.json");
    int n = read_lines(path, lines);
    CHECK(n == 3);
    for (int i = 0; i < n; i++) {
        json_t *j = json_loads(lines[i], 0, NULL);
        CHECK_MSG(j != NULL, "result.json line %d is not JSON: %s", i + 1, lines[i]);
        json_decref(j);
    }
    path_of(path, sizeof path, "r", "progress.csv");
    n = read_lines(path, lines);
    CHECK(n == 4);
    char *cells[64];
    int nh = split_csv(lines[0], cells);
    for (int i = 1; i < n; i++)
        CHECK(split_csv(lines[i], cells) == nh);
}

static void test_reduce(rt_session *s)
{
    rt_run *run = NULL;
    CHECK_OK(rt_run_open(&run, s, &cfg));
    if (!run)
        return;
    /* One rank: every reduction is the identity (exact). */
    double v[3] = {1.5, -2, 3};
    CHECK_OK(rt_run_reduce(run, v, 3, RT_REDUCE_MEAN));
    CHECK(v[0] == 1.5 && v[1] == -2 && v[2] == 3);
    rt_metric m[] = {{"a", 4}, {"b", 5}};
    CHECK_OK(rt_run_reduce_metrics(run, m, 2, RT_REDUCE_MAX));
    CHECK(m[0].value == 4 && m[1].value == 5);
    rt_run_close(run);
}

static void test_storage_refused(rt_session *s)
{
    rt_config c = cfg;
    snprintf(c.run.storage_path, sizeof c.run.storage_path, "%s/ww", storage);
    mkdir(c.run.storage_path, 0700);
    chmod(c.run.storage_path, 0777);
    rt_run *run = NULL;
    CHECK_FAILS(RT_ERR_CONFIG, rt_run_open(&run, s, &c));
    CHECK(run == NULL);
    /* The sticky bit (like /tmp) makes it safe. */
    chmod(c.run.storage_path, 01777);
    CHECK_OK(rt_run_open(&run, s, &c));
    rt_run_close(run);
    /* Below a world-writable non-sticky directory that we would create. */
    chmod(c.run.storage_path, 0777);
    snprintf(c.run.storage_path, sizeof c.run.storage_path, "%s/ww/new/deeper", storage);
    CHECK_FAILS(RT_ERR_CONFIG, rt_run_open(&run, s, &c));
}

int main(int argc, char **argv)
{
    umask(0);
    snprintf(storage, sizeof storage, "/tmp/rtrain-report.XXXXXX");
    if (!mkdtemp(storage))
        return 1;
    rt_session *s = NULL;
    CHECK_OK(rt_session_init(&s, &argc, &argv));
    if (!s)
        return CHECK_DONE();
    rt_config_defaults(&cfg);
    snprintf(cfg.source, sizeof cfg.source, "test.cfg");
    snprintf(cfg.run.storage_path, sizeof cfg.run.storage_path, "%s", storage);
    cfg.run.verbose = 0;
    test_reports(s);
    test_torn_tail(s);
    test_reduce(s);
    test_storage_refused(s);
    rt_session_finalize(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", storage);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", storage);
    return CHECK_DONE();
}
