/* Reading a run directory's files, shared by the library (final summary,
 * result writers) and by rtrain-results, which links without MPI: nothing
 * here may use MPI or rt_session. None of these functions is collective.
 *
 * Files read (see README "Run directory"):
 *   result.json            JSON lines, one object per report
 *   checkpoint_index.json  {"checkpoints": [{"dir", "training_iteration",
 *                          "metrics": {...}}...], "score_attribute",
 *                          "score_order": "max"|"min"} (checkpoint manager)
 *   error.txt              "key: value" lines, written by rt_run_fail
 *   attempts.json          restarts: {"restarts": N} or {"attempts": [...]}
 *                          or [...] (one entry per attempt) */
#ifndef RTRAIN_RUN_RUNFILES_H
#define RTRAIN_RUN_RUNFILES_H

#include <stdio.h>
#include <jansson.h>
#include "rtrain/core.h"

#define RT_RUNFILES_MAX_LINE (1 << 20)          /* longest result.json line read */
#define RT_RUNFILES_MAX_JSON (64L << 20)        /* largest small JSON file read */

/* The shortest decimal text that reads back as the same double (like
 * Python's repr): integral values keep ".0" so that they stay reals. NaN and
 * Inf give "" (the caller writes null or an empty cell). */
void rt_runfiles_format_number(char *out, size_t size, double v);

/* A metric for people (console lines, summary tables): whole numbers
 * (steps, epochs, samples) and values of 1000 or more (rates: 24140) as
 * integers, others with 4 significant digits (0.8812, 2.303, 0.0001234),
 * NaN and Inf as "nan", "inf". result.json keeps the full values. */
void rt_runfiles_format_short(char *out, size_t size, double v);

typedef struct rt_run_rows {
    json_t *rows;          /* JSON array of the report objects, in file order */
    long lines;            /* lines read */
    long torn_line;        /* > 0: this unterminated last line did not parse; ignored */
    long bad_lines;        /* complete lines that were not a JSON object; skipped */
    long first_bad_line;
} rt_run_rows;

/* Reads dir/result.json. A missing file gives no rows (the run has not
 * reported yet); a missing directory is RT_ERR_IO. */
rt_status rt_runfiles_read_rows(rt_run_rows *out, const char *dir);
void rt_runfiles_free_rows(rt_run_rows *rows);

/* Reads dir/name as JSON into *out (NULL when the file does not exist). */
rt_status rt_runfiles_read_json(json_t **out, const char *dir, const char *name);
/* Reads dir/name as text into *out (malloc'd; NULL when it does not exist). */
rt_status rt_runfiles_read_text(char **out, const char *dir, const char *name, size_t max);

/* One checkpoint of a checkpoint_index.json. */
typedef struct rt_ranked_ckpt {
    const char *dir;           /* points into the index */
    long long iteration;       /* training_iteration, -1 when absent */
    long long sequence;        /* commit order (the directory's number) */
    double score;              /* NaN when the metric is absent or null */
} rt_ranked_ckpt;

/* The checkpoints of an index ranked by a metric, in the order of
 * rt_ckpt_rank (rtrain/ckpt.h): the order retention keeps them in. */
typedef struct rt_ckpt_ranking {
    rt_ranked_ckpt *items;     /* best first; unscored ones last, newest first */
    int count;
    int latest;                /* index into items of the newest, -1: none */
    char metric[128];          /* "" : no score, ranked newest first */
    int maximize;
} rt_ckpt_ranking;

/* metric/mode NULL or "": the index's score_attribute/score_order. index may
 * be NULL (no checkpoints). */
rt_status rt_runfiles_rank_checkpoints(rt_ckpt_ranking *out, const json_t *index,
                                       const char *metric, const char *mode);
void rt_runfiles_free_checkpoints(rt_ckpt_ranking *list);

/* Restarts recorded in dir/attempts.json; 0 when it does not exist. */
rt_status rt_runfiles_restarts(int *out, const char *dir);

/* The value of "key: value" in error.txt's text, copied to out ("" if absent). */
void rt_runfiles_error_field(char *out, size_t size, const char *text, const char *key);

/* s as one CSV cell (quoted when it holds a comma, quote or line break;
 * quotes doubled), like snprintf: returns the length it needs. */
size_t rt_runfiles_csv_cell(char *out, size_t size, const char *s);

/* Prints a boxed table like Ray's trial status: cells[row * cols + col],
 * row 0 the header; numbers (cells starting with a digit, '-' or '.')
 * right-aligned. */
void rt_runfiles_print_table(FILE *f, const char *const *cells, int rows, int cols);
/* The same, with the columns whose bit is set in text_cols (bit c: column
 * c < 32) left-aligned whatever they hold (names such as "4 (conv2d)"). */
void rt_runfiles_print_table_text(FILE *f, const char *const *cells, int rows, int cols,
                                  unsigned text_cols);

#endif
