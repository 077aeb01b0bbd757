"""Peer binding (issue 14) against the real binary: a token is allowed only
from the workload its kubernetes.io claim names, as the caller's SPIFFE ID
(source.principal, else the URI SAN of the URL-encoded source.certificate)
says. Certificates are generated here with python3-cryptography."""

import datetime
import json
import os
import subprocess
import unittest
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import tg_harness as h

TD_A = "cluster-a.local"
WEB_A = f"spiffe://{TD_A}/ns/shop/sa/web"  # what token_a() names


def certificate(uris, encode=True):
    """A self-signed leaf with |uris| as URI SANs (none: no SAN at all), as
    Envoy passes it with include_peer_certificate: URL-encoded PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "workload")])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now)
               .not_valid_after(now + datetime.timedelta(hours=1)))
    if uris:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]), critical=False)
    pem = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    return urllib.parse.quote(pem, safe="") if encode else pem


class PeerTest(unittest.TestCase, h.DecisionAsserts):
    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-peer-")
        cls.world = h.World(cls.folder)
        cls.admin_port = h.free_port()
        cfg = cls.world.config(admin_listen=f"127.0.0.1:{cls.admin_port}")
        cfg["clusters"][0]["peer_binding"] = {"mode": "spiffe", "trust_domain": TD_A, "required": True}
        cfg["clusters"][1]["peer_binding"] = {"mode": "spiffe"}  # cluster.local, not required
        # A rule tightens cluster-b's binding on its routes.
        cfg["rules"].insert(0, {"name": "strict-b", "clusters": ["cluster-b"], "path_prefix": "/strict",
                                "peer_binding": {"required": True}})
        cls.config = cfg
        cls.server = h.Server(cls.folder, cfg, "peer").start()
        cls.channel = cls.server.channel()
        cls.stub = h.authz_stub(cls.channel)
        cls.token_a = cls.world.token_a()
        cls.token_b = cls.world.token_b()  # shop:checkout

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code, _ = cls.server.stop()
        if code != 0:
            raise AssertionError(f"tokengate exited {code}:\n{cls.server.log_text()[-4000:]}")

    def check(self, token, cluster="cluster-a", principal=None, certificate=None, path="/", request_id="1",
              headers=None):
        return self.stub.Check(h.check_request(token=token, cluster=cluster, principal=principal,
                                               certificate=certificate, path=path, request_id=request_id,
                                               headers=headers), timeout=10)

    def logged(self, request_id):
        lines = self.server.logged(request_id)
        self.assertEqual(len(lines), 1, request_id)
        return lines[0]

    def peer_counts(self):
        return {(s.labels["cluster"], s.labels["result"]): s.value
                for s in self.server.metric_samples(self.admin_port, "tokengate_peer_binding_total")}

    def test_matching_identity_is_allowed_every_time(self):
        # The first call verifies, the later ones come from the token cache.
        for i in range(4):
            resp = self.check(self.token_a, principal=WEB_A, request_id=f"match-{i}")
            self.assert_allowed(resp, "cluster-a", "shop", "web", peer=WEB_A)
            # A thief's call with the same (now cached) token, between the owner's.
            self.assert_denied(self.check(self.token_a, principal=f"spiffe://{TD_A}/ns/evil/sa/thief"),
                               "peer_mismatch")
        line = self.logged("match-0")
        self.assertEqual((line["peer_binding"], line["peer"], line["decision"]), ("bound", WEB_A, "allow"))

    def test_another_workload_is_refused(self):
        others = {
            "other-sa": f"spiffe://{TD_A}/ns/shop/sa/checkout",
            "other-ns": f"spiffe://{TD_A}/ns/payments/sa/web",
            "other-td": "spiffe://cluster.local/ns/shop/sa/web",
        }
        for name, principal in others.items():
            with self.subTest(name):
                resp = self.check(self.token_a, principal=principal, request_id=f"other-{name}")
                self.assert_denied(resp, "peer_mismatch")
                self.assertEqual(resp.denied_response.status.code, 403)
                self.assertEqual(resp.status.message,
                                 "peer_mismatch: the token belongs to another workload than the caller")
                line = self.logged(f"other-{name}")
                self.assertEqual((line["peer_binding"], line["peer"], line["reason"]),
                                 ("mismatch", principal, "peer_mismatch"))
                self.assertEqual(line["subject"], "system:serviceaccount:shop:web")

    def test_malformed_and_tricky_ids_are_refused(self):
        tricky = {
            "trailing-slash": WEB_A + "/",
            "extra-segments": WEB_A + "/x/y",
            "encoded-slash": f"spiffe://{TD_A}/ns/shop%2Fsa/sa/web",
            "encoded-letter": f"spiffe://{TD_A}/ns/sh%6Fp/sa/web",
            "upper-case-scheme": f"SPIFFE://{TD_A}/ns/shop/sa/web",
            "upper-case-td": f"spiffe://CLUSTER-A.local/ns/shop/sa/web",
            "dot-segments": f"spiffe://{TD_A}/ns/x/../shop/sa/web",
            "port": f"spiffe://{TD_A}:443/ns/shop/sa/web",
            "dns-san-fallback": "web.shop.svc.cluster.local",
            "10-kb": f"spiffe://{TD_A}/ns/shop/sa/" + "w" * 10240,
        }
        for name, principal in tricky.items():
            with self.subTest(name):
                resp = self.check(self.token_a, principal=principal)
                self.assert_denied(resp, "peer_mismatch")

    def test_empty_principal_required(self):
        resp = self.check(self.token_a, principal="", request_id="missing")
        self.assert_denied(resp, "peer_missing")
        self.assertEqual(resp.denied_response.status.code, 403)
        self.assertEqual(self.logged("missing")["peer_binding"], "missing")

    def test_empty_principal_not_required_is_unbound(self):
        # A forged x-tokengate-peer from the client is removed, not passed on.
        resp = self.check(self.token_b, cluster="cluster-b", request_id="unbound",
                          headers={"x-tokengate-peer": "spiffe://cluster.local/ns/shop/sa/checkout"})
        self.assert_allowed(resp, "cluster-b", "shop", "checkout")
        line = self.logged("unbound")
        self.assertEqual((line["peer_binding"], line["peer"]), ("unbound", None))
        # Not required still binds a peer that is there.
        self.assert_denied(self.check(self.token_b, cluster="cluster-b",
                                      principal="spiffe://cluster.local/ns/shop/sa/web"), "peer_mismatch")
        self.assert_allowed(self.check(self.token_b, cluster="cluster-b",
                                       principal="spiffe://cluster.local/ns/shop/sa/checkout"),
                            "cluster-b", "shop", "checkout", peer="spiffe://cluster.local/ns/shop/sa/checkout")

    def test_rule_tightens_its_routes(self):
        self.assert_denied(self.check(self.token_b, cluster="cluster-b", path="/strict/x"), "peer_missing")
        self.assert_allowed(self.check(self.token_b, cluster="cluster-b", path="/strict/x",
                                       principal="spiffe://cluster.local/ns/shop/sa/checkout"),
                            "cluster-b", "shop", "checkout", peer="spiffe://cluster.local/ns/shop/sa/checkout")

    def test_binding_off_ignores_peers(self):
        token = self.world.token_c()
        resp = self.check(token, cluster="cluster-c", principal="spiffe://x/ns/y/sa/z", request_id="off")
        self.assert_allowed(resp, "cluster-c", "batch", "reporter", forward_token=True)
        self.assertIsNone(self.logged("off")["peer_binding"])

    def test_certificate_only_peer(self):
        cases = [
            ("own", certificate([WEB_A]), None),
            ("plain-pem", certificate([WEB_A], encode=False), None),
            ("other-sa", certificate([f"spiffe://{TD_A}/ns/shop/sa/checkout"]), "peer_mismatch"),
            ("no-san", certificate([]), "peer_mismatch"),
            ("two-uri-sans", certificate([WEB_A, f"spiffe://{TD_A}/ns/shop/sa/other"]), "peer_mismatch"),
            ("garbage", "-----BEGIN%20CERTIFICATE-----%0Anope%0A", "peer_mismatch"),
        ]
        for name, cert, reason in cases:
            with self.subTest(name):
                resp = self.check(self.token_a, certificate=cert, request_id=f"cert-{name}")
                if reason:
                    self.assert_denied(resp, reason)
                else:
                    self.assert_allowed(resp, "cluster-a", "shop", "web", peer=WEB_A)
                    self.assertEqual(self.logged(f"cert-{name}")["peer_binding"], "bound")
        # The principal, when present, is what counts.
        resp = self.check(self.token_a, principal=f"spiffe://{TD_A}/ns/shop/sa/checkout",
                          certificate=certificate([WEB_A]))
        self.assert_denied(resp, "peer_mismatch")

    def test_metrics_count_results(self):
        before = self.peer_counts()
        self.check(self.token_a, principal=WEB_A)
        self.check(self.token_a, principal=WEB_A + "/")
        self.check(self.token_a)
        self.check(self.token_b, cluster="cluster-b")
        after = self.peer_counts()
        for key in (("cluster-a", "bound"), ("cluster-a", "mismatch"), ("cluster-a", "missing"),
                    ("cluster-b", "unbound")):
            self.assertEqual(after.get(key, 0) - before.get(key, 0), 1, key)
        self.assertNotIn(("cluster-c", "unbound"), after)

    def test_explain_peer(self):
        path = os.path.join(self.folder, "explain.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.config, f)
        base = [h.tokengate_bin(), "explain", "-c", path, "--cluster", "cluster-a", "--source", "10.1.2.3"]
        ok = subprocess.run(base + ["--peer", WEB_A, self.token_a], capture_output=True, text=True)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        self.assertIn(f"PASS peer           peer {WEB_A} is the token's workload", ok.stdout)
        bad = subprocess.run(base + ["--json", "--peer", WEB_A + "/", self.token_a], capture_output=True,
                             text=True)
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)
        report = json.loads(bad.stdout)
        self.assertEqual((report["reason"], report["peer_binding"], report["peer"]),
                         ("peer_mismatch", "mismatch", WEB_A + "/"))
        none = subprocess.run(base + ["--json", self.token_a], capture_output=True, text=True)
        self.assertEqual(json.loads(none.stdout)["reason"], "peer_missing")


if __name__ == "__main__":
    unittest.main()
