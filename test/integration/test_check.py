"""Every decision reason end to end through the real binary, the allow
response, both header encodings, routing, forward_token and
trusted_proxy_hops."""

import os
import unittest

import tg_harness as h


class CheckTest(h.DecisionAsserts, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-check-")
        cls.world = h.World(cls.folder)
        cls.server = h.Server(cls.folder, cls.world.config(), "check").start()
        cls.channel = cls.server.channel()
        cls.stub = h.authz_stub(cls.channel)
        cls.tokens = []

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code, elapsed = cls.server.stop()
        log = cls.server.log_text()
        if code != 0 or elapsed > 5.0:
            raise AssertionError(f"tokengate exited {code} after {elapsed:.1f}s on SIGTERM:\n{log[-4000:]}")
        for token in cls.tokens:
            if token.split(".")[-1] in log or token in log:
                raise AssertionError("a token (or its signature) appears in the server's stderr")

    def check(self, **kw):
        token = kw.get("token")
        if token:
            self.tokens.append(token)
        return self.stub.Check(h.check_request(**kw), timeout=10)

    # ---- allow ---------------------------------------------------------------

    def test_allow_context_extension_headers_map(self):
        token = self.world.token_a(pod="web-7d4b9")
        resp = self.check(token=token, cluster="cluster-a", path="/api/orders?x=1")
        self.assert_allowed(resp, "cluster-a", "shop", "web")

    def test_allow_header_map_raw_value(self):
        token = self.world.token_a()
        resp = self.check(token=token, cluster="cluster-a", raw=True)
        self.assert_allowed(resp, "cluster-a", "shop", "web")

    def test_deny_header_map_raw_value(self):
        resp = self.check(token=self.world.token_a(), cluster="cluster-b", raw=True)
        self.assert_denied(resp, "cluster_mismatch")

    def test_allow_host_routing(self):
        resp = self.check(token=self.world.token_b(), host="api.cluster-b.test:8443")
        self.assert_allowed(resp, "cluster-b", "shop", "checkout")

    def test_host_routing_decides_against_token_from_other_cluster(self):
        resp = self.check(token=self.world.token_a(), host="api.cluster-b.test")
        self.assert_denied(resp, "cluster_mismatch")

    def test_client_x_cluster_header_is_ignored(self):
        # A client header naming cluster-a must not re-route a cluster-b request.
        resp = self.check(token=self.world.token_a(), host="api.cluster-b.test",
                          headers={"x-cluster": "cluster-a", "x-tokengate-cluster": "cluster-a"})
        self.assert_denied(resp, "cluster_mismatch")
        resp = self.check(token=self.world.token_b(), host="api.cluster-b.test",
                          headers={"x-cluster": "cluster-a"})
        self.assert_allowed(resp, "cluster-b", "shop", "checkout")

    def test_context_extension_beats_host(self):
        resp = self.check(token=self.world.token_a(), cluster="cluster-a", host="api.cluster-b.test")
        self.assert_allowed(resp, "cluster-a", "shop", "web")

    def test_forward_token_cluster_keeps_authorization(self):
        resp = self.check(token=self.world.token_c(), cluster="cluster-c")
        self.assert_allowed(resp, "cluster-c", "batch", "reporter", forward_token=True)

    def test_rule_allows_listed_identity(self):
        resp = self.check(token=self.world.token_a(namespace="ops", service_account="admin"),
                          cluster="cluster-a", path="/admin/users")
        self.assert_allowed(resp, "cluster-a", "ops", "admin")
        resp = self.check(token=self.world.token_b(), cluster="cluster-b", method="POST", path="/payments/42")
        self.assert_allowed(resp, "cluster-b", "shop", "checkout")

    # ---- 401 reasons -----------------------------------------------------------

    def test_missing_token(self):
        self.assert_denied(self.check(cluster="cluster-a"), "missing_token")

    def test_malformed_token(self):
        self.assert_denied(self.check(authorization="Bearer not-a-jwt", cluster="cluster-a"), "malformed_token")

    def test_unsupported_alg(self):
        token = h.with_header(self.world.token_a(), {"alg": "HS256", "typ": "JWT", "kid": "cluster-a-2024"})
        self.assert_denied(self.check(token=token, cluster="cluster-a"), "unsupported_alg")

    def test_unknown_key(self):
        token = h.mint(self.world.rogue, iss=h.ISSUER_A, namespace="shop", kid="not-a-cluster-a-kid")
        self.assert_denied(self.check(token=token, cluster="cluster-a"), "unknown_key")

    def test_bad_signature(self):
        # The rogue key claims cluster-a's kid: the signature cannot verify.
        token = h.mint(self.world.rogue, iss=h.ISSUER_A, namespace="shop", kid="cluster-a-2024")
        self.assert_denied(self.check(token=token, cluster="cluster-a"), "bad_signature")

    def test_unknown_issuer(self):
        token = h.mint(self.world.key_a, iss="https://evil.example.com", namespace="shop")
        self.assert_denied(self.check(token=token, cluster="cluster-a"), "unknown_issuer")

    def test_cluster_mismatch_replay(self):
        self.assert_denied(self.check(token=self.world.token_a(), cluster="cluster-b"), "cluster_mismatch")

    def test_cluster_mismatch_shared_issuer(self):
        # cluster-b and cluster-c share an issuer: the verifying key decides.
        self.assert_denied(self.check(token=self.world.token_c(), cluster="cluster-b"), "cluster_mismatch")

    def test_audience_mismatch(self):
        token = self.world.token_a(aud=("https://kubernetes.default.svc",))
        self.assert_denied(self.check(token=token, cluster="cluster-a"), "audience_mismatch")

    def test_expired(self):
        token = self.world.token_a(exp_in=-3600, iat_in=-7200, nbf_in=-7200)
        self.assert_denied(self.check(token=token, cluster="cluster-a"), "expired")

    def test_not_yet_valid(self):
        token = self.world.token_a(exp_in=7200, nbf_in=3600, iat_in=3600)
        self.assert_denied(self.check(token=token, cluster="cluster-a"), "not_yet_valid")

    def test_missing_claim(self):
        token = self.world.token_a(namespace=None)
        self.assert_denied(self.check(token=token, cluster="cluster-a"), "missing_claim")

    def test_stale_token(self):
        token = self.world.token_c(iat_in=-1200, nbf_in=-1200, exp_in=3600)
        self.assert_denied(self.check(token=token, cluster="cluster-c"), "stale_token")

    # ---- 403 reasons -----------------------------------------------------------

    def test_unknown_cluster_context_extension(self):
        resp = self.check(token=self.world.token_a(), cluster="cluster-z", host="api.cluster-a.test")
        self.assert_denied(resp, "unknown_cluster")

    def test_unknown_cluster_host(self):
        self.assert_denied(self.check(token=self.world.token_a(), host="api.nowhere.test"), "unknown_cluster")

    def test_source_not_allowed(self):
        resp = self.check(token=self.world.token_a(), cluster="cluster-a", source="172.16.0.9")
        self.assert_denied(resp, "source_not_allowed")

    def test_x_forwarded_for_ignored_without_trusted_hops(self):
        resp = self.check(token=self.world.token_a(), cluster="cluster-a", source="172.16.0.9",
                          headers={"x-forwarded-for": "10.1.1.1"})
        self.assert_denied(resp, "source_not_allowed")

    def test_forbidden(self):
        resp = self.check(token=self.world.token_a(), cluster="cluster-a", path="/admin/users")
        self.assert_denied(resp, "forbidden")
        resp = self.check(token=self.world.token_b(service_account="cart"), cluster="cluster-b",
                          path="/payments/42")
        self.assert_denied(resp, "forbidden")


class TrustedProxyHopsTest(h.DecisionAsserts, unittest.TestCase):
    """trusted_proxy_hops 2: the source is the 2nd x-forwarded-for entry
    from the right, never the peer address."""

    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-hops-")
        cls.world = h.World(cls.folder)
        cls.server = h.Server(cls.folder, cls.world.config(trusted_proxy_hops=2), "hops").start()
        cls.channel = cls.server.channel()
        cls.stub = h.authz_stub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code, elapsed = cls.server.stop()
        if code != 0 or elapsed > 5.0:
            raise AssertionError(f"tokengate exited {code} after {elapsed:.1f}s:\n{cls.server.log_text()[-4000:]}")

    def check(self, xff, raw=False):
        req = h.check_request(token=self.world.token_a(), cluster="cluster-a", source="203.0.113.5",
                              headers={"x-forwarded-for": xff}, raw=raw)
        return self.stub.Check(req, timeout=10)

    def test_second_from_right_inside_cidr(self):
        self.assert_allowed(self.check("172.16.0.1, 10.9.9.9, 172.16.0.2"), "cluster-a", "shop", "web")
        self.assert_allowed(self.check("172.16.0.1,10.9.9.9,172.16.0.2", raw=True), "cluster-a", "shop", "web")

    def test_second_from_right_outside_cidr(self):
        self.assert_denied(self.check("10.9.9.9, 172.16.0.1, 10.9.9.8"), "source_not_allowed")

    def test_x_forwarded_for_on_two_header_lines_is_unknown_source(self):
        # Each line alone would give an allowed source; which one a proxy
        # appended to cannot be told, so the source is unknown.
        req = h.check_request(token=self.world.token_a(), cluster="cluster-a", source="203.0.113.5",
                              headers={"x-forwarded-for": "10.1.1.1, 10.9.9.9, 172.16.0.2"}, raw=True)
        self.assert_allowed(self.stub.Check(req, timeout=10), "cluster-a", "shop", "web")
        line = req.attributes.request.http.header_map.headers.add()
        line.key = "x-forwarded-for"
        line.raw_value = b"10.2.2.2, 10.8.8.8, 172.16.0.3"
        self.assert_denied(self.stub.Check(req, timeout=10), "source_not_allowed")


if __name__ == "__main__":
    unittest.main()
