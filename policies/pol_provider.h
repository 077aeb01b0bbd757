/* pol_provider: what a verified identity-provider (OIDC) token says.
 *
 * After its signature, issuer, audience and times are checked, a provider
 * token must carry no kubernetes.io claim, pass its provider's
 * claim_validation_rules (and email_verified when the username is the
 * email), and then yields a prefixed username and prefixed groups, as
 * kube-apiserver's structured authentication config maps them. */
#ifndef POL_PROVIDER_H
#define POL_PROVIDER_H

#include "authz_arena.h"
#include "authz_json.h"
#include "authz_jwt.h"
#include "authz_reason.h"
#include "authz_slice.h"
#include "pol_snapshot.h"

/* The member of the claims object |payload| at the dotted |path|: at each
 * level the whole rest of the path if it is a key, else the longest key
 * followed by '.' (so "kubernetes.io.pod.name" finds the key
 * "kubernetes.io", and "resource_access.my.client.roles" a client id with
 * dots). NULL when absent or when a level is not an object. Borrows. */
const authz_json *pol_claim_lookup(const authz_json *payload, authz_slice path);

/* The claim checks of a provider token |jwt| (verified, with iss, aud and
 * times already checked): no kubernetes.io claim (a service-account token
 * is never accepted through a provider), each of |p|'s
 * claim_validation_rules, and, when the username claim is "email", an
 * email_verified claim that is present must be true. Returns 0, or -1 with
 * |status| claim_mismatch naming the claim. */
int pol_provider_check_claims(const pol_provider *p, const authz_jwt *jwt, authz_status *status);

/* The identity of a provider token that passed pol_provider_check_claims:
 * *username is the username prefix then the username claim (a non-empty
 * string without control characters, at most POL_MAX_GROUP_BYTES bytes);
 * *groups the groups claim (a string, or an array of strings; absent or
 * null: none), each with the groups prefix, joined with ',' (empty when
 * none). Both are copied into |arena|. Returns 0, or -1 with |status|:
 * missing_claim (no username claim), malformed_token (a username or group
 * that is not a string, is empty, holds a control character or, for a
 * group, a comma; more than POL_MAX_GROUPS groups, one longer than
 * POL_MAX_GROUP_BYTES, or more than POL_MAX_GROUPS_BYTES joined),
 * claim_mismatch (a username starting with "system:", which only
 * Kubernetes identities carry), internal_error (|arena| exhausted). */
int pol_provider_identity(const pol_provider *p, const authz_jwt *jwt, authz_arena *arena,
                          authz_slice *username, authz_slice *groups, authz_status *status);

/* True when the comma-joined |groups| holds |group|. */
bool pol_groups_contain(authz_slice groups, authz_slice group);

/* True when |provider| accepts tokens for cluster index |cluster|. */
bool pol_provider_accepts(const pol_provider *provider, size_t cluster);

#endif
