/* pol_config: loading, defaults and every kind of error, with configs and
 * keys written into a fresh temporary folder per test. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pol_config.h"
#include "tg_testkeys.h"

static char dir[64];
static char err[8192];
static EVP_PKEY *key_a;
static EVP_PKEY *key_b;

static void write_file(const char *name, const char *text, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
}

static void write_text(const char *name, const char *text)
{
    write_file(name, text, strlen(text));
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/tg-polcfg-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char sub[128];
    snprintf(sub, sizeof sub, "%s/keys", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    key_a = tg_keygen("p256");
    key_b = tg_keygen("p384");
    cr_assert(key_a && key_b);
    tg_jwk_opts opts = {.kid = "a-1", .alg = "ES256", .use = "sig"};
    char *jwks = tg_jwks(&key_a, &opts, 1);
    char *pem = tg_public_pem(key_b);
    cr_assert(jwks && pem);
    write_text("keys/a.jwks.json", jwks);
    write_text("b.pem", pem);
    free(jwks);
    free(pem);
}

static void teardown(void)
{
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    char cmd[128];
    /* The folder is ours and freshly made; nothing else lives there. */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(pol_config, .init = setup, .fini = teardown);

/* Writes |json| as config.json and loads it. */
static pol_snapshot *load(const char *json)
{
    write_text("config.json", json);
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    pol_snapshot *snap = (pol_snapshot *)0x1;
    int rc = pol_config_load(path, &snap, err, sizeof err);
    if (rc == 0)
        cr_assert_not_null(snap);
    else
        cr_assert_null(snap, "snapshot must be NULL on failure");
    return snap;
}

/* Loads |json| expecting failure, and that the message holds |needle|. */
static void expect_error(const char *json, const char *needle)
{
    pol_snapshot *snap = load(json);
    cr_assert_null(snap, "config unexpectedly loaded");
    cr_assert(strstr(err, needle), "error %s\nlacks %s", err, needle);
    cr_assert(strstr(err, "config.json"), "error names no file: %s", err);
}

#define CLUSTER_A                                                                                            \
    "{\"name\":\"a\",\"issuer\":\"https://a\",\"audiences\":[\"api\"],\"jwks_file\":\"keys/a.jwks.json\"}"
#define CLUSTER_B                                                                                            \
    "{\"name\":\"b\",\"issuer\":\"https://b\",\"audiences\":[\"api\"],\"public_key_files\":[\"b.pem\"]}"

static bool slice_is(authz_slice s, const char *text)
{
    return authz_slice_eq_cstr(s, text);
}

Test(pol_config, full_config_values)
{
    EVP_PKEY *key_c = tg_keygen("p256");
    char *pem_c = tg_public_pem(key_c);
    cr_assert(key_c && pem_c);
    write_text("c.pem", pem_c);
    free(pem_c);
    EVP_PKEY_free(key_c);
    pol_snapshot *snap =
        load("{\"listen\":\"[::1]:8081\",\"workers\":4,\"clock_skew_seconds\":30,\"max_token_bytes\":4096,"
             "\"max_message_bytes\":2048,\"max_connections\":5,\"max_concurrent_streams\":7,\"trusted_proxy_"
             "hops\":2,\"idle_timeout_seconds\":0,\"request_timeout_seconds\":3600,"
             "\"token_cache\":{\"size\":0},\"log_decisions\":false,\"max_kidless_keys\":3,"
             "\"clusters\":[{\"name\":\"a.1_x-y\",\"issuer\":\"https://a\",\"audiences\":[\"api\",\"other\"],"
             "\"jwks_file\":\"keys/a.jwks.json\",\"public_key_files\":[\"c.pem\"],"
             "\"source_cidrs\":[\"10.0.0.0/8\",\"fd00::/8\"],\"hosts\":[\"API.Example.COM\",\"[FD00::1]\"],"
             "\"forward_token\":true,\"cidr_claim\":\"cidrs\",\"max_token_age_seconds\":600,\"enforce_"
             "warnafter\":true}," CLUSTER_B "],"
             "\"rules\":[{\"name\":\"r1\",\"clusters\":[\"b\"],\"path_prefix\":\"/"
             "admin\",\"methods\":[\"GET\",\"POST\"],"
             "\"namespaces\":[\"ops\"],\"service_accounts\":[\"ops:deployer\"],\"source_cidrs\":[\"192.168.0."
             "0/16\"]},"
             "{\"name\":\"r2\"}]}");
    cr_assert_not_null(snap, "%s", err);
    cr_expect(slice_is(snap->server.listen, "[::1]:8081"));
    cr_expect_eq(snap->server.workers, 4);
    cr_expect_eq(snap->clock_skew, 30);
    cr_expect_eq(snap->max_token_bytes, 4096);
    cr_expect_eq(snap->server.max_message_bytes, 2048);
    cr_expect_eq(snap->server.max_connections, 5);
    cr_expect_eq(snap->server.max_concurrent_streams, 7);
    cr_expect_eq(snap->server.trusted_proxy_hops, 2);
    cr_expect_eq(snap->server.token_cache_size, 0);
    cr_expect_eq(snap->server.idle_timeout_seconds, 0);
    cr_expect_eq(snap->server.request_timeout_seconds, 3600);
    cr_expect_not(snap->server.log_decisions);
    cr_expect_eq(snap->max_kidless_keys, 3);
    cr_assert_eq(snap->cluster_count, 2);
    const pol_cluster *a = &snap->clusters[0];
    cr_expect(slice_is(a->name, "a.1_x-y"));
    cr_expect(slice_is(a->issuer, "https://a"));
    cr_assert_eq(a->audience_count, 2);
    cr_expect(slice_is(a->audiences[1], "other"));
    cr_expect_eq(a->keys.count, 2, "JWKS key plus PEM key");
    cr_expect_str_eq(a->keys.keys[0].kid, "a-1");
    cr_expect_eq(a->source_cidr_count, 2);
    cr_assert_eq(a->host_count, 2);
    cr_expect(slice_is(a->hosts[0], "api.example.com"), "hosts are stored lower-case");
    cr_expect(slice_is(a->hosts[1], "[fd00::1]"));
    cr_expect(a->forward_token);
    cr_expect(slice_is(a->cidr_claim, "cidrs"));
    cr_expect_eq(a->max_token_age, 600);
    cr_expect(a->enforce_warnafter);
    cr_expect_eq(snap->key_count, 3);
    cr_assert_eq(snap->rule_count, 2);
    const pol_rule *r = &snap->rules[0];
    cr_expect(slice_is(r->name, "r1"));
    cr_assert_eq(r->cluster_count, 1);
    cr_expect_eq(r->clusters[0], 1);
    cr_expect(slice_is(r->path_prefix, "/admin"));
    cr_expect_eq(r->method_count, 2);
    cr_expect(slice_is(r->service_accounts[0], "ops:deployer"));
    cr_expect_eq(r->source_cidr_count, 1);
    cr_expect_eq(snap->rules[1].cluster_count, 0, "no clusters means every cluster");
    cr_expect(strstr(snap->path.ptr, "config.json"));
    pol_snapshot_release(snap);
}

