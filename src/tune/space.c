/* Search spaces of rtrain-tune (rtrain/tune.h): the domains of an
 * experiment file and of its overrides, checked against the configuration
 * schema once at load, and each trial's values as "key=value" overrides.
 *
 * Loading: the file is walked setting by setting as the config module
 * walks it (a domain is a group with one member named after a domain kind,
 * at the path of a configuration key); then the overrides, in order, each
 * either a domain ("key=loguniform(1e-4, 0.3)": the parenthesised
 * arguments are parsed by libconfig as the list "v = ( ... );") or a plain
 * override, kept as it is. Every argument is turned into config-file text
 * at once (a choice's values, the arguments for rt_space_json), so nothing
 * of libconfig is kept after the load.
 *
 * Decisions where the header leaves room:
 *  - Later wins, as with plain overrides: a domain override replaces the
 *    file's (or an earlier override's) domain of the same key in its place;
 *    a plain override of a key drops that key's domain (it pins the key:
 *    `rtrain-tune exp.cfg optimizer.lr=0.01`). A plain override given
 *    before a domain of its key stays in the plain list: the runner passes
 *    the plain overrides first and the trial's values after them, so the
 *    trial's value wins.
 *  - Numeric domains go on numeric keys only. Integer keys (int, int64)
 *    take randint, and quniform with an integer q (values written as
 *    integers); uniform and loguniform on them are refused (their values
 *    would have to be rounded). Float and double keys take every kind
 *    (randint writes an integer, which a number key accepts).
 *  - On a float (32-bit) key a uniform or log-uniform draw is rounded to
 *    float and kept in [a, b), so the value written is the value used.
 *  - quniform is Ray Tune's: round(x / q) * q of a uniform x in [a, b), so a
 *    value may lie just outside [a, b); the schema check uses the smallest
 *    and largest reachable values.
 *  - Each random domain draws from its own Philox stream keyed by (tune
 *    seed, trial, a hash of the key's path), so adding or reordering
 *    domains leaves the others' values unchanged.
 *  - Drawn floats are written with "%.17g"; a choice's or grid's numbers
 *    with the fewest digits that read back the same (0.9, not
 *    0.90000000000000002): both read back bit for bit.
 *
 * The schema check: one rt_config_load_trial with the plain overrides and
 * every domain at its first value (its lower end or first candidate); if
 * that fails, the domain whose override the message names is blamed, or
 * the message is passed on as it is (a mistake of the file itself). Then
 * each further extreme value of each domain (upper end, every other
 * candidate) in turn, the others at their first value: a failure there is
 * that value's. Schema ranges are intervals, so the ends suffice. */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/internal.h"
#include "rtrain/tune.h"

#define MAX_VALUES 1024             /* values of one choice or grid */
#define MAX_GRID 1000000            /* cells of the grids' cross product */
#define KEY_MAX 256                 /* longest key path walked */
#define TUNE_STREAM 0x74756e65u     /* "tune": these streams differ from training's */
#define PBT_STREAM 0x70627421u      /* "pbt!": PBT's explore draws */

typedef struct domain {
    const rt_key *key;
    rt_domain_kind kind;
    char *where;        /* "FILE:LINE" or "override 'TEXT'" */
    char *args;         /* as config-file text: "[0.0001, 0.3]", "([256], [512, 512])" */
    int integer;        /* numeric values written as integers */
    double a, b, q;     /* uniform, quniform, loguniform */
    long long ia, ib;   /* randint */
    int nvalues;        /* choice, grid */
    char **values;      /* [nvalues]: each value as config-file text */
} domain;

struct rt_space {
    char *path;
    int ndomains;
    domain dom[RT_SPACE_MAX_DOMAINS];
    int nplain;
    char **plain;          /* [noverrides] copies of the plain overrides */
    unsigned char *sets;   /* [rt_config_num_keys()]: set by the file or an override */
    int64_t grid_size;
};

/* ---- text ---------------------------------------------------------------------- */
/* Appends with snprintf semantics: len keeps counting past cap, so a first
 * pass with cap 0 measures and len >= cap means truncated. */
typedef struct out_text {
    char *buf;
    size_t cap, len;
} out_text;

static void put(out_text *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out_text *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = o->len < o->cap ? vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap)
                            : vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    o->len += n > 0 ? (size_t)n : 0;
}

static rt_status text_dup(char **out, const char *t)
{
    size_t n = strlen(t) + 1;
    RT_CHECK(rt_alloc(out, n, 1, "search space text"));
    memcpy(*out, t, n);
    return RT_OK;
}

/* An integer as libconfig reads it back: the L suffix beyond 32 bits. */
static void put_int(out_text *o, long long v)
{
    put(o, v >= INT32_MIN && v <= INT32_MAX ? "%lld" : "%lldL", v);
}

/* A float that reads back bit for bit, always in float syntax ("3.0", not
 * "3", which libconfig would read as an integer); shortest: the fewest
 * digits that do (whole numbers in full: 3000.0, not 3e+03), else 17. */
