/* srv_keyfetch: keys of clusters and identity providers ("key owners",
 * pol_key_owner) with "jwks_uri" or "discovery", fetched
 * with libcurl on one background thread with a libuv loop of its own, never
 * on a worker's loop.
 *
 * The fetcher keeps the last good key set of every remote owner. A fetch
 * that fails (network, TLS, HTTP status, an invalid or empty document) keeps
 * it, logs a {"event":"jwks_refresh","result":"failure",...} line with the
 * cause, is counted, and is retried with exponential backoff and jitter
 * (1 s doubling, capped at the refresh interval). A key set that differs
 * from the last good one is handed to the main loop (|changed|), which
 * builds a new snapshot with srv_keyfetch_attach and publishes it the way a
 * reload does. A token whose kid no key holds asks for one fetch of its
 * issuer's remote owners, at most one per owner per
 * SRV_KEYFETCH_MISS_INTERVAL_MS, without waiting for it. */
#ifndef SRV_KEYFETCH_H
#define SRV_KEYFETCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "authz_slice.h"
#include "pol_config.h"
#include "pol_snapshot.h"

/* Largest document fetched (discovery or JWKS): that of a jwks_file. */
#define SRV_KEYFETCH_MAX_BODY_BYTES (1024u * 1024u)
/* A kid miss fetches a cluster's keys at most this often. */
#define SRV_KEYFETCH_MISS_INTERVAL_MS 10000u
/* Key owners with a kid miss bit: every cluster and provider. */
#define SRV_KEYFETCH_MAX_OWNERS (POL_CONFIG_MAX_CLUSTERS + POL_CONFIG_MAX_PROVIDERS)
#define SRV_KEYFETCH_MISS_WORDS ((SRV_KEYFETCH_MAX_OWNERS + 63u) / 64u)

typedef struct srv_keyfetch_entry srv_keyfetch_entry;

typedef struct srv_keyfetch {
    uv_loop_t loop;   /* the fetch thread's own */
    uv_async_t wake;  /* kid misses, a new config, stop */
    uv_timer_t timer; /* the next fetch due */
    uv_thread_t thread;
    bool curl_ready;
    bool loop_ready;
    bool handles_open; /* wake and timer: closed by the thread at stop */
    bool thread_started;
    uv_async_t *changed; /* borrowed: on the main loop; a new key set waits to be attached */
    uv_mutex_t lock;     /* guards |entries| (fetch thread, main thread, admin thread) */
    bool lock_ready;
    srv_keyfetch_entry *entries; /* owned, one per remote owner of the config in force */
    size_t entry_count;
    atomic_bool stop;
    atomic_uint_least64_t miss[SRV_KEYFETCH_MISS_WORDS]; /* kid misses, a bit per key owner index */
} srv_keyfetch;

/* Prepares |f| (main thread, before any other thread starts: it
 * initialises libcurl). |changed| is sent whenever a cluster's key set
 * changes and must outlive srv_keyfetch_stop. Returns 0, or -1 (then
 * srv_keyfetch_free alone is due). */
int srv_keyfetch_init(srv_keyfetch *f, uv_async_t *changed);

/* Follows the remote clusters and providers of |snap| (main thread): one with the
 * same name, issuer and source as before keeps its last good keys, counters
 * and schedule settings are taken from |snap|; every remote owner is
 * fetched again at once. Returns 0, or -1 when out of memory (the previous
 * clusters stay). */
int srv_keyfetch_configure(srv_keyfetch *f, const pol_snapshot *snap);

/* |snap| with the last good key set of each of its remote owners (main
 * thread): a new snapshot with one reference for the caller, or |snap| with
 * a new reference when it has no remote owner. A set holding another
 * owner's key is left out and logged as a {"event":"keys_refused"} line.
 * NULL when out of memory. */
pol_snapshot *srv_keyfetch_attach(srv_keyfetch *f, pol_snapshot *snap);

/* Starts the fetch thread. Returns 0 or -1. */
int srv_keyfetch_start(srv_keyfetch *f);

/* A token whose iss is |issuer| had a kid no key of |snap| holds: asks
 * for the remote clusters and providers with that issuer to be fetched.
 * Any thread; costs an atomic OR, and a uv_async_send when an owner's bit
 * was not yet set. */
void srv_keyfetch_kid_miss(srv_keyfetch *f, const pol_snapshot *snap, authz_slice issuer);

/* Writes tokengate_jwks_refresh_total{cluster,result} and
 * tokengate_jwks_last_success_timestamp_seconds{cluster}, with a provider
 * label instead of cluster for a provider's keys (any thread). */
void srv_keyfetch_write_metrics(srv_keyfetch *f, FILE *out);

/* Stops the thread (an ongoing fetch is aborted) and waits for it; no
 * srv_keyfetch_kid_miss may follow. Safe on a failed or unstarted fetcher. */
void srv_keyfetch_stop(srv_keyfetch *f);

/* Threads srv_keyfetch_fetch_now fetches on, besides the caller's. */
#define SRV_KEYFETCH_NOW_THREADS 7u

/* One remote owner's fetch by srv_keyfetch_fetch_now. Every pointer is
 * borrowed, valid during the report call only. */
typedef struct srv_keyfetch_outcome {
    bool provider;      /* else a cluster */
    const char *name;   /* the cluster's or provider's */
    size_t owner_index; /* key owner index in the configured snapshot */
    const char *uri;    /* the JWKS URL fetched; "" when discovery failed before one */
    const char *error;  /* the cause, as a jwks_refresh line gives it; NULL on success */
} srv_keyfetch_outcome;

typedef void srv_keyfetch_report_fn(void *ctx, const srv_keyfetch_outcome *outcome);

/* Fetches every remote owner srv_keyfetch_configure gave |f| once, now, for
 * a command (explain, check --fetch) rather than a server: up to
 * SRV_KEYFETCH_NOW_THREADS + 1 at a time on threads of their own, each
 * bounded by its fetch_timeout_seconds, and returns when all have answered
 * or failed. The fetch thread must not be running. Results are kept as the
 * fetch thread keeps them (srv_keyfetch_attach then puts them in force) and
 * each is passed to |report| (may be NULL) in config order; nothing is
 * logged. Returns the number of failed fetches, or -1 when out of memory
 * (nothing fetched). */
int srv_keyfetch_fetch_now(srv_keyfetch *f, srv_keyfetch_report_fn *report, void *ctx);

/* Releases everything (after srv_keyfetch_stop). */
void srv_keyfetch_free(srv_keyfetch *f);

#endif
