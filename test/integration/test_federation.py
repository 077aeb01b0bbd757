"""Federated identities (issue 11) end to end through the real binary: OIDC
tokens shaped like Dex's ID tokens (RS256) and Keycloak's access tokens
(ES256) beside service-account tokens; group and user rules per cluster,
provider_not_allowed, claim_mismatch, prefixes, groups claims as a string,
an array, absent or a nested path, the identity headers, the decision log
and explain; a key shared by a provider and a cluster refused at load."""

import json
import os
import subprocess
import time
import unittest

import tg_harness as h

DEX = "https://dex.example.com"
KEYCLOAK = "https://keycloak.example.com/realms/corp"
CLIENT = "tokengate"  # the OIDC client id: Dex's aud, a Keycloak resource_access key

RULES = [
    {"name": "admins", "clusters": ["cluster-a"], "path_prefix": "/admin",
     "groups": ["corp:platform-admins", "kc:admin"]},
    {"name": "bob-only", "clusters": ["cluster-a"], "path_prefix": "/bob", "users": ["corp:bob@example.com"]},
    {"name": "b-service-accounts", "clusters": ["cluster-b"], "namespaces": ["shop"]},
    {"name": "everyone-else"},
]


def providers(world, dex_key, kc_key):
    return [
        {"name": "dex", "issuer": DEX, "audiences": [CLIENT], "jwks_file": os.path.basename(dex_key.jwks),
         "claim_mappings": {"username": {"claim": "email", "prefix": "corp:"},
                            "groups": {"claim": "groups", "prefix": "corp:"}},
         "claim_validation_rules": [{"claim": "email_verified", "required_value": True}],
         "clusters": ["cluster-a", "cluster-b"]},
        {"name": "keycloak", "issuer": KEYCLOAK, "audiences": ["account", CLIENT],
         "public_key_files": [os.path.basename(kc_key.public)],
         "claim_mappings": {"username": {"claim": "preferred_username", "prefix": "kc:"},
                            "groups": {"claim": "realm_access.roles", "prefix": "kc:"}},
         "claim_validation_rules": [{"claim": "typ", "required_values": ["Bearer", "ID"]},
                                    {"claim": f"resource_access.{CLIENT}.roles", "required_values": ["use"]}],
         "clusters": ["cluster-a"]},
    ]


