#include "pol_decide.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_bearer.h"
#include "authz_cidr.h"
#include "authz_claims.h"
#include "authz_jws.h"
#include "authz_key.h"
#include "authz_time.h"
#include "pol_path.h"
#include "pol_provider.h"
#include "pol_rule.h"
#include "pol_target.h"
#include "pol_token_cache.h"

#define SHOWN_MAX 96 /* bytes of a token-supplied value quoted in a message */

/* Clamps a slice length for "%.*s". */
static int shown(authz_slice s)
{
    return (int)(s.len > SHOWN_MAX ? SHOWN_MAX : s.len);
}

static void trace_step(const pol_decide_ctx *ctx, const char *check, bool passed, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void trace_step(const pol_decide_ctx *ctx, const char *check, bool passed, const char *fmt, ...)
{
    if (!ctx->trace || !ctx->trace->step)
        return;
    char detail[AUTHZ_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (n < 0)
        detail[0] = '\0';
    ctx->trace->step(ctx->trace->ctx, check, passed, detail);
}

/* Reports a failed check with the status message as its detail. */
static void trace_fail(const pol_decide_ctx *ctx, const char *check, const authz_status *status)
{
    if (ctx->trace && ctx->trace->step)
        ctx->trace->step(ctx->trace->ctx, check, false, status->message);
}

static void format_claim_time(const char *name, const authz_jwt_time *t, char *buf, size_t size)
{
    char when[AUTHZ_TIME_TEXT_SIZE];
    switch (t->state) {
    case AUTHZ_JWT_TIME_VALID:
        snprintf(buf, size, "%s %s", name, authz_time_text(t->seconds, when, sizeof when));
        break;
    case AUTHZ_JWT_TIME_INVALID:
        snprintf(buf, size, "%s invalid", name);
        break;
    case AUTHZ_JWT_TIME_ABSENT:
    default:
        snprintf(buf, size, "%s absent", name);
        break;
    }
}

/* Step 4: is any cluster configured for the (unverified) iss? It only
 * narrows which keys are tried. */
static bool issuer_candidate(const pol_cluster *c, const authz_jwt *jwt)
{
    return authz_slice_eq(c->issuer, jwt->iss.value);
}

static bool kid_matches(const authz_key *key, const authz_jwt *jwt)
{
    return key->kid_len == jwt->kid.value.len && memcmp(key->kid, jwt->kid.value.ptr, key->kid_len) == 0;
}

/* Step 5, kid-less tokens: how many keys of the issuer's clusters allow the
 * token's alg, i.e. how many signature checks trying them all would cost. */
static size_t kidless_candidates(const pol_snapshot *snap, const authz_jwt *jwt)
{
    size_t count = 0;
    for (size_t i = 0; i < snap->cluster_count; i++) {
        const pol_cluster *c = &snap->clusters[i];
        if (!issuer_candidate(c, jwt))
            continue;
        for (size_t k = 0; k < pol_cluster_key_count(c); k++)
            count += authz_key_allows_alg(pol_cluster_key(c, k), jwt->alg) ? 1u : 0u;
    }
    return count;
}

/* Step 5, no key with the token's kid among the issuer's clusters: says
 * whether the kid belongs to a cluster of another issuer (the token's iss
 * is then the likely mistake) or to none. */
static void unknown_kid(const pol_snapshot *snap, const authz_jwt *jwt, authz_status *status)
{
    for (size_t i = 0; jwt->kid.present && i < snap->cluster_count; i++) {
        const pol_cluster *c = &snap->clusters[i];
        if (issuer_candidate(c, jwt))
            continue;
        for (size_t k = 0; k < pol_cluster_key_count(c); k++) {
            if (!kid_matches(pol_cluster_key(c, k), jwt))
                continue;
            authz_status_set(status, AUTHZ_REASON_UNKNOWN_KEY,
                             "token iss %.*s differs from issuer %.*s of cluster %.*s, which holds kid %.*s",
                             shown(jwt->iss.value), jwt->iss.value.ptr, shown(c->issuer), c->issuer.ptr,
                             shown(c->name), c->name.ptr, shown(jwt->kid.value), jwt->kid.value.ptr);
            return;
        }
    }
    authz_status_set(status, AUTHZ_REASON_UNKNOWN_KEY, "no key with kid %.*s for issuer %.*s",
                     shown(jwt->kid.value), jwt->kid.value.ptr, shown(jwt->iss.value), jwt->iss.value.ptr);
}

/* The keys step 5 tried for one token. */
typedef struct key_search {
    size_t matched;    /* keys selected by kid (or all keys without kid) */
    size_t compatible; /* of those, keys allowing the token's alg */
    const authz_key *first_matched;
} key_search;

/* Step 5, one key: true when |key| is selected by the token's kid, allows
 * its alg and verifies its signature; counts it in |search|. */
static bool try_key(const authz_key *key, const authz_jwt *jwt, key_search *search)
{
    if (jwt->kid.present && !kid_matches(key, jwt))
        return false;
    search->matched++;
    if (!search->first_matched)
        search->first_matched = key;
    if (!authz_key_allows_alg(key, jwt->alg))
        return false;
    search->compatible++;
    return authz_jws_verify(key, jwt->alg, jwt->signing_input, jwt->signature, jwt->signature_len) == 0;
}

/* Step 5 failed with at least one key selected: the alg fits none, or no
 * signature verified. */
static void key_search_failed(const key_search *search, const authz_jwt *jwt, authz_status *status)
{
    if (search->compatible == 0)
        authz_status_set(status, AUTHZ_REASON_UNSUPPORTED_ALG, "alg %s does not match key kind %s%s",
                         authz_alg_name(jwt->alg), authz_key_describe(search->first_matched),
                         search->matched > 1 ? " (nor any other candidate key)" : "");
    else
        authz_status_set(status, AUTHZ_REASON_BAD_SIGNATURE,
                         "signature does not verify with %zu candidate key%s", search->compatible,
                         search->compatible == 1 ? "" : "s");
}

/* Step 5: tries the keys of every candidate cluster, |target| first. On
 * success returns the issuing cluster and *used the verifying key. A token
 * without kid would be tried against every key of its issuer: more than
 * max_kidless_keys of them is refused before any is tried, so one request
 * never costs more than that many signature checks. */
static const pol_cluster *find_signer(const pol_snapshot *snap, const pol_cluster *target,
                                      const authz_jwt *jwt, const authz_key **used, authz_status *status)
{
    if (!jwt->kid.present) {
        size_t candidates = kidless_candidates(snap, jwt);
        if (candidates > snap->max_kidless_keys) {
            authz_status_set(status, AUTHZ_REASON_UNKNOWN_KEY,
                             "too many candidate keys for a kid-less token: %zu %s keys of issuer %.*s, "
                             "max_kidless_keys is %zu; configure kids",
                             candidates, authz_alg_name(jwt->alg), shown(jwt->iss.value), jwt->iss.value.ptr,
                             snap->max_kidless_keys);
            return NULL;
        }
    }
    key_search search = {0, 0, NULL};
    for (size_t pass = 0; pass <= snap->cluster_count; pass++) {
        /* Pass 0 is the target; passes 1.. walk the config skipping it. */
        const pol_cluster *c = pass == 0 ? target : &snap->clusters[pass - 1];
        if ((pass > 0 && c == target) || !issuer_candidate(c, jwt))
            continue;
        for (size_t k = 0; k < pol_cluster_key_count(c); k++) {
            const authz_key *key = pol_cluster_key(c, k);
            if (try_key(key, jwt, &search)) {
                *used = key;
                return c;
            }
        }
    }
    if (search.matched == 0)
        unknown_kid(snap, jwt, status);
    else
        key_search_failed(&search, jwt, status);
    return NULL;
}

/* Step 5 for a token whose iss is identity provider |p|'s: only its keys
 * are tried, with the same kid and kid-less rules as a cluster's. Returns
 * the verifying key, or NULL with |status| set. */
static const authz_key *find_provider_key(const pol_snapshot *snap, const pol_provider *p,
                                          const authz_jwt *jwt, authz_status *status)
{
    size_t kidless = 0;
    for (size_t k = 0; !jwt->kid.present && k < pol_provider_key_count(p); k++)
        kidless += authz_key_allows_alg(pol_provider_key(p, k), jwt->alg) ? 1u : 0u;
    if (kidless > snap->max_kidless_keys) {
        authz_status_set(
            status, AUTHZ_REASON_UNKNOWN_KEY,
            "too many candidate keys for a kid-less token: %zu %s keys of identity provider %.*s, "
            "max_kidless_keys is %zu; configure kids",
            kidless, authz_alg_name(jwt->alg), shown(p->name), p->name.ptr, snap->max_kidless_keys);
        return NULL;
    }
    key_search search = {0, 0, NULL};
    for (size_t k = 0; k < pol_provider_key_count(p); k++) {
        if (try_key(pol_provider_key(p, k), jwt, &search))
            return pol_provider_key(p, k);
    }
    if (search.matched == 0)
        authz_status_set(status, AUTHZ_REASON_UNKNOWN_KEY, "no key with kid %.*s for identity provider %.*s",
                         shown(jwt->kid.value), jwt->kid.value.ptr, shown(p->name), p->name.ptr);
    else
        key_search_failed(&search, jwt, status);
    return NULL;
}

/* The limits every parse of a decision uses. */
static authz_jwt_limits parse_limits(const pol_snapshot *snap)
{
    authz_jwt_limits limits = {snap->max_token_bytes, AUTHZ_JWT_DEFAULT_MAX_DEPTH,
                               AUTHZ_JWT_DEFAULT_MAX_NODES};
    return limits;
}

/* The identity provider whose issuer is the token's, or NULL. */
static const pol_provider *provider_of(const pol_snapshot *snap, const authz_jwt *jwt)
{
    for (size_t i = 0; i < snap->provider_count; i++) {
        if (authz_slice_eq(snap->providers[i].issuer, jwt->iss.value))
            return &snap->providers[i];
    }
    return NULL;
}

/* Steps 3-5: parse |token| into |arena|, find the clusters configured for
 * its issuer and the key that verifies it. Returns the issuing cluster with
 * |jwt| parsed (it lives in |arena|) and *key set. A token of an identity
 * provider's issuer is verified by that provider's keys alone: then NULL
 * with *provider and *key set. Else NULL with |status| set. */
static const pol_cluster *parse_and_verify(const pol_snapshot *snap, const pol_cluster *target,
                                           authz_slice token, const pol_decide_ctx *ctx, authz_arena *arena,
                                           authz_jwt *jwt, const authz_key **key,
                                           const pol_provider **provider, authz_status *status)
{
    authz_jwt_limits limits = parse_limits(snap);
    if (authz_jwt_parse(token, &limits, arena, jwt, status) != 0) {
        trace_fail(ctx, "parse", status);
        return NULL;
    }
    if (ctx->trace && ctx->trace->token)
        ctx->trace->token(ctx->trace->ctx, jwt);
    trace_step(ctx, "parse", true, "alg %s, kid %.*s", authz_alg_name(jwt->alg),
               jwt->kid.present ? shown(jwt->kid.value) : 6,
               jwt->kid.present ? jwt->kid.value.ptr : "(none)");

    const pol_cluster *signer = NULL;
    if (!jwt->iss.present) {
        authz_status_set(status, AUTHZ_REASON_MISSING_CLAIM, "token has no iss claim");
        trace_fail(ctx, "issuer_known", status);
        goto cleanup;
    }
    const pol_provider *p = provider_of(snap, jwt);
    if (p) {
        trace_step(ctx, "issuer_known", true, "issuer %.*s is identity provider %.*s's",
                   shown(jwt->iss.value), jwt->iss.value.ptr, shown(p->name), p->name.ptr);
        *key = find_provider_key(snap, p, jwt, status);
        if (!*key) {
            trace_fail(ctx, "signature", status);
            goto cleanup;
        }
        *provider = p;
        trace_step(ctx, "signature", true, "verified with key kid %s (%s) of identity provider %.*s",
                   (*key)->kid, authz_key_describe(*key), shown(p->name), p->name.ptr);
        goto cleanup;
    }
    size_t candidates = 0;
    for (size_t i = 0; i < snap->cluster_count; i++)
        candidates += issuer_candidate(&snap->clusters[i], jwt) ? 1u : 0u;
    if (candidates == 0) {
        authz_status_set(status, AUTHZ_REASON_UNKNOWN_ISSUER, "issuer %.*s is not configured for any cluster",
                         shown(jwt->iss.value), jwt->iss.value.ptr);
        trace_fail(ctx, "issuer_known", status);
        goto cleanup;
    }
    trace_step(ctx, "issuer_known", true, "issuer %.*s is configured for %zu cluster%s",
               shown(jwt->iss.value), jwt->iss.value.ptr, candidates, candidates == 1 ? "" : "s");

    signer = find_signer(snap, target, jwt, key, status);
    if (!signer) {
        trace_fail(ctx, "signature", status);
        goto cleanup;
    }
    trace_step(ctx, "signature", true, "verified with key kid %s (%s) of cluster %.*s", (*key)->kid,
               authz_key_describe(*key), shown(signer->name), signer->name.ptr);
cleanup:
    return signer;
}

/* What explain's trace of the claim checks needs besides the outcome. */
typedef struct claims_trace {
    const pol_decide_ctx *ctx;
    const pol_cluster *cluster;
    const pol_snapshot *snap;
    const pol_request *req;
    const authz_jwt *jwt;
} claims_trace;

/* authz_claim_observer: one trace step per claim check, in the order
 * authz_claims_check_observed runs them. */
static void trace_claim(void *arg, authz_claim_step step, int rc, const authz_status *status)
{
    const claims_trace *t = arg;
    const pol_cluster *c = t->cluster;
    const authz_jwt *jwt = t->jwt;

    if (step == AUTHZ_CLAIM_TIME) {
        char exp[64], nbf[64], iat[64], now[AUTHZ_TIME_TEXT_SIZE];
        format_claim_time("exp", &jwt->exp, exp, sizeof exp);
        format_claim_time("nbf", &jwt->nbf, nbf, sizeof nbf);
        format_claim_time("iat", &jwt->iat, iat, sizeof iat);
        authz_time_text(t->req->now, now, sizeof now);
        trace_step(t->ctx, "expiry", rc == 0, "%s%s%s, %s, %s, now %s, skew %llds",
                   rc == 0 ? "" : status->message, rc == 0 ? "" : ": ", exp, nbf, iat, now,
                   (long long)t->snap->clock_skew);
        return;
    }
    static const char *const names[] = {[AUTHZ_CLAIM_ISSUER] = "issuer",
                                        [AUTHZ_CLAIM_AUDIENCE] = "audience",
                                        [AUTHZ_CLAIM_IDENTITY] = "identity"};
    if (rc != 0) {
        trace_fail(t->ctx, names[step], status);
        return;
    }
    if (step == AUTHZ_CLAIM_ISSUER) {
        trace_step(t->ctx, "issuer", true, "iss %.*s is cluster %.*s's issuer", shown(jwt->iss.value),
                   jwt->iss.value.ptr, shown(c->name), c->name.ptr);
    } else if (step == AUTHZ_CLAIM_AUDIENCE) {
        authz_slice matched = {"", 0};
        for (size_t i = 0; i < jwt->aud_count && matched.len == 0; i++) {
            for (size_t j = 0; j < c->audience_count; j++) {
                if (authz_slice_eq(jwt->aud[i], c->audiences[j]))
                    matched = jwt->aud[i];
            }
        }
        trace_step(t->ctx, "audience", true, "aud %.*s is an audience of cluster %.*s", shown(matched),
                   matched.ptr, shown(c->name), c->name.ptr);
    } else {
        trace_step(t->ctx, "identity", true, "namespace %.*s, service account %.*s",
                   shown(jwt->k8s_namespace.value), jwt->k8s_namespace.value.ptr,
                   shown(jwt->k8s_sa_name.value), jwt->k8s_sa_name.value.ptr);
    }
}

/* Step 7: authz_claims_check's checks in its order; explain is told each
 * one (formatting times and audiences costs, so only a trace pays it). */
static int check_claims(const pol_cluster *c, const pol_snapshot *snap, const pol_request *req,
                        const authz_jwt *jwt, const pol_decide_ctx *ctx, authz_status *status)
{
    authz_claim_policy policy = {
        .issuer = c->issuer,
        .audiences = c->audiences,
        .audience_count = c->audience_count,
        .now = req->now,
        .clock_skew = snap->clock_skew,
        .max_token_age = c->max_token_age,
        .enforce_warnafter = c->enforce_warnafter,
    };
    claims_trace trace = {ctx, c, snap, req, jwt};
    authz_claim_observer observer = {trace_claim, &trace};
    bool tracing = ctx->trace && ctx->trace->step;
    return authz_claims_check_observed(jwt, &policy, status, tracing ? &observer : NULL);
}

/* The token's bound CIDRs as authz_jwt_cidr_claim read them for the issuing
 * cluster's cidr_claim: parsed once, and kept by the token cache. */
typedef struct bound_cidrs {
    int rc; /* 0 absent, 1 present (list), -1 malformed */
    const authz_cidr *list;
    size_t count;
} bound_cidrs;

/* Step 8: the cluster's source_cidrs, then the token's bound CIDRs. */
static int check_source(const pol_cluster *c, const pol_request *req, const bound_cidrs *bound, bool have_ip,
                        const authz_ip *ip, const pol_decide_ctx *ctx, authz_status *status)
{
    if (c->source_cidr_count > 0) {
        if (!have_ip && req->source.len == 0) {
            authz_status_set(status, AUTHZ_REASON_SOURCE_NOT_ALLOWED,
                             "the request carries no source address and cluster %.*s restricts sources",
                             shown(c->name), c->name.ptr);
            trace_fail(ctx, "source", status);
            return -1;
        }
        if (!have_ip) {
            authz_status_set(status, AUTHZ_REASON_SOURCE_NOT_ALLOWED,
                             "source %.*s is not an IP address and cluster %.*s restricts sources",
                             shown(req->source), req->source.ptr, shown(c->name), c->name.ptr);
            trace_fail(ctx, "source", status);
            return -1;
        }
        if (!authz_cidr_list_contains(c->source_cidrs, c->source_cidr_count, ip)) {
            authz_status_set(status, AUTHZ_REASON_SOURCE_NOT_ALLOWED,
                             "source %.*s is outside cluster %.*s's source_cidrs", shown(req->source),
                             req->source.ptr, shown(c->name), c->name.ptr);
            trace_fail(ctx, "source", status);
            return -1;
        }
    }
    int rc = bound->rc;
    if (rc < 0) {
        authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "claim %.*s is not a list of CIDRs",
                         shown(c->cidr_claim), c->cidr_claim.ptr);
        trace_fail(ctx, "source", status);
        return -1;
    }
    if (rc > 0 && (!have_ip || !authz_cidr_list_contains(bound->list, bound->count, ip))) {
        authz_status_set(status, AUTHZ_REASON_SOURCE_NOT_ALLOWED, "source %.*s is outside the token's %.*s",
                         shown(req->source), req->source.ptr, shown(c->cidr_claim), c->cidr_claim.ptr);
        trace_fail(ctx, "source", status);
        return -1;
    }
    authz_slice source = req->source.len > 0 ? req->source : AUTHZ_SLICE_LIT("(none)");
    trace_step(ctx, "source", true, "source %.*s: %s%s", shown(source), source.ptr,
               c->source_cidr_count > 0 ? "inside cluster source_cidrs" : "cluster allows any source",
               rc > 0 ? ", inside the token's bound CIDRs" : ", token carries no bound CIDRs");
    return 0;
}

/* Step 1b: the path the rules will see, normalized into the arena
 * (pol_path), or a malformed_request denial. CONNECT carries no path and
 * "OPTIONS *" asks about the server itself (RFC 9110 9.3.6, 9.3.7): both
 * are kept as they are, so only rules without path_prefix can select them. */
static int normalize_path(const pol_snapshot *snap, const pol_request *req, const pol_decide_ctx *ctx,
                          pol_decision *out)
{
    if ((req->path.len == 0 && authz_slice_eq_cstr(req->method, "CONNECT")) ||
        (authz_slice_eq_cstr(req->path, "*") && authz_slice_eq_cstr(req->method, "OPTIONS"))) {
        out->path = req->path;
        trace_step(ctx, "path", true, "%s: only rules without path_prefix apply",
                   req->path.len == 0 ? "no path (CONNECT)" : "server-wide OPTIONS *");
        return 0;
    }
    char *buf = ctx->arena ? authz_arena_alloc(ctx->arena, req->path.len + 1) : NULL;
    if (!buf) {
        authz_status_set(&out->status, AUTHZ_REASON_INTERNAL_ERROR, "out of memory normalizing the path");
        trace_fail(ctx, "path", &out->status);
        return -1;
    }
    size_t len = 0, at = 0;
    pol_path_error e = pol_path_normalize(req->path, snap->escaped_slashes, buf, req->path.len, &len, &at);
    if (e != POL_PATH_OK) {
        authz_status_set(&out->status, AUTHZ_REASON_MALFORMED_REQUEST, "path %.*s: %s at byte %zu",
                         shown(req->path), req->path.ptr, pol_path_error_text(e), at);
        trace_fail(ctx, "path", &out->status);
        return -1;
    }
    out->path = (authz_slice){buf, len};
    trace_step(ctx, "path", true, "rules match the normalized path %.*s", shown(out->path), out->path.ptr);
    return 0;
}

/* Step 1c: a header the rules' conditions read must carry one value.
 * Sent twice (two lines, or joined with a comma by a proxy, RFC 9110 5.3),
 * a condition could see either and the request fall through to a more
 * permissive rule: malformed_request, whichever rule would match. */
static int check_condition_headers(const pol_snapshot *snap, const pol_request *req,
                                   const pol_decide_ctx *ctx, pol_decision *out)
{
    for (size_t i = 0; req->condition_headers && i < snap->condition_header_count; i++) {
        const pol_header_value *h = &req->condition_headers[i];
        bool listed = h->count == 1 && h->value.len > 0 && memchr(h->value.ptr, ',', h->value.len) != NULL;
        if (h->count > 1 || listed) {
            authz_slice name = snap->condition_headers[i];
            authz_status_set(&out->status, AUTHZ_REASON_MALFORMED_REQUEST,
                             "header %.*s, which rules match on, carries more than one value", shown(name),
                             name.ptr);
            trace_fail(ctx, "headers", &out->status);
            return -1;
        }
    }
    return 0;
}

/* The rule selecting the request (NULL: none), found once: its
 * peer_binding applies at step 7b, the rule itself decides at step 9. */
static const pol_rule *select_rule(const pol_snapshot *snap, const pol_cluster *c, const pol_request *req,
                                   const pol_decision *out)
{
    pol_rule_request selection = {pol_snapshot_cluster_index(snap, c), req->method, out->path,
                                  req->condition_headers};
    return snap->rule_count > 0 ? pol_rule_find(snap, &selection) : NULL;
}

/* Step 7b: the caller's mesh identity must name the token's workload. */
static int check_peer(const pol_cluster *c, const pol_rule *rule, const pol_request *req,
                      const authz_jwt *jwt, const pol_decide_ctx *ctx, pol_decision *out)
{
    pol_peer_binding b = pol_peer_effective(&c->peer, rule ? &rule->peer : NULL);
    if (b.mode != POL_PEER_MODE_SPIFFE)
        return 0;
    out->peer_result =
        pol_peer_check(&b, req->peer_principal, req->peer_certificate, jwt->k8s_namespace.value,
                       jwt->k8s_sa_name.value, ctx->arena, &out->peer, &out->status);
    if (out->peer_result == POL_PEER_RESULT_MISMATCH || out->peer_result == POL_PEER_RESULT_MISSING) {
        trace_fail(ctx, "peer", &out->status);
        return -1;
    }
    if (out->peer_result == POL_PEER_RESULT_BOUND)
        trace_step(ctx, "peer", true, "peer %.*s is the token's workload", shown(out->peer), out->peer.ptr);
    else
        trace_step(ctx, "peer", true, "no peer identity: unbound (peer_binding does not require one)");
    return 0;
}

/* Step 9, with |rule| from select_rule. */
static int check_rules(const pol_cluster *c, const pol_rule *rule, const pol_request *req,
                       const authz_jwt *jwt, bool have_ip, const authz_ip *ip, const pol_decide_ctx *ctx,
                       pol_decision *out)
{
    authz_slice path = out->path;
    if (!rule) {
        authz_status_set(&out->status, AUTHZ_REASON_FORBIDDEN, "no rule matches %.*s %.*s for cluster %.*s",
                         shown(req->method), req->method.ptr, shown(path), path.ptr, shown(c->name),
                         c->name.ptr);
        trace_fail(ctx, "rule", &out->status);
        return -1;
    }
    out->rule = rule;
    if (out->provider && !pol_rule_allows_user(rule, out->username, out->groups)) {
        authz_status_set(&out->status, AUTHZ_REASON_FORBIDDEN,
                         "rule %.*s does not allow user %.*s (groups %.*s)", shown(rule->name),
                         rule->name.ptr, shown(out->username), out->username.ptr, shown(out->groups),
                         out->groups.ptr);
        trace_fail(ctx, "rule", &out->status);
        return -1;
    }
    authz_slice ns = jwt->k8s_namespace.value;
    authz_slice sa = jwt->k8s_sa_name.value;
    if (!out->provider && !pol_rule_allows_identity(rule, ns, sa)) {
        authz_status_set(&out->status, AUTHZ_REASON_FORBIDDEN, "rule %.*s does not allow %.*s:%.*s",
                         shown(rule->name), rule->name.ptr, shown(ns), ns.ptr, shown(sa), sa.ptr);
        trace_fail(ctx, "rule", &out->status);
        return -1;
    }
    if (rule->source_cidr_count > 0 &&
        (!have_ip || !authz_cidr_list_contains(rule->source_cidrs, rule->source_cidr_count, ip))) {
        authz_status_set(&out->status, AUTHZ_REASON_SOURCE_NOT_ALLOWED,
                         "rule %.*s does not allow source %.*s", shown(rule->name), rule->name.ptr,
                         shown(req->source), req->source.ptr);
        trace_fail(ctx, "rule", &out->status);
        return -1;
    }
    if (out->provider)
        trace_step(ctx, "rule", true, "rule %.*s allows user %.*s", shown(rule->name), rule->name.ptr,
                   shown(out->username), out->username.ptr);
    else
        trace_step(ctx, "rule", true, "rule %.*s allows %.*s:%.*s", shown(rule->name), rule->name.ptr,
                   shown(ns), ns.ptr, shown(sa), sa.ptr);
    return 0;
}

/* A copy of |s| in the arena; false when it is exhausted. */
static bool arena_copy(authz_arena *arena, authz_slice s, authz_slice *out)
{
    char *copy = authz_arena_strndup(arena, s.ptr ? s.ptr : "", s.len);
    if (!copy)
        return false;
    out->ptr = copy;
    out->len = s.len;
    return true;
}

/* After the signature: "system:serviceaccount:<ns>:<sa>" of the verified
 * token into out->verified_subject (left empty without those claims or
 * without an arena, where step 10 denies anyway).
 * Returns -1 when the arena is exhausted. */
static int note_verified_subject(authz_arena *arena, const authz_jwt *jwt, pol_decision *out)
{
    static const char prefix[] = "system:serviceaccount:";
    authz_slice ns = jwt->k8s_namespace.value;
    authz_slice sa = jwt->k8s_sa_name.value;
    if (!arena || !jwt->k8s_namespace.present || !jwt->k8s_sa_name.present)
        return 0;
    size_t subject_len = sizeof prefix - 1 + ns.len + 1 + sa.len;
    char *subject = authz_arena_alloc(arena, subject_len + 1);
    if (!subject)
        return -1;
    memcpy(subject, prefix, sizeof prefix - 1);
    memcpy(subject + sizeof prefix - 1, ns.ptr, ns.len);
    subject[sizeof prefix - 1 + ns.len] = ':';
    memcpy(subject + sizeof prefix + ns.len, sa.ptr, sa.len);
    subject[subject_len] = '\0';
    out->verified_subject = (authz_slice){subject, subject_len};
    return 0;
}

/* Step 10: identity slices that outlive the token (the subject was noted
 * when the signature verified; the identity check requires its claims). */
static int copy_identity(authz_arena *arena, const authz_jwt *jwt, pol_decision *out)
{
    authz_slice ns = jwt->k8s_namespace.value;
    authz_slice sa = jwt->k8s_sa_name.value;
    if (!out->verified_subject.ptr)
        return -1;
    out->subject = out->verified_subject;
    if (!arena_copy(arena, ns, &out->namespace_name) || !arena_copy(arena, sa, &out->service_account))
        return -1;
    if (jwt->k8s_pod_name.present && !arena_copy(arena, jwt->k8s_pod_name.value, &out->pod_name))
        return -1;
    if (jwt->k8s_node_name.present && !arena_copy(arena, jwt->k8s_node_name.value, &out->node_name))
        return -1;
    return 0;
}

/* Appends the text of scalar |v| to |buf| (|*used| of POL_CLAIM_VALUE_MAX_BYTES).
 * Returns NULL, or why it cannot be a header value. */
static const char *append_scalar(const authz_json *v, char *buf, size_t *used)
{
    char num[40];
    authz_slice text = {NULL, 0};
    int64_t i;
    double d;
    bool b;
    if (authz_json_string(v, &text)) {
        for (size_t k = 0; k < text.len; k++) {
            unsigned char c = (unsigned char)text.ptr[k];
            if (c < 0x20 || c == 0x7f)
                return "it contains a control character";
        }
    } else if (authz_json_int(v, &i)) {
        text = (authz_slice){num, (size_t)snprintf(num, sizeof num, "%lld", (long long)i)};
    } else if (authz_json_real(v, &d)) {
        /* The shortest of %.15g / %.17g that reads back as the same double. */
        int n = snprintf(num, sizeof num, "%.15g", d);
        if (strtod(num, NULL) != d)
            n = snprintf(num, sizeof num, "%.17g", d);
        text = (authz_slice){num, n > 0 ? (size_t)n : 0};
    } else if (authz_json_bool(v, &b)) {
        text = b ? AUTHZ_SLICE_LIT("true") : AUTHZ_SLICE_LIT("false");
    } else {
        return "it is not a string, number or boolean";
    }
    if (text.len > POL_CLAIM_VALUE_MAX_BYTES - *used)
        return "it is longer than 4096 bytes";
    memcpy(buf + *used, text.ptr, text.len);
    *used += text.len;
    return NULL;
}

/* Step 10b: the target cluster's claim_to_headers from the verified
 * claims, into the arena. An absent claim (also null or []) leaves the
 * header to be removed; one that cannot be written as a header value
 * denies (malformed_token): the upstream must never see a header that
 * says less than the token does without knowing it. */
static int claim_headers(const pol_cluster *c, const authz_jwt *jwt, const pol_decide_ctx *ctx,
                         pol_decision *out)
{
    for (size_t i = 0; i < c->claim_header_count; i++) {
        const pol_claim_header *entry = &c->claim_headers[i];
        pol_claim_value *cv = &out->claim_headers[out->claim_header_count++];
        cv->header = entry->header;
        const authz_json *v = pol_claim_lookup(jwt->payload, entry->claim);
        authz_json_type type = authz_json_type_of(v);
        if (type == AUTHZ_JSON_ABSENT || type == AUTHZ_JSON_NULL ||
            (type == AUTHZ_JSON_ARRAY && authz_json_count(v) == 0))
            continue;
        char buf[POL_CLAIM_VALUE_MAX_BYTES];
        size_t used = 0;
        const char *why = NULL;
        if (type == AUTHZ_JSON_ARRAY) {
            for (size_t k = 0; k < authz_json_count(v) && !why; k++) {
                if (k > 0 && used == POL_CLAIM_VALUE_MAX_BYTES)
                    why = "it is longer than 4096 bytes";
                else if (k > 0)
                    buf[used++] = ',';
                why = why ? why : append_scalar(authz_json_at(v, k), buf, &used);
            }
        } else {
            why = append_scalar(v, buf, &used);
        }
        if (why) {
            authz_status_set(&out->status, AUTHZ_REASON_MALFORMED_TOKEN,
                             "claim %.*s cannot be sent as header %.*s: %s", shown(entry->claim),
                             entry->claim.ptr, shown(entry->header), entry->header.ptr, why);
            trace_fail(ctx, "claim_headers", &out->status);
            return -1;
        }
        if (!arena_copy(ctx->arena, (authz_slice){buf, used}, &cv->value)) {
            authz_status_set(&out->status, AUTHZ_REASON_INTERNAL_ERROR, "out of memory for claim_to_headers");
            trace_fail(ctx, "claim_headers", &out->status);
            return -1;
        }
        cv->present = true;
    }
    if (c->claim_header_count > 0)
        trace_step(ctx, "claim_headers", true, "%zu claim header%s set or removed", c->claim_header_count,
                   c->claim_header_count == 1 ? "" : "s");
    return 0;
}

/* Index of |key| among pol_cluster_key(c, ...): what the token cache keeps. */
static size_t key_index(const pol_cluster *c, const authz_key *key)
{
    size_t k = 0;
    while (k + 1 < pol_cluster_key_count(c) && pol_cluster_key(c, k) != key)
        k++;
    return k;
}

/* Steps 6-7 for an identity provider's token (the provider's keys verified
 * it): the provider must accept the target cluster (provider_not_allowed),
 * then iss, times and aud against the provider, its claim rules
 * (claim_mismatch), and its username and groups into |out|. */
static int check_provider_token(const pol_snapshot *snap, const pol_cluster *target, const pol_provider *p,
                                const pol_request *req, const authz_jwt *jwt, const pol_decide_ctx *ctx,
                                pol_decision *out)
{
    if (!pol_provider_accepts(p, pol_snapshot_cluster_index(snap, target))) {
        authz_status_set(&out->status, AUTHZ_REASON_PROVIDER_NOT_ALLOWED,
                         "identity provider %.*s is not trusted by cluster %.*s", shown(p->name), p->name.ptr,
                         shown(target->name), target->name.ptr);
        trace_fail(ctx, "provider", &out->status);
        return -1;
    }
    trace_step(ctx, "provider", true, "identity provider %.*s is trusted by cluster %.*s", shown(p->name),
               p->name.ptr, shown(target->name), target->name.ptr);
    authz_claim_policy policy = {.issuer = p->issuer,
                                 .audiences = p->audiences,
                                 .audience_count = p->audience_count,
                                 .now = req->now,
                                 .clock_skew = snap->clock_skew};
    static const char *const checks[] = {"issuer", "expiry", "audience", "claim_rules"};
    static const char *const passed[] = {
        "iss is the issuer", "exp, nbf and iat are within the clock skew", "aud holds an audience",
        "no kubernetes.io claim, claim_validation_rules and email_verified hold"};
    for (size_t i = 0; i < 4; i++) {
        int rc = i == 0   ? authz_claims_check_issuer(jwt, &policy, &out->status)
                 : i == 1 ? authz_claims_check_time(jwt, &policy, &out->status)
                 : i == 2 ? authz_claims_check_audience(jwt, &policy, &out->status)
                          : pol_provider_check_claims(p, jwt, &out->status);
        if (rc != 0) {
            trace_fail(ctx, checks[i], &out->status);
            return -1;
        }
        trace_step(ctx, checks[i], true, "%s of identity provider %.*s", passed[i], shown(p->name),
                   p->name.ptr);
    }
    if (!ctx->arena ||
        pol_provider_identity(p, jwt, ctx->arena, &out->username, &out->groups, &out->status) != 0) {
        if (!ctx->arena)
            authz_status_set(&out->status, AUTHZ_REASON_INTERNAL_ERROR, "no arena for the identity");
        trace_fail(ctx, "identity", &out->status);
        return -1;
    }
    out->verified_subject = out->username;
    trace_step(ctx, "identity", true, "user %.*s, groups %.*s", shown(out->username), out->username.ptr,
               out->groups.len > 0 ? shown(out->groups) : 6,
               out->groups.len > 0 ? out->groups.ptr : "(none)");
    return 0;
}

/* Steps 6-7 for a service-account token (a cluster's key verified it):
 * the issuing cluster must be the target, then its claims. */
static int check_cluster_token(const pol_snapshot *snap, const pol_cluster *target, const pol_cluster *signer,
                               const authz_key *key, const pol_request *req, const authz_jwt *jwt,
                               const pol_decide_ctx *ctx, pol_decision *out)
{
    if (note_verified_subject(ctx->arena, jwt, out) != 0) {
        authz_status_set(&out->status, AUTHZ_REASON_INTERNAL_ERROR, "out of memory copying the subject");
        trace_fail(ctx, "identity_copy", &out->status);
        return -1;
    }

    /* 6. The issuing cluster must be the target. */
    if (signer != target) {
        authz_status_set(&out->status, AUTHZ_REASON_CLUSTER_MISMATCH,
                         "token was issued by cluster %.*s (key kid %s), request is for cluster %.*s",
                         shown(signer->name), signer->name.ptr, key->kid, shown(target->name),
                         target->name.ptr);
        trace_fail(ctx, "cluster_match", &out->status);
        return -1;
    }
    trace_step(ctx, "cluster_match", true, "token was issued by the target cluster %.*s", shown(target->name),
               target->name.ptr);

    /* 7. Claims. */
    return check_claims(target, snap, req, jwt, ctx, &out->status);
}

/* "allowed <subject>" without printf: this runs on every allowed request. */
static void status_allowed(authz_status *status, authz_slice subject)
{
    static const char prefix[] = "allowed ";
    size_t room = sizeof status->message - sizeof prefix;
    size_t n = subject.len < room ? subject.len : room;
    authz_status_ok(status);
    memcpy(status->message, prefix, sizeof prefix - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)subject.ptr[i];
        status->message[sizeof prefix - 1 + i] = c < 0x20 || c > 0x7e ? '?' : (char)c;
    }
    status->message[sizeof prefix - 1 + n] = '\0';
}

