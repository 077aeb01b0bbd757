#include "srv_rpc.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "srv_extauthz.h"
#include "srv_health.h"
#include "srv_log.h"

#define NV_STATIC(n, v)                                                                                      \
    {                                                                                                        \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1,                                        \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                                     \
    }

void srv_rpc_begin(srv_rpc_call *call, nghttp2_session *session, int32_t stream_id, size_t max_message_bytes,
                   srv_budget *conn_bytes, srv_budget *worker_bytes, uint64_t start_ns)
{
    memset(call, 0, offsetof(srv_rpc_call, grpc_message));
    call->session = session;
    call->stream_id = stream_id;
    call->budgets[0] = conn_bytes;
    call->budgets[1] = worker_bytes;
    call->reader.max_len = max_message_bytes;
    call->reader.slot = call->slot;
    call->reader.slot_size = sizeof(call->slot);
    call->start_ns = start_ns;
}

/* Frees the request bytes and takes them off both budgets. */
static void release_request(srv_rpc_call *call)
{
    size_t held = srv_grpc_reader_release(&call->reader);

    call->budgets[0]->held -= held;
    call->budgets[1]->held -= held;
}

void srv_rpc_end(srv_rpc_call *call)
{
    release_request(call);
    if (call->resp != call->fallback && call->resp != call->slot) {
        free(call->resp);
    }
    call->resp = NULL;
}

/* ---- answers ---- */

/* Submits the answer's HEADERS (and DATA when |prd| is set). When nghttp2
 * refuses it, the stream is reset so the client does not wait for an answer
 * that will never come. Returns 0, or -1 when even the reset failed. */
static int submit(srv_rpc_call *call, const nghttp2_nv *nva, size_t nvlen, const nghttp2_data_provider *prd)
{
    /* Answered: what the request sent is of no further use. */
    release_request(call);
    call->responded = true;
    if (nghttp2_submit_response(call->session, call->stream_id, nva, nvlen, prd) == 0) {
        return 0;
    }
    call->rst_after_send = false;
    return nghttp2_submit_rst_stream(call->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                     NGHTTP2_INTERNAL_ERROR) == 0
               ? 0
               : -1;
}

static int respond_http(srv_rpc_call *call, const char *status)
{
    nghttp2_nv nva[2] = {
        {(uint8_t *)(uintptr_t) ":status", (uint8_t *)(uintptr_t)status, 7, strlen(status),
         NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE},
        NV_STATIC("allow", "POST"),
    };
    size_t n = strcmp(status, "405") == 0 ? 2 : 1;

    call->rst_after_send = true;
    return submit(call, nva, n, NULL);
}

static int respond_error(srv_rpc_call *call, int code, const char *message)
{
    static const char *const digits[] = {"0", "1",  "2",  "3",  "4",  "5",  "6",  "7", "8",
                                         "9", "10", "11", "12", "13", "14", "15", "16"};
    const char *status = code >= 0 && code <= 16 ? digits[code] : "13";
    size_t msg_len = srv_grpc_percent_encode(authz_slice_from_cstr(message), call->grpc_message,
                                             sizeof(call->grpc_message));
    nghttp2_nv nva[4] = {
        NV_STATIC(":status", "200"),
        NV_STATIC("content-type", "application/grpc"),
        {(uint8_t *)(uintptr_t) "grpc-status", (uint8_t *)(uintptr_t)status, 11, strlen(status),
         NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE},
        {(uint8_t *)(uintptr_t) "grpc-message", (uint8_t *)call->grpc_message, 12, msg_len,
         NGHTTP2_NV_FLAG_NO_COPY_NAME},
    };

    call->rst_after_send = true;
    if (call->grpc_errors != NULL) {
        srv_counter_add(&call->grpc_errors[code >= 0 && code <= 16 ? code : 13], 1);
    }
    return submit(call, nva, msg_len > 0 ? 4 : 3, NULL);
}

static ssize_t read_response(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                             uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    srv_rpc_call *call = source->ptr;
    size_t left = call->resp_len - call->resp_off;
    size_t n = left < length ? left : length;
    static const nghttp2_nv trailers[] = {NV_STATIC("grpc-status", "0")};

    (void)user_data;
    memcpy(buf, call->resp + call->resp_off, n);
    call->resp_off += n;
    if (call->resp_off == call->resp_len) {
        /* End the stream with trailers, never on DATA: Envoy needs grpc-status. */
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(session, stream_id, trailers, 1) != 0) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    }
    return (ssize_t)n;
}

/* Sends |msg| (|len| bytes) as the one response message, copying it behind
 * a gRPC prefix into a buffer of the call's own (the decision arena is
 * reset once the answer is submitted): its slot when it fits (the request
 * there is of no further use), else the heap; or the fixed fallback buffer.
 * Returns 0 or -1 as submit; -2 when no buffer could be had (nothing sent). */
