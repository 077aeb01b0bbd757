#include "srv_metrics.h"

#include "srv_log.h"

#include <stdlib.h>
#include <string.h>

/* Upper bounds in nanoseconds (and as Prometheus writes them). */
static const uint64_t duration_le_ns[SRV_METRICS_DURATION_BUCKETS] = {
    10000,   25000,    50000,    100000,   250000,    500000,    1000000,   2500000,
    5000000, 10000000, 25000000, 50000000, 100000000, 250000000, 500000000, 1000000000};
static const char *const duration_le[SRV_METRICS_DURATION_BUCKETS] = {
    "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025",
    "0.005", "0.01",    "0.025", "0.05",   "0.1",     "0.25",   "0.5",   "1.0"};
static const char *const decision_names[SRV_DECISION_KINDS] = {"allow", "deny", "shadow_deny"};

int srv_metrics_init(srv_metrics *m)
{
    memset(m, 0, sizeof(*m));
    m->rows = calloc(SRV_METRICS_CLUSTER_ROWS, sizeof(*m->rows));
    if (m->rows == NULL) {
        return -1;
    }
    m->rows[0].cluster = calloc(1, 1);
    if (m->rows[0].cluster == NULL) {
        return -1;
    }
    atomic_init(&m->row_count, 1);
    return 0;
}

static size_t row_for(srv_metrics *m, authz_slice name)
{
    size_t count = atomic_load_explicit(&m->row_count, memory_order_relaxed);
    char *copy;

    for (size_t i = 1; i < count; i++) {
        if (strlen(m->rows[i].cluster) == name.len && memcmp(m->rows[i].cluster, name.ptr, name.len) == 0) {
            return i;
        }
    }
    if (count == SRV_METRICS_CLUSTER_ROWS || (copy = malloc(name.len + 1u)) == NULL) {
        return 0;
    }
    memcpy(copy, name.ptr, name.len);
    copy[name.len] = '\0';
    m->rows[count].cluster = copy;
    /* Release: a scrape that sees the count sees the name. */
    atomic_store_explicit(&m->row_count, count + 1u, memory_order_release);
    return count;
}

int srv_metrics_bind(srv_metrics *m, const pol_snapshot *snap)
{
    size_t *map = calloc(snap->cluster_count + 1u, sizeof(*map));

    if (map == NULL) {
        free(m->row_of_cluster);
        m->row_of_cluster = NULL;
        return -1;
    }
    for (size_t i = 0; i < snap->cluster_count; i++) {
        map[i] = row_for(m, snap->clusters[i].name);
    }
    free(m->row_of_cluster);
    m->row_of_cluster = map;
    return 0;
}

void srv_metrics_count_check(srv_metrics *m, const pol_snapshot *snap, const pol_decision *d,
                             srv_decision_kind kind, uint64_t duration_ns)
{
    size_t row = 0;
    size_t bucket = 0;
    authz_reason reason = srv_log_decision_reason(d);

    if (d->cluster != NULL && m->row_of_cluster != NULL) {
        row = m->row_of_cluster[pol_snapshot_cluster_index(snap, d->cluster)];
    }
    if (reason >= AUTHZ_REASON_COUNT) {
        reason = AUTHZ_REASON_INTERNAL_ERROR;
    }
    srv_counter_add(&m->rows[row].decisions[kind][reason], 1);
    if (d->peer_result != POL_PEER_RESULT_NONE && d->peer_result < POL_PEER_RESULT_COUNT) {
        srv_counter_add(&m->rows[row].peer_binding[d->peer_result], 1);
    }
    while (bucket < SRV_METRICS_DURATION_BUCKETS && duration_ns > duration_le_ns[bucket]) {
        bucket++;
    }
    srv_counter_add(&m->duration_buckets[bucket], 1);
    srv_counter_add(&m->duration_sum_ns, duration_ns);
}

/* Label values as the text format wants them: \\, \" and \n escaped. */
static void put_label(FILE *out, const char *value)
{
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"') {
            fputc('\\', out);
            fputc(*p, out);
        } else if (*p == '\n') {
            fputs("\\n", out);
        } else {
            fputc(*p, out);
        }
    }
}

static uint64_t sum(srv_metrics *const *workers, size_t count, size_t offset)
{
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        total += srv_counter_get((const srv_counter *)((const char *)workers[i] + offset));
    }
    return total;
}

/* True when a worker before |w| has a row named |cluster|: its series were
 * written with that worker's. */
