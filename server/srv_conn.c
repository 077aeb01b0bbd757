#include "srv_conn.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "srv_log.h"
#include "srv_rpc.h"
#include "srv_tls.h"
#include "srv_transport.h"

#define STREAM_POOL_MAX 1024u
/* After an idle GOAWAY: how long a peer that does not read gets before the
 * connection is closed with output still unsent. */
#define IDLE_CLOSE_GRACE_MS 5000u

struct srv_stream {
    srv_stream *next; /* pool or connection list */
    srv_stream *prev;
    srv_stream *ready_next; /* complete requests waiting for the end of the read */
    srv_stream *ready_prev;
    bool ready;
    srv_conn *conn;
    size_t header_bytes;
    uint64_t request_due_ms; /* uv_now by which the request must be complete */
    uint64_t answered_ms;    /* uv_now when the answer was submitted, 0 = not yet */
    srv_rpc_call call;
};

struct srv_conn {
    uv_tcp_t tcp; /* tcp.data = this */
    srv_worker *w;
    srv_conn *prev;
    srv_conn *next;
    nghttp2_session *session;
    srv_stream *streams;    /* open streams, returned to the pool on close */
    srv_stream *ready_head; /* complete requests, answered after the read is consumed */
    srv_stream *ready_tail;
    srv_sendbuf send;         /* output: gathered, and the batch in flight */
    uint64_t write_since_ms;  /* uv_now the pending uv_write was started */
    srv_budget request_bytes; /* max_buffered_bytes_per_connection */
    uv_timer_t timer;         /* request, send and idle timeouts; timer.data = this */
    uint64_t timer_due_ms;    /* uv_now the timer fires at, while active */
    uint64_t last_recv_ms;    /* uv_now of the last read with bytes */
    unsigned open_handles;    /* tcp and timer: freed when both are closed */
    bool idle_goaway;         /* idle GOAWAY sent: the next expiry closes */
    bool reading;
    bool closing;
    bool broken;               /* a stream could be neither answered nor reset: close after this read */
    srv_tls_conn *tls;         /* the TLS transport under nghttp2; NULL = h2c */
    uint64_t handshake_due_ms; /* with TLS: uv_now by which the handshake must be done */
};

static void conn_close(srv_conn *c);
static void conn_reset(srv_conn *c);
static void conn_flush(srv_conn *c);
static void conn_timer_arm(srv_conn *c, uint64_t due_ms);
static void on_conn_timer(uv_timer_t *t);
static int conn_recv(srv_conn *c, const uint8_t *data, size_t len);
static void conn_abort(srv_conn *c);

/* ---- stream pool ---- */

static srv_stream *stream_get(srv_worker *w, srv_conn *c, int32_t id)
{
    srv_stream *s = w->free_streams;
    size_t max_msg = w->snap->server.max_message_bytes;

    if (s != NULL) {
        w->free_streams = s->next;
        w->free_count--;
    } else {
        s = malloc(sizeof(*s));
        if (s == NULL) {
            return NULL;
        }
    }
    /* srv_rpc_begin clears what it needs of the call (not its buffers). */
    memset(s, 0, offsetof(srv_stream, call));
    s->conn = c;
    srv_rpc_begin(&s->call, c->session, id, max_msg, &c->request_bytes, &w->request_bytes, uv_hrtime());
    s->call.grpc_errors = w->metrics.grpc_errors;
    srv_counter_add(&w->metrics.streams, 1);
    s->request_due_ms = uv_now(&w->loop) + (uint64_t)w->snap->server.request_timeout_seconds * 1000u;
    /* Later streams never expire earlier: only an idle expiry past this one moves the timer. */
    if (!uv_is_active((uv_handle_t *)&c->timer) || c->timer_due_ms > s->request_due_ms) {
        conn_timer_arm(c, s->request_due_ms);
    }
    s->next = c->streams;
    if (c->streams != NULL) {
        c->streams->prev = s;
    }
    c->streams = s;
    return s;
}

