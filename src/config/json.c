/* The resolved configuration as JSON (params.json of a run): one object
 * whose nesting mirrors the key paths ("optimizer": {"lr": 0.001}), every
 * key present with defaults filled in, keys in schema order so that the
 * same configuration always gives the same bytes. data.normalize is false
 * or {"mean": M, "std": S}; model.layers is an array of objects holding
 * the type and the fields that type uses. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "config/internal.h"

/* A float as the double nearest its shortest decimal text, so that it
 * prints as 0.001, not 0.0010000000474974513. */
static json_t *json_float(float v)
{
    char buf[48];
    rt_config_format_float(buf, sizeof buf, v);
    return json_real(strtod(buf, NULL));
}

static json_t *layer_json(const rt_layer_spec *spec)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(rt_layer_type_name(spec->type)));
    unsigned used = rt_layer_type_fields(spec->type);
    for (int i = 0; i < rt_config_num_layer_keys(); i++) {
        const rt_key *k = rt_config_layer_key(i);
        if (!(used & (1u << i)))
            continue;
        const char *p = (const char *)spec + k->offset;
        json_t *v = k->type == RT_KEY_FLOAT ? json_float(*(const float *)p)
                    : k->type == RT_KEY_BOOL ? json_boolean(*(const int *)p)
                                             : json_integer(*(const int *)p);
        json_object_set_new(o, k->path, v);
    }
    return o;
}

/* The value of one key; NULL only when out of memory or a string is not
 * UTF-8 (checked at load, so only for a struct filled by other means). */
/* One value as a number, several as a list (as they were written). */
static json_t *channel_values(const float *v, int n)
{
    if (n <= 1)
        return json_float(v[0]);
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_float(v[i]));
    return a;
}

static json_t *key_json(const rt_config *cfg, const rt_key *k)
{
    const char *p = (const char *)cfg + k->offset;
    switch (k->type) {
    case RT_KEY_INT: return json_integer(*(const int *)p);
    case RT_KEY_INT64: return json_integer((json_int_t)*(const int64_t *)p);
    case RT_KEY_FLOAT: return json_float(*(const float *)p);
    case RT_KEY_DOUBLE: return json_real(*(const double *)p);
    case RT_KEY_BOOL: return json_boolean(*(const int *)p);
    case RT_KEY_STRING: return json_string(p);
    case RT_KEY_ENUM: return json_string(rt_config_enum_get(k, cfg));
    case RT_KEY_MEGABYTES: return json_real((double)*(const long long *)p / 1048576.0);
    case RT_KEY_INT_LIST: {
        json_t *a = json_array();
        int n = *(const int *)((const char *)cfg + k->aux);
        for (int i = 0; i < n; i++)
            json_array_append_new(a, json_integer(((const int *)p)[i]));
        return a;
    }
    case RT_KEY_CHANNELS:
        return channel_values((const float *)p, *(const int *)((const char *)cfg + k->aux));
    case RT_KEY_STRING_LIST: {
        json_t *a = json_array();
        int n = *(const int *)((const char *)cfg + k->aux);
        const char (*names)[RT_COLUMN_NAME_MAX] = (const void *)p;
        for (int i = 0; i < n; i++)
            json_array_append_new(a, json_string(names[i]));
        return a;
    }
    case RT_KEY_FLOAT_PAIR: {
        json_t *a = json_array();
        json_array_append_new(a, json_float(*(const float *)p));
        json_array_append_new(a, json_float(*(const float *)((const char *)cfg + k->aux)));
        return a;
    }
    case RT_KEY_NORMALIZE: {
        if (!cfg->data.transform.normalize)
            return json_false();
        json_t *o = json_object();
        json_object_set_new(o, "mean", channel_values(cfg->data.transform.mean,
                                                      cfg->data.transform.num_mean));
        json_object_set_new(o, "std", channel_values(cfg->data.transform.std,
                                                     cfg->data.transform.num_std));
        return o;
    }
    case RT_KEY_LAYERS: {
        json_t *a = json_array();
        for (int i = 0; i < cfg->model.num_layers; i++)
            json_array_append_new(a, layer_json(&cfg->model.layers[i]));
        return a;
    }
    }
    return NULL;
}

/* The object that holds the last part of `path`, created on first use. */
static json_t *parent_object(json_t *root, const char *path, const char **leaf)
{
    json_t *obj = root;
    const char *part = path, *dot;
    while ((dot = strchr(part, '.')) != NULL) {
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(dot - part), part);
        json_t *child = json_object_get(obj, name);
        if (!child) {
            child = json_object();
            json_object_set_new(obj, name, child);
        }
        obj = child;
        part = dot + 1;
    }
    *leaf = part;
    return obj;
}

rt_status rt_config_write_json(const rt_config *cfg, FILE *f)
{
    json_t *root = json_object();
    if (!root)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory writing the configuration as JSON");
    for (int i = 0; i < rt_config_num_keys(); i++) {
        const rt_key *k = rt_config_key(i);
        if (k->flags & RT_KEYF_NORMALIZE_PART)   /* inside data.normalize's object */
            continue;
        json_t *v = key_json(cfg, k);
        if (!v) {
            json_decref(root);
            return RT_ERROR(RT_ERR_CONFIG, "cannot write %s as JSON (text that is not UTF-8?)",
                            k->path);
        }
        const char *leaf = NULL;
        json_t *parent = parent_object(root, k->path, &leaf);   /* sets leaf */
        json_object_set_new(parent, leaf, v);
    }
    /* 9 significant digits read back every float exactly (FLT_DECIMAL_DIG)
     * and print 0.1f as 0.1; the few double keys (seconds, MiB) need no more. */
    int rc = json_dumpf(root, f, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (rc != 0 || fputc('\n', f) == EOF || ferror(f))
        return RT_ERROR(RT_ERR_IO, "cannot write the configuration as JSON (disk full?)");
    return RT_OK;
}

rt_status rt_config_json_text(const rt_config *cfg, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    FILE *f = open_memstream(text, len);
    if (!f)
        return RT_ERROR(RT_ERR_NOMEM, "out of memory writing the configuration as JSON");
    rt_status st = rt_config_write_json(cfg, f);
    fclose(f);
    if (st != RT_OK) {
        free(*text);
        *text = NULL;
    }
    return st;
}

rt_status rt_config_digest(const rt_config *cfg, char *out, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    RT_CHECK(rt_config_json_text(cfg, &text, &len));
    snprintf(out, size, "xxh3:%016llx", (unsigned long long)XXH3_64bits(text, len));
    free(text);
    return RT_OK;
}