static void put_double(out_text *o, double v, int shortest)
{
    char t[40];
    if (shortest && v == floor(v) && fabs(v) < 1e15) {
        put(o, "%.1f", v);
        return;
    }
    for (int digits = shortest ? 1 : 17; digits <= 17; digits++) {
        snprintf(t, sizeof t, "%.*g", digits, v);
        if (strtod(t, NULL) == v)
            break;
    }
    put(o, "%s%s", t, strpbrk(t, ".eEn") ? "" : ".0");
}

static void put_string(out_text *o, const char *s)
{
    put(o, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" :
                          c == '\t' ? "\\t" : c == '\r' ? "\\r" : c == '\f' ? "\\f" : NULL;
        if (esc)
            put(o, "%s", esc);
        else if (c < 0x20)
            put(o, "\\x%02x", c);
        else
            put(o, "%c", c);
    }
    put(o, "\"");
}

static void put_setting(out_text *o, const config_setting_t *s);

/* The members of an array, list or group between open and close. */
static void put_members(out_text *o, const config_setting_t *s, const char *open,
                        const char *close)
{
    int group = config_setting_is_group(s), n = config_setting_length(s);
    put(o, "%s", open);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (group)
            put(o, "%s = ", config_setting_name(e));
        put_setting(o, e);
        put(o, "%s", group ? "; " : i + 1 < n ? ", " : "");
    }
    put(o, "%s", close);
}

/* A setting's value back in config-file syntax. */
static void put_setting(out_text *o, const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: put_int(o, config_setting_get_int64(s)); break;
    case CONFIG_TYPE_FLOAT: put_double(o, config_setting_get_float(s), 1); break;
    case CONFIG_TYPE_BOOL: put(o, "%s", config_setting_get_bool(s) ? "true" : "false"); break;
    case CONFIG_TYPE_STRING: put_string(o, config_setting_get_string(s)); break;
    case CONFIG_TYPE_ARRAY: put_members(o, s, "[", "]"); break;
    case CONFIG_TYPE_LIST: put_members(o, s, "(", ")"); break;
    case CONFIG_TYPE_GROUP: put_members(o, s, "{ ", "}"); break;
    default: break;
    }
}

/* ---- domains ------------------------------------------------------------------- */
static void domain_free(domain *d)
{
    rt_free(d->where);
    rt_free(d->args);
    for (int i = 0; d->values && i < d->nvalues; i++)
        rt_free(d->values[i]);
    rt_free(d->values);
    memset(d, 0, sizeof *d);
}