static void ready_unlink(srv_conn *c, srv_stream *s)
{
    if (!s->ready) {
        return;
    }
    if (s->ready_prev != NULL) {
        s->ready_prev->ready_next = s->ready_next;
    } else {
        c->ready_head = s->ready_next;
    }
    if (s->ready_next != NULL) {
        s->ready_next->ready_prev = s->ready_prev;
    } else {
        c->ready_tail = s->ready_prev;
    }
    s->ready = false;
    s->ready_next = NULL;
    s->ready_prev = NULL;
}

static void ready_push(srv_conn *c, srv_stream *s)
{
    if (s->ready) {
        return;
    }
    s->ready = true;
    s->ready_next = NULL;
    s->ready_prev = c->ready_tail;
    if (c->ready_tail != NULL) {
        c->ready_tail->ready_next = s;
    } else {
        c->ready_head = s;
    }
    c->ready_tail = s;
}

static void stream_put(srv_worker *w, srv_stream *s)
{
    srv_conn *c = s->conn;

    ready_unlink(c, s);
    srv_counter_set(&w->metrics.streams, srv_counter_get(&w->metrics.streams) - 1u);
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        c->streams = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    srv_rpc_end(&s->call);
    if (w->free_count >= STREAM_POOL_MAX) {
        free(s);
        return;
    }
    s->prev = NULL;
    s->next = w->free_streams;
    w->free_streams = s;
    w->free_count++;
}

void srv_conn_free_pool(srv_worker *w)
{
    while (w->free_streams != NULL) {
        srv_stream *s = w->free_streams;
        w->free_streams = s->next;
        free(s);
    }
    w->free_count = 0;
}

/* ---- nghttp2 callbacks ---- */

/* Arms the connection's timer for |due_ms| unless it fires earlier anyway. */
static void conn_timer_at_most(srv_conn *c, uint64_t due_ms)
{
    if (!uv_is_active((uv_handle_t *)&c->timer) || c->timer_due_ms > due_ms) {
        conn_timer_arm(c, due_ms);
    }
}

static uint64_t send_timeout_ms(const srv_conn *c)
{
    return (uint64_t)c->w->snap->server.send_timeout_seconds * 1000u;
}

/* After srv_rpc handled an event of |s|: a stream whose answer could not
 * even be replaced by a reset closes the connection once the current read
 * is handled; a fresh answer starts its send timeout. */
static void stream_result(srv_stream *s, int rc)
{
    srv_conn *c = s->conn;

    if (rc != 0) {
        c->broken = true;
    }
    if (s->answered_ms == 0 && srv_rpc_answered(&s->call)) {
        /* | 1 keeps 0 meaning "not answered" (a millisecond off does not matter). */
        s->answered_ms = uv_now(&c->w->loop) | 1u;
        conn_timer_at_most(c, s->answered_ms + send_timeout_ms(c));
    }
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    srv_conn *c = user_data;
    srv_stream *s;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    if (srv_budget_room(&c->request_bytes) < SRV_CONN_STREAM_MIN_ROOM ||
        srv_budget_room(&c->w->request_bytes) < SRV_CONN_STREAM_MIN_ROOM) {
        /* Over a bound on buffered request bytes: refused, never queued. The
         * stream has no user data, so what else it sends is ignored. */
        return nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                         NGHTTP2_REFUSED_STREAM) == 0
                   ? 0
                   : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    s = stream_get(c->w, c, frame->hd.stream_id);
    if (s == NULL) {
        return nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                         NGHTTP2_REFUSED_STREAM) == 0
                   ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE
                   : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    srv_stream *s;

    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL) {
        return 0;
    }
    /* RFC 7540 §6.5.2 accounting; nghttp2 does not enforce the advertised limit. */
    s->header_bytes += namelen + valuelen + 32u;
    if (s->header_bytes > SRV_CONN_MAX_HEADER_LIST) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    srv_rpc_header(&s->call, (authz_slice){(const char *)name, namelen},
                   (authz_slice){(const char *)value, valuelen});
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                              size_t len, void *user_data)
{
    srv_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);

    (void)flags;
    (void)user_data;
    if (s != NULL) {
        srv_rpc_data(&s->call, data, len);
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    srv_stream *s;

    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
        return 0;
    }
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL || srv_rpc_answered(&s->call)) {
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        stream_result(s, srv_rpc_headers_done(&s->call));
        if (srv_rpc_answered(&s->call)) {
            return 0;
        }
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        /* Decided once the whole read is consumed: a RST_STREAM (client
         * deadline, cancel) in the same read spares the work. */
        ready_push(s->conn, s);
    } else {
        stream_result(s, srv_rpc_answer_pending(&s->call));
    }
    return 0;
}

