#include "srv_tls.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* TLS 1.2 suites: forward secrecy and AEAD only, as HTTP/2 requires (RFC
 * 9113 §9.2.2); TLS 1.3's suites are all fine and stay at OpenSSL's default. */
#define TLS12_CIPHERS                                                                                        \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"               \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define REFUSAL_LINE_MAX 512u

/* One allowed client SAN: a URI is compared with URI SANs only, a DNS name
 * with DNS SANs only. */
typedef struct tls_san {
    authz_slice name; /* owned */
    bool uri;
} tls_san;

/* One SSL_CTX and what its verify callback reads; shared by the
 * connections that started on it. */
typedef struct tls_ctx {
    atomic_size_t refs;
    SSL_CTX *ssl_ctx;
    tls_san *sans; /* owned; count 0 = any certificate of the CA */
    size_t san_count;
} tls_ctx;

struct srv_tls {
    uv_mutex_t lock;        /* guards |current| (accepts on every worker, reloads) */
    tls_ctx *current;       /* own reference */
    BIO_METHOD *bio_method; /* the connections' BIO (see conn_bio_*) */
};

struct srv_tls_conn {
    SSL *ssl;
    tls_ctx *ctx; /* own reference */
    srv_tls_sink plain_in;
    srv_tls_sink cipher_out;
    void *arg;
    const uint8_t *in; /* bytes of the current read not yet taken by OpenSSL */
    size_t in_len;
    const char *failure; /* why our callbacks refused the handshake, for the log */
    struct sockaddr_storage peer;
    bool http1; /* the HTTP authorization listener's: ALPN http/1.1 or none, never h2 */
    bool established;
};

/* ---- context reference counting ---- */

static void ctx_release(tls_ctx *tc)
{
    if (tc == NULL || atomic_fetch_sub_explicit(&tc->refs, 1, memory_order_acq_rel) != 1) {
        return;
    }
    SSL_CTX_free(tc->ssl_ctx);
    for (size_t i = 0; i < tc->san_count; i++) {
        free((void *)tc->sans[i].name.ptr);
    }
    free(tc->sans);
    free(tc);
}

/* ---- handshake callbacks ---- */

static bool san_equal(const tls_san *allowed, const ASN1_IA5STRING *value)
{
    size_t len = (size_t)ASN1_STRING_length(value);
    const unsigned char *p = ASN1_STRING_get0_data(value);

    if (len != allowed->name.len) {
        return false;
    }
    if (allowed->uri) {
        return memcmp(p, allowed->name.ptr, len) == 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char a = p[i], b = (unsigned char)allowed->name.ptr[i];
        a = (a >= 'A' && a <= 'Z') ? (unsigned char)(a + 32) : a;
        b = (b >= 'A' && b <= 'Z') ? (unsigned char)(b + 32) : b;
        if (a != b) {
            return false;
        }
    }
    return true;
}

/* True when a URI or DNS SAN of |cert| is one of |tc|'s allowed SANs. */
static bool san_allowed(const tls_ctx *tc, X509 *cert)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    bool found = false;
    int count = names != NULL ? sk_GENERAL_NAME_num(names) : 0;

    for (int i = 0; i < count && !found; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        for (size_t j = 0; j < tc->san_count && !found; j++) {
            if (g->type == GEN_URI && tc->sans[j].uri) {
                found = san_equal(&tc->sans[j], g->d.uniformResourceIdentifier);
            } else if (g->type == GEN_DNS && !tc->sans[j].uri) {
                found = san_equal(&tc->sans[j], g->d.dNSName);
            }
        }
    }
    GENERAL_NAMES_free(names);
    return found;
}

/* Chain verification as OpenSSL does it, then the SAN allowlist on the
 * leaf: failing either fails the handshake with an alert. */
