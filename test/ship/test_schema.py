"""config.schema.json (JSON Schema 2020-12) against the loader, the README
and the examples:

- its key set is the loader's: every `static const char *const ...[]` key
  list in the config loader (LOADER_FILES) is compared with the schema object it
  describes (a new list must be mapped here), and the README's configuration
  tables list the same keys;
- every example config (examples/**/*.json, the ConfigMaps) and every config
  among the README's ```json blocks validates;
- generated valid configs (every key at its minimum, at its maximum, and at
  its documented default) validate and pass `tokengate check`;
- each documented error case is refused by both the schema and the loader.
"""

import copy
import glob
import json
import os
import re
import subprocess
import unittest

import jsonschema
import yaml

from ship_support import TOKENGATE, CheckableConfig, source_path


def read_text(*parts):
    with open(source_path(*parts), encoding="utf-8") as f:
        return f.read()


SCHEMA = json.loads(read_text("config.schema.json"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def schema_object(path):
    """The schema of the object at |path|: "" (top level), "clusters",
    "rules", "token_cache", "clusters.claim_to_headers"."""
    node = SCHEMA
    for part in [p for p in path.split(".") if p]:
        node = node["properties"][part]
        if node.get("type") == "array":
            node = node["items"]
        if "$ref" in node:
            node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


# The config loader's files under policies/: pol_config.c reads the server
# settings and wires the section loaders.
LOADER_FILES = ("pol_config.c", "pol_cluster_load.c", "pol_provider_load.c", "pol_rule_load.c", "pol_keysrc.c",
                "pol_cfg.c")

# (function of the loader, name of its key list) -> the object it checks.
LOADER_LISTS = {
    ("parse_top", "keys"): "",
    ("parse_top", "cache_keys"): "token_cache",
    ("parse_tls", "keys"): "tls",
    ("parse_cluster", "keys"): "clusters",
    ("get_claim_headers", "keys"): "clusters.claim_to_headers",
    ("parse_rule", "keys"): "rules",
    ("pol_rule_load_peer_binding", "keys"): "clusters.peer_binding",
    ("parse_provider", "keys"): "identity_providers",
    ("parse_provider", "mapping_keys"): "identity_providers.claim_mappings",
    ("parse_claim_mapping", "keys"): "identity_providers.claim_mappings.username",
    ("parse_claim_rules", "keys"): "identity_providers.claim_validation_rules",
}

# Lists of a key's allowed string values: -> that key (a dotted path), whose schema is an enum.
LOADER_CHOICES = {
    ("parse_top", "deny_details"): "deny_details",
    ("pol_rule_load_peer_binding", "modes"): "clusters.peer_binding.mode",
    ("parse_top", "http_styles"): "http_style",
}


def loader_key_lists():
    """{(function, list name): [keys]} from the loader's sources (LOADER_FILES)."""
    lists = {}
    for name in LOADER_FILES:
        source = read_text("policies", name)
        for m in re.finditer(r"static const char \*const (\w+)\[\] = \{(.*?)\};", source, re.S):
            head = source[:m.start()]
            fm = list(re.finditer(r"^(?:static\s+)?[a-z_ ]+\**\s*\b([a-z_0-9]+)\([^;]*?\)\s*\{", head, re.M | re.S))
            function = fm[-1].group(1) if fm else None
            keys = re.findall(r'"([^"]*)"', m.group(2))
            lists[(function, m.group(1))] = keys
    return lists


def readme_table_keys():
    """{table title: [keys]} of the README's configuration key tables (the
    first column of each row in the tables after "Top level:", "Cluster:",
    "Rule:", ...)."""
    text = read_text("README.md")
    section = text[text.index("## Configuration"):text.index("## Command line")]
    tables = {}
    title = None
    for line in section.splitlines():
        if re.match(r"^[A-Z`][A-Za-z_` ]*:$", line):
            title = line[:-1]
            tables[title] = []
        elif title and line.startswith("| `"):
            tables[title].append(re.match(r"^\| `([^`]+)`", line).group(1))
        elif title and not line.startswith("|") and line.strip():
            title = None
    return tables


README_TABLES = {"Top level": "", "Cluster": "clusters", "Rule": "rules",
                 "`claim_to_headers` entry": "clusters.claim_to_headers",
                 "`peer_binding` object": "clusters.peer_binding",
                 "Identity provider": "identity_providers"}


def readme_json_configs():
    """The configs among the README's ```json blocks, and those its console
    examples show with `$ cat config.json`."""
    text = read_text("README.md")
    out = []
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    blocks += re.findall(r"^\$ cat config\.json\n(.*?)^\$ ", text, re.S | re.M)
    for block in blocks:
        doc = json.loads(block)
        if isinstance(doc, dict) and "clusters" in doc:
            out.append(doc)
    return out


def example_configs():
    out = []
    for path in sorted(glob.glob(source_path("examples", "**", "*.json"), recursive=True)):
        if os.sep + "grafana" + os.sep in path:
            continue  # dashboards, not configs
        with open(path, encoding="utf-8") as f:
            out.append((os.path.relpath(path, source_path()), json.load(f)))
    for path in sorted(glob.glob(source_path("examples", "**", "*.y*ml"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            for d in yaml.safe_load_all(f):
                if isinstance(d, dict) and d.get("kind") == "ConfigMap" and "config.json" in d.get("data", {}):
                    out.append((f"{os.path.relpath(path, source_path())} {d['metadata']['name']}",
                                json.loads(d["data"]["config.json"])))
    return out


def check(config):
    """(exit code, output) of `tokengate check` on |config| with minted keys."""
    with CheckableConfig(json.dumps(config)) as c:
        p = subprocess.run([TOKENGATE, "check", "-c", c.path], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr


def base_config():
    return {
        "$schema": "./config.schema.json",
        "clusters": [{"name": "a", "issuer": "https://a.example", "audiences": ["api"], "jwks_file": "a.jwks.json",
                      "hosts": ["api.a.example", "*.a.example"]},
                     {"name": "b", "issuer": "https://b.example", "audiences": ["api"],
                      "public_key_files": ["b.pem"], "hosts": ["*.b.example"]}],
        "rules": [{"name": "r", "clusters": ["a"], "path_prefix": "/api", "headers": {"x-tenant": ["*"]}}],
    }


def provider(**changes):
    """An identity provider for base_config's clusters, with |changes| (None
    removes a key)."""
    p = {"name": "corp", "issuer": "https://dex.example", "audiences": ["tokengate"], "jwks_file": "p.jwks.json",
         "claim_mappings": {"username": {"claim": "email", "prefix": "corp:"},
                            "groups": {"claim": "realm_access.roles", "prefix": ""}},
         "claim_validation_rules": [{"claim": "email_verified", "required_value": True},
                                    {"claim": "typ", "required_values": ["Bearer", "ID"]}],
         "clusters": ["a", "b"]}
    for key, value in changes.items():
        if value is None:
            p.pop(key)
        else:
            p[key] = value
    return p


class KeySets(unittest.TestCase):
    def test_schema_is_2020_12(self):
        self.assertEqual(SCHEMA["$schema"], "https://json-schema.org/draft/2020-12/schema")
        jsonschema.Draft202012Validator.check_schema(SCHEMA)

    def test_schema_keys_are_the_loaders(self):
        lists = loader_key_lists()
        self.assertGreaterEqual(len(lists), len(LOADER_LISTS), lists.keys())
        for where, keys in lists.items():
            if where in LOADER_CHOICES:
                with self.subTest(choices=where):
                    parent, _, key = LOADER_CHOICES[where].rpartition(".")
                    self.assertEqual(sorted(keys), sorted(schema_object(parent)["properties"][key]["enum"]))
                continue
            with self.subTest(list=where):
                self.assertIn(where, LOADER_LISTS,
                              f"the loader has a new key list {where}: map it to its object in the schema")
                props = schema_object(LOADER_LISTS[where])["properties"]
                self.assertEqual(sorted(keys), sorted(props), f"{where} vs schema {LOADER_LISTS[where]!r}")
                self.assertIs(schema_object(LOADER_LISTS[where]).get("additionalProperties"), False)

    def test_readme_tables_list_the_schema_keys(self):
        tables = readme_table_keys()
        for title, path in README_TABLES.items():
            with self.subTest(table=title):
                self.assertIn(title, tables, f"README has no table after '{title}:'")
                keys = set(tables[title])
                props = set(schema_object(path)["properties"]) - {"$schema"}
                # token_cache.size is listed in the top-level table.
                if path == "":
                    props = (props - {"token_cache"}) | {"token_cache.size"}
                self.assertEqual(sorted(keys), sorted(props))

    def test_every_key_has_a_description(self):
        for path in set(LOADER_LISTS.values()):
            for key, spec in schema_object(path)["properties"].items():
                with self.subTest(key=f"{path}.{key}"):
                    self.assertTrue(spec.get("description"))


class Documents(unittest.TestCase):
    def test_examples_validate(self):
        configs = example_configs()
        self.assertGreaterEqual(len(configs), 2)
        for name, config in configs:
            with self.subTest(example=name):
                VALIDATOR.validate(config)

    def test_readme_configs_validate(self):
        configs = readme_json_configs()
        self.assertGreaterEqual(len(configs), 2)
        for config in configs:
            with self.subTest(config=json.dumps(config)[:60]):
                VALIDATOR.validate(config)

    def test_readme_shows_the_schema_line(self):
        text = read_text("README.md")
        self.assertTrue('"$schema": "https://' in text and "config.schema.json" in text,
                        "the README shows no $schema line naming config.schema.json")


def every_integer(node, path=""):
    """(path, schema) of every integer-valued key reachable from |node|."""
    for key, spec in node.get("properties", {}).items():
        if spec.get("type") == "integer":
            yield (path + key, spec)
        elif spec.get("type") == "object":
            yield from every_integer(spec, path + key + ".")


def set_path(config, path, value):
    parts = path.split(".")
    for p in parts[:-1]:
        config = config.setdefault(p, {})
    config[parts[-1]] = value


class Agreement(unittest.TestCase):
    def generated(self, pick):
        config = base_config()
        for path, spec in every_integer(SCHEMA):
            set_path(config, path, pick(spec))
        for path, spec in every_integer(schema_object("clusters")):
            set_path(config["clusters"][0], path, pick(spec))
        cluster = config["clusters"][0]
        cluster.update(source_cidrs=["10.0.0.0/8", "fd00::/8"], forward_token=True, cidr_claim="cidrs",
                       jwks_uri="https://a.example/openid/v1/jwks",
                       enforce_warnafter=True,
                       claim_to_headers=[{"claim": "kubernetes.io.pod.name", "header": "X-Pod-Name"},
                                         {"claim": "roles", "header": "x-roles"}])
        cluster["peer_binding"] = {"mode": "spiffe", "trust_domain": "cluster-a.local", "required": True}
        config.update(log_decisions=False, escaped_slashes="keep", listen="[::1]:9191", deny_details="full")
        config["rules"].append({"name": "all", "clusters": ["a", "b"], "path_prefix": "/", "ignore_case": True,
                                "methods": ["GET", "POST"], "namespaces": ["ops"],
                                "service_accounts": ["ops:deployer"], "source_cidrs": ["10.1.0.0/16"],
                                "headers": {"X-Api-Version": ["v2", "v3"]},
                                "peer_binding": {"mode": "spiffe", "trust_domain": "cluster-a.local",
                                                 "required": True}})
        return config

    def test_generated_valid_configs_load(self):
        for label, pick in (("minimum", lambda s: s["minimum"]), ("maximum", lambda s: s["maximum"]),
                            # refresh_seconds has none: Cache-Control decides.
                            ("default", lambda s: s.get("default", s["minimum"]))):
            with self.subTest(values=label):
                config = self.generated(pick)
                VALIDATOR.validate(config)
                code, out = check(config)
                self.assertEqual(code, 0, out)

    def test_provider_remote_keys_load(self):
        for label, changes in (("discovery", {"discovery": True, "refresh_seconds": 300,
                                              "fetch_timeout_seconds": 5}),
                               ("jwks_uri", {"jwks_uri": "https://dex.example/keys"})):
            with self.subTest(source=label):
                config = base_config()
                config["identity_providers"] = [provider(jwks_file=None, **changes)]
                VALIDATOR.validate(config)
                code, out = check(config)
                self.assertEqual(code, 0, out)

    ERROR_CASES = [
        ("unknown top-level key", lambda c: c.update(worker=2)),
        ("workers above range", lambda c: c.update(workers=257)),
        ("negative clock skew", lambda c: c.update(clock_skew_seconds=-1)),
        ("escaped_slashes value", lambda c: c.update(escaped_slashes="decode")),
        ("deny_details value", lambda c: c.update(deny_details="verbose")),
        ("$schema not a string", lambda c: c.update({"$schema": 1})),
        ("no clusters", lambda c: c.update(clusters=[])),
        ("cluster without keys", lambda c: c["clusters"][1].pop("public_key_files")),
        ("plain http jwks_uri", lambda c: c["clusters"][0].update(jwks_uri="http://a.example/keys")),
        ("jwks_uri beside discovery",
         lambda c: c["clusters"][0].update(jwks_uri="https://a.example/keys", discovery=True)),
        ("refresh without a remote source", lambda c: c["clusters"][0].update(refresh_seconds=300)),
        ("refresh below a minute",
         lambda c: c["clusters"][0].update(jwks_uri="https://a.example/keys", refresh_seconds=59)),
        ("discovery false alone", lambda c: (c["clusters"][1].pop("public_key_files"),
                                             c["clusters"][1].update(discovery=False))),
        ("empty audiences", lambda c: c["clusters"][0].update(audiences=[])),
        ("cluster name with a space", lambda c: c["clusters"][0].update(name="a b")),
        ("host with a port", lambda c: c["clusters"][0].update(hosts=["api.a.example:443"])),
        ("wildcard inside", lambda c: c["clusters"][0].update(hosts=["a.*.example"])),
        ("two-label wildcard", lambda c: c["clusters"][0].update(hosts=["*.*.example"])),
        ("bare star host", lambda c: c["clusters"][0].update(hosts=["*"])),
        ("trailing dot", lambda c: c["clusters"][0].update(hosts=["api.a.example."])),
        ("empty claim_to_headers", lambda c: c["clusters"][0].update(claim_to_headers=[])),
        ("claim entry without header", lambda c: c["clusters"][0].update(claim_to_headers=[{"claim": "sub"}])),
        ("claim entry unknown key",
         lambda c: c["clusters"][0].update(claim_to_headers=[{"claim": "sub", "header": "x-sub", "x": 1}])),
        ("claim header authorization",
         lambda c: c["clusters"][0].update(claim_to_headers=[{"claim": "sub", "header": "Authorization"}])),
        ("claim header x-tokengate-*",
         lambda c: c["clusters"][0].update(claim_to_headers=[{"claim": "sub", "header": "X-Tokengate-Subject"}])),
        ("claim path with an empty segment",
         lambda c: c["clusters"][0].update(claim_to_headers=[{"claim": "a..b", "header": "x-b"}])),
        ("claim header with a space",
         lambda c: c["clusters"][0].update(claim_to_headers=[{"claim": "sub", "header": "x sub"}])),
        ("17 claim headers", lambda c: c["clusters"][0].update(
            claim_to_headers=[{"claim": "sub", "header": f"x-{i}"} for i in range(17)])),
        ("rule without name", lambda c: c["rules"][0].pop("name")),
        ("path_prefix without slash", lambda c: c["rules"][0].update(path_prefix="api")),
        ("lower-case method", lambda c: c["rules"][0].update(methods=["get"])),
        ("service account without namespace", lambda c: c["rules"][0].update(service_accounts=["deployer"])),
        ("empty headers", lambda c: c["rules"][0].update(headers={})),
        ("header values not a list", lambda c: c["rules"][0].update(headers={"x-a": "v"})),
        ("empty header values", lambda c: c["rules"][0].update(headers={"x-a": []})),
        ("comma in a header value", lambda c: c["rules"][0].update(headers={"x-a": ["v1,v2"]})),
        ("control character in a header value", lambda c: c["rules"][0].update(headers={"x-a": ["v\u0001"]})),
        ("space around a header value", lambda c: c["rules"][0].update(headers={"x-a": [" v"]})),
        ("star beside values", lambda c: c["rules"][0].update(headers={"x-a": ["*", "v"]})),
        ("pseudo-header condition", lambda c: c["rules"][0].update(headers={":path": ["/x"]})),
        ("17 header conditions", lambda c: c["rules"][0].update(headers={f"x-{i}": ["v"] for i in range(17)})),
        ("unknown rule key", lambda c: c["rules"][0].update(header={"x-a": ["v"]})),
        ("peer_binding mode value", lambda c: c["clusters"][0].update(peer_binding={"mode": "on"})),
        ("peer_binding upper-case trust domain",
         lambda c: c["clusters"][0].update(peer_binding={"mode": "spiffe", "trust_domain": "Cluster.local"})),
        ("peer_binding required not a bool",
         lambda c: c["rules"][0].update(peer_binding={"required": "yes"})),
        ("peer_binding unknown key", lambda c: c["clusters"][0].update(peer_binding={"td": "x"})),
        ("comma in a rule group", lambda c: c["rules"][0].update(groups=["a,b"])),
        ("provider without clusters", lambda c: c.update(identity_providers=[provider(clusters=None)])),
        ("provider with empty clusters", lambda c: c.update(identity_providers=[provider(clusters=[])])),
        ("provider without keys", lambda c: c.update(identity_providers=[provider(jwks_file=None)])),
        ("provider jwks_uri and discovery", lambda c: c.update(identity_providers=[provider(
            jwks_uri="https://dex.example/keys", discovery=True)])),
        ("provider refresh without a source", lambda c: c.update(identity_providers=[provider(
            refresh_seconds=300)])),
        ("provider prefix system:", lambda c: c.update(identity_providers=[provider(
            claim_mappings={"groups": {"claim": "groups", "prefix": "system:"}})])),
        ("provider mapping without prefix", lambda c: c.update(identity_providers=[provider(
            claim_mappings={"username": {"claim": "email"}})])),
        ("claim rule with both values", lambda c: c.update(identity_providers=[provider(
            claim_validation_rules=[{"claim": "x", "required_value": 1, "required_values": [1]}])])),
        ("claim rule value an object", lambda c: c.update(identity_providers=[provider(
            claim_validation_rules=[{"claim": "x", "required_value": {}}])])),
    ]

    def test_documented_errors_are_refused_by_both(self):
        self.assertEqual(check(base_config())[0], 0, check(base_config())[1])
        VALIDATOR.validate(base_config())
        for label, mutate in self.ERROR_CASES:
            with self.subTest(case=label):
                config = copy.deepcopy(base_config())
                mutate(config)
                self.assertTrue(list(VALIDATOR.iter_errors(config)), f"schema accepts {label}")
                code, out = check(config)
                self.assertEqual(code, 2, f"loader accepts {label}: {out}")


if __name__ == "__main__":
    unittest.main()
