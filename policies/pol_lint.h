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

/* Why |issuer| is unlikely to equal the iss kube-apiserver writes
 * (--service-account-issuer, compared byte for byte): not an https URL, or
 * a trailing '/'. NULL when it looks right; else static text. */
const char *pol_lint_issuer_problem(authz_slice issuer);

/* True when |earlier| selects every request that |later| selects, so
 * |later| can never decide: earlier's clusters include later's (or earlier
 * lists none), earlier's path_prefix is a prefix of later's, and earlier's
 * methods include later's (or earlier lists none). Conservative: a
 * selection condition this function does not know makes it false. */
bool pol_lint_rule_covers(const pol_rule *earlier, const pol_rule *later);

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
