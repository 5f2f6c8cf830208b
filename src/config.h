/* config.h: p1d's configuration: one table of keys drives the config file, the flags, --help,
 * --check-config and the reference in docs/CONFIG.md. */
#ifndef P1D_CONFIG_H
#define P1D_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "meter.h"

#define CONFIG_STR_MAX 256  /* paths, specs, addresses */
#define CONFIG_LINE_MAX 1024 /* one line of the config file */
#define CONFIG_FILE_MAX   (1024 * 1024) /* the config file; more is refused, not read */
#define CONFIG_ERR_MAX 512  /* one error message */
#define CONFIG_KEYS_MAX 160 /* keys in the table (config.c checks) */
#define CONFIG_ERRORS_MAX 20  /* errors kept of one config_load; further ones are only counted */

/* Source kinds; the bit values are the `kinds` mask of the source keys. */
typedef enum config_kind {
    CONFIG_SERIAL = 1 << 0,
    CONFIG_TCP = 1 << 1,
    CONFIG_FILE = 1 << 2,
    CONFIG_STDIN = 1 << 3,
    CONFIG_SIM = 1 << 4,
} config_kind;

/* Values of the enum keys, in the order of their choices in the table. */
enum { CONFIG_BAUD_AUTO = 0, CONFIG_BAUD_115200, CONFIG_BAUD_9600 };
enum { CONFIG_PARITY_AUTO = 0, CONFIG_PARITY_NONE, CONFIG_PARITY_EVEN };
enum { CONFIG_PACE_FAST = 0, CONFIG_PACE_RECORDED };
/* crc: optional|required|ignore, the values of p1_crc_policy. */

/* One source ([source NAME] or --source NAME=SPEC). Durations are milliseconds. */
typedef struct config_source {
    char name[METER_NAME_MAX + 1];
    char spec[CONFIG_STR_MAX];   /* as configured, options included */
    char origin[CONFIG_STR_MAX]; /* where the spec came from: "FILE:LINE" or "--source" */
    config_kind kind;            /* derived from spec */
    char target[CONFIG_STR_MAX]; /* device path, HOST:PORT, or file path (derived) */
    int64_t baud, parity, detect_timeout, crc, idle_timeout, reconnect_min, reconnect_max,
        connect_timeout, pace, speedup, interval, seed, clock, skip_tag, idle_reopen;
    char key[CONFIG_STR_MAX];    /* 32 hex digits or "" (key_file resolved into key/ak) */
    char ak[CONFIG_STR_MAX];
    char key_file[CONFIG_STR_MAX];
    uint64_t set;                /* bit i: source key i was set explicitly */
    int set_line[64];            /* bit i's config-file line; 0 = set on the command line */
    int line;                    /* line of its [source NAME] header; 0 = --source only */
    int errors;                  /* errors setting its spec, key, ak or key_file in the file:
                                  * then it is not validated */
} config_source;

