"""Zero heap calls on a steady cached Check (issue 13): the real server with
test/bench/tg_malloc_count.c preloaded (built here with the system cc), its
malloc and free calls counted over h2load runs of cached Checks with the
decision log on. Two runs of different sizes on the same number of
connections: their difference in calls over their difference in requests is
the per-request figure, with connection set-up and teardown cancelled out.
Counting, not timing: the figure is the same on a busy machine.

Under AddressSanitizer or ThreadSanitizer the sanitizer's allocation hooks
count (ASan is told to accept the preload)."""

import os
import shutil
import signal
import struct
import subprocess
import time
import unittest

import tg_harness as h

H2LOAD = os.environ.get("H2LOAD_BIN") or shutil.which("h2load")
COUNTER_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "tg_malloc_count.c")
# Heap calls per cached Check allowed: 0, within what a stray timer or a
# connection's output buffer could add over a run (before the nghttp2 pool
# there were 8 per request, and 1 more with the EVP digest of the cache key).
MAX_PER_REQUEST = 0.01


class HeapTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-heap-")
        lib = os.path.join(cls.folder, "tg_malloc_count.so")
        deps = subprocess.run(["ldd", h.tokengate_bin()], capture_output=True, text=True, check=True).stdout
        sanitized = "libasan" in deps or "libtsan" in deps
        cmd = ["cc", "-std=c11", "-O2", "-shared", "-fPIC", "-o", lib, COUNTER_SRC, "-ldl"]
        subprocess.run(cmd + (["-DTG_COUNT_HOOKS_ONLY"] if sanitized else []), check=True)
        cls.count_file = os.path.join(cls.folder, "counts")
        cls.world = h.World(cls.folder)
        saved = dict(os.environ)
        os.environ["LD_PRELOAD"] = lib
        os.environ["TG_MALLOC_COUNT_FILE"] = cls.count_file
        asan = os.environ.get("ASAN_OPTIONS", "")
        os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
        try:
            cls.server = h.Server(cls.folder, cls.world.config(workers=1), "heap").start()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    @classmethod
    def tearDownClass(cls):
        code, _ = cls.server.stop()
        if code != 0:
            raise AssertionError(f"tokengate exited {code}:\n{cls.server.log_text()[-4000:]}")

    def counts(self):
        if os.path.exists(self.count_file):
            os.remove(self.count_file)
        self.server.proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(self.count_file):
                with open(self.count_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    fields = text.split()
                    return int(fields[1]), int(fields[3])
            time.sleep(0.02)
        self.fail("the preloaded counter did not report")

    def h2load(self, body, count):
        cmd = [H2LOAD, "-n", str(count), "-c", "4", "-m", "16", "-H", "content-type: application/grpc",
               "-H", "te: trailers", "-d", body, f"http://{self.server.target}{h.CHECK_METHOD}"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
        self.assertRegex(out, rf"requests: {count} total, {count} started, {count} done, {count} succeeded, "
                              r"0 failed", out)

    def test_cached_check_makes_no_heap_calls(self):
        token = self.world.token_a()
        data = h.check_request(token=token, cluster="cluster-a").SerializeToString()
        body = os.path.join(self.folder, "allow.bin")
        with open(body, "wb") as f:
            f.write(struct.pack(">BI", 0, len(data)) + data)
        self.h2load(body, 3000)  # warm: the token cached, pools and buffers at their steady size
        runs = []
        for n in (2000, 6000):
            a0, f0 = self.counts()
            self.h2load(body, n)
            a1, f1 = self.counts()
            runs.append((n, a1 - a0, f1 - f0))
        (n1, a1, f1), (n2, a2, f2) = runs
        per_alloc = (a2 - a1) / (n2 - n1)
        per_free = (f2 - f1) / (n2 - n1)
        self.assertGreater(a1, 0, "the counter counts (connection set-up allocates)")
        self.assertLessEqual(per_alloc, MAX_PER_REQUEST, f"heap allocations per cached Check: {runs}")
        self.assertLessEqual(per_free, MAX_PER_REQUEST, f"frees per cached Check: {runs}")
        decisions = self.server.decisions()
        self.assertGreaterEqual(len(decisions), 11000)
        self.assertTrue(all(d["decision"] == "allow" for d in decisions[-n2:]))


if __name__ == "__main__":
    unittest.main()
