/* config.c: the configuration key table and everything it drives: file parser, flags, --help,
 * --check-config output and the Markdown reference. */
#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "p1/crypt.h"
#include "suggest.h"

typedef enum config_type {
    CT_STRING,
    CT_INT,
    CT_BOOL,
    CT_ENUM,
    CT_DURATION,
    CT_SECONDS, /* a duration used in whole seconds: fractions are refused, not truncated */
    CT_ADDR,
} config_type;

/* One key. Offsets point into struct config, or into struct config_source for section "source". */
typedef struct config_key {
    const char *section;
    const char *name;
    config_type type;
    const char *def;     /* default as written in the file */
    int64_t min, max;    /* int: the value; duration: milliseconds */
    const char *choices; /* enum: "a|b|c"; the value stored is the index */
    const char *flag;    /* short flag besides --SECTION-NAME, or NULL */
    const char *arg;     /* placeholder in --help */
    unsigned kinds;      /* source keys: kinds it applies to; 0 = all */
    int secret;          /* masked in --check-config output */
    size_t offset, size;
    const char *help;
} config_key;

#define G(f) offsetof(config, f), sizeof(((config *)0)->f)
#define S(f) offsetof(config_source, f), sizeof(((config_source *)0)->f)
#define STREAM (CONFIG_SERIAL | CONFIG_TCP)
#define DAY_MS 86400000LL

