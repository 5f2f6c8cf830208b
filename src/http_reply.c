/* http_reply.c: the JSON error answer (http.h) shared by the HTTP server and its route handlers;
 * no libmicrohttpd here, so that a fuzz harness can link the handlers without the server. */
#include <stdarg.h>
#include <stdio.h>

#include "http.h"

int http_error_json(json_w *w, const char *code, const char *msg)
{
    if (json_init_alloc(w, 512, 4096, 0) < 0)
        return -1;
    json_obj_begin(w);
    json_key(w, "error");
    json_obj_begin(w);
    json_kv_str(w, "code", code);
    json_kv_str(w, "message", msg);
    json_obj_end(w);
    json_obj_end(w);
    if (json_ok(w))
        return 0;
    json_free(w);
    return -1;
}

int http_reply_error(http_reply *out, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_w w;
    out->status = status;
    out->content_type = "application/json";
    if (http_error_json(&w, code, msg) == 0) {
        out->body = w.buf;
        out->len = w.len;
    }
    return 1;
}
