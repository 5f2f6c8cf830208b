/* dl_mosquitto.c: resolves the libmosquitto functions p1d uses from a dlopen'ed libmosquitto. */
#include "dl_mosquitto.h"

#include "dl.h"

#define SYM(member, fn) DL_SYM(h, t, missing, member, fn)

const dl_mosquitto *dl_mosquitto_load(char *err, size_t cap)
{
    /* The one table of the process: the library it points into is itself process-wide, and it is
     * written once here, on the loop thread, and only read afterwards. */
    static dl_mosquitto table;
    static int loaded;
    if (loaded)
        return &table;
    void *h = dl_open(DL_MOSQUITTO_SONAME, err, cap);
    if (!h)
        return NULL;
    dl_mosquitto t = {0};
    const char *missing = NULL;
    SYM(lib_init, mosquitto_lib_init);
    SYM(lib_cleanup, mosquitto_lib_cleanup);
    SYM(create, mosquitto_new);
    SYM(destroy, mosquitto_destroy);
    SYM(int_option, mosquitto_int_option);
    SYM(connect_callback_set, mosquitto_connect_callback_set);
    SYM(disconnect_callback_set, mosquitto_disconnect_callback_set);
    SYM(publish_callback_set, mosquitto_publish_callback_set);
    SYM(message_callback_set, mosquitto_message_callback_set);
    SYM(log_callback_set, mosquitto_log_callback_set);
    SYM(will_set, mosquitto_will_set);
    SYM(username_pw_set, mosquitto_username_pw_set);
    SYM(tls_set, mosquitto_tls_set);
    SYM(tls_insecure_set, mosquitto_tls_insecure_set);
    SYM(connect_async, mosquitto_connect_async);
    SYM(reconnect_async, mosquitto_reconnect_async);
    SYM(disconnect, mosquitto_disconnect);
    SYM(publish, mosquitto_publish);
    SYM(subscribe, mosquitto_subscribe);
    SYM(socket, mosquitto_socket);
    SYM(want_write, mosquitto_want_write);
    SYM(loop_read, mosquitto_loop_read);
    SYM(loop_write, mosquitto_loop_write);
    SYM(loop_misc, mosquitto_loop_misc);
    SYM(strerror, mosquitto_strerror);
    SYM(connack_string, mosquitto_connack_string);
    if (missing) {
        snprintf(err, cap, "needs %s with %s (too old?)", DL_MOSQUITTO_SONAME, missing);
        dlclose(h);
        return NULL;
    }
    /* Never dlclose'd: libmosquitto and the TLS library under it keep process-wide state. */
    table = t;
    loaded = 1;
    return &table;
}
