#!/usr/bin/env bash
# The performance benchmark of issue "check path at the speed of HTTP/2 and of
# the signature math": builds Release, then runs bench.py, which pins the
# server to CPU 0 and h2load to CPU 1 and prints one table plus a JSON line.
# Usage: test/bench/run.sh [--requests N] [--quick] [--observability]
set -euo pipefail
cd "$(dirname "$0")/../.."

scripts/setup.sh bench
build=${BUILD_DIR:-build-bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTOKENGATE_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
export TOKENGATE_BIN="$PWD/$build/tokengate"
export TG_MINT_BIN="$PWD/$build/test/support/tg-mint"
export TOKENGATE_PROTO_DIR="$PWD/proto"
ulimit -n 8192 2>/dev/null || true
exec /usr/bin/python3 test/bench/bench.py "$@"
