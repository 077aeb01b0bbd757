/* pol_cfg: the config loader's context, its error and warning reports, and
 * the typed JSON readers every section loader (pol_config, pol_keysrc,
 * pol_cluster_load, pol_provider_load, pol_rule_load) uses. Private to the
 * loader.
 *
 * Every reader names what it reports by the JSON path of the value
 * ("clusters[1].source_cidrs[0]") and quotes the value: a report reads
 * "<file>: <path>: <problem> (<value>)[; <hint>]". A reader that fails
 * reports and leaves its output alone, so loading goes on and collects
 * further errors; the caller checks ctx->errors at the end. */
#ifndef POL_CFG_H
#define POL_CFG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authz_cidr.h"
#include "authz_slice.h"

#define POL_CFG_LIST_MAX 4096u      /* items in any one list of the config */
#define POL_CFG_NAME_MAX_BYTES 253u /* cluster/rule names and hosts (DNS name length) */
#define POL_CFG_PATH_TEXT_MAX 256u  /* a JSON path in a message */
#define POL_CFG_VALUE_TEXT_MAX 80u  /* a value quoted in a message */
#define POL_CFG_MAX_HINTED_KEYS 32u

/* The state of one load, on the caller's stack. */
typedef struct pol_cfg_ctx {
    const char *file; /* the config path, for messages */
    char *dir;        /* owned: folder of the config file, for relative key paths */
    char *err;        /* caller's buffer */
    size_t err_size;
    size_t err_used;
    size_t errors;
    authz_slice *warnings; /* owned until handed to the snapshot */
    size_t warning_count;  /* at most 100 (pol_cfg_warn): further ones are dropped */
    /* Known keys an unknown key was probably meant to be, with their
     * object: their absence is the same mistake, not a second error. */
    struct {
        const json_t *obj;
        const char *key;
    } hinted[POL_CFG_MAX_HINTED_KEYS];
    size_t hinted_count;
    /* Some cluster has no valid name: a rule naming it is a follow-on. */
    bool cluster_names_incomplete;
} pol_cfg_ctx;

/* A validator for one string value: returns NULL when fine, else the problem. */
typedef const char *(*pol_cfg_string_check)(authz_slice s);

/* ---- reports ---------------------------------------------------------- */

/* Appends |text| to the caller's error buffer, truncated to what fits and
 * with bytes other than newline and printable ASCII shown as '?'. Does not
 * count an error: the caller does (ctx->errors). */
void pol_cfg_err_append(pol_cfg_ctx *ctx, const char *text);

/* Records the error "<file>: <path>: <problem> (<value>)"; |value| may be
 * NULL, |path| "" names the top level. Counts every error; the first 20 are
 * written to the error buffer, then "(further errors not shown)". */
