"""Memory and allocator figures of the benchmark (issue 13), deterministic on
a shared machine: RSS growth per cached token, heap calls per cached Check,
and a 100,000-entry cache under churn. bench.py prints them beside the rate
figures; `test/bench/run.sh --churn` prints the churn figures alone.

Tokens are shaped like kube-apiserver's projected tokens (kubernetes.io with
namespace, pod, node and service account, each with a uid, warnafter, jti),
signed with ES256 in this process (python3-cryptography) so tens of thousands
of distinct ones cost seconds."""

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import tg_harness as h  # noqa: E402

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, utils  # noqa: E402


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class ProjectedTokens:
    """Distinct ES256 projected-volume tokens signed with |key| (an h.Key of
    type p256), for issuer |iss| and audience |aud|."""

    def __init__(self, key, iss, aud):
        with open(key.private, "rb") as f:
            self.priv = serialization.load_pem_private_key(f.read(), password=None)
        self.header = b64url(json.dumps({"alg": "ES256", "kid": key.kid}, separators=(",", ":")).encode())
        self.iss, self.aud = iss, aud

    def token(self, i, exp_in=3600):
        now = int(time.time())
        ns, sa, pod = "payments", "billing", f"billing-7d9f8c6b5-{i:06d}"
        claims = {
            "aud": [self.aud], "exp": now + exp_in, "iat": now, "iss": self.iss, "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": ns,
                "node": {"name": f"ip-10-1-{i % 250}-{i % 200}.eu-west-1.compute.internal",
                         "uid": str(uuid.uuid4())},
                "pod": {"name": pod, "uid": str(uuid.uuid4())},
                "serviceaccount": {"name": sa, "uid": str(uuid.uuid4())},
                "warnafter": now + exp_in - 600},
            "nbf": now, "sub": f"system:serviceaccount:{ns}:{sa}"}
        payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{self.header}.{payload}".encode()
        der = self.priv.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = utils.decode_dss_signature(der)
        return f"{self.header}.{payload}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def send_checks(port, tokens, cluster, source, in_flight=64):
    """Sends one Check per token over one channel, |in_flight| at a time;
    returns how many were allowed (all must be: a denial is not cached)."""
    import grpc
    stubs = h.stubs()
    allowed = 0
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = stubs.ext_grpc.AuthorizationStub(channel)
        pending = []
        for token in tokens:
            pending.append(stub.Check.future(h.check_request(token=token, cluster=cluster, source=source),
                                             timeout=30))
            if len(pending) >= in_flight:
                allowed += sum(1 for p in pending if p.result().status.code == 0)
                pending = []
        allowed += sum(1 for p in pending if p.result().status.code == 0)
    return allowed


class HeapCounter:
    """Reads tg_malloc_count's totals from a server started with it preloaded."""

    def __init__(self, proc, path):
        self.proc, self.path = proc, path

    def read(self):
        if os.path.exists(self.path):
            os.remove(self.path)
        self.proc.send_signal(signal.SIGUSR2)
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                with open(self.path) as f:
                    text = f.read()
                if text.endswith("\n"):
                    fields = text.split()
                    return int(fields[1]), int(fields[3])
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        raise RuntimeError("tg_malloc_count did not report (is TG_MALLOC_COUNT set to the built library?)")


def entry_bytes(folder, start_server, tokens, cluster, source, count=10000):
    """RSS growth per cached token: a server with a cache larger than |count|
    answers one token (cache, arenas and connection warm), then |count|
    distinct ones; the RSS grown over them, divided by |count|."""
    server = start_server("entries", {"token_cache": {"size": count * 2}})
    try:
        send_checks(server.port, [tokens.token(10**6 + i) for i in range(64)], cluster, source)
        batch = [tokens.token(i) for i in range(count)]
        before = rss_kib(server.proc.pid)
        allowed = send_checks(server.port, batch, cluster, source)
        after = rss_kib(server.proc.pid)
    finally:
        server.stop()
    if allowed != count:
        raise SystemExit(f"entry figure: only {allowed} of {count} distinct tokens were allowed")
    return (after - before) * 1024 / count, before, after