/* The table. Order = order in --help, --check-config and the docs. */
static const config_key config_keys[] = {
    {"http", "listen", CT_ADDR, "127.0.0.1:8080", 0, 0, NULL, "--listen", "ADDR:PORT", 0, 0,
     G(http_listen),
     "Address of the HTTP API and dashboard: 127.0.0.1:8080, [::1]:8080, 0.0.0.0:80. Port 0 "
     "picks a free port (logged)."},
    {"http", "token", CT_STRING, "", 0, 0, NULL, "--token", "TOKEN", 0, 1, G(http_token),
     "Bearer token every HTTP request must carry; empty = no token."},
    {"http", "token_file", CT_STRING, "", 0, 0, NULL, NULL, "PATH", 0, 0, G(http_token_file),
     "File whose first line is the token (a systemd credential; docs/CONFIG.md). Set token or "
     "token_file, not both."},
    {"http", "basic_user", CT_STRING, "", 0, 0, NULL, NULL, "USER", 0, 0, G(http_basic_user),
     "HTTP basic-auth user; empty = no basic auth."},
    {"http", "basic_pass", CT_STRING, "", 0, 0, NULL, NULL, "PASS", 0, 1, G(http_basic_pass),
     "HTTP basic-auth password."},
    {"http", "basic_pass_file", CT_STRING, "", 0, 0, NULL, NULL, "PATH", 0, 0,
     G(http_basic_pass_file),
     "File whose first line is the basic-auth password. Set basic_pass or basic_pass_file, not "
     "both."},
    {"http", "cors_origin", CT_STRING, "*", 0, 0, NULL, NULL, "ORIGIN", 0, 0, G(http_cors_origin),
     "Access-Control-Allow-Origin sent with every response. An origin named here "
     "(http://mypage.lan:8000, not *) may also upload prices from a browser; other pages may not."},
    {"http", "allowed_hosts", CT_STRING, "", 0, 0, NULL, NULL, "NAMES", 0, 0, G(http_allowed_hosts),
     "Without token or basic auth, requests must name p1d (Host) by an IP address, localhost, a "
     "name without a dot, a *.localhost, *.local, *.lan, *.home, *.localdomain, *.home.arpa, "
     "*.internal or *.fritz.box name, the machine's host name or one listed here "
     "(comma-separated; *.example.org = its subdomains; * = any): other names are refused (403) "
     "as DNS rebinding."},
    {"http", "max_connections", CT_INT, "2048", 1, 100000, NULL, NULL, "N", 0, 0,
     G(http_max_connections), "Most HTTP connections open at once."},
    {"http", "max_connections_per_ip", CT_INT, "64", 0, 100000, NULL, NULL, "N", 0, 0,
     G(http_max_per_ip),
     "Most HTTP connections one client address may hold open at once (0 = no limit; a value "
     "above half of max_connections is lowered to that half, with a warning), so a single client "
     "cannot take them all; its further connections are closed at once."},
    {"http", "per_ip_exempt", CT_STRING, "127.0.0.0/8, ::1", 0, 0, NULL, NULL, "ADDRS", 0, 0,
     G(http_per_ip_exempt),
     "Client addresses and prefixes (192.168.1.5, 10.0.0.0/8, fd00::/64; comma-separated) that "
     "max_connections_per_ip does not limit: a reverse proxy, whose clients all share its "
     "address. Empty = none."},
    {"http", "timeout", CT_SECONDS, "30s", 1000, DAY_MS, NULL, NULL, "DURATION", 0, 0,
     G(http_timeout), "Idle HTTP connections are closed after this long."},
    {"http", "stale", CT_SECONDS, "60s", 1000, DAY_MS, NULL, NULL, "DURATION", 0, 0, G(http_stale),
     "A meter without a telegram for this long is stale: /healthz reports unhealthy and MQTT sends "
     "offline on PREFIX/METER/availability."},
    {"http", "announce", CT_ENUM, "auto", 0, 0, "auto|yes|no", NULL, "WHEN", 0, 0, G(http_announce),
     "Announce p1d on the LAN over mDNS/DNS-SD through avahi-daemon: the dashboard "
     "(_http._tcp) and the HomeWizard P1 API (_hwenergy._tcp, which Home Assistant discovers). "
     "auto: when listen is not a loopback address, and the HomeWizard API only on port 80 "
     "without token or basic auth (what HomeWizard clients need); yes: both always; no: never."},
    {"http", "announce_name", CT_STRING, "", 0, 0, NULL, NULL, "NAME", 0, 0, G(http_announce_name),
     "The name announced (at most 63 bytes); empty = \"p1d on HOSTNAME\". Taken on the "
     "network: \"NAME #2\" and so on."},
    {"relay", "listen", CT_ADDR, "", 0, 0, NULL, "--relay", "ADDR:PORT", 0, 0, G(relay_listen),
     "Raw telegram relay (TCP): every accepted telegram of the [relay] meter is sent byte-exact "
     "to each client, as DSMR text (an encrypted meter's decrypted telegrams, so clients need no "
     "key). "
     "Empty = off. Example: 127.0.0.1:2323."},
    {"relay", "meter", CT_STRING, "", 0, 0, NULL, NULL, "NAME", 0, 0, G(relay_meter),
     "Which meter the relay sends; empty = the first configured source."},
    {"relay", "buffer", CT_INT, "65536", 4096, 16777216, NULL, NULL, "BYTES", 0, 0, G(relay_buffer),
     "Output buffer per relay client, never less than one largest telegram (16 KiB); a client "
     "that falls this far behind is dropped."},
    {"relay", "clients", CT_INT, "64", 1, 4096, NULL, NULL, "N", 0, 0, G(relay_clients),
     "Most relay clients at once; further connections are closed at once."},
    {"log", "level", CT_ENUM, "info", 0, 0, "error|warn|info|debug", NULL, "LEVEL", 0, 0,
     G(log_level), "Most verbose level logged to stderr."},
    {"store", "db", CT_STRING, "", 0, 0, NULL, "--db", "PATH", 0, 0, G(store_db),
     "SQLite history database (docs/STORE.md); empty = no history. Created when missing. The "
     "service uses /var/lib/p1d/p1d.db."},
    {"store", "raw_keep", CT_SECONDS, "168h", 0, 100 * 365 * DAY_MS, NULL, NULL, "DURATION", 0, 0,
     G(store_raw_keep), "Raw readings are kept this long behind the newest one; 0 = forever."},
    {"store", "minute_keep", CT_SECONDS, "17520h", 0, 100 * 365 * DAY_MS, NULL, NULL, "DURATION", 0,
     0, G(store_minute_keep),
     "1-minute and 15-minute aggregates are kept this long (hourly and daily ones forever); "
     "0 = forever."},
    {"prices", "import", CT_STRING, "", 0, 0, NULL, NULL, "EUR", 0, 0, G(prices[0]),
     "Fixed electricity price per kWh (single tariff, and the fallback of import_t1/t2), e.g. "
     "0.2345. Dynamic prices (p1 prices import, PUT /api/prices) win where they exist."},
    {"prices", "import_t1", CT_STRING, "", 0, 0, NULL, NULL, "EUR", 0, 0, G(prices[1]),
     "Price per kWh imported on tariff 1 (1.8.1: NL low/night, BE day)."},
    {"prices", "import_t2", CT_STRING, "", 0, 0, NULL, NULL, "EUR", 0, 0, G(prices[2]),
     "Price per kWh imported on tariff 2 (1.8.2: NL normal/day, BE night)."},
    {"prices", "export", CT_STRING, "", 0, 0, NULL, NULL, "EUR", 0, 0, G(prices[3]),
     "Credit per kWh exported (single tariff, fallback of export_t1/t2); empty = not priced: the "
     "export is reported as unpriced, so set 0 when it earns nothing."},
    {"prices", "export_t1", CT_STRING, "", 0, 0, NULL, NULL, "EUR", 0, 0, G(prices[4]),
     "Credit per kWh exported on tariff 1 (2.8.1)."},
    {"prices", "export_t2", CT_STRING, "", 0, 0, NULL, NULL, "EUR", 0, 0, G(prices[5]),
     "Credit per kWh exported on tariff 2 (2.8.2)."},
    {"prices", "gas", CT_STRING, "", 0, 0, NULL, NULL, "EUR", 0, 0, G(prices[6]),
     "Gas price per m3."},
    {"prices", "daily", CT_STRING, "", 0, 0, NULL, NULL, "EUR", 0, 0, G(prices[7]),
     "Fixed charge per day (standing charges, grid fees minus tax credits), accrued pro rata."},
    {"prices", "monthly", CT_STRING, "", 0, 0, NULL, NULL, "EUR", 0, 0, G(prices[8]),
     "Fixed charge per calendar month, accrued pro rata."},
    {"prices", "capacity_per_kw_year", CT_STRING, "", 0, 0, NULL, NULL, "EUR", 0, 0, G(prices[12]),
     "Belgian capacity tariff (capaciteitstarief): grid fee per kW per year, e.g. 48.5 (your "
     "grid operator's, incl. VAT); billed per month as 1/12 of it times the mean of the last 12 "
     "monthly quarter-hour peaks, each at least 2.5 kW. Empty = not priced."},
    {"prices", "dynamic_import_factor", CT_STRING, "", 0, 0, NULL, NULL, "FACTOR", 0, 0,
     G(prices[13]),
     "Dynamic power prices (p1 prices import, PUT /api/prices) are multiplied by this for "
     "import: a kWh imported costs price x factor + dynamic_import_add, e.g. 1.21 (VAT) for a "
     "file of bare day-ahead (spot) prices. 0 to 100; empty = 1. Gas prices are not adjusted."},
    {"prices", "dynamic_import_add", CT_STRING, "", 0, 0, NULL, NULL, "EUR", 0, 0, G(prices[14]),
     "Added per kWh imported to a dynamic power price after dynamic_import_factor, e.g. "
     "0.147063 = (0.10154 energy tax + 0.02 markup) x 1.21. Empty = 0."},
    {"prices", "dynamic_export_factor", CT_STRING, "", 0, 0, NULL, NULL, "FACTOR", 0, 0,
     G(prices[15]),
     "With this or dynamic_export_add set, a kWh exported where a dynamic power price has no "
     "export value earns the file's price x factor + dynamic_export_add (not the adjusted import "
     "price). 0 to 100; empty = 1. With neither set, export earns the adjusted import price "
     "(net metering); an export value in the file is used as it is."},
    {"prices", "dynamic_export_add", CT_STRING, "", 0, 0, NULL, NULL, "EUR", 0, 0, G(prices[16]),
     "Added per kWh exported to a dynamic power price after dynamic_export_factor, e.g. -0.02 "
     "for a feed-in fee. Empty = 0."},
    {"prices", "valid_from", CT_STRING, "", 0, 0, NULL, NULL, "TIME", 0, 0, G(prices[9]),
     "Start of these prices (ISO-8601, e.g. 2025-01-01); empty = always. Each start is kept in "
     "the database: change it when the contract changes and older periods keep their prices."},
    {"prices", "valid_to", CT_STRING, "", 0, 0, NULL, NULL, "TIME", 0, 0, G(prices[10]),
     "End of these prices (exclusive); empty = open-ended."},
    {"prices", "tariff_rule", CT_STRING, "none", 0, 0, NULL, NULL, "RULE", 0, 0, G(prices[11]),
     "Tariff of meters without tariff registers: none (the single price), nl (tariff 1 weekdays "
     "23-07 and weekends) or be (tariff 2 weekdays 22-07 and weekends)."},
    {"prices", "fetch_url", CT_STRING, "", 0, 0, NULL, NULL, "URL", 0, 0, G(prices_fetch_url),
     "Dynamic power prices are downloaded from this http(s) URL (JSON, CSV or ENTSO-E's XML, as "
     "PUT /api/prices takes them) at start and daily from fetch_after until tomorrow's are in, "
     "and stored. "
     "Placeholders: {from} and {to} (today 00:00 and the day after tomorrow 00:00, UTC ISO-8601), "
     "{from_local}, {to_local}, {from_date}, {to_date} (today, tomorrow), {until_date} (the day "
     "after tomorrow), {from_unix}, {to_unix}, {from_compact}, {to_compact} (UTC YYYYMMDDhhmm). "
     "Needs [store] db. Empty = not fetched."},
    {"prices", "fetch_header", CT_STRING, "", 0, 0, NULL, NULL, "HEADER", 0, 1,
     G(prices_fetch_header),
     "One request header sent with fetch_url, as Name: value, e.g. Authorization: Bearer TOKEN "
     "(Tibber). Never logged or shown. Empty = none."},
    {"prices", "fetch_header_file", CT_STRING, "", 0, 0, NULL, NULL, "PATH", 0, 0,
     G(prices_fetch_header_file),
     "File whose first line is fetch_header (Authorization: Bearer TOKEN). Set fetch_header or "
     "fetch_header_file, not both."},
    {"prices", "fetch_body", CT_STRING, "", 0, 0, NULL, NULL, "TEXT", 0, 0, G(prices_fetch_body),
     "With a body fetch_url is POSTed (Content-Type application/json when the body starts with "
     "{ or [, else application/x-www-form-urlencoded), e.g. Tibber's GraphQL query. The URL's "
     "placeholders are filled in it too; other braces stay as they are. Empty = GET."},
    {"prices", "fetch_gas_url", CT_STRING, "", 0, 0, NULL, NULL, "URL", 0, 0,
     G(prices_fetch_gas_url), "Like fetch_url, for dynamic gas prices (EUR per m3)."},
    {"prices", "fetch_gas_header", CT_STRING, "", 0, 0, NULL, NULL, "HEADER", 0, 1,
     G(prices_fetch_gas_header), "Like fetch_header, for fetch_gas_url."},
    {"prices", "fetch_gas_header_file", CT_STRING, "", 0, 0, NULL, NULL, "PATH", 0, 0,
     G(prices_fetch_gas_header_file), "Like fetch_header_file, for fetch_gas_header."},
    {"prices", "fetch_gas_body", CT_STRING, "", 0, 0, NULL, NULL, "TEXT", 0, 0,
     G(prices_fetch_gas_body), "Like fetch_body, for fetch_gas_url."},
    {"prices", "fetch_gas_day_start", CT_STRING, "", 0, 0, NULL, NULL, "HH:MM", 0, 0,
     G(prices_fetch_gas_day_start),
     "Local time a gas price given by date alone starts in what fetch_gas_url returns (as "
     "gas_day_start of PUT /api/prices), e.g. 06:00; empty = midnight."},
    {"prices", "fetch_after", CT_STRING, "", 0, 0, NULL, NULL, "HH:MM", 0, 0, G(prices_fetch_after),
     "Local time from which tomorrow's prices are expected: fetched then, and every 30 minutes "
     "until they are in. Empty = when day-ahead prices are published, about 13:00 CET: 13:00 "
     "in a CET/CEST calendar, 14:00 in an EET/EEST one."},
    {"prices", "fetch_timeout", CT_DURATION, "30s", 1000, 600000, NULL, NULL, "DURATION", 0, 0,
     G(prices_fetch_timeout),
     "A price download without a complete reply after this long fails and is retried."},
    {"alerts", "url", CT_STRING, "", 0, 0, NULL, NULL, "URL", 0, 0, G(alerts_url),
     "Alerts are POSTed to this http(s) URL (docs/CONFIG.md, Alerts): a meter that goes silent "
     "for [http] stale and comes back, a new power failure, a message from the grid operator, "
     "a quarter hour heading above the month's capacity peak (Belgium). An ntfy topic URL "
     "(https://ntfy.sh/TOPIC) works as it is. Empty = no alerts."},
    {"alerts", "header", CT_STRING, "", 0, 0, NULL, NULL, "HEADER", 0, 1, G(alerts_header),
     "One request header sent with each alert, as Name: value (a token: Authorization: Bearer "
     "TOKEN). Never logged or shown. Empty = none."},
    {"alerts", "header_file", CT_STRING, "", 0, 0, NULL, NULL, "PATH", 0, 0, G(alerts_header_file),
     "File whose first line is header. Set header or header_file, not both."},
    {"alerts", "mqtt", CT_BOOL, "false", 0, 0, NULL, NULL, "BOOL", 0, 0, G(alerts_mqtt),
     "Also publish each alert on MQTT, as JSON on [mqtt] topic_prefix/alerts (not retained), "
     "for a Home Assistant or Node-RED automation; with [mqtt] discovery also a Home Assistant "
     "event entity. Alerts wait while the broker is down. With it url may be empty (alerts on "
     "MQTT only). Needs [mqtt] host."},
    {"alerts", "format", CT_ENUM, "text", 0, 0, "text|json", NULL, "FORMAT", 0, 0, G(alerts_format),
     "text: the message as the body and the title in a Title header (ntfy); json: "
     "{\"event\", \"meter\", \"title\", \"message\", \"time\"} (webhooks)."},
    {"alerts", "events", CT_STRING, "all", 0, 0, NULL, NULL, "LIST", 0, 0, G(alerts_events),
     "Which alerts: all, or a comma-separated list of stale, power_failure, message, capacity, "
     "overload, negative_price and daily."},
    {"alerts", "fuse", CT_INT, "0", 0, 1000, NULL, NULL, "AMPS", 0, 0, G(alerts_fuse),
     "The main fuse per phase in A (25 for 3x25A): a phase that carries more than this for "
     "overload_for raises the overload alert, before the fuse trips. 0 = no overload alerts."},
    {"alerts", "overload_for", CT_DURATION, "1m", 1000, 3600000, NULL, NULL, "DURATION", 0, 0,
     G(alerts_overload_for),
     "How long a phase must carry more than fuse before the overload alert (and stay at or below "
     "it before the next one)."},
    {"alerts", "daily_at", CT_STRING, "", 0, 0, NULL, NULL, "HH:MM", 0, 0, G(alerts_daily_at),
     "Local time at which the daily alert tells yesterday's energy, gas and costs of each meter "
     "(e.g. 07:30; sent at the start when that time of today has passed and it was not sent "
     "yet). Needs [store] db. Empty = no daily alert."},
    {"alerts", "timeout", CT_DURATION, "10s", 1000, 120000, NULL, NULL, "DURATION", 0, 0,
     G(alerts_timeout), "A POST without a complete reply after this long fails and is retried."},
    {"azure", "endpoint", CT_STRING, "", 0, 0, NULL, NULL, "URL", 0, 0, G(azure_endpoint),
     "Azure Table service endpoint (docs/FLEET.md): https://ACCOUNT.table.core.windows.net, or an "
     "emulator URL with the account as its path (http://127.0.0.1:10002/devstoreaccount1). Empty = "
     "no Azure publishing. Needs [store] db."},
    {"azure", "account", CT_STRING, "", 0, 0, NULL, NULL, "NAME", 0, 0, G(azure_account),
     "Storage account name, for SharedKey signing with key or key_file."},
    {"azure", "key", CT_STRING, "", 0, 0, NULL, NULL, "BASE64", 0, 1, G(azure_key),
     "Storage account key (base64, 88 characters)."},
    {"azure", "key_file", CT_STRING, "", 0, 0, NULL, NULL, "PATH", 0, 0, G(azure_key_file),
     "File holding the account key on its first line; instead of key. Re-read on SIGHUP."},
    {"azure", "sas", CT_STRING, "", 0, 0, NULL, NULL, "TOKEN", 0, 1, G(azure_sas),
     "Shared access signature (sv=...&sig=..., allowing table add, update and create) instead of "
     "a key; appended to every request URL."},
    {"azure", "table", CT_STRING, "p1d", 0, 0, NULL, NULL, "NAME", 0, 0, G(azure_table),
     "Table name (a letter, then 2 to 62 letters or digits); created on first use."},
    {"azure", "partition", CT_ENUM, "day", 0, 0, "day|hour", NULL, "SPAN", 0, 0, G(azure_partition),
     "PartitionKey span: METER-YYYYMMDD (day) or METER-YYYYMMDDHH (hour), UTC. Azure takes 2,000 "
     "entities/s per partition either way; hour keeps partitions small (the Azurite emulator "
     "slows down with partition size)."},
    {"azure", "rate", CT_ENUM, "every", 0, 0, "every|interval|minute", NULL, "RATE", 0, 0,
     G(azure_rate),
     "What is sent: every reading, the first reading of each interval, or per-minute aggregates "
     "(energy per minute, mean/min/max power, voltage and current)."},
    {"azure", "interval", CT_SECONDS, "60s", 1000, DAY_MS, NULL, NULL, "DURATION", 0, 0,
     G(azure_interval), "rate = interval: one reading per this long (whole seconds)."},
    {"azure", "batch", CT_INT, "100", 1, 100, NULL, NULL, "N", 0, 0, G(azure_batch),
     "Entities per entity-group transaction (one partition, at most 100)."},
    {"azure", "flush", CT_DURATION, "60s", 0, 3600000, NULL, NULL, "DURATION", 0, 0, G(azure_flush),
     "A batch that is not full waits up to this long for more readings, so a live meter costs "
     "one transaction per batch instead of one per reading; 0 = send at once."},
    {"azure", "parallel", CT_INT, "4", 1, 16, NULL, NULL, "N", 0, 0, G(azure_parallel),
     "Transactions in flight at once; more drains a backlog faster."},
    {"azure", "timeout", CT_DURATION, "30s", 1000, 600000, NULL, NULL, "DURATION", 0, 0,
     G(azure_timeout), "A request without a complete reply after this long fails and is retried."},
    {"azure", "enabled", CT_BOOL, "true", 0, 0, NULL, NULL, "BOOL", 0, 0, G(azure_enabled),
     "false keeps the [azure] settings but publishes nothing."},
    {"mqtt", "enabled", CT_BOOL, "true", 0, 0, NULL, NULL, "BOOL", 0, 0, G(mqtt_enabled),
     "Publish over MQTT when host is set; false keeps the section but turns MQTT off."},
    {"mqtt", "host", CT_STRING, "", 0, 0, NULL, NULL, "HOST", 0, 0, G(mqtt_host),
     "MQTT broker host name or address; empty = no MQTT (docs/PUBLISHING.md)."},
    {"mqtt", "port", CT_INT, "0", 0, 65535, NULL, NULL, "PORT", 0, 0, G(mqtt_port),
     "Broker port; 0 = 1883, or 8883 with tls."},
    {"mqtt", "username", CT_STRING, "", 0, 0, NULL, NULL, "USER", 0, 0, G(mqtt_username),
     "User name for the broker; empty = anonymous."},
    {"mqtt", "password", CT_STRING, "", 0, 0, NULL, NULL, "PASS", 0, 1, G(mqtt_password),
     "Password for the broker (prefer password_file)."},
    {"mqtt", "password_file", CT_STRING, "", 0, 0, NULL, NULL, "PATH", 0, 0, G(mqtt_password_file),
     "File whose first line is the broker password; wins over password."},
    {"mqtt", "client_id", CT_STRING, "", 0, 0, NULL, NULL, "ID", 0, 0, G(mqtt_client_id),
     "MQTT client id; empty = p1d-HOSTNAME-PID."},
    {"mqtt", "keepalive", CT_SECONDS, "60s", 5000, 3600000, NULL, NULL, "DURATION", 0, 0,
     G(mqtt_keepalive),
     "MQTT keepalive: a silent connection is found dead after about 1.5 times this."},
    {"mqtt", "tls", CT_BOOL, "false", 0, 0, NULL, NULL, "BOOL", 0, 0, G(mqtt_tls),
     "Connect with TLS (certificate and host name verified)."},
    {"mqtt", "ca_file", CT_STRING, "", 0, 0, NULL, NULL, "PATH", 0, 0, G(mqtt_ca_file),
     "tls: PEM file of the CA that signed the broker's certificate (checked at the start); "
     "empty = the system's CAs."},
    {"mqtt", "tls_insecure", CT_BOOL, "false", 0, 0, NULL, NULL, "BOOL", 0, 0, G(mqtt_tls_insecure),
     "tls: skip the host name check of the broker's certificate (testing only)."},
    {"mqtt", "topic_prefix", CT_STRING, "p1d", 0, 0, NULL, NULL, "PREFIX", 0, 0,
     G(mqtt_topic_prefix),
     "Topics are PREFIX/METER/state, PREFIX/METER/FIELD and PREFIX/status (online/offline). "
     "Not empty, no '+', '#', '//' or '/' at its end."},
    {"mqtt", "discovery", CT_BOOL, "true", 0, 0, NULL, NULL, "BOOL", 0, 0, G(mqtt_discovery),
     "Announce every field to Home Assistant (MQTT discovery, retained)."},
    {"mqtt", "discovery_prefix", CT_STRING, "homeassistant", 0, 0, NULL, NULL, "PREFIX", 0, 0,
     G(mqtt_discovery_prefix),
     "Home Assistant's discovery prefix; 'online' on DISCOVERY_PREFIX/status "
     "(homeassistant/status by default) makes p1d announce again. Not empty, no '+', '#', '//' "
     "or '/' at its end."},
    {"mqtt", "qos", CT_INT, "0", 0, 1, NULL, NULL, "N", 0, 0, G(mqtt_qos),
     "QoS of state and field messages (discovery always uses 1). With 1 a reading counts as "
     "delivered only after the broker's PUBACK."},
    {"mqtt", "retain", CT_BOOL, "true", 0, 0, NULL, NULL, "BOOL", 0, 0, G(mqtt_retain),
     "Retain state and field messages, so a subscriber gets the latest value at once."},
    {"mqtt", "rate_power", CT_DURATION, "10s", 0, DAY_MS, NULL, NULL, "DURATION", 0, 0,
     G(mqtt_rate_power), "At most one message per power field per this long; 0 = every change."},
    {"mqtt", "rate_voltage", CT_DURATION, "10s", 0, DAY_MS, NULL, NULL, "DURATION", 0, 0,
     G(mqtt_rate_voltage),
     "At most one message per voltage field per this long; 0 = every change."},
    {"mqtt", "rate_current", CT_DURATION, "10s", 0, DAY_MS, NULL, NULL, "DURATION", 0, 0,
     G(mqtt_rate_current),
     "At most one message per current field per this long; 0 = every change."},
    {"mqtt", "rate_counter", CT_DURATION, "0s", 0, DAY_MS, NULL, NULL, "DURATION", 0, 0,
     G(mqtt_rate_counter),
     "Energy, gas, water and tariff: at most one message per this long; 0 = on every change."},
    {"mqtt", "state_interval", CT_DURATION, "10s", 0, DAY_MS, NULL, NULL, "DURATION", 0, 0,
     G(mqtt_state_interval), "At most one JSON state message per meter per this long."},
    {"mqtt", "dsmr_reader", CT_BOOL, "false", 0, 0, NULL, NULL, "BOOL", 0, 0, G(mqtt_dsmr_reader),
     "Also publish dsmr-reader's topics (dsmr/reading/...) for tools built for it."},
    {"mqtt", "dsmr_meter", CT_STRING, "", 0, 0, NULL, NULL, "NAME", 0, 0, G(mqtt_dsmr_meter),
     "dsmr_reader: the meter whose readings go there; empty = the first configured source."},
    {"mqtt", "reconnect_max", CT_DURATION, "60s", 1000, 3600000, NULL, NULL, "DURATION", 0, 0,
     G(mqtt_reconnect_max),
     "Reconnect delays double from 1 s up to this; refused credentials wait this long."},
    {"influxdb", "enabled", CT_BOOL, "true", 0, 0, NULL, NULL, "BOOL", 0, 0, G(influx_enabled),
     "Write to InfluxDB when url is set; false keeps the section but turns it off."},
    {"influxdb", "url", CT_STRING, "", 0, 0, NULL, NULL, "URL", 0, 0, G(influx_url),
     "InfluxDB base URL (http://127.0.0.1:8086); empty = no InfluxDB. Needs [store] db. A "
     "user:password@ in it is sent as basic auth and never shown."},
    {"influxdb", "database", CT_STRING, "", 0, 0, NULL, NULL, "DB", 0, 0, G(influx_database),
     "InfluxDB 1.x: database to write to (/write?db=DB); give this or bucket and org."},
    {"influxdb", "bucket", CT_STRING, "", 0, 0, NULL, NULL, "BUCKET", 0, 0, G(influx_bucket),
     "InfluxDB 2.x: bucket (/api/v2/write?org=ORG&bucket=BUCKET), with org and a token."},
    {"influxdb", "org", CT_STRING, "", 0, 0, NULL, NULL, "ORG", 0, 0, G(influx_org),
     "InfluxDB 2.x: organisation name or id."},
    {"influxdb", "username", CT_STRING, "", 0, 0, NULL, NULL, "USER", 0, 0, G(influx_username),
     "InfluxDB 1.x: user name; empty = no authentication."},
    {"influxdb", "password", CT_STRING, "", 0, 0, NULL, NULL, "PASS", 0, 1, G(influx_password),
     "InfluxDB 1.x: password (prefer password_file)."},
    {"influxdb", "password_file", CT_STRING, "", 0, 0, NULL, NULL, "PATH", 0, 0,
     G(influx_password_file), "File whose first line is the InfluxDB 1.x password."},
    {"influxdb", "token", CT_STRING, "", 0, 0, NULL, NULL, "TOKEN", 0, 1, G(influx_token),
     "InfluxDB 2.x: API token (Authorization: Token ...; prefer token_file)."},
    {"influxdb", "token_file", CT_STRING, "", 0, 0, NULL, NULL, "PATH", 0, 0, G(influx_token_file),
     "File whose first line is the InfluxDB 2.x token."},
    {"influxdb", "measurement", CT_STRING, "p1", 0, 0, NULL, NULL, "NAME", 0, 0,
     G(influx_measurement),
     "Measurement name of the points (tag meter=NAME); a comma or space is escaped, a control "
     "character, a backslash or a leading # is refused."},
    {"influxdb", "rate", CT_ENUM, "every", 0, 0, "every|interval|minute", NULL, "RATE", 0, 0,
     G(influx_rate),
     "Which stored points are written: every reading, one per interval, or 1-minute aggregates."},
    {"influxdb", "interval", CT_SECONDS, "60s", 1000, DAY_MS, NULL, NULL, "DURATION", 0, 0,
     G(influx_interval), "rate = interval: one point per this long."},
    {"influxdb", "batch", CT_INT, "5000", 1, 50000, NULL, NULL, "N", 0, 0, G(influx_batch),
     "Most lines per write request."},
    {"influxdb", "timeout", CT_DURATION, "10s", 1000, 600000, NULL, NULL, "DURATION", 0, 0,
     G(influx_timeout), "A write that takes longer fails and is retried with backoff."},

    {"source", "spec", CT_STRING, "", 0, 0, NULL, NULL, "SPEC", 0, 0, S(spec),
     "Where the telegrams come from: serial:DEVICE[:auto|115200|9600], tcp:HOST:PORT, file:PATH, "
     "stdin (or -), sim[:SEED]. Any source key may follow as :key=value."},
    {"source", "baud", CT_ENUM, "auto", 0, 0, "auto|115200|9600", NULL, "BAUD", CONFIG_SERIAL, 0,
     S(baud),
     "Serial speed: 115200 (8N1, DSMR 4/5), 9600 (7E1, DSMR 2.2/3.0), or auto (try 115200 "
     "first, then alternate)."},
    {"source", "parity", CT_ENUM, "auto", 0, 0, "auto|none|even", NULL, "PARITY", CONFIG_SERIAL, 0,
     S(parity),
     "Serial character format at 115200: none (8N1), even (7E1), or auto (8N1, and text that "
     "only decodes with bit 7 cleared is taken as 7E1)."},
    {"source", "detect_timeout", CT_DURATION, "12s", 1000, 600000, NULL, NULL, "DURATION", STREAM,
     0, S(detect_timeout),
     "baud=auto: switch to the other speed when bytes arrive but no telegram decoded for this "
     "long (the window doubles per round, up to 4 times this). A silent line keeps its speed. "
     "Bytes without a telegram for this long (baud=auto: once both speeds had a window) are "
     "reported: a cable "
     "that does not invert the signal, or the wrong speed (tcp: the dongle's or ser2net's)."},
    {"source", "crc", CT_ENUM, "optional", 0, 0, "optional|required|ignore", NULL, "POLICY", 0, 0,
     S(crc),
     "CRC policy: optional (verify when sent), required (reject telegrams without CRC), ignore "
     "(never reject on CRC). A garbled value of a known object still rejects the telegram "
     "(bad_value, docs/DECODE.md)."},
    {"source", "key", CT_STRING, "", 0, 0, NULL, NULL, "HEX", 0, 1, S(key),
     "Decryption key (32 hex digits) for encrypted meters (Luxembourg Smarty, Austria). A "
     "missing or wrong key is a warning and the meter's last_error."},
    {"source", "ak", CT_STRING, "", 0, 0, NULL, NULL, "HEX", 0, 1, S(ak),
     "Authentication key (32 hex digits); empty = the Smarty default "
     "00112233445566778899AABBCCDDEEFF."},
    {"source", "key_file", CT_STRING, "", 0, 0, NULL, NULL, "PATH", 0, 0, S(key_file),
     "File holding the key on its first line and optionally the authentication key on its second; "
     "instead of key/ak."},
    {"source", "skip_tag", CT_BOOL, "false", 0, 0, NULL, NULL, "BOOL", 0, 0, S(skip_tag),
     "Do not verify the GCM tag of encrypted frames, for a meter whose authentication key is "
     "unknown (some Austrian ones); each telegram's own CRC must then match. Needs key."},
    {"source", "idle_timeout", CT_DURATION, "30s", 100, DAY_MS, NULL, NULL, "DURATION", STREAM, 0,
     S(idle_timeout),
     "No byte for this long: a TCP connection counts as dead and is reopened; a serial line is "
     "reported idle and, with idle_reopen, closed and reopened."},
    {"source", "idle_reopen", CT_BOOL, "true", 0, 0, NULL, NULL, "BOOL", CONFIG_SERIAL, 0,
     S(idle_reopen),
     "A serial line silent for idle_timeout is closed and reopened (termios and DTR/RTS applied "
     "anew), which revives USB cables that wedge after a glitch or a meter reboot; while it stays "
     "silent, again after each idle_timeout plus a pause of reconnect_min doubling up to "
     "reconnect_max. false = only report the silence."},
    {"source", "reconnect_min", CT_DURATION, "1s", 10, 3600000, NULL, NULL, "DURATION", STREAM, 0,
     S(reconnect_min), "First delay before reopening a lost device or connection."},
    {"source", "reconnect_max", CT_DURATION, "30s", 10, 3600000, NULL, NULL, "DURATION", STREAM, 0,
     S(reconnect_max),
     "The delay doubles after each failure up to this cap; not less than reconnect_min. A TCP "
     "source waits a random 50-100 % of each delay, so dongles that dropped together reconnect "
     "spread out."},
    {"source", "connect_timeout", CT_DURATION, "10s", 100, 600000, NULL, NULL, "DURATION",
     CONFIG_TCP, 0, S(connect_timeout), "TCP connect attempts give up after this long."},
    {"source", "pace", CT_ENUM, "fast", 0, 0, "fast|recorded", NULL, "PACE",
     CONFIG_FILE | CONFIG_STDIN, 0, S(pace),
     "Replay as fast as possible, or at the recorded pace (from the telegrams' 0-0:1.0.0 times)."},
    {"source", "speedup", CT_INT, "1", 1, 100000, NULL, NULL, "N",
     CONFIG_FILE | CONFIG_STDIN | CONFIG_SIM, 0, S(speedup),
     "Simulator and pace=recorded: run time this many times faster than real time."},
    {"source", "interval", CT_SECONDS, "1s", 1000, 3600000, NULL, NULL, "DURATION", CONFIG_SIM, 0,
     S(interval), "Simulator: telegram interval in simulated time (whole seconds)."},
    {"source", "seed", CT_INT, "1", 0, 2147483647, NULL, NULL, "N", CONFIG_SIM, 0, S(seed),
     "Simulator: seed of the simulated household (also sim:SEED, but not both in one spec)."},
    {"source", "clock", CT_ENUM, "auto", 0, 0, "auto|meter|system", NULL, "CLOCK", 0, 0, S(clock),
     "Time stamp of stored readings: the meter's clock, the system's, or auto (the meter's unless "
     "it is a placeholder or more than 5 minutes off the system clock; while the kernel calls the "
     "system clock unsynchronised, a meter ahead of it is used)."},
};
#define NKEYS (sizeof config_keys / sizeof config_keys[0])
_Static_assert(NKEYS <= CONFIG_KEYS_MAX, "config.line[] is too short for the key table");