/* After a trailers-only answer went out: when the client has not ended its
 * stream, tell it to stop with RST_STREAM(NO_ERROR) (gRPC spec). Submitting
 * the reset earlier would make nghttp2 drop the queued HEADERS. */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    srv_stream *s;
    nghttp2_stream *st;

    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        return 0;
    }
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    st = nghttp2_session_find_stream(session, frame->hd.stream_id);
    if (s == NULL || !srv_rpc_reset_after_answer(&s->call) || st == NULL) {
        return 0;
    }
    switch (nghttp2_stream_get_state(st)) {
    case NGHTTP2_STREAM_STATE_OPEN:
    case NGHTTP2_STREAM_STATE_HALF_CLOSED_LOCAL:
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
        break;
    default:
        break;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
    srv_conn *c = user_data;
    srv_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);

    (void)error_code;
    if (s != NULL) {
        nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        stream_put(c->w, s);
    }
    return 0;
}

int srv_conn_setup(srv_worker *w)
{
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;

    if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -1;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    /* Bound what a peer can make us hold for refused streams and RST floods. */
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    /* nghttp2 otherwise keeps up to max_concurrent_streams closed streams per
     * connection for the (deprecated, RFC 9113 5.3.2) priority tree: memory
     * that grows with each connection's first streams and is never used. */
    nghttp2_option_set_no_closed_streams(opt, 1);
    w->callbacks = cb;
    w->option = opt;
    return 0;
}

/* ---- socket I/O ---- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    srv_conn *c = handle->data;
    (void)suggested;
    buf->base = (char *)c->w->read_buf;
    buf->len = sizeof(c->w->read_buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    srv_conn *c = stream->data;

    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0) {
        return;
    }
    c->last_recv_ms = uv_now(&c->w->loop);
    if (conn_recv(c, (const uint8_t *)buf->base, (size_t)nread) != 0) {
        conn_abort(c);
        return;
    }
    while (c->ready_head != NULL) {
        srv_stream *s = c->ready_head;
        ready_unlink(c, s);
        stream_result(s, srv_rpc_request_done(&s->call, c->w));
    }
    if (c->broken) {
        conn_close(c);
        return;
    }
    srv_log_flush(&c->w->log);
    conn_flush(c);
}

static void on_write(uv_write_t *req, int status)
{
    srv_conn *c = req->data;

    srv_sendbuf_written(&c->send);
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_flush(c);
}

/* Appends |len| bytes to the gathered output. The buffer never grows past
 * SRV_CONN_OUT_MAX (what one gathering round can hold: the high-water mark
 * plus the largest chunk nghttp2 hands out at once); beyond it the
 * connection is dropped rather than the process's memory. Returns 0, or -1
 * over the bound or out of memory. */
static int out_append(srv_conn *c, const uint8_t *data, size_t len)
{
    return srv_bytes_append(&c->send.out, SRV_CONN_OUT_MAX, data, len);
}

/* ---- the TLS transport (srv_tls), only with the config's "tls" ---- */

static int tls_plain_in(void *arg, const uint8_t *data, size_t len)
{
    srv_conn *c = arg;
    return nghttp2_session_mem_recv(c->session, data, len) < 0 ? -1 : 0;
}

static int tls_cipher_out(void *arg, const uint8_t *data, size_t len)
{
    return out_append(arg, data, len);
}

/* Bytes read from the socket, to nghttp2 directly or through TLS. */
static int conn_recv(srv_conn *c, const uint8_t *data, size_t len)
{
    if (c->tls != NULL) {
        return srv_tls_conn_recv(c->tls, data, len);
    }
    return nghttp2_session_mem_recv(c->session, data, len) < 0 ? -1 : 0;
}

