"""Remote keys (issue 9): clusters with "jwks_uri" or "discovery" against a
local HTTPS server (Python's http.server with ssl; its CA and certificate
made with the openssl CLI at test time) that serves discovery documents and
JWKS and records every request. Keys load; a new kid is accepted within
seconds while the old one still works; made-up kids cost at most one fetch;
each kind of failed fetch keeps the last good keys; the bearer token is sent
and re-read; a discovery document naming another issuer is refused; /readyz
stays 503 until a cluster's keys load; the metrics and /config follow.
Identity providers (issue 11) fetch their keys the same way: a Dex-shaped
provider found by discovery, its rotation, and a lying discovery document."""

import http.server
import json
import os
import signal
import ssl
import subprocess
import threading
import time
import unittest

import tg_harness as h
from test_admin import Admin
from test_tls import Pki

ISSUER_R = "https://oidc.remote.example"
WAIT = 15.0


class KeyServer:
    """An HTTPS server on a free loopback port. |routes| maps a path to
    (status, body bytes, extra headers); |mode| breaks every answer:
    "ok", "500", "truncated" (half the body), "empty" ({"keys":[]}), "huge"
    (padded past the 1 MiB bound).
    |requests| records (path, authorization header, time) of each GET."""

    def __init__(self, pki):
        self.routes = {}
        self.mode = "ok"
        self.requests = []
        self.required_bearer = None
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                with outer.lock:
                    outer.requests.append((self.path, self.headers.get("Authorization"), time.monotonic()))
                    route = outer.routes.get(self.path)
                    mode = outer.mode
                    bearer = outer.required_bearer
                if bearer is not None and self.headers.get("Authorization") != f"Bearer {bearer}":
                    status, body, headers = 401, b"{}", {}
                elif route is None:
                    status, body, headers = 404, b"not found", {}
                else:
                    status, body, headers = route
                if mode == "500":
                    status, body = 500, b"internal error"
                elif mode == "truncated":
                    body = body[: len(body) // 2]
                elif mode == "empty":
                    body = b'{"keys":[]}'
                elif mode == "huge":
                    body = body[:-1] + b',"padding":"' + b"x" * (1536 * 1024) + b'"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if mode != "huge":  # no length announced: the bound must hold while reading
                    self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.path("server.pem"), pki.path("server.key"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"https://127.0.0.1:{self.port}{path}"

    def serve_json(self, path, doc, headers=None):
        with self.lock:
            self.routes[path] = (200, json.dumps(doc).encode(), headers or {})

    def count(self, path):
        with self.lock:
            return sum(1 for r in self.requests if r[0] == path)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def jwks_of(*keys):
    out = []
    for key in keys:
        with open(key.jwks, encoding="utf-8") as f:
            out += json.load(f)["keys"]
    return {"keys": out}


def wait_for(predicate, timeout=WAIT, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def events(server, name):
    out = []
    for line in server.log_text().splitlines():
        if line.startswith("{") and f'"event":"{name}"' in line:
            out.append(json.loads(line))
    return out


class RemoteKeysBase(unittest.TestCase, h.DecisionAsserts):
    """A KeyServer with the remote cluster's JWKS, and a tokengate with the
    remote cluster ("remote", jwks_uri) beside cluster-b (a PEM file)."""

    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-jwks-")
        cls.world = h.World(cls.folder)
        cls.pki = Pki(cls.folder)
        cls.key1 = h.Key(cls.folder, "remote-1", "rsa2048", jwks_kid="remote-2026-1")
        cls.key2 = h.Key(cls.folder, "remote-2", "p256", jwks_kid="remote-2026-2")
        cls.keys = KeyServer(cls.pki)

    @classmethod
    def tearDownClass(cls):
        cls.keys.close()

    def setUp(self):
        self.keys.mode = "ok"
        self.keys.required_bearer = None
        self.keys.routes.clear()
        with self.keys.lock:
            self.keys.requests.clear()
        self.keys.serve_json("/jwks", jwks_of(self.key1))
        self.server = None

    def tearDown(self):
        if self.server is not None:
            code, _ = self.server.stop()
            if code != 0:
                raise AssertionError(f"tokengate exited {code}:\n{self.server.log_text()[-4000:]}")

    def remote_cluster(self, **extra):
        c = {"name": "remote", "issuer": ISSUER_R, "audiences": [h.AUDIENCE],
             "jwks_uri": self.keys.url("/jwks"), "ca_file": self.pki.path("ca.pem"),
             "hosts": ["api.remote.test"]}
        c.update(extra)
        return {k: v for k, v in c.items() if v is not None}

    def start(self, *clusters, **overrides):
        self.admin_port = h.free_port()
        base = self.world.config()
        cfg = self.world.config(admin_listen=f"127.0.0.1:{self.admin_port}", rules=[],
                                clusters=[base["clusters"][1], *clusters], **overrides)
        self.server = h.Server(self.folder, cfg, f"jwks-{self.id().rsplit('.', 1)[-1]}").start()
        self.admin = Admin(self.admin_port)
        return self.server

    def check(self, token, cluster="remote"):
        with self.server.channel() as ch:
            return h.authz_stub(ch).Check(h.check_request(token=token, cluster=cluster), timeout=5)

    def token(self, key, **kw):
        return h.mint(key, iss=kw.pop("iss", ISSUER_R), namespace="shop", service_account="web", **kw)

    def allowed(self, token, cluster="remote"):
        return self.check(token, cluster).status.code == 0

    def samples(self):
        return self.admin.scrape()[1]

    def refreshes(self, result, cluster="remote"):
        return self.samples().get(
            ("tokengate_jwks_refresh_total", (("cluster", cluster), ("result", result))), 0)

    def key_gauge(self, cluster="remote"):
        return self.samples().get(("tokengate_keys", (("cluster", cluster),)))

    def wait_loaded(self, key):
        """Waits on the keys gauge, not on checks: a check before the keys
        load would be a kid miss, and use up the cluster's next 10 s."""
        self.assertTrue(wait_for(lambda: self.key_gauge() == 1),
                        f"keys never loaded:\n{self.server.log_text()[-3000:]}")
        token = self.token(key)
        self.assertTrue(self.allowed(token),
                        f"keys never loaded:\n{self.server.log_text()[-3000:]}")
        return token


class RemoteKeysTest(RemoteKeysBase):
    def test_keys_load_and_a_new_kid_is_accepted_within_seconds(self):
        self.start(self.remote_cluster())
        old = self.wait_loaded(self.key1)
        self.assertEqual(self.key_gauge(), 1)
        self.assertGreater(self.samples()[("tokengate_jwks_last_success_timestamp_seconds",
                                           (("cluster", "remote"),))], time.time() - 60)
        # Rotation: the server now also publishes key 2.
        self.keys.serve_json("/jwks", jwks_of(self.key1, self.key2))
        new = self.token(self.key2)
        began = time.monotonic()
        first = self.check(new)
        self.assertLess(time.monotonic() - began, 1.0, "a kid miss must not wait for the fetch")
        self.assert_denied(first, "unknown_key")
        self.assertTrue(wait_for(lambda: self.allowed(new), timeout=5.0),
                        f"the new kid was not accepted:\n{self.server.log_text()[-3000:]}")
        self.assert_allowed(self.check(new), "remote", "shop", "web")
        self.assert_allowed(self.check(old), "remote", "shop", "web")
        self.assertEqual(self.key_gauge(), 2)
        # /config lists each key's kid and URL, never key material.
        status, _, body = self.admin.get("/config")
        self.assertEqual(status, 200)
        remote = [c for c in json.loads(body)["clusters"] if c["name"] == "remote"][0]
        self.assertEqual(sorted((k["kid"], k["url"]) for k in remote["keys"]),
                         [("remote-2026-1", self.keys.url("/jwks")), ("remote-2026-2", self.keys.url("/jwks"))])
        with open(self.key1.jwks, encoding="utf-8") as f:
            modulus = json.load(f)["keys"][0]["n"]
        self.assertNotIn(modulus[:40], body.decode())
        self.assertGreaterEqual(self.refreshes("success"), 2)
        self.assertEqual(self.refreshes("failure"), 0)

    def test_made_up_kids_cost_at_most_one_fetch(self):
        self.start(self.remote_cluster())
        self.wait_loaded(self.key1)
        time.sleep(0.5)
        before = self.keys.count("/jwks")
        for i in range(20):
            self.assert_denied(self.check(self.token(self.key1, kid=f"made-up-{i}")), "unknown_key")
            time.sleep(0.1)
        time.sleep(1.0)
        self.assertEqual(self.keys.count("/jwks") - before, 1,
                         "20 unknown kids in 2 s must cause exactly one refetch")

    def test_failed_fetches_keep_the_last_good_keys(self):
        server = self.start(self.remote_cluster())
        good = self.wait_loaded(self.key1)
        cases = [("500", "HTTP status 500"), ("truncated", "JWKS"), ("empty", "no signing key"),
                 ("huge", "larger than 1048576 bytes"),
                 ("tls", "certificate"), ("gone", "onnect")]
        for mode, cause in cases:
            with self.subTest(mode=mode):
                seen = len(events(server, "jwks_refresh"))
                if mode == "tls":
                    # The config now trusts another CA: the server's certificate fails.
                    cfg = dict(server.config)
                    cfg["clusters"] = [dict(c) for c in cfg["clusters"]]
                    cfg["clusters"][1]["ca_file"] = self.pki.path("rogue-ca.pem")
                    with open(server.config_path, "w", encoding="utf-8") as f:
                        json.dump(cfg, f)
                    self.keys.mode = "ok"
                elif mode == "gone":
                    self.keys.close()
                else:
                    self.keys.mode = mode
                server.proc.send_signal(signal.SIGHUP)  # a reload fetches again at once
                def failed():
                    new = events(server, "jwks_refresh")[seen:]
                    return [e for e in new if e["result"] == "failure" and cause in e["error"]]
                fails = wait_for(failed)
                self.assertTrue(fails, f"no failed fetch ({cause}):\n{server.log_text()[-3000:]}")
                self.assertEqual(fails[-1]["keys"], 1)
                # Counted before it is logged: the counter is never behind the log.
                self.assertGreaterEqual(self.refreshes("failure"),
                                        sum(1 for e in events(server, "jwks_refresh") if e["result"] == "failure"))
                self.assert_allowed(self.check(good), "remote", "shop", "web")
                self.assertEqual(self.key_gauge(), 1)
                status, _, _ = self.admin.get("/readyz")
                self.assertEqual(status, 200)
        # Let the other tests have a server again.
        type(self).keys = KeyServer(self.pki)

    def test_bearer_token_is_sent_and_reread(self):
        token_file = os.path.join(self.folder, "sa-token")
        with open(token_file, "w", encoding="ascii") as f:
            f.write("projected-token-1\n")
        self.keys.required_bearer = "projected-token-1"
        server = self.start(self.remote_cluster(bearer_token_file=token_file))
        self.wait_loaded(self.key1)
        with self.keys.lock:
            seen = [r[1] for r in self.keys.requests if r[0] == "/jwks"]
        self.assertEqual(seen[-1], "Bearer projected-token-1")
        # The kubelet rotates the projected token: the next fetch sends the new one.
        with open(token_file, "w", encoding="ascii") as f:
            f.write("projected-token-2\n")
        self.keys.required_bearer = "projected-token-2"
        self.keys.serve_json("/jwks", jwks_of(self.key1, self.key2))
        successes = self.refreshes("success")
        server.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.refreshes("success") > successes),
                        f"no fetch with the new token:\n{server.log_text()[-3000:]}")
        with self.keys.lock:
            seen = [r[1] for r in self.keys.requests if r[0] == "/jwks"]
        self.assertEqual(seen[-1], "Bearer projected-token-2")
        self.assertTrue(wait_for(lambda: self.allowed(self.token(self.key2))))
        self.assertNotIn("projected-token", server.log_text())

    def test_readyz_503_until_the_keys_load_other_clusters_serve(self):
        self.keys.mode = "500"
        self.start(self.remote_cluster())
        status, _, body = self.admin.get("/readyz")
        self.assertEqual(status, 503)
        self.assertIn(b"remote", body)
        self.assert_denied(self.check(self.token(self.key1)), "unknown_key")
        self.assert_allowed(self.check(self.world.token_b(), cluster="cluster-b"), "cluster-b", "shop",
                            "checkout")
        self.assertEqual(self.key_gauge(), 0)
        self.keys.mode = "ok"  # the retries (backoff from 1 s) now succeed
        self.assertTrue(wait_for(lambda: self.admin.get("/readyz")[0] == 200),
                        f"readyz stayed 503:\n{self.server.log_text()[-3000:]}")
        self.assert_allowed(self.check(self.token(self.key1)), "remote", "shop", "web")
        self.assertEqual(self.samples()[("tokengate_jwks_last_success_timestamp_seconds",
                                         (("cluster", "remote"),))] > 0, True)

    def test_discovery_follows_the_issuer_and_refuses_another_issuer(self):
        issuer = self.keys.url("/issuer")
        self.keys.serve_json("/issuer/.well-known/openid-configuration",
                             {"issuer": issuer, "jwks_uri": self.keys.url("/openid/v1/other-jwks")})
        self.keys.serve_json("/openid/v1/other-jwks", jwks_of(self.key1))
        liar = self.keys.url("/liar")
        self.keys.serve_json("/liar/.well-known/openid-configuration",
                             {"issuer": self.keys.url("/LIAR"), "jwks_uri": self.keys.url("/jwks")})  # byte for byte: case counts
        self.start(self.remote_cluster(name="found", issuer=issuer, jwks_uri=None, discovery=True,
                                       hosts=["api.found.test"]),
                   self.remote_cluster(name="liar", issuer=liar, jwks_uri=None, discovery=True,
                                       hosts=["api.liar.test"]))
        token = h.mint(self.key1, iss=issuer, namespace="shop", service_account="web")
        self.assertTrue(wait_for(lambda: self.allowed(token, "found")), self.server.log_text()[-3000:])
        self.assertGreaterEqual(self.keys.count("/openid/v1/other-jwks"), 1)
        self.assertTrue(wait_for(lambda: self.refreshes("failure", "liar") > 0))
        fails = [e for e in events(self.server, "jwks_refresh") if e["cluster"] == "liar"]
        self.assertIn("is not the cluster's issuer", fails[0]["error"])
        self.assertEqual(self.keys.count("/jwks"), 0, "the liar's jwks_uri must never be fetched")
        self.assert_denied(self.check(h.mint(self.key1, iss=liar, namespace="shop"), "liar"), "unknown_key")
        self.assertEqual(self.admin.get("/readyz")[0], 503)


class ProviderRemoteKeysTest(RemoteKeysBase):
    """An identity provider shaped like Dex with "discovery" and "ca_file",
    beside one whose discovery document names another issuer."""

    def dex_provider(self, name, issuer):
        return {"name": name, "issuer": issuer, "audiences": ["tokengate"], "discovery": True,
                "ca_file": self.pki.path("ca.pem"),
                "claim_mappings": {"username": {"claim": "email", "prefix": "corp:"},
                                   "groups": {"claim": "groups", "prefix": "corp:"}},
                "claim_validation_rules": [{"claim": "email_verified", "required_value": True}],
                "clusters": ["cluster-b"]}

    def dex_token(self, key, issuer):
        return h.mint(key, iss=issuer, aud=("tokengate",), namespace=None,
                      claims={"sub": "CgVhbGljZRIGZ2l0aHVi", "email": "alice@example.com",
                              "email_verified": True, "groups": ["platform-admins"]})

    def provider_keys(self, name):
        return self.samples().get(("tokengate_keys", (("provider", name),)))

    def test_dex_keys_by_discovery_rotation_and_a_lying_issuer(self):
        issuer = self.keys.url("/dex")
        self.keys.serve_json("/dex/.well-known/openid-configuration",
                             {"issuer": issuer, "jwks_uri": self.keys.url("/dex/keys")})
        self.keys.serve_json("/dex/keys", jwks_of(self.key1))
        liar = self.keys.url("/liar")
        self.keys.serve_json("/liar/.well-known/openid-configuration",
                             {"issuer": liar + "/", "jwks_uri": self.keys.url("/jwks")})  # byte for byte
        self.start(identity_providers=[self.dex_provider("dex", issuer), self.dex_provider("liar", liar)])
        self.assertTrue(wait_for(lambda: self.provider_keys("dex") == 1),
                        f"provider keys never loaded:\n{self.server.log_text()[-3000:]}")
        resp = self.check(self.dex_token(self.key1, issuer), cluster="cluster-b")
        self.assertEqual(resp.status.code, 0, resp.status.message)
        headers = h.header_dict(resp.ok_response.headers)
        self.assertEqual(headers["x-tokengate-user"], "corp:alice@example.com")
        self.assertEqual(headers["x-tokengate-provider"], "dex")
        self.assertGreaterEqual(self.samples()[("tokengate_jwks_refresh_total",
                                                (("provider", "dex"), ("result", "success")))], 1)
        # Rotation: Dex now also publishes key 2; its first token is a kid miss.
        self.keys.serve_json("/dex/keys", jwks_of(self.key1, self.key2))
        new = self.dex_token(self.key2, issuer)
        self.assert_denied(self.check(new, cluster="cluster-b"), "unknown_key")
        self.assertTrue(wait_for(lambda: self.check(new, cluster="cluster-b").status.code == 0, timeout=5.0),
                        f"the new kid was not accepted:\n{self.server.log_text()[-3000:]}")
        self.assertEqual(self.check(self.dex_token(self.key1, issuer), cluster="cluster-b").status.code, 0)
        self.assertEqual(self.provider_keys("dex"), 2)
        # /config lists the provider's keys with their URL.
        status, _, body = self.admin.get("/config")
        self.assertEqual(status, 200)
        dex = [p for p in json.loads(body)["identity_providers"] if p["name"] == "dex"][0]
        self.assertEqual(sorted((k["kid"], k["url"]) for k in dex["keys"]),
                         [("remote-2026-1", self.keys.url("/dex/keys")),
                          ("remote-2026-2", self.keys.url("/dex/keys"))])
        self.assertTrue(dex["remote_keys"]["discovery"])
        # The liar's discovery document names another issuer: refused, never fetched.
        self.assertTrue(wait_for(lambda: self.samples().get(
            ("tokengate_jwks_refresh_total", (("provider", "liar"), ("result", "failure"))), 0) > 0))
        fails = [e for e in events(self.server, "jwks_refresh") if e.get("provider") == "liar"]
        self.assertIn("is not the identity provider's issuer", fails[0]["error"])
        self.assertEqual(self.keys.count("/jwks"), 0, "the liar's jwks_uri must never be fetched")
        self.assert_denied(self.check(self.dex_token(self.key1, liar), cluster="cluster-b"), "unknown_key")
        self.assertEqual(self.provider_keys("liar"), 0)
        status, _, body = self.admin.get("/readyz")
        self.assertEqual(status, 503)
        self.assertIn(b"identity provider liar has no keys", body)


class RemoteConfigTest(unittest.TestCase):
    """What `tokengate check` accepts and refuses of the remote keys."""

    def check(self, cluster):
        folder = h.new_folder("tg-jwks-config-")
        path = os.path.join(folder, "c.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"clusters": [dict({"name": "r", "issuer": "https://issuer.example",
                                          "audiences": ["a"]}, **cluster)]}, f)
        out = subprocess.run([h.tokengate_bin(), "check", "-c", path], capture_output=True, text=True)
        return out.returncode, out.stdout + out.stderr

    def test_remote_only_cluster_is_valid(self):
        self.assertEqual(self.check({"jwks_uri": "https://issuer.example/keys"})[0], 0)
        self.assertEqual(self.check({"discovery": True, "refresh_seconds": 300})[0], 0)

    def test_refused(self):
        for cluster, text in [
            ({"jwks_uri": "http://issuer.example/keys"}, "must be an https:// URL"),
            ({"jwks_uri": "https://issuer.example/keys", "discovery": True}, "not both"),
            ({"discovery": True, "issuer": "http://issuer.example"}, "https:// issuer"),
            ({"refresh_seconds": 60}, "needs jwks_uri or discovery"),
            ({"jwks_uri": "https://x.example/k", "refresh_seconds": 59}, "between 60 and 86400"),
            ({"jwks_uri": "https://x.example/k", "ca_file": "/nonexistent/ca.pem"}, "ca_file"),
            ({}, "needs jwks_file, public_key_files, jwks_uri or discovery"),
        ]:
            with self.subTest(cluster=cluster):
                code, text_out = self.check(cluster)
                self.assertEqual(code, 2, text_out)
                self.assertIn(text, text_out)


if __name__ == "__main__":
    unittest.main()