typedef struct config {
    char file[CONFIG_STR_MAX];   /* --config FILE, "" none */
    char http_listen[128], http_token[128], http_basic_user[64], http_basic_pass[128],
        http_cors_origin[128], http_allowed_hosts[256], http_per_ip_exempt[256],
        http_token_file[CONFIG_STR_MAX], http_basic_pass_file[CONFIG_STR_MAX];
    int64_t http_max_connections, http_max_per_ip, http_timeout, http_stale;
    int64_t http_announce;       /* zeroconf_mode: auto, yes, no */
    char http_announce_name[64]; /* DNS-SD instance name; "" = "p1d on HOSTNAME" */
    char relay_listen[128];      /* "" = relay off */
    char relay_meter[METER_NAME_MAX + 1];
    int64_t relay_buffer, relay_clients;
    int64_t log_level;           /* log_level */
    char store_db[CONFIG_STR_MAX];
    int64_t store_raw_keep, store_minute_keep; /* ms; 0 = forever */
    /* [mqtt] (pub_mqtt.c); durations in ms, bools 0/1 */
    char mqtt_host[CONFIG_STR_MAX], mqtt_username[CONFIG_STR_MAX], mqtt_password[CONFIG_STR_MAX],
        mqtt_password_file[CONFIG_STR_MAX], mqtt_client_id[CONFIG_STR_MAX],
        mqtt_ca_file[CONFIG_STR_MAX], mqtt_topic_prefix[128], mqtt_discovery_prefix[128],
        mqtt_dsmr_meter[METER_NAME_MAX + 1];
    int64_t mqtt_enabled, mqtt_port, mqtt_keepalive, mqtt_tls, mqtt_tls_insecure, mqtt_discovery,
        mqtt_qos, mqtt_retain, mqtt_rate_power, mqtt_rate_voltage, mqtt_rate_current,
        mqtt_rate_counter, mqtt_state_interval, mqtt_dsmr_reader, mqtt_reconnect_max;
    /* [influxdb] (pub_influx.c) */
    char influx_url[CONFIG_STR_MAX], influx_database[128], influx_bucket[128], influx_org[128],
        influx_username[128], influx_password[CONFIG_STR_MAX], influx_password_file[CONFIG_STR_MAX],
        influx_token[CONFIG_STR_MAX], influx_token_file[CONFIG_STR_MAX], influx_measurement[64];
    int64_t influx_enabled, influx_rate, influx_interval, influx_batch, influx_timeout;
    char azure_endpoint[256], azure_account[64], azure_key[128], azure_key_file[CONFIG_STR_MAX],
        azure_sas[1024], azure_table[64]; /* [azure]; pub_azure.h */
    int64_t azure_enabled, azure_partition, azure_rate, azure_interval, azure_batch, azure_parallel,
        azure_timeout, azure_flush;
    char prices[17][64];         /* [prices] keys as written, in cost_fixed_key() order (cost.c) */
    char prices_fetch_url[512], prices_fetch_gas_url[512]; /* price_fetch.h */
    char prices_fetch_header[512], prices_fetch_gas_header[512];
    char prices_fetch_header_file[CONFIG_STR_MAX], prices_fetch_gas_header_file[CONFIG_STR_MAX];
    char prices_fetch_body[960], prices_fetch_gas_body[960];
    char prices_fetch_after[8], prices_fetch_gas_day_start[8];
    int64_t prices_fetch_timeout;
    char alerts_url[512], alerts_header[512], alerts_events[128]; /* alerts.h */
    char alerts_daily_at[8];
    char alerts_header_file[CONFIG_STR_MAX];
    int64_t alerts_format, alerts_timeout, alerts_fuse, alerts_overload_for, alerts_mqtt;
    int line[CONFIG_KEYS_MAX];   /* per key of the table: its config-file line, 0 = default,
                                  * -1 its long flag, -2 its short one (source keys: set_line) */
    int check, help, version, print_doc, fetch_prices,
        test_alert;              /* actions asked for on the command line */
    config_source *sources;      /* owned; in configuration order */
    size_t nsources, capsources;
} config;

/* The errors of one config_load: every one of the config file, in file order (those without a
 * line of the file last), each a message naming the place, key, value and what is expected. */
typedef struct config_errors {
    char msg[CONFIG_ERRORS_MAX][CONFIG_ERR_MAX];
    int line[CONFIG_ERRORS_MAX]; /* the order: the message's line of the file, INT_MAX none */
    size_t n;                    /* kept in msg[] */
    size_t total;                /* found, kept or not */
} config_errors;

/* Builds c from defaults, the config file (--config) and the flags in argv, in that order of
 * precedence (flags win). Returns 0, or -1 with the errors in *errs: all of the file's (a usage
 * error of the command line alone). c must be freed with config_free() either way. */
int config_load(config *c, int argc, char **argv, config_errors *errs);
/* Adds msg to errs in file order: by the line of its "FILE:LINE: " prefix (file is the config
 * file), after the file's errors when it has none. */
