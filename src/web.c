/* web.c: serves the embedded dashboard files: gzip or inflated, ETag revalidation, caching. */
#include "web.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#define WEB_ETAG_MAX 64 /* bytes of a quoted ETag with its "-gz" suffix */

/* A versioned URL (index.html's "?v=HASH") names content that never changes: cache it for a
 * year. Anything else, index.html included, is revalidated with its ETag on every use. */
#define WEB_CACHE_IMMUTABLE "public, max-age=31536000, immutable"
#define WEB_CACHE_REVALIDATE "no-cache"

/* The page talks only to its own origin; uPlot sets styles through the CSSOM, which CSP allows. */
#define WEB_CSP                                                                                    \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"

const web_asset *web_find(const char *url)
{
    if (!url || url[0] != '/')
        return NULL;
    if (strcmp(url, "/") == 0)
        url = "/index.html";
    for (size_t i = 0; i < web_assets_count; i++)
        if (strcmp(web_assets[i].path, url) == 0)
            return &web_assets[i];
    return NULL;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* q=0 (0, 0.0, 0.00, 0.000) in a ";"-parameter list ending at end: the coding is refused. */
static int q_zero(const char *p, const char *end)
{
    while (p < end) {
        p = skip_ws(p);
        if (p + 2 <= end && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            p += 2;
            if (p >= end || *p != '0')
                return 0;
            for (p++; p < end && *p != ';'; p++)
                if (*p != '.' && *p != '0' && *p != ' ')
                    return 0;
            return 1;
        }
        while (p < end && *p != ';')
            p++;
        if (p < end)
            p++;
    }
    return 0;
}

/* Accept-Encoding admits gzip: "gzip" or "*" listed without q=0, and gzip not refused. */
static int accepts_gzip(const char *ae)
{
    if (!ae)
        return 0;
    int gzip = -1, star = -1;
    const char *p = ae;
    while (*p) {
        p = skip_ws(p);
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t n = (size_t)(p - tok);
        const char *params = p;
        while (*p && *p != ',')
            p++;
        int ok = !q_zero(params, p);
        if ((n == 4 && strncasecmp(tok, "gzip", 4) == 0) ||
            (n == 6 && strncasecmp(tok, "x-gzip", 6) == 0))
            gzip = ok;
        else if (n == 1 && tok[0] == '*')
            star = ok;
        if (*p == ',')
            p++;
    }
    return gzip == 1 || (gzip == -1 && star == 1);
}

/* If-None-Match lists one of our two tags (or "*"); weak comparison, as RFC 9110 asks. */
static int etag_matches(const char *inm, const char *tag, const char *gz_tag)
{
    if (!inm)
        return 0;
    const char *p = inm;
    while (*p) {
        p = skip_ws(p);
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        const char *tok = p;
        if (*p == '"') {
            p++;
            while (*p && *p != '"')
                p++;
            if (*p == '"')
                p++;
        }
        size_t n = (size_t)(p - tok);
        if ((n == strlen(tag) && strncmp(tok, tag, n) == 0) ||
            (n == strlen(gz_tag) && strncmp(tok, gz_tag, n) == 0))
            return 1;
        while (*p && *p != ',')
            p++;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* The uncompressed file in a new malloc'd buffer (for clients that do not take gzip). */
static unsigned char *inflate_asset(const web_asset *a)
{
    unsigned char *out = malloc(a->len ? a->len : 1);
    if (!out)
        return NULL;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        free(out);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)a->gz;
    z.avail_in = (uInt)a->gz_len;
    z.next_out = out;
    z.avail_out = (uInt)a->len;
    int rc = inflate(&z, Z_FINISH);
    size_t got = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END || got != a->len) {
        free(out);
        return NULL;
    }
    return out;
}

static void add_headers(struct MHD_Response *r, const web_asset *a, const char *tag, int immutable)
{
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, tag);
    MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
                            immutable ? WEB_CACHE_IMMUTABLE : WEB_CACHE_REVALIDATE);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (strcmp(a->path, "/index.html") == 0) {
        MHD_add_response_header(r, "Content-Security-Policy", WEB_CSP);
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    }
}

int web_serve(struct MHD_Connection *c, const char *url, const char *method, enum MHD_Result *ret)
{
    const web_asset *a = web_find(url);
    if (!a || (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0))
        return 0;
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "v");
    int immutable = v && strcmp(v, a->version) == 0;
    int gz = accepts_gzip(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_ACCEPT_ENCODING));
    /* The gzip and identity forms are different representations, so they get different tags. */
    char gz_tag[WEB_ETAG_MAX];
    size_t tl = strlen(a->etag);
    if (tl < 2 || tl + 4 > sizeof gz_tag)
        return 0;
    memcpy(gz_tag, a->etag, tl - 1);
    memcpy(gz_tag + tl - 1, "-gz\"", 5);
    const char *tag = gz ? gz_tag : a->etag;

    struct MHD_Response *r;
    unsigned status = MHD_HTTP_OK;
    if (etag_matches(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH),
                     a->etag, gz_tag)) {
        status = MHD_HTTP_NOT_MODIFIED;
        r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    } else if (gz) {
        r = MHD_create_response_from_buffer(a->gz_len, (void *)(uintptr_t)a->gz,
                                            MHD_RESPMEM_PERSISTENT);
        if (r)
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    } else {
        unsigned char *body = inflate_asset(a);
        r = body ? MHD_create_response_from_buffer(a->len, body, MHD_RESPMEM_MUST_FREE) : NULL;
        if (!r)
            free(body);
    }
    if (!r) {
        *ret = MHD_NO;
        return 1;
    }
    if (status == MHD_HTTP_OK)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
    add_headers(r, a, tag, immutable);
    *ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return 1;
}