bool pol_decide(const pol_snapshot *snap, const pol_request *req, pol_decide_ctx *ctx, pol_decision *out)
{
    authz_jwt jwt;
    pol_decide_ctx no_ctx = {NULL, NULL, NULL, POL_CACHE_UNUSED};
    if (!ctx)
        ctx = &no_ctx;
    memset(&jwt, 0, sizeof jwt);
    memset(out, 0, sizeof *out);
    out->generation = snap->generation;
    authz_status_set(&out->status, AUTHZ_REASON_INTERNAL_ERROR, "decision did not complete");

    /* 1. Target cluster. */
    const pol_cluster *target = pol_target_find(snap, req->cluster, req->host, &out->status);
    if (!target) {
        trace_fail(ctx, "cluster", &out->status);
        goto cleanup;
    }
    out->cluster = target;
    trace_step(ctx, "cluster", true, "cluster %.*s (%s)", shown(target->name), target->name.ptr,
               req->cluster.len > 0 ? "routing hint" : "host");

    /* 1b. The path, before anything costs a signature: only rules read it. */
    if (snap->rule_count > 0 && normalize_path(snap, req, ctx, out) != 0)
        goto cleanup;
    if (check_condition_headers(snap, req, ctx, out) != 0)
        goto cleanup;

    /* 2. Bearer token. */
    authz_slice token;
    if (req->authorization_repeated) {
        authz_status_set(&out->status, AUTHZ_REASON_MALFORMED_TOKEN,
                         "more than one authorization header: two credentials");
        trace_fail(ctx, "bearer", &out->status);
        goto cleanup;
    }
    if (authz_bearer_extract(req->authorization, &token, &out->status) != 0) {
        trace_fail(ctx, "bearer", &out->status);
        goto cleanup;
    }
    out->token = token;
    trace_step(ctx, "bearer", true, "bearer token of %zu bytes", token.len);

    /* 3-5 depend on the token bytes and the snapshot alone: a cache hit
     * skips them, everything after is evaluated on every call. The cache key
     * is the token's SHA-256, which also gives the log its fingerprint. */
    const pol_cluster *signer = NULL;
    const pol_provider *provider = NULL;
    const authz_key *key = NULL;
    const pol_cached_token *hit = NULL;
    uint8_t cache_key[POL_TOKEN_KEY_LEN];
    bool keyed = ctx->cache && pol_token_cache_key(token, cache_key) == 0;
    if (keyed) {
        _Static_assert(AUTHZ_BEARER_DIGEST_LEN <= POL_TOKEN_KEY_LEN, "the fingerprint is a digest prefix");
        out->has_token_digest = true;
        memcpy(out->token_digest, cache_key, sizeof out->token_digest);
        hit = pol_token_cache_get(ctx->cache, snap->generation, cache_key, req->now);
        ctx->cache_outcome = hit ? POL_CACHE_HIT : POL_CACHE_MISS;
    }
    authz_cidr bound_list[AUTHZ_JWT_MAX_CIDRS];
    bound_cidrs bound = {0, NULL, 0};
    if (hit) {
        signer = &snap->clusters[hit->cluster_index];
        key = pol_cluster_key(signer, hit->key_index);
        pol_cached_token_view(hit, signer->issuer, &jwt);
        bound = (bound_cidrs){hit->bound_rc, hit->bound, hit->bound_count};
        trace_step(ctx, "signature", true, "verified earlier with key kid %s of cluster %.*s (token cache)",
                   key->kid, shown(signer->name), signer->name.ptr);
    } else {
        if (!ctx->arena) {
            authz_status_set(&out->status, AUTHZ_REASON_INTERNAL_ERROR, "no arena to parse the token into");
            trace_fail(ctx, "parse", &out->status);
            goto cleanup;
        }
        signer = parse_and_verify(snap, target, token, ctx, ctx->arena, &jwt, &key, &provider, &out->status);
        if (!signer && !provider) {
            if (out->status.reason == AUTHZ_REASON_UNKNOWN_KEY && jwt.kid.present)
                out->kid_miss_issuer = jwt.iss.value;
            goto cleanup;
        }
        size_t count = 0;
        /* A provider's token carries no bound CIDRs, and is never cached:
         * its username and groups are read from the claims on every call. */
        bound.rc = provider ? 0
                            : authz_jwt_cidr_claim(&jwt, signer->cidr_claim.ptr, bound_list,
                                                   AUTHZ_JWT_MAX_CIDRS, &count);
        bound.list = bound_list;
        bound.count = count;
        /* A token already past exp is not worth keeping: it can only be
         * denied. Out of memory, it is simply not cached. A compact entry
         * keeps only the claims the checks read, not the payload
         * claim_to_headers reads: tokens of such clusters are never cached
         * (the generation in the key keeps a reloaded config's entries
         * apart), so they are verified on every call. */
        if (keyed && !provider && signer->claim_header_count == 0 && jwt.exp.state == AUTHZ_JWT_TIME_VALID &&
            req->now < jwt.exp.seconds)
            (void)pol_token_cache_put(ctx->cache, snap->generation, cache_key, &jwt,
                                      pol_snapshot_cluster_index(snap, signer), key_index(signer, key),
                                      bound.rc, bound.list, bound.count);
    }
    const authz_jwt *jp = &jwt;
    out->issuer_cluster = signer;
    out->provider = provider;

    /* 6-7. The token's issuer: its cluster and claims, or its identity
     * provider, the provider's trust in the target and the claims. */
    if (provider ? check_provider_token(snap, target, provider, req, jp, ctx, out) != 0
                 : check_cluster_token(snap, target, signer, key, req, jp, ctx, out) != 0)
        goto cleanup;

    /* 7b. Peer binding: request-dependent, so checked on cache hits too.
     * A provider's token names a person, not a workload: never bound. */
    const pol_rule *rule = select_rule(snap, target, req, out);
    if (!provider && check_peer(target, rule, req, jp, ctx, out) != 0)
        goto cleanup;

    /* 8. Source. */
    authz_ip ip = {0, {0}};
    bool have_ip = req->source.ptr && req->source.len > 0 && authz_ip_parse(req->source, &ip) == 0;
    if (check_source(target, req, &bound, have_ip, &ip, ctx, &out->status) != 0)
        goto cleanup;

    /* 9. Rules. In shadow mode (the deciding rule's, or the cluster's) a
     * denial is recorded and the request allowed: only this step, so
     * everything above (the token, the cluster, its sources) still denies. */
    if (snap->rule_count > 0 && check_rules(target, rule, req, jp, have_ip, &ip, ctx, out) != 0) {
        if (!target->shadow && (!out->rule || !out->rule->shadow))
            goto cleanup;
        out->shadow_denied = true;
        out->shadow_status = out->status;
        trace_step(
            ctx, "shadow", true, "%s %.*s is in shadow mode: would deny (%s), allowed",
            target->shadow ? "cluster" : "rule", shown(target->shadow ? target->name : out->rule->name),
            target->shadow ? target->name.ptr : out->rule->name.ptr, authz_reason_name(out->status.reason));
    }

    /* 10. Allow. */
    if (provider)
        out->subject = out->username;
    else if (!ctx->arena || copy_identity(ctx->arena, jp, out) != 0) {
        authz_status_set(&out->status, AUTHZ_REASON_INTERNAL_ERROR, "out of memory copying the identity");
        trace_fail(ctx, "identity_copy", &out->status);
        goto cleanup;
    }
    if (claim_headers(target, jp, ctx, out) != 0)
        goto cleanup;
    status_allowed(&out->status, out->subject);
    out->allowed = true;
cleanup:
    if (!out->allowed) {
        out->subject = (authz_slice){NULL, 0};
        out->namespace_name = out->service_account = out->pod_name = out->node_name = out->subject;
        out->claim_header_count = 0;
    }
    return out->allowed;
}