/* The sections besides [source NAME], each at most once in a file. */
static const char *const config_sections[] = {"http",  "relay", "log",  "store",    "prices",
                                              "azure", "mqtt",  "influxdb", "alerts"};
#define NSECTIONS (sizeof config_sections / sizeof config_sections[0])

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------------- */

static void fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

static char *trim(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Where a comment would start in an unquoted value: a '#' or ';' at its start or after a space
 * or tab, or NULL. p1d reads comments only on lines of their own (as systemd and mosquitto do),
 * so text there is an error, never silently part of the value nor silently dropped; '#' and ';'
 * inside a word (a URL's fragment, "pa#ss") are the value's. */
static const char *comment_in(const char *value)
{
    for (const char *p = value; *p; p++)
        if ((*p == '#' || *p == ';') && (p == value || p[-1] == ' ' || p[-1] == '\t'))
            return p;
    return NULL;
}

/* Whether config_print must quote value for the file to read it back as it is. */
static int needs_quotes(const char *value)
{
    size_t n = strlen(value);
    return n && (isspace((unsigned char)value[0]) || isspace((unsigned char)value[n - 1]) ||
                 value[0] == '"' || value[0] == '\'' || comment_in(value));
}

static int is_source_key(const config_key *k)
{
    return strcmp(k->section, "source") == 0;
}

static size_t key_index(const config_key *k)
{
    return (size_t)(k - config_keys);
}

static const config_key *find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(config_keys[i].section, section) == 0 && strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    return NULL;
}

/* The n-th choice of an enum key into out[cap]. */
static const char *enum_choice(const config_key *k, int64_t n, char *out, size_t cap)
{
    const char *p = k->choices;
    for (int64_t i = 0; p; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (i == n) {
            if (len >= cap)
                len = cap - 1;
            memcpy(out, p, len);
            out[len] = '\0';
            return out;
        }
        p = bar ? bar + 1 : NULL;
    }
    return "?";
}

const char *config_listen_host(const char *host)
{
    return strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
}

int config_addr_split(const char *s, char *host, size_t hcap, unsigned *port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return -1; /* a bare IPv6 address needs brackets */
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= hcap)
        return -1;
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5)
        return -1;
    unsigned v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > 65535)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = v;
    return 0;
}

static int parse_int(const char *s, int64_t *out)
{
    if (*s == '\0')
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* "1500ms", "2s", "1.5s", "5m", "1h"; a bare number is seconds. */
static int parse_duration(const char *s, int64_t *out_ms)
{
    int64_t whole = 0, frac = 0, fdiv = 1;
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (whole > INT64_MAX / 100000)
            return -1;
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        for (; isdigit((unsigned char)*p); p++) {
            if (fdiv < 1000000) {
                frac = frac * 10 + (*p - '0');
                fdiv *= 10;
            }
        }
    }
    int64_t unit;
    if (*p == '\0' || strcmp(p, "s") == 0)
        unit = 1000;
    else if (strcmp(p, "ms") == 0)
        unit = 1;
    else if (strcmp(p, "m") == 0 || strcmp(p, "min") == 0)
        unit = 60000;
    else if (strcmp(p, "h") == 0)
        unit = 3600000;
    else
        return -1;
    if (whole > (INT64_MAX - unit) / unit)
        return -1;
    *out_ms = whole * unit + frac * unit / fdiv;
    return 0;
}

static void format_duration(int64_t ms, char *out, size_t cap)
{
    if (ms % 3600000 == 0 && ms >= 3600000)
        snprintf(out, cap, "%" PRId64 "h", ms / 3600000);
    else if (ms % 60000 == 0 && ms >= 60000)
        snprintf(out, cap, "%" PRId64 "m", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(out, cap, "%" PRId64 "s", ms / 1000);
    else
        snprintf(out, cap, "%" PRId64 "ms", ms);
}

/* What a key expects, for error messages. */
static void expected(const config_key *k, char *out, size_t cap)
{
    char a[32], b[32];
    switch (k->type) {
    case CT_STRING:
        snprintf(out, cap, "a string of at most %zu bytes", k->size - 1);
        break;
    case CT_INT:
        snprintf(out, cap, "an integer from %" PRId64 " to %" PRId64, k->min, k->max);
        break;
    case CT_BOOL:
        snprintf(out, cap, "true or false");
        break;
    case CT_ENUM:
        snprintf(out, cap, "one of %s", k->choices);
        break;
    case CT_DURATION:
        format_duration(k->min, a, sizeof a);
        format_duration(k->max, b, sizeof b);
        snprintf(out, cap, "a duration from %s to %s (e.g. 500ms, 2s, 5m)", a, b);
        break;
    case CT_SECONDS:
        format_duration(k->min, a, sizeof a);
        format_duration(k->max, b, sizeof b);
        snprintf(out, cap, "a whole number of seconds from %s to %s (e.g. 2s, 90s, 5m)", a, b);
        break;
    case CT_ADDR:
        snprintf(out, cap, "HOST:PORT or [IPv6]:PORT%s", k->def[0] == '\0' ? ", or empty for off" : "");
        break;
    }
}

/* Stores value into the key's field of base. Returns 0, or -1 with "expected ..." in err. */
static int key_set(const config_key *k, void *base, const char *value, char *err, size_t cap)
{
    char *field = (char *)base + k->offset;
    int64_t v = 0;
    int ok = 1;
    switch (k->type) {
    case CT_STRING:
        ok = strlen(value) < k->size;
        if (ok)
            memcpy(field, value, strlen(value) + 1);
        return ok ? 0 : (expected(k, err, cap), -1);
    case CT_ADDR: {
        char host[CONFIG_STR_MAX];
        unsigned port;
        ok = strlen(value) < k->size &&
             (value[0] == '\0' ? k->def[0] == '\0'
                               : config_addr_split(value, host, sizeof host, &port) == 0);
        if (ok)
            memcpy(field, value, strlen(value) + 1);
        return ok ? 0 : (expected(k, err, cap), -1);
    }
    case CT_INT:
        ok = parse_int(value, &v) == 0 && v >= k->min && v <= k->max;
        break;
    case CT_DURATION:
        ok = parse_duration(value, &v) == 0 && v >= k->min && v <= k->max;
        break;
    case CT_SECONDS:
        ok = parse_duration(value, &v) == 0 && v % 1000 == 0 && v >= k->min && v <= k->max;
        break;
    case CT_BOOL:
        if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") || !strcasecmp(value, "on") ||
            !strcmp(value, "1"))
            v = 1;
        else if (!strcasecmp(value, "false") || !strcasecmp(value, "no") ||
                 !strcasecmp(value, "off") || !strcmp(value, "0"))
            v = 0;
        else
            ok = 0;
        break;
    case CT_ENUM: {
        char c[64];
        ok = 0;
        for (int64_t i = 0; i < 16; i++) {
            const char *name = enum_choice(k, i, c, sizeof c);
            if (strcmp(name, "?") == 0)
                break;
            if (strcmp(name, value) == 0) {
                v = i;
                ok = 1;
                break;
            }
        }
        break;
    }
    }
    if (!ok) {
        expected(k, err, cap);
        return -1;
    }
    memcpy(field, &v, sizeof v);
    return 0;
}

