#include "srv_keyfetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "srv_cli.h"
#include "srv_event.h"

/* Refresh interval bounds when the server's Cache-Control decides, and the
 * interval without one. */
#define MAX_AGE_MIN_SECONDS 60
#define MAX_AGE_MAX_SECONDS 86400
#define DEFAULT_REFRESH_SECONDS 3600
#define FIRST_BACKOFF_MS 1000u
#define BEARER_MAX_BYTES 16384u
#define CAUSE_SIZE 1024u
#define DIGEST_LEN 32u

/* One remote key owner (cluster or identity provider). Guarded by
 * srv_keyfetch.lock. */
struct srv_keyfetch_entry {
    bool provider;  /* else a cluster */
    char *name;     /* owned */
    char *issuer;   /* owned */
    char *jwks_uri; /* owned, NULL with discovery */
    bool discovery;
    char *ca_file;           /* owned, NULL = system store */
    char *bearer_token_file; /* owned, NULL = none */
    int64_t refresh_seconds; /* 0 = from Cache-Control */
    int64_t fetch_timeout_seconds;
    size_t index;                     /* key owner index in the configured snapshot (kid miss bits) */
    pol_remote_keys *keys;            /* own reference: the last good key set, NULL before one */
    unsigned char digest[DIGEST_LEN]; /* SHA-256 of the last good JWKS document */
    uint64_t due_ms;                  /* uv_hrtime milliseconds of the next fetch */
    uint64_t backoff_ms;              /* after a failure; 0 after a success */
    uint64_t refresh_ms;              /* interval after the last success */
    uint64_t last_miss_ms;            /* the last fetch a kid miss asked for */
    bool missed_before;
    const char *trigger; /* why the next fetch happens (static text) */
    uint64_t successes;
    uint64_t failures;
    int64_t last_success; /* seconds since the epoch, 0 = never */
};

/* What one fetch needs, copied out of the lock, and what it gives. */
typedef struct fetch_job {
    bool provider;
    char *name, *issuer, *jwks_uri, *ca_file, *bearer_token_file;
    bool discovery;
    long timeout;
    const char *trigger;
    /* Results. */
    pol_remote_keys *keys; /* own reference, on success */
    unsigned char digest[DIGEST_LEN];
    long max_age;   /* Cache-Control max-age of the JWKS, -1 when absent */
    char uri[2100]; /* the JWKS URL used (discovery's, or jwks_uri) */
    char cause[CAUSE_SIZE];
} fetch_job;

typedef struct body_buf {
    char *data;
    size_t len;
    size_t cap;
    bool too_big;
    long max_age;
    atomic_bool *stop;
} body_buf;

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static char *dup_slice(authz_slice s)
{
    char *out;
    if (s.ptr == NULL) {
        return NULL;
    }
    out = malloc(s.len + 1u);
    if (out != NULL) {
        memcpy(out, s.ptr, s.len);
        out[s.len] = '\0';
    }
    return out;
}

static char *dup_text(const char *s)
{
    return s == NULL ? NULL : strdup(s);
}

static void entry_free(srv_keyfetch_entry *e)
{
    free(e->name);
    free(e->issuer);
    free(e->jwks_uri);
    free(e->ca_file);
    free(e->bearer_token_file);
    pol_remote_keys_release(e->keys);
}

static bool text_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool text_is(const char *text, authz_slice s)
{
    return strlen(text) == s.len && memcmp(text, s.ptr, s.len) == 0;
}

/* Same owner and same key source: its last good keys still apply. */
static bool same_source(const srv_keyfetch_entry *e, const pol_key_owner *o)
{
    return e->provider == o->provider && text_is(e->name, o->name) && text_is(e->issuer, o->issuer) &&
           e->discovery == o->source->discovery &&
           (e->discovery || (e->jwks_uri != NULL && text_is(e->jwks_uri, o->source->jwks_uri)));
}

