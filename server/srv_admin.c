#include "srv_admin.h"

#include <dirent.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "authz_time.h"
#include "srv_cli.h"
#include "srv_keyfetch.h"

#define TEXT_PLAIN "text/plain; charset=utf-8"
#define PROMETHEUS_TEXT "text/plain; version=0.0.4; charset=utf-8"

static enum MHD_Result send_body(struct MHD_Connection *conn, unsigned status, const char *type, char *body,
                                 size_t len)
{
    /* MHD frees |body|; for HEAD it sends the headers alone. */
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result rc;

    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    char *body = strdup(text);
    return body == NULL ? MHD_NO : send_body(conn, status, TEXT_PLAIN, body, strlen(body));
}

/* ---- /metrics ---- */

static void write_gauge(FILE *out, const char *name, const char *help, const char *type, double value)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, value);
}

static void write_config_metrics(FILE *out, const srv_admin *a, const pol_snapshot *snap)
{
    fputs("# HELP tokengate_keys Keys loaded, per cluster (or identity provider).\n"
          "# TYPE tokengate_keys gauge\n",
          out);
    for (size_t i = 0; i < pol_key_owner_count(snap); i++) {
        pol_key_owner o = pol_snapshot_key_owner(snap, i);
        fprintf(out, "tokengate_keys{%s=\"", o.provider ? "provider" : "cluster");
        for (size_t k = 0; k < o.name.len; k++) {
            char ch = o.name.ptr[k];
            if (ch == '\\' || ch == '"') {
                fputc('\\', out);
            }
            fputc(ch == '\n' ? 'n' : ch, out);
        }
        fprintf(out, "\"} %zu\n", pol_keys_count(o.keys, o.remote_keys));
    }
    if (a->reload->keyfetch != NULL) {
        srv_keyfetch_write_metrics(a->reload->keyfetch, out);
    }
    fprintf(out,
            "# HELP tokengate_config_reloads_total Config reloads, by result.\n"
            "# TYPE tokengate_config_reloads_total counter\n"
            "tokengate_config_reloads_total{result=\"success\"} %llu\n"
            "tokengate_config_reloads_total{result=\"failure\"} %llu\n",
            (unsigned long long)atomic_load(&a->reload->successes),
            (unsigned long long)atomic_load(&a->reload->failures));
    write_gauge(out, "tokengate_config_generation", "Generation of the config snapshot in force.", "gauge",
                (double)snap->generation);
    write_gauge(out, "tokengate_config_last_reload_success_timestamp_seconds",
                "When the config in force was loaded, seconds since the epoch.", "gauge",
                (double)atomic_load(&a->reload->last_success_time));
    fprintf(out,
            "# HELP tokengate_build_info The running build.\n# TYPE tokengate_build_info gauge\n"
            "tokengate_build_info{version=\"%s\"} 1\n",
            srv_cli_version());
}

