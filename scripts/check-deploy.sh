#!/usr/bin/env bash
# Checks every file in deploy/ with a real tool, since no Docker engine or
# cluster runs here (README, "Deployment"). Installs what is missing:
# kubectl, promtool, docker-compose and yamllint from Debian; the Kubernetes
# schema validator from PyPI and the Prometheus Operator models from npm, into
# target/deploy-check/. Run by .ci/run after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

work=target/deploy-check
rendered=$work/rendered
mkdir -p "$rendered"

need=()
command -v kubectl >/dev/null 2>&1 || need+=(kubectl)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v yamllint >/dev/null 2>&1 || need+=(yamllint)
{ command -v nginx || [ -x /usr/sbin/nginx ]; } >/dev/null 2>&1 || need+=(nginx-light)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
bash scripts/apt-install.sh "${need[@]}"

# Tool environments, rebuilt only when their pinned versions change.
stamp() { cat "$@" | sha256sum | cut -d' ' -f1; }
req=scripts/deploy-check/requirements.txt
if [ "$(cat "$work/venv.stamp" 2>/dev/null)" != "$(stamp "$req")" ]; then
  rm -rf "$work/venv"
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  stamp "$req" >"$work/venv.stamp"
fi
node_dir=$work/node
pkg=(scripts/deploy-check/package.json scripts/deploy-check/package-lock.json)
if [ "$(cat "$work/node.stamp" 2>/dev/null)" != "$(stamp "${pkg[@]}")" ]; then
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  cp "${pkg[@]}" "$node_dir/"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
  stamp "${pkg[@]}" >"$work/node.stamp"
fi
cp scripts/deploy-check/crds.mjs "$node_dir/"
py=$work/venv/bin/python

echo "== yamllint"
yamllint --strict -c .yamllint.yaml deploy config

echo "== kubectl kustomize (every kustomization renders)"
for k in base classic monitoring decision ha; do
  kubectl kustomize "deploy/kubernetes/$k" >"$rendered/$k.yaml"
  echo "ok   deploy/kubernetes/$k: $(grep -c '^kind:' "$rendered/$k.yaml") objects"
done