Test(pol_config, defaults)
{
    pol_snapshot *snap = load("{\"clusters\":[" CLUSTER_A "]}");
    cr_assert_not_null(snap, "%s", err);
    cr_expect(slice_is(snap->server.listen, "127.0.0.1:9191"));
    cr_expect_eq(snap->server.workers, 0);
    cr_expect_eq(snap->clock_skew, 60);
    cr_expect_eq(snap->max_token_bytes, 16384);
    cr_expect_eq(snap->server.max_message_bytes, 1048576);
    cr_expect_eq(snap->server.max_connections, 10000);
    cr_expect_eq(snap->server.max_concurrent_streams, 1024);
    cr_expect_eq(snap->server.trusted_proxy_hops, 0);
    cr_expect_eq(snap->server.token_cache_size, 10000);
    cr_expect_eq(snap->server.idle_timeout_seconds, 300);
    cr_expect_eq(snap->server.request_timeout_seconds, 30);
    cr_expect(snap->server.log_decisions);
    cr_expect_eq(snap->server.deny_details, POL_DENY_DETAILS_GENERIC);
    cr_expect_eq(snap->max_kidless_keys, 8);
    cr_expect_eq(snap->rule_count, 0);
    const pol_cluster *a = &snap->clusters[0];
    cr_expect(slice_is(a->cidr_claim, "boundCIDRs"));
    cr_expect_not(a->forward_token);
    cr_expect_eq(a->max_token_age, 0);
    cr_expect_not(a->enforce_warnafter);
    cr_expect_eq(a->source_cidr_count, 0);
    cr_expect_eq(a->host_count, 0);
    cr_expect_eq(snap->refs, 1);
    pol_snapshot_release(snap);
}

Test(pol_config, empty_rules_array_is_no_rules)
{
    pol_snapshot *snap = load("{\"clusters\":[" CLUSTER_A "],\"rules\":[]}");
    cr_assert_not_null(snap, "%s", err);
    cr_expect_eq(snap->rule_count, 0);
    pol_snapshot_release(snap);
}

Test(pol_config, absolute_key_path)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\"],\"public_key_files\":[\"%"
             "s/b.pem\"]}]}",
             dir);
    pol_snapshot *snap = load(json);
    cr_assert_not_null(snap, "%s", err);
    cr_expect_eq(snap->key_count, 1);
    pol_snapshot_release(snap);
}

Test(pol_config, rsa_pem_and_jwks_keys)
{
    EVP_PKEY *rsa = tg_keygen("rsa2048");
    cr_assert_not_null(rsa);
    char *pem = tg_rsa_public_pem_pkcs1(rsa);
    char *jwks = tg_jwks(&rsa, NULL, 1);
    write_text("rsa.pem", pem);
    write_text("rsa.jwks", jwks);
    free(pem);
    free(jwks);
    EVP_PKEY_free(rsa);
    pol_snapshot *snap = load("{\"clusters\":[{\"name\":\"r\",\"issuer\":\"i\",\"audiences\":[\"x\"],"
                              "\"jwks_file\":\"rsa.jwks\",\"public_key_files\":[\"rsa.pem\"]}]}");
    cr_assert_not_null(snap, "%s", err);
    cr_expect_eq(snap->key_count, 2);
    cr_expect_str_eq(snap->clusters[0].keys.keys[0].kid, snap->clusters[0].keys.keys[1].kid,
                     "JWK without kid and PEM share the kube-apiserver fingerprint");
    pol_snapshot_release(snap);
}

Test(pol_config, generation_differs_per_load)
{
    pol_snapshot *one = load("{\"clusters\":[" CLUSTER_A "]}");
    pol_snapshot *two = load("{\"clusters\":[" CLUSTER_A "]}");
    cr_assert(one && two);
    cr_expect_neq(one->generation, two->generation);
    pol_snapshot_release(one);
    pol_snapshot_release(two);
}

Test(pol_config, unknown_key_top_level)
{
    expect_error("{\"clusters\":[" CLUSTER_A "],\"listne\":\"x\"}",
                 "config.json: listne: unknown key (\"x\")");
}

Test(pol_config, unknown_key_cluster)
{
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\"],\"jwks_file\":\"keys/"
                 "a.jwks.json\","
                 "\"isuser\":1}]}",
                 "clusters[0].isuser: unknown key (1)");
}

