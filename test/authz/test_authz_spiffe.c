/* authz_spiffe: one spelling per workload identity. Every ID below that a
 * lenient URI parser would normalize into spiffe://td/ns/ns1/sa/sa1 (case,
 * dot segments, percent-encoding, slashes) must be refused, and the URI SAN
 * of a certificate must be read only from exactly one certificate with
 * exactly one URI SAN. Certificates are generated at test time. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_spiffe.h"
#include "tg_testkeys.h"

static authz_slice s(const char *text)
{
    return authz_slice_from_cstr(text);
}

static void expect_id(const char *text, const char *td, const char *ns, const char *sa)
{
    authz_spiffe_id id;
    const char *why = authz_spiffe_parse(s(text), &id);
    cr_assert_null(why, "%s: %s", text, why);
    cr_assert(authz_slice_eq_cstr(id.trust_domain, td), "%s: trust domain", text);
    cr_assert(authz_slice_eq_cstr(id.namespace_name, ns), "%s: namespace", text);
    cr_assert(authz_slice_eq_cstr(id.service_account, sa), "%s: service account", text);
}

static void expect_refused(const char *text)
{
    authz_spiffe_id id;
    cr_assert_not_null(authz_spiffe_parse(s(text), &id), "must be refused: %s", text);
}

Test(spiffe, workload_ids)
{
    expect_id("spiffe://cluster.local/ns/shop/sa/checkout", "cluster.local", "shop", "checkout");
    expect_id("spiffe://cluster-a.local/ns/kube-system/sa/default", "cluster-a.local", "kube-system", "default");
    expect_id("spiffe://td_1/ns/a.b/sa/A-Z_9", "td_1", "a.b", "A-Z_9");
    expect_id("spiffe://x/ns/...dots/sa/..x", "x", "...dots", "..x");
}

Test(spiffe, tricky_ids_are_refused)
{
    static const char *const bad[] = {
        "",
        "spiffe://",
        "spiffe://cluster.local",
        "spiffe://cluster.local/",
        "spiffe:///ns/shop/sa/checkout",
        "SPIFFE://cluster.local/ns/shop/sa/checkout",
        "Spiffe://cluster.local/ns/shop/sa/checkout",
        "spiffe:/cluster.local/ns/shop/sa/checkout",
        "spiffe:cluster.local/ns/shop/sa/checkout",
        "https://cluster.local/ns/shop/sa/checkout",
        " spiffe://cluster.local/ns/shop/sa/checkout",
        "spiffe://cluster.local/ns/shop/sa/checkout ",
        "spiffe://Cluster.Local/ns/shop/sa/checkout",
        "spiffe://cluster.local:443/ns/shop/sa/checkout",
        "spiffe://user@cluster.local/ns/shop/sa/checkout",
        "spiffe://cluster%2Elocal/ns/shop/sa/checkout",
        "spiffe://cluster.local/ns/shop/sa/checkout/",
        "spiffe://cluster.local/ns/shop/sa/checkout/extra",
        "spiffe://cluster.local/ns/shop/sa/checkout/ns/x/sa/y",
        "spiffe://cluster.local/ns/shop/sa",
        "spiffe://cluster.local/ns/shop",
        "spiffe://cluster.local/sa/checkout/ns/shop",
        "spiffe://cluster.local/NS/shop/SA/checkout",
        "spiffe://cluster.local//ns/shop/sa/checkout",
        "spiffe://cluster.local/ns//shop/sa/checkout",
        "spiffe://cluster.local/ns/shop//sa/checkout",
        "spiffe://cluster.local/ns/shop%2Fsa/sa/checkout",
        "spiffe://cluster.local/ns/shop%2fsa/sa/checkout",
        "spiffe://cluster.local/ns/sh%6Fp/sa/checkout",
        "spiffe://cluster.local/ns/./sa/checkout",
        "spiffe://cluster.local/ns/../sa/checkout",
        "spiffe://cluster.local/ns/shop/sa/..",
        "spiffe://cluster.local/ns/x/../shop/sa/checkout",
        "spiffe://cluster.local/./ns/shop/sa/checkout",
        "spiffe://cluster.local/ns/shop/sa/checkout?x=1",
        "spiffe://cluster.local/ns/shop/sa/checkout#frag",
        "spiffe://cluster.local/ns/shop/sa/check\\out",
        "spiffe://cluster.local/ns/shop/sa/check out",
        "spiffe://cluster.local/ns/shop/sa/ch\xc3\xa9" "ckout",
        "spiffe://cluster.local/ns/shop/sa/check:out",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(bad[i]);
}

Test(spiffe, embedded_nul_is_refused)
{
    static const char id[] = "spiffe://cluster.local/ns/shop/sa/check\0out";
    authz_spiffe_id out;
    cr_assert_not_null(authz_spiffe_parse((authz_slice){id, sizeof id - 1}, &out));
}

Test(spiffe, length_bounds)
{
    static char id[12000];
    const char *head = "spiffe://cluster.local/ns/shop/sa/";
    size_t head_len = strlen(head);
    authz_spiffe_id out;
    memcpy(id, head, head_len);
    /* Exactly 2048 bytes: accepted; one more, or 10 KB: refused. */
    memset(id + head_len, 'a', AUTHZ_SPIFFE_ID_MAX - head_len);
    cr_assert_null(authz_spiffe_parse((authz_slice){id, AUTHZ_SPIFFE_ID_MAX}, &out));
    cr_assert_eq(out.service_account.len, AUTHZ_SPIFFE_ID_MAX - head_len);
    memset(id + head_len, 'a', sizeof id - head_len);
    cr_assert_not_null(authz_spiffe_parse((authz_slice){id, AUTHZ_SPIFFE_ID_MAX + 1}, &out));
    cr_assert_not_null(authz_spiffe_parse((authz_slice){id, 10 * 1024}, &out));
    /* A 255-byte trust domain is the limit. */
    char td_id[400];
    int n = snprintf(td_id, sizeof td_id, "spiffe://%.*s/ns/a/sa/b", 255,
                     "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt"
                     "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt"
                     "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt");
    cr_assert_null(authz_spiffe_parse((authz_slice){td_id, (size_t)n}, &out));
    cr_assert(authz_spiffe_trust_domain_valid(out.trust_domain));
    cr_assert_not(authz_spiffe_trust_domain_valid((authz_slice){td_id + 9, 256}), "256 bytes with '/'");
}

