"""The token cache as a property of the running server: two tokengate
processes with the same config except token_cache.size (0 and the default)
get the same Checks, a generated mix of tokens for every reason sent to every
kind of target, source and route, over rounds a few seconds apart (the clock
skew is 1 s, so tokens expire, become valid and grow stale during the test).
Every CheckResponse must be the same from both: a cache hit may skip the
parse and the signature math, never a check. Clusters a and b bind tokens to
the caller's SPIFFE ID (b requires one) and each Check carries one of several
peers, principal or certificate: the peer is request-dependent, so a cached
token must still be checked against it."""

import copy
import json
import random
import time
import unittest

import tg_harness as h
from test_peer import certificate

ROUNDS = 3
ROUND_GAP = 2.5  # seconds between rounds
SAMPLES_PER_TOKEN = 6
SEED = 20261207

TARGETS = [{"cluster": "cluster-a"}, {"cluster": "cluster-b"}, {"cluster": "cluster-c"}, {"cluster": "nope"},
           {"host": "api.cluster-a.test"}, {"host": "api.cluster-c.test"}]
SOURCES = ["10.1.2.3", "10.200.0.1", "192.0.2.1", "fd00:a::5", "fd00:a:0:0:1::5", "2001:db8::1"]
# "/api/%zz" is no valid percent-encoding: a malformed request where paths are judged.
# The caller's peer, relative to the workload the token names: none, its
# own SPIFFE ID (as principal or certificate), or a near miss.
PEER_KINDS = ["none", "own", "own", "own-certificate", "other-sa", "trailing-slash", "other-td"]


def peer_for(kind, token, target):
    """(source.principal, source.certificate) of |kind| for |token| sent to
    |target|; the trust domain is the target cluster's."""
    try:
        k8s = json.loads(h.b64url_decode(token.split(".")[1]))["kubernetes.io"]
        ns, sa = k8s["namespace"], k8s["serviceaccount"]["name"]
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        ns, sa = "shop", "web"
    td = "cluster-a.local" if "cluster-a" in str(target) else "cluster.local"
    own = f"spiffe://{td}/ns/{ns}/sa/{sa}"
    if kind == "own-certificate":
        if own not in CERTS:
            CERTS[own] = certificate([own])
        return None, CERTS[own]
    return {"none": (None, None), "own": (own, None), "other-sa": (own + "x", None),
            "trailing-slash": (own + "/", None), "other-td": (own.replace(td, "other.td", 1), None)}[kind]


CERTS = {}
ROUTES = [("GET", "/"), ("GET", "/admin/x"), ("POST", "/payments/1"), ("GET", "/payments"), ("GET", "/api/%zz")]


DEX = "https://dex.example.com"


def dex_token(world, **claims):
    """A Dex-shaped token of the provider corp (trusted by cluster-a and -b)."""
    base = {"email": "alice@example.com", "email_verified": True, "groups": ["admins", "dev"], "name": "Alice"}
    base.update(claims)
    return h.mint(world.dex, iss=DEX, aud=("tokengate",), namespace=None, claims=base)


def make_tokens(world):
    """(name, token or None) pairs covering every reason; several cross a
    time boundary during the rounds. Those are minted last, right before the
    rounds begin: minting the others takes seconds on a loaded machine, which
    would otherwise carry them past their boundary before round 0."""
    tokens = [
        ("no token", None),
        ("not a JWS", "not-a-jws"),
        ("a ok", world.token_a()),
        ("a ops", world.token_a(namespace="ops", service_account="admin")),
        ("a bound to 10.1.0.0/16 and fd00:a::/96",
         world.token_a(claims={"boundCIDRs": ["10.1.0.0/16", "fd00:a::/96"]})),
        ("a bound CIDRs malformed", world.token_a(claims={"boundCIDRs": ["10.1.0.0/33"]})),
        ("a wrong aud", world.token_a(aud=("someone-else",))),
        ("a expired", world.token_a(exp_in=-600, iat_in=-1200, nbf_in=-1200)),
        ("a no kubernetes.io", world.token_a(namespace=None)),
        ("a sub disagrees", world.token_a(claims={"sub": "system:serviceaccount:kube-system:admin"})),
        ("a unknown kid", world.token_a(kid="cluster-a-1999")),
        ("a kid, rogue key", h.mint(world.rogue, iss=h.ISSUER_A, kid=world.key_a.kid)),
        ("a alg none", h.with_header(world.token_a(), {"alg": "none", "typ": "JWT"})),
        ("a alg HS256", h.with_header(world.token_a(), {"alg": "HS256", "kid": world.key_a.kid})),
        ("unknown issuer", h.mint(world.key_a, iss="https://nobody.example")),
        ("b ok", world.token_b()),
        ("b no kid", world.token_b(no_kid=True)),
        ("b wrong aud", world.token_b(aud=("nope",))),
        ("c ok", world.token_c()),
        ("dex ok", dex_token(world)),
        ("dex email unverified", dex_token(world, email_verified=False)),
        ("dex with kubernetes.io", dex_token(world, **{"kubernetes.io": {"namespace": "ops"}})),
    ]
    now = int(time.time())
    k8s_c = {"namespace": "batch", "serviceaccount": {"name": "reporter", "uid": "u-1"}, "warnafter": now + 3}
    return tokens + [
        ("a expires in 3 s", world.token_a(exp_in=3)),
        ("a nbf in 3 s", world.token_a(nbf_in=3)),
        ("a iat in 3 s", world.token_a(iat_in=3)),
        ("c stale in 2 s", world.token_c(iat_in=-598, nbf_in=-598)),
        ("c warnafter in 3 s",
         h.mint(world.key_c, iss=h.KUBE_ISSUER, namespace=None,
                claims={"sub": "system:serviceaccount:batch:reporter", "kubernetes.io": k8s_c})),
    ]


