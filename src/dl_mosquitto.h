/* dl_mosquitto.h: libmosquitto loaded at run time (dlopen) by the MQTT publisher, so a daemon
 * without [mqtt] never maps it. */
#ifndef P1D_DL_MOSQUITTO_H
#define P1D_DL_MOSQUITTO_H

#include <stddef.h>

#include <mosquitto.h>

#define DL_MOSQUITTO_SONAME "libmosquitto.so.1"

/* The libmosquitto functions p1d calls, each member named after its function without
 * "mosquitto_" and typed from mosquitto.h's own declaration: mq->publish(mosq, &mid, ...). */
typedef struct dl_mosquitto {
    __typeof__(mosquitto_lib_init) *lib_init;
    __typeof__(mosquitto_lib_cleanup) *lib_cleanup;
    __typeof__(mosquitto_new) *create; /* mosquitto_new ("new" trips C++-aware tools) */
    __typeof__(mosquitto_destroy) *destroy;
    __typeof__(mosquitto_int_option) *int_option;
    __typeof__(mosquitto_connect_callback_set) *connect_callback_set;
    __typeof__(mosquitto_disconnect_callback_set) *disconnect_callback_set;
    __typeof__(mosquitto_publish_callback_set) *publish_callback_set;
    __typeof__(mosquitto_message_callback_set) *message_callback_set;
    __typeof__(mosquitto_log_callback_set) *log_callback_set;
    __typeof__(mosquitto_will_set) *will_set;
    __typeof__(mosquitto_username_pw_set) *username_pw_set;
    __typeof__(mosquitto_tls_set) *tls_set;
    __typeof__(mosquitto_tls_insecure_set) *tls_insecure_set;
    __typeof__(mosquitto_connect_async) *connect_async;
    __typeof__(mosquitto_reconnect_async) *reconnect_async;
    __typeof__(mosquitto_disconnect) *disconnect;
    __typeof__(mosquitto_publish) *publish;
    __typeof__(mosquitto_subscribe) *subscribe;
    __typeof__(mosquitto_socket) *socket;
    __typeof__(mosquitto_want_write) *want_write;
    __typeof__(mosquitto_loop_read) *loop_read;
    __typeof__(mosquitto_loop_write) *loop_write;
    __typeof__(mosquitto_loop_misc) *loop_misc;
    __typeof__(mosquitto_strerror) *strerror;
    __typeof__(mosquitto_connack_string) *connack_string;
} dl_mosquitto;

/* Loads DL_MOSQUITTO_SONAME on first success and returns its functions (static, valid until exit;
 * the library is never unloaded). NULL when it cannot be loaded: err gets
 * "needs libmosquitto.so.1: why"; a later call tries again. */
const dl_mosquitto *dl_mosquitto_load(char *err, size_t cap);

#endif