static rt_status domain_fail(const domain *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "WHERE: optimizer.lr = loguniform [0.0001, 3]: message" */
static rt_status domain_fail(const domain *d, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return RT_ERROR(RT_ERR_CONFIG, "%s: %s = %s %.200s%s: %s", d->where, d->key->path,
                    rt_domain_kind_name(d->kind), d->args, strlen(d->args) > 200 ? "..." : "",
                    msg);
}

static int key_is_integer(const rt_key *k)
{
    return k->type == RT_KEY_INT || k->type == RT_KEY_INT64;
}

static int key_is_number(const rt_key *k)
{
    return key_is_integer(k) || k->type == RT_KEY_FLOAT || k->type == RT_KEY_DOUBLE ||
           k->type == RT_KEY_MEGABYTES;
}

static int setting_is_integer(const config_setting_t *s)
{
    return config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64;
}

/* The bounds of a numeric domain: [a, b] (randint, uniform, loguniform) or
 * [a, b, q] (quniform). */
static rt_status parse_bounds(domain *d, const config_setting_t *args)
{
    static const char *const usage[] = {
        [RT_DOMAIN_UNIFORM] = "two numbers [a, b] (a <= x < b)",
        [RT_DOMAIN_QUNIFORM] = "three numbers [a, b, q] (a uniform value rounded to a "
                               "multiple of q)",
        [RT_DOMAIN_LOGUNIFORM] = "two numbers [a, b] (0 < a <= x < b)",
        [RT_DOMAIN_RANDINT] = "two integers [a, b] (a <= x < b)"};
    const rt_key *k = d->key;
    if (!key_is_number(k)) {
        char desc[300];
        rt_config_describe_type(k, desc, sizeof desc);
        return domain_fail(d, "%s is not a number (it takes %s): use choice or grid", k->path,
                           desc);
    }
    if (key_is_integer(k) && (d->kind == RT_DOMAIN_UNIFORM || d->kind == RT_DOMAIN_LOGUNIFORM))
        return domain_fail(d, "%s takes an integer: use randint [a, b] or quniform [a, b, q] "
                           "with an integer q", k->path);
    int want = d->kind == RT_DOMAIN_QUNIFORM ? 3 : 2;
    double v[3];
    for (int i = 0; i < config_setting_length(args); i++) {
        const config_setting_t *e = config_setting_get_elem(args, (unsigned)i);
        int t = config_setting_type(e);
        int number = t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64 || t == CONFIG_TYPE_FLOAT;
        if (!number || (d->kind == RT_DOMAIN_RANDINT && !setting_is_integer(e)) || i >= want)
            return domain_fail(d, "%s takes %s", rt_domain_kind_name(d->kind), usage[d->kind]);
        v[i] = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(e)
                                      : (double)config_setting_get_int64(e);
        if (!isfinite(v[i]))
            return domain_fail(d, "the bounds must be finite numbers");
    }
    if (config_setting_length(args) != want)
        return domain_fail(d, "%s takes %s", rt_domain_kind_name(d->kind), usage[d->kind]);
    d->a = v[0];
    d->b = v[1];
    d->q = want == 3 ? v[2] : 0;
    if (d->kind == RT_DOMAIN_RANDINT) {
        d->ia = config_setting_get_int64(config_setting_get_elem(args, 0));
        d->ib = config_setting_get_int64(config_setting_get_elem(args, 1));
    }
    if (d->kind == RT_DOMAIN_RANDINT ? d->ia >= d->ib : d->a >= d->b)
        return domain_fail(d, "the lower bound must be below the upper one (a < b; values "
                           "are a <= x < b)");
    if (d->kind == RT_DOMAIN_LOGUNIFORM && d->a <= 0)
        return domain_fail(d, "loguniform needs 0 < a (a log scale cannot reach 0 or "
                           "negative values): use uniform, or a small positive a");
    if (d->kind == RT_DOMAIN_QUNIFORM && !(d->q > 0))
        return domain_fail(d, "q must be > 0 (the values are multiples of q)");
    if (d->kind == RT_DOMAIN_QUNIFORM && key_is_integer(k) && d->q != floor(d->q))
        return domain_fail(d, "%s takes an integer: give an integer q", k->path);
    d->integer = d->kind == RT_DOMAIN_RANDINT || (d->kind == RT_DOMAIN_QUNIFORM &&
                                                  key_is_integer(k));
    return RT_OK;
}

/* The values of a choice or grid, each as config-file text. */
static rt_status parse_values(domain *d, const config_setting_t *args)
{
    int n = config_setting_length(args);
    if (n < 1 || n > MAX_VALUES)
        return domain_fail(d, "%s takes 1 to %d values: %s = (v1, v2, ...) or [v1, v2, ...]",
                           rt_domain_kind_name(d->kind), MAX_VALUES, rt_domain_kind_name(d->kind));
    RT_CHECK(rt_alloc(&d->values, (size_t)n, sizeof *d->values, "search space values"));
    d->nvalues = n;
    size_t room = RT_SPACE_ASSIGN_MAX - strlen(d->key->path) - 1;   /* "key=" and the NUL */
    for (int i = 0; i < n; i++) {
        char buf[RT_SPACE_ASSIGN_MAX];
        out_text o = {buf, room, 0};
        put_setting(&o, config_setting_get_elem(args, (unsigned)i));
        if (o.len >= room)
            return domain_fail(d, "value %d is too long (%zu characters, at most %zu)", i + 1,
                               o.len, room - 1);
        RT_CHECK(text_dup(&d->values[i], buf));
    }
    return RT_OK;
}

/* Fills d from the arguments `args` of kind `kind` for key k, given at where. */
static rt_status domain_init(domain *d, const rt_key *k, rt_domain_kind kind,
                             const config_setting_t *args, const char *where)
{
    *d = (domain){.key = k, .kind = kind};
    RT_CHECK(text_dup(&d->where, where));
    int numeric = kind != RT_DOMAIN_CHOICE && kind != RT_DOMAIN_GRID;
    int t = config_setting_type(args);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
        RT_CHECK(text_dup(&d->args, ""));
        return domain_fail(d, "the arguments must be a list: %s", numeric ? "[a, b]" :
                           "(v1, v2, ...) or [v1, v2, ...]");
    }
    out_text o = {NULL, 0, 0};   /* measure, then write */
    put_members(&o, args, numeric ? "[" : "(", numeric ? "]" : ")");
    RT_CHECK(rt_alloc(&d->args, o.len + 1, 1, "search space arguments"));
    o = (out_text){d->args, o.len + 1, 0};
    put_members(&o, args, numeric ? "[" : "(", numeric ? "]" : ")");
    return numeric ? parse_bounds(d, args) : parse_values(d, args);
}

static int find_domain(const rt_space *s, const rt_key *k)
{
    for (int i = 0; i < s->ndomains; i++)
        if (s->dom[i].key == k)
            return i;
    return -1;
}

/* Adds a domain, or replaces the one of the same key in its place. */
static rt_status add_domain(rt_space *s, const rt_key *k, rt_domain_kind kind,
                            const config_setting_t *args, const char *where)
{
    int i = find_domain(s, k);
    if (i < 0 && s->ndomains == RT_SPACE_MAX_DOMAINS)
        return RT_ERROR(RT_ERR_CONFIG, "%s: %s: more than %d search-space domains: fix some "
                        "keys to one value", where, k->path, RT_SPACE_MAX_DOMAINS);
    domain d;
    rt_status st = domain_init(&d, k, kind, args, where);
    if (st != RT_OK) {
        domain_free(&d);
        return st;
    }
    if (i >= 0)
        domain_free(&s->dom[i]);
    else
        i = s->ndomains++;
    s->dom[i] = d;
    return RT_OK;
}

/* A plain override pins its key: the key's domain, if any, goes. */
static void drop_domain(rt_space *s, const rt_key *k)
{
    int i = find_domain(s, k);
    if (i < 0)
        return;
    domain_free(&s->dom[i]);
    memmove(&s->dom[i], &s->dom[i + 1], (size_t)(s->ndomains - i - 1) * sizeof s->dom[0]);
    memset(&s->dom[--s->ndomains], 0, sizeof s->dom[0]);
}

