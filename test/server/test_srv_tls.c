/* srv_tls driven in memory by an OpenSSL client: the handshake through the
 * sinks, data both ways, and the reload contract (new connections get the
 * new certificate, open ones keep theirs, a broken reload keeps the old).
 * Certificates are made with the openssl CLI in a temporary folder. */
#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pol_config.h"
#include "srv_tls.h"

#define BUF_MAX (256u * 1024u)

static char dir[64];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sh(const char *fmt, ...)
{
    char cmd[2048];
    int n = snprintf(cmd, sizeof cmd, "cd '%s' && ", dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

static void make_cert(const char *name, const char *ca)
{
    sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key -out %s.csr -subj "
       "/CN=%s "
       ">/dev/null 2>&1 && openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial -out %s.pem "
       "-days 2 >/dev/null 2>&1",
       name, name, name, name, ca, ca, name);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/tg-srv-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
       "-days 2 "
       "-subj /CN=ca >/dev/null 2>&1");
    make_cert("server1", "ca");
    make_cert("server2", "ca");
}

static void teardown(void)
{
    sh("cd / && rm -rf '%s'", dir);
}

/* A config whose "tls" uses |cert| and |key| (no "tls" at all when !|tls|). */
static pol_snapshot *load(const char *cert, const char *key, bool tls)
{
    char path[128], err[2048];
    pol_snapshot *snap = NULL;
    FILE *f;

    sh("test -f k.pub.pem || openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl ec "
       "-pubout "
       "-out k.pub.pem 2>/dev/null");
    snprintf(path, sizeof path, "%s/config-%s-%s-%d.json", dir, cert, key, tls);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    if (tls) {
        fprintf(f, "{\"tls\":{\"cert_file\":\"%s\",\"key_file\":\"%s\"},", cert, key);
    } else {
        fputs("{", f);
    }
    fputs("\"clusters\":[{\"name\":\"a\",\"issuer\":\"https://a\",\"audiences\":[\"x\"],"
          "\"public_key_files\":[\"k.pub.pem\"]}]}",
          f);
    fclose(f);
    cr_assert_eq(pol_config_load(path, &snap, err, sizeof err), 0, "%s", err);
    return snap;
}

/* One in-memory connection: an OpenSSL client and a srv_tls_conn. */
typedef struct pair {
    SSL *client;
    BIO *to_client; /* what the server sends, for the client to read */
    srv_tls_conn *server;
    uint8_t plain[BUF_MAX]; /* what the server decrypted */
    size_t plain_len;
} pair;

static int plain_in(void *arg, const uint8_t *data, size_t len)
{
    pair *p = arg;
    cr_assert_leq(len, BUF_MAX - p->plain_len);
    memcpy(p->plain + p->plain_len, data, len);
    p->plain_len += len;
    return 0;
}

static int cipher_out(void *arg, const uint8_t *data, size_t len)
{
    pair *p = arg;
    return BIO_write(p->to_client, data, (int)len) == (int)len ? 0 : -1;
}

static SSL_CTX *client_ctx;

static pair *pair_new(srv_tls *tls)
{
    pair *p = calloc(1, sizeof(*p));
    BIO *to_server = BIO_new(BIO_s_mem());

    if (client_ctx == NULL) {
        char ca[128];
        snprintf(ca, sizeof ca, "%s/ca.pem", dir);
        client_ctx = SSL_CTX_new(TLS_client_method());
        cr_assert_eq(SSL_CTX_load_verify_file(client_ctx, ca), 1);
        SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_alpn_protos(client_ctx, (const unsigned char *)"\x02h2", 3);
    }
    p->to_client = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(p->to_client, -1);
    BIO_set_mem_eof_return(to_server, -1);
    p->client = SSL_new(client_ctx);
    SSL_set_bio(p->client, p->to_client, to_server);
    BIO_up_ref(p->to_client);
    SSL_set_connect_state(p->client);
    p->server = srv_tls_conn_new(tls, NULL, plain_in, cipher_out, p);
    cr_assert_not_null(p->server);
    return p;
}

/* Moves the client's pending output into the server. Returns its result. */
static int to_server(pair *p)
{
    char *data;
    BIO *wbio = SSL_get_wbio(p->client);
    long n = BIO_get_mem_data(wbio, &data);
    int rc = n > 0 ? srv_tls_conn_recv(p->server, (const uint8_t *)data, (size_t)n) : 0;
    (void)BIO_reset(wbio);
    return rc;
}

static void handshake(pair *p)
{
    for (int i = 0; i < 10 && !(SSL_is_init_finished(p->client) && srv_tls_conn_established(p->server));
         i++) {
        (void)SSL_do_handshake(p->client);
        cr_assert_eq(to_server(p), 0);
    }
    cr_assert(srv_tls_conn_established(p->server));
    cr_assert(SSL_is_init_finished(p->client));
}

/* The CN of the certificate the server presented to |p|'s client. */
static void peer_cn(pair *p, char *out, size_t size)
{
    X509 *cert = SSL_get1_peer_certificate(p->client);
    cr_assert_not_null(cert);
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, out, (int)size);
    X509_free(cert);
}

