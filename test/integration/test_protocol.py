"""The gRPC side of the real binary: health, malformed input, unknown
methods, deadlines, concurrent load, SIGTERM under load and the decision
log."""

import collections
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import unittest

import grpc

import tg_harness as h

NGHTTP = shutil.which("nghttp")


def identity(data):
    return data


class Expect:
    """What one request must produce: allow for (cluster, ns, sa) or deny
    with a reason."""

    def __init__(self, reason, cluster=None, namespace=None, service_account=None):
        self.reason = reason
        self.cluster = cluster
        self.namespace = namespace
        self.service_account = service_account

    def problem(self, resp):
        """None when |resp| is right, else what is wrong (thread-safe, no
        unittest calls)."""
        if self.reason == "ok":
            if resp.status.code != 0 or resp.WhichOneof("http_response") != "ok_response":
                return f"expected allow, got {resp.status.code} {resp.status.message!r}"
            headers = h.header_dict(resp.ok_response.headers)
            want = {"x-tokengate-cluster": self.cluster, "x-tokengate-namespace": self.namespace,
                    "x-tokengate-service-account": self.service_account,
                    "x-tokengate-subject": f"system:serviceaccount:{self.namespace}:{self.service_account}"}
            if headers != want:
                return f"allow headers {headers} != {want}"
            return None
        code = h.GRPC_UNAUTHENTICATED if self.reason in h.UNAUTHENTICATED_REASONS else h.GRPC_PERMISSION_DENIED
        if resp.status.code != code or not resp.status.message.startswith(self.reason + ": "):
            return f"expected {self.reason}, got {resp.status.code} {resp.status.message!r}"
        if resp.WhichOneof("http_response") != "denied_response":
            return "deny without denied_response"
        if h.header_dict(resp.denied_response.headers).get("x-tokengate-reason") != self.reason:
            return "x-tokengate-reason does not match"
        return None


def setUpModule():
    global FOLDER, WORLD, SERVER, CASES, TOKENS
    FOLDER = h.new_folder("tg-protocol-")
    WORLD = h.World(FOLDER)
    SERVER = h.Server(FOLDER, WORLD.config(), "protocol").start()
    allow_a = WORLD.token_a()
    allow_b = WORLD.token_b()
    expired = WORLD.token_a(exp_in=-3600, iat_in=-7200, nbf_in=-7200)
    TOKENS = [allow_a, allow_b, expired]
    CASES = [
        (h.check_request(token=allow_a, cluster="cluster-a"), Expect("ok", "cluster-a", "shop", "web")),
        (h.check_request(token=allow_a, cluster="cluster-b"), Expect("cluster_mismatch")),
        (h.check_request(token=allow_b, host="api.cluster-b.test", raw=True),
         Expect("ok", "cluster-b", "shop", "checkout")),
        (h.check_request(cluster="cluster-a"), Expect("missing_token")),
        (h.check_request(token=expired, cluster="cluster-a"), Expect("expired")),
        (h.check_request(token=allow_a, cluster="cluster-a", source="192.0.2.1"), Expect("source_not_allowed")),
        (h.check_request(token=allow_b, cluster="cluster-b", path="/payments/1"),
         Expect("ok", "cluster-b", "shop", "checkout")),
        (h.check_request(token=allow_a, cluster="nope"), Expect("unknown_cluster")),
    ]


def tearDownModule():
    code, elapsed = SERVER.stop()
    log = SERVER.log_text()
    if code != 0 or elapsed > 5.0:
        raise AssertionError(f"tokengate exited {code} after {elapsed:.1f}s on SIGTERM:\n{log[-4000:]}")
    for token in TOKENS:
        if token in log or token.split(".")[2] in log:
            raise AssertionError("a token (or its signature) appears in the server's stderr")


def framed(message):
    data = message.SerializeToString()
    return struct.pack(">BI", 0, len(data)) + data


class HealthTest(unittest.TestCase):
    def health(self, service):
        s = h.stubs()
        with SERVER.channel() as channel:
            call = channel.unary_unary(h.HEALTH_METHOD,
                                       request_serializer=s.health.HealthCheckRequest.SerializeToString,
                                       response_deserializer=s.health.HealthCheckResponse.FromString)
            return call(s.health.HealthCheckRequest(service=service), timeout=5)

    def test_whole_server_serving(self):
        self.assertEqual(self.health("").status, h.stubs().health.HealthCheckResponse.SERVING)

    def test_authorization_service_serving(self):
        self.assertEqual(self.health(h.AUTHZ_SERVICE).status, h.stubs().health.HealthCheckResponse.SERVING)

    def test_unknown_service_not_found(self):
        with self.assertRaises(grpc.RpcError) as err:
            self.health("no.such.Service")
        self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)


