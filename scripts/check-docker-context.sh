#!/usr/bin/env bash
# No Docker engine runs here, so check what an image build depends on: copy
# exactly what the Dockerfile's build stage COPYs (minus .dockerignore) into
# an empty directory and build the binary there with `cargo build --locked`,
# as the image's RUN line does (sharing this checkout's target directory,
# so only the tokengate crate compiles).
set -euo pipefail
cd "$(dirname "$0")/.."
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# COPY lines without --from: every argument but the last is a source.
grep -E '^COPY ' Dockerfile | grep -v -- '--from' | while read -r _ args; do
  read -ra parts <<<"$args"
  for src in "${parts[@]:0:${#parts[@]}-1}"; do
    if grep -qxF "$src" .dockerignore; then
      echo "Dockerfile copies $src, which .dockerignore excludes" >&2
      exit 1
    fi
    cp -r "$src" "$ctx/"
  done
done
(cd "$ctx" && CARGO_TARGET_DIR="$OLDPWD/target" cargo build --locked --quiet --bin tokengate)
echo "docker build context: the Dockerfile's COPY set builds the binary"
