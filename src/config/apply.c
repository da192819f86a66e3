/* Turning one libconfig setting into one typed field of rt_config (or of a
 * layer spec): type check, range check, store. Every message names where
 * the value came from (FILE:LINE or the override) and the key. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "config/internal.h"

void rt_config_where(char *buf, size_t n, const config_setting_t *s, const char *override)
{
    if (override) {
        snprintf(buf, n, "override '%s'", override);
        return;
    }
    const char *file = s ? config_setting_source_file(s) : NULL;
    snprintf(buf, n, "%s:%d", file ? file : "(config)", s ? config_setting_source_line(s) : 0);
}

rt_status rt_config_fail(const config_setting_t *s, const char *override, const char *fmt, ...)
{
    char where[1024], msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rt_config_where(where, sizeof where, s, override);
    return RT_ERROR(RT_ERR_CONFIG, "%s: %s", where, msg);
}

/* "a string (\"abc\")", "an integer (3)", ... for "must be X, got Y". */
static void describe_setting(const config_setting_t *s, char *buf, size_t n)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        snprintf(buf, n, "an integer (%lld)", config_setting_get_int64(s));
        break;
    case CONFIG_TYPE_FLOAT: snprintf(buf, n, "a number (%g)", config_setting_get_float(s)); break;
    case CONFIG_TYPE_STRING:
        snprintf(buf, n, "a string (\"%.200s\")", config_setting_get_string(s));
        break;
    case CONFIG_TYPE_BOOL:
        snprintf(buf, n, "a boolean (%s)", config_setting_get_bool(s) ? "true" : "false");
        break;
    case CONFIG_TYPE_GROUP: snprintf(buf, n, "a group { ... }"); break;
    case CONFIG_TYPE_ARRAY: snprintf(buf, n, "an array [ ... ]"); break;
    case CONFIG_TYPE_LIST: snprintf(buf, n, "a list ( ... )"); break;
    default: snprintf(buf, n, "nothing"); break;
    }
}

static rt_status wrong_type(const config_setting_t *s, const char *ovr, const char *label,
                            const char *expected)
{
    char got[256];
    describe_setting(s, got, sizeof got);
    return rt_config_fail(s, ovr, "%s must be %s, got %s", label, expected, got);
}

static int is_number(const config_setting_t *s)
{
    int t = config_setting_type(s);
    return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64 || t == CONFIG_TYPE_FLOAT;
}

static int is_integer(const config_setting_t *s)
{
    int t = config_setting_type(s);
    return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

static double number_of(const config_setting_t *s)
{
    return config_setting_type(s) == CONFIG_TYPE_FLOAT ? config_setting_get_float(s)
                                                        : (double)config_setting_get_int64(s);
}

static rt_status check_range(const rt_key *k, const config_setting_t *s, const char *ovr,
                             const char *label, double v)
{
    if (v >= k->min && v <= k->max)   /* written so that NaN fails */
        return RT_OK;
    char val[64], range[128];
    if (is_integer(s))
        snprintf(val, sizeof val, "%lld", config_setting_get_int64(s));
    else
        snprintf(val, sizeof val, "%g", v);
    snprintf(range, sizeof range, "%.17g..%.17g", k->min, k->max);
    return rt_config_fail(s, ovr, "%s = %s is out of range (%s)", label, val, range);
}

/* One number or integer, range-checked. */
static rt_status get_number(const rt_key *k, const config_setting_t *s, const char *ovr,
                            const char *label, int integer, double *out)
{
    if (integer ? !is_integer(s) : !is_number(s))
        return wrong_type(s, ovr, label, integer ? "an integer" : "a number");
    *out = number_of(s);
    return check_range(k, s, ovr, label, *out);
}

static rt_status get_string(const rt_key *k, const config_setting_t *s, const char *ovr,
                            const char *label, const char **out)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return wrong_type(s, ovr, label, "a string in double quotes");
    const char *v = config_setting_get_string(s);
    if (k->size > 0 && strlen(v) >= k->size)
        return rt_config_fail(s, ovr, "%s is too long (%zu characters, at most %zu)", label,
                              strlen(v), k->size - 1);
    /* params.json must stay valid JSON: reject text that is not UTF-8. */
    json_t *probe = json_string(v);
    if (!probe)
        return rt_config_fail(s, ovr, "%s is not valid UTF-8 text", label);
    json_decref(probe);
    *out = v;
    return RT_OK;
}

