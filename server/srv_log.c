#include "srv_log.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "authz_bearer.h"
#include "authz_reason.h"
#include "authz_time.h"

_Static_assert(SRV_LOG_LINE_MAX <= SRV_LOG_BATCH_BYTES, "a whole line fits an empty batch");

typedef struct out_buf {
    char *p;
    size_t size;
    size_t len;
    int overflow;
} out_buf;

static void put_raw(out_buf *o, const char *s, size_t n)
{
    if (o->len + n > o->size) {
        o->overflow = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_cstr(out_buf *o, const char *s)
{
    put_raw(o, s, strlen(s));
}

static bool needs_escape(unsigned char c)
{
    return c == '"' || c == '\\' || c < 0x20 || c >= 0x7F;
}

/* A JSON string, escaped, cut short (never inside an escape) when the line
 * would exceed its budget; the closing quote is always reserved. Runs of
 * bytes that need no escape are copied at once: every decision logs a line. */
static void put_json(out_buf *o, authz_slice s, size_t budget)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = o->len;
    size_t i = 0;

    put_raw(o, "\"", 1);
    while (i < s.len && !o->overflow) {
        size_t run = 0;
        while (i + run < s.len && !needs_escape((unsigned char)s.ptr[i + run])) {
            run++;
        }
        size_t room = budget - (o->len - start);
        put_raw(o, s.ptr + i, run < room ? run : room);
        if (run > room || i + run == s.len) {
            break;
        }
        i += run;
        unsigned char c = (unsigned char)s.ptr[i];
        char esc[6] = {'\\', (char)c};
        size_t n = 2;
        if (c != '"' && c != '\\') {
            /* Control and non-ASCII bytes are escaped one by one: the log
             * stays valid JSON even when a header carries invalid UTF-8. */
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0x0Fu];
            n = 6;
        }
        if (o->len - start + n > budget) {
            break;
        }
        put_raw(o, esc, n);
        i++;
    }
    put_raw(o, "\"", 1);
}

/* Escaped bytes per value: the eleven string fields at their budgets, their
 * names and the fixed parts stay within SRV_LOG_LINE_MAX, so no line is ever
 * dropped for its length (test_srv_log fills every field to check). */
#define VALUE_BUDGET 256u
#define PATH_BUDGET 1024u
#define FIXED_PARTS                                                                                          \
    448u /* names, punctuation, time, decision, peer_binding, generation, duration, fingerprint */
_Static_assert(10u * VALUE_BUDGET + PATH_BUDGET + FIXED_PARTS <= SRV_LOG_LINE_MAX, "a full line fits");

static void put_field_within(out_buf *o, const char *name, authz_slice value, size_t budget)
{
    put_raw(o, ",\"", 2);
    put_cstr(o, name);
    put_raw(o, "\":", 2);
    if (value.ptr == NULL) {
        put_cstr(o, "null");
    } else {
        put_json(o, value, budget);
    }
}

static void put_field(out_buf *o, const char *name, authz_slice value)
{
    put_field_within(o, name, value, VALUE_BUDGET);
}

/* |s| when non-empty, else the absent slice (logged as null). */
static authz_slice or_null(authz_slice s)
{
    authz_slice none = {NULL, 0};
    return s.len > 0 ? s : none;
}

/* The path without its query or fragment: they carry secrets (tokens,
 * signatures, session ids). */
static authz_slice path_without_query(authz_slice path)
{
    for (size_t i = 0; i < path.len; i++) {
        if (path.ptr[i] == '?' || path.ptr[i] == '#') {
            path.len = i;
            break;
        }
    }
    return path;
}