echo "== Kubernetes schemas (kubernetes-validate --strict, offline)"
# The native sidecar needs 1.29; the classic variant must also hold on the
# oldest schema bundled (1.25). Both against the newest.
validate() { "$work/venv/bin/kubernetes-validate" --strict --quiet -k "$1" "$2"; echo "ok   $2 against $1"; }
newest=$("$work/venv/bin/kubernetes-validate" --help | sed -n 's/.*Defaults to \([0-9.]*\).*/\1/p' | head -1)
validate 1.29.0 "$rendered/base.yaml"
validate "$newest" "$rendered/base.yaml"
validate 1.25.0 "$rendered/classic.yaml"
validate "$newest" "$rendered/classic.yaml"
validate "$newest" "$rendered/decision.yaml"
validate 1.29.0 "$rendered/ha.yaml"
validate "$newest" "$rendered/ha.yaml"
# The ingress examples' core objects (Ingress, ConfigMap); their custom
# resources are checked below.
"$py" scripts/deploy-check/core-objects.py deploy/ingress/kubernetes/*.yaml >"$rendered/ingress-core.yaml"
validate "$newest" "$rendered/ingress-core.yaml"

echo "== custom resources: Prometheus Operator, Traefik, Istio (kubernetes-models, tsc for unknown fields)"
node "$node_dir/crds.mjs" "$rendered/monitoring.yaml" deploy/ingress/kubernetes/*.yaml

echo "== promtool: alert rules check and unit tests"
"$py" - "$rendered/monitoring.yaml" "$rendered/rules.yaml" <<'EOF'
import sys, yaml
rules = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "PrometheusRule"]
assert len(rules) == 1, "expected one PrometheusRule"
yaml.safe_dump(rules[0]["spec"], open(sys.argv[2], "w"), sort_keys=False)
EOF
promtool check rules "$rendered/rules.yaml"
cp deploy/kubernetes/monitoring/alerts_test.yaml "$rendered/"
promtool test rules "$rendered/alerts_test.yaml"

echo "== Grafana dashboard: JSON parses, every query is valid PromQL"
# As recording rules, so Prometheus's own parser reads each query; the
# metric names are checked against a live /metrics by tests/deploy.rs.
"$py" - deploy/grafana/tokengate.json "$rendered/dashboard-rules.yaml" <<'EOF'
import json, sys, yaml
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
assert exprs, "no queries"
subst = {"$__rate_interval": "5m", "$namespace": ".*", "$pod": ".*"}
rules = []
for i, e in enumerate(exprs):
    for k, v in subst.items():
        e = e.replace(k, v)
    assert "$" not in e, f"unknown variable in {e}"
    rules.append({"record": f"dashboard:query_{i}", "expr": e})
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
print(f"ok   {len(exprs)} queries in {len(dash['panels'])} panels")
EOF
promtool check rules "$rendered/dashboard-rules.yaml"

echo "== docker-compose config"
(cd deploy/compose && docker-compose config -q && docker-compose config) >"$rendered/compose.yaml"
echo "ok   deploy/compose/docker-compose.yaml"
(cd deploy/compose && docker-compose -f docker-compose.yaml -f docker-compose.ha.yaml config -q)
echo "ok   deploy/compose/docker-compose.yaml + docker-compose.ha.yaml (Sentinel)"
(cd deploy/compose && docker-compose -f docker-compose.browser.yaml config -q)
echo "ok   deploy/compose/docker-compose.browser.yaml (browser sign-in)"
(cd deploy/ingress/compose && docker-compose config -q)
echo "ok   deploy/ingress/compose/docker-compose.yaml"

echo "== tokengate check-config on the deployed configs"
tokengate=(cargo run --locked --quiet --)
"${tokengate[@]}" check-config deploy/kubernetes/components/tokengate/tokengate.yaml
# The HA overlay's config replaces the component's, beside the same keys/.
ha_copy=$(mktemp -d)
cp -r deploy/kubernetes/components/tokengate/. "$ha_copy/"
cp deploy/kubernetes/ha/tokengate-ha.yaml "$ha_copy/tokengate.yaml"
"${tokengate[@]}" check-config "$ha_copy/tokengate.yaml"
rm -rf "$ha_copy"
echo "== shell scripts of the HA overlay (sh -n)"
for f in deploy/kubernetes/ha/*.sh; do sh -n "$f" && echo "ok   $f"; done
# The compose secret is generated by the walk-through, never committed.
compose_copy=$(mktemp -d)
trap 'rm -rf "$compose_copy"' EXIT
cp -r deploy/compose/. "$compose_copy/"
openssl rand -hex 32 >"$compose_copy/secrets/hs256.key"
"${tokengate[@]}" check-config "$compose_copy/tokengate.yaml"
"${tokengate[@]}" check-config "$compose_copy/tokengate-ha.yaml"
openssl rand -hex 32 >"$compose_copy/secrets/web-client-secret"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$compose_copy/secrets/session-signing.pem" 2>/dev/null
"${tokengate[@]}" check-config "$compose_copy/tokengate-browser.yaml"
"${tokengate[@]}" check-config deploy/kubernetes/decision/tokengate.yaml
mkdir -p "$compose_copy/ingress"
cp -r deploy/ingress/compose/. "$compose_copy/ingress/"
openssl rand -hex 32 >"$compose_copy/ingress/secrets/hs256.key"
openssl rand -hex 32 >"$compose_copy/ingress/secrets/decision-secret"
"${tokengate[@]}" check-config "$compose_copy/ingress/tokengate.yaml"

echo "== nginx -t on the decision-mode compose example"
# The compose service names resolve only inside compose: loopback stands in.
mkdir -p "$compose_copy/nginx/logs"
sed -e 's#http://app:#http://127.0.0.1:#; s#http://tokengate:#http://127.0.0.1:#' \
  -e "s#pid /tmp/nginx.pid#pid $compose_copy/nginx/nginx.pid#" \
  deploy/ingress/compose/nginx.conf >"$compose_copy/nginx/nginx.conf"
nginx=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx" -t -q -p "$compose_copy/nginx" -c "$compose_copy/nginx/nginx.conf" -e "$compose_copy/nginx/logs/error.log"
echo "ok   deploy/ingress/compose/nginx.conf"

echo "== cross-checks (scripts/deploy-check/semantics.py)"
"$py" scripts/deploy-check/semantics.py kubernetes native "$rendered/base.yaml" "$rendered/monitoring.yaml"
"$py" scripts/deploy-check/semantics.py kubernetes classic "$rendered/classic.yaml" "$rendered/monitoring.yaml"
"$py" scripts/deploy-check/semantics.py compose "$rendered/compose.yaml" deploy/compose/tokengate.yaml deploy/compose/prometheus.yml
"$py" scripts/deploy-check/decision.py "$rendered/decision.yaml" deploy/ingress deploy/ingress/compose

echo "deploy/: every check passed"
