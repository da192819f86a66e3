/* Logging: rank 0 prints information; other ranks print only warnings and
 * errors, prefixed with their rank and host so a user can tell them apart. */
#include <stdio.h>
#include <string.h>
#include "rtrain/core.h"

static int log_rank = -1;
static char log_host[64];
static rt_log_level log_level = RT_LOG_INFO;
static FILE *log_file;   /* per-rank log (run.log_per_rank), or NULL */

void rt_log_set_rank(int rank, const char *host)
{
    log_rank = rank;
    snprintf(log_host, sizeof log_host, "%s", host ? host : "");
}

int rt_log_rank(void) { return log_rank; }
const char *rt_log_host(void) { return log_host; }

void rt_log_set_level(rt_log_level level) { log_level = level; }
rt_log_level rt_log_get_level(void) { return log_level; }
void rt_log_set_file(FILE *f) { log_file = f; }
FILE *rt_log_get_file(void) { return log_file; }

void rt_log(rt_log_level level, const char *fmt, ...)
{
    static const char *const tags[] = {"error: ", "warning: ", "", "debug: "};
    if (level > log_level)
        return;
    /* The per-rank file gets every line of this rank; the console only
     * rank 0's information. */
    if (log_rank > 0 && level > RT_LOG_WARN && !log_file)
        return;
    char line[4096];
    int len = 0;
    if (log_rank > 0)
        len = snprintf(line, sizeof line, "[rank %d %s] ", log_rank, log_host);
    len += snprintf(line + len, sizeof line - (size_t)len, "%s", tags[level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + len, sizeof line - (size_t)len, fmt, ap);
    va_end(ap);
    if (log_file) {
        fprintf(log_file, "%s\n", line);
        fflush(log_file);
    }
    if (log_rank > 0 && level > RT_LOG_WARN)
        return;
    /* One write per line keeps lines of different ranks from interleaving. */
    FILE *f = level <= RT_LOG_WARN ? stderr : stdout;
    fprintf(f, "%s\n", line);
    fflush(f);
}
