/* Reads the reference fixtures of tests/gen_fixtures.py (format in
 * fixture.h). Two passes over the bytes: the first validates every record
 * and counts tensors and floats, the second copies them, so nothing is
 * allocated from a size that was not checked against the file length. */
#include "fixture.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Fixtures are committed files of a few hundred kB; anything far larger is
 * not a fixture. */
#define FIXTURE_FILE_MAX (64u << 20)

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static rt_status read_file(unsigned char **out, size_t *len, const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return RT_ERROR(RT_ERR_IO, "cannot open fixture %s; regenerate it with "
                        "/usr/bin/python3 tests/gen_fixtures.py", path);
    long size = -1;
    if (fseek(fp, 0, SEEK_END) == 0)
        size = ftell(fp);
    if (size < 0 || (unsigned long)size > FIXTURE_FILE_MAX || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return RT_ERROR(RT_ERR_FORMAT, "fixture %s: size %ld unreadable or over %u bytes",
                        path, size, FIXTURE_FILE_MAX);
    }
    rt_status s = rt_alloc(out, (size_t)size + 1, 1, "fixture file");
    if (s == RT_OK && fread(*out, 1, (size_t)size, fp) != (size_t)size) {
        rt_free(*out);
        s = RT_ERROR(RT_ERR_IO, "fixture %s: short read", path);
    }
    fclose(fp);
    *len = (size_t)size;
    return s;
}

/* Parses the record header at buf[*pos]; fills t (without data) and moves
 * *pos past the whole record. */
static rt_status parse_record(fixture_tensor *t, size_t *data_pos, const unsigned char *buf,
                              size_t len, size_t *pos, const char *path)
{
    size_t p = *pos;
    if (len - p < 3)
        return RT_ERROR(RT_ERR_FORMAT, "fixture %s: truncated record at byte %zu", path, p);
    size_t name_len = (size_t)buf[p] | (size_t)buf[p + 1] << 8;
    p += 2;
    if (name_len == 0 || name_len >= FIXTURE_NAME_MAX || len - p < name_len + 1)
        return RT_ERROR(RT_ERR_FORMAT, "fixture %s: bad name length %zu at byte %zu", path,
                        name_len, *pos);
    memcpy(t->name, buf + p, name_len);
    t->name[name_len] = '\0';
    p += name_len;
    t->ndim = buf[p++];
    if (t->ndim > FIXTURE_MAX_NDIM || len - p < 4 * (size_t)t->ndim)
        return RT_ERROR(RT_ERR_FORMAT, "fixture %s: record %s has bad ndim %d", path,
                        t->name, t->ndim);
    t->count = 1;
    for (int d = 0; d < t->ndim; d++, p += 4) {
        int32_t dim = (int32_t)le32(buf + p);
        if (dim < 1 || (size_t)dim > len)
            return RT_ERROR(RT_ERR_FORMAT, "fixture %s: record %s has bad dim %d", path,
                            t->name, (int)dim);
        t->dims[d] = dim;
        t->count *= (size_t)dim;
        if (t->count > len)
            return RT_ERROR(RT_ERR_FORMAT, "fixture %s: record %s larger than the file",
                            path, t->name);
    }
    if ((len - p) / 4 < t->count)
        return RT_ERROR(RT_ERR_FORMAT, "fixture %s: record %s truncated", path, t->name);
    *data_pos = p;
    *pos = p + 4 * t->count;
    return RT_OK;
}

rt_status fixture_load(fixture *f, const char *path)
{
    memset(f, 0, sizeof *f);
    unsigned char *buf = NULL;
    size_t len = 0;
    RT_CHECK(read_file(&buf, &len, path));
    rt_status s = RT_OK;
    fixture_tensor t;
    size_t pos = 0, data_pos = 0, floats = 0;
    int records = 0;
    while (pos < len) {   /* pass 1: validate and count */
        RT_CHECK_GOTO(s, parse_record(&t, &data_pos, buf, len, &pos, path), done);
        records++;
        floats += t.count;
    }
    RT_CHECK_GOTO(s, rt_alloc(&f->tensors, records ? records : 1, sizeof *f->tensors,
                              "fixture records"), done);
    RT_CHECK_GOTO(s, rt_alloc(&f->storage, floats ? floats : 1, sizeof(float),
                              "fixture data"), done);
    pos = 0;
    floats = 0;
    for (int i = 0; i < records; i++) {   /* pass 2: copy */
        fixture_tensor *ti = &f->tensors[i];
        RT_CHECK_GOTO(s, parse_record(ti, &data_pos, buf, len, &pos, path), done);
        float *dst = f->storage + floats;
        for (size_t k = 0; k < ti->count; k++) {
            uint32_t bits = le32(buf + data_pos + 4 * k);
            memcpy(&dst[k], &bits, sizeof bits);
        }
        ti->data = dst;
        floats += ti->count;
    }
    f->count = records;
done:
    rt_free(buf);
    if (s != RT_OK)
        fixture_free(f);
    return s;
}

const fixture_tensor *fixture_find(const fixture *f, const char *name)
{
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

void fixture_free(fixture *f)
{
    rt_free(f->tensors);
    rt_free(f->storage);
    memset(f, 0, sizeof *f);
}
