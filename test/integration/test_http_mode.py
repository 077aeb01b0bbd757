"""The HTTP authorization listener (http_listen) behind real proxies.

A real nginx (auth_request) and a real Caddy (forward_auth) run the configs of
examples/nginx/ and examples/caddy/ with their ports replaced, in front of a
small Python upstream that records the headers it receives; tokengate's HTTP
listener (forwarded style) is their authorization endpoint. Then the envoy and
original styles are driven directly, the bounds of the listener are probed,
and h2load runs HTTP/1.1 keep-alive Checks against the envoy style.

Each process runs as the current user in a temporary folder on free loopback
ports and is stopped at the end.
"""

import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import tg_harness as h

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HOST_A = "api.cluster-a.example"
HOST_B = "api.cluster-b.example"


class Upstream:
    """A threaded HTTP server answering 200 "upstream" and keeping the headers
    of every request it received."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                outer.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                       self.headers.get_all("x-tokengate-subject") or []))
                body = b"upstream"
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def request(port, method, path, host, headers=None, body=None):
    """One request on a fresh connection: (status, lower-cased headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        hdrs = {"Host": host}
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wait_port(port, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop_process(proc):
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class HttpWorld:
    """Keys and tokens for two clusters: cluster-a (own issuer, sources
    127.0.0.0/8, rule /admin only for namespace ops) and cluster-b (shared
    issuer, sources 10.0.0.0/8 only, so loopback clients are out of CIDR)."""

    def __init__(self, folder):
        self.folder = folder
        self.key_a = h.Key(folder, "a", "p256", jwks_kid="a-1")
        self.key_b = h.Key(folder, "b", "p256", jwks_kid="b-1")

    def config(self, http_port, style, **extra):
        cfg = {
            "workers": 2,
            "http_listen": f"127.0.0.1:{http_port}",
            "http_style": style,
            "token_cache": {"size": 100},
            "clusters": [
                {"name": "cluster-a", "issuer": h.ISSUER_A, "audiences": [h.AUDIENCE], "jwks_file": "a.jwks.json",
                 "source_cidrs": ["127.0.0.0/8"], "hosts": [HOST_A]},
                {"name": "cluster-b", "issuer": h.KUBE_ISSUER, "audiences": [h.AUDIENCE],
                 "jwks_file": "b.jwks.json", "source_cidrs": ["10.0.0.0/8"], "hosts": [HOST_B]},
            ],
            "rules": [
                {"name": "admin-is-ops", "clusters": ["cluster-a"], "path_prefix": "/admin", "namespaces": ["ops"]},
                {"name": "everyone-else"},
            ],
        }
        cfg.update(extra)
        return cfg

    def token_a(self, **kw):
        kw.setdefault("namespace", "shop")
        return h.mint(self.key_a, iss=h.ISSUER_A, **kw)

    def token_b(self, **kw):
        kw.setdefault("namespace", "shop")
        return h.mint(self.key_b, iss=h.KUBE_ISSUER, **kw)


def start_tokengate(folder, world, style, name, **extra):
    """A tokengate with its HTTP listener on a free port (retried if lost)."""
    for _attempt in range(3):
        port = h.free_port()
        server = h.Server(folder, world.config(port, style, **extra), name=name)
        try:
            server.start()
        except RuntimeError:
            continue
        server.http_port = port
        return server
    raise RuntimeError("tokengate did not start")


class ProxyTests:
    """Shared assertions for a proxy (|self.port|) in front of tokengate."""

    def get(self, path, host, token=None, headers=None, method="GET"):
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        before = len(self.upstream.requests)
        status, resp_headers, body = request(self.port, method, path, host, hdrs)
        reached = self.upstream.requests[before:]
        return status, resp_headers, body, reached

    def assert_denied(self, status, resp_headers, reached, want_status, reason):
        self.assertEqual(status, want_status, resp_headers)
        self.assertEqual(resp_headers.get("x-tokengate-reason"), reason)
        self.assertEqual(reached, [], "a denied request reached the upstream")

    def test_allowed_reaches_upstream_with_identity_without_token(self):
        token = self.world.token_a(service_account="web")
        status, _, body, reached = self.get("/api/items?x=1", HOST_A, token)
        self.assertEqual(status, 200)
        self.assertEqual(body, b"upstream")
        self.assertEqual(len(reached), 1)
        method, path, headers, _ = reached[0]
        self.assertEqual((method, path), ("GET", "/api/items?x=1"))
        self.assertEqual(headers.get("x-tokengate-cluster"), "cluster-a")
        self.assertEqual(headers.get("x-tokengate-subject"), "system:serviceaccount:shop:web")
        self.assertEqual(headers.get("x-tokengate-namespace"), "shop")
        self.assertEqual(headers.get("x-tokengate-service-account"), "web")
        self.assertNotIn("authorization", headers)

    def test_client_identity_headers_are_overwritten(self):
        token = self.world.token_a(service_account="web")
        forged = {"X-Tokengate-Subject": "system:serviceaccount:ops:admin", "X-Tokengate-Namespace": "ops",
                  "X-Tokengate-Cluster": "cluster-b", "X-Original-URI": "/public",
                  "X-Forwarded-Uri": "/public", "X-Forwarded-Method": "GET"}
        status, _, _, reached = self.get("/api/x", HOST_A, token, forged)
        self.assertEqual(status, 200)
        _, _, headers, subjects = reached[0]
        self.assertEqual(subjects, ["system:serviceaccount:shop:web"])
        self.assertEqual(headers.get("x-tokengate-namespace"), "shop")
        self.assertEqual(headers.get("x-tokengate-cluster"), "cluster-a")

    def test_forged_uri_does_not_open_admin(self):
        # The rule on /admin holds whatever the client claims the URI was.
        token = self.world.token_a(namespace="shop")
        for forged in ({"X-Original-URI": "/public"}, {"X-Forwarded-Uri": "/public"},
                       {"X-Forwarded-Method": "OPTIONS"}):
            status, resp_headers, _, reached = self.get("/admin/users", HOST_A, token, forged)
            self.assert_denied(status, resp_headers, reached, 403, "forbidden")
        status, resp_headers, _, reached = self.get("//admin/./users", HOST_A, token)
        self.assert_denied(status, resp_headers, reached, 403, "forbidden")
        ops = self.world.token_a(namespace="ops")
        status, _, _, reached = self.get("/admin/users", HOST_A, ops)
        self.assertEqual((status, len(reached)), (200, 1))

    def test_missing_token(self):
        status, resp_headers, _, reached = self.get("/api/x", HOST_A)
        self.assert_denied(status, resp_headers, reached, 401, "missing_token")
        self.assertEqual(resp_headers.get("www-authenticate"), 'Bearer realm="tokengate"')

    def test_expired_token(self):
        token = self.world.token_a(exp_in=-3600)
        status, resp_headers, _, reached = self.get("/api/x", HOST_A, token)
        self.assert_denied(status, resp_headers, reached, 401, "expired")
        self.assertIn('error="invalid_token"', resp_headers.get("www-authenticate", ""))

    def test_replayed_token(self):
        token = self.world.token_a()
        status, resp_headers, _, reached = self.get("/api/x", HOST_B, token)
        self.assert_denied(status, resp_headers, reached, 401, "cluster_mismatch")

    def test_out_of_cidr(self):
        # cluster-b admits 10.0.0.0/8 only; the client's own X-Forwarded-For
        # is overwritten by the proxy.
        token = self.world.token_b()
        status, resp_headers, _, reached = self.get("/api/x", HOST_B, token, {"X-Forwarded-For": "10.1.2.3",
                                                                             "X-Real-IP": "10.1.2.3"})
        self.assert_denied(status, resp_headers, reached, 403, "source_not_allowed")

    def test_malformed_path_is_400(self):
        token = self.world.token_a()
        status, resp_headers, _, reached = self.get("/api/%2e%2e%2fadmin%2Fx", HOST_A, token)
        self.assert_denied(status, resp_headers, reached, 400, "malformed_request")

    def test_decisions_logged(self):
        token = self.world.token_a(service_account="logged")
        before = len(self.tokengate.decisions())
        status, _, _, _ = self.get("/api/logged", HOST_A, token)
        self.assertEqual(status, 200)
        lines = self.tokengate.wait_decisions(before + 1)
        line = [x for x in lines if x.get("path") == "/api/logged"][-1]
        self.assertEqual((line["decision"], line["cluster"], line["source"]), ("allow", "cluster-a", "127.0.0.1"))
        self.assertEqual(line["subject"], "system:serviceaccount:shop:logged")


def template(text, mapping):
    for old, new in mapping.items():
        text = text.replace(old, new)
    return text


class NginxTest(ProxyTests, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        cls.folder = tempfile.mkdtemp(prefix="tg-nginx-")
        cls.world = HttpWorld(cls.folder)
        cls.tokengate = start_tokengate(cls.folder, cls.world, "forwarded", "tg-nginx")
        cls.upstream = Upstream()
        cls.nginx = None
        prefix = os.path.join(cls.folder, "nginx")
        os.makedirs(os.path.join(prefix, "tmp"))
        with open(os.path.join(ROOT, "examples", "nginx", "nginx.conf"), encoding="utf-8") as f:
            text = f.read()
        for _attempt in range(3):
            cls.port = h.free_port()
            conf = template(text, {"127.0.0.1:9192": f"127.0.0.1:{cls.tokengate.http_port}",
                                   "127.0.0.1:8080": f"127.0.0.1:{cls.port}",
                                   "127.0.0.1:8081": f"127.0.0.1:{cls.upstream.port}",
                                   "127.0.0.1:8082": f"127.0.0.1:{cls.upstream.port}"})
            conf_path = os.path.join(prefix, "nginx.conf")
            with open(conf_path, "w", encoding="utf-8") as f:
                f.write(conf)
            cls.nginx_log = open(os.path.join(cls.folder, "nginx.stderr"), "wb")
            cls.nginx = subprocess.Popen([cls.nginx_bin, "-p", prefix, "-c", conf_path], stdin=subprocess.DEVNULL,
                                         stdout=cls.nginx_log, stderr=cls.nginx_log)
            if wait_port(cls.port, cls.nginx):
                return
            stop_process(cls.nginx)
            cls.nginx_log.close()
        cls.tearDownClass()
        raise RuntimeError("nginx did not start")

    @classmethod
    def tearDownClass(cls):
        stop_process(cls.nginx)
        cls.upstream.stop()
        cls.tokengate.stop()
        shutil.rmtree(cls.folder, ignore_errors=True)

    def test_tokengate_unreachable_is_503(self):
        # Another nginx on the same example, its auth URL on a closed port.
        prefix = os.path.join(self.folder, "nginx-down")
        os.makedirs(os.path.join(prefix, "tmp"))
        port = h.free_port()
        with open(os.path.join(ROOT, "examples", "nginx", "nginx.conf"), encoding="utf-8") as f:
            conf = template(f.read(), {"127.0.0.1:9192": f"127.0.0.1:{h.free_port()}",
                                       "127.0.0.1:8080": f"127.0.0.1:{port}",
                                       "127.0.0.1:8081": f"127.0.0.1:{self.upstream.port}",
                                       "127.0.0.1:8082": f"127.0.0.1:{self.upstream.port}"})
        path = os.path.join(prefix, "nginx.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(conf)
        proc = subprocess.Popen([self.nginx_bin, "-p", prefix, "-c", path], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.assertTrue(wait_port(port, proc))
            before = len(self.upstream.requests)
            status, _, _ = request(port, "GET", "/api/x", HOST_A, {"Authorization": "Bearer " + self.world.token_a()})
            self.assertEqual(status, 503)
            self.assertEqual(len(self.upstream.requests), before)
        finally:
            stop_process(proc)


class CaddyTest(ProxyTests, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.caddy_bin = shutil.which("caddy") or "/usr/bin/caddy"
        cls.folder = tempfile.mkdtemp(prefix="tg-caddy-")
        cls.world = HttpWorld(cls.folder)
        cls.tokengate = start_tokengate(cls.folder, cls.world, "forwarded", "tg-caddy")
        cls.upstream = Upstream()
        cls.caddy = None
        with open(os.path.join(ROOT, "examples", "caddy", "Caddyfile"), encoding="utf-8") as f:
            text = f.read()
        env = dict(os.environ, HOME=cls.folder, XDG_DATA_HOME=os.path.join(cls.folder, "data"),
                   XDG_CONFIG_HOME=os.path.join(cls.folder, "config"))
        for _attempt in range(3):
            cls.port = h.free_port()
            conf = template(text, {"127.0.0.1:9192": f"127.0.0.1:{cls.tokengate.http_port}",
                                   ".example:8080": f".example:{cls.port}",
                                   "127.0.0.1:8081": f"127.0.0.1:{cls.upstream.port}",
                                   "127.0.0.1:8082": f"127.0.0.1:{cls.upstream.port}"})
            path = os.path.join(cls.folder, "Caddyfile")
            with open(path, "w", encoding="utf-8") as f:
                f.write(conf)
            cls.caddy_log = open(os.path.join(cls.folder, "caddy.stderr"), "wb")
            cls.caddy = subprocess.Popen([cls.caddy_bin, "run", "--adapter", "caddyfile", "--config", path],
                                         stdin=subprocess.DEVNULL, stdout=cls.caddy_log, stderr=cls.caddy_log,
                                         env=env, cwd=cls.folder)
            if wait_port(cls.port, cls.caddy):
                return
            stop_process(cls.caddy)
            cls.caddy_log.close()
        cls.tearDownClass()
        raise RuntimeError("caddy did not start")

    @classmethod
    def tearDownClass(cls):
        stop_process(cls.caddy)
        cls.upstream.stop()
        cls.tokengate.stop()
        shutil.rmtree(cls.folder, ignore_errors=True)

    def test_deny_body_reaches_client(self):
        # Caddy passes tokengate's answer through: the JSON body as gRPC mode's.
        status, resp_headers, body, _ = self.get("/api/x", HOST_A)
        self.assertEqual(status, 401)
        self.assertEqual(resp_headers.get("content-type"), "application/json")
        self.assertEqual(json.loads(body)["reason"], "missing_token")


class DirectStyleTests(unittest.TestCase):
    """The styles and bounds, asked directly as a proxy would."""

    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.mkdtemp(prefix="tg-http-")
        cls.world = HttpWorld(cls.folder)
        cls.envoy = start_tokengate(cls.folder, cls.world, "envoy", "tg-envoy")
        cls.original = start_tokengate(cls.folder, cls.world, "original", "tg-original")

    @classmethod
    def tearDownClass(cls):
        cls.envoy.stop()
        cls.original.stop()
        shutil.rmtree(cls.folder, ignore_errors=True)

    def ask(self, server, path, headers, method="GET", host="tokengate"):
        return request(server.http_port, method, path, host, headers)

    def test_envoy_style_prefix_names_cluster_and_is_removed(self):
        token = self.world.token_a(namespace="ops")
        status, headers, body = self.ask(self.envoy, "/clusters/cluster-a/admin/x",
                                         {"Authorization": "Bearer " + token, "X-Forwarded-For": "127.0.0.1"})
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(headers["x-tokengate-subject"], "system:serviceaccount:ops:web")
        self.assertEqual(headers["x-envoy-auth-headers-to-remove"],
                         "x-tokengate-peer,x-tokengate-shadow-reason,x-tokengate-user,x-tokengate-groups,"
                         "x-tokengate-provider,authorization")
        line = [x for x in self.envoy.wait_decisions(1) if x.get("path") == "/admin/x"]
        self.assertTrue(line, "the path rules saw is the path after /clusters/<name>")

    def test_envoy_style_host_routing_and_ignored_headers(self):
        token = self.world.token_a(namespace="shop")
        auth = {"Authorization": "Bearer " + token, "X-Forwarded-For": "127.0.0.1"}
        status, _, _ = self.ask(self.envoy, "/clusters/*/api", auth, host=HOST_A)
        self.assertEqual(status, 200)
        # X-Original-* and X-Forwarded-Uri mean nothing in envoy style.
        status, headers, _ = self.ask(self.envoy, "/clusters/*/admin",
                                      dict(auth, **{"X-Original-URI": "/api", "X-Forwarded-Uri": "/api"}),
                                      host=HOST_A)
        self.assertEqual((status, headers.get("x-tokengate-reason")), (403, "forbidden"))
        # A client's own path cannot name the cluster: the prefix is required.
        status, headers, body = self.ask(self.envoy, "/api", auth, host=HOST_A)
        self.assertEqual((status, headers.get("x-tokengate-reason")), (400, "malformed_request"))
        self.assertEqual(json.loads(body)["reason"], "malformed_request")

    def test_original_style(self):
        token = self.world.token_a(namespace="shop")
        base = {"Authorization": "Bearer " + token, "X-Forwarded-For": "127.0.0.1", "X-Original-Method": "GET"}
        status, headers, _ = self.ask(self.original, "/auth",
                                      dict(base, **{"X-Original-URL": f"https://{HOST_A}/api/v1?q=1"}))
        self.assertEqual((status, headers.get("x-tokengate-cluster")), (200, "cluster-a"))
        status, headers, _ = self.ask(self.original, "/auth",
                                      dict(base, **{"X-Original-URL": f"https://{HOST_A}/admin/x"}))
        self.assertEqual((status, headers.get("x-tokengate-reason")), (403, "forbidden"))
        # A client's own X-Original-URI cannot contradict the proxy's URL.
        status, headers, _ = self.ask(self.original, "/auth",
                                      dict(base, **{"X-Original-URL": f"https://{HOST_A}/admin/x",
                                                    "X-Original-URI": "/api"}))
        self.assertEqual((status, headers.get("x-tokengate-reason")), (400, "malformed_request"))
        # The forwarded style's headers mean nothing here.
        status, headers, _ = self.ask(self.original, "/clusters/cluster-a",
                                      {"Authorization": "Bearer " + token, "X-Forwarded-For": "127.0.0.1",
                                       "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/api"})
        self.assertEqual((status, headers.get("x-tokengate-reason")), (400, "malformed_request"))
        status, headers, _ = self.ask(self.original, "/clusters/cluster-a", dict(base, **{"X-Original-URI": "/api"}))
        self.assertEqual((status, headers.get("x-tokengate-cluster")), (200, "cluster-a"))

    def test_trusted_proxy_hops(self):
        token = self.world.token_a()
        auth = {"Authorization": "Bearer " + token}
        status, _, _ = self.ask(self.envoy, "/clusters/cluster-a/x", dict(auth, **{"X-Forwarded-For": "10.9.9.9, 127.0.0.1"}))
        self.assertEqual(status, 200)
        status, headers, _ = self.ask(self.envoy, "/clusters/cluster-a/x", dict(auth, **{"X-Forwarded-For": "127.0.0.1, 10.9.9.9"}))
        self.assertEqual((status, headers.get("x-tokengate-reason")), (403, "source_not_allowed"))
        # The peer (the proxy) is never the source: without X-Forwarded-For it is unknown.
        status, headers, _ = self.ask(self.envoy, "/clusters/cluster-a/x", auth)
        self.assertEqual((status, headers.get("x-tokengate-reason")), (403, "source_not_allowed"))

    def raw(self, server, data, read_timeout=5.0):
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=read_timeout) as sock:
            sock.sendall(data)
            chunks = []
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
            except socket.timeout:
                pass
            return b"".join(chunks)

    def test_keepalive_and_pipelining_answer_in_order(self):
        token = self.world.token_a()
        req = (f"GET /clusters/cluster-a/p{{}} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
               "X-Forwarded-For: 127.0.0.1\r\n\r\n")
        data = "".join(req.format(i) for i in range(20)).encode()
        data += b"GET /clusters/cluster-a/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        out = self.raw(self.envoy, data)
        statuses = re.findall(rb"HTTP/1\.1 (\d{3})", out)
        self.assertEqual(statuses, [b"200"] * 20 + [b"401"])

    def test_slow_reader_gets_every_answer_once_in_order(self):
        # A client that sends thousands of pipelined requests and reads late
        # through a small receive buffer: the server's writes go partial and
        # the rest waits in one uv_write while it stops reading. Every answer
        # must arrive exactly once, whole and in order.
        token = self.world.token_a()
        one = (f"GET /clusters/cluster-a/p HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
               "X-Forwarded-For: 127.0.0.1\r\nConnection: close\r\n\r\n").encode()
        answer_bytes = len(self.raw(self.envoy, one))
        # Twice what the kernel may buffer for the server's socket, so its
        # writes must go partial and wait (tcp_wmem's largest size).
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            send_buffer_max = int(f.read().split()[2])
        count = 2 * send_buffer_max // answer_bytes + 1
        req = (f"GET /clusters/cluster-a/p{{}} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
               "X-Forwarded-For: 127.0.0.1\r\n\r\n")
        data = "".join(req.format(i) for i in range(count)).encode()
        data += b"GET /clusters/cluster-a/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(20)
        sock.connect(("127.0.0.1", self.envoy.http_port))
        sender = threading.Thread(target=sock.sendall, args=(data,))
        sender.start()
        time.sleep(0.5)
        chunks = []
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
        sender.join()
        sock.close()
        out = b"".join(chunks)
        statuses = []
        at = 0
        while at < len(out):
            end = out.find(b"\r\n\r\n", at)
            self.assertNotEqual(end, -1, f"answer {len(statuses)} has no end of head: {out[at:at + 120]!r}")
            head = out[at:end]
            match = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
            self.assertIsNotNone(match, f"answer {len(statuses)} starts with {head[:60]!r}")
            length = re.search(rb"\r\ncontent-length: (\d+)", head, re.IGNORECASE)
            statuses.append(match.group(1))
            at = end + 4 + (int(length.group(1)) if length else 0)
        # Compared by hand: assertEqual would diff two lists of 20,000 (minutes).
        expected = [b"200"] * count + [b"401"]
        if statuses != expected:
            first = next((i for i, (got, want) in enumerate(zip(statuses, expected)) if got != want),
                         min(len(statuses), len(expected)))
            self.fail(f"{len(statuses)} answers to {len(expected)} requests; from answer {first}: "
                      f"{statuses[first:first + 3]}, expected {expected[first:first + 3]}")

    def test_head_answer_has_no_body(self):
        # A HEAD request's answer carries no body (its content-length still
        # says how long it would be): the next answer follows its blank line.
        out = self.raw(self.envoy, b"HEAD /clusters/cluster-a/x HTTP/1.1\r\nHost: x\r\n\r\n"
                                   b"GET /clusters/cluster-a/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, _, rest = out.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 401 "), out[:80])
        self.assertIn(b"\r\ncontent-length: ", head)
        self.assertTrue(rest.startswith(b"HTTP/1.1 401 "), rest[:80])
        self.assertEqual(out.count(b'{"allowed":false'), 1)

    def test_bounds(self):
        # A body over the limit: 413 and close, never decided.
        out = self.raw(self.envoy, b"POST /clusters/cluster-a/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:80])
        # A small body is discarded and the request decided.
        out = self.raw(self.envoy, b"POST /clusters/cluster-a/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                   b"Connection: close\r\n\r\nhello")
        self.assertTrue(out.startswith(b"HTTP/1.1 401"), out[:80])
        # Too many headers, too long a target, headers too large, garbage.
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
        out = self.raw(self.envoy, b"GET /clusters/cluster-a/x HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 431"), out[:80])
        out = self.raw(self.envoy, b"GET /clusters/cluster-a/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 414"), out[:80])
        out = self.raw(self.envoy, b"GET /clusters/cluster-a/x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 70000 +
                       b"\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 431"), out[:80])
        out = self.raw(self.envoy, b"\x16\x03\x01 not http\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400"), out[:80])
        # The listener still serves.
        status, _, _ = self.ask(self.envoy, "/clusters/cluster-a/x", {})
        self.assertEqual(status, 401)

    def test_metrics_count_http_decisions(self):
        folder = tempfile.mkdtemp(prefix="tg-http-metrics-", dir=self.folder)
        admin = h.free_port()
        server = start_tokengate(self.folder, self.world, "envoy", "tg-metrics", admin_listen=f"127.0.0.1:{admin}")
        try:
            for _ in range(3):
                self.ask(server, "/clusters/cluster-a/x", {})
            status, _, body = request(admin, "GET", "/metrics", "x")
            self.assertEqual(status, 200)
            self.assertIn(b'tokengate_decisions_total{cluster="cluster-a",decision="deny",reason="missing_token"} 3',
                          body)
            # Protocol errors are no decisions: counted by status on their own.
            many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
            for _ in range(2):
                self.raw(server, b"GET /clusters/cluster-a/x HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
            self.raw(server, b"POST /clusters/cluster-a/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
            self.raw(server, b"\x16\x03\x01 not http\r\n\r\n")
            errors = {s.labels["code"]: s.value for s in server.metric_samples(admin, "tokengate_http_errors_total")}
            self.assertEqual(errors, {"431": 2, "413": 1, "400": 1})
            decided = sum(s.value for s in server.metric_samples(admin, "tokengate_decisions_total"))
            self.assertEqual(decided, 3)
        finally:
            server.stop()
            shutil.rmtree(folder, ignore_errors=True)

    def test_drain(self):
        # SIGTERM: an idle keep-alive connection is closed at once; a request
        # in progress is still answered, with "connection: close"; exit 0.
        server = start_tokengate(self.folder, self.world, "envoy", "tg-drain")
        try:
            idle = socket.create_connection(("127.0.0.1", server.http_port), timeout=5)
            idle.sendall(b"GET /clusters/cluster-a/x HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(idle.recv(65536).startswith(b"HTTP/1.1 401"))
            busy = socket.create_connection(("127.0.0.1", server.http_port), timeout=5)
            busy.sendall(b"GET /clusters/cluster-a/x HTTP/1.1\r\nHost: x\r\n")
            time.sleep(0.2)
            start = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            self.assertEqual(idle.recv(65536), b"", "the idle connection is closed")
            self.assertLess(time.monotonic() - start, 1.5, "at once, not at the drain deadline")
            busy.sendall(b"X-Forwarded-For: 127.0.0.1\r\n\r\n")
            out = b""
            while True:
                chunk = busy.recv(65536)
                if not chunk:
                    break
                out += chunk
            self.assertTrue(out.startswith(b"HTTP/1.1 401"), out[:80])
            self.assertIn(b"\r\nconnection: close\r\n", out)
            self.assertEqual(server.proc.wait(5), 0)
            idle.close()
            busy.close()
        finally:
            server.kill()

    def test_h2load_envoy_style(self):
        h2load = os.environ.get("H2LOAD_BIN") or shutil.which("h2load")
        token = self.world.token_a(service_account="bench")
        before = len(self.envoy.decisions())
        out = subprocess.run([h2load, "--h1", "-n", "2000", "-c", "4", "-m", "1",
                              "-H", "Authorization: Bearer " + token, "-H", "X-Forwarded-For: 127.0.0.1",
                              f"http://127.0.0.1:{self.envoy.http_port}/clusters/cluster-a/api/bench"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        self.assertRegex(out, r"requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored")
        self.assertRegex(out, r"status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx")
        lines = self.envoy.wait_decisions(before + 2000)
        bench = [x for x in lines if x.get("path") == "/api/bench"]
        self.assertEqual(len(bench), 2000)
        self.assertTrue(all(x["decision"] == "allow" for x in bench))


if __name__ == "__main__":
    unittest.main()
