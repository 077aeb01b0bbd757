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
static const int http_error_statuses[SRV_METRICS_HTTP_ERRORS] = {400, 408, 413, 414, 431};

static int rows_init(srv_metrics_rows *t, size_t capacity)
{
    t->rows = calloc(capacity, sizeof(*t->rows));
    if (t->rows == NULL) {
        return -1;
    }
    t->capacity = capacity;
    t->rows[0].name = calloc(1, 1);
    if (t->rows[0].name == NULL) {
        return -1;
    }
    atomic_init(&t->count, 1);
    return 0;
}

int srv_metrics_init(srv_metrics *m)
{
    memset(m, 0, sizeof(*m));
    if (rows_init(&m->clusters, SRV_METRICS_CLUSTER_ROWS) != 0 ||
        rows_init(&m->providers, SRV_METRICS_PROVIDER_ROWS) != 0) {
        return -1;
    }
    return 0;
}

static size_t row_for(srv_metrics_rows *t, authz_slice name)
{
    size_t count = atomic_load_explicit(&t->count, memory_order_relaxed);
    char *copy;

    for (size_t i = 1; i < count; i++) {
        if (strlen(t->rows[i].name) == name.len && memcmp(t->rows[i].name, name.ptr, name.len) == 0) {
            return i;
        }
    }
    if (count == t->capacity || (copy = malloc(name.len + 1u)) == NULL) {
        return 0;
    }
    memcpy(copy, name.ptr, name.len);
    copy[name.len] = '\0';
    t->rows[count].name = copy;
    /* Release: a scrape that sees the count sees the name. */
    atomic_store_explicit(&t->count, count + 1u, memory_order_release);
    return count;
}

/* A fresh index -> row map of |n| entries for |t| (row 0 each), or NULL
 * without memory. */
static size_t *rows_remap(srv_metrics_rows *t, size_t n)
{
    free(t->row_of);
    t->row_of = calloc(n + 1u, sizeof(*t->row_of));
    return t->row_of;
}

int srv_metrics_bind(srv_metrics *m, const pol_snapshot *snap)
{
    size_t *clusters = rows_remap(&m->clusters, snap->cluster_count);
    size_t *providers = rows_remap(&m->providers, snap->provider_count);

    for (size_t i = 0; clusters != NULL && i < snap->cluster_count; i++) {
        clusters[i] = row_for(&m->clusters, snap->clusters[i].name);
    }
    for (size_t i = 0; providers != NULL && i < snap->provider_count; i++) {
        providers[i] = row_for(&m->providers, snap->providers[i].name);
    }
    return clusters != NULL && providers != NULL ? 0 : -1;
}

void srv_metrics_count_check(srv_metrics *m, const pol_snapshot *snap, const pol_decision *d,
                             srv_decision_kind kind, uint64_t duration_ns)
{
    size_t row = 0;
    size_t bucket = 0;
    authz_reason reason = srv_log_decision_reason(d);

    if (d->cluster != NULL && m->clusters.row_of != NULL) {
        row = m->clusters.row_of[pol_snapshot_cluster_index(snap, d->cluster)];
    }
    if (reason >= AUTHZ_REASON_COUNT) {
        reason = AUTHZ_REASON_INTERNAL_ERROR;
    }
    srv_counter_add(&m->clusters.rows[row].decisions[kind][reason], 1);
    if (d->peer_result != POL_PEER_RESULT_NONE && d->peer_result < POL_PEER_RESULT_COUNT) {
        srv_counter_add(&m->clusters.rows[row].peer_binding[d->peer_result], 1);
    }
    if (d->provider != NULL && m->providers.row_of != NULL) {
        size_t provider_row = m->providers.row_of[pol_snapshot_provider_index(snap, d->provider)];
        if (provider_row != 0) {
            srv_counter_add(&m->providers.rows[provider_row].decisions[kind][reason], 1);
        }
    }
    while (bucket < SRV_METRICS_DURATION_BUCKETS && duration_ns > duration_le_ns[bucket]) {
        bucket++;
    }
    srv_counter_add(&m->duration_buckets[bucket], 1);
    srv_counter_add(&m->duration_sum_ns, duration_ns);
}

