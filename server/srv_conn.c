#include "srv_conn.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "srv_extauthz.h"
#include "srv_grpc.h"
#include "srv_health.h"
#include "srv_log.h"

#define STREAM_POOL_MAX 1024u
#define STREAM_ARENA_CHUNK (16u * 1024u)
#define GRPC_MESSAGE_MAX 256u
#define FALLBACK_MAX 80u
/* After an idle GOAWAY: how long a peer that does not read gets before the
 * connection is closed with output still unsent. */
#define IDLE_CLOSE_GRACE_MS 5000u

typedef enum rpc_kind { RPC_UNKNOWN = 0, RPC_CHECK, RPC_HEALTH } rpc_kind;

struct srv_stream {
    srv_stream *next; /* pool or connection list */
    srv_stream *prev;
    srv_stream *ready_next; /* complete requests waiting for the end of the read */
    srv_stream *ready_prev;
    bool ready;
    srv_conn *conn;
    int32_t id;
    authz_arena arena; /* everything this request allocates */
    srv_grpc_reader reader;
    rpc_kind rpc;
    bool is_post;
    bool content_type_ok;
    bool encoding_other; /* grpc-encoding names a codec other than identity */
    bool timeout_bad;
    bool have_message;
    bool responded;
    bool rst_after_send; /* trailers-only answer: reset if the client is still sending */
    int error_status;    /* pending gRPC error found while reading, 0 = none */
    const char *error_message;
    size_t header_bytes;
    uint64_t start_ns; /* uv_hrtime when the headers arrived */
    bool has_deadline;
    uint64_t deadline_ns;    /* absolute uv_hrtime */
    uint64_t request_due_ms; /* uv_now by which the request must be complete */
    const uint8_t *msg;      /* the request message (arena) */
    size_t msg_len;
    uint8_t *resp; /* prefix + response message */
    size_t resp_len;
    size_t resp_off;
    char grpc_message[GRPC_MESSAGE_MAX];
    uint8_t fallback[SRV_GRPC_PREFIX_LEN + FALLBACK_MAX];
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
    uint8_t *out; /* gathered output not yet handed to the socket */
    size_t out_len;
    size_t out_cap;
    uint8_t *inflight; /* buffer owned by the pending uv_write */
    size_t inflight_cap;
    uv_write_t wreq;
    uv_timer_t timer;      /* request and idle timeouts; timer.data = this */
    uint64_t timer_due_ms; /* uv_now the timer fires at, while active */
    uint64_t last_recv_ms; /* uv_now of the last read with bytes */
    unsigned open_handles; /* tcp and timer: freed when both are closed */
    bool idle_goaway;      /* idle GOAWAY sent: the next expiry closes */
    bool writing;
    bool reading;
    bool closing;
};

#define NV_STATIC(n, v)                                                                                      \
    {                                                                                                        \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1,                                        \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                                     \
    }

static void conn_close(srv_conn *c);
static void conn_flush(srv_conn *c);
static void conn_timer_arm(srv_conn *c, uint64_t due_ms);
static void on_conn_timer(uv_timer_t *t);

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
        /* Unpacking costs a few times the wire size; the budget bounds it. */
        authz_arena_init(&s->arena, NULL, STREAM_ARENA_CHUNK, 8u * max_msg + 256u * 1024u);
    }
    {
        authz_arena keep = s->arena;
        memset(s, 0, sizeof(*s));
        s->arena = keep;
    }
    s->conn = c;
    s->id = id;
    s->reader.max_len = max_msg;
    s->start_ns = uv_hrtime();
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
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        c->streams = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    authz_arena_reset(&s->arena);
    if (w->free_count >= STREAM_POOL_MAX) {
        authz_arena_free(&s->arena);
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
        authz_arena_free(&s->arena);
        free(s);
    }
    w->free_count = 0;
}

/* ---- responses ---- */