static rt_status set_enum(const rt_key *k, void *base, const config_setting_t *s,
                          const char *ovr, const char *label)
{
    char list[256];
    rt_config_enum_list(k, list, sizeof list);
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        char expected[300];
        snprintf(expected, sizeof expected, "one of \"%s\" (a string)", list);
        return wrong_type(s, ovr, label, expected);
    }
    const char *name = config_setting_get_string(s);
    int v = rt_config_enum_value(k, name);
    if (v < 0)
        return rt_config_fail(s, ovr, "%s = \"%.100s\" is not allowed: use one of %s", label,
                              name, list);
    char *p = (char *)base + k->offset;
    if (k->size > 0)
        snprintf(p, k->size, "%s", name);
    else
        *(int *)p = v;
    return RT_OK;
}

static rt_status set_int_list(const rt_key *k, void *base, const config_setting_t *s,
                              const char *ovr, const char *label)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return wrong_type(s, ovr, label, "a list of integers like [512, 512]");
    int n = config_setting_length(s);
    if (n > (int)k->size)
        return rt_config_fail(s, ovr, "%s has %d entries, at most %zu are allowed", label, n,
                              k->size);
    int *dst = (int *)((char *)base + k->offset);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char elabel[160];
        double v;
        snprintf(elabel, sizeof elabel, "%s[%d]", label, i);
        RT_CHECK(get_number(k, e, ovr, elabel, 1, &v));
        dst[i] = (int)v;
    }
    *(int *)((char *)base + k->aux) = n;
    return RT_OK;
}

static rt_status set_string_list(const rt_key *k, void *base, const config_setting_t *s,
                                 const char *ovr, const char *label)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return wrong_type(s, ovr, label, "a list of names like [\"carat\", \"depth\"]");
    int n = config_setting_length(s);
    if (n > (int)k->size)
        return rt_config_fail(s, ovr, "%s has %d entries, at most %zu are allowed", label, n,
                              k->size);
    char (*dst)[RT_COLUMN_NAME_MAX] = (void *)((char *)base + k->offset);
    const rt_key element = {.size = RT_COLUMN_NAME_MAX};
    for (int i = 0; i < n; i++) {
        char elabel[160];
        const char *v = NULL;
        snprintf(elabel, sizeof elabel, "%s[%d]", label, i);
        RT_CHECK(get_string(&element, config_setting_get_elem(s, (unsigned)i), ovr, elabel, &v));
        if (!v[0])
            return rt_config_fail(s, ovr, "%s is empty: name a column", elabel);
        for (int j = 0; j < i; j++)
            if (strcmp(dst[j], v) == 0)
                return rt_config_fail(s, ovr, "%s: \"%s\" is listed twice", label, v);
        snprintf(dst[i], RT_COLUMN_NAME_MAX, "%s", v);
    }
    *(int *)((char *)base + k->aux) = n;
    return RT_OK;
}

/* model.params: a group of scalars, each kept as text for the library
 * (numbers with %.17g: they read back as the same double). */
static rt_status param_text(const config_setting_t *m, const char *ovr, const char *label,
                            char *out, size_t size)
{
    int n = 0;
    switch (config_setting_type(m)) {
    case CONFIG_TYPE_INT: n = snprintf(out, size, "%d", config_setting_get_int(m)); break;
    case CONFIG_TYPE_INT64:
        n = snprintf(out, size, "%lld", config_setting_get_int64(m));
        break;
    case CONFIG_TYPE_FLOAT: n = snprintf(out, size, "%.17g", config_setting_get_float(m)); break;
    case CONFIG_TYPE_BOOL:
        n = snprintf(out, size, "%s", config_setting_get_bool(m) ? "true" : "false");
        break;
    case CONFIG_TYPE_STRING: n = snprintf(out, size, "%s", config_setting_get_string(m)); break;
    default:
        return wrong_type(m, ovr, label, "a number, a string or a boolean");
    }
    if (n < 0 || (size_t)n >= size)
        return rt_config_fail(m, ovr, "%s is longer than %zu characters", label, size - 1);
    return RT_OK;
}