Test(pol_config, unknown_key_rule)
{
    expect_error("{\"clusters\":[" CLUSTER_A
                 "],\"rules\":[{\"name\":\"r\"},{\"name\":\"s\",\"method\":[\"GET\"]}]}",
                 "rules[1].method: unknown key ([\"GET\"])");
}

Test(pol_config, unknown_key_token_cache)
{
    expect_error("{\"clusters\":[" CLUSTER_A "],\"token_cache\":{\"sise\":1}}",
                 "token_cache.sise: unknown key (1)");
}

Test(pol_config, wrong_types)
{
    expect_error("{\"clusters\":[" CLUSTER_A "],\"workers\":\"4\"}", "workers: must be an integer (\"4\")");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"workers\":4.0}", "workers: must be an integer (4.0)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"log_decisions\":1}",
                 "log_decisions: must be true or false (1)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"listen\":9191}", "listen: must be a string (9191)");
    expect_error("{\"clusters\":{}}", "clusters: must be an array ({})");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"token_cache\":5}", "token_cache: must be an object (5)");
    expect_error("{\"clusters\":[\"a\"]}", "clusters[0]: must be an object (\"a\")");
    expect_error("[1]", "(top level): must be an object");
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\", "
                 "7],\"jwks_file\":\"keys/a.jwks.json\"}]}",
                 "clusters[0].audiences[1]: must be a string (7)");
}

Test(pol_config, deny_details)
{
    pol_snapshot *snap = load("{\"clusters\":[" CLUSTER_A "],\"deny_details\":\"full\"}");
    cr_assert_not_null(snap, "%s", err);
    cr_expect_eq(snap->server.deny_details, POL_DENY_DETAILS_FULL);
    pol_snapshot_release(snap);
    snap = load("{\"clusters\":[" CLUSTER_A "],\"deny_details\":\"generic\"}");
    cr_assert_not_null(snap, "%s", err);
    cr_expect_eq(snap->server.deny_details, POL_DENY_DETAILS_GENERIC);
    pol_snapshot_release(snap);
    expect_error("{\"clusters\":[" CLUSTER_A "],\"deny_details\":\"Full\"}",
                 "config.json: deny_details: must be \"generic\" or \"full\" (\"Full\")");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"deny_details\":true}",
                 "deny_details: must be \"generic\" or \"full\" (true)");
}

Test(pol_config, out_of_range)
{
    expect_error("{\"clusters\":[" CLUSTER_A "],\"clock_skew_seconds\":3601}",
                 "clock_skew_seconds: must be between 0 and 3600 (3601)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"workers\":-1}", "workers: must be between 0 and 256 (-1)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"max_token_bytes\":255}",
                 "max_token_bytes: must be between 256");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"token_cache\":{\"size\":10000001}}",
                 "token_cache.size: must be between 0 and 10000000 (10000001)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"max_kidless_keys\":1025}",
                 "max_kidless_keys: must be between 0 and 1024 (1025)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"max_kidless_keys\":-1}",
                 "max_kidless_keys: must be between 0 and 1024 (-1)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"idle_timeout_seconds\":86401}",
                 "idle_timeout_seconds: must be between 0 and 86400 (86401)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"idle_timeout_seconds\":-1}",
                 "idle_timeout_seconds: must be between 0 and 86400 (-1)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"request_timeout_seconds\":0}",
                 "request_timeout_seconds: must be between 1 and 3600 (0)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"request_timeout_seconds\":3601}",
                 "request_timeout_seconds: must be between 1 and 3600 (3601)");
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\"],\"jwks_file\":\"keys/"
                 "a.jwks.json\","
                 "\"max_token_age_seconds\":31536001}]}",
                 "clusters[0].max_token_age_seconds: must be between 0 and 31536000 (31536001)");
}

Test(pol_config, bad_listen)
{
    expect_error("{\"clusters\":[" CLUSTER_A "],\"listen\":\"127.0.0.1:0\"}",
                 "listen: port must be 1..65535");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"listen\":\"127.0.0.1\"}", "listen: must be host:port");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"listen\":\"::1:80\"}", "listen: must be host:port");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"listen\":\"[zz]:80\"}",
                 "listen: is not a valid [IPv6] literal");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"listen\":\"host:65536\"}", "port must be 1..65535");
}

Test(pol_config, bad_cidr_names_path_and_value)
{
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\"],\"jwks_file\":\"keys/"
                 "a.jwks.json\","
                 "\"source_cidrs\":[\"10.0.0.0/8\",\"10.0.0.0/33\"]}]}",
                 "config.json: clusters[0].source_cidrs[1]: not a CIDR (\"10.0.0.0/33\")");
    expect_error("{\"clusters\":[" CLUSTER_A
                 "],\"rules\":[{\"name\":\"r\",\"source_cidrs\":[\"10.0.0.1/8\"]}]}",
                 "rules[0].source_cidrs[0]: not a CIDR (\"10.0.0.1/8\")");
}

Test(pol_config, unreadable_key_file)
{
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\"],\"jwks_file\":"
                 "\"missing.json\"}]}",
                 "clusters[0].jwks_file: ");
    cr_expect(strstr(err, "missing.json"), "%s", err);
    cr_expect(strstr(err, "cannot open"), "%s", err);
}

Test(pol_config, invalid_jwks)
{
    write_text("bad.jwks", "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}");
    expect_error(
        "{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\"],\"jwks_file\":\"bad.jwks\"}]}",
        "clusters[0].jwks_file: ");
    cr_expect(strstr(err, "bad.jwks"), "%s", err);
}

