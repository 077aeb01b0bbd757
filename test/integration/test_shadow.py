"""Shadow rules (issue 8): a rule or a cluster with "mode": "shadow" allows
what its rules would deny, tells upstream why (x-tokengate-shadow-reason),
logs and counts it as shadow_deny; a token that fails before the rules is
still denied; the decision log carries the deciding generation; explain
says what shadow mode does."""

import http.client
import json
import subprocess
import time
import unittest

from prometheus_client.parser import text_string_to_metric_families

import tg_harness as h


class ShadowTest(unittest.TestCase, h.DecisionAsserts):
    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-shadow-")
        cls.world = h.World(cls.folder)
        cls.admin_port = h.free_port()
        cfg = cls.world.config(admin_listen=f"127.0.0.1:{cls.admin_port}")
        cfg["rules"][0]["mode"] = "shadow"  # admin-is-ops on cluster-a
        cfg["clusters"][2]["mode"] = "shadow"  # cluster-c
        cfg["rules"].insert(2, {"name": "c-nobody", "clusters": ["cluster-c"], "namespaces": ["nobody"]})
        cls.config = cfg
        cls.server = h.Server(cls.folder, cfg, "shadow").start()
        cls.channel = cls.server.channel()
        cls.stub = h.authz_stub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code, _ = cls.server.stop()
        if code != 0:
            raise AssertionError(f"tokengate exited {code}:\n{cls.server.log_text()[-4000:]}")

    def check(self, token, cluster, path="/", source="10.1.2.3", request_id="1"):
        return self.stub.Check(h.check_request(token=token, cluster=cluster, path=path, source=source,
                                               request_id=request_id), timeout=10)

    def logged(self, request_id):
        """The one decision line of |request_id| (lines may trail the answer)."""
        deadline = time.monotonic() + 10
        while True:
            lines = [d for d in self.server.decisions() if d["request_id"] == f"it-{request_id}"]
            if lines or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(len(lines), 1, request_id)
        return lines[0]

    def shadow_count(self, cluster):
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=10)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if (s.name == "tokengate_decisions_total" and s.labels["decision"] == "shadow_deny"
                        and s.labels["cluster"] == cluster and s.labels["reason"] == "forbidden"):
                    return s.value
        return 0

    def startup_generation(self):
        for line in self.server.log_text().splitlines():
            if line.startswith("{") and json.loads(line).get("event") == "startup":
                return json.loads(line)["generation"]
        self.fail("no startup event")

    def test_shadow_rule_allows_and_says_why(self):
        before = self.shadow_count("cluster-a")
        resp = self.check(self.world.token_a(), "cluster-a", path="/admin/x", request_id="shadow-rule")
        self.assertEqual(resp.status.code, 0, resp.status.message)
        headers = h.header_dict(resp.ok_response.headers)
        self.assertEqual(headers["x-tokengate-shadow-reason"], "forbidden")
        self.assertEqual(headers["x-tokengate-subject"], "system:serviceaccount:shop:web")
        line = self.logged("shadow-rule")
        self.assertEqual((line["decision"], line["reason"]), ("shadow_deny", "forbidden"))
        self.assertEqual(line["generation"], self.startup_generation())
        self.assertEqual(self.shadow_count("cluster-a"), before + 1)

    def test_enforced_rule_still_denies(self):
        resp = self.check(self.world.token_b(service_account="web"), "cluster-b", path="/payments",
                          request_id="enforced")
        self.assert_denied(resp, "forbidden")
        self.assertEqual(self.logged("enforced")["decision"], "deny")

    def test_plain_allow_has_no_shadow_header(self):
        resp = self.check(self.world.token_a(namespace="ops"), "cluster-a", path="/admin/x", request_id="ops")
        self.assertNotIn("x-tokengate-shadow-reason", h.header_dict(resp.ok_response.headers))
        self.assertEqual(self.logged("ops")["decision"], "allow")

    def test_shadow_cluster_allows_rule_denials(self):
        resp = self.check(self.world.token_c(), "cluster-c", request_id="shadow-cluster")
        self.assertEqual(h.header_dict(resp.ok_response.headers)["x-tokengate-shadow-reason"], "forbidden")
        self.assertEqual(self.logged("shadow-cluster")["decision"], "shadow_deny")

    def test_failures_before_the_rules_are_denied(self):
        good = self.world.token_c()
        head, payload, sig = good.split(".")
        tampered = ".".join([head, payload, sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]])
        cases = [
            (self.world.token_c(exp_in=-3600), "cluster-c", "expired"),
            (self.world.token_a(), "cluster-c", "cluster_mismatch"),
            (tampered, "cluster-c", "bad_signature"),
            (None, "cluster-c", "missing_token"),
            (self.world.token_a(), "cluster-a", "source_not_allowed"),
        ]
        for i, (token, cluster, reason) in enumerate(cases):
            source = "192.0.2.1" if reason == "source_not_allowed" else "10.1.2.3"
            resp = self.check(token, cluster, path="/admin/x", source=source, request_id=f"pre-{i}")
            self.assert_denied(resp, reason)

    def test_explain_shows_shadow(self):
        out = subprocess.run([h.tokengate_bin(), "explain", "-c", self.server.config_path, "--cluster",
                              "cluster-a", "--source", "10.1.2.3", "--path", "/admin/x", self.world.token_a()],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("rule admin-is-ops is in shadow mode: would deny (forbidden), allowed", out.stdout)


if __name__ == "__main__":
    unittest.main()
