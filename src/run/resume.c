/* Continuing a run's result files after a resume: the rows written after
 * the checkpoint being resumed from (by the attempt that was interrupted)
 * are cut off, so that the rows continue with no gap and no duplicate.
 * Every report appends exactly one line to result.json and one row to
 * progress.csv (below its header), so iteration k is line k. TensorBoard's
 * event files lose their events past the checkpoint too (tfevents.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "run_internal.h"

/* Truncates path after its first `lines` lines (a missing file is fine;
 * fewer lines than asked is reported through *have). */
static rt_status keep_lines(const char *dir, const char *name, long long lines, long long *have)
{
    char path[RT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *have = 0;
    /* Not through a planted symbolic link: truncating would cut the file
     * it points to. */
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    FILE *f = fd >= 0 ? fdopen(fd, "r+") : NULL;
    if (!f) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return err == ENOENT ? RT_OK
                             : RT_ERROR(RT_ERR_IO, "cannot open %s: %s%s", path, strerror(err),
                                        err == ELOOP ? " (a symbolic link: remove it)" : "");
    }
    long long seen = 0;
    long offset = 0;
    int c;
    while (seen < lines && (c = fgetc(f)) != EOF) {
        offset++;
        seen += c == '\n';
    }
    *have = seen;
    rt_status st = RT_OK;
    if (fflush(f) != 0 || ftruncate(fileno(f), offset) != 0)
        st = RT_ERROR(RT_ERR_IO, "cannot truncate %s: %s", path, strerror(errno));
    fclose(f);
    return st;
}

static rt_status cut_files(rt_run *r, int iteration)
{
    long long json_rows, csv_lines;
    RT_CHECK(keep_lines(r->dir, "result.json", iteration, &json_rows));
    /* progress.csv: a header, then one row per report (no header if empty). */
    RT_CHECK(keep_lines(r->dir, "progress.csv", iteration > 0 ? iteration + 1 : 0, &csv_lines));
    if (json_rows < iteration)
        rt_warn("%s/result.json holds %lld reports, fewer than the %d the checkpoint was "
                "saved after; later reports continue from iteration %d", r->dir, json_rows,
                iteration, iteration + 1);
    return RT_OK;
}

rt_status rt_run_resume_at(rt_run *r, int iteration)
{
    /* Without the step: a start over drops every per-step scalar, a
     * continuation keeps them (a user's loop names its own steps). */
    return rt_run_resume_at_step(r, iteration, iteration > 0 ? INT64_MAX : 0);
}

rt_status rt_run_resume_at_step(rt_run *r, int iteration, long long step)
{
    rt_status st = RT_OK;
    if (r->rank == 0)
        st = cut_files(r, iteration);
    if (st == RT_OK && r->rank == 0)
        st = rt_tfevents_trim(r, iteration, step);
    RT_CHECK(rt_session_agree(r->session, st));
    r->iteration = iteration;
    /* Columns are re-read from the (possibly shorter) progress.csv. */
    for (int i = 0; i < r->ncolumns; i++)
        free(r->columns[i]);
    r->ncolumns = 0;
    r->files_checked = 0;
    return RT_OK;
}
