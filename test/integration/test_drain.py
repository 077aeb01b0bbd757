"""SIGTERM against the running server, with calls in flight.

A call is in flight when its HEADERS have reached the server and its message
has not: the client decides how long the drain lasts. Hand-made HTTP/2 frames
(headers encoded and decoded with python3-hpack) show the frames themselves:
the GOAWAY notice and the final GOAWAY with NO_ERROR, never a reset; every
call in flight gets its real answer; health asked on an in-flight stream says
NOT_SERVING; a stream opened after the final GOAWAY is not answered and a new
connection is refused; the process exits 0 soon after the last answer. The
same is then shown with grpcio's own client, and the drain's time bound with
a client that never finishes its call. /readyz answers 503 while the drain
lasts, /healthz 200."""

import http.client
import socket
import struct
import threading
import time
import unittest

import grpc
import hpack

import tg_harness as h

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
NO_ERROR, REFUSED_STREAM = 0, 7
LAST_STREAM_NOTICE = (1 << 31) - 1  # RFC 9113 6.8: the graceful shutdown notice
EXIT_BOUND = 5.0  # README: "exits 0 - within 5 s"
HOLD = 0.6  # seconds the in-flight calls are held after SIGTERM


def setUpModule():
    global FOLDER, WORLD
    FOLDER = h.new_folder("tg-drain-")
    WORLD = h.World(FOLDER)


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def grpc_message(message):
    data = message.SerializeToString()
    return struct.pack(">BI", 0, len(data)) + data


class Stream:
    def __init__(self):
        self.headers = None   # response headers, decoded
        self.trailers = None  # trailers, decoded
        self.data = b""
        self.ended = False
        self.reset = None     # RST_STREAM error code


class RawH2:
    """A client connection of hand-made frames: what it sends is exactly what
    the test says, what it receives is kept frame by frame."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.buf = b""
        self.block = b""  # header block awaiting CONTINUATION
        self.frames = []  # (type, flags, stream id) in arrival order
        self.streams = {}
        self.goaways = []  # (last stream id, error code)
        self.eof = False
        self.pings = 0
        self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0))

    def close(self):
        self.sock.close()

    def open_call(self, stream, path):
        """HEADERS of a gRPC call, without END_STREAM: the call is open."""
        block = self.encoder.encode([(":method", "POST"), (":scheme", "http"), (":path", path),
                                     (":authority", "tokengate"), ("content-type", "application/grpc"),
                                     ("te", "trailers")])
        self.streams[stream] = Stream()
        self.sock.sendall(frame(HEADERS, END_HEADERS, stream, block))

    def finish_call(self, stream, message):
        self.sock.sendall(frame(DATA, END_STREAM, stream, grpc_message(message)))

    def sync(self, timeout=5.0):
        """PING and wait for its ACK: the server has read everything before it."""
        want = self.pings + 1
        self.sock.sendall(frame(PING, 0, 0, b"tg-drain"))
        self.read_until(lambda: self.pings >= want, timeout)
        if self.pings < want:
            raise AssertionError("no PING ACK")

    def read_until(self, done, timeout):
        """Reads frames until done() is true, EOF or |timeout| seconds."""
        deadline = time.monotonic() + timeout
        while not done() and not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return
            except ConnectionResetError:
                chunk = b""
                self.frames.append(("TCP RST", 0, 0))
            if not chunk:
                self.eof = True
                return
            self.buf += chunk
            self._parse()

    def _parse(self):
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                return
            ftype, flags = self.buf[3], self.buf[4]
            stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = self.buf[9:9 + length]
            self.buf = self.buf[9 + length:]
            self.frames.append((ftype, flags, stream))
            self._on_frame(ftype, flags, stream, payload)

    def _on_frame(self, ftype, flags, stream, payload):
        if ftype == SETTINGS and not flags & ACK:
            self.sock.sendall(frame(SETTINGS, ACK, 0))
        elif ftype == PING and flags & ACK:
            self.pings += 1
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaways.append((last & 0x7FFFFFFF, code))
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                pad = payload[0] if flags & PADDED else 0
                payload = payload[1:] if flags & PADDED else payload
                payload = payload[5:] if flags & PRIORITY else payload
                payload = payload[:len(payload) - pad]
            self.block += payload
            if flags & END_HEADERS:
                fields = dict(self.decoder.decode(self.block))
                self.block = b""
                s = self.streams.setdefault(stream, Stream())
                if s.headers is None:
                    s.headers = fields
                else:
                    s.trailers = fields
        elif ftype == DATA:
            # No WINDOW_UPDATE: the answers fit the default window, and a
            # write after the server's last answer would meet a closed socket.
            self.streams.setdefault(stream, Stream()).data += payload
        elif ftype == RST_STREAM:
            self.streams.setdefault(stream, Stream()).reset = struct.unpack(">I", payload[:4])[0]
        if ftype in (HEADERS, DATA) and flags & END_STREAM:
            self.streams.setdefault(stream, Stream()).ended = True

    def message(self, stream, cls):
        """The one gRPC message the stream's DATA carried, parsed as |cls|."""
        data = self.streams[stream].data
        flag, length = struct.unpack(">BI", data[:5])
        if flag != 0 or len(data) != 5 + length:
            raise AssertionError(f"stream {stream}: DATA is not one uncompressed gRPC message: {data[:16]!r}")
        return cls.FromString(data[5:])


