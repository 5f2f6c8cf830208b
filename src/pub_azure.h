/* pub_azure.h: publishes stored readings to Azure Table Storage (or Azurite) through the outbox:
 * entity-group transactions over libcurl's multi interface on the daemon's event loop. */
#ifndef P1D_PUB_AZURE_H
#define P1D_PUB_AZURE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"
#include "outbox.h"
#include "pub.h"
#include "store.h"

#define PUB_AZURE_BATCH_MAX       100 /* entities per entity-group transaction (Azure's limit) */
#define PUB_AZURE_PARALLEL_MAX    16  /* requests in flight at once */
#define PUB_AZURE_BODY_MAX        (4 << 20) /* bytes of one batch request (Azure's 4 MiB limit) */
#define PUB_AZURE_RESPONSE_MAX    (1 << 20) /* bytes of a reply we read; more is a bad reply */
#define PUB_AZURE_URL_MAX         1536      /* endpoint + path + SAS token */
#define PUB_AZURE_AUTH_BACKOFF_MS 600000    /* after 403 AuthenticationFailed: wait 10 minutes */
#define PUB_AZURE_BACKOFF_MIN_MS  1000      /* first retry delay; doubles with jitter ... */
#define PUB_AZURE_BACKOFF_MAX_MS  300000    /* ... up to 5 minutes */
#define PUB_AZURE_POLL_MS         1000      /* look for new readings this often when caught up */
#define PUB_AZURE_KEY_BYTES       64        /* a storage account key ... */
#define PUB_AZURE_KEY_B64         88        /* ... and its base64 form */

/* Settings, usually from the [azure] config section. Plain data; copied by pub_azure_new. */
typedef struct pub_azure_options {
    char endpoint[256]; /* https://ACCOUNT.table.core.windows.net or an emulator URL with the
                         * account as its path: http://127.0.0.1:10002/devstoreaccount1 */
    char account[64];   /* storage account name (SharedKey); may be "" with a SAS */
    char key[128];      /* base64 account key, or "" */
    char sas[1024];     /* SAS token ("sv=...&sig=..."), used when key is ""; or "" */
    char table[64];     /* table name: a letter, then 2..62 letters or digits */
    int partition_hour; /* PartitionKey per UTC hour instead of per UTC day */
    outbox_rate rate;
    int64_t interval_s; /* OUTBOX_INTERVAL: one reading per this many seconds */
    int batch;          /* entities per transaction, 1..PUB_AZURE_BATCH_MAX */
    int parallel;       /* requests in flight, 1..PUB_AZURE_PARALLEL_MAX */
    int64_t timeout_ms; /* a request that takes longer fails and is retried */
    int64_t flush_ms;   /* a partial batch waits this long for more readings; 0 = send at once */
} pub_azure_options;

/* Fills o from the [azure] keys of c (reading key_file) and checks it. Returns 1 when Azure
 * publishing is configured and enabled, 0 when not, -1 with a reason in err[cap]. */
int pub_azure_options_from(const config *c, pub_azure_options *o, char *err, size_t cap);
/* Checks o (endpoint form, credentials, table name, bounds). Returns 0, or -1 with a one-line
 * reason naming the [azure] key in err[cap]. */
int pub_azure_check(const pub_azure_options *o, char *err, size_t cap);

/* Starts publishing every meter of store s (borrowed; must outlive the publisher) on loop l.
 * Returns the publisher (free it with p->free(p->impl)) or NULL with a reason in err[cap]; errno
 * is ELIBACC when libcurl cannot be loaded (Azure stays off, the daemon can run on). */
pub *pub_azure_new(loop *l, store *s, const pub_azure_options *o, char *err, size_t cap);

/* The SharedKey signature of string-to-sign `sts` with the base64 key: base64 of HMAC-SHA256
 * into out[cap]. Returns 0, or -1 (bad key, small buffer). Exposed for the unit test. */
int pub_azure_sign(const char *key_b64, const char *sts, char *out, size_t cap);

#endif