Test(spiffe, trust_domain_charset)
{
    cr_assert(authz_spiffe_trust_domain_valid(s("cluster.local")));
    cr_assert(authz_spiffe_trust_domain_valid(s("a-b_c.9")));
    cr_assert_not(authz_spiffe_trust_domain_valid(s("")));
    cr_assert_not(authz_spiffe_trust_domain_valid(s("Cluster.local")));
    cr_assert_not(authz_spiffe_trust_domain_valid(s("cluster.local:8080")));
    cr_assert_not(authz_spiffe_trust_domain_valid(s("a/b")));
    cr_assert_not(authz_spiffe_trust_domain_valid(s("a%2eb")));
}

/* ---- certificates ---------------------------------------------------------- */

static EVP_PKEY *key;
static authz_arena arena;

static void setup(void)
{
    key = tg_keygen("p256");
    cr_assert_not_null(key);
    authz_arena_init(&arena, NULL, 0, 1024 * 1024);
}

static void teardown(void)
{
    authz_arena_free(&arena);
    EVP_PKEY_free(key);
}

/* |pem| percent-encoded as Envoy does: everything but unreserved bytes. */
static char *url_encode(const char *pem)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(pem);
    char *out = malloc(3 * len + 1);
    size_t n = 0;
    cr_assert_not_null(out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)pem[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~", c)) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return out;
}

