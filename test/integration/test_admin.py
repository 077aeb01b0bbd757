"""Admin endpoint and metrics (issue 8): a real scrape parsed by
prometheus_client's text parser; every Check counted exactly once with its
cluster, decision and reason; /healthz, /readyz, /config, HEAD, 405, 404 and
the request-size bound; reloads show in the metrics."""

import http.client
import json
import signal
import socket
import time
import unittest

from prometheus_client.parser import text_string_to_metric_families

import tg_harness as h


class Admin:
    def __init__(self, port):
        self.port = port

    def get(self, path, method="GET", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def scrape(self):
        status, headers, body = self.get("/metrics")
        assert status == 200, status
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
        samples = {}
        families = {}
        for family in text_string_to_metric_families(body.decode()):
            families[family.name] = family
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return families, samples


def decisions(samples):
    """{(cluster, decision, reason): count} of tokengate_decisions_total."""
    out = {}
    for (name, labels), value in samples.items():
        if name == "tokengate_decisions_total":
            labels = dict(labels)
            out[(labels["cluster"], labels["decision"], labels["reason"])] = value
    return out


def delta(after, before):
    out = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in out.items() if v}


class AdminTest(unittest.TestCase, h.DecisionAsserts):
    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-admin-")
        cls.world = h.World(cls.folder)
        cls.admin_port = h.free_port()
        cls.config = cls.world.config(admin_listen=f"127.0.0.1:{cls.admin_port}")
        cls.server = h.Server(cls.folder, cls.config, "admin").start()
        cls.admin = Admin(cls.admin_port)

    @classmethod
    def tearDownClass(cls):
        code, _ = cls.server.stop()
        if code != 0:
            raise AssertionError(f"tokengate exited {code}:\n{cls.server.log_text()[-4000:]}")

    def test_families_and_types(self):
        families, samples = self.admin.scrape()
        want = {
            "tokengate_decisions": "counter", "tokengate_check_duration_seconds": "histogram",
            "tokengate_token_cache_hits": "counter", "tokengate_token_cache_misses": "counter",
            "tokengate_token_cache_entries": "gauge", "tokengate_keys": "gauge",
            "tokengate_config_reloads": "counter", "tokengate_config_generation": "gauge",
            "tokengate_config_last_reload_success_timestamp_seconds": "gauge",
            "tokengate_connections": "gauge", "tokengate_streams_in_flight": "gauge",
            "tokengate_grpc_errors": "counter", "tokengate_build_info": "gauge",
            "process_cpu_seconds": "counter", "process_resident_memory_bytes": "gauge",
            "process_open_fds": "gauge", "process_start_time_seconds": "gauge",
        }
        for name, kind in want.items():
            self.assertIn(name, families)
            self.assertEqual(families[name].type, kind, name)
        self.assertEqual(samples[("tokengate_keys", (("cluster", "cluster-a"),))], 1)
        self.assertEqual(samples[("tokengate_keys", (("cluster", "cluster-b"),))], 1)
        bounds = [dict(k[1])["le"] for k in samples if k[0] == "tokengate_check_duration_seconds_bucket"]
        self.assertIn("1e-05", bounds)
        self.assertIn("1.0", bounds)
        self.assertIn("+Inf", bounds)
        self.assertGreater(samples[("process_resident_memory_bytes", ())], 1 << 20)
        self.assertGreater(samples[("process_open_fds", ())], 3)
        self.assertLessEqual(abs(samples[("process_start_time_seconds", ())] - time.time()), 3600)
        version = [dict(k[1]) for k in samples if k[0] == "tokengate_build_info"]
        self.assertEqual(len(version), 1)
        self.assertRegex(version[0]["version"], r"^\d+\.\d+\.\d+")

    def test_every_check_counted_once(self):
        _, before = self.admin.scrape()
        token_a = self.world.token_a()
        sent = [
            (h.check_request(token=token_a, cluster="cluster-a"), ("cluster-a", "allow", "ok"), 7),
            (h.check_request(token=token_a, cluster="cluster-b"), ("cluster-b", "deny", "cluster_mismatch"), 3),
            (h.check_request(token=token_a, cluster="nowhere"), ("", "deny", "unknown_cluster"), 2),
            (h.check_request(cluster="cluster-a"), ("cluster-a", "deny", "missing_token"), 4),
        ]
        with self.server.channel() as channel:
            stub = h.authz_stub(channel)
            for req, _, n in sent:
                for _ in range(n):
                    stub.Check(req, timeout=10)
            # A message that does not decode is a gRPC error, not a decision.
            bad = channel.unary_unary(h.CHECK_METHOD, request_serializer=lambda b: b,
                                      response_deserializer=lambda b: b)
            with self.assertRaises(h.grpc.RpcError) as err:
                bad(b"\xff\xff\xff", timeout=10)
            self.assertEqual(err.exception.code(), h.grpc.StatusCode.INVALID_ARGUMENT)
            _, during = self.admin.scrape()
            self.assertGreaterEqual(during[("tokengate_connections", ())], 1)
        _, after = self.admin.scrape()
        self.assertEqual(delta(decisions(after), decisions(before)), {want: n for _, want, n in sent})
        total = sum(n for _, _, n in sent)
        count = "tokengate_check_duration_seconds_count", ()
        self.assertEqual(after[count] - before.get(count, 0), total)
        inf = "tokengate_check_duration_seconds_bucket", (("le", "+Inf"),)
        self.assertEqual(after[inf] - before.get(inf, 0), total)
        hits = "tokengate_token_cache_hits_total", ()
        misses = "tokengate_token_cache_misses_total", ()
        # Every Check of a known cluster with a token looks it up once (an
        # unknown cluster is denied before the token is read); the first of
        # each worker may miss.
        lookups = after[hits] + after[misses] - before.get(hits, 0) - before.get(misses, 0)
        self.assertEqual(lookups, 7 + 3)
        self.assertGreaterEqual(after[hits] - before.get(hits, 0), 10 - self.config["workers"])
        self.assertGreaterEqual(after[("tokengate_token_cache_entries", ())], 1)
        code3 = "tokengate_grpc_errors_total", (("code", "3"),)
        self.assertEqual(after[code3] - before.get(code3, 0), 1)

    def test_health_ready_config(self):
        self.assertEqual(self.admin.get("/healthz")[0], 200)
        status, _, body = self.admin.get("/readyz")
        self.assertEqual((status, body), (200, b"ready\n"))
        status, headers, body = self.admin.get("/config")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json")
        doc = json.loads(body)
        self.assertEqual([c["name"] for c in doc["clusters"]], ["cluster-a", "cluster-b", "cluster-c"])
        self.assertEqual(doc["clusters"][0]["keys"][0]["kid"], "cluster-a-2024")
        self.assertEqual(doc["clusters"][0]["issuer"], h.ISSUER_A)
        self.assertIsInstance(doc["generation"], int)
        self.assertIn("loaded_at", doc)
        self.assertEqual([r["name"] for r in doc["rules"]], [r["name"] for r in self.config["rules"]])
        # Never key material: no PEM, no JWK members.
        with open(self.world.key_b.public, encoding="utf-8") as f:
            pem_line = f.read().splitlines()[1]
        self.assertNotIn(pem_line.encode(), body)
        self.assertNotIn(b"BEGIN", body)
        for member in (b'"n":', b'"e":', b'"x":', b'"y":', b'"d":'):
            self.assertNotIn(member, body)

    def test_methods_paths_and_bounds(self):
        status, _, body = self.admin.get("/metrics", method="HEAD")
        self.assertEqual((status, body), (200, b""))
        status, headers, _ = self.admin.get("/metrics", method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "GET, HEAD")
        self.assertEqual(self.admin.get("/", method="GET")[0], 404)
        self.assertEqual(self.admin.get("/metrics/x")[0], 404)
        status, _, _ = self.admin.get("/healthz", headers={"x-big": "a" * 20000})
        self.assertIn(status, (413, 414, 431))
        # A client that sends half a request line is let go.
        with socket.create_connection(("127.0.0.1", self.admin_port), timeout=30) as sock:
            sock.sendall(b"GET /hea")
            start = time.monotonic()
            self.assertEqual(sock.recv(100), b"")
            self.assertLess(time.monotonic() - start, 25)

    def test_reload_shows_in_metrics(self):
        _, before = self.admin.scrape()
        ok = "tokengate_config_reloads_total", (("result", "success"),)
        bad = "tokengate_config_reloads_total", (("result", "failure"),)
        gen = "tokengate_config_generation", ()
        self.server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        after = before
        while after[ok] == before[ok] and time.monotonic() < deadline:
            time.sleep(0.05)
            _, after = self.admin.scrape()
        self.assertEqual(after[ok], before[ok] + 1)
        self.assertEqual(after[bad], before[bad])
        self.assertNotEqual(after[gen], before[gen])


if __name__ == "__main__":
    unittest.main()
