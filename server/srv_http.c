#include "srv_http.h"

#include <http_parser.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "srv_httpauth.h"
#include "srv_log.h"
#include "srv_tls.h"
#include "srv_transport.h"

/* Most plaintext kept while the parser is paused: what one read (or its
 * decryption) can leave behind, twice for a TLS record's slack. */
#define PENDING_MAX (2u * SRV_READ_BUF_SIZE)

/* A header line: offsets into the connection's head buffer. */
typedef struct head_line {
    size_t name_off;
    size_t name_len;
    size_t value_off;
    size_t value_len;
} head_line;

struct srv_http_conn {
    uv_tcp_t tcp; /* tcp.data = this */
    uv_timer_t timer;
    srv_worker *w;
    srv_http_conn *prev;
    srv_http_conn *next;
    http_parser parser; /* parser.data = this */
    srv_tls_conn *tls;  /* NULL = plain HTTP */
    uint64_t handshake_due_ms;
    /* The request being read: target, then header names and values, in
     * arrival order (pieces of one item arrive back to back). */
    srv_bytes head;
    size_t url_len;
    head_line lines[SRV_HTTP_HEADERS_MAX];
    size_t line_count;
    bool in_value; /* the last piece was a header value */
    size_t body_bytes;
    bool in_request;         /* a request has begun and is not answered */
    uint64_t request_due_ms; /* uv_now by which it must be complete */
    int error_status;        /* a protocol error found while parsing (400, 413, 414, 431) */
    srv_sendbuf send;        /* output: gathered, and the batch in flight */
    uint64_t write_since_ms;
    srv_bytes pending; /* bytes not parsed while the parser is paused */
    uint64_t last_recv_ms;
    unsigned open_handles;
    bool reading;
    bool closing;
    bool close_after_write; /* the last answer said "connection: close" */
    bool draining;
    bool broken; /* an answer could not be queued: close */
};

static void conn_close(srv_http_conn *c);
static void conn_reset(srv_http_conn *c);
static void conn_flush(srv_http_conn *c);
static void conn_rearm(srv_http_conn *c);

/* ---- buffers ---- */

static int out_append(srv_http_conn *c, const void *data, size_t n)
{
    return srv_bytes_append(&c->send.out, SRV_HTTP_OUT_MAX, data, n);
}

/* Plaintext to send: through TLS when the connection has it. */
static int send_plain(srv_http_conn *c, const uint8_t *data, size_t n)
{
    if (c->tls != NULL) {
        return srv_tls_conn_send(c->tls, data, n);
    }
    return out_append(c, data, n);
}

/* ---- parsing ---- */

static int head_append(srv_http_conn *c, const char *at, size_t n)
{
    return srv_bytes_append(&c->head, SRV_HTTP_HEAD_MAX, at, n);
}

/* Stops the parser with |status| to answer. */
static int fail(srv_http_conn *c, int status)
{
    if (c->error_status == 0) {
        c->error_status = status;
    }
    return -1;
}

