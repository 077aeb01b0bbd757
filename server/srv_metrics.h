/* srv_metrics: a worker's counters, summed by the admin thread on a scrape.
 *
 * Each worker writes only its own srv_metrics, and the admin thread only
 * reads: counters are atomics loaded and stored relaxed by their single
 * writer (a plain load, add and store on the request path, no locked
 * read-modify-write), so a scrape sees a value that was true a moment ago
 * without any lock or shared cache line on the request path. */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "authz_reason.h"
#include "pol_decide.h"

/* Distinct cluster names a worker counts decisions for; row 0 is "" (no
 * cluster). Clusters beyond it are counted on row 0. */
#define SRV_METRICS_CLUSTER_ROWS 256u
/* Distinct identity provider names: a full config's, as many again for
 * names that reloads replace, and row 0 (""), never written: providers
 * beyond it are not counted. */
#define SRV_METRICS_PROVIDER_ROWS (2u * POL_CONFIG_MAX_PROVIDERS + 1u)
/* tokengate_check_duration_seconds upper bounds, 10 us to 1 s, then +Inf. */
#define SRV_METRICS_DURATION_BUCKETS 16u
/* gRPC status codes 0-16. */
#define SRV_METRICS_GRPC_CODES 17u
/* The HTTP listener's protocol error statuses: 400, 408, 413, 414, 431. */
#define SRV_METRICS_HTTP_ERRORS 5u

typedef enum srv_decision_kind {
    SRV_DECISION_ALLOW,
    SRV_DECISION_DENY,
    SRV_DECISION_SHADOW_DENY,
    SRV_DECISION_KINDS
} srv_decision_kind;

typedef atomic_uint_least64_t srv_counter;

typedef struct srv_metrics_row {
    char *name; /* cluster or provider; owned, NUL-terminated; immutable once published */
    srv_counter decisions[SRV_DECISION_KINDS][AUTHZ_REASON_COUNT];
    srv_counter peer_binding[POL_PEER_RESULT_COUNT]; /* clusters' only; by pol_peer_result */
} srv_metrics_row;

/* Rows of one label (cluster or provider), a name each, added by the writer
 * and read by a scrape. */
typedef struct srv_metrics_rows {
    srv_metrics_row *rows; /* |capacity|, own allocation */
    size_t capacity;
    atomic_size_t count; /* rows below it are published (release) */
    size_t *row_of;      /* the bound snapshot's cluster or provider index -> row; writer only */
} srv_metrics_rows;

typedef struct srv_metrics {
    char pad_front[64];         /* keeps the neighbour's hot fields off these cache lines */
    srv_metrics_rows clusters;  /* by target cluster, every Check */
    srv_metrics_rows providers; /* by identity provider, its tokens' Checks */
    srv_counter duration_buckets[SRV_METRICS_DURATION_BUCKETS + 1u]; /* not cumulative; last = +Inf */
    srv_counter duration_sum_ns;
    srv_counter cache_hits;
    srv_counter cache_misses;
    srv_counter cache_entries;
    srv_counter connections;
    srv_counter streams;
    srv_counter grpc_errors[SRV_METRICS_GRPC_CODES];
    srv_counter http_errors[SRV_METRICS_HTTP_ERRORS]; /* by srv_metrics_count_http_error's status */
    char pad_back[64];
} srv_metrics;

/* One writer: no read-modify-write needed. */
static inline void srv_counter_add(srv_counter *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

static inline void srv_counter_set(srv_counter *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t srv_counter_get(const srv_counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Prepares |m| with the "" row. Returns 0 or -1 (then srv_metrics_free). */
int srv_metrics_init(srv_metrics *m);

/* Maps the clusters and providers of |snap| to rows, adding rows for new
 * names (the writer's thread, or before it starts). Returns 0, or -1
 * without memory (then every cluster counts on row 0 and providers are not
 * counted until a bind succeeds). */
int srv_metrics_bind(srv_metrics *m, const pol_snapshot *snap);

/* Counts one decided Check: |d| decided on |snap| (the bound one) as
 * |kind|, taking |duration_ns|, on its cluster's row and, for a token of an
 * identity provider, on the provider's; and its peer binding result when
 * checked. */
void srv_metrics_count_check(srv_metrics *m, const pol_snapshot *snap, const pol_decision *d,
                             srv_decision_kind kind, uint64_t duration_ns);

/* Counts one HTTP listener request answered with the protocol error
 * |status| (400, 408, 413, 414 or 431; another status is not counted). */
void srv_metrics_count_http_error(srv_metrics *m, int status);

/* Writes the families summed over |workers| (|count| pointers) in the
 * Prometheus text format 0.0.4: decisions by cluster and by provider, peer
 * bindings, check duration, token cache, connections, streams, gRPC errors,
 * HTTP listener protocol errors. */
void srv_metrics_write(FILE *out, srv_metrics *const *workers, size_t count);

void srv_metrics_free(srv_metrics *m);

#endif
