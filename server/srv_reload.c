#include "srv_reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pol_config.h"
#include "srv_event.h"
#include "srv_keyfetch.h"
#include "srv_tls.h"

#define RELOAD_ERR_SIZE 4096u

static json_t *slice_json(authz_slice s)
{
    return json_stringn((const char *)s.ptr, s.len);
}

static json_t *cluster_names(const pol_snapshot *snap)
{
    json_t *names = json_array();
    for (size_t i = 0; i < snap->cluster_count && names != NULL; i++) {
        json_array_append_new(names, slice_json(snap->clusters[i].name));
    }
    return names;
}

/* Replaces |dst| (owned) by a copy of |src|. Returns 0 or -1. */
static int keep_slice(authz_slice *dst, authz_slice src)
{
    char *copy = NULL;

    if (src.ptr != NULL) {
        copy = malloc(src.len + 1u);
        if (copy == NULL) {
            return -1;
        }
        memcpy(copy, src.ptr, src.len);
        copy[src.len] = '\0';
    }
    free((void *)dst->ptr);
    *dst = (authz_slice){copy, src.len};
    return 0;
}

/* Puts the startup listen address and worker count into |next| (still
 * private to this thread), so what it reports is what serves. Returns 1 when
 * |next| asked for others, 0 when not, -1 without memory. */
static int keep_fixed_settings(const pol_snapshot *cur, pol_snapshot *next)
{
    pol_server_settings *s = &next->server;
    int changed = !authz_slice_eq(s->listen, cur->server.listen) ||
                  !authz_slice_eq(s->admin_listen, cur->server.admin_listen) ||
                  !authz_slice_eq(s->http_listen, cur->server.http_listen) ||
                  s->workers != cur->server.workers || s->watch_config != cur->server.watch_config;

    if (keep_slice(&s->listen, cur->server.listen) != 0 ||
        keep_slice(&s->admin_listen, cur->server.admin_listen) != 0 ||
        keep_slice(&s->http_listen, cur->server.http_listen) != 0) {
        return -1;
    }
    s->workers = cur->server.workers;
    s->watch_config = cur->server.watch_config;
    return changed;
}

static void log_failure(srv_reload *r, const char *error)
{
    json_t *f = json_object();
    json_object_set_new(f, "result", json_string("failure"));
    json_object_set_new(f, "config", json_string(r->config_path));
    json_object_set_new(f, "error", json_string(error));
    json_object_set_new(f, "generation", json_integer((json_int_t)r->current->generation));
    srv_event_emit("config_reload", f);
}

static void log_success(const srv_reload *r, const pol_snapshot *next, bool fixed_changed)
{
    json_t *f = json_object();
    json_object_set_new(f, "result", json_string("success"));
    json_object_set_new(f, "config", json_string(r->config_path));
    json_object_set_new(f, "generation", json_integer((json_int_t)next->generation));
    json_object_set_new(f, "clusters", cluster_names(next));
    json_object_set_new(f, "keys", json_integer((json_int_t)next->key_count));
    if (fixed_changed) {
        char note[512];
        snprintf(note, sizeof(note),
                 "listen, admin_listen, http_listen, workers and watch_config cannot change on reload: kept "
                 "listen %.*s "
                 "and workers %zu (restart to change them)",
                 (int)next->server.listen.len, next->server.listen.ptr, next->server.workers);
        json_object_set_new(f, "note", json_string(note));
    }
    srv_event_emit("config_reload", f);
}

/* Hands |next| (whose reference is taken over) to every worker and makes it
 * the snapshot in force. */
static void publish(srv_reload *r, pol_snapshot *next)
{
    pol_snapshot *old;
    size_t share = (next->server.max_connections + r->worker_count - 1) / r->worker_count;

    for (size_t i = 0; i < r->worker_count; i++) {
        srv_worker_publish(&r->workers[i], next, share);
    }
    uv_mutex_lock(&r->lock);
    old = r->current;
    r->current = next;
    uv_mutex_unlock(&r->lock);
    pol_snapshot_release(old);
}

/* A cluster's fetched key set changed: the snapshot in force with the
 * fetcher's key sets becomes a new snapshot, published like a reload. */
static void on_keys_changed(uv_async_t *async)
{
    srv_reload *r = async->data;
    pol_snapshot *next = srv_keyfetch_attach(r->keyfetch, r->current);
    json_t *f;

    if (next == NULL) {
        return; /* out of memory: the next change tries again */
    }
    publish(r, next);
    f = json_object();
    json_object_set_new(f, "generation", json_integer((json_int_t)next->generation));
    json_object_set_new(f, "keys", json_integer((json_int_t)next->key_count));
    srv_event_emit("keys_update", f);
}