static int on_message_begin(http_parser *p)
{
    srv_http_conn *c = p->data;

    c->head.len = 0;
    c->url_len = 0;
    c->line_count = 0;
    c->in_value = false;
    c->body_bytes = 0;
    if (!c->in_request) {
        c->in_request = true;
        c->request_due_ms =
            uv_now(&c->w->loop) + (uint64_t)c->w->snap->server.request_timeout_seconds * 1000u;
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    srv_http_conn *c = p->data;

    if (n > SRV_HTTP_URL_MAX - c->url_len) {
        return fail(c, 414);
    }
    if (head_append(c, at, n) != 0) {
        return fail(c, 431);
    }
    c->url_len += n;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    srv_http_conn *c = p->data;

    if (c->line_count == 0 || c->in_value) {
        if (c->line_count == SRV_HTTP_HEADERS_MAX) {
            return fail(c, 431);
        }
        c->lines[c->line_count++] = (head_line){c->head.len, 0, 0, 0};
        c->in_value = false;
    }
    if (head_append(c, at, n) != 0) {
        return fail(c, 431);
    }
    c->lines[c->line_count - 1].name_len += n;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    srv_http_conn *c = p->data;
    head_line *line;

    if (c->line_count == 0) {
        return fail(c, 400);
    }
    line = &c->lines[c->line_count - 1];
    if (!c->in_value) {
        line->value_off = c->head.len;
        c->in_value = true;
    }
    if (head_append(c, at, n) != 0) {
        return fail(c, 431);
    }
    line->value_len += n;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    srv_http_conn *c = p->data;

    /* Announced larger than we would read: refused before it arrives. */
    if (p->content_length != ULLONG_MAX && p->content_length > SRV_HTTP_BODY_MAX) {
        return fail(c, 413);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    srv_http_conn *c = p->data;

    (void)at;
    if (n > SRV_HTTP_BODY_MAX - c->body_bytes) {
        return fail(c, 413);
    }
    c->body_bytes += n;
    return 0;
}

/* Decides the request just read and queues its answer. */
static int answer_request(srv_http_conn *c)
{
    srv_worker *w = c->w;
    srv_httpauth_header headers[SRV_HTTP_HEADERS_MAX];
    srv_httpauth_request in;
    srv_httpauth_view view;
    pol_decision d;
    pol_decide_ctx ctx = {.arena = &w->decide_arena, .cache = w->cache};
    uint64_t t0 = uv_hrtime();
    uint8_t *answer = NULL;
    size_t answer_len = 0;
    bool close = w->draining || c->draining || !http_should_keep_alive(&c->parser) || c->parser.upgrade;
    int rc;

    for (size_t i = 0; i < c->line_count; i++) {
        headers[i].name =
            (authz_slice){(const char *)c->head.data + c->lines[i].name_off, c->lines[i].name_len};
        headers[i].value =
            (authz_slice){(const char *)c->head.data + c->lines[i].value_off, c->lines[i].value_len};
    }
    in.method = authz_slice_from_cstr(http_method_str((enum http_method)c->parser.method));
    in.target = (authz_slice){(const char *)c->head.data, c->url_len};
    in.headers = headers;
    in.header_count = c->line_count;
    srv_httpauth_decide(w->snap, &in, (int64_t)time(NULL), &ctx, &view, &d);
    srv_worker_record_decision(w, &ctx, view.request_id, &view.req, &d, t0);
    if (srv_httpauth_answer(&d, w->snap->server.deny_details, close, c->parser.method == HTTP_HEAD,
                            &w->decide_arena, &answer, &answer_len) != 0) {
        close = true;
    }
    rc = send_plain(c, answer, answer_len);
    /* The answer is out of the arena now: nothing of the decision is kept. */
    authz_arena_reset(&w->decide_arena);
    c->in_request = false;
    c->close_after_write = c->close_after_write || close;
    return rc;
}

static int on_message_complete(http_parser *p)
{
    srv_http_conn *c = p->data;

    if (answer_request(c) != 0) {
        c->broken = true;
        return -1;
    }
    /* Output backed up, or nothing more will be read: parse no further. */
    if (c->send.out.len >= SRV_HTTP_HIGH_WATER || c->close_after_write) {
        http_parser_pause(p, 1);
    }
    return 0;
}

static const http_parser_settings PARSER_SETTINGS = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Answers a protocol error and closes once it is written. */
static void protocol_error(srv_http_conn *c, int status)
{
    authz_slice a = srv_httpauth_protocol_error(status);

    srv_metrics_count_http_error(&c->w->metrics, status);
    c->close_after_write = true;
    c->in_request = false;
    if (send_plain(c, (const uint8_t *)a.ptr, a.len) != 0) {
        conn_close(c);
    }
}

/* Runs the parser over |len| bytes of |data|. Returns how many it took
 * (fewer when it paused), or SIZE_MAX when the connection must close now.
 * A protocol error queues its answer and ends reading. */
static size_t parse(srv_http_conn *c, const uint8_t *data, size_t len)
{
    size_t used = http_parser_execute(&c->parser, &PARSER_SETTINGS, (const char *)data, len);

    switch (HTTP_PARSER_ERRNO(&c->parser)) {
    case HPE_OK:
    case HPE_PAUSED:
        return used;
    default:
        if (c->broken) {
            return SIZE_MAX;
        }
        protocol_error(c, c->error_status != 0 ? c->error_status : 400);
        return c->closing ? SIZE_MAX : len;
    }
}

/* Feeds plaintext to the parser; what a pause leaves is kept in |pending|
 * (bounded). Returns 0, or -1 when the connection must close at once. */
static int feed(srv_http_conn *c, const uint8_t *data, size_t len)
{
    size_t used;

    if (c->close_after_write) {
        return 0; /* after "connection: close" nothing more is read */
    }
    if (c->pending.len > 0 || HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) {
        return srv_bytes_append(&c->pending, PENDING_MAX, data, len);
    }
    used = parse(c, data, len);
    if (used == SIZE_MAX) {
        return -1;
    }
    if (used == len || c->close_after_write) {
        return 0;
    }
    return srv_bytes_append(&c->pending, PENDING_MAX, data + used, len - used);
}

/* Output drained: parse what a pause kept (reading resumes once it is all
 * parsed). */
static void resume(srv_http_conn *c)
{
    size_t used;

    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_PAUSED) {
        return;
    }
    http_parser_pause(&c->parser, 0);
    if (c->pending.len == 0 || c->close_after_write) {
        c->pending.len = 0;
        return;
    }
    used = parse(c, c->pending.data, c->pending.len);
    if (used == SIZE_MAX) {
        conn_close(c);
        return;
    }
    if (used >= c->pending.len || c->close_after_write) {
        c->pending.len = 0;
        return;
    }
    memmove(c->pending.data, c->pending.data + used, c->pending.len - used);
    c->pending.len -= used;
}

/* ---- socket I/O ---- */

static int tls_plain_in(void *arg, const uint8_t *data, size_t len)
{
    return feed(arg, data, len);
}

static int tls_cipher_out(void *arg, const uint8_t *data, size_t len)
{
    return out_append(arg, data, len);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    srv_http_conn *c = handle->data;
    (void)suggested;
    buf->base = (char *)c->w->read_buf;
    buf->len = sizeof(c->w->read_buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    srv_http_conn *c = stream->data;
    int rc;

    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0) {
        return;
    }
    c->last_recv_ms = uv_now(&c->w->loop);
    if (!c->in_request && c->tls == NULL) {
        /* The request timeout counts from its first byte. */
        c->request_due_ms = c->last_recv_ms + (uint64_t)c->w->snap->server.request_timeout_seconds * 1000u;
        c->in_request = true;
    }
    rc = c->tls != NULL ? srv_tls_conn_recv(c->tls, (const uint8_t *)buf->base, (size_t)nread)
                        : feed(c, (const uint8_t *)buf->base, (size_t)nread);
    srv_log_flush(&c->w->log);
    if (rc != 0) {
        if (c->tls != NULL) {
            /* The alert of a refused handshake, best effort. */
            srv_sendbuf_offer(&c->send, (uv_stream_t *)&c->tcp);
        }
        conn_close(c);
        return;
    }
    conn_flush(c);
}

static void on_write(uv_write_t *req, int status)
{
    srv_http_conn *c = req->data;

    srv_sendbuf_written(&c->send);
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_flush(c);
}

/* Hands the gathered output to the socket; a write left pending is timed
 * by the send timeout. Returns 0 or -1. */
static int out_write(srv_http_conn *c)
{
    int rc = srv_sendbuf_write(&c->send, (uv_stream_t *)&c->tcp, c, on_write);

    if (rc > 0) {
        c->write_since_ms = uv_now(&c->w->loop);
    }
    return rc < 0 ? -1 : 0;
}

static void conn_flush(srv_http_conn *c)
{
    if (c->closing) {
        return;
    }
    if (c->send.out.len > 0 && !c->send.writing && out_write(c) != 0) {
        conn_close(c);
        return;
    }
    if (!c->send.writing && c->send.out.len == 0) {
        if (c->close_after_write) {
            conn_close(c);
            return;
        }
        resume(c);
        if (c->closing) {
            return;
        }
        if (c->send.out.len > 0) {
            /* What the kept bytes asked for: write it before reading on. */
            conn_flush(c);
            return;
        }
    }
    /* Back-pressure: reading waits while answers wait or the parser is paused. */
    bool want_read = !c->send.writing && c->send.out.len == 0 && !c->close_after_write &&
                     HTTP_PARSER_ERRNO(&c->parser) != HPE_PAUSED;
    if (want_read && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            conn_close(c);
            return;
        }
        c->reading = true;
    } else if (!want_read && c->reading && (c->send.writing || c->send.out.len > 0)) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    conn_rearm(c);
}

