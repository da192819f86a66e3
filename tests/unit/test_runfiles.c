/* Unit tests of the run-directory readers shared by the library and
 * rtrain-results (src/run/runfiles.c): number text, CSV cells, result.json
 * with torn and bad lines, checkpoint ranking, error.txt fields, restarts.
 * No MPI. Files are written here by hand, never by the code under test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "rtrain/ckpt.h"
#include "run/runfiles.h"

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* Every double must come back bit for bit: the writer promises that
 * result.json and progress.csv hold the exact values rank 0 had. */
static void test_format_number(void)
{
    char buf[40];
    rt_rng rng;
    rt_rng_init(&rng, rt_rng_key(7, 0, 0, 0));
    int exact = 1;
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = ((uint64_t)rt_rng_u32(&rng) << 32) | rt_rng_u32(&rng);
        double v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v))
            continue;
        rt_runfiles_format_number(buf, sizeof buf, v);
        if (strtod(buf, NULL) != v) {
            exact = 0;
            fprintf(stderr, "%.17g -> %s\n", v, buf);
            break;
        }
    }
    CHECK(exact);
    /* Integral values stay reals (so world_size reads back as 2.0, like the
     * bench harness expects), and short values stay short. */
    rt_runfiles_format_number(buf, sizeof buf, 2.0);
    CHECK(!strcmp(buf, "2.0"));
    rt_runfiles_format_number(buf, sizeof buf, 0.1);
    CHECK(!strcmp(buf, "0.1"));
    rt_runfiles_format_number(buf, sizeof buf, 1e20);
    CHECK(strtod(buf, NULL) == 1e20 && strchr(buf, 'e'));
    rt_runfiles_format_number(buf, sizeof buf, NAN);
    CHECK(buf[0] == '\0');
    rt_runfiles_format_number(buf, sizeof buf, -INFINITY);
    CHECK(buf[0] == '\0');
}

/* The console's form of a metric: whole numbers and values of 1000 or
 * more as integers, 4 significant digits below, no exponent between 1e-4
 * and 2^53; and 4 significant digits are within half a unit of the 4th of
 * the value (relative error < 5e-4, checked over a range of values). */
static void test_format_short(void)
{
    static const struct { double v; const char *text; } cases[] = {
        {10320.0, "10320"}, {24140.37, "24140"}, {3.0, "3"}, {0.0, "0"}, {-7.0, "-7"},
        {999.44, "999.4"}, {999.6, "1000"}, {0.88123, "0.8812"}, {2.302585, "2.303"},
        {0.5, "0.5"}, {-0.25, "-0.25"}, {0.001, "0.001"}, {0.00012345, "0.0001234"},
        {1.5e-05, "1.5e-05"}, {9.9996, "10"}, {1e300, "1e+300"},
    };
    char buf[48];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rt_runfiles_format_short(buf, sizeof buf, cases[i].v);
        CHECK_MSG(!strcmp(buf, cases[i].text), "%.17g -> %s, expected %s", cases[i].v, buf,
                  cases[i].text);
    }
    rt_runfiles_format_short(buf, sizeof buf, NAN);
    CHECK(!strcmp(buf, "nan"));
    rt_runfiles_format_short(buf, sizeof buf, -INFINITY);
    CHECK(!strcmp(buf, "-inf"));
    int close = 1;
    for (double v = 1.234567e-4; v < 1e6 && close; v *= 1.37) {
        rt_runfiles_format_short(buf, sizeof buf, v);
        close = !strchr(buf, 'e') && fabs(strtod(buf, NULL) - v) <= 5e-4 * v;
        if (!close)
            fprintf(stderr, "%.17g -> %s\n", v, buf);
    }
    CHECK(close);
}

static void test_csv_cell(void)
{
    char buf[64];
    CHECK(rt_runfiles_csv_cell(buf, sizeof buf, "plain") == 5 && !strcmp(buf, "plain"));
    rt_runfiles_csv_cell(buf, sizeof buf, "a,b");
    CHECK(!strcmp(buf, "\"a,b\""));
    rt_runfiles_csv_cell(buf, sizeof buf, "say \"hi\"");
    CHECK(!strcmp(buf, "\"say \"\"hi\"\"\""));
    /* Too small a buffer: truncated but terminated, full length returned. */
    char small[4];
    CHECK(rt_runfiles_csv_cell(small, sizeof small, "abcdef") == 6 && strlen(small) == 3);
}

static void test_rows(void)
{
    rt_run_rows rows;
    /* No result.json yet: no rows, not an error. */
    CHECK_OK(rt_runfiles_read_rows(&rows, dir));
    CHECK(json_array_size(rows.rows) == 0 && rows.torn_line == 0);
    rt_runfiles_free_rows(&rows);

    write_file("result.json", "{\"a\":1.5,\"b\":null}\n"
                              "not json\n"
                              "\n"
                              "{\"a\":2.5,\"b\":3}\n"
                              "{\"a\":3.5,\"b");
    CHECK_OK(rt_runfiles_read_rows(&rows, dir));
    CHECK(json_array_size(rows.rows) == 2);
    CHECK(rows.torn_line == 5);
    CHECK(rows.bad_lines == 1 && rows.first_bad_line == 2);
    CHECK(json_is_null(json_object_get(json_array_get(rows.rows, 0), "b")));
    CHECK(json_real_value(json_object_get(json_array_get(rows.rows, 1), "a")) == 2.5);
    rt_runfiles_free_rows(&rows);

    /* An unterminated last line that is complete is a row, not torn. */
    write_file("result.json", "{\"a\":1}\n{\"a\":2}");
    CHECK_OK(rt_runfiles_read_rows(&rows, dir));
    CHECK(json_array_size(rows.rows) == 2 && rows.torn_line == 0);
    rt_runfiles_free_rows(&rows);

    CHECK_FAILS(RT_ERR_IO, rt_runfiles_read_rows(&rows, "/nonexistent/run"));
    rt_runfiles_free_rows(&rows);
}

