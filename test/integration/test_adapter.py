"""The ext_authz adapter's strict reading of a CheckRequest and what a denial
tells whom, end to end through the real binary:

- map semantics: a repeated key in `headers` or `context_extensions` keeps
  its last entry (sent as real protobuf bytes: two serialized messages
  concatenated merge, as every protobuf parser reads them); two
  `authorization` lines in `header_map` are malformed_token; an empty
  `context_extensions["cluster"]` is unknown_cluster, never host routing;
- denials: by default the client gets the reason and a fixed sentence, no
  cluster, key or rule name; `"deny_details": "full"` gives the detailed
  message; RFC 6750's challenge; content-type;
- the decision log says who was refused and why, without query strings.
"""

import json
import time
import unittest

import tg_harness as h


def raw_call(channel):
    """Check with the request given as bytes, so a test can send what no
    protobuf object can hold (a map key twice)."""
    return channel.unary_unary(h.CHECK_METHOD, request_serializer=lambda b: b,
                               response_deserializer=h.stubs().ext.CheckResponse.FromString)


def override(headers=None, cluster=None):
    """A CheckRequest holding only |headers| (map form) and the cluster
    extension: appended to another request's bytes, it repeats those keys."""
    req = h.stubs().ext.CheckRequest()
    for key, value in (headers or {}).items():
        req.attributes.request.http.headers[key] = value
    if cluster is not None:
        req.attributes.context_extensions["cluster"] = cluster
    return req


# What the detailed messages of the World's denials name, and no client may
# see by default.
SECRETS = ("cluster-a", "cluster-b", "cluster-c", "cluster-a-2024", "admin-is-ops", "payments-checkout-only",
           "oidc.cluster-a", "172.16.0.9", "shop:web")


class AdapterServer(h.DecisionAsserts, unittest.TestCase):
    """Two servers on one World: the default (generic denials) and one with
    deny_details full."""

    @classmethod
    def setUpClass(cls):
        cls.folder = h.new_folder("tg-adapter-")
        cls.world = h.World(cls.folder)
        cls.server = h.Server(cls.folder, cls.world.config(), "generic").start()
        cls.full = h.Server(cls.folder, cls.world.config(deny_details="full"), "full").start()
        cls.channel = cls.server.channel()
        cls.full_channel = cls.full.channel()
        cls.stub = h.authz_stub(cls.channel)
        cls.full_stub = h.authz_stub(cls.full_channel)
        cls.raw = raw_call(cls.channel)
        cls.tokens = []

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.full_channel.close()
        for server in (cls.server, cls.full):
            code, elapsed = server.stop()
            log = server.log_text()
            if code != 0 or elapsed > 5.0:
                raise AssertionError(f"tokengate exited {code} after {elapsed:.1f}s:\n{log[-4000:]}")
            for token in cls.tokens:
                if token.split(".")[-1] in log:
                    raise AssertionError("a token's signature appears in the server's stderr")

    def token_a(self, **kw):
        token = self.world.token_a(**kw)
        self.tokens.append(token)
        return token

    def check(self, stub=None, **kw):
        return (stub or self.stub).Check(h.check_request(**kw), timeout=10)

    def check_bytes(self, *messages):
        data = b"".join(m.SerializeToString() for m in messages)
        return self.raw(data, timeout=10), h.stubs().ext.CheckRequest.FromString(data)