/* ---- walking the file ------------------------------------------------------------- */
/* The kind of a domain group ({ loguniform = [...]; }), or -1. */
static int domain_kind_of(const config_setting_t *s)
{
    if (!config_setting_is_group(s) || config_setting_length(s) != 1)
        return -1;
    return rt_config_domain_index(config_setting_name(config_setting_get_elem(s, 0)));
}

/* A domain (or "key=kind(...)") at `path`, which is no configuration key. */
static rt_status not_a_key(const char *path, const char *where, const char *kind)
{
    if (rt_config_is_group(path))
        return RT_ERROR(RT_ERR_CONFIG, "%s: '%s' is a group of settings, not one key: a search "
                        "space (%s) goes where one key's value goes, e.g. optimizer.lr = "
                        "{ loguniform = [1e-4, 0.3]; }", where, path, kind);
    char hint[KEY_MAX + 64];
    rt_config_suggest(path, hint, sizeof hint);
    return RT_ERROR(RT_ERR_CONFIG, "%s: unknown key '%s'%s", where, path, hint);
}

static rt_status walk(rt_space *s, const char *path, const config_setting_t *v, const char *ovr);

static rt_status walk_members(rt_space *s, const char *path, const config_setting_t *g,
                              const char *ovr)
{
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        char child[KEY_MAX];
        if (rt_config_member_path(child, sizeof child, path, m))   /* else no key: the config
                                                                    * module says so */
            RT_CHECK(walk(s, child, m, ovr));
    }
    return RT_OK;
}

/* Setting v at `path`, from the file (ovr NULL) or from override ovr (a
 * group's value): marks the keys it sets, adds the file's domains, and an
 * override drops the domains of the keys it sets. What is wrong with a
 * plain value is the config module's to report (at the schema check). */
static rt_status walk(rt_space *s, const char *path, const config_setting_t *v, const char *ovr)
{
    const rt_key *k = rt_config_find_key(path);
    int kind = ovr ? -1 : domain_kind_of(v);
    char where[1024];
    if (kind >= 0)
        rt_config_where(where, sizeof where, config_setting_get_elem(v, 0), NULL);
    if (k) {
        s->sets[rt_config_key_index(k)] = 1;
        if (kind >= 0)
            return add_domain(s, k, (rt_domain_kind)kind, config_setting_get_elem(v, 0), where);
        if (ovr)
            drop_domain(s, k);
        if (k->type == RT_KEY_NORMALIZE && config_setting_is_group(v))
            return walk_members(s, path, v, ovr);
        return RT_OK;
    }
    if (kind >= 0)
        return not_a_key(path, where, rt_config_domain_name(kind));
    if (rt_config_is_group(path) && config_setting_is_group(v))
        return walk_members(s, path, v, ovr);
    return RT_OK;
}

/* The file does not parse: the config module's reader says where and why. */
static rt_status file_error(const char *path)
{
    rt_config *cfg = NULL;
    RT_CHECK(rt_alloc(&cfg, 1, sizeof *cfg, "configuration"));
    rt_status st = rt_config_load_trial(cfg, path, 0, NULL);
    rt_free(cfg);
    if (st != RT_OK)
        return st;
    return RT_ERROR(RT_ERR_CONFIG, "%s: cannot read the config file", path);
}

static rt_status read_file(rt_space *s, const char *path)
{
    config_t cf;
    config_init(&cf);
    rt_status st = config_read_file(&cf, path) ? walk_members(s, "", config_root_setting(&cf), NULL)
                                               : file_error(path);
    config_destroy(&cf);
    return st;
}

/* ---- overrides --------------------------------------------------------------------- */

/* Parses "v = OPEN TEXT CLOSE;" into cf: *ok 1 when it parses. */
static rt_status parse_value(config_t *cf, const char *open, const char *text, size_t n,
                             const char *close, int *ok)
{
    char *buf = NULL;
    RT_CHECK(rt_alloc(&buf, n + 16, 1, "override text"));
    snprintf(buf, n + 16, "v = %s%.*s%s;", open, (int)n, text, close);
    *ok = config_read_string(cf, buf) == CONFIG_TRUE;
    rt_free(buf);
    return RT_OK;
}

/* The kind of a value "kind(args)" with the arguments' bounds, or -1. */
static int domain_call(const char *vb, const char *ve, const char **ab, const char **ae)
{
    const char *p = vb;
    while (p < ve && islower((unsigned char)*p))
        p++;
    char name[16];
    if (p == vb || p - vb >= (int)sizeof name)
        return -1;
    snprintf(name, sizeof name, "%.*s", (int)(p - vb), vb);
    int kind = rt_config_domain_index(name);
    while (p < ve && isspace((unsigned char)*p))
        p++;
    if (kind < 0 || p == ve || *p != '(')
        return -1;
    *ab = p + 1;
    *ae = ve[-1] == ')' ? ve - 1 : NULL;
    return kind;
}


/* "optimizer.lr=loguniform(1e-4, 0.3)": the arguments as the libconfig
 * list "v = ( ... );". */