static void respond_http(srv_stream *s, const char *status)
{
    nghttp2_nv nva[2] = {
        {(uint8_t *)(uintptr_t) ":status", (uint8_t *)(uintptr_t)status, 7, strlen(status),
         NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE},
        NV_STATIC("allow", "POST"),
    };
    size_t n = strcmp(status, "405") == 0 ? 2 : 1;

    s->responded = true;
    nghttp2_submit_response(s->conn->session, s->id, nva, n, NULL);
    s->rst_after_send = true;
}

static void respond_error(srv_stream *s, int code, const char *message)
{
    static const char *const digits[] = {"0", "1",  "2",  "3",  "4",  "5",  "6",  "7", "8",
                                         "9", "10", "11", "12", "13", "14", "15", "16"};
    const char *status = code >= 0 && code <= 16 ? digits[code] : "13";
    size_t msg_len =
        srv_grpc_percent_encode(authz_slice_from_cstr(message), s->grpc_message, sizeof(s->grpc_message));
    nghttp2_nv nva[4] = {
        NV_STATIC(":status", "200"),
        NV_STATIC("content-type", "application/grpc"),
        {(uint8_t *)(uintptr_t) "grpc-status", (uint8_t *)(uintptr_t)status, 11, strlen(status),
         NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE},
        {(uint8_t *)(uintptr_t) "grpc-message", (uint8_t *)s->grpc_message, 12, msg_len,
         NGHTTP2_NV_FLAG_NO_COPY_NAME},
    };

    s->responded = true;
    nghttp2_submit_response(s->conn->session, s->id, nva, msg_len > 0 ? 4 : 3, NULL);
    s->rst_after_send = true;
}

static ssize_t read_response(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                             uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    srv_stream *s = source->ptr;
    size_t left = s->resp_len - s->resp_off;
    size_t n = left < length ? left : length;
    static const nghttp2_nv trailers[] = {NV_STATIC("grpc-status", "0")};

    (void)user_data;
    memcpy(buf, s->resp + s->resp_off, n);
    s->resp_off += n;
    if (s->resp_off == s->resp_len) {
        /* End the stream with trailers, never on DATA: Envoy needs grpc-status. */
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(session, stream_id, trailers, 1) != 0) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    }
    return (ssize_t)n;
}

/* Sends |msg| (|len| bytes) as the one response message, copying it behind
 * a gRPC prefix in the stream's arena (or the fixed fallback buffer). */
static void respond_message(srv_stream *s, const uint8_t *msg, size_t len, bool use_fallback)
{
    static const nghttp2_nv nva[] = {NV_STATIC(":status", "200"),
                                     NV_STATIC("content-type", "application/grpc")};
    nghttp2_data_provider prd;
    uint8_t *buf = use_fallback ? s->fallback : authz_arena_alloc(&s->arena, len + SRV_GRPC_PREFIX_LEN);

    if (buf == NULL || srv_grpc_prefix_write(buf, len) != 0) {
        respond_error(s, SRV_GRPC_RESOURCE_EXHAUSTED, "response too large");
        return;
    }
    if (buf + SRV_GRPC_PREFIX_LEN != msg && len > 0) {
        memmove(buf + SRV_GRPC_PREFIX_LEN, msg, len);
    }
    s->resp = buf;
    s->resp_len = len + SRV_GRPC_PREFIX_LEN;
    s->resp_off = 0;
    s->responded = true;
    prd.source.ptr = s;
    prd.read_callback = read_response;
    nghttp2_submit_response(s->conn->session, s->id, nva, 2, &prd);
}

static bool deadline_passed(const srv_stream *s)
{
    return s->has_deadline && uv_hrtime() >= s->deadline_ns;
}

