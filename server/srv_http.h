/* srv_http: the HTTP/1.1 authorization listener's connections (config
 * "http_listen"), on the same worker loops as the gRPC listener.
 *
 * Requests are parsed with http-parser (any method, keep-alive, pipelining
 * answered in order) and decided synchronously with the worker's snapshot,
 * token cache and decision arena (srv_httpauth: request view, pol_decide,
 * answer); every decision is counted and logged like a gRPC Check. Bounds,
 * all checked before anything grows:
 * - request line and headers: SRV_HTTP_HEAD_MAX bytes (431), at most
 *   SRV_HTTP_HEADERS_MAX header lines (431), a request-target of at most
 *   SRV_HTTP_URL_MAX bytes (414);
 * - a body is never read: up to SRV_HTTP_BODY_MAX bytes are discarded, more
 *   (announced or sent) is answered 413 and the connection closed;
 * - malformed HTTP is answered 400 and the connection closed;
 * - output: when more than SRV_HTTP_HIGH_WATER bytes of answers wait, the
 *   parser pauses (what is left of the read is kept, at most one read) and
 *   reading stops until they are written;
 * - connections count against max_connections with the gRPC ones; a request
 *   must be complete request_timeout_seconds after its first byte (else 408
 *   and close), answers unsent for send_timeout_seconds reset the
 *   connection, a keep-alive connection idle for idle_timeout_seconds is
 *   closed;
 * - with "tls", the same certificates and client checks as the gRPC
 *   listener, ALPN http/1.1 (or none).
 * Draining: idle connections close at once, a request in progress gets its
 * answer with "connection: close". */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include "srv_worker.h"

#define SRV_HTTP_HEAD_MAX (64u * 1024u)
#define SRV_HTTP_HEADERS_MAX 100u
#define SRV_HTTP_URL_MAX (8u * 1024u)
#define SRV_HTTP_BODY_MAX (8u * 1024u)
#define SRV_HTTP_HIGH_WATER (64u * 1024u)
#define SRV_HTTP_OUT_MAX (1024u * 1024u)

/* Accepts one pending connection from |w|'s HTTP listener (closed at once
 * over the worker's connection share or while draining). Returns 0 or a
 * libuv error code. */
int srv_http_accept(srv_worker *w);

/* Drain: closes idle connections, marks the others to close after their
 * current answer. */
void srv_http_drain_all(srv_worker *w);

/* Closes every HTTP connection now (drain deadline). */
void srv_http_close_all(srv_worker *w);

#endif
