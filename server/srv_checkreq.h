/* srv_checkreq: a zero-copy reader for the parts of an Envoy ext_authz v3
 * CheckRequest that tokengate uses.
 *
 * One pass over the wire bytes, no allocation: every slice points into the
 * caller's buffer. The whole message tree that proto/ describes is checked
 * as protobuf-c checks it (known fields must carry their wire type; unknown
 * fields of wire types 0, 1, 2 and 5 are skipped), so a message this reader
 * accepts decodes with protobuf-c and the other way round, except:
 * - a tag whose varint is >= 2^32 or names field 0 in a non-minimal encoding
 *   (protobuf-c truncates those to some field number and accepts);
 * - nesting deeper than SRV_CHECKREQ_MAX_DEPTH (protobuf-c has no bound and
 *   recurses on the C stack).
 * Values follow the protobuf specification: a singular string keeps its
 * last occurrence, repeated embedded messages merge (repeated fields
 * concatenate in wire order), a map keeps the last entry of a key. Two places where protobuf-c 1.4 differs:
 * repeated socket_address occurrences (a oneof member) merge here, while
 * protobuf-c keeps only the last one; and an Address that occurs twice with
 * its oneof unset both times (attributes{source{address{} address{}}}) is
 * valid protobuf that protobuf-c refuses. Strings are byte ranges: an embedded
 * NUL is part of the value (protobuf-c's char * stops there). */
#ifndef SRV_CHECKREQ_H
#define SRV_CHECKREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authz_slice.h"

#define SRV_CHECKREQ_MAX_DEPTH 100u

/* The headers looked up during the pass (see srv_checkreq.hdr). */
typedef enum srv_checkreq_header {
    SRV_CHECKREQ_H_AUTHORIZATION,
    SRV_CHECKREQ_H_REQUEST_ID,      /* x-request-id */
    SRV_CHECKREQ_H_FORWARDED_FOR,   /* x-forwarded-for */
    SRV_CHECKREQ_H_AUTHORITY,       /* :authority */
    SRV_CHECKREQ_H_METHOD,          /* :method */
    SRV_CHECKREQ_H_PATH,            /* :path */
    SRV_CHECKREQ_H_COUNT
} srv_checkreq_header;

/* One header lookup. */
typedef struct srv_checkreq_hit {
    bool found;        /* some entry's key matched (its value may be empty) */
    authz_slice value; /* the last matching entry's value */
    size_t count;      /* how many entries matched */
} srv_checkreq_hit;

/* What the reader extracts. Absent fields are empty slices (ptr NULL). */
typedef struct srv_checkreq {
    /* attributes.source.address.socket_address.address; empty when the
     * address is a pipe or an internal address (oneof). */
    authz_slice peer_address;
    /* attributes.source.principal and .certificate (the URL-encoded PEM
     * Envoy sends with include_peer_certificate): last occurrence wins. */
    authz_slice peer_principal;
    authz_slice peer_certificate;
    /* attributes.request.http.{method,path,host}: last occurrence wins. */
    authz_slice method;
    authz_slice path;
    authz_slice host;
    /* attributes.context_extensions["cluster"]: the last entry whose key is
     * exactly "cluster" (a map: a later entry replaces an earlier one);
     * cluster_found tells an empty value from none. */
    authz_slice cluster;
    bool cluster_found;
    /* Per header: the last entry of request.http.headers whose key equals
     * the name ignoring ASCII case (a map, as above; HTTP names ignore
     * case) ... */
    srv_checkreq_hit map_hdr[SRV_CHECKREQ_H_COUNT];
    /* ... and the last of request.http.header_map.headers (raw_value when
     * non-empty, else value). header_map is a list of the request's header
     * lines, duplicates kept: count > 1 means the client sent the header
     * more than once. */
    srv_checkreq_hit raw_hdr[SRV_CHECKREQ_H_COUNT];
} srv_checkreq;

/* Reads the CheckRequest in |buf| (|len| bytes; |buf| may be NULL when |len|
 * is 0) into |out|, whose slices borrow |buf|. Returns 0, or -1 when the
 * bytes are not a valid CheckRequest (|out| is then unspecified). Never reads
 * outside [buf, buf + len). This is also the fuzz entry point. */
int srv_checkreq_parse(const uint8_t *buf, size_t len, srv_checkreq *out);

/* Header |names| (lower-case) as request.http.headers and
 * request.http.header_map carry them. Unlike the fixed lookups (last entry
 * wins), every entry counts: two headers-map keys that differ only in case
 * are the same header twice. */
typedef struct srv_checkreq_named {
    size_t map_count;      /* headers map entries whose key equals the name ignoring case */
    authz_slice map_value; /* the last one's value */
    size_t raw_count;      /* header_map lines with the name */
    authz_slice raw_value; /* the last one's raw_value when non-empty, else value */
} srv_checkreq_named;

/* Walks the CheckRequest in |buf| again for the headers |names| (|count|
 * lower-case names; for the rules' header conditions, which the fixed
 * lookups of srv_checkreq_parse do not cover) and fills |found| (|count|
 * entries, zeroed first). No allocation; slices borrow |buf|. Returns 0,
 * or -1 when the bytes are not a valid CheckRequest. */
int srv_checkreq_find_headers(const uint8_t *buf, size_t len, const authz_slice *names, size_t count,
                              srv_checkreq_named *found);

/* The value of header |h|: the headers map's last match, else the
 * header_map's last match, else empty. */
authz_slice srv_checkreq_header_value(const srv_checkreq *req, srv_checkreq_header h);

#endif
