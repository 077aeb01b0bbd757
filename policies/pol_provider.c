#include "pol_provider.h"

#include <string.h>

#define SHOWN_MAX 96 /* bytes of a token-supplied value quoted in a message */

static int shown(authz_slice s)
{
    return (int)(s.len > SHOWN_MAX ? SHOWN_MAX : s.len);
}

/* The member of object |obj| that the dotted |path| begins with: the whole
 * rest, else the longest key followed by '.'. Sets *rest to what is left
 * after it (empty when the whole path matched); NULL when no member fits. */
static const authz_json *claim_step(const authz_json *obj, authz_slice path, authz_slice *rest)
{
    const authz_json *best = NULL;
    size_t best_len = 0;
    size_t members = authz_json_count(obj);
    for (size_t i = 0; i < members; i++) {
        authz_slice key;
        const authz_json *value = authz_json_member_at(obj, i, &key);
        if (!authz_slice_has_prefix(path, key) || key.len == 0)
            continue;
        bool whole = key.len == path.len;
        if ((whole || path.ptr[key.len] == '.') && (!best || key.len > best_len || whole)) {
            best = value;
            best_len = key.len;
            if (whole)
                break;
        }
    }
    if (best)
        *rest = best_len == path.len ? (authz_slice){NULL, 0}
                                     : (authz_slice){path.ptr + best_len + 1, path.len - best_len - 1};
    return best;
}

const authz_json *pol_claim_lookup(const authz_json *payload, authz_slice path)
{
    const authz_json *v = payload;
    while (v && path.len > 0)
        v = authz_json_type_of(v) == AUTHZ_JSON_OBJECT ? claim_step(v, path, &path) : NULL;
    return v;
}

static bool value_equals(const authz_json *v, const pol_required_value *want)
{
    authz_slice s;
    bool b;
    double d;
    switch (want->kind) {
    case POL_VALUE_STRING:
        return authz_json_string(v, &s) && authz_slice_eq(s, want->text);
    case POL_VALUE_BOOL:
        return authz_json_bool(v, &b) && b == want->boolean;
    case POL_VALUE_NUMBER:
    default:
        return authz_json_number(v, &d) && d == want->number;
    }
}

/* required_value: the claim equals it; required_values: the claim equals
 * one of them, or is an array holding one. */
static bool rule_holds(const pol_claim_rule *rule, const authz_json *v)
{
    for (size_t i = 0; i < rule->value_count; i++) {
        if (value_equals(v, &rule->values[i]))
            return true;
        for (size_t k = 0;
             rule->one_of && authz_json_type_of(v) == AUTHZ_JSON_ARRAY && k < authz_json_count(v); k++) {
            if (value_equals(authz_json_at(v, k), &rule->values[i]))
                return true;
        }
    }
    return false;
}

int pol_provider_check_claims(const pol_provider *p, const authz_jwt *jwt, authz_status *status)
{
    if (jwt->k8s_present)
        return authz_status_set(
            status, AUTHZ_REASON_CLAIM_MISMATCH,
            "claim kubernetes.io: a token of identity provider %.*s carries it, which only "
            "service-account tokens do",
            shown(p->name), p->name.ptr);
    for (size_t i = 0; i < p->claim_rule_count; i++) {
        const pol_claim_rule *rule = &p->claim_rules[i];
        const authz_json *v = pol_claim_lookup(jwt->payload, rule->claim);
        if (!rule_holds(rule, v))
            return authz_status_set(
                status, AUTHZ_REASON_CLAIM_MISMATCH,
                "claim %.*s %s the %s of claim_validation_rules[%zu] of provider %.*s", shown(rule->claim),
                rule->claim.ptr, v ? "does not hold" : "is absent: needs",
                rule->one_of ? "required_values" : "required_value", i, shown(p->name), p->name.ptr);
    }
    if (authz_slice_eq_cstr(p->username_claim, "email")) {
        const authz_json *v = authz_json_get(jwt->payload, AUTHZ_SLICE_LIT("email_verified"));
        bool verified = false;
        if (v && (!authz_json_bool(v, &verified) || !verified))
            return authz_status_set(status, AUTHZ_REASON_CLAIM_MISMATCH,
                                    "claim email_verified is not true, and provider %.*s maps the username "
                                    "from email",
                                    shown(p->name), p->name.ptr);
    }
    return authz_status_ok(status);
}

/* Why |s| cannot be a username or group; NULL when it can. */
static const char *text_problem(authz_slice s, bool group)
{
    if (s.len == 0)
        return "is empty";
    if (s.len > POL_MAX_GROUP_BYTES)
        return "is longer than 256 bytes";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < 0x20 || c == 0x7f)
            return "holds a control character";
        if (group && c == ',')
            return "holds a comma (x-tokengate-groups is comma-separated)";
    }
    return NULL;
}

/* Appends |prefix| then |s| to |buf| (|*used| of POL_MAX_GROUPS_BYTES). */
static bool append(char *buf, size_t *used, authz_slice prefix, authz_slice s)
{
    if (prefix.len + s.len > POL_MAX_GROUPS_BYTES - *used)
        return false;
    memcpy(buf + *used, prefix.ptr, prefix.len);
    memcpy(buf + *used + prefix.len, s.ptr, s.len);
    *used += prefix.len + s.len;
    return true;
}

