/* dl_curl.h: libcurl loaded at run time (dlopen) by the publishers that speak HTTP, so a daemon
 * without [azure] or [influxdb] never maps libcurl and its dozen dependencies. */
#ifndef P1D_DL_CURL_H
#define P1D_DL_CURL_H

#include <stddef.h>

#include <curl/curl.h>

#define DL_CURL_SONAME "libcurl.so.4"

/* The libcurl functions p1d calls, each member named after its function without "curl_" and
 * typed from curl.h's own declaration; call them as cu->easy_setopt(easy, CURLOPT_URL, url). */
typedef struct dl_curl {
    __typeof__(curl_global_init) *global_init;
    __typeof__(curl_global_cleanup) *global_cleanup;
    __typeof__(curl_free) *free;
    __typeof__(curl_easy_init) *easy_init;
    __typeof__(curl_easy_cleanup) *easy_cleanup;
    __typeof__(curl_easy_setopt) *easy_setopt;
    __typeof__(curl_easy_getinfo) *easy_getinfo;
    __typeof__(curl_easy_strerror) *easy_strerror;
    __typeof__(curl_easy_escape) *easy_escape;
    __typeof__(curl_slist_append) *slist_append;
    __typeof__(curl_slist_free_all) *slist_free_all;
    __typeof__(curl_multi_init) *multi_init;
    __typeof__(curl_multi_cleanup) *multi_cleanup;
    __typeof__(curl_multi_setopt) *multi_setopt;
    __typeof__(curl_multi_add_handle) *multi_add_handle;
    __typeof__(curl_multi_remove_handle) *multi_remove_handle;
    __typeof__(curl_multi_assign) *multi_assign;
    __typeof__(curl_multi_socket_action) *multi_socket_action;
    __typeof__(curl_multi_info_read) *multi_info_read;
} dl_curl;

/* Loads DL_CURL_SONAME on first success and returns its functions (static, valid until exit; the
 * library is never unloaded). NULL when it cannot be loaded: err gets "needs libcurl.so.4: why";
 * a later call tries again (the package may have been installed meanwhile). */
const dl_curl *dl_curl_load(char *err, size_t cap);

#endif
