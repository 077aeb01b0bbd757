"""Shared fixtures for the integration tests: keys, tokens, config, a running
tokengate and the gRPC client side.

Everything is created at test time in a temporary folder: keys and tokens
come from tg-mint, the Python protobuf stubs from the project's proto/ files
(grpc_tools), and the config is written next to the keys. The paths of the
binaries come from the environment CMake sets (see CMakeLists.txt):
TOKENGATE_BIN, TG_MINT_BIN, TOKENGATE_PROTO_DIR.
"""

import atexit
import base64
import http.client
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types

import grpc
from prometheus_client.parser import text_string_to_metric_families

KUBE_ISSUER = "https://kubernetes.default.svc.cluster.local"
ISSUER_A = "https://oidc.cluster-a.example.com"
AUDIENCE = "tokengate"
CHECK_METHOD = "/envoy.service.auth.v3.Authorization/Check"
HEALTH_METHOD = "/grpc.health.v1.Health/Check"
AUTHZ_SERVICE = "envoy.service.auth.v3.Authorization"

GRPC_UNAUTHENTICATED = 16
GRPC_PERMISSION_DENIED = 7
GRPC_INVALID_ARGUMENT = 3
OVERWRITE_IF_EXISTS_OR_ADD = 2

UNAUTHENTICATED_REASONS = (
    "missing_token", "malformed_token", "unsupported_alg", "unknown_key", "bad_signature",
    "unknown_issuer", "cluster_mismatch", "audience_mismatch", "expired", "not_yet_valid",
    "missing_claim", "stale_token", "claim_mismatch",
)
# Reasons decided before a signature verified: no claim may be trusted.
UNVERIFIED_REASONS = ("missing_token", "malformed_token", "unsupported_alg", "unknown_key", "bad_signature",
                      "unknown_issuer", "malformed_request")
FORBIDDEN_REASONS = ("unknown_cluster", "source_not_allowed", "forbidden", "peer_mismatch", "peer_missing",
                     "provider_not_allowed")
# The request itself cannot be judged (a path that does not normalize): HTTP 400.
INVALID_REASONS = ("malformed_request",)


