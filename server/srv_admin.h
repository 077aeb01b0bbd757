/* srv_admin: the admin HTTP/1.1 endpoint (admin_listen), on libmicrohttpd's
 * own thread, never on a worker's loop.
 *
 *   GET /metrics  Prometheus text format 0.0.4: the workers' counters summed,
 *                 the config and reload state, build info, process_* metrics
 *   GET /healthz  200 while the process runs
 *   GET /readyz   200 when the config and every cluster's keys are loaded and
 *                 the server is not draining, else 503 with the reason
 *   GET /config   JSON summary of the snapshot in force (never key material)
 * HEAD works like GET without the body; other methods get 405, other paths
 * 404. Requests are bounded: SRV_ADMIN_MAX_REQUEST_BYTES of request line and
 * headers, SRV_ADMIN_TIMEOUT_SECONDS idle, SRV_ADMIN_MAX_CONNECTIONS. */
#ifndef SRV_ADMIN_H
#define SRV_ADMIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "srv_reload.h"
#include "srv_worker.h"

#define SRV_ADMIN_MAX_REQUEST_BYTES 16384u
#define SRV_ADMIN_TIMEOUT_SECONDS 10u
#define SRV_ADMIN_MAX_CONNECTIONS 16u

struct MHD_Daemon;

typedef struct srv_admin {
    struct MHD_Daemon *daemon;
    srv_reload *reload;    /* borrowed: the snapshot in force and the reload counts */
    srv_metrics **metrics; /* owned array of borrowed per-worker metrics */
    size_t worker_count;
    atomic_bool *stopping; /* borrowed: draining */
    int64_t start_time;    /* seconds since the epoch */
} srv_admin;

/* Starts serving on |addr| with its own thread. |reload|, |workers| and
 * |stopping| must outlive srv_admin_stop. Returns 0, or -1 with |err| set
 * (then srv_admin_stop is still due). */
int srv_admin_start(srv_admin *a, const struct sockaddr *addr, srv_reload *reload, srv_worker *workers,
                    size_t worker_count, atomic_bool *stopping, char *err, size_t err_size);

/* The bound port (for "port 0"), or -1. */
int srv_admin_port(const srv_admin *a);

/* Stops the thread and closes the socket. Safe on a zeroed or failed admin. */
void srv_admin_stop(srv_admin *a);

#endif
