#include "checkreq_builder.h"

#include <criterion/criterion.h>
#include <string.h>

void rb_init(req_builder *b)
{
    memset(b, 0, sizeof(*b));
    envoy__service__auth__v3__check_request__init(&b->req);
    envoy__service__auth__v3__attribute_context__init(&b->attrs);
    envoy__service__auth__v3__attribute_context__peer__init(&b->source);
    envoy__service__auth__v3__attribute_context__peer__init(&b->dest);
    envoy__config__core__v3__address__init(&b->addr);
    envoy__config__core__v3__address__init(&b->dest_addr);
    envoy__config__core__v3__socket_address__init(&b->sock);
    envoy__config__core__v3__socket_address__init(&b->dest_sock);
    envoy__service__auth__v3__attribute_context__request__init(&b->request);
    envoy__service__auth__v3__attribute_context__http_request__init(&b->http);
    envoy__config__core__v3__header_map__init(&b->header_map);
    b->req.attributes = &b->attrs;
    b->attrs.request = &b->request;
    b->request.http = &b->http;
    b->http.headers = b->header_ptrs;
    b->header_map.headers = b->raw_ptrs;
    b->attrs.context_extensions = b->ext_ptrs;
}

void rb_peer(req_builder *b, const char *ip)
{
    b->attrs.source = &b->source;
    b->source.address = &b->addr;
    b->addr.address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    b->addr.socket_address = &b->sock;
    b->sock.address = (char *)ip;
    b->sock.port_specifier_case = ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    b->sock.port_value = 44123;
    b->attrs.destination = &b->dest;
    b->dest.address = &b->dest_addr;
    b->dest_addr.address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    b->dest_addr.socket_address = &b->dest_sock;
    b->dest_sock.address = (char *)"10.0.0.10";
}

void rb_header(req_builder *b, const char *key, const char *value)
{
    cr_assert_lt(b->http.n_headers, RB_MAX_HEADERS);
    Envoy__Service__Auth__V3__AttributeContext__HttpRequest__HeadersEntry *e = &b->headers[b->http.n_headers];
    envoy__service__auth__v3__attribute_context__http_request__headers_entry__init(e);
    e->key = (char *)key;
    e->value = (char *)value;
    b->header_ptrs[b->http.n_headers++] = e;
}

void rb_raw_header(req_builder *b, const char *key, const char *value, const char *raw)
{
    cr_assert_lt(b->header_map.n_headers, RB_MAX_HEADERS);
    Envoy__Config__Core__V3__HeaderValue *h = &b->raw[b->header_map.n_headers];
    envoy__config__core__v3__header_value__init(h);
    h->key = (char *)key;
    if (value != NULL)
        h->value = (char *)value;
    if (raw != NULL) {
        h->raw_value.data = (uint8_t *)raw;
        h->raw_value.len = strlen(raw);
    }
    b->raw_ptrs[b->header_map.n_headers++] = h;
    b->http.header_map = &b->header_map;
}

void rb_ext(req_builder *b, const char *key, const char *value)
{
    cr_assert_lt(b->attrs.n_context_extensions, RB_MAX_EXTENSIONS);
    Envoy__Service__Auth__V3__AttributeContext__ContextExtensionsEntry *e =
        &b->ext[b->attrs.n_context_extensions];
    envoy__service__auth__v3__attribute_context__context_extensions_entry__init(e);
    e->key = (char *)key;
    e->value = (char *)value;
    b->ext_ptrs[b->attrs.n_context_extensions++] = e;
}