static int verify_cert(X509_STORE_CTX *store, void *arg)
{
    const tls_ctx *tc = arg;
    int ok = X509_verify_cert(store);
    SSL *ssl;
    srv_tls_conn *t;

    if (ok <= 0 || tc->san_count == 0) {
        return ok;
    }
    if (san_allowed(tc, X509_STORE_CTX_get0_cert(store))) {
        return 1;
    }
    ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    t = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    if (t != NULL) {
        t->failure = "client certificate has no SAN listed in tls.allowed_client_sans";
    }
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

/* A ClientHello without ALPN is refused here: the ALPN callback below only
 * runs when the extension is present. */
static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
    const unsigned char *ext;
    size_t len;
    srv_tls_conn *t = SSL_get_app_data(ssl);

    (void)arg;
    if (t->http1 ||
        SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext, &len) == 1) {
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    t->failure = "client offered no ALPN (h2 is required)";
    *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
}

/* Selects "h2" (or "http/1.1" on the HTTP listener) from the client's list
 * (RFC 7301 wire format), or refuses. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                   unsigned int inlen, void *arg)
{
    srv_tls_conn *t = SSL_get_app_data(ssl);
    const char *want = t->http1 ? "http/1.1" : "h2";
    size_t want_len = strlen(want);

    (void)arg;
    for (unsigned int i = 0; i < inlen;) {
        unsigned int len = in[i];
        if (len > inlen - i - 1) {
            break;
        }
        if (len == want_len && memcmp(in + i + 1, want, want_len) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)len;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    t->failure = t->http1 ? "client's ALPN does not offer http/1.1" : "client's ALPN does not offer h2";
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* ---- building a context ---- */

/* The first (root-cause) OpenSSL error queued on this thread, then clears the
 * queue (it is per thread and must not leak into the next operation). */
static const char *ssl_error_text(void)
{
    const char *why = ERR_reason_error_string(ERR_peek_error());
    ERR_clear_error();
    return why != NULL ? why : "unknown error";
}

/* Refuses anything but a regular file of at most SRV_TLS_FILE_MAX_BYTES
 * before OpenSSL reads it. Returns 0 or -1 with |err| set. */
static int check_file(const char *cfg, const char *key, authz_slice file, char *err, size_t err_size)
{
    struct stat st;

    if (stat(file.ptr, &st) != 0) {
        snprintf(err, err_size, "%s: tls.%s: %s: cannot open: %s", cfg, key, file.ptr, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "%s: tls.%s: %s: not a regular file", cfg, key, file.ptr);
        return -1;
    }
    if ((unsigned long long)st.st_size > SRV_TLS_FILE_MAX_BYTES) {
        snprintf(err, err_size, "%s: tls.%s: %s: file is larger than %u bytes", cfg, key, file.ptr,
                 SRV_TLS_FILE_MAX_BYTES);
        return -1;
    }
    return 0;
}

/* Reads the private key of |file| (PEM) and installs it; it must match the
 * certificate already installed. Returns 0 or -1 with |err| set. */
static int use_key(SSL_CTX *ctx, const char *cfg, authz_slice file, char *err, size_t err_size)
{
    BIO *bio = BIO_new_file(file.ptr, "r");
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    int rc = -1;

    if (key == NULL) {
        snprintf(err, err_size, "%s: tls.key_file: %s: not a PEM private key (%s)", cfg, file.ptr,
                 ssl_error_text());
        goto cleanup;
    }
    if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), key) != 1) {
        ERR_clear_error();
        snprintf(err, err_size, "%s: tls.key_file: %s: does not match the certificate of tls.cert_file", cfg,
                 file.ptr);
        goto cleanup;
    }
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        snprintf(err, err_size, "%s: tls.key_file: %s: cannot use the key (%s)", cfg, file.ptr,
                 ssl_error_text());
        goto cleanup;
    }
    rc = 0;
cleanup:
    EVP_PKEY_free(key);
    BIO_free(bio);
    return rc;
}

/* Asks for a client certificate chaining to |file| and refuses clients
 * without one. Returns 0 or -1 with |err| set. */