def stop_in_background(server):
    """SIGTERM now; the exit code and the seconds it took arrive in the
    returned dict once the process has ended (or been killed after 10 s)."""
    result = {}

    def run():
        result["code"], result["elapsed"] = server.stop(timeout=10.0)

    thread = threading.Thread(target=run)
    thread.start()
    result["thread"] = thread
    return result


def health_request(service=""):
    return h.stubs().health.HealthCheckRequest(service=service)


class DrainFramesTest(h.DecisionAsserts, unittest.TestCase):
    def test_calls_in_flight_get_their_answers_behind_goaway(self):
        server = h.Server(FOLDER, WORLD.config(), "drain-frames").start()
        self.addCleanup(server.kill)
        conn = RawH2(server.port)
        self.addCleanup(conn.close)
        calls = {
            1: (h.check_request(token=WORLD.token_a(), cluster="cluster-a", request_id="d1"), "ok"),
            3: (h.check_request(token=WORLD.token_a(), cluster="cluster-b", request_id="d3"), "cluster_mismatch"),
            5: (h.check_request(token=WORLD.token_a(exp_in=-600, iat_in=-1200, nbf_in=-1200),
                                cluster="cluster-a", request_id="d5"), "expired"),
            7: (h.check_request(cluster="cluster-b", request_id="d7"), "missing_token"),
            9: (h.check_request(token=WORLD.token_b(), cluster="cluster-b", source="192.0.2.1",
                                request_id="d9"), "ok"),
        }
        health_stream = 11
        for stream in calls:
            conn.open_call(stream, h.CHECK_METHOD)
        conn.open_call(health_stream, h.HEALTH_METHOD)
        conn.sync()
        self.assertEqual(conn.goaways, [], "GOAWAY before SIGTERM")
        decided_before = len(server.decisions())

        stop = stop_in_background(server)
        self.addCleanup(stop["thread"].join, 15)
        # The notice: GOAWAY naming the largest stream id, NO_ERROR.
        conn.read_until(lambda: conn.goaways, 3.0)
        self.assertEqual(conn.goaways[:1], [(LAST_STREAM_NOTICE, NO_ERROR)], conn.frames)
        # Health, asked on a stream opened before the drain, says NOT_SERVING.
        conn.finish_call(health_stream, health_request())
        conn.read_until(lambda: conn.streams[health_stream].ended, 3.0)
        self.assert_ok_call(conn, health_stream)
        health = conn.message(health_stream, h.stubs().health.HealthCheckResponse)
        self.assertEqual(health.status, h.stubs().health.HealthCheckResponse.NOT_SERVING)
        # The final GOAWAY names the last stream the server took, still NO_ERROR.
        conn.read_until(lambda: len(conn.goaways) >= 2, 3.0)
        self.assertEqual(conn.goaways, [(LAST_STREAM_NOTICE, NO_ERROR), (health_stream, NO_ERROR)])
        # A stream opened after it is not served; a new connection is refused.
        conn.open_call(13, h.CHECK_METHOD)
        conn.finish_call(13, calls[1][0])
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()

        # The drain lasts as long as the calls are held, the connection stays up.
        conn.read_until(lambda: False, HOLD)
        self.assertFalse(conn.eof, "the connection was closed with calls in flight")
        self.assertNotIn("code", stop, "the server exited with calls in flight")
        self.assertEqual(len(server.decisions()), decided_before)
        for stream, (req, _) in calls.items():
            conn.finish_call(stream, req)
        conn.read_until(lambda: all(conn.streams[s].ended for s in calls) or any(
            conn.streams[s].reset is not None for s in calls), 5.0)
        for stream, (_, reason) in calls.items():
            self.assert_ok_call(conn, stream)
            resp = conn.message(stream, h.stubs().ext.CheckResponse)
            if reason == "ok":
                want = {1: ("cluster-a", "shop", "web"), 9: ("cluster-b", "shop", "checkout")}[stream]
                self.assert_allowed(resp, *want)
            else:
                self.assert_denied(resp, reason)
        stop["thread"].join(10)
        self.assertEqual(stop.get("code"), 0, server.log_text()[-4000:])
        self.assertLessEqual(stop["elapsed"], HOLD + 2.0, "the server lingered after the last answer")
        conn.read_until(lambda: False, 1.0)
        self.assertTrue(conn.eof, "the connection stayed open after the server exited")
        stream13 = conn.streams[13]
        self.assertIsNone(stream13.headers, "a stream opened after the final GOAWAY was answered")
        self.assertIn(stream13.reset, (None, REFUSED_STREAM))
        self.assertNotIn(RST_STREAM, [f[0] for f in conn.frames if f[2] != 13], conn.frames)
        ids = [d.get("request_id") for d in server.decisions()[decided_before:]]
        self.assertEqual(sorted(ids), sorted(f"it-d{s}" for s in calls), "decisions made during the drain")

    def assert_ok_call(self, conn, stream):
        """The stream ended normally: 200, one message, grpc-status 0."""
        s = conn.streams[stream]
        self.assertIsNone(s.reset, f"stream {stream} was reset ({s.reset}): {conn.frames}")
        self.assertTrue(s.ended, f"stream {stream} got no complete answer: {conn.frames}")
        self.assertEqual((s.headers or {}).get(":status"), "200", s.headers)
        self.assertEqual((s.trailers or {}).get("grpc-status"), "0", s.trailers)


