/* fuzz_config.c: libFuzzer target: p1d's config file reader (config_load() with --config). Any
 * bytes give either a configuration or errors that each say where and what (at most
 * CONFIG_ERRORS_MAX kept, the total counted), and no crash, leak or read outside the file. A
 * configuration that loads prints (--check-config) as a file that loads again into the same
 * configuration, unless a secret is masked in the print.
 *
 * The input is the file; it is handed over as a memfd, so that nothing is written to disk. */
#define _GNU_SOURCE
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void fail(const char *what, const uint8_t *data, size_t size, const char *more)
{
    fprintf(stderr, "fuzz_config: %s (input of %zu bytes)\n", what, size);
    fprintf(stderr, "--- file\n%.*s\n", (int)(size < 4000 ? size : 4000), (const char *)data);
    if (more)
        fprintf(stderr, "--- then\n%s\n", more);
    abort();
}

/* A memfd holding data[0..size); its /proc path into path[cap]. Returns the fd or -1. */
static int memfile(const void *data, size_t size, char *path, size_t cap)
{
    int fd = memfd_create("p1d.conf", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return -1;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* Loads the file at path into c; errs as config_load() leaves them. */
static int load(config *c, const char *path, config_errors *errs)
{
    char *argv[] = {"p1d", "--config", (char *)path, NULL};
    memset(c, 0, sizeof *c);
    memset(errs, 0, sizeof *errs);
    return config_load(c, 3, argv, errs);
}

/* config_print() of c without its first line (which names the file), malloc'd. */
static char *printed(const config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    config_print(c, f);
    fclose(f);
    char *nl = strchr(buf, '\n');
    if (nl)
        memmove(buf, nl + 1, strlen(nl + 1) + 1);
    return buf;
}

static config cfg, again;
static config_errors errs;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* a key_file or secret file named /dev/stdin must not wait for a terminal */
    int fd = open("/dev/null", O_RDONLY);
    if (fd >= 0 && fd != 0) {
        dup2(fd, 0);
        close(fd);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = memfile(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    int rc = load(&cfg, path, &errs);
    close(fd);
    if (rc != 0) {
        if (rc != -1)
            fail("config_load returned neither 0 nor -1", data, size, NULL);
        if (errs.n == 0 || errs.n > CONFIG_ERRORS_MAX || errs.total < errs.n)
            fail("a refused file without its errors counted", data, size, NULL);
        for (size_t i = 0; i < errs.n; i++)
            if (!errs.msg[i][0] || !memchr(errs.msg[i], '\0', sizeof errs.msg[i]))
                fail("an empty error message", data, size, NULL);
        config_free(&cfg);
        return 0;
    }
    char *first = printed(&cfg);
    config_free(&cfg);
    if (!strstr(first, "********")) {
        fd = memfile(first, strlen(first), path, sizeof path);
        if (fd < 0) {
            free(first);
            return 0;
        }
        rc = load(&again, path, &errs);
        close(fd);
        if (rc != 0) {
            char msg[4096];
            snprintf(msg, sizeof msg, "%s\n--- which does not load: %s", first,
                     errs.n ? errs.msg[0] : "?");
            fail("the printed configuration does not load", data, size, msg);
        }
        char *second = printed(&again);
        config_free(&again);
        if (strcmp(first, second) != 0) {
            char msg[8192];
            snprintf(msg, sizeof msg, "%s\n--- loads as\n%s", first, second);
            fail("the printed configuration loads as another", data, size, msg);
        }
        free(second);
    }
    free(first);
    return 0;
}