/* A value as error messages and --check-config may show it: never a secret's. */
/* value as an error message quotes it: a secret masked, a long one cut (the message must keep
 * room to say what was expected). */
#define SHOWN_MAX 120
static const char *shown(const config_key *k, const char *value, char *buf, size_t cap)
{
    if (k->secret && value[0])
        return "********";
    size_t n = strlen(value);
    if (n <= SHOWN_MAX)
        return value;
    snprintf(buf, cap, "%.*s... (%zu bytes)", SHOWN_MAX - 20, value, n);
    return buf;
}

/* Appends "[section] key" to the ", "-separated list in out[cap]. */
static void list_add(char *out, size_t cap, size_t count, const char *section, const char *name,
                     const char *key)
{
    size_t o = strlen(out);
    if (o + 1 < cap)
        snprintf(out + o, cap - o, "%s[%s%s%s] %s", count ? ", " : "", section, name[0] ? " " : "",
                 name, key);
}

/* The secrets a *_file may hold instead: read at every load (start, reload, --check-config),
 * so that a systemd credential (LoadCredential=) works and a changed file counts on reload. */
static const struct {
    const char *section, *file_key, *key;
} secret_files[] = {
    {"http", "token_file", "token"},
    {"http", "basic_pass_file", "basic_pass"},
    {"prices", "fetch_header_file", "fetch_header"},
    {"prices", "fetch_gas_header_file", "fetch_gas_header"},
    {"alerts", "header_file", "header"},
};

/* The *_file key that may hold k's value instead, or NULL. */
static const config_key *secret_file_of(const config_key *k)
{
    for (size_t i = 0; i < sizeof secret_files / sizeof secret_files[0]; i++)
        if (strcmp(k->section, secret_files[i].section) == 0 &&
            strcmp(k->name, secret_files[i].key) == 0)
            return find_key(k->section, secret_files[i].file_key);
    return NULL;
}

size_t config_file_secrets(const config *c, char *out, size_t cap)
{
    size_t count = 0;
    if (cap)
        out[0] = '\0';
    for (size_t i = 0; i < NKEYS; i++) {
        const config_key *k = &config_keys[i];
        if (!k->secret && (strcmp(k->name, "url") == 0 || strstr(k->name, "_url")) &&
            c->line[i] > 0) {
            const char *url = (const char *)c + k->offset;
            char shown_url[CONFIG_STR_MAX];
            if (strcmp(config_url_public(url, shown_url, sizeof shown_url), url) != 0)
                list_add(out, cap, count++, k->section, "", k->name); /* a password, a token */
            continue;
        }
        if (!k->secret)
            continue;
        if (!is_source_key(k)) {
            /* a value read from the key's *_file (an empty `token =` line left beside
             * token_file, as the example file has it) is not in this file */
            const config_key *fk = secret_file_of(k);
            if (fk && ((const char *)c + fk->offset)[0])
                continue;
            if (c->line[i] > 0 && ((const char *)c + k->offset)[0])
                list_add(out, cap, count++, k->section, "", k->name);
            continue;
        }
        for (size_t s = 0; s < c->nsources; s++) {
            const config_source *src = &c->sources[s];
            uint64_t bit = 1ull << (i & 63);
            if ((src->set & bit) && src->set_line[i & 63] > 0 &&
                ((const char *)src + k->offset)[0])
                list_add(out, cap, count++, "source", src->name, k->name);
        }
    }
    return count;
}

#define CONFIG_SECRET_MAX 1024 /* bytes of the longest secret a *_file may hold */

static int read_line(FILE *f, char *line, size_t cap, size_t *len, size_t *total, size_t max);

/* For a file that cannot be opened with errno e: "" or, for a relative path that does not
 * exist, where it was looked for. A relative path is the working directory's, not the config
 * file's: under systemd that is /var/lib/p1d (WorkingDirectory=), where --check-config run by
 * hand in /etc looked elsewhere. */
static const char *relative_note(const char *path, int e, char *out, size_t cap)
{
    char cwd[CONFIG_STR_MAX];
    out[0] = '\0';
    if (e == ENOENT && path[0] != '/' && getcwd(cwd, sizeof cwd))
        snprintf(out, cap,
                 " (a relative path is read from p1d's working directory, %s, not from "
                 "the config file's)",
                 cwd);
    return out;
}

int config_read_secret(const char *what, const char *path, char *out, size_t cap, char *err,
                       size_t errcap)
{
    char line[CONFIG_SECRET_MAX + 2], note[CONFIG_STR_MAX + 96];
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        fail(err, errcap, "%s = '%s': %s%s", what, path, strerror(e),
             relative_note(path, e, note, sizeof note));
        return -1;
    }
    size_t len = 0, total = 0;
    errno = 0;
    int ok = read_line(f, line, sizeof line, &len, &total, sizeof line) == 0;
    int e = errno;
    fclose(f);
    /* A NUL would cut the secret short without a word (a binary file, a key in raw bytes). */
    if (ok && memchr(line, '\0', len < sizeof line - 1 ? len : sizeof line - 1)) {
        fail(err, errcap, "%s = '%s': the first line holds a NUL byte: expected text", what, path);
        explicit_bzero(line, sizeof line);
        return -1;
    }
    size_t n = ok ? strcspn(line, "\r\n") : 0;
    if (!ok || n == 0 || n >= cap || n > CONFIG_SECRET_MAX) {
        if (ok && n)
            fail(err, errcap, "%s = '%s': the first line is longer than %zu bytes", what, path,
                 (cap - 1 < CONFIG_SECRET_MAX ? cap - 1 : CONFIG_SECRET_MAX));
        else
            fail(err, errcap, "%s = '%s': %s", what, path,
                 !ok && e == EISDIR ? strerror(e) : "the first line is empty");
        explicit_bzero(line, sizeof line);
        return -1;
    }
    memcpy(out, line, n);
    out[n] = '\0';
    explicit_bzero(line, sizeof line);
    return 0;
}

int config_http_header_check(const char *h, const char *what, char *why, size_t cap)
{
    size_t name = strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                            "!#$%&'*+-.^_`|~");
    const char *v = h + name;
    if (name == 0 || *v != ':') {
        snprintf(why, cap,
                 "%s: expected one header as Name: value, such as Authorization: Bearer TOKEN "
                 "(a name of letters, digits or -, then ':'; the value is not shown)",
                 what);
        return -1;
    }
    for (v++; *v == ' ' || *v == '\t'; v++)
        ;
    if (!*v) {
        snprintf(why, cap, "%s: the header '%.*s' has no value", what, (int)name, h);
        return -1;
    }
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 ? *v != '\t' : *v == 0x7f) {
            snprintf(why, cap,
                     "%s: the value of the header '%.*s' holds a control character (the value "
                     "is not shown)",
                     what, (int)name, h);
            return -1;
        }
    return 0;
}

/* Whether a query parameter named name[len] holds a secret (ENTSO-E's securityToken, an
 * api_key, an access_token, Azure's SAS sig, a password): its name holds one of these. */
static int secret_param(const char *name, size_t len)
{
    static const char *const words[] = {"token", "key", "secret", "pass", "pwd", "sig", "auth"};
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
        size_t wl = strlen(words[w]);
        for (size_t i = 0; i + wl <= len; i++)
            if (strncasecmp(name + i, words[w], wl) == 0)
                return 1;
    }
    return 0;
}

const char *config_url_public(const char *url, char *out, size_t cap)
{
    if (!cap)
        return out;
    const char *auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p; /* the last one: a password may hold an unescaped '@' */
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon)
        snprintf(out, cap, "%s", url);
    else
        snprintf(out, cap, "%.*s********%s", (int)(colon + 1 - url), url, at);
    /* the query: the value of each parameter whose name says it is a secret */
    for (char *q = strchr(out, '?'), *end; q; q = *end == '&' ? end : NULL) {
        char *name = q + 1;
        end = name + strcspn(name, "&#");
        char *eq = memchr(name, '=', (size_t)(end - name));
        if (eq && eq + 1 < end && secret_param(name, (size_t)(eq - name))) {
            size_t tail = strlen(end), o = (size_t)(eq + 1 - out);
            if (o + 8 + tail < cap) { /* "********" in place of the value */
                memmove(eq + 1 + 8, end, tail + 1);
                memcpy(eq + 1, "********", 8);
                end = eq + 1 + 8;
            } else {
                eq[1] = '\0'; /* no room: nothing after the name is shown */
                break;
            }
        }
    }
    return out;
}

const char *config_url_shown(const char *url, char *out, size_t cap)
{
    config_url_public(url, out, cap);
    if (cap)
        out[strcspn(out, "?#")] = '\0';
    return out;
}

void config_spec_public(const char *spec, char *out, size_t cap)
{
    size_t o = 0;
    if (!cap)
        return;
    out[0] = '\0';
    for (const char *p = spec; o + 1 < cap;) {
        size_t n = strcspn(p, ":");
        const char *eq = memchr(p, '=', n);
        char name[32];
        int hide = 0;
        if (eq && (size_t)(eq - p) < sizeof name) {
            memcpy(name, p, (size_t)(eq - p));
            name[eq - p] = '\0';
            const config_key *k = find_key("source", name);
            hide = k && k->secret && eq + 1 < p + n;
        }
        int w = hide ? snprintf(out + o, cap - o, "%.*s********", (int)(eq + 1 - p), p)
                     : snprintf(out + o, cap - o, "%.*s", (int)n, p);
        o += w < 0 ? 0 : (size_t)w < cap - o ? (size_t)w : cap - o - 1;
        if (p[n] != ':' || o + 2 > cap)
            break;
        out[o++] = ':';
        out[o] = '\0';
        p += n + 1;
    }
}

/* The key's current value as text, for --check-config. */
static void key_format(const config_key *k, const void *base, char *out, size_t cap)
{
    const char *field = (const char *)base + k->offset;
    int64_t v;
    if (k->type == CT_STRING || k->type == CT_ADDR) {
        if (strcmp(k->name, "spec") == 0 && is_source_key(k))
            config_spec_public(field, out, cap);
        else if (strcmp(k->name, "url") == 0 || strstr(k->name, "_url"))
            config_url_public(field, out, cap);
        else
            snprintf(out, cap, "%s", k->secret && field[0] ? "********" : field);
        return;
    }
    memcpy(&v, field, sizeof v);
    switch (k->type) {
    case CT_INT:
        snprintf(out, cap, "%" PRId64, v);
        break;
    case CT_BOOL:
        snprintf(out, cap, "%s", v ? "true" : "false");
        break;
    case CT_ENUM:
        enum_choice(k, v, out, cap);
        break;
    case CT_DURATION:
    case CT_SECONDS:
        format_duration(v, out, cap);
        break;
    default:
        break;
    }
}

static void defaults(void *base, int source)
{
    char err[CONFIG_ERR_MAX];
    for (size_t i = 0; i < NKEYS; i++) {
        const config_key *k = &config_keys[i];
        if (is_source_key(k) == source && key_set(k, base, k->def, err, sizeof err) < 0)
            abort(); /* a default outside its own bounds is a bug in the table */
    }
}

/* ---------------------------------------------------------------------------------------------
 * Sources
 * ------------------------------------------------------------------------------------------- */

const char *config_kind_name(config_kind k)
{
    switch (k) {
    case CONFIG_SERIAL:
        return "serial";
    case CONFIG_TCP:
        return "tcp";
    case CONFIG_FILE:
        return "file";
    case CONFIG_STDIN:
        return "stdin";
    case CONFIG_SIM:
        return "sim";
    }
    return "unknown";
}

static config_source *source_get(config *c, const char *name, int create, char *err, size_t cap)
{
    for (size_t i = 0; i < c->nsources; i++)
        if (strcmp(c->sources[i].name, name) == 0)
            return &c->sources[i];
    if (!create) {
        fail(err, cap, "no source named '%s' (define it with --source %s=SPEC or [source %s])",
             name, name, name);
        return NULL;
    }
    if (!meter_name_valid(name)) {
        fail(err, cap, "source name '%s': expected 1 to %d letters, digits, '_' or '-'", name,
             METER_NAME_MAX);
        return NULL;
    }
    if (c->nsources >= METERS_MAX) {
        fail(err, cap, "more than %d sources", METERS_MAX);
        return NULL;
    }
    if (c->nsources == c->capsources) {
        size_t ncap = c->capsources ? c->capsources * 2 : 8;
        config_source *l = realloc(c->sources, ncap * sizeof *l);
        if (!l) {
            fail(err, cap, "out of memory");
            return NULL;
        }
        c->sources = l;
        c->capsources = ncap;
    }
    config_source *s = &c->sources[c->nsources++];
    memset(s, 0, sizeof *s);
    copy_str(s->name, sizeof s->name, name);
    defaults(s, 1);
    return s;
}

static void key_hint(const char *section, const char *key, char *out, size_t cap);

/* Sets a source key; `where` prefixes errors, `line` (0 = command line) is kept for later ones. */
static int source_set(config_source *s, const char *key, const char *value, const char *where,
                      int line, char *err, size_t cap)
{
    const config_key *k = find_key("source", key);
    char why[CONFIG_ERR_MAX];
    if (!k) {
        char hint[160];
        key_hint("source", key, hint, sizeof hint);
        fail(err, cap, "%s: [source %s] unknown key '%s'%s", where, s->name, key, hint);
        return -1;
    }
    if (key_set(k, s, value, why, sizeof why) < 0) {
        char cut[SHOWN_MAX + 32];
        fail(err, cap, "%s: [source %s] %s = '%s': expected %s", where, s->name, key,
             shown(k, value, cut, sizeof cut), why);
        return -1;
    }
    s->set |= 1ull << (key_index(k) & 63);
    s->set_line[key_index(k) & 63] = line;
    if (strcmp(key, "spec") == 0)
        copy_str(s->origin, sizeof s->origin, where);
    return 0;
}

