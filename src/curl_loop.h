/* curl_loop.h: libcurl's multi interface driven by the daemon's epoll loop, so HTTP clients
 * (publishers) run without threads and never block reading the meters. */
#ifndef P1D_CURL_LOOP_H
#define P1D_CURL_LOOP_H

#include "dl_curl.h"
#include "loop.h"

/* Ownership: curl_loop_new() creates one over a borrowed loop (which must outlive it);
 * curl_loop_free() abandons the transfers still running (their callbacks are not called) and
 * frees it. Easy handles stay owned by the caller throughout. */
typedef struct curl_loop curl_loop;

/* Called once when a transfer added with curl_loop_add() ends (result CURLE_OK or why not);
 * the easy handle is already removed from the loop and may be reused or cleaned up here. */
typedef void (*curl_loop_done_fn)(void *user, CURL *easy, CURLcode result);

/* Creates the multi handle (and initialises libcurl once) with the functions of cu (borrowed,
 * from dl_curl_load). NULL on failure (errno set). */
curl_loop *curl_loop_new(loop *l, const dl_curl *cu);
/* Abandons running transfers and frees cl; accepts NULL. */
void curl_loop_free(curl_loop *cl);
/* Starts easy (its options already set); fn(user, ...) reports its end. Returns 0, or -1 (too many
 * transfers, easy already running, or libcurl refused it). */
int curl_loop_add(curl_loop *cl, CURL *easy, curl_loop_done_fn fn, void *user);
/* Stops a running transfer without calling its callback; no-op when easy is not running. */
void curl_loop_remove(curl_loop *cl, CURL *easy);
/* Sets a long-valued option of the multi handle, such as CURLMOPT_MAX_HOST_CONNECTIONS (never
 * the socket or timer callbacks, which curl_loop owns). Returns 0, or -1 if libcurl refuses. */
int curl_loop_setopt_long(curl_loop *cl, CURLMoption opt, long value);

#endif
