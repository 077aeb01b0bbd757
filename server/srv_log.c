#include "srv_log.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "authz_bearer.h"
#include "authz_reason.h"

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

static void put_field(out_buf *o, const char *name, authz_slice value)
{
    put_raw(o, ",\"", 2);
    put_cstr(o, name);
    put_raw(o, "\":", 2);
    if (value.ptr == NULL) {
        put_cstr(o, "null");
    } else {
        put_json(o, value, 512);
    }
}

static void put_time(out_buf *o, int64_t now_ns)
{
    char buf[48];
    struct tm tm;
    time_t secs = (time_t)(now_ns / 1000000000);
    int ms = (int)((now_ns / 1000000) % 1000);
    size_t n;

    if (gmtime_r(&secs, &tm) == NULL) {
        put_cstr(o, "null");
        return;
    }
    n = strftime(buf, sizeof(buf), "\"%Y-%m-%dT%H:%M:%S", &tm);
    put_raw(o, buf, n);
    snprintf(buf, sizeof(buf), ".%03dZ\"", ms);
    put_cstr(o, buf);
}

static void put_token_hash(out_buf *o, authz_slice authorization)
{
    static const char hex[] = "0123456789abcdef";
    authz_status status;
    authz_slice token;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    char text[10];

    if (authz_bearer_extract(authorization, &token, &status) != 0) {
        /* A malformed header still gets a fingerprint to correlate on. */
        token = authorization;
    }
    if (token.ptr == NULL || token.len == 0 ||
        EVP_Digest(token.ptr, token.len, digest, &digest_len, EVP_sha256(), NULL) != 1 || digest_len < 4) {
        put_cstr(o, "null");
        return;
    }
    text[0] = '"';
    for (size_t i = 0; i < 4; i++) {
        text[1 + 2 * i] = hex[digest[i] >> 4];
        text[2 + 2 * i] = hex[digest[i] & 0x0Fu];
    }
    text[9] = '"';
    put_raw(o, text, sizeof(text));
}

size_t srv_log_format(char *out, size_t size, int64_t now_ns, authz_slice request_id, const pol_request *req,
                      const pol_decision *d, uint64_t duration_us)
{
    out_buf o = {out, size > 0 ? size - 1 : 0, 0, 0};
    authz_slice none = {NULL, 0};
    authz_slice cluster = d->cluster != NULL ? d->cluster->name : req->cluster.len > 0 ? req->cluster : none;
    authz_slice subject = d->subject.len > 0 ? d->subject : none;
    char num[32];

    put_cstr(&o, "{\"time\":");
    put_time(&o, now_ns);
    put_field(&o, "request_id", request_id.len > 0 ? request_id : none);
    put_field(&o, "cluster", cluster);
    put_field(&o, "subject", subject);
    put_field(&o, "source", req->source.len > 0 ? req->source : none);
    put_field(&o, "method", req->method.len > 0 ? req->method : none);
    put_field(&o, "path", req->path.len > 0 ? req->path : none);
    put_field(&o, "decision", d->allowed ? AUTHZ_SLICE_LIT("allow") : AUTHZ_SLICE_LIT("deny"));
    put_field(&o, "reason",
              authz_slice_from_cstr(authz_reason_name(d->allowed ? AUTHZ_REASON_OK : d->status.reason)));
    snprintf(num, sizeof(num), ",\"duration_us\":%llu", (unsigned long long)duration_us);
    put_cstr(&o, num);
    put_cstr(&o, ",\"token_sha256\":");
    put_token_hash(&o, req->authorization);
    put_cstr(&o, "}");
    if (o.overflow) {
        return 0;
    }
    out[o.len++] = '\n';
    return o.len;
}

void srv_log_decision(authz_slice request_id, const pol_request *req, const pol_decision *d,
                      uint64_t duration_us)
{
    char line[SRV_LOG_LINE_MAX];
    struct timespec ts;
    size_t n;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return;
    }
    n = srv_log_format(line, sizeof(line), (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, request_id, req, d,
                       duration_us);
    if (n > 0 && write(STDERR_FILENO, line, n) < 0) {
        return;
    }
}
