#include "pol_lint.h"

#include <stdio.h>
#include <string.h>

#include "authz_cidr.h"

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

const char *pol_lint_issuer_problem(authz_slice issuer)
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

static bool index_in(const size_t *list, size_t count, size_t value)
{
    for (size_t i = 0; i < count; i++) {
        if (list[i] == value)
            return true;
    }
    return false;
}

static bool slice_in(const authz_slice *list, size_t count, authz_slice value)
{
    for (size_t i = 0; i < count; i++) {
        if (authz_slice_eq(list[i], value))
            return true;
    }
    return false;
}

bool pol_lint_rule_covers(const pol_rule *earlier, const pol_rule *later)
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
    if (!authz_slice_has_prefix(later->path_prefix, earlier->path_prefix))
        return false;
    if (earlier->method_count > 0) {
        if (later->method_count == 0)
            return false;
        for (size_t i = 0; i < later->method_count; i++) {
            if (!slice_in(earlier->methods, earlier->method_count, later->methods[i]))
                return false;
        }
    }
    return true;
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
