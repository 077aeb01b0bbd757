"""Helpers shared by the test/ship suites: paths from the environment ctest
sets, and example configs made checkable by minting the key files they name."""

import json
import os
import subprocess
import tempfile

SOURCE_DIR = os.environ["TOKENGATE_SOURCE_DIR"]
TOKENGATE = os.environ["TOKENGATE_BIN"]
TG_MINT = os.environ["TG_MINT_BIN"]


def source_path(*parts):
    return os.path.join(SOURCE_DIR, *parts)


def tokengate_version():
    out = subprocess.run([TOKENGATE, "--version"], check=True, capture_output=True, text=True).stdout
    name, version = out.split()
    assert name == "tokengate", out
    return version


def mint_keys_for(config, folder):
    """Writes into `folder` a fresh public key for every jwks_file and
    public_key_files entry of the config's clusters and identity providers
    (a dict), as tg-mint makes them."""
    for i, cluster in enumerate(config["clusters"] + config.get("identity_providers", [])):
        if "jwks_file" in cluster:
            subprocess.run([TG_MINT, "keygen", "--type", "p256", "--private", os.path.join(folder, f"k{i}.key"),
                            "--jwks", os.path.join(folder, cluster["jwks_file"]), "--kid", f"kid-{i}"],
                           check=True, capture_output=True)
        for j, pem in enumerate(cluster.get("public_key_files", [])):
            subprocess.run([TG_MINT, "keygen", "--type", "rsa2048", "--private",
                            os.path.join(folder, f"k{i}-{j}.key"), "--public", os.path.join(folder, pem)],
                           check=True, capture_output=True)


class CheckableConfig:
    """A temporary folder holding config.json (the given text) and the keys it
    names; `path` is the config file. Use as a context manager."""

    def __init__(self, text, parent=None):
        self.text = text
        self.parent = parent

    def __enter__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tg-ship-", dir=self.parent)
        self.folder = self.tmp.name
        self.path = os.path.join(self.folder, "config.json")
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(self.text)
        mint_keys_for(json.loads(self.text), self.folder)
        return self

    def __exit__(self, *exc):
        self.tmp.cleanup()