/* nghttp2 may produce output: always in h2c, after the handshake in TLS. */
static bool conn_can_send(const srv_conn *c)
{
    return c->tls == NULL || srv_tls_conn_established(c->tls);
}

/* Closes after a failed read. With TLS, the alert the refusal produced is
 * offered to the socket first (best effort: never waited for). */
static void conn_abort(srv_conn *c)
{
    if (c->tls != NULL) {
        srv_sendbuf_offer(&c->send, (uv_stream_t *)&c->tcp);
    }
    conn_close(c);
}

/* Starts the server side of the handshake on an accepted connection; it
 * must finish within the idle timeout (the request timeout when idle
 * timeouts are off), counted from now. Returns 0 or -1. */
static int conn_tls_start(srv_conn *c)
{
    const pol_server_settings *cfg = &c->w->snap->server;
    struct sockaddr_storage peer;
    int len = sizeof(peer);
    size_t seconds = cfg->idle_timeout_seconds > 0 ? cfg->idle_timeout_seconds : cfg->request_timeout_seconds;

    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &len) != 0) {
        peer.ss_family = AF_UNSPEC;
    }
    c->tls = srv_tls_conn_new(c->w->tls, (const struct sockaddr *)&peer, tls_plain_in, tls_cipher_out, c);
    if (c->tls == NULL) {
        return -1;
    }
    c->handshake_due_ms = uv_now(&c->w->loop) + (uint64_t)seconds * 1000u;
    conn_timer_at_most(c, c->handshake_due_ms);
    return 0;
}

/* Hands the gathered output to the socket; a write left pending is timed
 * by the send timeout. Returns 0 or -1. */
static int out_write(srv_conn *c)
{
    int rc = srv_sendbuf_write(&c->send, (uv_stream_t *)&c->tcp, c, on_write);

    if (rc < 0) {
        return -1;
    }
    if (rc > 0) {
        c->write_since_ms = uv_now(&c->w->loop);
        conn_timer_at_most(c, c->write_since_ms + send_timeout_ms(c));
    }
    return 0;
}

/* With TLS: what nghttp2 has to send, packed into records of up to
 * SRV_TLS_RECORD_BYTES before encryption (one SSL_write per record, not per
 * frame: an answer is three frames). Nothing before the handshake is done.
 * Returns 0 or -1. */
static int conn_gather_tls(srv_conn *c)
{
    uint8_t record[SRV_TLS_RECORD_BYTES];
    size_t len = 0;

    if (!srv_tls_conn_established(c->tls)) {
        return 0;
    }
    while (c->send.out.len < SRV_CONN_HIGH_WATER) {
        const uint8_t *data = NULL;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            break;
        }
        if ((size_t)n > sizeof(record) - len) {
            if (srv_tls_conn_send(c->tls, record, len) != 0) {
                return -1;
            }
            len = 0;
            if ((size_t)n >= sizeof(record)) {
                if (srv_tls_conn_send(c->tls, data, (size_t)n) != 0) {
                    return -1;
                }
                continue;
            }
        }
        memcpy(record + len, data, (size_t)n);
        len += (size_t)n;
    }
    return srv_tls_conn_send(c->tls, record, len);
}

/* Gathers what nghttp2 has to send into the output buffer, up to the
 * high-water mark. Returns 0 or -1. */
static int conn_gather(srv_conn *c)
{
    if (c->tls != NULL) {
        return conn_gather_tls(c);
    }
    while (c->send.out.len < SRV_CONN_HIGH_WATER) {
        const uint8_t *data = NULL;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            break;
        }
        if (out_append(c, data, (size_t)n) != 0) {
            return -1;
        }
    }
    return 0;
}

