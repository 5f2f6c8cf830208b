/* fuzz_azure.c: libFuzzer target: how the Azure Table publisher (src/pub_azure.c) reads a
 * server's reply to an entity-group transaction: its headers (x-ms-error-code, Date) and its
 * body (the multipart batch response, or an error in JSON or XML). Whatever a server, proxy or
 * captive portal sends, the verdict is one of the publisher's outcomes; a batch counts as
 * stored only when the reply is a 202 that confirms every operation with a 2xx and closes its
 * changeset; the texts for the log stay inside their buffers.
 *
 * The publisher's file is compiled in here (these functions are static). Byte 0 and 1 give the
 * status (100..599, or 0 for no reply), byte 2 the operations in the batch (1..100) and whether
 * it was sent as InsertOrReplace; then header lines up to an empty line; the rest is the body. */
#include "../src/pub_azure.c"

static void fail(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_azure: %s (input of %zu bytes)\n", what, size);
    fprintf(stderr, "%.*s\n", (int)(size < 2000 ? size : 2000), (const char *)data);
    abort();
}

/* How many "HTTP/1.1 2xx" operation statuses body holds, counted as the publisher counts. */
static int confirmed(const char *body)
{
    int ok = 0;
    for (const char *p = body; (p = strstr(p, "HTTP/1.1 ")) != NULL; p += 9) {
        long st = strtol(p + 9, NULL, 10);
        if (st < 200 || st >= 300)
            return -1;
        ok++;
    }
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    unsigned raw = (unsigned)data[0] << 8 | data[1];
    long status = raw % 601 < 100 ? 0 : (long)(raw % 601);
    az_req r;
    memset(&r, 0, sizeof r);
    r.npoints = 1 + data[2] % 100;
    r.upsert = data[2] >= 128;
    buf_init(&r.resp, PUB_AZURE_RESPONSE_MAX);
    size_t i = 3;
    /* headers, one on_header() call per line with its line end, as curl makes them */
    while (i < size) {
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        size_t len = nl ? (size_t)(nl - (data + i)) + 1 : size - i;
        char *line = malloc(len);
        if (!line)
            abort();
        memcpy(line, data + i, len);
        if (on_header(line, 1, len, &r) != len)
            fail("on_header did not take the whole line", data, size);
        free(line);
        i += len;
        if (len <= 2 && (len == 1 || data[i - 2] == '\r'))
            break;
    }
    if (!memchr(r.err_code, '\0', sizeof r.err_code) || !memchr(r.date, '\0', sizeof r.date))
        fail("a header value not terminated inside its buffer", data, size);
    /* the body in two pieces, as curl may hand it over */
    size_t half = i + (size - i) / 2;
    if (size > i && (on_body((char *)data + i, 1, half - i, &r) != half - i ||
                     on_body((char *)data + half, 1, size - half, &r) != size - half))
        fail("on_body refused a reply body under its limit", data, size);
    char code[64], why[256];
    memset(code, 'x', sizeof code);
    memset(why, 'x', sizeof why);
    az_outcome oc = judge_batch(&r, status, code, sizeof code, why, sizeof why);
    if (!memchr(code, '\0', sizeof code) || (oc != AZ_OK && !memchr(why, '\0', sizeof why)))
        fail("a verdict's texts not terminated inside their buffers", data, size);
    switch (oc) {
    case AZ_OK: {
        const char *body = r.resp.p ? r.resp.p : "";
        if (status != 202 || confirmed(body) != r.npoints || !strstr(body, "--changesetresponse"))
            fail("a batch counted as stored without a 202 confirming every operation", data, size);
        break;
    }
    case AZ_EXISTS:
        if (r.upsert)
            fail("an InsertOrReplace batch told to be resent as InsertOrReplace", data, size);
        break;
    case AZ_SPLIT:
        if (r.npoints < 2)
            fail("a batch of one told to split", data, size);
        break;
    case AZ_RETRY:
    case AZ_AUTH:
    case AZ_NO_TABLE:
    case AZ_PARK:
        break;
    case AZ_PENDING:
    default:
        fail("an outcome the publisher does not know", data, size);
    }
    int64_t t;
    if (r.date[0] && parse_rfc1123(r.date, &t) == 0 && (t < 0 || t > 253402300800LL))
        fail("a server Date outside years 1970..9999", data, size);
    buf_free(&r.resp);
    return 0;
}