static int use_client_ca(SSL_CTX *ctx, tls_ctx *tc, const char *cfg, authz_slice file, char *err,
                         size_t err_size)
{
    STACK_OF(X509_NAME) * names;

    if (check_file(cfg, "client_ca_file", file, err, err_size) != 0) {
        return -1;
    }
    if (SSL_CTX_load_verify_file(ctx, file.ptr) != 1) {
        snprintf(err, err_size, "%s: tls.client_ca_file: %s: no PEM certificate (%s)", cfg, file.ptr,
                 ssl_error_text());
        return -1;
    }
    /* The names sent in CertificateRequest, so clients pick the right certificate. */
    names = SSL_load_client_CA_file(file.ptr);
    if (names == NULL) {
        snprintf(err, err_size, "%s: tls.client_ca_file: %s: no PEM certificate (%s)", cfg, file.ptr,
                 ssl_error_text());
        return -1;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, verify_cert, tc);
    return 0;
}

static int copy_sans(tls_ctx *tc, const pol_tls_settings *s)
{
    if (s->allowed_client_san_count == 0) {
        return 0;
    }
    tc->sans = calloc(s->allowed_client_san_count, sizeof(*tc->sans));
    if (tc->sans == NULL) {
        return -1;
    }
    for (size_t i = 0; i < s->allowed_client_san_count; i++) {
        authz_slice src = s->allowed_client_sans[i];
        char *copy = malloc(src.len + 1);
        if (copy == NULL) {
            return -1;
        }
        memcpy(copy, src.ptr, src.len);
        copy[src.len] = '\0';
        tc->sans[i].name = (authz_slice){copy, src.len};
        tc->sans[i].uri = strstr(copy, "://") != NULL;
        tc->san_count = i + 1;
    }
    return 0;
}

/* A new context from |snap|'s settings with one reference, or NULL with
 * |err| set. */
static tls_ctx *ctx_build(const pol_snapshot *snap, char *err, size_t err_size)
{
    const pol_tls_settings *s = &snap->server.tls;
    const char *cfg = snap->path.ptr;
    tls_ctx *tc = calloc(1, sizeof(*tc));
    SSL_CTX *ctx;

    ERR_clear_error();
    if (tc == NULL) {
        snprintf(err, err_size, "%s: tls: out of memory", cfg);
        return NULL;
    }
    atomic_init(&tc->refs, 1);
    if (copy_sans(tc, s) != 0 || (tc->ssl_ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        snprintf(err, err_size, "%s: tls: out of memory", cfg);
        goto fail;
    }
    ctx = tc->ssl_ctx;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 || SSL_CTX_set_num_tickets(ctx, 0) != 1) {
        snprintf(err, err_size, "%s: tls: OpenSSL refused the protocol settings (%s)", cfg, ssl_error_text());
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* Idle connections give their record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_client_hello_cb(ctx, on_client_hello, NULL);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    if (check_file(cfg, "cert_file", s->cert_file, err, err_size) != 0) {
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, s->cert_file.ptr) != 1) {
        snprintf(err, err_size, "%s: tls.cert_file: %s: not a PEM certificate chain (%s)", cfg,
                 s->cert_file.ptr, ssl_error_text());
        goto fail;
    }
    if (check_file(cfg, "key_file", s->key_file, err, err_size) != 0 ||
        use_key(ctx, cfg, s->key_file, err, err_size) != 0) {
        goto fail;
    }
    if (s->client_ca_file.len > 0 && use_client_ca(ctx, tc, cfg, s->client_ca_file, err, err_size) != 0) {
        goto fail;
    }
    return tc;
fail:
    ERR_clear_error();
    ctx_release(tc);
    return NULL;
}

/* ---- the connections' BIO ----
 *
 * One BIO per connection serves both directions without buffering: reads
 * come from the slice srv_tls_conn_recv is working through (OpenSSL keeps a
 * partial record in its own buffer), writes go straight to |cipher_out|. */

static int conn_bio_write(BIO *b, const char *data, int len)
{
    srv_tls_conn *t = BIO_get_data(b);

    BIO_clear_retry_flags(b);
    if (len <= 0) {
        return 0;
    }
    return t->cipher_out(t->arg, (const uint8_t *)data, (size_t)len) == 0 ? len : -1;
}