def _env_path(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run the integration tests through ctest")
    if not os.path.exists(value):
        raise RuntimeError(f"{name}={value} does not exist: build it first")
    return value


def tokengate_bin():
    return _env_path("TOKENGATE_BIN")


def tg_mint_bin():
    return _env_path("TG_MINT_BIN")


def proto_dir():
    return _env_path("TOKENGATE_PROTO_DIR")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---- protobuf stubs ---------------------------------------------------------

_STUBS = None


def stubs():
    """Generates the Python stubs once per process into a temporary folder and
    imports them. grpc.health.v1 is compiled from its own folder so its module
    (health_pb2) does not collide with the grpc package."""
    global _STUBS
    if _STUBS is not None:
        return _STUBS
    root = proto_dir()
    out = tempfile.mkdtemp(prefix="tg-stubs-")
    atexit.register(shutil.rmtree, out, True)
    envoy = [
        "envoy/service/auth/v3/external_auth.proto",
        "envoy/service/auth/v3/attribute_context.proto",
        "envoy/config/core/v3/base.proto",
        "envoy/config/core/v3/address.proto",
        "envoy/type/v3/http_status.proto",
        "google/rpc/status.proto",
    ]
    protoc = [sys.executable, "-m", "grpc_tools.protoc"]
    subprocess.run(protoc + ["-I", root, "--python_out", out, "--grpc_python_out", out] + envoy, check=True)
    health_dir = os.path.join(root, "grpc", "health", "v1")
    subprocess.run(protoc + ["-I", health_dir, "--python_out", out, "health.proto"], check=True)
    sys.path.insert(0, out)
    _STUBS = types.SimpleNamespace(
        ext=importlib.import_module("envoy.service.auth.v3.external_auth_pb2"),
        ext_grpc=importlib.import_module("envoy.service.auth.v3.external_auth_pb2_grpc"),
        base=importlib.import_module("envoy.config.core.v3.base_pb2"),
        health=importlib.import_module("health_pb2"),
    )
    return _STUBS


def check_request(*, token=None, authorization=None, cluster=None, host="api.unrouted.test",
                  source="10.1.2.3", method="GET", path="/", headers=None, raw=False,
                  request_id="1", principal=None, certificate=None):
    """A CheckRequest shaped like Envoy's. |token| becomes "Bearer <token>"
    unless |authorization| gives the whole header value. |raw| puts the
    headers in header_map with raw_value (encode_raw_headers) instead of the
    headers map. |cluster| becomes context_extensions["cluster"]. |principal|
    and |certificate| (URL-encoded PEM) are source.principal and
    source.certificate, the caller's mTLS identity."""
    s = stubs()
    req = s.ext.CheckRequest()
    attrs = req.attributes
    attrs.source.address.socket_address.address = source
    attrs.source.address.socket_address.port_value = 43210
    if principal is not None:
        attrs.source.principal = principal
    if certificate is not None:
        attrs.source.certificate = certificate
    attrs.destination.address.socket_address.address = "10.0.0.10"
    attrs.destination.address.socket_address.port_value = 8080
    http = attrs.request.http
    http.id = request_id
    http.method = method
    http.path = path
    http.host = host
    http.scheme = "http"
    http.protocol = "HTTP/1.1"
    all_headers = {":authority": host, ":method": method, ":path": path, ":scheme": "http",
                   "user-agent": "tokengate-integration", "x-request-id": f"it-{request_id}"}
    if authorization is not None:
        all_headers["authorization"] = authorization
    elif token is not None:
        all_headers["authorization"] = "Bearer " + token
    all_headers.update(headers or {})
    for key, value in all_headers.items():
        if raw:
            entry = http.header_map.headers.add()
            entry.key = key
            entry.raw_value = value.encode()
        else:
            http.headers[key] = value
    if cluster is not None:
        attrs.context_extensions["cluster"] = cluster
    return req


# ---- keys and tokens ----------------------------------------------------------

class Key:
    """A key pair made by tg-mint. |kid| is the JWKS kid for JWKS keys, else
    kube-apiserver's fingerprint (what tokengate computes for PEM keys)."""

    def __init__(self, folder, name, key_type, jwks_kid=None):
        self.private = os.path.join(folder, f"{name}.key.pem")
        self.public = os.path.join(folder, f"{name}.pub.pem")
        self.jwks = os.path.join(folder, f"{name}.jwks.json") if jwks_kid else None
        cmd = [tg_mint_bin(), "keygen", "--type", key_type, "--private", self.private, "--public", self.public]
        if jwks_kid:
            cmd += ["--jwks", self.jwks, "--kid", jwks_kid]
        subprocess.run(cmd, check=True)
        if jwks_kid:
            self.kid = jwks_kid
        else:
            out = subprocess.run([tg_mint_bin(), "fingerprint", "--key", self.public], check=True,
                                 capture_output=True, text=True)
            self.kid = out.stdout.strip()


def mint(key, *, iss, aud=(AUDIENCE,), namespace="default", service_account="web", pod=None,
         exp_in=600, nbf_in=None, iat_in=None, kid=None, no_kid=False, alg=None, claims=None):
    """A compact JWS from tg-mint sign. namespace=None leaves out the
    kubernetes.io claim; kid defaults to the key's kid."""
    cmd = [tg_mint_bin(), "sign", "--key", key.private, "--iss", iss, "--exp-in", str(exp_in)]
    cmd += ["--no-kid"] if no_kid else ["--kid", kid or key.kid]
    for a in aud:
        cmd += ["--aud", a]
    if namespace is not None:
        cmd += ["--namespace", namespace, "--service-account", service_account]
        if pod:
            cmd += ["--pod", pod]
    if nbf_in is not None:
        cmd += ["--nbf-in", str(nbf_in)]
    if iat_in is not None:
        cmd += ["--iat-in", str(iat_in)]
    if alg:
        cmd += ["--alg", alg]
    if claims is not None:
        cmd += ["--claims", json.dumps(claims)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    token = out.stdout.strip()
    if token.count(".") != 2:
        raise RuntimeError(f"tg-mint sign printed no compact JWS: {out.stdout!r}")
    return token


def with_header(token, header):
    """|token| with its protected header replaced (signature left as is)."""
    _, payload, signature = token.split(".")
    return ".".join([b64url(json.dumps(header).encode()), payload, signature])


# ---- the server ----------------------------------------------------------------

def free_port():
    """A loopback port that was free a moment ago (bind 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One `tokengate serve` process on a free loopback port, with its stderr
    in a file. stop() sends SIGTERM and returns (exit code, seconds taken)."""

    def __init__(self, folder, config, name="tokengate"):
        self.folder = folder
        self.config = dict(config)
        self.name = name
        self.config_path = os.path.join(folder, f"{name}.json")
        self.stderr_path = os.path.join(folder, f"{name}.stderr")
        self.proc = None
        self.port = None
        self._stderr = None

    @property
    def target(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=20.0):
        for _attempt in range(3):
            self.port = free_port()
            self.config["listen"] = self.target
            with open(self.config_path, "w", encoding="utf-8") as f:
                json.dump(self.config, f, indent=2)
            self._stderr = open(self.stderr_path, "ab")
            self.proc = subprocess.Popen([tokengate_bin(), "serve", "-c", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr)
            if self._wait_serving(timeout):
                return self
            if self.proc.poll() is None:
                break
            # Lost the port to someone else between free_port() and bind: try another.
            self._stderr.close()
        self.kill()
        raise RuntimeError(f"{self.name} did not become SERVING on {self.target}:\n{self.log_text()}")

    def _wait_serving(self, timeout):
        deadline = time.monotonic() + timeout
        s = stubs()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with grpc.insecure_channel(self.target) as channel:
                    call = channel.unary_unary(HEALTH_METHOD,
                                               request_serializer=s.health.HealthCheckRequest.SerializeToString,
                                               response_deserializer=s.health.HealthCheckResponse.FromString)
                    reply = call(s.health.HealthCheckRequest(service=""), timeout=1.0)
                    if reply.status == s.health.HealthCheckResponse.SERVING:
                        return True
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        return False

    def stop(self, timeout=5.0):
        """SIGTERM; waits up to |timeout| s. Returns (exit code or None if it
        had to be killed, seconds until exit)."""
        if self.proc is None or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None, 0.0)
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        elapsed = time.monotonic() - start
        self._stderr.close()
        return code, elapsed

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._stderr is not None and not self._stderr.closed:
            self._stderr.close()

    def log_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def decisions(self):
        """The decision log lines so far, parsed."""
        out = []
        for line in self.log_text().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and "decision" in obj:
                out.append(obj)
        return out

    def logged(self, request_id, timeout=10.0):
        """The decision lines of x-request-id |request_id| (check_request
        names them it-<request_id>), polling a while: lines may trail the
        answer."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [d for d in self.decisions() if d["request_id"] == f"it-{request_id}"]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def metric_samples(self, admin_port, name):
        """The samples named |name| of the admin endpoint's /metrics."""
        conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=10)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == name]

    def wait_decisions(self, count, timeout=10.0):
        """Polls until at least |count| decision lines are logged (log lines
        may trail the gRPC answer); returns them."""
        deadline = time.monotonic() + timeout
        lines = self.decisions()
        while len(lines) < count and time.monotonic() < deadline:
            time.sleep(0.05)
            lines = self.decisions()
        return lines

    def channel(self):
        return grpc.insecure_channel(self.target)