static void test_checkpoints(void)
{
    json_t *index = json_loads(
        "{\"checkpoints\": ["
        " {\"dir\": \"checkpoint_000000\", \"training_iteration\": 1, \"metrics\": {\"acc\": 0.5, \"loss\": 0.9}},"
        " {\"dir\": \"checkpoint_000001\", \"training_iteration\": 2, \"metrics\": {\"acc\": 0.8, \"loss\": 0.4}},"
        " {\"dir\": \"checkpoint_000002\", \"training_iteration\": 3, \"metrics\": {\"acc\": 0.7, \"loss\": 0.3}},"
        " {\"dir\": \"checkpoint_000003\", \"training_iteration\": 4, \"metrics\": {\"acc\": null}}],"
        " \"score_attribute\": \"acc\", \"score_order\": \"max\"}", 0, NULL);
    CHECK(index != NULL);
    rt_ckpt_ranking l;
    CHECK_OK(rt_runfiles_rank_checkpoints(&l, index, NULL, NULL));
    CHECK(l.count == 4 && l.maximize && !strcmp(l.metric, "acc"));
    CHECK(!strcmp(l.items[0].dir, "checkpoint_000001"));
    CHECK(!strcmp(l.items[1].dir, "checkpoint_000002"));
    CHECK(isnan(l.items[3].score));                        /* unscored last */
    CHECK(!strcmp(l.items[l.latest].dir, "checkpoint_000003"));
    rt_runfiles_free_checkpoints(&l);

    CHECK_OK(rt_runfiles_rank_checkpoints(&l, index, "loss", "min"));
    CHECK(!l.maximize && !strcmp(l.items[0].dir, "checkpoint_000002"));
    rt_runfiles_free_checkpoints(&l);

    CHECK_OK(rt_runfiles_rank_checkpoints(&l, NULL, NULL, NULL));
    CHECK(l.count == 0 && l.latest == -1);
    rt_runfiles_free_checkpoints(&l);
    json_decref(index);
}

/* A preemption checkpoint shares its report's training_iteration with the
 * epoch's checkpoint before it: the commit order (the directory number)
 * decides what is newest, and ties in the score go to the newer one. The
 * best shown must be the one retention keeps, whatever the index order. */
static void test_ranking_matches_retention(void)
{
    json_t *index = json_loads(
        "{\"checkpoints\": ["
        " {\"dir\": \"checkpoint_000004\", \"training_iteration\": 2, \"metrics\": {\"acc\": 0.8}},"
        " {\"dir\": \"checkpoint_000002\", \"training_iteration\": 2, \"metrics\": {\"acc\": 0.8}},"
        " {\"dir\": \"checkpoint_000003\", \"training_iteration\": 3, \"metrics\": {\"acc\": 0.6}}],"
        " \"score_attribute\": \"acc\", \"score_order\": \"max\"}", 0, NULL);
    rt_ckpt_ranking l;
    CHECK_OK(rt_runfiles_rank_checkpoints(&l, index, NULL, NULL));
    CHECK(l.count == 3 && l.latest >= 0);
    CHECK_MSG(!strcmp(l.items[l.latest].dir, "checkpoint_000004"), "latest %s",
              l.items[l.latest].dir);
    CHECK_MSG(!strcmp(l.items[0].dir, "checkpoint_000004"), "best %s", l.items[0].dir);
    /* Retention with num_to_keep 1 keeps that same checkpoint. */
    rt_ckpt_score scores[3] = {{4, 1, 0.8}, {2, 1, 0.8}, {3, 1, 0.6}};
    rt_ckpt_policy keep_one = {1, "acc", RT_CKPT_SCORE_MAX};
    int keep[3];
    rt_ckpt_retention_select(scores, 3, &keep_one, keep);
    CHECK(keep[0] == 1 && keep[1] == 0 && keep[2] == 0);
    rt_runfiles_free_checkpoints(&l);
    json_decref(index);
}

static void test_error_and_restarts(void)
{
    const char *text = "rank: 3\nhost: node7\nstep: 12\nstatus: numerical error\n"
                       "message: loss is nan\nsecond line\n";
    char v[128];
    rt_runfiles_error_field(v, sizeof v, text, "rank");
    CHECK(!strcmp(v, "3"));
    rt_runfiles_error_field(v, sizeof v, text, "host");
    CHECK(!strcmp(v, "node7"));
    rt_runfiles_error_field(v, sizeof v, text, "message");
    CHECK(!strcmp(v, "loss is nan\nsecond line"));
    rt_runfiles_error_field(v, sizeof v, text, "absent");
    CHECK(v[0] == '\0');

    int n = -1;
    CHECK_OK(rt_runfiles_restarts(&n, dir));
    CHECK(n == 0);
    write_file("attempts.json", "{\"restarts\": 2}");
    CHECK_OK(rt_runfiles_restarts(&n, dir));
    CHECK(n == 2);
    write_file("attempts.json", "[{\"start\": 1}, {\"start\": 2}, {\"start\": 3}, {}]");
    CHECK_OK(rt_runfiles_restarts(&n, dir));
    CHECK(n == 3);
    write_file("attempts.json", "{\"restarts\": ");
    CHECK_FAILS(RT_ERR_FORMAT, rt_runfiles_restarts(&n, dir));
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/rtrain-runfiles.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    test_format_number();
    test_format_short();
    test_csv_cell();
    test_rows();
    test_checkpoints();
    test_ranking_matches_retention();
    test_error_and_restarts();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return CHECK_DONE();
}
