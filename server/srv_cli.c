#include "srv_cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "authz_arena.h"
#include "authz_cidr.h"
#include "authz_reason.h"
#include "pol_config.h"
#include "pol_decide.h"
#include "srv_keyfetch.h"
#include "srv_tls.h"

#ifndef TOKENGATE_VERSION
#error "TOKENGATE_VERSION must be defined by the build"
#endif

/* A token read from stdin: the largest max_token_bytes plus room for
 * surrounding whitespace. */
#define STDIN_TOKEN_MAX (1048576u + 4096u)
#define CONFIG_ERR_MAX 8192u
#define EXPLAIN_ARENA_LIMIT (4u * 1024u * 1024u)

static const char usage_text[] =
    "usage: tokengate <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve -c FILE       run the ext_authz gRPC server\n"
    "  check -c FILE [--strict] [--json] [--fetch]\n"
    "                      validate a config file and print a summary\n"
    "  explain -c FILE [--cluster NAME] [--host H] [--source IP] [--method M]\n"
    "          [--path P] [--peer SPIFFE_ID] [--now EPOCH] [--json] [--no-fetch]\n"
    "          TOKEN|-\n"
    "                      decide one request and report every check\n"
    "                      ('-' reads the token from stdin)\n"
    "\n"
    "  --help, -h          this text (also after any command)\n"
    "  --version, -V       print the version\n"
    "\n"
    "exit codes: 0 ok/allowed, 1 denied (explain) or a failed fetch (check --fetch),\n"
    "            2 usage or config error\n";

static const char check_usage[] =
    "usage: tokengate check -c FILE [--strict] [--json] [--fetch]\n"
    "  --strict         warnings are fatal (exit 2)\n"
    "  --json           print what was loaded as one JSON document (clusters, keys, rules, warnings)\n"
    "  --fetch          also fetch the keys of every jwks_uri or discovery source once (network)\n"
    "exit codes: 0 valid (warnings go to stderr), 1 a fetch failed or gave no key (--fetch),\n"
    "            2 usage or config error, or warnings with --strict\n";

static const char explain_usage[] =
    "usage: tokengate explain -c FILE [--cluster NAME] [--host H] [--source IP]\n"
    "                         [--method M] [--path P] [--peer SPIFFE_ID] [--now EPOCH] [--json]\n"
    "                         [--no-fetch] TOKEN|-\n"
    "  --cluster NAME   routing hint, as Envoy's context_extensions[\"cluster\"]\n"
    "  --host H         :authority of the request (used when --cluster is absent)\n"
    "  --source IP      client address\n"
    "  --method M       HTTP method (default GET)\n"
    "  --path P         request path (default /)\n"
    "  --peer SPIFFE_ID the caller's mesh identity, as Envoy's source.principal (default: none)\n"
    "  --now EPOCH      decide at this time (default: now)\n"
    "  --json           print one JSON object instead of the text report\n"
    "  --no-fetch       decide without fetching the keys of jwks_uri or discovery sources (offline)\n"
    "exit codes: 0 allowed, 1 denied, 2 usage or config error\n";

const char *srv_cli_version(void)
{
    return TOKENGATE_VERSION;
}

void srv_cli_usage(FILE *out)
{
    fputs(usage_text, out);
}

bool srv_cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

bool srv_cli_is_version(const char *arg)
{
    return strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0;
}

/* ---- option parsing ----------------------------------------------------- */

typedef struct cli_opts {
    const char *config;
    const char *cluster;
    const char *host;
    const char *source;
    const char *method;
    const char *path;
    const char *peer;
    const char *now;
    bool json;
    bool strict;
    bool fetch;    /* check: fetch remote keys */
    bool no_fetch; /* explain: do not */
    const char *positional[2];
    size_t positional_count;
} cli_opts;

enum { PARSE_OK = 0, PARSE_EXIT_OK = 1, PARSE_USAGE = 2 };

/* The flag option |name| sets, or NULL when it is no flag of the command. */
static bool *flag_slot(cli_opts *o, const char *name, bool explain)
{
    if (strcmp(name, "--json") == 0)
        return &o->json;
    if (!explain && strcmp(name, "--strict") == 0)
        return &o->strict;
    if (!explain && strcmp(name, "--fetch") == 0)
        return &o->fetch;
    if (explain && strcmp(name, "--no-fetch") == 0)
        return &o->no_fetch;
    return NULL;
}

/* Where option |name| stores its value, or NULL when it is no option of
 * the command that takes a value. */