static char *cert_with(const char *const *uris, size_t count)
{
    char *pem = tg_cert_pem_with_uris(key, uris, count);
    cr_assert_not_null(pem);
    return pem;
}

TestSuite(spiffe_cert, .init = setup, .fini = teardown);

Test(spiffe_cert, url_encoded_and_plain_pem)
{
    const char *uris[] = {"spiffe://cluster.local/ns/shop/sa/checkout"};
    char *pem = cert_with(uris, 1);
    char *encoded = url_encode(pem);
    authz_slice uri;
    const char *why = NULL;
    cr_assert(strchr(encoded, '\n') == NULL && strstr(encoded, "%0A"));
    cr_assert_eq(authz_spiffe_uri_san(s(encoded), &arena, &uri, &why), 0, "%s", why);
    cr_assert(authz_slice_eq_cstr(uri, uris[0]));
    cr_assert_eq(authz_spiffe_uri_san(s(pem), &arena, &uri, &why), 0, "%s", why);
    cr_assert(authz_slice_eq_cstr(uri, uris[0]));
    free(encoded);
    free(pem);
}

Test(spiffe_cert, exactly_one_uri_san)
{
    const char *two[] = {"spiffe://cluster.local/ns/shop/sa/checkout", "spiffe://cluster.local/ns/x/sa/y"};
    char *none = tg_cert_pem(key);
    char *both = cert_with(two, 2);
    authz_slice uri = {NULL, 0};
    const char *why = NULL;
    cr_assert_eq(authz_spiffe_uri_san(s(none), &arena, &uri, &why), -1);
    cr_assert_str_eq(why, "has no subjectAltName");
    cr_assert_eq(authz_spiffe_uri_san(s(both), &arena, &uri, &why), -1);
    cr_assert_str_eq(why, "has more than one URI SAN");
    free(none);
    free(both);
}

Test(spiffe_cert, not_one_certificate)
{
    const char *uris[] = {"spiffe://cluster.local/ns/shop/sa/checkout"};
    char *pem = cert_with(uris, 1);
    size_t len = strlen(pem);
    char *twice = malloc(2 * len + 1);
    cr_assert_not_null(twice);
    memcpy(twice, pem, len);
    memcpy(twice + len, pem, len + 1);
    authz_slice uri;
    const char *why = NULL;
    cr_assert_eq(authz_spiffe_uri_san(s(twice), &arena, &uri, &why), -1, "two certificates");
    cr_assert_eq(authz_spiffe_uri_san(s("not a certificate"), &arena, &uri, &why), -1);
    cr_assert_eq(authz_spiffe_uri_san(s("%zz"), &arena, &uri, &why), -1);
    cr_assert_str_eq(why, "has invalid percent-encoding");
    cr_assert_eq(authz_spiffe_uri_san(s("%4"), &arena, &uri, &why), -1);
    cr_assert_eq(authz_spiffe_uri_san(s(""), &arena, &uri, &why), -1);
    /* A corrupted body does not parse. */
    char *body = strchr(pem, '\n') + 20;
    *body = *body == 'A' ? 'B' : 'A';
    (void)authz_spiffe_uri_san(s(pem), &arena, &uri, &why);
    free(twice);
    free(pem);
}

Test(spiffe_cert, length_bound_before_decoding)
{
    size_t len = AUTHZ_SPIFFE_CERT_MAX + 1;
    char *big = malloc(len);
    cr_assert_not_null(big);
    memset(big, 'A', len);
    authz_slice uri;
    const char *why = NULL;
    authz_arena small;
    authz_arena_init(&small, NULL, 0, 1024);
    cr_assert_eq(authz_spiffe_uri_san((authz_slice){big, len}, &small, &uri, &why), -1);
    cr_assert_str_eq(why, "is longer than 65536 bytes");
    /* Within the bound but more than the arena holds: out of memory. */
    cr_assert_eq(authz_spiffe_uri_san((authz_slice){big, 4096}, &small, &uri, &why), -2);
    authz_arena_free(&small);
    free(big);
}
