/* srv_rpc against real nghttp2 sessions: an in-process client session sends
 * the request, the server session (whose allocator can be made to fail)
 * carries srv_rpc's answer back. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "srv_rpc.h"

typedef struct failing_mem {
    size_t fail_after; /* allocations left before they start failing; SIZE_MAX = never */
    size_t fail_count; /* how many fail once failing starts */
} failing_mem;

static bool take_failure(failing_mem *fm)
{
    if (fm->fail_after > 0) {
        if (fm->fail_after != SIZE_MAX) {
            fm->fail_after--;
        }
        return false;
    }
    if (fm->fail_count == 0) {
        return false;
    }
    fm->fail_count--;
    return true;
}

static void *fm_malloc(size_t size, void *ud)
{
    return take_failure(ud) ? NULL : malloc(size);
}

static void fm_free(void *ptr, void *ud)
{
    (void)ud;
    free(ptr);
}

static void *fm_calloc(size_t n, size_t size, void *ud)
{
    return take_failure(ud) ? NULL : calloc(n, size);
}

static void *fm_realloc(void *ptr, size_t size, void *ud)
{
    return take_failure(ud) ? NULL : realloc(ptr, size);
}

/* What the client saw on stream 1. */
typedef struct client_view {
    bool headers;
    char grpc_status[8];
    bool rst;
    uint32_t rst_code;
    bool closed;
    uint32_t close_code;
} client_view;

static int client_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                            size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    client_view *v = ud;
    (void)session;
    (void)frame;
    (void)flags;
    v->headers = true;
    if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0 && valuelen < sizeof(v->grpc_status)) {
        memcpy(v->grpc_status, value, valuelen);
        v->grpc_status[valuelen] = '\0';
    }
    return 0;
}

static int client_on_frame(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    client_view *v = ud;
    (void)session;
    if (frame->hd.type == NGHTTP2_RST_STREAM && frame->hd.stream_id == 1) {
        v->rst = true;
        v->rst_code = frame->rst_stream.error_code;
    }
    return 0;
}

static int client_on_close(nghttp2_session *session, int32_t id, uint32_t code, void *ud)
{
    client_view *v = ud;
    (void)session;
    if (id == 1) {
        v->closed = true;
        v->close_code = code;
    }
    return 0;
}

typedef struct pair {
    failing_mem fm;
    nghttp2_mem mem;
    nghttp2_session *client;
    nghttp2_session *server;
    client_view view;
    srv_budget conn_bytes;
    srv_budget worker_bytes;
} pair;

static void pump(nghttp2_session *from, nghttp2_session *to)
{
    for (;;) {
        const uint8_t *data = NULL;
        ssize_t n = nghttp2_session_mem_send(from, &data);
        cr_assert_geq(n, 0);
        if (n == 0) {
            return;
        }
        cr_assert_eq(nghttp2_session_mem_recv(to, data, (size_t)n), n);
    }
}

/* A client that sent one gRPC request on stream 1 (headers only, ended) to
 * :path |path|. */
