#!/usr/bin/env bash
# Installs what tokengate needs from Debian's packages, and nothing that is
# already there. Usage: scripts/setup.sh [build|test|bench|demo|image]
#   build  compiler toolchain and libraries (default; libmicrohttpd for the admin endpoint,
#          http-parser for the HTTP authorization listener, libcurl for remote keys)
#   test   + Criterion, python3-grpcio, python3-cryptography (certificates made at test time), h2load,
#          nginx-light and caddy (the HTTP mode's real proxies) and the tools the tests use
#   bench  + nghttpd, perf tools and what the benchmark script uses
#   demo   build + the Python gRPC client scripts/demo.sh uses
#   image  build + buildah, for scripts/image.sh (and the image test, which
#          runs whenever buildah is installed)
set -euo pipefail

level=${1:-build}
pkgs=(build-essential cmake pkg-config ca-certificates openssl
      libssl-dev libjansson-dev libnghttp2-dev libuv1-dev libmicrohttpd-dev libcurl4-openssl-dev
      protobuf-c-compiler libprotobuf-c-dev libhttp-parser-dev)
case "$level" in
  build) ;;
  test|bench)
    # grpc_tools imports pkg_resources, which --no-install-recommends leaves out.
    pkgs+=(libcriterion-dev python3 python3-grpcio python3-grpc-tools
           python3-protobuf python3-pkg-resources python3-hpack nghttp2-client procps iproute2
           python3-yaml python3-jsonschema groff-base python3-prometheus-client python3-cryptography
           nginx-light caddy)
    [ "$level" = bench ] && pkgs+=(nghttp2-server util-linux time valgrind)
    ;;
  demo) pkgs+=(python3 python3-grpcio python3-grpc-tools python3-protobuf python3-pkg-resources) ;;
  image) pkgs+=(buildah) ;;
  *) echo "usage: $0 [build|test|bench|demo|image]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