class MapSemanticsTest(AdapterServer):
    def test_repeated_authorization_key_last_entry_wins(self):
        good = self.token_a()
        first_good = h.check_request(token=good, cluster="cluster-a")
        resp, parsed = self.check_bytes(first_good, override({"authorization": "Bearer not-a-jwt"}))
        self.assertEqual(parsed.attributes.request.http.headers["authorization"], "Bearer not-a-jwt",
                         "the reference parser keeps the last entry")
        self.assert_denied(resp, "malformed_token")
        first_bad = h.check_request(authorization="Bearer not-a-jwt", cluster="cluster-a")
        resp, _ = self.check_bytes(first_bad, override({"authorization": "Bearer " + good}))
        self.assert_allowed(resp, "cluster-a", "shop", "web")

    def test_repeated_cluster_extension_last_entry_wins(self):
        first = h.check_request(token=self.token_a(), cluster="cluster-b")
        resp, parsed = self.check_bytes(first, override(cluster="cluster-a"))
        self.assertEqual(parsed.attributes.context_extensions["cluster"], "cluster-a")
        self.assert_allowed(resp, "cluster-a", "shop", "web")
        first = h.check_request(token=self.token_a(), cluster="cluster-a")
        resp, _ = self.check_bytes(first, override(cluster="cluster-b"))
        self.assert_denied(resp, "cluster_mismatch")

    def test_repeated_host_header_last_entry_wins(self):
        # Host routing: the last :authority entry names cluster-b's host.
        first = h.check_request(token=self.token_a(), host="")
        first.attributes.request.http.headers[":authority"] = "api.cluster-a.test"
        resp, _ = self.check_bytes(first, override({":authority": "api.cluster-b.test"}))
        self.assert_denied(resp, "cluster_mismatch")

    def test_two_authorization_lines_in_header_map_are_malformed(self):
        token = self.token_a()
        req = h.check_request(token=token, cluster="cluster-a", raw=True)
        self.assert_allowed(self.stub.Check(req, timeout=10), "cluster-a", "shop", "web")
        line = req.attributes.request.http.header_map.headers.add()
        line.key = "Authorization"
        line.raw_value = ("Bearer " + token).encode()
        self.assert_denied(self.stub.Check(req, timeout=10), "malformed_token")

    def test_empty_cluster_extension_is_unknown_cluster(self):
        token = self.token_a()
        resp = self.check(token=token, cluster="", host="api.cluster-a.test")
        self.assert_denied(resp, "unknown_cluster")
        # Without the extension the host decides.
        self.assert_allowed(self.check(token=token, host="api.cluster-a.test"), "cluster-a", "shop", "web")


class DenialTest(AdapterServer):
    def denials(self, stub):
        """(reason, response) for denials whose detailed messages name
        clusters, key ids, rules, issuers and addresses."""
        w = self.world
        rogue = h.mint(w.rogue, iss=h.ISSUER_A, namespace="shop", kid="cluster-a-2024")
        unknown_kid = h.mint(w.rogue, iss=h.ISSUER_A, namespace="shop", kid="cluster-a-2024-old")
        self.tokens += [rogue, unknown_kid]
        cases = [
            ("cluster_mismatch", dict(token=self.token_a(), cluster="cluster-b")),
            ("forbidden", dict(token=self.token_a(), cluster="cluster-a", path="/admin/users")),
            ("source_not_allowed", dict(token=self.token_a(), cluster="cluster-a", source="172.16.0.9")),
            ("bad_signature", dict(token=rogue, cluster="cluster-a")),
            ("unknown_key", dict(token=unknown_kid, cluster="cluster-a")),
            ("unknown_cluster", dict(token=self.token_a(), cluster="cluster-z")),
            ("audience_mismatch", dict(token=self.token_a(aud=("other",)), cluster="cluster-a")),
        ]
        return [(reason, self.check(stub, **kw)) for reason, kw in cases]

    def client_view(self, resp):
        """Everything the client can be shown: status message, denial body
        and headers."""
        headers = " ".join(f"{o.header.key}: {o.header.value}" for o in resp.denied_response.headers)
        return " | ".join([resp.status.message, resp.denied_response.body, headers])

    def test_generic_denials_name_nothing_internal(self):
        sentences = {}
        for reason, resp in self.denials(self.stub):
            self.assert_denied(resp, reason)
            seen = self.client_view(resp)
            for secret in SECRETS:
                self.assertNotIn(secret, seen, f"{reason} tells the client {secret!r}: {seen}")
            sentences.setdefault(reason, set()).add(json.loads(resp.denied_response.body)["message"])
        # A fixed sentence per reason: the same for every denial of a reason.
        for reason, texts in sentences.items():
            self.assertEqual(len(texts), 1, f"{reason}: {texts}")

    def test_full_details_for_trusted_callers(self):
        got = dict(self.denials(self.full_stub))
        for reason, resp in got.items():
            self.assert_denied(resp, reason)
        self.assertIn("issued by cluster cluster-a", got["cluster_mismatch"].status.message)
        self.assertIn("admin-is-ops", json.loads(got["forbidden"].denied_response.body)["message"])
        self.assertIn("172.16.0.9", got["source_not_allowed"].status.message)

    def test_missing_token_challenge_without_error_code(self):
        for stub in (self.stub, self.full_stub):
            resp = self.check(stub, cluster="cluster-a")
            self.assert_denied(resp, "missing_token")
            headers = h.header_dict(resp.denied_response.headers)
            self.assertEqual(headers["www-authenticate"], 'Bearer realm="tokengate"')
            self.assertEqual(headers["content-type"], "application/json")
        resp = self.check(token=self.token_a(exp_in=-3600, iat_in=-7200, nbf_in=-7200), cluster="cluster-a")
        self.assert_denied(resp, "expired")
        self.assertIn('error="invalid_token"', h.header_dict(resp.denied_response.headers)["www-authenticate"])


