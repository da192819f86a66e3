/* Internal interface of the config module (not installed): the key schema
 * (schema.c), applying one libconfig setting to a typed field (apply.c),
 * cross-field validation (validate.c) and the error-message helpers that
 * every step shares. rt_config_load (config.c) strings them together:
 *
 *   read file -> collect assignments (key, setting, origin) by walking every
 *   setting -> add one assignment per override -> batch-size rule ->
 *   selector keys (model.arch, optimizer.type) reset their group's defaults
 *   -> apply every assignment in order (file first, overrides last) ->
 *   cross-field validation -> resolve data paths. */
#ifndef RTRAIN_CONFIG_INTERNAL_H
#define RTRAIN_CONFIG_INTERNAL_H

#include <libconfig.h>
#include "rtrain/config.h"

/* ---- schema ----------------------------------------------------------------- */
typedef enum rt_key_type {
    RT_KEY_INT,        /* int */
    RT_KEY_INT64,      /* int64_t (also long long: same size here) */
    RT_KEY_FLOAT,      /* float */
    RT_KEY_DOUBLE,     /* double */
    RT_KEY_BOOL,       /* int 0/1, written true/false */
    RT_KEY_STRING,     /* char[size] */
    RT_KEY_ENUM,       /* a name from a fixed set: int value, or char[size] if size > 0 */
    RT_KEY_INT_LIST,   /* int[size], element count in the int at aux */
    RT_KEY_FLOAT_PAIR, /* [a, b]: floats at offset and at aux */
    RT_KEY_MEGABYTES,  /* a number of MiB, stored as long long bytes */
    RT_KEY_NORMALIZE,  /* false, or a group { mean; std; }: rt_transform.normalize */
    RT_KEY_LAYERS,     /* list of layer groups: rt_model_spec.layers / num_layers */
    RT_KEY_STRING_LIST,/* char[size][RT_COLUMN_NAME_MAX], element count in the int at aux */
    RT_KEY_CHANNELS,   /* a number or a list of up to size numbers: float[size], count at aux */
    RT_KEY_PARAMS      /* a group of scalars kept as text: rt_config.gbdt.param_* */
} rt_key_type;

enum {
    RT_KEYF_SELECTOR = 1,       /* picks the variant of its group (only_for refers to it) */
    RT_KEYF_NORMALIZE_PART = 2  /* setting it turns data.normalize on */
};

typedef struct rt_key {
    const char *path;           /* "optimizer.lr"; for layer fields just "kernel" */
    rt_key_type type;
    size_t offset;              /* into rt_config (rt_layer_spec for layer fields) */
    size_t size;                /* STRING / text ENUM: buffer size; INT_LIST: capacity */
    size_t aux;                 /* INT_LIST: offset of the count; FLOAT_PAIR: 2nd float */
    double min, max;            /* inclusive range of numbers and list elements */
    /* ENUM: either a NULL-terminated list (value = index) or a module's
     * name function over values 0..nvalues-1 (or 0..count()-1 when the
     * module's table has no constant size); from_name, when set, is the
     * module's reverse lookup, otherwise the names are searched. */
    const char *const *names;
    const char *(*name_of)(int value);
    int (*from_name)(const char *name);
    int nvalues;
    int (*count)(void);
    /* Default owned by this table; keys without one take theirs from the
     * module's *_default function (rt_model_spec_default, ...). */
    int has_default;
    double def;
    const char *def_text;
    /* Space-separated values of the group's selector for which the key
     * means something; NULL: always. */
    const char *only_for;
    /* Selectors: fill the group's defaults for the selected value. */
    void (*reset)(rt_config *cfg, int value);
    int flags;
    const char *help;
} rt_key;

int rt_config_num_keys(void);
const rt_key *rt_config_key(int i);
int rt_config_key_index(const rt_key *k);
const rt_key *rt_config_find_key(const char *path);
/* 1 if some key's path starts with "prefix." (prefix names a group). */
int rt_config_is_group(const char *prefix);
/* The selector key of the top-level group of k, or NULL. */
const rt_key *rt_config_group_selector(const rt_key *k);
/* Writes the table's own defaults for the keys of top-level group `group`
 * ("" or NULL: all groups). */
