/* checkreq_builder: CheckRequests built with protobuf-c for the server
 * tests, as Envoy would send them; all storage lives in the struct. */
#ifndef CHECKREQ_BUILDER_H
#define CHECKREQ_BUILDER_H

#include "envoy/service/auth/v3/external_auth.pb-c.h"

#define RB_MAX_HEADERS 12
#define RB_MAX_EXTENSIONS 4

typedef struct req_builder {
    Envoy__Service__Auth__V3__CheckRequest req;
    Envoy__Service__Auth__V3__AttributeContext attrs;
    Envoy__Service__Auth__V3__AttributeContext__Peer source, dest;
    Envoy__Config__Core__V3__Address addr, dest_addr;
    Envoy__Config__Core__V3__SocketAddress sock, dest_sock;
    Envoy__Service__Auth__V3__AttributeContext__Request request;
    Envoy__Service__Auth__V3__AttributeContext__HttpRequest http;
    Envoy__Service__Auth__V3__AttributeContext__HttpRequest__HeadersEntry headers[RB_MAX_HEADERS];
    Envoy__Service__Auth__V3__AttributeContext__HttpRequest__HeadersEntry *header_ptrs[RB_MAX_HEADERS];
    Envoy__Config__Core__V3__HeaderMap header_map;
    Envoy__Config__Core__V3__HeaderValue raw[RB_MAX_HEADERS];
    Envoy__Config__Core__V3__HeaderValue *raw_ptrs[RB_MAX_HEADERS];
    Envoy__Service__Auth__V3__AttributeContext__ContextExtensionsEntry ext[RB_MAX_EXTENSIONS];
    Envoy__Service__Auth__V3__AttributeContext__ContextExtensionsEntry *ext_ptrs[RB_MAX_EXTENSIONS];
} req_builder;

/* An empty request with attributes.request.http present. */
void rb_init(req_builder *b);

/* Source address |ip| (borrowed) with a port, and a destination peer (which
 * the adapter must ignore). */
void rb_peer(req_builder *b, const char *ip);

/* One entry of request.http.headers (the map form); strings borrowed. */
void rb_header(req_builder *b, const char *key, const char *value);

/* One entry of request.http.header_map (encode_raw_headers): |raw|
 * non-NULL sets raw_value, |value| non-NULL sets value; strings borrowed. */
void rb_raw_header(req_builder *b, const char *key, const char *value, const char *raw);

/* One context_extensions entry; strings borrowed. */
void rb_ext(req_builder *b, const char *key, const char *value);

#endif