void pol_cfg_fail(pol_cfg_ctx *ctx, const char *path, const json_t *value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* As pol_cfg_fail, with "; <hint>" after the value: what probably fixes it
 * (|hint| may be NULL). */
void pol_cfg_fail_hint(pol_cfg_ctx *ctx, const char *path, const json_t *value, const char *hint,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Records a warning, in the same form as an error: the config loads, and
 * `tokengate check` shows it (--strict makes it fatal). At most 100 are
 * kept (ctx->warnings, owned by |ctx|). Out of memory loses the warning,
 * never the load. */
void pol_cfg_warn(pol_cfg_ctx *ctx, const char *path, const json_t *value, const char *hint, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));

/* Writes the JSON path "<parent>.<key>" (just |key| at the top level, when
 * |parent| is "") into |out|. */
void pol_cfg_path_key(char out[POL_CFG_PATH_TEXT_MAX], const char *parent, const char *key);

/* Writes the JSON path "<parent>[<index>]" into |out|. */
void pol_cfg_path_index(char out[POL_CFG_PATH_TEXT_MAX], const char *parent, size_t index);

/* ---- files ------------------------------------------------------------ */

/* Reads at most |limit| bytes of the regular file |path| into a
 * NUL-terminated malloc'd buffer *out (the caller frees it) of *out_len
 * bytes. Returns 0, or -1 with a reason in |why| (|why_size| bytes). */
int pol_cfg_read_file(const char *path, size_t limit, char **out, size_t *out_len, char *why,
                      size_t why_size);

/* |name| relative to the config folder (ctx->dir) unless absolute, as a
 * malloc'd string the caller frees. NULL when longer than 4096 bytes or out
 * of memory. */
char *pol_cfg_resolve_path(const pol_cfg_ctx *ctx, const char *name);

/* ---- typed readers ---------------------------------------------------- */

/* Reports every member of |obj| (at |parent|) not in the NULL-terminated
 * |allowed|, naming the known key it is probably a typo of. Such a known
 * key, when absent, is remembered so its absence is not reported again
 * (pol_cfg_missing). */
void pol_cfg_check_keys(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *const *allowed);

/* Reports required |key| of |obj| (at |path|) as missing, unless an
 * unknown key of |obj| was already reported as its probable typo. */
void pol_cfg_missing(pol_cfg_ctx *ctx, const json_t *obj, const char *path, const char *key);

/* True when |value| is an object; else reports it at |path|. */
bool pol_cfg_is_object(pol_cfg_ctx *ctx, const json_t *value, const char *path);

/* The integer |key| of |obj| into *out when it lies in [min, max]; else
 * reported. Leaves *out alone when |key| is absent or invalid. */
void pol_cfg_get_int(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key, int64_t min,
                     int64_t max, int64_t *out);

/* As pol_cfg_get_int, into a size_t (|min| >= 0). */
void pol_cfg_get_size(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key, int64_t min,
                      int64_t max, size_t *out);

/* The boolean |key| of |obj| into *out; left alone when absent or invalid. */
void pol_cfg_get_bool(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key, bool *out);

/* Sets *out to the index of the string |key| of |obj| in the NULL-terminated
 * |choices|; leaves *out alone when |key| is absent, reports any other
 * value. */
void pol_cfg_get_choice(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                        const char *const *choices, int *out);

/* An owned, NUL-terminated copy of |len| bytes of |s| into *out, lower-cased
 * (ASCII) when |lower|. Returns false when out of memory (*out untouched). */
bool pol_cfg_dup_slice(const char *s, size_t len, bool lower, authz_slice *out);

/* Checks that |v| is a non-empty string without NUL passing |check| (may be
 * NULL). Returns true and sets *s (borrowed from |v|) when so; else reports
 * at |path| and returns false. */
bool pol_cfg_string_value(pol_cfg_ctx *ctx, const json_t *v, const char *path, pol_cfg_string_check check,
                          authz_slice *s);

/* Copies the string |key| of |obj| (checked as pol_cfg_string_value does)
 * into *out, freeing what *out held. Absent: an error when |required|, else
 * *out is left alone. */
void pol_cfg_get_string(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                        bool required, pol_cfg_string_check check, authz_slice *out);

/* "mode" of a rule or cluster: *shadow is true for "shadow", false for
 * "enforce"; absent or invalid leaves it alone. */
void pol_cfg_get_mode(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, bool *shadow);

/* The array |key| of |obj| (borrowed), its path written to |path|: NULL
 * when absent (an error when |required|) or invalid (not an array, empty
 * unless |allow_empty|, more than |max| items), each reported. */
const json_t *pol_cfg_get_array(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                                bool required, bool allow_empty, size_t max,
                                char path[POL_CFG_PATH_TEXT_MAX]);

/* A list of at most POL_CFG_LIST_MAX strings, each checked by |check|,
 * copied (lower-cased when asked) into an owned array *out of *count valid
 * items; invalid items are reported and left out. Left alone when absent
 * (an error when |required|) or not a valid array. */
void pol_cfg_get_string_list(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                             bool required, bool lower, pol_cfg_string_check check, authz_slice **out,
                             size_t *count);

/* As pol_cfg_get_string_list for a list of CIDRs into an owned array of
 * parsed ones; one with host bits set is an error (with the network as a
 * hint), one without a prefix length a warning. Never required. */
void pol_cfg_get_cidr_list(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                           authz_cidr **out, size_t *count);

/* The file name |key| of |obj|, resolved against the config folder into
 * *out (owned). Absent: an error when |required|. The file itself is read
 * by whoever uses it (server/srv_tls for TLS material). */
void pol_cfg_get_file_path(pol_cfg_ctx *ctx, const json_t *obj, const char *parent, const char *key,
                           bool required, authz_slice *out);

#endif
