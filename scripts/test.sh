#!/usr/bin/env bash
# Runs every test on a fresh machine: installs the external tools the tests
# drive (Debian's prometheus package: promtool, and the Prometheus server that
# tests/deploy.rs has scrape tokengate; redis-server; python3 for the README's
# session client), then
# `cargo test`. Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || need+=(prometheus)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v python3 >/dev/null 2>&1 || need+=(python3)
bash scripts/apt-install.sh "${need[@]}"

exec cargo test --locked "$@"
