#!/usr/bin/env bash
# User-space instructions per request under callgrind (deterministic; for
# judging small changes on a noisy machine). Installs valgrind and nginx if
# missing. TOKENGATE_BIN=/path/to/other/binary compares another build.
#   bash bench-scripts/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
[ -n "${TOKENGATE_BIN:-}" ] || cargo build --release --locked -q
exec timeout 900 python3 bench-scripts/instructions.py