Test(pol_config, invalid_pem)
{
    write_text("junk.pem", "not a pem\n");
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\"],"
                 "\"public_key_files\":[\"b.pem\",\"junk.pem\"]}]}",
                 "clusters[0].public_key_files[1]: ");
}

Test(pol_config, key_file_too_big)
{
    size_t len = 1024 * 1024 + 1;
    char *big = malloc(len);
    cr_assert_not_null(big);
    memset(big, ' ', len);
    write_file("big.jwks", big, len);
    free(big);
    expect_error(
        "{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\"],\"jwks_file\":\"big.jwks\"}]}",
        "larger than 1048576 bytes");
}

Test(pol_config, cluster_without_keys)
{
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\"]}]}",
                 "clusters[0]: needs jwks_file, public_key_files, jwks_uri or discovery");
}

Test(pol_config, jwks_without_signing_keys)
{
    write_text("enc.jwks", "{\"keys\":[]}");
    pol_snapshot *snap = load("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\"],\"jwks_"
                              "file\":\"enc.jwks\"}]}");
    cr_assert_null(snap);
    cr_expect(strstr(err, "clusters[0]"), "%s", err);
}

Test(pol_config, required_cluster_fields)
{
    expect_error(
        "{\"clusters\":[{\"issuer\":\"i\",\"audiences\":[\"x\"],\"jwks_file\":\"keys/a.jwks.json\"}]}",
        "clusters[0].name: is required");
    expect_error("{\"clusters\":[{\"name\":\"a\",\"audiences\":[\"x\"],\"jwks_file\":\"keys/a.jwks.json\"}]}",
                 "clusters[0].issuer: is required");
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[],\"jwks_file\":\"keys/"
                 "a.jwks.json\"}]}",
                 "clusters[0].audiences: must not be empty");
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"\",\"audiences\":[\"x\"],\"jwks_file\":\"keys/"
                 "a.jwks.json\"}]}",
                 "clusters[0].issuer: must not be empty");
    expect_error("{\"clusters\":[{\"name\":\"a "
                 "b\",\"issuer\":\"i\",\"audiences\":[\"x\"],\"jwks_file\":\"keys/a.jwks.json\"}]}",
                 "clusters[0].name: may only contain");
}

Test(pol_config, rule_names_unknown_cluster)
{
    expect_error("{\"clusters\":[" CLUSTER_A "],\"rules\":[{\"name\":\"r\",\"clusters\":[\"a\",\"nope\"]}]}",
                 "rules[0].clusters[1]: names no configured cluster (\"nope\")");
}

Test(pol_config, bad_rule_values)
{
    expect_error("{\"clusters\":[" CLUSTER_A "],\"rules\":[{\"name\":\"r\",\"path_prefix\":\"admin\"}]}",
                 "rules[0].path_prefix: must start with '/' (\"admin\")");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"rules\":[{\"name\":\"r\",\"methods\":[\"get\"]}]}",
                 "rules[0].methods[0]: must be an upper-case HTTP method (\"get\")");
    expect_error("{\"clusters\":[" CLUSTER_A
                 "],\"rules\":[{\"name\":\"r\",\"service_accounts\":[\"deployer\"]}]}",
                 "rules[0].service_accounts[0]: must be \"namespace:name\"");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"rules\":[{\"path_prefix\":\"/\"}]}",
                 "rules[0].name: is required");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"rules\":[{\"name\":\"r\"},{\"name\":\"r\"}]}",
                 "rules[1].name: duplicates the name of rules[0] (\"r\")");
}

Test(pol_config, duplicate_cluster_name)
{
    expect_error("{\"clusters\":[" CLUSTER_A
                 ",{\"name\":\"a\",\"issuer\":\"https://b\",\"audiences\":[\"api\"],"
                 "\"public_key_files\":[\"b.pem\"]}]}",
                 "clusters[1].name: duplicates the name of clusters[0] (\"a\")");
}

Test(pol_config, duplicate_host_across_clusters)
{
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\"],\"jwks_file\":\"keys/"
                 "a.jwks.json\","
                 "\"hosts\":[\"api.example\"]},{\"name\":\"b\",\"issuer\":\"i\",\"audiences\":[\"x\"],"
                 "\"public_key_files\":[\"b.pem\"],\"hosts\":[\"other\",\"API.example\"]}]}",
                 "clusters[1].hosts[1]: host of cluster b already belongs to cluster a (clusters[0]) "
                 "(\"api.example\")");
}

Test(pol_config, host_with_port)
{
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\"],\"jwks_file\":\"keys/"
                 "a.jwks.json\","
                 "\"hosts\":[\"api.example:443\"]}]}",
                 "clusters[0].hosts[0]: must not carry a port");
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\"],\"jwks_file\":\"keys/"
                 "a.jwks.json\","
                 "\"hosts\":[\"[fd00::1]:443\"]}]}",
                 "clusters[0].hosts[0]: must not carry a port");
}

Test(pol_config, syntax_error_has_line_and_column)
{
    pol_snapshot *snap = load("{\n  \"clusters\": [\n    ,\n  ]\n}\n");
    cr_assert_null(snap);
    cr_expect(strstr(err, "config.json:3:"), "%s", err);
    char *after = strstr(err, "config.json:3:");
    cr_assert_not_null(after);
    cr_expect(after[strlen("config.json:3:")] >= '1' && after[strlen("config.json:3:")] <= '9', "column: %s",
              err);
}

Test(pol_config, duplicate_json_keys_rejected)
{
    pol_snapshot *snap = load("{\"clusters\":[" CLUSTER_A "],\"workers\":1,\"workers\":2}");
    cr_assert_null(snap);
    cr_expect(strstr(err, "duplicate"), "%s", err);
}

Test(pol_config, empty_and_missing_clusters)
{
    expect_error("{\"clusters\":[]}", "clusters: must not be empty");
    expect_error("{}", "clusters: is required");
}

