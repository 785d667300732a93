#!/usr/bin/env bash
# Supply chain: `cargo deny check` (advisories, licenses, bans, sources) with
# the policy in deny.toml, offline. The advisory database is a RustSec
# snapshot (files only, no .git) at $TOKENGATE_ADVISORY_DB, by default
# /work/shared/advisory-db on the CI machine; cargo-deny wants a git
# checkout, so the snapshot is committed into a throwaway repository under
# target/ named as cargo-deny names its default database.
set -euo pipefail
cd "$(dirname "$0")/.."

snapshot="${TOKENGATE_ADVISORY_DB:-/work/shared/advisory-db}"
if [ ! -d "$snapshot/crates" ]; then
  echo "no RustSec advisory snapshot at $snapshot (set TOKENGATE_ADVISORY_DB)" >&2
  exit 1
fi
if ! command -v cargo-deny >/dev/null 2>&1; then
  cargo install --locked cargo-deny@0.20.2
fi

db="target/advisory-dbs/advisory-db-3157b0e258782691"
rm -rf "$db"
mkdir -p "$db"
cp -r "$snapshot"/. "$db"/
(
  cd "$db"
  git init -q
  git add -A
  git -c user.name=ci -c user.email=ci@localhost commit -qm "RustSec snapshot"
)
echo "advisories: $(cat "$snapshot/SNAPSHOT" 2>/dev/null || echo "snapshot at $snapshot")"
cargo fetch --locked >/dev/null
cargo deny --offline check