def authz_stub(channel):
    return stubs().ext_grpc.AuthorizationStub(channel)


# ---- the standard world: three clusters, rules, tokens -------------------------

class World:
    """Keys for three clusters and a rogue key, written into |folder|.

    cluster-a: own issuer, RSA-2048 JWKS (kid "cluster-a-2024"), source CIDR
               10.0.0.0/8, host api.cluster-a.test; rule: /admin only for
               namespace ops.
    cluster-b: shared issuer KUBE_ISSUER, P-256 PEM, any source, host
               api.cluster-b.test; rule: /payments only for shop:checkout.
    cluster-c: shares KUBE_ISSUER with cluster-b, P-384 PEM, forward_token,
               tokens older than 600 s or past warnafter are stale, host
               api.cluster-c.test.
    rogue:     an RSA key no cluster trusts.
    """

    def __init__(self, folder):
        self.folder = folder
        self.key_a = Key(folder, "cluster-a", "rsa2048", jwks_kid="cluster-a-2024")
        self.key_b = Key(folder, "cluster-b", "p256")
        self.key_c = Key(folder, "cluster-c", "p384")
        self.rogue = Key(folder, "rogue", "rsa2048")

    def config(self, **overrides):
        cfg = {
            "workers": 2,
            "clock_skew_seconds": 60,
            "max_token_bytes": 16384,
            "max_message_bytes": 1048576,
            "trusted_proxy_hops": 0,
            "token_cache": {"size": 1000},
            "log_decisions": True,
            "clusters": [
                {"name": "cluster-a", "issuer": ISSUER_A, "audiences": [AUDIENCE],
                 "jwks_file": os.path.basename(self.key_a.jwks),
                 "source_cidrs": ["10.0.0.0/8"], "hosts": ["api.cluster-a.test"]},
                {"name": "cluster-b", "issuer": KUBE_ISSUER, "audiences": [AUDIENCE],
                 "public_key_files": [os.path.basename(self.key_b.public)],
                 "hosts": ["api.cluster-b.test"]},
                {"name": "cluster-c", "issuer": KUBE_ISSUER, "audiences": [AUDIENCE],
                 "public_key_files": [os.path.basename(self.key_c.public)],
                 "hosts": ["api.cluster-c.test"], "forward_token": True,
                 "max_token_age_seconds": 600, "enforce_warnafter": True},
            ],
            "rules": [
                {"name": "admin-is-ops", "clusters": ["cluster-a"], "path_prefix": "/admin",
                 "namespaces": ["ops"]},
                {"name": "payments-checkout-only", "clusters": ["cluster-b"], "path_prefix": "/payments",
                 "service_accounts": ["shop:checkout"]},
                {"name": "everyone-else"},
            ],
        }
        cfg.update(overrides)
        return cfg

    def token_a(self, **kw):
        kw.setdefault("namespace", "shop")
        kw.setdefault("service_account", "web")
        return mint(self.key_a, iss=ISSUER_A, **kw)

    def token_b(self, **kw):
        kw.setdefault("namespace", "shop")
        kw.setdefault("service_account", "checkout")
        return mint(self.key_b, iss=KUBE_ISSUER, **kw)

    def token_c(self, **kw):
        kw.setdefault("namespace", "batch")
        kw.setdefault("service_account", "reporter")
        return mint(self.key_c, iss=KUBE_ISSUER, **kw)