class ErrorsTest(unittest.TestCase):
    def raw_call(self, method, payload):
        with SERVER.channel() as channel:
            call = channel.unary_unary(method, request_serializer=identity, response_deserializer=identity)
            return call(payload, timeout=5)

    def test_malformed_protobuf_is_invalid_argument(self):
        before = len(SERVER.decisions())
        # Field 1 (attributes) claims 5 bytes but only 3 follow; then a bare wire type 7.
        for payload in (b"\x0a\x05abc", b"\x0f", b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"):
            with self.subTest(payload=payload):
                with self.assertRaises(grpc.RpcError) as err:
                    self.raw_call(h.CHECK_METHOD, payload)
                self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        time.sleep(0.2)
        self.assertEqual(len(SERVER.decisions()), before, "a malformed request produced a decision")

    def test_empty_check_request_denies(self):
        # An empty message is valid protobuf: a decision, not an RPC error.
        reply = self.raw_call(h.CHECK_METHOD, b"")
        resp = h.stubs().ext.CheckResponse.FromString(reply)
        self.assertNotEqual(resp.status.code, 0)
        self.assertEqual(resp.WhichOneof("http_response"), "denied_response")

    def test_unknown_method_unimplemented(self):
        for method in ("/envoy.service.auth.v3.Authorization/Nope", "/no.Such/Check",
                       "/envoy.service.auth.v2.Authorization/Check"):
            with self.subTest(method=method):
                with self.assertRaises(grpc.RpcError) as err:
                    self.raw_call(method, b"")
                self.assertEqual(err.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


class DeadlineTest(unittest.TestCase):
    """An expired grpc-timeout must be answered DEADLINE_EXCEEDED without a
    decision. nghttp sends the header verbatim, so the status seen is the
    server's own; a control request with a long timeout proves the method
    can tell the two apart."""

    def nghttp(self, timeout_header):
        body = os.path.join(FOLDER, "deadline.bin")
        with open(body, "wb") as f:
            f.write(framed(CASES[0][0]))
        cmd = [NGHTTP, "-v", "-t", "10", "-H", "content-type: application/grpc", "-H", "te: trailers",
               "-H", f"grpc-timeout: {timeout_header}", "-d", body,
               f"http://{SERVER.target}{h.CHECK_METHOD}"]
        out = subprocess.run(cmd, capture_output=True, timeout=20).stdout.decode("utf-8", "replace")
        statuses = re.findall(r"recv \(stream_id=\d+\) grpc-status: (\d+)", out)
        self.assertEqual(len(statuses), 1, out)
        return int(statuses[0])

    def test_expired_grpc_timeout(self):
        before = len(SERVER.decisions())
        self.assertEqual(self.nghttp("10S"), 0)
        self.assertEqual(len(SERVER.wait_decisions(before + 1)), before + 1)
        self.assertEqual(self.nghttp("1n"), grpc.StatusCode.DEADLINE_EXCEEDED.value[0])
        time.sleep(0.3)
        self.assertEqual(len(SERVER.decisions()), before + 1, "a decision was made after the deadline")

    def test_deadline_passing_while_body_is_late(self):
        # Headers carry grpc-timeout 50m; the message arrives 300 ms later.
        # (grpc's own clients cancel at their deadline, and round short
        # timeouts up to 1 ms, so only raw frames can show what the server
        # does with a deadline that passed before it could decide.)
        before = len(SERVER.decisions())
        frames = raw_h2_call(SERVER.port, "10S", framed(CASES[0][0]), delay=0.3)
        self.assertIn("DATA", [f for f, _ in frames], "control call got no CheckResponse")
        self.assertEqual(len(SERVER.wait_decisions(before + 1)), before + 1)
        frames = raw_h2_call(SERVER.port, "50m", framed(CASES[0][0]), delay=0.3)
        self.assertNotIn("DATA", [f for f, _ in frames], "a CheckResponse was sent after the deadline")
        self.assertEqual(frames[-1], ("HEADERS", True), frames)
        time.sleep(0.3)
        self.assertEqual(len(SERVER.decisions()), before + 1, "a decision was made after the deadline")


class FramingTest(unittest.TestCase):
    """What the server accepts as gRPC: the content-type and the message
    framing. nghttp sends exactly the bytes and headers given."""

    def nghttp(self, body, content_type="application/grpc"):
        path = os.path.join(FOLDER, "framing.bin")
        with open(path, "wb") as f:
            f.write(body)
        cmd = [NGHTTP, "-v", "-t", "10", "-H", f"content-type: {content_type}", "-H", "te: trailers",
               "-d", path, f"http://{SERVER.target}{h.CHECK_METHOD}"]
        out = subprocess.run(cmd, capture_output=True, timeout=20).stdout.decode("utf-8", "replace")
        found = {}
        for name in (":status", "grpc-status", "grpc-message"):
            found[name] = re.findall(r"recv \(stream_id=\d+\) " + re.escape(name) + r": (.*)", out)
        return found, out

    def test_grpc_content_types_are_served(self):
        before = len(SERVER.decisions())
        for content_type in ("application/grpc", "application/grpc+proto", "application/grpc;charset=utf-8"):
            with self.subTest(content_type=content_type):
                found, out = self.nghttp(framed(CASES[0][0]), content_type)
                self.assertEqual(found[":status"], ["200"], out)
                self.assertEqual(found["grpc-status"], ["0"], out)
        self.assertEqual(len(SERVER.wait_decisions(before + 3)), before + 3)

    def test_other_content_types_are_refused_415(self):
        before = len(SERVER.decisions())
        for content_type in ("application/grpcXYZ", "application/grpc-web", "application/json"):
            with self.subTest(content_type=content_type):
                found, out = self.nghttp(framed(CASES[0][0]), content_type)
                self.assertEqual(found[":status"], ["415"], out)
                self.assertEqual(found["grpc-status"], [], out)
        time.sleep(0.2)
        self.assertEqual(len(SERVER.decisions()), before, "a refused content-type was decided")

    def test_truncated_message_is_reported_as_truncated(self):
        before = len(SERVER.decisions())
        whole = framed(CASES[0][0])
        for body, message in (
                (whole[:3], "truncated message: the stream ended after 3 of the 5 prefix bytes"),
                (whole[:5], f"truncated message: the stream ended after 0 of {len(whole) - 5} message bytes"),
                (whole[:-1], f"truncated message: the stream ended after {len(whole) - 6} of {len(whole) - 5} "
                             "message bytes")):
            with self.subTest(length=len(body)):
                found, out = self.nghttp(body)
                self.assertEqual(found["grpc-status"], [str(grpc.StatusCode.INVALID_ARGUMENT.value[0])], out)
                self.assertEqual(found["grpc-message"], [message], out)
        found, out = self.nghttp(b"")
        self.assertEqual(found["grpc-message"], ["unary call without a request message"], out)
        time.sleep(0.2)
        self.assertEqual(len(SERVER.decisions()), before, "a truncated request was decided")


def _frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def _literal(name, value):
    # HPACK literal header field without indexing, new name, no Huffman.
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def raw_h2_call(port, grpc_timeout, body, delay):
    """One Check over a hand-made h2c connection: HEADERS, |delay| seconds of
    silence, then DATA with END_STREAM. Returns the frames received on the
    stream as (type name, END_STREAM) until it ends."""
    names = {0: "DATA", 1: "HEADERS", 3: "RST_STREAM"}
    block = b"".join(_literal(n, v) for n, v in (
        (":method", "POST"), (":scheme", "http"), (":path", h.CHECK_METHOD), (":authority", "tokengate"),
        ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", grpc_timeout)))
    got = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0, b"") + _frame(1, 0x4, 1, block))
        time.sleep(delay)
        sock.sendall(_frame(0, 0x1, 1, body))
        buf = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                length = int.from_bytes(buf[:3], "big")
                ftype, flags = buf[3], buf[4]
                stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                buf = buf[9 + length:]
                if ftype == 4 and not flags & 0x1:
                    sock.sendall(_frame(4, 0x1, 0, b""))  # SETTINGS ACK
                if stream != 1:
                    continue
                got.append((names.get(ftype, str(ftype)), bool(flags & 0x1)))
                if flags & 0x1 or ftype == 3:
                    return got
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    return got


def _read_frames(sock, stop, timeout, ack_settings=True):
    """Frames received on |sock| as (type, flags, stream id) until
    stop(frame) is true, EOF or |timeout| s. Returns (frames, saw_eof)."""
    frames, buf = [], b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            length = int.from_bytes(buf[:3], "big")
            frame = (buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF)
            buf = buf[9 + length:]
            if ack_settings and frame[0] == 4 and not frame[1] & 0x1:
                sock.sendall(_frame(4, 0x1, 0, b""))
            frames.append(frame)
            if stop(frame):
                return frames, False
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            return frames, True
        buf += chunk
    return frames, False


class TimeoutsTest(unittest.TestCase):
    """idle_timeout_seconds and request_timeout_seconds, both at 1 s on a
    server of their own."""

    @classmethod
    def setUpClass(cls):
        cls.server = h.Server(FOLDER, WORLD.config(idle_timeout_seconds=1, request_timeout_seconds=1),
                              "timeouts").start()

    @classmethod
    def tearDownClass(cls):
        code, _ = cls.server.stop()
        if code != 0:
            raise AssertionError(f"tokengate exited {code}:\n{cls.server.log_text()[-4000:]}")

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        self.addCleanup(sock.close)
        return sock

    def test_idle_connection_is_closed(self):
        sock = self.connect()
        start = time.monotonic()
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0, b""))
        frames, eof = _read_frames(sock, lambda f: False, 4.0, ack_settings=False)
        elapsed = time.monotonic() - start
        self.assertTrue(eof, f"connection still open after {elapsed:.1f}s: {frames}")
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLessEqual(elapsed, 3.0)
        self.assertIn(7, [f[0] for f in frames], "closed without GOAWAY")

    def test_busy_channel_is_not_disturbed(self):
        # The calls alone would pass across a reconnect: the channel's states
        # show the connection itself stayed up.
        errors, calls, states = [], 0, []
        with self.server.channel() as channel:
            channel.subscribe(states.append, try_to_connect=True)
            stub = h.authz_stub(channel)
            end = time.monotonic() + 3.0
            while time.monotonic() < end:
                try:
                    resp = stub.Check(CASES[0][0], timeout=5)
                    problem = CASES[0][1].problem(resp)
                    if problem:
                        errors.append(problem)
                except grpc.RpcError as err:
                    errors.append(f"{err.code()} {err.details()}")
                calls += 1
                time.sleep(0.3)
            channel.unsubscribe(states.append)
        self.assertEqual(errors, [])
        ready = states.index(grpc.ChannelConnectivity.READY)
        self.assertEqual(states[ready:], [grpc.ChannelConnectivity.READY], states)
        self.assertGreaterEqual(calls, 8)

    def stalled_headers(self, sock):
        block = b"".join(_literal(n, v) for n, v in (
            (":method", "POST"), (":scheme", "http"), (":path", h.CHECK_METHOD), (":authority", "tokengate"),
            ("content-type", "application/grpc"), ("te", "trailers")))
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0, b"") + _frame(1, 0x4, 1, block))

    def test_incomplete_request_is_answered_trailers_only(self):
        before = len(self.server.decisions())
        sock = self.connect()
        start = time.monotonic()
        self.stalled_headers(sock)
        frames, _ = _read_frames(sock, lambda f: f[0] == 3 and f[2] == 1, 4.0)
        elapsed = time.monotonic() - start
        on_stream = [(f[0], bool(f[1] & 0x1)) for f in frames if f[2] == 1]
        # Trailers-only: one HEADERS with END_STREAM, no DATA, then RST_STREAM.
        self.assertEqual(on_stream, [(1, True), (3, False)], frames)
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLessEqual(elapsed, 3.0)
        time.sleep(0.3)
        self.assertEqual(len(self.server.decisions()), before, "a decision was made for an incomplete request")

    def test_incomplete_request_status_is_deadline_exceeded(self):
        # A client stream that never sends its message: the status and
        # message seen are the server's (the call has no client deadline).
        before = len(self.server.decisions())
        release = threading.Event()

        def nothing():
            release.wait(10)
            return
            yield

        with self.server.channel() as channel:
            call = channel.stream_unary(h.CHECK_METHOD, request_serializer=identity,
                                        response_deserializer=identity)
            start = time.monotonic()
            try:
                with self.assertRaises(grpc.RpcError) as err:
                    call(nothing())
            finally:
                release.set()
        self.assertLessEqual(time.monotonic() - start, 3.0)
        self.assertEqual(err.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertEqual(err.exception.details(), "request not complete in time")
        time.sleep(0.3)
        self.assertEqual(len(self.server.decisions()), before, "a decision was made for an incomplete request")


def run_load(target, calls_per_channel, channels, batch, outcomes, stop=None):
    """|channels| threads, each with its own channel, sending CASES round
    robin in batches of |batch| concurrent futures. Appends (expect, resp or
    RpcError) to |outcomes| (a list; append is atomic)."""

    def worker(index):
        with grpc.insecure_channel(target) as channel:
            stub = h.authz_stub(channel)
            sent = 0
            while sent < calls_per_channel and not (stop and stop.is_set()):
                futures = []
                for _ in range(min(batch, calls_per_channel - sent)):
                    req, expect = CASES[(index + sent) % len(CASES)]
                    futures.append((expect, stub.Check.future(req, timeout=20)))
                    sent += 1
                for expect, future in futures:
                    try:
                        outcomes.append((expect, future.result()))
                    except grpc.RpcError as err:
                        outcomes.append((expect, err))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(channels)]
    for t in threads:
        t.start()
    return threads


