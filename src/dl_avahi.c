/* dl_avahi.c: resolves the Avahi functions p1d uses from a dlopen'ed libavahi-client. */
#include "dl_avahi.h"

#include "dl.h"

#define SYM(member, fn) DL_SYM(h, t, missing, member, fn)

const dl_avahi *dl_avahi_load(char *err, size_t cap)
{
    /* Written once, on the loop thread, and only read afterwards (as dl_mosquitto.c). */
    static dl_avahi table;
    static int loaded;
    if (loaded)
        return &table;
    void *h = dl_open(DL_AVAHI_SONAME, err, cap);
    if (!h)
        return NULL;
    dl_avahi t = {0};
    const char *missing = NULL;
    SYM(client_new, avahi_client_new);
    SYM(client_free, avahi_client_free);
    SYM(client_errno, avahi_client_errno);
    SYM(client_get_host_name, avahi_client_get_host_name);
    SYM(entry_group_new, avahi_entry_group_new);
    SYM(entry_group_free, avahi_entry_group_free);
    SYM(entry_group_reset, avahi_entry_group_reset);
    SYM(entry_group_commit, avahi_entry_group_commit);
    SYM(entry_group_is_empty, avahi_entry_group_is_empty);
    SYM(entry_group_get_state, avahi_entry_group_get_state);
    SYM(entry_group_get_client, avahi_entry_group_get_client);
    SYM(entry_group_add_service_strlst, avahi_entry_group_add_service_strlst);
    SYM(entry_group_update_service_txt_strlst, avahi_entry_group_update_service_txt_strlst);
    SYM(strerror, avahi_strerror);
    SYM(alternative_service_name, avahi_alternative_service_name);
    SYM(free, avahi_free);
    SYM(string_list_add_pair, avahi_string_list_add_pair);
    SYM(string_list_free, avahi_string_list_free);
    if (missing) {
        snprintf(err, cap, "needs %s with %s (too old?)", DL_AVAHI_SONAME, missing);
        dlclose(h);
        return NULL;
    }
    /* Never dlclose'd: libdbus under it keeps process-wide state. */
    table = t;
    loaded = 1;
    return &table;
}