static bool named_before(srv_metrics *const *workers, size_t w, const char *cluster)
{
    for (size_t v = 0; v < w; v++) {
        size_t rows = atomic_load_explicit(&workers[v]->row_count, memory_order_acquire);
        for (size_t k = 0; k < rows; k++) {
            if (strcmp(workers[v]->rows[k].cluster, cluster) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* The counter at |offset| within every row named |cluster|, summed over
 * workers |first|..|count| - 1 (rows are per worker: the same cluster may
 * sit on different rows). */
static uint64_t sum_rows(srv_metrics *const *workers, size_t first, size_t count, const char *cluster,
                         size_t offset)
{
    uint64_t n = 0;
    for (size_t v = first; v < count; v++) {
        size_t rows = atomic_load_explicit(&workers[v]->row_count, memory_order_acquire);
        for (size_t k = 0; k < rows; k++) {
            if (strcmp(workers[v]->rows[k].cluster, cluster) == 0) {
                n += srv_counter_get((const srv_counter *)((const char *)&workers[v]->rows[k] + offset));
            }
        }
    }
    return n;
}

/* Writes the series of one cluster (rows named |cluster| of workers |first|
 * on; earlier workers have no row of that name). */
typedef void (*cluster_series)(FILE *out, srv_metrics *const *workers, size_t first, size_t count,
                               const char *cluster);

/* Calls |series| once per distinct cluster name over all workers' rows. */
static void for_each_cluster(FILE *out, srv_metrics *const *workers, size_t count, cluster_series series)
{
    for (size_t w = 0; w < count; w++) {
        size_t rows = atomic_load_explicit(&workers[w]->row_count, memory_order_acquire);
        for (size_t r = 0; r < rows; r++) {
            const char *cluster = workers[w]->rows[r].cluster;
            if (!named_before(workers, w, cluster)) {
                series(out, workers, w, count, cluster);
            }
        }
    }
}

static void decision_series(FILE *out, srv_metrics *const *workers, size_t first, size_t count,
                            const char *cluster)
{
    for (size_t kind = 0; kind < SRV_DECISION_KINDS; kind++) {
        for (size_t reason = 0; reason < AUTHZ_REASON_COUNT; reason++) {
            uint64_t n = sum_rows(workers, first, count, cluster,
                                  offsetof(srv_metrics_row, decisions) +
                                      (kind * AUTHZ_REASON_COUNT + reason) * sizeof(srv_counter));
            if (n == 0) {
                continue;
            }
            fputs("tokengate_decisions_total{cluster=\"", out);
            put_label(out, cluster);
            fprintf(out, "\",decision=\"%s\",reason=\"%s\"} %llu\n", decision_names[kind],
                    authz_reason_name((authz_reason)reason), (unsigned long long)n);
        }
    }
}

static void peer_binding_series(FILE *out, srv_metrics *const *workers, size_t first, size_t count,
                                const char *cluster)
{
    for (size_t result = POL_PEER_RESULT_BOUND; result < POL_PEER_RESULT_COUNT; result++) {
        uint64_t n = sum_rows(workers, first, count, cluster,
                              offsetof(srv_metrics_row, peer_binding) + result * sizeof(srv_counter));
        if (n == 0) {
            continue;
        }
        fputs("tokengate_peer_binding_total{cluster=\"", out);
        put_label(out, cluster);
        fprintf(out, "\",result=\"%s\"} %llu\n", pol_peer_result_name((pol_peer_result)result),
                (unsigned long long)n);
    }
}

static void write_duration(FILE *out, srv_metrics *const *workers, size_t count)
{
    uint64_t cumulative = 0;

    fputs("# HELP tokengate_check_duration_seconds Time to decide a Check.\n"
          "# TYPE tokengate_check_duration_seconds histogram\n",
          out);
    for (size_t b = 0; b <= SRV_METRICS_DURATION_BUCKETS; b++) {
        cumulative += sum(workers, count, offsetof(srv_metrics, duration_buckets) + b * sizeof(srv_counter));
        fprintf(out, "tokengate_check_duration_seconds_bucket{le=\"%s\"} %llu\n",
                b < SRV_METRICS_DURATION_BUCKETS ? duration_le[b] : "+Inf", (unsigned long long)cumulative);
    }
    fprintf(out, "tokengate_check_duration_seconds_sum %.9f\n",
            (double)sum(workers, count, offsetof(srv_metrics, duration_sum_ns)) / 1e9);
    fprintf(out, "tokengate_check_duration_seconds_count %llu\n", (unsigned long long)cumulative);
}

static void write_one(FILE *out, const char *name, const char *type, const char *help, uint64_t value)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
            (unsigned long long)value);
}

void srv_metrics_write(FILE *out, srv_metrics *const *workers, size_t count)
{
    fputs("# HELP tokengate_decisions_total Checks decided, by target cluster, decision and reason.\n"
          "# TYPE tokengate_decisions_total counter\n",
          out);
    for_each_cluster(out, workers, count, decision_series);
    fputs("# HELP tokengate_peer_binding_total Peer binding checks, by target cluster and result.\n"
          "# TYPE tokengate_peer_binding_total counter\n",
          out);
    for_each_cluster(out, workers, count, peer_binding_series);
    write_duration(out, workers, count);
    write_one(out, "tokengate_token_cache_hits_total", "counter", "Token cache lookups that found the token.",
              sum(workers, count, offsetof(srv_metrics, cache_hits)));
    write_one(out, "tokengate_token_cache_misses_total", "counter",
              "Token cache lookups that did not find the token.",
              sum(workers, count, offsetof(srv_metrics, cache_misses)));
    write_one(out, "tokengate_token_cache_entries", "gauge", "Verified tokens held, over all workers.",
              sum(workers, count, offsetof(srv_metrics, cache_entries)));
    write_one(out, "tokengate_connections", "gauge", "Open client connections.",
              sum(workers, count, offsetof(srv_metrics, connections)));
    write_one(out, "tokengate_streams_in_flight", "gauge", "HTTP/2 streams open.",
              sum(workers, count, offsetof(srv_metrics, streams)));
    fputs(
        "# HELP tokengate_grpc_errors_total Calls answered with a gRPC error status instead of a decision.\n"
        "# TYPE tokengate_grpc_errors_total counter\n",
        out);
    for (size_t code = 1; code < SRV_METRICS_GRPC_CODES; code++) {
        uint64_t n = sum(workers, count, offsetof(srv_metrics, grpc_errors) + code * sizeof(srv_counter));
        if (n > 0) {
            fprintf(out, "tokengate_grpc_errors_total{code=\"%zu\"} %llu\n", code, (unsigned long long)n);
        }
    }
}

void srv_metrics_free(srv_metrics *m)
{
    for (size_t i = 0; m->rows != NULL && i < SRV_METRICS_CLUSTER_ROWS; i++) {
        free(m->rows[i].cluster);
    }
    free(m->rows);
    free(m->row_of_cluster);
    m->rows = NULL;
    m->row_of_cluster = NULL;
}
