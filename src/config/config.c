/* rt_config_load: reads a libconfig file and key=value overrides into one
 * rt_config. Every setting of the file is visited, so a misspelt key is an
 * error (with the closest valid key) rather than a silently ignored line.
 *
 * Order of precedence: table/module defaults < file < overrides, in the
 * order given. Two exceptions keep that rule predictable:
 *  - Selector keys (model.arch, optimizer.type) are applied before all
 *    other keys of their group and reset it to the defaults of the selected
 *    variant (AdamW's weight decay differs from Adam's), wherever they
 *    appear.
 *  - data.batch_size and data.global_batch_size exclude each other: an
 *    override of one drops the other one given in the file, so
 *    `rtrain x.cfg data.batch_size=128` works on a file that sets
 *    global_batch_size. Both given by the same source is an error. */
#include <ctype.h>
#include <jansson.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "config/internal.h"

#define CONFIG_MAX_BYTES (16u << 20)  /* a config file larger than this is a mistake */
#define MAX_OVERRIDES 4096
#define KEY_MAX 256
#define VALUE_MAX 8000                /* longest override value */

typedef struct load_ctx {
    rt_cfg_assign *assign;
    int n, cap;
    int trial;   /* rt_config_load_trial: domains in the file are left to overrides */
    /* Domains of the file: an override must give each key its value. */
    const config_setting_t *domains[64];
    const rt_key *domain_keys[64];
    int ndomains;
} load_ctx;

/* ---- search-space domains ---------------------------------------------------- */
static const char *const domain_names[] = {"uniform", "quniform", "loguniform", "randint",
                                           "choice", "grid"};
#define NDOMAINS ((int)(sizeof domain_names / sizeof domain_names[0]))

int rt_config_domain_index(const char *name)
{
    for (int i = 0; name && i < NDOMAINS; i++)
        if (!strcmp(domain_names[i], name))
            return i;
    return -1;
}

const char *rt_config_domain_name(int i) { return i >= 0 && i < NDOMAINS ? domain_names[i] : NULL; }

/* A group with one member named after a domain, where a key's value goes. */
static int is_domain(const config_setting_t *s)
{
    return config_setting_is_group(s) && config_setting_length(s) == 1 &&
           rt_config_domain_index(config_setting_name(config_setting_get_elem(s, 0))) >= 0;
}

/* ---- suggestions ----------------------------------------------------------- */
/* Edit distance still counted as a typo for a name of this length. */
static int typo_threshold(size_t len) { return len <= 3 ? 1 : len <= 6 ? 2 : 3; }

/* Calls fn for each distinct child name of group `parent` ("" = top level):
 * a leaf key or a sub-group. */
static void for_each_child(const char *parent, void (*fn)(void *arg, const char *name, size_t n),
                           void *arg)
{
    size_t plen = strlen(parent);
    char seen[2048] = "|";   /* "|name|name|": children already reported */
    for (int i = 0; i < rt_config_num_keys(); i++) {
        const char *p = rt_config_key(i)->path;
        if (plen && (strncmp(p, parent, plen) != 0 || p[plen] != '.'))
            continue;
        const char *child = plen ? p + plen + 1 : p;
        size_t n = strcspn(child, ".");
        char tag[KEY_MAX + 2];
        snprintf(tag, sizeof tag, "|%.*s|", (int)n, child);
        if (strstr(seen, tag))
            continue;
        if (strlen(seen) + strlen(tag) < sizeof seen)
            strcat(seen, tag + 1);
        fn(arg, child, n);
    }
}

typedef struct best_match {
    const char *leaf;
    char best[KEY_MAX];
    int dist;
    char list[1024];
} best_match;

static void match_child(void *arg, const char *name, size_t n)
{
    best_match *m = arg;
    char child[KEY_MAX];
    snprintf(child, sizeof child, "%.*s", (int)n, name);
    int d = rt_edit_distance(m->leaf, child);
    if (d < m->dist) {
        m->dist = d;
        snprintf(m->best, sizeof m->best, "%s", child);
    }
    size_t used = strlen(m->list);
    if (used + n + 3 < sizeof m->list)
        snprintf(m->list + used, sizeof m->list - used, "%s%s", used ? ", " : "", child);
}

