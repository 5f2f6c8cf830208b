/* homewizard.h: the HomeWizard P1 meter local API v1 (GET /api, /api/v1/data) mapped from a
 * reading, so clients written for a HomeWizard HWE-P1 (Home Assistant, evcc) work unchanged. */
#ifndef P1D_HOMEWIZARD_H
#define P1D_HOMEWIZARD_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "p1/reading.h"

#define HOMEWIZARD_SERIAL_LEN 12 /* hex digits of the serial, like a MAC address */
#define HOMEWIZARD_PRODUCT_TYPE "HWE-P1" /* the Wi-Fi P1 meter, in GET /api and mDNS */
#define HOMEWIZARD_PRODUCT_NAME "P1 meter"

/* Writes the 12 lowercase hex digits of a serial derived stably (FNV-1a) from `id` (the meter's
 * equipment id, or its name when no id is known) plus a NUL into out[HOMEWIZARD_SERIAL_LEN + 1]. */
void homewizard_serial(const char *id, char out[HOMEWIZARD_SERIAL_LEN + 1]);

/* Writes the GET /api object (product_type, product_name, serial, firmware_version, api_version)
 * as one complete JSON value into w. */
void homewizard_device(json_w *w, const char *id, const char *firmware);

/* Writes the GET /api/v1/data object for reading r as one complete JSON value into w. raw/raw_len
 * is the telegram r came from (NULL allowed): ids are reported as sent (hex) when found there.
 * Fields the reading lacks are left out, never null. */
void homewizard_data(json_w *w, const p1_reading *r, const uint8_t *raw, size_t raw_len);

/* Packs a meter time as HomeWizard's YYMMDDhhmmss number (230101080010); -1 when not valid. */
int64_t homewizard_timestamp(const p1_time *t);

#endif
