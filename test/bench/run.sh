#!/usr/bin/env bash
# The performance benchmark of issue "check path at the speed of HTTP/2 and of
# the signature math": builds Release, then runs bench.py, which pins the
# server to CPU 0 and h2load to CPU 1 and prints one table plus a JSON line.
# Usage: test/bench/run.sh [--requests N] [--quick] [--observability] [--http]
set -euo pipefail
cd "$(dirname "$0")/../.."

scripts/setup.sh bench
build=${BUILD_DIR:-build-bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTOKENGATE_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
export TOKENGATE_BIN="$PWD/$build/tokengate"
export TG_MINT_BIN="$PWD/$build/test/support/tg-mint"
export TOKENGATE_PROTO_DIR="$PWD/proto"
# Heap calls are counted by a preloaded counter (test/bench/tg_malloc_count.c).
export TG_MALLOC_COUNT="$PWD/$build/tg_malloc_count.so"
cc -std=c11 -O2 -shared -fPIC -o "$TG_MALLOC_COUNT" test/bench/tg_malloc_count.c -ldl
ulimit -n 8192 2>/dev/null || true
exec /usr/bin/python3 test/bench/bench.py "$@"
