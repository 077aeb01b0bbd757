"""TLS on the gRPC listener (the config's "tls" object), against the real
binary: a CA, server and client certificates made with the openssl CLI at
test time; grpcio with TLS credentials, Python's ssl module for what grpcio
cannot do (no ALPN, TLS 1.2 only, half a ClientHello), h2load over https, and
hostile clients (stalled or dribbling handshakes, garbage instead of a
ClientHello, 2,000 handshakes at once) while a well-behaved client is served."""

import asyncio
import collections
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import unittest

import grpc

import tg_harness as h

H2LOAD = os.environ.get("H2LOAD_BIN") or shutil.which("h2load")
ENVOY_SAN = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
OTHER_SAN = "spiffe://cluster.local/ns/default/sa/someone-else"
DNS_SAN = "envoy.tokengate.test"
IDLE_TIMEOUT = 2


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Pki:
    """Two CAs (the trusted one and a rogue one) and certificates, all P-256:
    the server's (localhost, 127.0.0.1) and clients with the SANs the tests
    need. Files are <name>.pem / <name>.key in |folder|."""

    def __init__(self, folder):
        self.folder = folder
        self.ca("ca")
        self.ca("rogue-ca")
        self.leaf("server", "ca", "DNS:localhost,IP:127.0.0.1", "serverAuth")
        self.leaf("envoy", "ca", f"URI:{ENVOY_SAN}", "clientAuth")
        self.leaf("dns-client", "ca", f"DNS:{DNS_SAN}", "clientAuth")
        self.leaf("other", "ca", f"URI:{OTHER_SAN}", "clientAuth")
        self.leaf("rogue", "rogue-ca", f"URI:{ENVOY_SAN}", "clientAuth")
        # A second server certificate, for the reload test's "which one is served".
        self.leaf("server2", "ca", "DNS:localhost,IP:127.0.0.1", "serverAuth")

    def path(self, name):
        return os.path.join(self.folder, name)

    def ca(self, name):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
                cwd=self.folder)

    def leaf(self, name, ca, san, usage):
        with open(self.path(f"{name}.ext"), "w", encoding="ascii") as f:
            f.write(f"subjectAltName={san}\nextendedKeyUsage={usage}\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=self.folder)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-set_serial", str(abs(hash(name)) % 1000000 + 2), "-out", f"{name}.pem", "-days", "2",
                "-extfile", f"{name}.ext", cwd=self.folder)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def credentials(self, client=None):
        """grpcio credentials trusting the CA, with |client|'s certificate when given."""
        if client is None:
            return grpc.ssl_channel_credentials(root_certificates=self.read("ca.pem"))
        return grpc.ssl_channel_credentials(root_certificates=self.read("ca.pem"),
                                            private_key=self.read(f"{client}.key"),
                                            certificate_chain=self.read(f"{client}.pem"))

    def ssl_context(self, alpn=("h2",), client=None):
        ctx = ssl.create_default_context(cafile=self.path("ca.pem"))
        if alpn is not None:
            ctx.set_alpn_protocols(list(alpn))
        if client is not None:
            ctx.load_cert_chain(self.path(f"{client}.pem"), self.path(f"{client}.key"))
        return ctx


