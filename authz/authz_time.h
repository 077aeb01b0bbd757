/* authz_time: NumericDate seconds as RFC 3339 text, the one formatter of
 * claim messages, explain's trace and the decision log. Pure arithmetic on
 * the proleptic Gregorian calendar (no gmtime, no locale, no time_t range):
 * exact for every int64 value. */
#ifndef AUTHZ_TIME_H
#define AUTHZ_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "YYYY-MM-DDTHH:MM:SSZ" and its terminator. */
#define AUTHZ_TIME_RFC3339_SIZE 21u
/* Room for any authz_time_text result: RFC 3339, or 20 digits, sign and " s". */
#define AUTHZ_TIME_TEXT_SIZE 32u

/* Writes |secs| since 1970-01-01T00:00:00Z as "YYYY-MM-DDTHH:MM:SSZ" into
 * |out| (NUL-terminated) and returns true when its year is 0000-9999, the
 * years RFC 3339 can write; else leaves |out| empty and returns false. */
bool authz_time_rfc3339(int64_t secs, char out[AUTHZ_TIME_RFC3339_SIZE]);

/* |secs| for a message: RFC 3339 as authz_time_rfc3339 writes it, or the
 * number of seconds followed by " s" outside years 0000-9999 (so a hostile
 * exp still reads as what it is). Truncated to |size| bytes, which should be
 * AUTHZ_TIME_TEXT_SIZE. Returns |buf|, for use as a printf argument. */
const char *authz_time_text(int64_t secs, char *buf, size_t size);

#endif
