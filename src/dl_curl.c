/* dl_curl.c: resolves the libcurl functions p1d uses from a dlopen'ed libcurl.so.4. */
#include "dl_curl.h"

#include "dl.h"

#define SYM(member, fn) DL_SYM(h, t, missing, member, fn)

const dl_curl *dl_curl_load(char *err, size_t cap)
{
    /* The one table of the process: the library it points into is itself process-wide, and it is
     * written once here, on the loop thread, and only read afterwards. */
    static dl_curl table;
    static int loaded;
    if (loaded)
        return &table;
    void *h = dl_open(DL_CURL_SONAME, err, cap);
    if (!h)
        return NULL;
    dl_curl t = {0};
    const char *missing = NULL;
    SYM(global_init, curl_global_init);
    SYM(global_cleanup, curl_global_cleanup);
    SYM(free, curl_free);
    SYM(easy_init, curl_easy_init);
    SYM(easy_cleanup, curl_easy_cleanup);
    SYM(easy_setopt, curl_easy_setopt);
    SYM(easy_getinfo, curl_easy_getinfo);
    SYM(easy_strerror, curl_easy_strerror);
    SYM(easy_escape, curl_easy_escape);
    SYM(slist_append, curl_slist_append);
    SYM(slist_free_all, curl_slist_free_all);
    SYM(multi_init, curl_multi_init);
    SYM(multi_cleanup, curl_multi_cleanup);
    SYM(multi_setopt, curl_multi_setopt);
    SYM(multi_add_handle, curl_multi_add_handle);
    SYM(multi_remove_handle, curl_multi_remove_handle);
    SYM(multi_assign, curl_multi_assign);
    SYM(multi_socket_action, curl_multi_socket_action);
    SYM(multi_info_read, curl_multi_info_read);
    if (missing) {
        snprintf(err, cap, "needs %s with %s (too old?)", DL_CURL_SONAME, missing);
        dlclose(h);
        return NULL;
    }
    /* Never dlclose'd: libcurl and the TLS library under it keep process-wide state. */
    table = t;
    loaded = 1;
    return &table;
}