class LoadTest(unittest.TestCase):
    def test_concurrent_channels_get_right_answers(self):
        channels, per_channel = 8, 200
        before = SERVER.decisions()
        outcomes = []
        for t in run_load(SERVER.target, per_channel, channels, 10, outcomes):
            t.join()
        self.assertEqual(len(outcomes), channels * per_channel)
        problems = []
        for expect, result in outcomes:
            if isinstance(result, grpc.RpcError):
                problems.append(f"RPC error {result.code()} {result.details()}")
            else:
                problem = expect.problem(result)
                if problem:
                    problems.append(problem)
        self.assertEqual(problems[:5], [])
        # One decision log line per call, with the reasons the answers had.
        lines = SERVER.wait_decisions(len(before) + len(outcomes))[len(before):]
        self.assertEqual(len(lines), len(outcomes))
        want = collections.Counter(expect.reason for expect, _ in outcomes)
        got = collections.Counter(line["reason"] for line in lines)
        self.assertEqual(got, want)
        self.assertEqual(sum(1 for line in lines if line["decision"] == "allow"), want["ok"])

    def test_sigterm_during_load(self):
        server = h.Server(FOLDER, WORLD.config(), "sigterm").start()
        try:
            outcomes = []
            stop = threading.Event()
            threads = run_load(server.target, 100000, 4, 8, outcomes, stop)
            deadline = time.monotonic() + 30
            while len(outcomes) < 100 and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertGreaterEqual(len(outcomes), 100, "load never got going")
            code, elapsed = server.stop(timeout=5.0)
            # Keep calling a little after the exit: those must fail UNAVAILABLE.
            time.sleep(0.3)
            stop.set()
            for t in threads:
                t.join(30)
        finally:
            server.kill()
        self.assertEqual(code, 0, server.log_text()[-4000:])
        self.assertLessEqual(elapsed, 5.0)
        bad = []
        answered = 0
        unavailable = 0
        for expect, result in outcomes:
            if isinstance(result, grpc.RpcError):
                if result.code() == grpc.StatusCode.UNAVAILABLE:
                    unavailable += 1
                else:
                    bad.append(f"{result.code()} {result.details()}")
            else:
                answered += 1
                problem = expect.problem(result)
                if problem:
                    bad.append(problem)
        self.assertEqual(bad[:5], [])
        self.assertGreater(answered, 0)
        self.assertGreater(unavailable, 0, "no call was refused after the server exited")


class DecisionLogTest(unittest.TestCase):
    def test_one_json_line_per_check(self):
        before = len(SERVER.decisions())
        with SERVER.channel() as channel:
            stub = h.authz_stub(channel)
            expected = []
            for req, expect in CASES:
                stub.Check(req, timeout=10)
                expected.append(expect.reason)
        lines = SERVER.wait_decisions(before + len(CASES))[before:]
        self.assertEqual([line["reason"] for line in lines], expected)
        for line, reason in zip(lines, expected):
            self.assertEqual(line["decision"], "allow" if reason == "ok" else "deny")


if __name__ == "__main__":
    unittest.main()