Test(pol_config, config_file_too_big)
{
    size_t len = POL_CONFIG_MAX_FILE_BYTES + 1;
    char *big = malloc(len);
    cr_assert_not_null(big);
    memset(big, ' ', len);
    big[0] = '{';
    big[len - 1] = '}';
    write_file("config.json", big, len);
    free(big);
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    pol_snapshot *snap = NULL;
    cr_assert_eq(pol_config_load(path, &snap, err, sizeof err), -1);
    cr_assert_null(snap);
    cr_expect(strstr(err, "larger than 4194304 bytes"), "%s", err);
}

Test(pol_config, missing_config_file)
{
    pol_snapshot *snap = NULL;
    cr_assert_eq(pol_config_load("/nonexistent/tokengate.json", &snap, err, sizeof err), -1);
    cr_expect(strstr(err, "/nonexistent/tokengate.json"), "%s", err);
}

Test(pol_config, collects_several_errors)
{
    expect_error("{\"clusters\":[" CLUSTER_A "],\"workers\":-1,\"listne\":1,\"clock_skew_seconds\":\"x\"}",
                 "workers");
    cr_expect(strstr(err, "listne: unknown key"), "%s", err);
    cr_expect(strstr(err, "clock_skew_seconds: must be an integer"), "%s", err);
    cr_expect(strchr(err, '\n'), "one line per error: %s", err);
}

Test(pol_config, tiny_error_buffer_is_terminated)
{
    write_text("config.json", "{\"listne\":1}");
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char small[8];
    memset(small, 'x', sizeof small);
    pol_snapshot *snap = NULL;
    cr_assert_eq(pol_config_load(path, &snap, small, sizeof small), -1);
    cr_expect_lt(strlen(small), sizeof small);
}

/* ---- one key, one cluster (issue 7 section 2) ------------------------- */

/* Writes |key| as |name| in the form |form|: "jwks" (with |kid|), "spki",
 * "pkcs1" or "cert". */
static void write_key_form(EVP_PKEY *key, const char *name, const char *form, const char *kid)
{
    char *text = NULL;
    if (strcmp(form, "jwks") == 0) {
        tg_jwk_opts opts = {.kid = kid};
        text = tg_jwks(&key, &opts, 1);
    } else if (strcmp(form, "spki") == 0) {
        text = tg_public_pem(key);
    } else if (strcmp(form, "pkcs1") == 0) {
        text = tg_rsa_public_pem_pkcs1(key);
    } else {
        text = tg_cert_pem(key);
    }
    cr_assert_not_null(text, "%s", form);
    write_text(name, text);
    free(text);
}

Test(pol_config, same_key_in_two_clusters_is_refused_whatever_the_format_or_kid)
{
    EVP_PKEY *rsa = tg_keygen("rsa2048");
    cr_assert_not_null(rsa);
    write_key_form(rsa, "shared.jwks", "jwks", "kid-in-a");
    write_key_form(rsa, "shared.pem", "spki", NULL);
    write_key_form(rsa, "shared-pkcs1.pem", "pkcs1", NULL);
    write_key_form(rsa, "shared-cert.pem", "cert", NULL);
    write_key_form(rsa, "shared2.jwks", "jwks", "kid-in-b");
    EVP_PKEY_free(rsa);
    static const char *const second[] = {"\"public_key_files\":[\"b.pem\",\"shared.pem\"]",
                                         "\"public_key_files\":[\"b.pem\",\"shared-pkcs1.pem\"]",
                                         "\"public_key_files\":[\"b.pem\",\"shared-cert.pem\"]",
                                         "\"jwks_file\":\"shared2.jwks\",\"public_key_files\":[\"b.pem\"]"};
    static const char *const place[] = {"clusters[1].public_key_files[1]", "clusters[1].public_key_files[1]",
                                        "clusters[1].public_key_files[1]", "clusters[1].jwks_file"};
    for (size_t i = 0; i < sizeof second / sizeof second[0]; i++) {
        char json[1024];
        snprintf(
            json, sizeof json,
            "{\"clusters\":[{\"name\":\"a\",\"issuer\":\"https://a\",\"audiences\":[\"x\"],"
            "\"jwks_file\":\"shared.jwks\"},{\"name\":\"b\",\"issuer\":\"https://b\",\"audiences\":[\"x\"],"
            "%s}]}",
            second[i]);
        expect_error(json, place[i]);
        cr_expect(
            strstr(err, "is also a key of cluster a, from clusters[0].jwks_file (shared.jwks, kid kid-in-a)"),
            "names the first place: %s", err);
        cr_expect(strstr(err, "one cluster only"), "%s", err);
        cr_expect_eq(strchr(err, '\n'), NULL, "one error, not one per form: %s", err);
    }
}

Test(pol_config, same_key_twice_in_one_cluster_is_fine)
{
    EVP_PKEY *ec = tg_keygen("p256");
    cr_assert_not_null(ec);
    write_key_form(ec, "one.jwks", "jwks", "k");
    write_key_form(ec, "one.pem", "spki", NULL);
    EVP_PKEY_free(ec);
    pol_snapshot *snap =
        load("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"https://a\",\"audiences\":[\"x\"],"
             "\"jwks_file\":\"one.jwks\",\"public_key_files\":[\"one.pem\"]}," CLUSTER_B "]}");
    cr_assert_not_null(snap, "%s", err);
    pol_snapshot_release(snap);
}