static rt_status add_override_domain(rt_space *s, const char *text, const char *key, int kind,
                                     const char *ab, const char *ae)
{
    const char *name = rt_config_domain_name(kind);
    char where[RT_SPACE_ASSIGN_MAX + 16];   /* "override 'TEXT'", TEXT cut short if long */
    rt_config_where(where, sizeof where, NULL, text);
    if (strlen(text) + 12 > sizeof where)
        snprintf(where, sizeof where, "override '%.*s...'", RT_SPACE_ASSIGN_MAX - 64, text);
    if (!ae)
        return RT_ERROR(RT_ERR_CONFIG, "%s: write %s(...) with the arguments in parentheses, "
                        "e.g. optimizer.lr=loguniform(1e-4, 0.3)", where, name);
    const rt_key *k = rt_config_find_key(key);
    if (!k)
        return not_a_key(key, where, name);
    size_t n = (size_t)(ae - ab);
    char big[48];
    if (rt_config_int_overflow(ab, n, big, sizeof big))
        return RT_ERROR(RT_ERR_CONFIG, "%s: integer %s does not fit in 32 bits: write it as "
                        "%sL", where, big, big);
    config_t cf;
    config_init(&cf);
    int ok = 0;
    rt_status st = parse_value(&cf, "(", ab, n, ")", &ok);
    if (st == RT_OK && !ok)
        st = RT_ERROR(RT_ERR_CONFIG, "%s: syntax error in the arguments of %s (%s); values use "
                      "config-file syntax: 0.01, true, \"text\", [256, 256]", where, name,
                      config_error_text(&cf));
    else if (st == RT_OK)
        st = add_domain(s, k, (rt_domain_kind)kind,
                        config_setting_get_elem(config_root_setting(&cf), 0), where);
    config_destroy(&cf);
    s->sets[rt_config_key_index(k)] = 1;
    return st;
}

/* A plain override: kept as it is; the keys it sets are marked (a group's
 * value, "optimizer={lr=0.1;}", is parsed to find them) and lose their
 * domains. */
static rt_status add_plain(rt_space *s, const char *text, const char *key, const char *vb,
                           const char *ve)
{
    RT_CHECK(text_dup(&s->plain[s->nplain++], text));
    const rt_key *k = rt_config_find_key(key);
    if (k || !rt_config_is_group(key)) {   /* an unknown key: the config module says so */
        if (k) {
            s->sets[rt_config_key_index(k)] = 1;
            drop_domain(s, k);
        }
        return RT_OK;
    }
    config_t cf;
    config_init(&cf);
    int ok = 0;
    rt_status st = parse_value(&cf, "", vb, (size_t)(ve - vb), "", &ok);
    const config_setting_t *v = ok ? config_setting_get_elem(config_root_setting(&cf), 0) : NULL;
    if (st == RT_OK && v && config_setting_is_group(v))
        st = walk_members(s, key, v, text);
    config_destroy(&cf);
    return st;
}

static rt_status parse_override(rt_space *s, const char *text)
{
    const char *eq = strchr(text, '=');
    if (!eq)   /* not KEY=VALUE: the config module says so */
        return text_dup(&s->plain[s->nplain++], text);
    const char *kb = text, *ke = eq, *vb = eq + 1, *ve = eq + strlen(eq);
    rt_config_trim(&kb, &ke);
    rt_config_trim(&vb, &ve);
    char key[KEY_MAX];
    snprintf(key, sizeof key, "%.*s", (int)(ke - kb < KEY_MAX ? ke - kb : KEY_MAX - 1), kb);
    const char *ab = NULL, *ae = NULL;
    int kind = domain_call(vb, ve, &ab, &ae);
    if (kind >= 0)
        return add_override_domain(s, text, key, kind, ab, ae);
    return add_plain(s, text, key, vb, ve);
}

/* ---- values ------------------------------------------------------------------------ */
/* 53 random bits: a double in [0, 1). */
static double unit_draw(rt_rng *r)
{
    uint64_t hi = rt_rng_u32(r) >> 5, lo = rt_rng_u32(r) >> 6;
    return ((double)hi * 67108864.0 + (double)lo) / 9007199254740992.0;
}

/* An integer in [0, n), unbiased. */
static uint64_t below64(rt_rng *r, uint64_t n)
{
    if (n <= UINT32_MAX)
        return rt_rng_below(r, (uint32_t)n);
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do
        x = ((uint64_t)rt_rng_u32(r) << 32) | rt_rng_u32(r);
    while (x >= limit);
    return x % n;
}

/* x kept in [a, b) and, on a float key, rounded to float. */
static double fit(const domain *d, double x)
{
    if (d->key->type == RT_KEY_FLOAT) {
        float f = (float)x;
        while ((double)f >= d->b)
            f = nextafterf(f, -INFINITY);
        while ((double)f < d->a && (double)nextafterf(f, INFINITY) < d->b)
            f = nextafterf(f, INFINITY);
        return f;
    }
    return x >= d->b ? nextafter(d->b, -INFINITY) : x < d->a ? d->a : x;
}

