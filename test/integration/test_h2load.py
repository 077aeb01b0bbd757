"""h2load smoke: many framed CheckRequests over a few HTTP/2 connections.

h2load only sees HTTP statuses, so the decision log is what proves each
request got the right answer: one line per request with the expected
decision and reason."""

import collections
import os
import re
import shutil
import struct
import subprocess
import unittest

import tg_harness as h

H2LOAD = os.environ.get("H2LOAD_BIN") or shutil.which("h2load")


class H2loadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-h2load-")
        cls.world = h.World(cls.folder)
        cls.server = h.Server(cls.folder, cls.world.config(), "h2load").start()
        cls.token_a = cls.world.token_a()

    @classmethod
    def tearDownClass(cls):
        code, elapsed = cls.server.stop()
        log = cls.server.log_text()
        if code != 0 or elapsed > 5.0:
            raise AssertionError(f"tokengate exited {code} after {elapsed:.1f}s on SIGTERM:\n{log[-4000:]}")
        if cls.token_a.split(".")[2] in log:
            raise AssertionError("the token's signature appears in the server's stderr")

    def run_h2load(self, name, request, count):
        body = os.path.join(self.folder, f"{name}.bin")
        data = request.SerializeToString()
        with open(body, "wb") as f:
            f.write(struct.pack(">BI", 0, len(data)) + data)
        cmd = [H2LOAD, "-n", str(count), "-c", "4", "-m", "16", "-H", "content-type: application/grpc",
               "-H", "te: trailers", "-d", body, f"http://{self.server.target}{h.CHECK_METHOD}"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
        self.assertRegex(out, rf"requests: {count} total, {count} started, {count} done, {count} succeeded, "
                              r"0 failed, 0 errored, 0 timeout", out)
        self.assertRegex(out, rf"status codes: {count} 2xx, 0 3xx, 0 4xx, 0 5xx", out)
        return out

    def decisions_of(self, before, count):
        lines = self.server.wait_decisions(before + count, timeout=20)[before:]
        self.assertEqual(len(lines), count)
        return collections.Counter((line["decision"], line["reason"]) for line in lines)

    def test_1_allowed_token(self):
        before = len(self.server.decisions())
        self.run_h2load("allow", h.check_request(token=self.token_a, cluster="cluster-a"), 10000)
        self.assertEqual(self.decisions_of(before, 10000), {("allow", "ok"): 10000})

    def test_2_replayed_token(self):
        before = len(self.server.decisions())
        self.run_h2load("replay", h.check_request(token=self.token_a, cluster="cluster-b"), 2000)
        self.assertEqual(self.decisions_of(before, 2000), {("deny", "cluster_mismatch"): 2000})


if __name__ == "__main__":
    unittest.main()