static rt_status set_params(const rt_key *k, rt_config *cfg, const config_setting_t *s,
                            const char *ovr)
{
    if (!config_setting_is_group(s))
        return wrong_type(s, ovr, k->path, "a group like { max_depth = 6; eta = 0.3; }");
    int n = config_setting_length(s);
    if (n > (int)k->size)
        return rt_config_fail(s, ovr, "%s has %d entries, at most %zu are allowed", k->path, n,
                              k->size);
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
        const char *name = config_setting_name(m);
        char label[160];
        snprintf(label, sizeof label, "%s.%s", k->path, name ? name : "?");
        if (!name || strlen(name) >= RT_GBDT_PARAM_KEY_MAX)
            return rt_config_fail(m, ovr, "%s: a parameter name has at most %d characters",
                                  label, RT_GBDT_PARAM_KEY_MAX - 1);
        snprintf(cfg->gbdt.param_keys[i], RT_GBDT_PARAM_KEY_MAX, "%s", name);
        RT_CHECK(param_text(m, ovr, label, cfg->gbdt.param_values[i], RT_GBDT_PARAM_VALUE_MAX));
    }
    cfg->gbdt.num_params = n;
    return RT_OK;
}

/* model.params.NAME=VALUE: replaces NAME's value, or adds NAME. */
static rt_status set_param(const rt_key *k, rt_config *cfg, const char *name,
                           const config_setting_t *s, const char *ovr)
{
    char label[160];
    snprintf(label, sizeof label, "%s.%s", k->path, name);
    int i = 0;
    while (i < cfg->gbdt.num_params && strcmp(cfg->gbdt.param_keys[i], name))
        i++;
    if (i == (int)k->size)
        return rt_config_fail(s, ovr, "%s would be entry %d of %s, at most %zu are allowed",
                              label, i + 1, k->path, k->size);
    RT_CHECK(param_text(s, ovr, label, cfg->gbdt.param_values[i], RT_GBDT_PARAM_VALUE_MAX));
    snprintf(cfg->gbdt.param_keys[i], RT_GBDT_PARAM_KEY_MAX, "%s", name);
    if (i == cfg->gbdt.num_params)
        cfg->gbdt.num_params++;
    return RT_OK;
}

/* One number for every channel, or a list with one per channel. */
static rt_status set_channels(const rt_key *k, void *base, const config_setting_t *s,
                              const char *ovr, const char *label)
{
    float *dst = (float *)((char *)base + k->offset);
    int *count = (int *)((char *)base + k->aux);
    double v;
    if (is_number(s)) {
        RT_CHECK(get_number(k, s, ovr, label, 0, &v));
        dst[0] = (float)v;
        *count = 1;
        return RT_OK;
    }
    int t = config_setting_type(s);
    int n = t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST ? config_setting_length(s) : 0;
    if (n < 1 || n > (int)k->size)
        return wrong_type(s, ovr, label, "a number, or a list of 1 to 16 numbers (one per "
                          "channel) like [0.485, 0.456, 0.406]");
    for (int i = 0; i < n; i++) {
        char elabel[160];
        snprintf(elabel, sizeof elabel, "%s[%d]", label, i);
        RT_CHECK(get_number(k, config_setting_get_elem(s, (unsigned)i), ovr, elabel, 0, &v));
        dst[i] = (float)v;
    }
    *count = n;
    return RT_OK;
}

static rt_status set_float_pair(const rt_key *k, void *base, const config_setting_t *s,
                                const char *ovr, const char *label)
{
    int t = config_setting_type(s);
    if ((t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) || config_setting_length(s) != 2)
        return wrong_type(s, ovr, label, "two numbers like [0.9, 0.999]");
    for (int i = 0; i < 2; i++) {
        char elabel[160];
        double v;
        snprintf(elabel, sizeof elabel, "%s[%d]", label, i);
        RT_CHECK(get_number(k, config_setting_get_elem(s, (unsigned)i), ovr, elabel, 0, &v));
        *(float *)((char *)base + (i ? k->aux : k->offset)) = (float)v;
    }
    return RT_OK;
}