static int conn_bio_read(BIO *b, char *out, int len)
{
    srv_tls_conn *t = BIO_get_data(b);
    size_t n;

    BIO_clear_retry_flags(b);
    if (t->in_len == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    n = len > 0 ? (size_t)len : 0;
    n = n < t->in_len ? n : t->in_len;
    memcpy(out, t->in, n);
    t->in += n;
    t->in_len -= n;
    return (int)n;
}

static long conn_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int conn_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *conn_bio_method_new(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tokengate connection");

    if (m == NULL || BIO_meth_set_write(m, conn_bio_write) != 1 || BIO_meth_set_read(m, conn_bio_read) != 1 ||
        BIO_meth_set_ctrl(m, conn_bio_ctrl) != 1 || BIO_meth_set_create(m, conn_bio_create) != 1) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

/* ---- public: contexts ---- */

int srv_tls_new(const pol_snapshot *snap, srv_tls **out, char *err, size_t err_size)
{
    srv_tls *tls = calloc(1, sizeof(*tls));

    *out = NULL;
    if (tls == NULL || uv_mutex_init(&tls->lock) != 0) {
        free(tls);
        snprintf(err, err_size, "%s: tls: out of memory", snap->path.ptr);
        return -1;
    }
    tls->bio_method = conn_bio_method_new();
    if (tls->bio_method == NULL) {
        snprintf(err, err_size, "%s: tls: out of memory", snap->path.ptr);
        srv_tls_free(tls);
        return -1;
    }
    tls->current = ctx_build(snap, err, err_size);
    if (tls->current == NULL) {
        srv_tls_free(tls);
        return -1;
    }
    *out = tls;
    return 0;
}

int srv_tls_reload(srv_tls *tls, const pol_snapshot *snap, char *err, size_t err_size)
{
    tls_ctx *fresh;
    tls_ctx *old;

    if (!snap->server.tls.enabled) {
        snprintf(err, err_size, "%s: tls: cannot be removed by a reload (restart to serve h2c)",
                 snap->path.ptr);
        return -1;
    }
    fresh = ctx_build(snap, err, err_size);
    if (fresh == NULL) {
        return -1;
    }
    uv_mutex_lock(&tls->lock);
    old = tls->current;
    tls->current = fresh;
    uv_mutex_unlock(&tls->lock);
    ctx_release(old);
    return 0;
}

void srv_tls_free(srv_tls *tls)
{
    if (tls == NULL) {
        return;
    }
    ctx_release(tls->current);
    BIO_meth_free(tls->bio_method);
    uv_mutex_destroy(&tls->lock);
    free(tls);
}

/* ---- public: connections ---- */

srv_tls_conn *srv_tls_conn_new(srv_tls *tls, const struct sockaddr *peer, srv_tls_sink plain_in,
                               srv_tls_sink cipher_out, void *arg)
{
    srv_tls_conn *t = calloc(1, sizeof(*t));
    BIO *bio;

    if (t == NULL) {
        return NULL;
    }
    t->plain_in = plain_in;
    t->cipher_out = cipher_out;
    t->arg = arg;
    if (peer != NULL) {
        memcpy(&t->peer, peer,
               peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    }
    uv_mutex_lock(&tls->lock);
    t->ctx = tls->current;
    atomic_fetch_add_explicit(&t->ctx->refs, 1, memory_order_relaxed);
    uv_mutex_unlock(&tls->lock);
    t->ssl = SSL_new(t->ctx->ssl_ctx);
    bio = BIO_new(tls->bio_method);
    if (t->ssl == NULL || bio == NULL) {
        BIO_free(bio);
        ERR_clear_error();
        srv_tls_conn_free(t);
        return NULL;
    }
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio);
    SSL_set_app_data(t->ssl, t);
    SSL_set_accept_state(t->ssl);
    return t;
}

/* One line on stderr per refused handshake, written whole (under PIPE_BUF,
 * so it never interleaves with decision lines): which peer, and why. */
static void log_refusal(const srv_tls_conn *t)
{
    char peer[64] = "unknown";
    char why[256];
    char line[REFUSAL_LINE_MAX];
    long verify = SSL_get_verify_result(t->ssl);
    int port = 0;
    int n;

    if (t->peer.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&t->peer;
        uv_ip6_name(a, peer, sizeof(peer));
        port = ntohs(a->sin6_port);
    } else if (t->peer.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&t->peer;
        uv_ip4_name(a, peer, sizeof(peer));
        port = ntohs(a->sin_port);
    }
    if (t->failure != NULL) {
        snprintf(why, sizeof(why), "%s", t->failure);
    } else if (verify != X509_V_OK) {
        snprintf(why, sizeof(why), "client certificate: %s", X509_verify_cert_error_string(verify));
    } else {
        snprintf(why, sizeof(why), "%s", ssl_error_text());
    }
    ERR_clear_error();
    for (char *p = why; *p != '\0'; p++) {
        /* OpenSSL's texts are plain, but the line must stay valid JSON whatever they hold. */
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
            *p = '?';
        }
    }
    n = snprintf(line, sizeof(line),
                 "{\"time\":%lld,\"event\":\"tls_refused\",\"peer\":\"%s:%d\",\"error\":\"%s\"}\n",
                 (long long)time(NULL), peer, port, why);
    if (n > 0) {
        ssize_t ignored = write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
        (void)ignored;
    }
}

/* The protocol the connection may speak was agreed: h2, or on the HTTP
 * listener http/1.1 or no ALPN at all. */
static bool alpn_agreed(const srv_tls_conn *t)
{
    const unsigned char *proto = NULL;
    unsigned int len = 0;

    SSL_get0_alpn_selected(t->ssl, &proto, &len);
    if (t->http1) {
        return len == 0 || (len == 8 && memcmp(proto, "http/1.1", 8) == 0);
    }
    return len == 2 && proto[0] == 'h' && proto[1] == '2';
}

int srv_tls_conn_recv(srv_tls_conn *t, const uint8_t *data, size_t len)
{
    uint8_t plain[SRV_TLS_RECORD_BYTES]; /* one record's plaintext at a time */

    t->in = data;
    t->in_len = len;
    if (!t->established) {
        int rc = SSL_do_handshake(t->ssl);
        if (rc != 1) {
            if (SSL_get_error(t->ssl, rc) == SSL_ERROR_WANT_READ) {
                return 0;
            }
            log_refusal(t);
            return -1;
        }
        /* The callbacks refused anything else; this keeps it fail-closed. */
        if (!alpn_agreed(t)) {
            t->failure = t->http1 ? "ALPN other than http/1.1 negotiated" : "no ALPN h2 negotiated";
            log_refusal(t);
            return -1;
        }
        t->established = true;
    }
    for (;;) {
        int n = SSL_read(t->ssl, plain, (int)sizeof(plain));
        if (n > 0) {
            if (t->plain_in(t->arg, plain, (size_t)n) != 0) {
                return -1;
            }
            continue;
        }
        if (SSL_get_error(t->ssl, n) == SSL_ERROR_WANT_READ) {
            return 0;
        }
        /* close_notify, a bad record, or a sink failure: the connection ends. */
        ERR_clear_error();
        return -1;
    }
}

int srv_tls_conn_send(srv_tls_conn *t, const uint8_t *data, size_t len)
{
    if (!t->established || len > INT_MAX) {
        return -1;
    }
    if (len == 0) {
        return 0;
    }
    /* The BIO never refuses a write, so SSL_write takes everything or fails. */
    if (SSL_write(t->ssl, data, (int)len) != (int)len) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

void srv_tls_conn_speak_http1(srv_tls_conn *t)
{
    t->http1 = true;
}

bool srv_tls_conn_established(const srv_tls_conn *t)
{
    return t->established;
}

void srv_tls_conn_free(srv_tls_conn *t)
{
    if (t == NULL) {
        return;
    }
    SSL_free(t->ssl);
    ctx_release(t->ctx);
    free(t);
}
