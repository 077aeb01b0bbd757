/* srv_tls: TLS under the h2c connection code (the config's "tls" object).
 *
 * OpenSSL runs over memory BIOs: srv_conn hands it the bytes libuv read and
 * gets back the plaintext for nghttp2; nghttp2's output goes through
 * SSL_write and comes back as ciphertext for the socket. Nothing here
 * blocks or touches the socket, so the handshake runs on the worker's loop
 * like any other read.
 *
 * Policy: TLS 1.2 or 1.3 (1.2 with ECDHE AEAD suites only, RFC 9113 §9.2),
 * ALPN "h2" required (a ClientHello without ALPN, or without h2 in it, is
 * refused with no_application_protocol), no renegotiation, no session
 * resumption (Envoy keeps its connections). With client_ca_file the client
 * must present a certificate that chains to it, else the handshake fails;
 * with allowed_client_sans, one of the certificate's URI or DNS SANs must
 * equal one of them (URIs byte for byte, DNS names ignoring ASCII case).
 *
 * Contexts: srv_tls holds the current SSL_CTX (with the SAN list it
 * checks), shared by every worker. Each connection takes a reference on the
 * context current at its accept and keeps it until it closes, so a reload
 * changes what new connections get and nothing else. */
#ifndef SRV_TLS_H
#define SRV_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "pol_snapshot.h"

/* Largest plaintext of one TLS record (RFC 8446 §5.1): what srv_conn packs
 * nghttp2's frames into before each srv_tls_conn_send. */
#define SRV_TLS_RECORD_BYTES (16u * 1024u)

/* Largest certificate, key or CA file read (bounded before OpenSSL reads it). */
#define SRV_TLS_FILE_MAX_BYTES (1024u * 1024u)

typedef struct srv_tls srv_tls;
typedef struct srv_tls_conn srv_tls_conn;

/* Builds the TLS context from |snap|'s "tls" settings (which must be
 * enabled): reads cert_file (a PEM chain, leaf first), key_file (must match
 * the leaf) and client_ca_file. On success returns 0 and *out (free with
 * srv_tls_free). On failure returns -1, *out is NULL and |err| holds
 * "<config file>: tls.<key>: <file>: <problem>". Thread-safe (touches no
 * shared state); used by `serve` at start and by `check`. */
int srv_tls_new(const pol_snapshot *snap, srv_tls **out, char *err, size_t err_size);

/* Reload contract (for SIGHUP / file-change reloads; call from any thread,
 * never concurrently with srv_tls_free): builds a new context from |snap|'s
 * "tls" settings exactly as srv_tls_new does and, only when that succeeds,
 * makes it the one new connections get; connections already open keep the
 * context they started with (reference-counted, freed with the last of
 * them). On failure the current context stays in use (keep last good), -1
 * is returned and |err| says why in srv_tls_new's form. TLS cannot be turned
 * on or off by a reload (the listener's mode is fixed at start): |snap|
 * without "tls" is an error. Returns 0 or -1. */
int srv_tls_reload(srv_tls *tls, const pol_snapshot *snap, char *err, size_t err_size);

/* Releases |tls| (after every worker has stopped). NULL is a no-op. */
void srv_tls_free(srv_tls *tls);

/* Where a connection's bytes go: |arg| is srv_tls_conn_new's. Returns 0, or
 * -1 to make the connection fail. */
typedef int (*srv_tls_sink)(void *arg, const uint8_t *data, size_t len);

/* A server-side TLS session for one accepted connection, on the context
 * current now. |plain_in| receives decrypted application bytes (for
 * nghttp2), |cipher_out| the bytes to write to the socket (handshake,
 * records, alerts); |peer| (copied) names the client in the refusal log
 * line. Returns NULL when out of memory. */
srv_tls_conn *srv_tls_conn_new(srv_tls *tls, const struct sockaddr *peer, srv_tls_sink plain_in,
                               srv_tls_sink cipher_out, void *arg);

/* Feeds |len| bytes read from the socket: advances the handshake and hands
 * whatever they decrypt to |plain_in| and whatever must be sent to
 * |cipher_out|, before returning. Returns 0, or -1 when the connection must
 * close: a failed handshake (one JSON line on stderr names the peer and the
 * cause; the alert, if any, went to |cipher_out|), a TLS error, or a sink's
 * failure. */
int srv_tls_conn_recv(srv_tls_conn *t, const uint8_t *data, size_t len);

/* Encrypts |len| application bytes (only once established) and hands the
 * records to |cipher_out|. Returns 0 or -1 (the connection must close). */
int srv_tls_conn_send(srv_tls_conn *t, const uint8_t *data, size_t len);

/* Makes |t| a connection of the HTTP authorization listener (before its
 * first byte): ALPN "http/1.1" is selected when offered, a ClientHello
 * without ALPN is accepted, and one offering only other protocols (h2) is
 * refused. Certificates and client certificate checks are the same. */
void srv_tls_conn_speak_http1(srv_tls_conn *t);

/* True once the handshake completed with ALPN h2 (and the client
 * certificate checks passed): application bytes may flow. */
bool srv_tls_conn_established(const srv_tls_conn *t);

/* Frees the session and drops its context reference. NULL is a no-op. */
void srv_tls_conn_free(srv_tls_conn *t);

#endif