class DrainGrpcTest(h.DecisionAsserts, unittest.TestCase):
    """The same with grpcio's client: calls whose message the client holds
    until after SIGTERM are answered, new calls are refused."""

    def test_grpc_calls_in_flight_are_answered(self):
        server = h.Server(FOLDER, WORLD.config(), "drain-grpc").start()
        self.addCleanup(server.kill)
        s = h.stubs()
        release = threading.Event()

        def held(message):
            release.wait(10)
            yield message

        cases = [
            (h.check_request(token=WORLD.token_a(), cluster="cluster-a"), ("cluster-a", "shop", "web")),
            (h.check_request(token=WORLD.token_b(), cluster="cluster-a"), "cluster_mismatch"),
            (h.check_request(token=WORLD.token_c(), cluster="cluster-c"), ("cluster-c", "batch", "reporter", True)),
            (h.check_request(token="x.y.z", cluster="cluster-c"), "malformed_token"),
        ] * 3
        with server.channel() as channel:
            stub = h.authz_stub(channel)
            self.assert_allowed(stub.Check(cases[0][0], timeout=5), *cases[0][1])  # connected
            check = channel.stream_unary(h.CHECK_METHOD, request_serializer=s.ext.CheckRequest.SerializeToString,
                                         response_deserializer=s.ext.CheckResponse.FromString)
            health = channel.stream_unary(h.HEALTH_METHOD,
                                          request_serializer=s.health.HealthCheckRequest.SerializeToString,
                                          response_deserializer=s.health.HealthCheckResponse.FromString)
            try:
                futures = [check.future(held(req), timeout=20) for req, _ in cases]
                health_future = health.future(held(health_request()), timeout=20)
                time.sleep(0.5)  # the calls' HEADERS reach the server
                stop = stop_in_background(server)
                self.addCleanup(stop["thread"].join, 15)
                time.sleep(0.3)
                with server.channel() as late:
                    with self.assertRaises(grpc.RpcError) as refused:
                        h.authz_stub(late).Check(cases[0][0], timeout=2)
                self.assertEqual(refused.exception.code(), grpc.StatusCode.UNAVAILABLE)
                self.assertNotIn("code", stop, "the server exited with calls in flight")
            finally:
                release.set()
            answers = [f.result() for f in futures]
            self.assertEqual(health_future.result().status, s.health.HealthCheckResponse.NOT_SERVING)
        for (_, want), resp in zip(cases, answers):
            if isinstance(want, tuple):
                self.assert_allowed(resp, *want)
            else:
                self.assert_denied(resp, want)
        stop["thread"].join(10)
        self.assertEqual(stop.get("code"), 0, server.log_text()[-4000:])
        self.assertLessEqual(stop["elapsed"], EXIT_BOUND)