/* Writes |v| in decimal. */
static void put_u64(out_buf *o, uint64_t v)
{
    char buf[20];
    size_t n = sizeof buf;
    do {
        buf[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    put_raw(o, buf + n, sizeof buf - n);
}

/* Writes |v| as exactly |width| decimal digits. */
static void put_digits(out_buf *o, uint64_t v, size_t width)
{
    char buf[8];
    for (size_t i = width; i > 0; i--) {
        buf[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    put_raw(o, buf, width);
}

/* "2024-05-01T12:00:00.123Z" (authz_time_rfc3339 plus milliseconds), or
 * null for a clock outside years 1970-9999. */
static void put_time(out_buf *o, int64_t now_ns)
{
    char text[AUTHZ_TIME_RFC3339_SIZE];
    if (now_ns < 0 || !authz_time_rfc3339(now_ns / 1000000000, text)) {
        put_cstr(o, "null");
        return;
    }
    put_raw(o, "\"", 1);
    put_raw(o, text, AUTHZ_TIME_RFC3339_SIZE - 2); /* up to the Z */
    put_raw(o, ".", 1);
    put_digits(o, (uint64_t)(now_ns / 1000000 % 1000), 3);
    put_raw(o, "Z\"", 2);
}

/* The token's fingerprint: from the decision when the token cache had it,
 * else hashed here; a header that held no bearer credential is hashed whole
 * so a malformed one can still be correlated. */
static void put_token_hash(out_buf *o, const pol_request *req, const pol_decision *d)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t digest[AUTHZ_BEARER_DIGEST_LEN];
    char text[2 + 2 * AUTHZ_BEARER_DIGEST_LEN];

    if (d->has_token_digest) {
        memcpy(digest, d->token_digest, sizeof digest);
    } else if (authz_bearer_digest(d->token.len > 0 ? d->token : req->authorization, digest) != 0) {
        put_cstr(o, "null");
        return;
    }
    text[0] = '"';
    for (size_t i = 0; i < AUTHZ_BEARER_DIGEST_LEN; i++) {
        text[1 + 2 * i] = hex[digest[i] >> 4];
        text[2 + 2 * i] = hex[digest[i] & 0x0Fu];
    }
    text[sizeof text - 1] = '"';
    put_raw(o, text, sizeof text);
}

authz_slice srv_log_decision_name(const pol_decision *d)
{
    if (d->allowed && d->shadow_denied) {
        return AUTHZ_SLICE_LIT("shadow_deny");
    }
    return d->allowed ? AUTHZ_SLICE_LIT("allow") : AUTHZ_SLICE_LIT("deny");
}

authz_reason srv_log_decision_reason(const pol_decision *d)
{
    if (d->allowed) {
        return d->shadow_denied ? d->shadow_status.reason : AUTHZ_REASON_OK;
    }
    return d->status.reason;
}

size_t srv_log_format(char *out, size_t size, int64_t now_ns, authz_slice request_id, const pol_request *req,
                      const pol_decision *d, uint64_t duration_us)
{
    out_buf o = {out, size > 0 ? size - 1 : 0, 0, 0};
    authz_slice none = {NULL, 0};
    authz_slice cluster = d->cluster != NULL ? d->cluster->name : or_null(req->cluster);
    authz_slice message = {d->status.message, strnlen(d->status.message, sizeof(d->status.message))};

    put_cstr(&o, "{\"time\":");
    put_time(&o, now_ns);
    put_field(&o, "request_id", or_null(request_id));
    put_field(&o, "cluster", cluster);
    put_field(&o, "issuer_cluster", d->issuer_cluster != NULL ? d->issuer_cluster->name : none);
    put_field(&o, "subject", or_null(d->verified_subject));
    put_field(&o, "source", or_null(req->source));
    put_field(&o, "host", or_null(req->host));
    put_field(&o, "method", or_null(req->method));
    put_field_within(&o, "path", or_null(path_without_query(req->path)), PATH_BUDGET);
    put_field(&o, "decision", srv_log_decision_name(d));
    put_field(&o, "reason", authz_slice_from_cstr(authz_reason_name(srv_log_decision_reason(d))));
    put_field(&o, "rule", d->rule != NULL ? d->rule->name : none);
    put_field(&o, "peer", or_null(d->peer));
    put_field(&o, "peer_binding", authz_slice_from_cstr(pol_peer_result_name(d->peer_result)));
    put_field(&o, "message", message);
    put_cstr(&o, ",\"generation\":");
    put_u64(&o, d->generation);
    put_cstr(&o, ",\"duration_us\":");
    put_u64(&o, duration_us);
    put_cstr(&o, ",\"token_sha256\":");
    put_token_hash(&o, req, d);
    put_cstr(&o, "}");
    if (o.overflow) {
        return 0;
    }
    out[o.len++] = '\n';
    return o.len;
}

void srv_log_flush(srv_log_batch *batch)
{
    size_t off = 0;
    while (off < batch->len) {
        ssize_t n = write(STDERR_FILENO, batch->data + off, batch->len - off);
        if (n <= 0) {
            break;
        }
        off += (size_t)n;
    }
    batch->len = 0;
}

void srv_log_decision(srv_log_batch *batch, authz_slice request_id, const pol_request *req,
                      const pol_decision *d, uint64_t duration_us)
{
    char line[SRV_LOG_LINE_MAX];
    struct timespec ts;
    size_t n;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return;
    }
    n = srv_log_format(line, sizeof(line), (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, request_id, req, d,
                       duration_us);
    if (n == 0) {
        return;
    }
    if (batch->len + n > sizeof(batch->data)) {
        srv_log_flush(batch);
    }
    memcpy(batch->data + batch->len, line, n);
    batch->len += n;
}