def heap_calls_per_check(port, counter, h2load, body, requests, expect_data):
    """Heap calls per cached Check, by tg_malloc_count: after a warm-up of the
    same shape (16 connections x 32 streams), one run of |requests| / 2 and
    one of |requests| Checks; the difference of their counts over the
    difference of their sizes is the per-request figure (what h2load's 16
    connections cost to set up and tear down cancels out). Returns
    (mallocs per request, frees per request, mallocs of the larger run)."""
    h2load(port, body, 20000, 16, 32)
    counts = []
    for n in (requests // 2, requests):
        a0, f0 = counter.read()
        res = h2load(port, body, n, 16, 32)
        a1, f1 = counter.read()
        if res["succeeded"] != n or res["data_bytes"] != expect_data * n:
            raise SystemExit("heap-call run: wrong answers\n" + res["output"])
        counts.append((a1 - a0, f1 - f0))
    extra = requests - requests // 2
    return ((counts[1][0] - counts[0][0]) / extra, (counts[1][1] - counts[0][1]) / extra, counts[1][0])


def percentiles_ms(durations_us):
    """p50 and p99 of |durations_us| in ms (NaN when empty)."""
    if not durations_us:
        return float("nan"), float("nan")
    ordered = sorted(durations_us)
    return ordered[len(ordered) // 2] / 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000


# The cached load beside the churn: 32 connections, one stream each, paced
# at 1/32 of the rate (one request per 1.6 ms per connection at 20,000/s).
# Deeper pipelines measure h2load's own bursts (32 x 4 reads p99 1.2 ms with
# no churn at all, 32 x 1 0.46 ms); and a Check slower than the interval
# delays its connection's next one, which h2load does not count, so the
# interval stays above the 1 ms goal.
CHURN_LAT_CLIENTS = 32

# Churn calls in flight: one worker verifies them in turn, so a cached Check
# that arrives behind them waits for each (about 60 us for ES256). Eight keep
# the worker busy without a queue deeper than what the p99 goal allows.
CHURN_IN_FLIGHT = 8


def churn(folder, start_server, tokens, cluster, source, latency_run, body, expect_data, size=100000,
          extra=50000, cached_rate=20000):
    """A cache of |size| entries filled and then churned by |size| + |extra|
    distinct tokens sent as fast as the server takes them (uncached,
    CHURN_IN_FLIGHT at a time), while
    h2load sends cached Checks of another token at |cached_rate| req/s beside
    them. Returns the cached p50/p99 under churn (ms), the churn rate, and
    the RSS when the cache first became full and at the end."""
    server = start_server("churn", {"token_cache": {"size": size}})
    result = {}
    try:
        fill = [tokens.token(i) for i in range(size)]
        more = [tokens.token(size + i) for i in range(extra)]
        send_checks(server.port, fill, cluster, source)
        result["rss_full_kib"] = rss_kib(server.proc.pid)
        # The same paced cached load without churn: what h2load's pacing and
        # the machine add by themselves.
        quiet, _ = latency_run(folder, server.port, body, cached_rate * 5, cached_rate, expect_data,
                               clients=CHURN_LAT_CLIENTS, streams=1)
        result["quiet_p50_ms"], result["quiet_p99_ms"] = percentiles_ms(quiet)
        samples = []
        # The churn comes from its own process at a lower priority, so that
        # on the shared client CPU h2load's paced sends and reads are never
        # held behind it: the latency figure is the server's, not the
        # load generator's.
        tokens_file = os.path.join(folder, "churn-tokens.txt")
        with open(tokens_file, "w") as f:
            f.write("\n".join(more))
        t0 = time.time()
        sender = subprocess.Popen(["nice", "-n", "10", sys.executable, os.path.abspath(__file__), "send",
                                   str(server.port), cluster, source, str(CHURN_IN_FLIGHT), tokens_file],
                                  stdout=subprocess.PIPE, text=True)
        durations = []
        while sender.poll() is None:
            d, _ = latency_run(folder, server.port, body, cached_rate, cached_rate, expect_data,
                               clients=CHURN_LAT_CLIENTS, streams=1)
            durations += d
            samples.append(rss_kib(server.proc.pid))
        allowed = int(sender.communicate()[0])
        if sender.returncode != 0 or allowed != extra:
            raise RuntimeError(f"churn sender exited {sender.returncode}, {allowed} of {extra} allowed")
        result["churn_rate"] = allowed / (time.time() - t0)
        result["rss_end_kib"] = rss_kib(server.proc.pid)
        result["samples"] = len(durations)
        result["p50_ms"], result["p99_ms"] = percentiles_ms(durations)
        result["rss_samples_kib"] = samples
    finally:
        server.stop()
    return result


if __name__ == "__main__":
    # lean.py send PORT CLUSTER SOURCE IN_FLIGHT TOKENS_FILE: the churn
    # sender; prints how many Checks were allowed.
    _, mode, port, cluster_name, source_ip, in_flight, path = sys.argv
    if mode != "send":
        sys.exit(f"usage: {sys.argv[0]} send PORT CLUSTER SOURCE IN_FLIGHT TOKENS_FILE")
    with open(path) as f:
        print(send_checks(int(port), f.read().split("\n"), cluster_name, source_ip, in_flight=int(in_flight)))
