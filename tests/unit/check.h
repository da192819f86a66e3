/* Minimal assertions for rtrain's unit tests (run by the automake harness).
 * Each failed check prints file:line and what differed; CHECK_DONE()
 * returns the process exit status (non-zero when any check failed), so a
 * failing test can never exit 0. Checks never hide side effects: the
 * expression is evaluated exactly once. */
#ifndef RTRAIN_TESTS_CHECK_H
#define RTRAIN_TESTS_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "rtrain/core.h"

static int check_failures = 0;
static int check_count = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        check_count++;                                                           \
        if (!(cond)) {                                                           \
            check_failures++;                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_MSG(cond, ...)                                                     \
    do {                                                                         \
        check_count++;                                                           \
        if (!(cond)) {                                                           \
            check_failures++;                                                    \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
        }                                                                        \
    } while (0)

/* An rtrain call expected to succeed; prints the recorded error if not. */
#define CHECK_OK(expr)                                                           \
    do {                                                                         \
        check_count++;                                                           \
        rt_status check_s_ = (expr);                                             \
        if (check_s_ != RT_OK) {                                                 \
            check_failures++;                                                    \
            fprintf(stderr, "%s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #expr, \
                    rt_status_name(check_s_), rt_error_message());               \
            rt_error_clear();                                                    \
        }                                                                        \
    } while (0)

/* An rtrain call expected to fail with `code`; clears the error record. */
#define CHECK_FAILS(code, expr)                                                  \
    do {                                                                         \
        check_count++;                                                           \
        rt_status check_s_ = (expr);                                             \
        if (check_s_ != (code)) {                                                \
            check_failures++;                                                    \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s\n", __FILE__, __LINE__, \
                    #expr, rt_status_name(check_s_), rt_status_name(code));       \
        }                                                                        \
        rt_error_clear();                                                        \
    } while (0)

/* |a - b| <= atol + rtol * |b|, with the tolerance stated at the call. */
#define CHECK_CLOSE(a, b, atol, rtol)                                            \
    do {                                                                         \
        check_count++;                                                           \
        double check_a_ = (double)(a), check_b_ = (double)(b);                   \
        if (!(fabs(check_a_ - check_b_) <= (atol) + (rtol) * fabs(check_b_))) {  \
            check_failures++;                                                    \
            fprintf(stderr, "%s:%d: %s = %.9g, expected %s = %.9g (atol %g, rtol %g)\n", \
                    __FILE__, __LINE__, #a, check_a_, #b, check_b_, (double)(atol), \
                    (double)(rtol));                                             \
        }                                                                        \
    } while (0)

/* The current error message contains each of the NULL-terminated strings
 * in ap (each one a check, failures naming file:line); clears the error. */
static inline void check_message_va(const char *file, int line, va_list ap)
{
    for (const char *want; (want = va_arg(ap, const char *)) != NULL;) {
        check_count++;
        if (!strstr(rt_error_message(), want)) {
            check_failures++;
            fprintf(stderr, "%s:%d: message lacks \"%s\": %s\n", file, line, want,
                    rt_error_message());
        }
    }
    rt_error_clear();
}

#define CHECK_DONE()                                                             \
    (fprintf(check_failures ? stderr : stdout, "%s: %d of %d checks failed\n",   \
             __FILE__, check_failures, check_count),                             \
     check_failures ? 1 : (check_count ? 0 : 1))

#endif