static int respond_message(srv_rpc_call *call, const uint8_t *msg, size_t len, bool use_fallback)
{
    static const nghttp2_nv nva[] = {NV_STATIC(":status", "200"),
                                     NV_STATIC("content-type", "application/grpc")};
    nghttp2_data_provider prd;
    uint8_t *buf = call->fallback;

    if (!use_fallback && len <= sizeof(call->slot) - SRV_GRPC_PREFIX_LEN) {
        buf = call->slot;
    } else if (!use_fallback) {
        buf = len <= SIZE_MAX - SRV_GRPC_PREFIX_LEN ? malloc(len + SRV_GRPC_PREFIX_LEN) : NULL;
        if (buf == NULL) {
            return -2;
        }
    }
    if (srv_grpc_prefix_write(buf, len) != 0) {
        if (buf != call->fallback && buf != call->slot) {
            free(buf);
        }
        return respond_error(call, SRV_GRPC_RESOURCE_EXHAUSTED, "response too large");
    }
    if (buf + SRV_GRPC_PREFIX_LEN != msg && len > 0) {
        memmove(buf + SRV_GRPC_PREFIX_LEN, msg, len);
    }
    call->resp = buf;
    call->resp_len = len + SRV_GRPC_PREFIX_LEN;
    call->resp_off = 0;
    prd.source.ptr = call;
    prd.read_callback = read_response;
    return submit(call, nva, 2, &prd);
}

static bool deadline_passed(const srv_rpc_call *call)
{
    return call->has_deadline && uv_hrtime() >= call->deadline_ns;
}

/* ---- the two methods ---- */

static int answer_fallback(srv_rpc_call *call)
{
    size_t n = srv_extauthz_fallback_response(call->fallback + SRV_GRPC_PREFIX_LEN, SRV_RPC_FALLBACK_MAX);
    return respond_message(call, call->fallback + SRV_GRPC_PREFIX_LEN, n, true);
}

static int run_check(srv_rpc_call *call, srv_worker *w)
{
    pol_decide_ctx ctx = {.arena = &w->decide_arena, .cache = w->cache};
    srv_extauthz_result res;
    uint64_t t0 = uv_hrtime();
    int rc = srv_extauthz_check(w->snap, srv_grpc_reader_message(&call->reader), call->reader.msg_len,
                                (int64_t)time(NULL), &ctx, &res);

    if (rc == -1) {
        return respond_error(call, SRV_GRPC_INVALID_ARGUMENT, "CheckRequest does not decode");
    }
    if (deadline_passed(call)) {
        return respond_error(call, SRV_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
    }
    srv_worker_record_decision(w, &ctx, res.view.request_id, &res.view.req, &res.decision, t0);
    if (rc == -2) {
        return answer_fallback(call);
    }
    rc = respond_message(call, res.response, res.response_len, false);
    /* No memory for the answer: still a decision, never an RPC error. */
    return rc == -2 ? answer_fallback(call) : rc;
}

static int run_health(srv_rpc_call *call, srv_worker *w)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    bool serving = !atomic_load(w->stopping);
    int status = srv_health_check(srv_grpc_reader_message(&call->reader), call->reader.msg_len, serving,
                                  &w->decide_arena, &out, &out_len);
    int rc;

    if (status == SRV_GRPC_NOT_FOUND) {
        return respond_error(call, status, "unknown service");
    }
    if (status != SRV_GRPC_OK) {
        return respond_error(call, status, "HealthCheckRequest does not decode");
    }
    rc = respond_message(call, out, out_len, false);
    return rc == -2 ? respond_error(call, SRV_GRPC_RESOURCE_EXHAUSTED, "out of memory for the answer") : rc;
}

/* ---- what the connection hands over ---- */

static bool name_is(authz_slice name, const char *want)
{
    return authz_slice_eq_cstr(name, want);
}

void srv_rpc_header(srv_rpc_call *call, authz_slice name, authz_slice value)
{
    if (name_is(name, ":method")) {
        call->is_post = authz_slice_eq_cstr(value, "POST");
    } else if (name_is(name, ":path")) {
        if (authz_slice_eq_cstr(value, "/envoy.service.auth.v3.Authorization/Check")) {
            call->kind = SRV_RPC_CHECK;
        } else if (authz_slice_eq_cstr(value, "/grpc.health.v1.Health/Check")) {
            call->kind = SRV_RPC_HEALTH;
        }
    } else if (name_is(name, "content-type")) {
        call->content_type_ok = srv_grpc_content_type_ok(value);
    } else if (name_is(name, "grpc-encoding")) {
        call->encoding_other = !authz_slice_eq_cstr(value, "identity");
    } else if (name_is(name, "grpc-timeout")) {
        uint64_t ns = 0;
        if (srv_grpc_timeout_parse(value, &ns) != 0) {
            call->timeout_bad = true;
        } else {
            call->has_deadline = true;
            call->deadline_ns = ns > UINT64_MAX - call->start_ns ? UINT64_MAX : call->start_ns + ns;
        }
    }
}