/* ---- timeouts ---- */

static uint64_t seconds_ms(size_t s)
{
    return (uint64_t)s * 1000u;
}

static void on_timer(uv_timer_t *t)
{
    srv_http_conn *c = t->data;
    const pol_server_settings *cfg = &c->w->snap->server;
    uint64_t now = uv_now(&c->w->loop);

    if (c->closing) {
        return;
    }
    if (c->send.writing && now - c->write_since_ms >= seconds_ms(cfg->send_timeout_seconds)) {
        /* The peer does not take its answers: free its slot now. */
        conn_reset(c);
        return;
    }
    if (c->tls != NULL && !srv_tls_conn_established(c->tls) && now >= c->handshake_due_ms) {
        conn_close(c);
        return;
    }
    if (c->in_request && now >= c->request_due_ms && !c->close_after_write) {
        protocol_error(c, 408);
        conn_flush(c);
        return;
    }
    if (!c->in_request && !c->send.writing && c->send.out.len == 0 && cfg->idle_timeout_seconds > 0 &&
        now - c->last_recv_ms >= seconds_ms(cfg->idle_timeout_seconds)) {
        conn_close(c);
        return;
    }
    conn_rearm(c);
}

/* Arms the timer for the earliest deadline the connection's state has. */
static void conn_rearm(srv_http_conn *c)
{
    const pol_server_settings *cfg = &c->w->snap->server;
    uint64_t now = uv_now(&c->w->loop);
    uint64_t due = UINT64_MAX;

    if (c->closing) {
        return;
    }
    if (c->send.writing) {
        due = c->write_since_ms + seconds_ms(cfg->send_timeout_seconds);
    }
    if (c->tls != NULL && !srv_tls_conn_established(c->tls) && c->handshake_due_ms < due) {
        due = c->handshake_due_ms;
    }
    if (c->in_request && !c->close_after_write && c->request_due_ms < due) {
        due = c->request_due_ms;
    }
    if (!c->in_request && cfg->idle_timeout_seconds > 0 &&
        c->last_recv_ms + seconds_ms(cfg->idle_timeout_seconds) < due) {
        due = c->last_recv_ms + seconds_ms(cfg->idle_timeout_seconds);
    }
    if (due == UINT64_MAX) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
}

