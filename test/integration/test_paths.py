"""Rules match the normalized path, end to end: a subset of the /admin bypass
catalogue (test/policies/test_pol_decide_path.c holds the whole table) sent
through the real binary, each answer checked whole, plus escaped_slashes
"keep" and the decision log of a malformed request."""

import unittest

import tg_harness as h

# (path as the client sent it, expected outcome): "admin" is held by the rule
# admin-is-ops (forbidden for shop:web), "other" falls through to everyone-else.
BYPASS_ATTEMPTS = [
    ("/admin/x", "admin"),
    ("//admin/x", "admin"),
    ("/api/../admin/x", "admin"),
    ("/../../admin", "admin"),
    ("/%2e%2E/admin/x", "admin"),
    ("/api/.%2e/admin/x", "admin"),
    ("/%61dmin/x", "admin"),
    ("/%61%64%6D%69%6E", "admin"),
    ("/admin;jsessionid=1/x", "admin"),
    ("/admin?x=/public", "admin"),
    ("/%41dmin/x", "other"),
    ("/public?/admin", "other"),
    ("/public#/admin", "other"),
    ("/admin/../public", "other"),
    ("/admin%2Fx", "malformed_request"),
    ("/api%2f..%2fadmin", "malformed_request"),
    ("/api/..%5Cadmin", "malformed_request"),
    ("/api\\..\\admin", "malformed_request"),
    ("/..;/admin/x", "malformed_request"),
    ("/%c0%ae%c0%ae/admin", "malformed_request"),
    ("/admin%00", "malformed_request"),
    ("/api\x00/../admin", "malformed_request"),
    ("/adm\x7fin", "malformed_request"),
    ("admin/x", "malformed_request"),
    ("/ admin", "malformed_request"),
]


class PathRulesTest(h.DecisionAsserts, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-paths-")
        cls.world = h.World(cls.folder)
        # deny_details full: the answers name the rule that held each path.
        cls.server = h.Server(cls.folder, cls.world.config(deny_details="full"), "paths").start()
        cls.keep = h.Server(cls.folder, cls.world.config(escaped_slashes="keep"), "paths-keep").start()
        cls.channel = cls.server.channel()
        cls.keep_channel = cls.keep.channel()
        cls.token = cls.world.token_a()

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.keep_channel.close()
        for server in (cls.server, cls.keep):
            code, elapsed = server.stop()
            if code != 0 or elapsed > 5.0:
                raise AssertionError(f"{server.name} exited {code} after {elapsed:.1f}s:\n{server.log_text()[-4000:]}")

    def check(self, path, channel=None, **kw):
        kw.setdefault("token", self.token)
        req = h.check_request(cluster="cluster-a", path=path, request_id="p", **kw)
        return h.authz_stub(channel or self.channel).Check(req, timeout=10)

    def test_bypass_attempts(self):
        self.assertGreaterEqual(len(BYPASS_ATTEMPTS), 20)
        for path, outcome in BYPASS_ATTEMPTS:
            with self.subTest(path=path):
                resp = self.check(path)
                if outcome == "admin":
                    self.assert_denied(resp, "forbidden")
                    self.assertIn("admin-is-ops", resp.status.message)
                elif outcome == "other":
                    self.assert_allowed(resp, "cluster-a", "shop", "web")
                else:
                    self.assert_denied(resp, "malformed_request")
                    self.assertIn("path", resp.status.message)

    def test_malformed_path_wins_over_a_missing_token(self):
        resp = self.check("/api/..;/admin", token=None)
        self.assert_denied(resp, "malformed_request")

    def test_escaped_slashes_keep(self):
        # Kept encoded and matched literally: "/admin%2Fx" begins with /admin...
        self.assert_denied(self.check("/admin%2fx", self.keep_channel), "forbidden")
        # ...and the encoded slashes do not separate segments for the ".." between them.
        self.assert_allowed(self.check("/api%2F..%2Fadmin", self.keep_channel), "cluster-a", "shop", "web")
        self.assert_denied(self.check("/api\\admin", self.keep_channel), "malformed_request")

    def test_decision_log_names_the_reason(self):
        before = len(self.server.decisions())
        self.check("/api/%2e%2e%5cadmin")
        lines = self.server.wait_decisions(before + 1)
        mine = [line for line in lines[before:] if line.get("reason") == "malformed_request"]
        self.assertTrue(mine, lines[before:])
        self.assertEqual(mine[-1]["decision"], "deny")


if __name__ == "__main__":
    unittest.main()
