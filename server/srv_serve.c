#include "srv_serve.h"

#include <netdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pol_config.h"
#include "srv_admin.h"
#include "srv_cli.h"
#include "srv_event.h"
#include "srv_keyfetch.h"
#include "srv_reload.h"
#include "srv_tls.h"
#include "srv_worker.h"

#define MAX_WORKERS 256u
#define HOST_MAX 256u

typedef struct serve_state {
    uv_loop_t *loop;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    srv_worker *workers;
    srv_tls *tls; /* the listener's TLS (srv_tls_reload swaps its certificates); NULL = h2c */
    size_t started;
    srv_reload reload;
    srv_keyfetch keyfetch;
    srv_admin admin;
    atomic_bool stopping;
} serve_state;

static void usage(FILE *out)
{
    fputs("usage: tokengate serve -c FILE\n", out);
}

/* Parses "host:port" or "[v6]:port" into |out|. Returns 0 or -1. */
static int parse_listen(authz_slice listen, struct sockaddr_storage *out, char *host, size_t host_size,
                        char *port, size_t port_size)
{
    size_t colon = listen.len;
    size_t hb = 0, he;
    struct addrinfo hints, *res = NULL;
    int rc;

    while (colon > 0 && listen.ptr[colon - 1] != ':') {
        colon--;
    }
    if (colon == 0 || colon == listen.len || listen.len - colon >= port_size) {
        return -1;
    }
    he = colon - 1;
    if (he >= 2 && listen.ptr[0] == '[' && listen.ptr[he - 1] == ']') {
        hb = 1;
        he--;
    }
    if (he <= hb || he - hb >= host_size) {
        return -1;
    }
    memcpy(host, listen.ptr + hb, he - hb);
    host[he - hb] = '\0';
    memcpy(port, listen.ptr + colon, listen.len - colon);
    port[listen.len - colon] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(*out)) {
        if (res != NULL) {
            freeaddrinfo(res);
        }
        return -1;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static void set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET6) {
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    } else {
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    }
}

static void on_signal(uv_signal_t *sig, int signum)
{
    serve_state *st = sig->data;

    (void)signum;
    atomic_store(&st->stopping, true);
    srv_reload_close(&st->reload);
    for (size_t i = 0; i < st->started; i++) {
        srv_worker_drain(&st->workers[i]);
    }
    /* Closing the handles ends the main loop; a second signal then acts as
     * the default (an impatient operator can still kill at once). */
    uv_close((uv_handle_t *)&st->sigterm, NULL);
    uv_close((uv_handle_t *)&st->sigint, NULL);
}

/* The JSON startup event: version, config, addresses, clusters and key ids. */
static void log_startup(const char *config, const pol_snapshot *snap, int port, int admin_port,
                        size_t workers)
{
    json_t *f = json_object();
    json_t *clusters = json_array();

    for (size_t i = 0; clusters != NULL && i < snap->cluster_count; i++) {
        const pol_cluster *c = &snap->clusters[i];
        json_t *kids = json_array();
        for (size_t k = 0; kids != NULL && k < c->keys.count; k++) {
            json_array_append_new(kids, json_string(c->keys.keys[k].kid));
        }
        json_array_append_new(clusters,
                              json_pack("{s:s%, s:o*}", "name", c->name.ptr, c->name.len, "key_ids", kids));
    }
    json_object_set_new(f, "version", json_string(srv_cli_version()));
    json_object_set_new(f, "config", json_string(config));
    json_object_set_new(f, "generation", json_integer((json_int_t)snap->generation));
    json_object_set_new(f, "port", json_integer(port));
    json_object_set_new(f, "admin_port", admin_port >= 0 ? json_integer(admin_port) : json_null());
    json_object_set_new(f, "workers", json_integer((json_int_t)workers));
    json_object_set_new(f, "clusters", clusters);
    srv_event_emit("startup", f);
}

/* Adds the HTTP authorization listener (http_listen) to every worker and
 * prints its line. Returns 0, or -1 after saying why on stderr. */