def new_folder(prefix):
    folder = tempfile.mkdtemp(prefix=prefix)
    if os.environ.get("TG_KEEP_TMP") != "1":
        atexit.register(shutil.rmtree, folder, True)
    return folder


# ---- assertions ------------------------------------------------------------------

# Headers of an identity-provider token's allow, removed for service accounts.
PROVIDER_HEADERS = ["x-tokengate-user", "x-tokengate-groups", "x-tokengate-provider"]


def header_dict(options):
    return {o.header.key.lower(): o.header.value for o in options}


class DecisionAsserts:
    """Mixin for unittest.TestCase: checks on a CheckResponse."""

    def assert_allowed(self, resp, cluster, namespace, service_account, forward_token=False, peer=None):
        self.assertEqual(resp.status.code, 0, resp.status.message)
        self.assertEqual(resp.WhichOneof("http_response"), "ok_response")
        ok = resp.ok_response
        subject = f"system:serviceaccount:{namespace}:{service_account}"
        want = {
            "x-tokengate-cluster": cluster,
            "x-tokengate-subject": subject,
            "x-tokengate-namespace": namespace,
            "x-tokengate-service-account": service_account,
        }
        if peer is not None:
            want["x-tokengate-peer"] = peer
        self.assertEqual(header_dict(ok.headers), want)
        for option in ok.headers:
            self.assertEqual(option.append_action, OVERWRITE_IF_EXISTS_OR_ADD, option.header.key)
            self.assertEqual(option.header.raw_value, b"", "replies must use value, not raw_value")
        # Without a bound peer or a shadow denial, a client's own x-tokengate-peer
        # or x-tokengate-shadow-reason never reaches the upstream; for a service
        # account's token, nor do the provider identity headers.
        removed = ([] if forward_token else ["authorization"]) + ([] if peer else ["x-tokengate-peer"]) + \
            ["x-tokengate-shadow-reason"] + PROVIDER_HEADERS
        self.assertEqual(list(ok.headers_to_remove), removed)
        fields = resp.dynamic_metadata.fields
        self.assertEqual(fields["cluster"].string_value, cluster)
        self.assertEqual(fields["subject"].string_value, subject)
        self.assertEqual(fields["namespace"].string_value, namespace)
        self.assertEqual(fields["service_account"].string_value, service_account)
        self.assertEqual(fields["reason"].string_value, "ok")

    def assert_denied(self, resp, reason):
        if reason in UNAUTHENTICATED_REASONS:
            grpc_code, http = GRPC_UNAUTHENTICATED, 401
        elif reason in FORBIDDEN_REASONS:
            grpc_code, http = GRPC_PERMISSION_DENIED, 403
        elif reason in INVALID_REASONS:
            grpc_code, http = GRPC_INVALID_ARGUMENT, 400
        else:
            raise AssertionError(f"unknown reason {reason}")
        self.assertEqual(resp.WhichOneof("http_response"), "denied_response",
                         f"expected {reason}, got status {resp.status.code} {resp.status.message!r}")
        self.assertEqual(resp.status.code, grpc_code, resp.status.message)
        self.assertTrue(resp.status.message.startswith(reason + ": "),
                        f"expected {reason}, got {resp.status.message!r}")
        denied = resp.denied_response
        self.assertEqual(denied.status.code, http)
        headers = header_dict(denied.headers)
        self.assertEqual(headers.get("x-tokengate-reason"), reason)
        if reason == "missing_token":
            # RFC 6750 3.1: no credentials, no error code.
            self.assertEqual(headers.get("www-authenticate"), 'Bearer realm="tokengate"')
        elif http == 401:
            self.assertEqual(headers.get("www-authenticate"),
                             f'Bearer realm="tokengate", error="invalid_token", error_description="{reason}"')
        else:
            self.assertNotIn("www-authenticate", headers)
        self.assertEqual(headers.get("content-type"), "application/json")
        for option in denied.headers:
            self.assertEqual(option.append_action, OVERWRITE_IF_EXISTS_OR_ADD, option.header.key)
        body = json.loads(denied.body)
        self.assertIs(body["allowed"], False)
        self.assertEqual(body["reason"], reason)
        self.assertIsInstance(body["message"], str)
        self.assertTrue(body["message"])
        self.assertEqual(resp.status.message, f"{reason}: {body['message']}")
        if reason in UNVERIFIED_REASONS:
            # A token that did not verify must not put claims anywhere.
            self.assertNotIn("subject", resp.dynamic_metadata.fields)
            self.assertNotIn("namespace", resp.dynamic_metadata.fields)
