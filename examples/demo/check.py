#!/usr/bin/python3
"""Sends one ext_authz Check to tokengate, shaped like Envoy's, and prints
the decision on one line: "ALLOW|DENY <reason> <http status> <message>".

The protobuf stubs are generated at run time from the project's proto/
folder (grpc_tools), into a temporary folder that is removed on exit.
Exit code: 0 allowed, 1 denied, 2 RPC or usage error.

    check.py --target 127.0.0.1:9191 --cluster cluster-a --source 10.1.2.3 --token TOKEN
    check.py --target 127.0.0.1:9191 --health
"""

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTO = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
ENVOY_PROTOS = [
    "envoy/service/auth/v3/external_auth.proto",
    "envoy/service/auth/v3/attribute_context.proto",
    "envoy/config/core/v3/base.proto",
    "envoy/config/core/v3/address.proto",
    "envoy/type/v3/http_status.proto",
    "google/rpc/status.proto",
]


def load_stubs(proto_dir, out):
    protoc = [sys.executable, "-m", "grpc_tools.protoc"]
    subprocess.run(protoc + ["-I", proto_dir, "--python_out", out] + ENVOY_PROTOS, check=True)
    # health.proto from its own folder: a module path grpc.health.* would clash with grpcio.
    subprocess.run(protoc + ["-I", os.path.join(proto_dir, "grpc", "health", "v1"), "--python_out", out,
                             "health.proto"], check=True)
    sys.path.insert(0, out)
    return (importlib.import_module("envoy.service.auth.v3.external_auth_pb2"),
            importlib.import_module("health_pb2"))


def build_request(ext, args):
    req = ext.CheckRequest()
    attrs = req.attributes
    attrs.source.address.socket_address.address = args.source
    attrs.source.address.socket_address.port_value = 51515
    http = attrs.request.http
    http.method = args.method
    http.path = args.path
    http.host = args.host
    http.scheme = "http"
    http.protocol = "HTTP/1.1"
    http.headers[":authority"] = args.host
    http.headers[":method"] = args.method
    http.headers[":path"] = args.path
    # Envoy forwards the request's x-request-id; tokengate logs it with the decision.
    http.headers["x-request-id"] = args.request_id or str(uuid.uuid4())
    if args.token:
        http.headers["authorization"] = "Bearer " + args.token
    if args.cluster:
        attrs.context_extensions["cluster"] = args.cluster
    return req


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, help="host:port of tokengate")
    parser.add_argument("--proto-dir", default=DEFAULT_PROTO)
    parser.add_argument("--health", action="store_true", help="only ask grpc.health.v1 and print the status")
    parser.add_argument("--cluster", help="context_extensions[cluster], as an Envoy route would set it")
    parser.add_argument("--host", default="api.example", help=":authority of the request")
    parser.add_argument("--source", default="10.1.2.3", help="the client address Envoy saw")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--path", default="/")
    parser.add_argument("--token", help="service-account token (no Authorization header if omitted)")
    parser.add_argument("--request-id", help="x-request-id of the request (default: a random UUID)")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()

    out = tempfile.mkdtemp(prefix="tg-check-stubs-")
    try:
        ext, health = load_stubs(args.proto_dir, out)
        with grpc.insecure_channel(args.target) as channel:
            if args.health:
                call = channel.unary_unary("/grpc.health.v1.Health/Check",
                                           request_serializer=health.HealthCheckRequest.SerializeToString,
                                           response_deserializer=health.HealthCheckResponse.FromString)
                reply = call(health.HealthCheckRequest(service=""), timeout=args.timeout)
                print(health.HealthCheckResponse.ServingStatus.Name(reply.status))
                return 0 if reply.status == health.HealthCheckResponse.SERVING else 1
            call = channel.unary_unary("/envoy.service.auth.v3.Authorization/Check",
                                       request_serializer=ext.CheckRequest.SerializeToString,
                                       response_deserializer=ext.CheckResponse.FromString)
            resp = call(build_request(ext, args), timeout=args.timeout)
    except grpc.RpcError as err:
        print(f"ERROR {err.code().name} {err.details()}")
        return 2
    finally:
        shutil.rmtree(out, ignore_errors=True)

    if resp.status.code == 0:
        headers = {o.header.key: o.header.value for o in resp.ok_response.headers}
        print(f"ALLOW ok 200 {headers.get('x-tokengate-subject', '')} "
              f"(cluster {headers.get('x-tokengate-cluster', '?')})")
        return 0
    reason, _, message = resp.status.message.partition(": ")
    http_status = resp.denied_response.status.code or 403
    print(f"DENY {reason} {http_status} {message}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
