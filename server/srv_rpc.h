/* srv_rpc: the gRPC unary call carried by one HTTP/2 stream.
 *
 * srv_conn owns the stream and the nghttp2 session and hands this layer
 * what arrives (request headers, DATA, end of stream, timeouts); this layer
 * says what the request means, decides it and submits the answer.
 *
 * gRPC behaviour (grpc doc/PROTOCOL-HTTP2.md):
 * - :method other than POST: HTTP 405, no grpc-status.
 * - content-type other than "application/grpc", optionally followed by
 *   "+subtype" or ";parameters": HTTP 415.
 * - a stream that ends inside a message (its 5-byte prefix or its body) is
 *   INVALID_ARGUMENT "truncated message: ..." saying how far it got.
 * - :path /envoy.service.auth.v3.Authorization/Check and
 *   /grpc.health.v1.Health/Check are served; anything else is answered
 *   trailers-only with grpc-status 12 UNIMPLEMENTED.
 * - errors are trailers-only (one HEADERS :status 200, content-type,
 *   grpc-status, percent-encoded grpc-message, END_STREAM) followed by
 *   RST_STREAM(NO_ERROR) when the client had not ended its stream.
 * - an answer nghttp2 refuses to queue resets the stream (INTERNAL_ERROR):
 *   the client is told at once instead of waiting for its own deadline.
 *
 * Memory: the request message is held in a buffer that grows as its bytes
 * arrive, counted against two budgets (the connection's and the worker's);
 * a request that would need more than they have left is answered
 * RESOURCE_EXHAUSTED. The decision runs in the worker's one decision arena.
 * Once a call is answered it holds only its answer: the request bytes are
 * released and the arena reset, so a peer that never reads its answers
 * cannot make us keep what it sent. A request and an answer that fit the
 * call's 2 KiB slot use it instead of the heap. */
#ifndef SRV_RPC_H
#define SRV_RPC_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authz_slice.h"
#include "srv_grpc.h"
#include "srv_worker.h"

#define SRV_RPC_GRPC_MESSAGE_MAX 256u
/* Each call's own buffer: first its request message when that fits whole,
 * then its answer when that fits (a typical Check and its answer both do),
 * so the common call allocates nothing. */
#define SRV_RPC_SLOT_SIZE 2048u
#define SRV_RPC_FALLBACK_MAX 80u

typedef enum srv_rpc_kind { SRV_RPC_UNKNOWN = 0, SRV_RPC_CHECK, SRV_RPC_HEALTH } srv_rpc_kind;

/* One call. Fields are this layer's; srv_conn reads only through the
 * functions below. */
typedef struct srv_rpc_call {
    nghttp2_session *session; /* borrowed: the connection's */
    int32_t stream_id;
    srv_budget *budgets[2]; /* borrowed: the connection's and the worker's request bytes */
    srv_grpc_reader reader; /* the request message, counted in |budgets| */
    srv_rpc_kind kind;
    bool is_post;
    bool content_type_ok;
    bool encoding_other; /* grpc-encoding names a codec other than identity */
    bool timeout_bad;
    bool have_message;
    bool responded;
    bool rst_after_send; /* trailers-only answer: reset if the client is still sending */
    int error_status;    /* pending gRPC error found while reading, 0 = none */
    const char *error_message;
    uint64_t start_ns; /* uv_hrtime when the headers arrived */
    bool has_deadline;
    uint64_t deadline_ns; /* absolute uv_hrtime */
    uint8_t *resp;        /* prefix + response message: |slot|, |fallback| or owned (malloc) */
    size_t resp_len;
    size_t resp_off;
    /* Buffers last: srv_rpc_begin does not clear them. */
    char grpc_message[SRV_RPC_GRPC_MESSAGE_MAX];
    uint8_t fallback[SRV_GRPC_PREFIX_LEN + SRV_RPC_FALLBACK_MAX];
    uint8_t slot[SRV_RPC_SLOT_SIZE];
} srv_rpc_call;

/* Starts |call| for stream |stream_id| of |session|, with messages bounded
 * by |max_message_bytes| and the bytes it buffers counted in |conn_bytes|
 * and |worker_bytes| (all borrowed, outliving the call). |start_ns| is
 * uv_hrtime() when the headers began. srv_rpc_end must follow. */
void srv_rpc_begin(srv_rpc_call *call, nghttp2_session *session, int32_t stream_id, size_t max_message_bytes,
                   srv_budget *conn_bytes, srv_budget *worker_bytes, uint64_t start_ns);

/* The stream closed: releases what the call holds. */
void srv_rpc_end(srv_rpc_call *call);

/* Notes one request header (:method, :path, content-type, grpc-encoding,
 * grpc-timeout; others are ignored). */
void srv_rpc_header(srv_rpc_call *call, authz_slice name, authz_slice value);

/* The request headers are complete: answers at once what cannot be served
 * (wrong method, content-type, unknown path, bad grpc-timeout). Returns 0,
 * or -1 when the stream could be neither answered nor reset (the caller
 * closes the connection). */
int srv_rpc_headers_done(srv_rpc_call *call);

/* Feeds request DATA. Problems (too large, over a budget, compressed, a
 * second message) release the request bytes at once and are answered by
 * srv_rpc_answer_pending or srv_rpc_request_done. */
void srv_rpc_data(srv_rpc_call *call, const uint8_t *data, size_t len);

/* A frame without END_STREAM was processed: answers a problem found while
 * reading now rather than at the end of the stream. Returns 0 or -1 as
 * srv_rpc_headers_done. */
int srv_rpc_answer_pending(srv_rpc_call *call);

/* The client ended its stream: decides with |w|'s snapshot, token cache,
 * decision arena and decision log, and answers. Returns 0 or -1 as
 * srv_rpc_headers_done. */
int srv_rpc_request_done(srv_rpc_call *call, srv_worker *w);

/* The request was not complete in time: answers DEADLINE_EXCEEDED (never a
 * decision). Returns 0 or -1 as srv_rpc_headers_done. */
int srv_rpc_request_expired(srv_rpc_call *call);

/* True once an answer (or a reset) was submitted. */
bool srv_rpc_answered(const srv_rpc_call *call);

/* True when the answer was trailers-only and the client should be told to
 * stop sending with RST_STREAM(NO_ERROR) once it went out. */
bool srv_rpc_reset_after_answer(const srv_rpc_call *call);

#endif