static int is_baud_word(const char *s)
{
    return !strcmp(s, "auto") || !strcmp(s, "115200") || !strcmp(s, "9600");
}

/* Derives kind and target from spec and applies ":key=value" options and positional arguments. */
static int source_finish_spec(config_source *s, char *err, size_t cap)
{
    char body[CONFIG_STR_MAX];
    const char *where = s->origin[0] ? s->origin : "config";
    int spec_line = s->set_line[key_index(find_key("source", "spec")) & 63];
    if (s->spec[0] == '\0') {
        fail(err, cap, "%s: [source %s] has no spec (serial:DEVICE, tcp:HOST:PORT, file:PATH, "
                       "stdin or sim[:SEED])",
             where, s->name);
        return -1;
    }
    copy_str(body, sizeof body, s->spec);
    char spec[CONFIG_STR_MAX]; /* for messages: without key=/ak= values */
    config_spec_public(s->spec, spec, sizeof spec);
    uint64_t in_spec = 0; /* keys given as :key=value in this spec */
    /* Options come last: peel ":key=value" segments off the end. */
    for (;;) {
        char *colon = strrchr(body, ':');
        if (!colon || !strchr(colon + 1, '='))
            break;
        char *opt = colon + 1, *eq = strchr(opt, '=');
        *eq = '\0';
        *colon = '\0';
        char place[CONFIG_STR_MAX + 32];
        snprintf(place, sizeof place, "%s: spec option", where);
        if (strcmp(opt, "spec") == 0) {
            fail(err, cap, "%s: [source %s] spec option 'spec' is not allowed", where, s->name);
            return -1;
        }
        const config_key *k = find_key("source", opt);
        uint64_t bit = k ? 1ull << (key_index(k) & 63) : 0;
        if (in_spec & bit) {
            fail(err, cap, "%s: [source %s] spec '%s': option '%s' given twice", where, s->name,
                 spec, opt);
            return -1;
        }
        in_spec |= bit;
        if (k && (s->set & bit) && s->set_line[key_index(k) & 63] == 0 && spec_line == 0) {
            /* --key or --ak for a source whose --source spec has the option too (both flags,
             * line 0): the spec's value, set last, would replace it without a word, as a flag
             * given twice would (an error, apply_flags()); a spec of the file is left as it was */
            fail(err, cap, "--%s %s given twice (also as %s= in the spec of %s): give it once", opt,
                 s->name, opt, where);
            return -1;
        }
        if (source_set(s, opt, eq + 1, place, spec_line, err, cap) < 0)
            return -1;
    }
    char *rest = strchr(body, ':');
    if (rest)
        *rest++ = '\0';
    const char *kind = body;
    if (strcmp(kind, "-") == 0 && !rest)
        kind = "stdin";
    if (kind[0] == '/' && !rest && strncmp(kind, "/dev/", 5) == 0) {
        s->kind = CONFIG_SERIAL;
        copy_str(s->target, sizeof s->target, kind);
        return 0;
    }
    if (strcmp(kind, "serial") == 0) {
        s->kind = CONFIG_SERIAL;
        if (!rest || !*rest)
            goto bad;
        /* Only the last ':' segment can be a speed: by-path device names contain ':' too. */
        char *last = strrchr(rest, ':');
        if (last && is_baud_word(last + 1)) {
            const config_key *bk = find_key("source", "baud");
            if (in_spec & (1ull << (key_index(bk) & 63))) {
                char b[16];
                fail(err, cap, "%s: [source %s] spec '%s': the speed is given twice (:%s and "
                               "baud=%s): give one",
                     where, s->name, spec, last + 1, enum_choice(bk, s->baud, b, sizeof b));
                return -1;
            }
            *last = '\0';
            if (source_set(s, "baud", last + 1, where, spec_line, err, cap) < 0)
                return -1;
        } else if (last && last[1] && strspn(last + 1, "0123456789") == strlen(last + 1)) {
            fail(err, cap, "%s: [source %s] spec '%s': serial speed '%s': expected auto, 115200 "
                           "or 9600",
                 where, s->name, spec, last + 1);
            return -1;
        }
        if (!*rest)
            goto bad;
        copy_str(s->target, sizeof s->target, rest);
    } else if (strcmp(kind, "tcp") == 0) {
        char host[CONFIG_STR_MAX];
        unsigned port;
        s->kind = CONFIG_TCP;
        if (!rest || config_addr_split(rest, host, sizeof host, &port) < 0 || port == 0)
            goto bad;
        copy_str(s->target, sizeof s->target, rest);
    } else if (strcmp(kind, "file") == 0) {
        s->kind = CONFIG_FILE;
        if (!rest || !*rest)
            goto bad;
        copy_str(s->target, sizeof s->target, rest);
    } else if (strcmp(kind, "stdin") == 0) {
        s->kind = CONFIG_STDIN;
        if (rest && *rest)
            goto bad;
        copy_str(s->target, sizeof s->target, "-");
    } else if (strcmp(kind, "sim") == 0) {
        s->kind = CONFIG_SIM;
        if (rest && *rest && (in_spec & (1ull << (key_index(find_key("source", "seed")) & 63)))) {
            fail(err, cap, "%s: [source %s] spec '%s': the seed is given twice (sim:%s and "
                           "seed=%" PRId64 "): give one",
                 where, s->name, spec, rest, s->seed);
            return -1;
        }
        if (rest && *rest && source_set(s, "seed", rest, where, spec_line, err, cap) < 0)
            return -1;
        copy_str(s->target, sizeof s->target, "");
    } else {
        goto bad;
    }
    return 0;
bad:
    fail(err, cap,
         "%s: [source %s] spec '%s': expected serial:DEVICE[:auto|115200|9600], tcp:HOST:PORT, "
         "file:PATH, stdin or sim[:SEED], each optionally followed by :key=value",
         where, s->name, spec);
    return -1;
}

/* "FILE:LINE: " for the config file's line that set `key` of s, into out; "" when the command
 * line set it or nothing did. Errors about a source's keys together start with it. */
static const char *source_key_at(const config_source *s, const char *key, const char *file,
                                 char *out, size_t cap)
{
    size_t bit = key_index(find_key("source", key)) & 63;
    if ((s->set & (1ull << bit)) && s->set_line[bit] > 0)
        snprintf(out, cap, "%s:%d: ", file, s->set_line[bit]);
    else
        out[0] = '\0';
    return out;
}

/* `at` prefixes its errors (source_key_at of key_file). */
static int read_key_file(config_source *s, const char *at, char *err, size_t cap)
{
    FILE *f = fopen(s->key_file, "re");
    char line[2][CONFIG_STR_MAX];
    int n = 0;
    if (!f) {
        int e = errno;
        char note[CONFIG_STR_MAX + 96];
        fail(err, cap, "%s[source %s] key_file = '%s': %s%s", at, s->name, s->key_file, strerror(e),
             relative_note(s->key_file, e, note, sizeof note));
        return -1;
    }
    while (n < 2 && fgets(line[n], sizeof line[n], f)) {
        char *t = trim(line[n]);
        if (*t == '\0' || *t == '#')
            continue;
        memmove(line[n], t, strlen(t) + 1);
        n++;
    }
    fclose(f);
    if (n == 0) {
        fail(err, cap,
             "%s[source %s] key_file = '%s': expected the key (32 hex digits) on the "
             "first line",
             at, s->name, s->key_file);
        return -1;
    }
    copy_str(s->key, sizeof s->key, line[0]);
    if (n > 1)
        copy_str(s->ak, sizeof s->ak, line[1]);
    return 0;
}

#define CONFIG_KEY_HEX 32 /* hex digits of an AES-128 key */

/* Why hex is not a key of 32 hex digits, into why[cap]; NULL when it is one. Never quotes the key:
 * only where it goes wrong and how. */
static const char *hex_key_problem(const char *hex, char *why, size_t cap)
{
    size_t digits = 0;
    if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) {
        snprintf(why, cap, "starts with 0x: give the 32 hex digits alone");
        return why;
    }
    for (size_t i = 0; hex[i]; i++) {
        if (isxdigit((unsigned char)hex[i])) {
            digits++;
        } else if (hex[i] == ' ' || hex[i] == '\t' || hex[i] == ':' || hex[i] == '-') {
            snprintf(why, cap, "character %zu is a separator: give the 32 hex digits without "
                               "spaces, ':' or '-'", i + 1);
            return why;
        } else {
            snprintf(why, cap, "character %zu is not a hex digit (0-9, A-F, a-f)", i + 1);
            return why;
        }
    }
    if (digits != CONFIG_KEY_HEX) {
        snprintf(why, cap, "has %zu hex digits, expected %d hex digits", digits, CONFIG_KEY_HEX);
        return why;
    }
    return NULL;
}

/* Checks key or ak of s; the error names where it was set (the file and line, key_file, or the
 * command line) and what is wrong with it. */
static int check_hex_key(const config_source *s, const char *name, const char *file, char *err,
                         size_t cap)
{
    const config_key *k = find_key("source", name);
    const char *hex = (const char *)s + k->offset;
    char why[128], at[CONFIG_STR_MAX + 16];
    int line = s->set_line[key_index(k) & 63];
    if (!hex_key_problem(hex, why, sizeof why))
        return 0;
    if (s->key_file[0] && !(s->set & (1ull << (key_index(k) & 63))))
        fail(err, cap, "%s[source %s] key_file = '%s': the %s (%s line): %s",
             source_key_at(s, "key_file", file, at, sizeof at), s->name, s->key_file,
             strcmp(name, "key") == 0 ? "key" : "authentication key",
             strcmp(name, "key") == 0 ? "first" : "second", why);
    else if (line > 0)
        fail(err, cap, "%s:%d: [source %s] %s: %s", file, line, s->name, name, why);
    else
        fail(err, cap, "[source %s] %s (command line): %s", s->name, name, why);
    return -1;
}

/* `file` is the config file, named in errors about keys set there. */
static int source_validate(config_source *s, const char *file, char *err, size_t cap)
{
    if (source_finish_spec(s, err, cap) < 0)
        return -1;
    for (size_t i = 0; i < NKEYS; i++) {
        const config_key *k = &config_keys[i];
        if (!is_source_key(k) || !k->kinds || !(s->set & (1ull << (i & 63))))
            continue;
        if (!(k->kinds & s->kind)) {
            char where[CONFIG_STR_MAX + 32];
            if (s->set_line[i & 63] > 0)
                snprintf(where, sizeof where, "%s:%d", file, s->set_line[i & 63]);
            else
                snprintf(where, sizeof where, "--source %s", s->name);
            fail(err, cap, "%s: [source %s] key '%s' does not apply to a %s source", where,
                 s->name, k->name, config_kind_name(s->kind));
            return -1;
        }
    }
    char at[CONFIG_STR_MAX + 16];
    if (s->key_file[0]) {
        source_key_at(s, "key_file", file, at, sizeof at);
        if (s->key[0]) {
            fail(err, cap, "%s[source %s] set key or key_file, not both", at, s->name);
            return -1;
        }
        if (read_key_file(s, at, err, cap) < 0)
            return -1;
    }
    if (s->key[0] || s->ak[0] || s->skip_tag) {
        if (!s->key[0]) {
            const char *which = s->ak[0] ? "ak" : "skip_tag";
            fail(err, cap, "%s[source %s] %s is set but key is not",
                 source_key_at(s, which, file, at, sizeof at), s->name, which);
            return -1;
        }
        if (check_hex_key(s, "key", file, err, cap) < 0 ||
            (s->ak[0] && check_hex_key(s, "ak", file, err, cap) < 0))
            return -1;
        /* The tty would drop bit 7 of every byte: no frame could ever arrive intact. */
        int seven = s->kind == CONFIG_SERIAL &&
                    ((s->baud == CONFIG_BAUD_9600 && s->parity != CONFIG_PARITY_NONE) ||
                     s->parity == CONFIG_PARITY_EVEN);
        if (seven) {
            source_key_at(s, "key", file, at, sizeof at);
            if (!at[0])
                source_key_at(s, "key_file", file, at, sizeof at);
            fail(err, cap,
                 "%s[source %s] key: encrypted frames need all 8 bits, but %s reads 7 "
                 "data bits (7E1); encrypted meters send 115200 8N1: use baud = 115200 "
                 "or auto, parity = auto or none",
                 at, s->name, s->parity == CONFIG_PARITY_EVEN ? "parity = even" : "baud = 9600");
            return -1;
        }
    }
    if (s->reconnect_min > s->reconnect_max) {
        source_key_at(s, "reconnect_min", file, at, sizeof at);
        if (!at[0])
            source_key_at(s, "reconnect_max", file, at, sizeof at);
        fail(err, cap,
             "%s[source %s] reconnect_min (%" PRId64 " ms) is larger than "
             "reconnect_max (%" PRId64 " ms)",
             at, s->name, s->reconnect_min, s->reconnect_max);
        return -1;
    }
    return 0;
}

const char *config_source_names(const config *c, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < c->nsources && n < cap; i++) {
        int w = snprintf(out + n, cap - n, "%s%s", i ? ", " : "", c->sources[i].name);
        n += w > 0 ? (size_t)w : 0;
    }
    if (c->nsources == 0)
        snprintf(out, cap, "none configured");
    return out;
}

const config_source *config_find_source(const config *c, const char *name)
{
    for (size_t i = 0; i < c->nsources; i++)
        if (strcmp(c->sources[i].name, name) == 0)
            return &c->sources[i];
    return NULL;
}

int config_source_equal(const config_source *a, const config_source *b)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const config_key *k = &config_keys[i];
        const char *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;
        if (!is_source_key(k))
            continue;
        /* Strings compare as strings: bytes after the NUL may differ between equal values. */
        if (k->type == CT_STRING || k->type == CT_ADDR ? strncmp(fa, fb, k->size) != 0
                                                       : memcmp(fa, fb, k->size) != 0)
            return 0;
    }
    return strcmp(a->spec, b->spec) == 0 && strcmp(a->target, b->target) == 0 &&
           strcmp(a->key, b->key) == 0 && strcmp(a->ak, b->ak) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * Errors and hints
 * ------------------------------------------------------------------------------------------- */

