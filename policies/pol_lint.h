/* pol_lint: what a config check looks for beyond validity.
 *
 * Likely mistakes that deserve a warning (an issuer kube-apiserver would not
 * write, a rule an earlier one hides) and hints that turn an error into its
 * fix (a typo of a known key, a CIDR with host bits set, a key file of the
 * other format). Pure functions of values and the loaded model: pol_config
 * reports what they find, with file and JSON path. */
#ifndef POL_LINT_H
#define POL_LINT_H

#include <stdbool.h>
#include <stddef.h>

#include "authz_slice.h"
#include "pol_snapshot.h"

/* The entry of the NULL-terminated |known| closest to |word| when it is
 * near enough to be a typo: at most 2 edits (insert, delete, substitute,
 * swap two neighbours) and fewer than half of |word|'s length; the first
 * of equally close entries. NULL when none is. Borrows everything. */
const char *pol_lint_closest(const char *word, const char *const *known);

/* One finding, for pol_config to report like its own errors. Borrowed
 * for the duration of the call. */
typedef struct pol_lint_finding {
    const char *path;    /* JSON path, e.g. "clusters[1].issuer" */
    const char *problem; /* what is wrong */
    const char *hint;    /* what probably fixes it; NULL: none */
    authz_slice value;   /* the value to quote; ptr NULL: none */
} pol_lint_finding;

typedef void (*pol_lint_report)(void *ctx, const pol_lint_finding *finding);

/* One key, one cluster: the key that verifies a token says which cluster
 * (or identity provider) issued it, so the same public key material
 * (compared with authz_key_same_material: any format, any kid) in two
 * clusters, two providers, or a cluster and a provider is a mistake. Calls
 * |report| once per key and owner, at the later place (providers come
 * after clusters), naming the earlier one; the same key twice within one
 * cluster or provider is fine.
 * O(n log n) in the number of keys. Returns 0, or -1 out of memory. */
int pol_lint_shared_keys(const pol_snapshot *snap, pol_lint_report report, void *ctx);

/* Calls |report| for each likely mistake of a loaded |snap|, in config
 * order: an issuer that is not an https URL or ends with '/' (iss is
 * compared byte for byte with --service-account-issuer); a cluster without
 * source_cidrs; a rule that can never match because an earlier rule
 * selects every request it selects (pol_rule_covers: only when certain). */
void pol_lint_warnings(const pol_snapshot *snap, pol_lint_report report, void *ctx);

/* For a CIDR refused only because host bits are set ("10.20.1.0/16"):
 * writes the network it probably means ("10.20.0.0/16") into |buf| of
 * |size| bytes (64 is enough) and returns true. False otherwise. */
bool pol_lint_cidr_network(authz_slice text, char *buf, size_t size);

typedef enum pol_lint_file_kind {
    POL_LINT_FILE_OTHER = 0,
    POL_LINT_FILE_PEM,  /* begins with "-----BEGIN " */
    POL_LINT_FILE_JSON, /* begins with '{' */
} pol_lint_file_kind;

/* What a key file that failed to load looks like, judged by its first
 * non-blank bytes, for a hint naming the right config key. */
pol_lint_file_kind pol_lint_key_file_kind(const char *data, size_t len);

#endif
