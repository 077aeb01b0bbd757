/* srv_grpc: pure gRPC-over-HTTP/2 helpers (no I/O).
 *
 * - Length-Prefixed-Message reassembly across DATA frames: 1 byte compressed
 *   flag, 4 bytes big-endian length, then the message. The length is checked
 *   against the bound BEFORE anything is allocated, and the message buffer
 *   grows with the bytes that arrive, never from the declared length alone
 *   (a peer that announces 1 MiB and sends 10 bytes costs 10 bytes).
 * - grpc-timeout parsing: 1-8 ASCII digits and a unit H M S m u n.
 * - grpc-message percent-encoding.
 * See grpc/grpc doc/PROTOCOL-HTTP2.md. */
#ifndef SRV_GRPC_H
#define SRV_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authz_slice.h"

/* google.rpc.Code values the server sends as grpc-status. */
enum {
    SRV_GRPC_OK = 0,
    SRV_GRPC_INVALID_ARGUMENT = 3,
    SRV_GRPC_DEADLINE_EXCEEDED = 4,
    SRV_GRPC_NOT_FOUND = 5,
    SRV_GRPC_RESOURCE_EXHAUSTED = 8,
    SRV_GRPC_UNIMPLEMENTED = 12,
    SRV_GRPC_INTERNAL = 13,
    SRV_GRPC_UNAVAILABLE = 14
};

#define SRV_GRPC_PREFIX_LEN 5u

/* Results of srv_grpc_reader_feed. */
typedef enum srv_grpc_read {
    SRV_GRPC_READ_MORE = 0,        /* all input consumed, message incomplete */
    SRV_GRPC_READ_MESSAGE = 1,     /* a message is complete (see reader.msg) */
    SRV_GRPC_READ_TOO_LARGE = -1,  /* declared length above the bound */
    SRV_GRPC_READ_COMPRESSED = -2, /* compressed flag set (we never negotiate compression) */
    SRV_GRPC_READ_BAD_FLAG = -3,   /* flag byte neither 0 nor 1 */
    SRV_GRPC_READ_NOMEM = -4,      /* the message buffer could not grow */
    SRV_GRPC_READ_OVER_BUDGET = -5 /* holding what arrived needs more than the room given */
} srv_grpc_read;

/* One message being reassembled. Zero-initialise, then set max_len (and
 * slot / slot_size to let small messages live in a buffer of the caller's
 * instead of the heap). */
typedef struct srv_grpc_reader {
    size_t max_len; /* bound on a message's length */
    uint8_t prefix[SRV_GRPC_PREFIX_LEN];
    size_t prefix_have; /* prefix bytes seen so far */
    uint8_t *slot;      /* borrowed, optional: the caller's buffer for a message that fits it whole */
    size_t slot_size;
    uint8_t *msg;    /* |slot|, or owned (malloc): the message bytes seen so far; NULL until some arrive */
    size_t msg_cap;  /* bytes allocated at msg: grown by doubling up to msg_len, or to what arrived */
    size_t msg_len;  /* declared length */
    size_t msg_have; /* message bytes seen so far */
    bool complete;   /* msg holds a whole message */
} srv_grpc_reader;

/* Consumes bytes of |data| (|len| bytes) until a message completes or the
 * input runs out; *consumed says how many were used (always all of them
 * unless SRV_GRPC_READ_MESSAGE is returned with bytes left over). The
 * message buffer grows by at most |room| bytes in this call (the caller's
 * budget): SRV_GRPC_READ_OVER_BUDGET when what arrived does not fit in it.
 * After SRV_GRPC_READ_MESSAGE, srv_grpc_reader_message gives the message;
 * call srv_grpc_reader_next before feeding more. After an error the reader
 * must not be fed again (srv_grpc_reader_release still must be called). */
srv_grpc_read srv_grpc_reader_feed(srv_grpc_reader *r, const uint8_t *data, size_t len, size_t room,
                                   size_t *consumed);

/* The completed message (|r|->msg_len bytes): never NULL, valid until the
 * next srv_grpc_reader_next or srv_grpc_reader_release. */
const uint8_t *srv_grpc_reader_message(const srv_grpc_reader *r);

/* Forgets the completed message to read the next one (the buffer is kept). */
void srv_grpc_reader_next(srv_grpc_reader *r);

/* Bytes the reader holds for the message, in its slot or on the heap (what
 * a budget counts). */
size_t srv_grpc_reader_held(const srv_grpc_reader *r);

/* Frees the message buffer (the slot is left alone); the reader keeps its
 * position, holds nothing and must not be fed again. Returns the bytes
 * released. */
size_t srv_grpc_reader_release(srv_grpc_reader *r);

/* True when the reader is between messages (no partial prefix or body). */
bool srv_grpc_reader_idle(const srv_grpc_reader *r);

/* When the stream ended with |r| inside a message (its prefix or its body),
 * writes what is missing into |out| (|out_size| bytes, NUL-terminated), e.g.
 * "truncated message: the stream ended after 40 of 100 message bytes", and
 * returns its length; returns 0 (nothing written) when |r| is between
 * messages. */
size_t srv_grpc_reader_truncation(const srv_grpc_reader *r, char *out, size_t out_size);

/* True when |value| is a gRPC content-type: exactly "application/grpc", or
 * followed by "+" (a subtype such as +proto) or ";" (parameters). Anything
 * else (application/grpcXYZ, application/grpc-web) is not gRPC (grpc
 * doc/PROTOCOL-HTTP2.md, Content-Type). */
bool srv_grpc_content_type_ok(authz_slice value);

/* Writes the 5-byte prefix for an uncompressed message of |len| bytes.
 * Returns 0, or -1 when |len| does not fit in 32 bits. */
int srv_grpc_prefix_write(uint8_t out[SRV_GRPC_PREFIX_LEN], size_t len);

/* Parses a grpc-timeout value into nanoseconds (saturating at UINT64_MAX).
 * Returns 0, or -1 when |value| is not 1-8 digits followed by one unit. */
int srv_grpc_timeout_parse(authz_slice value, uint64_t *out_ns);

/* Percent-encodes |in| for grpc-message into |out| (|out_size| bytes, NUL
 * terminated when out_size > 0): bytes 0x20-0x7E except '%' pass through,
 * others become %XX (upper-case hex). Stops before an escape that would not
 * fit, so the output is never cut inside one. Returns the output length. */
size_t srv_grpc_percent_encode(authz_slice in, char *out, size_t out_size);

#endif