void rt_config_apply_table_defaults(rt_config *cfg, const char *group);

/* Layer fields (keys of one element of model.layers), as rt_key entries
 * with offsets into rt_layer_spec. Field i has bit (1u << i), the bit of
 * RT_LAYER_FIELD_* (nn.h): which fields a type reads, and which it
 * requires, is the layer type's own (rt_layer_type_fields/_required). */
int rt_config_num_layer_keys(void);
const rt_key *rt_config_layer_key(int i);
const rt_key *rt_config_find_layer_key(const char *name);

/* Enum names and values. */
const char *rt_config_enum_name(const rt_key *k, int value);   /* NULL: none */
int rt_config_enum_value(const rt_key *k, const char *name);   /* -1: unknown */
int rt_config_enum_count(const rt_key *k);
/* "sgd, adam, adamw" into buf. */
void rt_config_enum_list(const rt_key *k, char *buf, size_t n);
/* Current value of an ENUM key as its name. */
const char *rt_config_enum_get(const rt_key *k, const void *base);

/* Shortest decimal text that reads back as the same float (for JSON and
 * the reference). */
void rt_config_format_float(char *buf, size_t n, float v);
/* A key's current value as config-file text ("0.001", "\"auto\"", "[512, 512]"). */
void rt_config_format_value(const rt_key *k, const void *base, char *buf, size_t n);
/* "number in 0..10", "true or false", "one of: sgd, adam, adamw", ... */
void rt_config_describe_type(const rt_key *k, char *buf, size_t n);

/* ---- assignments and messages ------------------------------------------------ */
/* One value given for one key, by the file or by an override. */
typedef struct rt_cfg_assign {
    const rt_key *key;
    const config_setting_t *setting;
    const char *override;  /* the override text; NULL when from the file */
    int skip;              /* dropped by the batch-size rule */
    /* model.params.NAME=VALUE: NAME, one parameter added or replaced ("": the key's value) */
    char param[RT_GBDT_PARAM_KEY_MAX];
} rt_cfg_assign;

/* The key path "PATH.NAME" of member m of the group at path (at the top,
 * path "": "NAME") into child; 0 when it does not fit in size bytes. */
int rt_config_member_path(char *child, size_t size, const char *path,
                          const config_setting_t *m);
/* "FILE:LINE" for a setting read from a file, "override 'TEXT'" otherwise. */
void rt_config_where(char *buf, size_t n, const config_setting_t *s, const char *override);
/* Records RT_ERR_CONFIG as "WHERE: message". */
rt_status rt_config_fail(const config_setting_t *s, const char *override, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Converts the assignment's setting to the key's type, checks it and
 * stores it into cfg. */
rt_status rt_config_apply(rt_config *cfg, const rt_cfg_assign *a);

/* Cross-field checks after all assignments are applied. last[i] is the
 * assignment that gave key i its value (NULL: default). */
rt_status rt_config_validate(const rt_config *cfg, const rt_cfg_assign *const *last);
/* Makes data.dir absolute (against the current directory) and the four
 * data file paths absolute (against data.dir). */
rt_status rt_config_resolve_paths(rt_config *cfg);

/* Shared with the tune module's parser of search spaces (config.c):
 * " (did you mean 'x.y'?)" or the valid names of the group, for an unknown
 * key; the 1-based line (1 for a one-line text) of the first integer
 * literal that does not fit in 32 bits without an L suffix (libconfig 1.5
 * would wrap it), 0 if none, its text in num; [*b, *e) without surrounding
 * white space. */
void rt_config_suggest(const char *path, char *hint, size_t n);
int rt_config_int_overflow(const char *t, size_t len, char *num, size_t numlen);
void rt_config_trim(const char **b, const char **e);

#endif