/* Applies a scalar-like key (everything but the layer list) to base. */
static rt_status set_value(const rt_key *k, void *base, const config_setting_t *s,
                           const char *ovr, const char *label)
{
    char *p = (char *)base + k->offset;
    double v;
    const char *text = "";
    switch (k->type) {
    case RT_KEY_INT:
        RT_CHECK(get_number(k, s, ovr, label, 1, &v));
        *(int *)p = (int)v;
        return RT_OK;
    case RT_KEY_INT64:
        RT_CHECK(get_number(k, s, ovr, label, 1, &v));
        *(int64_t *)p = (int64_t)config_setting_get_int64(s);   /* exact, not via double */
        return RT_OK;
    case RT_KEY_FLOAT:
        RT_CHECK(get_number(k, s, ovr, label, 0, &v));
        *(float *)p = (float)v;
        return RT_OK;
    case RT_KEY_DOUBLE:
        RT_CHECK(get_number(k, s, ovr, label, 0, &v));
        *(double *)p = v;
        return RT_OK;
    case RT_KEY_MEGABYTES:
        RT_CHECK(get_number(k, s, ovr, label, 0, &v));
        *(long long *)p = llround(v * 1048576.0);
        return RT_OK;
    case RT_KEY_BOOL:
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
            return wrong_type(s, ovr, label, "true or false");
        *(int *)p = config_setting_get_bool(s) ? 1 : 0;
        return RT_OK;
    case RT_KEY_STRING:
        RT_CHECK(get_string(k, s, ovr, label, &text));
        snprintf(p, k->size, "%s", text);
        return RT_OK;
    case RT_KEY_ENUM: return set_enum(k, base, s, ovr, label);
    case RT_KEY_INT_LIST: return set_int_list(k, base, s, ovr, label);
    case RT_KEY_STRING_LIST: return set_string_list(k, base, s, ovr, label);
    case RT_KEY_CHANNELS: return set_channels(k, base, s, ovr, label);
    case RT_KEY_FLOAT_PAIR: return set_float_pair(k, base, s, ovr, label);
    case RT_KEY_NORMALIZE:
        if (config_setting_type(s) == CONFIG_TYPE_BOOL)
            *(int *)p = config_setting_get_bool(s) ? 1 : 0;
        else if (config_setting_type(s) == CONFIG_TYPE_GROUP)
            *(int *)p = 1;   /* mean and std are assignments of their own */
        else
            return wrong_type(s, ovr, label, "false or a group { mean = M; std = S; }");
        return RT_OK;
    case RT_KEY_LAYERS:
    case RT_KEY_PARAMS: break;
    }
    return RT_ERROR(RT_ERR_INTERNAL, "config key %s: unhandled type %d", k->path, (int)k->type);
}

/* ---- model.layers ---------------------------------------------------------------- */
/* "linear: out, bias" style list of the fields a type uses. */
static void layer_fields_list(unsigned used, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < rt_config_num_layer_keys() && len < n; i++)
        if (used & (1u << i))
            len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "",
                                    rt_config_layer_key(i)->path);
    if (len == 0)
        snprintf(buf, n, "no fields besides type");
}

static rt_status layer_type_of(const config_setting_t *g, const char *ovr, const char *label,
                               rt_layer_type *out)
{
    char names[256];
    size_t len = 0;
    for (int t = 0; t < RT_LAYER_TYPE_COUNT && len < sizeof names; t++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", t ? ", " : "",
                                rt_layer_type_name((rt_layer_type)t));
    const config_setting_t *ts = config_setting_get_member(g, "type");
    if (!ts)
        return rt_config_fail(g, ovr, "%s has no type: add type = \"...\"; (one of %s)", label,
                              names);
    if (config_setting_type(ts) != CONFIG_TYPE_STRING) {
        char expected[300];
        snprintf(expected, sizeof expected, "a layer type name (one of %s)", names);
        char tlabel[160];
        snprintf(tlabel, sizeof tlabel, "%s.type", label);
        return wrong_type(ts, ovr, tlabel, expected);
    }
    int t = rt_layer_type_from_name(config_setting_get_string(ts));
    if (t < 0)
        return rt_config_fail(ts, ovr, "%s.type = \"%.100s\" is not a layer type: use one of %s",
                              label, config_setting_get_string(ts), names);
    *out = (rt_layer_type)t;
    return RT_OK;
}

