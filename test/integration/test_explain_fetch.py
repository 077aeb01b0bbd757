"""`tokengate explain` and `tokengate check --fetch` use the keys a cluster
fetches over HTTPS (jwks_uri), through the server's own fetcher, against the
local HTTPS server and test-time CA of test_jwks: explain decides on the
fetched keys and shows them with their url; --no-fetch decides offline
(unknown_key); a fetch that fails is reported and explain still decides,
within the fetch timeout; check stays offline unless --fetch, which fails
naming the source when a fetch does."""

import json
import os
import socket
import subprocess
import time
import unittest

import tg_harness as h
from test_jwks import ISSUER_R, KeyServer, jwks_of
from test_tls import Pki

FETCH_TIMEOUT = 3
# The request explain decides: for cluster "remote", from an address its source_cidrs hold.
TARGET = ("--cluster", "remote", "--source", "10.0.0.1")


class ExplainFetchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-explain-fetch-")
        cls.pki = Pki(cls.folder)
        cls.key = h.Key(cls.folder, "remote-1", "rsa2048", jwks_kid="remote-2026-1")
        cls.keys = KeyServer(cls.pki)
        cls.keys.serve_json("/jwks", jwks_of(cls.key))
        cls.token = h.mint(cls.key, iss=ISSUER_R, namespace="shop", service_account="web")

    @classmethod
    def tearDownClass(cls):
        cls.keys.close()

    def config(self, url, ca="ca.pem", more_urls=()):
        """A config with cluster "remote" fetching |url| (trusting |ca|), and
        a cluster "remote-N" (issuer ISSUER_R/N) fetching each of |more_urls|."""
        path = os.path.join(self.folder, f"{self.id().rsplit('.', 1)[-1]}.json")
        clusters = [{"name": "remote" if n == 0 else f"remote-{n}",
                     "issuer": ISSUER_R if n == 0 else f"{ISSUER_R}/{n}", "audiences": [h.AUDIENCE],
                     "jwks_uri": u, "ca_file": self.pki.path(ca), "fetch_timeout_seconds": FETCH_TIMEOUT,
                     "source_cidrs": ["0.0.0.0/0"]} for n, u in enumerate([url, *more_urls])]
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"clusters": clusters, "rules": []}, f)
        return path

    def run_tg(self, *args, timeout=30):
        start = time.monotonic()
        out = subprocess.run([h.tokengate_bin(), *args], capture_output=True, text=True, timeout=timeout)
        return out, time.monotonic() - start

    def explain(self, config, *extra):
        out, elapsed = self.run_tg("explain", "-c", config, *TARGET, "--json", *extra, self.token)
        self.assertIn(out.returncode, (0, 1), out.stderr)
        return json.loads(out.stdout), out, elapsed

    def test_explain_decides_on_the_fetched_keys_and_shows_their_url(self):
        url = self.keys.url("/jwks")
        report, out, _ = self.explain(self.config(url))
        self.assertEqual((out.returncode, report["reason"]), (0, "ok"), report)
        [source] = report["remote_keys"]
        self.assertEqual((source["cluster"], source["url"], source["error"]), ("remote", url, None))
        self.assertEqual([(k["kid"], k["url"]) for k in source["keys"]], [("remote-2026-1", url)])
        # The text report names the key and where it came from.
        out, _ = self.run_tg("explain", "-c", self.config(url), *TARGET, self.token)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn(f"kid remote-2026-1 RSA-2048 {url}", out.stdout)
        self.assertIn("decision: ALLOW", out.stdout)

    def test_no_fetch_decides_offline_unknown_key(self):
        before = self.keys.count("/jwks")
        report, out, _ = self.explain(self.config(self.keys.url("/jwks")), "--no-fetch")
        self.assertEqual((out.returncode, report["reason"], report["remote_keys"]), (1, "unknown_key", None))
        self.assertEqual(self.keys.count("/jwks"), before, "--no-fetch fetched")

    def test_server_gone_is_reported_and_decides_unknown_key(self):
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            url = f"https://127.0.0.1:{s.getsockname()[1]}/jwks"
        report, out, elapsed = self.explain(self.config(url))
        self.assertEqual((out.returncode, report["reason"]), (1, "unknown_key"), report)
        [source] = report["remote_keys"]
        self.assertEqual((source["cluster"], source["keys"]), ("remote", []))
        self.assertIn(url, source["error"])
        self.assertLess(elapsed, FETCH_TIMEOUT + 5)
        out, _ = self.run_tg("explain", "-c", self.config(url), *TARGET, self.token)
        self.assertIn(f"cluster remote: FETCH FAILED: {url}", out.stdout)

    def test_servers_that_never_answer_are_fetched_in_parallel_within_fetch_timeout(self):
        with socket.socket() as s, socket.socket() as s2:  # accept (the backlog), never speak TLS
            urls = []
            for sock in (s, s2):
                sock.bind(("127.0.0.1", 0))
                sock.listen(8)
                urls.append(f"https://127.0.0.1:{sock.getsockname()[1]}/jwks")
            report, out, elapsed = self.explain(self.config(urls[0], more_urls=urls[1:]))
        self.assertEqual((out.returncode, report["reason"]), (1, "unknown_key"), report)
        self.assertEqual([src["cluster"] for src in report["remote_keys"]], ["remote", "remote-1"])
        for src, url in zip(report["remote_keys"], urls):
            self.assertIn(url, src["error"])
            self.assertIn("timed out", src["error"].lower())
        # Both time out together: one fetch timeout, not two in a row.
        self.assertGreaterEqual(elapsed, FETCH_TIMEOUT - 0.5)
        self.assertLess(elapsed, 2 * FETCH_TIMEOUT - 0.5)

    def test_explain_fetches_an_identity_providers_keys_by_discovery(self):
        issuer = self.keys.url("/dex")
        self.keys.serve_json("/dex/.well-known/openid-configuration",
                             {"issuer": issuer, "jwks_uri": self.keys.url("/dex/keys")})
        dex_key = h.Key(self.folder, "dex-1", "p256", jwks_kid="dex-2026-1")
        self.keys.serve_json("/dex/keys", jwks_of(dex_key))
        path = self.config(self.keys.url("/jwks"))
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
        cfg["identity_providers"] = [{
            "name": "dex", "issuer": issuer, "audiences": ["tokengate"], "discovery": True,
            "ca_file": self.pki.path("ca.pem"), "fetch_timeout_seconds": FETCH_TIMEOUT,
            "claim_mappings": {"username": {"claim": "email", "prefix": "dex:"},
                               "groups": {"claim": "groups", "prefix": "dex:"}},
            "clusters": ["remote"]}]
        cfg["rules"] = [{"name": "admins", "groups": ["dex:platform-admins"]}]
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        token = h.mint(dex_key, iss=issuer, aud=("tokengate",), namespace=None,
                       claims={"sub": "alice", "email": "alice@example.com", "groups": ["platform-admins"]})
        out, _ = self.run_tg("explain", "-c", path, *TARGET, "--json", token)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        report = json.loads(out.stdout)
        self.assertEqual((out.returncode, report["provider"], report["username"]),
                         (0, "dex", "dex:alice@example.com"), report)
        dex = [src for src in report["remote_keys"] if src.get("provider") == "dex"]
        self.assertEqual([(k["kid"], k["url"]) for k in dex[0]["keys"]],
                         [("dex-2026-1", self.keys.url("/dex/keys"))])
        out, _ = self.run_tg("explain", "-c", path, *TARGET, token)
        self.assertIn(f"identity provider dex: fetched {self.keys.url('/dex/keys')}", out.stdout)

    def test_check_fetch_fails_when_a_fetched_set_holds_another_owners_key(self):
        # cluster "remote-1" serves the same key as "remote": one key, one owner.
        self.keys.serve_json("/copy", jwks_of(self.key))
        path = self.config(self.keys.url("/jwks"), more_urls=[self.keys.url("/copy")])
        out, _ = self.run_tg("check", "-c", path, "--fetch")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("fetch failed: fetched, but refused", out.stderr)
        self.assertIn('"event":"keys_refused"', out.stderr)
        out, _ = self.run_tg("explain", "-c", path, *TARGET, "--json", self.token)
        report = json.loads(out.stdout)
        refused = [src["cluster"] for src in report["remote_keys"] if src["error"]]
        self.assertEqual(len(refused), 1, report["remote_keys"])

    def test_check_fetch_passes_against_the_served_jwks(self):
        url = self.keys.url("/jwks")
        out, _ = self.run_tg("check", "-c", self.config(url), "--fetch")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("1 fetched key from 1 source", out.stdout)
        out, _ = self.run_tg("check", "-c", self.config(url), "--fetch", "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        [cluster] = json.loads(out.stdout)["clusters"]
        self.assertEqual([(k["kid"], k["url"]) for k in cluster["keys"]], [("remote-2026-1", url)])

    def test_check_fetch_fails_naming_the_source_with_a_wrong_ca(self):
        out, _ = self.run_tg("check", "-c", self.config(self.keys.url("/jwks"), ca="rogue-ca.pem"), "--fetch")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("cluster remote: fetch failed: " + self.keys.url("/jwks"), out.stderr)
        self.assertIn("SSL certificate", out.stderr)
        self.assertNotIn("ok:", out.stdout)

    def test_check_without_fetch_stays_offline(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            url = f"https://127.0.0.1:{s.getsockname()[1]}/jwks"
        before = self.keys.count("/jwks")
        for args in ([], ["--json"]):
            out, _ = self.run_tg("check", "-c", self.config(url), *args)
            self.assertEqual(out.returncode, 0, out.stderr)
        out, _ = self.run_tg("check", "-c", self.config(self.keys.url("/jwks")))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.keys.count("/jwks"), before, "check without --fetch fetched")
        out, _ = self.run_tg("check", "-c", self.config(url), "--fetch")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()
