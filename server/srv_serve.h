/* srv_serve: `tokengate serve -c FILE`.
 *
 * Loads the config, binds one SO_REUSEPORT socket per worker, prints one
 * startup line on stderr ("tokengate: listening on ADDR:PORT workers=N
 * clusters=M") and serves Envoy ext_authz v3 Check and grpc.health.v1 Check
 * over h2c until SIGTERM or SIGINT. Then: health turns NOT_SERVING, the
 * listeners close, every connection gets a GOAWAY notice and then a final
 * GOAWAY, in-flight checks finish, and whatever is left is closed after
 * SRV_DRAIN_DEADLINE_MS; the process exits 0 within 5 s. */
#ifndef SRV_SERVE_H
#define SRV_SERVE_H

/* |argv|[0] is "serve". Returns the exit code: 0 after a clean shutdown,
 * 1 when serving failed (bind, threads), 2 for a usage or config error. */
int srv_serve_main(int argc, char **argv);

#endif