/* ---- lifetime ---- */

static void on_closed(uv_handle_t *handle)
{
    srv_http_conn *c = handle->data;
    srv_worker *w = c->w;

    if (--c->open_handles > 0) {
        return;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else if (w->http_conns == c) {
        w->http_conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    srv_tls_conn_free(c->tls);
    srv_bytes_free(&c->head);
    srv_sendbuf_free(&c->send);
    srv_bytes_free(&c->pending);
    free(c);
    srv_worker_conn_closed(w);
}

static void conn_close(srv_http_conn *c)
{
    srv_transport_close(&c->tcp, &c->timer, &c->closing, false, on_closed);
}

/* Closes with a TCP reset: what the kernel holds for a peer that does not
 * read is dropped too. */
static void conn_reset(srv_http_conn *c)
{
    srv_transport_close(&c->tcp, &c->timer, &c->closing, true, on_closed);
}

/* With "tls": the handshake must finish within the idle timeout (the
 * request timeout when idle timeouts are off). Returns 0 or -1. */
static int conn_tls_start(srv_http_conn *c)
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
    srv_tls_conn_speak_http1(c->tls);
    c->handshake_due_ms = uv_now(&c->w->loop) + seconds_ms(seconds);
    return 0;
}

int srv_http_accept(srv_worker *w)
{
    srv_http_conn *c;
    int rc;

    if (w->draining || w->conn_count >= w->max_conns) {
        return srv_transport_refuse(&w->loop, &w->http_listener);
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return srv_transport_refuse(&w->loop, &w->http_listener);
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
    c->next = w->http_conns;
    if (w->http_conns != NULL) {
        w->http_conns->prev = c;
    }
    w->http_conns = c;
    w->conn_count++;
    srv_counter_set(&w->metrics.connections, w->conn_count);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    rc = uv_accept((uv_stream_t *)&w->http_listener, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        conn_close(c);
        return rc;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->last_recv_ms = uv_now(&w->loop);
    if (w->tls != NULL && conn_tls_start(c) != 0) {
        conn_close(c);
        return UV_ENOMEM;
    }
    conn_flush(c);
    return 0;
}

void srv_http_drain_all(srv_worker *w)
{
    for (srv_http_conn *c = w->http_conns; c != NULL; c = c->next) {
        c->draining = true;
        if (!c->in_request && !c->send.writing && c->send.out.len == 0) {
            conn_close(c);
        }
    }
}

void srv_http_close_all(srv_worker *w)
{
    for (srv_http_conn *c = w->http_conns; c != NULL; c = c->next) {
        conn_close(c);
    }
}
