/* srv_extauthz: the Envoy ext_authz v3 adapter.
 *
 * CheckRequest (wire bytes, read by srv_checkreq) -> pol_request,
 * pol_decide, pol_decision -> CheckResponse (written by srv_checkresp).
 * Everything is allocated from the caller's arena; slices in the results
 * point into the request bytes or the arena and stay valid while both do.
 * No I/O, no protobuf-c on this path. */
#ifndef SRV_EXTAUTHZ_H
#define SRV_EXTAUTHZ_H

#include <stddef.h>
#include <stdint.h>

#include "authz_arena.h"
#include "authz_slice.h"
#include "pol_decide.h"
#include "pol_snapshot.h"
#include "srv_checkreq.h"
#include "srv_checkresp.h"

/* What the adapter reads of a CheckRequest besides the decision inputs. */
typedef struct srv_extauthz_view {
    pol_request req;        /* decision inputs (now left for the caller) */
    authz_slice request_id; /* x-request-id of the original request, or empty */
    /* The rules' condition headers (req.condition_headers points here),
     * filled by srv_extauthz_check. */
    pol_header_value condition_headers[POL_MAX_CONDITION_HEADERS];
} srv_extauthz_view;

/* Fills |view| from |msg| (read by srv_checkreq_parse; slices borrow what
 * its slices borrow). Headers come from the headers map, else header_map
 * (raw_value, else value), names compared ignoring case, the last entry
 * winning (see srv_checkreq.h):
 * - authorization: that header; when header_map carries it on more than one
 *   line, authorization_repeated (two credentials: malformed_token);
 * - host: request.http.host, else the ":authority" header;
 * - method / path: request.http.method / path, else ":method" / ":path";
 * - cluster: context_extensions["cluster"]; present but empty gives a
 *   non-NULL empty slice (unknown_cluster, never the host's cluster);
 * - peer principal / certificate: source.principal / source.certificate;
 * - source: with |trusted_proxy_hops| 0, source.address.socket_address.address;
 *   with N > 0, the N-th entry from the right of x-forwarded-for (1 = the
 *   rightmost). Fewer than N entries, an empty entry, or x-forwarded-for on
 *   more than one header_map line (which line a proxy appended to is
 *   unknowable) leaves the source unknown (empty), which the decision denies
 *   whenever CIDRs apply: a client could otherwise pick its own address. */
void srv_extauthz_view_request(const srv_checkreq *msg, size_t trusted_proxy_hops, srv_extauthz_view *view);

/* The |hops|-th comma-separated entry from the right of |xff| (1 = the
 * last), trimmed of spaces and tabs, borrowing |xff|; empty (ptr NULL) when
 * there are fewer entries. */
authz_slice srv_extauthz_xff_from_right(authz_slice xff, size_t hops);

/* Describes the answer to |d| in |r| (what srv_extauthz_build_response
 * packs, and what the HTTP listener writes as status, headers and body),
 * with strings in |arena| or borrowed from |d|. Returns 0, or -1 when the
 * arena runs out. */
int srv_extauthz_describe(const pol_decision *d, pol_deny_details details, authz_arena *arena,
                          srv_checkresp *r);

/* Builds the CheckResponse for |d| and packs it into |arena|:
 * - always status.code = authz_reason_grpc_code (0 on allow);
 * - allow: ok_response.headers x-tokengate-{cluster,subject,namespace,
 *   service-account} and each present claim_to_headers value (value,
 *   append_action OVERWRITE_IF_EXISTS_OR_ADD), headers_to_remove
 *   ["authorization"] unless the cluster forwards tokens, then the
 *   claim_to_headers headers whose claim is absent (a client's own copy
 *   never reaches the upstream); x-tokengate-peer with the SPIFFE ID when
 *   the peer binding is bound, else listed in headers_to_remove;
 * - deny: status.message "<reason>: <message>", denied_response with the
 *   reason's HTTP status, headers x-tokengate-reason, www-authenticate on
 *   401 (RFC 6750 3.1: `Bearer realm="tokengate"` alone for missing_token,
 *   with error="invalid_token" and error_description="<reason>" otherwise)
 *   and content-type application/json, and the JSON body
 *   {"allowed":false,"reason":..,"message":..}. The message is the reason's
 *   public sentence (authz_reason_public_message) unless |details| is
 *   POL_DENY_DETAILS_FULL, which gives the decision's detailed message;
 * - dynamic_metadata (Envoy's, not the client's): cluster, subject,
 *   namespace, service_account, reason on allow; reason (and cluster when
 *   known) on deny.
 * On success returns 0 with *out / *out_len the packed bytes (arena-owned).
 * Returns -1 when the arena runs out. */
int srv_extauthz_build_response(const pol_decision *d, pol_deny_details details, authz_arena *arena,
                                uint8_t **out, size_t *out_len);

/* Packs the fixed fallback answer (deny, 13 INTERNAL, HTTP 503,
 * "internal_error") into |buf| (|size| bytes). Used when building the full
 * answer failed: a decision must never become an RPC error. Returns the
 * length, or 0 when |size| is too small (64 bytes always suffice). */
size_t srv_extauthz_fallback_response(uint8_t *buf, size_t size);

/* The result of one Check. */
typedef struct srv_extauthz_result {
    srv_extauthz_view view;
    pol_decision decision;
    uint8_t *response; /* packed CheckResponse, arena-owned */
    size_t response_len;
} srv_extauthz_result;

/* Runs one Check: reads |msg| (|len| bytes, borrowed: the view's slices
 * point into it) in one pass (a second one when the snapshot's rules have
 * header conditions, for those headers: per name the headers map's entries
 * when it has any, else header_map's lines, with their count), views it,
 * decides with |snap| at |now| (using |ctx|) and builds the response in
 * ctx->arena with the snapshot's deny_details. Returns 0, -1 when the
 * message does not decode (INVALID_ARGUMENT), -2 when the arena ran out
 * while building the response (the caller answers with
 * srv_extauthz_fallback_response, a deny). */
int srv_extauthz_check(const pol_snapshot *snap, const uint8_t *msg, size_t len, int64_t now,
                       pol_decide_ctx *ctx, srv_extauthz_result *out);

#endif
