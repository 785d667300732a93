#!/usr/bin/env bash
# Session endpoint latency on both backends: a release tokengate with a
# scratch redis-server on a free port, then bench-scripts/sessions.py (N opens, N
# chained refreshes). Usage: bash bench-scripts/sessions.sh [N]   (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
cargo build --release --locked -q
BIN=target/release/tokengate
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" >/dev/null &
PIDS+=($!)
python3 -m http.server --bind 127.0.0.1 "$(free_port)" >/dev/null 2>&1 & PIDS+=($!)

for backend in memory redis; do
  P=$(free_port); A=$(free_port); C=$(free_port)
  sed -e "s/127.0.0.1:8080/127.0.0.1:$P/; s/127.0.0.1:9090/127.0.0.1:$A/; s/127.0.0.1:9091/127.0.0.1:$C/" \
      -e "s/max_sessions_per_subject: 5/max_sessions_per_subject: 1000/" \
      -e "s#private_key_file: example-keys/#private_key_file: $PWD/config/example-keys/#" \
      config/sessions-demo.yaml > "$TMP/$backend.yaml"
  if [ "$backend" = redis ]; then
    sed -i "s#^  backend: memory#  backend: redis\n  redis: { url: \"redis://127.0.0.1:$RPORT\" }#" "$TMP/$backend.yaml"
  fi
  TOKENGATE_LOG=warn "$BIN" --threads 1 --config "$TMP/$backend.yaml" & PIDS+=($!)
  for _ in $(seq 100); do curl -sf "127.0.0.1:$A/readyz" >/dev/null && break; sleep 0.05; done
  echo "== $backend backend (tokengate --threads 1)"
  python3 bench-scripts/sessions.py "127.0.0.1:$P" "127.0.0.1:$C" "$N"
done
