/* srv_log: one JSON line per decision on stderr.
 *
 * {"time":"2024-05-01T12:00:00.123Z","request_id":..,"cluster":..,
 *  "subject":..,"source":..,"method":..,"path":..,"decision":"allow"|"deny",
 *  "reason":..,"duration_us":N,"token_sha256":"<first 8 hex>"|null}
 * The token itself is never logged, only a short prefix of its SHA-256.
 * Each line is one write(2) call, so lines from several workers do not
 * interleave and no lock is taken. */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "pol_decide.h"

/* Longest line (values are truncated to fit). */
#define SRV_LOG_LINE_MAX 4096u

/* Formats the decision line for |req| / |d| into |out| (|size| bytes,
 * newline-terminated, not NUL-terminated). |now_ns| is the wall-clock time
 * in nanoseconds since the epoch. Returns the line length (0 if |size| is
 * too small for the fixed parts). */
size_t srv_log_format(char *out, size_t size, int64_t now_ns, authz_slice request_id, const pol_request *req,
                      const pol_decision *d, uint64_t duration_us);

/* Formats and writes the line to stderr (fd 2). Errors are ignored: the
 * decision does not depend on the log. */
void srv_log_decision(authz_slice request_id, const pol_request *req, const pol_decision *d,
                      uint64_t duration_us);

#endif