/* Closest layer field name for "did you mean". */
static const char *closest_layer_field(const char *name)
{
    const char *best = NULL;
    int best_d = 3;
    for (int i = 0; i < rt_config_num_layer_keys(); i++) {
        int d = rt_edit_distance(name, rt_config_layer_key(i)->path);
        if (d < best_d) {
            best_d = d;
            best = rt_config_layer_key(i)->path;
        }
    }
    return best;
}

static rt_status parse_layer(rt_layer_spec *spec, const config_setting_t *g, const char *ovr,
                             const char *label)
{
    if (config_setting_type(g) != CONFIG_TYPE_GROUP)
        return wrong_type(g, ovr, label, "a layer group like { type = \"relu\"; }");
    rt_layer_type type = RT_LAYER_LINEAR;
    RT_CHECK(layer_type_of(g, ovr, label, &type));
    rt_layer_spec_default(spec, type);
    unsigned used = rt_layer_type_fields(type), given = 0;
    char fields[256];
    layer_fields_list(used, fields, sizeof fields);
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(m);
        if (strcmp(name, "type") == 0)
            continue;
        char flabel[200];
        snprintf(flabel, sizeof flabel, "%s.%s", label, name);
        const rt_key *k = rt_config_find_layer_key(name);
        if (!k) {
            const char *sugg = closest_layer_field(name);
            char hint[128] = "";
            if (sugg)
                snprintf(hint, sizeof hint, " (did you mean '%s'?)", sugg);
            return rt_config_fail(m, ovr, "unknown layer field '%s'%s; a %s layer takes: %s",
                                  flabel, hint, rt_layer_type_name(type), fields);
        }
        unsigned bit = 1u << (k - rt_config_layer_key(0));
        if (!(used & bit))
            return rt_config_fail(m, ovr, "%s does not apply to a %s layer, which takes: %s",
                                  flabel, rt_layer_type_name(type), fields);
        RT_CHECK(set_value(k, spec, m, ovr, flabel));
        given |= bit;
    }
    unsigned missing = rt_layer_type_required(type) & ~given;
    if (missing) {
        char need[128];
        layer_fields_list(missing, need, sizeof need);
        return rt_config_fail(g, ovr, "%s (%s) needs: %s", label, rt_layer_type_name(type),
                              need);
    }
    return RT_OK;
}

static rt_status set_layers(const rt_key *k, rt_config *cfg, const config_setting_t *s,
                            const char *ovr)
{
    if (config_setting_type(s) != CONFIG_TYPE_LIST)
        return wrong_type(s, ovr, k->path,
                          "a list of layer groups like ( { type = \"linear\"; out = 10; } )");
    int n = config_setting_length(s);
    if (n > (int)k->size)
        return rt_config_fail(s, ovr, "%s has %d layers, at most %zu are allowed", k->path, n,
                              k->size);
    rt_layer_spec *specs = (rt_layer_spec *)((char *)cfg + k->offset);
    for (int i = 0; i < n; i++) {
        char label[96];
        snprintf(label, sizeof label, "%s[%d]", k->path, i);
        RT_CHECK(parse_layer(&specs[i], config_setting_get_elem(s, (unsigned)i), ovr, label));
    }
    *(int *)((char *)cfg + k->aux) = n;
    return RT_OK;
}

rt_status rt_config_apply(rt_config *cfg, const rt_cfg_assign *a)
{
    const rt_key *k = a->key;
    if (k->type == RT_KEY_LAYERS)
        return set_layers(k, cfg, a->setting, a->override);
    if (k->type == RT_KEY_PARAMS && a->param[0])
        return set_param(k, cfg, a->param, a->setting, a->override);
    if (k->type == RT_KEY_PARAMS)
        return set_params(k, cfg, a->setting, a->override);
    RT_CHECK(set_value(k, cfg, a->setting, a->override, k->path));
    if (k->flags & RT_KEYF_NORMALIZE_PART)
        cfg->data.transform.normalize = 1;
    return RT_OK;
}
