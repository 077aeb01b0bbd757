/* srv_reload: SIGHUP re-reads the config file and every key file into a new
 * snapshot and hands it to every worker; a config that fails to load is
 * refused and the last good one keeps serving.
 *
 * Everything runs on the main thread's loop (never a worker's). The listen
 * address and the number of workers are fixed at startup: a reload that
 * changes them says so in its log line and keeps the old ones. Each attempt
 * logs one {"event":"config_reload","result":"success"|"failure",...} line. */
#ifndef SRV_RELOAD_H
#define SRV_RELOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>

#include "pol_snapshot.h"
#include "srv_worker.h"

typedef struct srv_reload {
    const char *config_path; /* borrowed */
    srv_worker *workers;     /* borrowed, |worker_count| started workers */
    size_t worker_count;
    struct srv_tls *tls; /* borrowed: the listener's TLS context (NULL = h2c), rebuilt with each reload */
    struct srv_keyfetch *keyfetch; /* borrowed: remote keys; follows each reload, kept across it */
    uv_async_t keys_changed;       /* the fetcher has a new key set: publish a snapshot with it */
    bool keys_changed_open;
    uv_mutex_t lock; /* guards |current| against readers on other threads */
    bool lock_ready;
    pol_snapshot *current; /* own reference: the snapshot in force (last good) */
    uv_signal_t sighup;
    bool sighup_open;
    uv_fs_event_t watch; /* watch_config: the config file's folder */
    uv_timer_t settle;   /* a burst of changes makes one reload */
    bool watch_open;
    struct stat seen; /* the config file (through symlinks) as last loaded or tried */
    atomic_uint_least64_t successes;
    atomic_uint_least64_t failures;
    atomic_int_least64_t last_success_time; /* seconds since the epoch of the last good load */
} srv_reload;

/* Takes a reference on |snap| (the startup snapshot) and listens for SIGHUP
 * on |loop|, and for key sets fetched by |keyfetch| (borrowed; it must be
 * given &r->keys_changed and be stopped before srv_reload_free). |workers|
 * must stay valid until srv_reload_close. Returns 0 or -1 (then
 * srv_reload_free alone is due). */
int srv_reload_init(srv_reload *r, uv_loop_t *loop, const char *config_path, pol_snapshot *snap,
                    srv_worker *workers, size_t worker_count, struct srv_keyfetch *keyfetch);

/* Loads the config now and, if it is good, publishes it to every worker.
 * Returns 0 when the new snapshot is in force, -1 when it was refused. Main
 * loop thread only. */
int srv_reload_now(srv_reload *r);

/* The snapshot in force, with a reference for the caller (any thread). */
pol_snapshot *srv_reload_acquire(srv_reload *r);

/* watch_config: reloads when the config file changes: watches its folder,
 * so an editor's rename and the symlink swap of a Kubernetes ConfigMap
 * volume are seen too, and reloads once the file (followed through
 * symlinks) differs in inode, size or mtime from the one last tried.
 * Returns 0 or -1. */
int srv_reload_watch(srv_reload *r, uv_loop_t *loop);

/* Stops listening for SIGHUP and file changes (before the workers drain). */
void srv_reload_close(srv_reload *r);

/* Releases the snapshot reference and closes keys_changed (after the loop
 * has ended and the fetcher has stopped; runs |loop| once for the close). */
void srv_reload_free(srv_reload *r, uv_loop_t *loop);

#endif