Test(pol_config, key_files_are_recorded_per_key)
{
    pol_snapshot *snap = load("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"https://a\",\"audiences\":[\"x\"],"
                              "\"jwks_file\":\"keys/a.jwks.json\",\"public_key_files\":[\"b.pem\"]}]}");
    cr_assert_not_null(snap, "%s", err);
    const pol_cluster *c = &snap->clusters[0];
    cr_assert_eq(c->key_file_count, 2);
    const pol_key_file *f0 = pol_cluster_key_file(c, 0);
    const pol_key_file *f1 = pol_cluster_key_file(c, 1);
    cr_assert(f0 && f1);
    cr_expect(slice_is(f0->name, "keys/a.jwks.json"));
    cr_expect(slice_is(f0->json_path, "clusters[0].jwks_file"));
    cr_expect(slice_is(f1->name, "b.pem"));
    cr_expect(slice_is(f1->json_path, "clusters[0].public_key_files[0]"));
    cr_expect_null(pol_cluster_key_file(c, 2));
    pol_snapshot_release(snap);
}

/* ---- hints and no cascades (issue 7 section 6) ------------------------ */

Test(pol_config, pem_given_as_jwks_file_says_so)
{
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"https://a\",\"audiences\":[\"x\"],"
                 "\"jwks_file\":\"b.pem\"}]}",
                 "clusters[0].jwks_file: ");
    cr_expect(strstr(err, "(\"b.pem\"); this is a PEM key: use public_key_files"), "%s", err);
    cr_expect_eq(strchr(err, '\n'), NULL, "no follow-on \"no signing key\" error: %s", err);
}

Test(pol_config, jwks_given_as_public_key_file_says_so)
{
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"https://a\",\"audiences\":[\"x\"],"
                 "\"public_key_files\":[\"keys/a.jwks.json\"]}]}",
                 "clusters[0].public_key_files[0]: ");
    cr_expect(strstr(err, "this is a JWKS: use jwks_file"), "%s", err);
}

Test(pol_config, cidr_with_host_bits_suggests_the_network)
{
    expect_error(
        "{\"clusters\":[{\"name\":\"a\",\"issuer\":\"https://a\",\"audiences\":[\"x\"],"
        "\"jwks_file\":\"keys/a.jwks.json\",\"source_cidrs\":[\"10.20.1.0/16\"]}]}",
        "clusters[0].source_cidrs[0]: not a CIDR (\"10.20.1.0/16\"); host bits are set: did you mean "
        "10.20.0.0/16?");
    expect_error("{\"clusters\":[" CLUSTER_A
                 "],\"rules\":[{\"name\":\"r\",\"source_cidrs\":[\"fd00:a::1/64\"]}]}",
                 "did you mean fd00:a::/64?");
    expect_error("{\"clusters\":[" CLUSTER_A
                 "],\"rules\":[{\"name\":\"r\",\"source_cidrs\":[\"10.0.0.0/33\"]}]}",
                 "not a CIDR (\"10.0.0.0/33\")");
    cr_expect_eq(strstr(err, "did you mean"), NULL, "no hint for a CIDR that is wrong otherwise: %s", err);
}

Test(pol_config, unknown_key_suggests_the_close_known_key_without_cascade)
{
    expect_error("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"https://a\",\"audience\":[\"x\"],"
                 "\"jwks_file\":\"keys/a.jwks.json\"}]}",
                 "clusters[0].audience: unknown key ([\"x\"]); did you mean `audiences`?");
    cr_expect_eq(strchr(err, '\n'), NULL, "the missing audiences is the same mistake: %s", err);
    expect_error("{\"clusters\":[{\"name\":\"a\",\"isuser\":\"https://a\",\"audiences\":[\"x\"],"
                 "\"jwks_file\":\"keys/a.jwks.json\"}]}",
                 "did you mean `issuer`?");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"max_kidles_keys\":2}", "did you mean `max_kidless_keys`?");
    /* Another object checked in between does not bring the cascade back. */
    expect_error("{\"cluster\":[" CLUSTER_A "],\"token_cache\":{\"size\":1}}", "cluster: unknown key");
    cr_expect(strstr(err, "did you mean `clusters`?"), "%s", err);
    cr_expect_eq(strchr(err, '\n'), NULL, "%s", err);
    expect_error("{\"clusters\":[" CLUSTER_A "],\"colour\":2}", "colour: unknown key (2)");
    cr_expect_eq(strstr(err, "did you mean"), NULL, "no far-fetched hint: %s", err);
}

Test(pol_config, no_cascade_from_a_broken_cluster_to_rules)
{
    expect_error("{\"clusters\":[{\"name\":\"a b\",\"issuer\":\"https://a\",\"audiences\":[\"x\"],"
                 "\"jwks_file\":\"keys/a.jwks.json\"}],\"rules\":[{\"name\":\"r\",\"clusters\":[\"a b\"]}]}",
                 "clusters[0].name: may only contain");
    cr_expect_eq(strchr(err, '\n'), NULL, "%s", err);
    expect_error("{\"clusters\":{},\"rules\":[{\"name\":\"r\",\"clusters\":[\"a\"]}]}",
                 "clusters: must be an array");
    cr_expect_eq(strchr(err, '\n'), NULL, "%s", err);
    /* A rule naming a cluster that does not exist is still an error. */
    expect_error("{\"clusters\":[" CLUSTER_A "],\"rules\":[{\"name\":\"r\",\"clusters\":[\"zz\"]}]}",
                 "names no configured cluster");
}

/* ---- warnings (issue 7 section 6) ------------------------------------- */

/* The warning of |snap| containing |needle|, or NULL. */
static const char *find_warning(const pol_snapshot *snap, const char *needle)
{
    for (size_t i = 0; i < snap->warning_count; i++) {
        if (strstr(snap->warnings[i].ptr, needle))
            return snap->warnings[i].ptr;
    }
    return NULL;
}

