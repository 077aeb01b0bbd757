/* srv_worker: one thread, one libuv loop, one SO_REUSEPORT listening socket.
 *
 * Workers share nothing mutable on the request path: each owns its loop,
 * its listener (the kernel spreads connections over the sockets), its
 * connections, its stream pool and a reference on the config snapshot. The
 * only cross-thread traffic is the drain request (uv_async) and the
 * process-wide draining flag (atomic, read by health checks). */
#ifndef SRV_WORKER_H
#define SRV_WORKER_H

#include <nghttp2/nghttp2.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "authz_arena.h"
#include "pol_snapshot.h"
#include "pol_token_cache.h"
#include "srv_log.h"
#include "srv_mempool.h"
#include "srv_metrics.h"
#include "srv_tls.h"

#define SRV_READ_BUF_SIZE (64u * 1024u)
/* The decision arena's chunk: one is kept between decisions. */
#define SRV_DECIDE_ARENA_CHUNK (16u * 1024u)

typedef struct srv_conn srv_conn;
typedef struct srv_stream srv_stream;
typedef struct srv_http_conn srv_http_conn;

/* Bytes held for requests not yet decided, and the bound on them. */
typedef struct srv_budget {
    size_t held;
    size_t max;
} srv_budget;

/* Bytes |b| can still take. */
static inline size_t srv_budget_room(const srv_budget *b)
{
    return b->held < b->max ? b->max - b->held : 0;
}

typedef struct srv_worker {
    size_t index;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_tcp_t http_listener; /* the HTTP authorization listener, with http_listen */
    bool http_listener_open;
    uv_async_t wake;   /* drain request from the main thread */
    uv_async_t reload; /* a new snapshot waits in next_snap */
    bool reload_open;
    uv_timer_t goaway_timer; /* final GOAWAY, one moment after the notice */
    uv_timer_t force_timer;  /* closes whatever is left at the deadline */
    uv_thread_t thread;
    bool loop_ready;
    bool listener_open;
    bool draining; /* this worker has started draining */
    bool timers_open;
    atomic_bool *stopping;             /* process-wide: health answers NOT_SERVING */
    pol_snapshot *snap;                /* own reference; replaced between events by a reload */
    _Atomic(pol_snapshot *) next_snap; /* own reference, handed over by srv_worker_publish */
    atomic_size_t next_max_conns;      /* max_conns that goes with next_snap */
    pol_token_cache *cache;            /* verified tokens, this worker's own; NULL when off */
    nghttp2_session_callbacks *callbacks;
    nghttp2_option *option;
    srv_mempool h2_mem;            /* every allocation of this worker's nghttp2 sessions */
    srv_tls *tls;                  /* borrowed from srv_serve, set before start: the listener's TLS; NULL = h2c */
    struct srv_keyfetch *keyfetch; /* borrowed, set before start: told of kid misses; NULL = none */
    size_t max_conns;              /* this worker's share of max_connections */
    size_t conn_count;             /* both listeners' connections: max_conns bounds them together */
    srv_conn *conns;               /* open connections (doubly linked) */
    srv_http_conn *http_conns;     /* open HTTP/1.1 connections (doubly linked) */
    srv_stream *free_streams;      /* reusable streams */
    size_t free_count;
    srv_budget request_bytes;            /* over all connections: max_buffered_bytes_per_worker */
    authz_arena decide_arena;            /* one decision at a time: reset after each answer */
    srv_log_batch log;                   /* decision lines of the current read, written after it */
    srv_metrics metrics;                 /* written by this worker only, summed by the admin thread */
    uint8_t read_buf[SRV_READ_BUF_SIZE]; /* every read is consumed synchronously */
} srv_worker;

/* Fails when another socket already listens on |addr|: SO_REUSEPORT would
 * otherwise let a second tokengate share the port silently (same user).
 * Binds a probe socket without SO_REUSEPORT and closes it. Returns 0, or -1
 * with |err| set. */
int srv_worker_probe_addr(const struct sockaddr *addr, char *err, size_t err_size);

/* Prepares |w| (on the calling thread): loop, nghttp2 callbacks, a socket
 * bound to |addr| with SO_REUSEPORT and listening, and the worker's token
 * cache (token_cache_size entries, none when 0). Takes a reference on
 * |snap|. |stopping| is borrowed and must outlive the worker. Returns 0, or
 * -1 with |err| (|err_size| bytes) describing the failure; srv_worker_destroy
 * must be called in both cases. */
int srv_worker_init(srv_worker *w, size_t index, const struct sockaddr *addr, pol_snapshot *snap,
                    atomic_bool *stopping, size_t max_conns, char *err, size_t err_size);

/* The port the worker's socket is bound to (for "port 0" configs). */
int srv_worker_port(const srv_worker *w);

/* Adds the HTTP authorization listener (srv_http): a second SO_REUSEPORT
 * socket bound to |addr| on the same loop, after srv_worker_init and before
 * srv_worker_start. Returns 0, or -1 with |err| set. */
int srv_worker_listen_http(srv_worker *w, const struct sockaddr *addr, char *err, size_t err_size);

/* The port of the HTTP listener, or -1 when there is none. */
int srv_worker_http_port(const srv_worker *w);

/* A connection of either listener has closed (its handles are released):
 * counts it off and, when draining ends with it, closes the drain timers. */
void srv_worker_conn_closed(srv_worker *w);

/* What every front door does with a decision it made: the worker's metrics
 * (decision, duration since |t0_ns|, token cache outcome of |ctx|) and, with
 * log_decisions, the decision log line for |req| and |d|. */
void srv_worker_record_decision(srv_worker *w, const pol_decide_ctx *ctx, authz_slice request_id,
                                const pol_request *req, const pol_decision *d, uint64_t t0_ns);

/* Starts the worker thread. Returns 0 or -1. */
int srv_worker_start(srv_worker *w);

/* Milliseconds a drain may take before connections are closed by force
 * (under the 5 s a supervisor grants after SIGTERM). */
#define SRV_DRAIN_DEADLINE_MS 4000u

/* Asks the worker to drain (thread-safe): stop accepting, GOAWAY every
 * connection, finish in-flight streams, close whatever is left after
 * SRV_DRAIN_DEADLINE_MS. The thread ends when nothing is left. */
void srv_worker_drain(srv_worker *w);

/* Hands |snap| (the worker takes its own reference) to the worker, thread-
 * safe, from the thread that calls srv_worker_drain. The worker switches
 * between two events on its loop: a decision is always made whole on one
 * snapshot, since checks are decided synchronously where the message
 * completes. |max_conns| is the worker's new share of max_connections. A
 * snapshot published earlier and not yet taken is dropped. Not after drain. */
void srv_worker_publish(srv_worker *w, pol_snapshot *snap, size_t max_conns);

/* Waits for the worker thread to end. */
void srv_worker_join(srv_worker *w);

/* Releases what srv_worker_init took (after join, or when start failed). */
void srv_worker_destroy(srv_worker *w);

#endif