int srv_rpc_headers_done(srv_rpc_call *call)
{
    if (!call->is_post) {
        return respond_http(call, "405");
    }
    if (!call->content_type_ok) {
        return respond_http(call, "415");
    }
    if (call->kind == SRV_RPC_UNKNOWN) {
        return respond_error(call, SRV_GRPC_UNIMPLEMENTED, "unknown method");
    }
    if (call->timeout_bad) {
        return respond_error(call, SRV_GRPC_INTERNAL, "malformed grpc-timeout");
    }
    return 0;
}

/* Keeps the first problem found while reading; the request bytes are of no
 * further use and are released at once. */
static void set_error(srv_rpc_call *call, int status, const char *message)
{
    if (call->error_status == 0) {
        call->error_status = status;
        call->error_message = message;
    }
    release_request(call);
}

void srv_rpc_data(srv_rpc_call *call, const uint8_t *data, size_t len)
{
    size_t used = 0;
    size_t room_conn = srv_budget_room(call->budgets[0]);
    size_t room_worker = srv_budget_room(call->budgets[1]);
    size_t held = srv_grpc_reader_held(&call->reader);
    srv_grpc_read rc;

    if (call->responded || call->error_status != 0 || len == 0) {
        return;
    }
    if (call->have_message) {
        set_error(call, SRV_GRPC_INVALID_ARGUMENT, "more than one request message on a unary call");
        return;
    }
    rc = srv_grpc_reader_feed(&call->reader, data, len, room_conn < room_worker ? room_conn : room_worker,
                              &used);
    held = srv_grpc_reader_held(&call->reader) - held;
    call->budgets[0]->held += held;
    call->budgets[1]->held += held;
    switch (rc) {
    case SRV_GRPC_READ_MORE:
        break;
    case SRV_GRPC_READ_MESSAGE:
        call->have_message = true;
        if (used < len) {
            set_error(call, SRV_GRPC_INVALID_ARGUMENT, "more than one request message on a unary call");
        }
        break;
    case SRV_GRPC_READ_TOO_LARGE:
        set_error(call, SRV_GRPC_RESOURCE_EXHAUSTED, "request message larger than max_message_bytes");
        break;
    case SRV_GRPC_READ_COMPRESSED:
        if (call->encoding_other) {
            set_error(call, SRV_GRPC_UNIMPLEMENTED, "compressed messages are not supported");
        } else {
            set_error(call, SRV_GRPC_INTERNAL, "compressed flag set without grpc-encoding");
        }
        break;
    case SRV_GRPC_READ_BAD_FLAG:
        set_error(call, SRV_GRPC_INTERNAL, "invalid message flag");
        break;
    case SRV_GRPC_READ_NOMEM:
        set_error(call, SRV_GRPC_RESOURCE_EXHAUSTED, "out of request memory");
        break;
    case SRV_GRPC_READ_OVER_BUDGET:
        set_error(call, SRV_GRPC_RESOURCE_EXHAUSTED,
                  room_conn < room_worker
                      ? "server busy: request bytes over max_buffered_bytes_per_connection"
                      : "server busy: request bytes over max_buffered_bytes_per_worker");
        break;
    }
}

int srv_rpc_answer_pending(srv_rpc_call *call)
{
    if (call->responded || call->error_status == 0) {
        return 0;
    }
    /* The client is told to stop with RST_STREAM(NO_ERROR) once this is out. */
    return respond_error(call, call->error_status, call->error_message);
}

int srv_rpc_request_done(srv_rpc_call *call, srv_worker *w)
{
    int rc;

    if (call->responded) {
        return 0;
    }
    if (call->error_status != 0) {
        return respond_error(call, call->error_status, call->error_message);
    }
    if (!call->have_message) {
        char why[SRV_RPC_GRPC_MESSAGE_MAX];
        return respond_error(call, SRV_GRPC_INVALID_ARGUMENT,
                             srv_grpc_reader_truncation(&call->reader, why, sizeof(why)) > 0
                                 ? why
                                 : "unary call without a request message");
    }
    if (deadline_passed(call)) {
        return respond_error(call, SRV_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
    }
    rc = call->kind == SRV_RPC_CHECK ? run_check(call, w) : run_health(call, w);
    /* The answer is the call's own now: nothing of the decision is kept. */
    authz_arena_reset(&w->decide_arena);
    return rc;
}

int srv_rpc_request_expired(srv_rpc_call *call)
{
    if (call->responded) {
        return 0;
    }
    /* Never decided: the request is not all there. */
    return respond_error(call, SRV_GRPC_DEADLINE_EXCEEDED, "request not complete in time");
}

bool srv_rpc_answered(const srv_rpc_call *call)
{
    return call->responded;
}

bool srv_rpc_reset_after_answer(const srv_rpc_call *call)
{
    return call->rst_after_send;
}