void srv_metrics_count_http_error(srv_metrics *m, int status)
{
    for (size_t i = 0; i < SRV_METRICS_HTTP_ERRORS; i++) {
        if (http_error_statuses[i] == status) {
            srv_counter_add(&m->http_errors[i], 1);
            return;
        }
    }
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

/* The rows at |table| (offsetof a srv_metrics_rows) of worker |w|. */
static const srv_metrics_rows *rows_of(srv_metrics *const *workers, size_t w, size_t table)
{
    return (const srv_metrics_rows *)((const char *)workers[w] + table);
}

/* True when a worker before |w| has a row named |name| in |table|: its
 * series were written with that worker's. */
static bool named_before(srv_metrics *const *workers, size_t w, size_t table, const char *name)
{
    for (size_t v = 0; v < w; v++) {
        const srv_metrics_rows *t = rows_of(workers, v, table);
        size_t rows = atomic_load_explicit(&t->count, memory_order_acquire);
        for (size_t k = 0; k < rows; k++) {
            if (strcmp(t->rows[k].name, name) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* The counter at |offset| within every row named |name| in |table|, summed
 * over workers |first|..|count| - 1 (rows are per worker: the same name may
 * sit on different rows). */
static uint64_t sum_rows(srv_metrics *const *workers, size_t first, size_t count, size_t table,
                         const char *name, size_t offset)
{
    uint64_t n = 0;
    for (size_t v = first; v < count; v++) {
        const srv_metrics_rows *t = rows_of(workers, v, table);
        size_t rows = atomic_load_explicit(&t->count, memory_order_acquire);
        for (size_t k = 0; k < rows; k++) {
            if (strcmp(t->rows[k].name, name) == 0) {
                n += srv_counter_get((const srv_counter *)((const char *)&t->rows[k] + offset));
            }
        }
    }
    return n;
}

/* A family's label ("cluster" or "provider") and the rows it reads. */
typedef struct row_label {
    const char *family;
    const char *label;
    size_t table;
} row_label;

/* Writes the series of one name (rows named |name| of workers |first| on;
 * earlier workers have no row of that name). */
typedef void (*name_series)(FILE *out, srv_metrics *const *workers, size_t first, size_t count,
                            const row_label *label, const char *name);

/* Calls |series| once per distinct name over all workers' rows of |label|. */
static void for_each_name(FILE *out, srv_metrics *const *workers, size_t count, const row_label *label,
                          name_series series)
{
    for (size_t w = 0; w < count; w++) {
        const srv_metrics_rows *t = rows_of(workers, w, label->table);
        size_t rows = atomic_load_explicit(&t->count, memory_order_acquire);
        for (size_t r = 0; r < rows; r++) {
            const char *name = t->rows[r].name;
            if (!named_before(workers, w, label->table, name)) {
                series(out, workers, w, count, label, name);
            }
        }
    }
}

static void decision_series(FILE *out, srv_metrics *const *workers, size_t first, size_t count,
                            const row_label *label, const char *name)
{
    for (size_t kind = 0; kind < SRV_DECISION_KINDS; kind++) {
        for (size_t reason = 0; reason < AUTHZ_REASON_COUNT; reason++) {
            uint64_t n = sum_rows(workers, first, count, label->table, name,
                                  offsetof(srv_metrics_row, decisions) +
                                      (kind * AUTHZ_REASON_COUNT + reason) * sizeof(srv_counter));
            if (n == 0) {
                continue;
            }
            fprintf(out, "%s{%s=\"", label->family, label->label);
            put_label(out, name);
            fprintf(out, "\",decision=\"%s\",reason=\"%s\"} %llu\n", decision_names[kind],
                    authz_reason_name((authz_reason)reason), (unsigned long long)n);
        }
    }
}

static void peer_binding_series(FILE *out, srv_metrics *const *workers, size_t first, size_t count,
                                const row_label *label, const char *name)
{
    for (size_t result = POL_PEER_RESULT_BOUND; result < POL_PEER_RESULT_COUNT; result++) {
        uint64_t n = sum_rows(workers, first, count, label->table, name,
                              offsetof(srv_metrics_row, peer_binding) + result * sizeof(srv_counter));
        if (n == 0) {
            continue;
        }
        fprintf(out, "%s{%s=\"", label->family, label->label);
        put_label(out, name);
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

/* Writes counter family |name| with a series per nonzero counter of the
 * array at |offset|, from index |first| to |n| - 1, labelled code=|codes|[i]
 * (code=i when |codes| is NULL). */
static void write_by_code(FILE *out, const char *name, const char *help, srv_metrics *const *workers,
                          size_t count, size_t offset, const int *codes, size_t first, size_t n)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t i = first; i < n; i++) {
        uint64_t v = sum(workers, count, offset + i * sizeof(srv_counter));
        if (v > 0) {
            fprintf(out, "%s{code=\"%d\"} %llu\n", name, codes != NULL ? codes[i] : (int)i,
                    (unsigned long long)v);
        }
    }
}

void srv_metrics_write(FILE *out, srv_metrics *const *workers, size_t count)
{
    static const row_label by_cluster = {"tokengate_decisions_total", "cluster",
                                         offsetof(srv_metrics, clusters)};
    static const row_label by_provider = {"tokengate_provider_decisions_total", "provider",
                                          offsetof(srv_metrics, providers)};
    static const row_label peer_by_cluster = {"tokengate_peer_binding_total", "cluster",
                                              offsetof(srv_metrics, clusters)};

    fputs("# HELP tokengate_decisions_total Checks decided, by target cluster, decision and reason.\n"
          "# TYPE tokengate_decisions_total counter\n",
          out);
    for_each_name(out, workers, count, &by_cluster, decision_series);
    fputs(
        "# HELP tokengate_provider_decisions_total Checks of identity provider tokens decided, by provider, "
        "decision and reason.\n"
        "# TYPE tokengate_provider_decisions_total counter\n",
        out);
    for_each_name(out, workers, count, &by_provider, decision_series);
    fputs("# HELP tokengate_peer_binding_total Peer binding checks, by target cluster and result.\n"
          "# TYPE tokengate_peer_binding_total counter\n",
          out);
    for_each_name(out, workers, count, &peer_by_cluster, peer_binding_series);
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
    write_by_code(out, "tokengate_grpc_errors_total",
                  "Calls answered with a gRPC error status instead of a decision.", workers, count,
                  offsetof(srv_metrics, grpc_errors), NULL, 1, SRV_METRICS_GRPC_CODES);
    write_by_code(out, "tokengate_http_errors_total",
                  "HTTP listener requests answered with a protocol error instead of a decision.", workers,
                  count, offsetof(srv_metrics, http_errors), http_error_statuses, 0, SRV_METRICS_HTTP_ERRORS);
}

static void rows_free(srv_metrics_rows *t)
{
    for (size_t i = 0; t->rows != NULL && i < t->capacity; i++) {
        free(t->rows[i].name);
    }
    free(t->rows);
    free(t->row_of);
    t->rows = NULL;
    t->row_of = NULL;
}

void srv_metrics_free(srv_metrics *m)
{
    rows_free(&m->clusters);
    rows_free(&m->providers);
}
