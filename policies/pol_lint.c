#include "pol_lint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_cidr.h"
#include "pol_rule.h"

#define LINT_WORD_MAX 64u /* longer words get no suggestion (and bound the table) */
#define LINT_MAX_EDITS 2u

/* Optimal string alignment distance of |a| and |b| (both at most
 * LINT_WORD_MAX bytes): insertions, deletions, substitutions and swaps of
 * two neighbours each cost one, so "isuser" is one edit from "issuer". */
static size_t edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t d[LINT_WORD_MAX + 1][LINT_WORD_MAX + 1];
    for (size_t i = 0; i <= alen; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= blen; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= alen; i++) {
        for (size_t j = 1; j <= blen; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[alen][blen];
}

const char *pol_lint_closest(const char *word, const char *const *known)
{
    size_t word_len = strlen(word);
    if (word_len == 0 || word_len > LINT_WORD_MAX)
        return NULL;
    const char *best = NULL;
    size_t best_distance = LINT_MAX_EDITS + 1;
    for (size_t i = 0; known[i]; i++) {
        size_t len = strlen(known[i]);
        if (len > LINT_WORD_MAX)
            continue;
        size_t distance = edit_distance(word, word_len, known[i], len);
        if (distance < best_distance && 2 * distance < word_len) {
            best = known[i];
            best_distance = distance;
        }
    }
    return best;
}

/* Why |issuer| is unlikely to equal the iss kube-apiserver writes; NULL
 * when it looks right. */
static const char *issuer_problem(authz_slice issuer)
{
    static const char scheme[] = "https://";
    authz_slice https = {scheme, sizeof scheme - 1};
    if (!authz_slice_has_prefix(issuer, https) || issuer.len == https.len || issuer.ptr[https.len] == '/')
        return "is not an https URL; kube-apiserver's --service-account-issuer usually is one";
    if (issuer.ptr[issuer.len - 1] == '/')
        return "ends with '/'; iss is compared byte for byte, so it must be written exactly as "
               "--service-account-issuer";
    return NULL;
}

bool pol_lint_cidr_network(authz_slice text, char *buf, size_t size)
{
    const char *slash = text.len > 0 ? memchr(text.ptr, '/', text.len) : NULL;
    if (!slash)
        return false;
    authz_slice addr = {text.ptr, (size_t)(slash - text.ptr)};
    authz_slice len_text = {slash + 1, text.len - addr.len - 1};
    if (len_text.len == 0 || len_text.len > 3 || (len_text.len > 1 && len_text.ptr[0] == '0'))
        return false;
    unsigned prefix = 0;
    for (size_t i = 0; i < len_text.len; i++) {
        if (len_text.ptr[i] < '0' || len_text.ptr[i] > '9')
            return false;
        prefix = prefix * 10 + (unsigned)(len_text.ptr[i] - '0');
    }
    authz_ip ip;
    if (authz_ip_parse(addr, &ip) != 0)
        return false;
    unsigned bits = ip.family == 4 ? 32u : 128u;
    if (prefix > bits)
        return false;
    bool host_bits = false;
    for (unsigned byte = 0; byte < bits / 8; byte++) {
        unsigned keep = prefix >= (byte + 1) * 8 ? 8 : (prefix > byte * 8 ? prefix - byte * 8 : 0);
        uint8_t mask = (uint8_t)(keep == 0 ? 0 : (0xffu << (8 - keep)) & 0xffu);
        host_bits = host_bits || (ip.bytes[byte] & (uint8_t)~mask) != 0;
        ip.bytes[byte] &= mask;
    }
    if (!host_bits)
        return false;
    char net[64];
    authz_ip_format(&ip, net, sizeof net);
    int n = snprintf(buf, size, "%s/%u", net, prefix);
    return n > 0 && (size_t)n < size;
}

pol_lint_file_kind pol_lint_key_file_kind(const char *data, size_t len)
{
    static const char pem[] = "-----BEGIN ";
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    if (len - i >= sizeof pem - 1 && memcmp(data + i, pem, sizeof pem - 1) == 0)
        return POL_LINT_FILE_PEM;
    if (i < len && data[i] == '{')
        return POL_LINT_FILE_JSON;
    return POL_LINT_FILE_OTHER;
}

/* One key per cluster or provider entry, for sorting by key material.
 * |owner| counts clusters first, then identity providers. */
typedef struct key_ref {
    const authz_key *key;
    size_t owner;
    size_t index;
} key_ref;

static int key_ref_order(const void *pa, const void *pb)
{
    const key_ref *a = pa, *b = pb;
    int by_material = memcmp(a->key->material, b->key->material, sizeof a->key->material);
    if (by_material != 0)
        return by_material;
    if (a->owner != b->owner)
        return a->owner < b->owner ? -1 : 1;
    return a->index < b->index ? -1 : (a->index > b->index ? 1 : 0);
}

/* What the key of |ref| belongs to, for messages: its kind, name and file. */
static const char *key_owner(const pol_snapshot *snap, const key_ref *ref, authz_slice *name,
                             const pol_key_file **file)
{
    if (ref->owner < snap->cluster_count) {
        const pol_cluster *c = &snap->clusters[ref->owner];
        *name = c->name;
        *file = pol_cluster_key_file(c, ref->index);
        return "cluster";
    }
    const pol_provider *p = &snap->providers[ref->owner - snap->cluster_count];
    *name = p->name;
    *file = pol_provider_key_file(p, ref->index);
    return "identity provider";
}

/* Reports |dup| as a key of |owner|'s cluster or provider too, naming
 * both places. */
static void report_shared_key(const pol_snapshot *snap, const key_ref *owner, const key_ref *dup,
                              pol_lint_report report, void *ctx)
{
    authz_slice oname, dname;
    const pol_key_file *of, *df;
    const char *okind = key_owner(snap, owner, &oname, &of);
    key_owner(snap, dup, &dname, &df);
    if (!of || !df)
        return;
    char problem[512];
    snprintf(problem, sizeof problem,
             "key kid %.64s (%s) is also a key of %s %.64s, from %s (%.128s, kid %.64s): a key may belong "
             "to one cluster%s only",
             dup->key->kid, authz_key_describe(dup->key), okind, oname.ptr ? oname.ptr : "?",
             of->json_path.ptr, of->name.ptr, owner->key->kid,
             dup->owner < snap->cluster_count ? "" : " or identity provider");
    pol_lint_finding finding = {df->json_path.ptr, problem, NULL, df->name};
    report(ctx, &finding);
}

int pol_lint_shared_keys(const pol_snapshot *snap, pol_lint_report report, void *ctx)
{
    size_t total = 0;
    size_t owners = snap->cluster_count + snap->provider_count;
    for (size_t i = 0; i < owners; i++)
        total += i < snap->cluster_count ? snap->clusters[i].keys.count
                                         : snap->providers[i - snap->cluster_count].keys.count;
    if (total < 2)
        return 0;
    key_ref *refs = calloc(total, sizeof *refs);
    if (!refs)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < owners; i++) {
        const authz_keyset *keys = i < snap->cluster_count ? &snap->clusters[i].keys
                                                           : &snap->providers[i - snap->cluster_count].keys;
        for (size_t k = 0; k < keys->count; k++)
            refs[n++] = (key_ref){&keys->keys[k], i, k};
    }
    qsort(refs, n, sizeof *refs, key_ref_order);
    for (size_t run = 0; run < n;) {
        size_t end = run + 1;
        while (end < n && authz_key_same_material(refs[run].key, refs[end].key))
            end++;
        /* Within a run owners ascend: report the first key of each owner
         * after the first one. */
        for (size_t i = run + 1; i < end; i++) {
            if (refs[i].owner != refs[run].owner && refs[i].owner != refs[i - 1].owner)
                report_shared_key(snap, &refs[run], &refs[i], report, ctx);
        }
        run = end;
    }
    free(refs);
    return 0;
}