/* Writes " (did you mean 'x.y'?)" or a list of the valid names of the
 * group into hint. Same group first (a typo), then a key with the same
 * last part anywhere (a key in the wrong group), then the whole path. */
void rt_config_suggest(const char *path, char *hint, size_t n)
{
    char parent[KEY_MAX];
    const char *dot = strrchr(path, '.');
    snprintf(parent, sizeof parent, "%.*s", dot ? (int)(dot - path) : 0, path);
    best_match m = {.leaf = dot ? dot + 1 : path, .dist = 1 << 30};
    if (rt_config_is_group(parent) || parent[0] == '\0')
        for_each_child(parent, match_child, &m);
    if (m.best[0] && m.dist <= typo_threshold(strlen(m.leaf))) {
        snprintf(hint, n, " (did you mean '%s%s%s'?)", parent, parent[0] ? "." : "", m.best);
        return;
    }
    const char *best = NULL;
    int best_d = 1 << 30;
    for (int i = 0; i < rt_config_num_keys(); i++) {
        const char *p = rt_config_key(i)->path;
        const char *pleaf = strrchr(p, '.') ? strrchr(p, '.') + 1 : p;
        int d = strcmp(pleaf, m.leaf) == 0 ? 0 : rt_edit_distance(path, p);
        if (d < best_d) {
            best_d = d;
            best = p;
        }
    }
    /* The threshold follows the last part: a misspelt group (trian.epochs)
     * is found, an unrelated key in the right group (data.foo) is not. */
    if (best && best_d <= typo_threshold(strlen(m.leaf))) {
        snprintf(hint, n, " (did you mean '%s'?)", best);
        return;
    }
    if (m.list[0])
        snprintf(hint, n, "; valid keys %s%s%s are: %s (rtrain --help-config lists them all)",
                 parent[0] ? "in '" : "at the top level", parent, parent[0] ? "'" : "",
                 m.list);
    else
        snprintf(hint, n, " (rtrain --help-config lists every key)");
}

static rt_status unknown_key(const char *path, const config_setting_t *s, const char *ovr)
{
    char hint[1400];
    rt_config_suggest(path, hint, sizeof hint);
    return rt_config_fail(s, ovr, "unknown key '%s'%s", path, hint);
}

/* ---- walking the settings ---------------------------------------------------- */
static rt_status add_assign(load_ctx *c, const rt_key *k, const config_setting_t *s,
                            const char *ovr)
{
    if (c->n >= c->cap)   /* cap covers every key once per source: a bug if hit */
        return RT_ERROR(RT_ERR_INTERNAL, "config: more assignments than expected (%d)", c->cap);
    c->assign[c->n++] = (rt_cfg_assign){.key = k, .setting = s, .override = ovr};
    return RT_OK;
}

int rt_config_member_path(char *child, size_t size, const char *path,
                          const config_setting_t *m)
{
    int len = snprintf(child, size, "%s%s%s", path, path[0] ? "." : "", config_setting_name(m));
    return len >= 0 && (size_t)len < size;
}

static rt_status collect(load_ctx *c, const char *path, const config_setting_t *s,
                         const char *ovr);

static rt_status collect_members(load_ctx *c, const char *path, const config_setting_t *g,
                                 const char *ovr)
{
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        char child[KEY_MAX];
        if (!rt_config_member_path(child, sizeof child, path, m))
            return rt_config_fail(m, ovr, "unknown key '%.64s...' (too long)", child);
        RT_CHECK(collect(c, child, m, ovr));
    }
    return RT_OK;
}