static void conn_flush(srv_conn *c)
{
    if (c->closing) {
        return;
    }
    for (;;) {
        if (conn_gather(c) != 0) {
            conn_close(c);
            return;
        }
        if (c->send.out.len == 0 || c->send.writing) {
            break;
        }
        if (out_write(c) != 0) {
            conn_close(c);
            return;
        }
        if (c->send.writing) {
            break;
        }
    }
    /* Back-pressure: a peer that does not read its answers stops being read. */
    if (c->send.out.len >= SRV_CONN_HIGH_WATER && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    } else if (c->send.out.len < SRV_CONN_HIGH_WATER && !c->reading &&
               nghttp2_session_want_read(c->session)) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            conn_close(c);
            return;
        }
        c->reading = true;
    }
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
        !c->send.writing && c->send.out.len == 0) {
        conn_close(c);
    }
}

/* ---- timeouts ---- */

static void conn_timer_arm(srv_conn *c, uint64_t due_ms)
{
    uint64_t now = uv_now(&c->w->loop);

    c->timer_due_ms = due_ms;
    uv_timer_start(&c->timer, on_conn_timer, due_ms > now ? due_ms - now : 0, 0);
}

/* The earliest time an answer of |c| has been waiting to go out since, or
 * UINT64_MAX when none waits: answers nghttp2 holds back (flow control,
 * or the socket backed up) and bytes the pending uv_write has not sent. */
static uint64_t oldest_unsent_ms(const srv_conn *c)
{
    uint64_t oldest = c->send.writing ? c->write_since_ms : UINT64_MAX;

    for (const srv_stream *s = c->streams; s != NULL; s = s->next) {
        if (s->answered_ms != 0 && s->answered_ms < oldest) {
            oldest = s->answered_ms;
        }
    }
    return oldest;
}

/* One timer per connection, armed lazily: it resets a connection whose
 * answers waited unsent longer than send_timeout_seconds, answers the
 * streams whose request is overdue, then re-arms to the earliest of the
 * remaining deadlines and the idle check. */
static void on_conn_timer(uv_timer_t *t)
{
    srv_conn *c = t->data;
    const pol_server_settings *cfg = &c->w->snap->server;
    uint64_t now = uv_now(&c->w->loop);
    uint64_t idle_ms = (uint64_t)cfg->idle_timeout_seconds * 1000u;
    uint64_t unsent = oldest_unsent_ms(c);
    uint64_t next = UINT64_MAX;

    if (c->closing) {
        return;
    }
    if (c->idle_goaway) {
        conn_close(c);
        return;
    }
    if (unsent != UINT64_MAX) {
        if (now - unsent >= send_timeout_ms(c)) {
            /* The peer does not take its answers: what it holds here (its
             * streams, its answers, its connection slot) is freed now. */
            conn_reset(c);
            return;
        }
    }
    if (!conn_can_send(c)) {
        /* Mid-handshake: no stream yet, only the handshake deadline. */
        if (now >= c->handshake_due_ms) {
            conn_close(c);
            return;
        }
        next = c->handshake_due_ms;
        if (unsent != UINT64_MAX && unsent + send_timeout_ms(c) < next) {
            next = unsent + send_timeout_ms(c);
        }
        conn_timer_arm(c, next);
        return;
    }
    for (srv_stream *s = c->streams; s != NULL; s = s->next) {
        if (srv_rpc_answered(&s->call)) {
            continue;
        }
        if (now >= s->request_due_ms) {
            stream_result(s, srv_rpc_request_expired(&s->call));
        } else if (s->request_due_ms < next) {
            next = s->request_due_ms;
        }
    }
    if (c->broken) {
        conn_close(c);
        return;
    }
    /* Requests just answered as overdue start their send timeout too. */
    unsent = oldest_unsent_ms(c);
    if (unsent != UINT64_MAX && unsent + send_timeout_ms(c) < next) {
        next = unsent + send_timeout_ms(c);
    }
    if (idle_ms > 0) {
        if (c->streams == NULL && now - c->last_recv_ms >= idle_ms) {
            /* GOAWAY with no stream open: conn_flush closes once it is written. */
            nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR, NULL,
                                  0);
            c->idle_goaway = true;
            next = now + IDLE_CLOSE_GRACE_MS;
        } else {
            /* Streams still open (answers waiting on flow control): look again later. */
            uint64_t idle_due = c->streams == NULL ? c->last_recv_ms + idle_ms : now + idle_ms;
            next = idle_due < next ? idle_due : next;
        }
    }
    if (next != UINT64_MAX) {
        conn_timer_arm(c, next);
    }
    conn_flush(c);
}