/* Data both ways over an established pair. */
static void exchange(pair *p)
{
    char back[16];
    size_t before = p->plain_len;

    cr_assert_eq(SSL_write(p->client, "ping", 4), 4);
    cr_assert_eq(to_server(p), 0);
    cr_assert_eq(p->plain_len - before, 4);
    cr_assert_eq(memcmp(p->plain + before, "ping", 4), 0);
    cr_assert_eq(srv_tls_conn_send(p->server, (const uint8_t *)"pong", 4), 0);
    cr_assert_eq(SSL_read(p->client, back, sizeof back), 4);
    cr_assert_eq(memcmp(back, "pong", 4), 0);
}

static void pair_free(pair *p)
{
    srv_tls_conn_free(p->server);
    SSL_free(p->client);
    BIO_free(p->to_client);
    free(p);
}

static void free_client_ctx(void)
{
    SSL_CTX_free(client_ctx);
    client_ctx = NULL;
    teardown();
}

TestSuite(srv_tls, .init = setup, .fini = free_client_ctx);

Test(srv_tls, handshake_and_data_through_the_sinks)
{
    pol_snapshot *snap = load("server1.pem", "server1.key", true);
    srv_tls *tls;
    char err[1024], cn[64];

    cr_assert_eq(srv_tls_new(snap, &tls, err, sizeof err), 0, "%s", err);
    pair *p = pair_new(tls);
    cr_assert_eq(srv_tls_conn_send(p->server, (const uint8_t *)"early", 5), -1,
                 "nothing is sent before the handshake");
    handshake(p);
    peer_cn(p, cn, sizeof cn);
    cr_assert_str_eq(cn, "server1");
    exchange(p);
    pair_free(p);
    srv_tls_free(tls);
    pol_snapshot_release(snap);
}

Test(srv_tls, reload_serves_new_connections_and_keeps_open_ones)
{
    pol_snapshot *snap1 = load("server1.pem", "server1.key", true);
    pol_snapshot *snap2 = load("server2.pem", "server2.key", true);
    srv_tls *tls;
    char err[1024], cn[64];

    cr_assert_eq(srv_tls_new(snap1, &tls, err, sizeof err), 0, "%s", err);
    pair *old = pair_new(tls);
    handshake(old);
    pair *mid = pair_new(tls); /* accepted before the reload, handshake after it */
    cr_assert_eq(srv_tls_reload(tls, snap2, err, sizeof err), 0, "%s", err);
    pair *fresh = pair_new(tls);
    handshake(fresh);
    peer_cn(fresh, cn, sizeof cn);
    cr_assert_str_eq(cn, "server2");
    handshake(mid);
    peer_cn(mid, cn, sizeof cn);
    cr_assert_str_eq(cn, "server1", "a connection keeps the context of its accept");
    exchange(old);
    pair_free(old);
    pair_free(mid);
    exchange(fresh); /* the old context is gone with its last connection; the new one is untouched */
    pair_free(fresh);
    srv_tls_free(tls);
    pol_snapshot_release(snap1);
    pol_snapshot_release(snap2);
}

Test(srv_tls, broken_reload_keeps_the_last_good_context)
{
    pol_snapshot *good = load("server1.pem", "server1.key", true);
    pol_snapshot *bad = load("server2.pem", "server1.key", true);
    pol_snapshot *plain = load("server1.pem", "server1.key", false);
    srv_tls *tls;
    char err[1024], cn[64];

    cr_assert_eq(srv_tls_new(good, &tls, err, sizeof err), 0, "%s", err);
    cr_assert_eq(srv_tls_reload(tls, bad, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "tls.key_file: "), "%s", err);
    cr_assert_not_null(strstr(err, "does not match the certificate"), "%s", err);
    cr_assert_eq(srv_tls_reload(tls, plain, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "cannot be removed by a reload"), "%s", err);
    pair *p = pair_new(tls);
    handshake(p);
    peer_cn(p, cn, sizeof cn);
    cr_assert_str_eq(cn, "server1");
    pair_free(p);
    srv_tls_free(tls);
    pol_snapshot_release(good);
    pol_snapshot_release(bad);
    pol_snapshot_release(plain);
}

Test(srv_tls, garbage_instead_of_a_client_hello_fails_the_connection)
{
    pol_snapshot *snap = load("server1.pem", "server1.key", true);
    srv_tls *tls;
    char err[1024];
    uint8_t garbage[512];

    for (size_t i = 0; i < sizeof garbage; i++) {
        garbage[i] = (uint8_t)(i * 131u + 7u);
    }
    cr_assert_eq(srv_tls_new(snap, &tls, err, sizeof err), 0, "%s", err);
    pair *p = pair_new(tls);
    cr_assert_eq(srv_tls_conn_recv(p->server, garbage, sizeof garbage), -1);
    cr_assert(!srv_tls_conn_established(p->server));
    pair_free(p);
    srv_tls_free(tls);
    pol_snapshot_release(snap);
    cr_assert_eq(ERR_peek_error(), 0, "the thread's OpenSSL error queue is left empty");
}
