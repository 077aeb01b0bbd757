"""Configuration that fits real gateways (issue 17), end to end through the
real binary: wildcard hosts route to their cluster, rule header conditions
select rules and a repeated condition header is malformed_request (headers
map and header_map alike), and claim_to_headers overwrites or removes its
headers in the OK response."""

import unittest

import tg_harness as h

WILDCARD_CONFIG_RULES = [
    {"name": "v2-ops", "clusters": ["cluster-a"], "headers": {"X-Api-Version": ["v2"], "x-tenant": ["*"]},
     "namespaces": ["ops"]},
    {"name": "everyone-else"},
]


class GatewayTest(h.DecisionAsserts, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-gateway-")
        cls.world = h.World(cls.folder)
        # Full denial messages: the tests read which rule and header decided.
        cfg = cls.world.config(rules=WILDCARD_CONFIG_RULES, deny_details="full")
        a, b = cfg["clusters"][0], cfg["clusters"][1]
        a["hosts"] = ["*.east.test", "api.west.test", "*.api.west.test"]
        a["claim_to_headers"] = [
            {"claim": "kubernetes.io.pod.name", "header": "x-pod-name"},
            {"claim": "roles", "header": "X-Roles"},
            {"claim": "level", "header": "x-level"},
        ]
        b["hosts"] = ["*.west.test", "*.api.east.test", "exact.east.test"]
        cls.server = h.Server(cls.folder, cfg, "gateway").start()
        cls.channel = cls.server.channel()
        cls.stub = h.authz_stub(cls.channel)
        cls.token_a = cls.world.token_a(pod="web-7f9", claims={"roles": ["admin", "ops"], "level": 3})
        cls.token_b = cls.world.token_b()

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code, elapsed = cls.server.stop()
        if code != 0 or elapsed > 5.0:
            raise AssertionError(f"gateway exited {code} after {elapsed:.1f}s:\n{cls.server.log_text()[-4000:]}")

    def check(self, req):
        return self.stub.Check(req, timeout=10)

    def ok_headers(self, resp):
        self.assertEqual(resp.status.code, 0, resp.status.message)
        for option in resp.ok_response.headers:
            self.assertEqual(option.append_action, h.OVERWRITE_IF_EXISTS_OR_ADD, option.header.key)
        return h.header_dict(resp.ok_response.headers)

    # ---- wildcard hosts ----

    def test_wildcard_hosts_route(self):
        cases = [
            ("shop.east.test", self.token_a, "cluster-a"),
            ("a.b.East.Test:8443", self.token_a, "cluster-a"),
            ("api.west.test", self.token_a, "cluster-a"),      # exact beats *.west.test
            ("x.west.test", self.token_b, "cluster-b"),
            ("v2.api.west.test", self.token_a, "cluster-a"),   # longest suffix, listed first
            ("v1.api.east.test", self.token_b, "cluster-b"),   # longest suffix wins
            ("exact.east.test", self.token_b, "cluster-b"),    # exact beats the earlier *.east.test
        ]
        for host, token, cluster in cases:
            with self.subTest(host=host):
                resp = self.check(h.check_request(token=token, host=host, path="/x"))
                self.assertEqual(self.ok_headers(resp)["x-tokengate-cluster"], cluster)
        for host in ("east.test", "xeast.test", "a.east.test.", "a.east.test.evil"):
            with self.subTest(host=host):
                self.assert_denied(self.check(h.check_request(token=self.token_a, host=host)), "unknown_cluster")
        # The token of the other cluster is a replay, whatever the wildcard.
        resp = self.check(h.check_request(token=self.token_b, host="shop.east.test"))
        self.assert_denied(resp, "cluster_mismatch")

    # ---- header conditions ----

    def test_header_conditions_select_rule(self):
        for raw in (False, True):
            with self.subTest(raw=raw):
                # Both conditions hold: v2-ops decides, shop:web is not ops.
                resp = self.check(h.check_request(token=self.token_a, cluster="cluster-a", raw=raw,
                                                  headers={"x-api-version": "v2", "X-Tenant": "acme"}))
                self.assert_denied(resp, "forbidden")
                self.assertIn("v2-ops", resp.status.message)
                # A value that differs (case too), or a missing header: the next rule.
                for headers in ({"x-api-version": "V2", "x-tenant": "acme"}, {"x-api-version": "v2"}):
                    resp = self.check(h.check_request(token=self.token_a, cluster="cluster-a", raw=raw,
                                                      headers=headers))
                    self.assertEqual(resp.status.code, 0, f"{headers}: {resp.status.message}")

    def test_repeated_condition_header_is_malformed_request(self):
        # header_map keeps each line: two x-tenant lines.
        req = h.check_request(token=self.token_a, cluster="cluster-a", raw=True,
                              headers={"x-api-version": "v2", "x-tenant": "acme"})
        extra = req.attributes.request.http.header_map.headers.add()
        extra.key = "X-TENANT"
        extra.raw_value = b"other"
        self.assert_denied(self.check(req), "malformed_request")
        # The headers map presents repeated lines joined with a comma.
        resp = self.check(h.check_request(token=self.token_a, cluster="cluster-a",
                                          headers={"x-api-version": "v1,v2"}))
        self.assert_denied(resp, "malformed_request")
        self.assertIn("x-api-version", resp.status.message)
        # A header no condition names may repeat.
        req = h.check_request(token=self.token_a, cluster="cluster-a", raw=True, headers={"x-other": "1"})
        extra = req.attributes.request.http.header_map.headers.add()
        extra.key = "x-other"
        extra.raw_value = b"2"
        self.assertEqual(self.check(req).status.code, 0)

    # ---- claim_to_headers ----

    def test_claim_headers_overwrite(self):
        resp = self.check(h.check_request(token=self.token_a, cluster="cluster-a",
                                          headers={"x-pod-name": "forged", "x-roles": "root"}))
        headers = self.ok_headers(resp)
        self.assertEqual(headers["x-pod-name"], "web-7f9")
        self.assertEqual(headers["x-roles"], "admin,ops")
        self.assertEqual(headers["x-level"], "3")
        self.assertEqual(list(resp.ok_response.headers_to_remove),
                         ["authorization", "x-tokengate-peer", "x-tokengate-shadow-reason"] + h.PROVIDER_HEADERS)

    def test_claim_headers_same_on_every_call(self):
        # A second call with the same token could be served from the token cache: same answer.
        token = self.world.token_a(pod="api-0", claims={"roles": ["reader"], "level": 1})
        first = self.ok_headers(self.check(h.check_request(token=token, cluster="cluster-a")))
        for _ in range(3):
            again = self.ok_headers(self.check(h.check_request(token=token, cluster="cluster-a")))
            self.assertEqual(again, first)
        self.assertEqual((first["x-pod-name"], first["x-roles"], first["x-level"]), ("api-0", "reader", "1"))

    def test_absent_claim_removes_header(self):
        token = self.world.token_a(claims={"level": True})
        resp = self.check(h.check_request(token=token, cluster="cluster-a", headers={"x-pod-name": "forged"}))
        headers = self.ok_headers(resp)
        self.assertEqual(headers["x-level"], "true")
        self.assertNotIn("x-pod-name", headers)
        self.assertEqual(list(resp.ok_response.headers_to_remove),
                         ["authorization", "x-pod-name", "x-roles", "x-tokengate-peer", "x-tokengate-shadow-reason"] +
                         h.PROVIDER_HEADERS)

    def test_unrepresentable_claim_denies(self):
        for claims in ({"level": "a\r\nx-injected: 1"}, {"roles": [{"name": "admin"}]}, {"level": "x" * 4097}):
            with self.subTest(claims=str(claims)[:40]):
                token = self.world.token_a(claims=claims)
                resp = self.check(h.check_request(token=token, cluster="cluster-a"))
                self.assert_denied(resp, "malformed_token")

    def test_other_cluster_has_no_claim_headers(self):
        resp = self.check(h.check_request(token=self.token_b, cluster="cluster-b", path="/x"))
        headers = self.ok_headers(resp)
        self.assertFalse({"x-pod-name", "x-roles", "x-level"} & set(headers))
        self.assertEqual(list(resp.ok_response.headers_to_remove),
                         ["authorization", "x-tokengate-peer", "x-tokengate-shadow-reason"] + h.PROVIDER_HEADERS)


if __name__ == "__main__":
    unittest.main()