/* Records an assignment for `path` (a key) or recurses into it (a group). */
static rt_status collect(load_ctx *c, const char *path, const config_setting_t *s,
                         const char *ovr)
{
    const rt_key *k = rt_config_find_key(path);
    if (k && !ovr && is_domain(s)) {   /* an override must give its value */
        if (c->ndomains == (int)(sizeof c->domains / sizeof c->domains[0]))
            return rt_config_fail(s, ovr, "more than %d search-space domains",
                                  (int)(sizeof c->domains / sizeof c->domains[0]));
        c->domain_keys[c->ndomains] = k;
        c->domains[c->ndomains++] = s;
        return RT_OK;
    }
    if (k) {
        RT_CHECK(add_assign(c, k, s, ovr));
        if (k->type == RT_KEY_NORMALIZE && config_setting_is_group(s))
            RT_CHECK(collect_members(c, path, s, ovr));
        return RT_OK;
    }
    if (rt_config_is_group(path)) {
        if (!config_setting_is_group(s)) {
            const char *leaf = strrchr(path, '.') ? strrchr(path, '.') + 1 : path;
            return rt_config_fail(s, ovr, "'%s' is a group of settings: write %s = { ... };",
                                  path, leaf);
        }
        return collect_members(c, path, s, ovr);
    }
    return unknown_key(path, s, ovr);
}

/* ---- reading the file ---------------------------------------------------------- */
/* libconfig 1.5 reads an integer literal without an L suffix with atoi(),
 * so 5000000000 silently becomes 705032704. This scan finds such literals
 * (outside strings and comments) so they can be reported instead. Returns
 * the 1-based line of the first one, 0 if none; the literal goes to num. */
int rt_config_int_overflow(const char *t, size_t len, char *num, size_t numlen)
{
    int line = 1;
    size_t i = 0;
    while (i < len) {
        char ch = t[i];
        if (ch == '\n') {
            line++;
            i++;
        } else if (ch == '#' || (ch == '/' && i + 1 < len && t[i + 1] == '/')) {
            while (i < len && t[i] != '\n')
                i++;
        } else if (ch == '/' && i + 1 < len && t[i + 1] == '*') {
            for (i += 2; i < len && !(t[i] == '*' && i + 1 < len && t[i + 1] == '/'); i++)
                line += t[i] == '\n';
            i += 2;
        } else if (ch == '"') {
            for (i++; i < len && t[i] != '"'; i++) {
                if (t[i] == '\\' && i + 1 < len)
                    i++;
                line += t[i] == '\n';
            }
            i++;
        } else if (isalpha((unsigned char)ch) || ch == '_' || ch == '*') {
            while (i < len && (isalnum((unsigned char)t[i]) || strchr("-_*", t[i])))
                i++;
        } else if (isdigit((unsigned char)ch)) {
            size_t start = i;
            int hex = ch == '0' && i + 1 < len && (t[i + 1] == 'x' || t[i + 1] == 'X');
            i += hex ? 2 : 0;
            while (i < len && (hex ? isxdigit((unsigned char)t[i]) : isdigit((unsigned char)t[i])))
                i++;
            int is_float = (start > 0 && t[start - 1] == '.') ||
                           (!hex && i < len && strchr(".eE", t[i]));
            int is_long = i < len && t[i] == 'L';
            if (is_float) {
                while (i < len && (isdigit((unsigned char)t[i]) || strchr(".eE+-", t[i])))
                    i++;
                continue;
            }
            if (!is_long) {
                size_t s = start + (hex ? 2 : 0);
                while (s + 1 < i && t[s] == '0')   /* leading zeros do not count */
                    s++;
                size_t digits = i - s;
                int neg = !hex && start > 0 && t[start - 1] == '-';
                const char *limit = hex ? "7fffffff" : neg ? "2147483648" : "2147483647";
                size_t llen = strlen(limit);
                int over = digits > llen ||
                           (digits == llen && strncasecmp(t + s, limit, llen) > 0);
                if (over) {
                    snprintf(num, numlen, "%.*s", (int)(i - start < 40 ? i - start : 40),
                             t + start);
                    return line;
                }
            }
        } else {
            i++;
        }
    }
    return 0;
}