/* Adds msg to e in file order: by the line of its "FILE:LINE: " prefix, else by fallback
 * (INT_MAX: after the file's errors). When e is full, the one with the highest line is only
 * counted. */
static void errs_add(config_errors *e, const char *file, int fallback, const char *msg)
{
    size_t fl = strlen(file);
    int line = fallback;
    if (fl && strncmp(msg, file, fl) == 0 && msg[fl] == ':' && isdigit((unsigned char)msg[fl + 1]))
        line = atoi(msg + fl + 1);
    e->total++;
    size_t at = e->n;
    while (at > 0 && e->line[at - 1] > line)
        at--;
    if (at == CONFIG_ERRORS_MAX)
        return;
    size_t last = e->n < CONFIG_ERRORS_MAX ? e->n++ : CONFIG_ERRORS_MAX - 1;
    memmove(&e->msg[at + 1], &e->msg[at], (last - at) * sizeof e->msg[0]);
    memmove(&e->line[at + 1], &e->line[at], (last - at) * sizeof e->line[0]);
    snprintf(e->msg[at], sizeof e->msg[at], "%s", msg);
    e->line[at] = line;
}

void config_errors_add(config_errors *errs, const char *file, const char *msg)
{
    errs_add(errs, file, INT_MAX, msg);
}

void config_errors_print(const config_errors *errs, FILE *f, const char *prefix)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(f, "%s%s\n", prefix, errs->msg[i]);
    if (errs->total > errs->n)
        fprintf(f, "%s... and %zu more error%s\n", prefix, errs->total - errs->n,
                errs->total - errs->n == 1 ? "" : "s");
}

/* Words other P1 tools (dsmr-reader, dsmr_parser, ser2net setups) use where p1d has another
 * key, per section; section "" holds section names. */
typedef struct config_hint {
    const char *section, *word, *hint;
} config_hint;

#define SERIAL_HINT "the device goes in spec = serial:/dev/ttyUSB0"
#define METER_HINT  "a meter is [source NAME] with spec = serial:/dev/ttyUSB0"
static const config_hint config_hints[] = {
    {"source", "device", SERIAL_HINT},
    {"source", "port", SERIAL_HINT},
    {"source", "serial", SERIAL_HINT},
    {"source", "serial_port", SERIAL_HINT},
    {"source", "tty", SERIAL_HINT},
    {"source", "host", "a network source is spec = tcp:HOST:PORT"},
    {"source", "address", "a network source is spec = tcp:HOST:PORT"},
    {"source", "file", "a recording is spec = file:PATH"},
    {"source", "path", "a recording is spec = file:PATH"},
    {"source", "type", "the kind starts the spec: serial:, tcp:, file:, stdin or sim"},
    {"source", "baudrate", "did you mean 'baud'?"},
    {"source", "baud_rate", "did you mean 'baud'?"},
    {"source", "speed", "did you mean 'baud'?"},
    {"source", "decryption_key", "did you mean 'key'?"},
    {"source", "encryption_key", "did you mean 'key'?"},
    {"source", "aes_key", "did you mean 'key'?"},
    {"source", "auth_key", "did you mean 'ak'?"},
    {"source", "authentication_key", "did you mean 'ak'?"},
    {"http", "port", "the address and port go in listen = ADDR:PORT"},
    {"http", "host", "the address and port go in listen = ADDR:PORT"},
    {"http", "bind", "the address and port go in listen = ADDR:PORT"},
    {"http", "user", "did you mean 'basic_user'?"},
    {"http", "username", "did you mean 'basic_user'?"},
    {"http", "password", "did you mean 'basic_pass'?"},
    {"relay", "port", "the address and port go in listen = ADDR:PORT"},
    {"relay", "host", "the address and port go in listen = ADDR:PORT"},
    {"mqtt", "broker", "did you mean 'host'?"},
    {"mqtt", "server", "did you mean 'host'?"},
    {"mqtt", "user", "did you mean 'username'?"},
    {"mqtt", "ssl", "did you mean 'tls'?"},
    {"mqtt", "topic", "did you mean 'topic_prefix'?"},
    {"mqtt", "base_topic", "did you mean 'topic_prefix'?"},
    {"mqtt", "ca_cert", "did you mean 'ca_file'?"},
    {"mqtt", "cafile", "did you mean 'ca_file'?"},
    {"influxdb", "host", "the server goes in url = http://HOST:8086"},
    {"influxdb", "server", "the server goes in url = http://HOST:8086"},
    {"store", "path", "did you mean 'db'?"},
    {"store", "database", "did you mean 'db'?"},
    {"log", "loglevel", "did you mean 'level'?"},
    {"log", "verbosity", "did you mean 'level'?"},
    {"", "serial", METER_HINT},
    {"", "meter", METER_HINT},
    {"", "meters", METER_HINT},
    {"", "device", METER_HINT},
    {"", "source", "a source needs a name: [source NAME]"},
    {"", "sources", METER_HINT},
    {"", "database", "the history database is [store] db = PATH"},
    {"", "web", "did you mean [http]?"},
    {"", "api", "did you mean [http]?"},
    {"", "server", "did you mean [http]?"},
    {"", "logging", "did you mean [log]?"},
    {"", "tariffs", "did you mean [prices]?"},
    {"", "homeassistant", "Home Assistant discovery is part of [mqtt]"},
};
#define NHINTS (sizeof config_hints / sizeof config_hints[0])

static const char *direct_hint(const char *section, const char *word)
{
    for (size_t i = 0; i < NHINTS; i++)
        if (!strcmp(config_hints[i].section, section) && !strcasecmp(config_hints[i].word, word))
            return config_hints[i].hint;
    return NULL;
}

/* " (did you mean 'baud'?)", " ('keepalive' is a key of [mqtt])" or another hint for an unknown
 * key of section, into out[cap]; "" when nothing known is close. */
static void key_hint(const char *section, const char *key, char *out, size_t cap)
{
    const char *names[NKEYS], *hint = direct_hint(section, key);
    char others[128] = "";
    size_t n = 0;
    out[0] = '\0';
    if (hint) {
        snprintf(out, cap, " (%s)", hint);
        return;
    }
    for (size_t i = 0; i < NKEYS; i++) {
        const config_key *k = &config_keys[i];
        if (!strcmp(k->section, section)) {
            names[n++] = k->name;
        } else if (!strcmp(k->name, key)) {
            size_t o = strlen(others);
            snprintf(others + o, sizeof others - o, "%s[%s%s]", o ? ", " : "", k->section,
                     is_source_key(k) ? " NAME" : "");
        }
    }
    if (others[0]) {
        snprintf(out, cap, " ('%s' is a key of %s)", key, others);
        return;
    }
    hint = suggest_closest(key, names, n);
    if (hint)
        snprintf(out, cap, " (did you mean '%s'?)", hint);
}

/* The same for an unknown section name. */
static void section_hint(const char *name, char *out, size_t cap)
{
    const char *hint = direct_hint("", name);
    char first[SUGGEST_WORD_MAX];
    out[0] = '\0';
    if (hint) {
        snprintf(out, cap, " (%s)", hint);
        return;
    }
    /* "[sorce home]": the first word is a typo of source */
    size_t w = strcspn(name, " \t");
    if (name[w] && w < sizeof first) {
        memcpy(first, name, w);
        first[w] = '\0';
        const char *source = "source";
        if (suggest_closest(first, &source, 1)) {
            snprintf(out, cap, " (did you mean [source%s]?)", name + w);
            return;
        }
    }
    hint = suggest_closest(name, config_sections, NSECTIONS);
    if (hint)
        snprintf(out, cap, " (did you mean [%s]?)", hint);
}

/* ---------------------------------------------------------------------------------------------
 * The config file
 * ------------------------------------------------------------------------------------------- */

/* The name of the character the UTF-8 sequence s[0..len) holds when it looks like a space or
 * like nothing, else NULL: a value with one reads as another (a host "\u00a0broker" is no DNS
 * name), and an error that quotes it shows nothing wrong. Its code point into *cp. */
static const char *invisible(const unsigned char *s, size_t len, uint32_t *cp)
{
    uint32_t c = len == 2   ? (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f)
                 : len == 3 ? (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 |
                                  (s[2] & 0x3f)
                            : 0;
    *cp = c;
    if (c >= 0x80 && c <= 0x9f)
        return "a control character";
    if (c == 0xa0 || c == 0x2007 || c == 0x202f)
        return "a no-break space";
    if (c == 0xfeff)
        return "a byte-order mark";
    if ((c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) ||
        (c >= 0x205f && c <= 0x2064) || c == 0x3000)
        return "an invisible character or a space of another width";
    return NULL;
}

/* The column of byte off of a line, in characters as an editor shows them: a UTF-8 sequence is
 * one (bytes 0x80-0xBF only continue a character). */
static size_t column_of(const char *line, size_t off)
{
    size_t col = 1;
    for (size_t i = 0; i < off; i++)
        col += ((unsigned char)line[i] & 0xc0) != 0x80;
    return col;
}

/* Whether line[0..n) is text p1d takes in a section, key or value: UTF-8 without control
 * characters but tabs. Else the problem, at its column, into why[cap] and -1. A stray Latin-1
 * byte would reach the API's JSON, MQTT and mDNS names as another character, an escape sequence
 * the terminal and the log, and a lone CR (a Mac line end) would join two lines into one. */
static int text_check(const char *line, size_t n, char *why, size_t cap)
{
    const unsigned char *s = (const unsigned char *)line;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            fail(why, cap, "a CR (column %zu) inside the line: lines end in LF or CRLF",
                 column_of(line, i));
            return -1;
        }
        if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f) {
            fail(why, cap, "control character 0x%02X (column %zu): expected text", s[i],
                 column_of(line, i));
            return -1;
        }
        if (s[i] < 0x80)
            continue;
        size_t len = json_utf8_len(s + i, n - i);
        if (len == 0) {
            fail(why, cap, "byte 0x%02X (column %zu) is not UTF-8: save the file as UTF-8 (in "
                           "Latin-1 or Windows-1252 an accented letter is one such byte)",
                 s[i], column_of(line, i));
            return -1;
        }
        uint32_t cp;
        const char *what = invisible(s + i, len, &cp);
        if (cp == 0xfeff) {
            fail(why, cap, "U+FEFF, a byte-order mark (column %zu): only the start of the file may "
                           "hold one (files joined into one?)",
                 column_of(line, i));
            return -1;
        }
        if (what) {
            fail(why, cap, "U+%04X, %s (column %zu): expected a plain space or nothing (text "
                           "copied from a web page or a word processor?)",
                 (unsigned)cp, what, column_of(line, i));
            return -1;
        }
        i += len - 1;
    }
    return 0;
}

/* Reads the next line of f, up to its '\n' (dropped), into line[cap] with a NUL after it; a
 * longer line is cut at cap - 1 bytes. *len is its length (NUL bytes in it count), the whole of a
 * cut one; *total counts the bytes read, and no more than max are read. Returns -1 at the end of
 * the file (or at max), else 0. */
static int read_line(FILE *f, char *line, size_t cap, size_t *len, size_t *total, size_t max)
{
    size_t n = 0;
    int ch = EOF;
    while (*total < max && (ch = getc(f)) != EOF) {
        (*total)++;
        if (ch == '\n')
            break;
        if (n < cap - 1)
            line[n] = (char)ch;
        n++;
    }
    if (n == 0 && ch != '\n')
        return -1;
    line[n < cap - 1 ? n : cap - 1] = '\0';
    *len = n;
    return 0;
}

/* Reads path into c, adding every error to errs (those in a [source NAME] section also count in
 * its errors); *lost is set when a [source NAME] header could not define its source. Returns -1
 * when the file cannot be read to its end (then the checks across keys would only report what is
 * missing from the part not read), else 0. */
