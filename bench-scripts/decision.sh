#!/usr/bin/env bash
# Decision mode, measured: per-decision CPU and latency over HTTP and gRPC,
# and nginx auth_request -> tokengate beside nginx -> tokengate the proxy and
# tokengate alone. Installs nginx, wrk and h2load from Debian if missing,
# builds the release binary, then runs bench-scripts/decision.py.
#   bash bench-scripts/decision.sh                 # ROUNDS=3 DURATION=5
#   TOKENGATE_BIN=/path/to/tokengate ROUNDS=1 bash bench-scripts/decision.sh
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
bash scripts/apt-install.sh "${need[@]}"
if [ "$(nproc)" -lt 2 ]; then echo "needs 2 cores (proxies on 0, load on 1)" >&2; exit 1; fi
[ -n "${TOKENGATE_BIN:-}" ] || cargo build --release --locked -q
exec timeout 1800 python3 bench-scripts/decision.py
