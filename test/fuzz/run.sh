#!/usr/bin/env bash
# Runs libFuzzer targets one after another (the machine is shared: one core).
# Usage: test/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
#   BUILD_DIR  a build configured with -DTOKENGATE_FUZZ=ON
#   SECONDS    -max_total_time for each target
#   TARGET     b64 cidr jwt json grpc keys config checkreq path (default: all)
# New inputs go to BUILD_DIR/test/fuzz/work/<target>/ (never into the source
# tree); crashes land in BUILD_DIR/test/fuzz/artifacts/.
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(b64 cidr jwt json grpc keys config checkreq path)
fi
bin="$build/test/fuzz"
mkdir -p "$bin/artifacts"
for t in "${targets[@]}"; do
  work="$bin/work/$t"
  mkdir -p "$work"
  dict=()
  case "$t" in
    jwt) dict=(-dict="$src/jwt.dict") ;;
    json | config) dict=(-dict="$src/json.dict") ;;
  esac
  echo "== fuzz_$t for ${seconds}s"
  "$bin/fuzz_$t" "${dict[@]}" -max_total_time="$seconds" -rss_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$bin/artifacts/$t-" "$work" "$src/corpus/$t" 2>&1 |
    grep -E '^(stat::|==[0-9]+==|SUMMARY|#[0-9]+ +DONE)|^(json|jwt|grpc|cidr|b64|keys|config|checkreq): ' || true
done
