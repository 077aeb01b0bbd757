"""The quick start's scripts/demo.sh, run as the README says (in a Release
build folder of its own): every step gets the decision the demo describes,
the explain report names the replay, and the server exits 0 on SIGTERM."""

import os
import re
import subprocess
import unittest

from ship_support import source_path

EXPECTED = [
    ("ALLOW", "ok", "200"),                   # 1. own cluster
    ("DENY", "cluster_mismatch", "401"),      # 2. replayed to cluster-b
    ("DENY", "expired", "401"),               # 3.
    ("DENY", "source_not_allowed", "403"),    # 4.
    ("DENY", "missing_token", "401"),         # 5.
    ("DENY", "forbidden", "403"),             # 6. /admin is for ops only
]


class Demo(unittest.TestCase):
    def test_demo_shows_each_decision(self):
        env = {**os.environ, "BUILD_DIR": os.environ["RELEASE_BUILD_DIR"]}
        r = subprocess.run([source_path("scripts", "demo.sh")], env=env, capture_output=True, text=True,
                           timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        decisions = [tuple(line.split()[:3]) for line in r.stdout.splitlines() if re.match(r"(ALLOW|DENY) ", line)]
        self.assertEqual(decisions, EXPECTED, r.stdout)
        self.assertIn("decision: DENY reason: cluster_mismatch", r.stdout)
        self.assertIn("tokengate exited with status 0", r.stdout)
        # The decision log lines it prints carry the same decisions.
        logged = re.findall(r'"reason":"([a-z_]+)"', r.stdout)
        self.assertEqual(logged, [reason for _, reason, _ in EXPECTED], r.stdout)


if __name__ == "__main__":
    unittest.main()
