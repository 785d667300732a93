#!/usr/bin/env bash
# tokengate vs nginx (plain) vs HAProxy 2.6 (plain and jwt_verify), one run on
# this machine. Installs nginx, haproxy and wrk from Debian if missing, builds
# the release binary, then runs bench-scripts/peers.py (which starts, pins and stops
# every process). Takes ~ROUNDS x 22 x (DURATION + 2) s: 8 min by default.
#   bash bench-scripts/peers.sh                      # ROUNDS=3 DURATION=5 TOKENS=1000
#   ROUNDS=1 DURATION=3 ONLY="RS256" bash bench-scripts/peers.sh
#   BASELINE=/tmp/tokengate-old ONLY="public|(HS256|ES256) x1$" bash bench-scripts/peers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [ "$(nproc)" -lt 2 ]; then echo "bench-scripts/peers.sh needs 2 cores (proxy on 0, load on 1)" >&2; exit 1; fi
cargo build --release --locked -q
echo "nginx $(nginx -v 2>&1 | sed 's/.*\///') · $(haproxy -v | head -1 | cut -d' ' -f1-3) · $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2) · $(uname -r)"
exec timeout 1800 python3 bench-scripts/peers.py