def setUpModule():
    global FOLDER, WORLD, CACHED, UNCACHED
    FOLDER = h.new_folder("tg-cache-equiv-")
    WORLD = h.World(FOLDER)
    WORLD.dex = h.Key(FOLDER, "dex", "rsa2048", jwks_kid="dex-1")
    corp = {"name": "corp", "issuer": DEX, "audiences": ["tokengate"], "jwks_file": "dex.jwks.json",
            "claim_mappings": {"username": {"claim": "email", "prefix": "corp:"},
                               "groups": {"claim": "groups", "prefix": "corp:"}},
            "clusters": ["cluster-a", "cluster-b"]}
    config = WORLD.config(clock_skew_seconds=1, identity_providers=[corp])
    config["clusters"] = copy.deepcopy(config["clusters"])
    config["clusters"][0]["source_cidrs"] = ["10.0.0.0/8", "fd00:a::/64"]
    config["clusters"][0]["peer_binding"] = {"mode": "spiffe", "trust_domain": "cluster-a.local", "required": True}
    config["clusters"][1]["peer_binding"] = {"mode": "spiffe"}
    uncached = dict(config, token_cache={"size": 0})
    cached = dict(config)
    del cached["token_cache"]  # the default size
    UNCACHED = h.Server(FOLDER, uncached, "uncached").start()
    try:
        CACHED = h.Server(FOLDER, cached, "cached").start()
    except Exception:
        UNCACHED.kill()
        raise


def tearDownModule():
    problems = []
    for server in (CACHED, UNCACHED):
        code, elapsed = server.stop()
        if code != 0 or elapsed > 5.0:
            problems.append(f"{server.name} exited {code} after {elapsed:.1f}s:\n{server.log_text()[-4000:]}")
    if problems:
        raise AssertionError("\n".join(problems))


def both_answers(uncached, cached, req):
    """The uncached server's answer and the cached one's to |req|. Tokens
    change state on whole seconds: when the reference itself changes across
    the two calls, the clock crossed a second between them and the pair is
    asked again; a cache that changes decisions differs every time."""
    for _ in range(3):
        want = uncached.Check(req, timeout=10)
        got = cached.Check(req, timeout=10)
        if got == want or uncached.Check(req, timeout=10) == want:
            break
    return want, got


class CacheEquivalenceTest(unittest.TestCase):
    def test_cache_on_answers_as_cache_off(self):
        tokens = make_tokens(WORLD)
        rng = random.Random(SEED)
        reasons = set()
        with CACHED.channel() as cached_channel, UNCACHED.channel() as uncached_channel:
            cached, uncached = h.authz_stub(cached_channel), h.authz_stub(uncached_channel)
            start = time.monotonic()
            for round_no in range(ROUNDS):
                delay = start + round_no * ROUND_GAP - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                requests = []
                for name, token in tokens:
                    for _ in range(SAMPLES_PER_TOKEN):
                        target, source, (method, path) = (rng.choice(TARGETS), rng.choice(SOURCES),
                                                          rng.choice(ROUTES))
                        kind = rng.choice(PEER_KINDS)
                        principal, cert = peer_for(kind, token, target)
                        requests.append((f"round {round_no}: token {name!r}, {target}, source {source}, "
                                         f"{method} {path}, peer {kind}",
                                         h.check_request(token=token, source=source, method=method, path=path,
                                                         principal=principal, certificate=cert, **target)))
                rng.shuffle(requests)
                for what, req in requests:
                    want, got = both_answers(uncached, cached, req)
                    self.assertEqual(got, want, f"the token cache changed the answer to {what}:\n"
                                                f"uncached: {want.status.message!r}\n"
                                                f"cached:   {got.status.message!r}")
                    reasons.add(want.status.message.split(":")[0] if want.status.code else "ok")
        # The comparison means something only if the mix reached every reason.
        every = ({"ok"} | set(h.UNAUTHENTICATED_REASONS) | set(h.FORBIDDEN_REASONS) |
                 set(getattr(h, "INVALID_REASONS", ())))
        self.assertEqual(every - reasons, set(), "reasons the mix never produced")


if __name__ == "__main__":
    unittest.main()
