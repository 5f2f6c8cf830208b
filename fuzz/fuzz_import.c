/* fuzz_import.c: libFuzzer target: the text rebuild of `p1 import` (tools/p1_import.c), which
 * takes captures from anywhere (cat of a serial port, journalctl, a logger's lines with
 * timestamps, CSV and JSON exports with escaped line ends) and hands the decoder the telegrams as
 * the meter sent them. Any bytes, in any read sizes, give no crash, no read outside the input and
 * file offsets inside what was read; a capture that is already clean reaches the decoder byte
 * for byte as it was read.
 *
 * The import's file is compiled in here (its functions are static); the decoder runs with the
 * import's own callbacks in probe mode, which times telegrams and stores nothing. Byte 0 picks
 * the read size, whether the capture is read as escaped and whether LF-only line ends are kept;
 * the rest is the capture. */
#include "../tools/p1_import.c"

/* p1_import.c's calls into tools/p1.c, which the text rebuild never makes. */
int p1_opt_value(char **argv, int argc, int *i, const char *name, const char **val)
{
    (void)argv, (void)argc, (void)i, (void)name, (void)val;
    abort();
}

int p1_opt_twice(const char *cmd, const char *arg)
{
    (void)cmd, (void)arg;
    abort();
}

int p1_unknown_option(const char *cmd, const char *arg, const char *const *opts, size_t n)
{
    (void)cmd, (void)arg, (void)opts, (void)n;
    abort();
}

int p1_write_error(const char *cmd, int err)
{
    (void)cmd, (void)err;
    abort();
}

const char *p1_crypt_options(const char *key, const char *ak, int skip_tag, struct p1_crypt *crypt,
                             p1_settings *set)
{
    (void)key, (void)ak, (void)skip_tag, (void)crypt, (void)set;
    abort();
}

static void fail(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_import: %s (input of %zu bytes)\n", what, size);
    fprintf(stderr, "%.*s\n", (int)(size < 2000 ? size : 2000), (const char *)data);
    abort();
}

static import_ctx ctx;
static import_text text;
static p1_parser parser;

/* 1 when every line of b[0..n) ends in CRLF (LF alone: lf) and starts as a telegram's line
 * does. */
static int clean_capture(const uint8_t *b, size_t n, int lf)
{
    size_t i = 0;
    while (i < n) {
        const uint8_t *nl = memchr(b + i, '\n', n - i);
        if (!nl)
            return 0;
        size_t len = (size_t)(nl - (b + i));
        if (lf ? (len && b[i + len - 1] == '\r') || !text_clean(b + i, len)
               : !len || b[i + len - 1] != '\r' || !text_clean(b + i, len - 1))
            return 0;
        i += len + 1;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const size_t chunks[] = {1, 2, 3, 7, 16, 64, 251, 4096};
    size_t chunk = chunks[data[0] & 7];
    const uint8_t *b = data + 1;
    size_t n = size - 1;
    memset(&ctx, 0, sizeof ctx);
    memset(&text, 0, sizeof text);
    ctx.probe = 1;
    text.escaped = data[0] & 8 ? 1 : text_escaped(b, n);
    text.lf = !!(data[0] & 16);
    p1_callbacks cb = {on_begin, on_object, on_end};
    p1_parser_init(&parser, NULL, &cb, &ctx);
    /* the input is copied per read into a buffer of exactly the read's size, so that a read
     * past it is caught */
    for (size_t pos = 0; pos < n; pos += chunk) {
        size_t len = n - pos < chunk ? n - pos : chunk;
        uint8_t *rd = malloc(len);
        if (!rd)
            abort();
        memcpy(rd, b + pos, len);
        text_feed(&ctx, &text, &parser, rd, len, pos);
        free(rd);
        if (ctx.line_end > pos + len)
            fail("a line end past what was read", data, size);
    }
    if (text.len && !text.over)
        text_line(&ctx, &text, &parser, text.line, text.len);
    p1_finish(&parser);
    if (!text.escaped && clean_capture(b, n, text.lf) && ctx.fed != n)
        fail("a clean capture did not reach the decoder as it was", data, size);
    if (ctx.first_ts < 0)
        fail("a negative meter time", data, size);
    return 0;
}
