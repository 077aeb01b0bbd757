#include "pol_rule.h"

#include "pol_provider.h"

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool has_prefix_ignoring_case(authz_slice s, authz_slice prefix)
{
    if (s.len < prefix.len)
        return false;
    for (size_t i = 0; i < prefix.len; i++) {
        if (ascii_lower((unsigned char)s.ptr[i]) != ascii_lower((unsigned char)prefix.ptr[i]))
            return false;
    }
    return true;
}

static bool slice_in(const authz_slice *list, size_t count, authz_slice s)
{
    for (size_t i = 0; i < count; i++) {
        if (authz_slice_eq(list[i], s))
            return true;
    }
    return false;
}

static bool headers_hold(const pol_rule *rule, const pol_header_value *headers)
{
    for (size_t i = 0; i < rule->header_count; i++) {
        const pol_header_condition *cond = &rule->headers[i];
        if (!headers || headers[cond->header].count == 0)
            return false;
        if (cond->value_count > 0 && !slice_in(cond->values, cond->value_count, headers[cond->header].value))
            return false;
    }
    return true;
}

bool pol_rule_selects(const pol_rule *rule, const pol_rule_request *req)
{
    if (rule->cluster_count > 0) {
        bool listed = false;
        for (size_t i = 0; i < rule->cluster_count && !listed; i++)
            listed = rule->clusters[i] == req->cluster_index;
        if (!listed)
            return false;
    }
    bool prefixed = rule->ignore_case ? has_prefix_ignoring_case(req->path, rule->path_prefix)
                                      : authz_slice_has_prefix(req->path, rule->path_prefix);
    if (!prefixed)
        return false;
    if (rule->method_count > 0 && !slice_in(rule->methods, rule->method_count, req->method))
        return false;
    return headers_hold(rule, req->headers);
}

const pol_rule *pol_rule_find(const pol_snapshot *snap, const pol_rule_request *req)
{
    for (size_t i = 0; i < snap->rule_count; i++) {
        if (pol_rule_selects(&snap->rules[i], req))
            return &snap->rules[i];
    }
    return NULL;
}

/* Which kinds of token a rule's subject conditions admit: one that names
 * only user conditions admits no service account, and the reverse. */
static bool names_service_accounts(const pol_rule *rule)
{
    return rule->namespace_count > 0 || rule->service_account_count > 0;
}

static bool names_users(const pol_rule *rule)
{
    return rule->user_count > 0 || rule->group_count > 0;
}

bool pol_rule_allows_user(const pol_rule *rule, authz_slice username, authz_slice groups)
{
    if (names_service_accounts(rule) && !names_users(rule))
        return false;
    if (rule->user_count > 0 && !slice_in(rule->users, rule->user_count, username))
        return false;
    bool member = rule->group_count == 0;
    for (size_t i = 0; i < rule->group_count && !member; i++)
        member = pol_groups_contain(groups, rule->groups[i]);
    return member;
}

bool pol_rule_allows_identity(const pol_rule *rule, authz_slice namespace_name, authz_slice service_account)
{
    if (names_users(rule) && !names_service_accounts(rule))
        return false;
    if (rule->namespace_count > 0 && !slice_in(rule->namespaces, rule->namespace_count, namespace_name))
        return false;
    if (rule->service_account_count == 0)
        return true;
    /* Compare "ns:sa" piecewise: no buffer, and a ':' inside either part
     * cannot forge a match because configured entries hold exactly one. */
    for (size_t i = 0; i < rule->service_account_count; i++) {
        authz_slice entry = rule->service_accounts[i];
        if (entry.len != namespace_name.len + 1 + service_account.len)
            continue;
        if (authz_slice_has_prefix(entry, namespace_name) && entry.ptr[namespace_name.len] == ':' &&
            memcmp(entry.ptr + namespace_name.len + 1, service_account.ptr, service_account.len) == 0)
            return true;
    }
    return false;
}

static bool index_in(const size_t *list, size_t count, size_t value)
{
    for (size_t i = 0; i < count; i++) {
        if (list[i] == value)
            return true;
    }
    return false;
}

/* Every request |later| admits by its header conditions, |earlier|'s
 * admit too: each earlier condition has a later one on the same header
 * that is at least as strict. */
static bool headers_cover(const pol_rule *earlier, const pol_rule *later)
{
    for (size_t i = 0; i < earlier->header_count; i++) {
        const pol_header_condition *e = &earlier->headers[i];
        bool implied = false;
        for (size_t j = 0; j < later->header_count && !implied; j++) {
            const pol_header_condition *l = &later->headers[j];
            if (l->header != e->header)
                continue;
            if (e->value_count == 0) {
                implied = true;
            } else if (l->value_count > 0) {
                implied = true;
                for (size_t k = 0; k < l->value_count && implied; k++)
                    implied = slice_in(e->values, e->value_count, l->values[k]);
            }
        }
        if (!implied)
            return false;
    }
    return true;
}

bool pol_rule_covers(const pol_rule *earlier, const pol_rule *later)
{
    /* An empty list selects everything: only an equally empty list of the
     * earlier rule covers it. */
    if (earlier->cluster_count > 0) {
        if (later->cluster_count == 0)
            return false;
        for (size_t i = 0; i < later->cluster_count; i++) {
            if (!index_in(earlier->clusters, earlier->cluster_count, later->clusters[i]))
                return false;
        }
    }
    /* A case-insensitive later rule also selects case variants of its
     * prefix, which a case-sensitive earlier one does not. */
    if (later->ignore_case && !earlier->ignore_case)
        return false;
    if (earlier->ignore_case ? !has_prefix_ignoring_case(later->path_prefix, earlier->path_prefix)
                             : !authz_slice_has_prefix(later->path_prefix, earlier->path_prefix))
        return false;
    if (earlier->method_count > 0) {
        if (later->method_count == 0)
            return false;
        for (size_t i = 0; i < later->method_count; i++) {
            if (!slice_in(earlier->methods, earlier->method_count, later->methods[i]))
                return false;
        }
    }
    return headers_cover(earlier, later);
}
