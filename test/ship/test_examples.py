"""The examples as an operator would copy them: every YAML file parses, every
example config passes `tokengate check` (with freshly minted keys), and the
Kubernetes, Envoy and Istio files agree with each other on names, ports,
clusters, the image and the scaling numbers."""

import glob
import json
import os
import re
import subprocess
import unittest

import yaml

from ship_support import TOKENGATE, CheckableConfig, source_path, tokengate_version


def load_yaml(*parts):
    with open(source_path(*parts), encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def by_kind(docs, kind, name=None):
    found = [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def kubernetes_docs():
    docs = []
    for path in sorted(glob.glob(source_path("examples", "kubernetes", "*.yaml"))):
        docs += load_yaml(path)
    return docs


def read_text(*parts):
    with open(source_path(*parts), encoding="utf-8") as f:
        return f.read()


def configmap_config():
    cm = by_kind(kubernetes_docs(), "ConfigMap", "tokengate-config")
    return cm["data"]["config.json"]


def cpu_cores(quantity):
    q = str(quantity)
    return int(q[:-1]) / 1000 if q.endswith("m") else float(q)


def walk(node):
    """Every mapping inside a YAML document."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


def routes_with_clusters(envoy):
    """(route name or match, context_extensions cluster or None) for every
    route that forwards upstream."""
    out = []
    for d in walk(envoy):
        if "route" in d and "match" in d:
            per = d.get("typed_per_filter_config", {}).get("envoy.filters.http.ext_authz", {})
            ext = per.get("check_settings", {}).get("context_extensions", {})
            out.append((json.dumps(d["match"]), ext.get("cluster")))
    return out


class YamlFiles(unittest.TestCase):
    def test_every_yaml_file_parses(self):
        files = sorted(glob.glob(source_path("examples", "**", "*.y*ml"), recursive=True))
        self.assertGreaterEqual(len(files), 10, files)
        for path in files:
            with self.subTest(path=os.path.relpath(path, source_path())):
                docs = load_yaml(path)
                self.assertTrue(docs, "no document")
                if "/kubernetes/" in path or "/istio/" in path:
                    for d in docs:
                        self.assertIn("apiVersion", d)
                        self.assertIn("kind", d)
                        if d["kind"] != "Kustomization":
                            self.assertTrue(d["metadata"]["name"])


class ExampleConfigs(unittest.TestCase):
    def check(self, text):
        with CheckableConfig(text) as cfg:
            r = subprocess.run([TOKENGATE, "check", "-c", cfg.path], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertTrue(r.stdout.startswith("ok: "), r.stdout)

    def test_every_json_config_checks(self):
        # Every JSON file but the Grafana dashboards (GrafanaDashboard checks those).
        files = sorted(f for f in glob.glob(source_path("examples", "**", "*.json"), recursive=True)
                       if os.sep + "grafana" + os.sep not in f)
        self.assertIn(source_path("examples", "demo", "config.json"), files)
        for path in files:
            with self.subTest(path=path), open(path, encoding="utf-8") as f:
                self.check(f.read())

    def test_every_configmap_config_checks(self):
        seen = 0
        for d in kubernetes_docs():
            if d.get("kind") == "ConfigMap" and "config.json" in d.get("data", {}):
                with self.subTest(configmap=d["metadata"]["name"]):
                    self.check(d["data"]["config.json"])
                    seen += 1
        self.assertEqual(seen, 1)

    def test_a_broken_config_is_refused(self):
        # The checks above can fail: the ConfigMap's config with an empty audience list.
        cfg = json.loads(configmap_config())
        cfg["clusters"][0]["audiences"] = []
        with CheckableConfig(json.dumps(cfg)) as c:
            r = subprocess.run([TOKENGATE, "check", "-c", c.path], capture_output=True, text=True)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)


class Kubernetes(unittest.TestCase):
    def setUp(self):
        self.docs = kubernetes_docs()
        self.deploy = by_kind(self.docs, "Deployment", "tokengate")
        self.pod = self.deploy["spec"]["template"]["spec"]
        self.container = self.pod["containers"][0]

    def test_image_is_the_one_image_sh_builds(self):
        self.assertEqual(self.container["image"], f"tokengate:{tokengate_version()}")
        kust = load_yaml("examples", "kubernetes", "kustomization.yaml")[0]
        self.assertEqual(kust["images"], [{"name": "tokengate", "newTag": tokengate_version()}])

    def test_kustomization_lists_every_tokengate_file(self):
        kust = load_yaml("examples", "kubernetes", "kustomization.yaml")[0]
        files = {os.path.basename(p) for p in glob.glob(source_path("examples", "kubernetes", "*.yaml"))}
        self.assertEqual(set(kust["resources"]), files - {"kustomization.yaml", "client.yaml"})

    def test_no_replicas_beside_the_hpa(self):
        hpa = by_kind(self.docs, "HorizontalPodAutoscaler", "tokengate")
        self.assertEqual(hpa["spec"]["scaleTargetRef"], {"apiVersion": "apps/v1", "kind": "Deployment",
                                                         "name": "tokengate"})
        self.assertNotIn("replicas", self.deploy["spec"])

    def test_hpa_cpu_and_workers_agree(self):
        hpa = by_kind(self.docs, "HorizontalPodAutoscaler", "tokengate")
        [metric] = hpa["spec"]["metrics"]
        self.assertEqual(metric["resource"]["name"], "cpu")
        self.assertEqual(metric["resource"]["target"]["type"], "Utilization")
        self.assertTrue(50 <= metric["resource"]["target"]["averageUtilization"] <= 90)
        res = self.container["resources"]
        # Utilization is a share of the request: it must be the CPUs the pod may use.
        self.assertEqual(cpu_cores(res["requests"]["cpu"]), cpu_cores(res["limits"]["cpu"]))
        workers = json.loads(configmap_config())["workers"]
        self.assertEqual(workers, cpu_cores(res["limits"]["cpu"]))
        self.assertLessEqual(hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
        pdb = by_kind(self.docs, "PodDisruptionBudget", "tokengate")
        self.assertLess(pdb["spec"]["minAvailable"], hpa["spec"]["minReplicas"])

    def test_memory_limit_holds_the_configured_bounds(self):
        # README, Operating it: request memory is bounded by workers x
        # max_buffered_bytes_per_worker; a cached token costs about 3.7 KiB.
        cfg = json.loads(configmap_config())
        worst = cfg["workers"] * (cfg.get("max_buffered_bytes_per_worker", 64 << 20)
                                  + cfg.get("token_cache", {}).get("size", 10000) * 4096) + (32 << 20)
        res = self.container["resources"]
        self.assertEqual(res["requests"]["memory"], res["limits"]["memory"])
        limit = res["limits"]["memory"]
        self.assertTrue(limit.endswith("Mi"), limit)
        self.assertGreaterEqual(int(limit[:-2]) << 20, worst)

    def test_namespaces_enforce_restricted_and_pods_meet_it(self):
        namespaces = [d for d in self.docs if d["kind"] == "Namespace"]
        self.assertEqual({n["metadata"]["name"] for n in namespaces}, {"tokengate-system", "shop"})
        for ns in namespaces:
            labels = ns["metadata"].get("labels", {})
            for mode in ("enforce", "audit", "warn"):
                self.assertEqual(labels.get(f"pod-security.kubernetes.io/{mode}"), "restricted", ns)
        # What the restricted profile asks of every pod in them.
        for d in self.docs:
            if d["kind"] != "Deployment":
                continue
            pod = d["spec"]["template"]["spec"]
            with self.subTest(deployment=d["metadata"]["name"]):
                self.assertTrue(pod["securityContext"]["runAsNonRoot"])
                self.assertIn(pod["securityContext"]["seccompProfile"]["type"], ("RuntimeDefault", "Localhost"))
                for key in ("hostNetwork", "hostPID", "hostIPC"):
                    self.assertFalse(pod.get(key, False))
                for v in pod.get("volumes", []):
                    self.assertNotIn("hostPath", v)
                for c in pod["containers"]:
                    sc = c["securityContext"]
                    self.assertIs(sc["allowPrivilegeEscalation"], False)
                    self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
                    self.assertNotIn("add", sc["capabilities"])
                    self.assertFalse(sc.get("privileged", False))

    def test_services_select_the_pods_and_reach_the_port(self):
        labels = self.deploy["spec"]["template"]["metadata"]["labels"]
        port = {p["name"]: p["containerPort"] for p in self.container["ports"]}
        listen = json.loads(configmap_config())["listen"]
        self.assertEqual(int(listen.rsplit(":", 1)[1]), port["grpc"])
        for name in ("tokengate", "tokengate-headless"):
            svc = by_kind(self.docs, "Service", name)
            self.assertLessEqual(svc["spec"]["selector"].items(), labels.items())
            [p] = svc["spec"]["ports"]
            self.assertIn(p["targetPort"], ("grpc", port["grpc"]))
        self.assertEqual(by_kind(self.docs, "Service", "tokengate-headless")["spec"]["clusterIP"], "None")
        self.assertNotIn("clusterIP", by_kind(self.docs, "Service", "tokengate")["spec"])

    def test_probes_and_scrape_use_the_admin_endpoint(self):
        port = {p["name"]: p["containerPort"] for p in self.container["ports"]}
        admin = json.loads(configmap_config())["admin_listen"]
        self.assertEqual(int(admin.rsplit(":", 1)[1]), port["admin"])
        ready = self.container["readinessProbe"]["httpGet"]
        live = self.container["livenessProbe"]["httpGet"]
        self.assertEqual((ready["path"], port.get(ready["port"], ready["port"])), ("/readyz", port["admin"]))
        self.assertEqual((live["path"], port.get(live["port"], live["port"])), ("/healthz", port["admin"]))
        notes = self.deploy["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(notes["prometheus.io/scrape"], "true")
        self.assertEqual(int(notes["prometheus.io/port"]), port["admin"])
        self.assertEqual(notes["prometheus.io/path"], "/metrics")


class GrafanaDashboard(unittest.TestCase):
    def test_every_metric_it_charts_is_documented(self):
        import re
        dash = json.loads(read_text("examples", "grafana", "tokengate-dashboard.json"))
        exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        self.assertGreater(len(exprs), 10)
        readme = read_text("README.md")
        documented = set(re.findall(r"`((?:tokengate|process)_[a-z_]+)`", readme))
        used = set()
        for e in exprs:
            used |= {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"\b(?:tokengate|process)_[a-z_]+", e)}
        self.assertEqual(used - documented, set())
        self.assertIn("tokengate_decisions_total", used)
        self.assertIn("tokengate_check_duration_seconds", used)


def service_fqdn(docs, name):
    svc = by_kind(docs, "Service", name)
    return f'{name}.{svc["metadata"]["namespace"]}.svc.cluster.local', svc["spec"]["ports"][0]["port"]


class Envoy(unittest.TestCase):
    def tokengate_cluster(self, envoy):
        [c] = [c for c in envoy["static_resources"]["clusters"] if c["name"] == "tokengate"]
        return c

    def ext_authz(self, envoy):
        [f] = [f for f in walk(envoy) if f.get("name") == "envoy.filters.http.ext_authz"]
        return f["typed_config"]

    def test_kubernetes_variant_resolves_the_headless_service(self):
        envoy = load_yaml("examples", "envoy", "envoy-kubernetes.yaml")[0]
        c = self.tokengate_cluster(envoy)
        self.assertEqual(c["type"], "STRICT_DNS")
        [ep] = [e for e in walk(c) if "socket_address" in e]
        host, port = service_fqdn(kubernetes_docs(), "tokengate-headless")
        self.assertEqual((ep["socket_address"]["address"], ep["socket_address"]["port_value"]), (host, port))
        self.assertIn("http2_protocol_options", json.dumps(c))
        self.assertEqual(c["health_checks"][0]["grpc_health_check"]["service_name"],
                         "envoy.service.auth.v3.Authorization")

    def test_every_static_cluster_has_ip_addresses(self):
        for name in ("envoy.yaml", "envoy-kubernetes.yaml"):
            envoy = load_yaml("examples", "envoy", name)[0]
            for c in envoy["static_resources"]["clusters"]:
                if c.get("type", "STATIC") != "STATIC":
                    continue
                for e in walk(c):
                    if "socket_address" in e:
                        with self.subTest(file=name, cluster=c["name"]):
                            parts = e["socket_address"]["address"].replace(":", ".").split(".")
                            self.assertTrue(all(p.isalnum() and not p.isalpha() for p in parts if p),
                                            e["socket_address"]["address"])

    def test_fail_closed_and_every_route_names_a_configured_cluster(self):
        for name, config in (("envoy.yaml", read_text("examples", "demo", "config.json")),
                             ("envoy-kubernetes.yaml", configmap_config())):
            envoy = load_yaml("examples", "envoy", name)[0]
            self.assertIs(self.ext_authz(envoy)["failure_mode_allow"], False)
            clusters = {c["name"] for c in json.loads(config)["clusters"]}
            routes = routes_with_clusters(envoy)
            self.assertGreaterEqual(len(routes), 2)
            for match, cluster in routes:
                with self.subTest(file=name, route=match):
                    self.assertIn(cluster, clusters)


class Istio(unittest.TestCase):
    def setUp(self):
        self.policy = load_yaml("examples", "istio", "authorization-policy.yaml")[0]
        self.filter = load_yaml("examples", "istio", "envoyfilter.yaml")[0]
        self.mesh = load_yaml("examples", "istio", "meshconfig.yaml")[0]["spec"]["meshConfig"]

    def test_provider_points_at_the_clusterip_service(self):
        [p] = [p for p in self.mesh["extensionProviders"] if p["name"] == self.policy["spec"]["provider"]["name"]]
        grpc = p["envoyExtAuthzGrpc"]
        host, port = service_fqdn(kubernetes_docs(), "tokengate")
        self.assertEqual((grpc["service"], grpc["port"]), (host, port))
        self.assertIs(grpc["failOpen"], False)

    def test_client_host_is_routed_by_a_wildcard(self):
        # The client calls https://orders.cluster-a.example.com/...: the ConfigMap routes that host with a
        # wildcard entry of cluster-a (exact entries first, then the longest "*." suffix).
        client = read_text("examples", "kubernetes", "client.yaml")
        host = re.search(r"https://([a-z0-9.-]+)/", client).group(1)
        clusters = json.loads(configmap_config())["clusters"]
        exact = [c["name"] for c in clusters if host in c.get("hosts", [])]
        wild = sorted(((len(h), c["name"]) for c in clusters for h in c.get("hosts", [])
                       if h.startswith("*.") and host.endswith(h[1:]) and len(host) > len(h) - 1), reverse=True)
        self.assertEqual(exact, [])
        self.assertTrue(wild, f"no wildcard host holds {host}")
        self.assertEqual(wild[0][1], "cluster-a")

    def test_path_normalization_merges_slashes(self):
        self.assertEqual(self.mesh["pathNormalization"]["normalization"], "MERGE_SLASHES")

    def test_peer_binding_config_is_the_base_plus_the_binding(self):
        [cm] = load_yaml("examples", "istio", "configmap-peer-binding.yaml")
        self.assertEqual(cm["metadata"], by_kind(kubernetes_docs(), "ConfigMap", "tokengate-config")["metadata"])
        cfg = json.loads(cm["data"]["config.json"])
        ExampleConfigs.check(self, cm["data"]["config.json"])
        for c in cfg["clusters"]:
            self.assertEqual(c.pop("peer_binding"), {"mode": "spiffe", "trust_domain": "cluster.local"})
        admin = [r for r in cfg["rules"] if r["name"] == "admin-is-ops"][0]
        self.assertEqual(admin.pop("peer_binding"), {"required": True})
        self.assertEqual(cfg, json.loads(configmap_config()), "configmap-peer-binding.yaml drifted from the base")
        kustomization = load_yaml("examples", "istio", "kustomization.yaml")[0]
        self.assertEqual(kustomization["resources"], ["../kubernetes"])
        self.assertEqual(kustomization["patches"], [{"path": "configmap-peer-binding.yaml"}])

    def test_gateway_requests_are_checked_at_the_gateway(self):
        # Past the gateway the peer is the gateway: the sidecar skips it, the gateway checks those requests.
        sidecar, gateway = load_yaml("examples", "istio", "authorization-policy.yaml")
        gateway_principal = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
        [rule] = sidecar["spec"]["rules"]
        self.assertEqual(rule["from"], [{"source": {"notPrincipals": [gateway_principal]}}])
        self.assertEqual((gateway["spec"]["action"], gateway["spec"]["provider"]["name"]),
                         ("CUSTOM", sidecar["spec"]["provider"]["name"]))
        self.assertEqual(gateway["spec"]["selector"]["matchLabels"], {"istio": "ingressgateway"})
        hosts = gateway["spec"]["rules"][0]["to"][0]["operation"]["hosts"]
        clusters = json.loads(configmap_config())["clusters"]
        for host in hosts:
            self.assertTrue(any(host.endswith(h[1:]) for c in clusters for h in c["hosts"] if h.startswith("*.")),
                            host)

    def test_envoyfilter_names_a_configured_cluster_on_the_policy_workloads(self):
        self.assertEqual(self.filter["apiVersion"], "networking.istio.io/v1alpha3")
        self.assertEqual(self.filter["metadata"]["namespace"], self.policy["metadata"]["namespace"])
        self.assertEqual(self.filter["spec"]["workloadSelector"]["labels"],
                         self.policy["spec"]["selector"]["matchLabels"])
        [patch] = self.filter["spec"]["configPatches"]
        self.assertEqual(patch["applyTo"], "HTTP_ROUTE")
        self.assertEqual(patch["match"]["context"], "SIDECAR_INBOUND")
        self.assertEqual(patch["patch"]["operation"], "MERGE")
        per = patch["patch"]["value"]["typed_per_filter_config"]["envoy.filters.http.ext_authz"]
        self.assertEqual(per["@type"],
                         "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute")
        cluster = per["check_settings"]["context_extensions"]["cluster"]
        self.assertIn(cluster, {c["name"] for c in json.loads(configmap_config())["clusters"]})


if __name__ == "__main__":
    unittest.main()
