/* TensorBoard event files (run.tensorboard): rank 0 appends scalars to
 * events.out.tfevents.<time>.<host>.<pid>.<n> in the run directory, a new
 * file for each process and each time it opens or resumes the run
 * (TensorBoard reads every file of a directory as one run).
 *
 * What is written, as Ray Tune's TBXLogger does for a trainable's results:
 *   - every report (rt_report): one Event at step = training_iteration with
 *     one scalar per numeric field of the result.json line, tagged with its
 *     name; training_iteration itself, timestamp and time_total_s are left
 *     out (Ray leaves them out too), and so are NaN/Inf values (null in
 *     result.json);
 *   - rt_run_log_scalars (the trainer's training loss and learning rate
 *     every run.log_every_steps optimizer steps): one Event at step = the
 *     optimizer step, tags "step/<name>".
 * Each Event is written with one write(2) as soon as it is made, so a killed
 * run keeps every event before the kill.
 *
 * File format. A TFRecord file is a sequence of records:
 *   uint64 length (little-endian), uint32 masked CRC32C of those 8 bytes,
 *   `length` bytes of data, uint32 masked CRC32C of the data,
 * where masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 and CRC32C is
 * the Castagnoli CRC (reflected polynomial 0x82f63b78, initial value and
 * final xor 0xffffffff), taken from Intel's ISA-L (crc32_iscsi computes it
 * without the initial and final inversion, which crc32c() below adds).
 * Each record's data is one serialised tensorflow.Event protocol buffer.
 * The first Event of a file holds file_version = "brain.Event:2".
 *
 * Protocol buffers, the part used here (no protobuf library is needed for
 * three message types): a message is a sequence of fields, each a key
 * varint (field number << 3 | wire type) followed by its value: wire type
 * 0 a varint (7 bits per byte, least significant group first, the high bit
 * set on every byte but the last), 1 eight little-endian bytes (double), 2
 * a varint byte count and that many bytes (a string or a nested message),
 * 5 four little-endian bytes (float).
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
 *             Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; }
 *
 * Resuming (rt_run_resume_at_step). The attempt that was interrupted may
 * have written events past the checkpoint the run continues from; the
 * resumed run writes those steps again, into its own new file. So that no
 * step appears twice (TensorBoard would draw both), the earlier files are
 * rewritten first without the report events past the resumed
 * training_iteration and the "step/" events past the resumed optimizer
 * step, just as result.json loses its rows past the checkpoint; a file left
 * with no scalar is removed (a run that starts over removes them all). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <isa-l/crc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "run_internal.h"

#define EVENTS_PREFIX "events.out.tfevents."
#define STEP_TAG_PREFIX "step/"
/* An Event rtrain writes is far smaller: a longer record is not ours. */
#define MAX_RECORD ((uint64_t)64 << 20)

/* ---- CRC32C and the record frame ----------------------------------------------------- */

static uint32_t crc32c(const void *data, size_t len)
{
    return ~crc32_iscsi((unsigned char *)data, (int)len, 0xffffffffu);
}

