/* dl.h: what the lazily loaded libraries (dl_curl.c, dl_mosquitto.c) share: opening a library by
 * soname with a readable error, and filling a table of function pointers from it. */
#ifndef P1D_DL_H
#define P1D_DL_H

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* Opens soname (RTLD_NOW | RTLD_LOCAL); on failure writes "needs SONAME: why" into err[cap] and
 * returns NULL. */
static inline void *dl_open(const char *soname, char *err, size_t cap)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(err, cap, "needs %s: %s", soname, why ? why : "cannot be loaded");
    }
    return h;
}

/* Resolves fn from handle h into table.member unless an earlier symbol was missing (then *missing
 * names the first one). dlsym's void * goes through memcpy (ISO C has no void * to function
 * pointer cast), after a compile-time check that the member has the type of fn's declaration. */
#define DL_SYM(h, table, missing, member, fn)                                                      \
    do {                                                                                           \
        _Static_assert(__builtin_types_compatible_p(__typeof__((table).member), __typeof__(&fn)),  \
                       #fn);                                                                       \
        void *sym_ = (missing) ? NULL : dlsym((h), #fn);                                           \
        if (sym_)                                                                                  \
            memcpy(&(table).member, &sym_, sizeof sym_);                                           \
        else if (!(missing))                                                                       \
            (missing) = #fn;                                                                       \
    } while (0)

#endif