static const char **option_slot(cli_opts *o, const char *name, bool explain)
{
    if (strcmp(name, "-c") == 0 || strcmp(name, "--config") == 0)
        return &o->config;
    if (explain) {
        if (strcmp(name, "--cluster") == 0)
            return &o->cluster;
        if (strcmp(name, "--host") == 0)
            return &o->host;
        if (strcmp(name, "--source") == 0)
            return &o->source;
        if (strcmp(name, "--method") == 0)
            return &o->method;
        if (strcmp(name, "--path") == 0)
            return &o->path;
        if (strcmp(name, "--peer") == 0)
            return &o->peer;
        if (strcmp(name, "--now") == 0)
            return &o->now;
    }
    return NULL;
}

/* Parses |argv| (argv[0] is the subcommand). Prints help/version itself. */
static int parse_opts(int argc, char **argv, bool explain, const char *usage, cli_opts *o)
{
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (o->positional_count == sizeof o->positional / sizeof o->positional[0]) {
                fprintf(stderr, "tokengate: too many arguments\n%s", usage);
                return PARSE_USAGE;
            }
            o->positional[o->positional_count++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (srv_cli_is_help(arg)) {
            fputs(usage, stdout);
            return PARSE_EXIT_OK;
        }
        if (srv_cli_is_version(arg)) {
            printf("tokengate %s\n", srv_cli_version());
            return PARSE_EXIT_OK;
        }
        char name[64];
        const char *inline_value = NULL;
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (name_len >= sizeof name) {
            fprintf(stderr, "tokengate: unknown option %.64s\n%s", arg, usage);
            return PARSE_USAGE;
        }
        memcpy(name, arg, name_len);
        name[name_len] = '\0';
        if (eq)
            inline_value = eq + 1;
        bool *flag = flag_slot(o, name, explain);
        if (flag) {
            if (inline_value) {
                fprintf(stderr, "tokengate: %s takes no value\n%s", name, usage);
                return PARSE_USAGE;
            }
            *flag = true;
            continue;
        }
        const char **slot = option_slot(o, name, explain);
        if (!slot) {
            fprintf(stderr, "tokengate: unknown option %s\n%s", name, usage);
            return PARSE_USAGE;
        }
        if (!inline_value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tokengate: %s needs a value\n%s", name, usage);
                return PARSE_USAGE;
            }
            inline_value = argv[++i];
        }
        *slot = inline_value;
    }
    if (!o->config) {
        fprintf(stderr, "tokengate: -c FILE is required\n%s", usage);
        return PARSE_USAGE;
    }
    return PARSE_OK;
}

static pol_snapshot *load_config(const char *path)
{
    char *err = malloc(CONFIG_ERR_MAX);
    pol_snapshot *snap = NULL;
    if (!err) {
        fprintf(stderr, "tokengate: out of memory\n");
        return NULL;
    }
    if (pol_config_load(path, &snap, err, CONFIG_ERR_MAX) != 0)
        fprintf(stderr, "%s\n", err);
    free(err);
    return snap;
}

/* ---- remote keys ------------------------------------------------------------ */

#define KEYS_REFUSED "fetched, but refused: the set holds a key of another cluster or provider (keys_refused)"

/* What fetching a config's remote keys once gave (explain, check --fetch). */
typedef struct fetch_report {
    json_t *sources; /* owned: one object per remote cluster or provider, config order */
    size_t owners[SRV_KEYFETCH_MAX_OWNERS]; /* key owner index of each source */
    size_t failed;                          /* sources without keys */
    size_t keys;                            /* fetched keys put in force */
    bool out_of_memory;
} fetch_report;

static pol_snapshot *fetch_remote_keys(pol_snapshot *snap, fetch_report *r);

/* ---- explain -------------------------------------------------------------- */

typedef struct explain_trace {
    json_t *header; /* parsed again from the token's decoded JSON, owned */
    json_t *claims;
    json_t *checks;
    bool failed; /* out of memory while recording */
} explain_trace;

/* The decision path keeps only a compact DOM; explain shows the header and
 * claims as sent, so it parses their text again with jansson, off the hot
 * path. The text already passed the stricter authz_json. */
static json_t *reparse(authz_slice text)
{
    json_error_t err;
    return json_loadb(text.ptr, text.len, JSON_REJECT_DUPLICATES, &err);
}

static void on_token(void *ctx, const authz_jwt *jwt)
{
    explain_trace *t = ctx;
    t->header = reparse(jwt->header_text);
    t->claims = reparse(jwt->payload_text);
    if (!t->header || !t->claims)
        t->failed = true;
}

/* |text| as a JSON string of printable ASCII (details may hold cut-off
 * token bytes). */
static json_t *printable_string(const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        copy[i] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
    }
    copy[len] = '\0';
    json_t *s = json_stringn(copy, len);
    free(copy);
    return s;
}

