/* srv_checkresp: writes an Envoy ext_authz v3 CheckResponse straight into a
 * buffer, for the answers tokengate gives (no protobuf-c message tree).
 *
 * The bytes are those protobuf-c packs for the same message: fields in
 * field-number order, empty proto3 strings and zero numbers left out, every
 * header with append_action OVERWRITE_IF_EXISTS_OR_ADD (2), and metadata
 * values as Value{string_value} even when empty. */
#ifndef SRV_CHECKRESP_H
#define SRV_CHECKRESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authz_slice.h"

#define SRV_CHECKRESP_HEADERS_MAX 25u /* 7 identity + claim_to_headers + shadow reason + peer */
#define SRV_CHECKRESP_REMOVE_MAX                                                                             \
    21u /* claim_to_headers + x-tokengate-peer, -shadow-reason + 3 identity headers */
#define SRV_CHECKRESP_META_MAX 6u

/* A header (HeaderValueOption) or a dynamic_metadata string field. */
typedef struct srv_checkresp_pair {
    authz_slice key;
    authz_slice value;
} srv_checkresp_pair;

/* The answer to write. Slices are borrowed for the duration of the call. */
typedef struct srv_checkresp {
    int32_t code;        /* status.code (0 = allow) */
    authz_slice message; /* status.message */
    bool allow;          /* ok_response; otherwise denied_response */
    /* ok_response.headers, or denied_response.headers */
    srv_checkresp_pair headers[SRV_CHECKRESP_HEADERS_MAX];
    size_t n_headers;
    bool remove_authorization; /* allow: ok_response.headers_to_remove ["authorization"] */
    /* allow: further headers_to_remove, after "authorization" */
    authz_slice remove[SRV_CHECKRESP_REMOVE_MAX];
    size_t n_remove;
    int32_t http_status; /* deny: denied_response.status.code */
    authz_slice body;    /* deny: denied_response.body */
    /* dynamic_metadata fields (string values); no Struct when 0 */
    srv_checkresp_pair meta[SRV_CHECKRESP_META_MAX];
    size_t n_meta;
} srv_checkresp;

/* The encoded size of |r| in bytes. |r|'s counts must be within the maxima. */
size_t srv_checkresp_size(const srv_checkresp *r);

/* Writes |r| to |out|, which must hold srv_checkresp_size(r) bytes. Returns
 * the number of bytes written (that size). */
size_t srv_checkresp_encode(const srv_checkresp *r, uint8_t *out);

#endif
