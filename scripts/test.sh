#!/usr/bin/env bash
# Sets up and runs every test, as CI does (.ci/run):
# 1. ThreadSanitizer build of the server, driven by the integration suites
#    (its worker threads are where data races would live; Criterion's runner
#    itself cannot run under TSan);
# 2. AddressSanitizer + UndefinedBehaviorSanitizer build with -Werror, and the
#    whole suite: Criterion unit tests, CLI tests, fuzz corpus replays,
#    integration tests against the real binary with a Python gRPC client, and
#    an h2load run;
# 3. the mutation check (test/mutation/run.py): one-line breaks of the
#    product's claims, each of which the tests it names must catch, on an
#    incremental Release + ASan build in build-mutation/.
# Extra arguments go to the second ctest (e.g. -R integration), and a run
# given them skips the mutation check.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh test
# buildah, so the image test (test/ship) runs here as on every CI machine.
scripts/setup.sh image
jobs=$(nproc)

cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOKENGATE_TSAN=ON -DTOKENGATE_WERROR=ON -DTOKENGATE_TESTS=ON >/dev/null
cmake --build build-tsan -j"$jobs" --target tokengate tg-mint
TSAN_OPTIONS="halt_on_error=1 exitcode=66" ctest --test-dir build-tsan -L integration --no-tests=error --output-on-failure

build=${BUILD_DIR:-build-test}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DTOKENGATE_SANITIZE=ON -DTOKENGATE_WERROR=ON -DTOKENGATE_TESTS=ON >/dev/null
cmake --build "$build" -j"$jobs"
ctest --test-dir "$build" --no-tests=error --output-on-failure -j"$jobs" "$@"

if [ $# -eq 0 ]; then
  python3 test/mutation/run.py -j"$jobs"
else
  echo "test.sh: ctest arguments given, mutation check skipped" >&2
fi