/* The value of uniform, quniform or loguniform at u in [0, 1). */
static double value_at(const domain *d, double u)
{
    switch (d->kind) {
    case RT_DOMAIN_LOGUNIFORM: {
        double la = log(d->a), lb = log(d->b);
        return fit(d, exp(la + u * (lb - la)));
    }
    case RT_DOMAIN_QUNIFORM: {
        double x = d->a + u * (d->b - d->a);
        x = x >= d->b ? nextafter(d->b, -INFINITY) : x;
        double v = round(x / d->q) * d->q;
        return d->key->type == RT_KEY_FLOAT ? (double)(float)v : v;
    }
    default: return fit(d, d->a + u * (d->b - d->a));
    }
}

/* "key=value" of a numeric domain: x, or ix for randint. */
static void write_number(const domain *d, double x, long long ix, char *buf, size_t n)
{
    out_text o = {buf, n, 0};
    put(&o, "%s=", d->key->path);
    if (d->kind == RT_DOMAIN_RANDINT)
        put_int(&o, ix);
    else if (d->integer)
        put_int(&o, llround(x));
    else
        put_double(&o, x, 0);
}

/* ---- checking against the schema --------------------------------------------------- */
static int num_candidates(const domain *d)
{
    return d->kind == RT_DOMAIN_CHOICE || d->kind == RT_DOMAIN_GRID ? d->nvalues : 2;
}

/* Extreme value i of d as "key=value" (0: the lower end or first value),
 * and how a message names it. */
static void candidate(const domain *d, int i, char *buf, size_t n, char *what, size_t wn)
{
    static const double top = 0x1.fffffffffffffp-1;   /* the largest u below 1 */
    if (d->kind == RT_DOMAIN_CHOICE || d->kind == RT_DOMAIN_GRID)
        snprintf(buf, n, "%s=%s", d->key->path, d->values[i]);
    else
        write_number(d, value_at(d, i ? top : 0), i ? d->ib - 1 : d->ia, buf, n);
    const char *value = strchr(buf, '=') + 1;
    int near_b = i && (d->kind == RT_DOMAIN_UNIFORM || d->kind == RT_DOMAIN_LOGUNIFORM);
    out_text o = {what, wn, 0};
    if (near_b) {
        put(&o, "the values just below ");
        put_double(&o, d->b, 1);
        put(&o, " (%s)", value);
    } else {
        put(&o, "%s", value);
    }
}

/* Records "WHERE: key = kind args: WHAT is not accepted: why" from the
 * config module's message for override assign. */
static rt_status blame(const domain *d, const char *assign, const char *what)
{
    char prefix[RT_SPACE_ASSIGN_MAX + 16], *msg = NULL;
    snprintf(prefix, sizeof prefix, "override '%s': ", assign);
    rt_status st = text_dup(&msg, rt_error_message());
    rt_error_clear();
    RT_CHECK(st);
    const char *why = strncmp(msg, prefix, strlen(prefix)) == 0 ? msg + strlen(prefix) : msg;
    st = domain_fail(d, "%s %s not accepted: %s", what,
                     strncmp(what, "the values", 10) == 0 ? "are" : "is", why);
    rt_free(msg);
    return st;
}

/* Loads the file with ovr (the plain overrides, then one value per
 * domain) and tries every domain's extreme values (see the file comment).
 * base[d]: domain d's first value; cand: room for one more. */
static rt_status try_extremes(const rt_space *s, rt_config *cfg, char **ovr,
                              char (*base)[RT_SPACE_ASSIGN_MAX], char *cand)
{
    int n = s->nplain + s->ndomains;
    char what[RT_SPACE_ASSIGN_MAX + 64];
    if (rt_config_load_trial(cfg, s->path, n, ovr) != RT_OK) {
        for (int d = 0; d < s->ndomains; d++) {
            char named[RT_SPACE_ASSIGN_MAX + 16];
            snprintf(named, sizeof named, "override '%s'", base[d]);
            if (strstr(rt_error_message(), named)) {
                candidate(&s->dom[d], 0, base[d], RT_SPACE_ASSIGN_MAX, what, sizeof what);
                return blame(&s->dom[d], base[d], what);
            }
        }
        return RT_ERR_CONFIG;   /* the file's own mistake, as the config module said it */
    }
    for (int d = 0; d < s->ndomains; d++) {
        for (int i = 1; i < num_candidates(&s->dom[d]); i++) {
            candidate(&s->dom[d], i, cand, RT_SPACE_ASSIGN_MAX, what, sizeof what);
            ovr[s->nplain + d] = cand;
            rt_status st = rt_config_load_trial(cfg, s->path, n, ovr);
            ovr[s->nplain + d] = base[d];
            if (st != RT_OK)
                return blame(&s->dom[d], cand, what);
        }
    }
    return RT_OK;
}

static rt_status check_schema(const rt_space *s)
{
    int n = s->nplain + s->ndomains;
    char what[RT_SPACE_ASSIGN_MAX + 64];
    char **ovr = NULL, (*base)[RT_SPACE_ASSIGN_MAX] = NULL;
    rt_config *cfg = NULL;
    rt_status st = RT_OK;
    RT_CHECK_GOTO(st, rt_alloc(&ovr, (size_t)n + 1, sizeof *ovr, "overrides"), done);
    RT_CHECK_GOTO(st, rt_alloc(&base, (size_t)s->ndomains + 1, sizeof *base, "overrides"), done);
    RT_CHECK_GOTO(st, rt_alloc(&cfg, 1, sizeof *cfg, "configuration"), done);
    for (int i = 0; i < s->nplain; i++)
        ovr[i] = s->plain[i];
    for (int d = 0; d < s->ndomains; d++) {
        candidate(&s->dom[d], 0, base[d], RT_SPACE_ASSIGN_MAX, what, sizeof what);
        ovr[s->nplain + d] = base[d];
    }
    RT_CHECK_GOTO(st, try_extremes(s, cfg, ovr, base, base[s->ndomains]), done);
done:
    rt_free(ovr);
    rt_free(base);
    rt_free(cfg);
    return st;
}

