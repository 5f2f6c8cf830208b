/* web.h: the dashboard's files, embedded at build time (tools/embed.py), served by p1d at /. */
#ifndef P1D_WEB_H
#define P1D_WEB_H

#include <stddef.h>

#include <microhttpd.h>

/* One embedded file. Static data generated into build/gen/web_assets.c; never freed. */
typedef struct web_asset {
    const char *path;        /* URL path: "/index.html", "/app.js" */
    const char *type;        /* Content-Type */
    const unsigned char *gz; /* the file, gzip-compressed */
    size_t gz_len;
    size_t len;              /* bytes once decompressed */
    const char *etag;        /* quoted content hash of the uncompressed file: "\"3f2a...\"" */
    const char *version;     /* the same hash unquoted; index.html refers to "/app.js?v=HASH" */
} web_asset;

extern const web_asset web_assets[];
extern const size_t web_assets_count;
extern const size_t web_assets_gzip_bytes; /* sum of gz_len: what a first visit transfers */

/* The asset served at url ("/" is /index.html); NULL if there is none. */
const web_asset *web_find(const char *url);

/* Answers a GET or HEAD of an embedded asset on c: gzip when the client accepts it (inflated
 * otherwise), ETag/If-None-Match -> 304, Cache-Control. Returns 1 with MHD's result in *ret when
 * it answered, 0 when url is no asset or the method is not GET/HEAD (the caller answers). */
int web_serve(struct MHD_Connection *c, const char *url, const char *method, enum MHD_Result *ret);

#endif
