/* reading_json.h: a telegram's verdict, objects and p1_reading as JSON (p1 decode, /api/now). */
#ifndef P1D_READING_JSON_H
#define P1D_READING_JSON_H

#include "json.h"
#include "p1/p1.h"
#include "p1/reading.h"

/* Writes the verdict members of t into the object open in w: "ok", "error", "message", "offset",
 * "error_offset", "warning" (null, or the value an accepted telegram left out as {"error",
 * "message", "offset"}: reading_json_warning()), "crc", "crc_sent", "crc_computed", "end_line",
 * "header", "encrypted", "frame_counter", "system_title" (docs/DECODE.md). r (may be NULL) names
 * the object of a bad_value or bad_unit in "message" (t names that of a number_overflow). Both are
 * only read during the call. */
void reading_json_telegram(json_w *w, const p1_telegram *t, const p1_reading *r);
/* The message of t's error into out[cap] (NUL-terminated): p1_error_message(), preceded by the
 * object's OBIS code and ": " for a bad_value or bad_unit that r found (a bad_unit followed by
 * the unit in parentheses) and for a number_overflow. Returns out. */
const char *reading_json_message(const p1_telegram *t, const p1_reading *r, char *out,
                                 size_t cap);
/* The value an accepted telegram t left out of r (p1_reading_warning()): its code (bad_value or
 * bad_unit), the stream offset of its first character into *offset and "OBIS: message (unit)"
 * into out[cap]; P1_ERR_OK (out untouched) when t was rejected or nothing was left out. */
p1_error reading_json_warning(const p1_telegram *t, const p1_reading *r, uint64_t *offset,
                              char *out, size_t cap);
/* Writes one object as {"obis": "...", "values": [...]} in value position (an array element). */
void reading_json_object(json_w *w, const p1_object *o);
/* Writes r as a JSON object in value position: every quantity the telegram carried, with its unit
 * in the member name; absent quantities are omitted. */
void reading_json_reading(json_w *w, const p1_reading *r);
/* Writes a meter time as "YYYY-MM-DDThh:mm:ss+01:00" (offset from the DST letter, else the EU rule)
 * in value position; a placeholder time is written without checking the zone, null when its
 * fields are no possible date. */
void reading_json_time(json_w *w, const p1_time *t);

#endif