class FederationTest(h.DecisionAsserts, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-federation-")
        cls.world = h.World(cls.folder)
        cls.dex_key = h.Key(cls.folder, "dex", "rsa2048", jwks_kid="dex-2026")
        cls.kc_key = h.Key(cls.folder, "keycloak", "p256")
        cls.admin_port = h.free_port()
        cfg = cls.world.config(rules=RULES, deny_details="full", admin_listen=f"127.0.0.1:{cls.admin_port}",
                               identity_providers=providers(cls.world, cls.dex_key, cls.kc_key))
        cls.server = h.Server(cls.folder, cfg, "federation").start()
        cls.channel = cls.server.channel()
        cls.stub = h.authz_stub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code, elapsed = cls.server.stop()
        if code != 0 or elapsed > 5.0:
            raise AssertionError(f"server exited {code} after {elapsed:.1f}s:\n{cls.server.log_text()[-4000:]}")

    # ---- tokens shaped like the providers' ----

    def dex_token(self, email="alice@example.com", groups=("platform-admins", "dev"), **extra):
        """A Dex ID token: iss, aud = client id, sub, email, email_verified,
        groups, name, at_hash (RS256, kid of Dex's JWKS)."""
        claims = {"sub": "CgVhbGljZRIGZ2l0aHVi", "email": email, "email_verified": True, "name": "Alice",
                  "at_hash": "uv5x2-Ofg5TmGm7jX1sBlg"}
        if groups is not None:
            claims["groups"] = list(groups) if isinstance(groups, tuple) else groups
        claims.update(extra)
        return h.mint(self.dex_key, iss=DEX, aud=(CLIENT,), namespace=None, claims=claims)

    def keycloak_token(self, user="carol", realm_roles=("admin", "offline_access"), **extra):
        """A Keycloak access token (typ Bearer): azp, preferred_username,
        realm_access.roles, resource_access.<client>.roles (ES256, no kid
        needed: PEM key)."""
        claims = {"sub": "f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "typ": "Bearer", "azp": CLIENT,
                  "preferred_username": user, "realm_access": {"roles": list(realm_roles)},
                  "resource_access": {CLIENT: {"roles": ["use"]}, "account": {"roles": ["manage-account"]}},
                  "scope": "openid email profile"}
        claims.update(extra)
        return h.mint(self.kc_key, iss=KEYCLOAK, aud=("account", CLIENT), namespace=None, claims=claims)

    def check(self, token, cluster="cluster-a", path="/x", headers=None):
        return self.stub.Check(h.check_request(token=token, cluster=cluster, path=path, headers=headers),
                               timeout=10)

    def assert_user(self, resp, cluster, user, groups, provider):
        self.assertEqual(resp.status.code, 0, resp.status.message)
        ok = resp.ok_response
        want = {"x-tokengate-cluster": cluster, "x-tokengate-subject": user, "x-tokengate-user": user,
                "x-tokengate-provider": provider}
        if groups:
            want["x-tokengate-groups"] = groups
        self.assertEqual(h.header_dict(ok.headers), want)
        for option in ok.headers:
            self.assertEqual(option.append_action, h.OVERWRITE_IF_EXISTS_OR_ADD, option.header.key)
        # What the token does not say is removed, so a client's copy never passes.
        removed = ["authorization", "x-tokengate-namespace", "x-tokengate-service-account", "x-tokengate-peer",
                   "x-tokengate-shadow-reason"]
        if not groups:
            removed.append("x-tokengate-groups")
        self.assertEqual(sorted(ok.headers_to_remove), sorted(removed))
        self.assertEqual(resp.dynamic_metadata.fields["provider"].string_value, provider)
        self.assertEqual(resp.dynamic_metadata.fields["subject"].string_value, user)

    # ---- allow, with prefixes applied ----

    def test_dex_rs256_token_allowed_with_prefixed_identity(self):
        forged = {"x-tokengate-user": "corp:root", "x-tokengate-groups": "corp:platform-admins",
                  "x-tokengate-namespace": "kube-system"}
        resp = self.check(self.dex_token(), headers=forged)
        self.assert_user(resp, "cluster-a", "corp:alice@example.com", "corp:platform-admins,corp:dev", "dex")

    def test_keycloak_es256_access_token_with_nested_roles(self):
        resp = self.check(self.keycloak_token(), path="/admin/users")
        self.assert_user(resp, "cluster-a", "kc:carol", "kc:admin,kc:offline_access", "keycloak")
        # A refresh token is not an access or ID token: the typ rule refuses it.
        self.assert_denied(self.check(self.keycloak_token(typ="Refresh")), "claim_mismatch")
        self.assertIn("claim typ", self.check(self.keycloak_token(typ="Refresh")).status.message)
        # The client's roles must include "use" (resource_access.<client>.roles).
        resp = self.check(self.keycloak_token(resource_access={CLIENT: {"roles": ["view"]}}))
        self.assert_denied(resp, "claim_mismatch")
        self.assertIn(f"claim resource_access.{CLIENT}.roles", resp.status.message)

    def test_service_account_tokens_unchanged_beside_providers(self):
        resp = self.check(self.world.token_a(), path="/x")
        self.assert_allowed(resp, "cluster-a", "shop", "web")

    # ---- groups and users per cluster ----

    def test_group_allow_and_deny_per_cluster(self):
        self.assert_user(self.check(self.dex_token(), path="/admin"), "cluster-a", "corp:alice@example.com",
                         "corp:platform-admins,corp:dev", "dex")
        resp = self.check(self.dex_token(email="bob@example.com", groups=("dev",)), path="/admin")
        self.assert_denied(resp, "forbidden")
        self.assertIn("rule admins does not allow user corp:bob@example.com", resp.status.message)
        # cluster-c trusts no provider: the same genuine token is provider_not_allowed there.
        resp = self.check(self.dex_token(), cluster="cluster-c", path="/admin")
        self.assert_denied(resp, "provider_not_allowed")
        self.assertEqual(resp.denied_response.status.code, 403)
        self.assertIn("identity provider dex is not trusted by cluster cluster-c", resp.status.message)
        self.assert_denied(self.check(self.keycloak_token(), cluster="cluster-b"), "provider_not_allowed")

    def test_user_rule(self):
        resp = self.check(self.dex_token(email="bob@example.com", groups=()), path="/bob/x")
        self.assert_user(resp, "cluster-a", "corp:bob@example.com", "", "dex")
        resp = self.check(self.dex_token(), path="/bob/x")
        self.assert_denied(resp, "forbidden")
        self.assertIn("rule bob-only", resp.status.message)
        # A service account never passes a users-only rule.
        self.assert_denied(self.check(self.world.token_a(namespace="ops"), path="/bob"), "forbidden")

    def test_dex_token_at_a_target_accepting_only_service_accounts(self):
        resp = self.check(self.dex_token(), cluster="cluster-b", path="/x")
        self.assert_denied(resp, "forbidden")
        self.assertIn("rule b-service-accounts does not allow user corp:alice@example.com", resp.status.message)
        self.assert_allowed(self.check(self.world.token_b(), cluster="cluster-b", path="/x"), "cluster-b",
                            "shop", "checkout")

    # ---- claims ----

    def test_email_verified_false_is_claim_mismatch(self):
        resp = self.check(self.dex_token(email_verified=False))
        self.assert_denied(resp, "claim_mismatch")
        self.assertEqual(resp.denied_response.status.code, 401)
        self.assertIn("claim email_verified", resp.status.message)

    def test_provider_token_checked_like_a_clusters(self):
        self.assert_denied(self.check(self.dex_token(aud=["other"])), "audience_mismatch")
        expired = h.mint(self.dex_key, iss=DEX, aud=(CLIENT,), namespace=None, exp_in=-3600,
                         claims={"email": "a@example.com", "email_verified": True})
        self.assert_denied(self.check(expired), "expired")
        # A service-account token signed with the provider's key is never a provider token.
        sa = h.mint(self.dex_key, iss=DEX, aud=(CLIENT,), namespace="ops", service_account="deployer",
                    claims={"email": "a@example.com"})
        resp = self.check(sa)
        self.assert_denied(resp, "claim_mismatch")
        self.assertIn("kubernetes.io", resp.status.message)
        # The provider's issuer with a cluster's key verifies nothing.
        forged = h.mint(self.world.key_a, iss=DEX, aud=(CLIENT,), namespace=None,
                        claims={"email": "a@example.com", "email_verified": True})
        self.assert_denied(self.check(forged), "unknown_key")
        forged = h.mint(self.world.key_a, iss=DEX, aud=(CLIENT,), namespace=None, kid="dex-2026",
                        claims={"email": "a@example.com", "email_verified": True})
        self.assert_denied(self.check(forged), "bad_signature")

    def test_groups_claim_string_array_absent_nested(self):
        cases = [
            ("string", self.dex_token(groups="platform-admins"), "corp:platform-admins"),
            ("array", self.dex_token(groups=("a", "b", "c")), "corp:a,corp:b,corp:c"),
            ("absent", self.dex_token(groups=None), ""),
            ("nested", self.keycloak_token(realm_roles=("viewer",)), "kc:viewer"),
        ]
        for label, token, groups in cases:
            with self.subTest(groups=label):
                resp = self.check(token)
                self.assertEqual(resp.status.code, 0, resp.status.message)
                self.assertEqual(h.header_dict(resp.ok_response.headers).get("x-tokengate-groups", ""), groups)
        resp = self.check(self.dex_token(groups=("a,b",)))
        self.assert_denied(resp, "malformed_token")
        self.assertIn("holds a comma", resp.status.message)

    # ---- log and explain ----

    def test_decision_log_names_the_provider(self):
        before = len(self.server.decisions())
        self.check(self.dex_token(), path="/log-probe")
        self.check(self.dex_token(), cluster="cluster-c", path="/log-probe")
        lines = [d for d in self.server.wait_decisions(before + 2) if d.get("path") == "/log-probe"]
        self.assertEqual(len(lines), 2, lines)
        self.assertEqual([(d["decision"], d["reason"], d["provider"], d["subject"]) for d in lines],
                         [("allow", "ok", "dex", "corp:alice@example.com"),
                          ("deny", "provider_not_allowed", "dex", None)])
        self.assertIsNone(lines[0]["issuer_cluster"])

    def provider_decisions(self):
        return {(s.labels["provider"], s.labels["decision"], s.labels["reason"]): s.value
                for s in self.server.metric_samples(self.admin_port, "tokengate_provider_decisions_total")}

    def cluster_decisions(self):
        return {(s.labels["cluster"], s.labels["decision"], s.labels["reason"]): s.value
                for s in self.server.metric_samples(self.admin_port, "tokengate_decisions_total")}

    def test_metrics_count_decisions_per_provider(self):
        before, before_clusters = self.provider_decisions(), self.cluster_decisions()
        self.check(self.dex_token())
        self.check(self.dex_token(), cluster="cluster-c")
        self.check(self.keycloak_token(typ="Refresh"))
        self.check(self.world.token_a())  # a service-account token counts on its cluster alone
        want = {("dex", "allow", "ok"): 1, ("dex", "deny", "provider_not_allowed"): 1,
                ("keycloak", "deny", "claim_mismatch"): 1}
        want_clusters = {("cluster-a", "allow", "ok"): 2, ("cluster-c", "deny", "provider_not_allowed"): 1,
                         ("cluster-a", "deny", "claim_mismatch"): 1}

        def grown(now, then):
            return {k: v - then.get(k, 0) for k, v in now.items() if v != then.get(k, 0)}

        deadline = time.monotonic() + 5
        while grown(self.provider_decisions(), before) != want and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(grown(self.provider_decisions(), before), want)
        self.assertEqual(grown(self.cluster_decisions(), before_clusters), want_clusters)

    def test_explain_shows_provider_user_groups_and_rule(self):
        out = subprocess.run([h.tokengate_bin(), "explain", "-c", self.server.config_path, "--cluster",
                              "cluster-a", "--source", "10.1.2.3", "--path", "/admin/x", "--json", "-"],
                             input=self.dex_token(), capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        report = json.loads(out.stdout)
        self.assertEqual((report["provider"], report["username"], report["groups"], report["rule"]),
                         ("dex", "corp:alice@example.com", ["corp:platform-admins", "corp:dev"], "admins"))
        checks = [c["check"] for c in report["checks"]]
        self.assertIn("provider", checks)
        self.assertIn("claim_rules", checks)
        out = subprocess.run([h.tokengate_bin(), "explain", "-c", self.server.config_path, "--cluster",
                              "cluster-a", "--source", "10.1.2.3", "--path", "/admin/x", "-"],
                             input=self.dex_token(), capture_output=True, text=True, timeout=30)
        self.assertIn("identity provider: dex user: corp:alice@example.com groups: corp:platform-admins,corp:dev",
                      out.stdout)
        self.assertIn("rule: admins", out.stdout)


class SharedKeyTest(unittest.TestCase):
    def test_key_of_a_cluster_and_a_provider_refused_at_load(self):
        folder = h.new_folder("tg-federation-shared-")
        world = h.World(folder)
        dex = {"name": "dex", "issuer": DEX, "audiences": [CLIENT],
               # cluster-a's own key, as a PEM: another format, the fingerprint as kid.
               "public_key_files": [os.path.basename(world.key_a.public)], "clusters": ["cluster-a"]}
        path = os.path.join(folder, "shared.json")
        with open(path, "w") as f:
            json.dump(world.config(identity_providers=[dex]), f)
        out = subprocess.run([h.tokengate_bin(), "check", "-c", path], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2, out.stdout + out.stderr)
        self.assertIn(f"{path}: identity_providers[0].public_key_files[0]: key kid ", out.stderr)
        self.assertIn("is also a key of cluster cluster-a, from clusters[0].jwks_file", out.stderr)
        self.assertIn("a key may belong to one cluster or identity provider only", out.stderr)
        # serve refuses it too, before listening.
        server = h.Server(folder, world.config(identity_providers=[dex]), "shared")
        with self.assertRaises(RuntimeError):
            server.start(timeout=10)
        server.kill()
        self.assertEqual(server.proc.returncode, 2)
        self.assertIn("a key may belong to one cluster or identity provider only", server.log_text())


if __name__ == "__main__":
    unittest.main()
