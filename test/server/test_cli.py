"""tokengate check / explain / --help / --version, run as the real binary.

Paths come from the environment (set by CMake): TOKENGATE (the tokengate
binary) and TG_MINT (the tg-mint tool). Keys, configs and tokens are made in
a temporary folder at test time.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

TOKENGATE = os.environ.get("TOKENGATE", "")
TG_MINT = os.environ.get("TG_MINT", "")


def run(*args, stdin=None):
    return subprocess.run([TOKENGATE, *args], input=stdin, capture_output=True, text=True, timeout=60)


def mint(*args):
    out = subprocess.run([TG_MINT, *args], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError("tg-mint failed: " + out.stderr)
    return out.stdout.strip()


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tg-cli-")
        d = cls.dir
        for name in ("a", "b"):
            mint("keygen", "--type", "p256", "--private", f"{d}/{name}.pem",
                 "--jwks", f"{d}/{name}.jwks.json", "--kid", f"{name}1")
        cls.config = cls.write("config.json", {
            "clusters": [
                {"name": "a", "issuer": "https://a.example", "audiences": ["api-a"],
                 "jwks_file": "a.jwks.json", "hosts": ["api.a.example"]},
                {"name": "b", "issuer": "https://b.example", "audiences": ["api-b"],
                 "jwks_file": "b.jwks.json"},
            ],
        })
        cls.token_a = mint("sign", "--key", f"{d}/a.pem", "--kid", "a1", "--iss", "https://a.example",
                           "--aud", "api-a", "--namespace", "default", "--service-account", "app")
        cls.token_b = mint("sign", "--key", f"{d}/b.pem", "--kid", "b1", "--iss", "https://b.example",
                           "--aud", "api-b", "--namespace", "default", "--service-account", "app")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)

    @classmethod
    def write(cls, name, content):
        path = os.path.join(cls.dir, name)
        with open(path, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))
        return path

    # ---- check ----------------------------------------------------------

    def test_check_ok(self):
        path = self.write("clean.json", {
            "clusters": [
                {"name": "a", "issuer": "https://a.example", "audiences": ["api-a"], "jwks_file": "a.jwks.json",
                 "source_cidrs": ["10.1.0.0/16"]},
                {"name": "b", "issuer": "https://b.example", "audiences": ["api-b"], "jwks_file": "b.jwks.json",
                 "source_cidrs": ["10.2.0.0/16"]},
            ],
        })
        for strict in ([], ["--strict"]):
            out = run("check", "-c", path, *strict)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout, f"ok: {path}: 2 clusters, 2 keys, 0 rules\n")
            self.assertEqual(out.stderr, "")

    # A config with one of each warning; (JSON path, words of the warning).
    WARNED = {
        "clusters": [
            {"name": "a", "issuer": "https://a.example/", "audiences": ["api-a"], "jwks_file": "a.jwks.json",
             "source_cidrs": ["10.1.2.3"]},
            {"name": "b", "issuer": "b.example", "audiences": ["api-b"], "jwks_file": "b.jwks.json"},
        ],
        "rules": [
            {"name": "api", "clusters": ["a", "b"], "path_prefix": "/api", "methods": ["GET", "POST"]},
            {"name": "api-v1", "clusters": ["a"], "path_prefix": "/api/v1", "methods": ["GET"],
             "namespaces": ["ops"]},
            {"name": "admin", "clusters": ["a"], "path_prefix": "/admin"},
        ],
    }
    WARNINGS = [
        ("clusters[0].source_cidrs[0]", 'CIDR without a prefix length ("10.1.2.3"); write 10.1.2.3/32'),
        ("clusters[0].issuer", "ends with '/'"),
        ("clusters[1].issuer", "is not an https URL"),
        ("clusters[1]", "cluster b has no source_cidrs"),
        ("rules[1]", "rule api-v1 can never match: rules[0] (api) comes first"),
    ]

    def test_check_warnings_exit_0(self):
        path = self.write("warned.json", self.WARNED)
        out = run("check", "-c", path)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, f"ok: {path}: 2 clusters, 2 keys, 3 rules, 5 warnings\n")
        lines = out.stderr.splitlines()
        self.assertEqual(len(lines), len(self.WARNINGS), out.stderr)
        for where, words in self.WARNINGS:
            with self.subTest(where=where):
                self.assertTrue(any(line.startswith(f"warning: {path}: {where}: ") and words in line
                                    for line in lines), out.stderr)

    def test_check_strict_makes_warnings_fatal(self):
        path = self.write("warned.json", self.WARNED)
        out = run("check", "--strict", "-c", path)
        self.assertEqual(out.returncode, 2)
        self.assertEqual(out.stdout, "")
        self.assertIn(f"warning: {path}: rules[1]: rule api-v1 can never match", out.stderr)
        self.assertIn(f"tokengate: {path}: 5 warnings, fatal with --strict", out.stderr)
        # --strict with --json still prints the document, and still fails.
        out = run("check", "--strict", "--json", "-c", path)
        self.assertEqual(out.returncode, 2)
        self.assertEqual(len(json.loads(out.stdout)["warnings"]), 5)

    def test_check_json_prints_what_was_loaded(self):
        d = self.dir
        mint("keygen", "--type", "rsa2048", "--private", f"{d}/r.pem", "--public", f"{d}/r.pub.pem")
        kid_r = mint("fingerprint", "--key", f"{d}/r.pub.pem")
        path = self.write("loaded.json", {
            "clusters": [
                {"name": "a", "issuer": "https://a.example", "audiences": ["api-a", "api-a2"],
                 "jwks_file": "a.jwks.json", "public_key_files": ["r.pub.pem"],
                 "hosts": ["API.A.example", "*.East.example"], "source_cidrs": ["10.1.0.0/16", "fd00:a::/64"],
                 "claim_to_headers": [{"claim": "kubernetes.io.pod.name", "header": "X-Pod-Name"}],
                 "peer_binding": {"mode": "spiffe", "trust_domain": "a.local"}},
                {"name": "b", "issuer": "https://b.example", "audiences": ["api-b"], "jwks_file": "b.jwks.json"},
            ],
            "rules": [
                {"name": "admin", "clusters": ["a"], "path_prefix": "/admin", "ignore_case": True,
                 "methods": ["POST"], "namespaces": ["ops"], "service_accounts": ["ops:deployer"],
                 "source_cidrs": ["10.1.8.0/24"], "headers": {"X-Tenant": ["*"], "x-api-version": ["v2", "v3"]},
                 "peer_binding": {"required": True}},
                {"name": "rest"},
            ],
        })
        out = run("check", "--json", "-c", path)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stderr, "", "warnings are in the document, not on stderr")
        doc = json.loads(out.stdout)
        self.assertEqual(doc, {
            "config": path,
            "clusters": [
                {"name": "a", "issuer": "https://a.example", "audiences": ["api-a", "api-a2"],
                 "hosts": ["api.a.example", "*.east.example"], "source_cidrs": ["10.1.0.0/16", "fd00:a::/64"],
                 "claim_to_headers": [{"claim": "kubernetes.io.pod.name", "header": "x-pod-name"}],
                 "peer_binding": {"mode": "spiffe", "trust_domain": "a.local", "required": False},
                 "keys": [{"kid": "a1", "type": "EC P-256", "file": "a.jwks.json"},
                          {"kid": kid_r, "type": "RSA-2048", "file": "r.pub.pem"}]},
                {"name": "b", "issuer": "https://b.example", "audiences": ["api-b"], "hosts": None,
                 "source_cidrs": None, "claim_to_headers": None, "peer_binding": None,
                 "keys": [{"kid": "b1", "type": "EC P-256", "file": "b.jwks.json"}]},
            ],
            "identity_providers": [],
            "rules": [
                {"name": "admin", "clusters": ["a"], "path_prefix": "/admin", "ignore_case": True,
                 "methods": ["POST"], "headers": {"x-tenant": ["*"], "x-api-version": ["v2", "v3"]},
                 "namespaces": ["ops"], "service_accounts": ["ops:deployer"], "source_cidrs": ["10.1.8.0/24"],
                 "peer_binding": {"required": True}, "users": None, "groups": None},
                {"name": "rest", "clusters": None, "path_prefix": None, "ignore_case": False, "methods": None,
                 "headers": None, "namespaces": None, "service_accounts": None, "source_cidrs": None,
                 "peer_binding": None, "users": None, "groups": None},
            ],
            "warnings": [f"{path}: clusters[1]: cluster b has no source_cidrs: its tokens are accepted from any "
                         "address; add source_cidrs with the networks its workloads call from"],
        })
        # Stable for CI to diff: byte for byte the same on a second run.
        self.assertEqual(run("check", "--json", "-c", path).stdout, out.stdout)
        # Config order, header conditions included.
        self.assertLess(out.stdout.index('"x-tenant"'), out.stdout.index('"x-api-version"'))
        # Never key material: no modulus or coordinate of the keys appears.
        with open(f"{d}/a.jwks.json") as f:
            jwk = json.load(f)["keys"][0]
        self.assertNotIn(jwk["x"], out.stdout)
        self.assertNotIn(jwk["y"], out.stdout)
        with open(f"{d}/r.pub.pem") as f:
            pem_body = "".join(f.read().splitlines()[1:-1])
        self.assertNotIn(pem_body[20:60], out.stdout)

    def test_check_same_key_in_two_clusters(self):
        d = self.dir
        mint("keygen", "--type", "p256", "--private", f"{d}/s.pem", "--public", f"{d}/s.pub.pem",
             "--jwks", f"{d}/s.jwks.json", "--kid", "shared-a")
        path = self.write("shared.json", {
            "clusters": [
                {"name": "a", "issuer": "https://a.example", "audiences": ["x"], "jwks_file": "s.jwks.json"},
                {"name": "b", "issuer": "https://b.example", "audiences": ["x"],
                 "public_key_files": ["s.pub.pem"]},
            ]})
        out = run("check", "-c", path)
        self.assertEqual(out.returncode, 2)
        self.assertEqual(out.stdout, "")
        self.assertIn(f"{path}: clusters[1].public_key_files[0]: key kid ", out.stderr)
        self.assertIn("is also a key of cluster a, from clusters[0].jwks_file (s.jwks.json, kid shared-a): "
                      "a key may belong to one cluster only", out.stderr)

    def test_check_errors_with_hints(self):
        cases = [
            ({"name": "a", "issuer": "https://a.example", "audiences": ["x"], "jwks_file": "a.pem"},
             'clusters[0].jwks_file: ', '("a.pem"); this is a PEM key: use public_key_files'),
            ({"name": "a", "issuer": "https://a.example", "audiences": ["x"], "jwks_file": "a.jwks.json",
              "source_cidrs": ["10.20.1.0/16"]},
             "clusters[0].source_cidrs[0]: ",
             'not a CIDR ("10.20.1.0/16"); host bits are set: did you mean 10.20.0.0/16?'),
            ({"name": "a", "issuer": "https://a.example", "audience": ["x"], "jwks_file": "a.jwks.json"},
             "clusters[0].audience: ", 'unknown key (["x"]); did you mean `audiences`?'),
        ]
        for cluster, where, words in cases:
            with self.subTest(where=where):
                path = self.write("hint.json", {"clusters": [cluster]})
                out = run("check", "-c", path)
                self.assertEqual(out.returncode, 2)
                self.assertTrue(out.stderr.startswith(f"{path}: {where}"), out.stderr)
                self.assertTrue(out.stderr.endswith(words + "\n"), out.stderr)
                self.assertEqual(out.stderr.count("\n"), 1, "one error, no follow-on errors: " + out.stderr)

    def test_check_with_rules(self):
        path = self.write("rules.json", {
            "clusters": [{"name": "a", "issuer": "i", "audiences": ["x"], "jwks_file": "a.jwks.json"}],
            "rules": [{"name": "r1", "clusters": ["a"]}, {"name": "r2", "path_prefix": "/x"}],
        })
        out = run("check", "--config", path)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("1 cluster, 1 key, 2 rules", out.stdout)

    def test_check_errors_name_path_and_value(self):
        path = self.write("bad.json", {
            "clusters": [{"name": "a", "issuer": "i", "audiences": ["x"], "jwks_file": "a.jwks.json",
                          "source_cidrs": ["10.0.0.0/33"]}],
            "workers": 999,
        })
        out = run("check", "-c", path)
        self.assertEqual(out.returncode, 2)
        self.assertEqual(out.stdout, "")
        self.assertIn('bad.json: clusters[0].source_cidrs[0]: not a CIDR ("10.0.0.0/33")', out.stderr)
        self.assertIn("bad.json: workers: must be between 0 and 256 (999)", out.stderr)

    def test_check_missing_key_file(self):
        path = self.write("nokey.json", {
            "clusters": [{"name": "a", "issuer": "i", "audiences": ["x"], "jwks_file": "nope.json"}]})
        out = run("check", "-c", path)
        self.assertEqual(out.returncode, 2)
        self.assertIn("clusters[0].jwks_file", out.stderr)
        self.assertIn("nope.json", out.stderr)

    def test_check_syntax_error(self):
        path = self.write("syntax.json", '{\n  "clusters": [,]\n}\n')
        out = run("check", "-c", path)
        self.assertEqual(out.returncode, 2)
        self.assertRegex(out.stderr, re.escape(path) + r":2:\d+: ")

    def test_check_usage_errors(self):
        for args in (["check"], ["check", "-c"], ["check", "-c", self.config, "extra"],
                     ["check", "--bogus", "-c", self.config], ["check", "-c", "/nonexistent.json"],
                     ["check", "--strict=yes", "-c", self.config], ["check", "--json=1", "-c", self.config],
                     ["check", "--fetch=1", "-c", self.config], ["check", "--no-fetch", "-c", self.config]):
            with self.subTest(args=args):
                out = run(*args)
                self.assertEqual(out.returncode, 2)
                self.assertNotEqual(out.stderr, "")

    # ---- explain --------------------------------------------------------

    def test_explain_allow_text(self):
        out = run("explain", "-c", self.config, "--cluster", "a", "--source", "10.0.0.1", self.token_a)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        text = out.stdout
        for needle in ('"alg": "ES256"', '"kid": "a1"', '"iss": "https://a.example"', '"namespace": "default"',
                       "PASS cluster", "PASS signature", "kid a1 (EC P-256)", "PASS expiry", "PASS audience",
                       "PASS identity", "PASS source", "subject: system:serviceaccount:default:app",
                       "decision: ALLOW reason: ok"):
            self.assertIn(needle, text)
        self.assertRegex(text, r"exp \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
        self.assertNotIn(self.token_a.rsplit(".", 1)[1], text, "the signature is never printed")

    def test_explain_accepts_a_pasted_header_value(self):
        for value in ("Bearer " + self.token_a, "bearer " + self.token_a):
            out = run("explain", "-c", self.config, "--cluster", "a", "--source", "10.0.0.1", "--json", value)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertTrue(json.loads(out.stdout)["allowed"])

    def test_explain_replay_is_cluster_mismatch(self):
        out = run("explain", "-c", self.config, "--cluster", "a", "--json", self.token_b)
        self.assertEqual(out.returncode, 1, out.stderr)
        report = json.loads(out.stdout)
        self.assertIs(report["allowed"], False)
        self.assertEqual(report["reason"], "cluster_mismatch")
        self.assertIn("issued by cluster b", report["message"])
        self.assertEqual(report["cluster"], "a")
        self.assertEqual(report["issuer_cluster"], "b")
        self.assertIsNone(report["subject"])
        # Who was refused: the signature verified, so the identity is known.
        self.assertEqual(report["verified_subject"], "system:serviceaccount:default:app")
        last = report["checks"][-1]
        self.assertEqual(last["check"], "cluster_match")
        self.assertIs(last["passed"], False)
        self.assertTrue(all(c["passed"] for c in report["checks"][:-1]))
        self.assertEqual(report["claims"]["iss"], "https://b.example")

    def test_explain_replay_text(self):
        out = run("explain", "-c", self.config, "--cluster", "a", self.token_b)
        self.assertEqual(out.returncode, 1)
        self.assertIn("FAIL cluster_match", out.stdout)
        self.assertIn("decision: DENY reason: cluster_mismatch message: token was issued by cluster b", out.stdout)
        self.assertIn("verified subject (denied): system:serviceaccount:default:app", out.stdout)

    def test_explain_json_allow(self):
        out = run("explain", "-c", self.config, "--host", "API.A.example:443", "--json", self.token_a)
        self.assertEqual(out.returncode, 0, out.stdout)
        report = json.loads(out.stdout)
        self.assertIs(report["allowed"], True)
        self.assertEqual(report["reason"], "ok")
        self.assertEqual(report["cluster"], "a")
        self.assertEqual(report["subject"], "system:serviceaccount:default:app")
        self.assertEqual(report["namespace"], "default")
        self.assertEqual(report["service_account"], "app")

    def test_explain_token_from_stdin(self):
        out = run("explain", "-c", self.config, "--cluster=b", "--json", "-", stdin=self.token_b + "\n")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(json.loads(out.stdout)["cluster"], "b")

    def test_explain_without_target_is_unknown_cluster(self):
        out = run("explain", "-c", self.config, "--json", self.token_a)
        self.assertEqual(out.returncode, 1)
        report = json.loads(out.stdout)
        self.assertEqual(report["reason"], "unknown_cluster")
        self.assertIsNone(report["cluster"])

    def test_explain_expired_with_now(self):
        out = run("explain", "-c", self.config, "--cluster", "a", "--now", "4102444800", "--json", self.token_a)
        self.assertEqual(out.returncode, 1)
        report = json.loads(out.stdout)
        self.assertEqual(report["reason"], "expired")
        self.assertEqual(report["checks"][-1]["check"], "expiry")
        self.assertIn("2100-01-01T00:00:00Z", report["checks"][-1]["detail"])

    def test_explain_names_the_normalized_path(self):
        config = self.write("paths.json", {
            "clusters": [{"name": "a", "issuer": "https://a.example", "audiences": ["api-a"],
                          "jwks_file": "a.jwks.json"}],
            "rules": [{"name": "admin", "path_prefix": "/admin", "namespaces": ["ops"]}, {"name": "rest"}],
        })
        out = run("explain", "-c", config, "--cluster", "a", "--path", "//api/%2e%2e/%61dmin?x=1", self.token_a)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("PASS path           rules match the normalized path /admin\n", out.stdout)
        self.assertIn("reason: forbidden message: rule admin does not allow default:app", out.stdout)
        out = run("explain", "-c", config, "--cluster", "a", "--path", "/api/..%2fadmin", "--json", self.token_a)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        report = json.loads(out.stdout)
        self.assertEqual(report["reason"], "malformed_request")
        self.assertEqual(report["checks"][-1], {
            "check": "path", "passed": False,
            "detail": "path /api/..%2fadmin: encoded slash or backslash at byte 7"})

    def test_explain_garbage_token(self):
        out = run("explain", "-c", self.config, "--cluster", "a", "--json", "abc")
        self.assertEqual(out.returncode, 1)
        self.assertEqual(json.loads(out.stdout)["reason"], "malformed_token")

    def test_explain_usage_errors(self):
        for args in (["explain", "-c", self.config],
                     ["explain", "-c", self.config, "t1", "t2"],
                     ["explain", "-c", self.config, "--now", "soon", self.token_a],
                     ["explain", "-c", self.config, "--bogus", self.token_a],
                     ["explain", "-c", self.config, "--json=yes", self.token_a],
                     ["explain", "-c", self.config, "--fetch", self.token_a],
                     ["explain", "-c", self.config, "--no-fetch=1", self.token_a],
                     ["explain", self.token_a],
                     ["explain", "-c", os.path.join(self.dir, "missing.json"), self.token_a]):
            with self.subTest(args=args):
                out = run(*args)
                self.assertEqual(out.returncode, 2)
                self.assertEqual(out.stdout, "")

    # ---- help / version / dispatch ----------------------------------------

    def test_help_and_version_everywhere(self):
        version = run("--version")
        self.assertEqual(version.returncode, 0)
        self.assertRegex(version.stdout, r"^tokengate \d+\.\d+\.\d+\n$")
        for args in (["--help"], ["-h"], ["check", "--help"], ["explain", "--help"], ["explain", "-c", "x", "-h"]):
            with self.subTest(args=args):
                out = run(*args)
                self.assertEqual(out.returncode, 0)
                self.assertIn("usage:", out.stdout)
        for args in (["check", "--version"], ["explain", "--version"]):
            with self.subTest(args=args):
                out = run(*args)
                self.assertEqual(out.returncode, 0)
                self.assertEqual(out.stdout, version.stdout)

    def test_bad_usage(self):
        for args in ([], ["frobnicate"], ["--frob"]):
            with self.subTest(args=args):
                out = run(*args)
                self.assertEqual(out.returncode, 2)
                self.assertIn("usage:", out.stderr)


if __name__ == "__main__":
    if not (os.access(TOKENGATE, os.X_OK) and os.access(TG_MINT, os.X_OK)):
        sys.exit("set TOKENGATE and TG_MINT to the tokengate and tg-mint binaries")
    unittest.main()
