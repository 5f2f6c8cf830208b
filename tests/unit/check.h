/* check.h: the unit tests' tiny harness; each binary ends with "N passed, N failed". */
#ifndef P1_TEST_CHECK_H
#define P1_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed, check_case_failed;
static const char *check_case = "";

/* Records one assertion; prints file:line and the expression when it fails. */
#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (expr) {                                                                                \
            check_passed++;                                                                        \
        } else {                                                                                   \
            check_failed++;                                                                        \
            check_case_failed = 1;                                                                 \
            fprintf(stderr, "%s:%d: [%s] CHECK failed: %s\n", __FILE__, __LINE__, check_case,     \
                    #expr);                                                                        \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ == check_b_) {                                                                \
            check_passed++;                                                                        \
        } else {                                                                                   \
            check_failed++;                                                                        \
            check_case_failed = 1;                                                                 \
            fprintf(stderr, "%s:%d: [%s] %s == %s: %lld != %lld\n", __FILE__, __LINE__,           \
                    check_case, #a, #b, check_a_, check_b_);                                       \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        if (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0) {                             \
            check_passed++;                                                                        \
        } else {                                                                                   \
            check_failed++;                                                                        \
            check_case_failed = 1;                                                                 \
            fprintf(stderr, "%s:%d: [%s] %s == %s: \"%s\" != \"%s\"\n", __FILE__, __LINE__,       \
                    check_case, #a, #b, check_a_ ? check_a_ : "(null)",                            \
                    check_b_ ? check_b_ : "(null)");                                               \
        }                                                                                          \
    } while (0)

/* Runs one test function under a name. */
#define RUN(fn)                                                                                    \
    do {                                                                                           \
        check_case = #fn;                                                                          \
        check_case_failed = 0;                                                                     \
        fn();                                                                                      \
        if (check_case_failed)                                                                     \
            fprintf(stderr, "FAIL %s\n", #fn);                                                     \
    } while (0)

/* Prints the summary line and returns the process exit status. */
static inline int check_summary(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