static int listen_http(serve_state *st, const pol_snapshot *snap, const char *config, size_t nworkers)
{
    struct sockaddr_storage addr;
    char err[512], host[HOST_MAX], port[16];
    int bound = -1;

    if (parse_listen(snap->server.http_listen, &addr, host, sizeof(host), port, sizeof(port)) != 0) {
        fprintf(stderr, "tokengate serve: %s: http_listen: cannot resolve \"%.*s\"\n", config,
                (int)snap->server.http_listen.len, snap->server.http_listen.ptr);
        return -1;
    }
    if (srv_worker_probe_addr((struct sockaddr *)&addr, err, sizeof(err)) != 0) {
        fprintf(stderr, "tokengate serve: http_listen %s:%s: %s\n", host, port, err);
        return -1;
    }
    for (size_t i = 0; i < nworkers; i++) {
        if (srv_worker_listen_http(&st->workers[i], (struct sockaddr *)&addr, err, sizeof(err)) != 0) {
            fprintf(stderr, "tokengate serve: http_listen %s:%s: %s\n", host, port, err);
            return -1;
        }
        if (bound < 0) {
            bound = srv_worker_http_port(&st->workers[i]);
            set_port(&addr, bound);
        }
    }
    fprintf(stderr, "tokengate: http listening on %s%s%s:%d style=%s\n",
            addr.ss_family == AF_INET6 ? "[" : "", host, addr.ss_family == AF_INET6 ? "]" : "", bound,
            snap->server.http_style == POL_HTTP_STYLE_FORWARDED  ? "forwarded"
            : snap->server.http_style == POL_HTTP_STYLE_ORIGINAL ? "original"
                                                                 : "envoy");
    return 0;
}

static size_t cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1u;
}

static int parse_args(int argc, char **argv, const char **config)
{
    *config = NULL;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            *config = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            *config = argv[i] + 9;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            return 1;
        } else {
            fprintf(stderr, "tokengate serve: unexpected argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (*config == NULL) {
        fputs("tokengate serve: -c FILE is required\n", stderr);
        return -1;
    }
    return 0;
}