static int load_file(config *c, const char *path, config_errors *errs, int *lost)
{
    char err[CONFIG_ERR_MAX];
    FILE *f = fopen(path, "re");
    struct stat st;
    if (!f) {
        fail(err, sizeof err, "%s: %s", path, strerror(errno));
        errs_add(errs, path, INT_MAX, err);
        return -1;
    }
    /* fopen() opens a directory for reading on Linux; reading it then fails with EISDIR. */
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        fail(err, sizeof err, "%s: is a directory, expected a config file", path);
        errs_add(errs, path, INT_MAX, err);
        return -1;
    }
    char line[CONFIG_LINE_MAX + 2]; /* the longest line, its '\r' and the NUL */
    char section[CONFIG_STR_MAX] = "";
    config_source *src = NULL;
    int lineno = 0, skip = 0;          /* skip: the keys of a section that is in error */
    int section_line[NSECTIONS] = {0}; /* where each section started; 0 = not yet seen */
    char where[CONFIG_STR_MAX + 32], hint[CONFIG_ERR_MAX / 2];
    const size_t cap = sizeof err;
    size_t len, total = 0;
    int whole = 1; /* read to its end */
    /* One byte over the limit tells a file of CONFIG_FILE_MAX bytes from a longer one. */
    while (read_line(f, line, sizeof line, &len, &total, CONFIG_FILE_MAX + 1) == 0) {
        lineno++;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        err[0] = '\0';
        size_t stored = len < sizeof line - 1 ? len : sizeof line - 1;
        if (lineno == 1 && stored >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
            memmove(line, line + 3, stored - 3 + 1); /* a UTF-8 BOM (Notepad) */
            len -= 3;
            stored -= 3;
        }
        /* A NUL would end the line early for every string function: the value after it would be
         * lost without a word. A file that holds one is no text (a database, a binary). */
        const char *nul = memchr(line, '\0', stored);
        if (nul) {
            fail(err, cap, "%s: a NUL byte (column %zu): a config file is text (the rest of the "
                           "file is not read)",
                 where, column_of(line, (size_t)(nul - line)));
            errs_add(errs, path, lineno, err);
            whole = 0;
            break;
        }
        if (total > CONFIG_FILE_MAX) {
            fail(err, cap, "%s: the file goes on past %d bytes: not a config file (the rest is "
                           "not read)",
                 where, CONFIG_FILE_MAX);
            errs_add(errs, path, lineno, err);
            whole = 0;
            break;
        }
        size_t body = len;
        if (body && body == stored && line[body - 1] == '\r')
            line[--body] = '\0';
        if (body > CONFIG_LINE_MAX) {
            fail(err, cap, "%s: line longer than %d bytes%s", where, CONFIG_LINE_MAX,
                 memchr(line, '\r', stored) ? " (it holds CRs: lines end in LF or CRLF)" : "");
            goto next;
        }
        const char *first = line + strspn(line, " \t\v\f");
        if (*first == '\0' || *first == '#' || *first == ';')
            continue; /* a comment may hold any text, in any encoding */
        char bad[CONFIG_ERR_MAX / 2];
        if (text_check(line, body, bad, sizeof bad) < 0) {
            fail(err, cap, "%s: %s", where, bad);
            const char *bracket = strchr(line, '['), *equals = strchr(line, '=');
            if (bracket && (!equals || bracket < equals)) { /* a section header in error */
                src = NULL;
                skip = 1;
                section[0] = '\0';
            }
            goto next;
        }
        char *t = trim(line);
        if (*t == '[') {
            char *end = strchr(t, ']');
            src = NULL;
            skip = 1;
            section[0] = '\0';
            char *after = end ? trim(end + 1) : NULL;
            if (after && comment_in(after) == after) {
                fail(err, cap, "%s: '%s': a comment after the section: comments go on a line of "
                               "their own",
                     where, t);
                goto next;
            }
            if (!end || end[1] != '\0') {
                fail(err, cap, "%s: '%s': expected [section] or [source NAME]", where, t);
                goto next;
            }
            *end = '\0';
            char *name = trim(t + 1);
            if (strncmp(name, "source", 6) == 0 && isspace((unsigned char)name[6])) {
                char *sname = trim(name + 6);
                const config_source *prev = config_find_source(c, sname);
                if (prev) {
                    fail(err, cap, "%s: [source %s] defined twice (first on line %d)", where,
                         sname, prev->line);
                    goto next;
                }
                char why[200];
                src = source_get(c, sname, 1, why, sizeof why);
                if (!src) {
                    fail(err, cap, "%s: %s", where, why);
                    *lost = 1;
                    goto next;
                }
                copy_str(section, sizeof section, "source");
                copy_str(src->origin, sizeof src->origin, where);
                src->line = lineno;
                skip = 0;
                continue;
            }
            size_t si = 0;
            while (si < NSECTIONS && strcmp(name, config_sections[si]) != 0)
                si++;
            if (si == NSECTIONS) {
                char known[128] = "";
                for (size_t j = 0; j < NSECTIONS; j++) {
                    size_t n = strlen(known);
                    snprintf(known + n, sizeof known - n, "[%s], ", config_sections[j]);
                }
                known[strlen(known) - 2] = '\0';
                section_hint(name, hint, sizeof hint);
                fail(err, cap, "%s: unknown section [%s]: expected %s or [source NAME]%s", where,
                     name, known, hint);
                goto next;
            }
            /* A second [store] is an error, but its keys are still checked. */
            if (section_line[si])
                fail(err, cap, "%s: section [%s] given twice (first on line %d): put its keys "
                               "in one section",
                     where, name, section_line[si]);
            else
                section_line[si] = lineno;
            copy_str(section, sizeof section, name);
            skip = 0;
            goto next;
        }
        char *eq = strchr(t, '=');
        if (!eq) {
            fail(err, cap, "%s: '%s': expected key = value", where, t);
            goto next;
        }
        if (skip)
            continue;
        *eq = '\0';
        char *key = trim(t), *value = trim(eq + 1);
        size_t vl = strlen(value);
        if (section[0] == '\0') {
            fail(err, cap, "%s: key '%s' outside a section", where, key);
            goto next;
        }
        /* The key as error messages name it, and whether its value may be quoted back. */
        char named[CONFIG_STR_MAX + 80];
        snprintf(named, sizeof named, "[%s%s%s] %s", section, src ? " " : "",
                 src ? src->name : "", key);
        const config_key *vk = find_key(src ? "source" : section, key);
        int secret = vk && vk->secret;
        if (value[0] == '"' || value[0] == '\'') {
            if (vl < 2 || value[vl - 1] != value[0]) {
                char *close = strchr(value + 1, value[0]), *rest = close ? trim(close + 1) : NULL;
                if (rest && comment_in(rest) == rest)
                    fail(err, cap, "%s: %s: a comment after the value: comments go on a line of "
                                   "their own",
                         where, named);
                else if (rest)
                    fail(err, cap,
                         "%s: %s: text after the closing %c of the value (%s): a quoted "
                         "value ends at its closing quote",
                         where, named, value[0], secret ? "********" : rest);
                else
                    fail(err, cap, "%s: %s = %s: unterminated quote (expected a closing %c at the "
                                   "end of the line)",
                         where, named, secret ? "********" : value, value[0]);
            } else {
                value[vl - 1] = '\0';
                value++;
            }
        } else if (comment_in(value) == value) {
            fail(err, cap, "%s: %s: a value that starts with '%c' is written in quotes (comments "
                           "go on a line of their own)",
                 where, named, value[0]);
        } else if (comment_in(value)) {
            /* A secret's text is not quoted, not even its tail. */
            const char *hash = comment_in(value);
            if (secret)
                fail(err, cap, "%s: %s: a ' %c' in the value looks like a comment: comments go on "
                               "a line of their own (write the value in quotes if ' %c' is part "
                               "of it)",
                     where, named, *hash, *hash);
            else
                fail(err, cap, "%s: %s: '%.40s%s' after the value looks like a comment: comments "
                               "go on a line of their own (write the value in quotes if '%c' is "
                               "part of it)",
                     where, named, hash, strlen(hash) > 40 ? "..." : "", *hash);
        }
        if (err[0]) {
            if (src && vk && vk->type == CT_STRING)
                src->errors++; /* as for a value source_set() refuses, below */
            goto next;
        }
        if (src) {
            const config_key *sk = find_key("source", key);
            size_t bit = sk ? key_index(sk) & 63 : 0;
            if (sk && (src->set & (1ull << bit)) && src->set_line[bit] > 0)
                fail(err, cap, "%s: [source %s] %s given twice (first on line %d)", where,
                     src->name, key, src->set_line[bit]);
            else
                source_set(src, key, value, where, lineno, err, cap);
            /* The checks across its keys read its strings (spec, key, ak, key_file): without
             * one of them they would report a mistake that is not there. A bad number or choice
             * stays at its default and is reported by itself. */
            if (err[0] && sk && sk->type == CT_STRING)
                src->errors++;
            if (err[0])
                errs_add(errs, path, lineno, err);
            continue;
        }
        const config_key *k = find_key(section, key);
        char why[CONFIG_ERR_MAX];
        if (!k) {
            key_hint(section, key, hint, sizeof hint);
            fail(err, cap, "%s: [%s] unknown key '%s'%s", where, section, key, hint);
        } else if (c->line[key_index(k)] > 0) {
            fail(err, cap, "%s: [%s] %s given twice (first on line %d)", where, section, key,
                 c->line[key_index(k)]);
        } else if (key_set(k, c, value, why, sizeof why) < 0) {
            char cut[SHOWN_MAX + 32];
            fail(err, cap, "%s: [%s] %s = '%s': expected %s", where, section, key,
                 shown(k, value, cut, sizeof cut), why);
        } else {
            c->line[key_index(k)] = lineno;
        }
    next:
        if (err[0])
            errs_add(errs, path, lineno, err);
    }
    if (ferror(f)) {
        fail(err, cap, "%s: %s", path, strerror(errno));
        errs_add(errs, path, INT_MAX, err);
        whole = 0;
    }
    fclose(f);
    return whole ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------------
 * Flags
 * ------------------------------------------------------------------------------------------- */

/* "--SECTION-NAME" with '_' -> '-'. */
static void long_flag(const config_key *k, char *out, size_t cap)
{
    snprintf(out, cap, "--%s-%s", k->section, k->name);
    for (char *p = out; *p; p++)
        if (*p == '_')
            *p = '-';
}

static const config_key *flag_key(const char *flag)
{
    char name[96];
    for (size_t i = 0; i < NKEYS; i++) {
        const config_key *k = &config_keys[i];
        if (is_source_key(k))
            continue;
        long_flag(k, name, sizeof name);
        if (strcmp(flag, name) == 0 || (k->flag && strcmp(flag, k->flag) == 0))
            return k;
    }
    return NULL;
}

/* Splits "--flag=value" or takes the next argument. Returns the value or NULL. */
static const char *flag_value(int argc, char **argv, int *i, char *flag, size_t fcap)
{
    const char *a = argv[*i];
    const char *eq = strchr(a, '=');
    if (eq) {
        size_t n = (size_t)(eq - a);
        if (n >= fcap)
            n = fcap - 1;
        memcpy(flag, a, n);
        flag[n] = '\0';
        return eq + 1;
    }
    snprintf(flag, fcap, "%s", a);
    /* "--db --check-config": the value was forgotten, not the option meant as one (a value
     * that starts with "--" is given as --flag=VALUE) */
    if (*i + 1 >= argc || (argv[*i + 1][0] == '-' && argv[*i + 1][1] == '-' && argv[*i + 1][2]))
        return NULL;
    return argv[++*i];
}

static int is_action(const char *a, config *c)
{
    if (!strcmp(a, "--help") || !strcmp(a, "-h"))
        return c->help = 1;
    if (!strcmp(a, "--version") || !strcmp(a, "-V"))
        return c->version = 1;
    if (!strcmp(a, "--check-config"))
        return c->check = 1;
    if (!strcmp(a, "--print-config-doc"))
        return c->print_doc = 1;
    if (!strcmp(a, "--fetch-prices"))
        return c->fetch_prices = 1;
    if (!strcmp(a, "--test-alert"))
        return c->test_alert = 1;
    return 0;
}

/* NAME=VALUE of --source/--key/--ak. */
static int split_named(const char *flag, const char *v, char *name, size_t ncap, const char **val,
                       char *err, size_t cap)
{
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || (size_t)(eq - v) >= ncap) {
        int spec = strcmp(flag, "--source") == 0;
        char v_shown[CONFIG_STR_MAX];
        fail(err, cap, "%s '%s': expected NAME=%s", flag,
             spec ? (config_spec_public(v, v_shown, sizeof v_shown), v_shown) : "********",
             spec ? "SPEC" : "HEX");
        return -1;
    }
    memcpy(name, v, (size_t)(eq - v));
    name[eq - v] = '\0';
    *val = eq + 1;
    return 0;
}

/* "unknown option '--lisen' (did you mean '--listen'?)", or a hint for the options of other
 * P1 tools, or "(see p1d --help)". */
static void unknown_option(const char *flag, char *err, size_t cap)
{
    static const char *const fixed[] = {"--config",       "--source",       "--key",
                                        "--ak",           "--check-config", "--print-config-doc",
                                        "--fetch-prices", "--help",         "--version",
                                        "--test-alert"};
    enum { NFIXED = sizeof fixed / sizeof fixed[0] };
    char names[NKEYS][64];
    const char *opts[2 * NKEYS + NFIXED], *hit;
    size_t n = 0;
    const char *word = flag + strspn(flag, "-");
    const config_key *sk = strcmp(word, "spec") ? find_key("source", word) : NULL;
    for (size_t i = 0; i < NFIXED; i++)
        opts[n++] = fixed[i];
    for (size_t i = 0; i < NKEYS; i++) {
        if (is_source_key(&config_keys[i]))
            continue;
        long_flag(&config_keys[i], names[i], sizeof names[i]);
        opts[n++] = names[i];
        if (config_keys[i].flag)
            opts[n++] = config_keys[i].flag;
    }
    if (sk)
        fail(err, cap,
             "unknown option '%s' (source keys go in the spec: --source "
             "NAME=SPEC:%s=VALUE)",
             flag, sk->name);
    else if (!strcmp(word, "device") || !strcmp(word, "serial") || !strcmp(word, "tty"))
        fail(err, cap, "unknown option '%s' (a meter is --source NAME=serial:/dev/ttyUSB0)", flag);
    else if (!strcmp(word, "port"))
        fail(err, cap,
             "unknown option '%s' (the HTTP address and port go in --listen "
             "ADDR:PORT)",
             flag);
    else if ((hit = suggest_option(flag, opts, n)))
        fail(err, cap, "unknown option '%s' (did you mean '%s'?)", flag, hit);
    else
        fail(err, cap, "unknown option '%s' (see p1d --help)", flag);
}

static int apply_flags(config *c, int argc, char **argv, int pass, char *err, size_t cap)
{
    for (int i = 1; i < argc; i++) {
        char flag[96], name[METER_NAME_MAX + 2];
        const char *a = argv[i], *v, *val;
        if (is_action(a, c))
            continue;
        if (strncmp(a, "--", 2) != 0 && strcmp(a, "-c") != 0) {
            if (a[0] == '-' && a[1])
                unknown_option(a, err, cap);
            else
                fail(err, cap, "unexpected argument '%s' (see p1d --help)", a);
            return -1;
        }
        v = flag_value(argc, argv, &i, flag, sizeof flag);
        if (strcmp(flag, "-c") == 0)
            snprintf(flag, sizeof flag, "--config");
        /* An unknown flag is named as such, not as one missing its value. */
        if (strcmp(flag, "--config") && strcmp(flag, "--source") && strcmp(flag, "--key") &&
            strcmp(flag, "--ak") && !flag_key(flag)) {
            unknown_option(flag, err, cap);
            return -1;
        }
        if (!v) {
            if (i + 1 < argc)
                fail(err, cap,
                     "%s: missing value: the next argument, %.64s, is an option (write %s=VALUE "
                     "for a value that starts with --)",
                     flag, argv[i + 1], flag);
            else
                fail(err, cap, "%s: missing value (see p1d --help)", flag);
            return -1;
        }
        if (!strcmp(flag, "--config")) {
            if (pass == 0 && c->file[0]) {
                /* the first file would be ignored without a word: p1d reads one */
                fail(err, cap, "%s given twice: p1d reads one config file", flag);
                return -1;
            }
            if (pass == 0 && copy_str(c->file, sizeof c->file, v) < 0) {
                fail(err, cap, "--config: path too long");
                return -1;
            }
            continue;
        }
        if (pass == 0)
            continue;
        /* pass 1: everything but --key and --ak, which pass 2 applies to the sources made */
        if ((pass == 1) == (!strcmp(flag, "--key") || !strcmp(flag, "--ak")))
            continue;
        if (!strcmp(flag, "--source") || !strcmp(flag, "--key") || !strcmp(flag, "--ak")) {
            int is_src = !strcmp(flag, "--source");
            if (split_named(flag, v, name, sizeof name, &val, err, cap) < 0)
                return -1;
            config_source *s = source_get(c, name, is_src, err, cap);
            if (!s) {
                char tmp[CONFIG_ERR_MAX];
                snprintf(tmp, sizeof tmp, "%s %s: %s", flag, name, err);
                copy_str(err, cap, tmp);
                return -1;
            }
            if (is_src && strcmp(s->origin, "--source") == 0) {
                /* a file's [source NAME] may be replaced by a flag; two flags are a mistake */
                fail(err, cap,
                     "--source %s given twice: the second would replace the first; give each "
                     "meter a name of its own (--source %s2=SPEC)",
                     name, name);
                return -1;
            }
            size_t bit = is_src ? 0 : key_index(find_key("source", flag + 2)) & 63;
            if (!is_src && (s->set >> bit & 1) && s->set_line[bit] == 0) {
                fail(err, cap, "%s %s given twice: give it once", flag, name);
                return -1;
            }
            if (source_set(s, is_src ? "spec" : flag + 2, val, flag, 0, err, cap) < 0)
                return -1;
            continue;
        }
        const config_key *k = flag_key(flag);
        char why[CONFIG_ERR_MAX];
        if (!k) {
            unknown_option(flag, err, cap);
            return -1;
        }
        if (c->line[key_index(k)] < 0) {
            /* the first value would be dropped without a word, as a key given twice in a
             * section of the file would (an error there too) */
            char first[96];
            if (c->line[key_index(k)] == -2)
                snprintf(first, sizeof first, "%s", k->flag);
            else
                long_flag(k, first, sizeof first);
            if (strcmp(first, flag))
                fail(err, cap, "%s given twice (first as %s): give it once", flag, first);
            else
                fail(err, cap, "%s given twice: give it once", flag);
            return -1;
        }
        if (key_set(k, c, v, why, sizeof why) < 0) {
            char cut[SHOWN_MAX + 32];
            fail(err, cap, "%s '%s': expected %s", flag, shown(k, v, cut, sizeof cut), why);
            return -1;
        }
        c->line[key_index(k)] = k->flag && strcmp(flag, k->flag) == 0 ? -2 : -1;
    }
    return 0;
}

