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

/* A JSON string, escaped, cut short (never inside an escape) when the line
 * would exceed its budget; the closing quote is always reserved. */
static void put_json(out_buf *o, authz_slice s, size_t budget)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = o->len;

    put_raw(o, "\"", 1);
    for (size_t i = 0; i < s.len && !o->overflow; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        char esc[6];
        size_t n = 0;
        size_t run = i;
        /* Bytes that need no escape go in one copy: this runs per decision. */
        while (run < s.len && s.ptr[run] >= 0x20 && s.ptr[run] < 0x7F && s.ptr[run] != '"' &&
               s.ptr[run] != '\\') {
            run++;
        }
        if (run > i) {
            size_t room = budget > o->len - start ? budget - (o->len - start) : 0;
            size_t take = run - i < room ? run - i : room;
            put_raw(o, s.ptr + i, take);
            if (take < run - i) {
                break;
            }
            i = run - 1;
            continue;
        }
        if (c == '"' || c == '\\') {
            esc[n++] = '\\';
            esc[n++] = (char)c;
        } else if (c < 0x20 || c >= 0x7F) {
            /* Non-ASCII bytes are escaped one by one: the log stays valid
             * JSON even when a header carries invalid UTF-8. */
            esc[n++] = '\\';
            esc[n++] = 'u';
            esc[n++] = '0';
            esc[n++] = '0';
            esc[n++] = hex[c >> 4];
            esc[n++] = hex[c & 0x0Fu];
        } else {
            esc[n++] = (char)c;
        }
        if (o->len - start + n > budget) {
            break;
        }
        put_raw(o, esc, n);
    }
    put_raw(o, "\"", 1);
}

/* |key| is `,"name":` (see put_field). */
static void put_field_key(out_buf *o, const char *key, size_t key_len, authz_slice value)
{
    put_raw(o, key, key_len);
    if (value.ptr == NULL) {
        put_cstr(o, "null");
    } else {
        put_json(o, value, 512);
    }
}

/* `,"name":` and the value; |name| is a string literal, so the key is one
 * constant copied whole (this runs for every field of every decision). */
#define put_field(o, name, value) put_field_key((o), ",\"" name "\":", sizeof(",\"" name "\":") - 1u, (value))

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
    authz_slice cluster = d->cluster != NULL ? d->cluster->name : req->cluster.len > 0 ? req->cluster : none;
    authz_slice subject = d->subject.len > 0 ? d->subject : none;

    put_cstr(&o, "{\"time\":");
    put_time(&o, now_ns);
    put_field(&o, "request_id", request_id.len > 0 ? request_id : none);
    put_field(&o, "cluster", cluster);
    put_field(&o, "subject", subject);
    put_field(&o, "source", req->source.len > 0 ? req->source : none);
    put_field(&o, "method", req->method.len > 0 ? req->method : none);
    put_field(&o, "path", req->path.len > 0 ? req->path : none);
    put_field(&o, "decision", srv_log_decision_name(d));
    put_field(&o, "reason", authz_slice_from_cstr(authz_reason_name(srv_log_decision_reason(d))));
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