int srv_reload_now(srv_reload *r)
{
    pol_snapshot *next = NULL;
    pol_snapshot *loaded;
    char err[RELOAD_ERR_SIZE];
    int fixed;

    if (stat(r->config_path, &r->seen) != 0) {
        memset(&r->seen, 0, sizeof(r->seen));
    }
    if (pol_config_load(r->config_path, &next, err, sizeof(err)) != 0) {
        atomic_fetch_add(&r->failures, 1);
        log_failure(r, err);
        return -1;
    }
    fixed = keep_fixed_settings(r->current, next);
    if (fixed < 0) {
        pol_snapshot_release(next);
        atomic_fetch_add(&r->failures, 1);
        log_failure(r, "out of memory");
        return -1;
    }
    /* The listener's mode is fixed at start; its certificates are part of the
     * config: a broken one refuses the whole reload (never half-applied). */
    if (next->server.tls.enabled != (r->tls != NULL)) {
        snprintf(err, sizeof(err), "%s: tls: cannot be turned %s by a reload (restart to change it)",
                 r->config_path, r->tls != NULL ? "off" : "on");
    } else if (r->tls != NULL && srv_tls_reload(r->tls, next, err, sizeof(err)) != 0) {
        /* err says why; the current certificates keep serving */
    } else {
        err[0] = '\0';
    }
    if (err[0] != '\0') {
        pol_snapshot_release(next);
        atomic_fetch_add(&r->failures, 1);
        log_failure(r, err);
        return -1;
    }
    /* Remote clusters keep their last good keys and are fetched again. */
    loaded = next;
    next = srv_keyfetch_configure(r->keyfetch, loaded) == 0 ? srv_keyfetch_attach(r->keyfetch, loaded) : NULL;
    pol_snapshot_release(loaded);
    if (next == NULL) {
        atomic_fetch_add(&r->failures, 1);
        log_failure(r, "out of memory");
        return -1;
    }
    publish(r, next);
    atomic_store(&r->last_success_time, (int_least64_t)time(NULL));
    atomic_fetch_add(&r->successes, 1);
    log_success(r, next, fixed == 1);
    return 0;
}

/* Changes settle for this long before the file is compared and loaded. */
#define WATCH_SETTLE_MS 200u

static void on_settled(uv_timer_t *t)
{
    srv_reload *r = t->data;
    struct stat now;

    if (stat(r->config_path, &now) != 0) {
        return; /* mid-swap or gone: the next event tries again */
    }
    if (now.st_ino == r->seen.st_ino && now.st_dev == r->seen.st_dev && now.st_size == r->seen.st_size &&
        now.st_mtim.tv_sec == r->seen.st_mtim.tv_sec && now.st_mtim.tv_nsec == r->seen.st_mtim.tv_nsec) {
        return;
    }
    (void)srv_reload_now(r);
}

static void on_fs_event(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    srv_reload *r = handle->data;

    (void)filename;
    (void)events;
    (void)status;
    uv_timer_start(&r->settle, on_settled, WATCH_SETTLE_MS, 0);
}

int srv_reload_watch(srv_reload *r, uv_loop_t *loop)
{
    char dir[4096];
    const char *slash = strrchr(r->config_path, '/');
    size_t len = slash == NULL ? 1u : (size_t)(slash - r->config_path);

    if (len == 0) {
        len = 1; /* "/file" */
    }
    if (len >= sizeof(dir)) {
        return -1;
    }
    memcpy(dir, slash == NULL ? "." : r->config_path, len);
    dir[len] = '\0';
    if (stat(r->config_path, &r->seen) != 0 || uv_timer_init(loop, &r->settle) != 0) {
        return -1;
    }
    if (uv_fs_event_init(loop, &r->watch) != 0) {
        uv_close((uv_handle_t *)&r->settle, NULL);
        return -1;
    }
    r->watch.data = r;
    r->settle.data = r;
    r->watch_open = true;
    return uv_fs_event_start(&r->watch, on_fs_event, dir, 0) == 0 ? 0 : -1;
}

static void on_sighup(uv_signal_t *sig, int signum)
{
    (void)signum;
    (void)srv_reload_now(sig->data);
}

int srv_reload_init(srv_reload *r, uv_loop_t *loop, const char *config_path, pol_snapshot *snap,
                    srv_worker *workers, size_t worker_count, struct srv_keyfetch *keyfetch)
{
    memset(r, 0, sizeof(*r));
    r->config_path = config_path;
    r->keyfetch = keyfetch;
    r->workers = workers;
    r->worker_count = worker_count;
    r->current = pol_snapshot_acquire(snap);
    atomic_init(&r->successes, 0);
    atomic_init(&r->failures, 0);
    atomic_init(&r->last_success_time, (int_least64_t)time(NULL));
    if (uv_mutex_init(&r->lock) != 0) {
        return -1;
    }
    r->lock_ready = true;
    if (uv_async_init(loop, &r->keys_changed, on_keys_changed) != 0) {
        return -1;
    }
    r->keys_changed.data = r;
    r->keys_changed_open = true;
    /* It must not keep the loop alive at shutdown: the fetcher may send it
     * until it is stopped, after the loop ends (srv_reload_free closes it). */
    uv_unref((uv_handle_t *)&r->keys_changed);
    if (uv_signal_init(loop, &r->sighup) != 0) {
        return -1;
    }
    r->sighup.data = r;
    r->sighup_open = true;
    uv_signal_start(&r->sighup, on_sighup, SIGHUP);
    return 0;
}

pol_snapshot *srv_reload_acquire(srv_reload *r)
{
    pol_snapshot *snap;

    uv_mutex_lock(&r->lock);
    snap = pol_snapshot_acquire(r->current);
    uv_mutex_unlock(&r->lock);
    return snap;
}

void srv_reload_close(srv_reload *r)
{
    if (r->watch_open) {
        uv_close((uv_handle_t *)&r->watch, NULL);
        uv_close((uv_handle_t *)&r->settle, NULL);
        r->watch_open = false;
    }
    if (r->sighup_open) {
        uv_close((uv_handle_t *)&r->sighup, NULL);
        r->sighup_open = false;
    }
}

void srv_reload_free(srv_reload *r, uv_loop_t *loop)
{
    if (r->keys_changed_open) {
        uv_close((uv_handle_t *)&r->keys_changed, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        r->keys_changed_open = false;
    }
    pol_snapshot_release(r->current);
    r->current = NULL;
    if (r->lock_ready) {
        uv_mutex_destroy(&r->lock);
        r->lock_ready = false;
    }
}
