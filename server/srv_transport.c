#include "srv_transport.h"

#include <stdlib.h>
#include <string.h>

#define BYTES_INITIAL (4u * 1024u)

int srv_bytes_append(srv_bytes *b, size_t max, const void *data, size_t n)
{
    if (b->len > max || n > max - b->len) {
        return -1;
    }
    if (n > b->cap - b->len) {
        size_t need = b->len + n;
        size_t cap = b->cap > 0 ? b->cap : BYTES_INITIAL;
        uint8_t *p;
        while (cap < need) {
            cap = cap > max / 2 ? max : cap * 2;
        }
        p = realloc(b->data, cap);
        if (p == NULL) {
            return -1;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

void srv_bytes_free(srv_bytes *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

int srv_sendbuf_write(srv_sendbuf *sb, uv_stream_t *stream, void *owner, uv_write_cb done)
{
    /* uv_buf_t's length is a size_t on Unix: nothing is narrowed. */
    uv_buf_t buf = {.base = (char *)sb->out.data, .len = sb->out.len};
    int n = uv_try_write(stream, &buf, 1);
    uint8_t *spare;
    size_t spare_cap;

    if (n < 0 && n != UV_EAGAIN) {
        return -1;
    }
    if (n > 0) {
        size_t written = (size_t)n;
        memmove(sb->out.data, sb->out.data + written, sb->out.len - written);
        sb->out.len -= written;
    }
    if (sb->out.len == 0) {
        return 0;
    }
    /* The gathered bytes go in flight; gathering goes on into the spare. */
    spare = sb->inflight;
    spare_cap = sb->inflight_cap;
    sb->inflight = sb->out.data;
    sb->inflight_cap = sb->out.cap;
    buf.base = (char *)sb->inflight;
    buf.len = sb->out.len;
    sb->out.data = spare;
    sb->out.cap = spare_cap;
    sb->out.len = 0;
    sb->wreq.data = owner;
    if (uv_write(&sb->wreq, stream, &buf, 1, done) != 0) {
        return -1;
    }
    sb->writing = true;
    return 1;
}

void srv_sendbuf_written(srv_sendbuf *sb)
{
    sb->writing = false;
}

void srv_sendbuf_offer(srv_sendbuf *sb, uv_stream_t *stream)
{
    if (sb->writing || sb->out.len == 0) {
        return;
    }
    uv_buf_t buf = {.base = (char *)sb->out.data, .len = sb->out.len};
    (void)uv_try_write(stream, &buf, 1);
}

void srv_sendbuf_free(srv_sendbuf *sb)
{
    srv_bytes_free(&sb->out);
    free(sb->inflight);
    sb->inflight = NULL;
    sb->inflight_cap = 0;
}

void srv_transport_close(uv_tcp_t *tcp, uv_timer_t *timer, bool *closing, bool reset, uv_close_cb on_closed)
{
    if (*closing) {
        return;
    }
    *closing = true;
    if (!reset || uv_tcp_close_reset(tcp, on_closed) != 0) {
        uv_close((uv_handle_t *)tcp, on_closed);
    }
    uv_close((uv_handle_t *)timer, on_closed);
}

static void on_refused_closed(uv_handle_t *handle)
{
    free(handle);
}

int srv_transport_refuse(uv_loop_t *loop, uv_tcp_t *listener)
{
    uv_tcp_t *refused = malloc(sizeof(*refused));
    int rc;

    if (refused == NULL) {
        return UV_ENOMEM;
    }
    rc = uv_tcp_init(loop, refused);
    if (rc != 0) {
        free(refused);
        return rc;
    }
    rc = uv_accept((uv_stream_t *)listener, (uv_stream_t *)refused);
    uv_close((uv_handle_t *)refused, on_refused_closed);
    return rc;
}
