/* rtrain --help-config: every key with its default, type/range and help,
 * grouped as in a config file, generated from the schema table so that it
 * can never disagree with what the parser accepts. */
#include <stdio.h>
#include <string.h>
#include "config/internal.h"

/* Writes text word-wrapped to `width` columns, each line indented. */
static void print_wrapped(FILE *f, const char *text, int indent, int width)
{
    const char *p = text;
    while (*p) {
        int avail = width - indent, n = 0, last_space = -1;
        while (p[n] && n < avail) {
            if (p[n] == ' ')
                last_space = n;
            n++;
        }
        if (p[n] && last_space > 0)
            n = last_space;
        fprintf(f, "%*s%.*s\n", indent, "", n, p);
        p += n;
        while (*p == ' ')
            p++;
    }
}

static void print_layer_fields(FILE *f)
{
    char types[256];
    size_t len = 0;
    for (int t = 0; t < RT_LAYER_TYPE_COUNT && len < sizeof types; t++)
        len += (size_t)snprintf(types + len, sizeof types - len, "%s%s", t ? ", " : "",
                                rt_layer_type_name((rt_layer_type)t));
    fprintf(f, "      fields of each layer group:\n        type  (one of: %s)\n", types);
    for (int i = 0; i < rt_config_num_layer_keys(); i++) {
        const rt_key *k = rt_config_layer_key(i);
        char desc[256], users[256] = "";
        rt_config_describe_type(k, desc, sizeof desc);
        size_t ulen = 0;
        for (int t = 0; t < RT_LAYER_TYPE_COUNT && ulen < sizeof users; t++)
            if (rt_layer_type_fields((rt_layer_type)t) & (1u << i))
                ulen += (size_t)snprintf(users + ulen, sizeof users - ulen, "%s%s",
                                         ulen ? ", " : "", rt_layer_type_name((rt_layer_type)t));
        fprintf(f, "        %s  (%s; used by %s)\n", k->path, desc, users);
        print_wrapped(f, k->help, 10, 90);
    }
}

void rt_config_print_reference(FILE *f)
{
    rt_config *defaults = NULL;
    if (rt_alloc(&defaults, 1, sizeof *defaults, "config defaults") != RT_OK) {
        rt_error_clear();
        fprintf(f, "(out of memory)\n");
        return;
    }
    rt_config_defaults(defaults);
    fprintf(f, "rtrain configuration keys. A config file is libconfig syntax, one group per\n"
               "section:   optimizer = { type = \"adam\"; lr = 0.001; };\n"
               "Any key can be overridden on the command line:   optimizer.lr=0.01\n"
               "(values in the same syntax; a bare word is taken as text). Unknown keys are\n"
               "errors. Defaults of model, optimizer and schedule keys are those of the\n"
               "selected model.arch / optimizer.type (shown: mlp, sgd).\n");
    char group[64] = "";
    for (int i = 0; i < rt_config_num_keys(); i++) {
        const rt_key *k = rt_config_key(i);
        size_t glen = strcspn(k->path, ".");
        if (strlen(group) != glen || strncmp(group, k->path, glen) != 0) {
            snprintf(group, sizeof group, "%.*s", (int)glen, k->path);
            fprintf(f, "\n%s = { ... }\n", group);
        }
        char value[512], desc[512];
        rt_config_format_value(k, defaults, value, sizeof value);
        rt_config_describe_type(k, desc, sizeof desc);
        fprintf(f, "  %s = %s   (%s)\n", k->path, value, desc);
        print_wrapped(f, k->help, 6, 90);
        if (k->type == RT_KEY_LAYERS)
            print_layer_fields(f);
    }
    rt_free(defaults);
}