static void pair_open(pair *p, const char *path)
{
    nghttp2_session_callbacks *ccb = NULL, *scb = NULL;
    nghttp2_nv nva[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
        {(uint8_t *)":authority", (uint8_t *)"t", 10, 1, 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
    };

    memset(p, 0, sizeof(*p));
    p->fm.fail_after = SIZE_MAX;
    p->mem = (nghttp2_mem){&p->fm, fm_malloc, fm_free, fm_calloc, fm_realloc};
    cr_assert_eq(nghttp2_session_callbacks_new(&ccb), 0);
    cr_assert_eq(nghttp2_session_callbacks_new(&scb), 0);
    nghttp2_session_callbacks_set_on_header_callback(ccb, client_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(ccb, client_on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(ccb, client_on_close);
    cr_assert_eq(nghttp2_session_client_new(&p->client, ccb, &p->view), 0);
    cr_assert_eq(nghttp2_session_server_new3(&p->server, scb, NULL, NULL, &p->mem), 0);
    nghttp2_session_callbacks_del(ccb);
    nghttp2_session_callbacks_del(scb);
    cr_assert_eq(nghttp2_submit_settings(p->client, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    cr_assert_eq(nghttp2_submit_settings(p->server, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    cr_assert_eq(nghttp2_submit_request(p->client, NULL, nva, sizeof(nva) / sizeof(nva[0]), NULL, NULL), 1);
    pump(p->client, p->server);
    pump(p->server, p->client);
    p->conn_bytes.max = 10000;
    p->worker_bytes.max = 20000;
}

static void pair_close(pair *p)
{
    nghttp2_session_del(p->client);
    nghttp2_session_del(p->server);
}

/* srv_rpc reads the headers the server received; here they are given as
 * srv_conn's on_header would. */
static int begin_call(pair *p, srv_rpc_call *call, const char *path);

static int answer_unknown_method(pair *p, srv_rpc_call *call)
{
    return begin_call(p, call, "/no.Such/Method");
}

static int begin_call(pair *p, srv_rpc_call *call, const char *path)
{
    srv_rpc_begin(call, p->server, 1, 65536, &p->conn_bytes, &p->worker_bytes, 0);
    srv_rpc_header(call, AUTHZ_SLICE_LIT(":method"), AUTHZ_SLICE_LIT("POST"));
    srv_rpc_header(call, AUTHZ_SLICE_LIT(":path"), authz_slice_from_cstr(path));
    srv_rpc_header(call, AUTHZ_SLICE_LIT("content-type"), AUTHZ_SLICE_LIT("application/grpc"));
    return srv_rpc_headers_done(call);
}

Test(srv_rpc, answer_goes_out_as_trailers_only)
{
    pair p;
    srv_rpc_call call;

    pair_open(&p, "/no.Such/Method");
    cr_assert_eq(answer_unknown_method(&p, &call), 0);
    cr_assert(srv_rpc_answered(&call));
    pump(p.server, p.client);
    cr_assert(p.view.headers);
    cr_assert_str_eq(p.view.grpc_status, "12");
    cr_assert_not(p.view.rst);
    cr_assert(p.view.closed);
    cr_assert_eq(p.view.close_code, NGHTTP2_NO_ERROR);
    srv_rpc_end(&call);
    pair_close(&p);
}

Test(srv_rpc, refused_answer_resets_the_stream)
{
    pair p;
    srv_rpc_call call;

    pair_open(&p, "/no.Such/Method");
    /* The next allocation (nghttp2 copying the answer's headers) fails. */
    p.fm.fail_after = 0;
    p.fm.fail_count = 1;
    cr_assert_eq(answer_unknown_method(&p, &call), 0);
    cr_assert(srv_rpc_answered(&call), "the request timer must not answer it again");
    cr_assert_not(srv_rpc_reset_after_answer(&call));
    pump(p.server, p.client);
    cr_assert_not(p.view.headers, "no answer was queued");
    cr_assert(p.view.rst, "the client must be told, not left waiting");
    cr_assert_eq(p.view.rst_code, NGHTTP2_INTERNAL_ERROR);
    cr_assert(p.view.closed);
    srv_rpc_end(&call);
    pair_close(&p);
}

Test(srv_rpc, neither_answer_nor_reset_asks_to_close)
{
    pair p;
    srv_rpc_call call;

    pair_open(&p, "/no.Such/Method");
    p.fm.fail_after = 0;
    p.fm.fail_count = SIZE_MAX;
    cr_assert_eq(answer_unknown_method(&p, &call), -1);
    p.fm.fail_count = 0;
    srv_rpc_end(&call);
    pair_close(&p);
}

/* A gRPC prefix declaring |len| bytes, then |have| of them. */
static void send_partial(srv_rpc_call *call, size_t len, size_t have)
{
    uint8_t buf[5 + 4096];
    memset(buf, 'z', sizeof(buf));
    buf[0] = 0;
    buf[1] = (uint8_t)(len >> 24);
    buf[2] = (uint8_t)(len >> 16);
    buf[3] = (uint8_t)(len >> 8);
    buf[4] = (uint8_t)len;
    cr_assert_leq(have, 4096);
    srv_rpc_data(call, buf, 5 + have);
}

Test(srv_rpc, request_bytes_are_counted_and_released_with_the_answer)
{
    pair p;
    srv_rpc_call call;

    pair_open(&p, "/grpc.health.v1.Health/Check");
    cr_assert_eq(begin_call(&p, &call, "/grpc.health.v1.Health/Check"), 0);
    send_partial(&call, 9000, 3000);
    cr_assert_eq(p.conn_bytes.held, 3000, "the buffer holds what arrived, not the 9000 declared");
    cr_assert_eq(p.worker_bytes.held, 3000);
    cr_assert_eq(srv_rpc_request_expired(&call), 0);
    cr_assert(srv_rpc_answered(&call));
    cr_assert_eq(p.conn_bytes.held, 0, "an answered call keeps no request bytes");
    cr_assert_eq(p.worker_bytes.held, 0);
    srv_rpc_end(&call);
    pair_close(&p);
}

Test(srv_rpc, over_the_connection_budget_is_resource_exhausted)
{
    pair p;
    srv_rpc_call call;

    pair_open(&p, "/grpc.health.v1.Health/Check");
    p.conn_bytes.held = 7000; /* other streams of the connection */
    p.worker_bytes.held = 7000;
    cr_assert_eq(begin_call(&p, &call, "/grpc.health.v1.Health/Check"), 0);
    send_partial(&call, 9000, 4000);
    cr_assert_eq(p.conn_bytes.held, 7000, "refused growth holds nothing");
    cr_assert_eq(p.worker_bytes.held, 7000);
    cr_assert_eq(srv_rpc_answer_pending(&call), 0);
    cr_assert(srv_rpc_answered(&call));
    cr_assert_str_eq(call.grpc_message, "server busy: request bytes over max_buffered_bytes_per_connection");
    pump(p.server, p.client);
    cr_assert_str_eq(p.view.grpc_status, "8");
    srv_rpc_end(&call);
    pair_close(&p);
}

Test(srv_rpc, over_the_worker_budget_names_the_worker_bound)
{
    pair p;
    srv_rpc_call call;

    pair_open(&p, "/grpc.health.v1.Health/Check");
    p.worker_bytes.held = 18000; /* other connections of the worker */
    cr_assert_eq(begin_call(&p, &call, "/grpc.health.v1.Health/Check"), 0);
    send_partial(&call, 9000, 3000);
    cr_assert_eq(p.conn_bytes.held, 0);
    cr_assert_eq(p.worker_bytes.held, 18000);
    cr_assert_eq(srv_rpc_answer_pending(&call), 0);
    cr_assert_str_eq(call.grpc_message, "server busy: request bytes over max_buffered_bytes_per_worker");
    srv_rpc_end(&call);
    pair_close(&p);
}

Test(srv_rpc, closing_an_unanswered_call_releases_its_bytes)
{
    pair p;
    srv_rpc_call call;

    pair_open(&p, "/grpc.health.v1.Health/Check");
    cr_assert_eq(begin_call(&p, &call, "/grpc.health.v1.Health/Check"), 0);
    send_partial(&call, 9000, 2500);
    cr_assert_eq(p.worker_bytes.held, 2500);
    srv_rpc_end(&call);
    cr_assert_eq(p.conn_bytes.held, 0);
    cr_assert_eq(p.worker_bytes.held, 0);
    pair_close(&p);
}

Test(srv_rpc, a_small_request_lives_in_the_slot_and_is_counted)
{
    pair p;
    srv_rpc_call call;

    pair_open(&p, "/grpc.health.v1.Health/Check");
    cr_assert_eq(begin_call(&p, &call, "/grpc.health.v1.Health/Check"), 0);
    send_partial(&call, 900, 600);
    cr_assert_eq(call.reader.msg, call.slot, "a message that fits the slot takes no heap");
    cr_assert_eq(p.conn_bytes.held, 900, "the slot counts the message it holds");
    cr_assert_eq(p.worker_bytes.held, 900);
    cr_assert_eq(srv_rpc_request_expired(&call), 0);
    cr_assert_eq(p.conn_bytes.held, 0);
    cr_assert_eq(p.worker_bytes.held, 0);
    srv_rpc_end(&call);
    pair_close(&p);
}