#define SOURCES ",\"source_cidrs\":[\"10.0.0.0/8\"]"
#define QUIET_A                                                                                              \
    "{\"name\":\"a\",\"issuer\":\"https://a.example\",\"audiences\":[\"x\"],\"jwks_file\":\"keys/"           \
    "a.jwks.json\"" SOURCES "}"
#define QUIET_B                                                                                              \
    "{\"name\":\"b\",\"issuer\":\"https://"                                                                  \
    "b.example\",\"audiences\":[\"x\"],\"public_key_files\":[\"b.pem\"]" SOURCES "}"

Test(pol_config, clean_config_has_no_warnings)
{
    pol_snapshot *snap = load("{\"clusters\":[" QUIET_A "," QUIET_B "],\"rules\":[{\"name\":\"r1\","
                              "\"path_prefix\":\"/admin\"},{\"name\":\"r2\",\"path_prefix\":\"/ad\"}]}");
    cr_assert_not_null(snap, "%s", err);
    cr_expect_eq(snap->warning_count, 0, "%s", snap->warning_count ? snap->warnings[0].ptr : "");
    pol_snapshot_release(snap);
}

Test(pol_config, issuer_warnings)
{
    static const char *const bad[] = {"i", "http://a.example", "https://", "kubernetes/serviceaccount",
                                      "https://a.example/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char json[512];
        snprintf(
            json, sizeof json,
            "{\"clusters\":[{\"name\":\"a\",\"issuer\":\"%s\",\"audiences\":[\"x\"],\"jwks_file\":\"keys/"
            "a.jwks.json\"" SOURCES "}]}",
            bad[i]);
        pol_snapshot *snap = load(json);
        cr_assert_not_null(snap, "%s", err);
        cr_assert_eq(snap->warning_count, 1, "%s", bad[i]);
        const char *w = snap->warnings[0].ptr;
        cr_expect(strstr(w, "config.json: clusters[0].issuer: issuer "), "%s", w);
        cr_expect(strstr(w, bad[i]), "%s", w);
        cr_expect(strstr(w, i == 4 ? "ends with '/'" : "is not an https URL"), "%s", w);
        pol_snapshot_release(snap);
    }
}

Test(pol_config, cluster_without_source_cidrs_warns)
{
    pol_snapshot *snap = load("{\"clusters\":[" QUIET_A ",{\"name\":\"b\",\"issuer\":\"https://b.example\","
                              "\"audiences\":[\"x\"],\"public_key_files\":[\"b.pem\"]}]}");
    cr_assert_not_null(snap, "%s", err);
    cr_assert_eq(snap->warning_count, 1);
    cr_expect(find_warning(snap, "config.json: clusters[1]: cluster b has no source_cidrs"), "%s",
              snap->warnings[0].ptr);
    pol_snapshot_release(snap);
}

Test(pol_config, cidr_without_prefix_length_warns)
{
    pol_snapshot *snap =
        load("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"https://a.example\",\"audiences\":[\"x\"],\"jwks_"
             "file\":\"keys/a.jwks.json\",\"source_cidrs\":[\"10.0.0.0/8\",\"10.1.2.3\"]}],"
             "\"rules\":[{\"name\":\"r\",\"source_cidrs\":[\"fd00::1\",\"fd00::/64\"]}]}");
    cr_assert_not_null(snap, "%s", err);
    cr_expect_eq(snap->warning_count, 2);
    cr_expect(find_warning(snap, "clusters[0].source_cidrs[1]: CIDR without a prefix length (\"10.1.2.3\"); "
                                 "write 10.1.2.3/32"));
    cr_expect(find_warning(snap, "rules[0].source_cidrs[0]: CIDR without a prefix length (\"fd00::1\"); "
                                 "write fd00::1/128"));
    pol_snapshot_release(snap);
}

/* Loads clusters a and b with |rules| and returns how many rules were
 * reported as never matching; *first gets the first such warning. */
static size_t shadow_warnings(const char *rules, char *first, size_t first_size)
{
    char json[2048];
    snprintf(json, sizeof json, "{\"clusters\":[" QUIET_A "," QUIET_B "],\"rules\":[%s]}", rules);
    pol_snapshot *snap = load(json);
    cr_assert_not_null(snap, "%s", err);
    size_t n = 0;
    first[0] = '\0';
    for (size_t i = 0; i < snap->warning_count; i++) {
        if (!strstr(snap->warnings[i].ptr, "can never match"))
            continue;
        if (n++ == 0)
            snprintf(first, first_size, "%s", snap->warnings[i].ptr);
    }
    pol_snapshot_release(snap);
    return n;
}

Test(pol_config, shadowed_rule_warns)
{
    char w[1024];
    /* A rule without conditions covers everything after it. */
    cr_expect_eq(
        shadow_warnings("{\"name\":\"all\"},{\"name\":\"late\",\"path_prefix\":\"/x\"}", w, sizeof w), 1);
    cr_expect(strstr(w, "config.json: rules[1]: rule late can never match: rules[0] (all) comes first"), "%s",
              w);
    /* Clusters a superset, prefix a prefix, methods a superset. */
    cr_expect_eq(shadow_warnings("{\"name\":\"wide\",\"clusters\":[\"a\",\"b\"],\"path_prefix\":\"/api\","
                                 "\"methods\":[\"GET\",\"POST\"]},"
                                 "{\"name\":\"narrow\",\"clusters\":[\"b\"],\"path_prefix\":\"/api/v1\","
                                 "\"methods\":[\"POST\"],\"namespaces\":[\"ops\"]}",
                                 w, sizeof w),
                 1);
    cr_expect(strstr(w, "rules[1]: rule narrow"), "%s", w);
    /* ignore_case on the earlier rule covers a later prefix in another case. */
    cr_expect_eq(shadow_warnings("{\"name\":\"any-case\",\"path_prefix\":\"/api\",\"ignore_case\":true},"
                                 "{\"name\":\"upper\",\"path_prefix\":\"/API/v1\"},"
                                 "{\"name\":\"both\",\"path_prefix\":\"/Api/v2\",\"ignore_case\":true}",
                                 w, sizeof w),
                 2);
    /* The same selection twice: the second never decides. */
    cr_expect_eq(
        shadow_warnings("{\"name\":\"r1\",\"path_prefix\":\"/a\"},{\"name\":\"r2\",\"path_prefix\":\"/"
                        "a\"},{\"name\":\"r3\",\"path_prefix\":\"/a/b\"}",
                        w, sizeof w),
        2);
}

