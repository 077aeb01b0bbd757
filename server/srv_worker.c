#include "srv_worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "srv_conn.h"
#include "srv_http.h"
#include "srv_keyfetch.h"

/* Between the GOAWAY notice and the final GOAWAY: long enough for streams
 * the client already sent to arrive (about one round trip). */
#define GOAWAY_NOTICE_MS 100u

static void on_connection(uv_stream_t *listener, int status)
{
    srv_worker *w = listener->data;
    if (status < 0) {
        return;
    }
    /* Accept errors (EMFILE, a peer gone before accept) only cost that connection. */
    (void)srv_conn_accept(w);
}

static void on_http_connection(uv_stream_t *listener, int status)
{
    srv_worker *w = listener->data;
    if (status < 0) {
        return;
    }
    (void)srv_http_accept(w);
}

static socklen_t addr_len(const struct sockaddr *addr)
{
    return addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

int srv_worker_probe_addr(const struct sockaddr *addr, char *err, size_t err_size)
{
    int fd = socket(addr->sa_family, SOCK_STREAM, 0);
    int one = 1;
    int rc = -1;

    if (fd < 0) {
        snprintf(err, err_size, "socket: %s", strerror(errno));
        return -1;
    }
    /* SO_REUSEADDR only: TIME_WAIT leftovers are fine, a live listener is not. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        snprintf(err, err_size, "setsockopt: %s", strerror(errno));
        goto cleanup;
    }
    if (bind(fd, addr, addr_len(addr)) != 0) {
        snprintf(err, err_size, "bind: %s", strerror(errno));
        goto cleanup;
    }
    rc = 0;
cleanup:
    close(fd);
    return rc;
}

static int open_socket(const struct sockaddr *addr, char *err, size_t err_size)
{
    int fd = socket(addr->sa_family, SOCK_STREAM, 0);
    int one = 1;

    if (fd < 0) {
        snprintf(err, err_size, "socket: %s", strerror(errno));
        return -1;
    }
    /* SO_REUSEPORT: one listening socket per worker, the kernel balances. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        snprintf(err, err_size, "setsockopt: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, addr, addr_len(addr)) != 0) {
        snprintf(err, err_size, "bind: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, 1024) != 0) {
        snprintf(err, err_size, "listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int srv_worker_init(srv_worker *w, size_t index, const struct sockaddr *addr, pol_snapshot *snap,
                    atomic_bool *stopping, size_t max_conns, char *err, size_t err_size)
{
    int fd = -1;
    int rc;

    memset(w, 0, sizeof(*w));
    w->index = index;
    w->stopping = stopping;
    w->max_conns = max_conns;
    w->snap = pol_snapshot_acquire(snap);
    atomic_init(&w->next_snap, NULL);
    atomic_init(&w->next_max_conns, max_conns);
    w->request_bytes.max = snap->server.max_buffered_bytes_per_worker;
    srv_mempool_init(&w->h2_mem);
    /* Unpacking costs a few times the wire size; the budget bounds it. */
    authz_arena_init(&w->decide_arena, NULL, SRV_DECIDE_ARENA_CHUNK,
                     8u * snap->server.max_message_bytes + 256u * 1024u);
    if (uv_loop_init(&w->loop) != 0) {
        snprintf(err, err_size, "uv_loop_init failed");
        return -1;
    }
    w->loop_ready = true;
    if (srv_metrics_init(&w->metrics) != 0 || srv_metrics_bind(&w->metrics, snap) != 0) {
        snprintf(err, err_size, "out of memory for the metrics");
        return -1;
    }
    if (snap->server.token_cache_size > 0) {
        w->cache = pol_token_cache_new(snap->server.token_cache_size);
        if (w->cache == NULL) {
            snprintf(err, err_size, "out of memory for the token cache");
            return -1;
        }
    }
    if (srv_conn_setup(w) != 0) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    fd = open_socket(addr, err, err_size);
    if (fd < 0) {
        return -1;
    }
    rc = uv_tcp_init(&w->loop, &w->listener);
    if (rc != 0) {
        snprintf(err, err_size, "uv_tcp_init: %s", uv_strerror(rc));
        close(fd);
        return -1;
    }
    w->listener_open = true;
    w->listener.data = w;
    rc = uv_tcp_open(&w->listener, fd);
    if (rc != 0) {
        snprintf(err, err_size, "uv_tcp_open: %s", uv_strerror(rc));
        close(fd);
        return -1;
    }
    rc = uv_listen((uv_stream_t *)&w->listener, 1024, on_connection);
    if (rc != 0) {
        snprintf(err, err_size, "listen: %s", uv_strerror(rc));
        return -1;
    }
    return 0;
}

static int tcp_port(const uv_tcp_t *tcp)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len) != 0) {
        return -1;
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int srv_worker_port(const srv_worker *w)
{
    return tcp_port(&w->listener);
}

int srv_worker_http_port(const srv_worker *w)
{
    return w->http_listener_open ? tcp_port(&w->http_listener) : -1;
}

int srv_worker_listen_http(srv_worker *w, const struct sockaddr *addr, char *err, size_t err_size)
{
    int fd = open_socket(addr, err, err_size);
    int rc;

    if (fd < 0) {
        return -1;
    }
    rc = uv_tcp_init(&w->loop, &w->http_listener);
    if (rc != 0) {
        snprintf(err, err_size, "uv_tcp_init: %s", uv_strerror(rc));
        close(fd);
        return -1;
    }
    w->http_listener_open = true;
    w->http_listener.data = w;
    rc = uv_tcp_open(&w->http_listener, fd);
    if (rc != 0) {
        snprintf(err, err_size, "uv_tcp_open: %s", uv_strerror(rc));
        close(fd);
        return -1;
    }
    rc = uv_listen((uv_stream_t *)&w->http_listener, 1024, on_http_connection);
    if (rc != 0) {
        snprintf(err, err_size, "listen: %s", uv_strerror(rc));
        return -1;
    }
    return 0;
}

void srv_worker_conn_closed(srv_worker *w)
{
    w->conn_count--;
    srv_counter_set(&w->metrics.connections, w->conn_count);
    if (w->draining && w->conn_count == 0 && w->timers_open) {
        uv_close((uv_handle_t *)&w->goaway_timer, NULL);
        uv_close((uv_handle_t *)&w->force_timer, NULL);
        w->timers_open = false;
    }
}

void srv_worker_record_decision(srv_worker *w, const pol_decide_ctx *ctx, authz_slice request_id,
                                const pol_request *req, const pol_decision *d, uint64_t t0_ns)
{
    srv_metrics *m = &w->metrics;
    srv_decision_kind kind = !d->allowed        ? SRV_DECISION_DENY
                             : d->shadow_denied ? SRV_DECISION_SHADOW_DENY
                                                : SRV_DECISION_ALLOW;
    uint64_t ns = uv_hrtime() - t0_ns;

    /* A kid no key holds: its clusters' remote keys are fetched again
     * (rate-limited by the fetcher); the answer does not wait for it. */
    if (d->kid_miss_issuer.len > 0 && w->keyfetch != NULL) {
        srv_keyfetch_kid_miss(w->keyfetch, w->snap, d->kid_miss_issuer);
    }
    srv_metrics_count_check(m, w->snap, d, kind, ns);
    if (ctx->cache_outcome == POL_CACHE_HIT) {
        srv_counter_add(&m->cache_hits, 1);
    } else if (ctx->cache_outcome == POL_CACHE_MISS) {
        srv_counter_add(&m->cache_misses, 1);
        srv_counter_set(&m->cache_entries, pol_token_cache_count(w->cache));
    }
    if (w->snap->server.log_decisions) {
        srv_log_decision(&w->log, request_id, req, d, ns / 1000u);
    }
}

static void on_goaway_timer(uv_timer_t *t)
{
    srv_conn_goaway_all(t->data);
}

static void on_force_timer(uv_timer_t *t)
{
    srv_conn_close_all(t->data);
    srv_http_close_all(t->data);
}

static void on_wake(uv_async_t *async)
{
    srv_worker *w = async->data;

    if (w->draining) {
        return;
    }
    w->draining = true;
    uv_close((uv_handle_t *)&w->wake, NULL);
    if (w->reload_open) {
        uv_close((uv_handle_t *)&w->reload, NULL);
        w->reload_open = false;
    }
    if (w->listener_open) {
        uv_close((uv_handle_t *)&w->listener, NULL);
        w->listener_open = false;
    }
    if (w->http_listener_open) {
        uv_close((uv_handle_t *)&w->http_listener, NULL);
        w->http_listener_open = false;
    }
    if (w->conn_count == 0) {
        return;
    }
    uv_timer_init(&w->loop, &w->goaway_timer);
    uv_timer_init(&w->loop, &w->force_timer);
    w->goaway_timer.data = w;
    w->force_timer.data = w;
    w->timers_open = true;
    srv_conn_notice_all(w);
    srv_http_drain_all(w);
    uv_timer_start(&w->goaway_timer, on_goaway_timer, GOAWAY_NOTICE_MS, 0);
    uv_timer_start(&w->force_timer, on_force_timer, SRV_DRAIN_DEADLINE_MS, 0);
}

/* Limits that follow the snapshot; a token cache of another size is rebuilt
 * empty (entries of the old snapshot would not be served anyway). */
static void apply_snapshot(srv_worker *w, pol_snapshot *next)
{
    const pol_server_settings *cfg = &next->server;

    if (cfg->token_cache_size != w->snap->server.token_cache_size) {
        pol_token_cache *cache =
            cfg->token_cache_size > 0 ? pol_token_cache_new(cfg->token_cache_size) : NULL;
        /* Out of memory: keep the old cache; its generation check still applies. */
        if (cache != NULL || cfg->token_cache_size == 0) {
            pol_token_cache_free(w->cache);
            w->cache = cache;
        }
    }
    w->request_bytes.max = cfg->max_buffered_bytes_per_worker;
    w->decide_arena.limit = 8u * cfg->max_message_bytes + 256u * 1024u;
    w->max_conns = atomic_load_explicit(&w->next_max_conns, memory_order_relaxed);
    /* Without memory for the new map, decisions count on the "" row. */
    (void)srv_metrics_bind(&w->metrics, next);
    pol_snapshot_release(w->snap);
    w->snap = next;
}

static void on_reload(uv_async_t *async)
{
    srv_worker *w = async->data;
    pol_snapshot *next = atomic_exchange_explicit(&w->next_snap, NULL, memory_order_acq_rel);

    if (next != NULL) {
        apply_snapshot(w, next);
    }
}

static void worker_main(void *arg)
{
    srv_worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

int srv_worker_start(srv_worker *w)
{
    if (uv_async_init(&w->loop, &w->wake, on_wake) != 0) {
        return -1;
    }
    w->wake.data = w;
    if (uv_async_init(&w->loop, &w->reload, on_reload) != 0) {
        uv_close((uv_handle_t *)&w->wake, NULL);
        return -1;
    }
    w->reload.data = w;
    w->reload_open = true;
    if (uv_thread_create(&w->thread, worker_main, w) != 0) {
        uv_close((uv_handle_t *)&w->wake, NULL);
        uv_close((uv_handle_t *)&w->reload, NULL);
        w->reload_open = false;
        return -1;
    }
    return 0;
}

void srv_worker_drain(srv_worker *w)
{
    uv_async_send(&w->wake);
}

void srv_worker_publish(srv_worker *w, pol_snapshot *snap, size_t max_conns)
{
    pol_snapshot *old;

    atomic_store_explicit(&w->next_max_conns, max_conns, memory_order_relaxed);
    old = atomic_exchange_explicit(&w->next_snap, pol_snapshot_acquire(snap), memory_order_acq_rel);
    pol_snapshot_release(old);
    uv_async_send(&w->reload);
}

void srv_worker_join(srv_worker *w)
{
    uv_thread_join(&w->thread);
}

void srv_worker_destroy(srv_worker *w)
{
    if (w->loop_ready) {
        if (w->listener_open) {
            uv_close((uv_handle_t *)&w->listener, NULL);
            w->listener_open = false;
        }
        if (w->http_listener_open) {
            uv_close((uv_handle_t *)&w->http_listener, NULL);
            w->http_listener_open = false;
        }
        /* Runs pending close callbacks; the thread (if any) has ended. */
        uv_run(&w->loop, UV_RUN_NOWAIT);
        uv_loop_close(&w->loop);
        w->loop_ready = false;
    }
    srv_conn_free_pool(w);
    srv_mempool_release(&w->h2_mem);
    authz_arena_free(&w->decide_arena);
    nghttp2_session_callbacks_del(w->callbacks);
    nghttp2_option_del(w->option);
    w->callbacks = NULL;
    w->option = NULL;
    pol_token_cache_free(w->cache);
    w->cache = NULL;
    srv_metrics_free(&w->metrics);
    pol_snapshot_release(w->snap);
    w->snap = NULL;
    pol_snapshot_release(atomic_exchange(&w->next_snap, NULL));
}