/* The groups of |jwt| under |p|'s mapping, joined into |buf|. Returns 0 or
 * -1 with |status| malformed_token. */
static int join_groups(const pol_provider *p, const authz_jwt *jwt, char *buf, size_t *used,
                       authz_status *status)
{
    const authz_json *v = p->groups_claim.len > 0 ? pol_claim_lookup(jwt->payload, p->groups_claim) : NULL;
    authz_json_type type = authz_json_type_of(v);
    if (type == AUTHZ_JSON_ABSENT || type == AUTHZ_JSON_NULL)
        return 0;
    if (type != AUTHZ_JSON_STRING && type != AUTHZ_JSON_ARRAY)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                "groups claim %.*s is neither a string nor an array of strings",
                                shown(p->groups_claim), p->groups_claim.ptr);
    size_t count = type == AUTHZ_JSON_ARRAY ? authz_json_count(v) : 1u;
    if (count > POL_MAX_GROUPS)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                "groups claim %.*s holds %zu groups, at most %u", shown(p->groups_claim),
                                p->groups_claim.ptr, count, POL_MAX_GROUPS);
    for (size_t i = 0; i < count; i++) {
        authz_slice group;
        if (!authz_json_string(type == AUTHZ_JSON_ARRAY ? authz_json_at(v, i) : v, &group))
            return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                    "groups claim %.*s holds a value that is not a string",
                                    shown(p->groups_claim), p->groups_claim.ptr);
        const char *problem = text_problem(group, true);
        if (problem)
            return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "group %.*s of claim %.*s %s",
                                    shown(group), group.ptr, shown(p->groups_claim), p->groups_claim.ptr,
                                    problem);
        if ((i > 0 && !append(buf, used, AUTHZ_SLICE_LIT(","), (authz_slice){"", 0})) ||
            !append(buf, used, p->groups_prefix, group))
            return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN,
                                    "groups claim %.*s is longer than %u bytes joined",
                                    shown(p->groups_claim), p->groups_claim.ptr, POL_MAX_GROUPS_BYTES);
    }
    return 0;
}

/* A copy of |prefix| then |s| in |arena|; ptr NULL when it is exhausted. */
static authz_slice arena_join(authz_arena *arena, authz_slice prefix, authz_slice s)
{
    char *copy = authz_arena_alloc(arena, prefix.len + s.len + 1);
    if (!copy)
        return (authz_slice){NULL, 0};
    if (prefix.len > 0)
        memcpy(copy, prefix.ptr, prefix.len);
    if (s.len > 0)
        memcpy(copy + prefix.len, s.ptr, s.len);
    copy[prefix.len + s.len] = '\0';
    return (authz_slice){copy, prefix.len + s.len};
}

int pol_provider_identity(const pol_provider *p, const authz_jwt *jwt, authz_arena *arena,
                          authz_slice *username, authz_slice *groups, authz_status *status)
{
    const authz_json *v = pol_claim_lookup(jwt->payload, p->username_claim);
    authz_slice name;
    if (!v)
        return authz_status_set(status, AUTHZ_REASON_MISSING_CLAIM, "token has no username claim %.*s",
                                shown(p->username_claim), p->username_claim.ptr);
    if (!authz_json_string(v, &name))
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "username claim %.*s is not a string",
                                shown(p->username_claim), p->username_claim.ptr);
    const char *problem = text_problem(name, false);
    if (problem)
        return authz_status_set(status, AUTHZ_REASON_MALFORMED_TOKEN, "username claim %.*s %s",
                                shown(p->username_claim), p->username_claim.ptr, problem);
    char buf[POL_MAX_GROUPS_BYTES];
    size_t used = 0;
    if (join_groups(p, jwt, buf, &used, status) != 0)
        return -1;
    *username = arena_join(arena, p->username_prefix, name);
    *groups = arena_join(arena, (authz_slice){"", 0}, (authz_slice){buf, used});
    if (!username->ptr || !groups->ptr)
        return authz_status_set(status, AUTHZ_REASON_INTERNAL_ERROR, "out of memory copying the identity");
    if (authz_slice_has_prefix(*username, AUTHZ_SLICE_LIT("system:")))
        return authz_status_set(status, AUTHZ_REASON_CLAIM_MISMATCH,
                                "claim %.*s: username %.*s starts with system:, which only Kubernetes "
                                "identities carry",
                                shown(p->username_claim), p->username_claim.ptr, shown(*username),
                                username->ptr);
    return authz_status_ok(status);
}

bool pol_groups_contain(authz_slice groups, authz_slice group)
{
    size_t start = 0;
    for (size_t i = 0; i <= groups.len; i++) {
        if (i < groups.len && groups.ptr[i] != ',')
            continue;
        if (i - start == group.len && i > start && memcmp(groups.ptr + start, group.ptr, group.len) == 0)
            return true;
        start = i + 1;
    }
    return false;
}

bool pol_provider_accepts(const pol_provider *provider, size_t cluster)
{
    for (size_t i = 0; i < provider->cluster_count; i++) {
        if (provider->clusters[i] == cluster)
            return true;
    }
    return false;
}
