"""`cmake --install` into a staging prefix: the tree it makes, the installed
binary and example config, the man page (groff -ww, man --warnings, and the
README's commands and config keys all in it) and the systemd unit (hardening,
paths, and systemd-analyze verify/security when systemd-analyze is here)."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from ship_support import CheckableConfig, source_path, tokengate_version

BUILD_DIR = os.environ["TOKENGATE_BUILD_DIR"]
CMAKE = os.environ["CMAKE_COMMAND"]
GROFF = os.environ["GROFF"]
SYSTEMD_ANALYZE = os.environ.get("SYSTEMD_ANALYZE")

EXPECTED_TREE = {
    "bin/tokengate",
    "share/man/man1/tokengate.1",
    "share/doc/tokengate/README.md",
    "share/doc/tokengate/config.example.json",
    "lib/systemd/system/tokengate.service",
}


def setUpModule():
    global STAGE, PREFIX
    STAGE = tempfile.mkdtemp(prefix="tg-ship-install-")
    PREFIX = os.path.join(STAGE, "usr")
    subprocess.run([CMAKE, "--install", BUILD_DIR, "--prefix", PREFIX], check=True, capture_output=True)


def tearDownModule():
    shutil.rmtree(STAGE)


def installed(rel):
    return os.path.join(PREFIX, rel)


def unit_lines():
    with open(installed("lib/systemd/system/tokengate.service"), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


class Tree(unittest.TestCase):
    def test_tree_is_exactly_what_the_readme_says(self):
        files = set()
        for folder, _, names in os.walk(PREFIX):
            files |= {os.path.relpath(os.path.join(folder, n), PREFIX) for n in names}
        self.assertEqual(files, EXPECTED_TREE)

    def test_binary_runs_and_checks_the_installed_example_config(self):
        binary = installed("bin/tokengate")
        self.assertTrue(os.access(binary, os.X_OK))
        out = subprocess.run([binary, "--version"], check=True, capture_output=True, text=True).stdout
        self.assertEqual(out.split()[1], tokengate_version())
        with open(installed("share/doc/tokengate/config.example.json"), encoding="utf-8") as f:
            text = f.read()
        with CheckableConfig(text) as cfg:
            r = subprocess.run([binary, "check", "-c", cfg.path], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class ManPage(unittest.TestCase):
    page = None

    @classmethod
    def setUpClass(cls):
        with open(installed("share/man/man1/tokengate.1"), encoding="utf-8") as f:
            cls.page = f.read()
        # The words of the page as groff renders them, on long lines without hyphenation.
        cls.text = subprocess.run([GROFF, "-man", "-Tutf8", "-rHY=0", "-rLL=1000n", "-P", "-cbou",
                                   installed("share/man/man1/tokengate.1")],
                                  check=True, capture_output=True, text=True).stdout

    def test_groff_has_no_warning(self):
        r = subprocess.run([GROFF, "-z", "-man", "-ww", installed("share/man/man1/tokengate.1")],
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_man_has_no_warning(self):
        if not shutil.which("man"):
            self.skipTest("man is not installed")
        r = subprocess.run(["man", "--warnings", "-l", installed("share/man/man1/tokengate.1")],
                           capture_output=True, text=True, env={**os.environ, "MANWIDTH": "80"})
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_version_matches_the_binary(self):
        [th] = [line for line in self.page.splitlines() if line.startswith(".TH ")]
        self.assertIn(f'"tokengate {tokengate_version()}"', th)

    def readme_section(self, title):
        with open(source_path("README.md"), encoding="utf-8") as f:
            readme = f.read()
        start = readme.index(f"\n## {title}\n")
        end = readme.index("\n## ", start + 1)
        return readme[start:end]

    def test_every_readme_config_key_is_documented(self):
        keys = set()
        for row in re.findall(r"^\| `([a-z_.]+)` \|", self.readme_section("Configuration"), re.M):
            keys.add(row)
        self.assertGreater(len(keys), 25)
        missing = sorted(k for k in keys if not re.search(rf"(?<![a-z_]){re.escape(k)}(?![a-z_])", self.text))
        self.assertEqual(missing, [], "config keys in README.md but not in doc/tokengate.1")

    def test_every_readme_reason_is_documented(self):
        reasons = set(re.findall(r"^\| `([a-z_]+)` \|", self.readme_section("Reasons"), re.M))
        self.assertGreater(len(reasons), 15)
        missing = sorted(r for r in reasons if not re.search(rf"(?<![a-z_]){r}(?![a-z_])", self.text))
        self.assertEqual(missing, [], "reasons in README.md but not in doc/tokengate.1")

    def test_every_command_and_option_is_documented(self):
        usage = self.readme_section("Command line").split("```")[1]
        words = set(re.findall(r"(?<![\w-])(--[a-z]+|serve|check|explain)\b", usage))
        self.assertGreaterEqual(len(words), 12)
        missing = sorted(w for w in words if w not in self.text)
        self.assertEqual(missing, [], "README command line words not in doc/tokengate.1")


class SystemdUnit(unittest.TestCase):
    def test_hardening(self):
        lines = set(unit_lines())
        for wanted in ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "ProtectHome=yes",
                       "PrivateTmp=yes", "PrivateDevices=yes", "CapabilityBoundingSet=",
                       "RestrictAddressFamilies=AF_INET AF_INET6", "SystemCallFilter=@system-service",
                       "ExecReload=kill -HUP $MAINPID", "MemoryDenyWriteExecute=yes", "RestrictNamespaces=yes"):
            self.assertIn(wanted, lines)
        [nofile] = [line for line in lines if line.startswith("LimitNOFILE=")]
        # Above tokengate's default max_connections (10000), with room for the listeners.
        self.assertGreater(int(nofile.split("=")[1]), 10000)

    def test_exec_lines_name_the_installed_binary(self):
        execs = [line for line in unit_lines() if line.startswith(("ExecStart=", "ExecStartPre="))]
        self.assertEqual(execs, [f"ExecStartPre={installed('bin/tokengate')} check -c /etc/tokengate/config.json",
                                 f"ExecStart={installed('bin/tokengate')} serve -c /etc/tokengate/config.json"])

    def analyze(self, *args):
        if not SYSTEMD_ANALYZE:
            self.skipTest("systemd-analyze is not installed")
        env = {**os.environ, "MANPATH": installed("share/man"), "SYSTEMD_LOG_COLOR": "0"}
        return subprocess.run([SYSTEMD_ANALYZE, *args], capture_output=True, text=True, env=env)

    def test_systemd_analyze_verify(self):
        r = self.analyze("verify", installed("lib/systemd/system/tokengate.service"))
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_systemd_analyze_security_exposure_is_low(self):
        r = self.analyze("security", "--offline=true", "--no-pager",
                         installed("lib/systemd/system/tokengate.service"))
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(r"Overall exposure level for tokengate.service: ([0-9.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout[-500:])
        # 1.4 when written; systemd calls up to 1.9 "OK", above "MEDIUM".
        self.assertLessEqual(float(m.group(1)), 1.9, r.stdout)


if __name__ == "__main__":
    unittest.main()


class Configure(unittest.TestCase):
    """A plain configure with the build level's packages only: Criterion is
    hidden from pkg-config (a pkg-config path holding every other .pc file)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tg-ship-configure-")
        pcdir = os.path.join(cls.tmp, "pkgconfig")
        os.mkdir(pcdir)
        search = subprocess.run(["pkg-config", "--variable", "pc_path", "pkg-config"], check=True,
                                capture_output=True, text=True).stdout.strip().split(":")
        for folder in search:
            for name in os.listdir(folder) if os.path.isdir(folder) else []:
                if name.endswith(".pc") and name != "criterion.pc" and not os.path.exists(os.path.join(pcdir, name)):
                    os.symlink(os.path.join(folder, name), os.path.join(pcdir, name))
        cls.env = {**os.environ, "PKG_CONFIG_LIBDIR": pcdir}
        cls.env.pop("PKG_CONFIG_PATH", None)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def configure(self, name, *args):
        build = os.path.join(self.tmp, name)
        return build, subprocess.run([CMAKE, "-S", source_path(), "-B", build, *args], env=self.env,
                                     capture_output=True, text=True)

    def test_plain_configure_succeeds_and_names_the_setup_level(self):
        build, r = self.configure("auto")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("tests are not built", r.stderr)
        self.assertIn("Criterion", r.stderr)
        self.assertIn("scripts/setup.sh test", r.stderr)
        ctest = os.path.join(os.path.dirname(CMAKE), "ctest")
        tests = subprocess.run([ctest, "--test-dir", build, "-N"], capture_output=True, text=True).stdout
        self.assertIn("Total Tests: 0", tests)

    def test_tests_on_without_criterion_fails(self):
        _, r = self.configure("on", "-DTOKENGATE_TESTS=ON")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("scripts/setup.sh test", r.stderr)