class TlsServer(h.Server):
    """h.Server reached over TLS: health and channels use |credentials|."""

    def __init__(self, folder, config, name, credentials):
        super().__init__(folder, config, name)
        self.credentials = credentials

    def channel(self, credentials=None):
        return grpc.secure_channel(self.target, credentials or self.credentials,
                                   options=[("grpc.ssl_target_name_override", "localhost")])

    def _wait_serving(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with self.channel() as channel:
                    health(channel, timeout=1.0)
                    return True
            except grpc.RpcError:
                time.sleep(0.1)
        return False


def health(channel, timeout=5.0):
    s = h.stubs()
    call = channel.unary_unary(h.HEALTH_METHOD, request_serializer=s.health.HealthCheckRequest.SerializeToString,
                               response_deserializer=s.health.HealthCheckResponse.FromString)
    reply = call(s.health.HealthCheckRequest(service=""), timeout=timeout)
    if reply.status != s.health.HealthCheckResponse.SERVING:
        raise AssertionError(f"health is {reply.status}")


def tls_config(pki, client_ca=False, sans=None):
    tls = {"cert_file": "server.pem", "key_file": "server.key"}
    if client_ca:
        tls["client_ca_file"] = "ca.pem"
    if sans is not None:
        tls["allowed_client_sans"] = sans
    return tls


def wait_closed(sock, limit, start=None):
    """Reads until the server closes |sock|; returns (seconds since |start|,
    or since the call, and the bytes read). Fails when it is still open
    |limit| s after the start."""
    start = time.monotonic() if start is None else start
    got = b""
    sock.settimeout(0.2)
    while time.monotonic() - start < limit:
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - start, got
        if not chunk:
            return time.monotonic() - start, got
        got += chunk
    raise AssertionError(f"the server kept the connection open for {limit} s")


def client_hello(pki):
    """A real ClientHello (ALPN h2), as Python's OpenSSL sends it."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = pki.ssl_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


class Checker(threading.Thread):
    """The well-behaved client: Checks on one channel opened before the
    trouble starts, until stopped; records failures and the slowest answer."""

    def __init__(self, test, server, token):
        super().__init__(daemon=True)
        self.test, self.server, self.token = test, server, token
        self.stop_flag = threading.Event()
        self.done = 0
        self.failures = []
        self.slowest = 0.0
        self.channel = server.channel()
        self.stub = h.authz_stub(self.channel)
        self.stub.Check(h.check_request(token=token, cluster="cluster-a"), timeout=10)

    def run(self):
        while not self.stop_flag.is_set():
            start = time.monotonic()
            try:
                resp = self.stub.Check(h.check_request(token=self.token, cluster="cluster-a"), timeout=10)
                if resp.status.code != 0:
                    self.failures.append(resp.status.message)
            except grpc.RpcError as e:
                self.failures.append(str(e.code()))
            self.slowest = max(self.slowest, time.monotonic() - start)
            self.done += 1
            time.sleep(0.02)

    def finish(self):
        self.stop_flag.set()
        self.join(20)
        self.channel.close()


class TlsTest(unittest.TestCase, h.DecisionAsserts):
    """Server-side TLS only (no client certificate asked)."""

    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-tls-")
        cls.pki = Pki(cls.folder)
        cls.world = h.World(cls.folder)
        cfg = cls.world.config(tls=tls_config(cls.pki), idle_timeout_seconds=IDLE_TIMEOUT)
        cls.server = TlsServer(cls.folder, cfg, "tls", cls.pki.credentials()).start()
        cls.token_a = cls.world.token_a()

    @classmethod
    def tearDownClass(cls):
        code, elapsed = cls.server.stop()
        if code != 0 or elapsed > 5.0:
            raise AssertionError(f"tokengate exited {code} after {elapsed:.1f}s:\n{cls.server.log_text()[-4000:]}")

    def refusals(self):
        return [line for line in self.server.log_text().splitlines() if '"event":"tls_refused"' in line]

    def test_check_over_tls(self):
        with self.server.channel() as channel:
            resp = h.authz_stub(channel).Check(h.check_request(token=self.token_a, cluster="cluster-a"), timeout=5)
        self.assert_allowed(resp, "cluster-a", "shop", "web")
        with self.server.channel() as channel:
            resp = h.authz_stub(channel).Check(h.check_request(token=self.token_a, cluster="cluster-b"), timeout=5)
        self.assert_denied(resp, "cluster_mismatch")

    def test_plaintext_client_refused(self):
        with grpc.insecure_channel(self.server.target) as channel:
            with self.assertRaises(grpc.RpcError) as caught:
                h.authz_stub(channel).Check(h.check_request(token=self.token_a, cluster="cluster-a"), timeout=3)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def handshake(self, ctx):
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + struct.pack(">I", 0)[1:] + b"\x04\x00\x00\x00\x00\x00")
                # The server's SETTINGS frame comes back over TLS.
                head = tls.recv(9)
                return tls.version(), tls.selected_alpn_protocol(), head

    def test_alpn_h2_required(self):
        version, alpn, head = self.handshake(self.pki.ssl_context())
        self.assertEqual(alpn, "h2")
        self.assertEqual(head[3], 4, "the server's first frame is SETTINGS")
        before = len(self.refusals())
        for alpn in (None, ("http/1.1",)):
            with self.assertRaises(ssl.SSLError, msg=f"ALPN {alpn} must be refused") as caught:
                self.handshake(self.pki.ssl_context(alpn=alpn))
            self.assertIn("NO APPLICATION PROTOCOL", str(caught.exception).upper())
        lines = self.refusals()[before:]
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("client offered no ALPN", lines[0])
        self.assertIn("does not offer h2", lines[1])

    def test_tls12_accepted_tls11_refused(self):
        ctx = self.pki.ssl_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.assertEqual(self.handshake(ctx)[0], "TLSv1.2")
        ctx = self.pki.ssl_context()
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        before = len(self.refusals())
        with self.assertRaises(ssl.SSLError):
            self.handshake(ctx)
        lines = self.refusals()[before:]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("unsupported protocol", lines[0])

    def test_garbage_instead_of_client_hello(self):
        start_refusals = len(self.refusals())
        checker = Checker(self, self.server, self.token_a)
        checker.start()
        try:
            for garbage in (os.urandom(300), b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\0" * 64,
                            b"\x16\x03\x01\xff\xff" + os.urandom(64)):
                with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as sock:
                    sock.sendall(garbage)
                    elapsed, _ = wait_closed(sock, 5)
                    self.assertLess(elapsed, 1.5, "garbage is refused at once, not at the idle timeout")
        finally:
            checker.finish()
        self.assertEqual(checker.failures, [])
        self.assertGreater(checker.done, 0)
        self.assertGreaterEqual(len(self.refusals()) - start_refusals, 2)

    def test_stalled_and_dribbling_handshakes_closed(self):
        hello = client_hello(self.pki)
        self.assertGreater(len(hello), 100)
        checker = Checker(self, self.server, self.token_a)
        checker.start()
        try:
            start = time.monotonic()
            stalled = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
            stalled.sendall(hello[: len(hello) // 2])
            # The other half a byte every 0.1 s, never finishing it: activity
            # does not extend the handshake deadline (counted from the accept).
            dribbler = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
            dribbled_until = None
            for byte in hello[: len(hello) - 1]:
                try:
                    dribbler.sendall(bytes([byte]))
                except OSError:
                    break
                time.sleep(0.1)
                if time.monotonic() - start > IDLE_TIMEOUT + 3:
                    break
            dribbled_until = time.monotonic() - start
            dribbler_closed, _ = wait_closed(dribbler, IDLE_TIMEOUT + 3, start)
            stalled_closed, _ = wait_closed(stalled, IDLE_TIMEOUT + 3, start)
            stalled.close()
            dribbler.close()
        finally:
            checker.finish()
        self.assertGreaterEqual(stalled_closed, IDLE_TIMEOUT - 0.5)
        self.assertGreaterEqual(dribbler_closed, IDLE_TIMEOUT - 0.5)
        self.assertLess(dribbled_until, IDLE_TIMEOUT + 1.5, "the dribbler was still being read past the deadline")
        self.assertEqual(checker.failures, [])
        self.assertGreater(checker.done, 0)

    def test_h2load_over_tls(self):
        body = os.path.join(self.folder, "tls-h2load.bin")
        data = h.check_request(token=self.token_a, cluster="cluster-a").SerializeToString()
        with open(body, "wb") as f:
            f.write(struct.pack(">BI", 0, len(data)) + data)
        before = len(self.server.decisions())
        count = 3000
        # 128 streams a connection: answers fill whole 16 KiB records at once.
        cmd = [H2LOAD, "-n", str(count), "-c", "4", "-m", "128", "-H", "content-type: application/grpc",
               "-H", "te: trailers", "-d", body, f"https://127.0.0.1:{self.server.port}{h.CHECK_METHOD}"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
        self.assertIn("Application protocol: h2", out)
        self.assertRegex(out, rf"requests: {count} total, {count} started, {count} done, {count} succeeded, "
                              r"0 failed, 0 errored, 0 timeout", out)
        lines = self.server.wait_decisions(before + count, timeout=20)[before:]
        self.assertEqual(collections.Counter((x["decision"], x["reason"]) for x in lines), {("allow", "ok"): count})

    def test_two_thousand_handshakes_at_once(self):
        # A server of its own: 1,000 connections at most, and handshakes get
        # 30 s (the idle timeout), so a slow client machine is not mistaken
        # for stalled handshakes.
        cfg = self.world.config(tls=tls_config(self.pki), idle_timeout_seconds=30, max_connections=1000)
        server = TlsServer(self.folder, cfg, "tls-flood", self.pki.credentials()).start()
        try:
            self.flood(server)
        finally:
            code, _ = server.stop()
        self.assertEqual(code, 0, server.log_text()[-4000:])

    def flood(self, server):
        checker = Checker(self, server, self.token_a)
        checker.start()
        ctx = self.pki.ssl_context()
        port = server.port

        errors = collections.Counter()

        async def one():
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost",
                                            ssl_handshake_timeout=60), 90)
            except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError) as e:
                errors[f"{type(e).__name__}: {e}"[:80]] += 1
                return None
            if writer.get_extra_info("ssl_object").selected_alpn_protocol() != "h2":
                writer.close()
                return None
            return writer

        async def flood():
            return await asyncio.gather(*(one() for _ in range(2000)))

        start = time.monotonic()
        try:
            writers = asyncio.run(self._hold(flood))
        finally:
            checker.finish()
        elapsed = time.monotonic() - start
        print(f"2000 handshakes: {writers} established in {elapsed:.1f} s; checker: {checker.done} Checks, "
              f"slowest {checker.slowest * 1000:.0f} ms; refused: {dict(errors.most_common(3))}", file=sys.stderr)
        self.assertLess(elapsed, 90)
        # max_connections is 1000 (the checker's connection is one of them):
        # the others are accepted and closed, never queued.
        self.assertLessEqual(writers, 1000)
        self.assertGreaterEqual(writers, 500)
        self.assertEqual(checker.failures, [])
        self.assertGreater(checker.done, 0)
        # Served throughout: every Check answered within its 10 s deadline (a few
        # hundred ms alone; seconds when the shared machine is busy too).
        self.assertLess(checker.slowest, 8.0)
        with server.channel() as channel:
            health(channel)

    async def _hold(self, flood):
        """Runs |flood|, counts the established connections, closes them."""
        writers = [w for w in await flood() if w is not None]
        for w in writers:
            w.close()
        for w in writers:
            try:
                await asyncio.wait_for(w.wait_closed(), 5)
            except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError):
                pass
        return len(writers)


class MutualTlsTest(unittest.TestCase, h.DecisionAsserts):
    """client_ca_file and allowed_client_sans: who may connect at all."""

    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-mtls-")
        cls.pki = Pki(cls.folder)
        cls.world = h.World(cls.folder)
        cls.token_a = cls.world.token_a()
        cfg = cls.world.config(tls=tls_config(cls.pki, client_ca=True, sans=[ENVOY_SAN, DNS_SAN.upper()]))
        cls.server = TlsServer(cls.folder, cfg, "mtls", cls.pki.credentials("envoy")).start()
        cfg = cls.world.config(tls=tls_config(cls.pki, client_ca=True))
        cls.any_san = TlsServer(cls.folder, cfg, "mtls-any", cls.pki.credentials("envoy")).start()

    @classmethod
    def tearDownClass(cls):
        for server in (cls.server, cls.any_san):
            code, _ = server.stop()
            if code != 0:
                raise AssertionError(f"tokengate exited {code}:\n{server.log_text()[-4000:]}")

    def check_with(self, server, client):
        with server.channel(self.pki.credentials(client)) as channel:
            return h.authz_stub(channel).Check(h.check_request(token=self.token_a, cluster="cluster-a"), timeout=5)

    def refused(self, server, client, why):
        before = server.log_text().count('"event":"tls_refused"')
        with self.assertRaises(grpc.RpcError, msg=f"client {client} must be refused") as caught:
            self.check_with(server, client)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)
        deadline = time.monotonic() + 5
        while server.log_text().count('"event":"tls_refused"') == before and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = [x for x in server.log_text().splitlines() if '"event":"tls_refused"' in x]
        self.assertGreater(len(lines), before)
        self.assertIn(why, lines[-1])

    def test_allowed_uri_san(self):
        self.assert_allowed(self.check_with(self.server, "envoy"), "cluster-a", "shop", "web")

    def test_allowed_dns_san_ignores_case(self):
        self.assert_allowed(self.check_with(self.server, "dns-client"), "cluster-a", "shop", "web")

    def test_no_client_certificate(self):
        self.refused(self.server, None, "did not return a certificate")

    def test_certificate_from_another_ca(self):
        self.refused(self.server, "rogue", "client certificate:")

    def test_san_not_allowed(self):
        self.refused(self.server, "other", "no SAN listed in tls.allowed_client_sans")

    def test_any_san_of_the_ca_without_the_list(self):
        self.assert_allowed(self.check_with(self.any_san, "other"), "cluster-a", "shop", "web")
        self.refused(self.any_san, "rogue", "client certificate:")
        self.refused(self.any_san, None, "did not return a certificate")


class TlsReloadTest(unittest.TestCase, h.DecisionAsserts):
    """SIGHUP rebuilds the TLS context with the rest of the config: new
    connections get the new certificate; a broken certificate refuses the
    whole reload and the last good one keeps serving; TLS cannot be turned
    off by a reload."""

    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-tls-reload-")
        cls.pki = Pki(cls.folder)
        cls.world = h.World(cls.folder)
        cls.config = cls.world.config(tls=tls_config(cls.pki))
        cls.server = TlsServer(cls.folder, cls.config, "tls-reload", cls.pki.credentials()).start()
        cls.token_a = cls.world.token_a()
        with open(cls.pki.path("broken.pem"), "w", encoding="ascii") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")

    @classmethod
    def tearDownClass(cls):
        code, _elapsed = cls.server.stop()
        if code != 0:
            raise AssertionError(f"tokengate exited {code}:\n{cls.server.log_text()[-4000:]}")

    def served_certificate(self):
        ctx = self.pki.ssl_context()
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.getpeercert(binary_form=True)

    def expected(self, name):
        pem = self.pki.read(f"{name}.pem").decode("ascii")
        return ssl.PEM_cert_to_DER_cert(pem)

    def reload_with(self, tls):
        cfg = dict(self.config, listen=self.server.target)
        if tls is None:
            cfg.pop("tls", None)
        else:
            cfg["tls"] = tls
        tmp = self.server.config_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        os.replace(tmp, self.server.config_path)
        count = self.server.log_text().count('"event":"config_reload"')
        self.server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = [json.loads(line) for line in self.server.log_text().splitlines()
                     if line.startswith("{") and '"event":"config_reload"' in line]
            if len(lines) > count:
                return lines[count]
            time.sleep(0.05)
        self.fail("no config_reload line after SIGHUP")

    def check_allowed(self):
        with self.server.channel() as channel:
            resp = h.authz_stub(channel).Check(h.check_request(token=self.token_a, cluster="cluster-a"), timeout=5)
        self.assert_allowed(resp, "cluster-a", "shop", "web")

    def test_reload_swaps_certificates_and_keeps_the_last_good(self):
        self.assertEqual(self.served_certificate(), self.expected("server"))
        event = self.reload_with(dict(tls_config(self.pki), cert_file="server2.pem", key_file="server2.key"))
        self.assertEqual(event["result"], "success", event)
        self.assertEqual(self.served_certificate(), self.expected("server2"))
        self.check_allowed()

        event = self.reload_with(dict(tls_config(self.pki), cert_file="broken.pem", key_file="server2.key"))
        self.assertEqual(event["result"], "failure", event)
        self.assertIn("tls", event["error"])
        self.assertEqual(self.served_certificate(), self.expected("server2"), "the last good certificate serves")

        event = self.reload_with(None)
        self.assertEqual(event["result"], "failure", event)
        self.assertIn("cannot be turned off", event["error"])
        self.assertEqual(self.served_certificate(), self.expected("server2"))
        self.check_allowed()


class TlsConfigTest(unittest.TestCase):
    """`tokengate check` loads the certificate, key and CA as `serve` does."""

    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-tls-cfg-")
        cls.pki = Pki(cls.folder)
        cls.world = h.World(cls.folder)

    def check(self, tls):
        path = os.path.join(self.folder, "check.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.world.config(tls=tls), f)
        return subprocess.run([h.tokengate_bin(), "check", "-c", path], capture_output=True, text=True)

    def assert_error(self, tls, *needles):
        out = self.check(tls)
        self.assertEqual(out.returncode, 2, out.stdout + out.stderr)
        for needle in needles:
            self.assertIn(needle, out.stderr)

    def test_valid(self):
        out = self.check(tls_config(self.pki, client_ca=True, sans=[ENVOY_SAN]))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(", mutual TLS", out.stdout)

    def test_key_not_matching_certificate(self):
        self.assert_error({"cert_file": "server.pem", "key_file": "envoy.key"}, "check.json: tls.key_file:",
                          "envoy.key", "does not match the certificate")

    def test_invalid_certificate(self):
        self.assert_error({"cert_file": "server.key", "key_file": "server.key"}, "check.json: tls.cert_file:",
                          "server.key: not a PEM certificate")

    def test_invalid_key(self):
        self.assert_error({"cert_file": "server.pem", "key_file": "server.pem"}, "tls.key_file:",
                          "not a PEM private key")

    def test_unreadable_files(self):
        self.assert_error({"cert_file": "nope.pem", "key_file": "server.key"}, "tls.cert_file:", "nope.pem",
                          "cannot open")
        self.assert_error(tls_config(self.pki) | {"client_ca_file": "server.key"}, "tls.client_ca_file:",
                          "no PEM certificate")

    def test_shapes(self):
        self.assert_error({"cert_file": "server.pem"}, "tls.key_file: is required")
        self.assert_error(tls_config(self.pki) | {"allowed_client_sans": [ENVOY_SAN]},
                          "tls.allowed_client_sans: needs tls.client_ca_file")
        self.assert_error(tls_config(self.pki, client_ca=True, sans=["not a name"]),
                          "tls.allowed_client_sans[0]: is neither a URI")
        self.assert_error(tls_config(self.pki) | {"ciphers": "ALL"}, "tls.ciphers: unknown key")


class HttpListenerTlsTest(unittest.TestCase):
    """The HTTP authorization listener with "tls": the same certificate and
    client checks as the gRPC listener, ALPN http/1.1 or none, never h2."""

    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-tls-http-")
        cls.pki = Pki(cls.folder)
        cls.world = h.World(cls.folder)
        cls.http_port = h.free_port()
        cfg = cls.world.config(tls=tls_config(cls.pki, client_ca=True, sans=[ENVOY_SAN]),
                               http_listen=f"127.0.0.1:{cls.http_port}", http_style="envoy")
        cls.server = TlsServer(cls.folder, cfg, "tls-http", cls.pki.credentials("envoy")).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.folder, ignore_errors=True)

    def exchange(self, ctx):
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
                sock.sendall(b"GET /clusters/cluster-a/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return data
                    data += chunk

    def test_http1_and_no_alpn_are_served(self):
        for alpn in (("http/1.1",), None, ("h2", "http/1.1")):
            out = self.exchange(self.pki.ssl_context(alpn=alpn, client="envoy"))
            self.assertTrue(out.startswith(b"HTTP/1.1 401 Unauthorized\r\n"), (alpn, out[:60]))
            self.assertIn(b"x-tokengate-reason: missing_token\r\n", out)

    def test_refused_handshakes(self):
        for ctx in (self.pki.ssl_context(alpn=("h2",), client="envoy"),  # h2 is the gRPC listener's
                    self.pki.ssl_context(alpn=("http/1.1",)),  # no client certificate
                    self.pki.ssl_context(alpn=("http/1.1",), client="other")):  # SAN not allowed
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                self.exchange(ctx)


if __name__ == "__main__":
    unittest.main()