static json_t *slice_or_null(authz_slice s)
{
    return s.ptr ? printable_string(s.ptr, s.len) : json_null();
}

static void on_step(void *ctx, const char *check, bool passed, const char *detail)
{
    explain_trace *t = ctx;
    json_t *step = json_pack("{s:s, s:b, s:o*}", "check", check, "passed", passed, "detail",
                             printable_string(detail, strlen(detail)));
    if (!step || json_array_append_new(t->checks, step) != 0)
        t->failed = true;
}

/* Reads the token from stdin, bounded, surrounding whitespace removed. */
static char *read_stdin_token(void)
{
    char *buf = malloc(STDIN_TOKEN_MAX + 1);
    if (!buf) {
        fprintf(stderr, "tokengate: out of memory\n");
        return NULL;
    }
    size_t len = fread(buf, 1, STDIN_TOKEN_MAX + 1, stdin);
    if (ferror(stdin) || len > STDIN_TOKEN_MAX) {
        fprintf(stderr, "tokengate: %s\n",
                ferror(stdin) ? "cannot read stdin" : "token on stdin is too long");
        free(buf);
        return NULL;
    }
    size_t start = 0;
    while (start < len && strchr(" \t\r\n", buf[start]) && buf[start] != '\0')
        start++;
    while (len > start && strchr(" \t\r\n", buf[len - 1]) && buf[len - 1] != '\0')
        len--;
    memmove(buf, buf + start, len - start);
    buf[len - start] = '\0';
    return buf;
}

