/* srv_conn: one HTTP/2 (h2c, prior knowledge) connection and its gRPC
 * streams.
 *
 * Reads feed nghttp2_session_mem_recv; nghttp2's output is gathered with
 * nghttp2_session_mem_send into a per-connection buffer, written with
 * uv_try_write and, for what the socket does not take at once, uv_write.
 * When more than SRV_CONN_HIGH_WATER bytes wait to be written the
 * connection stops reading until the backlog drains.
 *
 * Timeouts (one uv_timer per connection, re-armed to the earliest due time):
 * - request_timeout_seconds after its HEADERS, a stream whose request is not
 *   complete and not yet answered gets a trailers-only DEADLINE_EXCEEDED
 *   (never a decision), then RST_STREAM(NO_ERROR);
 * - a connection whose answers waited unsent (held back by flow control or
 *   a peer that does not read) longer than send_timeout_seconds is closed
 *   with a TCP reset, freeing its streams and its max_connections slot;
 * - a connection with no open stream that received nothing for
 *   idle_timeout_seconds gets GOAWAY and is closed once that is written (or
 *   a few seconds later if the peer does not read).
 *
 * What each stream's request means and how it is answered is srv_rpc's. */
#ifndef SRV_CONN_H
#define SRV_CONN_H

#include "srv_worker.h"

#define SRV_CONN_HIGH_WATER (64u * 1024u)
#define SRV_CONN_MAX_HEADER_LIST (64u * 1024u)
/* Most output gathered at once: the high-water mark plus far more than the
 * largest frame nghttp2 serialises for our small answers. Past it the
 * connection is closed (curl's dynbuf habit: every buffer has a bound). */
#define SRV_CONN_OUT_MAX (1024u * 1024u)
/* A new stream is refused (RST_STREAM REFUSED_STREAM) when less than this
 * (one default-sized DATA frame) is left below either bound on buffered
 * request bytes, the connection's or the worker's. */
#define SRV_CONN_STREAM_MIN_ROOM (16u * 1024u)

/* Creates the nghttp2 callback table and options a worker shares among its
 * connections. Returns 0 or -1 (out of memory). */
int srv_conn_setup(srv_worker *w);

/* Accepts one pending connection from |w|'s listener. Over the worker's
 * connection share, or while draining, the connection is accepted and
 * closed at once. Returns 0 or a libuv error code. */
int srv_conn_accept(srv_worker *w);

/* First drain step: SETTINGS-safe GOAWAY notice on every connection. */
void srv_conn_notice_all(srv_worker *w);

/* Second drain step: final GOAWAY (last processed stream) on every
 * connection; connections close once their streams finish. */
void srv_conn_goaway_all(srv_worker *w);

/* Closes every connection now (drain deadline). */
void srv_conn_close_all(srv_worker *w);

/* Releases the worker's pooled streams (at worker destruction). */
void srv_conn_free_pool(srv_worker *w);

#endif