static void on_conn_closed(uv_handle_t *handle)
{
    srv_conn *c = handle->data;
    srv_worker *w = c->w;

    if (--c->open_handles > 0) {
        return;
    }
    if (c->session != NULL) {
        nghttp2_session_del(c->session);
    }
    /* nghttp2_session_del does not report stream closes: return them here. */
    while (c->streams != NULL) {
        stream_put(w, c->streams);
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else if (w->conns == c) {
        w->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    srv_tls_conn_free(c->tls);
    srv_sendbuf_free(&c->send);
    free(c);
    srv_worker_conn_closed(w);
}

static void conn_close(srv_conn *c)
{
    srv_transport_close(&c->tcp, &c->timer, &c->closing, false, on_conn_closed);
}

/* Closes with a TCP reset: what the kernel still holds for the peer is
 * dropped too, rather than lingering for a peer that does not read. */
static void conn_reset(srv_conn *c)
{
    srv_transport_close(&c->tcp, &c->timer, &c->closing, true, on_conn_closed);
}

int srv_conn_accept(srv_worker *w)
{
    srv_conn *c;
    int rc;
    nghttp2_settings_entry settings[3];

    if (w->draining || w->conn_count >= w->max_conns) {
        return srv_transport_refuse(&w->loop, &w->listener);
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return srv_transport_refuse(&w->loop, &w->listener);
    }
    c->w = w;
    c->request_bytes.max = w->snap->server.max_buffered_bytes_per_connection;
    rc = uv_tcp_init(&w->loop, &c->tcp);
    if (rc != 0) {
        free(c);
        return rc;
    }
    c->tcp.data = c;
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    c->next = w->conns;
    if (w->conns != NULL) {
        w->conns->prev = c;
    }
    w->conns = c;
    w->conn_count++;
    srv_counter_set(&w->metrics.connections, w->conn_count);
    rc = uv_accept((uv_stream_t *)&w->listener, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        conn_close(c);
        return rc;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (nghttp2_session_server_new3(&c->session, w->callbacks, c, w->option, &w->h2_mem.mem) != 0) {
        c->session = NULL;
        conn_close(c);
        return UV_ENOMEM;
    }
    settings[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    settings[0].value = (uint32_t)w->snap->server.max_concurrent_streams;
    settings[1].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
    settings[1].value = SRV_CONN_MAX_HEADER_LIST;
    settings[2].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
    settings[2].value = 1u << 20;
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, 3) != 0 ||
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 16 << 20) != 0) {
        conn_close(c);
        return UV_ENOMEM;
    }
    c->last_recv_ms = uv_now(&w->loop);
    if (w->snap->server.idle_timeout_seconds > 0) {
        conn_timer_arm(c, c->last_recv_ms + (uint64_t)w->snap->server.idle_timeout_seconds * 1000u);
    }
    if (w->tls != NULL && conn_tls_start(c) != 0) {
        conn_close(c);
        return UV_ENOMEM;
    }
    conn_flush(c);
    return 0;
}

void srv_conn_notice_all(srv_worker *w)
{
    for (srv_conn *c = w->conns; c != NULL; c = c->next) {
        if (!c->closing) {
            nghttp2_submit_shutdown_notice(c->session);
        }
    }
    for (srv_conn *c = w->conns; c != NULL; c = c->next) {
        conn_flush(c);
    }
}

void srv_conn_goaway_all(srv_worker *w)
{
    for (srv_conn *c = w->conns; c != NULL; c = c->next) {
        if (!conn_can_send(c)) {
            conn_close(c); /* mid-handshake: no stream to finish */
        } else if (!c->closing) {
            nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR, NULL,
                                  0);
        }
    }
    for (srv_conn *c = w->conns; c != NULL; c = c->next) {
        conn_flush(c);
    }
}

void srv_conn_close_all(srv_worker *w)
{
    for (srv_conn *c = w->conns; c != NULL; c = c->next) {
        conn_close(c);
    }
}