/* Opens and reads the whole file (for the literal scan), then parses it. */
static rt_status read_config(config_t *cf, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return RT_ERROR(RT_ERR_CONFIG, "%s: cannot open the config file: %s", path,
                        strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > CONFIG_MAX_BYTES) {
        fclose(f);
        return RT_ERROR(RT_ERR_CONFIG, "%s: not a config file (larger than %u MiB or "
                        "unreadable)", path, CONFIG_MAX_BYTES >> 20);
    }
    char *text = NULL;
    rt_status s = rt_alloc(&text, (size_t)st.st_size + 1, 1, "config file text");
    size_t len = s == RT_OK ? fread(text, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    RT_CHECK(s);
    if (!config_read_file(cf, path)) {
        rt_free(text);
        if (config_error_type(cf) == CONFIG_ERR_FILE_IO)
            return RT_ERROR(RT_ERR_CONFIG, "%s: cannot read the config file (or a file it "
                            "@includes)", path);
        const char *file = config_error_file(cf) ? config_error_file(cf) : path;
        const char *what = config_error_text(cf);
        if (strcmp(what, "syntax error") == 0)
            return RT_ERROR(RT_ERR_CONFIG, "%s:%d: syntax error (look for a missing ';', "
                            "quote or bracket on this line or the one before)", file,
                            config_error_line(cf));
        return RT_ERROR(RT_ERR_CONFIG, "%s:%d: syntax error: %s", file, config_error_line(cf),
                        what);
    }
    char num[48];
    int line = rt_config_int_overflow(text, len, num, sizeof num);
    rt_free(text);
    if (line)
        return RT_ERROR(RT_ERR_CONFIG, "%s:%d: integer %s does not fit in 32 bits: write it "
                        "as %sL", path, line, num, num);
    return RT_OK;
}

/* ---- overrides ------------------------------------------------------------------ */
void rt_config_trim(const char **b, const char **e)
{
    while (*b < *e && isspace((unsigned char)**b))
        (*b)++;
    while (*e > *b && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

/* A value with none of libconfig's punctuation is taken as text when it
 * does not parse (optimizer.type=adam, data.dir=/scratch/fmnist). */
static int is_bare_word(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strchr("\"[](){}=;,", v[i]))
            return 0;
    return 1;
}

/* Parses "v = <value>;" into cf, or "v = \"<value>\";" when quoted. */
static int parse_value(config_t *cf, const char *v, size_t n, int quoted)
{
    char buf[2 * VALUE_MAX + 16];   /* room for every character escaped */
    size_t used = (size_t)snprintf(buf, sizeof buf, "v = %s", quoted ? "\"" : "");
    for (size_t i = 0; i < n && used + 8 < sizeof buf; i++) {
        if (quoted && v[i] == '\\')
            buf[used++] = '\\';
        buf[used++] = v[i];
    }
    snprintf(buf + used, sizeof buf - used, "%s;", quoted ? "\"" : "");
    config_destroy(cf);
    config_init(cf);
    return config_read_string(cf, buf) == CONFIG_TRUE;
}

/* "model.params.NAME" (a key of the RT_KEY_PARAMS group): NAME, pointing
 * into the override's text, and *k the group's key; NULL otherwise. */
static const char *param_name(const char *key, const rt_key **k)
{
    const char *dot = strrchr(key, '.');
    if (*k || !dot || dot[1] == '\0')
        return NULL;
    char group[KEY_MAX];
    snprintf(group, sizeof group, "%.*s", (int)(dot - key), key);
    const rt_key *g = rt_config_find_key(group);
    if (!g || g->type != RT_KEY_PARAMS)
        return NULL;
    *k = g;
    return dot + 1;
}

static rt_status parse_override(load_ctx *c, config_t *cf, const char *text)
{
    const char *eq = strchr(text, '=');
    const char *kb = text, *ke = eq ? eq : text;
    rt_config_trim(&kb, &ke);
    if (!eq || ke == kb)
        return RT_ERROR(RT_ERR_CONFIG, "override '%s': expected KEY=VALUE, e.g. "
                        "optimizer.lr=0.01", text);
    char key[KEY_MAX];
    if ((size_t)(ke - kb) >= sizeof key)
        return RT_ERROR(RT_ERR_CONFIG, "override '%.80s...': key too long", text);
    snprintf(key, sizeof key, "%.*s", (int)(ke - kb), kb);
    const rt_key *k = rt_config_find_key(key);
    const char *param = param_name(key, &k);
    if (!k && !rt_config_is_group(key))
        return unknown_key(key, NULL, text);
    if (param && (strlen(param) >= RT_GBDT_PARAM_KEY_MAX ||
                  strspn(param, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789_-") != strlen(param)))
        return RT_ERROR(RT_ERR_CONFIG, "override '%s': a parameter name has letters, digits, "
                        "'_' and '-' only, at most %d of them", text,
                        RT_GBDT_PARAM_KEY_MAX - 1);

    const char *vb = eq + 1, *ve = eq + strlen(eq);
    rt_config_trim(&vb, &ve);
    size_t vn = (size_t)(ve - vb);
    if (vn > VALUE_MAX)
        return RT_ERROR(RT_ERR_CONFIG, "override '%.80s...': value too long", text);
    char num[48];
    if (rt_config_int_overflow(vb, vn, num, sizeof num))
        return RT_ERROR(RT_ERR_CONFIG, "override '%s': integer %s does not fit in 32 bits: "
                        "write it as %sL", text, num, num);
    int bare = is_bare_word(vb, vn);
    int ok = parse_value(cf, vb, vn, 0);
    /* A string key given an unquoted word that happens to parse as a
     * number or boolean (run.name=2024) still means the text. */
    int wants_text = k && (k->type == RT_KEY_STRING || k->type == RT_KEY_ENUM);
    if (bare && (!ok || (wants_text && config_setting_type(config_setting_get_elem(
                                           config_root_setting(cf), 0)) != CONFIG_TYPE_STRING)))
        ok = parse_value(cf, vb, vn, 1);
    if (!ok) {
        const char *why = config_error_text(cf);
        int plain = !why || strcmp(why, "syntax error") == 0;
        return RT_ERROR(RT_ERR_CONFIG, "override '%s': syntax error in the value%s%s%s; values "
                        "use config-file syntax: 0.01, true, \"text\", [256, 256]", text,
                        plain ? "" : " (", plain ? "" : why, plain ? "" : ")");
    }
    config_setting_t *root = config_root_setting(cf);
    if (config_setting_length(root) != 1)
        return RT_ERROR(RT_ERR_CONFIG, "override '%s': give exactly one value (no ';')", text);
    if (param) {   /* one parameter of the group: added, or replacing the file's */
        RT_CHECK(add_assign(c, k, config_setting_get_elem(root, 0), text));
        snprintf(c->assign[c->n - 1].param, sizeof c->assign[c->n - 1].param, "%s", param);
        return RT_OK;
    }
    return collect(c, key, config_setting_get_elem(root, 0), text);
}

/* Every domain of the file has its value from an override. */
static rt_status domains_given(const load_ctx *c)
{
    for (int d = 0; d < c->ndomains; d++) {
        int given = 0;
        for (int i = 0; i < c->n && !given; i++)
            given = c->assign[i].override && c->assign[i].key == c->domain_keys[d];
        if (given)
            continue;
        const config_setting_t *s = c->domains[d];
        const char *path = c->domain_keys[d]->path;
        if (c->trial)
            return rt_config_fail(s, NULL, "%s is a search space and the trial gives it no "
                                  "value", path);
        return rt_config_fail(s, NULL, "%s is a search space (%s): run the file with "
                              "rtrain-tune, or give %s a value (%s=...)", path,
                              config_setting_name(config_setting_get_elem(s, 0)), path, path);
    }
    return RT_OK;
}

/* ---- precedence ----------------------------------------------------------------- */
/* An override of batch_size drops the file's global_batch_size, and the
 * other way round (see the file comment). */
static void batch_size_rule(load_ctx *c)
{
    const rt_key *kb = rt_config_find_key("data.batch_size");
    const rt_key *kg = rt_config_find_key("data.global_batch_size");
    int ovr_b = 0, ovr_g = 0;
    for (int i = 0; i < c->n; i++) {
        ovr_b |= c->assign[i].override && c->assign[i].key == kb;
        ovr_g |= c->assign[i].override && c->assign[i].key == kg;
    }
    for (int i = 0; i < c->n; i++) {
        rt_cfg_assign *a = &c->assign[i];
        int replaced = (a->key == kg && ovr_b && !ovr_g) || (a->key == kb && ovr_g && !ovr_b);
        if (!a->override && replaced)
            a->skip = 1;
    }
}

/* Selectors first (they reset their group), then everything in order. */
static rt_status apply_all(rt_config *cfg, load_ctx *c, const rt_cfg_assign **last)
{
    for (int k = 0; k < rt_config_num_keys(); k++) {
        const rt_key *key = rt_config_key(k);
        if (!key->reset)
            continue;
        const rt_cfg_assign *sel = NULL;
        for (int i = 0; i < c->n; i++)
            if (c->assign[i].key == key && !c->assign[i].skip)
                sel = &c->assign[i];
        if (sel) {
            RT_CHECK(rt_config_apply(cfg, sel));
            key->reset(cfg, *(const int *)((const char *)cfg + key->offset));
        }
    }
    for (int i = 0; i < c->n; i++) {
        if (c->assign[i].skip)
            continue;
        RT_CHECK(rt_config_apply(cfg, &c->assign[i]));
        last[rt_config_key_index(c->assign[i].key)] = &c->assign[i];
    }
    return RT_OK;
}

static rt_status load(rt_config *cfg, const char *path, int noverrides, char *const *overrides,
                      int trial)
{
    if (!cfg || !path || noverrides < 0 || (noverrides > 0 && !overrides))
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_config_load: missing config or path");
    if (noverrides > MAX_OVERRIDES)
        return RT_ERROR(RT_ERR_CONFIG, "%d overrides given, at most %d are allowed", noverrides,
                        MAX_OVERRIDES);
    rt_config_defaults(cfg);
    if (strlen(path) >= sizeof cfg->source)
        return RT_ERROR(RT_ERR_CONFIG, "config file path too long (%zu characters)",
                        strlen(path));
    snprintf(cfg->source, sizeof cfg->source, "%s", path);

    rt_status s = RT_OK;
    int nkeys = rt_config_num_keys(), ninit = 0;
    config_t file, *ovr = NULL;
    load_ctx c = {.cap = nkeys * (noverrides + 1), .trial = trial};
    const rt_cfg_assign **last = NULL;
    config_init(&file);
    RT_CHECK_GOTO(s, rt_alloc(&ovr, (size_t)noverrides, sizeof *ovr, "config overrides"), done);
    for (; ninit < noverrides; ninit++)
        config_init(&ovr[ninit]);
    RT_CHECK_GOTO(s, rt_alloc(&c.assign, (size_t)c.cap, sizeof *c.assign, "config values"), done);
    RT_CHECK_GOTO(s, rt_alloc(&last, (size_t)nkeys, sizeof *last, "config values"), done);

    RT_CHECK_GOTO(s, read_config(&file, path), done);
    RT_CHECK_GOTO(s, collect_members(&c, "", config_root_setting(&file), NULL), done);
    for (int i = 0; i < noverrides; i++)
        RT_CHECK_GOTO(s, parse_override(&c, &ovr[i], overrides[i]), done);
    RT_CHECK_GOTO(s, domains_given(&c), done);
    batch_size_rule(&c);
    RT_CHECK_GOTO(s, apply_all(cfg, &c, last), done);
    RT_CHECK_GOTO(s, rt_config_validate(cfg, last), done);
    RT_CHECK_GOTO(s, rt_config_resolve_paths(cfg), done);
done:
    for (int i = 0; i < ninit; i++)
        config_destroy(&ovr[i]);
    config_destroy(&file);
    rt_free(ovr);
    rt_free(c.assign);
    rt_free(last);
    return s;
}

rt_status rt_config_load(rt_config *cfg, const char *path, int noverrides,
                         char *const *overrides)
{
    return load(cfg, path, noverrides, overrides, 0);
}

rt_status rt_config_load_trial(rt_config *cfg, const char *path, int noverrides,
                               char *const *overrides)
{
    return load(cfg, path, noverrides, overrides, 1);
}

/* ---- a run's params.json ----------------------------------------------------------- */
/* params.json is the resolved configuration as JSON (json.c), every key
 * present. It is read back by turning the JSON into the libconfig tree a
 * file would have given (objects -> groups, arrays -> lists, numbers,
 * strings, booleans) and applying it with the same assignments as a file.
 * The cross-key checks are not run again: they held when the run started,
 * and a resolved configuration names keys of every variant (momentum under
 * Adam) and both batch sizes. The "preprocessing" member is the run's, not
 * configuration, and is skipped. */
static int json_setting(config_setting_t *parent, const char *name, json_t *v);

static int json_members(config_setting_t *group, json_t *obj)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
        if (!json_setting(group, key, v))
            return 0;
    return 1;
}

static int json_setting(config_setting_t *parent, const char *name, json_t *v)
{
    config_setting_t *s = NULL;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        s = config_setting_add(parent, name, CONFIG_TYPE_GROUP);
        return s && json_members(s, v);
    case JSON_ARRAY: {
        s = config_setting_add(parent, name, CONFIG_TYPE_LIST);
        for (size_t i = 0; s && i < json_array_size(v); i++)
            if (!json_setting(s, NULL, json_array_get(v, i)))
                return 0;
        return s != NULL;
    }
    case JSON_STRING:
        s = config_setting_add(parent, name, CONFIG_TYPE_STRING);
        return s && config_setting_set_string(s, json_string_value(v));
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        int wide = i > INT32_MAX || i < INT32_MIN;
        s = config_setting_add(parent, name, wide ? CONFIG_TYPE_INT64 : CONFIG_TYPE_INT);
        return s && (wide ? config_setting_set_int64(s, (long long)i)
                          : config_setting_set_int(s, (int)i));
    }
    case JSON_REAL:
        s = config_setting_add(parent, name, CONFIG_TYPE_FLOAT);
        return s && config_setting_set_float(s, json_real_value(v));
    case JSON_TRUE:
    case JSON_FALSE:
        s = config_setting_add(parent, name, CONFIG_TYPE_BOOL);
        return s && config_setting_set_bool(s, json_is_true(v));
    case JSON_NULL: break;
    }
    return 0;
}

static rt_status params_tree(config_t *cf, const char *path)
{
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!json_is_object(root)) {
        json_decref(root);
        return RT_ERROR(RT_ERR_CONFIG, "%s: not a run's params.json (%s, line %d)", path,
                        root ? "not a JSON object" : err.text, err.line);
    }
    json_object_del(root, "preprocessing");
    int ok = json_members(config_root_setting(cf), root);
    json_decref(root);
    if (!ok)
        return RT_ERROR(RT_ERR_CONFIG, "%s: a value of the run's params.json is not "
                        "configuration (null, or a name libconfig does not take)", path);
    return RT_OK;
}

rt_status rt_config_load_params(rt_config *cfg, const char *path)
{
    if (!cfg || !path)
        return RT_ERROR(RT_ERR_INVALID_ARG, "rt_config_load_params: missing config or path");
    rt_config_defaults(cfg);
    snprintf(cfg->source, sizeof cfg->source, "%s", path);
    int nkeys = rt_config_num_keys();
    load_ctx c = {.cap = nkeys};
    const rt_cfg_assign **last = NULL;
    config_t tree;
    config_init(&tree);
    rt_status s = params_tree(&tree, path);
    if (s == RT_OK)
        s = rt_alloc(&c.assign, (size_t)c.cap, sizeof *c.assign, "config values");
    if (s == RT_OK)
        s = rt_alloc(&last, (size_t)nkeys, sizeof *last, "config values");
    if (s == RT_OK)
        s = collect_members(&c, "", config_root_setting(&tree), NULL);
    if (s == RT_OK)
        s = apply_all(cfg, &c, last);
    if (s != RT_OK && rt_error_message()[0] == '(') {   /* "(config):0: ..." names no file */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", rt_error_message());
        rt_error_clear();
        s = RT_ERROR(s, "%s: %s", path, strstr(msg, ": ") ? strstr(msg, ": ") + 2 : msg);
    }
    config_destroy(&tree);
    rt_free(c.assign);
    rt_free(last);
    return s;
}