static uint32_t masked_crc(const void *data, size_t len)
{
    uint32_t crc = crc32c(data, len);
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- protobuf encoding into a growing buffer -------------------------------------------- */

typedef struct pb { uint8_t *p; size_t len, cap; int failed; } pb;

static void pb_bytes(pb *b, const void *data, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void pb_varint(pb *b, uint64_t v)
{
    uint8_t out[10];
    int n = 0;
    do {
        out[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        out[n++] |= v ? 0x80 : 0;
    } while (v);
    pb_bytes(b, out, (size_t)n);
}

static void pb_key(pb *b, int field, int wire) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void pb_len(pb *b, int field, const void *data, size_t n)
{
    pb_key(b, field, 2);
    pb_varint(b, n);
    pb_bytes(b, data, n);
}

/* A fixed-size field: wire type 1 (8 bytes) or 5 (4 bytes), little-endian. */
static void pb_fixed(pb *b, int field, uint64_t bits, int bytes)
{
    uint8_t le[8];
    put_le(le, bits, bytes);
    pb_key(b, field, bytes == 8 ? 1 : 5);
    pb_bytes(b, le, (size_t)bytes);
}

static void pb_double(pb *b, int field, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    pb_fixed(b, field, bits, 8);
}

static void pb_float(pb *b, int field, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    pb_fixed(b, field, bits, 4);
}

/* Appends one framed record holding data[0..n) to out. */
static void frame_record(pb *out, const uint8_t *data, size_t n)
{
    uint8_t head[12], tail[4];
    put_le(head, n, 8);
    put_le(head + 8, masked_crc(head, 8), 4);
    put_le(tail, masked_crc(data, n), 4);
    pb_bytes(out, head, sizeof head);
    pb_bytes(out, data, n);
    pb_bytes(out, tail, sizeof tail);
}

/* Event{wall_time, step, summary{value{tag, simple_value}...}} as one
 * framed record appended to out. */
static void event_record(pb *out, double wall_time, int64_t step, const char *prefix,
                         const char *const *tags, const float *values, int n)
{
    pb summary = {0}, value = {0}, event = {0};
    for (int i = 0; i < n; i++) {
        value.len = 0;
        pb_key(&value, 1, 2);
        pb_varint(&value, strlen(prefix) + strlen(tags[i]));
        pb_bytes(&value, prefix, strlen(prefix));
        pb_bytes(&value, tags[i], strlen(tags[i]));
        pb_float(&value, 2, values[i]);
        pb_len(&summary, 1, value.p, value.len);
        summary.failed |= value.failed;
    }
    pb_double(&event, 1, wall_time);
    pb_key(&event, 2, 0);
    pb_varint(&event, (uint64_t)step);
    pb_len(&event, 5, summary.p, summary.len);
    event.failed |= summary.failed;
    if (!event.failed)
        frame_record(out, event.p, event.len);
    out->failed |= event.failed;
    free(summary.p);
    free(value.p);
    free(event.p);
}

static double wall_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- writing --------------------------------------------------------------------------- */

/* This process's events file, created with its file_version event. */
static rt_status open_events(rt_run *r)
{
    /* Numbered within the process, as TensorFlow's writer does: a process
     * may open several runs, or the same run again, within one second. */
    static _Atomic int files_opened;
    char path[RT_PATH_MAX + 128];
    double now = wall_clock();
    RT_CHECK(rt_fs_path(path, sizeof path, "%s/" EVENTS_PREFIX "%lld.%s.%ld.%d", r->dir,
                        (long long)now, r->host, (long)getpid(), files_opened++));
    int fd;
    RT_CHECK(rt_fs_open_write(&fd, path, O_APPEND | O_EXCL, RT_RUN_FILE_MODE,
                              "run.tensorboard = false turns TensorBoard files off"));
    pb event = {0}, rec = {0};
    pb_double(&event, 1, now);
    pb_len(&event, 3, "brain.Event:2", 13);
    if (!event.failed)
        frame_record(&rec, event.p, event.len);
    rt_status st = event.failed || rec.failed
                       ? RT_ERROR(RT_ERR_NOMEM, "out of memory writing %s", path)
                       : rt_fs_write_all(fd, rec.p, rec.len, path);
    free(event.p);
    free(rec.p);
    if (st != RT_OK) {
        close(fd);
        return st;
    }
    r->tb_fd = fd;
    snprintf(r->tb_path, sizeof r->tb_path, "%s", path);
    return RT_OK;
}

rt_status rt_tfevents_write(rt_run *r, int64_t step, const char *prefix,
                            const char *const *tags, const float *values, int n)
{
    if (r->rank != 0 || !r->tensorboard || n == 0)
        return RT_OK;
    if (r->tb_fd < 0)
        RT_CHECK(open_events(r));
    pb rec = {0};
    event_record(&rec, wall_clock(), step, prefix, tags, values, n);
    rt_status st = rec.failed ? RT_ERROR(RT_ERR_NOMEM, "out of memory writing %s", r->tb_path)
                              : rt_fs_write_all(r->tb_fd, rec.p, rec.len, r->tb_path);
    free(rec.p);
    return st;
}

void rt_tfevents_close(rt_run *r)
{
    if (r->tb_fd >= 0)
        close(r->tb_fd);
    r->tb_fd = -1;
}

/* Metrics as they are in result.json, minus what Ray's logger leaves out. */
static int is_logged(const char *name)
{
    return strcmp(name, "timestamp") && strcmp(name, "time_total_s") &&
           strcmp(name, "training_iteration");
}

rt_status rt_run_log_scalars(rt_run *r, long long step, const rt_metric *m, int count)
{
    if (count < 0 || count > RT_RUN_MAX_STEP_SCALARS)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_run_log_scalars: %d scalars (0..%d allowed)",
                        count, RT_RUN_MAX_STEP_SCALARS);
    if (!r || r->rank != 0 || !r->tensorboard || count == 0)
        return RT_OK;
    const char *tags[RT_RUN_MAX_STEP_SCALARS];
    float values[RT_RUN_MAX_STEP_SCALARS];
    int n = 0;
    for (int i = 0; i < count; i++)
        if (m[i].name && m[i].name[0] && isfinite(m[i].value)) {
            tags[n] = m[i].name;
            values[n++] = (float)m[i].value;
        }
    return rt_tfevents_write(r, step, STEP_TAG_PREFIX, tags, values, n);
}

rt_status rt_tfevents_report(rt_run *r, const char *const *names, const double *values, int n)
{
    if (r->rank != 0 || !r->tensorboard)
        return RT_OK;
    const char **tags = NULL;
    float *v = NULL;
    rt_status st = rt_alloc(&tags, (size_t)n + 1, sizeof *tags, "TensorBoard tags");
    if (st == RT_OK)
        st = rt_alloc(&v, (size_t)n + 1, sizeof *v, "TensorBoard values");
    int kept = 0;
    for (int i = 0; st == RT_OK && i < n; i++)
        if (is_logged(names[i]) && isfinite(values[i])) {
            tags[kept] = names[i];
            v[kept++] = (float)values[i];
        }
    if (st == RT_OK)
        st = rt_tfevents_write(r, r->iteration, "", tags, v, kept);
    rt_free(tags);
    rt_free(v);
    return st;
}

/* ---- trimming after a resume ------------------------------------------------------------------ */

typedef struct span { const uint8_t *p, *end; } span;

static int read_varint(span *s, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && s->p < s->end; shift += 7) {
        uint8_t byte = *s->p++;
        *v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return 1;
    }
    return 0;
}

/* The next field of a message: its number, wire type, and for wire type 2
 * its bytes; 0 at the end or on bytes that are not a message. */
static int next_field(span *s, int *field, int *wire, uint64_t *varint, span *bytes)
{
    uint64_t key, n;
    if (s->p >= s->end || !read_varint(s, &key))
        return 0;
    *field = (int)(key >> 3);
    *wire = (int)(key & 7);
    switch (*wire) {
    case 0: return read_varint(s, varint);
    case 1: n = 8; break;
    case 5: n = 4; break;
    case 2:
        if (!read_varint(s, &n))
            return 0;
        break;
    default: return 0;
    }
    if (n > (uint64_t)(s->end - s->p))
        return 0;
    *bytes = (span){s->p, s->p + n};
    s->p += n;
    return 1;
}

/* Whether a summary's values are all "step/" scalars. */
static int summary_is_per_step(span summary)
{
    int field, wire, any = 0;
    uint64_t v;
    span value, tag;
    while (next_field(&summary, &field, &wire, &v, &value)) {
        if (field != 1 || wire != 2)
            continue;
        while (next_field(&value, &field, &wire, &v, &tag))
            if (field == 1 && wire == 2) {
                size_t n = (size_t)(tag.end - tag.p), k = strlen(STEP_TAG_PREFIX);
                if (n < k || memcmp(tag.p, STEP_TAG_PREFIX, k) != 0)
                    return 0;
                any = 1;
            }
    }
    return any;
}

typedef struct trim_limits { int64_t iteration, step; } trim_limits;

/* 1: keep this Event; *scalar is set when it holds a summary. */
static int keep_event(const uint8_t *data, size_t n, const trim_limits *lim, int *scalar)
{
    span s = {data, data + n}, bytes, summary = {0};
    int field, wire, has_summary = 0;
    uint64_t v, step = 0;
    while (next_field(&s, &field, &wire, &v, &bytes)) {
        if (field == 2 && wire == 0)
            step = v;
        else if (field == 5 && wire == 2) {
            summary = bytes;
            has_summary = 1;
        }
    }
    *scalar = has_summary;
    if (!has_summary)
        return 1;
    int64_t limit = summary_is_per_step(summary) ? lim->step : lim->iteration;
    return (int64_t)step <= limit;
}

typedef struct trim_job {
    const char *path;
    const trim_limits *lim;
    int dropped, torn, scalars;   /* events dropped, a torn tail, scalar events kept */
    FILE *in;
} trim_job;

/* Reads the next whole record of j->in into *data (len bytes); 0 at the
 * end of the file or at a torn or damaged record (j->torn). */
static int next_record(trim_job *j, uint8_t **data, uint64_t *len)
{
    uint8_t head[12], tail[4];
    size_t got = fread(head, 1, sizeof head, j->in);
    if (got == 0)
        return 0;
    *len = get_le(head, 8);
    if (got < sizeof head || get_le(head + 8, 4) != masked_crc(head, 8) || *len > MAX_RECORD) {
        j->torn = 1;
        return 0;
    }
    uint8_t *p = realloc(*data, *len ? *len : 1);
    if (!p) {
        j->torn = 1;
        return 0;
    }
    *data = p;
    if (fread(p, 1, *len, j->in) != *len || fread(tail, 1, 4, j->in) != 4 ||
        get_le(tail, 4) != masked_crc(p, *len)) {
        j->torn = 1;
        return 0;
    }
    return 1;
}

/* One pass over the file: counts what stays; with fd >= 0 writes it there. */
static rt_status trim_pass(trim_job *j, int fd, const char *out_path)
{
    j->dropped = j->torn = j->scalars = 0;
    rewind(j->in);
    uint8_t *data = NULL, frame[12], tail[4];
    uint64_t len = 0;
    rt_status st = RT_OK;
    while (st == RT_OK && next_record(j, &data, &len)) {
        int scalar = 0;
        if (!keep_event(data, len, j->lim, &scalar)) {
            j->dropped++;
            continue;
        }
        j->scalars += scalar;
        if (fd < 0)
            continue;
        put_le(frame, len, 8);
        put_le(frame + 8, masked_crc(frame, 8), 4);
        put_le(tail, masked_crc(data, len), 4);
        st = rt_fs_write_all(fd, frame, sizeof frame, out_path);
        if (st == RT_OK)
            st = rt_fs_write_all(fd, data, len, out_path);
        if (st == RT_OK)
            st = rt_fs_write_all(fd, tail, sizeof tail, out_path);
    }
    free(data);
    return st;
}

static rt_status write_trimmed(void *arg, int fd, const char *tmp)
{
    return trim_pass(arg, fd, tmp);
}

static rt_status trim_file(const char *path, const trim_limits *lim)
{
    trim_job j = {.path = path, .lim = lim, .in = fopen(path, "rb")};
    if (!j.in)
        return RT_ERROR(RT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    rt_status st = trim_pass(&j, -1, NULL);
    if (st == RT_OK && j.torn)
        rt_warn("%s: dropping a torn or damaged record at its end (left by an earlier "
                "process)", path);
    if (st == RT_OK && j.scalars == 0 && remove(path) != 0)
        st = RT_ERROR(RT_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    else if (st == RT_OK && j.scalars > 0 && (j.dropped > 0 || j.torn))
        st = rt_fs_replace(path, RT_RUN_FILE_MODE, write_trimmed, &j);
    if (st == RT_OK && j.dropped > 0)
        rt_debug("%s: %d event(s) past the resumed checkpoint dropped", path, j.dropped);
    fclose(j.in);
    return st;
}

rt_status rt_tfevents_trim(rt_run *r, int64_t iteration, int64_t step)
{
    if (r->rank != 0)
        return RT_OK;
    rt_tfevents_close(r);   /* a resume in the same process starts a new file */
    DIR *d = opendir(r->dir);
    if (!d)
        return RT_ERROR(RT_ERR_IO, "cannot list %s: %s", r->dir, strerror(errno));
    trim_limits lim = {iteration, step};
    rt_status st = RT_OK;
    struct dirent *e;
    while (st == RT_OK && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, EVENTS_PREFIX, strlen(EVENTS_PREFIX)) != 0)
            continue;
        char path[RT_PATH_MAX + 300];
        st = rt_fs_path(path, sizeof path, "%s/%s", r->dir, e->d_name);
        if (st == RT_OK)
            st = trim_file(path, &lim);
    }
    closedir(d);
    return st;
}
