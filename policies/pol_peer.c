#include "pol_peer.h"

#include "authz_spiffe.h"

#define SHOWN_MAX 96 /* bytes of a request-supplied value quoted in a message */

static int shown(authz_slice s)
{
    return (int)(s.len > SHOWN_MAX ? SHOWN_MAX : s.len);
}

const char *pol_peer_result_name(pol_peer_result result)
{
    static const char *const names[POL_PEER_RESULT_COUNT] = {
        [POL_PEER_RESULT_BOUND] = "bound",
        [POL_PEER_RESULT_UNBOUND] = "unbound",
        [POL_PEER_RESULT_MISMATCH] = "mismatch",
        [POL_PEER_RESULT_MISSING] = "missing",
    };
    return (unsigned)result < POL_PEER_RESULT_COUNT ? names[result] : NULL;
}

pol_peer_binding pol_peer_effective(const pol_peer_binding *cluster, const pol_peer_binding *rule)
{
    pol_peer_binding b = *cluster;
    if (rule && rule->mode != POL_PEER_MODE_UNSET)
        b.mode = rule->mode;
    if (rule && rule->trust_domain.ptr)
        b.trust_domain = rule->trust_domain;
    if (rule && rule->required_set)
        b.required = rule->required;
    if (b.mode == POL_PEER_MODE_UNSET)
        b.mode = POL_PEER_MODE_OFF;
    if (!b.trust_domain.ptr)
        b.trust_domain = AUTHZ_SLICE_LIT(POL_PEER_DEFAULT_TRUST_DOMAIN);
    b.required_set = true;
    return b;
}

const char *pol_peer_loosens(const pol_peer_binding *cluster, const pol_peer_binding *rule)
{
    pol_peer_binding base = pol_peer_effective(cluster, NULL);
    pol_peer_binding eff = pol_peer_effective(cluster, rule);
    if (base.mode != POL_PEER_MODE_SPIFFE)
        return NULL;
    if (eff.mode != POL_PEER_MODE_SPIFFE)
        return "mode";
    if (!authz_slice_eq(eff.trust_domain, base.trust_domain))
        return "trust_domain";
    if (base.required && !eff.required)
        return "required";
    return NULL;
}

pol_peer_result pol_peer_check(const pol_peer_binding *b, authz_slice principal, authz_slice certificate,
                               authz_slice ns, authz_slice sa, authz_arena *arena, authz_slice *peer,
                               authz_status *status)
{
    authz_spiffe_id id;
    const char *why = NULL;

    *peer = principal;
    if (principal.len == 0 && certificate.len > 0) {
        /* No principal: the proxy sent the certificate alone. */
        int rc = arena ? authz_spiffe_uri_san(certificate, arena, peer, &why) : -2;
        if (rc == -2) {
            authz_status_set(status, AUTHZ_REASON_INTERNAL_ERROR,
                             "out of memory reading the peer certificate");
            return POL_PEER_RESULT_MISMATCH;
        }
        if (rc != 0) {
            *peer = (authz_slice){NULL, 0};
            authz_status_set(status, AUTHZ_REASON_PEER_MISMATCH, "peer certificate %s", why);
            return POL_PEER_RESULT_MISMATCH;
        }
    }
    if (peer->len == 0) {
        *peer = (authz_slice){NULL, 0};
        if (!b->required)
            return POL_PEER_RESULT_UNBOUND;
        authz_status_set(status, AUTHZ_REASON_PEER_MISSING,
                         "no peer identity (plain-text hop?) and peer_binding requires one");
        return POL_PEER_RESULT_MISSING;
    }
    why = authz_spiffe_parse(*peer, &id);
    if (why) {
        authz_status_set(status, AUTHZ_REASON_PEER_MISMATCH,
                         "peer %.*s %s: not spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>",
                         shown(*peer), peer->ptr, why);
        return POL_PEER_RESULT_MISMATCH;
    }
    if (!authz_slice_eq(id.trust_domain, b->trust_domain)) {
        authz_status_set(status, AUTHZ_REASON_PEER_MISMATCH, "peer %.*s is not in trust domain %.*s",
                         shown(*peer), peer->ptr, shown(b->trust_domain), b->trust_domain.ptr);
        return POL_PEER_RESULT_MISMATCH;
    }
    if (!authz_slice_eq(id.namespace_name, ns) || !authz_slice_eq(id.service_account, sa)) {
        authz_status_set(status, AUTHZ_REASON_PEER_MISMATCH,
                         "peer %.*s is not the token's workload %.*s:%.*s", shown(*peer), peer->ptr,
                         shown(ns), ns.ptr, shown(sa), sa.ptr);
        return POL_PEER_RESULT_MISMATCH;
    }
    return POL_PEER_RESULT_BOUND;
}