/* Parses --now: decimal seconds since the epoch, 0..253402300799 (9999-12-31). */
static int parse_now(const char *text, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 0 || v > 253402300799LL)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static void print_json_block(const char *title, const json_t *value)
{
    printf("%s:\n", title);
    if (!value) {
        printf("  (not decoded)\n");
        return;
    }
    char *text = json_dumps(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    printf("%s\n", text ? text : "  (out of memory)");
    free(text);
}

static const char *or_none(const char *s)
{
    return s ? s : "(none)";
}

/* The remote keys fetched before deciding: each source with its keys (kid,
 * type, url) or why it has none; NULL |sources|: not fetched. */
static void print_remote_keys(const json_t *sources, bool any_remote)
{
    size_t i, k;
    json_t *src, *key;

    if (!any_remote)
        return;
    if (!sources) {
        printf("remote keys: not fetched (--no-fetch): jwks_uri and discovery sources hold no key\n");
        return;
    }
    printf("remote keys:\n");
    json_array_foreach(sources, i, src)
    {
        const json_t *cluster = json_object_get(src, "cluster");
        const json_t *error = json_object_get(src, "error");
        printf("  %s %s: ", cluster ? "cluster" : "identity provider",
               json_string_value(cluster ? cluster : json_object_get(src, "provider")));
        if (json_is_string(error))
            printf("FETCH FAILED: %s\n", json_string_value(error));
        else
            printf("fetched %s\n", json_string_value(json_object_get(src, "url")));
        json_array_foreach(json_object_get(src, "keys"), k, key)
        {
            const json_t *url = json_object_get(key, "url");
            printf("    kid %s %s %s\n", json_string_value(json_object_get(key, "kid")),
                   json_string_value(json_object_get(key, "type")),
                   json_is_string(url) ? json_string_value(url) : "(file)");
        }
    }
}

static void print_report(const cli_opts *o, const explain_trace *t, const pol_decision *d,
                         const json_t *sources, bool any_remote)
{
    printf("config:  %s\n", o->config);
    printf("request: cluster=%s host=%s source=%s method=%s path=%s peer=%s\n", or_none(o->cluster),
           or_none(o->host), or_none(o->source), o->method, o->path, or_none(o->peer));
    print_remote_keys(sources, any_remote);
    print_json_block("header", t->header);
    print_json_block("claims", t->claims);
    printf("checks:\n");
    size_t i;
    json_t *step;
    json_array_foreach(t->checks, i, step)
    {
        printf("  %s %-14s %s\n", json_is_true(json_object_get(step, "passed")) ? "PASS" : "FAIL",
               json_string_value(json_object_get(step, "check")),
               json_string_value(json_object_get(step, "detail")));
    }
    if (d->provider)
        printf("identity provider: %.*s user: %.*s groups: %.*s\n", (int)d->provider->name.len,
               d->provider->name.ptr, (int)d->username.len, d->username.len > 0 ? d->username.ptr : "",
               (int)d->groups.len, d->groups.len > 0 ? d->groups.ptr : "");
    if (d->rule)
        printf("rule: %.*s\n", (int)d->rule->name.len, d->rule->name.ptr);
    if (d->allowed)
        printf("subject: %.*s\n", (int)d->subject.len, d->subject.ptr);
    else if (d->verified_subject.len > 0)
        printf("verified subject (denied): %.*s\n", (int)d->verified_subject.len, d->verified_subject.ptr);
    printf("decision: %s reason: %s message: %s\n", d->allowed ? "ALLOW" : "DENY",
           authz_reason_name(d->status.reason), d->status.message);
}

/* A provider token's groups as an array; null for other tokens. */
static json_t *group_list(const pol_decision *d)
{
    if (!d->provider || !d->username.ptr)
        return json_null();
    json_t *out = json_array();
    size_t start = 0;
    for (size_t i = 0; out && d->groups.len > 0 && i <= d->groups.len; i++) {
        if (i < d->groups.len && d->groups.ptr[i] != ',')
            continue;
        if (json_array_append_new(out, printable_string(d->groups.ptr + start, i - start)) != 0) {
            json_decref(out);
            out = NULL;
        }
        start = i + 1;
    }
    return out;
}

static int print_json_report(const explain_trace *t, const pol_decision *d, json_t *sources)
{
    json_t *report = json_pack(
        "{s:b, s:s, s:o*, s:o*, s:o*, s:o*, s:o*, s:o*, s:o*, s:o*, s:o*, s:o*, s:o*, s:o*, s:O, s:O*, s:O*}",
        "allowed", d->allowed, "reason", authz_reason_name(d->status.reason), "message",
        printable_string(d->status.message, strlen(d->status.message)), "cluster",
        d->cluster ? slice_or_null(d->cluster->name) : json_null(), "issuer_cluster",
        d->issuer_cluster ? slice_or_null(d->issuer_cluster->name) : json_null(), "rule",
        d->rule ? slice_or_null(d->rule->name) : json_null(), "subject", slice_or_null(d->subject),
        "verified_subject", slice_or_null(d->verified_subject), "namespace", slice_or_null(d->namespace_name),
        "service_account", slice_or_null(d->service_account), "pod", slice_or_null(d->pod_name), "node",
        slice_or_null(d->node_name), "peer", slice_or_null(d->peer), "peer_binding",
        d->peer_result != POL_PEER_RESULT_NONE ? json_string(pol_peer_result_name(d->peer_result))
                                               : json_null(),
        "checks", t->checks, "header", t->header, "claims", t->claims);
    if (report && (json_object_set_new(report, "provider",
                                       d->provider ? slice_or_null(d->provider->name) : json_null()) != 0 ||
                   json_object_set_new(report, "username", slice_or_null(d->username)) != 0 ||
                   json_object_set_new(report, "groups", group_list(d)) != 0 ||
                   json_object_set(report, "remote_keys", sources ? sources : json_null()) != 0)) {
        json_decref(report);
        report = NULL;
    }
    if (!report) {
        fprintf(stderr, "tokengate: cannot build the JSON report\n");
        return -1;
    }
    char *text = json_dumps(report, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(report);
    if (!text) {
        fprintf(stderr, "tokengate: out of memory\n");
        return -1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

int srv_cli_explain_main(int argc, char **argv)
{
    int rc = 2;
    char *stdin_token = NULL;
    char *authorization = NULL;
    pol_snapshot *snap = NULL;
    authz_arena arena;
    explain_trace t = {NULL, NULL, NULL, false};
    fetch_report fetched = {.sources = NULL};
    bool any_remote = false;
    cli_opts o;
    memset(&o, 0, sizeof o);
    authz_arena_init(&arena, NULL, 0, EXPLAIN_ARENA_LIMIT);

    int parsed = parse_opts(argc, argv, true, explain_usage, &o);
    if (parsed != PARSE_OK) {
        rc = parsed == PARSE_EXIT_OK ? 0 : 2;
        goto cleanup;
    }
    if (o.positional_count != 1) {
        fprintf(stderr, "tokengate: explain needs exactly one TOKEN (or - for stdin)\n%s", explain_usage);
        goto cleanup;
    }
    if (!o.method)
        o.method = "GET";
    if (!o.path)
        o.path = "/";
    int64_t now = (int64_t)time(NULL);
    if (o.now && parse_now(o.now, &now) != 0) {
        fprintf(stderr, "tokengate: --now must be seconds since the epoch\n%s", explain_usage);
        goto cleanup;
    }
    const char *token = o.positional[0];
    if (strcmp(token, "-") == 0) {
        stdin_token = read_stdin_token();
        if (!stdin_token)
            goto cleanup;
        token = stdin_token;
    }
    snap = load_config(o.config);
    if (!snap)
        goto cleanup;
    for (size_t i = 0; i < pol_key_owner_count(snap); i++)
        any_remote = any_remote || pol_snapshot_key_owner(snap, i).remote;
    /* Decide on the keys `serve` would have: those of jwks_uri and
     * discovery fetched once; a failed fetch leaves them out, as it
     * leaves a starting server without them. */
    if (any_remote && !o.no_fetch) {
        pol_snapshot *with_keys = fetch_remote_keys(snap, &fetched);
        if (!with_keys)
            goto cleanup;
        pol_snapshot_release(snap);
        snap = with_keys;
    }

    /* The header exactly as Envoy would pass it; a value pasted with its
     * scheme ("Bearer eyJ...") is taken as the whole header. */
    size_t token_len = strlen(token);
    bool has_scheme = token_len > 7 && strncasecmp(token, "bearer ", 7) == 0;
    const char *prefix = has_scheme ? "" : "Bearer ";
    size_t prefix_len = strlen(prefix);
    authorization = malloc(prefix_len + token_len + 1);
    t.checks = json_array();
    if (!authorization || !t.checks) {
        fprintf(stderr, "tokengate: out of memory\n");
        goto cleanup;
    }
    memcpy(authorization, prefix, prefix_len);
    memcpy(authorization + prefix_len, token, token_len + 1);

    pol_request req = {
        .authorization = authz_slice_from_cstr(authorization),
        .cluster = authz_slice_from_cstr(o.cluster),
        .host = authz_slice_from_cstr(o.host),
        .source = authz_slice_from_cstr(o.source),
        .method = authz_slice_from_cstr(o.method),
        .path = authz_slice_from_cstr(o.path),
        .peer_principal = authz_slice_from_cstr(o.peer),
        .now = now,
    };
    pol_trace trace = {on_token, on_step, &t};
    pol_decide_ctx ctx = {.arena = &arena, .trace = &trace};
    pol_decision d;
    pol_decide(snap, &req, &ctx, &d);
    if (t.failed) {
        fprintf(stderr, "tokengate: out of memory while recording the checks\n");
        goto cleanup;
    }
    if (o.json) {
        if (print_json_report(&t, &d, fetched.sources) != 0)
            goto cleanup;
    } else {
        print_report(&o, &t, &d, fetched.sources, any_remote);
    }
    rc = d.allowed ? 0 : 1;
cleanup:
    json_decref(t.header);
    json_decref(t.claims);
    json_decref(t.checks);
    json_decref(fetched.sources);
    authz_arena_free(&arena);
    pol_snapshot_release(snap);
    free(authorization);
    free(stdin_token);
    return rc;
}

/* ---- check ---------------------------------------------------------------- */

/* A config string as JSON: the loader already required valid UTF-8. */
static json_t *config_string(authz_slice s)
{
    json_t *out = json_stringn(s.ptr ? s.ptr : "", s.len);
    return out ? out : printable_string(s.ptr ? s.ptr : "", s.len);
}

/* |items| as a JSON array of strings; null when |count| is 0 (the config
 * left the list out: no restriction). */
static json_t *string_list(const authz_slice *items, size_t count)
{
    if (count == 0)
        return json_null();
    json_t *out = json_array();
    for (size_t i = 0; out && i < count; i++) {
        if (json_array_append_new(out, config_string(items[i])) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

/* CIDRs in canonical text ("10.0.0.0/8"); null when there are none. */
static json_t *cidr_list(const authz_cidr *items, size_t count)
{
    if (count == 0)
        return json_null();
    json_t *out = json_array();
    for (size_t i = 0; out && i < count; i++) {
        char addr[64], text[80];
        snprintf(text, sizeof text, "%s/%u", authz_ip_format(&items[i].net, addr, sizeof addr),
                 (unsigned)items[i].prefix_len);
        if (json_array_append_new(out, json_string(text)) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

/* Each key's kid, type and file or URL; never key material. */
static json_t *key_list(const pol_key_owner *o)
{
    json_t *out = json_array();
    for (size_t k = 0; out && k < pol_keys_count(o->keys, o->remote_keys); k++) {
        const authz_key *key = pol_keys_at(o->keys, o->remote_keys, k);
        const pol_key_file *file = k < o->keys->count ? pol_key_owner_key_file(o, k) : NULL;
        bool fetched = k >= o->keys->count;
        /* "url" (where a fetched key came from) for fetched keys only. */
        json_t *entry =
            json_pack("{s:o, s:s, s:o, s:o*}", "kid", config_string((authz_slice){key->kid, key->kid_len}),
                      "type", authz_key_describe(key), "file", file ? config_string(file->name) : json_null(),
                      "url", fetched ? config_string(o->remote_keys->uri) : NULL);
        if (json_array_append_new(out, entry) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

/* claim_to_headers as configured (header names lower-case); null without. */
static json_t *claim_header_list(const pol_cluster *c)
{
    if (c->claim_header_count == 0)
        return json_null();
    json_t *out = json_array();
    for (size_t i = 0; out && i < c->claim_header_count; i++) {
        json_t *entry = json_pack("{s:o, s:o}", "claim", config_string(c->claim_headers[i].claim), "header",
                                  config_string(c->claim_headers[i].header));
        if (json_array_append_new(out, entry) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

/* A peer_binding: a cluster's in full (defaults filled in; null when off),
 * a rule's with the keys it sets (null when none). */
static json_t *peer_binding_json(const pol_peer_binding *b, bool rule)
{
    pol_peer_binding full = pol_peer_effective(b, NULL);
    if (!rule && full.mode != POL_PEER_MODE_SPIFFE)
        return json_null();
    if (rule && b->mode == POL_PEER_MODE_UNSET && !b->trust_domain.ptr && !b->required_set)
        return json_null();
    json_t *out = json_object();
    const pol_peer_binding *shown = rule ? b : &full;
    if (out && shown->mode != POL_PEER_MODE_UNSET)
        json_object_set_new(out, "mode", json_string(shown->mode == POL_PEER_MODE_SPIFFE ? "spiffe" : "off"));
    if (out && shown->trust_domain.ptr)
        json_object_set_new(out, "trust_domain", config_string(shown->trust_domain));
    if (out && (!rule || b->required_set))
        json_object_set_new(out, "required", json_boolean(shown->required));
    return out;
}

/* Where a cluster or provider fetches keys (never the bearer token); NULL
 * (the key is left out) without. */
static json_t *remote_source(const pol_key_owner *o)
{
    if (!o->remote)
        return NULL;
    const pol_remote_source *src = o->source;
    return json_pack("{s:o, s:b, s:o, s:I}", "jwks_uri",
                     src->discovery ? json_null() : config_string(src->jwks_uri), "discovery", src->discovery,
                     "ca_file", src->ca_file.ptr ? config_string(src->ca_file) : json_null(),
                     "refresh_seconds", (json_int_t)src->refresh_seconds);
}

/* An identity provider: issuer, audiences, clusters and keys as a cluster's. */
static json_t *provider_json(const pol_snapshot *snap, size_t index)
{
    const pol_provider *p = &snap->providers[index];
    pol_key_owner o = pol_snapshot_key_owner(snap, snap->cluster_count + index);
    json_t *clusters = json_array();
    for (size_t i = 0; clusters && i < p->cluster_count; i++) {
        if (json_array_append_new(clusters, config_string(snap->clusters[p->clusters[i]].name)) != 0) {
            json_decref(clusters);
            clusters = NULL;
        }
    }
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o*}", "name", config_string(p->name), "issuer",
                     config_string(p->issuer), "audiences", string_list(p->audiences, p->audience_count),
                     "clusters", clusters, "keys", key_list(&o), "remote_keys", remote_source(&o));
}

static json_t *cluster_json(const pol_snapshot *snap, size_t index)
{
    const pol_cluster *c = &snap->clusters[index];
    pol_key_owner o = pol_snapshot_key_owner(snap, index);
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o*}", "name", config_string(c->name),
                     "issuer", config_string(c->issuer), "audiences",
                     string_list(c->audiences, c->audience_count), "hosts",
                     string_list(c->hosts, c->host_count), "source_cidrs",
                     cidr_list(c->source_cidrs, c->source_cidr_count), "claim_to_headers",
                     claim_header_list(c), "peer_binding", peer_binding_json(&c->peer, false), "keys",
                     key_list(&o), "remote_keys", remote_source(&o));
}

/* A rule's header conditions, names lower-case, ["*"] for any value; null
 * without. */
static json_t *header_conditions(const pol_snapshot *snap, const pol_rule *r)
{
    if (r->header_count == 0)
        return json_null();
    json_t *out = json_object();
    for (size_t i = 0; out && i < r->header_count; i++) {
        const pol_header_condition *cond = &r->headers[i];
        authz_slice any = AUTHZ_SLICE_LIT("*");
        json_t *values =
            cond->value_count ? string_list(cond->values, cond->value_count) : string_list(&any, 1);
        authz_slice name = snap->condition_headers[cond->header];
        if (!values || json_object_setn_new(out, name.ptr, name.len, values) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

static json_t *rule_json(const pol_snapshot *snap, const pol_rule *r)
{
    json_t *clusters = r->cluster_count ? json_array() : json_null();
    for (size_t i = 0; clusters && i < r->cluster_count; i++) {
        if (json_array_append_new(clusters, config_string(snap->clusters[r->clusters[i]].name)) != 0) {
            json_decref(clusters);
            clusters = NULL;
        }
    }
    return json_pack(
        "{s:o, s:o, s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "name", config_string(r->name),
        "clusters", clusters, "path_prefix", r->path_prefix.len ? config_string(r->path_prefix) : json_null(),
        "ignore_case", r->ignore_case, "methods", string_list(r->methods, r->method_count), "headers",
        header_conditions(snap, r), "namespaces", string_list(r->namespaces, r->namespace_count),
        "service_accounts", string_list(r->service_accounts, r->service_account_count), "source_cidrs",
        cidr_list(r->source_cidrs, r->source_cidr_count), "peer_binding", peer_binding_json(&r->peer, true),
        "users", string_list(r->users, r->user_count), "groups", string_list(r->groups, r->group_count));
}

json_t *srv_cli_config_json(const pol_snapshot *snap)
{
    json_t *clusters = json_array(), *providers = json_array(), *rules = json_array(),
           *warnings = json_array();
    bool ok = clusters && providers && rules && warnings;
    for (size_t i = 0; ok && i < snap->cluster_count; i++)
        ok = json_array_append_new(clusters, cluster_json(snap, i)) == 0;
    for (size_t i = 0; ok && i < snap->provider_count; i++)
        ok = json_array_append_new(providers, provider_json(snap, i)) == 0;
    for (size_t i = 0; ok && i < snap->rule_count; i++)
        ok = json_array_append_new(rules, rule_json(snap, &snap->rules[i])) == 0;
    for (size_t i = 0; ok && i < snap->warning_count; i++)
        ok = json_array_append_new(warnings, config_string(snap->warnings[i])) == 0;
    if (!ok) {
        json_decref(clusters);
        json_decref(providers);
        json_decref(rules);
        json_decref(warnings);
        return NULL;
    }
    return json_pack("{s:o, s:o, s:o, s:o, s:o}", "config", config_string(snap->path), "clusters", clusters,
                     "identity_providers", providers, "rules", rules, "warnings", warnings);
}

static void on_fetched(void *ctx, const srv_keyfetch_outcome *outcome)
{
    fetch_report *r = ctx;
    json_t *src = json_pack(
        "{s:o, s:o, s:o}", outcome->provider ? "provider" : "cluster",
        config_string(authz_slice_from_cstr(outcome->name)), "url",
        outcome->uri[0] ? printable_string(outcome->uri, strlen(outcome->uri)) : json_null(), "error",
        outcome->error ? printable_string(outcome->error, strlen(outcome->error)) : json_null());
    if (!src || json_array_size(r->sources) >= SRV_KEYFETCH_MAX_OWNERS) {
        json_decref(src);
        r->out_of_memory = true;
        return;
    }
    r->owners[json_array_size(r->sources)] = outcome->owner_index;
    if (json_array_append_new(r->sources, src) != 0)
        r->out_of_memory = true;
    r->failed += outcome->error ? 1u : 0u;
}

/* |snap| with the keys of its jwks_uri and discovery sources fetched once,
 * all in parallel (srv_keyfetch_fetch_now: the server's fetcher), in force
 * as `serve` would put them: a new reference. |r| (zeroed) receives a
 * source object per remote cluster or provider ({"cluster" or "provider",
 * "url", "error", "keys" as /config shows them}); the caller releases
 * r->sources. NULL (message printed) when out of memory or the fetcher
 * cannot start. */
static pol_snapshot *fetch_remote_keys(pol_snapshot *snap, fetch_report *r)
{
    srv_keyfetch fetcher;
    pol_snapshot *out = NULL;

    memset(&fetcher, 0, sizeof fetcher); /* srv_keyfetch_free is safe on it */
    memset(r, 0, sizeof *r);
    r->sources = json_array();
    if (!r->sources || srv_keyfetch_init(&fetcher, NULL) != 0 ||
        srv_keyfetch_configure(&fetcher, snap) != 0 || srv_keyfetch_fetch_now(&fetcher, on_fetched, r) < 0 ||
        r->out_of_memory)
        goto done;
    out = srv_keyfetch_attach(&fetcher, snap);
    for (size_t i = 0; out && i < json_array_size(r->sources); i++) {
        json_t *src = json_array_get(r->sources, i);
        pol_key_owner owner = pol_snapshot_key_owner(out, r->owners[i]);
        /* Fetched but not put in force (one key, one owner): serve would
         * not use it either. */
        bool refused = json_is_null(json_object_get(src, "error")) && owner.remote_keys == NULL;
        r->failed += refused ? 1u : 0u;
        r->keys += owner.remote_keys ? owner.remote_keys->keys.count : 0u;
        if (json_object_set_new(src, "keys", key_list(&owner)) != 0 ||
            (refused && json_object_set_new(src, "error", json_string(KEYS_REFUSED)) != 0)) {
            pol_snapshot_release(out);
            out = NULL;
        }
    }
done:
    if (!out)
        fprintf(stderr, "tokengate: cannot fetch the remote keys: out of memory or no fetcher\n");
    srv_keyfetch_stop(&fetcher);
    srv_keyfetch_free(&fetcher);
    return out;
}

int srv_cli_check_main(int argc, char **argv)
{
    cli_opts o;
    memset(&o, 0, sizeof o);
    int parsed = parse_opts(argc, argv, false, check_usage, &o);
    if (parsed != PARSE_OK)
        return parsed == PARSE_EXIT_OK ? 0 : 2;
    if (o.positional_count > 0) {
        fprintf(stderr, "tokengate: unexpected argument %s\n%s", o.positional[0], check_usage);
        return 2;
    }
    pol_snapshot *snap = load_config(o.config);
    if (!snap)
        return 2;
    /* The listener's certificate, key and CA are loaded exactly as `serve` loads them. */
    if (snap->server.tls.enabled) {
        srv_tls *tls = NULL;
        char err[1024];
        if (srv_tls_new(snap, &tls, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            pol_snapshot_release(snap);
            return 2;
        }
        srv_tls_free(tls);
    }
    /* Offline unless asked: CI validates configs without network. */
    fetch_report fetched = {.sources = NULL};
    if (o.fetch) {
        pol_snapshot *with_keys = fetch_remote_keys(snap, &fetched);
        if (!with_keys) {
            json_decref(fetched.sources);
            pol_snapshot_release(snap);
            return 2;
        }
        pol_snapshot_release(snap);
        snap = with_keys;
        size_t i;
        json_t *src;
        json_array_foreach(fetched.sources, i, src)
        {
            const json_t *cluster = json_object_get(src, "cluster");
            const json_t *error = json_object_get(src, "error");
            if (json_is_string(error))
                fprintf(stderr, "tokengate: %s %s: fetch failed: %s\n",
                        cluster ? "cluster" : "identity provider",
                        json_string_value(cluster ? cluster : json_object_get(src, "provider")),
                        json_string_value(error));
        }
    }
    int rc = 0;
    if (o.json) {
        json_t *doc = srv_cli_config_json(snap);
        char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
        json_decref(doc);
        if (!text) {
            fprintf(stderr, "tokengate: out of memory while printing the config\n");
            json_decref(fetched.sources);
            pol_snapshot_release(snap);
            return 2;
        }
        printf("%s\n", text);
        free(text);
    } else {
        for (size_t i = 0; i < snap->warning_count; i++)
            fprintf(stderr, "warning: %s\n", snap->warnings[i].ptr);
    }
    size_t w = snap->warning_count;
    if (w > 0 && o.strict) {
        fprintf(stderr, "tokengate: %s: %zu warning%s, fatal with --strict\n", o.config, w,
                w == 1 ? "" : "s");
        rc = 2;
    } else if (fetched.failed > 0) {
        fprintf(stderr, "tokengate: %s: %zu of %zu remote key source%s failed\n", o.config, fetched.failed,
                json_array_size(fetched.sources), json_array_size(fetched.sources) == 1 ? "" : "s");
        rc = 1;
    } else if (!o.json) {
        printf("ok: %s: %zu cluster%s, %zu key%s, %zu rule%s", o.config, snap->cluster_count,
               snap->cluster_count == 1 ? "" : "s", snap->key_count, snap->key_count == 1 ? "" : "s",
               snap->rule_count, snap->rule_count == 1 ? "" : "s");
        if (snap->provider_count > 0)
            printf(", %zu identity provider%s", snap->provider_count, snap->provider_count == 1 ? "" : "s");
        if (o.fetch)
            printf(", %zu fetched key%s from %zu source%s", fetched.keys, fetched.keys == 1 ? "" : "s",
                   json_array_size(fetched.sources), json_array_size(fetched.sources) == 1 ? "" : "s");
        if (snap->server.tls.enabled)
            printf(snap->server.tls.client_ca_file.len > 0 ? ", mutual TLS" : ", TLS");
        if (w > 0)
            printf(", %zu warning%s", w, w == 1 ? "" : "s");
        printf("\n");
    }
    json_decref(fetched.sources);
    pol_snapshot_release(snap);
    return rc;
}