void pol_lint_warnings(const pol_snapshot *snap, pol_lint_report report, void *ctx)
{
    char path[64];
    char problem[512];
    for (size_t i = 0; i < snap->cluster_count; i++) {
        const pol_cluster *c = &snap->clusters[i];
        const char *why = issuer_problem(c->issuer);
        if (why) {
            snprintf(path, sizeof path, "clusters[%zu].issuer", i);
            snprintf(problem, sizeof problem, "issuer %s", why);
            pol_lint_finding finding = {path, problem, NULL, c->issuer};
            report(ctx, &finding);
        }
        if (c->source_cidr_count == 0) {
            snprintf(path, sizeof path, "clusters[%zu]", i);
            snprintf(problem, sizeof problem,
                     "cluster %.64s has no source_cidrs: its tokens are accepted from any address",
                     c->name.ptr);
            pol_lint_finding finding = {
                path, problem, "add source_cidrs with the networks its workloads call from", {NULL, 0}};
            report(ctx, &finding);
        }
    }
    for (size_t i = 0; i < snap->rule_count; i++) {
        for (size_t j = 0; j < i; j++) {
            if (!pol_rule_covers(&snap->rules[j], &snap->rules[i]))
                continue;
            snprintf(path, sizeof path, "rules[%zu]", i);
            snprintf(problem, sizeof problem,
                     "rule %.64s can never match: rules[%zu] (%.64s) comes first and selects every request "
                     "it selects (clusters, path_prefix, methods)",
                     snap->rules[i].name.ptr, j, snap->rules[j].name.ptr);
            pol_lint_finding finding = {
                path, problem, "move it before the earlier rule, or narrow the earlier rule", {NULL, 0}};
            report(ctx, &finding);
            break;
        }
    }
}
