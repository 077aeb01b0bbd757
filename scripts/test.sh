#!/usr/bin/env bash
# Sets up, builds tokengate with AddressSanitizer + UndefinedBehaviorSanitizer
# and -Werror, and runs every test (Criterion unit tests, integration tests
# against the real binary with a Python gRPC client, and an h2load smoke run).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh test
build=${BUILD_DIR:-build-test}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DTOKENGATE_SANITIZE=ON -DTOKENGATE_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "$@"