Test(pol_config, rule_not_shadowed_when_any_condition_is_narrower)
{
    char w[1024];
    static const char *const cases[] = {
        /* earlier lists clusters, later lists none (= every cluster) */
        "{\"name\":\"r1\",\"clusters\":[\"a\"]},{\"name\":\"r2\"}",
        /* later has a cluster the earlier lacks */
        "{\"name\":\"r1\",\"clusters\":[\"a\"]},{\"name\":\"r2\",\"clusters\":[\"a\",\"b\"]}",
        /* earlier lists methods, later lists none */
        "{\"name\":\"r1\",\"methods\":[\"GET\"]},{\"name\":\"r2\"}",
        /* later has a method the earlier lacks */
        "{\"name\":\"r1\",\"methods\":[\"GET\"]},{\"name\":\"r2\",\"methods\":[\"GET\",\"PUT\"]}",
        /* the earlier prefix is longer */
        "{\"name\":\"r1\",\"path_prefix\":\"/api/v1\"},{\"name\":\"r2\",\"path_prefix\":\"/api\"}",
        /* sibling prefixes */
        "{\"name\":\"r1\",\"path_prefix\":\"/api\"},{\"name\":\"r2\",\"path_prefix\":\"/apps\"}",
        /* earlier has a prefix, later none */
        "{\"name\":\"r1\",\"path_prefix\":\"/api\"},{\"name\":\"r2\"}",
        /* the later rule also selects /API/v1: case-sensitive earlier does not */
        "{\"name\":\"r1\",\"path_prefix\":\"/api\"},{\"name\":\"r2\",\"path_prefix\":\"/api/v1\","
        "\"ignore_case\":true}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(shadow_warnings(cases[i], w, sizeof w), 0, "case %zu: %s", i, w);
}

Test(pol_config, warnings_do_not_stop_the_load)
{
    pol_snapshot *snap = load("{\"clusters\":[{\"name\":\"a\",\"issuer\":\"i\",\"audiences\":[\"x\"],"
                              "\"jwks_file\":\"keys/a.jwks.json\"}]}");
    cr_assert_not_null(snap, "%s", err);
    cr_expect_eq(snap->warning_count, 2, "issuer and source_cidrs");
    pol_snapshot_release(snap);
}

Test(pol_config, send_timeout_and_buffer_bounds)
{
    pol_snapshot *snap = load("{\"clusters\":[" CLUSTER_A "]}");
    cr_assert_not_null(snap, "%s", err);
    cr_expect_eq(snap->server.send_timeout_seconds, 10);
    cr_expect_eq(snap->server.max_buffered_bytes_per_connection, 16u * 1024u * 1024u);
    cr_expect_eq(snap->server.max_buffered_bytes_per_worker, 64u * 1024u * 1024u);
    pol_snapshot_release(snap);

    snap = load("{\"clusters\":[" CLUSTER_A "],\"send_timeout_seconds\":1,\"max_message_bytes\":2048,"
                "\"max_buffered_bytes_per_connection\":2048,\"max_buffered_bytes_per_worker\":4096}");
    cr_assert_not_null(snap, "%s", err);
    cr_expect_eq(snap->server.send_timeout_seconds, 1);
    cr_expect_eq(snap->server.max_buffered_bytes_per_connection, 2048);
    cr_expect_eq(snap->server.max_buffered_bytes_per_worker, 4096);
    pol_snapshot_release(snap);

    /* Left out, the bounds grow to hold what they must. */
    snap = load("{\"clusters\":[" CLUSTER_A "],\"max_message_bytes\":67108864}");
    cr_assert_not_null(snap, "%s", err);
    cr_expect_eq(snap->server.max_buffered_bytes_per_connection, 67108864);
    cr_expect_eq(snap->server.max_buffered_bytes_per_worker, 67108864);
    pol_snapshot_release(snap);

    expect_error("{\"clusters\":[" CLUSTER_A "],\"send_timeout_seconds\":0}",
                 "send_timeout_seconds: must be between 1 and 3600 (0)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"send_timeout_seconds\":3601}",
                 "send_timeout_seconds: must be between 1 and 3600 (3601)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"max_buffered_bytes_per_connection\":1023}",
                 "max_buffered_bytes_per_connection: must be between 1024 and 17179869184 (1023)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"max_buffered_bytes_per_worker\":17179869185}",
                 "max_buffered_bytes_per_worker: must be between 1024 and 17179869184 (17179869185)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"max_buffered_bytes_per_connection\":\"1M\"}",
                 "max_buffered_bytes_per_connection: must be an integer");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"max_buffered_bytes_per_connection\":65536}",
                 "max_buffered_bytes_per_connection: must be at least max_message_bytes (1048576), or no "
                 "message of that size could arrive (65536)");
    expect_error("{\"clusters\":[" CLUSTER_A "],\"max_buffered_bytes_per_worker\":2097152}",
                 "max_buffered_bytes_per_worker: must be at least max_buffered_bytes_per_connection "
                 "(16777216) (2097152)");
}
