/* dl_avahi.h: libavahi-client loaded at run time (dlopen) by the mDNS announcer (zeroconf.c), so a
 * daemon with `[http] announce = no`, or on a machine without Avahi, never maps it. */
#ifndef P1D_DL_AVAHI_H
#define P1D_DL_AVAHI_H

#include <stddef.h>

#include <avahi-client/client.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>

/* libavahi-client; the libavahi-common functions below resolve through it (its dependency). */
#define DL_AVAHI_SONAME "libavahi-client.so.3"

/* The Avahi functions p1d calls, each member named after its function without "avahi_" and typed
 * from Avahi's own declaration: av->entry_group_commit(g). */
typedef struct dl_avahi {
    __typeof__(avahi_client_new) *client_new;
    __typeof__(avahi_client_free) *client_free;
    __typeof__(avahi_client_errno) *client_errno;
    __typeof__(avahi_client_get_host_name) *client_get_host_name;
    __typeof__(avahi_entry_group_new) *entry_group_new;
    __typeof__(avahi_entry_group_free) *entry_group_free;
    __typeof__(avahi_entry_group_reset) *entry_group_reset;
    __typeof__(avahi_entry_group_commit) *entry_group_commit;
    __typeof__(avahi_entry_group_is_empty) *entry_group_is_empty;
    __typeof__(avahi_entry_group_get_state) *entry_group_get_state;
    __typeof__(avahi_entry_group_get_client) *entry_group_get_client;
    __typeof__(avahi_entry_group_add_service_strlst) *entry_group_add_service_strlst;
    __typeof__(avahi_entry_group_update_service_txt_strlst) *entry_group_update_service_txt_strlst;
    __typeof__(avahi_strerror) *strerror;
    __typeof__(avahi_alternative_service_name) *alternative_service_name;
    __typeof__(avahi_free) *free;
    __typeof__(avahi_string_list_add_pair) *string_list_add_pair;
    __typeof__(avahi_string_list_free) *string_list_free;
} dl_avahi;

/* Loads DL_AVAHI_SONAME on first success and returns its functions (static, valid until exit; the
 * library is never unloaded). NULL when it cannot be loaded: err gets "needs
 * libavahi-client.so.3: why"; a later call tries again. */
const dl_avahi *dl_avahi_load(char *err, size_t cap);

#endif
