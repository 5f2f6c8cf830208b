/* test_log.c: unit tests of the burst limit in src/log.c (log_burst_take, log_burst_flush). */
#include "check.h"
#include "log.h"

static void test_burst(void)
{
    log_burst b = {0};
    /* three lines a second pass, the fourth is the first counted (-1: arm the report) */
    CHECK_EQ_INT(log_burst_take(&b, 1000, 3), 1);
    CHECK_EQ_INT(log_burst_take(&b, 1100, 3), 1);
    CHECK_EQ_INT(log_burst_take(&b, 1999, 3), 1);
    CHECK_EQ_INT(log_burst_take(&b, 1999, 3), -1);
    CHECK_EQ_INT(log_burst_take(&b, 1999, 3), 0);
    /* a new second lets lines through again; the count stays until it is reported */
    CHECK_EQ_INT(log_burst_take(&b, 2000, 3), 1);
    CHECK_EQ_INT(b.suppressed, 2);
    CHECK_EQ_INT(log_burst_flush(&b), 2);
    CHECK_EQ_INT(log_burst_flush(&b), 0);
    /* after a report, the next counted line asks for a report again */
    CHECK_EQ_INT(log_burst_take(&b, 2000, 3), 1);
    CHECK_EQ_INT(log_burst_take(&b, 2000, 3), 1);
    CHECK_EQ_INT(log_burst_take(&b, 2000, 3), -1);
    CHECK_EQ_INT(log_burst_flush(&b), 1);
    /* a limit of 0 counts every line */
    log_burst z = {0};
    CHECK_EQ_INT(log_burst_take(&z, 0, 0), -1);
    CHECK_EQ_INT(log_burst_take(&z, 0, 0), 0);
    CHECK_EQ_INT(log_burst_flush(&z), 2);
}

int main(void)
{
    RUN(test_burst);
    return check_summary("test_log");
}