static void read_secret_files(config *c, config_errors *errs)
{
    char err[CONFIG_ERR_MAX], why[CONFIG_ERR_MAX], where[CONFIG_STR_MAX + 32], what[64];
    for (size_t i = 0; i < sizeof secret_files / sizeof secret_files[0]; i++) {
        const config_key *fk = find_key(secret_files[i].section, secret_files[i].file_key);
        const config_key *k = find_key(secret_files[i].section, secret_files[i].key);
        const char *path = (const char *)c + fk->offset;
        char *dst = (char *)c + k->offset;
        if (!path[0])
            continue;
        config_where(c, fk->section, fk->name, where, sizeof where);
        snprintf(what, sizeof what, "[%s] %s", fk->section, fk->name);
        if (dst[0])
            fail(err, sizeof err, "%s: [%s] set %s or %s, not both", where, k->section, k->name,
                 fk->name);
        else if (config_read_secret(what, path, dst, k->size, why, sizeof why) < 0)
            fail(err, sizeof err, "%s: %s", where, why);
        else
            continue;
        errs_add(errs, c->file, c->line[key_index(fk)] > 0 ? c->line[key_index(fk)] : INT_MAX,
                 err);
    }
}

int config_load(config *c, int argc, char **argv, config_errors *errs)
{
    char err[CONFIG_ERR_MAX];
    const size_t cap = sizeof err;
    int lost = 0;
    memset(c, 0, sizeof *c);
    errs->n = errs->total = 0;
    defaults(c, 0);
    if (apply_flags(c, argc, argv, 0, err, cap) < 0) {
        errs_add(errs, "", INT_MAX, err);
        return -1;
    }
    if (c->help || c->version || c->print_doc)
        return 0;
    if (c->file[0] && load_file(c, c->file, errs, &lost) < 0)
        return -1;
    /* --key/--ak refer to sources that --source may define later on the line: sources first. */
    if (apply_flags(c, argc, argv, 1, err, cap) < 0 || apply_flags(c, argc, argv, 2, err, cap) < 0)
        errs_add(errs, "", INT_MAX, err);
    read_secret_files(c, errs);
    /* The checks across keys, where the lines they need were read without error. */
    for (size_t i = 0; i < c->nsources; i++)
        if (!c->sources[i].errors && source_validate(&c->sources[i], c->file, err, cap) < 0)
            errs_add(errs, c->file, c->sources[i].line ? c->sources[i].line : INT_MAX, err);
    char where[CONFIG_STR_MAX + 32], names[CONFIG_ERR_MAX / 2];
    if (!lost && c->relay_meter[0] && !config_find_source(c, c->relay_meter)) {
        fail(err, cap, "%s: [relay] meter = '%s': expected the name of a configured source (%s)",
             config_where(c, "relay", "meter", where, sizeof where), c->relay_meter,
             config_source_names(c, names, sizeof names));
        errs_add(errs, c->file, INT_MAX, err);
    }
    if (!lost && c->mqtt_dsmr_meter[0] && !config_find_source(c, c->mqtt_dsmr_meter)) {
        fail(err, cap, "%s: [mqtt] dsmr_meter = '%s': expected the name of a configured source "
                       "(%s), or empty for the first",
             config_where(c, "mqtt", "dsmr_meter", where, sizeof where), c->mqtt_dsmr_meter,
             config_source_names(c, names, sizeof names));
        errs_add(errs, c->file, INT_MAX, err);
    }
    if (c->influx_url[0] && !c->influx_database[0] && !(c->influx_bucket[0] && c->influx_org[0])) {
        char url[CONFIG_STR_MAX];
        fail(err, cap, "%s: [influxdb] url = '%s': expected database (InfluxDB 1.x) or bucket and "
                       "org (2.x) as well",
             config_where(c, "influxdb", "url", where, sizeof where),
             config_url_public(c->influx_url, url, sizeof url));
        errs_add(errs, c->file, INT_MAX, err);
    }
    /* With database p1d writes 1.x's /write?db= with basic auth, else 2.x's /api/v2/write with
     * the token: a key of the other kind would be ignored (a token beside database: 401). */
    const char *other = !c->influx_url[0]            ? NULL
                        : c->influx_database[0]      ? c->influx_bucket[0]       ? "bucket"
                                                       : c->influx_org[0]        ? "org"
                                                       : c->influx_token_file[0] ? "token_file"
                                                       : c->influx_token[0]      ? "token"
                                                                                 : NULL
                        : c->influx_username[0]      ? "username"
                        : c->influx_password_file[0] ? "password_file"
                        : c->influx_password[0]      ? "password"
                                                     : NULL;
    if (other) {
        int line = c->line[key_index(find_key("influxdb", other))];
        fail(err, cap, "%s: [influxdb] %s is for InfluxDB %s, but %s: set database (with "
                       "username, password) for 1.x, or bucket and org (with token) for 2.x",
             config_where(c, "influxdb", other, where, sizeof where), other,
             c->influx_database[0] ? "2.x" : "1.x",
             c->influx_database[0] ? "database is set (1.x)" : "database is not set (2.x)");
        errs_add(errs, c->file, line > 0 ? line : INT_MAX, err);
    }
    return errs->total ? -1 : 0;
}

void config_free(config *c)
{
    free(c->sources);
    c->sources = NULL;
    c->nsources = c->capsources = 0;
}

const char *config_where(const config *c, const char *section, const char *key, char *out,
                         size_t cap)
{
    const config_key *k = find_key(section, key);
    int line = k && !is_source_key(k) ? c->line[key_index(k)] : 0;
    if (line > 0)
        snprintf(out, cap, "%s:%d", c->file, line);
    else if (line == -2)
        snprintf(out, cap, "%s", k->flag);
    else if (line == -1)
        long_flag(k, out, cap);
    else
        snprintf(out, cap, "default");
    return out;
}

void config_placed(const config *c, const char *why, char *err, size_t cap)
{
    char section[32], key[32], where[CONFIG_STR_MAX + 32];
    if (sscanf(why, "[%31[a-z]] %31[a-z_]", section, key) == 2 &&
        strcmp(config_where(c, section, key, where, sizeof where), "default") != 0)
        snprintf(err, cap, "%.200s: %.300s", where, why);
    else
        snprintf(err, cap, "%s", why);
}

/* ---------------------------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------------------------- */

/* "name = value", the value in quotes when the file would not read it back as it is (spaces at
 * an end, a quote at the start, a '#' or ';' that would be a comment). */
static void print_value(FILE *f, const char *name, const char *v)
{
    fprintf(f, needs_quotes(v) ? "%s = \"%s\"\n" : "%s = %s\n", name, v);
}

void config_print(const config *c, FILE *f)
{
    char v[CONFIG_STR_MAX + 16];
    const char *section = "";
    fprintf(f, "# p1d effective configuration%s%s\n", c->file[0] ? " from " : " (no config file)",
            c->file);
    for (size_t i = 0; i < NKEYS; i++) {
        const config_key *k = &config_keys[i];
        if (is_source_key(k))
            continue;
        if (strcmp(section, k->section) != 0) {
            section = k->section;
            fprintf(f, "\n[%s]\n", section);
        }
        key_format(k, c, v, sizeof v);
        print_value(f, k->name, v);
    }
    for (size_t s = 0; s < c->nsources; s++) {
        const config_source *src = &c->sources[s];
        fprintf(f, "\n[source %s]\n", src->name);
        fprintf(f, "# kind %s%s%s\n", config_kind_name(src->kind), src->target[0] ? ", " : "",
                src->target);
        for (size_t i = 0; i < NKEYS; i++) {
            const config_key *k = &config_keys[i];
            if (!is_source_key(k) || (k->kinds && !(k->kinds & src->kind)))
                continue;
            if (!strcmp(k->name, "key_file") && !src->key_file[0])
                continue;
            key_format(k, src, v, sizeof v);
            print_value(f, k->name, v);
        }
    }
}

static void kinds_text(unsigned kinds, char *out, size_t cap)
{
    out[0] = '\0';
    if (!kinds) {
        snprintf(out, cap, "all");
        return;
    }
    for (unsigned b = 1; b <= CONFIG_SIM; b <<= 1) {
        if (kinds & b) {
            size_t n = strlen(out);
            snprintf(out + n, cap - n, "%s%s", n ? ", " : "", config_kind_name((config_kind)b));
        }
    }
}

void config_usage(FILE *f)
{
    char flag[96], lhs[160];
    fprintf(f,
            "Usage: p1d [OPTIONS]\n"
            "Reads DSMR P1 smart meters (serial, TCP, file, simulator) and serves their readings "
            "over HTTP.\n\n"
            "  --source NAME=SPEC     add a meter (repeatable); SPEC is one of\n"
            "                           serial:DEVICE[:auto|115200|9600]  tcp:HOST:PORT  "
            "file:PATH  stdin  sim[:SEED]\n"
            "                         followed by any source key as :key=value "
            "(tcp:127.0.0.1:2001:idle_timeout=10s)\n"
            "  --key NAME=HEX         decryption key of source NAME (32 hex digits)\n"
            "  --ak NAME=HEX          authentication key of source NAME\n"
            "  --config FILE, -c FILE read an INI-style config file (flags override it)\n"
            "  --check-config         validate all that the start validates (everything but "
            "binding ports,\n"
            "                         opening the database and connecting), print the effective "
            "config,\n"
            "                         exit 0 (or 2)\n"
            "  --print-config-doc     print the key reference in Markdown\n"
            "  --fetch-prices         fetch the [prices] fetch_url (and fetch_gas_url) once now, "
            "store the prices\n"
            "                         in [store] db (a running p1d uses them at once), say what "
            "came; exit 0,\n"
            "                         1 when a fetch failed, 2 on a configuration error\n"
            "  --test-alert           send a test alert to [alerts] url (and on MQTT with "
            "[alerts] mqtt) now\n"
            "                         and say how it went; exit 0 when every way took it, 1 "
            "when not, 2 on\n"
            "                         a configuration error\n"
            "  --help, --version\n\n"
            "Settings ([section] key = value in the config file, or the flag):\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const config_key *k = &config_keys[i];
        if (is_source_key(k))
            continue;
        long_flag(k, flag, sizeof flag);
        if (k->flag)
            snprintf(lhs, sizeof lhs, "%s, %s %s", k->flag, flag, k->arg);
        else
            snprintf(lhs, sizeof lhs, "%s %s", flag, k->arg);
        fprintf(f, "  %-40s %s (default: %s)\n", lhs, k->help, k->def[0] ? k->def : "empty");
    }
    fprintf(f, "\nSource keys ([source NAME] in the config file, or :key=value in the SPEC):\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const config_key *k = &config_keys[i];
        char kinds[64];
        if (!is_source_key(k))
            continue;
        kinds_text(k->kinds, kinds, sizeof kinds);
        snprintf(lhs, sizeof lhs, "%s %s", k->name, k->arg);
        fprintf(f, "  %-40s %s (default: %s; %s)\n", lhs, k->help, k->def[0] ? k->def : "empty",
                kinds);
    }
    fprintf(f, "\nSignals: SIGTERM/SIGINT exit cleanly, SIGHUP re-reads the config file.\n"
               "Exit status: 0 clean exit, 1 runtime failure, 2 usage or configuration error.\n");
}

/* Prints s as one Markdown table cell: a '|' would end the cell, so it is escaped. */
static void md_cell(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
}

/* Prints a default as a table cell: `value`, or "empty" (as --help says) for an empty one. */
static void md_default(FILE *f, const char *def)
{
    if (*def) {
        fputc('`', f);
        md_cell(f, def);
        fputc('`', f);
    } else {
        fputs("empty", f);
    }
}

void config_print_doc(FILE *f)
{
    char flag[96], exp[CONFIG_ERR_MAX];
    const char *section = "";
    for (size_t i = 0; i < NKEYS; i++) {
        const config_key *k = &config_keys[i];
        if (strcmp(section, k->section) != 0) {
            section = k->section;
            if (is_source_key(k))
                fprintf(f, "\n### [source NAME]\n\nAlso settable as `:key=value` after the "
                           "`--source NAME=SPEC`.\n\n| key | type | default | applies to | "
                           "meaning |\n|---|---|---|---|---|\n");
            else
                fprintf(f, "\n### [%s]\n\n| key | flag | type | default | meaning |\n"
                           "|---|---|---|---|---|\n",
                        section);
        }
        expected(k, exp, sizeof exp);
        if (is_source_key(k)) {
            fprintf(f, "| `%s` | ", k->name);
        } else {
            long_flag(k, flag, sizeof flag);
            fprintf(f, "| `%s` | `%s`%s%s%s | ", k->name, flag, k->flag ? ", `" : "",
                    k->flag ? k->flag : "", k->flag ? "`" : "");
        }
        md_cell(f, exp);
        fputs(" | ", f);
        md_default(f, k->def);
        if (is_source_key(k)) {
            char kinds[64];
            kinds_text(k->kinds, kinds, sizeof kinds);
            fprintf(f, " | %s", kinds);
        }
        fputs(" | ", f);
        md_cell(f, k->help);
        fputs(" |\n", f);
    }
}