static int entry_from_owner(srv_keyfetch_entry *e, const pol_key_owner *o, size_t index)
{
    const pol_remote_source *src = o->source;

    memset(e, 0, sizeof(*e));
    e->provider = o->provider;
    e->name = dup_slice(o->name);
    e->issuer = dup_slice(o->issuer);
    e->jwks_uri = dup_slice(src->jwks_uri);
    e->ca_file = dup_slice(src->ca_file);
    e->bearer_token_file = dup_slice(src->bearer_token_file);
    e->discovery = src->discovery;
    e->refresh_seconds = src->refresh_seconds;
    e->fetch_timeout_seconds = src->fetch_timeout_seconds;
    e->index = index;
    e->refresh_ms =
        (uint64_t)(src->refresh_seconds > 0 ? src->refresh_seconds : DEFAULT_REFRESH_SECONDS) * 1000u;
    e->trigger = "start";
    if (e->name == NULL || e->issuer == NULL || (src->jwks_uri.ptr != NULL && e->jwks_uri == NULL) ||
        (src->ca_file.ptr != NULL && e->ca_file == NULL) ||
        (src->bearer_token_file.ptr != NULL && e->bearer_token_file == NULL)) {
        entry_free(e);
        return -1;
    }
    return 0;
}

int srv_keyfetch_configure(srv_keyfetch *f, const pol_snapshot *snap)
{
    size_t count = 0, n = 0;
    srv_keyfetch_entry *next;

    for (size_t i = 0; i < pol_key_owner_count(snap); i++) {
        count += pol_snapshot_key_owner(snap, i).remote ? 1u : 0u;
    }
    next = calloc(count > 0 ? count : 1u, sizeof(*next));
    if (next == NULL) {
        return -1;
    }
    for (size_t i = 0; i < pol_key_owner_count(snap); i++) {
        pol_key_owner o = pol_snapshot_key_owner(snap, i);
        if (!o.remote) {
            continue;
        }
        if (entry_from_owner(&next[n], &o, i) != 0) {
            while (n > 0) {
                entry_free(&next[--n]);
            }
            free(next);
            return -1;
        }
        n++;
    }
    uv_mutex_lock(&f->lock);
    for (size_t i = 0; i < n; i++) {
        pol_key_owner o = pol_snapshot_key_owner(snap, next[i].index);
        for (size_t j = 0; j < f->entry_count; j++) {
            srv_keyfetch_entry *old = &f->entries[j];
            if (old->name != NULL && same_source(old, &o)) {
                /* Keep what was learnt; take the new settings. A reload
                 * fetches again at once: it is how an operator asks. */
                next[i].keys = old->keys;
                old->keys = NULL;
                memcpy(next[i].digest, old->digest, sizeof(next[i].digest));
                next[i].successes = old->successes;
                next[i].failures = old->failures;
                next[i].last_success = old->last_success;
                next[i].last_miss_ms = old->last_miss_ms;
                next[i].missed_before = old->missed_before;
                next[i].trigger = "reload";
                break;
            }
        }
    }
    for (size_t j = 0; j < f->entry_count; j++) {
        entry_free(&f->entries[j]);
    }
    free(f->entries);
    f->entries = next;
    f->entry_count = n;
    uv_mutex_unlock(&f->lock);
    if (f->thread_started) {
        uv_async_send(&f->wake);
    }
    return 0;
}

pol_snapshot *srv_keyfetch_attach(srv_keyfetch *f, pol_snapshot *snap)
{
    pol_remote_keys **remote;
    pol_snapshot *out;
    bool any_remote = false;
    char err[512] = "";

    for (size_t i = 0; i < pol_key_owner_count(snap); i++) {
        any_remote = any_remote || pol_snapshot_key_owner(snap, i).remote;
    }
    if (!any_remote) {
        return pol_snapshot_acquire(snap);
    }
    remote = calloc(pol_key_owner_count(snap), sizeof(*remote));
    if (remote == NULL) {
        return NULL;
    }
    uv_mutex_lock(&f->lock);
    for (size_t i = 0; i < pol_key_owner_count(snap); i++) {
        pol_key_owner o = pol_snapshot_key_owner(snap, i);
        for (size_t j = 0; o.remote && j < f->entry_count; j++) {
            if (same_source(&f->entries[j], &o)) {
                remote[i] = f->entries[j].keys;
                break;
            }
        }
    }
    out = pol_snapshot_with_remote_keys(snap, remote, err, sizeof(err));
    uv_mutex_unlock(&f->lock);
    free(remote);
    if (err[0] != '\0') {
        json_t *ev = json_object();
        json_object_set_new(ev, "error", json_string(err));
        srv_event_emit("keys_refused", ev);
    }
    return out;
}