static rt_status compute_grid_size(rt_space *s)
{
    s->grid_size = 1;
    for (int d = 0; d < s->ndomains; d++) {
        if (s->dom[d].kind != RT_DOMAIN_GRID)
            continue;
        if (s->grid_size > MAX_GRID / s->dom[d].nvalues)
            return domain_fail(&s->dom[d], "the grids make more than %d trials per sample: "
                               "use fewer grid values, or choice for some keys", MAX_GRID);
        s->grid_size *= s->dom[d].nvalues;
    }
    return RT_OK;
}

/* ---- the interface ------------------------------------------------------------------ */
static rt_status space_build(rt_space *s, const char *path, int noverrides,
                             char *const *overrides)
{
    RT_CHECK(text_dup(&s->path, path));
    RT_CHECK(rt_alloc(&s->sets, (size_t)rt_config_num_keys(), 1, "search space keys"));
    RT_CHECK(rt_alloc(&s->plain, (size_t)noverrides + 1, sizeof *s->plain, "overrides"));
    RT_CHECK(read_file(s, path));
    for (int i = 0; i < noverrides; i++)
        RT_CHECK(parse_override(s, overrides[i]));
    RT_CHECK(compute_grid_size(s));
    RT_CHECK(check_schema(s));
    return RT_OK;
}

rt_status rt_space_load(rt_space **out, const char *path, int noverrides,
                        char *const *overrides)
{
    if (!out || !path || noverrides < 0 || (noverrides > 0 && !overrides))
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_space_load: missing output, path or overrides");
    *out = NULL;
    rt_space *s = NULL;
    RT_CHECK(rt_alloc(&s, 1, sizeof *s, "search space"));
    rt_status st = space_build(s, path, noverrides, overrides);
    if (st != RT_OK) {
        rt_space_free(s);
        RT_CHECK(st);
    }
    *out = s;
    return RT_OK;
}

void rt_space_free(rt_space *s)
{
    if (!s)
        return;
    for (int d = 0; d < s->ndomains; d++)
        domain_free(&s->dom[d]);
    for (int i = 0; s->plain && i < s->nplain; i++)
        rt_free(s->plain[i]);
    rt_free(s->plain);
    rt_free(s->sets);
    rt_free(s->path);
    rt_free(s);
}

int rt_space_num_domains(const rt_space *s) { return s ? s->ndomains : 0; }

const char *rt_space_domain_key(const rt_space *s, int i)
{
    return s && i >= 0 && i < s->ndomains ? s->dom[i].key->path : NULL;
}

rt_domain_kind rt_space_domain_kind(const rt_space *s, int i)
{
    return s && i >= 0 && i < s->ndomains ? s->dom[i].kind : RT_DOMAIN_COUNT;
}

const char *rt_domain_kind_name(rt_domain_kind k) { return rt_config_domain_name((int)k); }

int64_t rt_space_grid_size(const rt_space *s) { return s ? s->grid_size : 1; }

int rt_space_num_plain_overrides(const rt_space *s) { return s ? s->nplain : 0; }

char *const *rt_space_plain_overrides(const rt_space *s) { return s ? s->plain : NULL; }

int rt_space_sets(const rt_space *s, const char *key)
{
    const rt_key *k = s && key ? rt_config_find_key(key) : NULL;
    return k ? s->sets[rt_config_key_index(k)] : 0;
}

/* FNV-1a: a key's stream does not depend on the other domains. */
static uint64_t path_hash(const char *p)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return h;
}

rt_status rt_space_trial(const rt_space *s, uint64_t seed, int64_t trial,
                         char assign[][RT_SPACE_ASSIGN_MAX])
{
    if (!s || !assign || trial < 0)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_space_trial: missing space or output, or "
                        "negative trial %lld", (long long)trial);
    int64_t cell = trial % s->grid_size;   /* mixed radix, the first grid fastest */
    for (int i = 0; i < s->ndomains; i++) {
        const domain *d = &s->dom[i];
        if (d->kind == RT_DOMAIN_GRID) {
            snprintf(assign[i], RT_SPACE_ASSIGN_MAX, "%s=%s", d->key->path,
                     d->values[cell % d->nvalues]);
            cell /= d->nvalues;
            continue;
        }
        rt_rng r;
        rt_rng_init(&r, rt_rng_key(seed, (uint64_t)trial, path_hash(d->key->path), TUNE_STREAM));
        if (d->kind == RT_DOMAIN_CHOICE)
            snprintf(assign[i], RT_SPACE_ASSIGN_MAX, "%s=%s", d->key->path,
                     d->values[rt_rng_below(&r, (uint32_t)d->nvalues)]);
        else if (d->kind == RT_DOMAIN_RANDINT)
            write_number(d, 0, d->ia + (long long)below64(&r, (uint64_t)d->ib - (uint64_t)d->ia),
                         assign[i], RT_SPACE_ASSIGN_MAX);
        else
            write_number(d, value_at(d, unit_draw(&r)), 0, assign[i], RT_SPACE_ASSIGN_MAX);
    }
    return RT_OK;
}

