/* timecheck.h: libp1's check of a clock read in another form than YYMMDDhhmmss (a COSEM
 * date-time, text, 1-0:0.9.2 with 1-0:0.9.1), shared by the parser and the reading. */
#ifndef P1_TIMECHECK_H
#define P1_TIMECHECK_H

#include <p1/p1.h>

/* Sets t->valid as YYMMDDhhmmss times get it (2001 to 2099, not the 2070-01-01 placeholder);
 * one that is no possible date gets month 0, so that it is written as null. Returns 1 for a
 * possible date. */
int p1i_time_check(p1_time *t);

#endif
