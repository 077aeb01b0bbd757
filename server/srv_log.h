/* srv_log: one JSON line per decision on stderr.
 *
 * {"time":"2024-05-01T12:00:00.123Z","request_id":..,"cluster":..,
 *  "issuer_cluster":..,"subject":..,"source":..,"host":..,"method":..,
 *  "path":..,"decision":"allow"|"deny"|"shadow_deny","reason":..,"rule":..,
 *  "peer":..,"peer_binding":"bound"|"unbound"|"mismatch"|"missing",
 *  "message":..,"generation":N,
 *  "duration_us":N,"token_sha256":"<first 8 hex>"|null}
 * Absent values are null (peer_binding too when the binding is off or the
 * decision ended before it; peer is the mesh identity presented). subject
 * is set whenever the token's signature verified, also when a later check
 * denied (who was refused); message is
 * the decision's detailed message (clients get at most the reason's public
 * sentence); the path is logged without its query or fragment, which carry
 * secrets. Values are JSON-escaped (bytes outside printable ASCII as \u00XX)
 * and cut to a budget so a line never exceeds SRV_LOG_LINE_MAX.
 * The token itself is never logged, only a short prefix of its SHA-256.
 * Lines are gathered per worker and written whole, at most PIPE_BUF bytes
 * a write(2), so lines from several workers do not interleave and no lock is
 * taken. */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "pol_decide.h"

/* The decision as logged and counted: "allow", "deny" or "shadow_deny"
 * (allowed only because a shadow-mode rule or cluster did not enforce). */
authz_slice srv_log_decision_name(const pol_decision *d);

/* Its reason: ok for an allow, the unenforced denial's for shadow_deny. */
authz_reason srv_log_decision_reason(const pol_decision *d);

/* Longest line (values are truncated to fit). */
#define SRV_LOG_LINE_MAX 4096u

/* Formats the decision line for |req| / |d| into |out| (|size| bytes,
 * newline-terminated, not NUL-terminated). |now_ns| is the wall-clock time
 * in nanoseconds since the epoch. Returns the line length (0 if |size| is
 * too small for the fixed parts). */
size_t srv_log_format(char *out, size_t size, int64_t now_ns, authz_slice request_id, const pol_request *req,
                      const pol_decision *d, uint64_t duration_us);

/* Bytes of decision lines gathered before one write(2): PIPE_BUF, so each
 * write of whole lines is atomic even on a pipe and lines from several
 * workers never interleave. */
#define SRV_LOG_BATCH_BYTES 4096u

/* A worker's pending decision lines (one per worker, no lock). */
typedef struct srv_log_batch {
    size_t len;
    char data[SRV_LOG_BATCH_BYTES];
} srv_log_batch;

/* Formats the decision line and appends it to |batch|, writing the batch
 * to stderr first when the line would not fit. The caller flushes with
 * srv_log_flush once it has answered what one read brought in. Errors are
 * ignored: the decision does not depend on the log. */
void srv_log_decision(srv_log_batch *batch, authz_slice request_id, const pol_request *req,
                      const pol_decision *d, uint64_t duration_us);

/* Writes the pending lines to stderr (fd 2) in one write(2) and empties
 * |batch|. */
void srv_log_flush(srv_log_batch *batch);

#endif
