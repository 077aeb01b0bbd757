"""scripts/image.sh end to end, in a private buildah store: the image is built
from Debian packages, its config matches the Dockerfile's, and inside its root
(buildah mount + chroot, as user 65532) tokengate prints its version, checks
the Kubernetes example's config and serves gRPC health, which proves every
shared library it loads is in the image. The archive for podman/docker load
is checked too. Prints the image's sizes. Everything it makes is removed,
except the Release build and its .deb cache in RELEASE_BUILD_DIR."""

import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest

import grpc

from ship_support import CheckableConfig, source_path, tokengate_version
from test_examples import configmap_config

BUILDAH = os.environ["BUILDAH"]
RELEASE_BUILD = os.environ["RELEASE_BUILD_DIR"]


def dockerfile_runtime_config():
    """ENTRYPOINT, CMD, USER and the LABEL keys of the Dockerfile's last stage."""
    with open(source_path("Dockerfile"), encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    stage = text[text.rindex("\nFROM "):]
    get = lambda key: re.search(rf"^{key} (.*)$", stage, re.M).group(1).strip()
    labels = re.findall(r"(org\.opencontainers\.image\.[a-z]+)=", get("LABEL"))
    return json.loads(get("ENTRYPOINT")), json.loads(get("CMD")), get("USER"), set(labels)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Image(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("SKIPPED: the image test needs root (buildah storage, chroot)")
        cls.tmp = tempfile.mkdtemp(prefix="tg-ship-image-")
        conf = os.path.join(cls.tmp, "storage.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{cls.tmp}/graph"\nrunroot = "{cls.tmp}/run"\n')
        cls.env = {**os.environ, "CONTAINERS_STORAGE_CONF": conf}
        cls.name = f"tokengate:{tokengate_version()}"
        cls.archive = os.path.join(cls.tmp, "tokengate.tar")
        cls.container = None
        started = time.monotonic()
        r = subprocess.run([source_path("scripts", "image.sh"), "--build-dir", RELEASE_BUILD,
                            "--output", cls.archive],
                           env=cls.env, capture_output=True, text=True)
        cls.build_seconds = time.monotonic() - started
        cls.build_log = r.stderr
        if r.returncode != 0:
            cls.tearDownClass()
            raise AssertionError(f"scripts/image.sh failed:\n{r.stdout}{r.stderr}")
        cls.container = cls.buildah("from", "--quiet", cls.name).strip()
        cls.root = cls.buildah("mount", cls.container).strip()

    @classmethod
    def tearDownClass(cls):
        if cls.container:
            subprocess.run([BUILDAH, "umount", cls.container], env=cls.env, capture_output=True)
            subprocess.run([BUILDAH, "rm", cls.container], env=cls.env, capture_output=True)
        subprocess.run([BUILDAH, "rmi", "--all", "--force"], env=cls.env, capture_output=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def buildah(cls, *args):
        return subprocess.run([BUILDAH, *args], env=cls.env, check=True, capture_output=True, text=True).stdout

    def chroot(self, *args, **kw):
        return subprocess.run(["chroot", "--userspec=65532:65532", self.root, *args], **kw)

    def image_config(self):
        return json.loads(self.buildah("inspect", "--type", "image", self.name))["OCIv1"]["config"]

    def test_config_matches_the_dockerfile(self):
        entrypoint, cmd, user, labels = dockerfile_runtime_config()
        cfg = self.image_config()
        self.assertEqual(cfg["Entrypoint"], entrypoint)
        self.assertEqual(cfg["Cmd"], cmd)
        self.assertEqual(cfg["User"], user)
        self.assertEqual(user, "65532:65532")
        self.assertEqual({k for k in cfg["Labels"] if k.startswith("org.opencontainers.")}, labels)
        self.assertTrue({"source", "version", "licenses"} <= {k.rsplit(".", 1)[1] for k in labels})
        self.assertEqual(cfg["Labels"]["org.opencontainers.image.version"], tokengate_version())

    def test_root_holds_no_shell_and_the_nonroot_user(self):
        for shell in ("bin/sh", "bin/bash", "bin/dash", "usr/bin/sh"):
            self.assertFalse(os.path.lexists(os.path.join(self.root, shell)), shell)
        with open(os.path.join(self.root, "etc/passwd"), encoding="utf-8") as f:
            self.assertIn("nonroot:x:65532:65532:", f.read())
        self.assertTrue(os.path.getsize(os.path.join(self.root, "etc/ssl/certs/ca-certificates.crt")) > 100000)

    def test_version_runs_inside_the_image(self):
        r = self.chroot("/usr/bin/tokengate", "--version", capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stdout.strip(), r.stderr), (0, f"tokengate {tokengate_version()}", ""))

    def config_in_root(self, text):
        cfg = CheckableConfig(text, parent=os.path.join(self.root, "tmp"))
        cfg.__enter__()
        self.addCleanup(cfg.__exit__)
        os.chmod(cfg.folder, 0o755)
        for name in os.listdir(cfg.folder):
            os.chmod(os.path.join(cfg.folder, name), 0o644)
        return "/" + os.path.relpath(cfg.path, self.root)

    def test_check_runs_inside_the_image_on_the_kubernetes_config(self):
        path = self.config_in_root(configmap_config())
        r = self.chroot("/usr/bin/tokengate", "check", "-c", path, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(r.stdout.startswith("ok: "), r.stdout)

    def test_serve_runs_inside_the_image_and_answers_health(self):
        cfg = json.loads(configmap_config())
        port = free_port()
        cfg["listen"] = f"127.0.0.1:{port}"
        path = self.config_in_root(json.dumps(cfg))
        log = open(os.path.join(self.tmp, "serve.log"), "w+", encoding="utf-8")
        self.addCleanup(log.close)
        proc = subprocess.Popen(["chroot", "--userspec=65532:65532", self.root, "/usr/bin/tokengate", "serve", "-c",
                                 path], stdout=subprocess.DEVNULL, stderr=log)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                ready = grpc.channel_ready_future(channel)
                deadline = time.monotonic() + 20
                while not ready.done():
                    self.assertIsNone(proc.poll(), "tokengate serve exited")
                    self.assertLess(time.monotonic(), deadline, "tokengate serve did not start listening")
                    time.sleep(0.1)
                health = channel.unary_unary("/grpc.health.v1.Health/Check")
                # HealthCheckRequest{service: ""} is empty; HealthCheckResponse{status: SERVING} is 08 01.
                self.assertEqual(health(b"", timeout=5), b"\x08\x01")
        finally:
            proc.send_signal(signal.SIGTERM)
            status = proc.wait(timeout=15)
        log.seek(0)
        self.assertEqual(status, 0, log.read())

    def test_archive_loads_as_the_image(self):
        with tarfile.open(self.archive) as tar:
            [manifest] = json.load(tar.extractfile("manifest.json"))
            # What Kubernetes makes of the Deployment's `image: tokengate:VERSION`
            # (kind load image-archive, ctr images import keep these names).
            self.assertIn(f"docker.io/library/{self.name}", manifest["RepoTags"])
            [layer] = manifest["Layers"]
            with tarfile.open(fileobj=tar.extractfile(layer)) as fs:
                names = set(fs.getnames())
        self.assertIn("usr/bin/tokengate", {n.lstrip("./") for n in names})

    def test_report_sizes(self):
        root_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(self.root) for f in fs
                         if not os.path.islink(os.path.join(d, f)))
        with open(self.archive, "rb") as f:
            gz = len(gzip.compress(f.read(), 6))
        print(f"\nimage {self.name}: root {root_bytes / 1e6:.1f} MB, archive {os.path.getsize(self.archive) / 1e6:.1f} MB, "
              f"gzipped {gz / 1e6:.1f} MB; built in {self.build_seconds:.0f} s\n{self.build_log}",
              file=sys.stderr)
        self.assertLess(root_bytes, 30e6)


if __name__ == "__main__":
    unittest.main()
