"""Hot reload (issue 8): SIGHUP loads the config again; a broken config is
refused with a log line and the last good one keeps serving; listen and
workers stay; the token cache never answers from an older snapshot; 20
SIGHUPs under load lose no request and leak no snapshot (LeakSanitizer in
the sanitizer build fails the exit code)."""

import json
import os
import shutil
import signal
import struct
import subprocess
import threading
import time
import unittest

import grpc

import tg_harness as h

H2LOAD = os.environ.get("H2LOAD_BIN") or shutil.which("h2load")

# cluster-b's /probe: allowed under config A, forbidden under config B.
PROBE_RULE = {"name": "probe-for-nobody", "clusters": ["cluster-b"], "path_prefix": "/probe",
              "namespaces": ["nobody"]}


def reload_events(server):
    out = []
    for line in server.log_text().splitlines():
        # The decision lines (hundreds of thousands under h2load) are not parsed.
        if line.startswith("{") and '"event":"config_reload"' in line:
            out.append(json.loads(line))
    return out


class ReloadTest(unittest.TestCase, h.DecisionAsserts):
    def setUp(self):
        self.folder = h.new_folder("tg-reload-")
        self.world = h.World(self.folder)
        self.config_a = self.world.config()
        self.config_b = self.world.config()
        self.config_b["rules"] = [PROBE_RULE] + self.config_b["rules"]
        self.server = h.Server(self.folder, self.config_a, "reload").start()
        self.token_b = self.world.token_b()
        self.stub = h.authz_stub(self.server.channel())

    def tearDown(self):
        code, _elapsed = self.server.stop()
        if code != 0:
            self.fail(f"tokengate exited {code} (a leak fails the exit in the sanitizer build):\n"
                      f"{self.server.log_text()[-4000:]}")

    def write_config(self, cfg):
        cfg = dict(cfg, listen=self.server.target)
        tmp = self.server.config_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        os.replace(tmp, self.server.config_path)

    def write_broken(self):
        self.write_config(dict(self.config_a, clock_skew_seconds=-7))

    def sighup(self):
        """Sends SIGHUP and waits for its config_reload line; returns it."""
        before = len(reload_events(self.server))
        self.server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            events = reload_events(self.server)
            if len(events) > before:
                return events[before]
            self.assertIsNone(self.server.proc.poll(), "tokengate exited on SIGHUP")
            time.sleep(0.02)
        self.fail("no config_reload line after SIGHUP")

    def probe(self, stub=None):
        req = h.check_request(token=self.token_b, cluster="cluster-b", path="/probe/x")
        return (stub or self.stub).Check(req, timeout=10)

    def probe_outcome(self, stub=None):
        resp = self.probe(stub)
        if resp.WhichOneof("http_response") == "ok_response":
            return "allow"
        return resp.status.message.split(":")[0]

    def wait_outcome(self, want):
        """Workers take a published snapshot on their next loop turn: poll
        briefly, then the answer must stay."""
        deadline = time.monotonic() + 5
        while self.probe_outcome() != want:
            self.assertLess(time.monotonic(), deadline, f"the reloaded config never answered {want}")
            time.sleep(0.02)
        for _ in range(10):
            self.assertEqual(self.probe_outcome(), want)

    def test_good_then_broken_keeps_last_good(self):
        self.assert_allowed(self.probe(), "cluster-b", "shop", "checkout")
        self.write_config(self.config_b)
        event = self.sighup()
        self.assertEqual(event["result"], "success")
        self.assertEqual(event["clusters"], ["cluster-a", "cluster-b", "cluster-c"])
        self.wait_outcome("forbidden")
        self.assert_denied(self.probe(), "forbidden")
        good_generation = event["generation"]

        self.write_broken()
        event = self.sighup()
        self.assertEqual(event["result"], "failure")
        self.assertIn(self.server.config_path, event["error"])
        self.assertIn("clock_skew_seconds", event["error"])
        self.assertIn("-7", event["error"])
        self.assertEqual(event["generation"], good_generation)
        for _ in range(20):
            self.assert_denied(self.probe(), "forbidden")

    def test_listen_and_workers_are_kept(self):
        other = dict(self.config_b, workers=3)
        cfg = dict(other, listen=f"127.0.0.1:{h.free_port()}")
        tmp = self.server.config_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        os.replace(tmp, self.server.config_path)
        event = self.sighup()
        self.assertEqual(event["result"], "success")
        self.assertIn("listen, admin_listen, http_listen, workers and watch_config cannot change on reload", event["note"])
        self.assertIn(self.server.target, event["note"])
        # Still serving on the old port, with the rest of the new config.
        self.wait_outcome("forbidden")

    def test_token_cache_never_serves_an_older_snapshot(self):
        self.assert_allowed(self.probe(), "cluster-b", "shop", "checkout")
        self.assert_allowed(self.probe(), "cluster-b", "shop", "checkout")  # now cached on its worker
        cfg = self.world.config()
        cfg["clusters"][1]["public_key_files"] = [os.path.basename(self.world.rogue.public)]
        self.write_config(cfg)
        self.assertEqual(self.sighup()["result"], "success")
        # The same token on the same connection: its cached verification was
        # made with a key the new snapshot no longer trusts.
        self.wait_outcome("unknown_key")

    def test_twenty_sighups_under_load(self):
        token_a = self.world.token_a()
        body = os.path.join(self.folder, "load.bin")
        data = h.check_request(token=token_a, cluster="cluster-a").SerializeToString()
        with open(body, "wb") as f:
            f.write(struct.pack(">BI", 0, len(data)) + data)
        load = subprocess.Popen([H2LOAD, "-D", "12", "-c", "2", "-m", "8", "-H", "content-type: application/grpc",
                                 "-H", "te: trailers", "-d", body,
                                 f"http://{self.server.target}{h.CHECK_METHOD}"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen, errors = [], []
        stop = threading.Event()

        def checker():
            with self.server.channel() as channel:
                stub = h.authz_stub(channel)
                while not stop.is_set():
                    try:
                        seen.append(self.probe_outcome(stub))
                    except grpc.RpcError as e:
                        errors.append(repr(e))

        thread = threading.Thread(target=checker)
        thread.start()
        try:
            live = "allow"
            for i in range(20):
                if i % 2 == 1:
                    self.write_broken()
                    self.assertEqual(self.sighup()["result"], "failure")
                else:
                    use_b = (i // 2) % 2 == 1
                    self.write_config(self.config_b if use_b else self.config_a)
                    self.assertEqual(self.sighup()["result"], "success")
                    live = "forbidden" if use_b else "allow"
                self.wait_outcome(live)
        finally:
            stop.set()
            thread.join()
            out, _ = load.communicate(timeout=60)
        self.assertEqual(errors, [])
        self.assertGreater(len(seen), 20)
        # Every answer is one a live snapshot gives: A allows, B forbids.
        self.assertEqual(set(seen) - {"allow", "forbidden"}, set())
        self.assertEqual(live, "forbidden")  # the last good config is B
        self.assertRegex(out, r"requests: (\d+) total, \d+ started, \1 done, \1 succeeded, 0 failed, 0 errored",
                         out)
        self.assertRegex(out, r"status codes: \d+ 2xx, 0 3xx, 0 4xx, 0 5xx", out)
        self.assertNotRegex(out, r"requests: 0 total", out)
        events = reload_events(self.server)
        self.assertEqual([e["result"] for e in events], ["success", "failure"] * 10)


class WatchConfigTest(unittest.TestCase):
    """watch_config with the layout a Kubernetes ConfigMap volume has:
    cm/tokengate.json -> ..data/tokengate.json, ..data -> ..v1, and an
    update swaps ..data atomically to a new folder."""

    def absolute(self, cfg):
        cfg = json.loads(json.dumps(cfg))
        for c in cfg["clusters"]:
            if "jwks_file" in c:
                c["jwks_file"] = os.path.join(self.folder, c["jwks_file"])
            if "public_key_files" in c:
                c["public_key_files"] = [os.path.join(self.folder, p) for p in c["public_key_files"]]
        return cfg

    def setUp(self):
        self.folder = h.new_folder("tg-watch-")
        self.world = h.World(self.folder)
        self.cm = os.path.join(self.folder, "cm")
        os.makedirs(os.path.join(self.cm, "..v1"))
        os.symlink("..v1", os.path.join(self.cm, "..data"))
        os.symlink("..data/tokengate.json", os.path.join(self.cm, "tokengate.json"))
        self.config_a = self.absolute(self.world.config(watch_config=True))
        self.config_b = self.absolute(self.world.config(watch_config=True))
        self.config_b["rules"] = [PROBE_RULE] + self.config_b["rules"]
        self.server = h.Server(self.cm, self.config_a, "tokengate").start()
        self.stub = h.authz_stub(self.server.channel())
        self.token_b = self.world.token_b()
        self.version = 1

    def tearDown(self):
        code, _ = self.server.stop()
        if code != 0:
            self.fail(f"tokengate exited {code}:\n{self.server.log_text()[-4000:]}")

    def swap_in(self, cfg):
        self.version += 1
        new = f"..v{self.version}"
        os.makedirs(os.path.join(self.cm, new))
        with open(os.path.join(self.cm, new, "tokengate.json"), "w", encoding="utf-8") as f:
            json.dump(dict(cfg, listen=self.server.target), f)
        os.symlink(new, os.path.join(self.cm, "..data_tmp"))
        os.rename(os.path.join(self.cm, "..data_tmp"), os.path.join(self.cm, "..data"))

    def wait_events(self, count):
        deadline = time.monotonic() + 10
        while len(reload_events(self.server)) < count:
            self.assertLess(time.monotonic(), deadline, f"expected {count} config_reload lines")
            time.sleep(0.05)
        return reload_events(self.server)

    def outcome(self):
        resp = self.stub.Check(h.check_request(token=self.token_b, cluster="cluster-b", path="/probe/x"),
                               timeout=10)
        return "allow" if resp.WhichOneof("http_response") == "ok_response" else resp.status.message.split(":")[0]

    def test_configmap_swap_reloads(self):
        self.assertEqual(self.outcome(), "allow")
        self.swap_in(self.config_b)
        self.assertEqual(self.wait_events(1)[0]["result"], "success")
        deadline = time.monotonic() + 5
        while self.outcome() != "forbidden":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        # A broken update is refused and B keeps serving.
        self.swap_in(dict(self.config_b, clock_skew_seconds=-7))
        self.assertEqual(self.wait_events(2)[1]["result"], "failure")
        self.assertEqual(self.outcome(), "forbidden")
        # Nothing changed: no reload.
        time.sleep(1)
        self.assertEqual(len(reload_events(self.server)), 2)


if __name__ == "__main__":
    unittest.main()