int srv_serve_main(int argc, char **argv)
{
    const char *config = NULL;
    pol_snapshot *snap = NULL;
    serve_state st;
    struct sockaddr_storage addr, admin_addr;
    char err[2048], host[HOST_MAX], port[16];
    size_t nworkers, share;
    int rc = 2;
    int bound_port;
    struct sigaction sa;

    memset(&st, 0, sizeof(st));
    atomic_init(&st.stopping, false);
    switch (parse_args(argc, argv, &config)) {
    case 1:
        usage(stdout);
        return 0;
    case 0:
        break;
    default:
        usage(stderr);
        return 2;
    }
    if (pol_config_load(config, &snap, err, sizeof(err)) != 0) {
        fprintf(stderr, "tokengate serve: %s\n", err);
        return 2;
    }
    /* Before any thread: it initialises libcurl. */
    if (srv_keyfetch_init(&st.keyfetch, &st.reload.keys_changed) != 0 ||
        srv_keyfetch_configure(&st.keyfetch, snap) != 0) {
        fputs("tokengate serve: cannot prepare the key fetcher\n", stderr);
        goto cleanup;
    }
    if (parse_listen(snap->server.listen, &addr, host, sizeof(host), port, sizeof(port)) != 0) {
        fprintf(stderr, "tokengate serve: %s: listen: cannot resolve \"%.*s\"\n", config,
                (int)snap->server.listen.len, snap->server.listen.ptr);
        goto cleanup;
    }
    if (snap->server.tls.enabled && srv_tls_new(snap, &st.tls, err, sizeof(err)) != 0) {
        fprintf(stderr, "tokengate serve: %s\n", err);
        goto cleanup;
    }
    /* A peer that closes early must not kill the process on write. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    nworkers = snap->server.workers > 0 ? snap->server.workers : cpu_count();
    if (nworkers > MAX_WORKERS) {
        nworkers = MAX_WORKERS;
    }
    share = (snap->server.max_connections + nworkers - 1) / nworkers;
    st.workers = calloc(nworkers, sizeof(*st.workers));
    if (st.workers == NULL) {
        fputs("tokengate serve: out of memory\n", stderr);
        rc = 1;
        goto cleanup;
    }
    rc = 1;
    bound_port = -1;
    if (srv_worker_probe_addr((struct sockaddr *)&addr, err, sizeof(err)) != 0) {
        fprintf(stderr, "tokengate serve: %s:%s: %s\n", host, port, err);
        goto cleanup;
    }
    for (size_t i = 0; i < nworkers; i++) {
        if (srv_worker_init(&st.workers[i], i, (struct sockaddr *)&addr, snap, &st.stopping, share, err,
                            sizeof(err)) != 0) {
            fprintf(stderr, "tokengate serve: %s:%s: %s\n", host, port, err);
            srv_worker_destroy(&st.workers[i]);
            nworkers = i;
            goto stop;
        }
        st.workers[i].tls = st.tls;
        st.workers[i].keyfetch = &st.keyfetch;
        if (bound_port < 0) {
            /* With port 0 the first socket picks it; the others share it. */
            bound_port = srv_worker_port(&st.workers[i]);
            set_port(&addr, bound_port);
        }
    }
    if (snap->server.http_listen.len > 0 && listen_http(&st, snap, config, nworkers) != 0) {
        goto stop;
    }
    st.loop = uv_default_loop();
    if (uv_signal_init(st.loop, &st.sigterm) != 0 || uv_signal_init(st.loop, &st.sigint) != 0) {
        fputs("tokengate serve: cannot install signal handlers\n", stderr);
        goto stop;
    }
    st.sigterm.data = &st;
    st.sigint.data = &st;
    uv_signal_start(&st.sigterm, on_signal, SIGTERM);
    uv_signal_start(&st.sigint, on_signal, SIGINT);
    /* SIGHUP callbacks run in uv_run below, once every worker has started. */
    if (srv_reload_init(&st.reload, st.loop, config, snap, st.workers, nworkers, &st.keyfetch) != 0) {
        fputs("tokengate serve: cannot install the SIGHUP handler\n", stderr);
        goto stop;
    }
    st.reload.tls = st.tls;
    if (snap->server.watch_config && srv_reload_watch(&st.reload, st.loop) != 0) {
        fprintf(stderr, "tokengate serve: %s: watch_config: cannot watch the file's folder\n", config);
        on_signal(&st.sigterm, SIGTERM);
        uv_run(st.loop, UV_RUN_DEFAULT);
        goto stop;
    }
    if (srv_keyfetch_start(&st.keyfetch) != 0) {
        fputs("tokengate serve: cannot start the key fetch thread\n", stderr);
        on_signal(&st.sigterm, SIGTERM);
        uv_run(st.loop, UV_RUN_DEFAULT);
        goto stop;
    }
    for (size_t i = 0; i < nworkers; i++) {
        if (srv_worker_start(&st.workers[i]) != 0) {
            fputs("tokengate serve: cannot start a worker thread\n", stderr);
            on_signal(&st.sigterm, SIGTERM);
            uv_run(st.loop, UV_RUN_DEFAULT);
            goto stop;
        }
        st.started++;
    }
    if (snap->server.admin_listen.len > 0) {
        char admin_host[HOST_MAX], admin_port[16];
        snprintf(err, sizeof(err), "cannot resolve");
        if (parse_listen(snap->server.admin_listen, &admin_addr, admin_host, sizeof(admin_host), admin_port,
                         sizeof(admin_port)) != 0 ||
            srv_admin_start(&st.admin, (struct sockaddr *)&admin_addr, &st.reload, st.workers, nworkers,
                            &st.stopping, err, sizeof(err)) != 0) {
            fprintf(stderr, "tokengate serve: %s: admin_listen \"%.*s\": %s\n", config,
                    (int)snap->server.admin_listen.len, snap->server.admin_listen.ptr, err);
            on_signal(&st.sigterm, SIGTERM);
            uv_run(st.loop, UV_RUN_DEFAULT);
            goto stop;
        }
    }
    fprintf(stderr, "tokengate: listening on %s%s%s:%d workers=%zu clusters=%zu%s\n",
            addr.ss_family == AF_INET6 ? "[" : "", host, addr.ss_family == AF_INET6 ? "]" : "", bound_port,
            nworkers, snap->cluster_count,
            !snap->server.tls.enabled                 ? ""
            : snap->server.tls.client_ca_file.len > 0 ? " tls=mutual"
                                                      : " tls=on");
    log_startup(config, snap, bound_port, srv_admin_port(&st.admin), nworkers);
    uv_run(st.loop, UV_RUN_DEFAULT);
    rc = 0;
stop:
    for (size_t i = 0; i < st.started; i++) {
        srv_worker_drain(&st.workers[i]);
    }
    for (size_t i = 0; i < st.started; i++) {
        srv_worker_join(&st.workers[i]);
    }
    /* After the workers (their kid misses wake it) and before the reload's
     * keys_changed goes (the fetcher sends it). */
    srv_keyfetch_stop(&st.keyfetch);
    /* /readyz said "draining" until here. */
    srv_admin_stop(&st.admin);
    for (size_t i = 0; i < nworkers; i++) {
        srv_worker_destroy(&st.workers[i]);
    }
    srv_reload_free(&st.reload, st.loop);
    if (st.loop != NULL) {
        uv_loop_close(st.loop);
    }
    if (rc == 0) {
        fputs("tokengate: stopped\n", stderr);
    }
cleanup:
    srv_keyfetch_free(&st.keyfetch);
    srv_tls_free(st.tls);
    free(st.workers);
    pol_snapshot_release(snap);
    return rc;
}