static void run_check(srv_stream *s)
{
    srv_worker *w = s->conn->w;
    pol_decide_ctx ctx = {.arena = &s->arena, .cache = w->cache};
    srv_extauthz_result res;
    uint64_t t0 = uv_hrtime();
    int rc = srv_extauthz_check(w->snap, s->msg, s->msg_len, (int64_t)time(NULL), &ctx, &res);

    if (rc == -1) {
        respond_error(s, SRV_GRPC_INVALID_ARGUMENT, "CheckRequest does not decode");
        return;
    }
    if (deadline_passed(s)) {
        respond_error(s, SRV_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
        return;
    }
    if (w->snap->server.log_decisions) {
        srv_log_decision(&w->log, res.view.request_id, &res.view.req, &res.decision,
                         (uv_hrtime() - t0) / 1000u);
    }
    if (rc == -2) {
        size_t n = srv_extauthz_fallback_response(s->fallback + SRV_GRPC_PREFIX_LEN, FALLBACK_MAX);
        respond_message(s, s->fallback + SRV_GRPC_PREFIX_LEN, n, true);
        return;
    }
    respond_message(s, res.response, res.response_len, false);
}

static void run_health(srv_stream *s)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    bool serving = !atomic_load(s->conn->w->stopping);
    int status = srv_health_check(s->msg, s->msg_len, serving, &s->arena, &out, &out_len);

    if (status == SRV_GRPC_NOT_FOUND) {
        respond_error(s, status, "unknown service");
    } else if (status != SRV_GRPC_OK) {
        respond_error(s, status, "HealthCheckRequest does not decode");
    } else {
        respond_message(s, out, out_len, false);
    }
}

