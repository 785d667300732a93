#!/usr/bin/env bash
# Installs Debian packages (no recommends, quietly), through sudo unless root.
# Used by scripts/test.sh and scripts/check-deploy.sh for their missing tools.
set -euo pipefail
(($#)) || exit 0
echo "installing from Debian: $*" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