def admin_get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class DrainReadyzTest(unittest.TestCase):
    """While the drain lasts, /readyz answers 503 (so the endpoints of a
    Kubernetes Service drop the pod) and /healthz still 200 (so the pod is
    not restarted mid-drain)."""

    def test_readyz_is_503_while_draining(self):
        admin_port = h.free_port()
        server = h.Server(FOLDER, WORLD.config(admin_listen=f"127.0.0.1:{admin_port}"), "drain-readyz").start()
        self.addCleanup(server.kill)
        self.assertEqual(admin_get(admin_port, "/readyz"), (200, b"ready\n"))
        conn = RawH2(server.port)
        self.addCleanup(conn.close)
        conn.open_call(1, h.CHECK_METHOD)
        conn.sync()
        stop = stop_in_background(server)
        self.addCleanup(stop["thread"].join, 15)
        conn.read_until(lambda: conn.goaways, 3.0)
        self.assertTrue(conn.goaways, "no GOAWAY notice after SIGTERM")
        self.assertEqual(admin_get(admin_port, "/readyz"), (503, b"not ready: draining\n"))
        self.assertEqual(admin_get(admin_port, "/healthz")[0], 200)
        self.assertNotIn("code", stop, "the server exited with a call in flight")
        conn.finish_call(1, h.check_request(token=WORLD.token_a(), cluster="cluster-a"))
        conn.read_until(lambda: conn.streams[1].ended, 5.0)
        self.assertTrue(conn.streams[1].ended, conn.frames)
        stop["thread"].join(10)
        self.assertEqual(stop.get("code"), 0, server.log_text()[-4000:])


class DrainBoundTest(unittest.TestCase):
    def test_a_call_never_finished_does_not_hold_the_exit(self):
        # request_timeout_seconds is far away: only the drain's own bound ends it.
        server = h.Server(FOLDER, WORLD.config(request_timeout_seconds=60), "drain-bound").start()
        self.addCleanup(server.kill)
        conn = RawH2(server.port)
        self.addCleanup(conn.close)
        conn.open_call(1, h.CHECK_METHOD)
        conn.sync()
        code, elapsed = server.stop(timeout=EXIT_BOUND + 3.0)
        self.assertEqual(code, 0, server.log_text()[-4000:])
        self.assertLessEqual(elapsed, EXIT_BOUND)
        self.assertGreaterEqual(elapsed, 1.0, "the server did not wait for the call in flight")
        conn.read_until(lambda: False, 1.0)
        self.assertIn((LAST_STREAM_NOTICE, NO_ERROR), conn.goaways)


if __name__ == "__main__":
    unittest.main()
