"""The mutual-TLS examples agree with each other and with the plain ones:
the Kubernetes overlay (examples/kubernetes-mtls/: cert-manager certificates,
the Deployment patch, the config with "tls") and Envoy's tokengate cluster
over mutual TLS (examples/envoy/tokengate-cluster-mtls.yaml). The overlay's
config passes `tokengate check` with certificates shaped like cert-manager's
Secrets, made with the openssl CLI at test time."""

import json
import os
import subprocess
import unittest

import yaml

from ship_support import TOKENGATE, CheckableConfig, source_path


def load_yaml(*parts):
    with open(source_path(*parts), encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def certificate(name):
    [c] = [d for d in load_yaml("examples", "kubernetes-mtls", "certificates.yaml")
           if d["kind"] == "Certificate" and d["metadata"]["name"] == name]
    return c["spec"]


def mtls_config():
    [cm] = load_yaml("examples", "kubernetes-mtls", "configmap-tls.yaml")
    return json.loads(cm["data"]["config.json"])


def envoy_tls():
    [cluster] = load_yaml("examples", "envoy", "tokengate-cluster-mtls.yaml")
    return cluster, cluster["transport_socket"]["typed_config"]


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class KubernetesMtls(unittest.TestCase):
    def test_config_is_the_base_config_plus_tls(self):
        [base] = [d for d in load_yaml("examples", "kubernetes", "configmap.yaml") if d["kind"] == "ConfigMap"]
        cfg = mtls_config()
        tls = cfg.pop("tls")
        self.assertEqual(cfg, json.loads(base["data"]["config.json"]), "configmap-tls.yaml drifted from the base")
        self.assertEqual(tls["allowed_client_sans"], certificate("tokengate-client")["uris"])

    def test_deployment_mounts_the_server_secret_where_the_config_looks(self):
        [patch] = load_yaml("examples", "kubernetes-mtls", "deployment-tls.yaml")
        spec = patch["spec"]["template"]["spec"]
        [volume] = spec["volumes"]
        [secret] = [s["secret"] for s in volume["projected"]["sources"] if "secret" in s]
        self.assertEqual(secret["name"], certificate("tokengate-server")["secretName"])
        mounted = {i["path"] for i in secret["items"]}
        tls = mtls_config()["tls"]
        self.assertEqual(mounted, {tls["cert_file"], tls["key_file"], tls["client_ca_file"]})
        [container] = spec["containers"]
        # The base's probes (admin endpoint, plain HTTP) stay: none of them may be replaced by a
        # gRPC probe, which cannot speak TLS, or merged into a probe with two handlers.
        for probe in ("readinessProbe", "livenessProbe"):
            self.assertNotIn(probe, container, "the overlay keeps the base's admin-endpoint probes")

    def test_config_passes_check_with_cert_manager_shaped_secrets(self):
        server, client = certificate("tokengate-server"), certificate("tokengate-client")
        with CheckableConfig(json.dumps(mtls_config())) as cfg:
            tls = os.path.join(cfg.folder, "tls")
            os.mkdir(tls)
            openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                    "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=tokengate-ca", cwd=tls)
            with open(os.path.join(tls, "ext"), "w", encoding="ascii") as f:
                f.write("subjectAltName=" + ",".join(f"DNS:{n}" for n in server["dnsNames"]) + "\n")
            openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "tls.key",
                    "-out", "tls.csr", "-subj", "/CN=tokengate", cwd=tls)
            openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "7",
                    "-out", "tls.crt", "-days", "2", "-extfile", "ext", cwd=tls)
            out = subprocess.run([TOKENGATE, "check", "-c", cfg.path], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(", mutual TLS", out.stdout)
        self.assertTrue(client["uris"][0].startswith("spiffe://"))


class IstioMtls(unittest.TestCase):
    def test_strict_mtls_and_callers_on_the_tokengate_pods(self):
        peer, policy = load_yaml("examples", "istio", "tokengate-mtls.yaml")
        [deployment] = [d for d in load_yaml("examples", "kubernetes", "deployment.yaml") if d["kind"] == "Deployment"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        for doc in (peer, policy):
            self.assertEqual(doc["metadata"]["namespace"], deployment["metadata"]["namespace"])
            for key, value in doc["spec"]["selector"]["matchLabels"].items():
                self.assertEqual(labels.get(key), value)
        self.assertEqual(peer["spec"]["mtls"]["mode"], "STRICT")
        self.assertEqual(policy["spec"]["action"], "ALLOW")
        checked, gateway = load_yaml("examples", "istio", "authorization-policy.yaml")
        [rule] = policy["spec"]["rules"]
        namespaces = [n for s in rule["from"] for n in s["source"].get("namespaces", [])]
        self.assertIn(checked["metadata"]["namespace"], namespaces, "the protected workloads' proxies call tokengate")
        principals = [p for s in rule["from"] for p in s["source"].get("principals", [])]
        self.assertIn("cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account", principals,
                      f"the gateway ({gateway['metadata']['name']}) calls tokengate too")


class EnvoyMtls(unittest.TestCase):
    def test_same_cluster_as_envoy_kubernetes_plus_tls(self):
        cluster, _ = envoy_tls()
        [envoy] = load_yaml("examples", "envoy", "envoy-kubernetes.yaml")
        [plain] = [c for c in envoy["static_resources"]["clusters"] if c["name"] == "tokengate"]
        without_tls = dict(cluster)
        del without_tls["transport_socket"]
        self.assertEqual(without_tls, plain, "tokengate-cluster-mtls.yaml drifted from envoy-kubernetes.yaml")

    def test_alpn_client_certificate_and_server_name(self):
        _, tls = envoy_tls()
        self.assertEqual(tls["@type"],
                         "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext")
        common = tls["common_tls_context"]
        self.assertEqual(common["alpn_protocols"], ["h2"])
        [cert] = common["tls_certificates"]
        self.assertTrue(cert["certificate_chain"]["filename"].endswith("/tls.crt"))
        self.assertTrue(cert["private_key"]["filename"].endswith("/tls.key"))
        self.assertTrue(common["validation_context"]["trusted_ca"]["filename"].endswith("/ca.crt"))
        names = certificate("tokengate-server")["dnsNames"]
        self.assertIn(tls["sni"], names)
        [matcher] = common["validation_context"]["match_typed_subject_alt_names"]
        self.assertIn(matcher["matcher"]["exact"], names)


if __name__ == "__main__":
    unittest.main()