/* One domain's value drawn afresh for (seed, trial, stream): a grid or
 * choice any of its values, the others as rt_space_trial draws them. */
static void draw(const domain *d, rt_rng *r, char *out)
{
    if (d->kind == RT_DOMAIN_GRID || d->kind == RT_DOMAIN_CHOICE)
        snprintf(out, RT_SPACE_ASSIGN_MAX, "%s=%s", d->key->path,
                 d->values[rt_rng_below(r, (uint32_t)d->nvalues)]);
    else if (d->kind == RT_DOMAIN_RANDINT)
        write_number(d, 0, d->ia + (long long)below64(r, (uint64_t)d->ib - (uint64_t)d->ia),
                     out, RT_SPACE_ASSIGN_MAX);
    else
        write_number(d, value_at(d, unit_draw(r)), 0, out, RT_SPACE_ASSIGN_MAX);
}

/* PBT's perturbation of one value (current: "key=value"): a list's
 * neighbouring value, or the number times factor kept inside the domain
 * (on quniform's grid, randint's integers), so that the schema accepts it
 * as it accepted the domain's ends. 0 when current is not one of the
 * domain's values (the caller draws afresh). */
static int perturb(const domain *d, const char *current, int up, char *out)
{
    const char *text = strchr(current, '=') ? strchr(current, '=') + 1 : current;
    if (d->kind == RT_DOMAIN_GRID || d->kind == RT_DOMAIN_CHOICE) {
        for (int i = 0; i < d->nvalues; i++)
            if (!strcmp(d->values[i], text)) {
                int j = up ? (i + 1 < d->nvalues ? i + 1 : i) : (i > 0 ? i - 1 : i);
                snprintf(out, RT_SPACE_ASSIGN_MAX, "%s=%s", d->key->path, d->values[j]);
                return 1;
            }
        return 0;
    }
    char *end;
    double x = strtod(text, &end) * (up ? 1.2 : 0.8);
    if (end == text || !isfinite(x))
        return 0;
    if (d->kind == RT_DOMAIN_RANDINT) {
        long long ix = llround(x);
        ix = ix < d->ia ? d->ia : ix >= d->ib ? d->ib - 1 : ix;
        write_number(d, 0, ix, out, RT_SPACE_ASSIGN_MAX);
    } else if (d->kind == RT_DOMAIN_QUNIFORM) {
        double lo = ceil(d->a / d->q) * d->q, hi = floor(nextafter(d->b, -INFINITY) / d->q) * d->q;
        double v = round(x / d->q) * d->q;
        v = v < lo ? lo : v > hi ? hi : v;
        write_number(d, d->key->type == RT_KEY_FLOAT ? (double)(float)v : v, 0, out,
                     RT_SPACE_ASSIGN_MAX);
    } else {
        write_number(d, fit(d, x), 0, out, RT_SPACE_ASSIGN_MAX);
    }
    return 1;
}

rt_status rt_space_explore(const rt_space *s, uint64_t seed, int64_t trial, int64_t round,
                           double resample_probability, char current[][RT_SPACE_ASSIGN_MAX],
                           char out[][RT_SPACE_ASSIGN_MAX])
{
    if (!s || !current || !out || trial < 0 || round < 0)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_space_explore: missing space, values or "
                        "output, or a negative trial or round");
    for (int i = 0; i < s->ndomains; i++) {
        const domain *d = &s->dom[i];
        rt_rng r;
        rt_rng_init(&r, rt_rng_key(seed, (uint64_t)trial, path_hash(d->key->path) ^
                                   ((uint64_t)round * 0x9e3779b97f4a7c15ull), PBT_STREAM));
        int resample = unit_draw(&r) < resample_probability, up = rt_rng_below(&r, 2);
        if (resample || !perturb(d, current[i], up, out[i]))
            draw(d, &r, out[i]);
    }
    return RT_OK;
}

rt_status rt_space_json(const rt_space *s, char **json)
{
    if (!s || !json)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_space_json: missing space or output");
    *json = NULL;
    json_t *root = json_object(), *list = json_array();
    int ok = root && list && json_object_set(root, "domains", list) == 0;
    for (int i = 0; ok && i < s->ndomains; i++) {
        const domain *d = &s->dom[i];
        json_t *o = json_object();
        ok = o && json_object_set_new(o, "key", json_string(d->key->path)) == 0 &&
             json_object_set_new(o, "kind", json_string(rt_domain_kind_name(d->kind))) == 0 &&
             json_object_set_new(o, "args", json_string(d->args)) == 0 &&
             json_array_append(list, o) == 0;
        json_decref(o);
    }
    if (ok)
        *json = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(list);
    json_decref(root);
    if (!*json)
        return RT_ERROR(RT_ERR_NOMEM, "rt_space_json: cannot build the search space's JSON "
                        "(out of memory, or text that is not UTF-8)");
    return RT_OK;
}