void config_errors_add(config_errors *errs, const char *file, const char *msg);
/* Writes the errors to f, one a line as PREFIX MESSAGE, then "PREFIX... and N more errors"
 * when not all were kept. */
void config_errors_print(const config_errors *errs, FILE *f, const char *prefix);
/* Frees what config_load allocated; accepts a zeroed config. */
void config_free(config *c);
/* Writes the effective configuration in config-file syntax (secrets masked). */
void config_print(const config *c, FILE *f);
/* Writes --help, generated from the key table. */
void config_usage(FILE *f);
/* Writes the key reference in Markdown (docs/CONFIG.md), generated from the key table. */
void config_print_doc(FILE *f);
/* The source named name, or NULL. */
const config_source *config_find_source(const config *c, const char *name);
/* 1 when two sources are configured identically (same spec and every key). */
int config_source_equal(const config_source *a, const config_source *b);
/* Where key `key` of [section] got its value, for error messages: "FILE:LINE", the flag
 * ("--http-listen") or "default", into out[cap]. Returns out. */
const char *config_where(const config *c, const char *section, const char *key, char *out,
                         size_t cap);
/* why, a reason that starts "[SECTION] KEY", with where that key was set in front of it
 * ("FILE:LINE: [alerts] url: ...") into err[cap]; as it is when the key has its default. */
void config_placed(const config *c, const char *why, char *err, size_t cap);
/* The names of the configured sources, ", "-separated (or "none configured"), into out[cap]. */
const char *config_source_names(const config *c, char *out, size_t cap);
/* The secret keys (passwords, tokens, keys) the config file sets, as "[mqtt] password, [source
 * lux] key" into out[cap] (truncated); returns how many. */
size_t config_file_secrets(const config *c, char *out, size_t cap);
/* spec as it may be shown (/api/meters, logs, --check-config): the values of secret options
 * (":key=HEX", ":ak=HEX") replaced by "********"; into out[cap], truncated to fit. */
void config_spec_public(const char *spec, char *out, size_t cap);
/* Whether h is one HTTP header "Name: value" (a token, ':', a value without control characters);
 * -1 with why[cap] naming `what` ("[prices] fetch_header") and the problem, never the value (a
 * token). */
int config_http_header_check(const char *h, const char *what, char *why, size_t cap);

/* Reads the first line of the file at path (a password, token or header; its line end dropped)
 * into out[cap]. `what` names the key in the error ("[mqtt] password_file"), which says why
 * (missing, unreadable, empty, or a first line of cap bytes or more) and never quotes the file.
 * Returns 0 or -1. */
int config_read_secret(const char *what, const char *path, char *out, size_t cap, char *err,
                       size_t errcap);
/* url as it may be shown (logs, --check-config, errors): the password of a user:password@ in its
 * authority, and the value of each query parameter whose name says it holds a secret (token,
 * key, secret, pass, pwd, sig, auth in any case: securityToken, api_key, sig), replaced by
 * "********"; into out[cap], truncated to fit. Returns out. */
const char *config_url_public(const char *url, char *out, size_t cap);
/* url as logs of a request to it show it: config_url_public() without its query and fragment
 * (a query may hold an API token); into out[cap]. Returns out. */
const char *config_url_shown(const char *url, char *out, size_t cap);
/* Name of a kind ("serial", "tcp", "file", "stdin", "sim"). */
const char *config_kind_name(config_kind k);
/* Splits "HOST:PORT" or "[V6]:PORT" into host[hcap] (brackets removed) and the port.
 * Returns 0, or -1 when the form is wrong or the port is not 0..65535. */
int config_addr_split(const char *s, char *host, size_t hcap, unsigned *port);
/* The address a listener binds for the host of a listen setting: "localhost" is 127.0.0.1, for
 * [http] listen and [relay] listen alike (getaddrinfo() may give ::1 first); others as given. */
const char *config_listen_host(const char *host);

#endif