class DecisionLogFieldsTest(AdapterServer):
    def wait_for(self, server, request_ids, timeout=10.0):
        """The decision lines of the requests sent with x-request-id
        it-<id> for each of |request_ids| (lines may trail the answers)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = {line.get("request_id"): line for line in server.decisions()}
            if all(f"it-{r}" in lines for r in request_ids) or time.monotonic() > deadline:
                return {r: lines.get(f"it-{r}") for r in request_ids}
            time.sleep(0.05)

    def test_who_was_refused_and_why(self):
        rogue = h.mint(self.world.rogue, iss=h.ISSUER_A, namespace="shop", kid="cluster-a-2024")
        self.tokens.append(rogue)
        calls = {
            "log-replay": dict(token=self.token_a(), cluster="cluster-b", host="api.cluster-b.test"),
            "log-rule": dict(token=self.token_a(), cluster="cluster-a", path="/admin/users?token=s3cret-q"),
            "log-allow": dict(token=self.token_a(), cluster="cluster-a", path="/orders#frag-s3cret"),
            "log-badsig": dict(token=rogue, cluster="cluster-a"),
            "log-expired": dict(token=self.token_a(exp_in=-3600, iat_in=-7200, nbf_in=-7200),
                                cluster="cluster-a"),
        }
        for request_id, kw in calls.items():
            self.check(request_id=request_id, **kw)
        got = self.wait_for(self.server, calls)
        subject = "system:serviceaccount:shop:web"

        replay = got["log-replay"]
        self.assertEqual((replay["decision"], replay["reason"]), ("deny", "cluster_mismatch"))
        self.assertEqual(replay["subject"], subject, "a verified identity, denied later, is logged")
        self.assertEqual(replay["cluster"], "cluster-b")
        self.assertEqual(replay["issuer_cluster"], "cluster-a")
        self.assertEqual(replay["host"], "api.cluster-b.test")
        self.assertIn("issued by cluster cluster-a", replay["message"])
        self.assertIsNone(replay["rule"])

        rule = got["log-rule"]
        self.assertEqual((rule["reason"], rule["rule"], rule["subject"]), ("forbidden", "admin-is-ops", subject))
        self.assertIn("admin-is-ops", rule["message"])
        self.assertEqual(rule["path"], "/admin/users", "the query is not logged")

        allow = got["log-allow"]
        self.assertEqual((allow["decision"], allow["rule"], allow["subject"]), ("allow", "everyone-else", subject))
        self.assertEqual(allow["issuer_cluster"], "cluster-a")
        self.assertEqual(allow["path"], "/orders")

        badsig = got["log-badsig"]
        self.assertEqual(badsig["reason"], "bad_signature")
        self.assertIsNone(badsig["subject"], "an unverified token names nobody")
        self.assertIsNone(badsig["issuer_cluster"])
        self.assertIn("signature does not verify", badsig["message"])
        self.assertEqual(got["log-expired"]["subject"], subject)

        log = self.server.log_text()
        self.assertNotIn("s3cret", log, "query strings and fragments stay out of the log")


if __name__ == "__main__":
    unittest.main()
