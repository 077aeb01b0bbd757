/* srv_httpauth: an HTTP authorization request (Envoy's http_service, nginx
 * auth_request, Caddy and Traefik forward auth, ingress-nginx auth-url) ->
 * pol_request, and a decision -> the HTTP answer's bytes.
 *
 * What the original request was depends on the configured style
 * (pol_http_style); a header that describes the original request in one
 * style means nothing in the others:
 * - envoy: the method and path of the request line, the host from Host.
 *   The path must begin with the prefix Envoy's path_prefix adds:
 *   /clusters/<name> names the cluster, /clusters/ * (a star, which no
 *   cluster name holds) routes by host; it is removed before rules see the
 *   path. A path without it is malformed_request: a client's own path must
 *   never name the cluster.
 * - forwarded: X-Forwarded-Method, X-Forwarded-Uri, X-Forwarded-Host.
 * - original: X-Original-Method and X-Original-URL (scheme://host/path),
 *   or X-Original-URI (the path; no host) when there is no URL; when both
 *   are present the URL's path must equal the URI.
 * In forwarded and original styles the auth URL's own path may start with
 * /clusters/<name> to name the cluster (the proxy's config); without it the
 * host is matched against the clusters' hosts.
 * A header the style needs that is missing or sent more than once is
 * malformed_request.
 *
 * The source is the |hops|-th X-Forwarded-For entry from the right (the
 * listener's peer is the proxy), or X-Real-IP when the config trusts it; on
 * more than one line either leaves the source unknown (CIDR checks deny).
 * No I/O: slices borrow the request's bytes and the snapshot. */
#ifndef SRV_HTTPAUTH_H
#define SRV_HTTPAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "authz_arena.h"
#include "authz_slice.h"
#include "pol_decide.h"
#include "pol_snapshot.h"

typedef struct srv_httpauth_header {
    authz_slice name;
    authz_slice value;
} srv_httpauth_header;

/* One parsed HTTP request to the authorization listener (borrowed). */
typedef struct srv_httpauth_request {
    authz_slice method; /* of the request line */
    authz_slice target; /* the request-target as sent */
    const srv_httpauth_header *headers;
    size_t header_count;
} srv_httpauth_request;

/* The decision inputs read from a request. */
typedef struct srv_httpauth_view {
    pol_request req;
    authz_slice request_id; /* x-request-id, or empty */
    /* Why the request cannot be judged (malformed_request), or NULL. */
    const char *malformed;
    pol_header_value condition_headers[POL_MAX_CONDITION_HEADERS];
} srv_httpauth_view;

/* Fills |view| from |in| as |snap|'s http_style, http_trusted_proxy_hops
 * and http_trust_x_real_ip say (see above). req.now is left for the caller.
 * Never fails: what cannot be read sets view->malformed. */
void srv_httpauth_view_request(const pol_snapshot *snap, const srv_httpauth_request *in,
                               srv_httpauth_view *view);

/* Decides |in| on |snap| at |now| with |ctx| (a malformed view is decided
 * malformed_request without consulting pol_decide), filling |view| and
 * |out|. */
void srv_httpauth_decide(const pol_snapshot *snap, const srv_httpauth_request *in, int64_t now,
                         pol_decide_ctx *ctx, srv_httpauth_view *view, pol_decision *out);

/* Writes the HTTP/1.1 answer to |d| into |arena|: status 200 with an empty
 * body and the allow headers of srv_extauthz_describe (x-tokengate-cluster,
 * -subject, -namespace, -service-account, the shadow reason and the claim
 * headers; x-envoy-auth-headers-to-remove listing authorization unless the
 * cluster forwards tokens, and absent claim headers); or the deny's status
 * (401, 403, 400 malformed_request, 503 internal_error), its headers
 * (x-tokengate-reason, www-authenticate, content-type) and JSON body.
 * |close| adds "connection: close"; |head| (a HEAD request) leaves the body
 * out, keeping its content-length (RFC 9110 9.3.2). A header value holding a control byte
 * is never written (no response splitting): that answer, like an arena that
 * runs out, becomes the fixed 503 internal_error answer with "connection:
 * close". Sets *out / *out_len (arena-owned or constant) and returns 0, or
 * 1 when it is that fixed answer (the caller closes after sending it). */
int srv_httpauth_answer(const pol_decision *d, pol_deny_details details, bool close, bool head,
                        authz_arena *arena, uint8_t **out, size_t *out_len);

/* The fixed answer for a request that is not HTTP this listener serves
 * (|status| 400, 408, 413, 414 or 431; anything else is sent as 400),
 * always with "connection: close" and an empty body. Returns a constant
 * string. */
authz_slice srv_httpauth_protocol_error(int status);

#endif