static size_t count_open_fds(void)
{
    size_t n = 0;
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *e;

    if (dir == NULL) {
        return 0;
    }
    while ((e = readdir(dir)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(dir);
    return n > 0 ? n - 1u : 0; /* the directory's own fd */
}

/* The process_* families client libraries export. */
static void write_process_metrics(FILE *out, const srv_admin *a)
{
    struct rusage ru;
    struct rlimit rl;
    unsigned long long pages_virtual = 0, pages_resident = 0;
    long page = sysconf(_SC_PAGESIZE);
    FILE *statm = fopen("/proc/self/statm", "r");

    if (statm != NULL) {
        if (fscanf(statm, "%llu %llu", &pages_virtual, &pages_resident) != 2) {
            pages_virtual = pages_resident = 0;
        }
        fclose(statm);
    }
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        write_gauge(out, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                    "counter",
                    (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                        (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    }
    write_gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge",
                (double)pages_resident * (double)page);
    write_gauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge",
                (double)pages_virtual * (double)page);
    write_gauge(out, "process_open_fds", "Number of open file descriptors.", "gauge",
                (double)count_open_fds());
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        write_gauge(out, "process_max_fds", "Maximum number of open file descriptors.", "gauge",
                    (double)rl.rlim_cur);
    }
    write_gauge(out, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                "gauge", (double)a->start_time);
}

static enum MHD_Result serve_metrics(struct MHD_Connection *conn, srv_admin *a)
{
    char *body = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&body, &len);
    pol_snapshot *snap;

    if (out == NULL) {
        return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    snap = srv_reload_acquire(a->reload);
    srv_metrics_write(out, a->metrics, a->worker_count);
    write_config_metrics(out, a, snap);
    write_process_metrics(out, a);
    pol_snapshot_release(snap);
    if (fclose(out) != 0) {
        free(body);
        return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    return send_body(conn, MHD_HTTP_OK, PROMETHEUS_TEXT, body, len);
}

/* ---- /readyz, /config ---- */

static enum MHD_Result serve_readyz(struct MHD_Connection *conn, srv_admin *a)
{
    pol_snapshot *snap = srv_reload_acquire(a->reload);
    char why[512] = "";
    enum MHD_Result rc;

    if (atomic_load(a->stopping)) {
        snprintf(why, sizeof(why), "not ready: draining\n");
    }
    for (size_t i = 0; why[0] == '\0' && i < pol_key_owner_count(snap); i++) {
        pol_key_owner o = pol_snapshot_key_owner(snap, i);
        if (pol_keys_count(o.keys, o.remote_keys) == 0) {
            snprintf(why, sizeof(why), "not ready: %s %.*s has no keys\n",
                     o.provider ? "identity provider" : "cluster", (int)(o.name.len > 200 ? 200 : o.name.len),
                     o.name.ptr);
        }
    }
    pol_snapshot_release(snap);
    rc = why[0] != '\0' ? send_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, why)
                        : send_text(conn, MHD_HTTP_OK, "ready\n");
    return rc;
}

static enum MHD_Result serve_config(struct MHD_Connection *conn, srv_admin *a)
{
    pol_snapshot *snap = srv_reload_acquire(a->reload);
    json_t *doc = srv_cli_config_json(snap);
    char loaded[AUTHZ_TIME_RFC3339_SIZE];
    char *text = NULL;

    if (doc != NULL) {
        json_object_set_new(doc, "generation", json_integer((json_int_t)snap->generation));
        if (authz_time_rfc3339(atomic_load(&a->reload->last_success_time), loaded)) {
            json_object_set_new(doc, "loaded_at", json_string(loaded));
        }
        text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        json_decref(doc);
    }
    pol_snapshot_release(snap);
    if (text == NULL) {
        return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    return send_body(conn, MHD_HTTP_OK, "application/json", text, strlen(text));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    srv_admin *a = cls;

    (void)version;
    (void)upload_data;
    (void)req_cls;
    /* A body is never read: it only counts against the connection's memory limit. */
    *upload_data_size = 0;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    if (strcmp(url, "/metrics") == 0) {
        return serve_metrics(conn, a);
    }
    if (strcmp(url, "/healthz") == 0) {
        return send_text(conn, MHD_HTTP_OK, "ok\n");
    }
    if (strcmp(url, "/readyz") == 0) {
        return serve_readyz(conn, a);
    }
    if (strcmp(url, "/config") == 0) {
        return serve_config(conn, a);
    }
    return send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

int srv_admin_start(srv_admin *a, const struct sockaddr *addr, srv_reload *reload, srv_worker *workers,
                    size_t worker_count, atomic_bool *stopping, char *err, size_t err_size)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;

    memset(a, 0, sizeof(*a));
    a->reload = reload;
    a->worker_count = worker_count;
    a->stopping = stopping;
    a->start_time = (int64_t)time(NULL);
    a->metrics = calloc(worker_count, sizeof(*a->metrics));
    if (a->metrics == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < worker_count; i++) {
        a->metrics[i] = &workers[i].metrics;
    }
    if (addr->sa_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    a->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR, addr,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)SRV_ADMIN_MAX_CONNECTIONS,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SRV_ADMIN_TIMEOUT_SECONDS,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SRV_ADMIN_MAX_REQUEST_BYTES,
                                 MHD_OPTION_END);
    if (a->daemon == NULL) {
        snprintf(err, err_size, "cannot serve the admin endpoint (address in use?)");
        return -1;
    }
    return 0;
}

int srv_admin_port(const srv_admin *a)
{
    const union MHD_DaemonInfo *info =
        a->daemon != NULL ? MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    return info != NULL ? (int)info->port : -1;
}

void srv_admin_stop(srv_admin *a)
{
    if (a->daemon != NULL) {
        MHD_stop_daemon(a->daemon);
        a->daemon = NULL;
    }
    free(a->metrics);
    a->metrics = NULL;
}
