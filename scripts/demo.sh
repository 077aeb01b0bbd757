#!/usr/bin/env bash
# A tour of tokengate on one machine: installs what it needs, builds a
# Release binary, makes keys for two "clusters", starts `tokengate serve`
# and sends it real ext_authz Checks the way Envoy would, printing each
# decision and why. Keys, tokens and the config copy live in a temporary
# folder that is removed at the end.
#
# Usage: scripts/demo.sh          (BUILD_DIR=... to build elsewhere than build/)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

scripts/setup.sh demo

build=$(realpath -m "${BUILD_DIR:-build}")
py=/usr/bin/python3
echo "== building tokengate (Release) in $build/"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTOKENGATE_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target tokengate tg-mint >/dev/null
tokengate=$build/tokengate
mint=$build/test/support/tg-mint

work=$(mktemp -d -t tokengate-demo.XXXXXX)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== keys: cluster-a signs with RSA-2048 (JWKS), cluster-b with P-256 (PEM)"
"$mint" keygen --type rsa2048 --private "$work/cluster-a.key.pem" --jwks "$work/cluster-a.jwks.json" --kid cluster-a-2024
"$mint" keygen --type p256 --private "$work/cluster-b.key.pem" --public "$work/cluster-b.pub.pem"

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
sed "s/127\.0\.0\.1:9191/127.0.0.1:$port/" examples/demo/config.json >"$work/config.json"
"$tokengate" check -c "$work/config.json"

echo "== starting tokengate serve on 127.0.0.1:$port"
"$tokengate" serve -c "$work/config.json" 2>"$work/server.log" &
server_pid=$!
check() { "$py" examples/demo/check.py --target "127.0.0.1:$port" --proto-dir "$repo/proto" "$@" || true; }
for _ in $(seq 1 50); do
  if "$py" examples/demo/check.py --target "127.0.0.1:$port" --health >/dev/null 2>&1; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { echo "tokengate exited:"; cat "$work/server.log"; exit 1; }
  sleep 0.2
done

iss_a=https://oidc.cluster-a.example.com
token_a=$("$mint" sign --key "$work/cluster-a.key.pem" --kid cluster-a-2024 --iss "$iss_a" --aud tokengate \
  --namespace shop --service-account web --pod web-5d9c7 --exp-in 600)
expired_a=$("$mint" sign --key "$work/cluster-a.key.pem" --kid cluster-a-2024 --iss "$iss_a" --aud tokengate \
  --namespace shop --service-account web --iat-in -7200 --nbf-in -7200 --exp-in -3600)

step() { printf '\n-- %s\n' "$1"; }
step "1. shop/web from cluster-a calls cluster-a's API with its own token"
check --cluster cluster-a --source 10.1.2.3 --path /orders --token "$token_a"
step "2. the same token replayed against cluster-b (host routing: api.cluster-b.example)"
check --host api.cluster-b.example --source 10.1.2.3 --path /orders --token "$token_a"
step "3. an expired cluster-a token"
check --cluster cluster-a --source 10.1.2.3 --token "$expired_a"
step "4. a valid token, but from a source outside cluster-a's source_cidrs (10.0.0.0/8)"
check --cluster cluster-a --source 203.0.113.7 --token "$token_a"
step "5. no Authorization header at all"
check --cluster cluster-a --source 10.1.2.3
step "6. shop/web on /admin, which only namespace ops may use"
check --cluster cluster-a --source 10.1.2.3 --path /admin/users --token "$token_a"

step "why was 2 denied? tokengate explain walks every check"
"$tokengate" explain -c "$work/config.json" --host api.cluster-b.example --source 10.1.2.3 "$token_a" || true

step "stopping the server (SIGTERM)"
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
echo "tokengate exited with status $status"
echo
echo "decision log (one JSON line per Check on stderr; tokens never logged, only their SHA-256):"
grep '"decision"' "$work/server.log" | head -n 6
[ "$status" -eq 0 ]