/* The client ended its stream: answer. */
static void on_request_complete(srv_stream *s)
{
    if (s->responded) {
        return;
    }
    if (s->error_status != 0) {
        respond_error(s, s->error_status, s->error_message);
        return;
    }
    if (!s->have_message || !srv_grpc_reader_idle(&s->reader)) {
        respond_error(s, SRV_GRPC_INVALID_ARGUMENT,
                      s->have_message ? "truncated message" : "unary call without a request message");
        return;
    }
    if (deadline_passed(s)) {
        respond_error(s, SRV_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
        return;
    }
    if (s->rpc == RPC_CHECK) {
        run_check(s);
    } else {
        run_health(s);
    }
}

/* Request headers are complete: refuse early what cannot be served. */
static void on_request_headers(srv_stream *s)
{
    if (!s->is_post) {
        respond_http(s, "405");
    } else if (!s->content_type_ok) {
        respond_http(s, "415");
    } else if (s->rpc == RPC_UNKNOWN) {
        respond_error(s, SRV_GRPC_UNIMPLEMENTED, "unknown method");
    } else if (s->timeout_bad) {
        respond_error(s, SRV_GRPC_INTERNAL, "malformed grpc-timeout");
    }
}

/* ---- nghttp2 callbacks ---- */

static bool name_is(const uint8_t *name, size_t len, const char *want)
{
    return authz_slice_eq_cstr((authz_slice){(const char *)name, len}, want);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    srv_conn *c = user_data;
    srv_stream *s;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
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
    authz_slice v = {(const char *)value, valuelen};

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
    if (name_is(name, namelen, ":method")) {
        s->is_post = authz_slice_eq_cstr(v, "POST");
    } else if (name_is(name, namelen, ":path")) {
        if (authz_slice_eq_cstr(v, "/envoy.service.auth.v3.Authorization/Check")) {
            s->rpc = RPC_CHECK;
        } else if (authz_slice_eq_cstr(v, "/grpc.health.v1.Health/Check")) {
            s->rpc = RPC_HEALTH;
        }
    } else if (name_is(name, namelen, "content-type")) {
        s->content_type_ok = authz_slice_has_prefix(v, AUTHZ_SLICE_LIT("application/grpc"));
    } else if (name_is(name, namelen, "grpc-encoding")) {
        s->encoding_other = !authz_slice_eq_cstr(v, "identity");
    } else if (name_is(name, namelen, "grpc-timeout")) {
        uint64_t ns = 0;
        if (srv_grpc_timeout_parse(v, &ns) != 0) {
            s->timeout_bad = true;
        } else {
            s->has_deadline = true;
            s->deadline_ns = ns > UINT64_MAX - s->start_ns ? UINT64_MAX : s->start_ns + ns;
        }
    }
    return 0;
}

static void set_error(srv_stream *s, int status, const char *message)
{
    if (s->error_status == 0) {
        s->error_status = status;
        s->error_message = message;
    }
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                              size_t len, void *user_data)
{
    srv_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    size_t used = 0;

    (void)flags;
    (void)user_data;
    if (s == NULL || s->responded || s->error_status != 0 || len == 0) {
        return 0;
    }
    if (s->have_message) {
        set_error(s, SRV_GRPC_INVALID_ARGUMENT, "more than one request message on a unary call");
        return 0;
    }
    switch (srv_grpc_reader_feed(&s->reader, data, len, &s->arena, &used)) {
    case SRV_GRPC_READ_MORE:
        break;
    case SRV_GRPC_READ_MESSAGE:
        s->have_message = true;
        s->msg = s->reader.msg;
        s->msg_len = s->reader.msg_len;
        srv_grpc_reader_next(&s->reader);
        if (used < len) {
            set_error(s, SRV_GRPC_INVALID_ARGUMENT, "more than one request message on a unary call");
        }
        break;
    case SRV_GRPC_READ_TOO_LARGE:
        set_error(s, SRV_GRPC_RESOURCE_EXHAUSTED, "request message larger than max_message_bytes");
        break;
    case SRV_GRPC_READ_COMPRESSED:
        if (s->encoding_other) {
            set_error(s, SRV_GRPC_UNIMPLEMENTED, "compressed messages are not supported");
        } else {
            set_error(s, SRV_GRPC_INTERNAL, "compressed flag set without grpc-encoding");
        }
        break;
    case SRV_GRPC_READ_BAD_FLAG:
        set_error(s, SRV_GRPC_INTERNAL, "invalid message flag");
        break;
    case SRV_GRPC_READ_NOMEM:
        set_error(s, SRV_GRPC_RESOURCE_EXHAUSTED, "out of request memory");
        break;
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
    if (s == NULL || s->responded) {
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        on_request_headers(s);
        if (s->responded) {
            return 0;
        }
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        /* Decided once the whole read is consumed: a RST_STREAM (client
         * deadline, cancel) in the same read spares the work. */
        ready_push(s->conn, s);
    } else if (s->error_status != 0) {
        /* Answer now; the client is told to stop with RST_STREAM(NO_ERROR). */
        respond_error(s, s->error_status, s->error_message);
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
    if (s == NULL || !s->rst_after_send || st == NULL) {
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
    if (nghttp2_session_mem_recv(c->session, (const uint8_t *)buf->base, (size_t)nread) < 0) {
        conn_close(c);
        return;
    }
    while (c->ready_head != NULL) {
        srv_stream *s = c->ready_head;
        ready_unlink(c, s);
        on_request_complete(s);
    }
    srv_log_flush(&c->w->log);
    conn_flush(c);
}

static void on_write(uv_write_t *req, int status)
{
    srv_conn *c = req->data;

    c->writing = false;
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_flush(c);
}

static int out_append(srv_conn *c, const uint8_t *data, size_t len)
{
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap > 0 ? c->out_cap : 16u * 1024u;
        uint8_t *p;
        while (cap < c->out_len + len) {
            cap *= 2;
        }
        p = realloc(c->out, cap);
        if (p == NULL) {
            return -1;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

/* Hands the gathered output to the socket: uv_try_write first, uv_write for
 * the rest (the buffers swap, so gathering goes on into the other one). */
static int out_write(srv_conn *c)
{
    int n = uv_try_write((uv_stream_t *)&c->tcp, &(uv_buf_t){(char *)c->out, c->out_len}, 1);
    uv_buf_t rest;
    uint8_t *tmp;
    size_t tmp_cap;

    if (n < 0 && n != UV_EAGAIN) {
        return -1;
    }
    if (n > 0) {
        size_t done = (size_t)n;
        memmove(c->out, c->out + done, c->out_len - done);
        c->out_len -= done;
    }
    if (c->out_len == 0) {
        return 0;
    }
    tmp = c->inflight;
    tmp_cap = c->inflight_cap;
    c->inflight = c->out;
    c->inflight_cap = c->out_cap;
    rest = uv_buf_init((char *)c->inflight, (unsigned int)c->out_len);
    c->out = tmp;
    c->out_cap = tmp_cap;
    c->out_len = 0;
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &rest, 1, on_write) != 0) {
        return -1;
    }
    c->writing = true;
    return 0;
}

static void conn_flush(srv_conn *c)
{
    if (c->closing) {
        return;
    }
    for (;;) {
        while (c->out_len < SRV_CONN_HIGH_WATER) {
            const uint8_t *data = NULL;
            ssize_t n = nghttp2_session_mem_send(c->session, &data);
            if (n < 0) {
                conn_close(c);
                return;
            }
            if (n == 0) {
                break;
            }
            if (out_append(c, data, (size_t)n) != 0) {
                conn_close(c);
                return;
            }
        }
        if (c->out_len == 0 || c->writing) {
            break;
        }
        if (out_write(c) != 0) {
            conn_close(c);
            return;
        }
        if (c->writing) {
            break;
        }
    }
    /* Back-pressure: a peer that does not read its answers stops being read. */
    if (c->out_len >= SRV_CONN_HIGH_WATER && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    } else if (c->out_len < SRV_CONN_HIGH_WATER && !c->reading && nghttp2_session_want_read(c->session)) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            conn_close(c);
            return;
        }
        c->reading = true;
    }
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) && !c->writing &&
        c->out_len == 0) {
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

/* One timer per connection, armed lazily: it answers the streams whose
 * request is overdue, then re-arms to the earliest of the remaining request
 * deadlines and the idle check. */
static void on_conn_timer(uv_timer_t *t)
{
    srv_conn *c = t->data;
    const pol_server_settings *cfg = &c->w->snap->server;
    uint64_t now = uv_now(&c->w->loop);
    uint64_t idle_ms = (uint64_t)cfg->idle_timeout_seconds * 1000u;
    uint64_t next = UINT64_MAX;

    if (c->closing) {
        return;
    }
    if (c->idle_goaway) {
        conn_close(c);
        return;
    }
    for (srv_stream *s = c->streams; s != NULL; s = s->next) {
        if (s->responded) {
            continue;
        }
        if (now >= s->request_due_ms) {
            /* Never decided: the request is not all there. */
            respond_error(s, SRV_GRPC_DEADLINE_EXCEEDED, "request not complete in time");
        } else if (s->request_due_ms < next) {
            next = s->request_due_ms;
        }
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
    w->conn_count--;
    free(c->out);
    free(c->inflight);
    free(c);
    if (w->draining && w->conn_count == 0 && w->timers_open) {
        uv_close((uv_handle_t *)&w->goaway_timer, NULL);
        uv_close((uv_handle_t *)&w->force_timer, NULL);
        w->timers_open = false;
    }
}

static void conn_close(srv_conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_reject_closed(uv_handle_t *handle)
{
    free(handle);
}

static int reject(srv_worker *w)
{
    uv_tcp_t *tmp = malloc(sizeof(*tmp));
    int rc;

    if (tmp == NULL) {
        return UV_ENOMEM;
    }
    rc = uv_tcp_init(&w->loop, tmp);
    if (rc != 0) {
        free(tmp);
        return rc;
    }
    rc = uv_accept((uv_stream_t *)&w->listener, (uv_stream_t *)tmp);
    uv_close((uv_handle_t *)tmp, on_reject_closed);
    return rc;
}

int srv_conn_accept(srv_worker *w)
{
    srv_conn *c;
    int rc;
    nghttp2_settings_entry settings[3];

    if (w->draining || w->conn_count >= w->max_conns) {
        return reject(w);
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return reject(w);
    }
    c->w = w;
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
    rc = uv_accept((uv_stream_t *)&w->listener, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        conn_close(c);
        return rc;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (nghttp2_session_server_new2(&c->session, w->callbacks, c, w->option) != 0) {
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
        if (!c->closing) {
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