void srv_keyfetch_kid_miss(srv_keyfetch *f, const pol_snapshot *snap, authz_slice issuer)
{
    bool fresh = false;

    if (!f->thread_started || atomic_load_explicit(&f->stop, memory_order_relaxed)) {
        return;
    }
    for (size_t i = 0; i < pol_key_owner_count(snap) && i < SRV_KEYFETCH_MAX_OWNERS; i++) {
        pol_key_owner o = pol_snapshot_key_owner(snap, i);
        if (!o.remote || !authz_slice_eq(o.issuer, issuer)) {
            continue;
        }
        uint_least64_t bit = (uint_least64_t)1u << (i % 64u);
        fresh |= (atomic_fetch_or_explicit(&f->miss[i / 64u], bit, memory_order_relaxed) & bit) == 0;
    }
    if (fresh) {
        uv_async_send(&f->wake);
    }
}

/* ---- one HTTP GET ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    body_buf *b = userdata;
    size_t n = size * nmemb;

    if (n > SRV_KEYFETCH_MAX_BODY_BYTES - b->len) {
        b->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 16384u;
        while (cap < b->len + n) {
            cap *= 2u;
        }
        cap = cap > SRV_KEYFETCH_MAX_BODY_BYTES ? SRV_KEYFETCH_MAX_BODY_BYTES : cap;
        char *grown = realloc(b->data, cap + 1u);
        if (grown == NULL) {
            return 0;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return n;
}

/* Cache-Control: max-age=N, from the response headers. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    body_buf *b = userdata;
    size_t n = size * nmemb;
    static const char name[] = "cache-control:";

    if (n > sizeof(name) - 1u && strncasecmp(data, name, sizeof(name) - 1u) == 0) {
        for (size_t i = sizeof(name) - 1u; i + 8u <= n; i++) {
            if (strncasecmp(data + i, "max-age=", 8u) != 0) {
                continue;
            }
            long v = 0;
            size_t d = i + 8u;
            while (d < n && data[d] >= '0' && data[d] <= '9' && v < 100000000L) {
                v = v * 10 + (data[d++] - '0');
            }
            b->max_age = d > i + 8u ? v : -1;
            break;
        }
    }
    return n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    body_buf *b = userdata;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return atomic_load(b->stop) ? 1 : 0; /* non-zero aborts: shutting down */
}

/* Reads the bearer token (at most BEARER_MAX_BYTES, surrounding whitespace
 * dropped) into "Authorization: Bearer <token>". Returns a malloc'd header
 * line or NULL with |cause| set. The token never reaches a log. */
static char *bearer_header(const char *path, char *cause, size_t cause_size)
{
    static const char prefix[] = "Authorization: Bearer ";
    char buf[BEARER_MAX_BYTES + 1u];
    size_t len, start = 0;
    char *line = NULL;
    FILE *fp = fopen(path, "rb");

    if (fp == NULL) {
        snprintf(cause, cause_size, "bearer_token_file %s: %s", path, strerror(errno));
        return NULL;
    }
    len = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    if (len > BEARER_MAX_BYTES) {
        snprintf(cause, cause_size, "bearer_token_file %s: longer than %u bytes", path, BEARER_MAX_BYTES);
        goto done;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ')) {
        len--;
    }
    while (start < len && (buf[start] == ' ' || buf[start] == '\n')) {
        start++;
    }
    for (size_t i = start; i < len; i++) {
        if (buf[i] <= ' ' || buf[i] > '~') {
            snprintf(cause, cause_size, "bearer_token_file %s: not a token (a space or control byte)", path);
            goto done;
        }
    }
    if (start == len) {
        snprintf(cause, cause_size, "bearer_token_file %s: empty", path);
        goto done;
    }
    line = malloc(sizeof(prefix) + (len - start));
    if (line == NULL) {
        snprintf(cause, cause_size, "out of memory");
        goto done;
    }
    memcpy(line, prefix, sizeof(prefix) - 1u);
    memcpy(line + sizeof(prefix) - 1u, buf + start, len - start);
    line[sizeof(prefix) - 1u + (len - start)] = '\0';
done:
    OPENSSL_cleanse(buf, sizeof(buf));
    return line;
}

/* GETs |url| into |b| (status 200 only, https only, no redirects). Returns
 * 0, or -1 with job->cause set. */
