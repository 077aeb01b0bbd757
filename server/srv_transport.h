/* srv_transport: what a worker's gRPC (srv_conn) and HTTP/1.1 (srv_http)
 * connections share below their protocols: bounded byte buffers, the
 * hand-off of gathered output to the socket, closing a connection's socket
 * and timer pair, and refusing a connection over the limit. */
#ifndef SRV_TRANSPORT_H
#define SRV_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* A byte buffer that grows (from 4 KiB, doubling) up to a bound its user
 * gives on every append. */
typedef struct srv_bytes {
    uint8_t *data; /* owned */
    size_t len;
    size_t cap;
} srv_bytes;

/* Appends |n| bytes of |data| to |b|, which never grows past |max| bytes.
 * Returns 0, or -1 over the bound or out of memory (|b| unchanged). */
int srv_bytes_append(srv_bytes *b, size_t max, const void *data, size_t n);

/* Frees |b|'s memory and empties it. */
void srv_bytes_free(srv_bytes *b);

/* A connection's output: gathered into |out| while the previous batch,
 * handed to one uv_write, is in flight from the other buffer (they swap). */
typedef struct srv_sendbuf {
    srv_bytes out;     /* gathered, not yet handed to the socket */
    uint8_t *inflight; /* owned; the pending uv_write's bytes */
    size_t inflight_cap;
    uv_write_t wreq;
    bool writing; /* a uv_write is pending */
} srv_sendbuf;

/* Hands what |sb| gathered to |stream|: uv_try_write first, then one
 * uv_write for the rest, whose completion calls |done| with
 * wreq.data = |owner| (|done| must call srv_sendbuf_written first). Call
 * only while !sb->writing. Returns 1 when a uv_write is now pending, 0 when
 * everything was written, -1 on a socket error. */
int srv_sendbuf_write(srv_sendbuf *sb, uv_stream_t *stream, void *owner, uv_write_cb done);

/* Marks the pending uv_write of |sb| complete. */
void srv_sendbuf_written(srv_sendbuf *sb);

/* Offers what |sb| gathered to |stream| once, never waiting (a TLS alert
 * before closing): nothing when a uv_write is pending or nothing is
 * gathered. */
void srv_sendbuf_offer(srv_sendbuf *sb, uv_stream_t *stream);

/* Frees both buffers of |sb|. */
void srv_sendbuf_free(srv_sendbuf *sb);

/* Closes a connection's |tcp| and |timer| once, |on_closed| running for
 * each (*closing set; nothing when already set). With |reset| the socket is
 * closed with a TCP reset, so what the kernel holds for a peer that does not
 * read is dropped too (a plain close when the reset is refused). */
void srv_transport_close(uv_tcp_t *tcp, uv_timer_t *timer, bool *closing, bool reset, uv_close_cb on_closed);

/* Accepts the pending connection on |listener| (of |loop|) and closes it at
 * once: a client over the connection limit is refused, not left queued.
 * Returns 0 or a libuv error. */
int srv_transport_refuse(uv_loop_t *loop, uv_tcp_t *listener);

#endif
