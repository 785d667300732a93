#!/usr/bin/env bash
# Benchmark (not a test): a mirror of 1,000,000 revocations.
# Reports time and peak RSS to load them at start-up versus an empty mirror,
# and request throughput through the proxy with 1M entries versus none.
# Starts its own redis-server and nginx upstream on scratch ports and stops
# everything it started. Needs: redis-server, redis-cli, nginx, wrk, python3.
#   bash bench-scripts/revocation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
RPORT=16411; UPORT=13011; PPORT=18011; APORT=19011
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; redis-cli -p $RPORT shutdown nosave >/dev/null 2>&1 || true; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release -q
redis-server --port $RPORT --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --dir "$work" >/dev/null
cat > "$work/nginx.conf" <<NGX
worker_processes 1; pid $work/nginx.pid; error_log $work/error.log; events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$UPORT; location / { return 200 "ok\n"; } } }
NGX
taskset -c 1 nginx -c "$work/nginx.conf"
sleep 0.3

# Load N jti entries as RESP through redis-cli --pipe (1000 members a command).
python3 - "$N" <<'PY' | redis-cli -p $RPORT --pipe >/dev/null
import sys, time
n = int(sys.argv[1]); exp = str(int(time.time()) + 7200); out = sys.stdout.buffer
def cmd(*a):
    out.write(b"*%d\r\n" % len(a))
    for x in a:
        x = x.encode(); out.write(b"$%d\r\n%s\r\n" % (len(x), x))
for start in range(0, n, 1000):
    args = ["ZADD", "{full}:revoked:jti"]
    for i in range(start, min(n, start + 1000)):
        args += [exp, "bulk-%d" % i]
    cmd(*args)
cmd("SET", "{full}:seq", str(n))
PY
echo "redis: $(redis-cli -p $RPORT ZCARD '{full}:revoked:jti') entries"

run_case() { # prefix label
  local prefix=$1 label=$2
  sed -e "s/127.0.0.1:8080/127.0.0.1:$PPORT/; s/127.0.0.1:9090/127.0.0.1:$APORT/; s/127.0.0.1:3000/127.0.0.1:$UPORT/" \
      -e "/^revocation:/,\$d" config/dev.yaml > "$work/tg.yaml"
  cp config/dev-hs256-secret.DEVELOPMENT-ONLY.txt "$work/"
  printf 'revocation:\n  backend: redis\n  redis: { url: "redis://127.0.0.1:%s", prefix: %s }\n' $RPORT "$prefix" >> "$work/tg.yaml"
  local t0; t0=$(date +%s%N)
  TOKENGATE_LOG=warn taskset -c 0 ./target/release/tokengate --threads 1 --config "$work/tg.yaml" 2>"$work/tg.log" &
  local pid=$!; pids+=("$pid")
  until curl -sf "http://127.0.0.1:$APORT/readyz" >/dev/null; do sleep 0.005; done
  local t1; t1=$(date +%s%N)
  local ready_ms=$(( (t1 - t0) / 1000000 ))
  local hwm; hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  local token; token=$(./target/release/tokengate token mint --config "$work/tg.yaml" --sub bench --ttl 1h 2>/dev/null)
  local rps; rps=$(taskset -c 1 wrk -t1 -c50 -d8s -H "Authorization: Bearer $token" "http://127.0.0.1:$PPORT/x" | awk '/Requests\/sec/ {print $2}')
  local revoked; revoked=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PPORT/x" -H "Authorization: Bearer $(./target/release/tokengate token mint --config "$work/tg.yaml" --sub b --claim jti=bulk-424242 2>/dev/null)")
  local rss; rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  printf '%-10s ready %5d ms  peak RSS at ready %6d kB  RSS after load %6d kB  %8s req/s  (bulk-424242 -> %s)\n' "$label" "$ready_ms" "$hwm" "$rss" "$rps" "$revoked"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
run_case empty "empty"
run_case full "1M"
run_case empty "empty"
run_case full "1M"