static int http_get(fetch_job *job, const char *url, body_buf *b)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    char *auth = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    char agent[64];
    long status = 0;
    CURLcode rc;
    int result = -1;

    if (curl == NULL) {
        snprintf(job->cause, sizeof(job->cause), "out of memory");
        return -1;
    }
    if (job->bearer_token_file != NULL) {
        auth = bearer_header(job->bearer_token_file, job->cause, sizeof(job->cause));
        if (auth == NULL) {
            goto done;
        }
    }
    headers = curl_slist_append(headers, "Accept: application/json, application/jwk-set+json");
    if (headers != NULL && auth != NULL) {
        struct curl_slist *more = curl_slist_append(headers, auth);
        headers = more != NULL ? more : headers;
    }
    snprintf(agent, sizeof(agent), "tokengate/%s", srv_cli_version());
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, job->timeout);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SRV_KEYFETCH_MAX_BODY_BYTES);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, agent);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, b);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, b);
    if (job->ca_file != NULL) {
        /* Only this bundle: not the system's store beside it. */
        curl_easy_setopt(curl, CURLOPT_CAINFO, job->ca_file);
        curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
    }
    rc = curl_easy_perform(curl);
    if (b->too_big) {
        snprintf(job->cause, sizeof(job->cause), "%.300s: document larger than %u bytes", url,
                 SRV_KEYFETCH_MAX_BODY_BYTES);
    } else if (rc != CURLE_OK) {
        snprintf(job->cause, sizeof(job->cause), "%.300s: %s", url,
                 errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200) {
        snprintf(job->cause, sizeof(job->cause), "%.300s: HTTP status %ld", url, status);
    } else {
        result = 0;
    }
done:
    if (auth != NULL) {
        OPENSSL_cleanse(auth, strlen(auth));
        free(auth);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return result;
}

/* Discovery: the issuer's openid-configuration must name the same issuer,
 * byte for byte, and an https jwks_uri; copies it into job->uri. */
static int discover(fetch_job *job, atomic_bool *stop)
{
    body_buf b = {.max_age = -1, .stop = stop};
    char url[2100];
    size_t ilen = strlen(job->issuer);
    json_t *doc = NULL;
    json_error_t jerr;
    int rc = -1;

    /* OpenID Connect Discovery 1.0, 4: a trailing slash of the issuer is
     * not doubled. */
    if (ilen > 0 && job->issuer[ilen - 1] == '/') {
        ilen--;
    }
    if (snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration", (int)ilen, job->issuer) >=
        (int)sizeof(url)) {
        snprintf(job->cause, sizeof(job->cause), "discovery: issuer too long");
        return -1;
    }
    if (http_get(job, url, &b) != 0) {
        goto done;
    }
    doc = json_loadb(b.data != NULL ? b.data : "", b.len, JSON_REJECT_DUPLICATES, &jerr);
    const json_t *iss = json_object_get(doc, "issuer");
    const json_t *uri = json_object_get(doc, "jwks_uri");
    if (!json_is_object(doc)) {
        snprintf(job->cause, sizeof(job->cause), "%.300s: not a JSON object: %s", url,
                 doc == NULL ? jerr.text : "another JSON value");
    } else if (!json_is_string(iss) || json_string_length(iss) != strlen(job->issuer) ||
               memcmp(json_string_value(iss), job->issuer, strlen(job->issuer)) != 0) {
        snprintf(job->cause, sizeof(job->cause), "%.300s: issuer %.200s is not the %s's issuer %.200s", url,
                 json_is_string(iss) ? json_string_value(iss) : "(none)",
                 job->provider ? "identity provider" : "cluster", job->issuer);
    } else if (!json_is_string(uri) || strncmp(json_string_value(uri), "https://", 8) != 0 ||
               json_string_length(uri) >= sizeof(job->uri) ||
               strlen(json_string_value(uri)) != json_string_length(uri)) {
        snprintf(job->cause, sizeof(job->cause), "%.300s: jwks_uri missing or not an https:// URL", url);
    } else {
        memcpy(job->uri, json_string_value(uri), json_string_length(uri) + 1u);
        rc = 0;
    }
done:
    json_decref(doc);
    free(b.data);
    return rc;
}

/* Fetches |job|'s keys; on return job->keys is set, or job->cause says why
 * not. */
static void run_job(fetch_job *job, atomic_bool *stop)
{
    body_buf b = {.max_age = -1, .stop = stop};
    char why[256];

    job->max_age = -1;
    if (job->discovery) {
        if (discover(job, stop) != 0) {
            goto done;
        }
    } else {
        snprintf(job->uri, sizeof(job->uri), "%s", job->jwks_uri);
    }
    if (http_get(job, job->uri, &b) != 0) {
        goto done;
    }
    job->max_age = b.max_age;
    job->keys = pol_remote_keys_new(b.data != NULL ? b.data : "", b.len,
                                    (authz_slice){job->uri, strlen(job->uri)}, why, sizeof(why));
    if (job->keys == NULL) {
        snprintf(job->cause, sizeof(job->cause), "%.300s: %s", job->uri, why);
        goto done;
    }
    if (EVP_Digest(b.data != NULL ? b.data : "", b.len, job->digest, NULL, EVP_sha256(), NULL) != 1) {
        memset(job->digest, 0, sizeof(job->digest));
    }
done:
    if (job->keys == NULL && job->cause[0] == '\0') {
        snprintf(job->cause, sizeof(job->cause), "fetch did not complete");
    }
    free(b.data);
}

static void job_free(fetch_job *job)
{
    free(job->name);
    free(job->issuer);
    free(job->jwks_uri);
    free(job->ca_file);
    free(job->bearer_token_file);
    pol_remote_keys_release(job->keys);
}

/* ---- the fetch thread ---- */

static srv_keyfetch_entry *find_entry(srv_keyfetch *f, const fetch_job *job)
{
    for (size_t i = 0; i < f->entry_count; i++) {
        srv_keyfetch_entry *e = &f->entries[i];
        if (e->provider == job->provider && strcmp(e->name, job->name) == 0 &&
            strcmp(e->issuer, job->issuer) == 0 && e->discovery == job->discovery &&
            text_eq(e->jwks_uri, job->jwks_uri)) {
            return e;
        }
    }
    return NULL;
}

/* Copies what fetching |e| needs into |job| (zeroed first). Lock held.
 * Returns 0, or -1 when out of memory (|job| then holds nothing). */
static int job_from_entry(const srv_keyfetch_entry *e, fetch_job *job)
{
    memset(job, 0, sizeof(*job));
    job->provider = e->provider;
    job->name = dup_text(e->name);
    job->issuer = dup_text(e->issuer);
    job->jwks_uri = dup_text(e->jwks_uri);
    job->ca_file = dup_text(e->ca_file);
    job->bearer_token_file = dup_text(e->bearer_token_file);
    job->discovery = e->discovery;
    job->timeout = (long)e->fetch_timeout_seconds;
    job->trigger = e->trigger;
    if (job->name == NULL || job->issuer == NULL || (e->jwks_uri != NULL && job->jwks_uri == NULL) ||
        (e->ca_file != NULL && job->ca_file == NULL) ||
        (e->bearer_token_file != NULL && job->bearer_token_file == NULL)) {
        job_free(job);
        memset(job, 0, sizeof(*job));
        return -1;
    }
    return 0;
}

/* Marks the key owners a kid miss named as due now, unless one was fetched
 * for a miss within SRV_KEYFETCH_MISS_INTERVAL_MS. Lock held. */
static void take_misses(srv_keyfetch *f, uint64_t now)
{
    uint_least64_t bits[SRV_KEYFETCH_MISS_WORDS];

    for (size_t w = 0; w < SRV_KEYFETCH_MISS_WORDS; w++) {
        bits[w] = atomic_exchange_explicit(&f->miss[w], 0, memory_order_relaxed);
    }
    for (size_t i = 0; i < f->entry_count; i++) {
        srv_keyfetch_entry *e = &f->entries[i];
        if (e->index >= SRV_KEYFETCH_MAX_OWNERS || (bits[e->index / 64u] >> (e->index % 64u) & 1u) == 0) {
            continue;
        }
        if (e->missed_before && now - e->last_miss_ms < SRV_KEYFETCH_MISS_INTERVAL_MS) {
            continue; /* dropped: answered unknown_key without a fetch */
        }
        e->missed_before = true;
        e->last_miss_ms = now;
        e->due_ms = now;
        e->trigger = "kid_miss";
    }
}

/* Copies the due entry with the earliest due time into |job|. Lock held.
 * Returns false when none is due. */
static bool take_due(srv_keyfetch *f, uint64_t now, fetch_job *job)
{
    srv_keyfetch_entry *best = NULL;

    for (size_t i = 0; i < f->entry_count; i++) {
        srv_keyfetch_entry *e = &f->entries[i];
        if (e->due_ms <= now && (best == NULL || e->due_ms < best->due_ms)) {
            best = e;
        }
    }
    if (best == NULL) {
        return false;
    }
    /* Not due again until this fetch's outcome says when. */
    best->due_ms = UINT64_MAX;
    if (job_from_entry(best, job) != 0) {
        best->due_ms = now + FIRST_BACKOFF_MS;
        return false;
    }
    best->trigger = "schedule";
    return true;
}

/* Backoff after a failure: 1 s doubling, capped at the refresh interval,
 * with the upper half jittered so clusters and replicas spread out. */
static uint64_t next_backoff(srv_keyfetch_entry *e)
{
    uint64_t cap = e->refresh_ms;
    unsigned char r[4] = {0};
    uint32_t rnd;

    e->backoff_ms = e->backoff_ms == 0 ? FIRST_BACKOFF_MS : e->backoff_ms * 2u;
    if (e->backoff_ms > cap) {
        e->backoff_ms = cap;
    }
    (void)RAND_bytes(r, sizeof(r));
    rnd = (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24;
    return e->backoff_ms / 2u + rnd % (e->backoff_ms / 2u + 1u);
}

/* Records |job|'s outcome in its entry (if the config still has it) and
 * logs it when |emit| (a command line reports it itself). Returns true when
 * the cluster's key set changed. */
static bool apply_result(srv_keyfetch *f, fetch_job *job, uint64_t now, bool emit)
{
    bool changed = false;
    uint64_t delay = 0;
    size_t key_count = 0;
    json_t *ev = json_object();

    uv_mutex_lock(&f->lock);
    srv_keyfetch_entry *e = find_entry(f, job);
    if (e != NULL && job->keys != NULL) {
        e->successes++;
        e->last_success = (int64_t)time(NULL);
        e->backoff_ms = 0;
        if (e->refresh_seconds > 0) {
            e->refresh_ms = (uint64_t)e->refresh_seconds * 1000u;
        } else if (job->max_age >= 0) {
            long s = job->max_age < MAX_AGE_MIN_SECONDS   ? MAX_AGE_MIN_SECONDS
                     : job->max_age > MAX_AGE_MAX_SECONDS ? MAX_AGE_MAX_SECONDS
                                                          : job->max_age;
            e->refresh_ms = (uint64_t)s * 1000u;
        } else {
            e->refresh_ms = (uint64_t)DEFAULT_REFRESH_SECONDS * 1000u;
        }
        delay = e->refresh_ms;
        if (e->keys == NULL || memcmp(e->digest, job->digest, sizeof(e->digest)) != 0) {
            pol_remote_keys_release(e->keys);
            e->keys = job->keys;
            job->keys = NULL;
            memcpy(e->digest, job->digest, sizeof(e->digest));
            changed = true;
        }
        key_count = e->keys->keys.count;
    } else if (e != NULL) {
        e->failures++;
        delay = next_backoff(e);
        key_count = e->keys != NULL ? e->keys->keys.count : 0u;
    }
    if (e != NULL && e->due_ms == UINT64_MAX) {
        e->due_ms = now + delay;
    }
    uv_mutex_unlock(&f->lock);
    if (e == NULL || !emit) {
        json_decref(ev); /* e NULL: a reload removed or replaced the owner meanwhile */
        return changed;
    }
    json_object_set_new(ev, job->provider ? "provider" : "cluster", json_string(job->name));
    json_object_set_new(ev, "result", json_string(job->cause[0] == '\0' ? "success" : "failure"));
    json_object_set_new(ev, "trigger", json_string(job->trigger));
    json_object_set_new(ev, "uri", job->uri[0] != '\0' ? json_string(job->uri) : json_null());
    if (job->cause[0] != '\0') {
        json_object_set_new(ev, "error", json_string(job->cause));
    } else {
        json_object_set_new(ev, "changed", json_boolean(changed));
    }
    /* What is in force after this attempt: the last good keys. */
    json_object_set_new(ev, "keys", json_integer((json_int_t)key_count));
    json_object_set_new(ev, "next_attempt_ms", json_integer((json_int_t)delay));
    srv_event_emit("jwks_refresh", ev);
    return changed;
}

static void on_timer(uv_timer_t *timer);

/* Fetches whatever is due, one at a time, then sleeps until the next. */
static void service(srv_keyfetch *f)
{
    bool changed = false;
    uint64_t next = UINT64_MAX;
    fetch_job job;

    while (!atomic_load(&f->stop)) {
        uint64_t now = now_ms();
        bool due;
        uv_mutex_lock(&f->lock);
        take_misses(f, now);
        due = take_due(f, now, &job);
        uv_mutex_unlock(&f->lock);
        if (!due) {
            break;
        }
        run_job(&job, &f->stop);
        changed |= apply_result(f, &job, now_ms(), true);
        job_free(&job);
    }
    if (changed) {
        uv_async_send(f->changed);
    }
    if (atomic_load(&f->stop)) {
        return;
    }
    uv_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->entry_count; i++) {
        next = f->entries[i].due_ms < next ? f->entries[i].due_ms : next;
    }
    uv_mutex_unlock(&f->lock);
    if (next != UINT64_MAX) {
        uint64_t now = now_ms();
        uv_timer_start(&f->timer, on_timer, next > now ? next - now : 0, 0);
    }
}

static void on_timer(uv_timer_t *timer)
{
    service(timer->data);
}

static void on_wake(uv_async_t *wake)
{
    srv_keyfetch *f = wake->data;

    if (atomic_load(&f->stop)) {
        uv_close((uv_handle_t *)&f->wake, NULL);
        uv_close((uv_handle_t *)&f->timer, NULL);
        f->handles_open = false;
        return;
    }
    service(f);
}

static void thread_main(void *arg)
{
    srv_keyfetch *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

int srv_keyfetch_init(srv_keyfetch *f, uv_async_t *changed)
{
    memset(f, 0, sizeof(*f));
    f->changed = changed;
    atomic_init(&f->stop, false);
    for (size_t w = 0; w < SRV_KEYFETCH_MISS_WORDS; w++) {
        atomic_init(&f->miss[w], 0);
    }
    /* Not thread-safe: before any other thread exists. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return -1;
    }
    f->curl_ready = true;
    if (uv_mutex_init(&f->lock) != 0) {
        return -1;
    }
    f->lock_ready = true;
    if (uv_loop_init(&f->loop) != 0) {
        return -1;
    }
    f->loop_ready = true;
    if (uv_async_init(&f->loop, &f->wake, on_wake) != 0) {
        return -1;
    }
    if (uv_timer_init(&f->loop, &f->timer) != 0) {
        uv_close((uv_handle_t *)&f->wake, NULL);
        return -1;
    }
    f->wake.data = f;
    f->timer.data = f;
    f->handles_open = true;
    return 0;
}

int srv_keyfetch_start(srv_keyfetch *f)
{
    if (uv_thread_create(&f->thread, thread_main, f) != 0) {
        return -1;
    }
    f->thread_started = true;
    uv_async_send(&f->wake); /* the first fetches */
    return 0;
}

void srv_keyfetch_stop(srv_keyfetch *f)
{
    if (!f->thread_started) {
        return;
    }
    atomic_store(&f->stop, true);
    uv_async_send(&f->wake);
    uv_thread_join(&f->thread);
    f->thread_started = false;
}

/* srv_keyfetch_fetch_now's jobs, shared by its threads. */
typedef struct fetch_run {
    fetch_job *jobs;
    size_t count;
    atomic_size_t next; /* the next job to take */
    atomic_bool *stop;
} fetch_run;

static void fetch_run_main(void *arg)
{
    fetch_run *run = arg;

    for (;;) {
        size_t i = atomic_fetch_add(&run->next, 1u);
        if (i >= run->count) {
            return;
        }
        run_job(&run->jobs[i], run->stop);
    }
}

int srv_keyfetch_fetch_now(srv_keyfetch *f, srv_keyfetch_report_fn *report, void *ctx)
{
    uv_thread_t threads[SRV_KEYFETCH_NOW_THREADS];
    size_t started = 0, prepared = 0;
    int failed = -1;
    fetch_run run = {.count = f->entry_count, .stop = &f->stop};

    atomic_init(&run.next, 0);
    run.jobs = calloc(run.count > 0 ? run.count : 1u, sizeof(*run.jobs));
    if (run.jobs == NULL) {
        return -1;
    }
    uv_mutex_lock(&f->lock);
    while (prepared < run.count && job_from_entry(&f->entries[prepared], &run.jobs[prepared]) == 0) {
        prepared++;
    }
    uv_mutex_unlock(&f->lock);
    if (prepared < run.count) {
        goto done;
    }
    while (started < run.count && started < SRV_KEYFETCH_NOW_THREADS &&
           uv_thread_create(&threads[started], fetch_run_main, &run) == 0) {
        started++;
    }
    fetch_run_main(&run); /* this thread helps, and alone does it all when none started */
    for (size_t t = 0; t < started; t++) {
        uv_thread_join(&threads[t]);
    }
    failed = 0;
    for (size_t i = 0; i < run.count; i++) {
        fetch_job *job = &run.jobs[i];
        srv_keyfetch_outcome out = {
            .provider = job->provider,
            .name = job->name,
            .owner_index = f->entries[i].index,
            .uri = job->uri,
            .error = job->keys == NULL ? job->cause : NULL,
        };
        failed += job->keys == NULL ? 1 : 0;
        (void)apply_result(f, job, now_ms(), false);
        if (report != NULL) {
            report(ctx, &out);
        }
    }
done:
    for (size_t i = 0; i < prepared; i++) {
        job_free(&run.jobs[i]);
    }
    free(run.jobs);
    return failed;
}

void srv_keyfetch_free(srv_keyfetch *f)
{
    if (f->loop_ready) {
        if (f->handles_open) {
            /* The thread never ran: close the handles here. */
            uv_close((uv_handle_t *)&f->wake, NULL);
            uv_close((uv_handle_t *)&f->timer, NULL);
            f->handles_open = false;
        }
        uv_run(&f->loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&f->loop);
        f->loop_ready = false;
    }
    for (size_t i = 0; i < f->entry_count; i++) {
        entry_free(&f->entries[i]);
    }
    free(f->entries);
    f->entries = NULL;
    f->entry_count = 0;
    if (f->lock_ready) {
        uv_mutex_destroy(&f->lock);
        f->lock_ready = false;
    }
    if (f->curl_ready) {
        curl_global_cleanup();
        f->curl_ready = false;
    }
}

static void write_label(FILE *out, const char *name)
{
    for (const char *p = name; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"') {
            fputc('\\', out);
        }
        fputc(*p == '\n' ? 'n' : *p, out);
    }
}

/* The metric label naming an entry's owner. */
static const char *owner_label(const srv_keyfetch_entry *e)
{
    return e->provider ? "provider" : "cluster";
}

void srv_keyfetch_write_metrics(srv_keyfetch *f, FILE *out)
{
    static const char *const results[] = {"success", "failure"};

    uv_mutex_lock(&f->lock);
    fputs("# HELP tokengate_jwks_refresh_total Remote key fetches, by cluster (or provider) and result.\n"
          "# TYPE tokengate_jwks_refresh_total counter\n",
          out);
    for (size_t i = 0; i < f->entry_count; i++) {
        for (size_t r = 0; r < 2; r++) {
            fprintf(out, "tokengate_jwks_refresh_total{%s=\"", owner_label(&f->entries[i]));
            write_label(out, f->entries[i].name);
            fprintf(out, "\",result=\"%s\"} %llu\n", results[r],
                    (unsigned long long)(r == 0 ? f->entries[i].successes : f->entries[i].failures));
        }
    }
    fputs("# HELP tokengate_jwks_last_success_timestamp_seconds When a cluster's (or provider's) keys were "
          "last fetched "
          "successfully, seconds since the epoch (0: never).\n"
          "# TYPE tokengate_jwks_last_success_timestamp_seconds gauge\n",
          out);
    for (size_t i = 0; i < f->entry_count; i++) {
        fprintf(out, "tokengate_jwks_last_success_timestamp_seconds{%s=\"", owner_label(&f->entries[i]));
        write_label(out, f->entries[i].name);
        fprintf(out, "\"} %lld\n", (long long)f->entries[i].last_success);
    }
    uv_mutex_unlock(&f->lock);
}
