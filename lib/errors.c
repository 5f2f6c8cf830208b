/* errors.c: names and messages of libp1's error codes, generated from the P1_ERRORS X-macro. */
#include "p1/p1.h"

/* Both tables come from the one X-macro list in p1.h, so a code, its name and its message can
 * never drift apart; the enum starts at 0 and has no gaps, so the code is the index. */
static const char *const error_names[P1_ERR__COUNT] = {
#define P1_X_NAME(e, name, msg) name,
    P1_ERRORS(P1_X_NAME)
#undef P1_X_NAME
};

static const char *const error_messages[P1_ERR__COUNT] = {
#define P1_X_MSG(e, name, msg) msg,
    P1_ERRORS(P1_X_MSG)
#undef P1_X_MSG
};

const char *p1_error_name(p1_error e)
{
    if ((unsigned)e >= (unsigned)P1_ERR__COUNT)
        return "unknown";
    return error_names[e];
}

const char *p1_error_message(p1_error e)
{
    if ((unsigned)e >= (unsigned)P1_ERR__COUNT)
        return "unknown error";
    return error_messages[e];
}
